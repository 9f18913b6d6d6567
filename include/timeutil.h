/*
 * timeutil: the millisecond clocks the supervisor's modules read.
 *
 * Pure module (no libuv, no libvips).  Wall time for what is shown or
 * compared with file times; monotonic time for deadlines.
 */
#ifndef THUMBWATCH_TIMEUTIL_H
#define THUMBWATCH_TIMEUTIL_H

#include <stdint.h>

/* CLOCK_REALTIME in ms since the epoch. */
int64_t time_wall_ms(void);

/* CLOCK_MONOTONIC in ms. */
int64_t time_mono_ms(void);

#endif
