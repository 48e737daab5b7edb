/*
 * libFuzzer target for ug_aws: the shared credentials file, the ECS/IMDS
 * JSON answers, ISO 8601 times, IMDS role listings and ECS URLs.
 *
 * The first input byte picks the parser (low 7 bits) and a variant (high
 * bit: profile "dev", relative ECS URI); the rest is the input.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ug_aws.h"


static void
fuzz_check_value(const char *v, size_t len, size_t max, int allow_empty)
{
    size_t  i;

    if (len > max || (len == 0 && !allow_empty) || v[len] != '\0') {
        abort();
    }

    /* nothing that could split a header or a log line */
    for (i = 0; i < len; i++) {
        if ((unsigned char) v[i] < 0x21 || (unsigned char) v[i] > 0x7e) {
            abort();
        }
    }
}


static void
fuzz_check_creds(const ug_aws_creds_t *c)
{
    fuzz_check_value(c->key_id, c->key_id_len, UG_AWS_KEY_ID_MAX, 0);
    fuzz_check_value(c->secret, c->secret_len, UG_AWS_SECRET_MAX, 0);
    fuzz_check_value(c->token, c->token_len, UG_AWS_TOKEN_MAX, 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug_aws_creds_t  c;
    static char            text[UG_AWS_FILE_MAX + 2];
    char                   out[UG_AWS_URL_MAX];
    const char            *in;
    size_t                 len;
    int64_t                t;

    if (size < 1 || size - 1 > UG_AWS_FILE_MAX) {
        return 0;
    }

    in = (const char *) data + 1;
    len = size - 1;

    switch ((data[0] & 0x7f) % 5) {

    case 0:
        if (ug_aws_creds_from_ini(&c, in, len,
                                  (data[0] & 0x80) ? "dev" : NULL)
            == UG_AWS_OK)
        {
            fuzz_check_creds(&c);

            if (c.expires != 0) {
                abort();
            }
        }

        break;

    case 1:
        if (ug_aws_creds_from_json(&c, in, len) == UG_AWS_OK) {
            fuzz_check_creds(&c);

            if (c.token_len == 0) {
                abort();
            }
        }

        break;

    case 2:
        /* years 0000..9999, offsets within a day */
        if (ug_aws_parse_iso8601(in, len, &t) == 0
            && (t < -62167219200LL - 86400 || t > 253402300799LL + 86400))
        {
            abort();
        }

        break;

    case 3:
        if (ug_aws_imds_role(in, len, out, sizeof(out)) == UG_AWS_OK) {
            fuzz_check_value(out, strlen(out), UG_AWS_ROLE_MAX, 0);
        }

        break;

    default:
        /* as the environment would hold it: NUL-terminated */
        memcpy(text, in, len);
        text[len] = '\0';

        if (ug_aws_ecs_url(out, sizeof(out), (data[0] & 0x80) ? text : NULL,
                           text) == UG_AWS_OK
            && strncmp(out, "http://", 7) != 0
            && strncmp(out, "https://", 8) != 0)
        {
            abort();
        }

        break;
    }

    return 0;
}
