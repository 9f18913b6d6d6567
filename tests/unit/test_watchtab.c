/*
 * Unit tests of src/supervisor/watchtab.c: insert, lookup both ways,
 * remove, re-indexing a descriptor or a path, growth through many entries,
 * shared paths, subtree renames, and a long random run of inserts and
 * removes checked against a plain array (the linear scan the table
 * replaced), which walks the backward-shift deletion through every case.
 */
#include "unit.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watchtab.h"

/* What the watcher embeds the entry in. */
struct dir {
	struct watchtab_entry e;
	int tag;
};

/* Every entry's slot is its index, and each is found both ways. */
static void
check_consistent(const struct watchtab *t)
{
	size_t i;

	for (i = 0; i < watchtab_count(t); i++) {
		struct watchtab_entry *e = watchtab_at(t, i);
		assert_int_equal(e->slot, i);
		assert_non_null(watchtab_find_path(t, e->path));
		assert_string_equal(watchtab_find_path(t, e->path)->path,
		    e->path);
		if (e->wd >= 0)
			assert_int_equal(watchtab_find_wd(t, e->wd)->wd, e->wd);
	}
}

static void
test_empty(void **state)
{
	struct watchtab t;

	(void)state;
	watchtab_init(&t);
	assert_int_equal(watchtab_count(&t), 0);
	assert_null(watchtab_find_path(&t, ""));
	assert_null(watchtab_find_path(&t, "a"));
	assert_null(watchtab_find_wd(&t, 1));
	assert_null(watchtab_find_wd(&t, -1));
	assert_int_equal(watchtab_rename_prefix(&t, "a", "b"), 0);
	watchtab_free(&t);
	watchtab_free(&t);	/* twice is harmless */
}

static void
test_insert_lookup_remove(void **state)
{
	struct dir a = { .tag = 1 }, b = { .tag = 2 }, root = { .tag = 0 };
	struct watchtab t;

	(void)state;
	watchtab_init(&t);
	assert_int_equal(watchtab_insert(&t, &root.e, "", 1), 0);
	assert_int_equal(watchtab_insert(&t, &a.e, "a", 2), 0);
	assert_int_equal(watchtab_insert(&t, &b.e, "a/b", -5), 0);
	assert_int_equal(watchtab_count(&t), 3);
	assert_ptr_equal(watchtab_find_path(&t, ""), &root.e);
	assert_ptr_equal(watchtab_find_path(&t, "a"), &a.e);
	assert_ptr_equal(watchtab_find_path(&t, "a/b"), &b.e);
	assert_null(watchtab_find_path(&t, "a/"));
	assert_null(watchtab_find_path(&t, "b"));
	assert_ptr_equal(watchtab_find_wd(&t, 1), &root.e);
	assert_ptr_equal(watchtab_find_wd(&t, 2), &a.e);
	/* A negative descriptor is stored as -1 and never indexed. */
	assert_int_equal(b.e.wd, -1);
	assert_null(watchtab_find_wd(&t, -1));
	assert_null(watchtab_find_wd(&t, -5));
	assert_null(watchtab_find_wd(&t, 3));
	/* The table copied the path. */
	assert_string_equal(a.e.path, "a");
	check_consistent(&t);

	watchtab_remove(&t, &a.e);
	assert_null(a.e.path);
	assert_int_equal(watchtab_count(&t), 2);
	assert_null(watchtab_find_path(&t, "a"));
	assert_null(watchtab_find_wd(&t, 2));
	assert_ptr_equal(watchtab_find_path(&t, "a/b"), &b.e);
	assert_ptr_equal(watchtab_find_wd(&t, 1), &root.e);
	check_consistent(&t);

	/* The same memory may come back under another name. */
	assert_int_equal(watchtab_insert(&t, &a.e, "c", 2), 0);
	assert_ptr_equal(watchtab_find_wd(&t, 2), &a.e);
	assert_ptr_equal((struct dir *)watchtab_find_path(&t, "c"), &a);
	assert_int_equal(((struct dir *)watchtab_find_path(&t, "c"))->tag, 1);

	while (watchtab_count(&t) > 0)
		watchtab_remove(&t, watchtab_at(&t, watchtab_count(&t) - 1));
	assert_null(watchtab_find_path(&t, ""));
	watchtab_free(&t);
}

static void
test_set_wd_and_path(void **state)
{
	struct dir a, b;
	struct watchtab t;

	(void)state;
	watchtab_init(&t);
	assert_int_equal(watchtab_insert(&t, &a.e, "a", -1), 0);
	assert_int_equal(watchtab_insert(&t, &b.e, "b", 7), 0);
	/* Watched once the walk reaches it. */
	watchtab_set_wd(&t, &a.e, 8);
	assert_ptr_equal(watchtab_find_wd(&t, 8), &a.e);
	/* The folder was replaced: a new descriptor, the old one forgotten. */
	watchtab_set_wd(&t, &a.e, 9);
	assert_null(watchtab_find_wd(&t, 8));
	assert_ptr_equal(watchtab_find_wd(&t, 9), &a.e);
	watchtab_set_wd(&t, &a.e, 9);
	assert_ptr_equal(watchtab_find_wd(&t, 9), &a.e);
	watchtab_set_wd(&t, &a.e, -2);
	assert_int_equal(a.e.wd, -1);
	assert_null(watchtab_find_wd(&t, 9));
	assert_ptr_equal(watchtab_find_wd(&t, 7), &b.e);

	assert_int_equal(watchtab_set_path(&t, &b.e, "x/y"), 0);
	assert_null(watchtab_find_path(&t, "b"));
	assert_ptr_equal(watchtab_find_path(&t, "x/y"), &b.e);
	assert_ptr_equal(watchtab_find_wd(&t, 7), &b.e);
	check_consistent(&t);
	watchtab_remove(&t, &a.e);
	watchtab_remove(&t, &b.e);
	watchtab_free(&t);
}

/* A folder renamed over an empty one: both entries hold its path until
 * the replaced one's IN_IGNORED; either may be found, each can go. */
static void
test_shared_path(void **state)
{
	struct dir a, b;
	struct watchtab t;
	struct watchtab_entry *e;

	(void)state;
	watchtab_init(&t);
	assert_int_equal(watchtab_insert(&t, &a.e, "b", 1), 0);
	assert_int_equal(watchtab_insert(&t, &b.e, "b", 2), 0);
	e = watchtab_find_path(&t, "b");
	assert_true(e == &a.e || e == &b.e);
	watchtab_remove(&t, watchtab_find_wd(&t, 2));
	assert_ptr_equal(watchtab_find_path(&t, "b"), &a.e);
	assert_ptr_equal(watchtab_find_wd(&t, 1), &a.e);
	assert_null(watchtab_find_wd(&t, 2));
	watchtab_remove(&t, &a.e);
	assert_null(watchtab_find_path(&t, "b"));
	watchtab_free(&t);
}

static void
test_below(void **state)
{
	(void)state;
	assert_true(watchtab_below("a", "a"));
	assert_true(watchtab_below("a/b", "a"));
	assert_true(watchtab_below("a/b/c", "a/b"));
	assert_false(watchtab_below("ab", "a"));
	assert_false(watchtab_below("a-b", "a"));
	assert_false(watchtab_below("a", "a/b"));
	assert_false(watchtab_below("b/a", "a"));
	assert_true(watchtab_below("", ""));
	assert_true(watchtab_below("anything/at/all", ""));
}

static void
test_rename_subtree(void **state)
{
	static const char *const before[] = { "", "a", "a/b", "a/b/c", "ab",
	    "a-b", "b", "b/a" };
	static const char *const after[] = { "", "x/y", "x/y/b", "x/y/b/c",
	    "ab", "a-b", "b", "b/a" };
	struct dir d[8];
	struct watchtab t;
	size_t i;

	(void)state;
	watchtab_init(&t);
	for (i = 0; i < 8; i++)
		assert_int_equal(watchtab_insert(&t, &d[i].e, before[i],
		    (int)i + 1), 0);
	assert_int_equal(watchtab_rename_prefix(&t, "a", "x/y"), 3);
	for (i = 0; i < 8; i++) {
		assert_string_equal(d[i].e.path, after[i]);
		assert_ptr_equal(watchtab_find_path(&t, after[i]), &d[i].e);
		/* A renamed folder keeps its descriptor. */
		assert_ptr_equal(watchtab_find_wd(&t, (int)i + 1), &d[i].e);
	}
	assert_null(watchtab_find_path(&t, "a"));
	assert_null(watchtab_find_path(&t, "a/b/c"));
	check_consistent(&t);

	/* Deeper, then back to a shorter name. */
	assert_int_equal(watchtab_rename_prefix(&t, "x/y/b", "b/a/q"), 2);
	assert_string_equal(d[2].e.path, "b/a/q");
	assert_string_equal(d[3].e.path, "b/a/q/c");
	assert_int_equal(watchtab_rename_prefix(&t, "b/a/q", "q"), 2);
	assert_string_equal(d[3].e.path, "q/c");
	assert_string_equal(d[7].e.path, "b/a");

	/* The root is never a rename's source; a name with nothing below
	 * renames nothing. */
	assert_int_equal(watchtab_rename_prefix(&t, "", "z"), 0);
	assert_int_equal(watchtab_rename_prefix(&t, "nope", "z"), 0);
	assert_string_equal(d[0].e.path, "");

	for (i = 0; i < 8; i++)
		watchtab_remove(&t, &d[i].e);
	assert_int_equal(watchtab_count(&t), 0);
	watchtab_free(&t);
}

/* A new name that would pass PATH_MAX: the entry keeps its old one. */
static void
test_rename_too_long(void **state)
{
	char *to = malloc(PATH_MAX);
	struct dir a, b;
	struct watchtab t;

	(void)state;
	assert_non_null(to);
	memset(to, 'x', PATH_MAX - 3);
	to[PATH_MAX - 3] = '\0';
	watchtab_init(&t);
	assert_int_equal(watchtab_insert(&t, &a.e, "a", 1), 0);
	assert_int_equal(watchtab_insert(&t, &b.e, "a/bcd", 2), 0);
	/* "x...x" fits, "x...x/bcd" does not. */
	assert_int_equal(watchtab_rename_prefix(&t, "a", to), 1);
	assert_string_equal(a.e.path, to);
	assert_string_equal(b.e.path, "a/bcd");
	assert_ptr_equal(watchtab_find_path(&t, to), &a.e);
	assert_ptr_equal(watchtab_find_path(&t, "a/bcd"), &b.e);
	watchtab_remove(&t, &a.e);
	watchtab_remove(&t, &b.e);
	watchtab_free(&t);
	free(to);
}

/* Many entries: the buckets double many times over and stay at most half
 * full; every entry is still found both ways after removals from the
 * middle. */
static void
test_many(void **state)
{
	enum { N = 100000 };
	struct dir *d = calloc(N, sizeof(*d));
	struct watchtab t;
	char p[64];
	int i;

	(void)state;
	assert_non_null(d);
	watchtab_init(&t);
	for (i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "d%03d/s%05d", i % 997, i);
		d[i].tag = i;
		/* Descriptors that share their low bits, as a hash of the
		 * plain number would bucket them. */
		assert_int_equal(watchtab_insert(&t, &d[i].e, p, i * 1024),
		    0);
		assert_true(t.nbuckets >= 2 * watchtab_count(&t));
	}
	assert_int_equal(watchtab_count(&t), N);
	for (i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "d%03d/s%05d", i % 997, i);
		assert_ptr_equal(watchtab_find_path(&t, p), &d[i].e);
		assert_ptr_equal(watchtab_find_wd(&t, i * 1024), &d[i].e);
	}
	/* Every third one goes. */
	for (i = 0; i < N; i += 3)
		watchtab_remove(&t, &d[i].e);
	for (i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "d%03d/s%05d", i % 997, i);
		if (i % 3 == 0) {
			assert_null(watchtab_find_path(&t, p));
			assert_null(watchtab_find_wd(&t, i * 1024));
		} else {
			assert_ptr_equal(watchtab_find_path(&t, p), &d[i].e);
			assert_ptr_equal(watchtab_find_wd(&t, i * 1024),
			    &d[i].e);
		}
	}
	check_consistent(&t);
	while (watchtab_count(&t) > 0)
		watchtab_remove(&t, watchtab_at(&t, 0));
	watchtab_free(&t);
	free(d);
}

/* Random inserts, removes, re-indexings and renames on a small key space
 * (so runs of colliding buckets form and break up), compared after every
 * step with a plain array searched linearly. */
static uint32_t rng = 12345;

static uint32_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void
test_random_against_model(void **state)
{
	enum { SLOTS = 600, STEPS = 60000, KEYS = 300 };
	struct dir *d = calloc(SLOTS, sizeof(*d));
	bool *in = calloc(SLOTS, sizeof(*in));
	struct watchtab t;
	char p[32];
	int step, i, k, wd;

	(void)state;
	assert_non_null(d);
	assert_non_null(in);
	watchtab_init(&t);
	for (step = 0; step < STEPS; step++) {
		i = (int)(next_rand() % SLOTS);
		k = (int)(next_rand() % KEYS);
		switch (next_rand() % 4) {
		case 0:
		case 1:
			if (in[i]) {
				watchtab_remove(&t, &d[i].e);
				in[i] = false;
			} else {
				/* Unique descriptors, as the kernel's;
				 * paths may repeat. */
				snprintf(p, sizeof(p), "k%d", k);
				wd = k % 5 == 0 ? -1 : i;
				assert_int_equal(watchtab_insert(&t, &d[i].e,
				    p, wd), 0);
				in[i] = true;
			}
			break;
		case 2:
			if (in[i])
				watchtab_set_wd(&t, &d[i].e,
				    d[i].e.wd >= 0 ? -1 : i);
			break;
		default:
			if (in[i]) {
				snprintf(p, sizeof(p), "k%d", k);
				assert_int_equal(watchtab_set_path(&t,
				    &d[i].e, p), 0);
			}
			break;
		}
		if (step % 97 != 0 && step != STEPS - 1)
			continue;
		/* The model: any entry holding a path or descriptor is
		 * found for it, and nothing is found when none does. */
		for (k = 0; k < KEYS; k++) {
			struct watchtab_entry *e;
			bool any = false;
			snprintf(p, sizeof(p), "k%d", k);
			for (i = 0; i < SLOTS; i++)
				any |= in[i] && strcmp(d[i].e.path, p) == 0;
			e = watchtab_find_path(&t, p);
			assert_int_equal(e != NULL, any);
			if (e)
				assert_string_equal(e->path, p);
		}
		for (i = 0; i < SLOTS; i++) {
			struct watchtab_entry *e = watchtab_find_wd(&t, i);
			bool any = in[i] && d[i].e.wd == i;
			assert_int_equal(e != NULL, any);
			if (e)
				assert_ptr_equal(e, &d[i].e);
		}
		k = 0;
		for (i = 0; i < SLOTS; i++)
			k += in[i];
		assert_int_equal(watchtab_count(&t), k);
		check_consistent(&t);
	}
	for (i = 0; i < SLOTS; i++)
		if (in[i])
			watchtab_remove(&t, &d[i].e);
	assert_int_equal(watchtab_count(&t), 0);
	watchtab_free(&t);
	free(in);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_insert_lookup_remove),
		cmocka_unit_test(test_set_wd_and_path),
		cmocka_unit_test(test_shared_path),
		cmocka_unit_test(test_below),
		cmocka_unit_test(test_rename_subtree),
		cmocka_unit_test(test_rename_too_long),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
