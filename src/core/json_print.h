/*
 * json_print.h - what the core's other JSON writers share with
 * prism_json_print (declared for plugins in prism/plugin.h).
 */
#ifndef PRISM_JSON_PRINT_H
#define PRISM_JSON_PRINT_H

#include <stddef.h>

/* How many of the n bytes at s can go into a JSON string as they are: up to
 * the first control character, quote or backslash, and with ascii_only also
 * the first byte of 0x80 or above (for writers that check UTF-8 there). */
size_t prism_json_plain_run(const char *s, size_t n, int ascii_only);

#endif
