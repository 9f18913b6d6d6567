/*
 * supervisor.h: private to src/supervisor.  The supervisor's state, shared
 * by the files that each own one of its jobs (see docs/ARCHITECTURE.md).
 */
#ifndef THUMBWATCH_SUPERVISOR_H
#define THUMBWATCH_SUPERVISOR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "batch.h"
#include "cluster.h"
#include "config.h"
#include "control_server.h"
#include "daemon.h"
#include "http.h"
#include "ipc.h"
#include "log.h"
#include "outcome.h"
#include "pidfile.h"
#include "pool.h"
#include "queue.h"
#include "redisq.h"
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
	struct outcome_bus bus;		/* outcomes to their subscribers */

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

	/* Where files that need work go (queue.h), and whether it is still
	 * open (its last acknowledgements are out when it is not). */
	const struct queue_backend *queue;
	bool queue_open;
	void (*queue_done)(void *ud);	/* the backend's stop, pending */
	/* QUEUE=redis:// (redisq.h, queue_redis.c): NULL otherwise. */
	struct redisq *rq;
	bool produce, consume;		/* ROLE */
	char fp[CLUSTER_FP_LEN + 1];	/* our presets, as nodes compare */
	char consumer[160];
	struct cluster_stats cst;	/* for status and /metrics */
};

static inline int64_t
ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static inline const char *
base_name(const char *rel)
{
	const char *s = strrchr(rel, '/');

	return s ? s + 1 : rel;
}

/* V_RETRY: short of descriptors or memory, nothing known of the file. */
enum verdict { V_GONE, V_IGNORE, V_FAILED, V_FRESH, V_FAILED_BEFORE, V_WORK,
    V_RETRY };

/* What the supervisor reports of itself, in one place (stats.c). */
struct sup_status {
	uint64_t done, failed, skipped, ignored, deleted, moved;
	uint64_t bytes_out;
	uint64_t queued, in_flight;
	int workers, workers_busy, workers_idle;
	uint64_t worker_restarts;
	uint64_t started_ms;		/* wall clock */
	uint64_t watched_dirs;
	const struct cluster_stats *cluster;	/* NULL: local queue */
	bool healthy;
};

struct inspection {
	char src[PATH_MAX];	/* what the worker opens */
	struct stat st;
	bool qualified;		/* outputs carry the source extension */
	char error[512];
	struct ipc_job *job;	/* filled when asked */
};

/* store.c */
void refresh_roots(struct daemon *d);
int siblings(struct daemon *d, const char *rel, void (*fn)(struct daemon *,
    const char *), bool later_only);
bool state_reachable(const char *orel);
int output_rel(struct daemon *d, const char *rel, int preset, bool qualify,
    char *out, size_t cap);
int marker_rel(const char *rel, char *out, size_t cap);
bool failed_before(struct daemon *d, const char *rel, const struct stat *src);
void mark_failed(struct daemon *d, const char *rel, const struct stat *src,
    const char *error);
void marker_error(struct daemon *d, const char *rel, char *out, size_t cap);
void clear_failed(struct daemon *d, const char *rel);
void output_stat(struct daemon *d, const char *orel, struct uptodate_stat *us);
bool output_exists(struct daemon *d, const char *orel, struct stat *st);
void requalify_sibling(struct daemon *d, const char *crel);
void each_output(struct daemon *d, const char *rel, bool qualify,
    void (*fn)(struct daemon *, const char *));
void unlink_output(struct daemon *d, const char *orel);
void unlink_temps_of(struct daemon *d, const char *orel);
void rename_outputs(struct daemon *d, const char *rel, bool from, bool to);
int done_root(struct daemon *d);
int rm_tree(struct daemon *d, const char *orel);
size_t move_outputs(struct daemon *d, const char *from, const char *to,
    const struct stat *src);
void load_epochs(struct daemon *d);
uint64_t store_clean_temps(struct daemon *d, time_t older);
void store_failed_markers(struct daemon *d, struct batch_queue *q);

/* publish.c */
void outcome_queued(struct daemon *d, const char *rel);
void outcome_processing(struct daemon *d, const char *rel);
void outcome_done(struct daemon *d, const char *rel, int worker,
    const struct ipc_result *res, const char *const *outs, size_t n);
void outcome_failed(struct daemon *d, const char *rel, const char *error,
    int worker, const struct stat *src);
void outcome_remembered(struct daemon *d, const char *rel);
void outcome_skipped(struct daemon *d, const char *rel, const char *reason);

/* intake.c */
enum verdict inspect(struct daemon *d, const char *rel, struct inspection *in);
bool wanted_name(struct daemon *d, const char *rel);
void ignored(struct daemon *d, const char *rel);
void verdict(struct daemon *d, const char *rel, enum watcher_why why,
    bool failed, const char *text, const struct stat *st);
void pickup(struct daemon *d, const char *rel, enum watcher_why why);
void recheck_sibling(struct daemon *d, const char *rel);
uint64_t outcomes(const struct daemon *d);
void on_file(void *ud, const char *rel, enum watcher_why why);
void on_held(void *ud, const char *rel);

/* dispatch.c */
void queue_for_workers(struct daemon *d, const char *rel, int64_t weight);
void queue_on_outcome(void *ud, const struct outcome *o);
void want_dispatch(struct daemon *d);
void release_held(struct daemon *d);
void dispatch(struct daemon *d);
void on_idle(void *ud);

/* results.c */
void retry_cb(uv_timer_t *t);
void on_result(void *ud, int worker, struct batch_item *it,
    const struct ipc_result *res);
void on_lost(void *ud, int worker, struct batch_item *culprit,
    struct batch_item *rest, const char *why);

/* mirror.c */
void on_delete(void *ud, const char *rel, bool is_dir);
void on_move(void *ud, const char *from, const char *to, bool is_dir);

/* Subscribers (outcome.h), registered in lifecycle.c. */
void stats_on_outcome(void *ud, const struct outcome *o);
void store_on_outcome(void *ud, const struct outcome *o);
void log_on_outcome(void *ud, const struct outcome *o);
void http_on_outcome(void *ud, const struct outcome *o);
void once_on_outcome(void *ud, const struct outcome *o);
void progress_on_outcome(void *ud, const struct outcome *o);

/* stats.c */
void status_snapshot(struct daemon *d, struct sup_status *st);
void progress_draw(struct daemon *d);
void log_stats(struct daemon *d, const char *event, const char *reason);
void stats_cb(uv_timer_t *t);
void ctl_status(void *ud, struct control_status *st);
void http_stats_cb(void *ud, struct http_stats *st);

/* lifecycle.c: like nginx's cycles, open (state, log, folders, loop),
 * start (lock, front ends, watcher, workers, queue), run, close. */
int sup_open(struct daemon **dp, struct config *cfg, enum daemon_mode mode,
    const char *exe, daemon_reload_fn reload_fn, void *reload_ud);
int sup_start(struct daemon *d);
int sup_run(struct daemon *d);
void sup_close(struct daemon *d);

/* drain.c */
void close_walk(uv_handle_t *h, void *arg);
void maybe_finish(struct daemon *d);
void reload(struct daemon *d);
void check_cb(uv_check_t *h);
void signal_cb(uv_signal_t *h, int signum);
void lock_check_cb(uv_timer_t *t);
void watchdog_cb(uv_timer_t *t);

/* fronts.c */
int ctl_reprocess(void *ud, const char *path, char *msg, size_t msglen);
int ctl_retry_failed(void *ud, size_t *count, char *msg, size_t msglen);
int http_outputs_cb(void *ud, const char *rel, char (*out)[PATH_MAX], int max);
void http_tap(void *ud, const char *event, const char *rec, size_t len);
void http_stop_daemon(struct daemon *d);


#endif
