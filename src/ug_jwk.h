/*
 * Key sets for verifying JWTs: JWKS (RFC 7517), single JWKs, PEM public
 * keys and HMAC secrets, checked and turned into OpenSSL 3 keys once, when
 * the set is built.
 *
 * A set is only read after it is built, so one set can serve every
 * verification of a worker (see ug_jwt.h); a set fetched again from an
 * issuer is built anew and replaces the old one.
 */

#ifndef UG_JWK_H
#define UG_JWK_H

#include <stddef.h>
#include <stdint.h>


/* Algorithms, as bits of an allow-list. */
enum {
    UG_JWT_ALG_HS256 = 1 << 0,
    UG_JWT_ALG_HS384 = 1 << 1,
    UG_JWT_ALG_HS512 = 1 << 2,
    UG_JWT_ALG_RS256 = 1 << 3,
    UG_JWT_ALG_RS384 = 1 << 4,
    UG_JWT_ALG_RS512 = 1 << 5,
    UG_JWT_ALG_PS256 = 1 << 6,
    UG_JWT_ALG_PS384 = 1 << 7,
    UG_JWT_ALG_PS512 = 1 << 8,
    UG_JWT_ALG_ES256 = 1 << 9,
    UG_JWT_ALG_ES384 = 1 << 10,
    UG_JWT_ALG_EDDSA = 1 << 11
};

#define UG_JWT_ALG_HMAC   (UG_JWT_ALG_HS256 | UG_JWT_ALG_HS384              \
                           | UG_JWT_ALG_HS512)
#define UG_JWT_ALG_RSA    (UG_JWT_ALG_RS256 | UG_JWT_ALG_RS384              \
                           | UG_JWT_ALG_RS512 | UG_JWT_ALG_PS256            \
                           | UG_JWT_ALG_PS384 | UG_JWT_ALG_PS512)
#define UG_JWT_ALG_ASYMMETRIC  (UG_JWT_ALG_RSA | UG_JWT_ALG_ES256           \
                                | UG_JWT_ALG_ES384 | UG_JWT_ALG_EDDSA)
#define UG_JWT_ALG_ALL    (UG_JWT_ALG_HMAC | UG_JWT_ALG_ASYMMETRIC)

/* Deepest JSON nesting accepted in a key set, a token's header or payload. */
#define UG_JWT_MAX_DEPTH     32

/* Limits on a key set. */
#define UG_JWT_MAX_KEYS      64
#define UG_JWT_MAX_KEY_TEXT  (1024 * 1024)
#define UG_JWT_MIN_RSA_BITS  2048
#define UG_JWT_MAX_RSA_BITS  16384
#define UG_JWT_MIN_SECRET    32           /* HS256; HS384 48, HS512 64 */
#define UG_JWT_MAX_SECRET    4096


typedef struct ug_jwt_keys_s  ug_jwt_keys_t;


/* An empty key set, or NULL if out of memory. */
ug_jwt_keys_t *ug_jwt_keys_new(void);

void ug_jwt_keys_free(ug_jwt_keys_t *keys);

/*
 * Adds the keys in text: a JWKS ({"keys": [...]}), a single JWK, or one
 * or more PEM public keys ("-----BEGIN PUBLIC KEY-----", i.e.
 * SubjectPublicKeyInfo).  JWKs may be RSA (n, e), EC (crv P-256 or P-384,
 * x, y), OKP (crv Ed25519, x) or oct (k, for HS*); kid, alg and use are
 * honoured: a key with "alg" verifies only that algorithm, a key with
 * "use" other than "sig" is skipped.  Private members are ignored.
 *
 * All or nothing: returns 0, or -1 with a NUL-terminated message in err
 * naming the key and what is wrong with it, e.g.
 * "key 2: EC key with unsupported crv \"P-521\"", and the set unchanged.
 */
int ug_jwt_keys_add_text(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size);

/*
 * Adds an HMAC secret without kid (usage_gate_jwt_secret_file: the
 * caller strips one trailing newline).  A secret verifies HS256 when it
 * is at least 32 bytes long, HS384 from 48 and HS512 from 64 (RFC 7518
 * section 3.2: no shorter than the hash).  Returns 0, or -1 with a
 * message in err.
 */
int ug_jwt_keys_add_secret(ug_jwt_keys_t *keys, const unsigned char *secret,
    size_t len, char *err, size_t err_size);

/* Number of keys in the set. */
size_t ug_jwt_keys_count(const ug_jwt_keys_t *keys);

/*
 * The UG_JWT_ALG_* bits that some key in the set can verify.  The
 * default allow-list is this mask: asymmetric algorithms of the keys
 * present, and HS* only when a secret (or an oct JWK) was configured.
 */
unsigned ug_jwt_keys_algs(const ug_jwt_keys_t *keys);

/*
 * UG_JWT_ALG_* for an algorithm name ("RS256", "EdDSA", ...), compared
 * exactly as RFC 7518 spells them; -1 if unknown ("none" is unknown).
 */
int ug_jwt_alg_from_name(const char *name, size_t len);

/* The name of one UG_JWT_ALG_* bit, or "?" */
const char *ug_jwt_alg_name(int alg);

#endif /* UG_JWK_H */
