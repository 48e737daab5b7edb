#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ug_b64url.h"
#include "ug_identity.h"
#include "ug_jwt.h"


/*
 * Times are clamped to +-2^40 s (about 35,000 years) so that adding the
 * leeway can never overflow, whatever a token claims.
 */
#define UG_JWT_TIME_MAX   ((int64_t) 1 << 40)

/* Decoded segments of the largest token fit this buffer. */
#define UG_JWT_SEG_MAX    UG_B64URL_DECODED_LEN(UG_JWT_MAX_TOKEN)

/* An RSA-16384 modulus, with room for a leading zero byte. */
#define UG_JWT_RSA_N_MAX  (UG_JWT_MAX_RSA_BITS / 8 + 1)

/* Longest dotted claim path component looked up. */
#define UG_JWT_PATH_MAX   256


enum {
    UG_KTY_OCT = 1,
    UG_KTY_RSA,
    UG_KTY_EC,
    UG_KTY_OKP
};

enum {
    UG_MD_NONE = -1,
    UG_MD_SHA256 = 0,
    UG_MD_SHA384,
    UG_MD_SHA512,
    UG_MD_N
};


typedef struct {
    unsigned        algs;         /* what this key may verify */
    int             kty;
    size_t          coord;        /* EC: bytes per coordinate */
    EVP_PKEY       *pkey;         /* RSA, EC, OKP */
    unsigned char  *secret;       /* oct */
    size_t          secret_len;
    int             has_kid;
    size_t          kid_len;
    char            kid[UG_ID_MAX + 1];
} ug_jwt_key_t;


struct ug_jwt_keys_s {
    EVP_MD         *md[UG_MD_N];
    size_t          n;
    ug_jwt_key_t    keys[UG_JWT_MAX_KEYS];
};


typedef struct {
    const char     *name;
    int             alg;
    int             kty;
    int             md;
    size_t          coord;        /* ES: bytes per coordinate */
} ug_jwt_alg_t;


static const ug_jwt_alg_t  ug_jwt_algs[] = {
    { "HS256", UG_JWT_ALG_HS256, UG_KTY_OCT, UG_MD_SHA256, 0 },
    { "HS384", UG_JWT_ALG_HS384, UG_KTY_OCT, UG_MD_SHA384, 0 },
    { "HS512", UG_JWT_ALG_HS512, UG_KTY_OCT, UG_MD_SHA512, 0 },
    { "RS256", UG_JWT_ALG_RS256, UG_KTY_RSA, UG_MD_SHA256, 0 },
    { "RS384", UG_JWT_ALG_RS384, UG_KTY_RSA, UG_MD_SHA384, 0 },
    { "RS512", UG_JWT_ALG_RS512, UG_KTY_RSA, UG_MD_SHA512, 0 },
    { "PS256", UG_JWT_ALG_PS256, UG_KTY_RSA, UG_MD_SHA256, 0 },
    { "PS384", UG_JWT_ALG_PS384, UG_KTY_RSA, UG_MD_SHA384, 0 },
    { "PS512", UG_JWT_ALG_PS512, UG_KTY_RSA, UG_MD_SHA512, 0 },
    { "ES256", UG_JWT_ALG_ES256, UG_KTY_EC, UG_MD_SHA256, 32 },
    { "ES384", UG_JWT_ALG_ES384, UG_KTY_EC, UG_MD_SHA384, 48 },
    { "EdDSA", UG_JWT_ALG_EDDSA, UG_KTY_OKP, UG_MD_NONE, 0 },
    { NULL, 0, 0, 0, 0 }
};

static const char  *ug_jwt_md_names[UG_MD_N] = {
    "SHA256", "SHA384", "SHA512"
};

static const char  *ug_jwt_default_plan_claims[] = {
    "public_metadata.plan", "meta.plan"
};

static const char  *ug_jwt_default_org_claims[] = {
    "org_id", "org"
};


/* The pieces of a token that ug_jwt_parse found. */
typedef struct {
    const ug_jwt_alg_t   *alg;
    int                   has_kid;
    size_t                kid_len;      /* UG_ID_MAX + 1: too long */
    char                  kid[UG_ID_MAX + 1];
    size_t                input_len;    /* header.payload */
    size_t                payload_len;
    size_t                sig_len;
    unsigned char         payload[UG_JWT_SEG_MAX];
    unsigned char         sig[UG_JWT_SEG_MAX];
} ug_jwt_token_t;


static void ug_jwt_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ug_jwt_printable(char *dst, size_t size, const char *s,
    size_t len);
static int ug_json_depth_ok(const unsigned char *p, size_t len, int max);
static const char *ug_jwt_find(const char *text, size_t len,
    const char *s);
static const ug_jwt_alg_t *ug_jwt_alg_find(int alg);
static unsigned ug_jwt_secret_algs(size_t len);
static int ug_jwt_add_jwks(ug_jwt_keys_t *keys, const char *text,
    size_t len, char *err, size_t err_size);
static int ug_jwt_add_jwk(ug_jwt_keys_t *keys, json_t *jwk, size_t index,
    char *err, size_t err_size);
static int ug_jwt_jwk_rsa(ug_jwt_key_t *key, json_t *jwk, const char *who,
    char *err, size_t err_size);
static int ug_jwt_jwk_ec(ug_jwt_key_t *key, json_t *jwk, const char *who,
    char *err, size_t err_size);
static int ug_jwt_jwk_okp(ug_jwt_key_t *key, json_t *jwk, const char *who,
    char *err, size_t err_size);
static int ug_jwt_jwk_oct(ug_jwt_key_t *key, json_t *jwk, const char *who,
    char *err, size_t err_size);
static long ug_jwt_jwk_bytes(json_t *jwk, const char *name,
    unsigned char *buf, size_t size, const char *who, char *err,
    size_t err_size);
static EVP_PKEY *ug_jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld);
static int ug_jwt_add_pem(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size);
static int ug_jwt_pem_no_password(char *buf, int size, int rwflag, void *u);
static int ug_jwt_key_from_pkey(ug_jwt_key_t *key, EVP_PKEY *pkey,
    const char *who, char *err, size_t err_size);
static void ug_jwt_key_clear(ug_jwt_key_t *key);
static void ug_jwt_keys_truncate(ug_jwt_keys_t *keys, size_t n);
static ug_jwt_rc_t ug_jwt_parse(unsigned algs, const char *token,
    size_t len, ug_jwt_token_t *t, ug_jwt_claims_t *claims,
    const char **detail);
static json_t *ug_jwt_json_object(const unsigned char *buf, size_t len,
    int is_header, const char **detail);
static ug_jwt_rc_t ug_jwt_check_signature(const ug_jwt_keys_t *keys,
    ug_jwt_token_t *t, const char *input, const char **detail);
static int ug_jwt_verify_key(const ug_jwt_keys_t *keys,
    const ug_jwt_key_t *key, const ug_jwt_alg_t *alg, const char *input,
    size_t input_len, const unsigned char *sig, size_t sig_len);
static int ug_jwt_digest_verify(EVP_PKEY *pkey, const EVP_MD *md, int pss,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len);
static ug_jwt_rc_t ug_jwt_check_claims(const ug_jwt_policy_t *policy,
    json_t *payload, int64_t now, ug_jwt_claims_t *claims,
    const char **detail);
static int ug_jwt_seconds(json_t *v, int round_up, int64_t *out);
static int ug_jwt_string_in(json_t *v, const char **list, size_t n);
static json_t *ug_jwt_path(json_t *root, const char *path);
static int ug_jwt_id_value(json_t *v, char *dst, size_t *dst_len);


static void
ug_jwt_err(char *err, size_t size, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || size == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, size, fmt, args);
    va_end(args);
}


/*
 * Copies a value from the key file into an error message: at most 32
 * bytes, anything unprintable as '?', so a message stays one short line.
 */
static void
ug_jwt_printable(char *dst, size_t size, const char *s, size_t len)
{
    size_t  i, n;

    n = len < 32 ? len : 32;

    if (n + 4 > size) {
        n = size > 4 ? size - 4 : 0;
    }

    for (i = 0; i < n; i++) {
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    }

    if (n < len) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }

    dst[i] = '\0';
}


/*
 * jansson allows 2048 levels of nesting; we want 32, and want to know
 * before the parser allocates anything.  A bracket counts when it is
 * outside a string; the string rules are JSON's, so wherever this scan
 * and the parser could disagree the parser has already failed.
 */
static int
ug_json_depth_ok(const unsigned char *p, size_t len, int max)
{
    size_t  i;
    int     depth, in_string;

    depth = 0;
    in_string = 0;

    for (i = 0; i < len; i++) {

        if (in_string) {
            if (p[i] == '\\') {
                i++;

            } else if (p[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (p[i]) {
        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > max) {
                return 0;
            }
            break;

        case ']':
        case '}':
            if (depth > 0) {
                depth--;
            }
            break;
        }
    }

    return 1;
}


/* The first s in text, or NULL: memmem() is a GNU extension. */
static const char *
ug_jwt_find(const char *text, size_t len, const char *s)
{
    size_t  i, n;

    n = strlen(s);

    for (i = 0; i + n <= len; i++) {
        if (text[i] == s[0] && memcmp(text + i, s, n) == 0) {
            return text + i;
        }
    }

    return NULL;
}


int
ug_jwt_alg_from_name(const char *name, size_t len)
{
    const ug_jwt_alg_t  *a;

    for (a = ug_jwt_algs; a->name; a++) {
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
            return a->alg;
        }
    }

    return -1;
}


const char *
ug_jwt_alg_name(int alg)
{
    const ug_jwt_alg_t  *a;

    a = ug_jwt_alg_find(alg);

    return a ? a->name : "?";
}


static const ug_jwt_alg_t *
ug_jwt_alg_find(int alg)
{
    const ug_jwt_alg_t  *a;

    for (a = ug_jwt_algs; a->name; a++) {
        if (a->alg == alg) {
            return a;
        }
    }

    return NULL;
}


const char *
ug_jwt_rc_name(ug_jwt_rc_t rc)
{
    switch (rc) {
    case UG_JWT_OK:
        return "ok";
    case UG_JWT_MALFORMED:
        return "malformed";
    case UG_JWT_TOO_LARGE:
        return "too_large";
    case UG_JWT_ALG_NONE:
        return "alg_none";
    case UG_JWT_ALG_NOT_ALLOWED:
        return "alg_not_allowed";
    case UG_JWT_CRIT:
        return "crit";
    case UG_JWT_UNKNOWN_KEY:
        return "unknown_key";
    case UG_JWT_BAD_SIGNATURE:
        return "bad_signature";
    case UG_JWT_EXPIRED:
        return "expired";
    case UG_JWT_NOT_YET_VALID:
        return "not_yet_valid";
    case UG_JWT_BAD_ISSUER:
        return "bad_issuer";
    case UG_JWT_BAD_AUDIENCE:
        return "bad_audience";
    case UG_JWT_NO_SUBJECT:
        return "no_subject";
    case UG_JWT_INTERNAL:
        return "internal";
    }

    return "internal";
}


/* RFC 7518 section 3.2: an HMAC key no shorter than the hash output. */
static unsigned
ug_jwt_secret_algs(size_t len)
{
    unsigned  algs;

    algs = 0;

    if (len >= 32) {
        algs |= UG_JWT_ALG_HS256;
    }

    if (len >= 48) {
        algs |= UG_JWT_ALG_HS384;
    }

    if (len >= 64) {
        algs |= UG_JWT_ALG_HS512;
    }

    return algs;
}


/* key sets */


ug_jwt_keys_t *
ug_jwt_keys_new(void)
{
    int             i;
    ug_jwt_keys_t  *keys;

    keys = calloc(1, sizeof(ug_jwt_keys_t));
    if (keys == NULL) {
        return NULL;
    }

    /* fetched once: an implicit fetch on every verify costs a lookup */

    for (i = 0; i < UG_MD_N; i++) {
        keys->md[i] = EVP_MD_fetch(NULL, ug_jwt_md_names[i], NULL);
        if (keys->md[i] == NULL) {
            ug_jwt_keys_free(keys);
            return NULL;
        }
    }

    return keys;
}


void
ug_jwt_keys_free(ug_jwt_keys_t *keys)
{
    int  i;

    if (keys == NULL) {
        return;
    }

    ug_jwt_keys_truncate(keys, 0);

    for (i = 0; i < UG_MD_N; i++) {
        EVP_MD_free(keys->md[i]);
    }

    free(keys);
}


size_t
ug_jwt_keys_count(const ug_jwt_keys_t *keys)
{
    return keys ? keys->n : 0;
}


unsigned
ug_jwt_keys_algs(const ug_jwt_keys_t *keys)
{
    size_t    i;
    unsigned  algs;

    algs = 0;

    if (keys == NULL) {
        return 0;
    }

    for (i = 0; i < keys->n; i++) {
        algs |= keys->keys[i].algs;
    }

    return algs;
}


static void
ug_jwt_key_clear(ug_jwt_key_t *key)
{
    EVP_PKEY_free(key->pkey);

    if (key->secret) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }

    memset(key, 0, sizeof(ug_jwt_key_t));
}


static void
ug_jwt_keys_truncate(ug_jwt_keys_t *keys, size_t n)
{
    while (keys->n > n) {
        keys->n--;
        ug_jwt_key_clear(&keys->keys[keys->n]);
    }
}


int
ug_jwt_keys_add_text(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size)
{
    int     rc;
    size_t  i, n;

    if (len > UG_JWT_MAX_KEY_TEXT) {
        ug_jwt_err(err, err_size, "key text is larger than %d bytes",
                   UG_JWT_MAX_KEY_TEXT);
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r'
            && text[i] != '\n')
        {
            break;
        }
    }

    n = keys->n;

    if (i < len && text[i] == '{') {
        rc = ug_jwt_add_jwks(keys, text + i, len - i, err, err_size);

    } else if (ug_jwt_find(text + i, len - i, "-----BEGIN ") != NULL) {
        rc = ug_jwt_add_pem(keys, text + i, len - i, err, err_size);

    } else {
        ug_jwt_err(err, err_size, "key text is neither JWKS JSON "
                   "nor a PEM public key");
        rc = -1;
    }

    /* all or nothing: a half-read key file must not half apply */

    if (rc != 0) {
        ug_jwt_keys_truncate(keys, n);
    }

    ERR_clear_error();

    return rc;
}


int
ug_jwt_keys_add_secret(ug_jwt_keys_t *keys, const unsigned char *secret,
    size_t len, char *err, size_t err_size)
{
    ug_jwt_key_t  *key;

    if (len < UG_JWT_MIN_SECRET) {
        ug_jwt_err(err, err_size, "secret is %zu bytes long; HS256 needs "
                   "at least %d", len, UG_JWT_MIN_SECRET);
        return -1;
    }

    if (len > UG_JWT_MAX_SECRET) {
        ug_jwt_err(err, err_size, "secret is longer than %d bytes",
                   UG_JWT_MAX_SECRET);
        return -1;
    }

    if (keys->n == UG_JWT_MAX_KEYS) {
        ug_jwt_err(err, err_size, "more than %d keys", UG_JWT_MAX_KEYS);
        return -1;
    }

    key = &keys->keys[keys->n];

    key->secret = malloc(len);
    if (key->secret == NULL) {
        ug_jwt_err(err, err_size, "out of memory");
        return -1;
    }

    memcpy(key->secret, secret, len);
    key->secret_len = len;
    key->kty = UG_KTY_OCT;
    key->algs = ug_jwt_secret_algs(len);
    keys->n++;

    return 0;
}


static int
ug_jwt_add_jwks(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size)
{
    int           rc;
    size_t        i, n, added;
    json_t       *root, *list;
    json_error_t  jerr;

    if (!ug_json_depth_ok((const unsigned char *) text, len,
                          UG_JWT_MAX_DEPTH))
    {
        ug_jwt_err(err, err_size, "key JSON nests deeper than %d",
                   UG_JWT_MAX_DEPTH);
        return -1;
    }

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        ug_jwt_err(err, err_size, "invalid JSON at line %d column %d: %s",
                   jerr.line, jerr.column, jerr.text);
        return -1;
    }

    if (!json_is_object(root)) {
        ug_jwt_err(err, err_size, "key JSON is not an object");
        json_decref(root);
        return -1;
    }

    list = json_object_get(root, "keys");

    if (list == NULL) {
        /* a single JWK */
        rc = ug_jwt_add_jwk(keys, root, 0, err, err_size);
        json_decref(root);

        if (rc == 0) {
            return 0;
        }

        if (rc == 1) {
            ug_jwt_err(err, err_size, "the key's \"use\" is not \"sig\"");
        }

        return -1;
    }

    if (!json_is_array(list)) {
        ug_jwt_err(err, err_size, "\"keys\" is not an array");
        json_decref(root);
        return -1;
    }

    n = json_array_size(list);

    if (n == 0) {
        ug_jwt_err(err, err_size, "\"keys\" is empty");
        json_decref(root);
        return -1;
    }

    added = 0;

    for (i = 0; i < n; i++) {
        rc = ug_jwt_add_jwk(keys, json_array_get(list, i), i + 1, err,
                            err_size);
        if (rc < 0) {
            json_decref(root);
            return -1;
        }

        added += (rc == 0);
    }

    json_decref(root);

    if (added == 0) {
        ug_jwt_err(err, err_size, "no key in \"keys\" has \"use\" \"sig\"");
        return -1;
    }

    return 0;
}


/*
 * Adds one JWK; index is its 1-based place in "keys", or 0 for a lone
 * JWK.  Returns 0 when added, 1 when skipped (not a signature key), -1
 * with err set.
 */
static int
ug_jwt_add_jwk(ug_jwt_keys_t *keys, json_t *jwk, size_t index, char *err,
    size_t err_size)
{
    int            rc, a;
    char           who[32], val[40];
    json_t        *v;
    const char    *s;
    size_t         len;
    ug_jwt_key_t  *key;

    if (index) {
        snprintf(who, sizeof(who), "key %zu", index);

    } else {
        snprintf(who, sizeof(who), "key");
    }

    if (!json_is_object(jwk)) {
        ug_jwt_err(err, err_size, "%s: not a JSON object", who);
        return -1;
    }

    v = json_object_get(jwk, "use");

    if (v != NULL) {
        if (!json_is_string(v)) {
            ug_jwt_err(err, err_size, "%s: \"use\" is not a string", who);
            return -1;
        }

        if (strcmp(json_string_value(v), "sig") != 0) {
            /* an encryption key published beside the signing keys */
            return 1;
        }
    }

    if (keys->n == UG_JWT_MAX_KEYS) {
        ug_jwt_err(err, err_size, "%s: more than %d keys", who,
                   UG_JWT_MAX_KEYS);
        return -1;
    }

    key = &keys->keys[keys->n];

    v = json_object_get(jwk, "kty");

    if (v == NULL) {
        ug_jwt_err(err, err_size, "%s: no \"kty\"", who);
        return -1;
    }

    if (!json_is_string(v)) {
        ug_jwt_err(err, err_size, "%s: \"kty\" is not a string", who);
        return -1;
    }

    s = json_string_value(v);

    if (strcmp(s, "RSA") == 0) {
        rc = ug_jwt_jwk_rsa(key, jwk, who, err, err_size);

    } else if (strcmp(s, "EC") == 0) {
        rc = ug_jwt_jwk_ec(key, jwk, who, err, err_size);

    } else if (strcmp(s, "OKP") == 0) {
        rc = ug_jwt_jwk_okp(key, jwk, who, err, err_size);

    } else if (strcmp(s, "oct") == 0) {
        rc = ug_jwt_jwk_oct(key, jwk, who, err, err_size);

    } else {
        ug_jwt_printable(val, sizeof(val), s, json_string_length(v));
        ug_jwt_err(err, err_size, "%s: unsupported kty \"%s\"", who, val);
        return -1;
    }

    if (rc != 0) {
        ug_jwt_key_clear(key);
        return -1;
    }

    v = json_object_get(jwk, "kid");

    if (v != NULL) {
        if (!json_is_string(v)) {
            ug_jwt_err(err, err_size, "%s: \"kid\" is not a string", who);
            ug_jwt_key_clear(key);
            return -1;
        }

        len = json_string_length(v);

        if (len > UG_ID_MAX) {
            ug_jwt_err(err, err_size, "%s: \"kid\" is longer than %d bytes",
                       who, UG_ID_MAX);
            ug_jwt_key_clear(key);
            return -1;
        }

        memcpy(key->kid, json_string_value(v), len);
        key->kid[len] = '\0';
        key->kid_len = len;
        key->has_kid = 1;
    }

    v = json_object_get(jwk, "alg");

    if (v != NULL) {
        if (!json_is_string(v)) {
            ug_jwt_err(err, err_size, "%s: \"alg\" is not a string", who);
            ug_jwt_key_clear(key);
            return -1;
        }

        s = json_string_value(v);
        len = json_string_length(v);
        a = ug_jwt_alg_from_name(s, len);

        ug_jwt_printable(val, sizeof(val), s, len);

        if (a < 0) {
            ug_jwt_err(err, err_size, "%s: unsupported alg \"%s\"", who, val);
            ug_jwt_key_clear(key);
            return -1;
        }

        if (!(key->algs & (unsigned) a)) {
            ug_jwt_err(err, err_size, "%s: alg \"%s\" does not fit this key",
                       who, val);
            ug_jwt_key_clear(key);
            return -1;
        }

        /* a key published for one algorithm verifies only that one */
        key->algs = (unsigned) a;
    }

    keys->n++;

    return 0;
}


/*
 * Decodes the base64url member `name` of a JWK into buf.  Returns the
 * length, or -1 with err set.
 */
static long
ug_jwt_jwk_bytes(json_t *jwk, const char *name, unsigned char *buf,
    size_t size, const char *who, char *err, size_t err_size)
{
    long     n;
    json_t  *v;

    v = json_object_get(jwk, name);

    if (v == NULL) {
        ug_jwt_err(err, err_size, "%s: no \"%s\"", who, name);
        return -1;
    }

    if (!json_is_string(v)) {
        ug_jwt_err(err, err_size, "%s: \"%s\" is not a string", who, name);
        return -1;
    }

    n = ug_b64url_decode(buf, size, json_string_value(v),
                         json_string_length(v));
    if (n < 0) {
        if (UG_B64URL_DECODED_LEN(json_string_length(v)) > size) {
            ug_jwt_err(err, err_size, "%s: \"%s\" is too long", who, name);

        } else {
            ug_jwt_err(err, err_size, "%s: \"%s\" is not base64url", who,
                       name);
        }

        return -1;
    }

    if (n == 0) {
        ug_jwt_err(err, err_size, "%s: \"%s\" is empty", who, name);
        return -1;
    }

    return n;
}


static EVP_PKEY *
ug_jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    pkey = NULL;
    ctx = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL) {
        return NULL;
    }

    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return pkey;
}


static int
ug_jwt_jwk_rsa(ug_jwt_key_t *key, json_t *jwk, const char *who, char *err,
    size_t err_size)
{
    int              bits;
    long             n_len, e_len;
    BIGNUM          *n, *e;
    unsigned char    nbuf[UG_JWT_RSA_N_MAX], ebuf[8];
    OSSL_PARAM_BLD  *bld;

    n_len = ug_jwt_jwk_bytes(jwk, "n", nbuf, sizeof(nbuf), who, err,
                             err_size);
    if (n_len < 0) {
        return -1;
    }

    e_len = ug_jwt_jwk_bytes(jwk, "e", ebuf, sizeof(ebuf), who, err,
                             err_size);
    if (e_len < 0) {
        return -1;
    }

    n = BN_bin2bn(nbuf, (int) n_len, NULL);
    e = BN_bin2bn(ebuf, (int) e_len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL) {
        ug_jwt_err(err, err_size, "%s: out of memory", who);
        goto failed;
    }

    bits = BN_num_bits(n);

    if (bits < UG_JWT_MIN_RSA_BITS || bits > UG_JWT_MAX_RSA_BITS) {
        ug_jwt_err(err, err_size, "%s: RSA modulus of %d bits (%d to %d "
                   "accepted)", who, bits, UG_JWT_MIN_RSA_BITS,
                   UG_JWT_MAX_RSA_BITS);
        goto failed;
    }

    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e)) {
        ug_jwt_err(err, err_size, "%s: not a valid RSA public key", who);
        goto failed;
    }

    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        ug_jwt_err(err, err_size, "%s: out of memory", who);
        goto failed;
    }

    key->pkey = ug_jwt_pkey_fromdata("RSA", bld);
    if (key->pkey == NULL) {
        ug_jwt_err(err, err_size, "%s: OpenSSL refused the RSA key", who);
        goto failed;
    }

    key->kty = UG_KTY_RSA;
    key->algs = UG_JWT_ALG_RSA;

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);

    return 0;

failed:

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);

    return -1;
}


static int
ug_jwt_jwk_ec(ug_jwt_key_t *key, json_t *jwk, const char *who, char *err,
    size_t err_size)
{
    int              ok;
    long             x_len, y_len;
    char             val[40];
    json_t          *v;
    size_t           coord;
    unsigned         algs;
    const char      *crv, *group;
    EVP_PKEY_CTX    *ctx;
    unsigned char    pub[1 + 2 * 48], xbuf[48], ybuf[48];
    OSSL_PARAM_BLD  *bld;

    v = json_object_get(jwk, "crv");

    if (v == NULL || !json_is_string(v)) {
        ug_jwt_err(err, err_size, "%s: EC key without a \"crv\" string", who);
        return -1;
    }

    crv = json_string_value(v);

    if (strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        coord = 32;
        algs = UG_JWT_ALG_ES256;

    } else if (strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        coord = 48;
        algs = UG_JWT_ALG_ES384;

    } else {
        ug_jwt_printable(val, sizeof(val), crv, json_string_length(v));
        ug_jwt_err(err, err_size, "%s: EC key with unsupported crv \"%s\"",
                   who, val);
        return -1;
    }

    x_len = ug_jwt_jwk_bytes(jwk, "x", xbuf, sizeof(xbuf), who, err,
                             err_size);
    if (x_len < 0) {
        return -1;
    }

    y_len = ug_jwt_jwk_bytes(jwk, "y", ybuf, sizeof(ybuf), who, err,
                             err_size);
    if (y_len < 0) {
        return -1;
    }

    /* RFC 7518 section 6.2.1.2: full length, leading zeros kept */

    if ((size_t) x_len != coord || (size_t) y_len != coord) {
        ug_jwt_err(err, err_size, "%s: EC \"x\" and \"y\" must be %zu bytes "
                   "each for %s", who, coord, crv);
        return -1;
    }

    pub[0] = 0x04;
    memcpy(pub + 1, xbuf, coord);
    memcpy(pub + 1 + coord, ybuf, coord);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, 0) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            pub, 1 + 2 * coord) != 1)
    {
        OSSL_PARAM_BLD_free(bld);
        ug_jwt_err(err, err_size, "%s: out of memory", who);
        return -1;
    }

    key->pkey = ug_jwt_pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);

    if (key->pkey == NULL) {
        ug_jwt_err(err, err_size, "%s: EC point is not on %s", who, crv);
        return -1;
    }

    /* an off-curve point invites invalid-curve attacks: check it */

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    ok = (ctx != NULL && EVP_PKEY_public_check(ctx) == 1);
    EVP_PKEY_CTX_free(ctx);

    if (!ok) {
        ug_jwt_err(err, err_size, "%s: EC point is not on %s", who, crv);
        return -1;
    }

    key->kty = UG_KTY_EC;
    key->coord = coord;
    key->algs = algs;

    return 0;
}


static int
ug_jwt_jwk_okp(ug_jwt_key_t *key, json_t *jwk, const char *who, char *err,
    size_t err_size)
{
    long             x_len;
    char             val[40];
    json_t          *v;
    unsigned char    xbuf[32];
    OSSL_PARAM_BLD  *bld;

    v = json_object_get(jwk, "crv");

    if (v == NULL || !json_is_string(v)) {
        ug_jwt_err(err, err_size, "%s: OKP key without a \"crv\" string",
                   who);
        return -1;
    }

    if (strcmp(json_string_value(v), "Ed25519") != 0) {
        ug_jwt_printable(val, sizeof(val), json_string_value(v),
                         json_string_length(v));
        ug_jwt_err(err, err_size, "%s: OKP key with unsupported crv \"%s\"",
                   who, val);
        return -1;
    }

    x_len = ug_jwt_jwk_bytes(jwk, "x", xbuf, sizeof(xbuf), who, err,
                             err_size);
    if (x_len < 0) {
        return -1;
    }

    if (x_len != 32) {
        ug_jwt_err(err, err_size, "%s: Ed25519 \"x\" must be 32 bytes", who);
        return -1;
    }

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            xbuf, 32) != 1)
    {
        OSSL_PARAM_BLD_free(bld);
        ug_jwt_err(err, err_size, "%s: out of memory", who);
        return -1;
    }

    key->pkey = ug_jwt_pkey_fromdata("ED25519", bld);
    OSSL_PARAM_BLD_free(bld);

    if (key->pkey == NULL) {
        ug_jwt_err(err, err_size, "%s: OpenSSL refused the Ed25519 key", who);
        return -1;
    }

    key->kty = UG_KTY_OKP;
    key->algs = UG_JWT_ALG_EDDSA;

    return 0;
}


static int
ug_jwt_jwk_oct(ug_jwt_key_t *key, json_t *jwk, const char *who, char *err,
    size_t err_size)
{
    long            k_len;
    unsigned char  *buf;

    buf = malloc(UG_JWT_MAX_SECRET);
    if (buf == NULL) {
        ug_jwt_err(err, err_size, "%s: out of memory", who);
        return -1;
    }

    k_len = ug_jwt_jwk_bytes(jwk, "k", buf, UG_JWT_MAX_SECRET, who, err,
                             err_size);
    if (k_len < 0) {
        free(buf);
        return -1;
    }

    if (k_len < UG_JWT_MIN_SECRET) {
        ug_jwt_err(err, err_size, "%s: secret \"k\" is %ld bytes long; "
                   "HS256 needs at least %d", who, k_len, UG_JWT_MIN_SECRET);
        OPENSSL_cleanse(buf, (size_t) k_len);
        free(buf);
        return -1;
    }

    key->secret = buf;
    key->secret_len = (size_t) k_len;
    key->kty = UG_KTY_OCT;
    key->algs = ug_jwt_secret_algs((size_t) k_len);

    return 0;
}


static int
ug_jwt_pem_no_password(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    /* never prompt on a terminal for an encrypted PEM block */
    return -1;
}


/*
 * Reads every PEM block of text: each must be a "PUBLIC KEY"
 * (SubjectPublicKeyInfo).  The blocks are found here rather than by
 * OpenSSL, whose decoders report the end of the text, a private key and
 * a damaged block all as the same error.
 */
static int
ug_jwt_add_pem(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size)
{
    BIO         *bio;
    char         who[32], label[40];
    size_t       index, rest, n;
    EVP_PKEY    *pkey;
    const char  *p, *begin, *end, *last;

    static const char  begin_pk[] = "-----BEGIN PUBLIC KEY-----";
    static const char  end_pk[] = "-----END PUBLIC KEY-----";

    last = text + len;
    p = text;

    for (index = 1; /* void */; index++) {
        begin = ug_jwt_find(p, last - p, "-----BEGIN ");

        if (begin == NULL) {
            break;
        }

        snprintf(who, sizeof(who), "PEM key %zu", index);

        rest = last - begin;

        if (rest < sizeof(begin_pk) - 1
            || memcmp(begin, begin_pk, sizeof(begin_pk) - 1) != 0)
        {
            /* name what was found: "PRIVATE KEY", "CERTIFICATE", ... */
            p = begin + 11;
            end = ug_jwt_find(p, last - p, "-----");
            n = end ? (size_t) (end - p) : 0;
            ug_jwt_printable(label, sizeof(label), p, n);
            ug_jwt_err(err, err_size, "%s: \"%s\" is not accepted (need "
                       "\"-----BEGIN PUBLIC KEY-----\")", who, label);
            return -1;
        }

        end = ug_jwt_find(begin, last - begin, end_pk);

        if (end == NULL) {
            ug_jwt_err(err, err_size, "%s: no \"%s\"", who, end_pk);
            return -1;
        }

        end += sizeof(end_pk) - 1;

        if (keys->n == UG_JWT_MAX_KEYS) {
            ug_jwt_err(err, err_size, "%s: more than %d keys", who,
                       UG_JWT_MAX_KEYS);
            return -1;
        }

        bio = BIO_new_mem_buf(begin, (int) (end - begin));
        if (bio == NULL) {
            ug_jwt_err(err, err_size, "out of memory");
            return -1;
        }

        pkey = PEM_read_bio_PUBKEY(bio, NULL, ug_jwt_pem_no_password, NULL);
        BIO_free(bio);

        if (pkey == NULL) {
            ug_jwt_err(err, err_size, "%s: not a valid public key", who);
            return -1;
        }

        if (ug_jwt_key_from_pkey(&keys->keys[keys->n], pkey, who, err,
                                 err_size)
            != 0)
        {
            EVP_PKEY_free(pkey);
            return -1;
        }

        keys->n++;
        p = end;
    }

    if (index == 1) {
        ug_jwt_err(err, err_size, "no PEM block in the text");
        return -1;
    }

    return 0;
}


/* Takes pkey into key when its type is one we verify with. */
static int
ug_jwt_key_from_pkey(ug_jwt_key_t *key, EVP_PKEY *pkey, const char *who,
    char *err, size_t err_size)
{
    int     bits;
    char    group[64];
    size_t  glen;

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
        bits = EVP_PKEY_get_bits(pkey);

        if (bits < UG_JWT_MIN_RSA_BITS || bits > UG_JWT_MAX_RSA_BITS) {
            ug_jwt_err(err, err_size, "%s: RSA modulus of %d bits (%d to %d "
                       "accepted)", who, bits, UG_JWT_MIN_RSA_BITS,
                       UG_JWT_MAX_RSA_BITS);
            return -1;
        }

        key->kty = UG_KTY_RSA;
        key->algs = UG_JWT_ALG_RSA;
        break;

    case EVP_PKEY_EC:
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
            ug_jwt_err(err, err_size, "%s: EC key without a named curve",
                       who);
            return -1;
        }

        if (strcmp(group, "prime256v1") == 0) {
            key->coord = 32;
            key->algs = UG_JWT_ALG_ES256;

        } else if (strcmp(group, "secp384r1") == 0) {
            key->coord = 48;
            key->algs = UG_JWT_ALG_ES384;

        } else {
            ug_jwt_err(err, err_size, "%s: EC key on unsupported curve "
                       "\"%.32s\"", who, group);
            return -1;
        }

        key->kty = UG_KTY_EC;
        break;

    case EVP_PKEY_ED25519:
        key->kty = UG_KTY_OKP;
        key->algs = UG_JWT_ALG_EDDSA;
        break;

    default:
        ug_jwt_err(err, err_size, "%s: unsupported key type (RSA, EC P-256 "
                   "or P-384, Ed25519 accepted)", who);
        return -1;
    }

    key->pkey = pkey;

    return 0;
}


/* policy */


void
ug_jwt_policy_init(ug_jwt_policy_t *policy, const ug_jwt_keys_t *keys)
{
    memset(policy, 0, sizeof(ug_jwt_policy_t));

    policy->algs = ug_jwt_keys_algs(keys);
    policy->leeway = UG_JWT_LEEWAY;
    policy->plan_claims = ug_jwt_default_plan_claims;
    policy->n_plan_claims = sizeof(ug_jwt_default_plan_claims)
                            / sizeof(ug_jwt_default_plan_claims[0]);
    policy->org_claims = ug_jwt_default_org_claims;
    policy->n_org_claims = sizeof(ug_jwt_default_org_claims)
                           / sizeof(ug_jwt_default_org_claims[0]);
}


/* verification */


ug_jwt_rc_t
ug_jwt_verify(const ug_jwt_keys_t *keys, const ug_jwt_policy_t *policy,
    const char *token, size_t len, int64_t now, ug_jwt_claims_t *claims,
    const char **detail)
{
    json_t          *payload;
    const char      *d;
    ug_jwt_rc_t      rc;
    ug_jwt_token_t   t;

    d = NULL;
    payload = NULL;

    rc = ug_jwt_parse(policy->algs, token, len, &t, claims, &d);

    /*
     * The signature first: nothing in the payload is even parsed before
     * it is known to come from a key holder (RFC 7515 section 5.2).
     */

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_signature(keys, &t, token, &d);
    }

    if (rc == UG_JWT_OK) {
        payload = ug_jwt_json_object(t.payload, t.payload_len, 0, &d);
        rc = payload ? UG_JWT_OK : UG_JWT_MALFORMED;
    }

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_claims(policy, payload, now, claims, &d);
    }

    json_decref(payload);

    if (rc != UG_JWT_OK) {
        claims->sub_len = 0;
        claims->org_len = 0;
        claims->plan_len = 0;
        claims->sub[0] = '\0';
        claims->org[0] = '\0';
        claims->plan[0] = '\0';
        claims->exp = 0;
    }

    if (detail) {
        *detail = d ? d : "token accepted";
    }

    return rc;
}


ug_jwt_rc_t
ug_jwt_verify_jws(const ug_jwt_keys_t *keys, unsigned algs,
    const char *token, size_t len, ug_jwt_claims_t *claims,
    const char **detail)
{
    const char      *d;
    ug_jwt_rc_t      rc;
    ug_jwt_token_t   t;

    d = NULL;

    rc = ug_jwt_parse(algs, token, len, &t, claims, &d);

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_signature(keys, &t, token, &d);
    }

    if (detail) {
        *detail = d ? d : "signature verifies";
    }

    return rc;
}


/*
 * Splits and decodes a token and checks its header; the payload is only
 * decoded, into t->payload.
 */
static ug_jwt_rc_t
ug_jwt_parse(unsigned algs, const char *token, size_t len, ug_jwt_token_t *t,
    ug_jwt_claims_t *claims, const char **detail)
{
    int            a;
    long           n;
    json_t        *header, *v;
    const char    *dot1, *dot2, *end, *name, *sig;
    size_t         name_len;
    ug_jwt_rc_t    rc;
    unsigned char  buf[UG_JWT_SEG_MAX];

    memset(claims, 0, sizeof(ug_jwt_claims_t));
    t->alg = NULL;
    t->has_kid = 0;
    t->kid_len = 0;

    if (len > UG_JWT_MAX_TOKEN) {
        *detail = "token is larger than 8192 bytes";
        return UG_JWT_TOO_LARGE;
    }

    if (token == NULL || len == 0) {
        *detail = "malformed token: empty";
        return UG_JWT_MALFORMED;
    }

    end = token + len;

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        *detail = "malformed token: not three dot-separated parts";
        return UG_JWT_MALFORMED;
    }

    n = ug_b64url_decode(buf, sizeof(buf), token, dot1 - token);
    if (n < 0) {
        *detail = "malformed token: header is not base64url";
        return UG_JWT_MALFORMED;
    }

    header = ug_jwt_json_object(buf, (size_t) n, 1, detail);
    if (header == NULL) {
        return UG_JWT_MALFORMED;
    }

    rc = UG_JWT_OK;

    /* alg "none" goes before anything else, in any spelling */

    v = json_object_get(header, "alg");

    if (v == NULL || !json_is_string(v)) {
        *detail = "malformed token: header has no alg";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    name = json_string_value(v);
    name_len = json_string_length(v);

    if (name_len == 4 && strncasecmp(name, "none", 4) == 0) {
        *detail = "unsigned token (alg \"none\") is not accepted";
        rc = UG_JWT_ALG_NONE;
        goto done;
    }

    a = ug_jwt_alg_from_name(name, name_len);

    if (a < 0) {
        *detail = "token algorithm is not supported";
        rc = UG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }

    claims->alg = a;
    t->alg = ug_jwt_alg_find(a);

    v = json_object_get(header, "kid");

    if (v != NULL) {
        if (!json_is_string(v)) {
            *detail = "malformed token: kid is not a string";
            rc = UG_JWT_MALFORMED;
            goto done;
        }

        /* longer than any key's kid: it matches none */

        t->has_kid = 1;
        t->kid_len = json_string_length(v);

        if (t->kid_len > UG_ID_MAX) {
            t->kid_len = UG_ID_MAX + 1;

        } else {
            memcpy(t->kid, json_string_value(v), t->kid_len);

            /* for logs and $usage_gate_jwt_kid: only a printable kid */

            if (ug_id_check((const unsigned char *) t->kid, t->kid_len)
                == UG_ID_OK)
            {
                memcpy(claims->kid, t->kid, t->kid_len);
                claims->kid[t->kid_len] = '\0';
                claims->kid_len = t->kid_len;
            }
        }
    }

    if (!((unsigned) a & algs)) {
        *detail = "token algorithm is not accepted";
        rc = UG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }

    /* RFC 7515 section 4.1.11: we understand no extension */

    if (json_object_get(header, "crit") != NULL) {
        *detail = "token has a crit header, which is not supported";
        rc = UG_JWT_CRIT;
        goto done;
    }

    dot2 = memchr(dot1 + 1, '.', end - (dot1 + 1));

    if (dot2 == NULL || memchr(dot2 + 1, '.', end - (dot2 + 1)) != NULL) {
        *detail = "malformed token: not three dot-separated parts";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    n = ug_b64url_decode(t->payload, sizeof(t->payload), dot1 + 1,
                         dot2 - (dot1 + 1));
    if (n < 0) {
        *detail = "malformed token: payload is not base64url";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    t->payload_len = (size_t) n;

    sig = dot2 + 1;

    if (sig == end) {
        *detail = "token has no signature";
        rc = UG_JWT_BAD_SIGNATURE;
        goto done;
    }

    n = ug_b64url_decode(t->sig, sizeof(t->sig), sig, end - sig);
    if (n < 0) {
        *detail = "malformed token: signature is not base64url";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    t->sig_len = (size_t) n;
    t->input_len = dot2 - token;

done:

    json_decref(header);

    return rc;
}


/* Parses decoded bytes that must be a JSON object of bounded depth. */
static json_t *
ug_jwt_json_object(const unsigned char *buf, size_t len, int is_header,
    const char **detail)
{
    json_t  *j;

    if (!ug_json_depth_ok(buf, len, UG_JWT_MAX_DEPTH)) {
        *detail = is_header
                  ? "malformed token: header nests deeper than 32"
                  : "malformed token: payload nests deeper than 32";
        return NULL;
    }

    j = json_loadb((const char *) buf, len, JSON_REJECT_DUPLICATES, NULL);

    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        *detail = is_header
                  ? "malformed token: header is not a JSON object"
                  : "malformed token: payload is not a JSON object";
        return NULL;
    }

    return j;
}


static ug_jwt_rc_t
ug_jwt_check_signature(const ug_jwt_keys_t *keys, ug_jwt_token_t *t,
    const char *input, const char **detail)
{
    size_t               i, tried;
    const ug_jwt_key_t  *key;

    tried = 0;

    for (i = 0; keys != NULL && i < keys->n; i++) {
        key = &keys->keys[i];

        /* the key type must fit the algorithm: no HS256 on RSA bytes */

        if (!(key->algs & (unsigned) t->alg->alg)) {
            continue;
        }

        /*
         * With a kid, the keys of that kid and the keys that have none
         * (a PEM key, a secret); without, every key that fits.
         */

        if (t->has_kid && key->has_kid
            && (key->kid_len != t->kid_len
                || memcmp(key->kid, t->kid, t->kid_len) != 0))
        {
            continue;
        }

        tried++;

        if (ug_jwt_verify_key(keys, key, t->alg, input, t->input_len,
                              t->sig, t->sig_len)
            == 1)
        {
            ERR_clear_error();
            return UG_JWT_OK;
        }
    }

    /* a failed verify leaves OpenSSL errors that nginx must not log */
    ERR_clear_error();

    if (tried == 0) {
        *detail = t->has_kid ? "no key matches the token's kid"
                                   : "no key for the token's algorithm";
        return UG_JWT_UNKNOWN_KEY;
    }

    *detail = "signature does not verify";
    return UG_JWT_BAD_SIGNATURE;
}


/* Returns 1 only for a signature that verifies. */
static int
ug_jwt_verify_key(const ug_jwt_keys_t *keys, const ug_jwt_key_t *key,
    const ug_jwt_alg_t *alg, const char *input, size_t input_len,
    const unsigned char *sig, size_t sig_len)
{
    int             rc, der_len;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    unsigned int    mac_len;
    unsigned char  *p, mac[EVP_MAX_MD_SIZE], der[160];

    switch (key->kty) {

    case UG_KTY_OCT:
        mac_len = 0;

        if (HMAC(keys->md[alg->md], key->secret, (int) key->secret_len,
                 (const unsigned char *) input, input_len, mac, &mac_len)
            == NULL)
        {
            return -1;
        }

        return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;

    case UG_KTY_RSA:
        if (sig_len != (size_t) EVP_PKEY_get_size(key->pkey)) {
            return 0;
        }

        return ug_jwt_digest_verify(key->pkey, keys->md[alg->md],
                                    alg->alg & (UG_JWT_ALG_PS256
                                                | UG_JWT_ALG_PS384
                                                | UG_JWT_ALG_PS512),
                                    input, input_len, sig, sig_len);

    case UG_KTY_EC:
        /* JOSE sends raw r || s; a DER signature has another length */

        if (sig_len != 2 * key->coord || key->coord != alg->coord) {
            return 0;
        }

        r = BN_bin2bn(sig, (int) key->coord, NULL);
        s = BN_bin2bn(sig + key->coord, (int) key->coord, NULL);
        es = ECDSA_SIG_new();

        if (r == NULL || s == NULL || es == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return -1;
        }

        /* es owns r and s now */

        der_len = i2d_ECDSA_SIG(es, NULL);

        if (der_len <= 0 || (size_t) der_len > sizeof(der)) {
            ECDSA_SIG_free(es);
            return -1;
        }

        p = der;
        der_len = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);

        if (der_len <= 0) {
            return -1;
        }

        return ug_jwt_digest_verify(key->pkey, keys->md[alg->md], 0, input,
                                    input_len, der, (size_t) der_len);

    case UG_KTY_OKP:
        if (sig_len != 64) {
            return 0;
        }

        /* Ed25519 hashes inside: no digest */
        rc = ug_jwt_digest_verify(key->pkey, NULL, 0, input, input_len, sig,
                                  sig_len);
        return rc;
    }

    return -1;
}


static int
ug_jwt_digest_verify(EVP_PKEY *pkey, const EVP_MD *md, int pss,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len)
{
    int            rc;
    EVP_MD_CTX    *ctx;
    EVP_PKEY_CTX  *pctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    pctx = NULL;
    rc = -1;

    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1) {
        goto done;
    }

    if (pss) {
        /* RFC 7518 section 3.5: MGF1 with the same hash, salt = hash */

        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)
        {
            goto done;
        }
    }

    /* anything but 1 (0 bad, negative error) is a failure */
    rc = (EVP_DigestVerify(ctx, sig, sig_len,
                           (const unsigned char *) input, input_len) == 1);

done:

    EVP_MD_CTX_free(ctx);

    return rc;
}


static ug_jwt_rc_t
ug_jwt_check_claims(const ug_jwt_policy_t *policy, json_t *payload,
    int64_t now, ug_jwt_claims_t *claims, const char **detail)
{
    int      rc;
    size_t   i;
    json_t  *v;
    int64_t  exp, nbf, leeway;

    leeway = policy->leeway;

    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > UG_JWT_TIME_MAX) {
        leeway = UG_JWT_TIME_MAX;
    }

    if (now > UG_JWT_TIME_MAX) {
        now = UG_JWT_TIME_MAX;

    } else if (now < -UG_JWT_TIME_MAX) {
        now = -UG_JWT_TIME_MAX;
    }

    v = json_object_get(payload, "exp");

    if (v != NULL) {
        if (ug_jwt_seconds(v, 0, &exp) != 0) {
            *detail = "malformed token: exp is not a number";
            return UG_JWT_MALFORMED;
        }

        /* RFC 7519 section 4.1.4: valid only before exp */

        if (now - leeway >= exp) {
            *detail = "token expired";
            return UG_JWT_EXPIRED;
        }

        claims->exp = exp;
    }

    v = json_object_get(payload, "nbf");

    if (v != NULL) {
        if (ug_jwt_seconds(v, 1, &nbf) != 0) {
            *detail = "malformed token: nbf is not a number";
            return UG_JWT_MALFORMED;
        }

        if (now + leeway < nbf) {
            *detail = "token is not valid yet (nbf)";
            return UG_JWT_NOT_YET_VALID;
        }
    }

    if (policy->n_issuers > 0
        && !ug_jwt_string_in(json_object_get(payload, "iss"),
                             policy->issuers, policy->n_issuers))
    {
        *detail = "issuer is not accepted";
        return UG_JWT_BAD_ISSUER;
    }

    if (policy->n_audiences > 0) {
        v = json_object_get(payload, "aud");
        rc = ug_jwt_string_in(v, policy->audiences, policy->n_audiences);

        if (!rc && json_is_array(v)) {
            for (i = 0; i < json_array_size(v); i++) {
                if (ug_jwt_string_in(json_array_get(v, i), policy->audiences,
                                     policy->n_audiences))
                {
                    rc = 1;
                    break;
                }
            }
        }

        /* Clerk names the audience in azp (authorized party) */

        if (!rc) {
            rc = ug_jwt_string_in(json_object_get(payload, "azp"),
                                  policy->audiences, policy->n_audiences);
        }

        if (!rc) {
            *detail = "audience is not accepted";
            return UG_JWT_BAD_AUDIENCE;
        }
    }

    rc = ug_jwt_id_value(json_object_get(payload, "sub"), claims->sub,
                         &claims->sub_len);

    if (rc == 0) {
        rc = ug_jwt_id_value(json_object_get(payload, "sid"), claims->sub,
                             &claims->sub_len);
    }

    if (rc < 0) {
        *detail = "malformed token: sub is not a valid user id";
        return UG_JWT_MALFORMED;
    }

    if (rc == 0) {
        *detail = "token has no subject (sub or sid)";
        return UG_JWT_NO_SUBJECT;
    }

    for (i = 0; i < policy->n_org_claims; i++) {
        rc = ug_jwt_id_value(ug_jwt_path(payload, policy->org_claims[i]),
                             claims->org, &claims->org_len);
        if (rc < 0) {
            *detail = "malformed token: org claim is not a valid id";
            return UG_JWT_MALFORMED;
        }

        if (rc > 0) {
            break;
        }
    }

    for (i = 0; i < policy->n_plan_claims; i++) {
        rc = ug_jwt_id_value(ug_jwt_path(payload, policy->plan_claims[i]),
                             claims->plan, &claims->plan_len);
        if (rc < 0) {
            *detail = "malformed token: plan claim is not a valid name";
            return UG_JWT_MALFORMED;
        }

        if (rc > 0) {
            break;
        }
    }

    return UG_JWT_OK;
}


/*
 * A NumericDate (RFC 7519 section 2) as whole seconds, clamped; fractions
 * round towards the stricter side.  Returns -1 if v is not a number.
 */
static int
ug_jwt_seconds(json_t *v, int round_up, int64_t *out)
{
    double   d;
    int64_t  s;

    if (json_is_integer(v)) {
        s = json_integer_value(v);

        if (s > UG_JWT_TIME_MAX) {
            s = UG_JWT_TIME_MAX;

        } else if (s < -UG_JWT_TIME_MAX) {
            s = -UG_JWT_TIME_MAX;
        }

        *out = s;
        return 0;
    }

    if (!json_is_real(v)) {
        return -1;
    }

    d = json_real_value(v);

    if (!(d < (double) UG_JWT_TIME_MAX)) {
        *out = UG_JWT_TIME_MAX;
        return 0;
    }

    if (!(d > (double) -UG_JWT_TIME_MAX)) {
        *out = -UG_JWT_TIME_MAX;
        return 0;
    }

    s = (int64_t) d;                      /* towards zero */

    if (round_up && (double) s < d) {
        s++;

    } else if (!round_up && (double) s > d) {
        s--;
    }

    *out = s;
    return 0;
}


static int
ug_jwt_string_in(json_t *v, const char **list, size_t n)
{
    size_t       i, len;
    const char  *s;

    if (v == NULL || !json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    for (i = 0; i < n; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/* The value at a dotted path such as "public_metadata.plan", or NULL. */
static json_t *
ug_jwt_path(json_t *root, const char *path)
{
    size_t       len;
    json_t      *v;
    const char  *p, *dot;

    v = root;
    p = path;

    for ( ;; ) {
        if (!json_is_object(v)) {
            return NULL;
        }

        dot = strchr(p, '.');
        len = dot ? (size_t) (dot - p) : strlen(p);

        if (len == 0 || len > UG_JWT_PATH_MAX) {
            return NULL;
        }

        v = json_object_getn(v, p, len);

        if (v == NULL || dot == NULL) {
            return v;
        }

        p = dot + 1;
    }
}


/*
 * Copies an id claim.  Returns 1 when v is a valid id string, 0 when it
 * is absent, null or "", and -1 for anything else, which the caller
 * refuses rather than guess at.
 */
static int
ug_jwt_id_value(json_t *v, char *dst, size_t *dst_len)
{
    size_t       len;
    const char  *s;

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_string(v)) {
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len == 0) {
        return 0;
    }

    if (ug_id_check((const unsigned char *) s, len) != UG_ID_OK) {
        return -1;
    }

    memcpy(dst, s, len);
    dst[len] = '\0';
    *dst_len = len;

    return 1;
}
