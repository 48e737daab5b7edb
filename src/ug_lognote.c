#include <string.h>

#include "ug_lognote.h"


uint64_t
ug_lognote_hash(const unsigned char *p, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = 0xcbf29ce484222325ULL;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }

    /* 0 marks an empty slot */
    return h ? h : 1;
}


int
ug_lognote_first(ug_lognote_t *t, uint64_t hash, unsigned kind,
    int64_t period)
{
    unsigned            k;
    ug_lognote_slot_t  *s;

    if (kind >= UG_LOGNOTE_KINDS) {
        return 1;
    }

    s = &t->slot[hash % UG_LOGNOTE_SLOTS];

    if (s->hash != hash) {
        s->hash = hash;

        for (k = 0; k < UG_LOGNOTE_KINDS; k++) {
            s->period[k] = INT64_MIN;
        }
    }

    if (s->period[kind] == period) {
        return 0;
    }

    s->period[kind] = period;

    return 1;
}
