/*
 * server.h - the server object: worker threads, each with its own libuv
 * loop, h2o context, SO_REUSEPORT listener and upstream pool.
 */
#ifndef PRISM_SERVER_H
#define PRISM_SERVER_H

#include "config.h"

typedef struct prism_server prism_server;

/* Loads plugins and routes for `cfg` (which the server then owns), binds the
 * listeners and serves until SIGTERM/SIGINT, then drains in-flight requests
 * up to the shutdown deadline. Returns 0 on a clean stop, -1 with a message
 * in err when it could not start. */
int prism_serve(prism_config *cfg, char *err, size_t errlen);

#endif
