/*
 * redisq: the shared work queue on a Redis stream (QUEUE=redis://).
 *
 * Watcher side: redisq_enqueue() adds one entry per file version, at most
 * once across every watcher (a Lua script sets PREFIX:seen:... NX and adds
 * the entry in one step).  Worker side: entries are read with XREADGROUP
 * in the consumer group, as many as the node has room for, and handed to
 * the daemon; once the daemon has logged the file's outcome it calls
 * redisq_finish(), which acknowledges and deletes the entry and lets the
 * seen key expire a few seconds later, so the stream holds only
 * unfinished work.
 *
 * Crash recovery, on a timer (a third of REDIS_VISIBILITY_S):
 *  - the entries this node holds are re-claimed by it (XCLAIM JUSTID), so
 *    a long image keeps its job;
 *  - entries idle longer than the visibility timeout whose delivery count
 *    reached REDIS_MAX_DELIVERIES are claimed and given to the dead
 *    callback (the daemon logs one `failed` line and finishes them as
 *    dead: copied to PREFIX:dead, acknowledged);
 *  - when the node has room, XAUTOCLAIM takes over other idle entries.
 *
 * Two connections: XREADGROUP ... BLOCK holds one, and nothing else may
 * wait behind it.  While Redis is away every call fails fast (-ENOTCONN)
 * and the daemon carries on with what it holds; redisq reconnects with
 * backoff and calls state(up) again, when the daemon rescans its tree.
 * Acknowledgements that could not be sent are kept and sent on reconnect.
 *
 * The shape every front end the supervisor starts has (see http.h):
 *     int  redisq_start(struct redisq **qp, uv_loop_t *loop,
 *              const struct redisq_opts *opts,
 *              const struct redisq_hooks *hooks, void *ud,
 *              char *err, size_t errlen);
 *     void redisq_stop(struct redisq *q, void (*done)(void *ud),
 *              void *ud);
 * start: 0 with *qp set (connecting: state(up) follows), or -errno with
 * err filled; stop: done (may be NULL) runs once the acknowledgements
 * already sent have landed (or 2 s passed), every handle is closed and q
 * is freed; stop(NULL, done, ud) calls done at once.
 */
#ifndef THUMBWATCH_REDISQ_H
#define THUMBWATCH_REDISQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster.h"

struct redisq_opts {
	struct cluster_url url;
	const char *prefix;
	const char *consumer;		/* host:pid */
	const char *fingerprint;	/* cluster_fingerprint(); read at each
					 * enqueue, so the caller's buffer
					 * must outlive q (a reload may
					 * change it) */
	bool produce, consume;		/* ROLE: watcher, worker, or both */
	uint64_t visibility_ms;
	int max_deliveries;
};

/* What the queue tells the daemon (ud is redisq_start's). */
struct redisq_hooks {
	/* The connection came up (once per connect: the daemon rescans)
	 * or went down (why: one line). */
	void (*state)(void *ud, bool up, const char *why);
	/* Worker side: a job to do (new, or taken over from a silent node
	 * when reclaimed).  The daemon must end it with redisq_finish. */
	void (*job)(void *ud, const struct cluster_job *job, bool reclaimed);
	/* An entry delivered deliveries times without an outcome; the
	 * daemon logs it failed and calls redisq_finish(..., reason). */
	void (*dead)(void *ud, const struct cluster_job *job,
	    int64_t deliveries);
	/* An entry that is not well formed: already dead-lettered and
	 * acknowledged; for the log. */
	void (*bad_entry)(void *ud, const char *id, const char *why);
	/* How many more jobs this node wants now. */
	size_t (*room)(void *ud);
};

struct redisq;

/* Connects (in the background: the connections come up, and state(up) is
 * called, from the loop).  0, or -errno with err filled ("cannot set up
 * the Redis queue: ..."); on failure *qp is NULL and what was made is
 * closed from the loop. */
int redisq_start(struct redisq **qp, uv_loop_t *loop,
    const struct redisq_opts *opts, const struct redisq_hooks *hooks,
    void *ud, char *err, size_t errlen);

bool redisq_up(const struct redisq *q);

/* Adds rel (this version: size and mtime) to the stream unless another
 * watcher already has.  0 (sent; the answer only counts), or -ENOTCONN
 * when Redis is away (the daemon's rescan on reconnect adds it). */
int redisq_enqueue(struct redisq *q, const char *rel, int64_t size,
    int64_t mtime_ns, bool force);

/* A watcher that decides a file's outcome alone (empty, too large, up to
 * date when its event came) claims that version first: with several
 * watchers on one tree only the first logs it (PREFIX:said:..., 10 s).  cb(ud, won) runs once,
 * from the loop; won is also true when the answer was lost (a line from
 * each watcher rather than none).  0, or -ENOTCONN (cb never called: log
 * it yourself). */
typedef void (*redisq_claim_fn)(void *ud, bool won);
int redisq_claim(struct redisq *q, const char *rel, int64_t size,
    int64_t mtime_ns, redisq_claim_fn cb, void *ud);

/* Ends every entry held for rel: acknowledged and deleted, its seen key
 * expiring in 5 s; with dead_reason, copied to PREFIX:dead first.  A no-op when
 * none is held. */
void redisq_finish(struct redisq *q, const char *rel,
    const char *dead_reason);

/* The node has more room (a worker freed up): read again. */
void redisq_poke(struct redisq *q);

/* Copies the cached figures (refreshed on the timer). */
void redisq_stats(const struct redisq *q, struct cluster_stats *st);

/* Stops reading; acknowledgements and other commands already sent get
 * up to 2 s to land (it waits for their answers), then both connections
 * and every handle close; done (may be NULL) runs once all are closed and
 * q is freed.  Held entries, and acknowledgements kept while Redis was
 * away, stay pending in Redis (another node takes them over after the
 * visibility timeout).  NULL is fine: done runs at once.  A second call
 * while stopping does nothing. */
void redisq_stop(struct redisq *q, void (*done)(void *ud), void *ud);

#endif
