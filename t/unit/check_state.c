/*
 * The state file: round trips, every way a file can be damaged, and the
 * atomic replace.
 */

/* nftw() */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ug_check.h"
#include "ug_state.h"
#include "ug_time.h"


#define T_NOW  1767225600          /* 2026-01-01T00:00:00Z */


typedef struct {
    size_t             n;
    size_t             cap;
    ug_state_record_t  *recs;
    unsigned char      (*owners)[UG_STATE_OWNER_MAX];
    int                stop_after;
} t_sink_t;


static char  t_dir[64];


static void
t_mkdir(void)
{
    strcpy(t_dir, "/tmp/ug-state-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t_dir));
}


/* "<i>" padded with letters to a length of i % 128 + 1 or more. */
static void
t_owner(char *owner, size_t i)
{
    size_t  n, len;

    n = (size_t) snprintf(owner, UG_STATE_OWNER_MAX + 1, "%zu", i);
    len = i % UG_STATE_OWNER_MAX + 1;

    while (n < len) {
        owner[n] = (char) ('a' + (i + n) % 26);
        n++;
    }

    owner[n] = '\0';
}


static int
t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static void
t_cleanup(void)
{
    if (t_dir[0]) {
        (void) nftw(t_dir, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    }
}


static void
t_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", t_dir, name);
}


static int
t_collect(void *data, const ug_state_record_t *rec)
{
    t_sink_t  *s;

    s = data;

    if (s->stop_after && s->n == (size_t) s->stop_after) {
        return 1;
    }

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->recs = realloc(s->recs, s->cap * sizeof(ug_state_record_t));
        s->owners = realloc(s->owners, s->cap * UG_STATE_OWNER_MAX);
        ck_assert_ptr_nonnull(s->recs);
        ck_assert_ptr_nonnull(s->owners);
    }

    ck_assert_uint_ge(rec->owner_len, 1);
    ck_assert_uint_le(rec->owner_len, UG_STATE_OWNER_MAX);

    /* the owner points into the parser's buffer: keep a copy, and read
     * it from owners[] (recs[].owner is cleared, as realloc moves it) */
    memcpy(s->owners[s->n], rec->owner, rec->owner_len);
    s->recs[s->n] = *rec;
    s->recs[s->n].owner = NULL;
    s->n++;

    return 0;
}


static void
t_sink_free(t_sink_t *s)
{
    free(s->recs);
    free(s->owners);
    memset(s, 0, sizeof(t_sink_t));
}


static unsigned char *
t_read(const char *path, size_t *len)
{
    FILE           *f;
    long            n;
    unsigned char  *buf;

    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    buf = malloc((size_t) n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;

    return buf;
}


static void
t_write(const char *path, const unsigned char *buf, size_t len)
{
    FILE  *f;

    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}


/* Recomputes the trailing SHA-256 after a test edits a file on purpose,
 * so that the check under test is the one that must catch it. */
static void
t_fix_sum(unsigned char *buf, size_t len)
{
    unsigned int  n;

    ck_assert_uint_ge(len, 32);
    ck_assert_int_eq(EVP_Digest(buf, len - 32, buf + len - 32, &n,
                                EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(n, 32);
}


static ug_state_record_t
t_rec(const char *owner, int32_t month, uint64_t used)
{
    ug_state_record_t  r;

    memset(&r, 0, sizeof(r));
    r.owner = (const unsigned char *) owner;
    r.owner_len = strlen(owner);
    r.counter.month = month;
    r.counter.month_used = used;
    r.counter.tat_us = (uint64_t) T_NOW * 1000000 + used;
    r.counter.minute = T_NOW / 60;
    r.counter.minute_used = (uint32_t) used % 7;
    r.unsynced = -(int64_t) used;
    r.synced_base = used * 3;

    return r;
}


/* A small valid file: three owners in the current month. */
static unsigned char *
t_small(size_t *len)
{
    char                path[128], err[256];
    int32_t             m;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    m = ug_month_index(T_NOW);
    t_path(path, sizeof(path), "small");

    w = ug_state_open_write(path, (const unsigned char *) "salt", 4, T_NOW,
                            err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);

    r = t_rec("alice", m, 5);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    r = t_rec("anon:b109e04d0335ce95dea2a753", m, 20);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    r = t_rec("org-9", m, 1);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    return t_read(path, len);
}


static int
t_parse(const unsigned char *buf, size_t len, t_sink_t *s, char *err,
    size_t err_size)
{
    unsigned char  salt[UG_STATE_SALT_MAX];
    size_t         salt_len;

    return ug_state_parse(buf, len, INT32_MIN, t_collect, s, salt,
                          &salt_len, err, err_size);
}


START_TEST(test_round_trip_many)
{
    int                 rc;
    char                path[128], err[256], owner[UG_STATE_OWNER_MAX + 1];
    size_t              i, n, salt_len;
    int32_t             m;
    t_sink_t            s;
    unsigned char       salt[UG_STATE_SALT_MAX], got[UG_STATE_SALT_MAX];
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    t_path(path, sizeof(path), "state");
    m = ug_month_index(T_NOW);

    for (i = 0; i < sizeof(salt); i++) {
        salt[i] = (unsigned char) (i * 37 + 1);
    }

    w = ug_state_open_write(path, salt, sizeof(salt), T_NOW, err,
                            sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);

    /* enough records to cross the write buffer several times, owners of
     * every length 1..128 */
    n = 20000;

    for (i = 0; i < n; i++) {
        t_owner(owner, i);
        r = t_rec(owner, m + (int32_t) (i % 3), i);
        r.counter.tat_us = UINT64_MAX - i;
        r.counter.minute = UINT32_MAX - (uint32_t) i;
        r.counter.minute_used = (uint32_t) i * 65537;
        r.unsynced = (i & 1) ? -(int64_t) UG_STATE_VALUE_MAX
                             : (int64_t) i;
        r.synced_base = (i == 7) ? UG_STATE_VALUE_MAX : i << 20;
        r.notify_cycle = (i % 5) ? m : INT32_MIN;
        r.notify_sent = (uint32_t) i * 2654435761u;
        ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    }

    ck_assert_uint_eq(ug_state_writer_records(w), n);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    memset(&s, 0, sizeof(s));
    rc = ug_state_load(path, m, t_collect, &s, got, &salt_len, err,
                       sizeof(err));
    ck_assert_msg(rc == UG_STATE_OK, "%s", err);
    ck_assert_uint_eq(s.n, n);
    ck_assert_uint_eq(salt_len, sizeof(salt));
    ck_assert_mem_eq(got, salt, sizeof(salt));

    for (i = 0; i < n; i++) {
        t_owner(owner, i);

        ck_assert_uint_eq(s.recs[i].owner_len, strlen(owner));
        ck_assert_mem_eq(s.owners[i], owner, strlen(owner));
        ck_assert_int_eq(s.recs[i].counter.month, m + (int32_t) (i % 3));
        ck_assert_uint_eq(s.recs[i].counter.month_used, i);
        ck_assert_uint_eq(s.recs[i].counter.tat_us, UINT64_MAX - i);
        ck_assert_uint_eq(s.recs[i].counter.minute,
                          UINT32_MAX - (uint32_t) i);
        ck_assert_uint_eq(s.recs[i].counter.minute_used,
                          (uint32_t) i * 65537);
        ck_assert_int_eq(s.recs[i].unsynced,
                         (i & 1) ? -(int64_t) UG_STATE_VALUE_MAX
                                 : (int64_t) i);
        ck_assert_uint_eq(s.recs[i].synced_base,
                          (i == 7) ? UG_STATE_VALUE_MAX : i << 20);
        ck_assert_int_eq(s.recs[i].notify_cycle,
                         (i % 5) ? m : INT32_MIN);
        ck_assert_uint_eq(s.recs[i].notify_sent,
                          (uint32_t) i * 2654435761u);
    }

    t_sink_free(&s);

    /* no temporary file is left behind */
    t_path(path, sizeof(path), "state.tmp");
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST


START_TEST(test_empty_zone_and_no_salt)
{
    int                 rc;
    char                path[128], err[256];
    size_t              salt_len;
    t_sink_t            s;
    unsigned char       salt[UG_STATE_SALT_MAX];
    ug_state_writer_t  *w;

    t_mkdir();
    t_path(path, sizeof(path), "state");

    w = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    memset(&s, 0, sizeof(s));
    salt_len = 99;
    rc = ug_state_load(path, 0, t_collect, &s, salt, &salt_len, err,
                       sizeof(err));
    ck_assert_msg(rc == UG_STATE_OK, "%s", err);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_uint_eq(salt_len, 0);
    t_sink_free(&s);
}
END_TEST


/* The documented layout, byte for byte: little-endian whatever the host. */
START_TEST(test_exact_layout)
{
    char                path[128], err[256];
    size_t              len;
    unsigned char      *buf, sum[32];
    unsigned int        n;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    static const unsigned char  want[] = {
        0x89, 'U', 'G', 'S', 0x0d, 0x0a, 0x1a, 0x0a,
        2, 0, 0, 0,
        0, 0, 0, 0,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        2, 'k', '!',
        'R', 3, 'b', 'o', 'b',
        0xfe, 0xff, 0xff, 0xff,
        0x10, 0x20, 0, 0, 0, 0, 0, 0,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x44, 0x33, 0x22, 0x11,
        0x09, 0, 0, 0,
        0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x2a, 0, 0, 0, 0, 0, 0, 0,
        0xfd, 0xff, 0xff, 0xff,
        0x01, 0x80, 0, 0,
        'W',
        0xfd, 0xff, 0xff, 0xff,
        0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00,
        '0', '1', '2', '3', '4', '5', '6', '7',
        '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
        'E', 1, 0, 0, 0, 0, 0, 0, 0
    };

    t_mkdir();
    t_path(path, sizeof(path), "state");

    w = ug_state_open_write(path, (const unsigned char *) "k!", 2,
                            0x0102030405060708LL, err, sizeof(err));
    ck_assert_ptr_nonnull(w);

    memset(&r, 0, sizeof(r));
    r.owner = (const unsigned char *) "bob";
    r.owner_len = 3;
    r.counter.month = -2;
    r.counter.month_used = 0x2010;
    r.counter.tat_us = 0x0807060504030201ULL;
    r.counter.minute = 0x11223344;
    r.counter.minute_used = 9;
    r.unsynced = -5;
    r.synced_base = 42;
    r.notify_cycle = -3;
    r.notify_sent = 0x8001;
    r.write.month = -3;
    r.write.delta = -7;
    r.write.seq = 0x0001020304050607ULL;
    memcpy(r.write.writer, "0123456789abcdef", UG_STATE_WRITER_LEN);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    buf = t_read(path, &len);
    ck_assert_uint_eq(len, sizeof(want) + 32);
    ck_assert_mem_eq(buf, want, sizeof(want));

    ck_assert_int_eq(EVP_Digest(want, sizeof(want), sum, &n, EVP_sha256(),
                                NULL), 1);
    ck_assert_mem_eq(buf + sizeof(want), sum, 32);

    /* and the negative month reads back */
    {
        t_sink_t  s;

        memset(&s, 0, sizeof(s));
        ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                         UG_STATE_OK);
        ck_assert_uint_eq(s.n, 1);
        ck_assert_int_eq(s.recs[0].counter.month, -2);
        ck_assert_int_eq(s.recs[0].unsynced, -5);
        ck_assert_int_eq(s.recs[0].notify_cycle, -3);
        ck_assert_uint_eq(s.recs[0].notify_sent, 0x8001);
        ck_assert_int_eq(s.recs[0].write.month, -3);
        ck_assert_int_eq(s.recs[0].write.delta, -7);
        ck_assert_uint_eq(s.recs[0].write.seq, 0x0001020304050607ULL);
        ck_assert_mem_eq(s.recs[0].write.writer, "0123456789abcdef",
                         UG_STATE_WRITER_LEN);
        t_sink_free(&s);
    }

    free(buf);

    {
        struct stat  st;

        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
    }
}
END_TEST


/* A file the previous build wrote (version 1, no notification marks)
 * still loads, with no marks. */
START_TEST(test_version_1_is_read)
{
    char           err[256];
    size_t         len;
    t_sink_t       s;
    unsigned int   n;
    unsigned char  buf[256];

    static const unsigned char  v1[] = {
        0x89, 'U', 'G', 'S', 0x0d, 0x0a, 0x1a, 0x0a,
        1, 0, 0, 0,
        0, 0, 0, 0,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        2, 'k', '!',
        'R', 3, 'b', 'o', 'b',
        0x2c, 0x5f, 0, 0,
        0x10, 0x20, 0, 0, 0, 0, 0, 0,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x44, 0x33, 0x22, 0x11,
        0x09, 0, 0, 0,
        0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x2a, 0, 0, 0, 0, 0, 0, 0,
        'R', 1, 'z',
        0x2c, 0x5f, 0, 0,
        0x07, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
        0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        'E', 2, 0, 0, 0, 0, 0, 0, 0
    };

    memcpy(buf, v1, sizeof(v1));
    ck_assert_int_eq(EVP_Digest(v1, sizeof(v1), buf + sizeof(v1), &n,
                                EVP_sha256(), NULL), 1);
    len = sizeof(v1) + 32;

    memset(&s, 0, sizeof(s));
    ck_assert_msg(t_parse(buf, len, &s, err, sizeof(err)) == UG_STATE_OK,
                  "%s", err);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_mem_eq(s.owners[0], "bob", 3);
    ck_assert_int_eq(s.recs[0].counter.month, 0x5f2c);
    ck_assert_uint_eq(s.recs[0].counter.month_used, 0x2010);
    ck_assert_int_eq(s.recs[0].unsynced, -5);
    ck_assert_uint_eq(s.recs[0].synced_base, 42);
    ck_assert_int_eq(s.recs[0].notify_cycle, 0);
    ck_assert_uint_eq(s.recs[0].notify_sent, 0);
    ck_assert_mem_eq(s.owners[1], "z", 1);
    ck_assert_uint_eq(s.recs[1].counter.month_used, 7);
    ck_assert_uint_eq(s.recs[1].notify_sent, 0);
    t_sink_free(&s);
}
END_TEST


/*
 * A write whose outcome is not known ('W') goes with its owner's record;
 * the reader takes it only there, only in a version 2 file, and only
 * with every field in bounds.
 */
START_TEST(test_unsettled_writes)
{
    char                path[128], err[256];
    size_t              len, at;
    int32_t             m;
    t_sink_t            s;
    unsigned char      *buf;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    t_path(path, sizeof(path), "w");
    m = ug_month_index(T_NOW);

    w = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(w);

    r = t_rec("alice", m, 5);
    r.write.month = m - 1;
    r.write.delta = 12;
    r.write.seq = 99;
    memcpy(r.write.writer, "00000000000000ff", UG_STATE_WRITER_LEN);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    r = t_rec("bob", m, 6);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    /* what the reader would refuse is left out */
    r = t_rec("carol", m, 7);
    memcpy(r.write.writer, "00000000000000ff", UG_STATE_WRITER_LEN);
    r.write.seq = 1;
    r.write.delta = 0;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r.write.delta = -1;
    r.write.seq = (uint64_t) INT64_MAX + 1;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r.write.seq = 1;
    r.write.writer[3] = 'A';
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r.write.writer[3] = 'a';
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    ck_assert_uint_eq(ug_state_writer_records(w), 3);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    buf = t_read(path, &len);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_int_eq(s.recs[0].write.month, m - 1);
    ck_assert_int_eq(s.recs[0].write.delta, 12);
    ck_assert_uint_eq(s.recs[0].write.seq, 99);
    ck_assert_mem_eq(s.recs[0].write.writer, "00000000000000ff",
                     UG_STATE_WRITER_LEN);
    ck_assert_uint_eq(s.recs[1].write.seq, 0);
    ck_assert_int_eq(s.recs[2].write.delta, -1);
    ck_assert_mem_eq(s.recs[2].write.writer, "000a0000000000ff",
                     UG_STATE_WRITER_LEN);
    t_sink_free(&s);

    /* alice's 'W' starts right after her record: 25-byte header, 'R',
     * length, 5 bytes of owner, 52 bytes of fields */
    at = 25 + 2 + 5 + 52;
    ck_assert_int_eq(buf[at], 'W');

    /* read as version 1 (shorter records, no 'W'), it does not parse */
    buf[8] = 1;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[8] = 2;

    /* out of bounds as read: a zero delta, a zero seq, a writer digit */
    buf[at + 5] = 0;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "write out of range"));
    buf[at + 5] = 12;

    buf[at + 13] = 0;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[at + 13] = 99;

    buf[at + 21] = 'g';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[at + 21] = '0';

    /* a second 'W' for one record, or one with no record before it */
    buf[at + 37] = 'W';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[at + 37] = 'R';

    buf[25] = 'W';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[25] = 'R';

    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    t_sink_free(&s);

    /* cut short inside the 'W' */
    ck_assert_int_eq(t_parse(buf, at + 20, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_uint_eq(s.n, 0);

    free(buf);
}
END_TEST


START_TEST(test_missing)
{
    int       rc;
    char      path[128], err[256];
    t_sink_t  s;

    t_mkdir();
    t_path(path, sizeof(path), "nothing-here");
    memset(&s, 0, sizeof(s));

    rc = ug_state_load(path, 0, t_collect, &s, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_MISSING);
    ck_assert_uint_eq(s.n, 0);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_io_errors)
{
    int       rc;
    char      path[128], err[256];
    t_sink_t  s;

    t_mkdir();
    memset(&s, 0, sizeof(s));

    /* a path through a regular file: ENOTDIR, not a first start */
    t_path(path, sizeof(path), "file");
    t_write(path, (const unsigned char *) "x", 1);
    t_path(path, sizeof(path), "file/state");

    rc = ug_state_load(path, 0, t_collect, &s, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_IO);
    ck_assert_ptr_nonnull(strstr(err, "open()"));

    ck_assert_ptr_null(ug_state_open_write(path, NULL, 0, T_NOW, err,
                                           sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "file/state.tmp"));

    /* a directory is not a state file */
    rc = ug_state_load(t_dir, 0, t_collect, &s, NULL, NULL, err,
                       sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "regular file"));

    /* salt too long */
    t_path(path, sizeof(path), "state");
    ck_assert_ptr_null(ug_state_open_write(path,
                                           (const unsigned char *) "x",
                                           UG_STATE_SALT_MAX + 1, T_NOW,
                                           err, sizeof(err)));
    ck_assert_uint_eq(s.n, 0);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_too_large)
{
    int       fd, rc;
    char      path[128], err[256];
    t_sink_t  s;

    t_mkdir();
    t_path(path, sizeof(path), "huge");

    /* sparse: no disk space is used */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t) UG_STATE_FILE_MAX + 1), 0);
    close(fd);

    memset(&s, 0, sizeof(s));
    rc = ug_state_load(path, 0, t_collect, &s, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "larger"));
    t_sink_free(&s);
}
END_TEST


START_TEST(test_truncated_everywhere)
{
    int             rc;
    char            err[256];
    size_t          len, cut;
    t_sink_t        s;
    unsigned char  *buf, *copy;

    t_mkdir();
    buf = t_small(&len);

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    t_sink_free(&s);

    for (cut = 0; cut < len; cut++) {
        /* a copy of exactly cut bytes, so that ASan sees any overread */
        copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        err[0] = '\0';

        rc = t_parse(copy, cut, &s, err, sizeof(err));
        ug_expect(rc == UG_STATE_CORRUPT, "cut at %zu: rc %d", cut, rc);
        ug_expect(s.n == 0, "cut at %zu: a record was loaded", cut);
        ug_expect(strstr(err, "truncated") != NULL, "cut at %zu: \"%s\"",
                  cut, err);
        free(copy);
    }

    free(buf);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_flipped_bits)
{
    int             rc;
    char            err[256];
    size_t          len, i;
    t_sink_t        s;
    unsigned char  *buf;
    unsigned int    bit;

    t_mkdir();
    buf = t_small(&len);
    memset(&s, 0, sizeof(s));

    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char) (1u << bit);

            rc = t_parse(buf, len, &s, err, sizeof(err));
            ug_expect(rc == UG_STATE_CORRUPT, "byte %zu bit %u: rc %d", i,
                      bit, rc);
            ug_expect(s.n == 0, "byte %zu bit %u: a record was loaded", i,
                      bit);

            buf[i] ^= (unsigned char) (1u << bit);
        }
    }

    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    free(buf);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_checksum_before_records)
{
    char            err[256];
    size_t          len;
    t_sink_t        s;
    unsigned char  *buf;

    t_mkdir();
    buf = t_small(&len);
    memset(&s, 0, sizeof(s));

    /* a change inside the last record's count: structurally fine, so only
     * the checksum catches it, and no record may have gone out first */
    buf[len - 32 - 9 - 10] ^= 0x01;
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_str_eq(err, "checksum mismatch");
    ck_assert_uint_eq(s.n, 0);
    free(buf);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_bad_magic_and_version)
{
    char            err[256];
    size_t          len;
    t_sink_t        s;
    unsigned char  *buf;

    t_mkdir();
    buf = t_small(&len);
    memset(&s, 0, sizeof(s));

    buf[1] = 'X';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "bad magic"));
    buf[1] = 'U';

    /* a foreign text file */
    ck_assert_int_eq(t_parse((const unsigned char *) "hello\n", 6, &s, err,
                             sizeof(err)), UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "bad magic"));

    buf[8] = 3;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "version 3"));

    /* a version 2 file read as version 1: records of the wrong length */
    buf[8] = 1;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[8] = 2;

    buf[11] = 0x80;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "version 2147483650"));
    buf[11] = 0;

    buf[13] = 1;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "flags"));
    buf[13] = 0;

    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    free(buf);
    t_sink_free(&s);
}
END_TEST


/* Offsets in t_small's file: header 25 + salt 4; the first record's
 * owner_len at 30, its owner "alice" at 31. */
#define T_REC0  29

START_TEST(test_bounds)
{
    char            err[256];
    size_t          len;
    t_sink_t        s;
    unsigned char  *buf, *big;

    t_mkdir();
    buf = t_small(&len);
    memset(&s, 0, sizeof(s));

    ck_assert_int_eq(buf[T_REC0], 'R');
    ck_assert_int_eq(buf[T_REC0 + 1], 5);

    /* an owner length past the bound, with a matching checksum */
    buf[T_REC0 + 1] = UG_STATE_OWNER_MAX + 1;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "owner length 129 out of bounds"));

    buf[T_REC0 + 1] = 0;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "owner length 0"));

    /* a length within bounds that runs into the next record */
    buf[T_REC0 + 1] = 128;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    buf[T_REC0 + 1] = 5;

    /* a control character in an owner */
    buf[T_REC0 + 3] = '\n';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "record 0: owner"));
    buf[T_REC0 + 3] = 'l';

    /* an unknown tag */
    buf[T_REC0] = 'Q';
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "unknown tag 0x51 at offset 29"));
    buf[T_REC0] = 'R';

    /* month_used beyond UG_STATE_VALUE_MAX (top byte of the u64) */
    buf[T_REC0 + 2 + 5 + 4 + 7] = 0x80;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    buf[T_REC0 + 2 + 5 + 4 + 7] = 0;

    /* a salt length past the bound */
    buf[24] = UG_STATE_SALT_MAX + 1;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "salt length 65"));
    buf[24] = 4;

    /* the end marker's count disagrees */
    buf[len - 32 - 8] = 4;
    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "counts 4 records"));
    buf[len - 32 - 8] = 3;

    /* trailing garbage after the checksum */
    big = malloc(len + 5);
    memcpy(big, buf, len);
    memcpy(big + len, "junk!", 5);
    ck_assert_int_eq(t_parse(big, len + 5, &s, err, sizeof(err)),
                     UG_STATE_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "5 bytes of trailing garbage"));
    free(big);

    ck_assert_uint_eq(s.n, 0);

    t_fix_sum(buf, len);
    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)), UG_STATE_OK);
    ck_assert_uint_eq(s.n, 3);
    free(buf);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_past_months_skipped)
{
    int                 rc;
    char                path[128], err[256];
    int32_t             m;
    t_sink_t            s;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    t_path(path, sizeof(path), "state");
    m = ug_month_index(T_NOW);

    w = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    r = t_rec("last-year", m - 12, 100);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    r = t_rec("last-month", m - 1, 19);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    r = t_rec("this-month", m, 7);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    r = t_rec("next-month", m + 1, 3);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    memset(&s, 0, sizeof(s));
    rc = ug_state_load(path, m, t_collect, &s, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_OK);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_mem_eq(s.owners[0], "this-month", 10);
    ck_assert_uint_eq(s.recs[0].counter.month_used, 7);
    ck_assert_mem_eq(s.owners[1], "next-month", 10);
    t_sink_free(&s);

    /* a month later, only next-month's record is current */
    rc = ug_state_load(path, m + 1, t_collect, &s, NULL, NULL, err,
                       sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_OK);
    ck_assert_uint_eq(s.n, 1);
    t_sink_free(&s);

    rc = ug_state_load(path, INT32_MIN, t_collect, &s, NULL, NULL, err,
                       sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_OK);
    ck_assert_uint_eq(s.n, 4);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_callback_stops)
{
    char            err[256];
    size_t          len;
    t_sink_t        s;
    unsigned char  *buf;

    t_mkdir();
    buf = t_small(&len);
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;

    ck_assert_int_eq(t_parse(buf, len, &s, err, sizeof(err)),
                     UG_STATE_STOPPED);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_ptr_nonnull(strstr(err, "record 2"));
    free(buf);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_uncommitted_leaves_target)
{
    char                path[128], tmp[128], err[256];
    size_t              before_len, after_len;
    unsigned char      *before, *after;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    before = t_small(&before_len);
    t_path(path, sizeof(path), "small");
    t_path(tmp, sizeof(tmp), "small.tmp");

    w = ug_state_open_write(path, NULL, 0, T_NOW + 60, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    r = t_rec("mallory", 0, 1000);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    /* as after a crash before the commit: the old file is intact */
    ck_assert_int_eq(access(tmp, F_OK), 0);
    after = t_read(path, &after_len);
    ck_assert_uint_eq(after_len, before_len);
    ck_assert_mem_eq(after, before, before_len);
    free(after);

    ug_state_abort(w);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    after = t_read(path, &after_len);
    ck_assert_uint_eq(after_len, before_len);
    ck_assert_mem_eq(after, before, before_len);
    free(after);

    ug_state_abort(NULL);
    free(before);
}
END_TEST


START_TEST(test_bad_record_left_out)
{
    int                 rc;
    char                path[128], tmp[128], err[256];
    t_sink_t            s;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    t_path(path, sizeof(path), "state");
    t_path(tmp, sizeof(tmp), "state.tmp");

    w = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    r = t_rec("fine", 0, 1);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);

    /* each bound on its own: refused, and the writer goes on */
    r = t_rec("has space", 0, 1);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r = t_rec("big", 0, UG_STATE_VALUE_MAX + 1);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r = t_rec("x", 0, 1);
    r.owner_len = 0;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r = t_rec("x", 0, 1);
    r.unsynced = INT64_MIN;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r = t_rec("x", 0, 1);
    r.synced_base = UG_STATE_VALUE_MAX + 1;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);
    r = t_rec("x", 0, 1);
    r.owner = NULL;
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_CORRUPT);

    r = t_rec("fine-again", 0, 2);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    ck_assert_uint_eq(ug_state_writer_records(w), 2);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);
    ck_assert_int_eq(access(tmp, F_OK), -1);

    memset(&s, 0, sizeof(s));
    rc = ug_state_load(path, INT32_MIN, t_collect, &s, NULL, NULL, err,
                       sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_OK);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_mem_eq(s.owners[1], "fine-again", 10);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_one_writer_at_a_time)
{
    char                path[128], tmp[128], err[256];
    size_t              len;
    unsigned char      *buf;
    struct stat         st;
    ug_state_record_t   r;
    ug_state_writer_t  *a, *b;

    t_mkdir();
    t_path(path, sizeof(path), "state");
    t_path(tmp, sizeof(tmp), "state.tmp");

    a = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    r = t_rec("first", 0, 1);
    ck_assert_int_eq(ug_state_write_record(a, &r), UG_STATE_OK);

    /* a second writer fails and leaves the first one's file alone */
    b = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_null(b);
    ck_assert_int_eq(errno, EWOULDBLOCK);
    ck_assert_ptr_nonnull(strstr(err, "another process"));
    ck_assert_int_eq(access(tmp, F_OK), 0);

    ck_assert_int_eq(ug_state_commit(a, err, sizeof(err)), UG_STATE_OK);

    buf = t_read(path, &len);
    ck_assert_int_eq(ug_state_parse(buf, len, INT32_MIN, NULL, NULL, NULL,
                                    NULL, err, sizeof(err)), UG_STATE_OK);
    free(buf);

    /* a leftover temporary file from a crash holds no lock */
    t_write(tmp, (const unsigned char *) "stale leftovers", 15);
    chmod(tmp, 0644);
    b = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_int_eq(ug_state_commit(b, err, sizeof(err)), UG_STATE_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    buf = t_read(path, &len);
    ck_assert_int_eq(ug_state_parse(buf, len, INT32_MIN, NULL, NULL, NULL,
                                    NULL, err, sizeof(err)), UG_STATE_OK);
    free(buf);
}
END_TEST


START_TEST(test_replace_existing)
{
    int                 rc;
    char                path[128], err[256];
    size_t              len;
    t_sink_t            s;
    unsigned char      *buf;
    ug_state_record_t   r;
    ug_state_writer_t  *w;

    t_mkdir();
    buf = t_small(&len);
    free(buf);
    t_path(path, sizeof(path), "small");

    w = ug_state_open_write(path, NULL, 0, T_NOW, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    r = t_rec("only-one", 0, 11);
    ck_assert_int_eq(ug_state_write_record(w, &r), UG_STATE_OK);
    ck_assert_int_eq(ug_state_commit(w, err, sizeof(err)), UG_STATE_OK);

    memset(&s, 0, sizeof(s));
    rc = ug_state_load(path, 0, t_collect, &s, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_OK);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.recs[0].counter.month_used, 11);
    t_sink_free(&s);
}
END_TEST


START_TEST(test_set_aside)
{
    int             rc;
    char            path[128], aside[160], aside2[160], want[160];
    char            err[256];
    size_t          len;
    unsigned char  *buf;

    t_mkdir();
    t_path(path, sizeof(path), "state");
    t_write(path, (const unsigned char *) "garbage", 7);

    rc = ug_state_load(path, 0, NULL, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(rc, UG_STATE_CORRUPT);

    ck_assert_int_eq(ug_state_set_aside(path, 1234, aside, sizeof(aside)),
                     UG_STATE_OK);
    snprintf(want, sizeof(want), "%s.bad-1234", path);
    ck_assert_str_eq(aside, want);
    ck_assert_int_eq(access(path, F_OK), -1);
    buf = t_read(aside, &len);
    ck_assert_uint_eq(len, 7);
    ck_assert_mem_eq(buf, "garbage", 7);
    free(buf);

    /* a second bad file in the same second keeps the first */
    t_write(path, (const unsigned char *) "worse", 5);
    ck_assert_int_eq(ug_state_set_aside(path, 1234, aside2, sizeof(aside2)),
                     UG_STATE_OK);
    snprintf(want, sizeof(want), "%s.bad-1234.1", path);
    ck_assert_str_eq(aside2, want);
    ck_assert_int_eq(access(aside, F_OK), 0);

    /* nothing to move */
    ck_assert_int_eq(ug_state_set_aside(path, 1235, aside, sizeof(aside)),
                     UG_STATE_IO);
    ck_assert_int_eq(errno, ENOENT);

    /* no room for the name */
    t_write(path, (const unsigned char *) "x", 1);
    ck_assert_int_eq(ug_state_set_aside(path, 1236, aside, 10),
                     UG_STATE_IO);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    ck_assert_int_eq(access(path, F_OK), 0);

    ck_assert_str_eq(ug_state_strerror(UG_STATE_CORRUPT), "corrupt");
}
END_TEST


static Suite *
state_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("state");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, t_cleanup);

    tcase_add_test(tc, test_round_trip_many);
    tcase_add_test(tc, test_empty_zone_and_no_salt);
    tcase_add_test(tc, test_exact_layout);
    tcase_add_test(tc, test_unsettled_writes);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_flipped_bits);
    tcase_add_test(tc, test_checksum_before_records);
    tcase_add_test(tc, test_bad_magic_and_version);
    tcase_add_test(tc, test_version_1_is_read);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_past_months_skipped);
    tcase_add_test(tc, test_callback_stops);
    tcase_add_test(tc, test_uncommitted_leaves_target);
    tcase_add_test(tc, test_bad_record_left_out);
    tcase_add_test(tc, test_one_writer_at_a_time);
    tcase_add_test(tc, test_replace_existing);
    tcase_add_test(tc, test_set_aside);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(state_suite());
}
