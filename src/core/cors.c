/*
 * cors.c - browser origins: the preflight, the response headers, the 403.
 */
#include "cors.h"

#include <string.h>
#include <strings.h>

/* What a browser page may read of a response besides the basics. */
#define EXPOSED                                                                                                        \
    "x-request-id, x-prism-provider, x-prism-upstream-request-id, x-prism-fallback-from, x-prism-retries, "            \
    "retry-after, retry-after-ms, x-should-retry"

static const h2o_iovec_t *header(const h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i >= 0 ? &req->headers.entries[i].value : NULL;
}

/* "*" when any origin may call, the origin itself when it is listed, else NULL. */
static const char *allowed(const prism_config *cfg, h2o_iovec_t origin)
{
    for (size_t i = 0; i < cfg->cors_origin_count; i++) {
        const char *o = cfg->cors_origins[i];
        if (strcmp(o, "*") == 0)
            return "*";
        if (strlen(o) == origin.len && strncasecmp(o, origin.base, origin.len) == 0)
            return o;
    }
    return NULL;
}

static void preflight(prism_ctx *ctx)
{
    const h2o_iovec_t *asked = header(ctx->req, H2O_STRLIT("access-control-request-headers"));
    char *headers = asked != NULL ? h2o_strdup(&ctx->req->pool, asked->base, asked->len).base : NULL;
    prism_response_header(ctx, "access-control-allow-methods", "GET, POST, OPTIONS");
    /* prism_response_header refuses a value with control characters */
    if (headers == NULL || prism_response_header(ctx, "access-control-allow-headers", headers) != 0)
        prism_response_header(ctx, "access-control-allow-headers", "authorization, content-type");
    prism_response_header(ctx, "access-control-max-age", "600");
    prism_respond(ctx, 204, NULL, "", 0);
}

int prism_cors_check(prism_ctx *ctx)
{
    h2o_req_t *req = ctx->req;
    const h2o_iovec_t *origin = header(req, H2O_STRLIT("origin"));
    if (origin == NULL)
        return 1;
    const char *allow = allowed(ctx->gen->cfg, *origin);
    if (allow == NULL) {
        prism_respond_error(ctx, 403, "invalid_request_error", "origin_not_allowed", NULL,
                            "Requests from the browser origin '%.*s' are not allowed; list it in "
                            "server.cors_origins.",
                            (int)(origin->len > 200 ? 200 : origin->len), origin->base);
        return 0;
    }
    prism_response_header(ctx, "access-control-allow-origin", allow);
    prism_response_header(ctx, "vary", "origin");
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")) &&
        header(req, H2O_STRLIT("access-control-request-method")) != NULL) {
        preflight(ctx);
        return 0;
    }
    prism_response_header(ctx, "access-control-expose-headers", EXPOSED);
    return 1;
}
