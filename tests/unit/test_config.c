/*
 * test_config.c - config.yml loading, defaults and validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* ---- a scratch folder per test ---- */

static int setup_dir(void **state)
{
    char tmpl[] = "/tmp/prism-config-XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    /* Compare against the resolved form: /tmp may be a symlink. */
    *state = realpath(tmpl, NULL);
    unsetenv("PRISM_API_KEYS");
    return *state ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown_dir(void **state)
{
    nftw(*state, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(*state);
    unsetenv("PRISM_API_KEYS");
    return 0;
}

static char *write_config(void **state, const char *text)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/config.yml", (char *)*state) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static prism_config *load_ok(void **state, const char *text)
{
    char err[512] = "";
    char *path = write_config(state, text);
    prism_config *cfg = NULL;
    if (prism_config_load(path, &cfg, err, sizeof err))
        fail_msg("load failed: %s", err);
    free(path);
    return cfg;
}

/* `want` is the message after "<path>:". */
static void expect_error(void **state, const char *text, const char *want)
{
    char err[512] = "", full[PATH_MAX + 512];
    char *path = write_config(state, text);
    prism_config *cfg = NULL;
    if (prism_config_load(path, &cfg, err, sizeof err) == 0)
        fail_msg("loaded, expected: %s", want);
    assert_null(cfg);
    snprintf(full, sizeof full, "%s:%s", path, want);
    assert_string_equal(err, full);
    free(path);
}

static char *in_dir(void **state, const char *rel)
{
    char *out = NULL;
    assert_true(asprintf(&out, "%s/%s", (char *)*state, rel) > 0);
    return out;
}

/* ---- loading ---- */

static void test_defaults(void **state)
{
    prism_config *cfg = load_ok(state, "# nothing set\n");
    char *plugins = in_dir(state, ".prism/plugins");
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->workers, 1);
    assert_string_equal(cfg->api_prefix, "/v1");
    assert_int_equal(cfg->api_key_count, 0);
    assert_int_equal(cfg->max_body_bytes, 10485760);
    assert_int_equal(cfg->max_header_bytes, 8192);
    assert_int_equal(cfg->read_timeout_ms, 30000);
    assert_int_equal(cfg->upstream_connect_timeout_ms, 10000);
    assert_int_equal(cfg->upstream_timeout_ms, 600000);
    assert_int_equal(cfg->shutdown_timeout_ms, 10000);
    assert_null(cfg->tls_ca_file);
    assert_int_equal(cfg->enabled_count, 0);
    assert_string_equal(cfg->plugins_dir, plugins);
    assert_int_equal(cfg->plugin_path_count, 0);
    assert_null(cfg->plugin_overrides);
    assert_int_equal(cfg->route_count, 0);
    assert_string_equal(cfg->dir, (char *)*state);
    assert_non_null(cfg->doc);
    free(plugins);
    prism_config_free(cfg);
}

static void test_full_fixture_server(void **state)
{
    (void)state;
    char err[512] = "";
    prism_config *cfg = NULL;
    char *dir = realpath(PRISM_TEST_DATA "/config", NULL);
    if (prism_config_load(PRISM_TEST_DATA "/config/full.yml", &cfg, err, sizeof err))
        fail_msg("%s", err);
    char want[PATH_MAX + 64];
    assert_string_equal(cfg->dir, dir);
    assert_string_equal(cfg->file, PRISM_TEST_DATA "/config/full.yml");
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 9090);
    assert_int_equal(cfg->workers, 4);
    assert_string_equal(cfg->api_prefix, "/api");
    assert_int_equal(cfg->api_key_count, 2);
    assert_string_equal(cfg->api_keys[0], "alpha");
    assert_string_equal(cfg->api_keys[1], "beta");
    assert_int_equal(cfg->max_body_bytes, 2048);
    assert_int_equal(cfg->max_header_bytes, 4096);
    assert_int_equal(cfg->read_timeout_ms, 1000);
    assert_int_equal(cfg->upstream_connect_timeout_ms, 2000);
    assert_int_equal(cfg->upstream_timeout_ms, 3000);
    assert_int_equal(cfg->shutdown_timeout_ms, 0);
    snprintf(want, sizeof want, "%s/certs/ca.pem", dir);
    assert_string_equal(cfg->tls_ca_file, want);
    free(dir);
    prism_config_free(cfg);
}

static void test_full_fixture_plugins_and_routes(void **state)
{
    (void)state;
    char err[512] = "", want[PATH_MAX + 64];
    prism_config *cfg = NULL;
    char *dir = realpath(PRISM_TEST_DATA "/config", NULL);
    if (prism_config_load(PRISM_TEST_DATA "/config/full.yml", &cfg, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(cfg->enabled_count, 2);
    assert_string_equal(cfg->enabled[1], "logger");
    snprintf(want, sizeof want, "%s/my-plugins", dir);
    assert_string_equal(cfg->plugins_dir, want);
    assert_int_equal(cfg->plugin_path_count, 2);
    assert_string_equal(cfg->plugin_paths[0], "/opt/prism/plugins");
    snprintf(want, sizeof want, "%s/extra", dir);
    assert_string_equal(cfg->plugin_paths[1], want);
    const cJSON *openai = cJSON_GetObjectItemCaseSensitive(cfg->plugin_overrides, "openai_provider");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(openai, "base_url")->valuestring, "http://localhost:1234");
    assert_int_equal(cfg->route_count, 2);
    assert_string_equal(cfg->routes[0].path, "/chat/completions");
    assert_int_equal(cfg->routes[0].line, 20);
    assert_int_equal(cfg->routes[0].chain_len, 1);
    assert_string_equal(cfg->routes[0].chain[0], "ai_gateway:chat");
    assert_string_equal(cfg->routes[1].path, "/embeddings");
    assert_int_equal(cfg->routes[1].line, 22);
    assert_int_equal(cfg->routes[1].chain_len, 2);
    assert_string_equal(cfg->routes[1].chain[1], "ai_gateway.openai_provider");
    free(dir);
    prism_config_free(cfg);
}

static void test_relative_load_path(void **state)
{
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    free(write_config(state, "plugins: { dir: ../elsewhere }\n"));
    assert_int_equal(chdir(*state), 0);
    char err[512];
    prism_config *cfg = NULL;
    int rc = prism_config_load("config.yml", &cfg, err, sizeof err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    char *want = in_dir(state, "../elsewhere");
    assert_string_equal(cfg->dir, (char *)*state);
    assert_string_equal(cfg->plugins_dir, want);
    free(want);
    prism_config_free(cfg);
}

static void test_absolute_plugin_dir_is_kept(void **state)
{
    prism_config *cfg = load_ok(state, "plugins:\n  dir: /srv/plugins\n");
    assert_string_equal(cfg->plugins_dir, "/srv/plugins");
    prism_config_free(cfg);
}

static void test_interpolated_values(void **state)
{
    setenv("PRISM_TEST_CFG_WORKERS", "6", 1);
    unsetenv("PRISM_TEST_CFG_UNSET");
    prism_config *cfg = load_ok(state, "server:\n  workers: ${PRISM_TEST_CFG_WORKERS}\n"
                                       "  listen: ${PRISM_TEST_CFG_UNSET:-0.0.0.0:7000}\n"
                                       "  api_prefix: ${PRISM_TEST_CFG_UNSET}\n");
    assert_int_equal(cfg->workers, 6);
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 7000);
    /* An unset variable leaves a null, which keeps the default. */
    assert_string_equal(cfg->api_prefix, "/v1");
    prism_config_free(cfg);
    unsetenv("PRISM_TEST_CFG_WORKERS");
}

/* ---- api keys ---- */

static void test_api_keys_from_env(void **state)
{
    setenv("PRISM_API_KEYS", " k1 ,k2,, ,k3 ", 1);
    prism_config *cfg = load_ok(state, "server:\n  workers: 2\n");
    assert_int_equal(cfg->api_key_count, 3);
    assert_string_equal(cfg->api_keys[0], "k1");
    assert_string_equal(cfg->api_keys[1], "k2");
    assert_string_equal(cfg->api_keys[2], "k3");
    prism_config_free(cfg);
}

static void test_api_keys_in_file_win_over_env(void **state)
{
    setenv("PRISM_API_KEYS", "from-env", 1);
    prism_config *cfg = load_ok(state, "server:\n  api_keys: \"a, b,,\"\n");
    assert_int_equal(cfg->api_key_count, 2);
    assert_string_equal(cfg->api_keys[0], "a");
    assert_string_equal(cfg->api_keys[1], "b");
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  api_keys: []\n");
    assert_int_equal(cfg->api_key_count, 0);
    prism_config_free(cfg);
}

static void test_api_keys_errors(void **state)
{
    expect_error(state, "server:\n  api_keys: 5\n",
                 "2: server.api_keys must be a list of strings or a comma-separated string");
    expect_error(state, "server:\n  api_keys:\n    - ok\n    - 12345\n",
                 "4: server.api_keys: each entry must be a string (quote it)");
}

static void test_cors_origins(void **state)
{
    prism_config *cfg = load_ok(state, "server:\n  cors_origins: \"https://app.example.com, http://localhost:5173\"\n");
    assert_int_equal(cfg->cors_origin_count, 2);
    assert_string_equal(cfg->cors_origins[0], "https://app.example.com");
    assert_string_equal(cfg->cors_origins[1], "http://localhost:5173");
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  cors_origins: [\"*\"]\n");
    assert_int_equal(cfg->cors_origin_count, 1);
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  cors_origins: \"\"\n");
    assert_int_equal(cfg->cors_origin_count, 0);
    prism_config_free(cfg);
    expect_error(state, "server:\n  cors_origins: app.example.com\n",
                 "2: server.cors_origins: \"app.example.com\" is not an origin (scheme://host[:port]) or \"*\"");
    expect_error(state, "server:\n  cors_origins: https://app.example.com/ui\n",
                 "2: server.cors_origins: \"https://app.example.com/ui\" must be scheme://host[:port], without a path");
    expect_error(state, "server:\n  cors_origins: \"http://\"\n",
                 "2: server.cors_origins: \"http://\" must be scheme://host[:port], without a path");
}

/* ---- validation ---- */

static void test_type_and_range_errors(void **state)
{
    expect_error(state, "server:\n  listen: 127.0.0.1:1\n  workers: many\n",
                 "3: server.workers must be an integer from 0 to 256");
    expect_error(state, "server:\n  workers: 300\n", "2: server.workers must be an integer from 0 to 256");
    expect_error(state, "server:\n  workers: 1.5\n", "2: server.workers must be an integer from 0 to 256");
    expect_error(state, "server:\n  limits:\n    max_header_bytes: 10\n",
                 "3: server.limits.max_header_bytes must be an integer from 1024 to 1048576");
    expect_error(state, "server:\n  timeouts: { read_ms: 0 }\n",
                 "2: server.timeouts.read_ms must be an integer from 1 to 86400000");
    expect_error(state, "server:\n  listen: 8080\n", "2: server.listen must be a string");
    expect_error(state, "server:\n  listen: \":8080\"\n",
                 "2: server.listen: ':8080': give a host, e.g. 127.0.0.1:PORT (or 0.0.0.0:PORT for every interface)");
    expect_error(state, "server:\n  api_prefix: /v1/\n",
                 "2: server.api_prefix must start with '/' and not end with one, e.g. /v1 (\"\" for none)");
    expect_error(state, "server:\n  api_prefix: v1\n",
                 "2: server.api_prefix must start with '/' and not end with one, e.g. /v1 (\"\" for none)");
    expect_error(state, "server: [1]\n", "1: server must be a mapping");
    expect_error(state, "- a\n", "1: expected a mapping (server:, plugins:, routes:) at the top level");
}

static void test_empty_prefix_is_allowed(void **state)
{
    prism_config *cfg = load_ok(state, "server:\n  api_prefix: \"\"\n");
    assert_string_equal(cfg->api_prefix, "");
    prism_config_free(cfg);
}

static void test_log_section(void **state)
{
    prism_config *cfg = load_ok(state, "");
    assert_int_equal(cfg->log_level, 1);
    assert_int_equal(cfg->log_json, 1);
    assert_int_equal(cfg->log_access, 1);
    assert_null(cfg->log_file);
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  log: {level: warn, format: text, access: false, file: logs/prism.log}\n");
    assert_int_equal(cfg->log_level, 2);
    assert_int_equal(cfg->log_json, 0);
    assert_int_equal(cfg->log_access, 0);
    assert_non_null(strstr(cfg->log_file, "/logs/prism.log"));
    assert_true(cfg->log_file[0] == '/');
    prism_config_free(cfg);
    expect_error(state, "server:\n  log:\n    level: loud\n",
                 "3: server.log.level must be one of: debug, info, warn, error");
    expect_error(state, "server:\n  log: {access: yes}\n", "2: server.log.access must be true or false");
}

static void test_upstream_client(void **state)
{
    prism_config *cfg = load_ok(state, "");
    assert_int_equal(cfg->upstream_libcurl_only, 0);
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  upstream_client: libcurl\n");
    assert_int_equal(cfg->upstream_libcurl_only, 1);
    prism_config_free(cfg);
    cfg = load_ok(state, "server:\n  upstream_client: auto\n");
    assert_int_equal(cfg->upstream_libcurl_only, 0);
    prism_config_free(cfg);
    expect_error(state, "server:\n  upstream_client: curl\n",
                 "2: server.upstream_client must be one of: auto, libcurl");
}

static void test_unknown_keys(void **state)
{
    expect_error(state, "server:\n  listen: 127.0.0.1:80\n  workres: 2\n",
                 "3: unknown key 'workres' in server (expected listen, workers, api_prefix, api_keys, limits, "
                 "timeouts, tls_ca_file, log, cors_origins, upstream_client)");
    expect_error(state, "servers:\n  workers: 2\n",
                 "1: unknown key 'servers' in the top level (expected server, plugins, routes)");
    expect_error(state, "server:\n  limits: { max_body: 1 }\n",
                 "2: unknown key 'max_body' in server.limits (expected max_body_bytes, max_header_bytes)");
    expect_error(state, "server:\n  timeouts:\n    read: 1\n",
                 "3: unknown key 'read' in server.timeouts (expected read_ms, upstream_connect_ms, upstream_ms, "
                 "shutdown_ms)");
    expect_error(state, "plugins:\n  enable: [x]\n",
                 "2: unknown key 'enable' in plugins (expected enabled, dir, paths, config)");
}

static void test_plugins_errors(void **state)
{
    expect_error(state, "plugins:\n  enabled: ai_gateway\n",
                 "2: plugins.enabled must be a list of plugin names, e.g. [ai_gateway]");
    expect_error(state, "plugins:\n  enabled: [a, Bad-Name]\n",
                 "2: plugins.enabled: a plugin name is lowercase letters, digits and '_'");
    expect_error(state, "plugins:\n  enabled:\n    - a\n    - a\n", "4: plugins.enabled lists 'a' twice");
    expect_error(state, "plugins:\n  config:\n    x: 1\n", "3: plugins.config.x must be a mapping of settings");
    expect_error(state, "plugins:\n  paths: extra\n", "2: plugins.paths must be a list of folders");
}

/* ---- routes ---- */

static void test_route_errors(void **state)
{
    expect_error(state, "routes:\n  chat: [a]\n", "2: route 'chat' must be a path starting with '/'");
    expect_error(state, "routes:\n  /chat: { chain: [] }\n",
                 "2: route '/chat': chain must be a non-empty list of steps");
    expect_error(state, "routes:\n  /chat: []\n", "2: route '/chat': chain must be a non-empty list of steps");
    expect_error(state, "routes:\n  /chat:\n    chain:\n      - a\n      - 3\n",
                 "5: route '/chat': each step must be a plugin name, group:chain or group.plugin");
    expect_error(state, "routes:\n  /chat: { chian: [a] }\n",
                 "2: unknown key 'chian' in route '/chat' (expected chain)");
    expect_error(state, "routes:\n  /chat: {}\n", "2: route '/chat' needs a chain, e.g. {chain: [ai_gateway:chat]}");
    expect_error(state, "routes:\n  /a: [x]\n  /a: [y]\n", "3: duplicate key '/a' (first at line 2)");
    expect_error(state, "routes: [/a]\n", "1: routes must be a mapping");
}

static void test_yaml_and_file_errors(void **state)
{
    expect_error(state, "server:\n  workers: \"${X\"\n", "2: unterminated '${' (missing '}')");
    char err[512];
    prism_config *cfg = NULL;
    assert_int_equal(prism_config_load("/nonexistent/config.yml", &cfg, err, sizeof err), -1);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/config.yml: No such file or directory");
}

/* ---- host:port ---- */

static void expect_hostport(const char *s, const char *host, int port)
{
    char *h = NULL, err[256] = "";
    int p = 0;
    if (prism_parse_hostport(s, &h, &p, err, sizeof err))
        fail_msg("'%s': %s", s, err);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
    free(h);
}

static void expect_bad_hostport(const char *s, const char *fragment)
{
    char *h = NULL, err[256] = "";
    int p = 0;
    assert_int_equal(prism_parse_hostport(s, &h, &p, err, sizeof err), -1);
    assert_null(h);
    if (!strstr(err, fragment))
        fail_msg("'%s': '%s' lacks '%s'", s, err, fragment);
}

static void test_parse_hostport(void **state)
{
    (void)state;
    expect_hostport("127.0.0.1:8080", "127.0.0.1", 8080);
    expect_hostport("localhost:80", "localhost", 80);
    expect_hostport("[::1]:8080", "::1", 8080);
    expect_hostport("0.0.0.0:65535", "0.0.0.0", 65535);
    expect_bad_hostport(":8080", "give a host");
    expect_bad_hostport("[]:8080", "give a host");
    expect_bad_hostport("localhost", "expected HOST:PORT");
    expect_bad_hostport("::1:8080", "brackets");
    expect_bad_hostport("[::1]8080", "expected [IPV6]:PORT");
    expect_bad_hostport("host:0", "from 1 to 65535");
    expect_bad_hostport("host:65536", "from 1 to 65535");
    expect_bad_hostport("host:80x", "from 1 to 65535");
    expect_bad_hostport("host:", "from 1 to 65535");
    expect_bad_hostport("ho st:80", "characters");
}

static void test_set_listen(void **state)
{
    prism_config *cfg = load_ok(state, "");
    char err[256];
    assert_int_equal(prism_config_set_listen(cfg, "[::]:9000", err, sizeof err), 0);
    assert_string_equal(cfg->listen_host, "::");
    assert_int_equal(cfg->listen_port, 9000);
    assert_int_equal(prism_config_set_listen(cfg, "nope", err, sizeof err), -1);
    assert_string_equal(cfg->listen_host, "::");
    prism_config_free(cfg);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(prism_host_is_loopback("127.0.0.1"));
    assert_true(prism_host_is_loopback("127.1.2.3"));
    assert_true(prism_host_is_loopback("::1"));
    assert_true(prism_host_is_loopback("[::1]"));
    assert_true(prism_host_is_loopback("localhost"));
    assert_true(prism_host_is_loopback("LocalHost"));
    assert_true(prism_host_is_loopback("::ffff:127.0.0.1"));
    assert_false(prism_host_is_loopback("0.0.0.0"));
    assert_false(prism_host_is_loopback("::"));
    assert_false(prism_host_is_loopback("128.0.0.1"));
    assert_false(prism_host_is_loopback("example.com"));
    assert_false(prism_host_is_loopback("localhost.example.com"));
    assert_false(prism_host_is_loopback(""));
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        DIR_TEST(test_defaults),
        DIR_TEST(test_full_fixture_server),
        DIR_TEST(test_full_fixture_plugins_and_routes),
        DIR_TEST(test_relative_load_path),
        DIR_TEST(test_absolute_plugin_dir_is_kept),
        DIR_TEST(test_interpolated_values),
        DIR_TEST(test_api_keys_from_env),
        DIR_TEST(test_api_keys_in_file_win_over_env),
        DIR_TEST(test_api_keys_errors),
        DIR_TEST(test_cors_origins),
        DIR_TEST(test_type_and_range_errors),
        DIR_TEST(test_empty_prefix_is_allowed),
        DIR_TEST(test_unknown_keys),
        DIR_TEST(test_log_section),
        DIR_TEST(test_upstream_client),
        DIR_TEST(test_plugins_errors),
        DIR_TEST(test_route_errors),
        DIR_TEST(test_yaml_and_file_errors),
        cmocka_unit_test(test_parse_hostport),
        DIR_TEST(test_set_listen),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
