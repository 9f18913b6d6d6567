/*
 * pidfile: the instance lock, the pidfile and daemonize().
 *
 * Why the lock is on the input folder and not in it: the input tree is the
 * user's (a Samba share, an upload target) and is never written; a lock on
 * a descriptor of the folder itself needs no file there, and two daemons
 * with different working directories, runtime folders or pidfiles still
 * meet on it.  The pid for the "already running" message comes from
 * /proc/locks, which lists every flock with its owner's pid and the
 * locked inode, so no second copy of the pid has to be kept in sync.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "pidfile.h"
#include "safedir.h"

#define EX_SOFTWARE 70

/* ---- instance lock ----------------------------------------------------- */

pid_t
lock_holder(int fd)
{
	char line[256], type[16], dev[64];
	unsigned int maj, min;
	unsigned long long ino;
	struct stat sb;
	pid_t found = 0;
	FILE *fp;
	long pid;

	if (fstat(fd, &sb) == -1 ||
	    (fp = fopen("/proc/locks", "re")) == NULL)
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 1234 fe:00:10987854 0 EOF"; a waiter
	 * has "->" after the number and is not a holder. */
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strstr(line, "->") != NULL ||
		    sscanf(line, "%*s %15s %*s %*s %ld %63s", type, &pid,
		    dev) != 3 || strcmp(type, "FLOCK") != 0 || pid <= 0)
			continue;
		if (sscanf(dev, "%x:%x:%llu", &maj, &min, &ino) != 3)
			continue;
		if (maj == major(sb.st_dev) && min == minor(sb.st_dev) &&
		    ino == (unsigned long long)sb.st_ino) {
			found = (pid_t)pid;
			break;
		}
	}
	fclose(fp);
	return found;
}

int
instance_lock(const char *input_dir, char *err, size_t errlen)
{
	pid_t holder;
	int fd, rc;

	fd = open(input_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		rc = -errno;
		snprintf(err, errlen, "cannot open INPUT_DIR %s to lock it: %s",
		    input_dir, strerror(-rc));
		return rc;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	rc = -errno;
	if (rc == -EWOULDBLOCK) {
		holder = lock_holder(fd);
		if (holder > 0)
			snprintf(err, errlen, "INPUT_DIR %s is already watched "
			    "by another thumbwatch (pid %ld); two daemons must "
			    "not share an input folder", input_dir,
			    (long)holder);
		else
			snprintf(err, errlen, "INPUT_DIR %s is already watched "
			    "by another thumbwatch; two daemons must not share "
			    "an input folder", input_dir);
	} else {
		snprintf(err, errlen, "cannot lock INPUT_DIR %s (%s): this "
		    "file system may not support flock; nothing stops a "
		    "second daemon on it", input_dir, strerror(-rc));
	}
	close(fd);
	return rc;
}

void
instance_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int
instance_lock_check(int *fd, const char *input_dir, char *err,
    size_t errlen)
{
	struct stat held, now;
	int rc;

	if (*fd >= 0) {
		if (fstat(*fd, &held) == 0 && held.st_nlink > 0 &&
		    stat(input_dir, &now) == 0 && now.st_dev == held.st_dev &&
		    now.st_ino == held.st_ino)
			return 0;
		/* Gone or replaced: let go, so the deletion completes and
		 * inotify reports it. */
		close(*fd);
		*fd = -1;
		return 1;
	}
	if (stat(input_dir, &now) == -1 || !S_ISDIR(now.st_mode))
		return 0;
	if ((rc = instance_lock(input_dir, err, errlen)) < 0)
		return rc;
	*fd = rc;
	return 2;
}

/* ---- pidfile ----------------------------------------------------------- */

int
pidfile_dir_check(const char *path, char *err, size_t errlen)
{
	return safedir_check_parent("the pidfile's folder", path,
	    SAFEDIR_PRIVATE, err, errlen);
}

/* The pid written in an open pidfile, or 0. */
static long
read_pid(int fd)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

int
pidfile_write(struct pidfile *pf, const char *path, char *err,
    size_t errlen)
{
	char buf[32];
	struct stat sb;
	long other;
	int fd, rc, n;

	pf->fd = -1;
	if (snprintf(pf->path, sizeof(pf->path), "%s", path) >=
	    (int)sizeof(pf->path)) {
		snprintf(err, errlen, "pidfile %s: path too long", path);
		return -ENAMETOOLONG;
	}
	if ((rc = fs_mkdir_parents(path, 0700)) < 0) {
		snprintf(err, errlen, "cannot create the folder of pidfile %s: "
		    "%s", path, strerror(-rc));
		return rc;
	}
	if ((rc = pidfile_dir_check(path, err, errlen)) < 0)
		return rc;
	/* O_NOFOLLOW: a planted symlink must not make us truncate some other
	 * file; O_NONBLOCK: a planted FIFO must not hang us. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
	    0644);
	if (fd == -1) {
		rc = -errno;
		if (rc == -ELOOP)
			snprintf(err, errlen, "pidfile %s is a symbolic link; "
			    "not following it", path);
		else
			snprintf(err, errlen, "cannot create pidfile %s: %s",
			    path, strerror(-rc));
		return rc;
	}
	/* Judged on the descriptor: a file someone else owns (they could
	 * rewrite the pid and have an admin's kill hit another process) or
	 * with a second name is not ours to write. */
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    !safedir_owner_ok(sb.st_uid) || sb.st_nlink != 1) {
		snprintf(err, errlen, "pidfile %s (owner uid %u, %lu name(s)) "
		    "is not a regular file of this user (uid %u) with one "
		    "name; not trusting it", path, (unsigned)sb.st_uid,
		    (unsigned long)sb.st_nlink, (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		rc = -errno;
		if (rc == -EWOULDBLOCK) {
			other = read_pid(fd);
			if (other <= 0)
				other = (long)lock_holder(fd);
			if (other > 0)
				snprintf(err, errlen, "pidfile %s is held by "
				    "running process %ld: is thumbwatch "
				    "already running?", path, other);
			else
				snprintf(err, errlen, "pidfile %s is held by "
				    "another running process: is thumbwatch "
				    "already running?", path);
		} else {
			snprintf(err, errlen, "cannot lock pidfile %s: %s",
			    path, strerror(-rc));
		}
		close(fd);
		return rc;
	}
	/* The lock is ours: whatever pid is inside is a dead process's. */
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n ||
	    fstat(fd, &sb) == -1) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write pidfile %s: %s", path,
		    strerror(-rc));
		close(fd);
		return rc;
	}
	pf->fd = fd;
	pf->dev = sb.st_dev;
	pf->ino = sb.st_ino;
	return 0;
}

void
pidfile_remove(struct pidfile *pf)
{
	struct stat sb;

	if (pf->fd < 0)
		return;
	/* Only our own file: if someone replaced it (a second daemon
	 * started after it was deleted by hand), it is theirs. */
	if (stat(pf->path, &sb) == 0 && sb.st_dev == pf->dev &&
	    sb.st_ino == pf->ino)
		unlink(pf->path);
	close(pf->fd);
	pf->fd = -1;
}

/* ---- daemonize --------------------------------------------------------- */

/* Write end of the readiness pipe in the daemon, until it reports. */
static int ready_fd = -1;

/* What the daemon tells the waiting process: one byte, the start-up
 * status (0: running).  One byte is atomic on a pipe. */
static void
send_status(int fd, int status)
{
	unsigned char b = (unsigned char)(status < 0 ? EX_SOFTWARE :
	    status > 255 ? EX_SOFTWARE : status);
	ssize_t n;

	do {
		n = write(fd, &b, 1);
	} while (n == -1 && errno == EINTR);
}

static void __attribute__((noreturn))
wait_for_daemon(int fd, pid_t child)
{
	unsigned char b;
	ssize_t n;
	int st;

	/* The middle process exits at once; reap it. */
	while (waitpid(child, &st, 0) == -1 && errno == EINTR)
		;
	do {
		n = read(fd, &b, 1);
	} while (n == -1 && errno == EINTR);
	if (n == 1)
		_exit(b);
	dprintf(2, "thumbwatch: the daemon exited during start-up without "
	    "a status (see the log)\n");
	_exit(EX_SOFTWARE);
}

/* Descriptors 0-2 open, so pipe() and later opens never land on them. */
static int
std_fds_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd == -1)
		return -errno;
	close(fd);
	return 0;
}

int
daemonize(void)
{
	pid_t pid;
	int p[2], rc;

	if ((rc = std_fds_open()) < 0)
		return rc;
	fflush(stdout);
	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) == -1)
		return -errno;
	if ((pid = fork()) == -1) {
		rc = -errno;
		close(p[0]);
		close(p[1]);
		return rc;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_daemon(p[0], pid);
	}
	close(p[0]);
	/* A new session: no controlling terminal, so a hang-up of the
	 * terminal no longer sends SIGHUP (which would reload us). */
	if (setsid() == -1) {
		dprintf(2, "thumbwatch: setsid: %s\n", strerror(errno));
		send_status(p[1], EX_SOFTWARE);
		_exit(EX_SOFTWARE);
	}
	if ((pid = fork()) == -1) {
		dprintf(2, "thumbwatch: fork: %s\n", strerror(errno));
		send_status(p[1], EX_SOFTWARE);
		_exit(EX_SOFTWARE);
	}
	if (pid > 0)
		_exit(0);
	/* Not a session leader: opening a terminal can never make it our
	 * controlling terminal again. */
	ready_fd = p[1];
	/* stdin is never read; stdout and stderr stay the caller's until
	 * daemonize_ready(). */
	if ((rc = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
		dup2(rc, 0);
		close(rc);
	}
	return 0;
}

int
daemonize_ready(void)
{
	int fd, rc = 0;

	if (ready_fd < 0)
		return 0;
	fflush(stdout);
	fflush(stderr);
	/* Drop the caller's terminal or pipe before saying "ready", so a
	 * caller that reads our output until EOF is not kept waiting. */
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		rc = -errno;
	} else {
		if (dup2(fd, 0) == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			rc = -errno;
		close(fd);
	}
	send_status(ready_fd, 0);
	close(ready_fd);
	ready_fd = -1;
	return rc;
}

void
daemonize_finish(int status)
{
	if (ready_fd < 0)
		return;
	fflush(stdout);
	fflush(stderr);
	send_status(ready_fd, status);
	close(ready_fd);
	ready_fd = -1;
}
