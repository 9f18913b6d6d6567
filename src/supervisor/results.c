/*
 * results: what a worker reports (a result, or its death) becomes the
 * file's outcome; the source action runs after a success.
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

void
retry_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (d->w && !d->draining)
		watcher_rescan(d->w, "retry after write failure");
}

void
on_result(void *ud, int worker, struct batch_item *it,
    const struct ipc_result *res)
{
	struct daemon *d = ud;
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
		outcome_done(d, it->rel, worker + 1, res, outs, n);
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

void
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
			d->queue->finish(d, culprit->rel, msg);
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
