/*
 * libFuzzer target for ug_ddb: DynamoDB answers and the request builders.
 *
 * The first input byte picks what the rest is fed to: an UpdateItem or
 * GetItem answer (with HTTP 200 or an error status), or the owner of a
 * request to build (which must come back unchanged when parsed).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_ddb.h"
#include "ug_plan.h"


static void
fuzz_check_text(const char *s, size_t size)
{
    size_t  i;

    /* NUL-terminated within its buffer, printable ASCII only */
    for (i = 0; i < size; i++) {
        if (s[i] == '\0') {
            return;
        }

        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            abort();
        }
    }

    abort();
}


static void
fuzz_check_result(ug_ddb_class_t cls, const ug_ddb_result_t *res)
{
    if (cls != res->cls || cls > UG_DDB_FATAL) {
        abort();
    }

    if (res->count > (uint64_t) INT64_MAX
        || (cls != UG_DDB_OK && res->count != 0))
    {
        abort();
    }

    fuzz_check_text(res->type, sizeof(res->type));
    fuzz_check_text(res->message, sizeof(res->message));
}


static void
fuzz_build(const uint8_t *data, size_t size)
{
    static char     body[UG_DDB_BODY_MAX];
    ug_ddb_item_t   it;
    json_t         *j, *s;
    size_t          len;
    int64_t         delta, limit;
    int             rc;

    if (size < 2) {
        return;
    }

    delta = (int8_t) data[0];
    limit = (data[1] & 0x80) ? UG_OFF : data[1];

    memset(&it, 0, sizeof(it));
    it.table = "sentientiq-usage";
    it.table_len = 16;
    it.owner = (const char *) data + 2;
    it.owner_len = size - 2;
    it.month = 2025 * 12 + 8;

    len = 0;
    rc = ug_ddb_build_add(body, sizeof(body), &len, &it, delta, limit);

    if (rc == UG_DDB_BUILD_NEVER && !(delta >= 0 && limit >= 0
                                      && delta > limit))
    {
        abort();
    }

    if (rc != UG_DDB_BUILD_OK) {
        return;
    }

    if (len == 0 || len > sizeof(body)) {
        abort();
    }

    /* what was sent names exactly the owner given */
    j = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    if (j == NULL) {
        abort();
    }

    s = json_object_get(json_object_get(json_object_get(j, "Key"), "owner"),
                        "S");

    if (!json_is_string(s) || json_string_length(s) != it.owner_len
        || memcmp(json_string_value(s), it.owner, it.owner_len) != 0)
    {
        abort();
    }

    json_decref(j);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_ddb_result_t  res;
    ug_ddb_class_t   cls;
    const char      *body;
    long             status;

    if (size < 1) {
        return 0;
    }

    body = (const char *) data + 1;
    status = (data[0] & 0x10) ? 400 + (data[0] >> 5) * 50 : 200;

    switch (data[0] & 0x03) {

    case 0:
        cls = ug_ddb_parse_update(status, body, size - 1, &res);
        fuzz_check_result(cls, &res);
        break;

    case 1:
        cls = ug_ddb_parse_get(status, body, size - 1, &res);
        fuzz_check_result(cls, &res);
        break;

    case 2:
        cls = ug_ddb_parse_error(status, body, size - 1, NULL, &res);
        fuzz_check_result(cls, &res);

        if (cls == UG_DDB_OK) {
            abort();
        }

        break;

    default:
        fuzz_build(data + 1, size - 1);
        break;
    }

    return 0;
}
