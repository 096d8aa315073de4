/*
 * translate_print.c - printing the JSON this plugin builds, faster.
 *
 * cJSON prints every number with sprintf("%1.15g"), parses it back with
 * sscanf to check the round trip, and often prints it again with "%1.17g":
 * a few thousand instructions per number, and a chat completion carries
 * half a dozen (created, index, token counts) in every response and every
 * streamed chunk. Integral values are written here instead: each becomes a
 * raw node holding its digits for the length of the print, then a number
 * again, so the tree is the same before and after. Only trees owned by the
 * calling request may be printed this way (the marking writes to them).
 */
#include "translate.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Up to 15 digits cJSON's "%1.15g" prints an integer as plain digits, so the
 * text is byte for byte what cJSON would write; longer ones are left to it. */
#define MAX_PLAIN  999999999999999.0
#define INT_CHARS  24
#define STACK_INTS 32

static int is_integral(const cJSON *n)
{
    double d = n->valuedouble;
    return cJSON_IsNumber(n) && d >= -MAX_PLAIN && d <= MAX_PLAIN && d == (double)(long long)d &&
           !(d == 0 && signbit(d));
}

static size_t count_ints(const cJSON *node)
{
    size_t n = is_integral(node);
    for (const cJSON *c = node->child; c != NULL; c = c->next)
        n += count_ints(c);
    return n;
}

static char *write_int(char *out, long long v)
{
    char digits[INT_CHARS];
    size_t i = sizeof(digits);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        digits[--i] = '-';
    size_t n = sizeof(digits) - i;
    for (size_t k = 0; k < n; k++)
        out[k] = digits[i + k];
    out[n] = '\0';
    return out + n + 1;
}

static void mark(cJSON *node, char **next)
{
    if (is_integral(node)) {
        node->valuestring = *next;
        *next = write_int(*next, (long long)node->valuedouble);
        node->type = (node->type & ~0xFF) | cJSON_Raw;
    }
    for (cJSON *c = node->child; c != NULL; c = c->next)
        mark(c, next);
}

static void unmark(cJSON *node, uintptr_t lo, uintptr_t hi)
{
    uintptr_t s = (uintptr_t)node->valuestring;
    if (cJSON_IsRaw(node) && s >= lo && s < hi) {
        node->valuestring = NULL;
        node->type = (node->type & ~0xFF) | cJSON_Number;
    }
    for (cJSON *c = node->child; c != NULL; c = c->next)
        unmark(c, lo, hi);
}

char *claude_json_print(const cJSON *item)
{
    if (item == NULL)
        return NULL;
    cJSON *root = (cJSON *)item; /* restored before returning */
    size_t n = count_ints(root);
    if (n == 0)
        return cJSON_PrintUnformatted(root);
    char stack[STACK_INTS * INT_CHARS];
    char *buf = n <= STACK_INTS ? stack : malloc(n * INT_CHARS);
    if (buf == NULL)
        return cJSON_PrintUnformatted(root);
    char *next = buf;
    mark(root, &next);
    char *text = cJSON_PrintUnformatted(root);
    unmark(root, (uintptr_t)buf, (uintptr_t)(buf + n * INT_CHARS));
    if (buf != stack)
        free(buf);
    return text;
}
