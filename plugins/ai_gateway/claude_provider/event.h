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
 * rather than truncated into a colliding value. 0, or -1. */
static inline int ev_index(const cJSON *o, unsigned *out)
{
    const cJSON *v = ev_obj(o, "index");
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 2147483647.0))
        return -1;
    *out = (unsigned)v->valuedouble;
    return (double)*out == v->valuedouble ? 0 : -1;
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

static inline char *ev_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

#endif
