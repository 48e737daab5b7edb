/*
 * Shared bits of the Check unit tests: the runner every check_*.c main()
 * calls, and canary bytes that catch writes past the end of a buffer
 * without needing ASAN.
 */

#ifndef UG_CHECK_H
#define UG_CHECK_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>


/*
 * An assertion for hot loops: each ck_assert_*() sends a checkpoint to
 * the parent process, a system call per check, even when it passes.
 */
#define ug_expect(expr, ...)                                                 \
    do {                                                                     \
        if (!(expr)) {                                                       \
            ck_abort_msg(__VA_ARGS__);                                       \
        }                                                                    \
    } while (0)


#define UG_CANARY       0xa5
#define UG_CANARY_LEN   16


/* Runs the suite; the exit code is 0 only when every test passed. */
static inline int
ug_check_run(Suite *s)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed != 0;
}


/*
 * A buffer of exactly `size` usable bytes followed by UG_CANARY_LEN canary
 * bytes; free it with free().  Before the buffer are more canary bytes,
 * so a write before the start is caught too.
 */
static inline char *
ug_canary_buf(size_t size)
{
    unsigned char  *p;

    p = malloc(UG_CANARY_LEN + size + UG_CANARY_LEN);
    ck_assert_ptr_nonnull(p);
    memset(p, UG_CANARY, UG_CANARY_LEN + size + UG_CANARY_LEN);

    return (char *) p + UG_CANARY_LEN;
}


/* Non-zero when the canaries around a ug_canary_buf are intact. */
static inline int
ug_canary_ok(const char *buf, size_t size)
{
    const unsigned char  *p;
    size_t                i;

    p = (const unsigned char *) buf;

    for (i = 1; i <= UG_CANARY_LEN; i++) {
        if (p[-(ptrdiff_t) i] != UG_CANARY) {
            return 0;
        }
    }

    for (i = 0; i < UG_CANARY_LEN; i++) {
        if (p[size + i] != UG_CANARY) {
            return 0;
        }
    }

    return 1;
}


static inline void
ug_canary_free(char *buf)
{
    free(buf - UG_CANARY_LEN);
}

#endif /* UG_CHECK_H */
