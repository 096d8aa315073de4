/*
 * claude_provider's Responses API: a Responses request carried to the Chat
 * Completions request it asks for, an Anthropic message written as a
 * Response, and the streaming transcripts under data/claude_stream/ turned
 * into Responses events, each parsed and checked field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "item_store.h"
#include "picker.h"
#include "responses.h"

#ifndef PRISM_TEST_DATA
#error "PRISM_TEST_DATA must name tests/unit/data"
#endif

#define MAX_EVENTS 64

/* ---- helpers ---- */

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    return j;
}

/* Whether `tree` printed is exactly `json` (both compact). */
static void assert_json(const cJSON *tree, const char *json)
{
    cJSON *want = parse(json);
    char *a = cJSON_PrintUnformatted(tree), *b = cJSON_PrintUnformatted(want);
    if (strcmp(a, b) != 0)
        fail_msg("got  %s\nwant %s", a, b);
    free(a);
    free(b);
    cJSON_Delete(want);
}

static cJSON *chat_of(const char *request, claude_error *err)
{
    cJSON *in = parse(request);
    cJSON *chat = claude_chat_from_responses(in, NULL, NULL, NULL, err);
    cJSON_Delete(in);
    return chat;
}

typedef struct events {
    cJSON *ev[MAX_EVENTS];
    char type[MAX_EVENTS][64];
    size_t n;
} events;

/* Splits the output into events, checking the framing and the numbering. */
static void split(const claude_buf *out, events *e)
{
    memset(e, 0, sizeof(*e));
    for (size_t i = 0; i < out->len;) {
        assert_true(e->n < MAX_EVENTS);
        const char *p = out->data + i;
        assert_memory_equal(p, "event: ", 7);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        snprintf(e->type[e->n], sizeof(e->type[0]), "%.*s", (int)(nl - p - 7), p + 7);
        assert_memory_equal(nl + 1, "data: ", 6);
        const char *end = strstr(nl + 1, "\n\n");
        assert_non_null(end);
        cJSON *j = cJSON_ParseWithLength(nl + 7, (size_t)(end - nl - 7));
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "type")->valuestring, e->type[e->n]);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "sequence_number")->valueint, (int)e->n);
        e->ev[e->n++] = j;
        i = (size_t)(end - out->data) + 2;
    }
}

static void events_free(events *e)
{
    for (size_t i = 0; i < e->n; i++)
        cJSON_Delete(e->ev[i]);
}

static const cJSON *get(const cJSON *o, const char *path)
{
    char key[64];
    while (o != NULL && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        o = (key[0] >= '0' && key[0] <= '9') ? cJSON_GetArrayItem(o, atoi(key))
                                             : cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (dot != NULL);
    }
    return o;
}

static const char *str(const cJSON *o, const char *path)
{
    const cJSON *v = get(o, path);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

typedef struct run {
    claude_rstream *s;
    claude_buf out;
} run;

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    run *r = user;
    claude_rstream_event(r->s, event, data, len, &r->out);
    return 0;
}

/* The raw events of a transcript through the SSE layer and the Responses
 * translator (malloc'd), picking deltas when k is given. */
static char *transcript_text(const char *name, const claude_request_info *info, const cJSON *request, picker *k,
                             claude_stream_state *st)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/claude_stream/%s", PRISM_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    claude_sse *sse = claude_sse_new(1 << 20);
    run r = {claude_rstream_new(request, info, 1700000000L), {0}};
    assert_non_null(r.s);
    if (k != NULL)
        claude_rstream_set_picker(r.s, pick_with, k);
    assert_int_equal(claude_sse_feed(sse, buf, len, on_event, &r), 0);
    *st = claude_rstream_state_of(r.s);
    char *text = strndup(r.out.data ? r.out.data : "", r.out.len);
    assert_non_null(text);
    claude_sse_free(sse);
    claude_rstream_free(r.s);
    claude_buf_free(&r.out);
    return text;
}

static claude_stream_state transcript(const char *name, const claude_request_info *info, const cJSON *request,
                                      events *e)
{
    claude_stream_state st;
    char *text = transcript_text(name, info, request, NULL, &st);
    claude_buf out = {0};
    assert_int_equal(claude_buf_append(&out, text, strlen(text)), 0);
    split(&out, e);
    claude_buf_free(&out);
    free(text);
    return st;
}

/* ---- the request ---- */

static void request_items_become_messages(void **state)
{
    (void)state;
    claude_error err;
    cJSON *chat = chat_of(
        "{\"model\":\"claude-x\",\"instructions\":\"Be brief.\",\"max_output_tokens\":9,\"stream\":true,"
        "\"reasoning\":{\"effort\":\"low\"},\"text\":{\"format\":{\"type\":\"json_object\"}},"
        "\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi\"},"
        "{\"type\":\"input_image\",\"image_url\":\"https://x/y.png\"}]},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"ok\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"toolu_1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"toolu_2\",\"name\":\"g\",\"arguments\":\"{\\\"a\\\":1}\"},"
        "{\"type\":\"reasoning\",\"summary\":[]},"
        "{\"type\":\"function_call_output\",\"call_id\":\"toolu_1\",\"output\":\"42\"}],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},\"store\":true}",
        &err);
    assert_non_null(chat);
    assert_json(
        chat,
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"tool_calls\":["
        "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},"
        "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"42\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"response_format\":{\"type\":\"json_object\"},"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"model\":\"claude-x\",\"stream\":true,\"max_completion_tokens\":9,\"reasoning_effort\":\"low\"}");
    cJSON_Delete(chat);
}

/* What the chat translation refuses in a carried request is named as the
 * Responses request has it, in the param and the message. */
static void chat_errors_name_responses_fields(void **state)
{
    (void)state;
    static const struct {
        const char *request, *param;
    } cases[] = {
        {"{\"model\":\"c\",\"instructions\":\"x\",\"input\":[{\"role\":\"user\",\"content\":\"hi\"},"
         "{\"type\":\"reasoning\",\"summary\":[]},"
         "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{not json\"},"
         "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"x\"}]}",
         "input[2]"},
        {"{\"model\":\"c\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"image_url\":"
         "\"ftp://x\"}]}]}",
         "input[0]"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":\"s\"}]}",
         "tools[0].parameters"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"max_output_tokens\":-5}", "max_output_tokens"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"reasoning\":{\"effort\":\"extreme\"}}", "reasoning.effort"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"temperature\":\"hot\"}", "temperature"},
        {"{\"model\":\"c\",\"input\":\"\"}", "input"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"x\","
         "\"schema\":\"not a schema\"}}}",
         "text.format.schema"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu\n", i);
        cJSON *in = parse(cases[i].request);
        claude_error err;
        claude_rsp_origins origins = {0};
        cJSON *chat = claude_chat_from_responses(in, NULL, NULL, &origins, &err);
        assert_non_null(chat);
        assert_int_equal(origins.n, cJSON_GetArraySize(prism_json_get(chat, "messages")));
        claude_request_info info;
        size_t len;
        claude_options opt = {.default_max_tokens = 1024, 1024, 2048, 4096};
        char *body = claude_request_from_openai(chat, &opt, &info, &len, &err);
        assert_null(body);
        assert_int_equal(err.status, 400);
        char chat_param[sizeof(err.param)];
        snprintf(chat_param, sizeof(chat_param), "%s", err.param);
        claude_rsp_error_param(&origins, &err);
        print_message("%s -> %s: %s\n", chat_param, err.param, err.message);
        assert_string_equal(err.param, cases[i].param);
        char quoted[sizeof(err.param) + 2];
        snprintf(quoted, sizeof(quoted), "'%s'", cases[i].param);
        assert_non_null(strstr(err.message, quoted));
        assert_null(strstr(err.message, "messages["));
        free(origins.of);
        cJSON_Delete(chat);
        cJSON_Delete(in);
    }
}

static void request_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *request, *code, *param;
    } cases[] = {
        {"{\"model\":\"c\",\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}", "unsupported_parameter",
         "previous_response_id"},
        {"{\"model\":\"c\",\"input\":\"hi\",\"background\":true}", "unsupported_parameter", "background"},
        {"{\"model\":\"c\"}", "missing_required_parameter", "input"},
        {"{\"model\":\"c\",\"input\":5}", "invalid_type", "input"},
        {"{\"model\":\"c\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "invalid_value", "input[0].role"},
        {"{\"model\":\"c\",\"input\":[{\"type\":\"item_reference\",\"id\":\"m\"}]}", "invalid_value", "input[0].id"},
        {"{\"model\":\"c\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"t\",\"name\":\"f\"}]}", "invalid_type",
         "input[0].arguments"},
        {"{\"model\":\"c\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"file_id\":\"f\"}]}]}",
         "unsupported_parameter", "input[0].content[0].image_url"},
        {"{\"model\":\"c\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", "invalid_value",
         "input[0].content[0].type"},
        {"{\"model\":\"c\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "unsupported_parameter",
         "tools[0].type"},
        {"{\"model\":\"c\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}", "invalid_value",
         "text.format.type"},
        {"{\"model\":\"c\",\"input\":\"x\",\"instructions\":[]}", "invalid_type", "instructions"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        claude_error err;
        cJSON *chat = chat_of(cases[i].request, &err);
        if (chat != NULL)
            fail_msg("case %zu was not refused", i);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.type, "invalid_request_error");
        assert_string_equal(err.code, cases[i].code);
        assert_string_equal(err.param, cases[i].param);
        assert_non_null(strstr(err.message, cases[i].param));
    }
}

/* ---- the answer ---- */

static void message_becomes_response(void **state)
{
    (void)state;
    cJSON *request = parse("{\"model\":\"claude-x\",\"input\":\"hi\",\"instructions\":\"Be brief.\",\"top_p\":0.5}");
    cJSON *msg = parse("{\"id\":\"msg_01AB\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x-1\","
                       "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s\"},"
                       "{\"type\":\"text\",\"text\":\"Hi.\"},"
                       "{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"f\",\"input\":{\"a\":[1,2]}}],"
                       "\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4,"
                       "\"cache_read_input_tokens\":2,\"cache_creation_input_tokens\":1}}");
    claude_request_info info = {0};
    claude_error err;
    claude_usage u;
    size_t len = 0;
    char *text = claude_response_to_responses(msg, request, &info, 1700000000L, &u, &len, &err, NULL, NULL);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    cJSON *r = parse(text);
    assert_string_equal(str(r, "id"), "resp_01AB");
    assert_string_equal(str(r, "object"), "response");
    assert_string_equal(str(r, "status"), "incomplete");
    assert_string_equal(str(r, "incomplete_details.reason"), "max_output_tokens");
    assert_string_equal(str(r, "model"), "claude-x-1");
    assert_int_equal(cJSON_GetArraySize(get(r, "output")), 3);
    assert_json(get(r, "output.0"), "{\"id\":\"rs_01AB\",\"type\":\"reasoning\",\"status\":\"completed\","
                                    "\"summary\":[{\"type\":\"summary_text\",\"text\":\"hm\"}],"
                                    "\"encrypted_content\":\"s\"}");
    assert_json(get(r, "output.1"), "{\"id\":\"msg_01AB_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":"
                                    "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi.\","
                                    "\"annotations\":[],\"logprobs\":[]}]}");
    assert_json(get(r, "output.2"), "{\"id\":\"fc_9\",\"type\":\"function_call\",\"status\":\"completed\","
                                    "\"arguments\":\"{\\\"a\\\":[1,2]}\",\"call_id\":\"toolu_9\",\"name\":\"f\"}");
    assert_json(get(r, "usage"), "{\"input_tokens\":6,\"input_tokens_details\":{\"cached_tokens\":2},"
                                 "\"output_tokens\":4,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                                 "\"total_tokens\":10}");
    assert_string_equal(str(r, "instructions"), "Be brief.");
    assert_true(get(r, "top_p")->valuedouble == 0.5);
    assert_int_equal(u.prompt, 6);
    free(text);
    cJSON_Delete(r);
    cJSON_Delete(msg);
    cJSON_Delete(request);
}

static void not_a_message_is_502(void **state)
{
    (void)state;
    const char *bad[] = {"[]", "{\"id\":\"m\"}", "{\"id\":\"m\",\"content\":[{\"type\":\"text\"}]}",
                         "{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *msg = parse(bad[i]);
        claude_error err;
        size_t len = 0;
        assert_null(claude_response_to_responses(msg, NULL, NULL, 0, NULL, &len, &err, NULL, NULL));
        assert_int_equal(err.status, 502);
        assert_string_equal(err.code, "upstream_protocol_error");
        cJSON_Delete(msg);
    }
}

/* ---- the stream ---- */

static void text_stream(void **state)
{
    (void)state;
    events e;
    assert_int_equal(transcript("text.sse", &(claude_request_info){.stream = 1}, NULL, &e), CLAUDE_STREAM_DONE);
    assert_true(e.n >= 8);
    assert_string_equal(e.type[0], "response.created");
    assert_string_equal(e.type[1], "response.in_progress");
    assert_string_equal(str(e.ev[0], "response.status"), "in_progress");
    assert_true(cJSON_IsNull(get(e.ev[0], "response.usage")));
    assert_string_equal(e.type[2], "response.output_item.added");
    assert_string_equal(e.type[3], "response.content_part.added");
    const char *item = str(e.ev[2], "item.id");
    char joined[4096] = "";
    size_t i = 4;
    for (; i < e.n && strcmp(e.type[i], "response.output_text.delta") == 0; i++) {
        assert_string_equal(str(e.ev[i], "item_id"), item);
        assert_int_equal(get(e.ev[i], "output_index")->valueint, 0);
        strncat(joined, str(e.ev[i], "delta"), sizeof(joined) - strlen(joined) - 1);
    }
    const char *const tail[] = {"response.output_text.done", "response.content_part.done", "response.output_item.done",
                                "response.completed"};
    assert_int_equal(e.n - i, 4);
    for (size_t k = 0; k < 4; k++)
        assert_string_equal(e.type[i + k], tail[k]);
    assert_string_equal(str(e.ev[i], "text"), joined);
    assert_string_equal(str(e.ev[i + 1], "part.text"), joined);
    const cJSON *done = get(e.ev[i + 3], "response");
    assert_string_equal(str(done, "status"), "completed");
    assert_string_equal(str(done, "output.0.content.0.text"), joined);
    assert_true(get(done, "usage.output_tokens")->valueint > 0);
    events_free(&e);
}

static void tool_stream(void **state)
{
    (void)state;
    events e;
    assert_int_equal(transcript("tool_use.sse", &(claude_request_info){.stream = 1}, NULL, &e), CLAUDE_STREAM_DONE);
    const cJSON *done = get(e.ev[e.n - 1], "response");
    assert_string_equal(e.type[e.n - 1], "response.completed");
    assert_string_equal(str(done, "output.1.type"), "function_call");
    assert_string_equal(str(done, "output.1.call_id"), "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_string_equal(str(done, "output.1.id"), "fc_01T1x1fJ34qAmk2tNTrN7Up6");
    char args[1024] = "";
    int added = 0, arg_done = 0;
    for (size_t i = 0; i < e.n; i++) {
        if (strcmp(e.type[i], "response.function_call_arguments.delta") == 0) {
            assert_int_equal(get(e.ev[i], "output_index")->valueint, 1);
            assert_true(str(e.ev[i], "delta")[0] != '\0');
            strncat(args, str(e.ev[i], "delta"), sizeof(args) - strlen(args) - 1);
        }
        if (strcmp(e.type[i], "response.output_item.added") == 0 && get(e.ev[i], "output_index")->valueint == 1) {
            added = 1;
            assert_string_equal(str(e.ev[i], "item.arguments"), "");
            assert_string_equal(str(e.ev[i], "item.status"), "in_progress");
        }
        if (strcmp(e.type[i], "response.function_call_arguments.done") == 0) {
            arg_done = 1;
            assert_string_equal(str(e.ev[i], "arguments"), args);
        }
    }
    assert_true(added && arg_done);
    assert_string_equal(str(done, "output.1.arguments"), args);
    cJSON *parsed = parse(args);
    cJSON_Delete(parsed);
    events_free(&e);
}

/* A thinking block: a reasoning item whose summary streams as the thinking
 * and whose encrypted_content is the signature. */
static void thinking_is_reasoning(void **state)
{
    (void)state;
    events e;
    assert_int_equal(transcript("thinking.sse", &(claude_request_info){.stream = 1}, NULL, &e), CLAUDE_STREAM_DONE);
    const char *const head[] = {"response.created",
                                "response.in_progress",
                                "response.output_item.added",
                                "response.reasoning_summary_part.added",
                                "response.reasoning_summary_text.delta",
                                "response.reasoning_summary_text.delta",
                                "response.reasoning_summary_text.done",
                                "response.reasoning_summary_part.done",
                                "response.output_item.done"};
    assert_true(e.n > 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(e.type[i], head[i]);
    assert_string_equal(str(e.ev[2], "item.type"), "reasoning");
    assert_true(cJSON_IsNull(get(e.ev[2], "item.encrypted_content")));
    char joined[1024] = "";
    strcat(joined, str(e.ev[4], "delta"));
    strcat(joined, str(e.ev[5], "delta"));
    assert_int_equal(get(e.ev[4], "summary_index")->valueint, 0);
    assert_string_equal(str(e.ev[6], "text"), joined);
    assert_string_equal(str(e.ev[7], "part.text"), joined);
    const cJSON *item = get(e.ev[8], "item");
    assert_string_equal(str(item, "summary.0.type"), "summary_text");
    assert_string_equal(str(item, "summary.0.text"), joined);
    assert_non_null(strstr(str(item, "encrypted_content"), "EqQBCgIYAhIM"));
    const cJSON *done = get(e.ev[e.n - 1], "response");
    assert_string_equal(str(done, "output.0.type"), "reasoning");
    assert_string_equal(str(done, "output.1.type"), "message");
    assert_int_equal(get(e.ev[e.n - 3], "output_index")->valueint, 1);
    events_free(&e);
}

/* Sent back, a reasoning item is the thinking block again, leading the
 * assistant turn it came with; without encrypted_content it is dropped. */
static void reasoning_goes_back_as_thinking(void **state)
{
    (void)state;
    claude_error err;
    cJSON *chat =
        chat_of("{\"model\":\"c\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
                "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"th\"},"
                "{\"type\":\"summary_text\",\"text\":\"ink\"}],\"encrypted_content\":\"SIG\"},"
                "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"a\"}]},"
                "{\"type\":\"function_call\",\"call_id\":\"t1\",\"name\":\"f\",\"arguments\":\"{}\"},"
                "{\"type\":\"function_call_output\",\"call_id\":\"t1\",\"output\":\"1\"},"
                "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"redacted_thinking:DATA\"},"
                "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"x\"}]},"
                "{\"type\":\"function_call\",\"call_id\":\"t2\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
                &err);
    assert_non_null(chat);
    assert_json(get(chat, "messages"),
                "[{\"role\":\"user\",\"content\":\"q\"},"
                "{\"role\":\"assistant\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"think\","
                "\"signature\":\"SIG\"}],\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"tool_calls\":[{\"id\":"
                "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"1\"},"
                "{\"role\":\"assistant\",\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"DATA\"}],"
                "\"tool_calls\":[{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                "\"{}\"}}]}]");
    cJSON_Delete(chat);
}

static void json_tool_is_text(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1, .json_tool = 1, .json_tool_name = "json_response"};
    events e;
    assert_int_equal(transcript("json_tool.sse", &info, NULL, &e), CLAUDE_STREAM_DONE);
    const cJSON *done = get(e.ev[e.n - 1], "response");
    assert_string_equal(str(done, "output.0.type"), "message");
    cJSON *answer = parse(str(done, "output.0.content.0.text"));
    assert_true(cJSON_IsObject(answer));
    cJSON_Delete(answer);
    events_free(&e);
}

static void error_event_ends_the_stream(void **state)
{
    (void)state;
    events e;
    assert_int_equal(transcript("error.sse", &(claude_request_info){.stream = 1}, NULL, &e), CLAUDE_STREAM_ERROR);
    assert_string_equal(e.type[e.n - 2], "error");
    const char *code = str(e.ev[e.n - 2], "code");
    assert_true(code[0] != '\0');
    assert_true(cJSON_IsNull(get(e.ev[e.n - 2], "param")));
    assert_string_equal(e.type[e.n - 1], "response.failed");
    const cJSON *failed = get(e.ev[e.n - 1], "response");
    assert_string_equal(str(failed, "status"), "failed");
    assert_string_equal(str(failed, "error.code"), code);
    assert_string_equal(str(failed, "error.message"), str(e.ev[e.n - 2], "message"));
    assert_string_equal(str(failed, "output.0.content.0.text"), "Partial answer");
    events_free(&e);
}

static void broken_and_cut_streams(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1};
    claude_rstream *s = claude_rstream_new(NULL, &info, 0);
    claude_buf out = {0};
    const char *delta =
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}";
    assert_int_equal(claude_rstream_event(s, "", delta, strlen(delta), &out), CLAUDE_STREAM_ERROR);
    events e;
    split(&out, &e);
    assert_int_equal(e.n, 1);
    assert_string_equal(str(e.ev[0], "code"), "upstream_protocol_error");
    events_free(&e);
    claude_rstream_free(s);
    claude_buf_free(&out);

    s = claude_rstream_new(NULL, &info, 0);
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{}}}";
    assert_int_equal(claude_rstream_event(s, "", start, strlen(start), &out), CLAUDE_STREAM_OPEN);
    claude_rstream_fail(s, "upstream_disconnected", "gone", &out);
    assert_int_equal(claude_rstream_state_of(s), CLAUDE_STREAM_ERROR);
    split(&out, &e);
    assert_int_equal(e.n, 4);
    assert_string_equal(e.type[2], "error");
    assert_string_equal(str(e.ev[2], "code"), "upstream_disconnected");
    assert_string_equal(e.type[3], "response.failed");
    assert_string_equal(str(e.ev[3], "response.error.message"), "gone");
    events_free(&e);
    claude_rstream_free(s);
    claude_buf_free(&out);
}

/* The text kept for response.completed is bounded: past the limit, an
 * error and response.failed end the stream. */
static void kept_text_is_bounded(void **state)
{
    (void)state;
    claude_request_info info = {.stream = 1};
    claude_rstream *s = claude_rstream_new(NULL, &info, 0);
    claude_rstream_set_max_bytes(s, 8);
    claude_buf out = {0};
    const char *const evs[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"12345\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"6789\"}}",
    };
    for (size_t i = 0; i < 4; i++)
        claude_rstream_event(s, "", evs[i], strlen(evs[i]), &out);
    assert_int_equal(claude_rstream_state_of(s), CLAUDE_STREAM_ERROR);
    events e;
    split(&out, &e);
    assert_string_equal(e.type[e.n - 2], "error");
    assert_string_equal(str(e.ev[e.n - 2], "code"), "upstream_response_too_large");
    assert_string_equal(e.type[e.n - 1], "response.failed");
    assert_string_equal(str(e.ev[e.n - 1], "response.output.0.content.0.text"), "12345");
    events_free(&e);
    claude_rstream_free(s);
    claude_buf_free(&out);
}

static char *lookup(void *data, const char *id)
{
    return claude_item_store_get(data, id);
}

static void keep(void *data, const char *id, const char *json, size_t len)
{
    claude_item_store_put(data, id, json, len);
}

/* The items of one Response are kept; a later request's item_reference
 * reads them as if sent; an unknown id is a 400 naming it. */
static void references_resolve_to_kept_items(void **state)
{
    (void)state;
    claude_item_store *store = claude_item_store_new(16, 1 << 16);
    assert_non_null(store);
    cJSON *msg = parse("{\"id\":\"msg_01K\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
                       "{\"type\":\"tool_use\",\"id\":\"toolu_7\",\"name\":\"f\",\"input\":{\"x\":1}}]}");
    claude_error err;
    size_t len = 0;
    char *text = claude_response_to_responses(msg, NULL, NULL, 0, NULL, &len, &err, keep, store);
    assert_non_null(text);
    free(text);
    cJSON_Delete(msg);
    cJSON *in = parse("{\"model\":\"c\",\"input\":[{\"role\":\"user\",\"content\":\"q\"},"
                      "{\"type\":\"item_reference\",\"id\":\"msg_01K\"},{\"type\":\"item_reference\",\"id\":\"fc_7\"},"
                      "{\"type\":\"function_call_output\",\"call_id\":\"toolu_7\",\"output\":\"2\"}]}");
    cJSON *chat = claude_chat_from_responses(in, lookup, store, NULL, &err);
    assert_non_null(chat);
    assert_json(
        get(chat, "messages.1"),
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"}],\"tool_calls\":"
        "[{\"id\":\"toolu_7\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]}");
    cJSON_Delete(chat);
    cJSON_Delete(in);
    in = parse("{\"model\":\"c\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_gone\"}]}");
    assert_null(claude_chat_from_responses(in, lookup, store, NULL, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "input[0].id");
    cJSON_Delete(in);
    claude_item_store_free(store);
}

/* Oldest out first, by count and by bytes; the newest of two under one id. */
static void store_is_bounded(void **state)
{
    (void)state;
    claude_item_store *s = claude_item_store_new(3, 20);
    claude_item_store_put(s, "a", "{\"v\":1}", 7);
    claude_item_store_put(s, "b", "{\"v\":2}", 7);
    claude_item_store_put(s, "c", "{\"v\":3}", 7); /* 21 bytes: a goes */
    char *a = claude_item_store_get(s, "a"), *c = claude_item_store_get(s, "c");
    assert_null(a);
    assert_string_equal(c, "{\"v\":3}");
    free(c);
    claude_item_store_put(s, "b", "{\"v\":4}", 7);
    claude_item_store_put(s, "d", "{\"v\":5}", 7);
    char *b = claude_item_store_get(s, "b");
    assert_string_equal(b, "{\"v\":4}");
    free(b);
    claude_item_store_put(s, "huge", "0123456789012345678901234", 25); /* larger than the store: not kept */
    assert_null(claude_item_store_get(s, "huge"));
    claude_item_store_free(s);
}

/* Deltas read without a tree give the same events, byte for byte. */
static void picked_deltas_give_the_same_events(void **state)
{
    (void)state;
    static const char *const names[] = {"text.sse",     "tool_use.sse", "parallel_tools.sse",
                                        "thinking.sse", "error.sse",    "json_tool.sse"};
    claude_request_info info = {.stream = 1, .json_tool = 1, .json_tool_name = "json_response"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        picker *k = picker_new();
        claude_stream_state a, b;
        char *want = transcript_text(names[i], &info, NULL, NULL, &a);
        char *got = transcript_text(names[i], &info, NULL, k, &b);
        print_message("%s: %u picked\n", names[i], k->picked);
        assert_true(k->picked > 0);
        assert_true(strlen(want) > 0);
        assert_string_equal(got, want);
        assert_int_equal(b, a);
        free(want);
        free(got);
        picker_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_items_become_messages),
        cmocka_unit_test(request_refusals),
        cmocka_unit_test(chat_errors_name_responses_fields),
        cmocka_unit_test(message_becomes_response),
        cmocka_unit_test(not_a_message_is_502),
        cmocka_unit_test(text_stream),
        cmocka_unit_test(tool_stream),
        cmocka_unit_test(thinking_is_reasoning),
        cmocka_unit_test(reasoning_goes_back_as_thinking),
        cmocka_unit_test(json_tool_is_text),
        cmocka_unit_test(error_event_ends_the_stream),
        cmocka_unit_test(broken_and_cut_streams),
        cmocka_unit_test(kept_text_is_bounded),
        cmocka_unit_test(references_resolve_to_kept_items),
        cmocka_unit_test(store_is_bounded),
        cmocka_unit_test(picked_deltas_give_the_same_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
