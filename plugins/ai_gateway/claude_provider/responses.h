/*
 * responses.h - OpenAI's Responses API on Claude, as pure functions.
 *
 * A Responses request is carried to the Chat Completions request it asks
 * for, which translate_request.c then takes to Anthropic: one translation
 * of the conversation, tools and options serves both endpoints. Anthropic's
 * answer is written as a Response, and its stream as the Responses events
 * (stream_responses.c). docs/translation.md, "The Responses API", is the
 * table these implement.
 */
#ifndef CLAUDE_RESPONSES_H
#define CLAUDE_RESPONSES_H

#include "stream.h"
#include "translate.h"

/* A kept item's JSON (malloc'd) for {"type":"item_reference","id":…}, or
 * NULL when unknown (item_store.h keeps them). */
typedef char *claude_item_lookup(void *data, const char *id);
/* Hands over a completed output item's JSON to keep under its id. */
typedef void claude_item_keep(void *data, const char *id, const char *json, size_t len);

/* Where each message of the chat request came from: origins->of[m] is the
 * index of the input item that made message m (the first, for an
 * assistant turn several items make), or one of these. The caller frees
 * `of`. */
enum { CLAUDE_RSP_FROM_INSTRUCTIONS = -1, CLAUDE_RSP_FROM_INPUT = -2 /* input as a string */ };
typedef struct claude_rsp_origins {
    int *of;
    size_t n;
} claude_rsp_origins;

/* The Chat Completions request (a new tree: cJSON_Delete) that `request`,
 * a Responses request, asks for; item references are looked up with
 * `lookup` (NULL: none resolve), and the messages' origins noted in
 * *origins (may be NULL). NULL with *err filled (400, or 500 when memory
 * ran out). */
cJSON *claude_chat_from_responses(const cJSON *request, claude_item_lookup *lookup, void *lookup_data,
                                  claude_rsp_origins *origins, claude_error *err);
/* An error the chat translation found in that request, named as the
 * Responses request has it: messages[2].content -> input[3],
 * tools[0].function.parameters -> tools[0].parameters, response_format ->
 * text.format, max_completion_tokens -> max_output_tokens, in the param and
 * in the message. */
void claude_rsp_error_param(const claude_rsp_origins *origins, claude_error *err);

/* The Response (malloc'd, its length in *len) for an Anthropic message;
 * `request` is the client's Responses request, which the Response echoes;
 * its items go to `keep` (when not NULL). As claude_response_to_openai
 * otherwise. */
char *claude_response_to_responses(const cJSON *anthropic, const cJSON *request, const claude_request_info *info,
                                   long created, claude_usage *usage, size_t *len, claude_error *err,
                                   claude_item_keep *keep, void *keep_data);

/* ---- what the answer and the stream write alike ---- */

typedef enum claude_rsp_kind { CLAUDE_RSP_MESSAGE, CLAUDE_RSP_CALL, CLAUDE_RSP_REASONING } claude_rsp_kind;

/* The prefix of a reasoning item's encrypted_content that holds a
 * redacted_thinking block's data; otherwise it holds a thinking block's
 * signature. Either way the client sends it back and Claude gets the block. */
#define CLAUDE_RSP_REDACTED "redacted_thinking:"

/* One output item: a message with one output_text part, a function call, or
 * reasoning (a thinking block: its text as the summary). */
typedef struct claude_rsp_item {
    claude_rsp_kind kind;
    char id[96];         /* msg_…, fc_… or rs_… */
    const char *call_id; /* a call's: the tool_use id, which the client sends back */
    const char *name;
    const char *text; /* the message's text, the call's arguments, or the thinking */
    size_t len;
    const char *sealed; /* reasoning: its encrypted_content, or NULL */
} claude_rsp_item;

typedef struct claude_rsp_head {
    const char *id; /* resp_… */
    const char *model;
    long created;
    const char *status;     /* in_progress, completed, incomplete, failed */
    const char *incomplete; /* incomplete_details.reason, or NULL */
    const char *error_code; /* failed: error.code and error.message */
    const char *error_message;
    const claude_usage *usage; /* NULL: null */
    const cJSON *request;      /* the client's request */
} claude_rsp_head;

/* The Response object with these items; `done` says whether each item is
 * complete ("completed", with its content) or was just added. */
void claude_rsp_write(prism_json_writer *w, const claude_rsp_head *h, const claude_rsp_item *items, size_t n);
void claude_rsp_write_item(prism_json_writer *w, const claude_rsp_item *it, int done);
/* Each item as its own completed JSON, handed to `keep`. */
void claude_rsp_keep_items(const claude_rsp_item *items, size_t n, claude_item_keep *keep, void *data);
/* An output_text part: {"type":"output_text","text":…,"annotations":[],"logprobs":[]}. */
void claude_rsp_write_text_part(prism_json_writer *w, const char *text, size_t len);
/* "resp_" (or the given prefix) and what follows the first '_' of an
 * Anthropic id ("msg_01AB" -> "resp_01AB"); `k` > 0 adds "_k". */
void claude_rsp_id(char *out, size_t outlen, const char *prefix, const char *anthropic_id, unsigned k);
/* Whether a stop_reason leaves the Response incomplete: the reason then. */
const char *claude_rsp_incomplete(const char *stop_reason);

/* ---- the stream ---- */

typedef struct claude_rstream claude_rstream;

/* `request` (the client's request) must outlive the stream. */
claude_rstream *claude_rstream_new(const cJSON *request, const claude_request_info *info, long created);
void claude_rstream_set_parser(claude_rstream *s, claude_parse_fn *parse, void *data);
void claude_rstream_set_picker(claude_rstream *s, claude_pick_fn *pick, void *data); /* as claude_stream_set_picker */
/* The stream keeps every item's text for response.completed: past this many
 * bytes in all (default 32 MiB) it ends with an error instead. */
void claude_rstream_set_max_bytes(claude_rstream *s, size_t max_bytes);
/* The completed items go to `keep` when the Response completes. */
void claude_rstream_set_keep(claude_rstream *s, claude_item_keep *keep, void *data);
/* One Anthropic event in; Responses events ("event: …\ndata: {…}\n\n") out. */
claude_stream_state claude_rstream_event(claude_rstream *s, const char *event, const char *data, size_t len,
                                         claude_buf *out);
/* The upstream ended or failed before message_stop: an error event. */
void claude_rstream_fail(claude_rstream *s, const char *code, const char *message, claude_buf *out);
claude_stream_state claude_rstream_state_of(const claude_rstream *s);
void claude_rstream_usage(const claude_rstream *s, long *prompt_tokens, long *completion_tokens);
void claude_rstream_free(claude_rstream *s);

#endif
