/*
 * beneath: file-system calls on a path below a root folder that never
 * follow a symbolic link, at any component, and never leave the root.
 *
 * Threat model: a dropper can swap any folder of INPUT_DIR (or of an
 * OUTPUT_DIR nested in it) for a symlink at any moment, racing us.  A
 * check on the last component (O_NOFOLLOW) or a realpath() before the open
 * does not hold against that; resolving every component relative to a
 * descriptor of the root, refusing links, does.
 *
 * Linux openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (5.6+) does it in
 * the kernel.  Where the kernel or a seccomp filter refuses openat2
 * (ENOSYS, EPERM), a walk opens one component at a time with O_NOFOLLOW.
 *
 * rel is relative to the root: no leading '/', no ".." component; "" or
 * "." names the root itself.  Every call returns a descriptor or 0, else
 * a negative errno: -ELOOP when a component is a symlink, -EXDEV when rel
 * would leave the root, -ENOENT / -ENOTDIR as usual.
 *
 * Pure module (plain Linux calls; no libuv, no libvips).
 */
#ifndef THUMBWATCH_BENEATH_H
#define THUMBWATCH_BENEATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Opens a root folder (an administrator's path, trusted: symlinks in it
 * are followed) as O_PATH | O_DIRECTORY | O_CLOEXEC.  fd or -errno. */
int beneath_root(const char *path);

/* openat(root, rel, flags, mode) resolved beneath root with no symlink at
 * any level, the last one included (-ELOOP).  O_CLOEXEC is always added. */
int beneath_open(int root, const char *rel, int flags, mode_t mode);

/* Opens the folder that holds rel's last component (O_PATH | O_DIRECTORY)
 * and points *leaf at that component inside rel, for the *at() calls that
 * act on a name (unlinkat, renameat2, fstatat with AT_SYMLINK_NOFOLLOW,
 * mkdirat).  rel must name something below the root, not the root.  fd or
 * -errno (-EINVAL for "", "." or a trailing "/"). */
int beneath_parent(int root, const char *rel, const char **leaf);

/* lstat() of rel: a final symlink is reported (S_ISLNK), one in a folder
 * component is -ELOOP. */
int beneath_lstat(int root, const char *rel, struct stat *st);

/* unlink(rel), or rmdir when flags is AT_REMOVEDIR. */
int beneath_unlink(int root, const char *rel, int flags);

/* Unlinks rel only when it is still the file (st_dev, st_ino) that was
 * opened: a name swapped since for another file is left alone (-ESTALE). */
int beneath_unlink_same(int root, const char *rel, dev_t dev, ino_t ino);

/* renameat2(from beneath from_root, to beneath to_root, flags). */
int beneath_rename(int from_root, const char *from, int to_root,
    const char *to, unsigned int flags);

/* mkdir -p of rel beneath root (mode for the folders it makes); an
 * existing component that is a symlink or not a folder is an error. */
int beneath_mkdirs(int root, const char *rel, mode_t mode);

/* mkdir -p of the folder that holds rel. */
int beneath_mkdir_parents(int root, const char *rel, mode_t mode);

/* Whether the kernel path (openat2) is in use; false after it was found
 * missing and the walk took over.  For tests and `check-config`. */
bool beneath_kernel(void);

/* Tests: force the portable walk (true) or let openat2 be tried again. */
void beneath_force_walk(bool on);

#endif
