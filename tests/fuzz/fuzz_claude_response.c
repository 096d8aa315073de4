/*
 * libFuzzer target: any bytes as an Anthropic answer. The body goes through
 * the message translation (as parsed JSON) and the error translation (as raw
 * bytes): a chat.completion or a 502, a well-formed OpenAI error, no leaks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "responses.h"
#include "translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const uint8_t *data, size_t size)
{
    cJSON *in = cJSON_ParseWithLength((const char *)data, size);
    if (in == NULL)
        return;
    /* Half the inputs as if response_format had forced the json tool. */
    claude_request_info info = {.json_tool = (int)(size & 1)};
    strcpy(info.json_tool_name, "json_response");
    claude_error err;
    claude_usage counts;
    size_t len = 0;
    char *text = claude_response_to_openai(in, &info, 1750000000L, &counts, &len, &err);
    if (text == NULL && err.status != 502)
        __builtin_trap();
    /* The text is one JSON object, of the length reported, whose usage
     * holds the counts reported. */
    cJSON *out = text ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;
    const cJSON *prompt =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "usage"), "prompt_tokens");
    if (text != NULL && (strlen(text) != len || !cJSON_IsObject(out) || !cJSON_IsNumber(prompt) ||
                         prompt->valuedouble != (double)counts.prompt))
        __builtin_trap();
    free(text);
    cJSON_Delete(out);
    /* The same message as a Response: one object whose usage holds the
     * counts, echoing a request that is the input itself. */
    text = claude_response_to_responses(in, in, &info, 1750000000L, &counts, &len, &err, NULL, NULL);
    if (text == NULL && err.status != 502)
        __builtin_trap();
    out = text ? cJSON_ParseWithOpts(text, NULL, 1) : NULL;
    const cJSON *input =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "usage"), "input_tokens");
    if (text != NULL && (strlen(text) != len || !cJSON_IsObject(out) || !cJSON_IsNumber(input) ||
                         input->valuedouble != (double)counts.prompt))
        __builtin_trap();
    free(text);
    cJSON_Delete(out);
    cJSON *usage = claude_usage_to_openai(cJSON_GetObjectItemCaseSensitive(in, "usage"));
    if (usage == NULL)
        __builtin_trap();
    cJSON_Delete(usage);
    cJSON_Delete(in);
}

static void check_error(const uint8_t *data, size_t size)
{
    int upstream = 200 + (int)(size % 400); /* any status, sane or not */
    char *json = NULL;
    int status = claude_error_to_openai(upstream, (const char *)data, size, &json);
    cJSON *body = json ? cJSON_Parse(json) : NULL;
    if (status < 400 || status > 599 || body == NULL ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "error"), "message")))
        __builtin_trap();
    cJSON_Delete(body);
    cJSON_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_message(data, size);
    check_error(data, size);
    return 0;
}
