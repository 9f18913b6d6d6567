/*
 * Unit tests of src/front/control_server.c and src/cli/control_client.c:
 * a real server on a socket in a temporary folder, served by a libuv loop
 * in this thread with fake callbacks, while clients run in a second
 * thread: status (text and JSON), garbage and oversize requests answered
 * with an error, a slow client that does not hold up another, the
 * per-client deadline, reprocess and retry-failed, stale and live
 * sockets, no daemon, many clients at once, and stopping with a client
 * connected.
 */
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "control.h"
#include "control_client.h"
#include "control_server.h"

/* ---- a real server ----------------------------------------------------- */

struct fake {
	int status_calls;
	char paths[8][256];
	int npaths;
	struct control_recent recent;
};

static struct fake fake;
static char tmpdir[64], sockpath[128];
static uv_loop_t loop;
static struct control_server *srv;

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
fake_status(void *ud, struct control_status *st)
{
	struct fake *f = ud;

	f->status_calls++;
	st->version = "9.9.9";
	st->pid = 4242;
	st->mode = "run";
	st->started_ms = wall_ms() - 3723000;	/* 1h 02m 03s */
	st->input_dir = "/srv/in";
	st->output_dir = "/srv/out";
	st->log_file = "/var/log/tw.log";
	st->backend = "inotify";
	st->watched_dirs = 3;
	st->queued = 7;
	st->in_flight = 1;
	st->workers = 4;
	st->workers_busy = 1;
	st->workers_idle = 3;
	st->worker_restarts = 2;
	st->done = 2;
	st->failed = 1;
	st->skipped = 5;
	st->bytes_out = 3 * 1024 * 1024;
	st->done_last_min = 120;
	st->recent = &f->recent;
}

static int
fake_reprocess(void *ud, const char *path, char *msg, size_t msglen)
{
	struct fake *f = ud;

	if (strstr(path, "missing")) {
		snprintf(msg, msglen, "no such file in INPUT_DIR");
		return -ENOENT;
	}
	if (f->npaths < 8)
		snprintf(f->paths[f->npaths++], sizeof(f->paths[0]), "%s",
		    path);
	return 0;
}

static int
fake_retry(void *ud, size_t *count, char *msg, size_t msglen)
{
	(void)ud;
	(void)msg;
	(void)msglen;
	*count = 3;
	return 0;
}

static const struct control_hooks fake_hooks = {
	fake_status, fake_reprocess, fake_retry
};

/* A server on path with the fake hooks; timeout_ms 0: the default. */
static int
start_at(struct control_server **sp, const char *path, int timeout_ms,
    char *err, size_t errlen)
{
	struct control_opts o = { path, timeout_ms };

	return control_start(sp, &loop, &o, &fake_hooks, &fake, err, errlen);
}

static void
count_done(void *ud)
{
	(*(int *)ud)++;
}

static int
server_setup(void **state)
{
	char err[256];

	(void)state;
	memset(&fake, 0, sizeof(fake));
	control_recent_add(&fake.recent, wall_ms() - 5000, "old.jpg", "first");
	control_recent_add(&fake.recent, wall_ms(), "trip/bad \"one\".jpg",
	    "not a supported image");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tw-ctl-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(sockpath, sizeof(sockpath), "%s/run/thumbwatch.sock", tmpdir);
	if (uv_loop_init(&loop) != 0)
		return -1;
	if (start_at(&srv, sockpath, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "control_start: %s\n", err);
		return -1;
	}
	return 0;
}

static int
server_teardown(void **state)
{
	char cmd[128];

	(void)state;
	control_stop(srv, NULL, NULL);
	srv = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);	/* runs the close callbacks */
	if (uv_loop_close(&loop) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs fn(arg) in a thread while this thread serves the loop. */
struct job {
	void (*fn)(void *);
	void *arg;
	uv_async_t async;
};

static void *
job_main(void *p)
{
	struct job *j = p;

	j->fn(j->arg);
	uv_async_send(&j->async);
	return NULL;
}

static void
job_done(uv_async_t *a)
{
	uv_stop(a->loop);
}

static void
with_loop(void (*fn)(void *), void *arg)
{
	struct job j = { fn, arg, { 0 } };
	pthread_t t;

	assert_int_equal(uv_async_init(&loop, &j.async, job_done), 0);
	assert_int_equal(pthread_create(&t, NULL, job_main, &j), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(pthread_join(t, NULL), 0);
	uv_close((uv_handle_t *)&j.async, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
}

static int
dial(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sockpath, strlen(sockpath));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF (or 5 s); returns the bytes read. */
static size_t
read_all(int fd, char *buf, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && poll(&p, 1, 5000) == 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

struct raw {
	const char *data;
	size_t len;
	char resp[8192];
	bool eof_first;		/* shut the write side instead of '\n' */
};

static void
raw_exchange(void *p)
{
	struct raw *r = p;
	size_t off = 0;
	ssize_t n;
	int fd = dial();

	r->resp[0] = '\0';
	if (fd < 0)
		return;
	while (off < r->len) {
		n = send(fd, r->data + off, r->len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* the server gave up reading: fine */
		off += (size_t)n;
	}
	if (r->eof_first)
		shutdown(fd, SHUT_WR);
	read_all(fd, r->resp, sizeof(r->resp));
	close(fd);
}

struct cli {
	const char *request;
	bool json;
	int rc;
	char *out;
	size_t outlen;
};

static void
cli_run(void *p)
{
	struct cli *c = p;
	FILE *fp = open_memstream(&c->out, &c->outlen);

	c->rc = control_client(sockpath, c->request, fp, c->json);
	fclose(fp);
}

static void
test_server_perms(void **state)
{
	char dir[PATH_MAX];
	struct stat sb;

	(void)state;
	assert_int_equal(lstat(sockpath, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
}

static void
test_status_text(void **state)
{
	struct cli c = { "status", false, -1, NULL, 0 };

	(void)state;
	with_loop(cli_run, &c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(fake.status_calls, 1);
	assert_non_null(strstr(c.out, "thumbwatch 9.9.9, pid 4242: running "
	    "for 1h 02m 0"));
	assert_non_null(strstr(c.out, "/srv/in (3 folders watched, inotify)"));
	assert_non_null(strstr(c.out, "7 waiting, 1 in work"));
	assert_non_null(strstr(c.out, "4: 1 busy, 3 idle, 2 restarted"));
	assert_non_null(strstr(c.out, "2 done, 1 failed, 5 skipped"));
	assert_non_null(strstr(c.out, "3.0 MiB written"));
	assert_non_null(strstr(c.out, "120 done (2.0/s)"));
	assert_non_null(strstr(c.out, "trip/bad \"one\".jpg: not a supported "
	    "image"));
	/* Newest first. */
	assert_true(strstr(c.out, "bad \"one\"") < strstr(c.out, "old.jpg"));
	free(c.out);
}

static void
test_status_json(void **state)
{
	struct cli c = { "status\n", true, -1, NULL, 0 };
	char *text, *error;
	bool ok;

	(void)state;
	with_loop(cli_run, &c);
	assert_int_equal(c.rc, 0);
	/* One line. */
	assert_ptr_equal(strchr(c.out, '\n'), c.out + c.outlen - 1);
	assert_int_equal(control_parse_response(c.out, c.outlen, &ok, &text,
	    &error), 0);
	assert_true(ok);
	assert_non_null(strstr(text, "2 done"));
	free(text);
	assert_non_null(strstr(c.out, "\"command\":\"status\""));
	assert_non_null(strstr(c.out, "\"pid\":4242"));
	assert_non_null(strstr(c.out, "\"state\":\"running\""));
	assert_non_null(strstr(c.out, "\"done\":2,\"failed\":1,\"skipped\":5"));
	assert_non_null(strstr(c.out, "\"workers\":4,\"workers_busy\":1,"
	    "\"workers_idle\":3,\"worker_restarts\":2"));
	assert_non_null(strstr(c.out, "\"last_minute\":{\"done\":120,"
	    "\"failed\":0,\"per_s\":2.00}"));
	assert_non_null(strstr(c.out, "\"recent_failures\":[{\"ts\":\""));
	assert_non_null(strstr(c.out, "\"file\":\"trip/bad \\\"one\\\".jpg\""));
	assert_non_null(strstr(c.out, "\"uptime_s\":3723"));
	free(c.out);
}

static void
test_garbage_rejected(void **state)
{
	struct raw r = { "hello world\n", 12, "", false };
	struct raw b = { "\x01\x02\xff\n", 4, "", false };
	struct raw e = { "nonsense", 8, "", true };

	(void)state;
	with_loop(raw_exchange, &r);
	assert_non_null(strstr(r.resp, "\"ok\":false"));
	assert_non_null(strstr(r.resp, "unknown request 'hello'"));
	assert_ptr_equal(strchr(r.resp, '\n'), r.resp + strlen(r.resp) - 1);
	with_loop(raw_exchange, &b);
	assert_non_null(strstr(b.resp, "\"ok\":false"));
	assert_non_null(strstr(b.resp, "control character"));
	/* No newline, write side closed: the line is what was sent. */
	with_loop(raw_exchange, &e);
	assert_non_null(strstr(e.resp, "unknown request 'nonsense'"));
	assert_int_equal(fake.status_calls, 0);
}

static void
test_oversize_rejected(void **state)
{
	size_t n = CONTROL_LINE_MAX + 5000;
	char *big = malloc(n);
	struct raw r;

	(void)state;
	assert_non_null(big);
	memcpy(big, "reprocess ", 10);
	memset(big + 10, 'a', n - 10);
	r.data = big;
	r.len = n;
	r.eof_first = false;
	with_loop(raw_exchange, &r);
	assert_non_null(strstr(r.resp, "\"ok\":false"));
	assert_non_null(strstr(r.resp, "longer than 65536 bytes"));
	assert_int_equal(fake.npaths, 0);
	free(big);

	/* Exactly CONTROL_LINE_MAX bytes plus '\n' is still a request. */
	big = malloc(CONTROL_LINE_MAX + 1);
	assert_non_null(big);
	memcpy(big, "reprocess ", 10);
	memset(big + 10, 'b', CONTROL_LINE_MAX - 10);
	big[CONTROL_LINE_MAX] = '\n';
	r.data = big;
	r.len = CONTROL_LINE_MAX + 1;
	with_loop(raw_exchange, &r);
	assert_non_null(strstr(r.resp, "\"ok\":true"));
	assert_int_equal(fake.npaths, 1);
	free(big);
}

struct slow {
	int rc_fast;
	double fast_s;
	char resp_slow[8192];
	char resp_idle[8192];
};

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
slow_clients(void *p)
{
	struct slow *s = p;
	FILE *fp;
	char *out = NULL;
	size_t outlen = 0;
	double t0;
	int a;

	/* A: half a request, then nothing. */
	a = dial();
	assert_true(a >= 0);
	assert_int_equal(send(a, "sta", 3, MSG_NOSIGNAL), 3);
	/* B is served meanwhile, at once. */
	fp = open_memstream(&out, &outlen);
	t0 = mono_s();
	s->rc_fast = control_client(sockpath, "status", fp, true);
	s->fast_s = mono_s() - t0;
	fclose(fp);
	free(out);
	/* A finishes its line: the split request still works. */
	usleep(100 * 1000);
	assert_int_equal(send(a, "tus\n", 4, MSG_NOSIGNAL), 4);
	read_all(a, s->resp_slow, sizeof(s->resp_slow));
	close(a);
}

static void
test_slow_client_does_not_block(void **state)
{
	struct slow s;

	(void)state;
	memset(&s, 0, sizeof(s));
	with_loop(slow_clients, &s);
	assert_int_equal(s.rc_fast, 0);
	assert_true(s.fast_s < 2.0);
	assert_non_null(strstr(s.resp_slow, "\"ok\":true"));
	assert_non_null(strstr(s.resp_slow, "\"command\":\"status\""));
	assert_int_equal(fake.status_calls, 2);
}

static void
idle_client(void *p)
{
	struct slow *s = p;
	int a = dial();

	assert_true(a >= 0);
	assert_int_equal(send(a, "status", 6, MSG_NOSIGNAL), 6);
	read_all(a, s->resp_idle, sizeof(s->resp_idle));
	close(a);
}

static void
test_deadline(void **state)
{
	struct slow s;
	char err[256];

	(void)state;
	memset(&s, 0, sizeof(s));
	/* The fixture's server again, with a short deadline. */
	control_stop(srv, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(start_at(&srv, sockpath, 200, err, sizeof(err)), 0);
	with_loop(idle_client, &s);
	assert_non_null(strstr(s.resp_idle, "\"ok\":false"));
	assert_non_null(strstr(s.resp_idle, "no complete request line within "
	    "200 ms"));
	assert_int_equal(fake.status_calls, 0);
	assert_int_equal(control_clients(srv), 0);
}

static void
test_reprocess(void **state)
{
	char *const args[] = { "/srv/in/a b.jpg", "trip/missing.jpg",
	    "c.png" };
	struct cli c = { NULL, false, -1, NULL, 0 };
	struct cli j = { NULL, true, -1, NULL, 0 };
	char *line;

	(void)state;
	assert_int_equal(control_format_request("reprocess", args, 3, false,
	    &line), 0);
	c.request = line;
	with_loop(cli_run, &c);
	/* Not everything could be queued: status 1. */
	assert_int_equal(c.rc, 1);
	assert_int_equal(fake.npaths, 2);
	assert_string_equal(fake.paths[0], "/srv/in/a b.jpg");
	assert_string_equal(fake.paths[1], "c.png");
	assert_non_null(strstr(c.out, "/srv/in/a b.jpg: queued\n"));
	assert_non_null(strstr(c.out, "trip/missing.jpg: no such file in "
	    "INPUT_DIR\n"));
	assert_non_null(strstr(c.out, "1 of 3 not queued"));
	free(c.out);

	j.request = line;
	with_loop(cli_run, &j);
	assert_int_equal(j.rc, 1);
	assert_non_null(strstr(j.out, "{\"ok\":false,\"command\":"
	    "\"reprocess\",\"queued\":2,\"errors\":1,"));
	assert_non_null(strstr(j.out, "{\"path\":\"trip/missing.jpg\","
	    "\"ok\":false,\"message\":\"no such file in INPUT_DIR\"}"));
	free(j.out);
	free(line);
}

static void
test_retry_failed(void **state)
{
	struct cli c = { "retry-failed", false, -1, NULL, 0 };

	(void)state;
	with_loop(cli_run, &c);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, "3 failed files queued again\n");
	free(c.out);
}

/* The daemon gone: a clear message and EX_UNAVAILABLE. */
static void
test_no_daemon(void **state)
{
	char path[PATH_MAX], stale[PATH_MAX];
	struct sockaddr_un sa;
	FILE *fp = fopen("/dev/null", "w");
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/none/thumbwatch.sock", tmpdir);
	assert_int_equal(control_client(path, "status", fp, false), 69);
	/* A socket file nobody listens on (a daemon killed with -9). */
	snprintf(stale, sizeof(stale), "%s/stale.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, stale, strlen(stale));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(control_client(stale, "status", fp, false), 69);
	fclose(fp);
}

static void
test_stale_and_live_sockets(void **state)
{
	struct control_server *s2 = NULL;
	char path[PATH_MAX], err[512];
	struct sockaddr_un sa;
	int fd;

	(void)state;
	/* Live: the fixture's server owns sockpath. */
	assert_int_equal(start_at(&s2, sockpath, 0, err, sizeof(err)),
	    -EADDRINUSE);
	assert_null(s2);
	assert_non_null(strstr(err, sockpath));
	assert_non_null(strstr(err, "RUNTIME_DIR"));
	/* Stale: replaced. */
	snprintf(path, sizeof(path), "%s/stale2.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(start_at(&s2, path, 0, err, sizeof(err)), 0);
	control_stop(s2, NULL, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(access(path, F_OK), -1);	/* unlinked */
	/* Not a socket: left alone. */
	snprintf(path, sizeof(path), "%s/file.sock", tmpdir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	assert_int_equal(start_at(&s2, path, 0, err, sizeof(err)), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	/* Too long for sun_path. */
	{
		char longp[200];
		memset(longp, 'x', sizeof(longp) - 1);
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		assert_int_equal(start_at(&s2, longp, 0, err, sizeof(err)),
		    -ENAMETOOLONG);
		assert_non_null(strstr(err, "RUNTIME_DIR"));
	}
}

#define NMANY 24

static void *
cli_thread(void *p)
{
	cli_run(p);
	return NULL;
}

static void
many_clients(void *p)
{
	struct cli *c = p;
	pthread_t t[NMANY];
	int i;

	for (i = 0; i < NMANY; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cli_thread, &c[i]),
		    0);
	for (i = 0; i < NMANY; i++)
		pthread_join(t[i], NULL);
}

static void
test_many_clients(void **state)
{
	struct cli c[NMANY];
	int i;

	(void)state;
	for (i = 0; i < NMANY; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].request = "status";
		c[i].json = true;
		c[i].rc = -1;
	}
	with_loop(many_clients, c);
	for (i = 0; i < NMANY; i++) {
		assert_int_equal(c[i].rc, 0);
		assert_non_null(strstr(c[i].out, "\"pid\":4242"));
		free(c[i].out);
	}
	assert_int_equal(fake.status_calls, NMANY);
}

/* Stopping with a client mid-request: it sees the connection close,
 * everything is freed (LeakSanitizer checks), and done runs once, after
 * the last handle closed. */
static void
test_stop_with_client(void **state)
{
	char buf[256];
	int fd, done = 0;

	(void)state;
	fd = dial();
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "sta", 3, MSG_NOSIGNAL), 3);
	uv_run(&loop, UV_RUN_NOWAIT);	/* accept */
	uv_run(&loop, UV_RUN_NOWAIT);	/* read */
	assert_int_equal(control_clients(srv), 1);
	control_stop(srv, count_done, &done);
	control_stop(srv, count_done, &done);	/* a second call: no-op */
	assert_int_equal(done, 0);
	srv = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(done, 1);
	control_stop(NULL, count_done, &done);
	assert_int_equal(done, 1);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
	close(fd);
	assert_int_equal(access(sockpath, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define S(t) cmocka_unit_test_setup_teardown(t, server_setup, server_teardown)
		S(test_server_perms),
		S(test_status_text),
		S(test_status_json),
		S(test_garbage_rejected),
		S(test_oversize_rejected),
		S(test_slow_client_does_not_block),
		S(test_deadline),
		S(test_reprocess),
		S(test_retry_failed),
		S(test_no_daemon),
		S(test_stale_and_live_sockets),
		S(test_many_clients),
		S(test_stop_with_client),
#undef S
	};

	/* A hung test must not hang the suite. */
	alarm(120);
	/* As in the daemon: a client that closes first must not kill the
	 * writer (test_garbage_rejected races the server's close). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
