/*
 * item_store.c - a ring of recent output items under one mutex.
 *
 * References come for items the client just received (the previous step of
 * a tool loop), so a lookup walks from the newest entry back; a miss walks
 * the whole ring, which the item bound keeps short.
 */
#include "item_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *id;
    char *json;
    size_t len;
} entry;

struct claude_item_store {
    pthread_mutex_t lock;
    entry *ring;
    size_t cap, head, count; /* head: the next slot written */
    size_t bytes, max_bytes;
};

claude_item_store *claude_item_store_new(size_t max_items, size_t max_bytes)
{
    claude_item_store *s = calloc(1, sizeof(*s));
    if (s == NULL || max_items == 0 || (s->ring = calloc(max_items, sizeof(*s->ring))) == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->cap = max_items;
    s->max_bytes = max_bytes;
    return s;
}

static char *copy_of(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static void drop(claude_item_store *s, entry *e)
{
    s->bytes -= e->len;
    s->count--;
    free(e->id);
    free(e->json);
    *e = (entry){0};
}

void claude_item_store_free(claude_item_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->cap; i++)
        if (s->ring[i].id != NULL)
            drop(s, &s->ring[i]);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s);
}

/* The oldest entry's slot: the head, once the ring has come round. */
static entry *oldest(claude_item_store *s)
{
    for (size_t k = 0; k < s->cap; k++) {
        entry *e = &s->ring[(s->head + k) % s->cap];
        if (e->id != NULL)
            return e;
    }
    return NULL;
}

void claude_item_store_put(claude_item_store *s, const char *id, const char *json, size_t len)
{
    if (s == NULL || id == NULL || json == NULL || len > s->max_bytes)
        return;
    char *id_copy = copy_of(id, strlen(id)), *json_copy = copy_of(json, len);
    if (id_copy == NULL || json_copy == NULL) {
        free(id_copy);
        free(json_copy);
        return;
    }
    pthread_mutex_lock(&s->lock);
    entry *slot = &s->ring[s->head];
    if (slot->id != NULL)
        drop(s, slot);
    while (s->bytes + len > s->max_bytes)
        drop(s, oldest(s));
    *slot = (entry){id_copy, json_copy, len};
    s->bytes += len;
    s->count++;
    s->head = (s->head + 1) % s->cap;
    pthread_mutex_unlock(&s->lock);
}

char *claude_item_store_get(claude_item_store *s, const char *id)
{
    if (s == NULL || id == NULL)
        return NULL;
    char *copy = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t k = 1; k <= s->cap && copy == NULL; k++) {
        const entry *e = &s->ring[(s->head + s->cap - k) % s->cap];
        if (e->id != NULL && e->id[0] == id[0] && strcmp(e->id, id) == 0)
            copy = copy_of(e->json, e->len);
    }
    pthread_mutex_unlock(&s->lock);
    return copy;
}
