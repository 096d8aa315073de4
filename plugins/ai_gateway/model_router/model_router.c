/*
 * model_router - validates a request's common fields, picks the provider
 * sub-plugin that serves its model (route_table.h) and hands it over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism/plugin.h"
#include "route_table.h"

/* The checks every provider relies on, done once here with the messages
 * OpenAI gives for the same mistakes. 1 when the request may go on. */
static int validate_body(prism_ctx *ctx)
{
    /* An object body is well-formed UTF-8 without raw control characters
     * (prism_ctx_body_kind); only a refused one is looked at again, to say why. */
    if (prism_ctx_body_kind(ctx) == PRISM_BODY_OBJECT)
        return 1;
    size_t len = 0;
    const char *raw = prism_ctx_body(ctx, &len);
    int bytes = prism_json_bytes_check(raw, len);
    if (bytes == PRISM_JSON_BAD_UTF8)
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_utf8", NULL,
                            "The request body is not valid UTF-8.");
    else if (bytes == PRISM_JSON_CONTROL)
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                            "The request body holds a raw control character; JSON allows them only escaped "
                            "(\\u0000 to \\u001f).");
    else
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                            "We could not parse the JSON body of your request. The body must be one JSON object "
                            "(Content-Type: application/json), nested at most 1000 levels deep.");
    return 0;
}

/* The fields Prism itself acts on. A body that names one twice would be
 * routed by the first and answered, upstream, by the last (most JSON
 * parsers keep the last): refused instead. */
static const char *duplicated_field(prism_ctx *ctx)
{
    static const char *const watched[] = {"model", "stream", "stream_options", "messages"};
    for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
        if (prism_ctx_body_field(ctx, NULL, watched[i]).times > 1)
            return watched[i];
    return NULL;
}

/* A JSON type as OpenAI's errors name it ("an integer" is a number here:
 * the scan does not tell integers apart). */
static const char *json_type_name(prism_json_type t)
{
    switch (t) {
    case PRISM_JSON_NULL: return "null";
    case PRISM_JSON_FALSE:
    case PRISM_JSON_TRUE: return "a boolean";
    case PRISM_JSON_NUMBER: return "a number";
    case PRISM_JSON_ARRAY: return "an array";
    case PRISM_JSON_OBJECT: return "an object";
    default: return "a string";
    }
}

/* Reads the body's fields without building a tree (prism_ctx_body_field):
 * a pass-through provider never needs one. */
static int validate(prism_ctx *ctx, const route_table *r, const char **model)
{
    if (!validate_body(ctx))
        return 0;
    const char *dup = duplicated_field(ctx);
    if (dup != NULL) {
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_json", dup,
                            "The request body names '%s' more than once.", dup);
        return 0;
    }
    prism_json_field m = prism_ctx_body_field(ctx, NULL, "model");
    if (m.type != PRISM_JSON_ABSENT && m.type != PRISM_JSON_STRING) {
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_type", "model",
                            "Invalid type for 'model': expected a string, but got %s instead.", json_type_name(m.type));
        return 0;
    }
    if (m.type == PRISM_JSON_ABSENT || m.string[0] == '\0') { /* OpenAI answers "" as it answers no model */
        prism_respond_error(ctx, 400, "invalid_request_error", "missing_required_parameter", "model",
                            "You must provide a model parameter.");
        return 0;
    }
    if (prism_str_ends_with(prism_ctx_path(ctx), "/chat/completions")) {
        prism_json_field msgs = prism_ctx_body_field(ctx, NULL, "messages");
        if (msgs.type != PRISM_JSON_ARRAY || msgs.count == 0) {
            prism_respond_error(
                ctx, 400, "invalid_request_error",
                msgs.type == PRISM_JSON_ABSENT ? "missing_required_parameter" : "invalid_type", "messages",
                msgs.type == PRISM_JSON_ABSENT ? "Missing required parameter: 'messages'."
                                               : "'messages' must be a non-empty array of message objects.");
            return 0;
        }
        if (msgs.count > route_table_max_messages(r)) {
            prism_respond_error(ctx, 400, "invalid_request_error", "too_many_messages", "messages",
                                "A request may carry at most %zu messages.", route_table_max_messages(r));
            return 0;
        }
    }
    *model = m.string;
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

/* Per request: where the fallback list stands. */
typedef struct fallback_state {
    const route_table *r;
    const char *first_model; /* what the client asked for */
    char *const *list;
    size_t count, next;
} fallback_state;

static prism_status route_to(prism_ctx *ctx, const route_table *r, const char *model)
{
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

/* The request, re-pointed at another model: the parsed JSON (what
 * translating providers read) and the raw body (what pass-through ones send). */
static int switch_model(prism_ctx *ctx, const char *model)
{
    cJSON *json = prism_ctx_json(ctx);
    if (!cJSON_ReplaceItemInObjectCaseSensitive(json, "model", cJSON_CreateString(model)))
        return -1;
    char *text = cJSON_PrintUnformatted(json);
    if (text == NULL)
        return -1;
    prism_ctx_set_body(ctx, text, strlen(text));
    cJSON_free(text);
    return 0;
}

/* The error hook: on a fallback condition, try the next model that routes. */
static int on_error_response(void *data, prism_ctx *ctx, int status)
{
    fallback_state *f = data;
    if (!route_table_falls_back_on(f->r, status))
        return 0;
    while (f->next < f->count) {
        const char *model = f->list[f->next++];
        if (route_table_lookup(f->r, model) == NULL || switch_model(ctx, model) != 0)
            continue;
        prism_response_header(ctx, "x-prism-fallback-from", f->first_model);
        prism_ctx_set(ctx, "fallback_from", f->first_model);
        route_to(ctx, f->r, model);
        return 1;
    }
    return 0;
}

static prism_status router_handle(void *instance, prism_ctx *ctx)
{
    const route_table *r = instance;
    const char *model = NULL;
    if (!validate(ctx, r, &model))
        return PRISM_DONE;
    char *const *list = NULL;
    size_t n = route_table_fallbacks(r, model, &list);
    if (n > 0) {
        fallback_state *f = prism_ctx_alloc(ctx, sizeof(*f));
        *f = (fallback_state){r, prism_ctx_strdup(ctx, model), list, n, 0};
        prism_ctx_on_error_response(ctx, on_error_response, f);
    }
    return route_to(ctx, r, model);
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
