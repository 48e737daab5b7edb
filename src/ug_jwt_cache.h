/*
 * A per-worker cache of verified tokens, so that a client's repeated
 * token costs a hash and a lookup instead of an RSA or ECDSA verify.
 *
 * Keyed by SHA-256 of a scope and the whole token; a fixed number of
 * slots, the least recently used one replaced when all are taken.  An
 * entry lives until the token's exp (or 300 s for a token without exp)
 * and is never returned at or after that time.  Only tokens that
 * verified are put, so their nbf has passed.  No locks: one cache
 * belongs to one worker (one thread).
 *
 * The scope tells apart verifications under different key sets or
 * policies (e.g. the address of a location's configuration): a token
 * accepted by one location must not be a hit in another that checks a
 * different issuer.
 */

#ifndef UG_JWT_CACHE_H
#define UG_JWT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ug_jwt.h"

/* Longest a token without exp stays cached, in seconds. */
#define UG_JWT_CACHE_NOEXP_TTL  300

#define UG_JWT_CACHE_MAX_SLOTS  (1 << 20)


typedef struct ug_jwt_cache_s  ug_jwt_cache_t;


/* A cache of `slots` entries (1..UG_JWT_CACHE_MAX_SLOTS), or NULL. */
ug_jwt_cache_t *ug_jwt_cache_new(size_t slots);

void ug_jwt_cache_free(ug_jwt_cache_t *cache);

/*
 * Looks the token up at unix time now.  Returns 1 and fills out on a
 * hit, 0 on a miss (an expired entry is dropped and is a miss).
 */
int ug_jwt_cache_get(ug_jwt_cache_t *cache, uint64_t scope,
    const char *token, size_t len, int64_t now, ug_jwt_claims_t *out);

/*
 * Remembers the claims of a token that ug_jwt_verify accepted at now.
 * A token already expired, or longer than UG_JWT_MAX_TOKEN, is not kept.
 */
void ug_jwt_cache_put(ug_jwt_cache_t *cache, uint64_t scope,
    const char *token, size_t len, int64_t now,
    const ug_jwt_claims_t *claims);

/* Entries held (expired ones included until they are looked up). */
size_t ug_jwt_cache_count(const ug_jwt_cache_t *cache);

#endif /* UG_JWT_CACHE_H */
