/*
 * log.c - log lines in JSON or text.
 *
 * The sink is process-wide and set once by prism_log_configure before any
 * worker runs (like the environment it is read from), then only read.
 */
#include "log.h"

#include "json_print.h"
#include "logwriter.h"

#include <errno.h>
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
    prism_log_writer *writer; /* set while the server runs (prism_log_use_writer) */
} sink = {PRISM_LOG_INFO, 1, STDERR_FILENO, NULL};

void prism_log_write(const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(sink.fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log sink */
        p += w;
        len -= (size_t)w;
    }
}

/* Whole lines, to the writer thread when one runs (it never blocks; a full
 * writer drops and counts them), else written here. */
static void emit(const char *buf, size_t len)
{
    if (sink.writer != NULL)
        prism_log_writer_put(sink.writer, buf, len);
    else
        prism_log_write(buf, len);
}

void prism_log_use_writer(prism_log_writer *w)
{
    sink.writer = w;
}

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
    emit(buf, len + 1);
}

void prism_log_batch_flush(prism_log_batch *b)
{
    if (b->len == 0)
        return;
    emit(b->buf, b->len);
    b->len = 0;
}

void prism_log_batch_add(prism_log_batch *b, const char *line, size_t len)
{
    if (b == NULL || len + 1 > sizeof(b->buf)) {
        prism_log_line(line, len);
        return;
    }
    if (b->len + len + 1 > sizeof(b->buf))
        prism_log_batch_flush(b);
    memcpy(b->buf + b->len, line, len);
    b->buf[b->len + len] = '\n';
    b->len += len + 1;
}

size_t prism_json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    return prism_json_escape_n(buf, len, cap, s, strlen(s));
}

size_t prism_json_escape_n(char *buf, size_t len, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const char *end = s + n;
    while (s < end && len + 7 < cap) {
        /* The common case first, a whole run at a time: ids, names, paths. */
        size_t most = cap - 7 - len;
        size_t k = prism_json_plain_run(s, (size_t)(end - s) < most ? (size_t)(end - s) : most, 1);
        memcpy(buf + len, s, k);
        len += k;
        s += k;
        if (s == end || len + 7 >= cap) /* the run stopped at the end, or at the cap */
            break;
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x80) {
            /* A log line must stay valid JSON: broken UTF-8 (a client's path
             * or model name) becomes U+FFFD. */
            size_t w = prism_utf8_char(s, (size_t)(end - s) < 4 ? (size_t)(end - s) : 4);
            if (w == 0) {
                memcpy(buf + len, "\\ufffd", 6);
                len += 6;
            } else if (len + w + 7 < cap) {
                memcpy(buf + len, s, w);
                len += w;
                s += w - 1;
            } else {
                break;
            }
        } else if (ch == '"' || ch == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)ch;
        } else {
            memcpy(buf + len, "\\u00", 4);
            buf[len + 4] = hex[ch >> 4];
            buf[len + 5] = hex[ch & 15];
            len += 6;
        }
        s++;
    }
    buf[len < cap ? len : cap - 1] = '\0';
    return len;
}

static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/* "2026-01-02T03:04:05." for a second since the epoch, built by hand:
 * strftime and snprintf cost more than the rest of an access line. */
static void format_second(time_t sec, char out[PRISM_LOG_SECOND_LEN])
{
    struct tm tm;
    char *p = out;
    gmtime_r(&sec, &tm);
    p = put_digits(p, (unsigned)(tm.tm_year + 1900) % 10000, 4);
    *p++ = '-';
    p = put_digits(p, (unsigned)tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, (unsigned)tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned)tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)tm.tm_sec, 2);
    *p = '.';
}

size_t prism_log_timestamp_at(prism_log_batch *b, const struct timespec *ts, char *buf, size_t cap)
{
    char out[PRISM_LOG_SECOND_LEN + 4];
    if (b == NULL) {
        format_second(ts->tv_sec, out);
    } else {
        /* gmtime_r once a second: a busy worker writes thousands of lines in it. */
        if (!b->second_set || b->second_of != ts->tv_sec) {
            format_second(ts->tv_sec, b->second);
            b->second_of = ts->tv_sec;
            b->second_set = 1;
        }
        memcpy(out, b->second, sizeof(b->second));
    }
    put_digits(out + PRISM_LOG_SECOND_LEN, (unsigned)(ts->tv_nsec / 1000000) % 1000, 3);
    out[sizeof(out) - 1] = 'Z';
    size_t n = sizeof(out);
    if (cap == 0)
        return 0;
    if (n > cap - 1)
        n = cap - 1;
    memcpy(buf, out, n);
    buf[n] = '\0';
    return n;
}

size_t prism_log_timestamp(char *buf, size_t cap)
{
    return prism_log_batch_timestamp(NULL, buf, cap);
}

size_t prism_log_batch_timestamp(prism_log_batch *b, char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return prism_log_timestamp_at(b, &ts, buf, cap);
}

size_t prism_log_format(char *line, size_t cap, prism_log_level level, const char *source, const char *fmt, va_list ap)
{
    char msg[2048], ts[40];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    prism_log_timestamp(ts, sizeof(ts));
    size_t off;
    if (sink.json) {
        off = (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"source\":\"", ts, level_name(level));
        off = prism_json_escape(line, off < cap ? off : cap - 1, cap, source);
        off += (size_t)snprintf(line + off, cap - off, "\",\"msg\":\"");
        off = prism_json_escape(line, off < cap ? off : cap - 1, cap, msg);
        off += (size_t)snprintf(line + off, cap - off, "\"}");
    } else {
        off = (size_t)snprintf(line, cap, "%s %-5s %s: %s", ts, level_name(level), source, msg);
    }
    return off < cap ? off : cap - 1;
}

size_t prism_log_formatf(char *line, size_t cap, prism_log_level level, const char *source, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = prism_log_format(line, cap, level, source, fmt, ap);
    va_end(ap);
    return n;
}

void prism_logv(prism_log_level level, const char *source, const char *fmt, va_list ap)
{
    char line[4096];
    prism_log_line(line, prism_log_format(line, sizeof(line), level, source, fmt, ap));
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
