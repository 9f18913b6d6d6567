/*
 * sniff: image formats by their magic bytes, and the PNG metadata bound.
 * See sniff.h for why the worker does not let libvips guess.
 */
#include "sniff.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

static const char *const names[SNIFF_MAX] = {
	[SNIFF_UNKNOWN] = "unknown",
	[SNIFF_JPEG] = "jpeg",
	[SNIFF_PNG] = "png",
	[SNIFF_WEBP] = "webp",
	[SNIFF_TIFF] = "tiff",
	[SNIFF_GIF] = "gif",
	[SNIFF_HEIF] = "heif",
	[SNIFF_JXL] = "jxl",
	[SNIFF_SVG] = "svg",
	[SNIFF_GZIP] = "svgz",
	[SNIFF_PDF] = "pdf",
	[SNIFF_JP2K] = "jpeg2000",
	[SNIFF_FITS] = "fits",
	[SNIFF_PPM] = "ppm",
	[SNIFF_VIPS] = "vips",
	[SNIFF_RAD] = "radiance",
	[SNIFF_EXR] = "openexr",
	[SNIFF_BMP] = "bmp",
	[SNIFF_ICO] = "ico",
	[SNIFF_PSD] = "psd",
};

const char *
sniff_name(enum sniff_format f)
{
	return f > SNIFF_UNKNOWN && f < SNIFF_MAX ? names[f] : names[0];
}

static bool
starts(const uint8_t *p, size_t len, const void *magic, size_t n)
{
	return len >= n && memcmp(p, magic, n) == 0;
}

/* The HEIF brands libvips' heifload accepts (ISO BMFF "ftyp" box). */
static bool
is_heif(const uint8_t *p, size_t len)
{
	static const char brands[][5] = { "heic", "heix", "hevc", "heim",
	    "heis", "hevm", "hevs", "mif1", "msf1", "avif", "avis" };

	if (len < 12 || memcmp(p + 4, "ftyp", 4) != 0)
		return false;
	for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
		if (memcmp(p + 8, brands[i], 4) == 0)
			return true;
	return false;
}

/* "<svg" in any case, as svgload looks for it; text only before it (an
 * XML declaration, a doctype, comments), so a binary file with those
 * four bytes somewhere is not taken for an SVG. */
static bool
is_svg(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (p[i] == 0)
			return false;
		if (p[i] == '<' && (p[i + 1] | 0x20) == 's' &&
		    (p[i + 2] | 0x20) == 'v' && (p[i + 3] | 0x20) == 'g')
			return true;
	}
	return false;
}

enum sniff_format
sniff_format(const uint8_t *p, size_t len)
{
	if (len > SNIFF_HEAD)
		len = SNIFF_HEAD;
	if (starts(p, len, "\xff\xd8\xff", 3))
		return SNIFF_JPEG;
	if (starts(p, len, "\x89PNG\r\n\x1a\n", 8))
		return SNIFF_PNG;
	if (len >= 12 && memcmp(p, "RIFF", 4) == 0 &&
	    memcmp(p + 8, "WEBP", 4) == 0)
		return SNIFF_WEBP;
	if (starts(p, len, "II*\0", 4) || starts(p, len, "MM\0*", 4) ||
	    starts(p, len, "II+\0", 4) || starts(p, len, "MM\0+", 4))
		return SNIFF_TIFF;
	if (starts(p, len, "GIF87a", 6) || starts(p, len, "GIF89a", 6))
		return SNIFF_GIF;
	if (is_heif(p, len))
		return SNIFF_HEIF;
	if (starts(p, len, "\xff\x0a", 2) ||
	    starts(p, len, "\0\0\0\x0cJXL \r\n\x87\n", 12))
		return SNIFF_JXL;
	if (starts(p, len, "\x1f\x8b", 2))
		return SNIFF_GZIP;
	if (starts(p, len, "%PDF", 4))
		return SNIFF_PDF;
	if (starts(p, len, "\0\0\0\x0cjP  \r\n\x87\n", 12) ||
	    starts(p, len, "\xff\x4f\xff\x51", 4))
		return SNIFF_JP2K;
	if (starts(p, len, "SIMPLE  =", 9))
		return SNIFF_FITS;
	if (len >= 2 && p[0] == 'P' && ((p[1] >= '1' && p[1] <= '7') ||
	    p[1] == 'F' || p[1] == 'f'))
		return SNIFF_PPM;
	if (starts(p, len, "\x08\xf2\xa6\xb6", 4) ||
	    starts(p, len, "\xb6\xa6\xf2\x08", 4))
		return SNIFF_VIPS;
	if (starts(p, len, "#?RADIANCE", 10) || starts(p, len, "#?RGBE", 6))
		return SNIFF_RAD;
	if (starts(p, len, "\x76\x2f\x31\x01", 4))
		return SNIFF_EXR;
	if (starts(p, len, "BM", 2))
		return SNIFF_BMP;
	if (starts(p, len, "\0\0\1\0", 4))
		return SNIFF_ICO;
	if (starts(p, len, "8BPS", 4))
		return SNIFF_PSD;
	if (is_svg(p, len))
		return SNIFF_SVG;
	return SNIFF_UNKNOWN;
}

/* ---- PNG chunk walk ---------------------------------------------------- */

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

struct walk {
	sniff_read_fn rd;
	void *ctx;
	uint64_t meta;		/* metadata bytes so far, inflated */
	uint8_t in[16384], out[16384];
};

/* Where a chunk's zlib stream starts inside its data (first bytes in
 * head, hlen of them), or -1 when it carries none.  zTXt and iCCP:
 * keyword NUL method; iTXt: keyword NUL flag method language NUL
 * translated-keyword NUL, compressed only when flag is 1. */
static long
zstart(const char type[4], const uint8_t *head, size_t hlen)
{
	const uint8_t *nul = memchr(head, 0, hlen);
	size_t at;

	if (nul == NULL)
		return -1;
	at = (size_t)(nul - head) + 1;
	if (memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iCCP", 4) == 0)
		return at + 1 <= hlen ? (long)(at + 1) : -1;
	if (memcmp(type, "iTXt", 4) != 0 || at + 2 > hlen || head[at] != 1)
		return -1;
	at += 2;
	for (int k = 0; k < 2; k++) {
		nul = memchr(head + at, 0, hlen - at);
		if (nul == NULL)
			return -1;
		at = (size_t)(nul - head) + 1;
	}
	return (long)at;
}

/* Adds what the zlib stream at off (len bytes) inflates to, stopping as
 * soon as the total passes the limit: at most SNIFF_PNG_META_MAX bytes
 * of output are ever made, whatever the ratio.  A broken stream counts
 * what came out before it broke (libpng stops there too). */
static int
inflated(struct walk *w, uint64_t off, uint64_t len)
{
	z_stream zs;
	int zrc = Z_OK, rc = 0;

	memset(&zs, 0, sizeof zs);
	if (inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	while (len > 0 && zrc != Z_STREAM_END &&
	    w->meta <= SNIFF_PNG_META_MAX) {
		size_t want = len < sizeof w->in ? (size_t)len : sizeof w->in;
		long n = w->rd(w->ctx, off, w->in, want);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
		len -= (uint64_t)n;
		zs.next_in = w->in;
		zs.avail_in = (uInt)n;
		do {
			zs.next_out = w->out;
			zs.avail_out = sizeof w->out;
			zrc = inflate(&zs, Z_NO_FLUSH);
			w->meta += sizeof w->out - zs.avail_out;
			/* no progress possible without more input */
			if (zrc == Z_BUF_ERROR)
				zrc = Z_OK;
		} while (zrc == Z_OK && zs.avail_out == 0 &&
		    w->meta <= SNIFF_PNG_META_MAX);
		if (zrc != Z_OK && zrc != Z_STREAM_END)
			break;
	}
	inflateEnd(&zs);
	return rc;
}

static bool
is_meta(const char type[4])
{
	static const char meta[][5] = { "tEXt", "zTXt", "iTXt", "iCCP",
	    "eXIf", "sPLT" };

	for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
		if (memcmp(type, meta[i], 4) == 0)
			return true;
	return false;
}

int
sniff_png_check(sniff_read_fn rd, void *ctx, char *why, size_t whylen)
{
	static struct walk w;	/* 32 KiB: off the stack; one per process */
	uint8_t hdr[8];
	uint64_t off = 8;
	uint32_t nmeta = 0;
	long n;

	memset(&w, 0, sizeof w);
	w.rd = rd;
	w.ctx = ctx;
	if (whylen > 0)
		why[0] = '\0';
	n = rd(ctx, 0, hdr, 8);
	if (n < 0)
		return (int)n;
	if (n < 8 || memcmp(hdr, "\x89PNG\r\n\x1a\n", 8) != 0)
		return 0;

	for (uint32_t chunks = 0; ; chunks++) {
		if (chunks >= SNIFF_PNG_CHUNKS_MAX) {
			snprintf(why, whylen, "more than %u PNG chunks",
			    SNIFF_PNG_CHUNKS_MAX);
			return -EFBIG;
		}
		n = rd(ctx, off, hdr, 8);
		if (n < 0)
			return (int)n;
		if (n < 8)
			return 0;
		uint32_t len = be32(hdr);
		char type[4];
		memcpy(type, hdr + 4, 4);
		/* PNG lengths stop at 2^31 - 1; libpng rejects the rest */
		if (len > 0x7fffffffu || memcmp(type, "IEND", 4) == 0)
			return 0;
		if (is_meta(type)) {
			nmeta++;
			w.meta += len;
			if (len > 0 && memcmp(type, "tEXt", 4) != 0 &&
			    memcmp(type, "eXIf", 4) != 0 &&
			    memcmp(type, "sPLT", 4) != 0) {
				uint8_t head[256];
				size_t hlen = len < sizeof head ?
				    len : sizeof head;
				n = rd(ctx, off + 8, head, hlen);
				if (n < 0)
					return (int)n;
				long z = zstart(type, head, (size_t)n);
				if (z >= 0 && (uint64_t)z <= len) {
					int rc = inflated(&w,
					    off + 8 + (uint64_t)z,
					    len - (uint64_t)z);
					if (rc < 0)
						return rc;
				}
			}
			if (nmeta > SNIFF_PNG_META_CHUNKS) {
				snprintf(why, whylen, "more than %d PNG "
				    "metadata chunks", SNIFF_PNG_META_CHUNKS);
				return -EFBIG;
			}
			if (w.meta > SNIFF_PNG_META_MAX) {
				snprintf(why, whylen, "PNG metadata over "
				    "%llu MiB (text, profile and EXIF chunks, "
				    "inflated)", (unsigned long long)
				    (SNIFF_PNG_META_MAX >> 20));
				return -EFBIG;
			}
		}
		off += 12 + (uint64_t)len;
	}
}

/* ---- JPEG segment walk ------------------------------------------------- */

int
sniff_jpeg_check(sniff_read_fn rd, void *ctx, char *why, size_t whylen)
{
	uint8_t p[4];
	uint64_t off = 2, meta = 0;
	long n;

	if (whylen > 0)
		why[0] = '\0';
	n = rd(ctx, 0, p, 2);
	if (n < 0)
		return (int)n;
	if (n < 2 || p[0] != 0xff || p[1] != 0xd8)
		return 0;
	for (uint32_t segs = 0; ; segs++) {
		if (segs >= SNIFF_JPEG_SEGMENTS_MAX) {
			snprintf(why, whylen, "more than %u JPEG segments "
			    "before the image data", SNIFF_JPEG_SEGMENTS_MAX);
			return -EFBIG;
		}
		n = rd(ctx, off, p, 4);
		if (n < 0)
			return (int)n;
		if (n < 2 || p[0] != 0xff)
			return 0;
		uint8_t m = p[1];
		/* fill bytes, and the markers that carry no length */
		if (m == 0xff) {
			off++;
			continue;
		}
		if (m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
			off += 2;
			continue;
		}
		/* start of scan or end: no metadata segment libvips reads
		 * lies further on */
		if (m == 0xda || m == 0xd9 || n < 4)
			return 0;
		unsigned len = (unsigned)p[2] << 8 | p[3];
		if (len < 2)
			return 0;
		if (m == 0xe1 || m == 0xe2 || m == 0xed || m == 0xee) {
			meta += len - 2;
			if (meta > SNIFF_JPEG_META_MAX) {
				snprintf(why, whylen, "JPEG metadata over "
				    "%llu MiB (EXIF, XMP, ICC and Photoshop "
				    "segments)", (unsigned long long)
				    (SNIFF_JPEG_META_MAX >> 20));
				return -EFBIG;
			}
		}
		off += 2 + (uint64_t)len;
	}
}
