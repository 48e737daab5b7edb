#include "ug_b64url.h"


/* 0..63 for the alphabet, 0xff for everything else (including '='). */
static const unsigned char  ug_b64url_value[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,     /*  !"#$%&'()*+, */
    0xff, 0xff, 0xff, 0xff, 0xff, 62,   0xff, 0xff,     /* - */
    52,   53,   54,   55,   56,   57,   58,   59,       /* 0-7 */
    60,   61,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff,     /* 8-9 */
    0xff, 0,    1,    2,    3,    4,    5,    6,        /* A-G */
    7,    8,    9,    10,   11,   12,   13,   14,
    15,   16,   17,   18,   19,   20,   21,   22,
    23,   24,   25,   0xff, 0xff, 0xff, 0xff, 63,       /* Z _ */
    0xff, 26,   27,   28,   29,   30,   31,   32,       /* a-g */
    33,   34,   35,   36,   37,   38,   39,   40,
    41,   42,   43,   44,   45,   46,   47,   48,
    49,   50,   51,   0xff, 0xff, 0xff, 0xff, 0xff,     /* z */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};

static const char  ug_b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


long
ug_b64url_decode(unsigned char *dst, size_t dst_size, const char *src,
    size_t len)
{
    size_t                i, n, tail;
    unsigned char         v[4];
    const unsigned char  *s;

    tail = len % 4;

    if (tail == 1) {
        return -1;
    }

    n = (len / 4) * 3 + (tail ? tail - 1 : 0);

    /* n fits a long: the caller's buffer of n bytes exists */
    if (n > dst_size) {
        return -1;
    }

    s = (const unsigned char *) src;

    for (i = 0; i + 4 <= len; i += 4) {
        v[0] = ug_b64url_value[s[i]];
        v[1] = ug_b64url_value[s[i + 1]];
        v[2] = ug_b64url_value[s[i + 2]];
        v[3] = ug_b64url_value[s[i + 3]];

        if ((v[0] | v[1] | v[2] | v[3]) & 0xc0) {
            return -1;
        }

        *dst++ = (unsigned char) (v[0] << 2 | v[1] >> 4);
        *dst++ = (unsigned char) (v[1] << 4 | v[2] >> 2);
        *dst++ = (unsigned char) (v[2] << 6 | v[3]);
    }

    if (tail == 0) {
        return (long) n;
    }

    v[0] = ug_b64url_value[s[i]];
    v[1] = ug_b64url_value[s[i + 1]];
    v[2] = (tail == 3) ? ug_b64url_value[s[i + 2]] : 0;

    if ((v[0] | v[1] | v[2]) & 0xc0) {
        return -1;
    }

    *dst++ = (unsigned char) (v[0] << 2 | v[1] >> 4);

    if (tail == 2) {
        /* the last character carries 2 bits of data and 4 unused ones */
        if (v[1] & 0x0f) {
            return -1;
        }

        return (long) n;
    }

    /* 3 characters: 16 bits of data, the last character's 2 bits unused */
    if (v[2] & 0x03) {
        return -1;
    }

    *dst = (unsigned char) (v[1] << 4 | v[2] >> 2);

    return (long) n;
}


size_t
ug_b64url_encode(char *dst, size_t dst_size, const unsigned char *src,
    size_t len)
{
    size_t  i, n;

    n = UG_B64URL_ENCODED_LEN(len);

    if (n > dst_size) {
        return 0;
    }

    for (i = 0; i + 3 <= len; i += 3) {
        *dst++ = ug_b64url_alphabet[src[i] >> 2];
        *dst++ = ug_b64url_alphabet[(src[i] & 0x03) << 4 | src[i + 1] >> 4];
        *dst++ = ug_b64url_alphabet[(src[i + 1] & 0x0f) << 2
                                    | src[i + 2] >> 6];
        *dst++ = ug_b64url_alphabet[src[i + 2] & 0x3f];
    }

    switch (len - i) {
    case 1:
        *dst++ = ug_b64url_alphabet[src[i] >> 2];
        *dst = ug_b64url_alphabet[(src[i] & 0x03) << 4];
        break;

    case 2:
        *dst++ = ug_b64url_alphabet[src[i] >> 2];
        *dst++ = ug_b64url_alphabet[(src[i] & 0x03) << 4 | src[i + 1] >> 4];
        *dst = ug_b64url_alphabet[(src[i + 1] & 0x0f) << 2];
        break;
    }

    return n;
}
