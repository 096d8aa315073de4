/*
 * ctx_body.c - a request's body as JSON: its top-level fields read without a
 * tree (prism_ctx_body_field) and its cJSON tree (prism_ctx_json, or
 * prism_ctx_json_read for a tree only read, kept in the request's pool),
 * all from the worker's simdjson scanner (json_scan.h), with cJSON deciding
 * the few texts simdjson leaves to it. Other JSON a plugin receives goes
 * through prism_json_parse, prism_json_read or a prism_json_scratch, the
 * same way.
 */
#include <string.h>

#include "ctx.h"

static void *pool_alloc(void *pool, size_t size)
{
    return h2o_mem_alloc_pool((h2o_mem_pool_t *)pool, size);
}

/* The worker's scanner, made on first use; NULL when memory ran out. */
static prism_json_scanner *scanner_of(prism_worker_env *env)
{
    if (env->scanner == NULL)
        env->scanner = prism_json_scanner_new();
    return env->scanner;
}

/* One JSON value and nothing after it but whitespace: cJSON alone stops at
 * the end of the first value and ignores what follows. */
static cJSON *parse_whole(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (json == NULL || end == NULL)
        return json;
    for (size_t i = (size_t)(end - text); i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            cJSON_Delete(json);
            return NULL;
        }
    }
    return json;
}

/* The tree from simdjson's reading, or from cJSON's where simdjson refused
 * (json_scan.h: the tree is the same either way). */
static cJSON *tree_of(prism_json_scanner *scanner, const char *text, size_t len, unsigned long serial)
{
    int unsure = 1;
    cJSON *tree = scanner != NULL ? prism_json_tree(scanner, text, len, serial, NULL, NULL, &unsure) : NULL;
    return tree == NULL && unsure ? parse_whole(text, len) : tree;
}

static void delete_tree(void *p)
{
    cJSON_Delete(*(cJSON **)p);
}

/* A read-only tree in `pool`; where cJSON decides the text, its tree,
 * deleted when the pool is cleared. */
static const cJSON *pool_tree_of(prism_ctx *ctx, h2o_mem_pool_t *pool, const char *text, size_t len,
                                 unsigned long serial)
{
    int unsure = 1;
    prism_json_scanner *scanner = scanner_of(ctx->env);
    cJSON *tree = scanner != NULL ? prism_json_tree(scanner, text, len, serial, pool_alloc, pool, &unsure) : NULL;
    if (tree != NULL || !unsure)
        return tree;
    cJSON **owned = h2o_mem_alloc_shared(pool, sizeof(cJSON *), delete_tree);
    *owned = parse_whole(text, len);
    return *owned;
}

cJSON *prism_ctx_json(prism_ctx *ctx)
{
    if (!ctx->json_parsed) {
        ctx->json_parsed = 1;
        h2o_iovec_t b = ctx->body;
        /* Right after the router's scan of the same body (the usual case),
         * the scanner still holds its reading. */
        unsigned long serial = ctx->scanned == PRISM_SCAN_OBJECT + 1 ? ctx->scan_serial : 0;
        if (b.base != NULL && b.len > 0)
            ctx->json = tree_of(scanner_of(ctx->env), b.base, b.len, serial);
    }
    return ctx->json;
}

const cJSON *prism_ctx_json_read(prism_ctx *ctx)
{
    if (ctx->json_parsed) /* a plugin asked for the tree, and may have changed it */
        return ctx->json;
    if (ctx->json_view == NULL && ctx->body.base != NULL && ctx->body.len > 0) {
        unsigned long serial = ctx->scanned == PRISM_SCAN_OBJECT + 1 ? ctx->scan_serial : 0;
        ctx->json_view = pool_tree_of(ctx, &ctx->req->pool, ctx->body.base, ctx->body.len, serial);
        if (ctx->json_view == NULL) /* not JSON: remembered as prism_ctx_json remembers it */
            return prism_ctx_json(ctx);
    }
    return ctx->json_view;
}

cJSON *prism_json_parse(prism_ctx *ctx, const char *text, size_t len)
{
    return text != NULL && len > 0 ? tree_of(scanner_of(ctx->env), text, len, 0) : NULL;
}

const cJSON *prism_json_read(prism_ctx *ctx, const char *text, size_t len)
{
    return text != NULL && len > 0 ? pool_tree_of(ctx, &ctx->req->pool, text, len, 0) : NULL;
}

/* A pool of its own, emptied before each read: h2o hands its chunk back to
 * the worker's recycler and takes it again, so a stream of a million events
 * reads them all in the same few kilobytes. */
struct prism_json_scratch {
    prism_ctx *ctx;
    h2o_mem_pool_t pool;
};

static void scratch_dispose(void *p)
{
    h2o_mem_clear_pool(&((prism_json_scratch *)p)->pool);
}

prism_json_scratch *prism_json_scratch_new(prism_ctx *ctx)
{
    prism_json_scratch *s = h2o_mem_alloc_shared(&ctx->req->pool, sizeof(*s), scratch_dispose);
    s->ctx = ctx;
    h2o_mem_init_pool(&s->pool);
    return s;
}

const cJSON *prism_json_scratch_read(prism_json_scratch *s, const char *text, size_t len)
{
    h2o_mem_clear_pool(&s->pool);
    return text != NULL && len > 0 ? pool_tree_of(s->ctx, &s->pool, text, len, 0) : NULL;
}

int prism_json_scratch_pick(prism_json_scratch *s, const char *text, size_t len, const prism_json_want *want,
                            prism_json_field *got, size_t n)
{
    prism_json_scanner *scanner = scanner_of(s->ctx->env);
    if (scanner == NULL || text == NULL || len == 0) {
        memset(got, 0, n * sizeof(*got));
        return -1;
    }
    return prism_json_pick(scanner, text, len, want, got, n);
}

static prism_scan_result scan_body(prism_ctx *ctx)
{
    if (ctx->scanned == 0) {
        prism_json_scanner *scanner = scanner_of(ctx->env);
        prism_scan_result r = PRISM_SCAN_UNSURE; /* no scanner (out of memory): cJSON decides */
        if (scanner != NULL)
            r = prism_json_scan(scanner, ctx->body.base ? ctx->body.base : "", ctx->body.len, pool_alloc,
                                &ctx->req->pool, &ctx->members, &ctx->nmembers, &ctx->scan_serial);
        if (r == PRISM_SCAN_NOMEM)
            r = PRISM_SCAN_UNSURE;
        /* simdjson refuses broken UTF-8 and raw control characters before it
         * reads a number; cJSON, which decides the rest, lets both by. */
        if (r == PRISM_SCAN_UNSURE &&
            prism_json_bytes_check(ctx->body.base ? ctx->body.base : "", ctx->body.len) != PRISM_JSON_BYTES_OK)
            r = PRISM_SCAN_INVALID;
        ctx->scanned = (int)r + 1;
    }
    return (prism_scan_result)(ctx->scanned - 1);
}

int prism_ctx_body_kind(prism_ctx *ctx)
{
    switch (scan_body(ctx)) {
    case PRISM_SCAN_OBJECT: return PRISM_BODY_OBJECT;
    case PRISM_SCAN_OTHER: return PRISM_BODY_OTHER;
    case PRISM_SCAN_INVALID: return PRISM_BODY_INVALID;
    default: break;
    }
    const cJSON *j = prism_ctx_json(ctx);
    return j == NULL ? PRISM_BODY_INVALID : cJSON_IsObject(j) ? PRISM_BODY_OBJECT : PRISM_BODY_OTHER;
}

/* The same description from a cJSON node, for bodies the scan left to cJSON. */
static prism_json_field field_of_node(const cJSON *v)
{
    prism_json_field f = {0};
    if (cJSON_IsNull(v))
        f.type = PRISM_JSON_NULL;
    else if (cJSON_IsFalse(v))
        f.type = PRISM_JSON_FALSE;
    else if (cJSON_IsTrue(v))
        f.type = PRISM_JSON_TRUE;
    else if (cJSON_IsNumber(v))
        f.type = PRISM_JSON_NUMBER, f.number = v->valuedouble;
    else if (cJSON_IsString(v))
        f.type = PRISM_JSON_STRING, f.string = v->valuestring, f.len = strlen(v->valuestring);
    else if (cJSON_IsArray(v) || cJSON_IsObject(v))
        f.type = cJSON_IsArray(v) ? PRISM_JSON_ARRAY : PRISM_JSON_OBJECT, f.count = (size_t)cJSON_GetArraySize(v);
    return f;
}

static prism_json_field field_in_tree(const cJSON *obj, const char *name)
{
    prism_json_field f = {0};
    unsigned times = 0;
    if (!cJSON_IsObject(obj))
        return f;
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        if (c->string == NULL || strcmp(c->string, name) != 0)
            continue;
        if (times++ == 0)
            f = field_of_node(c);
    }
    f.times = times;
    return f;
}

static prism_json_field field_in_scan(const prism_ctx *ctx, long parent, const char *name)
{
    prism_json_field f = {0};
    unsigned times = 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < ctx->nmembers; i++) {
        const prism_json_member *m = &ctx->members[i];
        if (m->parent != parent || m->key_len != n || memcmp(m->key, name, n) != 0)
            continue;
        if (times++ == 0)
            f = m->value;
    }
    f.times = times;
    return f;
}

/* The index of the first top-level member `name` that is an object; -2 when none. */
static long object_member(const prism_ctx *ctx, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < ctx->nmembers; i++) {
        const prism_json_member *m = &ctx->members[i];
        if (m->parent == -1 && m->key_len == n && memcmp(m->key, name, n) == 0)
            return m->value.type == PRISM_JSON_OBJECT ? (long)i : -2;
    }
    return -2;
}

prism_json_field prism_ctx_body_field(prism_ctx *ctx, const char *object, const char *name)
{
    prism_json_field none = {0};
    if (name == NULL)
        return none;
    switch (scan_body(ctx)) {
    case PRISM_SCAN_OBJECT: {
        long parent = object != NULL ? object_member(ctx, object) : -1;
        return parent == -2 ? none : field_in_scan(ctx, parent, name);
    }
    case PRISM_SCAN_UNSURE: {
        const cJSON *j = prism_ctx_json(ctx);
        return field_in_tree(object != NULL ? prism_json_get(j, object) : j, name);
    }
    default: return none;
    }
}
