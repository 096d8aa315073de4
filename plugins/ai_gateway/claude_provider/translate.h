/*
 * translate.h - OpenAI Chat Completions <-> Anthropic Messages, as pure
 * functions (no I/O, no globals): what the unit tests and fuzzers call.
 *
 * Request:  OpenAI request JSON  -> Anthropic request body  (claude_request_from_openai)
 * Response: Anthropic message    -> OpenAI chat.completion  (claude_response_to_openai)
 * Errors:   Anthropic error body -> OpenAI error body + HTTP status (claude_error_to_openai)
 * docs/translation.md is the field-by-field table these implement.
 */
#ifndef CLAUDE_TRANSLATE_H
#define CLAUDE_TRANSLATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "prism/plugin.h" /* prism_json_print, prism_json_get */

/* obj's member key; JSON null counts as absent, as OpenAI clients send null
 * for options they leave unset. */
static inline const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_IsObject(obj) ? prism_json_get(obj, key) : NULL;
    return cJSON_IsNull(v) ? NULL : v;
}

/* v's text, or NULL when v is not a string. */
static inline const char *str_of(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct claude_options {
    int default_max_tokens; /* when the client gives neither max_tokens nor max_completion_tokens */
    /* reasoning_effort -> thinking.budget_tokens */
    int thinking_budget_low;
    int thinking_budget_medium;
    int thinking_budget_high;
} claude_options;

/* A client error found while translating (always a 4xx). */
typedef struct claude_error {
    int status;     /* 400 */
    char type[48];  /* "invalid_request_error" */
    char code[48];  /* "" for null */
    char param[96]; /* "" for null; e.g. "messages[2].tool_calls[0].function.arguments" */
    char message[384];
} claude_error;

/* What the response side must know about how the request was translated. */
typedef struct claude_request_info {
    int stream;              /* "stream": true */
    int include_usage;       /* stream_options.include_usage */
    int json_tool;           /* response_format was mapped to a forced tool: its input is the answer */
    char json_tool_name[65]; /* up to 64 characters, as Anthropic allows */
} claude_request_info;

/* The Anthropic request body (malloc'd, its length in *len), written
 * straight from `openai` with no tree in between. NULL with *err filled
 * when the request cannot be carried across (400), or when memory ran out
 * (500). */
char *claude_request_from_openai(const cJSON *openai, const claude_options *opt, claude_request_info *info, size_t *len,
                                 claude_error *err);

/* Token counts in OpenAI's terms: prompt includes the cached tokens and
 * the ones written to the cache, which Anthropic counts apart. */
typedef struct claude_usage {
    long long prompt, completion;
    long long cached;      /* cache_read_input_tokens */
    long long cache_write; /* cache_creation_input_tokens */
} claude_usage;

/* An Anthropic usage object's counts (0 for any absent or not a sane count). */
claude_usage claude_usage_of(const cJSON *usage);

/* The chat.completion text (malloc'd, its length in *len), written straight
 * from the message with no tree in between; `created` is the Unix time to
 * report; *usage (when not NULL) gets the counts. NULL with *err (status
 * 502) when the upstream body is not an Anthropic message, or 500 when
 * memory ran out. */
char *claude_response_to_openai(const cJSON *anthropic, const claude_request_info *info, long created,
                                claude_usage *usage, size_t *len, claude_error *err);

/* Maps an upstream error (status + raw body, which may be anything) to the
 * status to send and a malloc'd OpenAI error body (free with cJSON_free). */
int claude_error_to_openai(int upstream_status, const char *body, size_t len, char **out_json);

/* A tool call's fields up to its arguments, in the answer and in the first
 * streamed delta alike: "id":…,"type":"function","function":{"name":…;
 * the caller writes "arguments" and closes the function object. */
void claude_write_call_head(prism_json_writer *w, const char *id, const char *name);

/* Anthropic stop_reason -> OpenAI finish_reason ("stop" for unknown ones). */
const char *claude_finish_reason(const char *stop_reason, const claude_request_info *info);

/* Anthropic error type -> OpenAI error type and code (the table of
 * docs/translation.md); an empty or NULL type -> api_error/upstream_error. */
void claude_error_names(const char *anthropic_type, const char **type, const char **code);

/* Anthropic usage object -> OpenAI usage object (new cJSON object). */
cJSON *claude_usage_to_openai(const cJSON *usage);

#endif
