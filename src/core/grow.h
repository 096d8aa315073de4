/*
 * grow.h - the growable byte buffer step shared by the core's queues and
 * header stores.
 */
#ifndef PRISM_GROW_H
#define PRISM_GROW_H

#include <stddef.h>

/* Makes *cap at least `need`, doubling from the current capacity (or from
 * `first` when there is none yet) and reallocating *buf. 0, or -1 when memory
 * ran out (the buffer is then unchanged). */
int prism_grow(char **buf, size_t *cap, size_t need, size_t first);

#endif
