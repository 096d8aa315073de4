/*
 * stream_responses.c - Anthropic SSE -> the Responses API's stream events.
 *
 * Each text block becomes a message item with one output_text part, each
 * tool_use block a function_call item (the forced tool of a json
 * text.format becomes text), each thinking block a reasoning item (its
 * text as the summary, its signature as encrypted_content); server-tool
 * blocks become nothing. Items are announced, streamed as deltas and completed as their
 * blocks start, grow and stop; response.completed (or response.incomplete)
 * then carries the whole Response, so the stream keeps every item's text.
 * Events are "event: <type>\ndata: {…,"sequence_number":n}\n\n"; an error
 * (Anthropic's, or a broken upstream) ends the stream with an `error` event
 * and response.failed, whose Response carries the error and what came.
 */
#include "responses.h"

#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { RB_TEXT, RB_CALL, RB_REASON, RB_SKIP } rb_kind;

typedef struct r_item {
    claude_rsp_item pub; /* what the Response shows; text set when written */
    rb_kind kind;
    unsigned block;  /* the Anthropic block's index */
    unsigned output; /* output_index (not for RB_SKIP) */
    int open;        /* its block has not stopped */
    int json;        /* the forced tool of a json text.format: its input is text */
    int redacted;    /* a redacted_thinking block: no summary */
    char *call_id, *name;
    claude_buf text;
    claude_buf sealed; /* reasoning: encrypted_content */
} r_item;

struct claude_rstream {
    const cJSON *request;
    claude_request_info info;
    long created;
    claude_reader reader; /* how events are read */
    unsigned char state, started, json_seen;
    char id[96];
    char *msg_id, *model;
    claude_counts tokens;
    char stop_reason[48];
    r_item *items;
    size_t n, cap;
    size_t kept, max_kept; /* bytes of text held for response.completed */
    claude_item_keep *keep;
    void *keep_data;
    unsigned outputs, texts, seq;
    prism_json_writer *w;
};

/* Handler results compared by address: not the upstream breaking the
 * protocol, but memory running out, or the answer outgrowing its limit. */
static const char NOMEM[] = "out of memory";
static const char TOO_LONG[] = "too long";

claude_rstream *claude_rstream_new(const cJSON *request, const claude_request_info *info, long created)
{
    claude_rstream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->w = prism_json_writer_new();
    if (s->w == NULL) {
        free(s);
        return NULL;
    }
    s->request = request;
    if (info)
        s->info = *info;
    s->info.json_tool_name[sizeof(s->info.json_tool_name) - 1] = '\0';
    s->created = created;
    s->max_kept = (size_t)32 << 20;
    return s;
}

void claude_rstream_set_max_bytes(claude_rstream *s, size_t max_bytes)
{
    s->max_kept = max_bytes;
}

void claude_rstream_set_keep(claude_rstream *s, claude_item_keep *keep, void *data)
{
    s->keep = keep;
    s->keep_data = data;
}

void claude_rstream_set_parser(claude_rstream *s, claude_parse_fn *parse, void *data)
{
    s->reader.parse = parse;
    s->reader.parse_data = data;
}

void claude_rstream_set_picker(claude_rstream *s, claude_pick_fn *pick, void *data)
{
    s->reader.pick = pick;
    s->reader.pick_data = data;
}

void claude_rstream_free(claude_rstream *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].call_id);
        free(s->items[i].name);
        claude_buf_free(&s->items[i].text);
        claude_buf_free(&s->items[i].sealed);
    }
    free(s->items);
    free(s->msg_id);
    free(s->model);
    prism_json_writer_free(s->w);
    free(s);
}

claude_stream_state claude_rstream_state_of(const claude_rstream *s)
{
    return s ? (claude_stream_state)s->state : CLAUDE_STREAM_ERROR;
}

void claude_rstream_usage(const claude_rstream *s, long *prompt_tokens, long *completion_tokens)
{
    *prompt_tokens = (long)(s->tokens.input + s->tokens.cache_creation + s->tokens.cache_read);
    *completion_tokens = (long)s->tokens.output;
}

/* ---- reading events ---- */

static r_item *item_open(claude_rstream *s, unsigned block)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->items[i].block == block && s->items[i].open)
            return &s->items[i];
    return NULL;
}

/* ---- writing events ---- */

static prism_json_writer *frame_begin(claude_rstream *s, const char *type)
{
    prism_json_writer *w = s->w;
    prism_json_writer_clear(w);
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    prism_json_string(w, type, strlen(type));
    PRISM_JSON_KEY(w, "sequence_number");
    prism_json_number(w, s->seq++);
    return w;
}

static const char *frame_end(claude_rstream *s, const char *type, claude_buf *out)
{
    size_t len = 0;
    prism_json_object_end(s->w);
    const char *json = prism_json_writer_text(s->w, &len);
    if (json == NULL || claude_buf_append(out, "event: ", 7) != 0 || claude_buf_append(out, type, strlen(type)) != 0 ||
        claude_buf_append(out, "\ndata: ", 7) != 0 || claude_buf_append(out, json, len) != 0 ||
        claude_buf_append(out, "\n\n", 2) != 0)
        return NOMEM;
    return NULL;
}

/* The item's "item_id" and "output_index", which most events carry. */
static void item_ref(prism_json_writer *w, const r_item *it)
{
    PRISM_JSON_KEY(w, "item_id");
    prism_json_string(w, it->pub.id, strlen(it->pub.id));
    PRISM_JSON_KEY(w, "output_index");
    prism_json_number(w, it->output);
}

static void item_sync(r_item *it)
{
    it->pub.text = it->text.data ? it->text.data : "";
    it->pub.len = it->text.len;
    it->pub.sealed = it->sealed.len > 0 ? it->sealed.data : NULL;
}

/* Reasoning's summary part: {"type":"summary_text","text":…}. */
static const char *emit_summary_part(claude_rstream *s, const char *type, r_item *it, int done, claude_buf *out)
{
    prism_json_writer *w = frame_begin(s, type);
    item_ref(w, it);
    PRISM_JSON_KEY(w, "summary_index");
    prism_json_number(w, 0);
    PRISM_JSON_KEY(w, "part");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "type");
    PRISM_JSON_LIT(w, "summary_text");
    PRISM_JSON_KEY(w, "text");
    prism_json_string(w, done && it->text.data ? it->text.data : "", done ? it->text.len : 0);
    prism_json_object_end(w);
    return frame_end(s, type, out);
}

/* The Response as it stands; with usage once it is over. `h` has the
 * status and what goes with it. */
static const char *emit_response(claude_rstream *s, const char *type, claude_rsp_head *h, claude_buf *out)
{
    claude_rsp_item *pub = calloc(s->n + 1, sizeof(*pub));
    if (pub == NULL)
        return NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].kind == RB_SKIP)
            continue;
        item_sync(&s->items[i]);
        pub[k++] = s->items[i].pub;
    }
    claude_usage u = {.prompt = (long long)(s->tokens.input + s->tokens.cache_creation + s->tokens.cache_read),
                      .completion = (long long)s->tokens.output,
                      .cached = (long long)s->tokens.cache_read,
                      .cache_write = (long long)s->tokens.cache_creation};
    h->id = s->id;
    h->model = s->model;
    h->created = s->created;
    h->usage = strcmp(h->status, "in_progress") != 0 ? &u : NULL;
    h->request = s->request;
    prism_json_writer *w = frame_begin(s, type);
    PRISM_JSON_KEY(w, "response");
    claude_rsp_write(w, h, pub, k);
    free(pub);
    return frame_end(s, type, out);
}

static const char *emit_item(claude_rstream *s, const char *type, r_item *it, int done, claude_buf *out)
{
    item_sync(it);
    prism_json_writer *w = frame_begin(s, type);
    PRISM_JSON_KEY(w, "output_index");
    prism_json_number(w, it->output);
    PRISM_JSON_KEY(w, "item");
    claude_rsp_write_item(w, &it->pub, done);
    return frame_end(s, type, out);
}

static const char *emit_part(claude_rstream *s, const char *type, r_item *it, int done, claude_buf *out)
{
    prism_json_writer *w = frame_begin(s, type);
    item_ref(w, it);
    PRISM_JSON_KEY(w, "content_index");
    prism_json_number(w, 0);
    PRISM_JSON_KEY(w, "part");
    claude_rsp_write_text_part(w, done ? it->text.data : "", done ? it->text.len : 0);
    return frame_end(s, type, out);
}

/* `error`, then response.failed when the Response had begun. */
static const char *emit_error(claude_rstream *s, const char *code, const char *message, claude_buf *out)
{
    s->state = CLAUDE_STREAM_ERROR;
    prism_json_writer *w = frame_begin(s, "error");
    PRISM_JSON_KEY(w, "code");
    prism_json_string(w, code, strlen(code));
    PRISM_JSON_KEY(w, "message");
    prism_json_string(w, message, strlen(message));
    PRISM_JSON_KEY(w, "param");
    prism_json_null(w);
    const char *err = frame_end(s, "error", out);
    if (err != NULL || !s->started)
        return err;
    claude_rsp_head h = {.status = "failed", .error_code = code, .error_message = message};
    return emit_response(s, "response.failed", &h, out);
}

static void protocol_error(claude_rstream *s, claude_buf *out, const char *reason)
{
    if (reason == NOMEM) {
        emit_error(s, "internal_error", "The gateway ran out of memory translating the stream.", out);
        return;
    }
    if (reason == TOO_LONG) {
        emit_error(s, "upstream_response_too_large", "The Anthropic stream's answer exceeded the gateway's limit.",
                   out);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "Anthropic's stream broke the protocol: %s.", reason);
    emit_error(s, "upstream_protocol_error", msg, out);
}

/* ---- event handlers: NULL when fine, else why the stream is broken ---- */

static const char *on_message_start(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    if (s->started)
        return "message_start came twice";
    const cJSON *msg = ev_obj(ev, "message");
    const char *id = ev_str(msg, "id"), *model = ev_str(msg, "model");
    if (!id || !model)
        return "message_start without a message id and model";
    s->msg_id = ev_strdup(id);
    s->model = ev_strdup(model);
    if (!s->msg_id || !s->model)
        return NOMEM;
    claude_rsp_id(s->id, sizeof(s->id), "resp_", id, 0);
    ev_counts_read(&s->tokens, ev_obj(msg, "usage"));
    s->started = 1;
    claude_rsp_head h = {.status = "in_progress"};
    const char *err = emit_response(s, "response.created", &h, out);
    return err ? err : emit_response(s, "response.in_progress", &h, out);
}

static r_item *item_add(claude_rstream *s, unsigned block, rb_kind kind)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        r_item *items = realloc(s->items, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        s->items = items;
        s->cap = cap;
    }
    r_item *it = &s->items[s->n++];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->block = block;
    it->open = 1;
    if (kind != RB_SKIP)
        it->output = s->outputs++;
    return it;
}

static const char *text_delta(claude_rstream *s, r_item *it, const char *delta, claude_buf *out)
{
    size_t len = strlen(delta);
    if (len == 0)
        return NULL; /* Anthropic opens a tool's input with an empty piece */
    if (len > s->max_kept - s->kept)
        return TOO_LONG;
    s->kept += len;
    if (claude_buf_append(&it->text, delta, len) != 0)
        return NOMEM;
    const char *type = it->kind == RB_CALL     ? "response.function_call_arguments.delta"
                       : it->kind == RB_REASON ? "response.reasoning_summary_text.delta"
                                               : "response.output_text.delta";
    prism_json_writer *w = frame_begin(s, type);
    item_ref(w, it);
    if (it->kind == RB_TEXT) {
        PRISM_JSON_KEY(w, "content_index");
        prism_json_number(w, 0);
    } else if (it->kind == RB_REASON) {
        PRISM_JSON_KEY(w, "summary_index");
        prism_json_number(w, 0);
    }
    PRISM_JSON_KEY(w, "delta");
    prism_json_string(w, delta, len);
    if (it->kind == RB_TEXT) {
        PRISM_JSON_KEY(w, "logprobs");
        prism_json_raw(w, "[]", 2);
    }
    return frame_end(s, type, out);
}

static const char *start_text(claude_rstream *s, unsigned index, const char *initial, claude_buf *out)
{
    r_item *it = item_add(s, index, RB_TEXT);
    if (it == NULL)
        return NOMEM;
    claude_rsp_id(it->pub.id, sizeof(it->pub.id), "msg_", s->msg_id, s->texts++);
    const char *err = emit_item(s, "response.output_item.added", it, 0, out);
    if (!err)
        err = emit_part(s, "response.content_part.added", it, 0, out);
    if (!err && initial && initial[0])
        err = text_delta(s, it, initial, out);
    return err;
}

static const char *start_call(claude_rstream *s, unsigned index, const char *id, const char *name, claude_buf *out)
{
    r_item *it = item_add(s, index, RB_CALL);
    if (it == NULL)
        return NOMEM;
    it->pub.kind = CLAUDE_RSP_CALL;
    it->call_id = ev_strdup(id);
    it->name = ev_strdup(name);
    if (!it->call_id || !it->name)
        return NOMEM;
    it->pub.call_id = it->call_id;
    it->pub.name = it->name;
    claude_rsp_id(it->pub.id, sizeof(it->pub.id), "fc_", id, 0);
    return emit_item(s, "response.output_item.added", it, 0, out);
}

/* `redacted`: a redacted_thinking block's data, sealed whole. */
static const char *start_reasoning(claude_rstream *s, unsigned index, const char *initial, const char *redacted,
                                   claude_buf *out)
{
    r_item *it = item_add(s, index, RB_REASON);
    if (it == NULL)
        return NOMEM;
    it->pub.kind = CLAUDE_RSP_REASONING;
    claude_rsp_id(it->pub.id, sizeof(it->pub.id), "rs_", s->msg_id, s->texts++);
    if (redacted != NULL) {
        it->redacted = 1;
        if (claude_buf_append(&it->sealed, CLAUDE_RSP_REDACTED, strlen(CLAUDE_RSP_REDACTED)) != 0 ||
            claude_buf_append(&it->sealed, redacted, strlen(redacted)) != 0)
            return NOMEM;
        return emit_item(s, "response.output_item.added", it, 0, out);
    }
    const char *err = emit_item(s, "response.output_item.added", it, 0, out);
    if (!err)
        err = emit_summary_part(s, "response.reasoning_summary_part.added", it, 0, out);
    if (!err && initial && initial[0])
        err = text_delta(s, it, initial, out);
    return err;
}

static const char *on_block_start(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    unsigned index;
    if (ev_index(ev, &index) != 0)
        return "content_block_start without a valid index";
    if (item_open(s, index))
        return "a content block started twice";
    const cJSON *cb = ev_obj(ev, "content_block");
    const char *type = ev_str(cb, "type");
    if (type == NULL)
        return "content_block_start without a block type";
    if (strcmp(type, "text") == 0)
        return start_text(s, index, ev_str(cb, "text"), out);
    if (strcmp(type, "thinking") == 0)
        return start_reasoning(s, index, ev_str(cb, "thinking"), NULL, out);
    if (strcmp(type, "redacted_thinking") == 0) {
        const char *data = ev_str(cb, "data");
        return data ? start_reasoning(s, index, NULL, data, out) : "a redacted_thinking block without data";
    }
    if (strcmp(type, "tool_use") != 0)
        return item_add(s, index, RB_SKIP) ? NULL : NOMEM; /* server tools and what comes next */
    const char *id = ev_str(cb, "id"), *name = ev_str(cb, "name");
    if (!id || !name)
        return "a tool_use block without an id and name";
    if (s->info.json_tool && !s->json_seen && strcmp(name, s->info.json_tool_name) == 0) {
        s->json_seen = 1; /* the forced tool's input is the answer's text */
        const char *err = start_text(s, index, NULL, out);
        if (err == NULL)
            item_open(s, index)->json = 1;
        return err;
    }
    return start_call(s, index, id, name, out);
}

/* thinking_delta streams the summary; signature_delta is sealed, unseen
 * until the item is done. */
static const char *reasoning_delta(claude_rstream *s, r_item *it, const claude_delta *d, claude_buf *out)
{
    int thinking = strcmp(d->type, "thinking_delta") == 0;
    if (!thinking && strcmp(d->type, "signature_delta") != 0)
        return NULL;
    const char *piece = thinking ? d->thinking : d->signature;
    if (piece == NULL || it->redacted)
        return "a thinking delta without its text, or for a redacted block";
    if (thinking)
        return text_delta(s, it, piece, out);
    size_t len = strlen(piece);
    if (len > s->max_kept - s->kept)
        return TOO_LONG;
    s->kept += len;
    return claude_buf_append(&it->sealed, piece, len) == 0 ? NULL : NOMEM;
}

static const char *block_delta(claude_rstream *s, const claude_delta *d, claude_buf *out)
{
    if (!d->index_ok)
        return "content_block_delta without a valid index";
    r_item *it = item_open(s, d->index);
    if (it == NULL)
        return "a delta for a block that was not started";
    if (d->type == NULL)
        return "a delta without a type";
    if (it->kind == RB_SKIP)
        return NULL;
    if (it->kind == RB_REASON)
        return reasoning_delta(s, it, d, out);
    int json = strcmp(d->type, "input_json_delta") == 0;
    if (!json && strcmp(d->type, "text_delta") != 0)
        return NULL; /* citations and whatever comes next */
    const char *piece = json ? d->partial_json : d->text;
    if (piece == NULL)
        return "a delta without its text";
    if ((it->kind == RB_CALL || it->json) != json)
        return "a delta of the wrong kind for its block";
    return text_delta(s, it, piece, out);
}

static const char *on_block_delta(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    claude_delta d;
    ev_delta_of_tree(ev, &d);
    return block_delta(s, &d, out);
}

static const char *on_block_stop(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    unsigned index;
    if (ev_index(ev, &index) != 0)
        return "content_block_stop without a valid index";
    r_item *it = item_open(s, index);
    if (it == NULL)
        return "content_block_stop for a block that was not started";
    it->open = 0;
    if (it->kind == RB_SKIP)
        return NULL;
    const char *err = NULL;
    if (it->kind == RB_REASON) {
        if (!it->redacted) {
            prism_json_writer *w = frame_begin(s, "response.reasoning_summary_text.done");
            item_ref(w, it);
            PRISM_JSON_KEY(w, "summary_index");
            prism_json_number(w, 0);
            PRISM_JSON_KEY(w, "text");
            prism_json_string(w, it->text.data ? it->text.data : "", it->text.len);
            err = frame_end(s, "response.reasoning_summary_text.done", out);
            if (!err)
                err = emit_summary_part(s, "response.reasoning_summary_part.done", it, 1, out);
        }
    } else if (it->kind == RB_CALL) {
        if (it->text.len == 0 && claude_buf_append(&it->text, "{}", 2) != 0)
            return NOMEM; /* a call without input took no arguments */
        prism_json_writer *w = frame_begin(s, "response.function_call_arguments.done");
        item_ref(w, it);
        PRISM_JSON_KEY(w, "arguments");
        prism_json_string(w, it->text.data, it->text.len);
        err = frame_end(s, "response.function_call_arguments.done", out);
    } else {
        prism_json_writer *w = frame_begin(s, "response.output_text.done");
        item_ref(w, it);
        PRISM_JSON_KEY(w, "content_index");
        prism_json_number(w, 0);
        PRISM_JSON_KEY(w, "text");
        prism_json_string(w, it->text.data ? it->text.data : "", it->text.len);
        PRISM_JSON_KEY(w, "logprobs");
        prism_json_raw(w, "[]", 2);
        err = frame_end(s, "response.output_text.done", out);
        if (!err)
            err = emit_part(s, "response.content_part.done", it, 1, out);
    }
    return err ? err : emit_item(s, "response.output_item.done", it, 1, out);
}

static const char *on_message_delta(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    (void)out;
    const char *stop = ev_str(ev_obj(ev, "delta"), "stop_reason");
    if (stop != NULL)
        snprintf(s->stop_reason, sizeof(s->stop_reason), "%s", stop);
    ev_counts_read(&s->tokens, ev_obj(ev, "usage"));
    return NULL;
}

static const char *on_message_stop(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    (void)ev;
    claude_rsp_head h = {.status = "completed", .incomplete = claude_rsp_incomplete(s->stop_reason)};
    s->state = CLAUDE_STREAM_DONE;
    for (size_t i = 0; s->keep != NULL && i < s->n; i++) {
        if (s->items[i].kind != RB_SKIP) {
            item_sync(&s->items[i]);
            claude_rsp_keep_items(&s->items[i].pub, 1, s->keep, s->keep_data);
        }
    }
    if (h.incomplete != NULL) {
        h.status = "incomplete";
        return emit_response(s, "response.incomplete", &h, out);
    }
    return emit_response(s, "response.completed", &h, out);
}

static const char *on_error(claude_rstream *s, const cJSON *ev, claude_buf *out)
{
    const cJSON *e = ev_obj(ev, "error");
    const char *message = ev_str(e, "message"), *type, *code;
    claude_error_names(ev_str(e, "type"), &type, &code);
    return emit_error(s, code, message ? message : "Anthropic reported an error mid-stream.", out);
}

typedef const char *(*event_handler)(claude_rstream *, const cJSON *, claude_buf *);

/* ping and unknown event types are not listed: they are ignored. */
static const struct {
    const char *type;
    event_handler fn;
    int needs_start;
} handlers[] = {
    {"content_block_delta", on_block_delta, 1},
    {"message_start", on_message_start, 0},
    {"content_block_start", on_block_start, 1},
    {"content_block_stop", on_block_stop, 1},
    {"message_delta", on_message_delta, 1},
    {"message_stop", on_message_stop, 1},
    {"error", on_error, 0},
};

static const char *route(claude_rstream *s, const char *type, const cJSON *ev, claude_buf *out)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (strcmp(type, handlers[i].type) != 0)
            continue;
        if (handlers[i].needs_start && !s->started)
            return "an event before message_start";
        return handlers[i].fn(s, ev, out);
    }
    return NULL;
}

claude_stream_state claude_rstream_event(claude_rstream *s, const char *event, const char *data, size_t len,
                                         claude_buf *out)
{
    if (!s || !out)
        return CLAUDE_STREAM_ERROR;
    if (s->state != CLAUDE_STREAM_OPEN)
        return (claude_stream_state)s->state;
    const char *err = "event data that is not a JSON object";
    claude_delta d;
    const cJSON *ev;
    cJSON *owned;
    if (ev_read(&s->reader, event, data, len, &d, &ev, &owned))
        err = s->started ? block_delta(s, &d, out) : "an event before message_start";
    else if (cJSON_IsObject(ev))
        err = route(s, ev_type(ev, event), ev, out);
    cJSON_Delete(owned);
    if (err && s->state == CLAUDE_STREAM_OPEN)
        protocol_error(s, out, err);
    else if (err == NOMEM)
        s->state = CLAUDE_STREAM_ERROR;
    return (claude_stream_state)s->state;
}

void claude_rstream_fail(claude_rstream *s, const char *code, const char *message, claude_buf *out)
{
    if (!s || !out || s->state != CLAUDE_STREAM_OPEN)
        return;
    emit_error(s, code ? code : "upstream_disconnected", message ? message : "The upstream stream ended early.", out);
}
