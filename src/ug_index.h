/*
 * The owner index of a shared-memory zone: a hash table of owners and
 * their state that lives entirely inside one caller-given region.
 *
 * Layout (all of it in the region; no pointers are stored, only slot
 * numbers and offsets from the index's header, so the region may be
 * mapped anywhere and reattached after a reload):
 *
 *   header    one 128-byte block: sizes, counts, free list, clock hand,
 *             the hash seed
 *   buckets   64-byte cache lines of UG_INDEX_WAYS 16-bit tags and slot
 *             numbers, and an overflow count; a key is compared only
 *             when its tag matches
 *   slots     fixed-size slots, one per owner: a 16-byte head (hash,
 *             key length, flags), the caller's payload, and the first
 *             key_inline bytes of the key; a longer key continues in
 *             extra slots of the same array
 *
 * Sized once, from the region: the region holds a fixed number of slots
 * and the table has one bucket per 6 of them, so the table is never
 * more than 60% full and never grows or rehashes.  A zone's memory is
 * fixed, so the number of owners it can hold is bounded anyway; the
 * table is sized for that bound.
 *
 * A key goes to the first bucket with a free way on its probe sequence
 * (its home bucket, then the following ones); each full bucket passed
 * counts one more overflow, and a lookup stops at a bucket without
 * overflow.  No key is placed more than UG_INDEX_PROBE_MAX buckets from
 * home, which bounds every lookup (at 60%, with a keyed hash, 9 is the
 * most seen in millions of owners; a key that finds no free way within
 * the limit is refused as if the region were full).
 *
 * Eviction is a clock: a hit sets a bit in the owner's own slot, and
 * ug_index_evict() moves a hand over the slots, clearing set bits and
 * offering owners without one to the caller, which says whether each may
 * be dropped.  No other owner's memory is written on a hit.
 *
 * Slots never move while their owner is present: a payload's address is
 * stable until the owner is deleted, and a walk over the slot array
 * visits every owner present for the whole walk exactly once.
 *
 * The hash is SipHash-1-3 keyed with a per-index random seed (given at
 * creation), computed by ug_index_hash() before taking the caller's
 * lock.  User ids are chosen by clients: without a secret seed, they
 * could pick ids that all land in one bucket.
 *
 * Size: with a 32-byte payload (ug_counter_t) and 40 key bytes inline,
 * a slot is 88 bytes and an owner costs 98.7 bytes with its share of
 * the buckets: 10,626 owners per MiB.
 *
 * No locking: the caller holds its mutex around every call but
 * ug_index_hash() and ug_index_prefetch().  Every call does a bounded
 * amount of work; the bounds are given with each function.
 */

#ifndef UG_INDEX_H
#define UG_INDEX_H

#include <stddef.h>
#include <stdint.h>


#define UG_INDEX_WAYS        10    /* owners per 64-byte bucket */
#define UG_INDEX_PROBE_MAX   32    /* buckets a key may be from home */
#define UG_INDEX_SLOT_HEAD   16    /* bytes before the payload */
#define UG_INDEX_KEY_MAX     65535
#define UG_INDEX_NONE        0xffffffffu


typedef struct ug_index_s        ug_index_t;
typedef struct ug_index_entry_s  ug_index_entry_t;


typedef struct {
    size_t         payload;     /* caller's bytes per owner (zeroed on
                                   insert, 8-byte aligned) */
    size_t         key_inline;  /* key bytes kept in the owner's slot */
    size_t         key_max;     /* the longest key accepted, >= 1 */
    unsigned char  seed[16];    /* SipHash key: random per zone */
} ug_index_conf_t;


/* May this owner be dropped?  Nonzero: yes, and it is deleted.  Must
 * not call the index. */
typedef int (*ug_index_evict_pt)(void *data, ug_index_entry_t *e,
    void *payload);


/* Bytes of one slot for this configuration. */
size_t ug_index_slot_size(const ug_index_conf_t *conf);

/* Owners with keys of up to key_inline bytes that `size` bytes hold. */
size_t ug_index_capacity(size_t size, const ug_index_conf_t *conf);

/*
 * Makes an empty index in [mem, mem + size); mem need not be aligned.
 * NULL if the configuration is invalid or the region holds no owner.
 * Writes the header and the buckets only (about 1/11 of the region):
 * slots are taken in order as owners arrive.
 */
ug_index_t *ug_index_init(void *mem, size_t size,
    const ug_index_conf_t *conf);

/*
 * The index that ug_index_init() made in this region (a reload that kept
 * the mapping), or NULL if there is none or it was made with another
 * payload, key_inline or key_max.  The seed is the index's own.
 */
ug_index_t *ug_index_attach(void *mem, size_t size,
    const ug_index_conf_t *conf);

/* SipHash-1-3 of the key under the index's seed.  No lock needed. */
uint64_t ug_index_hash(const ug_index_t *ix, const void *key, size_t len);

/* SipHash-c-d with a 16-byte key (c = 1, d = 3 for the index). */
uint64_t ug_siphash(const unsigned char key[16], const void *data,
    size_t len, int c, int d);

/*
 * Starts loading the key's home bucket into the cache: for use after
 * ug_index_hash() and before taking the lock, so that the likely miss
 * overlaps the wait.  Reads only what never changes; no lock needed.
 */
void ug_index_prefetch(const ug_index_t *ix, uint64_t hash);

/*
 * The owner with this key, its clock bit set, or NULL.  At most
 * UG_INDEX_PROBE_MAX buckets and one key comparison per matching tag.
 */
ug_index_entry_t *ug_index_find(ug_index_t *ix, uint64_t hash,
    const void *key, size_t len);

/*
 * The owner with this key (clock bit set, *created = 0), or a new one
 * with a zeroed payload (clock bit clear, *created = 1).  NULL, with
 * nothing changed, if len is 0 or over key_max, or there is no room:
 * too few free slots (ug_index_slots_for()), or no free way within
 * UG_INDEX_PROBE_MAX buckets.  Bounded as ug_index_find() plus the
 * slots of one key.
 */
ug_index_entry_t *ug_index_insert(ug_index_t *ix, uint64_t hash,
    const void *key, size_t len, int *created);

/* Deletes an owner (one that find, insert or next returned and that is
 * still present); its slots are free again.  At most PROBE_MAX buckets
 * plus the key's slots. */
void ug_index_delete(ug_index_t *ix, ug_index_entry_t *e);

/*
 * The clock: moves the hand over up to `steps` slots, until owners
 * holding `want` slots have been dropped.  An owner with its bit set
 * has it cleared and is passed; one without is offered to may_drop.
 * Returns the slots freed.  At most `steps` slots and deletions.
 */
size_t ug_index_evict(ug_index_t *ix, size_t steps, size_t want,
    ug_index_evict_pt may_drop, void *data);

/*
 * A walk in slot order: the first owner at or after *cursor (start at
 * 0) within `steps` slots, with *cursor moved past it; or NULL, with
 * *cursor moved past the slots looked at.  The walk is over when
 * ug_index_walk_done().  Owners present for the whole walk are seen
 * exactly once, whatever is inserted or deleted between calls; owners
 * inserted or deleted meanwhile may or may not be.
 */
ug_index_entry_t *ug_index_next(ug_index_t *ix, uint32_t *cursor,
    size_t steps);

int ug_index_walk_done(const ug_index_t *ix, uint32_t cursor);

/* The caller's payload bytes of an owner (8-byte aligned). */
void *ug_index_payload(ug_index_entry_t *e);

size_t ug_index_key_len(const ug_index_entry_t *e);

/* Copies the key into buf (key_max bytes); returns its length. */
size_t ug_index_key(const ug_index_t *ix, const ug_index_entry_t *e,
    void *buf);

/* Slots an owner with a key of len bytes takes. */
size_t ug_index_slots_for(const ug_index_t *ix, size_t len);

size_t ug_index_count(const ug_index_t *ix);       /* owners */
size_t ug_index_slots(const ug_index_t *ix);       /* all slots */
size_t ug_index_slots_free(const ug_index_t *ix);

#endif /* UG_INDEX_H */
