/*
 * control: the control socket's line protocol, shared by both ends: the
 * daemon's server (control_server.h, on the supervisor's loop) and the
 * command line's blocking client (src/cli/control_client.h).  Pure.
 *
 * Each connection carries exactly one exchange: the client sends one
 * request line (at most CONTROL_LINE_MAX bytes, ended by '\n' or by
 * closing its write side), the server answers one line of JSON and closes.
 *
 * Request lines: words separated by spaces; in arguments the bytes '%',
 * space and the control characters are written %XX (hex), so any path
 * fits on one line:
 *     status
 *     retry-failed
 *     reprocess /srv/in/trip/IMG%201.jpg other.png
 * A reprocess path is absolute (the client makes paths that exist from its
 * working directory absolute) or relative to INPUT_DIR.
 *
 * Responses: one JSON object per line, always with "ok" (true/false) and
 * "text" (the same answer rendered for people, so the client needs no
 * JSON model: `thumbwatch status` prints "text", `status --json` the
 * line); failures also carry "error".  Field by field:
 *  - status: command, version, pid, mode, state (starting|running|
 *    draining), started (RFC 3339), uptime_s, input_dir, output_dir,
 *    log_file, backend, watched_dirs, queued, in_flight, workers,
 *    workers_busy, workers_idle, worker_restarts, done, failed, skipped,
 *    ignored (names whose extension is not in EXTENSIONS), deleted,
 *    moved, bytes_out, last_minute {done, failed, per_s},
 *    recent_failures [{ts, file, error}] (newest first), text;
 *  - reprocess: command, queued, errors, results [{path, ok, message}],
 *    text; ok is false when any path was not queued;
 *  - retry-failed: command, queued, text.
 *
 * This module owns the protocol and the renderings (JSON and text) of
 * status and of errors; the server renders reprocess and retry-failed as
 * it runs them.
 */
#ifndef THUMBWATCH_CONTROL_H
#define THUMBWATCH_CONTROL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "safedir.h"

struct cluster_stats;
struct json_buf;
struct sockaddr_un;

#define CONTROL_LINE_MAX	65536	/* longest request line, bytes */
#define CONTROL_RECENT_MAX	10	/* failures kept for status */
#define CONTROL_SOCKET_NAME	"thumbwatch.sock"
#define CONTROL_PIDFILE_NAME	"thumbwatch.pid"

/* ---- requests ---------------------------------------------------------- */

enum control_cmd { CONTROL_STATUS, CONTROL_REPROCESS, CONTROL_RETRY_FAILED };

struct control_request {
	enum control_cmd cmd;
	size_t nargs;
	char **args;		/* decoded, NUL-terminated (owned) */
};

/* Parses one request line of len bytes (without its '\n'; a trailing '\r'
 * is ignored).  0, or -EINVAL with a one-line reason in err (unknown
 * command, arguments where none are taken, reprocess without a path, a bad
 * %XX escape, an encoded NUL, a raw control character), or -ENOMEM.  On
 * success req owns memory: control_request_free(). */
int control_parse_request(const char *line, size_t len,
    struct control_request *req, char *err, size_t errlen);
void control_request_free(struct control_request *req);

/* Builds the request line for cmd ("status", "reprocess", "retry-failed")
 * and its arguments, %XX-encoded, ending in '\n', into *line (malloc'd).
 * With absolute, an argument naming an existing file from the current
 * working directory is sent as its realpath (the daemon's working
 * directory may be another).  0, -EINVAL (unknown command, wrong number
 * of arguments), -E2BIG (longer than CONTROL_LINE_MAX) or -ENOMEM. */
int control_format_request(const char *cmd, char *const *args,
    size_t nargs, bool absolute, char **line);

/* Finds "ok", "text" and "error" at the top level of a response line.
 * *text and *error are malloc'd, unescaped (NULL when absent).  0, or
 * -EBADMSG when the line is not a JSON object with a boolean "ok". */
int control_parse_response(const char *resp, size_t len, bool *ok,
    char **text, char **error);

/* RUNTIME_DIR/thumbwatch.sock. 0 or -ENAMETOOLONG. */
int control_socket_path(char *out, size_t cap, const char *runtime_dir);

/* path as a Unix socket address.  0, or -ENAMETOOLONG when it does not
 * fit in sun_path (libuv would cut it silently). */
int control_socket_addr(struct sockaddr_un *sa, const char *path);

/* safedir_check_parent() on the socket's folder, named RUNTIME_DIR in
 * err: its owner's rule for the server, the client's for the client. */
int control_socket_dir_check(const char *path, enum safedir_rule rule,
    char *err, size_t errlen);

/* ---- what status reports (helpers the daemon feeds) -------------------- */

/* The last CONTROL_RECENT_MAX failures, oldest overwritten first. */
struct control_recent {
	struct {
		int64_t ts_ms;		/* wall clock */
		char file[PATH_MAX];
		char error[512];
	} e[CONTROL_RECENT_MAX];
	unsigned next;			/* slot written next */
	unsigned n;			/* slots in use */
};

void control_recent_add(struct control_recent *r, int64_t ts_ms,
    const char *file, const char *error);

/* Events per second over the last minute: 60 one-second buckets. */
struct control_rate {
	uint64_t sec[60];
	uint64_t count[60];
};

void control_rate_add(struct control_rate *r, uint64_t now_ms, uint64_t n);
/* Sum over the 60 seconds ending at now_ms. */
uint64_t control_rate_sum(const struct control_rate *r, uint64_t now_ms);

/* Filled by the status hook (control_server.h); strings must stay valid
 * until it returns.  Zeroed before the call. */
struct control_status {
	const char *version;
	long pid;
	const char *mode;		/* "run" */
	bool starting;			/* first scan not finished */
	bool draining;
	int64_t started_ms;		/* wall clock, ms since the epoch */
	const char *input_dir, *output_dir, *log_file, *backend;
	uint64_t watched_dirs;
	uint64_t queued, in_flight;
	int workers, workers_busy, workers_idle;
	uint64_t worker_restarts;
	uint64_t done, failed, skipped, ignored, deleted, moved, bytes_out;
	uint64_t done_last_min, failed_last_min;
	const struct control_recent *recent;	/* may be NULL */
	const struct cluster_stats *cluster;	/* NULL: local queue */
};

/* ---- rendering (the server's answers) ---------------------------------- */

/* The status response line into o, "text" included. */
void control_render_status(struct json_buf *o,
    const struct control_status *st);
/* {"ok":false,"error":msg,"text":msg + '\n'} and '\n'. */
void control_render_error(struct json_buf *o, const char *msg);
/* Ends the object open in o: "text" (t's contents) last, '}' and '\n'. */
void control_finish_response(struct json_buf *o, struct json_buf *t);

#endif
