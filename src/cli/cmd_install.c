/*
 * cmd_install.c - `prism install PATH`: build, validate, show, approve, install.
 *
 * Everything happens in a staging copy inside plugins_dir; only an approved,
 * built and validated plugin is moved into place and recorded in
 * plugins.lock, which is what the server checks before loading it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "lockfile.h"

typedef struct install_job {
    const char *plugins_dir;
    char *source;           /* the folder installed from, absolute */
    prism_manifest *staged; /* the manifest of the staging copy */
    char *staging;          /* removed on failure; NULL once moved into place */
    cJSON *entry;           /* the lock entry, once computed */
    char err[1024];
} install_job;

/* Finds the plugin at `path` and copies it into a staging folder. */
static int stage(install_job *job, const char *path)
{
    prism_manifest *m = NULL;
    job->source = realpath(path, NULL);
    if (job->source == NULL) {
        snprintf(job->err, sizeof job->err, "%s: no such plugin folder", path);
        return -1;
    }
    if (cli_mkdirs(job->plugins_dir) != 0) {
        snprintf(job->err, sizeof job->err, "cannot create %s", job->plugins_dir);
        return -1;
    }
    if (prism_manifest_load(job->source, &m, job->err, sizeof job->err) != 0)
        return -1;
    int rc = -1;
    if (!cli_valid_name(m->name))
        snprintf(job->err, sizeof job->err, "%s: invalid plugin name (expected [a-z0-9_]+)", job->source);
    else if ((job->staging = cli_stage_copy(m, job->plugins_dir, job->err, sizeof job->err)) != NULL)
        rc = prism_manifest_load(job->staging, &job->staged, job->err, sizeof job->err);
    prism_manifest_free(m);
    return rc;
}

static int build_one(const prism_manifest *m, char *err, size_t errlen)
{
    if (m->source_count == 0)
        return 0; /* prebuilt: validation checks its library is there */
    printf("building %s (%zu source file%s)\n", m->name, m->source_count, m->source_count == 1 ? "" : "s");
    return cli_build_plugin(m, err, errlen);
}

/* Builds every library of the staged copy, then checks they all load. */
static int build(install_job *job)
{
    const prism_manifest *m = job->staged;
    if (!m->is_group && build_one(m, job->err, sizeof job->err) != 0)
        return -1;
    for (size_t i = 0; i < m->sub_count; i++) {
        if (build_one(m->subs[i], job->err, sizeof job->err) != 0)
            return -1;
    }
    if (cli_validate_libraries(m, job->err, sizeof job->err) != 0)
        return -1;
    job->entry = prism_lock_entry_new(m, job->source, job->err, sizeof job->err);
    return job->entry != NULL ? 0 : -1;
}

/* Asks on stdout, reads one line of stdin (a terminal or a pipe). EOF refuses. */
static int approved(void)
{
    char *line = NULL;
    size_t cap = 0;
    fputs("Approve these permissions? [y/N] ", stdout);
    fflush(stdout);
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0 || !isatty(STDIN_FILENO))
        putchar('\n'); /* no echoed answer ended the prompt's line */
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    int yes = n > 0 && (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0);
    free(line);
    return yes;
}

/* Moves the staging copy into place and records it in plugins.lock. */
static int commit(install_job *job)
{
    const char *name = job->staged->name;
    cJSON *lock = NULL;
    if (prism_lock_load(job->plugins_dir, &lock, job->err, sizeof job->err) != 0)
        return -1;
    int rc = cli_stage_commit(job->staging, job->plugins_dir, name, job->err, sizeof job->err);
    if (rc == 0) {
        free(job->staging);
        job->staging = NULL;
        rc = prism_lock_set_entry(lock, name, job->entry);
        job->entry = NULL;
        if (rc != 0)
            snprintf(job->err, sizeof job->err, "%s: malformed plugins.lock", job->plugins_dir);
    }
    if (rc == 0)
        rc = prism_lock_save(job->plugins_dir, lock, job->err, sizeof job->err);
    cJSON_Delete(lock);
    return rc;
}

static int install(install_job *job, const cli_args *args)
{
    if (stage(job, args->operand) != 0 || build(job) != 0) {
        fprintf(stderr, "prism: %s\n", job->err);
        return CLI_ERROR;
    }
    putchar('\n');
    cli_print_request(job->staged);
    if (!args->yes && !approved()) {
        fputs("prism: not approved; nothing was installed\n", stderr);
        return CLI_REFUSED;
    }
    if (commit(job) != 0) {
        fprintf(stderr, "prism: %s\n", job->err);
        return CLI_ERROR;
    }
    printf("installed %s %s into %s/%s\n", job->staged->name, job->staged->version, job->plugins_dir,
           job->staged->name);
    return CLI_OK;
}

static void job_release(install_job *job)
{
    char ignored[256];
    if (job->staging != NULL)
        cli_remove_tree(job->staging, ignored, sizeof ignored);
    free(job->staging);
    free(job->source);
    prism_manifest_free(job->staged);
    cJSON_Delete(job->entry);
}

static int run(const cli_args *args)
{
    cli_config c;
    if (cli_config_load_or_defaults(args, &c) != CLI_OK)
        return CLI_ERROR;
    install_job job = {.plugins_dir = c.cfg->plugins_dir};
    int rc = install(&job, args);
    job_release(&job);
    cli_config_release(&c);
    return rc;
}

const cli_command cli_cmd_install = {
    .name = "install",
    .summary = "build a plugin or meta-plugin folder, approve its permissions, install it",
    .usage = "usage: prism install PATH [--yes] [--config FILE]\n"
             "\n"
             "Installs the plugin (plugin.yml) or meta-plugin (group.yml) in folder PATH into\n"
             "the config's plugins.dir (./.prism/plugins when there is no config.yml):\n"
             "  1. copies PATH into a staging folder and compiles each (sub-)plugin's sources\n"
             "     with $CC (default cc) against the Prism plugin header;\n"
             "  2. opens every library to check its symbol, ABI and name;\n"
             "  3. shows the permissions asked for (network hosts, environment variables)\n"
             "     and asks for approval;\n"
             "  4. moves the plugin into place and records the sha256 of its libraries in\n"
             "     plugins.lock: the server refuses a library that changed afterwards.\n"
             "\n"
             "options:\n"
             "  -y, --yes        approve without asking\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n"
             "\n"
             "exit codes: 0 installed, 1 error, 2 usage error, 3 not approved\n",
    .options = CLI_OPT_CONFIG | CLI_OPT_YES,
    .operand = "PATH",
    .run = run,
};
