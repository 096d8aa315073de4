/*
 * test_lockfile.c - plugins.lock: load, save, sha256, entries, verification.
 *
 * Every test works in its own temporary folder, with manifests built by hand
 * so that only lockfile.c is under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockfile.h"

typedef struct fixture {
    char dir[64];
    char err[256];
} fixture;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/prism-lock-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* Writes `content` to dir/rel (creating one level of sub-folder) and returns the malloc'd path. */
static char *write_file(const char *dir, const char *rel, const char *content)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    fputs(content, out);
    fclose(out);
    return path;
}

static void test_absent_file_is_empty_lock(void **state)
{
    fixture *f = *state;
    cJSON *lock = NULL;
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), 0);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(lock, "lock_version");
    assert_true(cJSON_IsNumber(ver));
    assert_int_equal(ver->valueint, PRISM_LOCK_VERSION);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(lock, "plugins")));
    assert_null(prism_lock_entry(lock, "anything"));
    cJSON_Delete(lock);
}

static void test_sha256_known_value(void **state)
{
    fixture *f = *state;
    char *path = write_file(f->dir, "abc.txt", "abc");
    char hex[65];
    assert_int_equal(prism_sha256_file(path, hex, f->err, sizeof f->err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(path);
}

static void test_sha256_missing_file(void **state)
{
    fixture *f = *state;
    char hex[65];
    assert_int_equal(prism_sha256_file("/nonexistent/prism/x.so", hex, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "/nonexistent/prism/x.so"));
}

/* A one-library plugin rooted in `dir`. */
static prism_manifest plugin_manifest(char *dir, char *library)
{
    static char *network[] = {"api.example.com"};
    static char *env[] = {"EXAMPLE_KEY"};
    prism_manifest m = {0};
    m.dir = dir;
    m.name = "echo";
    m.version = "1.2.3";
    m.library = library;
    m.network = network;
    m.network_count = 1;
    m.env = env;
    m.env_count = 1;
    return m;
}

static void test_entry_of_plugin(void **state)
{
    fixture *f = *state;
    char *so = write_file(f->dir, "echo.so", "library bytes");
    prism_manifest m = plugin_manifest(f->dir, so);
    cJSON *entry = prism_lock_entry_new(&m, "/src/echo", f->err, sizeof f->err);
    assert_non_null(entry);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "kind")->valuestring, "plugin");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "version")->valuestring, "1.2.3");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "source")->valuestring, "/src/echo");
    const char *when = cJSON_GetObjectItemCaseSensitive(entry, "installed_at")->valuestring;
    assert_int_equal(strlen(when), 20);
    assert_int_equal(when[19], 'Z');
    const cJSON *perms = cJSON_GetObjectItemCaseSensitive(entry, "permissions");
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(perms, "network");
    assert_string_equal(cJSON_GetArrayItem(net, 0)->valuestring, "api.example.com");
    const cJSON *lib = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry, "libraries"), "echo");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(lib, "file")->valuestring, "echo.so");
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(lib, "sha256")->valuestring), 64);
    cJSON_Delete(entry);
    free(so);
}

static void test_entry_library_outside_folder(void **state)
{
    fixture *f = *state;
    prism_manifest m = plugin_manifest(f->dir, "/usr/lib/elsewhere.so");
    assert_null(prism_lock_entry_new(&m, "/src/echo", f->err, sizeof f->err));
    assert_non_null(strstr(f->err, "not inside the plugin folder"));
}

static void test_entry_missing_library(void **state)
{
    fixture *f = *state;
    char so[128];
    snprintf(so, sizeof so, "%s/echo.so", f->dir);
    prism_manifest m = plugin_manifest(f->dir, so);
    assert_null(prism_lock_entry_new(&m, "/src/echo", f->err, sizeof f->err));
    assert_non_null(strstr(f->err, "echo.so"));
}

/* Installs plugin `echo` with library echo.so into the lock of f->dir. */
static char *lock_plugin(fixture *f)
{
    char *so = write_file(f->dir, "echo/echo.so", "approved bytes");
    char *pdir = NULL;
    assert_true(asprintf(&pdir, "%s/echo", f->dir) > 0);
    prism_manifest m = plugin_manifest(pdir, so);
    cJSON *lock = NULL;
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), 0);
    assert_int_equal(prism_lock_set_entry(lock, "echo", prism_lock_entry_new(&m, pdir, f->err, sizeof f->err)), 0);
    assert_int_equal(prism_lock_save(f->dir, lock, f->err, sizeof f->err), 0);
    cJSON_Delete(lock);
    free(pdir);
    return so;
}

static void test_save_load_round_trip(void **state)
{
    fixture *f = *state;
    char *so = lock_plugin(f);
    cJSON *lock = NULL;
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), 0);
    const cJSON *entry = prism_lock_entry(lock, "echo");
    assert_non_null(entry);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "version")->valuestring, "1.2.3");
    cJSON_Delete(lock);
    /* Only plugins.lock and the plugin folder remain: no temporary file left behind. */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int count = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        count += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(count, 2);
    free(so);
}

static void test_verify_matches(void **state)
{
    fixture *f = *state;
    char *so = lock_plugin(f);
    assert_int_equal(prism_lock_verify(f->dir, "echo", NULL, so, f->err, sizeof f->err), 0);
    free(so);
}

static void test_verify_detects_change(void **state)
{
    fixture *f = *state;
    char *so = lock_plugin(f);
    free(write_file(f->dir, "echo/echo.so", "tampered bytes"));
    assert_int_equal(prism_lock_verify(f->dir, "echo", NULL, so, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "library changed since it was approved"));
    free(so);
}

static void test_verify_unknown_plugin(void **state)
{
    fixture *f = *state;
    char *so = lock_plugin(f);
    assert_int_equal(prism_lock_verify(f->dir, "other", NULL, so, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "not in plugins.lock"));
    assert_int_equal(prism_lock_verify(f->dir, "echo", "sub", so, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "not in plugins.lock"));
    free(so);
}

static void test_group_entry_and_verify(void **state)
{
    fixture *f = *state;
    char *gdir = NULL;
    assert_true(asprintf(&gdir, "%s/gw", f->dir) > 0);
    assert_int_equal(mkdir(gdir, 0755), 0);
    char *so_a = write_file(gdir, "router/router.so", "router bytes");
    char *so_b = write_file(gdir, "provider/provider.so", "provider bytes");
    prism_manifest a = plugin_manifest(NULL, so_a), b = plugin_manifest(NULL, so_b);
    a.name = "router";
    b.name = "provider";
    b.network_count = 0;
    prism_manifest *subs[] = {&a, &b};
    prism_manifest g = {.dir = gdir, .name = "gw", .version = "0.1.0", .is_group = 1, .subs = subs, .sub_count = 2};
    cJSON *lock = NULL;
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), 0);
    cJSON *entry = prism_lock_entry_new(&g, gdir, f->err, sizeof f->err);
    assert_non_null(entry);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "kind")->valuestring, "group");
    const cJSON *perms = cJSON_GetObjectItemCaseSensitive(entry, "permissions");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(perms, "router")));
    const cJSON *pnet =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(perms, "provider"), "network");
    assert_int_equal(cJSON_GetArraySize(pnet), 0);
    const cJSON *lib = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry, "libraries"), "router");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(lib, "file")->valuestring, "router/router.so");
    assert_int_equal(prism_lock_set_entry(lock, "gw", entry), 0);
    assert_int_equal(prism_lock_save(f->dir, lock, f->err, sizeof f->err), 0);
    assert_int_equal(prism_lock_verify(f->dir, "gw", "provider", so_b, f->err, sizeof f->err), 0);
    assert_int_equal(prism_lock_verify(f->dir, "gw", "router", so_b, f->err, sizeof f->err), -1);
    cJSON_Delete(lock);
    free(so_a);
    free(so_b);
    free(gdir);
}

static void test_set_entry_replaces_and_remove(void **state)
{
    fixture *f = *state;
    cJSON *lock = NULL;
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), 0);
    assert_int_equal(prism_lock_set_entry(lock, "x", cJSON_CreateString("first")), 0);
    assert_int_equal(prism_lock_set_entry(lock, "x", cJSON_CreateObject()), 0);
    assert_non_null(prism_lock_entry(lock, "x"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lock, "plugins")), 1);
    assert_int_equal(prism_lock_remove(lock, "x"), 0);
    assert_int_equal(prism_lock_remove(lock, "x"), -1);
    assert_null(prism_lock_entry(lock, "x"));
    cJSON_Delete(lock);
}

static void test_load_rejects_bad_files(void **state)
{
    fixture *f = *state;
    cJSON *lock = NULL;
    free(write_file(f->dir, PRISM_LOCK_FILE, "{not json"));
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "not valid JSON"));
    free(write_file(f->dir, PRISM_LOCK_FILE, "{\"lock_version\":2,\"plugins\":{}}"));
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "lock_version 2"));
    free(write_file(f->dir, PRISM_LOCK_FILE, "[]"));
    assert_int_equal(prism_lock_load(f->dir, &lock, f->err, sizeof f->err), -1);
    assert_null(lock);
}

static void test_save_into_missing_folder_fails(void **state)
{
    fixture *f = *state;
    cJSON *lock = cJSON_Parse("{\"lock_version\":1,\"plugins\":{}}");
    assert_int_equal(prism_lock_save("/nonexistent/prism-dir", lock, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "/nonexistent/prism-dir"));
    cJSON_Delete(lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent_file_is_empty_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha256_known_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha256_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_of_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_library_outside_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_missing_library, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_unknown_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_entry_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_entry_replaces_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_into_missing_folder_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
