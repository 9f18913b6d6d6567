/*
 * safedir: is a folder the daemon keeps its socket, pidfile or log in out
 * of other local users' reach?
 *
 * Whoever can write a folder can replace the names in it (a socket that
 * answers `status`, a pidfile naming some other process, a log symlink);
 * whoever can write one of its parents can swap the folder itself.  The
 * rules follow sshd's StrictModes and tmux's socket folder check.
 *
 * Pure module (plain POSIX calls; no libuv, no libvips).
 */
#ifndef THUMBWATCH_SAFEDIR_H
#define THUMBWATCH_SAFEDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum safedir_rule {
	/* RUNTIME_DIR, the pidfile's folder: owned by us (or root) and
	 * writable by nobody else, not even with the sticky bit (others
	 * could still take the names first), like tmux's socket folder. */
	SAFEDIR_PRIVATE,
	/* The log's folder: owned by us (or root); a folder every user can
	 * write needs the sticky bit (/tmp).  Group-writable is allowed
	 * (Ubuntu's /var/log is root:syslog 0775). */
	SAFEDIR_LOG,
	/* `thumbwatch status` run by any user (root for a daemon user):
	 * the owner is not checked, only that nobody else can write. */
	SAFEDIR_CLIENT,
};

/* Checks dir (which must exist) and every folder above it: a parent must
 * be owned by us or root (not under SAFEDIR_CLIENT) and, if every user
 * can write it, have the sticky bit.  what names the folder in err
 * ("RUNTIME_DIR").  0, -EPERM (err says which folder, owner and mode), or
 * -errno. */
int safedir_check(const char *what, const char *dir, enum safedir_rule rule,
    char *err, size_t errlen);

/* safedir_check() of the folder that holds path ("." for a bare name). */
int safedir_check_parent(const char *what, const char *path,
    enum safedir_rule rule, char *err, size_t errlen);

/* Is a file (or folder) owned by uid one we may trust: ours or root's? */
bool safedir_owner_ok(uid_t uid);

#endif
