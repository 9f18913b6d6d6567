/*
 * lifecycle: open, start, run and close the supervisor (drain.c has the
 * way down), and the moment it is ready.
 *
 * A file's life: picked up (event or walk) -> checked with stat only
 * (intake.c: type, size, symlink target, whether its thumbnails are up to
 * date) -> queued once -> dispatched to an idle worker (dispatch.c) -> one
 * outcome line (results.c, outcome.c).  The supervisor never opens an
 * image, so no image can crash it.  Failures are remembered by a marker in
 * OUTPUT_DIR/.thumbwatch/failed carrying the source's mtime (store.c), so
 * a restart does not fail the same bytes again.
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
#include "cluster.h"
#include "config.h"
#include "control_server.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "outcome.h"
#include "pathmap.h"
#include "pidfile.h"
#include "pool.h"
#include "timeutil.h"
#include "watcher.h"
#include "supervisor.h"

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

/* once names its failed files at the end. */
void
once_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;

	batch_queue_push(&d->failed_names, o->rel, 0);
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

static void
init_handles(struct daemon *d)
{
	uv_timer_init(&d->loop, &d->watchdog_timer);
	uv_timer_init(&d->loop, &d->lock_timer);
	uv_timer_init(&d->loop, &d->dispatch_timer);
	uv_timer_init(&d->loop, &d->stats_timer);
	uv_timer_init(&d->loop, &d->drain_timer);
	uv_timer_init(&d->loop, &d->retry_timer);
	uv_check_init(&d->loop, &d->check);
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	d->watchdog_timer.data = d->lock_timer.data = d->dispatch_timer.data =
	    d->stats_timer.data = d->drain_timer.data = d->retry_timer.data =
	    d->check.data = d->sig_term.data = d->sig_int.data =
	    d->sig_hup.data = d;
}

/* Who hears of an outcome, in this order: the counters first (a status
 * read from a subscriber sees this file counted), the jobs table, then the
 * log line; the marker; the queue's acknowledgement only once the line is
 * written; the progress bar last.  A new sink is one more line here. */
static void
subscribe(struct daemon *d)
{
	outcome_bus_init(&d->bus);
	outcome_subscribe(&d->bus, OUTCOME_ENDS, stats_on_outcome, d);
	outcome_subscribe(&d->bus, OUTCOME_ALL, http_on_outcome, d);
	outcome_subscribe(&d->bus, OUTCOME_ENDS, log_on_outcome, d);
	outcome_subscribe(&d->bus, OUTCOME_ENDS, store_on_outcome, d);
	if (d->mode == DAEMON_ONCE)
		outcome_subscribe(&d->bus, OUTCOME_MASK(OUTCOME_FAILED),
		    once_on_outcome, d);
	outcome_subscribe(&d->bus, OUTCOME_ENDS, queue_on_outcome, d);
	if (d->progress)
		outcome_subscribe(&d->bus, OUTCOME_ENDS, progress_on_outcome,
		    d);
}

/* Open: the state, the log, the folders held open, the queue backend,
 * the subscribers and the loop with its handles; nothing runs yet.  0, or
 * an exit status with the reason on stderr (*dp is then NULL). */
int
sup_open(struct daemon **dp, struct config *cfg, enum daemon_mode mode,
    const char *exe, daemon_reload_fn reload_fn, void *reload_ud)
{
	struct daemon *d;
	int rc, status;

	*dp = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return EX_SOFTWARE;
	d->cfg = cfg;
	d->mode = mode;
	d->exe = exe;
	d->reload = reload_fn;
	d->reload_ud = reload_ud;
	d->start_ms = time_wall_ms();
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
	d->queue = config_queue_is_redis(cfg) ? &queue_redis : &queue_local;
	if ((rc = log_open(&d->lg, cfg->log_file, cfg->log_level)) < 0) {
		dprintf(2, "thumbwatch: LOG_FILE %s cannot be opened: %s\n",
		    cfg->log_file, strerror(-rc));
		free(d);
		return EX_CANTCREAT;
	}
	d->progress = mode == DAEMON_ONCE && d->lg.tty;
	d->lg.quiet_tty = mode == DAEMON_ONCE;
	subscribe(d);
	uv_loop_init(&d->loop);
	init_handles(d);
	if ((status = prepare_dirs(d, cfg)) != 0) {
		sup_close(d);
		return status;
	}
	if (d->queue->shared) {
		if (mode == DAEMON_ONCE) {
			dprintf(2, "thumbwatch: QUEUE: 'once' works on the local "
			    "queue only; with a Redis QUEUE use 'run'\n");
			sup_close(d);
			return EX_USAGE;
		}
		d->produce = cfg->role != ROLE_WORKER;
		d->consume = cfg->role != ROLE_WATCHER;
	}
	*dp = d;
	return 0;
}

static int
start_lock(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	char err[1024], path[PATH_MAX];
	int rc;

	/* One daemon per input folder, whatever else differs; with a shared
	 * queue, several nodes share it on purpose. */
	d->lock_fd = d->queue->shared ? -ENOLCK :
	    instance_lock(d->in_root, err, sizeof(err));
	if (d->lock_fd == -EWOULDBLOCK) {
		dprintf(2, "thumbwatch: %s\n", err);
		return EX_TEMPFAIL;
	}
	if (d->lock_fd < 0 && !d->queue->shared)
		log_msg(&d->lg, LOG_WARN, "lock_failed", "%s", err);
	if (d->lock_fd >= 0)
		uv_timer_start(&d->lock_timer, lock_check_cb, 1000, 1000);
	if (d->mode != DAEMON_RUN)
		return 0;
	if (snprintf(path, sizeof(path), "%s%s%s", cfg->pidfile[0] ?
	    cfg->pidfile : cfg->runtime_dir, cfg->pidfile[0] ? "" : "/",
	    cfg->pidfile[0] ? "" : CONTROL_PIDFILE_NAME) >= (int)sizeof(path)) {
		dprintf(2, "thumbwatch: the pidfile's path is too long\n");
		return EX_CONFIG;
	}
	if ((rc = pidfile_write(&d->pf, path, err, sizeof(err))) < 0) {
		dprintf(2, "thumbwatch: %s\n", err);
		return rc == -EWOULDBLOCK ? EX_TEMPFAIL : EX_CANTCREAT;
	}
	return 0;
}

/* The control socket and HTTP (run only). */
static int
start_fronts(struct daemon *d)
{
	struct control_hooks ccb = { ctl_status, ctl_reprocess,
	    ctl_retry_failed };
	const struct config *cfg = d->cfg;
	char err[1024], path[PATH_MAX];
	int rc;

	if (d->mode != DAEMON_RUN)
		return 0;
	if (control_socket_path(path, sizeof(path), cfg->runtime_dir) < 0) {
		dprintf(2, "thumbwatch: RUNTIME_DIR %s is too long\n",
		    cfg->runtime_dir);
		return EX_CONFIG;
	}
	if ((rc = control_start(&d->ctl, &d->loop,
	    &(struct control_opts){ .path = path }, &ccb, d, err,
	    sizeof(err))) < 0) {
		dprintf(2, "thumbwatch: %s\n", err);
		return rc == -EADDRINUSE ? EX_TEMPFAIL : EX_CANTCREAT;
	}
	if (cfg->http_listen[0]) {
		struct http_opts ho = { .cfg = cfg, .in_root = d->in_root,
		    .out_root = d->out_root, .lg = &d->lg };
		struct http_hooks hcb = { http_stats_cb, http_outputs_cb };
		if ((rc = http_start(&d->http, &d->loop, &ho, &hcb, d, err,
		    sizeof(err))) < 0) {
			dprintf(2, "thumbwatch: %s\n", err);
			return rc == -EADDRINUSE ? EX_TEMPFAIL : EX_CONFIG;
		}
		d->lg.tap = http_tap;
		d->lg.tap_ud = d;
		log_msg(&d->lg, LOG_INFO, "http_listen", "HTTP on %s",
		    cfg->http_listen);
	}
	return 0;
}

static void
log_start(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	const char *names[CONFIG_MAX_PRESETS];
	struct json_buf *j;
	int i;

	if ((j = log_begin(&d->lg, LOG_INFO, "start")) == NULL)
		return;
	for (i = 0; i < cfg->npresets; i++)
		names[i] = cfg->presets[i].name;
	json_str(j, "version", THUMBWATCH_VERSION);
	json_int(j, "pid", getpid());
	json_str(j, "mode", d->mode == DAEMON_ONCE ? "once" : "run");
	json_str(j, "input_dir", d->in_root);
	json_str(j, "output_dir", d->out_root);
	json_int(j, "workers", cfg->workers);
	json_strv(j, "presets", names, (size_t)cfg->npresets);
	json_str(j, "backend", d->w ? watcher_backend_name(d->w) : "none");
	if (d->queue->shared) {
		char url[600];
		cluster_redact_url(cfg->queue, url, sizeof(url));
		json_str(j, "queue", url);
		json_str(j, "role", config_role_name(cfg->role));
	}
	log_commit(&d->lg);
}

static int
start_pool(struct daemon *d)
{
	struct pool_hooks pcb = { on_result, on_lost, on_idle };
	const struct config *cfg = d->cfg;
	struct pool_opts po;
	char err[1024];

	memset(&po, 0, sizeof(po));
	po.workers = cfg->workers;
	po.image_timeout_ms = cfg->image_timeout_ms;
	po.exe = d->exe;
	po.formats = cfg->extensions;
	po.max_images = cfg->worker_max_images;
	po.memory_mb = cfg->worker_memory_mb;
	po.instance = d->in_root;
	po.stop_grace_ms = 2000;
	po.lg = &d->lg;
	if (pool_start(&d->pool, &d->loop, &po, &pcb, d, err,
	    sizeof(err)) < 0) {
		dprintf(2, "thumbwatch: %s\n", err);
		return EX_SOFTWARE;
	}
	return 0;
}

/* Start: the lock and pidfile, the front ends, the output tree made
 * ready, the watcher, the workers, the queue, then the loop's own
 * timers and signals.  0, or an exit status with the reason on stderr;
 * whatever started is stopped by sup_close. */
int
sup_start(struct daemon *d)
{
	struct watcher_callbacks wcb = { on_file, on_delete, on_move,
	    on_scan_done, on_held };
	const struct config *cfg = d->cfg;
	char err[1024];
	uint64_t wd_usec, n;
	time_t older;
	int rc;

	if ((rc = start_lock(d)) != 0)
		return rc;
	/* Worker deaths are reported through their exit status; a write
	 * to a dead worker's socket must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if ((rc = start_fronts(d)) != 0)
		return rc;
	load_epochs(d);
	/* Before any worker runs: every temp now is a dead one's.  Other
	 * nodes' workers may be writing theirs: with a shared queue only
	 * those older than two image deadlines go. */
	older = d->queue->shared ? time(NULL) - 2 * (cfg->image_timeout_ms /
	    1000 + 1) : 0;
	if ((n = store_clean_temps(d, older)) > 0)
		log_msg(&d->lg, LOG_INFO, "temp_cleaned", "removed %llu "
		    "unfinished temp file(s) left by an earlier run",
		    (unsigned long long)n);
	if (d->queue->shared && !d->produce) {
		/* ROLE=worker: jobs come from the stream only. */
		d->scanned = true;
	} else if ((rc = watcher_start(&d->w, &d->loop, cfg, &d->lg, &wcb,
	    d)) < 0) {
		dprintf(2, "thumbwatch: cannot watch INPUT_DIR %s: %s\n",
		    cfg->input_dir, strerror(-rc));
		return EX_NOINPUT;
	}
	log_start(d);
	/* --daemon: the command returns now.  Before the workers exist, so
	 * none inherits the caller's terminal or pipe. */
	daemonize_ready();
	if (!isatty(2))
		d->lg.tty = false;	/* detached: nobody reads the echo */
	wd_usec = d->mode == DAEMON_RUN ? notify_watchdog_usec() : 0;
	if (wd_usec > 0)
		uv_timer_start(&d->watchdog_timer, watchdog_cb,
		    wd_usec / 2000 ? wd_usec / 2000 : 1,
		    wd_usec / 2000 ? wd_usec / 2000 : 1);
	if ((rc = start_pool(d)) != 0)
		return rc;
	if (d->queue->start(d, err, sizeof(err)) < 0) {
		dprintf(2, "thumbwatch: %s\n", err);
		return EX_CONFIG;
	}
	d->queue_open = true;
	if (d->w == NULL && d->mode == DAEMON_RUN)
		announce_ready(d, "waiting for jobs from the Redis stream");
	uv_check_start(&d->check, check_cb);
	if (cfg->stats_interval_s > 0 && d->mode == DAEMON_RUN)
		uv_timer_start(&d->stats_timer, stats_cb,
		    (uint64_t)cfg->stats_interval_s * 1000,
		    (uint64_t)cfg->stats_interval_s * 1000);
	uv_signal_start(&d->sig_term, signal_cb, SIGTERM);
	uv_signal_start(&d->sig_int, signal_cb, SIGINT);
	uv_signal_start(&d->sig_hup, signal_cb, SIGHUP);
	return 0;
}

/* Run: until a signal drains it (run) or the tree is done (once).  The
 * exit status. */
int
sup_run(struct daemon *d)
{
	int status;

	uv_run(&d->loop, UV_RUN_DEFAULT);
	status = d->exit_code;
	if (d->mode != DAEMON_ONCE)
		return status;
	fprintf(stderr, "thumbwatch: %llu files: %llu done, %llu skipped, "
	    "%llu failed in %.1f s\n",
	    (unsigned long long)(d->n_done + d->n_skipped + d->n_failed),
	    (unsigned long long)d->n_done, (unsigned long long)d->n_skipped,
	    (unsigned long long)d->n_failed,
	    (double)(time_wall_ms() - (int64_t)d->start_ms) / 1000.0);
	once_failures(d);
	if (d->n_failed > 0)
		status = 1;
	if (d->stop_reason && strcmp(d->stop_reason, "finished"))
		status = 1;
	return status;
}

static void
pool_closed(void *ud)
{
	struct daemon *d = ud;

	d->pool = NULL;
}

static void
queue_closed(void *ud)
{
	struct daemon *d = ud;

	d->queue_open = false;
}

/* Close: whatever a start that failed half-way left running stops
 * through its own stop (after a run, stop() did this already), the loop
 * closes its last handles, and everything open is released. */
void
sup_close(struct daemon *d)
{
	if (!d->stopped) {
		uv_timer_stop(&d->lock_timer);
		uv_timer_stop(&d->watchdog_timer);
		control_stop(d->ctl, NULL, NULL);
		d->ctl = NULL;
		http_stop_daemon(d);
		if (d->w) {
			watcher_stop(d->w);
			d->w = NULL;
		}
		if (d->queue_open)
			d->queue->stop(d, queue_closed);
		pool_stop(d->pool, pool_closed, d);
		uv_run(&d->loop, UV_RUN_DEFAULT);
	}
	uv_walk(&d->loop, close_walk, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	uv_loop_close(&d->loop);
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
}

int
daemon_main(struct config *cfg, enum daemon_mode mode, const char *exe,
    daemon_reload_fn reload_fn, void *reload_ud)
{
	struct daemon *d;
	int status;

	if ((status = sup_open(&d, cfg, mode, exe, reload_fn, reload_ud)) != 0)
		return status;
	if ((status = sup_start(d)) == 0)
		status = sup_run(d);
	sup_close(d);
	return status;
}
