/*
 * log.c - plain-text log lines on stderr.
 *
 * Each line is formatted into one buffer and written with a single write(2)
 * so lines from several workers never interleave.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(prism_log_level level)
{
    switch (level) {
    case PRISM_LOG_DEBUG: return "debug";
    case PRISM_LOG_INFO: return "info";
    case PRISM_LOG_WARN: return "warn";
    default: return "error";
    }
}

prism_log_level prism_log_threshold(void)
{
    const char *v = getenv("PRISM_LOG_LEVEL");
    if (v == NULL)
        return PRISM_LOG_INFO;
    if (strcasecmp(v, "debug") == 0)
        return PRISM_LOG_DEBUG;
    if (strcasecmp(v, "warn") == 0)
        return PRISM_LOG_WARN;
    if (strcasecmp(v, "error") == 0)
        return PRISM_LOG_ERROR;
    return PRISM_LOG_INFO;
}

void prism_logv(prism_log_level level, const char *source, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int n =
        snprintf(line + off, sizeof(line) - off, ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000, level_name(level), source);
    off += n > 0 ? (size_t)n : 0;
    n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    off += n > 0 ? (size_t)n : 0;
    if (off > sizeof(line) - 2)
        off = sizeof(line) - 2;
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
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
