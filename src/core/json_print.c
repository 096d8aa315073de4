/*
 * json_print.c - a cJSON tree to unformatted JSON text, in one buffer.
 *
 * The text is what cJSON_PrintUnformatted writes (the same escapes, the
 * same number forms), except that no number is rounded (put_number), at a
 * fraction of the cost. cJSON measures each string twice, prints every
 * number with sprintf and reads it back with sscanf, and copies the
 * finished text once more; on the Claude translation path, which prints a
 * request and a response per call and a chunk per streamed event, that was
 * a fifth of a request's instructions (docs/BENCHMARKS.md). Here integral
 * numbers are written digit by digit, plain runs of a string are copied
 * whole, and the buffer is handed over as it is.
 *
 * The same writer is also open to plugins as prism_json_writer: a
 * translation that knows its output's shape writes it straight to text,
 * with no tree to build, print and free (the Claude provider's answers).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "json_print.h"

#include "copy.h"
#include "grow.h"
#include "prism/plugin.h"

typedef struct out {
    char *buf;
    size_t len, cap;
    int failed;
} out;

static int grow_for(out *o, size_t n)
{
    if (o->failed)
        return -1;
    if (n > SIZE_MAX / 2 - o->len || prism_grow(&o->buf, &o->cap, o->len + n + 1, 256) != 0) {
        free(o->buf); /* from here on every write is refused: cap - len is 0 */
        *o = (out){NULL, 0, 0, 1};
        return -1;
    }
    return 0;
}

/* Room for n more bytes and the final NUL; 0, or -1 once memory ran out. */
static inline int room(out *o, size_t n)
{
    return n < o->cap - o->len ? 0 : grow_for(o, n);
}

static inline void put(out *o, const char *s, size_t n)
{
    if (room(o, n) == 0) {
        prism_copy_bytes(o->buf + o->len, s, n);
        o->len += n;
    }
}

static inline void put_char(out *o, char c)
{
    if (room(o, 1) == 0)
        o->buf[o->len++] = c;
}

/* 1 for the bytes a JSON string cannot hold as they are: '"', '\\' and the
 * control characters. Bytes from 0x80 up pass through, as cJSON leaves them. */
static int needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch == '"' || ch == '\\';
}

#ifdef __SSE2__
/* Sixteen bytes at a time (SSE2 is part of x86-64): a bit per byte that is
 * below 0x20, a quote or a backslash (or, with ascii_only, 0x80 or above). */
static inline unsigned stop_mask(__m128i x, int ascii_only)
{
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
    __m128i quote = _mm_cmpeq_epi8(x, _mm_set1_epi8('"')), bslash = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(quote, bslash)));
    return ascii_only ? mask | (unsigned)_mm_movemask_epi8(x) : mask;
}

/* Strings shorter than a register are read as two overlapping halves (the
 * first and the last 8 or 4 bytes), so no byte outside the string is read
 * and the first stop found is exact. */
__attribute__((always_inline)) static inline size_t plain_run(const char *s, size_t n, int ascii_only)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n >= 16) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), ascii_only);
            if (m != 0)
                return i + (size_t)__builtin_ctz(m);
        }
        if (i == n)
            return n;
        /* The last 16 bytes: those before i are known to pass. */
        unsigned m = stop_mask(_mm_loadu_si128((const __m128i *)(const void *)(p + n - 16)), ascii_only);
        return m != 0 ? n - 16 + (size_t)__builtin_ctz(m) : n;
    }
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
        unsigned m = stop_mask(_mm_set_epi64x((long long)b, (long long)a), ascii_only);
        if (m == 0)
            return n;
        return (m & 0xff) != 0 ? (size_t)__builtin_ctz(m) : n - 8 + (size_t)__builtin_ctz(m >> 8);
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        unsigned m = stop_mask(_mm_set_epi32(0, 0, (int)b, (int)a), ascii_only) & 0xff;
        if (m == 0)
            return n;
        return (m & 0xf) != 0 ? (size_t)__builtin_ctz(m) : n - 4 + (size_t)__builtin_ctz(m >> 4);
    }
    size_t i = 0;
    while (i < n && !needs_escape(p[i]) && !(ascii_only && p[i] >= 0x80))
        i++;
    return i;
}
#else
/* Eight bytes at a time while none of them is below 0x20, a quote or a
 * backslash (or, with ascii_only, 0x80 or above): the usual bit tricks for
 * "some byte is less than" and "some byte equals", exact about whether
 * there is one. Then byte by byte. */
static int word_needs_escape(uint64_t x, uint64_t stop_high)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((x - ones * 0x20) & ~x & highs) | ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs) |
            (x & stop_high)) != 0;
}

static inline size_t plain_run(const char *s, size_t n, int ascii_only)
{
    const unsigned char *p = (const unsigned char *)s;
    const uint64_t stop_high = ascii_only ? 0x8080808080808080ull : 0;
    size_t i = 0;
    uint64_t x;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, p + i, 8);
        if (word_needs_escape(x, stop_high))
            break;
    }
    if (i >= 8 && i < n && i + 8 > n) {
        /* The last few bytes, in the word that ends with them (its first
         * bytes were already checked): most strings end here in one step. */
        memcpy(&x, p + n - 8, 8);
        if (!word_needs_escape(x, stop_high))
            return n;
    }
    while (i < n && !needs_escape(p[i]) && !(ascii_only && p[i] >= 0x80))
        i++;
    return i;
}
#endif

size_t prism_json_plain_run(const char *s, size_t n, int ascii_only)
{
    return plain_run(s, n, ascii_only);
}

static void put_escaped(out *o, unsigned char ch)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (ch) {
    case '"': e[1] = '"'; break;
    case '\\': e[1] = '\\'; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default:
        memcpy(e + 1, "u00", 3);
        e[4] = hex[ch >> 4];
        e[5] = hex[ch & 15];
        n = 6;
    }
    put(o, e, n);
}

/* The n bytes at s, escaped, without the quotes: the slow way, for a
 * string with something to escape. */
static void put_escaped_string(out *o, const char *s, size_t n)
{
    while (n > 0 && !o->failed) {
        size_t k = plain_run(s, n, 0);
        put(o, s, k);
        if (k == n)
            break;
        put_escaped(o, (unsigned char)s[k]);
        s += k + 1;
        n -= k + 1;
    }
}

/* The string in quotes, then `after` when it is not NUL (a key's colon).
 * Most strings have nothing to escape: one reservation, one copy. */
static inline void put_quoted(out *o, const char *s, size_t n, char after)
{
    if (room(o, n + 3) != 0)
        return;
    if (plain_run(s, n, 0) == n) {
        char *d = o->buf + o->len;
        d[0] = '"';
        prism_copy_bytes(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = after;
        o->len += n + 2 + (after != '\0');
        return;
    }
    o->buf[o->len++] = '"';
    put_escaped_string(o, s, n);
    put_char(o, '"');
    if (after != '\0')
        put_char(o, after);
}

static void put_string(out *o, const char *s)
{
    put_quoted(o, s, s != NULL ? strlen(s) : 0, '\0');
}

/* Numbers keep their exact value. Integral ones below 2^63 are written as
 * digits (cJSON switches to "%1.15g" past 15 digits and rounds: a 64-bit seed
 * or a tool argument's id would change on the way through). Others get the
 * fewest significant digits, 15 to 17, that read back as the same double;
 * cJSON stops at 15 when they come within an epsilon. Negative zero stays
 * "-0", as cJSON writes it. NaN and infinities
 * have no JSON form: null, as cJSON writes. */
#define TWO_63 9223372036854775808.0

/* Most fractional numbers in requests are short decimals, 0.7 or 0.95: if
 * r / 10^k reads back as d for some k, with r integral and under 10^15, then
 * "%1.15g" would write r's digits with k decimals, and so does this, for a
 * tenth of sprintf's and strtod's cost. Why it is exact: r and 10^k are
 * exact doubles, so the division rounds r/10^k once, as strtod rounds the
 * decimal r/10^k once; and r/10^k, being within half an ulp of d, is what d
 * rounds to at 15 digits. The smallest such k leaves r no trailing zero, as
 * %g trims. Only for 1e-4 <= |d|, where %g writes no exponent. */
static int put_short_decimal(out *o, double d)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e14))
        return 0;
    for (int k = 1; k < 15; k++) {
        double r = nearbyint(a * p10[k]);
        if (r >= 1e15)
            return 0;
        if (r / p10[k] != a)
            continue;
        char text[40];
        size_t i = sizeof(text);
        unsigned long long u = (unsigned long long)r;
        for (int j = 0; j < k; j++, u /= 10) /* the k decimals, */
            text[--i] = (char)('0' + u % 10);
        text[--i] = '.';
        do /* then the integral part, "0" at least */
            text[--i] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (d < 0)
            text[--i] = '-';
        put(o, text + i, sizeof(text) - i);
        return 1;
    }
    return 0;
}

static void put_number(out *o, double d)
{
    char text[32];
    if (isnan(d) || isinf(d)) {
        put(o, "null", 4);
        return;
    }
    if (d > -TWO_63 && d < TWO_63 && d == (double)(long long)d && !(d == 0 && signbit(d))) {
        long long v = (long long)d;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        size_t i = sizeof(text);
        do {
            text[--i] = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (v < 0)
            text[--i] = '-';
        put(o, text + i, sizeof(text) - i);
        return;
    }
    if (put_short_decimal(o, d))
        return;
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(text, sizeof(text), "%1.*g", digits, d);
        if (strtod(text, NULL) == d)
            break;
    }
    put(o, text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : strlen(text));
}

static void put_value(out *o, const cJSON *item);

static void put_children(out *o, const cJSON *item, int object)
{
    put_char(o, object ? '{' : '[');
    for (const cJSON *c = item->child; c != NULL && !o->failed; c = c->next) {
        if (c != item->child)
            put_char(o, ',');
        if (object)
            put_quoted(o, c->string, c->string != NULL ? strlen(c->string) : 0, ':');
        put_value(o, c);
    }
    put_char(o, object ? '}' : ']');
}

static void put_value(out *o, const cJSON *item)
{
    switch (item->type & 0xFF) {
    case cJSON_False: put(o, "false", 5); break;
    case cJSON_True: put(o, "true", 4); break;
    case cJSON_NULL: put(o, "null", 4); break;
    case cJSON_Number: put_number(o, item->valuedouble); break;
    case cJSON_String: put_string(o, item->valuestring); break;
    case cJSON_Array: put_children(o, item, 0); break;
    case cJSON_Object: put_children(o, item, 1); break;
    case cJSON_Raw:
        if (item->valuestring == NULL)
            grow_for(o, SIZE_MAX); /* fails: nothing more is written */
        else
            put(o, item->valuestring, strlen(item->valuestring));
        break;
    default: grow_for(o, SIZE_MAX); /* cJSON_Invalid: cJSON refuses to print it too */
    }
}

char *prism_json_print(const cJSON *item, size_t *len)
{
    out o = {NULL, 0, 0, 0};
    if (item == NULL)
        return NULL;
    put_value(&o, item);
    if (room(&o, 0) != 0)
        return NULL; /* the buffer went when the failure came */
    o.buf[o.len] = '\0';
    if (len != NULL)
        *len = o.len;
    return o.buf;
}

/* ---- the streaming writer ---- */

struct prism_json_writer {
    out o;
    int comma; /* a value ends the text so far at this level: the next one needs a ',' */
    int depth; /* open objects and arrays, so an unbalanced text is refused */
    int in_string;
};

prism_json_writer *prism_json_writer_new(void)
{
    return calloc(1, sizeof(prism_json_writer));
}

void prism_json_writer_free(prism_json_writer *w)
{
    if (w != NULL)
        free(w->o.buf);
    free(w);
}

char *prism_json_writer_finish(prism_json_writer *w, size_t *len)
{
    if (w == NULL)
        return NULL;
    char *text = NULL;
    if (w->depth == 0 && !w->in_string && w->o.len > 0 && room(&w->o, 0) == 0) {
        text = w->o.buf;
        text[w->o.len] = '\0';
        if (len != NULL)
            *len = w->o.len;
        w->o.buf = NULL;
    }
    prism_json_writer_free(w);
    return text;
}

const char *prism_json_writer_text(prism_json_writer *w, size_t *len)
{
    if (w == NULL || w->depth != 0 || w->in_string || w->o.len == 0 || room(&w->o, 0) != 0)
        return NULL;
    w->o.buf[w->o.len] = '\0';
    if (len != NULL)
        *len = w->o.len;
    return w->o.buf;
}

void prism_json_writer_clear(prism_json_writer *w)
{
    if (w != NULL)
        *w = (prism_json_writer){.o = {w->o.buf, 0, w->o.cap, 0}};
}

/* Before any value or key: the separator its level needs. A second value
 * at the top would make the text two values: refused. */
static inline void next_item(prism_json_writer *w)
{
    if (w->comma) {
        if (w->depth == 0)
            grow_for(&w->o, SIZE_MAX);
        put_char(&w->o, ',');
    }
    w->comma = 1;
}

static void open_level(prism_json_writer *w, char c)
{
    next_item(w);
    put_char(&w->o, c);
    w->comma = 0;
    w->depth++;
}

static void close_level(prism_json_writer *w, char c)
{
    if (w->depth-- <= 0)
        grow_for(&w->o, SIZE_MAX); /* more closed than opened: the text is refused */
    put_char(&w->o, c);
    w->comma = 1;
}

void prism_json_object_begin(prism_json_writer *w)
{
    open_level(w, '{');
}
void prism_json_object_end(prism_json_writer *w)
{
    close_level(w, '}');
}
void prism_json_array_begin(prism_json_writer *w)
{
    open_level(w, '[');
}
void prism_json_array_end(prism_json_writer *w)
{
    close_level(w, ']');
}

void prism_json_raw_key(prism_json_writer *w, const char *quoted, size_t len)
{
    next_item(w);
    put(&w->o, quoted, len);
    w->comma = 0;
}

void prism_json_raw(prism_json_writer *w, const char *json, size_t len)
{
    next_item(w);
    put(&w->o, json, len);
}

void prism_json_key(prism_json_writer *w, const char *key, size_t len)
{
    next_item(w);
    put_quoted(&w->o, key, len, ':');
    w->comma = 0;
}

void prism_json_string(prism_json_writer *w, const char *s, size_t len)
{
    if (s == NULL) {
        prism_json_null(w);
        return;
    }
    next_item(w);
    put_quoted(&w->o, s, len, '\0');
}

void prism_json_string_begin(prism_json_writer *w)
{
    next_item(w);
    put_char(&w->o, '"');
    w->in_string = 1;
}

void prism_json_string_part(prism_json_writer *w, const char *s, size_t len)
{
    if (!w->in_string)
        grow_for(&w->o, SIZE_MAX); /* a part outside a string would break the text */
    put_escaped_string(&w->o, s, len);
}

void prism_json_string_end(prism_json_writer *w)
{
    if (!w->in_string)
        grow_for(&w->o, SIZE_MAX); /* no string to end */
    put_char(&w->o, '"');
    w->in_string = 0;
}

void prism_json_number(prism_json_writer *w, double d)
{
    next_item(w);
    put_number(&w->o, d);
}

void prism_json_bool(prism_json_writer *w, int b)
{
    next_item(w);
    if (b)
        put(&w->o, "true", 4);
    else
        put(&w->o, "false", 5);
}

void prism_json_null(prism_json_writer *w)
{
    next_item(w);
    put(&w->o, "null", 4);
}

void prism_json_value(prism_json_writer *w, const cJSON *tree)
{
    next_item(w);
    if (tree == NULL)
        grow_for(&w->o, SIZE_MAX);
    else
        put_value(&w->o, tree);
}
