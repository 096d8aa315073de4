/*
 * translate_responses.c - the Responses API's request and Response on
 * Claude: a Responses request -> the Chat Completions request it asks for
 * (translate_request.c takes that to Anthropic), and an Anthropic message
 * -> a Response.
 *
 * No conversation is kept here: previous_response_id and background runs
 * are refused with a 400 that says what to send instead; an item_reference
 * is read from the items the provider keeps (item_store.h). Claude's thinking is a reasoning item whose summary is the
 * thinking and whose encrypted_content is the block's signature (or a
 * redacted block's data), so a client that sends its output back, as tool
 * loops do, gives Claude its thinking blocks back as it requires.
 */
#include "responses.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv {
    const cJSON *in;
    cJSON *messages;
    claude_error *err;
    int oom;
    claude_item_lookup *lookup;
    void *lookup_data;
    claude_rsp_origins *origins; /* where each chat message came from, or NULL */
} conv;

static int is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

__attribute__((format(printf, 4, 5))) static int fail(conv *c, const char *code, const char *why, const char *param_fmt,
                                                      ...)
{
    claude_error *e = c->err;
    memset(e, 0, sizeof(*e));
    va_list ap;
    va_start(ap, param_fmt);
    vsnprintf(e->param, sizeof(e->param), param_fmt, ap);
    va_end(ap);
    e->status = 400;
    snprintf(e->type, sizeof(e->type), "invalid_request_error");
    snprintf(e->code, sizeof(e->code), "%s", code);
    if (e->param[0])
        snprintf(e->message, sizeof(e->message), "Invalid '%s': %s", e->param, why);
    else
        snprintf(e->message, sizeof(e->message), "%s", why);
    return -1;
}

/* Adds to the tree being built; a failed allocation is noted and reported
 * once, at the end. */
static cJSON *put(conv *c, cJSON *obj, const char *key, cJSON *item)
{
    if (obj == NULL || item == NULL || prism_json_add(obj, key, item) == NULL) {
        if (obj == NULL)
            cJSON_Delete(item);
        c->oom = 1;
        return NULL;
    }
    return item;
}

static cJSON *push(conv *c, cJSON *arr, cJSON *item)
{
    if (arr == NULL || item == NULL || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        c->oom = 1;
        return NULL;
    }
    return item;
}

static cJSON *copy(conv *c, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);
    if (d == NULL)
        c->oom = 1;
    return d;
}

static void put_str(conv *c, cJSON *obj, const char *key, const char *s)
{
    put(c, obj, key, cJSON_CreateString(s));
}

/* ---- input items ---- */

static int text_part(conv *c, cJSON *out, const cJSON *p, const char *key, const char *where)
{
    const char *text = str_of(field(p, key));
    if (text == NULL)
        return fail(c, "invalid_type", "expected a string.", "%s.%s", where, key);
    put_str(c, out, "type", "text");
    put_str(c, out, "text", text);
    return 0;
}

static int image_part(conv *c, cJSON *out, const cJSON *p, const char *where)
{
    const char *url = str_of(field(p, "image_url"));
    if (url == NULL)
        return fail(c, "unsupported_parameter",
                    "Claude takes images given by image_url (a URL or a data: URL), not by file_id.", "%s.image_url",
                    where);
    put_str(c, out, "type", "image_url");
    cJSON *img = put(c, out, "image_url", cJSON_CreateObject());
    put_str(c, img, "url", url);
    return 0;
}

static int file_part(conv *c, cJSON *out, const cJSON *p, const char *where)
{
    const char *data = str_of(field(p, "file_data"));
    if (data == NULL)
        return fail(c, "unsupported_parameter", "Claude takes files given inline as file_data, not by id or URL.",
                    "%s.file_data", where);
    put_str(c, out, "type", "file");
    cJSON *file = put(c, out, "file", cJSON_CreateObject());
    put_str(c, file, "file_data", data);
    const char *name = str_of(field(p, "filename"));
    if (name != NULL)
        put_str(c, file, "filename", name);
    return 0;
}

/* One content part of an input item -> its Chat Completions part. */
static int part_of(conv *c, cJSON *parts, const cJSON *p, const char *where)
{
    const char *type = str_of(field(p, "type"));
    if (type == NULL)
        return fail(c, "invalid_type", "expected a content part object with a string type.", "%s", where);
    cJSON *out = push(c, parts, cJSON_CreateObject());
    if (out == NULL)
        return 0; /* reported as out of memory */
    if (is(type, "input_text") || is(type, "output_text"))
        return text_part(c, out, p, "text", where);
    if (is(type, "refusal"))
        return text_part(c, out, p, "refusal", where);
    if (is(type, "input_image"))
        return image_part(c, out, p, where);
    if (is(type, "input_file"))
        return file_part(c, out, p, where);
    return fail(c, "invalid_value", "expected input_text, output_text, refusal, input_image or input_file.", "%s.type",
                where);
}

/* A string, or an array of content parts, as a message's content. */
static int content_of(conv *c, cJSON *msg, const cJSON *content, const char *where)
{
    if (cJSON_IsString(content)) {
        put(c, msg, "content", copy(c, content));
        return 0;
    }
    if (!cJSON_IsArray(content))
        return fail(c, "invalid_type", "expected a string or an array of content parts.", "%s", where);
    cJSON *parts = put(c, msg, "content", cJSON_CreateArray());
    const cJSON *p;
    int k = 0;
    cJSON_ArrayForEach(p, content)
    {
        char at[96];
        snprintf(at, sizeof(at), "%s[%d]", where, k++);
        if (part_of(c, parts, p, at) != 0)
            return -1;
    }
    return 0;
}

static int message_item(conv *c, const cJSON *it, int i)
{
    const char *role = str_of(field(it, "role"));
    if (role == NULL)
        return fail(c, "invalid_type", "expected a message with a string role.", "input[%d].role", i);
    if (!is(role, "user") && !is(role, "assistant") && !is(role, "system") && !is(role, "developer"))
        return fail(c, "invalid_value", "expected one of user, assistant, system, developer.", "input[%d].role", i);
    char where[48];
    snprintf(where, sizeof(where), "input[%d].content", i);
    cJSON *last = cJSON_GetArrayItem(c->messages, cJSON_GetArraySize(c->messages) - 1);
    if (is(role, "assistant") && is(str_of(field(last, "role")), "assistant") && !prism_json_get(last, "content") &&
        !prism_json_get(last, "tool_calls"))
        return content_of(c, last, field(it, "content"), where); /* the turn its reasoning opened */
    cJSON *msg = push(c, c->messages, cJSON_CreateObject());
    put_str(c, msg, "role", role);
    return content_of(c, msg, field(it, "content"), where);
}

/* The assistant turn a function call belongs to: the message before it
 * when that is the assistant's, else a new one. */
static cJSON *assistant_turn(conv *c)
{
    int n = cJSON_GetArraySize(c->messages);
    cJSON *last = n > 0 ? cJSON_GetArrayItem(c->messages, n - 1) : NULL;
    if (last != NULL && is(str_of(field(last, "role")), "assistant"))
        return last;
    cJSON *msg = push(c, c->messages, cJSON_CreateObject());
    put_str(c, msg, "role", "assistant");
    return msg;
}

static int call_item(conv *c, const cJSON *it, int i)
{
    const char *keys[] = {"call_id", "name", "arguments"}, *vals[3];
    for (int k = 0; k < 3; k++) {
        vals[k] = str_of(field(it, keys[k]));
        if (vals[k] == NULL)
            return fail(c, "invalid_type", "expected a string.", "input[%d].%s", i, keys[k]);
    }
    cJSON *turn = assistant_turn(c);
    cJSON *calls = prism_json_get(turn, "tool_calls");
    if (calls == NULL)
        calls = put(c, turn, "tool_calls", cJSON_CreateArray());
    cJSON *call = push(c, calls, cJSON_CreateObject());
    put_str(c, call, "id", vals[0]);
    put_str(c, call, "type", "function");
    cJSON *fn = put(c, call, "function", cJSON_CreateObject());
    put_str(c, fn, "name", vals[1]);
    put_str(c, fn, "arguments", vals[2]);
    return 0;
}

static int output_item(conv *c, const cJSON *it, int i)
{
    const char *call_id = str_of(field(it, "call_id"));
    if (call_id == NULL)
        return fail(c, "invalid_type", "expected a string.", "input[%d].call_id", i);
    cJSON *msg = push(c, c->messages, cJSON_CreateObject());
    put_str(c, msg, "role", "tool");
    put_str(c, msg, "tool_call_id", call_id);
    char where[48];
    snprintf(where, sizeof(where), "input[%d].output", i);
    return content_of(c, msg, field(it, "output"), where);
}

/* The summary parts' texts joined (malloc'd), or NULL when memory ran out. */
static char *summary_text(const cJSON *summary)
{
    const cJSON *part;
    size_t len = 0;
    cJSON_ArrayForEach(part, summary)
    {
        const char *t = str_of(field(part, "text"));
        len += t ? strlen(t) : 0;
    }
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    len = 0;
    cJSON_ArrayForEach(part, summary)
    {
        const char *t = str_of(field(part, "text"));
        size_t n = t ? strlen(t) : 0;
        memcpy(text + len, t ? t : "", n);
        len += n;
    }
    text[len] = '\0';
    return text;
}

/* A reasoning item -> a thinking (or redacted_thinking) block on the
 * assistant turn it opens; without encrypted_content there is no signature
 * to make a block Claude accepts, and it is dropped. */
static int reasoning_item(conv *c, const cJSON *it, int i)
{
    const cJSON *sealed = field(it, "encrypted_content");
    if (sealed != NULL && !cJSON_IsString(sealed))
        return fail(c, "invalid_type", "expected a string.", "input[%d].encrypted_content", i);
    if (sealed == NULL)
        return 0;
    cJSON *turn = assistant_turn(c);
    cJSON *blocks = prism_json_get(turn, "thinking_blocks");
    if (blocks == NULL)
        blocks = put(c, turn, "thinking_blocks", cJSON_CreateArray());
    cJSON *b = push(c, blocks, cJSON_CreateObject());
    size_t plen = strlen(CLAUDE_RSP_REDACTED);
    if (strncmp(sealed->valuestring, CLAUDE_RSP_REDACTED, plen) == 0) {
        put_str(c, b, "type", "redacted_thinking");
        put_str(c, b, "data", sealed->valuestring + plen);
        return 0;
    }
    char *text = summary_text(field(it, "summary"));
    if (text == NULL) {
        c->oom = 1;
        return 0;
    }
    put_str(c, b, "type", "thinking");
    put_str(c, b, "thinking", text);
    put_str(c, b, "signature", sealed->valuestring);
    free(text);
    return 0;
}

static int input_item(conv *c, const cJSON *it, int i);

/* {"type":"item_reference","id":…}: the item kept from an earlier Response,
 * read as if it had been sent. */
static int reference_item(conv *c, const cJSON *it, int i)
{
    const char *id = str_of(field(it, "id"));
    if (id == NULL)
        return fail(c, "invalid_type", "expected a string.", "input[%d].id", i);
    char *json = c->lookup ? c->lookup(c->lookup_data, id) : NULL;
    if (json == NULL)
        return fail(c, "invalid_value",
                    "no item with this id is kept here. Claude models keep the items of this gateway's recent "
                    "responses only: send the item itself (store: false makes clients do so).",
                    "input[%d].id", i);
    cJSON *item = cJSON_Parse(json);
    free(json);
    if (item == NULL || is(str_of(field(item, "type")), "item_reference")) {
        c->oom |= item == NULL;
        cJSON_Delete(item);
        return 0;
    }
    int rc = input_item(c, item, i);
    cJSON_Delete(item);
    return rc;
}

static int input_item(conv *c, const cJSON *it, int i)
{
    if (!cJSON_IsObject(it))
        return fail(c, "invalid_type", "expected an input item object.", "input[%d]", i);
    const char *type = str_of(field(it, "type"));
    if (type == NULL || is(type, "message"))
        return message_item(c, it, i);
    if (is(type, "function_call"))
        return call_item(c, it, i);
    if (is(type, "function_call_output"))
        return output_item(c, it, i);
    if (is(type, "reasoning"))
        return reasoning_item(c, it, i);
    if (is(type, "item_reference"))
        return reference_item(c, it, i);
    return fail(c, "unsupported_parameter",
                "only message, function_call, function_call_output and reasoning items can be sent to Claude.",
                "input[%d].type", i);
}

/* The messages added since `from` came from `origin`. */
static void note_origin(conv *c, int from, int origin)
{
    claude_rsp_origins *o = c->origins;
    int n = cJSON_GetArraySize(c->messages);
    if (o == NULL || n <= from)
        return;
    int *of = realloc(o->of, (size_t)n * sizeof(*of));
    if (of == NULL) {
        c->oom = 1;
        return;
    }
    for (int m = from; m < n; m++)
        of[m] = origin;
    o->of = of;
    o->n = (size_t)n;
}

static int messages_of(conv *c, cJSON *chat)
{
    c->messages = put(c, chat, "messages", cJSON_CreateArray());
    const cJSON *instructions = field(c->in, "instructions"), *input = field(c->in, "input");
    if (instructions != NULL) {
        if (!cJSON_IsString(instructions))
            return fail(c, "invalid_type", "expected a string.", "instructions");
        cJSON *sys = push(c, c->messages, cJSON_CreateObject());
        put_str(c, sys, "role", "system");
        put(c, sys, "content", copy(c, instructions));
        note_origin(c, 0, CLAUDE_RSP_FROM_INSTRUCTIONS);
    }
    if (input == NULL)
        return fail(c, "missing_required_parameter", "Missing required parameter: 'input'.", "input");
    int from = cJSON_GetArraySize(c->messages);
    if (cJSON_IsString(input)) {
        cJSON *msg = push(c, c->messages, cJSON_CreateObject());
        put_str(c, msg, "role", "user");
        put(c, msg, "content", copy(c, input));
        note_origin(c, from, CLAUDE_RSP_FROM_INPUT);
        return 0;
    }
    if (!cJSON_IsArray(input))
        return fail(c, "invalid_type", "expected a string or an array of input items.", "input");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, input)
    {
        if (input_item(c, it, i) != 0)
            return -1;
        note_origin(c, from, i++);
        from = cJSON_GetArraySize(c->messages);
    }
    return 0;
}

/* ---- tools and options ---- */

static int tools_of(conv *c, cJSON *chat)
{
    const cJSON *tools = field(c->in, "tools"), *t;
    if (tools == NULL)
        return 0;
    if (!cJSON_IsArray(tools))
        return fail(c, "invalid_type", "expected an array of tools.", "tools");
    cJSON *out = put(c, chat, "tools", cJSON_CreateArray());
    int k = 0;
    cJSON_ArrayForEach(t, tools)
    {
        if (!is(str_of(field(t, "type")), "function"))
            return fail(c, "unsupported_parameter", "only function tools can be sent to Claude.", "tools[%d].type", k);
        const cJSON *name = field(t, "name");
        if (!cJSON_IsString(name))
            return fail(c, "invalid_type", "expected a string.", "tools[%d].name", k);
        cJSON *tool = push(c, out, cJSON_CreateObject());
        put_str(c, tool, "type", "function");
        cJSON *fn = put(c, tool, "function", cJSON_CreateObject());
        const char *keys[] = {"name", "description", "parameters", "strict"};
        for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
            const cJSON *v = field(t, keys[j]);
            if (v != NULL)
                put(c, fn, keys[j], copy(c, v));
        }
        k++;
    }
    return 0;
}

/* {"type":"function","name":…} -> {"type":"function","function":{"name":…}};
 * the modes ("auto", "none", "required") are the same in both APIs. */
static void tool_choice_of(conv *c, cJSON *chat)
{
    const cJSON *choice = field(c->in, "tool_choice");
    if (choice == NULL)
        return;
    const cJSON *name = field(choice, "name");
    if (is(str_of(field(choice, "type")), "function") && cJSON_IsString(name)) {
        cJSON *out = put(c, chat, "tool_choice", cJSON_CreateObject());
        put_str(c, out, "type", "function");
        cJSON *fn = put(c, out, "function", cJSON_CreateObject());
        put(c, fn, "name", copy(c, name));
        return;
    }
    put(c, chat, "tool_choice", copy(c, choice)); /* the chat translation judges the rest */
}

/* text.format -> response_format. */
static int format_of(conv *c, cJSON *chat)
{
    const cJSON *text = field(c->in, "text"), *format = field(text, "format");
    if (format == NULL)
        return 0;
    const char *type = str_of(field(format, "type"));
    if (is(type, "text"))
        return 0;
    cJSON *rf = put(c, chat, "response_format", cJSON_CreateObject());
    if (is(type, "json_object")) {
        put_str(c, rf, "type", "json_object");
        return 0;
    }
    if (!is(type, "json_schema"))
        return fail(c, "invalid_value", "expected text, json_object or json_schema.", "text.format.type");
    put_str(c, rf, "type", "json_schema");
    cJSON *js = put(c, rf, "json_schema", cJSON_CreateObject());
    const char *keys[] = {"name", "schema", "description", "strict"};
    for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
        const cJSON *v = field(format, keys[j]);
        if (v != NULL)
            put(c, js, keys[j], copy(c, v));
    }
    return 0;
}

/* What Claude cannot do here is refused rather than silently dropped. */
static int refuse_state(conv *c)
{
    if (field(c->in, "previous_response_id") != NULL)
        return fail(c, "unsupported_parameter",
                    "Claude models keep no conversation state here: send the whole conversation in input.",
                    "previous_response_id");
    if (field(c->in, "conversation") != NULL)
        return fail(c, "unsupported_parameter",
                    "Claude models keep no conversation state here: send the whole conversation in input.",
                    "conversation");
    if (field(c->in, "prompt") != NULL)
        return fail(c, "unsupported_parameter", "stored prompts are not available for Claude models.", "prompt");
    if (cJSON_IsTrue(field(c->in, "background")))
        return fail(c, "unsupported_parameter", "Claude models answer in the foreground only.", "background");
    return 0;
}

static void options_of(conv *c, cJSON *chat)
{
    /* The same name and meaning in both APIs. */
    const char *same[] = {"model", "stream", "temperature", "top_p", "user", "parallel_tool_calls"};
    for (size_t j = 0; j < sizeof(same) / sizeof(same[0]); j++) {
        const cJSON *v = field(c->in, same[j]);
        if (v != NULL)
            put(c, chat, same[j], copy(c, v));
    }
    const cJSON *max = field(c->in, "max_output_tokens");
    if (max != NULL)
        put(c, chat, "max_completion_tokens", copy(c, max));
    const cJSON *effort = field(field(c->in, "reasoning"), "effort");
    if (effort != NULL)
        put(c, chat, "reasoning_effort", copy(c, effort));
}

cJSON *claude_chat_from_responses(const cJSON *request, claude_item_lookup *lookup, void *lookup_data,
                                  claude_rsp_origins *origins, claude_error *err)
{
    conv c = {.in = request, .err = err, .lookup = lookup, .lookup_data = lookup_data, .origins = origins};
    memset(err, 0, sizeof(*err));
    if (!cJSON_IsObject(request)) {
        fail(&c, "invalid_type", "The request body must be a JSON object.", "%s", "");
        return NULL;
    }
    cJSON *chat = cJSON_CreateObject();
    int rc = chat == NULL ? -1 : refuse_state(&c);
    if (rc == 0)
        rc = messages_of(&c, chat);
    if (rc == 0)
        rc = tools_of(&c, chat);
    if (rc == 0)
        rc = format_of(&c, chat);
    if (rc == 0) {
        tool_choice_of(&c, chat);
        options_of(&c, chat);
    }
    if (rc == 0 && !c.oom)
        return chat;
    cJSON_Delete(chat);
    if (chat != NULL && !c.oom)
        return NULL; /* *err says why */
    memset(err, 0, sizeof(*err));
    err->status = 500;
    snprintf(err->type, sizeof(err->type), "api_error");
    snprintf(err->code, sizeof(err->code), "internal_error");
    snprintf(err->message, sizeof(err->message), "Out of memory while translating the request.");
    return NULL;
}

/* ---- errors of the chat translation, in the Responses request's terms ---- */

/* The chat parameters whose Responses names differ, by prefix, the first
 * match winning; keep_rest: the rest of the path follows the new name. */
static const struct {
    const char *chat, *responses;
    int keep_rest;
} renamed[] = {
    {"response_format.json_schema.", "text.format.", 1}, /* the schema's fields sit in format itself */
    {"response_format.json_schema", "text.format", 0},   {"response_format", "text.format", 1},
    {"max_completion_tokens", "max_output_tokens", 0},   {"reasoning_effort", "reasoning.effort", 0},
    {"tool_choice.function.", "tool_choice.", 1},
};

/* param rewritten into out: 1, or 0 when it is the same in both APIs. */
static int responses_param(const claude_rsp_origins *o, const char *param, char *out, size_t cap)
{
    unsigned m, k;
    int used = 0;
    if (sscanf(param, "messages[%u]%n", &m, &used) == 1 && used > 0) {
        int from = o != NULL && m < o->n ? o->of[m] : CLAUDE_RSP_FROM_INPUT;
        if (from >= 0)
            snprintf(out, cap, "input[%d]", from); /* the item (or the first of a turn's items) */
        else
            snprintf(out, cap, "%s", from == CLAUDE_RSP_FROM_INSTRUCTIONS ? "instructions" : "input");
        return 1;
    }
    if (strcmp(param, "messages") == 0) { /* the conversation as a whole */
        snprintf(out, cap, "input");
        return 1;
    }
    if (sscanf(param, "tools[%u]%n", &k, &used) == 1 && used > 0) {
        const char *rest = param + used;
        if (strncmp(rest, ".function", 9) != 0)
            return 0;
        snprintf(out, cap, "tools[%u]%s", k, rest + 9);
        return 1;
    }
    for (size_t i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++) {
        size_t n = strlen(renamed[i].chat);
        if (strncmp(param, renamed[i].chat, n) == 0) {
            snprintf(out, cap, "%s%s", renamed[i].responses, renamed[i].keep_rest ? param + n : "");
            return 1;
        }
    }
    return 0;
}

void claude_rsp_error_param(const claude_rsp_origins *origins, claude_error *err)
{
    char param[sizeof(err->param)], message[sizeof(err->message)];
    if (err->param[0] == '\0' || !responses_param(origins, err->param, param, sizeof(param)))
        return;
    /* The message names the parameter as "Invalid 'param': why". */
    char quoted[sizeof(err->param) + 2];
    snprintf(quoted, sizeof(quoted), "'%s'", err->param);
    const char *at = strstr(err->message, quoted);
    if (at != NULL) {
        snprintf(message, sizeof(message), "%.*s'%s'%s", (int)(at - err->message), err->message, param,
                 at + strlen(quoted));
        snprintf(err->message, sizeof(err->message), "%s", message);
    }
    snprintf(err->param, sizeof(err->param), "%s", param);
}

/* ---- the Response ---- */

void claude_rsp_id(char *out, size_t outlen, const char *prefix, const char *anthropic_id, unsigned k)
{
    const char *u = anthropic_id ? strchr(anthropic_id, '_') : NULL;
    const char *rest = u ? u + 1 : anthropic_id ? anthropic_id : "";
    if (k > 0)
        snprintf(out, outlen, "%s%s_%u", prefix, rest, k);
    else
        snprintf(out, outlen, "%s%s", prefix, rest);
}

const char *claude_rsp_incomplete(const char *stop_reason)
{
    if (is(stop_reason, "max_tokens") || is(stop_reason, "model_context_window_exceeded"))
        return "max_output_tokens";
    if (is(stop_reason, "refusal"))
        return "content_filter";
    return NULL;
}

void claude_rsp_write_text_part(prism_json_writer *w, const char *text, size_t len)
{
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "output_text");
    PRISM_JSON_KEY(w, "text");
    prism_json_string(w, text ? text : "", text ? len : 0);
    PRISM_JSON_KEY(w, "annotations");
    prism_json_raw(w, "[]", 2);
    PRISM_JSON_KEY(w, "logprobs");
    prism_json_raw(w, "[]", 2);
    prism_json_object_end(w);
}

void claude_rsp_write_item(prism_json_writer *w, const claude_rsp_item *it, int done)
{
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "id");
    prism_json_string(w, it->id, strlen(it->id));
    PRISM_JSON_KEY(w, "type");
    if (it->kind == CLAUDE_RSP_CALL)
        PRISM_JSON_LIT(w, "function_call");
    else if (it->kind == CLAUDE_RSP_REASONING)
        PRISM_JSON_LIT(w, "reasoning");
    else
        PRISM_JSON_LIT(w, "message");
    PRISM_JSON_KEY(w, "status");
    if (done)
        PRISM_JSON_LIT(w, "completed");
    else
        PRISM_JSON_LIT(w, "in_progress");
    if (it->kind == CLAUDE_RSP_REASONING) {
        PRISM_JSON_KEY(w, "summary");
        prism_json_array_begin(w);
        if (done && it->len > 0) {
            prism_json_object_begin(w);
            PRISM_JSON_KEY(w, "type");
            PRISM_JSON_LIT(w, "summary_text");
            PRISM_JSON_KEY(w, "text");
            prism_json_string(w, it->text, it->len);
            prism_json_object_end(w);
        }
        prism_json_array_end(w);
        PRISM_JSON_KEY(w, "encrypted_content");
        const char *sealed = done ? it->sealed : NULL;
        prism_json_string(w, sealed, sealed ? strlen(sealed) : 0);
    } else if (it->kind == CLAUDE_RSP_CALL) {
        PRISM_JSON_KEY(w, "arguments");
        prism_json_string(w, done ? it->text : "", done ? it->len : 0);
        PRISM_JSON_KEY(w, "call_id");
        prism_json_string(w, it->call_id, strlen(it->call_id));
        PRISM_JSON_KEY(w, "name");
        prism_json_string(w, it->name, strlen(it->name));
    } else {
        PRISM_JSON_KEY(w, "role");
        PRISM_JSON_LIT(w, "assistant");
        PRISM_JSON_KEY(w, "content");
        prism_json_array_begin(w);
        if (done)
            claude_rsp_write_text_part(w, it->text, it->len);
        prism_json_array_end(w);
    }
    prism_json_object_end(w);
}

static void write_rsp_usage(prism_json_writer *w, const claude_usage *u)
{
    if (u == NULL) {
        prism_json_null(w);
        return;
    }
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "input_tokens");
    prism_json_number(w, (double)u->prompt);
    PRISM_JSON_KEY(w, "input_tokens_details");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "cached_tokens");
    prism_json_number(w, (double)u->cached);
    prism_json_object_end(w);
    PRISM_JSON_KEY(w, "output_tokens");
    prism_json_number(w, (double)u->completion);
    PRISM_JSON_KEY(w, "output_tokens_details");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "reasoning_tokens");
    prism_json_number(w, 0);
    prism_json_object_end(w);
    PRISM_JSON_KEY(w, "total_tokens");
    prism_json_number(w, (double)(u->prompt + u->completion));
    prism_json_object_end(w);
}

/* A request field as the Response echoes it, or `otherwise` (JSON text). */
static void echo(prism_json_writer *w, const cJSON *request, const char *key, const char *otherwise)
{
    prism_json_key(w, key, strlen(key));
    const cJSON *v = field(request, key);
    if (v != NULL)
        prism_json_value(w, v);
    else
        prism_json_raw(w, otherwise, strlen(otherwise));
}

static void write_settings(prism_json_writer *w, const cJSON *request)
{
    echo(w, request, "instructions", "null");
    echo(w, request, "max_output_tokens", "null");
    echo(w, request, "metadata", "{}");
    echo(w, request, "parallel_tool_calls", "true");
    PRISM_JSON_KEY(w, "previous_response_id");
    prism_json_null(w);
    PRISM_JSON_KEY(w, "reasoning");
    prism_json_object_begin(w);
    echo(w, field(request, "reasoning"), "effort", "null");
    PRISM_JSON_KEY(w, "summary");
    prism_json_null(w);
    prism_json_object_end(w);
    PRISM_JSON_KEY(w, "store");
    prism_json_bool(w, 0);
    echo(w, request, "temperature", "1");
    PRISM_JSON_KEY(w, "text");
    prism_json_object_begin(w);
    echo(w, field(request, "text"), "format", "{\"type\":\"text\"}");
    prism_json_object_end(w);
    echo(w, request, "tool_choice", "\"auto\"");
    echo(w, request, "tools", "[]");
    echo(w, request, "top_p", "1");
    PRISM_JSON_KEY(w, "truncation");
    PRISM_JSON_LIT(w, "disabled");
    echo(w, request, "user", "null");
}

void claude_rsp_write(prism_json_writer *w, const claude_rsp_head *h, const claude_rsp_item *items, size_t n)
{
    int done = !is(h->status, "in_progress");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "id");
    prism_json_string(w, h->id, strlen(h->id));
    PRISM_JSON_KEY(w, "object");
    PRISM_JSON_LIT(w, "response");
    PRISM_JSON_KEY(w, "created_at");
    prism_json_number(w, (double)h->created);
    PRISM_JSON_KEY(w, "status");
    prism_json_string(w, h->status, strlen(h->status));
    PRISM_JSON_KEY(w, "background");
    prism_json_bool(w, 0);
    PRISM_JSON_KEY(w, "error");
    if (h->error_code != NULL) {
        prism_json_object_begin(w);
        PRISM_JSON_KEY(w, "code");
        prism_json_string(w, h->error_code, strlen(h->error_code));
        PRISM_JSON_KEY(w, "message");
        prism_json_string(w, h->error_message, strlen(h->error_message));
        prism_json_object_end(w);
    } else {
        prism_json_null(w);
    }
    PRISM_JSON_KEY(w, "incomplete_details");
    if (h->incomplete != NULL) {
        prism_json_object_begin(w);
        PRISM_JSON_KEY(w, "reason");
        prism_json_string(w, h->incomplete, strlen(h->incomplete));
        prism_json_object_end(w);
    } else {
        prism_json_null(w);
    }
    PRISM_JSON_KEY(w, "model");
    prism_json_string(w, h->model ? h->model : "", h->model ? strlen(h->model) : 0);
    PRISM_JSON_KEY(w, "output");
    prism_json_array_begin(w);
    for (size_t i = 0; i < n; i++)
        claude_rsp_write_item(w, &items[i], done);
    prism_json_array_end(w);
    write_settings(w, h->request);
    PRISM_JSON_KEY(w, "usage");
    write_rsp_usage(w, h->usage);
    prism_json_object_end(w);
}

/* ---- an Anthropic message as a Response ---- */

void claude_rsp_keep_items(const claude_rsp_item *items, size_t n, claude_item_keep *keep, void *data)
{
    for (size_t i = 0; keep != NULL && i < n; i++) {
        prism_json_writer *w = prism_json_writer_new();
        if (w == NULL)
            return;
        claude_rsp_write_item(w, &items[i], 1);
        size_t len = 0;
        char *json = prism_json_writer_finish(w, &len);
        if (json != NULL)
            keep(data, items[i].id, json, len);
        free(json);
    }
}

static void rsp_error(claude_error *err, int status, const char *message)
{
    memset(err, 0, sizeof(*err));
    err->status = status;
    snprintf(err->type, sizeof(err->type), "api_error");
    snprintf(err->code, sizeof(err->code), status == 500 ? "internal_error" : "upstream_protocol_error");
    snprintf(err->message, sizeof(err->message), "%s", message);
}

/* A thinking or redacted_thinking block as a reasoning item; the sealed
 * form of a redacted one is made in *owned. */
static int reasoning_of(const cJSON *block, int redacted, const char *msg_id, unsigned *texts, claude_rsp_item *it,
                        char **owned)
{
    it->kind = CLAUDE_RSP_REASONING;
    claude_rsp_id(it->id, sizeof(it->id), "rs_", msg_id, (*texts)++);
    it->text = "";
    if (redacted) {
        const char *data = str_of(field(block, "data"));
        if (data == NULL)
            return -1;
        size_t plen = strlen(CLAUDE_RSP_REDACTED), dlen = strlen(data);
        if ((*owned = malloc(plen + dlen + 1)) == NULL)
            return -2;
        memcpy(*owned, CLAUDE_RSP_REDACTED, plen);
        memcpy(*owned + plen, data, dlen + 1);
        it->sealed = *owned;
        return 1;
    }
    const char *thinking = str_of(field(block, "thinking"));
    if (thinking == NULL)
        return -1;
    it->text = thinking;
    it->len = strlen(thinking);
    it->sealed = str_of(field(block, "signature"));
    return 1;
}

/* A block as an output item; 0 when it becomes none (server tools and
 * whatever comes next), -1 when it is malformed. Arguments are printed
 * into *owned. */
static int item_of(const cJSON *block, const claude_request_info *info, int *json_seen, const char *msg_id,
                   unsigned *texts, claude_rsp_item *it, char **owned)
{
    const char *type = str_of(field(block, "type"));
    memset(it, 0, sizeof(*it));
    if (is(type, "text")) {
        const cJSON *text = field(block, "text");
        if (!cJSON_IsString(text))
            return -1;
        claude_rsp_id(it->id, sizeof(it->id), "msg_", msg_id, (*texts)++);
        it->text = text->valuestring;
        it->len = strlen(text->valuestring);
        return 1;
    }
    if (is(type, "thinking") || is(type, "redacted_thinking"))
        return reasoning_of(block, is(type, "redacted_thinking"), msg_id, texts, it, owned);
    if (!is(type, "tool_use"))
        return type == NULL ? -1 : 0;
    const char *id = str_of(field(block, "id")), *name = str_of(field(block, "name"));
    if (id == NULL || name == NULL)
        return -1;
    const cJSON *input = field(block, "input");
    size_t len = 2;
    *owned = input ? prism_json_print(input, &len) : NULL;
    it->text = input ? *owned : "{}";
    it->len = len;
    if (it->text == NULL)
        return -2; /* out of memory */
    if (info && info->json_tool && !*json_seen && strcmp(name, info->json_tool_name) == 0) {
        *json_seen = 1; /* the forced tool's input is the answer's text */
        claude_rsp_id(it->id, sizeof(it->id), "msg_", msg_id, (*texts)++);
        return 1;
    }
    it->kind = CLAUDE_RSP_CALL;
    it->call_id = id;
    it->name = name;
    claude_rsp_id(it->id, sizeof(it->id), "fc_", id, 0);
    return 1;
}

char *claude_response_to_responses(const cJSON *anthropic, const cJSON *request, const claude_request_info *info,
                                   long created, claude_usage *usage, size_t *len, claude_error *err,
                                   claude_item_keep *keep, void *keep_data)
{
    memset(err, 0, sizeof(*err));
    const char *msg_id = str_of(field(anthropic, "id"));
    const cJSON *content = field(anthropic, "content");
    if (!cJSON_IsObject(anthropic) || msg_id == NULL || !cJSON_IsArray(content)) {
        rsp_error(err, 502, "Anthropic answered with something that is not a message.");
        return NULL;
    }
    size_t cap = (size_t)cJSON_GetArraySize(content) + 1, n = 0;
    claude_rsp_item *items = calloc(cap, sizeof(*items));
    char **owned = calloc(cap, sizeof(*owned));
    int json_seen = 0, rc = items && owned ? 0 : -2;
    unsigned texts = 0;
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        if (rc < 0)
            break;
        rc = item_of(block, info, &json_seen, msg_id, &texts, &items[n], &owned[n]);
        n += rc == 1;
    }
    char *text = NULL;
    claude_usage u = claude_usage_of(field(anthropic, "usage"));
    if (rc >= 0) {
        char rid[96];
        claude_rsp_id(rid, sizeof(rid), "resp_", msg_id, 0);
        const char *incomplete = claude_rsp_incomplete(str_of(field(anthropic, "stop_reason")));
        claude_rsp_head h = {.id = rid,
                             .model = str_of(field(anthropic, "model")),
                             .created = created,
                             .status = incomplete ? "incomplete" : "completed",
                             .incomplete = incomplete,
                             .usage = &u,
                             .request = request};
        prism_json_writer *w = prism_json_writer_new();
        if (w != NULL)
            claude_rsp_write(w, &h, items, n);
        text = prism_json_writer_finish(w, len);
        rc = text ? 0 : -2;
        if (text != NULL)
            claude_rsp_keep_items(items, n, keep, keep_data);
    }
    for (size_t i = 0; owned && i < cap; i++)
        free(owned[i]);
    free(owned);
    free(items);
    if (rc == -1)
        rsp_error(err, 502, "Anthropic answered with a content block that is not well formed.");
    else if (rc == -2)
        rsp_error(err, 500, "Out of memory while translating Anthropic's answer.");
    else if (usage != NULL)
        *usage = u;
    return text;
}
