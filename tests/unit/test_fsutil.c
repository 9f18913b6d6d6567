/* fsutil: mkdir -p and mkdir of a path's parents. */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"

static char root[64];

static int
setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/tw-fsutil-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	return st.st_mode & 07777;
}

static void
test_mkdir_p_deep_with_mode(void **state)
{
	char p[PATH_MAX], q[PATH_MAX];

	(void)state;
	umask(022);
	snprintf(p, sizeof(p), "%s/a/b/c", root);
	assert_int_equal(fs_mkdir_p(p, 0700), 0);
	assert_int_equal(mode_of(p), 0700);
	snprintf(q, sizeof(q), "%s/a", root);
	assert_int_equal(mode_of(q), 0700);
	/* again: existing folders are fine and keep their mode */
	chmod(q, 0755);
	assert_int_equal(fs_mkdir_p(p, 0700), 0);
	assert_int_equal(mode_of(q), 0755);
	/* a trailing slash is the same folder */
	snprintf(q, sizeof(q), "%s/a/b/c/", root);
	assert_int_equal(fs_mkdir_p(q, 0755), 0);
}

static void
test_mkdir_p_refuses_a_file_in_the_way(void **state)
{
	char f[PATH_MAX], p[PATH_MAX];
	FILE *fp;

	(void)state;
	snprintf(f, sizeof(f), "%s/file", root);
	assert_non_null(fp = fopen(f, "w"));
	fclose(fp);
	assert_int_equal(fs_mkdir_p(f, 0755), -ENOTDIR);
	snprintf(p, sizeof(p), "%s/file/below", root);
	assert_int_equal(fs_mkdir_p(p, 0755), -ENOTDIR);
	assert_int_equal(fs_mkdir_parents(p, 0755), -ENOTDIR);
}

static void
test_mkdir_parents_makes_only_the_parents(void **state)
{
	char p[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	(void)state;
	snprintf(p, sizeof(p), "%s/x/y/z.log", root);
	assert_int_equal(fs_mkdir_parents(p, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/x/y", root);
	assert_int_equal(mode_of(dir), 0755);
	assert_int_equal(stat(p, &st), -1);
	/* no folder part, or the root: nothing to make */
	assert_int_equal(fs_mkdir_parents("plain.log", 0755), 0);
	assert_int_equal(fs_mkdir_parents("/plain.log", 0755), 0);
}

static void
test_too_long(void **state)
{
	char *p = malloc(PATH_MAX + 10);

	(void)state;
	memset(p, 'a', PATH_MAX + 9);
	p[0] = '/';
	p[PATH_MAX + 9] = '\0';
	assert_int_equal(fs_mkdir_p(p, 0755), -ENAMETOOLONG);
	assert_int_equal(fs_mkdir_parents(p, 0755), -ENAMETOOLONG);
	free(p);
}

/* A pipe takes at most its buffer per write: a 1 MiB buffer arrives
 * whole only if the short writes are continued. */
static void
test_write_all_continues_short_writes(void **state)
{
	size_t n = 1 << 20, got = 0;
	char *buf = malloc(n), *back = malloc(n);
	int p[2];
	pid_t pid;
	ssize_t r;

	(void)state;
	assert_non_null(buf);
	assert_non_null(back);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i * 31 + 7);
	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		close(p[0]);
		_exit(fs_write_all(p[1], buf, n) == 0 ? 0 : 1);
	}
	close(p[1]);
	while ((r = read(p[0], back + got, n - got)) > 0)
		got += (size_t)r;
	close(p[0]);
	assert_int_equal(got, n);
	assert_memory_equal(back, buf, n);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a closed descriptor is an error, not a loop */
	assert_int_equal(fs_write_all(p[1], buf, 1), -EBADF);
	free(buf);
	free(back);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_p_deep_with_mode),
		cmocka_unit_test(test_mkdir_p_refuses_a_file_in_the_way),
		cmocka_unit_test(test_mkdir_parents_makes_only_the_parents),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_write_all_continues_short_writes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
