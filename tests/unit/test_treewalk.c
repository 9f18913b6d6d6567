/* treewalk: what it visits, in which form, and what it never enters. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "treewalk.h"

struct seen {
	char names[64][PATH_MAX];
	unsigned char types[64];
	int n;
	int maxdepth;
	const char *skip;	/* a folder not to enter */
	int stop_after;		/* 0: never */
};

static int
record(void *ud, int dirfd, const char *name, const char *rel,
    unsigned char type, int depth)
{
	struct seen *s = ud;

	(void)dirfd;
	(void)name;
	if (depth > s->maxdepth)
		s->maxdepth = depth;
	if (s->n < 64) {
		snprintf(s->names[s->n], PATH_MAX, "%s", rel);
		s->types[s->n] = type;
	}
	s->n++;
	if (s->stop_after && s->n >= s->stop_after)
		return -ECANCELED;
	return s->skip && strcmp(rel, s->skip) == 0 ? TREEWALK_SKIP :
	    TREEWALK_NEXT;
}

static int
find(const struct seen *s, const char *rel)
{
	int i;

	for (i = 0; i < s->n && i < 64; i++)
		if (strcmp(s->names[i], rel) == 0)
			return i;
	return -1;
}

static void
touch(const char *root, const char *rel)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void
mkd(const char *root, const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static int
open_root(const char *root)
{
	return open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void
rm_rf(const char *root)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void
test_visits_tree_and_never_follows_links(void **state)
{
	char root[] = "/tmp/tw-treewalk-XXXXXX", p[PATH_MAX], q[PATH_MAX];
	struct seen s;
	int i;

	(void)state;
	assert_non_null(mkdtemp(root));
	mkd(root, "a");
	mkd(root, "a/b");
	touch(root, "a/b/c.jpg");
	touch(root, "a/d.jpg");
	snprintf(p, sizeof(p), "%s/a", root);
	snprintf(q, sizeof(q), "%s/link", root);
	assert_int_equal(symlink(p, q), 0);
	snprintf(q, sizeof(q), "%s/fifo", root);
	assert_int_equal(mkfifo(q, 0644), 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(treewalk(open_root(root), "sub", record, &s), 0);
	assert_int_equal(s.n, 6);	/* a a/b a/b/c a/d link fifo */
	assert_true((i = find(&s, "sub/a")) >= 0);
	assert_int_equal(s.types[i], DT_DIR);
	assert_true((i = find(&s, "sub/a/b/c.jpg")) >= 0);
	assert_int_equal(s.types[i], DT_REG);
	assert_true((i = find(&s, "sub/link")) >= 0);
	assert_int_equal(s.types[i], DT_LNK);
	assert_int_equal(find(&s, "sub/link/d.jpg"), -1);
	assert_true((i = find(&s, "sub/fifo")) >= 0);
	assert_int_equal(s.types[i], DT_FIFO);
	/* A folder comes before what it holds. */
	assert_true(find(&s, "sub/a") < find(&s, "sub/a/b/c.jpg"));
	assert_int_equal(s.maxdepth, 2);

	/* An empty sub gives paths as they are below the start. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(treewalk(open_root(root), "", record, &s), 0);
	assert_true(find(&s, "a/d.jpg") >= 0);
	rm_rf(root);
}

static void
test_skip_and_stop(void **state)
{
	char root[] = "/tmp/tw-treewalk-XXXXXX";
	struct seen s;

	(void)state;
	assert_non_null(mkdtemp(root));
	mkd(root, "keep");
	touch(root, "keep/x.jpg");
	mkd(root, "skip");
	touch(root, "skip/y.jpg");

	memset(&s, 0, sizeof(s));
	s.skip = "skip";
	assert_int_equal(treewalk(open_root(root), "", record, &s), 0);
	assert_true(find(&s, "skip") >= 0);
	assert_int_equal(find(&s, "skip/y.jpg"), -1);
	assert_true(find(&s, "keep/x.jpg") >= 0);

	/* A negative return ends the walk, from any depth, and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(treewalk(open_root(root), "", record, &s),
	    -ECANCELED);
	assert_int_equal(s.n, 2);
	rm_rf(root);
}

static void
test_depth_is_capped(void **state)
{
	char root[] = "/tmp/tw-treewalk-XXXXXX", rel[PATH_MAX] = "";
	struct seen s;
	int i;

	(void)state;
	assert_non_null(mkdtemp(root));
	for (i = 0; i < TREEWALK_MAX_DEPTH + 5; i++) {
		strcat(rel, i ? "/d" : "d");
		mkd(root, rel);
	}
	memset(&s, 0, sizeof(s));
	assert_int_equal(treewalk(open_root(root), "", record, &s), 0);
	assert_int_equal(s.maxdepth, TREEWALK_MAX_DEPTH);
	assert_int_equal(s.n, TREEWALK_MAX_DEPTH + 1);
	rm_rf(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_visits_tree_and_never_follows_links),
		cmocka_unit_test(test_skip_and_stop),
		cmocka_unit_test(test_depth_is_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
