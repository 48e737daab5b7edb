#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ug_ddb.h"
#include "ug_time.h"


/* Every UpdateItem and GetItem names count through "#c": "count" is a
 * DynamoDB reserved word and cannot appear in an expression as is. */
#define UG_DDB_EXPR_ADD         "ADD #c :n"
#define UG_DDB_EXPR_CEILING     "attribute_not_exists(#c) OR #c <= :max"
#define UG_DDB_EXPR_FLOOR       "#c >= :min"
#define UG_DDB_EXPR_SET         "SET #c = :v"
#define UG_DDB_EXPR_TTL         "#t = :t"
#define UG_DDB_EXPR_WRITER      "#w = :s"
#define UG_DDB_EXPR_ONCE        "(attribute_not_exists(#w) OR #w < :s)"


static int
ug_ddb_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}


int
ug_ddb_table_name_ok(const char *name, size_t len)
{
    size_t  i;

    if (name == NULL || len < UG_DDB_TABLE_MIN || len > UG_DDB_TABLE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!ug_ddb_name_char((unsigned char) name[i])) {
            return 0;
        }
    }

    return 1;
}


int
ug_ddb_region_ok(const char *region, size_t len)
{
    size_t  i;
    int     c;

    /* goes into a URL and into curl's "aws:amz:<region>:dynamodb" */
    if (region == NULL || len == 0 || len > 32) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) region[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        {
            return 0;
        }
    }

    return region[0] != '-' && region[len - 1] != '-';
}


int
ug_ddb_endpoint(char *buf, size_t size, const char *region)
{
    size_t       len;
    int          n;
    const char  *suffix;

    if (region == NULL) {
        return -1;
    }

    len = strlen(region);

    if (!ug_ddb_region_ok(region, len)) {
        return -1;
    }

    suffix = (len > 3 && memcmp(region, "cn-", 3) == 0) ? ".com.cn" : ".com";

    n = snprintf(buf, size, "https://dynamodb.%s.amazonaws%s/", region,
                 suffix);

    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}


static int
ug_ddb_ttl_attr_ok(const char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > UG_DDB_ATTR_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!ug_ddb_name_char((unsigned char) name[i])) {
            return 0;
        }
    }

    /* one update may not touch a path twice, and the key is immutable */
    if ((len == sizeof(UG_DDB_ATTR_COUNT) - 1
         && memcmp(name, UG_DDB_ATTR_COUNT, len) == 0)
        || (len == sizeof(UG_DDB_ATTR_OWNER) - 1
            && memcmp(name, UG_DDB_ATTR_OWNER, len) == 0)
        || (len == sizeof(UG_DDB_ATTR_MONTH) - 1
            && memcmp(name, UG_DDB_ATTR_MONTH, len) == 0))
    {
        return 0;
    }

    return 1;
}


static int
ug_ddb_writer_ok(const char *writer, size_t len)
{
    size_t  i;
    int     c;

    if (len == 0 || len > UG_DDB_WRITER_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) writer[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* "w_" and the writer's hex digits, NUL-terminated. */
static void
ug_ddb_writer_name(const ug_ddb_item_t *item, char *name)
{
    memcpy(name, UG_DDB_WRITER_PREFIX, sizeof(UG_DDB_WRITER_PREFIX) - 1);
    memcpy(name + sizeof(UG_DDB_WRITER_PREFIX) - 1, item->writer,
           item->writer_len);
    name[sizeof(UG_DDB_WRITER_PREFIX) - 1 + item->writer_len] = '\0';
}


int64_t
ug_ddb_ttl_at(int32_t month, int64_t keep_sec)
{
    return ug_month_start(month + 1) + keep_sec;
}


const char *
ug_ddb_build_strerror(int rc)
{
    switch (rc) {
    case UG_DDB_BUILD_OK:
        return "ok";
    case UG_DDB_BUILD_NEVER:
        return "the cost exceeds the limit: the write can never pass";
    case UG_DDB_BUILD_INVALID:
        return "invalid table, owner, month, TTL attribute or value";
    case UG_DDB_BUILD_TOO_BIG:
        return "request body too big";
    default:
        return "out of memory";
    }
}


static json_t *
ug_ddb_num(int64_t v)
{
    char  buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);

    return json_pack("{s:s}", "N", buf);
}


/*
 * The parts every call shares: TableName and Key.  Returns the request
 * object, or NULL with *rc set.
 */
static json_t *
ug_ddb_base(const ug_ddb_item_t *item, int *rc)
{
    char     month[UG_MONTH_KEY_LEN + 1];
    json_t  *req, *owner;

    *rc = UG_DDB_BUILD_INVALID;

    if (!ug_ddb_table_name_ok(item->table, item->table_len)
        || item->owner == NULL
        || item->owner_len == 0
        || item->owner_len > UG_DDB_OWNER_MAX
        || (item->ttl_attr != NULL
            && !ug_ddb_ttl_attr_ok(item->ttl_attr, item->ttl_attr_len))
        || (item->writer != NULL
            && (!ug_ddb_writer_ok(item->writer, item->writer_len)
                || item->seq == 0 || item->seq > (uint64_t) INT64_MAX)))
    {
        return NULL;
    }

    /* years 0..9999 only: the key is exactly "YYYY-MM" */
    if (item->month < 0 || item->month > 9999 * 12 + 11) {
        return NULL;
    }

    ug_month_key(item->month, month);

    /* jansson escapes the owner; it refuses bytes that are not UTF-8,
     * which DynamoDB would refuse too */
    owner = json_stringn(item->owner, item->owner_len);
    if (owner == NULL) {
        return NULL;
    }

    *rc = UG_DDB_BUILD_NOMEM;

    req = json_pack("{s:s%, s:{s:{s:o}, s:{s:s}}}",
                    "TableName", item->table, item->table_len,
                    "Key",
                        UG_DDB_ATTR_OWNER, "S", owner,
                        UG_DDB_ATTR_MONTH, "S", month);

    return req;
}


/* Adds "#t" and ":t" for the TTL attribute, if any. */
static int
ug_ddb_add_ttl(const ug_ddb_item_t *item, json_t *names, json_t *values)
{
    if (item->ttl_attr == NULL) {
        return 0;
    }

    if (json_object_set_new(names, "#t",
                            json_stringn(item->ttl_attr, item->ttl_attr_len))
        != 0
        || json_object_set_new(values, ":t", ug_ddb_num(item->ttl_at)) != 0)
    {
        return -1;
    }

    return 0;
}


static int
ug_ddb_dump(json_t *req, char *buf, size_t size, size_t *len)
{
    size_t  n;

    n = json_dumpb(req, buf, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);

    if (n == 0) {
        return UG_DDB_BUILD_NOMEM;
    }

    /* json_dumpb reports the size it needed, whether it fit or not */
    if (n > size) {
        return UG_DDB_BUILD_TOO_BIG;
    }

    *len = n;

    return UG_DDB_BUILD_OK;
}


int
ug_ddb_build_add(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item, int64_t delta, int64_t limit)
{
    int          rc, ok;
    char         wname[sizeof(UG_DDB_WRITER_PREFIX) + UG_DDB_WRITER_MAX];
    char         cond[128], update[64];
    json_t      *req, *names, *values;
    const char  *limit_cond;

    if (delta > UG_DDB_DELTA_MAX || delta < -UG_DDB_DELTA_MAX) {
        return UG_DDB_BUILD_INVALID;
    }

    if (delta >= 0 && limit >= 0 && delta > limit) {
        return UG_DDB_BUILD_NEVER;
    }

    req = ug_ddb_base(item, &rc);
    if (req == NULL) {
        return rc;
    }

    names = json_pack("{s:s}", "#c", UG_DDB_ATTR_COUNT);
    values = json_pack("{s:o}", ":n", ug_ddb_num(delta));

    limit_cond = NULL;
    ok = (names != NULL && values != NULL);

    if (ok && delta < 0) {
        limit_cond = UG_DDB_EXPR_FLOOR;
        ok = (json_object_set_new(values, ":min", ug_ddb_num(-delta)) == 0);

    } else if (ok && limit >= 0) {
        limit_cond = UG_DDB_EXPR_CEILING;
        ok = (json_object_set_new(values, ":max", ug_ddb_num(limit - delta))
              == 0);
    }

    /* a TTL and the writer are different paths from #c, so one update
     * may do all three */
    snprintf(update, sizeof(update), "%s%s%s%s%s", UG_DDB_EXPR_ADD,
             (item->ttl_attr != NULL || item->writer != NULL) ? " SET " : "",
             item->ttl_attr != NULL ? UG_DDB_EXPR_TTL : "",
             (item->ttl_attr != NULL && item->writer != NULL) ? ", " : "",
             item->writer != NULL ? UG_DDB_EXPR_WRITER : "");

    cond[0] = '\0';

    if (item->writer != NULL) {
        ug_ddb_writer_name(item, wname);

        ok = ok
             && json_object_set_new(names, "#w", json_string(wname)) == 0
             && json_object_set_new(values, ":s",
                                    ug_ddb_num((int64_t) item->seq)) == 0;

        snprintf(cond, sizeof(cond), "%s%s%s%s",
                 limit_cond != NULL ? "(" : "",
                 limit_cond != NULL ? limit_cond : "",
                 limit_cond != NULL ? ") AND " : "",
                 UG_DDB_EXPR_ONCE);

    } else if (limit_cond != NULL) {
        snprintf(cond, sizeof(cond), "%s", limit_cond);
    }

    ok = ok
         && ug_ddb_add_ttl(item, names, values) == 0
         && json_object_set_new(req, "UpdateExpression", json_string(update))
            == 0
         && (cond[0] == '\0'
             || json_object_set_new(req, "ConditionExpression",
                                    json_string(cond)) == 0)
         && json_object_set(req, "ExpressionAttributeNames", names) == 0
         && json_object_set(req, "ExpressionAttributeValues", values) == 0
         && json_object_set_new(req, "ReturnValues",
                                json_string("UPDATED_NEW")) == 0;

    json_decref(names);
    json_decref(values);

    if (!ok) {
        json_decref(req);
        return UG_DDB_BUILD_NOMEM;
    }

    return ug_ddb_dump(req, buf, size, len);
}


int
ug_ddb_build_set(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item, int64_t used)
{
    int          rc, ok;
    json_t      *req, *names, *values;
    const char  *update;

    if (used < 0 || used > UG_DDB_DELTA_MAX) {
        return UG_DDB_BUILD_INVALID;
    }

    req = ug_ddb_base(item, &rc);
    if (req == NULL) {
        return rc;
    }

    names = json_pack("{s:s}", "#c", UG_DDB_ATTR_COUNT);
    values = json_pack("{s:o}", ":v", ug_ddb_num(used));

    update = (item->ttl_attr != NULL) ? UG_DDB_EXPR_SET ", " UG_DDB_EXPR_TTL
                                      : UG_DDB_EXPR_SET;

    ok = names != NULL && values != NULL
         && ug_ddb_add_ttl(item, names, values) == 0
         && json_object_set_new(req, "UpdateExpression", json_string(update))
            == 0
         && json_object_set(req, "ExpressionAttributeNames", names) == 0
         && json_object_set(req, "ExpressionAttributeValues", values) == 0
         && json_object_set_new(req, "ReturnValues",
                                json_string("UPDATED_NEW")) == 0;

    json_decref(names);
    json_decref(values);

    if (!ok) {
        json_decref(req);
        return UG_DDB_BUILD_NOMEM;
    }

    return ug_ddb_dump(req, buf, size, len);
}


int
ug_ddb_build_get(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item)
{
    int      rc;
    char     wname[sizeof(UG_DDB_WRITER_PREFIX) + UG_DDB_WRITER_MAX];
    json_t  *req, *names;

    req = ug_ddb_base(item, &rc);
    if (req == NULL) {
        return rc;
    }

    names = json_pack("{s:s}", "#c", UG_DDB_ATTR_COUNT);

    if (names != NULL && item->writer != NULL) {
        ug_ddb_writer_name(item, wname);

        if (json_object_set_new(names, "#w", json_string(wname)) != 0) {
            json_decref(names);
            names = NULL;
        }
    }

    /* only count (and the writer's sequence) come back: the answer stays
     * small whatever else is stored in the item */
    if (names == NULL
        || json_object_set_new(req, "ConsistentRead", json_true()) != 0
        || json_object_set_new(req, "ProjectionExpression",
                               json_string(item->writer != NULL ? "#c, #w"
                                                                : "#c"))
           != 0
        || json_object_set_new(req, "ExpressionAttributeNames", names) != 0)
    {
        json_decref(req);
        return UG_DDB_BUILD_NOMEM;
    }

    return ug_ddb_dump(req, buf, size, len);
}


/* Answers */


static void
ug_ddb_result_init(ug_ddb_result_t *res, long status)
{
    memset(res, 0, sizeof(ug_ddb_result_t));
    res->status = status;
}


static ug_ddb_class_t
ug_ddb_fail(ug_ddb_result_t *res, ug_ddb_class_t cls, const char *type)
{
    res->cls = cls;
    snprintf(res->type, sizeof(res->type), "%s", type);

    return cls;
}


/* Copies printable ASCII only: AWS text ends up in nginx's error log. */
static void
ug_ddb_copy_text(char *dst, size_t size, const char *src, size_t len)
{
    size_t  i, n;
    int     c;

    n = 0;

    for (i = 0; i < len && n + 1 < size; i++) {
        c = (unsigned char) src[i];
        dst[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }

    dst[n] = '\0';
}


static const struct {
    const char      *name;
    ug_ddb_class_t   cls;
    unsigned         auth;
} ug_ddb_types[] = {
    { "ConditionalCheckFailedException", UG_DDB_CONDITIONAL_FAILED, 0 },
    { "ProvisionedThroughputExceededException", UG_DDB_RETRYABLE, 0 },
    { "ThrottlingException", UG_DDB_RETRYABLE, 0 },
    { "RequestLimitExceeded", UG_DDB_RETRYABLE, 0 },
    { "InternalServerError", UG_DDB_RETRYABLE, 0 },
    { "ServiceUnavailable", UG_DDB_RETRYABLE, 0 },
    /* another request's transaction held the item: safe to repeat */
    { "TransactionConflictException", UG_DDB_RETRYABLE, 0 },
    { "ValidationException", UG_DDB_FATAL, 0 },
    { "ResourceNotFoundException", UG_DDB_FATAL, 0 },
    { "UnrecognizedClientException", UG_DDB_FATAL, 1 },
    { "ExpiredTokenException", UG_DDB_FATAL, 1 },
    { "InvalidSignatureException", UG_DDB_FATAL, 1 },
    { "IncompleteSignatureException", UG_DDB_FATAL, 1 },
    { "MissingAuthenticationTokenException", UG_DDB_FATAL, 1 },
    { "InvalidClientTokenId", UG_DDB_FATAL, 1 },
    { NULL, UG_DDB_FATAL, 0 }
};


ug_ddb_class_t
ug_ddb_classify_type(const char *type, size_t len, unsigned *auth)
{
    size_t  i, n;

    *auth = 0;

    for (i = 0; ug_ddb_types[i].name != NULL; i++) {
        n = strlen(ug_ddb_types[i].name);

        if (n == len && memcmp(type, ug_ddb_types[i].name, n) == 0) {
            *auth = ug_ddb_types[i].auth;
            return ug_ddb_types[i].cls;
        }
    }

    /* AccessDeniedException and its relatives */
    if (len >= sizeof("AccessDenied") - 1
        && memcmp(type, "AccessDenied", sizeof("AccessDenied") - 1) == 0)
    {
        *auth = 1;
    }

    return UG_DDB_FATAL;
}


const char *
ug_ddb_class_name(ug_ddb_class_t cls)
{
    switch (cls) {
    case UG_DDB_OK:
        return "ok";
    case UG_DDB_CONDITIONAL_FAILED:
        return "conditional_failed";
    case UG_DDB_RETRYABLE:
        return "retryable";
    default:
        return "fatal";
    }
}


static ug_ddb_class_t
ug_ddb_class_of_status(long status)
{
    /* 5xx (and 429) from DynamoDB or from anything in front of it */
    if (status == 429 || status == 500 || status == 502 || status == 503
        || status == 504)
    {
        return UG_DDB_RETRYABLE;
    }

    return UG_DDB_FATAL;
}


static json_t *
ug_ddb_load(const char *body, size_t len)
{
    json_error_t  err;

    if (body == NULL || len == 0 || len > UG_DDB_RESPONSE_MAX) {
        return NULL;
    }

    return json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
}


ug_ddb_class_t
ug_ddb_parse_error(long status, const char *body, size_t len,
    const char *reason, ug_ddb_result_t *res)
{
    json_t          *root, *type, *msg;
    const char      *t, *hash;
    size_t           tlen;
    ug_ddb_class_t   cls;
    unsigned         auth;

    ug_ddb_result_init(res, status);

    if (status == 0) {
        return ug_ddb_fail(res, UG_DDB_RETRYABLE,
                           reason != NULL ? reason : "TransportError");
    }

    root = ug_ddb_load(body, len);

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return ug_ddb_fail(res, ug_ddb_class_of_status(status),
                           status >= 500 ? "HttpServerError"
                                         : "HttpClientError");
    }

    type = json_object_get(root, "__type");

    if (!json_is_string(type)) {
        json_decref(root);
        return ug_ddb_fail(res, ug_ddb_class_of_status(status),
                           status >= 500 ? "HttpServerError"
                                         : "HttpClientError");
    }

    /* "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException":
     * the name is what follows the last '#' */
    t = json_string_value(type);
    tlen = json_string_length(type);

    hash = NULL;

    if (tlen > 0) {
        hash = memchr(t, '#', tlen);

        while (hash != NULL) {
            tlen -= (size_t) (hash + 1 - t);
            t = hash + 1;
            hash = memchr(t, '#', tlen);
        }
    }

    cls = ug_ddb_classify_type(t, tlen, &auth);

    /* a 5xx stays retryable whatever its body claims; a throttling name
     * on a 4xx is what AWS sends and is retryable by name */
    if (cls == UG_DDB_FATAL && ug_ddb_class_of_status(status)
                               == UG_DDB_RETRYABLE)
    {
        cls = UG_DDB_RETRYABLE;
    }

    res->cls = cls;
    res->auth = auth;
    ug_ddb_copy_text(res->type, sizeof(res->type), t, tlen);

    /* AWS spells it "message" or "Message" depending on the service */
    msg = json_object_get(root, "message");
    if (!json_is_string(msg)) {
        msg = json_object_get(root, "Message");
    }

    if (json_is_string(msg)) {
        ug_ddb_copy_text(res->message, sizeof(res->message),
                         json_string_value(msg), json_string_length(msg));
    }

    json_decref(root);

    return cls;
}


/*
 * A DynamoDB number that must be a count: decimal digits only, no sign,
 * fraction or exponent, at most INT64_MAX.
 */
static int
ug_ddb_parse_count(json_t *attr, uint64_t *out)
{
    json_t      *n;
    const char  *p;
    size_t       len, i;
    uint64_t     v;

    if (!json_is_object(attr) || json_object_size(attr) != 1) {
        return -1;
    }

    n = json_object_get(attr, "N");
    if (!json_is_string(n)) {
        return -1;
    }

    p = json_string_value(n);
    len = json_string_length(n);

    if (len == 0 || len > 19) {
        return -1;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (uint64_t) (p[i] - '0');
    }

    /* 19 digits cannot overflow uint64_t, but may pass INT64_MAX */
    if (v > (uint64_t) INT64_MAX) {
        return -1;
    }

    *out = v;

    return 0;
}


static ug_ddb_class_t
ug_ddb_parse_ok(long status, const char *body, size_t len,
    const char *member, int missing_ok, const ug_ddb_item_t *item,
    ug_ddb_result_t *res)
{
    char     wname[sizeof(UG_DDB_WRITER_PREFIX) + UG_DDB_WRITER_MAX];
    json_t  *root, *obj, *count, *w;

    if (status != 200) {
        return ug_ddb_parse_error(status, body, len, NULL, res);
    }

    ug_ddb_result_init(res, status);

    root = ug_ddb_load(body, len);

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return ug_ddb_fail(res, UG_DDB_FATAL, "MalformedResponse");
    }

    obj = json_object_get(root, member);

    if (obj == NULL && missing_ok) {
        /* GetItem of an item that does not exist: nothing used yet */
        json_decref(root);
        res->cls = UG_DDB_OK;
        return UG_DDB_OK;
    }

    if (!json_is_object(obj)) {
        json_decref(root);
        return ug_ddb_fail(res, UG_DDB_FATAL, "MalformedResponse");
    }

    res->found = 1;

    if (item != NULL) {
        ug_ddb_writer_name(item, wname);
        w = json_object_get(obj, wname);

        if (w != NULL) {
            if (ug_ddb_parse_count(w, &res->seq) != 0) {
                json_decref(root);
                res->seq = 0;
                return ug_ddb_fail(res, UG_DDB_FATAL, "BadSequence");
            }

            res->has_seq = 1;
        }
    }

    count = json_object_get(obj, UG_DDB_ATTR_COUNT);

    if (count == NULL && missing_ok) {
        json_decref(root);
        res->cls = UG_DDB_OK;
        return UG_DDB_OK;
    }

    if (ug_ddb_parse_count(count, &res->count) != 0) {
        json_decref(root);
        res->count = 0;
        return ug_ddb_fail(res, UG_DDB_FATAL, "BadCount");
    }

    json_decref(root);
    res->cls = UG_DDB_OK;

    return UG_DDB_OK;
}


ug_ddb_class_t
ug_ddb_parse_update(long status, const char *body, size_t len,
    ug_ddb_result_t *res)
{
    /* UPDATED_NEW always carries count after an ADD or SET of it */
    return ug_ddb_parse_ok(status, body, len, "Attributes", 0, NULL, res);
}


ug_ddb_class_t
ug_ddb_parse_get(long status, const char *body, size_t len,
    ug_ddb_result_t *res)
{
    return ug_ddb_parse_ok(status, body, len, "Item", 1, NULL, res);
}


ug_ddb_class_t
ug_ddb_parse_get_writer(long status, const char *body, size_t len,
    const ug_ddb_item_t *item, ug_ddb_result_t *res)
{
    if (item->writer == NULL
        || !ug_ddb_writer_ok(item->writer, item->writer_len))
    {
        ug_ddb_result_init(res, status);
        return ug_ddb_fail(res, UG_DDB_FATAL, "NoWriter");
    }

    return ug_ddb_parse_ok(status, body, len, "Item", 1, item, res);
}


uint32_t
ug_ddb_backoff_ms(unsigned attempt, uint32_t rnd)
{
    uint32_t  ceiling;

    if (attempt == 0) {
        return 0;
    }

    ceiling = UG_DDB_BACKOFF_CAP_MS;

    /* BASE << 5 already passes CAP: no shift can overflow */
    if (attempt <= 5) {
        ceiling = (uint32_t) UG_DDB_BACKOFF_BASE_MS << (attempt - 1);

        if (ceiling > UG_DDB_BACKOFF_CAP_MS) {
            ceiling = UG_DDB_BACKOFF_CAP_MS;
        }
    }

    return rnd % (ceiling + 1);
}


int
ug_ddb_should_retry(ug_ddb_class_t cls, unsigned attempts)
{
    return cls == UG_DDB_RETRYABLE && attempts < UG_DDB_MAX_ATTEMPTS;
}
