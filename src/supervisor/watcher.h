/*
 * watcher: finds the files that are ready to process under the input dir.
 *
 * Owns the directory walks (start-up scan, rescans, new folders) and the
 * two event back-ends:
 *  - inotify (Linux): the project's own inotify descriptor on a uv_poll_t,
 *    so IN_CLOSE_WRITE and IN_MOVED_TO are seen (libuv's fs_event folds them
 *    away) and IN_Q_OVERFLOW triggers a rescan;
 *  - fsevent (portable, FSEvents on macOS): uv_fs_event per folder plus a
 *    settle timer: a file is ready once its size and mtime held still for
 *    SETTLE_MS.
 * Files a walk finds that were modified within SETTLE_MS are settled the
 * same way first, so a scan never hands out a file still being written.
 * The output dir and the done dir are never walked or watched.  Names are
 * reported relative to the input dir; filtering by extension and temp name
 * is the caller's.
 */
#ifndef THUMBWATCH_WATCHER_H
#define THUMBWATCH_WATCHER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "log.h"

/* WATCHER_QUEUE is never the watcher's: the daemon's name for a file that
 * came as a job from a shared queue (redisq.h). */
enum watcher_why { WATCHER_EVENT, WATCHER_SCAN, WATCHER_QUEUE };

struct watcher_scan_stats {
	uint64_t dirs, files;
	uint64_t settling;	/* files too recently written to hand out yet */
	uint64_t ms;
	const char *reason;	/* "startup", "overflow", "periodic", ... */
};

struct watcher_callbacks {
	/* A regular file (or symlink) is complete and may be processed. */
	void (*on_file)(void *ud, const char *rel, enum watcher_why why);
	/* A name disappeared (deleted, or moved out of the tree). */
	void (*on_delete)(void *ud, const char *rel, bool is_dir);
	/* A name was renamed within the tree (both ends seen). */
	void (*on_move)(void *ud, const char *from, const char *to,
	    bool is_dir);
	/* A full walk started by watcher_rescan/start finished. */
	void (*on_scan_done)(void *ud, const struct watcher_scan_stats *st);
	/* A walk found rel written too recently: it comes through on_file
	 * once settled (or not at all if it goes meanwhile).  May be NULL. */
	void (*on_held)(void *ud, const char *rel);
};

struct watcher;

/* Starts watching cfg->input_dir (which must exist) with the configured
 * back-end and schedules the start-up walk.  0 or -errno (logged). */
int watcher_start(struct watcher **wp, uv_loop_t *loop,
    const struct config *cfg, struct logger *lg,
    const struct watcher_callbacks *cb, void *ud);
/* Walks the whole tree again (overflow, reload, periodic). */
void watcher_rescan(struct watcher *w, const char *reason);
/* True while a walk or settling files are outstanding. */
bool watcher_busy(const struct watcher *w);
const char *watcher_backend_name(const struct watcher *w);
/* Folders watched now (kept as they come and go between walks), or -1
 * when the back-end holds no watches (poll). */
int64_t watcher_watched(const struct watcher *w);
/* Closes every handle; frees w from the loop's close callbacks. */
void watcher_stop(struct watcher *w);

#endif
