/*
 * redis_conn: one Redis connection on the supervisor's libuv loop, kept up
 * by this module: hiredis's async API (0.14) driven by our own uv_poll_t,
 * with a connect deadline, a deadline per command, and reconnection with
 * exponential backoff.
 *
 * Why not hiredis's adapters/libuv.h: in 0.14 its poll callback ignores
 * status < 0, and libuv reports a refused or reset socket exactly that way
 * (POLLERR becomes UV_EBADF and the handle is stopped), so a dead
 * connection would hang for ever; and it has no connect or command
 * timeouts.
 *
 * Life of a connection: redis_conn_new() starts connecting on the next
 * loop iteration.  An attempt resolves the host (uv_getaddrinfo, so a slow
 * DNS never blocks the loop; a numeric address skips it), connects, sends
 * AUTH (when a password is set), SELECT (when db != 0), or else PING, and
 * is up when the last of these answers OK.  All of it must finish within
 * connect_timeout_ms.  Any failure (refused, timed out, an error reply
 * such as WRONGPASS or an invalid DB, a broken socket) ends the attempt;
 * the next one follows after backoff_min_ms, doubling each failure up to
 * backoff_max_ms, back to backoff_min_ms once a connection comes up.
 * There is no jitter: one daemon, one connection.
 *
 * Commands are accepted only while up.  Redis answers in order and hiredis
 * cannot cancel one command, so a command that overruns its deadline
 * breaks the connection: it fails with "command timed out after N ms",
 * every other pending command with "connection lost: ...", and the
 * connection is dropped and made again.  Blocking commands (BLPOP,
 * XREADGROUP ... BLOCK n) must pass a timeout_ms larger than their own.
 *
 * Guarantees:
 *  - No user callback (state, reply, closed) ever runs from inside a
 *    redis_conn_* call; they all run from the loop.  Every callback may
 *    call redis_conn_command() and redis_conn_close().
 *  - A reply callback runs exactly once for each command accepted (return
 *    0), never for one refused (return < 0).
 *  - state_cb(false, why) runs once per lost connection and once per failed
 *    attempt (so a caller can log every attempt, and rate-limit if it
 *    wants); state_cb(true, why) once per connection that came up.
 *  - After redis_conn_close() no state callback runs.
 *  - A redisReply is valid only during the callback that receives it.
 *
 * Not supported: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, MONITOR
 * (hiredis calls their callbacks many times: -ENOTSUP) and HELLO (RESP3,
 * which hiredis 0.14 cannot parse: -ENOTSUP).  A SELECT sent by the caller
 * is not replayed after a reconnect: use opts.db.
 *
 * Replies are RESP2 (hiredis 0.14): XREADGROUP and XAUTOCLAIM answer
 * arrays of arrays (a stream entry is [id, [field, value, ...]]), a
 * missing value is REDIS_REPLY_NIL, XREADGROUP BLOCK that times out is
 * NIL, and every string may hold NUL bytes: use r->len, not strlen.
 *
 * hiredis writes with write(2): the process must ignore SIGPIPE (the
 * daemon and the workers do).  A host name resolving to both families is
 * reached over IPv4, as hiredis itself does.
 */
#ifndef THUMBWATCH_REDIS_CONN_H
#define THUMBWATCH_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#define REDIS_CONN_CONNECT_TIMEOUT_MS	2000
#define REDIS_CONN_COMMAND_TIMEOUT_MS	5000
#define REDIS_CONN_BACKOFF_MIN_MS	250
#define REDIS_CONN_BACKOFF_MAX_MS	10000

struct redis_conn;

/* Strings are copied by redis_conn_new(); 0 in a number means its
 * default. */
struct redis_conn_opts {
	const char *host;		/* name or numeric address */
	int port;
	int db;				/* SELECTed when not 0 */
	const char *user;		/* ACL user for AUTH; NULL = none */
	const char *password;		/* NULL = no AUTH */
	uint64_t connect_timeout_ms;	/* resolve + connect + AUTH + SELECT */
	uint64_t command_timeout_ms;	/* when a command passes 0 */
	uint64_t backoff_min_ms;	/* first delay before reconnecting */
	uint64_t backoff_max_ms;	/* doubled up to this */
};

/*
 * up: true once connected, AUTH'd and SELECTed; why then says where
 * ("connected to 127.0.0.1:6379, db 3").  false whenever a connection ends
 * or an attempt fails, with a one-line reason: "connection refused
 * (127.0.0.1:6399)", "connect timed out after 2000 ms (10.0.0.5:6379)",
 * "AUTH failed: WRONGPASS invalid username-password pair ...", "SELECT 99
 * failed: ERR DB index is out of range", "command timed out after 5000
 * ms", "connection lost: server closed the connection".
 */
typedef void (*redis_state_fn)(void *ud, bool up, const char *why);

/*
 * Exactly once per accepted command.  r: the reply (REDIS_REPLY_ERROR
 * included: then err is r->str), or r == NULL and err says why: "command
 * timed out after N ms", "connection lost: ...", "closed".
 */
typedef void (*redis_reply_fn)(void *ud, redisReply *r, const char *err);

/* Creates the connection; the first attempt starts from the loop at once.
 * 0, -EINVAL (no host, port out of 1..65535, db < 0, no state_cb) or
 * -ENOMEM; on error *out is NULL and no callback ever runs. */
int redis_conn_new(uv_loop_t *loop, const struct redis_conn_opts *o,
    redis_state_fn state_cb, void *ud, struct redis_conn **out);

bool redis_conn_up(const struct redis_conn *c);

/* Commands sent and not answered yet. */
size_t redis_conn_pending(const struct redis_conn *c);

/*
 * Sends one command, binary-safe (argvlen[i] bytes of argv[i]; argvlen
 * NULL: C strings).  timeout_ms 0 is the connection's default; cb may be
 * NULL (the reply is dropped).  0: cb will run exactly once, later, from
 * the loop.  -ENOTCONN: not up (or closing); -EINVAL: argc < 1;
 * -ENOTSUP: see above; -ENOMEM.  On error cb never runs.
 */
int redis_conn_command(struct redis_conn *c, uint64_t timeout_ms,
    redis_reply_fn cb, void *ud, int argc, const char **argv,
    const size_t *argvlen);

/* The same with hiredis's format ("SET %s %b", key, buf, len: %s a C
 * string, %b a pointer and a size_t, %d %lld ... integers).  -EINVAL also
 * for a bad format. */
int redis_conn_commandf(struct redis_conn *c, uint64_t timeout_ms,
    redis_reply_fn cb, void *ud, const char *fmt, ...);

/*
 * Stops reconnecting, drops the connection and closes every handle.  Each
 * pending command's callback then runs with r == NULL and err "closed",
 * then closed_cb (may be NULL), then c is freed.  Safe from inside any
 * callback of this connection; a second call is a no-op.  NULL is a no-op.
 */
void redis_conn_close(struct redis_conn *c, void (*closed_cb)(void *ud),
    void *ud);

#endif
