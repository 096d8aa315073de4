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

#include <h2o.h>

void prism_errfilter_register(h2o_pathconf_t *pathconf);

#endif
