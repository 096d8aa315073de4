/*
 * item_store.h - the output items of recent Responses, kept so that a
 * client may refer to them ({"type":"item_reference","id":…}), as clients
 * that let OpenAI store responses do (the Vercel AI SDK by default). The
 * store is the provider's, in memory: bounded in items and bytes, oldest
 * first out, shared by the workers, gone with a reload.
 */
#ifndef CLAUDE_ITEM_STORE_H
#define CLAUDE_ITEM_STORE_H

#include <stddef.h>

typedef struct claude_item_store claude_item_store;

claude_item_store *claude_item_store_new(size_t max_items, size_t max_bytes);
void claude_item_store_free(claude_item_store *s);
/* Keeps a copy of an item's JSON under its id; an item larger than the
 * store is not kept. */
void claude_item_store_put(claude_item_store *s, const char *id, const char *json, size_t len);
/* A copy (malloc'd, NUL-terminated) of the JSON kept under id, or NULL. */
char *claude_item_store_get(claude_item_store *s, const char *id);

#endif
