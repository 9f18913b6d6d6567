/*
 * fronts: the glue between the front ends (control socket, HTTP) and the
 * supervisor.
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
#include "http.h"
#include "outcome.h"
#include "pathmap.h"
#include "treewalk.h"
#include "supervisor.h"

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
struct reprocess {
	struct daemon *d;
	size_t n;
};

static int
reprocess_visit(void *ud, int dfd, const char *name, const char *rel,
    unsigned char type, int depth)
{
	struct reprocess *r = ud;

	(void)dfd;
	(void)depth;
	if (type == DT_DIR)
		return strcasecmp(name, STATE_DIR) == 0 ? TREEWALK_SKIP :
		    TREEWALK_NEXT;
	if (type == DT_REG && wanted_name(r->d, rel)) {
		reprocess_one(r->d, rel);
		r->n++;
	}
	return TREEWALK_NEXT;
}

int
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
		struct reprocess r = { d, 0 };
		treewalk(fd, strcmp(rel, ".") ? rel : "", reprocess_visit, &r);
		n = r.n;
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

int
ctl_retry_failed(void *ud, size_t *count, char *msg, size_t msglen)
{
	struct daemon *d = ud;
	struct batch_queue q;
	struct batch_item *it;

	*count = 0;
	if (d->draining) {
		snprintf(msg, msglen, "the daemon is stopping");
		return -ESHUTDOWN;
	}
	batch_queue_init(&q);
	store_failed_markers(d, &q);
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

int
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
void
http_tap(void *ud, const char *event, const char *rec, size_t len)
{
	struct daemon *d = ud;

	if (!strcmp(event, "done") || !strcmp(event, "failed") ||
	    !strcmp(event, "skipped") || !strcmp(event, "upload"))
		http_publish(d->http, event, rec, len);
}

void
http_stop_daemon(struct daemon *d)
{
	d->lg.tap = NULL;
	http_stop(d->http, NULL, NULL);
	d->http = NULL;
}

/* The HTTP jobs table (uploads by id): ignored for files that did not
 * come through HTTP, and with no HTTP front end. */
void
http_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;

	switch (o->kind) {
	case OUTCOME_QUEUED:
		http_job_queued(d->http, o->rel);
		break;
	case OUTCOME_PROCESSING:
		http_job_processing(d->http, o->rel);
		break;
	case OUTCOME_DONE:
		http_job_done(d->http, o->rel, o->outputs, o->noutputs,
		    o->ms);
		break;
	case OUTCOME_FAILED:
		if (!o->remembered)
			http_job_failed(d->http, o->rel, o->text);
		break;
	case OUTCOME_SKIPPED:
		http_job_skipped(d->http, o->rel, o->text);
		break;
	default:
		break;
	}
}
