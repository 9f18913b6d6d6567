/*
 * pidfile: one daemon per input folder, the pidfile, and --daemon.
 *
 * Owns three start-up duties of `thumbwatch run` that are about the
 * process rather than the images:
 *  - the instance lock: flock() on the input folder itself, so two
 *    daemons (or a daemon and `once`) can never work on one input folder,
 *    whether they run in the foreground, with --daemon or under systemd,
 *    and whatever their working directory, pidfile or runtime folder.
 *    Nothing is written in the input tree; the holder's pid is found in
 *    /proc/locks (Linux) for the message.  A deleted input folder is let
 *    go (instance_lock_check), so the watcher still sees it disappear;
 *  - the pidfile (RUNTIME_DIR/thumbwatch.pid or --pidfile): created,
 *    flock()ed and kept open for the process lifetime, refused while
 *    another live process holds it, removed at exit;
 *  - daemonize(): the classic double fork for systems without systemd,
 *    with a readiness pipe so `thumbwatch run --daemon` exits 0 only once
 *    the daemon has passed its start-up checks, or with the daemon's own
 *    start-up exit status (the daemon's messages reach the terminal
 *    directly: its stderr is the caller's until it is ready).
 * No libuv, no libvips.  Locks are flock(2) locks: they belong to the open
 * file description, so they survive fork (the daemonized child keeps
 * them), vanish when the process dies (kill -9 leaves no stale lock), and
 * two opens in one process conflict (unit-testable in one process).
 */
#ifndef THUMBWATCH_PIDFILE_H
#define THUMBWATCH_PIDFILE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* Takes the instance lock on input_dir (which must exist): returns the
 * locked descriptor (>= 0, O_CLOEXEC, keep it open for the lifetime of
 * the process; closing it releases the lock), or:
 *  -EWOULDBLOCK  another process holds it; err names the folder and, when
 *                /proc/locks shows it, that process's pid;
 *  other -errno  the folder cannot be opened, or the file system does not
 *                support flock (some network file systems): err says so;
 *                callers may warn and go on without the lock. */
int instance_lock(const char *input_dir, char *err, size_t errlen);
void instance_unlock(int fd);

/* Keeps the instance lock on the folder that is at input_dir now; call it
 * every second or so.  An open descriptor pins a deleted folder: the
 * kernel then holds back inotify's IN_DELETE_SELF and IN_IGNORED (the
 * watcher's "input folder gone") until it is closed.  So:
 *  - *fd locked, but the folder was deleted, or input_dir now names
 *    another folder: closes it, *fd = -1, returns 1 (released);
 *  - *fd == -1 and a folder is at input_dir again: locks it, returns 2;
 *  - nothing changed: 0;
 *  - -EWOULDBLOCK: the folder now at input_dir is another daemon's (err
 *    says whose); *fd stays -1.  Other -errno as instance_lock(). */
int instance_lock_check(int *fd, const char *input_dir, char *err,
    size_t errlen);

/* The pid holding a flock on the file open as fd (looked up by device and
 * inode in /proc/locks), or 0 when unknown. */
pid_t lock_holder(int fd);

struct pidfile {
	int fd;			/* -1: none */
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
};

/* Creates path (and missing parent folders, mode 0700), locks it and
 * writes "PID\n".  The descriptor stays open and locked until
 * pidfile_remove() or exit.  A file left by a dead process is reused; one
 * locked by a live process is refused with -EWOULDBLOCK and a message
 * naming the file and that pid.  0 or -errno (message in err). */
int pidfile_write(struct pidfile *pf, const char *path, char *err,
    size_t errlen);

/* Refuses (-EPERM, message in err) a pidfile folder another local user
 * can write or swap (see safedir.h, SAFEDIR_PRIVATE).  0 or -errno. */
int pidfile_dir_check(const char *path, char *err, size_t errlen);

/* Unlinks the pidfile if it is still the one written (not replaced by
 * someone else since), then closes it.  Safe on a never-written pf
 * (fd == -1, as after `struct pidfile pf = PIDFILE_INIT`). */
void pidfile_remove(struct pidfile *pf);
#define PIDFILE_INIT { -1, 0, 0, "" }

/* Detaches from the terminal: fork, setsid, fork.  The working directory
 * is kept (relative paths in the configuration stay relative to where the
 * command was started) and so is the umask.  Returns 0 in the daemon; the
 * original process does not return: it waits until the daemon calls
 * daemonize_ready() and exits 0, or exits with the status the daemon
 * passed to daemonize_finish(), or 70 if the daemon died without saying.
 * Returns -errno (still in the original process, nothing forked) when the
 * pipe or the first fork fails.  Until ready, the daemon's stdout and
 * stderr are the caller's, so start-up errors print where the user looks. */
int daemonize(void);

/* In the daemon: points stdin, stdout and stderr at /dev/null and lets
 * the original process exit 0.  Call it before starting any child process
 * (workers would otherwise inherit the caller's terminal or pipe, and a
 * caller reading that pipe would wait for them).  A no-op returning 0 when
 * daemonize() was not called or readiness was already reported. */
int daemonize_ready(void);

/* In the daemon, when it exits before daemonize_ready(): passes status to
 * the waiting original process (which exits with it).  A no-op otherwise. */
void daemonize_finish(int status);

#endif
