/*
 * translate_request.c - an OpenAI Chat Completions request -> the body of an
 * Anthropic Messages request, as a pure function (no I/O, no globals).
 *
 * Every value of the input is treated as hostile: a wrong type anywhere
 * becomes a 400 naming the offending field, never a crash. docs/translation.md
 * is the field-by-field table this implements.
 *
 * The body is written front to back with prism_json_writer; no tree is built,
 * printed and freed. Anthropic's layout is not the input's order, though:
 * system messages from anywhere go to one top-level list, consecutive
 * messages of one side merge into a turn whose tool results come first, and
 * which tools are sent depends on tool_choice. So the same walking code reads
 * the request twice. The checking pass finds the first error in the order a
 * client reads the request (field by field, message by message), counts the
 * blocks each message makes and notes what the layout needs. The writing
 * passes then cannot fail, except for memory.
 */
#include "translate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Work bounds: far above what a real conversation uses, low enough that a
 * hostile body cannot make one request expensive. */
#define MAX_MESSAGES   100000
#define MAX_LIST_ITEMS 10000 /* content parts, tool calls, tools, stop entries, thinking blocks */
#define MAX_MEDIA_TYPE 127
#define FEW_MESSAGES   64 /* notes on messages kept without an allocation */

#define JSON_TOOL_DEFAULT     "json_response"
#define JSON_TOOL_DESCRIPTION "Respond with JSON that matches this schema."

/* Content part kinds a role accepts. */
enum {
    PART_TEXT = 1,
    PART_IMAGE = 2,
    PART_FILE = 4,
    PART_REFUSAL = 8,
};

/* Where the blocks being walked go: the top-level system list, the head of
 * a turn (tool results, which Anthropic wants first), the rest of a turn,
 * or inside a tool result. */
enum { DEST_SYSTEM, DEST_LEAD, DEST_REST, DEST_NESTED, DEST_COUNT };

/* The side of the turn a message's blocks join (0: it makes none). */
enum { SIDE_NONE, SIDE_USER, SIDE_ASSISTANT };

typedef struct req {
    const cJSON *in;
    const claude_options *opt;
    claude_request_info *info;
    claude_error *err;
    prism_json_writer *w;   /* NULL while checking or counting */
    int checking;           /* the first pass: tool call arguments are parsed */
    int dest;               /* DEST_*: where the blocks being walked go */
    long count[DEST_COUNT]; /* blocks found while not writing */
    int oom;

    /* Tool call arguments, parsed while checking (in message order) and
     * written from here (the writing passes meet them in the same order). */
    cJSON *args;
    const cJSON *next_args;

    /* Messages: a NOTE of each, and what the checking pass saw of the last
     * assistant turn. */
    unsigned char *notes, few_notes[FEW_MESSAGES];
    int last_side;
    long thinking_blocks, tool_uses; /* of the message being checked */
    int turn_thinks, turn_calls;     /* the last assistant turn starts with thinking, calls a tool */

    /* The rest of the layout. */
    const char *model;
    const cJSON *tools;    /* the client's tools (a non-empty array) or NULL */
    const cJSON *allowed;  /* tool_choice.allowed_tools.tools: only these are sent */
    const char *json_tool; /* the forced tool response_format maps to */
    const cJSON *json_schema;
    const char *choice_type, *choice_name; /* tool_choice, when one is sent */
    int serial;                            /* disable_parallel_tool_use */
    const cJSON *own_thinking;
    long long budget, max_tokens;
    const cJSON *temperature, *top_p, *top_k;
    const cJSON *stop;
    long stops;
    const char *user;
    const cJSON *stream;
} req;

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

static void put_str(prism_json_writer *w, const char *s)
{
    prism_json_string(w, s, strlen(s));
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

/* One more block where r->dest says: when not writing it is only counted.
 * Returns whether to write it. */
static int block(req *r)
{
    if (r->w != NULL)
        return 1;
    r->count[r->dest]++;
    return 0;
}

static void write_cache_control(prism_json_writer *w, const cJSON *part)
{
    const cJSON *cc = field(part, "cache_control");
    if (cJSON_IsObject(cc)) {
        PRISM_JSON_KEY(w, "cache_control");
        prism_json_value(w, cc);
    }
}

/* A text block unless the text is blank: Anthropic refuses text blocks
 * without non-whitespace text. */
static void add_text(req *r, const char *text, const cJSON *part)
{
    if (is_blank(text) || !block(r))
        return;
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "text");
    PRISM_JSON_KEY(w, "text");
    put_str(w, text);
    if (part)
        write_cache_control(w, part);
    prism_json_object_end(w);
}

/* An image or document block: base64 data of the media type given, or (no
 * media type) a URL. */
static void add_source_block(req *r, const char *type, const char *media, const char *data, const cJSON *part)
{
    if (!block(r))
        return;
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    put_str(w, type);
    PRISM_JSON_KEY(w, "source");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    if (media) {
        PRISM_JSON_LIT(w, "base64");
        PRISM_JSON_KEY(w, "media_type");
        put_str(w, media);
        PRISM_JSON_KEY(w, "data");
    } else {
        PRISM_JSON_LIT(w, "url");
        PRISM_JSON_KEY(w, "url");
    }
    put_str(w, data);
    prism_json_object_end(w);
    write_cache_control(w, part);
    prism_json_object_end(w);
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

static int add_image(req *r, const cJSON *part, int mi, int pj)
{
    const char *url = str_of(field(field(part, "image_url"), "url"));
    char media[MAX_MEDIA_TYPE + 1];
    const char *data;
    if (url && parse_data_url(url, media, &data) == 0) {
        add_source_block(r, "image", media, data, part);
        return 0;
    }
    if (url && (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0)) {
        add_source_block(r, "image", NULL, url, part);
        return 0;
    }
    return fail(r, "invalid_value", "expected an object whose url is a data:<media>;base64, URL or an http(s) URL.",
                "messages[%d].content[%d].image_url", mi, pj);
}

static int add_file(req *r, const cJSON *part, int mi, int pj)
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
    add_source_block(r, "document", "application/pdf", data, part);
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

static int add_part(req *r, const cJSON *part, int allowed, int mi, int pj)
{
    const char *type = str_of(field(part, "type"));
    if (type == NULL)
        return fail(r, "invalid_type", "expected an object with a string 'type'.", "messages[%d].content[%d]", mi, pj);
    int kind = part_kind(type);
    if ((kind & allowed) == 0)
        return refuse_part(r, type, mi, pj);
    if (kind == PART_IMAGE)
        return add_image(r, part, mi, pj);
    if (kind == PART_FILE)
        return add_file(r, part, mi, pj);
    const char *text = str_of(field(part, kind == PART_TEXT ? "text" : "refusal"));
    if (text == NULL)
        return fail(r, "invalid_type", "expected a string.", "messages[%d].content[%d].%s", mi, pj,
                    kind == PART_TEXT ? "text" : "refusal");
    add_text(r, text, part);
    return 0;
}

/* content: a string or an array of parts of the allowed kinds. */
static int add_content(req *r, const cJSON *content, int allowed, int mi)
{
    if (cJSON_IsString(content)) {
        add_text(r, content->valuestring, NULL);
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
        if (add_part(r, part, allowed, mi, pj++) != 0)
            return -1;
    }
    return 0;
}

/* ---- messages by role ---- */

static int add_thinking_blocks(req *r, const cJSON *blocks, int mi)
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
        if (block(r))
            prism_json_value(r->w, b); /* unchanged: the signature covers it */
        else
            r->thinking_blocks++;
        k++;
    }
    return 0;
}

/* The checking pass parses a call's arguments ("" or absent stands for {})
 * and keeps them for the writing pass: anything but a JSON object is a 400. */
static int keep_arguments(req *r, const char *s, int mi, int tj)
{
    cJSON *input = s ? cJSON_ParseWithOpts(s, NULL, 1) : NULL;
    if (!cJSON_IsObject(input)) {
        cJSON_Delete(input);
        return fail(r, "invalid_tool_arguments", "arguments must be a string holding a JSON object.",
                    "messages[%d].tool_calls[%d].function.arguments", mi, tj);
    }
    if (!cJSON_AddItemToArray(r->args, input)) {
        cJSON_Delete(input);
        r->oom = 1;
    }
    return 0;
}

static void write_arguments(req *r, int empty)
{
    const cJSON *input = empty ? NULL : r->next_args;
    if (empty) {
        prism_json_raw(r->w, "{}", 2);
    } else if (input != NULL) {
        r->next_args = input->next;
        prism_json_value(r->w, input);
    } else {
        r->oom = 1; /* not kept: the checking pass ran out of memory */
    }
}

static int add_tool_call(req *r, const cJSON *call, int mi, int tj)
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
    const cJSON *args = field(field(call, "function"), "arguments");
    const char *s = str_of(args);
    int empty = args == NULL || (s && s[0] == '\0');
    if (r->checking && !empty && keep_arguments(r, s, mi, tj) != 0)
        return -1;
    if (!block(r)) {
        r->tool_uses++;
        return 0;
    }
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "tool_use");
    PRISM_JSON_KEY(w, "id");
    put_str(w, id);
    PRISM_JSON_KEY(w, "name");
    put_str(w, name);
    PRISM_JSON_KEY(w, "input");
    write_arguments(r, empty);
    prism_json_object_end(w);
    return 0;
}

static int add_tool_calls(req *r, const cJSON *calls, int mi)
{
    if (!cJSON_IsArray(calls) || list_size(calls) > MAX_LIST_ITEMS)
        return fail(r, "invalid_type", "expected an array of tool calls.", "messages[%d].tool_calls", mi);
    int tj = 0;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls)
    {
        if (add_tool_call(r, call, mi, tj++) != 0)
            return -1;
    }
    return 0;
}

/* thinking blocks first (Anthropic checks they lead), then text, then tool_use. */
static int assistant_blocks(req *r, const cJSON *msg, int mi)
{
    const cJSON *thinking = field(msg, "thinking_blocks");
    const cJSON *content = field(msg, "content");
    const cJSON *refusal = field(msg, "refusal");
    const cJSON *calls = field(msg, "tool_calls");
    if (thinking && add_thinking_blocks(r, thinking, mi) != 0)
        return -1;
    if (content && add_content(r, content, PART_TEXT | PART_REFUSAL, mi) != 0)
        return -1;
    if (refusal && !cJSON_IsString(refusal))
        return fail(r, "invalid_type", "expected a string.", "messages[%d].refusal", mi);
    if (refusal)
        add_text(r, refusal->valuestring, NULL);
    return calls ? add_tool_calls(r, calls, mi) : 0;
}

/* The text blocks a tool result's parts make, counted without writing; -1
 * when the parts are refused. */
static long result_blocks(req *r, const cJSON *content, int mi)
{
    prism_json_writer *w = r->w;
    int dest = r->dest;
    r->w = NULL;
    r->dest = DEST_NESTED;
    r->count[DEST_NESTED] = 0;
    int rc = add_content(r, content, PART_TEXT, mi);
    r->w = w;
    r->dest = dest;
    return rc != 0 ? -1 : r->count[DEST_NESTED];
}

/* A blank result is sent without content (allowed), never as an empty text
 * block (refused). */
static void write_result_content(req *r, const cJSON *content, long parts, int mi)
{
    prism_json_writer *w = r->w;
    if (cJSON_IsString(content)) {
        if (!is_blank(content->valuestring)) {
            PRISM_JSON_KEY(w, "content");
            put_str(w, content->valuestring);
        }
    } else if (parts > 0) {
        PRISM_JSON_KEY(w, "content");
        prism_json_array_begin(w);
        add_content(r, content, PART_TEXT, mi);
        prism_json_array_end(w);
    }
}

static int tool_blocks(req *r, const cJSON *msg, int mi)
{
    const char *id = str_of(field(msg, "tool_call_id"));
    const cJSON *content = field(msg, "content");
    if (id == NULL || id[0] == '\0')
        return fail(r, "missing_required_parameter", "tool messages need a non-empty string tool_call_id.",
                    "messages[%d].tool_call_id", mi);
    if (content == NULL)
        return fail(r, "missing_required_parameter", "tool messages need content.", "messages[%d].content", mi);
    long parts = cJSON_IsString(content) ? 0 : result_blocks(r, content, mi);
    if (parts < 0)
        return -1;
    if (!block(r))
        return 0;
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "tool_result");
    PRISM_JSON_KEY(w, "tool_use_id");
    put_str(w, id);
    write_result_content(r, content, parts, mi);
    prism_json_object_end(w);
    return 0;
}

/* Roles as the checking pass notes them ("developer" is a system role). */
enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL, ROLE_OTHER };

static int role_of(const char *role)
{
    if (strcmp(role, "user") == 0)
        return ROLE_USER;
    if (strcmp(role, "assistant") == 0)
        return ROLE_ASSISTANT;
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return ROLE_SYSTEM;
    return strcmp(role, "tool") == 0 ? ROLE_TOOL : ROLE_OTHER;
}

/* Where a role's blocks go. */
static int dest_of(int role)
{
    return role == ROLE_SYSTEM ? DEST_SYSTEM : role == ROLE_TOOL ? DEST_LEAD : DEST_REST;
}

static int message_blocks(req *r, const cJSON *msg, int role, int mi)
{
    if (role == ROLE_ASSISTANT)
        return assistant_blocks(r, msg, mi);
    if (role == ROLE_TOOL)
        return tool_blocks(r, msg, mi);
    const cJSON *content = field(msg, "content");
    if (content == NULL)
        return fail(r, "missing_required_parameter", "expected content.", "messages[%d].content", mi);
    return add_content(r, content, role == ROLE_SYSTEM ? PART_TEXT : PART_TEXT | PART_IMAGE | PART_FILE, mi);
}

/* ---- turns ---- */

/* What the checking pass notes of each message: its role, and the side of
 * the turn its blocks join (SIDE_NONE when it makes none). */
#define NOTE(role, side) ((unsigned char)((role) << 2 | (side)))
#define NOTE_ROLE(note)  ((note) >> 2)
#define NOTE_SIDE(note)  ((note)&3)

/* Checks one message and notes it. A message that makes no blocks joins no
 * turn, so its neighbours still merge and roles keep alternating. */
static int check_message(req *r, const cJSON *msg, int mi)
{
    const char *name = str_of(field(msg, "role"));
    if (name == NULL)
        return fail(r, "invalid_type", "expected an object with a string role.", "messages[%d]", mi);
    int role = role_of(name);
    if (role == ROLE_OTHER)
        return fail(r, strcmp(name, "function") == 0 ? "unsupported_parameter" : "invalid_value",
                    "expected one of system, developer, user, assistant, tool.", "messages[%d].role", mi);
    long before = r->count[DEST_LEAD] + r->count[DEST_REST];
    r->dest = dest_of(role);
    r->thinking_blocks = r->tool_uses = 0;
    if (message_blocks(r, msg, role, mi) != 0)
        return -1;
    if (r->count[DEST_LEAD] + r->count[DEST_REST] == before) {
        r->notes[mi] = NOTE(role, SIDE_NONE);
        return 0;
    }
    int side = role == ROLE_ASSISTANT ? SIDE_ASSISTANT : SIDE_USER;
    r->notes[mi] = NOTE(role, side);
    if (side == SIDE_ASSISTANT && r->last_side != SIDE_ASSISTANT) {
        r->turn_thinks = r->thinking_blocks > 0; /* they come first */
        r->turn_calls = 0;
    }
    if (side == SIDE_ASSISTANT && r->tool_uses > 0)
        r->turn_calls = 1;
    r->last_side = side;
    return 0;
}

static int check_messages(req *r)
{
    const cJSON *msgs = field(r->in, "messages");
    if (!cJSON_IsArray(msgs) || msgs->child == NULL)
        return fail(r, "invalid_value", "expected a non-empty array of messages.", "messages");
    int n = list_size(msgs);
    if (n > MAX_MESSAGES)
        return fail(r, "invalid_value", "too many messages (at most 100000).", "messages");
    r->notes = n <= FEW_MESSAGES ? r->few_notes : malloc((size_t)n);
    if (r->notes == NULL || (r->args = cJSON_CreateArray()) == NULL) {
        r->oom = 1;
        return -1;
    }
    int mi = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs)
    {
        if (check_message(r, msg, mi++) != 0)
            return -1;
    }
    if (r->count[DEST_LEAD] + r->count[DEST_REST] == 0)
        return fail(r, "invalid_value", "no user or assistant message with content is left to send.", "messages");
    r->next_args = r->args->child;
    return 0;
}

/* Writes the blocks that go to `dest` of the n messages from msg (index mi). */
static void write_blocks(req *r, int dest, const cJSON *msg, int mi, int n)
{
    r->dest = dest;
    for (; msg != NULL && n > 0; msg = msg->next, mi++, n--) {
        int role = NOTE_ROLE(r->notes[mi]);
        if (dest_of(role) == dest && (dest == DEST_SYSTEM || NOTE_SIDE(r->notes[mi]) != SIDE_NONE))
            message_blocks(r, msg, role, mi);
    }
}

/* One Anthropic message: the n input messages from msg, tool results first. */
static void write_turn(req *r, int side, const cJSON *msg, int mi, int n)
{
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "role");
    if (side == SIDE_ASSISTANT)
        PRISM_JSON_LIT(w, "assistant");
    else
        PRISM_JSON_LIT(w, "user");
    PRISM_JSON_KEY(w, "content");
    prism_json_array_begin(w);
    if (side == SIDE_USER && r->count[DEST_LEAD] > 0)
        write_blocks(r, DEST_LEAD, msg, mi, n);
    write_blocks(r, DEST_REST, msg, mi, n);
    prism_json_array_end(w);
    prism_json_object_end(w);
}

static void write_messages(req *r)
{
    const cJSON *msgs = field(r->in, "messages"), *msg = msgs->child;
    prism_json_writer *w = r->w;
    if (r->count[DEST_SYSTEM] > 0) {
        PRISM_JSON_KEY(w, "system");
        prism_json_array_begin(w);
        write_blocks(r, DEST_SYSTEM, msg, 0, INT_MAX);
        prism_json_array_end(w);
    }
    PRISM_JSON_KEY(w, "messages");
    prism_json_array_begin(w);
    int mi = 0;
    while (msg != NULL) {
        int side = NOTE_SIDE(r->notes[mi]);
        if (side == SIDE_NONE) {
            msg = msg->next;
            mi++;
            continue;
        }
        const cJSON *first = msg;
        int from = mi;
        while (msg != NULL && (NOTE_SIDE(r->notes[mi]) == SIDE_NONE || NOTE_SIDE(r->notes[mi]) == side)) {
            msg = msg->next;
            mi++;
        }
        write_turn(r, side, first, from, mi - from);
    }
    prism_json_array_end(w);
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
static int check_sampling(req *r)
{
    int thinking = r->budget > 0;
    const cJSON *temperature, *top_p, *top_k;
    if (check_number(r, "temperature", &temperature) || check_number(r, "top_p", &top_p) ||
        check_number(r, "top_k", &top_k))
        return -1;
    r->temperature = thinking ? NULL : temperature;
    r->top_p = top_p && (!thinking || top_p->valuedouble >= 0.95) ? top_p : NULL;
    r->top_k = thinking ? NULL : top_k;
    return 0;
}

static void write_sampling(req *r)
{
    prism_json_writer *w = r->w;
    if (r->temperature) { /* OpenAI's range is 0-2, Anthropic's 0-1 */
        double t = r->temperature->valuedouble;
        PRISM_JSON_KEY(w, "temperature");
        prism_json_number(w, t < 0 ? 0 : t > 1 ? 1 : t);
    }
    if (r->top_p) {
        PRISM_JSON_KEY(w, "top_p");
        prism_json_number(w, r->top_p->valuedouble);
    }
    if (r->top_k) {
        PRISM_JSON_KEY(w, "top_k");
        prism_json_number(w, r->top_k->valuedouble);
    }
}

/* One stop entry (k < 0: stop itself is the string); blank ones are dropped. */
static int add_stop(req *r, const cJSON *s, int k)
{
    if (!cJSON_IsString(s))
        return k < 0 ? fail(r, "invalid_type", "expected a string or an array of strings.", "stop")
                     : fail(r, "invalid_type", "expected a string.", "stop[%d]", k);
    if (is_blank(s->valuestring))
        return 0;
    if (r->w)
        put_str(r->w, s->valuestring);
    else
        r->stops++;
    return 0;
}

static int add_stops(req *r)
{
    if (!cJSON_IsArray(r->stop))
        return add_stop(r, r->stop, -1);
    int k = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, r->stop)
    {
        if (add_stop(r, s, k++) != 0)
            return -1;
    }
    return 0;
}

static int check_stop(req *r)
{
    r->stop = field(r->in, "stop");
    if (r->stop == NULL)
        return 0;
    if (cJSON_IsArray(r->stop) && list_size(r->stop) > MAX_LIST_ITEMS)
        return fail(r, "invalid_value", "too many stop sequences.", "stop");
    return add_stops(r);
}

/* All blank: no key at all. */
static void write_stop(req *r)
{
    if (r->stops == 0)
        return;
    PRISM_JSON_KEY(r->w, "stop_sequences");
    prism_json_array_begin(r->w);
    add_stops(r);
    prism_json_array_end(r->w);
}

static int check_user(req *r)
{
    const cJSON *user = field(r->in, "user");
    if (user == NULL)
        return 0;
    if (!cJSON_IsString(user))
        return fail(r, "invalid_type", "expected a string.", "user");
    if (user->valuestring[0] != '\0')
        r->user = user->valuestring;
    return 0;
}

static void write_user(req *r)
{
    if (r->user == NULL)
        return;
    prism_json_writer *w = r->w;
    PRISM_JSON_KEY(w, "metadata");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "user_id");
    put_str(w, r->user);
    prism_json_object_end(w);
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

static int check_stream(req *r)
{
    const cJSON *stream = field(r->in, "stream");
    if (stream && !cJSON_IsBool(stream))
        return fail(r, "invalid_type", "expected a boolean.", "stream");
    r->stream = stream;
    r->info->stream = cJSON_IsTrue(stream);
    const cJSON *opts = field(r->in, "stream_options");
    if (opts && !cJSON_IsObject(opts))
        return fail(r, "invalid_type", "expected an object.", "stream_options");
    r->info->include_usage = cJSON_IsTrue(field(opts, "include_usage"));
    return 0;
}

static void write_stream(req *r)
{
    if (r->stream == NULL)
        return;
    PRISM_JSON_KEY(r->w, "stream");
    prism_json_bool(r->w, r->info->stream);
}

/* ---- tools, tool_choice, response_format ---- */

static int check_tool(req *r, const cJSON *tool, int k)
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
    return 0;
}

/* Returns the number of the client's tools, or -1. */
static int check_tools(req *r)
{
    const cJSON *tools = field(r->in, "tools");
    if (tools == NULL)
        return 0;
    if (!cJSON_IsArray(tools) || list_size(tools) > MAX_LIST_ITEMS)
        return fail(r, "invalid_type", "expected an array of tools.", "tools");
    if (tools->child == NULL)
        return 0;
    int k = 0;
    const cJSON *tool;
    cJSON_ArrayForEach(tool, tools)
    {
        if (check_tool(r, tool, k++) != 0)
            return -1;
    }
    r->tools = tools;
    return k;
}

/* A tool as Anthropic takes it; schema NULL stands for `schema_default`. */
static void write_tool(prism_json_writer *w, const char *name, const char *description, const cJSON *schema,
                       const char *schema_default)
{
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "name");
    put_str(w, name);
    if (description) {
        PRISM_JSON_KEY(w, "description");
        put_str(w, description);
    }
    PRISM_JSON_KEY(w, "input_schema");
    if (schema)
        prism_json_value(w, schema);
    else
        prism_json_raw(w, schema_default, strlen(schema_default));
    prism_json_object_end(w);
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

static const char *tool_name(const cJSON *tool)
{
    return str_of(field(field(tool, "function"), "name"));
}

/* Anthropic has no allowed-tools list: the tools outside it are not sent. */
static int sends_tool(const req *r, const cJSON *tool)
{
    return r->allowed == NULL || is_allowed(r->allowed, tool_name(tool));
}

static void write_tools(req *r)
{
    prism_json_writer *w = r->w;
    if (r->tools == NULL && r->json_tool == NULL)
        return;
    PRISM_JSON_KEY(w, "tools");
    prism_json_array_begin(w);
    const cJSON *tool;
    cJSON_ArrayForEach(tool, r->tools)
    {
        if (!sends_tool(r, tool))
            continue;
        const cJSON *fn = field(tool, "function");
        write_tool(w, tool_name(tool), str_of(field(fn, "description")), field(fn, "parameters"),
                   "{\"type\":\"object\",\"properties\":{}}");
    }
    if (r->json_tool)
        write_tool(w, r->json_tool, JSON_TOOL_DESCRIPTION, r->json_schema, "{\"type\":\"object\"}");
    prism_json_array_end(w);
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

/* How many of the client's tools allowed_tools keeps. */
static int allowed_count(req *r)
{
    int left = 0;
    const cJSON *tool;
    cJSON_ArrayForEach(tool, r->tools)
    {
        left += sends_tool(r, tool);
    }
    return left;
}

static int check_tool_choice(req *r, int ntools)
{
    const cJSON *tc = field(r->in, "tool_choice"), *parallel = field(r->in, "parallel_tool_calls"), *allowed = NULL;
    const char *type = NULL, *name = NULL;
    if (parallel && !cJSON_IsBool(parallel))
        return fail(r, "invalid_type", "expected a boolean.", "parallel_tool_calls");
    if (tc && tool_choice_type(r, tc, &type, &name, &allowed) != 0)
        return -1;
    r->allowed = ntools > 0 ? allowed : NULL;
    if (r->allowed != NULL && (ntools = allowed_count(r)) == 0)
        return fail(r, "invalid_value", "none of allowed_tools.tools is among the request's tools.",
                    "tool_choice.allowed_tools.tools");
    if (ntools == 0) { /* nothing to choose from: auto and none mean the same, forcing is an error */
        if (type && strcmp(type, "auto") != 0 && strcmp(type, "none") != 0)
            return fail(r, "invalid_value", "a tool choice that forces a tool needs tools.", "tool_choice");
        return 0;
    }
    r->serial = cJSON_IsFalse(parallel) && !(type && strcmp(type, "none") == 0);
    if (type == NULL && !r->serial)
        return 0;
    r->choice_type = type ? type : "auto";
    r->choice_name = name;
    return 0;
}

static void write_tool_choice(req *r)
{
    prism_json_writer *w = r->w;
    if (r->choice_type == NULL)
        return;
    PRISM_JSON_KEY(w, "tool_choice");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    put_str(w, r->choice_type);
    if (r->choice_name) {
        PRISM_JSON_KEY(w, "name");
        put_str(w, r->choice_name);
    }
    if (r->serial) {
        PRISM_JSON_KEY(w, "disable_parallel_tool_use");
        prism_json_bool(w, 1);
    }
    prism_json_object_end(w);
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

/* The forced tool the answer must come through: it is sent after the
 * client's tools and replaces any client tool_choice. */
static void use_json_tool(req *r, const char *name, const cJSON *schema)
{
    r->json_tool = name;
    r->json_schema = schema;
    r->choice_type = "tool";
    r->choice_name = name;
    r->info->json_tool = 1;
    snprintf(r->info->json_tool_name, sizeof(r->info->json_tool_name), "%s", name);
}

/* Returns 1 when the answer goes through a forced tool, 0 when not, -1 on error. */
static int check_response_format(req *r)
{
    const cJSON *rf = field(r->in, "response_format");
    if (rf == NULL)
        return 0;
    const char *type = str_of(field(rf, "type"));
    if (type && strcmp(type, "text") == 0)
        return 0;
    if (type && strcmp(type, "json_object") == 0) {
        use_json_tool(r, JSON_TOOL_DEFAULT, NULL);
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
    use_json_tool(r, name && valid_tool_name(name) ? name : JSON_TOOL_DEFAULT, schema);
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

/* Sets the thinking budget (0 when thinking is off); -1 on a bad value. A
 * client's own Anthropic-style `thinking` object wins over reasoning_effort.
 *
 * With thinking on, Anthropic refuses a conversation whose last assistant
 * turn calls tools without starting with that turn's signed thinking block.
 * OpenAI clients running a tool loop send the turn back without it (they
 * have nowhere to keep it), so reasoning_effort then leaves thinking off for
 * this request instead of earning a 400. */
static int check_thinking(req *r)
{
    const cJSON *own = field(r->in, "thinking");
    if (own) {
        if (!cJSON_IsObject(own))
            return fail(r, "invalid_type", "expected an Anthropic thinking object.", "thinking");
        r->own_thinking = own;
        const char *type = str_of(field(own, "type"));
        const cJSON *budget = field(own, "budget_tokens");
        if (type && strcmp(type, "disabled") == 0)
            r->budget = 0;
        else if (is_integer(budget) && budget->valuedouble >= 1 && budget->valuedouble <= INT_MAX)
            r->budget = (long long)budget->valuedouble;
        else
            r->budget = 1; /* on, with a budget we cannot read: still drop what thinking refuses */
        return 0;
    }
    const cJSON *effort = field(r->in, "reasoning_effort");
    if (effort == NULL)
        return 0;
    int budget = effort_budget(r, effort);
    if (budget < 0)
        return -1;
    int tool_turn_without_thinking = r->turn_calls && !r->turn_thinks;
    r->budget = tool_turn_without_thinking ? 0 : budget;
    return 0;
}

static void write_thinking(req *r)
{
    prism_json_writer *w = r->w;
    if (r->own_thinking == NULL && r->budget == 0)
        return;
    PRISM_JSON_KEY(w, "thinking");
    if (r->own_thinking) {
        prism_json_value(w, r->own_thinking);
        return;
    }
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "enabled");
    PRISM_JSON_KEY(w, "budget_tokens");
    prism_json_number(w, (double)r->budget);
    prism_json_object_end(w);
}

static int check_limits(req *r)
{
    r->max_tokens = max_tokens_of(r);
    if (r->max_tokens < 0 || check_thinking(r) != 0)
        return -1;
    if (r->budget > 0 && r->json_tool)
        return fail(r, "unsupported_parameter",
                    "Claude cannot think while it is forced to answer through a tool; drop reasoning_effort or "
                    "response_format.",
                    "response_format");
    if (r->budget > 0 && r->max_tokens <= r->budget) /* budget_tokens must stay below max_tokens */
        r->max_tokens += r->budget;
    return check_sampling(r);
}

/* ---- the whole request ---- */

static int check_model(req *r)
{
    r->model = str_of(field(r->in, "model"));
    if (r->model == NULL || r->model[0] == '\0')
        return fail(r, "missing_required_parameter", "expected a non-empty string.", "model");
    return 0;
}

/* Every check, in the order a client reads the request's errors. */
static int check_all(req *r)
{
    r->checking = 1;
    if (check_model(r) || check_unsupported(r) || check_messages(r))
        return -1;
    int ntools = check_tools(r);
    if (ntools < 0)
        return -1;
    /* response_format wins: its forced tool replaces any client tool_choice. */
    int json_tool = check_response_format(r);
    if (json_tool < 0 || (json_tool == 0 && check_tool_choice(r, ntools)))
        return -1;
    if (check_limits(r) || check_stop(r) || check_user(r) || check_stream(r))
        return -1;
    r->checking = 0;
    return 0;
}

static void write_all(req *r)
{
    prism_json_writer *w = r->w;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "model");
    put_str(w, r->model);
    write_messages(r);
    write_tools(r);
    write_tool_choice(r);
    write_thinking(r);
    PRISM_JSON_KEY(w, "max_tokens");
    prism_json_number(w, (double)r->max_tokens);
    write_sampling(r);
    write_stop(r);
    write_user(r);
    write_stream(r);
    prism_json_object_end(w);
}

static char *translate(req *r, size_t *len)
{
    if (!cJSON_IsObject(r->in)) {
        fail(r, "invalid_type", "the request body must be a JSON object.", "%s", "");
        return NULL;
    }
    if (check_all(r) != 0 || r->oom)
        return NULL;
    if ((r->w = prism_json_writer_new()) == NULL)
        return NULL;
    write_all(r);
    if (r->oom) {
        prism_json_writer_free(r->w);
        return NULL;
    }
    return prism_json_writer_finish(r->w, len);
}

char *claude_request_from_openai(const cJSON *openai, const claude_options *opt, claude_request_info *info, size_t *len,
                                 claude_error *err)
{
    memset(info, 0, sizeof(*info));
    memset(err, 0, sizeof(*err));
    req r = {.in = openai, .opt = opt, .info = info, .err = err};
    size_t n = 0;
    char *body = translate(&r, &n);
    if (r.notes != r.few_notes)
        free(r.notes);
    cJSON_Delete(r.args);
    if (len)
        *len = body ? n : 0;
    if (body)
        return body;
    if (err->status == 0)
        set_error(err, 500, "api_error", "internal_error", "", "Out of memory while translating the request.");
    memset(info, 0, sizeof(*info));
    return NULL;
}
