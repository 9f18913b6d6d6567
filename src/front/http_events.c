/*
 * http_events: GET /events, a server-sent event stream per reader: the
 * log records the daemon publishes (http_publish) and "status" events
 * (the figures of GET /status when they change).  A reader waits
 * suspended when there is nothing to say; one that falls behind is
 * dropped (SSE_MAX_BUF); http.c's sweep calls sse_sweep, which sends
 * keep-alives and drops readers that stopped reading.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "http_int.h"
#include "httputil.h"

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

enum MHD_Result
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

/* From http.c's sweep, every SWEEP_MS: readers that stopped draining
 * are dropped, quiet ones get a keep-alive, and a "status" event goes
 * out when one is due.  Whether MHD has something to do (kick). */
bool
sse_sweep(struct http_server *h, uint64_t now)
{
	uint64_t base = (uint64_t)h->cfg->http_request_timeout_s * 1000;
	struct sse *s;
	bool any = false;

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
	return any;
}

/* From http_stop, before MHD's last run: every stream ends at its next
 * read. */
void
sse_close_all(struct http_server *h)
{
	struct sse *s;

	for (s = h->sse; s; s = s->next) {
		s->closed = true;
		if (s->suspended) {
			s->suspended = false;
			sse_resume(s);
		}
	}
}
