/*
 * thumb: makes every output of one job from a single decode (libvips).
 *
 * Worker side only.  The source is opened beneath the job's in_root (no
 * symlink followed), its format named by magic bytes (sniff.h), and
 * decoded once by that format's own loader to the largest box any output
 * needs (shrink-on-load, EXIF auto-rotate, sRGB 8-bit, first page/frame);
 * each output is then resized from that image in memory, largest first,
 * flattened onto the background when its format has no alpha, written to
 * a temp in its output folder (pinned beneath out_root, no symlink
 * followed), given the source's mtime, and renamed into place.
 */
#ifndef THUMBWATCH_THUMB_H
#define THUMBWATCH_THUMB_H

#include "ipc.h"

/* Initialises libvips for this process: one thread per operation (the
 * parallelism is processes), no operation cache, and a loader allow-list:
 * every VipsForeignLoad blocked, then the loaders of the comma-separated
 * extensions in formats unblocked (jpg,jpeg -> jpeg; png; webp; tif,tiff;
 * gif; heic,heif,avif -> heif; jxl; svg; pdf; anything else -> magick).
 * argv0 for vips_init.  0 or -1 (message on stderr). Call once, after fork. */
int thumb_init(const char *argv0, const char *formats);
void thumb_shutdown(void);

/* Processes one job.  Always fills res (status, ms, error, sizes); returns
 * 0 on success, -1 when res->status is IPC_FAILED.  Never leaves a temp or
 * partial output behind on failure.  Errors are one line, e.g.
 *   "not a supported image (jpegload: Premature end of JPEG file)"
 *   "image too large: 64000x64000 = 4096000000 pixels (MAX_PIXELS 268402689)"
 *   "format not enabled: pdf (EXTENSIONS)" */
int thumb_process(const struct ipc_job *job, struct ipc_result *res);

#endif
