/*
 * AWS credentials, per worker: the environment, the shared credentials
 * file (read with the configuration), or temporary ones fetched from the
 * ECS task role endpoint or IMDSv2, refreshed before they expire.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"


/* per worker */
ngx_http_usage_gate_ddb_aws_t  *ngx_http_usage_gate_ddb_aws;


/*
 * The shared credentials file is read with the configuration, by the
 * master: it has the environment that names the file ($HOME is not
 * passed to workers) and usually the rights to read it.
 */
void
ngx_http_usage_gate_ddb_file_creds(ngx_conf_t *cf,
    ngx_http_usage_gate_ddb_conf_t *dc)
{
    int              rc;
    char             path[4096];
    u_char          *text;
    ssize_t          n;
    ngx_fd_t         fd;
    const char      *profile;
    ug_aws_creds_t  *c;
    ngx_file_info_t  fi;

    if (ug_aws_credentials_path(path, sizeof(path),
                                getenv("AWS_SHARED_CREDENTIALS_FILE"),
                                getenv("HOME"))
        != 0)
    {
        return;
    }

    profile = dc->profile.len ? (char *) dc->profile.data
                              : ug_aws_profile(getenv("AWS_PROFILE"));

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        if (dc->profile.len) {
            ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                          "usage_gate_dynamodb: cannot read the AWS "
                          "credentials file \"%s\" for profile \"%s\"",
                          path, profile);
        }

        return;
    }

    text = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > UG_AWS_FILE_MAX)
    {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "usage_gate_dynamodb: AWS credentials file \"%s\" is "
                      "not a file of at most %d bytes; not used", path,
                      UG_AWS_FILE_MAX);
        goto done;
    }

    text = ngx_alloc(ngx_file_size(&fi) + 1, cf->log);
    if (text == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, text, ngx_file_size(&fi));
    if (n < 0) {
        ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                      "usage_gate_dynamodb: cannot read the AWS credentials "
                      "file \"%s\"", path);
        goto done;
    }

    c = ngx_pcalloc(cf->pool, sizeof(ug_aws_creds_t));
    if (c == NULL) {
        goto done;
    }

    rc = ug_aws_creds_from_ini(c, (char *) text, (size_t) n, profile);

    if (rc == UG_AWS_OK) {
        dc->file_creds = c;

    } else if (rc != UG_AWS_NO_PROFILE || dc->profile.len) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "usage_gate_dynamodb: AWS credentials file \"%s\", "
                      "profile \"%s\": %s; not used", path, profile,
                      ug_aws_strerror(rc));
    }

    /* the secret is in c now; leave no second copy in freed memory */
    ngx_explicit_memzero(text, (size_t) n);

done:

    if (text) {
        ngx_free(text);
    }

    (void) ngx_close_file(fd);
}


const ug_aws_creds_t *
ngx_http_usage_gate_ddb_creds(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    if (aws == NULL) {
        return NULL;
    }

    if (aws->have_env && ug_aws_creds_usable(&aws->env, ngx_time())) {
        return &aws->env;
    }

    if (dc->file_creds) {
        return dc->file_creds;
    }

    if (aws->have_remote && ug_aws_creds_usable(&aws->remote, ngx_time())) {
        return &aws->remote;
    }

    return NULL;
}


void
ngx_http_usage_gate_ddb_no_creds(ngx_log_t *log)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    if (aws == NULL || aws->alerted) {
        return;
    }

    aws->alerted = 1;

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "usage_gate_dynamodb: no AWS credentials: set "
                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and name "
                  "them with \"env\" in the main context of nginx.conf), "
                  "a shared credentials file, an ECS task role or an EC2 "
                  "instance profile; until then DynamoDB is treated as "
                  "unreachable (on_error)");
}


/* One step of fetching temporary credentials (ECS, or IMDSv2). */
void
ngx_http_usage_gate_ddb_aws_fetch(ngx_event_t *ev)
{
    char                             *v;
    const char                       *headers[2];
    ngx_http_usage_gate_ddb_aws_t    *aws;
    ngx_http_usage_gate_curl_opts_t   opts;

    aws = ev->data;

    /* a worker told to quit starts nothing new (the credentials it has
     * serve its last writes) */
    if (aws->req != NULL || aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_NONE
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return;
    }

    if (aws->step == NGX_HTTP_USAGE_GATE_AWS_NONE) {
        aws->step = aws->remote_kind;
    }

    ngx_memzero(&opts, sizeof(ngx_http_usage_gate_curl_opts_t));
    opts.connect_timeout = 1000;
    opts.timeout = 3000;
    opts.headers = headers;
    headers[0] = NULL;
    headers[1] = NULL;

    switch (aws->step) {

    case NGX_HTTP_USAGE_GATE_AWS_ECS:
        opts.method = "GET";
        opts.url = aws->url;

        v = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

        if (v != NULL && *v != '\0') {
            if (ngx_strlen(v) > UG_AWS_TOKEN_MAX
                || !ug_aws_header_value_ok(v, ngx_strlen(v)))
            {
                ngx_http_usage_gate_ddb_aws_failed(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN is not usable");
                return;
            }

            ngx_sprintf((u_char *) aws->header, "Authorization: %s%Z", v);
            headers[0] = aws->header;
        }

        break;

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN:
        opts.method = "PUT";
        opts.url = UG_AWS_IMDS_TOKEN_URL;
        headers[0] = UG_AWS_IMDS_TTL_HEADER;
        break;

    default: /* IMDS_ROLE, IMDS_CREDS */
        opts.method = "GET";

        if (aws->step == NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE) {
            opts.url = UG_AWS_IMDS_CREDS_URL;
        } else {
            opts.url = aws->url;
        }

        ngx_sprintf((u_char *) aws->header, UG_AWS_IMDS_TOKEN_HEADER ": %s%Z",
                    aws->token);
        headers[0] = aws->header;
        break;
    }

    aws->req = ngx_http_usage_gate_curl_start(aws->log, &opts,
                                              ngx_http_usage_gate_ddb_aws_done,
                                              aws);
    if (aws->req == NULL) {
        ngx_http_usage_gate_ddb_aws_failed("the request could not start");
    }
}


void
ngx_http_usage_gate_ddb_aws_done(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_aws_t *aws = data;

    int              arc;
    char             role[UG_AWS_ROLE_MAX + 1];
    int64_t          wait;
    ug_aws_creds_t   c;

    aws->req = NULL;

    if (rc != NGX_OK || status != 200) {
        ngx_http_usage_gate_ddb_aws_failed(rc != NGX_OK ? error
                                           : "the answer was not 200");
        return;
    }

    switch (aws->step) {

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN:
        if (body->len > UG_AWS_IMDS_TOKEN_MAX
            || !ug_aws_imds_token_ok((char *) body->data, body->len))
        {
            ngx_http_usage_gate_ddb_aws_failed("no IMDSv2 session token");
            return;
        }

        ngx_memcpy(aws->token, body->data, body->len);
        aws->token[body->len] = '\0';
        aws->step = NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE;
        ngx_add_timer(&aws->refresh, 1);
        return;

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE:
        if (ug_aws_imds_role((char *) body->data, body->len, role,
                             sizeof(role))
            != UG_AWS_OK
            || ug_aws_imds_creds_url(aws->url, sizeof(aws->url), role)
               != UG_AWS_OK)
        {
            ngx_http_usage_gate_ddb_aws_failed("no IAM role on this "
                                               "instance");
            return;
        }

        aws->step = NGX_HTTP_USAGE_GATE_AWS_IMDS_CREDS;
        ngx_add_timer(&aws->refresh, 1);
        return;

    default: /* ECS, IMDS_CREDS */
        arc = ug_aws_creds_from_json(&c, (char *) body->data, body->len);

        if (arc != UG_AWS_OK) {
            ngx_http_usage_gate_ddb_aws_failed(ug_aws_strerror(arc));
            return;
        }

        aws->remote = c;
        aws->have_remote = 1;
        aws->step = NGX_HTTP_USAGE_GATE_AWS_NONE;
        ngx_explicit_memzero(&c, sizeof(ug_aws_creds_t));

        /* again when UG_AWS_REFRESH_BEFORE remains, with some spread */
        wait = aws->remote.expires - (int64_t) ngx_time()
               - UG_AWS_REFRESH_BEFORE - (int64_t) (ngx_random() % 60);

        if (wait < 60) {
            wait = 60;
        }

        if (wait > 3600) {
            wait = 3600;
        }

        ngx_log_error(NGX_LOG_INFO, aws->log, 0,
                      "usage_gate_dynamodb: temporary AWS credentials "
                      "from the %s, valid for %L s",
                      aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_ECS
                      ? "ECS container endpoint" : "EC2 instance metadata",
                      aws->remote.expires - (int64_t) ngx_time());

        ngx_add_timer(&aws->refresh, (ngx_msec_t) wait * 1000);
        return;
    }
}


void
ngx_http_usage_gate_ddb_aws_failed(const char *why)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    aws->step = NGX_HTTP_USAGE_GATE_AWS_NONE;

    if (aws->have_remote && ug_aws_creds_usable(&aws->remote, ngx_time())) {
        /* the old ones still work for a while */
        ngx_log_error(NGX_LOG_WARN, aws->log, 0,
                      "usage_gate_dynamodb: refreshing AWS credentials "
                      "failed: %s; trying again in 10s", why);
        ngx_add_timer(&aws->refresh, 10000);
        return;
    }

    if (!aws->alerted) {
        ngx_log_error(NGX_LOG_ERR, aws->log, 0,
                      "usage_gate_dynamodb: no credentials from the %s: %s",
                      aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_ECS
                      ? "ECS container endpoint" : "EC2 instance metadata",
                      why);
    }

    ngx_http_usage_gate_ddb_no_creds(aws->log);

    ngx_add_timer(&aws->refresh, 30000);
}
