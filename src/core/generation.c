/*
 * generation.c - building, sharing and retiring loaded setups.
 */
#include "generation.h"

#include <stdio.h>
#include <stdlib.h>

#include "http.h"

static void generation_free(prism_generation *g)
{
    prism_routes_free(g->routes);
    prism_registry_free(g->reg);
    prism_auth_free(g->auth);
    free(g->models_json);
    prism_config_free(g->cfg);
    free(g);
}

int prism_generation_load(prism_config *cfg, unsigned id, prism_generation **out, char *err, size_t errlen)
{
    prism_generation *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        prism_config_free(cfg);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    g->cfg = cfg;
    g->id = id;
    atomic_init(&g->refs, 1);
    if (prism_registry_load(cfg, &g->reg, err, errlen) != 0 ||
        prism_routes_build(cfg, g->reg, &g->routes, err, errlen) != 0) {
        generation_free(g);
        return -1;
    }
    g->models_json = prism_http_models_json(g->reg);
    if (cfg->api_key_count > 0)
        g->auth = prism_auth_new(cfg->api_keys, cfg->api_key_count);
    if (g->models_json == NULL || (cfg->api_key_count > 0 && g->auth == NULL)) {
        generation_free(g);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    *out = g;
    return 0;
}

void prism_generation_retain(prism_generation *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void prism_generation_release(prism_generation *g)
{
    if (g != NULL && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        generation_free(g);
}
