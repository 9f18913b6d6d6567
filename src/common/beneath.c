/*
 * beneath: every path below a root resolved by the kernel with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or by a walk of O_NOFOLLOW opens
 * where openat2 is missing.  See beneath.h for the why.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "beneath.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* 1: openat2 works, 0: not tried yet, -1: missing (or forced off). */
static int kernel_ok;

/* openat2 answers EAGAIN when a rename raced the lookup: try again a few
 * times, then report it. */
#define RACE_RETRIES 16

bool
beneath_kernel(void)
{
	return kernel_ok >= 0;
}

void
beneath_force_walk(bool on)
{
	kernel_ok = on ? -1 : 0;
}

int
beneath_root(const char *path)
{
	int fd;

	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Refuses what neither resolver should see: an absolute path, a ".."
 * component, an empty one in the middle (a//b is harmless but is never
 * produced by us, so it marks a bug or an attack). */
static int
rel_check(const char *rel)
{
	const char *p = rel, *e;
	size_t n;

	if (rel[0] == '/')
		return -EXDEV;
	if (strlen(rel) >= PATH_MAX)
		return -ENAMETOOLONG;
	while (*p) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		if (n == 0 && e)
			return -EINVAL;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		p += n + (e ? 1 : 0);
	}
	return 0;
}

static int
open_kernel(int root, const char *rel, int flags, mode_t mode)
{
	struct open_how how;
	long fd;
	int i;

	memset(&how, 0, sizeof(how));
	/* No O_NOFOLLOW: with RESOLVE_NO_SYMLINKS a final symlink is ELOOP
	 * as any other, where O_NOFOLLOW | O_DIRECTORY would say ENOTDIR. */
	how.flags = (unsigned long long)(flags | O_CLOEXEC);
	if (flags & (O_CREAT | O_TMPFILE))
		how.mode = mode;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS;
	for (i = 0; i < RACE_RETRIES; i++) {
		fd = syscall(SYS_openat2, root, rel, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			break;
	}
	return -errno;
}

/* O_NOFOLLOW | O_DIRECTORY on a symlink says ENOTDIR: name it ELOOP, as
 * openat2 does. */
static int
walk_err(int dfd, const char *comp)
{
	struct stat st;
	int err = errno;

	if (err == ENOTDIR && fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0
	    && S_ISLNK(st.st_mode))
		err = ELOOP;
	return -err;
}

/* The walk: every folder component opened O_NOFOLLOW | O_DIRECTORY from
 * the previous one, the last with the caller's flags plus O_NOFOLLOW.  An
 * O_PATH open of a symlink with O_NOFOLLOW would succeed, so folders are
 * opened for reading (a symlink then fails with ELOOP). */
static int
open_walk(int root, const char *rel, int flags, mode_t mode)
{
	char comp[NAME_MAX + 1];
	const char *p = rel, *e;
	int dfd, fd;
	size_t n;

	if ((dfd = fcntl(root, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	for (;;) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (n == 0)
			snprintf(comp, sizeof(comp), ".");
		if (e == NULL || e[1] == '\0')
			break;
		fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd < 0)
			fd = walk_err(dfd, comp);
		close(dfd);
		if (fd < 0)
			return fd;
		dfd = fd;
		p = e + 1;
	}
	if (e && !(flags & O_DIRECTORY))
		flags |= O_DIRECTORY;	/* "a/" names a folder */
	fd = openat(dfd, comp, flags | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		fd = walk_err(dfd, comp);
	else if (flags & O_PATH) {
		/* O_PATH | O_NOFOLLOW opens a symlink itself */
		struct stat st;

		if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
			close(fd);
			fd = -ELOOP;
		}
	}
	close(dfd);
	return fd;
}

int
beneath_open(int root, const char *rel, int flags, mode_t mode)
{
	int rc;

	if ((rc = rel_check(rel)) < 0)
		return rc;
	if (rel[0] == '\0')
		rel = ".";
	if (kernel_ok >= 0) {
		rc = open_kernel(root, rel, flags, mode);
		if (rc != -ENOSYS && rc != -EPERM) {
			kernel_ok = 1;
			return rc;
		}
		/* EPERM is also a plain permission answer: only a first call
		 * that never worked decides the kernel path is missing. */
		if (kernel_ok == 1)
			return rc;
		kernel_ok = -1;
	}
	return open_walk(root, rel, flags, mode);
}

int
beneath_parent(int root, const char *rel, const char **leaf)
{
	char dir[PATH_MAX];
	const char *slash;
	int rc;

	if ((rc = rel_check(rel)) < 0)
		return rc;
	slash = strrchr(rel, '/');
	*leaf = slash ? slash + 1 : rel;
	if (**leaf == '\0' || strcmp(*leaf, ".") == 0)
		return -EINVAL;
	if (slash == NULL)
		return beneath_open(root, ".", O_PATH | O_DIRECTORY, 0);
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = '\0';
	return beneath_open(root, dir, O_PATH | O_DIRECTORY, 0);
}

int
beneath_lstat(int root, const char *rel, struct stat *st)
{
	const char *leaf;
	int dfd, rc = 0;

	if (rel[0] == '\0' || strcmp(rel, ".") == 0)
		return fstat(root, st) == -1 ? -errno : 0;
	if ((dfd = beneath_parent(root, rel, &leaf)) < 0)
		return dfd;
	if (fstatat(dfd, leaf, st, AT_SYMLINK_NOFOLLOW) == -1)
		rc = -errno;
	close(dfd);
	return rc;
}

int
beneath_unlink(int root, const char *rel, int flags)
{
	const char *leaf;
	int dfd, rc = 0;

	if ((dfd = beneath_parent(root, rel, &leaf)) < 0)
		return dfd;
	if (unlinkat(dfd, leaf, flags) == -1)
		rc = -errno;
	close(dfd);
	return rc;
}

int
beneath_unlink_same(int root, const char *rel, dev_t dev, ino_t ino)
{
	const char *leaf;
	struct stat st;
	int dfd, rc = 0;

	if ((dfd = beneath_parent(root, rel, &leaf)) < 0)
		return dfd;
	/* The folder is pinned by dfd: a swap between the check and the
	 * unlink can only put another file of this same folder there. */
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == -1)
		rc = -errno;
	else if (st.st_dev != dev || st.st_ino != ino)
		rc = -ESTALE;
	else if (unlinkat(dfd, leaf, 0) == -1)
		rc = -errno;
	close(dfd);
	return rc;
}

int
beneath_rename(int from_root, const char *from, int to_root, const char *to,
    unsigned int flags)
{
	const char *fleaf, *tleaf;
	int fdfd, tdfd, rc = 0;

	if ((fdfd = beneath_parent(from_root, from, &fleaf)) < 0)
		return fdfd;
	if ((tdfd = beneath_parent(to_root, to, &tleaf)) < 0) {
		close(fdfd);
		return tdfd;
	}
	if (renameat2(fdfd, fleaf, tdfd, tleaf, flags) == -1)
		rc = -errno;
	close(fdfd);
	close(tdfd);
	return rc;
}

int
beneath_mkdirs(int root, const char *rel, mode_t mode)
{
	char comp[NAME_MAX + 1];
	const char *p = rel, *e;
	int dfd, fd, rc;
	size_t n;

	if ((rc = rel_check(rel)) < 0)
		return rc;
	if ((dfd = fcntl(root, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	while (*p) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n + (e ? 1 : 0);
		if (n == 0 || strcmp(comp, ".") == 0)
			continue;
		if (mkdirat(dfd, comp, mode) == -1 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		/* A symlink planted where the folder is expected fails here
		 * (ELOOP), and so does a file (ENOTDIR). */
		fd = beneath_open(dfd, comp, O_PATH | O_DIRECTORY, 0);
		close(dfd);
		if ((dfd = fd) < 0)
			return fd;
	}
	close(dfd);
	return rc;
}

int
beneath_mkdir_parents(int root, const char *rel, mode_t mode)
{
	char dir[PATH_MAX];
	const char *slash;

	if ((slash = strrchr(rel, '/')) == NULL)
		return 0;
	if ((size_t)(slash - rel) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = '\0';
	return beneath_mkdirs(root, dir, mode);
}
