/*
 * nclx: HEIF/AVIF nclx colour boxes as ICC profiles (see nclx.h).
 */
#include "nclx.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <lcms2.h>
#include <libheif/heif.h>

/* ---- the profile ------------------------------------------------------ */

#define D65_X 0.3127
#define D65_Y 0.3290
#define C_X 0.310
#define C_Y 0.316

/* ITU-T H.273 colour primaries (xy of red, green, blue, white); 1
 * (BT.709, sRGB's) and 2 (unspecified) are absent: nothing to convert. */
static const struct {
	unsigned code;
	double rx, ry, gx, gy, bx, by, wx, wy;
	const char *name;
} primaries_table[] = {
	{ 4, 0.67, 0.33, 0.21, 0.71, 0.14, 0.08, C_X, C_Y, "BT.470 M" },
	{ 5, 0.64, 0.33, 0.29, 0.60, 0.15, 0.06, D65_X, D65_Y, "BT.470 BG" },
	{ 6, 0.630, 0.340, 0.310, 0.595, 0.155, 0.070, D65_X, D65_Y,
	    "SMPTE 170M" },
	{ 7, 0.630, 0.340, 0.310, 0.595, 0.155, 0.070, D65_X, D65_Y,
	    "SMPTE 240M" },
	{ 8, 0.681, 0.319, 0.243, 0.692, 0.145, 0.049, C_X, C_Y,
	    "generic film" },
	{ 9, 0.708, 0.292, 0.170, 0.797, 0.131, 0.046, D65_X, D65_Y,
	    "BT.2020" },
	/* DCI-P3 keeps its own white: relative colorimetric maps it to
	 * sRGB's, as a cinema projector's white is the screen's */
	{ 11, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.314, 0.351,
	    "DCI-P3" },
	{ 12, 0.680, 0.320, 0.265, 0.690, 0.150, 0.060, D65_X, D65_Y,
	    "Display P3" },
	{ 22, 0.630, 0.340, 0.295, 0.605, 0.155, 0.077, D65_X, D65_Y,
	    "EBU 3213" },
};

/* The transfer as an lcms parametric curve (decoding: coded value to
 * linear light); false for those a matrix/TRC profile cannot describe
 * (PQ 16 and HLG 18 need tone mapping) or thumbwatch does not take. */
static bool
transfer_curve(unsigned code, int *type, double p[5], const char **name)
{
	switch (code) {
	case 2:		/* unspecified: what viewers assume, sRGB's */
	case 13:	/* IEC 61966-2-1 (sRGB) */
		*type = 4;
		p[0] = 2.4;
		p[1] = 1 / 1.055;
		p[2] = 0.055 / 1.055;
		p[3] = 1 / 12.92;
		p[4] = 0.04045;
		*name = "sRGB";
		return true;
	case 1:		/* BT.709 */
	case 6:		/* BT.601 */
	case 14:	/* BT.2020 10-bit */
	case 15:	/* BT.2020 12-bit: the inverse of their one OETF */
		*type = 4;
		p[0] = 1 / 0.45;
		p[1] = 1 / 1.099;
		p[2] = 0.099 / 1.099;
		p[3] = 1 / 4.5;
		p[4] = 0.081;
		*name = "BT.709";
		return true;
	case 4:		/* BT.470 M: gamma 2.2 */
		*type = 1;
		p[0] = 2.2;
		*name = "gamma 2.2";
		return true;
	case 5:		/* BT.470 BG: gamma 2.8 */
		*type = 1;
		p[0] = 2.8;
		*name = "gamma 2.8";
		return true;
	default:
		return false;
	}
}

int
nclx_icc_for(unsigned primaries, unsigned transfer, void **icc, size_t *len)
{
	size_t k = G_N_ELEMENTS(primaries_table);
	double p[5] = { 0 };
	const char *tname = NULL;
	cmsToneCurve *curve;
	cmsHPROFILE prof;
	cmsUInt32Number n = 0;
	cmsMLU *desc;
	int type = 0, rc = -1;
	char text[96];

	*icc = NULL;
	*len = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(primaries_table); i++)
		if (primaries_table[i].code == primaries)
			k = i;
	if (k == G_N_ELEMENTS(primaries_table) ||
	    !transfer_curve(transfer, &type, p, &tname))
		return -1;

	cmsCIExyY white = { primaries_table[k].wx, primaries_table[k].wy, 1 };
	cmsCIExyYTRIPLE rgb = {
		{ primaries_table[k].rx, primaries_table[k].ry, 1 },
		{ primaries_table[k].gx, primaries_table[k].gy, 1 },
		{ primaries_table[k].bx, primaries_table[k].by, 1 },
	};
	if ((curve = cmsBuildParametricToneCurve(NULL, type, p)) == NULL)
		return -1;
	cmsToneCurve *curves[3] = { curve, curve, curve };
	prof = cmsCreateRGBProfile(&white, &rgb, curves);
	cmsFreeToneCurve(curve);
	if (prof == NULL)
		return -1;
	/* named, for profile = keep's thumbnails and whoever reads them */
	snprintf(text, sizeof text, "%s, %s transfer (nclx %u/%u)",
	    primaries_table[k].name, tname, primaries, transfer);
	if ((desc = cmsMLUalloc(NULL, 1)) != NULL) {
		if (cmsMLUsetASCII(desc, "en", "US", text))
			(void)cmsWriteTag(prof, cmsSigProfileDescriptionTag,
			    desc);
		cmsMLUfree(desc);
	}
	if (cmsSaveProfileToMem(prof, NULL, &n) && n > 0) {
		void *buf = g_malloc(n);
		if (cmsSaveProfileToMem(prof, buf, &n)) {
			*icc = buf;
			*len = n;
			rc = 0;
		} else {
			g_free(buf);
		}
	}
	cmsCloseProfile(prof);
	return rc;
}

/* ---- reading the box -------------------------------------------------- */

/* What libheif sees of the file: its ftyp box, then its meta box (where
 * the item properties, colr among them, are), then a free box of zeros
 * as long as the rest of the file, so the item locations (iloc) still lie
 * within its size as libheif checks; the coded pixels are never read. */
struct vfile {
	int fd;
	uint64_t size;		/* the file's */
	uint64_t a_len;		/* [0, a_len) is the file's [0, a_len) */
	uint64_t b_off, b_len;	/* then the file's [b_off, b_off + b_len) */
	unsigned char pad[16];	/* the free box's header */
	uint64_t pad_hdr;	/* its length: 0, 8 or 16 */
	int64_t pos;
};

static uint64_t
vfile_size(const struct vfile *v)
{
	return v->size;
}

static int
pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int64_t
vfile_position(void *ud)
{
	return ((struct vfile *)ud)->pos;
}

static int
vfile_read(void *data, size_t size, void *ud)
{
	struct vfile *v = ud;
	char *out = data;

	if (v->pos < 0 || size > vfile_size(v) - (uint64_t)v->pos)
		return -1;
	while (size > 0) {
		uint64_t at = (uint64_t)v->pos, end = v->a_len + v->b_len;
		size_t n;
		if (at < v->a_len) {
			n = (size_t)MIN((uint64_t)size, v->a_len - at);
			if (pread_full(v->fd, out, n, at) != 0)
				return -1;
		} else if (at < end) {
			n = (size_t)MIN((uint64_t)size, end - at);
			if (pread_full(v->fd, out, n,
			    v->b_off + (at - v->a_len)) != 0)
				return -1;
		} else if (at - end < v->pad_hdr) {
			n = (size_t)MIN((uint64_t)size, v->pad_hdr - (at - end));
			memcpy(out, v->pad + (at - end), n);
		} else {
			n = size;
			memset(out, 0, n);
		}
		out += n;
		size -= n;
		v->pos += (int64_t)n;
	}
	return 0;
}

static int
vfile_seek(int64_t position, void *ud)
{
	struct vfile *v = ud;

	if (position < 0 || (uint64_t)position > vfile_size(v))
		return -1;
	v->pos = position;
	return 0;
}

static enum heif_reader_grow_status
vfile_wait(int64_t target, void *ud)
{
	struct vfile *v = ud;

	return target >= 0 && (uint64_t)target <= vfile_size(v) ?
	    heif_reader_grow_status_size_reached :
	    heif_reader_grow_status_size_beyond_eof;
}

static uint32_t
be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

static void
put_be32(unsigned char *b, uint32_t x)
{
	b[0] = (unsigned char)(x >> 24);
	b[1] = (unsigned char)(x >> 16);
	b[2] = (unsigned char)(x >> 8);
	b[3] = (unsigned char)x;
}

/* The free box after ftyp and meta, to the file's size.  0 or -1 (a rest
 * too short for a box header: no real file is laid out so). */
static int
pad_box(struct vfile *v, uint64_t size)
{
	uint64_t rest = size - v->a_len - v->b_len;

	v->size = size;
	if (rest == 0)
		return 0;
	if (rest < 8)
		return -1;
	if (rest <= UINT32_MAX) {
		put_be32(v->pad, (uint32_t)rest);
		v->pad_hdr = 8;
	} else {
		if (rest < 16)
			return -1;
		put_be32(v->pad, 1);
		put_be32(v->pad + 8, (uint32_t)(rest >> 32));
		put_be32(v->pad + 12, (uint32_t)rest);
		v->pad_hdr = 16;
	}
	memcpy(v->pad + 4, "free", 4);
	return 0;
}

/* Longest run of top-level boxes looked through for meta (ftyp, then
 * usually meta; some writers put mdat, free or uuid boxes first). */
#define TOP_BOXES_MAX 32

/* Finds the ftyp box (first, as ISO BMFF requires) and the meta box
 * among the top-level boxes of the size-byte file on fd.  0 or -1. */
static int
find_boxes(int fd, uint64_t size, struct vfile *v)
{
	unsigned char h[16];
	uint64_t off = 0;

	for (int i = 0; i < TOP_BOXES_MAX && size - off >= 8; i++) {
		uint64_t blen, hdr = 8;
		if (pread_full(fd, h, 8, off) != 0)
			return -1;
		blen = be32(h);
		if (blen == 1) {
			if (size - off < 16 || pread_full(fd, h + 8, 8,
			    off + 8) != 0)
				return -1;
			blen = (uint64_t)be32(h + 8) << 32 | be32(h + 12);
			hdr = 16;
		} else if (blen == 0) {
			blen = size - off;	/* to the end of the file */
		}
		if (blen < hdr || blen > size - off)
			return -1;
		if (i == 0) {
			if (memcmp(h + 4, "ftyp", 4) != 0)
				return -1;
			v->a_len = blen;
		} else if (memcmp(h + 4, "meta", 4) == 0) {
			v->b_off = off;
			v->b_len = blen;
			return v->a_len + v->b_len <= NCLX_META_MAX ?
			    pad_box(v, size) : -1;
		}
		off += blen;
	}
	return -1;
}

int
nclx_icc_read(int fd, uint64_t size, void **icc, size_t *len)
{
	static bool heif_ready;
	struct vfile v = { .fd = fd };
	struct heif_reader reader = {
		.reader_api_version = 1,
		.get_position = vfile_position,
		.read = vfile_read,
		.seek = vfile_seek,
		.wait_for_file_size = vfile_wait,
	};
	struct heif_context *ctx = NULL;
	struct heif_image_handle *handle = NULL;
	struct heif_color_profile_nclx *nclx = NULL;
	struct heif_error err;
	int rc = -1;

	*icc = NULL;
	*len = 0;
	if (find_boxes(fd, size, &v) != 0)
		return -1;
	if (!heif_ready) {
		/* reference counted; held for the worker's life */
		err = heif_init(NULL);
		if (err.code != heif_error_Ok)
			return -1;
		heif_ready = true;
	}
	if ((ctx = heif_context_alloc()) == NULL)
		return -1;
	err = heif_context_read_from_reader(ctx, &reader, &v, NULL);
	if (err.code != heif_error_Ok)
		goto out;
	err = heif_context_get_primary_image_handle(ctx, &handle);
	if (err.code != heif_error_Ok)
		goto out;
	/* an ICC profile libvips did not take (unreadable): as before */
	enum heif_color_profile_type t =
	    heif_image_handle_get_color_profile_type(handle);
	if (t == heif_color_profile_type_rICC ||
	    t == heif_color_profile_type_prof)
		goto out;
	err = heif_image_handle_get_nclx_color_profile(handle, &nclx);
	if (err.code != heif_error_Ok || nclx == NULL)
		goto out;
	rc = nclx_icc_for((unsigned)nclx->color_primaries,
	    (unsigned)nclx->transfer_characteristics, icc, len);
out:
	if (nclx != NULL)
		heif_nclx_color_profile_free(nclx);
	if (handle != NULL)
		heif_image_handle_release(handle);
	heif_context_free(ctx);
	return rc;
}
