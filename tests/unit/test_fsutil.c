/* fsutil: mkdir -p and mkdir of a path's parents. */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_p_deep_with_mode),
		cmocka_unit_test(test_mkdir_p_refuses_a_file_in_the_way),
		cmocka_unit_test(test_mkdir_parents_makes_only_the_parents),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
