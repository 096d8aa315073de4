/*
 * test_upstream.c - the curl-on-libuv upstream module against a tiny HTTP/1.1
 * server running in a thread of this process (blocking sockets are fine
 * there: only the code under test must never block).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "loopback.h"
#include "upstream.h"

/* ---- the test server ---- */

#define MAX_CONN_THREADS 64

#define JSON_BODY   "{\"ok\":true,\"n\":42}"
#define STREAM_PART "data: piece %d\n\n"
#define STREAM_N    4
#define BURST_N     40
#define DRIP_N      6

typedef struct test_server {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_t conns[MAX_CONN_THREADS];
    atomic_int conn_count;
    pthread_mutex_t lock;
} test_server;

typedef struct conn_arg {
    test_server *srv;
    int fd;
} conn_arg;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads one request (head and Content-Length body) into buf; returns its
 * length, 0 when the peer closed. */
static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len + 1 >= cap) {
            return 0;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            return 0;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - buf);
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    while (len < head + body && len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            return 0;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

static void reply_json(int fd)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Test-Header:   hello world  \r\n"
             "Content-Length: %zu\r\n\r\n",
             strlen(JSON_BODY));
    send_str(fd, head);
    send_str(fd, JSON_BODY);
}

static void send_chunk(int fd, const char *data)
{
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", strlen(data));
    send_str(fd, size);
    send_str(fd, data);
    send_str(fd, "\r\n");
}

static void reply_stream(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n");
    for (int i = 0; i < STREAM_N; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        send_chunk(fd, part);
        sleep_ms(40);
    }
    send_str(fd, "0\r\n\r\n");
}

/* Many chunks in one write, so that curl reads them in one go and has to
 * buffer what arrives while the consumer is paused. */
static void reply_burst(int fd)
{
    char all[8192];
    size_t len = 0;
    len += (size_t)snprintf(all + len, sizeof all - len,
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < BURST_N; i++) {
        char part[64];
        int n = snprintf(part, sizeof part, STREAM_PART, i);
        len += (size_t)snprintf(all + len, sizeof all - len, "%x\r\n%s\r\n", n, part);
    }
    len += (size_t)snprintf(all + len, sizeof all - len, "0\r\n\r\n");
    send_all(fd, all, len);
}

static void reply_cut(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    sleep_ms(20);
}

/* Never answers; returns once the client gives up and closes. */
static void reply_hang(int fd)
{
    char buf[256];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
}

/* Answers after 100 ms, well inside a 300 ms first-byte deadline. */
static void reply_slow(int fd)
{
    sleep_ms(100);
    reply_json(fd);
}

/* Headers and one chunk, then silence until the client hangs up. */
static void reply_stall(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    send_chunk(fd, "data: first\n\n");
    reply_hang(fd);
}

/* A chunk every 100 ms for 600 ms: slow, but never silent for long. */
static void reply_drip(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < DRIP_N; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        send_chunk(fd, part);
        sleep_ms(100);
    }
    send_str(fd, "0\r\n\r\n");
}

static void reply_echo(int fd, const char *req, size_t len)
{
    char head[128];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
    send_str(fd, head);
    send_all(fd, req, len);
}

static void reply_interim(int fd)
{
    send_str(fd, "HTTP/1.1 103 Early Hints\r\nX-Interim: yes\r\nLink: </a>\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 0\r\n\r\n");
}

static void reply_big_headers(int fd)
{
    char filler[2048];
    memset(filler, 'a', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    send_str(fd, "HTTP/1.1 200 OK\r\nX-Filler: ");
    send_str(fd, filler);
    send_str(fd, "\r\nContent-Length: 2\r\n\r\nok");
}

/* Serves requests on one connection; returns false to close it. */
static bool serve_one(int fd)
{
    char req[16384];
    size_t len = read_request(fd, req, sizeof req);
    if (len == 0) {
        return false;
    }
    const char *path = strchr(req, ' ');
    path = path ? path + 1 : "";
    if (strncmp(path, "/json ", 6) == 0) {
        reply_json(fd);
        return true;
    }
    if (strncmp(path, "/empty ", 7) == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        return true;
    }
    if (strncmp(path, "/echo ", 6) == 0 || strncmp(path, "/echo?", 6) == 0) {
        reply_echo(fd, req, len);
        return true;
    }
    if (strncmp(path, "/interim ", 9) == 0) {
        reply_interim(fd);
        return true;
    }
    if (strncmp(path, "/slow ", 6) == 0) {
        reply_slow(fd);
        return true;
    }
    if (strncmp(path, "/stream ", 8) == 0) {
        reply_stream(fd);
    } else if (strncmp(path, "/burst ", 7) == 0) {
        reply_burst(fd);
    } else if (strncmp(path, "/cut ", 5) == 0) {
        reply_cut(fd);
    } else if (strncmp(path, "/hang ", 6) == 0) {
        reply_hang(fd);
    } else if (strncmp(path, "/big ", 5) == 0) {
        reply_big_headers(fd);
    } else if (strncmp(path, "/stall ", 7) == 0) {
        reply_stall(fd);
    } else if (strncmp(path, "/drip ", 6) == 0) {
        reply_drip(fd);
    } else {
        send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    return false;
}

static void *conn_main(void *arg)
{
    conn_arg *c = arg;
    /* Bounded: a stuck test must not hang the suite. */
    struct timeval tv = {3, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (serve_one(c->fd)) {
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    test_server *srv = arg;
    for (;;) {
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0) {
            return NULL; /* shutdown() of the listener ends the loop */
        }
        conn_arg *c = malloc(sizeof *c);
        int idx = atomic_load(&srv->conn_count);
        if (!c || idx >= MAX_CONN_THREADS) {
            free(c);
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        pthread_create(&srv->conns[idx], NULL, conn_main, c);
        atomic_store(&srv->conn_count, idx + 1);
    }
}

/* The server's connection count once the acceptor has caught up with any
 * connection an earlier test left in the listen backlog: unchanged over 30 ms. */
static int settled_conn_count(test_server *srv)
{
    int n = atomic_load(&srv->conn_count);
    for (int i = 0; i < 30; i++) {
        usleep(30 * 1000);
        int now = atomic_load(&srv->conn_count);
        if (now == n) {
            return n;
        }
        n = now;
    }
    return n;
}

static int server_setup(void **state)
{
    test_server *srv = calloc(1, sizeof *srv);
    if (!srv || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    srv->listen_fd = listen_on_loopback(&srv->port);
    if (srv->listen_fd < 0 || pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        return -1;
    }
    *state = srv;
    return 0;
}

static int server_teardown(void **state)
{
    test_server *srv = *state;
    shutdown(srv->listen_fd, SHUT_RDWR);
    pthread_join(srv->acceptor, NULL);
    close(srv->listen_fd);
    for (int i = 0; i < atomic_load(&srv->conn_count); i++) {
        pthread_join(srv->conns[i], NULL);
    }
    free(srv);
    curl_global_cleanup();
    return 0;
}

/* ---- the client side ---- */

typedef struct result {
    uv_loop_t *loop;
    prism_upstream_pool *pool;
    prism_upstream *up;
    int status;
    int responses;
    int chunks;
    int completes;
    bool response_before_body;
    prism_upstream_error err;
    char message[256];
    char body[16384];
    size_t body_len;
    /* behaviour switches */
    bool pause_each;
    int pause_first_ms;                    /* pause on the first chunk, resume this much later */
    uint64_t first_chunk_at, completed_at; /* uv_hrtime() */
    bool cancel_on_body;
    bool free_pool_on_body;
    prism_upstream *victim; /* cancelled from this transfer's on_response */
    bool paused_now;
    bool body_while_paused;
    bool restart_on_complete;
    int restarts_left;
    char header_seen[64];
    char interim_seen[8];
    uv_timer_t resume_timer;
    char url[128];
} result;

static void on_response(void *data, prism_upstream *up, int status)
{
    result *r = data;
    r->status = status;
    r->responses++;
    r->response_before_body = r->chunks == 0;
    if (r->victim) {
        prism_upstream_cancel(r->victim);
        r->victim = NULL;
    }
    const char *h = prism_upstream_header(up, "x-TEST-header");
    snprintf(r->header_seen, sizeof r->header_seen, "%s", h ? h : "(null)");
    h = prism_upstream_header(up, "X-Interim");
    snprintf(r->interim_seen, sizeof r->interim_seen, "%s", h ? h : "(null)");
}

static void on_resume_timer(uv_timer_t *t)
{
    result *r = t->data;
    r->paused_now = false;
    prism_upstream_resume(r->up);
}

static int on_body(void *data, prism_upstream *up, const char *chunk, size_t len)
{
    result *r = data;
    if (r->paused_now) {
        r->body_while_paused = true;
    }
    if (r->body_len + len < sizeof r->body) {
        memcpy(r->body + r->body_len, chunk, len);
        r->body_len += len;
    }
    if (r->chunks++ == 0) {
        r->first_chunk_at = uv_hrtime();
    }
    if (r->free_pool_on_body) {
        prism_upstream_pool_free(r->pool);
        return 0;
    }
    if (r->cancel_on_body) {
        prism_upstream_cancel(up);
        prism_upstream_cancel(up); /* twice is harmless */
        return 0;
    }
    if (r->pause_first_ms > 0 && r->chunks == 1) {
        r->paused_now = true;
        uv_timer_start(&r->resume_timer, on_resume_timer, (uint64_t)r->pause_first_ms, 0);
        return PRISM_UPSTREAM_PAUSE;
    }
    if (r->pause_each) {
        r->paused_now = true;
        uv_timer_start(&r->resume_timer, on_resume_timer, r->chunks == 1 ? 100 : 1, 0);
        return PRISM_UPSTREAM_PAUSE;
    }
    return 0;
}

static prism_upstream *start_get(result *r, const char *url);

static void on_complete(void *data, prism_upstream *up, prism_upstream_error err, const char *message)
{
    result *r = data;
    (void)up;
    r->completes++;
    r->completed_at = uv_hrtime();
    r->err = err;
    snprintf(r->message, sizeof r->message, "%s", message ? message : "(null)");
    if (r->restart_on_complete && r->restarts_left-- > 0) {
        r->body_len = 0;
        r->up = start_get(r, r->url); /* a new transfer from inside a callback */
        assert_non_null(r->up);
    }
}

static prism_http_callbacks_t callbacks_for(result *r)
{
    prism_http_callbacks_t cb = {.data = r, .on_response = on_response, .on_body = on_body, .on_complete = on_complete};
    return cb;
}

static prism_upstream *start_req(result *r, const prism_http_request_t *req)
{
    prism_http_callbacks_t cb = callbacks_for(r);
    return prism_upstream_start(r->pool, req, &cb);
}

static prism_upstream *start_get(result *r, const char *url)
{
    prism_http_request_t req = {.method = "GET", .url = url, .timeout_ms = 2000};
    return start_req(r, &req);
}

static void url_for(const test_server *srv, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", srv->port, path);
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag is set or ms pass; returns whether the flag was
 * set. The deadline keeps every test bounded. */
static bool run_until(uv_loop_t *loop, const int *count, int want, int ms)
{
    bool expired = false;
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, (uint64_t)ms, 0);
    while (!expired && (!count || *count < want)) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !count || *count >= want;
}

/* The suite runs twice over the test server's plain http: once on the
 * built-in HTTP/1.1 client, once with every transfer on libcurl. */
static bool use_libcurl;

static void client_init(result *r, uv_loop_t *loop, const prism_upstream_options *opts)
{
    memset(r, 0, sizeof *r);
    r->err = -1;
    assert_int_equal(uv_loop_init(loop), 0);
    r->loop = loop;
    prism_upstream_options o = opts ? *opts : (prism_upstream_options){0};
    o.libcurl_only = use_libcurl;
    r->pool = prism_upstream_pool_new(loop, &o);
    assert_non_null(r->pool);
    uv_timer_init(loop, &r->resume_timer);
    r->resume_timer.data = r;
}

/* Frees the pool, lets the loop run the close callbacks, and checks that
 * nothing was left open. */
static void client_done(result *r)
{
    prism_upstream_pool_free(r->pool);
    uv_close((uv_handle_t *)&r->resume_timer, NULL);
    assert_int_equal(uv_run(r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(r->loop), 0);
}

/* ---- tests ---- */

static void test_json_and_headers(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/json", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_non_null(r.up);
    assert_int_equal(prism_upstream_pool_active(r.pool), 1);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_string_equal(r.message, "");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.responses, 1);
    assert_true(r.response_before_body);
    assert_string_equal(r.header_seen, "hello world");
    r.body[r.body_len] = '\0';
    assert_string_equal(r.body, JSON_BODY);
    assert_int_equal(prism_upstream_pool_active(r.pool), 0);
    client_done(&r);
}

/* A second request started from on_complete reuses the kept connection. */
static void test_reuse_and_restart_from_callback(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/json", r.url, sizeof r.url);
    r.restart_on_complete = true;
    r.restarts_left = 2;
    int before = settled_conn_count(srv);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 3, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_int_equal(r.responses, 3);
    r.body[r.body_len] = '\0';
    assert_string_equal(r.body, JSON_BODY);
    assert_int_equal(atomic_load(&srv->conn_count) - before, 1);
    client_done(&r);
}

static void test_empty_body(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/empty", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_int_equal(r.responses, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.chunks, 0);
    client_done(&r);
}

static void test_interim_headers_dropped(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/interim", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.interim_seen, "(null)");
    client_done(&r);
}

static void test_post_body_and_request_headers(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/echo", r.url, sizeof r.url);
    const char *headers[] = {"Content-Type: application/json", "X-Api-Key: k-123"};
    const char body[] = "{\"model\":\"m\"}";
    prism_http_request_t req = {
        .url = r.url, .headers = headers, .header_count = 2, .body = body, .body_len = strlen(body)};
    r.up = start_req(&r, &req);
    assert_non_null(r.up);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    r.body[r.body_len] = '\0';
    assert_non_null(strstr(r.body, "POST /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(r.body, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(r.body, "\r\nX-Api-Key: k-123\r\n"));
    assert_non_null(strstr(r.body, "\r\n\r\n{\"model\":\"m\"}"));
    assert_null(strcasestr(r.body, "Expect:"));
    assert_null(strcasestr(r.body, "Accept-Encoding"));
    assert_null(strcasestr(r.body, "urlencoded"));
    client_done(&r);
}

/* One pool, one kept connection, many URLs: every request goes to its own
 * target, whether the pool's parsed-URL cache holds it, holds another one
 * or is full (more distinct URLs than it keeps). */
static void test_each_request_its_own_url(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    for (int i = 0; i < 72; i++) {
        char want[64];
        int n = i < 36 ? i : i - 36; /* the second half asks for the same URLs again */
        snprintf(want, sizeof want, "/echo?n=%d&x=a%%20b", n);
        url_for(srv, want, r.url, sizeof r.url);
        r.body_len = 0;
        r.up = start_get(&r, r.url);
        assert_non_null(r.up);
        assert_true(run_until(&loop, &r.completes, i + 1, 3000));
        assert_int_equal(r.err, PRISM_UPSTREAM_OK);
        r.body[r.body_len] = '\0';
        char line[96];
        snprintf(line, sizeof line, "GET %s HTTP/1.1\r\n", want);
        assert_non_null(strstr(r.body, line));
        assert_int_equal(strncmp(r.body, line, strlen(line)), 0);
    }
    client_done(&r);
}

static void test_bad_requests_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    const char *bad[] = {"X-Evil: a\r\nX-Injected: b"};
    prism_http_request_t req = {.url = "http://127.0.0.1:1/", .headers = bad, .header_count = 1};
    assert_null(start_req(&r, &req));
    prism_http_request_t file = {.method = "GET", .url = "file:///etc/passwd"};
    assert_null(start_req(&r, &file));
    assert_int_equal(prism_upstream_pool_active(r.pool), 0);
    client_done(&r);
    assert_int_equal(r.completes, 0);
}

static void test_stream_chunks(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/stream", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_true(r.chunks >= 2);
    char want[512] = "";
    for (int i = 0; i < STREAM_N; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        strcat(want, part);
    }
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    client_done(&r);
}

static void expect_stream_paused(test_server *srv, const char *path, int parts)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, path, r.url, sizeof r.url);
    r.pause_each = true;
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 4000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_false(r.body_while_paused);
    char want[4096] = "";
    for (int i = 0; i < parts; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        strcat(want, part);
    }
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    client_done(&r);
}

/* Paused on every chunk, resumed from a timer: every byte arrives once. */
static void test_pause_resume(void **state)
{
    expect_stream_paused(*state, "/stream", STREAM_N);
}

/* The same with all chunks in one network read, so curl has to hold what it
 * already read while the consumer is paused. */
static void test_pause_resume_burst(void **state)
{
    expect_stream_paused(*state, "/burst", BURST_N);
}

static void test_cancel_in_on_body(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/stream", r.url, sizeof r.url);
    r.cancel_on_body = true;
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.chunks, 1, 3000));
    assert_int_equal(prism_upstream_pool_active(r.pool), 0);
    run_until(&loop, NULL, 0, 200); /* the rest of the stream would be here */
    assert_int_equal(r.chunks, 1);
    assert_int_equal(r.completes, 0);
    client_done(&r);
}

static void test_cut_mid_body(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/cut", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_RESET);
    assert_int_equal(r.responses, 1);
    assert_int_equal(r.body_len, 10);
    client_done(&r);
}

static void test_timeout(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/hang", r.url, sizeof r.url);
    prism_http_request_t req = {.method = "GET", .url = r.url, .timeout_ms = 300};
    r.up = start_req(&r, &req);
    uint64_t t0 = uv_hrtime();
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_TIMEOUT);
    assert_true(ms >= 250 && ms < 1500);
    assert_int_equal(r.responses, 0);
    client_done(&r);
}

static void test_connect_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    int port;
    int fd = listen_on_loopback(&port);
    assert_true(fd >= 0);
    close(fd); /* nothing listens there any more */
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/v1?key=secret-query", port);
    const char *headers[] = {"Authorization: Bearer sk-secret-value"};
    prism_http_request_t req = {.url = r.url, .headers = headers, .header_count = 1, .timeout_ms = 2000};
    r.up = start_req(&r, &req);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_CONNECT);
    assert_int_equal(r.responses, 0);
    assert_true(strlen(r.message) > 0);
    assert_null(strstr(r.message, "secret"));
    client_done(&r);
}

static void test_header_cap(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    prism_upstream_options opts = {.max_response_header_bytes = 1024};
    client_init(&r, &loop, &opts);
    url_for(srv, "/big", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_OTHER);
    assert_int_equal(r.responses, 0);
    assert_non_null(strstr(r.message, "too large"));
    client_done(&r);
}

/* One transfer cancels another from on_response, then frees the whole pool
 * from on_body: nothing runs afterwards and the loop winds down cleanly. */
static void test_cancel_other_and_free_from_callback(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r, other;
    client_init(&r, &loop, NULL);
    memset(&other, 0, sizeof other);
    other.pool = r.pool;
    url_for(srv, "/hang", other.url, sizeof other.url);
    r.victim = start_get(&other, other.url);
    assert_non_null(r.victim);
    url_for(srv, "/stream", r.url, sizeof r.url);
    r.free_pool_on_body = true;
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.chunks, 1, 3000));
    uv_close((uv_handle_t *)&r.resume_timer, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(r.chunks, 1);
    assert_int_equal(r.completes, 0);
    assert_int_equal(other.responses + other.chunks + other.completes, 0);
}

/* Freeing the pool with a transfer in flight: no callback, no leak, and the
 * loop ends (ASan checks the memory at exit). */
static void test_pool_free_in_flight(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    url_for(srv, "/hang", r.url, sizeof r.url);
    int before = settled_conn_count(srv);
    r.up = start_get(&r, r.url);
    assert_non_null(r.up);
    prism_upstream *second = start_get(&r, r.url);
    assert_non_null(second);
    for (int i = 0; i < 100 && atomic_load(&srv->conn_count) - before < 2; i++) {
        run_until(&loop, NULL, 0, 10);
    }
    /* Both connect at once: neither waits for the other to answer. */
    assert_int_equal(atomic_load(&srv->conn_count) - before, 2);
    assert_int_equal(prism_upstream_pool_active(r.pool), 2);
    client_done(&r);
    assert_int_equal(r.completes, 0);
}

/* ---- first-byte and idle deadlines ---- */

static uint64_t ms_between(uint64_t from, uint64_t to)
{
    return (to - from) / 1000000u;
}

static prism_upstream *start_watched(result *r, const test_server *srv, const char *path, long first_ms, long idle_ms)
{
    url_for(srv, path, r->url, sizeof r->url);
    prism_http_request_t req = {
        .method = "GET", .url = r->url, .first_byte_timeout_ms = first_ms, .idle_timeout_ms = idle_ms};
    return start_req(r, &req);
}

/* A server that accepts and never answers; no whole-transfer deadline. */
static void test_first_byte_timeout(void **state)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    uint64_t t0 = uv_hrtime();
    r.up = start_watched(&r, *state, "/hang", 200, 0);
    assert_non_null(r.up);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    uint64_t ms = ms_between(t0, r.completed_at);
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_TIMEOUT);
    assert_string_equal(r.message, "no response from the upstream within 200 ms");
    assert_true(ms >= 150 && ms < 1500);
    assert_int_equal(prism_upstream_pool_active(r.pool), 0);
    run_until(&loop, NULL, 0, 50);
    assert_int_equal(r.completes, 1);
    assert_int_equal(r.responses + r.chunks, 0);
    client_done(&r);
}

/* An answer at 100 ms beats a 300 ms deadline, and the idle deadline that
 * takes over does not fire on a body that arrives at once. */
static void test_first_byte_in_time(void **state)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    r.up = start_watched(&r, *state, "/slow", 300, 200);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_int_equal(r.status, 200);
    r.body[r.body_len] = '\0';
    assert_string_equal(r.body, JSON_BODY);
    client_done(&r);
}

/* Headers and a chunk, then silence: the idle deadline ends it, and the
 * half-read connection is not handed to the next request. */
static void test_idle_timeout(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    int before = settled_conn_count(srv);
    r.up = start_watched(&r, srv, "/stall", 0, 200);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_TIMEOUT);
    assert_string_equal(r.message, "the upstream sent nothing for 200 ms");
    assert_int_equal(r.responses, 1);
    assert_int_equal(r.chunks, 1);
    uint64_t ms = ms_between(r.first_chunk_at, r.completed_at);
    assert_true(ms >= 150 && ms < 1500);
    url_for(srv, "/json", r.url, sizeof r.url);
    r.up = start_get(&r, r.url);
    assert_true(run_until(&loop, &r.completes, 2, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_int_equal(atomic_load(&srv->conn_count) - before, 2);
    client_done(&r);
}

/* Chunks every 100 ms for 600 ms never leave 250 ms of silence. */
static void test_idle_steady_stream(void **state)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    r.up = start_watched(&r, *state, "/drip", 0, 250);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    char want[512] = "";
    for (int i = 0; i < DRIP_N; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        strcat(want, part);
    }
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    client_done(&r);
}

/* Paused by the consumer for 500 ms with a 200 ms idle deadline: a slow
 * client is not a silent upstream. */
static void test_idle_paused(void **state)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    r.pause_first_ms = 500;
    r.up = start_watched(&r, *state, "/stream", 0, 200);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_OK);
    assert_false(r.body_while_paused);
    assert_true(ms_between(r.first_chunk_at, r.completed_at) >= 450);
    char want[512] = "";
    for (int i = 0; i < STREAM_N; i++) {
        char part[64];
        snprintf(part, sizeof part, STREAM_PART, i);
        strcat(want, part);
    }
    assert_int_equal(r.body_len, strlen(want));
    assert_memory_equal(r.body, want, r.body_len);
    client_done(&r);
}

/* Resuming re-arms the idle deadline even when nothing else arrives: a
 * stream that stalls after the pause still ends, 200 ms after the resume. */
static void test_idle_after_resume(void **state)
{
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    r.pause_first_ms = 300;
    r.up = start_watched(&r, *state, "/stall", 0, 200);
    assert_true(run_until(&loop, &r.completes, 1, 3000));
    assert_int_equal(r.err, PRISM_UPSTREAM_ERR_TIMEOUT);
    assert_int_equal(r.chunks, 1);
    uint64_t ms = ms_between(r.first_chunk_at, r.completed_at);
    assert_true(ms >= 450 && ms < 2000);
    client_done(&r);
}

/* Cancelled while both kinds of deadline are pending: no callback later, and
 * ASan sees the timers freed. */
static void test_watchdog_cancelled(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r, other;
    client_init(&r, &loop, NULL);
    memset(&other, 0, sizeof other);
    other.pool = r.pool;
    r.up = start_watched(&r, srv, "/hang", 200, 200);
    prism_upstream *stalled = start_watched(&other, srv, "/stall", 200, 200);
    assert_non_null(r.up);
    assert_non_null(stalled);
    assert_true(run_until(&loop, &other.chunks, 1, 3000));
    prism_upstream_cancel(r.up);
    prism_upstream_cancel(stalled);
    run_until(&loop, NULL, 0, 300); /* past both deadlines */
    assert_int_equal(r.completes + other.completes, 0);
    assert_int_equal(prism_upstream_pool_active(r.pool), 0);
    client_done(&r);
}

/* The pool goes away while transfers wait on their deadlines. */
static void test_watchdog_pool_freed(void **state)
{
    test_server *srv = *state;
    uv_loop_t loop;
    result r;
    client_init(&r, &loop, NULL);
    r.up = start_watched(&r, srv, "/hang", 1000, 1000);
    prism_upstream *stalled = start_watched(&r, srv, "/stall", 1000, 1000);
    assert_non_null(r.up);
    assert_non_null(stalled);
    assert_true(run_until(&loop, &r.chunks, 1, 3000));
    client_done(&r);
    assert_int_equal(r.completes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_and_headers),
        cmocka_unit_test(test_reuse_and_restart_from_callback),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_interim_headers_dropped),
        cmocka_unit_test(test_post_body_and_request_headers),
        cmocka_unit_test(test_each_request_its_own_url),
        cmocka_unit_test(test_bad_requests_refused),
        cmocka_unit_test(test_stream_chunks),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_pause_resume_burst),
        cmocka_unit_test(test_cancel_in_on_body),
        cmocka_unit_test(test_cut_mid_body),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_cancel_other_and_free_from_callback),
        cmocka_unit_test(test_pool_free_in_flight),
        cmocka_unit_test(test_first_byte_timeout),
        cmocka_unit_test(test_first_byte_in_time),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_idle_steady_stream),
        cmocka_unit_test(test_idle_paused),
        cmocka_unit_test(test_idle_after_resume),
        cmocka_unit_test(test_watchdog_cancelled),
        cmocka_unit_test(test_watchdog_pool_freed),
    };
    int failed =
        cmocka_run_group_tests_name("upstream, built-in HTTP/1.1 client", tests, server_setup, server_teardown);
    use_libcurl = true;
    failed += cmocka_run_group_tests_name("upstream, libcurl", tests, server_setup, server_teardown);
    return failed;
}
