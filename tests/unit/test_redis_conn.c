/*
 * Unit tests of src/queue/redis_conn.c against a real redis-server that each
 * test starts on a free port of its own (and kills, even when it fails),
 * in a real libuv loop run by this thread under a deadline, so a bug can
 * fail a test but not hang it.  Without /usr/bin/redis-server the tests
 * that need one are skipped.
 *
 * Checked: round trips of binary values (argv and format forms) and
 * refused commands; backoff while the server is down, then coming up by
 * itself; a server killed with a command pending; a command deadline
 * breaking and remaking the connection; the connect deadline against a
 * listener that never answers; AUTH right, wrong and missing, and a retry
 * that succeeds once the server is fixed; SELECT, and a bad DB; closing
 * from inside callbacks and in every phase; commands while not up.
 * Throughout: no callback runs inside a redis_conn_* call, none after a
 * close, each reply callback exactly once; the ASan build checks leaks.
 */
#include "unit.h"
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "redis_conn.h"

#define REDIS_SERVER	"/usr/bin/redis-server"
#define MAX_CONNS	12
#define MAX_REPLIES	16
#define MAX_DOWNS	64

struct tconn {
	struct redis_conn *c;
	int ups, downs, closed;
	bool up, closing;
	bool close_on_up;	/* close from inside state_cb(true) */
	bool no_closed_cb;	/* closed with closed_cb NULL */
	char why[512];		/* the last state reason */
	char first_down[512];
	uint64_t down_ms[MAX_DOWNS];
};

struct reply {
	int calls;
	bool null;
	bool err_is_str;	/* err == r->str for error replies */
	int type;
	long long integer;
	char str[256];
	size_t len;
	char err[512];
	uint64_t at_ms;
	struct tconn *close;	/* closed from inside this callback */
};

/* Everything a callback may write lives here, not on a test's stack: a
 * failed assertion leaves the test early and teardown still closes. */
static struct {
	uv_loop_t loop;
	uv_timer_t wake;
	pid_t server;
	int port;
	int listen_fd;
	struct tconn conns[MAX_CONNS];
	int nconns;
	struct reply replies[MAX_REPLIES];
	int nreplies;
	bool in_call;		/* inside a redis_conn_* call */
	int reentrant;		/* callbacks run inside one */
	int after_close;	/* state callbacks after a close */
} F;

static void
call_begin(void)
{
	F.in_call = true;
}

static int
call_end(int rc)
{
	F.in_call = false;
	return rc;
}

/* Wraps a redis_conn_* call: any callback meanwhile is counted. */
#define CALL(expr) (call_begin(), call_end(expr))

/* ---- the loop ---------------------------------------------------------- */

/* Runs the loop until cond holds or ms pass. */
#define RUN_UNTIL(cond, ms) LOOP_RUN_UNTIL(&F.loop, &F.wake, cond, ms)

static void
run_for(uint64_t ms)
{
	RUN_UNTIL(false, ms);
}

/* ---- the server -------------------------------------------------------- */

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Any answer to PING (+PONG, or -NOAUTH) means it serves. */
static bool
server_answers(int port)
{
	struct timeval tv = { 0, 300 * 1000 };
	struct sockaddr_in sa;
	char buf[64];
	ssize_t n = -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, "PING\r\n", 6) == 6)
		n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 && (buf[0] == '+' || buf[0] == '-');
}

static void
need_server(void)
{
	if (access(REDIS_SERVER, X_OK) != 0) {
		print_message("no %s: skipped\n", REDIS_SERVER);
		skip();
	}
}

/* Starts redis-server on F.port (extra: one more option and its value,
 * or NULLs) and waits until it answers. */
static void
server_start(const char *opt, const char *val)
{
	char port[16];
	uint64_t end;
	pid_t pid;
	int fd;

	snprintf(port, sizeof(port), "%d", F.port);
	if ((pid = fork()) == 0) {
		/* Dies with the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(REDIS_SERVER, "redis-server", "--port", port, "--bind",
		    "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--daemonize", "no", "--dir", "/tmp", opt, val,
		    (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	F.server = pid;
	for (end = now_ms() + 5000; now_ms() < end; usleep(10 * 1000)) {
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			F.server = 0;
			fail_msg("redis-server exited at start");
		}
		if (server_answers(F.port))
			return;
	}
	fail_msg("redis-server does not answer on port %d", F.port);
}

static void
server_kill(void)
{
	if (F.server > 0) {
		kill(F.server, SIGKILL);
		waitpid(F.server, NULL, 0);
	}
	F.server = 0;
}

/* ---- connections and replies ------------------------------------------- */

static void
on_closed(void *ud)
{
	struct tconn *t = ud;

	if (F.in_call)
		F.reentrant++;
	t->closed++;
}

static void
tconn_close(struct tconn *t)
{
	t->closing = true;
	CALL((redis_conn_close(t->c, on_closed, t), 0));
}

static void
on_state(void *ud, bool up, const char *why)
{
	struct tconn *t = ud;

	if (F.in_call)
		F.reentrant++;
	if (t->closing)
		F.after_close++;
	t->up = up;
	snprintf(t->why, sizeof(t->why), "%s", why ? why : "(null)");
	if (up) {
		t->ups++;
	} else {
		if (t->downs == 0)
			snprintf(t->first_down, sizeof(t->first_down), "%s",
			    t->why);
		if (t->downs < MAX_DOWNS)
			t->down_ms[t->downs] = now_ms();
		t->downs++;
	}
	if (up && t->close_on_up) {
		t->closing = true;
		redis_conn_close(t->c, on_closed, t);
	}
}

static struct redis_conn_opts
opts(int port)
{
	struct redis_conn_opts o;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.connect_timeout_ms = 1000;
	o.backoff_min_ms = 50;
	o.backoff_max_ms = 200;
	return o;
}

static struct tconn *
tconn_new(const struct redis_conn_opts *o)
{
	struct tconn *t;

	assert_true(F.nconns < MAX_CONNS);
	t = &F.conns[F.nconns++];
	assert_int_equal(CALL(redis_conn_new(&F.loop, o, on_state, t,
	    &t->c)), 0);
	assert_non_null(t->c);
	return t;
}

static struct tconn *
tconn_up(const struct redis_conn_opts *o)
{
	struct tconn *t = tconn_new(o);

	RUN_UNTIL(t->up, 3000);
	assert_true(t->up);
	return t;
}

static void
on_reply(void *ud, redisReply *r, const char *err)
{
	struct reply *p = ud;

	if (F.in_call)
		F.reentrant++;
	p->calls++;
	p->at_ms = now_ms();
	p->null = r == NULL;
	snprintf(p->err, sizeof(p->err), "%s", err ? err : "");
	if (r) {
		p->type = r->type;
		p->integer = r->integer;
		p->err_is_str = err != NULL && err == r->str;
		p->len = r->len;
		if (r->str)
			memcpy(p->str, r->str, r->len < sizeof(p->str) ?
			    r->len : sizeof(p->str) - 1);
	}
	if (p->close) {
		p->close->closing = true;
		redis_conn_close(p->close->c, on_closed, p->close);
	}
}

static struct reply *
reply_new(void)
{
	assert_true(F.nreplies < MAX_REPLIES);
	return &F.replies[F.nreplies++];
}

/* Sends fmt's command on t, waits for its reply, checks it came once. */
#define ROUNDTRIP(t, r, ...) do {					\
	(r) = reply_new();						\
	assert_int_equal(CALL(redis_conn_commandf((t)->c, 0, on_reply,	\
	    (r), __VA_ARGS__)), 0);					\
	assert_int_equal((r)->calls, 0);				\
	RUN_UNTIL((r)->calls > 0, 2000);				\
	assert_int_equal((r)->calls, 1);				\
} while (0)

static void
check_clean(void)
{
	assert_int_equal(F.reentrant, 0);
	assert_int_equal(F.after_close, 0);
}

/* ---- fixture ----------------------------------------------------------- */

static int
setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.listen_fd = -1;
	if (uv_loop_init(&F.loop) != 0 ||
	    uv_timer_init(&F.loop, &F.wake) != 0)
		return -1;
	if ((F.port = free_port()) < 0)
		return -1;
	return 0;
}

/* Every connection the test made has run its closed callback (or was
 * closed without one). */
static bool
all_closed(void)
{
	int i;

	for (i = 0; i < F.nconns; i++)
		if (F.conns[i].c && F.conns[i].closed == 0 &&
		    !F.conns[i].no_closed_cb)
			return false;
	return true;
}

static int
teardown(void **state)
{
	int i, rc = 0;

	(void)state;
	for (i = 0; i < F.nconns; i++)
		if (F.conns[i].c && !F.conns[i].closing)
			tconn_close(&F.conns[i]);
	RUN_UNTIL(all_closed(), 3000);
	if (!all_closed()) {
		fprintf(stderr, "teardown: a closed callback never ran\n");
		rc = -1;
	}
	/* Whatever is left on the loop must end by itself: a handle or a
	 * request the module forgot would hang here (alarm() ends it). */
	uv_close((uv_handle_t *)&F.wake, NULL);
	uv_run(&F.loop, UV_RUN_DEFAULT);
	server_kill();
	if (F.listen_fd >= 0)
		close(F.listen_fd);
	if (uv_loop_close(&F.loop) != 0) {
		fprintf(stderr, "teardown: handles left on the loop\n");
		rc = -1;
	}
	if (F.reentrant || F.after_close) {
		fprintf(stderr, "teardown: %d callbacks inside a call, %d "
		    "state callbacks after a close\n", F.reentrant,
		    F.after_close);
		rc = -1;
	}
	return rc;
}

/* ---- tests ------------------------------------------------------------- */

/* 1. Up, then binary-safe round trips in both forms, error replies, and
 * the commands this module refuses. */
static void
test_roundtrip(void **state)
{
	static const char val[] = "a\0b\0\xff\r\nz";	/* 9 bytes */
	const char *set[] = { "SET", "tw:bin", val };
	const size_t setlen[] = { 3, 6, sizeof(val) - 1 };
	const char *get[] = { "GET", "tw:bin" };
	const char *mon[] = { "monitor" };
	struct redis_conn_opts o;
	struct reply *r1, *r2, *r;
	struct tconn *t;
	char what[64];

	(void)state;
	need_server();
	server_start(NULL, NULL);
	o = opts(F.port);
	t = tconn_new(&o);
	/* Not even the first attempt runs inside redis_conn_new. */
	assert_int_equal(t->ups + t->downs, 0);
	assert_false(redis_conn_up(t->c));
	RUN_UNTIL(t->up, 3000);
	assert_true(t->up);
	assert_true(redis_conn_up(t->c));
	snprintf(what, sizeof(what), "connected to 127.0.0.1:%d, db 0",
	    F.port);
	assert_string_equal(t->why, what);

	r1 = reply_new();
	r2 = reply_new();
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r1, 3,
	    set, setlen)), 0);
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r2, 2,
	    get, NULL)), 0);
	assert_int_equal(r1->calls + r2->calls, 0);
	assert_int_equal(redis_conn_pending(t->c), 2);
	RUN_UNTIL(r2->calls > 0, 2000);
	assert_int_equal(r1->calls, 1);
	assert_int_equal(r1->type, REDIS_REPLY_STATUS);
	assert_string_equal(r1->str, "OK");
	assert_string_equal(r1->err, "");
	assert_int_equal(r2->calls, 1);
	assert_int_equal(r2->type, REDIS_REPLY_STRING);
	assert_int_equal(r2->len, sizeof(val) - 1);
	assert_memory_equal(r2->str, val, sizeof(val) - 1);
	assert_int_equal(redis_conn_pending(t->c), 0);

	/* The format form: %b is binary too. */
	ROUNDTRIP(t, r, "SET %s %b", "tw:f", val, sizeof(val) - 1);
	assert_string_equal(r->str, "OK");
	ROUNDTRIP(t, r, "GET %s", "tw:f");
	assert_int_equal(r->len, sizeof(val) - 1);
	assert_memory_equal(r->str, val, sizeof(val) - 1);
	ROUNDTRIP(t, r, "INCR %s", "tw:n");
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 1);
	ROUNDTRIP(t, r, "GET %s", "tw:missing");
	assert_int_equal(r->type, REDIS_REPLY_NIL);
	/* An error reply: r is passed, err is its text. */
	ROUNDTRIP(t, r, "NOSUCHCOMMAND x");
	assert_false(r->null);
	assert_int_equal(r->type, REDIS_REPLY_ERROR);
	assert_true(r->err_is_str);
	assert_non_null(strstr(r->err, "unknown command"));

	/* Refused at once, callback never called. */
	r = reply_new();
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r,
	    "SUBSCRIBE %s", "ch")), -ENOTSUP);
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r, 1,
	    mon, NULL)), -ENOTSUP);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r,
	    "hello 3")), -ENOTSUP);
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r, 0,
	    mon, NULL)), -EINVAL);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r,
	    "")), -EINVAL);
	run_for(50);
	assert_int_equal(r->calls, 0);
	assert_int_equal(redis_conn_pending(t->c), 0);

	tconn_close(t);
	RUN_UNTIL(t->closed > 0, 2000);
	assert_int_equal(t->closed, 1);
	assert_int_equal(t->ups, 1);
	assert_int_equal(t->downs, 0);
	check_clean();
}

/* 2. Server down at start: attempts spaced by the backoff (50, 100, 200,
 * 200... ms), each reported; then the server starts and the connection
 * comes up by itself. */
static void
test_backoff_then_up(void **state)
{
	struct redis_conn_opts o;
	struct reply *r;
	struct tconn *t;
	char port[32];
	uint64_t gap;
	int i;

	(void)state;
	need_server();
	o = opts(F.port);
	t = tconn_new(&o);
	run_for(1000);
	print_message("%d attempts in 1 s\n", t->downs);
	assert_in_range(t->downs, 3, 12);
	assert_int_equal(t->ups, 0);
	assert_non_null(strstr(t->first_down, "connection refused"));
	snprintf(port, sizeof(port), "(127.0.0.1:%d)", F.port);
	assert_non_null(strstr(t->first_down, port));
	for (i = 1; i < t->downs && i < MAX_DOWNS; i++) {
		gap = t->down_ms[i] - t->down_ms[i - 1];
		assert_true(gap >= 45);
		if (i >= 3)
			assert_true(gap >= 180);	/* at the maximum */
	}
	/* 8. Not up: refused, and the callback never runs. */
	r = reply_new();
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r,
	    "PING")), -ENOTCONN);

	server_start(NULL, NULL);
	RUN_UNTIL(t->up, 3000);
	assert_true(t->up);
	assert_int_equal(t->ups, 1);
	ROUNDTRIP(t, r, "SET %s %s", "tw:k", "v");
	ROUNDTRIP(t, r, "GET %s", "tw:k");
	assert_string_equal(r->str, "v");
	assert_int_equal(F.replies[0].calls, 0);

	/* Up reset the backoff: after a loss the first retry comes after
	 * 50 ms again, not 200. */
	i = t->downs;
	server_kill();
	RUN_UNTIL(t->downs >= i + 2, 2000);
	assert_true(t->downs >= i + 2);
	gap = t->down_ms[i + 1] - t->down_ms[i];
	assert_in_range(gap, 45, 150);
	check_clean();
}

/* 3. The server killed with a blocking command pending: the command
 * fails once, the state goes down once, and the connection comes back
 * with the server. */
static void
test_server_killed(void **state)
{
	struct redis_conn_opts o;
	struct reply *r, *p;
	struct tconn *t;

	(void)state;
	need_server();
	server_start(NULL, NULL);
	o = opts(F.port);
	o.backoff_min_ms = o.backoff_max_ms = 300;
	t = tconn_up(&o);
	r = reply_new();
	assert_int_equal(CALL(redis_conn_commandf(t->c, 10000, on_reply, r,
	    "BLPOP %s %d", "tw:empty", 5)), 0);
	run_for(100);
	assert_int_equal(r->calls, 0);
	assert_int_equal(redis_conn_pending(t->c), 1);

	server_kill();
	RUN_UNTIL(r->calls > 0, 2000);
	assert_int_equal(r->calls, 1);
	assert_true(r->null);
	assert_non_null(strstr(r->err, "connection lost"));
	assert_int_equal(redis_conn_pending(t->c), 0);
	run_for(50);			/* less than the backoff */
	assert_int_equal(t->downs, 1);
	assert_false(t->up);
	assert_false(redis_conn_up(t->c));
	assert_non_null(strstr(t->first_down, "connection lost"));

	server_start(NULL, NULL);
	RUN_UNTIL(t->up, 3000);
	assert_int_equal(t->ups, 2);
	ROUNDTRIP(t, p, "PING");
	assert_string_equal(p->str, "PONG");
	assert_int_equal(r->calls, 1);
	check_clean();
}

/* 4. A command that overruns its deadline (BLPOP blocking 2 s against the
 * default 300 ms): it fails "timed out" on time, the one queued behind it
 * "connection lost", the state goes down once, and it reconnects. */
static void
test_command_timeout(void **state)
{
	struct redis_conn_opts o;
	struct reply *r1, *r2, *p;
	struct tconn *t;
	uint64_t t0, took;

	(void)state;
	need_server();
	server_start(NULL, NULL);
	o = opts(F.port);
	o.command_timeout_ms = 300;
	t = tconn_up(&o);
	r1 = reply_new();
	r2 = reply_new();
	t0 = now_ms();
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r1,
	    "BLPOP %s %d", "tw:none", 2)), 0);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 10000, on_reply, r2,
	    "PING")), 0);
	RUN_UNTIL(r1->calls > 0 && r2->calls > 0, 3000);
	took = r1->at_ms - t0;
	print_message("timed out after %llu ms\n", (unsigned long long)took);
	assert_in_range(took, 280, 1000);
	assert_int_equal(r1->calls, 1);
	assert_true(r1->null);
	assert_string_equal(r1->err, "command timed out after 300 ms");
	assert_int_equal(r2->calls, 1);
	assert_true(r2->null);
	assert_non_null(strstr(r2->err, "connection lost"));
	assert_int_equal(t->downs, 1);
	assert_string_equal(t->first_down, "command timed out after 300 ms");
	RUN_UNTIL(t->ups == 2, 2000);
	assert_int_equal(t->ups, 2);
	ROUNDTRIP(t, p, "PING");
	assert_string_equal(p->str, "PONG");
	check_clean();
}

/* 4b. A listener that accepts (the kernel does) but never answers: each
 * attempt ends at the connect deadline. */
static void
test_connect_timeout(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct redis_conn_opts o;
	struct tconn *t;
	uint64_t t0, took;

	(void)state;
	F.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(F.listen_fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(F.listen_fd, (struct sockaddr *)&sa,
	    sizeof(sa)), 0);
	assert_int_equal(listen(F.listen_fd, 8), 0);
	assert_int_equal(getsockname(F.listen_fd, (struct sockaddr *)&sa,
	    &len), 0);
	o = opts(ntohs(sa.sin_port));
	o.connect_timeout_ms = 200;
	o.backoff_min_ms = o.backoff_max_ms = 100;
	t0 = now_ms();
	t = tconn_new(&o);
	RUN_UNTIL(t->downs > 0, 2000);
	took = now_ms() - t0;
	assert_in_range(took, 180, 1000);
	assert_non_null(strstr(t->first_down, "connect timed out after 200 "
	    "ms (127.0.0.1:"));
	run_for(650);		/* two more cycles of 100 + 200 ms */
	assert_in_range(t->downs, 2, 4);
	assert_int_equal(t->ups, 0);
	check_clean();
}

/* 5. requirepass: the right password, a wrong one (reported with the
 * server's words, commands refused, retried), none; and the wrong one
 * gets in once the server is changed to accept it. */
static void
test_password(void **state)
{
	struct redis_conn_opts o;
	struct tconn *good, *bad, *none;
	struct reply *r, *p;

	(void)state;
	need_server();
	server_start("--requirepass", "secret");
	o = opts(F.port);
	o.password = "secret";
	good = tconn_new(&o);
	o.password = "wrong";
	o.backoff_min_ms = o.backoff_max_ms = 100;
	bad = tconn_new(&o);
	o.password = NULL;
	none = tconn_new(&o);
	RUN_UNTIL(good->up && bad->downs > 0 && none->downs > 0, 3000);
	assert_true(good->up);
	assert_int_equal(bad->ups, 0);
	print_message("%s\n", bad->first_down);
	assert_non_null(strstr(bad->first_down, "AUTH failed: "));
	assert_true(strstr(bad->first_down, "WRONGPASS") != NULL ||
	    strstr(bad->first_down, "invalid") != NULL);
	assert_non_null(strstr(none->first_down, "NOAUTH"));
	r = reply_new();
	assert_int_equal(CALL(redis_conn_commandf(bad->c, 0, on_reply, r,
	    "PING")), -ENOTCONN);
	RUN_UNTIL(bad->downs >= 2, 1000);
	assert_true(bad->downs >= 2);		/* retried */
	assert_int_equal(r->calls, 0);

	ROUNDTRIP(good, p, "CONFIG SET requirepass %s", "wrong");
	assert_string_equal(p->str, "OK");
	RUN_UNTIL(bad->up, 2000);
	assert_true(bad->up);
	ROUNDTRIP(bad, p, "PING");
	assert_string_equal(p->str, "PONG");

	/* AUTH passes, SELECT fails: never up, not even in between. */
	o.password = "wrong";		/* the server's password now */
	o.db = 99;
	bad = tconn_new(&o);
	RUN_UNTIL(bad->downs > 0, 2000);
	assert_non_null(strstr(bad->first_down, "SELECT 99 failed: ERR DB "
	    "index is out of range"));
	assert_int_equal(bad->ups, 0);
	check_clean();
}

/* 6. db: a key set through a connection on db 3 is on db 3 only (db 0 is
 * read through "localhost", the name-lookup path); a DB out of range is
 * reported. */
static void
test_select_db(void **state)
{
	struct redis_conn_opts o;
	struct tconn *c3, *c0, *c3b, *bad;
	struct reply *r;

	(void)state;
	need_server();
	server_start(NULL, NULL);
	o = opts(F.port);
	o.db = 3;
	c3 = tconn_up(&o);
	assert_non_null(strstr(c3->why, ", db 3"));
	ROUNDTRIP(c3, r, "SET %s %s", "tw:db", "three");
	assert_string_equal(r->str, "OK");
	c3b = tconn_up(&o);
	o.db = 0;
	o.host = "localhost";
	c0 = tconn_up(&o);
	ROUNDTRIP(c0, r, "GET %s", "tw:db");
	assert_int_equal(r->type, REDIS_REPLY_NIL);
	ROUNDTRIP(c3b, r, "GET %s", "tw:db");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "three");

	o.host = "127.0.0.1";
	o.db = 99;
	bad = tconn_new(&o);
	RUN_UNTIL(bad->downs > 0, 2000);
	print_message("%s\n", bad->first_down);
	assert_non_null(strstr(bad->first_down, "SELECT 99 failed: "));
	assert_non_null(strstr(bad->first_down, "out of range"));
	assert_int_equal(bad->ups, 0);
	check_clean();
}

/* 7. Closing from inside a reply callback with commands pending, from
 * inside state_cb, and while connecting, resolving, backing off or
 * before the first attempt: each pending callback runs once with
 * "closed", closed_cb once, nothing after; LeakSanitizer checks memory. */
static void
test_close(void **state)
{
	struct redis_conn_opts o;
	struct reply *r1, *r2, *r3;
	struct tconn *t, *t2, *t3, *t4, *t5, *t6;

	(void)state;
	need_server();
	server_start(NULL, NULL);
	o = opts(F.port);
	t = tconn_up(&o);
	r1 = reply_new();
	r2 = reply_new();
	r3 = reply_new();
	r1->close = t;
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r1,
	    "PING")), 0);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 10000, on_reply, r2,
	    "BLPOP %s %d", "tw:none", 5)), 0);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r3,
	    "GET %s", "tw:x")), 0);
	RUN_UNTIL(t->closed > 0, 3000);
	assert_int_equal(t->closed, 1);
	assert_int_equal(r1->calls, 1);
	assert_string_equal(r1->str, "PONG");
	assert_int_equal(r2->calls, 1);
	assert_true(r2->null);
	assert_string_equal(r2->err, "closed");
	assert_int_equal(r3->calls, 1);
	assert_true(r3->null);
	assert_string_equal(r3->err, "closed");
	assert_int_equal(t->downs, 0);

	/* From the test's own code with a command pending: its callback
	 * runs later, from the loop, never inside redis_conn_close. */
	t = tconn_up(&o);
	r1 = reply_new();
	assert_int_equal(CALL(redis_conn_commandf(t->c, 10000, on_reply, r1,
	    "BLPOP %s %d", "tw:none", 5)), 0);
	run_for(20);
	tconn_close(t);
	assert_int_equal(r1->calls, 0);
	RUN_UNTIL(t->closed > 0, 3000);
	assert_int_equal(t->closed, 1);
	assert_int_equal(r1->calls, 1);
	assert_string_equal(r1->err, "closed");

	/* From inside state_cb(true) (the flag is set on the slot
	 * tconn_new hands out next, before its first callback). */
	t2 = &F.conns[F.nconns];
	t2->close_on_up = true;
	t2 = tconn_new(&o);
	RUN_UNTIL(t2->closed > 0, 3000);
	assert_int_equal(t2->closed, 1);
	assert_int_equal(t2->ups, 1);
	assert_int_equal(t2->downs, 0);

	/* Before the first attempt; while resolving; then with closed_cb
	 * NULL while connecting. */
	t3 = tconn_new(&o);
	tconn_close(t3);
	o.host = "localhost";
	t4 = tconn_new(&o);
	uv_run(&F.loop, UV_RUN_NOWAIT);		/* the lookup starts */
	tconn_close(t4);
	o.host = "127.0.0.1";
	t5 = tconn_new(&o);
	uv_run(&F.loop, UV_RUN_NOWAIT);		/* the connect starts */
	t5->closing = t5->no_closed_cb = true;
	CALL((redis_conn_close(t5->c, NULL, NULL), 0));
	/* From a callback failed by a lost connection: no state callback
	 * follows the close. */
	t = tconn_up(&o);
	r1 = reply_new();
	r1->close = t;
	assert_int_equal(CALL(redis_conn_commandf(t->c, 10000, on_reply, r1,
	    "BLPOP %s %d", "tw:none", 5)), 0);
	run_for(20);
	server_kill();
	RUN_UNTIL(t->closed > 0, 3000);
	assert_int_equal(t->closed, 1);
	assert_int_equal(r1->calls, 1);
	assert_non_null(strstr(r1->err, "connection lost"));
	assert_int_equal(t->downs, 0);

	/* While backing off after a refusal. */
	t6 = tconn_new(&o);
	RUN_UNTIL(t6->downs > 0, 2000);
	assert_int_equal(t6->downs, 1);
	tconn_close(t6);
	RUN_UNTIL(t3->closed && t4->closed && t6->closed, 2000);
	assert_int_equal(t3->closed + t4->closed + t6->closed, 3);
	assert_int_equal(t3->ups + t3->downs + t4->ups + t4->downs, 0);
	assert_int_equal(t6->downs, 1);
	check_clean();
}

/* 8. While not up (nothing listens): -ENOTCONN, callbacks never run; and
 * bad options. */
static void
test_not_up(void **state)
{
	const char *argv[] = { "PING" };
	struct redis_conn_opts o;
	struct redis_conn *c;
	struct reply *r;
	struct tconn *t;

	(void)state;
	o = opts(F.port);
	t = tconn_new(&o);
	r = reply_new();
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r, 1,
	    argv, NULL)), -ENOTCONN);
	assert_int_equal(CALL(redis_conn_commandf(t->c, 0, on_reply, r,
	    "PING")), -ENOTCONN);
	run_for(200);
	assert_true(t->downs > 0);
	assert_int_equal(CALL(redis_conn_command(t->c, 0, on_reply, r, 1,
	    argv, NULL)), -ENOTCONN);
	run_for(50);
	assert_int_equal(r->calls, 0);
	assert_int_equal(redis_conn_pending(t->c), 0);

	/* connect(2) fails at once here ("network is unreachable"): still
	 * reported from the loop, not inside redis_conn_new. */
	o.host = "255.255.255.255";
	t = tconn_new(&o);
	assert_int_equal(t->ups + t->downs, 0);
	RUN_UNTIL(t->downs > 0, 1000);
	assert_true(t->downs > 0);
	assert_non_null(strstr(t->first_down, "(255.255.255.255:"));

	o = opts(F.port);
	o.port = 0;
	assert_int_equal(redis_conn_new(&F.loop, &o, on_state, NULL, &c),
	    -EINVAL);
	assert_null(c);
	o = opts(F.port);
	o.host = NULL;
	assert_int_equal(redis_conn_new(&F.loop, &o, on_state, NULL, &c),
	    -EINVAL);
	o = opts(F.port);
	assert_int_equal(redis_conn_new(&F.loop, &o, NULL, NULL, &c),
	    -EINVAL);
	check_clean();
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_roundtrip),
		T(test_backoff_then_up),
		T(test_server_killed),
		T(test_command_timeout),
		T(test_connect_timeout),
		T(test_password),
		T(test_select_db),
		T(test_close),
		T(test_not_up),
	};
#undef T

	/* A hung test must not hang the suite; redis-server children die
	 * with us (PR_SET_PDEATHSIG). */
	alarm(60);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
