#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ug_state.h"


#define UG_STATE_MAGIC      "\x89UGS\r\n\x1a\n"
#define UG_STATE_MAGIC_LEN  8
#define UG_STATE_HDR_LEN    25          /* magic .. salt_len */
#define UG_STATE_REC_LEN_V1 46          /* a record without its owner */
#define UG_STATE_REC_LEN    54          /* version 2: and notify marks */
#define UG_STATE_END_LEN    9           /* tag and count */
#define UG_STATE_SUM_LEN    32          /* SHA-256 */
#define UG_STATE_WRITE_LEN  (21 + UG_STATE_WRITER_LEN)  /* a 'W' record */
#define UG_STATE_TAG_REC    'R'
#define UG_STATE_TAG_WRITE  'W'
#define UG_STATE_TAG_END    'E'

/* Large enough that a zone of 100,000 owners is a few hundred writes. */
#define UG_STATE_BUF_SIZE   65536


struct ug_state_writer_s {
    int            fd;
    int            rc;              /* the first failure, or UG_STATE_OK */
    char          *path;
    char          *tmp;
    EVP_MD_CTX    *md;
    uint64_t       records;
    size_t         len;
    char           err[256];
    unsigned char  buf[UG_STATE_BUF_SIZE];
};


static void ug_state_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


static void
ug_state_err(char *err, size_t size, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || size == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
}


static void
ug_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}


static void
ug_put_u64(unsigned char *p, uint64_t v)
{
    ug_put_u32(p, (uint32_t) v);
    ug_put_u32(p + 4, (uint32_t) (v >> 32));
}


static uint32_t
ug_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


static uint64_t
ug_get_u64(const unsigned char *p)
{
    return (uint64_t) ug_get_u32(p) | (uint64_t) ug_get_u32(p + 4) << 32;
}


/* Two's complement both ways, without relying on implementation-defined
 * conversions of out-of-range values. */

static uint64_t
ug_from_i64(int64_t v)
{
    return v < 0 ? ~(uint64_t) (-(v + 1)) : (uint64_t) v;
}


static int64_t
ug_to_i64(uint64_t v)
{
    return v > INT64_MAX ? -(int64_t) (~v) - 1 : (int64_t) v;
}


static int32_t
ug_to_i32(uint32_t v)
{
    return v > INT32_MAX ? -(int32_t) (~v) - 1 : (int32_t) v;
}


static uint32_t
ug_from_i32(int32_t v)
{
    return v < 0 ? ~(uint32_t) (-(v + 1)) : (uint32_t) v;
}


static int
ug_write_all(int fd, const unsigned char *p, size_t n)
{
    ssize_t  k;

    while (n) {
        k = write(fd, p, n);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }

        if (k == 0) {
            errno = EIO;
            return -1;
        }

        p += k;
        n -= (size_t) k;
    }

    return 0;
}


static void
ug_state_fail(ug_state_writer_t *w, int rc, const char *what, int e)
{
    if (w->rc != UG_STATE_OK) {
        return;
    }

    w->rc = rc;
    snprintf(w->err, sizeof(w->err), "%s \"%s\": %s", what, w->tmp,
             e ? strerror(e) : "invalid value");
}


static int
ug_state_flush(ug_state_writer_t *w)
{
    if (w->rc != UG_STATE_OK) {
        return w->rc;
    }

    if (w->len == 0) {
        return UG_STATE_OK;
    }

    if (EVP_DigestUpdate(w->md, w->buf, w->len) != 1) {
        ug_state_fail(w, UG_STATE_IO, "SHA-256 failed for", EIO);
        return w->rc;
    }

    if (ug_write_all(w->fd, w->buf, w->len) != 0) {
        ug_state_fail(w, UG_STATE_IO, "write() failed to", errno);
        return w->rc;
    }

    w->len = 0;

    return UG_STATE_OK;
}


/* Makes room for n bytes (n is small: a header or a record). */
static unsigned char *
ug_state_reserve(ug_state_writer_t *w, size_t n)
{
    unsigned char  *p;

    if (sizeof(w->buf) - w->len < n && ug_state_flush(w) != UG_STATE_OK) {
        return NULL;
    }

    p = w->buf + w->len;
    w->len += n;

    return p;
}


static void
ug_state_free(ug_state_writer_t *w)
{
    if (w->fd != -1) {
        close(w->fd);
    }

    EVP_MD_CTX_free(w->md);
    free(w->path);
    free(w->tmp);
    free(w);
}


/*
 * Opens and locks "<path>.tmp".  The caller's lock is meant to allow one
 * writer at a time; this one makes sure that a second writer can never
 * truncate a file another is still writing or has just renamed into
 * place, which would turn the state file into a mix of two.  The lock
 * is held until the file is renamed, and a stale file left by a crash
 * holds no lock.
 */
static int
ug_state_lock_tmp(ug_state_writer_t *w, char *err, size_t err_size)
{
    struct stat  fst, pst;

    /* O_NOFOLLOW: a symlink planted at the temporary name must not
     * redirect the write; no O_TRUNC before the lock is ours */
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (w->fd == -1) {
        ug_state_err(err, err_size, "open() \"%s\" failed: %s", w->tmp,
                     strerror(errno));
        return -1;
    }

    if (flock(w->fd, LOCK_EX | LOCK_NB) != 0) {
        ug_state_err(err, err_size, "\"%s\" is being written by another "
                     "process: %s", w->tmp, strerror(errno));
        return -1;
    }

    /* the file opened may have been renamed into place by a writer that
     * held the lock until then: it must still be the temporary file */
    if (fstat(w->fd, &fst) != 0 || lstat(w->tmp, &pst) != 0
        || fst.st_ino != pst.st_ino || fst.st_dev != pst.st_dev)
    {
        ug_state_err(err, err_size, "\"%s\" was replaced by another "
                     "writer", w->tmp);
        errno = EWOULDBLOCK;
        return -1;
    }

    /* 0600 also when a leftover file had other permissions: the file
     * holds the salt */
    if (ftruncate(w->fd, 0) != 0 || fchmod(w->fd, 0600) != 0) {
        ug_state_err(err, err_size, "truncating \"%s\" failed: %s", w->tmp,
                     strerror(errno));
        return -1;
    }

    return 0;
}


ug_state_writer_t *
ug_state_open_write(const char *path, const unsigned char *salt,
    size_t salt_len, int64_t now, char *err, size_t err_size)
{
    int                 e;
    size_t              plen;
    unsigned char      *p;
    ug_state_writer_t  *w;

    if (path == NULL || path[0] == '\0') {
        ug_state_err(err, err_size, "no state file path");
        return NULL;
    }

    if (salt_len > UG_STATE_SALT_MAX || (salt_len && salt == NULL)) {
        ug_state_err(err, err_size, "salt longer than %d bytes",
                     UG_STATE_SALT_MAX);
        return NULL;
    }

    w = calloc(1, sizeof(ug_state_writer_t));
    if (w == NULL) {
        ug_state_err(err, err_size, "out of memory");
        return NULL;
    }

    w->fd = -1;
    plen = strlen(path);
    w->path = malloc(plen + 1);
    w->tmp = malloc(plen + sizeof(".tmp"));
    w->md = EVP_MD_CTX_new();

    if (w->path == NULL || w->tmp == NULL || w->md == NULL
        || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
    {
        ug_state_err(err, err_size, "out of memory");
        ug_state_free(w);
        return NULL;
    }

    memcpy(w->path, path, plen + 1);
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, ".tmp", sizeof(".tmp"));

    if (ug_state_lock_tmp(w, err, err_size) != 0) {
        e = errno;
        ug_state_free(w);
        errno = e;
        return NULL;
    }

    p = ug_state_reserve(w, UG_STATE_HDR_LEN + salt_len);

    memcpy(p, UG_STATE_MAGIC, UG_STATE_MAGIC_LEN);
    ug_put_u32(p + 8, UG_STATE_VERSION);
    ug_put_u32(p + 12, 0);
    ug_put_u64(p + 16, ug_from_i64(now));
    p[24] = (unsigned char) salt_len;

    if (salt_len) {
        memcpy(p + UG_STATE_HDR_LEN, salt, salt_len);
    }

    return w;
}


static int
ug_state_value_ok(uint64_t v)
{
    return v <= UG_STATE_VALUE_MAX;
}


static int
ug_state_delta_ok(int64_t v)
{
    return v >= -(int64_t) UG_STATE_VALUE_MAX
           && v <= (int64_t) UG_STATE_VALUE_MAX;
}


/* A 'W' record's fields as the reader accepts them. */
static int
ug_state_write_ok(const ug_state_write_t *wr)
{
    size_t  i;

    if (wr->delta == 0 || !ug_state_delta_ok(wr->delta)
        || wr->seq == 0 || wr->seq > (uint64_t) INT64_MAX)
    {
        return 0;
    }

    for (i = 0; i < UG_STATE_WRITER_LEN; i++) {
        if (!((wr->writer[i] >= '0' && wr->writer[i] <= '9')
              || (wr->writer[i] >= 'a' && wr->writer[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


int
ug_state_write_record(ug_state_writer_t *w, const ug_state_record_t *rec)
{
    unsigned char       *p;
    const ug_counter_t  *c;

    if (w->rc != UG_STATE_OK) {
        return w->rc;
    }

    c = &rec->counter;

    /* what the reader would refuse is refused here, so that one bad
     * record cannot make the whole file unreadable later; the writer
     * goes on, so that it cannot stop every later write either */
    if (rec->owner == NULL
        || ug_id_check(rec->owner, rec->owner_len) != UG_ID_OK
        || rec->owner_len > UG_STATE_OWNER_MAX
        || !ug_state_value_ok(c->month_used)
        || !ug_state_value_ok(rec->synced_base)
        || !ug_state_delta_ok(rec->unsynced)
        || (rec->write.seq != 0 && !ug_state_write_ok(&rec->write)))
    {
        return UG_STATE_CORRUPT;
    }

    p = ug_state_reserve(w, UG_STATE_REC_LEN + rec->owner_len
                            + (rec->write.seq ? UG_STATE_WRITE_LEN : 0));
    if (p == NULL) {
        return w->rc;
    }

    p[0] = UG_STATE_TAG_REC;
    p[1] = (unsigned char) rec->owner_len;
    memcpy(p + 2, rec->owner, rec->owner_len);
    p += 2 + rec->owner_len;

    ug_put_u32(p, ug_from_i32(c->month));
    ug_put_u64(p + 4, c->month_used);
    ug_put_u64(p + 12, c->tat_us);
    ug_put_u32(p + 20, c->minute);
    ug_put_u32(p + 24, c->minute_used);
    ug_put_u64(p + 28, ug_from_i64(rec->unsynced));
    ug_put_u64(p + 36, rec->synced_base);
    ug_put_u32(p + 44, ug_from_i32(rec->notify_cycle));
    ug_put_u32(p + 48, rec->notify_sent);

    if (rec->write.seq != 0) {
        p += UG_STATE_REC_LEN - 2;
        p[0] = UG_STATE_TAG_WRITE;
        ug_put_u32(p + 1, ug_from_i32(rec->write.month));
        ug_put_u64(p + 5, ug_from_i64(rec->write.delta));
        ug_put_u64(p + 13, rec->write.seq);
        memcpy(p + 21, rec->write.writer, UG_STATE_WRITER_LEN);
    }

    w->records++;

    return UG_STATE_OK;
}


uint64_t
ug_state_writer_records(const ug_state_writer_t *w)
{
    return w->records;
}


static int
ug_state_sync_dir(const char *path)
{
    int          fd, rc, e;
    char        *dir;
    const char  *slash;
    size_t       n;

    slash = strrchr(path, '/');

    if (slash == NULL) {
        dir = strdup(".");

    } else {
        n = (slash == path) ? 1 : (size_t) (slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }

    if (dir == NULL) {
        errno = ENOMEM;
        return -1;
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);

    if (fd == -1) {
        return -1;
    }

    rc = fsync(fd);
    e = errno;
    close(fd);
    errno = e;

    return rc;
}


int
ug_state_commit(ug_state_writer_t *w, char *err, size_t err_size)
{
    int             rc, fd;
    unsigned int    n;
    unsigned char  *p, sum[EVP_MAX_MD_SIZE];

    p = ug_state_reserve(w, UG_STATE_END_LEN);

    if (p) {
        p[0] = UG_STATE_TAG_END;
        ug_put_u64(p + 1, w->records);
    }

    if (ug_state_flush(w) != UG_STATE_OK) {
        goto failed;
    }

    n = 0;
    if (EVP_DigestFinal_ex(w->md, sum, &n) != 1 || n != UG_STATE_SUM_LEN) {
        ug_state_fail(w, UG_STATE_IO, "SHA-256 failed for", EIO);
        goto failed;
    }

    if (ug_write_all(w->fd, sum, n) != 0) {
        ug_state_fail(w, UG_STATE_IO, "write() failed to", errno);
        goto failed;
    }

    if (fsync(w->fd) != 0) {
        ug_state_fail(w, UG_STATE_IO, "fsync() failed for", errno);
        goto failed;
    }

    /* renamed while still locked: see ug_state_lock_tmp() */
    if (rename(w->tmp, w->path) != 0) {
        ug_state_fail(w, UG_STATE_IO, "rename() failed for", errno);
        goto failed;
    }

    fd = w->fd;
    w->fd = -1;

    if (close(fd) != 0) {
        ug_state_err(err, err_size, "close() of \"%s\" failed: %s",
                     w->path, strerror(errno));
        ug_state_free(w);
        return UG_STATE_IO;
    }

    /* the new name is durable only once the directory is; the file is
     * in place either way, so this failure leaves it there */
    if (ug_state_sync_dir(w->path) != 0) {
        ug_state_err(err, err_size, "fsync() of the directory of \"%s\" "
                     "failed: %s", w->path, strerror(errno));
        ug_state_free(w);
        return UG_STATE_IO;
    }

    ug_state_free(w);

    return UG_STATE_OK;

failed:

    rc = w->rc;
    ug_state_err(err, err_size, "%s", w->err);
    ug_state_abort(w);

    return rc;
}


void
ug_state_abort(ug_state_writer_t *w)
{
    if (w == NULL) {
        return;
    }

    /* unlinked before the lock goes with the close, so that the name
     * removed is still this writer's file */
    if (w->fd != -1) {
        (void) unlink(w->tmp);
    }

    ug_state_free(w);
}


/*
 * Decodes and checks the record at buf[pos] (its tag already seen).
 * Returns the offset after it, or 0 with err filled.
 */
static size_t
ug_state_record(const unsigned char *buf, size_t len, size_t pos,
    uint64_t n, size_t rlen, ug_state_record_t *rec, char *err,
    size_t err_size)
{
    size_t                olen;
    const unsigned char  *p;

    if (len - pos < 2) {
        ug_state_err(err, err_size, "truncated in record %" PRIu64, n);
        return 0;
    }

    olen = buf[pos + 1];

    if (olen == 0 || olen > UG_STATE_OWNER_MAX) {
        ug_state_err(err, err_size, "record %" PRIu64 ": owner length %zu "
                     "out of bounds (1..%d)", n, olen, UG_STATE_OWNER_MAX);
        return 0;
    }

    if (len - pos < rlen + olen) {
        ug_state_err(err, err_size, "truncated in record %" PRIu64, n);
        return 0;
    }

    rec->owner = buf + pos + 2;
    rec->owner_len = olen;

    if (ug_id_check(rec->owner, olen) != UG_ID_OK) {
        ug_state_err(err, err_size, "record %" PRIu64 ": owner %s", n,
                     ug_id_strerror(ug_id_check(rec->owner, olen)));
        return 0;
    }

    p = rec->owner + olen;

    rec->counter.month = ug_to_i32(ug_get_u32(p));
    rec->counter.month_used = ug_get_u64(p + 4);
    rec->counter.tat_us = ug_get_u64(p + 12);
    rec->counter.minute = ug_get_u32(p + 20);
    rec->counter.minute_used = ug_get_u32(p + 24);
    rec->unsynced = ug_to_i64(ug_get_u64(p + 28));
    rec->synced_base = ug_get_u64(p + 36);

    /* version 1 has no marks: none sent */
    rec->notify_cycle = 0;
    rec->notify_sent = 0;

    if (rlen == UG_STATE_REC_LEN) {
        rec->notify_cycle = ug_to_i32(ug_get_u32(p + 44));
        rec->notify_sent = ug_get_u32(p + 48);
    }

    if (!ug_state_value_ok(rec->counter.month_used)
        || !ug_state_value_ok(rec->synced_base)
        || !ug_state_delta_ok(rec->unsynced))
    {
        ug_state_err(err, err_size, "record %" PRIu64 ": count out of "
                     "range", n);
        return 0;
    }

    pos += rlen + olen;

    memset(&rec->write, 0, sizeof(ug_state_write_t));

    /* only version 2 has writes */
    if (rlen == UG_STATE_REC_LEN_V1 || pos == len
        || buf[pos] != UG_STATE_TAG_WRITE)
    {
        return pos;
    }

    if (len - pos < UG_STATE_WRITE_LEN) {
        ug_state_err(err, err_size, "truncated in the write of record %"
                     PRIu64, n);
        return 0;
    }

    p = buf + pos;
    rec->write.month = ug_to_i32(ug_get_u32(p + 1));
    rec->write.delta = ug_to_i64(ug_get_u64(p + 5));
    rec->write.seq = ug_get_u64(p + 13);
    memcpy(rec->write.writer, p + 21, UG_STATE_WRITER_LEN);

    if (!ug_state_write_ok(&rec->write)) {
        ug_state_err(err, err_size, "record %" PRIu64 ": write out of "
                     "range", n);
        return 0;
    }

    return pos + UG_STATE_WRITE_LEN;
}


int
ug_state_parse(const unsigned char *buf, size_t len, int32_t current_month,
    int (*cb)(void *data, const ug_state_record_t *rec), void *data,
    unsigned char *salt, size_t *salt_len, char *err, size_t err_size)
{
    size_t             pos, start, end, slen, rlen;
    uint32_t           v;
    uint64_t           n, count;
    unsigned int       mdlen;
    unsigned char      md[EVP_MAX_MD_SIZE];
    ug_state_record_t  rec;

    if (len < UG_STATE_MAGIC_LEN) {
        if (len == 0 || memcmp(buf, UG_STATE_MAGIC, len) == 0) {
            ug_state_err(err, err_size, "truncated in the header "
                         "(%zu bytes)", len);
        } else {
            ug_state_err(err, err_size, "not a state file (bad magic)");
        }
        return UG_STATE_CORRUPT;
    }

    if (memcmp(buf, UG_STATE_MAGIC, UG_STATE_MAGIC_LEN) != 0) {
        ug_state_err(err, err_size, "not a state file (bad magic)");
        return UG_STATE_CORRUPT;
    }

    if (len < UG_STATE_MAGIC_LEN + 4) {
        ug_state_err(err, err_size, "truncated in the header (%zu bytes)",
                     len);
        return UG_STATE_CORRUPT;
    }

    v = ug_get_u32(buf + 8);
    if (v != UG_STATE_VERSION && v != 1) {
        ug_state_err(err, err_size, "unsupported version %" PRIu32
                     " (this build reads versions 1 to %d)", v,
                     UG_STATE_VERSION);
        return UG_STATE_CORRUPT;
    }

    rlen = (v == 1) ? UG_STATE_REC_LEN_V1 : UG_STATE_REC_LEN;

    if (len < UG_STATE_HDR_LEN) {
        ug_state_err(err, err_size, "truncated in the header (%zu bytes)",
                     len);
        return UG_STATE_CORRUPT;
    }

    v = ug_get_u32(buf + 12);
    if (v != 0) {
        ug_state_err(err, err_size, "unknown header flags 0x%" PRIx32, v);
        return UG_STATE_CORRUPT;
    }

    slen = buf[24];
    if (slen > UG_STATE_SALT_MAX) {
        ug_state_err(err, err_size, "salt length %zu out of bounds "
                     "(0..%d)", slen, UG_STATE_SALT_MAX);
        return UG_STATE_CORRUPT;
    }

    if (len - UG_STATE_HDR_LEN < slen) {
        ug_state_err(err, err_size, "truncated in the salt");
        return UG_STATE_CORRUPT;
    }

    /* the first pass checks every bound and finds the end, so that the
     * checksum is known good before any record is handed out */

    start = UG_STATE_HDR_LEN + slen;
    pos = start;
    n = 0;

    for ( ;; ) {
        if (pos == len) {
            ug_state_err(err, err_size, "truncated after %" PRIu64
                         " records (no end marker)", n);
            return UG_STATE_CORRUPT;
        }

        if (buf[pos] == UG_STATE_TAG_END) {
            break;
        }

        if (buf[pos] != UG_STATE_TAG_REC) {
            ug_state_err(err, err_size, "unknown tag 0x%02x at offset %zu",
                         buf[pos], pos);
            return UG_STATE_CORRUPT;
        }

        pos = ug_state_record(buf, len, pos, n, rlen, &rec, err,
                              err_size);
        if (pos == 0) {
            return UG_STATE_CORRUPT;
        }

        n++;
    }

    if (len - pos < UG_STATE_END_LEN + UG_STATE_SUM_LEN) {
        ug_state_err(err, err_size, "truncated in the end marker or "
                     "checksum");
        return UG_STATE_CORRUPT;
    }

    end = pos + UG_STATE_END_LEN;

    if (len - end > UG_STATE_SUM_LEN) {
        ug_state_err(err, err_size, "%zu bytes of trailing garbage after "
                     "the checksum", len - end - UG_STATE_SUM_LEN);
        return UG_STATE_CORRUPT;
    }

    mdlen = 0;
    if (EVP_Digest(buf, end, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != UG_STATE_SUM_LEN)
    {
        ug_state_err(err, err_size, "SHA-256 unavailable");
        return UG_STATE_CORRUPT;
    }

    if (memcmp(md, buf + end, UG_STATE_SUM_LEN) != 0) {
        ug_state_err(err, err_size, "checksum mismatch");
        return UG_STATE_CORRUPT;
    }

    count = ug_get_u64(buf + pos + 1);
    if (count != n) {
        ug_state_err(err, err_size, "end marker counts %" PRIu64
                     " records, the file holds %" PRIu64, count, n);
        return UG_STATE_CORRUPT;
    }

    if (salt) {
        memcpy(salt, buf + UG_STATE_HDR_LEN, slen);
    }

    if (salt_len) {
        *salt_len = slen;
    }

    pos = start;

    for (n = 0; buf[pos] == UG_STATE_TAG_REC; n++) {
        pos = ug_state_record(buf, len, pos, n, rlen, &rec, err,
                              err_size);

        if (rec.counter.month < current_month || cb == NULL) {
            continue;
        }

        if (cb(data, &rec) != 0) {
            ug_state_err(err, err_size, "stopped at record %" PRIu64, n);
            return UG_STATE_STOPPED;
        }
    }

    return UG_STATE_OK;
}


int
ug_state_load(const char *path, int32_t current_month,
    int (*cb)(void *data, const ug_state_record_t *rec), void *data,
    unsigned char *salt, size_t *salt_len, char *err, size_t err_size)
{
    int             fd, rc;
    size_t          size, got;
    ssize_t         k;
    struct stat     st;
    unsigned char  *buf;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd == -1) {
        if (errno == ENOENT) {
            ug_state_err(err, err_size, "\"%s\" does not exist", path);
            return UG_STATE_MISSING;
        }

        ug_state_err(err, err_size, "open() \"%s\" failed: %s", path,
                     strerror(errno));
        return UG_STATE_IO;
    }

    if (fstat(fd, &st) != 0) {
        ug_state_err(err, err_size, "fstat() \"%s\" failed: %s", path,
                     strerror(errno));
        close(fd);
        return UG_STATE_IO;
    }

    if (!S_ISREG(st.st_mode)) {
        ug_state_err(err, err_size, "\"%s\" is not a regular file", path);
        close(fd);
        return UG_STATE_CORRUPT;
    }

    if (st.st_size > UG_STATE_FILE_MAX) {
        ug_state_err(err, err_size, "\"%s\" is larger than %d bytes", path,
                     UG_STATE_FILE_MAX);
        close(fd);
        return UG_STATE_CORRUPT;
    }

    size = (size_t) st.st_size;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        ug_state_err(err, err_size, "out of memory reading \"%s\"", path);
        close(fd);
        return UG_STATE_IO;
    }

    /* a file that shrinks meanwhile reads short and fails as truncated;
     * one that grows is read only up to the size checked above */
    got = 0;

    while (got < size) {
        k = read(fd, buf + got, size - got);

        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }

            ug_state_err(err, err_size, "read() \"%s\" failed: %s", path,
                         strerror(errno));
            free(buf);
            close(fd);
            return UG_STATE_IO;
        }

        if (k == 0) {
            break;
        }

        got += (size_t) k;
    }

    close(fd);

    rc = ug_state_parse(buf, got, current_month, cb, data, salt, salt_len,
                        err, err_size);
    free(buf);

    return rc;
}


int
ug_state_set_aside(const char *path, int64_t now, char *newpath,
    size_t size)
{
    int          n, i;
    struct stat  st;

    /* never clobber an earlier bad file: it is evidence */
    for (i = 0; i < 100; i++) {
        if (i == 0) {
            n = snprintf(newpath, size, "%s.bad-%" PRId64, path, now);
        } else {
            n = snprintf(newpath, size, "%s.bad-%" PRId64 ".%d", path, now,
                         i);
        }

        if (n < 0 || (size_t) n >= size) {
            errno = ENAMETOOLONG;
            return UG_STATE_IO;
        }

        if (lstat(newpath, &st) != 0 && errno == ENOENT) {
            break;
        }
    }

    if (i == 100) {
        errno = EEXIST;
        return UG_STATE_IO;
    }

    if (rename(path, newpath) != 0) {
        return UG_STATE_IO;
    }

    return UG_STATE_OK;
}


const char *
ug_state_strerror(int rc)
{
    switch (rc) {
    case UG_STATE_OK:
        return "ok";
    case UG_STATE_MISSING:
        return "missing";
    case UG_STATE_CORRUPT:
        return "corrupt";
    case UG_STATE_IO:
        return "i/o error";
    case UG_STATE_STOPPED:
        return "stopped";
    default:
        return "unknown";
    }
}
