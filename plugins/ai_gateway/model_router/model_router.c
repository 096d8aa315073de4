/*
 * model_router - validates a request's common fields, picks the provider
 * sub-plugin that serves its model (route_table.h) and hands it over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism/plugin.h"
#include "route_table.h"

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

static void *router_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    (void)host;
    return route_table_new(config, err, errlen);
}

static void router_destroy(void *instance)
{
    route_table_free(instance);
}

static prism_status router_handle(void *instance, prism_ctx *ctx)
{
    const route_table *r = instance;
    const char *model = NULL;
    if (!validate(ctx, prism_ctx_json(ctx), &model))
        return PRISM_DONE;
    const char *provider = route_table_lookup(r, model);
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
    const route_table *r = instance;
    for (size_t i = 0; i < route_table_exact_count(r); i++) {
        const char *model, *provider;
        route_table_exact_at(r, i, &model, &provider);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", model);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", provider);
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
