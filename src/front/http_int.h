/*
 * http_int.h: private to src/front/http*.c, the HTTP front door (see
 * http.h).  The server's state and what its files share; each file owns
 * one job:
 *   http.c             libmicrohttpd on the libuv loop: start and stop,
 *                      the listener and the connection budget, request
 *                      deadlines, routing, answers
 *   http_upload.c      POST /upload: bodies stored into INPUT_DIR
 *   http_jobs.c        the jobs table (uploads by id); GET /jobs, /jobs/ID
 *   http_events.c      GET /events: server-sent events
 *   http_status.c      GET /status, /healthz, /metrics
 *   http_thumbnails.c  GET /thumbnails/..., and their URLs in answers
 *   http_page.c        the page (GET /) and its /favicon.ico
 */
#ifndef THUMBWATCH_HTTP_INT_H
#define THUMBWATCH_HTTP_INT_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include <microhttpd.h>

#include "http.h"
#include "httputil.h"
#include "json.h"

#define JOBS_MAX	10000
#define FILES_MAX	64	/* files in one multipart request */
#define STATUS_LEN	384

enum job_state { J_QUEUED, J_PROCESSING, J_DONE, J_FAILED, J_SKIPPED };

struct job {
	uint64_t id;		/* 0: free slot */
	char *rel;
	enum job_state state;
	char *reason;
	int64_t ms;
};

struct sse;

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

/* http.c */
void kick(struct http_server *h);
struct conn *conn_of(struct MHD_Connection *c);
enum MHD_Result send_buf(struct MHD_Connection *c, unsigned int status,
    const char *type, const char *body, size_t len);
enum MHD_Result send_json(struct MHD_Connection *c, unsigned int status,
    struct json_buf *b);
enum MHD_Result send_error(struct MHD_Connection *c, unsigned int status,
    const char *msg);

/* http_upload.c */
void upfile_discard(struct upfile *f);
enum MHD_Result upload_start(struct http_server *h, struct req *r,
    struct MHD_Connection *c);
enum MHD_Result upload_body(struct http_server *h, struct req *r,
    const char *data, size_t size);
enum MHD_Result upload_finish(struct req *r, struct MHD_Connection *c);

/* http_jobs.c */
void jobs_free(struct http_server *h);
uint64_t job_new(struct http_server *h, const char *rel);
enum MHD_Result get_job(struct http_server *h, struct MHD_Connection *c,
    const char *sid);
enum MHD_Result get_jobs(struct http_server *h, struct MHD_Connection *c);

/* http_events.c */
bool sse_sweep(struct http_server *h, uint64_t now);
void sse_close_all(struct http_server *h);
enum MHD_Result get_events(struct http_server *h, struct MHD_Connection *c);

/* http_status.c */
int status_format(struct http_server *h, char *out, size_t size);
enum MHD_Result get_status(struct http_server *h, struct MHD_Connection *c);
enum MHD_Result get_healthz(struct http_server *h, struct MHD_Connection *c);
enum MHD_Result get_metrics(struct http_server *h, struct MHD_Connection *c);

/* http_thumbnails.c */
void add_urls(struct http_server *h, struct json_buf *b, const char *rel,
    bool sizes);
enum MHD_Result get_thumbnail(struct http_server *h,
    struct MHD_Connection *c, const char *rel);

/* http_page.c */
enum MHD_Result get_page(struct MHD_Connection *c);
enum MHD_Result get_favicon(struct MHD_Connection *c);

#endif
