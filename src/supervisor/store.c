/*
 * the output store: every rule about OUTPUT_DIR.  The trees held open,
 * output names and same-stem collisions, failure markers, presets' epochs,
 * workers' temps, and removing or moving a source's thumbnails.
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
#include "config.h"
#include "failures.h"
#include "fsutil.h"
#include "log.h"
#include "outcome.h"
#include "pathmap.h"
#include "timeutil.h"
#include "uptodate.h"
#include "treewalk.h"
#include "supervisor.h"

/* A root folder deleted and made again (the watcher waits for INPUT_DIR
 * to come back) leaves our descriptor on the deleted one: open the new
 * one, by the administrator's path.  OUTPUT_DIR is made again, as the
 * workers' writes always did. */
void
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
int
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

/* Whether a path below OUTPUT_DIR (or an input path mirrored there as it
 * is: folders' deletes and moves) lies in the state folder.  The input
 * tree must never reach it, whatever the names and OUTPUT_TEMPLATE: a
 * folder in/.thumbwatch deleted or renamed would take the preset records
 * and failure markers with it.  Case-insensitive for an output tree on a
 * case-insensitive file system. */
bool
state_reachable(const char *orel)
{
	size_t n = strlen(STATE_DIR);

	while (*orel == '/')
		orel++;
	return strncasecmp(orel, STATE_DIR, n) == 0 &&
	    (orel[n] == '\0' || orel[n] == '/');
}

int
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
int
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
bool
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
void
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
void
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

void
clear_failed(struct daemon *d, const char *rel)
{
	char path[PATH_MAX];

	if (marker_rel(rel, path, sizeof(path)) == 0)
		beneath_unlink(d->out_fd, path, 0);
}

/* What the up-to-date check needs of one thumbnail (orel, below
 * OUTPUT_DIR): its times and the source size a worker recorded on it.
 * Opened beneath the output root and read through the descriptor, so a
 * symlink or a FIFO planted there counts as no thumbnail. */
void
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
bool
output_exists(struct daemon *d, const char *orel, struct stat *st)
{
	struct stat sb;

	if (st == NULL)
		st = &sb;
	return beneath_lstat(d->out_fd, orel, st) == 0 && S_ISREG(st->st_mode);
}

/* A file about to take the plain names (it sorts first among its
 * siblings) moves a later sibling's thumbnails found under them to that
 * sibling's own names first, when they are still its (the source's mtime
 * and size on them): the worker's rename then replaces nothing another
 * file owns, and the sibling is not made again. */
void
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

/* Calls fn with the path below OUTPUT_DIR of each of rel's thumbnails
 * as they are named when qualify says so. */
void
each_output(struct daemon *d, const char *rel, bool qualify,
    void (*fn)(struct daemon *, const char *))
{
	char orel[PATH_MAX];
	int i;

	for (i = 0; i < d->cfg->npresets; i++)
		if (output_rel(d, rel, i, qualify, orel, sizeof(orel)) == 0)
			fn(d, orel);
}

void
unlink_output(struct daemon *d, const char *orel)
{
	beneath_unlink(d->out_fd, orel, 0);
}

/* A worker killed while writing leaves its temp (pathmap_out_temp)
 * beside the thumbnail. */
void
unlink_temps_of(struct daemon *d, const char *orel)
{
	char prefix[NAME_MAX + 8];
	const char *name;
	struct dirent *de;
	size_t plen;
	DIR *dp;
	int dfd, n;

	if ((dfd = open_parent_dir(d->out_fd, orel, &name)) < 0)
		return;
	if ((dp = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	if ((n = pathmap_out_temp(prefix, sizeof(prefix), name, false)) < 0) {
		closedir(dp);
		return;
	}
	plen = (size_t)n;
	while ((de = readdir(dp)) != NULL)
		if (strncmp(de->d_name, prefix, plen) == 0 &&
		    strlen(de->d_name) == plen + PATHMAP_OUT_TEMP_RANDOM)
			unlinkat(dfd, de->d_name, 0);
	closedir(dp);
}

/* Moves rel's thumbnails from the names for qualification `from` to the
 * names for `to`, below OUTPUT_DIR. */
void
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

/* (Re)opens DONE_DIR, an administrator's path, when SOURCE_ACTION=move
 * needs it and it is not open yet or was changed by a reload. */
int
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
int
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

/* Moves one source's thumbnails that are still valid; a missing or stale
 * one is simply made again by the pick-up that follows. */
size_t
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

/* A preset's state file holds its fingerprint; it is rewritten (new
 * inode, new ctime) only when the definition changes, and its ctime is the
 * moment from which thumbnails count as made under this definition. */
void
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

struct temps {
	time_t older;
	uint64_t n;
};

static int
temp_visit(void *ud, int dfd, const char *name, const char *rel,
    unsigned char type, int depth)
{
	struct temps *t = ud;
	struct stat sb;

	(void)rel;
	if (type == DT_DIR)
		return depth == 0 && !strcmp(name, STATE_DIR) ? TREEWALK_SKIP :
		    TREEWALK_NEXT;
	if (pathmap_is_out_temp(name) && (t->older == 0 ||
	    (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    sb.st_mtime < t->older)) && unlinkat(dfd, name, 0) == 0)
		t->n++;
	return TREEWALK_NEXT;
}

/* Removes the workers' temps older than `older` (0: all) below
 * OUTPUT_DIR, the state folder aside.  How many went. */
uint64_t
store_clean_temps(struct daemon *d, time_t older)
{
	struct temps t = { older, 0 };
	int fd;

	if ((fd = beneath_open(d->out_fd, "", O_RDONLY | O_DIRECTORY, 0)) < 0)
		return 0;
	treewalk(fd, "", temp_visit, &t);
	return t.n;
}

static int
marker_visit(void *ud, int dfd, const char *name, const char *rel,
    unsigned char type, int depth)
{
	(void)dfd;
	(void)name;
	(void)depth;
	if (type != DT_DIR)
		batch_queue_push(ud, rel, 0);
	return TREEWALK_NEXT;
}

/* Collects the names of the files with a failure marker into q, whole
 * before any is picked up: that may write its marker again while the
 * folder is read. */
void
store_failed_markers(struct daemon *d, struct batch_queue *q)
{
	int fd;

	fd = beneath_open(d->out_fd, STATE_DIR "/failed", O_RDONLY |
	    O_DIRECTORY, 0);
	if (fd >= 0)
		treewalk(fd, "", marker_visit, q);
}

/* The failure markers follow the outcomes: a failure of the image (its
 * stat known) is remembered, a success forgets an earlier one. */
void
store_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;

	if (o->kind == OUTCOME_DONE)
		clear_failed(d, o->rel);
	else if (o->kind == OUTCOME_FAILED && o->src && !o->remembered)
		mark_failed(d, o->rel, o->src, o->text);
}
