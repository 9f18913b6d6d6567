/*
 * redisq: the shared work queue on a Redis stream (see redisq.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_reply.h"
#include "redis_conn.h"
#include "redisq.h"

#define READ_BLOCK_MS	2000	/* XREADGROUP BLOCK */
#define READ_MAX	64	/* entries per read */
#define PENDING_SCAN	32	/* XPENDING rows looked at per tick */
#define KEEPALIVE_MAX	100	/* ids per XCLAIM JUSTID */
#define SEEN_TTL_MS	"86400000"	/* a seen key outlives a lost entry */
#define DEAD_MAXLEN	"10000"
#define SEEN_LINGER_MS	"5000"	/* after the outcome, see finish_lua */
#define CLAIM_TTL_MS	"10000"	/* a watcher's decision, see redisq_claim */
#define DOWN_REPEAT_MS	60000	/* "still down" at most this often */
#define CLOSE_GRACE_MS	2000	/* for acknowledgements in flight */
#define ENQUEUE_WINDOW	256	/* enqueue scripts in flight at once */

/* KEYS: jobs, seen.  ARGV: path size mtime_ns fp force by ttl_ms.
 * Adds the entry unless the seen key exists (force: always), in one step,
 * so two watchers cannot both add the same version of a file. */
static const char enqueue_lua[] =
    "if ARGV[5] == '1' then\n"
    "  redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[7])\n"
    "elseif not redis.call('SET', KEYS[2], ARGV[6], 'NX', 'PX', ARGV[7]) then\n"
    "  return false\n"
    "end\n"
    "return redis.call('XADD', KEYS[1], '*', 'path', ARGV[1], 'size', "
    "ARGV[2], 'mtime_ns', ARGV[3], 'fp', ARGV[4], 'force', ARGV[5], "
    "'by', ARGV[6])\n";

/* KEYS: jobs, seen, dead.  ARGV: group id reason path by maxlen linger.
 * One step, so an entry is never acknowledged without its dead letter.
 * The seen key lingers a little: a second watcher whose event for this
 * version comes late must not add it again. */
static const char finish_lua[] =
    "if ARGV[3] ~= '' then\n"
    "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'id', "
    "ARGV[2], 'path', ARGV[4], 'error', ARGV[3], 'by', ARGV[5])\n"
    "end\n"
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "if KEYS[2] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end\n"
    "return 1\n";

struct held {
	struct held *next;
	struct cluster_job job;
	char reason[512];	/* dead letter reason, when finishing */
};

struct redisq {
	uv_loop_t *loop;
	struct redisq_opts o;
	struct redisq_hooks cb;
	void *ud;
	char prefix[64], consumer[160];
	char k_jobs[128], k_dead[128];

	struct redis_conn *cmd, *rd;	/* rd: XREADGROUP only */
	bool cmd_up, rd_up, group_ok, reading, announced;
	uint64_t down_since, down_logged;
	unsigned down_attempts;
	char cursor[CLUSTER_ID_MAX];	/* XAUTOCLAIM */

	struct held *held;		/* read, not finished */
	struct held *unsent;		/* finished while Redis was away */
	struct outgoing *out_head, *out_tail;	/* enqueues not sent yet */
	size_t out_len;
	uint64_t inflight;		/* commands on cmd */
	unsigned enq_inflight;

	uv_timer_t tick, grace;
	int open;			/* handles and connections to close */
	bool closing;
	void (*done)(void *);
	void *done_ud;
	struct cluster_stats st;
};

static void maybe_read(struct redisq *q);
static void send_finish(struct redisq *q, struct held *h);
static void finish_close(uv_timer_t *t);
static void drop_outbox(struct redisq *q);

/* A counted command on cmd has its answer.  Closing waits for these. */
static void
landed(struct redisq *q)
{
	q->inflight--;
	if (q->closing && q->inflight == 0 && q->cmd != NULL)
		uv_timer_start(&q->grace, finish_close, 0, 0);
}

/* ---- held entries ------------------------------------------------------ */

static struct held *
held_find_id(struct redisq *q, const char *id)
{
	struct held *h;

	for (h = q->held; h; h = h->next)
		if (strcmp(h->job.id, id) == 0)
			return h;
	return NULL;
}

static void
free_list(struct held *h)
{
	struct held *next;

	for (; h; h = next) {
		next = h->next;
		free(h);
	}
}

/* ---- connection state -------------------------------------------------- */

static void
report_down(struct redisq *q, const char *why)
{
	uint64_t now = uv_now(q->loop);

	snprintf(q->st.error, sizeof(q->st.error), "%s", why);
	q->down_attempts++;
	if (q->announced || q->down_logged == 0 ||
	    now - q->down_logged >= DOWN_REPEAT_MS) {
		char msg[400];

		if (!q->announced && q->down_logged != 0)
			snprintf(msg, sizeof(msg), "%s (still unreachable, "
			    "%u attempts in %" PRIu64 " s)", why,
			    q->down_attempts, (now - q->down_since) / 1000);
		else
			snprintf(msg, sizeof(msg), "%s", why);
		if (q->announced || q->down_logged == 0)
			q->down_since = now;
		q->down_logged = now;
		q->announced = false;
		if (q->cb.state)
			q->cb.state(q->ud, false, msg);
	}
}

static void
group_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;
	struct held *list, *h, *next;

	landed(q);
	if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "BUSYGROUP") == NULL)) {
		/* Not ours to fix (e.g. PREFIX:jobs is not a stream):
		 * say so and try again on the next tick. */
		if (r != NULL && q->cb.bad_entry)
			q->cb.bad_entry(q->ud, NULL, err);
		return;
	}
	q->group_ok = true;
	q->down_attempts = 0;
	q->down_logged = 0;
	q->st.error[0] = '\0';
	q->st.up = true;
	/* What was finished while Redis was away. */
	list = q->unsent;
	q->unsent = NULL;
	for (h = list; h; h = next) {
		next = h->next;
		send_finish(q, h);
	}
	if (!q->announced) {
		q->announced = true;
		if (q->cb.state)
			q->cb.state(q->ud, true, NULL);
	}
	maybe_read(q);
}

static void
create_group(struct redisq *q)
{
	/* From 0, not $: entries added before the group existed count. */
	if (redis_conn_commandf(q->cmd, 0, group_cb, q,
	    "XGROUP CREATE %s %s 0 MKSTREAM", q->k_jobs, q->prefix) == 0)
		q->inflight++;
}

static void
cmd_state(void *ud, bool up, const char *why)
{
	struct redisq *q = ud;

	q->cmd_up = up;
	if (up) {
		create_group(q);
		return;
	}
	q->group_ok = false;
	q->st.up = false;
	drop_outbox(q);
	report_down(q, why ? why : "connection lost");
}

static void
rd_state(void *ud, bool up, const char *why)
{
	struct redisq *q = ud;

	(void)why;	/* cmd reports; both talk to the same server */
	q->rd_up = up;
	if (!up)
		q->reading = false;
	else
		maybe_read(q);
}

bool
redisq_up(const struct redisq *q)
{
	return q->cmd_up && q->group_ok;
}

/* ---- watcher side ------------------------------------------------------ */

/* Waiting to be sent: a walk of a big tree finds files far faster than
 * Redis answers, and a deep pipeline would outlast the command timeout. */
struct outgoing {
	struct outgoing *next;
	int64_t size, mtime_ns;
	bool force;
	char rel[];
};

static void send_enqueues(struct redisq *q);

static void
enqueue_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;

	q->enq_inflight--;
	landed(q);
	if (r == NULL)
		return;		/* lost: the rescan on reconnect adds it */
	if (r->type == REDIS_REPLY_ERROR) {
		if (q->cb.bad_entry)
			q->cb.bad_entry(q->ud, NULL, err);
	} else if (r->type == REDIS_REPLY_NIL) {
		q->st.duplicates++;
	} else {
		q->st.enqueued++;
	}
	send_enqueues(q);
}

static int
send_enqueue(struct redisq *q, const struct outgoing *o)
{
	char seen[PATH_MAX + 200], ssize[24], smtime[24];
	const char *argv[12];
	size_t len[12];
	int n, i, rc;

	if ((n = cluster_seen_key(seen, sizeof(seen), q->prefix, o->rel,
	    o->mtime_ns, o->size)) < 0)
		return n;
	snprintf(ssize, sizeof(ssize), "%" PRId64, o->size);
	snprintf(smtime, sizeof(smtime), "%" PRId64, o->mtime_ns);
	argv[0] = "EVAL";
	argv[1] = enqueue_lua;
	argv[2] = "2";
	argv[3] = q->k_jobs;
	argv[4] = seen;
	argv[5] = o->rel;
	argv[6] = ssize;
	argv[7] = smtime;
	argv[8] = q->o.fingerprint;
	argv[9] = o->force ? "1" : "0";
	argv[10] = q->consumer;
	argv[11] = SEEN_TTL_MS;
	for (i = 0; i < 12; i++)
		len[i] = strlen(argv[i]);
	len[4] = (size_t)n;
	if ((rc = redis_conn_command(q->cmd, 0, enqueue_cb, q, 12, argv,
	    len)) == 0) {
		q->inflight++;
		q->enq_inflight++;
	}
	return rc;
}

static void
drop_outbox(struct redisq *q)
{
	struct outgoing *o, *next;

	for (o = q->out_head; o; o = next) {
		next = o->next;
		free(o);
	}
	q->out_head = q->out_tail = NULL;
	q->out_len = 0;
}

static void
send_enqueues(struct redisq *q)
{
	struct outgoing *o;

	while ((o = q->out_head) != NULL && q->enq_inflight < ENQUEUE_WINDOW) {
		if (!redisq_up(q) || q->closing) {
			/* The walk after reconnecting finds these again. */
			drop_outbox(q);
			return;
		}
		q->out_head = o->next;
		if (q->out_head == NULL)
			q->out_tail = NULL;
		q->out_len--;
		send_enqueue(q, o);
		free(o);
	}
}

int
redisq_enqueue(struct redisq *q, const char *rel, int64_t size,
    int64_t mtime_ns, bool force)
{
	struct outgoing *o;
	size_t len = strlen(rel);

	if (!redisq_up(q) || q->closing)
		return -ENOTCONN;
	if ((o = malloc(sizeof(*o) + len + 1)) == NULL)
		return -ENOMEM;
	o->next = NULL;
	o->size = size;
	o->mtime_ns = mtime_ns;
	o->force = force;
	memcpy(o->rel, rel, len + 1);
	if (q->out_tail)
		q->out_tail->next = o;
	else
		q->out_head = o;
	q->out_tail = o;
	q->out_len++;
	send_enqueues(q);
	return 0;
}

struct claim_req {
	struct redisq *q;
	redisq_claim_fn cb;
	void *ud;
};

static void
claim_verdict_cb(void *ud, redisReply *r, const char *err)
{
	struct claim_req *c = ud;
	struct redisq *q = c->q;

	(void)err;
	landed(q);
	/* Lost on the way: better a line from each watcher than none. */
	c->cb(c->ud, r == NULL || r->type == REDIS_REPLY_ERROR ||
	    r->type == REDIS_REPLY_STATUS);
	free(c);
}

int
redisq_claim(struct redisq *q, const char *rel, int64_t size,
    int64_t mtime_ns, redisq_claim_fn cb, void *ud)
{
	char key[PATH_MAX + 200];
	const char *argv[6];
	size_t len[6];
	struct claim_req *c;
	int n, i, rc;

	if (!redisq_up(q) || q->closing)
		return -ENOTCONN;
	/* Not the seen key: that one may still linger from the version's
	 * own job, and this is a new event about it. */
	n = snprintf(key, sizeof(key), "%s:said:%" PRId64 ":%" PRId64 ":%s",
	    q->prefix, mtime_ns, size, rel);
	if (n < 0 || (size_t)n >= sizeof(key))
		return -ENAMETOOLONG;
	if ((c = malloc(sizeof(*c))) == NULL)
		return -ENOMEM;
	c->q = q;
	c->cb = cb;
	c->ud = ud;
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = q->consumer;
	argv[3] = "NX";
	argv[4] = "PX";
	argv[5] = CLAIM_TTL_MS;
	for (i = 0; i < 6; i++)
		len[i] = strlen(argv[i]);
	len[1] = (size_t)n;
	if ((rc = redis_conn_command(q->cmd, 0, claim_verdict_cb, c, 6, argv,
	    len)) < 0) {
		free(c);
		return rc;
	}
	q->inflight++;
	return 0;
}

/* ---- worker side ------------------------------------------------------- */

struct finish_req {
	struct redisq *q;
	struct held *h;
};

static void
finish_cb(void *ud, redisReply *r, const char *err)
{
	struct finish_req *f = ud;
	struct redisq *q = f->q;

	(void)err;
	landed(q);
	if (r == NULL && !q->closing) {
		/* Lost on the way: sent again once Redis is back. */
		f->h->next = q->unsent;
		q->unsent = f->h;
	} else {
		if (r != NULL && r->type != REDIS_REPLY_ERROR) {
			q->st.acked++;
			if (f->h->reason[0])
				q->st.dead++;
		} else if (r != NULL && q->cb.bad_entry) {
			q->cb.bad_entry(q->ud, f->h->job.id, err);
		}
		free(f->h);
	}
	free(f);
}

static void
send_finish(struct redisq *q, struct held *h)
{
	char seen[PATH_MAX + 200];
	const char *argv[13];
	size_t len[13];
	struct finish_req *f;
	int n = 0, i;

	if (h->job.path[0] && (n = cluster_seen_key(seen, sizeof(seen),
	    q->prefix, h->job.path, h->job.mtime_ns, h->job.size)) < 0)
		n = 0;
	if (!redisq_up(q) || (f = malloc(sizeof(*f))) == NULL) {
		h->next = q->unsent;
		q->unsent = h;
		return;
	}
	f->q = q;
	f->h = h;
	argv[0] = "EVAL";
	argv[1] = finish_lua;
	argv[2] = "3";
	argv[3] = q->k_jobs;
	argv[4] = n > 0 ? seen : "";
	argv[5] = q->k_dead;
	argv[6] = q->prefix;
	argv[7] = h->job.id;
	argv[8] = h->reason;
	argv[9] = h->job.path;
	argv[10] = q->consumer;
	argv[11] = DEAD_MAXLEN;
	argv[12] = SEEN_LINGER_MS;
	for (i = 0; i < 13; i++)
		len[i] = strlen(argv[i]);
	len[4] = (size_t)n;
	if (redis_conn_command(q->cmd, 0, finish_cb, f, 13, argv, len) == 0) {
		q->inflight++;
		return;
	}
	free(f);
	h->next = q->unsent;
	q->unsent = h;
}

void
redisq_finish(struct redisq *q, const char *rel, const char *dead_reason)
{
	struct held **pp = &q->held, *h;

	while ((h = *pp) != NULL) {
		if (strcmp(h->job.path, rel) != 0) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		h->next = NULL;
		snprintf(h->reason, sizeof(h->reason), "%s",
		    dead_reason ? dead_reason : "");
		send_finish(q, h);
	}
}

/* A malformed entry: nothing can be done with it but keep it for a person
 * to read (PREFIX:dead) and get it out of the way. */
static void
drop_bad(struct redisq *q, const char *id, const char *why)
{
	struct held *h = calloc(1, sizeof(*h));

	if (q->cb.bad_entry)
		q->cb.bad_entry(q->ud, id, why);
	if (h == NULL)
		return;
	snprintf(h->job.id, sizeof(h->job.id), "%s", id);
	snprintf(h->reason, sizeof(h->reason), "malformed entry: %s", why);
	send_finish(q, h);
}

/* Takes every entry of arr; dead: they are over-delivered ones. */
static size_t
take_entries(struct redisq *q, const redisReply *arr, bool reclaimed,
    const struct cluster_pending *rows, int nrows)
{
	struct cluster_job job;
	struct held *h;
	char why[300];
	size_t i, n = 0;
	int rc, k;

	for (i = 0; i < arr->elements; i++) {
		rc = cluster_read_entry(arr->element[i], &job, why,
		    sizeof(why));
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			if (job.id[0])
				drop_bad(q, job.id, why);
			continue;
		}
		if (held_find_id(q, job.id) != NULL)
			continue;	/* ours already */
		if ((h = calloc(1, sizeof(*h))) == NULL)
			continue;	/* stays pending: taken over later */
		h->job = job;
		h->next = q->held;
		q->held = h;
		n++;
		if (rows != NULL) {
			for (k = 0; k < nrows; k++)
				if (strcmp(rows[k].id, job.id) == 0)
					break;
			q->cb.dead(q->ud, &job, k < nrows ?
			    rows[k].deliveries + 1 : q->o.max_deliveries);
		} else {
			q->cb.job(q->ud, &job, reclaimed);
		}
	}
	return n;
}

static void
read_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;
	const redisReply *arr;
	char why[300];
	size_t n;

	q->reading = false;
	if (r == NULL || q->closing)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		/* NOGROUP: the stream was deleted under us. */
		if (strstr(r->str, "NOGROUP") != NULL) {
			q->group_ok = false;
			create_group(q);
		} else if (q->cb.bad_entry) {
			q->cb.bad_entry(q->ud, NULL, err);
		}
		return;		/* the tick tries again */
	}
	if ((arr = cluster_xreadgroup_entries(r, why, sizeof(why))) == NULL) {
		if (q->cb.bad_entry)
			q->cb.bad_entry(q->ud, NULL, why);
		return;
	}
	n = take_entries(q, arr, false, NULL, 0);
	q->st.received += n;
	maybe_read(q);
}

static void
maybe_read(struct redisq *q)
{
	size_t room;

	if (!q->o.consume || q->closing || q->reading || !q->rd_up ||
	    !redisq_up(q))
		return;
	if ((room = q->cb.room(q->ud)) == 0)
		return;
	if (room > READ_MAX)
		room = READ_MAX;
	if (redis_conn_commandf(q->rd, READ_BLOCK_MS + 5000, read_cb, q,
	    "XREADGROUP GROUP %s %s COUNT %d BLOCK %d STREAMS %s >",
	    q->prefix, q->consumer, (int)room, READ_BLOCK_MS, q->k_jobs) == 0)
		q->reading = true;
}

void
redisq_poke(struct redisq *q)
{
	maybe_read(q);
}

/* ---- the tick: keep-alive, dead letters, take-over, figures ------------ */

static void
counted_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;

	(void)r;
	(void)err;
	landed(q);
}

static void
keepalive(struct redisq *q)
{
	const char *argv[6 + KEEPALIVE_MAX];
	size_t len[6 + KEEPALIVE_MAX];
	struct held *h = q->held;
	int argc, i;

	while (h != NULL) {
		argv[0] = "XCLAIM";
		argv[1] = q->k_jobs;
		argv[2] = q->prefix;
		argv[3] = q->consumer;
		argv[4] = "0";
		argc = 5;
		for (; h && argc < 5 + KEEPALIVE_MAX; h = h->next)
			argv[argc++] = h->job.id;
		argv[argc++] = "JUSTID";
		for (i = 0; i < argc; i++)
			len[i] = strlen(argv[i]);
		if (redis_conn_command(q->cmd, 0, counted_cb, q, argc, argv,
		    len) == 0)
			q->inflight++;
	}
}

static void
claim_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;
	const redisReply *arr;
	char why[300];
	size_t n;

	(void)err;
	landed(q);
	if (r == NULL || r->type == REDIS_REPLY_ERROR || q->closing)
		return;
	if ((arr = cluster_xautoclaim_entries(r, q->cursor, sizeof(q->cursor),
	    why, sizeof(why))) == NULL) {
		if (q->cb.bad_entry)
			q->cb.bad_entry(q->ud, NULL, why);
		return;
	}
	n = take_entries(q, arr, true, NULL, 0);
	q->st.reclaimed += n;
	q->st.received += n;
}

struct dead_req {
	struct redisq *q;
	int n;
	struct cluster_pending rows[PENDING_SCAN];
};

static void
dead_claim_cb(void *ud, redisReply *r, const char *err)
{
	struct dead_req *dr = ud;
	struct redisq *q = dr->q;

	(void)err;
	landed(q);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && !q->closing)
		take_entries(q, r, false, dr->rows, dr->n);
	free(dr);
}

static void
pending_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;
	struct cluster_pending rows[PENDING_SCAN];
	const char *argv[5 + PENDING_SCAN];
	size_t len[5 + PENDING_SCAN], room;
	struct dead_req *dr;
	char vis[24];
	int n, i, argc = 5;

	(void)err;
	landed(q);
	if (r == NULL || r->type == REDIS_REPLY_ERROR || q->closing)
		return;
	if ((n = cluster_read_pending(r, rows, PENDING_SCAN, NULL, 0)) < 0)
		n = 0;
	snprintf(vis, sizeof(vis), "%" PRIu64, q->o.visibility_ms);
	/* First the entries that used up their deliveries: claimed (only
	 * one node wins each, as XCLAIM re-checks the idle time) and handed
	 * over as dead.  Sent before XAUTOCLAIM on the same connection, so
	 * that cannot hand them out as jobs once more. */
	if ((dr = calloc(1, sizeof(*dr))) != NULL) {
		dr->q = q;
		argv[0] = "XCLAIM";
		argv[1] = q->k_jobs;
		argv[2] = q->prefix;
		argv[3] = q->consumer;
		argv[4] = vis;
		for (i = 0; i < n; i++)
			if (rows[i].deliveries >= q->o.max_deliveries) {
				dr->rows[dr->n++] = rows[i];
				argv[argc++] = rows[i].id;
			}
		for (i = 0; i < argc; i++)
			len[i] = strlen(argv[i]);
		if (dr->n > 0 && redis_conn_command(q->cmd, 0, dead_claim_cb,
		    dr, argc, argv, len) == 0)
			q->inflight++;
		else
			free(dr);
	}
	if ((room = q->cb.room(q->ud)) == 0)
		return;
	if (room > READ_MAX)
		room = READ_MAX;
	if (redis_conn_commandf(q->cmd, 0, claim_cb, q,
	    "XAUTOCLAIM %s %s %s %s %s COUNT %d", q->k_jobs, q->prefix,
	    q->consumer, vis, q->cursor, (int)room) == 0)
		q->inflight++;
}

static void
xlen_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;

	(void)err;
	landed(q);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		q->st.stream_len = r->element[0]->integer;
		q->st.dead_letters = r->element[1]->integer;
	}
}

static void
groups_cb(void *ud, redisReply *r, const char *err)
{
	struct redisq *q = ud;
	int64_t consumers, pending;

	(void)err;
	landed(q);
	if (r != NULL && cluster_read_group_info(r, q->prefix, &consumers,
	    &pending) == 0) {
		q->st.consumers = consumers;
		q->st.pending = pending;
	}
}

static void
tick_cb(uv_timer_t *t)
{
	struct redisq *q = t->data;
	char vis[24];

	if (q->closing)
		return;
	if (q->cmd_up && !q->group_ok) {
		create_group(q);
		return;
	}
	if (!redisq_up(q))
		return;
	if (redis_conn_commandf(q->cmd, 0, xlen_cb, q, "EVAL %s 2 %s %s",
	    "return {redis.call('XLEN', KEYS[1]), redis.call('XLEN', "
	    "KEYS[2])}", q->k_jobs, q->k_dead) == 0)
		q->inflight++;
	if (redis_conn_commandf(q->cmd, 0, groups_cb, q, "XINFO GROUPS %s",
	    q->k_jobs) == 0)
		q->inflight++;
	if (!q->o.consume)
		return;
	keepalive(q);
	snprintf(vis, sizeof(vis), "%" PRIu64, q->o.visibility_ms);
	if (redis_conn_commandf(q->cmd, 0, pending_cb, q,
	    "XPENDING %s %s IDLE %s - + %d", q->k_jobs, q->prefix, vis,
	    PENDING_SCAN) == 0)
		q->inflight++;
	maybe_read(q);
}

/* ---- life -------------------------------------------------------------- */

int
redisq_start(struct redisq **qp, uv_loop_t *loop,
    const struct redisq_opts *o, const struct redisq_hooks *hooks, void *ud,
    char *err, size_t errlen)
{
	struct redis_conn_opts co;
	struct cluster_url shown;
	struct redisq *q;
	uint64_t every;
	int rc;

	*qp = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	q->loop = loop;
	q->o = *o;
	q->cb = *hooks;
	q->ud = ud;
	snprintf(q->prefix, sizeof(q->prefix), "%s", o->prefix);
	snprintf(q->consumer, sizeof(q->consumer), "%s", o->consumer);
	q->o.prefix = q->prefix;
	q->o.consumer = q->consumer;
	snprintf(q->cursor, sizeof(q->cursor), "0-0");
	if (cluster_key(q->k_jobs, sizeof(q->k_jobs), q->prefix, "jobs") < 0 ||
	    cluster_key(q->k_dead, sizeof(q->k_dead), q->prefix, "dead") < 0) {
		free(q);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	q->st.stream_len = q->st.pending = q->st.consumers =
	    q->st.dead_letters = -1;
	q->st.role = o->produce && o->consume ? "all" : o->produce ?
	    "watcher" : "worker";
	snprintf(q->st.consumer, sizeof(q->st.consumer), "%s", q->consumer);
	shown = o->url;
	shown.password[0] = '\0';
	cluster_url_string(&shown, q->st.url, sizeof(q->st.url));

	uv_timer_init(loop, &q->tick);
	uv_timer_init(loop, &q->grace);
	q->tick.data = q->grace.data = q;
	q->open += 2;
	memset(&co, 0, sizeof(co));
	co.host = q->o.url.host;
	co.port = q->o.url.port;
	co.db = q->o.url.db;
	co.password = q->o.url.password[0] ? q->o.url.password : NULL;
	if ((rc = redis_conn_new(loop, &co, cmd_state, q, &q->cmd)) == 0) {
		q->open++;
		if (o->consume && (rc = redis_conn_new(loop, &co, rd_state, q,
		    &q->rd)) == 0)
			q->open++;
	}
	if (rc < 0) {
		/* The loop frees q once the timers are closed. */
		redisq_stop(q, NULL, NULL);
		goto fail;
	}
	every = o->visibility_ms / 3;
	if (every < 200)
		every = 200;
	if (every > 5000)
		every = 5000;
	uv_timer_start(&q->tick, tick_cb, every, every);
	*qp = q;
	return 0;
fail:
	snprintf(err, errlen, "cannot set up the Redis queue: %s",
	    strerror(-rc));
	return rc;
}

void
redisq_stats(const struct redisq *q, struct cluster_stats *st)
{
	*st = q->st;
}

static void
closed_one(void *ud)
{
	struct redisq *q = ud;

	if (--q->open > 0)
		return;
	free_list(q->held);
	free_list(q->unsent);
	drop_outbox(q);
	if (q->done)
		q->done(q->done_ud);
	free(q);
}

static void
handle_closed(uv_handle_t *h)
{
	closed_one(h->data);
}

static void
finish_close(uv_timer_t *t)
{
	struct redisq *q = t->data;
	struct redis_conn *cmd = q->cmd, *rd = q->rd;

	uv_timer_stop(&q->grace);
	if (uv_is_closing((uv_handle_t *)&q->tick))
		return;
	q->cmd = q->rd = NULL;
	uv_close((uv_handle_t *)&q->tick, handle_closed);
	uv_close((uv_handle_t *)&q->grace, handle_closed);
	if (rd)
		redis_conn_close(rd, closed_one, q);
	if (cmd)
		redis_conn_close(cmd, closed_one, q);
}

void
redisq_stop(struct redisq *q, void (*done)(void *ud), void *ud)
{
	if (q == NULL) {
		if (done)
			done(ud);
		return;
	}
	if (q->closing)
		return;
	q->closing = true;
	q->done = done;
	q->done_ud = ud;
	uv_timer_stop(&q->tick);
	/* Acknowledgements already sent get a moment to land: otherwise
	 * their files would be made once more by another node. */
	uv_timer_start(&q->grace, finish_close, q->inflight > 0 ?
	    CLOSE_GRACE_MS : 0, 0);
}
