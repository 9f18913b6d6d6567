/*
 * control_server: the daemon's end of the control socket, on the
 * supervisor's loop (see control_server.h; the protocol is control.h's).
 *
 * Why a fixed buffer per client: a request can never make the supervisor
 * allocate more than CONTROL_MAX_CLIENTS buffers of CONTROL_LINE_MAX,
 * however it is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_server.h"
#include "fsutil.h"
#include "json.h"
#include "safedir.h"

/* Plain text (the report and request lines) goes through json.h's
 * buffer too: one growable buffer, one escaping, one nesting writer. */
static void
out_s(struct json_buf *o, const char *s)
{
	json_raw(o, s, strlen(s));
}

struct conn {
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t wr;
	struct control_server *srv;
	struct conn *prev, *next;
	char *resp;
	size_t len;		/* bytes in buf */
	int handles;		/* still open; freed at 0 */
	bool answered;
	char buf[CONTROL_LINE_MAX + 1];	/* +1: room to see "too long" */
};

struct control_server {
	uv_pipe_t pipe;
	uv_loop_t *loop;
	struct control_hooks hooks;
	void *ud;
	void (*done)(void *);	/* control_stop's, with done_ud */
	void *done_ud;
	/* The answer when building one ran out of memory, rendered while
	 * memory was there. */
	struct json_buf nomem;
	char path[PATH_MAX];
	dev_t dev;
	ino_t ino;
	struct conn *clients;
	size_t nclients;
	int timeout_ms;
	bool stopping;
	bool pipe_closed;
};

/* Frees s once its last handle is closed, then tells control_stop's
 * caller (after the free: done may close the loop). */
static void
server_maybe_free(struct control_server *s)
{
	void (*done)(void *) = s->done;
	void *ud = s->done_ud;

	if (!s->stopping || !s->pipe_closed || s->nclients > 0)
		return;
	json_free(&s->nomem);
	free(s);
	if (done != NULL)
		done(ud);
}

static void
conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct control_server *s = c->srv;

	if (--c->handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nclients--;
	free(c->resp);
	free(c);
	server_maybe_free(s);
}

static void
conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void
conn_written(uv_write_t *wr, int status)
{
	(void)status;	/* gone or not, this exchange is over */
	conn_close(wr->data);
}

/* Sends o's line (or the server's "out of memory" when building it ran
 * out) and closes after the write. */
static void
conn_answer(struct conn *c, struct json_buf *o)
{
	struct json_buf *nomem = &c->srv->nomem;
	uv_buf_t b;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	uv_timer_stop(&c->timer);
	if (o->err || o->buf == NULL) {
		b = uv_buf_init(nomem->buf, (unsigned int)nomem->len);
	} else {
		c->resp = o->buf;
		o->buf = NULL;
		b = uv_buf_init(c->resp, (unsigned int)o->len);
	}
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1,
	    conn_written) < 0)
		conn_close(c);
}

static void
conn_error(struct conn *c, const char *msg)
{
	struct json_buf o;

	json_init(&o);
	control_render_error(&o, msg);
	conn_answer(c, &o);
	json_free(&o);
}

static void
do_reprocess(struct control_server *s, struct json_buf *o,
    const struct control_request *req)
{
	char msg[512];
	struct json_buf t, res;
	size_t i, queued = 0;
	int rc;

	/* Results first, in their own buffer, so "ok" can lead the line
	 * like in every other response. */
	json_init(&t);
	json_init(&res);
	json_open(&res, NULL, '[');
	for (i = 0; i < req->nargs; i++) {
		msg[0] = '\0';
		rc = s->hooks.reprocess ? s->hooks.reprocess(s->ud,
		    req->args[i], msg, sizeof(msg)) : -ENOSYS;
		if (rc == 0)
			queued++;
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "%s", rc == 0 ? "queued" :
			    strerror(-rc));
		json_open(&res, NULL, '{');
		json_str(&res, "path", req->args[i]);
		json_bool(&res, "ok", rc == 0);
		json_str(&res, "message", msg);
		json_close(&res, '}');
		json_printf(&t, "%s: %s\n", req->args[i], msg);
	}
	json_close(&res, ']');
	if (queued < req->nargs)
		json_printf(&t, "%zu of %zu not queued\n", req->nargs - queued,
		    req->nargs);
	json_open(o, NULL, '{');
	json_bool(o, "ok", queued == req->nargs);
	json_str(o, "command", "reprocess");
	json_u64(o, "queued", queued);
	json_u64(o, "errors", req->nargs - queued);
	json_key(o, "results");
	if (res.err)
		o->err = res.err;	/* the answer becomes "out of memory" */
	else
		json_raw(o, res.buf, res.len);
	control_finish_response(o, &t);
	json_free(&res);
	json_free(&t);
}

static void
do_retry_failed(struct control_server *s, struct json_buf *o)
{
	char msg[512] = "";
	size_t count = 0;
	struct json_buf t;
	int rc;

	rc = s->hooks.retry_failed ? s->hooks.retry_failed(s->ud, &count,
	    msg, sizeof(msg)) : -ENOSYS;
	if (rc < 0) {
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "retry-failed: %s",
			    strerror(-rc));
		control_render_error(o, msg);
		return;
	}
	json_init(&t);
	if (count == 0)
		out_s(&t, "no failed files to retry\n");
	else
		json_printf(&t, "%zu failed file%s queued again\n", count,
		    count == 1 ? "" : "s");
	json_open(o, NULL, '{');
	json_bool(o, "ok", true);
	json_str(o, "command", "retry-failed");
	json_u64(o, "queued", count);
	control_finish_response(o, &t);
	json_free(&t);
}

static void
conn_request(struct conn *c, const char *line, size_t len)
{
	struct control_server *s = c->srv;
	struct control_request req;
	struct control_status st;
	char err[256];
	struct json_buf o;

	if (control_parse_request(line, len, &req, err, sizeof(err)) < 0) {
		conn_error(c, err);
		return;
	}
	json_init(&o);
	switch (req.cmd) {
	case CONTROL_STATUS:
		memset(&st, 0, sizeof(st));
		if (s->hooks.status)
			s->hooks.status(s->ud, &st);
		control_render_status(&o, &st);
		break;
	case CONTROL_REPROCESS:
		do_reprocess(s, &o, &req);
		break;
	case CONTROL_RETRY_FAILED:
		do_retry_failed(s, &o);
		break;
	}
	control_request_free(&req);
	conn_answer(c, &o);
	json_free(&o);
}

static void
conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->buf + c->len,
	    (unsigned int)(sizeof(c->buf) - c->len));
}

static void
conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	char *nl;
	size_t old = c->len;

	(void)buf;
	if (c->answered)
		return;
	if (nread == UV_EOF) {
		/* A client that closed its write side without '\n' sent
		 * its whole line. */
		if (c->len > 0)
			conn_request(c, c->buf, c->len);
		else
			conn_close(c);
		return;
	}
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	if ((nl = memchr(c->buf + old, '\n', c->len - old)) != NULL) {
		conn_request(c, c->buf, (size_t)(nl - c->buf));
		return;
	}
	if (c->len >= sizeof(c->buf)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request line longer than %d bytes",
		    CONTROL_LINE_MAX);
		conn_error(c, msg);
	}
}

static void
conn_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;
	char msg[96];

	snprintf(msg, sizeof(msg), "no complete request line within %d ms",
	    c->srv->timeout_ms);
	conn_error(c, msg);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct control_server *s = server->data;
	struct conn *c;

	if (status < 0 || s->stopping)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;	/* the connection waits in the backlog */
	c->srv = s;
	uv_pipe_init(s->loop, &c->pipe, 0);
	uv_timer_init(s->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->handles = 2;
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	s->nclients++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		conn_close(c);
		return;
	}
	if (s->nclients > CONTROL_MAX_CLIENTS) {
		conn_error(c, "busy: too many control connections at once");
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, (uint64_t)s->timeout_ms, 0);
	if (uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read) < 0)
		conn_close(c);
}

static void
server_pipe_closed(uv_handle_t *h)
{
	struct control_server *s = h->data;

	s->pipe_closed = true;
	server_maybe_free(s);
}
/* What sits at path: 0 nothing (or a stale socket, now removed),
 * -EADDRINUSE a live server, -EEXIST something else, or -errno. */
static int
clear_stale(const char *path)
{
	struct sockaddr_un sa;
	struct stat sb;
	int fd, rc;

	if (lstat(path, &sb) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	/* Another user's socket is neither probed nor removed: it is not a
	 * stale one of ours. */
	if (!safedir_owner_ok(sb.st_uid))
		return -EPERM;
	if ((rc = control_socket_addr(&sa, path)) < 0)
		return rc;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	rc = errno;
	close(fd);
	/* Refused: nobody accepts on it any more (a daemon killed with -9). */
	if (rc == ECONNREFUSED && unlink(path) == -1 && errno != ENOENT)
		return -errno;
	return rc == ECONNREFUSED ? 0 : -rc;
}

int
control_start(struct control_server **sp, uv_loop_t *loop,
    const struct control_opts *opts, const struct control_hooks *hooks,
    void *ud, char *err, size_t errlen)
{
	const char *path = opts->path;
	struct control_server *s;
	struct sockaddr_un sa;
	struct stat sb;
	mode_t old;
	int rc;

	*sp = NULL;
	/* libuv 1.44 truncates a long name silently: check it here. */
	if (control_socket_addr(&sa, path) < 0) {
		snprintf(err, errlen, "control socket path %s is too long for "
		    "a Unix socket (%zu bytes at most): use a shorter "
		    "RUNTIME_DIR", path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if ((rc = fs_mkdir_parents(path, 0700)) < 0) {
		snprintf(err, errlen, "cannot create the runtime folder of %s: "
		    "%s", path, strerror(-rc));
		return rc;
	}
	if ((rc = control_socket_dir_check(path, SAFEDIR_PRIVATE, err,
	    errlen)) < 0)
		return rc;
	if ((rc = clear_stale(path)) < 0) {
		if (rc == -EADDRINUSE)
			snprintf(err, errlen, "control socket %s is served by "
			    "another running thumbwatch: give each daemon its "
			    "own RUNTIME_DIR", path);
		else if (rc == -EEXIST)
			snprintf(err, errlen, "%s exists and is not a socket; "
			    "not replacing it", path);
		else if (rc == -EPERM)
			snprintf(err, errlen, "control socket %s belongs to "
			    "another user; not replacing it", path);
		else
			snprintf(err, errlen, "control socket %s: %s", path,
			    strerror(-rc));
		return rc;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_init(&s->nomem);
	control_render_error(&s->nomem, "out of memory");
	if (s->nomem.err) {
		json_free(&s->nomem);
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->loop = loop;
	s->hooks = *hooks;
	s->ud = ud;
	s->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms :
	    CONTROL_TIMEOUT_MS;
	snprintf(s->path, sizeof(s->path), "%s", path);
	uv_pipe_init(loop, &s->pipe, 0);
	s->pipe.data = s;
	/* The socket is born 0600: no moment where another user could
	 * connect.  The supervisor creates no files from other threads. */
	old = umask(0177);
	rc = uv_pipe_bind(&s->pipe, path);
	umask(old);
	if (rc == 0 && (chmod(path, 0600) == -1 || stat(path, &sb) == -1))
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->pipe, 64, on_connection);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on control socket %s: %s",
		    path, uv_strerror(rc));
		unlink(path);
		/* The handle is freed by the close callback. */
		s->stopping = true;
		uv_close((uv_handle_t *)&s->pipe, server_pipe_closed);
		return rc;
	}
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	*sp = s;
	return 0;
}

size_t
control_clients(const struct control_server *s)
{
	return s->nclients;
}

void
control_stop(struct control_server *s, void (*done)(void *ud), void *ud)
{
	struct conn *c, *next;
	struct stat sb;

	if (s == NULL || s->stopping)
		return;
	s->stopping = true;
	s->done = done;
	s->done_ud = ud;
	if (stat(s->path, &sb) == 0 && sb.st_dev == s->dev &&
	    sb.st_ino == s->ino)
		unlink(s->path);
	for (c = s->clients; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	uv_close((uv_handle_t *)&s->pipe, server_pipe_closed);
}
