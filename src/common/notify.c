/*
 * notify: sd_notify(3) without libsystemd.
 *
 * Each call opens a datagram socket, sends one message and closes it: the
 * daemon notifies a handful of times (ready, reload, stop) plus a watchdog
 * ping every few seconds, so a cached descriptor would save nothing and
 * would need care across the fork+exec of workers.  The environment is
 * read on every call, so tests can point $NOTIFY_SOCKET at their own
 * socket at any time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

/* Fills sa from a $NOTIFY_SOCKET value.  0 or -errno. */
static int
notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* systemd also knows "vsock:CID:PORT" (VMs); a daemon in a VM's
	 * guest would use a path, so only the two AF_UNIX forms are kept. */
	if (name[0] != '/' && name[0] != '@')
		return -EAFNOSUPPORT;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@') {
		/* Abstract: a leading NUL, and the length says where the name
		 * ends (it is not NUL-terminated). */
		sa->sun_path[0] = '\0';
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n);
	} else {
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n + 1);
	}
	return 0;
}

int
notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	ssize_t n;
	int fd, rc;

	if (name == NULL || name[0] == '\0')
		return 0;
	len = strlen(state);
	if (len > NOTIFY_MAX)
		return -EMSGSIZE;
	if ((rc = notify_addr(name, &sa, &salen)) < 0)
		return rc;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	/* MSG_NOSIGNAL: a vanished receiver must not kill the daemon. */
	do {
		n = sendto(fd, state, len, MSG_NOSIGNAL,
		    (const struct sockaddr *)&sa, salen);
	} while (n == -1 && errno == EINTR);
	rc = n == -1 ? -errno : (size_t)n != len ? -EMSGSIZE : 0;
	close(fd);
	return rc;
}

int
notify_sendf(const char *fmt, ...)
{
	char buf[NOTIFY_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(buf))
		return -EMSGSIZE;
	return notify_send(buf);
}

/* STATUS= is one line: a newline would start a new (bogus) assignment. */
static void
one_line(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < cap; i++)
		dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
	dst[i] = '\0';
}

int
notify_ready(const char *status)
{
	char line[NOTIFY_MAX - 32];

	if (status == NULL)
		return notify_send("READY=1");
	one_line(line, sizeof(line), status);
	return notify_sendf("READY=1\nSTATUS=%s", line);
}

int
notify_status(const char *status)
{
	char line[NOTIFY_MAX - 32];

	one_line(line, sizeof(line), status);
	return notify_sendf("STATUS=%s", line);
}

int
notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
}

int
notify_watchdog(void)
{
	return notify_send("WATCHDOG=1");
}

/* A positive decimal number that fits, or 0. */
static unsigned long long
parse_positive(const char *s)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	return v;
}

uint64_t
notify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long p;

	if (pid != NULL && pid[0] != '\0') {
		p = parse_positive(pid);
		if (p == 0 || p != (unsigned long long)getpid())
			return 0;
	}
	return (uint64_t)parse_positive(getenv("WATCHDOG_USEC"));
}
