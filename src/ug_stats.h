/*
 * Statistics counters that workers bump on every request without
 * sharing a cache line: a row of counters per worker, [plans][results],
 * each row padded to whole 64-byte lines, summed over the rows on read.
 *
 * Lives in a caller-given region (shared memory), with no pointers.  A
 * worker adds to its own row with a relaxed atomic add: uncontended, the
 * line stays in that worker's cache.  The add is still atomic because
 * two processes can share a row: after a reload, an old worker that is
 * shutting down and its successor have the same worker number, and
 * worker numbers past the rows made are folded onto them.  A read sums
 * every row; it is exact once the adds it should see have returned.
 */

#ifndef UG_STATS_H
#define UG_STATS_H

#include <stddef.h>
#include <stdint.h>


#define UG_STATS_WORKERS_MAX  1024


typedef struct ug_stats_s  ug_stats_t;


/* Bytes for the counters, with room to align them; 0 if a count is 0
 * or workers is over UG_STATS_WORKERS_MAX. */
size_t ug_stats_size(unsigned workers, unsigned plans, unsigned results);

/* Zeroed counters in [mem, mem + size), or NULL if size is too small. */
ug_stats_t *ug_stats_init(void *mem, size_t size, unsigned workers,
    unsigned plans, unsigned results);

/* The counters ug_stats_init() made in this region with these counts
 * (a reload that kept the mapping), or NULL. */
ug_stats_t *ug_stats_attach(void *mem, size_t size, unsigned workers,
    unsigned plans, unsigned results);

/*
 * Adds n to (plan, result) in the worker's row.  Worker numbers past the
 * rows fold onto them; a plan or result out of range is ignored.
 */
void ug_stats_add(ug_stats_t *st, unsigned worker, unsigned plan,
    unsigned result, uint64_t n);

/* The sum over every worker of (plan, result); 0 if out of range. */
uint64_t ug_stats_sum(const ug_stats_t *st, unsigned plan, unsigned result);

/* The counter a worker adds to (for tests of the layout). */
const uint64_t *ug_stats_counter(const ug_stats_t *st, unsigned worker,
    unsigned plan, unsigned result);

#endif /* UG_STATS_H */
