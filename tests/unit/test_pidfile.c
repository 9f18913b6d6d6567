/*
 * Unit tests of src/common/pidfile.c: the instance lock on an input folder (in
 * one process and across processes, with the holder's pid in the
 * message), the pidfile (write, refuse while held, reuse a dead process's
 * file, remove only our own), and daemonize()'s readiness protocol (exit 0
 * once ready, the daemon's start-up status otherwise, and the caller's
 * pipe released at readiness).
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pidfile.h"

static char tmp[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/tw-pidfile-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void
path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmp, name);
}

static char *
slurp(const char *path)
{
	static char buf[256];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd == -1)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_lock_twice_in_one_process(void **state)
{
	char in[PATH_MAX], err[512], want[64];
	int a, b;

	(void)state;
	path_in(in, sizeof(in), "input");
	assert_int_equal(mkdir(in, 0755), 0);
	a = instance_lock(in, err, sizeof(err));
	assert_true(a >= 0);
	b = instance_lock(in, err, sizeof(err));
	assert_int_equal(b, -EWOULDBLOCK);
	assert_non_null(strstr(err, in));
	assert_non_null(strstr(err, "already watched"));
	/* /proc/locks names the holder: this very process. */
	snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
	assert_non_null(strstr(err, want));
	assert_int_equal(lock_holder(a), getpid());
	instance_unlock(a);
	b = instance_lock(in, err, sizeof(err));
	assert_true(b >= 0);
	instance_unlock(b);
}

/* Nothing is written into the input folder. */
static void
test_lock_writes_nothing(void **state)
{
	char in[PATH_MAX], err[512];
	struct stat before, after;
	int fd;

	(void)state;
	path_in(in, sizeof(in), "clean");
	assert_int_equal(mkdir(in, 0755), 0);
	assert_int_equal(stat(in, &before), 0);
	fd = instance_lock(in, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(stat(in, &after), 0);
	assert_int_equal(before.st_nlink, after.st_nlink);
	assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	instance_unlock(fd);
}

static void
test_lock_across_processes(void **state)
{
	char in[PATH_MAX], err[512], want[64], c;
	int p[2], q[2], fd, st;
	pid_t pid;

	(void)state;
	path_in(in, sizeof(in), "shared");
	assert_int_equal(mkdir(in, 0755), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = instance_lock(in, err, sizeof(err));
		c = fd >= 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1 || read(q[0], &c, 1) != 1)
			_exit(2);
		_exit(fd >= 0 ? 0 : 1);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	fd = instance_lock(in, err, sizeof(err));
	assert_int_equal(fd, -EWOULDBLOCK);
	snprintf(want, sizeof(want), "(pid %ld)", (long)pid);
	assert_non_null(strstr(err, want));
	/* The holder exits: the lock goes with it (no stale lock). */
	assert_int_equal(write(q[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fd = instance_lock(in, err, sizeof(err));
	assert_true(fd >= 0);
	instance_unlock(fd);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static void
test_lock_missing_folder(void **state)
{
	char in[PATH_MAX], err[512];

	(void)state;
	path_in(in, sizeof(in), "nope");
	assert_int_equal(instance_lock(in, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, in));
	/* A file is not a folder. */
	path_in(in, sizeof(in), "afile");
	close(open(in, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(instance_lock(in, err, sizeof(err)), -ENOTDIR);
}

/* A deleted folder is let go (else the kernel holds back inotify's
 * IN_DELETE_SELF), and the lock is taken again on the folder that comes
 * back, unless another daemon took it first. */
static void
test_lock_check_follows_the_folder(void **state)
{
	char in[PATH_MAX], away[PATH_MAX], err[512], want[64], c;
	int fd, p[2], q[2], st;
	pid_t pid;

	(void)state;
	path_in(in, sizeof(in), "moving");
	path_in(away, sizeof(away), "moved-away");
	assert_int_equal(mkdir(in, 0755), 0);
	fd = instance_lock(in, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 0);
	assert_true(fd >= 0);

	/* Deleted: released; nothing there: nothing to take. */
	assert_int_equal(rmdir(in), 0);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 1);
	assert_int_equal(fd, -1);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 0);
	assert_int_equal(fd, -1);
	/* Back: taken again. */
	assert_int_equal(mkdir(in, 0755), 0);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 2);
	assert_true(fd >= 0);
	assert_int_equal(instance_lock(in, err, sizeof(err)), -EWOULDBLOCK);

	/* Moved away and replaced by a new folder: the new one is locked. */
	assert_int_equal(rename(in, away), 0);
	assert_int_equal(mkdir(in, 0755), 0);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 1);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 2);
	assert_int_equal(instance_lock(in, err, sizeof(err)), -EWOULDBLOCK);

	/* Gone, and another process locks the new folder first. */
	assert_int_equal(rmdir(in), 0);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 1);
	assert_int_equal(mkdir(in, 0755), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(q), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int cfd = instance_lock(in, err, sizeof(err));
		c = cfd >= 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1 || read(q[0], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)),
	    -EWOULDBLOCK);
	assert_int_equal(fd, -1);
	snprintf(want, sizeof(want), "(pid %ld)", (long)pid);
	assert_non_null(strstr(err, want));
	assert_int_equal(write(q[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(instance_lock_check(&fd, in, err, sizeof(err)), 2);
	instance_unlock(fd);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	rmdir(away);
}

static void
test_pidfile_write_and_refuse(void **state)
{
	struct pidfile a = PIDFILE_INIT, b = PIDFILE_INIT;
	char path[PATH_MAX], dir[PATH_MAX], err[512], want[64];
	struct stat sb;

	(void)state;
	path_in(dir, sizeof(dir), "run/sub");
	path_in(path, sizeof(path), "run/sub/tw.pid");
	assert_int_equal(pidfile_write(&a, path, err, sizeof(err)), 0);
	/* Missing folders are made private. */
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(slurp(path), want);

	assert_int_equal(pidfile_write(&b, path, err, sizeof(err)),
	    -EWOULDBLOCK);
	assert_int_equal(b.fd, -1);
	assert_non_null(strstr(err, path));
	snprintf(want, sizeof(want), "process %ld", (long)getpid());
	assert_non_null(strstr(err, want));
	/* The refusal left the file alone. */
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(slurp(path), want);

	pidfile_remove(&a);
	assert_int_equal(a.fd, -1);
	assert_int_equal(access(path, F_OK), -1);
	pidfile_remove(&a);	/* twice is harmless */
	pidfile_remove(&b);	/* never written: harmless */
}

/* A pidfile left by kill -9 (unlocked, a dead pid, longer text) is
 * reused and rewritten whole. */
static void
test_pidfile_stale_reused(void **state)
{
	struct pidfile a = PIDFILE_INIT;
	char path[PATH_MAX], err[512], want[64];
	FILE *fp;

	(void)state;
	path_in(path, sizeof(path), "stale.pid");
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("99999999\ntrailing junk\n", fp);
	fclose(fp);
	assert_int_equal(pidfile_write(&a, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(slurp(path), want);
	pidfile_remove(&a);
}

/* Removing never deletes a file that replaced ours. */
static void
test_pidfile_remove_only_ours(void **state)
{
	struct pidfile a = PIDFILE_INIT;
	char path[PATH_MAX], err[512];
	FILE *fp;

	(void)state;
	path_in(path, sizeof(path), "replaced.pid");
	assert_int_equal(pidfile_write(&a, path, err, sizeof(err)), 0);
	assert_int_equal(unlink(path), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("1\n", fp);
	fclose(fp);
	pidfile_remove(&a);
	assert_string_equal(slurp(path), "1\n");
}

static void
test_pidfile_symlink_refused(void **state)
{
	struct pidfile a = PIDFILE_INIT;
	char path[PATH_MAX], target[PATH_MAX], err[512];

	(void)state;
	path_in(target, sizeof(target), "precious");
	path_in(path, sizeof(path), "link.pid");
	close(open(target, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(pidfile_write(&a, path, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, path));
}

/* Runs `what` in a daemonize()d process.  The test process forks a child
 * that plays the command line; its exit status is returned.  *daemon_pid
 * is what the daemon wrote in pidpath.  out_eof: whether the child's
 * stdout pipe reached EOF within 2 s of its exit while the daemon lives
 * on. */
enum what { READY, FINISH_75, DIE_SILENTLY };

static int
run_daemonized(enum what what, const char *pidpath, long *daemon_pid,
    bool *out_eof)
{
	int p[2], st;
	struct pollfd pfd;
	char buf[64];
	pid_t pid;
	FILE *fp;

	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (daemonize() != 0)
			_exit(99);
		/* The daemon: a new session, and not its leader. */
		if ((fp = fopen(pidpath, "w")) != NULL) {
			fprintf(fp, "%ld %d\n", (long)getpid(),
			    getsid(0) == getpid() ? 1 : 0);
			fclose(fp);
		}
		switch (what) {
		case READY:
			daemonize_ready();
			/* Lives on past the caller's exit, holding nothing
			 * of the caller's. */
			usleep(1500 * 1000);
			_exit(0);
		case FINISH_75:
			daemonize_finish(75);
			_exit(75);
		case DIE_SILENTLY:
			_exit(3);
		}
		_exit(98);
	}
	close(p[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	*out_eof = false;
	/* EOF (read 0) well before the daemon's 1.5 s are over. */
	if (poll(&pfd, 1, 1000) == 1 && read(p[0], buf, sizeof(buf)) == 0)
		*out_eof = true;
	close(p[0]);
	*daemon_pid = 0;
	if (what == READY) {
		char *s = slurp(pidpath);
		int leader = -1;
		assert_non_null(s);
		assert_int_equal(sscanf(s, "%ld %d", daemon_pid, &leader), 2);
		/* A new session, and not its leader (no terminal can be
		 * acquired again). */
		assert_int_equal(leader, 0);
	}
	return st;
}

static void
test_daemonize_ready(void **state)
{
	char pidpath[PATH_MAX];
	long dpid;
	bool eof;
	int st;

	(void)state;
	path_in(pidpath, sizeof(pidpath), "daemon.pid");
	st = run_daemonized(READY, pidpath, &dpid, &eof);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(dpid > 0);
	/* Still running after the command returned. */
	assert_int_equal(kill((pid_t)dpid, 0), 0);
	/* The command's stdout was let go at readiness. */
	assert_true(eof);
}

static void
test_daemonize_finish_status(void **state)
{
	char pidpath[PATH_MAX];
	long dpid;
	bool eof;
	int st;

	(void)state;
	path_in(pidpath, sizeof(pidpath), "daemon75.pid");
	st = run_daemonized(FINISH_75, pidpath, &dpid, &eof);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 75);
	path_in(pidpath, sizeof(pidpath), "daemon70.pid");
	st = run_daemonized(DIE_SILENTLY, pidpath, &dpid, &eof);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 70);
}

/* Outside a daemonized process these are no-ops. */
static void
test_ready_without_daemonize(void **state)
{
	(void)state;
	assert_int_equal(daemonize_ready(), 0);
	daemonize_finish(1);
	assert_true(fcntl(1, F_GETFD) >= 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_twice_in_one_process),
		cmocka_unit_test(test_lock_writes_nothing),
		cmocka_unit_test(test_lock_across_processes),
		cmocka_unit_test(test_lock_missing_folder),
		cmocka_unit_test(test_lock_check_follows_the_folder),
		cmocka_unit_test(test_pidfile_write_and_refuse),
		cmocka_unit_test(test_pidfile_stale_reused),
		cmocka_unit_test(test_pidfile_remove_only_ours),
		cmocka_unit_test(test_pidfile_symlink_refused),
		cmocka_unit_test(test_daemonize_ready),
		cmocka_unit_test(test_daemonize_finish_status),
		cmocka_unit_test(test_ready_without_daemonize),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
