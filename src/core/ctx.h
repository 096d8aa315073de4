/*
 * ctx.h - the request context behind prism_ctx (core-internal).
 *
 * A context lives in the h2o request's memory pool and is disposed with it,
 * which is also how Prism learns that a client went away before a response
 * was finished: the dispose hook cancels upstream transfers and runs the
 * abort callbacks, so no callback ever touches a dead request.
 */
#ifndef PRISM_CTX_H
#define PRISM_CTX_H

#include <stdint.h>

#include <h2o.h>

#include "chain.h"
#include "config.h"
#include "generation.h"
#include "json_scan.h"
#include "loader.h"
#include "prism/plugin.h"
#include "upstream.h"

/* What a worker lends to each of its requests. */
typedef struct prism_worker_env {
    prism_generation *gen;                /* serves new requests */
    _Atomic(prism_generation *) next_gen; /* published by a reload */
    prism_upstream_pool *upstreams;
    struct prism_metrics *metrics;            /* this worker's */
    struct prism_metrics *const *all_metrics; /* every worker's, for GET /metrics */
    size_t worker_count;
    struct prism_log_writer *log_writer; /* the server's, for its count of dropped lines; may be NULL */
    uv_loop_t *loop;
    uint64_t inflight;                       /* requests not yet disposed */
    struct prism_ctx *watching;              /* HTTP/1 requests watched for a client hang-up */
    struct prism_ctx *soon_head, *soon_tail; /* to be watched once their delay is up, oldest first */
    uv_timer_t watch_timer;                  /* fires for soon_head */
    struct prism_ctx *corked;                /* streams with bytes to hand to h2o (response.c) */
    uv_idle_t uncork;                        /* hands them over, in the loop's next idle phase */
    uint64_t rng[2];                         /* xorshift state for request ids */
    struct prism_log_batch *log;             /* access lines (NULL: written at once) */
    prism_json_scanner *scanner;             /* made on first use; NULL until then */
} prism_worker_env;

#define PRISM_TRACE_MAX 16

typedef struct prism_trace_step {
    const char *name;
    const prism_loaded *plugin;
    uint64_t start_ns;
    uint64_t dur_ns;
} prism_trace_step;

typedef struct prism_kv prism_kv;
typedef struct prism_up_link prism_up_link;
typedef struct prism_abort_cb prism_abort_cb;

/* A byte queue for a streamed response. */
typedef struct prism_bytes {
    char *data;
    size_t len;
    size_t cap;
} prism_bytes;

enum prism_resp_state {
    PRISM_RESP_NONE = 0,
    PRISM_RESP_STREAMING, /* headers sent, body under way */
    PRISM_RESP_DONE,      /* final bytes handed to h2o */
};

struct prism_ctx {
    h2o_req_t *req;
    prism_worker_env *env;
    prism_generation *gen; /* the setup this request runs on (a reference) */
    const prism_route *route;
    const prism_loaded *current; /* the step running now, for dispatch */
    size_t step;
    char request_id[40];
    const char *path; /* the normalized path, NUL-terminated once for every caller */

    cJSON *json;
    int json_parsed;
    const cJSON *json_view;     /* prism_ctx_json_read's tree, in the pool; NULL until asked for */
    int scanned;                /* the body's fields: 0 not yet read, else a prism_scan_result + 1 */
    prism_json_member *members; /* what the scan kept (in the pool) */
    size_t nmembers;
    unsigned long scan_serial; /* the scanner's reading of the body, for prism_ctx_json */
    prism_kv *kv;
    prism_abort_cb *aborts;
    prism_up_link *upstreams;

    unsigned retries;                      /* upstream retries made for this request */
    long prompt_tokens, completion_tokens; /* -1: unknown */
    uint64_t upstream_ns;                  /* time spent in upstream calls */
    uint64_t first_byte_ns;                /* request start -> first upstream body byte; 0: none */
    int upstream_err;                      /* prism_upstream_error of a failed call */
    int status;                            /* what the client was sent */
    int streamed;
    int (*on_error_fn)(void *data, prism_ctx *ctx, int status);
    void *on_error_data;
    int intercepting;
    h2o_iovec_t body; /* the request body, or a plugin's replacement */
    int trace_on;
    size_t trace_count;
    prism_trace_step trace[PRISM_TRACE_MAX];
    uint64_t started_ns;

    enum prism_resp_state resp;
    int gone;                /* the client went away */
    int in_chain;            /* inside the runner: resume must not recurse */
    int early_resume;        /* status + 1 of a resume made before the step returned */
    size_t dispatch_headers; /* response headers set before the provider ran */
    int finished;            /* on_finish hooks have run */
    h2o_generator_t generator;
    prism_bytes pending; /* queued, not yet handed to h2o */
    prism_bytes sending; /* handed to h2o, valid until proceed */
    int send_busy;
    int end_wanted;
    struct prism_ctx *cork_next, **cork_pprev; /* in env->corked while cork_pprev != NULL */
    void (*drain_cb)(void *data);
    void *drain_data;
    h2o_socket_t *watch_sock; /* non-NULL while watched */
    struct prism_ctx *watch_next, **watch_pprev;
    int soon;          /* in the env's soon list */
    uint64_t soon_due; /* loop time (ms) its watch starts */
    struct prism_ctx *soon_next, *soon_prev;
};

uint64_t prism_now_ns(void);
/* The worker environment that owns an h2o context (server.c). */
prism_worker_env *prism_worker_env_of(h2o_context_t *h2o);
/* Creates the context for an h2o request (in its pool). */
prism_ctx *prism_ctx_new(h2o_req_t *req, prism_worker_env *env);
/* Runs one plugin's handle, timing it in the trace. */
prism_status prism_ctx_run_plugin(prism_ctx *ctx, const prism_loaded *p);
/* Runs the route's chain from its first step. */
void prism_chain_start(prism_ctx *ctx, const prism_route *route);
/* Runs the on_finish hooks once the response is complete. */
void prism_ctx_finish(prism_ctx *ctx);
/* Adds x-request-id and, when asked for, x-prism-trace to the response. */
void prism_ctx_add_meta_headers(prism_ctx *ctx);
/* prism_response_header with the lengths known (value need not end in NUL). */
int prism_response_header_n(prism_ctx *ctx, const char *name, size_t nlen, const char *value, size_t vlen);
/* Adds "server: prism" to a response about to start, unless it has a server
 * header already (see setup_h2o). */
void prism_server_header(h2o_req_t *req);
/* HTTP/1: h2o stops reading a connection while its request is served, so
 * a client that hangs up would go unnoticed until the response is written.
 * While a request waits on upstream work Prism reads the socket itself: a
 * hang-up abandons the request at once (cancelling its upstream calls).
 * HTTP/2 needs none of this: h2o keeps reading and resets streams itself. */
void prism_ctx_watch_client(prism_ctx *ctx);
/* The same, PRISM_WATCH_DELAY_MS from now unless the request is answered
 * first: most answers come sooner, and watching costs two epoll_ctl calls. */
void prism_ctx_watch_client_soon(prism_ctx *ctx);
#define PRISM_WATCH_DELAY_MS 10
/* The worker's timer for the delayed watches (server.c closes it). */
void prism_env_watch_init(prism_worker_env *env, uv_loop_t *loop);
void prism_ctx_unwatch_client(prism_ctx *ctx);
/* Stops watching as the response completes, handing the socket back to h2o
 * still reading (it reads the connection again once the response is out). */
void prism_ctx_release_client(prism_ctx *ctx);
/* The worker's idle handle that sends what streams wrote (server.c closes
 * it), and a context leaving before that. */
void prism_env_cork_init(prism_worker_env *env, uv_loop_t *loop);
void prism_ctx_uncork(prism_ctx *ctx);
/* Ends the stream of a client that went away while a write was in flight
 * (called when that write completes); ctx may be freed on return. */
void prism_ctx_end_gone_stream(prism_ctx *ctx);
/* A malloc'd OpenAI error body (free with cJSON_free). */
char *prism_error_json(const char *type, const char *code, const char *param, const char *message);
uint64_t prism_env_random(prism_worker_env *env);
/* Cancels every upstream transfer (and pending retry) of the request. */
void prism_ctx_cancel_upstreams(prism_ctx *ctx);
/* The request's access log line and metrics, once it ends (report.c). */
void prism_ctx_report(prism_ctx *ctx);
/* Called when the client went away: aborts, cancels upstreams. */
void prism_ctx_abandon(prism_ctx *ctx);

#endif
