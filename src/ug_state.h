/*
 * The state file: the zone's counters on disk, so that a restart, an
 * upgrade or a reload that resizes the zone loses no usage.
 *
 * Format, version 2.  Every integer is little-endian and is encoded and
 * decoded byte by byte, never by dumping a struct: the file must read
 * back the same after a compiler, an architecture or a padding change.
 *
 *   header   8  magic  89 'U' 'G' 'S' 0d 0a 1a 0a
 *            4  version (2; version 1 files are read too)
 *            4  flags (0; a reader refuses anything else)
 *            8  written_at, unix seconds (signed)
 *            1  salt_len, 0..64
 *            n  salt
 *   record   1  tag 'R'
 *            1  owner_len, 1..128
 *            n  owner (as ug_id_check accepts it)
 *            4  month          (signed, a ug_month_index)
 *            8  month_used
 *            8  tat_us
 *            4  minute         (unix minute)
 *            4  minute_used
 *            8  unsynced       (signed: usage not yet written through)
 *            8  synced_base    (the count the store last confirmed)
 *            4  notify_cycle   (signed, a ug_cycle_t id)   version 2 only
 *            4  notify_sent    (thresholds notified in it) version 2 only
 *   write    1  tag 'W', optional, right after its owner's 'R' record:
 *               a store write whose outcome is not known yet, to be
 *               settled (applied at most once) after the next start
 *            4  month          (signed, the month the write is for)
 *            8  delta          (signed, non-zero: the units it adds)
 *            8  seq            (1..2^63-1: its sequence for the writer)
 *           16  writer         (lowercase hex digits)
 *   end      1  tag 'E'
 *            8  number of 'R' records
 *           32  SHA-256 of every byte before it
 *
 * A version 1 file's records end at synced_base and it has no 'W'
 * records; they load with no notification marks (none sent), so an
 * upgrade reads the last file the previous build wrote.
 *
 * Why this shape:
 * - The magic follows PNG's: the high byte catches 7-bit transfers, the
 *   CR LF and LF catch newline conversion, and no text file or older
 *   state file starts with it, so a foreign file is named as such.
 * - The version comes right after the magic and is checked before
 *   anything else; a reader never guesses at a layout it does not know.
 * - Records are tagged and streamed, and the count comes at the end: the
 *   writer walks the zone in short chunks under its lock and does not
 *   know the count up front, and needs no seek.  The end tag and the
 *   count tell a clean end from a stream cut short.
 * - Owners are length-prefixed: ids are at most 128 bytes, so nothing
 *   scans for delimiters and every length is checked against a bound.
 * - SHA-256 rather than a CRC: the file is billing data, libcrypto is
 *   already linked, and hashing the file once per start costs little
 *   (a 10 MB zone's file is a few MB).  Every torn write, truncation or
 *   flipped bit is caught, and the whole file is verified before any
 *   record is handed to the caller, so a bad file is never half-loaded.
 *
 * Writes go to "<path>.tmp", are fsync()ed and renamed over <path>, and
 * the directory is fsync()ed: a crash leaves the old file or the new
 * one, never a mix.  One writer at a time per path: the caller's lock
 * says whose turn it is, and an flock() on the temporary file, held
 * until the rename, makes a second writer fail rather than truncate the
 * first one's file.
 */

#ifndef UG_STATE_H
#define UG_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "ug_decide.h"
#include "ug_identity.h"


#define UG_STATE_VERSION    2
#define UG_STATE_SALT_MAX   64
#define UG_STATE_OWNER_MAX  UG_OWNER_MAX

/* The writer of a 'W' record: this many lowercase hex digits. */
#define UG_STATE_WRITER_LEN 16

/* The largest file ug_state_load reads: far more than any zone holds. */
#define UG_STATE_FILE_MAX   (1024 * 1024 * 1024)

/*
 * month_used, synced_base and |unsynced| above this are refused: no real
 * count comes near it, and it keeps `used + cost` far from overflow.
 */
#define UG_STATE_VALUE_MAX  (1ULL << 62)

/* Room for "<path>.bad-<time>" beyond the length of path, with the NUL. */
#define UG_STATE_ASIDE_EXTRA  32

enum {
    UG_STATE_OK = 0,
    UG_STATE_MISSING,        /* no file: a first start */
    UG_STATE_CORRUPT,        /* truncated, foreign, damaged: set it aside */
    UG_STATE_IO,             /* the system refused: permissions, disk */
    UG_STATE_STOPPED         /* the callback asked to stop */
};


/*
 * A write to the store whose outcome is not known (the answer was lost):
 * kept so that it is settled, applied at most once, rather than sent
 * again as a new one.  seq 0: none.
 */
typedef struct {
    int32_t               month;
    int64_t               delta;
    uint64_t              seq;
    char                  writer[UG_STATE_WRITER_LEN];
} ug_state_write_t;


typedef struct {
    const unsigned char  *owner;        /* not NUL-terminated */
    size_t                owner_len;    /* 1..UG_STATE_OWNER_MAX */
    ug_counter_t          counter;
    int64_t               unsynced;     /* DynamoDB: not yet written */
    uint64_t              synced_base;  /* DynamoDB: last confirmed */
    /* usage_gate_notify: the thresholds sent (bit i for the i-th) in
     * cycle notify_cycle; 0 and 0 from a version 1 file */
    int32_t               notify_cycle;
    uint32_t              notify_sent;
    ug_state_write_t      write;        /* DynamoDB: to settle ('W') */
} ug_state_record_t;


typedef struct ug_state_writer_s  ug_state_writer_t;


/*
 * Starts a new state file at "<path>.tmp" (mode 0600: it holds the
 * salt), truncating a leftover one.  Returns NULL with err filled on
 * failure; errno is EWOULDBLOCK when another process is writing the same
 * file (a writer at shutdown may wait and try again: its counts are the
 * newer ones).
 */
ug_state_writer_t *ug_state_open_write(const char *path,
    const unsigned char *salt, size_t salt_len, int64_t now, char *err,
    size_t err_size);

/*
 * Appends a record (buffered), and its 'W' record when rec->write.seq is
 * not 0.  Returns UG_STATE_OK; UG_STATE_CORRUPT for a record the reader
 * would refuse (an owner ug_id_check refuses, a count above
 * UG_STATE_VALUE_MAX, a write with a zero delta, a seq above 2^63-1 or a
 * writer that is not lowercase hex), which is left out while the writer
 * goes on; or UG_STATE_IO, after which every call fails and
 * ug_state_commit reports the error.
 */
int ug_state_write_record(ug_state_writer_t *w, const ug_state_record_t *rec);

/*
 * Finishes the file: end marker and checksum, fsync, rename over path,
 * fsync of the directory.  Frees w whatever the result.  On a failure
 * up to the rename the temporary file is removed and path is left as it
 * was; a failure after it (close, the directory's fsync) is reported
 * with the new file in place.
 */
int ug_state_commit(ug_state_writer_t *w, char *err, size_t err_size);

/* Gives up: removes the temporary file and frees w.  NULL is fine. */
void ug_state_abort(ug_state_writer_t *w);

/* Records written so far. */
uint64_t ug_state_writer_records(const ug_state_writer_t *w);


/*
 * Parses a whole state file held in memory.  The file is checked end to
 * end first (structure, bounds, checksum); only then is cb called, once
 * per record whose month is not before current_month (INT32_MIN loads
 * every month).  cb returns 0 to go on, anything else to stop
 * (UG_STATE_STOPPED).  salt, if not NULL, receives the salt and must
 * hold UG_STATE_SALT_MAX bytes; salt_len, if not NULL, its length.
 * Returns UG_STATE_OK or UG_STATE_CORRUPT with err saying what is wrong.
 */
int ug_state_parse(const unsigned char *buf, size_t len,
    int32_t current_month,
    int (*cb)(void *data, const ug_state_record_t *rec), void *data,
    unsigned char *salt, size_t *salt_len, char *err, size_t err_size);

/*
 * Reads path (a regular file of at most UG_STATE_FILE_MAX bytes) and
 * parses it as ug_state_parse does.  UG_STATE_MISSING when it does not
 * exist; UG_STATE_IO when it cannot be read.
 */
int ug_state_load(const char *path, int32_t current_month,
    int (*cb)(void *data, const ug_state_record_t *rec), void *data,
    unsigned char *salt, size_t *salt_len, char *err, size_t err_size);

/*
 * Moves a bad state file out of the way, to "<path>.bad-<now>", and
 * writes that name to newpath (size bytes: strlen(path) +
 * UG_STATE_ASIDE_EXTRA is enough).  Returns UG_STATE_OK or UG_STATE_IO
 * (errno set).
 */
int ug_state_set_aside(const char *path, int64_t now, char *newpath,
    size_t size);

/* A word for a UG_STATE_* code, for logs. */
const char *ug_state_strerror(int rc);

#endif /* UG_STATE_H */
