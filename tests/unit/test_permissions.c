/* Which hosts a plugin may call: its manifest, plus base URLs the operator
 * chose (differing from what the plugin's own config.yml says). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "permissions.h"

static prism_manifest manifest_with(char **hosts, size_t n)
{
    prism_manifest m;
    memset(&m, 0, sizeof(m));
    m.name = "openai_provider";
    m.network = hosts;
    m.network_count = n;
    return m;
}

static void hosts_of_urls(void **state)
{
    (void)state;
    char h[64];
    assert_int_equal(prism_url_host("https://API.OpenAI.com/v1/chat", h, sizeof(h)), 0);
    assert_string_equal(h, "api.openai.com");
    assert_int_equal(prism_url_host("http://user:pw@127.0.0.1:8080/x", h, sizeof(h)), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(prism_url_host("http://[::1]:9/v1", h, sizeof(h)), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(prism_url_host("https://evil.com?x=api.openai.com", h, sizeof(h)), 0);
    assert_string_equal(h, "evil.com");
    assert_int_equal(prism_url_host("no-scheme", h, sizeof(h)), -1);
    assert_int_equal(prism_url_host("http:///path", h, sizeof(h)), -1);
}

static void manifest_hosts_and_wildcards(void **state)
{
    (void)state;
    char *hosts[] = {"api.openai.com", "*.example.com"};
    prism_manifest m = manifest_with(hosts, 2);
    prism_permissions *p = prism_permissions_new(&m, NULL, NULL, NULL);
    assert_true(prism_permissions_allow(p, "https://api.openai.com/v1/chat/completions"));
    assert_true(prism_permissions_allow(p, "https://eu.example.com/v1"));
    assert_false(prism_permissions_allow(p, "https://example.com/v1"));
    assert_false(prism_permissions_allow(p, "https://api.openai.com.evil.net/v1"));
    assert_false(prism_permissions_allow(p, "https://evil.com/?api.openai.com"));
    prism_permissions_free(p);
}

static void operator_base_urls_count_as_approved(void **state)
{
    (void)state;
    char *hosts[] = {"api.openai.com"};
    prism_manifest m = manifest_with(hosts, 1);
    cJSON *author = cJSON_Parse("{\"base_url\":\"https://api.openai.com/v1\"}");
    cJSON *effective = cJSON_Parse("{\"base_url\":\"http://127.0.0.1:9999/v1\","
                                   "\"keys\":[{\"key\":\"k\",\"base_url\":\"https://eu.azure.test/v1\"}]}");
    prism_permissions *p = prism_permissions_new(&m, effective, author, NULL);
    assert_true(prism_permissions_allow(p, "http://127.0.0.1:9999/v1/chat/completions"));
    assert_true(prism_permissions_allow(p, "https://eu.azure.test/v1/chat/completions"));
    assert_false(prism_permissions_allow(p, "https://other.test/v1"));
    prism_permissions_free(p);
    cJSON_Delete(author);
    cJSON_Delete(effective);
}

static void a_plugins_own_default_is_not_approval(void **state)
{
    (void)state;
    char *hosts[] = {"api.openai.com"};
    prism_manifest m = manifest_with(hosts, 1);
    /* The plugin's config.yml itself points elsewhere: that is the author's
     * choice, not the operator's, and the manifest does not declare it. */
    cJSON *author = cJSON_Parse("{\"base_url\":\"https://collector.evil.test/v1\"}");
    cJSON *effective = cJSON_Duplicate(author, 1);
    prism_permissions *p = prism_permissions_new(&m, effective, author, NULL);
    assert_false(prism_permissions_allow(p, "https://collector.evil.test/v1/chat/completions"));
    assert_true(prism_permissions_allow(p, "https://api.openai.com/v1/chat/completions"));
    prism_permissions_free(p);
    cJSON_Delete(author);
    cJSON_Delete(effective);
}

static void the_servers_plugins_config_is_approval(void **state)
{
    (void)state;
    char *hosts[] = {"api.openai.com"};
    prism_manifest m = manifest_with(hosts, 1);
    cJSON *author = cJSON_Parse("{\"base_url\":\"http://10.9.9.9/v1\"}");
    cJSON *effective = cJSON_Duplicate(author, 1);
    cJSON *operator_conf = cJSON_Duplicate(author, 1); /* the same text, set on purpose */
    prism_permissions *p = prism_permissions_new(&m, effective, author, operator_conf);
    assert_true(prism_permissions_allow(p, "http://10.9.9.9/v1/chat/completions"));
    prism_permissions_free(p);
    cJSON_Delete(author);
    cJSON_Delete(effective);
    cJSON_Delete(operator_conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hosts_of_urls),
        cmocka_unit_test(manifest_hosts_and_wildcards),
        cmocka_unit_test(operator_base_urls_count_as_approved),
        cmocka_unit_test(a_plugins_own_default_is_not_approval),
        cmocka_unit_test(the_servers_plugins_config_is_approval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
