/*
 * cmd_build.c - compiling a plugin's sources into its shared library.
 *
 * The compiler is started directly with an argument vector (no shell), so a
 * file or folder name with spaces or shell characters is just a name.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#ifndef PRISM_INCLUDE_DIR
#error "PRISM_INCLUDE_DIR must name the folder holding prism/plugin.h"
#endif

/* Flags before the sources: the ones CMake builds the bundled plugins with
 * (C17 with _GNU_SOURCE, so strdup and friends are declared), against the
 * plugin header. An undeclared function is an error, not a warning: its
 * result would be truncated to int and the plugin would crash at run time. */
static char *const leading_flags[] = {
    "-std=c17", "-D_GNU_SOURCE",   "-Werror=implicit-function-declaration", "-O2", "-fPIC", "-shared",
    "-I",       PRISM_INCLUDE_DIR,
};
#define LEADING_COUNT (sizeof leading_flags / sizeof leading_flags[0])

/* $CC split into words like the shell's ${CC:-cc} would ("ccache gcc"). */
static size_t split_cc(char *cc, char **words, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(cc, " \t", &save); w != NULL && n < max; w = strtok_r(NULL, " \t", &save))
        words[n++] = w;
    return n;
}

/* cc [CC words] -std=c17 ... sources -o library -lcjson, NULL-terminated;
 * the strings are borrowed from `cc` and the manifest. */
static char **compiler_argv(const prism_manifest *m, char *cc)
{
    enum { MAX_CC_WORDS = 16 };
    char **argv = calloc(MAX_CC_WORDS + LEADING_COUNT + m->source_count + 4, sizeof *argv);
    if (argv == NULL)
        return NULL;
    size_t n = split_cc(cc, argv, MAX_CC_WORDS);
    if (n == 0)
        argv[n++] = "cc";
    for (size_t i = 0; i < LEADING_COUNT; i++)
        argv[n++] = leading_flags[i];
    for (size_t i = 0; i < m->source_count; i++)
        argv[n++] = m->sources[i];
    argv[n++] = "-o";
    argv[n++] = m->library;
    argv[n++] = "-lcjson";
    return argv;
}

/* Runs argv to completion; the compiler's own messages go to our stderr. */
static int run_compiler(char **argv, const char *name, char *err, size_t errlen)
{
    pid_t pid;
    int status = 0;
    fflush(stdout);
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot run the compiler %s: %s (set CC to choose one)", name, argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "%s: waiting for the compiler: %s", name, strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    snprintf(err, errlen, "%s: build failed (%s %s %d)", name, argv[0], WIFEXITED(status) ? "exited with" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return -1;
}

int cli_build_plugin(const prism_manifest *m, char *err, size_t errlen)
{
    const char *env_cc = getenv("CC");
    char *cc = strdup(env_cc != NULL ? env_cc : "");
    char **argv = cc != NULL ? compiler_argv(m, cc) : NULL;
    int rc = -1;
    if (argv == NULL)
        snprintf(err, errlen, "out of memory");
    else
        rc = run_compiler(argv, m->name, err, errlen);
    free(argv);
    free(cc);
    return rc;
}
