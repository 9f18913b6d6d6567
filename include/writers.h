/*
 * writers: is anyone holding a file open for writing right now?
 *
 * A walk finds files written less than SETTLE_MS ago.  Most are complete
 * (a `cp -r` that finished a moment before `thumbwatch once`); a few are
 * still being written.  Waiting SETTLE_MS for all of them costs an idle
 * half second at start-up; asking the kernel costs one open.
 *
 * Linux: a read lease (fcntl F_SETLEASE, F_RDLCK) is refused with EAGAIN
 * while any process has the file open for writing, and is released at
 * once.  Taking a lease needs the caller to own the file or CAP_LEASE, and
 * some file systems (NFS, overlay, FUSE) refuse leases: then the answer is
 * "cannot tell" and the caller keeps waiting SETTLE_MS.
 *
 * A writer that opens the file while the lease is held (microseconds) makes
 * the kernel send the lease holder SIGIO, whose default action ends the
 * process: writers_none ignores SIGIO if nobody handles it.
 *
 * Pure module (plain Linux calls; no libuv, no libvips).
 */
#ifndef THUMBWATCH_WRITERS_H
#define THUMBWATCH_WRITERS_H

/* rel (beneath root, no symlink followed at any level) is a regular file
 * nobody has open for writing: 0.  Someone has it open for writing (or
 * holds a lease on it): 1.  Cannot tell (no lease here: EACCES, EPERM,
 * EINVAL; not a regular file; gone; not Linux): a negative errno. */
int writers_none(int root, const char *rel);

#endif
