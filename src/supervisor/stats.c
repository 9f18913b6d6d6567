/*
 * stats: the counters and the status snapshot the log's stats line, the
 * control socket's status and HTTP's /status and /metrics read.
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

#include "control.h"
#include "http.h"
#include "log.h"
#include "outcome.h"
#include "pool.h"
#include "timeutil.h"
#include "watcher.h"
#include "supervisor.h"

void
progress_draw(struct daemon *d)
{
	uint64_t done = d->n_done + d->n_failed + d->n_skipped;
	uint64_t total = d->total_once > done ? d->total_once : done;
	char bar[41];
	size_t i, fill;

	if (!d->progress)
		return;
	fill = total ? (size_t)(done * 40 / total) : 0;
	for (i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = '\0';
	fprintf(stderr, "\r[%s] %llu/%llu  done %llu  failed %llu ", bar,
	    (unsigned long long)done, (unsigned long long)total,
	    (unsigned long long)d->n_done, (unsigned long long)d->n_failed);
	fflush(stderr);
}

/* The counters, from the outcomes: the only writer of n_done, n_failed,
 * n_skipped, the per-minute rates and the recent failures. */
void
stats_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;

	switch (o->kind) {
	case OUTCOME_DONE:
		d->n_done++;
		control_rate_add(&d->rate_done, uv_now(&d->loop), 1);
		d->bytes_out += (uint64_t)o->bytes;
		break;
	case OUTCOME_FAILED:
		d->n_failed++;
		if (o->remembered) {
			d->n_remembered++;
			break;
		}
		control_rate_add(&d->rate_failed, uv_now(&d->loop), 1);
		control_recent_add(&d->recent, time_wall_ms(), o->rel,
		    o->text);
		break;
	case OUTCOME_SKIPPED:
		d->n_skipped++;
		break;
	default:
		break;
	}
}

void
progress_on_outcome(void *ud, const struct outcome *o)
{
	(void)o;
	progress_draw(ud);
}

/* The one status snapshot: the log's stats and shutdown lines, the
 * control socket's status and HTTP's /status, /healthz and /metrics all
 * read this. */
void
status_snapshot(struct daemon *d, struct sup_status *st)
{
	memset(st, 0, sizeof(*st));
	st->done = d->n_done;
	st->failed = d->n_failed;
	st->skipped = d->n_skipped;
	st->ignored = d->n_ignored;
	st->deleted = d->n_deleted;
	st->moved = d->n_moved;
	st->bytes_out = d->bytes_out;
	st->queued = d->q.len;
	st->in_flight = d->busy.len;
	st->started_ms = d->start_ms;
	if (d->pool) {
		st->workers = pool_size(d->pool);
		st->workers_busy = pool_busy_count(d->pool);
		st->workers_idle = pool_idle_count(d->pool);
		st->worker_restarts = pool_restarts(d->pool);
	}
	/* The watches themselves: folders made or removed since the last
	 * walk count at once.  Polling has none; its walk's count stands. */
	st->watched_dirs = d->watched_dirs;
	if (d->w && watcher_watched(d->w) >= 0)
		st->watched_dirs = (uint64_t)watcher_watched(d->w);
	d->queue->stats(d, st);
	/* A worker that has said hello and not died is busy or idle; a
	 * node with no watcher (ROLE=worker) lives on the stream's jobs. */
	st->healthy = (d->w != NULL || d->consume) &&
	    !d->draining && st->workers_busy + st->workers_idle > 0;
}

void
log_stats(struct daemon *d, const char *event, const char *reason)
{
	struct sup_status st;
	struct json_buf *j;

	if ((j = log_begin(&d->lg, LOG_INFO, event)) == NULL)
		return;
	status_snapshot(d, &st);
	if (reason)
		json_str(j, "reason", reason);
	json_int(j, "done", (int64_t)st.done);
	json_int(j, "failed", (int64_t)st.failed);
	json_int(j, "skipped", (int64_t)st.skipped);
	json_int(j, "ignored", (int64_t)st.ignored);
	json_int(j, "queued", (int64_t)st.queued);
	json_int(j, "in_flight", (int64_t)st.in_flight);
	if (d->pool) {
		json_int(j, "workers", st.workers);
		json_int(j, "workers_busy", st.workers_busy);
		json_int(j, "worker_restarts", (int64_t)st.worker_restarts);
	}
	json_int(j, "bytes_out", (int64_t)st.bytes_out);
	json_int(j, "uptime_s", (time_wall_ms() - (int64_t)st.started_ms) /
	    1000);
	log_commit(&d->lg);
}

void
stats_cb(uv_timer_t *t)
{
	log_stats(t->data, "stats", NULL);
}

void
ctl_status(void *ud, struct control_status *st)
{
	struct daemon *d = ud;
	uint64_t now = uv_now(&d->loop);
	struct sup_status s;

	status_snapshot(d, &s);
	st->version = THUMBWATCH_VERSION;
	st->pid = (long)getpid();
	st->mode = d->mode == DAEMON_ONCE ? "once" : "run";
	st->starting = !d->scanned;
	st->draining = d->draining;
	st->started_ms = (int64_t)s.started_ms;
	st->input_dir = d->in_root;
	st->output_dir = d->out_root;
	st->log_file = d->lg.path;
	st->backend = d->w ? watcher_backend_name(d->w) : "";
	st->watched_dirs = s.watched_dirs;
	st->queued = s.queued;
	st->in_flight = s.in_flight;
	st->workers = s.workers;
	st->workers_busy = s.workers_busy;
	st->workers_idle = s.workers_idle;
	st->worker_restarts = s.worker_restarts;
	st->done = s.done;
	st->failed = s.failed;
	st->skipped = s.skipped;
	st->ignored = s.ignored;
	st->deleted = s.deleted;
	st->moved = s.moved;
	st->bytes_out = s.bytes_out;
	st->done_last_min = control_rate_sum(&d->rate_done, now);
	st->failed_last_min = control_rate_sum(&d->rate_failed, now);
	st->recent = &d->recent;
	st->cluster = s.cluster;
}

void
http_stats_cb(void *ud, struct http_stats *st)
{
	struct sup_status s;

	status_snapshot(ud, &s);
	st->done = s.done;
	st->failed = s.failed;
	st->skipped = s.skipped;
	st->ignored = s.ignored;
	st->queued = s.queued;
	st->in_flight = s.in_flight;
	st->bytes_out = s.bytes_out;
	st->started_ms = s.started_ms;
	st->workers = s.workers;
	st->workers_busy = s.workers_busy;
	st->workers_idle = s.workers_idle;
	st->worker_restarts = s.worker_restarts;
	st->cluster = s.cluster;
	st->healthy = s.healthy;
}
