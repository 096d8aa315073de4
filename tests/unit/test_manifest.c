/*
 * test_manifest.c - plugin.yml, group.yml and chains.yml.
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
#include <sys/stat.h>

#include <cmocka.h>

#include "manifest.h"

#define FIXTURES PRISM_TEST_DATA "/manifest"

/* ---- a scratch folder per test ---- */

static int setup_dir(void **state)
{
    char tmpl[] = "/tmp/prism-manifest-XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    *state = realpath(tmpl, NULL);
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
    return 0;
}

static char *path_in(void **state, const char *rel)
{
    char *out = NULL;
    assert_true(asprintf(&out, "%s/%s", (char *)*state, rel) > 0);
    return out;
}

static void make_dir(void **state, const char *rel)
{
    char *path = path_in(state, rel);
    assert_int_equal(mkdir(path, 0700), 0);
    free(path);
}

static void write_file(void **state, const char *rel, const char *text)
{
    char *path = path_in(state, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

/* `want` with each "{tmp}" replaced by the scratch folder. */
static void expand_tmp(void **state, const char *want, char *out, size_t outlen)
{
    const char *mark;
    size_t used = 0;
    while ((mark = strstr(want, "{tmp}")) && used < outlen) {
        used += (size_t)snprintf(out + used, outlen - used, "%.*s%s", (int)(mark - want), want, (char *)*state);
        want = mark + 5;
    }
    if (used < outlen)
        snprintf(out + used, outlen - used, "%s", want);
}

/* Loads the folder `rel` and checks the whole message. */
static void expect_error(void **state, const char *rel, const char *want)
{
    char err[1024] = "", full[2 * PATH_MAX + 512];
    char *dir = path_in(state, rel);
    prism_manifest *m = NULL;
    if (prism_manifest_load(dir, &m, err, sizeof err) == 0)
        fail_msg("loaded %s, expected an error", dir);
    assert_null(m);
    expand_tmp(state, want, full, sizeof full);
    assert_string_equal(err, full);
    free(dir);
}

static const char *const plain_manifest = "name: p\nversion: \"1\"\nabi: 1\n";

/* ---- plugins ---- */

static void test_plugin_fixture(void **state)
{
    (void)state;
    char err[512] = "", want[PATH_MAX + 64];
    prism_manifest *m = NULL;
    char *dir = realpath(FIXTURES "/echo_plugin", NULL);
    if (prism_manifest_load(FIXTURES "/echo_plugin", &m, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(m->dir, dir);
    assert_string_equal(m->name, "echo_plugin");
    assert_string_equal(m->version, "1.0");
    assert_string_equal(m->description, "Replies with what it was sent.");
    assert_int_equal(m->abi, 1);
    assert_false(m->is_group);
    snprintf(want, sizeof want, "%s/echo_plugin.so", dir);
    assert_string_equal(m->library, want);
    /* Every *.c, sorted; notes.txt is not a source. */
    assert_int_equal(m->source_count, 2);
    snprintf(want, sizeof want, "%s/a_first.c", dir);
    assert_string_equal(m->sources[0], want);
    snprintf(want, sizeof want, "%s/b_second.c", dir);
    assert_string_equal(m->sources[1], want);
    assert_int_equal(m->network_count, 1);
    assert_string_equal(m->network[0], "api.example.com");
    assert_int_equal(m->env_count, 1);
    assert_string_equal(m->env[0], "ECHO_TOKEN");
    assert_int_equal(m->sub_count, 0);
    assert_null(prism_manifest_chain(m, "chat"));
    free(dir);
    prism_manifest_free(m);
}

static void test_plugin_minimal(void **state)
{
    make_dir(state, "p");
    write_file(state, "p/plugin.yml", plain_manifest);
    char err[512];
    prism_manifest *m = NULL;
    char *dir = path_in(state, "p"), *lib = path_in(state, "p/p.so");
    assert_int_equal(prism_manifest_load(dir, &m, err, sizeof err), 0);
    assert_string_equal(m->description, "");
    assert_string_equal(m->library, lib);
    assert_int_equal(m->source_count, 0);
    assert_int_equal(m->network_count, 0);
    assert_int_equal(m->env_count, 0);
    free(dir);
    free(lib);
    prism_manifest_free(m);
}

static void test_plugin_errors(void **state)
{
    make_dir(state, "p");
    write_file(state, "p/plugin.yml", "name: Bad-Name\nversion: \"1\"\nabi: 1\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:1: name 'Bad-Name' must be lowercase letters, digits and '_'");
    write_file(state, "p/plugin.yml", "name: p\nabi: 1\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:1: missing 'version'");
    write_file(state, "p/plugin.yml", "name: p\nversion: 1.0\nabi: 1\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:2: version must be a string (quote it, e.g. version: \"1.0\")");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:1: missing 'abi' (the PRISM_PLUGIN_ABI_VERSION it was built for)");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 0\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:3: abi must be a positive integer");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: \"1\"\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:3: abi must be a positive integer");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\nlibary: x.so\n");
    expect_error(state, "p",
                 "{tmp}/p/plugin.yml:4: unknown key 'libary' (expected name, version, abi, description, library, "
                 "sources, permissions)");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\nlibrary: ../evil.so\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:4: library must be a relative path inside the plugin's folder");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\nsources: [ok.c, /etc/x.c]\n");
    expect_error(state, "p",
                 "{tmp}/p/plugin.yml:4: sources: '/etc/x.c' must be a relative path inside the plugin's folder");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\npermissions:\n  net: [x]\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:5: unknown key 'net' (expected network, env)");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\npermissions:\n  env: API_KEY\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:5: permissions.env must be a list of strings");
    write_file(state, "p/plugin.yml", "[]\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:1: expected a mapping (name:, version:, abi:, ...)");
    write_file(state, "p/plugin.yml", "name: p\nname: q\n");
    expect_error(state, "p", "{tmp}/p/plugin.yml:2: duplicate key 'name' (first at line 1)");
}

static void test_manifests_are_not_interpolated(void **state)
{
    make_dir(state, "p");
    write_file(state, "p/plugin.yml", "name: p\nversion: \"1\"\nabi: 1\ndescription: costs ${PRICE}\n");
    char err[512];
    prism_manifest *m = NULL;
    char *dir = path_in(state, "p");
    assert_int_equal(prism_manifest_load(dir, &m, err, sizeof err), 0);
    assert_string_equal(m->description, "costs ${PRICE}");
    free(dir);
    prism_manifest_free(m);
}

static void test_folder_errors(void **state)
{
    make_dir(state, "both");
    write_file(state, "both/plugin.yml", plain_manifest);
    write_file(state, "both/group.yml", "name: both\nversion: \"1\"\n");
    expect_error(state, "both", "{tmp}/both: has both plugin.yml and group.yml (a folder is a plugin or a group)");
    make_dir(state, "empty");
    expect_error(state, "empty", "{tmp}/empty: no plugin.yml or group.yml");
    expect_error(state, "absent", "{tmp}/absent: No such file or directory");
    write_file(state, "file", "x");
    expect_error(state, "file", "{tmp}/file: not a folder");
}

/* ---- groups ---- */

static void test_group_fixture(void **state)
{
    (void)state;
    char err[512] = "", want[PATH_MAX + 64];
    prism_manifest *m = NULL;
    char *dir = realpath(FIXTURES "/demo_group", NULL);
    if (prism_manifest_load(FIXTURES "/demo_group", &m, err, sizeof err))
        fail_msg("%s", err);
    assert_true(m->is_group);
    assert_int_equal(m->abi, 0);
    assert_string_equal(m->name, "demo_group");
    assert_string_equal(m->version, "0.1.0");
    assert_string_equal(m->dir, dir);
    assert_int_equal(m->sub_count, 2);
    assert_string_equal(m->subs[0]->name, "alpha");
    assert_string_equal(m->subs[1]->name, "beta");
    assert_int_equal(m->missing_count, 1);
    assert_string_equal(m->missing[0], "absent_provider");

    const prism_manifest *alpha = prism_manifest_sub(m, "alpha");
    assert_ptr_equal(alpha, m->subs[0]);
    snprintf(want, sizeof want, "%s/alpha", dir);
    assert_string_equal(alpha->dir, want);
    snprintf(want, sizeof want, "%s/alpha/build/libalpha.so", dir);
    assert_string_equal(alpha->library, want);
    snprintf(want, sizeof want, "%s/alpha/src/alpha.c", dir);
    assert_int_equal(alpha->source_count, 1);
    assert_string_equal(alpha->sources[0], want);
    assert_null(prism_manifest_sub(m, "absent_provider"));

    assert_int_equal(m->chain_count, 2);
    const prism_chain_conf *both = prism_manifest_chain(m, "both");
    assert_non_null(both);
    assert_int_equal(both->step_count, 2);
    assert_string_equal(both->steps[1], "beta");
    assert_int_equal(prism_manifest_chain(m, "chat")->step_count, 1);
    assert_null(prism_manifest_chain(m, "nope"));
    free(dir);
    prism_manifest_free(m);
}

static void test_group_without_chains(void **state)
{
    make_dir(state, "g");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nplugins: [gone]\n");
    char err[512];
    prism_manifest *m = NULL;
    char *dir = path_in(state, "g");
    assert_int_equal(prism_manifest_load(dir, &m, err, sizeof err), 0);
    assert_int_equal(m->chain_count, 0);
    assert_int_equal(m->sub_count, 0);
    assert_int_equal(m->missing_count, 1);
    free(dir);
    prism_manifest_free(m);
}

static void test_group_errors(void **state)
{
    make_dir(state, "g");
    make_dir(state, "g/sub");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nplugins:\n  - sub\n");
    expect_error(state, "g", "{tmp}/g/group.yml:4: plugins: 'sub' has no {tmp}/g/sub/plugin.yml");
    write_file(state, "g/sub/plugin.yml", "name: other\nversion: \"1\"\nabi: 1\n");
    expect_error(state, "g", "{tmp}/g/sub/plugin.yml:1: name 'other' must match its folder 'sub'");
    write_file(state, "g/sub/plugin.yml", "name: sub\nversion: \"1\"\n");
    expect_error(state, "g", "{tmp}/g/sub/plugin.yml:1: missing 'abi' (the PRISM_PLUGIN_ABI_VERSION it was built for)");
    write_file(state, "g/sub/plugin.yml", "name: sub\nversion: \"1\"\nabi: 1\n");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nplugins: [sub, sub]\n");
    expect_error(state, "g", "{tmp}/g/group.yml:3: plugins lists 'sub' twice");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nplugins: [../sub]\n");
    expect_error(state, "g", "{tmp}/g/group.yml:3: plugins: a sub-plugin name is lowercase letters, digits and '_'");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nabi: 1\n");
    expect_error(state, "g", "{tmp}/g/group.yml:3: unknown key 'abi' (expected name, version, description, plugins)");
    write_file(state, "g/group.yml", "name: g\nversion: \"1\"\nplugins: [sub]\n");
    write_file(state, "g/chains.yml", "chains:\n  chat: model_router\n");
    expect_error(state, "g", "{tmp}/g/chains.yml:2: chain 'chat' must be a non-empty list of steps");
    write_file(state, "g/chains.yml", "chains:\n  chat: []\n");
    expect_error(state, "g", "{tmp}/g/chains.yml:2: chain 'chat' must be a non-empty list of steps");
    write_file(state, "g/chains.yml", "chains:\n  chat:\n    - sub\n    - 7\n");
    expect_error(state, "g", "{tmp}/g/chains.yml:4: chain 'chat': each entry must be a non-empty string");
    write_file(state, "g/chains.yml", "chain:\n  chat: [sub]\n");
    expect_error(state, "g", "{tmp}/g/chains.yml:1: unknown key 'chain' (expected chains)");
    write_file(state, "g/chains.yml", "chains:\n  Chat: [sub]\n");
    expect_error(state, "g", "{tmp}/g/chains.yml:2: chain name 'Chat' must be lowercase letters, digits and '_'");
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_fixture), DIR_TEST(test_plugin_minimal),
        DIR_TEST(test_plugin_errors),          DIR_TEST(test_manifests_are_not_interpolated),
        DIR_TEST(test_folder_errors),          cmocka_unit_test(test_group_fixture),
        DIR_TEST(test_group_without_chains),   DIR_TEST(test_group_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
