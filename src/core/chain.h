/*
 * chain.h - routes, their expanded chains, and the chain runner.
 *
 * A route's chain is written with plugin names, meta-plugin preset chains
 * (`ai_gateway:chat`) and sub-plugin references (`ai_gateway.model_router`).
 * Expansion happens once when the route table is built: at request time a
 * chain is a plain array of loaded plugins.
 */
#ifndef PRISM_CHAIN_H
#define PRISM_CHAIN_H

#include <stdio.h>

#include "config.h"
#include "loader.h"

typedef struct prism_chain {
    const prism_loaded **steps;
    size_t step_count;
} prism_chain;

typedef struct prism_route {
    char *path; /* full path, prefix included: "/v1/chat/completions" */
    char *spec; /* the chain as written, for messages: "ai_gateway:chat" */
    prism_chain chain;
} prism_route;

typedef struct prism_route_table prism_route_table;

/* Expands every route of the config against the registry. -1 with
 * "file:line: message" when a step names nothing loaded. */
int prism_routes_build(const prism_config *cfg, const prism_registry *reg, prism_route_table **out, char *err,
                       size_t errlen);
const prism_route *prism_routes_match(const prism_route_table *t, const char *path, size_t path_len);
size_t prism_routes_count(const prism_route_table *t);
const prism_route *prism_routes_at(const prism_route_table *t, size_t i);
/* One line per route: "POST /v1/chat/completions  ai_gateway:chat -> model_router" */
void prism_routes_print(const prism_route_table *t, FILE *out);
void prism_routes_free(prism_route_table *t);

#endif
