/*
 * http: the server core of the HTTP front door (see http.h, and
 * http_int.h for the files that serve each route).
 *
 * libmicrohttpd runs without threads (MHD_USE_EPOLL, no internal polling):
 * its epoll fd sits on a uv_poll_t and MHD_run is called when it is
 * readable or when MHD_get_timeout says so.  Nothing here blocks on a
 * client: bodies arrive in pieces and are handled as they come.  The
 * listener is ours (accepting pauses at the connection budget), each
 * request has a deadline, and every request passes the router here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"
#include "httputil.h"
#include "json.h"

#define SWEEP_MS	250		/* deadline granularity */
/* Descriptors kept for everything but HTTP: stdio, the log, pidfile,
 * control socket and clients, inotify, libuv's own, a walk's open
 * folders, Redis, the listener and MHD's epoll; and per worker its
 * socket pair, pipe and pidfd. */
#define FD_RESERVE	128
#define FD_PER_WORKER	4
#define CONN_AUTO_MAX	1024		/* ~32 KiB pool each: 32 MiB */
#define CONN_MIN	8
#define CONN_MEMORY	(32 * 1024)	/* headers and buffers of one */

/* ---- loop glue ----------------------------------------------------- */

static void mhd_timer_cb(uv_timer_t *t);

static void
schedule(struct http_server *h)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (h->stopping)
		return;
	if (MHD_get_timeout(h->mhd, &to) == MHD_YES)
		uv_timer_start(&h->timer, mhd_timer_cb, (uint64_t)to, 0);
	else
		uv_timer_stop(&h->timer);
}

/* A stream resumed from inside MHD_run (an upload's event, published
 * from its request callback) is not counted by MHD_get_timeout, and
 * schedule() would stop the timer kick() had just started: the event then
 * waited for the next unrelated request (the page's old 2 s poll of
 * /status hid that).  Run again at once instead. */
static void
mhd_run(struct http_server *h)
{
	if (h->stopping)
		return;
	h->in_run = true;
	MHD_run(h->mhd);
	h->in_run = false;
	schedule(h);
	if (h->resumed) {
		h->resumed = false;
		kick(h);
	}
}

static void
mhd_timer_cb(uv_timer_t *t)
{
	mhd_run(t->data);
}

static void
mhd_poll_cb(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	mhd_run(p->data);
}

void
kick(struct http_server *h)
{
	if (!h->stopping)
		uv_timer_start(&h->timer, mhd_timer_cb, 0, 0);
}

/* ---- connections and their deadlines ------------------------------- */

struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Ends a connection from outside MHD's callbacks: MHD has no call for
 * that, but sees the shut socket at its next look (kick) and closes it
 * the usual way, request callbacks (temps, upload slot) included. */
static void
conn_cut(struct conn *k)
{
	if (k->cut)
		return;
	k->cut = true;
	if (k->fd >= 0)
		shutdown(k->fd, SHUT_RDWR);
}

static void accept_cb(uv_poll_t *p, int status, int events);

/* Accepting is ours, not MHD's: at the cap the listening socket is
 * simply not watched, so new clients wait in the kernel's queue and are
 * taken, oldest first, as connections end.  (MHD's own edge-triggered
 * listener, once full, waited for a new arrival to look again.) */
static void
accept_pause(struct http_server *h, bool pause)
{
	if (h->stopping || pause == !h->accepting)
		return;
	h->accepting = !pause;
	if (pause)
		uv_poll_stop(&h->lpoll);
	else
		uv_poll_start(&h->lpoll, UV_READABLE, accept_cb);
}

static void
accept_cb(uv_poll_t *p, int status, int events)
{
	struct http_server *h = p->data;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, n;

	(void)status;
	(void)events;
	for (n = 0; n < 64 && h->nconns < h->max_conns; n++) {
		len = sizeof(ss);
		fd = accept4(h->lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				accept_pause(h, true);	/* sweep_cb retries */
			break;
		}
		/* Closes fd itself when over the per-address cap. */
		(void)MHD_add_connection(h->mhd, fd, (struct sockaddr *)&ss,
		    len);
	}
	if (h->nconns >= h->max_conns)
		accept_pause(h, true);
	kick(h);
}

static void
notify_conn(void *cls, struct MHD_Connection *mc, void **sctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct http_server *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *k = *sctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(mc,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if ((k = calloc(1, sizeof(*k))) == NULL) {
			/* Untracked means without a deadline: refuse it. */
			if (ci != NULL)
				shutdown(ci->connect_fd, SHUT_RDWR);
			return;
		}
		k->mc = mc;
		k->fd = ci != NULL ? ci->connect_fd : -1;
		k->start_ms = uv_now(h->loop);
		if ((k->next = h->conns) != NULL)
			k->next->prevp = &k->next;
		k->prevp = &h->conns;
		h->conns = k;
		h->nconns++;
		*sctx = k;
		return;
	}
	if (k == NULL)
		return;
	if ((*k->prevp = k->next) != NULL)
		k->next->prevp = k->prevp;
	h->nconns--;
	free(k);
	*sctx = NULL;
	if (h->nconns < h->max_conns)
		accept_pause(h, false);
}

/* Every SWEEP_MS: requests past their deadline are cut, /events readers
 * that stopped draining are dropped, quiet ones get a keep-alive. */
static void
sweep_cb(uv_timer_t *t)
{
	struct http_server *h = t->data;
	const struct config *cfg = h->cfg;
	uint64_t now = uv_now(h->loop), base, limit, got, shed;
	struct conn *k;
	bool any = false;

	if (h->stopping)
		return;
	base = (uint64_t)cfg->http_request_timeout_s * 1000;
	for (k = h->conns; k; k = k->next) {
		if (k->cut || k->streaming)
			continue;
		limit = base;
		if (k->upload != NULL) {
			/* Bytes buy time up to HTTP_MAX_UPLOAD's worth: a body
			 * streamed on after a 413 buys none. */
			got = k->upload->total;
			if (got > (uint64_t)cfg->http_max_upload)
				got = (uint64_t)cfg->http_max_upload;
			limit += got * 1000 / (uint64_t)cfg->http_min_upload_rate;
		}
		if (now - k->start_ms > limit) {
			conn_cut(k);
			h->n_timed_out++;
			any = true;
		}
	}
	if (sse_sweep(h, now))
		any = true;
	if (any)
		kick(h);
	if (h->nconns < h->max_conns)
		accept_pause(h, false);	/* after EMFILE, say */
	shed = h->n_timed_out + h->n_sse_dropped;
	if (shed > h->reported_cut && now - h->reported_ms >= 10000) {
		log_msg(h->lg, LOG_WARN, "http_shed", "%llu HTTP connection(s) "
		    "cut at HTTP_REQUEST_TIMEOUT_S and %llu stalled /events "
		    "reader(s) dropped since start",
		    (unsigned long long)h->n_timed_out,
		    (unsigned long long)h->n_sse_dropped);
		h->reported_cut = shed;
		h->reported_ms = now;
	}
}

/* ---- responses ----------------------------------------------------- */

enum MHD_Result
send_buf(struct MHD_Connection *c, unsigned int status, const char *type,
    const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Every JSON answer is written by json.h, the log's writer: a name that
 * is not UTF-8 reads the same here as in the log and still parses. */
enum MHD_Result
send_json(struct MHD_Connection *c, unsigned int status, struct json_buf *b)
{
	enum MHD_Result ret;

	if (b->err)
		ret = send_buf(c, 500, "application/json",
		    "{\"error\":\"out of memory\"}", 25);
	else
		ret = send_buf(c, status, "application/json", b->buf ? b->buf :
		    "", b->len);
	json_free(b);
	return ret;
}

enum MHD_Result
send_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	struct json_buf b;
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_init(&b);
	json_begin(&b);
	json_str(&b, "error", msg);
	json_u64(&b, "status", status);
	json_end(&b);
	json_raw(&b, "\n", 1);
	if (b.err) {
		json_free(&b);
		return MHD_NO;
	}
	r = MHD_create_response_from_buffer(b.len, b.buf,
	    MHD_RESPMEM_MUST_COPY);
	json_free(&b);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate",
		    "Bearer realm=\"thumbwatch\"");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The route a URL belongs to, as HTTP_PUBLIC names it.  "healthz" (a
 * load balancer's probe), "page" (static HTML holding no data; its
 * requests carry the token typed into it, since a browser cannot send a
 * header when it opens a page) and "favicon" (asked for by the browser
 * with no token, and holding nothing) are always open, "upload" never;
 * "" is no route (404 for everyone: no data behind it). */
static const char *
route_of(const char *url)
{
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return "page";
	if (strcmp(url, "/healthz") == 0)
		return "healthz";
	if (strcmp(url, "/favicon.ico") == 0)
		return "favicon";
	if (strcmp(url, "/upload") == 0)
		return "upload";
	if (strcmp(url, "/metrics") == 0)
		return "metrics";
	if (strcmp(url, "/status") == 0)
		return "status";
	if (strcmp(url, "/events") == 0)
		return "events";
	if (strcmp(url, "/jobs") == 0 || strncmp(url, "/jobs/", 6) == 0)
		return "jobs";
	if (strncmp(url, "/thumbnails/", 12) == 0)
		return "thumbnails";
	return "";
}

/* With HTTP_TOKEN set, every route but /healthz, the page and those
 * HTTP_PUBLIC lists needs "Authorization: Bearer TOKEN": /events names every upload
 * and its client, /thumbnails serves them. */
static bool
authorised(struct http_server *h, struct MHD_Connection *c, const char *url)
{
	const char *a, *route = route_of(url);

	if (!h->cfg->http_token[0] || !route[0] ||
	    strcmp(route, "healthz") == 0 || strcmp(route, "page") == 0 ||
	    strcmp(route, "favicon") == 0 ||
	    (strcmp(route, "upload") != 0 &&
	    httputil_list_has(h->cfg->http_public, route)))
		return true;
	a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	return httputil_token_equal(a + 7, h->cfg->http_token);
}

/* ---- dispatch ------------------------------------------------------- */

/* A GET is answered on MHD's second call, once the request is wholly
 * read: an answer queued on the first call is "early" to MHD, which then
 * closes the connection after it instead of keeping it alive. */
static enum MHD_Result
get_route(struct http_server *h, struct MHD_Connection *c, const char *url)
{
	if (!authorised(h, c, url))
		return send_error(c, 401, "missing or wrong bearer token");
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return get_page(c);
	if (strcmp(url, "/favicon.ico") == 0)
		return get_favicon(c);
	if (strcmp(url, "/healthz") == 0)
		return get_healthz(h, c);
	if (strcmp(url, "/metrics") == 0)
		return get_metrics(h, c);
	if (strcmp(url, "/status") == 0)
		return get_status(h, c);
	if (strcmp(url, "/events") == 0)
		return get_events(h, c);
	if (strcmp(url, "/jobs") == 0)
		return get_jobs(h, c);
	if (strncmp(url, "/jobs/", 6) == 0)
		return get_job(h, c, url + 6);
	if (strncmp(url, "/thumbnails/", 12) == 0)
		return get_thumbnail(h, c, url + 12);
	return send_error(c, 404, "not found");
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_server *h = cls;
	struct req *r = *con_cls;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->h = h;
		*con_cls = r;
		/* A wrong method says nothing about the data: 405 first.
		 * These answers come before the body is read, and MHD closes
		 * the connection after them: the body is never taken. */
		if (strcmp(url, "/upload") == 0 && strcmp(method, "POST") != 0)
			return send_error(c, 405, "POST only");
		if (strcmp(url, "/upload") != 0 && !get)
			return send_error(c, 405, "GET only");
		if (get) {
			r->get = true;
			return MHD_YES;		/* answered below */
		}
		if (!authorised(h, c, url))
			return send_error(c, 401, "missing or wrong bearer token");
		return upload_start(h, r, c);
	}
	if (r->get) {
		/* A GET's body, if any, is dropped unread: the answer goes
		 * now, early, and the connection closes after it. */
		*upload_data_size = 0;
		if (r->answered)
			return MHD_YES;
		r->answered = true;
		return get_route(h, c, url);
	}
	if (!r->counted)
		return MHD_YES;	/* an answer is queued; the body is dropped */
	if (*upload_data_size > 0) {
		upload_body(h, r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return upload_finish(r, c);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *h = cls;
	struct req *r = *con_cls;
	struct conn *k;
	int i;

	(void)toe;
	if ((k = conn_of(c)) != NULL) {
		/* A kept-alive connection's next request (or its idle wait)
		 * gets a whole deadline of its own. */
		k->upload = NULL;
		k->start_ms = uv_now(h->loop);
	}
	if (r == NULL)
		return;
	*con_cls = NULL;
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	/* Whatever was not renamed into place is an unfinished upload. */
	for (i = 0; i < r->nfiles; i++)
		upfile_discard(&r->files[i]);
	if (r->counted)
		h->uploads--;
	free(r);
}

/* ---- start and stop ------------------------------------------------- */

/* The listening socket, made here rather than by MHD so that it never
 * has SO_REUSEPORT (with it a second daemon on the port silently takes
 * half of the uploads) and so that bind's own errno reaches the caller:
 * EADDRINUSE becomes exit 75.  SO_REUSEADDR only lets a restart bind
 * over its predecessor's TIME_WAIT sockets.  The socket or -errno. */
static int
listen_socket(const struct sockaddr_storage *ss)
{
	socklen_t len = ss->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd, rc, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* How many connections the descriptor limit allows: each may hold two
 * (its socket, and a thumbnail being sent or an upload being written),
 * after a reserve for everything else, so that a flood of clients can
 * never keep a worker from being respawned or a folder from being
 * walked.  0 when fewer than CONN_MIN fit. */
static int
conn_budget(const struct config *cfg, uint64_t *nofile, uint64_t *reserve)
{
	struct rlimit rl;
	uint64_t n, cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 1024;
	n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576 ? 1048576 :
	    (uint64_t)rl.rlim_cur;
	*nofile = n;
	*reserve = FD_RESERVE + FD_PER_WORKER * (uint64_t)cfg->workers;
	cap = n > *reserve ? (n - *reserve) / 2 : 0;
	if (cap < CONN_MIN)
		return 0;
	if (cfg->http_max_connections == 0 && cap > CONN_AUTO_MAX)
		cap = CONN_AUTO_MAX;
	else if (cfg->http_max_connections > 0 &&
	    (uint64_t)cfg->http_max_connections < cap)
		cap = (uint64_t)cfg->http_max_connections;
	return (int)cap;
}

int
http_start(struct http_server **hp, uv_loop_t *loop,
    const struct http_opts *opts, const struct http_hooks *hooks, void *ud,
    char *err, size_t errlen)
{
	const struct config *cfg = opts->cfg;
	struct logger *lg = opts->lg;
	struct http_server *h;
	const union MHD_DaemonInfo *di;
	struct sockaddr_storage ss;
	struct json_buf *j;
	uint64_t nofile, reserve;
	char host[64];
	int port, rc, lfd, maxc;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_NO_LISTEN_SOCKET;

	*hp = NULL;
	if (httputil_parse_listen(cfg->http_listen, host, sizeof(host),
	    &port) < 0) {
		snprintf(err, errlen, "HTTP_LISTEN %s is not an address:port",
		    cfg->http_listen);
		return -EINVAL;
	}
	memset(&ss, 0, sizeof(ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &s4->sin_addr);
	}
	if ((maxc = conn_budget(cfg, &nofile, &reserve)) == 0) {
		snprintf(err, errlen, "HTTP: RLIMIT_NOFILE %llu leaves too few "
		    "descriptors for HTTP connections after %llu kept for the "
		    "daemon (raise it to at least %llu: ulimit -n, or "
		    "LimitNOFILE= in the unit)", (unsigned long long)nofile,
		    (unsigned long long)reserve,
		    (unsigned long long)(reserve + 2 * CONN_MIN));
		return -EMFILE;
	}
	if ((lfd = listen_socket(&ss)) < 0) {
		if (lfd == -EADDRINUSE)
			snprintf(err, errlen, "HTTP_LISTEN %s: port %d is "
			    "already in use (another thumbwatch, or another "
			    "server, listens there)", cfg->http_listen, port);
		else
			snprintf(err, errlen, "HTTP_LISTEN %s: cannot listen: "
			    "%s", cfg->http_listen, strerror(-lfd));
		return lfd;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "HTTP: out of memory");
		close(lfd);
		return -ENOMEM;
	}
	h->loop = loop;
	h->cfg = cfg;
	snprintf(h->in_root, sizeof(h->in_root), "%s", opts->in_root);
	snprintf(h->out_root, sizeof(h->out_root), "%s", opts->out_root);
	h->lg = lg;
	h->hooks = *hooks;
	h->ud = ud;
	h->max_conns = maxc;
	h->max_per_client = cfg->http_max_per_client < maxc ?
	    cfg->http_max_per_client : maxc;
	h->lfd = lfd;
	/* MHD closes a connection over the per-address cap at once (the
	 * total one is accept_cb's, and MHD's too as a backstop).  Its
	 * idle timeout ends silent connections; sweep_cb the slow ones. */
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, h,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)h->max_conns,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)h->max_per_client,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
	    MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)cfg->http_request_timeout_s,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_conn, h,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_END);
	if (h->mhd == NULL) {
		rc = errno && errno != EADDRINUSE ? -errno : -EIO;
		snprintf(err, errlen, "HTTP_LISTEN %s: cannot start the HTTP "
		    "server: %s", cfg->http_listen, strerror(-rc));
		close(lfd);
		free(h);
		return rc;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || uv_poll_init(loop, &h->poll, di->epoll_fd) < 0 ||
	    uv_poll_init(loop, &h->lpoll, lfd) < 0) {
		snprintf(err, errlen, "HTTP: cannot watch libmicrohttpd's "
		    "epoll fd or the listening socket");
		MHD_stop_daemon(h->mhd);
		close(lfd);
		free(h);
		return -EIO;
	}
	uv_timer_init(loop, &h->timer);
	uv_timer_init(loop, &h->sweep);
	h->poll.data = h->timer.data = h->sweep.data = h->lpoll.data = h;
	h->open_handles = 4;
	uv_poll_start(&h->poll, UV_READABLE, mhd_poll_cb);
	accept_pause(h, false);
	uv_timer_start(&h->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
	schedule(h);
	if ((j = log_begin(lg, LOG_INFO, "http_limits")) != NULL) {
		json_int(j, "max_connections", h->max_conns);
		json_int(j, "max_per_client", h->max_per_client);
		json_int(j, "nofile", (int64_t)nofile);
		json_int(j, "fd_reserve", (int64_t)reserve);
		json_int(j, "request_timeout_s", cfg->http_request_timeout_s);
		json_int(j, "min_upload_rate", cfg->http_min_upload_rate);
		log_commit(lg);
	}
	*hp = h;
	return 0;
}

static void
closed_cb(uv_handle_t *hd)
{
	struct http_server *h = hd->data;
	void (*done)(void *) = h->done;
	void *done_ud = h->done_ud;

	if (--h->open_handles > 0)
		return;
	jobs_free(h);
	free(h);
	if (done)
		done(done_ud);
}

void
http_stop(struct http_server *h, void (*done)(void *ud), void *ud)
{
	if (h == NULL) {
		if (done)
			done(ud);
		return;
	}
	if (h->stopping)
		return;
	h->done = done;
	h->done_ud = ud;
	/* Suspended streams end at the next read; the daemon's stop closes
	 * every connection (and the request callbacks unlink temps). */
	sse_close_all(h);
	MHD_run(h->mhd);
	h->stopping = true;
	uv_poll_stop(&h->poll);
	uv_timer_stop(&h->timer);
	uv_timer_stop(&h->sweep);
	uv_poll_stop(&h->lpoll);
	uv_close((uv_handle_t *)&h->poll, closed_cb);
	uv_close((uv_handle_t *)&h->timer, closed_cb);
	uv_close((uv_handle_t *)&h->sweep, closed_cb);
	uv_close((uv_handle_t *)&h->lpoll, closed_cb);
	MHD_stop_daemon(h->mhd);
	h->mhd = NULL;
	close(h->lfd);		/* ours: MHD_USE_NO_LISTEN_SOCKET */
}
