/*
 * toolkit.c - small helpers every provider plugin needs (configuration
 * values, URLs, header lines, model lists, bounded bodies), so plugins stay
 * about their provider and not about string handling.
 */
#include <limits.h>
#include <stdint.h>
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

/* The length of the UTF-8 sequence starting at s[0] when it is well formed
 * and complete within n bytes, else 0 (RFC 3629's table of valid ranges). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F; /* no UTF-16 surrogates */
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

size_t prism_utf8_char(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    return p[0] < 0x80 ? 1 : utf8_seq(p, n);
}

void prism_utf8_scrub(char *s)
{
    /* utf8_seq checks byte by byte, so it stops at the terminating NUL (not a
     * continuation byte) and never reads past it. */
    while (*s) {
        size_t n = prism_utf8_char(s, 4);
        if (n == 0) {
            *s++ = '?';
            continue;
        }
        s += n;
    }
}

int prism_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            /* Requests are mostly ASCII: eight bytes at a time while none
             * has its high bit set. */
            uint64_t w;
            while (i + 8 <= len && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0))
                i += 8;
            while (i < len && p[i] < 0x80)
                i++;
            continue;
        }
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* Bytes below 0x20 a JSON text may hold: the whitespace between tokens. */
static int json_space(unsigned char c)
{
    return c == '\t' || c == '\n' || c == '\r';
}

int prism_json_bytes_check(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] >= 0x80) {
            size_t n = utf8_seq(p + i, len - i);
            if (n == 0)
                return PRISM_JSON_BAD_UTF8;
            i += n;
            continue;
        }
        /* Eight ASCII bytes at a time while none is below 0x20 (the
         * subtraction borrows into a high bit only for such a byte). */
        uint64_t w;
        while (i + 8 <= len && (memcpy(&w, p + i, 8), ((w | (w - 0x2020202020202020ull)) & 0x8080808080808080ull) == 0))
            i += 8;
        for (size_t end = i + 8 < len ? i + 8 : len; i < end && p[i] < 0x80; i++)
            if (p[i] < 0x20 && !json_space(p[i]))
                return PRISM_JSON_CONTROL;
    }
    return PRISM_JSON_BYTES_OK;
}

int prism_str_ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && memcmp(s + n - t, tail, t) == 0;
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

static int read_retry_on(const cJSON *on, unsigned *flags, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {{"connect", PRISM_RETRY_CONNECT},
                 {"timeout", PRISM_RETRY_TIMEOUT},
                 {"429", PRISM_RETRY_429},
                 {"5xx", PRISM_RETRY_5XX}};
    if (on == NULL) {
        *flags = PRISM_RETRY_CONNECT | PRISM_RETRY_429 | PRISM_RETRY_5XX;
        return 0;
    }
    *flags = 0;
    if (!cJSON_IsArray(on))
        return snprintf(err, errlen, "retry.on must be a list"), -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, on)
    {
        size_t i = 0;
        char num[16] = "";
        if (cJSON_IsNumber(it))
            snprintf(num, sizeof(num), "%d", (int)it->valuedouble);
        const char *v = cJSON_IsString(it) ? it->valuestring : num;
        while (i < sizeof(names) / sizeof(names[0]) && strcmp(names[i].name, v) != 0)
            i++;
        if (i == sizeof(names) / sizeof(names[0]))
            return snprintf(err, errlen, "retry.on: '%s' is not one of connect, timeout, 429, 5xx", v), -1;
        *flags |= names[i].flag;
    }
    return 0;
}

int prism_conf_upstream(const cJSON *config, prism_upstream_conf *out, char *err, size_t errlen)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(config, "timeouts");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(config, "retry");
    const long day = 86400000;
    memset(out, 0, sizeof(*out));
    if ((t != NULL && !cJSON_IsObject(t)) || (r != NULL && !cJSON_IsObject(r)))
        return snprintf(err, errlen, "timeouts and retry must be mappings"), -1;
    out->connect_timeout_ms = prism_conf_int(t, "connect_ms", 0, 0, day);
    out->first_byte_timeout_ms = prism_conf_int(t, "first_byte_ms", 0, 0, day);
    out->idle_timeout_ms = prism_conf_int(t, "idle_ms", 0, 0, day);
    out->timeout_ms = prism_conf_int(t, "total_ms", 0, 0, day);
    out->retry.attempts = (unsigned)prism_conf_int(r, "attempts", 0, 0, 10);
    out->retry.base_delay_ms = (unsigned)prism_conf_int(r, "base_delay_ms", 200, 1, 60000);
    out->retry.max_delay_ms = (unsigned)prism_conf_int(r, "max_delay_ms", 5000, 1, 600000);
    return read_retry_on(cJSON_GetObjectItemCaseSensitive(r, "on"), &out->retry.on, err, errlen);
}

void prism_upstream_conf_apply(const prism_upstream_conf *conf, prism_http_request_t *req)
{
    req->connect_timeout_ms = conf->connect_timeout_ms;
    req->first_byte_timeout_ms = conf->first_byte_timeout_ms;
    req->idle_timeout_ms = conf->idle_timeout_ms;
    req->timeout_ms = conf->timeout_ms;
    req->retry = conf->retry.attempts > 0 ? &conf->retry : NULL;
}

/* The last `"usage":` in the text: it follows the choices in a body, and
 * comes in the final chunk of a stream. Searched from the end, where it is,
 * a 'u' at a time (memrchr is vectorized, and the letter is rare in the
 * keys and numbers around it). */
static const char *last_usage(const char *text, size_t len)
{
    static const char key[] = "\"usage\"";
    const size_t n = sizeof(key) - 1;
    const char *u = text + len;
    while (len >= n && (u = memrchr(text + 1, 'u', (size_t)(u - text - 1))) != NULL) {
        if ((size_t)(u - 1 - text) + n <= len && memcmp(u - 1, key, n) == 0)
            return u - 1;
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* `p` at an opening quote: just past the closing one, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static int read_count(const char *p, const char *end, long *out)
{
    const char *start = p;
    long v = 0;
    while (p < end && *p >= '0' && *p <= '9' && v < LONG_MAX / 10 - 10)
        v = v * 10 + (*p++ - '0');
    if (p == start)
        return 0;
    *out = v;
    return 1;
}

static int key_is(const char *key, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(key, name, n) == 0;
}

/* The two counts of the usage object at `p` ('{'), read in place: building
 * a cJSON tree of it (numbers go through strtod) cost more than the rest of
 * a pass-through request. Only members of the object itself count. Chat
 * Completions say prompt_tokens / completion_tokens, the Responses API
 * input_tokens / output_tokens; embeddings have only prompt_tokens.
 * Returns bit 1 for the prompt count, bit 2 for the completion count. */
static int usage_counts(const char *p, const char *end, long *prompt, long *completion)
{
    int depth = 0, found = 0;
    while (p < end) {
        if (*p == '"') {
            const char *key = p + 1;
            if ((p = skip_string(p, end)) == NULL)
                return 0;
            size_t n = (size_t)(p - 1 - key);
            p = skip_ws(p, end);
            if (depth != 1 || p >= end || *p != ':')
                continue;
            p = skip_ws(p + 1, end);
            if (key_is(key, n, "prompt_tokens") || key_is(key, n, "input_tokens"))
                found |= read_count(p, end, prompt);
            else if (key_is(key, n, "completion_tokens") || key_is(key, n, "output_tokens"))
                found |= read_count(p, end, completion) << 1;
            if (found == 3)
                return 3; /* both come first: the details after them are not read */
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            break;
        p++;
    }
    return found;
}

void prism_ctx_note_openai_usage(prism_ctx *ctx, const char *text, size_t len)
{
    const char *u = len ? last_usage(text, len) : NULL;
    const char *brace = u ? memchr(u, '{', len - (size_t)(u - text)) : NULL;
    long prompt = 0, completion = 0;
    if (brace == NULL || brace - u > 16)
        return;
    int found = usage_counts(brace, text + len, &prompt, &completion);
    if (found & 1)
        prism_ctx_set_usage(ctx, prompt, found & 2 ? completion : 0);
}
