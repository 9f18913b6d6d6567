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
#include "pool.h"
#include "redisq.h"
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

void
log_stats(struct daemon *d, const char *event, const char *reason)
{
	struct json_buf *j;

	if ((j = log_begin(&d->lg, LOG_INFO, event)) == NULL)
		return;
	if (reason)
		json_str(j, "reason", reason);
	json_int(j, "done", (int64_t)d->n_done);
	json_int(j, "failed", (int64_t)d->n_failed);
	json_int(j, "skipped", (int64_t)d->n_skipped);
	json_int(j, "ignored", (int64_t)d->n_ignored);
	json_int(j, "queued", (int64_t)d->q.len);
	json_int(j, "in_flight", (int64_t)d->busy.len);
	if (d->pool) {
		json_int(j, "workers", pool_size(d->pool));
		json_int(j, "workers_busy", pool_busy_count(d->pool));
		json_int(j, "worker_restarts", (int64_t)pool_restarts(d->pool));
	}
	json_int(j, "bytes_out", (int64_t)d->bytes_out);
	json_int(j, "uptime_s", (time_wall_ms() - (int64_t)d->start_ms) / 1000);
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

	st->version = THUMBWATCH_VERSION;
	st->pid = (long)getpid();
	st->mode = d->mode == DAEMON_ONCE ? "once" : "run";
	st->starting = !d->scanned;
	st->draining = d->draining;
	st->started_ms = (int64_t)d->start_ms;
	st->input_dir = d->in_root;
	st->output_dir = d->out_root;
	st->log_file = d->lg.path;
	st->backend = d->w ? watcher_backend_name(d->w) : "";
	/* The watches themselves: folders made or removed since the last
	 * walk count at once.  Polling has none; its walk's count stands. */
	st->watched_dirs = d->watched_dirs;
	if (d->w && watcher_watched(d->w) >= 0)
		st->watched_dirs = (uint64_t)watcher_watched(d->w);
	st->queued = d->q.len;
	st->in_flight = d->busy.len;
	if (d->pool) {
		st->workers = pool_size(d->pool);
		st->workers_busy = pool_busy_count(d->pool);
		st->workers_idle = pool_idle_count(d->pool);
		st->worker_restarts = pool_restarts(d->pool);
	}
	st->done = d->n_done;
	st->failed = d->n_failed;
	st->skipped = d->n_skipped;
	st->ignored = d->n_ignored;
	st->deleted = d->n_deleted;
	st->moved = d->n_moved;
	st->bytes_out = d->bytes_out;
	st->done_last_min = control_rate_sum(&d->rate_done, now);
	st->failed_last_min = control_rate_sum(&d->rate_failed, now);
	st->recent = &d->recent;
	if (d->rq) {
		redisq_stats(d->rq, &d->cst);
		st->cluster = &d->cst;
	}
}

void
http_stats_cb(void *ud, struct http_stats *st)
{
	struct daemon *d = ud;

	st->done = d->n_done;
	st->failed = d->n_failed;
	st->skipped = d->n_skipped;
	st->ignored = d->n_ignored;
	st->queued = d->q.len;
	st->in_flight = d->busy.len;
	st->bytes_out = d->bytes_out;
	st->started_ms = d->start_ms;
	if (d->pool) {
		st->workers = pool_size(d->pool);
		st->workers_busy = pool_busy_count(d->pool);
		st->workers_idle = pool_idle_count(d->pool);
		st->worker_restarts = pool_restarts(d->pool);
	}
	if (d->rq) {
		redisq_stats(d->rq, &d->cst);
		st->cluster = &d->cst;
	}
	/* A worker that has said hello and not died is busy or idle. */
	st->healthy = (d->w != NULL || (d->rq && !d->produce)) &&
	    !d->draining && st->workers_busy + st->workers_idle > 0;
}
