#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

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
    default:
        return "is valid";
    }
}


int
ug_anon_owner(const unsigned char *salt, size_t salt_len,
    const unsigned char *addr, size_t addr_len, unsigned char *out)
{
    static const char  hex[] = "0123456789abcdef";

    unsigned char      md[EVP_MAX_MD_SIZE];
    unsigned int       md_len, i;
    size_t             plen;

    md_len = 0;

    if (HMAC(EVP_sha256(), salt, (int) salt_len, addr, addr_len, md, &md_len)
        == NULL || md_len < 12)
    {
        return -1;
    }

    plen = sizeof(UG_ANON_PREFIX) - 1;
    memcpy(out, UG_ANON_PREFIX, plen);

    for (i = 0; i < 12; i++) {
        out[plen + 2 * i] = (unsigned char) hex[md[i] >> 4];
        out[plen + 2 * i + 1] = (unsigned char) hex[md[i] & 0x0f];
    }

    return 0;
}
