/*
 * control_client: the command line's end of the control socket (the
 * protocol is control.h's): blocking, one request and one answer.
 */
#ifndef THUMBWATCH_CONTROL_CLIENT_H
#define THUMBWATCH_CONTROL_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

/* Sends request (a line from control_format_request; a missing '\n' is
 * added) to the daemon listening on sock_path and writes the answer to
 * out: the raw JSON line with json, else its "text".  Messages about the
 * connection itself go to stderr.  Returns a sysexits(3) status:
 *   0   the daemon answered ok
 *   1   it answered, but not ok (e.g. a path it could not queue)
 *   69  EX_UNAVAILABLE: no daemon listens on sock_path
 *   75  EX_TEMPFAIL: it accepted but did not answer in time
 *   76  EX_PROTOCOL: the answer was not a response line
 *   77  EX_NOPERM: the socket is someone else's (owner only)
 *   71  EX_OSERR: a local system call failed */
int control_client(const char *sock_path, const char *request, FILE *out,
    bool json);

#endif
