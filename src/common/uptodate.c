/*
 * uptodate: the verdict on one thumbnail, from stat results the caller took.
 *
 * Owns only the order of the checks, which is what makes a restart after
 * `kill -9` cheap and correct: existence first (nothing else can be judged
 * without a file), then the source's mtime (workers copy it onto every
 * output, so any edit or replacement of the source shows as a mismatch,
 * in either direction), then the preset epoch (a thumbnail whose ctime is
 * older than the preset's current definition was made under an old one).
 */
#include <stddef.h>

#include "uptodate.h"

/* An output folder on a filesystem that keeps whole seconds (FAT, some
 * SMB and NFS mounts) stores the copied mtime without its fraction; a
 * mismatch in the fraction alone must not redo the thumbnail forever. */
static int
same_second_on_coarse_fs(int64_t src_ns, int64_t out_ns)
{
	const int64_t s = 1000000000;

	return out_ns % s == 0 && src_ns >= 0 && out_ns / s == src_ns / s;
}

enum uptodate_verdict
uptodate_check(int64_t src_mtime_ns, int64_t src_size,
    const struct uptodate_stat *out, int64_t preset_epoch_ns)
{
	if (out == NULL || !out->exists)
		return UPTODATE_MISSING;
	if (out->mtime_ns != src_mtime_ns && !same_second_on_coarse_fs(
	    src_mtime_ns, out->mtime_ns))
		return UPTODATE_SOURCE_CHANGED;
	if (out->src_size >= 0 && out->src_size != src_size)
		return UPTODATE_SOURCE_CHANGED;
	if (out->ctime_ns < preset_epoch_ns)
		return UPTODATE_PRESET_CHANGED;
	return UPTODATE_FRESH;
}

/* Names as they appear in log lines (the `reason` of a redo). */
const char *
uptodate_verdict_name(enum uptodate_verdict v)
{
	switch (v) {
	case UPTODATE_FRESH:
		return "fresh";
	case UPTODATE_MISSING:
		return "missing";
	case UPTODATE_SOURCE_CHANGED:
		return "source_changed";
	case UPTODATE_PRESET_CHANGED:
		return "preset_changed";
	}
	return "unknown";
}
