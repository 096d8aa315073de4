/*
 * picker.h - the Claude provider's way of reading a stream's content
 * deltas without a tree, on the core's scanner as a worker's scratch uses
 * it, counting the events it read (test_claude_stream.c,
 * test_claude_responses.c). Include after cmocka.h.
 */
#ifndef PRISM_TEST_PICKER_H
#define PRISM_TEST_PICKER_H

#include <stdlib.h>

#include "json_scan.h"

typedef struct picker {
    prism_json_scanner *scanner;
    unsigned picked;
} picker;

static inline picker *picker_new(void)
{
    picker *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    k->scanner = prism_json_scanner_new();
    assert_non_null(k->scanner);
    return k;
}

static inline void picker_free(picker *k)
{
    if (k != NULL)
        prism_json_scanner_free(k->scanner);
    free(k);
}

/* A claude_pick_fn; data is the picker. */
static inline int pick_with(void *data, const char *text, size_t len, const prism_json_want *want,
                            prism_json_field *got, size_t n)
{
    picker *k = data;
    int r = prism_json_pick(k->scanner, text, len, want, got, n);
    k->picked += r == 0;
    return r;
}

#endif
