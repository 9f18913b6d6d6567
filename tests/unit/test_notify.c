/*
 * Unit tests of src/common/notify.c: the sd_notify datagrams, received on a real
 * AF_UNIX datagram socket made here (a path in a temporary folder, and an
 * abstract name), the no-op without $NOTIFY_SOCKET, address errors, and
 * $WATCHDOG_USEC / $WATCHDOG_PID.
 */
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

struct rx {
	int fd;
	char dir[64];
	char path[128];
};

/* A datagram socket bound to a path; $NOTIFY_SOCKET points at it. */
static void
rx_path(struct rx *r)
{
	struct sockaddr_un sa;

	snprintf(r->dir, sizeof(r->dir), "/tmp/tw-notify-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/notify", r->dir);
	r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, r->path, strlen(r->path));
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", r->path, 1), 0);
}

/* The same on an abstract name ("@name" in the variable). */
static void
rx_abstract(struct rx *r)
{
	struct sockaddr_un sa;
	socklen_t len;
	char name[64];

	r->dir[0] = '\0';
	snprintf(name, sizeof(name), "tw-notify-test-%ld", (long)getpid());
	r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(name));
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, len), 0);
	snprintf(r->path, sizeof(r->path), "@%s", name);
	assert_int_equal(setenv("NOTIFY_SOCKET", r->path, 1), 0);
}

static void
rx_close(struct rx *r)
{
	close(r->fd);
	if (r->dir[0]) {
		unlink(r->path);
		rmdir(r->dir);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram as a string (fails the test after 2 s). */
static void
rx_get(struct rx *r, char *buf, size_t cap)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	ssize_t n;

	assert_int_equal(poll(&p, 1, 2000), 1);
	n = recv(r->fd, buf, cap - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
}

static bool
rx_empty(struct rx *r)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

static void
test_unset_is_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	assert_int_equal(notify_ready("x"), 0);
	assert_int_equal(notify_stopping(), 0);
	assert_int_equal(notify_watchdog(), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_send("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_path_socket(void **state)
{
	struct rx r;
	char buf[NOTIFY_MAX + 1];

	(void)state;
	rx_path(&r);
	assert_int_equal(notify_send("FOO=1"), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "FOO=1");

	assert_int_equal(notify_ready("watching 3 folders"), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=watching 3 folders");

	assert_int_equal(notify_ready(NULL), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");

	assert_int_equal(notify_stopping(), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");

	assert_int_equal(notify_watchdog(), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "WATCHDOG=1");

	assert_int_equal(notify_status("12 queued"), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=12 queued");
	assert_true(rx_empty(&r));
	rx_close(&r);
}

static void
test_reloading_has_monotonic(void **state)
{
	struct rx r;
	char buf[256], *end;
	unsigned long long us;

	(void)state;
	rx_path(&r);
	assert_int_equal(notify_reloading(), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_memory_equal(buf, "RELOADING=1\nMONOTONIC_USEC=", 27);
	us = strtoull(buf + 27, &end, 10);
	assert_true(us > 0);
	assert_int_equal(*end, '\0');
	rx_close(&r);
}

static void
test_abstract_socket(void **state)
{
	struct rx r;
	char buf[256];

	(void)state;
	rx_abstract(&r);
	assert_int_equal(notify_stopping(), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	assert_int_equal(notify_sendf("STATUS=%d done", 42), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=42 done");
	rx_close(&r);
}

/* A newline in STATUS would start a bogus assignment. */
static void
test_status_is_one_line(void **state)
{
	struct rx r;
	char buf[256];

	(void)state;
	rx_path(&r);
	assert_int_equal(notify_ready("a\nREADY=0\rb"), 0);
	rx_get(&r, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=a READY=0 b");
	rx_close(&r);
}

static void
test_address_errors(void **state)
{
	char longp[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	assert_int_equal(notify_send("READY=1"), -EAFNOSUPPORT);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	assert_int_equal(notify_send("READY=1"), -ENAMETOOLONG);
	/* Nobody bound there. */
	setenv("NOTIFY_SOCKET", "/nonexistent-thumbwatch-dir/notify", 1);
	assert_true(notify_send("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_too_long_message(void **state)
{
	struct rx r;
	char *big;

	(void)state;
	rx_path(&r);
	big = malloc(NOTIFY_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', NOTIFY_MAX + 1);
	big[NOTIFY_MAX + 1] = '\0';
	assert_int_equal(notify_send(big), -EMSGSIZE);
	assert_true(rx_empty(&r));
	free(big);
	rx_close(&r);
}

static void
test_watchdog_usec(void **state)
{
	char pid[32];

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "2000000", 1);
	assert_int_equal(notify_watchdog_usec(), 2000000);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 2000000);
	/* Inherited from a parent the watchdog is about: not ours. */
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_PID", "x", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "-5", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "99999999999999999999999", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset_is_noop),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_reloading_has_monotonic),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_status_is_one_line),
		cmocka_unit_test(test_address_errors),
		cmocka_unit_test(test_too_long_message),
		cmocka_unit_test(test_watchdog_usec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
