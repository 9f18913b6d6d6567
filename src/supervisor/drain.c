/*
 * drain: the running supervisor's signals (SIGTERM and SIGINT drain,
 * SIGHUP reloads), the loop's check phase, the instance lock and the
 * watchdog, and the way down: drain, stop, and the loop's last handles.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "cluster.h"
#include "config.h"
#include "control_server.h"
#include "log.h"
#include "notify.h"
#include "pidfile.h"
#include "pool.h"
#include "watcher.h"
#include "supervisor.h"

void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
pool_gone(void *ud)
{
	struct daemon *d = ud;

	d->pool = NULL;
	if (d->w) {
		watcher_stop(d->w);
		d->w = NULL;
	}
	/* Whatever is left (signals, timers) closes now, once the queue's
	 * last acknowledgements are out; the loop ends. */
	if (!d->queue_open)
		uv_walk(&d->loop, close_walk, NULL);
}

static void
queue_gone(void *ud)
{
	struct daemon *d = ud;

	d->queue_open = false;
	if (d->pool == NULL && d->stopped)
		uv_walk(&d->loop, close_walk, NULL);
}

static void
stop(struct daemon *d, const char *reason)
{
	struct batch_item *it;

	if (d->stopped)
		return;
	d->stopped = true;
	d->stop_reason = reason;
	uv_timer_stop(&d->drain_timer);
	if (d->progress)
		fputc('\n', stderr);
	/* Files still queued are not lost: the next start-up walk finds
	 * them, since their thumbnails are not there. */
	while ((it = batch_queue_pop(&d->q)) != NULL)
		batch_item_free(it);
	while ((it = batch_queue_pop(&d->held)) != NULL)
		batch_item_free(it);
	log_stats(d, "shutdown", reason);
	/* Its handles close through its own callbacks, before the walk in
	 * pool_gone closes whatever is left. */
	control_stop(d->ctl, NULL, NULL);
	d->ctl = NULL;
	http_stop_daemon(d);
	if (d->queue_open)
		d->queue->stop(d, queue_gone);
	pool_stop(d->pool, pool_gone, d);
}

static void
drain_timeout_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	log_msg(&d->lg, LOG_WARN, "drain_timeout", "%zu file(s) still in "
	    "work after DRAIN_TIMEOUT_MS=%d: stopping the workers; they are "
	    "made again at the next start", d->busy.len,
	    d->cfg->drain_timeout_ms);
	stop(d, d->stop_reason ? d->stop_reason : "drain timeout");
}

void
maybe_finish(struct daemon *d)
{
	if (d->stopped)
		return;
	if (d->draining) {
		if (d->busy.len == 0)
			stop(d, d->stop_reason);
		return;
	}
	if (d->mode == DAEMON_ONCE && d->scanned && d->q.len == 0 &&
	    d->held.len == 0 && d->busy.len == 0 && !watcher_busy(d->w)) {
		d->draining = true;
		d->stop_reason = "finished";
		stop(d, "finished");
	}
}

static void
begin_drain(struct daemon *d, const char *reason)
{
	struct json_buf *j;

	if (d->draining) {
		/* A second signal: stop now. */
		stop(d, reason);
		return;
	}
	d->draining = true;
	d->stop_reason = reason;
	if (d->mode == DAEMON_RUN)
		notify_stopping();
	if ((j = log_begin(&d->lg, LOG_INFO, "draining")) != NULL) {
		json_str(j, "reason", reason);
		json_int(j, "in_flight", (int64_t)d->busy.len);
		json_int(j, "queued", (int64_t)d->q.len);
		log_commit(&d->lg);
	}
	uv_timer_start(&d->drain_timer, drain_timeout_cb,
	    (uint64_t)d->cfg->drain_timeout_ms, 0);
	maybe_finish(d);
}

void
check_cb(uv_check_t *h)
{
	struct daemon *d = h->data;

	/* One dispatch per loop turn: a burst of events becomes batches
	 * instead of one message per file. */
	if (d->want_dispatch)
		dispatch(d);
	maybe_finish(d);
}

void
reload(struct daemon *d)
{
	struct config nc, *c = d->cfg;
	struct json_buf *j;
	char err[1024], changed[512];
	char fp_before[CLUSTER_FP_LEN + 1], fp_after[CLUSTER_FP_LEN + 1];
	int rc;

	if (d->mode == DAEMON_RUN)
		notify_reloading();
	if ((rc = log_reopen(&d->lg)) < 0)
		dprintf(2, "thumbwatch: cannot reopen %s: %s\n", d->lg.path,
		    strerror(-rc));
	if (d->reload == NULL)
		goto done;
	memset(&nc, 0, sizeof(nc));
	if (d->reload(d->reload_ud, &nc, err, sizeof(err)) < 0) {
		log_msg(&d->lg, LOG_ERROR, "reload_failed",
		    "configuration not reloaded, the running one stays: %s",
		    err);
		goto done;
	}
	/* What the loop, the pool and the watcher were built around needs a
	 * restart (the table says which keys); everything else applies now. */
	config_keep_restart_keys(c, &nc, changed, sizeof(changed));
	if (changed[0] != '\0')
		log_msg(&d->lg, LOG_WARN, "reload_partial", "%s take%s effect "
		    "at the next start", changed, strchr(changed, ',') ? "" :
		    "s");
	memcpy(nc.pidfile, c->pidfile, sizeof(nc.pidfile));
	cluster_fingerprint(c, fp_before);
	config_free(c);
	*c = nc;
	d->lg.level = c->log_level;
	d->pol.batch_size = c->batch_size;
	d->pol.wait_ms = c->batch_wait_ms;
	load_epochs(d);
	d->queue->reconfigure(d);
	if ((j = log_begin(&d->lg, LOG_INFO, "reload")) != NULL) {
		json_int(j, "presets", c->npresets);
		log_commit(&d->lg);
	}
	/* A changed preset or output template makes thumbnails stale: find
	 * them now.  Nothing else does: a reload for logrotate walks nothing. */
	cluster_fingerprint(c, fp_after);
	if (d->w && strcmp(fp_before, fp_after) != 0)
		watcher_rescan(d->w, "reload");
done:
	if (d->mode == DAEMON_RUN && d->ready && !d->draining)
		notify_ready("configuration reloaded");
}

void
signal_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (signum == SIGHUP)
		reload(d);
	else
		begin_drain(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The lock must not pin a deleted input folder (inotify would never say
 * it is gone), and must follow the folder that replaces it. */
void
lock_check_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	char err[1024];
	int rc;

	rc = instance_lock_check(&d->lock_fd, d->in_root, err, sizeof(err));
	if (rc == -EWOULDBLOCK && !d->draining) {
		log_msg(&d->lg, LOG_ERROR, "lock_lost", "%s: stopping", err);
		d->exit_code = EX_TEMPFAIL;
		begin_drain(d, "input folder taken by another daemon");
	}
}

void
watchdog_cb(uv_timer_t *t)
{
	(void)t;
	notify_watchdog();
}
