/*
 * libFuzzer target: any bytes as an OpenAI chat request. The translation
 * must either write an Anthropic request (one JSON object, of the length it
 * reports, with a model, messages and max_tokens) or give a 400, with
 * nothing leaked.
 * The same bytes as a Responses request must give the Chat Completions
 * request it asks for, which then translates the same way, or a 400.
 * The JSON printer is checked on the way: whatever cJSON parsed prints as
 * JSON cJSON parses again, and printing that gives the same text (numbers
 * and strings survive the round trip exactly).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "responses.h"
#include "translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void print_round_trip(const cJSON *tree)
{
    size_t len = 0, len2 = 0;
    char *text = prism_json_print(tree, &len);
    if (text == NULL || strlen(text) != len)
        __builtin_trap();
    cJSON *again = cJSON_ParseWithLength(text, len);
    char *text2 = again ? prism_json_print(again, &len2) : NULL;
    if (text2 == NULL || len2 != len || memcmp(text, text2, len) != 0)
        __builtin_trap();
    free(text);
    free(text2);
    cJSON_Delete(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *in = cJSON_ParseWithLength((const char *)data, size);
    if (in == NULL)
        return 0;
    print_round_trip(in);
    /* Small budgets so the max_tokens arithmetic is reached often. */
    const claude_options opt = {.default_max_tokens = 1000,
                                .thinking_budget_low = 1024,
                                .thinking_budget_medium = 2048,
                                .thinking_budget_high = 4096};
    claude_request_info info;
    claude_error err;
    size_t len = 0;
    char *body = claude_request_from_openai(in, &opt, &info, &len, &err);
    if (body) {
        cJSON *out = cJSON_ParseWithOpts(body, NULL, 1);
        if (err.status != 0 || strlen(body) != len || !cJSON_IsObject(out) ||
            !cJSON_IsString(prism_json_get(out, "model")) || !cJSON_IsArray(prism_json_get(out, "messages")) ||
            !cJSON_IsNumber(prism_json_get(out, "max_tokens")))
            __builtin_trap();
        print_round_trip(out); /* the upstream body the provider would send */
        cJSON_Delete(out);
    } else if (err.status != 400 || err.message[0] == '\0' || info.json_tool || len != 0) {
        __builtin_trap();
    }
    free(body);
    claude_error rerr;
    claude_rsp_origins origins = {0};
    cJSON *chat = claude_chat_from_responses(in, NULL, NULL, &origins, &rerr);
    if (chat == NULL && (rerr.status != 400 || rerr.message[0] == '\0'))
        __builtin_trap();
    if (chat != NULL) {
        const cJSON *messages = prism_json_get(chat, "messages");
        if (rerr.status != 0 || !cJSON_IsArray(messages) || origins.n != (size_t)cJSON_GetArraySize(messages))
            __builtin_trap();
        print_round_trip(chat);
        char *again = claude_request_from_openai(chat, &opt, &info, &len, &err);
        if (again == NULL && err.status != 400)
            __builtin_trap();
        if (again == NULL) { /* named as the Responses request has it */
            claude_rsp_error_param(&origins, &err);
            if (strncmp(err.param, "messages", 8) == 0 || strstr(err.param, ".function") != NULL ||
                strncmp(err.param, "response_format", 15) == 0 || err.message[0] == '\0')
                __builtin_trap();
        }
        free(again);
        cJSON_Delete(chat);
    }
    free(origins.of);
    cJSON_Delete(in);
    return 0;
}
