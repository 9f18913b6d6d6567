/*
 * redis_conn: hiredis 0.14's async API on our libuv loop, with deadlines
 * and reconnection (see redis_conn.h for the contract).
 *
 * Rules of hiredis 0.14 (async.c) this file is built around:
 *  - A context is freed by hiredis itself when it sees an error (connect
 *    failed, EOF, a read or write error) and by redisAsyncFree().  Either
 *    way it first calls every pending reply callback with a NULL reply,
 *    then ev.cleanup, then closes the socket.  ev.cleanup is therefore our
 *    one signal that a context is gone: it closes the poll handle (before
 *    hiredis closes the fd) and clears c->link.
 *  - redisAsyncFree() from inside a reply callback only marks the context;
 *    hiredis frees it once the callback returns.  The connect callback is
 *    not run as a callback in that sense (no REDIS_IN_CALLBACK), so freeing
 *    from there would be a use after free: we set no connect callback.
 *  - Reply callbacks run exactly once per queued command: with the reply,
 *    or with NULL while the context is freed.
 *
 * So that no user callback ever runs inside hiredis's teardown or inside a
 * redis_conn_* call, a NULL reply does nothing: the command stays on our
 * own list, and whoever drove hiredis (the poll or a timer callback) looks
 * afterwards whether the context went away (conn_settle) and then fails
 * the pending commands, reports the state and schedules the next attempt.
 * A close fails them from the last handle's close callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <hiredis/async.h>

#include "redis_conn.h"

/* TCP keepalive: a peer gone silent while we wait for nothing is noticed
 * in about half a minute instead of at the next command's deadline. */
#define KEEPALIVE_IDLE_S	15
#define KEEPALIVE_INTVL_S	5
#define KEEPALIVE_CNT		3

enum phase {
	PHASE_IDLE,		/* no attempt: waiting for the backoff, or closed */
	PHASE_RESOLVING,	/* uv_getaddrinfo in flight */
	PHASE_CONNECTING,	/* TCP connect, then AUTH / SELECT / PING */
	PHASE_UP
};

/* One accepted command, on c's list until it is answered. */
struct cmd {
	struct cmd *prev, *next;
	struct redis_conn *c;
	redis_reply_fn cb;
	void *ud;
	uint64_t timeout_ms;
	uint64_t deadline;	/* uv_now() scale */
	bool timed_out;
};

/* One hiredis context and the poll handle on its socket.  Freed by the
 * poll handle's close callback, which runs after hiredis let go of it. */
struct link {
	uv_poll_t poll;
	struct redis_conn *c;
	redisAsyncContext *ac;
	int events;		/* UV_READABLE | UV_WRITABLE hiredis wants */
	int broken;		/* uv_poll_start failed: -errno */
	bool closed;		/* ev.cleanup ran: ac is being freed */
};

/* A name lookup; abandoned ones (timed out, closed) are freed by their
 * callback, which libuv always runs. */
struct resolve {
	uv_getaddrinfo_t req;
	struct redis_conn *c;
};

struct redis_conn {
	uv_loop_t *loop;
	uv_timer_t timer;	/* IDLE: backoff; else the connect deadline */
	uv_timer_t cmd_timer;	/* the earliest command deadline */
	enum phase phase;
	struct link *link;	/* NULL when there is no context */
	struct resolve *resolve;
	char *host, *user, *password;
	char addr[300];		/* "host:port", for messages */
	bool numeric;		/* host is an address: no lookup */
	int port, db;
	uint64_t connect_ms, command_ms, backoff_min, backoff_max;
	uint64_t backoff;	/* delay before the next attempt */
	redis_state_fn state_cb;
	void *ud;
	struct cmd *head, *tail;
	size_t npending;
	uint64_t cmd_due;
	bool cmd_armed;
	const char *last_step;	/* the handshake reply that means "up" */
	char why[512];		/* why the current attempt or link ended */
	int handles;		/* open uv handles (timers, polls) */
	int reqs;		/* getaddrinfo requests in flight */
	bool closing;
	void (*closed_cb)(void *);
	void *closed_ud;
};

/* Handshake steps: the privdata of their replies, and their names. */
static char step_auth[] = "AUTH";
static char step_select[] = "SELECT";
static char step_ping[] = "PING";

static void on_timer(uv_timer_t *);
static void on_cmd_timer(uv_timer_t *);

/* ---- small helpers ----------------------------------------------------- */

/* The first reason wins: a timeout that frees the context must not be
 * replaced by what ev.cleanup sees next. */
static void __attribute__((format(printf, 2, 3)))
set_why(struct redis_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

/* "Connection refused" -> "connection refused"; "EOF" stays. */
static const char *
lcfirst(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s);
	if (dst[0] >= 'A' && dst[0] <= 'Z' && dst[1] >= 'a' && dst[1] <= 'z')
		dst[0] = (char)(dst[0] - 'A' + 'a');
	return dst;
}

static void
cmd_unlink(struct redis_conn *c, struct cmd *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		c->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		c->tail = k->prev;
	k->prev = k->next = NULL;
	c->npending--;
}

static void
cmd_timer_arm(struct redis_conn *c, uint64_t deadline)
{
	uint64_t now = uv_now(c->loop);

	if (c->cmd_armed && c->cmd_due <= deadline)
		return;
	if (uv_timer_start(&c->cmd_timer, on_cmd_timer,
	    deadline > now ? deadline - now : 0, 0) == 0) {
		c->cmd_due = deadline;
		c->cmd_armed = true;
	}
}

static void
cmd_timer_stop(struct redis_conn *c)
{
	uv_timer_stop(&c->cmd_timer);
	c->cmd_armed = false;
}

/* ---- end of a connection or an attempt --------------------------------- */

/* The context is gone (or never came): fail what is pending, report, and
 * schedule the next attempt.  Runs only from loop callbacks, outside
 * hiredis, so the user callbacks it calls may do anything. */
static void
conn_ended(struct redis_conn *c)
{
	char why[sizeof(c->why)], err[sizeof(c->why) + 64];
	struct cmd *k, *next;
	uint64_t d;

	c->phase = PHASE_IDLE;
	uv_timer_stop(&c->timer);
	cmd_timer_stop(c);
	if (c->closing)
		return;		/* the close answers what is pending */
	snprintf(why, sizeof(why), "%s", c->why[0] ? c->why :
	    "connection lost");
	/* Detached first: a callback may send (refused: not up) or close. */
	k = c->head;
	c->head = c->tail = NULL;
	c->npending = 0;
	for (; k; k = next) {
		next = k->next;
		if (k->timed_out)
			snprintf(err, sizeof(err), "command timed out after %"
			    PRIu64 " ms", k->timeout_ms);
		else if (strncmp(why, "connection lost", 15) == 0)
			snprintf(err, sizeof(err), "%s", why);
		else
			snprintf(err, sizeof(err), "connection lost: %s", why);
		if (k->cb)
			k->cb(k->ud, NULL, err);
		free(k);
	}
	if (c->closing)
		return;
	c->state_cb(c->ud, false, why);
	if (c->closing)
		return;
	uv_timer_start(&c->timer, on_timer, c->backoff, 0);
	d = c->backoff * 2;
	c->backoff = d > c->backoff_max || d < c->backoff ? c->backoff_max : d;
}

/* Called after anything that may have made hiredis free the context. */
static void
conn_settle(struct redis_conn *c)
{
	if (c->link == NULL && !c->closing &&
	    (c->phase == PHASE_CONNECTING || c->phase == PHASE_UP))
		conn_ended(c);
}

/* Frees c once closing and nothing of it is left on the loop. */
static void
conn_maybe_free(struct redis_conn *c)
{
	struct cmd *k;

	if (!c->closing || c->handles > 0 || c->reqs > 0 || c->link != NULL)
		return;
	while ((k = c->head) != NULL) {
		cmd_unlink(c, k);
		if (k->cb)
			k->cb(k->ud, NULL, "closed");
		free(k);
	}
	if (c->closed_cb)
		c->closed_cb(c->closed_ud);
	free(c->host);
	free(c->user);
	free(c->password);
	free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct redis_conn *c = h->data;

	c->handles--;
	conn_maybe_free(c);
}

/* ---- the event hooks hiredis calls ------------------------------------- */

static void on_poll(uv_poll_t *, int, int);

static void
link_want(struct link *l, int ev, bool on)
{
	int events = on ? l->events | ev : l->events & ~ev;
	int rc;

	if (l->closed || events == l->events)
		return;
	l->events = events;
	if (events == 0) {
		uv_poll_stop(&l->poll);
		return;
	}
	if ((rc = uv_poll_start(&l->poll, events, on_poll)) < 0 &&
	    l->broken == 0) {
		/* We are inside hiredis: the context cannot be freed here.
		 * The command timer drops it from the loop at once. */
		l->broken = rc;
		uv_timer_start(&l->c->cmd_timer, on_cmd_timer, 0, 0);
		l->c->cmd_armed = true;
		l->c->cmd_due = 0;
	}
}

static void ev_add_read(void *p) { link_want(p, UV_READABLE, true); }
static void ev_del_read(void *p) { link_want(p, UV_READABLE, false); }
static void ev_add_write(void *p) { link_want(p, UV_WRITABLE, true); }
static void ev_del_write(void *p) { link_want(p, UV_WRITABLE, false); }

static void
on_poll_closed(uv_handle_t *h)
{
	struct link *l = h->data;
	struct redis_conn *c = l->c;

	free(l);
	c->handles--;
	conn_maybe_free(c);
}

/* hiredis is freeing l->ac (its socket still open). */
static void
ev_cleanup(void *p)
{
	struct link *l = p;
	struct redis_conn *c = l->c;
	const redisContext *rc = &l->ac->c;
	char what[sizeof(rc->errstr)];

	if (l->closed)
		return;
	l->closed = true;
	if (!c->closing) {
		lcfirst(what, sizeof(what), rc->err ? rc->errstr :
		    "closed by the client");
		if (!(rc->flags & REDIS_CONNECTED))
			set_why(c, "%s (%s)", what, c->addr);
		else if (c->phase == PHASE_CONNECTING)
			set_why(c, "connection lost: %s (%s)", what, c->addr);
		else
			set_why(c, "connection lost: %s", what);
	}
	if (c->link == l)
		c->link = NULL;
	uv_close((uv_handle_t *)&l->poll, on_poll_closed);
}

/* libuv turns POLLERR into status UV_EBADF and stops the handle, so the
 * real error is the socket's. */
static void
link_socket_error(struct link *l, int status)
{
	struct redis_conn *c = l->c;
	char what[128];
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(l->ac->c.fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1 ||
	    e == 0)
		e = -status;
	lcfirst(what, sizeof(what), strerror(e));
	if (!(l->ac->c.flags & REDIS_CONNECTED))
		set_why(c, "%s (%s)", what, c->addr);
	else
		set_why(c, "connection lost: %s", what);
	redisAsyncFree(l->ac);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
	struct link *l = h->data;
	struct redis_conn *c = l->c;

	if (l->closed)
		return;
	if (status < 0) {
		link_socket_error(l, status);
	} else {
		if (events & UV_READABLE)
			redisAsyncHandleRead(l->ac);
		if (!l->closed && (events & UV_WRITABLE))
			redisAsyncHandleWrite(l->ac);
	}
	conn_settle(c);
}

/* ---- connecting -------------------------------------------------------- */

static void
conn_is_up(struct redis_conn *c)
{
	char msg[sizeof(c->addr) + 32];

	c->phase = PHASE_UP;
	uv_timer_stop(&c->timer);
	c->backoff = c->backoff_min;
	snprintf(msg, sizeof(msg), "connected to %s, db %d", c->addr, c->db);
	c->state_cb(c->ud, true, msg);
}

static void
on_handshake(redisAsyncContext *ac, void *reply, void *step)
{
	struct link *l = ac->data;
	struct redis_conn *c = l->c;
	redisReply *r = reply;

	if (r == NULL || l->closed || c->closing || c->link != l)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		if (step == step_select)
			set_why(c, "SELECT %d failed: %s", c->db, r->str);
		else
			set_why(c, "%s failed: %s", (const char *)step,
			    r->str);
		redisAsyncFree(ac);	/* done by hiredis when we return */
		return;
	}
	if (step == c->last_step)
		conn_is_up(c);
}

static void
set_keepalive(int fd)
{
	int on = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S;
	int cnt = KEEPALIVE_CNT;

	/* Best effort: without it a dead peer is still found by the next
	 * command's deadline. */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
	    sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Queues AUTH, SELECT (or PING) ahead of the connect: hiredis writes them
 * once the socket is connected.  0 or -ENOMEM. */
static int
link_handshake(struct redis_conn *c, redisAsyncContext *ac)
{
	const char *argv[3];
	int argc = 0, rc = REDIS_OK;

	if (c->password) {
		argv[argc++] = "AUTH";
		if (c->user)
			argv[argc++] = c->user;
		argv[argc++] = c->password;
		rc = redisAsyncCommandArgv(ac, on_handshake, step_auth, argc,
		    argv, NULL);
		c->last_step = step_auth;
	}
	if (rc == REDIS_OK && c->db != 0) {
		rc = redisAsyncCommand(ac, on_handshake, step_select,
		    "SELECT %d", c->db);
		c->last_step = step_select;
	}
	if (rc == REDIS_OK && c->password == NULL && c->db == 0) {
		/* Up means the server answered, not only that TCP did. */
		rc = redisAsyncCommand(ac, on_handshake, step_ping, "PING");
		c->last_step = step_ping;
	}
	return rc == REDIS_OK ? 0 : -ENOMEM;
}

/* Starts the connect to ip.  0, or -errno with c->why set and no link. */
static int
link_open(struct redis_conn *c, const char *ip)
{
	redisAsyncContext *ac;
	struct link *l;
	char what[128];
	int rc;

	if ((ac = redisAsyncConnect(ip, c->port)) == NULL) {
		set_why(c, "out of memory (%s)", c->addr);
		return -ENOMEM;
	}
	if (ac->err) {
		/* connect(2) failed at once (a local refusal, no route...). */
		set_why(c, "%s (%s)", lcfirst(what, sizeof(what), ac->errstr),
		    c->addr);
		redisAsyncFree(ac);
		return -ECONNREFUSED;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		set_why(c, "out of memory (%s)", c->addr);
		redisAsyncFree(ac);
		return -ENOMEM;
	}
	if ((rc = uv_poll_init(c->loop, &l->poll, ac->c.fd)) < 0) {
		set_why(c, "cannot poll the socket: %s (%s)", uv_strerror(rc),
		    c->addr);
		free(l);
		redisAsyncFree(ac);
		return rc;
	}
	l->poll.data = l;
	l->c = c;
	l->ac = ac;
	c->link = l;
	c->handles++;
	ac->data = l;
	ac->ev.data = l;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	set_keepalive(ac->c.fd);
	if ((rc = link_handshake(c, ac)) < 0) {
		set_why(c, "out of memory (%s)", c->addr);
		redisAsyncFree(ac);	/* ev_cleanup clears c->link */
		return rc;
	}
	return 0;
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct resolve *r = req->data;
	struct redis_conn *c = r->c;
	struct addrinfo *ai, *pick = NULL;
	char ip[INET6_ADDRSTRLEN] = "";

	c->reqs--;
	if (c->resolve != r) {		/* timed out or closed meanwhile */
		uv_freeaddrinfo(res);
		free(r);
		conn_maybe_free(c);
		return;
	}
	c->resolve = NULL;
	free(r);
	/* IPv4 first, as hiredis's own lookup does: "localhost" must reach
	 * a server bound to 127.0.0.1 only. */
	for (ai = status == 0 ? res : NULL; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET && pick == NULL)
			pick = ai;
	for (ai = status == 0 ? res : NULL; ai && pick == NULL;
	    ai = ai->ai_next)
		if (ai->ai_family == AF_INET6)
			pick = ai;
	if (pick && pick->ai_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)pick->ai_addr, ip,
		    sizeof(ip));
	else if (pick)
		uv_ip6_name((struct sockaddr_in6 *)pick->ai_addr, ip,
		    sizeof(ip));
	uv_freeaddrinfo(res);
	if (ip[0] == '\0') {
		set_why(c, "cannot resolve %s: %s", c->host,
		    status < 0 ? uv_strerror(status) : "no address");
		conn_ended(c);
		return;
	}
	c->phase = PHASE_CONNECTING;
	if (link_open(c, ip) < 0)
		conn_ended(c);
}

static void
conn_attempt(struct redis_conn *c)
{
	struct addrinfo hints;
	struct resolve *r;
	int rc;

	c->why[0] = '\0';
	uv_timer_start(&c->timer, on_timer, c->connect_ms, 0);
	if (c->numeric) {
		c->phase = PHASE_CONNECTING;
		if (link_open(c, c->host) < 0)
			conn_ended(c);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		set_why(c, "out of memory (%s)", c->addr);
		conn_ended(c);
		return;
	}
	r->c = c;
	r->req.data = r;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = uv_getaddrinfo(c->loop, &r->req, on_resolved, c->host,
	    NULL, &hints)) < 0) {
		free(r);
		set_why(c, "cannot resolve %s: %s", c->host, uv_strerror(rc));
		conn_ended(c);
		return;
	}
	c->resolve = r;
	c->reqs++;
	c->phase = PHASE_RESOLVING;
}

/* The backoff elapsed, or the connect deadline passed. */
static void
on_timer(uv_timer_t *t)
{
	struct redis_conn *c = t->data;

	switch (c->phase) {
	case PHASE_IDLE:
		conn_attempt(c);
		break;
	case PHASE_RESOLVING:
		set_why(c, "connect timed out after %" PRIu64 " ms (%s)",
		    c->connect_ms, c->addr);
		/* Its callback still runs (cancelled or not) and frees it. */
		uv_cancel((uv_req_t *)&c->resolve->req);
		c->resolve = NULL;
		conn_ended(c);
		break;
	case PHASE_CONNECTING:
		set_why(c, "connect timed out after %" PRIu64 " ms (%s)",
		    c->connect_ms, c->addr);
		if (c->link)
			redisAsyncFree(c->link->ac);
		conn_settle(c);
		break;
	case PHASE_UP:
		break;
	}
}

/* The earliest deadline passed (or a poll could not be started). */
static void
on_cmd_timer(uv_timer_t *t)
{
	struct redis_conn *c = t->data;
	uint64_t now = uv_now(c->loop), next = UINT64_MAX;
	struct cmd *k, *late = NULL;

	c->cmd_armed = false;
	if (c->link == NULL)
		return;
	if (c->link->broken) {
		set_why(c, "connection lost: cannot poll the socket: %s",
		    uv_strerror(c->link->broken));
		redisAsyncFree(c->link->ac);
		conn_settle(c);
		return;
	}
	for (k = c->head; k; k = k->next) {
		if (k->deadline <= now) {
			late = k;
			break;
		}
		if (k->deadline < next)
			next = k->deadline;
	}
	if (late == NULL) {
		if (next != UINT64_MAX)
			cmd_timer_arm(c, next);
		return;
	}
	/* Replies come in order and hiredis cannot skip one: the only way
	 * past a command that does not answer is a new connection. */
	late->timed_out = true;
	set_why(c, "command timed out after %" PRIu64 " ms",
	    late->timeout_ms);
	redisAsyncFree(c->link->ac);
	conn_settle(c);
}

/* ---- public ------------------------------------------------------------ */

int
redis_conn_new(uv_loop_t *loop, const struct redis_conn_opts *o,
    redis_state_fn state_cb, void *ud, struct redis_conn **out)
{
	struct redis_conn *c;
	struct in6_addr a6;
	struct in_addr a4;
	int rc;

	*out = NULL;
	if (o == NULL || o->host == NULL || o->host[0] == '\0' ||
	    o->port < 1 || o->port > 65535 || o->db < 0 || state_cb == NULL)
		return -EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->host = strdup(o->host);
	c->user = o->user ? strdup(o->user) : NULL;
	c->password = o->password ? strdup(o->password) : NULL;
	if (c->host == NULL || (o->user && c->user == NULL) ||
	    (o->password && c->password == NULL)) {
		free(c->host);
		free(c->user);
		free(c->password);
		free(c);
		return -ENOMEM;
	}
	c->loop = loop;
	c->port = o->port;
	c->db = o->db;
	c->numeric = inet_pton(AF_INET, o->host, &a4) == 1 ||
	    inet_pton(AF_INET6, o->host, &a6) == 1;
	snprintf(c->addr, sizeof(c->addr), strchr(o->host, ':') ?
	    "[%s]:%d" : "%s:%d", o->host, o->port);
	c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms :
	    REDIS_CONN_CONNECT_TIMEOUT_MS;
	c->command_ms = o->command_timeout_ms ? o->command_timeout_ms :
	    REDIS_CONN_COMMAND_TIMEOUT_MS;
	c->backoff_min = o->backoff_min_ms ? o->backoff_min_ms :
	    REDIS_CONN_BACKOFF_MIN_MS;
	c->backoff_max = o->backoff_max_ms ? o->backoff_max_ms :
	    REDIS_CONN_BACKOFF_MAX_MS;
	if (c->backoff_max < c->backoff_min)
		c->backoff_max = c->backoff_min;
	c->backoff = c->backoff_min;
	c->state_cb = state_cb;
	c->ud = ud;
	c->phase = PHASE_IDLE;
	if ((rc = uv_timer_init(loop, &c->timer)) < 0) {
		free(c->host);
		free(c->user);
		free(c->password);
		free(c);
		return rc;
	}
	c->timer.data = c;
	c->cmd_timer.data = c;
	c->handles = 1;
	if ((rc = uv_timer_init(loop, &c->cmd_timer)) < 0) {
		/* c is freed by the timer's close callback. */
		c->closing = true;
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
		return rc;
	}
	c->handles = 2;
	/* From the loop, so that no state callback runs inside this call. */
	uv_timer_start(&c->timer, on_timer, 0, 0);
	*out = c;
	return 0;
}

bool
redis_conn_up(const struct redis_conn *c)
{
	return c->phase == PHASE_UP && !c->closing;
}

size_t
redis_conn_pending(const struct redis_conn *c)
{
	return c->npending;
}

/* "*<n>\r\n" or "$<n>\r\n" after its first byte: the number, and where the
 * text after it starts (NULL when malformed). */
static const char *
proto_num(const char *p, const char *end, size_t *v)
{
	*v = 0;
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		*v = *v * 10 + (size_t)(*p - '0');
	if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
		return NULL;
	return p + 2;
}

/* Refuses what would break "one callback per command": hiredis keeps the
 * callbacks of (un)subscribe and MONITOR for many replies, and HELLO may
 * switch to RESP3, which hiredis 0.14 cannot parse. */
static int
cmd_check(const char *buf, size_t len)
{
	static const char *const refused[] = { "subscribe", "psubscribe",
	    "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
	    "monitor", "hello" };
	const char *p, *end = buf + len;
	size_t argc, n, i;

	if (len < 1 || buf[0] != '*' ||
	    (p = proto_num(buf + 1, end, &argc)) == NULL || argc == 0 ||
	    p >= end || *p != '$' || (p = proto_num(p + 1, end, &n)) == NULL ||
	    n > (size_t)(end - p))
		return -EINVAL;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strlen(refused[i]) == n && strncasecmp(p, refused[i], n)
		    == 0)
			return -ENOTSUP;
	return 0;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct cmd *k = priv;
	redisReply *r = reply;

	(void)ac;
	/* NULL: the context is being freed; conn_ended or the close
	 * answers k from outside hiredis. */
	if (r == NULL)
		return;
	cmd_unlink(k->c, k);
	if (k->cb)
		k->cb(k->ud, r, r->type == REDIS_REPLY_ERROR ? r->str : NULL);
	free(k);
}

/* Queues the formatted command buf; the caller frees buf. */
static int
conn_send(struct redis_conn *c, uint64_t timeout_ms, redis_reply_fn cb,
    void *ud, const char *buf, size_t len)
{
	uint64_t now = uv_now(c->loop);
	struct cmd *k;
	int rc;

	if ((rc = cmd_check(buf, len)) < 0)
		return rc;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -ENOMEM;
	k->c = c;
	k->cb = cb;
	k->ud = ud;
	k->timeout_ms = timeout_ms ? timeout_ms : c->command_ms;
	k->deadline = k->timeout_ms > UINT64_MAX - now ? UINT64_MAX :
	    now + k->timeout_ms;
	if (redisAsyncFormattedCommand(c->link->ac, on_reply, k, buf, len)
	    != REDIS_OK) {
		free(k);
		return -ENOMEM;	/* the context is fine: only memory fails */
	}
	k->prev = c->tail;
	if (c->tail)
		c->tail->next = k;
	else
		c->head = k;
	c->tail = k;
	c->npending++;
	cmd_timer_arm(c, k->deadline);
	return 0;
}

int
redis_conn_command(struct redis_conn *c, uint64_t timeout_ms,
    redis_reply_fn cb, void *ud, int argc, const char **argv,
    const size_t *argvlen)
{
	char *buf = NULL;
	int len, rc;

	if (!redis_conn_up(c))
		return -ENOTCONN;
	if (argc < 1 || argv == NULL)
		return -EINVAL;
	if ((len = redisFormatCommandArgv(&buf, argc, argv, argvlen)) < 0)
		return -ENOMEM;
	rc = conn_send(c, timeout_ms, cb, ud, buf, (size_t)len);
	redisFreeCommand(buf);
	return rc;
}

int
redis_conn_commandf(struct redis_conn *c, uint64_t timeout_ms,
    redis_reply_fn cb, void *ud, const char *fmt, ...)
{
	char *buf = NULL;
	va_list ap;
	int len, rc;

	if (!redis_conn_up(c))
		return -ENOTCONN;
	if (fmt == NULL)
		return -EINVAL;
	va_start(ap, fmt);
	len = redisvFormatCommand(&buf, fmt, ap);
	va_end(ap);
	if (len < 0)	/* -1: out of memory, -2: bad format */
		return len == -1 ? -ENOMEM : -EINVAL;
	rc = conn_send(c, timeout_ms, cb, ud, buf, (size_t)len);
	redisFreeCommand(buf);
	return rc;
}

void
redis_conn_close(struct redis_conn *c, void (*closed_cb)(void *ud), void *ud)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	c->closed_cb = closed_cb;
	c->closed_ud = ud;
	c->phase = PHASE_IDLE;
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->cmd_timer, on_handle_closed);
	c->cmd_armed = false;
	if (c->resolve) {
		uv_cancel((uv_req_t *)&c->resolve->req);
		c->resolve = NULL;
	}
	/* At once, or (inside one of its reply callbacks) when the callback
	 * returns; ev_cleanup then closes the poll handle.  The last close
	 * callback answers the pending commands and frees c. */
	if (c->link)
		redisAsyncFree(c->link->ac);
}
