/*
 * ug_ddb: the DynamoDB bodies (parsed back with jansson and compared
 * field by field), answer parsing with hostile input, error
 * classification, backoff bounds.
 */

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_ddb.h"
#include "ug_plan.h"
#include "ug_time.h"


/* September 2025 */
#define MONTH_2025_09  (2025 * 12 + 8)


static char    body[UG_DDB_BODY_MAX];
static size_t  body_len;


static void
item_init(ug_ddb_item_t *it, const char *owner)
{
    memset(it, 0, sizeof(ug_ddb_item_t));
    it->table = "sentientiq-usage";
    it->table_len = strlen(it->table);
    it->owner = owner;
    it->owner_len = strlen(owner);
    it->month = MONTH_2025_09;
}


static json_t *
load_body(void)
{
    json_t        *j;
    json_error_t   err;

    j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(j != NULL, "body is not JSON: %s", err.text);
    ck_assert(json_is_object(j));

    return j;
}


static const char *
str_at(json_t *root, const char *path)
{
    json_t      *j;
    char         buf[256], *save, *part;

    strcpy(buf, path);
    j = root;

    for (part = strtok_r(buf, ".", &save); part != NULL;
         part = strtok_r(NULL, ".", &save))
    {
        j = json_object_get(j, part);
        ck_assert_msg(j != NULL, "no %s in %.*s", path, (int) body_len,
                      body);
    }

    ck_assert_msg(json_is_string(j), "%s is not a string", path);

    return json_string_value(j);
}


static void
check_key(json_t *root, const char *owner)
{
    json_t  *key;

    ck_assert_str_eq(str_at(root, "TableName"), "sentientiq-usage");
    key = json_object_get(root, "Key");
    ck_assert_int_eq(json_object_size(key), 2);
    ck_assert_uint_eq(json_object_size(json_object_get(key, "owner")), 1);
    ck_assert_uint_eq(json_object_size(json_object_get(key, "month")), 1);
    ck_assert_str_eq(str_at(root, "Key.owner.S"), owner);
    ck_assert_str_eq(str_at(root, "Key.month.S"), "2025-09");
}


START_TEST(add_with_ceiling)
{
    ug_ddb_item_t   it;
    json_t         *j, *values;

    item_init(&it, "user_1");

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_OK);
    j = load_body();

    check_key(j, "user_1");
    ck_assert_str_eq(str_at(j, "UpdateExpression"), "ADD #c :n");
    ck_assert_str_eq(str_at(j, "ConditionExpression"),
                     "attribute_not_exists(#c) OR #c <= :max");
    ck_assert_int_eq(json_object_size(json_object_get(j,
                         "ExpressionAttributeNames")), 1);
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#c"), "count");

    values = json_object_get(j, "ExpressionAttributeValues");
    ck_assert_int_eq(json_object_size(values), 2);
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:n.N"), "1");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:max.N"), "19");
    ck_assert_str_eq(str_at(j, "ReturnValues"), "UPDATED_NEW");

    /* nothing else: no ALL_NEW, no leftover seed attributes */
    ck_assert_int_eq(json_object_size(j), 7);

    json_decref(j);

    /* a cost of 5 against a limit of 20: at most 15 before it */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      5, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:n.N"), "5");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:max.N"), "15");
    json_decref(j);
}
END_TEST


START_TEST(add_at_and_over_the_limit)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "u");

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      20, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:max.N"), "0");
    json_decref(j);

    /* a plan with limit 0: a cost of 0 may pass, 1 never */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      0, 0), UG_DDB_BUILD_OK);

    body_len = 12345;
    memset(body, 'x', 8);
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      21, 20), UG_DDB_BUILD_NEVER);
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 0), UG_DDB_BUILD_NEVER);
    ck_assert_uint_eq(body_len, 12345);
    ck_assert_int_eq(memcmp(body, "xxxxxxxx", 8), 0);
}
END_TEST


START_TEST(add_without_limit)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "org_9");

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1234, UG_OFF), UG_DDB_BUILD_OK);
    j = load_body();
    check_key(j, "org_9");
    ck_assert_str_eq(str_at(j, "UpdateExpression"), "ADD #c :n");
    ck_assert_ptr_null(json_object_get(j, "ConditionExpression"));
    ck_assert_int_eq(json_object_size(json_object_get(j,
                         "ExpressionAttributeValues")), 1);
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:n.N"), "1234");
    ck_assert_str_eq(str_at(j, "ReturnValues"), "UPDATED_NEW");
    ck_assert_int_eq(json_object_size(j), 6);
    json_decref(j);
}
END_TEST


START_TEST(add_negative_has_floor)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "u");

    /* the limit does not matter for a correction downwards */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      -5, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ConditionExpression"), "#c >= :min");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:n.N"), "-5");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:min.N"), "5");
    ck_assert_ptr_null(json_object_get(json_object_get(j,
                           "ExpressionAttributeValues"), ":max"));
    json_decref(j);
}
END_TEST


START_TEST(add_delta_bounds)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "u");

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      UG_DDB_DELTA_MAX, UG_OFF),
                     UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:n.N"),
                     "1000000000000");
    json_decref(j);

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      UG_DDB_DELTA_MAX + 1, UG_OFF),
                     UG_DDB_BUILD_INVALID);
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      -UG_DDB_DELTA_MAX - 1, UG_OFF),
                     UG_DDB_BUILD_INVALID);
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      INT64_MIN, 5),
                     UG_DDB_BUILD_INVALID);
    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      -1), UG_DDB_BUILD_INVALID);
    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      UG_DDB_DELTA_MAX + 1),
                     UG_DDB_BUILD_INVALID);
}
END_TEST


START_TEST(owner_is_escaped)
{
    static const char  *owners[] = {
        "a\"b", "back\\slash", "ctl\x01\x1f", "tab\there",
        "utf8-\xc3\xa9\xe2\x82\xac", "</script>",
        "anon:0123456789abcdef01234567"
    };

    ug_ddb_item_t  it;
    json_t        *j;
    size_t         i, k;

    for (i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
        item_init(&it, owners[i]);

        ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len,
                                          &it, 1, 20), UG_DDB_BUILD_OK);

        /* raw control bytes never reach the wire */
        for (k = 0; k < body_len; k++) {
            ck_assert_int_ge((unsigned char) body[k], 0x20);
        }

        j = load_body();
        check_key(j, owners[i]);
        json_decref(j);
    }

    /* bytes that are not UTF-8 would be refused by DynamoDB */
    item_init(&it, "bad\xff");
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
}
END_TEST


START_TEST(add_with_writer)
{
    ug_ddb_item_t   it;
    json_t         *j;

    item_init(&it, "user_1");
    it.writer = "0123456789abcdef";
    it.writer_len = 16;
    it.seq = 42;

    /* the ceiling and the writer's sequence, both */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      3, 20), UG_DDB_BUILD_OK);
    j = load_body();
    check_key(j, "user_1");
    ck_assert_str_eq(str_at(j, "UpdateExpression"), "ADD #c :n SET #w = :s");
    ck_assert_str_eq(str_at(j, "ConditionExpression"),
                     "(attribute_not_exists(#c) OR #c <= :max) AND "
                     "(attribute_not_exists(#w) OR #w < :s)");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#w"),
                     "w_0123456789abcdef");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:s.N"), "42");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:max.N"), "17");
    json_decref(j);

    /* no limit: the writer's condition alone */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      3, -1), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ConditionExpression"),
                     "(attribute_not_exists(#w) OR #w < :s)");
    json_decref(j);

    /* a give-back keeps its floor */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      -2, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ConditionExpression"),
                     "(#c >= :min) AND (attribute_not_exists(#w) OR #w < :s)");
    json_decref(j);

    /* with a TTL: one SET clause for both paths */
    it.ttl_attr = "expires_at";
    it.ttl_attr_len = strlen(it.ttl_attr);
    it.ttl_at = 1767225600;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "UpdateExpression"),
                     "ADD #c :n SET #t = :t, #w = :s");
    json_decref(j);

    /* writers that are not short lowercase hex, and sequence 0 */
    it.writer = "0123456789ABCDEF";
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.writer = "0123456789abcdef0";
    it.writer_len = 17;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.writer = "ab";
    it.writer_len = 0;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.writer_len = 2;
    it.seq = 0;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
}
END_TEST


START_TEST(get_with_writer)
{
    ug_ddb_item_t    it;
    ug_ddb_result_t  r;
    json_t          *j;
    const char      *text;

    item_init(&it, "user_1");
    it.writer = "beef";
    it.writer_len = 4;
    it.seq = 7;

    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ProjectionExpression"), "#c, #w");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#w"), "w_beef");
    ck_assert(json_is_true(json_object_get(j, "ConsistentRead")));
    json_decref(j);

    text = "{\"Item\":{\"count\":{\"N\":\"12\"},\"w_beef\":{\"N\":\"7\"}}}";
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, text, strlen(text), &it,
                                             &r), UG_DDB_OK);
    ck_assert_uint_eq(r.count, 12);
    ck_assert_uint_eq(r.seq, 7);
    ck_assert(r.has_seq);

    /* another writer's attribute is not ours */
    text = "{\"Item\":{\"count\":{\"N\":\"12\"},\"w_bee\":{\"N\":\"9\"}}}";
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, text, strlen(text), &it,
                                             &r), UG_DDB_OK);
    ck_assert(!r.has_seq);
    ck_assert_uint_eq(r.seq, 0);

    /* no item at all */
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, "{}", 2, &it, &r),
                     UG_DDB_OK);
    ck_assert(!r.found);
    ck_assert(!r.has_seq);

    /* a sequence that is not a count */
    text = "{\"Item\":{\"count\":{\"N\":\"1\"},\"w_beef\":{\"N\":\"-7\"}}}";
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, text, strlen(text), &it,
                                             &r), UG_DDB_FATAL);
    text = "{\"Item\":{\"count\":{\"N\":\"1\"},\"w_beef\":{\"S\":\"7\"}}}";
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, text, strlen(text), &it,
                                             &r), UG_DDB_FATAL);

    /* errors classify as for any call */
    text = "{\"__type\":\"x#ThrottlingException\"}";
    ck_assert_int_eq(ug_ddb_parse_get_writer(400, text, strlen(text), &it,
                                             &r), UG_DDB_RETRYABLE);

    it.writer = NULL;
    ck_assert_int_eq(ug_ddb_parse_get_writer(200, "{}", 2, &it, &r),
                     UG_DDB_FATAL);
}
END_TEST


START_TEST(owner_with_nul_byte)
{
    ug_ddb_item_t  it;
    json_t        *j, *s;

    item_init(&it, "a");
    it.owner = "a\0b";
    it.owner_len = 3;

    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_OK);
    j = json_loadb(body, body_len, JSON_ALLOW_NUL, NULL);
    ck_assert_ptr_nonnull(j);
    s = json_object_get(json_object_get(json_object_get(j, "Key"), "owner"),
                        "S");
    ck_assert_uint_eq(json_string_length(s), 3);
    ck_assert_int_eq(memcmp(json_string_value(s), "a\0b", 3), 0);
    json_decref(j);
}
END_TEST


START_TEST(bad_items)
{
    ug_ddb_item_t  it;
    char           owner[UG_DDB_OWNER_MAX + 2];

    item_init(&it, "");
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);

    memset(owner, 'o', sizeof(owner) - 1);
    owner[sizeof(owner) - 1] = '\0';
    item_init(&it, owner);
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_INVALID);

    item_init(&it, "u");
    it.table = "ab";
    it.table_len = 2;
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_INVALID);

    item_init(&it, "u");
    it.table = "bad table";
    it.table_len = 9;
    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      3), UG_DDB_BUILD_INVALID);

    item_init(&it, "u");
    it.table = NULL;
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_INVALID);

    item_init(&it, "u");
    it.month = -1;
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_INVALID);
    it.month = 10000 * 12;
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_INVALID);
}
END_TEST


START_TEST(output_is_bounded)
{
    ug_ddb_item_t  it;
    char           small[64], owner[UG_DDB_OWNER_MAX + 1];
    char           table[UG_DDB_TABLE_MAX + 1];
    size_t         len, exact;

    item_init(&it, "user_1");

    memset(small, 'x', sizeof(small));
    ck_assert_int_eq(ug_ddb_build_add(small, sizeof(small), &len, &it,
                                      1, 20), UG_DDB_BUILD_TOO_BIG);

    /* exactly the size needed is enough */
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &exact, &it,
                                      1, 20), UG_DDB_BUILD_OK);
    ck_assert_int_eq(ug_ddb_build_add(body, exact, &len, &it, 1, 20),
                     UG_DDB_BUILD_OK);
    ck_assert_uint_eq(len, exact);
    ck_assert_int_eq(ug_ddb_build_add(body, exact - 1, &len, &it, 1, 20),
                     UG_DDB_BUILD_TOO_BIG);

    /* the worst case fits UG_DDB_BODY_MAX: every owner byte escaped */
    memset(owner, 0x01, UG_DDB_OWNER_MAX);
    owner[UG_DDB_OWNER_MAX] = '\0';
    memset(table, 't', UG_DDB_TABLE_MAX);
    table[UG_DDB_TABLE_MAX] = '\0';

    item_init(&it, owner);
    it.table = table;
    it.table_len = UG_DDB_TABLE_MAX;
    it.ttl_attr = "expires_at_with_a_long_name";
    it.ttl_attr_len = strlen(it.ttl_attr);
    it.ttl_at = INT64_MAX;

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &len, &it,
                                      -UG_DDB_DELTA_MAX, UG_OFF),
                     UG_DDB_BUILD_OK);
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &len, &it,
                                      1, UG_LIMIT_MAX), UG_DDB_BUILD_OK);
    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &len, &it,
                                      UG_DDB_DELTA_MAX), UG_DDB_BUILD_OK);
    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &len, &it),
                     UG_DDB_BUILD_OK);
}
END_TEST


START_TEST(get_body)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "user_1");

    ck_assert_int_eq(ug_ddb_build_get(body, sizeof(body), &body_len, &it),
                     UG_DDB_BUILD_OK);
    j = load_body();
    check_key(j, "user_1");
    ck_assert(json_is_true(json_object_get(j, "ConsistentRead")));
    ck_assert_str_eq(str_at(j, "ProjectionExpression"), "#c");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#c"), "count");
    ck_assert_int_eq(json_object_size(j), 5);
    json_decref(j);
}
END_TEST


START_TEST(set_body)
{
    ug_ddb_item_t  it;
    json_t        *j;

    item_init(&it, "user_1");

    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      42), UG_DDB_BUILD_OK);
    j = load_body();
    check_key(j, "user_1");
    ck_assert_str_eq(str_at(j, "UpdateExpression"), "SET #c = :v");
    ck_assert_ptr_null(json_object_get(j, "ConditionExpression"));
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#c"), "count");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:v.N"), "42");
    ck_assert_str_eq(str_at(j, "ReturnValues"), "UPDATED_NEW");
    ck_assert_int_eq(json_object_size(j), 6);
    json_decref(j);

    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      0), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:v.N"), "0");
    json_decref(j);
}
END_TEST


START_TEST(ttl_attribute)
{
    ug_ddb_item_t  it;
    json_t        *j;
    char           ttl[24];
    int64_t        at;

    item_init(&it, "u");
    it.ttl_attr = "expires_at";
    it.ttl_attr_len = strlen(it.ttl_attr);

    /* 400 days after the end of September 2025 (2025-10-01T00:00:00Z) */
    at = ug_ddb_ttl_at(MONTH_2025_09, 400 * 86400LL);
    ck_assert_int_eq(at, 1759276800LL + 400 * 86400LL);
    it.ttl_at = at;
    snprintf(ttl, sizeof(ttl), "%lld", (long long) at);

    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "UpdateExpression"),
                     "ADD #c :n SET #t = :t");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeNames.#t"),
                     "expires_at");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:t.N"), ttl);
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:max.N"), "19");
    json_decref(j);

    ck_assert_int_eq(ug_ddb_build_set(body, sizeof(body), &body_len, &it,
                                      7), UG_DDB_BUILD_OK);
    j = load_body();
    ck_assert_str_eq(str_at(j, "UpdateExpression"),
                     "SET #c = :v, #t = :t");
    ck_assert_str_eq(str_at(j, "ExpressionAttributeValues.:t.N"), ttl);
    json_decref(j);

    /* a TTL on count itself would overlap the ADD; the key is fixed */
    it.ttl_attr = "count";
    it.ttl_attr_len = 5;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.ttl_attr = "month";
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.ttl_attr = "a b";
    it.ttl_attr_len = 3;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
    it.ttl_attr = "";
    it.ttl_attr_len = 0;
    ck_assert_int_eq(ug_ddb_build_add(body, sizeof(body), &body_len, &it,
                                      1, 20), UG_DDB_BUILD_INVALID);
}
END_TEST


START_TEST(names_and_regions)
{
    ck_assert_int_eq(ug_ddb_table_name_ok("sentientiq-usage", 16), 1);
    ck_assert_int_eq(ug_ddb_table_name_ok("a.b_c-D9", 8), 1);
    ck_assert_int_eq(ug_ddb_table_name_ok("ab", 2), 0);
    ck_assert_int_eq(ug_ddb_table_name_ok("a/b", 3), 0);
    ck_assert_int_eq(ug_ddb_table_name_ok("tab\"le", 6), 0);

    ck_assert_int_eq(ug_ddb_region_ok("us-east-1", 9), 1);
    ck_assert_int_eq(ug_ddb_region_ok("eu-central-2", 12), 1);
    ck_assert_int_eq(ug_ddb_region_ok("", 0), 0);
    ck_assert_int_eq(ug_ddb_region_ok("US-EAST-1", 9), 0);
    ck_assert_int_eq(ug_ddb_region_ok("us:east", 7), 0);
    ck_assert_int_eq(ug_ddb_region_ok("-us", 3), 0);
}
END_TEST


START_TEST(endpoints)
{
    char  buf[UG_DDB_ENDPOINT_MAX];

    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf), "us-east-1"), 0);
    ck_assert_str_eq(buf, "https://dynamodb.us-east-1.amazonaws.com/");
    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf), "cn-north-1"), 0);
    ck_assert_str_eq(buf, "https://dynamodb.cn-north-1.amazonaws.com.cn/");
    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf), "us-east-1/x"), -1);
    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf), ""), -1);
    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf), NULL), -1);
    ck_assert_int_eq(ug_ddb_endpoint(buf, 20, "us-east-1"), -1);

    /* the longest region accepted still fits */
    ck_assert_int_eq(ug_ddb_endpoint(buf, sizeof(buf),
                         "cn-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
}
END_TEST


/* Answers */


static ug_ddb_class_t
upd(long status, const char *text, ug_ddb_result_t *r)
{
    return ug_ddb_parse_update(status, text, strlen(text), r);
}


static ug_ddb_class_t
get(const char *text, ug_ddb_result_t *r)
{
    return ug_ddb_parse_get(200, text, strlen(text), r);
}


START_TEST(updated_new)
{
    ug_ddb_result_t  r;

    ck_assert_int_eq(upd(200, "{\"Attributes\":{\"count\":{\"N\":\"123\"}}}",
                         &r), UG_DDB_OK);
    ck_assert_int_eq(r.cls, UG_DDB_OK);
    ck_assert_uint_eq(r.count, 123);
    ck_assert_int_eq(r.found, 1);
    ck_assert_str_eq(r.type, "");

    /* whitespace and other attributes are fine */
    ck_assert_int_eq(upd(200, " { \"Attributes\" : { \"expires_at\": "
                              "{\"N\":\"1\"}, \"count\" : {\"N\" : \"0\"} "
                              "}, \"ConsumedCapacity\": null } ", &r),
                     UG_DDB_OK);
    ck_assert_uint_eq(r.count, 0);

    ck_assert_int_eq(upd(200, "{\"Attributes\":{\"count\":"
                              "{\"N\":\"9223372036854775807\"}}}", &r),
                     UG_DDB_OK);
    ck_assert_uint_eq(r.count, (uint64_t) INT64_MAX);
}
END_TEST


START_TEST(updated_new_hostile)
{
    static const char  *bad_count[] = {
        "{\"Attributes\":{\"count\":{\"N\":123}}}",
        "{\"Attributes\":{\"count\":{\"S\":\"123\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"123\",\"S\":\"1\"}}}",
        "{\"Attributes\":{\"count\":\"123\"}}",
        "{\"Attributes\":{\"count\":[\"123\"]}}",
        "{\"Attributes\":{\"count\":{\"N\":\"\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"-1\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"+1\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"1.5\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"1e3\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\" 12\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"9223372036854775808\"}}}",
        "{\"Attributes\":{\"count\":{\"N\":\"18446744073709551616\"}}}",
        ("{\"Attributes\":{\"count\":{\"N\":"
            "\"99999999999999999999999999999999999999\"}}}"),
        "{\"Attributes\":{\"count\":null}}",
        "{\"Attributes\":{}}",
    };

    static const char  *malformed[] = {
        "{\"Attributes\":{\"count\":{\"N\":\"12\"}}",
        "{\"Attributes\":{\"count\":{\"N\":\"1",
        "",
        "null",
        "[]",
        "\"Attributes\"",
        "{}",
        "{\"Attributes\":[]}",
        "{\"Attributes\":\"count\"}",
        ("{\"Attributes\":{\"count\":{\"N\":\"1\"}},"
            "\"Attributes\":{\"count\":{\"N\":\"2\"}}}"),
        "<html>OK</html>",
        /* jansson refuses NUL inside strings unless asked */
        "{\"Attributes\":{\"count\":{\"N\":\"12\\u0000\"}}}",
    };

    ug_ddb_result_t  r;
    size_t           i;

    for (i = 0; i < sizeof(bad_count) / sizeof(bad_count[0]); i++) {
        ck_assert_msg(upd(200, bad_count[i], &r) == UG_DDB_FATAL,
                      "accepted %s", bad_count[i]);
        ck_assert_str_eq(r.type, "BadCount");
        ck_assert_uint_eq(r.count, 0);
    }

    for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        /* a 200 is never retried: the ADD may have been applied */
        ck_assert_msg(upd(200, malformed[i], &r) == UG_DDB_FATAL,
                      "accepted %s", malformed[i]);
        ck_assert_str_eq(r.type, "MalformedResponse");
    }

    ck_assert_int_eq(ug_ddb_parse_update(200, NULL, 0, &r), UG_DDB_FATAL);
}
END_TEST


START_TEST(oversize_answer)
{
    ug_ddb_result_t  r;
    char            *big;
    size_t           n;
    const char      *doc = "{\"Attributes\":{\"count\":{\"N\":\"7\"}}}";

    /* valid JSON padded just under and just over the limit */
    n = UG_DDB_RESPONSE_MAX + 1;
    big = malloc(n);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', n);
    memcpy(big, doc, strlen(doc));

    ck_assert_int_eq(ug_ddb_parse_update(200, big, n - 1, &r), UG_DDB_OK);
    ck_assert_uint_eq(r.count, 7);
    ck_assert_int_eq(ug_ddb_parse_update(200, big, n, &r), UG_DDB_FATAL);
    ck_assert_str_eq(r.type, "MalformedResponse");

    free(big);
}
END_TEST


START_TEST(deep_nesting)
{
    ug_ddb_result_t  r;
    char            *deep;
    size_t           i, n;

    /* valid JSON, 30000 levels deep, within the size limit: refused by
     * jansson's depth limit, not by the stack */
    n = 30000;
    deep = malloc(2 * n);
    ck_assert_ptr_nonnull(deep);

    for (i = 0; i < n; i++) {
        deep[i] = '[';
        deep[n + i] = ']';
    }

    ck_assert_int_eq(ug_ddb_parse_update(200, deep, 2 * n, &r),
                     UG_DDB_FATAL);
    ck_assert_str_eq(r.type, "MalformedResponse");
    ck_assert_int_eq(ug_ddb_parse_error(400, deep, 2 * n, NULL, &r),
                     UG_DDB_FATAL);
    free(deep);
}
END_TEST


START_TEST(get_item)
{
    ug_ddb_result_t  r;

    ck_assert_int_eq(get("{}", &r), UG_DDB_OK);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_int_eq(r.found, 0);

    ck_assert_int_eq(get("{\"Item\":{}}", &r), UG_DDB_OK);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_int_eq(r.found, 1);

    ck_assert_int_eq(get("{\"Item\":{\"count\":{\"N\":\"20\"}}}", &r),
                     UG_DDB_OK);
    ck_assert_uint_eq(r.count, 20);
    ck_assert_int_eq(r.found, 1);

    ck_assert_int_eq(get("{\"Item\":{\"count\":{\"N\":\"x\"}}}", &r),
                     UG_DDB_FATAL);
    ck_assert_int_eq(get("{\"Item\":7}", &r), UG_DDB_FATAL);
    ck_assert_int_eq(get("{\"Item\":", &r), UG_DDB_FATAL);
}
END_TEST


static const struct {
    const char      *type;
    ug_ddb_class_t   cls;
    unsigned         auth;
} types[] = {
    { "ConditionalCheckFailedException", UG_DDB_CONDITIONAL_FAILED, 0 },
    { "ProvisionedThroughputExceededException", UG_DDB_RETRYABLE, 0 },
    { "ThrottlingException", UG_DDB_RETRYABLE, 0 },
    { "RequestLimitExceeded", UG_DDB_RETRYABLE, 0 },
    { "InternalServerError", UG_DDB_RETRYABLE, 0 },
    { "ServiceUnavailable", UG_DDB_RETRYABLE, 0 },
    { "TransactionConflictException", UG_DDB_RETRYABLE, 0 },
    { "ValidationException", UG_DDB_FATAL, 0 },
    { "ResourceNotFoundException", UG_DDB_FATAL, 0 },
    { "AccessDeniedException", UG_DDB_FATAL, 1 },
    { "AccessDenied", UG_DDB_FATAL, 1 },
    { "UnrecognizedClientException", UG_DDB_FATAL, 1 },
    { "ExpiredTokenException", UG_DDB_FATAL, 1 },
    { "InvalidSignatureException", UG_DDB_FATAL, 1 },
    { "MissingAuthenticationTokenException", UG_DDB_FATAL, 1 },
    { "ItemCollectionSizeLimitExceededException", UG_DDB_FATAL, 0 },
    { "SomethingNewException", UG_DDB_FATAL, 0 },
    { "", UG_DDB_FATAL, 0 },
    /* near misses are not matches */
    { "ConditionalCheckFailedExceptionX", UG_DDB_FATAL, 0 },
    { "conditionalcheckfailedexception", UG_DDB_FATAL, 0 },
    { "ThrottlingExceptio", UG_DDB_FATAL, 0 },
};


START_TEST(error_types)
{
    ug_ddb_result_t  r;
    char             text[512];
    int              n;
    size_t           i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        n = snprintf(text, sizeof(text),
                     "{\"__type\":\"com.amazonaws.dynamodb.v20120810#%s\","
                     "\"message\":\"why: %s\"}", types[i].type,
                     types[i].type);

        ck_assert_msg(ug_ddb_parse_error(400, text, (size_t) n, NULL, &r)
                      == types[i].cls, "class of %s", types[i].type);
        ck_assert_int_eq(r.cls, types[i].cls);
        ck_assert_int_eq(r.auth, types[i].auth);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(r.type, types[i].type);

        /* the same through the UpdateItem and GetItem readers */
        ck_assert_int_eq(ug_ddb_parse_update(400, text, (size_t) n, &r),
                         types[i].cls);
        ck_assert_int_eq(ug_ddb_parse_get(400, text, (size_t) n, &r),
                         types[i].cls);
    }
}
END_TEST


START_TEST(error_shapes)
{
    ug_ddb_result_t  r;
    const char      *t;

    /* a different service prefix, and "Message" */
    t = "{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException\","
        "\"Message\":\"The security token included in the request is "
        "invalid.\"}";
    ck_assert_int_eq(ug_ddb_parse_error(400, t, strlen(t), NULL, &r),
                     UG_DDB_FATAL);
    ck_assert_str_eq(r.type, "UnrecognizedClientException");
    ck_assert_str_eq(r.message,
                     "The security token included in the request is "
                     "invalid.");
    ck_assert_int_eq(r.auth, 1);

    /* no '#': the whole value is the name */
    t = "{\"__type\":\"ThrottlingException\"}";
    ck_assert_int_eq(ug_ddb_parse_error(400, t, strlen(t), NULL, &r),
                     UG_DDB_RETRYABLE);
    ck_assert_str_eq(r.type, "ThrottlingException");
    ck_assert_str_eq(r.message, "");

    /* several '#': the last part counts */
    t = "{\"__type\":\"a#b#ConditionalCheckFailedException\"}";
    ck_assert_int_eq(ug_ddb_parse_error(400, t, strlen(t), NULL, &r),
                     UG_DDB_CONDITIONAL_FAILED);
    t = "{\"__type\":\"ConditionalCheckFailedException#\"}";
    ck_assert_int_eq(ug_ddb_parse_error(400, t, strlen(t), NULL, &r),
                     UG_DDB_FATAL);

    /* 5xx is retryable whatever the body says */
    t = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#InternalServerError\""
        ",\"message\":\"Internal server error\"}";
    ck_assert_int_eq(ug_ddb_parse_error(500, t, strlen(t), NULL, &r),
                     UG_DDB_RETRYABLE);
    ck_assert_str_eq(r.type, "InternalServerError");
    t = "<html><body>503 Service Unavailable</body></html>";
    ck_assert_int_eq(ug_ddb_parse_error(503, t, strlen(t), NULL, &r),
                     UG_DDB_RETRYABLE);
    ck_assert_str_eq(r.type, "HttpServerError");
    ck_assert_int_eq(ug_ddb_parse_error(500, "", 0, NULL, &r),
                     UG_DDB_RETRYABLE);
    t = "{\"__type\":\"x#ValidationException\"}";
    ck_assert_int_eq(ug_ddb_parse_error(502, t, strlen(t), NULL, &r),
                     UG_DDB_RETRYABLE);

    /* a 4xx without a type is fatal; so are other statuses */
    t = "<html>Forbidden</html>";
    ck_assert_int_eq(ug_ddb_parse_error(403, t, strlen(t), NULL, &r),
                     UG_DDB_FATAL);
    ck_assert_str_eq(r.type, "HttpClientError");
    t = "{\"__type\":42}";
    ck_assert_int_eq(ug_ddb_parse_error(400, t, strlen(t), NULL, &r),
                     UG_DDB_FATAL);
    t = "{\"message\":\"no type\"}";
    ck_assert_int_eq(ug_ddb_parse_error(404, t, strlen(t), NULL, &r),
                     UG_DDB_FATAL);
    ck_assert_int_eq(ug_ddb_parse_error(301, "", 0, NULL, &r),
                     UG_DDB_FATAL);

    /* a transport error is retryable and says what happened */
    ck_assert_int_eq(ug_ddb_parse_error(0, NULL, 0, "Timeout", &r),
                     UG_DDB_RETRYABLE);
    ck_assert_str_eq(r.type, "Timeout");
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(ug_ddb_parse_update(0, NULL, 0, &r), UG_DDB_RETRYABLE);
    ck_assert_str_eq(r.type, "TransportError");
}
END_TEST


START_TEST(error_text_is_sanitised)
{
    ug_ddb_result_t  r;
    char             text[2048];
    char             longtype[300];
    size_t           i;
    int              n;

    /* control bytes in AWS text never reach the log as such */
    n = snprintf(text, sizeof(text),
                 "{\"__type\":\"x#Bad\\nType\",\"message\":\"a\\r\\nb\\u0007"
                 "c\\u00e9\"}");
    ck_assert_int_eq(ug_ddb_parse_error(400, text, (size_t) n, NULL, &r),
                     UG_DDB_FATAL);
    ck_assert_str_eq(r.type, "Bad?Type");
    ck_assert_str_eq(r.message, "a??b?c??");

    /* long texts are cut to the result's buffers */
    memset(longtype, 'T', sizeof(longtype) - 1);
    longtype[sizeof(longtype) - 1] = '\0';
    n = snprintf(text, sizeof(text), "{\"__type\":\"x#%s\",\"message\":\"%s"
                 "%s\"}", longtype, longtype, longtype);
    ck_assert_int_eq(ug_ddb_parse_error(400, text, (size_t) n, NULL, &r),
                     UG_DDB_FATAL);
    ck_assert_uint_eq(strlen(r.type), sizeof(r.type) - 1);
    ck_assert_uint_eq(strlen(r.message), sizeof(r.message) - 1);

    for (i = 0; i < strlen(r.type); i++) {
        ck_assert_int_eq(r.type[i], 'T');
    }
}
END_TEST


START_TEST(backoff_bounds)
{
    static const uint32_t  rnds[] = {
        0, 1, 49, 50, 51, 99, 1600, 1601, 12345, 0x7fffffff, 0x80000000,
        0xfffffffe, 0xffffffff
    };

    unsigned  attempt;
    uint32_t  ceiling, ms, hi;
    size_t    i;
    uint64_t  x;

    ck_assert_uint_eq(ug_ddb_backoff_ms(0, 0xffffffff), 0);

    for (attempt = 1; attempt < 40; attempt++) {
        ceiling = attempt <= 6 ? 50u << (attempt - 1) : 1600;
        if (ceiling > 1600) {
            ceiling = 1600;
        }

        for (i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
            ms = ug_ddb_backoff_ms(attempt, rnds[i]);
            ck_assert_uint_le(ms, ceiling);
        }

        /* full jitter: the whole range is reachable */
        ck_assert_uint_eq(ug_ddb_backoff_ms(attempt, 0), 0);
        ck_assert_uint_eq(ug_ddb_backoff_ms(attempt, ceiling), ceiling);

        /* and spread over it (xorshift draws) */
        hi = 0;
        x = 88172645463325252ULL + attempt;
        for (i = 0; i < 2000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ms = ug_ddb_backoff_ms(attempt, (uint32_t) x);
            ck_assert_uint_le(ms, ceiling);
            hi = ms > hi ? ms : hi;
        }

        ck_assert_uint_ge(hi, ceiling * 9 / 10);
    }

    ck_assert_uint_eq(ug_ddb_backoff_ms(1, 50), 50);
    ck_assert_uint_eq(ug_ddb_backoff_ms(1, 51), 0);
    ck_assert_uint_eq(ug_ddb_backoff_ms(2, 100), 100);
    ck_assert_uint_eq(ug_ddb_backoff_ms(6, 1600), 1600);
    ck_assert_uint_le(ug_ddb_backoff_ms(~0u, 0xffffffff), 1600);
    ck_assert_uint_le(ug_ddb_backoff_ms(33, 0xffffffff), 1600);
}
END_TEST


START_TEST(retry_policy)
{
    unsigned  a;

    for (a = 1; a < UG_DDB_MAX_ATTEMPTS; a++) {
        ck_assert_int_eq(ug_ddb_should_retry(UG_DDB_RETRYABLE, a), 1);
    }

    ck_assert_int_eq(ug_ddb_should_retry(UG_DDB_RETRYABLE,
                                         UG_DDB_MAX_ATTEMPTS), 0);
    ck_assert_int_eq(ug_ddb_should_retry(UG_DDB_CONDITIONAL_FAILED, 1), 0);
    ck_assert_int_eq(ug_ddb_should_retry(UG_DDB_FATAL, 1), 0);
    ck_assert_int_eq(ug_ddb_should_retry(UG_DDB_OK, 1), 0);

    ck_assert_str_eq(ug_ddb_class_name(UG_DDB_CONDITIONAL_FAILED),
                     "conditional_failed");
    ck_assert_str_eq(ug_ddb_class_name(UG_DDB_RETRYABLE), "retryable");
}
END_TEST


static Suite *
ddb_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_ddb");

    tc = tcase_create("build");
    tcase_add_test(tc, add_with_ceiling);
    tcase_add_test(tc, add_at_and_over_the_limit);
    tcase_add_test(tc, add_without_limit);
    tcase_add_test(tc, add_negative_has_floor);
    tcase_add_test(tc, add_delta_bounds);
    tcase_add_test(tc, owner_is_escaped);
    tcase_add_test(tc, owner_with_nul_byte);
    tcase_add_test(tc, bad_items);
    tcase_add_test(tc, output_is_bounded);
    tcase_add_test(tc, get_body);
    tcase_add_test(tc, add_with_writer);
    tcase_add_test(tc, get_with_writer);
    tcase_add_test(tc, set_body);
    tcase_add_test(tc, ttl_attribute);
    tcase_add_test(tc, names_and_regions);
    tcase_add_test(tc, endpoints);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, updated_new);
    tcase_add_test(tc, updated_new_hostile);
    tcase_add_test(tc, oversize_answer);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, get_item);
    tcase_add_test(tc, error_types);
    tcase_add_test(tc, error_shapes);
    tcase_add_test(tc, error_text_is_sanitised);
    suite_add_tcase(s, tc);

    tc = tcase_create("retry");
    tcase_add_test(tc, backoff_bounds);
    tcase_add_test(tc, retry_policy);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(ddb_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed != 0;
}
