/*
 * treewalk: the one walk of a folder tree that thumbwatch does outside
 * the watcher (stale temps, failure markers, `reprocess DIR`, `failures`).
 *
 * Pure module.  Never follows a symbolic link: each folder is opened from
 * its parent's descriptor with O_NOFOLLOW, so a folder swapped for a link
 * mid-walk is reported as a link, never entered.  Depth is capped.
 */
#ifndef THUMBWATCH_TREEWALK_H
#define THUMBWATCH_TREEWALK_H

#define TREEWALK_MAX_DEPTH 64

enum {
	TREEWALK_NEXT = 0,	/* go on (into a folder: enter it) */
	TREEWALK_SKIP = 1,	/* a folder: do not enter it */
};

/* dirfd: the folder holding the entry (for fstatat, unlinkat); name: the
 * entry; rel: sub joined with the path below the walk's start; type: a
 * DT_* value, DT_UNKNOWN resolved without following a link; depth: 0 for
 * the start's own entries.  Returns TREEWALK_NEXT, TREEWALK_SKIP, or a
 * negative errno that ends the walk. */
typedef int (*treewalk_fn)(void *ud, int dirfd, const char *name,
    const char *rel, unsigned char type, int depth);

/* Walks dfd (consumed: closed before returning), depth first, a folder
 * before its entries; "." and ".." and entries whose rel would not fit
 * PATH_MAX are passed over.  0, or what fn returned to stop. */
int treewalk(int dfd, const char *sub, treewalk_fn fn, void *ud);

#endif
