/*
 * colour: embedded ICC profiles (see colour.h).
 */
#include "colour.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lcms2.h>

/* Largest difference from sRGB's colorants (D50 XYZ, as in the profile's
 * rXYZ/gXYZ/bXYZ tags) and tone curve still taken as sRGB.  Vendors'
 * sRGB profiles (HP's v2, Apple's, Android's, lcms' and libvips' own)
 * differ by s15Fixed16 rounding, under 0.001; Display P3 differs by 0.08
 * in red and Adobe RGB by 0.05 in green.  0.002 on the curve is half a
 * level of 8 bits. */
#define COLORANT_EPS 0.002
#define CURVE_EPS 0.002

static bool
xyz_near(const cmsCIEXYZ *a, const cmsCIEXYZ *b)
{
	return fabs(a->X - b->X) < COLORANT_EPS &&
	    fabs(a->Y - b->Y) < COLORANT_EPS &&
	    fabs(a->Z - b->Z) < COLORANT_EPS;
}

/* p's matrix and curves are sRGB's, within rounding. */
static bool
is_srgb(cmsHPROFILE p)
{
	static const cmsTagSignature col[3] = { cmsSigRedColorantTag,
	    cmsSigGreenColorantTag, cmsSigBlueColorantTag };
	static const cmsTagSignature trc[3] = { cmsSigRedTRCTag,
	    cmsSigGreenTRCTag, cmsSigBlueTRCTag };
	static const float at[] = { 0.01f, 0.04f, 0.1f, 0.25f, 0.5f, 0.75f,
	    0.9f };
	cmsHPROFILE s = cmsCreate_sRGBProfile();
	bool same = s != NULL;

	/* A LUT-based profile (A2B0) is what lcms would use for the
	 * relative intent: its matrix need not tell its colours. */
	if (cmsIsTag(p, cmsSigAToB0Tag) || cmsIsTag(p, cmsSigDToB0Tag))
		same = false;
	for (int i = 0; same && i < 3; i++) {
		const cmsCIEXYZ *a = cmsReadTag(p, col[i]);
		const cmsCIEXYZ *b = cmsReadTag(s, col[i]);
		const cmsToneCurve *ca = cmsReadTag(p, trc[i]);
		const cmsToneCurve *cb = cmsReadTag(s, trc[i]);
		if (a == NULL || b == NULL || ca == NULL || cb == NULL ||
		    !xyz_near(a, b)) {
			same = false;
			break;
		}
		for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
			if (fabsf(cmsEvalToneCurveFloat(ca, at[k]) -
			    cmsEvalToneCurveFloat(cb, at[k])) > CURVE_EPS) {
				same = false;
				break;
			}
	}
	if (s != NULL)
		cmsCloseProfile(s);
	return same;
}

enum colour_kind
colour_classify(VipsImage *in)
{
	const void *data;
	size_t len;
	cmsHPROFILE p;
	enum colour_kind kind;

	if (!vips_image_get_typeof(in, VIPS_META_ICC_NAME) ||
	    vips_image_get_blob(in, VIPS_META_ICC_NAME, &data, &len) ||
	    len < 132 || len > UINT32_MAX)
		return COLOUR_NONE;
	/* a profile lcms cannot read is ignored, as libvips' savers do */
	if ((p = cmsOpenProfileFromMem(data, (cmsUInt32Number)len)) == NULL)
		return COLOUR_NONE;
	cmsColorSpaceSignature cs = cmsGetColorSpace(p);
	int bands = in->Bands - (vips_image_hasalpha(in) ? 1 : 0);
	if (cs == cmsSigRgbData && bands == 3 &&
	    cmsGetDeviceClass(p) != cmsSigLinkClass &&
	    cmsGetDeviceClass(p) != cmsSigAbstractClass)
		kind = is_srgb(p) ? COLOUR_SRGB : COLOUR_RGB;
	else if ((cs == cmsSigGrayData && bands == 1) ||
	    (cs == cmsSigCmykData && bands == 4 &&
	    in->Type == VIPS_INTERPRETATION_CMYK))
		kind = COLOUR_OTHER;
	else
		/* a profile that does not fit the pixels (an RGB profile
		 * on a grey image): libvips would refuse it; ignore it */
		kind = COLOUR_NONE;
	cmsCloseProfile(p);
	return kind;
}

int
colour_to_srgb(VipsImage *in, VipsImage **out)
{
	return vips_icc_transform(in, out, "srgb", "embedded", TRUE,
	    "intent", VIPS_INTENT_RELATIVE, "black_point_compensation", TRUE,
	    "depth", 8, NULL);
}

int
colour_only_profile(VipsImage *in, VipsImage **out)
{
	gchar **names;

	if (vips_copy(in, out, NULL))
		return -1;
	/* the names first: removing while walking the table is unsafe */
	names = vips_image_get_fields(*out);
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], VIPS_META_ICC_NAME) != 0)
			(void)vips_image_remove(*out, names[i]);
	g_strfreev(names);
	return 0;
}
