/*
 * sniff: what an image file is, from its first bytes, and whether a PNG
 * carries more metadata than any honest one, from its chunk headers.
 *
 * Threat model: a dropper names a file x.jpg and fills it with anything.
 * libvips' own format sniffing runs every loader's is_a code, blocked ones
 * included, on those bytes (svgload's inflates a gzip stream and spins on
 * a truncated one), so the worker decides the format here, from magic
 * bytes only, and then runs that one loader or none.  A PNG's text and
 * profile chunks are inflated by libpng with no total bound (300 zTXt
 * chunks of 8 MB each made a worker take 1.9 GB): the walk below measures
 * them first, inflating at most the limit, and refuses past it.
 *
 * Pure module (zlib only; no libuv, no libvips, no glib): both functions
 * are bounded in time and memory whatever the input, and fuzzed
 * (tests/fuzz/fuzz_sniff.c).
 */
#ifndef THUMBWATCH_SNIFF_H
#define THUMBWATCH_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the file's start that sniff_format() needs to see. */
#define SNIFF_HEAD 1024

enum sniff_format {
	SNIFF_UNKNOWN = 0,
	SNIFF_JPEG,
	SNIFF_PNG,
	SNIFF_WEBP,
	SNIFF_TIFF,
	SNIFF_GIF,
	SNIFF_HEIF,	/* HEIC and AVIF: one loader */
	SNIFF_JXL,
	SNIFF_SVG,
	SNIFF_GZIP,	/* only the svg loader reads gzip (SVGZ) */
	SNIFF_PDF,
	/* Formats libvips (or ImageMagick) reads that thumbwatch never maps
	 * to a native loader: named so the refusal says what the file is. */
	SNIFF_JP2K,
	SNIFF_FITS,
	SNIFF_PPM,
	SNIFF_VIPS,
	SNIFF_RAD,
	SNIFF_EXR,
	SNIFF_BMP,
	SNIFF_ICO,
	SNIFF_PSD,
	SNIFF_MAX
};

/* The format of a file whose first len bytes are p (len may be below
 * SNIFF_HEAD for a short file).  Never reads past p + len. */
enum sniff_format sniff_format(const uint8_t *p, size_t len);

/* "jpeg", "svg", ...: what a user calls the format. */
const char *sniff_name(enum sniff_format f);

/* Limits of sniff_png_check(). */
#define SNIFF_PNG_META_MAX ((uint64_t)8 << 20)	/* bytes, inflated */
#define SNIFF_PNG_META_CHUNKS 1000		/* no honest file has as many */
#define SNIFF_PNG_CHUNKS_MAX (4u << 20)		/* chunks walked */

/* Reads up to len bytes at off into buf: the count read (short or 0 at
 * the end of the file) or -errno. */
typedef long (*sniff_read_fn)(void *ctx, uint64_t off, void *buf,
    size_t len);

/* Walks the chunks of a PNG (signature included) through rd, adding up
 * the metadata chunks libpng keeps in memory (tEXt, zTXt, iTXt, iCCP,
 * eXIf, sPLT), compressed ones at their inflated size.  0 when within the
 * limits or when the file is not a well-formed chunk sequence (the loader
 * then says what is wrong with it); -EFBIG with a one-line reason in why
 * when over a limit; -errno when rd failed. */
int sniff_png_check(sniff_read_fn rd, void *ctx, char *why, size_t whylen);

/* Limit of sniff_jpeg_check(): libjpeg keeps every APP1 (EXIF, XMP),
 * APP2 (ICC), APP13 and APP14 segment libvips asks for in memory, 64 KiB
 * each, as many as the file holds, and libvips copies them again. */
#define SNIFF_JPEG_META_MAX ((uint64_t)16 << 20)
#define SNIFF_JPEG_SEGMENTS_MAX (1u << 20)

/* Walks a JPEG's segments up to the start of scan, adding up those
 * metadata segments.  Same returns as sniff_png_check(). */
int sniff_jpeg_check(sniff_read_fn rd, void *ctx, char *why, size_t whylen);

#endif
