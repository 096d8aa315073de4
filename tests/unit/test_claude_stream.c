/*
 * claude_provider's streaming layer: SSE framing and Anthropic event ->
 * OpenAI chunk translation. Every frame is parsed and checked field by field;
 * the transcripts under data/claude_stream/ are Anthropic streams as the
 * streaming docs show them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "picker.h"
#include "stream.h"

#ifndef PRISM_TEST_DATA
#error "PRISM_TEST_DATA must name tests/unit/data"
#endif

#define CREATED    1700000000L
#define MAX_EVENT  (1024 * 1024)
#define MAX_FRAMES 64

/* ------------------------------------------------------------------ */
/* helpers */

static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/claude_stream/%s", PRISM_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

typedef struct pipeline {
    claude_sse *sse;
    claude_stream *stream;
    claude_buf out;
    struct picker *picker; /* reads content_block_delta events without a tree, or NULL */
} pipeline;

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    pipeline *p = user;
    claude_stream_event(p->stream, event, data, len, &p->out);
    return 0;
}

static void pipeline_open_picking(pipeline *p, const claude_request_info *info, int pick)
{
    memset(p, 0, sizeof(*p));
    p->sse = claude_sse_new(MAX_EVENT);
    p->stream = claude_stream_new(info, CREATED);
    assert_non_null(p->sse);
    assert_non_null(p->stream);
    if (pick) {
        p->picker = picker_new();
        claude_stream_set_picker(p->stream, pick_with, p->picker);
    }
}

static void pipeline_open(pipeline *p, const claude_request_info *info)
{
    pipeline_open_picking(p, info, 0);
}

static void pipeline_close(pipeline *p)
{
    claude_sse_free(p->sse);
    claude_stream_free(p->stream);
    claude_buf_free(&p->out);
    picker_free(p->picker);
}

/* Feeds `sse` in pieces of `chunk` bytes (0: all at once) and returns the
 * frames written (malloc'd) and the final state; with `pick`, deltas are
 * read without a tree. */
static char *translate_picking(const char *sse, size_t len, const claude_request_info *info, size_t chunk,
                               claude_stream_state *state, unsigned *picked)
{
    int pick = picked != NULL;
    pipeline p;
    pipeline_open_picking(&p, info, pick);
    size_t step = chunk ? chunk : len;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        assert_int_equal(claude_sse_feed(p.sse, sse + i, n, on_event, &p), 0);
    }
    *state = claude_stream_state_of(p.stream);
    if (picked)
        *picked = p.picker->picked;
    char *out = malloc(p.out.len + 1);
    assert_non_null(out);
    memcpy(out, p.out.data ? p.out.data : "", p.out.len + 1);
    pipeline_close(&p);
    return out;
}

static char *translate(const char *sse, size_t len, const claude_request_info *info, size_t chunk,
                       claude_stream_state *state)
{
    return translate_picking(sse, len, info, chunk, state, NULL);
}

static char *translate_fixture(const char *name, const claude_request_info *info, claude_stream_state *state)
{
    size_t len;
    char *sse = read_fixture(name, &len);
    char *out = translate(sse, len, info, 0, state);
    free(sse);
    return out;
}

/* The frames of one output: parsed JSON, or NULL for [DONE]. */
typedef struct frames {
    cJSON *json[MAX_FRAMES];
    int done[MAX_FRAMES];
    int n;
} frames;

static void frames_parse(frames *f, const char *out)
{
    memset(f, 0, sizeof(*f));
    while (*out) {
        assert_int_equal(strncmp(out, "data: ", 6), 0);
        const char *end = strstr(out, "\n\n");
        assert_non_null(end);
        assert_true(f->n < MAX_FRAMES);
        size_t n = (size_t)(end - out) - 6;
        /* compact JSON: a frame is exactly one line */
        assert_null(memchr(out + 6, '\n', n));
        if (n == 6 && strncmp(out + 6, "[DONE]", 6) == 0) {
            f->done[f->n] = 1;
        } else {
            f->json[f->n] = cJSON_ParseWithLength(out + 6, n);
            assert_non_null(f->json[f->n]);
        }
        f->n++;
        out = end + 2;
    }
}

static void frames_free(frames *f)
{
    for (int i = 0; i < f->n; i++)
        cJSON_Delete(f->json[i]);
}

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_non_null(v);
    return v;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double get_num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void assert_keys(const cJSON *o, const char *const *keys)
{
    const cJSON *c = o->child;
    for (; *keys; keys++, c = c->next) {
        assert_non_null(c);
        assert_string_equal(c->string, *keys);
    }
    assert_null(c);
}

static void assert_head(const cJSON *chunk, const char *id, const char *model)
{
    assert_string_equal(get_str(chunk, "id"), id);
    assert_string_equal(get_str(chunk, "object"), "chat.completion.chunk");
    assert_true(get_num(chunk, "created") == (double)CREATED);
    assert_string_equal(get_str(chunk, "model"), model);
}

/* Checks a choice chunk's shape and returns its delta; `finish` NULL means
 * finish_reason must be null. */
static const cJSON *delta_of(const cJSON *chunk, const char *id, const char *model, const char *finish)
{
    static const char *const chunk_keys[] = {"id", "object", "created", "model", "choices", NULL};
    static const char *const choice_keys[] = {"index", "delta", "logprobs", "finish_reason", NULL};
    assert_non_null(chunk);
    assert_keys(chunk, chunk_keys);
    assert_head(chunk, id, model);
    const cJSON *choices = get(chunk, "choices");
    assert_int_equal(cJSON_GetArraySize(choices), 1);
    const cJSON *choice = cJSON_GetArrayItem(choices, 0);
    assert_keys(choice, choice_keys);
    assert_true(get_num(choice, "index") == 0);
    assert_true(cJSON_IsNull(get(choice, "logprobs")));
    if (finish)
        assert_string_equal(get_str(choice, "finish_reason"), finish);
    else
        assert_true(cJSON_IsNull(get(choice, "finish_reason")));
    return get(choice, "delta");
}

/* The first chunk: the role, with content "" before text. */
static void assert_role(const cJSON *chunk, const char *id, const char *model)
{
    static const char *const keys[] = {"role", "content", NULL};
    const cJSON *d = delta_of(chunk, id, model, NULL);
    assert_keys(d, keys);
    assert_string_equal(get_str(d, "role"), "assistant");
    assert_string_equal(get_str(d, "content"), "");
}

/* The first chunk before a tool call or reasoning: content null. */
static void assert_role_null(const cJSON *chunk, const char *id, const char *model)
{
    static const char *const keys[] = {"role", "content", NULL};
    const cJSON *d = delta_of(chunk, id, model, NULL);
    assert_keys(d, keys);
    assert_string_equal(get_str(d, "role"), "assistant");
    assert_true(cJSON_IsNull(get(d, "content")));
}

/* delta == {key: value} */
static void assert_delta_str(const cJSON *chunk, const char *id, const char *model, const char *key, const char *value)
{
    const char *const keys[] = {key, NULL};
    const cJSON *d = delta_of(chunk, id, model, NULL);
    assert_keys(d, keys);
    assert_string_equal(get_str(d, key), value);
}

static void assert_finish(const cJSON *chunk, const char *id, const char *model, const char *finish)
{
    const cJSON *d = delta_of(chunk, id, model, finish);
    assert_true(cJSON_IsObject(d));
    assert_null(d->child);
}

static void assert_error(const cJSON *frame, const char *message, const char *type, const char *code)
{
    static const char *const keys[] = {"message", "type", "param", "code", NULL};
    static const char *const top[] = {"error", NULL};
    assert_non_null(frame);
    assert_keys(frame, top);
    const cJSON *e = get(frame, "error");
    assert_keys(e, keys);
    if (message)
        assert_string_equal(get_str(e, "message"), message);
    assert_string_equal(get_str(e, "type"), type);
    assert_true(cJSON_IsNull(get(e, "param")));
    assert_string_equal(get_str(e, "code"), code);
}

/* tool_calls[0] of a delta, checking there is exactly one with index k. */
static const cJSON *tool_call_of(const cJSON *chunk, const char *id, const char *model, int k)
{
    static const char *const keys[] = {"tool_calls", NULL};
    const cJSON *d = delta_of(chunk, id, model, NULL);
    assert_keys(d, keys);
    const cJSON *calls = get(d, "tool_calls");
    assert_int_equal(cJSON_GetArraySize(calls), 1);
    const cJSON *call = cJSON_GetArrayItem(calls, 0);
    assert_true(get_num(call, "index") == k);
    return call;
}

static void assert_tool_start(const cJSON *chunk, const char *id, const char *model, int k, const char *call_id,
                              const char *name)
{
    static const char *const keys[] = {"index", "id", "type", "function", NULL};
    static const char *const fn_keys[] = {"name", "arguments", NULL};
    const cJSON *call = tool_call_of(chunk, id, model, k);
    assert_keys(call, keys);
    assert_string_equal(get_str(call, "id"), call_id);
    assert_string_equal(get_str(call, "type"), "function");
    const cJSON *fn = get(call, "function");
    assert_keys(fn, fn_keys);
    assert_string_equal(get_str(fn, "name"), name);
    assert_string_equal(get_str(fn, "arguments"), "");
}

/* Appends the argument fragment of an arguments-only tool delta to acc. */
static void take_args(const cJSON *chunk, const char *id, const char *model, int k, char *acc, size_t cap)
{
    static const char *const keys[] = {"index", "function", NULL};
    static const char *const fn_keys[] = {"arguments", NULL};
    const cJSON *call = tool_call_of(chunk, id, model, k);
    assert_keys(call, keys);
    const cJSON *fn = get(call, "function");
    assert_keys(fn, fn_keys);
    const char *part = get_str(fn, "arguments");
    assert_true(part[0] != '\0');
    assert_true(strlen(acc) + strlen(part) < cap);
    strcat(acc, part);
}

/* Event JSON in tests is written with ' for " to stay readable; the copy
 * has no NUL after it, so ASan catches any read past len. */
static claude_stream_state send_as(claude_stream *s, const char *event, const char *json, claude_buf *out)
{
    size_t n = strlen(json);
    char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = json[i] == '\'' ? '"' : json[i];
    claude_stream_state st = claude_stream_event(s, event, buf, n, out);
    free(buf);
    return st;
}

static claude_stream_state send(claude_stream *s, const char *json, claude_buf *out)
{
    return send_as(s, "", json, out);
}

/* A stream already past message_start, for hand-written events. */
static claude_stream *started(const claude_request_info *info, claude_buf *out)
{
    claude_stream *s = claude_stream_new(info, CREATED);
    assert_non_null(s);
    assert_int_equal(send_as(s, "message_start",
                             "{'type':'message_start','message':{'id':'msg_1','model':'claude-x',"
                             "'usage':{'input_tokens':3,'output_tokens':1}}}",
                             out),
                     CLAUDE_STREAM_OPEN);
    return s;
}

/* Past message_start with text block 0 and tool block 1 open; out empty. */
static claude_stream *with_open_blocks(claude_buf *out)
{
    claude_stream *s = started(NULL, out);
    send(s, "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}", out);
    send(s, "{'type':'content_block_start','index':1,'content_block':{'type':'tool_use','id':'t','name':'f'}}", out);
    assert_int_equal(claude_stream_state_of(s), CLAUDE_STREAM_OPEN);
    claude_buf_reset(out);
    return s;
}

/* ------------------------------------------------------------------ */
/* claude_buf */

static void buf_appends_resets_and_frees(void **state)
{
    (void)state;
    claude_buf b = {0};
    assert_int_equal(claude_buf_append(&b, "ab", 2), 0);
    assert_int_equal(claude_buf_append(&b, NULL, 0), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(claude_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 1002);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(memcmp(b.data, "ab0123", 6), 0);
    char *before = b.data;
    claude_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(claude_buf_append(&b, NULL, 3), -1);
    claude_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

/* ------------------------------------------------------------------ */
/* SSE framing */

typedef struct seen {
    char log[1024];
    int count;
    int stop_after;
} seen;

/* Records events as "[name|data]". */
static int record(void *user, const char *event, const char *data, size_t len)
{
    seen *s = user;
    assert_int_equal(strlen(data), len);
    size_t used = strlen(s->log);
    snprintf(s->log + used, sizeof(s->log) - used, "[%s|%s]", event, data);
    s->count++;
    return s->stop_after && s->count == s->stop_after ? 7 : 0;
}

static void sse_feed_all(const char *text, seen *s)
{
    claude_sse *p = claude_sse_new(4096);
    assert_non_null(p);
    assert_int_equal(claude_sse_feed(p, text, strlen(text), record, s), 0);
    claude_sse_free(p);
}

static void sse_fields_and_comments(void **state)
{
    (void)state;
    seen s = {0};
    sse_feed_all(": comment\n"
                 "event: a\ndata: one\ndata:two\ndata:  three\n\n"
                 "data\n\n"
                 "data:\n\n"
                 "id: 5\nretry: 10\nunknown: x\ndata: x\n\n"
                 "event: lost\n\n"
                 "data: y\n\n"
                 "event:b\ndata: {}\nevent: c\n\n"
                 "data: partial at the end is not dispatched\n",
                 &s);
    assert_string_equal(s.log, "[a|one\ntwo\n three][|][|][|x][|y][c|{}]");
}

static void sse_line_endings(void **state)
{
    (void)state;
    seen s = {0};
    sse_feed_all("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\ndata: e\r\r\n", &s);
    /* "data: e\r" then "\r\n": one blank line, so d and e are one event */
    assert_string_equal(s.log, "[|a][|b][|c][|d\ne]");
}

static void sse_crlf_split_across_feeds(void **state)
{
    (void)state;
    seen s = {0};
    claude_sse *p = claude_sse_new(4096);
    assert_non_null(p);
    const char *parts[] = {"data: a\r", "\n", "\r", "\n", "data: b\r", "\ndata: c\r", "\r\n", "data: d\n\r", "\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        assert_int_equal(claude_sse_feed(p, parts[i], strlen(parts[i]), record, &s), 0);
    claude_sse_free(p);
    /* a split "\r" + "\n" is one line end: "data: b\r" + "\ndata: c\r" is
     * one event of two lines, and "data: d\n\r" + "\n" one blank line */
    assert_string_equal(s.log, "[|a][|b\nc][|d]");
}

static void sse_bom_only_at_start(void **state)
{
    (void)state;
    seen s = {0};
    sse_feed_all("\xEF\xBB\xBF"
                 "data: x\n\n\xEF\xBB\xBF"
                 "data: y\n\n",
                 &s);
    /* a later BOM makes an unknown field name, so "y" is never data */
    assert_string_equal(s.log, "[|x]");
}

static void sse_too_big_fails_and_stays_failed(void **state)
{
    (void)state;
    seen s = {0};
    claude_sse *p = claude_sse_new(16);
    assert_non_null(p);
    assert_int_equal(claude_sse_feed(p, "data: 0123456789\n\n", 18, record, &s), 0);
    assert_int_equal(claude_sse_feed(p, "data: 0123", 10, record, &s), 0);
    assert_int_equal(claude_sse_feed(p, "456789a", 7, record, &s), -1);
    assert_int_equal(claude_sse_feed(p, "\n\n", 2, record, &s), -1);
    claude_sse_free(p);
    assert_string_equal(s.log, "[|0123456789]");

    /* data lines accumulate towards the limit too */
    memset(&s, 0, sizeof(s));
    p = claude_sse_new(16);
    assert_non_null(p);
    assert_int_equal(claude_sse_feed(p, "data: 012345\ndata: 567890\n", 26, record, &s), -1);
    claude_sse_free(p);
    assert_int_equal(s.count, 0);
}

static void sse_callback_stops_feeding(void **state)
{
    (void)state;
    seen s = {.stop_after = 1};
    claude_sse *p = claude_sse_new(4096);
    assert_non_null(p);
    assert_int_equal(claude_sse_feed(p, "data: 1\n\ndata: 2\n\n", 18, record, &s), 7);
    claude_sse_free(p);
    assert_string_equal(s.log, "[|1]");
}

/* ------------------------------------------------------------------ */
/* translation of the transcripts */

#define TEXT_ID    "msg_01XFDUDYJgAACzvnptvVoYEL"
#define TEXT_MODEL "claude-sonnet-4-5-20250929"

static void text_reply(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1};
    claude_stream_state st;
    char *out = translate_fixture("text.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 6);
    assert_role(f.json[0], TEXT_ID, TEXT_MODEL);
    assert_delta_str(f.json[1], TEXT_ID, TEXT_MODEL, "content", "Hello");
    assert_delta_str(f.json[2], TEXT_ID, TEXT_MODEL, "content", ", world");
    assert_delta_str(f.json[3], TEXT_ID, TEXT_MODEL, "content", "! caf\xC3\xA9 \"quoted\"\nbye");
    assert_finish(f.json[4], TEXT_ID, TEXT_MODEL, "stop");
    assert_true(f.done[5]);
    frames_free(&f);
    free(out);
}

static void text_reply_with_usage(void **state)
{
    (void)state;
    static const char *const keys[] = {"id", "object", "created", "model", "choices", "usage", NULL};
    static const char *const usage_keys[] = {"prompt_tokens",         "completion_tokens",           "total_tokens",
                                             "prompt_tokens_details", "cache_creation_input_tokens", NULL};
    claude_request_info info = {.stream = 1, .include_usage = 1};
    claude_stream_state st;
    char *out = translate_fixture("text.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 7);
    assert_finish(f.json[4], TEXT_ID, TEXT_MODEL, "stop");
    const cJSON *u = f.json[5];
    assert_keys(u, keys);
    assert_head(u, TEXT_ID, TEXT_MODEL);
    assert_true(cJSON_IsArray(get(u, "choices")));
    assert_int_equal(cJSON_GetArraySize(get(u, "choices")), 0);
    const cJSON *usage = get(u, "usage");
    assert_keys(usage, usage_keys);
    assert_true(get_num(usage, "prompt_tokens") == 25 + 100 + 2000);
    assert_true(get_num(usage, "completion_tokens") == 15);
    assert_true(get_num(usage, "total_tokens") == 2125 + 15);
    assert_true(get_num(get(usage, "prompt_tokens_details"), "cached_tokens") == 2000);
    assert_true(get_num(usage, "cache_creation_input_tokens") == 100);
    assert_true(f.done[6]);
    frames_free(&f);
    free(out);
}

static void pings_comments_and_ids_change_nothing(void **state)
{
    (void)state;
    for (int usage = 0; usage < 2; usage++) {
        claude_request_info info = {.stream = 1, .include_usage = usage};
        claude_stream_state a, b;
        char *plain = translate_fixture("text.sse", &info, &a);
        char *pinged = translate_fixture("pings.sse", &info, &b);
        assert_string_equal(plain, pinged);
        assert_int_equal(b, CLAUDE_STREAM_DONE);
        free(plain);
        free(pinged);
    }
}

static void tool_use_reply(void **state)
{
    (void)state;
    const char *id = "msg_014p7gG3wDgGV9EUtLvnow3U", *model = "claude-opus-4-1-20250805";
    claude_request_info info = {.stream = 1};
    claude_stream_state st;
    char *out = translate_fixture("tool_use.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 11);
    assert_role(f.json[0], id, model);
    assert_delta_str(f.json[1], id, model, "content", "Okay");
    assert_delta_str(f.json[2], id, model, "content", ", let's check the weather for San Francisco, CA:");
    /* Anthropic block 1 is the first tool: index 0 */
    assert_tool_start(f.json[3], id, model, 0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather");
    char args[256] = "";
    for (int i = 4; i < 9; i++)
        take_args(f.json[i], id, model, 0, args, sizeof(args));
    assert_string_equal(args, "{\"location\": \"San Francisco, CA\", \"unit\": \"fahrenheit\"}");
    assert_finish(f.json[9], id, model, "tool_calls");
    assert_true(f.done[10]);
    frames_free(&f);
    free(out);
}

static void parallel_tool_calls(void **state)
{
    (void)state;
    const char *id = "msg_01ParallelToolsAbc", *model = "claude-sonnet-4-5-20250929";
    claude_request_info info = {.stream = 1, .include_usage = 1};
    claude_stream_state st;
    char *out = translate_fixture("parallel_tools.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 11);
    assert_role(f.json[0], id, model);
    assert_delta_str(f.json[1], id, model, "content", "I'll look up both.");
    /* blocks 1 and 2 become tool_calls 0 and 1 */
    assert_tool_start(f.json[2], id, model, 0, "toolu_01WeatherParis", "get_weather");
    char a0[128] = "", a1[128] = "";
    take_args(f.json[3], id, model, 0, a0, sizeof(a0));
    take_args(f.json[4], id, model, 0, a0, sizeof(a0));
    assert_tool_start(f.json[5], id, model, 1, "toolu_01TimeTokyo", "get_time");
    take_args(f.json[6], id, model, 1, a1, sizeof(a1));
    take_args(f.json[7], id, model, 1, a1, sizeof(a1));
    assert_string_equal(a0, "{\"city\": \"Paris\"}");
    assert_string_equal(a1, "{\"timezone\": \"Asia/Tokyo\", \"24h\": true}");
    assert_finish(f.json[8], id, model, "tool_calls");
    const cJSON *usage = get(f.json[9], "usage");
    assert_true(get_num(usage, "prompt_tokens") == 610);
    assert_true(get_num(usage, "completion_tokens") == 120);
    assert_true(get_num(get(usage, "prompt_tokens_details"), "cached_tokens") == 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(usage, "cache_creation_input_tokens"));
    assert_true(f.done[10]);
    frames_free(&f);
    free(out);
}

static void thinking_reply(void **state)
{
    (void)state;
    static const char *const tb_keys[] = {"thinking_blocks", NULL};
    static const char *const block_keys[] = {"type", "thinking", "signature", NULL};
    const char *id = "msg_01ThinkingReply", *model = "claude-sonnet-4-5-20250929";
    claude_request_info info = {.stream = 1};
    claude_stream_state st;
    char *out = translate_fixture("thinking.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 7);
    assert_role_null(f.json[0], id, model);
    assert_delta_str(f.json[1], id, model, "reasoning_content",
                     "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n"
                     "1071 = 2 \xC3\x97 462 + 147");
    assert_delta_str(f.json[2], id, model, "reasoning_content", "\n462 = 3 \xC3\x97 147 + 21\n147 = 7 \xC3\x97 21 + 0");
    const cJSON *d = delta_of(f.json[3], id, model, NULL);
    assert_keys(d, tb_keys);
    const cJSON *blocks = get(d, "thinking_blocks");
    assert_int_equal(cJSON_GetArraySize(blocks), 1);
    const cJSON *b = cJSON_GetArrayItem(blocks, 0);
    assert_keys(b, block_keys);
    assert_string_equal(get_str(b, "type"), "thinking");
    assert_string_equal(get_str(b, "thinking"), "");
    assert_string_equal(get_str(b, "signature"), "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...");
    assert_delta_str(f.json[4], id, model, "content", "The greatest common divisor of 1071 and 462 is **21**.");
    assert_finish(f.json[5], id, model, "stop");
    assert_true(f.done[6]);
    frames_free(&f);
    free(out);
}

static void redacted_thinking_and_prefilled_blocks(void **state)
{
    (void)state;
    static const char *const block_keys[] = {"type", "data", NULL};
    claude_buf out = {0};
    claude_stream *s = started(NULL, &out);
    claude_buf_reset(&out);
    send(s,
         "{'type':'content_block_start','index':0,'content_block':{'type':'redacted_thinking',"
         "'data':'EmwKAhgBEgy3va3pzix/LafPsn4a'}}",
         &out);
    send(s, "{'type':'content_block_stop','index':0}", &out);
    send(s, "{'type':'content_block_start','index':1,'content_block':{'type':'thinking','thinking':'pre'}}", &out);
    send(s, "{'type':'content_block_start','index':2,'content_block':{'type':'text','text':'Hi'}}", &out);
    assert_int_equal(claude_stream_state_of(s), CLAUDE_STREAM_OPEN);
    frames f;
    frames_parse(&f, out.data);
    assert_int_equal(f.n, 4);
    assert_role_null(f.json[0], "msg_1", "claude-x");
    const cJSON *b = cJSON_GetArrayItem(get(delta_of(f.json[1], "msg_1", "claude-x", NULL), "thinking_blocks"), 0);
    assert_keys(b, block_keys);
    assert_string_equal(get_str(b, "type"), "redacted_thinking");
    assert_string_equal(get_str(b, "data"), "EmwKAhgBEgy3va3pzix/LafPsn4a");
    assert_delta_str(f.json[2], "msg_1", "claude-x", "reasoning_content", "pre");
    assert_delta_str(f.json[3], "msg_1", "claude-x", "content", "Hi");
    frames_free(&f);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void error_event_mid_stream(void **state)
{
    (void)state;
    const char *id = "msg_01ErrorMidStream", *model = "claude-sonnet-4-5-20250929";
    claude_request_info info = {.stream = 1, .include_usage = 1};
    claude_stream_state st;
    char *out = translate_fixture("error.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_ERROR);
    /* nothing after the error frame: no later delta, no usage, no [DONE] */
    assert_int_equal(f.n, 3);
    assert_role(f.json[0], id, model);
    assert_delta_str(f.json[1], id, model, "content", "Partial answer");
    assert_error(f.json[2], "Overloaded", "api_error", "overloaded");
    frames_free(&f);
    free(out);
}

static void error_event_mapping(void **state)
{
    (void)state;
    static const struct {
        const char *data, *message, *type, *code;
    } cases[] = {
        {"{'type':'error','error':{'type':'rate_limit_error','message':'slow down'}}", "slow down", "rate_limit_error",
         "rate_limit_exceeded"},
        {"{'type':'error','error':{'type':'api_error','message':'Internal server error'}}", "Internal server error",
         "api_error", "api_error"},
        {"{'type':'error','error':{'type':'invalid_request_error','message':'bad'}}", "bad", "invalid_request_error",
         "invalid_request_error"},
        {"{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}", "Overloaded", "api_error",
         "overloaded"},
        {"{'type':'error'}", NULL, "api_error", "upstream_error"},
        {"{'type':'error','error':{'type':7,'message':[]}}", NULL, "api_error", "upstream_error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* an error may come before message_start too */
        for (int before = 0; before < 2; before++) {
            claude_buf out = {0};
            claude_stream *s = before ? claude_stream_new(NULL, CREATED) : started(NULL, &out);
            claude_buf_reset(&out);
            assert_int_equal(send_as(s, "error", cases[i].data, &out), CLAUDE_STREAM_ERROR);
            frames f;
            frames_parse(&f, out.data);
            assert_int_equal(f.n, 1);
            assert_error(f.json[0], cases[i].message, cases[i].type, cases[i].code);
            frames_free(&f);
            claude_stream_free(s);
            claude_buf_free(&out);
        }
    }
}

static void json_tool_content(void **state)
{
    (void)state;
    const char *id = "msg_01JsonToolReply", *model = "claude-sonnet-4-5-20250929";
    claude_request_info info = {.stream = 1, .json_tool = 1, .json_tool_name = "json_response"};
    claude_stream_state st;
    char *out = translate_fixture("json_tool.sse", &info, &st);
    frames f;
    frames_parse(&f, out);
    assert_int_equal(st, CLAUDE_STREAM_DONE);
    assert_int_equal(f.n, 5);
    assert_role(f.json[0], id, model);
    assert_delta_str(f.json[1], id, model, "content", "{\"name\": \"Ada");
    assert_delta_str(f.json[2], id, model, "content", "\", \"born\": 1815}");
    assert_finish(f.json[3], id, model, "stop");
    assert_true(f.done[4]);
    frames_free(&f);
    free(out);

    /* without json_tool the same stream is an ordinary tool call */
    info.json_tool = 0;
    out = translate_fixture("json_tool.sse", &info, &st);
    frames_parse(&f, out);
    assert_int_equal(f.n, 6);
    assert_tool_start(f.json[1], id, model, 0, "toolu_01JsonResponse", "json_response");
    assert_finish(f.json[4], id, model, "tool_calls");
    frames_free(&f);
    free(out);
}

static void finish_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *stop;
        int json_tool;
        const char *finish;
    } cases[] = {
        {"'end_turn'", 0, "stop"},
        {"'stop_sequence'", 0, "stop"},
        {"'pause_turn'", 0, "stop"},
        {"'max_tokens'", 0, "length"},
        {"'model_context_window_exceeded'", 0, "length"},
        {"'tool_use'", 0, "tool_calls"},
        {"'tool_use'", 1, "stop"},
        {"'refusal'", 0, "content_filter"},
        {"null", 0, "stop"},
        {"'something_new'", 0, "stop"},
        {"42", 0, "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        claude_request_info info = {.json_tool = cases[i].json_tool, .json_tool_name = "json_response"};
        claude_buf out = {0};
        claude_stream *s = started(&info, &out);
        claude_buf_reset(&out);
        char ev[256];
        snprintf(ev, sizeof(ev), "{'type':'message_delta','delta':{'stop_reason':%s},'usage':{}}", cases[i].stop);
        assert_int_equal(send(s, ev, &out), CLAUDE_STREAM_OPEN);
        frames f;
        frames_parse(&f, out.data);
        /* no content block came: the role chunk goes out with the finish */
        assert_int_equal(f.n, 2);
        assert_role(f.json[0], "msg_1", "claude-x");
        assert_finish(f.json[1], "msg_1", "claude-x", cases[i].finish);
        frames_free(&f);
        claude_stream_free(s);
        claude_buf_free(&out);
    }
}

/* A tool without parameters: Anthropic streams no input, or only "". */
static void tool_without_input_gets_empty_object(void **state)
{
    (void)state;
    static const struct {
        const char *start_input, *delta, *args;
    } cases[] = {
        {"{}", "''", "{}"},
        {"{}", NULL, "{}"},
        {"{}", "'{}'", "{}"},
        {"{'q':'x'}", NULL, "{\"q\":\"x\"}"},
        {"{}", "'{\\\"q\\\": 1}'", "{\"q\": 1}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        claude_buf out = {0};
        claude_stream *s = started(NULL, &out);
        claude_buf_reset(&out);
        char ev[256];
        snprintf(ev, sizeof(ev),
                 "{'type':'content_block_start','index':0,'content_block':{'type':'tool_use','id':'toolu_1',"
                 "'name':'now','input':%s}}",
                 cases[i].start_input);
        send(s, ev, &out);
        if (cases[i].delta) {
            snprintf(ev, sizeof(ev),
                     "{'type':'content_block_delta','index':0,'delta':{'type':'input_json_delta','partial_json':%s}}",
                     cases[i].delta);
            send(s, ev, &out);
        }
        send(s, "{'type':'content_block_stop','index':0}", &out);
        assert_int_equal(send(s, "{'type':'message_delta','delta':{'stop_reason':'tool_use'},'usage':{}}", &out),
                         CLAUDE_STREAM_OPEN);
        frames f;
        frames_parse(&f, out.data);
        assert_int_equal(f.n, 4);
        assert_role_null(f.json[0], "msg_1", "claude-x");
        assert_tool_start(f.json[1], "msg_1", "claude-x", 0, "toolu_1", "now");
        char args[128] = "";
        take_args(f.json[2], "msg_1", "claude-x", 0, args, sizeof(args));
        assert_string_equal(args, cases[i].args);
        assert_finish(f.json[3], "msg_1", "claude-x", "tool_calls");
        frames_free(&f);
        claude_stream_free(s);
        claude_buf_free(&out);
    }
}

static void fail_writes_an_error_frame(void **state)
{
    (void)state;
    claude_buf out = {0};
    claude_stream *s = started(NULL, &out);
    claude_buf_reset(&out);
    claude_stream_fail(s, "upstream_disconnected", "Anthropic closed the connection mid-stream.", &out);
    assert_int_equal(claude_stream_state_of(s), CLAUDE_STREAM_ERROR);
    frames f;
    frames_parse(&f, out.data);
    assert_int_equal(f.n, 1);
    assert_error(f.json[0], "Anthropic closed the connection mid-stream.", "api_error", "upstream_disconnected");
    frames_free(&f);

    /* once ended, nothing more is written */
    size_t len = out.len;
    claude_stream_fail(s, "again", "again", &out);
    assert_int_equal(send(s, "{'type':'message_stop'}", &out), CLAUDE_STREAM_ERROR);
    assert_int_equal(out.len, len);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void nothing_after_done(void **state)
{
    (void)state;
    claude_buf out = {0};
    claude_stream *s = started(NULL, &out);
    assert_int_equal(send(s, "{'type':'message_stop'}", &out), CLAUDE_STREAM_DONE);
    size_t len = out.len;
    assert_int_equal(send(s, "{'type':'message_start'}", &out), CLAUDE_STREAM_DONE);
    assert_int_equal(send(s, "not json", &out), CLAUDE_STREAM_DONE);
    claude_stream_fail(s, "upstream_disconnected", "late", &out);
    assert_int_equal(claude_stream_state_of(s), CLAUDE_STREAM_DONE);
    assert_int_equal(out.len, len);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void events_before_message_start(void **state)
{
    (void)state;
    static const char *const early[] = {
        "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}",
        "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'x'}}",
        "{'type':'content_block_stop','index':0}",
        "{'type':'message_delta','delta':{'stop_reason':'end_turn'},'usage':{'output_tokens':1}}",
        "{'type':'message_stop'}",
    };
    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
        claude_buf out = {0};
        claude_stream *s = claude_stream_new(NULL, CREATED);
        assert_non_null(s);
        /* pings and unknown events are harmless anywhere */
        assert_int_equal(send_as(s, "ping", "{'type':'ping'}", &out), CLAUDE_STREAM_OPEN);
        assert_int_equal(send(s, "{'type':'future_event','x':1}", &out), CLAUDE_STREAM_OPEN);
        assert_int_equal(out.len, 0);
        assert_int_equal(send(s, early[i], &out), CLAUDE_STREAM_ERROR);
        frames f;
        frames_parse(&f, out.data);
        assert_int_equal(f.n, 1);
        assert_error(f.json[0], "Anthropic's stream broke the protocol: an event before message_start.", "api_error",
                     "upstream_protocol_error");
        frames_free(&f);
        claude_stream_free(s);
        claude_buf_free(&out);
    }
}

/* Each of these, with text block 0 and tool block 1 open, ends the stream
 * with exactly one protocol error frame. */
/* With text block 0 and tool block 1 open, sent as content_block_delta events. */
static const char *const hostile_deltas[] = {
    "",
    "not json",
    "{'type':'ping'} trailing",
    "[1,2]",
    "'message_stop'",
    "{'type':'message_start','message':{'id':'m','model':'x'}}",
    "{'type':'content_block_delta','index':9,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':4294967296,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':1e300,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':-1,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':0.5,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':'0','delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':5}}",
    "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta'}}",
    "{'type':'content_block_delta','index':0,'delta':'text_delta'}",
    "{'type':'content_block_delta','index':0,'delta':{'type':null}}",
    "{'type':'content_block_delta','index':0,'delta':{'type':'input_json_delta','partial_json':'x'}}",
    "{'type':'content_block_delta','index':1,'delta':{'type':'text_delta','text':'x'}}",
    "{'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':{}}}",
    "{'type':'content_block_delta','index':0,'delta':{'type':'signature_delta','signature':'s'}}",
    "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}",
    "{'type':'content_block_start','index':2}",
    "{'type':'content_block_start','index':2,'content_block':{'type':[]}}",
    "{'type':'content_block_start','index':2,'content_block':{'type':'text','text':1}}",
    "{'type':'content_block_start','index':2,'content_block':{'type':'tool_use','id':'t'}}",
    "{'type':'content_block_start','index':2,'content_block':{'type':'tool_use','name':'n'}}",
    "{'type':'content_block_start','index':2,'content_block':{'type':'redacted_thinking'}}",
    "{'type':'content_block_start','content_block':{'type':'text','text':''}}",
};

static void hostile_events_are_protocol_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile_deltas) / sizeof(hostile_deltas[0]); i++) {
        claude_buf out = {0};
        claude_stream *s = with_open_blocks(&out);
        print_message("case %zu: %s\n", i, hostile_deltas[i]);
        assert_int_equal(send_as(s, "content_block_delta", hostile_deltas[i], &out), CLAUDE_STREAM_ERROR);
        frames f;
        frames_parse(&f, out.data);
        assert_int_equal(f.n, 1);
        assert_error(f.json[0], NULL, "api_error", "upstream_protocol_error");
        frames_free(&f);
        claude_stream_free(s);
        claude_buf_free(&out);
    }
}

/* Oddities that carry nothing to translate: no frame, still OPEN. */
static void harmless_oddities_are_ignored(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{'type':'ping'}",
        "{'type':'ping','extra':[1,2,3]}",
        "{}",
        "{'type':12}",
        "{'type':'content_block_stop','index':77}",
        "{'type':'content_block_stop','index':'x'}",
        "{'type':'content_block_delta','index':0,'delta':{'type':'citations_delta','citation':{}}}",
        "{'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':''}}",
        "{'type':'content_block_start','index':5,'content_block':{'type':'server_tool_use','id':'s'}}",
        "{'type':'content_block_delta','index':5,'delta':{'type':'input_json_delta','partial_json':'{'}}",
        "{'type':'brand_new_event','index':0}",
        " {'type':'ping'}\r\n",
    };
    claude_buf out = {0};
    claude_stream *s = with_open_blocks(&out);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s\n", i, cases[i]);
        assert_int_equal(send(s, cases[i], &out), CLAUDE_STREAM_OPEN);
        assert_int_equal(out.len, 0);
    }
    /* the event name only counts when the data has no type */
    assert_int_equal(send_as(s, "message_stop", "{'type':'ping'}", &out), CLAUDE_STREAM_OPEN);
    assert_int_equal(send_as(s, "message_stop", "{}", &out), CLAUDE_STREAM_DONE);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void deltas_after_block_stop_are_errors(void **state)
{
    (void)state;
    claude_buf out = {0};
    claude_stream *s = started(NULL, &out);
    send(s, "{'type':'content_block_start','index':0,'content_block':{'type':'text','text':''}}", &out);
    send(s, "{'type':'content_block_stop','index':0}", &out);
    assert_int_equal(send(s, "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'x'}}", &out),
                     CLAUDE_STREAM_ERROR);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void too_many_open_blocks(void **state)
{
    (void)state;
    claude_buf out = {0};
    claude_stream *s = started(NULL, &out);
    char ev[160];
    int i;
    for (i = 0; i < 1000; i++) {
        snprintf(ev, sizeof(ev), "{'type':'content_block_start','index':%d,'content_block':{'type':'text','text':''}}",
                 i * 1000);
        if (send(s, ev, &out) != CLAUDE_STREAM_OPEN)
            break;
    }
    assert_true(i >= 16 && i < 1000);
    assert_int_equal(claude_stream_state_of(s), CLAUDE_STREAM_ERROR);
    claude_stream_free(s);
    claude_buf_free(&out);
}

static void usage_counts_are_sanitised(void **state)
{
    (void)state;
    claude_request_info info = {.include_usage = 1};
    claude_buf out = {0};
    claude_stream *s = claude_stream_new(&info, CREATED);
    const char *start = "{'type':'message_start','message':{'id':'m','model':'c','usage':{"
                        "'input_tokens':-5,'cache_read_input_tokens':'7','cache_creation_input_tokens':1e300,"
                        "'output_tokens':2}}}";
    send(s, start, &out);
    /* message_delta's counts are cumulative and win */
    send(s,
         "{'type':'message_delta','delta':{'stop_reason':'end_turn'},'usage':{'input_tokens':10,"
         "'cache_read_input_tokens':4,'output_tokens':9}}",
         &out);
    assert_int_equal(send(s, "{'type':'message_stop'}", &out), CLAUDE_STREAM_DONE);
    frames f;
    frames_parse(&f, out.data);
    assert_int_equal(f.n, 4);
    const cJSON *usage = get(f.json[2], "usage");
    assert_true(get_num(usage, "prompt_tokens") == 14);
    assert_true(get_num(usage, "completion_tokens") == 9);
    assert_true(get_num(usage, "total_tokens") == 23);
    assert_true(get_num(get(usage, "prompt_tokens_details"), "cached_tokens") == 4);
    assert_null(cJSON_GetObjectItemCaseSensitive(usage, "cache_creation_input_tokens"));
    frames_free(&f);
    claude_stream_free(s);
    claude_buf_free(&out);
}

/* ------------------------------------------------------------------ */
/* chunking never changes the result */

static const char *const fixtures[] = {"text.sse",     "pings.sse", "tool_use.sse", "parallel_tools.sse",
                                       "thinking.sse", "error.sse", "json_tool.sse"};

static void check_split_points(const char *sse, size_t len, const claude_request_info *info)
{
    claude_stream_state want_state, st;
    char *want = translate(sse, len, info, 0, &want_state);
    char *bytes = translate(sse, len, info, 1, &st);
    assert_string_equal(bytes, want);
    assert_int_equal(st, want_state);
    free(bytes);
    for (size_t cut = 1; cut < len; cut++) {
        pipeline p;
        pipeline_open(&p, info);
        assert_int_equal(claude_sse_feed(p.sse, sse, cut, on_event, &p), 0);
        assert_int_equal(claude_sse_feed(p.sse, sse + cut, len - cut, on_event, &p), 0);
        assert_string_equal(p.out.data, want);
        assert_int_equal(claude_stream_state_of(p.stream), want_state);
        pipeline_close(&p);
    }
    free(want);
}

/* The same transcript with \n replaced by `eol`. */
static char *with_line_ends(const char *sse, size_t len, const char *eol, size_t *out_len)
{
    size_t n = 0, elen = strlen(eol);
    char *r = malloc(len * elen + 1);
    assert_non_null(r);
    for (size_t i = 0; i < len; i++) {
        if (sse[i] == '\n') {
            memcpy(r + n, eol, elen);
            n += elen;
        } else {
            r[n++] = sse[i];
        }
    }
    r[n] = '\0';
    *out_len = n;
    return r;
}

static void every_split_point_gives_the_same_frames(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1, .include_usage = 1, .json_tool = 1, .json_tool_name = "json_response"};
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        size_t len;
        char *sse = read_fixture(fixtures[i], &len);
        check_split_points(sse, len, &info);
        claude_stream_state a, b;
        char *want = translate(sse, len, &info, 0, &a);
        for (int e = 0; e < 2; e++) {
            size_t n;
            char *alt = with_line_ends(sse, len, e ? "\r" : "\r\n", &n);
            check_split_points(alt, n, &info);
            char *got = translate(alt, n, &info, 0, &b);
            assert_string_equal(got, want);
            free(got);
            free(alt);
        }
        free(want);
        free(sse);
    }
}

/* ------------------------------------------------------------------ */
/* content_block_delta read without a tree (claude_stream_set_picker) */

/* Each fixture, each hostile delta and each harmless one gives the same
 * bytes and state when deltas are picked as when every event is a tree. */
static void picked_deltas_translate_as_trees_do(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1, .include_usage = 1, .json_tool = 1, .json_tool_name = "json_response"};
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        size_t len;
        char *sse = read_fixture(fixtures[i], &len);
        claude_stream_state a, b;
        unsigned picked = 0;
        char *want = translate_picking(sse, len, &info, 0, &a, NULL);
        char *got = translate_picking(sse, len, &info, 7, &b, &picked);
        assert_true(strstr(want, "data: ") != NULL);
        if (strstr(sse, "content_block_delta") != NULL)
            assert_true(picked > 0);
        assert_string_equal(got, want);
        assert_int_equal(b, a);
        free(got);
        free(want);
        free(sse);
    }
    static const char *const more[] = {
        "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'a\\u00e9\\n\\'b'}}",
        "{'index':0,'delta':{'text':'late type','type':'text_delta'},'type':'content_block_delta'}",
        "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'first','text':'second'}}",
        "{'type':'content_block_delta','type':'ping','index':0,'delta':{'type':'text_delta','text':'x'}}",
        "{'type':'message_stop'}",
        "{'type':'content_block_delta','index':0,'delta':{'type':'citations_delta','citation':{'a':[1]}}}",
        "{'type':'content_block_delta','index':1,'delta':{'type':'input_json_delta','partial_json':'{\\'k\\':1'}}",
        "{'type':'content_block_delta','index':0.0,'delta':{'type':'text_delta','text':'zero point zero'}}",
        "{'type':'content_block_delta','index':-0,'delta':{'type':'text_delta','text':'minus zero'}}",
        "\xEF\xBB\xBF{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'bom'}}",
        "{'type':'content_block_delta','index':0,'delta':{'type':'text_delta','text':'\xC3\x28'}}",
    };
    size_t nh = sizeof(hostile_deltas) / sizeof(hostile_deltas[0]), nm = sizeof(more) / sizeof(more[0]);
    for (size_t i = 0; i < nh + nm; i++) {
        const char *c = i < nh ? hostile_deltas[i] : more[i - nh];
        print_message("case %zu: %s\n", i, c);
        claude_buf want = {0}, got = {0};
        claude_stream *tree = with_open_blocks(&want), *picked = with_open_blocks(&got);
        picker *k = picker_new();
        claude_stream_set_picker(picked, pick_with, k);
        claude_stream_state a = send_as(tree, "content_block_delta", c, &want);
        claude_stream_state b = send_as(picked, "content_block_delta", c, &got);
        assert_int_equal(b, a);
        if (i == nh) /* a well-formed text delta */
            assert_int_equal(k->picked, 1);
        assert_int_equal(got.len, want.len);
        if (want.len > 0)
            assert_memory_equal(got.data, want.data, want.len);
        claude_stream_free(tree);
        claude_stream_free(picked);
        picker_free(k);
        claude_buf_free(&want);
        claude_buf_free(&got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_appends_resets_and_frees),
        cmocka_unit_test(picked_deltas_translate_as_trees_do),
        cmocka_unit_test(sse_fields_and_comments),
        cmocka_unit_test(sse_line_endings),
        cmocka_unit_test(sse_crlf_split_across_feeds),
        cmocka_unit_test(sse_bom_only_at_start),
        cmocka_unit_test(sse_too_big_fails_and_stays_failed),
        cmocka_unit_test(sse_callback_stops_feeding),
        cmocka_unit_test(text_reply),
        cmocka_unit_test(text_reply_with_usage),
        cmocka_unit_test(pings_comments_and_ids_change_nothing),
        cmocka_unit_test(tool_use_reply),
        cmocka_unit_test(parallel_tool_calls),
        cmocka_unit_test(thinking_reply),
        cmocka_unit_test(redacted_thinking_and_prefilled_blocks),
        cmocka_unit_test(error_event_mid_stream),
        cmocka_unit_test(error_event_mapping),
        cmocka_unit_test(json_tool_content),
        cmocka_unit_test(finish_reasons),
        cmocka_unit_test(tool_without_input_gets_empty_object),
        cmocka_unit_test(fail_writes_an_error_frame),
        cmocka_unit_test(nothing_after_done),
        cmocka_unit_test(events_before_message_start),
        cmocka_unit_test(hostile_events_are_protocol_errors),
        cmocka_unit_test(harmless_oddities_are_ignored),
        cmocka_unit_test(deltas_after_block_stop_are_errors),
        cmocka_unit_test(too_many_open_blocks),
        cmocka_unit_test(usage_counts_are_sanitised),
        cmocka_unit_test(every_split_point_gives_the_same_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
