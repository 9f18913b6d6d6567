/*
 * http_events: GET /events, a server-sent event stream per reader: the
 * log records the daemon publishes (http_publish) and "status" events
 * (the figures of GET /status when they change).  A reader waits
 * suspended when there is nothing to say; one that falls behind is
 * dropped (SSE_MAX_BUF).  The sweep in http.c sends keep-alives and
 * drops readers that stopped reading.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "http_int.h"
#include "httputil.h"

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

void
sse_resume(struct sse *s)
{
	MHD_resume_connection(s->conn);
	if (s->h->in_run)
		s->h->resumed = true;
}

/* A reader that fell behind: its buffer goes now, its socket is shut so
 * MHD closes it at once rather than when the client reads again. */
void
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
void
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
