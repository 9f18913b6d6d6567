/*
 * The one start/stop shape of the front ends the supervisor starts (http,
 * redisq, pool; see http.h), each in a real libuv loop run under a
 * deadline, so a bug can fail a test but not hang it:
 *  - X_stop(NULL, done, ud) calls done at once, and NULL done is fine;
 *  - a failed X_start fills err, leaves *xp NULL and calls nothing;
 *  - X_stop(x, done, ud) calls done exactly once, only after every handle
 *    is closed (the loop then closes cleanly) and never inside X_stop; a
 *    second X_stop while stopping does nothing;
 *  - http's listener is gone once done has run; the pool kills a worker
 *    that ignores EOF after opts.stop_grace_ms.
 * The ASan build checks that x is freed.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "redisq.h"

#define DEADLINE_MS	10000

struct fixture {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool timed_out;
	char dir[64];
	char log_path[PATH_MAX];
	struct logger lg;
	int done;		/* done callbacks seen */
	int done2;		/* a second stop's */
	uint64_t done_ms;	/* loop time of the first done */
};

static void
on_done(void *ud)
{
	struct fixture *f = ud;

	f->done++;
	f->done_ms = uv_now(&f->loop);
}

static void
on_done2(void *ud)
{
	((struct fixture *)ud)->done2++;
}

static void
deadline_cb(uv_timer_t *t)
{
	struct fixture *f = t->data;

	f->timed_out = true;
	uv_stop(&f->loop);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tw-frontends-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->log_path, sizeof(f->log_path), "%s/log.jsonl", f->dir);
	if (log_open(&f->lg, f->log_path, LOG_DEBUG) < 0)
		return -1;
	f->lg.tty = false;
	if (uv_loop_init(&f->loop) < 0)
		return -1;
	/* Unreferenced: it ends a loop that would hang, and keeps none
	 * alive by itself. */
	uv_timer_init(&f->loop, &f->deadline);
	f->deadline.data = f;
	uv_timer_start(&f->deadline, deadline_cb, DEADLINE_MS, 0);
	uv_unref((uv_handle_t *)&f->deadline);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	uv_close((uv_handle_t *)&f->deadline, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	/* Every handle of the module is closed: the loop closes. */
	assert_int_equal(uv_loop_close(&f->loop), 0);
	log_close(&f->lg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Runs the loop until only the deadline timer is left. */
static void
run(struct fixture *f)
{
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(f->timed_out);
}

/* ---- stop(NULL) -------------------------------------------------------- */

static void
test_stop_null(void **state)
{
	struct fixture *f = *state;

	http_stop(NULL, on_done, f);
	assert_int_equal(f->done, 1);
	redisq_stop(NULL, on_done, f);
	assert_int_equal(f->done, 2);
	pool_stop(NULL, on_done, f);
	assert_int_equal(f->done, 3);
	http_stop(NULL, NULL, NULL);
	redisq_stop(NULL, NULL, NULL);
	pool_stop(NULL, NULL, NULL);
	assert_int_equal(f->done, 3);
}

/* ---- http -------------------------------------------------------------- */

static void
http_stats(void *ud, struct http_stats *st)
{
	(void)ud;
	memset(st, 0, sizeof(*st));
}

/* A port on 127.0.0.1 nothing listens on now. */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* -errno of a plain bind to 127.0.0.1:port, or 0 (then unbound again). */
static int
try_bind(int port)
{
	struct sockaddr_in sa;
	int fd, rc;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static void
http_opts_init(struct fixture *f, struct config *cfg, struct http_opts *o)
{
	assert_int_equal(config_init(cfg), 0);
	memset(o, 0, sizeof(*o));
	o->cfg = cfg;
	o->in_root = f->dir;
	o->out_root = f->dir;
	o->lg = &f->lg;
}

static void
test_http_start_fails(void **state)
{
	struct fixture *f = *state;
	struct http_hooks hooks = { http_stats, NULL };
	struct http_server *h = (struct http_server *)f, *h2;
	struct http_opts o;
	struct config cfg;
	char err[256];
	int port;

	http_opts_init(f, &cfg, &o);
	snprintf(cfg.http_listen, sizeof(cfg.http_listen), "nowhere");
	err[0] = '\0';
	assert_int_equal(http_start(&h, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), -EINVAL);
	assert_null(h);
	assert_non_null(strstr(err, "HTTP_LISTEN"));

	/* The port taken (by a first server): refused, nothing left. */
	port = free_port();
	snprintf(cfg.http_listen, sizeof(cfg.http_listen), "127.0.0.1:%d",
	    port);
	assert_int_equal(http_start(&h, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	assert_non_null(h);
	err[0] = '\0';
	h2 = (struct http_server *)f;
	assert_int_equal(http_start(&h2, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), -EADDRINUSE);
	assert_null(h2);
	assert_non_null(strstr(err, "already in use"));
	http_stop(h, on_done, f);
	run(f);
	assert_int_equal(f->done, 1);
	config_free(&cfg);
}

static void
test_http_stop(void **state)
{
	struct fixture *f = *state;
	struct http_hooks hooks = { http_stats, NULL };
	struct http_server *h = NULL;
	struct http_opts o;
	struct config cfg;
	char err[256];
	int port;

	http_opts_init(f, &cfg, &o);
	port = free_port();
	snprintf(cfg.http_listen, sizeof(cfg.http_listen), "127.0.0.1:%d",
	    port);
	assert_int_equal(http_start(&h, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	assert_non_null(h);
	assert_int_equal(try_bind(port), -EADDRINUSE);
	/* A turn of the loop, so its handles are running. */
	uv_run(&f->loop, UV_RUN_NOWAIT);

	http_stop(h, on_done, f);
	assert_int_equal(f->done, 0);	/* not inside stop */
	http_stop(h, on_done2, f);	/* stopping: nothing */
	run(f);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->done2, 0);
	assert_int_equal(try_bind(port), 0);
	config_free(&cfg);

	/* done may be NULL. */
	http_opts_init(f, &cfg, &o);
	snprintf(cfg.http_listen, sizeof(cfg.http_listen), "127.0.0.1:%d",
	    port);
	assert_int_equal(http_start(&h, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	http_stop(h, NULL, NULL);
	run(f);
	assert_int_equal(try_bind(port), 0);
	config_free(&cfg);
}

/* ---- redisq ------------------------------------------------------------ */

static void
rq_state(void *ud, bool up, const char *why)
{
	(void)ud;
	(void)why;
	assert_false(up);	/* nothing listens there */
}

static void
rq_job(void *ud, const struct cluster_job *job, bool reclaimed)
{
	(void)ud;
	(void)job;
	(void)reclaimed;
	fail_msg("a job with no server");
}

static void
rq_dead(void *ud, const struct cluster_job *job, int64_t deliveries)
{
	(void)ud;
	(void)job;
	(void)deliveries;
	fail_msg("a dead entry with no server");
}

static void
rq_bad(void *ud, const char *id, const char *why)
{
	(void)ud;
	(void)id;
	(void)why;
	fail_msg("a bad entry with no server");
}

static size_t
rq_room(void *ud)
{
	(void)ud;
	return 4;
}

static void
redisq_opts_init(struct redisq_opts *o, int port)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->url.host, sizeof(o->url.host), "127.0.0.1");
	o->url.port = port;
	o->prefix = "tw-test";
	o->consumer = "test:1";
	o->fingerprint = "0";
	o->produce = o->consume = true;
	o->visibility_ms = 3000;
	o->max_deliveries = 3;
}

static void
test_redisq_stop(void **state)
{
	struct fixture *f = *state;
	struct redisq_hooks hooks = { rq_state, rq_job, rq_dead, rq_bad,
	    rq_room };
	struct redisq_opts o;
	struct redisq *q = NULL;
	char err[256];

	/* Redis away: start still succeeds (it connects from the loop). */
	redisq_opts_init(&o, free_port());
	assert_int_equal(redisq_start(&q, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	assert_non_null(q);
	assert_false(redisq_up(q));
	uv_run(&f->loop, UV_RUN_NOWAIT);

	redisq_stop(q, on_done, f);
	assert_int_equal(f->done, 0);
	redisq_stop(q, on_done2, f);
	run(f);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->done2, 0);

	/* Stopped at once, before the loop ran; done may be NULL. */
	assert_int_equal(redisq_start(&q, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	redisq_stop(q, NULL, NULL);
	run(f);
}

/* ---- pool -------------------------------------------------------------- */

static void
pool_result(void *ud, int worker, struct batch_item *item,
    const struct ipc_result *res)
{
	(void)ud;
	(void)worker;
	(void)item;
	(void)res;
	fail_msg("a result with no job sent");
}

static void
pool_lost(void *ud, int worker, struct batch_item *culprit,
    struct batch_item *rest, const char *why)
{
	(void)ud;
	(void)worker;
	(void)why;
	assert_null(culprit);
	assert_null(rest);
}

static void
pool_idle(void *ud)
{
	(void)ud;
}

/* A "worker" that neither speaks nor exits on EOF: the pool must kill it
 * after stop_grace_ms. */
static void
test_pool_stop(void **state)
{
	struct fixture *f = *state;
	struct pool_hooks hooks = { pool_result, pool_lost, pool_idle };
	struct pool_opts o;
	struct pool *p = NULL;
	char exe[PATH_MAX], err[256];
	uint64_t t0;
	FILE *fp;

	snprintf(exe, sizeof(exe), "%s/worker.sh", f->dir);
	fp = fopen(exe, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\nexec sleep 30\n", fp);
	fclose(fp);
	assert_int_equal(chmod(exe, 0700), 0);
	memset(&o, 0, sizeof(o));
	o.workers = 2;
	o.image_timeout_ms = 60000;
	o.stop_grace_ms = 200;
	o.exe = exe;
	o.formats = "jpg";
	o.instance = f->dir;
	o.lg = &f->lg;
	assert_int_equal(pool_start(&p, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	assert_non_null(p);
	assert_int_equal(pool_size(p), 2);
	uv_run(&f->loop, UV_RUN_NOWAIT);

	t0 = uv_now(&f->loop);
	pool_stop(p, on_done, f);
	assert_int_equal(f->done, 0);
	pool_stop(p, on_done2, f);
	run(f);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->done2, 0);
	assert_true(f->done_ms - t0 >= 150);
	assert_true(f->done_ms - t0 < 5000);	/* killed, not slept out */

	/* A worker that exits on its own; done may be NULL. */
	o.exe = "/bin/true";
	assert_int_equal(pool_start(&p, &f->loop, &o, &hooks, f, err,
	    sizeof(err)), 0);
	pool_stop(p, NULL, NULL);
	run(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stop_null, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_http_start_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_http_stop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_redisq_stop, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pool_stop, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
