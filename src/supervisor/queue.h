/*
 * queue.h: private to src/supervisor.  Where a file that needs work goes,
 * behind one interface with two backends (OpenSMTPD's queue_backend):
 * queue_local.c hands it straight to this node's workers; queue_redis.c
 * puts it on a Redis stream that every node's workers read
 * (QUEUE=redis://).  The supervisor calls these and never asks which one
 * it has; a backend decides from the file's name, size and mtime only.
 */
#ifndef THUMBWATCH_QUEUE_H
#define THUMBWATCH_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct daemon;
struct sup_status;

typedef void (*queue_claim_fn)(void *ud, bool won);

struct queue_backend {
	const char *name;
	/* Several nodes share it: no instance lock on INPUT_DIR, and other
	 * nodes' workers may be writing temps in OUTPUT_DIR. */
	bool shared;
	/* Connects; 0, or -errno with err filled. */
	int (*start)(struct daemon *d, char *err, size_t errlen);
	/* A file this node found needs work.  st NULL: it could not be
	 * inspected yet (short of descriptors): the backend either queues
	 * it to be inspected at dispatch or has a later walk find it. */
	void (*enqueue)(struct daemon *d, const char *rel,
	    const struct stat *st, int64_t weight);
	/* An outcome decided without a worker (up to date, refused): with
	 * several watchers on one tree, only the first to claim this
	 * version logs it.  cb is called once, now or later; 0, or -errno
	 * when it cannot be asked (then cb is not called). */
	int (*claim)(struct daemon *d, const char *rel, const struct stat *st,
	    queue_claim_fn cb, void *ud);
	/* The file's outcome is logged; error non-NULL keeps it as a dead
	 * letter with that reason. */
	void (*finish)(struct daemon *d, const char *rel, const char *error);
	void (*stats)(struct daemon *d, struct sup_status *st);
	/* A worker is idle: more may be taken. */
	void (*poke)(struct daemon *d);
	/* Presets or templates changed (reload). */
	void (*reconfigure)(struct daemon *d);
	/* Outstanding acknowledgements go out, then done(d) runs. */
	void (*stop)(struct daemon *d, void (*done)(void *ud));
};

extern const struct queue_backend queue_local;
extern const struct queue_backend queue_redis;

#endif
