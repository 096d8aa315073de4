/*
 * interp.h - `${VAR}` / `${VAR:-default}` expansion for configuration values.
 *
 * `${VAR}` is the variable's value, or "" when unset. `${VAR:-default}` is the
 * default when VAR is unset or empty (as in the POSIX shell). `$$` is a
 * literal `$`; a `$` not followed by `{` or `$` is kept as it is. Names are
 * [A-Za-z_][A-Za-z0-9_]*. Defaults may not nest another `${`.
 */
#ifndef PRISM_INTERP_H
#define PRISM_INTERP_H

#include <stddef.h>

/* Looks a variable up; NULL when unset. getenv() when the resolver is NULL. */
typedef const char *(*prism_env_fn)(void *data, const char *name);

/* Returns a malloc'd expansion, or NULL with a message in err (unterminated
 * `${`, bad name, nested expansion). */
char *prism_interpolate(const char *in, prism_env_fn env, void *env_data, char *err, size_t errlen);

#endif
