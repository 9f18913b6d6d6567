/*
 * pool: the fixed set of worker processes and their IPC channels.
 *
 * Each worker is this binary re-executed in worker mode (a fresh image: no
 * inherited threads, libvips initialised after the exec) with a socketpair
 * on fd 3.  The pool sends jobs, matches results to them in order, runs the
 * per-image deadline, and replaces a worker that dies or overruns: the
 * items it still held are handed back to the owner, the one it was working
 * on marked as the culprit.
 *
 * The shape every front end the supervisor starts has (see http.h):
 *     int  pool_start(struct pool **pp, uv_loop_t *loop,
 *              const struct pool_opts *opts,
 *              const struct pool_hooks *hooks, void *ud,
 *              char *err, size_t errlen);
 *     void pool_stop(struct pool *p, void (*done)(void *ud), void *ud);
 * start: 0 with *pp set (the workers are being spawned), or -errno with
 * err filled; stop: done (may be NULL) runs once every worker has exited,
 * every handle is closed and p is freed (so done need only forget its
 * pointer); stop(NULL, done, ud) calls done at once.
 */
#ifndef THUMBWATCH_POOL_H
#define THUMBWATCH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "ipc.h"
#include "log.h"

struct pool;

/* What the pool tells the owner (ud is pool_start's). */
struct pool_hooks {
	/* A result for item (ownership of item returns to the caller). */
	void (*on_result)(void *ud, int worker, struct batch_item *item,
	    const struct ipc_result *res);
	/* A worker died or overran.  culprit: the item it was on (may be
	 * NULL); rest: the items it had not started, in order (a list linked
	 * by ->next).  why: "crashed (signal 6)", "timed out after 1500 ms
	 * (IMAGE_TIMEOUT_MS)", ... Ownership of all items returns. */
	void (*on_lost)(void *ud, int worker, struct batch_item *culprit,
	    struct batch_item *rest, const char *why);
	/* Some worker became idle (after hello or a finished batch). */
	void (*on_idle)(void *ud);
};

struct pool_opts {
	int workers;
	int image_timeout_ms;
	/* After pool_stop, workers still running this long are killed. */
	int stop_grace_ms;
	const char *exe;	/* path of this binary */
	const char *formats;	/* EXTENSIONS, passed to workers */
	int max_images;		/* replace a worker after so many; 0 = never */
	int memory_mb;		/* worker address-space limit; 0 = none */
	/* Names this instance in the workers' command line (INPUT_DIR), so
	 * a later start-up can tell its own orphans from anyone else's. */
	const char *instance;
	struct logger *lg;	/* must outlive the pool */
};

/* Before the first spawn, pool_start() kills with SIGKILL the workers of
 * an earlier run of this instance whose supervisor is gone (a kill -9, or
 * an older version without PR_SET_PDEATHSIG): same user, same
 * executable, "--instance" equal to opts->instance, and a parent that is
 * not the "--parent" they were spawned by.  Each is logged
 * (stale_worker_killed).  The strings of opts are copied.  0, or -errno
 * with err filled ("cannot start workers: ..."). */
int pool_start(struct pool **pp, uv_loop_t *loop,
    const struct pool_opts *opts, const struct pool_hooks *hooks, void *ud,
    char *err, size_t errlen);
int pool_idle_count(const struct pool *p);
int pool_busy_count(const struct pool *p);
int pool_size(const struct pool *p);
uint64_t pool_restarts(const struct pool *p);
/* How many more items worker may be given before it is recycled
 * (WORKER_MAX_IMAGES); INT_MAX when there is no such limit. */
int pool_room(const struct pool *p, int worker);
/* Index of an idle worker, or -1. */
int pool_idle_worker(const struct pool *p);
/* Sends one job for item to worker; the pool owns item until on_result or
 * on_lost.  0 or -errno (then ownership stays with the caller). */
int pool_send(struct pool *p, int worker, struct batch_item *item,
    const struct ipc_job *job);
/* Closes the channels (workers exit on EOF) and kills what is still
 * running after opts->stop_grace_ms.  Items still held are returned via
 * on_lost with why "shutdown".  Once every process and handle is gone p
 * is freed, then done (may be NULL) runs.  NULL is fine: done runs at
 * once.  A second call while stopping does nothing. */
void pool_stop(struct pool *p, void (*done)(void *ud), void *ud);

#endif
