/*
 * log.c - log lines in JSON or text.
 *
 * The sink is process-wide and set once by prism_log_configure before any
 * worker runs (like the environment it is read from), then only read.
 */
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
    prism_log_level level;
    int json;
    int fd;
} sink = {PRISM_LOG_INFO, 1, STDERR_FILENO};

static const char *level_name(prism_log_level level)
{
    switch (level) {
    case PRISM_LOG_DEBUG: return "debug";
    case PRISM_LOG_INFO: return "info";
    case PRISM_LOG_WARN: return "warn";
    default: return "error";
    }
}

static int level_from_env(prism_log_level *out)
{
    const char *v = getenv("PRISM_LOG_LEVEL");
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; v != NULL && i < 4; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = (prism_log_level)i;
            return 1;
        }
    }
    return 0;
}

int prism_log_configure(prism_log_level level, int json, const char *file)
{
    level_from_env(&level);
    sink.level = level;
    sink.json = json;
    if (file != NULL) {
        int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
        sink.fd = fd;
    }
    return 0;
}

prism_log_level prism_log_threshold(void)
{
    return sink.level;
}

int prism_log_is_json(void)
{
    return sink.json;
}

void prism_log_line(const char *line, size_t len)
{
    char buf[8192];
    if (len > sizeof(buf) - 1)
        len = sizeof(buf) - 1;
    memcpy(buf, line, len);
    buf[len] = '\n';
    ssize_t w = write(sink.fd, buf, len + 1);
    (void)w;
}

size_t prism_json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && len + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)ch;
        } else if (ch < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
        } else {
            buf[len++] = (char)ch;
        }
    }
    buf[len < cap ? len : cap - 1] = '\0';
    return len;
}

size_t prism_log_timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t off = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(buf + off, cap - off, ".%03ldZ", ts.tv_nsec / 1000000);
    return off + (n > 0 ? (size_t)n : 0);
}

void prism_logv(prism_log_level level, const char *source, const char *fmt, va_list ap)
{
    char msg[2048], line[4096], ts[40];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    prism_log_timestamp(ts, sizeof(ts));
    size_t off;
    if (sink.json) {
        off = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"source\":\"", ts,
                               level_name(level));
        off = prism_json_escape(line, off, sizeof(line), source);
        off += (size_t)snprintf(line + off, sizeof(line) - off, "\",\"msg\":\"");
        off = prism_json_escape(line, off, sizeof(line), msg);
        off += (size_t)snprintf(line + off, sizeof(line) - off, "\"}");
    } else {
        off = (size_t)snprintf(line, sizeof(line), "%s %-5s %s: %s", ts, level_name(level), source, msg);
    }
    prism_log_line(line, off < sizeof(line) ? off : sizeof(line) - 1);
}

void prism_logf(prism_log_level level, const char *source, const char *fmt, ...)
{
    if (level < prism_log_threshold())
        return;
    va_list ap;
    va_start(ap, fmt);
    prism_logv(level, source, fmt, ap);
    va_end(ap);
}
