/*
 * log: JSON Lines records, one write() each on an O_APPEND descriptor.
 *
 * The line is built in full before the single write, so concurrent readers
 * (tail -f, log shippers) never see half a record and a rotation between
 * two records loses nothing: logrotate moves the file, SIGHUP makes us open
 * the path again, and every record lands whole in one file or the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "safedir.h"

/* Opens the log's folder and checks it: a folder another user can write
 * lets them swap the log's name for a link at any moment. */
static int
open_dir(const char *path, char *base, size_t baselen, char *err,
    size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int dfd, rc;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
		snprintf(base, baselen, "%s", path);
	} else {
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
		snprintf(base, baselen, "%s", slash + 1);
	}
	if (base[0] == '\0') {
		snprintf(err, errlen, "LOG_FILE %s names a folder", path);
		return -EISDIR;
	}
	if ((rc = safedir_check("the folder of LOG_FILE", dir, SAFEDIR_LOG,
	    err, errlen)) < 0)
		return rc;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		rc = -errno;
		snprintf(err, errlen, "LOG_FILE %s: cannot open its folder: "
		    "%s", path, strerror(-rc));
		return rc;
	}
	return dfd;
}

/*
 * O_NOFOLLOW: a symlink planted at the log's name (before start-up or
 * between a rotation and SIGHUP) must not make us append to the file it
 * names.  O_NONBLOCK: a FIFO there must not hang start-up.  What we opened
 * is then judged on the descriptor, so nothing can change between check
 * and use: a regular file, ours (or root's), with no second name (a hard
 * link made to some other file).
 */
static int
open_path(const char *path, char *err, size_t errlen)
{
	char base[NAME_MAX + 1];
	struct stat sb;
	int dfd, fd, rc;

	if ((rc = fs_mkdir_parents(path, 0755)) < 0) {
		snprintf(err, errlen, "LOG_FILE %s: cannot create its folder: "
		    "%s", path, strerror(-rc));
		return rc;
	}
	if ((dfd = open_dir(path, base, sizeof(base), err, errlen)) < 0)
		return dfd;
	fd = openat(dfd, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC, 0644);
	rc = fd == -1 ? -errno : 0;
	close(dfd);
	if (rc == -ELOOP) {
		snprintf(err, errlen, "LOG_FILE %s is a symbolic link; not "
		    "following it (make it a regular file)", path);
		return rc;
	}
	/* ENXIO: a FIFO nobody reads (O_NONBLOCK). */
	if (rc == -ENXIO) {
		snprintf(err, errlen, "LOG_FILE %s is not a regular file; not "
		    "writing to it", path);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "LOG_FILE %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &sb) == -1)
		rc = -errno;
	else if (!S_ISREG(sb.st_mode))
		rc = -EINVAL;
	else if (!safedir_owner_ok(sb.st_uid))
		rc = -EPERM;
	else if (sb.st_nlink != 1)
		rc = -EMLINK;
	else if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) == -1)
		rc = -errno;
	if (rc == 0)
		return fd;
	close(fd);
	if (rc == -EINVAL)
		snprintf(err, errlen, "LOG_FILE %s is not a regular file; not "
		    "writing to it", path);
	else if (rc == -EPERM)
		snprintf(err, errlen, "LOG_FILE %s belongs to uid %u, not to "
		    "this user (uid %u); not writing to it", path,
		    (unsigned)sb.st_uid, (unsigned)geteuid());
	else if (rc == -EMLINK)
		snprintf(err, errlen, "LOG_FILE %s has %lu hard links: another "
		    "name may be a file that is not the log; not writing to it",
		    path, (unsigned long)sb.st_nlink);
	else
		snprintf(err, errlen, "LOG_FILE %s: %s", path, strerror(-rc));
	return rc;
}

/* "-": standard output (a container's log), as a descriptor of our own
 * (close-on-exec, so workers do not inherit it); never reopened. */
static int
open_stdout(void)
{
	int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);

	return fd == -1 ? -errno : fd;
}

int
log_open(struct logger *lg, const char *path, enum log_level level)
{
	char why[1024];
	int fd;

	memset(lg, 0, sizeof(*lg));
	lg->fd = -1;
	json_init(&lg->j);
	if (strlen(path) >= sizeof(lg->path))
		return -ENAMETOOLONG;
	strcpy(lg->path, path);
	lg->level = level;
	lg->tty = isatty(STDERR_FILENO);
	if (strcmp(path, "-") == 0) {
		/* JSON on a terminal already: no readable echo as well. */
		if (isatty(STDOUT_FILENO))
			lg->tty = false;
		fd = open_stdout();
	} else if ((fd = open_path(path, why, sizeof(why))) < 0)
		/* The caller prints only the errno; say which rule. */
		dprintf(STDERR_FILENO, "thumbwatch: %s\n", why);
	if (fd < 0)
		return fd;
	lg->fd = fd;
	return 0;
}

int
log_reopen(struct logger *lg)
{
	char why[1024];
	int fd;

	if (strcmp(lg->path, "-") == 0)
		return 0;	/* standard output: nothing to reopen */
	/* Open the new file before closing the old: on failure we keep
	 * logging somewhere rather than nowhere (the rotated file), and
	 * say so there. */
	if ((fd = open_path(lg->path, why, sizeof(why))) < 0) {
		log_msg(lg, LOG_ERROR, "log_reopen_failed", "%s; still "
		    "writing to the file open before", why);
		return fd;
	}
	if (lg->fd != -1)
		close(lg->fd);
	lg->fd = fd;
	return 0;
}

void
log_close(struct logger *lg)
{
	if (lg->fd != -1)
		close(lg->fd);
	lg->fd = -1;
	json_free(&lg->j);
}

struct json_buf *
log_begin(struct logger *lg, enum log_level lv, const char *event)
{
	struct timespec ts;
	char when[32];

	lg->active = lv >= lg->level;
	if (!lg->active)
		return NULL;
	lg->cur = lv;
	snprintf(lg->event, sizeof(lg->event), "%s", event);
	clock_gettime(CLOCK_REALTIME, &ts);
	json_rfc3339(when, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	json_reset(&lg->j);
	json_begin(&lg->j);
	json_str(&lg->j, "ts", when);
	json_str(&lg->j, "level", config_log_level_name(lv));
	json_str(&lg->j, "event", event);
	return &lg->j;
}

/* One writev: an O_APPEND write of a regular file is a single append, so
 * the record and its newline land together. */
static int
write_record(int fd, const char *p, size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)p, .iov_len = len },
		{ .iov_base = (void *)"\n", .iov_len = 1 },
	};
	ssize_t n;

	do {
		n = writev(fd, iov, 2);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	return (size_t)n == len + 1 ? 0 : -EIO;
}

/* The readable echo for a terminal: "12:00:01 info  done {...rest}". */
static void
echo_tty(const struct logger *lg, const char *line, size_t len)
{
	const char *rest, *ts;
	char buf[64];

	/* Skip {"ts":"...","level":"...","event":"...", keep the rest. */
	rest = strstr(line, "\"event\":");
	rest = rest ? strchr(rest + 9, '"') : NULL;
	ts = strstr(line, "T");
	snprintf(buf, sizeof(buf), "%.12s %-5s %-14s", ts ? ts + 1 : "",
	    config_log_level_name(lg->cur), lg->event);
	if (rest && rest[1] == ',')
		dprintf(STDERR_FILENO, "%s {%.*s\n", buf,
		    (int)(len - (size_t)(rest + 2 - line)), rest + 2);
	else
		dprintf(STDERR_FILENO, "%s\n", buf);
}

int
log_commit(struct logger *lg)
{
	struct json_buf *j = &lg->j;
	int rc = 0;

	if (!lg->active)
		return 0;
	lg->active = false;
	json_end(j);
	if (j->err)
		return j->err;
	if (lg->tty && !lg->quiet_tty)
		echo_tty(lg, j->buf, j->len);
	if (lg->fd != -1)
		rc = write_record(lg->fd, j->buf, j->len);
	if (lg->tap)
		lg->tap(lg->tap_ud, lg->event, j->buf, j->len);
	return rc;
}

void
log_msg(struct logger *lg, enum log_level lv, const char *event,
    const char *fmt, ...)
{
	struct json_buf *j;
	char msg[2048];
	va_list ap;

	if ((j = log_begin(lg, lv, event)) == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_str(j, "message", msg);
	log_commit(lg);
}
