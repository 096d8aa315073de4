/*
 * cmd_stage.c - the staging copy `prism install` builds and validates in,
 * and the switch that puts it in place.
 *
 * Staging lives inside plugins_dir, so the final step is a rename on the same
 * file system: the server never sees a half-copied or half-built plugin.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Deep enough for any plugin; bounds the recursion of a pathological tree. */
#define MAX_DEPTH 16

typedef struct copy_plan {
    const char **skip; /* paths relative to the folder: libraries rebuilt from sources */
    size_t skip_count;
    struct stat avoid; /* plugins_dir: never copied into itself */
} copy_plan;

/* `path` relative to `root`, or NULL when it does not lie inside it. */
static const char *relative_inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (path == NULL || strncmp(path, root, n) != 0 || path[n] != '/')
        return NULL;
    return path + n + 1;
}

static int plan_skip(copy_plan *plan, const prism_manifest *root, const prism_manifest *m, char *err, size_t errlen)
{
    if (m->source_count == 0)
        return 0;
    const char *rel = relative_inside(root->dir, m->library);
    if (rel == NULL) {
        snprintf(err, errlen, "%s: library %s is not inside the plugin folder", m->name, m->library);
        return -1;
    }
    plan->skip[plan->skip_count++] = rel;
    return 0;
}

/* Which files not to copy: the libraries that the build will produce. */
static int make_plan(copy_plan *plan, const prism_manifest *m, const char *plugins_dir, char *err, size_t errlen)
{
    plan->skip_count = 0;
    plan->skip = calloc(m->sub_count + 1, sizeof *plan->skip);
    if (plan->skip == NULL || stat(plugins_dir, &plan->avoid) != 0) {
        snprintf(err, errlen, "%s: %s", plugins_dir, strerror(errno));
        return -1;
    }
    if (!m->is_group)
        return plan_skip(plan, m, m, err, errlen);
    for (size_t i = 0; i < m->sub_count; i++) {
        if (plan_skip(plan, m, m->subs[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int copy_fd(int in, int out)
{
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        for (ssize_t done = 0, w; done < n; done += w) {
            w = write(out, buf + done, (size_t)(n - done));
            if (w < 0)
                return -1;
        }
    }
    return 0;
}

static int copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen)
{
    int in = open(src, O_RDONLY);
    int out = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_EXCL, mode & 0777);
    int rc = in < 0 || out < 0 || copy_fd(in, out) != 0 ? -1 : 0;
    if (rc != 0)
        snprintf(err, errlen, "cannot copy %s to %s: %s", src, dst, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
        rc = -1;
    }
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int skipped(const copy_plan *plan, const char *rel)
{
    if (ends_with(rel, ".o"))
        return 1;
    for (size_t i = 0; i < plan->skip_count; i++) {
        if (strcmp(plan->skip[i], rel) == 0)
            return 1;
    }
    return 0;
}

static int copy_tree(const copy_plan *plan, const char *src, const char *dst, const char *rel, int depth, char *err,
                     size_t errlen);

/* Copies one entry. Links are followed to regular files only: a link to a
 * folder could loop or pull in a whole tree the manifest never mentioned. */
static int copy_entry(const copy_plan *plan, const char *src, const char *dst, const char *rel, int depth, char *err,
                      size_t errlen)
{
    struct stat st;
    if (lstat(src, &st) != 0)
        return 0;
    int is_link = S_ISLNK(st.st_mode);
    if (is_link && stat(src, &st) != 0)
        return 0; /* a dangling link carries nothing to install */
    if (S_ISREG(st.st_mode))
        return skipped(plan, rel) ? 0 : copy_file(src, dst, st.st_mode, err, errlen);
    if (!S_ISDIR(st.st_mode) || is_link || (st.st_dev == plan->avoid.st_dev && st.st_ino == plan->avoid.st_ino))
        return 0;
    if (depth >= MAX_DEPTH) {
        snprintf(err, errlen, "%s: folders nested too deep", src);
        return -1;
    }
    if (mkdir(dst, 0755) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
        return -1;
    }
    return copy_tree(plan, src, dst, rel, depth + 1, err, errlen);
}

static int copy_tree(const copy_plan *plan, const char *src, const char *dst, const char *rel, int depth, char *err,
                     size_t errlen)
{
    DIR *d = opendir(src);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", src, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e = readdir(d); rc == 0 && e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *s = cli_join(src, e->d_name), *t = cli_join(dst, e->d_name);
        char *r = rel[0] != '\0' ? cli_join(rel, e->d_name) : strdup(e->d_name);
        rc = r == NULL ? -1 : copy_entry(plan, s, t, r, depth, err, errlen);
        free(s);
        free(t);
        free(r);
    }
    closedir(d);
    return rc;
}

/* A fresh, hidden <plugins_dir>/.staging-<name>-XXXXXX (hidden: `prism list` skips it). */
static char *make_staging_dir(const char *plugins_dir, const char *name, char *err, size_t errlen)
{
    char *staging = NULL;
    if (asprintf(&staging, "%s/.staging-%s-XXXXXX", plugins_dir, name) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdtemp(staging) == NULL) {
        snprintf(err, errlen, "cannot create a staging folder in %s: %s", plugins_dir, strerror(errno));
        free(staging);
        return NULL;
    }
    return staging;
}

char *cli_stage_copy(const prism_manifest *m, const char *plugins_dir, char *err, size_t errlen)
{
    copy_plan plan = {0};
    char *staging = NULL;
    if (make_plan(&plan, m, plugins_dir, err, errlen) == 0)
        staging = make_staging_dir(plugins_dir, m->name, err, errlen);
    if (staging != NULL && copy_tree(&plan, m->dir, staging, "", 0, err, errlen) != 0) {
        char ignored[256];
        cli_remove_tree(staging, ignored, sizeof ignored);
        free(staging);
        staging = NULL;
    }
    free(plan.skip);
    return staging;
}

int cli_stage_commit(const char *staging, const char *plugins_dir, const char *name, char *err, size_t errlen)
{
    char *target = cli_join(plugins_dir, name);
    char *old = NULL;
    struct stat st;
    int rc = -1;
    int exists = lstat(target, &st) == 0;
    chmod(staging, 0755); /* mkdtemp made it private; an installed plugin is an ordinary folder */
    if (exists && !S_ISDIR(st.st_mode))
        snprintf(err, errlen, "%s exists and is not a folder", target);
    else if (exists && (old = cli_move_aside(plugins_dir, name, err, errlen)) == NULL)
        rc = -1;
    else if (rename(staging, target) != 0)
        snprintf(err, errlen, "cannot move %s to %s: %s", staging, target, strerror(errno));
    else
        rc = 0;
    if (rc != 0 && old != NULL)
        rename(old, target); /* put the previous version back */
    if (rc == 0 && old != NULL && cli_remove_tree(old, err, errlen) != 0)
        fprintf(stderr, "prism: warning: the previous version is left in %s: %s\n", old, err);
    free(old);
    free(target);
    return rc;
}
