/*
 * stream.c - Anthropic SSE -> OpenAI chat.completion.chunk frames.
 *
 * Two independent layers, both pure and incremental:
 *   claude_sse_*     text/event-stream framing (WHATWG rules), any chunking
 *   claude_stream_*  one Anthropic event in, zero or more OpenAI frames out
 *
 * The translator trusts nothing: every field it needs is type-checked, and a
 * stream that breaks the protocol ends in one error frame (state ERROR).
 * docs/translation.md, section "Streaming", is the contract implemented here.
 */
#include "stream.h"

#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* claude_buf: data stays NUL-terminated so it can be used as a string. */

static int buf_reserve(claude_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int claude_buf_append(claude_buf *b, const char *data, size_t len)
{
    if (!b || (len > 0 && !data) || buf_reserve(b, len) != 0)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void claude_buf_reset(claude_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void claude_buf_free(claude_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static const char *buf_str(const claude_buf *b)
{
    return b->data ? b->data : "";
}

/* ------------------------------------------------------------------ */
/* SSE framing */

/* Buffers that grew for one big event are given back afterwards, so a
 * long-lived stream does not keep its worst event's memory. */
#define SSE_KEEP_BYTES 16384

struct claude_sse {
    size_t max;
    claude_buf line; /* the line being received */
    claude_buf data; /* data lines of the current event, joined by \n */
    claude_buf name; /* the current event's name */
    unsigned char has_data;
    unsigned char after_cr;  /* last line ended in \r: a leading \n belongs to it */
    unsigned char seen_line; /* a BOM may only open the first line */
    unsigned char failed;    /* an event was too big: the stream is unusable */
};

claude_sse *claude_sse_new(size_t max_event_bytes)
{
    claude_sse *p = calloc(1, sizeof(*p));
    if (p)
        p->max = max_event_bytes;
    return p;
}

void claude_sse_free(claude_sse *p)
{
    if (!p)
        return;
    claude_buf_free(&p->line);
    claude_buf_free(&p->data);
    claude_buf_free(&p->name);
    free(p);
}

static void buf_trim(claude_buf *b)
{
    if (b->cap > SSE_KEEP_BYTES)
        claude_buf_free(b);
    else
        claude_buf_reset(b);
}

/* The whole pending event (name, data, partial line) counts against the
 * limit; checking at every append makes the verdict independent of how the
 * bytes were chunked. */
static int line_append(claude_sse *p, const char *s, size_t n)
{
    size_t used = p->line.len + p->data.len + p->name.len;
    if (n > p->max || used > p->max - n)
        return -1;
    return claude_buf_append(&p->line, s, n);
}

/* The length of the line at s: up to its \n or (when the bytes fed hold
 * one) \r, or n. Vectorised searches instead of a loop over every byte: an
 * event is mostly one long data line, and Anthropic ends lines with \n
 * alone, so a feed looks for \r once and then lines for \n only. */
static size_t span_to_eol(const char *s, size_t n, int has_cr)
{
    const char *lf = memchr(s, '\n', n);
    size_t i = lf ? (size_t)(lf - s) : n;
    const char *cr = has_cr ? memchr(s, '\r', i) : NULL;
    return cr ? (size_t)(cr - s) : i;
}

static int dispatch(claude_sse *p, int (*on_event)(void *, const char *, const char *, size_t), void *user)
{
    int rc = 0;
    if (p->has_data)
        rc = on_event(user, buf_str(&p->name), buf_str(&p->data), p->data.len);
    /* WHATWG: a blank line always clears the event name, data or not. */
    buf_trim(&p->data);
    buf_trim(&p->name);
    p->has_data = 0;
    return rc;
}

static int set_field(claude_sse *p, const char *field, size_t flen, const char *value, size_t vlen)
{
    if (flen == 5 && memcmp(field, "event", 5) == 0) {
        claude_buf_reset(&p->name);
        return claude_buf_append(&p->name, value, vlen);
    }
    if (flen == 4 && memcmp(field, "data", 4) == 0) {
        if (p->has_data && claude_buf_append(&p->data, "\n", 1) != 0)
            return -1;
        p->has_data = 1;
        return claude_buf_append(&p->data, value, vlen);
    }
    return 0; /* id, retry and unknown fields mean nothing to us */
}

/* One whole line, in the caller's bytes or in p->line. */
static int process_line(claude_sse *p, const char *s, size_t n,
                        int (*on_event)(void *, const char *, const char *, size_t), void *user)
{
    if (!p->seen_line && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    p->seen_line = 1;
    int rc = 0;
    if (n == 0) {
        rc = dispatch(p, on_event, user);
    } else if (s[0] != ':') {
        const char *colon = memchr(s, ':', n);
        size_t flen = colon ? (size_t)(colon - s) : n;
        const char *v = colon ? colon + 1 : s + n;
        size_t vlen = n - (size_t)(v - s);
        if (vlen > 0 && v[0] == ' ') {
            v++;
            vlen--;
        }
        if (set_field(p, s, flen, v, vlen) != 0) {
            p->failed = 1; /* out of memory: the event is lost, so is the stream */
            rc = -1;
        }
    }
    claude_buf_reset(&p->line);
    return rc;
}

int claude_sse_feed(claude_sse *p, const char *buf, size_t len,
                    int (*on_event)(void *user, const char *event, const char *data, size_t data_len), void *user)
{
    if (!p || p->failed || (len > 0 && !buf) || !on_event)
        return -1;
    int has_cr = len > 0 && memchr(buf, '\r', len) != NULL;
    size_t i = 0;
    while (i < len) {
        if (p->after_cr) {
            /* a \r\n split across two feeds is still one line end */
            p->after_cr = 0;
            if (buf[i] == '\n' && ++i == len)
                break;
        }
        size_t n = span_to_eol(buf + i, len - i, has_cr);
        /* A line that ends here and began here is used where it is; the
         * limit is checked as if it had been copied. */
        int whole = i + n < len && p->line.len == 0;
        if (n > 0 && (whole ? n > p->max || p->data.len + p->name.len > p->max - n : line_append(p, buf + i, n) != 0)) {
            p->failed = 1;
            return -1;
        }
        const char *line = whole ? buf + i : buf_str(&p->line);
        size_t line_len = whole ? n : p->line.len;
        i += n;
        if (i == len)
            break;
        p->after_cr = buf[i] == '\r';
        i++;
        int rc = process_line(p, line, line_len, on_event, user);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Event translation: state */

typedef enum block_kind {
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_REDACTED,
    BLOCK_TOOL,
    BLOCK_JSON_TOOL, /* the forced response_format tool: its input is the content */
    BLOCK_OTHER,     /* a block type we do not translate (e.g. server tools) */
} block_kind;

/* An open content block: Anthropic's block index -> what it is and, for a
 * tool_use block, its OpenAI tool_calls index. Blocks leave the table at
 * content_block_stop, so it holds one or two entries in practice. */
typedef struct open_block {
    unsigned index;
    unsigned tool;
    unsigned char kind;
    unsigned char has_input; /* a tool block: some of its input was sent */
} open_block;

/* Anthropic streams blocks one after another (the table grows 4, 8, ...);
 * anything near this many open at once is a broken or hostile upstream. */
#define MAX_OPEN_BLOCKS 64
struct claude_stream {
    claude_request_info info;
    long created;
    char *id;
    char *model;
    claude_counts tokens;
    open_block *blocks;
    unsigned nblocks, cap;
    unsigned next_tool;
    unsigned char started;   /* message_start seen */
    unsigned char role_sent; /* the first chunk, with the role, went out */
    unsigned char state;     /* claude_stream_state */
    claude_reader reader;    /* how events are read */
    char *head;              /* every chunk's text up to its delta (make_head) */
    size_t head_len;
    prism_json_writer *w; /* each delta, written again and again in the same memory */
};

/* Handlers return NULL on success, else why the stream broke the protocol;
 * NOMEM (compared by address) means an allocation failed instead. */
static const char NOMEM[] = "out of memory";

claude_stream *claude_stream_new(const claude_request_info *info, long created)
{
    claude_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (info)
        s->info = *info;
    s->info.json_tool_name[sizeof(s->info.json_tool_name) - 1] = '\0';
    s->created = created;
    return s;
}

void claude_stream_set_parser(claude_stream *s, claude_parse_fn *parse, void *data)
{
    s->reader.parse = parse;
    s->reader.parse_data = data;
}

void claude_stream_set_picker(claude_stream *s, claude_pick_fn *pick, void *data)
{
    s->reader.pick = pick;
    s->reader.pick_data = data;
}

void claude_stream_free(claude_stream *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->model);
    free(s->blocks);
    free(s->head);
    prism_json_writer_free(s->w);
    free(s);
}

claude_stream_state claude_stream_state_of(const claude_stream *s)
{
    return s ? (claude_stream_state)s->state : CLAUDE_STREAM_ERROR;
}

static open_block *block_find(claude_stream *s, unsigned index)
{
    for (unsigned i = 0; i < s->nblocks; i++)
        if (s->blocks[i].index == index)
            return &s->blocks[i];
    return NULL;
}

static const char *block_add(claude_stream *s, unsigned index, block_kind kind, unsigned tool)
{
    if (s->nblocks == MAX_OPEN_BLOCKS)
        return "too many content blocks open at once";
    if (s->nblocks == s->cap) {
        unsigned cap = s->cap ? s->cap * 2 : 4;
        open_block *b = realloc(s->blocks, cap * sizeof(*b));
        if (!b)
            return NOMEM;
        s->blocks = b;
        s->cap = cap;
    }
    s->blocks[s->nblocks++] = (open_block){.index = index, .tool = tool, .kind = (unsigned char)kind};
    return NULL;
}

static void block_remove(claude_stream *s, unsigned index)
{
    open_block *b = block_find(s, index);
    if (b)
        *b = s->blocks[--s->nblocks];
}

/* ------------------------------------------------------------------ */
/* JSON access that never trusts types */

/* An optional string field: absent is fine (""), any other type is not. */
static int opt_str(const cJSON *o, const char *key, const char **out)
{
    const cJSON *v = ev_obj(o, key);
    *out = cJSON_IsString(v) ? v->valuestring : "";
    return v == NULL || cJSON_IsString(v) || cJSON_IsNull(v);
}

/* The whole text must be one JSON value: cJSON alone would accept a valid
 * prefix followed by garbage. */
cJSON *claude_parse_exact(const char *data, size_t len)
{
    const char *end = NULL;
    if (!data || len == 0)
        return NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!j)
        return NULL;
    for (size_t i = (size_t)(end - data); i < len; i++) {
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n') {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

/* The usage counts as an Anthropic usage object, mapped like the
 * non-streamed response's. */
static cJSON *usage_to_openai(const claude_stream *s)
{
    cJSON *a = cJSON_CreateObject();
    if (!prism_json_add(a, "input_tokens", cJSON_CreateNumber(s->tokens.input)) ||
        !prism_json_add(a, "cache_creation_input_tokens", cJSON_CreateNumber(s->tokens.cache_creation)) ||
        !prism_json_add(a, "cache_read_input_tokens", cJSON_CreateNumber(s->tokens.cache_read)) ||
        !prism_json_add(a, "output_tokens", cJSON_CreateNumber(s->tokens.output))) {
        cJSON_Delete(a);
        return NULL;
    }
    cJSON *u = claude_usage_to_openai(a);
    cJSON_Delete(a);
    return u;
}

/* ------------------------------------------------------------------ */
/* Frames */

/* Copies n bytes to p (room made beforehand); where they end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* All or nothing: a client must never see half a frame. */
static int emit_frame(claude_buf *out, const char *payload, size_t n)
{
    if (n > SIZE_MAX - 8 || buf_reserve(out, n + 8) != 0)
        return -1;
    claude_buf_append(out, "data: ", 6);
    claude_buf_append(out, payload, n);
    claude_buf_append(out, "\n\n", 2);
    return 0;
}

/* Takes ownership of j. */
static int emit_json(claude_buf *out, cJSON *j)
{
    size_t len = 0;
    char *text = j ? prism_json_print(j, &len) : NULL;
    int rc = text ? emit_frame(out, text, len) : -1;
    free(text);
    cJSON_Delete(j);
    return rc;
}

/* id, object, created, model: the head every chunk shares. */
static cJSON *chunk_new(const claude_stream *s)
{
    cJSON *c = cJSON_CreateObject();
    int ok = c != NULL;
    ok = ok && prism_json_add(c, "id", cJSON_CreateString(s->id));
    ok = ok && prism_json_add(c, "object", cJSON_CreateString("chat.completion.chunk"));
    ok = ok && prism_json_add(c, "created", cJSON_CreateNumber((double)s->created));
    ok = ok && prism_json_add(c, "model", cJSON_CreateString(s->model));
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Every chunk but the usage one is the stream's head, one delta and a tail:
 *   {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[{"index":0,"delta":
 *   {…}
 *   ,"logprobs":null,"finish_reason":null}]}
 * The head is the same for the whole stream: written once, at message_start,
 * as a whole chunk whose known end is then cut off. */
#define CHUNK_END ",\"logprobs\":null,\"finish_reason\":"
#define HEAD_CUT  "null" CHUNK_END "null}]}"

static const char *make_head(claude_stream *s)
{
    prism_json_writer *w = prism_json_writer_new();
    if (w == NULL)
        return NOMEM;
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "id");
    prism_json_string(w, s->id, strlen(s->id));
    PRISM_JSON_KEY(w, "object");
    PRISM_JSON_LIT(w, "chat.completion.chunk");
    PRISM_JSON_KEY(w, "created");
    prism_json_number(w, (double)s->created);
    PRISM_JSON_KEY(w, "model");
    prism_json_string(w, s->model, strlen(s->model));
    PRISM_JSON_KEY(w, "choices");
    prism_json_array_begin(w);
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "index");
    prism_json_number(w, 0);
    PRISM_JSON_KEY(w, "delta");
    prism_json_null(w); /* from here on, HEAD_CUT */
    PRISM_JSON_KEY(w, "logprobs");
    prism_json_null(w);
    PRISM_JSON_KEY(w, "finish_reason");
    prism_json_null(w);
    prism_json_object_end(w);
    prism_json_array_end(w);
    prism_json_object_end(w);
    size_t len = 0;
    s->head = prism_json_writer_finish(w, &len);
    if (s->head == NULL)
        return NOMEM;
    s->head_len = len - (sizeof(HEAD_CUT) - 1);
    return NULL;
}

/* The stream's writer, emptied and inside a new delta object; NULL when
 * memory ran out. */
static prism_json_writer *delta_begin(claude_stream *s)
{
    if (s->w == NULL && (s->w = prism_json_writer_new()) == NULL)
        return NULL;
    prism_json_writer_clear(s->w);
    prism_json_object_begin(s->w);
    return s->w;
}

/* The delta object ends and goes out in its chunk; `finish` is NULL or one of
 * claude_finish_reason's words, which need no escaping. */
static const char *emit_delta(claude_stream *s, const char *finish, claude_buf *out)
{
    prism_json_object_end(s->w);
    size_t n = 0, f = finish ? strlen(finish) + 2 : 4;
    const char *delta = prism_json_writer_text(s->w, &n);
    size_t total = 6 + s->head_len + n + sizeof(CHUNK_END) - 1 + f + 3 + 2;
    if (delta == NULL || s->head == NULL || buf_reserve(out, total) != 0)
        return NOMEM;
    char *p = out->data + out->len; /* one reservation, then plain copies */
    p = put(p, "data: ", 6);
    p = put(p, s->head, s->head_len);
    p = put(p, delta, n);
    p = put(p, CHUNK_END, sizeof(CHUNK_END) - 1);
    if (finish) {
        *p++ = '"';
        p = put(p, finish, f - 2);
        *p++ = '"';
    } else {
        p = put(p, "null", 4);
    }
    p = put(p, "}]}\n\n", 5);
    out->len += total;
    *p = '\0';
    return NULL;
}

/* {key: value}; keys here and below are string literals. */
static const char *emit_str(claude_stream *s, const char *key, const char *value, claude_buf *out)
{
    prism_json_writer *w = delta_begin(s);
    if (w == NULL)
        return NOMEM;
    prism_json_key(w, key, strlen(key));
    prism_json_string(w, value, strlen(value));
    return emit_delta(s, NULL, out);
}

/* {key: [{…}]}: the writer inside the one item, or NULL. */
static prism_json_writer *list_begin(claude_stream *s, const char *key)
{
    prism_json_writer *w = delta_begin(s);
    if (w != NULL) {
        prism_json_key(w, key, strlen(key));
        prism_json_array_begin(w);
        prism_json_object_begin(w);
    }
    return w;
}

static const char *list_emit(claude_stream *s, claude_buf *out)
{
    prism_json_object_end(s->w);
    prism_json_array_end(s->w);
    return emit_delta(s, NULL, out);
}

/* The first tool_calls delta of a tool: index, id, type, function.name. */
static const char *emit_tool_start(claude_stream *s, unsigned k, const char *id, const char *name, claude_buf *out)
{
    prism_json_writer *w = list_begin(s, "tool_calls");
    if (w == NULL)
        return NOMEM;
    PRISM_JSON_KEY(w, "index");
    prism_json_number(w, k);
    claude_write_call_head(w, id, name);
    PRISM_JSON_KEY(w, "arguments");
    PRISM_JSON_LIT(w, "");
    prism_json_object_end(w);
    return list_emit(s, out);
}

static const char *emit_tool_args(claude_stream *s, unsigned k, const char *partial, claude_buf *out)
{
    prism_json_writer *w = list_begin(s, "tool_calls");
    if (w == NULL)
        return NOMEM;
    PRISM_JSON_KEY(w, "index");
    prism_json_number(w, k);
    PRISM_JSON_KEY(w, "function");
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "arguments");
    prism_json_string(w, partial, strlen(partial));
    prism_json_object_end(w);
    return list_emit(s, out);
}

/* A thinking_blocks entry: {"type": type, k1: v1[, k2: v2]}. */
static const char *emit_thinking_block(claude_stream *s, const char *type, const char *k1, const char *v1,
                                       const char *k2, const char *v2, claude_buf *out)
{
    prism_json_writer *w = list_begin(s, "thinking_blocks");
    if (w == NULL)
        return NOMEM;
    PRISM_JSON_KEY(w, "type");
    prism_json_string(w, type, strlen(type));
    prism_json_key(w, k1, strlen(k1));
    prism_json_string(w, v1, strlen(v1));
    if (k2) {
        prism_json_key(w, k2, strlen(k2));
        prism_json_string(w, v2, strlen(v2));
    }
    return list_emit(s, out);
}

static int emit_error(claude_buf *out, const char *message, const char *type, const char *code)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *e = j ? prism_json_add(j, "error", cJSON_CreateObject()) : NULL;
    int ok = e && prism_json_add(e, "message", cJSON_CreateString(message));
    ok = ok && prism_json_add(e, "type", cJSON_CreateString(type));
    ok = ok && prism_json_add(e, "param", cJSON_CreateNull());
    ok = ok && prism_json_add(e, "code", cJSON_CreateString(code));
    if (!ok) {
        cJSON_Delete(j);
        return -1;
    }
    return emit_json(out, j);
}

/* Ends the stream with an error frame (best effort when memory is gone). */
static void stream_error(claude_stream *s, claude_buf *out, const char *message, const char *type, const char *code)
{
    s->state = CLAUDE_STREAM_ERROR;
    emit_error(out, message, type, code);
}

static void protocol_error(claude_stream *s, claude_buf *out, const char *reason)
{
    char msg[160];
    if (reason == NOMEM) {
        stream_error(s, out, "The gateway ran out of memory translating the stream.", "api_error", "internal_error");
        return;
    }
    snprintf(msg, sizeof(msg), "Anthropic's stream broke the protocol: %s.", reason);
    stream_error(s, out, msg, "api_error", "upstream_protocol_error");
}

/* ------------------------------------------------------------------ */
/* Event handlers: NULL when fine, else the reason the stream is broken */

/* The role chunk waits for the first block (send_role). */
static const char *on_message_start(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    (void)out;
    if (s->started)
        return "message_start came twice";
    const cJSON *msg = ev_obj(ev, "message");
    const char *id = ev_str(msg, "id"), *model = ev_str(msg, "model");
    if (!id || !model)
        return "message_start without a message id and model";
    s->id = ev_strdup(id);
    s->model = ev_strdup(model);
    if (!s->id || !s->model || make_head(s) != NULL)
        return NOMEM;
    ev_counts_read(&s->tokens, ev_obj(msg, "usage"));
    s->started = 1;
    return NULL;
}

/* The first chunk carries the role. It waits for the first content block so
 * that, as OpenAI's do, it says content "" before text and null before a
 * tool call or reasoning (a client then sees no empty text part). */
static const char *send_role(claude_stream *s, int text, claude_buf *out)
{
    if (s->role_sent)
        return NULL;
    s->role_sent = 1;
    prism_json_writer *w = delta_begin(s);
    if (w == NULL)
        return NOMEM;
    PRISM_JSON_KEY(w, "role");
    PRISM_JSON_LIT(w, "assistant");
    PRISM_JSON_KEY(w, "content");
    if (text)
        PRISM_JSON_LIT(w, "");
    else
        prism_json_null(w);
    return emit_delta(s, NULL, out);
}

/* Text and thinking blocks may open with some text already in them. */
static const char *start_text(claude_stream *s, unsigned index, block_kind kind, const cJSON *cb, claude_buf *out)
{
    const char *text;
    if (!opt_str(cb, kind == BLOCK_TEXT ? "text" : "thinking", &text))
        return "a content block whose text is not a string";
    const char *err = block_add(s, index, kind, 0);
    if (err || !*text)
        return err;
    return emit_str(s, kind == BLOCK_TEXT ? "content" : "reasoning_content", text, out);
}

static const char *start_redacted(claude_stream *s, unsigned index, const cJSON *cb, claude_buf *out)
{
    const char *data = ev_str(cb, "data");
    if (!data)
        return "a redacted_thinking block without data";
    const char *err = block_add(s, index, BLOCK_REDACTED, 0);
    if (err)
        return err;
    return emit_thinking_block(s, "redacted_thinking", "data", data, NULL, NULL, out);
}

/* With response_format the forced tool's input is the answer itself; an
 * unnamed forced tool (should not happen) claims every tool_use. */
static int is_json_tool(const claude_stream *s, const char *name)
{
    return s->info.json_tool && (!s->info.json_tool_name[0] || strcmp(name, s->info.json_tool_name) == 0);
}

static const char *json_delta(claude_stream *s, open_block *b, const char *partial, claude_buf *out);

/* Anthropic opens a streamed tool_use with input {} and sends the input as
 * deltas; an input already in the start event is sent as the first delta. */
static const char *start_input(claude_stream *s, unsigned index, const cJSON *cb, claude_buf *out)
{
    const cJSON *input = ev_obj(cb, "input");
    if (!cJSON_IsObject(input) || input->child == NULL)
        return NULL;
    char *text = prism_json_print(input, NULL);
    const char *err = text ? json_delta(s, block_find(s, index), text, out) : NOMEM;
    free(text);
    return err;
}

static const char *start_tool(claude_stream *s, unsigned index, const cJSON *cb, claude_buf *out)
{
    const char *id = ev_str(cb, "id"), *name = ev_str(cb, "name");
    if (!id || !name)
        return "a tool_use block without id and name";
    if (is_json_tool(s, name)) {
        const char *err = block_add(s, index, BLOCK_JSON_TOOL, 0);
        return err ? err : start_input(s, index, cb, out);
    }
    unsigned k = s->next_tool;
    const char *err = block_add(s, index, BLOCK_TOOL, k);
    if (err)
        return err;
    s->next_tool++;
    err = emit_tool_start(s, k, id, name, out);
    return err ? err : start_input(s, index, cb, out);
}

/* Whether a block's first chunk reads as text: the role chunk before it
 * then says content "", else null. */
static int starts_text(const claude_stream *s, const char *type, const cJSON *cb)
{
    const char *name = ev_str(cb, "name");
    return strcmp(type, "text") == 0 || (strcmp(type, "tool_use") == 0 && name && is_json_tool(s, name));
}

static const char *on_block_start(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    unsigned index;
    if (ev_index(ev, &index) != 0)
        return "content_block_start without a valid index";
    if (block_find(s, index))
        return "a content block started twice";
    const cJSON *cb = ev_obj(ev, "content_block");
    const char *type = ev_str(cb, "type");
    if (!type)
        return "content_block_start without a block type";
    const char *err = send_role(s, starts_text(s, type, cb), out);
    if (err)
        return err;
    if (strcmp(type, "text") == 0)
        return start_text(s, index, BLOCK_TEXT, cb, out);
    if (strcmp(type, "thinking") == 0)
        return start_text(s, index, BLOCK_THINKING, cb, out);
    if (strcmp(type, "redacted_thinking") == 0)
        return start_redacted(s, index, cb, out);
    if (strcmp(type, "tool_use") == 0)
        return start_tool(s, index, cb, out);
    return block_add(s, index, BLOCK_OTHER, 0);
}

static const char *json_delta(claude_stream *s, open_block *b, const char *partial, claude_buf *out)
{
    if (!*partial)
        return NULL;
    b->has_input = 1;
    if (b->kind == BLOCK_JSON_TOOL)
        return emit_str(s, "content", partial, out);
    return emit_tool_args(s, b->tool, partial, out);
}

static int is_tool(const open_block *b)
{
    return b->kind == BLOCK_TOOL || b->kind == BLOCK_JSON_TOOL;
}

/* A known delta type must fit its block and carry its string; other delta
 * types (e.g. citations_delta) carry nothing OpenAI has a field for. */
static const char *translate_delta(claude_stream *s, open_block *b, const claude_delta *d, claude_buf *out)
{
    const char *type = d->type;
    if (strcmp(type, "text_delta") == 0 && b->kind == BLOCK_TEXT && d->text)
        return emit_str(s, "content", d->text, out);
    if (strcmp(type, "thinking_delta") == 0 && b->kind == BLOCK_THINKING && d->thinking)
        return emit_str(s, "reasoning_content", d->thinking, out);
    if (strcmp(type, "signature_delta") == 0 && b->kind == BLOCK_THINKING && d->signature)
        return emit_thinking_block(s, "thinking", "thinking", "", "signature", d->signature, out);
    if (strcmp(type, "input_json_delta") == 0 && is_tool(b) && d->partial_json)
        return json_delta(s, b, d->partial_json, out);
    if (strcmp(type, "text_delta") == 0 || strcmp(type, "thinking_delta") == 0 ||
        strcmp(type, "signature_delta") == 0 || strcmp(type, "input_json_delta") == 0)
        return "a delta that does not fit its content block";
    return NULL;
}

static const char *block_delta(claude_stream *s, const claude_delta *d, claude_buf *out)
{
    if (!d->index_ok)
        return "content_block_delta without a valid index";
    open_block *b = block_find(s, d->index);
    if (!b)
        return "a delta for a content block that is not open";
    if (!d->type)
        return "content_block_delta without a delta type";
    if (b->kind == BLOCK_OTHER)
        return NULL;
    return translate_delta(s, b, d, out);
}

static const char *on_block_delta(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    claude_delta d;
    ev_delta_of_tree(ev, &d);
    return block_delta(s, &d, out);
}

/* Forgetting the block keeps the table small and makes a late delta for it
 * a protocol error. A tool without parameters streams no input at all (or
 * only ""): its arguments are then "{}", as OpenAI sends them and as the
 * unstreamed answer has them, never "" (which no JSON parser accepts). */
static const char *on_block_stop(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    unsigned index;
    if (ev_index(ev, &index) != 0)
        return NULL;
    open_block *b = block_find(s, index);
    const char *err = b && is_tool(b) && !b->has_input ? json_delta(s, b, "{}", out) : NULL;
    block_remove(s, index);
    return err;
}

static const char *on_message_delta(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    const char *stop = ev_str(ev_obj(ev, "delta"), "stop_reason");
    ev_counts_read(&s->tokens, ev_obj(ev, "usage"));
    const char *err = send_role(s, 1, out); /* an answer without content blocks */
    if (err)
        return err;
    if (delta_begin(s) == NULL)
        return NOMEM;
    return emit_delta(s, claude_finish_reason(stop, &s->info), out);
}

static const char *emit_usage(claude_stream *s, claude_buf *out)
{
    cJSON *c = chunk_new(s);
    cJSON *u = c ? usage_to_openai(s) : NULL;
    if (!u || !prism_json_add(c, "choices", cJSON_CreateArray()) || !cJSON_AddItemToObjectCS(c, "usage", u)) {
        cJSON_Delete(u);
        cJSON_Delete(c);
        return NOMEM;
    }
    return emit_json(out, c) == 0 ? NULL : NOMEM;
}

static const char *on_message_stop(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    (void)ev;
    const char *err = send_role(s, 1, out);
    if (!err && s->info.include_usage)
        err = emit_usage(s, out);
    if (err)
        return err;
    if (emit_frame(out, "[DONE]", 6) != 0)
        return NOMEM;
    s->state = CLAUDE_STREAM_DONE;
    return NULL;
}

static const char *on_error(claude_stream *s, const cJSON *ev, claude_buf *out)
{
    const cJSON *e = ev_obj(ev, "error");
    const char *message = ev_str(e, "message"), *type, *code;
    claude_error_names(ev_str(e, "type"), &type, &code);
    s->state = CLAUDE_STREAM_ERROR;
    if (emit_error(out, message ? message : "Anthropic reported an error mid-stream.", type, code) != 0)
        return NOMEM;
    return NULL;
}

typedef const char *(*event_handler)(claude_stream *, const cJSON *, claude_buf *);

/* ping and unknown event types are not listed: they are ignored. */
static const struct {
    const char *type;
    event_handler fn;
    int needs_start;
} handlers[] = {
    {"content_block_delta", on_block_delta, 1}, /* nearly every event: first */
    {"message_start", on_message_start, 0},     {"content_block_start", on_block_start, 1},
    {"content_block_stop", on_block_stop, 1},   {"message_delta", on_message_delta, 1},
    {"message_stop", on_message_stop, 1},       {"error", on_error, 0},
};

static const char *route(claude_stream *s, const char *type, const cJSON *ev, claude_buf *out)
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

claude_stream_state claude_stream_event(claude_stream *s, const char *event, const char *data, size_t len,
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
    if (err)
        protocol_error(s, out, err);
    return (claude_stream_state)s->state;
}

void claude_stream_fail(claude_stream *s, const char *code, const char *message, claude_buf *out)
{
    if (!s || !out || s->state != CLAUDE_STREAM_OPEN)
        return;
    stream_error(s, out, message ? message : "The upstream stream ended early.", "api_error",
                 code ? code : "upstream_disconnected");
}

void claude_stream_usage(const claude_stream *s, long *prompt_tokens, long *completion_tokens)
{
    *prompt_tokens = (long)(s->tokens.input + s->tokens.cache_creation + s->tokens.cache_read);
    *completion_tokens = (long)s->tokens.output;
}
