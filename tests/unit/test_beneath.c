/* beneath: no symlink is followed at any level, nothing leaves the root;
 * every case is run twice, through openat2 and through the portable walk. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"

static char root[64], outside[128];
static int rfd = -1;

static void
put(const char *rel, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

static void
link_to(const char *target, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* root/in/sub/x.jpg, root/in/dir-link -> root/secret, root/secret/x.jpg,
 * root/in/file-link -> root/secret/x.jpg.  The tests use root/in as the
 * root, so root/secret is "outside". */
static int
setup(void **state)
{
	char p[PATH_MAX];

	(void)state;
	strcpy(root, "/tmp/tw-beneath-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(p, sizeof(p), "%s/in", root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/in/sub", root);
	mkdir(p, 0755);
	snprintf(outside, sizeof(outside), "%s/secret", root);
	mkdir(outside, 0755);
	put("in/sub/x.jpg", "inside");
	put("secret/x.jpg", "secret");
	link_to(outside, "in/dir-link");
	snprintf(p, sizeof(p), "%s/x.jpg", outside);
	link_to(p, "in/file-link");
	link_to("sub", "in/rel-link");
	snprintf(p, sizeof(p), "%s/in", root);
	rfd = beneath_root(p);
	return rfd >= 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	close(rfd);
	beneath_force_walk(false);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
read_is(int fd, const char *want)
{
	char buf[64] = "";
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
opens(bool walk)
{
	beneath_force_walk(walk);
	read_is(beneath_open(rfd, "sub/x.jpg", O_RDONLY, 0), "inside");
	/* a folder component that is a symlink, absolute or relative */
	assert_int_equal(beneath_open(rfd, "dir-link/x.jpg", O_RDONLY, 0),
	    -ELOOP);
	assert_int_equal(beneath_open(rfd, "rel-link/x.jpg", O_RDONLY, 0),
	    -ELOOP);
	/* the last component */
	assert_int_equal(beneath_open(rfd, "file-link", O_RDONLY, 0), -ELOOP);
	/* leaving the root by name */
	assert_int_equal(beneath_open(rfd, "../secret/x.jpg", O_RDONLY, 0),
	    -EXDEV);
	assert_int_equal(beneath_open(rfd, "sub/../../secret/x.jpg", O_RDONLY,
	    0), -EXDEV);
	assert_int_equal(beneath_open(rfd, outside, O_RDONLY, 0), -EXDEV);
	assert_int_equal(beneath_open(rfd, "sub/none.jpg", O_RDONLY, 0),
	    -ENOENT);
	/* the root itself */
	int fd = beneath_open(rfd, "", O_RDONLY | O_DIRECTORY, 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(beneath_kernel(), !walk);
}

static void
test_open_kernel(void **state)
{
	(void)state;
	opens(false);
}

static void
test_open_walk(void **state)
{
	(void)state;
	opens(true);
}

static void
names(bool walk)
{
	struct stat st, st2;
	int fd;

	beneath_force_walk(walk);
	/* lstat reports a final symlink, refuses one in the middle */
	assert_int_equal(beneath_lstat(rfd, "file-link", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(beneath_lstat(rfd, "dir-link/x.jpg", &st), -ELOOP);
	assert_int_equal(beneath_lstat(rfd, "sub/x.jpg", &st), 0);
	assert_true(S_ISREG(st.st_mode));

	/* unlink through a symlinked folder never reaches the target */
	assert_int_equal(beneath_unlink(rfd, "dir-link/x.jpg", 0), -ELOOP);
	assert_int_equal(access(outside, F_OK), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/x.jpg", outside);
	assert_int_equal(access(p, F_OK), 0);

	/* unlink_same: a name whose file was swapped is left alone */
	put("in/sub/y.jpg", "first");
	assert_int_equal(beneath_lstat(rfd, "sub/y.jpg", &st), 0);
	put("in/sub/y2.jpg", "second");
	assert_int_equal(beneath_rename(rfd, "sub/y2.jpg", rfd, "sub/y.jpg",
	    0), 0);
	assert_int_equal(beneath_unlink_same(rfd, "sub/y.jpg", st.st_dev,
	    st.st_ino), -ESTALE);
	assert_int_equal(beneath_lstat(rfd, "sub/y.jpg", &st2), 0);
	assert_int_equal(beneath_unlink_same(rfd, "sub/y.jpg", st2.st_dev,
	    st2.st_ino), 0);
	assert_int_equal(beneath_lstat(rfd, "sub/y.jpg", &st), -ENOENT);

	/* rename into a symlinked folder is refused */
	put("in/sub/z.jpg", "z");
	assert_int_equal(beneath_rename(rfd, "sub/z.jpg", rfd,
	    "dir-link/z.jpg", 0), -ELOOP);
	snprintf(p, sizeof(p), "%s/z.jpg", outside);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(beneath_unlink(rfd, "sub/z.jpg", 0), 0);

	/* mkdirs makes folders, refuses a symlink or a file in the way */
	assert_int_equal(beneath_mkdirs(rfd, "new/a/b", 0755), 0);
	fd = beneath_open(rfd, "new/a/b", O_RDONLY | O_DIRECTORY, 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(beneath_mkdirs(rfd, "dir-link/made", 0755), -ELOOP);
	snprintf(p, sizeof(p), "%s/made", outside);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(beneath_mkdirs(rfd, "sub/x.jpg/c", 0755), -ENOTDIR);
	assert_int_equal(beneath_mkdir_parents(rfd, "new/q/r/file.jpg", 0755),
	    0);
	assert_int_equal(beneath_lstat(rfd, "new/q/r", &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(beneath_unlink(rfd, "new/q/r", AT_REMOVEDIR), 0);

	/* names that are not below the root */
	const char *leaf;
	assert_int_equal(beneath_parent(rfd, "", &leaf), -EINVAL);
	assert_int_equal(beneath_parent(rfd, "../x", &leaf), -EXDEV);
	assert_int_equal(beneath_parent(rfd, "/etc/passwd", &leaf), -EXDEV);
}

static void
test_names_kernel(void **state)
{
	(void)state;
	names(false);
}

static void
test_names_walk(void **state)
{
	(void)state;
	names(true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_kernel),
		cmocka_unit_test(test_open_walk),
		cmocka_unit_test(test_names_kernel),
		cmocka_unit_test(test_names_walk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
