/*
 * grow.c - see grow.h. Doubling keeps appends amortised O(1) without
 * guessing final sizes; small first capacities keep idle queues cheap.
 */
#include "grow.h"

#include <stdlib.h>

int prism_grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : first;
    while (n < need) {
        n *= 2;
    }
    char *p = realloc(*buf, n);
    if (!p) {
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}
