/*
 * http.c - per-request entry: built-in endpoints, limits, auth, routing.
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "cors.h"
#include "logwriter.h"
#include "metrics.h"

static int path_is(h2o_iovec_t path, const char *prefix, const char *rest)
{
    size_t a = strlen(prefix), b = strlen(rest);
    return path.len == a + b && memcmp(path.base, prefix, a) == 0 && memcmp(path.base + a, rest, b) == 0;
}

static int method_is(const h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* GET, or HEAD (h2o sends the same head without the body). */
static int is_get(const h2o_req_t *req)
{
    return method_is(req, "GET") || method_is(req, "HEAD");
}

static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = req->input.path.len + req->method.len;
    for (size_t i = 0; i != req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

/* ---- HTTP/1 body framing ----
 * With both Transfer-Encoding and Content-Length, h2o 2.2 reads the body as
 * chunked; with several Content-Lengths it takes the first; either way it
 * keeps the connection. A proxy in front that frames the body the other way
 * would see a different next request on that connection (request
 * smuggling), so such requests are refused and the connection closed (RFC
 * 9112, 6.3). h2o keeps neither header in req->headers; the head is read from
 * the socket's input buffer, where it stays, just before the body, until the
 * response is sent. */

/* The value of header `name` if `line` is that header (name case-insensitive), else NULL. */
static const char *header_value(const char *line, const char *eol, const char *name, size_t nlen)
{
    if ((size_t)(eol - line) <= nlen || line[nlen] != ':' || (line[0] | 0x20) != name[0] ||
        strncasecmp(line, name, nlen) != 0)
        return NULL;
    const char *v = line + nlen + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    return v;
}

static size_t trimmed_len(const char *v, const char *eol)
{
    while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t' || eol[-1] == '\r'))
        eol--;
    return (size_t)(eol - v);
}

static int ambiguous_framing(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->entity.base == NULL || req->conn->callbacks->get_socket == NULL)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL || req->entity.base < sock->input->bytes ||
        req->entity.base > sock->input->bytes + sock->input->size)
        return 0;
    const char *p = sock->input->bytes, *head_end = req->entity.base, *first_cl = NULL;
    size_t first_len = 0, te = 0, cl = 0;
    for (const char *eol; p < head_end && (eol = memchr(p, '\n', (size_t)(head_end - p))) != NULL; p = eol + 1) {
        const char *v;
        if ((v = header_value(p, eol, "transfer-encoding", 17)) != NULL) {
            te++;
        } else if ((v = header_value(p, eol, "content-length", 14)) != NULL) {
            size_t n = trimmed_len(v, eol);
            if (cl++ == 0) {
                first_cl = v;
                first_len = n;
            } else if (n != first_len || memcmp(v, first_cl, n) != 0) {
                return 1;
            }
        }
    }
    return te > 0 && cl > 0;
}

static void method_not_allowed(prism_ctx *ctx, const char *allow)
{
    prism_response_header(ctx, "allow", allow);
    prism_respond_error(ctx, 405, "invalid_request_error", "method_not_allowed", NULL,
                        "Method %s is not allowed on %s; use %s.", prism_ctx_method(ctx), prism_ctx_path(ctx), allow);
}

/* 1 when the request may go on; otherwise a 401 has been written. */
static int authorized(prism_ctx *ctx)
{
    const prism_auth *auth = ctx->gen->auth;
    if (auth == NULL)
        return 1;
    h2o_req_t *req = ctx->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    size_t len = 0;
    const char *token = NULL;
    if (i >= 0 && h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i) >= 0) {
        /* Which one counts would depend on who reads them: none does. */
        prism_respond_error(ctx, 401, "invalid_request_error", "invalid_api_key", NULL,
                            "Send one Authorization header, not several.");
        return 0;
    }
    if (i >= 0)
        token = prism_auth_bearer(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &len);
    if (token == NULL) {
        ssize_t k = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1);
        if (k >= 0) {
            token = req->headers.entries[k].value.base;
            len = req->headers.entries[k].value.len;
        }
    }
    if (token != NULL && prism_auth_check(auth, token, len))
        return 1;
    prism_response_header(ctx, "www-authenticate", "Bearer");
    prism_respond_error(ctx, 401, "invalid_request_error", "invalid_api_key", NULL,
                        token == NULL ? "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'."
                                      : "Incorrect API key provided.");
    return 0;
}

static void serve_models(prism_ctx *ctx)
{
    if (!is_get(ctx->req)) {
        method_not_allowed(ctx, "GET, HEAD");
        return;
    }
    const char *json = ctx->gen->models_json;
    prism_respond(ctx, 200, "application/json", json, strlen(json));
}

/* GET {prefix}/models/{id}: one entry of the list, or model_not_found. */
static void serve_model(prism_ctx *ctx, h2o_iovec_t id)
{
    if (!is_get(ctx->req)) {
        method_not_allowed(ctx, "GET, HEAD");
        return;
    }
    cJSON *list = cJSON_Parse(ctx->gen->models_json);
    const cJSON *m = NULL;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(list, "data"))
    {
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (cJSON_IsString(mid) && h2o_memis(id.base, id.len, mid->valuestring, strlen(mid->valuestring)))
            break;
    }
    if (m != NULL)
        prism_respond_json(ctx, 200, m);
    else
        prism_respond_error(ctx, 404, "invalid_request_error", "model_not_found", "model",
                            "The model '%.*s' does not exist.", (int)(id.len > 200 ? 200 : id.len), id.base);
    cJSON_Delete(list);
}

/* Prometheus text format: every worker's metrics, summed. Behind the
 * gateway keys when there are any (it names models and rates). */
static void serve_metrics(prism_worker_env *env, prism_ctx *ctx)
{
    if (!is_get(ctx->req)) {
        method_not_allowed(ctx, "GET, HEAD");
        return;
    }
    prism_metrics_process proc = {.log_lines_dropped =
                                      env->log_writer != NULL ? prism_log_writer_dropped(env->log_writer) : 0};
    char *text = env->all_metrics ? prism_metrics_render(env->all_metrics, env->worker_count, &proc) : NULL;
    if (text == NULL) {
        prism_respond_error(ctx, 503, "server_error", "metrics_unavailable", NULL, "Metrics are not available.");
        return;
    }
    prism_respond(ctx, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

static int serve_builtin(prism_ctx *ctx, h2o_iovec_t path)
{
    const char *prefix = ctx->gen->cfg->api_prefix;
    size_t plen = strlen(prefix);
    if (path_is(path, prefix, "/models")) {
        serve_models(ctx);
        return 1;
    }
    if (path.len > plen + 8 && path_is((h2o_iovec_t){path.base, plen + 8}, prefix, "/models/")) {
        serve_model(ctx, h2o_iovec_init(path.base + plen + 8, path.len - plen - 8));
        return 1;
    }
    return 0;
}

void prism_http_handle(prism_worker_env *env, h2o_req_t *req)
{
    prism_ctx *ctx = prism_ctx_new(req, env);
    h2o_iovec_t path = req->path_normalized;
    const prism_config *cfg = ctx->gen->cfg;
    if (header_bytes(req) > cfg->max_header_bytes) {
        prism_respond_error(ctx, 431, "invalid_request_error", "request_header_fields_too_large", NULL,
                            "The request's headers exceed the %zu bytes this server accepts.", cfg->max_header_bytes);
        return;
    }
    if (ambiguous_framing(req)) {
        req->http1_is_persistent = 0;
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_request", NULL,
                            "The request sends both Transfer-Encoding and Content-Length, or two different "
                            "Content-Lengths: its body cannot be framed unambiguously.");
        return;
    }
    if (!prism_cors_check(ctx))
        return;
    if (path_is(path, "", "/health")) {
        if (!is_get(req)) {
            method_not_allowed(ctx, "GET, HEAD");
            return;
        }
        prism_respond(ctx, 200, "application/json", "{\"status\":\"ok\"}", 15);
        return;
    }
    if (!authorized(ctx))
        return;
    if (path_is(path, "", "/metrics")) {
        serve_metrics(env, ctx);
        return;
    }
    if (serve_builtin(ctx, path))
        return;
    const prism_route *route = prism_routes_match(ctx->gen->routes, path.base, path.len);
    if (route == NULL) {
        prism_respond_error(ctx, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %s %s.",
                            prism_ctx_method(ctx), prism_ctx_path(ctx));
        return;
    }
    if (!method_is(req, "POST")) {
        method_not_allowed(ctx, "POST");
        return;
    }
    prism_chain_start(ctx, route);
}

static void add_models(const prism_registry *reg, cJSON *data)
{
    for (size_t i = 0; i < prism_registry_count(reg); i++) {
        const prism_loaded *p = prism_registry_at(reg, i);
        if (p->desc->list_models != NULL)
            p->desc->list_models(p->instance, data);
    }
}

/* Drops later entries with an id seen before (two plugins may both know a
 * model, e.g. a router's exact map and its provider). */
static void dedupe(cJSON *data)
{
    cJSON *m = data->child;
    while (m != NULL) {
        cJSON *next = m->next;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        for (cJSON *prev = data->child; prev != m && cJSON_IsString(id); prev = prev->next) {
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(prev, "id");
            if (cJSON_IsString(pid) && strcmp(pid->valuestring, id->valuestring) == 0) {
                cJSON_Delete(cJSON_DetachItemViaPointer(data, m));
                break;
            }
        }
        m = next;
    }
}

char *prism_http_models_json(const prism_registry *reg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    add_models(reg, data);
    dedupe(data);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
