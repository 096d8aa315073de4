/*
 * libFuzzer target: any bytes as a request body, read three ways. The scan
 * (json_scan.h) and the tree built from simdjson's reading must agree with
 * cJSON's own parse of the same text: a tree, when there is one, prints and
 * nests exactly like cJSON's, whether cJSON's allocator or a pool made it; the scan's members are the tree's; and a
 * text the scan calls invalid is one cJSON refuses too, unless its bytes alone are wrong (broken UTF-8, raw control
 * characters, tabs and newlines included, inside a string) or it has a \u escape (cJSON reads "\u00e?" as an empty
 * string): cJSON lets those by.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct arena {
    void *blocks[1 << 16];
    size_t n;
} arena;

static void *arena_alloc(void *pool, size_t size)
{
    arena *a = pool;
    return a->n == sizeof(a->blocks) / sizeof(a->blocks[0]) ? NULL : (a->blocks[a->n++] = malloc(size));
}

/* cJSON's verdict on the whole text, as the context reads a body. */
static cJSON *cjson_whole(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    for (size_t i = j ? (size_t)(end - text) : len; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            cJSON_Delete(j);
            return NULL;
        }
    return j;
}

static int bytes_clean(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) /* printable ASCII: cJSON lets a raw tab or newline by in a string */
        if (p[i] >= 0x80 || p[i] < 0x20)
            return 0;
    return 1;
}

static void same_print(const cJSON *a, const cJSON *b)
{
    char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
    if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
        __builtin_trap();
    cJSON_free(x);
    cJSON_free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static prism_json_scanner *scanner;
    static arena a;
    if (scanner == NULL && (scanner = prism_json_scanner_new()) == NULL)
        return 0;
    const char *text = (const char *)data;
    cJSON *theirs = cjson_whole(text, size);
    prism_json_member *m = NULL;
    size_t n = 0;
    unsigned long serial = 0;
    prism_scan_result r = prism_json_scan(scanner, text, size, arena_alloc, &a, &m, &n, &serial);
    int unsure = 0;
    cJSON *ours = prism_json_tree(scanner, text, size, serial, NULL, NULL, &unsure);
    if (ours != NULL) {
        if (theirs == NULL) /* simdjson read a text cJSON refuses */
            __builtin_trap();
        same_print(ours, theirs);
        /* The same tree in a pool (freed below, block by block, never by cJSON). */
        cJSON *pooled = prism_json_tree(scanner, text, size, 0, arena_alloc, &a, &unsure);
        if (pooled == NULL || unsure)
            __builtin_trap();
        same_print(pooled, theirs);
    } else if (!unsure) {
        __builtin_trap();
    }
    if (r == PRISM_SCAN_OBJECT) {
        if (!cJSON_IsObject(theirs))
            __builtin_trap();
        size_t top = 0;
        for (size_t i = 0; i < n; i++)
            top += m[i].parent == -1;
        if (top != (size_t)cJSON_GetArraySize(theirs))
            __builtin_trap();
    } else if (r == PRISM_SCAN_INVALID && theirs != NULL && bytes_clean(data, size) &&
               memmem(data, size, "\\u", 2) == NULL) {
        __builtin_trap(); /* refused what cJSON reads, for no reason in the bytes */
    }
    cJSON_Delete(ours);
    cJSON_Delete(theirs);
    while (a.n > 0)
        free(a.blocks[--a.n]);
    return 0;
}
