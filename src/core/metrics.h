/*
 * metrics.h - per-worker request metrics, rendered for Prometheus.
 *
 * Each worker thread owns one prism_metrics and is the only one to record
 * into it, after every request. A scrape (GET /metrics, answered by any
 * worker) renders the sum over all workers' objects in the Prometheus text
 * exposition format 0.0.4. Recording is cheap: no allocation once a label set
 * has been seen, one hash lookup per family, plain increments.
 *
 * Label values are truncated to PRISM_METRICS_LABEL_MAX bytes (at a UTF-8
 * character boundary; invalid UTF-8 bytes become '?'), and each family keeps
 * at most PRISM_METRICS_MAX_SERIES label sets per worker: past the cap a
 * request is counted under the value "other", so memory stays bounded
 * whatever model names clients send. NULL model or provider render as "none".
 */
#ifndef PRISM_METRICS_H
#define PRISM_METRICS_H

#include <stddef.h>

/* Distinct label sets kept per family and worker before "other" takes over. */
#define PRISM_METRICS_MAX_SERIES 512
/* Longest label value kept, in bytes. */
#define PRISM_METRICS_LABEL_MAX 64

typedef struct prism_metrics prism_metrics;

/* What one finished request contributes. Strings are read during the call
 * only; none is kept. */
typedef struct prism_request_record {
    const char *route;                     /* "/v1/chat/completions"; "" for built-in endpoints */
    const char *model;                     /* routed model, NULL when none */
    const char *provider;                  /* provider plugin that answered, NULL when none */
    int status;                            /* HTTP status sent */
    double duration_s;                     /* whole request */
    double upstream_s;                     /* time in upstream calls, < 0 when none */
    double ttft_s;                         /* time to first upstream body byte of a stream, < 0 when not a stream */
    double overhead_s;                     /* duration minus upstream time: the gateway's own cost */
    long prompt_tokens, completion_tokens; /* < 0 unknown */
    const char *upstream_error;            /* NULL, or "dns", "connect", "tls", "timeout", "reset", "other" */
    unsigned retries;
    int fallback; /* 1 when a fallback model answered */
    size_t step_count;
    const char *const *step_names; /* plugin names of the chain steps run */
    const double *step_s;          /* their durations */
} prism_request_record;

/* An empty metrics object, for one worker; NULL when out of memory. */
prism_metrics *prism_metrics_new(void);

/* Adds one finished request. Called by the owning worker only; safe while
 * another thread renders. */
void prism_metrics_record(prism_metrics *m, const prism_request_record *r);

/* Moves the requests-in-flight gauge by `delta` (+1 on arrival, -1 when done). */
void prism_metrics_inflight(prism_metrics *m, int delta);
/* Connections the built-in HTTP/1.1 client holds open (h1client.h). */
void prism_metrics_upstream_conns(prism_metrics *m, int delta);

/* Moves the open-streams gauge by `delta`. */
void prism_metrics_streams(prism_metrics *m, int delta);

/* What the process counts as a whole, next to the workers' metrics. */
typedef struct prism_metrics_process {
    unsigned long long log_lines_dropped; /* lines the log writer had no room for (logwriter.h) */
} prism_metrics_process;

/* Renders the sum over `n` workers' metrics and, when `p` is not NULL, the
 * process's counters; malloc'd NUL-terminated text, NULL when out of memory.
 * Safe from any thread while the owners record. */
char *prism_metrics_render(prism_metrics *const *all, size_t n, const prism_metrics_process *p);

void prism_metrics_free(prism_metrics *m);

#endif
