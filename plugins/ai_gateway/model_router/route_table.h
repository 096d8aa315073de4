/*
 * route_table.h - model name -> provider plugin, as model_router decides it.
 *
 * Pure: built once from the router's config.yml, then only read. Lookup
 * order: an exact_map key equal to the model, then the longest prefix_map
 * key the model starts with, then default_provider (NULL when unset).
 */
#ifndef MODEL_ROUTER_ROUTE_TABLE_H
#define MODEL_ROUTER_ROUTE_TABLE_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct route_table route_table;

/* NULL with a one-line reason in err when the config is malformed. */
route_table *route_table_new(const cJSON *config, char *err, size_t errlen);
const char *route_table_lookup(const route_table *t, const char *model);
/* The exact_map entries, for the models list. */
size_t route_table_exact_count(const route_table *t);
void route_table_exact_at(const route_table *t, size_t i, const char **model, const char **provider);
/* The models to try, in order, when `model` fails (fallbacks: {model: [..]}). */
size_t route_table_fallbacks(const route_table *t, const char *model, char *const **list);
/* Whether an error status moves on to the next fallback (fallback_on:
 * "5xx", "4xx" or exact codes like "429"; default 5xx and 429). */
int route_table_falls_back_on(const route_table *t, int status);
/* The most messages a request may carry (max_messages, default 10000). */
size_t route_table_max_messages(const route_table *t);
void route_table_free(route_table *t);

#endif
