/*
 * hello_header - the smallest useful chain step.
 *
 * It adds one response header, read from its config.yml, leaves a note in
 * the context for the steps after it, and returns PRISM_CONTINUE so that
 * the next step (ai_gateway:chat, for instance) produces the response. Once
 * the response is complete, on_finish logs what the later steps recorded.
 *
 * The instance is built once by `create` and only read afterwards: every
 * worker thread shares it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism/plugin.h"

typedef struct hello {
    char *header; /* the response header's name */
    char *value;
    prism_host *host;
} hello;

/* RFC 9110 token characters: what a header name may be made of. */
static int is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && strchr("!#$%&'*+-.^_`|~", c) == NULL)
            return 0;
    }
    return 1;
}

static char *copy(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void hello_destroy(void *instance)
{
    hello *h = instance;
    if (h == NULL)
        return;
    free(h->header);
    free(h->value);
    free(h);
}

/* Every check happens here, once: a bad config.yml stops `prism serve` with
 * this message instead of failing requests later. */
static void *hello_create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    const char *name = prism_conf_string(config, "header");
    const char *value = prism_conf_string(config, "value");
    if (name == NULL)
        name = "X-Hello";
    if (value == NULL)
        value = "hello";
    if (!is_token(name)) {
        snprintf(err, errlen, "header '%.100s' is not a valid HTTP header name", name);
        return NULL;
    }
    if (prism_has_control_chars(value)) {
        snprintf(err, errlen, "value must not contain control characters");
        return NULL;
    }
    hello *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->header = copy(name)) == NULL || (h->value = copy(value)) == NULL) {
        hello_destroy(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->host = host;
    prism_log(host, PRISM_LOG_DEBUG, "adds %s: %s", h->header, h->value);
    return h;
}

static prism_status hello_handle(void *instance, prism_ctx *ctx)
{
    const hello *h = instance;
    /* Headers may be added until a later step starts the response. */
    prism_response_header(ctx, h->header, h->value);
    /* The context's key/value store is how steps talk to each other; keys
     * are namespaced by plugin name by convention. */
    prism_ctx_set(ctx, "hello_header.said", h->value);
    return PRISM_CONTINUE;
}

/* Runs after the response is complete, for every step of the chain. */
static void hello_on_finish(void *instance, prism_ctx *ctx)
{
    const hello *h = instance;
    const char *said = prism_ctx_get(ctx, "hello_header.said");
    const char *provider = prism_ctx_get(ctx, "provider"); /* set by ai_gateway's model_router */
    prism_log(h->host, PRISM_LOG_DEBUG, "request %s: said \"%s\", answered by %s", prism_ctx_request_id(ctx),
              said != NULL ? said : "nothing", provider != NULL ? provider : "another step");
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION,
    .name = "hello_header",
    .version = "0.1.0",
    .create = hello_create,
    .handle = hello_handle,
    .destroy = hello_destroy,
    .on_finish = hello_on_finish,
};
