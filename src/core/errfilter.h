/*
 * errfilter.h - OpenAI-style bodies for the errors h2o answers by itself.
 *
 * h2o rejects some requests before Prism sees them (a body over the size
 * limit, broken chunked encoding, an unknown Expect) with a text/plain body.
 * Clients of an OpenAI-compatible API parse error bodies as JSON, so an
 * output filter on h2o's fallback path rewrites those responses into
 * {"error":{...}} with the same status.
 */
#ifndef PRISM_ERRFILTER_H
#define PRISM_ERRFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include <h2o.h>

void prism_errfilter_register(h2o_pathconf_t *pathconf);

/* One answer bypasses every filter: h2o's HTTP/1 parser, refusing a request
 * head it cannot parse at all (more than 100 header lines, a control
 * character in a header, a head past its buffer), writes a fixed plain-text
 * 400 straight to the socket and closes. Given the bytes of one write, true
 * with *json set to the same answer as a JSON error (a constant) when they
 * are that answer. */
bool prism_errfilter_bare_400(const char *bytes, size_t len, const char **json, size_t *json_len);

#endif
