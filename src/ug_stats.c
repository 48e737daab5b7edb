/*
 * Per-worker statistics counters (see ug_stats.h).
 */

#include <string.h>

#include "ug_stats.h"


#define UG_STATS_MAGIC  0x55475354        /* "UGST" */
#define UG_STATS_LINE   64


/* The header takes a line of its own: it is read on every add. */
struct ug_stats_s {
    uint32_t   magic;
    uint32_t   workers;
    uint32_t   plans;
    uint32_t   results;
    uint32_t   row;                      /* counters per row, padded */
    uint32_t   reserved[11];
};


static size_t
ug_stats_row(unsigned plans, unsigned results)
{
    size_t  per_line;

    per_line = UG_STATS_LINE / sizeof(uint64_t);

    return ((size_t) plans * results + per_line - 1) / per_line * per_line;
}


size_t
ug_stats_size(unsigned workers, unsigned plans, unsigned results)
{
    if (workers == 0 || plans == 0 || results == 0
        || workers > UG_STATS_WORKERS_MAX
        || (size_t) plans * results > (1u << 20))
    {
        return 0;
    }

    return UG_STATS_LINE - 1 + sizeof(ug_stats_t)
           + (size_t) workers * ug_stats_row(plans, results)
             * sizeof(uint64_t);
}


static ug_stats_t *
ug_stats_place(void *mem, size_t size, unsigned workers, unsigned plans,
    unsigned results)
{
    size_t  need, pad;

    need = ug_stats_size(workers, plans, results);

    if (need == 0 || size < need) {
        return NULL;
    }

    pad = (UG_STATS_LINE - ((uintptr_t) mem & (UG_STATS_LINE - 1)))
          & (UG_STATS_LINE - 1);

    return (ug_stats_t *) ((unsigned char *) mem + pad);
}


ug_stats_t *
ug_stats_init(void *mem, size_t size, unsigned workers, unsigned plans,
    unsigned results)
{
    ug_stats_t  *st;

    st = ug_stats_place(mem, size, workers, plans, results);
    if (st == NULL) {
        return NULL;
    }

    memset(st, 0, sizeof(ug_stats_t)
                  + (size_t) workers * ug_stats_row(plans, results)
                    * sizeof(uint64_t));

    st->magic = UG_STATS_MAGIC;
    st->workers = workers;
    st->plans = plans;
    st->results = results;
    st->row = (uint32_t) ug_stats_row(plans, results);

    return st;
}


ug_stats_t *
ug_stats_attach(void *mem, size_t size, unsigned workers, unsigned plans,
    unsigned results)
{
    ug_stats_t  *st;

    st = ug_stats_place(mem, size, workers, plans, results);

    if (st == NULL
        || st->magic != UG_STATS_MAGIC
        || st->workers != workers
        || st->plans != plans
        || st->results != results)
    {
        return NULL;
    }

    return st;
}


static inline uint64_t *
ug_stats_at(const ug_stats_t *st, unsigned worker, unsigned plan,
    unsigned result)
{
    uint64_t  *rows;

    rows = (uint64_t *) (st + 1);

    return rows + (size_t) (worker % st->workers) * st->row
           + (size_t) plan * st->results + result;
}


void
ug_stats_add(ug_stats_t *st, unsigned worker, unsigned plan,
    unsigned result, uint64_t n)
{
    if (plan >= st->plans || result >= st->results) {
        return;
    }

    (void) __atomic_fetch_add(ug_stats_at(st, worker, plan, result), n,
                              __ATOMIC_RELAXED);
}


uint64_t
ug_stats_sum(const ug_stats_t *st, unsigned plan, unsigned result)
{
    unsigned  w;
    uint64_t  sum;

    if (plan >= st->plans || result >= st->results) {
        return 0;
    }

    sum = 0;

    for (w = 0; w < st->workers; w++) {
        sum += __atomic_load_n(ug_stats_at(st, w, plan, result),
                               __ATOMIC_RELAXED);
    }

    return sum;
}


const uint64_t *
ug_stats_counter(const ug_stats_t *st, unsigned worker, unsigned plan,
    unsigned result)
{
    if (plan >= st->plans || result >= st->results) {
        return NULL;
    }

    return ug_stats_at(st, worker, plan, result);
}
