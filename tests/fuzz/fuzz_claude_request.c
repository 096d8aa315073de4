/*
 * libFuzzer target: any bytes as an OpenAI chat request. The translation
 * must either produce an Anthropic request or a 400, with nothing leaked.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *in = cJSON_ParseWithLength((const char *)data, size);
    if (in == NULL)
        return 0;
    /* Small budgets so the max_tokens arithmetic is reached often. */
    const claude_options opt = {.default_max_tokens = 1000,
                                .thinking_budget_low = 1024,
                                .thinking_budget_medium = 2048,
                                .thinking_budget_high = 4096};
    claude_request_info info;
    claude_error err;
    cJSON *out = claude_request_from_openai(in, &opt, &info, &err);
    if (out) {
        if (err.status != 0)
            __builtin_trap();
        char *text = cJSON_PrintUnformatted(out); /* the upstream body the provider would send */
        cJSON_free(text);
    } else if (err.status != 400 || err.message[0] == '\0' || info.json_tool) {
        __builtin_trap();
    }
    cJSON_Delete(out);
    cJSON_Delete(in);
    return 0;
}
