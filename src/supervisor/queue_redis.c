/*
 * queue_redis: the shared queue (QUEUE=redis://) as the supervisor uses it.
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
#include "cluster.h"
#include "config.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "redisq.h"
#include "watcher.h"
#include "supervisor.h"

static void
rq_state(void *ud, bool up, const char *why)
{
	struct daemon *d = ud;
	struct json_buf *j;

	if (!up) {
		log_msg(&d->lg, LOG_WARN, "redis_down", "Redis at %s: %s; "
		    "retrying with backoff (files wait; nothing is lost)",
		    d->cst.url, why);
		return;
	}
	if ((j = log_begin(&d->lg, LOG_INFO, "redis_up")) != NULL) {
		json_str(j, "url", d->cst.url);
		json_str(j, "role", config_role_name(d->cfg->role));
		json_str(j, "consumer", d->consumer);
		log_commit(&d->lg);
	}
	/* Whatever changed while Redis was away (or before it first
	 * answered) is found by a walk: events are hints, the tree is the
	 * truth. */
	if (d->produce && d->w && !d->draining)
		watcher_rescan(d->w, "redis connected");
}

static void
rq_job(void *ud, const struct cluster_job *job, bool reclaimed)
{
	struct daemon *d = ud;
	char msg[512];

	if (d->draining)
		return;		/* stays pending: another node takes it over */
	if (strcmp(job->fp, d->fp) != 0) {
		/* Nodes that judge "up to date" differently would pass the
		 * file back and forth; a person has to align the configs. */
		snprintf(msg, sizeof(msg), "presets differ between the node "
		    "that queued it (%s, fingerprint %s) and this worker "
		    "(fingerprint %s): give every node the same presets and "
		    "OUTPUT_TEMPLATE", job->by[0] ? job->by : "?", job->fp,
		    d->fp);
		redisq_finish(d->rq, job->path, msg);
		outcome_failed(d, job->path, msg, 0, NULL);
		return;
	}
	if (reclaimed)
		log_msg(&d->lg, LOG_INFO, "reclaimed", "%s: taken over from a "
		    "silent node (entry %s)", job->path, job->id);
	if (job->force)
		batch_queue_push(&d->forced, job->path, 0);
	pickup(d, job->path, WATCHER_QUEUE);
	/* Not queued here: its outcome is logged, or it is a redelivery of
	 * a file already made. */
	if (!batch_queue_contains(&d->q, job->path) &&
	    !batch_queue_contains(&d->busy, job->path))
		redisq_finish(d->rq, job->path, NULL);
}

static void
rq_dead(void *ud, const struct cluster_job *job, int64_t deliveries)
{
	struct daemon *d = ud;
	struct inspection in;
	char msg[512];

	snprintf(msg, sizeof(msg), "dead letter: delivered %lld times "
	    "without an outcome (REDIS_MAX_DELIVERIES %d; the nodes that "
	    "took it died or stalled); kept in %s:dead", (long long)deliveries,
	    d->cfg->redis_max_deliveries, d->cfg->redis_prefix);
	redisq_finish(d->rq, job->path, msg);
	memset(&in, 0, sizeof(in));
	inspect(d, job->path, &in);
	/* Remembered like a poison file, so no watcher queues it again. */
	outcome_failed(d, job->path, msg, 0, in.st.st_mode ? &in.st : NULL);
}

static void
rq_bad(void *ud, const char *id, const char *why)
{
	struct daemon *d = ud;

	log_msg(&d->lg, LOG_WARN, "queue_error", "%s%s%s%s",
	    id ? "entry " : "", id ? id : "", id ? ": " : "",
	    why ? why : "unknown error");
}

static size_t
rq_room(void *ud)
{
	struct daemon *d = ud;
	size_t want, have;

	if (d->draining || d->pool == NULL)
		return 0;
	/* A batch in hand for every worker: enough to keep them busy, not
	 * so much that other nodes starve. */
	want = (size_t)pool_size(d->pool) * (size_t)d->cfg->batch_size;
	have = d->q.len + d->busy.len;
	return have < want ? want - have : 0;
}

static int
redis_start(struct daemon *d, char *err, size_t errlen)
{
	struct redisq_hooks cb = { rq_state, rq_job, rq_dead, rq_bad,
	    rq_room };
	struct redisq_opts o;
	char host[100];
	int rc;

	memset(&o, 0, sizeof(o));
	if (cluster_parse_url(d->cfg->queue, &o.url, err, errlen) < 0)
		return -EINVAL;
	if (d->cfg->redis_password[0])
		snprintf(o.url.password, sizeof(o.url.password), "%s",
		    d->cfg->redis_password);
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	cluster_consumer_name(d->consumer, sizeof(d->consumer), host,
	    (long)getpid());
	cluster_fingerprint(d->cfg, d->fp);
	o.prefix = d->cfg->redis_prefix;
	o.consumer = d->consumer;
	o.fingerprint = d->fp;
	o.produce = d->produce;
	o.consume = d->consume;
	o.visibility_ms = (uint64_t)d->cfg->redis_visibility_s * 1000;
	o.max_deliveries = d->cfg->redis_max_deliveries;
	if ((rc = redisq_start(&d->rq, &d->loop, &o, &cb, d, err,
	    errlen)) < 0)
		return rc;
	redisq_stats(d->rq, &d->cst);
	return 0;
}

/* Found by this node: to the shared stream, where a worker node takes it
 * and logs its outcome.  Redis away: the rescan when it is back adds it.
 * Not inspected yet (short of descriptors): a walk in a while finds it. */
static void
redis_enqueue(struct daemon *d, const char *rel, const struct stat *st,
    int64_t weight)
{
	bool force;

	(void)weight;
	if (st == NULL) {
		if (!uv_is_active((uv_handle_t *)&d->retry_timer))
			uv_timer_start(&d->retry_timer, retry_cb,
			    (uint64_t)d->cfg->retry_interval_s * 1000, 0);
		return;
	}
	force = batch_queue_remove(&d->forced, rel);
	if (d->produce && d->rq)
		redisq_enqueue(d->rq, rel, (int64_t)st->st_size,
		    ts_ns(&st->st_mtim), force);
}

static int
redis_claim(struct daemon *d, const char *rel, const struct stat *st,
    queue_claim_fn cb, void *ud)
{
	if (d->rq == NULL)
		return -ENOTCONN;
	return redisq_claim(d->rq, rel, (int64_t)st->st_size,
	    ts_ns(&st->st_mtim), cb, ud);
}

static void
redis_finish(struct daemon *d, const char *rel, const char *error)
{
	if (d->rq)
		redisq_finish(d->rq, rel, error);
}

static void
redis_stats(struct daemon *d, struct sup_status *st)
{
	if (d->rq == NULL)
		return;
	redisq_stats(d->rq, &d->cst);
	st->cluster = &d->cst;
}

static void
redis_poke(struct daemon *d)
{
	if (d->rq)
		redisq_poke(d->rq);
}

/* Nodes compare presets by this fingerprint (cluster.h). */
static void
redis_reconfigure(struct daemon *d)
{
	cluster_fingerprint(d->cfg, d->fp);
}

static void
redis_closed(void *ud)
{
	struct daemon *d = ud;

	d->rq = NULL;
	d->queue_done(d);
}

static void
redis_stop(struct daemon *d, void (*done)(void *ud))
{
	if (d->rq == NULL) {
		done(d);
		return;
	}
	d->queue_done = done;
	redisq_stop(d->rq, redis_closed, d);
}

const struct queue_backend queue_redis = {
	.name = "redis",
	.shared = true,
	.start = redis_start,
	.enqueue = redis_enqueue,
	.claim = redis_claim,
	.finish = redis_finish,
	.stats = redis_stats,
	.poke = redis_poke,
	.reconfigure = redis_reconfigure,
	.stop = redis_stop,
};
