/*
 * uptodate: whether a source's thumbnail for one preset must be made.
 *
 * Pure module: the caller stats, this decides.  A thumbnail is up to date
 * when it exists, its mtime equals the source's mtime (workers copy it), the
 * source size recorded on it (if any) equals the source's size, and
 * it was made after the preset's current definition took effect (its ctime
 * is not older than the preset epoch: the ctime of the preset's state file,
 * rewritten whenever the preset's fingerprint changes; ctime cannot be set
 * by anyone, so a thumbnail made under an old definition is always older).
 */
#ifndef THUMBWATCH_UPTODATE_H
#define THUMBWATCH_UPTODATE_H

#include <stdbool.h>
#include <stdint.h>

/* Workers record the size of the source they read on each thumbnail, in
 * this extended attribute: a replacement with the same mtime (cp -p,
 * rsync -t, two writes in one clock tick) still shows as a change. */
#define UPTODATE_XATTR_SIZE "user.thumbwatch.srcsize"

struct uptodate_stat {
	bool exists;
	int64_t mtime_ns;
	int64_t ctime_ns;
	int64_t src_size;	/* recorded source size, -1 when none (a
				 * filesystem without user xattrs) */
};

enum uptodate_verdict {
	UPTODATE_FRESH,		/* nothing to do */
	UPTODATE_MISSING,	/* no thumbnail yet */
	UPTODATE_SOURCE_CHANGED,/* source mtime differs */
	UPTODATE_PRESET_CHANGED	/* made under an older preset definition */
};

enum uptodate_verdict uptodate_check(int64_t src_mtime_ns, int64_t src_size,
    const struct uptodate_stat *out, int64_t preset_epoch_ns);

const char *uptodate_verdict_name(enum uptodate_verdict v);

#endif
