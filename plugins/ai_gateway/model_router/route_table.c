/*
 * route_table.c - the model router's tables, read-only after creation so
 * every worker thread can look up without locks.
 */
#include "route_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct route_entry {
    char *key;
    char *provider;
    size_t key_len;
} route_entry;

struct route_table {
    route_entry *exact;
    size_t exact_count;
    route_entry *prefix; /* longest key first */
    size_t prefix_count;
    char *default_provider;
};

static int valid_plugin_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int by_length_desc(const void *a, const void *b)
{
    const route_entry *x = a, *y = b;
    return (x->key_len < y->key_len) - (x->key_len > y->key_len);
}

static int read_map(const cJSON *config, const char *field, route_entry **out, size_t *count, char *err, size_t errlen)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(config, field);
    if (map == NULL || cJSON_IsNull(map))
        return 0;
    if (!cJSON_IsObject(map))
        return snprintf(err, errlen, "%s must be a mapping of model -> provider", field), -1;
    *out = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(**out));
    if (*out == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        if (!cJSON_IsString(it) || !valid_plugin_name(it->valuestring))
            return snprintf(err, errlen, "%s.%s must name a provider plugin ([a-z0-9_]+)", field, it->string), -1;
        if (it->string[0] == '\0')
            return snprintf(err, errlen, "%s has an empty model name", field), -1;
        route_entry *e = &(*out)[(*count)++];
        e->key = strdup(it->string);
        e->provider = strdup(it->valuestring);
        e->key_len = strlen(it->string);
        if (e->key == NULL || e->provider == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

static int read_default(route_table *t, const cJSON *config, char *err, size_t errlen)
{
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(config, "default_provider");
    if (def == NULL || cJSON_IsNull(def) || (cJSON_IsString(def) && def->valuestring[0] == '\0'))
        return 0;
    if (!cJSON_IsString(def) || !valid_plugin_name(def->valuestring))
        return snprintf(err, errlen, "default_provider must name a provider plugin ([a-z0-9_]+) or be null"), -1;
    t->default_provider = strdup(def->valuestring);
    return t->default_provider != NULL ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

route_table *route_table_new(const cJSON *config, char *err, size_t errlen)
{
    route_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    if (read_map(config, "exact_map", &t->exact, &t->exact_count, err, errlen) != 0 ||
        read_map(config, "prefix_map", &t->prefix, &t->prefix_count, err, errlen) != 0 ||
        read_default(t, config, err, errlen) != 0) {
        route_table_free(t);
        return NULL;
    }
    if (t->prefix_count > 1)
        qsort(t->prefix, t->prefix_count, sizeof(*t->prefix), by_length_desc);
    return t;
}

const char *route_table_lookup(const route_table *t, const char *model)
{
    for (size_t i = 0; i < t->exact_count; i++)
        if (strcmp(t->exact[i].key, model) == 0)
            return t->exact[i].provider;
    for (size_t i = 0; i < t->prefix_count; i++)
        if (strncmp(t->prefix[i].key, model, t->prefix[i].key_len) == 0)
            return t->prefix[i].provider;
    return t->default_provider;
}

size_t route_table_exact_count(const route_table *t)
{
    return t->exact_count;
}

void route_table_exact_at(const route_table *t, size_t i, const char **model, const char **provider)
{
    *model = t->exact[i].key;
    *provider = t->exact[i].provider;
}

static void free_entries(route_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].provider);
    }
    free(e);
}

void route_table_free(route_table *t)
{
    if (t == NULL)
        return;
    free_entries(t->exact, t->exact_count);
    free_entries(t->prefix, t->prefix_count);
    free(t->default_provider);
    free(t);
}
