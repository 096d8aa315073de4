/* Reading paused instead of stopped (readpause.c): a stop then a start with
 * nothing in between leaves libuv watching the socket all along; bytes, or
 * the peer's close, arriving while paused stop the stream for real without
 * reading a byte, and the next start delivers them; a second stop, a close,
 * and streams other than TCP get libuv's own stop. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "loopback.h"
#include "readpause.h"

typedef struct pair {
    uv_loop_t loop;
    uv_tcp_t tcp;
    int client; /* the peer: a plain blocking socket */
    char buf[256];
    char got[256];
    size_t len;
    int calls; /* read callbacks the owner saw */
    bool eof;
    bool stop_in_cb; /* stop from inside the callback, as libh2o does */
    bool closed;
} pair;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pair *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->buf, sizeof p->buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pair *p = s->data;
    p->calls++;
    if (nread > 0 && p->len + (size_t)nread < sizeof p->got) {
        memcpy(p->got + p->len, buf->base, (size_t)nread);
        p->len += (size_t)nread;
    }
    if (nread == UV_EOF) {
        p->eof = true;
    }
    if (p->stop_in_cb) {
        uv_read_stop(s);
    }
}

/* Turns the loop without blocking for about ms milliseconds. */
static void spin(pair *p, int ms)
{
    for (int i = 0; i < ms; i++) {
        uv_run(&p->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static bool watched(const pair *p)
{
    return (p->tcp.io_watcher.pevents & POLLIN) != 0;
}

static int setup(void **state)
{
    static pair p;
    memset(&p, 0, sizeof p);
    int sfd = -1;
    assert_int_equal(connected_on_loopback(&p.client, &sfd), 0);
    assert_int_equal(uv_loop_init(&p.loop), 0);
    assert_int_equal(uv_tcp_init(&p.loop, &p.tcp), 0);
    assert_int_equal(uv_tcp_open(&p.tcp, sfd), 0);
    p.tcp.data = &p;
    *state = &p;
    return 0;
}

static void on_close(uv_handle_t *h)
{
    ((pair *)h->data)->closed = true;
}

static int teardown(void **state)
{
    pair *p = *state;
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, on_close);
    }
    uv_run(&p->loop, UV_RUN_DEFAULT);
    assert_true(p->closed);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    if (p->client >= 0) {
        close(p->client);
    }
    return 0;
}

static void send_text(pair *p, const char *s)
{
    assert_int_equal(write(p->client, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads "one", stopping from the callback: the stream is paused. */
static void read_one_and_pause(pair *p)
{
    p->stop_in_cb = true;
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read), 0);
    send_text(p, "one");
    for (int i = 0; i < 2000 && p->len < 3; i++) {
        spin(p, 1);
    }
    assert_int_equal(p->len, 3);
    p->stop_in_cb = false;
    assert_true(prism_read_paused((uv_stream_t *)&p->tcp));
}

static void start_without_traffic(void **state)
{
    pair *p = *state;
    read_one_and_pause(p);
    spin(p, 20);
    assert_true(prism_read_paused((uv_stream_t *)&p->tcp));
    assert_true(watched(p)); /* still registered: the start has nothing to redo */
    assert_int_equal(p->calls, 1);
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read), 0);
    assert_false(prism_read_paused((uv_stream_t *)&p->tcp));
    send_text(p, "two");
    for (int i = 0; i < 2000 && p->len < 6; i++) {
        spin(p, 1);
    }
    assert_memory_equal(p->got, "onetwo", 6);
}

static void bytes_while_paused_wait(void **state)
{
    pair *p = *state;
    read_one_and_pause(p);
    send_text(p, "late");
    for (int i = 0; i < 2000 && prism_read_paused((uv_stream_t *)&p->tcp); i++) {
        spin(p, 1);
    }
    assert_false(prism_read_paused((uv_stream_t *)&p->tcp));
    assert_false(watched(p)); /* stopped for real: no busy loop on the waiting bytes */
    spin(p, 20);
    assert_int_equal(p->calls, 1); /* the owner saw nothing while stopped */
    assert_int_equal(p->len, 3);
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read), 0);
    for (int i = 0; i < 2000 && p->len < 7; i++) {
        spin(p, 1);
    }
    assert_memory_equal(p->got, "onelate", 7);
}

static void close_while_paused_waits(void **state)
{
    pair *p = *state;
    read_one_and_pause(p);
    close(p->client);
    p->client = -1;
    for (int i = 0; i < 2000 && prism_read_paused((uv_stream_t *)&p->tcp); i++) {
        spin(p, 1);
    }
    assert_false(prism_read_paused((uv_stream_t *)&p->tcp));
    spin(p, 20);
    assert_int_equal(p->calls, 1);
    assert_false(p->eof);
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read), 0);
    for (int i = 0; i < 2000 && !p->eof; i++) {
        spin(p, 1);
    }
    assert_true(p->eof);
}

static void second_stop_is_libuvs(void **state)
{
    pair *p = *state;
    read_one_and_pause(p);
    assert_int_equal(uv_read_stop((uv_stream_t *)&p->tcp), 0);
    assert_false(prism_read_paused((uv_stream_t *)&p->tcp));
    assert_false(watched(p));
    /* A stop of a stopped stream changes nothing. */
    assert_int_equal(uv_read_stop((uv_stream_t *)&p->tcp), 0);
    assert_false(prism_read_paused((uv_stream_t *)&p->tcp));
    send_text(p, "two");
    spin(p, 20);
    assert_int_equal(p->calls, 1);
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read), 0);
    for (int i = 0; i < 2000 && p->len < 6; i++) {
        spin(p, 1);
    }
    assert_memory_equal(p->got, "onetwo", 6);
}

static void close_while_paused(void **state)
{
    pair *p = *state;
    read_one_and_pause(p);
    uv_close((uv_handle_t *)&p->tcp, on_close); /* teardown checks the loop ends clean */
}

static void on_pipe_close(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

static void pipes_stop_for_real(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_pipe_t pipe;
    int fds[2];
    bool closed = false;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_pipe_init(&loop, &pipe, 0), 0);
    assert_int_equal(uv_pipe_open(&pipe, fds[0]), 0);
    pipe.data = &closed;
    assert_int_equal(uv_read_start((uv_stream_t *)&pipe, on_alloc, on_read), 0);
    assert_int_equal(uv_read_stop((uv_stream_t *)&pipe), 0);
    assert_false(prism_read_paused((uv_stream_t *)&pipe));
    assert_int_equal(pipe.io_watcher.pevents & POLLIN, 0);
    uv_close((uv_handle_t *)&pipe, on_pipe_close);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(start_without_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_while_paused_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(close_while_paused_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(second_stop_is_libuvs, setup, teardown),
        cmocka_unit_test_setup_teardown(close_while_paused, setup, teardown),
        cmocka_unit_test(pipes_stop_for_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
