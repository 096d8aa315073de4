/*
 * translate_response.c - an Anthropic Messages answer (or error) -> an
 * OpenAI chat.completion (or error body), as pure functions.
 *
 * The upstream is trusted no more than a client: a body that is not an
 * Anthropic message becomes a 502, never a crash. docs/translation.md is the
 * field-by-field table this implements.
 */
#include "translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ODD_BODY_CHARS 200 /* how much of a non-JSON error body a client gets to see */

/* What the content blocks of one Anthropic message add up to: read in a
 * first pass that also checks them, so the answer is written in one go. */
typedef struct collected {
    int text;                 /* text blocks */
    int thinking;             /* thinking blocks (with text) */
    int thinking_blocks;      /* thinking and redacted_thinking blocks */
    int tool_calls;           /* tool_use blocks that become tool calls */
    const cJSON *json_answer; /* the block of the forced json tool's first call, if any */
} collected;

static void protocol_error(claude_error *err, const char *why)
{
    memset(err, 0, sizeof(*err));
    err->status = 502;
    snprintf(err->type, sizeof(err->type), "api_error");
    snprintf(err->code, sizeof(err->code), "upstream_protocol_error");
    snprintf(err->message, sizeof(err->message), "Anthropic answered with something that is not a message: %s", why);
}

/* ---- finish reason and usage ---- */

void claude_write_call_head(prism_json_writer *w, const char *id, const char *name)
{
    PRISM_JSON_KEY(w, "id");
    prism_json_string(w, id, strlen(id));
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "function");
    PRISM_JSON_KEY(w, "function");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "name");
    prism_json_string(w, name, strlen(name));
}

const char *claude_finish_reason(const char *stop_reason, const claude_request_info *info)
{
    if (stop_reason == NULL)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0 || strcmp(stop_reason, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0) /* the forced json tool is the answer, not a call */
        return info && info->json_tool ? "stop" : "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn and anything new */
}

/* A token count, or 0 when absent or not a sane count. */
static long long count_of(const cJSON *usage, const char *key)
{
    const cJSON *v = field(usage, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e15))
        return 0;
    return (long long)v->valuedouble;
}

claude_usage claude_usage_of(const cJSON *usage)
{
    claude_usage u = {.cache_write = count_of(usage, "cache_creation_input_tokens"),
                      .cached = count_of(usage, "cache_read_input_tokens"),
                      .completion = count_of(usage, "output_tokens")};
    /* Anthropic's input_tokens excludes cached ones; OpenAI's prompt_tokens includes them. */
    u.prompt = count_of(usage, "input_tokens") + u.cache_write + u.cached;
    return u;
}

cJSON *claude_usage_to_openai(const cJSON *usage)
{
    claude_usage u = claude_usage_of(usage);
    cJSON *out = cJSON_CreateObject();
    cJSON *details = cJSON_CreateObject();
    if (!prism_json_add(out, "prompt_tokens", cJSON_CreateNumber((double)u.prompt)) ||
        !prism_json_add(out, "completion_tokens", cJSON_CreateNumber((double)u.completion)) ||
        !prism_json_add(out, "total_tokens", cJSON_CreateNumber((double)(u.prompt + u.completion))) ||
        !prism_json_add(details, "cached_tokens", cJSON_CreateNumber((double)u.cached)) ||
        !cJSON_AddItemToObjectCS(out, "prompt_tokens_details", details)) {
        cJSON_Delete(details);
        cJSON_Delete(out);
        return NULL;
    }
    if (u.cache_write > 0 &&
        !prism_json_add(out, "cache_creation_input_tokens", cJSON_CreateNumber((double)u.cache_write))) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* The same object as claude_usage_to_openai, written. */
static void write_usage(prism_json_writer *w, const claude_usage *u)
{
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "prompt_tokens");
    prism_json_number(w, (double)u->prompt);
    PRISM_JSON_KEY(w, "completion_tokens");
    prism_json_number(w, (double)u->completion);
    PRISM_JSON_KEY(w, "total_tokens");
    prism_json_number(w, (double)(u->prompt + u->completion));
    PRISM_JSON_KEY(w, "prompt_tokens_details");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "cached_tokens");
    prism_json_number(w, (double)u->cached);
    prism_json_object_end(w);
    if (u->cache_write > 0) {
        PRISM_JSON_KEY(w, "cache_creation_input_tokens");
        prism_json_number(w, (double)u->cache_write);
    }
    prism_json_object_end(w);
}

/* ---- content blocks ---- */

static int block_is(const cJSON *block, const char *type)
{
    const char *t = str_of(field(block, "type"));
    return t != NULL && strcmp(t, type) == 0;
}

static int check_tool_use(collected *c, const cJSON *block, const claude_request_info *info, claude_error *err)
{
    const char *name = str_of(field(block, "name"));
    if (str_of(field(block, "id")) == NULL || name == NULL) {
        protocol_error(err, "a tool_use block without a string id and name.");
        return -1;
    }
    if (info && info->json_tool && c->json_answer == NULL && strcmp(name, info->json_tool_name) == 0)
        c->json_answer = block; /* the first call of the forced tool is the answer */
    else
        c->tool_calls++;
    return 0;
}

/* Unknown block types (server tools and whatever comes next) are skipped. */
static int check_block(collected *c, const cJSON *block, const claude_request_info *info, claude_error *err)
{
    const char *type = str_of(field(block, "type"));
    if (type == NULL) {
        protocol_error(err, "a content block without a string type.");
        return -1;
    }
    if (strcmp(type, "text") == 0) {
        if (str_of(field(block, "text")) == NULL) {
            protocol_error(err, "a text block without a string text.");
            return -1;
        }
        c->text++;
    } else if (strcmp(type, "tool_use") == 0) {
        return check_tool_use(c, block, info, err);
    } else if (strcmp(type, "thinking") == 0) {
        if (str_of(field(block, "thinking")) == NULL) {
            protocol_error(err, "a thinking block without a string thinking.");
            return -1;
        }
        c->thinking++;
        c->thinking_blocks++;
    } else if (strcmp(type, "redacted_thinking") == 0) {
        c->thinking_blocks++;
    }
    return 0;
}

/* The blocks of one type, their `key` strings joined as one JSON string
 * (null when there is no such block). */
static void write_joined(prism_json_writer *w, const cJSON *content, const char *type, const char *key, int count)
{
    if (count == 0) {
        prism_json_null(w);
        return;
    }
    prism_json_string_begin(w);
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        const cJSON *text = field(block, key);
        if (block_is(block, type) && cJSON_IsString(text))
            prism_json_string_part(w, text->valuestring, strlen(text->valuestring));
    }
    prism_json_string_end(w);
}

/* A tool's input as the string OpenAI's arguments are: a call without
 * input took no arguments. */
static void write_arguments(prism_json_writer *w, const cJSON *input)
{
    size_t len = 0;
    char *args = input ? prism_json_print(input, &len) : NULL;
    if (input == NULL)
        PRISM_JSON_LIT(w, "{}");
    else if (args == NULL)
        prism_json_value(w, NULL); /* fails the writer: out of memory */
    else
        prism_json_string(w, args, len);
    free(args);
}

static void write_tool_calls(prism_json_writer *w, const cJSON *content, const collected *c)
{
    PRISM_JSON_KEY(w, "tool_calls");
    prism_json_array_begin(w);
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        if (!block_is(block, "tool_use") || block == c->json_answer)
            continue;
        const char *id = str_of(field(block, "id")), *name = str_of(field(block, "name"));
        prism_json_object_begin(w);
        claude_write_call_head(w, id, name);
        PRISM_JSON_KEY(w, "arguments");
        write_arguments(w, field(block, "input"));
        prism_json_object_end(w);
        prism_json_object_end(w);
    }
    prism_json_array_end(w);
}

/* Handed back as returned: the client sends them again next turn and the
 * signature covers them. */
static void write_thinking(prism_json_writer *w, const cJSON *content, const collected *c)
{
    PRISM_JSON_KEY(w, "reasoning_content");
    write_joined(w, content, "thinking", "thinking", c->thinking);
    PRISM_JSON_KEY(w, "thinking_blocks");
    prism_json_array_begin(w);
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        if (block_is(block, "thinking") || block_is(block, "redacted_thinking"))
            prism_json_value(w, block);
    }
    prism_json_array_end(w);
}

/* ---- the chat.completion ---- */

static void write_message(prism_json_writer *w, const cJSON *content, const collected *c)
{
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "role");
    PRISM_JSON_LIT(w, "assistant");
    PRISM_JSON_KEY(w, "content");
    if (c->json_answer) /* the forced tool's input is the answer; any text beside it would break the JSON */
        write_arguments(w, field(c->json_answer, "input"));
    else
        write_joined(w, content, "text", "text", c->text);
    PRISM_JSON_KEY(w, "refusal");
    prism_json_null(w);
    if (c->tool_calls > 0)
        write_tool_calls(w, content, c);
    if (c->thinking_blocks > 0)
        write_thinking(w, content, c);
    prism_json_object_end(w);
}

static void write_completion(prism_json_writer *w, const cJSON *anthropic, const collected *c, const claude_usage *u,
                             const claude_request_info *info, long created)
{
    const char *id = str_of(field(anthropic, "id")), *model = str_of(field(anthropic, "model"));
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "id");
    prism_json_string(w, id, strlen(id));
    PRISM_JSON_KEY(w, "object");
    PRISM_JSON_LIT(w, "chat.completion");
    PRISM_JSON_KEY(w, "created");
    prism_json_number(w, (double)created);
    PRISM_JSON_KEY(w, "model");
    prism_json_string(w, model ? model : "", model ? strlen(model) : 0);
    PRISM_JSON_KEY(w, "choices");
    prism_json_array_begin(w);
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "index");
    prism_json_number(w, 0);
    PRISM_JSON_KEY(w, "message");
    write_message(w, field(anthropic, "content"), c);
    PRISM_JSON_KEY(w, "logprobs");
    prism_json_null(w);
    PRISM_JSON_KEY(w, "finish_reason");
    const char *finish = claude_finish_reason(str_of(field(anthropic, "stop_reason")), info);
    prism_json_string(w, finish, strlen(finish));
    prism_json_object_end(w);
    prism_json_array_end(w);
    PRISM_JSON_KEY(w, "usage");
    write_usage(w, u);
    prism_json_object_end(w);
}

static int check_message(const cJSON *a, claude_error *err)
{
    const char *type = str_of(field(a, "type"));
    if (!cJSON_IsObject(a))
        protocol_error(err, "the body is not a JSON object.");
    else if (field(a, "type") && (type == NULL || strcmp(type, "message") != 0))
        protocol_error(err, "its type is not \"message\".");
    else if (str_of(field(a, "id")) == NULL)
        protocol_error(err, "it has no string id.");
    else if (!cJSON_IsArray(field(a, "content")))
        protocol_error(err, "it has no content array.");
    else
        return 0;
    return -1;
}

char *claude_response_to_openai(const cJSON *anthropic, const claude_request_info *info, long created,
                                claude_usage *usage, size_t *len, claude_error *err)
{
    memset(err, 0, sizeof(*err));
    if (check_message(anthropic, err) != 0)
        return NULL;
    collected c = {0};
    const cJSON *block;
    cJSON_ArrayForEach(block, field(anthropic, "content"))
    {
        if (check_block(&c, block, info, err) != 0)
            return NULL;
    }
    claude_usage u = claude_usage_of(field(anthropic, "usage"));
    prism_json_writer *w = prism_json_writer_new();
    if (w != NULL)
        write_completion(w, anthropic, &c, &u, info, created);
    char *text = prism_json_writer_finish(w, len);
    if (text == NULL) { /* out of memory: not the upstream's fault */
        err->status = 500;
        snprintf(err->type, sizeof(err->type), "api_error");
        snprintf(err->code, sizeof(err->code), "internal_error");
        snprintf(err->message, sizeof(err->message), "Out of memory while translating Anthropic's answer.");
    } else if (usage != NULL) {
        *usage = u;
    }
    return text;
}

/* ---- errors ---- */

typedef struct error_kind {
    const char *anthropic_type;
    int status;
    const char *openai_type;
    const char *code;
} error_kind;

/* Where OpenAI has its own names for an error (a bad key, an unknown model),
 * the client gets those, so its error handling works for either provider. */
static const error_kind ERROR_KINDS[] = {
    {"invalid_request_error", 400, "invalid_request_error", "invalid_request_error"},
    {"authentication_error", 401, "invalid_request_error", "invalid_api_key"},
    {"permission_error", 403, "permission_error", "permission_error"},
    {"not_found_error", 404, "invalid_request_error", "not_found"}, /* "model: ..." -> model_not_found */
    {"request_too_large", 413, "request_too_large", "request_too_large"},
    {"rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"},
    {"api_error", 500, "api_error", "api_error"},
    {"overloaded_error", 503, "api_error", "overloaded"}, /* Anthropic's 529 is not a status clients know */
};

void claude_error_names(const char *anthropic_type, const char **type, const char **code)
{
    if (anthropic_type == NULL || anthropic_type[0] == '\0') {
        *type = "api_error";
        *code = "upstream_error";
        return;
    }
    for (size_t i = 0; i < sizeof(ERROR_KINDS) / sizeof(ERROR_KINDS[0]); i++) {
        if (strcmp(anthropic_type, ERROR_KINDS[i].anthropic_type) == 0) {
            *type = ERROR_KINDS[i].openai_type;
            *code = ERROR_KINDS[i].code;
            return;
        }
    }
    *type = *code = anthropic_type;
}

/* The status for an error type the table does not know. */
static int fallback_status(int upstream_status)
{
    if (upstream_status == 529)
        return 503;
    return upstream_status >= 400 && upstream_status <= 599 ? upstream_status : 502;
}

static char *error_body(const char *message, const char *type, const char *code)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();
    char *json = NULL;
    if (cJSON_AddItemToObjectCS(root, "error", e)) {
        if (prism_json_add(e, "message", cJSON_CreateString(message)) &&
            prism_json_add(e, "type", cJSON_CreateString(type)) && prism_json_add(e, "param", cJSON_CreateNull()) &&
            prism_json_add(e, "code", cJSON_CreateString(code)))
            json = cJSON_PrintUnformatted(root);
    } else {
        cJSON_Delete(e);
    }
    cJSON_Delete(root);
    return json;
}

/* "Anthropic answered HTTP <status>." and up to ODD_BODY_CHARS printable
 * ASCII characters of the body (control and non-ASCII bytes are skipped, so
 * the text is always valid in a JSON string and a log line). */
static void odd_message(char *out, size_t outlen, int status, const char *body, size_t len)
{
    int n = snprintf(out, outlen, "Anthropic answered HTTP %d.", status);
    size_t at = n > 0 && (size_t)n < outlen ? (size_t)n : 0, kept = 0;
    for (size_t i = 0; body && i < len && kept < ODD_BODY_CHARS && at + 2 < outlen; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        if (ch < 0x20 || ch > 0x7e || (ch == ' ' && (kept == 0 || out[at - 1] == ' ')))
            continue; /* unprintable, leading or repeated space */
        if (kept++ == 0)
            out[at++] = ' ';
        out[at++] = (char)ch;
    }
    if (kept > 0 && out[at - 1] == ' ')
        at--;
    out[at] = '\0';
}

int claude_error_to_openai(int upstream_status, const char *body, size_t len, char **out_json)
{
    cJSON *parsed = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = field(parsed, "error");
    const char *type = str_of(field(e, "type")), *message = str_of(field(e, "message"));
    int status;
    if (type && type[0]) {
        const error_kind *kind = NULL;
        for (size_t i = 0; i < sizeof(ERROR_KINDS) / sizeof(ERROR_KINDS[0]); i++)
            if (strcmp(ERROR_KINDS[i].anthropic_type, type) == 0)
                kind = &ERROR_KINDS[i];
        char fallback[64];
        snprintf(fallback, sizeof(fallback), "Anthropic answered HTTP %d.", upstream_status);
        status = kind ? kind->status : fallback_status(upstream_status);
        const char *code = kind ? kind->code : type;
        if (kind && kind->status == 404 && message && strncmp(message, "model:", 6) == 0)
            code = "model_not_found"; /* how Anthropic names an unknown model */
        *out_json = error_body(message ? message : fallback, kind ? kind->openai_type : type, code);
    } else {
        char text[64 + ODD_BODY_CHARS + 2];
        odd_message(text, sizeof(text), upstream_status, body, len);
        status = fallback_status(upstream_status);
        *out_json = error_body(text, status < 500 ? "invalid_request_error" : "api_error", "upstream_error");
    }
    cJSON_Delete(parsed);
    return status;
}
