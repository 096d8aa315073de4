/*
 * stream.h - Anthropic's SSE stream -> OpenAI chat.completion.chunk SSE, as
 * pure, incremental code: bytes in, bytes out, state in a struct.
 *
 *   claude_sse_feed      splits upstream bytes into events (any chunking)
 *   claude_stream_event  translates one event into zero or more SSE frames
 *
 * The provider calls both as bytes arrive and writes whatever frames come
 * out straight to the client, so nothing waits for the whole stream.
 */
#ifndef CLAUDE_STREAM_H
#define CLAUDE_STREAM_H

#include <stddef.h>

#include "translate.h"

/* A growable byte buffer (output frames). */
typedef struct claude_buf {
    char *data;
    size_t len, cap;
} claude_buf;

int claude_buf_append(claude_buf *b, const char *data, size_t len);
void claude_buf_reset(claude_buf *b); /* len = 0, keeps memory */
void claude_buf_free(claude_buf *b);

/* ---- SSE framing (text/event-stream, per the WHATWG rules) ---- */

typedef struct claude_sse claude_sse;

/* Events larger than max_event_bytes make feed fail (a broken upstream must
 * not grow memory without bound). */
claude_sse *claude_sse_new(size_t max_event_bytes);
/* Calls on_event for each complete event: `event` is the event name ("" when
 * none), `data` the joined data lines (NUL-terminated). A non-zero return
 * from on_event stops feeding and is returned. -1 when an event is too big. */
int claude_sse_feed(claude_sse *p, const char *buf, size_t len,
                    int (*on_event)(void *user, const char *event, const char *data, size_t data_len), void *user);
void claude_sse_free(claude_sse *p);

/* ---- event translation ---- */

typedef struct claude_stream claude_stream;

typedef enum claude_stream_state {
    CLAUDE_STREAM_OPEN = 0,
    CLAUDE_STREAM_DONE,  /* message_stop seen: [DONE] written */
    CLAUDE_STREAM_ERROR, /* an error event or bad data: error frame written */
} claude_stream_state;

/* `created` is the Unix time every chunk reports. */
claude_stream *claude_stream_new(const claude_request_info *info, long created);
/* How event data becomes a tree: one JSON value and nothing after it but
 * whitespace, else NULL. The tree is only read, and only until the next
 * call. The default is cJSON's parse, a tree per event; the provider passes
 * a prism_json_scratch's, the same tree in a fraction of the time. */
typedef const cJSON *claude_parse_fn(void *data, const char *text, size_t len);
void claude_stream_set_parser(claude_stream *s, claude_parse_fn *parse, void *data);
/* content_block_delta events, nearly all of a stream, read without a tree
 * when pick reads them (prism_json_scratch_pick's contract); the others,
 * and any pick refuses, still go to the parser. */
typedef int claude_pick_fn(void *data, const char *text, size_t len, const prism_json_want *want, prism_json_field *got,
                           size_t n);
void claude_stream_set_picker(claude_stream *s, claude_pick_fn *pick, void *data);
/* The default: cJSON's tree of the whole text, or NULL unless it is one JSON
 * value with nothing after it but whitespace (cJSON_Delete it). */
cJSON *claude_parse_exact(const char *data, size_t len);
/* Translates one Anthropic event (name + JSON data) and appends the OpenAI
 * frames ("data: {...}\n\n", and "data: [DONE]\n\n" at the end) to out. */
claude_stream_state claude_stream_event(claude_stream *s, const char *event, const char *data, size_t len,
                                        claude_buf *out);
/* The upstream ended or failed before message_stop: appends an error frame
 * (`code` e.g. "upstream_disconnected", `message` human text). */
void claude_stream_fail(claude_stream *s, const char *code, const char *message, claude_buf *out);
claude_stream_state claude_stream_state_of(const claude_stream *s);
/* Token counts seen so far, OpenAI-style (prompt includes cache tokens). */
void claude_stream_usage(const claude_stream *s, long *prompt_tokens, long *completion_tokens);
void claude_stream_free(claude_stream *s);

#endif
