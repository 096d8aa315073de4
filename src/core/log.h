/*
 * log.h - one line per message on stderr: time, level, source, text.
 *
 * Callers never pass secrets here; plugins reach it through prism_log().
 */
#ifndef PRISM_LOG_H
#define PRISM_LOG_H

#include <stdarg.h>

#include "prism/plugin.h"

/* The lowest level written, from PRISM_LOG_LEVEL (debug|info|warn|error). */
prism_log_level prism_log_threshold(void);
void prism_logv(prism_log_level level, const char *source, const char *fmt, va_list ap);
void prism_logf(prism_log_level level, const char *source, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
