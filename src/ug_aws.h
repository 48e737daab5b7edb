/*
 * AWS credentials: where they come from and how to read them.  Pure
 * parsing; the nginx glue fetches the bytes (the credentials file at
 * configuration time, the ECS and EC2 metadata endpoints through
 * ngx_http_usage_gate_curl.c) and decides when to fetch again.
 *
 * Sources, in the order AWS SDKs try them:
 *   1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *      (nginx's env directive must let them through to the workers);
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 *      $HOME/.aws/credentials), profile AWS_PROFILE or "default";
 *   3. the ECS container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *      or _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN);
 *   4. the EC2 instance metadata service, IMDSv2 (a PUT for a session
 *      token, then the role name, then the role's credentials).
 */

#ifndef UG_AWS_H
#define UG_AWS_H

#include <stddef.h>
#include <stdint.h>

#define UG_AWS_KEY_ID_MAX      128
#define UG_AWS_SECRET_MAX      128
#define UG_AWS_TOKEN_MAX       4096     /* STS tokens run to ~2 KB */

/* Largest credentials file or metadata answer parsed. */
#define UG_AWS_FILE_MAX        65536
#define UG_AWS_LINE_MAX        8192
#define UG_AWS_PROFILE_MAX     64
#define UG_AWS_ROLE_MAX        64

/* Temporary credentials are replaced when less than this remains. */
#define UG_AWS_REFRESH_BEFORE  300

#define UG_AWS_ECS_HOST        "http://169.254.170.2"
#define UG_AWS_IMDS_TOKEN_URL  "http://169.254.169.254/latest/api/token"
#define UG_AWS_IMDS_CREDS_URL                                               \
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
#define UG_AWS_IMDS_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds: 21600"
#define UG_AWS_IMDS_TOKEN_HEADER  "X-aws-ec2-metadata-token"
#define UG_AWS_IMDS_TOKEN_MAX  512

/* Bytes enough for any URL ug_aws_ecs_url or ug_aws_imds_creds_url makes. */
#define UG_AWS_URL_MAX         1024


enum {
    UG_AWS_OK = 0,
    UG_AWS_NO_PROFILE,          /* file parsed, profile not in it */
    UG_AWS_INCOMPLETE,          /* key id or secret missing */
    UG_AWS_BAD_VALUE,           /* a value too long or with bad bytes */
    UG_AWS_TOO_BIG,             /* input over its limit */
    UG_AWS_BAD_JSON,            /* metadata answer not the expected JSON */
    UG_AWS_BAD_EXPIRATION,      /* Expiration missing or not ISO 8601 */
    UG_AWS_NOT_SUCCESS,         /* IMDS "Code" other than "Success" */
    UG_AWS_BAD_URL
};


typedef struct {
    char      key_id[UG_AWS_KEY_ID_MAX + 1];
    char      secret[UG_AWS_SECRET_MAX + 1];
    char      token[UG_AWS_TOKEN_MAX + 1];     /* "" without a session */
    size_t    key_id_len;
    size_t    secret_len;
    size_t    token_len;
    int64_t   expires;                         /* unix s; 0: never */
} ug_aws_creds_t;


/*
 * From the environment's values (NULL or "" when unset).  Key id and
 * secret are required, the token optional.  Static keys never expire.
 */
int ug_aws_creds_from_env(ug_aws_creds_t *c, const char *key_id,
    const char *secret, const char *token);

/*
 * From the text of a shared credentials (or config) file: INI sections
 * "[name]" or "[profile name]", keys aws_access_key_id,
 * aws_secret_access_key and aws_session_token (case-insensitive), "#" and
 * ";" comments (whole-line, or after a blank), spaces around '=' and
 * CRLF tolerated; indented lines under an empty key (nested settings) are
 * skipped.  A profile's later keys override earlier ones.  profile NULL
 * means "default".
 */
int ug_aws_creds_from_ini(ug_aws_creds_t *c, const char *text, size_t len,
    const char *profile);

/*
 * From an ECS container endpoint or EC2 IMDS role answer:
 * {"Code":"Success", "AccessKeyId":..., "SecretAccessKey":...,
 *  "Token":..., "Expiration":"2025-09-28T12:34:56Z", ...}
 * Expiration is required (these are always temporary); Code, if present,
 * must be "Success".
 */
int ug_aws_creds_from_json(ug_aws_creds_t *c, const char *text,
    size_t len);

/*
 * ISO 8601 / RFC 3339 date-time to unix seconds:
 * YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM); 't' and 'z' too.
 * Returns 0 or -1.
 */
int ug_aws_parse_iso8601(const char *s, size_t len, int64_t *out);

/* 1 if at most UG_AWS_REFRESH_BEFORE seconds of validity remain. */
int ug_aws_creds_refresh_due(const ug_aws_creds_t *c, int64_t now);

/* 1 if the credentials may still be used at now (not yet expired). */
int ug_aws_creds_usable(const ug_aws_creds_t *c, int64_t now);

/*
 * The ECS credentials URL: UG_AWS_ECS_HOST + relative (which must start
 * with '/'), else full, which must be https, or http to a loopback or
 * link-local host (as the SDKs allow).  Writes a NUL-terminated URL.
 */
int ug_aws_ecs_url(char *buf, size_t size, const char *relative,
    const char *full);

/* 1 if a value is fit to be sent as an HTTP header value (no CR/LF). */
int ug_aws_header_value_ok(const char *v, size_t len);

/* IMDSv2: 1 if the PUT's answer is a usable session token. */
int ug_aws_imds_token_ok(const char *text, size_t len);

/*
 * IMDSv2: the role name from the security-credentials listing (its first
 * line), into out (NUL-terminated), then the URL for its credentials.
 */
int ug_aws_imds_role(const char *text, size_t len, char *out, size_t size);
int ug_aws_imds_creds_url(char *buf, size_t size, const char *role);

/*
 * The credentials file's path: env_file (AWS_SHARED_CREDENTIALS_FILE) if
 * set, else env_home + "/.aws/credentials".  And the profile: env_profile
 * (AWS_PROFILE) if set, else "default" (returned, never NULL).
 */
int ug_aws_credentials_path(char *buf, size_t size, const char *env_file,
    const char *env_home);
const char *ug_aws_profile(const char *env_profile);

/* A static text for a UG_AWS_* code. */
const char *ug_aws_strerror(int rc);

#endif /* UG_AWS_H */
