/*
 * generation.h - one loaded setup: configuration, plugins, routes, gateway
 * keys and the models list, as one reference-counted object.
 *
 * Workers serve new requests from their current generation; each request
 * holds a reference to the generation it started on, so a reload (SIGHUP)
 * can publish a new one atomically while requests in flight finish on the
 * old, which is freed when its last request ends.
 */
#ifndef PRISM_GENERATION_H
#define PRISM_GENERATION_H

#include <stdatomic.h>

#include "auth.h"
#include "chain.h"
#include "config.h"
#include "loader.h"

typedef struct prism_generation {
    atomic_uint refs;
    unsigned id; /* 1 at start, +1 per reload */
    prism_config *cfg;
    prism_registry *reg;
    prism_route_table *routes;
    prism_auth *auth; /* NULL: no gateway keys */
    char *models_json;
} prism_generation;

/* Loads plugins and routes for `cfg` (owned from now on, even on failure).
 * The new generation has one reference. -1 with a message on failure. */
int prism_generation_load(prism_config *cfg, unsigned id, prism_generation **out, char *err, size_t errlen);
void prism_generation_retain(prism_generation *g);
/* Frees the generation (plugins destroyed, libraries closed) with its last
 * reference. */
void prism_generation_release(prism_generation *g);

#endif
