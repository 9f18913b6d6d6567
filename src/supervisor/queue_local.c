/*
 * queue_local: the local queue (QUEUE=local, the default): a file that
 * needs work waits in this node's dispatch queue, and this node alone
 * decides and logs every outcome.
 */
#include <stddef.h>
#include <sys/stat.h>

#include "queue.h"
#include "supervisor.h"

static int
local_start(struct daemon *d, char *err, size_t errlen)
{
	(void)d;
	(void)err;
	(void)errlen;
	return 0;
}

/* Not yet inspected (st NULL): dispatch inspects it when a worker is
 * free. */
static void
local_enqueue(struct daemon *d, const char *rel, const struct stat *st,
    int64_t weight)
{
	(void)st;
	queue_for_workers(d, rel, weight);
}

static int
local_claim(struct daemon *d, const char *rel, const struct stat *st,
    queue_claim_fn cb, void *ud)
{
	(void)d;
	(void)rel;
	(void)st;
	cb(ud, true);
	return 0;
}

static void
local_finish(struct daemon *d, const char *rel, const char *error)
{
	(void)d;
	(void)rel;
	(void)error;
}

static void
local_stats(struct daemon *d, struct sup_status *st)
{
	(void)d;
	(void)st;
}

static void
local_nothing(struct daemon *d)
{
	(void)d;
}

static void
local_stop(struct daemon *d, void (*done)(void *ud))
{
	done(d);
}

const struct queue_backend queue_local = {
	.name = "local",
	.shared = false,
	.start = local_start,
	.enqueue = local_enqueue,
	.claim = local_claim,
	.finish = local_finish,
	.stats = local_stats,
	.poke = local_nothing,
	.reconfigure = local_nothing,
	.stop = local_stop,
};
