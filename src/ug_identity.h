/*
 * Identity values: validation of asserted ids and the anonymous owner.
 */

#ifndef UG_IDENTITY_H
#define UG_IDENTITY_H

#include <stddef.h>

/* Longest user, org or plan value accepted from a header or a token. */
#define UG_ID_MAX        128

/* "anon:" and 24 hex digits of HMAC-SHA256(salt, client address). */
#define UG_ANON_PREFIX   "anon:"
#define UG_ANON_LEN      (sizeof(UG_ANON_PREFIX) - 1 + 24)

/* The longest owner key: an id, or an anonymous owner. */
#define UG_OWNER_MAX     UG_ID_MAX

enum {
    UG_ID_OK = 0,
    UG_ID_EMPTY,
    UG_ID_TOO_LONG,
    UG_ID_BAD_CHAR,
    UG_ID_RESERVED
};

/*
 * Checks a user, org or plan value: 1..UG_ID_MAX bytes of printable
 * ASCII without spaces (0x21..0x7e).  Returns a UG_ID_* code.
 */
int ug_id_check(const unsigned char *p, size_t len);

/*
 * ug_id_check for an id a client or a token asserts (a user or an org):
 * besides, "anon:" is refused with UG_ID_RESERVED, as anonymous owners
 * live under that prefix and an asserted id must never share or drain an
 * anonymous client's quota.
 */
int ug_id_check_asserted(const unsigned char *p, size_t len);

/* Why ug_id_check refused a value, for a client's "detail". */
const char *ug_id_strerror(int rc);

/*
 * Writes the anonymous owner for a client address into out, which must
 * hold UG_ANON_LEN bytes.  Returns 0, or -1 if HMAC is unavailable.
 */
int ug_anon_owner(const unsigned char *salt, size_t salt_len,
    const unsigned char *addr, size_t addr_len, unsigned char *out);


/*
 * The same owner, computed with a keyed HMAC context made once: OpenSSL's
 * one-shot HMAC() looks the algorithms up and allocates a context on every
 * call, several times the cost of the hash itself.  It also remembers the
 * last address, as a client sends many requests in a row.  Not thread-safe:
 * one per worker.
 */
typedef struct ug_anon_s  ug_anon_t;

ug_anon_t *ug_anon_new(const unsigned char *salt, size_t salt_len);
void ug_anon_free(ug_anon_t *anon);
int ug_anon_owner_cached(ug_anon_t *anon, const unsigned char *addr,
    size_t addr_len, unsigned char *out);

#endif /* UG_IDENTITY_H */
