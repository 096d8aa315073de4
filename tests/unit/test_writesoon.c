/* Writes done at once, their callbacks run on the next loop turn
 * (writesoon.c): the bytes are on the wire when uv_write returns, the
 * callback comes once, with status 0, after it; a write the socket cannot
 * take whole goes on through libuv and calls back when all of it went; an
 * error is never reported as success; a stream closed while its callback
 * waits gets it before its close callback; closing the state runs what
 * still waits. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "loopback.h"
#include "writesoon.h"

typedef struct pair {
    uv_loop_t loop;
    uv_tcp_t tcp;
    int client; /* the peer: a plain blocking socket */
    prism_write_soon *ws;
    uv_write_t req[2];
    int done[2];   /* callbacks per request */
    int status[2]; /* the last status each got */
    char order[8]; /* 'w' write callback, 'c' close callback, in the order run */
    size_t norder;
    bool again; /* the first callback writes once more */
} pair;

static pair *of(uv_handle_t *h)
{
    return h->data;
}

static void note(pair *p, char c)
{
    if (p->norder < sizeof p->order) {
        p->order[p->norder++] = c;
    }
}

static void on_write(uv_write_t *req, int status)
{
    pair *p = of((uv_handle_t *)req->handle);
    int i = req == &p->req[0] ? 0 : 1;
    p->done[i]++;
    p->status[i] = status;
    note(p, 'w');
    if (i == 0 && p->again) {
        uv_buf_t b = uv_buf_init("again", 5);
        assert_int_equal(uv_write(&p->req[1], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    }
}

static void on_close(uv_handle_t *h)
{
    note(of(h), 'c');
}

static int setup(void **state)
{
    static pair p;
    memset(&p, 0, sizeof p);
    int sfd = -1;
    assert_int_equal(connected_on_loopback(&p.client, &sfd), 0);
    assert_int_equal(uv_loop_init(&p.loop), 0);
    p.ws = prism_write_soon_new(&p.loop);
    assert_non_null(p.ws);
    assert_int_equal(uv_tcp_init(&p.loop, &p.tcp), 0);
    assert_int_equal(uv_tcp_open(&p.tcp, sfd), 0);
    p.tcp.data = &p;
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    if (p->ws == NULL) { /* the test tore it all down itself */
        return 0;
    }
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, on_close);
    }
    uv_run(&p->loop, UV_RUN_DEFAULT);
    prism_write_soon_close(p->ws);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    prism_write_soon_free(p->ws);
    if (p->client >= 0) {
        close(p->client);
    }
    return 0;
}

/* Reads what the peer has without waiting. */
static size_t peer_has(pair *p, char *buf, size_t cap)
{
    ssize_t n = recv(p->client, buf, cap, MSG_DONTWAIT);
    return n > 0 ? (size_t)n : 0;
}

static void written_at_once_called_back_soon(void **state)
{
    pair *p = *state;
    uv_buf_t b[2] = {uv_buf_init("hel", 3), uv_buf_init("lo", 2)};
    assert_int_equal(uv_write(&p->req[0], (uv_stream_t *)&p->tcp, b, 2, on_write), 0);
    assert_int_equal(p->done[0], 0); /* never from inside uv_write */
    char got[16];
    assert_int_equal(peer_has(p, got, sizeof got), 5);
    assert_memory_equal(got, "hello", 5);
    assert_int_equal(p->tcp.write_queue_size, 0);
    assert_int_equal(p->tcp.io_watcher.pevents & POLLOUT, 0); /* writability never watched */
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(p->done[0], 1);
    assert_int_equal(p->status[0], 0);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(p->done[0], 1); /* once */
}

static void callback_writes_again(void **state)
{
    pair *p = *state;
    p->again = true;
    uv_buf_t b = uv_buf_init("first", 5);
    assert_int_equal(uv_write(&p->req[0], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(p->done[0], 1);
    assert_int_equal(p->done[1], 0); /* the second write's callback waits for the next turn */
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(p->done[1], 1);
    char got[16];
    assert_int_equal(peer_has(p, got, sizeof got), 10);
    assert_memory_equal(got, "firstagain", 10);
}

static void too_big_for_the_socket_goes_on(void **state)
{
    pair *p = *state;
    size_t size = 16u << 20; /* far past what loopback socket buffers hold */
    char *big = malloc(size);
    assert_non_null(big);
    for (size_t i = 0; i < size; i++) {
        big[i] = (char)(i * 7 + 3);
    }
    uv_buf_t b = uv_buf_init(big, (unsigned int)size);
    assert_int_equal(uv_write(&p->req[0], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    assert_true(p->tcp.write_queue_size > 0); /* libuv has the rest */
    char *got = malloc(size);
    assert_non_null(got);
    size_t have = 0;
    for (int spins = 0; spins < 200000 && (have < size || p->done[0] == 0); spins++) {
        have += peer_has(p, got + have, size - have);
        uv_run(&p->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(have, size);
    assert_memory_equal(got, big, size);
    assert_int_equal(p->done[0], 1);
    assert_int_equal(p->status[0], 0);
    free(big);
    free(got);
}

static void errors_are_not_success(void **state)
{
    pair *p = *state;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(p->client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(p->client); /* a reset */
    p->client = -1;
    usleep(20000);
    uv_buf_t b = uv_buf_init("lost", 4);
    int rc = uv_write(&p->req[0], (uv_stream_t *)&p->tcp, &b, 1, on_write);
    for (int i = 0; i < 100 && rc == 0 && p->done[0] == 0; i++) {
        uv_run(&p->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    /* libuv's answer: refused at once, or a callback with the error */
    assert_true(rc < 0 || (p->done[0] == 1 && p->status[0] < 0));
}

/* Writes and closes from a check callback, which runs after the idle phase
 * and right before the loop's close callbacks: the waiting write callback
 * must still come before the close callback (the owner frees the request
 * there). */
static void write_then_close(uv_check_t *check)
{
    pair *p = check->data;
    uv_buf_t b = uv_buf_init("bye", 3);
    assert_int_equal(uv_write(&p->req[0], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    uv_close((uv_handle_t *)&p->tcp, on_close);
    assert_int_equal(p->done[0], 0);
    uv_close((uv_handle_t *)check, NULL);
}

static void close_runs_the_waiting_callback_first(void **state)
{
    pair *p = *state;
    uv_check_t check;
    uv_check_init(&p->loop, &check);
    check.data = p;
    uv_check_start(&check, write_then_close);
    uv_run(&p->loop, UV_RUN_NOWAIT); /* poll, check, then the close callbacks */
    assert_int_equal(p->done[0], 1);
    assert_int_equal(p->status[0], 0);
    assert_int_equal(p->norder, 2);
    assert_memory_equal(p->order, "wc", 2);
    uv_run(&p->loop, UV_RUN_DEFAULT);
}

static void closing_the_state_runs_what_waits(void **state)
{
    pair *p = *state;
    uv_buf_t b = uv_buf_init("late", 4);
    assert_int_equal(uv_write(&p->req[0], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    prism_write_soon_close(p->ws);
    assert_int_equal(p->done[0], 1);
    /* From now on writes are libuv's: its callback, on the next turn, once. */
    assert_int_equal(uv_write(&p->req[1], (uv_stream_t *)&p->tcp, &b, 1, on_write), 0);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(p->done[1], 1);
    uv_close((uv_handle_t *)&p->tcp, on_close);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    prism_write_soon_free(p->ws);
    p->ws = NULL;
    close(p->client);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the server does: a write to a reset socket is an error, not a signal */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(written_at_once_called_back_soon, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_writes_again, setup, teardown),
        cmocka_unit_test_setup_teardown(too_big_for_the_socket_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_are_not_success, setup, teardown),
        cmocka_unit_test_setup_teardown(close_runs_the_waiting_callback_first, setup, teardown),
        cmocka_unit_test_setup_teardown(closing_the_state_runs_what_waits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
