/*
 * libFuzzer target for the state file parser.
 *
 * The first input byte picks a mode: odd, the rest of the input gets a
 * correct SHA-256 appended, so that the fuzzer reaches the record
 * parsing and the callbacks past the checksum; even, the rest is parsed
 * as it is, checksum and all.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ug_state.h"


#define FUZZ_MONTH  24312               /* 2026-01 */


typedef struct {
    size_t  calls;
    size_t  len;
} fuzz_ctx_t;


static int
fuzz_cb(void *data, const ug_state_record_t *rec)
{
    size_t       i;
    fuzz_ctx_t  *ctx;

    ctx = data;
    ctx->calls++;

    /* what the parser promises about every record it hands out */
    if (rec->owner_len == 0 || rec->owner_len > UG_STATE_OWNER_MAX
        || ug_id_check(rec->owner, rec->owner_len) != UG_ID_OK
        || rec->counter.month < FUZZ_MONTH
        || rec->counter.month_used > UG_STATE_VALUE_MAX
        || rec->synced_base > UG_STATE_VALUE_MAX
        || rec->unsynced > (int64_t) UG_STATE_VALUE_MAX
        || rec->unsynced < -(int64_t) UG_STATE_VALUE_MAX)
    {
        abort();
    }

    /* a write to settle ('W'): in the bounds the reader checks */
    if (rec->write.seq != 0) {
        if (rec->write.delta == 0
            || rec->write.seq > (uint64_t) INT64_MAX
            || rec->write.delta > (int64_t) UG_STATE_VALUE_MAX
            || rec->write.delta < -(int64_t) UG_STATE_VALUE_MAX)
        {
            abort();
        }

        for (i = 0; i < UG_STATE_WRITER_LEN; i++) {
            if (memchr("0123456789abcdef", rec->write.writer[i], 16)
                == NULL)
            {
                abort();
            }
        }

    } else if (rec->write.delta != 0 || rec->write.month != 0) {
        abort();
    }

    /* each record takes at least 47 bytes of the input */
    if (ctx->calls * 47 > ctx->len) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc;
    char            err[256];
    size_t          salt_len, len;
    unsigned int    n;
    fuzz_ctx_t      ctx;
    unsigned char  *buf, salt[UG_STATE_SALT_MAX];

    if (size == 0) {
        return 0;
    }

    len = size - 1;

    if (data[0] & 1) {
        buf = malloc(len + 32);
        if (buf == NULL) {
            return 0;
        }

        memcpy(buf, data + 1, len);

        if (EVP_Digest(buf, len, buf + len, &n, EVP_sha256(), NULL) != 1) {
            abort();
        }

        len += 32;

    } else {
        /* an exact copy, so that any read past the end is caught */
        buf = malloc(len ? len : 1);
        if (buf == NULL) {
            return 0;
        }

        memcpy(buf, data + 1, len);
    }

    ctx.calls = 0;
    ctx.len = len;
    salt_len = 0;
    err[0] = '\0';

    rc = ug_state_parse(buf, len, FUZZ_MONTH, fuzz_cb, &ctx, salt,
                        &salt_len, err, sizeof(err));

    if (rc == UG_STATE_OK) {
        if (salt_len > UG_STATE_SALT_MAX) {
            abort();
        }

    } else if (rc == UG_STATE_CORRUPT) {
        /* nothing half-loaded, and a reason given */
        if (ctx.calls != 0 || err[0] == '\0') {
            abort();
        }

    } else {
        abort();
    }

    free(buf);

    return 0;
}
