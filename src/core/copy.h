/*
 * copy.h - copying the few bytes most strings are. A memcpy call costs more
 * than the copy for a key or a short value; two overlapping words do it
 * with no call. Shared by the JSON printer and the tree builder.
 */
#ifndef PRISM_COPY_H
#define PRISM_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void prism_copy_bytes(char *d, const char *s, size_t n)
{
    if (n >= 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

#endif
