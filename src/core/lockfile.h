/*
 * lockfile.h - plugins.lock, the record of what the user approved.
 *
 * `prism install` builds a plugin, shows the permissions it asks for and, once
 * approved, records it in <plugins_dir>/plugins.lock. The server then loads a
 * library from plugins_dir only if its sha256 is the one recorded, so a
 * library swapped after approval is refused instead of run.
 *
 *   {
 *     "lock_version": 1,
 *     "plugins": {
 *       "ai_gateway": {
 *         "version": "0.1.0",
 *         "kind": "group",                     // or "plugin"
 *         "source": "/abs/path/installed/from",
 *         "installed_at": "2025-01-31T12:00:00Z",
 *         "permissions": {                     // a plugin: {"network":[..],"env":[..]}
 *           "openai_provider": {"network": ["api.openai.com"], "env": ["OPENAI_API_KEY"]}
 *         },
 *         "libraries": {                       // keyed by sub-plugin (or plugin) name
 *           "openai_provider": {"file": "openai_provider/openai_provider.so", "sha256": "..."}
 *         }
 *       }
 *     }
 *   }
 *
 * Library code: errors are returned as one line in `err`, never printed.
 */
#ifndef PRISM_LOCKFILE_H
#define PRISM_LOCKFILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "manifest.h"

/* The file name inside plugins_dir. */
#define PRISM_LOCK_FILE "plugins.lock"
/* The format version written and accepted. */
#define PRISM_LOCK_VERSION 1

/* Reads <plugins_dir>/plugins.lock into *out (the caller frees it with
 * cJSON_Delete). A missing file yields an empty lock. -1 with a message when
 * the file cannot be read or is not a lock of PRISM_LOCK_VERSION. */
int prism_lock_load(const char *plugins_dir, cJSON **out, char *err, size_t errlen);

/* Writes the lock atomically: a temporary file in plugins_dir is written,
 * fsync'd and renamed over plugins.lock, so a reader never sees half a file. */
int prism_lock_save(const char *plugins_dir, const cJSON *lock, char *err, size_t errlen);

/* The sha256 of a file's content as 64 lowercase hex digits. */
int prism_sha256_file(const char *path, char hex[65], char *err, size_t errlen);

/* 0 when `so_path` (the library of plugin `name`, or of sub-plugin `sub` of
 * group `name`; sub may be NULL) is recorded in the lock of plugins_dir with
 * the same sha256. -1 with a message otherwise: "not in plugins.lock: install
 * it with prism install", "library changed since it was approved: ...". */
int prism_lock_verify(const char *plugins_dir, const char *name, const char *sub, const char *so_path, char *err,
                      size_t errlen);

/* Builds the lock entry of an installed manifest: version, kind, `source`,
 * the current time, the permissions of the plugin (or of each sub-plugin) and
 * the sha256 of each library, whose path is recorded relative to m->dir.
 * NULL with a message when a library is missing or lies outside m->dir. */
cJSON *prism_lock_entry_new(const prism_manifest *m, const char *source, char *err, size_t errlen);

/* The entry of plugin `name`, or NULL. */
const cJSON *prism_lock_entry(const cJSON *lock, const char *name);

/* Records `entry` (ownership taken) as plugin `name`, replacing any previous
 * entry. -1 when the lock is malformed (the entry is then freed). */
int prism_lock_set_entry(cJSON *lock, const char *name, cJSON *entry);

/* Drops plugin `name`. 0 when it was there, -1 when it was not. */
int prism_lock_remove(cJSON *lock, const char *name);

#endif
