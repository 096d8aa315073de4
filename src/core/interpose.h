/*
 * interpose.h - the library function a definition in the executable stands
 * in for (readpause.c, writesoon.c).
 *
 * The executable's own uv_read_stop, uv_write and the like are what every
 * library's calls bind to; they forward to libuv's, found once, before main
 * runs, as the next definition after the executable's.
 */
#ifndef PRISM_INTERPOSE_H
#define PRISM_INTERPOSE_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* The next definition of name; a process without one cannot run at all. */
static inline void *prism_next_definition(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) {
        fprintf(stderr, "prism: %s was not found in the libraries loaded\n", name);
        abort();
    }
    return f;
}

#endif
