/*
 * ug_aws: credentials from the environment, the shared credentials file
 * and the ECS/IMDS JSON answers; ISO 8601 expiry; refresh timing; the
 * metadata URLs.
 */

#define _GNU_SOURCE

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ug_aws.h"


static ug_aws_creds_t  cr;


static int
ini(const char *text, const char *profile)
{
    memset(&cr, 0, sizeof(cr));

    return ug_aws_creds_from_ini(&cr, text, strlen(text), profile);
}


static int
js(const char *text)
{
    memset(&cr, 0, sizeof(cr));

    return ug_aws_creds_from_json(&cr, text, strlen(text));
}


START_TEST(env)
{
    char  big[UG_AWS_TOKEN_MAX + 2];

    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKIDEXAMPLE",
                         "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL),
                     UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIDEXAMPLE");
    ck_assert_uint_eq(cr.key_id_len, 11);
    ck_assert_str_eq(cr.secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    ck_assert_uint_eq(cr.secret_len, 40);
    ck_assert_str_eq(cr.token, "");
    ck_assert_uint_eq(cr.token_len, 0);
    ck_assert_int_eq(cr.expires, 0);

    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "ASIAX", "s", "tok/+="),
                     UG_AWS_OK);
    ck_assert_str_eq(cr.token, "tok/+=");
    ck_assert_uint_eq(cr.token_len, 6);

    /* an empty token is no token */
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKID", "s", ""),
                     UG_AWS_OK);
    ck_assert_uint_eq(cr.token_len, 0);

    /* failures leave the old credentials in place */
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKID", NULL, NULL),
                     UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "", "s", NULL),
                     UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, NULL, "s", NULL),
                     UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AK-ID", "s", NULL),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKID", "a b", NULL),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKID", "s", "t\r\nX: y"),
                     UG_AWS_BAD_VALUE);

    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, "AKID", "s", big),
                     UG_AWS_BAD_VALUE);
    big[UG_AWS_KEY_ID_MAX + 1] = '\0';
    ck_assert_int_eq(ug_aws_creds_from_env(&cr, big, "s", NULL),
                     UG_AWS_BAD_VALUE);

    ck_assert_str_eq(cr.key_id, "AKID");
    ck_assert_str_eq(cr.secret, "s");
}
END_TEST


static const char  *credfile =
    "# shared credentials\n"
    "[default]\n"
    "aws_access_key_id = AKIADEFAULT\n"
    "aws_secret_access_key = secret/default+1\n"
    "\n"
    "; another comment\n"
    "[dev]\r\n"
    "aws_access_key_id=AKIADEV\r\n"
    "aws_secret_access_key=devsecret\r\n"
    "aws_session_token = devtoken== \r\n"
    "\r\n"
    "[profile staging]\n"
    "  AWS_ACCESS_KEY_ID\t=\tAKIASTAGING   # inline comment\n"
    "  Aws_Secret_Access_Key = stag#ing;secret ; another\n"
    "region = eu-west-1\n"
    "s3 =\n"
    "    max_concurrent_requests = 20\n"
    "    aws_access_key_id = NESTEDNOTOURS\n"
    "\n"
    "[ spaced ]\n"
    "aws_access_key_id = AKIASPACED\n"
    "aws_secret_access_key = x\n"
    "[later]\n"
    "aws_access_key_id = AKIAFIRST\n"
    "aws_secret_access_key = first\n"
    "[other]\n"
    "aws_access_key_id = AKIAOTHER\n"
    "[later]\n"
    "aws_access_key_id = AKIASECOND\n"
    "[nosecret]\n"
    "aws_access_key_id = AKIANOSECRET\n"
    "[emptysecret]\n"
    "aws_access_key_id = AKIAEMPTY\n"
    "aws_secret_access_key =\n"
    "[badkey]\n"
    "aws_access_key_id = AKIA BAD\n"
    "aws_secret_access_key = s\n"
    "[last]\n"
    "aws_secret_access_key = lastsecret\n"
    "aws_access_key_id = AKIALAST";


START_TEST(ini_profiles)
{
    ck_assert_int_eq(ini(credfile, NULL), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIADEFAULT");
    ck_assert_str_eq(cr.secret, "secret/default+1");
    ck_assert_uint_eq(cr.token_len, 0);
    ck_assert_int_eq(cr.expires, 0);

    ck_assert_int_eq(ini(credfile, "default"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIADEFAULT");

    ck_assert_int_eq(ini(credfile, "dev"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIADEV");
    ck_assert_str_eq(cr.secret, "devsecret");
    ck_assert_str_eq(cr.token, "devtoken==");

    /* "[profile x]" as in ~/.aws/config; keys in any case; '#' and ';'
     * inside a value stay, after a blank they start a comment */
    ck_assert_int_eq(ini(credfile, "staging"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIASTAGING");
    ck_assert_str_eq(cr.secret, "stag#ing;secret");

    ck_assert_int_eq(ini(credfile, "spaced"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIASPACED");

    /* a section seen twice: later keys win, earlier ones stay */
    ck_assert_int_eq(ini(credfile, "later"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIASECOND");
    ck_assert_str_eq(cr.secret, "first");

    /* last line without a newline */
    ck_assert_int_eq(ini(credfile, "last"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "AKIALAST");
    ck_assert_str_eq(cr.secret, "lastsecret");
}
END_TEST


START_TEST(ini_failures)
{
    ck_assert_int_eq(ini(credfile, "missing"), UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini(credfile, "profile"), UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini(credfile, "other"), UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ini(credfile, "nosecret"), UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ini(credfile, "emptysecret"), UG_AWS_INCOMPLETE);
    ck_assert_int_eq(ini(credfile, "badkey"), UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ini(credfile, ""), UG_AWS_NO_PROFILE);

    ck_assert_int_eq(ini("", NULL), UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini("\n\n# nothing\n", NULL), UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini("[default\naws_access_key_id = A\n"
                         "aws_secret_access_key = s\n", NULL),
                     UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini("aws_access_key_id = A\n"
                         "aws_secret_access_key = s\n", NULL),
                     UG_AWS_NO_PROFILE);
    ck_assert_int_eq(ini("[default]\njunk line\n"
                         "aws_access_key_id = A\n"
                         "aws_secret_access_key = s\n", NULL), UG_AWS_OK);

    /* a value that would split a header */
    ck_assert_int_eq(ini("[default]\naws_access_key_id = A\n"
                         "aws_secret_access_key = s\n"
                         "aws_session_token = t\rX\n", NULL),
                     UG_AWS_BAD_VALUE);
}
END_TEST


START_TEST(ini_bounds)
{
    static const char  nul[] = "[default]\naws_access_key_id = A\0B\n"
                               "aws_secret_access_key = s\n";
    static const char  head[] = "[default]\naws_access_key_id = A\n"
                                "aws_secret_access_key = s\n";

    char    *big;
    size_t   n;

    /* a file at the limit parses; one byte more is refused */
    n = UG_AWS_FILE_MAX;
    big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '\n', n + 1);
    memcpy(big, head, strlen(head));

    ck_assert_int_eq(ug_aws_creds_from_ini(&cr, big, n, NULL), UG_AWS_OK);
    ck_assert_int_eq(ug_aws_creds_from_ini(&cr, big, n + 1, NULL),
                     UG_AWS_TOO_BIG);

    /* a very long line is refused rather than scanned forever */
    memset(big, 'x', n);
    memcpy(big, head, strlen(head));
    ck_assert_int_eq(ug_aws_creds_from_ini(&cr, big, n, NULL),
                     UG_AWS_TOO_BIG);
    free(big);

    /* values over their limits */
    big = malloc(UG_AWS_TOKEN_MAX + 200);
    ck_assert_ptr_nonnull(big);
    strcpy(big, "[default]\naws_access_key_id = A\n"
                "aws_secret_access_key = s\naws_session_token = ");
    n = strlen(big);
    memset(big + n, 'T', UG_AWS_TOKEN_MAX);
    big[n + UG_AWS_TOKEN_MAX] = '\0';
    ck_assert_int_eq(ini(big, NULL), UG_AWS_OK);
    ck_assert_uint_eq(cr.token_len, UG_AWS_TOKEN_MAX);
    strcat(big, "T");
    ck_assert_int_eq(ini(big, NULL), UG_AWS_BAD_VALUE);
    free(big);

    /* NUL bytes are bytes like others: not valid in a value */
    ck_assert_int_eq(ug_aws_creds_from_ini(&cr, nul, sizeof(nul) - 1, NULL),
                     UG_AWS_BAD_VALUE);
}
END_TEST


START_TEST(json_imds)
{
    /* the shape EC2's IMDS answers with */
    ck_assert_int_eq(js("{\n"
        "  \"Code\" : \"Success\",\n"
        "  \"LastUpdated\" : \"2025-09-28T11:00:00Z\",\n"
        "  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAIMDSEXAMPLE\",\n"
        "  \"SecretAccessKey\" : \"imds/secret+key\",\n"
        "  \"Token\" : \"IQoJb3JpZ2luX2VjEXAMPLE==\",\n"
        "  \"Expiration\" : \"2025-09-28T12:34:56Z\"\n"
        "}"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "ASIAIMDSEXAMPLE");
    ck_assert_str_eq(cr.secret, "imds/secret+key");
    ck_assert_str_eq(cr.token, "IQoJb3JpZ2luX2VjEXAMPLE==");
    ck_assert_int_eq(cr.expires, 1759062896);

    /* the ECS container endpoint has no Code */
    ck_assert_int_eq(js("{\"AccessKeyId\":\"ASIAECS\","
        "\"Expiration\":\"2025-09-28T12:34:56.789Z\","
        "\"RoleArn\":\"arn:aws:iam::123456789012:role/task\","
        "\"SecretAccessKey\":\"ecs\",\"Token\":\"tok\"}"), UG_AWS_OK);
    ck_assert_str_eq(cr.key_id, "ASIAECS");
    ck_assert_int_eq(cr.expires, 1759062896);
}
END_TEST


START_TEST(json_hostile)
{
    static const struct {
        const char  *text;
        int          rc;
    } cases[] = {
        { "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\","
          "\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_NOT_SUCCESS },
        { "{\"Code\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
          "\"Token\":\"t\",\"Expiration\":\"2025-09-28T12:34:56Z\"}",
          UG_AWS_NOT_SUCCESS },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_INCOMPLETE },
        { "{\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_INCOMPLETE },
        { "{\"AccessKeyId\":5,\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_INCOMPLETE },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":[\"s\"],"
          "\"Token\":\"t\",\"Expiration\":\"2025-09-28T12:34:56Z\"}",
          UG_AWS_INCOMPLETE },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\"}",
          UG_AWS_BAD_EXPIRATION },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":\"tomorrow\"}", UG_AWS_BAD_EXPIRATION },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":1759062896}", UG_AWS_BAD_EXPIRATION },
        { "{\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"s\","
          "\"Token\":\"t\",\"Expiration\":\"2025-09-28T12:34:56Z\"}",
          UG_AWS_BAD_VALUE },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
          "\"Token\":\"t\\r\\nX-Evil: 1\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_BAD_VALUE },
        { "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\","
          "\"SecretAccessKey\":\"s\",\"Token\":\"t\","
          "\"Expiration\":\"2025-09-28T12:34:56Z\"}", UG_AWS_BAD_JSON },
        { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"", UG_AWS_BAD_JSON },
        { "", UG_AWS_BAD_JSON },
        { "[]", UG_AWS_BAD_JSON },
        { "null", UG_AWS_BAD_JSON },
        { "<html>404</html>", UG_AWS_BAD_JSON },
    };

    size_t  i;
    char   *big;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(js(cases[i].text) == cases[i].rc, "case %zu: %s", i,
                      cases[i].text);
        ck_assert_uint_eq(cr.key_id_len, 0);
    }

    big = malloc(UG_AWS_FILE_MAX + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', UG_AWS_FILE_MAX + 1);
    big[0] = '{';
    big[UG_AWS_FILE_MAX] = '}';
    ck_assert_int_eq(ug_aws_creds_from_json(&cr, big, UG_AWS_FILE_MAX + 1),
                     UG_AWS_TOO_BIG);
    free(big);
}
END_TEST


static int64_t
iso(const char *s)
{
    int64_t  t;

    if (ug_aws_parse_iso8601(s, strlen(s), &t) != 0) {
        return -1;
    }

    return t;
}


START_TEST(iso8601)
{
    ck_assert_int_eq(iso("2025-09-28T12:34:56Z"), 1759062896);
    ck_assert_int_eq(iso("2025-09-28t12:34:56z"), 1759062896);
    ck_assert_int_eq(iso("2025-09-28T12:34:56.000000001Z"), 1759062896);
    ck_assert_int_eq(iso("2025-09-28T14:34:56+02:00"), 1759062896);
    ck_assert_int_eq(iso("2025-09-28T07:04:56-05:30"), 1759062896);
    ck_assert_int_eq(iso("2025-09-28T12:34:56+00:00"), 1759062896);
    ck_assert_int_eq(iso("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(iso("2024-02-29T23:59:59Z"), 1709251199);
    ck_assert_int_eq(iso("2000-03-01T00:00:00Z"), 951868800);
    ck_assert_int_eq(iso("2038-01-19T03:14:08Z"), 2147483648LL);
    ck_assert_int_eq(iso("9999-12-31T23:59:59Z"), 253402300799LL);

    ck_assert_int_eq(iso("2025-02-29T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-13-01T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-00-01T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-00T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-32T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T24:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:60:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:61Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00ZZ"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00.Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00+0100"), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00+24:00"), -1);
    ck_assert_int_eq(iso("2025-01-01 00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-1-01T00:00:00Z"), -1);
    ck_assert_int_eq(iso("+025-01-01T00:00:00Z"), -1);
    ck_assert_int_eq(iso("2025-01-01T0a:00:00Z"), -1);
    ck_assert_int_eq(iso(""), -1);
    ck_assert_int_eq(iso("2025-01-01T00:00:00.0000000000000000000000000000"
                         "000000000000000000Z"), -1);
}
END_TEST


START_TEST(iso8601_matches_libc)
{
    char       buf[32];
    struct tm  tm;
    time_t     tt;
    int64_t    t, got;
    uint64_t   x;
    int        i;

    /* timegm is the reference for a spread of instants, 1970..2999 */
    x = 0x9e3779b97f4a7c15ULL;

    for (i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t = (int64_t) (x % 32503680000ULL);

        tt = (time_t) t;
        ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);

        ck_assert_int_eq(ug_aws_parse_iso8601(buf, strlen(buf), &got), 0);
        ck_assert_int_eq(got, (int64_t) timegm(&tm));
    }
}
END_TEST


START_TEST(refresh)
{
    memset(&cr, 0, sizeof(cr));
    cr.key_id_len = 4;

    /* static keys: never refreshed, always usable */
    ck_assert_int_eq(ug_aws_creds_refresh_due(&cr, 2000000000), 0);
    ck_assert_int_eq(ug_aws_creds_usable(&cr, 2000000000), 1);

    cr.expires = 1000000;
    ck_assert_int_eq(ug_aws_creds_refresh_due(&cr, 1000000 - 301), 0);
    ck_assert_int_eq(ug_aws_creds_refresh_due(&cr, 1000000 - 300), 1);
    ck_assert_int_eq(ug_aws_creds_refresh_due(&cr, 1000000 - 299), 1);
    ck_assert_int_eq(ug_aws_creds_refresh_due(&cr, 1000000 + 5), 1);
    ck_assert_int_eq(ug_aws_creds_usable(&cr, 1000000 - 1), 1);
    ck_assert_int_eq(ug_aws_creds_usable(&cr, 1000000), 0);

    /* nothing loaded yet: not usable */
    cr.key_id_len = 0;
    ck_assert_int_eq(ug_aws_creds_usable(&cr, 0), 0);
}
END_TEST


START_TEST(ecs_urls)
{
    char  buf[UG_AWS_URL_MAX];
    char  small[24];

    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf),
                         "/v2/credentials/1234-abcd", NULL), UG_AWS_OK);
    ck_assert_str_eq(buf, "http://169.254.170.2/v2/credentials/1234-abcd");

    /* relative wins over full, as in the SDKs */
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), "/r",
                         "https://example.com/x"), UG_AWS_OK);
    ck_assert_str_eq(buf, "http://169.254.170.2/r");

    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), "",
                         "https://creds.example.com/get"), UG_AWS_OK);
    ck_assert_str_eq(buf, "https://creds.example.com/get");
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://127.0.0.1:51679/creds"), UG_AWS_OK);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://localhost/creds"), UG_AWS_OK);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://[::1]:80/creds"), UG_AWS_OK);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://169.254.170.23/v1/credentials"), UG_AWS_OK);

    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), "v2/creds", NULL),
                     UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), "/a b", NULL),
                     UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL, NULL),
                     UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://evil.example.com/creds"), UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://127.0.0.1.evil.com/"), UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "http://localhost@evil.com/"), UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL,
                         "ftp://127.0.0.1/"), UG_AWS_BAD_URL);
    ck_assert_int_eq(ug_aws_ecs_url(buf, sizeof(buf), NULL, "https://"),
                     UG_AWS_BAD_URL);

    ck_assert_int_eq(ug_aws_ecs_url(small, sizeof(small),
                         "/v2/credentials/long", NULL), UG_AWS_TOO_BIG);
}
END_TEST


START_TEST(imds)
{
    char  role[UG_AWS_ROLE_MAX + 1];
    char  url[UG_AWS_URL_MAX];
    char  long_role[80];

    ck_assert_int_eq(ug_aws_imds_role("gate-role\n", 10, role, sizeof(role)),
                     UG_AWS_OK);
    ck_assert_str_eq(role, "gate-role");
    ck_assert_int_eq(ug_aws_imds_role("first\r\nsecond\n", 14, role,
                                      sizeof(role)), UG_AWS_OK);
    ck_assert_str_eq(role, "first");
    ck_assert_int_eq(ug_aws_imds_role("a+=,.@_-Z9", 10, role, sizeof(role)),
                     UG_AWS_OK);

    ck_assert_int_eq(ug_aws_imds_role("", 0, role, sizeof(role)),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_imds_role("\n", 1, role, sizeof(role)),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_imds_role("bad role", 8, role, sizeof(role)),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_imds_role("../../x", 7, role, sizeof(role)),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_imds_role("<html>", 6, role, sizeof(role)),
                     UG_AWS_BAD_VALUE);

    memset(long_role, 'r', sizeof(long_role));
    ck_assert_int_eq(ug_aws_imds_role(long_role, UG_AWS_ROLE_MAX, role,
                                      sizeof(role)), UG_AWS_OK);
    ck_assert_int_eq(ug_aws_imds_role(long_role, UG_AWS_ROLE_MAX + 1, role,
                                      sizeof(role)), UG_AWS_BAD_VALUE);

    ck_assert_int_eq(ug_aws_imds_creds_url(url, sizeof(url), "gate-role"),
                     UG_AWS_OK);
    ck_assert_str_eq(url, "http://169.254.169.254/latest/meta-data/iam/"
                          "security-credentials/gate-role");
    ck_assert_int_eq(ug_aws_imds_creds_url(url, sizeof(url), "a/b"),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_imds_creds_url(url, sizeof(url), "a\nb"),
                     UG_AWS_BAD_VALUE);

    ck_assert_int_eq(ug_aws_imds_token_ok("AQAEAFj9-token==", 16), 1);
    ck_assert_int_eq(ug_aws_imds_token_ok("", 0), 0);
    ck_assert_int_eq(ug_aws_imds_token_ok("a b", 3), 0);
    ck_assert_int_eq(ug_aws_imds_token_ok("a\r\n", 3), 0);

    ck_assert_int_eq(ug_aws_header_value_ok("ok value\t1", 10), 1);
    ck_assert_int_eq(ug_aws_header_value_ok("a\r\nb", 4), 0);
    ck_assert_int_eq(ug_aws_header_value_ok("a\0b", 3), 0);
}
END_TEST


START_TEST(paths)
{
    char  buf[64];

    ck_assert_int_eq(ug_aws_credentials_path(buf, sizeof(buf), "/etc/c",
                                             "/home/u"), UG_AWS_OK);
    ck_assert_str_eq(buf, "/etc/c");
    ck_assert_int_eq(ug_aws_credentials_path(buf, sizeof(buf), "",
                                             "/home/u"), UG_AWS_OK);
    ck_assert_str_eq(buf, "/home/u/.aws/credentials");
    ck_assert_int_eq(ug_aws_credentials_path(buf, sizeof(buf), NULL, NULL),
                     UG_AWS_BAD_VALUE);
    ck_assert_int_eq(ug_aws_credentials_path(buf, 10, NULL, "/home/u"),
                     UG_AWS_TOO_BIG);

    ck_assert_str_eq(ug_aws_profile(NULL), "default");
    ck_assert_str_eq(ug_aws_profile(""), "default");
    ck_assert_str_eq(ug_aws_profile("dev"), "dev");
}
END_TEST


static Suite *
aws_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_aws");

    tc = tcase_create("credentials");
    tcase_add_test(tc, env);
    tcase_add_test(tc, ini_profiles);
    tcase_add_test(tc, ini_failures);
    tcase_add_test(tc, ini_bounds);
    tcase_add_test(tc, json_imds);
    tcase_add_test(tc, json_hostile);
    tcase_add_test(tc, refresh);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_test(tc, iso8601);
    tcase_add_test(tc, iso8601_matches_libc);
    suite_add_tcase(s, tc);

    tc = tcase_create("endpoints");
    tcase_add_test(tc, ecs_urls);
    tcase_add_test(tc, imds);
    tcase_add_test(tc, paths);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(aws_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed != 0;
}
