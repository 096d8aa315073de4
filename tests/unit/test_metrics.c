/*
 * test_metrics.c - recording, summing over workers, Prometheus text output.
 *
 * Every test renders and parses the text back with a small strict parser of
 * the exposition format, so the assertions are about what a scraper reads,
 * not about the module's internals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define CHAT "/v1/chat/completions"

/* ---- a strict parser of the text format ---- */

#define MAX_SAMPLE_LABELS 6

typedef struct sample {
    char name[96];
    int nlabels;
    char key[MAX_SAMPLE_LABELS][32];
    char val[MAX_SAMPLE_LABELS][256];
    double value;
} sample;

typedef struct family_line {
    char name[96];
    char type[16];
    int helps, types;
} family_line;

typedef struct parsed {
    sample *s;
    size_t n, cap;
    family_line fam[32];
    size_t nfam;
} parsed;

static family_line *family_named(parsed *p, const char *name, size_t len)
{
    for (size_t i = 0; i < p->nfam; i++)
        if (strlen(p->fam[i].name) == len && memcmp(p->fam[i].name, name, len) == 0)
            return &p->fam[i];
    assert_true(p->nfam < 32);
    family_line *f = &p->fam[p->nfam++];
    memset(f, 0, sizeof *f);
    assert_true(len < sizeof f->name);
    memcpy(f->name, name, len);
    return f;
}

static void parse_comment(parsed *p, const char *line, const char *end)
{
    bool help = strncmp(line, "# HELP ", 7) == 0;
    assert_true(help || strncmp(line, "# TYPE ", 7) == 0);
    const char *name = line + 7;
    const char *sp = memchr(name, ' ', (size_t)(end - name));
    assert_non_null(sp);
    family_line *f = family_named(p, name, (size_t)(sp - name));
    if (help) {
        f->helps++;
        assert_true(end - sp > 1); /* some help text */
        return;
    }
    f->types++;
    assert_true((size_t)(end - sp - 1) < sizeof f->type);
    memcpy(f->type, sp + 1, (size_t)(end - sp - 1));
}

/* Reads `"value"` with the format's escapes; returns past the closing quote. */
static const char *parse_value(const char *c, char *out, size_t outlen)
{
    size_t n = 0;
    assert_int_equal(*c, '"');
    for (c++; *c != '"'; c++) {
        assert_true(*c != '\n' && *c != '\0');
        char ch = *c;
        if (ch == '\\') {
            c++;
            assert_true(*c == '\\' || *c == '"' || *c == 'n');
            ch = *c == 'n' ? '\n' : *c;
        }
        assert_true(n + 1 < outlen);
        out[n++] = ch;
    }
    out[n] = '\0';
    return c + 1;
}

static const char *parse_labels(sample *s, const char *c)
{
    assert_int_equal(*c, '{');
    c++;
    while (*c != '}') {
        assert_true(s->nlabels < MAX_SAMPLE_LABELS);
        const char *eq = strchr(c, '=');
        assert_non_null(eq);
        assert_true((size_t)(eq - c) < sizeof s->key[0]);
        memcpy(s->key[s->nlabels], c, (size_t)(eq - c));
        s->key[s->nlabels][eq - c] = '\0';
        c = parse_value(eq + 1, s->val[s->nlabels], sizeof s->val[0]);
        s->nlabels++;
        if (*c == ',')
            c++;
        else
            assert_int_equal(*c, '}');
    }
    return c + 1;
}

/* A sample belongs to the family of the last TYPE line: families are not
 * interleaved. */
static void check_family(const parsed *p, const char *name)
{
    assert_true(p->nfam > 0);
    const family_line *f = &p->fam[p->nfam - 1];
    size_t len = strlen(f->name);
    assert_int_equal(strncmp(name, f->name, len), 0);
    const char *suffix = name + len;
    if (strcmp(f->type, "histogram") == 0)
        assert_true(strcmp(suffix, "_bucket") == 0 || strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0);
    else
        assert_string_equal(suffix, "");
}

static void parse_sample(parsed *p, const char *line, const char *end)
{
    if (p->n == p->cap) {
        p->cap = p->cap != 0 ? p->cap * 2 : 256;
        p->s = realloc(p->s, p->cap * sizeof *p->s);
        assert_non_null(p->s);
    }
    sample *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    size_t nlen = strcspn(line, "{ ");
    assert_true(nlen > 0 && nlen < sizeof s->name);
    memcpy(s->name, line, nlen);
    check_family(p, s->name);
    const char *c = line + nlen;
    if (*c == '{')
        c = parse_labels(s, c);
    assert_int_equal(*c, ' ');
    char *vend;
    s->value = strtod(c + 1, &vend);
    assert_ptr_equal(vend, end);
}

static parsed parse(const char *text)
{
    parsed p = {0};
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        assert_true(end > line); /* no empty lines */
        if (line[0] == '#')
            parse_comment(&p, line, end);
        else
            parse_sample(&p, line, end);
        line = end + 1;
    }
    return p;
}

static parsed render_with(prism_metrics *const *all, size_t n, const prism_metrics_process *proc)
{
    char *text = prism_metrics_render(all, n, proc);
    parsed p = parse(text);
    free(text);
    return p;
}

static parsed render(prism_metrics *const *all, size_t n)
{
    static const prism_metrics_process none = {0};
    char *text = prism_metrics_render(all, n, &none);
    parsed p = parse(text);
    free(text);
    return p;
}

static bool has_label(const sample *s, const char *key, const char *val)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->key[i], key) == 0)
            return strcmp(s->val[i], val) == 0;
    return false;
}

/* The value of the sample with exactly these labels (`nlabels` key/value
 * pairs follow), or -1 when there is none. */
static double get(const parsed *p, const char *name, int nlabels, ...)
{
    for (size_t i = 0; i < p->n; i++) {
        const sample *s = &p->s[i];
        if (strcmp(s->name, name) != 0 || s->nlabels != nlabels)
            continue;
        va_list ap;
        va_start(ap, nlabels);
        bool match = true;
        for (int j = 0; j < nlabels; j++) {
            const char *k = va_arg(ap, const char *);
            const char *v = va_arg(ap, const char *);
            match = match && has_label(s, k, v);
        }
        va_end(ap);
        if (match)
            return s->value;
    }
    return -1;
}

/* Sum over every sample named `name`. */
static double total(const parsed *p, const char *name)
{
    double sum = 0;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->s[i].name, name) == 0)
            sum += p->s[i].value;
    return sum;
}

static size_t count_samples(const parsed *p, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += strcmp(p->s[i].name, name) == 0;
    return n;
}

static void parsed_free(parsed *p)
{
    free(p->s);
}

/* ---- fixtures ---- */

static const char *const steps[] = {"auth", "model_router"};
static const double step_s[] = {0.000004, 0.00002};

/* A plain, successful, non-streamed chat request. */
static prism_request_record chat(const char *model, double duration)
{
    return (prism_request_record){
        .route = CHAT,
        .model = model,
        .provider = "openai",
        .status = 200,
        .duration_s = duration,
        .upstream_s = duration * 0.9,
        .ttft_s = -1,
        .overhead_s = 0.00003,
        .prompt_tokens = 10,
        .completion_tokens = 20,
        .step_count = 2,
        .step_names = steps,
        .step_s = step_s,
    };
}

typedef struct two {
    prism_metrics *m[2];
} two;

static int setup(void **state)
{
    two *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    t->m[0] = prism_metrics_new();
    t->m[1] = prism_metrics_new();
    *state = t;
    return t->m[0] != NULL && t->m[1] != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    two *t = *state;
    prism_metrics_free(t->m[0]);
    prism_metrics_free(t->m[1]);
    free(t);
    return 0;
}

/* Three chats over two workers, a 404 without model, a streamed fallback
 * that timed out once and retried. */
static void record_mix(two *t)
{
    prism_request_record r = chat("gpt-4o", 0.2);
    prism_metrics_record(t->m[0], &r);
    r = chat("gpt-4o", 0.004);
    prism_metrics_record(t->m[0], &r);
    r = chat("gpt-4o", 3.0);
    prism_metrics_record(t->m[1], &r);

    r = (prism_request_record){.route = "",
                               .status = 404,
                               .duration_s = 0.0001,
                               .upstream_s = -1,
                               .ttft_s = -1,
                               .overhead_s = 0.0001,
                               .prompt_tokens = -1,
                               .completion_tokens = -1};
    prism_metrics_record(t->m[1], &r);

    r = chat("claude", 1.5);
    r.provider = "anthropic";
    r.ttft_s = 0.3;
    r.upstream_error = "timeout";
    r.retries = 2;
    r.fallback = 1;
    r.prompt_tokens = -1;
    prism_metrics_record(t->m[1], &r);
    r.upstream_error = "something-new";
    r.retries = 0;
    r.fallback = 0;
    r.ttft_s = -1;
    prism_metrics_record(t->m[0], &r);
}

/* ---- tests ---- */

static void test_counters_sum_over_workers(void **state)
{
    two *t = *state;
    record_mix(t);
    parsed p = render(t->m, 2);
    const char *n = "prism_requests_total";
    assert_true(get(&p, n, 4, "route", CHAT, "model", "gpt-4o", "provider", "openai", "status", "200") == 3);
    assert_true(get(&p, n, 4, "route", "", "model", "none", "provider", "none", "status", "404") == 1);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "claude", "provider", "anthropic", "status", "200") == 2);
    assert_true(total(&p, n) == 6);

    n = "prism_tokens_total";
    assert_true(get(&p, n, 2, "model", "gpt-4o", "direction", "prompt") == 30);
    assert_true(get(&p, n, 2, "model", "gpt-4o", "direction", "completion") == 60);
    assert_true(get(&p, n, 2, "model", "claude", "direction", "prompt") == -1); /* unknown: not counted */
    assert_true(get(&p, n, 2, "model", "claude", "direction", "completion") == 40);
    assert_true(get(&p, n, 2, "model", "none", "direction", "prompt") == -1);

    n = "prism_upstream_errors_total";
    assert_true(get(&p, n, 2, "provider", "anthropic", "kind", "timeout") == 1);
    assert_true(get(&p, n, 2, "provider", "anthropic", "kind", "other") == 1);
    assert_int_equal(count_samples(&p, n), 2);
    assert_true(get(&p, "prism_upstream_retries_total", 1, "provider", "anthropic") == 2);
    assert_int_equal(count_samples(&p, "prism_upstream_retries_total"), 1);
    assert_true(get(&p, "prism_fallbacks_total", 1, "model", "claude") == 1);
    assert_int_equal(count_samples(&p, "prism_fallbacks_total"), 1);
    parsed_free(&p);
}

static void test_histograms(void **state)
{
    two *t = *state;
    record_mix(t);
    parsed p = render(t->m, 2);
    /* chat durations: 0.004, 0.2, 3.0 (gpt-4o), 1.5 twice (claude) */
    const char *b = "prism_request_duration_seconds_bucket";
    assert_true(get(&p, b, 2, "route", CHAT, "le", "0.005") == 1);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "0.1") == 1);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "0.25") == 2);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "1") == 2);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "2.5") == 4);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "5") == 5);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "60") == 5);
    assert_true(get(&p, b, 2, "route", CHAT, "le", "+Inf") == 5);
    assert_true(get(&p, "prism_request_duration_seconds_count", 1, "route", CHAT) == 5);
    assert_float_equal(get(&p, "prism_request_duration_seconds_sum", 1, "route", CHAT), 6.204, 1e-9);
    assert_true(get(&p, "prism_request_duration_seconds_count", 1, "route", "") == 1);
    assert_int_equal(count_samples(&p, "prism_request_duration_seconds_bucket"), 2 * 14);

    /* Streams only: one observation, 0.3 s. */
    b = "prism_time_to_first_token_seconds_bucket";
    assert_true(get(&p, b, 2, "provider", "anthropic", "le", "0.25") == 0);
    assert_true(get(&p, b, 2, "provider", "anthropic", "le", "0.5") == 1);
    assert_true(get(&p, "prism_time_to_first_token_seconds_count", 1, "provider", "anthropic") == 1);
    assert_int_equal(count_samples(&p, "prism_time_to_first_token_seconds_count"), 1);
    /* The 404 had no upstream call. */
    assert_true(get(&p, "prism_upstream_duration_seconds_count", 1, "provider", "none") == -1);
    assert_true(get(&p, "prism_upstream_duration_seconds_count", 1, "provider", "openai") == 3);

    /* Overhead: five chats at 30 us, the 404 at 100 us; no labels. */
    b = "prism_gateway_overhead_seconds_bucket";
    assert_true(get(&p, b, 1, "le", "2.5e-05") == 0);
    assert_true(get(&p, b, 1, "le", "5e-05") == 5);
    assert_true(get(&p, b, 1, "le", "0.0001") == 6);
    assert_true(get(&p, b, 1, "le", "+Inf") == 6);
    assert_true(get(&p, "prism_gateway_overhead_seconds_count", 0) == 6);
    assert_float_equal(get(&p, "prism_gateway_overhead_seconds_sum", 0), 5 * 0.00003 + 0.0001, 1e-12);

    /* Plugin steps: 4 us and 20 us, once per chat. */
    b = "prism_plugin_step_duration_seconds_bucket";
    assert_true(get(&p, b, 2, "plugin", "auth", "le", "1e-05") == 5);
    assert_true(get(&p, b, 2, "plugin", "model_router", "le", "1e-05") == 0);
    assert_true(get(&p, b, 2, "plugin", "model_router", "le", "2.5e-05") == 5);
    assert_true(get(&p, "prism_plugin_step_duration_seconds_count", 1, "plugin", "model_router") == 5);
    parsed_free(&p);
}

static void test_gauges(void **state)
{
    two *t = *state;
    prism_metrics_inflight(t->m[0], 1);
    prism_metrics_inflight(t->m[0], 1);
    prism_metrics_inflight(t->m[1], 1);
    prism_metrics_inflight(t->m[0], -1);
    prism_metrics_streams(t->m[1], 1);
    parsed p = render(t->m, 2);
    assert_true(get(&p, "prism_requests_in_flight", 0) == 2);
    assert_true(get(&p, "prism_streams_open", 0) == 1);
    assert_true(get(&p, "prism_log_lines_dropped_total", 0) == 0);
    parsed_free(&p);
    /* The process's counter is passed in as it is, not summed per worker. */
    prism_metrics_process proc = {.log_lines_dropped = 12345678901ULL};
    p = render_with(t->m, 2, &proc);
    assert_true(get(&p, "prism_log_lines_dropped_total", 0) == 12345678901.0);
    assert_true(get(&p, "prism_requests_in_flight", 0) == 2);
    parsed_free(&p);
    /* Without one, the family is left out. */
    char *text = prism_metrics_render(t->m, 2, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "prism_log_lines_dropped_total"));
    assert_non_null(strstr(text, "\nprism_streams_open 1\n"));
    free(text);
}

static const struct {
    const char *name, *type;
} expected_families[] = {
    {"prism_requests_total", "counter"},
    {"prism_request_duration_seconds", "histogram"},
    {"prism_upstream_duration_seconds", "histogram"},
    {"prism_time_to_first_token_seconds", "histogram"},
    {"prism_gateway_overhead_seconds", "histogram"},
    {"prism_tokens_total", "counter"},
    {"prism_upstream_errors_total", "counter"},
    {"prism_upstream_retries_total", "counter"},
    {"prism_fallbacks_total", "counter"},
    {"prism_plugin_step_duration_seconds", "histogram"},
    {"prism_requests_in_flight", "gauge"},
    {"prism_streams_open", "gauge"},
    {"prism_upstream_connections_open", "gauge"},
    {"prism_log_lines_dropped_total", "counter"},
};
#define NFAMILIES (sizeof expected_families / sizeof expected_families[0])

static void check_headers(parsed *p)
{
    assert_int_equal(p->nfam, NFAMILIES);
    for (size_t i = 0; i < NFAMILIES; i++) {
        family_line *f = family_named(p, expected_families[i].name, strlen(expected_families[i].name));
        assert_int_equal(f->helps, 1);
        assert_int_equal(f->types, 1);
        assert_string_equal(f->type, expected_families[i].type);
    }
}

static void test_help_type_once_per_family(void **state)
{
    two *t = *state;
    parsed empty = render(t->m, 2);
    check_headers(&empty);
    /* An unlabelled histogram shows its zeros before any request. */
    assert_true(get(&empty, "prism_gateway_overhead_seconds_count", 0) == 0);
    assert_true(get(&empty, "prism_requests_in_flight", 0) == 0);
    assert_int_equal(count_samples(&empty, "prism_requests_total"), 0);
    parsed_free(&empty);

    record_mix(t);
    parsed p = render(t->m, 2);
    check_headers(&p);
    parsed_free(&p);

    parsed none = render(NULL, 0);
    check_headers(&none);
    parsed_free(&none);
}

static void test_label_escaping(void **state)
{
    two *t = *state;
    const char *model = "we\"ird\\mo\ndel";
    prism_request_record r = chat(model, 0.1);
    r.fallback = 1;
    prism_metrics_record(t->m[0], &r);
    char *text = prism_metrics_render(t->m, 2, NULL);
    assert_non_null(strstr(text, "model=\"we\\\"ird\\\\mo\\ndel\""));
    parsed p = parse(text);
    free(text);
    assert_true(get(&p, "prism_fallbacks_total", 1, "model", model) == 1);
    assert_true(get(&p, "prism_tokens_total", 2, "model", model, "direction", "prompt") == 10);
    parsed_free(&p);
}

static void test_label_truncation_and_utf8(void **state)
{
    two *t = *state;
    char long_ascii[201], cut_char[70], expect_cut[64];
    memset(long_ascii, 'x', 200);
    long_ascii[200] = '\0';
    memset(cut_char, 'a', 63); /* "é" would straddle byte 64: dropped whole */
    strcpy(cut_char + 63, "\xc3\xa9z");
    memcpy(expect_cut, cut_char, 63);
    expect_cut[63] = '\0';
    const char *models[] = {long_ascii, cut_char, "caf\xc3\xa9", "bad\xff\xc3z", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        prism_request_record r = chat(models[i], 0.1);
        r.fallback = 1;
        prism_metrics_record(t->m[0], &r);
    }
    parsed p = render(t->m, 2);
    const char *n = "prism_fallbacks_total";
    assert_true(get(&p, n, 1, "model", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") == 1);
    assert_true(get(&p, n, 1, "model", expect_cut) == 1);
    assert_true(get(&p, n, 1, "model", "caf\xc3\xa9") == 1);
    assert_true(get(&p, n, 1, "model", "bad??z") == 1); /* invalid bytes replaced */
    assert_true(get(&p, n, 1, "model", "???") == 1);    /* a UTF-16 surrogate is not UTF-8 */
    assert_int_equal(count_samples(&p, n), 5);
    parsed_free(&p);
}

static size_t distinct_values(const parsed *p, const char *name, const char *key, bool *has_other)
{
    size_t n = 0;
    *has_other = false;
    for (size_t i = 0; i < p->n; i++) {
        const sample *s = &p->s[i];
        if (strcmp(s->name, name) != 0)
            continue;
        const char *v = NULL;
        for (int j = 0; j < s->nlabels; j++)
            if (strcmp(s->key[j], key) == 0)
                v = s->val[j];
        assert_non_null(v);
        *has_other = *has_other || strcmp(v, "other") == 0;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(p->s[k].name, name) == 0 && has_label(&p->s[k], key, v);
        n += !seen;
    }
    return n;
}

static void test_cardinality_cap(void **state)
{
    two *t = *state;
    for (int i = 0; i < 2000; i++) {
        char model[32], route[32];
        snprintf(model, sizeof model, "model-%d", i);
        snprintf(route, sizeof route, "/r/%d", i);
        prism_request_record r = chat(model, 0.1);
        prism_metrics_record(t->m[0], &r);
        /* Every label fresh, and status too: the all-"other" series. */
        r.route = route;
        r.status = 100 + i;
        r.prompt_tokens = -1;
        r.completion_tokens = -1;
        prism_metrics_record(t->m[1], &r);
    }
    parsed p = render(t->m, 2);
    bool other;
    const char *n = "prism_requests_total";
    assert_true(distinct_values(&p, n, "model", &other) <= PRISM_METRICS_MAX_SERIES + 1);
    assert_true(other);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "other", "provider", "openai", "status", "200") ==
                2000 - PRISM_METRICS_MAX_SERIES);
    assert_true(total(&p, n) == 4000);
    /* Memory is bounded even when the other labels vary too. */
    assert_true(count_samples(&p, n) <= 2 * (PRISM_METRICS_MAX_SERIES + 64 + 1));
    assert_true(get(&p, n, 4, "route", "other", "model", "other", "provider", "other", "status", "other") > 0);

    assert_true(distinct_values(&p, "prism_tokens_total", "model", &other) <= PRISM_METRICS_MAX_SERIES + 1);
    assert_true(total(&p, "prism_tokens_total") == 2000 * 30);
    assert_true(distinct_values(&p, "prism_request_duration_seconds_count", "route", &other) <=
                PRISM_METRICS_MAX_SERIES + 2);
    assert_true(total(&p, "prism_request_duration_seconds_count") == 4000);
    parsed_free(&p);
}

/* ---- concurrency ---- */

#define RECORDS 20000

typedef struct recording {
    prism_metrics *m;
    atomic_bool done;
} recording;

static void *recorder(void *arg)
{
    recording *rec = arg;
    prism_metrics *m = rec->m;
    for (int i = 0; i < RECORDS; i++) {
        char model[16];
        snprintf(model, sizeof model, "m%d", i % 700); /* inserts, and crosses the cap */
        prism_request_record r = chat(model, 0.01 * (i % 100));
        prism_metrics_inflight(m, 1);
        prism_metrics_record(m, &r);
        prism_metrics_inflight(m, -1);
    }
    atomic_store(&rec->done, true);
    return NULL;
}

/* Sum of the values of the lines starting with `prefix`, without cmocka
 * assertions: usable while another thread still records. */
static double sum_lines(const char *text, const char *prefix)
{
    double sum = 0;
    size_t plen = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            break;
        const char *value = end;
        while (value > line && value[-1] != ' ')
            value--;
        if (strncmp(line, prefix, plen) == 0)
            sum += strtod(value, NULL);
        line = end + 1;
    }
    return sum;
}

/* Checks are collected and asserted after the join: a failed assertion
 * must not free the metrics under the recorder's feet. */
static void test_render_while_recording(void **state)
{
    two *t = *state;
    recording rec = {.m = t->m[1]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, recorder, &rec), 0);
    double last = 0;
    bool rendered = true, consistent = true, monotonic = true;
    int renders = 0;
    while (!atomic_load(&rec.done)) {
        char *text = prism_metrics_render(t->m, 2, NULL);
        rendered = rendered && text != NULL;
        if (text == NULL)
            break;
        double requests = sum_lines(text, "prism_requests_total{");
        /* Each worker is read in one consistent snapshot. */
        consistent = consistent && requests == sum_lines(text, "prism_request_duration_seconds_count{") &&
                     requests == sum_lines(text, "prism_gateway_overhead_seconds_count ");
        monotonic = monotonic && requests >= last;
        last = requests;
        renders++;
        free(text);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(rendered);
    assert_true(consistent);
    assert_true(monotonic);
    assert_true(renders > 0);
    parsed p = render(t->m, 2);
    assert_true(total(&p, "prism_requests_total") == RECORDS);
    assert_true(total(&p, "prism_request_duration_seconds_count") == RECORDS);
    assert_true(get(&p, "prism_requests_in_flight", 0) == 0);
    parsed_free(&p);
}

/* One worker seeing the same shapes over and over, as a server does, with
 * the variations a shape can take between requests (streamed or not, tokens
 * unknown, a retry) and more distinct shapes than the worker remembers, so
 * repeated shapes go the short way and forgotten ones the full way: every
 * count must come out as if each request had been recorded on its own. */
static void test_repeated_shapes(void **state)
{
    two *t = *state;
    prism_metrics *m = t->m[0];
    int gpt_ok = 0, gpt_err = 0, streamed = 0, retried = 0, upstream = 0, none = 0, empty = 0;
    long prompt = 0, completion = 0;
    for (int i = 0; i < 120; i++) {
        prism_request_record r = chat("gpt-4o", 0.2);
        if (i % 4 == 0)
            r.ttft_s = 0.1, streamed++;
        if (i % 10 == 0)
            r.retries = 1, retried++;
        if (i % 3 == 0)
            r.prompt_tokens = -1;
        if (i % 7 == 0)
            r.status = 500, gpt_err++;
        else
            gpt_ok++;
        prompt += r.prompt_tokens >= 0 ? r.prompt_tokens : 0;
        completion += r.completion_tokens;
        prism_metrics_record(m, &r);
        upstream++;

        char model[16];
        snprintf(model, sizeof model, "m%d", i % 40);
        r = chat(model, 0.01);
        prism_metrics_record(m, &r);
        upstream++;
        if (i % 6 == 0) {
            r = chat(NULL, 0.01);
            prism_metrics_record(m, &r);
            r = chat("", 0.01);
            prism_metrics_record(m, &r);
            none++, empty++, upstream += 2;
        }
    }
    parsed p = render(t->m, 1);
    const char *n = "prism_requests_total";
    assert_true(get(&p, n, 4, "route", CHAT, "model", "gpt-4o", "provider", "openai", "status", "200") == gpt_ok);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "gpt-4o", "provider", "openai", "status", "500") == gpt_err);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "m7", "provider", "openai", "status", "200") == 3);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "m39", "provider", "openai", "status", "200") == 3);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "none", "provider", "openai", "status", "200") == none);
    assert_true(get(&p, n, 4, "route", CHAT, "model", "", "provider", "openai", "status", "200") == empty);
    assert_true(total(&p, n) == upstream);
    assert_true(get(&p, "prism_tokens_total", 2, "model", "gpt-4o", "direction", "prompt") == prompt);
    assert_true(get(&p, "prism_tokens_total", 2, "model", "gpt-4o", "direction", "completion") == completion);
    assert_true(get(&p, "prism_time_to_first_token_seconds_count", 1, "provider", "openai") == streamed);
    assert_true(get(&p, "prism_upstream_retries_total", 1, "provider", "openai") == retried);
    assert_true(get(&p, "prism_upstream_duration_seconds_count", 1, "provider", "openai") == upstream);
    assert_true(get(&p, "prism_request_duration_seconds_count", 1, "route", CHAT) == upstream);
    assert_true(get(&p, "prism_gateway_overhead_seconds_count", 0) == upstream);
    assert_true(get(&p, "prism_plugin_step_duration_seconds_count", 1, "plugin", "model_router") == upstream);
    assert_float_equal(get(&p, "prism_request_duration_seconds_sum", 1, "route", CHAT),
                       120 * 0.2 + (120 + 2 * none) * 0.01, 1e-9);
    parsed_free(&p);
}

static void test_null_arguments(void **state)
{
    (void)state;
    prism_request_record r = chat("x", 0.1);
    prism_metrics_record(NULL, &r);
    prism_metrics_record(NULL, NULL);
    prism_metrics_inflight(NULL, 1);
    prism_metrics_streams(NULL, 1);
    prism_metrics_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counters_sum_over_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histograms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_type_once_per_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_truncation_and_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cardinality_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_while_recording, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_shapes, setup, teardown),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
