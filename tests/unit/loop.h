/*
 * Driving a real libuv loop from a cmocka test (libuv's own tests do the
 * same): the clock, and running until a condition holds or a deadline
 * passes.  The test keeps a uv_timer_t of its own that only wakes
 * uv_run(UV_RUN_ONCE) at the deadline.
 */
#ifndef THUMBWATCH_UNIT_LOOP_H
#define THUMBWATCH_UNIT_LOOP_H

#include <stdint.h>
#include <uv.h>

static inline uint64_t
now_ms(void)
{
	return uv_hrtime() / 1000000;
}

static inline void
loop_wake_cb(uv_timer_t *t)
{
	(void)t;	/* only ends a uv_run(UV_RUN_ONCE) */
}

/* Runs loop until cond holds or ms pass; wake is an initialised timer. */
#define LOOP_RUN_UNTIL(loop, wake, cond, ms) do {			\
	uint64_t end_ = now_ms() + (ms);				\
	while (!(cond) && now_ms() < end_) {				\
		uv_timer_start((wake), loop_wake_cb, end_ - now_ms(), 0); \
		uv_run((loop), UV_RUN_ONCE);				\
	}								\
	uv_timer_stop(wake);						\
} while (0)

#endif
