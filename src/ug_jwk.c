/*
 * Key sets: JWKS, JWKs, PEM public keys and HMAC secrets, each checked
 * (sizes, curves, points on the curve) before it becomes an OpenSSL key.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "ug_b64url.h"
#include "ug_identity.h"
#include "ug_jwt_internal.h"


/* An RSA-16384 modulus, with room for a leading zero byte. */
#define UG_JWT_RSA_N_MAX  (UG_JWT_MAX_RSA_BITS / 8 + 1)


static const char  *ug_jwt_md_names[UG_MD_N] = {
    "SHA256", "SHA384", "SHA512"
};


static void ug_jwt_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ug_jwt_printable(char *dst, size_t size, const char *s,
    size_t len);
static const char *ug_jwt_find(const char *text, size_t len,
    const char *s);
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
int
ug_jwt_json_depth_ok(const unsigned char *p, size_t len, int max)
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

    if (!ug_jwt_json_depth_ok((const unsigned char *) text, len,
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

