/*
 * The owner index: a bucketed hash table over a fixed slot array, all in
 * one caller-given region (see ug_index.h for the design).
 */

#include <string.h>

#include "ug_index.h"


#define UG_INDEX_MAGIC     0x55474958    /* "UGIX" */
#define UG_INDEX_VERSION   1

#define UG_INDEX_HEADER    128           /* the header's bytes */
#define UG_INDEX_ALIGN     64            /* a cache line */
/*
 * Slots per bucket: the table's ways are at most 60% taken.  Measured
 * with SipHash at 3M owners, after 9M deletes and inserts at full
 * load: 95% of owners in their home bucket, none more than 9 buckets
 * away (at 70%: 89%, 16; at 80%: 78%, 37).
 */
#define UG_INDEX_PER_BUCKET  6
#define UG_INDEX_SLOT_MIN  32            /* so that a key continues in
                                            at least 16 bytes per slot */

/* slot flags */
#define UG_INDEX_USED      0x01
#define UG_INDEX_CONT      0x02          /* holds the rest of a long key */
#define UG_INDEX_REF       0x04          /* hit since the hand passed */


/*
 * A slot's head.  In an owner's first slot: the owner's hash, key length
 * and the slot holding the rest of its key (or UG_INDEX_NONE).  In a
 * continuation slot: the next one.  In a free slot: the next free slot.
 */
struct ug_index_entry_s {
    uint64_t           hash;
    uint32_t           next;
    uint16_t           len;
    uint8_t            flags;
    uint8_t            reserved;
};


/* One cache line: tags (0 marks a free way), and their slots. */
typedef struct {
    uint16_t           tag[UG_INDEX_WAYS];
    uint16_t           overflow;     /* keys placed past this full bucket */
    uint16_t           reserved;
    uint32_t           slot[UG_INDEX_WAYS];
} ug_index_bucket_t;


struct ug_index_s {
    uint32_t           magic;
    uint32_t           version;

    uint32_t           nbuckets;
    uint32_t           nslots;
    uint32_t           slot_size;
    uint32_t           payload;      /* aligned */
    uint32_t           key_inline;
    uint32_t           key_max;
    uint32_t           key_off;      /* in the first slot */
    uint32_t           cont_cap;     /* key bytes per continuation slot */
    uint64_t           slots_off;    /* from the header */

    uint32_t           count;        /* owners */
    uint32_t           used;         /* slots */
    uint32_t           free_head;    /* free list of slots below fresh */
    uint32_t           fresh;        /* slots from here on never used */
    uint32_t           hand;         /* the clock's */
    uint32_t           reserved;

    unsigned char      seed[16];
};


typedef struct {
    size_t             pad;
    size_t             slot_size;
    size_t             payload;
    size_t             nslots;
    size_t             nbuckets;
} ug_index_layout_t;


static int ug_index_layout(void *mem, size_t size,
    const ug_index_conf_t *conf, ug_index_layout_t *lo);
static int ug_index_key_eq(ug_index_t *ix, ug_index_entry_t *e,
    const unsigned char *key, size_t len);
static void ug_index_slot_free(ug_index_t *ix, uint32_t n);


static inline ug_index_bucket_t *
ug_index_bucket(ug_index_t *ix, uint32_t b)
{
    return (ug_index_bucket_t *) ((unsigned char *) ix + UG_INDEX_HEADER)
           + b;
}


static inline ug_index_entry_t *
ug_index_slot(ug_index_t *ix, uint32_t n)
{
    return (ug_index_entry_t *) ((unsigned char *) ix + ix->slots_off
                                 + (size_t) n * ix->slot_size);
}


static inline uint32_t
ug_index_slot_no(ug_index_t *ix, ug_index_entry_t *e)
{
    return (uint32_t) (((unsigned char *) e
                        - ((unsigned char *) ix + ix->slots_off))
                       / ix->slot_size);
}


/* The high 32 bits choose the bucket (multiply-shift: any count of
 * buckets, no modulo); the low 16 are the tag, never 0. */

static inline uint32_t
ug_index_home(const ug_index_t *ix, uint64_t hash)
{
    return (uint32_t) (((hash >> 32) * (uint64_t) ix->nbuckets) >> 32);
}


static inline uint16_t
ug_index_tag(uint64_t hash)
{
    uint16_t  t;

    t = (uint16_t) hash;

    return t ? t : 1;
}


static inline uint32_t
ug_index_probes(const ug_index_t *ix)
{
    return ix->nbuckets < UG_INDEX_PROBE_MAX ? ix->nbuckets
                                             : UG_INDEX_PROBE_MAX;
}


static inline uint32_t
ug_index_after(const ug_index_t *ix, uint32_t b)
{
    return (b + 1 == ix->nbuckets) ? 0 : b + 1;
}


size_t
ug_index_slot_size(const ug_index_conf_t *conf)
{
    size_t  size;

    size = UG_INDEX_SLOT_HEAD + ((conf->payload + 7) & ~(size_t) 7)
           + conf->key_inline;
    size = (size + 7) & ~(size_t) 7;

    return size < UG_INDEX_SLOT_MIN ? UG_INDEX_SLOT_MIN : size;
}


/*
 * Where everything goes in a region: as many slots as fit with one
 * bucket per UG_INDEX_PER_BUCKET of them.
 */
static int
ug_index_layout(void *mem, size_t size, const ug_index_conf_t *conf,
    ug_index_layout_t *lo)
{
    size_t  avail, n;

    if (conf->key_max == 0 || conf->key_max > UG_INDEX_KEY_MAX
        || conf->key_inline > conf->key_max
        || conf->payload > (1u << 20))
    {
        return -1;
    }

    lo->pad = (UG_INDEX_ALIGN - ((uintptr_t) mem & (UG_INDEX_ALIGN - 1)))
              & (UG_INDEX_ALIGN - 1);
    lo->slot_size = ug_index_slot_size(conf);
    lo->payload = (conf->payload + 7) & ~(size_t) 7;

    if (size < lo->pad + UG_INDEX_HEADER) {
        return -1;
    }

    avail = size - lo->pad - UG_INDEX_HEADER;

    n = avail / (lo->slot_size
                 + sizeof(ug_index_bucket_t) / UG_INDEX_PER_BUCKET);

    if (n > UG_INDEX_NONE - 1) {
        n = UG_INDEX_NONE - 1;
    }

    while (n > 0
           && n * lo->slot_size
              + (n + UG_INDEX_PER_BUCKET - 1) / UG_INDEX_PER_BUCKET
                * sizeof(ug_index_bucket_t)
              > avail)
    {
        n--;
    }

    if (n == 0) {
        return -1;
    }

    lo->nslots = n;
    lo->nbuckets = (n + UG_INDEX_PER_BUCKET - 1) / UG_INDEX_PER_BUCKET;

    return 0;
}


size_t
ug_index_capacity(size_t size, const ug_index_conf_t *conf)
{
    ug_index_layout_t  lo;

    /* a page-aligned region, as shared memory is */
    if (ug_index_layout(NULL, size, conf, &lo) != 0) {
        return 0;
    }

    return lo.nslots;
}


ug_index_t *
ug_index_init(void *mem, size_t size, const ug_index_conf_t *conf)
{
    ug_index_t         *ix;
    ug_index_layout_t   lo;

    if (ug_index_layout(mem, size, conf, &lo) != 0) {
        return NULL;
    }

    ix = (ug_index_t *) ((unsigned char *) mem + lo.pad);

    memset(ix, 0, UG_INDEX_HEADER);

    ix->magic = UG_INDEX_MAGIC;
    ix->version = UG_INDEX_VERSION;
    ix->nbuckets = (uint32_t) lo.nbuckets;
    ix->nslots = (uint32_t) lo.nslots;
    ix->slot_size = (uint32_t) lo.slot_size;
    ix->payload = (uint32_t) lo.payload;
    ix->key_inline = (uint32_t) conf->key_inline;
    ix->key_max = (uint32_t) conf->key_max;
    ix->key_off = (uint32_t) (UG_INDEX_SLOT_HEAD + lo.payload);
    ix->cont_cap = (uint32_t) (lo.slot_size - UG_INDEX_SLOT_HEAD);
    ix->slots_off = UG_INDEX_HEADER
                    + lo.nbuckets * sizeof(ug_index_bucket_t);
    ix->free_head = UG_INDEX_NONE;
    memcpy(ix->seed, conf->seed, sizeof(ix->seed));

    memset(ug_index_bucket(ix, 0), 0,
           lo.nbuckets * sizeof(ug_index_bucket_t));

    return ix;
}


ug_index_t *
ug_index_attach(void *mem, size_t size, const ug_index_conf_t *conf)
{
    ug_index_t         *ix;
    ug_index_layout_t   lo;

    if (ug_index_layout(mem, size, conf, &lo) != 0) {
        return NULL;
    }

    ix = (ug_index_t *) ((unsigned char *) mem + lo.pad);

    if (ix->magic != UG_INDEX_MAGIC
        || ix->version != UG_INDEX_VERSION
        || ix->nbuckets != lo.nbuckets
        || ix->nslots != lo.nslots
        || ix->slot_size != lo.slot_size
        || ix->payload != lo.payload
        || ix->key_inline != conf->key_inline
        || ix->key_max != conf->key_max)
    {
        return NULL;
    }

    return ix;
}


/* SipHash (Aumasson and Bernstein), c compression and d final rounds. */

#define UG_ROTL(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define UG_SIPROUND                                                          \
    do {                                                                     \
        v0 += v1; v1 = UG_ROTL(v1, 13); v1 ^= v0; v0 = UG_ROTL(v0, 32);      \
        v2 += v3; v3 = UG_ROTL(v3, 16); v3 ^= v2;                            \
        v0 += v3; v3 = UG_ROTL(v3, 21); v3 ^= v0;                            \
        v2 += v1; v1 = UG_ROTL(v1, 17); v1 ^= v2; v2 = UG_ROTL(v2, 32);      \
    } while (0)


static inline uint64_t
ug_le64(const unsigned char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
}


static inline uint64_t
ug_siphash_cd(const unsigned char key[16], const unsigned char *p,
    size_t len, int c, int d)
{
    int       i;
    size_t    left;
    uint64_t  k0, k1, v0, v1, v2, v3, m, b;

    k0 = ug_le64(key);
    k1 = ug_le64(key + 8);

    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;

    b = (uint64_t) len << 56;

    for (left = len; left >= 8; left -= 8, p += 8) {
        m = ug_le64(p);
        v3 ^= m;
        for (i = 0; i < c; i++) {
            UG_SIPROUND;
        }
        v0 ^= m;
    }

    switch (left) {
    case 7: b |= (uint64_t) p[6] << 48;  /* fall through */
    case 6: b |= (uint64_t) p[5] << 40;  /* fall through */
    case 5: b |= (uint64_t) p[4] << 32;  /* fall through */
    case 4: b |= (uint64_t) p[3] << 24;  /* fall through */
    case 3: b |= (uint64_t) p[2] << 16;  /* fall through */
    case 2: b |= (uint64_t) p[1] << 8;   /* fall through */
    case 1: b |= (uint64_t) p[0];        /* fall through */
    default: break;
    }

    v3 ^= b;
    for (i = 0; i < c; i++) {
        UG_SIPROUND;
    }
    v0 ^= b;

    v2 ^= 0xff;
    for (i = 0; i < d; i++) {
        UG_SIPROUND;
    }

    return v0 ^ v1 ^ v2 ^ v3;
}


uint64_t
ug_siphash(const unsigned char key[16], const void *data, size_t len, int c,
    int d)
{
    return ug_siphash_cd(key, data, len, c, d);
}


uint64_t
ug_index_hash(const ug_index_t *ix, const void *key, size_t len)
{
    return ug_siphash_cd(ix->seed, key, len, 1, 3);
}


void
ug_index_prefetch(const ug_index_t *ix, uint64_t hash)
{
    __builtin_prefetch((const unsigned char *) ix + UG_INDEX_HEADER
                       + (size_t) ug_index_home(ix, hash)
                         * sizeof(ug_index_bucket_t));
}


static int
ug_index_key_eq(ug_index_t *ix, ug_index_entry_t *e, const unsigned char *key,
    size_t len)
{
    size_t             n;
    uint32_t           next;
    ug_index_entry_t  *c;

    if (e->len != len) {
        return 0;
    }

    n = len < ix->key_inline ? len : ix->key_inline;

    if (memcmp((unsigned char *) e + ix->key_off, key, n) != 0) {
        return 0;
    }

    key += n;
    len -= n;
    next = e->next;

    while (len) {
        c = ug_index_slot(ix, next);
        n = len < ix->cont_cap ? len : ix->cont_cap;

        if (memcmp((unsigned char *) c + UG_INDEX_SLOT_HEAD, key, n) != 0) {
            return 0;
        }

        key += n;
        len -= n;
        next = c->next;
    }

    return 1;
}


ug_index_entry_t *
ug_index_find(ug_index_t *ix, uint64_t hash, const void *key, size_t len)
{
    uint16_t            tag;
    uint32_t            b, i, w, probes;
    ug_index_entry_t   *e;
    ug_index_bucket_t  *bk;

    tag = ug_index_tag(hash);
    b = ug_index_home(ix, hash);
    probes = ug_index_probes(ix);

    for (i = 0; i < probes; i++) {
        bk = ug_index_bucket(ix, b);

        for (w = 0; w < UG_INDEX_WAYS; w++) {
            if (bk->tag[w] != tag) {
                continue;
            }

            e = ug_index_slot(ix, bk->slot[w]);

            if (e->hash == hash && ug_index_key_eq(ix, e, key, len)) {
                if (!(e->flags & UG_INDEX_REF)) {
                    e->flags |= UG_INDEX_REF;
                }

                return e;
            }
        }

        if (bk->overflow == 0) {
            break;
        }

        b = ug_index_after(ix, b);
    }

    return NULL;
}


size_t
ug_index_slots_for(const ug_index_t *ix, size_t len)
{
    if (len <= ix->key_inline) {
        return 1;
    }

    return 1 + (len - ix->key_inline + ix->cont_cap - 1) / ix->cont_cap;
}


static uint32_t
ug_index_slot_take(ug_index_t *ix)
{
    uint32_t           n;
    ug_index_entry_t  *e;

    if (ix->free_head != UG_INDEX_NONE) {
        n = ix->free_head;
        e = ug_index_slot(ix, n);
        ix->free_head = e->next;

    } else {
        /* the caller checked that a slot is free */
        n = ix->fresh++;
    }

    ix->used++;

    return n;
}


static void
ug_index_slot_free(ug_index_t *ix, uint32_t n)
{
    ug_index_entry_t  *e;

    e = ug_index_slot(ix, n);
    e->flags = 0;
    e->len = 0;
    e->hash = 0;
    e->next = ix->free_head;
    ix->free_head = n;
    ix->used--;
}


ug_index_entry_t *
ug_index_insert(ug_index_t *ix, uint64_t hash, const void *key, size_t len,
    int *created)
{
    size_t                n, left;
    uint16_t              tag;
    uint32_t              b, home, i, w, probes, head, sn;
    const unsigned char  *p;
    ug_index_entry_t     *e, *prev, *c;
    ug_index_bucket_t    *bk;

    *created = 0;

    if (len == 0 || len > ix->key_max) {
        return NULL;
    }

    e = ug_index_find(ix, hash, key, len);
    if (e) {
        return e;
    }

    if (ix->nslots - ix->used < ug_index_slots_for(ix, len)) {
        return NULL;
    }

    /* the first free way on the key's probe sequence */

    tag = ug_index_tag(hash);
    home = ug_index_home(ix, hash);
    probes = ug_index_probes(ix);
    b = home;
    bk = NULL;
    w = 0;

    for (i = 0; i < probes; i++) {
        bk = ug_index_bucket(ix, b);

        for (w = 0; w < UG_INDEX_WAYS; w++) {
            if (bk->tag[w] == 0) {
                break;
            }
        }

        if (w < UG_INDEX_WAYS) {
            break;
        }

        b = ug_index_after(ix, b);
    }

    if (i == probes) {
        return NULL;
    }

    /* every full bucket passed leads lookups on to this one */

    for (b = home; i > 0; i--) {
        ug_index_bucket(ix, b)->overflow++;
        b = ug_index_after(ix, b);
    }

    head = ug_index_slot_take(ix);
    e = ug_index_slot(ix, head);

    e->hash = hash;
    e->next = UG_INDEX_NONE;
    e->len = (uint16_t) len;
    e->flags = UG_INDEX_USED;
    e->reserved = 0;

    memset((unsigned char *) e + UG_INDEX_SLOT_HEAD, 0, ix->payload);

    p = key;
    n = len < ix->key_inline ? len : ix->key_inline;
    memcpy((unsigned char *) e + ix->key_off, p, n);
    p += n;
    left = len - n;
    prev = e;

    while (left) {
        sn = ug_index_slot_take(ix);
        c = ug_index_slot(ix, sn);
        n = left < ix->cont_cap ? left : ix->cont_cap;

        c->hash = hash;
        c->next = UG_INDEX_NONE;
        c->len = (uint16_t) n;
        c->flags = UG_INDEX_USED | UG_INDEX_CONT;
        c->reserved = 0;
        memcpy((unsigned char *) c + UG_INDEX_SLOT_HEAD, p, n);

        prev->next = sn;
        prev = c;
        p += n;
        left -= n;
    }

    bk->tag[w] = tag;
    bk->slot[w] = head;
    ix->count++;
    *created = 1;

    return e;
}


void
ug_index_delete(ug_index_t *ix, ug_index_entry_t *e)
{
    uint16_t            tag;
    uint32_t            b, i, k, w, probes, n, next;
    ug_index_bucket_t  *bk;

    n = ug_index_slot_no(ix, e);
    tag = ug_index_tag(e->hash);
    b = ug_index_home(ix, e->hash);
    probes = ug_index_probes(ix);

    for (i = 0; i < probes; i++) {
        bk = ug_index_bucket(ix, b);

        for (w = 0; w < UG_INDEX_WAYS; w++) {
            if (bk->tag[w] == tag && bk->slot[w] == n) {
                break;
            }
        }

        if (w < UG_INDEX_WAYS) {
            bk->tag[w] = 0;
            bk->slot[w] = 0;

            b = ug_index_home(ix, e->hash);

            for (k = 0; k < i; k++) {
                ug_index_bucket(ix, b)->overflow--;
                b = ug_index_after(ix, b);
            }

            break;
        }

        b = ug_index_after(ix, b);
    }

    next = e->next;
    ug_index_slot_free(ix, n);

    while (next != UG_INDEX_NONE) {
        n = next;
        next = ug_index_slot(ix, n)->next;
        ug_index_slot_free(ix, n);
    }

    ix->count--;
}


size_t
ug_index_evict(ug_index_t *ix, size_t steps, size_t want,
    ug_index_evict_pt may_drop, void *data)
{
    size_t             freed, k;
    ug_index_entry_t  *e;

    freed = 0;

    for (k = 0; k < steps && freed < want; k++) {

        if (ix->fresh == 0) {
            break;
        }

        if (ix->hand >= ix->fresh) {
            ix->hand = 0;
        }

        e = ug_index_slot(ix, ix->hand++);

        if ((e->flags & (UG_INDEX_USED | UG_INDEX_CONT)) != UG_INDEX_USED) {
            continue;
        }

        if (e->flags & UG_INDEX_REF) {
            e->flags &= ~UG_INDEX_REF;
            continue;
        }

        if (!may_drop(data, e, (unsigned char *) e + UG_INDEX_SLOT_HEAD)) {
            continue;
        }

        freed += ug_index_slots_for(ix, e->len);
        ug_index_delete(ix, e);
    }

    return freed;
}


ug_index_entry_t *
ug_index_next(ug_index_t *ix, uint32_t *cursor, size_t steps)
{
    ug_index_entry_t  *e;

    while (steps-- && *cursor < ix->fresh) {
        e = ug_index_slot(ix, (*cursor)++);

        if ((e->flags & (UG_INDEX_USED | UG_INDEX_CONT)) == UG_INDEX_USED) {
            return e;
        }
    }

    return NULL;
}


int
ug_index_walk_done(const ug_index_t *ix, uint32_t cursor)
{
    return cursor >= ix->fresh;
}


void *
ug_index_payload(ug_index_entry_t *e)
{
    return (unsigned char *) e + UG_INDEX_SLOT_HEAD;
}


size_t
ug_index_key_len(const ug_index_entry_t *e)
{
    return e->len;
}


size_t
ug_index_key(const ug_index_t *ix, const ug_index_entry_t *e, void *buf)
{
    size_t                   n, len;
    uint32_t                 next;
    unsigned char           *out;
    const ug_index_entry_t  *c;

    out = buf;
    len = e->len;
    n = len < ix->key_inline ? len : ix->key_inline;

    memcpy(out, (const unsigned char *) e + ix->key_off, n);
    out += n;
    next = e->next;

    while (next != UG_INDEX_NONE) {
        c = ug_index_slot((ug_index_t *) ix, next);
        memcpy(out, (const unsigned char *) c + UG_INDEX_SLOT_HEAD, c->len);
        out += c->len;
        next = c->next;
    }

    return len;
}


size_t
ug_index_count(const ug_index_t *ix)
{
    return ix->count;
}


size_t
ug_index_slots(const ug_index_t *ix)
{
    return ix->nslots;
}


size_t
ug_index_slots_free(const ug_index_t *ix)
{
    return ix->nslots - ix->used;
}
