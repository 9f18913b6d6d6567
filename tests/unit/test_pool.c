/*
 * Unit tests of src/supervisor/pool.c with real workers: the built binary
 * (THUMBWATCH_BIN, else the path the Makefile compiles in) re-executed in
 * worker mode, in a real libuv loop run by this thread under deadlines.
 * Jobs are filled as the daemon's inspect() fills them, for copies of
 * samples/ in a temporary folder (run from the repository root).
 *
 * Checked: hello then idle; a thumbnail made (IPC_OK, on disk, a JPEG,
 * with the source's mtime); a corrupt file failed with a reason and no
 * output; a worker SIGKILLed from here, one that aborts and one past
 * IMAGE_TIMEOUT_MS each hand back the item it was on as the culprit and
 * the ones it had not started, then are replaced and work again; a
 * worker recycled after WORKER_MAX_IMAGES is not counted as a restart;
 * pool_stop ends idle workers by closing their channels, not by the
 * grace kill; pool_stop with a hung job: the item comes back as "shutdown", the
 * grace kill ends the worker, done_cb runs once.  Teardown stops the pool
 * and checks the loop closes with no handle left.
 */
#include "unit.h"
#include "loop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "pool.h"

#ifndef THUMBWATCH_TEST_BIN
#define THUMBWATCH_TEST_BIN "build/thumbwatch"
#endif
#define FORMATS "jpg,jpeg,png,webp,tif,tiff,gif"
#define MAX_PIXELS 268402689LL
#define MAX_RESULTS 16

struct result {
	int worker;
	char rel[256];
	struct ipc_result res;
};

struct lost {
	int worker;
	char culprit[256];	/* "" for none */
	char rest[512];		/* the others' names, comma-separated */
	char why[200];
};

/* Everything a callback may write lives here, not on a test's stack: a
 * failed assertion leaves the test early and teardown still stops. */
static struct {
	uv_loop_t loop;
	uv_timer_t wake;
	struct logger lg;
	struct pool *pool;
	bool stopping;
	int done;		/* pool_stop's done_cb */
	int grace_ms;		/* stop_grace_ms; 0: 1000 */
	char root[64];
	char in[128], out[128], logp[128], exe[4096];
	char in_real[1024], out_real[1024];
	struct result results[MAX_RESULTS];
	int nresults;
	struct lost losts[MAX_RESULTS];
	int nlosts;
	int idles;
} F;

/* ---- callbacks ---------------------------------------------------------- */

static void
on_result(void *ud, int worker, struct batch_item *item,
    const struct ipc_result *res)
{
	struct result *r;

	assert_ptr_equal(ud, &F);
	if (F.nresults < MAX_RESULTS) {
		r = &F.results[F.nresults++];
		r->worker = worker;
		snprintf(r->rel, sizeof(r->rel), "%s", item->rel);
		r->res = *res;
	}
	batch_item_free(item);
}

static void
on_lost(void *ud, int worker, struct batch_item *culprit,
    struct batch_item *rest, const char *why)
{
	struct batch_item *it;
	struct lost *l;

	assert_ptr_equal(ud, &F);
	l = F.nlosts < MAX_RESULTS ? &F.losts[F.nlosts++] : NULL;
	if (l) {
		memset(l, 0, sizeof(*l));
		l->worker = worker;
		snprintf(l->culprit, sizeof(l->culprit), "%s",
		    culprit ? culprit->rel : "");
		snprintf(l->why, sizeof(l->why), "%s", why);
	}
	batch_item_free(culprit);
	while ((it = rest) != NULL) {
		rest = it->next;
		if (l) {
			if (l->rest[0])
				strncat(l->rest, ",", sizeof(l->rest) -
				    strlen(l->rest) - 1);
			strncat(l->rest, it->rel, sizeof(l->rest) -
			    strlen(l->rest) - 1);
		}
		batch_item_free(it);
	}
}

static void
on_idle(void *ud)
{
	assert_ptr_equal(ud, &F);
	F.idles++;
}

static void
pool_done(void *ud)
{
	assert_ptr_equal(ud, &F);
	F.done++;
}

static const struct pool_hooks CB = { on_result, on_lost, on_idle };

/* ---- the loop ----------------------------------------------------------- */

#define RUN_UNTIL(cond, ms) LOOP_RUN_UNTIL(&F.loop, &F.wake, cond, ms)

/* Runs the loop until cond holds; fails the test if it does not within
 * 20 s (a worker under ASan starts slowly). */
#define EXPECT(cond) do {						\
	RUN_UNTIL(cond, 20000);						\
	if (!(cond))							\
		fail_msg("%s:%d: never true: %s", __FILE__, __LINE__,	\
		    #cond);						\
} while (0)

/* ---- files and jobs ----------------------------------------------------- */

static void
copy_sample(const char *sample, const char *name)
{
	char from[256], to[512], buf[8192];
	ssize_t n;
	int in, out;

	snprintf(from, sizeof(from), "samples/%s", sample);
	snprintf(to, sizeof(to), "%s/%s", F.in, name);
	if ((in = open(from, O_RDONLY)) < 0)
		fail_msg("cannot read %s (run the tests from the repo root)",
		    from);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

static void
write_in(const char *name, const void *data, size_t len)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", F.in, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int64_t
ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* As daemon.c's inspect(): the source and both roots by device and inode,
 * one JPEG output 160x160 inside OUTPUT_DIR named after the source. */
static void
job_for(struct ipc_job *job, const char *name)
{
	struct ipc_output_spec *o;
	struct stat st;

	memset(job, 0, sizeof(*job));
	snprintf(job->src, sizeof(job->src), "%s/%s", F.in_real, name);
	snprintf(job->in_root, sizeof(job->in_root), "%s", F.in_real);
	snprintf(job->out_root, sizeof(job->out_root), "%s", F.out_real);
	assert_int_equal(lstat(job->src, &st), 0);
	job->src_dev = (uint64_t)st.st_dev;
	job->src_ino = (uint64_t)st.st_ino;
	job->src_mtime_ns = ts_ns(&st.st_mtim);
	assert_int_equal(stat(F.in_real, &st), 0);
	job->in_root_dev = (uint64_t)st.st_dev;
	job->in_root_ino = (uint64_t)st.st_ino;
	assert_int_equal(stat(F.out_real, &st), 0);
	job->out_root_dev = (uint64_t)st.st_dev;
	job->out_root_ino = (uint64_t)st.st_ino;
	job->max_pixels = MAX_PIXELS;
	snprintf(job->background, sizeof(job->background), "255,255,255");
	job->noutputs = 1;
	o = &job->outputs[0];
	snprintf(o->path, sizeof(o->path), "%s/%s.thumb.jpg", F.out_real,
	    name);
	o->width = 160;
	o->height = 160;
	o->fit = FIT_INSIDE;
	snprintf(o->gravity, sizeof(o->gravity), "centre");
	o->format = FORMAT_JPEG;
	o->quality = 80;
	o->strip = 1;
}

/* Sends name's job to an idle worker (waiting for one). */
static void
send_job(const char *name)
{
	struct batch_item *it;
	struct ipc_job *job = malloc(sizeof(*job));
	int wi;

	assert_non_null(job);
	EXPECT((wi = pool_idle_worker(F.pool)) >= 0);
	it = calloc(1, sizeof(*it));
	assert_non_null(it);
	it->rel = strdup(name);
	assert_non_null(it->rel);
	job_for(job, name);
	if (pool_send(F.pool, wi, it, job) != 0) {
		batch_item_free(it);
		free(job);
		fail_msg("pool_send refused %s", name);
	}
	free(job);
}

/* Sends several to one worker, as a batch. */
static void
send_batch(int wi, const char *const *names, int n)
{
	struct ipc_job *job = malloc(sizeof(*job));
	struct batch_item *it;
	int i;

	assert_non_null(job);
	for (i = 0; i < n; i++) {
		it = calloc(1, sizeof(*it));
		assert_non_null(it);
		it->rel = strdup(names[i]);
		job_for(job, names[i]);
		assert_int_equal(pool_send(F.pool, wi, it, job), 0);
	}
	free(job);
}

static const struct result *
result_for(const char *rel)
{
	int i;

	for (i = 0; i < F.nresults; i++)
		if (strcmp(F.results[i].rel, rel) == 0)
			return &F.results[i];
	return NULL;
}

/* The pids of this process's children that are workers. */
static int
worker_pids(pid_t *pids, int cap)
{
	char path[300], buf[512], *s;
	struct dirent *de;
	DIR *dp;
	long ppid;
	int n = 0, fd;
	ssize_t len;

	assert_non_null(dp = opendir("/proc"));
	while ((de = readdir(dp)) != NULL && n < cap) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold ") ". */
		if ((s = strrchr(buf, ')')) == NULL ||
		    sscanf(s + 1, " %*c %ld", &ppid) != 1 ||
		    ppid != (long)getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		if (strcmp(buf + strlen(buf) + 1, "worker") == 0)
			pids[n++] = (pid_t)strtol(de->d_name, NULL, 10);
	}
	closedir(dp);
	return n;
}

static bool
log_has(const char *needle)
{
	static char buf[256 * 1024];
	ssize_t n;
	int fd;

	if ((fd = open(F.logp, O_RDONLY)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* ---- fixture ------------------------------------------------------------ */

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

static int
setup(void **state)
{
	const char *exe = getenv("THUMBWATCH_BIN");

	(void)state;
	memset(&F, 0, sizeof(F));
	snprintf(F.exe, sizeof(F.exe), "%s", exe && *exe ? exe :
	    THUMBWATCH_TEST_BIN);
	if (access(F.exe, X_OK) != 0) {
		fprintf(stderr, "no worker binary %s (make all)\n", F.exe);
		return -1;
	}
	snprintf(F.root, sizeof(F.root), "/tmp/tw-pool-XXXXXX");
	if (mkdtemp(F.root) == NULL)
		return -1;
	snprintf(F.in, sizeof(F.in), "%s/in", F.root);
	snprintf(F.out, sizeof(F.out), "%s/out", F.root);
	snprintf(F.logp, sizeof(F.logp), "%s/log/pool.log", F.root);
	if (mkdir(F.in, 0755) < 0 || mkdir(F.out, 0755) < 0 ||
	    realpath(F.in, F.in_real) == NULL ||
	    realpath(F.out, F.out_real) == NULL)
		return -1;
	if (log_open(&F.lg, F.logp, LOG_DEBUG) < 0)
		return -1;
	F.lg.tty = false;
	if (uv_loop_init(&F.loop) != 0 ||
	    uv_timer_init(&F.loop, &F.wake) != 0)
		return -1;
	/* The worker's __crash__ and __hang__ names (worker.c). */
	setenv("THUMBWATCH_TEST_HOOKS", "1", 1);
	return 0;
}

static int
teardown(void **state)
{
	uint64_t end;
	int rc = 0;

	(void)state;
	if (F.pool) {
		if (!F.stopping)
			pool_stop(F.pool, pool_done, &F);
		RUN_UNTIL(F.done > 0, 10000);
		if (F.done != 1) {
			fprintf(stderr, "teardown: done_cb ran %d times\n",
			    F.done);
			rc = -1;
		}
		F.pool = NULL;	/* freed before done ran */
	}
	uv_close((uv_handle_t *)&F.wake, NULL);
	/* Every process and handle is gone once done_cb ran: the loop has
	 * nothing left to wait for. */
	end = now_ms() + 3000;
	while (uv_run(&F.loop, UV_RUN_NOWAIT) != 0 && now_ms() < end)
		usleep(1000);
	if (uv_loop_close(&F.loop) != 0) {
		fprintf(stderr, "teardown: handles left on the loop\n");
		rc = -1;
	}
	log_close(&F.lg);
	nftw(F.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	unsetenv("THUMBWATCH_TEST_HOOKS");
	return rc;
}

static void
start(int workers, int timeout_ms, int max_images)
{
	struct pool_opts o = {
		.workers = workers,
		.image_timeout_ms = timeout_ms,
		.stop_grace_ms = F.grace_ms ? F.grace_ms : 1000,
		.lg = &F.lg,
		.exe = F.exe,
		.formats = FORMATS,
		.max_images = max_images,
		.memory_mb = 0,
		.instance = F.in_real,
	};

	char err[256];

	assert_int_equal(pool_start(&F.pool, &F.loop, &o, &CB, &F, err,
	    sizeof(err)), 0);
	assert_int_equal(pool_size(F.pool), workers);
	/* Each says hello once its libvips is up. */
	EXPECT(pool_idle_count(F.pool) == workers);
	assert_true(F.idles >= workers);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_thumbnail(void **state)
{
	const struct result *r;
	char out[512];
	unsigned char magic[2];
	struct stat src, st;
	int fd;

	(void)state;
	start(2, 10000, 0);
	copy_sample("landscape.jpg", "landscape.jpg");
	copy_sample("photo.webp", "photo.webp");
	send_job("landscape.jpg");
	assert_int_equal(pool_busy_count(F.pool), 1);
	assert_int_equal(pool_idle_count(F.pool), 1);
	send_job("photo.webp");
	assert_int_equal(pool_busy_count(F.pool), 2);
	assert_int_equal(pool_idle_worker(F.pool), -1);
	EXPECT(F.nresults == 2);
	assert_int_equal(pool_idle_count(F.pool), 2);
	assert_int_equal(pool_restarts(F.pool), 0);
	assert_int_equal(F.nlosts, 0);

	assert_non_null(r = result_for("landscape.jpg"));
	if (r->res.status != IPC_OK)
		fail_msg("landscape.jpg: status %d: %s", r->res.status,
		    r->res.error);
	assert_int_equal(r->res.noutputs, 1);
	assert_true(r->res.src_width > 160 && r->res.src_height > 0);
	assert_true(r->res.out_bytes > 0);
	assert_non_null(r = result_for("photo.webp"));
	assert_int_equal(r->res.status, IPC_OK);

	/* On disk, a JPEG, dated as its source (the up-to-date check). */
	snprintf(out, sizeof(out), "%s/landscape.jpg.thumb.jpg", F.out);
	assert_int_equal(stat(out, &st), 0);
	assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
	assert_int_equal(st.st_size, result_for("landscape.jpg")->res.out_bytes);
	assert_true((fd = open(out, O_RDONLY)) >= 0);
	assert_int_equal(read(fd, magic, 2), 2);
	close(fd);
	assert_int_equal(magic[0], 0xff);
	assert_int_equal(magic[1], 0xd8);
	snprintf(out, sizeof(out), "%s/landscape.jpg", F.in);
	assert_int_equal(stat(out, &src), 0);
	assert_int_equal(ts_ns(&st.st_mtim), ts_ns(&src.st_mtim));
}

static void
test_corrupt(void **state)
{
	static const char junk[] = "this is not an image, whatever its name";
	const struct result *r;
	char out[512];
	unsigned char half[4096];
	int fd;

	(void)state;
	start(1, 10000, 0);
	write_in("junk.jpg", junk, sizeof(junk));
	/* A JPEG cut after its first bytes. */
	assert_true((fd = open("samples/landscape.jpg", O_RDONLY)) >= 0);
	assert_int_equal(read(fd, half, sizeof(half)), sizeof(half));
	close(fd);
	write_in("cut.jpg", half, 600);
	send_job("junk.jpg");
	send_job("cut.jpg");
	EXPECT(F.nresults == 2);
	assert_non_null(r = result_for("junk.jpg"));
	assert_int_equal(r->res.status, IPC_FAILED);
	assert_true(r->res.error[0] != '\0');
	assert_int_equal(r->res.noutputs, 0);
	assert_non_null(r = result_for("cut.jpg"));
	assert_int_equal(r->res.status, IPC_FAILED);
	assert_true(r->res.error[0] != '\0');
	snprintf(out, sizeof(out), "%s/junk.jpg.thumb.jpg", F.out);
	assert_int_equal(access(out, F_OK), -1);
	snprintf(out, sizeof(out), "%s/cut.jpg.thumb.jpg", F.out);
	assert_int_equal(access(out, F_OK), -1);
	/* A bad image is the image's failure, not the worker's. */
	assert_int_equal(F.nlosts, 0);
	assert_int_equal(pool_restarts(F.pool), 0);
	assert_int_equal(pool_idle_count(F.pool), 1);
}

/* Killed from outside while on an image, with another one queued behind
 * it: the first is the culprit, the second comes back unstarted. */
static void
test_killed(void **state)
{
	static const char *const batch[] = { "a__hang__.jpg", "b.jpg" };
	const struct lost *l;
	pid_t pids[4];
	int idles;

	(void)state;
	start(1, 60000, 0);
	copy_sample("landscape.jpg", "a__hang__.jpg");
	copy_sample("landscape.jpg", "b.jpg");
	assert_int_equal(worker_pids(pids, 4), 1);
	send_batch(0, batch, 2);
	assert_int_equal(pool_busy_count(F.pool), 1);
	idles = F.idles;
	assert_int_equal(kill(pids[0], SIGKILL), 0);
	EXPECT(F.nlosts == 1);
	l = &F.losts[0];
	assert_int_equal(l->worker, 0);
	assert_string_equal(l->culprit, "a__hang__.jpg");
	assert_string_equal(l->rest, "b.jpg");
	assert_non_null(strstr(l->why, "signal 9"));
	assert_int_equal(F.nresults, 0);
	assert_true(log_has("\"event\":\"worker_exited\""));

	/* Replaced, and the new one works. */
	EXPECT(F.idles > idles && pool_idle_count(F.pool) == 1);
	assert_int_equal(pool_restarts(F.pool), 1);
	send_job("b.jpg");
	EXPECT(F.nresults == 1);
	assert_int_equal(F.results[0].res.status, IPC_OK);
	assert_int_equal(worker_pids(pids, 4), 1);
}

static void
test_crash(void **state)
{
	(void)state;
	start(1, 60000, 0);
	copy_sample("landscape.jpg", "x__crash__.jpg");
	send_job("x__crash__.jpg");
	EXPECT(F.nlosts == 1);
	assert_string_equal(F.losts[0].culprit, "x__crash__.jpg");
	assert_string_equal(F.losts[0].rest, "");
	assert_non_null(strstr(F.losts[0].why, "crashed (signal 6"));
	EXPECT(pool_idle_count(F.pool) == 1);
	assert_int_equal(pool_restarts(F.pool), 1);
}

static void
test_timeout(void **state)
{
	uint64_t t0;

	(void)state;
	start(1, 300, 0);
	copy_sample("landscape.jpg", "x__hang__.jpg");
	t0 = now_ms();
	send_job("x__hang__.jpg");
	EXPECT(F.nlosts == 1);
	assert_true(now_ms() - t0 >= 300);
	assert_string_equal(F.losts[0].culprit, "x__hang__.jpg");
	assert_string_equal(F.losts[0].why,
	    "timed out after 300 ms (IMAGE_TIMEOUT_MS)");
	assert_true(log_has("\"reason\":\"timeout\""));
	EXPECT(pool_idle_count(F.pool) == 1);
	assert_int_equal(pool_restarts(F.pool), 1);
}

/* WORKER_MAX_IMAGES: a worker leaves after so many, and its successor
 * is not a restart. */
static void
test_recycle(void **state)
{
	pid_t before[4], after[4];

	(void)state;
	start(1, 10000, 1);
	assert_int_equal(pool_room(F.pool, 0), 1);
	assert_int_equal(worker_pids(before, 4), 1);
	copy_sample("alpha.png", "alpha.png");
	send_job("alpha.png");
	assert_int_equal(pool_room(F.pool, 0), 0);
	EXPECT(F.nresults == 1);
	assert_int_equal(F.results[0].res.status, IPC_OK);
	EXPECT(log_has("\"event\":\"worker_recycled\"") &&
	    pool_idle_count(F.pool) == 1);
	assert_int_equal(worker_pids(after, 4), 1);
	assert_true(before[0] != after[0]);
	assert_int_equal(pool_restarts(F.pool), 0);
	assert_int_equal(F.nlosts, 0);
}

/* Stopping idle workers: the closed channel tells them to exit, long
 * before the grace period would kill them. */
static void
test_stop_idle(void **state)
{
	pid_t pids[4];

	(void)state;
	F.grace_ms = 30000;
	start(2, 60000, 0);
	F.stopping = true;
	pool_stop(F.pool, pool_done, &F);
	RUN_UNTIL(F.done == 1, 5000);
	assert_int_equal(F.done, 1);
	assert_int_equal(F.nlosts, 0);
	assert_int_equal(worker_pids(pids, 4), 0);
}

/* Stopping with a hung job: the item comes back as "shutdown" once the
 * grace kill ends the worker; done_cb runs once, after every handle. */
static void
test_stop(void **state)
{
	pid_t pids[4];
	uint64_t t0;

	(void)state;
	F.grace_ms = 500;
	start(2, 60000, 0);
	copy_sample("landscape.jpg", "x__hang__.jpg");
	send_job("x__hang__.jpg");
	t0 = now_ms();
	F.stopping = true;
	pool_stop(F.pool, pool_done, &F);
	assert_int_equal(pool_idle_worker(F.pool), -1);
	EXPECT(F.done == 1);
	assert_true(now_ms() - t0 >= 500);
	assert_int_equal(F.nlosts, 1);
	assert_string_equal(F.losts[0].culprit, "x__hang__.jpg");
	assert_string_equal(F.losts[0].why, "shutdown");
	assert_int_equal(worker_pids(pids, 4), 0);
	/* Teardown frees the pool and closes the loop. */
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_thumbnail),
		T(test_corrupt),
		T(test_killed),
		T(test_crash),
		T(test_timeout),
		T(test_recycle),
		T(test_stop_idle),
		T(test_stop),
	};

	/* A hang anywhere still ends the run. */
	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
