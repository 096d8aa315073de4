/*
 * libFuzzer target for claude_provider's streaming layer.
 *
 * The input is used twice:
 *   - as a raw upstream byte stream, fed through claude_sse_feed into
 *     claude_stream_event both whole and in input-chosen chunk sizes (the
 *     two outputs must be identical: chunking may never change a result),
 *     and again with content_block_delta events read without a tree (the
 *     core's picker), which must not change a byte either;
 *   - as the data of one event, given unterminated so ASan sees overreads,
 *     to a fresh stream and to one with blocks open.
 * Every output must be well-formed frames ending at the first [DONE] or
 * error frame; a broken invariant aborts. The byte stream also goes to the
 * Responses translator, whose events must be "event: T\ndata: {"type":T,
 * "sequence_number":0,1,2…}\n\n", ending with response.completed,
 * response.incomplete, or error (and then response.failed once the
 * Response had begun) once the stream is over.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "responses.h"
#include "stream.h"

/* Small, so the event size limit is reached often. */
#define MAX_EVENT 2048

typedef struct run {
    claude_stream *stream;
    claude_buf out;
} run;

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    run *r = user;
    claude_stream_event(r->stream, event, data, len, &r->out);
    return 0;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

/* One frame: "data: " + one line of JSON object or [DONE] + "\n\n".
 * Returns its length; *final says whether it must be the last. */
static size_t check_frame(const char *p, size_t left, int *final)
{
    check(left > 8 && memcmp(p, "data: ", 6) == 0);
    const char *end = memchr(p + 6, '\n', left - 6);
    check(end != NULL && (size_t)(end - p) + 1 < left && end[1] == '\n');
    size_t n = (size_t)(end - p) - 6;
    if (n == 6 && memcmp(p + 6, "[DONE]", 6) == 0) {
        *final = 1;
    } else {
        cJSON *j = cJSON_ParseWithLength(p + 6, n);
        check(cJSON_IsObject(j));
        *final = cJSON_GetObjectItemCaseSensitive(j, "error") != NULL;
        cJSON_Delete(j);
    }
    return n + 8;
}

static void check_frames(const claude_buf *out, claude_stream_state state)
{
    int final = 0;
    size_t i = 0;
    while (i < out->len) {
        check(!final); /* nothing may follow [DONE] or an error */
        i += check_frame(out->data + i, out->len - i, &final);
    }
    check(final == (state != CLAUDE_STREAM_OPEN));
}

static int pick_with(void *scanner, const char *text, size_t len, const prism_json_want *want, prism_json_field *got,
                     size_t n)
{
    return prism_json_pick(scanner, text, len, want, got, n);
}

/* chunked: piece sizes 1..17 taken from the input itself; scanner: deltas
 * picked with it. */
static claude_buf run_sse(const uint8_t *data, size_t size, const claude_request_info *info, int chunked,
                          prism_json_scanner *scanner)
{
    claude_sse *p = claude_sse_new(MAX_EVENT);
    run r = {claude_stream_new(info, 1700000000L), {0}};
    check(p && r.stream);
    if (scanner != NULL)
        claude_stream_set_picker(r.stream, pick_with, scanner);
    int rc = 0;
    for (size_t i = 0; i < size && rc == 0;) {
        size_t n = chunked ? 1 + data[i] % 17u : size;
        n = n < size - i ? n : size - i;
        rc = claude_sse_feed(p, (const char *)data + i, n, on_event, &r);
        i += n;
    }
    /* end of input is the upstream going away */
    claude_stream_fail(r.stream, "upstream_disconnected", "The upstream stream ended early.", &r.out);
    check(claude_stream_state_of(r.stream) != CLAUDE_STREAM_OPEN);
    check_frames(&r.out, claude_stream_state_of(r.stream));
    claude_sse_free(p);
    claude_stream_free(r.stream);
    return r.out;
}

static void sse_mode(const uint8_t *data, size_t size)
{
    claude_request_info info = {.stream = 1, .include_usage = 1};
    claude_buf whole = run_sse(data, size, &info, 0, NULL);
    claude_buf pieces = run_sse(data, size, &info, 1, NULL);
    check(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0));
    /* One scanner for the run, as a worker keeps one (its buffers are big
     * to make); still reachable at exit. */
    static prism_json_scanner *scanner;
    if (scanner == NULL)
        scanner = prism_json_scanner_new();
    check(scanner != NULL);
    claude_buf picked = run_sse(data, size, &info, 1, scanner);
    check(whole.len == picked.len && (whole.len == 0 || memcmp(whole.data, picked.data, whole.len) == 0));
    claude_buf_free(&whole);
    claude_buf_free(&pieces);
    claude_buf_free(&picked);

    claude_request_info json = {.stream = 1, .json_tool = 1, .json_tool_name = "json_response"};
    claude_buf j = run_sse(data, size, &json, 1, NULL);
    claude_buf_free(&j);
}

typedef struct rrun {
    claude_rstream *stream;
    claude_buf out;
} rrun;

static int on_revent(void *user, const char *event, const char *data, size_t len)
{
    rrun *r = user;
    claude_rstream_event(r->stream, event, data, len, &r->out);
    return 0;
}

static void check_revents(const claude_buf *out, claude_stream_state state)
{
    int final = 0, errored = 0;
    double seq = 0;
    for (size_t i = 0; i < out->len;) {
        check(!final);
        const char *p = out->data + i, *nl = memchr(p, '\n', out->len - i);
        check(out->len - i > 7 && memcmp(p, "event: ", 7) == 0 && nl != NULL);
        size_t tlen = (size_t)(nl - p) - 7;
        const char *d = nl + 1, *end = memchr(d, '\n', out->len - (size_t)(d - out->data));
        check((size_t)(d - out->data) + 6 < out->len && memcmp(d, "data: ", 6) == 0 && end != NULL);
        check((size_t)(end - out->data) + 1 < out->len && end[1] == '\n');
        cJSON *j = cJSON_ParseWithLength(d + 6, (size_t)(end - d) - 6);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "sequence_number");
        check(cJSON_IsString(type) && strlen(type->valuestring) == tlen && memcmp(type->valuestring, p + 7, tlen) == 0);
        check(cJSON_IsNumber(n) && n->valuedouble == seq++);
        int failed = strcmp(type->valuestring, "response.failed") == 0;
        check(!errored || failed); /* after an error, only the failed Response */
        errored = strcmp(type->valuestring, "error") == 0;
        final = failed || strcmp(type->valuestring, "response.completed") == 0 ||
                strcmp(type->valuestring, "response.incomplete") == 0;
        cJSON_Delete(j);
        i = (size_t)(end - out->data) + 2;
    }
    check((final || errored) == (state != CLAUDE_STREAM_OPEN));
}

static claude_buf run_responses(const uint8_t *data, size_t size, const claude_request_info *info, int chunked)
{
    claude_sse *p = claude_sse_new(MAX_EVENT);
    rrun r = {claude_rstream_new(NULL, info, 1700000000L), {0}};
    check(p && r.stream);
    int rc = 0;
    for (size_t i = 0; i < size && rc == 0;) {
        size_t n = chunked ? 1 + data[i] % 17u : size;
        n = n < size - i ? n : size - i;
        rc = claude_sse_feed(p, (const char *)data + i, n, on_revent, &r);
        i += n;
    }
    claude_rstream_fail(r.stream, "upstream_disconnected", "The upstream stream ended early.", &r.out);
    check(claude_rstream_state_of(r.stream) != CLAUDE_STREAM_OPEN);
    check_revents(&r.out, claude_rstream_state_of(r.stream));
    claude_sse_free(p);
    claude_rstream_free(r.stream);
    return r.out;
}

static void responses_mode(const uint8_t *data, size_t size)
{
    claude_request_info info = {.stream = 1, .json_tool = (int)(size & 1), .json_tool_name = "f"};
    claude_buf whole = run_responses(data, size, &info, 0);
    claude_buf pieces = run_responses(data, size, &info, 1);
    check(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0));
    claude_buf_free(&whole);
    claude_buf_free(&pieces);
}

static void send(claude_stream *s, const char *json, claude_buf *out)
{
    claude_stream_event(s, "", json, strlen(json), out);
}

/* A stream with a text, a tool and a thinking block open. */
static void open_blocks(claude_stream *s, claude_buf *out)
{
    send(s, "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{}}}", out);
    send(s, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}", out);
    send(s,
         "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
         "\"f\"}}",
         out);
    send(s,
         "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}",
         out);
}

static void event_mode(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"", "content_block_delta", "error", "message_delta"};
    for (int warm = 0; warm < 2; warm++) {
        claude_request_info info = {.include_usage = 1, .json_tool = warm, .json_tool_name = "f"};
        claude_stream *s = claude_stream_new(&info, 0);
        claude_buf out = {0};
        check(s != NULL);
        if (warm)
            open_blocks(s, &out);
        /* twice: the second lands on whatever state the first left */
        for (int i = 0; i < 2; i++)
            claude_stream_event(s, names[size % 4], (const char *)data, size, &out);
        check_frames(&out, claude_stream_state_of(s));
        claude_stream_free(s);
        claude_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sse_mode(data, size);
    event_mode(data, size);
    responses_mode(data, size);
    return 0;
}
