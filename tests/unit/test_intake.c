/*
 * intake: a file seen by the watcher, inspected with stat only, and
 * either queued for the workers or given its outcome at once.  Driven on
 * the supervisor's real loop and state (sup_open) over temp folders, with
 * no worker and no watcher: what intake publishes is recorded from the
 * outcome bus, as any sink would hear it.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "outcome.h"
#include "supervisor.h"

#define MAX_SEEN 32

struct heard {
	int n;
	enum outcome_kind kind[MAX_SEEN];
	char rel[MAX_SEEN][PATH_MAX];
	char text[MAX_SEEN][512];
	bool had_src[MAX_SEEN];
};

struct fixture {
	char root[64];
	char in[128], out[128], log[128];
	struct config cfg;
	struct daemon *d;
	struct heard h;
};

static void
hear(void *ud, const struct outcome *o)
{
	struct heard *h = ud;

	if (h->n < MAX_SEEN) {
		h->kind[h->n] = o->kind;
		snprintf(h->rel[h->n], PATH_MAX, "%s", o->rel);
		snprintf(h->text[h->n], 512, "%s", o->text ? o->text : "");
		h->had_src[h->n] = o->src != NULL;
	}
	h->n++;
}

static void
put(struct fixture *f, const char *rel, const char *bytes, size_t n)
{
	char p[PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", f->in, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	close(fd);
}

static void
put_sample(struct fixture *f, const char *rel)
{
	char buf[64 * 1024];
	FILE *fp = fopen("samples/landscape.jpg", "rb");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(n > 0);
	put(f, rel, buf, n);
}

static void
open_with(struct fixture *f, enum daemon_mode mode, const char *key,
    const char *val)
{
	char err[512];

	snprintf(f->root, sizeof(f->root), "/tmp/tw-intake-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->in, sizeof(f->in), "%s/in", f->root);
	snprintf(f->out, sizeof(f->out), "%s/out", f->root);
	snprintf(f->log, sizeof(f->log), "%s/log.jsonl", f->root);
	assert_int_equal(mkdir(f->in, 0755), 0);
	assert_int_equal(config_init(&f->cfg), 0);
	assert_int_equal(config_set(&f->cfg, "INPUT_DIR", f->in, "test", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&f->cfg, "OUTPUT_DIR", f->out, "test",
	    err, sizeof(err)), 0);
	assert_int_equal(config_set(&f->cfg, "LOG_FILE", f->log, "test", err,
	    sizeof(err)), 0);
	if (key)
		assert_int_equal(config_set(&f->cfg, key, val, "test", err,
		    sizeof(err)), 0);
	assert_int_equal(config_finish(&f->cfg, 2, err, sizeof(err)), 0);
	assert_int_equal(sup_open(&f->d, &f->cfg, mode, "/nonexistent",
	    NULL, NULL), 0);
	load_epochs(f->d);
	assert_int_equal(outcome_subscribe(&f->d->bus, OUTCOME_ALL, hear,
	    &f->h), 0);
}

static void
close_fixture(struct fixture *f)
{
	char cmd[128];

	sup_close(f->d);
	config_free(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
}

static void
test_new_image_is_queued_once(void **state)
{
	struct fixture f;

	(void)state;
	memset(&f, 0, sizeof(f));
	open_with(&f, DAEMON_RUN, NULL, NULL);
	put_sample(&f, "a.jpg");
	on_file(f.d, "a.jpg", WATCHER_EVENT);
	assert_int_equal(f.h.n, 1);
	assert_int_equal(f.h.kind[0], OUTCOME_QUEUED);
	assert_string_equal(f.h.rel[0], "a.jpg");
	assert_true(batch_queue_contains(&f.d->q, "a.jpg"));
	assert_true(f.d->want_dispatch);
	/* Seen again while it waits: still one entry, no second event. */
	on_file(f.d, "a.jpg", WATCHER_SCAN);
	assert_int_equal(f.h.n, 1);
	assert_int_equal(f.d->q.len, 1);
	/* Deleted while it waits: its one outcome says so. */
	on_delete(f.d, "a.jpg", false);
	assert_int_equal(f.h.n, 2);
	assert_int_equal(f.h.kind[1], OUTCOME_SKIPPED);
	assert_string_equal(f.h.text[1], "deleted before it was processed");
	assert_int_equal(f.d->q.len, 0);
	close_fixture(&f);
}

static void
test_refusals_name_what_is_wrong(void **state)
{
	struct fixture f;
	char p[PATH_MAX], m[PATH_MAX];
	struct stat sb;

	(void)state;
	memset(&f, 0, sizeof(f));
	open_with(&f, DAEMON_RUN, NULL, NULL);
	put(&f, "empty.jpg", "", 0);
	on_file(f.d, "empty.jpg", WATCHER_EVENT);
	snprintf(p, sizeof(p), "%s/fifo.jpg", f.in);
	assert_int_equal(mkfifo(p, 0644), 0);
	on_file(f.d, "fifo.jpg", WATCHER_EVENT);
	put_sample(&f, "real.jpg");
	snprintf(p, sizeof(p), "%s/link.jpg", f.in);
	assert_int_equal(symlink("real.jpg", p), 0);
	on_file(f.d, "link.jpg", WATCHER_EVENT);
	snprintf(p, sizeof(p), "%s/.thumbwatch", f.in);
	assert_int_equal(mkdir(p, 0755), 0);
	put_sample(&f, ".thumbwatch/x.jpg");
	on_file(f.d, ".thumbwatch/x.jpg", WATCHER_EVENT);

	assert_int_equal(f.h.n, 4);
	assert_int_equal(f.h.kind[0], OUTCOME_FAILED);
	assert_string_equal(f.h.text[0], "empty file (0 bytes)");
	assert_true(f.h.had_src[0]);
	assert_int_equal(f.h.kind[1], OUTCOME_FAILED);
	assert_string_equal(f.h.text[1], "not a regular file (FIFO)");
	assert_int_equal(f.h.kind[2], OUTCOME_FAILED);
	assert_non_null(strstr(f.h.text[2], "symbolic link"));
	assert_int_equal(f.h.kind[3], OUTCOME_FAILED);
	assert_non_null(strstr(f.h.text[3], "reserved"));
	assert_int_equal(f.d->q.len, 0);
	assert_int_equal(f.d->n_failed, 4);

	/* The store heard the failure: the empty file is remembered, and a
	 * walk that finds it again in `run` says nothing more. */
	snprintf(m, sizeof(m), "%s/.thumbwatch/failed/empty.jpg", f.out);
	assert_int_equal(stat(m, &sb), 0);
	on_file(f.d, "empty.jpg", WATCHER_SCAN);
	assert_int_equal(f.h.n, 4);
	close_fixture(&f);
}

static void
test_names_passed_over(void **state)
{
	struct fixture f;

	(void)state;
	memset(&f, 0, sizeof(f));
	open_with(&f, DAEMON_RUN, "MAX_FILE_SIZE", "100");
	put(&f, "notes.txt", "hello", 5);
	on_file(f.d, "notes.txt", WATCHER_EVENT);
	put(&f, "up.jpg.part", "x", 1);
	on_file(f.d, "up.jpg.part", WATCHER_EVENT);
	/* Not processed, so no outcome; the extension is counted, the
	 * temporary name is not (it comes back under its final name). */
	assert_int_equal(f.h.n, 0);
	assert_int_equal(f.d->n_ignored, 1);
	put_sample(&f, "big.jpg");
	on_file(f.d, "big.jpg", WATCHER_EVENT);
	assert_int_equal(f.h.n, 1);
	assert_int_equal(f.h.kind[0], OUTCOME_FAILED);
	assert_non_null(strstr(f.h.text[0], "file too large"));
	assert_non_null(strstr(f.h.text[0], "MAX_FILE_SIZE 100"));
	close_fixture(&f);
}

static void
test_once_takes_walks_not_events(void **state)
{
	struct fixture f;

	(void)state;
	memset(&f, 0, sizeof(f));
	open_with(&f, DAEMON_ONCE, NULL, NULL);
	put_sample(&f, "a.jpg");
	on_file(f.d, "a.jpg", WATCHER_EVENT);
	assert_int_equal(f.h.n, 0);
	on_file(f.d, "a.jpg", WATCHER_SCAN);
	assert_int_equal(f.h.n, 1);
	assert_int_equal(f.h.kind[0], OUTCOME_QUEUED);
	/* The first walk counts it toward once's progress total. */
	assert_int_equal(f.d->total_once, 1);
	close_fixture(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_image_is_queued_once),
		cmocka_unit_test(test_refusals_name_what_is_wrong),
		cmocka_unit_test(test_names_passed_over),
		cmocka_unit_test(test_once_takes_walks_not_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
