/*
 * watcher: directory walks, inotify and fs_event back-ends, settling.
 *
 * Events are hints and the walk is the truth: every new folder is watched
 * first and walked second, so a file that lands in between is seen by one
 * or the other; an inotify queue overflow or a watch that could not be
 * added falls back to walking again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#include <sys/vfs.h>
#endif

#include "batch.h"
#include "beneath.h"
#include "pathmap.h"
#include "timeutil.h"
#include "watcher.h"
#include "watchtab.h"
#include "writers.h"

#define INOTIFY_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
    IN_CREATE | IN_DELETE | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define MOVE_PAIR_MS 100
#define POLL_DEFAULT_S 10
#define ROOT_RETRY_MS 2000
#define WALK_RETRY_MS 1000

/* A watched folder.  Its path ("" for the input dir itself) and inotify
 * descriptor (-1 for none) are in e, which is first: the table's entries
 * are these. */
struct wdir {
	struct watchtab_entry e;
	uv_fs_event_t *fse;	/* fs_event back-end handle, or NULL */
	struct watcher *w;
};

struct pending_move {
	uint32_t cookie;
	char *rel;
	bool is_dir;
	uint64_t at_ms;
	struct pending_move *next;
};

struct watcher {
	uv_loop_t *loop;
	const struct config *cfg;
	struct logger *lg;
	struct watcher_callbacks cb;
	void *ud;
	enum watch_backend backend;

	char root[PATH_MAX];
	int root_fd;			/* every walk and stat resolves beneath
					 * it, following no symlink */
	char excl_out[PATH_MAX];	/* output dir relative to root, or "" */
	char excl_done[PATH_MAX];

	/* Found by descriptor for every inotify event and by path for
	 * every folder a walk meets: a scan of them all made a wide tree's
	 * walk quadratic. */
	struct watchtab dirs;

	int ifd;			/* inotify descriptor */
	uv_poll_t poll;
	bool poll_active;

	struct pending_move *moves;
	uv_timer_t move_timer;

	/* Files waiting for their mtime to be SETTLE_MS old; queued_ms is
	 * when to look again. */
	struct batch_queue settling;
	uv_timer_t settle_timer;
	uv_timer_t rescan_timer;
	uv_timer_t startup;
	uv_timer_t root_timer;		/* waiting for a deleted INPUT_DIR */
	uv_timer_t walk_timer;		/* a walk ran short of descriptors */
	bool walk_short;
	bool root_gone;
	bool degraded;			/* a watch could not be added */
	bool walking;
	int closing;
};

static void walk_dir(struct watcher *, const char *, struct watcher_scan_stats *);

static bool
excluded(const struct watcher *w, const char *rel)
{
	const char *ex[2] = { w->excl_out, w->excl_done };
	size_t n;
	int i;

	for (i = 0; i < 2; i++) {
		if (ex[i][0] == '\0')
			continue;
		n = strlen(ex[i]);
		if (strncmp(rel, ex[i], n) == 0 &&
		    (rel[n] == '\0' || rel[n] == '/'))
			return true;
	}
	return false;
}

static int
abs_path(const struct watcher *w, const char *rel, char *out, size_t cap)
{
	return pathmap_join(out, cap, w->root, rel);
}

static struct wdir *
find_dir_rel(const struct watcher *w, const char *rel)
{
	return (struct wdir *)watchtab_find_path(&w->dirs, rel);
}

#ifdef __linux__
static struct wdir *
find_dir_wd(const struct watcher *w, int wd)
{
	return (struct wdir *)watchtab_find_wd(&w->dirs, wd);
}
#endif

static void
fse_closed(uv_handle_t *h)
{
	free(h);
}

static void
drop_dir(struct watcher *w, struct wdir *d)
{
	if (d->fse)
		uv_close((uv_handle_t *)d->fse, fse_closed);
	watchtab_remove(&w->dirs, &d->e);
	free(d);
}

/* ---- settling ---------------------------------------------------------- */

static void
settle_add(struct watcher *w, const char *rel, uint64_t due)
{
	if (batch_queue_push(&w->settling, rel, due) < 0)
		log_msg(w->lg, LOG_ERROR, "error", "out of memory settling %s",
		    rel);
}

/* Ready when the mtime is SETTLE_MS old: a writer that is still at work
 * keeps pushing it forward. */
#ifdef __linux__
static void root_lost(struct watcher *w);
#endif

static void
settle_tick(uv_timer_t *t)
{
	struct watcher *w = t->data;
	struct batch_queue again;
	struct batch_item *it;
	struct stat st;
	uint64_t now = time_wall_ms(), mt;

#ifdef __linux__
	/* Our descriptors pin a deleted INPUT_DIR, so inotify never says
	 * it is gone (IN_IGNORED waits for the last reference): look. */
	if (w->backend == BACKEND_INOTIFY && !w->root_gone &&
	    fstat(w->root_fd, &st) == 0 && st.st_nlink == 0)
		root_lost(w);
#endif
	batch_queue_init(&again);
	while ((it = batch_queue_pop(&w->settling)) != NULL) {
		if (it->queued_ms > now) {
			batch_queue_push(&again, it->rel, it->queued_ms);
		} else if (beneath_lstat(w->root_fd, it->rel, &st) == 0) {
			mt = (uint64_t)st.st_mtim.tv_sec * 1000 +
			    (uint64_t)st.st_mtim.tv_nsec / 1000000;
			if (mt + (uint64_t)w->cfg->settle_ms > now &&
			    mt <= now + 1000)
				batch_queue_push(&again, it->rel,
				    mt + (uint64_t)w->cfg->settle_ms);
			else
				w->cb.on_file(w->ud, it->rel, WATCHER_SCAN);
		}
		batch_item_free(it);
	}
	/* Swap the survivors back in. */
	batch_queue_free(&w->settling);
	w->settling = again;
}

static void
consider_file(struct watcher *w, const char *rel, const struct stat *st,
    enum watcher_why why, struct watcher_scan_stats *stats)
{
	uint64_t mt, now = time_wall_ms();

	mt = (uint64_t)st->st_mtim.tv_sec * 1000 +
	    (uint64_t)st->st_mtim.tv_nsec / 1000000;
	/* Recently written: it may still be open for writing.  When the
	 * kernel can say nobody has it open for writing (a read lease), it
	 * goes on now; when it cannot tell, the mtime must settle. */
	if (S_ISREG(st->st_mode) && mt + (uint64_t)w->cfg->settle_ms > now &&
	    mt <= now + 1000 && writers_none(w->root_fd, rel) != 0) {
		settle_add(w, rel, mt + (uint64_t)w->cfg->settle_ms);
		stats->settling++;
		if (w->cb.on_held)
			w->cb.on_held(w->ud, rel);
	} else {
		w->cb.on_file(w->ud, rel, why);
	}
}

/* ---- watches ----------------------------------------------------------- */

static void fse_cb(uv_fs_event_t *h, const char *name, int events, int status);

/* dfd: the folder, opened beneath the root.  inotify takes a path: the
 * descriptor's /proc entry names that very folder, where a path could
 * lead through a folder swapped for a symlink since. */
static int
add_watch(struct watcher *w, const char *rel, int dfd)
{
	char path[PATH_MAX];
	struct wdir *d;
	int rc;

	if (w->backend == BACKEND_POLL)
		return 0;
	if ((rc = abs_path(w, rel, path, sizeof(path))) < 0)
		return rc;
	if ((d = find_dir_rel(w, rel)) != NULL && w->backend == BACKEND_FSEVENT)
		return 0;
	if (d == NULL) {
		if ((d = calloc(1, sizeof(*d))) == NULL ||
		    watchtab_insert(&w->dirs, &d->e, rel, -1) < 0) {
			free(d);
			return -ENOMEM;
		}
		d->w = w;
	}
#ifdef __linux__
	if (w->backend == BACKEND_INOTIFY) {
		char fdpath[64];
		int wd = -1;

		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", dfd);
		if (dfd >= 0)
			wd = inotify_add_watch(w->ifd, fdpath,
			    INOTIFY_MASK & ~IN_DONT_FOLLOW);
		if (wd == -1 && (dfd < 0 || errno == ENOENT))
			wd = inotify_add_watch(w->ifd, path, INOTIFY_MASK);
		if (wd == -1) {
			rc = -errno;
			goto fail;
		}
		/* A renamed folder keeps its wd: drop the stale entry. */
		struct wdir *old = find_dir_wd(w, wd);
		if (old && old != d) {
			watchtab_set_path(&w->dirs, &old->e, rel);
			drop_dir(w, d);
			return 0;
		}
		watchtab_set_wd(&w->dirs, &d->e, wd);
		return 0;
	}
#endif
	if ((d->fse = malloc(sizeof(*d->fse))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_fs_event_init(w->loop, d->fse);
	d->fse->data = d;
	if ((rc = uv_fs_event_start(d->fse, fse_cb, path, 0)) < 0) {
		uv_close((uv_handle_t *)d->fse, fse_closed);
		d->fse = NULL;
		goto fail;
	}
	return 0;
fail:
	drop_dir(w, d);
	return rc;
}

static void
rescan_tick(uv_timer_t *t)
{
	watcher_rescan(t->data, ((struct watcher *)t->data)->degraded ?
	    "unwatched folders" : "periodic");
}

static void
watch_failed(struct watcher *w, const char *rel, int rc)
{
	struct json_buf *j;

	if ((j = log_begin(w->lg, LOG_ERROR, "watch_failed")) != NULL) {
		json_str(j, "dir", rel);
		if (rc == -ENOSPC)
			json_str(j, "error", "inotify watch limit reached: "
			    "raise fs.inotify.max_user_watches (sysctl -w "
			    "fs.inotify.max_user_watches=524288); meanwhile the "
			    "tree is rescanned every RETRY_INTERVAL_S");
		else
			json_str(j, "error", strerror(-rc));
		log_commit(w->lg);
	}
	if (!w->degraded) {
		w->degraded = true;
		uint64_t every = (uint64_t)w->cfg->retry_interval_s * 1000;
		/* Keep a shorter periodic rescan if one is configured. */
		if (w->cfg->rescan_interval_s == 0 ||
		    (uint64_t)w->cfg->rescan_interval_s * 1000 > every)
			uv_timer_start(&w->rescan_timer, rescan_tick, every,
			    every);
	}
}

/* ---- walking ----------------------------------------------------------- */

/* Names below a path that does not fit PATH_MAX cannot be opened by name,
 * watched or handed to a worker: say so rather than skip them unseen. */
static void
too_long(struct watcher *w, const char *rel, const char *name)
{
	struct json_buf *j;

	if ((j = log_begin(w->lg, LOG_WARN, "path_too_long")) != NULL) {
		json_str(j, "dir", rel);
		json_str(j, "name", name);
		json_str(j, "error", "the path is longer than PATH_MAX: not "
		    "watched or processed; shorten the folder names");
		log_commit(w->lg);
	}
}

static void walk_timer_cb(uv_timer_t *t);

/* Short of descriptors or memory: not a fact about the folder.  The walk
 * is done again once the shortage may be over, so no file that landed
 * meanwhile is left without an outcome. */
static bool
walk_short(struct watcher *w, const char *rel, int err)
{
	if (err != EMFILE && err != ENFILE && err != ENOMEM)
		return false;
	if (!w->walk_short)
		log_msg(w->lg, LOG_WARN, "scan_error", "%s: %s; walking again "
		    "in %d ms", rel[0] ? rel : ".", strerror(err),
		    WALK_RETRY_MS);
	w->walk_short = true;
	if (!w->closing && !uv_is_active((uv_handle_t *)&w->walk_timer))
		uv_timer_start(&w->walk_timer, walk_timer_cb, WALK_RETRY_MS, 0);
	return true;
}

/* One folder beneath the root (no symlink at any level), listed with a
 * single descriptor that is closed before its sub-folders are walked: a
 * deep tree costs no more descriptors than a flat one. */
static void
walk_dir(struct watcher *w, const char *rel, struct watcher_scan_stats *st)
{
	char child[PATH_MAX];
	struct batch_queue subs;
	struct batch_item *it;
	struct dirent *de;
	struct stat sb;
	DIR *dir;
	int rc, dfd;

	if (excluded(w, rel))
		return;
	if ((dfd = beneath_open(w->root_fd, rel, O_RDONLY | O_DIRECTORY,
	    0)) < 0) {
		if (!walk_short(w, rel, -dfd) && dfd != -ENOENT &&
		    dfd != -ENOTDIR)
			log_msg(w->lg, LOG_WARN, "scan_error", "%s: %s",
			    rel[0] ? rel : ".", dfd == -ELOOP ? "a folder on "
			    "its path is a symbolic link (not followed)" :
			    strerror(-dfd));
		return;
	}
	/* Watch before listing: a file that lands in between is then seen
	 * by the listing or by an event, never by neither. */
	if ((rc = add_watch(w, rel, dfd)) < 0 && rc != -ENOENT &&
	    rc != -ENOTDIR)
		watch_failed(w, rel, rc);
	if ((dir = fdopendir(dfd)) == NULL) {
		rc = errno;
		close(dfd);
		if (!walk_short(w, rel, rc))
			log_msg(w->lg, LOG_WARN, "scan_error", "%s: %s",
			    rel[0] ? rel : ".", strerror(rc));
		return;
	}
	st->dirs++;
	batch_queue_init(&subs);
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (pathmap_join(child, sizeof(child), rel, de->d_name) < 0 ||
		    strlen(w->root) + 1 + strlen(child) >= PATH_MAX) {
			too_long(w, rel, de->d_name);
			continue;
		}
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (batch_queue_push(&subs, child, 0) < 0)
				walk_short(w, rel, ENOMEM);
		} else {
			st->files++;
			consider_file(w, child, &sb, WATCHER_SCAN, st);
		}
	}
	closedir(dir);
	while ((it = batch_queue_pop(&subs)) != NULL) {
		walk_dir(w, it->rel, st);
		batch_item_free(it);
	}
	batch_queue_free(&subs);
}

static void
full_walk(struct watcher *w, const char *reason)
{
	struct watcher_scan_stats st = { 0 };
	uint64_t t0 = time_wall_ms();

	w->walking = true;
	w->walk_short = false;
	st.reason = reason;
	walk_dir(w, "", &st);
	st.ms = time_wall_ms() - t0;
	w->walking = false;
	if (w->cb.on_scan_done)
		w->cb.on_scan_done(w->ud, &st);
}

static void
walk_timer_cb(uv_timer_t *t)
{
	struct watcher *w = t->data;

	if (w->walking || w->root_gone)
		return;
	full_walk(w, "retry after a walk ran short of descriptors");
}

static void
new_dir(struct watcher *w, const char *rel)
{
	struct watcher_scan_stats st = { 0 };

	walk_dir(w, rel, &st);
}

/* ---- inotify ----------------------------------------------------------- */

#ifdef __linux__
static void
forget_prefix(struct watcher *w, const char *rel)
{
	size_t i = 0;

	/* drop_dir() moves the last entry into slot i. */
	while (i < watchtab_count(&w->dirs)) {
		struct wdir *d = (struct wdir *)watchtab_at(&w->dirs, i);
		if (watchtab_below(d->e.path, rel)) {
			if (d->e.wd >= 0)
				inotify_rm_watch(w->ifd, d->e.wd);
			drop_dir(w, d);
		} else {
			i++;
		}
	}
}

static void
flush_moves(struct watcher *w, bool all)
{
	struct pending_move **pp = &w->moves, *m;
	uint64_t now = time_wall_ms();

	while ((m = *pp) != NULL) {
		if (!all && m->at_ms + MOVE_PAIR_MS > now) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		/* Moved out of the tree: for us it is gone. */
		if (m->is_dir)
			forget_prefix(w, m->rel);
		batch_queue_remove(&w->settling, m->rel);
		w->cb.on_delete(w->ud, m->rel, m->is_dir);
		free(m->rel);
		free(m);
	}
}

static void
move_tick(uv_timer_t *t)
{
	flush_moves(t->data, false);
	if (((struct watcher *)t->data)->moves)
		uv_timer_start(t, move_tick, MOVE_PAIR_MS, 0);
}

static struct pending_move *
take_move(struct watcher *w, uint32_t cookie)
{
	struct pending_move **pp, *m;

	for (pp = &w->moves; (m = *pp) != NULL; pp = &m->next)
		if (m->cookie == cookie) {
			*pp = m->next;
			return m;
		}
	return NULL;
}

static void
root_check(uv_timer_t *t)
{
	struct watcher *w = t->data;
	struct stat sb;

	int fd;

	/* A timer, not a busy loop: the folder may be gone for long. */
	if (stat(w->root, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    (fd = beneath_root(w->root)) < 0)
		return;
	uv_timer_stop(t);
	/* The descriptor held names the deleted folder. */
	close(w->root_fd);
	w->root_fd = fd;
	w->root_gone = false;
	log_msg(w->lg, LOG_INFO, "input_back", "INPUT_DIR %s is back: "
	    "watching and walking it again", w->root);
	full_walk(w, "input folder recreated");
}

static void
root_lost(struct watcher *w)
{
	if (w->root_gone || w->closing)
		return;
	w->root_gone = true;
	forget_prefix(w, "");
	log_msg(w->lg, LOG_ERROR, "input_gone", "INPUT_DIR %s was deleted or "
	    "moved away; waiting for it to come back (checking every %d s)",
	    w->root, ROOT_RETRY_MS / 1000);
	uv_timer_start(&w->root_timer, root_check, ROOT_RETRY_MS,
	    ROOT_RETRY_MS);
}

static void
handle_event(struct watcher *w, const struct inotify_event *ev)
{
	char rel[PATH_MAX];
	bool is_dir = ev->mask & IN_ISDIR;
	struct pending_move *m;
	struct wdir *d;
	struct stat sb;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_msg(w->lg, LOG_WARN, "rescan",
		    "inotify queue overflowed: walking the tree again");
		full_walk(w, "overflow");
		return;
	}
	if ((d = find_dir_wd(w, ev->wd)) == NULL)
		return;
	if (ev->mask & IN_IGNORED) {
		bool root = d->e.path[0] == '\0';
		drop_dir(w, d);
		if (root)
			root_lost(w);
		return;
	}
	if (ev->len == 0)
		return;
	if (pathmap_join(rel, sizeof(rel), d->e.path, ev->name) < 0 ||
	    strlen(w->root) + 1 + strlen(rel) >= PATH_MAX) {
		too_long(w, d->e.path, ev->name);
		return;
	}
	if (excluded(w, rel))
		return;

	if (ev->mask & IN_MOVED_FROM) {
		if ((m = calloc(1, sizeof(*m))) == NULL ||
		    (m->rel = strdup(rel)) == NULL) {
			free(m);
			return;
		}
		m->cookie = ev->cookie;
		m->is_dir = is_dir;
		m->at_ms = time_wall_ms();
		m->next = w->moves;
		w->moves = m;
		uv_timer_start(&w->move_timer, move_tick, MOVE_PAIR_MS, 0);
		return;
	}
	if (ev->mask & IN_MOVED_TO) {
		if ((m = take_move(w, ev->cookie)) != NULL) {
			if (m->is_dir)
				watchtab_rename_prefix(&w->dirs, m->rel, rel);
			if (batch_queue_remove(&w->settling, m->rel))
				settle_add(w, rel, 0);
			w->cb.on_move(w->ud, m->rel, rel, is_dir);
			free(m->rel);
			free(m);
			return;
		}
		if (is_dir)
			new_dir(w, rel);
		else
			w->cb.on_file(w->ud, rel, WATCHER_EVENT);
		return;
	}
	if (ev->mask & IN_CLOSE_WRITE) {
		batch_queue_remove(&w->settling, rel);
		w->cb.on_file(w->ud, rel, WATCHER_EVENT);
		return;
	}
	if (ev->mask & IN_CREATE) {
		if (is_dir) {
			new_dir(w, rel);
			return;
		}
		/* A symlink or FIFO is complete when created: there will be
		 * no close-after-write for it. */
		if (beneath_lstat(w->root_fd, rel, &sb) == 0 &&
		    !S_ISREG(sb.st_mode))
			w->cb.on_file(w->ud, rel, WATCHER_EVENT);
		return;
	}
	if (ev->mask & IN_DELETE) {
		batch_queue_remove(&w->settling, rel);
		w->cb.on_delete(w->ud, rel, is_dir);
	}
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct watcher *w = h->data;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	(void)events;
	if (status < 0) {
		log_msg(w->lg, LOG_ERROR, "error", "inotify poll: %s",
		    uv_strerror(status));
		return;
	}
	for (;;) {
		n = read(w->ifd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			handle_event(w, ev);
		}
	}
}
#endif

/* ---- fs_event ---------------------------------------------------------- */

static void
fse_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
	struct wdir *d = h->data;
	struct watcher *w = d->w;
	char rel[PATH_MAX];
	struct stat sb;
	int rc;

	(void)events;
	if (status < 0 || name == NULL)
		return;
	if (pathmap_join(rel, sizeof(rel), d->e.path, name) < 0 ||
	    excluded(w, rel))
		return;
	if ((rc = beneath_lstat(w->root_fd, rel, &sb)) < 0) {
		if (rc == -ENOENT) {
			struct wdir *gone = find_dir_rel(w, rel);
			batch_queue_remove(&w->settling, rel);
			if (gone)
				drop_dir(w, gone);
			w->cb.on_delete(w->ud, rel, gone != NULL);
		}
		return;
	}
	if (S_ISDIR(sb.st_mode)) {
		if (find_dir_rel(w, rel) == NULL)
			new_dir(w, rel);
		return;
	}
	/* Every change restarts the quiet period: there is no
	 * close-after-write here. */
	if (!batch_queue_contains(&w->settling, rel))
		settle_add(w, rel, time_wall_ms() + (uint64_t)w->cfg->settle_ms);
}

/* ---- life cycle -------------------------------------------------------- */

static void
startup_walk(uv_timer_t *t)
{
	full_walk(t->data, "startup");
}

static int
rel_if_inside(const char *root, const char *dir, char *out, size_t cap)
{
	char real[PATH_MAX];

	out[0] = '\0';
	if (realpath(dir, real) == NULL)
		return 0;
	if (pathmap_relative(root, real, out, cap) < 0)
		out[0] = '\0';
	return 0;
}

#ifdef __linux__
/* Filesystems where inotify sees only this machine's own changes. */
static const char *
network_fs(const char *path)
{
	static const struct { unsigned long magic; const char *name; } fs[] = {
		{ 0x6969, "NFS" }, { 0x517B, "SMB" }, { 0xFF534D42, "CIFS" },
		{ 0xFE534D42, "SMB2" }, { 0x65735546, "FUSE" },
		{ 0x00C36400, "CephFS" }, { 0x01021997, "9P" },
		{ 0x5346414F, "AFS" }, { 0x47504653, "GPFS" },
		{ 0x013111A8, "IBRIX" }, { 0x0BD00BD0, "Lustre" },
	};
	const char *forced = getenv("THUMBWATCH_TEST_FSTYPE");
	struct statfs sf;
	size_t i;

	/* Tests cannot mount NFS; they say what the folder is. */
	if (forced && *forced)
		return strcmp(forced, "local") ? forced : NULL;
	if (statfs(path, &sf) != 0)
		return NULL;
	for (i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if ((unsigned long)sf.f_type == fs[i].magic)
			return fs[i].name;
	return NULL;
}
#endif

int
watcher_start(struct watcher **wp, uv_loop_t *loop, const struct config *cfg,
    struct logger *lg, const struct watcher_callbacks *cb, void *ud)
{
	struct watcher *w;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->loop = loop;
	w->cfg = cfg;
	w->lg = lg;
	w->cb = *cb;
	w->ud = ud;
	w->ifd = -1;
	batch_queue_init(&w->settling);
	watchtab_init(&w->dirs);
	if (realpath(cfg->input_dir, w->root) == NULL) {
		rc = -errno;
		free(w);
		return rc;
	}
	if ((w->root_fd = beneath_root(w->root)) < 0) {
		rc = w->root_fd;
		free(w);
		return rc;
	}
	rel_if_inside(w->root, cfg->output_dir, w->excl_out,
	    sizeof(w->excl_out));
	if (cfg->source_action == ACTION_MOVE)
		rel_if_inside(w->root, cfg->done_dir, w->excl_done,
		    sizeof(w->excl_done));

	w->backend = cfg->watch_backend;
#ifdef __linux__
	if (w->backend == BACKEND_AUTO) {
		const char *fs = network_fs(w->root);
		w->backend = BACKEND_INOTIFY;
		if (fs) {
			w->backend = BACKEND_POLL;
			log_msg(lg, LOG_WARN, "watch_mode", "INPUT_DIR is on %s: "
			    "inotify does not see changes made by other "
			    "machines there, so it is polled (rescanned every "
			    "%d s; WATCH_BACKEND and RESCAN_INTERVAL_S change "
			    "this)", fs, cfg->rescan_interval_s > 0 ?
			    cfg->rescan_interval_s : POLL_DEFAULT_S);
		}
	}
#else
	if (w->backend == BACKEND_INOTIFY) {
		free(w);
		return -ENOTSUP;
	}
	if (w->backend == BACKEND_AUTO)
		w->backend = BACKEND_FSEVENT;
#endif
	uv_timer_init(loop, &w->move_timer);
	uv_timer_init(loop, &w->settle_timer);
	uv_timer_init(loop, &w->rescan_timer);
	uv_timer_init(loop, &w->startup);
	uv_timer_init(loop, &w->root_timer);
	uv_timer_init(loop, &w->walk_timer);
	w->move_timer.data = w->settle_timer.data = w->rescan_timer.data =
	    w->startup.data = w->root_timer.data = w->walk_timer.data = w;
#ifdef __linux__
	if (w->backend == BACKEND_INOTIFY) {
		if ((w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
			rc = -errno;
			log_msg(lg, LOG_ERROR, "error", "inotify_init1: %s",
			    strerror(errno));
			goto fail;
		}
		uv_poll_init(loop, &w->poll, w->ifd);
		w->poll.data = w;
		uv_poll_start(&w->poll, UV_READABLE, poll_cb);
		w->poll_active = true;
	}
#endif
	{
		uint64_t tick = (uint64_t)cfg->settle_ms / 4;
		if (tick < 20)
			tick = 20;
		uv_timer_start(&w->settle_timer, settle_tick, tick, tick);
	}
	{
		uint64_t every = (uint64_t)cfg->rescan_interval_s * 1000;
		if (every == 0 && w->backend == BACKEND_POLL)
			every = POLL_DEFAULT_S * 1000;
		if (every > 0)
			uv_timer_start(&w->rescan_timer, rescan_tick, every,
			    every);
	}
	/* Walk from the loop, once the caller has logged its start line. */
	uv_timer_start(&w->startup, startup_walk, 0, 0);
	*wp = w;
	return 0;
fail:
	uv_close((uv_handle_t *)&w->move_timer, NULL);
	uv_close((uv_handle_t *)&w->settle_timer, NULL);
	uv_close((uv_handle_t *)&w->rescan_timer, NULL);
	uv_close((uv_handle_t *)&w->startup, NULL);
	uv_close((uv_handle_t *)&w->root_timer, NULL);
	uv_close((uv_handle_t *)&w->walk_timer, NULL);
	/* The handles above are closed by the loop; w leaks rather than
	 * being freed under them (start-up failure ends the process). */
	return rc;
}

void
watcher_rescan(struct watcher *w, const char *reason)
{
	if (!w->walking)
		full_walk(w, reason);
}

bool
watcher_busy(const struct watcher *w)
{
	return w->walking || w->settling.len > 0 || w->moves != NULL;
}

int64_t
watcher_watched(const struct watcher *w)
{
	return w->backend == BACKEND_POLL ? -1 :
	    (int64_t)watchtab_count(&w->dirs);
}

const char *
watcher_backend_name(const struct watcher *w)
{
	return w->backend == BACKEND_INOTIFY ? "inotify" :
	    w->backend == BACKEND_POLL ? "poll" : "fsevent";
}

static void
handle_closed(uv_handle_t *h)
{
	struct watcher *w = h->data;

	if (--w->closing > 0)
		return;
	batch_queue_free(&w->settling);
	if (w->ifd != -1)
		close(w->ifd);
	close(w->root_fd);
	watchtab_free(&w->dirs);
	free(w);
}

void
watcher_stop(struct watcher *w)
{
	struct pending_move *m;

	while (watchtab_count(&w->dirs) > 0)
		drop_dir(w, (struct wdir *)watchtab_at(&w->dirs,
		    watchtab_count(&w->dirs) - 1));
	while ((m = w->moves) != NULL) {
		w->moves = m->next;
		free(m->rel);
		free(m);
	}
	w->closing = 6;
	uv_close((uv_handle_t *)&w->walk_timer, handle_closed);
	uv_close((uv_handle_t *)&w->root_timer, handle_closed);
	uv_close((uv_handle_t *)&w->move_timer, handle_closed);
	uv_close((uv_handle_t *)&w->settle_timer, handle_closed);
	uv_close((uv_handle_t *)&w->rescan_timer, handle_closed);
	uv_close((uv_handle_t *)&w->startup, handle_closed);
	if (w->poll_active) {
		w->closing++;
		uv_close((uv_handle_t *)&w->poll, handle_closed);
	}
}
