/*
 * mirror: deletes and moves in the input tree, mirrored on the thumbnails.
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
#include "watcher.h"
#include "supervisor.h"

void
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

void
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
