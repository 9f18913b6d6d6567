/*
 * cluster: the pure part of scaling out on Redis Streams (QUEUE=redis://).
 *
 * No libuv, no I/O: the QUEUE URL, the names of the Redis keys, what a
 * stream entry carries and how it is checked, the preset fingerprint nodes
 * compare.  The Redis replies the queue reads (hiredis' redisReply trees)
 * are read in src/queue/cluster_reply.c, beside the connection.
 *
 * Keys, for PREFIX (REDIS_PREFIX, default "thumbwatch"):
 *   PREFIX:jobs          the stream; consumer group PREFIX
 *   PREFIX:dead          dead letters (one entry per file given up on)
 *   PREFIX:seen:<mtime_ns>:<size>:<path>
 *                        a watcher's claim on one version of a file, so
 *                        several watchers add it to the stream only once
 *                        (the path last: it may hold any byte but NUL)
 *   PREFIX:said:<mtime_ns>:<size>:<path>
 *                        the same for an outcome a watcher decides alone
 *                        (10 s), so several watchers log it once
 *
 * An entry's fields: path (relative to the shared INPUT_DIR), size,
 * mtime_ns, fp (the preset fingerprint of the watcher that added it),
 * force ("1": make it even if it looks up to date) and by (host:pid).
 * Entries come from the network: every field is checked, and a path that
 * is absolute, has a "." , ".." or empty component or a NUL byte is
 * refused, so an entry cannot reach outside the input tree.
 */
#ifndef THUMBWATCH_CLUSTER_H
#define THUMBWATCH_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Only the fingerprint reads the configuration: a declaration is enough,
 * and config_parse.c (which parses QUEUE with this module) can include
 * this header without a cycle. */
struct config;

#define CLUSTER_ID_MAX		48	/* "1700000000000-123" and room */
#define CLUSTER_FP_LEN		16	/* hex digits of the fingerprint */
#define CLUSTER_DEFAULT_PORT	6379

struct cluster_url {
	char host[256];		/* name, IPv4, or IPv6 without brackets */
	int port;
	int db;
	char password[256];	/* "" = none (from the URL's user info) */
};

/* "redis://[[user]:password@]host[:port][/db]"; IPv6 as [::1].  0, or
 * -EINVAL with a reason in why ("rediss:// (TLS) is not supported", "port
 * must be 1..65535", ...). */
int cluster_parse_url(const char *s, struct cluster_url *u, char *why,
    size_t whylen);

/* s for logs and check-config: the password replaced by "(set)".  A URL
 * that does not parse is copied with any user info (up to the last '@'
 * before the path) replaced by "(hidden)". */
void cluster_redact_url(const char *s, char *out, size_t cap);

/* u as a URL, host:port/db in full, the password as "(set)". */
void cluster_url_string(const struct cluster_url *u, char *out, size_t cap);

/* "PREFIX:jobs", "PREFIX:dead".  0 or -ENAMETOOLONG. */
int cluster_key(char *out, size_t cap, const char *prefix,
    const char *what);
/* The dedupe key of one version of a file (binary-safe; may hold any
 * byte of the path).  Returns its length, or -ENAMETOOLONG. */
int cluster_seen_key(char *out, size_t cap, const char *prefix,
    const char *path, int64_t mtime_ns, int64_t size);

/* One hash over every preset's name and fingerprint, in order: nodes that
 * disagree would judge "up to date" differently and pass files back and
 * forth forever.  out: CLUSTER_FP_LEN hex digits + NUL. */
void cluster_fingerprint(const struct config *cfg,
    char out[CLUSTER_FP_LEN + 1]);

/* "host:pid", the consumer name; the host cut to fit. */
void cluster_consumer_name(char *out, size_t cap, const char *host,
    long pid);

/* Whether rel is a path an entry may name (see the header comment). */
bool cluster_path_ok(const char *rel);

/* A decimal number in [min, max] spanning exactly s[0..len), no sign, no
 * NUL needed (a Redis string is counted, not terminated).  0 or -1. */
int cluster_number(const char *s, size_t len, long long min, long long max,
    long long *out);

struct cluster_job {
	char id[CLUSTER_ID_MAX];
	char path[PATH_MAX];
	int64_t size;
	int64_t mtime_ns;
	char fp[CLUSTER_FP_LEN + 1];
	bool force;
	char by[128];
};

/* One row of XPENDING key group IDLE ms - + count. */
struct cluster_pending {
	char id[CLUSTER_ID_MAX];
	char consumer[128];
	int64_t idle_ms;
	int64_t deliveries;
};

/* What `status` and /metrics show about the shared queue. */
struct cluster_stats {
	bool up;			/* connected now */
	char error[256];		/* last connection error, "" if none */
	const char *role;		/* "all", "watcher", "worker" */
	char url[300];			/* without the password */
	char consumer[160];
	int64_t stream_len;		/* -1: not read yet */
	int64_t pending;		/* delivered, not acknowledged */
	int64_t consumers;
	int64_t dead_letters;
	uint64_t enqueued;		/* added to the stream by this node */
	uint64_t duplicates;		/* not added: another watcher had it */
	uint64_t received;		/* entries read by this node */
	uint64_t reclaimed;		/* taken over from a silent node */
	uint64_t acked;
	uint64_t dead;			/* dead-lettered by this node */
};

#endif
