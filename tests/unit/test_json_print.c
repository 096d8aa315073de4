/*
 * prism_json_print must write the text cJSON_PrintUnformatted writes, for
 * every kind of node (numbers exactly), and leave the tree as it was;
 * prism_json_get must find what cJSON's lookup finds; the writer must
 * write what prism_json_print writes.
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

/* Every length up to a few registers, every stopping byte at every offset
 * (short strings are read as overlapping halves, the last bytes of longer
 * ones as one overlapping block), with a stopping byte just past the end
 * that must not count. */
static void plain_run_of_short_strings(void **state)
{
    (void)state;
    static const unsigned char stops[] = {0x00, 0x01, 0x1f, '"', '\\', 0x80, 0xff};
    static const unsigned char passes[] = {' ', 'a', '~', 0x7f, '#', ']', '!'};
    char buf[48];
    for (size_t n = 1; n < 40; n++) {
        for (size_t f = 0; f < sizeof(buf); f++)
            buf[f] = (char)passes[(f * 3) % sizeof(passes)];
        buf[n] = '"';
        assert_int_equal(prism_json_plain_run(buf, n, 1), n);
        assert_int_equal(prism_json_plain_run(buf, n, 0), n);
        for (size_t s = 0; s < sizeof(stops); s++) {
            for (size_t at = 0; at < n; at++) {
                char saved = buf[at];
                buf[at] = (char)stops[s];
                int high = stops[s] >= 0x80;
                assert_int_equal(prism_json_plain_run(buf, n, 1), at);
                assert_int_equal(prism_json_plain_run(buf, n, 0), high ? n : at);
                buf[at] = saved;
            }
        }
    }
}

/* Keys and values of every length up to a few registers, plain and with
 * something to escape at the start, the middle and the end. */
static void strings_of_every_length_print_as_cjson(void **state)
{
    (void)state;
    char text[48];
    for (size_t n = 0; n < 40; n++) {
        for (int esc = -1; esc < 3; esc++) {
            for (size_t i = 0; i < n; i++)
                text[i] = (char)('a' + i % 26);
            if (esc >= 0 && n > 0)
                text[esc == 0 ? 0 : esc == 1 ? n / 2 : n - 1] = esc == 1 ? '"' : '\n';
            text[n] = '\0';
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, text, text);
            cJSON_AddNumberToObject(o, "n", (double)n);
            same_as_cjson(o);
            cJSON_Delete(o);
        }
    }
}

/* Writes the tree through the writer, node by node. */
static void write_tree(prism_json_writer *w, const cJSON *t)
{
    if (cJSON_IsObject(t) || cJSON_IsArray(t)) {
        int object = cJSON_IsObject(t);
        object ? prism_json_object_begin(w) : prism_json_array_begin(w);
        for (const cJSON *c = t->child; c != NULL; c = c->next) {
            if (object)
                prism_json_key(w, c->string, strlen(c->string));
            write_tree(w, c);
        }
        object ? prism_json_object_end(w) : prism_json_array_end(w);
    } else if (cJSON_IsString(t)) {
        prism_json_string(w, t->valuestring, strlen(t->valuestring));
    } else if (cJSON_IsNumber(t)) {
        prism_json_number(w, t->valuedouble);
    } else if (cJSON_IsBool(t)) {
        prism_json_bool(w, cJSON_IsTrue(t));
    } else {
        prism_json_null(w);
    }
}

/* The writer writes what prism_json_print writes, whether a document is
 * written node by node, whole, or as a value inside another. */
static void writer_writes_what_print_writes(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"a\":[],\"b\":{},\"c\":[{}],\"d\":[[],[1]]}",
        "[1,-0.5,1e300,\"x\",true,false,null,{\"k\":\"v\"}]",
        "{\"esc\":\"q\\\"b\\\\n\\nt\\tu\\u0001\\u001f\",\"k\\\"ey\":1,\"utf8\":\"h\u00e9\u2028\"}",
        "{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there, how are you?\"}],"
        "\"max_tokens\":1024,\"temperature\":0.7,\"stream\":false}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *t = cJSON_Parse(docs[i]);
        assert_non_null(t);
        char *want = prism_json_print(t, NULL);
        prism_json_writer *w = prism_json_writer_new();
        write_tree(w, t);
        size_t len = 0;
        char *got = prism_json_writer_finish(w, &len);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(got);

        w = prism_json_writer_new(); /* the whole tree as one value, then inside an array */
        prism_json_array_begin(w);
        prism_json_value(w, t);
        PRISM_JSON_LIT(w, "after");
        prism_json_array_end(w);
        got = prism_json_writer_finish(w, NULL);
        char expect[1024];
        snprintf(expect, sizeof(expect), "[%s,\"after\"]", want);
        assert_string_equal(got, expect);
        free(got);
        free(want);
        cJSON_Delete(t);
    }
}

/* A string written in pieces is the string written whole; nothing escaped
 * is split. */
static void writer_strings_in_pieces(void **state)
{
    (void)state;
    static const char text[] = "Line one\n\"quoted\" \\ tab\t and \x01 caf\xc3\xa9.";
    prism_json_writer *whole = prism_json_writer_new();
    prism_json_string(whole, text, sizeof(text) - 1);
    char *want = prism_json_writer_finish(whole, NULL);
    assert_non_null(want);
    for (size_t cut = 0; cut <= sizeof(text) - 1; cut++) {
        prism_json_writer *w = prism_json_writer_new();
        prism_json_string_begin(w);
        prism_json_string_part(w, text, cut);
        prism_json_string_part(w, text + cut, sizeof(text) - 1 - cut);
        prism_json_string_end(w);
        char *got = prism_json_writer_finish(w, NULL);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
    }
    assert_string_equal(want, "\"Line one\\n\\\"quoted\\\" \\\\ tab\\t and \\u0001 caf\xc3\xa9.\"");
    free(want);

    prism_json_writer *w = prism_json_writer_new(); /* NULL is null; an empty string is "" */
    prism_json_array_begin(w);
    prism_json_string(w, NULL, 0);
    prism_json_string(w, "", 0);
    prism_json_string_begin(w);
    prism_json_string_end(w);
    prism_json_array_end(w);
    char *got = prism_json_writer_finish(w, NULL);
    assert_string_equal(got, "[null,\"\",\"\"]");
    free(got);

    w = prism_json_writer_new(); /* literal keys and values, quoted by the compiler */
    prism_json_object_begin(w);
    PRISM_JSON_KEY(w, "role");
    PRISM_JSON_LIT(w, "assistant");
    PRISM_JSON_KEY(w, "n");
    prism_json_number(w, 1);
    PRISM_JSON_KEY(w, "e");
    PRISM_JSON_LIT(w, "");
    prism_json_object_end(w);
    got = prism_json_writer_finish(w, NULL);
    assert_string_equal(got, "{\"role\":\"assistant\",\"n\":1,\"e\":\"\"}");
    free(got);
}

/* Text that would not be one JSON value is refused, and nothing leaks. */
static void writer_refuses_broken_text(void **state)
{
    (void)state;
    prism_json_writer *w = prism_json_writer_new();
    assert_null(prism_json_writer_finish(w, NULL)); /* nothing written */

    w = prism_json_writer_new();
    prism_json_object_begin(w); /* never closed */
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_array_end(w); /* closed, never opened */
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_string_begin(w); /* a string left open */
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_string_part(w, "x", 1); /* a piece outside a string */
    prism_json_null(w);
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_string_end(w); /* ended, never begun */
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_object_begin(w);
    prism_json_object_end(w);
    prism_json_null(w); /* a second value at the top: "{},null" is not JSON */
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_array_begin(w);
    prism_json_value(w, NULL); /* no tree */
    prism_json_array_end(w);
    assert_null(prism_json_writer_finish(w, NULL));

    w = prism_json_writer_new();
    prism_json_object_begin(w);
    prism_json_writer_free(w); /* abandoned */
    prism_json_writer_free(NULL);
    assert_null(prism_json_writer_finish(NULL, NULL));
}

/* A writer used again and again: its text after each value, emptied by
 * clear (also after a failure), with the memory it grew kept. */
static void writer_used_again(void **state)
{
    (void)state;
    prism_json_writer *w = prism_json_writer_new();
    size_t len = 99;
    assert_null(prism_json_writer_text(w, &len)); /* nothing yet */
    assert_int_equal(len, 99);
    char big[3000];
    memset(big, 'a', sizeof(big));
    for (int round = 0; round < 3; round++) {
        prism_json_writer_clear(w);
        prism_json_object_begin(w);
        assert_null(prism_json_writer_text(w, NULL)); /* an object still open */
        PRISM_JSON_KEY(w, "n");
        prism_json_number(w, round);
        if (round == 1) {
            PRISM_JSON_KEY(w, "big");
            prism_json_string(w, big, sizeof(big));
        }
        prism_json_object_end(w);
        const char *text = prism_json_writer_text(w, &len);
        assert_non_null(text);
        assert_int_equal(len, strlen(text));
        if (round != 1) {
            char want[16];
            snprintf(want, sizeof(want), "{\"n\":%d}", round);
            assert_string_equal(text, want); /* no comma or text left from before */
        } else {
            assert_int_equal(len, 3016); /* {"n":1,"big":"a…a"} */
        }
        assert_ptr_equal(prism_json_writer_text(w, NULL), text); /* reading leaves it as it is */
    }
    prism_json_writer_clear(w);
    prism_json_string_end(w); /* a failure... */
    PRISM_JSON_LIT(w, "x");
    assert_null(prism_json_writer_text(w, NULL));
    prism_json_writer_clear(w); /* ...forgotten */
    PRISM_JSON_LIT(w, "x");
    assert_string_equal(prism_json_writer_text(w, NULL), "\"x\"");
    prism_json_writer_clear(w);
    prism_json_array_begin(w);
    prism_json_writer_clear(w); /* a level left open is forgotten too */
    prism_json_null(w);
    assert_string_equal(prism_json_writer_text(w, NULL), "null");
    prism_json_writer_clear(NULL);
    assert_null(prism_json_writer_text(NULL, NULL));
    char *last = prism_json_writer_finish(w, &len);
    assert_string_equal(last, "null");
    free(last);
}

/* prism_json_get finds what cJSON_GetObjectItemCaseSensitive finds. */
static void get_matches_cjson_lookup(void **state)
{
    (void)state;
    cJSON *o =
        cJSON_Parse("{\"model\":\"a\",\"Model\":\"b\",\"model\":\"c\",\"\":1,\"m\":2,\"mo\":3,\"arr\":[{\"x\":1}],"
                    "\"max_tokens\":4,\"max_completion_tokens\":5,\"messages\":[],\"modalities\":[]}");
    assert_non_null(o);
    /* Keys that share one or two first bytes, are prefixes of each other, or are empty. */
    static const char *const keys[] = {
        "model",       "Model",    "MODEL", "",           "m",    "mo",         "mod",
        "arr",         "x",        "zzz",   "ma",         "max",  "max_tokens", "max_completion_tokens",
        "max_tokens_", "messages", "me",    "modalities", "modal"};
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
        cmocka_unit_test(plain_run_of_short_strings),
        cmocka_unit_test(strings_of_every_length_print_as_cjson),
        cmocka_unit_test(writer_writes_what_print_writes),
        cmocka_unit_test(writer_strings_in_pieces),
        cmocka_unit_test(writer_refuses_broken_text),
        cmocka_unit_test(writer_used_again),
        cmocka_unit_test(get_matches_cjson_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
