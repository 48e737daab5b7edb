/*
 * The state file's directory, as nginx treats its temp paths: created
 * for the workers' user when missing, and refused, loudly, when that
 * user could not write in it.
 */

#ifndef NGX_HTTP_USAGE_GATE_PATHS_H
#define NGX_HTTP_USAGE_GATE_PATHS_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_usage_gate_zone.h"


/*
 * In the master (and in nginx -t) when a zone with a state file is set
 * up, at start and at every reload: creates the state file's directory
 * when it is missing (one level, given to the workers' user) and checks
 * that the workers' user may write in it.  NGX_ERROR, with an [emerg]
 * saying what to do, when it may not.
 */
ngx_int_t ngx_http_usage_gate_paths_check(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log);

#endif /* NGX_HTTP_USAGE_GATE_PATHS_H */
