/*
 * Unit tests of src/common/writers.c: a file held open for writing is
 * refused the lease, a closed one is granted it; a file owned by someone
 * else (root: chown to nobody; CAP_LEASE still grants it) or one where no
 * lease can be taken says "cannot tell", never "no writer"; symlinks,
 * FIFOs and folders are not followed or leased.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "beneath.h"
#include "writers.h"

static char root[] = "/tmp/tw-writers-XXXXXX";
static int rootfd = -1;

static void
path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", root, rel);
}

static int
make_file(const char *rel)
{
	char p[PATH_MAX];
	int fd;

	path_of(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	return fd;
}

static void
test_open_for_writing_is_refused(void **state)
{
	char p[PATH_MAX];
	int fd, rfd;

	(void)state;
	fd = make_file("a.jpg");
	assert_int_equal(writers_none(rootfd, "a.jpg"), 1);
	/* a reader alongside the writer changes nothing */
	path_of(p, sizeof(p), "a.jpg");
	rfd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(writers_none(rootfd, "a.jpg"), 1);
	close(fd);
	/* closed by the writer; a reader still holding it is no writer */
	assert_int_equal(writers_none(rootfd, "a.jpg"), 0);
	close(rfd);
	assert_int_equal(writers_none(rootfd, "a.jpg"), 0);
	/* and again: the lease was given back, not kept */
	assert_int_equal(writers_none(rootfd, "a.jpg"), 0);
	/* O_RDWR counts as writing */
	fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(writers_none(rootfd, "a.jpg"), 1);
	close(fd);
	assert_int_equal(writers_none(rootfd, "a.jpg"), 0);
}

/* A writer in another process: leases see every process's descriptors. */
static void
test_writer_in_child(void **state)
{
	int fd, ready[2], go[2];
	pid_t pid;
	char c;

	(void)state;
	close(make_file("child.jpg"));
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	if ((pid = fork()) == 0) {
		char p[PATH_MAX];

		path_of(p, sizeof(p), "child.jpg");
		fd = open(p, O_WRONLY | O_APPEND);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		close(fd);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(writers_none(rootfd, "child.jpg"), 1);
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(writers_none(rootfd, "child.jpg"), 0);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

/* A writer that opens the file while we hold the lease would have the
 * kernel signal us: SIGIO must not end the process.  Lease held by hand
 * here so the race is certain, not a matter of timing. */
static void
test_lease_break_does_not_kill(void **state)
{
	char p[PATH_MAX];
	int fd, status;
	pid_t pid;

	(void)state;
	close(make_file("race.jpg"));
	assert_int_equal(writers_none(rootfd, "race.jpg"), 0);	/* SIGIO ignored */
	path_of(p, sizeof(p), "race.jpg");
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_SETLEASE, F_RDLCK), 0);
	if ((pid = fork()) == 0) {
		int w = open(p, O_WRONLY);	/* blocks until we let go */
		_exit(w >= 0 ? 0 : 1);
	}
	usleep(100 * 1000);
	assert_int_equal(fcntl(fd, F_SETLEASE, F_UNLCK), 0);
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Someone else's file: root holds CAP_LEASE and is granted the lease;
 * without it the kernel says EACCES and the answer is "cannot tell"
 * (the caller keeps SETTLE_MS).  Either way never a wrong "no writer". */
static void
test_someone_elses_file(void **state)
{
	char p[PATH_MAX];
	int fd, rc;

	(void)state;
	fd = make_file("other.jpg");
	path_of(p, sizeof(p), "other.jpg");
	if (geteuid() != 0) {
		close(fd);
		skip();
	}
	assert_int_equal(chown(p, 65534, 65534), 0);
	/* held open for writing: refused whoever owns it */
	assert_int_equal(writers_none(rootfd, "other.jpg"), 1);
	close(fd);
	rc = writers_none(rootfd, "other.jpg");
	/* root has CAP_LEASE: granted.  A root without it (a container
	 * dropping capabilities) cannot tell. */
	assert_true(rc == 0 || rc == -EACCES || rc == -EPERM);
	if (fork() == 0) {
		/* as nobody's neighbour: no ownership, no CAP_LEASE */
		if (setgid(65533) != 0 || setuid(65533) != 0)
			_exit(2);
		rc = writers_none(rootfd, "other.jpg");
		_exit(rc == -EACCES || rc == -EPERM ? 0 : 1);
	}
	{
		int status;

		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

static void
test_not_followed_not_leased(void **state)
{
	char p[PATH_MAX], t[PATH_MAX];

	(void)state;
	close(make_file("target.jpg"));
	path_of(p, sizeof(p), "link.jpg");
	path_of(t, sizeof(t), "target.jpg");
	assert_int_equal(symlink(t, p), 0);
	assert_int_equal(writers_none(rootfd, "link.jpg"), -ELOOP);
	path_of(p, sizeof(p), "fifo.jpg");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_true(writers_none(rootfd, "fifo.jpg") < 0);
	path_of(p, sizeof(p), "dir.jpg");
	assert_int_equal(mkdir(p, 0700), 0);
	assert_true(writers_none(rootfd, "dir.jpg") < 0);
	assert_int_equal(writers_none(rootfd, "gone.jpg"), -ENOENT);
	assert_int_equal(writers_none(rootfd, "../x.jpg") < 0, 1);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(root) == NULL)
		return -1;
	/* world-searchable: the child that drops to another uid looks in */
	chmod(root, 0755);
	rootfd = beneath_root(root);
	return rootfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	close(rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_for_writing_is_refused),
		cmocka_unit_test(test_writer_in_child),
		cmocka_unit_test(test_lease_break_does_not_kill),
		cmocka_unit_test(test_someone_elses_file),
		cmocka_unit_test(test_not_followed_not_leased),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
