/*
 * watchbench: the watcher (src/supervisor/watcher.c) alone on a wide tree,
 * to see what its bookkeeping of watches costs as folders grow.
 *
 *   watchbench [-d DIRS] [-f FILES] [-b inotify|fsevent] SCRATCH
 *
 * Makes DIRS folders below SCRATCH/in (FANOUT per level), starts the
 * watcher on it in a libuv loop and times, in wall and CPU milliseconds:
 *  walk    the start-up walk (watch every folder, list it);
 *  create  FILES files made (one write, closed) across the folders while
 *          the loop sleeps, then the loop until every on_file came;
 *  rename  the same files renamed in place (inotify: an on_move each;
 *          fsevent: an on_delete and, once settled, an on_file);
 *  delete  the same files removed (on_delete).
 * The events of a phase are queued before the loop runs, so the time is
 * the watcher's own, not the writer's; FILES * 2 must stay under
 * fs.inotify.max_queued_events (16384 by default) or the kernel drops
 * events and the watcher rescans.  Not a test: nothing is asserted.
 *
 * Build (from the repository root, after `make all`):
 *   cc -O2 -g -D_GNU_SOURCE -Iinclude -Isrc/common -Isrc/supervisor \
 *       -o build/watchbench tests/bench/watchbench.c build/libthumbwatch.a \
 *       $(pkg-config --cflags --libs libuv inih zlib)
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "watcher.h"

#define FANOUT 50

static struct {
	uint64_t calls;		/* on_file, on_move and on_delete */
	uint64_t scans;
	uint64_t scan_dirs, scan_ms;
} got;

static void
on_file(void *ud, const char *rel, enum watcher_why why)
{
	(void)ud; (void)rel; (void)why;
	got.calls++;
}

static void
on_delete(void *ud, const char *rel, bool is_dir)
{
	(void)ud; (void)rel; (void)is_dir;
	got.calls++;
}

static void
on_move(void *ud, const char *from, const char *to, bool is_dir)
{
	(void)ud; (void)from; (void)to; (void)is_dir;
	got.calls++;
}

static void
on_scan_done(void *ud, const struct watcher_scan_stats *st)
{
	(void)ud;
	got.scans++;
	got.scan_dirs = st->dirs;
	got.scan_ms = st->ms;
}

static double
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void
wake(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *count has grown by want (or 60 s pass); prints. */
static void
run_until(uv_loop_t *loop, uv_timer_t *t, const char *phase,
    const uint64_t *count, uint64_t want)
{
	double w0 = wall_ms(), c0 = cpu_ms(), end = w0 + 60000;
	uint64_t c = *count;

	while (*count - c < want && wall_ms() < end) {
		uv_timer_start(t, wake, 50, 0);
		uv_run(loop, UV_RUN_ONCE);
	}
	printf("%-7s %8.1f ms wall %8.1f ms cpu  (%llu of %llu callbacks)\n",
	    phase, wall_ms() - w0, cpu_ms() - c0,
	    (unsigned long long)(*count - c), (unsigned long long)want);
}

/* Folder i of the tree, relative to the input dir. */
static void
dir_name(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, "d%03d/s%03d", i / FANOUT, i % FANOUT);
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

int
main(int argc, char **argv)
{
	char in[1024], out[1024], logp[1024], p[PATH_MAX], q[PATH_MAX],
	    rel[32], err[256];
	const char *backend = "inotify";
	struct watcher_callbacks cb = { on_file, on_delete, on_move,
	    on_scan_done, NULL };
	struct config cfg;
	struct logger lg;
	struct watcher *w;
	uv_loop_t loop;
	uv_timer_t t;
	int dirs = 5000, files = 5000, c, i, fd;

	while ((c = getopt(argc, argv, "d:f:b:")) != -1) {
		switch (c) {
		case 'd': dirs = atoi(optarg); break;
		case 'f': files = atoi(optarg); break;
		case 'b': backend = optarg; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	snprintf(in, sizeof(in), "%s/in", argv[optind]);
	snprintf(out, sizeof(out), "%s/out", argv[optind]);
	snprintf(logp, sizeof(logp), "%s/log/bench.log", argv[optind]);
	nftw(argv[optind], rm_one, 64, FTW_DEPTH | FTW_PHYS);
	if (mkdir(argv[optind], 0755) == -1 || mkdir(in, 0755) == -1 ||
	    mkdir(out, 0755) == -1) {
		perror(argv[optind]);
		return 1;
	}
	for (i = 0; i < dirs; i++) {
		if (i % FANOUT == 0) {
			snprintf(p, sizeof(p), "%s/d%03d", in, i / FANOUT);
			mkdir(p, 0755);
		}
		dir_name(rel, sizeof(rel), i);
		snprintf(p, sizeof(p), "%s/%s", in, rel);
		if (mkdir(p, 0755) == -1) {
			perror(p);
			return 1;
		}
	}

	config_init(&cfg);
	if (config_set(&cfg, "INPUT_DIR", in, "bench", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "OUTPUT_DIR", out, "bench", err,
	    sizeof(err)) < 0 ||
	    config_set(&cfg, "SETTLE_MS", "10", "bench", err, sizeof(err)) < 0 ||
	    config_set(&cfg, "WATCH_BACKEND", backend, "bench", err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "watchbench: %s\n", err);
		return 1;
	}
	if (log_open(&lg, logp, LOG_WARN) < 0)
		return 1;
	lg.tty = false;
	uv_loop_init(&loop);
	uv_timer_init(&loop, &t);
	if (watcher_start(&w, &loop, &cfg, &lg, &cb, NULL) < 0) {
		fprintf(stderr, "watchbench: watcher_start failed\n");
		return 1;
	}
	printf("%d folders (+%d), %d files, %s\n", dirs,
	    (dirs + FANOUT - 1) / FANOUT, files, watcher_backend_name(w));
	run_until(&loop, &t, "walk", &got.scans, 1);
	printf("        scan_done: %llu folders in %llu ms; %lld watched\n",
	    (unsigned long long)got.scan_dirs,
	    (unsigned long long)got.scan_ms, (long long)watcher_watched(w));

	for (i = 0; i < files; i++) {
		dir_name(rel, sizeof(rel), i % dirs);
		snprintf(p, sizeof(p), "%s/%s/f%05d.jpg", in, rel, i);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
		    write(fd, "x", 1) != 1) {
			perror(p);
			return 1;
		}
		close(fd);
	}
	/* The files were written within SETTLE_MS only for the fsevent and
	 * poll back-ends, which settle them first. */
	run_until(&loop, &t, "create", &got.calls, (uint64_t)files);
	for (i = 0; i < files; i++) {
		dir_name(rel, sizeof(rel), i % dirs);
		snprintf(p, sizeof(p), "%s/%s/f%05d.jpg", in, rel, i);
		snprintf(q, sizeof(q), "%s/%s/g%05d.jpg", in, rel, i);
		rename(p, q);
	}
	run_until(&loop, &t, "rename", &got.calls, (uint64_t)files *
	    (strcmp(watcher_backend_name(w), "inotify") == 0 ? 1 : 2));
	for (i = 0; i < files; i++) {
		dir_name(rel, sizeof(rel), i % dirs);
		snprintf(q, sizeof(q), "%s/%s/g%05d.jpg", in, rel, i);
		unlink(q);
	}
	run_until(&loop, &t, "delete", &got.calls, (uint64_t)files);

	watcher_stop(w);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	log_close(&lg);
	config_free(&cfg);
	nftw(argv[optind], rm_one, 64, FTW_DEPTH | FTW_PHYS);
	return 0;
usage:
	fprintf(stderr, "usage: watchbench [-d DIRS] [-f FILES] "
	    "[-b inotify|fsevent] SCRATCH\n");
	return 2;
}
