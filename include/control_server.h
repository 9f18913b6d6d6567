/*
 * control_server: the daemon's end of the control socket (the protocol is
 * control.h's), served from the supervisor's libuv loop.
 *
 * A Unix stream socket (RUNTIME_DIR/thumbwatch.sock, mode 0600 in a folder
 * created 0700, so only the daemon's user and root can talk to it).
 * Reading is asynchronous and bounded (a fixed buffer per client, a
 * deadline per client, a cap on clients), so a slow, silent or hostile
 * client never blocks the loop or grows memory.
 *
 * The shape of every front end: start(loop, opts, hooks, ud) and
 * stop(done); the daemon is reached through struct control_hooks.
 */
#ifndef THUMBWATCH_CONTROL_SERVER_H
#define THUMBWATCH_CONTROL_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "control.h"

#define CONTROL_MAX_CLIENTS	64	/* connections served at once */
#define CONTROL_TIMEOUT_MS	10000	/* ms for a client's request line */

struct control_opts {
	const char *path;	/* the socket (control_socket_path()) */
	int timeout_ms;		/* for a client's request line; 0:
				 * CONTROL_TIMEOUT_MS */
};

struct control_hooks {
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

/* Creates the folder of opts->path (missing parts 0700), removes a stale
 * socket left by a dead daemon (one nobody accepts on), refuses one a live
 * process serves (-EADDRINUSE) or a path that is not a socket (-EEXIST),
 * binds with mode 0600 and listens on loop.  hooks is copied; ud is passed
 * to each hook.  0 or -errno with a message in err; on error no handle is
 * left open. */
int control_start(struct control_server **sp, uv_loop_t *loop,
    const struct control_opts *opts, const struct control_hooks *hooks,
    void *ud, char *err, size_t errlen);

/* Connections being served now (tests). */
size_t control_clients(const struct control_server *s);

/* Stops listening, drops every client, unlinks the socket (if it is still
 * ours).  Call it before closing the loop's other handles with uv_walk:
 * the handles close through this module's callbacks, which free s once
 * the loop has run them, then call done(ud) (done may be NULL).  NULL s,
 * or a second call, is a no-op that never calls done. */
void control_stop(struct control_server *s, void (*done)(void *ud),
    void *ud);

#endif
