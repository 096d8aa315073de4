/*
 * logwriter.c - the thread that writes the workers' access lines.
 *
 * Two buffers of `cap` bytes: workers append to `fill` under the mutex; the
 * thread swaps it with `out`, lets go of the mutex and writes `out`. After a
 * write it lingers (LINGER_NS, or until `fill` is half full) so that a busy
 * server's lines go out in large writes and no worker has to wake it: a
 * worker signals only a thread that found nothing to write and went to
 * sleep (`idle`). The buffers are allocated once; their pages are touched
 * only as far as the lines ever reached.
 */
#include "logwriter.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINGER_NS   (1000 * 1000) /* 1 ms: a line is written at most this late */
#define STOP_WAIT_S 2             /* how long the stop waits for the last lines to be taken */

struct prism_log_writer {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC, for the linger */
    pthread_t thread;
    char *fill, *out;
    size_t len, cap;
    int idle;     /* asleep with nothing to write: a put must signal */
    int stopping; /* write what is left, then end */
    uint64_t dropped, dropped_unsaid;
};

static void linger(prism_log_writer *w)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += LINGER_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!w->stopping && w->len < w->cap / 2)
        if (pthread_cond_timedwait(&w->wake, &w->lock, &until) != 0)
            break;
}

/* Said on the log itself, written by this thread at once, when there is
 * room again: whoever reads the log learns that lines are missing, and
 * where. */
static void say_dropped(uint64_t n)
{
    char line[512];
    size_t len =
        prism_log_formatf(line, sizeof(line) - 1, PRISM_LOG_WARN, "log",
                          "%llu log lines dropped: the log was not taking writes fast enough", (unsigned long long)n);
    line[len++] = '\n';
    prism_log_write(line, len);
}

static void *writer_main(void *arg)
{
    prism_log_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->len == 0 && !w->stopping) {
            w->idle = 1;
            pthread_cond_wait(&w->wake, &w->lock);
        }
        w->idle = 0;
        if (w->len == 0)
            break; /* stopping, and all written */
        char *out = w->fill;
        size_t len = w->len;
        uint64_t unsaid = w->dropped_unsaid;
        w->fill = w->out;
        w->out = out;
        w->len = 0;
        w->dropped_unsaid = 0;
        pthread_mutex_unlock(&w->lock);
        if (unsaid != 0)
            say_dropped(unsaid);
        prism_log_write(out, len);
        pthread_mutex_lock(&w->lock);
        linger(w);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static uint64_t count_lines(const char *buf, size_t len)
{
    uint64_t n = 0;
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        n++;
    return n;
}

int prism_log_writer_put(prism_log_writer *w, const char *buf, size_t len)
{
    if (len == 0)
        return 0;
    pthread_mutex_lock(&w->lock);
    if (len > w->cap - w->len) {
        uint64_t n = count_lines(buf, len);
        w->dropped += n;
        w->dropped_unsaid += n;
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    memcpy(w->fill + w->len, buf, len);
    w->len += len;
    int wake = w->idle || w->len >= w->cap / 2;
    w->idle = 0; /* one signal is enough */
    pthread_mutex_unlock(&w->lock);
    if (wake)
        pthread_cond_signal(&w->wake);
    return 0;
}

uint64_t prism_log_writer_dropped(prism_log_writer *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t n = w->dropped;
    pthread_mutex_unlock(&w->lock);
    return n;
}

static void writer_free(prism_log_writer *w)
{
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->fill);
    free(w->out);
    free(w);
}

prism_log_writer *prism_log_writer_start(size_t cap)
{
    prism_log_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cap = cap;
    w->fill = malloc(cap);
    w->out = malloc(cap);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    if (w->fill == NULL || w->out == NULL || cap == 0 || pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        writer_free(w);
        return NULL;
    }
    return w;
}

int prism_log_writer_stop(prism_log_writer *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_mutex_unlock(&w->lock);
    pthread_cond_signal(&w->wake);
    /* A sink that takes no writes would hold the stop forever (the thread
     * is inside write(2)): past the wait, the thread and its buffers are
     * left to the process's exit. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_S;
    if (pthread_timedjoin_np(w->thread, NULL, &until) != 0)
        return -1;
    if (w->dropped_unsaid != 0)
        say_dropped(w->dropped_unsaid);
    writer_free(w);
    return 0;
}
