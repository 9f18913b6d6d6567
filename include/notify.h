/*
 * notify: the systemd service notification protocol, without libsystemd.
 *
 * Pure module (no libuv, no libvips).  A notification is one datagram of
 * "KEY=VALUE\n..." text sent to the AF_UNIX socket named by $NOTIFY_SOCKET:
 * a path ("/run/systemd/notify") or an abstract name ("@name", the '@'
 * standing for the leading NUL byte).  With $NOTIFY_SOCKET unset (not run
 * by systemd, or Type= other than notify) every call is a no-op returning
 * 0, so callers never need to ask whether systemd is there.  The protocol
 * is what sd_notify(3) documents; nothing here links libsystemd, so the
 * daemon builds wherever libuv does.
 */
#ifndef THUMBWATCH_NOTIFY_H
#define THUMBWATCH_NOTIFY_H

#include <stdint.h>

/* Longest notification accepted (systemd reads at most a page or so). */
#define NOTIFY_MAX 4096

/* Sends state (e.g. "READY=1\nSTATUS=watching") as one datagram to
 * $NOTIFY_SOCKET.  0 when sent or when $NOTIFY_SOCKET is unset or empty;
 * -EAFNOSUPPORT for an address that is neither a path nor "@name";
 * -ENAMETOOLONG when it does not fit a sockaddr_un; -EMSGSIZE when state
 * is longer than NOTIFY_MAX; else -errno of socket/sendto (e.g.
 * -ECONNREFUSED when nobody listens). */
int notify_send(const char *state);

/* printf-style notify_send. */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "READY=1" plus "STATUS=status" when status is not NULL: start-up is
 * complete (Type=notify services count as started only now).  Also sent
 * after a reload finishes. */
int notify_ready(const char *status);

/* "STATUS=status": a one-line free-form state shown by systemctl status. */
int notify_status(const char *status);

/* "STOPPING=1": the service is shutting down (drain started). */
int notify_stopping(void);

/* "RELOADING=1" with "MONOTONIC_USEC=" (CLOCK_MONOTONIC, which systemd
 * 253+ requires with RELOADING=1 and older versions ignore).  Send
 * notify_ready() once the reload is done. */
int notify_reloading(void);

/* "WATCHDOG=1": keep-alive ping for WatchdogSec=. */
int notify_watchdog(void);

/* The watchdog period in microseconds from $WATCHDOG_USEC, or 0 when the
 * watchdog is off: unset, not a positive decimal number, or $WATCHDOG_PID
 * is set and is not this process (the variables were inherited by a child
 * the watchdog is not about).  Ping at half this period, as sd_notify(3)
 * recommends. */
uint64_t notify_watchdog_usec(void);

#endif
