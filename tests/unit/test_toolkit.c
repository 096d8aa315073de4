/* The plugin toolkit's pure helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"
#include "prism/plugin.h"

/* Every placement of a multi-byte sequence (and of a broken one) relative to
 * the 8-byte ASCII stride: before, inside, across and after a word. */
static void utf8_valid_at_every_offset(void **state)
{
    (void)state;
    static const char *const good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    static const char *const bad[] = {"\xc3", "\xe2\x82", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    char buf[64];
    for (size_t at = 0; at < 24; at++) {
        for (size_t g = 0; g < sizeof(good) / sizeof(good[0]); g++) {
            memset(buf, 'a', sizeof(buf));
            size_t n = strlen(good[g]);
            memcpy(buf + at, good[g], n);
            assert_int_equal(prism_utf8_valid(buf, 40), 1);
            /* Cut in the middle of the sequence: invalid. */
            if (n > 1)
                assert_int_equal(prism_utf8_valid(buf, at + 1), 0);
        }
        for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
            memset(buf, 'a', sizeof(buf));
            memcpy(buf + at, bad[b], strlen(bad[b]));
            assert_int_equal(prism_utf8_valid(buf, 40), 0);
        }
    }
    assert_int_equal(prism_utf8_valid("", 0), 1);
    assert_int_equal(prism_utf8_valid("plain ascii, longer than eight bytes", 36), 1);
    /* A NUL is ASCII: lengths, not terminators, bound the check. */
    assert_int_equal(prism_utf8_valid("ab\0cdefghijk\x80", 12), 1);
    assert_int_equal(prism_utf8_valid("ab\0cdefghijk\x80", 13), 0);
}

/* Access lines are JSON: quotes, backslashes and control bytes escaped, and
 * the output never runs past its buffer, whatever the input. */
static void json_escape_escapes_and_stops_at_cap(void **state)
{
    (void)state;
    char buf[64];
    size_t n = prism_json_escape(buf, 0, sizeof(buf), "a\"b\\c\n\x01\x1f/\xc3\xa9");
    assert_string_equal(buf, "a\\\"b\\\\c\\u000a\\u0001\\u001f/\xc3\xa9");
    assert_int_equal(n, strlen(buf));
    /* Appends after what is there. */
    memcpy(buf, "x=", 2);
    n = prism_json_escape(buf, 2, sizeof(buf), "y");
    assert_string_equal(buf, "x=y");
    assert_int_equal(n, 3);
    /* A small buffer: stops early, always terminated, never past cap. */
    char small[12];
    memset(small, '#', sizeof(small));
    n = prism_json_escape(small, 0, 10, "\n\n\n\n");
    assert_true(n < 10);
    assert_string_equal(small, "\\u000a");
    assert_int_equal(small[10], '#');
    /* A long plain run stops at the same place: 7 bytes short of cap. */
    memset(small, '#', sizeof(small));
    n = prism_json_escape(small, 1, 11, "abcdefghijklmnop");
    assert_int_equal(n, 4);
    assert_memory_equal(small + 1, "abc", 4);
    assert_int_equal(small[5], '#');
    /* Broken UTF-8 (a lone lead byte, a stray continuation, a surrogate) becomes U+FFFD; good stays. */
    n = prism_json_escape(buf, 0, sizeof(buf), "/\xff\xfe/\xc3/\x80/\xed\xa0\x80/\xe2\x82\xac");
    assert_string_equal(buf, "/\\ufffd\\ufffd/\\ufffd/\\ufffd/\\ufffd\\ufffd\\ufffd/\xe2\x82\xac");
    /* With a length, exactly those bytes and not one more (the sanitizer
     * build sees a read past them): a cut UTF-8 character at the end is
     * U+FFFD, and an escape in the last byte is whole. */
    const char *const cases[][2] = {
        {"ab\"", "ab\\\""}, {"a\xc3", "a\\ufffd"}, {"plain text 16 by", "plain text 16 by"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i][0]);
        char *exact = malloc(len); /* no NUL after it */
        assert_non_null(exact);
        memcpy(exact, cases[i][0], len);
        n = prism_json_escape_n(buf, 0, sizeof(buf), exact, len);
        assert_string_equal(buf, cases[i][1]);
        assert_int_equal(n, strlen(cases[i][1]));
        free(exact);
    }
}

/* Text that may quote client bytes, or was cut at a byte count, comes out
 * well-formed: every stray byte becomes '?', whole characters stay. */
static void utf8_scrub_replaces_broken_bytes(void **state)
{
    (void)state;
    char a[] = "model \xff\xfe: caf\xc3\xa9 \xe2\x82";
    prism_utf8_scrub(a);
    assert_string_equal(a, "model ??: caf\xc3\xa9 ??");
    assert_int_equal(prism_utf8_valid(a, strlen(a)), 1);
    char b[] = "\xf0\x9f\x98\x80\xf0\x9f\x98";
    prism_utf8_scrub(b);
    assert_string_equal(b, "\xf0\x9f\x98\x80???");
    assert_int_equal(prism_utf8_char("\xc3\xa9", 1), 0);
    assert_int_equal(prism_utf8_char("\xc3\xa9", 2), 2);
    assert_int_equal(prism_utf8_char("a", 1), 1);
}

/* Control bytes are refused wherever they sit relative to the 8-byte stride;
 * tab, CR and LF (JSON whitespace) and bytes from 0x20 up are not. */
static void json_bytes_check_finds_control_bytes(void **state)
{
    (void)state;
    char buf[40];
    for (size_t at = 0; at < 24; at++) {
        for (int c = 0; c < 0x80; c++) {
            memset(buf, 'a', sizeof(buf));
            buf[at] = (char)c;
            int want = c < 0x20 && c != '\t' && c != '\n' && c != '\r' ? PRISM_JSON_CONTROL : PRISM_JSON_BYTES_OK;
            assert_int_equal(prism_json_bytes_check(buf, 32), want);
        }
        memset(buf, 'a', sizeof(buf));
        memcpy(buf + at, "\xc3\xa9\x01", 3); /* a control byte right after a multi-byte sequence */
        assert_int_equal(prism_json_bytes_check(buf, 32), PRISM_JSON_CONTROL);
        buf[at + 2] = 'a';
        assert_int_equal(prism_json_bytes_check(buf, 32), PRISM_JSON_BYTES_OK);
        buf[at + 1] = 'a'; /* a lead byte without its continuation */
        assert_int_equal(prism_json_bytes_check(buf, 32), PRISM_JSON_BAD_UTF8);
    }
    assert_int_equal(prism_json_bytes_check("", 0), PRISM_JSON_BYTES_OK);
}

/* The key a request was sent with never goes back out: every occurrence is
 * masked in place, other text is left alone, short keys are not looked for. */
static void keyring_masks_the_key_it_sent(void **state)
{
    (void)state;
    cJSON *conf = cJSON_Parse("{\"keys\":[\"sk-test-secret-0001\",\"sk-test-secret-0002\",\"short\"]}");
    char err[128];
    prism_keyring *k =
        prism_keyring_new(conf, "Authorization", "Bearer ", "http://127.0.0.1:9/v1", "/x", err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(prism_keyring_count(k), 3);
    char buf[] = "{\"m\":\"sk-test-secret-0001 sk-test-secret-0002 sk-test-secret-0001\"}";
    size_t len = strlen(buf);
    assert_null(prism_keyring_find(k, 0, buf, 5));
    assert_ptr_equal(prism_keyring_find(k, 0, buf, len), buf + 6);
    assert_int_equal(prism_keyring_redact(k, 0, buf, len), 2);
    assert_string_equal(buf, "{\"m\":\"******************* sk-test-secret-0002 *******************\"}");
    assert_int_equal(strlen(buf), len);
    assert_null(prism_keyring_find(k, 0, buf, len));
    assert_int_equal(prism_keyring_redact(k, 1, buf, len), 1); /* each key masks its own */
    assert_null(strstr(buf, "sk-test"));
    char shorty[] = "a short answer";
    assert_int_equal(prism_keyring_redact(k, 2, shorty, strlen(shorty)), 0);
    assert_string_equal(shorty, "a short answer");
    assert_int_equal(prism_keyring_redact(k, 0, NULL, 0), 0);

    /* The key at every offset of a buffer full of near misses (its last
     * byte, its prefix, itself cut short), at both ends and cut by len:
     * found exactly where memmem finds it. */
    const char *key = "sk-test-secret-0001";
    const size_t kl = strlen(key);
    char hay[96];
    for (size_t at = 0; at + kl <= sizeof hay; at++) {
        for (size_t i = 0; i < sizeof hay; i++)
            hay[i] = "1sk-test-secret-00"[i % 18];
        memcpy(hay + at, key, kl);
        for (size_t len2 = 0; len2 <= sizeof hay; len2 += 7) {
            const char *want = memmem(hay, len2, key, kl);
            assert_ptr_equal(prism_keyring_find(k, 0, hay, len2), want);
        }
        assert_ptr_equal(prism_keyring_find(k, 0, hay, sizeof hay), hay + at);
        assert_ptr_equal(prism_keyring_find(k, 0, hay, at + kl), hay + at);
        assert_null(prism_keyring_find(k, 0, hay, at + kl - 1));
        assert_null(prism_keyring_find(k, 0, hay + at + 1, sizeof hay - at - 1));
    }
    prism_keyring_free(k);
    cJSON_Delete(conf);
}

/* Access-line timestamps: known instants, written the same with and without
 * a batch's reuse of the formatted second, across second, day, leap-day
 * and year changes and back again; cut short by a small buffer. */
static void log_timestamps(void **state)
{
    (void)state;
    static const struct {
        time_t sec;
        long nsec;
        const char *want;
    } cases[] = {
        {0, 0, "1970-01-01T00:00:00.000Z"},
        {1798761599, 999999999, "2026-12-31T23:59:59.999Z"},
        {1798761600, 0, "2027-01-01T00:00:00.000Z"},
        {1798761600, 1000000, "2027-01-01T00:00:00.001Z"},
        {951782400, 500000000, "2000-02-29T00:00:00.500Z"},
        {1798761599, 5000000, "2026-12-31T23:59:59.005Z"},
        {1798761599, 5999999, "2026-12-31T23:59:59.005Z"},
    };
    prism_log_batch *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timespec ts = {.tv_sec = cases[i].sec, .tv_nsec = cases[i].nsec};
        char alone[32], batched[32];
        assert_int_equal(prism_log_timestamp_at(NULL, &ts, alone, sizeof(alone)), 24);
        assert_int_equal(prism_log_timestamp_at(b, &ts, batched, sizeof(batched)), 24);
        assert_string_equal(alone, cases[i].want);
        assert_string_equal(batched, cases[i].want);
    }
    struct timespec ts = {.tv_sec = 1798761600, .tv_nsec = 0};
    char small[8] = "xxxxxxx";
    assert_int_equal(prism_log_timestamp_at(b, &ts, small, sizeof(small)), 7);
    assert_string_equal(small, "2027-01");
    assert_int_equal(prism_log_timestamp_at(b, &ts, small, 0), 0);
    assert_string_equal(small, "2027-01");
    char now[32];
    assert_int_equal(prism_log_batch_timestamp(b, now, sizeof(now)), 24);
    assert_int_equal(prism_log_timestamp(now, sizeof(now)), 24);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_timestamps),
        cmocka_unit_test(utf8_valid_at_every_offset),
        cmocka_unit_test(json_escape_escapes_and_stops_at_cap),
        cmocka_unit_test(utf8_scrub_replaces_broken_bytes),
        cmocka_unit_test(keyring_masks_the_key_it_sent),
        cmocka_unit_test(json_bytes_check_finds_control_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
