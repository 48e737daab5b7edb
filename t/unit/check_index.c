/*
 * The owner index: insert, find, delete; colliding hashes and the probe
 * limit; a full region; the clock and the caller's veto; walks while
 * owners come and go; long keys; randomized workloads against a plain
 * array; and a printed comparison with a binary tree at 1M owners.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ug_check.h"
#include "ug_index.h"


#define PAYLOAD   32          /* an owner's counter */
#define INLINE    40
#define KEY_MAX   128


typedef struct {
    uint64_t   value;         /* what the tests keep in the payload */
    uint64_t   keep;          /* nonzero: may not be evicted */
    uint64_t   pad[2];
} payload_t;


static ug_index_conf_t
conf_of(size_t payload, size_t key_inline, size_t key_max)
{
    ug_index_conf_t  conf;
    size_t           i;

    memset(&conf, 0, sizeof(conf));
    conf.payload = payload;
    conf.key_inline = key_inline;
    conf.key_max = key_max;

    for (i = 0; i < sizeof(conf.seed); i++) {
        conf.seed[i] = (unsigned char) (0x3c + 7 * i);
    }

    return conf;
}


/* An index in a canary-guarded buffer, deliberately not 64-aligned. */
static ug_index_t *
make(char **buf, size_t size, size_t key_max)
{
    ug_index_t       *ix;
    ug_index_conf_t   conf;

    conf = conf_of(PAYLOAD, INLINE, key_max);
    *buf = ug_canary_buf(size);
    ix = ug_index_init(*buf + 8, size - 8, &conf);
    ck_assert_ptr_nonnull(ix);

    return ix;
}


static void
unmake(char *buf, size_t size)
{
    ck_assert_msg(ug_canary_ok(buf, size), "wrote outside the region");
    ug_canary_free(buf);
}


static uint64_t
rnd(uint64_t *state)
{
    uint64_t  x;

    x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;

    return x;
}


static size_t
key_of(char *buf, uint32_t n)
{
    return (size_t) sprintf(buf, "user:%08" PRIu32, n);
}


static ug_index_entry_t *
put(ug_index_t *ix, uint64_t hash, const char *key, size_t len)
{
    int  created;

    return ug_index_insert(ix, hash, key, len, &created);
}


static ug_index_entry_t *
find_n(ug_index_t *ix, uint32_t n)
{
    char    key[64];
    size_t  len;

    len = key_of(key, n);

    return ug_index_find(ix, ug_index_hash(ix, key, len), key, len);
}


static int
drop_all(void *data, ug_index_entry_t *e, void *payload)
{
    (void) data;
    (void) e;
    (void) payload;

    return 1;
}


START_TEST(test_sizes)
{
    char             small[256];
    size_t           cap, cap_ddb, slot;
    ug_index_conf_t  conf;

    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    slot = ug_index_slot_size(&conf);
    ck_assert_uint_eq(slot, 88);

    cap = ug_index_capacity(1 << 20, &conf);

    /* the rbtree zone: 128-byte slab chunks for owners up to 40 bytes,
     * about 8,064 in 1m; at most 130 bytes per owner of up to 32 */
    ck_assert_uint_ge(cap, 8064);
    ck_assert_uint_le((1 << 20) / cap, 130);

    conf = conf_of(PAYLOAD + 64, INLINE, KEY_MAX);
    cap_ddb = ug_index_capacity(1 << 20, &conf);

    printf("index: %zu-byte slots, %zu owners per MiB (%.1f bytes each); "
           "with 64 more bytes per owner: %zu per MiB\n",
           slot, cap,
           (double) (1 << 20) / cap, cap_ddb);

    /* no room, no index; bad limits are refused */
    ck_assert_ptr_null(ug_index_init(small, sizeof(small), &conf));
    conf = conf_of(PAYLOAD, INLINE, 0);
    ck_assert_uint_eq(ug_index_capacity(1 << 20, &conf), 0);
    conf = conf_of(PAYLOAD, 80, 60);
    ck_assert_uint_eq(ug_index_capacity(1 << 20, &conf), 0);
}
END_TEST


START_TEST(test_siphash_vectors)
{
    unsigned char    key[16], msg[64];
    uint64_t         h;
    char            *buf;
    size_t           i;
    ug_index_t      *ix;
    ug_index_conf_t  conf;

    for (i = 0; i < 16; i++) {
        key[i] = (unsigned char) i;
    }

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (unsigned char) i;
    }

    /* SipHash-2-4 reference vectors (the paper's key 00..0f, message
     * 00..len-1) */
    ck_assert_uint_eq(ug_siphash(key, msg, 0, 2, 4), 0x726fdb47dd0e0e31ULL);
    ck_assert_uint_eq(ug_siphash(key, msg, 15, 2, 4), 0xa129ca6149be45e5ULL);

    /* the index hashes with SipHash-1-3 under its own seed */
    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    buf = ug_canary_buf(4096);
    ix = ug_index_init(buf, 4096, &conf);
    ck_assert_ptr_nonnull(ix);

    h = ug_index_hash(ix, "user:1", 6);
    ck_assert_uint_eq(h, ug_siphash(conf.seed, "user:1", 6, 1, 3));
    ck_assert_uint_ne(h, ug_siphash(key, "user:1", 6, 1, 3));
    ck_assert_uint_ne(h, ug_index_hash(ix, "user:2", 6));

    unmake(buf, 4096);
}
END_TEST


START_TEST(test_insert_find_delete)
{
    int                created;
    char               key[64], out[KEY_MAX];
    char              *buf;
    size_t             len;
    uint32_t           i;
    payload_t         *pl;
    ug_index_t        *ix;
    ug_index_entry_t  *e, *again;

    ix = make(&buf, 64 * 1024, KEY_MAX);

    for (i = 0; i < 100; i++) {
        len = key_of(key, i);
        e = ug_index_insert(ix, ug_index_hash(ix, key, len), key, len,
                            &created);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(created, 1);

        pl = ug_index_payload(e);
        ck_assert_uint_eq(pl->value, 0);
        ck_assert_uint_eq((uintptr_t) pl % 8, 0);
        pl->value = 1000 + i;
    }

    ck_assert_uint_eq(ug_index_count(ix), 100);

    for (i = 0; i < 100; i++) {
        len = key_of(key, i);
        e = ug_index_find(ix, ug_index_hash(ix, key, len), key, len);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(((payload_t *) ug_index_payload(e))->value,
                          1000 + i);
        ck_assert_uint_eq(ug_index_key(ix, e, out), len);
        ck_assert_mem_eq(out, key, len);

        /* inserting it again is the same owner */
        again = ug_index_insert(ix, ug_index_hash(ix, key, len), key, len,
                                &created);
        ck_assert_ptr_eq(again, e);
        ck_assert_int_eq(created, 0);
    }

    /* a prefix, or a longer key, is another owner */
    ck_assert_ptr_null(ug_index_find(ix, ug_index_hash(ix, "user:0000000", 12),
                                     "user:0000000", 12));

    for (i = 0; i < 100; i += 2) {
        len = key_of(key, i);
        e = ug_index_find(ix, ug_index_hash(ix, key, len), key, len);
        ug_index_delete(ix, e);
    }

    ck_assert_uint_eq(ug_index_count(ix), 50);

    for (i = 0; i < 100; i++) {
        len = key_of(key, i);
        e = ug_index_find(ix, ug_index_hash(ix, key, len), key, len);

        if (i % 2) {
            ck_assert_ptr_nonnull(e);
            ck_assert_uint_eq(((payload_t *) ug_index_payload(e))->value,
                              1000 + i);
        } else {
            ck_assert_ptr_null(e);
        }
    }

    /* a deleted owner comes back with a zeroed payload */
    len = key_of(key, 4);
    e = ug_index_insert(ix, ug_index_hash(ix, key, len), key, len, &created);
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(((payload_t *) ug_index_payload(e))->value, 0);

    /* empty and overlong keys are refused */
    memset(out, 'x', sizeof(out));
    ck_assert_ptr_null(ug_index_insert(ix, 1, out, 0, &created));
    ck_assert_ptr_null(ug_index_insert(ix, 1, out, KEY_MAX + 1, &created));
    ck_assert_uint_eq(ug_index_count(ix), 51);

    unmake(buf, 64 * 1024);
}
END_TEST


/*
 * Every key has the same hash: one home bucket, then its neighbours; at
 * most UG_INDEX_PROBE_MAX buckets' worth, then no room although slots
 * are free.
 */
START_TEST(test_collisions)
{
    char               key[64];
    char              *buf;
    size_t             len, limit;
    uint32_t           i, r;
    ug_index_t        *ix;
    ug_index_entry_t  *e;

    ix = make(&buf, 256 * 1024, KEY_MAX);
    limit = UG_INDEX_PROBE_MAX * UG_INDEX_WAYS;
    ck_assert_uint_gt(ug_index_slots(ix), limit + 100);

    for (i = 0; i < limit; i++) {
        len = key_of(key, i);
        e = put(ix, 0x1234567800abcdefULL, key, len);
        ck_assert_ptr_nonnull(e);
        ((payload_t *) ug_index_payload(e))->value = i;
    }

    len = key_of(key, (uint32_t) limit);
    ck_assert_ptr_null(put(ix, 0x1234567800abcdefULL, key, len));
    ck_assert_uint_eq(ug_index_count(ix), limit);

    /* other hashes still find room */
    ck_assert_ptr_nonnull(put(ix, 0x9999999900000001ULL, "other", 5));

    /* same bucket, same tag, same key, another hash: not that owner */
    ck_assert_ptr_null(ug_index_find(ix, 0x1234567811abcdefULL,
                                     "user:00000001", 13));

    for (i = 0; i < limit; i++) {
        len = key_of(key, i);
        e = ug_index_find(ix, 0x1234567800abcdefULL, key, len);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(((payload_t *) ug_index_payload(e))->value, i);
    }

    /* deleting from the home bucket makes room for one more */
    len = key_of(key, 3);
    ug_index_delete(ix, ug_index_find(ix, 0x1234567800abcdefULL, key, len));
    len = key_of(key, (uint32_t) limit);
    ck_assert_ptr_nonnull(put(ix, 0x1234567800abcdefULL, key, len));

    /* deleting them all, far ones first, leaves the others findable */
    for (i = (uint32_t) limit; i != (uint32_t) -1; i--) {
        if (i == 3) {
            continue;
        }

        len = key_of(key, i);
        e = ug_index_find(ix, 0x1234567800abcdefULL, key, len);
        ck_assert_ptr_nonnull(e);
        ug_index_delete(ix, e);
    }

    ck_assert_uint_eq(ug_index_count(ix), 1);
    ck_assert_ptr_nonnull(ug_index_find(ix, 0x9999999900000001ULL, "other",
                                        5));
    ck_assert_uint_eq(ug_index_slots_free(ix), ug_index_slots(ix) - 1);

    /* one bucket overflowing and emptying, again and again (more times
     * than a 16-bit count holds): the displaced key is always found */
    for (r = 0; r < 70000; r++) {
        for (i = 0; i <= UG_INDEX_WAYS; i++) {
            len = key_of(key, i);
            ug_expect(put(ix, 0x4444444400000777ULL, key, len) != NULL,
                      "round %u: insert %u", r, i);
        }

        len = key_of(key, UG_INDEX_WAYS);
        e = ug_index_find(ix, 0x4444444400000777ULL, key, len);
        ug_expect(e != NULL, "round %u: the displaced key is lost", r);

        for (i = 0; i <= UG_INDEX_WAYS; i++) {
            len = key_of(key, i);
            ug_index_delete(ix, ug_index_find(ix, 0x4444444400000777ULL, key,
                                              len));
        }
    }

    ck_assert_uint_eq(ug_index_count(ix), 1);

    unmake(buf, 256 * 1024);
}
END_TEST


/*
 * Hash flooding: keys chosen to share a home bucket under one seed fill
 * at most UG_INDEX_PROBE_MAX buckets there (the rest are refused, and a
 * lookup still ends within the limit); under another seed they spread
 * and all fit.
 */
START_TEST(test_seed_defeats_crafted_keys)
{
    char              *buf_a, *buf_b, (*keys)[32];
    size_t            *lens, n, i, in_a, in_b, size;
    uint32_t           k;
    ug_index_t        *a, *b;
    ug_index_conf_t    conf;

    size = 128 * 1024;                  /* well under 4096 buckets */
    n = UG_INDEX_PROBE_MAX * UG_INDEX_WAYS + 30;

    a = make(&buf_a, size, KEY_MAX);
    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    conf.seed[5] ^= 0x80;
    buf_b = ug_canary_buf(size);
    b = ug_index_init(buf_b, size, &conf);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_ge(ug_index_slots(a), n);

    keys = malloc(n * sizeof(*keys));
    lens = malloc(n * sizeof(size_t));

    /* the top 12 bits of the hash zero: home bucket 0 under seed a */
    for (i = 0, k = 0; i < n; k++) {
        lens[i] = key_of(keys[i], k);
        if (ug_index_hash(a, keys[i], lens[i]) >> 52 == 0) {
            i++;
        }
    }

    in_a = 0;
    in_b = 0;

    for (i = 0; i < n; i++) {
        in_a += put(a, ug_index_hash(a, keys[i], lens[i]), keys[i], lens[i])
                != NULL;
        in_b += put(b, ug_index_hash(b, keys[i], lens[i]), keys[i], lens[i])
                != NULL;
    }

    ck_assert_uint_eq(in_a, UG_INDEX_PROBE_MAX * UG_INDEX_WAYS);
    ck_assert_uint_eq(in_b, n);

    /* the flooded index still serves other owners */
    ck_assert_ptr_nonnull(put(a, ug_index_hash(a, "org:acme", 8), "org:acme",
                              8));

    free(keys);
    free(lens);
    unmake(buf_a, size);
    unmake(buf_b, size);
}
END_TEST


/* Filled with random hashes, every slot is used: the probe limit is not
 * what stops a table 60% full of its ways. */
START_TEST(test_full)
{
    char               key[64];
    char              *buf;
    size_t             len, n, size;
    uint32_t           i;
    uint64_t           h;
    ug_index_t        *ix;
    ug_index_entry_t  *e;

    size = 4 * 1024 * 1024;
    ix = make(&buf, size, KEY_MAX);
    n = ug_index_slots(ix);

    for (i = 0; i < n; i++) {
        len = key_of(key, i);
        ug_expect(put(ix, ug_index_hash(ix, key, len), key, len) != NULL,
                  "owner %u of %zu refused", i, n);
    }

    ck_assert_uint_eq(ug_index_count(ix), n);
    ck_assert_uint_eq(ug_index_slots_free(ix), 0);

    len = key_of(key, (uint32_t) n);
    h = ug_index_hash(ix, key, len);
    ck_assert_ptr_null(put(ix, h, key, len));
    ck_assert_ptr_null(ug_index_find(ix, h, key, len));

    /* an owner already there is still found and counted */
    len = key_of(key, 7);
    ck_assert_ptr_nonnull(put(ix, ug_index_hash(ix, key, len), key, len));

    /* room again after one delete */
    e = ug_index_find(ix, ug_index_hash(ix, key, len), key, len);
    ug_index_delete(ix, e);
    len = key_of(key, (uint32_t) n);
    ck_assert_ptr_nonnull(put(ix, h, key, len));
    ck_assert_uint_eq(ug_index_count(ix), n);

    unmake(buf, size);
}
END_TEST


START_TEST(test_long_keys)
{
    char               key[KEY_MAX], other[KEY_MAX], out[KEY_MAX];
    char              *buf;
    size_t             free0, need, i;
    uint32_t           cursor;
    ug_index_t        *ix;
    ug_index_entry_t  *e, *w;

    ix = make(&buf, 64 * 1024, KEY_MAX);
    free0 = ug_index_slots_free(ix);

    for (i = 0; i < KEY_MAX; i++) {
        key[i] = (char) ('a' + i % 26);
    }

    memcpy(other, key, KEY_MAX);
    other[KEY_MAX - 1] = '#';

    need = ug_index_slots_for(ix, KEY_MAX);
    ck_assert_uint_eq(need, 3);                   /* 40 + 72 + 16 */
    ck_assert_uint_eq(ug_index_slots_for(ix, INLINE), 1);
    ck_assert_uint_eq(ug_index_slots_for(ix, INLINE + 1), 2);

    /* the same hash for both: only the last byte tells them apart */
    e = put(ix, 42, key, KEY_MAX);
    ck_assert_ptr_nonnull(e);
    ((payload_t *) ug_index_payload(e))->value = 7;
    ck_assert_uint_eq(ug_index_slots_free(ix), free0 - need);

    ck_assert_ptr_null(ug_index_find(ix, 42, other, KEY_MAX));
    ck_assert_ptr_eq(ug_index_find(ix, 42, key, KEY_MAX), e);
    ck_assert_uint_eq(ug_index_key_len(e), KEY_MAX);
    ck_assert_uint_eq(ug_index_key(ix, e, out), KEY_MAX);
    ck_assert_mem_eq(out, key, KEY_MAX);

    ck_assert_ptr_nonnull(put(ix, 42, other, KEY_MAX));
    ck_assert_ptr_nonnull(put(ix, 43, key, 41));
    ck_assert_ptr_nonnull(put(ix, 44, key, 89));
    ck_assert_uint_eq(ug_index_count(ix), 4);

    /* a walk sees owners only, not the slots holding their keys' rest */
    cursor = 0;
    i = 0;

    while (!ug_index_walk_done(ix, cursor)) {
        w = ug_index_next(ix, &cursor, 3);
        if (w) {
            ck_assert_uint_ge(ug_index_key_len(w), 41);
            i++;
        }
    }

    ck_assert_uint_eq(i, 4);

    ug_index_delete(ix, e);
    ck_assert_ptr_nonnull(ug_index_find(ix, 42, other, KEY_MAX));
    ck_assert_ptr_null(ug_index_find(ix, 42, key, KEY_MAX));
    ck_assert_uint_eq(ug_index_slots_free(ix), free0 - need - 2 - 2);

    e = ug_index_find(ix, 44, key, 89);
    ck_assert_uint_eq(ug_index_key(ix, e, out), 89);
    ck_assert_mem_eq(out, key, 89);

    unmake(buf, 64 * 1024);
}
END_TEST


static int
drop_unless_kept(void *data, ug_index_entry_t *e, void *payload)
{
    size_t  *asked = data;

    (void) e;
    (*asked)++;

    return ((payload_t *) payload)->keep == 0;
}


/* The clock: owners hit since the hand passed get a second chance. */
START_TEST(test_clock_order)
{
    char               key[64];
    char              *buf;
    size_t             len, freed, asked;
    uint32_t           i;
    ug_index_t        *ix;

    ix = make(&buf, 64 * 1024, KEY_MAX);

    for (i = 0; i < 6; i++) {
        len = key_of(key, i);
        ck_assert_ptr_nonnull(put(ix, ug_index_hash(ix, key, len), key,
                                  len));
    }

    /* hits on 1 and 3 */
    ck_assert_ptr_nonnull(find_n(ix, 1));
    ck_assert_ptr_nonnull(find_n(ix, 3));

    /* the hand from slot 0: drops 0, clears 1, drops 2, clears 3,
     * drops 4 */
    asked = 0;
    freed = ug_index_evict(ix, 100, 3, drop_unless_kept, &asked);
    ck_assert_uint_eq(freed, 3);
    ck_assert_uint_eq(asked, 3);

    for (i = 0; i < 6; i++) {
        ug_expect((find_n(ix, i) != NULL) == (i == 1 || i == 3 || i == 5),
                  "owner %u after the first sweep", i);
    }

    /* those finds hit 1, 3 and 5 again.  Three steps: 5 (cleared), slot
     * 0 (free), 1 (cleared): nothing freed */
    freed = ug_index_evict(ix, 3, 1, drop_all, NULL);
    ck_assert_uint_eq(freed, 0);

    /* on from slot 2: 3 is cleared, and 5, whose bit went first, goes */
    freed = ug_index_evict(ix, 100, 1, drop_all, NULL);
    ck_assert_uint_eq(freed, 1);
    ck_assert_uint_eq(ug_index_count(ix), 2);
    ck_assert_ptr_null(find_n(ix, 5));
    ck_assert_ptr_nonnull(find_n(ix, 1));
    ck_assert_ptr_nonnull(find_n(ix, 3));

    /* bounded: two steps (slot 0 free, 1 hit) free nothing */
    freed = ug_index_evict(ix, 2, 1, drop_all, NULL);
    ck_assert_uint_eq(freed, 0);
    ck_assert_uint_eq(ug_index_count(ix), 2);

    unmake(buf, 64 * 1024);
}
END_TEST


/* The caller's veto: kept owners stay; the sweep is bounded by steps. */
START_TEST(test_predicate_refuses)
{
    char               key[64];
    char              *buf;
    size_t             len, freed, asked;
    uint32_t           i;
    ug_index_t        *ix;
    ug_index_entry_t  *e;

    ix = make(&buf, 64 * 1024, KEY_MAX);

    for (i = 0; i < 40; i++) {
        len = key_of(key, i);
        e = put(ix, ug_index_hash(ix, key, len), key, len);
        ((payload_t *) ug_index_payload(e))->keep = (i % 10 != 0);
    }

    asked = 0;
    freed = ug_index_evict(ix, 1000, 100, drop_unless_kept, &asked);
    ck_assert_uint_eq(freed, 4);
    ck_assert_uint_le(asked, 1000);
    ck_assert_uint_eq(ug_index_count(ix), 36);

    for (i = 0; i < 40; i++) {
        len = key_of(key, i);
        ug_expect((ug_index_find(ix, ug_index_hash(ix, key, len), key, len)
                   != NULL) == (i % 10 != 0), "owner %u", i);
    }

    /* all refuse: nothing freed, no more than `steps` questions */
    asked = 0;
    freed = ug_index_evict(ix, 25, 1, drop_unless_kept, &asked);
    ck_assert_uint_eq(freed, 0);
    ck_assert_uint_le(asked, 25);
    ck_assert_uint_eq(ug_index_count(ix), 36);

    unmake(buf, 64 * 1024);
}
END_TEST


/*
 * A walk in small batches while owners are deleted and inserted between
 * batches: each owner present throughout is seen once; nothing is seen
 * that was not present when the batch ran.
 */
START_TEST(test_walk_under_churn)
{
    char               key[64], out[KEY_MAX];
    char              *buf;
    size_t             len, size;
    uint32_t           i, n, cursor, next_new, k;
    uint64_t           st;
    uint8_t           *seen, *stable, *present;
    ug_index_t        *ix;
    ug_index_entry_t  *e;

    size = 1024 * 1024;
    ix = make(&buf, size, KEY_MAX);
    n = 3000;

    seen = calloc(4 * n, 1);
    stable = calloc(4 * n, 1);
    present = calloc(4 * n, 1);

    for (i = 0; i < n; i++) {
        len = key_of(key, i);
        ck_assert_ptr_nonnull(put(ix, ug_index_hash(ix, key, len), key,
                                  len));
        present[i] = 1;
        stable[i] = (i % 3 != 0);      /* every third may be deleted */
    }

    st = 0x2545f4914f6cdd1dULL;
    cursor = 0;
    next_new = n;

    while (!ug_index_walk_done(ix, cursor)) {
        e = ug_index_next(ix, &cursor, 1 + rnd(&st) % 7);

        if (e) {
            ck_assert_uint_eq(ug_index_key(ix, e, out), 13);
            out[13] = '\0';
            k = (uint32_t) strtoul(out + 5, NULL, 10);
            ug_expect(present[k], "owner %u seen while absent", k);
            ug_expect(!seen[k], "owner %u seen twice", k);
            seen[k] = 1;
        }

        /* churn: delete an unstable owner, add a new one */
        k = (uint32_t) (rnd(&st) % n / 3 * 3);
        if (present[k]) {
            len = key_of(key, k);
            ug_index_delete(ix, ug_index_find(ix, ug_index_hash(ix, key, len),
                                              key, len));
            present[k] = 0;
        }

        if (next_new < 4 * n && rnd(&st) % 2) {
            len = key_of(key, next_new);
            ck_assert_ptr_nonnull(put(ix, ug_index_hash(ix, key, len), key,
                                      len));
            present[next_new++] = 1;
        }
    }

    for (i = 0; i < n; i++) {
        if (stable[i]) {
            ug_expect(seen[i], "owner %u present throughout was missed", i);
        }
    }

    free(seen);
    free(stable);
    free(present);
    unmake(buf, size);
}
END_TEST


START_TEST(test_attach)
{
    char              *buf;
    size_t             size;
    ug_index_t        *ix, *again;
    ug_index_conf_t    conf;
    ug_index_entry_t  *e;

    size = 64 * 1024;
    ix = make(&buf, size, KEY_MAX);
    e = put(ix, ug_index_hash(ix, "org:acme", 8), "org:acme", 8);
    ((payload_t *) ug_index_payload(e))->value = 99;

    /* the seed comes from the region, not from the new configuration */
    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    conf.seed[0] ^= 1;
    again = ug_index_attach(buf + 8, size - 8, &conf);
    ck_assert_ptr_eq(again, ix);
    e = ug_index_find(again, ug_index_hash(again, "org:acme", 8), "org:acme",
                      8);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(((payload_t *) ug_index_payload(e))->value, 99);

    conf = conf_of(PAYLOAD + 8, INLINE, KEY_MAX);
    ck_assert_ptr_null(ug_index_attach(buf + 8, size - 8, &conf));
    conf = conf_of(PAYLOAD, INLINE, 64);
    ck_assert_ptr_null(ug_index_attach(buf + 8, size - 8, &conf));
    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    ck_assert_ptr_null(ug_index_attach(buf + 8, size / 2, &conf));

    memset(buf, 0, size);
    ck_assert_ptr_null(ug_index_attach(buf + 8, size - 8, &conf));

    unmake(buf, size);
}
END_TEST


/*
 * Randomized workloads against a reference model (an array of keys).
 * weak: a hash of the first byte only, so most keys collide.
 */

#define MODEL_KEYS  1500

typedef struct {
    char       key[KEY_MAX];
    size_t     len;
    int        present;
    uint64_t   value;
    int        keep;
} model_t;


typedef struct {
    model_t   *m;
    size_t     n;
    size_t     dropped;
} model_ctx_t;


static uint64_t
test_hash(ug_index_t *ix, int weak, const char *key, size_t len)
{
    if (weak) {
        return 0x0101010100000000ULL * (unsigned char) key[0] + 0x77;
    }

    return ug_index_hash(ix, key, len);
}


static model_t *
model_find(model_ctx_t *mc, const char *key, size_t len)
{
    size_t  i;

    for (i = 0; i < mc->n; i++) {
        if (mc->m[i].len == len && memcmp(mc->m[i].key, key, len) == 0) {
            return &mc->m[i];
        }
    }

    return NULL;
}


/* The model's veto, from the payload the index hands over. */
static int
model_drop(void *data, ug_index_entry_t *e, void *payload)
{
    model_ctx_t  *mc = data;

    ug_expect(ug_index_key_len(e) > 0 && ug_index_key_len(e) <= KEY_MAX,
              "bad key length %zu", ug_index_key_len(e));

    if (((payload_t *) payload)->keep) {
        return 0;
    }

    mc->dropped++;

    return 1;
}


static void
model_check(ug_index_t *ix, model_ctx_t *mc, int weak)
{
    char               out[KEY_MAX];
    size_t             i, present, walked, len;
    uint32_t           cursor;
    model_t           *m;
    ug_index_entry_t  *e;

    present = 0;

    for (i = 0; i < mc->n; i++) {
        m = &mc->m[i];
        e = ug_index_find(ix, test_hash(ix, weak, m->key, m->len), m->key,
                          m->len);
        ug_expect((e != NULL) == m->present, "key %zu: present %d", i,
                  m->present);

        if (e) {
            ug_expect(((payload_t *) ug_index_payload(e))->value == m->value,
                      "key %zu: payload", i);
            present++;
        }
    }

    ug_expect(ug_index_count(ix) == present, "count %zu, model %zu",
              ug_index_count(ix), present);

    walked = 0;
    cursor = 0;

    while (!ug_index_walk_done(ix, cursor)) {
        e = ug_index_next(ix, &cursor, 16);
        if (e) {
            len = ug_index_key(ix, e, out);
            m = model_find(mc, out, len);
            ug_expect(m && m->present, "walk saw an owner not in the model");
            walked++;
        }
    }

    ug_expect(walked == present, "walked %zu of %zu", walked, present);
}


static void
model_run(int weak, uint64_t seed)
{
    int                created;
    char              *buf;
    size_t             i, size, len, need, freed, before, slots_used;
    uint64_t           st, op;
    model_t           *m;
    model_ctx_t        mc;
    ug_index_t        *ix;
    ug_index_entry_t  *e;

    size = 48 * 1024;          /* about 500 slots: fills up */
    ix = make(&buf, size, KEY_MAX);

    mc.m = calloc(MODEL_KEYS, sizeof(model_t));
    mc.n = MODEL_KEYS;
    st = seed;

    for (i = 0; i < MODEL_KEYS; i++) {
        m = &mc.m[i];

        /* mostly short keys, some up to KEY_MAX; unique by prefix */
        len = (rnd(&st) % 8 == 0) ? 14 + rnd(&st) % (KEY_MAX - 13)
                                  : 14 + rnd(&st) % 20;
        memset(m->key, 'a' + (int) (rnd(&st) % 26), len);
        memcpy(m->key, "k", 1);
        sprintf(m->key + 1, "%012zu", i);
        m->key[13] = '.';
        m->len = len;
        if (weak) {
            m->key[0] = (char) ('a' + i % 3);
        }
    }

    slots_used = 0;

    for (op = 0; op < 20000; op++) {
        m = &mc.m[rnd(&st) % MODEL_KEYS];

        switch (rnd(&st) % 8) {

        case 0:
        case 1:
        case 2:
            need = ug_index_slots_for(ix, m->len);
            e = ug_index_insert(ix, test_hash(ix, weak, m->key, m->len),
                                m->key, m->len, &created);

            if (m->present) {
                ug_expect(e && !created, "op %" PRIu64 ": present key lost",
                          op);

            } else if (e == NULL) {
                /* only for want of slots, or of ways with the weak hash */
                ug_expect(ug_index_slots_free(ix) < need || weak,
                          "op %" PRIu64 ": refused with %zu slots free", op,
                          ug_index_slots_free(ix));
                break;

            } else {
                ug_expect(created, "op %" PRIu64 ": new key not created", op);
                m->present = 1;
                m->value = 0;
                m->keep = (rnd(&st) % 4 == 0);
                slots_used += need;
                ((payload_t *) ug_index_payload(e))->keep = m->keep;
            }

            m->value = rnd(&st);
            ((payload_t *) ug_index_payload(e))->value = m->value;
            break;

        case 3:
        case 4:
            e = ug_index_find(ix, test_hash(ix, weak, m->key, m->len),
                              m->key, m->len);
            ug_expect((e != NULL) == m->present, "op %" PRIu64 ": find", op);
            break;

        case 5:
            e = ug_index_find(ix, test_hash(ix, weak, m->key, m->len),
                              m->key, m->len);
            if (e) {
                ug_index_delete(ix, e);
                m->present = 0;
                slots_used -= ug_index_slots_for(ix, m->len);
            }
            break;

        case 6:
            /* evict, then learn from the index which owners went */
            before = ug_index_count(ix);
            mc.dropped = 0;
            freed = ug_index_evict(ix, 1 + rnd(&st) % 64,
                                   1 + rnd(&st) % 4, model_drop, &mc);
            ug_expect(ug_index_count(ix) == before - mc.dropped,
                      "op %" PRIu64 ": eviction count", op);

            for (i = 0; i < MODEL_KEYS && mc.dropped; i++) {
                if (mc.m[i].present
                    && ug_index_find(ix,
                                     test_hash(ix, weak, mc.m[i].key,
                                               mc.m[i].len),
                                     mc.m[i].key, mc.m[i].len) == NULL)
                {
                    ug_expect(!mc.m[i].keep, "a kept owner was evicted");
                    mc.m[i].present = 0;
                    slots_used -= ug_index_slots_for(ix, mc.m[i].len);
                    freed -= ug_index_slots_for(ix, mc.m[i].len);
                    mc.dropped--;
                }
            }

            ug_expect(mc.dropped == 0 && freed == 0,
                      "op %" PRIu64 ": evicted owners unaccounted", op);
            break;

        default:
            if (op % 97 == 0) {
                model_check(ix, &mc, weak);
            }
            break;
        }

        ug_expect(ug_index_slots(ix) - ug_index_slots_free(ix) == slots_used,
                  "op %" PRIu64 ": slots used %zu, model %zu", op,
                  ug_index_slots(ix) - ug_index_slots_free(ix), slots_used);
    }

    model_check(ix, &mc, weak);

    free(mc.m);
    unmake(buf, size);
}


START_TEST(test_random_model)
{
    model_run(0, 0x9e3779b97f4a7c15ULL + (uint64_t) _i);
}
END_TEST


START_TEST(test_random_model_collisions)
{
    model_run(1, 0xd1b54a32d192ed03ULL + (uint64_t) _i);
}
END_TEST


/*
 * Printed, not asserted: lookups at 100k and 1M owners, the index
 * against a plain binary search tree keyed by (hash, key), 80-byte
 * nodes.
 */

typedef struct bst_node_s  bst_node_t;

struct bst_node_s {
    bst_node_t  *left;
    bst_node_t  *right;
    uint64_t     hash;
    uint8_t      len;
    char         key[31];
    uint64_t     counter[4];
};


static bst_node_t *
bst_find(bst_node_t *n, uint64_t hash, const char *key, size_t len)
{
    int  rc;

    while (n) {
        if (hash != n->hash) {
            n = hash < n->hash ? n->left : n->right;
            continue;
        }

        rc = memcmp(key, n->key, len < n->len ? len : n->len);
        if (rc == 0 && len == n->len) {
            return n;
        }

        n = (rc < 0 || (rc == 0 && len < n->len)) ? n->left : n->right;
    }

    return NULL;
}


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
bench_run(size_t n)
{
    char               key[32];
    char              *buf;
    size_t             size, i, len, found, lookups;
    uint32_t          *order;
    uint64_t           st, h, sink;
    double             t0, t_hash, t_ix, t_bst;
    bst_node_t        *root, *node, *nodes, **p;
    ug_index_t        *ix;
    ug_index_conf_t    conf;

    lookups = 2000000;
    conf = conf_of(PAYLOAD, INLINE, KEY_MAX);
    size = (size_t) (n / 0.999) * (ug_index_slot_size(&conf) + 11);

    buf = malloc(size);
    ck_assert_ptr_nonnull(buf);
    ix = ug_index_init(buf, size, &conf);
    ck_assert_ptr_nonnull(ix);
    ck_assert_uint_ge(ug_index_slots(ix), n);

    root = NULL;
    nodes = calloc(n, sizeof(bst_node_t));
    ck_assert_ptr_nonnull(nodes);

    for (i = 0; i < n; i++) {
        len = key_of(key, (uint32_t) i);
        h = ug_index_hash(ix, key, len);
        ck_assert_ptr_nonnull(put(ix, h, key, len));

        node = &nodes[i];
        node->hash = h;
        node->len = (uint8_t) len;
        memcpy(node->key, key, len);

        for (p = &root; *p; ) {
            p = (h < (*p)->hash) ? &(*p)->left : &(*p)->right;
        }

        *p = node;
    }

    order = malloc(lookups * sizeof(uint32_t));
    st = 0x853c49e6748fea9bULL;

    for (i = 0; i < lookups; i++) {
        order[i] = (uint32_t) (rnd(&st) % n);
    }

    sink = 0;

    t0 = now_s();
    for (i = 0; i < lookups; i++) {
        len = key_of(key, order[i]);
        sink += ug_index_hash(ix, key, len);
    }
    t_hash = now_s() - t0;

    found = 0;
    t0 = now_s();
    for (i = 0; i < lookups; i++) {
        len = key_of(key, order[i]);
        found += ug_index_find(ix, ug_index_hash(ix, key, len), key, len)
                 != NULL;
    }
    t_ix = now_s() - t0;
    ck_assert_uint_eq(found, lookups);

    found = 0;
    t0 = now_s();
    for (i = 0; i < lookups; i++) {
        len = key_of(key, order[i]);
        found += bst_find(root, ug_index_hash(ix, key, len), key, len)
                 != NULL;
    }
    t_bst = now_s() - t0;
    ck_assert_uint_eq(found, lookups);

    printf("bench at %zu owners, %zu random lookups (key format and "
           "SipHash-1-3 included, %.0f ns of it): index %.0f ns, binary "
           "tree %.0f ns per lookup (sink %" PRIu64 ")\n",
           n, lookups, t_hash / lookups * 1e9, t_ix / lookups * 1e9,
           t_bst / lookups * 1e9, sink & 1);

    free(order);
    free(nodes);
    free(buf);
}


START_TEST(test_bench)
{
    bench_run(100000);
    bench_run(1000000);
}
END_TEST


static Suite *
index_suite(void)
{
    Suite  *s;
    TCase  *tc, *tr, *tb;

    s = suite_create("index");

    tc = tcase_create("core");
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_siphash_vectors);
    tcase_add_test(tc, test_insert_find_delete);
    tcase_add_test(tc, test_collisions);
    tcase_add_test(tc, test_seed_defeats_crafted_keys);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_long_keys);
    tcase_add_test(tc, test_clock_order);
    tcase_add_test(tc, test_predicate_refuses);
    tcase_add_test(tc, test_walk_under_churn);
    tcase_add_test(tc, test_attach);
    suite_add_tcase(s, tc);

    tr = tcase_create("random");
    tcase_set_timeout(tr, 60);
    tcase_add_loop_test(tr, test_random_model, 0, 4);
    tcase_add_loop_test(tr, test_random_model_collisions, 0, 4);
    suite_add_tcase(s, tr);

    tb = tcase_create("bench");
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, test_bench);
    suite_add_tcase(s, tb);

    return s;
}


int
main(void)
{
    return ug_check_run(index_suite());
}
