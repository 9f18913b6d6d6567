/*
 * control: the control socket of a running daemon, both ends.
 *
 * Server: a Unix stream socket (RUNTIME_DIR/thumbwatch.sock, mode 0600 in
 * a folder created 0700, so only the daemon's user and root can talk to
 * it) served from the supervisor's libuv loop.  Each connection carries
 * exactly one exchange: the client sends one request line (at most
 * CONTROL_LINE_MAX bytes, ended by '\n' or by closing its write side), the
 * server answers one line of JSON and closes.  Reading is asynchronous and
 * bounded (a fixed buffer per client, a deadline per client, a cap on
 * clients), so a slow, silent or hostile client never blocks the loop or
 * grows memory.
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
 *    ignored (names whose extension is not in EXTENSIONS), deleted, moved, bytes_out, last_minute {done, failed, per_s},
 *    recent_failures [{ts, file, error}] (newest first), text;
 *  - reprocess: command, queued, errors, results [{path, ok, message}],
 *    text; ok is false when any path was not queued;
 *  - retry-failed: command, queued, text.
 *
 * The daemon is reached through struct control_callbacks; this module owns
 * the protocol and every rendering (JSON and text) of what it returns.
 */
#ifndef THUMBWATCH_CONTROL_H
#define THUMBWATCH_CONTROL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "cluster.h"

#define CONTROL_LINE_MAX	65536	/* longest request line, bytes */
#define CONTROL_RECENT_MAX	10	/* failures kept for status */
#define CONTROL_MAX_CLIENTS	64	/* connections served at once */
#define CONTROL_TIMEOUT_MS	10000	/* ms for a client's request line */
#define CONTROL_SOCKET_NAME	"thumbwatch.sock"
#define CONTROL_PIDFILE_NAME	"thumbwatch.pid"

/* ---- requests (pure) --------------------------------------------------- */

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

/* ---- what status reports (pure helpers the daemon feeds) --------------- */

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

/* Filled by the status callback; strings must stay valid until it
 * returns.  Zeroed before the call. */
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

/* ---- server (loop-facing) ---------------------------------------------- */

struct control_callbacks {
	void (*status)(void *ud, struct control_status *st);
	/* Queues path (as sent: absolute, or relative to INPUT_DIR) to be
	 * made again even when its thumbnails are up to date.  0, or -errno
	 * with a one-line reason in msg ("not in INPUT_DIR", "no such
	 * file"...). */
	int (*reprocess)(void *ud, const char *path, char *msg,
	    size_t msglen);
	/* Queues every file remembered as failed; *count says how many.
	 * 0, or -errno with a reason in msg. */
	int (*retry_failed)(void *ud, size_t *count, char *msg,
	    size_t msglen);
};

struct control_server;

/* Creates the folder of path (missing parts 0700), removes a stale socket
 * left by a dead daemon (one nobody accepts on), refuses one a live
 * process serves (-EADDRINUSE) or a path that is not a socket (-EEXIST),
 * binds with mode 0600 and listens on loop.  0 or -errno with a message in
 * err; on error no handle is left open. */
int control_start(struct control_server **sp, uv_loop_t *loop,
    const char *path, const struct control_callbacks *cb, void *ud,
    char *err, size_t errlen);

/* Deadline for a client's request line (default CONTROL_TIMEOUT_MS). */
void control_set_timeout(struct control_server *s, int timeout_ms);

/* Connections being served now (tests). */
size_t control_clients(const struct control_server *s);

/* Stops listening, drops every client, unlinks the socket (if it is still
 * ours).  Call it before closing the loop's other handles with uv_walk:
 * the handles close through this module's callbacks, which free s once
 * the loop has run them.  NULL is a no-op. */
void control_stop(struct control_server *s);

/* ---- client (blocking, for the command line) --------------------------- */

/* Sends request (a line from control_format_request; a missing '\n' is
 * added) to the daemon listening on sock_path and writes the answer to
 * out: the raw JSON line with json, else its "text".  Messages about the
 * connection itself go to stderr.  Returns a sysexits(3) status:
 *   0   the daemon answered ok
 *   1   it answered, but not ok (e.g. a path it could not queue)
 *   69  EX_UNAVAILABLE: no daemon listens on sock_path
 *   75  EX_TEMPFAIL: it accepted but did not answer in time
 *   76  EX_PROTOCOL: the answer was not a response line
 *   77  EX_NOPERM: the socket is someone else's (owner only)
 *   71  EX_OSERR: a local system call failed */
int control_client(const char *sock_path, const char *request, FILE *out,
    bool json);

#endif
