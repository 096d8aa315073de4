/*
 * prism_json_print must write the text cJSON_PrintUnformatted writes, for
 * every kind of node (numbers exactly), and leave the tree as it was;
 * prism_json_get must find what cJSON's lookup finds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "json_print.h"
#include "prism/plugin.h"

static void same_as_cjson(const cJSON *tree)
{
    char *want = cJSON_PrintUnformatted(tree);
    size_t len = 0;
    char *got = prism_json_print(tree, &len);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    cJSON_free(want);
    free(got);
}

static void parsed_documents_print_as_cjson_prints_them(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"a\":{},\"b\":[],\"c\":[{}],\"d\":\"\"}",
        "{\"created\":1732600000,\"neg\":-42,\"zero\":0,\"t\":0.7,\"p\":1e-7,\"q\":123.456,"
        "\"huge\":1e300,\"e15\":999999999999999,\"neg_frac\":-2.5,\"tiny\":5e-324}",
        "{\"nested\":[{\"index\":3,\"s\":\"x\\\"y\"},[1,2,[3]],true,false,null]}",
        "{\"esc\":\"quote\\\" backslash\\\\ slash/ nl\\n cr\\r tab\\t bs\\b ff\\f ctl\\u0001\\u001f del\\u007f\"}",
        "{\"utf8\":\"h\\u00e9llo \\u4e16\\u754c \\ud83d\\ude00\",\"k\\\"ey\\n\":1}",
        "[\"a\",\"\",\"\\\\\\\\\",\"end\\\\\"]",
        "{\"dup\":1,\"dup\":2}",
        "-0.0",
        "3",
        "\"just a string\"",
        "true",
        "null",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *tree = cJSON_Parse(docs[i]);
        assert_non_null(tree);
        char *before = cJSON_PrintUnformatted(tree);
        same_as_cjson(tree);
        char *after = cJSON_PrintUnformatted(tree);
        assert_string_equal(after, before); /* the tree is untouched */
        cJSON_free(before);
        cJSON_free(after);
        cJSON_Delete(tree);
    }
}

/* Where cJSON rounds (past 15 significant digits), the exact value is kept:
 * the text reads back as the same double, in the fewest digits that do. */
static void numbers_keep_their_exact_value(void **state)
{
    (void)state;
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {9007199254740993.0, "9007199254740992"}, /* 2^53 + 1 is not a double: it parses as 2^53 */
        {-9007199254740992.0, "-9007199254740992"},
        {1e15, "1000000000000000"},
        {1234567890123456789.0, "1234567890123456768"},
        {1.0 / 3, "0.3333333333333333"},
        {0.1, "0.1"},
        {2.0 / 3, "0.6666666666666666"},
        {1e300, "1e+300"},
        {1e20, "1e+20"},
        {1e19, "1e+19"},
        {9.2e18, "9200000000000000000"},
        {9.3e18, "9.3e+18"},
        {-0.0, "-0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *n = cJSON_CreateNumber(cases[i].value);
        char *got = prism_json_print(n, NULL);
        assert_non_null(got);
        assert_string_equal(got, cases[i].text);
        if (cases[i].value != 0)
            assert_true(strtod(got, NULL) == cases[i].value);
        free(got);
        cJSON_Delete(n);
    }
    for (int i = 1; i < 2000; i++) {
        double v = 1.0 / i * (i % 2 ? 1 : -1) * (i % 7 ? 1 : 1e200);
        cJSON *n = cJSON_CreateNumber(v);
        char *got = prism_json_print(n, NULL);
        assert_non_null(got);
        assert_true(strtod(got, NULL) == v);
        free(got);
        cJSON_Delete(n);
    }
}

/* The rule put_number follows, written the slow way: the fewest of 15 to 17
 * significant digits that read back as the same double. */
static void reference_number(double v, char *text, size_t cap)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, cap, "%1.*g", digits, v);
        if (strtod(text, NULL) == v)
            return;
    }
}

static void assert_number_as_reference(double v)
{
    char want[40];
    reference_number(v, want, sizeof want);
    cJSON *n = cJSON_CreateNumber(v);
    char *got = prism_json_print(n, NULL);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("%.17g printed as %s, not %s", v, got, want);
    free(got);
    cJSON_Delete(n);
}

/* Short decimals (0.7, 0.95, 123.45) take a quicker path than sprintf; it
 * must write exactly what the rule writes, near its edges too: 1e-4 and
 * just below (where %g turns to exponents), 15 digits and just over,
 * values one ulp off a short decimal, and negatives. */
static void short_decimals_print_as_the_rule_prints_them(void **state)
{
    (void)state;
    static const double edges[] = {0.7,
                                   -0.7,
                                   0.95,
                                   0.1,
                                   0.2,
                                   0.3,
                                   0.1 + 0.2,
                                   1e-4,
                                   9.9999e-5,
                                   0.00012,
                                   1.5e-4,
                                   123.45,
                                   99999999999999.9,
                                   9999999999999.99,
                                   12345678901234.5,
                                   0.123456789012345,
                                   0.1234567890123456,
                                   1e14 - 0.5,
                                   1e14 + 0.5,
                                   2.5,
                                   1.0000000000000002,
                                   0.9999999999999999};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        assert_number_as_reference(edges[i]);
        assert_number_as_reference(nextafter(edges[i], 1e300));
        assert_number_as_reference(nextafter(edges[i], -1e300));
    }
    /* Every decimal m / 10^k for a spread of m and k = 1..8, and its neighbours. */
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    unsigned long long m = 1;
    for (int i = 0; i < 20000; i++) {
        m = m * 6364136223846793005ull + 1442695040888963407ull;
        int k = 1 + (int)(m >> 60) % 8;
        double v = (double)((m >> 20) % 100000000000ull) / p10[k];
        assert_number_as_reference(v);
        assert_number_as_reference(-v);
        assert_number_as_reference(nextafter(v, 0));
    }
}

static void built_trees_print_as_cjson_prints_them(void **state)
{
    (void)state;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "numbers");
    for (int i = -500; i < 500; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(i * 1000003.0));
    for (int i = 1; i < 60; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(i / 8.0));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(NAN));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(INFINITY));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(-INFINITY));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(99999999999999.5));
    cJSON_AddRawToObject(root, "raw", "{\"already\":\"json\"}");
    cJSON *nul = cJSON_CreateString("x");
    free(nul->valuestring);
    nul->valuestring = NULL; /* cJSON prints "" for it */
    cJSON_AddItemToObject(root, "no_text", nul);
    /* A long string with escapes spread through it grows the buffer many times. */
    char big[70000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)(i % 97 == 0 ? '\n' : i % 89 == 0 ? '"' : 'a' + (char)(i % 26));
    big[sizeof(big) - 1] = '\0';
    cJSON_AddStringToObject(root, "big", big);
    same_as_cjson(root);
    cJSON_Delete(root);
}

static void what_cannot_be_printed_is_null(void **state)
{
    (void)state;
    assert_null(prism_json_print(NULL, NULL));
    cJSON *root = cJSON_CreateObject();
    cJSON *raw = cJSON_CreateRaw("1");
    free(raw->valuestring);
    raw->valuestring = NULL; /* cJSON cannot print a raw node without text either */
    cJSON_AddItemToObject(root, "raw", raw);
    assert_null(cJSON_PrintUnformatted(root));
    assert_null(prism_json_print(root, NULL));
    cJSON_Delete(root);
}

/* The eight-at-a-time scan stops where a byte-by-byte one would: every
 * stopping byte, at every offset in and around a word. */
static void plain_run_stops_at_the_first_byte_to_escape(void **state)
{
    (void)state;
    static const unsigned char stops[] = {0x01, 0x0a, 0x1f, '"', '\\', 0x80, 0xc3, 0xff};
    static const unsigned char passes[] = {' ', '!', '#', '[', ']', '~', 0x7f, 'a'};
    char buf[40];
    for (size_t s = 0; s < sizeof(stops); s++) {
        for (size_t at = 0; at < 24; at++) {
            for (size_t f = 0; f < sizeof(buf); f++)
                buf[f] = (char)passes[f % sizeof(passes)];
            buf[at] = (char)stops[s];
            int high = stops[s] >= 0x80;
            assert_int_equal(prism_json_plain_run(buf, sizeof(buf), 1), at);
            assert_int_equal(prism_json_plain_run(buf, sizeof(buf), 0), high ? sizeof(buf) : at);
            assert_int_equal(prism_json_plain_run(buf, at, 1), at); /* n bounds the run */
        }
    }
}

/* prism_json_get finds what cJSON_GetObjectItemCaseSensitive finds. */
static void get_matches_cjson_lookup(void **state)
{
    (void)state;
    cJSON *o =
        cJSON_Parse("{\"model\":\"a\",\"Model\":\"b\",\"model\":\"c\",\"\":1,\"m\":2,\"mo\":3,\"arr\":[{\"x\":1}]}");
    assert_non_null(o);
    static const char *const keys[] = {"model", "Model", "MODEL", "", "m", "mo", "mod", "arr", "x", "zzz"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_ptr_equal(prism_json_get(o, keys[i]), cJSON_GetObjectItemCaseSensitive(o, keys[i]));
    assert_string_equal(prism_json_get(o, "model")->valuestring, "a");            /* the first of a repeated key */
    assert_null(prism_json_get(cJSON_GetObjectItemCaseSensitive(o, "arr"), "x")); /* an array has no keys */
    assert_null(prism_json_get(NULL, "model"));
    assert_null(prism_json_get(o, NULL));
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parsed_documents_print_as_cjson_prints_them),
        cmocka_unit_test(numbers_keep_their_exact_value),
        cmocka_unit_test(short_decimals_print_as_the_rule_prints_them),
        cmocka_unit_test(built_trees_print_as_cjson_prints_them),
        cmocka_unit_test(what_cannot_be_printed_is_null),
        cmocka_unit_test(plain_run_stops_at_the_first_byte_to_escape),
        cmocka_unit_test(get_matches_cjson_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
