/*
 * control_client: the command line's end of the control socket
 * (see control_client.h; the protocol is control.h's).  Blocking: one
 * request, one answer, then the process exits.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "control.h"
#include "control_client.h"
#include "json.h"
#include "safedir.h"
#include "timeutil.h"

/* The client waits this long for an answer; the daemon answers from its
 * loop at once, so only a stuck daemon takes longer. */
#define CLIENT_TIMEOUT_MS	30000
/* Largest response the client accepts (a reprocess of many paths). */
#define RESPONSE_MAX		(16 * 1024 * 1024)

static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads up to the first '\n' (or EOF).  0, -ETIMEDOUT, -E2BIG, -errno. */
static int
read_line(int fd, struct json_buf *o)
{
	int64_t deadline = time_mono_ms() + CLIENT_TIMEOUT_MS, left;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[8192];
	ssize_t n;

	for (;;) {
		if ((left = deadline - time_mono_ms()) <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		/* The server closes right after its answer; a reset after a
		 * complete line is still an answer. */
		if (n == -1)
			return o->len > 0 && errno == ECONNRESET ? 0 : -errno;
		if (n == 0)
			return 0;
		json_raw(o, buf, (size_t)n);
		if (o->err)
			return o->err;
		if (memchr(buf, '\n', (size_t)n) != NULL)
			return 0;
		if (o->len > RESPONSE_MAX)
			return -E2BIG;
	}
}

int
control_client(const char *sock_path, const char *request, FILE *out,
    bool json)
{
	struct sockaddr_un sa;
	struct json_buf resp;
	char *text = NULL, *error = NULL, *nl, err[1024];
	size_t rlen = strlen(request), len;
	bool ok;
	int fd, rc, status;

	if (control_socket_addr(&sa, sock_path) < 0) {
		fprintf(stderr, "thumbwatch: control socket path %s is too "
		    "long for a Unix socket\n", sock_path);
		return EX_UNAVAILABLE;
	}
	/* A missing folder is "no daemon", said below; an unsafe one may
	 * hold another user's socket, which must not get our request. */
	if ((rc = control_socket_dir_check(sock_path, SAFEDIR_CLIENT, err,
	    sizeof(err))) == -EPERM) {
		fprintf(stderr, "thumbwatch: %s\n", err);
		return EX_NOPERM;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "thumbwatch: socket: %s\n", strerror(errno));
		return EX_OSERR;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		rc = errno;
		close(fd);
		if (rc == EACCES || rc == EPERM) {
			fprintf(stderr, "thumbwatch: %s: permission denied: "
			    "the control socket is for the daemon's user only; "
			    "run this as that user (or root)\n", sock_path);
			return EX_NOPERM;
		}
		fprintf(stderr, "thumbwatch: no daemon is listening on %s "
		    "(%s); is `thumbwatch run` running with this "
		    "RUNTIME_DIR?\n", sock_path, strerror(rc));
		return EX_UNAVAILABLE;
	}
	if ((rc = send_all(fd, request, rlen)) == 0 &&
	    (rlen == 0 || request[rlen - 1] != '\n'))
		rc = send_all(fd, "\n", 1);
	json_init(&resp);
	/* A send error (the daemon closed early) may still leave its
	 * answer (e.g. "line too long") to read. */
	if ((status = read_line(fd, &resp)) < 0 || resp.len == 0) {
		close(fd);
		if (status == -ETIMEDOUT) {
			fprintf(stderr, "thumbwatch: the daemon on %s did not "
			    "answer within %d s\n", sock_path,
			    CLIENT_TIMEOUT_MS / 1000);
			json_free(&resp);
			return EX_TEMPFAIL;
		}
		fprintf(stderr, "thumbwatch: no answer from the daemon on %s "
		    "(%s)\n", sock_path, strerror(status < 0 ? -status :
		    rc < 0 ? -rc : EPIPE));
		json_free(&resp);
		return EX_PROTOCOL;
	}
	close(fd);
	len = (nl = memchr(resp.buf, '\n', resp.len)) ?
	    (size_t)(nl - resp.buf) : resp.len;
	if (control_parse_response(resp.buf, len, &ok, &text, &error) < 0) {
		fprintf(stderr, "thumbwatch: the daemon on %s sent something "
		    "that is not a response: %.200s\n", sock_path, resp.buf);
		json_free(&resp);
		return EX_PROTOCOL;
	}
	if (json) {
		fwrite(resp.buf, 1, len, out);
		fputc('\n', out);
	} else if (!ok && error != NULL) {
		fprintf(stderr, "thumbwatch: %s\n", error);
	} else if (text != NULL) {
		fputs(text, out);
		if (text[0] && text[strlen(text) - 1] != '\n')
			fputc('\n', out);
	}
	fflush(out);
	free(text);
	free(error);
	json_free(&resp);
	return ok ? 0 : 1;
}
