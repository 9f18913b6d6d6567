/*
 * dispatch: hands queued files to idle workers in batches, holding back
 * a file while a same-stem sibling is in a worker's hands.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "ipc.h"
#include "pathmap.h"
#include "pool.h"
#include "supervisor.h"

void
want_dispatch(struct daemon *d)
{
	d->want_dispatch = true;
}

/* Whether a worker holds a file with rel's stem in rel's folder.  Two
 * such files decide each other's output names: made at once, each would
 * be named for a tree without the other, and the second rename would
 * land on a name the first one owns. */
static bool
sibling_busy(struct daemon *d, const char *rel)
{
	struct batch_item *it;

	for (it = d->busy.head; it; it = it->next)
		if (pathmap_same_stem(it->rel, rel))
			return true;
	return false;
}

/* A file left the workers: held files whose siblings are all out of the
 * workers' hands go back to the queue, where they are inspected (and
 * named) afresh.  Items move whole, with their crash count. */
void
release_held(struct daemon *d)
{
	struct batch_queue keep;
	struct batch_item *it;

	if (d->held.len == 0)
		return;
	batch_queue_init(&keep);
	while ((it = batch_queue_pop(&d->held)) != NULL)
		batch_queue_requeue(sibling_busy(d, it->rel) ? &keep : &d->q,
		    it);
	batch_queue_free(&d->held);
	d->held = keep;
	want_dispatch(d);
}

static void
dispatch_timer_cb(uv_timer_t *t)
{
	dispatch(t->data);
}

void
dispatch(struct daemon *d)
{
	struct batch_decision dec;
	struct batch_item *it;
	struct inspection in;
	struct ipc_job *job;
	uint64_t now = uv_now(&d->loop);
	enum verdict v;
	int wi, k, idle;

	d->want_dispatch = false;
	if (d->draining || d->pool == NULL)
		return;
	if ((job = malloc(sizeof(*job))) == NULL)
		return;
	/* One decision per round, on the idle count at its start: once the
	 * first idle worker has a batch the pool is no longer all idle, and
	 * the others must not start waiting for that reason. */
	idle = pool_idle_count(d->pool);
	while (d->q.len > 0 && (wi = pool_idle_worker(d->pool)) >= 0) {
		dec = batch_decide(&d->pol, d->q.len, idle, pool_size(d->pool),
		    now - d->q.head->queued_ms);
		if (idle > 1)
			idle--;
		if (dec.take == 0) {
			if (dec.wait_ms > 0)
				uv_timer_start(&d->dispatch_timer,
				    dispatch_timer_cb, (uint64_t)dec.wait_ms, 0);
			break;
		}
		if (dec.take > pool_room(d->pool, wi))
			dec.take = pool_room(d->pool, wi);
		if (dec.take == 0)
			break;	/* it is about to be recycled */
		for (k = 0; k < dec.take && d->q.len > 0; k++) {
			it = batch_queue_pop(&d->q);
			if (sibling_busy(d, it->rel)) {
				batch_queue_requeue(&d->held, it);
				continue;
			}
			memset(&in, 0, sizeof(in));
			in.job = job;
			v = inspect(d, it->rel, &in);
			if (v == V_RETRY) {
				/* Short of descriptors: the file waits at the
				 * head, and dispatching resumes in a while. */
				batch_queue_requeue(&d->q, it);
				uv_timer_start(&d->dispatch_timer,
				    dispatch_timer_cb, 1000, 0);
				free(job);
				return;
			}
			it->src_dev = (uint64_t)in.st.st_dev;
			it->src_ino = (uint64_t)in.st.st_ino;
			it->qualified = in.qualified;
			if (v == V_WORK && !in.qualified)
				siblings(d, it->rel, requalify_sibling, true);
			if (v == V_WORK && pool_send(d->pool, wi, it, job) == 0) {
				batch_queue_remove(&d->forced, it->rel);
				batch_queue_push(&d->busy, it->rel, now);
				outcome_processing(d, it->rel);
				continue;
			}
			/* Picked up means one outcome line, whatever happened
			 * to the file while it waited. */
			if (v == V_FAILED)
				outcome_failed(d, it->rel, in.error, 0, &in.st);
			else if (v == V_WORK)
				outcome_failed(d, it->rel,
				    "could not hand the file to a worker", 0,
				    NULL);
			else
				outcome_skipped(d, it->rel, v == V_GONE ?
				    "deleted before it was processed" :
				    v == V_FRESH ? "up to date" :
				    v == V_FAILED_BEFORE ? "failed before "
				    "with the same contents" : "not a file");
			batch_item_free(it);
		}
	}
	free(job);
}

void
on_idle(void *ud)
{
	struct daemon *d = ud;

	want_dispatch(d);
	d->queue->poke(d);
}

/* Into this node's dispatch queue, once. */
void
queue_for_workers(struct daemon *d, const char *rel, int64_t weight)
{
	if (batch_queue_push_weighted(&d->q, rel, uv_now(&d->loop), weight) >
	    0) {
		outcome_queued(d, rel);
		want_dispatch(d);
	}
}

/* The queue hears of every outcome once it is logged (registered after
 * the log): the shared stream acknowledges the entry. */
void
queue_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;

	if (!o->remembered)
		d->queue->finish(d, o->rel, NULL);
}
