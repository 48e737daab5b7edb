#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "ug_identity.h"


int
ug_id_check(const unsigned char *p, size_t len)
{
    size_t  i;

    if (len == 0) {
        return UG_ID_EMPTY;
    }

    if (len > UG_ID_MAX) {
        return UG_ID_TOO_LONG;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e) {
            return UG_ID_BAD_CHAR;
        }
    }

    return UG_ID_OK;
}


int
ug_id_check_asserted(const unsigned char *p, size_t len)
{
    int  rc;

    rc = ug_id_check(p, len);

    if (rc == UG_ID_OK
        && len >= sizeof(UG_ANON_PREFIX) - 1
        && memcmp(p, UG_ANON_PREFIX, sizeof(UG_ANON_PREFIX) - 1) == 0)
    {
        return UG_ID_RESERVED;
    }

    return rc;
}


const char *
ug_id_strerror(int rc)
{
    switch (rc) {
    case UG_ID_EMPTY:
        return "is empty";
    case UG_ID_TOO_LONG:
        return "is longer than 128 bytes";
    case UG_ID_BAD_CHAR:
        return "may hold only printable ASCII without spaces";
    case UG_ID_RESERVED:
        return "may not begin with anon:, which is reserved for anonymous "
               "clients";
    default:
        return "is valid";
    }
}


/* "anon:" and the first 12 bytes of the MAC in lower-case hex */
static void
ug_anon_format(const unsigned char *md, unsigned char *out)
{
    static const char  hex[] = "0123456789abcdef";

    size_t             plen, i;

    plen = sizeof(UG_ANON_PREFIX) - 1;
    memcpy(out, UG_ANON_PREFIX, plen);

    for (i = 0; i < 12; i++) {
        out[plen + 2 * i] = (unsigned char) hex[md[i] >> 4];
        out[plen + 2 * i + 1] = (unsigned char) hex[md[i] & 0x0f];
    }
}


int
ug_anon_owner(const unsigned char *salt, size_t salt_len,
    const unsigned char *addr, size_t addr_len, unsigned char *out)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   md_len;

    md_len = 0;

    if (HMAC(EVP_sha256(), salt, (int) salt_len, addr, addr_len, md, &md_len)
        == NULL || md_len < 12)
    {
        return -1;
    }

    ug_anon_format(md, out);

    return 0;
}


/* Longest address text remembered: an IPv6 address with a zone, or a
 * unix socket path nginx shortens; longer ones are simply not cached. */
#define UG_ANON_ADDR_MAX  64


struct ug_anon_s {
    EVP_MAC         *mac;
    EVP_MAC_CTX     *ctx;
    size_t           addr_len;
    unsigned char    addr[UG_ANON_ADDR_MAX];
    unsigned char    owner[UG_ANON_LEN];
};


ug_anon_t *
ug_anon_new(const unsigned char *salt, size_t salt_len)
{
    ug_anon_t   *anon;
    OSSL_PARAM   params[2];

    anon = calloc(1, sizeof(ug_anon_t));
    if (anon == NULL) {
        return NULL;
    }

    anon->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (anon->mac == NULL) {
        goto failed;
    }

    anon->ctx = EVP_MAC_CTX_new(anon->mac);
    if (anon->ctx == NULL) {
        goto failed;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(anon->ctx, salt, salt_len, params) != 1) {
        goto failed;
    }

    return anon;

failed:

    ug_anon_free(anon);
    return NULL;
}


void
ug_anon_free(ug_anon_t *anon)
{
    if (anon == NULL) {
        return;
    }

    EVP_MAC_CTX_free(anon->ctx);
    EVP_MAC_free(anon->mac);
    free(anon);
}


int
ug_anon_owner_cached(ug_anon_t *anon, const unsigned char *addr,
    size_t addr_len, unsigned char *out)
{
    size_t         n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (anon->addr_len && anon->addr_len == addr_len
        && memcmp(anon->addr, addr, addr_len) == 0)
    {
        memcpy(out, anon->owner, UG_ANON_LEN);
        return 0;
    }

    /* a NULL key re-initialises with the key already set */
    if (EVP_MAC_init(anon->ctx, NULL, 0, NULL) != 1
        || EVP_MAC_update(anon->ctx, addr, addr_len) != 1
        || EVP_MAC_final(anon->ctx, md, &n, sizeof(md)) != 1
        || n < 12)
    {
        return -1;
    }

    ug_anon_format(md, out);

    if (addr_len <= UG_ANON_ADDR_MAX) {
        memcpy(anon->addr, addr, addr_len);
        anon->addr_len = addr_len;
        memcpy(anon->owner, out, UG_ANON_LEN);
    }

    return 0;
}
