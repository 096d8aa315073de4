/*
 * cmd_reload.c - `prism reload`: check the config, then ask every running
 * `prism serve` of that config to reload it (SIGHUP).
 *
 * The servers are found through /proc: a process whose command line is
 * `prism serve ... [--config FILE]` and whose FILE, taken from its own
 * working directory, is this config. No pid file to go stale.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The config path a `prism serve` command line names (NULL: not one). */
static const char *served_config(char *cmdline, size_t len)
{
    const char *argv[64];
    size_t argc = 0;
    for (size_t i = 0; i < len && argc < 64; i += strlen(cmdline + i) + 1)
        argv[argc++] = cmdline + i;
    if (argc < 2 || strcmp(argv[1], "serve") != 0)
        return NULL;
    const char *base = strrchr(argv[0], '/');
    if (strcmp(base ? base + 1 : argv[0], "prism") != 0)
        return NULL;
    for (size_t i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return "config.yml";
}

/* 1 when process `pid` serves the config at `want` (a real path). */
static int serves(const char *pid, const char *want)
{
    char path[300], cmdline[8192], cwd[PATH_MAX], cfg[PATH_MAX * 2], real[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
    fclose(f);
    cmdline[n] = '\0';
    const char *file = served_config(cmdline, n);
    snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
    ssize_t c = file ? readlink(path, cwd, sizeof(cwd) - 1) : -1;
    if (c < 0)
        return 0;
    cwd[c] = '\0';
    snprintf(cfg, sizeof(cfg), "%s/%s", cwd, file);
    return realpath(file[0] == '/' ? file : cfg, real) != NULL && strcmp(real, want) == 0;
}

static int signal_servers(const char *want)
{
    DIR *d = opendir("/proc");
    int sent = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == getpid() || !serves(e->d_name, want))
            continue;
        if (kill((pid_t)atoi(e->d_name), SIGHUP) == 0) {
            printf("reloading: sent SIGHUP to prism serve (pid %s)\n", e->d_name);
            sent++;
        }
    }
    if (d != NULL)
        closedir(d);
    return sent;
}

static int run(const cli_args *args)
{
    prism_config *cfg = NULL;
    prism_registry *reg = NULL;
    prism_route_table *routes = NULL;
    if (cli_config_load(args, &cfg) != CLI_OK)
        return CLI_ERROR;
    /* A config the server would refuse is reported here, before signalling. */
    int rc = cli_load_served(cfg, &reg, &routes);
    char want[PATH_MAX];
    if (rc == CLI_OK && realpath(cfg->file, want) == NULL)
        rc = CLI_ERROR;
    if (rc == CLI_OK && signal_servers(want) == 0) {
        fprintf(stderr, "prism: no running `prism serve` of %s found\n", cfg->file);
        rc = CLI_ERROR;
    }
    prism_routes_free(routes);
    prism_registry_free(reg);
    prism_config_free(cfg);
    return rc;
}

const cli_command cli_cmd_reload = {
    .name = "reload",
    .summary = "check the config, then make the running server reload it (SIGHUP)",
    .usage = "usage: prism reload [--config FILE]\n"
             "\n"
             "Validates the config and its plugins like `prism check`; when they are\n"
             "sound, sends SIGHUP to every running `prism serve` of that config. The\n"
             "server swaps routes, chains and plugin configs atomically: requests in\n"
             "flight finish on the old setup, and a config it cannot load is refused\n"
             "with a log line while the old one keeps serving. (Plain `kill -HUP PID`\n"
             "does the same.) Listening address, workers, body limit, read and\n"
             "shutdown timeouts and the CA file change only at the next start.\n"
             "\n"
             "options:\n"
             "  --config FILE    config file (default: $PRISM_CONFIG, else ./config.yml)\n"
             "  -h, --help       this text\n",
    .options = CLI_OPT_CONFIG,
    .operand = NULL,
    .run = run,
};
