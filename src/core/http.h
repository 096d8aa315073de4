/*
 * http.h - what Prism does with each request h2o hands it: built-in
 * endpoints (/health, {prefix}/models), limits, gateway auth, and the route
 * table's chains.
 */
#ifndef PRISM_HTTP_H
#define PRISM_HTTP_H

#include <h2o.h>

#include "ctx.h"

void prism_http_handle(prism_worker_env *env, h2o_req_t *req);
/* The {"object":"list","data":[...]} body for the models endpoint, from
 * every loaded plugin's list_models (malloc'd). */
char *prism_http_models_json(const prism_registry *reg);

#endif
