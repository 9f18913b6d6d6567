/*
 * safedir: checks that the folders of the control socket, the pidfile and
 * the log cannot be written by another local user.
 *
 * The check walks the resolved path from the folder up to "/", as sshd's
 * secure_filename() does: a safe folder in a parent someone else can write
 * is not safe, since they can rename it away and put their own in its
 * place.  Symlinks are resolved first (realpath), so /var/run -> /run is
 * judged by /run.  This is a start-up check; the files themselves are
 * then opened without following symlinks and checked on the descriptor.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safedir.h"

bool
safedir_owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	snprintf(buf, len, "%s", pw != NULL ? pw->pw_name : "?");
	return buf;
}

/* Why sb (a folder) is unsafe under rule, or NULL. */
static const char *
unsafe(const struct stat *sb, enum safedir_rule rule, bool leaf)
{
	bool sticky = (sb->st_mode & S_ISVTX) != 0;

	if (!S_ISDIR(sb->st_mode))
		return "is not a folder";
	if (rule != SAFEDIR_CLIENT && !safedir_owner_ok(sb->st_uid))
		return "belongs to another user";
	if (leaf && rule != SAFEDIR_LOG && (sb->st_mode & (S_IWGRP |
	    S_IWOTH)) != 0)
		return "can be written by other users";
	if ((sb->st_mode & S_IWOTH) != 0 && !sticky)
		return "can be written by every user and has no sticky bit";
	return NULL;
}

/* Fills err for an unsafe folder.  -EPERM. */
static int
refuse(const char *what, const char *dir, const char *path,
    const struct stat *sb, bool leaf, const char *why, char *err,
    size_t errlen)
{
	char name[64];

	snprintf(err, errlen, "%s %s is not safe: %s%s (owner %s, uid %u, "
	    "mode %04o) %s, so another local user could replace what "
	    "thumbwatch keeps there; use a folder of this user (uid %u) that "
	    "no other user can write (chown, chmod go-w)", what, dir,
	    leaf ? "" : "the folder above it, ", path,
	    user_name(sb->st_uid, name, sizeof(name)), (unsigned)sb->st_uid,
	    (unsigned)(sb->st_mode & 07777), why, (unsigned)geteuid());
	return -EPERM;
}

/* The folders on the way as written, before symlinks are resolved: a
 * symlink in a folder someone else can write may point elsewhere by the
 * time we open it, whatever its target is now. */
static int
check_written(const char *what, const char *dir, enum safedir_rule rule,
    char *err, size_t errlen)
{
	char path[PATH_MAX], cwd[PATH_MAX];
	const char *why;
	struct stat sb;
	char *p;
	int n;

	if (dir[0] == '/')
		n = snprintf(path, sizeof(path), "%s", dir);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	else
		n = snprintf(path, sizeof(path), "%s/%s", cwd, dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	for (p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (stat(path, &sb) == -1)
			return -errno;
		if ((why = unsafe(&sb, rule, false)) != NULL)
			return refuse(what, dir, path, &sb, false, why, err,
			    errlen);
		*p = '/';
	}
	return 0;
}

int
safedir_check(const char *what, const char *dir, enum safedir_rule rule,
    char *err, size_t errlen)
{
	char path[PATH_MAX];
	const char *why;
	struct stat sb;
	char *slash;
	bool leaf = true;
	int rc;

	if (realpath(dir, path) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, dir, strerror(-rc));
		return rc;
	}
	if ((rc = check_written(what, dir, rule, err, errlen)) < 0) {
		if (rc != -EPERM)
			snprintf(err, errlen, "%s %s: %s", what, dir,
			    strerror(-rc));
		return rc;
	}
	/* Then the folder itself and everything above it as resolved. */
	for (;;) {
		if (stat(path, &sb) == -1) {
			rc = -errno;
			snprintf(err, errlen, "%s %s: %s: %s", what, dir, path,
			    strerror(-rc));
			return rc;
		}
		if ((why = unsafe(&sb, rule, leaf)) != NULL)
			return refuse(what, dir, path, &sb, leaf, why, err,
			    errlen);
		if (strcmp(path, "/") == 0)
			return 0;
		slash = strrchr(path, '/');
		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
		leaf = false;
	}
}

int
safedir_check_parent(const char *what, const char *path,
    enum safedir_rule rule, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
	return safedir_check(what, dir, rule, err, errlen);
}
