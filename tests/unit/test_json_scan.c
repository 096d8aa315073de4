/*
 * test_json_scan.c - the body's top level read by simdjson (json_scan.h):
 * the members and their descriptions, what counts as invalid, what is left
 * to cJSON, and trees that print exactly as cJSON's own would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

/* Allocations for one scan, freed together (the request pool's role). */
typedef struct arena {
    void *blocks[4096];
    size_t n;
} arena;

static void *arena_alloc(void *pool, size_t size)
{
    arena *a = pool;
    if (a->n == sizeof(a->blocks) / sizeof(a->blocks[0]))
        return NULL;
    return a->blocks[a->n++] = malloc(size);
}

static void arena_free(arena *a)
{
    while (a->n > 0)
        free(a->blocks[--a->n]);
}

static prism_scan_result scan(prism_json_scanner *s, arena *a, const char *text, prism_json_member **m, size_t *n)
{
    unsigned long serial;
    return prism_json_scan(s, text, strlen(text), arena_alloc, a, m, n, &serial);
}

static const prism_json_member *find(const prism_json_member *m, size_t n, long parent, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].parent == parent && strcmp(m[i].key, key) == 0)
            return &m[i];
    return NULL;
}

static void test_members(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    arena a = {0};
    prism_json_member *m;
    size_t n;
    const char *body = "{\"model\":\"gpt-4o\\u00e9\",\"messages\":[{\"role\":\"user\"},{},[]],\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":false,\"x\":{\"deep\":1}},\"n\":-2.5e1,\"user\":null,"
                       "\"model\":\"second\"}";
    assert_int_equal(scan(s, &a, body, &m, &n), PRISM_SCAN_OBJECT);
    assert_int_equal(n, 9); /* seven top-level members, two inside stream_options, none deeper */
    const prism_json_member *model = find(m, n, -1, "model");
    assert_non_null(model);
    assert_int_equal(model->value.type, PRISM_JSON_STRING);
    assert_string_equal(model->value.string, "gpt-4o\xc3\xa9"); /* unescaped */
    assert_int_equal(model->value.len, 8);
    assert_string_equal(m[n - 1].key, "model"); /* both occurrences kept, in order */
    assert_string_equal(m[n - 1].value.string, "second");
    const prism_json_member *msgs = find(m, n, -1, "messages");
    assert_int_equal(msgs->value.type, PRISM_JSON_ARRAY);
    assert_int_equal(msgs->value.count, 3);
    assert_int_equal(find(m, n, -1, "stream")->value.type, PRISM_JSON_TRUE);
    const prism_json_member *opts = find(m, n, -1, "stream_options");
    assert_int_equal(opts->value.type, PRISM_JSON_OBJECT);
    assert_int_equal(opts->value.count, 2);
    long at = (long)(opts - m);
    assert_int_equal(find(m, n, at, "include_usage")->value.type, PRISM_JSON_FALSE);
    assert_int_equal(find(m, n, at, "x")->value.type, PRISM_JSON_OBJECT);
    assert_null(find(m, n, -1, "include_usage")); /* nested names stay under their parent */
    assert_null(find(m, n, at, "deep"));          /* and only one level down */
    assert_true(find(m, n, -1, "n")->value.number == -25.0);
    assert_int_equal(find(m, n, -1, "user")->value.type, PRISM_JSON_NULL);
    arena_free(&a);
    prism_json_scanner_free(s);
}

static void test_verdicts(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    arena a = {0};
    prism_json_member *m;
    size_t n;
    static const struct {
        const char *text;
        prism_scan_result want;
    } cases[] = {
        {"[1,2]", PRISM_SCAN_OTHER},
        {"\"x\"", PRISM_SCAN_OTHER},
        {"{}", PRISM_SCAN_OBJECT},
        {" {\"a\":1} \n", PRISM_SCAN_OBJECT},
        {"\xef\xbb\xbf{\"a\":1}", PRISM_SCAN_OBJECT}, /* a byte order mark, as cJSON allows */
        {"{\"a\":\"\\u00e?\"}", PRISM_SCAN_INVALID},  /* a broken escape cJSON reads as "" */
        {"", PRISM_SCAN_INVALID},
        {"{\"a\":1} x", PRISM_SCAN_INVALID}, /* trailing bytes */
        {"{\"a\":1}{}", PRISM_SCAN_INVALID}, /* two values */
        {"{\"a\":1,}", PRISM_SCAN_INVALID},
        {"{\"a\" 1}", PRISM_SCAN_INVALID},
        {"{\"a\":\"\x01\"}", PRISM_SCAN_INVALID},         /* raw control character */
        {"{\"a\":\"\xc3\x28\"}", PRISM_SCAN_INVALID},     /* broken UTF-8 */
        {"{\"a\":\"\xed\xa0\x80\"}", PRISM_SCAN_INVALID}, /* an encoded surrogate */
        {"{\"a\":tru}", PRISM_SCAN_INVALID},
        {"{\"a\":01}", PRISM_SCAN_UNSURE}, /* cJSON reads these */
        {"{\"a\":1e400}", PRISM_SCAN_UNSURE},
        {"{\"a\":123456789012345678901234567890}", PRISM_SCAN_UNSURE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        prism_scan_result r = scan(s, &a, cases[i].text, &m, &n);
        if (r != cases[i].want)
            fail_msg("%s: %d, expected %d", cases[i].text, r, cases[i].want);
    }
    arena_free(&a);
    prism_json_scanner_free(s);
}

/* Nesting: what cJSON refuses for depth, the scan refuses too. */
static void test_depth(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    arena a = {0};
    prism_json_member *m;
    size_t n;
    for (size_t depth = 998; depth <= 1002; depth++) {
        char *text = malloc(2 * depth + 8);
        size_t k = 0;
        text[k++] = '{';
        text[k++] = '"', text[k++] = 'a', text[k++] = '"', text[k++] = ':';
        for (size_t i = 1; i < depth; i++)
            text[k++] = '[';
        for (size_t i = 1; i < depth; i++)
            text[k++] = ']';
        text[k++] = '}';
        text[k] = '\0';
        cJSON *j = cJSON_Parse(text);
        prism_scan_result r = scan(s, &a, text, &m, &n);
        if ((j != NULL) != (r == PRISM_SCAN_OBJECT))
            fail_msg("depth %zu: cJSON %s, scan %d", depth, j ? "parsed" : "refused", r);
        cJSON_Delete(j);
        free(text);
    }
    arena_free(&a);
    prism_json_scanner_free(s);
}

/* Node by node, in order: types, keys, strings, numbers to the bit
 * (cJSON_Compare looks keys up by name, so duplicates defeat it). */
static int same_node(const cJSON *a, const cJSON *b)
{
    if ((a->type & 0xff) != (b->type & 0xff))
        return 0;
    if ((a->string == NULL) != (b->string == NULL) || (a->string && strcmp(a->string, b->string) != 0))
        return 0;
    if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring) != 0)
        return 0;
    if (cJSON_IsNumber(a) &&
        (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 || a->valueint != b->valueint))
        return 0;
    const cJSON *x = a->child, *y = b->child;
    for (; x != NULL && y != NULL; x = x->next, y = y->next)
        if (!same_node(x, y))
            return 0;
    return x == NULL && y == NULL;
}

static void assert_same_tree(prism_json_scanner *s, const char *text, unsigned long serial)
{
    int unsure = 0;
    cJSON *ours = prism_json_tree(s, text, strlen(text), serial, NULL, NULL, &unsure);
    cJSON *theirs = cJSON_Parse(text);
    assert_non_null(theirs);
    if (ours == NULL)
        fail_msg("no tree for %s (unsure %d)", text, unsure);
    char *a = cJSON_PrintUnformatted(ours), *b = cJSON_PrintUnformatted(theirs);
    if (strcmp(a, b) != 0)
        fail_msg("%s\n  simdjson: %s\n  cJSON:    %s", text, a, b);
    if (!same_node(ours, theirs))
        fail_msg("%s: the trees differ", text);
    /* The same tree again, nodes and strings from a pool (freed only with
     * the pool: ASan would see any other free). */
    static arena pool;
    cJSON *pooled = prism_json_tree(s, text, strlen(text), 0, arena_alloc, &pool, &unsure);
    if (pooled == NULL || !same_node(pooled, theirs))
        fail_msg("%s: the pool's tree differs", text);
    arena_free(&pool);
    cJSON_free(a);
    cJSON_free(b);
    cJSON_Delete(ours);
    cJSON_Delete(theirs);
}

static void test_trees_match_cjson(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    static const char *const texts[] = {
        "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":256,"
        "\"temperature\":0.7,\"stream\":false,\"stop\":null}",
        "[0,-0.0,-0e1,1,-1,0.1,1e300,-1.5e-300,9007199254740993,-9223372036854775808,18446744073709551615,1E2,2.5e+3]",
        "{\"esc\":\"a\\\"b\\\\c\\/"
        "d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u4e2d\\ud83d\\ude00\",\"raw\":\"\xc3\xa9\xe4\xb8\xad\"}",
        "{\"date\":\"2024-01-05\",\"n\":-0.5,\"m\":-10}",
        "{\"nul\":\"a\\u0000b\",\"k\\u0000ey\":1}",
        "{\"dup\":1,\"dup\":2,\"\":{},\"arr\":[[],{},[[[]]],\"\"]}",
        "  [true,false,null,{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}]  ",
        "\"just a string\"",
        "42",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_same_tree(s, texts[i], 0);
    prism_json_scanner_free(s);
}

/* A tree built from the scan's own reading, and one asked for after the
 * scanner read something else: both are the text's. */
static void test_tree_after_scan(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    arena a = {0};
    prism_json_member *m;
    size_t n;
    const char *first = "{\"model\":\"first\",\"messages\":[1,2,3]}";
    unsigned long serial = 0;
    assert_int_equal(prism_json_scan(s, first, strlen(first), arena_alloc, &a, &m, &n, &serial), PRISM_SCAN_OBJECT);
    assert_true(serial != 0);
    assert_same_tree(s, first, serial); /* from the tape the scan left */
    unsigned long other = 0;
    const char *second = "{\"model\":\"second\"}";
    assert_int_equal(prism_json_scan(s, second, strlen(second), arena_alloc, &a, &m, &n, &other), PRISM_SCAN_OBJECT);
    assert_true(other != serial);
    assert_same_tree(s, first, serial); /* stale: read again, not the second body's tape */
    arena_free(&a);
    prism_json_scanner_free(s);
}

/* Texts simdjson refuses come back NULL and unsure, for cJSON to decide. */
static void test_tree_unsure(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    static const char *const texts[] = {"{\"a\":01}",       "[1e400]",     "[-0]", "{\"a\":-0}",
                                        "{\"a\":\"\x01\"}", "{\"a\":1} x", "",     "\xef\xbb\xbf{}"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int unsure = 0;
        cJSON *t = prism_json_tree(s, texts[i], strlen(texts[i]), 0, NULL, NULL, &unsure);
        assert_null(t);
        assert_int_equal(unsure, 1);
    }
    prism_json_scanner_free(s);
}

static int allocations_left;

static void *failing_malloc(size_t size)
{
    return allocations_left-- > 0 ? malloc(size) : NULL;
}

/* Memory running out at any point of a tree gives NULL and unsure (cJSON
 * then decides), with nothing leaked: cJSON's allocator and a pool's. */
static void test_tree_out_of_memory(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    const char *text = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"hi\"}]}],\"n\":1,\"t\":true,\"z\":null}";
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON_InitHooks(&hooks);
    int built = 0;
    for (int k = 0; k < 64 && !built; k++) {
        allocations_left = k;
        int unsure = 0;
        cJSON *t = prism_json_tree(s, text, strlen(text), 0, NULL, NULL, &unsure);
        if (t != NULL) {
            built = 1;
            assert_int_equal(unsure, 0);
            cJSON_Delete(t);
        } else {
            assert_int_equal(unsure, 1);
        }
    }
    cJSON_InitHooks(NULL);
    assert_true(built); /* and it failed at every count before */
    static arena pool;
    built = 0;
    for (size_t k = 0; k < 64 && !built; k++) {
        pool.n = sizeof(pool.blocks) / sizeof(pool.blocks[0]) - k; /* room for k blocks */
        for (size_t i = 0; i < pool.n; i++)
            pool.blocks[i] = NULL;
        int unsure = 0;
        cJSON *t = prism_json_tree(s, text, strlen(text), 0, arena_alloc, &pool, &unsure);
        assert_true(t == NULL ? unsure == 1 : unsure == 0);
        built = t != NULL;
        arena_free(&pool);
    }
    assert_true(built);
    prism_json_scanner_free(s);
}

/* Above a megabyte the scan uses a parser of its own (the worker's stays
 * small): the same answers. */
static void test_large_body(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    arena a = {0};
    prism_json_member *m;
    size_t n;
    size_t count = 300000; /* "\"xx\"," each: 1.5 MB */
    char *text = malloc(count * 5 + 64);
    size_t k = (size_t)sprintf(text, "{\"model\":\"m\",\"messages\":[");
    for (size_t i = 0; i < count; i++)
        k += (size_t)sprintf(text + k, "\"xx\"%s", i + 1 < count ? "," : "");
    strcpy(text + k, "]}");
    assert_true(strlen(text) > (1u << 20));
    assert_int_equal(scan(s, &a, text, &m, &n), PRISM_SCAN_OBJECT);
    assert_int_equal(find(m, n, -1, "messages")->value.count, count);
    int unsure = 0;
    cJSON *t = prism_json_tree(s, text, strlen(text), 0, NULL, NULL, &unsure);
    assert_non_null(t);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "messages")), (int)count);
    cJSON_Delete(t);
    free(text);
    arena_free(&a);
    prism_json_scanner_free(s);
}

/* ---- picks ---- */

static prism_json_want want_of(const char *key, int in)
{
    return (prism_json_want){key, strlen(key), in};
}

static void test_picks(void **state)
{
    (void)state;
    prism_json_scanner *s = prism_json_scanner_new();
    assert_non_null(s);
    const prism_json_want want[] = {
        want_of("type", -1), want_of("index", -1), want_of("delta", -1),  want_of("type", 2),
        want_of("text", 2),  want_of("list", -1),  want_of("flag", -1),   want_of("none", -1),
        want_of("deep", 2),  want_of("x", 8),      want_of("missing", 2),
    };
    enum { N = sizeof(want) / sizeof(want[0]) };
    prism_json_field got[N];
    const char *text = "{\"text\":\"top-level, not picked\",\"type\":\"first\",\"index\":3,"
                       "\"delta\":{\"text\":\"a\\u00e9\\u0000b\",\"type\":\"t\",\"deep\":{\"x\":false}},"
                       "\"type\":\"second\",\"list\":[1,2,3],\"flag\":true,\"none\":null}";
    assert_int_equal(prism_json_pick(s, text, strlen(text), want, got, N), 0);
    assert_int_equal(got[0].type, PRISM_JSON_STRING);
    assert_string_equal(got[0].string, "first"); /* the first of a duplicated name */
    assert_int_equal(got[0].times, 1);
    assert_int_equal(got[1].type, PRISM_JSON_NUMBER);
    assert_true(got[1].number == 3.0);
    assert_int_equal(got[2].type, PRISM_JSON_OBJECT);
    assert_int_equal(got[2].count, 3);
    assert_string_equal(got[3].string, "t"); /* "type" inside delta */
    assert_int_equal(got[4].type, PRISM_JSON_STRING);
    assert_int_equal(got[4].len, 5); /* a, é (2 bytes), NUL, b */
    assert_memory_equal(got[4].string, "a\xC3\xA9\0b", 6);
    assert_int_equal(got[5].type, PRISM_JSON_ARRAY);
    assert_int_equal(got[5].count, 3);
    assert_int_equal(got[6].type, PRISM_JSON_TRUE);
    assert_int_equal(got[7].type, PRISM_JSON_NULL);
    assert_int_equal(got[8].type, PRISM_JSON_OBJECT);
    assert_int_equal(got[9].type, PRISM_JSON_FALSE); /* two levels down */
    assert_int_equal(got[10].type, PRISM_JSON_ABSENT);
    assert_int_equal(got[10].times, 0);

    /* Not one object simdjson reads, or one a tree reads differently: -1, all absent. */
    static const char *const refused[] = {
        "[1]",
        "\"s\"",
        "{\"type\":1",
        "{\"type\":\"x\"} {}",
        "{\"type\":\"\xC3\x28\"}",
        "\xEF\xBB\xBF{\"type\":\"bom\"}",
        "",
        "{\"n\":1e400}",
        "{\"type\":\"a\tb\"}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        print_message("refused %zu\n", i);
        got[0].type = PRISM_JSON_STRING;
        assert_int_equal(prism_json_pick(s, refused[i], strlen(refused[i]), want, got, N), -1);
        for (size_t j = 0; j < N; j++)
            assert_int_equal(got[j].type, PRISM_JSON_ABSENT);
    }
    /* The text is read where it lies (copied into the parser's padded
     * buffer): a text with no NUL after it is read to its length only. */
    char exact[] = {'{', '"', 'i', 'n', 'd', 'e', 'x', '"', ':', '7', '}', '9'};
    assert_int_equal(prism_json_pick(s, exact, 11, want, got, N), 0);
    assert_true(got[1].number == 7.0);
    prism_json_scanner_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),         cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_depth),           cmocka_unit_test(test_trees_match_cjson),
        cmocka_unit_test(test_tree_after_scan), cmocka_unit_test(test_tree_unsure),
        cmocka_unit_test(test_large_body),      cmocka_unit_test(test_tree_out_of_memory),
        cmocka_unit_test(test_picks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
