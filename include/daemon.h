/*
 * daemon: the supervisor.  Wires the watcher, the queue, the worker pool,
 * the log and the signals together on one libuv loop.  It never decodes an
 * image.
 */
#ifndef THUMBWATCH_DAEMON_H
#define THUMBWATCH_DAEMON_H

#include "config.h"

enum daemon_mode { DAEMON_RUN, DAEMON_ONCE };

/* Re-reads every configuration source (SIGHUP).  0, or -EINVAL with a
 * message in err (the running configuration stays). */
typedef int (*daemon_reload_fn)(void *ud, struct config *out, char *err,
    size_t errlen);

/* Runs until SIGTERM/SIGINT (run) or until the input tree is processed
 * (once).  Returns the process exit status (<sysexits.h>): 0; 1 when
 * `once` saw a failure; EX_NOINPUT when the input folder cannot be used;
 * EX_CANTCREAT when the output, the log or the pidfile cannot be made;
 * EX_CONFIG for a configuration that cannot run; EX_TEMPFAIL when
 * another daemon holds the folder or the port; EX_SOFTWARE on an
 * internal error. */
int daemon_main(struct config *cfg, enum daemon_mode mode, const char *exe,
    daemon_reload_fn reload, void *reload_ud);

#endif
