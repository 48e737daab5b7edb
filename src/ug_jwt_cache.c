#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ug_jwt_cache.h"


#define UG_NIL  UINT32_MAX


typedef struct {
    unsigned char     hash[32];
    int64_t           expires;     /* not valid at or after this time */
    uint32_t          next;        /* in its bucket */
    uint32_t          lru_prev;    /* towards the most recently used */
    uint32_t          lru_next;
    ug_jwt_claims_t   claims;
} ug_jwt_cache_slot_t;


struct ug_jwt_cache_s {
    EVP_MD               *md;
    EVP_MD_CTX           *mdctx;      /* reused: no allocation per lookup */
    size_t                n_slots;
    size_t                used;
    uint32_t              mask;        /* buckets - 1 */
    uint32_t              lru_head;    /* most recently used */
    uint32_t              lru_tail;    /* least recently used */
    uint32_t              free_head;   /* chained through next */
    uint32_t             *buckets;
    ug_jwt_cache_slot_t  *slots;
};


static int ug_jwt_cache_hash(ug_jwt_cache_t *cache, uint64_t scope,
    const char *token, size_t len, unsigned char *hash);
static uint32_t ug_jwt_cache_bucket(ug_jwt_cache_t *cache,
    const unsigned char *hash);
static uint32_t ug_jwt_cache_find(ug_jwt_cache_t *cache,
    const unsigned char *hash);
static void ug_jwt_cache_lru_unlink(ug_jwt_cache_t *cache, uint32_t i);
static void ug_jwt_cache_lru_push(ug_jwt_cache_t *cache, uint32_t i);
static void ug_jwt_cache_remove(ug_jwt_cache_t *cache, uint32_t i);


ug_jwt_cache_t *
ug_jwt_cache_new(size_t slots)
{
    size_t           i, buckets;
    ug_jwt_cache_t  *cache;

    if (slots == 0 || slots > UG_JWT_CACHE_MAX_SLOTS) {
        return NULL;
    }

    cache = calloc(1, sizeof(ug_jwt_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    /* a power of two at least the number of slots: short chains */

    for (buckets = 1; buckets < slots; buckets <<= 1) {
        /* void */
    }

    cache->n_slots = slots;
    cache->mask = (uint32_t) (buckets - 1);
    cache->buckets = malloc(buckets * sizeof(uint32_t));
    cache->slots = calloc(slots, sizeof(ug_jwt_cache_slot_t));
    cache->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    cache->mdctx = EVP_MD_CTX_new();

    if (cache->buckets == NULL || cache->slots == NULL || cache->md == NULL
        || cache->mdctx == NULL)
    {
        ug_jwt_cache_free(cache);
        return NULL;
    }

    for (i = 0; i < buckets; i++) {
        cache->buckets[i] = UG_NIL;
    }

    for (i = 0; i < slots; i++) {
        cache->slots[i].next = (i + 1 < slots) ? (uint32_t) (i + 1) : UG_NIL;
    }

    cache->free_head = 0;
    cache->lru_head = UG_NIL;
    cache->lru_tail = UG_NIL;

    return cache;
}


void
ug_jwt_cache_free(ug_jwt_cache_t *cache)
{
    if (cache == NULL) {
        return;
    }

    EVP_MD_CTX_free(cache->mdctx);
    EVP_MD_free(cache->md);
    free(cache->buckets);
    free(cache->slots);
    free(cache);
}


size_t
ug_jwt_cache_count(const ug_jwt_cache_t *cache)
{
    return cache ? cache->used : 0;
}


int
ug_jwt_cache_get(ug_jwt_cache_t *cache, uint64_t scope, const char *token,
    size_t len, int64_t now, ug_jwt_claims_t *out)
{
    uint32_t              i;
    unsigned char         hash[32];
    ug_jwt_cache_slot_t  *s;

    if (cache == NULL
        || ug_jwt_cache_hash(cache, scope, token, len, hash) != 0)
    {
        return 0;
    }

    i = ug_jwt_cache_find(cache, hash);
    if (i == UG_NIL) {
        return 0;
    }

    s = &cache->slots[i];

    if (now >= s->expires) {
        ug_jwt_cache_remove(cache, i);
        return 0;
    }

    ug_jwt_cache_lru_unlink(cache, i);
    ug_jwt_cache_lru_push(cache, i);

    *out = s->claims;

    return 1;
}


void
ug_jwt_cache_put(ug_jwt_cache_t *cache, uint64_t scope, const char *token,
    size_t len, int64_t now, const ug_jwt_claims_t *claims)
{
    int64_t               expires;
    uint32_t              i, b;
    unsigned char         hash[32];
    ug_jwt_cache_slot_t  *s;

    if (cache == NULL) {
        return;
    }

    expires = now + UG_JWT_CACHE_NOEXP_TTL;

    if (claims->exp > 0) {
        /* held until exp: the verifier would say "expired" from then on */
        expires = claims->exp;
    }

    if (expires <= now
        || ug_jwt_cache_hash(cache, scope, token, len, hash) != 0)
    {
        return;
    }

    i = ug_jwt_cache_find(cache, hash);

    if (i != UG_NIL) {
        ug_jwt_cache_lru_unlink(cache, i);

    } else {
        if (cache->free_head == UG_NIL) {
            ug_jwt_cache_remove(cache, cache->lru_tail);
        }

        i = cache->free_head;
        s = &cache->slots[i];
        cache->free_head = s->next;

        memcpy(s->hash, hash, sizeof(hash));
        b = ug_jwt_cache_bucket(cache, hash);
        s->next = cache->buckets[b];
        cache->buckets[b] = i;
        cache->used++;
    }

    s = &cache->slots[i];
    s->expires = expires;
    s->claims = *claims;

    ug_jwt_cache_lru_push(cache, i);
}


static int
ug_jwt_cache_hash(ug_jwt_cache_t *cache, uint64_t scope, const char *token,
    size_t len, unsigned char *hash)
{
    int            k;
    unsigned int   n;
    unsigned char  prefix[8];

    if (len > UG_JWT_MAX_TOKEN) {
        return -1;
    }

    for (k = 0; k < 8; k++) {
        prefix[k] = (unsigned char) (scope >> (8 * k));
    }

    n = 0;

    if (EVP_DigestInit_ex(cache->mdctx, cache->md, NULL) != 1
        || EVP_DigestUpdate(cache->mdctx, prefix, sizeof(prefix)) != 1
        || EVP_DigestUpdate(cache->mdctx, token, len) != 1
        || EVP_DigestFinal_ex(cache->mdctx, hash, &n) != 1
        || n != 32)
    {
        return -1;
    }

    return 0;
}


/* SHA-256 output is uniform: its first bytes pick the bucket. */
static uint32_t
ug_jwt_cache_bucket(ug_jwt_cache_t *cache, const unsigned char *hash)
{
    return ((uint32_t) hash[0] | (uint32_t) hash[1] << 8
            | (uint32_t) hash[2] << 16 | (uint32_t) hash[3] << 24)
           & cache->mask;
}


static uint32_t
ug_jwt_cache_find(ug_jwt_cache_t *cache, const unsigned char *hash)
{
    uint32_t  i, b;

    b = ug_jwt_cache_bucket(cache, hash);

    for (i = cache->buckets[b]; i != UG_NIL; i = cache->slots[i].next) {
        if (memcmp(cache->slots[i].hash, hash, 32) == 0) {
            return i;
        }
    }

    return UG_NIL;
}


static void
ug_jwt_cache_lru_unlink(ug_jwt_cache_t *cache, uint32_t i)
{
    ug_jwt_cache_slot_t  *s;

    s = &cache->slots[i];

    if (s->lru_prev != UG_NIL) {
        cache->slots[s->lru_prev].lru_next = s->lru_next;

    } else {
        cache->lru_head = s->lru_next;
    }

    if (s->lru_next != UG_NIL) {
        cache->slots[s->lru_next].lru_prev = s->lru_prev;

    } else {
        cache->lru_tail = s->lru_prev;
    }

    s->lru_prev = UG_NIL;
    s->lru_next = UG_NIL;
}


static void
ug_jwt_cache_lru_push(ug_jwt_cache_t *cache, uint32_t i)
{
    ug_jwt_cache_slot_t  *s;

    s = &cache->slots[i];
    s->lru_prev = UG_NIL;
    s->lru_next = cache->lru_head;

    if (cache->lru_head != UG_NIL) {
        cache->slots[cache->lru_head].lru_prev = i;

    } else {
        cache->lru_tail = i;
    }

    cache->lru_head = i;
}


/* Takes slot i out of its bucket and the LRU list onto the free list. */
static void
ug_jwt_cache_remove(ug_jwt_cache_t *cache, uint32_t i)
{
    uint32_t             *p, b;
    ug_jwt_cache_slot_t  *s;

    s = &cache->slots[i];

    b = ug_jwt_cache_bucket(cache, s->hash);

    for (p = &cache->buckets[b]; *p != UG_NIL; p = &cache->slots[*p].next) {
        if (*p == i) {
            *p = s->next;
            break;
        }
    }

    ug_jwt_cache_lru_unlink(cache, i);

    /* claims of a past token need not linger in memory */
    memset(s, 0, sizeof(ug_jwt_cache_slot_t));

    s->next = cache->free_head;
    cache->free_head = i;
    cache->used--;
}
