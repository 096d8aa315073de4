/*
 * event.h - reading an Anthropic stream event's fields, for the two stream
 * translators (stream.c: chat chunks; stream_responses.c: Responses
 * events). Nothing is trusted: a field of the wrong type reads as absent.
 */
#ifndef CLAUDE_EVENT_H
#define CLAUDE_EVENT_H

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "prism/plugin.h"
#include "stream.h" /* claude_pick_fn */

/* Token counts above this are nonsense; it also keeps sums exact in doubles. */
#define CLAUDE_MAX_TOKENS 1e15

/* A stream's token counts, as Anthropic reports them. */
typedef struct claude_counts {
    double input, cache_creation, cache_read, output;
} claude_counts;

static inline const cJSON *ev_obj(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? prism_json_get(o, key) : NULL;
}

static inline const char *ev_str(const cJSON *o, const char *key)
{
    const cJSON *v = ev_obj(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Block indexes are small non-negative integers; anything else is refused
 * rather than truncated into a colliding value. 1 when v is one. */
static inline int ev_index_ok(double v, unsigned *out)
{
    if (!(v >= 0 && v <= 2147483647.0))
        return 0;
    *out = (unsigned)v;
    return (double)*out == v;
}

/* An event's "index": 0, or -1. */
static inline int ev_index(const cJSON *o, unsigned *out)
{
    const cJSON *v = ev_obj(o, "index");
    return cJSON_IsNumber(v) && ev_index_ok(v->valuedouble, out) ? 0 : -1;
}

/* Usage counts are bookkeeping, not content: a bad one is ignored. */
static inline void ev_tokens(const cJSON *usage, const char *key, double *out)
{
    const cJSON *v = ev_obj(usage, key);
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= CLAUDE_MAX_TOKENS)
        *out = (double)(long long)v->valuedouble;
}

/* Anthropic's counts are cumulative, so the latest event wins. */
static inline void ev_counts_read(claude_counts *c, const cJSON *usage)
{
    ev_tokens(usage, "input_tokens", &c->input);
    ev_tokens(usage, "cache_creation_input_tokens", &c->cache_creation);
    ev_tokens(usage, "cache_read_input_tokens", &c->cache_read);
    ev_tokens(usage, "output_tokens", &c->output);
}

/* ---- content_block_delta ----
 * Nearly every event of a stream is one: a text, thinking, signature or
 * tool-input piece. Its fields come from the event's tree, or, where the
 * provider gives a picker, straight from the parser's reading of the text
 * with no tree built (about half the cost of the event). */

typedef struct claude_delta {
    int index_ok; /* a valid block index (ev_index) */
    unsigned index;
    const char *type; /* delta.type; these are NULL unless strings: */
    const char *text, *thinking, *signature, *partial_json;
} claude_delta;

enum { DP_TYPE, DP_INDEX, DP_DELTA, DP_DELTA_TYPE, DP_TEXT, DP_THINKING, DP_SIGNATURE, DP_PARTIAL, DP_COUNT };

static const prism_json_want claude_delta_want[DP_COUNT] = {
    {"type", sizeof "type" - 1, -1},
    {"index", sizeof "index" - 1, -1},
    {"delta", sizeof "delta" - 1, -1},
    {"type", sizeof "type" - 1, DP_DELTA},
    {"text", sizeof "text" - 1, DP_DELTA},
    {"thinking", sizeof "thinking" - 1, DP_DELTA},
    {"signature", sizeof "signature" - 1, DP_DELTA},
    {"partial_json", sizeof "partial_json" - 1, DP_DELTA},
};

static inline void ev_delta_of_tree(const cJSON *ev, claude_delta *d)
{
    const cJSON *delta = ev_obj(ev, "delta");
    d->index_ok = ev_index(ev, &d->index) == 0;
    d->type = ev_str(delta, "type");
    d->text = ev_str(delta, "text");
    d->thinking = ev_str(delta, "thinking");
    d->signature = ev_str(delta, "signature");
    d->partial_json = ev_str(delta, "partial_json");
}

static inline const char *ev_picked_str(const prism_json_field *f)
{
    return f->type == PRISM_JSON_STRING ? f->string : NULL;
}

/* The delta's fields, read as the tree would give them, when pick reads the
 * data and its type is content_block_delta: 0. Else -1, and the event is
 * read as a tree (whatever it is, or whatever is wrong with it). */
static inline int ev_pick_delta(claude_pick_fn *pick, void *data, const char *text, size_t len, claude_delta *d)
{
    prism_json_field got[DP_COUNT];
    if (pick(data, text, len, claude_delta_want, got, DP_COUNT) != 0)
        return -1;
    const char *type = ev_picked_str(&got[DP_TYPE]);
    if (type == NULL || strcmp(type, "content_block_delta") != 0)
        return -1;
    d->index_ok = got[DP_INDEX].type == PRISM_JSON_NUMBER && ev_index_ok(got[DP_INDEX].number, &d->index);
    d->type = ev_picked_str(&got[DP_DELTA_TYPE]);
    d->text = ev_picked_str(&got[DP_TEXT]);
    d->thinking = ev_picked_str(&got[DP_THINKING]);
    d->signature = ev_picked_str(&got[DP_SIGNATURE]);
    d->partial_json = ev_picked_str(&got[DP_PARTIAL]);
    return 0;
}

/* The JSON "type" is what Anthropic documents as authoritative; the SSE
 * event name only stands in when it is missing. */
static inline const char *ev_type(const cJSON *ev, const char *event)
{
    const char *type = ev_str(ev, "type");
    return type ? type : event ? event : "";
}

/* How a translator reads its events: deltas picked where a picker is set,
 * everything else as a tree (cJSON's own parse when no parser is set). */
typedef struct claude_reader {
    claude_parse_fn *parse;
    void *parse_data;
    claude_pick_fn *pick;
    void *pick_data;
} claude_reader;

/* One event: 1 with *d filled (a content_block_delta read without a tree),
 * else 0 with *ev its tree or NULL (not JSON); *owned is what to
 * cJSON_Delete after, NULL but for cJSON's own parse. */
static inline int ev_read(const claude_reader *r, const char *event, const char *data, size_t len, claude_delta *d,
                          const cJSON **ev, cJSON **owned)
{
    *ev = NULL;
    *owned = NULL;
    if (r->pick && event && strcmp(event, "content_block_delta") == 0 &&
        ev_pick_delta(r->pick, r->pick_data, data, len, d) == 0)
        return 1;
    if (r->parse)
        *ev = r->parse(r->parse_data, data, len);
    else
        *ev = *owned = claude_parse_exact(data, len);
    return 0;
}

static inline char *ev_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

#endif
