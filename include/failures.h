/*
 * failures: the failures the daemon remembers, listed for `thumbwatch
 * failures [--json]` without a running daemon.
 *
 * A failed source leaves a marker at OUTPUT_DIR/.thumbwatch/failed/<path
 * below INPUT_DIR>: its text is the `failed` line's error, its mtime the
 * failed bytes' mtime (same mtime: same verdict, not decoded again), its
 * ctime when it failed.  A marker whose source is gone or was written
 * again since is listed as not current: that file will be tried again.
 *
 * Pure module (POSIX calls and json.c; no libuv, no libvips).
 */
#ifndef THUMBWATCH_FAILURES_H
#define THUMBWATCH_FAILURES_H

#include <stdbool.h>
#include <stdio.h>

/* Writes every marker below output_dir's state folder to out, oldest
 * failure first: a line per file (time, name, reason; "(written again
 * since)" when not current) or, with json, one object {"failures": [{file,
 * error, failed_at, current}], "count": N}.  The number listed (0 with
 * no state folder: nothing ever failed there), or -errno. */
int failures_list(const char *input_dir, const char *output_dir, bool json,
    FILE *out);

/* The reason a marker open on fd holds (its first line) into out; its
 * length, 0 for a marker written before markers held their reason. */
size_t failures_reason(int fd, char *out, size_t cap);

#endif
