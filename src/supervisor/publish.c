/*
 * outcome: the one place a file's outcome is published.
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
#include "control.h"
#include "http.h"
#include "log.h"
#include "redisq.h"
#include "timeutil.h"
#include "supervisor.h"

void
outcome_failed(struct daemon *d, const char *rel, const char *error,
    int worker, const struct stat *src)
{
	struct json_buf *j;

	d->n_failed++;
	control_rate_add(&d->rate_failed, uv_now(&d->loop), 1);
	control_recent_add(&d->recent, time_wall_ms(), rel, error);
	http_job_failed(d->http, rel, error);
	if ((j = log_begin(&d->lg, LOG_ERROR, "failed")) != NULL) {
		json_str(j, "file", rel);
		json_str(j, "error", error);
		if (worker > 0)
			json_int(j, "worker", worker);
		log_commit(&d->lg);
	}
	if (src)
		mark_failed(d, rel, src, error);
	if (d->mode == DAEMON_ONCE)
		batch_queue_push(&d->failed_names, rel, 0);
	if (d->rq)
		redisq_finish(d->rq, rel, NULL);
	progress_draw(d);
}

/* `once` reports what it knows: a file whose failure is remembered (the
 * same bytes under the same presets) counts as failed, with the reason
 * recorded then, and is not decoded again.  `run` stays quiet about it:
 * each restart's walk would repeat the line. */
void
outcome_remembered(struct daemon *d, const char *rel)
{
	char error[MARKER_ERROR_MAX];
	struct json_buf *j;

	if (batch_queue_contains(&d->failed_names, rel))
		return;		/* a second walk (overflow) found it again */
	d->n_failed++;
	d->n_remembered++;
	batch_queue_push(&d->failed_names, rel, 0);
	marker_error(d, rel, error, sizeof(error));
	if ((j = log_begin(&d->lg, LOG_ERROR, "failed")) != NULL) {
		json_str(j, "file", rel);
		json_str(j, "error", error);
		json_bool(j, "remembered", true);
		log_commit(&d->lg);
	}
	progress_draw(d);
}

void
outcome_skipped(struct daemon *d, const char *rel, const char *reason)
{
	struct json_buf *j;

	d->n_skipped++;
	http_job_skipped(d->http, rel, reason);
	if ((j = log_begin(&d->lg, LOG_INFO, "skipped")) != NULL) {
		json_str(j, "file", rel);
		json_str(j, "reason", reason);
		log_commit(&d->lg);
	}
	if (d->rq)
		redisq_finish(d->rq, rel, NULL);
	progress_draw(d);
}
