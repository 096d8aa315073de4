/*
 * lockfile.c - plugins.lock: load, atomic save, entries and verification.
 */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

/* "a/b", malloc'd; NULL on exhaustion. */
static char *join_path(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + 1 + lb + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static cJSON *lock_new_empty(void)
{
    cJSON *lock = cJSON_CreateObject();
    if (lock == NULL)
        return NULL;
    if (!cJSON_AddNumberToObject(lock, "lock_version", PRISM_LOCK_VERSION) ||
        !cJSON_AddObjectToObject(lock, "plugins")) {
        cJSON_Delete(lock);
        return NULL;
    }
    return lock;
}

/* Reads a whole stream into a NUL-terminated buffer. */
static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f))
            break;
        if (feof(f)) {
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        cap *= 2;
        char *grown = realloc(buf, cap);
        if (grown == NULL)
            break;
        buf = grown;
    }
    free(buf);
    return NULL;
}

/* Checks the shape every other function relies on. */
static int lock_check_shape(const cJSON *lock, const char *path, char *err, size_t errlen)
{
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(lock, "lock_version");
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(lock, "plugins");
    if (!cJSON_IsObject(lock) || !cJSON_IsNumber(ver) || !cJSON_IsObject(plugins)) {
        snprintf(err, errlen, "%s: not a plugins.lock (expected lock_version and plugins)", path);
        return -1;
    }
    if (ver->valuedouble != PRISM_LOCK_VERSION) {
        snprintf(err, errlen, "%s: lock_version %g is not supported (expected %d)", path, ver->valuedouble,
                 PRISM_LOCK_VERSION);
        return -1;
    }
    return 0;
}

static int lock_parse_file(FILE *f, const char *path, cJSON **out, char *err, size_t errlen)
{
    size_t len = 0;
    errno = 0;
    char *text = read_stream(f, &len);
    if (text == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno ? errno : ENOMEM));
        return -1;
    }
    cJSON *lock = cJSON_ParseWithLength(text, len);
    free(text);
    if (lock == NULL) {
        snprintf(err, errlen, "%s: not valid JSON", path);
        return -1;
    }
    if (lock_check_shape(lock, path, err, errlen) != 0) {
        cJSON_Delete(lock);
        return -1;
    }
    *out = lock;
    return 0;
}

int prism_lock_load(const char *plugins_dir, cJSON **out, char *err, size_t errlen)
{
    char *path = join_path(plugins_dir, PRISM_LOCK_FILE);
    if (path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        rc = lock_parse_file(f, path, out, err, errlen);
        fclose(f);
    } else if (errno == ENOENT) {
        /* Nothing installed yet: an empty lock, so verification says "not in plugins.lock". */
        *out = lock_new_empty();
        rc = *out != NULL ? 0 : -1;
        if (rc != 0)
            snprintf(err, errlen, "out of memory");
    } else {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The rename is only durable once the folder itself is flushed; a failure
 * here loses nothing already written, so it is not reported. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Writes `text` to a fresh temporary file in `dir` and renames it to `path`. */
static int replace_file(const char *dir, const char *path, const char *text, char *err, size_t errlen)
{
    char *tmp = join_path(dir, ".plugins.lock.XXXXXX");
    if (tmp == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file: %s", dir, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = -1;
    if (write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 || fsync(fd) != 0)
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
    else if (fchmod(fd, 0644) != 0 || rename(tmp, path) != 0)
        snprintf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
    else
        rc = 0;
    close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int prism_lock_save(const char *plugins_dir, const cJSON *lock, char *err, size_t errlen)
{
    char *path = join_path(plugins_dir, PRISM_LOCK_FILE);
    char *text = cJSON_Print(lock);
    int rc = -1;
    if (path == NULL || text == NULL)
        snprintf(err, errlen, "out of memory");
    else
        rc = replace_file(plugins_dir, path, text, err, errlen);
    if (rc == 0)
        sync_dir(plugins_dir);
    cJSON_free(text);
    free(path);
    return rc;
}

static void hex_encode(const unsigned char *bytes, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    hex[2 * n] = '\0';
}

/* Feeds the stream to the digest; 0 when every byte was read. */
static int digest_stream(EVP_MD_CTX *md, FILE *f)
{
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (EVP_DigestUpdate(md, buf, n) != 1)
            return -1;
    }
    return ferror(f) ? -1 : 0;
}

int prism_sha256_file(const char *path, char hex[65], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && digest_stream(md, f) == 0 &&
             EVP_DigestFinal_ex(md, digest, &dlen) == 1;
    EVP_MD_CTX_free(md);
    fclose(f);
    if (!ok) {
        snprintf(err, errlen, "%s: cannot compute sha256", path);
        return -1;
    }
    hex_encode(digest, dlen, hex);
    return 0;
}

const cJSON *prism_lock_entry(const cJSON *lock, const char *name)
{
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(lock, "plugins");
    const cJSON *entry = cJSON_GetObjectItemCaseSensitive(plugins, name);
    return cJSON_IsObject(entry) ? entry : NULL;
}

/* The recorded sha256 of a library, or NULL. */
static const char *locked_sha256(const cJSON *lock, const char *name, const char *sub)
{
    const cJSON *libs = cJSON_GetObjectItemCaseSensitive(prism_lock_entry(lock, name), "libraries");
    const cJSON *lib = cJSON_GetObjectItemCaseSensitive(libs, sub != NULL ? sub : name);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(lib, "sha256");
    return cJSON_IsString(sha) ? sha->valuestring : NULL;
}

int prism_lock_verify(const char *plugins_dir, const char *name, const char *sub, const char *so_path, char *err,
                      size_t errlen)
{
    cJSON *lock = NULL;
    if (prism_lock_load(plugins_dir, &lock, err, errlen) != 0)
        return -1;
    int rc = -1;
    char actual[65];
    const char *expected = locked_sha256(lock, name, sub);
    /* Named as a route step would name it, since the caller may not say which plugin. */
    const char *dot = sub != NULL ? "." : "", *subname = sub != NULL ? sub : "";
    if (expected == NULL)
        snprintf(err, errlen, "%s%s%s: not in plugins.lock: install it with prism install", name, dot, subname);
    else if (prism_sha256_file(so_path, actual, err, errlen) != 0)
        rc = -1;
    else if (strcmp(expected, actual) != 0)
        snprintf(err, errlen, "%s%s%s: library changed since it was approved: reinstall it with prism install", name,
                 dot, subname);
    else
        rc = 0;
    cJSON_Delete(lock);
    return rc;
}

static cJSON *string_array(char **items, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        cJSON *s = cJSON_CreateString(items[i]);
        if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* {"network":[..],"env":[..]} of one plugin; NULL on exhaustion. */
static cJSON *permissions_json(const prism_manifest *m)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *net = string_array(m->network, m->network_count);
    cJSON *env = string_array(m->env, m->env_count);
    if (p == NULL || net == NULL || env == NULL) {
        cJSON_Delete(p);
        cJSON_Delete(net);
        cJSON_Delete(env);
        return NULL;
    }
    cJSON_AddItemToObject(p, "network", net);
    cJSON_AddItemToObject(p, "env", env);
    return p;
}

/* `path` relative to `root`, or NULL when it does not lie inside it. */
static const char *relative_inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (strncmp(path, root, n) != 0 || path[n] != '/' || path[n + 1] == '\0')
        return NULL;
    return path + n + 1;
}

/* Adds {"file","sha256"} of library `so_path` under `key`. */
static int add_library(cJSON *libs, const char *key, const char *root, const char *so_path, char *err, size_t errlen)
{
    const char *rel = so_path != NULL ? relative_inside(root, so_path) : NULL;
    char hex[65];
    if (rel == NULL) {
        snprintf(err, errlen, "%s: library %s is not inside the plugin folder", key, so_path ? so_path : "(none)");
        return -1;
    }
    if (prism_sha256_file(so_path, hex, err, errlen) != 0)
        return -1;
    cJSON *lib = cJSON_AddObjectToObject(libs, key);
    if (lib == NULL || !cJSON_AddStringToObject(lib, "file", rel) || !cJSON_AddStringToObject(lib, "sha256", hex)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* "permissions": the plugin's own, or one object per present sub-plugin. */
static int add_permissions(cJSON *entry, const prism_manifest *m)
{
    if (!m->is_group) {
        cJSON *p = permissions_json(m);
        if (p == NULL || !cJSON_AddItemToObject(entry, "permissions", p)) {
            cJSON_Delete(p);
            return -1;
        }
        return 0;
    }
    cJSON *perms = cJSON_AddObjectToObject(entry, "permissions");
    for (size_t i = 0; perms != NULL && i < m->sub_count; i++) {
        cJSON *p = permissions_json(m->subs[i]);
        if (p == NULL || !cJSON_AddItemToObject(perms, m->subs[i]->name, p)) {
            cJSON_Delete(p);
            return -1;
        }
    }
    return perms != NULL ? 0 : -1;
}

/* "libraries": the plugin's own, or one per present sub-plugin. */
static int add_libraries(cJSON *entry, const prism_manifest *m, char *err, size_t errlen)
{
    cJSON *libs = cJSON_AddObjectToObject(entry, "libraries");
    if (libs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!m->is_group)
        return add_library(libs, m->name, m->dir, m->library, err, errlen);
    for (size_t i = 0; i < m->sub_count; i++) {
        if (add_library(libs, m->subs[i]->name, m->dir, m->subs[i]->library, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* The current time as RFC 3339 UTC: "2025-01-31T12:00:00Z". */
static void now_rfc3339(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

cJSON *prism_lock_entry_new(const prism_manifest *m, const char *source, char *err, size_t errlen)
{
    char when[32];
    now_rfc3339(when);
    cJSON *entry = cJSON_CreateObject();
    if (entry == NULL || !cJSON_AddStringToObject(entry, "version", m->version ? m->version : "") ||
        !cJSON_AddStringToObject(entry, "kind", m->is_group ? "group" : "plugin") ||
        !cJSON_AddStringToObject(entry, "source", source) || !cJSON_AddStringToObject(entry, "installed_at", when)) {
        snprintf(err, errlen, "out of memory");
        cJSON_Delete(entry);
        return NULL;
    }
    if (add_permissions(entry, m) != 0) {
        snprintf(err, errlen, "out of memory");
        cJSON_Delete(entry);
        return NULL;
    }
    if (add_libraries(entry, m, err, errlen) != 0) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

int prism_lock_set_entry(cJSON *lock, const char *name, cJSON *entry)
{
    cJSON *plugins = cJSON_GetObjectItemCaseSensitive(lock, "plugins");
    if (!cJSON_IsObject(plugins) || entry == NULL) {
        cJSON_Delete(entry);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(plugins, name);
    if (!cJSON_AddItemToObject(plugins, name, entry)) {
        cJSON_Delete(entry);
        return -1;
    }
    return 0;
}

int prism_lock_remove(cJSON *lock, const char *name)
{
    cJSON *plugins = cJSON_GetObjectItemCaseSensitive(lock, "plugins");
    cJSON *entry = cJSON_DetachItemFromObjectCaseSensitive(plugins, name);
    if (entry == NULL)
        return -1;
    cJSON_Delete(entry);
    return 0;
}
