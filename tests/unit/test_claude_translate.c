/*
 * claude_provider's translation layer: OpenAI request -> Anthropic request,
 * Anthropic message -> chat.completion, Anthropic errors -> OpenAI errors.
 * Fixtures in data/claude follow the formats the providers document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "translate.h"

#define CREATED 1750000000L

/* Sonnet and a short user turn; X adds top-level fields. */
#define REQ(X) "{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'Hi'}]" X "}"

static const claude_options OPTS = {
    .default_max_tokens = 4096,
    .thinking_budget_low = 1024,
    .thinking_budget_medium = 4096,
    .thinking_budget_high = 16384,
};

/* ---- helpers ---- */

/* Test JSON is written with ' for " so it stays readable in C. */
static cJSON *parse_quoted(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *json = cJSON_Parse(s);
    if (json == NULL)
        fail_msg("test JSON does not parse: %s", s);
    free(s);
    return json;
}

static cJSON *fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/claude/%s", PRISM_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    cJSON *json = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (json == NULL)
        fail_msg("%s does not parse", path);
    return json;
}

static void assert_same_json(const cJSON *got, const cJSON *want)
{
    if (cJSON_Compare(got, want, 1))
        return;
    char *g = cJSON_Print(got), *w = cJSON_Print(want);
    print_error("got:\n%s\nwant:\n%s\n", g ? g : "(null)", w ? w : "(null)");
    cJSON_free(g);
    cJSON_free(w);
    fail();
}

static void assert_json(const cJSON *got, const char *quoted)
{
    cJSON *want = parse_quoted(quoted);
    assert_same_json(got, want);
    cJSON_Delete(want);
}

/* "messages/2/content/0/type" -> that node, or NULL. */
static const cJSON *at(const cJSON *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *node = root;
    for (char *save = NULL, *key = strtok_r(buf, "/", &save); key && node; key = strtok_r(NULL, "/", &save))
        node = cJSON_IsArray(node) ? cJSON_GetArrayItem(node, atoi(key)) : cJSON_GetObjectItemCaseSensitive(node, key);
    return node;
}

static void assert_str_at(const cJSON *root, const char *path, const char *want)
{
    const cJSON *node = at(root, path);
    if (!cJSON_IsString(node))
        fail_msg("%s is not a string", path);
    assert_string_equal(node->valuestring, want);
}

static void assert_num_at(const cJSON *root, const char *path, double want)
{
    const cJSON *node = at(root, path);
    if (!cJSON_IsNumber(node))
        fail_msg("%s is not a number", path);
    assert_true(node->valuedouble == want);
}

/* claude_request_from_openai's body, read back as a tree (NULL when it
 * refused); the body must be one JSON value of the length it reports. */
static cJSON *request_tree(const cJSON *in, const claude_options *opts, claude_request_info *info, claude_error *err)
{
    size_t len = 0;
    char *text = claude_request_from_openai(in, opts, info, &len, err);
    if (text == NULL) {
        assert_int_equal(len, 0);
        return NULL;
    }
    assert_int_equal(strlen(text), len);
    assert_int_equal(err->status, 0);
    cJSON *tree = cJSON_ParseWithOpts(text, NULL, 1);
    if (tree == NULL)
        fail_msg("not JSON: %s", text);
    free(text);
    return tree;
}

static cJSON *translate(const char *quoted, claude_request_info *info)
{
    cJSON *in = parse_quoted(quoted);
    claude_request_info local;
    claude_error err;
    cJSON *out = request_tree(in, &OPTS, info ? info : &local, &err);
    if (out == NULL)
        fail_msg("refused: %d %s %s %s", err.status, err.code, err.param, err.message);
    cJSON_Delete(in);
    return out;
}

static void assert_refused(const char *quoted, const char *param, const char *code)
{
    cJSON *in = parse_quoted(quoted);
    claude_request_info info;
    claude_error err;
    cJSON *out = request_tree(in, &OPTS, &info, &err);
    if (out) {
        char *s = cJSON_PrintUnformatted(out);
        print_error("accepted as %s\n", s);
        cJSON_free(s);
        cJSON_Delete(out);
        cJSON_Delete(in);
        fail();
    }
    cJSON_Delete(in);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, param);
    assert_string_equal(err.code, code);
    assert_true(strlen(err.message) > 0);
}

static void translates_fixture(const char *in_name, const char *want_name, claude_request_info *info)
{
    cJSON *in = fixture(in_name), *want = fixture(want_name);
    claude_error err;
    cJSON *out = request_tree(in, &OPTS, info, &err);
    if (out == NULL)
        fail_msg("refused: %s %s", err.param, err.message);
    assert_same_json(out, want);
    cJSON_Delete(out);
    cJSON_Delete(want);
    cJSON_Delete(in);
}

/* ---- request: messages ---- */

static void conversation_fixture(void **state)
{
    (void)state;
    claude_request_info info;
    translates_fixture("conversation.openai.json", "conversation.anthropic.json", &info);
    assert_int_equal(info.stream, 0);
    assert_int_equal(info.json_tool, 0);
}

static void system_and_developer_become_system_blocks(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-3-5-haiku-latest','messages':["
                           "{'role':'system','content':'Be brief.'},"
                           "{'role':'user','content':'Hi'},"
                           "{'role':'developer','content':[{'type':'text','text':'Cite sources.',"
                           "'cache_control':{'type':'ephemeral'}},{'type':'text','text':''}]},"
                           "{'role':'system','content':' \\n '}]}",
                           NULL);
    assert_json(cJSON_GetObjectItemCaseSensitive(out, "system"),
                "[{'type':'text','text':'Be brief.'},"
                "{'type':'text','text':'Cite sources.','cache_control':{'type':'ephemeral'}}]");
    assert_json(cJSON_GetObjectItemCaseSensitive(out, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'Hi'}]}]");
    cJSON_Delete(out);

    out = translate(REQ(""), NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(out, "system"));
    cJSON_Delete(out);
}

static void consecutive_roles_merge(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':["
                           "{'role':'user','content':'One'},{'role':'user','content':'Two'},"
                           "{'role':'assistant','content':'A'},{'role':'assistant','content':'B'},"
                           "{'role':'user','content':'Three'},{'role':'assistant','content':'   '},"
                           "{'role':'user','content':'Four'}]}",
                           NULL);
    assert_json(cJSON_GetObjectItemCaseSensitive(out, "messages"),
                "[{'role':'user','content':[{'type':'text','text':'One'},{'type':'text','text':'Two'}]},"
                "{'role':'assistant','content':[{'type':'text','text':'A'},{'type':'text','text':'B'}]},"
                "{'role':'user','content':[{'type':'text','text':'Three'},{'type':'text','text':'Four'}]}]");
    cJSON_Delete(out);
}

/* A conversation longer than the notes kept without an allocation: turns
 * of a tool loop, with system messages between them and blank messages of
 * either side inside an assistant turn. Each tool_use must carry its own call's arguments, which
 * the translation parses first and writes later, in another order of walk. */
static void long_tool_loop_keeps_each_calls_arguments(void **state)
{
    (void)state;
    enum { ROUNDS = 40 };
    cJSON *in = cJSON_Parse("{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}");
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(in, "messages");
    for (int i = 0; i < ROUNDS; i++) {
        char text[640];
        snprintf(text, sizeof(text),
                 "[{\"role\":\"user\",\"content\":\"question %d\"},"
                 "{\"role\":\"system\",\"content\":\"rule %d\"},"
                 "{\"role\":\"assistant\",\"content\":\"looking %d\"},{\"role\":\"user\",\"content\":\"\"},"
                 "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_%d\","
                 "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"i\\\": %d}\"}}]},"
                 "{\"role\":\"assistant\",\"content\":\" \"},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"call_%d\",\"content\":\"result %d\"}]",
                 i, i, i, i, i, i, i);
        cJSON *round = cJSON_Parse(text), *m;
        assert_non_null(round);
        while ((m = round->child) != NULL)
            cJSON_AddItemToArray(msgs, cJSON_DetachItemViaPointer(round, m));
        cJSON_Delete(round);
    }
    claude_request_info info;
    claude_error err;
    cJSON *out = request_tree(in, &OPTS, &info, &err);
    assert_non_null(out);
    const cJSON *system = at(out, "system"), *turns = at(out, "messages");
    assert_int_equal(cJSON_GetArraySize(system), ROUNDS);
    /* The last round's tool result is a user turn of its own. */
    assert_int_equal(cJSON_GetArraySize(turns), 2 * ROUNDS + 1);
    assert_json(cJSON_GetArrayItem(turns, 2 * ROUNDS),
                "{'role':'user','content':[{'type':'tool_result','tool_use_id':'call_39','content':'result 39'}]}");
    for (int i = 0; i < ROUNDS; i++) {
        char want[256], path[64];
        snprintf(path, sizeof(path), "%d/text", i);
        snprintf(want, sizeof(want), "rule %d", i);
        assert_string_equal(at(system, path)->valuestring, want);
        /* The user turn: the previous round's tool result first, then the question. */
        const cJSON *user = at(cJSON_GetArrayItem(turns, 2 * i), "content");
        assert_int_equal(cJSON_GetArraySize(user), i == 0 ? 1 : 2);
        if (i > 0) {
            snprintf(want, sizeof(want), "{'type':'tool_result','tool_use_id':'call_%d','content':'result %d'}", i - 1,
                     i - 1);
            assert_json(user->child, want);
        }
        const cJSON *asst = cJSON_GetArrayItem(turns, 2 * i + 1);
        snprintf(want, sizeof(want),
                 "{'role':'assistant','content':[{'type':'text','text':'looking %d'},"
                 "{'type':'tool_use','id':'call_%d','name':'f','input':{'i':%d}}]}",
                 i, i, i);
        assert_json(asst, want);
    }
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void tool_results_lead_the_merged_user_turn(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':["
                           "{'role':'user','content':'Weather?'},"
                           "{'role':'assistant','tool_calls':[{'id':'toolu_1','type':'function',"
                           "'function':{'name':'get_weather','arguments':'{}'}}]},"
                           "{'role':'user','content':'Also, hurry.'},"
                           "{'role':'tool','tool_call_id':'toolu_1','content':'Sunny'}]}",
                           NULL);
    assert_json(at(out, "messages/2"),
                "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1','content':'Sunny'},"
                "{'type':'text','text':'Also, hurry.'}]}");
    assert_json(at(out, "messages/1/content"), "[{'type':'tool_use','id':'toolu_1','name':'get_weather','input':{}}]");
    cJSON_Delete(out);
}

static void empty_text_and_empty_messages_are_dropped(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':["
                           "{'role':'user','content':[{'type':'text','text':''},{'type':'text','text':'Hi'}]},"
                           "{'role':'assistant','content':''},{'role':'assistant','content':[]},"
                           "{'role':'user','content':''},{'role':'tool','tool_call_id':'toolu_9','content':' '}]}",
                           NULL);
    assert_json(cJSON_GetObjectItemCaseSensitive(out, "messages"),
                "[{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_9'},"
                "{'type':'text','text':'Hi'}]}]");
    cJSON_Delete(out);

    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'system','content':'Only me'},"
                   "{'role':'user','content':''}]}",
                   "messages", "invalid_value");
}

static void names_on_messages_are_dropped(void **state)
{
    (void)state;
    cJSON *out = translate(
        "{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','name':'bob','content':'Hi'}]}", NULL);
    assert_json(at(out, "messages/0"), "{'role':'user','content':[{'type':'text','text':'Hi'}]}");
    cJSON_Delete(out);
}

/* ---- request: content parts ---- */

static void images_documents_fixture(void **state)
{
    (void)state;
    claude_request_info info;
    translates_fixture("multimodal.openai.json", "multimodal.anthropic.json", &info);
}

static void data_url_image_becomes_base64_block(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                           "{'type':'image_url','image_url':{'url':'data:image/jpeg;base64,/9j/4AAQSkZJRg=='}}]}]}",
                           NULL);
    assert_json(at(out, "messages/0/content/0"),
                "{'type':'image','source':{'type':'base64','media_type':'image/jpeg','data':'/9j/4AAQSkZJRg=='}}");
    cJSON_Delete(out);
}

static void http_url_image_becomes_url_block(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                           "{'type':'image_url','image_url':{'url':'http://example.com/cat.gif'}}]}]}",
                           NULL);
    assert_json(at(out, "messages/0/content/0"),
                "{'type':'image','source':{'type':'url','url':'http://example.com/cat.gif'}}");
    cJSON_Delete(out);
}

static void bad_image_urls_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "ftp://example.com/cat.png", "data:image/png,iVBORw0KGgo=", "data:;base64,iVBORw0KGgo=",
        "data:image/png;base64,",    "file:///etc/passwd",          "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req),
                 "{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                 "{'type':'text','text':'Look'},{'type':'image_url','image_url':{'url':'%s'}}]}]}",
                 bad[i]);
        assert_refused(req, "messages[0].content[1].image_url", "invalid_value");
    }
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                   "{'type':'image_url','image_url':'https://example.com/a.png'}]}]}",
                   "messages[0].content[0].image_url", "invalid_value");
}

static void unsupported_parts_are_refused(void **state)
{
    (void)state;
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                   "{'type':'input_audio','input_audio':{'data':'UklGRg==','format':'wav'}}]}]}",
                   "messages[0].content[0].type", "unsupported_content");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                   "{'type':'text','text':'a'},{'type':'video_url','video_url':{'url':'https://x/v.mp4'}}]}]}",
                   "messages[0].content[1].type", "invalid_value");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'system','content':["
                   "{'type':'image_url','image_url':{'url':'https://x/a.png'}}]},{'role':'user','content':'Hi'}]}",
                   "messages[0].content[0].type", "unsupported_content");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                   "{'type':'file','file':{'file_id':'file-abc123'}}]}]}",
                   "messages[0].content[0].file", "unsupported_content");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                   "{'type':'file','file':{'file_data':'data:text/csv;base64,YSxi'}}]}]}",
                   "messages[0].content[0].file.file_data", "unsupported_content");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':[{'text':'x'}]}]}",
                   "messages[0].content[0]", "invalid_type");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':[{'type':'text'}]}]}",
                   "messages[0].content[0].text", "invalid_type");
}

/* ---- request: assistant and tool messages ---- */

static void tool_call_arguments(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'Go'},"
                           "{'role':'assistant','content':null,'tool_calls':["
                           "{'id':'toolu_a','type':'function','function':{'name':'f','arguments':''}},"
                           "{'id':'toolu_b','function':{'name':'g'}},"
                           "{'id':'toolu_c','type':'function','function':{'name':'h',"
                           "'arguments':'{\\'q\\': [1, 2.5, true], \\'o\\': {\\'k\\': null}}'}}]}]}",
                           NULL);
    assert_json(at(out, "messages/1/content"),
                "[{'type':'tool_use','id':'toolu_a','name':'f','input':{}},"
                "{'type':'tool_use','id':'toolu_b','name':'g','input':{}},"
                "{'type':'tool_use','id':'toolu_c','name':'h','input':{'q':[1,2.5,true],'o':{'k':null}}}]");
    cJSON_Delete(out);

    /* truncated, an array, a number, trailing garbage (twice) */
    const char *quoted_bad[] = {"'{\\'a\\':'", "'[1,2]'", "'42'", "'{} trailing'", "'{\\'a\\':1} x'"};
    for (size_t i = 0; i < sizeof(quoted_bad) / sizeof(quoted_bad[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req),
                 "{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'Go'},"
                 "{'role':'assistant','content':'ok'},{'role':'assistant','tool_calls':["
                 "{'id':'toolu_a','type':'function','function':{'name':'f','arguments':'{}'}},"
                 "{'id':'toolu_b','type':'function','function':{'name':'g','arguments':%s}}]}]}",
                 quoted_bad[i]);
        assert_refused(req, "messages[2].tool_calls[1].function.arguments", "invalid_tool_arguments");
    }
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'assistant','tool_calls':["
                   "{'id':'toolu_a','type':'function','function':{'name':'f','arguments':{'a':1}}}]}]}",
                   "messages[0].tool_calls[0].function.arguments", "invalid_tool_arguments");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'assistant','tool_calls':["
                   "{'type':'function','function':{'name':'f','arguments':'{}'}}]}]}",
                   "messages[0].tool_calls[0].id", "invalid_type");
}

static void thinking_blocks_are_sent_back_first(void **state)
{
    (void)state;
    cJSON *out = translate("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'Go'},"
                           "{'role':'assistant','content':'Checking.','refusal':'I cannot do part of that.',"
                           "'tool_calls':[{'id':'toolu_1','type':'function','function':{'name':'f','arguments':'{}'}}],"
                           "'thinking_blocks':[{'type':'thinking','thinking':'Plan.','signature':'EqQBCgIYAh=='},"
                           "{'type':'redacted_thinking','data':'EmwKAhgBEgy3va3p'}]}]}",
                           NULL);
    assert_json(at(out, "messages/1/content"),
                "[{'type':'thinking','thinking':'Plan.','signature':'EqQBCgIYAh=='},"
                "{'type':'redacted_thinking','data':'EmwKAhgBEgy3va3p'},"
                "{'type':'text','text':'Checking.'},{'type':'text','text':'I cannot do part of that.'},"
                "{'type':'tool_use','id':'toolu_1','name':'f','input':{}}]");
    cJSON_Delete(out);
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'assistant','content':'x',"
                   "'thinking_blocks':[{'type':'text','text':'sneaky'}]}]}",
                   "messages[0].thinking_blocks[0]", "invalid_value");
}

static void tool_messages(void **state)
{
    (void)state;
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'Go'},"
                   "{'role':'tool','content':'42'}]}",
                   "messages[1].tool_call_id", "missing_required_parameter");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'tool','tool_call_id':'t',"
                   "'content':[{'type':'image_url','image_url':{'url':'https://x/a.png'}}]}]}",
                   "messages[0].content[0].type", "unsupported_content");
}

static void roles_and_shapes_are_validated(void **state)
{
    (void)state;
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'function','name':'f','content':'1'}]}",
                   "messages[0].role", "unsupported_parameter");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'robot','content':'1'}]}",
                   "messages[0].role", "invalid_value");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':'a'},42]}", "messages[1]",
                   "invalid_type");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':7}]}",
                   "messages[0].content", "invalid_type");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[{'role':'user'}]}", "messages[0].content",
                   "missing_required_parameter");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':[]}", "messages", "invalid_value");
    assert_refused("{'model':'claude-sonnet-4-20250514','messages':{}}", "messages", "invalid_value");
    assert_refused("{'messages':[{'role':'user','content':'a'}]}", "model", "missing_required_parameter");

    cJSON *arr = cJSON_CreateArray();
    claude_request_info info;
    claude_error err;
    assert_null(request_tree(arr, &OPTS, &info, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "");
    cJSON_Delete(arr);
}

/* ---- request: parameters ---- */

static void tools_fixture_and_dropped_parameters(void **state)
{
    (void)state;
    claude_request_info info;
    translates_fixture("tools.openai.json", "tools.anthropic.json", &info);
    assert_int_equal(info.stream, 1);
    assert_int_equal(info.include_usage, 1);
}

static void max_tokens_precedence_and_default(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'max_tokens':100,'max_completion_tokens':200"), NULL);
    assert_num_at(out, "max_tokens", 200);
    cJSON_Delete(out);
    out = translate(REQ(",'max_tokens':100"), NULL);
    assert_num_at(out, "max_tokens", 100);
    cJSON_Delete(out);
    out = translate(REQ(",'max_tokens':100,'max_completion_tokens':null"), NULL);
    assert_num_at(out, "max_tokens", 100);
    cJSON_Delete(out);

    claude_options opts = {.default_max_tokens = 8192};
    cJSON *in = parse_quoted(REQ(""));
    claude_request_info info;
    claude_error err;
    out = request_tree(in, &opts, &info, &err);
    assert_num_at(out, "max_tokens", 8192);
    cJSON_Delete(out);
    out = request_tree(in, NULL, &info, &err);
    assert_num_at(out, "max_tokens", 4096);
    cJSON_Delete(out);
    cJSON_Delete(in);

    assert_refused(REQ(",'max_tokens':0"), "max_tokens", "invalid_value");
    assert_refused(REQ(",'max_tokens':-5"), "max_tokens", "invalid_value");
    assert_refused(REQ(",'max_tokens':1.5"), "max_tokens", "invalid_value");
    assert_refused(REQ(",'max_tokens':'100'"), "max_tokens", "invalid_value");
    assert_refused(REQ(",'max_tokens':100,'max_completion_tokens':0"), "max_completion_tokens", "invalid_value");
}

static void sampling_parameters(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'temperature':1.6,'top_p':0.9,'top_k':40"), NULL);
    assert_num_at(out, "temperature", 1.0);
    assert_num_at(out, "top_p", 0.9);
    assert_num_at(out, "top_k", 40);
    cJSON_Delete(out);
    out = translate(REQ(",'temperature':0.25"), NULL);
    assert_num_at(out, "temperature", 0.25);
    cJSON_Delete(out);
    assert_refused(REQ(",'temperature':'hot'"), "temperature", "invalid_type");
}

static void stop_sequences(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'stop':'END'"), NULL);
    assert_json(at(out, "stop_sequences"), "['END']");
    cJSON_Delete(out);
    out = translate(REQ(",'stop':['###',' ','\\t\\n','','Observation:']"), NULL);
    assert_json(at(out, "stop_sequences"), "['###','Observation:']");
    cJSON_Delete(out);
    out = translate(REQ(",'stop':['  ','']"), NULL);
    assert_null(at(out, "stop_sequences"));
    cJSON_Delete(out);
    out = translate(REQ(",'stop':' '"), NULL);
    assert_null(at(out, "stop_sequences"));
    cJSON_Delete(out);
    assert_refused(REQ(",'stop':['a',3]"), "stop[1]", "invalid_type");
    assert_refused(REQ(",'stop':3"), "stop", "invalid_type");
}

static void user_becomes_metadata_user_id(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'user':'user-123','metadata':{'session':'s1'}"), NULL);
    assert_json(at(out, "metadata"), "{'user_id':'user-123'}");
    cJSON_Delete(out);
    assert_refused(REQ(",'user':7"), "user", "invalid_type");
}

static void n_above_one_is_refused(void **state)
{
    (void)state;
    assert_refused(REQ(",'n':2"), "n", "unsupported_parameter");
    assert_refused(REQ(",'n':0"), "n", "invalid_value");
    cJSON *out = translate(REQ(",'n':1"), NULL);
    assert_null(at(out, "n"));
    cJSON_Delete(out);
}

static void dropped_parameters_and_audio(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'frequency_penalty':1,'presence_penalty':1,'logit_bias':{'1':2},'seed':3,"
                               "'logprobs':true,'top_logprobs':2,'service_tier':'auto','store':true,"
                               "'prediction':{'type':'content','content':'x'},'modalities':['text'],"
                               "'audio':{'voice':'alloy','format':'mp3'},'web_search_options':{},"
                               "'parallel_tool_calls':true"),
                           NULL);
    assert_json(out, "{'model':'claude-sonnet-4-20250514','messages':[{'role':'user','content':["
                     "{'type':'text','text':'Hi'}]}],'max_tokens':4096}");
    cJSON_Delete(out);
    assert_refused(REQ(",'modalities':['text','audio']"), "modalities", "unsupported_parameter");
}

static void stream_flags(void **state)
{
    (void)state;
    claude_request_info info;
    cJSON *out = translate(REQ(",'stream':true"), &info);
    assert_true(cJSON_IsTrue(at(out, "stream")));
    assert_int_equal(info.stream, 1);
    assert_int_equal(info.include_usage, 0);
    cJSON_Delete(out);
    out = translate(REQ(",'stream':false,'stream_options':{'include_usage':true}"), &info);
    assert_true(cJSON_IsFalse(at(out, "stream")));
    assert_int_equal(info.stream, 0);
    assert_int_equal(info.include_usage, 1);
    cJSON_Delete(out);
    assert_refused(REQ(",'stream':'yes'"), "stream", "invalid_type");
}

/* ---- request: tools ---- */

static void tools_map_to_input_schema(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'tools':[{'type':'function','function':{'name':'lookup','description':'Find',"
                               "'parameters':{'type':'object','properties':{'q':{'type':'string'}}},"
                               "'strict':true}}]"),
                           NULL);
    assert_json(at(out, "tools"), "[{'name':'lookup','description':'Find','input_schema':{'type':'object',"
                                  "'properties':{'q':{'type':'string'}}}}]");
    assert_null(at(out, "tool_choice"));
    cJSON_Delete(out);
    assert_refused(REQ(",'tools':[{'type':'web_search_preview'}]"), "tools[0].type", "unsupported_parameter");
    assert_refused(REQ(",'tools':[{'type':'function','function':{'name':'a','parameters':[]}}]"),
                   "tools[0].function.parameters", "invalid_type");
    assert_refused(REQ(",'tools':[{'type':'function','function':{}}]"), "tools[0].function.name", "invalid_type");
}

#define TOOLS ",'tools':[{'type':'function','function':{'name':'get_weather'}}]"

static void tool_choice_forms(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {",'tool_choice':'auto'", "{'type':'auto'}"},
        {",'tool_choice':'none'", "{'type':'none'}"},
        {",'tool_choice':'required'", "{'type':'any'}"},
        {",'tool_choice':{'type':'function','function':{'name':'get_weather'}}",
         "{'type':'tool','name':'get_weather'}"},
        {",'parallel_tool_calls':false", "{'type':'auto','disable_parallel_tool_use':true}"},
        {",'tool_choice':'required','parallel_tool_calls':false", "{'type':'any','disable_parallel_tool_use':true}"},
        {",'tool_choice':{'type':'function','function':{'name':'get_weather'}},'parallel_tool_calls':false",
         "{'type':'tool','name':'get_weather','disable_parallel_tool_use':true}"},
        {",'tool_choice':'none','parallel_tool_calls':false", "{'type':'none'}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512];
        snprintf(req, sizeof(req), REQ(TOOLS "%s"), cases[i].extra);
        cJSON *out = translate(req, NULL);
        assert_json(at(out, "tool_choice"), cases[i].want);
        cJSON_Delete(out);
    }
    cJSON *out = translate(REQ(",'tool_choice':'none','parallel_tool_calls':false"), NULL);
    assert_null(at(out, "tool_choice"));
    assert_null(at(out, "tools"));
    cJSON_Delete(out);
    assert_refused(REQ(TOOLS ",'tool_choice':'sometimes'"), "tool_choice", "invalid_value");
    assert_refused(REQ(",'tool_choice':'required'"), "tool_choice", "invalid_value");
    assert_refused(REQ(TOOLS ",'parallel_tool_calls':0"), "parallel_tool_calls", "invalid_type");
}

/* allowed_tools: auto or any, over the listed tools only (the others are not sent). */
static void tool_choice_allowed_tools(void **state)
{
    (void)state;
#define THREE                                                                                                          \
    ",'tools':[{'type':'function','function':{'name':'a'}},{'type':'function','function':{'name':'b'}},"               \
    "{'type':'function','function':{'name':'c'}}]"
    cJSON *out =
        translate(REQ(THREE ",'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'required',"
                            "'tools':[{'type':'function','function':{'name':'c'}},{'type':'function','name':'a'}]}}"),
                  NULL);
    assert_json(at(out, "tool_choice"), "{'type':'any'}");
    assert_int_equal(cJSON_GetArraySize(at(out, "tools")), 2);
    assert_str_at(out, "tools/0/name", "a");
    assert_str_at(out, "tools/1/name", "c");
    cJSON_Delete(out);
    out = translate(REQ(THREE ",'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'auto','tools':["
                              "{'type':'function','function':{'name':'b'}}]}},'parallel_tool_calls':false"),
                    NULL);
    assert_json(at(out, "tool_choice"), "{'type':'auto','disable_parallel_tool_use':true}");
    assert_int_equal(cJSON_GetArraySize(at(out, "tools")), 1);
    assert_str_at(out, "tools/0/name", "b");
    cJSON_Delete(out);
    assert_refused(REQ(THREE ",'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'auto','tools':["
                             "{'type':'function','function':{'name':'zzz'}}]}}"),
                   "tool_choice.allowed_tools.tools", "invalid_value");
    assert_refused(REQ(THREE ",'tool_choice':{'type':'allowed_tools','allowed_tools':{'mode':'sometimes','tools':[]}}"),
                   "tool_choice.allowed_tools", "invalid_value");
    assert_refused(REQ(THREE ",'tool_choice':{'type':'allowed_tools'}"), "tool_choice.allowed_tools", "invalid_value");
#undef THREE
}

static void response_format_json_schema_forces_a_tool(void **state)
{
    (void)state;
    claude_request_info info;
    cJSON *out = translate(REQ(TOOLS ",'tool_choice':'auto','response_format':{'type':'json_schema','json_schema':{"
                                     "'name':'city_weather','strict':true,'schema':{'type':'object','properties':{"
                                     "'city':{'type':'string'}},'required':['city']}}}"),
                           &info);
    assert_json(at(out, "tools/1"), "{'name':'city_weather','description':'Respond with JSON that matches this "
                                    "schema.','input_schema':{'type':'object','properties':{'city':{'type':"
                                    "'string'}},'required':['city']}}");
    assert_json(at(out, "tool_choice"), "{'type':'tool','name':'city_weather'}");
    assert_int_equal(info.json_tool, 1);
    assert_string_equal(info.json_tool_name, "city_weather");
    cJSON_Delete(out);

    out = translate(REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'bad name!'}}"), &info);
    assert_json(at(out, "tools"), "[{'name':'json_response','description':'Respond with JSON that matches this "
                                  "schema.','input_schema':{'type':'object'}}]");
    assert_string_equal(info.json_tool_name, "json_response");
    cJSON_Delete(out);
}

static void response_format_json_object_and_text(void **state)
{
    (void)state;
    claude_request_info info;
    cJSON *out = translate(REQ(",'tool_choice':'required','response_format':{'type':'json_object'}"), &info);
    assert_json(at(out, "tools"), "[{'name':'json_response','description':'Respond with JSON that matches this "
                                  "schema.','input_schema':{'type':'object'}}]");
    assert_json(at(out, "tool_choice"), "{'type':'tool','name':'json_response'}");
    assert_int_equal(info.json_tool, 1);
    assert_string_equal(info.json_tool_name, "json_response");
    cJSON_Delete(out);

    out = translate(REQ(",'response_format':{'type':'text'}"), &info);
    assert_null(at(out, "tools"));
    assert_int_equal(info.json_tool, 0);
    cJSON_Delete(out);
    assert_refused(REQ(",'response_format':{'type':'yaml'}"), "response_format.type", "invalid_value");
    assert_refused(REQ(",'response_format':{'type':'json_schema'}"), "response_format.json_schema", "invalid_type");
    assert_refused(REQ(",'reasoning_effort':'low','response_format':{'type':'json_object'}"), "response_format",
                   "unsupported_parameter");
}

/* ---- request: thinking ---- */

static void reasoning_effort_becomes_thinking(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'reasoning_effort':'medium','max_tokens':1000,'temperature':0.3,'top_k':5,"
                               "'top_p':0.5"),
                           NULL);
    assert_json(at(out, "thinking"), "{'type':'enabled','budget_tokens':4096}");
    assert_num_at(out, "max_tokens", 5096);
    assert_null(at(out, "temperature"));
    assert_null(at(out, "top_k"));
    assert_null(at(out, "top_p"));
    cJSON_Delete(out);

    out = translate(REQ(",'reasoning_effort':'high','max_completion_tokens':32000,'top_p':0.95"), NULL);
    assert_num_at(out, "thinking/budget_tokens", 16384);
    assert_num_at(out, "max_tokens", 32000);
    assert_num_at(out, "top_p", 0.95);
    cJSON_Delete(out);

    out = translate(REQ(",'reasoning_effort':'minimal'"), NULL);
    assert_num_at(out, "thinking/budget_tokens", 1024);
    assert_num_at(out, "max_tokens", 4096);
    cJSON_Delete(out);

    out = translate(REQ(",'reasoning_effort':'low','max_tokens':1024"), NULL);
    assert_num_at(out, "max_tokens", 2048);
    cJSON_Delete(out);

    out = translate(REQ(",'reasoning_effort':'none','temperature':0.5"), NULL);
    assert_null(at(out, "thinking"));
    assert_num_at(out, "temperature", 0.5);
    cJSON_Delete(out);
    assert_refused(REQ(",'reasoning_effort':'extreme'"), "reasoning_effort", "invalid_value");
    assert_refused(REQ(",'reasoning_effort':3"), "reasoning_effort", "invalid_value");
}

/* A tool loop sent back without the signed thinking block: thinking stays off. */
static void reasoning_effort_off_for_tool_turn_without_thinking(void **state)
{
    (void)state;
#define LOOP(ASSISTANT_EXTRA, TAIL)                                                                                    \
    "{'model':'claude-sonnet-4-5','reasoning_effort':'high','messages':[{'role':'user','content':'Time?'},"            \
    "{'role':'assistant','content':null" ASSISTANT_EXTRA ",'tool_calls':[{'id':'toolu_1','type':'function',"           \
    "'function':{'name':'now','arguments':'{}'}}]},{'role':'tool','tool_call_id':'toolu_1','content':'12:00'}" TAIL    \
    "]}"
    cJSON *out = translate(LOOP("", ""), NULL);
    assert_null(at(out, "thinking"));
    assert_num_at(out, "max_tokens", 4096);
    cJSON_Delete(out);

    /* with the turn's thinking block sent back, thinking is on */
    out = translate(LOOP(",'thinking_blocks':[{'type':'thinking','thinking':'t','signature':'sig'}]", ""), NULL);
    assert_num_at(out, "thinking/budget_tokens", 16384);
    assert_str_at(out, "messages/1/content/0/type", "thinking");
    cJSON_Delete(out);

    /* a later assistant turn without tool calls ends the loop: thinking is on */
    out = translate(LOOP("", ",{'role':'assistant','content':'It is noon.'},{'role':'user','content':'Thanks'}"), NULL);
    assert_num_at(out, "thinking/budget_tokens", 16384);
    cJSON_Delete(out);
#undef LOOP
}

static void thinking_budgets_come_from_options(void **state)
{
    (void)state;
    claude_options opts = {.default_max_tokens = 2000, .thinking_budget_medium = 3000};
    cJSON *in = parse_quoted(REQ(",'reasoning_effort':'medium'"));
    claude_request_info info;
    claude_error err;
    cJSON *out = request_tree(in, &opts, &info, &err);
    assert_num_at(out, "thinking/budget_tokens", 3000);
    assert_num_at(out, "max_tokens", 5000);
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void client_thinking_object_passes_through(void **state)
{
    (void)state;
    cJSON *out = translate(REQ(",'thinking':{'type':'enabled','budget_tokens':2000},'reasoning_effort':'high',"
                               "'max_tokens':1500,'temperature':0.2"),
                           NULL);
    assert_json(at(out, "thinking"), "{'type':'enabled','budget_tokens':2000}");
    assert_num_at(out, "max_tokens", 3500);
    assert_null(at(out, "temperature"));
    cJSON_Delete(out);
    out = translate(REQ(",'thinking':{'type':'disabled'},'temperature':0.2"), NULL);
    assert_json(at(out, "thinking"), "{'type':'disabled'}");
    assert_num_at(out, "temperature", 0.2);
    cJSON_Delete(out);
    assert_refused(REQ(",'thinking':true"), "thinking", "invalid_type");
}

/* Every JSON type in every field: a translation or a 400, never a crash
 * (the sanitizers watch this one). */
static void hostile_values_everywhere(void **state)
{
    (void)state;
    const char *values[] = {"null", "true", "0", "-1", "1e999", "'x'", "''", "[]", "[null]", "{}", "[{}]"};
    const char *templates[] = {
        "{'model':%s,'messages':[{'role':'user','content':'Hi'}]}",
        "{'model':'m','messages':%s}",
        "{'model':'m','messages':[%s]}",
        "{'model':'m','messages':[{'role':%s,'content':'Hi'}]}",
        "{'model':'m','messages':[{'role':'user','content':%s}]}",
        "{'model':'m','messages':[{'role':'user','content':[%s]}]}",
        "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url','image_url':%s}]}]}",
        "{'model':'m','messages':[{'role':'user','content':[{'type':'file','file':%s}]}]}",
        "{'model':'m','messages':[{'role':'assistant','tool_calls':%s}]}",
        "{'model':'m','messages':[{'role':'assistant','tool_calls':[{'id':'t','function':%s}]}]}",
        "{'model':'m','messages':[{'role':'assistant','thinking_blocks':%s}]}",
        "{'model':'m','messages':[{'role':'tool','tool_call_id':%s,'content':'x'}]}",
        "{'model':'m','messages':[{'role':'tool','tool_call_id':'t','content':%s}]}",
        REQ(",'tools':%s"),
        REQ(",'tools':[{'type':'function','function':%s}]"),
        REQ(",'tool_choice':%s,'tools':[{'type':'function','function':{'name':'f'}}]"),
        REQ(",'response_format':%s"),
        REQ(",'response_format':{'type':'json_schema','json_schema':%s}"),
        REQ(",'reasoning_effort':%s"),
        REQ(",'thinking':%s"),
        REQ(",'max_tokens':%s"),
        REQ(",'temperature':%s,'top_p':%s"),
        REQ(",'stop':%s"),
        REQ(",'n':%s,'user':%s,'stream':%s"),
        REQ(",'stream_options':%s,'modalities':%s"),
    };
    for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++)
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            char req[1024];
            snprintf(req, sizeof(req), templates[t], values[v], values[v], values[v]);
            cJSON *in = parse_quoted(req);
            claude_request_info info;
            claude_error err;
            cJSON *out = request_tree(in, &OPTS, &info, &err);
            if (out == NULL) {
                assert_int_equal(err.status, 400);
                assert_true(err.message[0] != '\0');
            }
            cJSON_Delete(out);
            cJSON_Delete(in);
        }
}

/* ---- response ---- */

/* claude_response_to_openai's text, read back as a tree (NULL when it
 * refused); the text must be one JSON value of the length it reports, and
 * the usage it reports must be the counts the text holds. */
static cJSON *answer_of(const cJSON *in, const claude_request_info *info, claude_error *err)
{
    size_t len = 0;
    claude_usage usage = {-1, -1, -1, -1};
    char *text = claude_response_to_openai(in, info, CREATED, &usage, &len, err);
    if (text == NULL)
        return NULL;
    assert_int_equal(len, strlen(text));
    const char *end = NULL;
    cJSON *out = cJSON_ParseWithOpts(text, &end, 1);
    if (out == NULL)
        fail_msg("not JSON: %s", text);
    free(text);
    assert_num_at(out, "usage/prompt_tokens", (double)usage.prompt);
    assert_num_at(out, "usage/completion_tokens", (double)usage.completion);
    return out;
}

static cJSON *respond(const char *fixture_name, const claude_request_info *info)
{
    cJSON *in = fixture(fixture_name);
    claude_error err;
    cJSON *out = answer_of(in, info, &err);
    cJSON_Delete(in);
    if (out == NULL)
        fail_msg("refused: %d %s", err.status, err.message);
    return out;
}

static void text_message_fixture(void **state)
{
    (void)state;
    claude_request_info info = {0};
    cJSON *out = respond("message_text.anthropic.json", &info), *want = fixture("message_text.openai.json");
    assert_same_json(out, want);
    cJSON_Delete(want);
    cJSON_Delete(out);
}

static void thinking_text_and_tool_use_fixture(void **state)
{
    (void)state;
    claude_request_info info = {0};
    cJSON *out = respond("message_thinking_tool.anthropic.json", &info);
    cJSON *want = fixture("message_thinking_tool.openai.json");
    assert_same_json(out, want);
    cJSON_Delete(want);
    cJSON_Delete(out);
}

static void json_tool_answer_becomes_content(void **state)
{
    (void)state;
    claude_request_info info = {.json_tool = 1, .json_tool_name = "city_weather"};
    cJSON *out = respond("message_json_tool.anthropic.json", &info);
    assert_json(at(out, "choices/0/message"),
                "{'role':'assistant','content':'{\\'city\\':\\'Paris\\',\\'temperature_c\\':15,"
                "\\'conditions\\':[\\'rain\\',\\'wind\\']}','refusal':null}");
    assert_str_at(out, "choices/0/finish_reason", "stop");
    cJSON_Delete(out);

    /* Without json_tool the same message is an ordinary tool call. */
    claude_request_info plain = {0};
    out = respond("message_json_tool.anthropic.json", &plain);
    assert_str_at(out, "choices/0/finish_reason", "tool_calls");
    assert_str_at(out, "choices/0/message/tool_calls/0/function/name", "city_weather");
    assert_true(cJSON_IsNull(at(out, "choices/0/message/content")));
    cJSON_Delete(out);
}

/* Anthropic allows tool names of 64 characters: a schema name that long is
 * the forced tool's name, and the answer through it is still found. */
static void json_tool_name_of_64_characters(void **state)
{
    (void)state;
    const char *name = "a234567890b234567890c234567890d234567890e234567890f234567890g234";
    assert_int_equal(strlen(name), 64);
    char body[512];
    snprintf(body, sizeof(body),
             REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'%s','schema':{'type':'object'}}}"),
             name);
    claude_request_info info;
    cJSON *out = translate(body, &info);
    assert_str_at(out, "tool_choice/name", name);
    assert_str_at(out, "tools/0/name", name);
    assert_string_equal(info.json_tool_name, name);
    cJSON_Delete(out);

    char answer[512];
    snprintf(answer, sizeof(answer),
             "{'id':'msg_1','type':'message','role':'assistant','model':'claude-sonnet-4-5','content':"
             "[{'type':'tool_use','id':'toolu_1','name':'%s','input':{'ok':true}}],'stop_reason':'tool_use',"
             "'usage':{'input_tokens':1,'output_tokens':2}}",
             name);
    cJSON *in = parse_quoted(answer);
    claude_error err;
    out = answer_of(in, &info, &err);
    assert_str_at(out, "choices/0/message/content", "{\"ok\":true}");
    assert_str_at(out, "choices/0/finish_reason", "stop");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void every_stop_reason(void **state)
{
    (void)state;
    static const struct {
        const char *stop, *finish;
    } cases[] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"pause_turn", "stop"},
        {"max_tokens", "length"},
        {"model_context_window_exceeded", "length"},
        {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
        {"something_new", "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{'id':'msg_1','type':'message','role':'assistant','model':'claude-sonnet-4-20250514',"
                 "'content':[{'type':'text','text':'x'}],'stop_reason':'%s','usage':{'input_tokens':1,"
                 "'output_tokens':1}}",
                 cases[i].stop);
        cJSON *in = parse_quoted(body);
        claude_error err;
        cJSON *out = answer_of(in, NULL, &err);
        assert_str_at(out, "choices/0/finish_reason", cases[i].finish);
        cJSON_Delete(out);
        cJSON_Delete(in);
        assert_string_equal(claude_finish_reason(cases[i].stop, NULL), cases[i].finish);
    }
    claude_request_info json = {.json_tool = 1, .json_tool_name = "json_response"};
    assert_string_equal(claude_finish_reason("tool_use", &json), "stop");
    assert_string_equal(claude_finish_reason(NULL, NULL), "stop");
}

static void usage_with_cache_tokens(void **state)
{
    (void)state;
    cJSON *in = parse_quoted("{'input_tokens':50,'cache_creation_input_tokens':1000,'cache_read_input_tokens':300,"
                             "'output_tokens':20}");
    cJSON *out = claude_usage_to_openai(in);
    assert_json(out, "{'prompt_tokens':1350,'completion_tokens':20,'total_tokens':1370,"
                     "'prompt_tokens_details':{'cached_tokens':300},'cache_creation_input_tokens':1000}");
    cJSON_Delete(out);
    cJSON_Delete(in);

    in = parse_quoted("{'input_tokens':'many','output_tokens':-4,'cache_read_input_tokens':null}");
    out = claude_usage_to_openai(in);
    assert_json(out, "{'prompt_tokens':0,'completion_tokens':0,'total_tokens':0,"
                     "'prompt_tokens_details':{'cached_tokens':0}}");
    cJSON_Delete(out);
    cJSON_Delete(in);
    out = claude_usage_to_openai(NULL);
    assert_num_at(out, "total_tokens", 0);
    cJSON_Delete(out);
}

static void content_edge_cases(void **state)
{
    (void)state;
    cJSON *in = parse_quoted("{'id':'msg_2','type':'message','model':'claude-sonnet-4-20250514','content':["
                             "{'type':'text','text':'Part one. '},{'type':'server_tool_use','id':'srvtoolu_1',"
                             "'name':'web_search','input':{'query':'x'}},{'type':'text','text':'Part two.'}],"
                             "'stop_reason':'end_turn'}");
    claude_error err;
    cJSON *out = answer_of(in, NULL, &err);
    assert_str_at(out, "choices/0/message/content", "Part one. Part two.");
    assert_null(at(out, "choices/0/message/tool_calls"));
    assert_null(at(out, "choices/0/message/reasoning_content"));
    assert_num_at(out, "usage/total_tokens", 0);
    cJSON_Delete(out);
    cJSON_Delete(in);

    in = parse_quoted("{'id':'msg_3','type':'message','model':'claude-sonnet-4-20250514','content':[],"
                      "'stop_reason':'end_turn'}");
    out = answer_of(in, NULL, &err);
    assert_true(cJSON_IsNull(at(out, "choices/0/message/content")));
    cJSON_Delete(out);
    cJSON_Delete(in);
}

/* A tool's input becomes the arguments text with every number as it was:
 * integers past 15 digits, fractions needing 17. */
static void tool_arguments_keep_exact_numbers(void **state)
{
    (void)state;
    cJSON *in = parse_quoted("{'id':'msg_4','type':'message','model':'claude-sonnet-4-5','content':["
                             "{'type':'tool_use','id':'toolu_1','name':'f','input':{'order':4503599627370497,"
                             "'neg':-1234567890123456,'third':0.3333333333333333,'t':0.7}}],"
                             "'stop_reason':'tool_use'}");
    claude_error err;
    cJSON *out = answer_of(in, NULL, &err);
    assert_str_at(out, "choices/0/message/tool_calls/0/function/arguments",
                  "{\"order\":4503599627370497,\"neg\":-1234567890123456,\"third\":0.3333333333333333,\"t\":0.7}");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void malformed_messages_are_502(void **state)
{
    (void)state;
    const char *bad[] = {
        "[]",
        "'message'",
        "{'type':'error','error':{'type':'api_error','message':'Internal server error'}}",
        "{'id':'msg_1','type':'message','content':'Hello'}",
        "{'type':'message','content':[]}",
        "{'id':'msg_1','content':[{'text':'no type'}]}",
        "{'id':'msg_1','content':[{'type':'text','text':7}]}",
        "{'id':'msg_1','content':[{'type':'tool_use','id':'toolu_1'}]}",
        "{'id':'msg_1','content':[{'type':'thinking','signature':'s'}]}",
        "{'id':'msg_1','content':[42]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *in = parse_quoted(bad[i]);
        claude_error err;
        assert_null(answer_of(in, NULL, &err));
        assert_int_equal(err.status, 502);
        assert_string_equal(err.type, "api_error");
        assert_string_equal(err.code, "upstream_protocol_error");
        cJSON_Delete(in);
    }
    claude_error err;
    assert_null(answer_of(NULL, NULL, &err));
    assert_int_equal(err.status, 502);
}

/* ---- errors ---- */

static void assert_error_maps(int upstream, const char *body, int status, const char *type, const char *code,
                              const char *message)
{
    char *json = NULL;
    assert_int_equal(claude_error_to_openai(upstream, body, body ? strlen(body) : 0, &json), status);
    assert_non_null(json);
    cJSON *out = cJSON_Parse(json);
    assert_non_null(out);
    assert_str_at(out, "error/type", type);
    assert_str_at(out, "error/code", code);
    assert_str_at(out, "error/message", message);
    assert_true(cJSON_IsNull(at(out, "error/param")));
    cJSON_Delete(out);
    cJSON_free(json);
}

static void every_error_type(void **state)
{
    (void)state;
    static const struct {
        int upstream;
        const char *anthropic;
        int status;
        const char *type, *code;
    } cases[] = {
        {400, "invalid_request_error", 400, "invalid_request_error", "invalid_request_error"},
        {401, "authentication_error", 401, "invalid_request_error", "invalid_api_key"},
        {403, "permission_error", 403, "permission_error", "permission_error"},
        {404, "not_found_error", 404, "invalid_request_error", "not_found"},
        {413, "request_too_large", 413, "request_too_large", "request_too_large"},
        {429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"},
        {500, "api_error", 500, "api_error", "api_error"},
        {529, "overloaded_error", 503, "api_error", "overloaded"},
        {402, "billing_error", 402, "billing_error", "billing_error"},
        {504, "timeout_error", 504, "timeout_error", "timeout_error"},
        {529, "brand_new_error", 503, "brand_new_error", "brand_new_error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"Boom %zu\"}}",
                 cases[i].anthropic, i);
        char message[32];
        snprintf(message, sizeof(message), "Boom %zu", i);
        assert_error_maps(cases[i].upstream, body, cases[i].status, cases[i].type, cases[i].code, message);
    }
}

static void error_fixtures(void **state)
{
    (void)state;
    cJSON *f = fixture("error_overloaded.anthropic.json");
    char *body = cJSON_PrintUnformatted(f);
    assert_error_maps(529, body, 503, "api_error", "overloaded", "Overloaded");
    cJSON_free(body);
    cJSON_Delete(f);
    f = fixture("error_rate_limit.anthropic.json");
    body = cJSON_PrintUnformatted(f);
    assert_error_maps(429, body, 429, "rate_limit_error", "rate_limit_exceeded",
                      "This request would exceed the rate limit for your organization of 50 requests per minute.");
    cJSON_free(body);
    cJSON_Delete(f);
}

static void odd_error_bodies(void **state)
{
    (void)state;
    assert_error_maps(529, "Overloaded", 503, "api_error", "upstream_error", "Anthropic answered HTTP 529. Overloaded");
    assert_error_maps(502, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>\r\n", 502, "api_error",
                      "upstream_error",
                      "Anthropic answered HTTP 502. <html> <head><title>502 Bad Gateway</title></head> </html>");
    assert_error_maps(404, "", 404, "invalid_request_error", "upstream_error", "Anthropic answered HTTP 404.");
    assert_error_maps(400, NULL, 400, "invalid_request_error", "upstream_error", "Anthropic answered HTTP 400.");
    assert_error_maps(500, "{\"error\":\"nope\"}", 500, "api_error", "upstream_error",
                      "Anthropic answered HTTP 500. {\"error\":\"nope\"}");
    assert_error_maps(200, "{}", 502, "api_error", "upstream_error", "Anthropic answered HTTP 200. {}");
    assert_error_maps(418, "\x01\x02\xff\xfe caf\xc3\xa9", 418, "invalid_request_error", "upstream_error",
                      "Anthropic answered HTTP 418. caf");
    assert_error_maps(400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\"}}", 400,
                      "invalid_request_error", "invalid_request_error", "Anthropic answered HTTP 400.");

    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *json = NULL;
    assert_int_equal(claude_error_to_openai(500, big, strlen(big), &json), 500);
    cJSON *out = cJSON_Parse(json);
    assert_int_equal(strlen(at(out, "error/message")->valuestring), strlen("Anthropic answered HTTP 500. ") + 200);
    cJSON_Delete(out);
    cJSON_free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conversation_fixture),
        cmocka_unit_test(system_and_developer_become_system_blocks),
        cmocka_unit_test(consecutive_roles_merge),
        cmocka_unit_test(long_tool_loop_keeps_each_calls_arguments),
        cmocka_unit_test(tool_results_lead_the_merged_user_turn),
        cmocka_unit_test(empty_text_and_empty_messages_are_dropped),
        cmocka_unit_test(names_on_messages_are_dropped),
        cmocka_unit_test(images_documents_fixture),
        cmocka_unit_test(data_url_image_becomes_base64_block),
        cmocka_unit_test(http_url_image_becomes_url_block),
        cmocka_unit_test(bad_image_urls_are_refused),
        cmocka_unit_test(unsupported_parts_are_refused),
        cmocka_unit_test(tool_call_arguments),
        cmocka_unit_test(thinking_blocks_are_sent_back_first),
        cmocka_unit_test(tool_messages),
        cmocka_unit_test(roles_and_shapes_are_validated),
        cmocka_unit_test(tools_fixture_and_dropped_parameters),
        cmocka_unit_test(max_tokens_precedence_and_default),
        cmocka_unit_test(sampling_parameters),
        cmocka_unit_test(stop_sequences),
        cmocka_unit_test(user_becomes_metadata_user_id),
        cmocka_unit_test(n_above_one_is_refused),
        cmocka_unit_test(dropped_parameters_and_audio),
        cmocka_unit_test(stream_flags),
        cmocka_unit_test(tools_map_to_input_schema),
        cmocka_unit_test(tool_choice_forms),
        cmocka_unit_test(tool_choice_allowed_tools),
        cmocka_unit_test(response_format_json_schema_forces_a_tool),
        cmocka_unit_test(response_format_json_object_and_text),
        cmocka_unit_test(reasoning_effort_becomes_thinking),
        cmocka_unit_test(reasoning_effort_off_for_tool_turn_without_thinking),
        cmocka_unit_test(thinking_budgets_come_from_options),
        cmocka_unit_test(client_thinking_object_passes_through),
        cmocka_unit_test(hostile_values_everywhere),
        cmocka_unit_test(text_message_fixture),
        cmocka_unit_test(thinking_text_and_tool_use_fixture),
        cmocka_unit_test(json_tool_answer_becomes_content),
        cmocka_unit_test(json_tool_name_of_64_characters),
        cmocka_unit_test(every_stop_reason),
        cmocka_unit_test(usage_with_cache_tokens),
        cmocka_unit_test(content_edge_cases),
        cmocka_unit_test(tool_arguments_keep_exact_numbers),
        cmocka_unit_test(malformed_messages_are_502),
        cmocka_unit_test(every_error_type),
        cmocka_unit_test(error_fixtures),
        cmocka_unit_test(odd_error_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
