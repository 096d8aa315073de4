/*
 * server.c - the server object: one worker thread per core (or as asked),
 * each with its own libuv loop, h2o context, SO_REUSEPORT listener and
 * upstream pool, so workers share nothing mutable and scale with cores.
 *
 * The main thread owns configuration, plugins and signals. On SIGTERM or
 * SIGINT it wakes every worker, which stops accepting, asks h2o to close
 * idle connections, and leaves its loop once its requests are done or the
 * shutdown deadline passes.
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <h2o.h>
#include <uv.h>

#include "auth.h"
#include "errfilter.h"
#include "generation.h"
#include "ctx.h"
#include "http.h"
#include "log.h"
#include "logwriter.h"
#include "metrics.h"
#include "writesoon.h"

typedef struct prism_worker prism_worker;

typedef struct prism_handler {
    h2o_handler_t super;
    prism_server *srv;
} prism_handler;

struct prism_worker {
    h2o_context_t h2o; /* first: h2o hands us this pointer back */
    prism_server *srv;
    int index;
    int fd;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_timer_t drain;
    uv_prepare_t log_flush;
    prism_write_soon *write_soon; /* NULL: every write is libuv's */
    prism_log_batch log;
    h2o_accept_ctx_t accept;
    prism_worker_env env;
    uv_thread_t thread;
    uint64_t deadline_ms;
    int forced; /* the deadline passed with requests in flight */
};

struct prism_server {
    prism_generation *boot;    /* what the server started with */
    const prism_config *cfg;   /* boot->cfg: listen address, workers, limits */
    prism_generation *current; /* the newest generation (main thread only) */
    h2o_globalconf_t globalconf;
    prism_worker *workers;
    int nworkers;
    prism_metrics **metrics;      /* one per worker */
    prism_log_writer *log_writer; /* writes every log line while the server runs */
    size_t open_files;            /* RLIMIT_NOFILE in force */
    size_t idle_per_worker;       /* upstream connections each worker keeps idle */
    atomic_int stopping;
    uv_loop_t main_loop;
    uv_signal_t sig_term, sig_int, sig_hup;
};

prism_worker_env *prism_worker_env_of(h2o_context_t *h2o)
{
    return &((prism_worker *)h2o)->env;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    prism_worker *w = (prism_worker *)req->conn->ctx;
    prism_http_handle(&w->env, req);
    return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    prism_worker *w = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = h2o_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&w->accept, sock);
}

/* ---- shutdown ---- */

static void close_quietly(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Connections still open are h2o's; shutting their sockets down makes h2o
 * see a hang-up and free them itself, which h2o has no call to do. */
static void shutdown_tcp(uv_handle_t *h, void *arg)
{
    size_t *count = arg;
    uv_os_fd_t fd;
    if (h->type != UV_TCP || uv_is_closing(h))
        return;
    (*count)++;
    if (uv_fileno(h, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
}

/* Just before the loop waits for I/O: the access lines of every request
 * the previous turn finished, in its I/O and its close callbacks alike, go
 * out in one write, and never wait for the next event. */
static void on_log_flush(uv_prepare_t *p)
{
    prism_worker *w = p->data;
    prism_log_batch_flush(&w->log);
}

static void worker_finish(prism_worker *w)
{
    prism_log_batch_flush(&w->log);
    close_quietly((uv_handle_t *)&w->log_flush);
    close_quietly((uv_handle_t *)&w->drain);
    close_quietly((uv_handle_t *)&w->wake);
    close_quietly((uv_handle_t *)&w->env.watch_timer);
    close_quietly((uv_handle_t *)&w->env.uncork);
    prism_upstream_pool_free(w->env.upstreams);
    w->env.upstreams = NULL;
    uv_stop(&w->loop);
}

/* Every 20 ms while stopping: once nothing is in flight (or the deadline
 * passed), drop the remaining (idle keep-alive) connections, and stop when
 * h2o has let go of them all. */
static void on_drain_tick(uv_timer_t *t)
{
    prism_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    if (w->env.inflight != 0 && now < w->deadline_ms)
        return;
    if (w->env.inflight != 0 && !w->forced) {
        prism_logf(PRISM_LOG_WARN, "server", "worker %d: %llu requests still running at the shutdown deadline",
                   w->index, (unsigned long long)w->env.inflight);
        w->forced = 1;
    }
    size_t open = 0;
    uv_walk(&w->loop, shutdown_tcp, &open);
    if (open == 0 || now >= w->deadline_ms + 2000)
        worker_finish(w);
}

/* Takes a generation a reload published, if any: new requests use it, and
 * the old one goes when the last request still running on it ends. */
static void adopt_next_generation(prism_worker *w)
{
    prism_generation *next = atomic_exchange(&w->env.next_gen, NULL);
    if (next == NULL)
        return;
    prism_generation *old = w->env.gen;
    w->env.gen = next;
    prism_generation_release(old);
}

static void on_wake(uv_async_t *a)
{
    prism_worker *w = a->data;
    adopt_next_generation(w);
    if (!atomic_load(&w->srv->stopping))
        return;
    close_quietly((uv_handle_t *)&w->listener);
    h2o_context_request_shutdown(&w->h2o);
    w->deadline_ms = uv_now(&w->loop) + w->srv->cfg->shutdown_timeout_ms;
    uv_timer_start(&w->drain, on_drain_tick, 0, 20);
}

/* ---- workers ---- */

/* The built-in upstream client's connection count, in the worker's metrics. */
static void count_upstream_conns(void *metrics, int delta)
{
    prism_metrics_upstream_conns(metrics, delta);
}

static void seed_rng(prism_worker_env *env)
{
    if (getrandom(env->rng, sizeof(env->rng), 0) != (ssize_t)sizeof(env->rng)) {
        env->rng[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)env;
        env->rng[1] = 0x9e3779b97f4a7c15ull;
    }
    env->rng[0] |= 1;
}

static int worker_init(prism_server *srv, prism_worker *w, char *err, size_t errlen)
{
    w->srv = srv;
    uv_loop_init(&w->loop);
    h2o_context_init(&w->h2o, &w->loop, &srv->globalconf);
    w->accept.ctx = &w->h2o;
    w->accept.hosts = srv->globalconf.hosts;
    w->env.gen = srv->boot;
    prism_generation_retain(srv->boot);
    atomic_init(&w->env.next_gen, NULL);
    w->env.loop = &w->loop;
    w->env.metrics = srv->metrics[w->index];
    w->env.all_metrics = srv->metrics;
    w->env.worker_count = (size_t)srv->nworkers;
    w->env.log_writer = srv->log_writer;
    seed_rng(&w->env);
    prism_upstream_options uo = {.connect_timeout_ms = (long)srv->cfg->upstream_connect_timeout_ms,
                                 .ca_file = srv->cfg->tls_ca_file,
                                 .max_response_header_bytes = 64 * 1024,
                                 .libcurl_only = srv->cfg->upstream_libcurl_only != 0,
                                 .max_idle = srv->idle_per_worker,
                                 .conn_gauge = count_upstream_conns,
                                 .conn_gauge_data = w->env.metrics};
    w->env.upstreams = prism_upstream_pool_new(&w->loop, &uo);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    int rc = uv_tcp_open(&w->listener, w->fd);
    if (w->env.upstreams == NULL || rc != 0) {
        snprintf(err, errlen, "worker %d: %s", w->index, rc ? uv_strerror(rc) : "cannot create upstream pool");
        return -1;
    }
    w->fd = -1; /* the handle owns it now */
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->drain);
    w->drain.data = w;
    prism_env_watch_init(&w->env, &w->loop);
    prism_env_cork_init(&w->env, &w->loop);
    uv_prepare_init(&w->loop, &w->log_flush);
    w->log_flush.data = w;
    uv_prepare_start(&w->log_flush, on_log_flush);
    uv_unref((uv_handle_t *)&w->log_flush); /* never what keeps the loop running */
    w->env.log = &w->log;
    return 0;
}

static void worker_main(void *arg)
{
    prism_worker *w = arg;
    w->write_soon = prism_write_soon_new(&w->loop); /* bound to this thread */
    uv_listen((uv_stream_t *)&w->listener, 1024, on_accept);
    /* A stop may have been asked for before this thread was running. */
    if (atomic_load(&w->srv->stopping))
        uv_async_send(&w->wake);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void worker_dispose(prism_worker *w)
{
    adopt_next_generation(w);
    prism_generation_release(w->env.gen);
    w->env.gen = NULL;
    if (w->env.upstreams != NULL)
        prism_upstream_pool_free(w->env.upstreams);
    prism_json_scanner_free(w->env.scanner);
    w->env.scanner = NULL;
    close_quietly((uv_handle_t *)&w->listener);
    close_quietly((uv_handle_t *)&w->drain);
    close_quietly((uv_handle_t *)&w->wake);
    close_quietly((uv_handle_t *)&w->log_flush);
    close_quietly((uv_handle_t *)&w->env.watch_timer);
    close_quietly((uv_handle_t *)&w->env.uncork);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    prism_log_batch_flush(&w->log);
    if (w->write_soon != NULL)
        prism_write_soon_close(w->write_soon);
    size_t open = 0;
    uv_walk(&w->loop, shutdown_tcp, &open);
    /* h2o asserts that no connection is left when its context goes away; a
     * connection that outlived the drain is left to the exiting process. */
    if (open != 0) {
        prism_logf(PRISM_LOG_WARN, "server", "worker %d: %zu connections still open at exit", w->index, open);
        return;
    }
    /* request_shutdown arms a timer for HTTP/2 connections that would
     * outlive the context; none are left, so disarm it before disposing. */
    if (h2o_timeout_is_linked(&w->h2o.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&w->h2o.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&w->h2o);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uv_loop_close(&w->loop);
    prism_write_soon_free(w->write_soon);
    w->write_soon = NULL;
    if (w->fd >= 0)
        close(w->fd);
}

/* ---- listening sockets ---- */

static int bind_one(const prism_config *cfg, int *fd_out, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", cfg->listen_port);
    int rc = getaddrinfo(cfg->listen_host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", cfg->listen_host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    *fd_out = fd;
    return 0;
}

/* ---- signals on the main thread ---- */

static void on_reload_signal(uv_signal_t *sig, int signum);

static void on_signal(uv_signal_t *sig, int signum)
{
    prism_server *srv = sig->data;
    if (atomic_exchange(&srv->stopping, 1))
        return;
    prism_logf(PRISM_LOG_INFO, "server", "%s: finishing requests in flight (up to %llu ms), then stopping",
               signum == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)srv->cfg->shutdown_timeout_ms);
    for (int i = 0; i < srv->nworkers; i++)
        uv_async_send(&srv->workers[i].wake);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}

/* ---- reload (SIGHUP) ---- */

static int check_exposure_of(const prism_config *bound, const prism_config *keys, char *err, size_t errlen);

/* Settings bound at start (sockets, threads, h2o's limits) stay as they
 * were; say so rather than pretend they changed. */
static void warn_fixed(const prism_config *was, const prism_config *now)
{
    /* listen and workers are left out: the command line may override them. */
    if (was->max_body_bytes != now->max_body_bytes || was->read_timeout_ms != now->read_timeout_ms ||
        was->shutdown_timeout_ms != now->shutdown_timeout_ms ||
        (was->tls_ca_file == NULL) != (now->tls_ca_file == NULL) ||
        (was->tls_ca_file && strcmp(was->tls_ca_file, now->tls_ca_file) != 0))
        prism_logf(PRISM_LOG_WARN, "server",
                   "reload: max_body_bytes, read_ms, shutdown_ms and tls_ca_file "
                   "take effect only at the next start");
}

static void publish(prism_server *srv, prism_generation *g)
{
    for (int i = 0; i < srv->nworkers; i++) {
        prism_worker *w = &srv->workers[i];
        prism_generation_retain(g);
        prism_generation *stale = atomic_exchange(&w->env.next_gen, g);
        if (stale != NULL) /* a reload the worker had not picked up yet */
            prism_generation_release(stale);
        uv_async_send(&w->wake);
    }
    prism_generation_release(srv->current);
    srv->current = g;
}

static void on_reload_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    prism_server *srv = sig->data;
    char err[1024];
    prism_config *cfg = NULL;
    prism_generation *g = NULL;
    if (atomic_load(&srv->stopping))
        return;
    if (prism_config_load(srv->cfg->file, &cfg, err, sizeof(err)) != 0 ||
        check_exposure_of(srv->cfg, cfg, err, sizeof(err)) != 0) {
        prism_config_free(cfg);
        prism_logf(PRISM_LOG_ERROR, "server", "reload refused, still serving generation %u: %s", srv->current->id, err);
        return;
    }
    warn_fixed(srv->cfg, cfg);
    if (prism_generation_load(cfg, srv->current->id + 1, &g, err, sizeof(err)) != 0) {
        prism_logf(PRISM_LOG_ERROR, "server", "reload refused, still serving generation %u: %s", srv->current->id, err);
        return;
    }
    publish(srv, g);
    prism_logf(PRISM_LOG_INFO, "server", "reloaded %s: generation %u, %zu routes", srv->cfg->file, g->id,
               prism_routes_count(g->routes));
}

/* ---- assembly ---- */

#define MAX_AUTO_WORKERS 64 /* past this, more loops add contention, not throughput */

/* 0 workers: one per CPU this process may run on (its affinity mask, as
 * taskset or a container's cpuset leave it), not every CPU of the machine. */
static int effective_workers(const prism_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    unsigned n = uv_available_parallelism(); /* at least 1 */
    return n < MAX_AUTO_WORKERS ? (int)n : MAX_AUTO_WORKERS;
}

static void setup_h2o(prism_server *srv)
{
    h2o_config_init(&srv->globalconf);
    srv->globalconf.max_request_entity_size = srv->cfg->max_body_bytes;
    srv->globalconf.http1.req_timeout = srv->cfg->read_timeout_ms;
    srv->globalconf.http2.idle_timeout = srv->cfg->read_timeout_ms;
    srv->globalconf.http2.graceful_shutdown_timeout = srv->cfg->shutdown_timeout_ms;
    /* No server_name: h2o would print "Server: %s" with sprintf into every
     * HTTP/1 response head, ~1,000 instructions a request; start_headers()
     * and the error filter add the same header from a constant instead. */
    srv->globalconf.server_name = h2o_iovec_init(NULL, 0);
    h2o_hostconf_t *host = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    prism_handler *h = (prism_handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    prism_errfilter_register(&host->fallback_path);
}

/* Keys from `keys`, the address actually listened on from `bound`. */
static int check_exposure_of(const prism_config *bound, const prism_config *keys, char *err, size_t errlen)
{
    if (keys->api_key_count > 0 || prism_host_is_loopback(bound->listen_host))
        return 0;
    snprintf(err, errlen,
             "refusing to listen on %s without gateway API keys: set server.api_keys (or PRISM_API_KEYS), "
             "or listen on 127.0.0.1",
             bound->listen_host);
    return -1;
}

static int check_exposure(const prism_config *cfg, char *err, size_t errlen)
{
    if (cfg->api_key_count > 0)
        return 0;
    if (!prism_host_is_loopback(cfg->listen_host)) {
        snprintf(err, errlen,
                 "refusing to listen on %s without gateway API keys: set server.api_keys (or PRISM_API_KEYS), "
                 "or listen on 127.0.0.1",
                 cfg->listen_host);
        return -1;
    }
    prism_logf(PRISM_LOG_WARN, "server",
               "no gateway API keys configured: serving loopback clients only, "
               "without authentication");
    return 0;
}

/* What may wait to be written (twice: one buffer filling while the other is
 * written): at 70,000 lines a second, ~60 ms of access lines. */
#define LOG_WRITER_BYTES (2 * 1024 * 1024)

/* Every client connection and every upstream one takes a descriptor, and the
 * usual soft limit (1024) would refuse the 1025th; the hard limit is what the
 * operator allows, so the soft one is raised to it (capped: an unlimited hard
 * limit is not a number setrlimit takes). The limit in force. */
#define OPEN_FILES_CAP ((rlim_t)1 << 20)
static rlim_t files_capped(rlim_t n)
{
    return n == RLIM_INFINITY || n > OPEN_FILES_CAP ? OPEN_FILES_CAP : n;
}

static size_t raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t want = files_capped(rl.rlim_max);
    if (files_capped(rl.rlim_cur) < want) {
        struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
    }
    return (size_t)files_capped(rl.rlim_cur);
}

/* Upstream connections a worker keeps idle: as many as the requests it may
 * have in flight, so a busy worker does not close connections it is about to
 * open again (at 4,000 connections on one worker, a cap of 1,024 closed and
 * reopened one upstream connection for every four requests), bounded by a
 * quarter of the descriptors, shared among the workers: the rest are for
 * clients and busy upstream connections. */
#define IDLE_MIN 64
#define IDLE_CAP 16384
static size_t idle_per_worker(size_t open_files, int nworkers)
{
    size_t n = open_files / 4 / (size_t)(nworkers > 0 ? nworkers : 1);
    return n < IDLE_MIN ? IDLE_MIN : n > IDLE_CAP ? IDLE_CAP : n;
}

static int start_workers(prism_server *srv, char *err, size_t errlen)
{
    srv->nworkers = effective_workers(srv->cfg);
    srv->open_files = raise_open_files();
    srv->idle_per_worker = idle_per_worker(srv->open_files, srv->nworkers);
    srv->log_writer = prism_log_writer_start(LOG_WRITER_BYTES);
    prism_log_use_writer(srv->log_writer);
    srv->workers = calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    srv->metrics = calloc((size_t)srv->nworkers, sizeof(*srv->metrics));
    if (srv->workers == NULL || srv->metrics == NULL)
        return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < srv->nworkers; i++)
        if ((srv->metrics[i] = prism_metrics_new()) == NULL)
            return snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < srv->nworkers; i++) {
        prism_worker *w = &srv->workers[i];
        w->index = i;
        w->fd = -1;
        if (bind_one(srv->cfg, &w->fd, err, errlen) != 0)
            return -1;
    }
    for (int i = 0; i < srv->nworkers; i++)
        if (worker_init(srv, &srv->workers[i], err, errlen) != 0)
            return -1;
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    return 0;
}

static void log_ready(const prism_server *srv)
{
    const prism_config *c = srv->cfg;
    int v6 = strchr(c->listen_host, ':') != NULL;
    prism_logf(PRISM_LOG_INFO, "server", "listening on http://%s%s%s:%d%s (%d worker%s, %zu route%s)", v6 ? "[" : "",
               c->listen_host, v6 ? "]" : "", c->listen_port, c->api_prefix, srv->nworkers,
               srv->nworkers == 1 ? "" : "s", prism_routes_count(srv->boot->routes),
               prism_routes_count(srv->boot->routes) == 1 ? "" : "s");
    prism_logf(PRISM_LOG_INFO, "server", "open files limit %zu; up to %zu idle upstream connections kept per worker",
               srv->open_files, srv->idle_per_worker);
}

static void server_free(prism_server *srv)
{
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++)
        if (srv->workers[i].srv != NULL)
            worker_dispose(&srv->workers[i]);
        else if (srv->workers[i].fd >= 0)
            close(srv->workers[i].fd);
    free(srv->workers);
    /* After the workers' last lines. A writer stuck on its sink stays in
     * place: the lines still to come ("stopped") must not block either. */
    if (prism_log_writer_stop(srv->log_writer) == 0)
        prism_log_use_writer(NULL);
    for (int i = 0; srv->metrics != NULL && i < srv->nworkers; i++)
        prism_metrics_free(srv->metrics[i]);
    free(srv->metrics);
    h2o_config_dispose(&srv->globalconf);
    prism_generation_release(srv->current);
    prism_generation_release(srv->boot);
    free(srv);
}

/* Before any worker starts: a SIGTERM that comes as soon as the first
 * request is answered must find Prism's handler, not the default action
 * (seen under valgrind, where the main thread is slow to get here). The
 * handlers run once the main loop runs. */
static void catch_signals(prism_server *srv)
{
    uv_loop_init(&srv->main_loop);
    uv_signal_init(&srv->main_loop, &srv->sig_term);
    uv_signal_init(&srv->main_loop, &srv->sig_int);
    srv->sig_term.data = srv->sig_int.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_init(&srv->main_loop, &srv->sig_hup);
    srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_hup, on_reload_signal, SIGHUP);
}

/* Workers that started: wait for them. None (start-up failed): only close
 * the signal handles. */
static void run_main_loop(prism_server *srv, bool workers_started)
{
    if (workers_started) {
        uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    } else {
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
        uv_run(&srv->main_loop, UV_RUN_DEFAULT);
    }
    for (int i = 0; workers_started && i < srv->nworkers; i++)
        uv_thread_join(&srv->workers[i].thread);
    uv_loop_close(&srv->main_loop);
}

int prism_serve(prism_config *cfg, char *err, size_t errlen)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    prism_generation *boot = NULL;
    prism_server *srv = NULL;
    int rc = -1;
    if (prism_log_configure((prism_log_level)cfg->log_level, cfg->log_json, cfg->log_file) != 0) {
        snprintf(err, errlen, "cannot open the log file %s", cfg->log_file);
        prism_config_free(cfg);
    } else if (check_exposure(cfg, err, errlen) != 0)
        prism_config_free(cfg);
    else if (prism_generation_load(cfg, 1, &boot, err, errlen) == 0 && (srv = calloc(1, sizeof(*srv))) == NULL)
        snprintf(err, errlen, "out of memory");
    if (srv != NULL) {
        srv->boot = boot;
        srv->cfg = boot->cfg;
        srv->current = boot;
        prism_generation_retain(boot);
        setup_h2o(srv);
        catch_signals(srv);
        bool started = start_workers(srv, err, errlen) == 0;
        if (started)
            log_ready(srv);
        run_main_loop(srv, started);
        server_free(srv); /* the workers' last access lines come before "stopped" */
        if (started) {
            prism_logf(PRISM_LOG_INFO, "server", "stopped");
            rc = 0;
        }
    } else {
        prism_generation_release(boot);
    }
    curl_global_cleanup();
    return rc;
}
