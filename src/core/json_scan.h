/*
 * json_scan.h - a request body's top level, read without building a tree.
 *
 * Routing a request needs a handful of its top-level fields (model, stream,
 * how many messages). cJSON builds a node, and copies every string, for the
 * whole body to give them: about 19 instructions a byte, which made the
 * body's size the largest cost of a pass-through request. The scan checks
 * the whole text (RFC 8259 and UTF-8) with simdjson, which allocates
 * nothing per value, and keeps only the members of the top-level object and
 * of its object members (docs/decisions/0006-simdjson-scan.md).
 *
 * This is the one C++ file of the core: simdjson is a C++ library. The
 * interface is C, and nothing crosses it but plain data.
 */
#ifndef PRISM_JSON_SCAN_H
#define PRISM_JSON_SCAN_H

#include <stddef.h>

#include "prism/plugin.h" /* prism_json_field */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct prism_json_scanner prism_json_scanner; /* one per worker: its buffers are reused */

/* One member of the top-level object, or of one of its object members. */
typedef struct prism_json_member {
    const char *key; /* NUL-terminated */
    size_t key_len;
    long parent; /* index of the member whose object holds it; -1: the top level */
    prism_json_field value;
} prism_json_member;

typedef enum prism_scan_result {
    PRISM_SCAN_OBJECT = 0, /* members filled in */
    PRISM_SCAN_OTHER,      /* valid JSON, not an object */
    PRISM_SCAN_INVALID,    /* not JSON: syntax, UTF-8, control characters, nesting past 1000 */
    PRISM_SCAN_UNSURE,     /* a number simdjson does not hold (an integer past 64 bits, 1e400): cJSON decides */
    PRISM_SCAN_NOMEM,
} prism_scan_result;

/* Where the members and their strings go: the request's pool. */
typedef void *(*prism_scan_alloc)(void *pool, size_t size);

prism_json_scanner *prism_json_scanner_new(void);
void prism_json_scanner_free(prism_json_scanner *s);

/* Scans len bytes of text. On PRISM_SCAN_OBJECT, *members (from alloc) and
 * *count describe the top-level members in order, each object member
 * followed by its own members (parent set), whose values are described but
 * not descended into. *serial names this reading of the text for
 * prism_json_tree (0: none to reuse). */
prism_scan_result prism_json_scan(prism_json_scanner *s, const char *text, size_t len, prism_scan_alloc alloc,
                                  void *pool, prism_json_member **members, size_t *count, unsigned long *serial);

/* The text as a cJSON tree, built from simdjson's reading of it: strings
 * come unescaped with their lengths and numbers converted, so building the
 * nodes is most of the cost (about half of cJSON's own parse). serial, from
 * a prism_json_scan of the same text, saves reading it again when the
 * scanner has read nothing since. NULL with *unsure set when simdjson
 * refused the text or memory ran out: cJSON then decides, since it accepts
 * a few texts simdjson does not (01, 1e400, raw control characters in
 * strings), and a tree must come out the same either way. With alloc NULL
 * the tree is cJSON's to free (cJSON_Delete); otherwise its nodes and
 * strings come from alloc and go with the pool: a tree to read, which
 * cJSON_Delete must never see. */
cJSON *prism_json_tree(prism_json_scanner *s, const char *text, size_t len, unsigned long serial,
                       prism_scan_alloc alloc, void *pool, int *unsure);

/* Reads a few fields of a small JSON object without building a tree (a
 * stream's most frequent events): got[i] describes the member want[i]
 * names, as prism_json_scan describes one, its string unescaped and
 * NUL-terminated in the scanner's own buffers, valid until the scanner
 * reads again. 0, or -1 (got all absent) when the text is not one JSON
 * object simdjson reads, or is one the tree reads differently: a tree then
 * decides. */
int prism_json_pick(prism_json_scanner *s, const char *text, size_t len, const prism_json_want *want,
                    prism_json_field *got, size_t n);

#ifdef __cplusplus
}
#endif

#endif
