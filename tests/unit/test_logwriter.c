/* The log writer thread: lines from many threads arrive whole and in each
 * thread's order; a sink that stops taking writes never blocks a caller,
 * and what had to be dropped is counted and said once the sink moves. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "logwriter.h"

#define THREADS 4
#define LINES   3000

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void *log_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        prism_logf(PRISM_LOG_INFO, "t", "thread=%d seq=%d", id, i);
    return NULL;
}

/* prism_logf from four threads at once, through the writer: every line
 * written, whole, each thread's in its order. */
static void lines_whole_and_in_order(void **state)
{
    (void)state;
    char path[] = "/tmp/prism-test-logwriter-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(prism_log_configure(PRISM_LOG_INFO, 1, path), 0);
    prism_log_writer *w = prism_log_writer_start(1 << 20);
    assert_non_null(w);
    prism_log_use_writer(w);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    prism_log_use_writer(NULL);
    uint64_t dropped = prism_log_writer_dropped(w);
    assert_int_equal(prism_log_writer_stop(w), 0);
    assert_int_equal(dropped, 0);

    size_t len;
    char *text = slurp(path, &len);
    int next[THREADS] = {0};
    int lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1, lines++) {
        *nl = '\0';
        const char *m = strstr(line, "\"msg\":\"thread=");
        assert_non_null(m);
        int id, seq;
        assert_int_equal(sscanf(m, "\"msg\":\"thread=%d seq=%d\"}", &id, &seq), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(seq, next[id]); /* in order, none missing */
        next[id]++;
        assert_int_equal(line[0], '{');
        assert_int_equal(nl[-1], '}');
    }
    assert_int_equal(lines, THREADS * LINES);
    free(text);
    unlink(path);
}

static int fifo_read_all(int rfd, char *buf, size_t cap, size_t *len)
{
    int got = 0;
    for (;;) {
        ssize_t n = read(rfd, buf + *len, cap - 1 - *len);
        if (n <= 0)
            break;
        *len += (size_t)n;
        got = 1;
    }
    buf[*len] = '\0';
    return got;
}

/* The sum of N over the "N log lines dropped" notices in buf. */
static uint64_t notices_total(const char *buf)
{
    static const char tag[] = " log lines dropped";
    uint64_t total = 0;
    for (const char *p = buf; (p = strstr(p, tag)) != NULL; p += sizeof(tag) - 1) {
        const char *d = p;
        while (d > buf && d[-1] >= '0' && d[-1] <= '9')
            d--;
        total += strtoull(d, NULL, 10);
    }
    return total;
}

static uint64_t count_char(const char *buf, size_t len, char c)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == c;
    return n;
}

static uint64_t count_x(const char *buf, size_t len)
{
    return count_char(buf, len, 'x');
}

/* A FIFO as the log's sink, opened for reading but not read, with a pipe
 * of 4 KB: a sink that stops taking writes. Returns the reading end. */
static int open_unread_fifo(char *path, size_t cap, const char *name)
{
    snprintf(path, cap, "/tmp/prism-test-logfifo-%s-%d", name, (int)getpid());
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    fcntl(rfd, F_SETPIPE_SZ, 4096);
    assert_int_equal(prism_log_configure(PRISM_LOG_INFO, 1, path), 0);
    return rfd;
}

/* len - 1 copies of c and a newline. */
static void fill_line(char *line, size_t len, char c)
{
    memset(line, c, len - 1);
    line[len - 1] = '\n';
}

/* The sink is a pipe nobody reads (a journal or a container runtime that
 * stopped): puts return at once, those past the bound are dropped and
 * counted, and once the pipe is read again the writer says how many. */
static void stuck_sink_drops_and_says_so(void **state)
{
    (void)state;
    char path[64];
    int rfd = open_unread_fifo(path, sizeof(path), "drops");
    prism_log_writer *w = prism_log_writer_start(8192);
    assert_non_null(w);
    char line[100];
    fill_line(line, sizeof(line), 'x');
    int refused = 0;
    /* 40 KB against at most 4 KB in the pipe, 8 KB being written and 8 KB
     * waiting: the rest must be refused, and no put may block. */
    for (int i = 0; i < 400; i++) {
        if (prism_log_writer_put(w, line, sizeof(line)) != 0)
            refused++;
        if (i % 50 == 0)
            usleep(2000); /* let the writer take what it can */
    }
    assert_true(refused >= 200);
    assert_int_equal(prism_log_writer_dropped(w), (uint64_t)refused);

    /* Read the pipe again: everything queued comes out, with the notices
     * (one, or more when the writer swapped between drops). The writer is
     * stopped only once all of it is read: it would wait on the full pipe. */
    static char got[64 * 1024];
    size_t len = 0;
    uint64_t want_xs = (uint64_t)(400 - refused) * (sizeof(line) - 1);
    for (int tries = 0; tries < 5000; tries++) {
        if (fifo_read_all(rfd, got, sizeof(got), &len))
            continue;
        if (count_x(got, len) == want_xs && notices_total(got) == (uint64_t)refused)
            break;
        usleep(1000);
    }
    assert_int_equal(notices_total(got), (uint64_t)refused);
    assert_int_equal(count_x(got, len), want_xs); /* whole lines, none lost unsaid */
    assert_int_equal(prism_log_writer_stop(w), 0);
    fifo_read_all(rfd, got, sizeof(got), &len);
    assert_int_equal(count_x(got, len), want_xs); /* nothing more at the stop */
    assert_int_equal(notices_total(got), (uint64_t)refused);
    close(rfd);
    unlink(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A sink that never takes writes again must not hold the server's stop:
 * the stop gives up after its wait and says so; called again once the
 * sink moves, it ends the thread and frees it. */
static void stuck_sink_stop_gives_up(void **state)
{
    (void)state;
    char path[64];
    int rfd = open_unread_fifo(path, sizeof(path), "stop");
    prism_log_writer *w = prism_log_writer_start(8192);
    assert_non_null(w);
    char line[100];
    fill_line(line, sizeof(line), 'y');
    uint64_t accepted = 0;
    for (int i = 0; i < 400; i++) { /* 40 KB: more than the pipe and both buffers */
        accepted += prism_log_writer_put(w, line, sizeof(line)) == 0;
        if (i % 40 == 0)
            usleep(2000);
    }
    double t0 = now_s();
    assert_int_equal(prism_log_writer_stop(w), -1);
    double waited = now_s() - t0;
    assert_true(waited >= 1.5 && waited < 10.0);
    /* Still a writer: a put queues or drops, and returns at once. */
    accepted += prism_log_writer_put(w, line, sizeof(line)) == 0;
    assert_true(prism_log_writer_dropped(w) > 0);

    /* The sink moves again: everything queued drains and the stop completes. */
    static char got[64 * 1024];
    size_t len = 0;
    for (int idle = 0; idle < 200; idle++) {
        if (fifo_read_all(rfd, got, sizeof(got), &len))
            idle = 0;
        usleep(1000);
    }
    assert_int_equal(prism_log_writer_stop(w), 0);
    fifo_read_all(rfd, got, sizeof(got), &len);
    assert_int_equal(count_char(got, len, 'y'), accepted * (sizeof(line) - 1));
    close(rfd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_whole_and_in_order),
        cmocka_unit_test(stuck_sink_drops_and_says_so),
        cmocka_unit_test(stuck_sink_stop_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
