/*
 * yaml.h - YAML files as cJSON trees that remember their line numbers.
 *
 * Configuration is read once, at start and on reload, so the tree is built
 * with cJSON (the same type plugins get) and a side table maps each node to
 * the line it came from, so `prism check` can say `file:line: message`.
 *
 * Scalars: plain (unquoted) scalars become numbers, booleans or null when they
 * read as such (YAML 1.2 core schema: 12, 1.5, true/false, null/~); quoted
 * scalars always stay strings. With PRISM_YAML_INTERPOLATE, `${VAR}` and
 * `${VAR:-default}` are expanded in every scalar before its type is decided
 * (see interp.h). Anchors and aliases are refused; multi-document files too.
 */
#ifndef PRISM_YAML_H
#define PRISM_YAML_H

#include <stdarg.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct prism_doc prism_doc;

enum {
    PRISM_YAML_INTERPOLATE = 1,
    /* With PRISM_YAML_INTERPOLATE: expand as if no variable were set (what a
     * file says by itself, before the operator's environment). */
    PRISM_YAML_EMPTY_ENV = 2,
};

/* Parses the file at `path`. On error returns -1 and writes
 * "path:line: message" into err. An empty file yields an empty object. */
int prism_yaml_load(const char *path, int flags, prism_doc **out, char *err, size_t errlen);
/* Same, from memory; `name` is used in messages in place of a path. */
int prism_yaml_parse(const char *text, size_t len, const char *name, int flags, prism_doc **out, char *err,
                     size_t errlen);
const cJSON *prism_doc_root(const prism_doc *doc);
/* The line (1-based) a node came from, or 0 when unknown. */
int prism_doc_line(const prism_doc *doc, const cJSON *node);
const char *prism_doc_name(const prism_doc *doc);
/* Writes "name:line: message" (or "name: message" when the node has no
 * line, or is NULL) into err and returns -1, for validators of a doc. */
int prism_doc_vfail(const prism_doc *doc, const cJSON *node, char *err, size_t errlen, const char *fmt, va_list ap);
void prism_doc_free(prism_doc *doc);

#endif
