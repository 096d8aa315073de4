/*
 * permissions.c - the hosts a plugin may call, checked per upstream call.
 */
#include "permissions.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct prism_permissions {
    char **hosts; /* "api.openai.com", "*.example.com" */
    size_t count, cap;
};

int prism_url_host(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return -1;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* userinfo is not the host */
    if (at != NULL) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (*p == '[') { /* [v6]:port */
        const char *end = memchr(p, ']', n);
        if (end == NULL)
            return -1;
        p++;
        n = (size_t)(end - p);
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon != NULL)
            n = (size_t)(colon - p);
    }
    if (n == 0 || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    return 0;
}

static void add_host(prism_permissions *p, const char *host)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        char **h = realloc(p->hosts, cap * sizeof(*h));
        if (h == NULL)
            return;
        p->hosts = h;
        p->cap = cap;
    }
    char *copy = strdup(host);
    if (copy != NULL)
        p->hosts[p->count++] = copy;
}

/* The base URLs a provider config names: base_url and keys[].base_url. */
static size_t base_urls(const cJSON *config, const char **out, size_t max)
{
    size_t n = 0;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(config, "base_url");
    if (cJSON_IsString(b) && n < max)
        out[n++] = b->valuestring;
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(config, "keys"))
    {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(k, "base_url");
        if (cJSON_IsString(u) && n < max)
            out[n++] = u->valuestring;
    }
    return n;
}

static int listed(const char *const *urls, size_t n, const char *url)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(urls[i], url) == 0)
            return 1;
    return 0;
}

prism_permissions *prism_permissions_new(const prism_manifest *m, const cJSON *effective, const cJSON *author,
                                         const cJSON *operator_conf)
{
    prism_permissions *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < m->network_count; i++)
        add_host(p, m->network[i]);
    const char *mine[64], *theirs[64];
    size_t nm = base_urls(effective, mine, 64), nt = author ? base_urls(author, theirs, 64) : 0;
    char host[256];
    for (size_t i = 0; i < nm; i++)
        if (!listed(theirs, nt, mine[i]) && prism_url_host(mine[i], host, sizeof(host)) == 0)
            add_host(p, host); /* the operator's choice, through the environment */
    const char *set[64];
    size_t ns = operator_conf ? base_urls(operator_conf, set, 64) : 0;
    for (size_t i = 0; i < ns; i++)
        if (prism_url_host(set[i], host, sizeof(host)) == 0)
            add_host(p, host); /* the operator's choice, in the server's config */
    return p;
}

static int host_matches(const char *pattern, const char *host)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        size_t hl = strlen(host), pl = strlen(pattern + 1);
        return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

int prism_permissions_allow(const prism_permissions *p, const char *url)
{
    char host[256];
    if (prism_url_host(url, host, sizeof(host)) != 0)
        return 0;
    for (size_t i = 0; i < p->count; i++)
        if (host_matches(p->hosts[i], host))
            return 1;
    return 0;
}

void prism_permissions_free(prism_permissions *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->hosts[i]);
    free(p->hosts);
    free(p);
}
