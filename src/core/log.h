/*
 * log.h - log lines: JSON objects (one per line) or plain text, on stderr or
 * a file, each line written whole so that threads never interleave.
 *
 * The sink is configured once, before the workers start, and read-only
 * afterwards. Callers never pass secrets here; plugins reach it through
 * prism_log().
 */
#ifndef PRISM_LOG_H
#define PRISM_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include "prism/plugin.h"

/* Sets level, format and destination (NULL: stderr) for the process.
 * PRISM_LOG_LEVEL in the environment, when set, wins over `level`.
 * -1 when the file cannot be opened. */
int prism_log_configure(prism_log_level level, int json, const char *file);
prism_log_level prism_log_threshold(void);
int prism_log_is_json(void);
void prism_logv(prism_log_level level, const char *source, const char *fmt, va_list ap);
void prism_logf(prism_log_level level, const char *source, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "2026-01-02T03:04:05.678Z" into buf; returns its length. */
size_t prism_log_timestamp(char *buf, size_t cap);
/* Writes len bytes to the sink as they are, all of them unless it fails:
 * what the log writer thread calls. */
void prism_log_write(const char *buf, size_t len);
/* While the server runs, every line goes through its log writer thread
 * (logwriter.h), so no thread ever waits on the log; NULL: lines are
 * written by the thread that logs them. Set only while no other thread
 * logs (before the workers start, after they stop). */
struct prism_log_writer;
void prism_log_use_writer(struct prism_log_writer *w);
/* The line prism_logv writes, without its newline, into line (cap > 0);
 * returns its length. */
size_t prism_log_format(char *line, size_t cap, prism_log_level level, const char *source, const char *fmt, va_list ap);
size_t prism_log_formatf(char *line, size_t cap, prism_log_level level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Writes one already-built line (a newline is added). */
void prism_log_line(const char *line, size_t len);
/* A worker's access lines, handed on together: once per loop turn instead
 * of once per request (the worker flushes it from a uv_prepare_t, and
 * whenever the next line would not fit). Touched by its worker only. */
#define PRISM_LOG_BATCH_BYTES (64 * 1024)
#define PRISM_LOG_SECOND_LEN  20 /* "2026-01-02T03:04:05." */
typedef struct prism_log_batch {
    size_t len;
    char buf[PRISM_LOG_BATCH_BYTES];
    /* The timestamp's date and time up to the second, made once a second. */
    time_t second_of;
    int second_set;
    char second[PRISM_LOG_SECOND_LEN];
} prism_log_batch;
/* prism_log_timestamp for the batch's lines (b NULL: no reuse). */
size_t prism_log_batch_timestamp(prism_log_batch *b, char *buf, size_t cap);
/* The same for the time ts (what the two above call). */
size_t prism_log_timestamp_at(prism_log_batch *b, const struct timespec *ts, char *buf, size_t cap);
/* Appends the line and a newline; NULL writes it at once. */
void prism_log_batch_add(prism_log_batch *b, const char *line, size_t len);
void prism_log_batch_flush(prism_log_batch *b);
/* Appends `s` to buf as the inside of a JSON string (escaped); returns the
 * new length, never past cap - 1. */
size_t prism_json_escape(char *buf, size_t len, size_t cap, const char *s);
/* The same for the n bytes at s, which need not end in a NUL. */
size_t prism_json_escape_n(char *buf, size_t len, size_t cap, const char *s, size_t n);

#endif
