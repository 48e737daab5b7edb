/*
 * DynamoDB as the fleet's shared store: the usage_gate_dynamodb directive
 * and the store's table of functions (ngx_http_usage_gate_store.h), which
 * the directive puts on the zone it names.  Nothing of it runs for a zone
 * without usage_gate_dynamodb.
 */

#ifndef NGX_HTTP_USAGE_GATE_DDB_H
#define NGX_HTTP_USAGE_GATE_DDB_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_store.h"


extern ngx_http_usage_gate_store_t  ngx_http_usage_gate_ddb_store;

/* usage_gate_dynamodb zone=... table=... region=... [...] */
char *ngx_http_usage_gate_dynamodb(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

#endif /* NGX_HTTP_USAGE_GATE_DDB_H */
