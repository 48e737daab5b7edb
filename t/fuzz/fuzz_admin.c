/*
 * libFuzzer target for the admin API's parsing: routing, percent
 * decoding, JSON bodies, the arithmetic and the owner's JSON.
 *
 * Input: METHOD '\n' URI '\n' BODY.  The body is also parsed on its own
 * as both kinds of body, since that is where most of the input goes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_admin.h"


#define FUZZ_PREFIX  "/usage_gate/admin"
#define FUZZ_NOW_US  1709251170000000ULL         /* 2024-02-29 23:59:30 */


static void
fuzz_check_status(const ug_admin_req_t *req, int rc)
{
    if (rc != req->status) {
        abort();
    }

    if (rc == 0) {
        return;
    }

    if ((rc != 400 && rc != 404 && rc != 405 && rc != 413)
        || req->detail[0] == '\0'
        || memchr(req->detail, '\0', sizeof(req->detail)) == NULL
        || (rc == 405) != (req->allow != NULL))
    {
        abort();
    }
}


static void
fuzz_body(ug_admin_action_t action, const char *body, size_t len)
{
    int             rc;
    ug_admin_req_t  req;

    memset(&req, 0, sizeof(req));
    req.action = action;

    rc = ug_admin_body(&req, body, len);
    fuzz_check_status(&req, rc);

    if (rc == 0
        && (req.value > UG_ADMIN_VALUE_MAX
            || req.value < (action == UG_ADMIN_SET ? 0
                                                   : -UG_ADMIN_VALUE_MAX)))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int              rc;
    char            *copy, out[UG_ADMIN_RENDER_MAX];
    size_t           mlen, ulen, blen, n;
    uint64_t         before;
    const char      *p, *method, *uri, *body, *nl, *detail;
    json_t          *j;
    ug_counter_t     c;
    ug_admin_req_t   req;

    /* an exact copy, so that a read past the end is caught */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);
    p = copy;

    fuzz_body(UG_ADMIN_ADJUST, p, size);
    fuzz_body(UG_ADMIN_SET, p, size);

    method = p;
    nl = memchr(p, '\n', size);
    mlen = nl ? (size_t) (nl - p) : size;

    uri = nl ? nl + 1 : p + size;
    nl = memchr(uri, '\n', (size_t) (p + size - uri));
    ulen = (size_t) ((nl ? nl : p + size) - uri);

    body = nl ? nl + 1 : p + size;
    blen = (size_t) (p + size - body);

    rc = ug_admin_route(&req, method, mlen, uri, ulen, FUZZ_PREFIX,
                        sizeof(FUZZ_PREFIX) - 1);
    fuzz_check_status(&req, rc);

    if (rc != 0) {
        goto done;
    }

    if (req.owner_len == 0 || req.owner_len > UG_OWNER_MAX
        || ug_id_check(req.owner, req.owner_len) != UG_ID_OK)
    {
        abort();
    }

    rc = ug_admin_body(&req, body, blen);
    fuzz_check_status(&req, rc);

    if (rc != 0) {
        goto done;
    }

    /* a counter drawn from the input's length, this month */
    memset(&c, 0, sizeof(c));
    c.month = 24289;                            /* 2024-02 */
    c.month_used = size * 7919;
    c.minute = (uint32_t) (FUZZ_NOW_US / 60000000);
    c.minute_used = (uint32_t) size;
    before = c.month_used;

    detail = NULL;
    rc = ug_admin_apply_counter(&req, &c, FUZZ_NOW_US, &detail);

    if (rc == 0) {
        if (c.month_used > UG_ADMIN_VALUE_MAX && c.month_used != before) {
            abort();
        }

    } else if (rc != 400 || detail == NULL || c.month_used != before) {
        abort();
    }

    n = ug_admin_render(out, sizeof(out), req.owner, req.owner_len, &c,
                        FUZZ_NOW_US);
    if (n == 0) {
        abort();
    }

    j = json_loadb(out, n, 0, NULL);
    if (j == NULL) {
        abort();
    }

    json_decref(j);

done:

    free(copy);

    return 0;
}
