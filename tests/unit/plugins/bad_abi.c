/* A plugin built for a future ABI: the loader must refuse it by name. */
#include "prism/plugin.h"

static void *create(const cJSON *config, prism_host *host, char *err, size_t errlen)
{
    (void)config;
    (void)host;
    (void)err;
    (void)errlen;
    return (void *)1;
}

static prism_status handle(void *instance, prism_ctx *ctx)
{
    (void)instance;
    (void)ctx;
    return PRISM_CONTINUE;
}

static void destroy(void *instance)
{
    (void)instance;
}

const prism_plugin_t prism_plugin = {
    .abi_version = PRISM_PLUGIN_ABI_VERSION + 1,
    .name = "bad_abi",
    .version = "0.0.1",
    .create = create,
    .handle = handle,
    .destroy = destroy,
};
