/*
 * pool: worker processes, their channels, deadlines and replacement.
 *
 * A worker handles its items strictly in order, so the item it is working
 * on is always the oldest one it holds: when it dies, that one is the
 * culprit and the rest were never started.  The deadline restarts at every
 * result, so it bounds one image, not a batch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool.h"

#define RESPAWN_MIN_MS 200
#define RESPAWN_MAX_MS 30000

enum wstate { W_DOWN, W_STARTING, W_IDLE, W_BUSY, W_EXITING };

struct inflight {
	struct batch_item *item;
	uint32_t id;
	struct inflight *next;
};

struct worker {
	struct pool *pool;
	int index;
	enum wstate state;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_timer_t deadline;
	uv_timer_t respawn;
	bool proc_open, pipe_open;
	int pid;
	struct inflight *head, *tail;
	uint8_t *rbuf;
	size_t rlen, rcap;
	char lost_why[160];	/* set before we kill it */
	const char *lost_reason;	/* "timeout", "protocol", "shutdown" */
	int closing;		/* its pipe/process handles not yet closed */
	int backoff_ms;
	bool said_hello;
	bool recycling;		/* asked to exit after its images */
	int images;		/* results since it started */
};

struct pool {
	uv_loop_t *loop;
	struct pool_opts opt;
	char exe[PATH_MAX];
	char formats[256];
	char memory_mb[16];
	char parent[24];
	char instance[PATH_MAX];
	struct logger *lg;
	struct pool_hooks cb;
	void *ud;
	struct worker *w;
	int n;
	uint32_t next_id;
	uint64_t restarts;
	bool stopping, timers_closed;
	int open_handles;
	uv_timer_t grace;
	void (*done)(void *);		/* pool_stop's */
	void *done_ud;
};

static void spawn(struct worker *wk);

/* The oldest item is the one the worker was on; the others never started. */
static struct batch_item *
take_all(struct worker *wk, struct batch_item **culprit)
{
	struct batch_item *rest = NULL, **tailp = &rest;
	struct inflight *f;

	*culprit = NULL;
	if ((f = wk->head) != NULL) {
		wk->head = f->next;
		f->item->next = NULL;
		*culprit = f->item;
		free(f);
	}
	while ((f = wk->head) != NULL) {
		wk->head = f->next;
		f->item->next = NULL;
		*tailp = f->item;
		tailp = &f->item->next;
		free(f);
	}
	wk->tail = NULL;
	return rest;
}

static void check_stopped(struct pool *p);

static void
handle_closed(uv_handle_t *h)
{
	struct pool *p = h->data;

	p->open_handles--;
	check_stopped(p);
}

static void
close_handle(struct pool *p, uv_handle_t *h)
{
	if (uv_is_closing(h))
		return;
	h->data = p;
	p->open_handles++;
	uv_close(h, handle_closed);
}

static void
worker_handle_closed(uv_handle_t *h)
{
	struct worker *wk = h->data;

	wk->closing--;
	wk->pool->open_handles--;
	check_stopped(wk->pool);
}

/* A worker's pipe and process handles are reused by its replacement, so
 * their closing is counted per worker: re-initialising a handle whose
 * close is still pending corrupts the loop. */
static void
worker_close(struct worker *wk, uv_handle_t *h)
{
	if (uv_is_closing(h))
		return;
	h->data = wk;
	wk->closing++;
	wk->pool->open_handles++;
	uv_close(h, worker_handle_closed);
}

static void
close_pipe(struct worker *wk)
{
	if (wk->pipe_open) {
		wk->pipe_open = false;
		worker_close(wk, (uv_handle_t *)&wk->pipe);
	}
}

static void
pool_free(struct pool *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		free(p->w[i].rbuf);
	free(p->w);
	free(p);
}

/* Once every worker has exited, close the timers; when the last handle is
 * gone the pool is freed and done runs, so the caller may free the loop's
 * memory then.  Called last by each of its callers: p may be gone after. */
static void
check_stopped(struct pool *p)
{
	void (*done)(void *);
	void *done_ud;
	int i;

	if (!p->stopping)
		return;
	for (i = 0; i < p->n; i++)
		if (p->w[i].state != W_DOWN)
			return;
	if (!p->timers_closed) {
		p->timers_closed = true;
		for (i = 0; i < p->n; i++) {
			close_handle(p, (uv_handle_t *)&p->w[i].deadline);
			close_handle(p, (uv_handle_t *)&p->w[i].respawn);
		}
		close_handle(p, (uv_handle_t *)&p->grace);
	}
	if (p->open_handles > 0)
		return;
	done = p->done;
	done_ud = p->done_ud;
	pool_free(p);
	if (done)
		done(done_ud);
}

static void
respawn_cb(uv_timer_t *t)
{
	struct worker *wk = t->data;

	if (wk->pool->stopping)
		return;
	if (wk->closing > 0) {
		uv_timer_start(&wk->respawn, respawn_cb, 1, 0);
		return;
	}
	spawn(wk);
}

static void
exit_cb(uv_process_t *proc, int64_t status, int sig)
{
	struct worker *wk = proc->data;
	struct pool *p = wk->pool;
	struct batch_item *culprit, *rest;
	struct json_buf *j;
	char why[200];
	bool expected = wk->state == W_EXITING || p->stopping;

	if (wk->recycling && status == 0 && !sig)
		expected = true;

	uv_timer_stop(&wk->deadline);
	close_pipe(wk);
	wk->proc_open = false;
	worker_close(wk, (uv_handle_t *)proc);

	if (wk->lost_why[0])
		snprintf(why, sizeof(why), "%s", wk->lost_why);
	else if (sig)
		snprintf(why, sizeof(why), "crashed (signal %d: %s)", sig,
		    strsignal(sig));
	else
		snprintf(why, sizeof(why), "exited with status %d", (int)status);

	rest = take_all(wk, &culprit);
	if (!expected || culprit || rest) {
		if ((j = log_begin(p->lg, expected ? LOG_INFO : LOG_WARN,
		    "worker_exited")) != NULL) {
			json_int(j, "worker", wk->index + 1);
			json_int(j, "pid", wk->pid);
			json_str(j, "reason", wk->lost_reason ?
			    wk->lost_reason : sig ? "crashed" : "exited");
			if (sig)
				json_int(j, "signal", sig);
			else
				json_int(j, "status", status);
			log_commit(p->lg);
		}
	}
	wk->lost_why[0] = '\0';
	wk->lost_reason = NULL;
	wk->state = W_DOWN;
	if (culprit || rest)
		p->cb.on_lost(p->ud, wk->index, culprit, rest,
		    p->stopping ? "shutdown" : why);
	if (p->stopping) {
		check_stopped(p);
		return;
	}
	if (wk->recycling && status == 0 && !sig) {
		if ((j = log_begin(p->lg, LOG_INFO, "worker_recycled")) != NULL) {
			json_int(j, "worker", wk->index + 1);
			json_int(j, "pid", wk->pid);
			json_int(j, "images", wk->images);
			log_commit(p->lg);
		}
		uv_timer_start(&wk->respawn, respawn_cb, 0, 0);
		return;
	}
	p->restarts++;
	/* A worker that dies before it is ready is broken, not unlucky:
	 * back off so a bad install cannot fork-loop. */
	if (!wk->said_hello) {
		wk->backoff_ms = wk->backoff_ms ? wk->backoff_ms * 2 :
		    RESPAWN_MIN_MS;
		if (wk->backoff_ms > RESPAWN_MAX_MS)
			wk->backoff_ms = RESPAWN_MAX_MS;
		uv_timer_start(&wk->respawn, respawn_cb,
		    (uint64_t)wk->backoff_ms, 0);
	} else {
		wk->backoff_ms = 0;
		uv_timer_start(&wk->respawn, respawn_cb, 0, 0);
	}
}

static void
kill_worker(struct worker *wk, const char *reason, const char *why)
{
	if (why && wk->lost_why[0] == '\0') {
		snprintf(wk->lost_why, sizeof(wk->lost_why), "%s", why);
		wk->lost_reason = reason;
	}
	if (wk->proc_open && wk->state != W_DOWN)
		uv_process_kill(&wk->proc, SIGKILL);
}

static void
deadline_cb(uv_timer_t *t)
{
	struct worker *wk = t->data;
	char why[160];

	snprintf(why, sizeof(why), "timed out after %d ms (IMAGE_TIMEOUT_MS)",
	    wk->pool->opt.image_timeout_ms);
	kill_worker(wk, "timeout", why);
}

static void
arm_deadline(struct worker *wk)
{
	if (wk->head)
		uv_timer_start(&wk->deadline, deadline_cb,
		    (uint64_t)wk->pool->opt.image_timeout_ms, 0);
	else
		uv_timer_stop(&wk->deadline);
}

static void
protocol_error(struct worker *wk, const char *what)
{
	log_msg(wk->pool->lg, LOG_ERROR, "worker_protocol_error",
	    "worker %d: %s", wk->index + 1, what);
	kill_worker(wk, "protocol", "sent a malformed message");
}

static void
handle_frame(struct worker *wk, const struct ipc_frame *fr)
{
	struct pool *p = wk->pool;
	struct ipc_result res;
	struct inflight *f;
	struct batch_item *item;

	switch (fr->type) {
	case IPC_HELLO:
		if (wk->said_hello) {
			protocol_error(wk, "second hello");
			return;
		}
		wk->said_hello = true;
		wk->state = W_IDLE;
		if (p->cb.on_idle)
			p->cb.on_idle(p->ud);
		return;
	case IPC_RESULT:
		f = wk->head;
		if (f == NULL || f->id != fr->id) {
			protocol_error(wk, "result for a job it does not hold");
			return;
		}
		if (ipc_result_decode(fr->payload, fr->len, &res) < 0) {
			protocol_error(wk, "undecodable result");
			return;
		}
		wk->head = f->next;
		if (wk->head == NULL)
			wk->tail = NULL;
		item = f->item;
		free(f);
		arm_deadline(wk);
		wk->images++;
		if (wk->head == NULL && wk->state == W_BUSY)
			wk->state = W_IDLE;
		/* Like php-fpm's pm.max_requests: a long-lived libvips process
		 * grows under glibc malloc, a fresh one starts small. */
		if (wk->state == W_IDLE && p->opt.max_images > 0 &&
		    wk->images >= p->opt.max_images && !p->stopping) {
			wk->state = W_EXITING;
			wk->recycling = true;
			uv_read_stop((uv_stream_t *)&wk->pipe);
			close_pipe(wk);
		}
		p->cb.on_result(p->ud, wk->index, item, &res);
		if (wk->state == W_IDLE && p->cb.on_idle && !p->stopping)
			p->cb.on_idle(p->ud);
		return;
	default:
		protocol_error(wk, "unknown message type");
	}
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct worker *wk = h->data;

	(void)hint;
	if (wk->rcap - wk->rlen < 65536) {
		size_t nc = wk->rcap ? wk->rcap * 2 : 131072;
		uint8_t *nb = realloc(wk->rbuf, nc);
		if (nb == NULL) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		wk->rbuf = nb;
		wk->rcap = nc;
	}
	*buf = uv_buf_init((char *)wk->rbuf + wk->rlen,
	    (unsigned)(wk->rcap - wk->rlen));
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct worker *wk = s->data;
	struct ipc_frame fr;
	size_t off = 0;
	int used;

	(void)buf;
	if (n < 0) {
		/* EOF: the process exit callback does the bookkeeping. */
		uv_read_stop(s);
		return;
	}
	wk->rlen += (size_t)n;
	while (off < wk->rlen) {
		used = ipc_decode(wk->rbuf + off, wk->rlen - off, &fr);
		if (used == 0)
			break;
		if (used < 0) {
			protocol_error(wk, "malformed frame");
			wk->rlen = 0;
			return;
		}
		handle_frame(wk, &fr);
		off += (size_t)used;
		if (wk->state == W_DOWN)
			break;
	}
	memmove(wk->rbuf, wk->rbuf + off, wk->rlen - off);
	wk->rlen -= off;
}

/* ---- stale workers of an earlier run ----------------------------------- */

/* Reads a /proc file whole (NUL-terminated).  Length, or -1. */
static ssize_t
read_proc(const char *path, char *buf, size_t cap)
{
	ssize_t n, len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((size_t)len < cap - 1 &&
	    (n = read(fd, buf + len, cap - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = '\0';
	return len;
}

/* Is pid a worker of this instance whose supervisor is gone?  Its
 * command line says which supervisor spawned it; a live one is still its
 * parent (PR_SET_PDEATHSIG aside, an orphan is reparented to init or a
 * subreaper), whatever other daemon shares the machine or the queue. */
static bool
stale_worker(const struct pool *p, const char *pid, long *parent)
{
	char path[64], buf[PATH_MAX + 512], *a, *end, *s;
	const char *instance = NULL;
	struct stat sb;
	size_t elen = strlen(p->exe);
	ssize_t n;
	long ppid;

	*parent = 0;
	snprintf(path, sizeof(path), "/proc/%s", pid);
	if (stat(path, &sb) == -1 || sb.st_uid != geteuid())
		return false;
	/* The same executable, or the same path replaced since (an
	 * upgrade while the orphan ran). */
	snprintf(path, sizeof(path), "/proc/%s/exe", pid);
	if ((n = readlink(path, buf, sizeof(buf) - 1)) <= 0)
		return false;
	buf[n] = '\0';
	if (strncmp(buf, p->exe, elen) != 0 || (buf[elen] != '\0' &&
	    strcmp(buf + elen, " (deleted)") != 0))
		return false;
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if ((n = read_proc(path, buf, sizeof(buf))) <= 0)
		return false;
	end = buf + n;
	a = buf + strlen(buf) + 1;	/* argv[1] */
	if (a >= end || strcmp(a, "worker") != 0)
		return false;
	for (a += strlen(a) + 1; a < end; a += strlen(a) + 1) {
		s = a + strlen(a) + 1;
		if (s >= end)
			break;
		if (strcmp(a, "--parent") == 0)
			*parent = strtol(s, NULL, 10);
		else if (strcmp(a, "--instance") == 0)
			instance = s;
	}
	if (*parent <= 0 || instance == NULL ||
	    strcmp(instance, p->instance) != 0)
		return false;
	/* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if (read_proc(path, buf, sizeof(buf)) <= 0 ||
	    (s = strrchr(buf, ')')) == NULL ||
	    sscanf(s + 1, " %*c %ld", &ppid) != 1)
		return false;
	return ppid != *parent;
}

/*
 * Ends what an earlier run of this instance left running: its workers
 * only die with it since PR_SET_PDEATHSIG, and a worker from before that
 * (or one that outlived a kill -9 some other way) spins or waits for ever.
 * The pid is pinned with a pidfd before it is inspected, so a pid reused
 * in between is never signalled.
 */
static void
kill_stale(struct pool *p)
{
	struct json_buf *j;
	struct dirent *de;
	long parent;
	pid_t pid;
	DIR *dp;
	int pfd, rc;

	if ((dp = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    (pid = (pid_t)strtol(de->d_name, NULL, 10)) == getpid())
			continue;
		if ((pfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1)
			continue;
		if (!stale_worker(p, de->d_name, &parent)) {
			close(pfd);
			continue;
		}
		rc = (int)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
		close(pfd);
		if (rc == -1)
			continue;
		if ((j = log_begin(p->lg, LOG_WARN,
		    "stale_worker_killed")) != NULL) {
			json_int(j, "pid", pid);
			json_int(j, "parent", parent);
			json_str(j, "message", "a worker of an earlier run whose "
			    "supervisor is gone");
			log_commit(p->lg);
		}
	}
	closedir(dp);
}

static void
spawn(struct worker *wk)
{
	struct pool *p = wk->pool;
	uv_process_options_t o;
	uv_stdio_container_t stdio[4];
	char *args[11];
	struct json_buf *j;
	int sv[2], rc;

	memset(&o, 0, sizeof(o));
	wk->said_hello = false;
	wk->recycling = false;
	wk->images = 0;
	wk->rlen = 0;
	wk->lost_why[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		rc = -errno;
		goto fail;
	}
	args[0] = p->exe;
	args[1] = "worker";
	args[2] = "--formats";
	args[3] = p->formats;
	args[4] = "--memory-mb";
	args[5] = p->memory_mb;
	/* The worker checks its parent right after PR_SET_PDEATHSIG; the
	 * instance marks it as ours for a later start-up's sweep. */
	args[6] = "--parent";
	args[7] = p->parent;
	args[8] = "--instance";
	args[9] = p->instance;
	args[10] = NULL;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = sv[1];
	o.file = p->exe;
	o.args = args;
	o.exit_cb = exit_cb;
	o.stdio = stdio;
	o.stdio_count = 4;
	wk->proc.data = wk;
	if ((rc = uv_spawn(p->loop, &wk->proc, &o)) < 0) {
		close(sv[0]);
		close(sv[1]);
		/* uv_spawn failure still needs the handle closed. */
		worker_close(wk, (uv_handle_t *)&wk->proc);
		goto fail;
	}
	close(sv[1]);
	wk->proc_open = true;
	wk->pid = wk->proc.pid;
	uv_pipe_init(p->loop, &wk->pipe, 0);
	wk->pipe.data = wk;
	uv_pipe_open(&wk->pipe, sv[0]);
	wk->pipe_open = true;
	wk->state = W_STARTING;
	uv_read_start((uv_stream_t *)&wk->pipe, alloc_cb, read_cb);
	if ((j = log_begin(p->lg, LOG_INFO, "worker_spawned")) != NULL) {
		json_int(j, "worker", wk->index + 1);
		json_int(j, "pid", wk->pid);
		log_commit(p->lg);
	}
	return;
fail:
	log_msg(p->lg, LOG_ERROR, "worker_spawn_failed", "worker %d: %s",
	    wk->index + 1, uv_strerror(rc));
	wk->state = W_DOWN;
	wk->backoff_ms = wk->backoff_ms ? wk->backoff_ms * 2 : RESPAWN_MIN_MS;
	if (wk->backoff_ms > RESPAWN_MAX_MS)
		wk->backoff_ms = RESPAWN_MAX_MS;
	uv_timer_start(&wk->respawn, respawn_cb, (uint64_t)wk->backoff_ms, 0);
}

int
pool_start(struct pool **pp, uv_loop_t *loop, const struct pool_opts *opt,
    const struct pool_hooks *hooks, void *ud, char *err, size_t errlen)
{
	struct pool *p;
	int i;

	*pp = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->w = calloc((size_t)opt->workers, sizeof(*p->w))) == NULL) {
		free(p);
		snprintf(err, errlen, "cannot start workers: %s",
		    strerror(ENOMEM));
		return -ENOMEM;
	}
	p->loop = loop;
	p->opt = *opt;
	snprintf(p->exe, sizeof(p->exe), "%s", opt->exe);
	snprintf(p->formats, sizeof(p->formats), "%s", opt->formats);
	snprintf(p->memory_mb, sizeof(p->memory_mb), "%d", opt->memory_mb);
	snprintf(p->parent, sizeof(p->parent), "%ld", (long)getpid());
	snprintf(p->instance, sizeof(p->instance), "%s", opt->instance ?
	    opt->instance : "-");
	p->lg = opt->lg;
	p->cb = *hooks;
	p->ud = ud;
	p->n = opt->workers;
	p->next_id = 1;
	kill_stale(p);
	uv_timer_init(loop, &p->grace);
	p->grace.data = p;
	for (i = 0; i < p->n; i++) {
		struct worker *wk = &p->w[i];
		wk->pool = p;
		wk->index = i;
		uv_timer_init(loop, &wk->deadline);
		uv_timer_init(loop, &wk->respawn);
		wk->deadline.data = wk->respawn.data = wk;
		spawn(wk);
	}
	*pp = p;
	return 0;
}

int
pool_idle_count(const struct pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->n; i++)
		n += p->w[i].state == W_IDLE;
	return n;
}

int
pool_busy_count(const struct pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->n; i++)
		n += p->w[i].state == W_BUSY;
	return n;
}

int
pool_size(const struct pool *p)
{
	return p->n;
}

uint64_t
pool_restarts(const struct pool *p)
{
	return p->restarts;
}

int
pool_room(const struct pool *p, int index)
{
	const struct worker *wk = &p->w[index];
	const struct inflight *f;
	int held = 0;

	if (p->opt.max_images <= 0)
		return INT_MAX;
	for (f = wk->head; f; f = f->next)
		held++;
	return p->opt.max_images - wk->images - held > 0 ?
	    p->opt.max_images - wk->images - held : 0;
}

int
pool_idle_worker(const struct pool *p)
{
	int i;

	if (p->stopping)
		return -1;
	for (i = 0; i < p->n; i++)
		if (p->w[i].state == W_IDLE)
			return i;
	return -1;
}

static void
write_done(uv_write_t *req, int status)
{
	(void)status;	/* a dead worker is noticed by its exit */
	free(req->data);
	free(req);
}

int
pool_send(struct pool *p, int index, struct batch_item *item,
    const struct ipc_job *job)
{
	struct worker *wk = &p->w[index];
	struct ipc_writer pw;
	struct inflight *f;
	uv_write_t *req;
	uv_buf_t b;
	uint8_t *frame;
	int rc, n;

	if (wk->state != W_IDLE && wk->state != W_BUSY)
		return -EAGAIN;
	ipc_writer_init(&pw);
	if ((rc = ipc_job_encode(&pw, job)) < 0) {
		ipc_writer_free(&pw);
		return rc;
	}
	frame = malloc(IPC_HDR_SIZE + pw.len);
	req = malloc(sizeof(*req));
	f = malloc(sizeof(*f));
	if (frame == NULL || req == NULL || f == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	f->id = p->next_id++;
	if (p->next_id == 0)
		p->next_id = 1;
	n = ipc_encode(frame, IPC_HDR_SIZE + pw.len, IPC_JOB, f->id, pw.buf,
	    pw.len);
	if (n < 0) {
		rc = n;
		goto fail;
	}
	b = uv_buf_init((char *)frame, (unsigned)n);
	req->data = frame;
	if ((rc = uv_write(req, (uv_stream_t *)&wk->pipe, &b, 1,
	    write_done)) < 0)
		goto fail;
	ipc_writer_free(&pw);
	f->item = item;
	f->next = NULL;
	if (wk->tail)
		wk->tail->next = f;
	else
		wk->head = f;
	wk->tail = f;
	if (wk->state == W_IDLE) {
		wk->state = W_BUSY;
		arm_deadline(wk);
	}
	return 0;
fail:
	ipc_writer_free(&pw);
	free(frame);
	free(req);
	free(f);
	return rc;
}

static void
grace_cb(uv_timer_t *t)
{
	struct pool *p = t->data;
	int i;

	for (i = 0; i < p->n; i++)
		kill_worker(&p->w[i], "shutdown", "shutdown");
}

void
pool_stop(struct pool *p, void (*done)(void *ud), void *ud)
{
	int i;

	if (p == NULL) {
		if (done)
			done(ud);
		return;
	}
	if (p->stopping)
		return;
	p->stopping = true;
	p->done = done;
	p->done_ud = ud;
	for (i = 0; i < p->n; i++) {
		struct worker *wk = &p->w[i];
		uv_timer_stop(&wk->respawn);
		if (wk->state == W_DOWN)
			continue;
		wk->state = W_EXITING;
		/* EOF on its channel tells the worker to exit. */
		uv_read_stop((uv_stream_t *)&wk->pipe);
		close_pipe(wk);
	}
	uv_timer_start(&p->grace, grace_cb, (uint64_t)p->opt.stop_grace_ms,
	    0);
	check_stopped(p);
}
