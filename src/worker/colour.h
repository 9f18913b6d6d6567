/*
 * colour: what an image's embedded ICC profile asks for, and its
 * conversion to sRGB (libvips' icc_transform, lcms underneath).
 *
 * Worker side only.  libvips 8.14's vips_thumbnail converts an embedded
 * profile only when given export_profile, so without this a Display P3 or
 * Adobe RGB photo's numbers would be shown as if they were sRGB.  The
 * profile is classified once per image (lcms reads it; no pixel is
 * touched), so the common cases, no profile or an sRGB one, cost nothing.
 */
#ifndef THUMBWATCH_COLOUR_H
#define THUMBWATCH_COLOUR_H

#include <vips/vips.h>

enum colour_kind {
	COLOUR_NONE,	/* no profile, or one lcms cannot read: as sRGB */
	COLOUR_SRGB,	/* an sRGB profile (any vendor's): nothing to do */
	COLOUR_RGB,	/* another RGB profile on an RGB image (Display P3,
			 * Adobe RGB, ProPhoto): convert, or keep it */
	COLOUR_OTHER	/* grey, CMYK, Lab...: must become sRGB to be saved
			 * as RGB, whatever the preset says */
};

/* The kind of in's embedded profile (VIPS_META_ICC_NAME). */
enum colour_kind colour_classify(VipsImage *in);

/* in converted from its embedded profile to sRGB, 8 bits, relative
 * colorimetric with black-point compensation; alpha kept.  The sRGB
 * profile is attached (a saver with strip off embeds it).  0 or -1 with a
 * vips error. */
int colour_to_srgb(VipsImage *in, VipsImage **out);

/* A copy of in with every metadata item removed but its ICC profile, so
 * a saver with strip off writes the profile and nothing else (libvips
 * 8.14's strip removes the profile too).  0 or -1. */
int colour_only_profile(VipsImage *in, VipsImage **out);

#endif
