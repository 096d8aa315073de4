/*
 * test_h1client.c - which requests the built-in HTTP/1.1 client takes: the
 * URLs it understands, malformed header lines, and, with a proxy configured,
 * only the hosts no_proxy exempts, a kept connection the upstream closed
 * while the loop was busy, and which kept connection a request takes (its
 * own host's, as many kept as the pool was told). (Transfers themselves are exercised by
 * test_upstream.c over a real socket.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "h1client.h"
#include "loopback.h"

typedef struct fixture {
    uv_loop_t loop;
    prism_h1_pool *pool;
} fixture;

/* A loop and a pool keeping at most `max_idle` idle connections (0: its default). */
static int setup_with(void **state, size_t max_idle)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->pool = prism_h1_pool_new(&f->loop, 0, max_idle, NULL, NULL);
    assert_non_null(f->pool);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_idle_one(void **state)
{
    return setup_with(state, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    prism_h1_pool_free(f->pool);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_done(void *data, prism_upstream_error err, const char *message)
{
    (void)data;
    (void)err;
    (void)message;
    fail_msg("no callback runs for a request cancelled before the loop ran");
}

/* Whether the client takes a GET of `url` (it is cancelled at once, before
 * any I/O: nothing listens on these ports). */
static bool takes(fixture *f, const char *url, const char *const *headers, size_t n)
{
    prism_http_request_t req = {.method = "GET", .url = url, .headers = headers, .header_count = n};
    prism_h1_callbacks cb = {.on_done = on_done};
    prism_h1_req *r = prism_h1_start(f->pool, &req, 1000, &cb);
    if (!r) {
        return false;
    }
    prism_h1_cancel(r);
    return true;
}

static void test_urls(void **state)
{
    fixture *f = *state;
    assert_true(takes(f, "http://127.0.0.1:9/v1/chat/completions", NULL, 0));
    assert_true(takes(f, "http://[::1]:9/v1", NULL, 0));
    assert_true(takes(f, "http://localhost:9", NULL, 0));
    /* h2o's URL parser wants the scheme in lower case: libcurl takes these. */
    assert_false(takes(f, "HTTP://127.0.0.1:9", NULL, 0));
    assert_false(takes(f, "https://127.0.0.1:9/v1", NULL, 0)); /* TLS: libcurl's */
    assert_false(takes(f, "http://user:pw@127.0.0.1:9/v1", NULL, 0));
    assert_false(takes(f, "http://127.0.0.1:9/v1#frag", NULL, 0));
    assert_false(takes(f, "http://127.0.0.1:9/a b", NULL, 0));
    assert_false(takes(f, "http://127.0.0.1:99999/", NULL, 0));
    assert_false(takes(f, "ftp://127.0.0.1/", NULL, 0));
}

static void test_header_lines(void **state)
{
    fixture *f = *state;
    const char *ok[] = {"Authorization: Bearer k", "X-Empty:"};
    const char *crlf[] = {"X-A: 1\r\nX-Injected: 2"};
    const char *no_colon[] = {"NoColon"};
    const char *no_name[] = {": value"};
    assert_true(takes(f, "http://127.0.0.1:9/", ok, 2));
    assert_false(takes(f, "http://127.0.0.1:9/", crlf, 1));
    assert_false(takes(f, "http://127.0.0.1:9/", no_colon, 1));
    assert_false(takes(f, "http://127.0.0.1:9/", no_name, 1));
}

/* The rule both upstream clients share (libcurl's path in upstream.c too). */
static void test_header_line_rule(void **state)
{
    (void)state;
    assert_true(prism_h1_header_ok("X-A: 1"));
    assert_true(prism_h1_header_ok("X-Empty:"));
    assert_false(prism_h1_header_ok(NULL));
    assert_false(prism_h1_header_ok("X-A: 1\nX-B: 2"));
    assert_false(prism_h1_header_ok("X-A: 1\r"));
    assert_false(prism_h1_header_ok("NoColon"));
    assert_false(prism_h1_header_ok(": value"));
    assert_true(prism_h1_header_is("content-type: application/json", "Content-Type"));
    assert_true(prism_h1_header_is("HOST:x", "Host"));
    assert_false(prism_h1_header_is("Content-Typo: x", "Content-Type"));
    assert_false(prism_h1_header_is("Content-Type-X: x", "Content-Type"));
    assert_false(prism_h1_header_is("Content-Type", "Content-Type"));
}

static void test_no_proxy(void **state)
{
    fixture *f = *state;
    assert_int_equal(prism_h1_pool_proxied(f->pool, "example.test, .corp.example ,127.0.0.1"), 0);
    assert_true(takes(f, "http://127.0.0.1:9/", NULL, 0));
    assert_true(takes(f, "http://example.test:9/", NULL, 0));
    assert_true(takes(f, "http://api.example.test:9/", NULL, 0)); /* a subdomain */
    assert_true(takes(f, "http://EXAMPLE.TEST:9/", NULL, 0));
    assert_true(takes(f, "http://models.corp.example:9/", NULL, 0));
    assert_false(takes(f, "http://badexample.test:9/", NULL, 0)); /* not a subdomain */
    assert_false(takes(f, "http://127.0.0.2:9/", NULL, 0));
    assert_false(takes(f, "http://other.test:9/", NULL, 0));
    assert_int_equal(prism_h1_pool_proxied(f->pool, ""), 0);
    assert_false(takes(f, "http://127.0.0.1:9/", NULL, 0)); /* nothing exempt */
    assert_int_equal(prism_h1_pool_proxied(f->pool, "*"), 0);
    assert_true(takes(f, "http://anything.test:9/", NULL, 0));
}

/* ---- a kept connection closed while the loop was busy ---- */

typedef struct outcome {
    bool done;
    prism_upstream_error err;
    char body[64];
    size_t body_len;
} outcome;

static int collect_body(void *data, const char *chunk, size_t len)
{
    outcome *o = data;
    size_t room = sizeof o->body - o->body_len;
    size_t n = len < room ? len : room;
    memcpy(o->body + o->body_len, chunk, n);
    o->body_len += n;
    return 0;
}

static void collect_done(void *data, prism_upstream_error err, const char *message)
{
    (void)message;
    outcome *o = data;
    o->done = true;
    o->err = err;
}

/* The next connection to the listener, or -1 when none comes within 2 s. */
static int accept_within(int listen_fd)
{
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    return poll(&p, 1, 2000) == 1 ? accept(listen_fd, NULL, NULL) : -1;
}

/* Answers the request on `fd` and runs the loop to its end. */
static void get_answered(fixture *f, int fd, outcome *o)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_int_equal(write(fd, answer, sizeof answer - 1), (ssize_t)(sizeof answer - 1));
    for (int turns = 0; !o->done && turns < 1000; turns++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(o->done);
}

/* A listener on 127.0.0.1 and `url` naming `path` on it; the listener's fd. */
static int listen_at(char *url, size_t size, const char *path)
{
    int port;
    int fd = listen_on_loopback(&port);
    assert_true(fd >= 0);
    snprintf(url, size, "http://127.0.0.1:%d%s", port, path);
    return fd;
}

static void test_kept_connection_closed_unseen(void **state)
{
    fixture *f = *state;
    char url[64];
    int listen_fd = listen_at(url, sizeof url, "/v1/models");
    prism_http_request_t req = {.method = "GET", .url = url};

    outcome first = {0};
    prism_h1_callbacks cb = {.data = &first, .on_body = collect_body, .on_done = collect_done};
    assert_non_null(prism_h1_start(f->pool, &req, 1000, &cb));
    int fd1 = accept_within(listen_fd);
    assert_true(fd1 >= 0);
    get_answered(f, fd1, &first);
    assert_int_equal(first.err, PRISM_UPSTREAM_OK);
    assert_int_equal(prism_h1_pool_connections(f->pool), 1); /* kept */

    /* The upstream's keep-alive timer closes the connection while the loop
     * is busy elsewhere for over a second: the close is not polled yet. */
    close(fd1);
    struct timespec pause = {.tv_sec = 1, .tv_nsec = 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    uv_update_time(&f->loop);

    outcome second = {0};
    cb.data = &second;
    assert_non_null(prism_h1_start(f->pool, &req, 1000, &cb));
    int fd2 = accept_within(listen_fd);
    assert_true(fd2 >= 0); /* a new connection, not the closed one */
    get_answered(f, fd2, &second);
    assert_int_equal(second.err, PRISM_UPSTREAM_OK);
    assert_int_equal(second.body_len, 2);
    assert_memory_equal(second.body, "ok", 2);
    close(fd2);
    close(listen_fd);
}

/* ---- which idle connection a request takes, and how many are kept ---- */

/* The request just started went out on `fd`, an accepted connection, and no
 * new connection is waiting on `listen_fd`. */
static void sent_on(int listen_fd, int fd)
{
    struct pollfd none = {.fd = listen_fd, .events = POLLIN};
    assert_int_equal(poll(&none, 1, 50), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 2000), 1);
    char buf[1024];
    assert_true(read(fd, buf, sizeof buf) > 0);
}

static void run_until(fixture *f, const bool *done, int n)
{
    for (int turns = 0; turns < 1000; turns++) {
        bool all = true;
        for (int i = 0; i < n; i++) {
            all = all && done[i];
        }
        if (all) {
            break;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < 10; i++) { /* closes finish on the next turns */
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
}

static const char ok_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* One GET to `url`, answered on `fd` (which must be where it went). */
static void get_on(fixture *f, const char *url, int listen_fd, int fd)
{
    outcome o = {0};
    prism_http_request_t req = {.method = "GET", .url = url};
    prism_h1_callbacks cb = {.data = &o, .on_body = collect_body, .on_done = collect_done};
    assert_non_null(prism_h1_start(f->pool, &req, 1000, &cb));
    sent_on(listen_fd, fd);
    assert_int_equal(write(fd, ok_answer, sizeof ok_answer - 1), (ssize_t)(sizeof ok_answer - 1));
    run_until(f, &o.done, 1);
    assert_true(o.done);
    assert_int_equal(o.err, PRISM_UPSTREAM_OK);
}

/* Two hosts: each request takes its own host's kept connection, whichever
 * host was used last. */
static void test_idle_per_host(void **state)
{
    fixture *f = *state;
    char url_a[64], url_b[64];
    int la = listen_at(url_a, sizeof url_a, "/a"), lb = listen_at(url_b, sizeof url_b, "/b");
    prism_http_request_t req = {.method = "GET", .url = url_a};
    int fds[2];
    for (int i = 0; i < 2; i++) {
        outcome o = {0};
        prism_h1_callbacks cb = {.data = &o, .on_body = collect_body, .on_done = collect_done};
        req.url = i == 0 ? url_a : url_b;
        assert_non_null(prism_h1_start(f->pool, &req, 1000, &cb));
        fds[i] = accept_within(i == 0 ? la : lb);
        assert_true(fds[i] >= 0);
        get_answered(f, fds[i], &o);
        assert_int_equal(o.err, PRISM_UPSTREAM_OK);
    }
    assert_int_equal(prism_h1_pool_connections(f->pool), 2);
    get_on(f, url_a, la, fds[0]); /* A's connection, behind B's in recency */
    get_on(f, url_b, lb, fds[1]);
    get_on(f, url_b, lb, fds[1]);
    get_on(f, url_a, la, fds[0]);
    assert_int_equal(prism_h1_pool_connections(f->pool), 2);
    close(fds[0]);
    close(fds[1]);
    close(la);
    close(lb);
}

/* With room for one idle connection, two requests in flight leave one kept
 * and one closed; the kept one serves the next request. */
static void test_idle_cap(void **state)
{
    fixture *f = *state;
    char url[64];
    int l = listen_at(url, sizeof url, "/v1/models");
    prism_http_request_t req = {.method = "GET", .url = url};
    outcome o[2] = {{0}};
    int fds[2];
    for (int i = 0; i < 2; i++) {
        prism_h1_callbacks cb = {.data = &o[i], .on_body = collect_body, .on_done = collect_done};
        assert_non_null(prism_h1_start(f->pool, &req, 1000, &cb));
        fds[i] = accept_within(l);
        assert_true(fds[i] >= 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(write(fds[i], ok_answer, sizeof ok_answer - 1), (ssize_t)(sizeof ok_answer - 1));
    }
    bool done[2];
    for (int turns = 0; turns < 1000 && !(o[0].done && o[1].done); turns++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    done[0] = o[0].done;
    done[1] = o[1].done;
    run_until(f, done, 2);
    assert_true(done[0] && done[1]);
    assert_int_equal(o[0].err, PRISM_UPSTREAM_OK);
    assert_int_equal(o[1].err, PRISM_UPSTREAM_OK);
    assert_int_equal(prism_h1_pool_connections(f->pool), 1);
    /* Which one was kept: past its request, the closed one reads its end,
     * the kept one has nothing more to read. */
    bool open[2];
    for (int i = 0; i < 2; i++) {
        char buf[1024];
        ssize_t n;
        while ((n = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        }
        open[i] = n < 0;
    }
    assert_true(open[0] != open[1]);
    get_on(f, url, l, fds[open[0] ? 0 : 1]);
    assert_int_equal(prism_h1_pool_connections(f->pool), 1);
    close(fds[0]);
    close(fds[1]);
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_lines, setup, teardown),
        cmocka_unit_test(test_header_line_rule),
        cmocka_unit_test_setup_teardown(test_no_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_connection_closed_unseen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_per_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_cap, setup_idle_one, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
