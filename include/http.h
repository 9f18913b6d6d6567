/*
 * http: the optional HTTP front door (HTTP_LISTEN), served by
 * libmicrohttpd from the supervisor's libuv loop (its epoll fd on a
 * uv_poll_t, its timeout on a uv_timer_t; no threads).  Uploads are
 * written to a temp name in INPUT_DIR and renamed into place, so the
 * watcher takes them like any other drop.  Owns the jobs table (uploads
 * by id), the SSE clients and the duration histogram; asks the daemon for
 * everything else through its hooks.
 *
 * The shape every front end the supervisor starts has (http, redisq,
 * pool, control), after nginx's modules and OpenBSD's daemons:
 *     int  http_start(struct http_server **hp, uv_loop_t *loop,
 *              const struct http_opts *opts,
 *              const struct http_hooks *hooks, void *ud,
 *              char *err, size_t errlen);
 *     void http_stop(struct http_server *h, void (*done)(void *ud),
 *              void *ud);
 * start: 0 with *hp set, or -errno with err filled (one line, for the
 * administrator) and nothing left behind.  stop: done (may be NULL) runs
 * once every handle is closed and h is freed; stop(NULL, done, ud) calls
 * done at once.
 */
#ifndef THUMBWATCH_HTTP_H
#define THUMBWATCH_HTTP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cluster.h"
#include "config.h"
#include "log.h"

#define HTTP_MAX_OUTPUTS 16

struct http_stats {
	uint64_t done, failed, skipped;
	uint64_t ignored;	/* names seen that are not processed */
	uint64_t queued, in_flight;
	int workers, workers_busy, workers_idle;
	uint64_t worker_restarts, bytes_out;
	uint64_t started_ms;	/* wall clock */
	bool healthy;		/* watcher running and a worker alive */
	const struct cluster_stats *cluster;	/* NULL: local queue */
};

/* What the server asks the daemon (ud is http_start's). */
struct http_hooks {
	void (*stats)(void *ud, struct http_stats *st);
	/* The output paths (relative to OUTPUT_DIR) rel's thumbnails will
	 * have; returns how many (<= max). */
	int (*outputs)(void *ud, const char *rel, char (*out)[PATH_MAX],
	    int max);
};

struct http_opts {
	/* HTTP_*, EXTENSIONS and WORKERS (for the descriptor budget).  Read
	 * live, not copied: a reload changes HTTP_TOKEN, HTTP_PUBLIC,
	 * HTTP_MAX_UPLOAD(S) and HTTP_MIN_UPLOAD_RATE in place and they
	 * apply to the next request, so cfg must outlive the server. */
	const struct config *cfg;
	const char *in_root;	/* INPUT_DIR, resolved (copied) */
	const char *out_root;	/* OUTPUT_DIR, resolved (copied) */
	struct logger *lg;	/* must outlive the server */
};

struct http_server;

/* Starts listening on opts->cfg->http_listen.  0, or -errno with err
 * filled. */
int http_start(struct http_server **hp, uv_loop_t *loop,
    const struct http_opts *opts, const struct http_hooks *hooks, void *ud,
    char *err, size_t errlen);
/* Closes the listener and every connection (uploads being received are
 * cut and their temps removed); done (may be NULL) runs once its handles
 * are closed and h is freed.  NULL is fine: done runs at once.  A second
 * call while stopping does nothing. */
void http_stop(struct http_server *h, void (*done)(void *ud), void *ud);

/* The daemon's outcome hooks: state of the upload whose stored name is
 * rel (ignored for files that did not come through HTTP). */
void http_job_queued(struct http_server *h, const char *rel);
void http_job_processing(struct http_server *h, const char *rel);
void http_job_done(struct http_server *h, const char *rel,
    const char *const *outs, size_t n, int64_t ms);
void http_job_failed(struct http_server *h, const char *rel,
    const char *reason);
void http_job_skipped(struct http_server *h, const char *rel,
    const char *reason);

/* A log record (one JSON object) for the /events subscribers. */
void http_publish(struct http_server *h, const char *event,
    const char *json, size_t len);

#endif
