/*
 * yaml.c - YAML to cJSON with a node -> line side table (see yaml.h).
 *
 * Built on libyaml's event API: one recursive pass turns the event stream
 * into a cJSON tree, so nothing but the tree and the line table outlives the
 * parse.
 */
#include "yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "interp.h"

/* Deeper nesting than this is refused, so a hostile file cannot exhaust the
 * stack of the recursive builder. */
#define MAX_DEPTH 64
/* Configuration files are small; a bigger file is a mistake. */
#define MAX_FILE_BYTES (16u << 20)

typedef struct line_entry {
    const cJSON *node;
    int line;
} line_entry;

struct prism_doc {
    char *name;
    cJSON *root;
    line_entry *lines;
    size_t line_count;
    size_t line_cap;
};

typedef struct builder {
    yaml_parser_t parser;
    prism_doc *doc;
    int flags;
    char *err;
    size_t errlen;
} builder;

static int build_value(builder *b, const yaml_event_t *ev, int depth, cJSON **out);

__attribute__((format(printf, 3, 4))) static int fail(builder *b, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(b->err, b->errlen, "%s:%d: %s", b->doc->name, line, msg);
    return -1;
}

static int event_line(const yaml_event_t *ev)
{
    return (int)ev->start_mark.line + 1;
}

static int remember(builder *b, const cJSON *node, int line)
{
    prism_doc *d = b->doc;
    if (d->line_count == d->line_cap) {
        size_t cap = d->line_cap ? d->line_cap * 2 : 32;
        line_entry *p = realloc(d->lines, cap * sizeof *p);
        if (!p)
            return fail(b, line, "out of memory");
        d->lines = p;
        d->line_cap = cap;
    }
    d->lines[d->line_count++] = (line_entry){node, line};
    return 0;
}

static int next_event(builder *b, yaml_event_t *ev)
{
    if (yaml_parser_parse(&b->parser, ev))
        return 0;
    const yaml_parser_t *p = &b->parser;
    int line = (int)p->problem_mark.line + 1;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return fail(b, line, "%s (%s)", problem, p->context);
    return fail(b, line, "%s", problem);
}

/* ---- scalars ---- */

static size_t span_digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* The core schema's decimal forms: [-+]? (.d+ | d+(.d*)?) ([eE][-+]?d+)? */
static int is_decimal(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t whole = span_digits(s);
    s += whole;
    size_t frac = 0;
    if (*s == '.') {
        s++;
        frac = span_digits(s);
        s += frac;
    }
    if (whole == 0 && frac == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        size_t exp = span_digits(s);
        if (exp == 0)
            return 0;
        s += exp;
    }
    return *s == '\0';
}

/* 0x1F and 0o17. Returns 1 and the value when `s` is one of them. */
static int parse_radix(const char *s, double *value)
{
    int base = 0;
    if (s[0] == '0' && s[1] == 'x')
        base = 16;
    else if (s[0] == '0' && s[1] == 'o')
        base = 8;
    if (!base || !s[2] || strchr("+- ", s[2]))
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s + 2, &end, base);
    if (*end || errno)
        return 0;
    *value = (double)v;
    return 1;
}

/* A number when the text reads as one. Out-of-range values (1e999) stay
 * strings: JSON has no infinity. .inf and .nan stay strings for the same
 * reason. */
static int parse_number(const char *s, double *value)
{
    if (parse_radix(s, value))
        return 1;
    if (!is_decimal(s))
        return 0;
    errno = 0;
    *value = strtod(s, NULL);
    return errno == 0;
}

static int is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return 1;
    return 0;
}

/* Resolves a plain scalar with the YAML 1.2 core schema. */
static cJSON *plain_scalar(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    double number;
    if (is_one_of(s, nulls))
        return cJSON_CreateNull();
    if (is_one_of(s, trues))
        return cJSON_CreateTrue();
    if (is_one_of(s, falses))
        return cJSON_CreateFalse();
    if (parse_number(s, &number))
        return cJSON_CreateNumber(number);
    return cJSON_CreateString(s);
}

/* Only `!!str` is honoured: the other tags would need a full YAML type
 * system that configuration never uses. */
static int scalar_is_plain(builder *b, const yaml_event_t *ev, int *plain)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, YAML_STR_TAG) != 0)
        return fail(b, event_line(ev), "unsupported tag '%s'", tag);
    *plain = !tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return 0;
}

static const char *no_env(void *data, const char *name)
{
    (void)data;
    (void)name;
    return NULL;
}

static int build_scalar(builder *b, const yaml_event_t *ev, cJSON **out)
{
    const char *raw = (const char *)ev->data.scalar.value;
    int line = event_line(ev), plain = 0;
    if (strlen(raw) != ev->data.scalar.length)
        return fail(b, line, "NUL character in a string");
    if (scalar_is_plain(b, ev, &plain))
        return -1;
    char *expanded = NULL;
    if (b->flags & PRISM_YAML_INTERPOLATE) {
        char msg[256];
        expanded = prism_interpolate(raw, (b->flags & PRISM_YAML_EMPTY_ENV) ? no_env : NULL, NULL, msg, sizeof msg);
        if (!expanded)
            return fail(b, line, "%s", msg);
    }
    const char *text = expanded ? expanded : raw;
    *out = plain ? plain_scalar(text) : cJSON_CreateString(text);
    free(expanded);
    return *out ? 0 : fail(b, line, "out of memory");
}

/* ---- collections ---- */

static int build_sequence(builder *b, int depth, cJSON *arr)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(b, &ev))
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        cJSON *item = NULL;
        int line = event_line(&ev);
        int rc = build_value(b, &ev, depth + 1, &item);
        yaml_event_delete(&ev);
        if (rc)
            return -1;
        cJSON_AddItemToArray(arr, item);
        if (remember(b, item, line))
            return -1;
    }
}

/* Reads a mapping key into a malloc'd string. Keys name structure (settings,
 * routes, plugins), so they are never interpolated nor typed. */
static int read_key(builder *b, const yaml_event_t *ev, const cJSON *obj, char **key)
{
    int line = event_line(ev);
    if (ev->type == YAML_ALIAS_EVENT)
        return fail(b, line, "aliases are not supported");
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(b, line, "mapping keys must be scalars");
    if (ev->data.scalar.anchor)
        return fail(b, line, "anchors are not supported");
    const char *text = (const char *)ev->data.scalar.value;
    if (strlen(text) != ev->data.scalar.length)
        return fail(b, line, "NUL character in a key");
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(obj, text);
    if (prev)
        return fail(b, line, "duplicate key '%s' (first at line %d)", text, prism_doc_line(b->doc, prev));
    *key = strdup(text);
    return *key ? 0 : fail(b, line, "out of memory");
}

/* Reads one key and its value. Returns 1 at the end of the mapping. */
static int build_member(builder *b, int depth, cJSON *obj)
{
    yaml_event_t ev;
    if (next_event(b, &ev))
        return -1;
    if (ev.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&ev);
        return 1;
    }
    char *key = NULL;
    /* A member's line is its key's: that is where a reader looks for it. */
    int line = event_line(&ev);
    int rc = read_key(b, &ev, obj, &key);
    yaml_event_delete(&ev);
    if (rc || next_event(b, &ev)) {
        free(key);
        return -1;
    }
    cJSON *value = NULL;
    rc = build_value(b, &ev, depth + 1, &value);
    yaml_event_delete(&ev);
    if (rc == 0 && !cJSON_AddItemToObject(obj, key, value)) {
        cJSON_Delete(value);
        rc = fail(b, line, "out of memory");
    }
    free(key);
    return rc ? -1 : remember(b, value, line);
}

static int build_mapping(builder *b, int depth, cJSON *obj)
{
    int rc;
    while ((rc = build_member(b, depth, obj)) == 0)
        ;
    return rc < 0 ? -1 : 0;
}

static int build_collection(builder *b, const yaml_event_t *ev, int depth, cJSON **out)
{
    int is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
    const yaml_char_t *anchor = is_seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
    if (anchor)
        return fail(b, event_line(ev), "anchors are not supported");
    if (depth > MAX_DEPTH)
        return fail(b, event_line(ev), "nesting deeper than %d levels", MAX_DEPTH);
    *out = is_seq ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!*out)
        return fail(b, event_line(ev), "out of memory");
    int rc = is_seq ? build_sequence(b, depth, *out) : build_mapping(b, depth, *out);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static int build_value(builder *b, const yaml_event_t *ev, int depth, cJSON **out)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return fail(b, event_line(ev), "anchors are not supported");
        return build_scalar(b, ev, out);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: return build_collection(b, ev, depth, out);
    case YAML_ALIAS_EVENT: return fail(b, event_line(ev), "aliases are not supported");
    default: return fail(b, event_line(ev), "unexpected YAML structure");
    }
}

/* ---- documents ---- */

/* Expects an event of `type`; `what` names it in the message. */
static int expect_event(builder *b, yaml_event_type_t type, const char *what, int *line)
{
    yaml_event_t ev;
    if (next_event(b, &ev))
        return -1;
    int ok = ev.type == type;
    *line = event_line(&ev);
    yaml_event_delete(&ev);
    return ok ? 0 : fail(b, *line, "%s", what);
}

/* The root of the one document. A missing or empty document is an empty
 * object, so callers can treat "nothing configured" like "{}". */
static int build_root(builder *b, const yaml_event_t *ev)
{
    int line = event_line(ev);
    if (build_value(b, ev, 0, &b->doc->root))
        return -1;
    if (cJSON_IsNull(b->doc->root)) {
        cJSON_Delete(b->doc->root);
        b->doc->root = cJSON_CreateObject();
        return b->doc->root ? 0 : fail(b, line, "out of memory");
    }
    return remember(b, b->doc->root, line);
}

static int build_document(builder *b)
{
    yaml_event_t ev;
    int line;
    if (expect_event(b, YAML_STREAM_START_EVENT, "expected a YAML stream", &line) || next_event(b, &ev))
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        b->doc->root = cJSON_CreateObject();
        return b->doc->root ? 0 : fail(b, 1, "out of memory");
    }
    yaml_event_delete(&ev);
    if (next_event(b, &ev))
        return -1;
    int rc = build_root(b, &ev);
    yaml_event_delete(&ev);
    if (rc || expect_event(b, YAML_DOCUMENT_END_EVENT, "expected the end of the document", &line))
        return -1;
    return expect_event(b, YAML_STREAM_END_EVENT, "multiple documents are not supported", &line);
}

static prism_doc *doc_new(const char *name)
{
    prism_doc *doc = calloc(1, sizeof *doc);
    if (!doc)
        return NULL;
    doc->name = strdup(name);
    if (!doc->name) {
        free(doc);
        return NULL;
    }
    return doc;
}

int prism_yaml_parse(const char *text, size_t len, const char *name, int flags, prism_doc **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    builder b = {.flags = flags, .err = err, .errlen = errlen};
    b.doc = doc_new(name);
    if (!b.doc || !yaml_parser_initialize(&b.parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        prism_doc_free(b.doc);
        return -1;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
    int rc = build_document(&b);
    yaml_parser_delete(&b.parser);
    if (rc) {
        prism_doc_free(b.doc);
        return -1;
    }
    *out = b.doc;
    return 0;
}

/* Reads a whole file into a malloc'd buffer. */
static char *read_file(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= MAX_FILE_BYTES)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    *len = n;
    return buf;
}

int prism_yaml_load(const char *path, int flags, prism_doc **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t len;
    char *text = read_file(f, &len);
    int bad = !text || ferror(f) || len >= MAX_FILE_BYTES;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, text ? "cannot read the file (or it is too large)" : "out of memory");
        free(text);
        return -1;
    }
    int rc = prism_yaml_parse(text, len, path, flags, out, err, errlen);
    free(text);
    return rc;
}

const cJSON *prism_doc_root(const prism_doc *doc)
{
    return doc->root;
}

int prism_doc_line(const prism_doc *doc, const cJSON *node)
{
    for (size_t i = 0; i < doc->line_count; i++)
        if (doc->lines[i].node == node)
            return doc->lines[i].line;
    return 0;
}

const char *prism_doc_name(const prism_doc *doc)
{
    return doc->name;
}

void prism_doc_free(prism_doc *doc)
{
    if (!doc)
        return;
    cJSON_Delete(doc->root);
    free(doc->lines);
    free(doc->name);
    free(doc);
}

int prism_doc_vfail(const prism_doc *doc, const cJSON *node, char *err, size_t errlen, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line = node ? prism_doc_line(doc, node) : 0;
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", prism_doc_name(doc), line, msg);
    else
        snprintf(err, errlen, "%s: %s", prism_doc_name(doc), msg);
    return -1;
}
