/*
 * intake: a file seen (event, walk, queue, reprocess) is inspected once
 * with stat only, and either queued or given its outcome at once.
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
#include "beneath.h"
#include "ipc.h"
#include "log.h"
#include "pathmap.h"
#include "uptodate.h"
#include "watcher.h"
#include "supervisor.h"

/* An error that says nothing about the file: looked at again later. */
static bool
transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM;
}

enum verdict
inspect(struct daemon *d, const char *rel, struct inspection *in)
{
	char abs[PATH_MAX], out[PATH_MAX], orel[PATH_MAX];
	const struct config *cfg = d->cfg;
	struct uptodate_stat us;
	struct stat rst;
	bool qualify, force, stale = false;
	int i, rc;

	in->error[0] = '\0';
	refresh_roots(d);
	if (pathmap_join(abs, sizeof(abs), d->in_root, rel) < 0) {
		snprintf(in->error, sizeof(in->error), "path too long");
		return V_FAILED;
	}
	if (state_reachable(rel)) {
		snprintf(in->error, sizeof(in->error), "a folder named "
		    STATE_DIR " is reserved for thumbwatch's state: rename it");
		return V_FAILED;
	}
	/* A dropper can swap any folder on the path for a symlink at any
	 * moment: none is followed, even one that stays in the tree, so
	 * what is inspected here is what a worker may read. */
	if ((rc = beneath_lstat(d->in_fd, rel, &in->st)) < 0) {
		if (rc == -ENOENT || rc == -ENOTDIR)
			return V_GONE;
		if (transient(rc))
			return V_RETRY;
		snprintf(in->error, sizeof(in->error), rc == -ELOOP ?
		    "a folder on its path is a symbolic link (not followed)" :
		    rc == -EXDEV ? "not a path inside the input folder" :
		    "cannot stat: %s", strerror(-rc));
		return V_FAILED;
	}
	snprintf(in->src, sizeof(in->src), "%s", abs);
	if (S_ISLNK(in->st.st_mode)) {
		snprintf(in->error, sizeof(in->error), "a symbolic link: not "
		    "followed, whether it leads inside or outside the input "
		    "folder (only regular files are processed)");
		return V_FAILED;
	}
	if (S_ISDIR(in->st.st_mode))
		return V_IGNORE;
	if (!S_ISREG(in->st.st_mode)) {
		snprintf(in->error, sizeof(in->error),
		    "not a regular file (%s)", S_ISFIFO(in->st.st_mode) ?
		    "FIFO" : S_ISSOCK(in->st.st_mode) ? "socket" :
		    S_ISCHR(in->st.st_mode) || S_ISBLK(in->st.st_mode) ?
		    "device" : "special file");
		return V_FAILED;
	}
	if (in->st.st_size == 0) {
		snprintf(in->error, sizeof(in->error), "empty file (0 bytes)");
		return V_FAILED;
	}
	if (cfg->max_file_size > 0 && in->st.st_size > cfg->max_file_size) {
		snprintf(in->error, sizeof(in->error),
		    "file too large: %lld bytes (MAX_FILE_SIZE %lld)",
		    (long long)in->st.st_size, (long long)cfg->max_file_size);
		return V_FAILED;
	}

	if ((rc = siblings(d, rel, NULL, false)) < 0) {
		if (transient(rc))
			return V_RETRY;
		snprintf(in->error, sizeof(in->error), "cannot list its "
		    "folder: %s", strerror(-rc));
		return V_FAILED;
	}
	in->qualified = qualify = rc > 0;
	force = batch_queue_contains(&d->forced, rel);
	if (in->job) {
		memset(in->job, 0, sizeof(*in->job));
		snprintf(in->job->src, sizeof(in->job->src), "%s", in->src);
		snprintf(in->job->in_root, sizeof(in->job->in_root), "%s",
		    d->in_root);
		snprintf(in->job->out_root, sizeof(in->job->out_root), "%s",
		    d->out_root);
		in->job->src_dev = (uint64_t)in->st.st_dev;
		in->job->src_ino = (uint64_t)in->st.st_ino;
		if (fstat(d->in_fd, &rst) == 0) {
			in->job->in_root_dev = (uint64_t)rst.st_dev;
			in->job->in_root_ino = (uint64_t)rst.st_ino;
		}
		if (fstat(d->out_fd, &rst) == 0) {
			in->job->out_root_dev = (uint64_t)rst.st_dev;
			in->job->out_root_ino = (uint64_t)rst.st_ino;
		}
		in->job->max_pixels = cfg->max_pixels;
		in->job->src_mtime_ns = ts_ns(&in->st.st_mtim);
		snprintf(in->job->background, sizeof(in->job->background),
		    "%s", cfg->background);
	}
	for (i = 0; i < cfg->npresets; i++) {
		if (output_rel(d, rel, i, qualify, orel, sizeof(orel)) < 0 ||
		    pathmap_join(out, sizeof(out), d->out_root, orel) < 0) {
			snprintf(in->error, sizeof(in->error),
			    "cannot map to an output path (OUTPUT_TEMPLATE)");
			return V_FAILED;
		}
		output_stat(d, orel, &us);
		if (!force && uptodate_check(ts_ns(&in->st.st_mtim),
		    (int64_t)in->st.st_size, &us, d->epochs[i]) ==
		    UPTODATE_FRESH)
			continue;
		stale = true;
		if (in->job) {
			const struct preset *p = &cfg->presets[i];
			struct ipc_output_spec *o =
			    &in->job->outputs[in->job->noutputs++];
			snprintf(o->path, sizeof(o->path), "%s", out);
			o->width = (uint32_t)p->width;
			o->height = (uint32_t)p->height;
			o->fit = (uint8_t)p->fit;
			snprintf(o->gravity, sizeof(o->gravity), "%s",
			    p->gravity);
			o->format = (uint8_t)p->format;
			o->quality = (uint8_t)p->quality;
			o->progressive = p->progressive;
			o->strip = p->strip;
			o->profile = (uint8_t)p->profile;
		}
	}
	if (!stale)
		return V_FRESH;
	if (failed_before(d, rel, &in->st))
		return V_FAILED_BEFORE;
	return V_WORK;
}

bool
wanted_name(struct daemon *d, const char *rel)
{
	const char *name = base_name(rel);

	return !pathmap_is_temp_name(name) &&
	    pathmap_ext_allowed(name, d->cfg->extensions);
}

/* A name passed over gets a debug line, so a person wondering where a
 * .mp4 or a .CR2 went can see it was seen.  Counted per sighting (an
 * event, a walk): remembering every such name would cost memory without
 * bound.  Temporary names are not counted: they come back under their
 * final name (rsync, uploads). */
void
ignored(struct daemon *d, const char *rel)
{
	bool temp = pathmap_is_temp_name(base_name(rel));
	struct json_buf *j;

	if (!temp)
		d->n_ignored++;
	if ((j = log_begin(&d->lg, LOG_DEBUG, "ignored")) != NULL) {
		json_str(j, "file", rel);
		json_str(j, "reason", temp ? "temporary name (.*, *.tmp, "
		    "*.part, *.crdownload, *~): processed once renamed" :
		    "extension not in EXTENSIONS");
		if (!temp)
			json_str(j, "extensions", d->cfg->extensions);
		log_commit(&d->lg);
	}
}

/* An outcome this node decides without a worker.  With a shared queue
 * and several watchers on one tree each sees the file: only the first to
 * claim this version logs it. */
struct verdict_line {
	struct daemon *d;
	bool failed;
	bool has_st;
	struct stat st;
	char text[512];
	char rel[];
};

static void
verdict_log(struct daemon *d, const char *rel, bool failed,
    const char *text, const struct stat *st)
{
	if (failed)
		outcome_failed(d, rel, text, 0, st);
	else
		outcome_skipped(d, rel, text);
}

static void
verdict_claimed(void *ud, bool won)
{
	struct verdict_line *v = ud;

	if (won)
		verdict_log(v->d, v->rel, v->failed, v->text,
		    v->has_st ? &v->st : NULL);
	else
		log_msg(&v->d->lg, LOG_DEBUG, "duplicate", "%s: %s (logged "
		    "by another watcher)", v->rel, v->text);
	free(v);
}

void
verdict(struct daemon *d, const char *rel, enum watcher_why why,
    bool failed, const char *text, const struct stat *st)
{
	const struct stat *known = st->st_mode ? st : NULL;
	struct verdict_line *v;
	size_t len = strlen(rel);

	if (why == WATCHER_QUEUE ||
	    (v = calloc(1, sizeof(*v) + len + 1)) == NULL) {
		verdict_log(d, rel, failed, text, known);
		return;
	}
	v->d = d;
	v->failed = failed;
	v->has_st = known != NULL;
	if (known)
		v->st = *known;
	snprintf(v->text, sizeof(v->text), "%s", text);
	memcpy(v->rel, rel, len + 1);
	if (d->queue->claim(d, rel, st, verdict_claimed, v) < 0) {
		/* Redis away: a line from each watcher rather than none. */
		verdict_log(d, rel, failed, text, known);
		free(v);
	}
}

void
pickup(struct daemon *d, const char *rel, enum watcher_why why)
{
	struct inspection in;
	enum verdict v;

	if (d->draining)
		return;
	if (d->mode == DAEMON_ONCE && why == WATCHER_EVENT)
		return;
	if (!wanted_name(d, rel)) {
		ignored(d, rel);
		return;
	}
	if (batch_queue_contains(&d->q, rel) ||
	    batch_queue_contains(&d->held, rel))
		return;
	if (batch_queue_contains(&d->busy, rel)) {
		/* Written again while a worker reads it: what the worker makes
		 * may be of the old bytes, whatever the mtime says. */
		batch_queue_push(&d->redo, rel, 0);
		if (why == WATCHER_EVENT)
			batch_queue_push(&d->forced, rel, 0);
		return;
	}
	memset(&in, 0, sizeof(in));
	v = inspect(d, rel, &in);
	if (v == V_RETRY) {
		/* Short of descriptors: nothing is known of the file yet;
		 * the queue decides when it is looked at again. */
		if (why != WATCHER_QUEUE) {
			d->queue->enqueue(d, rel, NULL, 0);
			return;
		}
		v = V_WORK;
	}
	if (why == WATCHER_QUEUE && v != V_WORK && v != V_FAILED) {
		/* A job from the shared queue has had no outcome line yet,
		 * unless another node made it already (a redelivery). */
		if (v == V_GONE)
			outcome_skipped(d, rel, "deleted before it was "
			    "processed");
		else
			log_msg(&d->lg, LOG_DEBUG, "duplicate", "%s: %s", rel,
			    v == V_FRESH ? "already up to date (made by "
			    "another delivery)" : v == V_FAILED_BEFORE ?
			    "failed before with the same contents" :
			    "not a file");
		return;
	}
	switch (v) {
	case V_GONE:
	case V_IGNORE:
	case V_RETRY:
		return;
	case V_FAILED:
		if (why == WATCHER_SCAN && failed_before(d, rel, &in.st)) {
			if (d->mode == DAEMON_ONCE)
				outcome_remembered(d, rel);
			return;
		}
		verdict(d, rel, why, true, in.error, &in.st);
		return;
	case V_FAILED_BEFORE:
		if (why == WATCHER_EVENT)
			verdict(d, rel, why, false, "failed before with the "
			    "same contents (write it again to retry)", &in.st);
		else if (d->mode == DAEMON_ONCE)
			outcome_remembered(d, rel);
		return;
	case V_FRESH:
		if (why == WATCHER_EVENT)
			verdict(d, rel, why, false, "up to date", &in.st);
		else
			d->scan_fresh++;
		return;
	case V_WORK:
		break;
	}
	/* The first walk's backlog goes biggest first (its weight). */
	if (why != WATCHER_QUEUE)
		d->queue->enqueue(d, rel, &in.st, why == WATCHER_SCAN ?
		    (int64_t)in.st.st_size : 0);
	else
		queue_for_workers(d, rel, 0);
}

void
recheck_sibling(struct daemon *d, const char *rel)
{
	pickup(d, rel, WATCHER_SCAN);
}

uint64_t
outcomes(const struct daemon *d)
{
	return d->n_done + d->n_failed + d->n_skipped;
}

/* once's progress total: every file the first walk found that gets an
 * outcome, including those it held back to settle, so the bar does not
 * fill before they come.  A pick-up either queues the file or logs its
 * outcome (nothing leaves the queue meanwhile), which is how it is told
 * from one that found the file up to date or gone. */
void
on_file(void *ud, const char *rel, enum watcher_why why)
{
	struct daemon *d = ud;
	uint64_t before = outcomes(d) + d->q.len;
	bool counted;

	/* once ignores events (it makes what the tree held when it started),
	 * but a file its first walk held to settle and whose writer then
	 * closed it was found by that walk: without this it would be
	 * dropped with no outcome line. */
	if (d->mode == DAEMON_ONCE && why == WATCHER_EVENT &&
	    batch_queue_contains(&d->settle_counted, rel))
		why = WATCHER_SCAN;
	pickup(d, rel, why);
	if (d->mode != DAEMON_ONCE)
		return;
	counted = outcomes(d) + d->q.len > before;
	if (!d->scanned) {
		if (counted)
			d->total_once++;
	} else if (batch_queue_remove(&d->settle_counted, rel) && !counted &&
	    d->total_once > 0) {
		d->total_once--;
		progress_draw(d);
	}
}

void
on_held(void *ud, const char *rel)
{
	struct daemon *d = ud;

	if (d->mode == DAEMON_ONCE && !d->scanned && wanted_name(d, rel) &&
	    batch_queue_push(&d->settle_counted, rel, 0) > 0)
		d->total_once++;
}
