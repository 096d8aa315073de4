/*
 * test_interp.c - ${VAR} / ${VAR:-default} expansion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp.h"

/* A fixed environment, so tests do not depend on the real one. */
static const char *fake_env(void *data, const char *name)
{
    (void)data;
    static const char *const vars[][2] = {{"HOST", "example.com"}, {"PORT", "8080"}, {"EMPTY", ""}, {"_X1", "x"}};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strcmp(vars[i][0], name) == 0)
            return vars[i][1];
    return NULL;
}

static void expect_expansion(const char *in, const char *want)
{
    char err[256] = "";
    char *out = prism_interpolate(in, fake_env, NULL, err, sizeof err);
    if (!out)
        fail_msg("'%s' failed: %s", in, err);
    assert_string_equal(out, want);
    free(out);
}

static void expect_error(const char *in, const char *fragment)
{
    char err[256] = "";
    char *out = prism_interpolate(in, fake_env, NULL, err, sizeof err);
    if (out)
        fail_msg("'%s' expanded to '%s' instead of failing", in, out);
    if (!strstr(err, fragment))
        fail_msg("'%s': message '%s' lacks '%s'", in, err, fragment);
}

static void test_plain_text_is_copied(void **state)
{
    (void)state;
    expect_expansion("", "");
    expect_expansion("hello world", "hello world");
}

static void test_variables(void **state)
{
    (void)state;
    expect_expansion("${HOST}", "example.com");
    expect_expansion("http://${HOST}:${PORT}/v1", "http://example.com:8080/v1");
    expect_expansion("${_X1}", "x");
    expect_expansion("[${UNSET}]", "[]");
}

static void test_defaults(void **state)
{
    (void)state;
    expect_expansion("${PORT:-9}", "8080");
    expect_expansion("${UNSET:-9}", "9");
    expect_expansion("${EMPTY:-fallback}", "fallback");
    expect_expansion("${UNSET:-}", "");
    expect_expansion("${UNSET:-a b:c}", "a b:c");
    expect_expansion("${UNSET:-$$}", "$$");
}

static void test_dollars(void **state)
{
    (void)state;
    expect_expansion("$$", "$");
    expect_expansion("$${HOST}", "${HOST}");
    expect_expansion("cost: $5", "cost: $5");
    expect_expansion("end$", "end$");
    expect_expansion("$$$", "$$");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("${", "unterminated");
    expect_error("abc ${HOST", "unterminated");
    expect_error("${HOST:-x", "unterminated");
    expect_error("${}", "bad variable name");
    expect_error("${1ABC}", "bad variable name");
    expect_error("${A-B}", "bad variable name");
    expect_error("${A B}", "bad variable name");
    expect_error("${UNSET:-${HOST}}", "nested");
}

static void test_getenv_when_no_resolver(void **state)
{
    (void)state;
    char err[256];
    setenv("PRISM_TEST_INTERP", "from-env", 1);
    unsetenv("PRISM_TEST_INTERP_UNSET");
    char *out = prism_interpolate("${PRISM_TEST_INTERP}/${PRISM_TEST_INTERP_UNSET:-d}", NULL, NULL, err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "from-env/d");
    free(out);
    unsetenv("PRISM_TEST_INTERP");
}

static const char *counting_env(void *data, const char *name)
{
    (void)name;
    (*(int *)data)++;
    return "v";
}

static void test_resolver_gets_its_data(void **state)
{
    (void)state;
    char err[256];
    int calls = 0;
    char *out = prism_interpolate("${A}${B}$$", counting_env, &calls, err, sizeof err);
    assert_string_equal(out, "vv$");
    assert_int_equal(calls, 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_is_copied),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_dollars),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_getenv_when_no_resolver),
        cmocka_unit_test(test_resolver_gets_its_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
