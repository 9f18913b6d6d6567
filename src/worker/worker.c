/*
 * worker: the worker process's main loop.
 *
 * Owns the worker end of the IPC channel: a blocking loop that says
 * IPC_HELLO, then answers every IPC_JOB frame with exactly one IPC_RESULT,
 * in order.  All image work is thumb's; this file only frames, reads and
 * writes.  Anything it cannot understand ends the process (status 2) so
 * the supervisor replaces it instead of trusting a confused stream.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "ipc.h"
#include "thumb.h"

/* One whole frame of the largest size fits, so a complete frame is always
 * decodable from the buffer without growing it. */
#define RBUF_SIZE (IPC_HDR_SIZE + IPC_MAX_PAYLOAD)

/* Frames payload w as type/id and writes it.  0 or -errno. */
static int
send_frame(int fd, uint16_t type, uint32_t id, struct ipc_writer *w)
{
	if (w->err != 0)
		return w->err;
	size_t cap = IPC_HDR_SIZE + w->len;
	uint8_t *frame = malloc(cap);
	if (frame == NULL)
		return -ENOMEM;
	int n = ipc_encode(frame, cap, type, id, w->buf, w->len);
	int rc = n < 0 ? n : fs_write_all(fd, frame, (size_t)n);
	free(frame);
	return rc;
}

/* Test hook for the supervisor's crash and deadline handling: only with
 * THUMBWATCH_TEST_HOOKS=1, and only for sources named so on purpose. */
static void
test_hook(const char *src)
{
	const char *name = strrchr(src, '/');
	name = name != NULL ? name + 1 : src;
	if (strstr(name, "__crash__") != NULL)
		abort();
	if (strstr(name, "__hang__") != NULL)
		for (;;)
			pause();
	/* A long image, for the shared queue's keep-alive. */
	if (strstr(name, "__slow__") != NULL)
		sleep(4);
}

static int
malformed(const char *why)
{
	fprintf(stderr, "thumbwatch worker: malformed frame from supervisor "
	    "(%s)\n", why);
	return 2;
}

/* Handles one decoded frame.  0 to go on, else the exit status. */
static int
handle(int fd, const struct ipc_frame *f, struct ipc_job *job, bool hooks)
{
	struct ipc_result res;
	struct ipc_writer w;
	char why[64];
	int rc;

	if (f->type != IPC_JOB) {
		snprintf(why, sizeof why, "unexpected message type %u",
		    (unsigned)f->type);
		return malformed(why);
	}
	if (ipc_job_decode(f->payload, f->len, job) != 0)
		return malformed("bad job payload");
	if (hooks)
		test_hook(job->src);

	thumb_process(job, &res);

	ipc_writer_init(&w);
	rc = ipc_result_encode(&w, &res);
	if (rc == 0)
		rc = send_frame(fd, IPC_RESULT, f->id, &w);
	ipc_writer_free(&w);
	if (rc != 0) {
		fprintf(stderr, "thumbwatch worker: cannot send result to "
		    "supervisor (%s)\n", strerror(-rc));
		return 1;
	}
	return 0;
}

int
worker_main(int fd, const char *argv0, const char *formats)
{
	const char *env = getenv("THUMBWATCH_TEST_HOOKS");
	bool hooks = env != NULL && strcmp(env, "1") == 0;
	struct ipc_job *job = NULL;
	struct ipc_writer w;
	uint8_t *buf = NULL;
	size_t have = 0;
	int status = 1, rc;

	/* A supervisor that died mid-write must give EPIPE, not kill us
	 * silently before we can say why on stderr. */
	signal(SIGPIPE, SIG_IGN);

	if (thumb_init(argv0, formats) != 0)
		return 1;

	job = malloc(sizeof *job);
	buf = malloc(RBUF_SIZE);
	if (job == NULL || buf == NULL) {
		fprintf(stderr, "thumbwatch worker: out of memory\n");
		goto out;
	}

	ipc_writer_init(&w);
	ipc_put_u32(&w, (uint32_t)getpid());
	rc = send_frame(fd, IPC_HELLO, 0, &w);
	ipc_writer_free(&w);
	if (rc != 0) {
		/* EPIPE: the supervisor is already gone (a `once` with nothing
		 * to do); there is no one to tell. */
		if (rc != -EPIPE)
			fprintf(stderr, "thumbwatch worker: cannot greet "
			    "supervisor (%s)\n", strerror(-rc));
		goto out;
	}

	for (;;) {
		/* Every complete frame already buffered, then read more. */
		size_t off = 0;
		for (;;) {
			struct ipc_frame f;
			int n = ipc_decode(buf + off, have - off, &f);
			if (n < 0) {
				status = malformed("bad header");
				goto out;
			}
			if (n == 0)
				break;
			int hs = handle(fd, &f, job, hooks);
			if (hs != 0) {
				status = hs;
				goto out;
			}
			off += (size_t)n;
		}
		if (off > 0) {
			memmove(buf, buf + off, have - off);
			have -= off;
		}

		ssize_t r = read(fd, buf + have, RBUF_SIZE - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "thumbwatch worker: cannot read from "
			    "supervisor (%s)\n", strerror(errno));
			goto out;
		}
		if (r == 0) {
			if (have > 0) {
				status = malformed("stream ends inside a frame");
				goto out;
			}
			status = 0;
			goto out;
		}
		have += (size_t)r;
	}

out:
	free(buf);
	free(job);
	thumb_shutdown();
	return status;
}
