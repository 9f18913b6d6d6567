/*
 * daemon: the supervisor's loop.
 *
 * A file's life: picked up (event or walk) -> checked here with stat only
 * (type, size, symlink target, whether its thumbnails are up to date) ->
 * queued once -> dispatched to an idle worker -> one outcome line.  The
 * supervisor never opens an image, so no image can crash it.  Failures are
 * remembered by a marker in OUTPUT_DIR/.thumbwatch/failed carrying the
 * source's mtime, so a restart does not fail the same bytes again.
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
#include "control_server.h"
#include "daemon.h"
#include "failures.h"
#include "fsutil.h"
#include "http.h"
#include "ipc.h"
#include "log.h"
#include "notify.h"
#include "pathmap.h"
#include "pidfile.h"
#include "pool.h"
#include "redisq.h"
#include "timeutil.h"
#include "uptodate.h"
#include "watcher.h"

#define STATE_DIR ".thumbwatch"
#define MARKER_ERROR_MAX 512
#define ONCE_NAMED 10		/* failed files named by once's summary */

struct daemon {
	uv_loop_t loop;
	struct config *cfg;
	enum daemon_mode mode;
	const char *exe;
	daemon_reload_fn reload;
	void *reload_ud;
	struct logger lg;

	struct watcher *w;
	struct pool *pool;
	struct batch_queue q;		/* waiting for a worker */
	struct batch_queue busy;	/* held by a worker */
	struct batch_queue redo;	/* changed again while busy */
	struct batch_queue own_moves;	/* sources we moved/deleted */
	struct batch_queue forced;	/* to be made again even if they look
					 * up to date (changed while busy,
					 * `reprocess`) */
	struct batch_queue held;	/* picked up, waiting for a same-stem
					 * sibling held by a worker */
	struct batch_policy pol;

	char in_root[PATH_MAX];
	char out_root[PATH_MAX];
	/* The trees, held open: every path a dropper can reach is resolved
	 * beneath one of them, following no symlink (beneath.h).  done_fd is
	 * -1 unless SOURCE_ACTION=move; done_path is what it was opened
	 * from, to notice a reload that changes DONE_DIR. */
	int in_fd, out_fd, done_fd;
	char done_path[PATH_MAX];
	int64_t epochs[CONFIG_MAX_PRESETS];

	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t dispatch_timer, stats_timer, drain_timer, retry_timer;
	uv_check_t check;
	bool want_dispatch;

	uint64_t n_done, n_failed, n_skipped, n_deleted, n_moved;
	uint64_t n_ignored;		/* sightings of names with an
					 * extension not in EXTENSIONS (a
					 * rescan sees them again) */
	uint64_t bytes_out;
	uint64_t scan_fresh, scan_fresh_mark;	/* up to date, found by walks */
	uint64_t start_ms;
	uint64_t total_once;		/* files the walk found that get an
					 * outcome (once) */
	struct batch_queue settle_counted;	/* in total_once, settling */
	struct batch_queue failed_names;	/* once: for the summary */
	uint64_t n_remembered;		/* once: failures known from before */
	bool scanned;
	bool draining;
	bool stopped;
	const char *stop_reason;
	bool progress;			/* once, on a TTY */
	int exit_code;

	/* Running as a service (control.h, notify.h, pidfile.h). */
	int lock_fd;			/* flock on INPUT_DIR, or -1 */
	struct pidfile pf;
	struct control_server *ctl;
	struct http_server *http;	/* HTTP_LISTEN, or NULL */
	uv_timer_t watchdog_timer, lock_timer;
	bool ready;			/* READY=1 sent */
	uint64_t watched_dirs;		/* folders found by the last full walk */
	struct control_rate rate_done, rate_failed;
	struct control_recent recent;

	/* QUEUE=redis:// (redisq.h): NULL with the local queue. */
	struct redisq *rq;
	bool produce, consume;		/* ROLE */
	char fp[CLUSTER_FP_LEN + 1];	/* our presets, as nodes compare */
	char consumer[160];
	struct cluster_stats cst;	/* for status and /metrics */
};

static int64_t
ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static const char *
base_name(const char *rel)
{
	const char *s = strrchr(rel, '/');

	return s ? s + 1 : rel;
}

/* ---- the trees ----------------------------------------------------------- */

/* A root folder deleted and made again (the watcher waits for INPUT_DIR
 * to come back) leaves our descriptor on the deleted one: open the new
 * one, by the administrator's path.  OUTPUT_DIR is made again, as the
 * workers' writes always did. */
static void
refresh_roots(struct daemon *d)
{
	struct stat st;
	int fd;

	if (d->in_fd >= 0 && fstat(d->in_fd, &st) == 0 && st.st_nlink == 0 &&
	    (fd = beneath_root(d->in_root)) >= 0) {
		close(d->in_fd);
		d->in_fd = fd;
	}
	if (d->out_fd >= 0 && fstat(d->out_fd, &st) == 0 &&
	    st.st_nlink == 0 && fs_mkdir_p(d->out_root, 0755) == 0 &&
	    (fd = beneath_root(d->out_root)) >= 0) {
		close(d->out_fd);
		d->out_fd = fd;
	}
}

/* ---- same-stem siblings ------------------------------------------------ */

/* Opens the folder below root that holds rel's last component, for
 * reading its entries; *leaf points at that component.  fd or -errno. */
static int
open_parent_dir(int root, const char *rel, const char **leaf)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');

	*leaf = slash ? slash + 1 : rel;
	if (snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 0,
	    rel) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	return beneath_open(root, dir, O_RDONLY | O_DIRECTORY, 0);
}

/* Calls fn for every sibling of rel: a name in its folder with the same
 * stem and an enabled extension, in any case (a.Jpg, a.PNG), and says
 * whether one sorts before rel's name (1): then rel must carry its
 * extension; 0 when none does, -errno when the folder cannot be listed
 * (the caller must not guess names then).  One listing of the folder,
 * opened beneath INPUT_DIR; fn runs after it is closed (it may pick files
 * up, which opens the folder again). */
static int
siblings(struct daemon *d, const char *rel,
    void (*fn)(struct daemon *, const char *), bool later_only)
{
	char crel[PATH_MAX];
	const char *name;
	struct batch_queue found;
	struct batch_item *it;
	struct dirent *de;
	int before = 0, dfd;
	DIR *dp;

	if ((dfd = open_parent_dir(d->in_fd, rel, &name)) < 0)
		return dfd;
	if ((dp = fdopendir(dfd)) == NULL) {
		before = -errno;
		close(dfd);
		return before;
	}
	batch_queue_init(&found);
	while ((de = readdir(dp)) != NULL) {
		if (!pathmap_same_stem(de->d_name, name) ||
		    pathmap_is_temp_name(de->d_name) ||
		    !pathmap_ext_allowed(de->d_name, d->cfg->extensions))
			continue;
		if (strcmp(de->d_name, name) < 0)
			before = 1;
		if (fn == NULL || (later_only && strcmp(de->d_name, name) < 0))
			continue;
		if (snprintf(crel, sizeof(crel), "%.*s%s", (int)(name - rel),
		    rel, de->d_name) < (int)sizeof(crel))
			batch_queue_push(&found, crel, 0);
	}
	closedir(dp);
	while ((it = batch_queue_pop(&found)) != NULL) {
		fn(d, it->rel);
		batch_item_free(it);
	}
	batch_queue_free(&found);
	return before;
}

/* ---- outputs ----------------------------------------------------------- */

/* Whether a path below OUTPUT_DIR (or an input path mirrored there as it
 * is: folders' deletes and moves) lies in the state folder.  The input
 * tree must never reach it, whatever the names and OUTPUT_TEMPLATE: a
 * folder in/.thumbwatch deleted or renamed would take the preset records
 * and failure markers with it.  Case-insensitive for an output tree on a
 * case-insensitive file system. */
static bool
state_reachable(const char *orel)
{
	size_t n = strlen(STATE_DIR);

	while (*orel == '/')
		orel++;
	return strncasecmp(orel, STATE_DIR, n) == 0 &&
	    (orel[n] == '\0' || orel[n] == '/');
}

static int
output_rel(struct daemon *d, const char *rel, int preset, bool qualify,
    char *out, size_t cap)
{
	const struct preset *p = &d->cfg->presets[preset];
	int rc;

	rc = pathmap_output(out, cap, d->cfg->output_template, rel, p->name,
	    config_format_ext(p->format), qualify);
	if (rc == 0 && state_reachable(out)) {
		out[0] = '\0';
		rc = -EXDEV;
	}
	return rc;
}

/* The failure marker's path below OUTPUT_DIR. */
static int
marker_rel(const char *rel, char *out, size_t cap)
{
	return pathmap_join(out, cap, STATE_DIR "/failed", rel);
}

static int64_t
newest_epoch(const struct daemon *d)
{
	int64_t m = 0;
	int i;

	for (i = 0; i < d->cfg->npresets; i++)
		if (d->epochs[i] > m)
			m = d->epochs[i];
	return m;
}

/* The failure marker holds the failed bytes' mtime: same mtime, same
 * verdict, unless a preset changed since. */
static bool
failed_before(struct daemon *d, const char *rel, const struct stat *src)
{
	char path[PATH_MAX];
	struct stat sb;

	if (marker_rel(rel, path, sizeof(path)) < 0 ||
	    beneath_lstat(d->out_fd, path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return false;
	return ts_ns(&sb.st_mtim) == ts_ns(&src->st_mtim) &&
	    ts_ns(&sb.st_ctim) >= newest_epoch(d);
}

/* The marker also holds the error, one line, so a later `once` or
 * `thumbwatch failures` can say why without decoding the file again; its
 * mtime is the source's, its ctime when it failed. */
static void
mark_failed(struct daemon *d, const char *rel, const struct stat *src,
    const char *error)
{
	char path[PATH_MAX];
	struct timespec tv[2];
	size_t len;
	int fd;

	if (marker_rel(rel, path, sizeof(path)) < 0 ||
	    beneath_mkdir_parents(d->out_fd, path, 0755) < 0)
		return;
	fd = beneath_open(d->out_fd, path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NONBLOCK, 0644);
	if (fd < 0)
		return;
	len = error ? strnlen(error, MARKER_ERROR_MAX - 1) : 0;
	if (len > 0 && write(fd, error, len) < 0)
		len = 0;	/* the mtime is what counts; the text is a help */
	tv[0] = tv[1] = src->st_mtim;
	futimens(fd, tv);
	close(fd);
}

/* The error a marker recorded, or a placeholder (markers of older
 * versions are empty). */
static void
marker_error(struct daemon *d, const char *rel, char *out, size_t cap)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t n = 0;
	int fd;

	if (marker_rel(rel, path, sizeof(path)) == 0 &&
	    (fd = beneath_open(d->out_fd, path, O_RDONLY | O_NONBLOCK, 0)) >=
	    0) {
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
			n = failures_reason(fd, out, cap);
		close(fd);
	}
	if (n == 0)
		snprintf(out, cap, "failed before (reason not recorded)");
}

static void
clear_failed(struct daemon *d, const char *rel)
{
	char path[PATH_MAX];

	if (marker_rel(rel, path, sizeof(path)) == 0)
		beneath_unlink(d->out_fd, path, 0);
}

/* ---- outcome lines ----------------------------------------------------- */

static void progress_draw(struct daemon *d);
static void http_stop_daemon(struct daemon *d);

static void
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
static void
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

static void
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

/* ---- inspection -------------------------------------------------------- */

/* What the up-to-date check needs of one thumbnail (orel, below
 * OUTPUT_DIR): its times and the source size a worker recorded on it.
 * Opened beneath the output root and read through the descriptor, so a
 * symlink or a FIFO planted there counts as no thumbnail. */
static void
output_stat(struct daemon *d, const char *orel, struct uptodate_stat *us)
{
	char buf[32];
	struct stat st;
	ssize_t n;
	int fd;

	memset(us, 0, sizeof(*us));
	us->src_size = -1;
	fd = beneath_open(d->out_fd, orel, O_RDONLY | O_NONBLOCK | O_NOCTTY,
	    0);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		us->exists = true;
		us->mtime_ns = ts_ns(&st.st_mtim);
		us->ctime_ns = ts_ns(&st.st_ctim);
		n = fgetxattr(fd, UPTODATE_XATTR_SIZE, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			us->src_size = strtoll(buf, NULL, 10);
		}
	}
	close(fd);
}

/* Whether orel (below OUTPUT_DIR) is a regular file, without following a
 * symlink at any level. */
static bool
output_exists(struct daemon *d, const char *orel, struct stat *st)
{
	struct stat sb;

	if (st == NULL)
		st = &sb;
	return beneath_lstat(d->out_fd, orel, st) == 0 && S_ISREG(st->st_mode);
}

/* V_RETRY: short of descriptors or memory, nothing known of the file. */
enum verdict { V_GONE, V_IGNORE, V_FAILED, V_FRESH, V_FAILED_BEFORE, V_WORK,
    V_RETRY };

/* An error that says nothing about the file: looked at again later. */
static bool
transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM;
}

struct inspection {
	char src[PATH_MAX];	/* what the worker opens */
	struct stat st;
	bool qualified;		/* outputs carry the source extension */
	char error[512];
	struct ipc_job *job;	/* filled when asked */
};

static enum verdict
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
		}
	}
	if (!stale)
		return V_FRESH;
	if (failed_before(d, rel, &in->st))
		return V_FAILED_BEFORE;
	return V_WORK;
}

/* ---- pick-up and dispatch ---------------------------------------------- */

static void
want_dispatch(struct daemon *d)
{
	d->want_dispatch = true;
}

static bool
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
static void
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

static void
verdict(struct daemon *d, const char *rel, enum watcher_why why,
    bool failed, const char *text, const struct stat *st)
{
	const struct stat *known = st->st_mode ? st : NULL;
	struct verdict_line *v;
	size_t len = strlen(rel);

	if (d->rq == NULL || why == WATCHER_QUEUE ||
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
	if (redisq_claim(d->rq, rel, (int64_t)st->st_size,
	    ts_ns(&st->st_mtim), verdict_claimed, v) < 0) {
		/* Redis away: a line from each watcher rather than none. */
		verdict_log(d, rel, failed, text, known);
		free(v);
	}
}

static void retry_cb(uv_timer_t *t);

static void
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
		/* Short of descriptors: nothing is known of the file yet.
		 * Queued here, it is inspected again when a worker is free;
		 * for the shared stream a later walk finds it. */
		if (d->rq && why != WATCHER_QUEUE) {
			if (!uv_is_active((uv_handle_t *)&d->retry_timer))
				uv_timer_start(&d->retry_timer, retry_cb,
				    (uint64_t)d->cfg->retry_interval_s * 1000,
				    0);
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
	if (d->rq && why != WATCHER_QUEUE) {
		/* To the shared stream; a worker node logs the outcome.  Away:
		 * the rescan when Redis is back adds it. */
		bool force = batch_queue_remove(&d->forced, rel);
		if (d->produce)
			redisq_enqueue(d->rq, rel, (int64_t)in.st.st_size,
			    ts_ns(&in.st.st_mtim), force);
		return;
	}
	if (batch_queue_push_weighted(&d->q, rel, uv_now(&d->loop),
	    why == WATCHER_SCAN ? (int64_t)in.st.st_size : 0) > 0) {
		http_job_queued(d->http, rel);
		want_dispatch(d);
	}
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
static void
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

/* A file about to take the plain names (it sorts first among its
 * siblings) moves a later sibling's thumbnails found under them to that
 * sibling's own names first, when they are still its (the source's mtime
 * and size on them): the worker's rename then replaces nothing another
 * file owns, and the sibling is not made again. */
static void
requalify_sibling(struct daemon *d, const char *crel)
{
	char ofrom[PATH_MAX], oto[PATH_MAX];
	struct uptodate_stat us;
	struct stat st;
	int i;

	if (batch_queue_contains(&d->busy, crel) ||
	    beneath_lstat(d->in_fd, crel, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	for (i = 0; i < d->cfg->npresets; i++) {
		if (output_rel(d, crel, i, false, ofrom, sizeof(ofrom)) < 0 ||
		    output_rel(d, crel, i, true, oto, sizeof(oto)) < 0)
			continue;
		output_stat(d, ofrom, &us);
		if (us.exists && us.mtime_ns == ts_ns(&st.st_mtim) &&
		    us.src_size == (int64_t)st.st_size)
			beneath_rename(d->out_fd, ofrom, d->out_fd, oto, 0);
	}
}

static void dispatch(struct daemon *d);

static void
dispatch_timer_cb(uv_timer_t *t)
{
	dispatch(t->data);
}

static void
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
				http_job_processing(d->http, it->rel);
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

/* Calls fn with the path below OUTPUT_DIR of each of rel's thumbnails
 * as they are named when qualify says so. */
static void
each_output(struct daemon *d, const char *rel, bool qualify,
    void (*fn)(struct daemon *, const char *))
{
	char orel[PATH_MAX];
	int i;

	for (i = 0; i < d->cfg->npresets; i++)
		if (output_rel(d, rel, i, qualify, orel, sizeof(orel)) == 0)
			fn(d, orel);
}

static void
unlink_output(struct daemon *d, const char *orel)
{
	beneath_unlink(d->out_fd, orel, 0);
}

/* A worker killed while writing leaves ".<name>.tw-XXXXXX" (thumb.c's
 * temp name, with at most 200 bytes of the name) beside the thumbnail. */
static void
unlink_temps_of(struct daemon *d, const char *orel)
{
	char prefix[NAME_MAX + 8];
	const char *name;
	struct dirent *de;
	size_t plen;
	DIR *dp;
	int dfd;

	if ((dfd = open_parent_dir(d->out_fd, orel, &name)) < 0)
		return;
	if ((dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	plen = (size_t)snprintf(prefix, sizeof(prefix), ".%.200s.tw-", name);
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, prefix, plen) == 0 &&
		    strlen(de->d_name) == plen + 6)
			unlinkat(dfd, de->d_name, 0);
	closedir(dp);
}

/* ---- results ----------------------------------------------------------- */

/* Moves rel's thumbnails from the names for qualification `from` to the
 * names for `to`, below OUTPUT_DIR. */
static void
rename_outputs(struct daemon *d, const char *rel, bool from, bool to)
{
	char ofrom[PATH_MAX], oto[PATH_MAX];
	int i;

	for (i = 0; i < d->cfg->npresets; i++)
		if (output_rel(d, rel, i, from, ofrom, sizeof(ofrom)) == 0 &&
		    output_rel(d, rel, i, to, oto, sizeof(oto)) == 0 &&
		    output_exists(d, ofrom, NULL))
			beneath_rename(d->out_fd, ofrom, d->out_fd, oto, 0);
}

static void maybe_finish(struct daemon *d);

static void
recheck_sibling(struct daemon *d, const char *rel)
{
	pickup(d, rel, WATCHER_SCAN);
}

/* (Re)opens DONE_DIR, an administrator's path, when SOURCE_ACTION=move
 * needs it and it is not open yet or was changed by a reload. */
static int
done_root(struct daemon *d)
{
	int rc, fd;

	if (d->done_fd >= 0 && strcmp(d->done_path, d->cfg->done_dir) == 0)
		return d->done_fd;
	if ((rc = fs_mkdir_p(d->cfg->done_dir, 0755)) < 0)
		return rc;
	if ((fd = beneath_root(d->cfg->done_dir)) < 0)
		return fd;
	if (d->done_fd >= 0)
		close(d->done_fd);
	d->done_fd = fd;
	snprintf(d->done_path, sizeof(d->done_path), "%s", d->cfg->done_dir);
	return fd;
}

/* Moves the source into DONE_DIR from its folder, held open, and only
 * when the name still holds the file that was processed. */
static int
move_source(struct daemon *d, const struct batch_item *it)
{
	const char *leaf, *dleaf;
	struct stat st;
	int sfd, dfd, droot, rc = 0;

	if ((droot = done_root(d)) < 0)
		return droot;
	if ((rc = beneath_mkdir_parents(droot, it->rel, 0755)) < 0)
		return rc;
	if ((sfd = beneath_parent(d->in_fd, it->rel, &leaf)) < 0)
		return sfd;
	if ((dfd = beneath_parent(droot, it->rel, &dleaf)) < 0) {
		close(sfd);
		return dfd;
	}
	if (fstatat(sfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == -1)
		rc = -errno;
	else if ((uint64_t)st.st_dev != it->src_dev ||
	    (uint64_t)st.st_ino != it->src_ino)
		rc = -ESTALE;
	else if (renameat(sfd, leaf, dfd, dleaf) == -1)
		rc = -errno;
	close(sfd);
	close(dfd);
	return rc;
}

static void
apply_source_action(struct daemon *d, const struct batch_item *it)
{
	const char *rel = it->rel;
	int rc;

	if (d->cfg->source_action == ACTION_KEEP)
		return;
	/* Our own move/delete must not mirror into removing the thumbnails
	 * we just made. */
	batch_queue_push(&d->own_moves, rel, 0);
	if (d->cfg->source_action == ACTION_DELETE)
		rc = beneath_unlink_same(d->in_fd, rel, (dev_t)it->src_dev,
		    (ino_t)it->src_ino);
	else
		rc = move_source(d, it);
	if (rc < 0) {
		batch_queue_remove(&d->own_moves, rel);
		log_msg(&d->lg, LOG_WARN, "source_action_failed",
		    "%s: could not %s the source: %s", rel,
		    d->cfg->source_action == ACTION_DELETE ? "delete" : "move",
		    rc == -ESTALE ? "the name now holds another file (left "
		    "alone)" : rc == -ELOOP ? "a folder on its path is a "
		    "symbolic link (not followed)" : strerror(-rc));
	}
}

static void
retry_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (d->w && !d->draining)
		watcher_rescan(d->w, "retry after write failure");
}

static void
on_result(void *ud, int worker, struct batch_item *it,
    const struct ipc_result *res)
{
	struct daemon *d = ud;
	struct json_buf *j;
	char orel[PATH_MAX];
	const char *outs[IPC_MAX_OUTPUTS];
	char outbuf[IPC_MAX_OUTPUTS][PATH_MAX];
	struct stat st;
	bool qualify;
	size_t n = 0;
	int i;

	batch_queue_remove(&d->busy, it->rel);
	refresh_roots(d);
	if (res->status == IPC_OK && d->cfg->mirror_deletes &&
	    beneath_lstat(d->in_fd, it->rel, &st) == -ENOENT) {
		/* Deleted while a worker made its thumbnails: the delete
		 * already mirrored what existed then; these came after. */
		each_output(d, it->rel, it->qualified, unlink_output);
		outcome_skipped(d, it->rel, "deleted while it was processed");
	} else if (res->status == IPC_OK) {
		d->n_done++;
		control_rate_add(&d->rate_done, uv_now(&d->loop), 1);
		d->bytes_out += (uint64_t)res->out_bytes;
		clear_failed(d, it->rel);
		/* A sibling came or went while the worker had the file (the
		 * newcomer waited in held): what it made moves to the names
		 * the rule now gives it, names only this file can own. */
		i = siblings(d, it->rel, NULL, false);
		qualify = i < 0 ? it->qualified : i > 0;
		if (qualify != it->qualified)
			rename_outputs(d, it->rel, it->qualified, qualify);
		/* Name the outputs as they now stand on disk. */
		for (i = 0; i < d->cfg->npresets && n < IPC_MAX_OUTPUTS; i++)
			if (output_rel(d, it->rel, i, qualify, orel,
			    sizeof(orel)) == 0 && output_exists(d, orel, NULL)) {
				snprintf(outbuf[n], sizeof(outbuf[n]), "%s", orel);
				outs[n] = outbuf[n];
				n++;
			}
		http_job_done(d->http, it->rel, outs, n, res->ms);
		if ((j = log_begin(&d->lg, LOG_INFO, "done")) != NULL) {
			json_str(j, "file", it->rel);
			json_strv(j, "outputs", outs, n);
			json_int(j, "ms", res->ms);
			json_int(j, "worker", worker + 1);
			json_int(j, "width", res->src_width);
			json_int(j, "height", res->src_height);
			json_int(j, "bytes", res->out_bytes);
			log_commit(&d->lg);
		}
		/* Acknowledged once the outcome is in the log. */
		if (d->rq)
			redisq_finish(d->rq, it->rel, NULL);
		progress_draw(d);
		/* We now own the plain names: a later-sorting sibling that had
		 * them must be made again under its qualified names. */
		if (!qualify)
			siblings(d, it->rel, recheck_sibling, true);
		if (!batch_queue_contains(&d->redo, it->rel))
			apply_source_action(d, it);
	} else if (res->status == IPC_REPLACED) {
		/* Another file took the name after it was inspected: that
		 * version ends unread, and the file there now is inspected
		 * afresh (its own size and type) and made. */
		outcome_skipped(d, it->rel, "replaced before it was read; the "
		    "file now there is made next");
		batch_queue_push(&d->redo, it->rel, 0);
	} else if (res->status == IPC_FAILED_OUTPUT) {
		/* Not the image's fault: not remembered as failed, and tried
		 * again once the disk may have room (or the folder rights). */
		outcome_failed(d, it->rel, res->error, worker + 1, NULL);
		if (!uv_is_active((uv_handle_t *)&d->retry_timer))
			uv_timer_start(&d->retry_timer, retry_cb,
			    (uint64_t)d->cfg->retry_interval_s * 1000, 0);
	} else {
		struct inspection in;
		memset(&in, 0, sizeof(in));
		inspect(d, it->rel, &in);
		outcome_failed(d, it->rel, res->error, worker + 1,
		    in.st.st_mode ? &in.st : NULL);
	}
	/* Changed while a worker had it: made again here, also on a worker
	 * node, where this one outcome ended every entry held for it. */
	if (batch_queue_remove(&d->redo, it->rel))
		pickup(d, it->rel, d->consume ? WATCHER_QUEUE : WATCHER_SCAN);
	batch_item_free(it);
	release_held(d);
	want_dispatch(d);
	maybe_finish(d);
}

static void
on_lost(void *ud, int worker, struct batch_item *culprit,
    struct batch_item *rest, const char *why)
{
	struct daemon *d = ud;
	struct batch_item *it, *next, *stack[4096];
	char msg[512];
	size_t n = 0;

	(void)worker;
	for (it = rest; it; it = next) {
		next = it->next;
		batch_queue_remove(&d->busy, it->rel);
		it->next = NULL;
		/* Requeue at the head in the original order. */
		if (!d->draining && n < sizeof(stack) / sizeof(stack[0]))
			stack[n++] = it;
		else
			batch_item_free(it);
	}
	while (n > 0)
		batch_queue_requeue(&d->q, stack[--n]);
	if (culprit) {
		batch_queue_remove(&d->busy, culprit->rel);
		each_output(d, culprit->rel, culprit->qualified,
		    unlink_temps_of);
		culprit->attempts++;
		if (d->draining) {
			batch_item_free(culprit);
		} else if (culprit->attempts >= 2) {
			struct inspection in;
			memset(&in, 0, sizeof(in));
			inspect(d, culprit->rel, &in);
			snprintf(msg, sizeof(msg), "poison: a worker %s on this "
			    "file twice; not retried", why);
			if (d->rq)
				redisq_finish(d->rq, culprit->rel, msg);
			outcome_failed(d, culprit->rel, msg, worker + 1,
			    in.st.st_mode ? &in.st : NULL);
			batch_item_free(culprit);
		} else {
			batch_queue_requeue(&d->q, culprit);
		}
	}
	release_held(d);
	want_dispatch(d);
	maybe_finish(d);
}

static void
on_idle(void *ud)
{
	struct daemon *d = ud;

	want_dispatch(d);
	if (d->rq)
		redisq_poke(d->rq);
}

/* ---- deletes and moves ------------------------------------------------- */

/* Removes name in folder dfd and, for a folder, everything below it.
 * Each level is opened from the one above with O_NOFOLLOW, so a folder
 * swapped for a symlink mid-way is unlinked as a link, never entered. */
static int
rm_at(int dfd, const char *name, int depth)
{
	struct dirent *de;
	struct stat sb;
	DIR *dir;
	int fd;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(dfd, name, 0) == -1 ? -errno : 0;
	if (depth > 64)
		return -ELOOP;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(dir)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rm_at(fd, de->d_name, depth + 1);
	closedir(dir);
	return unlinkat(dfd, name, AT_REMOVEDIR) == -1 ? -errno : 0;
}

/* Removes orel (below OUTPUT_DIR) and everything below it. */
static int
rm_tree(struct daemon *d, const char *orel)
{
	const char *leaf;
	int dfd, rc;

	if ((dfd = beneath_parent(d->out_fd, orel, &leaf)) < 0)
		return dfd;
	rc = rm_at(dfd, leaf, 0);
	close(dfd);
	return rc;
}

static void
on_delete(void *ud, const char *rel, bool is_dir)
{
	struct daemon *d = ud;
	char orel[PATH_MAX], mrel[PATH_MAX];
	const char *outs[IPC_MAX_OUTPUTS];
	char outbuf[IPC_MAX_OUTPUTS][PATH_MAX];
	struct json_buf *j;
	struct stat sb;
	size_t n = 0;
	bool qualify;
	int i;

	if (batch_queue_remove(&d->own_moves, rel))
		return;
	refresh_roots(d);
	batch_queue_remove(&d->forced, rel);
	if (batch_queue_remove(&d->q, rel) || batch_queue_remove(&d->held, rel))
		outcome_skipped(d, rel, "deleted before it was processed");
	if (!d->cfg->mirror_deletes || d->mode == DAEMON_ONCE)
		return;
	if (is_dir || (beneath_lstat(d->out_fd, rel, &sb) == 0 &&
	    S_ISDIR(sb.st_mode))) {
		/* The folder is mirrored at the same path below OUTPUT_DIR,
		 * which must not be the state folder. */
		if (!state_reachable(rel) && rm_tree(d, rel) == 0 &&
		    (j = log_begin(&d->lg, LOG_INFO, "deleted")) != NULL) {
			json_str(j, "dir", rel);
			log_commit(&d->lg);
		}
		if (marker_rel(rel, mrel, sizeof(mrel)) == 0)
			rm_tree(d, mrel);
		return;
	}
	if (!wanted_name(d, rel))
		return;
	/* Without the listing the names are a guess, and a wrong guess
	 * removes a sibling's thumbnail: leave them. */
	if ((i = siblings(d, rel, NULL, false)) < 0) {
		log_msg(&d->lg, LOG_WARN, "mirror_failed", "%s: deleted, but "
		    "its folder cannot be listed (%s): thumbnails left",
		    rel, strerror(-i));
		return;
	}
	qualify = i > 0;
	for (i = 0; i < d->cfg->npresets && n < IPC_MAX_OUTPUTS; i++) {
		if (output_rel(d, rel, i, qualify, orel, sizeof(orel)) < 0)
			continue;
		if (beneath_unlink(d->out_fd, orel, 0) == 0) {
			snprintf(outbuf[n], sizeof(outbuf[n]), "%s", orel);
			outs[n] = outbuf[n];
			n++;
		}
	}
	clear_failed(d, rel);
	d->n_deleted++;
	if (n > 0 && (j = log_begin(&d->lg, LOG_INFO, "deleted")) != NULL) {
		json_str(j, "file", rel);
		json_strv(j, "outputs", outs, n);
		log_commit(&d->lg);
	}
	/* The plain names may now belong to a sibling. */
	siblings(d, rel, recheck_sibling, false);
}

/* Moves one source's thumbnails that are still valid; a missing or stale
 * one is simply made again by the pick-up that follows. */
static size_t
move_outputs(struct daemon *d, const char *from, const char *to,
    const struct stat *src)
{
	char ofrom[PATH_MAX], oto[PATH_MAX];
	bool qf, qt;
	struct stat sb;
	size_t moved = 0;
	int i;

	/* from no longer exists: its qualification is judged as if it did,
	 * against its old siblings (still in place). */
	if ((i = siblings(d, from, NULL, false)) < 0)
		return 0;
	qf = i > 0;
	if ((i = siblings(d, to, NULL, false)) < 0)
		return 0;
	qt = i > 0;
	for (i = 0; i < d->cfg->npresets; i++) {
		if (output_rel(d, from, i, qf, ofrom, sizeof(ofrom)) < 0 ||
		    output_rel(d, to, i, qt, oto, sizeof(oto)) < 0)
			continue;
		if (!output_exists(d, ofrom, &sb))
			continue;
		if (ts_ns(&sb.st_mtim) != ts_ns(&src->st_mtim) ||
		    ts_ns(&sb.st_ctim) < d->epochs[i]) {
			beneath_unlink(d->out_fd, ofrom, 0);
			continue;
		}
		if (beneath_mkdir_parents(d->out_fd, oto, 0755) == 0 &&
		    beneath_rename(d->out_fd, ofrom, d->out_fd, oto, 0) == 0)
			moved++;
	}
	return moved;
}

static void
on_move(void *ud, const char *from, const char *to, bool is_dir)
{
	struct daemon *d = ud;
	char mrel[PATH_MAX];
	struct json_buf *j;
	struct stat st;
	size_t moved = 0;
	bool was_queued;

	if (d->mode == DAEMON_ONCE)
		return;
	if (batch_queue_remove(&d->own_moves, from))
		return;
	if (is_dir) {
		/* Mirrored at the same paths below OUTPUT_DIR: neither end may
		 * be the state folder (mv in/.thumbwatch in/pub would expose
		 * it, the reverse would bury it). */
		if (d->cfg->mirror_moves && !state_reachable(from) &&
		    !state_reachable(to) &&
		    beneath_lstat(d->out_fd, from, &st) == 0 &&
		    S_ISDIR(st.st_mode) &&
		    beneath_mkdir_parents(d->out_fd, to, 0755) == 0 &&
		    beneath_rename(d->out_fd, from, d->out_fd, to, 0) == 0 &&
		    (j = log_begin(&d->lg, LOG_INFO, "moved")) != NULL) {
			json_str(j, "from", from);
			json_str(j, "to", to);
			json_bool(j, "dir", 1);
			log_commit(&d->lg);
		} else if (d->cfg->mirror_deletes) {
			on_delete(d, from, true);
		}
		if (marker_rel(from, mrel, sizeof(mrel)) == 0)
			rm_tree(d, mrel);
		/* Whatever was not moved (or queued) is found by a walk. */
		watcher_rescan(d->w, "folder moved");
		return;
	}
	/* rsync and uploaders write a temp name and rename it: that is a new
	 * file arriving, not a move. */
	if (!wanted_name(d, from)) {
		pickup(d, to, WATCHER_EVENT);
		return;
	}
	was_queued = batch_queue_remove(&d->q, from) > 0 ||
	    batch_queue_remove(&d->held, from) > 0;
	if (!wanted_name(d, to)) {
		if (was_queued)
			outcome_skipped(d, from, "renamed to an ignored name");
		on_delete(d, from, false);
		return;
	}
	if (!d->cfg->mirror_moves) {
		on_delete(d, from, false);
		pickup(d, to, WATCHER_EVENT);
		return;
	}
	if (beneath_lstat(d->in_fd, to, &st) == 0 && S_ISREG(st.st_mode))
		moved = move_outputs(d, from, to, &st);
	clear_failed(d, from);
	d->n_moved++;
	if ((j = log_begin(&d->lg, LOG_INFO, "moved")) != NULL) {
		json_str(j, "from", from);
		json_str(j, "to", to);
		json_int(j, "outputs", (int64_t)moved);
		log_commit(&d->lg);
	}
	/* Fills in whatever could not be moved; silent when nothing is owed,
	 * an outcome line when the file was waiting under its old name. */
	pickup(d, to, was_queued ? WATCHER_EVENT : WATCHER_SCAN);
	siblings(d, from, recheck_sibling, false);
}

static uint64_t
outcomes(const struct daemon *d)
{
	return d->n_done + d->n_failed + d->n_skipped;
}

/* once's progress total: every file the first walk found that gets an
 * outcome, including those it held back to settle, so the bar does not
 * fill before they come.  A pick-up either queues the file or logs its
 * outcome (nothing leaves the queue meanwhile), which is how it is told
 * from one that found the file up to date or gone. */
static void
on_file(void *ud, const char *rel, enum watcher_why why)
{
	struct daemon *d = ud;
	uint64_t before = outcomes(d) + d->q.len;
	bool counted;

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

static void
on_held(void *ud, const char *rel)
{
	struct daemon *d = ud;

	if (d->mode == DAEMON_ONCE && !d->scanned && wanted_name(d, rel) &&
	    batch_queue_push(&d->settle_counted, rel, 0) > 0)
		d->total_once++;
}

/* Ready: the first walk is done and every watch is in place, so a file
 * dropped from now on is seen.  Said once to systemd, to the log (the
 * line scripts and the README wait for) and to a person at a terminal. */
static void
announce_ready(struct daemon *d, const char *msg)
{
	const struct config *cfg = d->cfg;
	struct json_buf *j;

	d->ready = true;
	notify_ready(msg);
	if ((j = log_begin(&d->lg, LOG_INFO, "ready")) != NULL) {
		json_str(j, "input_dir", d->in_root);
		json_str(j, "output_dir", d->out_root);
		json_str(j, "log_file", d->lg.path);
		json_int(j, "dirs", d->w && watcher_watched(d->w) >= 0 ?
		    watcher_watched(d->w) : (int64_t)d->watched_dirs);
		json_int(j, "queued", (int64_t)d->q.len);
		log_commit(&d->lg);
	}
	/* As the user gave them (data/input, not /home/...): what to type
	 * in the next terminal. */
	if (d->lg.tty && isatty(STDERR_FILENO))
		fprintf(stderr, "thumbwatch: watching %s \u2192 %s, log %s\n",
		    cfg->input_dir, cfg->output_dir,
		    strcmp(cfg->log_file, "-") ? cfg->log_file :
		    "on standard output");
}

static void
on_scan_done(void *ud, const struct watcher_scan_stats *st)
{
	struct daemon *d = ud;
	struct json_buf *j;

	if ((j = log_begin(&d->lg, LOG_INFO, "scan")) != NULL) {
		json_str(j, "reason", st->reason);
		json_int(j, "dirs", (int64_t)st->dirs);
		json_int(j, "files", (int64_t)st->files);
		json_int(j, "queued", (int64_t)d->q.len);
		json_int(j, "uptodate",
		    (int64_t)(d->scan_fresh - d->scan_fresh_mark));
		json_int(j, "settling", (int64_t)st->settling);
		json_int(j, "ms", (int64_t)st->ms);
		log_commit(&d->lg);
	}
	d->scan_fresh_mark = d->scan_fresh;
	/* The first walk's backlog, biggest files first (nothing else is
	 * queued yet): in listing order a large image found last keeps one
	 * worker busy while the others idle (measured: 12% of a 72-image
	 * run).  Later walks leave event-queued files their place. */
	if (!d->scanned)
		batch_queue_sort_heaviest(&d->q);
	d->scanned = true;
	d->watched_dirs = st->dirs;
	/* systemd counts the service as started only now: every watch is in
	 * place and the tree has been walked once. */
	if (d->mode == DAEMON_RUN && !d->ready && !d->draining) {
		char msg[160];
		snprintf(msg, sizeof(msg), "watching %llu folders; %zu files "
		    "queued", (unsigned long long)st->dirs, d->q.len);
		announce_ready(d, msg);
	}
	progress_draw(d);
	want_dispatch(d);
	maybe_finish(d);
}

/* ---- progress, stats, shutdown ----------------------------------------- */

static void
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

static void
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

static void
stats_cb(uv_timer_t *t)
{
	log_stats(t->data, "stats", NULL);
}

static void
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

	pool_free(d->pool);
	d->pool = NULL;
	if (d->w) {
		watcher_stop(d->w);
		d->w = NULL;
	}
	/* Whatever is left (signals, timers) closes now, once the queue's
	 * last acknowledgements are out; the loop ends. */
	if (d->rq == NULL)
		uv_walk(&d->loop, close_walk, NULL);
}

static void rq_gone(void *ud);

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
	if (d->rq)
		redisq_close(d->rq, rq_gone, d);
	if (d->pool)
		pool_stop(d->pool, 2000, pool_gone);
	else
		pool_gone(d);
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

static void
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

static void
check_cb(uv_check_t *h)
{
	struct daemon *d = h->data;

	/* One dispatch per loop turn: a burst of events becomes batches
	 * instead of one message per file. */
	if (d->want_dispatch)
		dispatch(d);
	maybe_finish(d);
}

/* ---- presets' epochs --------------------------------------------------- */

/* A preset's state file holds its fingerprint; it is rewritten (new
 * inode, new ctime) only when the definition changes, and its ctime is the
 * moment from which thumbnails count as made under this definition. */
static void
load_epochs(struct daemon *d)
{
	const char *dir = STATE_DIR "/presets";
	char path[PATH_MAX], tmp[PATH_MAX], fp[512], old[512];
	struct stat sb;
	ssize_t n;
	int i, fd, rc;

	beneath_mkdirs(d->out_fd, dir, 0755);
	for (i = 0; i < d->cfg->npresets; i++) {
		d->epochs[i] = 0;
		config_preset_fingerprint(&d->cfg->presets[i], fp, sizeof(fp));
		/* Flattening colour changes a JPEG's pixels too. */
		if (d->cfg->presets[i].format == FORMAT_JPEG &&
		    strlen(fp) + strlen(d->cfg->background) + 5 < sizeof(fp)) {
			strcat(fp, " bg=");
			strcat(fp, d->cfg->background);
		}
		if (pathmap_join(path, sizeof(path), dir,
		    d->cfg->presets[i].name) < 0)
			continue;
		n = 0;
		if ((fd = beneath_open(d->out_fd, path, O_RDONLY | O_NONBLOCK,
		    0)) >= 0) {
			n = read(fd, old, sizeof(old) - 1);
			close(fd);
		}
		old[n > 0 ? n : 0] = '\0';
		if (strcmp(old, fp) != 0) {
			if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >=
			    (int)sizeof(tmp))
				continue;
			fd = beneath_open(d->out_fd, tmp, O_WRONLY | O_CREAT |
			    O_TRUNC | O_NONBLOCK, 0644);
			rc = fd < 0 ? fd : fs_write_all(fd, fp, strlen(fp));
			if (fd >= 0 && close(fd) == -1 && rc == 0)
				rc = -errno;
			if (rc == 0)
				rc = beneath_rename(d->out_fd, tmp, d->out_fd,
				    path, 0);
			if (rc < 0) {
				log_msg(&d->lg, LOG_ERROR, "error", "cannot "
				    "record preset %s in %s/%s: %s",
				    d->cfg->presets[i].name, d->out_root, dir,
				    strerror(-rc));
				continue;
			}
			if (old[0])
				log_msg(&d->lg, LOG_INFO, "preset_changed",
				    "preset %s changed: its thumbnails are "
				    "made again", d->cfg->presets[i].name);
		}
		if (beneath_lstat(d->out_fd, path, &sb) == 0)
			d->epochs[i] = ts_ns(&sb.st_ctim);
	}
}

/* ---- stale temps --------------------------------------------------------- */

/* A worker killed mid-write leaves ".<name>.tw-XXXXXX" behind (the name
 * thumb.c gives its temps); nothing else in the output tree looks so. */
static bool
is_stale_temp(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' && n > 11 && memcmp(name + n - 10, ".tw-", 4) == 0;
}

/* dfd is a folder of the output tree, opened for reading, consumed.
 * Sub-folders are opened from it with O_NOFOLLOW: a symlink planted in
 * an output tree nested in the input tree is never entered. */
static uint64_t
clean_temps(int dfd, int depth, time_t older)
{
	struct stat sb;
	struct dirent *de;
	uint64_t n = 0;
	DIR *dp;
	int fd;

	if (depth > 64 || (dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(dp)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (depth == 0 && !strcmp(de->d_name, STATE_DIR)))
			continue;
		if (de->d_type == DT_DIR) {
			fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				n += clean_temps(fd, depth + 1, older);
		} else if (is_stale_temp(de->d_name) && (older == 0 ||
		    (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    sb.st_mtime < older)) && unlinkat(dfd, de->d_name, 0) == 0)
			n++;
	}
	closedir(dp);
	return n;
}

/* ---- signals and reload ------------------------------------------------ */

static void
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
	if (d->rq)
		cluster_fingerprint(c, d->fp);
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

static void
signal_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (signum == SIGHUP)
		reload(d);
	else
		begin_drain(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- control socket and watchdog --------------------------------------- */

static void
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

/* The input-relative name of a path sent by `thumbwatch reprocess`
 * (absolute, or relative to INPUT_DIR).  0 for a file, 1 for a folder,
 * or -errno with msg. */
static int
ctl_rel(struct daemon *d, const char *path, char *rel, size_t cap,
    char *msg, size_t msglen)
{
	char abs[PATH_MAX], real[PATH_MAX];
	struct stat sb;
	int rc;

	if (path[0] == '/' ? snprintf(abs, sizeof(abs), "%s", path) >=
	    (int)sizeof(abs) : pathmap_join(abs, sizeof(abs), d->in_root,
	    path) < 0) {
		snprintf(msg, msglen, "path too long");
		return -ENAMETOOLONG;
	}
	/* Named below INPUT_DIR, the name is taken as written: a symlink in
	 * the tree is the inspection's to refuse, not ours to resolve.  Only
	 * a path that reaches the tree another way (a link to the folder
	 * itself) is resolved. */
	if (pathmap_relative(d->in_root, abs, rel, cap) < 0) {
		if (realpath(abs, real) == NULL) {
			int e = errno;
			snprintf(msg, msglen, "%s", e == ENOENT ? "no such "
			    "file in INPUT_DIR" : strerror(e));
			return -e;
		}
		if (pathmap_relative(d->in_root, real, rel, cap) < 0)
			rel[0] = '\0';
	}
	if (!rel[0]) {
		snprintf(msg, msglen, "not in INPUT_DIR %s", d->in_root);
		return -EXDEV;
	}
	if ((rc = beneath_lstat(d->in_fd, rel, &sb)) == -ENOENT) {
		snprintf(msg, msglen, "no such file in INPUT_DIR");
		return rc;
	}
	if (rc == 0 && S_ISDIR(sb.st_mode))
		return 1;
	if (!wanted_name(d, rel)) {
		snprintf(msg, msglen, "not a file thumbwatch processes (see "
		    "EXTENSIONS; temporary names are ignored)");
		return -EINVAL;
	}
	return 0;
}

/* Made again whatever the up-to-date check says; readers keep the old
 * thumbnails until the new ones are renamed over them. */
static void
reprocess_one(struct daemon *d, const char *rel)
{
	batch_queue_push(&d->forced, rel, 0);
	clear_failed(d, rel);
	pickup(d, rel, WATCHER_EVENT);
}

/* Every file below a folder (opened beneath INPUT_DIR, no link followed;
 * the state folder's name skipped as the walk does).  Files counted. */
static size_t
reprocess_tree(struct daemon *d, int dfd, const char *sub, int depth)
{
	char rel[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	size_t n = 0;
	DIR *dp;
	int fd;

	if (depth > 64 || (dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(dp)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    pathmap_join(rel, sizeof(rel), sub, de->d_name) < 0 ||
		    fstatat(dirfd(dp), de->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (strcasecmp(de->d_name, STATE_DIR) != 0 &&
			    (fd = openat(dirfd(dp), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
				n += reprocess_tree(d, fd, rel, depth + 1);
		} else if (S_ISREG(sb.st_mode) && wanted_name(d, rel)) {
			reprocess_one(d, rel);
			n++;
		}
	}
	closedir(dp);
	return n;
}

static int
ctl_reprocess(void *ud, const char *path, char *msg, size_t msglen)
{
	struct daemon *d = ud;
	char rel[PATH_MAX];
	size_t n;
	int rc, fd;

	if (d->draining) {
		snprintf(msg, msglen, "the daemon is stopping");
		return -ESHUTDOWN;
	}
	if ((rc = ctl_rel(d, path, rel, sizeof(rel), msg, msglen)) < 0)
		return rc;
	if (rc == 1) {
		if ((fd = beneath_open(d->in_fd, rel, O_RDONLY | O_DIRECTORY,
		    0)) < 0) {
			snprintf(msg, msglen, "cannot open the folder: %s",
			    fd == -ELOOP ? "a symbolic link (not followed)" :
			    strerror(-fd));
			return fd;
		}
		n = reprocess_tree(d, fd, strcmp(rel, ".") ? rel : "", 0);
		snprintf(msg, msglen, "a folder: %zu file%s queued or checked "
		    "(their outcomes are in the log)", n, n == 1 ? "" : "s");
		return 0;
	}
	reprocess_one(d, rel);
	snprintf(msg, msglen, "%s", batch_queue_contains(&d->q, rel) ||
	    batch_queue_contains(&d->busy, rel) ? "queued" :
	    "checked (its outcome is in the log)");
	return 0;
}

/* Collects the names below OUTPUT_DIR/.thumbwatch/failed into q first:
 * picking one up may write its marker again while the folder is read. */
static void
failed_markers(int dfd, const char *sub, struct batch_queue *q, int depth)
{
	char rel[PATH_MAX];
	struct dirent *de;
	DIR *dp;
	int fd;

	if (depth > 64 || (dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    pathmap_join(rel, sizeof(rel), sub, de->d_name) < 0)
			continue;
		if (de->d_type != DT_DIR)
			batch_queue_push(q, rel, 0);
		else if ((fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) >= 0)
			failed_markers(fd, rel, q, depth + 1);
	}
	closedir(dp);
}

static int
ctl_retry_failed(void *ud, size_t *count, char *msg, size_t msglen)
{
	struct daemon *d = ud;
	struct batch_queue q;
	struct batch_item *it;
	int fd;

	*count = 0;
	if (d->draining) {
		snprintf(msg, msglen, "the daemon is stopping");
		return -ESHUTDOWN;
	}
	batch_queue_init(&q);
	fd = beneath_open(d->out_fd, STATE_DIR "/failed", O_RDONLY |
	    O_DIRECTORY, 0);
	if (fd >= 0)
		failed_markers(fd, "", &q, 0);
	while ((it = batch_queue_pop(&q)) != NULL) {
		clear_failed(d, it->rel);
		if (wanted_name(d, it->rel)) {
			pickup(d, it->rel, WATCHER_EVENT);
			(*count)++;
		}
		batch_item_free(it);
	}
	batch_queue_free(&q);
	return 0;
}

/* The lock must not pin a deleted input folder (inotify would never say
 * it is gone), and must follow the folder that replaces it. */
static void
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

static void
watchdog_cb(uv_timer_t *t)
{
	(void)t;
	notify_watchdog();
}

/* ---- HTTP front door --------------------------------------------------- */

static void
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

static int
http_outputs_cb(void *ud, const char *rel, char (*out)[PATH_MAX], int max)
{
	struct daemon *d = ud;
	bool qualify = siblings(d, rel, NULL, false) > 0;
	int i, n = 0;

	for (i = 0; i < d->cfg->npresets && n < max; i++)
		if (output_rel(d, rel, i, qualify, out[n], PATH_MAX) == 0)
			n++;
	return n;
}

/* The outcome records, and uploads, as the log has them: /events. */
static void
http_tap(void *ud, const char *event, const char *rec, size_t len)
{
	struct daemon *d = ud;

	if (!strcmp(event, "done") || !strcmp(event, "failed") ||
	    !strcmp(event, "skipped") || !strcmp(event, "upload"))
		http_publish(d->http, event, rec, len);
}

static void
http_stop_daemon(struct daemon *d)
{
	d->lg.tap = NULL;
	http_stop(d->http);
	d->http = NULL;
}

/* ---- the shared queue (QUEUE=redis://) --------------------------------- */

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

static void
rq_gone(void *ud)
{
	struct daemon *d = ud;

	d->rq = NULL;
	if (d->pool == NULL && d->stopped)
		uv_walk(&d->loop, close_walk, NULL);
}

static int
rq_start(struct daemon *d, char *err, size_t errlen)
{
	struct redisq_callbacks cb = { rq_state, rq_job, rq_dead, rq_bad,
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
	if ((rc = redisq_new(&d->loop, &o, &cb, d, &d->rq)) < 0) {
		snprintf(err, errlen, "cannot set up the Redis queue: %s",
		    strerror(-rc));
		return rc;
	}
	redisq_stats(d->rq, &d->cst);
	return 0;
}

/* ---- entry ------------------------------------------------------------- */

/* Whether the administrator's path reaches its folder through a symlink
 * that lies inside INPUT_DIR (an OUTPUT_DIR or DONE_DIR nested in the
 * input tree): a dropper could have put it there while we were stopped,
 * to aim our writes and deletes anywhere.  Each component is looked at
 * as written; one that is a symlink counts when the folder holding it is
 * in the input tree. */
static bool
nested_link(const char *in_root, const char *path)
{
	char buf[PATH_MAX], parent[PATH_MAX], rel[PATH_MAX];
	struct stat sb;
	char *p, c;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return false;
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (lstat(buf, &sb) == 0 && S_ISLNK(sb.st_mode)) {
			char *slash = strrchr(buf, '/');
			snprintf(parent, sizeof(parent), "%.*s",
			    slash && slash != buf ? (int)(slash - buf) : 1,
			    slash ? buf : ".");
			if (realpath(parent, rel) != NULL &&
			    pathmap_relative(in_root, rel, parent,
			    sizeof(parent)) == 0) {
				*p = c;
				return true;
			}
		}
		*p = c;
		if (c == '\0')
			return false;
	}
}

/* The failed files by name, on a terminal or not: a person (or a CI
 * log) sees which without reading the JSON log. */
static void
once_failures(struct daemon *d)
{
	struct batch_item *it;
	size_t n = 0;

	if (d->failed_names.len == 0)
		return;
	fprintf(stderr, "thumbwatch: failed (the reasons are in the log):\n");
	for (it = d->failed_names.head; it && n < ONCE_NAMED; it = it->next) {
		fprintf(stderr, "  %s\n", it->rel);
		n++;
	}
	if (d->failed_names.len > n)
		fprintf(stderr, "  and %zu more\n", d->failed_names.len - n);
	if (d->n_remembered > 0)
		fprintf(stderr, "thumbwatch: %llu of them failed in an earlier "
		    "run with the same contents and were not tried again: "
		    "save a file anew to retry it\n",
		    (unsigned long long)d->n_remembered);
}

static int
prepare_dirs(struct daemon *d, const struct config *cfg)
{
	struct stat sb;
	int rc;

	/* `once` over a mistyped folder must not succeed on an empty new
	 * one; `run` makes its documented default data/input. */
	if (stat(cfg->input_dir, &sb) == -1 && errno == ENOENT &&
	    d->mode == DAEMON_ONCE) {
		dprintf(2, "thumbwatch: INPUT_DIR %s does not exist (once never "
		    "creates it)\n", cfg->input_dir);
		return EX_NOINPUT;
	}
	if (stat(cfg->input_dir, &sb) == -1 && errno == ENOENT) {
		if ((rc = fs_mkdir_p(cfg->input_dir, 0755)) < 0) {
			dprintf(2, "thumbwatch: INPUT_DIR %s does not exist and "
			    "cannot be created: %s\n", cfg->input_dir,
			    strerror(-rc));
			return EX_NOINPUT;
		}
		log_msg(&d->lg, LOG_INFO, "input_created", "created INPUT_DIR "
		    "%s", cfg->input_dir);
	}
	if (realpath(cfg->input_dir, d->in_root) == NULL ||
	    stat(d->in_root, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		dprintf(2, "thumbwatch: INPUT_DIR %s is not a usable folder: "
		    "%s\n", cfg->input_dir, errno ? strerror(errno) :
		    "not a directory");
		return EX_NOINPUT;
	}
	if ((rc = fs_mkdir_p(cfg->output_dir, 0755)) < 0 ||
	    realpath(cfg->output_dir, d->out_root) == NULL) {
		dprintf(2, "thumbwatch: OUTPUT_DIR %s cannot be created: %s\n",
		    cfg->output_dir, strerror(rc < 0 ? -rc : errno));
		return EX_CANTCREAT;
	}
	if (strcmp(d->in_root, d->out_root) == 0) {
		dprintf(2, "thumbwatch: OUTPUT_DIR and INPUT_DIR are the same "
		    "folder (%s)\n", d->in_root);
		return EX_CONFIG;
	}
	if (nested_link(d->in_root, cfg->output_dir) ||
	    (cfg->source_action == ACTION_MOVE &&
	    nested_link(d->in_root, cfg->done_dir))) {
		dprintf(2, "thumbwatch: OUTPUT_DIR %s or DONE_DIR %s is reached "
		    "through a symbolic link inside INPUT_DIR %s, which anyone "
		    "who drops files could have planted: give its real path\n",
		    cfg->output_dir, cfg->done_dir, d->in_root);
		return EX_CONFIG;
	}
	/* Held for the daemon's life: a dropper who renames a folder of the
	 * input tree cannot make a later path lead elsewhere. */
	if ((d->in_fd = beneath_root(d->in_root)) < 0) {
		dprintf(2, "thumbwatch: INPUT_DIR %s cannot be opened: %s\n",
		    d->in_root, strerror(-d->in_fd));
		return EX_NOINPUT;
	}
	if ((d->out_fd = beneath_root(d->out_root)) < 0) {
		dprintf(2, "thumbwatch: OUTPUT_DIR %s cannot be opened: %s\n",
		    d->out_root, strerror(-d->out_fd));
		return EX_CANTCREAT;
	}
	if (cfg->source_action == ACTION_MOVE && (rc = done_root(d)) < 0) {
		dprintf(2, "thumbwatch: DONE_DIR %s cannot be created: %s\n",
		    cfg->done_dir, strerror(-rc));
		return EX_CANTCREAT;
	}
	return 0;
}

int
daemon_main(struct config *cfg, enum daemon_mode mode, const char *exe,
    daemon_reload_fn reload_fn, void *reload_ud)
{
	struct watcher_callbacks wcb = { on_file, on_delete, on_move,
	    on_scan_done, on_held };
	struct pool_callbacks pcb = { on_result, on_lost, on_idle };
	struct control_hooks ccb = { ctl_status, ctl_reprocess,
	    ctl_retry_failed };
	char err[1024], path[PATH_MAX];
	uint64_t wd_usec;
	struct pool_options po;
	struct daemon *d;
	struct json_buf *j;
	const char *names[CONFIG_MAX_PRESETS];
	uint64_t t0 = time_wall_ms();
	int rc, i, status;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return EX_SOFTWARE;
	d->cfg = cfg;
	d->mode = mode;
	d->exe = exe;
	d->reload = reload_fn;
	d->reload_ud = reload_ud;
	d->start_ms = t0;
	d->lock_fd = -1;
	d->pf.fd = -1;
	d->in_fd = d->out_fd = d->done_fd = -1;
	d->pol.batch_size = cfg->batch_size;
	d->pol.wait_ms = cfg->batch_wait_ms;
	batch_queue_init(&d->q);
	batch_queue_init(&d->busy);
	batch_queue_init(&d->redo);
	batch_queue_init(&d->own_moves);
	batch_queue_init(&d->forced);
	batch_queue_init(&d->held);
	batch_queue_init(&d->settle_counted);
	batch_queue_init(&d->failed_names);
	if ((rc = log_open(&d->lg, cfg->log_file, cfg->log_level)) < 0) {
		dprintf(2, "thumbwatch: LOG_FILE %s cannot be opened: %s\n",
		    cfg->log_file, strerror(-rc));
		free(d);
		return EX_CANTCREAT;
	}
	d->progress = mode == DAEMON_ONCE && d->lg.tty;
	d->lg.quiet_tty = mode == DAEMON_ONCE;
	if ((status = prepare_dirs(d, cfg)) != 0)
		goto out_log;
	if (config_queue_is_redis(cfg)) {
		if (mode == DAEMON_ONCE) {
			dprintf(2, "thumbwatch: QUEUE: 'once' works on the local "
			    "queue only; with a Redis QUEUE use 'run'\n");
			status = EX_USAGE;
			goto out_log;
		}
		d->produce = cfg->role != ROLE_WORKER;
		d->consume = cfg->role != ROLE_WATCHER;
	}
	/* One daemon per input folder, whatever else differs; with a shared
	 * queue, several nodes share it on purpose. */
	d->lock_fd = config_queue_is_redis(cfg) ? -ENOLCK :
	    instance_lock(d->in_root, err, sizeof(err));
	if (d->lock_fd == -EWOULDBLOCK) {
		dprintf(2, "thumbwatch: %s\n", err);
		status = EX_TEMPFAIL;
		goto out_log;
	}
	if (d->lock_fd < 0 && !config_queue_is_redis(cfg))
		log_msg(&d->lg, LOG_WARN, "lock_failed", "%s", err);
	if (mode == DAEMON_RUN) {
		if (snprintf(path, sizeof(path), "%s%s%s", cfg->pidfile[0] ?
		    cfg->pidfile : cfg->runtime_dir, cfg->pidfile[0] ? "" : "/",
		    cfg->pidfile[0] ? "" : CONTROL_PIDFILE_NAME) >=
		    (int)sizeof(path)) {
			dprintf(2, "thumbwatch: the pidfile's path is too long\n");
			status = EX_CONFIG;
			goto out_log;
		}
		if ((rc = pidfile_write(&d->pf, path, err, sizeof(err))) < 0) {
			dprintf(2, "thumbwatch: %s\n", err);
			status = rc == -EWOULDBLOCK ? EX_TEMPFAIL : EX_CANTCREAT;
			goto out_log;
		}
	}
	/* Worker deaths are reported through their exit status; a write
	 * to a dead worker's socket must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&d->loop);
	uv_timer_init(&d->loop, &d->watchdog_timer);
	uv_timer_init(&d->loop, &d->lock_timer);
	d->lock_timer.data = d;
	if (d->lock_fd >= 0)
		uv_timer_start(&d->lock_timer, lock_check_cb, 1000, 1000);
	if (mode == DAEMON_RUN) {
		if (control_socket_path(path, sizeof(path),
		    cfg->runtime_dir) < 0) {
			dprintf(2, "thumbwatch: RUNTIME_DIR %s is too long\n",
			    cfg->runtime_dir);
			status = EX_CONFIG;
			goto out_loop;
		}
		if ((rc = control_start(&d->ctl, &d->loop,
		    &(struct control_opts){ .path = path }, &ccb, d, err,
		    sizeof(err))) < 0) {
			dprintf(2, "thumbwatch: %s\n", err);
			status = rc == -EADDRINUSE ? EX_TEMPFAIL : EX_CANTCREAT;
			goto out_loop;
		}
	}
	if (mode == DAEMON_RUN && cfg->http_listen[0]) {
		struct http_callbacks hcb = { http_stats_cb, http_outputs_cb };
		if ((rc = http_start(&d->http, &d->loop, cfg, d->in_root,
		    d->out_root, &d->lg, &hcb, d, err, sizeof(err))) < 0) {
			dprintf(2, "thumbwatch: %s\n", err);
			status = rc == -EADDRINUSE ? EX_TEMPFAIL : EX_CONFIG;
			goto out_loop;
		}
		d->lg.tap = http_tap;
		d->lg.tap_ud = d;
		log_msg(&d->lg, LOG_INFO, "http_listen", "HTTP on %s",
		    cfg->http_listen);
	}
	load_epochs(d);
	{
		/* Before any worker runs: every temp now is a dead one's.
		 * Other nodes' workers may be writing theirs: with a shared
		 * queue only those older than two image deadlines go. */
		time_t older = config_queue_is_redis(cfg) ? time(NULL) -
		    2 * (cfg->image_timeout_ms / 1000 + 1) : 0;
		int fd = beneath_open(d->out_fd, "", O_RDONLY | O_DIRECTORY,
		    0);
		uint64_t n = fd >= 0 ? clean_temps(fd, 0, older) : 0;
		if (n > 0)
			log_msg(&d->lg, LOG_INFO, "temp_cleaned", "removed %llu "
			    "unfinished temp file(s) left by an earlier run",
			    (unsigned long long)n);
	}

	if (config_queue_is_redis(cfg) && !d->produce) {
		/* ROLE=worker: jobs come from the stream only. */
		d->scanned = true;
	} else if ((rc = watcher_start(&d->w, &d->loop, cfg, &d->lg, &wcb,
	    d)) < 0) {
		dprintf(2, "thumbwatch: cannot watch INPUT_DIR %s: %s\n",
		    cfg->input_dir, strerror(-rc));
		status = EX_NOINPUT;
		goto out_loop;
	}
	if ((j = log_begin(&d->lg, LOG_INFO, "start")) != NULL) {
		for (i = 0; i < cfg->npresets; i++)
			names[i] = cfg->presets[i].name;
		json_str(j, "version", THUMBWATCH_VERSION);
		json_int(j, "pid", getpid());
		json_str(j, "mode", mode == DAEMON_ONCE ? "once" : "run");
		json_str(j, "input_dir", d->in_root);
		json_str(j, "output_dir", d->out_root);
		json_int(j, "workers", cfg->workers);
		json_strv(j, "presets", names, (size_t)cfg->npresets);
		json_str(j, "backend", d->w ? watcher_backend_name(d->w) :
		    "none");
		if (config_queue_is_redis(cfg)) {
			char url[600];
			cluster_redact_url(cfg->queue, url, sizeof(url));
			json_str(j, "queue", url);
			json_str(j, "role", config_role_name(cfg->role));
		}
		log_commit(&d->lg);
	}
	/* --daemon: the command returns now.  Before the workers exist, so
	 * none inherits the caller's terminal or pipe. */
	daemonize_ready();
	if (!isatty(2))
		d->lg.tty = false;	/* detached: nobody reads the echo */
	wd_usec = mode == DAEMON_RUN ? notify_watchdog_usec() : 0;
	if (wd_usec > 0)
		uv_timer_start(&d->watchdog_timer, watchdog_cb,
		    wd_usec / 2000 ? wd_usec / 2000 : 1,
		    wd_usec / 2000 ? wd_usec / 2000 : 1);
	po.workers = cfg->workers;
	po.image_timeout_ms = cfg->image_timeout_ms;
	po.exe = exe;
	po.formats = cfg->extensions;
	po.max_images = cfg->worker_max_images;
	po.memory_mb = cfg->worker_memory_mb;
	po.instance = d->in_root;
	if ((rc = pool_start(&d->pool, &d->loop, &po, &d->lg, &pcb, d)) < 0) {
		dprintf(2, "thumbwatch: cannot start workers: %s\n",
		    strerror(-rc));
		status = EX_SOFTWARE;
		goto out_loop;
	}
	if (config_queue_is_redis(cfg) && rq_start(d, err, sizeof(err)) < 0) {
		dprintf(2, "thumbwatch: %s\n", err);
		status = EX_CONFIG;
		goto out_loop;
	}
	if (d->w == NULL && mode == DAEMON_RUN)
		announce_ready(d, "waiting for jobs from the Redis stream");

	uv_check_init(&d->loop, &d->check);
	d->check.data = d;
	uv_check_start(&d->check, check_cb);
	uv_timer_init(&d->loop, &d->dispatch_timer);
	uv_timer_init(&d->loop, &d->stats_timer);
	uv_timer_init(&d->loop, &d->drain_timer);
	uv_timer_init(&d->loop, &d->retry_timer);
	d->dispatch_timer.data = d->stats_timer.data = d->drain_timer.data =
	    d->retry_timer.data = d;
	if (cfg->stats_interval_s > 0 && mode == DAEMON_RUN)
		uv_timer_start(&d->stats_timer, stats_cb,
		    (uint64_t)cfg->stats_interval_s * 1000,
		    (uint64_t)cfg->stats_interval_s * 1000);
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, signal_cb, SIGTERM);
	uv_signal_start(&d->sig_int, signal_cb, SIGINT);
	uv_signal_start(&d->sig_hup, signal_cb, SIGHUP);

	uv_run(&d->loop, UV_RUN_DEFAULT);

	status = d->exit_code;
	if (mode == DAEMON_ONCE) {
		fprintf(stderr, "thumbwatch: %llu files: %llu done, %llu skipped, "
		    "%llu failed in %.1f s\n",
		    (unsigned long long)(d->n_done + d->n_skipped + d->n_failed),
		    (unsigned long long)d->n_done,
		    (unsigned long long)d->n_skipped,
		    (unsigned long long)d->n_failed,
		    (double)(time_wall_ms() - t0) / 1000.0);
		once_failures(d);
		if (d->n_failed > 0)
			status = 1;
		if (d->stop_reason && strcmp(d->stop_reason, "finished"))
			status = 1;
	}
out_loop:
	control_stop(d->ctl, NULL, NULL);
	d->ctl = NULL;
	http_stop_daemon(d);
	if (d->w)
		watcher_stop(d->w);
	uv_walk(&d->loop, close_walk, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d->loop) != 0)
		status = status ? status : 0;
out_log:
	pidfile_remove(&d->pf);
	instance_unlock(d->lock_fd);
	batch_queue_free(&d->q);
	batch_queue_free(&d->busy);
	batch_queue_free(&d->redo);
	batch_queue_free(&d->own_moves);
	batch_queue_free(&d->forced);
	batch_queue_free(&d->held);
	batch_queue_free(&d->settle_counted);
	batch_queue_free(&d->failed_names);
	log_close(&d->lg);
	if (d->in_fd >= 0)
		close(d->in_fd);
	if (d->out_fd >= 0)
		close(d->out_fd);
	if (d->done_fd >= 0)
		close(d->done_fd);
	free(d);
	return status;
}
