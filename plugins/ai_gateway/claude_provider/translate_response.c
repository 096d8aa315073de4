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

/* A growable string for the concatenated text and thinking blocks. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    int used; /* at least one block contributed, even an empty one */
} text_buf;

/* What the content blocks of one Anthropic message add up to. */
typedef struct collected {
    text_buf text, reasoning;
    cJSON *tool_calls;      /* OpenAI tool_calls, NULL until the first */
    cJSON *thinking_blocks; /* as returned, NULL until the first */
    char *json_answer;      /* the forced json tool's input, serialised (free) */
    int oom;
} collected;

static void protocol_error(claude_error *err, const char *why)
{
    memset(err, 0, sizeof(*err));
    err->status = 502;
    snprintf(err->type, sizeof(err->type), "api_error");
    snprintf(err->code, sizeof(err->code), "upstream_protocol_error");
    snprintf(err->message, sizeof(err->message), "Anthropic answered with something that is not a message: %s", why);
}

static int text_append(text_buf *b, const char *s)
{
    size_t n = strlen(s);
    b->used = 1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *data = realloc(b->data, cap);
        if (data == NULL)
            return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
    return 0;
}

/* ---- finish reason and usage ---- */

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
static double count_of(const cJSON *usage, const char *key)
{
    const cJSON *v = field(usage, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e15))
        return 0;
    return (double)(long long)v->valuedouble;
}

cJSON *claude_usage_to_openai(const cJSON *usage)
{
    double input = count_of(usage, "input_tokens");
    double cache_write = count_of(usage, "cache_creation_input_tokens");
    double cache_read = count_of(usage, "cache_read_input_tokens");
    double output = count_of(usage, "output_tokens");
    /* Anthropic's input_tokens excludes cached ones; OpenAI's prompt_tokens includes them. */
    double prompt = input + cache_write + cache_read;
    cJSON *out = cJSON_CreateObject();
    cJSON *details = cJSON_CreateObject();
    if (!prism_json_add(out, "prompt_tokens", cJSON_CreateNumber(prompt)) ||
        !prism_json_add(out, "completion_tokens", cJSON_CreateNumber(output)) ||
        !prism_json_add(out, "total_tokens", cJSON_CreateNumber(prompt + output)) ||
        !prism_json_add(details, "cached_tokens", cJSON_CreateNumber(cache_read)) ||
        !cJSON_AddItemToObjectCS(out, "prompt_tokens_details", details)) {
        cJSON_Delete(details);
        cJSON_Delete(out);
        return NULL;
    }
    if (cache_write > 0 && !prism_json_add(out, "cache_creation_input_tokens", cJSON_CreateNumber(cache_write))) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* ---- content blocks ---- */

static cJSON *tool_call_of(const char *id, const char *name, const char *arguments)
{
    cJSON *call = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (!prism_json_add(call, "id", cJSON_CreateString(id)) ||
        !prism_json_add(call, "type", cJSON_CreateString("function")) ||
        !prism_json_add(fn, "name", cJSON_CreateString(name)) ||
        !prism_json_add(fn, "arguments", cJSON_CreateString(arguments)) ||
        !cJSON_AddItemToObjectCS(call, "function", fn)) {
        cJSON_Delete(fn);
        cJSON_Delete(call);
        return NULL;
    }
    return call;
}

static int append_to(cJSON **list, cJSON *item)
{
    if (*list == NULL)
        *list = cJSON_CreateArray();
    if (item == NULL || *list == NULL || !cJSON_AddItemToArray(*list, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

static int collect_tool_use(collected *c, const cJSON *block, const claude_request_info *info, claude_error *err)
{
    const char *id = str_of(field(block, "id")), *name = str_of(field(block, "name"));
    const cJSON *input = field(block, "input");
    if (id == NULL || name == NULL) {
        protocol_error(err, "a tool_use block without a string id and name.");
        return -1;
    }
    cJSON *empty = input ? NULL : cJSON_CreateObject(); /* a call without input took no arguments */
    char *args = prism_json_print(input ? input : empty, NULL);
    cJSON_Delete(empty);
    if (args == NULL) {
        c->oom = 1;
        return 0;
    }
    if (info && info->json_tool && c->json_answer == NULL && strcmp(name, info->json_tool_name) == 0) {
        c->json_answer = args; /* the first call of the forced tool is the answer */
        return 0;
    }
    if (append_to(&c->tool_calls, tool_call_of(id, name, args)) != 0)
        c->oom = 1;
    free(args);
    return 0;
}

static int collect_thinking(collected *c, const cJSON *block, const char *type, claude_error *err)
{
    if (strcmp(type, "thinking") == 0) {
        const char *thinking = str_of(field(block, "thinking"));
        if (thinking == NULL) {
            protocol_error(err, "a thinking block without a string thinking.");
            return -1;
        }
        if (text_append(&c->reasoning, thinking) != 0)
            c->oom = 1;
    }
    /* Handed back as returned: the client sends them again next turn and the signature covers them. */
    if (append_to(&c->thinking_blocks, cJSON_Duplicate(block, 1)) != 0)
        c->oom = 1;
    return 0;
}

/* Unknown block types (server tools and whatever comes next) are skipped. */
static int collect_block(collected *c, const cJSON *block, const claude_request_info *info, claude_error *err)
{
    const char *type = str_of(field(block, "type"));
    if (type == NULL) {
        protocol_error(err, "a content block without a string type.");
        return -1;
    }
    if (strcmp(type, "text") == 0) {
        const char *text = str_of(field(block, "text"));
        if (text == NULL) {
            protocol_error(err, "a text block without a string text.");
            return -1;
        }
        if (text_append(&c->text, text) != 0)
            c->oom = 1;
        return 0;
    }
    if (strcmp(type, "tool_use") == 0)
        return collect_tool_use(c, block, info, err);
    if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)
        return collect_thinking(c, block, type, err);
    return 0;
}

static void collected_free(collected *c)
{
    free(c->text.data);
    free(c->reasoning.data);
    cJSON_Delete(c->tool_calls);
    cJSON_Delete(c->thinking_blocks);
    free(c->json_answer);
}

/* ---- the chat.completion ---- */

/* key: a string literal (not copied). */
static int add_text_or_null(cJSON *obj, const char *key, const text_buf *b)
{
    if (!b->used)
        return prism_json_add(obj, key, cJSON_CreateNull()) != NULL;
    return prism_json_add(obj, key, cJSON_CreateString(b->data ? b->data : "")) != NULL;
}

/* Moves the collected lists into the message (c no longer owns them). */
static cJSON *message_of(collected *c)
{
    cJSON *msg = cJSON_CreateObject();
    int ok = prism_json_add(msg, "role", cJSON_CreateString("assistant")) != NULL;
    if (c->json_answer) /* the forced tool's input is the answer; any text beside it would break the JSON */
        ok = ok && prism_json_add(msg, "content", cJSON_CreateString(c->json_answer)) != NULL;
    else
        ok = ok && add_text_or_null(msg, "content", &c->text);
    ok = ok && prism_json_add(msg, "refusal", cJSON_CreateNull()) != NULL;
    if (ok && c->tool_calls) {
        ok = cJSON_AddItemToObjectCS(msg, "tool_calls", c->tool_calls);
        c->tool_calls = ok ? NULL : c->tool_calls;
    }
    if (ok && c->thinking_blocks) {
        ok = add_text_or_null(msg, "reasoning_content", &c->reasoning) &&
             cJSON_AddItemToObjectCS(msg, "thinking_blocks", c->thinking_blocks);
        c->thinking_blocks = ok ? NULL : c->thinking_blocks;
    }
    if (!ok) {
        cJSON_Delete(msg);
        return NULL;
    }
    return msg;
}

static cJSON *choice_of(cJSON *message, const cJSON *anthropic, const claude_request_info *info)
{
    cJSON *choice = cJSON_CreateObject();
    const char *finish = claude_finish_reason(str_of(field(anthropic, "stop_reason")), info);
    if (!prism_json_add(choice, "index", cJSON_CreateNumber(0)) ||
        !cJSON_AddItemToObjectCS(choice, "message", message)) {
        cJSON_Delete(message);
        cJSON_Delete(choice);
        return NULL;
    }
    if (!prism_json_add(choice, "logprobs", cJSON_CreateNull()) ||
        !prism_json_add(choice, "finish_reason", cJSON_CreateString(finish))) {
        cJSON_Delete(choice);
        return NULL;
    }
    return choice;
}

static cJSON *completion_of(const cJSON *anthropic, cJSON *choice, long created)
{
    cJSON *out = cJSON_CreateObject(), *choices = cJSON_CreateArray();
    const char *model = str_of(field(anthropic, "model"));
    int ok = cJSON_AddItemToArray(choices, choice);
    if (!ok)
        cJSON_Delete(choice);
    ok = ok && prism_json_add(out, "id", cJSON_CreateString(field(anthropic, "id")->valuestring)) &&
         prism_json_add(out, "object", cJSON_CreateString("chat.completion")) &&
         prism_json_add(out, "created", cJSON_CreateNumber((double)created)) &&
         prism_json_add(out, "model", cJSON_CreateString(model ? model : ""));
    if (ok && cJSON_AddItemToObjectCS(out, "choices", choices))
        choices = NULL;
    else
        ok = 0;
    cJSON_Delete(choices);
    cJSON *usage = ok ? claude_usage_to_openai(field(anthropic, "usage")) : NULL;
    if (usage == NULL || !cJSON_AddItemToObjectCS(out, "usage", usage)) {
        cJSON_Delete(usage);
        cJSON_Delete(out);
        return NULL;
    }
    return out;
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

cJSON *claude_response_to_openai(const cJSON *anthropic, const claude_request_info *info, long created,
                                 claude_error *err)
{
    memset(err, 0, sizeof(*err));
    if (check_message(anthropic, err) != 0)
        return NULL;
    collected c = {0};
    const cJSON *block;
    cJSON_ArrayForEach(block, field(anthropic, "content"))
    {
        if (collect_block(&c, block, info, err) != 0 || c.oom)
            break;
    }
    cJSON *out = NULL;
    if (err->status == 0 && !c.oom) {
        cJSON *message = message_of(&c);
        cJSON *choice = message ? choice_of(message, anthropic, info) : NULL;
        out = choice ? completion_of(anthropic, choice, created) : NULL;
    }
    collected_free(&c);
    if (out == NULL && err->status == 0) { /* out of memory: not the upstream's fault */
        err->status = 500;
        snprintf(err->type, sizeof(err->type), "api_error");
        snprintf(err->code, sizeof(err->code), "internal_error");
        snprintf(err->message, sizeof(err->message), "Out of memory while translating Anthropic's answer.");
    }
    return out;
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
