#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ug_aws.h"
#include "ug_time.h"


/* Access key ids are upper-case letters and digits ("AKIA...", "ASIA..."):
 * accept any letters and digits. */
static int
ug_aws_key_id_ok(const char *v, size_t len)
{
    size_t  i;
    int     c;

    if (len == 0 || len > UG_AWS_KEY_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) v[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


/* Secrets and session tokens are base64-like: visible ASCII, no spaces.
 * Nothing that could split a header or a log line gets through. */
static int
ug_aws_visible(const char *v, size_t len, size_t max)
{
    size_t  i;
    int     c;

    if (len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) v[i];

        if (c < 0x21 || c > 0x7e) {
            return 0;
        }
    }

    return 1;
}


int
ug_aws_header_value_ok(const char *v, size_t len)
{
    size_t  i;
    int     c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) v[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static int
ug_aws_set(char *dst, size_t *dst_len, const char *v, size_t len)
{
    memcpy(dst, v, len);
    dst[len] = '\0';
    *dst_len = len;

    return UG_AWS_OK;
}


static int
ug_aws_set_key_id(ug_aws_creds_t *c, const char *v, size_t len)
{
    if (!ug_aws_key_id_ok(v, len)) {
        return UG_AWS_BAD_VALUE;
    }

    return ug_aws_set(c->key_id, &c->key_id_len, v, len);
}


static int
ug_aws_set_secret(ug_aws_creds_t *c, const char *v, size_t len)
{
    if (!ug_aws_visible(v, len, UG_AWS_SECRET_MAX)) {
        return UG_AWS_BAD_VALUE;
    }

    return ug_aws_set(c->secret, &c->secret_len, v, len);
}


static int
ug_aws_set_token(ug_aws_creds_t *c, const char *v, size_t len)
{
    if (!ug_aws_visible(v, len, UG_AWS_TOKEN_MAX)) {
        return UG_AWS_BAD_VALUE;
    }

    return ug_aws_set(c->token, &c->token_len, v, len);
}


int
ug_aws_creds_from_env(ug_aws_creds_t *c, const char *key_id,
    const char *secret, const char *token)
{
    ug_aws_creds_t  t;
    int             rc;

    memset(&t, 0, sizeof(ug_aws_creds_t));

    if (key_id == NULL || *key_id == '\0'
        || secret == NULL || *secret == '\0')
    {
        return UG_AWS_INCOMPLETE;
    }

    if (strlen(key_id) > UG_AWS_KEY_ID_MAX
        || strlen(secret) > UG_AWS_SECRET_MAX
        || (token != NULL && strlen(token) > UG_AWS_TOKEN_MAX))
    {
        return UG_AWS_BAD_VALUE;
    }

    rc = ug_aws_set_key_id(&t, key_id, strlen(key_id));
    if (rc == UG_AWS_OK) {
        rc = ug_aws_set_secret(&t, secret, strlen(secret));
    }

    if (rc == UG_AWS_OK && token != NULL && *token != '\0') {
        rc = ug_aws_set_token(&t, token, strlen(token));
    }

    if (rc != UG_AWS_OK) {
        return rc;
    }

    *c = t;

    return UG_AWS_OK;
}


/* The shared credentials file */


static int
ug_aws_blank(int c)
{
    return c == ' ' || c == '\t';
}


static void
ug_aws_trim(const char **p, size_t *len)
{
    while (*len > 0 && ug_aws_blank((unsigned char) (*p)[0])) {
        (*p)++;
        (*len)--;
    }

    while (*len > 0 && ug_aws_blank((unsigned char) (*p)[*len - 1])) {
        (*len)--;
    }
}


static int
ug_aws_key_is(const char *k, size_t len, const char *name)
{
    size_t  i;
    int     c;

    if (len != strlen(name)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) k[i];

        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }

        if (c != name[i]) {
            return 0;
        }
    }

    return 1;
}


/* Cuts an inline comment: '#' or ';' after a blank (botocore's rule). */
static void
ug_aws_cut_comment(const char *p, size_t *len)
{
    size_t  i;

    for (i = 1; i < *len; i++) {
        if ((p[i] == '#' || p[i] == ';')
            && ug_aws_blank((unsigned char) p[i - 1]))
        {
            *len = i;
            return;
        }
    }
}


/*
 * "[name]" or "[profile name]": 1 if it names profile.  A malformed
 * header names no profile (its keys are then ignored).
 */
static int
ug_aws_section_is(const char *p, size_t len, const char *profile)
{
    size_t  plen;

    ug_aws_cut_comment(p, &len);
    ug_aws_trim(&p, &len);

    if (len < 2 || p[len - 1] != ']') {
        return 0;
    }

    p++;
    len -= 2;
    ug_aws_trim(&p, &len);

    if (len > sizeof("profile") && memcmp(p, "profile", 7) == 0
        && ug_aws_blank((unsigned char) p[7]))
    {
        p += 7;
        len -= 7;
        ug_aws_trim(&p, &len);
    }

    plen = strlen(profile);

    return len == plen && memcmp(p, profile, len) == 0;
}


int
ug_aws_creds_from_ini(ug_aws_creds_t *c, const char *text, size_t len,
    const char *profile)
{
    ug_aws_creds_t   t;
    const char      *p, *end, *nl, *line, *key, *val, *eq;
    size_t           n, klen, vlen;
    int              in_profile, found, nested, indented, rc;

    if (profile == NULL) {
        profile = "default";
    }

    if (len > UG_AWS_FILE_MAX) {
        return UG_AWS_TOO_BIG;
    }

    if (*profile == '\0' || strlen(profile) > UG_AWS_PROFILE_MAX) {
        return UG_AWS_NO_PROFILE;
    }

    memset(&t, 0, sizeof(ug_aws_creds_t));

    in_profile = 0;
    found = 0;
    nested = 0;

    p = text;
    end = text + len;

    while (p < end) {
        nl = memchr(p, '\n', (size_t) (end - p));

        line = p;
        n = (nl != NULL) ? (size_t) (nl - p) : (size_t) (end - p);
        p = (nl != NULL) ? nl + 1 : end;

        if (n > UG_AWS_LINE_MAX) {
            return UG_AWS_TOO_BIG;
        }

        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }

        indented = (n > 0 && ug_aws_blank((unsigned char) line[0]));

        ug_aws_trim(&line, &n);

        if (n == 0 || line[0] == '#' || line[0] == ';') {
            continue;
        }

        if (indented && nested) {
            /* "s3 =\n  max_concurrent_requests = 20": not ours */
            continue;
        }

        nested = 0;

        if (line[0] == '[') {
            in_profile = ug_aws_section_is(line, n, profile);
            found |= in_profile;
            continue;
        }

        eq = memchr(line, '=', n);
        if (eq == NULL) {
            /* junk outside our keys is tolerated, as the SDKs' readers
             * tolerate what they do not know */
            continue;
        }

        key = line;
        klen = (size_t) (eq - line);
        ug_aws_trim(&key, &klen);

        val = eq + 1;
        vlen = (size_t) (line + n - val);
        ug_aws_cut_comment(val, &vlen);
        ug_aws_trim(&val, &vlen);

        if (vlen == 0) {
            nested = 1;
        }

        if (!in_profile) {
            continue;
        }

        rc = UG_AWS_OK;

        if (ug_aws_key_is(key, klen, "aws_access_key_id")) {
            rc = (vlen == 0) ? UG_AWS_INCOMPLETE
                             : ug_aws_set_key_id(&t, val, vlen);

        } else if (ug_aws_key_is(key, klen, "aws_secret_access_key")) {
            rc = (vlen == 0) ? UG_AWS_INCOMPLETE
                             : ug_aws_set_secret(&t, val, vlen);

        } else if (ug_aws_key_is(key, klen, "aws_session_token")) {
            if (vlen == 0) {
                t.token[0] = '\0';
                t.token_len = 0;

            } else {
                rc = ug_aws_set_token(&t, val, vlen);
            }
        }

        if (rc != UG_AWS_OK) {
            return rc;
        }
    }

    if (!found) {
        return UG_AWS_NO_PROFILE;
    }

    if (t.key_id_len == 0 || t.secret_len == 0) {
        return UG_AWS_INCOMPLETE;
    }

    *c = t;

    return UG_AWS_OK;
}


/* Metadata endpoints */


static int
ug_aws_digits(const char *s, size_t n, int *out)
{
    size_t  i;
    int     v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = v;

    return 0;
}


int
ug_aws_parse_iso8601(const char *s, size_t len, int64_t *out)
{
    int      year, mon, day, hour, min, sec, oh, om;
    size_t   i;
    int64_t  t, off;

    /* "YYYY-MM-DDTHH:MM:SS" is 19 bytes */
    if (len < 20 || len > 64) {
        return -1;
    }

    if (ug_aws_digits(s, 4, &year) != 0 || s[4] != '-'
        || ug_aws_digits(s + 5, 2, &mon) != 0 || s[7] != '-'
        || ug_aws_digits(s + 8, 2, &day) != 0
        || (s[10] != 'T' && s[10] != 't')
        || ug_aws_digits(s + 11, 2, &hour) != 0 || s[13] != ':'
        || ug_aws_digits(s + 14, 2, &min) != 0 || s[16] != ':'
        || ug_aws_digits(s + 17, 2, &sec) != 0)
    {
        return -1;
    }

    if (mon < 1 || mon > 12 || day < 1
        || day > ug_days_in_month(year, mon)
        || hour > 23 || min > 59 || sec > 60)
    {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        i++;

        if (i == len || s[i] < '0' || s[i] > '9') {
            return -1;
        }

        /* fractions are dropped: an expiry a fraction early is safe */
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i == len) {
        return -1;
    }

    off = 0;

    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        off = 0;

    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len) {
        if (ug_aws_digits(s + i + 1, 2, &oh) != 0 || s[i + 3] != ':'
            || ug_aws_digits(s + i + 4, 2, &om) != 0
            || oh > 23 || om > 59)
        {
            return -1;
        }

        off = (int64_t) oh * 3600 + om * 60;

        if (s[i] == '-') {
            off = -off;
        }

    } else {
        return -1;
    }

    t = ug_month_start(year * 12 + (mon - 1))
        + (int64_t) (day - 1) * 86400
        + (int64_t) hour * 3600 + min * 60 + sec;

    /* local time = UTC + offset */
    *out = t - off;

    return 0;
}


static int
ug_aws_json_str(json_t *root, const char *name, const char **v, size_t *len)
{
    json_t  *s;

    s = json_object_get(root, name);

    if (!json_is_string(s)) {
        return -1;
    }

    *v = json_string_value(s);
    *len = json_string_length(s);

    return 0;
}


int
ug_aws_creds_from_json(ug_aws_creds_t *c, const char *text, size_t len)
{
    ug_aws_creds_t   t;
    json_t          *root;
    json_error_t     err;
    const char      *v;
    size_t           vlen;
    int              rc;

    if (len > UG_AWS_FILE_MAX) {
        return UG_AWS_TOO_BIG;
    }

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return UG_AWS_BAD_JSON;
    }

    memset(&t, 0, sizeof(ug_aws_creds_t));

    rc = UG_AWS_OK;

    if (json_object_get(root, "Code") != NULL) {
        if (ug_aws_json_str(root, "Code", &v, &vlen) != 0
            || vlen != sizeof("Success") - 1
            || memcmp(v, "Success", vlen) != 0)
        {
            rc = UG_AWS_NOT_SUCCESS;
            goto done;
        }
    }

    if (ug_aws_json_str(root, "AccessKeyId", &v, &vlen) != 0
        || (rc = ug_aws_set_key_id(&t, v, vlen)) != UG_AWS_OK)
    {
        rc = (rc == UG_AWS_OK) ? UG_AWS_INCOMPLETE : rc;
        goto done;
    }

    if (ug_aws_json_str(root, "SecretAccessKey", &v, &vlen) != 0
        || (rc = ug_aws_set_secret(&t, v, vlen)) != UG_AWS_OK)
    {
        rc = (rc == UG_AWS_OK) ? UG_AWS_INCOMPLETE : rc;
        goto done;
    }

    /* temporary credentials always come with a token */
    if (ug_aws_json_str(root, "Token", &v, &vlen) != 0
        || (rc = ug_aws_set_token(&t, v, vlen)) != UG_AWS_OK)
    {
        rc = (rc == UG_AWS_OK) ? UG_AWS_INCOMPLETE : rc;
        goto done;
    }

    if (ug_aws_json_str(root, "Expiration", &v, &vlen) != 0
        || ug_aws_parse_iso8601(v, vlen, &t.expires) != 0)
    {
        rc = UG_AWS_BAD_EXPIRATION;
        goto done;
    }

    *c = t;

done:

    json_decref(root);

    return rc;
}


int
ug_aws_creds_refresh_due(const ug_aws_creds_t *c, int64_t now)
{
    return c->expires != 0 && c->expires - now <= UG_AWS_REFRESH_BEFORE;
}


int
ug_aws_creds_usable(const ug_aws_creds_t *c, int64_t now)
{
    return c->key_id_len != 0 && (c->expires == 0 || now < c->expires);
}


static int
ug_aws_host_is(const char *host, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(host, name, len) == 0;
}


int
ug_aws_ecs_url(char *buf, size_t size, const char *relative,
    const char *full)
{
    const char  *host, *p;
    size_t       len, hlen;
    int          n;

    if (relative != NULL && *relative != '\0') {
        len = strlen(relative);

        if (relative[0] != '/' || !ug_aws_visible(relative, len, 512)) {
            return UG_AWS_BAD_URL;
        }

        n = snprintf(buf, size, "%s%s", UG_AWS_ECS_HOST, relative);

        return (n < 0 || (size_t) n >= size) ? UG_AWS_TOO_BIG : UG_AWS_OK;
    }

    if (full == NULL || *full == '\0') {
        return UG_AWS_BAD_URL;
    }

    len = strlen(full);

    if (!ug_aws_visible(full, len, UG_AWS_URL_MAX - 1)) {
        return UG_AWS_BAD_URL;
    }

    if (len > 8 && memcmp(full, "https://", 8) == 0) {
        host = full + 8;

    } else if (len > 7 && memcmp(full, "http://", 7) == 0) {
        /* plain http only to this machine or the ECS/EKS agents */
        host = full + 7;

        if (*host == '[') {
            p = strchr(host, ']');
            if (p == NULL) {
                return UG_AWS_BAD_URL;
            }

            p++;

        } else {
            p = host + strcspn(host, ":/?#");
        }

        hlen = (size_t) (p - host);

        if (!(ug_aws_host_is(host, hlen, "127.0.0.1")
              || ug_aws_host_is(host, hlen, "localhost")
              || ug_aws_host_is(host, hlen, "[::1]")
              || ug_aws_host_is(host, hlen, "169.254.170.2")
              || ug_aws_host_is(host, hlen, "169.254.170.23")
              || ug_aws_host_is(host, hlen, "[fd00:ec2::23]"))
            || (*p != '\0' && *p != ':' && *p != '/'))
        {
            return UG_AWS_BAD_URL;
        }

    } else {
        return UG_AWS_BAD_URL;
    }

    if (*host == '\0' || *host == '/') {
        return UG_AWS_BAD_URL;
    }

    n = snprintf(buf, size, "%s", full);

    return (n < 0 || (size_t) n >= size) ? UG_AWS_TOO_BIG : UG_AWS_OK;
}


int
ug_aws_imds_token_ok(const char *text, size_t len)
{
    return ug_aws_visible(text, len, UG_AWS_IMDS_TOKEN_MAX);
}


static int
ug_aws_role_char(int c)
{
    /* IAM role names: [\w+=,.@-] */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '+' || c == '=' || c == ','
           || c == '.' || c == '@' || c == '_' || c == '-';
}


int
ug_aws_imds_role(const char *text, size_t len, char *out, size_t size)
{
    const char  *p;
    size_t       n, i;

    if (len > UG_AWS_FILE_MAX) {
        return UG_AWS_TOO_BIG;
    }

    p = text;
    n = 0;

    while (n < len && text[n] != '\n' && text[n] != '\r') {
        n++;
    }

    ug_aws_trim(&p, &n);

    if (n == 0 || n > UG_AWS_ROLE_MAX || n >= size) {
        return UG_AWS_BAD_VALUE;
    }

    for (i = 0; i < n; i++) {
        if (!ug_aws_role_char((unsigned char) p[i])) {
            return UG_AWS_BAD_VALUE;
        }
    }

    memcpy(out, p, n);
    out[n] = '\0';

    return UG_AWS_OK;
}


int
ug_aws_imds_creds_url(char *buf, size_t size, const char *role)
{
    char  check[UG_AWS_ROLE_MAX + 1];
    int   n;

    if (ug_aws_imds_role(role, strlen(role), check, sizeof(check))
        != UG_AWS_OK
        || strlen(check) != strlen(role))
    {
        return UG_AWS_BAD_VALUE;
    }

    n = snprintf(buf, size, "%s%s", UG_AWS_IMDS_CREDS_URL, role);

    return (n < 0 || (size_t) n >= size) ? UG_AWS_TOO_BIG : UG_AWS_OK;
}


int
ug_aws_credentials_path(char *buf, size_t size, const char *env_file,
    const char *env_home)
{
    int  n;

    if (env_file != NULL && *env_file != '\0') {
        n = snprintf(buf, size, "%s", env_file);

    } else if (env_home != NULL && *env_home != '\0') {
        n = snprintf(buf, size, "%s/.aws/credentials", env_home);

    } else {
        return UG_AWS_BAD_VALUE;
    }

    return (n < 0 || (size_t) n >= size) ? UG_AWS_TOO_BIG : UG_AWS_OK;
}


const char *
ug_aws_profile(const char *env_profile)
{
    return (env_profile != NULL && *env_profile != '\0') ? env_profile
                                                         : "default";
}


const char *
ug_aws_strerror(int rc)
{
    switch (rc) {
    case UG_AWS_OK:
        return "ok";
    case UG_AWS_NO_PROFILE:
        return "profile not found";
    case UG_AWS_INCOMPLETE:
        return "access key id or secret access key missing";
    case UG_AWS_BAD_VALUE:
        return "invalid credential value";
    case UG_AWS_TOO_BIG:
        return "input too large";
    case UG_AWS_BAD_JSON:
        return "credentials answer is not the expected JSON";
    case UG_AWS_BAD_EXPIRATION:
        return "credentials Expiration missing or invalid";
    case UG_AWS_NOT_SUCCESS:
        return "credentials endpoint did not report Success";
    default:
        return "invalid credentials URL";
    }
}
