/*
 * manifest.h - plugin.yml, group.yml and chains.yml.
 *
 * A plugin folder holds plugin.yml:
 *   name: openai_provider          # [a-z0-9_]+, the folder's name
 *   version: 0.1.0
 *   abi: 1                         # PRISM_PLUGIN_ABI_VERSION it was built for
 *   description: ...
 *   library: openai_provider.so    # default: <name>.so
 *   sources: [openai_provider.c]   # default: every *.c in the folder
 *   permissions:
 *     network: [api.openai.com]    # hosts it may call
 *     env: [OPENAI_API_KEY]        # environment it reads
 * and optionally config.yml (the instance's configuration).
 *
 * A meta-plugin folder holds group.yml:
 *   name: ai_gateway
 *   version: 0.1.0
 *   description: ...
 *   plugins: [model_router, openai_provider, claude_provider]  # sub-folders
 * and chains.yml:
 *   chains:
 *     chat: [model_router]
 * Sub-plugins listed but absent are skipped (a provider not installed); a
 * sub-folder that is present must have a valid plugin.yml.
 */
#ifndef PRISM_MANIFEST_H
#define PRISM_MANIFEST_H

#include <stddef.h>

#include "yaml.h"

typedef struct prism_chain_conf {
    char *name;
    char **steps;
    size_t step_count;
} prism_chain_conf;

typedef struct prism_manifest {
    char *dir; /* absolute folder */
    char *name;
    char *version;
    char *description;
    int abi;        /* 0 for a group */
    char *library;  /* absolute path of the .so (may not exist yet) */
    char **sources; /* absolute paths */
    size_t source_count;
    char **network; /* permissions.network */
    size_t network_count;
    char **env; /* permissions.env */
    size_t env_count;

    int is_group;
    struct prism_manifest **subs; /* present sub-plugins, in listed order */
    size_t sub_count;
    char **missing; /* listed sub-plugins with no folder */
    size_t missing_count;
    prism_chain_conf *chains;
    size_t chain_count;
} prism_manifest;

/* Reads the folder's plugin.yml or group.yml (+ chains.yml and sub-folders).
 * -1 with "file:line: message" on error. */
int prism_manifest_load(const char *dir, prism_manifest **out, char *err, size_t errlen);
/* A group's chain by name, or NULL. */
const prism_chain_conf *prism_manifest_chain(const prism_manifest *m, const char *name);
/* A group's sub-plugin by name, or NULL. */
const prism_manifest *prism_manifest_sub(const prism_manifest *m, const char *name);
void prism_manifest_free(prism_manifest *m);

#endif
