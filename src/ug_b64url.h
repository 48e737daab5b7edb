/*
 * base64url (RFC 4648 section 5) as JOSE uses it (RFC 7515 section 2):
 * the alphabet A-Z a-z 0-9 '-' '_', and no '=' padding.
 *
 * The decoder is strict, so that one token has exactly one spelling:
 *   - any byte outside the alphabet is refused, '=' and white space too;
 *   - a length of 4n + 1 characters is refused (it cannot encode bytes);
 *   - the unused low bits of the last character must be zero
 *     ("non-canonical" encodings such as "QR" for "A" are refused), so a
 *     signature cannot be altered into a second string that decodes to
 *     the same bytes.
 */

#ifndef UG_B64URL_H
#define UG_B64URL_H

#include <stddef.h>

/* Bytes that decoding len characters can produce, at most. */
#define UG_B64URL_DECODED_LEN(len)  (((len) / 4) * 3 + 2)

/* Characters that encoding len bytes produces (no padding). */
#define UG_B64URL_ENCODED_LEN(len)  (((len) / 3) * 4 + ((len) % 3 ? \
                                     (len) % 3 + 1 : 0))

/*
 * Decodes len characters of src into dst, which holds dst_size bytes.
 * Returns the number of bytes written, or -1 if src is not canonical
 * base64url or the result would not fit.  Reads nothing past src + len;
 * src need not be NUL-terminated.
 */
long ug_b64url_decode(unsigned char *dst, size_t dst_size, const char *src,
    size_t len);

/*
 * Encodes len bytes of src into dst without padding or NUL.  Returns the
 * number of characters written, or 0 if dst_size is too small for a
 * non-empty result.
 */
size_t ug_b64url_encode(char *dst, size_t dst_size, const unsigned char *src,
    size_t len);

#endif /* UG_B64URL_H */
