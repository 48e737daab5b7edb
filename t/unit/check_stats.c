/*
 * Per-worker statistics counters: rows on cache lines of their own, sums
 * over workers, folding of extra workers, exact counts from processes
 * adding at once in shared memory, and a printed comparison with one
 * shared counter.
 */

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ug_check.h"
#include "ug_stats.h"


#define PLANS    17
#define RESULTS  8


START_TEST(test_layout)
{
    char            *buf;
    size_t           size;
    unsigned         w, v, p, r;
    uintptr_t        line, lo[4], hi[4];
    ug_stats_t      *st;
    const uint64_t  *c;

    /* 17 * 8 counters = 1088 bytes: 17 lines per worker */
    size = ug_stats_size(4, PLANS, RESULTS);
    ck_assert_uint_eq(size, 63 + 64 + 4 * 17 * 64);

    ck_assert_uint_eq(ug_stats_size(0, PLANS, RESULTS), 0);
    ck_assert_uint_eq(ug_stats_size(4, 0, RESULTS), 0);
    ck_assert_uint_eq(ug_stats_size(UG_STATS_WORKERS_MAX + 1, 1, 1), 0);

    buf = ug_canary_buf(size);
    ck_assert_ptr_null(ug_stats_init(buf + 3, size - 3, 4, PLANS, RESULTS));
    st = ug_stats_init(buf, size, 4, PLANS, RESULTS);
    ck_assert_ptr_nonnull(st);

    for (w = 0; w < 4; w++) {
        lo[w] = UINTPTR_MAX;
        hi[w] = 0;

        for (p = 0; p < PLANS; p++) {
            for (r = 0; r < RESULTS; r++) {
                c = ug_stats_counter(st, w, p, r);
                ck_assert_uint_eq((uintptr_t) c % 8, 0);
                ck_assert_uint_eq(*c, 0);

                line = (uintptr_t) c / 64;
                lo[w] = line < lo[w] ? line : lo[w];
                hi[w] = line > hi[w] ? line : hi[w];
            }
        }
    }

    /* no two workers' counters on one line */
    for (w = 0; w < 4; w++) {
        for (v = 0; v < 4; v++) {
            if (v != w) {
                ck_assert(hi[w] < lo[v] || hi[v] < lo[w]);
            }
        }
    }

    ck_assert_ptr_null(ug_stats_counter(st, 0, PLANS, 0));
    ck_assert_ptr_null(ug_stats_counter(st, 0, 0, RESULTS));

    ck_assert(ug_canary_ok(buf, size));
    ug_canary_free(buf);
}
END_TEST


START_TEST(test_add_and_sum)
{
    char        *buf;
    size_t       size;
    unsigned     p, r;
    ug_stats_t  *st, *again;

    size = ug_stats_size(4, PLANS, RESULTS);
    buf = ug_canary_buf(size);
    st = ug_stats_init(buf + 1, size - 1, 4, PLANS, RESULTS);
    ck_assert_ptr_null(st);
    st = ug_stats_init(buf, size, 4, PLANS, RESULTS);

    ug_stats_add(st, 0, 2, 1, 5);
    ug_stats_add(st, 1, 2, 1, 7);
    ug_stats_add(st, 3, 2, 1, 1);
    ug_stats_add(st, 5, 2, 1, 100);     /* folds onto worker 1 */
    ug_stats_add(st, 2, 16, 7, 3);

    /* out of range: ignored, nothing written outside */
    ug_stats_add(st, 0, PLANS, 0, 1000);
    ug_stats_add(st, 0, 0, RESULTS, 1000);

    ck_assert_uint_eq(ug_stats_sum(st, 2, 1), 113);
    ck_assert_uint_eq(*ug_stats_counter(st, 1, 2, 1), 107);
    ck_assert_uint_eq(ug_stats_sum(st, 16, 7), 3);
    ck_assert_uint_eq(ug_stats_sum(st, PLANS, 0), 0);

    for (p = 0; p < PLANS; p++) {
        for (r = 0; r < RESULTS; r++) {
            if (!((p == 2 && r == 1) || (p == 16 && r == 7))) {
                ug_expect(ug_stats_sum(st, p, r) == 0, "(%u, %u)", p, r);
            }
        }
    }

    /* a reload that kept the mapping finds the counts */
    again = ug_stats_attach(buf, size, 4, PLANS, RESULTS);
    ck_assert_ptr_eq(again, st);
    ck_assert_uint_eq(ug_stats_sum(again, 2, 1), 113);
    ck_assert_ptr_null(ug_stats_attach(buf, size, 2, PLANS, RESULTS));
    ck_assert_ptr_null(ug_stats_attach(buf, size, 4, PLANS - 1, RESULTS));

    ck_assert(ug_canary_ok(buf, size));

    memset(buf, 0, size);
    ck_assert_ptr_null(ug_stats_attach(buf, size, 4, PLANS, RESULTS));

    ug_canary_free(buf);
}
END_TEST


static void *
shared(size_t size)
{
    void  *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);

    return p;
}


/* Runs `procs` processes, process i adding `n` times as worker i. */
static double
run_workers(ug_stats_t *st, unsigned procs, unsigned n)
{
    int              status;
    pid_t            pid[8];
    unsigned         i, k;
    struct timespec  t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < procs; i++) {
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);

        if (pid[i] == 0) {
            for (k = 0; k < n; k++) {
                ug_stats_add(st, i, k % 3, 0, 1);
            }

            _exit(0);
        }
    }

    for (i = 0; i < procs; i++) {
        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    return (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
}


/* Four processes on two rows (old and new workers after a reload share
 * one): every add counted. */
START_TEST(test_processes_exact)
{
    void        *mem;
    size_t       size;
    ug_stats_t  *st;

    size = ug_stats_size(2, PLANS, RESULTS);
    mem = shared(size);
    st = ug_stats_init(mem, size, 2, PLANS, RESULTS);

    (void) run_workers(st, 4, 300000);

    ck_assert_uint_eq(ug_stats_sum(st, 0, 0) + ug_stats_sum(st, 1, 0)
                      + ug_stats_sum(st, 2, 0), 4 * 300000);
    ck_assert_uint_eq(ug_stats_sum(st, 0, 0), 4 * 100000);

    munmap(mem, size);
}
END_TEST


/* Printed, not asserted: two processes on rows of their own, and on one
 * row (as a single shared counter would be). */
START_TEST(test_bench_rows)
{
    void        *mem;
    size_t       size;
    double       own, one;
    unsigned     n;
    ug_stats_t  *st;

    n = 5000000;

    size = ug_stats_size(2, PLANS, RESULTS);
    mem = shared(size);
    st = ug_stats_init(mem, size, 2, PLANS, RESULTS);
    own = run_workers(st, 2, n);
    ck_assert_uint_eq(ug_stats_sum(st, 0, 0) + ug_stats_sum(st, 1, 0)
                      + ug_stats_sum(st, 2, 0), 2 * n);
    munmap(mem, size);

    size = ug_stats_size(1, PLANS, RESULTS);
    mem = shared(size);
    st = ug_stats_init(mem, size, 1, PLANS, RESULTS);
    one = run_workers(st, 2, n);
    ck_assert_uint_eq(ug_stats_sum(st, 0, 0) + ug_stats_sum(st, 1, 0)
                      + ug_stats_sum(st, 2, 0), 2 * n);
    munmap(mem, size);

    printf("stats: 2 processes x %u adds: own rows %.1f ns, one shared "
           "row %.1f ns per add\n", n, own / n * 1e9, one / n * 1e9);
}
END_TEST


static Suite *
stats_suite(void)
{
    Suite  *s;
    TCase  *tc, *tb;

    s = suite_create("stats");

    tc = tcase_create("core");
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_add_and_sum);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_processes_exact);
    suite_add_tcase(s, tc);

    tb = tcase_create("bench");
    tcase_set_timeout(tb, 60);
    tcase_add_test(tb, test_bench_rows);
    suite_add_tcase(s, tb);

    return s;
}


int
main(void)
{
    return ug_check_run(stats_suite());
}
