/*
 * model_router - picks the provider sub-plugin that serves a request's model
 * and hands the request to it.
 *
 * Order: exact_map, then the longest prefix_map key the model starts with,
 * then default_provider. The tables are read once at create time and never
 * change, so every worker reads them without locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism/plugin.h"

typedef struct route_entry {
    char *key;
    char *provider;
    size_t key_len;
} route_entry;

typedef struct router {
    route_entry *exact;
    size_t exact_count;
    route_entry *prefix; /* longest key first */
    size_t prefix_count;
    char *default_provider;
} router;

static int valid_plugin_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int by_length_desc(const void *a, const void *b)
{
    const route_entry *x = a, *y = b;
    return (x->key_len < y->key_len) - (x->key_len > y->key_len);
}

static int read_map(const cJSON *config, const char *field, route_entry **out, size_t *count, char *err, size_t errlen)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(config, field);
    *out = NULL;
    *count = 0;
    if (map == NULL || cJSON_IsNull(map))
        return 0;
    if (!cJSON_IsObject(map))
        return snprintf(err, errlen, "%s must be a mapping of model -> provider", field), -1;
    *out = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(**out));
    if (*out == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        if (!cJSON_IsString(it) || !valid_plugin_name(it->valuestring))
            return snprintf(err, errlen, "%s.%s must name a provider plugin ([a-z0-9_]+)", field, it->string), -1;
        route_entry *e = &(*out)[(*count)++];
        e->key = strdup(it->string);
        e->provider = strdup(it->valuestring);
        e->key_len = strlen(it->string);
        if (e->key == NULL || e->provider == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

static void free_entries(route_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].provider);
    }
    free(e);
}

static void router_destroy(void *p)
{
    router *r = p;
    if (r == NULL)
        return;
    free_entries(r->exact, r->exact_count);
    free_entries(r->prefix, r->prefix_count);
    free(r->default_provider);
    free(r);
}

static void *router_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    (void)host;
    router *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    if (read_map(config, "exact_map", &r->exact, &r->exact_count, err, errlen) != 0 ||
        read_map(config, "prefix_map", &r->prefix, &r->prefix_count, err, errlen) != 0) {
        router_destroy(r);
        return NULL;
    }
    qsort(r->prefix, r->prefix_count, sizeof(*r->prefix), by_length_desc);
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(config, "default_provider");
    if (cJSON_IsString(def) && def->valuestring[0] != '\0') {
        if (!valid_plugin_name(def->valuestring)) {
            snprintf(err, errlen, "default_provider must name a provider plugin ([a-z0-9_]+)");
            router_destroy(r);
            return NULL;
        }
        r->default_provider = strdup(def->valuestring);
    } else if (def != NULL && !cJSON_IsNull(def) && !cJSON_IsString(def)) {
        snprintf(err, errlen, "default_provider must be a plugin name or null");
        router_destroy(r);
        return NULL;
    }
    return r;
}

static const char *route_model(const router *r, const char *model)
{
    for (size_t i = 0; i < r->exact_count; i++)
        if (strcmp(r->exact[i].key, model) == 0)
            return r->exact[i].provider;
    for (size_t i = 0; i < r->prefix_count; i++)
        if (strncmp(r->prefix[i].key, model, r->prefix[i].key_len) == 0)
            return r->prefix[i].provider;
    return r->default_provider;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The checks every provider relies on, done once here with the messages
 * OpenAI gives for the same mistakes. 1 when the request may go on. */
static int validate(prism_ctx *ctx, const cJSON *body, const char **model)
{
    if (body == NULL || !cJSON_IsObject(body)) {
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                            "We could not parse the JSON body of your request. The body must be a JSON object "
                            "(Content-Type: application/json).");
        return 0;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0') {
        prism_respond_error(ctx, 400, "invalid_request_error", "missing_required_parameter", "model",
                            m == NULL ? "You must provide a model parameter." : "'model' must be a non-empty string.");
        return 0;
    }
    if (ends_with(prism_ctx_path(ctx), "/chat/completions")) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
            prism_respond_error(ctx, 400, "invalid_request_error",
                                msgs == NULL ? "missing_required_parameter" : "invalid_type", "messages",
                                msgs == NULL ? "Missing required parameter: 'messages'."
                                             : "'messages' must be a non-empty array of message objects.");
            return 0;
        }
    }
    *model = m->valuestring;
    return 1;
}

static prism_status router_handle(void *instance, prism_ctx *ctx)
{
    const router *r = instance;
    const char *model = NULL;
    if (!validate(ctx, prism_ctx_json(ctx), &model))
        return PRISM_DONE;
    const char *provider = route_model(r, model);
    if (provider == NULL) {
        prism_respond_error(ctx, 404, "invalid_request_error", "model_not_found", "model",
                            "The model '%.200s' does not exist or is not served by this gateway.", model);
        return PRISM_DONE;
    }
    prism_ctx_set(ctx, "model", model);
    prism_ctx_set(ctx, "provider", provider);
    return prism_ctx_dispatch(ctx, provider);
}

static void router_list_models(void *instance, cJSON *data)
{
    const router *r = instance;
    for (size_t i = 0; i < r->exact_count; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", r->exact[i].key);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", r->exact[i].provider);
        cJSON_AddItemToArray(data, m);
    }
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION,
    .name = "model_router",
    .version = "0.1.0",
    .create = router_create,
    .handle = router_handle,
    .destroy = router_destroy,
    .list_models = router_list_models,
};
