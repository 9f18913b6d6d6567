/*
 * fsutil: creating folders and writing whole buffers, the file-system
 * chores several modules share.
 *
 * Pure module (plain POSIX calls; no libuv, no libvips).
 */
#ifndef THUMBWATCH_FSUTIL_H
#define THUMBWATCH_FSUTIL_H

#include <sys/types.h>

/* mkdir -p dir with mode for the folders it makes (existing ones keep
 * theirs).  0, or -errno (-ENOTDIR when dir exists as something else). */
int fs_mkdir_p(const char *dir, mode_t mode);

/* mkdir -p of the folder that holds path. */
int fs_mkdir_parents(const char *path, mode_t mode);

/* Writes all n bytes of buf to fd, again after EINTR and short writes.
 * 0, or -errno. */
int fs_write_all(int fd, const void *buf, size_t n);

#endif
