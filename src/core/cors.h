/*
 * cors.h - requests from browsers (CORS).
 *
 * A browser names the page that makes a request in its Origin header; other
 * clients send none. Prism answers browser requests only from the origins in
 * server.cors_origins ("*": any). Everything else with an Origin header gets
 * a 403 before it can reach a provider: otherwise any web page could spend
 * the keys of a gateway on the same machine (a cross-site POST needs no
 * preflight to be sent, only to be read).
 */
#ifndef PRISM_CORS_H
#define PRISM_CORS_H

#include "ctx.h"

/* 1 when the request goes on (no Origin, or an allowed one, whose response
 * headers are then added); 0 when it was answered here (a preflight, or a
 * 403 origin_not_allowed). */
int prism_cors_check(prism_ctx *ctx);

#endif
