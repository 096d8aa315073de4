/*
 * echo_provider - a provider that answers without calling anyone.
 *
 * The reply is the last user message, as an OpenAI chat.completion, or, with
 * "stream": true, as chat.completion.chunk events (role, one event per word,
 * finish, usage when stream_options.include_usage asks for it) ending with
 * "data: [DONE]". It is the shape of every provider: read the request from
 * the context, answer in OpenAI's format, list its models.
 *
 * The stream is written with back-pressure: once more than
 * stream_high_water bytes wait for the client, the provider stops, returns
 * PRISM_PENDING, and carries on from the drain callback, so a slow reader
 * never makes it queue a whole long reply in memory. A real provider does
 * the same with its upstream transfer (see openai_provider).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prism/plugin.h"

typedef struct echo {
    char **models;
    size_t model_count;
    size_t high_water;
} echo;

/* What one request answers, in request memory. */
typedef struct reply {
    const char *id;
    const char *model;
    const char *text; /* the echoed message */
    size_t text_len;
    double created;
    long prompt_tokens, completion_tokens;
} reply;

/* ---- the instance ---- */

static void echo_destroy(void *instance)
{
    echo *e = instance;
    if (e == NULL)
        return;
    prism_strings_free(e->models, e->model_count);
    free(e);
}

static void *echo_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    (void)host;
    echo *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    e->high_water = (size_t)prism_conf_int(config, "stream_high_water", 64 * 1024, 1024, 16L << 20);
    if (prism_conf_strings(config, "models", &e->models, &e->model_count, err, errlen) != 0) {
        echo_destroy(e);
        return NULL;
    }
    return e;
}

static void echo_list_models(void *instance, cJSON *data)
{
    const echo *e = instance;
    prism_models_append(data, e->models, e->model_count, "prism-examples");
}

/* ---- reading the request ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whitespace-separated words: the "tokens" of this provider's usage. */
static long count_words(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; i++)
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1])))
            n++;
    return n;
}

/* A message's text: a string, or the "text" parts of a list of content
 * parts, one per line. Request memory; "" when there is none. */
static const char *content_text(prism_ctx *ctx, const cJSON *message)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(message, "content");
    if (cJSON_IsString(content))
        return content->valuestring;
    size_t total = 0;
    for (const cJSON *part = cJSON_IsArray(content) ? content->child : NULL; part != NULL; part = part->next) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(text))
            total += strlen(text->valuestring) + 1;
    }
    char *out = prism_ctx_alloc(ctx, total + 1);
    size_t off = 0;
    for (const cJSON *part = cJSON_IsArray(content) ? content->child : NULL; part != NULL; part = part->next) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(text))
            continue;
        if (off > 0)
            out[off++] = '\n';
        size_t n = strlen(text->valuestring);
        memcpy(out + off, text->valuestring, n);
        off += n;
    }
    out[off] = '\0';
    return out;
}

/* Fills `r` from the request; 0, or -1 after answering with an error. Inside
 * ai_gateway, model_router has already checked the body and the model;
 * standalone (echo_gateway:chat), this is the only check. */
static int read_request(prism_ctx *ctx, const cJSON *body, reply *r)
{
    if (!cJSON_IsObject(body)) {
        prism_respond_error(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                            "We could not parse the JSON body of your request.");
        return -1;
    }
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!cJSON_IsArray(messages)) {
        prism_respond_error(ctx, 400, "invalid_request_error", "missing_required_parameter", "messages",
                            "Missing required parameter: 'messages'.");
        return -1;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    r->model = cJSON_IsString(model) ? model->valuestring : "echo-1";
    r->text = "";
    for (const cJSON *m = messages->child; m != NULL; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const char *text = content_text(ctx, m);
        r->prompt_tokens += count_words(text, strlen(text));
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
            r->text = text;
    }
    r->text_len = strlen(r->text);
    r->completion_tokens = count_words(r->text, r->text_len);
    size_t idlen = strlen(prism_ctx_request_id(ctx)) + sizeof("chatcmpl-echo-");
    char *id = prism_ctx_alloc(ctx, idlen);
    snprintf(id, idlen, "chatcmpl-echo-%s", prism_ctx_request_id(ctx));
    r->id = id;
    r->created = (double)time(NULL);
    return 0;
}

/* ---- building the answer ---- */

static void add_usage(cJSON *root, const reply *r)
{
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)r->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", (double)r->completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)(r->prompt_tokens + r->completion_tokens));
}

/* The fields every chat.completion and chat.completion.chunk starts with. */
static cJSON *envelope(const reply *r, const char *object)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", r->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", r->created);
    cJSON_AddStringToObject(root, "model", r->model);
    return root;
}

static void respond_whole(prism_ctx *ctx, const reply *r)
{
    cJSON *root = envelope(r, "chat.completion");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *message = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(message, "role", "assistant");
    cJSON_AddStringToObject(message, "content", r->text);
    cJSON_AddNullToObject(message, "refusal");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", "stop");
    add_usage(root, r);
    prism_respond_json(ctx, 200, root);
    cJSON_Delete(root);
}

/* ---- streaming ---- */

typedef enum phase {
    PHASE_ROLE,    /* the first chunk: {"role":"assistant","content":""} */
    PHASE_CONTENT, /* one chunk per word, with the whitespace before it */
    PHASE_FINISH,  /* finish_reason "stop" */
    PHASE_USAGE,   /* choices: [] and usage, when include_usage */
    PHASE_DONE,    /* data: [DONE] */
    PHASE_OVER,
} phase;

typedef struct stream {
    prism_ctx *ctx;
    reply r;
    size_t high_water;
    int include_usage;
    size_t pos; /* the next byte of r.text to send */
    phase phase;
    int pumping; /* inside pump(): a drain callback now must not re-enter */
} stream;

/* Sends one SSE event, "data: JSON\n\n", in a single write: each write is
 * handed to the connection as soon as it is idle, so one event in three
 * writes could leave in pieces. Consumes `chunk`. */
static int send_event(stream *s, cJSON *chunk)
{
    char *json = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    if (json == NULL)
        return -1;
    size_t n = strlen(json);
    char *event = malloc(n + 8);
    int rc = -1;
    if (event != NULL) {
        memcpy(event, "data: ", 6);
        memcpy(event + 6, json, n);
        memcpy(event + 6 + n, "\n\n", 2);
        rc = prism_stream_write(s->ctx, event, n + 8);
    }
    free(event);
    cJSON_free(json);
    return rc;
}

/* A chunk with one choice; the caller fills its delta. */
static cJSON *chunk_new(const stream *s, cJSON **delta, const char *finish_reason)
{
    cJSON *root = envelope(&s->r, "chat.completion.chunk");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON_AddNumberToObject(choice, "index", 0);
    *delta = cJSON_AddObjectToObject(choice, "delta");
    cJSON_AddNullToObject(choice, "logprobs");
    if (finish_reason != NULL)
        cJSON_AddStringToObject(choice, "finish_reason", finish_reason);
    else
        cJSON_AddNullToObject(choice, "finish_reason");
    if (s->include_usage)
        cJSON_AddNullToObject(root, "usage"); /* as OpenAI does on every chunk but the last */
    return root;
}

/* The next word of the text, with the whitespace before it, so the deltas
 * add up to the text exactly. */
static int send_word(stream *s)
{
    const char *text = s->r.text;
    size_t end = s->pos;
    while (end < s->r.text_len && is_space(text[end]))
        end++;
    while (end < s->r.text_len && !is_space(text[end]))
        end++;
    size_t n = end - s->pos;
    char *word = malloc(n + 1);
    if (word == NULL)
        return -1;
    memcpy(word, text + s->pos, n);
    word[n] = '\0';
    s->pos = end;
    cJSON *delta = NULL;
    cJSON *chunk = chunk_new(s, &delta, NULL);
    cJSON_AddStringToObject(delta, "content", word);
    free(word);
    return send_event(s, chunk);
}

/* The end of an OpenAI stream: not JSON, the literal [DONE]. */
static int send_done(stream *s)
{
    s->phase = PHASE_OVER;
    return prism_stream_write(s->ctx, "data: [DONE]\n\n", 14);
}

/* Writes the next event and moves to the phase after it. */
static int send_next(stream *s)
{
    cJSON *delta = NULL;
    cJSON *chunk = NULL;
    switch (s->phase) {
    case PHASE_ROLE:
        chunk = chunk_new(s, &delta, NULL);
        cJSON_AddStringToObject(delta, "role", "assistant");
        cJSON_AddStringToObject(delta, "content", "");
        s->phase = PHASE_CONTENT;
        return send_event(s, chunk);
    case PHASE_CONTENT:
        if (s->pos < s->r.text_len)
            return send_word(s);
        s->phase = PHASE_FINISH;
        return 0;
    case PHASE_FINISH:
        s->phase = s->include_usage ? PHASE_USAGE : PHASE_DONE;
        return send_event(s, chunk_new(s, &delta, "stop"));
    case PHASE_USAGE:
        chunk = envelope(&s->r, "chat.completion.chunk");
        cJSON_AddArrayToObject(chunk, "choices");
        add_usage(chunk, &s->r);
        s->phase = PHASE_DONE;
        return send_event(s, chunk);
    case PHASE_DONE: return send_done(s);
    case PHASE_OVER: break;
    }
    return 0;
}

/* Writes events until the stream is over (1) or the client's queue is past
 * the high-water mark (0: the drain callback carries on). A write that fails
 * means the client went away: the stream is over. */
static int pump(stream *s)
{
    s->pumping = 1;
    while (s->phase != PHASE_OVER && prism_stream_buffered(s->ctx) <= s->high_water) {
        if (send_next(s) != 0)
            s->phase = PHASE_OVER;
    }
    s->pumping = 0;
    if (s->phase != PHASE_OVER)
        return 0;
    prism_stream_end(s->ctx);
    return 1;
}

/* The client took everything queued: go on, and once the stream is over,
 * tell the chain that this step, which returned PENDING, is done. */
static void on_drain(void *data)
{
    stream *s = data;
    if (s->pumping || s->phase == PHASE_OVER)
        return;
    if (pump(s))
        prism_ctx_resume(s->ctx, PRISM_DONE);
}

static prism_status respond_stream(prism_ctx *ctx, const echo *e, const reply *r, const cJSON *body)
{
    stream *s = prism_ctx_alloc(ctx, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->r = *r;
    s->high_water = e->high_water;
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    s->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(options, "include_usage"));
    prism_response_header(ctx, "x-prism-provider", "echo_provider");
    if (prism_stream_begin(ctx, 200, "text/event-stream") != 0)
        return PRISM_DONE; /* the client is gone */
    prism_stream_on_drain(ctx, on_drain, s);
    /* A short reply fits under the high-water mark and is over at once. */
    return pump(s) ? PRISM_DONE : PRISM_PENDING;
}

static prism_status echo_handle(void *instance, prism_ctx *ctx)
{
    const echo *e = instance;
    const cJSON *body = prism_ctx_json(ctx);
    reply r = {0};
    if (read_request(ctx, body, &r) != 0)
        return PRISM_DONE;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream")))
        return respond_stream(ctx, e, &r, body);
    prism_response_header(ctx, "x-prism-provider", "echo_provider");
    respond_whole(ctx, &r);
    return PRISM_DONE;
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION,
    .name = "echo_provider",
    .version = "0.1.0",
    .create = echo_create,
    .handle = echo_handle,
    .destroy = echo_destroy,
    .list_models = echo_list_models,
};
