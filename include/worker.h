/*
 * worker: the worker process's main loop.
 *
 * A plain blocking loop on one IPC descriptor: send IPC_HELLO, then read
 * IPC_JOB frames and answer each with one IPC_RESULT, in order.  A
 * malformed frame or an unknown type is reported on stderr and ends the
 * worker with exit status 2 (the supervisor replaces it); EOF ends it with 0.
 */
#ifndef THUMBWATCH_WORKER_H
#define THUMBWATCH_WORKER_H

/* Runs until EOF on fd.  Returns the process exit status. */
int worker_main(int fd, const char *argv0, const char *formats);

#endif
