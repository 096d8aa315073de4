/*
 * auth.c - constant-time gateway key checks.
 */
#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define DIGEST_LEN 32

struct prism_auth {
    size_t count;
    unsigned char (*digests)[DIGEST_LEN];
    /* Fetched once: EVP_sha256() makes OpenSSL 3 look the implementation
     * up, under a lock, on every digest. */
    EVP_MD *sha256;
};

static void digest(const prism_auth *a, const char *s, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int n = DIGEST_LEN;
    EVP_Digest(s, len, out, &n, a->sha256, NULL);
}

prism_auth *prism_auth_new(char *const *keys, size_t count)
{
    prism_auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->digests = calloc(count ? count : 1, DIGEST_LEN);
    if (a->digests == NULL) {
        free(a);
        return NULL;
    }
    a->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (a->sha256 == NULL) {
        free(a->digests);
        free(a);
        return NULL;
    }
    a->count = count;
    for (size_t i = 0; i < count; i++)
        digest(a, keys[i], strlen(keys[i]), a->digests[i]);
    return a;
}

size_t prism_auth_count(const prism_auth *auth)
{
    return auth->count;
}

int prism_auth_check(const prism_auth *auth, const char *token, size_t len)
{
    unsigned char d[DIGEST_LEN];
    digest(auth, token, len, d);
    int ok = 0;
    for (size_t i = 0; i < auth->count; i++)
        ok |= CRYPTO_memcmp(d, auth->digests[i], DIGEST_LEN) == 0;
    return ok;
}

const char *prism_auth_bearer(const char *value, size_t value_len, size_t *len)
{
    if (value_len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return NULL;
    const char *t = value + 7;
    const char *end = value + value_len;
    while (t < end && *t == ' ')
        t++;
    while (end > t && end[-1] == ' ')
        end--;
    if (t == end)
        return NULL;
    *len = (size_t)(end - t);
    return t;
}

void prism_auth_free(prism_auth *auth)
{
    if (auth == NULL)
        return;
    OPENSSL_cleanse(auth->digests, auth->count * DIGEST_LEN);
    EVP_MD_free(auth->sha256);
    free(auth->digests);
    free(auth);
}
