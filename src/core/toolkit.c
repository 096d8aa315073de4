/*
 * toolkit.c - small helpers every provider plugin needs (configuration
 * values, URLs, header lines, model lists, bounded bodies), so plugins stay
 * about their provider and not about string handling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism/plugin.h"

const char *prism_conf_string(const cJSON *config, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

long prism_conf_int(const cJSON *config, const char *key, long def, long min, long max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (!cJSON_IsNumber(v))
        return def;
    if (v->valuedouble < (double)min)
        return min;
    if (v->valuedouble > (double)max)
        return max;
    return (long)v->valuedouble;
}

void prism_strings_free(char **list, size_t count)
{
    for (size_t i = 0; list != NULL && i < count; i++)
        free(list[i]);
    free(list);
}

int prism_conf_strings(const cJSON *config, const char *key, char ***out, size_t *count, char *err, size_t errlen)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(config, key);
    *out = NULL;
    *count = 0;
    if (arr == NULL || cJSON_IsNull(arr))
        return 0;
    if (!cJSON_IsArray(arr))
        return snprintf(err, errlen, "%s must be a list of strings", key), -1;
    char **list = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*list));
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (list == NULL || !cJSON_IsString(it) || (list[n] = strdup(it->valuestring)) == NULL) {
            prism_strings_free(list, n);
            return snprintf(err, errlen, "%s must be a list of strings", key), -1;
        }
        n++;
    }
    *out = list;
    *count = n;
    return 0;
}

int prism_has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

char *prism_url_join(const char *base, const char *path, char *err, size_t errlen)
{
    if (base == NULL || (strncmp(base, "https://", 8) != 0 && strncmp(base, "http://", 7) != 0) ||
        prism_has_control_chars(base)) {
        snprintf(err, errlen, "base_url must be an http:// or https:// URL");
        return NULL;
    }
    size_t n = strlen(base), p = strlen(path);
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *url = malloc(n + p + 1);
    if (url == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(url, base, n);
    memcpy(url + n, path, p + 1);
    return url;
}

char *prism_header_line(const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return NULL;
    size_t n = strlen(name) + strlen(value) + 3;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s: %s", name, value);
    return s;
}

void prism_models_append(cJSON *data, char *const *ids, size_t count, const char *owned_by)
{
    for (size_t i = 0; i < count; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", owned_by);
        cJSON_AddItemToArray(data, m);
    }
}

int prism_body_append(prism_ctx *ctx, prism_body *b, const char *chunk, size_t len)
{
    if (len > b->max || b->len > b->max - len)
        return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        /* Request memory: the old block is released with the request. */
        char *nb = prism_ctx_alloc(ctx, cap);
        if (b->len)
            memcpy(nb, b->data, b->len);
        b->data = nb;
        b->cap = cap;
    }
    memcpy(b->data + b->len, chunk, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}
