/*
 * metrics.c - per-worker request metrics, rendered for Prometheus.
 *
 * Concurrency. Every prism_metrics has its own mutex, taken once per
 * recorded request by the owning worker and once per scrape by the renderer.
 * One uncontended lock/unlock (~20 ns) covers all the families a request
 * touches, and the renderer then sees a consistent snapshot of each worker:
 * a histogram's buckets, _sum and _count always agree, and the request
 * counter always matches the duration histogram's count. Relaxed atomics
 * would save those 20 ns but need a lock for inserting anyway (a reader must
 * not walk a table that is being grown and freed) and give up that
 * consistency. The two gauges are single words with no invariant tying them
 * to anything else, and they move twice per request: those are relaxed
 * atomics, so they need no lock.
 *
 * Storage. Each family (one metric name) holds an open-addressing hash table
 * of series keyed by their label values, joined with NUL bytes. A record
 * hashes each label value once and combines the hashes per family: lock,
 * one probe per family, a few additions, unlock. A request shaped like one
 * the worker saw lately skips even that, through the series it remembers
 * for the shape ("request shapes" below). A series is allocated the first
 * time its label set is seen. Past
 * PRISM_METRICS_MAX_SERIES series, the model label becomes "other" (a small
 * reserve of such series keeps the other labels); past the reserve, every
 * label becomes "other", in a series allocated up front so that recording
 * never fails and never grows memory beyond the bound.
 *
 * Rendering merges every worker's series into a scratch table per family,
 * sorts them by label values for a stable output, and prints them.
 */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4
/* Series past the cap that keep every label but the model. */
#define OVERFLOW_RESERVE 64
#define FIRST_SLOTS      8

/* ---- family descriptions (constant) ---- */

typedef struct family_desc {
    const char *name;
    const char *help;
    const char *const *labels;
    unsigned nlabels;
    int overflow_label;   /* index of the client-controlled label, -1 none */
    const double *bounds; /* finite histogram bounds; NULL for a counter */
    unsigned nbounds;
} family_desc;

static const double slow_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
/* The gateway's own costs are tens of microseconds: finer buckets. */
static const double fast_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01};
#define NSLOW (sizeof slow_bounds / sizeof slow_bounds[0])
#define NFAST (sizeof fast_bounds / sizeof fast_bounds[0])

static const char *const l_requests[] = {"route", "model", "provider", "status"};
static const char *const l_route[] = {"route"};
static const char *const l_provider[] = {"provider"};
static const char *const l_tokens[] = {"model", "direction"};
static const char *const l_errors[] = {"provider", "kind"};
static const char *const l_model[] = {"model"};
static const char *const l_plugin[] = {"plugin"};

enum {
    F_REQUESTS,
    F_DURATION,
    F_UPSTREAM,
    F_TTFT,
    F_OVERHEAD,
    F_TOKENS,
    F_ERRORS,
    F_RETRIES,
    F_FALLBACKS,
    F_STEPS,
    F_COUNT
};

static const family_desc families[F_COUNT] = {
    [F_REQUESTS] = {"prism_requests_total", "Requests handled, by route, routed model, provider and HTTP status.",
                    l_requests, 4, 1, NULL, 0},
    [F_DURATION] = {"prism_request_duration_seconds", "Whole request duration.", l_route, 1, -1, slow_bounds, NSLOW},
    [F_UPSTREAM] = {"prism_upstream_duration_seconds", "Time spent in upstream calls, per request.", l_provider, 1, -1,
                    slow_bounds, NSLOW},
    [F_TTFT] = {"prism_time_to_first_token_seconds", "Time to the first upstream body byte of a stream.", l_provider, 1,
                -1, slow_bounds, NSLOW},
    [F_OVERHEAD] = {"prism_gateway_overhead_seconds", "Request duration minus upstream time: the gateway's own cost.",
                    NULL, 0, -1, fast_bounds, NFAST},
    [F_TOKENS] = {"prism_tokens_total", "Tokens reported by upstreams, by model and direction.", l_tokens, 2, 0, NULL,
                  0},
    [F_ERRORS] = {"prism_upstream_errors_total", "Failed upstream calls, by provider and kind.", l_errors, 2, -1, NULL,
                  0},
    [F_RETRIES] = {"prism_upstream_retries_total", "Upstream call retries.", l_provider, 1, -1, NULL, 0},
    [F_FALLBACKS] = {"prism_fallbacks_total", "Requests answered by a fallback model.", l_model, 1, -1, NULL, 0},
    [F_STEPS] = {"prism_plugin_step_duration_seconds", "Duration of one chain step, by plugin.", l_plugin, 1, -1,
                 fast_bounds, NFAST},
};

/* ---- label values ---- */

/* A normalized label value: at most PRISM_METRICS_LABEL_MAX bytes of valid
 * UTF-8, not NUL-terminated, with its hash. */
typedef struct label {
    const char *s;
    size_t len;
    uint64_t h;
} label;

/* Spreads every input bit over the low bits, which pick the table slot. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    return h;
}

/* The last 0-7 bytes as one word, read in at most two overlapping loads:
 * a byte-by-byte copy would stall the load that follows it. The length is
 * hashed separately, so the overlap is no ambiguity. */
static uint64_t tail_word(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        return lo | (uint64_t)hi << 32;
    }
    if (len > 0)
        return p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
    return 0;
}

/* Eight bytes and one multiply per step, one full mix at the end: label
 * values are short, but several are hashed on every request. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0x243f6a8885a308d3ULL ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
        s += 8;
        len -= 8;
    }
    return mix(h ^ tail_word(s, len));
}

static label label_of(const char *s, size_t len)
{
    return (label){s, len, hash_bytes(s, len)};
}

/* Length of the valid UTF-8 character at `p` (at most `avail` bytes), 0 when
 * invalid: overlong forms, surrogates and code points past U+10FFFF too. */
static size_t utf8_char(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (c < 0xc2 || c > 0xf4 || avail < n)
        return 0;
    unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* The slow path: non-ASCII input, copied into `buf` valid and truncated. */
static size_t sanitize(const char *in, char *buf)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t out = 0;
    while (*p != '\0' && out < PRISM_METRICS_LABEL_MAX) {
        if (*p < 0x80) {
            buf[out++] = (char)*p++;
            continue;
        }
        size_t n = utf8_char(p, strnlen((const char *)p, 4));
        if (n == 0) {
            buf[out++] = '?';
            p++;
            continue;
        }
        if (out + n > PRISM_METRICS_LABEL_MAX)
            break; /* never cut a character in half */
        memcpy(buf + out, p, n);
        out += n;
        p += n;
    }
    return out;
}

/* Normalizes `in` for use as a label value. ASCII (the common case) is used
 * in place, truncated by length alone; anything else is copied into `buf`,
 * which must hold PRISM_METRICS_LABEL_MAX bytes. */
static label normalize(const char *in, char *buf)
{
    size_t i = 0;
    while (i < PRISM_METRICS_LABEL_MAX && in[i] != '\0' && (unsigned char)in[i] < 0x80)
        i++;
    if (i == PRISM_METRICS_LABEL_MAX || in[i] == '\0')
        return label_of(in, i);
    return label_of(buf, sanitize(in, buf));
}

/* Unknown kinds are "other": the value set stays the documented one. */
static label error_kind(const char *kind)
{
    static const char *const kinds[] = {"dns", "connect", "tls", "timeout", "reset"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return label_of(kinds[i], strlen(kinds[i]));
    return label_of("other", 5);
}

/* snprintf("%d") costs more than the rest of a lookup. */
static label status_label(int status, char buf[12])
{
    char *p = buf + 12;
    unsigned u = status < 0 ? 0u - (unsigned)status : (unsigned)status;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (status < 0)
        *--p = '-';
    return label_of(p, (size_t)(buf + 12 - p));
}

static uint64_t combine(const label *v, unsigned n)
{
    uint64_t h = 0x13198a2e03707344ULL;
    for (unsigned i = 0; i < n; i++)
        h = mix(h ^ v[i].h) + i;
    return h;
}

/* ---- series and families ---- */

typedef struct series {
    uint64_t hash;
    uint64_t value; /* counters */
    double sum;     /* histograms */
    uint32_t key_len;
    bool touched;       /* the preallocated "other" series renders only once used */
    uint64_t buckets[]; /* histograms: per bucket (not cumulative), +Inf last; then the key */
} series;

typedef struct family {
    const family_desc *d;
    series **slots; /* open addressing, power-of-two size, at most half full */
    uint32_t nslots, n;
    series *other; /* every label "other"; outside the table */
} family;

/* The series one request shape landed in (see "request shapes" below). */
#define SHAPE_SLOTS   16
#define SHAPE_KEY_MAX 240
#define SHAPE_STEPS   8

/* Which series of a shape_series is which. */
enum {
    S_REQUESTS,
    S_DURATION,
    S_OVERHEAD,
    S_UPSTREAM,
    S_TTFT,
    S_PROMPT,
    S_COMPLETION,
    S_STEP0,
    S_COUNT = S_STEP0 + SHAPE_STEPS
};

typedef struct shape_series {
    series *s[S_COUNT];
} shape_series;

typedef struct shape {
    uint32_t key_len; /* 0: an empty slot */
    char key[SHAPE_KEY_MAX];
    shape_series got;
} shape;

struct prism_metrics {
    pthread_mutex_t lock;
    atomic_llong inflight, streams, upstream_conns;
    label none, prompt, completion; /* hashed once, not per request */
    family fam[F_COUNT];
    shape shapes[SHAPE_SLOTS];
};

static char *series_key(series *s, const family_desc *d)
{
    return (char *)(s->buckets + (d->bounds != NULL ? d->nbounds + 1 : 0));
}

static series *series_new(const family_desc *d, const label *v, uint64_t hash)
{
    size_t key_len = 0;
    for (unsigned i = 0; i < d->nlabels; i++)
        key_len += v[i].len + 1;
    size_t nb = d->bounds != NULL ? d->nbounds + 1 : 0;
    series *s = calloc(1, sizeof *s + nb * sizeof s->buckets[0] + key_len);
    if (s == NULL)
        return NULL;
    s->hash = hash;
    s->key_len = (uint32_t)key_len;
    char *k = series_key(s, d);
    for (unsigned i = 0; i < d->nlabels; i++) {
        memcpy(k, v[i].s, v[i].len);
        k[v[i].len] = '\0';
        k += v[i].len + 1;
    }
    return s;
}

static bool key_equal(series *s, const family_desc *d, const label *v)
{
    const char *k = series_key(s, d);
    const char *end = k + s->key_len;
    for (unsigned i = 0; i < d->nlabels; i++) {
        if ((size_t)(end - k) < v[i].len + 1 || memcmp(k, v[i].s, v[i].len) != 0 || k[v[i].len] != '\0')
            return false;
        k += v[i].len + 1;
    }
    return k == end;
}

/* Splits a series' key back into label values, pointing into the key. */
static void key_labels(series *s, const family_desc *d, label *v)
{
    const char *k = series_key(s, d);
    for (unsigned i = 0; i < d->nlabels; i++) {
        size_t len = strlen(k);
        v[i] = label_of(k, len);
        k += len + 1;
    }
}

static series *table_find(const family *f, const label *v, uint64_t hash)
{
    if (f->nslots == 0)
        return NULL;
    uint32_t mask = f->nslots - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        series *s = f->slots[i];
        if (s == NULL)
            return NULL;
        if (s->hash == hash && key_equal(s, f->d, v))
            return s;
    }
}

static void table_put(series **slots, uint32_t nslots, series *s)
{
    uint32_t i = (uint32_t)s->hash & (nslots - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (nslots - 1);
    slots[i] = s;
}

static bool table_grow(family *f)
{
    uint32_t nslots = f->nslots != 0 ? f->nslots * 2 : FIRST_SLOTS;
    series **slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; i < f->nslots; i++)
        if (f->slots[i] != NULL)
            table_put(slots, nslots, f->slots[i]);
    free(f->slots);
    f->slots = slots;
    f->nslots = nslots;
    return true;
}

/* Adds a new series; NULL when out of memory. */
static series *table_insert(family *f, const label *v, uint64_t hash)
{
    if ((f->n + 1) * 2 > f->nslots && !table_grow(f))
        return NULL;
    series *s = series_new(f->d, v, hash);
    if (s == NULL)
        return NULL;
    table_put(f->slots, f->nslots, s);
    f->n++;
    return s;
}

static series *find_or_insert(family *f, const label *v, uint64_t hash, uint32_t limit)
{
    series *s = table_find(f, v, hash);
    if (s == NULL && f->n < limit)
        s = table_insert(f, v, hash);
    return s;
}

/* The series a record lands in: its own, or an "other" one past the cap. */
static series *series_for(family *f, const label *v)
{
    series *s = find_or_insert(f, v, combine(v, f->d->nlabels), PRISM_METRICS_MAX_SERIES);
    if (s != NULL)
        return s;
    int k = f->d->overflow_label;
    if (k >= 0 && f->d->nlabels > 1) {
        label alt[MAX_LABELS];
        memcpy(alt, v, f->d->nlabels * sizeof *v);
        alt[k] = label_of("other", 5);
        s = find_or_insert(f, alt, combine(alt, f->d->nlabels), PRISM_METRICS_MAX_SERIES + OVERFLOW_RESERVE);
        if (s != NULL)
            return s;
    }
    return f->other;
}

static bool family_init(family *f, const family_desc *d)
{
    label v[MAX_LABELS];
    for (unsigned i = 0; i < d->nlabels; i++)
        v[i] = label_of("other", 5);
    f->d = d;
    f->other = series_new(d, v, combine(v, d->nlabels));
    /* A family without labels has a single series: always shown, zeros included. */
    return f->other != NULL && (d->nlabels > 0 || table_insert(f, v, combine(v, 0)) != NULL);
}

static void family_free(family *f)
{
    for (uint32_t i = 0; i < f->nslots; i++)
        free(f->slots[i]);
    free(f->slots);
    free(f->other);
}

/* ---- recording ---- */

static void add_to(series *s, uint64_t n)
{
    s->value += n;
    s->touched = true;
}

static void observe_in(series *s, const family_desc *d, double x)
{
    unsigned b = 0;
    while (b < d->nbounds && x > d->bounds[b])
        b++;
    s->buckets[b]++;
    s->sum += x;
    s->touched = true;
}

static series *count(family *f, const label *v, uint64_t n)
{
    series *s = series_for(f, v);
    add_to(s, n);
    return s;
}

static series *observe(family *f, const label *v, double x)
{
    series *s = series_for(f, v);
    observe_in(s, f->d, x);
    return s;
}

/* Clock skew can make a computed duration slightly negative; NaN would
 * poison _sum forever. Both count as zero. */
static double clamp(double x)
{
    return x >= 0 ? x : 0;
}

/* NULL becomes "none". */
static label label_for(const prism_metrics *m, const char *in, char *buf)
{
    return in != NULL ? normalize(in, buf) : m->none;
}

static bool has_steps(const prism_request_record *r)
{
    return r->step_names != NULL && r->step_s != NULL;
}

static void record_steps(prism_metrics *m, const prism_request_record *r, shape_series *got)
{
    if (!has_steps(r))
        return;
    char buf[PRISM_METRICS_LABEL_MAX];
    for (size_t i = 0; i < r->step_count; i++) {
        label plugin = label_for(m, r->step_names[i], buf);
        series *s = observe(&m->fam[F_STEPS], &plugin, clamp(r->step_s[i]));
        if (i < SHAPE_STEPS)
            got->s[S_STEP0 + i] = s;
    }
}

static void record_upstream(prism_metrics *m, const prism_request_record *r, const label *provider, shape_series *got)
{
    if (r->upstream_s >= 0)
        got->s[S_UPSTREAM] = observe(&m->fam[F_UPSTREAM], provider, r->upstream_s);
    if (r->ttft_s >= 0)
        got->s[S_TTFT] = observe(&m->fam[F_TTFT], provider, r->ttft_s);
    if (r->upstream_error != NULL)
        count(&m->fam[F_ERRORS], (label[]){*provider, error_kind(r->upstream_error)}, 1);
    if (r->retries > 0)
        count(&m->fam[F_RETRIES], provider, r->retries);
}

static void record_model(prism_metrics *m, const prism_request_record *r, const label *model, shape_series *got)
{
    if (r->prompt_tokens >= 0)
        got->s[S_PROMPT] = count(&m->fam[F_TOKENS], (label[]){*model, m->prompt}, (uint64_t)r->prompt_tokens);
    if (r->completion_tokens >= 0)
        got->s[S_COMPLETION] =
            count(&m->fam[F_TOKENS], (label[]){*model, m->completion}, (uint64_t)r->completion_tokens);
    if (r->fallback)
        count(&m->fam[F_FALLBACKS], model, 1);
}

/* Every family, each label value normalized and each series looked up;
 * `got` receives the series it used. */
static void record_slow(prism_metrics *m, const prism_request_record *r, shape_series *got)
{
    char rbuf[PRISM_METRICS_LABEL_MAX], mbuf[PRISM_METRICS_LABEL_MAX], pbuf[PRISM_METRICS_LABEL_MAX], sbuf[12];
    label route = normalize(r->route != NULL ? r->route : "", rbuf);
    label model = label_for(m, r->model, mbuf);
    label provider = label_for(m, r->provider, pbuf);
    label status = status_label(r->status, sbuf);
    got->s[S_REQUESTS] = count(&m->fam[F_REQUESTS], (label[]){route, model, provider, status}, 1);
    got->s[S_DURATION] = observe(&m->fam[F_DURATION], &route, clamp(r->duration_s));
    got->s[S_OVERHEAD] = observe(&m->fam[F_OVERHEAD], NULL, clamp(r->overhead_s));
    record_upstream(m, r, &provider, got);
    record_model(m, r, &model, got);
    record_steps(m, r, got);
}

/* ---- request shapes ----
 * Most requests repeat a few shapes: the same route, model, provider,
 * status and chain. Normalizing their label values, hashing them and
 * probing each family was most of what recording a request cost, so each
 * worker keeps, for the last shapes it saw, the series they landed in, keyed
 * by the raw values: a repeated shape goes straight to its series. A series
 * lives as long as the metrics and the table only grows, so a key always
 * lands where it landed before (its own series, or an "other" one). A slot
 * learns a family's series only from the full path; until it has every one
 * a request needs, and for the rare families (errors, retries, fallbacks),
 * the request takes the full path. */

typedef struct shape_key {
    char buf[SHAPE_KEY_MAX];
    size_t len;
} shape_key;

/* NULL and "" must differ: a flag byte, then the text and its NUL. */
static bool key_put(shape_key *k, const char *s)
{
    size_t n = s != NULL ? strlen(s) + 1 : 0;
    if (1 + n > sizeof k->buf - k->len)
        return false;
    k->buf[k->len++] = s != NULL ? 1 : 0;
    if (n > 0)
        memcpy(k->buf + k->len, s, n);
    k->len += n;
    return true;
}

/* False when the shape is too long to key (it is recorded the full way). */
static bool shape_key_of(const prism_request_record *r, shape_key *k)
{
    size_t steps = has_steps(r) ? r->step_count : 0;
    k->len = 0;
    if (steps > SHAPE_STEPS)
        return false;
    memcpy(k->buf, &r->status, sizeof r->status);
    k->buf[sizeof r->status] = (char)steps;
    k->len = sizeof r->status + 1;
    if (!key_put(k, r->route) || !key_put(k, r->model) || !key_put(k, r->provider))
        return false;
    for (size_t i = 0; i < steps; i++)
        if (!key_put(k, r->step_names[i]))
            return false;
    return true;
}

static shape *shape_slot(prism_metrics *m, const shape_key *k)
{
    return &m->shapes[hash_bytes(k->buf, k->len) & (SHAPE_SLOTS - 1)];
}

/* Records r through its shape's series; false, having changed nothing, when
 * the slot lacks one r needs. */
static bool record_fast(const shape *sh, const prism_request_record *r)
{
    series *const *g = sh->got.s;
    size_t steps = has_steps(r) ? r->step_count : 0;
    if (r->upstream_error != NULL || r->retries > 0 || r->fallback || g[S_REQUESTS] == NULL ||
        (r->upstream_s >= 0 && g[S_UPSTREAM] == NULL) || (r->ttft_s >= 0 && g[S_TTFT] == NULL) ||
        (r->prompt_tokens >= 0 && g[S_PROMPT] == NULL) || (r->completion_tokens >= 0 && g[S_COMPLETION] == NULL))
        return false;
    for (size_t i = 0; i < steps; i++)
        if (g[S_STEP0 + i] == NULL)
            return false;
    add_to(g[S_REQUESTS], 1);
    observe_in(g[S_DURATION], &families[F_DURATION], clamp(r->duration_s));
    observe_in(g[S_OVERHEAD], &families[F_OVERHEAD], clamp(r->overhead_s));
    if (r->upstream_s >= 0)
        observe_in(g[S_UPSTREAM], &families[F_UPSTREAM], r->upstream_s);
    if (r->ttft_s >= 0)
        observe_in(g[S_TTFT], &families[F_TTFT], r->ttft_s);
    if (r->prompt_tokens >= 0)
        add_to(g[S_PROMPT], (uint64_t)r->prompt_tokens);
    if (r->completion_tokens >= 0)
        add_to(g[S_COMPLETION], (uint64_t)r->completion_tokens);
    for (size_t i = 0; i < steps; i++)
        observe_in(g[S_STEP0 + i], &families[F_STEPS], clamp(r->step_s[i]));
    return true;
}

/* What the full path used joins what the slot knew of the same shape; a
 * slot holding another shape is taken over. */
static void shape_learn(shape *sh, const shape_key *k, const shape_series *got)
{
    if (sh->key_len != k->len || memcmp(sh->key, k->buf, k->len) != 0) {
        memset(&sh->got, 0, sizeof sh->got);
        memcpy(sh->key, k->buf, k->len);
        sh->key_len = (uint32_t)k->len;
    }
    for (size_t i = 0; i < S_COUNT; i++)
        if (got->s[i] != NULL)
            sh->got.s[i] = got->s[i];
}

void prism_metrics_record(prism_metrics *m, const prism_request_record *r)
{
    if (m == NULL || r == NULL)
        return;
    shape_key k;
    bool keyed = shape_key_of(r, &k);
    pthread_mutex_lock(&m->lock);
    shape *sh = keyed ? shape_slot(m, &k) : NULL;
    bool same = sh != NULL && sh->key_len == k.len && memcmp(sh->key, k.buf, k.len) == 0;
    if (!same || !record_fast(sh, r)) {
        shape_series got = {0};
        record_slow(m, r, &got);
        if (sh != NULL)
            shape_learn(sh, &k, &got);
    }
    pthread_mutex_unlock(&m->lock);
}

void prism_metrics_inflight(prism_metrics *m, int delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->inflight, delta, memory_order_relaxed);
}

void prism_metrics_streams(prism_metrics *m, int delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->streams, delta, memory_order_relaxed);
}

void prism_metrics_upstream_conns(prism_metrics *m, int delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->upstream_conns, delta, memory_order_relaxed);
}

/* ---- lifetime ---- */

prism_metrics *prism_metrics_new(void)
{
    prism_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    atomic_init(&m->inflight, 0);
    atomic_init(&m->streams, 0);
    atomic_init(&m->upstream_conns, 0);
    m->none = label_of("none", 4);
    m->prompt = label_of("prompt", 6);
    m->completion = label_of("completion", 10);
    for (int i = 0; i < F_COUNT; i++) {
        if (!family_init(&m->fam[i], &families[i])) {
            prism_metrics_free(m);
            return NULL;
        }
    }
    return m;
}

void prism_metrics_free(prism_metrics *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < F_COUNT; i++)
        family_free(&m->fam[i]);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- rendering ---- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap != 0 ? t->cap : 4096;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *buf = realloc(t->buf, cap);
        if (buf == NULL) {
            t->failed = true;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_u64(text *t, uint64_t v)
{
    char b[24];
    put(t, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, v));
}

/* Shortest of %.15g / %.17g that reads back exactly: "0.25", not
 * "0.25000000000000000". */
static const char *format_double(char b[32], double v)
{
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    if (isnan(v))
        return "NaN";
    snprintf(b, 32, "%.15g", v);
    if (strtod(b, NULL) != v)
        snprintf(b, 32, "%.17g", v);
    /* The format wants '.' whatever LC_NUMERIC the process runs under. */
    for (char *c = b; *c != '\0'; c++)
        if (*c == ',')
            *c = '.';
    return b;
}

static void put_double(text *t, double v)
{
    char b[32];
    puts_(t, format_double(b, v));
}

/* Label value escaping of the text format: backslash, quote, newline. */
static void put_escaped(text *t, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
        if (esc == NULL)
            continue;
        put(t, s + run, i - run);
        put(t, esc, 2);
        run = i + 1;
    }
    put(t, s + run, n - run);
}

/* `{a="x",b="y"}`, with `le="..."` last for buckets; nothing when empty. */
static void put_labels(text *t, const family_desc *d, const label *v, const char *le)
{
    if (d->nlabels == 0 && le == NULL)
        return;
    put(t, "{", 1);
    for (unsigned i = 0; i < d->nlabels; i++) {
        if (i > 0)
            put(t, ",", 1);
        puts_(t, d->labels[i]);
        put(t, "=\"", 2);
        put_escaped(t, v[i].s, v[i].len);
        put(t, "\"", 1);
    }
    if (le != NULL) {
        puts_(t, d->nlabels > 0 ? ",le=\"" : "le=\"");
        puts_(t, le);
        put(t, "\"", 1);
    }
    put(t, "}", 1);
}

/* One sample line up to its value: `name_suffix{labels} `. */
static void put_sample(text *t, const family_desc *d, const char *suffix, const label *v, const char *le)
{
    puts_(t, d->name);
    puts_(t, suffix);
    put_labels(t, d, v, le);
    put(t, " ", 1);
}

static void put_header(text *t, const char *name, const char *help, const char *type)
{
    puts_(t, "# HELP ");
    puts_(t, name);
    put(t, " ", 1);
    puts_(t, help);
    puts_(t, "\n# TYPE ");
    puts_(t, name);
    put(t, " ", 1);
    puts_(t, type);
    put(t, "\n", 1);
}

static void put_histogram(text *t, const family_desc *d, series *s, const label *v)
{
    uint64_t cum = 0;
    for (unsigned b = 0; b <= d->nbounds; b++) {
        char buf[32];
        cum += s->buckets[b];
        put_sample(t, d, "_bucket", v, b < d->nbounds ? format_double(buf, d->bounds[b]) : "+Inf");
        put_u64(t, cum);
        put(t, "\n", 1);
    }
    put_sample(t, d, "_sum", v, NULL);
    put_double(t, s->sum);
    put(t, "\n", 1);
    put_sample(t, d, "_count", v, NULL);
    put_u64(t, cum);
    put(t, "\n", 1);
}

static void put_series(text *t, const family_desc *d, series *s)
{
    label v[MAX_LABELS];
    key_labels(s, d, v);
    if (d->bounds != NULL) {
        put_histogram(t, d, s, v);
        return;
    }
    put_sample(t, d, "", v, NULL);
    put_u64(t, s->value);
    put(t, "\n", 1);
}

/* ---- merging workers ---- */

/* Adds one worker's series into the scratch family, which has no cap. */
static bool merge_series(family *into, series *s)
{
    const family_desc *d = into->d;
    label v[MAX_LABELS];
    key_labels(s, d, v);
    series *m = find_or_insert(into, v, s->hash, UINT32_MAX);
    if (m == NULL)
        return false;
    m->value += s->value;
    m->sum += s->sum;
    for (unsigned b = 0; d->bounds != NULL && b <= d->nbounds; b++)
        m->buckets[b] += s->buckets[b];
    return true;
}

static bool merge_family(family *into, const family *from)
{
    for (uint32_t i = 0; i < from->nslots; i++)
        if (from->slots[i] != NULL && !merge_series(into, from->slots[i]))
            return false;
    return !from->other->touched || merge_series(into, from->other);
}

/* Holds the worker's lock only while copying its numbers out. */
static bool merge_worker(family *into, prism_metrics *m)
{
    bool ok = true;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < F_COUNT && ok; i++)
        ok = merge_family(&into[i], &m->fam[i]);
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* ---- output ---- */

typedef struct entry {
    const char *key;
    uint32_t len;
    series *s;
} entry;

/* Keys compare as byte strings: the NUL separators sort by the first label,
 * then the next, which gives a stable, readable order. */
static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static bool put_family(text *t, family *f)
{
    const family_desc *d = f->d;
    put_header(t, d->name, d->help, d->bounds != NULL ? "histogram" : "counter");
    if (f->n == 0)
        return true;
    entry *e = malloc(f->n * sizeof *e);
    if (e == NULL)
        return false;
    size_t n = 0;
    for (uint32_t i = 0; i < f->nslots; i++)
        if (f->slots[i] != NULL)
            e[n++] = (entry){series_key(f->slots[i], d), f->slots[i]->key_len, f->slots[i]};
    qsort(e, n, sizeof *e, cmp_entry);
    for (size_t i = 0; i < n; i++)
        put_series(t, d, e[i].s);
    free(e);
    return true;
}

static void put_single(text *t, const char *name, const char *help, const char *type, long long v)
{
    char b[24];
    put_header(t, name, help, type);
    puts_(t, name);
    put(t, " ", 1);
    put(t, b, (size_t)snprintf(b, sizeof b, "%lld", v));
    put(t, "\n", 1);
}

static void put_gauge(text *t, const char *name, const char *help, long long v)
{
    put_single(t, name, help, "gauge", v);
}

static bool render_into(text *t, family *sum, prism_metrics *const *all, size_t n, const prism_metrics_process *p)
{
    long long inflight = 0, streams = 0, conns = 0;
    for (size_t w = 0; w < n; w++) {
        if (all[w] == NULL)
            continue;
        if (!merge_worker(sum, all[w]))
            return false;
        inflight += atomic_load_explicit(&all[w]->inflight, memory_order_relaxed);
        streams += atomic_load_explicit(&all[w]->streams, memory_order_relaxed);
        conns += atomic_load_explicit(&all[w]->upstream_conns, memory_order_relaxed);
    }
    for (int i = 0; i < F_COUNT; i++)
        if (!put_family(t, &sum[i]))
            return false;
    put_gauge(t, "prism_requests_in_flight", "Requests being handled.", inflight);
    put_gauge(t, "prism_streams_open", "Streaming responses open.", streams);
    put_gauge(t, "prism_upstream_connections_open",
              "Connections to plain http:// upstreams held by the built-in HTTP/1.1 client, idle ones included.",
              conns);
    /* Always present, zero included, so an alert can watch it from the start. */
    if (p != NULL)
        put_single(t, "prism_log_lines_dropped_total",
                   "Log lines dropped because the log (stderr or server.log.file) was not taking writes fast enough.",
                   "counter", (long long)p->log_lines_dropped);
    return !t->failed;
}

char *prism_metrics_render(prism_metrics *const *all, size_t n, const prism_metrics_process *p)
{
    family sum[F_COUNT] = {0};
    text t = {0};
    for (int i = 0; i < F_COUNT; i++)
        sum[i].d = &families[i];
    bool ok = render_into(&t, sum, all, n, p);
    for (int i = 0; i < F_COUNT; i++)
        family_free(&sum[i]);
    if (!ok) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
