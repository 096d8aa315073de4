/* model_router's table: exact, then longest prefix, then default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route_table.h"

static route_table *table_from(const char *json, char *err, size_t errlen)
{
    cJSON *conf = cJSON_Parse(json);
    assert_non_null(conf);
    route_table *t = route_table_new(conf, err, errlen);
    cJSON_Delete(conf);
    return t;
}

static void exact_beats_prefix(void **state)
{
    (void)state;
    char err[256] = "";
    route_table *t = table_from("{\"exact_map\":{\"gpt-special\":\"custom_provider\"},"
                                "\"prefix_map\":{\"gpt\":\"openai_provider\"}}",
                                err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(route_table_lookup(t, "gpt-special"), "custom_provider");
    assert_string_equal(route_table_lookup(t, "gpt-special-2"), "openai_provider");
    assert_string_equal(route_table_lookup(t, "gpt-4o"), "openai_provider");
    route_table_free(t);
}

static void longest_prefix_wins_whatever_the_order(void **state)
{
    (void)state;
    char err[256] = "";
    route_table *t = table_from("{\"prefix_map\":{\"claude\":\"claude_provider\",\"claude-3-haiku\":\"cheap\","
                                "\"claude-3\":\"mid\"}}",
                                err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(route_table_lookup(t, "claude-3-haiku-20240307"), "cheap");
    assert_string_equal(route_table_lookup(t, "claude-3-opus"), "mid");
    assert_string_equal(route_table_lookup(t, "claude-sonnet-4"), "claude_provider");
    route_table_free(t);
}

static void default_or_nothing(void **state)
{
    (void)state;
    char err[256] = "";
    route_table *t =
        table_from("{\"prefix_map\":{\"gpt\":\"openai_provider\"},\"default_provider\":null}", err, sizeof(err));
    assert_non_null(t);
    assert_null(route_table_lookup(t, "mistral-large"));
    assert_null(route_table_lookup(t, "gp"));
    route_table_free(t);

    t = table_from("{\"prefix_map\":{\"gpt\":\"openai_provider\"},\"default_provider\":\"fallback\"}", err,
                   sizeof(err));
    assert_non_null(t);
    assert_string_equal(route_table_lookup(t, "mistral-large"), "fallback");
    assert_string_equal(route_table_lookup(t, "gpt-4"), "openai_provider");
    route_table_free(t);
}

static void matching_is_case_sensitive(void **state)
{
    (void)state;
    char err[256] = "";
    route_table *t = table_from("{\"prefix_map\":{\"gpt\":\"openai_provider\"}}", err, sizeof(err));
    assert_null(route_table_lookup(t, "GPT-4"));
    route_table_free(t);
}

static void bad_configs_are_refused(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(table_from("{\"prefix_map\":[\"gpt\"]}", err, sizeof(err)));
    assert_non_null(strstr(err, "prefix_map must be a mapping"));
    assert_null(table_from("{\"exact_map\":{\"x\":\"Bad-Name\"}}", err, sizeof(err)));
    assert_non_null(strstr(err, "exact_map.x"));
    assert_null(table_from("{\"prefix_map\":{\"x\":3}}", err, sizeof(err)));
    assert_null(table_from("{\"default_provider\":\"../etc\"}", err, sizeof(err)));
    assert_non_null(strstr(err, "default_provider"));
}

static void exact_entries_are_listed(void **state)
{
    (void)state;
    char err[256] = "";
    route_table *t = table_from("{\"exact_map\":{\"a\":\"p1\",\"b\":\"p2\"}}", err, sizeof(err));
    assert_int_equal(route_table_exact_count(t), 2);
    const char *model, *provider;
    route_table_exact_at(t, 1, &model, &provider);
    assert_string_equal(model, "b");
    assert_string_equal(provider, "p2");
    route_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_beats_prefix),      cmocka_unit_test(longest_prefix_wins_whatever_the_order),
        cmocka_unit_test(default_or_nothing),      cmocka_unit_test(matching_is_case_sensitive),
        cmocka_unit_test(bad_configs_are_refused), cmocka_unit_test(exact_entries_are_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
