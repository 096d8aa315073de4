/*
 * cmd_validate.c - checking staged libraries before anything is installed.
 *
 * A library is opened the way the server will open it (symbol, ABI, name),
 * so a plugin that would fail at `prism serve` fails at install instead.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "loader.h"

/* The library's file name: its folder is the staging copy, which the user never sees. */
static const char *file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static int validate_one(const prism_manifest *m, char *err, size_t errlen)
{
    char why[512];
    const prism_plugin_t *desc = NULL;
    size_t dirlen = strlen(m->dir);
    /* Only a library shipped inside the plugin's folder is opened (and so runs code). */
    if (m->library != NULL && (strncmp(m->library, m->dir, dirlen) != 0 || m->library[dirlen] != '/')) {
        snprintf(err, errlen, "%s: library %s is not inside the plugin folder", m->name, m->library);
        return -1;
    }
    if (m->library == NULL || access(m->library, F_OK) != 0) {
        snprintf(err, errlen, "%s: no library %s and no sources to build it from", m->name,
                 m->library ? file_name(m->library) : "(none)");
        return -1;
    }
    void *dl = prism_plugin_open(m->library, &desc, why, sizeof why);
    if (dl == NULL) {
        snprintf(err, errlen, "%s: %s", m->name, why);
        return -1;
    }
    int rc = 0;
    if (strcmp(desc->name, m->name) != 0) {
        snprintf(err, errlen, "%s: library %s calls itself '%s', not '%s'", m->name, file_name(m->library), desc->name,
                 m->name);
        rc = -1;
    }
    dlclose(dl);
    return rc;
}

int cli_validate_libraries(const prism_manifest *m, char *err, size_t errlen)
{
    if (!m->is_group)
        return validate_one(m, err, errlen);
    for (size_t i = 0; i < m->sub_count; i++) {
        if (validate_one(m->subs[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}
