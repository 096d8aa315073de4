/*
 * test_yaml.c - YAML to cJSON with line numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "yaml.h"

static prism_doc *parse_ok(const char *text, int flags)
{
    char err[512] = "";
    prism_doc *doc = NULL;
    if (prism_yaml_parse(text, strlen(text), "t.yml", flags, &doc, err, sizeof err))
        fail_msg("parse failed: %s", err);
    return doc;
}

static void expect_error(const char *text, int flags, const char *want)
{
    char err[512] = "";
    prism_doc *doc = NULL;
    if (prism_yaml_parse(text, strlen(text), "t.yml", flags, &doc, err, sizeof err) == 0)
        fail_msg("'%s' parsed, expected: %s", text, want);
    assert_null(doc);
    assert_string_equal(err, want);
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item)
        fail_msg("no key '%s'", key);
    return item;
}

static void test_scalar_types(void **state)
{
    (void)state;
    prism_doc *doc = parse_ok("i: 12\nneg: -3\nf: 1.5\nexp: 1e3\nhex: 0x1f\noct: 0o17\nt: true\nF: False\n"
                              "n: null\ntilde: ~\nempty:\ns: hello\nq: \"12\"\nsq: 'true'\nver: 1.0.0\n"
                              "inf: .inf\nhuge: 1e999\nstr_tag: !!str 42\n",
                              0);
    const cJSON *r = prism_doc_root(doc);
    assert_int_equal(get(r, "i")->valuedouble, 12);
    assert_int_equal(get(r, "neg")->valuedouble, -3);
    assert_true(get(r, "f")->valuedouble == 1.5);
    assert_int_equal(get(r, "exp")->valuedouble, 1000);
    assert_int_equal(get(r, "hex")->valuedouble, 31);
    assert_int_equal(get(r, "oct")->valuedouble, 15);
    assert_true(cJSON_IsTrue(get(r, "t")));
    assert_true(cJSON_IsFalse(get(r, "F")));
    assert_true(cJSON_IsNull(get(r, "n")));
    assert_true(cJSON_IsNull(get(r, "tilde")));
    assert_true(cJSON_IsNull(get(r, "empty")));
    assert_string_equal(get(r, "s")->valuestring, "hello");
    assert_string_equal(get(r, "q")->valuestring, "12");
    assert_string_equal(get(r, "sq")->valuestring, "true");
    assert_string_equal(get(r, "ver")->valuestring, "1.0.0");
    assert_string_equal(get(r, "inf")->valuestring, ".inf");
    assert_string_equal(get(r, "huge")->valuestring, "1e999");
    assert_string_equal(get(r, "str_tag")->valuestring, "42");
    prism_doc_free(doc);
}

static void test_lines(void **state)
{
    (void)state;
    prism_doc *doc = parse_ok("# comment\na: 1\n\nb:\n  c: [x,\n      y]\n  d:\n    - 5\n    - 6\n", 0);
    const cJSON *r = prism_doc_root(doc);
    const cJSON *b = get(r, "b"), *c = get(b, "c"), *d = get(b, "d");
    assert_int_equal(prism_doc_line(doc, get(r, "a")), 2);
    assert_int_equal(prism_doc_line(doc, b), 4);
    assert_int_equal(prism_doc_line(doc, c), 5);
    assert_int_equal(prism_doc_line(doc, cJSON_GetArrayItem(c, 1)), 6);
    assert_int_equal(prism_doc_line(doc, d), 7);
    assert_int_equal(prism_doc_line(doc, cJSON_GetArrayItem(d, 1)), 9);
    assert_int_equal(prism_doc_line(doc, r), 2);
    cJSON *stranger = cJSON_CreateNull();
    assert_int_equal(prism_doc_line(doc, stranger), 0);
    cJSON_Delete(stranger);
    assert_string_equal(prism_doc_name(doc), "t.yml");
    prism_doc_free(doc);
}

static void test_empty_documents_are_empty_objects(void **state)
{
    (void)state;
    const char *texts[] = {"", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        prism_doc *doc = parse_ok(texts[i], 0);
        assert_true(cJSON_IsObject(prism_doc_root(doc)));
        assert_null(prism_doc_root(doc)->child);
        prism_doc_free(doc);
    }
}

static void test_root_may_be_a_list(void **state)
{
    (void)state;
    prism_doc *doc = parse_ok("- a\n- b\n", 0);
    assert_true(cJSON_IsArray(prism_doc_root(doc)));
    assert_int_equal(cJSON_GetArraySize(prism_doc_root(doc)), 2);
    prism_doc_free(doc);
}

static void test_structural_errors(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", 0, "t.yml:3: duplicate key 'a' (first at line 1)");
    expect_error("x:\n  k: 1\n  k: 2\n", 0, "t.yml:3: duplicate key 'k' (first at line 2)");
    expect_error("a: 1\n[x, y]: 2\n", 0, "t.yml:2: mapping keys must be scalars");
    expect_error("? {a: 1}\n: 2\n", 0, "t.yml:1: mapping keys must be scalars");
    expect_error("a: &anchor 1\nb: *anchor\n", 0, "t.yml:1: anchors are not supported");
    expect_error("a: &anchor [1]\n", 0, "t.yml:1: anchors are not supported");
    expect_error("a: 1\n---\nb: 2\n", 0, "t.yml:2: multiple documents are not supported");
    expect_error("a: !custom x\n", 0, "t.yml:1: unsupported tag '!custom'");
    expect_error("a: \"x\\0y\"\n", 0, "t.yml:1: NUL character in a string");
}

static void test_syntax_errors_have_lines(void **state)
{
    (void)state;
    char err[512];
    prism_doc *doc = NULL;
    const char *text = "a: 1\nb: [1, 2\nc: 3\n";
    assert_int_equal(prism_yaml_parse(text, strlen(text), "bad.yml", 0, &doc, err, sizeof err), -1);
    assert_null(doc);
    assert_non_null(strstr(err, "bad.yml:"));
    text = "a: 1\n  b: 2\n";
    assert_int_equal(prism_yaml_parse(text, strlen(text), "bad.yml", 0, &doc, err, sizeof err), -1);
    assert_true(strncmp(err, "bad.yml:2: ", 11) == 0);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char text[512];
    memset(text, '[', 200);
    text[200] = '\0';
    char err[512];
    prism_doc *doc = NULL;
    assert_int_equal(prism_yaml_parse(text, strlen(text), "deep.yml", 0, &doc, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than"));
}

static void test_interpolation(void **state)
{
    (void)state;
    setenv("PRISM_TEST_YAML_N", "42", 1);
    setenv("PRISM_TEST_YAML_S", "word", 1);
    unsetenv("PRISM_TEST_YAML_UNSET");
    prism_doc *doc = parse_ok("n: ${PRISM_TEST_YAML_N}\nq: \"${PRISM_TEST_YAML_N}\"\ns: x-${PRISM_TEST_YAML_S}\n"
                              "d: ${PRISM_TEST_YAML_UNSET:-true}\nu: ${PRISM_TEST_YAML_UNSET}\n"
                              "list: [\"${PRISM_TEST_YAML_S}\"]\n${PRISM_TEST_YAML_S}: key\nesc: $${X}\n",
                              PRISM_YAML_INTERPOLATE);
    const cJSON *r = prism_doc_root(doc);
    assert_true(cJSON_IsNumber(get(r, "n")));
    assert_int_equal(get(r, "n")->valuedouble, 42);
    assert_string_equal(get(r, "q")->valuestring, "42");
    assert_string_equal(get(r, "s")->valuestring, "x-word");
    assert_true(cJSON_IsTrue(get(r, "d")));
    assert_true(cJSON_IsNull(get(r, "u")));
    /* Inside [...] braces are YAML syntax, hence the quotes. */
    assert_string_equal(cJSON_GetArrayItem(get(r, "list"), 0)->valuestring, "word");
    /* Keys are structure: never expanded. */
    assert_string_equal(get(r, "${PRISM_TEST_YAML_S}")->valuestring, "key");
    assert_string_equal(get(r, "esc")->valuestring, "${X}");
    prism_doc_free(doc);
    unsetenv("PRISM_TEST_YAML_N");
    unsetenv("PRISM_TEST_YAML_S");
}

static void test_no_interpolation_without_flag(void **state)
{
    (void)state;
    prism_doc *doc = parse_ok("a: ${HOME}\nb: ${\n", 0);
    assert_string_equal(get(prism_doc_root(doc), "a")->valuestring, "${HOME}");
    assert_string_equal(get(prism_doc_root(doc), "b")->valuestring, "${");
    prism_doc_free(doc);
}

static void test_interpolation_errors(void **state)
{
    (void)state;
    expect_error("a: 1\nb: \"${OOPS\"\n", PRISM_YAML_INTERPOLATE, "t.yml:2: unterminated '${' (missing '}')");
    expect_error("a:\n  - ${1X}\n", PRISM_YAML_INTERPOLATE, "t.yml:2: bad variable name after '${'");
}

static void test_load_file(void **state)
{
    (void)state;
    char err[512];
    prism_doc *doc = NULL;
    const char *path = PRISM_TEST_DATA "/yaml/sample.yml";
    assert_int_equal(prism_yaml_load(path, 0, &doc, err, sizeof err), 0);
    const cJSON *r = prism_doc_root(doc);
    assert_string_equal(get(r, "name")->valuestring, "demo");
    assert_int_equal(get(r, "count")->valuedouble, 12);
    assert_string_equal(get(r, "quoted")->valuestring, "12");
    const cJSON *list = get(get(r, "nested"), "list");
    assert_int_equal(cJSON_GetArrayItem(list, 1)->valuedouble, 2);
    assert_int_equal(prism_doc_line(doc, cJSON_GetArrayItem(list, 1)), 11);
    assert_int_equal(prism_doc_line(doc, get(r, "name")), 2);
    assert_string_equal(prism_doc_name(doc), path);
    prism_doc_free(doc);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    char err[512];
    prism_doc *doc = NULL;
    assert_int_equal(prism_yaml_load(PRISM_TEST_DATA "/yaml/nope.yml", 0, &doc, err, sizeof err), -1);
    assert_null(doc);
    assert_string_equal(err, PRISM_TEST_DATA "/yaml/nope.yml: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_types),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_empty_documents_are_empty_objects),
        cmocka_unit_test(test_root_may_be_a_list),
        cmocka_unit_test(test_structural_errors),
        cmocka_unit_test(test_syntax_errors_have_lines),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_no_interpolation_without_flag),
        cmocka_unit_test(test_interpolation_errors),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_load_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
