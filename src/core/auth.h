/*
 * auth.h - gateway API keys.
 *
 * Keys are kept only as SHA-256 digests and a presented key is compared
 * digest to digest with CRYPTO_memcmp over every configured key, so neither
 * the comparison's time nor the key's length tells an attacker anything.
 */
#ifndef PRISM_AUTH_H
#define PRISM_AUTH_H

#include <stddef.h>

typedef struct prism_auth prism_auth;

/* NULL on allocation failure. With no keys every check fails. */
prism_auth *prism_auth_new(char *const *keys, size_t count);
size_t prism_auth_count(const prism_auth *auth);
/* 1 when `token` is one of the keys. */
int prism_auth_check(const prism_auth *auth, const char *token, size_t len);
/* The bearer token of an Authorization header value ("Bearer xyz"), or
 * NULL; *len receives its length. */
const char *prism_auth_bearer(const char *value, size_t value_len, size_t *len);
void prism_auth_free(prism_auth *auth);

#endif
