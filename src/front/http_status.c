/*
 * http_status: the daemon's figures, as the hooks' stats give them:
 * GET /status (and the "status" event's line), GET /healthz for a load
 * balancer and GET /metrics for Prometheus.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http_int.h"
#include "httputil.h"
#include "json.h"

enum MHD_Result
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
int
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

enum MHD_Result
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

enum MHD_Result
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
