/*
 * interp.c - `${VAR}` / `${VAR:-default}` expansion (see interp.h).
 */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

typedef struct expander {
    prism_env_fn env;
    void *env_data;
    char *err;
    size_t errlen;
} expander;

static int buf_add(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* ASCII classes on purpose: isalpha() would follow the locale. */
static int is_name_start(char c)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *fail(const expander *x, const char *msg)
{
    snprintf(x->err, x->errlen, "%s", msg);
    return NULL;
}

static const char *lookup(const expander *x, const char *name, size_t len)
{
    char *copy = strndup(name, len);
    if (!copy)
        return NULL;
    const char *value = x->env ? x->env(x->env_data, copy) : getenv(copy);
    free(copy);
    return value;
}

/* `${NAME:-default}`: `p` points at the default. Returns the position after
 * the closing brace, or NULL. */
static const char *expand_default(const expander *x, const char *name, size_t nlen, const char *p, strbuf *out)
{
    const char *close = strchr(p, '}');
    if (!close)
        return fail(x, "unterminated '${' (missing '}')");
    size_t dlen = (size_t)(close - p);
    /* The first '}' ends the default, so a nested `${` could never close. */
    if (memmem(p, dlen, "${", 2))
        return fail(x, "nested '${' in a default value is not supported");
    const char *value = lookup(x, name, nlen);
    int rc = (value && *value) ? buf_add(out, value, strlen(value)) : buf_add(out, p, dlen);
    return rc ? fail(x, "out of memory") : close + 1;
}

/* Expands one reference; `p` points just after "${". Returns the position
 * after its closing brace, or NULL with a message. */
static const char *expand_ref(const expander *x, const char *p, strbuf *out)
{
    const char *name = p;
    if (!is_name_start(*p))
        return *p ? fail(x, "bad variable name after '${'") : fail(x, "unterminated '${' (missing '}')");
    while (is_name_char(*p))
        p++;
    size_t nlen = (size_t)(p - name);
    if (p[0] == ':' && p[1] == '-')
        return expand_default(x, name, nlen, p + 2, out);
    if (*p == '\0')
        return fail(x, "unterminated '${' (missing '}')");
    if (*p != '}')
        return fail(x, "bad variable name in '${...}' (expected '}' or ':-' after the name)");
    const char *value = lookup(x, name, nlen);
    if (value && buf_add(out, value, strlen(value)))
        return fail(x, "out of memory");
    return p + 1;
}

/* Copies text up to the next '$' and handles what follows it. Returns the
 * position of the next unprocessed character, or NULL. */
static const char *expand_step(const expander *x, const char *p, strbuf *out)
{
    const char *dollar = strchr(p, '$');
    size_t plain = dollar ? (size_t)(dollar - p) : strlen(p);
    if (buf_add(out, p, plain))
        return fail(x, "out of memory");
    if (!dollar)
        return p + plain;
    if (dollar[1] == '{')
        return expand_ref(x, dollar + 2, out);
    /* `$$` is an escaped `$`; a lone `$` stays as written. */
    if (buf_add(out, "$", 1))
        return fail(x, "out of memory");
    return dollar[1] == '$' ? dollar + 2 : dollar + 1;
}

char *prism_interpolate(const char *in, prism_env_fn env, void *env_data, char *err, size_t errlen)
{
    expander x = {env, env_data, err, errlen};
    strbuf out = {0};
    if (buf_add(&out, "", 0)) {
        fail(&x, "out of memory");
        return NULL;
    }
    const char *p = in;
    while (p && *p)
        p = expand_step(&x, p, &out);
    if (!p) {
        free(out.data);
        return NULL;
    }
    return out.data;
}
