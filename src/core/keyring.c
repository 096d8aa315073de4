/*
 * keyring.c - several keys or deployments per provider, weighted, with a
 * cooldown for keys the provider pushes back on.
 *
 * Built once per plugin instance and shared by every worker: the only
 * mutable state is each key's cooldown deadline, an atomic, so picking
 * takes no lock and costs a few array reads and one random number.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prism/plugin.h"

typedef struct key_entry {
    char *header;       /* "Authorization: Bearer K"; NULL: no key */
    const char *secret; /* K, the tail of header; NULL when too short to look for */
    size_t secret_len;
    /* How far the search may jump when the byte under the key's last
     * position is c (Horspool); built once, so a search costs no setup. */
    uint32_t skip[256];
    char *url;
    unsigned weight;
    _Atomic uint64_t resting_until_ms;
} key_entry;

struct prism_keyring {
    key_entry *keys;
    size_t count;
    uint64_t cooldown_ms;
    /* what every entry is built from */
    const char *header_name, *value_prefix, *path;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void build_skip(key_entry *e)
{
    const size_t n = e->secret_len;
    for (size_t c = 0; c < 256; c++)
        e->skip[c] = (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX);
    for (size_t i = 0; i + 1 < n; i++)
        e->skip[(unsigned char)e->secret[i]] = (uint32_t)(n - 1 - i);
}

static int add_key(prism_keyring *k, const char *key, const char *base_url, unsigned weight, char *err, size_t errlen)
{
    key_entry *e = &k->keys[k->count];
    if (key != NULL && prism_has_control_chars(key))
        return snprintf(err, errlen, "keys[%zu]: a key must not contain control characters", k->count), -1;
    if ((e->url = prism_url_join(base_url, k->path, err, errlen)) == NULL)
        return -1;
    k->count++; /* owned from here: freed with the ring */
    e->weight = weight;
    atomic_init(&e->resting_until_ms, 0);
    if (key != NULL && key[0] != '\0') {
        size_t n = strlen(k->value_prefix) + strlen(key) + 1;
        char *value = malloc(n);
        if (value == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
        snprintf(value, n, "%s%s", k->value_prefix, key);
        e->header = prism_header_line(k->header_name, value);
        free(value);
        if (e->header == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
        size_t klen = strlen(key), hlen = strlen(e->header);
        if (klen >= PRISM_KEY_MIN_REDACT && klen <= hlen && memcmp(e->header + hlen - klen, key, klen) == 0) {
            e->secret = e->header + hlen - klen;
            e->secret_len = klen;
            build_skip(e);
        }
    }
    return 0;
}

static int add_entry(prism_keyring *k, const cJSON *item, const char *base_url, char *err, size_t errlen)
{
    if (cJSON_IsString(item))
        return item->valuestring[0] ? add_key(k, item->valuestring, base_url, 1, err, errlen) : 0;
    if (!cJSON_IsObject(item))
        return snprintf(err, errlen, "keys[%zu] must be a mapping {key, weight, base_url}", k->count), -1;
    const char *url = prism_conf_string(item, "base_url");
    const char *key = prism_conf_string(item, "key");
    long weight = prism_conf_int(item, "weight", 1, 0, 1000000);
    /* A key whose variable is unset is skipped, so one config serves
     * deployments that have one key or several. */
    if (key == NULL || key[0] == '\0' || weight == 0)
        return 0;
    return add_key(k, key, url && url[0] ? url : base_url, (unsigned)weight, err, errlen);
}

static int add_all(prism_keyring *k, const cJSON *config, const char *base_url, char *err, size_t errlen)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(config, "keys");
    if (keys != NULL && !cJSON_IsNull(keys) && !cJSON_IsArray(keys))
        return snprintf(err, errlen, "keys must be a list"), -1;
    const cJSON *it;
    if (cJSON_IsArray(keys)) {
        cJSON_ArrayForEach(it, keys)
        {
            if (add_entry(k, it, base_url, err, errlen) != 0)
                return -1;
        }
    }
    return k->count > 0 ? 0 : add_key(k, prism_conf_string(config, "api_key"), base_url, 1, err, errlen);
}

prism_keyring *prism_keyring_new(const cJSON *config, const char *header_name, const char *value_prefix,
                                 const char *default_base_url, const char *path, char *err, size_t errlen)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(config, "keys");
    size_t n = cJSON_IsArray(keys) ? (size_t)cJSON_GetArraySize(keys) : 0;
    prism_keyring *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->keys = calloc(n + 1, sizeof(*k->keys))) == NULL) {
        free(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->header_name = header_name;
    k->value_prefix = value_prefix;
    k->path = path;
    k->cooldown_ms = (uint64_t)prism_conf_int(config, "key_cooldown_ms", 30000, 0, 86400000);
    const char *base = prism_conf_string(config, "base_url");
    if (add_all(k, config, base && base[0] ? base : default_base_url, err, errlen) != 0) {
        prism_keyring_free(k);
        return NULL;
    }
    return k;
}

size_t prism_keyring_count(const prism_keyring *k)
{
    return k->count;
}

const char *prism_keyring_header(const prism_keyring *k, size_t i)
{
    return k->keys[i].header;
}

const char *prism_keyring_url(const prism_keyring *k, size_t i)
{
    return k->keys[i].url;
}

const char *prism_keyring_find(const prism_keyring *k, size_t i, const char *buf, size_t len)
{
    const key_entry *e = &k->keys[i];
    if (e->secret == NULL || buf == NULL || e->secret_len == 0)
        return NULL;
    /* Horspool's search with the table built with the key: glibc's memmem
     * builds its own table for a long needle on every call, which costs
     * more than scanning a whole answer of a few hundred bytes; from the
     * table, the scan mostly jumps a key's length at a time. */
    const size_t n = e->secret_len;
    const char last = e->secret[n - 1];
    for (size_t at = 0; len - at >= n;) { /* at <= len: a jump is at most n */
        char c = buf[at + n - 1];
        if (c == last && memcmp(buf + at, e->secret, n - 1) == 0)
            return buf + at;
        at += e->skip[(unsigned char)c];
    }
    return NULL;
}

size_t prism_keyring_redact(const prism_keyring *k, size_t i, char *buf, size_t len)
{
    size_t n = 0;
    const size_t slen = k->keys[i].secret_len;
    for (char *at = (char *)prism_keyring_find(k, i, buf, len); at != NULL; n++) {
        memset(at, '*', slen);
        size_t done = (size_t)(at - buf) + slen;
        at = (char *)prism_keyring_find(k, i, at + slen, len - done);
    }
    return n;
}

/* Weighted choice among the keys not resting; their weights are summed on
 * the fly, which for a handful of keys beats keeping a shared table. */
static size_t pick_awake(const prism_keyring *k, uint64_t now, uint64_t r, size_t *soonest)
{
    uint64_t awake = 0, soonest_at = UINT64_MAX;
    for (size_t i = 0; i < k->count; i++) {
        uint64_t until = atomic_load_explicit(&k->keys[i].resting_until_ms, memory_order_relaxed);
        if (until <= now) {
            awake += k->keys[i].weight;
        } else if (until < soonest_at) {
            soonest_at = until;
            *soonest = i;
        }
    }
    if (awake == 0)
        return SIZE_MAX;
    uint64_t target = r % awake;
    for (size_t i = 0; i < k->count; i++) {
        if (atomic_load_explicit(&k->keys[i].resting_until_ms, memory_order_relaxed) > now)
            continue;
        if (target < k->keys[i].weight)
            return i;
        target -= k->keys[i].weight;
    }
    return SIZE_MAX; /* another worker put keys to rest meanwhile */
}

size_t prism_keyring_pick(prism_keyring *k, prism_ctx *ctx)
{
    if (k->count <= 1)
        return 0;
    size_t soonest = 0;
    size_t i = pick_awake(k, now_ms(), prism_ctx_random(ctx), &soonest);
    return i != SIZE_MAX ? i : soonest;
}

void prism_keyring_report(prism_keyring *k, size_t i, int status)
{
    if (i >= k->count || k->count <= 1 || k->cooldown_ms == 0)
        return;
    int rest = status == 0 || status == 401 || status == 403 || status == 429 || status >= 500;
    if (rest)
        atomic_store_explicit(&k->keys[i].resting_until_ms, now_ms() + k->cooldown_ms, memory_order_relaxed);
    else if (atomic_load_explicit(&k->keys[i].resting_until_ms, memory_order_relaxed) != 0)
        atomic_store_explicit(&k->keys[i].resting_until_ms, 0, memory_order_relaxed);
}

void prism_keyring_free(prism_keyring *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->count; i++) {
        free(k->keys[i].header);
        free(k->keys[i].url);
    }
    free(k->keys);
    free(k);
}
