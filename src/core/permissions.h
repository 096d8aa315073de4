/*
 * permissions.h - which hosts a plugin may call.
 *
 * A plugin's manifest declares the hosts it needs (permissions.network),
 * which `prism install` shows and records when the operator approves. At
 * run time every upstream call is checked against that list. A base URL the
 * operator chose counts as approved too: one set through the environment
 * (e.g. OPENAI_BASE_URL) or through plugins.config in the server's config,
 * told apart from the plugin's own defaults by reading the plugin's
 * config.yml once more as if no variable were set.
 */
#ifndef PRISM_PERMISSIONS_H
#define PRISM_PERMISSIONS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "manifest.h"

typedef struct prism_permissions prism_permissions;

/* `effective`: the config the plugin runs with; `author`: what its
 * config.yml says alone (may be NULL); `operator`: the server config's
 * plugins.config entry for it (may be NULL), approved as a whole. */
prism_permissions *prism_permissions_new(const prism_manifest *m, const cJSON *effective, const cJSON *author,
                                         const cJSON *operator_conf);
/* 1 when the URL's host is allowed. */
int prism_permissions_allow(const prism_permissions *p, const char *url);
/* The lower-cased host of an http(s) URL (no port, no brackets); -1 when
 * the URL has none. */
int prism_url_host(const char *url, char *out, size_t outlen);
void prism_permissions_free(prism_permissions *p);

#endif
