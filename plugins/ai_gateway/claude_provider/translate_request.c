/*
 * translate_request.c - an OpenAI Chat Completions request -> an Anthropic
 * Messages request, as a pure function (no I/O, no globals).
 *
 * Every value of the input is treated as hostile: a wrong type anywhere
 * becomes a 400 naming the offending field, never a crash. docs/translation.md
 * is the field-by-field table this implements.
 */
#include "translate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Work bounds: far above what a real conversation uses, low enough that a
 * hostile body cannot make one request expensive. */
#define MAX_MESSAGES   100000
#define MAX_LIST_ITEMS 10000 /* content parts, tool calls, tools, stop entries, thinking blocks */
#define MAX_MEDIA_TYPE 127

#define JSON_TOOL_DEFAULT     "json_response"
#define JSON_TOOL_DESCRIPTION "Respond with JSON that matches this schema."

/* Content part kinds a role accepts. */
enum {
    PART_TEXT = 1,
    PART_IMAGE = 2,
    PART_FILE = 4,
    PART_REFUSAL = 8,
};

typedef struct req {
    const cJSON *in;
    const claude_options *opt;
    claude_request_info *info;
    claude_error *err;
    cJSON *out;
    int oom; /* set by put/push when cJSON could not allocate */
} req;

/* The Anthropic turn being built: consecutive same-side messages merge. */
typedef struct turn {
    const char *role; /* "user", "assistant", or NULL before the first */
    cJSON *lead;      /* tool_result blocks: Anthropic wants them first */
    cJSON *rest;
} turn;

/* ---- small helpers ---- */

/* For cJSON_ArrayForEach over a value that may not be an array. */
static const cJSON *as_array(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
            return 0;
    return 1;
}

/* Integral and within what a long long holds exactly (NaN fails every comparison). */
static int is_integer(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9e15 && v->valuedouble <= 9e15))
        return 0;
    return v->valuedouble == (double)(long long)v->valuedouble;
}

static int list_size(const cJSON *arr)
{
    return cJSON_GetArraySize(arr);
}

/* Adds item to obj under key, a string literal (not copied); records an
 * allocation failure instead of returning one so translation code reads
 * straight through (checked once at the end). */
static cJSON *put(req *r, cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL || obj == NULL || !cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        r->oom = 1;
        return NULL;
    }
    return item;
}

static cJSON *push(req *r, cJSON *arr, cJSON *item)
{
    if (item == NULL || arr == NULL || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        r->oom = 1;
        return NULL;
    }
    return item;
}

/* A string of the input, or a literal, in the translated tree without a
 * copy (translate.h: the tree is printed and deleted while the input
 * lives). Most of a translated request is the client's text. */
static cJSON *str_ref(const char *s)
{
    return cJSON_CreateStringReference(s);
}

/* An object of the input carried over unchanged (a tool's JSON Schema, a
 * signed thinking block), without a copy. */
static cJSON *object_ref(const cJSON *obj)
{
    return cJSON_CreateObjectReference(obj->child);
}

static void set_error(claude_error *err, int status, const char *type, const char *code, const char *param,
                      const char *message)
{
    memset(err, 0, sizeof(*err));
    err->status = status;
    snprintf(err->type, sizeof(err->type), "%s", type);
    snprintf(err->code, sizeof(err->code), "%s", code);
    snprintf(err->param, sizeof(err->param), "%s", param);
    snprintf(err->message, sizeof(err->message), "%s", message);
}

__attribute__((format(printf, 4, 5))) static int fail(req *r, const char *code, const char *why, const char *param_fmt,
                                                      ...)
{
    char param[sizeof(r->err->param)] = "";
    char message[sizeof(r->err->message)];
    va_list ap;
    va_start(ap, param_fmt);
    vsnprintf(param, sizeof(param), param_fmt, ap);
    va_end(ap);
    if (param[0])
        snprintf(message, sizeof(message), "Invalid '%s': %s", param, why);
    else
        snprintf(message, sizeof(message), "%s", why);
    set_error(r->err, 400, "invalid_request_error", code, param, message);
    return -1;
}

/* A configured value, or the documented default when unset (0) or nonsense. */
static int positive_or(int v, int def)
{
    return v > 0 ? v : def;
}

/* ---- content blocks ---- */

static void copy_cache_control(req *r, const cJSON *part, cJSON *block)
{
    const cJSON *cc = field(part, "cache_control");
    if (cJSON_IsObject(cc))
        put(r, block, "cache_control", object_ref(cc));
}

/* Appends a text block unless the text is blank: Anthropic refuses text
 * blocks without non-whitespace text. */
static void add_text(req *r, cJSON *dest, const char *text, const cJSON *part)
{
    if (is_blank(text))
        return;
    cJSON *block = push(r, dest, cJSON_CreateObject());
    put(r, block, "type", str_ref("text"));
    put(r, block, "text", str_ref(text));
    if (part)
        copy_cache_control(r, part, block);
}

static void add_source_block(req *r, cJSON *dest, const char *type, cJSON *source, const cJSON *part)
{
    cJSON *block = push(r, dest, cJSON_CreateObject());
    put(r, block, "type", str_ref(type));
    put(r, block, "source", source);
    if (block == NULL)
        return;
    copy_cache_control(r, part, block);
}

/* "data:<media>[;param...];base64,<data>" -> media and data, or -1. */
static int parse_data_url(const char *url, char media[MAX_MEDIA_TYPE + 1], const char **data)
{
    if (strncasecmp(url, "data:", 5) != 0)
        return -1;
    const char *head = url + 5, *comma = strchr(head, ',');
    if (comma == NULL || comma - head < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return -1;
    size_t media_len = strcspn(head, ";,");
    if (media_len == 0 || media_len > MAX_MEDIA_TYPE || memchr(head, '/', media_len) == NULL)
        return -1;
    if (comma[1] == '\0')
        return -1;
    memcpy(media, head, media_len);
    media[media_len] = '\0';
    *data = comma + 1;
    return 0;
}

static cJSON *base64_source(const char *media, const char *data)
{
    cJSON *source = cJSON_CreateObject();
    if (!prism_json_add(source, "type", str_ref("base64")) ||
        !prism_json_add(source, "media_type", cJSON_CreateString(media)) ||
        !prism_json_add(source, "data", str_ref(data))) {
        cJSON_Delete(source);
        return NULL;
    }
    return source;
}

static int add_image(req *r, cJSON *dest, const cJSON *part, int mi, int pj)
{
    const char *url = str_of(field(field(part, "image_url"), "url"));
    char media[MAX_MEDIA_TYPE + 1];
    const char *data;
    if (url && parse_data_url(url, media, &data) == 0) {
        add_source_block(r, dest, "image", base64_source(media, data), part);
        return 0;
    }
    if (url && (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0)) {
        cJSON *source = cJSON_CreateObject();
        if (!prism_json_add(source, "type", str_ref("url")) || !prism_json_add(source, "url", str_ref(url))) {
            cJSON_Delete(source);
            source = NULL;
        }
        add_source_block(r, dest, "image", source, part);
        return 0;
    }
    return fail(r, "invalid_value", "expected an object whose url is a data:<media>;base64, URL or an http(s) URL.",
                "messages[%d].content[%d].image_url", mi, pj);
}

static int add_file(req *r, cJSON *dest, const cJSON *part, int mi, int pj)
{
    const cJSON *file = field(part, "file");
    const char *file_data = str_of(field(file, "file_data"));
    char media[MAX_MEDIA_TYPE + 1];
    const char *data;
    if (file_data == NULL)
        return fail(r, "unsupported_content", "only inline PDF files (file.file_data) can be sent to Claude.",
                    "messages[%d].content[%d].file", mi, pj);
    if (parse_data_url(file_data, media, &data) != 0 || strcasecmp(media, "application/pdf") != 0)
        return fail(r, "unsupported_content", "file_data must be a data:application/pdf;base64, URL.",
                    "messages[%d].content[%d].file.file_data", mi, pj);
    add_source_block(r, dest, "document", base64_source("application/pdf", data), part);
    return 0;
}

static int part_kind(const char *type)
{
    if (strcmp(type, "text") == 0)
        return PART_TEXT;
    if (strcmp(type, "image_url") == 0)
        return PART_IMAGE;
    if (strcmp(type, "file") == 0)
        return PART_FILE;
    if (strcmp(type, "refusal") == 0)
        return PART_REFUSAL;
    return 0;
}

/* Known OpenAI part types a role cannot carry get "unsupported_content";
 * names nobody knows get "invalid_value". */
static int refuse_part(req *r, const char *type, int mi, int pj)
{
    int known = part_kind(type) != 0 || strcmp(type, "input_audio") == 0;
    return fail(r, known ? "unsupported_content" : "invalid_value",
                known ? "this content part type cannot be sent to Claude in this message."
                      : "unknown content part type.",
                "messages[%d].content[%d].type", mi, pj);
}

static int add_part(req *r, cJSON *dest, const cJSON *part, int allowed, int mi, int pj)
{
    const char *type = str_of(field(part, "type"));
    if (type == NULL)
        return fail(r, "invalid_type", "expected an object with a string 'type'.", "messages[%d].content[%d]", mi, pj);
    int kind = part_kind(type);
    if ((kind & allowed) == 0)
        return refuse_part(r, type, mi, pj);
    if (kind == PART_IMAGE)
        return add_image(r, dest, part, mi, pj);
    if (kind == PART_FILE)
        return add_file(r, dest, part, mi, pj);
    const char *text = str_of(field(part, kind == PART_TEXT ? "text" : "refusal"));
    if (text == NULL)
        return fail(r, "invalid_type", "expected a string.", "messages[%d].content[%d].%s", mi, pj,
                    kind == PART_TEXT ? "text" : "refusal");
    add_text(r, dest, text, part);
    return 0;
}

/* content: a string or an array of parts of the allowed kinds. */
static int add_content(req *r, cJSON *dest, const cJSON *content, int allowed, int mi)
{
    if (cJSON_IsString(content)) {
        add_text(r, dest, content->valuestring, NULL);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return fail(r, "invalid_type", "expected a string or an array of content parts.", "messages[%d].content", mi);
    if (list_size(content) > MAX_LIST_ITEMS)
        return fail(r, "invalid_value", "too many content parts.", "messages[%d].content", mi);
    int pj = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        if (add_part(r, dest, part, allowed, mi, pj++) != 0)
            return -1;
    }
    return 0;
}

/* ---- messages by role ---- */

static int add_thinking_blocks(req *r, cJSON *dest, const cJSON *blocks, int mi)
{
    if (!cJSON_IsArray(blocks) || list_size(blocks) > MAX_LIST_ITEMS)
        return fail(r, "invalid_type", "expected an array of thinking blocks.", "messages[%d].thinking_blocks", mi);
    int k = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, blocks)
    {
        const char *type = str_of(field(b, "type"));
        if (type == NULL || (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0))
            return fail(r, "invalid_value", "expected a thinking or redacted_thinking block.",
                        "messages[%d].thinking_blocks[%d]", mi, k);
        push(r, dest, object_ref(b)); /* unchanged: the signature covers it */
        k++;
    }
    return 0;
}

/* "" or absent -> {}; anything but a string holding a JSON object -> 400. */
static int parse_arguments(req *r, const cJSON *call, int mi, int tj, cJSON **input)
{
    const cJSON *args = field(field(call, "function"), "arguments");
    const char *s = str_of(args);
    if (args == NULL || (s && s[0] == '\0')) {
        *input = cJSON_CreateObject();
        return 0;
    }
    *input = s ? cJSON_ParseWithOpts(s, NULL, 1) : NULL;
    if (cJSON_IsObject(*input))
        return 0;
    cJSON_Delete(*input);
    *input = NULL;
    return fail(r, "invalid_tool_arguments", "arguments must be a string holding a JSON object.",
                "messages[%d].tool_calls[%d].function.arguments", mi, tj);
}

static int add_tool_call(req *r, cJSON *dest, const cJSON *call, int mi, int tj)
{
    const cJSON *type = field(call, "type");
    const char *id = str_of(field(call, "id"));
    const char *name = str_of(field(field(call, "function"), "name"));
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0))
        return fail(r, "invalid_value", "only function tool calls are supported.", "messages[%d].tool_calls[%d].type",
                    mi, tj);
    if (id == NULL || id[0] == '\0')
        return fail(r, "invalid_type", "expected a non-empty string.", "messages[%d].tool_calls[%d].id", mi, tj);
    if (name == NULL || name[0] == '\0')
        return fail(r, "invalid_type", "expected a non-empty string.", "messages[%d].tool_calls[%d].function.name", mi,
                    tj);
    cJSON *input;
    if (parse_arguments(r, call, mi, tj, &input) != 0)
        return -1;
    cJSON *block = push(r, dest, cJSON_CreateObject());
    put(r, block, "type", str_ref("tool_use"));
    put(r, block, "id", str_ref(id));
    put(r, block, "name", str_ref(name));
    put(r, block, "input", input);
    return 0;
}

static int add_tool_calls(req *r, cJSON *dest, const cJSON *calls, int mi)
{
    if (!cJSON_IsArray(calls) || list_size(calls) > MAX_LIST_ITEMS)
        return fail(r, "invalid_type", "expected an array of tool calls.", "messages[%d].tool_calls", mi);
    int tj = 0;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls)
    {
        if (add_tool_call(r, dest, call, mi, tj++) != 0)
            return -1;
    }
    return 0;
}

/* thinking blocks first (Anthropic checks they lead), then text, then tool_use. */
static int assistant_blocks(req *r, const cJSON *msg, cJSON *rest, int mi)
{
    const cJSON *thinking = field(msg, "thinking_blocks");
    const cJSON *content = field(msg, "content");
    const cJSON *refusal = field(msg, "refusal");
    const cJSON *calls = field(msg, "tool_calls");
    if (thinking && add_thinking_blocks(r, rest, thinking, mi) != 0)
        return -1;
    if (content && add_content(r, rest, content, PART_TEXT | PART_REFUSAL, mi) != 0)
        return -1;
    if (refusal && !cJSON_IsString(refusal))
        return fail(r, "invalid_type", "expected a string.", "messages[%d].refusal", mi);
    if (refusal)
        add_text(r, rest, refusal->valuestring, NULL);
    return calls ? add_tool_calls(r, rest, calls, mi) : 0;
}

static int tool_blocks(req *r, const cJSON *msg, cJSON *lead, int mi)
{
    const char *id = str_of(field(msg, "tool_call_id"));
    const cJSON *content = field(msg, "content");
    if (id == NULL || id[0] == '\0')
        return fail(r, "missing_required_parameter", "tool messages need a non-empty string tool_call_id.",
                    "messages[%d].tool_call_id", mi);
    if (content == NULL)
        return fail(r, "missing_required_parameter", "tool messages need content.", "messages[%d].content", mi);
    cJSON *result = push(r, lead, cJSON_CreateObject());
    put(r, result, "type", str_ref("tool_result"));
    put(r, result, "tool_use_id", str_ref(id));
    /* A blank result is sent without content (allowed), never as an empty text block (refused). */
    if (cJSON_IsString(content)) {
        if (!is_blank(content->valuestring))
            put(r, result, "content", str_ref(content->valuestring));
        return 0;
    }
    cJSON *blocks = cJSON_CreateArray();
    if (add_content(r, blocks, content, PART_TEXT, mi) != 0) {
        cJSON_Delete(blocks);
        return -1;
    }
    if (cJSON_GetArraySize(blocks) > 0)
        put(r, result, "content", blocks);
    else
        cJSON_Delete(blocks);
    return 0;
}

/* ---- turns ---- */

static void move_all(cJSON *from, cJSON *to)
{
    cJSON *item;
    while ((item = from->child) != NULL)
        cJSON_AddItemToArray(to, cJSON_DetachItemViaPointer(from, item));
}

static void flush_turn(req *r, turn *t, cJSON *messages)
{
    if (t->role == NULL || (t->lead->child == NULL && t->rest->child == NULL))
        return;
    cJSON *msg = push(r, messages, cJSON_CreateObject());
    put(r, msg, "role", str_ref(t->role));
    cJSON *content = put(r, msg, "content", cJSON_CreateArray());
    if (content) {
        move_all(t->lead, content);
        move_all(t->rest, content);
    }
    cJSON_Delete(t->lead);
    cJSON_Delete(t->rest);
    t->lead = cJSON_CreateArray();
    t->rest = cJSON_CreateArray();
    if (t->lead == NULL || t->rest == NULL)
        r->oom = 1;
}

/* A message that produced no blocks is dropped without ending the turn, so
 * its neighbours still merge and roles keep alternating. */
static void join_turn(req *r, turn *t, const char *role, cJSON *lead, cJSON *rest, cJSON *messages)
{
    if (lead->child == NULL && rest->child == NULL)
        return;
    if (t->role && strcmp(t->role, role) != 0)
        flush_turn(r, t, messages);
    t->role = role;
    if (t->lead && t->rest) {
        move_all(lead, t->lead);
        move_all(rest, t->rest);
    }
}

static int message_blocks(req *r, const cJSON *msg, const char *role, cJSON *lead, cJSON *rest, int mi)
{
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        const cJSON *content = field(msg, "content");
        if (content == NULL)
            return fail(r, "missing_required_parameter", "expected content.", "messages[%d].content", mi);
        cJSON *system = prism_json_get(r->out, "system");
        return add_content(r, system, content, PART_TEXT, mi);
    }
    if (strcmp(role, "user") == 0) {
        const cJSON *content = field(msg, "content");
        if (content == NULL)
            return fail(r, "missing_required_parameter", "expected content.", "messages[%d].content", mi);
        return add_content(r, rest, content, PART_TEXT | PART_IMAGE | PART_FILE, mi);
    }
    if (strcmp(role, "assistant") == 0)
        return assistant_blocks(r, msg, rest, mi);
    if (strcmp(role, "tool") == 0)
        return tool_blocks(r, msg, lead, mi);
    return fail(r, strcmp(role, "function") == 0 ? "unsupported_parameter" : "invalid_value",
                "expected one of system, developer, user, assistant, tool.", "messages[%d].role", mi);
}

static int add_message(req *r, turn *t, const cJSON *msg, int mi, cJSON *messages)
{
    const char *role = str_of(field(msg, "role"));
    if (role == NULL)
        return fail(r, "invalid_type", "expected an object with a string role.", "messages[%d]", mi);
    cJSON *lead = cJSON_CreateArray(), *rest = cJSON_CreateArray();
    int rc = lead && rest ? message_blocks(r, msg, role, lead, rest, mi) : (r->oom = 1, 0);
    if (rc == 0 && lead && rest)
        join_turn(r, t, strcmp(role, "assistant") == 0 ? "assistant" : "user", lead, rest, messages);
    cJSON_Delete(lead);
    cJSON_Delete(rest);
    return rc;
}

static int translate_messages(req *r)
{
    const cJSON *msgs = field(r->in, "messages");
    if (!cJSON_IsArray(msgs) || msgs->child == NULL)
        return fail(r, "invalid_value", "expected a non-empty array of messages.", "messages");
    if (list_size(msgs) > MAX_MESSAGES)
        return fail(r, "invalid_value", "too many messages (at most 100000).", "messages");
    cJSON *system = put(r, r->out, "system", cJSON_CreateArray());
    cJSON *messages = put(r, r->out, "messages", cJSON_CreateArray());
    turn t = {NULL, cJSON_CreateArray(), cJSON_CreateArray()};
    int rc = 0, mi = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs)
    {
        if (r->oom || system == NULL || messages == NULL || t.lead == NULL || t.rest == NULL)
            break;
        if ((rc = add_message(r, &t, msg, mi++, messages)) != 0)
            break;
    }
    if (rc == 0 && !r->oom)
        flush_turn(r, &t, messages);
    cJSON_Delete(t.lead);
    cJSON_Delete(t.rest);
    if (rc != 0 || r->oom)
        return -1;
    if (system->child == NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(r->out, "system");
    if (messages->child == NULL)
        return fail(r, "invalid_value", "no user or assistant message with content is left to send.", "messages");
    return 0;
}

/* ---- scalar parameters ---- */

/* The max_tokens Anthropic would get without thinking, or -1. */
static long long max_tokens_of(req *r)
{
    const char *key = field(r->in, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    const cJSON *v = field(r->in, key);
    if (v == NULL)
        return positive_or(r->opt ? r->opt->default_max_tokens : 0, 4096);
    if (!is_integer(v) || v->valuedouble < 1 || v->valuedouble > INT_MAX)
        return fail(r, "invalid_value", "expected a positive integer.", "%s", key);
    return (long long)v->valuedouble;
}

static int check_number(req *r, const char *key, const cJSON **out)
{
    *out = field(r->in, key);
    if (*out && !cJSON_IsNumber(*out))
        return fail(r, "invalid_type", "expected a number.", "%s", key);
    return 0;
}

/* Anthropic refuses temperature and top_k with thinking, and top_p below 0.95. */
static int translate_sampling(req *r, int thinking)
{
    const cJSON *temperature, *top_p, *top_k;
    if (check_number(r, "temperature", &temperature) || check_number(r, "top_p", &top_p) ||
        check_number(r, "top_k", &top_k))
        return -1;
    if (temperature && !thinking) { /* OpenAI's range is 0-2, Anthropic's 0-1 */
        double t = temperature->valuedouble;
        put(r, r->out, "temperature", cJSON_CreateNumber(t < 0 ? 0 : t > 1 ? 1 : t));
    }
    if (top_p && (!thinking || top_p->valuedouble >= 0.95))
        put(r, r->out, "top_p", cJSON_CreateNumber(top_p->valuedouble));
    if (top_k && !thinking)
        put(r, r->out, "top_k", cJSON_CreateNumber(top_k->valuedouble));
    return 0;
}

static int add_stop(req *r, cJSON *seqs, const cJSON *s, int k)
{
    if (!cJSON_IsString(s))
        return k < 0 ? fail(r, "invalid_type", "expected a string or an array of strings.", "stop")
                     : fail(r, "invalid_type", "expected a string.", "stop[%d]", k);
    if (!is_blank(s->valuestring))
        push(r, seqs, str_ref(s->valuestring));
    return 0;
}

static int translate_stop(req *r)
{
    const cJSON *stop = field(r->in, "stop");
    if (stop == NULL)
        return 0;
    if (cJSON_IsArray(stop) && list_size(stop) > MAX_LIST_ITEMS)
        return fail(r, "invalid_value", "too many stop sequences.", "stop");
    cJSON *seqs = cJSON_CreateArray();
    int rc = 0, k = 0;
    const cJSON *s;
    if (!cJSON_IsArray(stop))
        rc = add_stop(r, seqs, stop, -1);
    cJSON_ArrayForEach(s, as_array(stop))
    {
        if ((rc = add_stop(r, seqs, s, k++)) != 0)
            break;
    }
    if (rc != 0 || seqs == NULL || seqs->child == NULL) { /* all blank: no key at all */
        cJSON_Delete(seqs);
        return rc;
    }
    put(r, r->out, "stop_sequences", seqs);
    return 0;
}

static int translate_user(req *r)
{
    const cJSON *user = field(r->in, "user");
    if (user == NULL)
        return 0;
    if (!cJSON_IsString(user))
        return fail(r, "invalid_type", "expected a string.", "user");
    if (user->valuestring[0] == '\0')
        return 0;
    cJSON *metadata = put(r, r->out, "metadata", cJSON_CreateObject());
    put(r, metadata, "user_id", str_ref(user->valuestring));
    return 0;
}

/* Parameters refused because Claude cannot honour them. */
static int check_unsupported(req *r)
{
    const cJSON *n = field(r->in, "n");
    if (n && (!is_integer(n) || n->valuedouble < 1))
        return fail(r, "invalid_value", "expected a positive integer.", "n");
    if (n && n->valuedouble > 1)
        return fail(r, "unsupported_parameter", "Claude returns one choice per request; n must be 1.", "n");
    const cJSON *modalities = field(r->in, "modalities"), *m;
    cJSON_ArrayForEach(m, as_array(modalities))
    {
        if (cJSON_IsString(m) && strcmp(m->valuestring, "audio") == 0)
            return fail(r, "unsupported_parameter", "Claude cannot produce audio output.", "modalities");
    }
    return 0;
}

static int translate_stream(req *r)
{
    const cJSON *stream = field(r->in, "stream");
    if (stream && !cJSON_IsBool(stream))
        return fail(r, "invalid_type", "expected a boolean.", "stream");
    if (stream) {
        r->info->stream = cJSON_IsTrue(stream);
        put(r, r->out, "stream", cJSON_CreateBool(r->info->stream));
    }
    const cJSON *opts = field(r->in, "stream_options");
    if (opts && !cJSON_IsObject(opts))
        return fail(r, "invalid_type", "expected an object.", "stream_options");
    r->info->include_usage = cJSON_IsTrue(field(opts, "include_usage"));
    return 0;
}

/* ---- tools, tool_choice, response_format ---- */

static int add_tool(req *r, cJSON *tools, const cJSON *tool, int k)
{
    const char *type = str_of(field(tool, "type"));
    const cJSON *fn = field(tool, "function");
    if (type == NULL || strcmp(type, "function") != 0)
        return fail(r, "unsupported_parameter", "only function tools can be sent to Claude.", "tools[%d].type", k);
    const char *name = str_of(field(fn, "name"));
    const cJSON *desc = field(fn, "description"), *params = field(fn, "parameters");
    if (name == NULL || name[0] == '\0')
        return fail(r, "invalid_type", "expected a non-empty string.", "tools[%d].function.name", k);
    if (desc && !cJSON_IsString(desc))
        return fail(r, "invalid_type", "expected a string.", "tools[%d].function.description", k);
    if (params && !cJSON_IsObject(params))
        return fail(r, "invalid_type", "expected a JSON Schema object.", "tools[%d].function.parameters", k);
    cJSON *out = push(r, tools, cJSON_CreateObject());
    put(r, out, "name", str_ref(name));
    if (desc)
        put(r, out, "description", str_ref(desc->valuestring));
    put(r, out, "input_schema", params ? object_ref(params) : cJSON_Parse("{\"type\":\"object\",\"properties\":{}}"));
    return 0;
}

/* Returns the number of tools sent, or -1. */
static int translate_tools(req *r)
{
    const cJSON *tools = field(r->in, "tools");
    if (tools == NULL)
        return 0;
    if (!cJSON_IsArray(tools) || list_size(tools) > MAX_LIST_ITEMS)
        return fail(r, "invalid_type", "expected an array of tools.", "tools");
    if (tools->child == NULL)
        return 0;
    cJSON *out = put(r, r->out, "tools", cJSON_CreateArray());
    int k = 0;
    const cJSON *tool;
    cJSON_ArrayForEach(tool, tools)
    {
        if (add_tool(r, out, tool, k++) != 0)
            return -1;
    }
    return k;
}

static cJSON *choice_of_type(const char *type)
{
    cJSON *choice = cJSON_CreateObject();
    if (!prism_json_add(choice, "type", str_ref(type))) {
        cJSON_Delete(choice);
        return NULL;
    }
    return choice;
}

/* OpenAI tool_choice -> Anthropic's type, and the tool's name for "tool". */
/* {"type":"allowed_tools","allowed_tools":{"mode":"auto"|"required","tools":[...]}}:
 * auto or any, over the listed tools only. */
static int allowed_tools_type(req *r, const cJSON *tc, const char **type, const cJSON **allowed)
{
    const cJSON *at = field(tc, "allowed_tools");
    const char *mode = str_of(field(at, "mode"));
    *allowed = as_array(field(at, "tools"));
    if (*allowed == NULL || mode == NULL || (strcmp(mode, "auto") != 0 && strcmp(mode, "required") != 0))
        return fail(r, "invalid_value", "expected {\"mode\": \"auto\" or \"required\", \"tools\": [...]}.",
                    "tool_choice.allowed_tools");
    *type = strcmp(mode, "required") == 0 ? "any" : "auto";
    return 0;
}

static int tool_choice_type(req *r, const cJSON *tc, const char **type, const char **name, const cJSON **allowed)
{
    const char *s = str_of(tc);
    *name = NULL;
    *allowed = NULL;
    if (str_of(field(tc, "type")) && strcmp(str_of(field(tc, "type")), "allowed_tools") == 0)
        return allowed_tools_type(r, tc, type, allowed);
    if (s && strcmp(s, "auto") == 0)
        *type = "auto";
    else if (s && strcmp(s, "none") == 0)
        *type = "none";
    else if (s && strcmp(s, "required") == 0)
        *type = "any";
    else {
        const char *t = str_of(field(tc, "type"));
        *name = str_of(field(field(tc, "function"), "name"));
        if (t == NULL || strcmp(t, "function") != 0 || *name == NULL || (*name)[0] == '\0')
            return fail(r, "invalid_value",
                        "expected auto, none, required, {\"type\":\"function\",\"function\":{\"name\"}} or "
                        "{\"type\":\"allowed_tools\",...}.",
                        "tool_choice");
        *type = "tool";
    }
    return 0;
}

/* Whether `name` is one of allowed_tools' entries: {"type":"function","function":{"name"}}
 * or the flat {"type":"function","name"}. */
static int is_allowed(const cJSON *allowed, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, allowed)
    {
        const char *n = str_of(field(field(t, "function"), "name"));
        if (n == NULL)
            n = str_of(field(t, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

/* Anthropic has no allowed-tools list: the tools outside it are not sent.
 * Returns how many are left. */
static int keep_allowed_tools(req *r, const cJSON *allowed)
{
    cJSON *tools = prism_json_get(r->out, "tools"), *t = tools ? tools->child : NULL;
    int left = 0;
    while (t != NULL) {
        cJSON *next = t->next;
        const char *n = str_of(field(t, "name"));
        if (n != NULL && is_allowed(allowed, n))
            left++;
        else
            cJSON_Delete(cJSON_DetachItemViaPointer(tools, t));
        t = next;
    }
    if (left == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(r->out, "tools");
    return left;
}

static int translate_tool_choice(req *r, int ntools)
{
    const cJSON *tc = field(r->in, "tool_choice"), *parallel = field(r->in, "parallel_tool_calls"), *allowed = NULL;
    const char *type = NULL, *name = NULL;
    if (parallel && !cJSON_IsBool(parallel))
        return fail(r, "invalid_type", "expected a boolean.", "parallel_tool_calls");
    if (tc && tool_choice_type(r, tc, &type, &name, &allowed) != 0)
        return -1;
    if (allowed != NULL && ntools > 0 && (ntools = keep_allowed_tools(r, allowed)) == 0)
        return fail(r, "invalid_value", "none of allowed_tools.tools is among the request's tools.",
                    "tool_choice.allowed_tools.tools");
    if (ntools == 0) { /* nothing to choose from: auto and none mean the same, forcing is an error */
        if (type && strcmp(type, "auto") != 0 && strcmp(type, "none") != 0)
            return fail(r, "invalid_value", "a tool choice that forces a tool needs tools.", "tool_choice");
        return 0;
    }
    int serial = cJSON_IsFalse(parallel) && !(type && strcmp(type, "none") == 0);
    if (type == NULL && !serial)
        return 0;
    cJSON *choice = put(r, r->out, "tool_choice", choice_of_type(type ? type : "auto"));
    if (name)
        put(r, choice, "name", str_ref(name));
    if (serial)
        put(r, choice, "disable_parallel_tool_use", cJSON_CreateTrue());
    return 0;
}

static int valid_tool_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* Adds the forced tool the answer must come through. */
static void add_json_tool(req *r, const char *name, const cJSON *schema)
{
    cJSON *tools = prism_json_get(r->out, "tools");
    if (tools == NULL)
        tools = put(r, r->out, "tools", cJSON_CreateArray());
    cJSON *tool = push(r, tools, cJSON_CreateObject());
    put(r, tool, "name", str_ref(name));
    put(r, tool, "description", str_ref(JSON_TOOL_DESCRIPTION));
    put(r, tool, "input_schema", schema ? object_ref(schema) : cJSON_Parse("{\"type\":\"object\"}"));
    cJSON *choice = put(r, r->out, "tool_choice", choice_of_type("tool"));
    put(r, choice, "name", str_ref(name));
    r->info->json_tool = 1;
    snprintf(r->info->json_tool_name, sizeof(r->info->json_tool_name), "%s", name);
}

/* Returns 1 when the answer goes through a forced tool, 0 when not, -1 on error. */
static int translate_response_format(req *r)
{
    const cJSON *rf = field(r->in, "response_format");
    if (rf == NULL)
        return 0;
    const char *type = str_of(field(rf, "type"));
    if (type && strcmp(type, "text") == 0)
        return 0;
    if (type && strcmp(type, "json_object") == 0) {
        add_json_tool(r, JSON_TOOL_DEFAULT, NULL);
        return 1;
    }
    if (type == NULL || strcmp(type, "json_schema") != 0)
        return fail(r, "invalid_value", "expected text, json_object or json_schema.", "response_format.type");
    const cJSON *js = field(rf, "json_schema");
    const cJSON *schema = field(js, "schema");
    const char *name = str_of(field(js, "name"));
    if (!cJSON_IsObject(js))
        return fail(r, "invalid_type", "expected an object.", "response_format.json_schema");
    if (schema && !cJSON_IsObject(schema))
        return fail(r, "invalid_type", "expected a JSON Schema object.", "response_format.json_schema.schema");
    add_json_tool(r, name && valid_tool_name(name) ? name : JSON_TOOL_DEFAULT, schema);
    return 1;
}

/* ---- thinking ---- */

/* reasoning_effort -> budget_tokens, 0 for "none", -1 on a bad value. */
static int effort_budget(req *r, const cJSON *effort)
{
    const char *e = str_of(effort);
    if (e && strcmp(e, "none") == 0)
        return 0;
    if (e && (strcmp(e, "minimal") == 0 || strcmp(e, "low") == 0))
        return positive_or(r->opt ? r->opt->thinking_budget_low : 0, 1024);
    if (e && strcmp(e, "medium") == 0)
        return positive_or(r->opt ? r->opt->thinking_budget_medium : 0, 4096);
    if (e && strcmp(e, "high") == 0)
        return positive_or(r->opt ? r->opt->thinking_budget_high : 0, 16384);
    return fail(r, "invalid_value", "expected none, minimal, low, medium or high.", "reasoning_effort");
}

static int block_is(const cJSON *block, const char *type)
{
    const char *t = str_of(field(block, "type"));
    return t != NULL && strcmp(t, type) == 0;
}

/* With thinking on, Anthropic refuses a conversation whose last assistant
 * turn calls tools without starting with that turn's signed thinking block.
 * OpenAI clients running a tool loop send the turn back without it (they
 * have nowhere to keep it), so reasoning_effort then leaves thinking off for
 * this request instead of earning a 400. */
static int tool_turn_without_thinking(const req *r)
{
    const cJSON *messages = field(r->out, "messages"), *last = NULL, *m, *block;
    cJSON_ArrayForEach(m, as_array(messages))
    {
        const char *role = str_of(field(m, "role"));
        if (role && strcmp(role, "assistant") == 0)
            last = m;
    }
    const cJSON *content = as_array(field(last, "content"));
    if (content == NULL || content->child == NULL)
        return 0;
    if (block_is(content->child, "thinking") || block_is(content->child, "redacted_thinking"))
        return 0;
    cJSON_ArrayForEach(block, content)
    {
        if (block_is(block, "tool_use"))
            return 1;
    }
    return 0;
}

/* Adds `thinking`; returns the budget (0 when thinking is off) or -1. A
 * client's own Anthropic-style `thinking` object wins over reasoning_effort. */
static long long translate_thinking(req *r)
{
    const cJSON *own = field(r->in, "thinking");
    if (own) {
        if (!cJSON_IsObject(own))
            return fail(r, "invalid_type", "expected an Anthropic thinking object.", "thinking");
        put(r, r->out, "thinking", object_ref(own));
        const char *type = str_of(field(own, "type"));
        if (type && strcmp(type, "disabled") == 0)
            return 0;
        const cJSON *budget = field(own, "budget_tokens");
        return is_integer(budget) && budget->valuedouble >= 1 && budget->valuedouble <= INT_MAX
                   ? (long long)budget->valuedouble
                   : 1; /* on, with a budget we cannot read: still drop what thinking refuses */
    }
    const cJSON *effort = field(r->in, "reasoning_effort");
    if (effort == NULL)
        return 0;
    int budget = effort_budget(r, effort);
    if (budget <= 0 || tool_turn_without_thinking(r))
        return budget < 0 ? -1 : 0;
    cJSON *thinking = put(r, r->out, "thinking", cJSON_CreateObject());
    put(r, thinking, "type", str_ref("enabled"));
    put(r, thinking, "budget_tokens", cJSON_CreateNumber(budget));
    return budget;
}

static int translate_limits(req *r, int json_tool)
{
    long long max_tokens = max_tokens_of(r);
    if (max_tokens < 0)
        return -1;
    long long budget = translate_thinking(r);
    if (budget < 0)
        return -1;
    if (budget > 0 && json_tool)
        return fail(r, "unsupported_parameter",
                    "Claude cannot think while it is forced to answer through a tool; drop reasoning_effort or "
                    "response_format.",
                    "response_format");
    if (budget > 0 && max_tokens <= budget) /* budget_tokens must stay below max_tokens */
        max_tokens += budget;
    put(r, r->out, "max_tokens", cJSON_CreateNumber((double)max_tokens));
    return translate_sampling(r, budget > 0);
}

static int translate_model(req *r)
{
    const char *model = str_of(field(r->in, "model"));
    if (model == NULL || model[0] == '\0')
        return fail(r, "missing_required_parameter", "expected a non-empty string.", "model");
    put(r, r->out, "model", str_ref(model));
    return 0;
}

static int translate_all(req *r)
{
    if (translate_model(r) || check_unsupported(r) || translate_messages(r))
        return -1;
    int ntools = translate_tools(r);
    if (ntools < 0)
        return -1;
    /* response_format wins: its forced tool replaces any client tool_choice. */
    int json_tool = translate_response_format(r);
    if (json_tool < 0 || (json_tool == 0 && translate_tool_choice(r, ntools)))
        return -1;
    if (translate_limits(r, json_tool) || translate_stop(r) || translate_user(r) || translate_stream(r))
        return -1;
    return 0;
}

cJSON *claude_request_from_openai(const cJSON *openai, const claude_options *opt, claude_request_info *info,
                                  claude_error *err)
{
    memset(info, 0, sizeof(*info));
    memset(err, 0, sizeof(*err));
    req r = {.in = openai, .opt = opt, .info = info, .err = err, .out = cJSON_CreateObject()};
    if (!cJSON_IsObject(openai)) {
        cJSON_Delete(r.out);
        fail(&r, "invalid_type", "the request body must be a JSON object.", "%s", "");
        return NULL;
    }
    int rc = r.out ? translate_all(&r) : -1;
    if (rc == 0 && !r.oom)
        return r.out;
    cJSON_Delete(r.out);
    if (err->status == 0)
        set_error(err, 500, "api_error", "internal_error", "", "Out of memory while translating the request.");
    memset(info, 0, sizeof(*info));
    return NULL;
}
