/*
 * http: the optional HTTP front door (see http.h).
 *
 * libmicrohttpd runs without threads (MHD_USE_EPOLL, no internal polling):
 * its epoll fd sits on a uv_poll_t and MHD_run is called when it is
 * readable or when MHD_get_timeout says so.  Nothing here blocks on a
 * client: bodies arrive in pieces and are written as they come.  An upload
 * goes to INPUT_DIR/.upload-XXXXXX.part (a temp name the watcher ignores)
 * and is renamed to its final name only when the whole request is in; a
 * request that ends any other way unlinks its temps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "beneath.h"
#include "fsutil.h"
#include "http.h"
#include "http_index.h"
#include "httputil.h"
#include "json.h"
#include "pathmap.h"

#define JOBS_MAX	10000
#define FILES_MAX	64	/* files in one multipart request */
/* What a reader may fall behind by before it is dropped: a live page
 * drains each event as it comes, and this bounds what a reader that
 * never reads costs (with the block, the pool and its socket buffer). */
#define SSE_MAX_BUF	(64 * 1024)
#define SSE_BLOCK	4096		/* bytes handed to MHD per read */
#define SSE_SNDBUF	16384		/* kernel send buffer of a stream */
#define SSE_KEEPALIVE_MS 15000
/* The page's live panel reads "status" events on /events (the figures of
 * GET /status), rather than polling /status every 2 s and counting on
 * the client: the daemon's counts also hold files that never came
 * through this page (dropped into INPUT_DIR, another browser), one
 * stream gives the page everything it shows, and a reader that
 * reconnects gets a fresh snapshot with its greeting instead of racing a
 * separate fetch.  Cost: while a reader is connected, one stats call per
 * sweep that is due and one ~200-byte record per change, at most every
 * STATUS_MIN_MS after an upload or an outcome, else looked at every
 * STATUS_EVERY_MS (a file dropped into INPUT_DIR moves the queue without
 * passing here); nothing when nothing changed or no one reads.  A reader
 * that stops reading is dropped as for any event (SSE_MAX_BUF). */
#define STATUS_MIN_MS	250
#define STATUS_EVERY_MS	2000
#define STATUS_LEN	384
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

enum job_state { J_QUEUED, J_PROCESSING, J_DONE, J_FAILED, J_SKIPPED };
static const char *const state_names[] = { "queued", "processing", "done",
    "failed", "skipped" };

struct job {
	uint64_t id;		/* 0: free slot */
	char *rel;
	enum job_state state;
	char *reason;
	int64_t ms;
};

struct sse {
	struct sse *next;
	struct http_server *h;
	struct MHD_Connection *conn;
	int fd;
	struct strbuf buf;
	size_t off;
	uint64_t drained_ms;		/* last time the reader took bytes */
	uint64_t wrote_ms;		/* last time it was given bytes */
	bool suspended;
	bool closed;
};

struct req;

/* One accepted socket (MHD_OPTION_NOTIFY_CONNECTION), for the deadlines
 * MHD's idle timeout does not give: a request trickled a byte at a time
 * stays "active" forever. */
struct conn {
	struct conn *next, **prevp;
	struct MHD_Connection *mc;
	int fd;
	uint64_t start_ms;		/* this request's (or idle wait's) start */
	struct req *upload;		/* an upload being received */
	bool streaming;			/* an /events stream: no deadline */
	bool cut;
};

struct http_server {
	uv_loop_t *loop;
	const struct config *cfg;
	char in_root[PATH_MAX];
	char out_root[PATH_MAX];
	struct logger *lg;
	struct http_hooks hooks;
	void *ud;
	void (*done)(void *);		/* http_stop's */
	void *done_ud;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int open_handles;
	bool stopping;

	struct job jobs[JOBS_MAX];	/* slot = id % JOBS_MAX */
	uint64_t next_id;
	int uploads;			/* requests writing files now */
	uint64_t n_uploads, bytes_in;
	struct histogram hist;
	struct sse *sse;

	uv_timer_t sweep;
	uv_poll_t lpoll;		/* the listening socket */
	int lfd;
	bool accepting;
	struct conn *conns;
	int nconns, max_conns, max_per_client;
	uint64_t n_timed_out, n_sse_dropped, reported_ms, reported_cut;

	char status_last[STATUS_LEN];	/* the last "status" event sent */
	size_t status_len;
	uint64_t status_ms;
	bool status_dirty;		/* an event since: look again soon */
	bool in_run, resumed;		/* see mhd_run */
};

struct upfile {
	int fd;
	char tmp[PATH_MAX];
	char raw[256];			/* the client's name, for errors */
	char name[256];			/* sanitised client name */
	unsigned char head[HTTPUTIL_SNIFF_LEN];
	size_t headlen;
	bool sniffed;
	const char *type;		/* sniffed: "jpg", ... */
	int64_t bytes;
	/* after the rename */
	char stored[NAME_MAX + 1];
	uint64_t id;
	/* This file refused on its own (415, or 500 when it could not be
	 * stored): the other files of its request still are. */
	int status;
	char reason[160];
};

struct req {
	struct http_server *h;
	bool upload, counted, raw;
	bool get, answered;		/* a GET (or HEAD), answered */
	struct MHD_PostProcessor *pp;
	int status;			/* an error to answer, or 0 */
	char error[256];
	uint64_t total;
	struct upfile files[FILES_MAX];
	int nfiles;
	bool cur_open;			/* files[nfiles - 1] is being written */
	char client[64];
};

/* ---- jobs ---------------------------------------------------------- */

static struct job *
job_by_rel(struct http_server *h, const char *rel)
{
	uint64_t id;

	/* Newest first: a name uploaded again is its latest job. */
	for (id = h->next_id; id > 0 && id + JOBS_MAX > h->next_id; id--) {
		struct job *j = &h->jobs[id % JOBS_MAX];
		if (j->id == id && strcmp(j->rel, rel) == 0)
			return j;
	}
	return NULL;
}

static struct job *
job_by_id(struct http_server *h, uint64_t id)
{
	struct job *j = &h->jobs[id % JOBS_MAX];

	return id > 0 && j->id == id ? j : NULL;
}

static uint64_t
job_new(struct http_server *h, const char *rel)
{
	uint64_t id = ++h->next_id;
	struct job *j = &h->jobs[id % JOBS_MAX];

	free(j->rel);
	free(j->reason);
	memset(j, 0, sizeof(*j));
	if ((j->rel = strdup(rel)) == NULL)
		return 0;
	j->id = id;
	j->state = J_QUEUED;
	return id;
}

static void
job_set(struct http_server *h, const char *rel, enum job_state st,
    const char *reason, int64_t ms)
{
	struct job *j;

	if (h == NULL || (j = job_by_rel(h, rel)) == NULL)
		return;
	j->state = st;
	j->ms = ms;
	free(j->reason);
	j->reason = reason ? strdup(reason) : NULL;
}

void
http_job_queued(struct http_server *h, const char *rel)
{
	job_set(h, rel, J_QUEUED, NULL, 0);
}

void
http_job_processing(struct http_server *h, const char *rel)
{
	job_set(h, rel, J_PROCESSING, NULL, 0);
}

void
http_job_done(struct http_server *h, const char *rel,
    const char *const *outs, size_t n, int64_t ms)
{
	(void)outs;
	(void)n;
	if (h == NULL)
		return;
	histogram_observe(&h->hist, ms);
	job_set(h, rel, J_DONE, NULL, ms);
}

void
http_job_failed(struct http_server *h, const char *rel, const char *reason)
{
	job_set(h, rel, J_FAILED, reason, 0);
}

void
http_job_skipped(struct http_server *h, const char *rel, const char *reason)
{
	job_set(h, rel, J_SKIPPED, reason, 0);
}

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

static void kick(struct http_server *h);

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

static void
kick(struct http_server *h)
{
	if (!h->stopping)
		uv_timer_start(&h->timer, mhd_timer_cb, 0, 0);
}

/* ---- connections and their deadlines ------------------------------- */

static struct conn *
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

static void sse_drop(struct sse *s);
static void sse_resume(struct sse *s);
static void status_publish(struct http_server *h);

/* Every SWEEP_MS: requests past their deadline are cut, /events readers
 * that stopped draining are dropped, quiet ones get a keep-alive. */
static void
sweep_cb(uv_timer_t *t)
{
	struct http_server *h = t->data;
	const struct config *cfg = h->cfg;
	uint64_t now = uv_now(h->loop), base, limit, got, shed;
	struct conn *k;
	struct sse *s;
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
	for (s = h->sse; s; s = s->next) {
		if (s->closed)
			continue;
		if (s->off < s->buf.len) {
			if (now - s->drained_ms > base) {
				sse_drop(s);
				any = true;
			}
			continue;
		}
		if (now - s->wrote_ms < SSE_KEEPALIVE_MS)
			continue;
		/* Also finds readers that went away without a FIN. */
		strbuf_printf(&s->buf, ": keep-alive\n\n");
		s->wrote_ms = s->drained_ms = now;
		if (s->suspended) {
			s->suspended = false;
			sse_resume(s);
		}
		any = true;
	}
	for (s = h->sse; s && s->closed; s = s->next)
		;
	if (s != NULL && (now - h->status_ms >= STATUS_EVERY_MS ||
	    (h->status_dirty && now - h->status_ms >= STATUS_MIN_MS)))
		status_publish(h);
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

static enum MHD_Result
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
static enum MHD_Result
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

static enum MHD_Result
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

/* ---- uploads ------------------------------------------------------- */

static void
upfile_discard(struct upfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp[0])
		unlink(f->tmp);
	f->tmp[0] = '\0';
}

static void
req_fail(struct req *r, int status, const char *msg)
{
	int i;

	if (r->status)
		return;
	r->status = status;
	snprintf(r->error, sizeof(r->error), "%s", msg);
	for (i = 0; i < r->nfiles; i++)
		upfile_discard(&r->files[i]);
	r->cur_open = false;
}

static void
upfile_begin(struct req *r, const char *name)
{
	struct upfile *f;
	int fd;

	if (r->nfiles >= FILES_MAX) {
		req_fail(r, 413, "too many files in one request");
		return;
	}
	f = &r->files[r->nfiles++];
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	snprintf(f->raw, sizeof(f->raw), "%s", name ? name : "");
	if (httputil_sanitize_name(name ? name : "", f->name,
	    sizeof(f->name)) < 0)
		snprintf(f->name, sizeof(f->name), "upload");
	if (pathmap_join(f->tmp, sizeof(f->tmp), r->h->in_root,
	    ".upload-XXXXXX.part") < 0 ||
	    (fd = mkostemps(f->tmp, 5, O_CLOEXEC)) < 0) {
		f->tmp[0] = '\0';
		req_fail(r, 500, "cannot create a file in INPUT_DIR");
		return;
	}
	fchmod(fd, 0644);
	f->fd = fd;
	r->cur_open = true;
}

/* Refuses one file of a request, not the request: its bytes go (the
 * rest of its part is read and dropped) and the answer names it with
 * its reason, while the files before and after it are stored. */
static void
upfile_fail(struct req *r, struct upfile *f, int status, const char *msg)
{
	if (f->status)
		return;
	f->status = status;
	snprintf(f->reason, sizeof(f->reason), "%s", msg);
	upfile_discard(f);
	if (f == &r->files[r->nfiles - 1])
		r->cur_open = false;
}

static void
upfile_sniff(struct req *r, struct upfile *f)
{
	if (f->sniffed)
		return;
	f->sniffed = true;
	f->type = httputil_sniff(f->head, f->headlen);
	if (!httputil_type_enabled(f->type, r->h->cfg->extensions)) {
		upfile_fail(r, f, 415, f->type ? "image type not enabled "
		    "(EXTENSIONS)" : "not an image thumbwatch accepts "
		    "(jpeg, png, webp, gif, tiff, heif, avif, jxl)");
		return;
	}
	if (fs_write_all(f->fd, f->head, f->headlen) < 0)
		req_fail(r, 500, "cannot write to INPUT_DIR");
}

static void
upfile_data(struct req *r, const char *data, size_t size)
{
	struct upfile *f = &r->files[r->nfiles - 1];
	size_t take;

	if (r->status || !r->cur_open)
		return;
	f->bytes += (int64_t)size;
	if (!f->sniffed) {
		take = sizeof(f->head) - f->headlen;
		if (take > size)
			take = size;
		memcpy(f->head + f->headlen, data, take);
		f->headlen += take;
		data += take;
		size -= take;
		if (f->headlen < sizeof(f->head))
			return;
		upfile_sniff(r, f);
		if (r->status || f->status)
			return;
	}
	if (size > 0 && fs_write_all(f->fd, data, size) < 0)
		req_fail(r, 500, "cannot write to INPUT_DIR");
}

static void
upfile_end(struct req *r)
{
	struct upfile *f;

	if (!r->cur_open || r->status)
		return;
	f = &r->files[r->nfiles - 1];
	r->cur_open = false;
	if (f->bytes == 0) {
		upfile_fail(r, f, 415, "empty file");
		return;
	}
	upfile_sniff(r, f);
	if (r->status || f->status)
		return;
	if (close(f->fd) == -1) {
		f->fd = -1;
		req_fail(r, 500, "cannot write to INPUT_DIR");
		return;
	}
	f->fd = -1;
}

static enum MHD_Result
post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct req *r = cls;
	struct upfile *cur;

	(void)kind;
	(void)key;
	(void)content_type;
	(void)transfer_encoding;
	if (filename == NULL || r->status)
		return MHD_YES;		/* a plain field: nothing to keep */
	cur = r->nfiles > 0 ? &r->files[r->nfiles - 1] : NULL;
	if (httputil_new_part(r->cur_open, cur ? cur->bytes : 0,
	    cur ? cur->raw : NULL, filename, off)) {
		upfile_end(r);
		if (r->status)
			return MHD_YES;
		upfile_begin(r, filename);
	}
	if (size > 0)
		upfile_data(r, data, size);
	return MHD_YES;
}

/* Whether name's stem is free in INPUT_DIR: no file of that stem with an
 * enabled extension (any case), so its thumbnails are its own. */
static bool
stem_free(struct http_server *h, const char *stem)
{
	const char *e, *list = h->cfg->extensions;
	char cand[NAME_MAX + 1], abs[PATH_MAX];
	struct stat sb;
	size_t n, k;
	int v;

	for (e = list; *e; e += n + (e[n] == ',')) {
		n = strcspn(e, ",");
		for (v = 0; v < 2; v++) {
			if (snprintf(cand, sizeof(cand), "%s.%.*s", stem, (int)n,
			    e) >= (int)sizeof(cand))
				continue;
			if (v)
				for (k = strlen(stem) + 1; cand[k]; k++)
					if (cand[k] >= 'a' && cand[k] <= 'z')
						cand[k] = (char)(cand[k] - 32);
			if (pathmap_join(abs, sizeof(abs), h->in_root, cand) == 0 &&
			    lstat(abs, &sb) == 0)
				return false;
		}
	}
	return true;
}

/* Renames f into place under a free name.  0 or -errno. */
static int
upfile_store(struct http_server *h, struct upfile *f)
{
	char stem[NAME_MAX + 1], ext[NAME_MAX + 1], name[NAME_MAX + 1];
	char abs[PATH_MAX];
	int k;

	if (!pathmap_ext_allowed(f->name, h->cfg->extensions)) {
		/* The extension decides how it is processed: give it its
		 * content's. */
		size_t l = strlen(f->name);
		if (l + 1 + strlen(f->type) >= sizeof(f->name))
			f->name[sizeof(f->name) - 2 - strlen(f->type)] = '\0';
		strcat(f->name, ".");
		strcat(f->name, f->type);
	}
	pathmap_split(f->name, stem, sizeof(stem), ext, sizeof(ext));
	for (k = 0; k < 10000; k++) {
		char s2[NAME_MAX + 1];
		if (k == 0)
			snprintf(s2, sizeof(s2), "%s", stem);
		else
			snprintf(s2, sizeof(s2), "%.200s-%d", stem, k);
		if (!stem_free(h, s2))
			continue;
		if (snprintf(name, sizeof(name), "%s.%s", s2, ext) >=
		    (int)sizeof(name) || pathmap_is_temp_name(name) ||
		    pathmap_join(abs, sizeof(abs), h->in_root, name) < 0)
			return -ENAMETOOLONG;
		if (renameat2(AT_FDCWD, f->tmp, AT_FDCWD, abs,
		    RENAME_NOREPLACE) == 0) {
			f->tmp[0] = '\0';
			snprintf(f->stored, sizeof(f->stored), "%s", name);
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static void
client_name(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char a[INET6_ADDRSTRLEN] = "?";

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, a, sizeof(a));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, a, sizeof(a));
	snprintf(out, cap, "%s", a);
}

static void
add_urls(struct http_server *h, struct json_buf *b, const char *rel,
    bool sizes)
{
	char (*outs)[PATH_MAX];
	struct strbuf url;
	struct stat sb;
	int n = 0, i, root = -1;

	outs = calloc(HTTP_MAX_OUTPUTS, PATH_MAX);
	if (outs && h->hooks.outputs)
		n = h->hooks.outputs(h->ud, rel, outs, HTTP_MAX_OUTPUTS);
	/* Sizes as GET /thumbnails would serve them: no symlink followed,
	 * regular files only. */
	if (sizes && n > 0)
		root = beneath_root(h->out_root);
	json_open(b, "thumbnails", '[');
	for (i = 0; i < n; i++) {
		json_open(b, NULL, '{');
		strbuf_init(&url);
		strbuf_add(&url, "/thumbnails/", 12);
		strbuf_url_path(&url, outs[i]);
		if (url.err)
			b->err = url.err;
		else
			json_strn(b, "url", url.buf, url.len);
		strbuf_free(&url);
		if (root >= 0 && beneath_lstat(root, outs[i], &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			json_int(b, "bytes", (int64_t)sb.st_size);
		json_close(b, '}');
	}
	json_close(b, ']');
	if (root >= 0)
		close(root);
	free(outs);
}

/* The client's own name of f, for answers about it. */
static const char *
upfile_label(const struct upfile *f)
{
	return f->raw[0] ? f->raw : f->name;
}

/* Answers per file: 202 when every file was stored, 207 (Multi-Status)
 * when some were and some were refused, and when none was the first
 * refused file's status, its error naming it.  Each entry carries its
 * own http_status; a refused one its client name and reason. */
static enum MHD_Result
upload_finish(struct req *r, struct MHD_Connection *c)
{
	struct http_server *h = r->h;
	struct upfile *bad = NULL;
	struct json_buf b, *j;
	char num[48], msg[sizeof(r->error) + 160];
	int i, rc, nok = 0;

	if (r->pp) {
		MHD_destroy_post_processor(r->pp);
		r->pp = NULL;
	}
	upfile_end(r);
	if (!r->status && r->nfiles == 0)
		req_fail(r, 400, r->raw ? "empty body" : "no file in the form "
		    "(multipart/form-data with a file field)");
	if (r->status)
		return send_error(c, (unsigned)r->status, r->error);
	json_init(&b);
	json_begin(&b);
	json_open(&b, "files", '[');
	for (i = 0; i < r->nfiles; i++) {
		struct upfile *f = &r->files[i];
		json_open(&b, NULL, '{');
		if (!f->status && (rc = upfile_store(h, f)) < 0) {
			upfile_discard(f);
			f->status = 500;
			snprintf(f->reason, sizeof(f->reason), "cannot store "
			    "in INPUT_DIR: %s", strerror(-rc));
		}
		if (f->status) {
			if (bad == NULL)
				bad = f;
			json_str(&b, "name", upfile_label(f));
			json_int(&b, "http_status", f->status);
			json_str(&b, "reason", f->reason);
			json_close(&b, '}');
			continue;
		}
		nok++;
		f->id = job_new(h, f->stored);
		h->n_uploads++;
		if ((j = log_begin(h->lg, LOG_INFO, "upload")) != NULL) {
			json_str(j, "file", f->stored);
			json_int(j, "bytes", f->bytes);
			json_str(j, "client", r->client);
			json_int(j, "id", (int64_t)f->id);
			log_commit(h->lg);
		}
		/* A string: ids outgrow a double in JavaScript. */
		snprintf(num, sizeof(num), "%" PRIu64, f->id);
		json_str(&b, "id", num);
		json_str(&b, "name", f->stored);
		json_int(&b, "http_status", 202);
		json_int(&b, "bytes", f->bytes);
		json_str(&b, "type", f->type);
		snprintf(num, sizeof(num), "/jobs/%" PRIu64, f->id);
		json_str(&b, "status", num);
		add_urls(h, &b, f->stored, false);
		json_close(&b, '}');
	}
	json_close(&b, ']');
	if (bad != NULL && nok == 0) {
		/* Nothing stored: an error as every other, listing the files
		 * too. */
		snprintf(msg, sizeof(msg), "%.150s: %s", upfile_label(bad),
		    bad->reason);
		json_str(&b, "error", msg);
		json_int(&b, "status", bad->status);
	}
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, bad == NULL ? 202 : nok > 0 ? 207 :
	    (unsigned)bad->status, &b);
}

static enum MHD_Result
upload_start(struct http_server *h, struct req *r, struct MHD_Connection *c)
{
	const char *ct, *cl, *name;
	struct conn *k;

	r->upload = true;
	if (h->uploads >= h->cfg->http_max_uploads)
		return send_error(c, 429, "too many uploads at once "
		    "(HTTP_MAX_UPLOADS)");
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Content-Length");
	if (cl && strtoll(cl, NULL, 10) > h->cfg->http_max_upload)
		return send_error(c, 413, "body larger than HTTP_MAX_UPLOAD");
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->pp = MHD_create_post_processor(c, 64 * 1024, post_iter, r);
		if (r->pp == NULL)
			return send_error(c, 400, "malformed multipart body");
	} else if (ct && strncasecmp(ct, "image/", 6) == 0) {
		r->raw = true;
		name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "name");
		upfile_begin(r, name && *name ? name : "upload");
	} else {
		return send_error(c, 415, "send multipart/form-data, or a raw "
		    "body with Content-Type image/* and ?name=");
	}
	client_name(c, r->client, sizeof(r->client));
	h->uploads++;
	r->counted = true;
	if ((k = conn_of(c)) != NULL)
		k->upload = r;		/* its deadline grows with its body */
	return MHD_YES;
}

static enum MHD_Result
upload_body(struct http_server *h, struct req *r, const char *data,
    size_t size)
{
	if (r->status)
		return MHD_YES;		/* read and dropped */
	r->total += size;
	h->bytes_in += size;
	if (r->total > (uint64_t)h->cfg->http_max_upload) {
		req_fail(r, 413, "body larger than HTTP_MAX_UPLOAD");
		return MHD_YES;
	}
	if (r->pp) {
		if (MHD_post_process(r->pp, data, size) != MHD_YES)
			req_fail(r, 400, "malformed multipart body");
	} else {
		upfile_data(r, data, size);
	}
	return MHD_YES;
}

/* ---- read-only endpoints -------------------------------------------- */

static enum MHD_Result
get_job(struct http_server *h, struct MHD_Connection *c, const char *sid)
{
	struct json_buf b;
	struct job *j;
	char *end, num[24];
	uint64_t id;

	errno = 0;
	id = strtoull(sid, &end, 10);
	if (errno || *end || !*sid || (j = job_by_id(h, id)) == NULL)
		return send_error(c, 404, "no such job");
	json_init(&b);
	json_begin(&b);
	snprintf(num, sizeof(num), "%" PRIu64, j->id);
	json_str(&b, "id", num);
	json_str(&b, "name", j->rel);
	json_str(&b, "status", state_names[j->state]);
	if (j->reason)
		json_str(&b, "reason", j->reason);
	if (j->state == J_DONE)
		json_int(&b, "ms", j->ms);
	add_urls(h, &b, j->rel, j->state == J_DONE);
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, 200, &b);
}

#define JOBS_PAGE	50		/* GET /jobs without ?limit= */
#define JOBS_PAGE_MAX	1000

/* A query parameter as a whole decimal number, or def when absent; false
 * when present and not a number (a typo should not read as "all"). */
static bool
query_u64(struct MHD_Connection *c, const char *key, uint64_t def,
    uint64_t *v)
{
	const char *s;
	char *end;

	s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
	*v = def;
	if (s == NULL)
		return true;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* GET /jobs[?limit=N][&before=ID]: the jobs table newest first, a page
 * at a time; "next" is the URL of the page after this one, while older
 * jobs remain. */
static enum MHD_Result
get_jobs(struct http_server *h, struct MHD_Connection *c)
{
	struct json_buf b;
	struct job *j;
	uint64_t limit, before, id, n = 0;
	char num[64];

	if (!query_u64(c, "limit", JOBS_PAGE, &limit) || limit == 0 ||
	    limit > JOBS_PAGE_MAX)
		return send_error(c, 400, "limit: a number from 1 to 1000");
	if (!query_u64(c, "before", UINT64_MAX, &before))
		return send_error(c, 400, "before: a job id");
	json_init(&b);
	json_begin(&b);
	json_open(&b, "jobs", '[');
	id = before == 0 ? 0 : before <= h->next_id ? before - 1 : h->next_id;
	for (; id > 0 && id + JOBS_MAX > h->next_id; id--) {
		if ((j = job_by_id(h, id)) == NULL)
			continue;
		if (n == limit)
			break;
		n++;
		json_open(&b, NULL, '{');
		snprintf(num, sizeof(num), "%" PRIu64, j->id);
		json_str(&b, "id", num);
		json_str(&b, "name", j->rel);
		json_str(&b, "status", state_names[j->state]);
		if (j->reason)
			json_str(&b, "reason", j->reason);
		if (j->state == J_DONE)
			json_int(&b, "ms", j->ms);
		json_close(&b, '}');
	}
	json_close(&b, ']');
	if (n == limit && id > 0 && id + JOBS_MAX > h->next_id) {
		/* id is the newest job not listed. */
		snprintf(num, sizeof(num), "/jobs?limit=%" PRIu64 "&before=%"
		    PRIu64, limit, id + 1);
		json_str(&b, "next", num);
	}
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, 200, &b);
}

/* The browser asks for it on its own, without the token: a tiny icon
 * (an SVG, which browsers take at this name) rather than a 404 or 401
 * in every page's console. */
static enum MHD_Result
get_favicon(struct MHD_Connection *c)
{
	static const char icon[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "viewBox=\"0 0 16 16\"><rect x=\"1\" y=\"3\" width=\"14\" "
	    "height=\"10\" rx=\"2\" fill=\"#2b6cb0\"/><circle cx=\"5\" "
	    "cy=\"7\" r=\"1.5\" fill=\"#fff\"/><path d=\"M3 12l4-4 3 3 "
	    "2-2 2 3z\" fill=\"#fff\"/></svg>\n";
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(icon) - 1,
	    (void *)(uintptr_t)icon, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "image/svg+xml");
	MHD_add_response_header(r, "Cache-Control", "max-age=86400");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static bool
safe_rel(const char *p)
{
	const char *s = p;

	if (!*p)
		return false;
	while (*s) {
		size_t n = strcspn(s, "/");
		if (n == 0 || s[0] == '.')
			return false;	/* "//", "..", dot-files */
		s += n;
		if (*s == '/')
			s++;
		else
			break;
	}
	return p[strlen(p) - 1] != '/';
}

static enum MHD_Result
get_thumbnail(struct http_server *h, struct MHD_Connection *c,
    const char *rel)
{
	char etag[96], lm[64], cr[96];
	const char *inm, *ims, *rh, *ir;
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct stat sb;
	uint64_t off = 0, len;
	int root, fd, rg = 0;

	/* Opened beneath OUTPUT_DIR with no symlink at any level (a dropper
	 * can plant links when OUTPUT_DIR is in reach), non-blocking so a
	 * FIFO or a device never stops the loop in open(), and served only
	 * when it is a regular file. */
	if (!safe_rel(rel) || (root = beneath_root(h->out_root)) < 0)
		return send_error(c, 404, "no such thumbnail");
	fd = beneath_open(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	close(root);
	if (fd < 0)
		return send_error(c, 404, "no such thumbnail");
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return send_error(c, 404, "no such thumbnail");
	}
	httputil_etag(etag, sizeof(etag), (uint64_t)sb.st_ino,
	    (int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec * 1000000000 +
	    sb.st_mtim.tv_nsec);
	httputil_http_date(lm, sizeof(lm), sb.st_mtim.tv_sec);
	inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "If-None-Match");
	ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "If-Modified-Since");
	if ((inm && httputil_etag_match(inm, etag)) || (!inm && ims &&
	    httputil_parse_http_date(ims) != (time_t)-1 &&
	    sb.st_mtim.tv_sec <= httputil_parse_http_date(ims))) {
		close(fd);
		r = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "ETag", etag);
		MHD_add_response_header(r, "Last-Modified", lm);
		ret = MHD_queue_response(c, 304, r);
		MHD_destroy_response(r);
		return ret;
	}
	/* One range (a resumed download, a viewer's seek); several are
	 * answered with the whole file, as RFC 9110 allows.  If-Range with
	 * another validator (the file changed since) also gets it whole. */
	len = (uint64_t)sb.st_size;
	rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	ir = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range");
	if (rh != NULL && (ir == NULL || strcmp(ir, etag) == 0 ||
	    strcmp(ir, lm) == 0))
		rg = httputil_parse_range(rh, (uint64_t)sb.st_size, &off, &len);
	if (rg < 0) {
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%lld", (long long)sb.st_size);
		r = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Range", cr);
		MHD_add_response_header(r, "Accept-Ranges", "bytes");
		ret = MHD_queue_response(c, 416, r);
		MHD_destroy_response(r);
		return ret;
	}
	/* MHD sends len bytes from off itself (sendfile where it can). */
	r = MHD_create_response_from_fd_at_offset64(len, fd, off);
	if (r == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
	    httputil_content_type(rel));
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Last-Modified", lm);
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	if (rg > 0) {
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%lld",
		    off, off + len - 1, (long long)sb.st_size);
		MHD_add_response_header(r, "Content-Range", cr);
	}
	ret = MHD_queue_response(c, rg > 0 ? 206 : 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
get_metrics(struct http_server *h, struct MHD_Connection *c)
{
	struct http_stats st;
	struct strbuf b;
	enum MHD_Result ret;
	char lab[64];
	struct timespec ts;

	memset(&st, 0, sizeof(st));
	h->hooks.stats(h->ud, &st);
	clock_gettime(CLOCK_REALTIME, &ts);
	strbuf_init(&b);
	prom_metric(&b, "thumbwatch_files_total", "counter",
	    "Source files by outcome (one outcome line each).");
	prom_value(&b, "thumbwatch_files_total", "outcome=\"done\"",
	    (double)st.done);
	prom_value(&b, "thumbwatch_files_total", "outcome=\"failed\"",
	    (double)st.failed);
	prom_value(&b, "thumbwatch_files_total", "outcome=\"skipped\"",
	    (double)st.skipped);
	prom_metric(&b, "thumbwatch_ignored_total", "counter",
	    "Names seen that are not processed (EXTENSIONS), each time seen.");
	prom_value(&b, "thumbwatch_ignored_total", NULL, (double)st.ignored);
	prom_metric(&b, "thumbwatch_queue_depth", "gauge",
	    "Files waiting for a worker.");
	prom_value(&b, "thumbwatch_queue_depth", NULL, (double)st.queued);
	prom_metric(&b, "thumbwatch_in_flight", "gauge",
	    "Files held by a worker.");
	prom_value(&b, "thumbwatch_in_flight", NULL, (double)st.in_flight);
	prom_metric(&b, "thumbwatch_workers", "gauge",
	    "Worker processes by state.");
	prom_value(&b, "thumbwatch_workers", "state=\"busy\"",
	    st.workers_busy);
	prom_value(&b, "thumbwatch_workers", "state=\"idle\"",
	    st.workers_idle);
	prom_value(&b, "thumbwatch_workers", "state=\"down\"",
	    st.workers - st.workers_busy - st.workers_idle);
	prom_metric(&b, "thumbwatch_worker_restarts_total", "counter",
	    "Workers replaced after a crash, timeout or early exit.");
	prom_value(&b, "thumbwatch_worker_restarts_total", NULL,
	    (double)st.worker_restarts);
	prom_histogram(&b, "thumbwatch_processing_seconds",
	    "Time a worker spent on one image (done files).", &h->hist);
	prom_metric(&b, "thumbwatch_uploads_total", "counter",
	    "Files stored through POST /upload.");
	prom_value(&b, "thumbwatch_uploads_total", NULL,
	    (double)h->n_uploads);
	prom_metric(&b, "thumbwatch_bytes_in_total", "counter",
	    "Upload body bytes received.");
	prom_value(&b, "thumbwatch_bytes_in_total", NULL, (double)h->bytes_in);
	prom_metric(&b, "thumbwatch_bytes_out_total", "counter",
	    "Thumbnail bytes written.");
	prom_value(&b, "thumbwatch_bytes_out_total", NULL,
	    (double)st.bytes_out);
	prom_metric(&b, "thumbwatch_uptime_seconds", "gauge",
	    "Seconds since the daemon started.");
	prom_value(&b, "thumbwatch_uptime_seconds", NULL,
	    ((double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6 -
	    (double)st.started_ms) / 1000.0);
	if (st.cluster != NULL) {
		const struct cluster_stats *q = st.cluster;
		const struct {
			const char *name, *type, *help;
			double v;
		} m[] = {
			{ "thumbwatch_redis_up", "gauge",
			  "1 while connected to the Redis QUEUE.", q->up },
			{ "thumbwatch_stream_length", "gauge", "Entries in the "
			  "jobs stream (unfinished work).",
			  (double)q->stream_len },
			{ "thumbwatch_stream_pending", "gauge", "Entries "
			  "delivered to a worker node, not acknowledged.",
			  (double)q->pending },
			{ "thumbwatch_stream_consumers", "gauge", "Consumers "
			  "in the group (worker nodes, past and present).",
			  (double)q->consumers },
			{ "thumbwatch_dead_letters", "gauge",
			  "Entries in the dead-letter stream.",
			  (double)q->dead_letters },
			{ "thumbwatch_stream_reclaimed_total", "counter",
			  "Entries this node took over from a silent node.",
			  (double)q->reclaimed },
		};
		size_t i;

		for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			prom_metric(&b, m[i].name, m[i].type, m[i].help);
			prom_value(&b, m[i].name, NULL, m[i].v);
		}
	}
	prom_metric(&b, "thumbwatch_http_connections", "gauge",
	    "Open HTTP connections.");
	prom_value(&b, "thumbwatch_http_connections", NULL, h->nconns);
	prom_metric(&b, "thumbwatch_http_connections_max", "gauge",
	    "HTTP_MAX_CONNECTIONS in force (from RLIMIT_NOFILE when 0).");
	prom_value(&b, "thumbwatch_http_connections_max", NULL, h->max_conns);
	prom_metric(&b, "thumbwatch_http_timeouts_total", "counter",
	    "HTTP connections cut at their request deadline.");
	prom_value(&b, "thumbwatch_http_timeouts_total", NULL,
	    (double)h->n_timed_out);
	prom_metric(&b, "thumbwatch_http_events_dropped_total", "counter",
	    "/events readers dropped for falling behind.");
	prom_value(&b, "thumbwatch_http_events_dropped_total", NULL,
	    (double)h->n_sse_dropped);
	prom_metric(&b, "thumbwatch_build_info", "gauge",
	    "Always 1; the version is a label.");
	snprintf(lab, sizeof(lab), "version=\"%s\"", THUMBWATCH_VERSION);
	prom_value(&b, "thumbwatch_build_info", lab, 1);
	if (b.err) {
		strbuf_free(&b);
		return send_error(c, 500, "out of memory");
	}
	ret = send_buf(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	    b.buf, b.len);
	strbuf_free(&b);
	return ret;
}

/* The figures of GET /status and of the "status" event, into out (one
 * line, no newline); returns its length, or -1 if it did not fit. */
static int
status_format(struct http_server *h, char *out, size_t size)
{
	struct http_stats st;
	int n;

	memset(&st, 0, sizeof(st));
	h->hooks.stats(h->ud, &st);
	n = snprintf(out, size, "{\"done\":%" PRIu64 ",\"failed\":%" PRIu64
	    ",\"skipped\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"in_flight\":%"
	    PRIu64 ",\"workers\":%d,\"workers_busy\":%d,\"workers_idle\":%d,"
	    "\"worker_restarts\":%" PRIu64 ",\"healthy\":%s}", st.done,
	    st.failed, st.skipped, st.queued, st.in_flight, st.workers,
	    st.workers_busy, st.workers_idle, st.worker_restarts,
	    st.healthy ? "true" : "false");
	return n < 0 || (size_t)n >= size ? -1 : n;
}

static enum MHD_Result
get_status(struct http_server *h, struct MHD_Connection *c)
{
	char line[STATUS_LEN];
	struct json_buf b;
	int n;

	if ((n = status_format(h, line, sizeof(line))) < 0)
		return send_error(c, 500, "status too long");
	json_init(&b);
	json_raw(&b, line, (size_t)n);
	json_raw(&b, "\n", 1);
	return send_json(c, 200, &b);
}

static enum MHD_Result
get_healthz(struct http_server *h, struct MHD_Connection *c)
{
	struct http_stats st;

	memset(&st, 0, sizeof(st));
	h->hooks.stats(h->ud, &st);
	if (st.healthy)
		return send_buf(c, 200, "application/json",
		    "{\"status\":\"ok\"}\n", 16);
	return send_buf(c, 503, "application/json",
	    "{\"status\":\"unavailable\"}\n", 25);
}

/* ---- server-sent events --------------------------------------------- */

static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	size_t n;

	(void)pos;
	if (s->closed || s->h->stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (s->off < s->buf.len) {
		n = s->buf.len - s->off;
		if (n > max)
			n = max;
		memcpy(buf, s->buf.buf + s->off, n);
		s->off += n;
		s->drained_ms = uv_now(s->h->loop);
		if (s->off == s->buf.len) {
			s->off = s->buf.len = 0;
		} else if (s->off >= s->buf.len / 2) {
			/* A reader always a little behind must not grow the
			 * buffer without end. */
			memmove(s->buf.buf, s->buf.buf + s->off,
			    s->buf.len - s->off);
			s->buf.len -= s->off;
			s->off = 0;
		}
		return (ssize_t)n;
	}
	/* Nothing to say: wait, without polling, for http_publish. */
	MHD_suspend_connection(s->conn);
	s->suspended = true;
	return 0;
}

static void
sse_resume(struct sse *s)
{
	MHD_resume_connection(s->conn);
	if (s->h->in_run)
		s->h->resumed = true;
}

/* A reader that fell behind: its buffer goes now, its socket is shut so
 * MHD closes it at once rather than when the client reads again. */
static void
sse_drop(struct sse *s)
{
	if (s->closed)
		return;
	s->closed = true;
	strbuf_free(&s->buf);
	s->off = 0;
	s->h->n_sse_dropped++;
	if (s->suspended) {
		s->suspended = false;
		sse_resume(s);
	}
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
}

static void
sse_free(void *cls)
{
	struct sse *s = cls, **pp;

	for (pp = &s->h->sse; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	strbuf_free(&s->buf);
	free(s);
}

static enum MHD_Result
get_events(struct http_server *h, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct conn *k;
	struct sse *s;
	int sndbuf = SSE_SNDBUF, n;
	char line[STATUS_LEN];

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MHD_NO;
	s->h = h;
	s->conn = c;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	s->fd = ci != NULL ? ci->connect_fd : -1;
	/* A small kernel buffer: a reader that stops reading is seen (and
	 * costs the machine) after kilobytes, not megabytes. */
	if (s->fd >= 0)
		setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
	s->drained_ms = s->wrote_ms = uv_now(h->loop);
	strbuf_init(&s->buf);
	strbuf_printf(&s->buf, "retry: 2000\n: thumbwatch events\n\n");
	/* Where things stand now: the page's panel needs no GET /status. */
	if ((n = status_format(h, line, sizeof(line))) >= 0)
		strbuf_printf(&s->buf, "event: status\ndata: %s\n\n", line);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK,
	    sse_read, s, sse_free);
	if (r == NULL) {
		strbuf_free(&s->buf);
		free(s);
		return MHD_NO;
	}
	s->next = h->sse;
	h->sse = s;
	if ((k = conn_of(c)) != NULL)
		k->streaming = true;	/* its own checks, in sweep_cb */
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

void
http_publish(struct http_server *h, const char *event, const char *json,
    size_t len)
{
	struct sse *s;
	bool any = false;
	uint64_t now;

	if (h == NULL || h->stopping)
		return;
	h->status_dirty = true;		/* an upload or an outcome: counts move */
	now = uv_now(h->loop);
	for (s = h->sse; s; s = s->next) {
		if (s->closed)
			continue;
		if (s->buf.len - s->off + len + strlen(event) + 16 >
		    SSE_MAX_BUF) {
			sse_drop(s);		/* fell behind: see SSE_MAX_BUF */
			any = true;
			continue;
		}
		if (s->off == s->buf.len)
			s->drained_ms = now;	/* waiting starts now */
		s->wrote_ms = now;
		strbuf_printf(&s->buf, "event: %s\ndata: ", event);
		strbuf_add(&s->buf, json, len);
		strbuf_add(&s->buf, "\n\n", 2);
		if (s->suspended) {
			s->suspended = false;
			sse_resume(s);
			any = true;
		}
	}
	if (any)
		kick(h);
}

/* A "status" event to every reader, when the figures changed since the
 * last one (see STATUS_MIN_MS). */
static void
status_publish(struct http_server *h)
{
	char line[STATUS_LEN];
	int n;

	n = status_format(h, line, sizeof(line));
	h->status_ms = uv_now(h->loop);
	if (n < 0 || ((size_t)n == h->status_len &&
	    memcmp(line, h->status_last, (size_t)n) == 0)) {
		h->status_dirty = false;
		return;
	}
	memcpy(h->status_last, line, (size_t)n);
	h->status_len = (size_t)n;
	http_publish(h, "status", line, (size_t)n);
	h->status_dirty = false;
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
		return send_buf(c, 200, "text/html; charset=utf-8",
		    (const char *)http_index_html, http_index_html_len);
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
	int i;

	if (--h->open_handles > 0)
		return;
	for (i = 0; i < JOBS_MAX; i++) {
		free(h->jobs[i].rel);
		free(h->jobs[i].reason);
	}
	free(h);
	if (done)
		done(done_ud);
}

void
http_stop(struct http_server *h, void (*done)(void *ud), void *ud)
{
	struct sse *s;

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
	for (s = h->sse; s; s = s->next) {
		s->closed = true;
		if (s->suspended) {
			s->suspended = false;
			sse_resume(s);
		}
	}
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
