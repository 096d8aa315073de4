/*
 * cmd_fs.c - small file-system helpers of the plugin-management commands.
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

char *cli_join(const char *a, const char *b)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", a, b) < 0) {
        fputs("prism: out of memory\n", stderr);
        abort();
    }
    return p;
}

int cli_mkdirs(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int rc = 0;
    /* Create each ancestor in turn; existing ones are fine. */
    for (char *p = copy + 1; rc == 0 && *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    if (rc == 0 && mkdir(copy, 0755) != 0 && errno != EEXIST)
        rc = -1;
    free(copy);
    return rc;
}

static int remove_at(int dirfd, const char *name, char *err, size_t errlen);

/* Empties the open folder `fd` (taken over and closed). */
static int remove_children(int fd, const char *name, char *err, size_t errlen)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        snprintf(err, errlen, "%s: cannot read folder: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = 0;
    for (struct dirent *e = readdir(d); rc == 0 && e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = remove_at(dirfd(d), e->d_name, err, errlen);
    }
    closedir(d);
    return rc;
}

/* Relative to a folder descriptor, so a symbolic link planted inside the tree
 * is removed itself and never followed out of it. */
static int remove_at(int dirfd, const char *name, char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0 || remove_children(fd, name, err, errlen) != 0) {
            if (fd < 0)
                snprintf(err, errlen, "%s: cannot open folder: %s", name, strerror(errno));
            return -1;
        }
    }
    if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
        snprintf(err, errlen, "%s: cannot remove: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_remove_tree(const char *path, char *err, size_t errlen)
{
    return remove_at(AT_FDCWD, path, err, errlen);
}

char *cli_move_aside(const char *plugins_dir, const char *name, char *err, size_t errlen)
{
    char *target = cli_join(plugins_dir, name);
    char *old = NULL;
    if (asprintf(&old, "%s/.old-%s-XXXXXX", plugins_dir, name) < 0)
        abort(); /* as cli_join: out of memory */
    /* rename() replaces an empty folder atomically: reserve a unique one first. */
    if (mkdtemp(old) == NULL || rename(target, old) != 0) {
        snprintf(err, errlen, "cannot move %s aside: %s", target, strerror(errno));
        rmdir(old);
        free(old);
        old = NULL;
    }
    free(target);
    return old;
}

int cli_valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    }
    return 1;
}
