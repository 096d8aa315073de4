/*
 * Chain expansion against the real bundled plugins: preset chains,
 * sub-plugin references, sibling lookup, and errors with file:line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chain.h"
#include "config.h"
#include "loader.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    prism_config *cfg;
    prism_registry *reg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/prism-chain-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/config.yml", f->dir);
    unsetenv("PRISM_BUNDLED_PLUGIN_DIR");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    prism_registry_free(f->reg);
    prism_config_free(f->cfg);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Writes the config and loads it with its plugins; returns the routes or
 * NULL with the message in err. */
static prism_route_table *load(fixture *f, const char *yaml, char *err, size_t errlen)
{
    FILE *fp = fopen(f->path, "w");
    fputs(yaml, fp);
    fclose(fp);
    assert_int_equal(prism_config_load(f->path, &f->cfg, err, errlen), 0);
    assert_int_equal(prism_registry_load(f->cfg, &f->reg, err, errlen), 0);
    prism_route_table *t = NULL;
    return prism_routes_build(f->cfg, f->reg, &t, err, errlen) == 0 ? t : NULL;
}

static void preset_chain_expands_to_its_steps(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    prism_route_table *t = load(f,
                                "plugins:\n  enabled: [ai_gateway]\n"
                                "routes:\n  /chat/completions:\n    chain: [ai_gateway:chat]\n",
                                err, sizeof(err));
    assert_non_null(t);
    const prism_route *r = prism_routes_match(t, "/v1/chat/completions", strlen("/v1/chat/completions"));
    assert_non_null(r);
    assert_int_equal(r->chain.step_count, 1);
    assert_string_equal(r->chain.steps[0]->name, "model_router");
    assert_string_equal(r->chain.steps[0]->group, "ai_gateway");
    assert_null(prism_routes_match(t, "/chat/completions", strlen("/chat/completions")));
    prism_routes_free(t);
}

static void sub_plugin_references_and_concatenation(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    prism_route_table *t = load(f,
                                "server:\n  api_prefix: \"\"\n"
                                "plugins:\n  enabled: [ai_gateway]\n"
                                "routes:\n  /x:\n    chain: [ai_gateway.openai_provider]\n"
                                "  /y: [ai_gateway:chat, openai_provider]\n",
                                err, sizeof(err));
    assert_non_null(t);
    const prism_route *x = prism_routes_match(t, "/x", 2);
    assert_non_null(x);
    assert_int_equal(x->chain.step_count, 1);
    assert_string_equal(x->chain.steps[0]->name, "openai_provider");
    const prism_route *y = prism_routes_match(t, "/y", 2);
    assert_int_equal(y->chain.step_count, 2);
    assert_string_equal(y->chain.steps[0]->name, "model_router");
    assert_string_equal(y->chain.steps[1]->name, "openai_provider");
    prism_routes_free(t);
}

static void unknown_references_name_the_line(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    prism_route_table *t = load(f,
                                "plugins:\n  enabled: [ai_gateway]\n"
                                "routes:\n  /ok: [ai_gateway:chat]\n"
                                "  /bad:\n    chain: [ai_gateway:nosuch]\n",
                                err, sizeof(err));
    assert_null(t);
    char want[160];
    snprintf(want, sizeof(want), "%s:5:", f->path);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "no chain 'nosuch'"));
}

static void unknown_group_and_step(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    assert_null(load(f, "plugins:\n  enabled: [ai_gateway]\nroutes:\n  /a: [other:chat]\n", err, sizeof(err)));
    assert_non_null(strstr(err, "'other'"));
    prism_registry_free(f->reg);
    prism_config_free(f->cfg);
    f->reg = NULL;
    f->cfg = NULL;
    assert_null(load(f, "plugins:\n  enabled: [ai_gateway]\nroutes:\n  /a: [nosuch_plugin]\n", err, sizeof(err)));
    assert_non_null(strstr(err, "nosuch_plugin"));
}

static void siblings_resolve_inside_the_group(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    prism_route_table *t = load(f, "plugins:\n  enabled: [ai_gateway]\nroutes: {}\n", err, sizeof(err));
    assert_non_null(t);
    const prism_loaded *router = prism_registry_find(f->reg, "ai_gateway.model_router");
    assert_non_null(router);
    const prism_loaded *openai = prism_registry_sibling(f->reg, router, "openai_provider");
    assert_non_null(openai);
    assert_string_equal(openai->name, "openai_provider");
    assert_non_null(prism_registry_sibling(f->reg, router, "claude_provider"));
    /* A provider the router may name but nobody installed: absent, never a crash. */
    assert_null(prism_registry_sibling(f->reg, router, "mistral_provider"));
    assert_null(prism_registry_find(f->reg, "ai_gateway.nope"));
    prism_routes_free(t);
}

static void loader_refuses_foreign_and_future_libraries(void **state)
{
    (void)state;
    char err[512] = "";
    const prism_plugin_t *desc = NULL;
    assert_null(prism_plugin_open(PRISM_TEST_BAD_ABI_PLUGIN, &desc, err, sizeof(err)));
    assert_non_null(strstr(err, "ABI"));
    assert_null(prism_plugin_open("/nonexistent/x.so", &desc, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot load"));
    void *dl =
        prism_plugin_open(PRISM_BUNDLED_PLUGIN_DIR "/ai_gateway/model_router/model_router.so", &desc, err, sizeof(err));
    assert_non_null(dl);
    assert_string_equal(desc->name, "model_router");
    assert_int_equal(desc->abi_version, PRISM_PLUGIN_ABI_VERSION);
    dlclose(dl);
}

static void enabled_but_missing_plugin(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    FILE *fp = fopen(f->path, "w");
    fputs("plugins:\n  enabled: [not_there]\nroutes: {}\n", fp);
    fclose(fp);
    assert_int_equal(prism_config_load(f->path, &f->cfg, err, sizeof(err)), 0);
    assert_int_equal(prism_registry_load(f->cfg, &f->reg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'not_there' is enabled but not found"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(preset_chain_expands_to_its_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(sub_plugin_references_and_concatenation, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_references_name_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_group_and_step, setup, teardown),
        cmocka_unit_test_setup_teardown(siblings_resolve_inside_the_group, setup, teardown),
        cmocka_unit_test(loader_refuses_foreign_and_future_libraries),
        cmocka_unit_test_setup_teardown(enabled_but_missing_plugin, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
