/*
 * Which denials deserve an error-log line: one owner refused a thousand
 * times is one business event, not a thousand errors.  A worker notes the
 * owner, the kind of denial and its period (the billing cycle for the
 * quota, the minute for the rate) in a small direct-mapped table and logs
 * only the first of each.  A slot shared by two owners is taken over by
 * the newer one, so a collision can only add lines, never hide an owner
 * for good.  Not thread-safe: one table per worker.
 */

#ifndef UG_LOGNOTE_H
#define UG_LOGNOTE_H

#include <stddef.h>
#include <stdint.h>

#define UG_LOGNOTE_SLOTS  4096

enum {
    UG_LOGNOTE_QUOTA = 0,
    UG_LOGNOTE_RATE,
    UG_LOGNOTE_KINDS
};

typedef struct {
    uint64_t   hash;
    int64_t    period[UG_LOGNOTE_KINDS];
} ug_lognote_slot_t;

typedef struct {
    ug_lognote_slot_t  slot[UG_LOGNOTE_SLOTS];
} ug_lognote_t;


/* FNV-1a over the owner: cheap, and a collision costs one log line. */
uint64_t ug_lognote_hash(const unsigned char *p, size_t len);

/*
 * 1 if this owner's denial of this kind in this period was not logged by
 * this table yet (and notes it now); 0 if it was.
 */
int ug_lognote_first(ug_lognote_t *t, uint64_t hash, unsigned kind,
    int64_t period);

#endif /* UG_LOGNOTE_H */
