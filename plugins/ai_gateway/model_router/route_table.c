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

typedef struct fallback_entry {
    char *model;
    char **to;
    size_t count;
} fallback_entry;

struct route_table {
    fallback_entry *fallbacks;
    size_t fallback_count;
    unsigned char fall_back_on[600]; /* by status */
    size_t max_messages;
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

static int read_fallback(fallback_entry *f, const cJSON *item, char *err, size_t errlen)
{
    f->model = strdup(item->string);
    if (f->model == NULL || !cJSON_IsArray(item))
        return snprintf(err, errlen, "fallbacks.%s must be a list of models", item->string), -1;
    f->to = calloc((size_t)cJSON_GetArraySize(item) + 1, sizeof(*f->to));
    const cJSON *m;
    cJSON_ArrayForEach(m, item)
    {
        if (f->to == NULL || !cJSON_IsString(m) || m->valuestring[0] == '\0')
            return snprintf(err, errlen, "fallbacks.%s must be a list of model names", item->string), -1;
        if ((f->to[f->count] = strdup(m->valuestring)) == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
        f->count++;
    }
    return 0;
}

static int read_fallbacks(route_table *t, const cJSON *config, char *err, size_t errlen)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(config, "fallbacks");
    if (map == NULL || cJSON_IsNull(map))
        return 0;
    if (!cJSON_IsObject(map))
        return snprintf(err, errlen, "fallbacks must be a mapping of model -> [models]"), -1;
    t->fallbacks = calloc((size_t)cJSON_GetArraySize(map) + 1, sizeof(*t->fallbacks));
    if (t->fallbacks == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, map)
    {
        if (read_fallback(&t->fallbacks[t->fallback_count++], it, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* "5xx", "4xx" or a status like "429" (a number works too). */
static int read_condition(route_table *t, const cJSON *c, char *err, size_t errlen)
{
    if (cJSON_IsString(c) && strlen(c->valuestring) == 3 && strcmp(c->valuestring + 1, "xx") == 0 &&
        (c->valuestring[0] == '4' || c->valuestring[0] == '5')) {
        int base = (c->valuestring[0] - '0') * 100;
        memset(t->fall_back_on + base, 1, 100);
        return 0;
    }
    long status = cJSON_IsNumber(c) ? (long)c->valuedouble : cJSON_IsString(c) ? strtol(c->valuestring, NULL, 10) : 0;
    if (status < 400 || status > 599)
        return snprintf(err, errlen, "fallback_on entries are \"5xx\", \"4xx\" or statuses from 400 to 599"), -1;
    t->fall_back_on[status] = 1;
    return 0;
}

static int read_conditions(route_table *t, const cJSON *config, char *err, size_t errlen)
{
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(config, "fallback_on");
    if (on == NULL || cJSON_IsNull(on)) {
        memset(t->fall_back_on + 500, 1, 100);
        t->fall_back_on[429] = 1;
        return 0;
    }
    if (!cJSON_IsArray(on))
        return snprintf(err, errlen, "fallback_on must be a list"), -1;
    const cJSON *c;
    cJSON_ArrayForEach(c, on)
    {
        if (read_condition(t, c, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static void read_limits(route_table *t, const cJSON *config)
{
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(config, "max_messages");
    t->max_messages = cJSON_IsNumber(max) && max->valuedouble >= 1 ? (size_t)max->valuedouble : 10000;
}

route_table *route_table_new(const cJSON *config, char *err, size_t errlen)
{
    route_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return snprintf(err, errlen, "out of memory"), NULL;
    if (read_map(config, "exact_map", &t->exact, &t->exact_count, err, errlen) != 0 ||
        read_map(config, "prefix_map", &t->prefix, &t->prefix_count, err, errlen) != 0 ||
        read_default(t, config, err, errlen) != 0 || read_fallbacks(t, config, err, errlen) != 0 ||
        read_conditions(t, config, err, errlen) != 0) {
        route_table_free(t);
        return NULL;
    }
    read_limits(t, config);
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

size_t route_table_fallbacks(const route_table *t, const char *model, char *const **list)
{
    for (size_t i = 0; i < t->fallback_count; i++) {
        if (strcmp(t->fallbacks[i].model, model) == 0) {
            *list = t->fallbacks[i].to;
            return t->fallbacks[i].count;
        }
    }
    *list = NULL;
    return 0;
}

int route_table_falls_back_on(const route_table *t, int status)
{
    return status >= 400 && status <= 599 && t->fall_back_on[status];
}

size_t route_table_max_messages(const route_table *t)
{
    return t->max_messages;
}

void route_table_free(route_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->fallback_count; i++) {
        free(t->fallbacks[i].model);
        for (size_t j = 0; j < t->fallbacks[i].count; j++)
            free(t->fallbacks[i].to[j]);
        free(t->fallbacks[i].to);
    }
    free(t->fallbacks);
    free_entries(t->exact, t->exact_count);
    free_entries(t->prefix, t->prefix_count);
    free(t->default_provider);
    free(t);
}
