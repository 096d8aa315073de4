/*
 * chain.c - building the route table (expanding chain references once) and
 * running a chain for a request.
 */
#include "chain.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

#define CHAIN_MAX_STEPS 32
#define CHAIN_MAX_DEPTH 4

struct prism_route_table {
    prism_route *routes;
    size_t count;
};

typedef struct expand_state {
    const prism_registry *reg;
    const prism_loaded *steps[CHAIN_MAX_STEPS];
    size_t count;
    char *err;
    size_t errlen;
    const char *where; /* "config.yml:12: route /chat/completions" */
} expand_state;

static int fail(expand_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(expand_state *st, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(st->err, st->errlen, "%s: %s", st->where, msg);
    return -1;
}

static int expand_step(expand_state *st, const char *step, const char *group, int depth);

static int push(expand_state *st, const prism_loaded *p)
{
    if (st->count == CHAIN_MAX_STEPS)
        return fail(st, "chain longer than %d steps", CHAIN_MAX_STEPS);
    st->steps[st->count++] = p;
    return 0;
}

/* "group:chain" -> the group's preset chain, each step resolved inside it. */
static int expand_preset(expand_state *st, const char *step, const char *colon, int depth)
{
    char group[128];
    size_t glen = (size_t)(colon - step);
    if (glen == 0 || glen >= sizeof(group))
        return fail(st, "bad chain reference '%s'", step);
    memcpy(group, step, glen);
    group[glen] = '\0';
    const prism_manifest *m = prism_registry_manifest(st->reg, group);
    if (m == NULL)
        return fail(st, "'%s' names plugin '%s', which is not enabled or not found", step, group);
    const prism_chain_conf *c = prism_manifest_chain(m, colon + 1);
    if (c == NULL)
        return fail(st, "plugin '%s' has no chain '%s'", group, colon + 1);
    for (size_t i = 0; i < c->step_count; i++)
        if (expand_step(st, c->steps[i], group, depth + 1) != 0)
            return -1;
    return 0;
}

static int expand_step(expand_state *st, const char *step, const char *group, int depth)
{
    if (depth > CHAIN_MAX_DEPTH)
        return fail(st, "chain references nest deeper than %d", CHAIN_MAX_DEPTH);
    const char *colon = strchr(step, ':');
    if (colon != NULL)
        return expand_preset(st, step, colon, depth);
    const prism_loaded *p = NULL;
    if (group != NULL && strchr(step, '.') == NULL) {
        char full[256];
        snprintf(full, sizeof(full), "%s.%s", group, step);
        p = prism_registry_find(st->reg, full);
    }
    if (p == NULL)
        p = prism_registry_find(st->reg, step);
    if (p == NULL)
        return fail(st, "step '%s' names no loaded plugin", step);
    return push(st, p);
}

static char *join_path(const char *prefix, const char *path)
{
    size_t a = strlen(prefix), b = strlen(path);
    char *s = malloc(a + b + 1);
    if (s != NULL) {
        memcpy(s, prefix, a);
        memcpy(s + a, path, b + 1);
    }
    return s;
}

static char *join_spec(const prism_route_conf *rc)
{
    size_t len = 1;
    for (size_t i = 0; i < rc->chain_len; i++)
        len += strlen(rc->chain[i]) + 2;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < rc->chain_len; i++) {
        if (i > 0)
            strcat(s, ", ");
        strcat(s, rc->chain[i]);
    }
    return s;
}

static int build_route(const prism_config *cfg, const prism_registry *reg, const prism_route_conf *rc, prism_route *out,
                       char *err, size_t errlen)
{
    char where[512];
    snprintf(where, sizeof(where), "%s:%d: route %s", cfg->file, rc->line, rc->path);
    expand_state st = {.reg = reg, .err = err, .errlen = errlen, .where = where};
    for (size_t i = 0; i < rc->chain_len; i++)
        if (expand_step(&st, rc->chain[i], NULL, 0) != 0)
            return -1;
    out->path = join_path(cfg->api_prefix, rc->path);
    out->spec = join_spec(rc);
    out->chain.steps = malloc(st.count * sizeof(*out->chain.steps));
    if (out->path == NULL || out->spec == NULL || out->chain.steps == NULL) {
        snprintf(err, errlen, "%s: out of memory", where);
        return -1;
    }
    memcpy(out->chain.steps, st.steps, st.count * sizeof(*st.steps));
    out->chain.step_count = st.count;
    return 0;
}

int prism_routes_build(const prism_config *cfg, const prism_registry *reg, prism_route_table **out, char *err,
                       size_t errlen)
{
    prism_route_table *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->routes = calloc(cfg->route_count + 1, sizeof(*t->routes))) == NULL) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->route_count; i++) {
        t->count = i + 1;
        if (build_route(cfg, reg, &cfg->routes[i], &t->routes[i], err, errlen) != 0) {
            prism_routes_free(t);
            return -1;
        }
    }
    *out = t;
    return 0;
}

const prism_route *prism_routes_match(const prism_route_table *t, const char *path, size_t path_len)
{
    for (size_t i = 0; i < t->count; i++) {
        const prism_route *r = &t->routes[i];
        if (strlen(r->path) == path_len && memcmp(r->path, path, path_len) == 0)
            return r;
    }
    return NULL;
}

size_t prism_routes_count(const prism_route_table *t)
{
    return t->count;
}

const prism_route *prism_routes_at(const prism_route_table *t, size_t i)
{
    return i < t->count ? &t->routes[i] : NULL;
}

void prism_routes_print(const prism_route_table *t, FILE *out)
{
    for (size_t i = 0; i < t->count; i++) {
        const prism_route *r = &t->routes[i];
        fprintf(out, "POST %-28s %s ->", r->path, r->spec);
        for (size_t j = 0; j < r->chain.step_count; j++)
            fprintf(out, " %s%s", j ? "| " : "", r->chain.steps[j]->name);
        fputc('\n', out);
    }
}

void prism_routes_free(prism_route_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++) {
        free(t->routes[i].path);
        free(t->routes[i].spec);
        free(t->routes[i].chain.steps);
    }
    free(t->routes);
    free(t);
}

/* ---- the runner ---- */

static void run_from(prism_ctx *ctx);

/* A chain that ends without a response is a configuration mistake: say so
 * rather than leaving the client waiting. */
static void no_response(prism_ctx *ctx)
{
    prism_respond_error(ctx, 500, "server_error", "chain_without_response", NULL,
                        "The chain for this route finished without producing a response.");
}

static void run_from(prism_ctx *ctx)
{
    const prism_chain *c = &ctx->route->chain;
    ctx->in_chain = 1;
    while (ctx->step < c->step_count && !ctx->gone) {
        prism_status st = prism_ctx_run_plugin(ctx, c->steps[ctx->step]);
        if (st == PRISM_PENDING && ctx->early_resume) {
            st = (prism_status)(ctx->early_resume - 1);
            ctx->early_resume = 0;
        }
        if (st == PRISM_PENDING) {
            ctx->in_chain = 0;
            if (!prism_ctx_responded(ctx))
                prism_ctx_watch_client_soon(ctx);
            return;
        }
        if (st == PRISM_DONE) {
            ctx->step = c->step_count + 1;
            break;
        }
        ctx->step++;
    }
    ctx->in_chain = 0;
    if (ctx->step == c->step_count && !ctx->gone && !prism_ctx_responded(ctx))
        no_response(ctx);
}

void prism_chain_start(prism_ctx *ctx, const prism_route *route)
{
    ctx->route = route;
    ctx->step = 0;
    run_from(ctx);
}

void prism_ctx_resume(prism_ctx *ctx, prism_status status)
{
    if (ctx->route == NULL || ctx->gone || status == PRISM_PENDING)
        return;
    size_t slot = ctx->trace_count;
    for (size_t i = slot; i-- > 0;) {
        if (ctx->trace[i].dur_ns == 0) {
            ctx->trace[i].dur_ns = prism_now_ns() - ctx->trace[i].start_ns;
            break;
        }
    }
    if (ctx->in_chain) {
        /* The step has not returned PENDING yet: the runner picks this up. */
        ctx->early_resume = (int)status + 1;
        return;
    }
    if (status == PRISM_DONE) {
        ctx->step = ctx->route->chain.step_count + 1;
        return;
    }
    ctx->step++;
    run_from(ctx);
}
