/*
 * errfilter.c - rewrites h2o's own plain-text errors as OpenAI JSON errors.
 */
#include "errfilter.h"

#include <string.h>

#include "ctx.h"

typedef struct rewrite_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
} rewrite_ostream;

static const char *code_for(int status)
{
    switch (status) {
    case 413: return "request_too_large";
    case 417: return "expectation_failed";
    case 400: return "invalid_request";
    default: return "http_error";
    }
}

static const char *message_for(int status)
{
    switch (status) {
    case 413: return "The request body is larger than this server accepts.";
    case 417: return "Only 'Expect: 100-continue' is supported.";
    case 400: return "The HTTP request is malformed (broken Content-Length or chunked encoding).";
    default: return "The request could not be processed.";
    }
}

/* Drops h2o's text body and sends the JSON one in its place, once. */
static void do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n, h2o_send_state_t state)
{
    rewrite_ostream *o = (rewrite_ostream *)self;
    (void)bufs;
    (void)n;
    if (o->sent) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    o->sent = 1;
    h2o_ostream_send_next(self, req, &o->body, 1, state);
}

static int is_plain_text(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    return i >= 0 && req->res.headers.entries[i].value.len >= 10 &&
           memcmp(req->res.headers.entries[i].value.base, "text/plain", 10) == 0;
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400 && is_plain_text(req)) {
        char *json =
            prism_error_json("invalid_request_error", code_for(req->res.status), NULL, message_for(req->res.status));
        if (json != NULL) {
            rewrite_ostream *o = (rewrite_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
            o->body = h2o_strdup(&req->pool, json, strlen(json));
            o->sent = 0;
            o->super.do_send = do_send;
            cJSON_free(json);
            req->res.content_length = o->body.len;
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"), 1);
            slot = &o->super.next;
        }
    }
    prism_server_header(req);
    h2o_setup_next_ostream(req, slot);
}

/* h2o 2.2's send_bad_request, byte for byte. */
static const char bare_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Connection: close\r\nContent-Length: 11\r\n\r\nBad Request";

#define JSON_400_BODY                                                                                                  \
    "{\"error\":{\"message\":\"The request head could not be parsed (more than 100 header lines, a control "           \
    "character in a header, or a head too large).\",\"type\":\"invalid_request_error\",\"param\":null,"                \
    "\"code\":\"invalid_request\"}}"
#define JSON_400_BODY_LEN "213"
_Static_assert(sizeof(JSON_400_BODY) - 1 == 213, "JSON_400_BODY_LEN is the body's length");

static const char json_400[] = "HTTP/1.1 400 Bad Request\r\nServer: prism\r\nContent-Type: application/json\r\n"
                               "Connection: close\r\nContent-Length: " JSON_400_BODY_LEN "\r\n\r\n" JSON_400_BODY;

bool prism_errfilter_bare_400(const char *bytes, size_t len, const char **json, size_t *json_len)
{
    if (len != sizeof(bare_400) - 1 || memcmp(bytes, bare_400, len) != 0) {
        return false;
    }
    *json = json_400;
    *json_len = sizeof(json_400) - 1;
    return true;
}

void prism_errfilter_register(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *f = h2o_create_filter(pathconf, sizeof(*f));
    f->on_setup_ostream = on_setup_ostream;
}
