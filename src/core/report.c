/*
 * report.c - what a finished request leaves behind: one access log line and
 * its metrics. Runs when the request's memory is released, so it sees the
 * whole request: status, chain steps, upstream time, tokens, retries.
 *
 * The line names no key and no body: only ids, names, numbers.
 */
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "log.h"
#include "metrics.h"

static const char *error_kind(int err)
{
    switch (err) {
    case PRISM_UPSTREAM_ERR_DNS: return "dns";
    case PRISM_UPSTREAM_ERR_CONNECT: return "connect";
    case PRISM_UPSTREAM_ERR_TLS: return "tls";
    case PRISM_UPSTREAM_ERR_TIMEOUT: return "timeout";
    case PRISM_UPSTREAM_ERR_RESET: return "reset";
    case PRISM_UPSTREAM_OK: return NULL;
    default: return "other";
    }
}

/* The line is built by appending pieces; printf is kept out of it because
 * formatting each field with it cost more than the rest of a proxied
 * request's own work (see docs/BENCHMARKS.md, "profile"). */
typedef struct line {
    char buf[4096];
    size_t len;
} line;

static void put_n(line *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - 1 - l->len)
        n = sizeof(l->buf) - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Literal pieces and keys have their lengths counted by the compiler. */
#define put_lit(l, s) put_n((l), "" s, sizeof(s) - 1)
#define KEY(k)        ",\"" k "\":"

static void put_u64(line *l, uint64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_n(l, digits + i, sizeof(digits) - i);
}

static void put_i64(line *l, int64_t v)
{
    if (v < 0) {
        put_n(l, "-", 1);
        put_u64(l, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(l, (uint64_t)v);
    }
}

/* Client-supplied strings (a model name, a path) are cut to a sane length
 * so every field fits and the line stays one valid JSON object. */
#define MAX_FIELD 256

/* key_open is the key with the value's opening quote: ,"model":" */
static void put_str(line *l, const char *key_open, size_t key_len, const char *value)
{
    if (value == NULL)
        return;
    char cut[MAX_FIELD + 4];
    size_t n = strlen(value);
    if (n > MAX_FIELD) {
        memcpy(cut, value, MAX_FIELD);
        memcpy(cut + MAX_FIELD, "...", 4);
        value = cut;
        n = MAX_FIELD + 3;
    }
    put_n(l, key_open, key_len);
    l->len = prism_json_escape_n(l->buf, l->len, sizeof(l->buf) - 1, value, n);
    put_n(l, "\"", 1);
}

/* Milliseconds with three decimals, rounded to the microsecond: the digits
 * written backwards into one piece. */
static void put_ms(line *l, const char *key, size_t key_len, uint64_t ns)
{
    uint64_t us = (ns + 500) / 1000;
    char digits[32];
    size_t i = sizeof(digits);
    for (int k = 0; k < 3; k++, us /= 10)
        digits[--i] = (char)('0' + us % 10);
    digits[--i] = '.';
    do {
        digits[--i] = (char)('0' + us % 10);
        us /= 10;
    } while (us != 0);
    put_n(l, key, key_len);
    put_n(l, digits + i, sizeof(digits) - i);
}

#define PUT_STR(l, k, v) put_str((l), KEY(k) "\"", sizeof KEY(k), (v))
#define PUT_MS(l, k, ns) put_ms((l), KEY(k), sizeof KEY(k) - 1, (ns))

static void put_chain(line *l, const prism_ctx *ctx)
{
    put_lit(l, ",\"chain\":[");
    for (size_t i = 0; i < ctx->trace_count; i++) {
        if (i)
            put_lit(l, ",");
        put_lit(l, "\"");
        l->len = prism_json_escape(l->buf, l->len, sizeof(l->buf) - 64, ctx->trace[i].name);
        put_lit(l, "\"");
    }
    put_lit(l, "]");
}

static void access_json(const prism_ctx *ctx, uint64_t total_ns)
{
    line l;
    l.len = 0; /* not "= {0}": that would clear the whole 4 KB buffer on every request */
    char ts[40];
    size_t ts_len = prism_log_batch_timestamp(ctx->env->log, ts, sizeof(ts));
    put_lit(&l, "{\"ts\":\"");
    put_n(&l, ts, ts_len);
    put_lit(&l, "\",\"level\":\"info\",\"source\":\"access\"");
    PUT_STR(&l, "request_id", ctx->request_id);
    PUT_STR(&l, "method", prism_ctx_method(ctx));
    PUT_STR(&l, "path", prism_ctx_path(ctx));
    put_lit(&l, KEY("status"));
    put_i64(&l, ctx->status);
    PUT_STR(&l, "route", ctx->route ? ctx->route->path : NULL);
    if (ctx->route)
        put_chain(&l, ctx);
    PUT_STR(&l, "model", prism_ctx_get(ctx, "model"));
    PUT_STR(&l, "provider", prism_ctx_get(ctx, "provider"));
    PUT_STR(&l, "fallback_from", prism_ctx_get(ctx, "fallback_from"));
    if (ctx->streamed)
        put_lit(&l, KEY("stream") "true");
    else
        put_lit(&l, KEY("stream") "false");
    put_lit(&l, KEY("retries"));
    put_u64(&l, ctx->retries);
    PUT_MS(&l, "duration_ms", total_ns);
    if (ctx->upstream_ns > 0) {
        PUT_MS(&l, "upstream_ms", ctx->upstream_ns);
        PUT_MS(&l, "overhead_ms", total_ns > ctx->upstream_ns ? total_ns - ctx->upstream_ns : 0);
    }
    if (ctx->first_byte_ns > 0)
        PUT_MS(&l, "first_byte_ms", ctx->first_byte_ns);
    if (ctx->prompt_tokens >= 0) {
        put_lit(&l, KEY("prompt_tokens"));
        put_i64(&l, ctx->prompt_tokens);
        put_lit(&l, KEY("completion_tokens"));
        put_i64(&l, ctx->completion_tokens);
    }
    PUT_STR(&l, "upstream_error", error_kind(ctx->upstream_err));
    PUT_STR(&l, "client", ctx->gone ? "gone" : NULL);
    put_lit(&l, "}");
    prism_log_batch_add(ctx->env->log, l.buf, l.len);
}

static void access_text(const prism_ctx *ctx, uint64_t total_ns)
{
    const char *model = prism_ctx_get(ctx, "model"), *provider = prism_ctx_get(ctx, "provider");
    char line[4096];
    size_t n = prism_log_formatf(line, sizeof(line), PRISM_LOG_INFO, "access",
                                 "%s %s %s %d %.3fms model=%s provider=%s retries=%u", ctx->request_id,
                                 prism_ctx_method(ctx), prism_ctx_path(ctx), ctx->status, (double)total_ns / 1e6,
                                 model ? model : "-", provider ? provider : "-", ctx->retries);
    prism_log_batch_add(ctx->env->log, line, n);
}

static void record_metrics(prism_ctx *ctx, uint64_t total_ns)
{
    const char *names[PRISM_TRACE_MAX];
    double secs[PRISM_TRACE_MAX];
    uint64_t now = ctx->started_ns + total_ns;
    for (size_t i = 0; i < ctx->trace_count; i++) {
        names[i] = ctx->trace[i].name;
        uint64_t d = ctx->trace[i].dur_ns ? ctx->trace[i].dur_ns : now - ctx->trace[i].start_ns;
        secs[i] = (double)d / 1e9;
    }
    double upstream = ctx->upstream_ns ? (double)ctx->upstream_ns / 1e9 : -1;
    prism_request_record r = {
        .route = ctx->route ? ctx->route->path : "",
        .model = prism_ctx_get(ctx, "model"),
        .provider = prism_ctx_get(ctx, "provider"),
        .status = ctx->status,
        .duration_s = (double)total_ns / 1e9,
        .upstream_s = upstream,
        .ttft_s = ctx->streamed && ctx->first_byte_ns ? (double)ctx->first_byte_ns / 1e9 : -1,
        .overhead_s = (double)(total_ns > ctx->upstream_ns ? total_ns - ctx->upstream_ns : 0) / 1e9,
        .prompt_tokens = ctx->prompt_tokens,
        .completion_tokens = ctx->completion_tokens,
        .upstream_error = error_kind(ctx->upstream_err),
        .retries = ctx->retries,
        .fallback = prism_ctx_get(ctx, "fallback_from") != NULL,
        .step_count = ctx->trace_count,
        .step_names = names,
        .step_s = secs,
    };
    prism_metrics_record(ctx->env->metrics, &r);
}

void prism_ctx_report(prism_ctx *ctx)
{
    uint64_t total_ns = prism_now_ns() - ctx->started_ns;
    if (ctx->env->metrics != NULL)
        record_metrics(ctx, total_ns);
    if (!ctx->gen->cfg->log_access || prism_log_threshold() > PRISM_LOG_INFO)
        return;
    if (prism_log_is_json())
        access_json(ctx, total_ns);
    else
        access_text(ctx, total_ns);
}
