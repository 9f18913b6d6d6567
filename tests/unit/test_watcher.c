/*
 * Unit tests of src/supervisor/watcher.c on a real temporary folder, in a
 * real libuv loop run by this thread under deadlines (as libuv's
 * test-fs-event.c), so a bug in the watcher fails here without the daemon.
 *
 * Checked, with each back-end:
 *  inotify  the start-up walk (old files now, fresh ones held then
 *           settled, the output folder skipped); a file written and
 *           closed, renamed, deleted, moved out and moved in; a symlink; a
 *           folder made then filled, one filled before it is watched, one
 *           moved in from outside, renamed within (its watches follow the
 *           new name), moved out (its watches go) and removed; a held file
 *           deleted before it settles; a rescan; INPUT_DIR deleted and made
 *           again;
 *  fsevent  a file settles only once its writer has been quiet SETTLE_MS;
 *           delete, rename, a new folder and its file, a removed folder;
 *  poll     no watches, new files found by the periodic walk.
 * Every callback is recorded with the name it carries; "once" means none
 * more came in a wait longer than the pairing of moves.  Teardown stops
 * the watcher and checks the loop closes with no handle left.
 */
#include "unit.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "watcher.h"

#define SETTLE_MS 100
#define MAX_EVS 256
/* Longer than the watcher's pairing of a move's two halves (100 ms). */
#define QUIET_MS 300

enum kind { K_FILE, K_DELETE, K_MOVE, K_SCAN, K_HELD };

struct ev {
	enum kind kind;
	char a[256], b[256];	/* name (from, to); scan: its reason */
	int why;		/* on_file: enum watcher_why */
	bool is_dir;
	struct watcher_scan_stats st;
	uint64_t at_ms;
};

/* Everything a callback may write lives here, not on a test's stack: a
 * failed assertion leaves the test early and teardown still closes. */
static struct {
	uv_loop_t loop;
	uv_timer_t wake;
	struct config cfg;
	struct logger lg;
	struct watcher *w;
	char root[64];		/* the temporary folder */
	char in[128], out[128], outside[128], logp[128];
	struct ev evs[MAX_EVS];
	int nev;
} F;

/* ---- callbacks ---------------------------------------------------------- */

static struct ev *
record(enum kind k, const char *a, const char *b)
{
	struct ev *e;

	if (F.nev == MAX_EVS)
		return NULL;
	e = &F.evs[F.nev++];
	memset(e, 0, sizeof(*e));
	e->kind = k;
	snprintf(e->a, sizeof(e->a), "%s", a);
	snprintf(e->b, sizeof(e->b), "%s", b ? b : "");
	e->at_ms = now_ms();
	return e;
}

static void
on_file(void *ud, const char *rel, enum watcher_why why)
{
	struct ev *e = record(K_FILE, rel, NULL);

	assert_ptr_equal(ud, &F);
	if (e)
		e->why = (int)why;
}

static void
on_delete(void *ud, const char *rel, bool is_dir)
{
	struct ev *e = record(K_DELETE, rel, NULL);

	assert_ptr_equal(ud, &F);
	if (e)
		e->is_dir = is_dir;
}

static void
on_move(void *ud, const char *from, const char *to, bool is_dir)
{
	struct ev *e = record(K_MOVE, from, to);

	assert_ptr_equal(ud, &F);
	if (e)
		e->is_dir = is_dir;
}

static void
on_scan_done(void *ud, const struct watcher_scan_stats *st)
{
	struct ev *e = record(K_SCAN, st->reason, NULL);

	assert_ptr_equal(ud, &F);
	if (e)
		e->st = *st;
}

static void
on_held(void *ud, const char *rel)
{
	assert_ptr_equal(ud, &F);
	record(K_HELD, rel, NULL);
}

static const struct watcher_callbacks CB = { on_file, on_delete, on_move,
    on_scan_done, on_held };

/* The number of callbacks of kind k naming a (any name when NULL). */
static int
count(enum kind k, const char *a)
{
	int i, n = 0;

	for (i = 0; i < F.nev; i++)
		if (F.evs[i].kind == k && (a == NULL ||
		    strcmp(F.evs[i].a, a) == 0))
			n++;
	return n;
}

/* The last callback of kind k naming a, or NULL. */
static const struct ev *
last(enum kind k, const char *a)
{
	int i;

	for (i = F.nev - 1; i >= 0; i--)
		if (F.evs[i].kind == k && (a == NULL ||
		    strcmp(F.evs[i].a, a) == 0))
			return &F.evs[i];
	return NULL;
}

/* On failure, what did come. */
static void
dump(void)
{
	static const char *const kinds[] = { "file", "delete", "move",
	    "scan", "held" };
	int i;

	for (i = 0; i < F.nev; i++)
		print_message("  %s %s%s%s why=%d dir=%d\n",
		    kinds[F.evs[i].kind], F.evs[i].a,
		    F.evs[i].b[0] ? " -> " : "", F.evs[i].b, F.evs[i].why,
		    F.evs[i].is_dir);
}

/* ---- the loop ----------------------------------------------------------- */

/* Runs the loop until cond holds or ms pass. */
#define RUN_UNTIL(cond, ms) LOOP_RUN_UNTIL(&F.loop, &F.wake, cond, ms)

/* Runs the loop until cond holds; fails the test (showing what came) if
 * it does not within 5 s. */
#define EXPECT(cond) do {						\
	RUN_UNTIL(cond, 5000);						\
	if (!(cond)) {							\
		dump();							\
		fail_msg("%s:%d: never true: %s", __FILE__, __LINE__,	\
		    #cond);						\
	}								\
} while (0)

static void
run_for(uint64_t ms)
{
	RUN_UNTIL(false, ms);
}

/* ---- the folder --------------------------------------------------------- */

static void
path_in(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", F.in, rel);
}

/* Writes rel below INPUT_DIR and closes it. */
static void
put(const char *rel, const char *text)
{
	char p[512];
	int fd;

	path_in(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* Writes rel below INPUT_DIR and keeps it open for writing: a walk must
 * hold it (nobody can say it is complete).  Returns the descriptor. */
static int
put_open(const char *rel, const char *text)
{
	char p[512];
	int fd;

	path_in(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

/* Writes an absolute path, dated an hour ago (no settling for it). */
static void
put_old(const char *path)
{
	struct timespec ts[2];
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old", 3), 3);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 3600;
	ts[1] = ts[0];
	assert_int_equal(futimens(fd, ts), 0);
	assert_int_equal(close(fd), 0);
}

static void
mkdir_in(const char *rel)
{
	char p[512];

	path_in(p, sizeof(p), rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void
rename_in(const char *from, const char *to)
{
	char a[512], b[512];

	path_in(a, sizeof(a), from);
	path_in(b, sizeof(b), to);
	assert_int_equal(rename(a, b), 0);
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

static bool
log_has(const char *event)
{
	char buf[64 * 1024], needle[96];
	ssize_t n;
	int fd;

	if ((fd = open(F.logp, O_RDONLY)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	snprintf(needle, sizeof(needle), "\"event\":\"%s\"", event);
	return strstr(buf, needle) != NULL;
}

/* ---- fixture ------------------------------------------------------------ */

static void
set(const char *key, const char *value)
{
	char err[256];

	if (config_set(&F.cfg, key, value, "test", err, sizeof(err)) < 0)
		fail_msg("%s=%s: %s", key, value, err);
}

static int
setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	snprintf(F.root, sizeof(F.root), "/tmp/tw-watcher-XXXXXX");
	if (mkdtemp(F.root) == NULL)
		return -1;
	snprintf(F.in, sizeof(F.in), "%s/in", F.root);
	snprintf(F.out, sizeof(F.out), "%s/out", F.root);
	snprintf(F.outside, sizeof(F.outside), "%s/outside", F.root);
	snprintf(F.logp, sizeof(F.logp), "%s/log/watcher.log", F.root);
	if (mkdir(F.in, 0755) < 0 || mkdir(F.out, 0755) < 0 ||
	    mkdir(F.outside, 0755) < 0)
		return -1;
	if (config_init(&F.cfg) < 0 ||
	    log_open(&F.lg, F.logp, LOG_DEBUG) < 0)
		return -1;
	F.lg.tty = false;
	if (uv_loop_init(&F.loop) != 0 ||
	    uv_timer_init(&F.loop, &F.wake) != 0)
		return -1;
	set("INPUT_DIR", F.in);
	set("OUTPUT_DIR", F.out);
	set("SETTLE_MS", "100");
	return 0;
}

static int
teardown(void **state)
{
	uint64_t end = now_ms() + 3000;
	int rc = 0;

	(void)state;
	if (F.w)
		watcher_stop(F.w);
	F.w = NULL;
	uv_close((uv_handle_t *)&F.wake, NULL);
	/* Every handle the watcher opened closes by itself; one it forgot
	 * would keep the loop alive. */
	while (uv_run(&F.loop, UV_RUN_NOWAIT) != 0 && now_ms() < end)
		usleep(1000);
	if (uv_loop_close(&F.loop) != 0) {
		fprintf(stderr, "teardown: handles left on the loop\n");
		rc = -1;
	}
	log_close(&F.lg);
	config_free(&F.cfg);
	nftw(F.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

/* Starts the watcher and waits for its start-up walk. */
static void
start(void)
{
	assert_int_equal(watcher_start(&F.w, &F.loop, &F.cfg, &F.lg, &CB, &F),
	    0);
	EXPECT(count(K_SCAN, "startup") == 1);
}

/* ---- inotify ------------------------------------------------------------ */

static void
test_startup_walk(void **state)
{
	const struct ev *e;
	char p[512];
	int wfd;

	(void)state;
	set("WATCH_BACKEND", "inotify");
	/* The output folder inside the input one is neither walked nor
	 * watched. */
	snprintf(p, sizeof(p), "%s/thumbs", F.in);
	set("OUTPUT_DIR", p);
	mkdir_in("thumbs");
	mkdir_in("sub");
	mkdir_in("sub/deeper");
	path_in(p, sizeof(p), "a.jpg");
	put_old(p);
	path_in(p, sizeof(p), "sub/deeper/b.jpg");
	put_old(p);
	path_in(p, sizeof(p), "thumbs/t.jpg");
	put_old(p);
	wfd = put_open("fresh.jpg", "being written");

	start();
	assert_string_equal(watcher_backend_name(F.w), "inotify");
	e = last(K_SCAN, "startup");
	assert_int_equal(e->st.dirs, 3);
	assert_int_equal(e->st.files, 3);
	assert_int_equal(e->st.settling, 1);
	assert_int_equal(watcher_watched(F.w), 3);
	assert_int_equal(count(K_FILE, "a.jpg"), 1);
	assert_int_equal(last(K_FILE, "a.jpg")->why, WATCHER_SCAN);
	assert_int_equal(count(K_FILE, "sub/deeper/b.jpg"), 1);
	/* Written within SETTLE_MS and still open for writing: held; its
	 * writer's close hands it out.  (A fresh file nobody has open goes
	 * at once: test_writers covers the lease.) */
	assert_int_equal(count(K_HELD, "fresh.jpg"), 1);
	assert_true(watcher_busy(F.w));
	assert_int_equal(count(K_FILE, "fresh.jpg"), 0);
	assert_int_equal(close(wfd), 0);
	EXPECT(count(K_FILE, "fresh.jpg") == 1);
	assert_int_equal(last(K_FILE, "fresh.jpg")->why, WATCHER_EVENT);
	assert_false(watcher_busy(F.w));

	/* Nothing from inside the output folder, then or later. */
	path_in(p, sizeof(p), "thumbs/new.jpg");
	put_old(p);
	mkdir_in("thumbs/x");
	put("thumbs/x/y.jpg", "y");
	run_for(QUIET_MS);
	assert_int_equal(F.nev, 5);
	assert_int_equal(watcher_watched(F.w), 3);
}

static void
test_file_events(void **state)
{
	char p[512], q[512];
	const struct ev *e;

	(void)state;
	set("WATCH_BACKEND", "inotify");
	start();
	assert_int_equal(last(K_SCAN, "startup")->st.files, 0);
	assert_int_equal(watcher_watched(F.w), 1);

	/* Written and closed: ready at once, by the event. */
	put("new.jpg", "data");
	EXPECT(count(K_FILE, "new.jpg") == 1);
	assert_int_equal(last(K_FILE, "new.jpg")->why, WATCHER_EVENT);

	/* Renamed within the tree: both halves paired into one move. */
	rename_in("new.jpg", "renamed.jpg");
	EXPECT(count(K_MOVE, "new.jpg") == 1);
	e = last(K_MOVE, "new.jpg");
	assert_string_equal(e->b, "renamed.jpg");
	assert_false(e->is_dir);

	path_in(p, sizeof(p), "renamed.jpg");
	assert_int_equal(unlink(p), 0);
	EXPECT(count(K_DELETE, "renamed.jpg") == 1);
	assert_false(last(K_DELETE, "renamed.jpg")->is_dir);

	/* Moved out: the unpaired half becomes a delete. */
	put("leaving.jpg", "x");
	EXPECT(count(K_FILE, "leaving.jpg") == 1);
	path_in(p, sizeof(p), "leaving.jpg");
	snprintf(q, sizeof(q), "%s/left.jpg", F.outside);
	assert_int_equal(rename(p, q), 0);
	EXPECT(count(K_DELETE, "leaving.jpg") == 1);
	assert_false(last(K_DELETE, "leaving.jpg")->is_dir);

	/* Moved in from outside: complete as it arrives. */
	path_in(p, sizeof(p), "arrived.jpg");
	assert_int_equal(rename(q, p), 0);
	EXPECT(count(K_FILE, "arrived.jpg") == 1);
	assert_int_equal(last(K_FILE, "arrived.jpg")->why, WATCHER_EVENT);

	/* A symlink has no close-after-write: ready when made. */
	path_in(p, sizeof(p), "link.jpg");
	assert_int_equal(symlink("nowhere", p), 0);
	EXPECT(count(K_FILE, "link.jpg") == 1);
	assert_int_equal(last(K_FILE, "link.jpg")->why, WATCHER_EVENT);

	run_for(QUIET_MS);
	/* Each exactly once, nothing else. */
	if (F.nev != 8) {
		dump();
		fail_msg("%d callbacks, expected 8", F.nev);
	}
	assert_int_equal(count(K_HELD, NULL), 0);
}

static void
test_folders(void **state)
{
	char p[512], q[512];
	const struct ev *e;

	(void)state;
	set("WATCH_BACKEND", "inotify");
	start();

	/* A new folder is watched, then what lands in it is seen. */
	mkdir_in("d");
	EXPECT(watcher_watched(F.w) == 2);
	put("d/x.jpg", "x");
	EXPECT(count(K_FILE, "d/x.jpg") == 1);
	assert_int_equal(last(K_FILE, "d/x.jpg")->why, WATCHER_EVENT);

	/* A file that lands before its folder is watched: the walk of the
	 * new folder finds it (held only if the walk caught it while still
	 * open for writing), and it is handed out once. */
	mkdir_in("d2");
	put("d2/y.jpg", "y");
	EXPECT(count(K_FILE, "d2/y.jpg") == 1);
	assert_true(count(K_HELD, "d2/y.jpg") <= 1);
	assert_int_equal(watcher_watched(F.w), 3);

	/* A tree moved in from outside is walked and watched whole. */
	snprintf(p, sizeof(p), "%s/tree", F.outside);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/tree/q", F.outside);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/tree/p.jpg", F.outside);
	put_old(p);
	snprintf(p, sizeof(p), "%s/tree/q/r.jpg", F.outside);
	put_old(p);
	snprintf(p, sizeof(p), "%s/tree", F.outside);
	path_in(q, sizeof(q), "tree");
	assert_int_equal(rename(p, q), 0);
	EXPECT(count(K_FILE, "tree/q/r.jpg") == 1);
	assert_int_equal(count(K_FILE, "tree/p.jpg"), 1);
	assert_int_equal(last(K_FILE, "tree/p.jpg")->why, WATCHER_SCAN);
	assert_int_equal(watcher_watched(F.w), 5);

	/* Renamed within: one move, and the watches below follow the new
	 * name, so a file made there now carries it. */
	rename_in("tree", "tree2");
	EXPECT(count(K_MOVE, "tree") == 1);
	e = last(K_MOVE, "tree");
	assert_string_equal(e->b, "tree2");
	assert_true(e->is_dir);
	put("tree2/q/new.jpg", "n");
	EXPECT(count(K_FILE, "tree2/q/new.jpg") == 1);
	assert_int_equal(last(K_FILE, "tree2/q/new.jpg")->why,
	    WATCHER_EVENT);
	assert_int_equal(count(K_FILE, "tree/q/new.jpg"), 0);
	assert_int_equal(watcher_watched(F.w), 5);

	/* Moved out: gone for us, its watches with it, and what is written
	 * there afterwards is not ours. */
	path_in(p, sizeof(p), "tree2");
	snprintf(q, sizeof(q), "%s/gone", F.outside);
	assert_int_equal(rename(p, q), 0);
	EXPECT(count(K_DELETE, "tree2") == 1);
	assert_true(last(K_DELETE, "tree2")->is_dir);
	assert_int_equal(watcher_watched(F.w), 3);
	snprintf(p, sizeof(p), "%s/gone/q/later.jpg", F.outside);
	put_old(p);

	/* Removed: the file, then the folder, and its watch ends. */
	path_in(p, sizeof(p), "d/x.jpg");
	assert_int_equal(unlink(p), 0);
	path_in(p, sizeof(p), "d");
	assert_int_equal(rmdir(p), 0);
	EXPECT(count(K_DELETE, "d") == 1);
	assert_true(last(K_DELETE, "d")->is_dir);
	assert_int_equal(count(K_DELETE, "d/x.jpg"), 1);
	assert_false(last(K_DELETE, "d/x.jpg")->is_dir);
	EXPECT(watcher_watched(F.w) == 2);

	run_for(QUIET_MS);
	assert_int_equal(count(K_FILE, NULL), 5);
	assert_int_equal(count(K_MOVE, NULL), 1);
	assert_int_equal(count(K_DELETE, NULL), 3);
	assert_int_equal(count(K_SCAN, NULL), 1);
}

/* A file held at start-up that goes before it settles is never handed
 * out. */
static void
test_held_then_deleted(void **state)
{
	char p[512];
	int wfd;

	(void)state;
	set("WATCH_BACKEND", "inotify");
	set("SETTLE_MS", "1000");
	wfd = put_open("brief.jpg", "b");
	start();
	assert_int_equal(count(K_HELD, "brief.jpg"), 1);
	assert_true(watcher_busy(F.w));
	path_in(p, sizeof(p), "brief.jpg");
	assert_int_equal(unlink(p), 0);
	EXPECT(count(K_DELETE, "brief.jpg") == 1);
	assert_false(watcher_busy(F.w));
	run_for(1300);
	assert_int_equal(count(K_FILE, NULL), 0);
	close(wfd);
}

static void
test_rescan(void **state)
{
	char p[512];
	const struct ev *e;

	(void)state;
	set("WATCH_BACKEND", "inotify");
	mkdir_in("s");
	path_in(p, sizeof(p), "s/one.jpg");
	put_old(p);
	start();
	assert_int_equal(count(K_FILE, "s/one.jpg"), 1);
	path_in(p, sizeof(p), "two.jpg");
	put_old(p);
	EXPECT(count(K_FILE, "two.jpg") == 1);

	/* Every file again, with the reason given. */
	watcher_rescan(F.w, "asked");
	e = last(K_SCAN, "asked");
	assert_non_null(e);
	assert_int_equal(e->st.dirs, 2);
	assert_int_equal(e->st.files, 2);
	assert_int_equal(count(K_FILE, "s/one.jpg"), 2);
	assert_int_equal(count(K_FILE, "two.jpg"), 2);
	assert_int_equal(last(K_FILE, "two.jpg")->why, WATCHER_SCAN);
	/* The same folders, not watched twice. */
	assert_int_equal(watcher_watched(F.w), 2);
}

/* INPUT_DIR deleted: every watch goes; made again: walked and watched. */
static void
test_input_dir_comes_back(void **state)
{
	(void)state;
	set("WATCH_BACKEND", "inotify");
	start();
	assert_int_equal(rmdir(F.in), 0);
	EXPECT(log_has("input_gone"));
	assert_int_equal(watcher_watched(F.w), 0);
	assert_int_equal(mkdir(F.in, 0755), 0);
	EXPECT(count(K_SCAN, "input folder recreated") == 1);
	assert_true(log_has("input_back"));
	assert_int_equal(watcher_watched(F.w), 1);
	put("again.jpg", "a");
	EXPECT(count(K_FILE, "again.jpg") == 1);
	assert_int_equal(last(K_FILE, "again.jpg")->why, WATCHER_EVENT);
}

/* ---- fsevent ------------------------------------------------------------ */

static void
test_fsevent(void **state)
{
	char p[512];
	const struct ev *e;
	uint64_t last_write;
	int fd;

	(void)state;
	set("WATCH_BACKEND", "fsevent");
	set("SETTLE_MS", "300");
	start();
	assert_string_equal(watcher_backend_name(F.w), "fsevent");
	assert_int_equal(watcher_watched(F.w), 1);

	/* No close-after-write here: a writer that pauses is not done. */
	path_in(p, sizeof(p), "slow.jpg");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "part one", 8), 8);
	run_for(150);
	assert_int_equal(count(K_FILE, "slow.jpg"), 0);
	assert_int_equal(write(fd, "part two", 8), 8);
	last_write = now_ms();
	assert_int_equal(close(fd), 0);
	EXPECT(count(K_FILE, "slow.jpg") == 1);
	e = last(K_FILE, "slow.jpg");
	assert_int_equal(e->why, WATCHER_SCAN);
	/* Not before the file was quiet SETTLE_MS (mtime has the
	 * kernel's coarse clock). */
	assert_true(e->at_ms + 20 >= last_write + 300);

	/* A rename is a name gone and a name that settles. */
	rename_in("slow.jpg", "renamed.jpg");
	EXPECT(count(K_FILE, "renamed.jpg") == 1);
	assert_int_equal(count(K_DELETE, "slow.jpg"), 1);
	assert_false(last(K_DELETE, "slow.jpg")->is_dir);

	path_in(p, sizeof(p), "renamed.jpg");
	assert_int_equal(unlink(p), 0);
	EXPECT(count(K_DELETE, "renamed.jpg") == 1);

	/* A new folder is watched and walked. */
	mkdir_in("d");
	EXPECT(watcher_watched(F.w) == 2);
	put("d/x.jpg", "x");
	EXPECT(count(K_FILE, "d/x.jpg") == 1);
	path_in(p, sizeof(p), "d/x.jpg");
	assert_int_equal(unlink(p), 0);
	EXPECT(count(K_DELETE, "d/x.jpg") == 1);
	/* Not checked: libuv names the removed folder's own watch by its
	 * base name, so "d/d" also comes as a delete (of nothing). */
	path_in(p, sizeof(p), "d");
	assert_int_equal(rmdir(p), 0);
	EXPECT(count(K_DELETE, "d") == 1);
	assert_true(last(K_DELETE, "d")->is_dir);
	assert_int_equal(watcher_watched(F.w), 1);

	run_for(QUIET_MS);
	assert_int_equal(count(K_FILE, NULL), 3);
	assert_int_equal(count(K_MOVE, NULL), 0);
}

/* ---- poll --------------------------------------------------------------- */

static void
test_poll(void **state)
{
	char p[512];

	(void)state;
	set("WATCH_BACKEND", "poll");
	set("RESCAN_INTERVAL_S", "1");
	path_in(p, sizeof(p), "first.jpg");
	put_old(p);
	start();
	assert_string_equal(watcher_backend_name(F.w), "poll");
	assert_int_equal(watcher_watched(F.w), -1);
	assert_int_equal(count(K_FILE, "first.jpg"), 1);

	/* Nothing is watched: a new file waits for the next walk. */
	mkdir_in("d");
	path_in(p, sizeof(p), "d/later.jpg");
	put_old(p);
	run_for(200);
	assert_int_equal(count(K_FILE, "d/later.jpg"), 0);
	EXPECT(count(K_SCAN, "periodic") >= 1);
	assert_int_equal(count(K_FILE, "d/later.jpg"), 1);
	assert_int_equal(last(K_FILE, "d/later.jpg")->why, WATCHER_SCAN);
	assert_int_equal(last(K_SCAN, "periodic")->st.dirs, 2);
	assert_int_equal(watcher_watched(F.w), -1);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_startup_walk),
		T(test_file_events),
		T(test_folders),
		T(test_held_then_deleted),
		T(test_rescan),
		T(test_input_dir_comes_back),
		T(test_fsevent),
		T(test_poll),
	};

	/* A hang anywhere still ends the run. */
	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
