/*
 * Unit tests for nclx: the ICC profiles made for nclx code points (against
 * libvips' own Display P3 profile), the code points left alone, and files
 * whose top-level boxes are hostile or missing.
 */
#include "unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lcms2.h>
#include <vips/vips.h>

#include "nclx.h"

static cmsHPROFILE
profile_for(unsigned prim, unsigned trc)
{
	void *icc = NULL;
	size_t len = 0;
	cmsHPROFILE p;

	assert_int_equal(nclx_icc_for(prim, trc, &icc, &len), 0);
	assert_non_null(icc);
	assert_true(len > 132);
	p = cmsOpenProfileFromMem(icc, (cmsUInt32Number)len);
	g_free(icc);
	assert_non_null(p);
	return p;
}

/* 12/13 is libvips' p3 profile: the same colorants and curve. */
static void
test_display_p3_is_vips_p3(void **state)
{
	static const cmsTagSignature col[3] = { cmsSigRedColorantTag,
	    cmsSigGreenColorantTag, cmsSigBlueColorantTag };
	VipsBlob *blob = NULL;
	size_t blen;
	(void)state;

	assert_int_equal(vips_profile_load("p3", &blob, NULL), 0);
	const void *bdata = vips_blob_get(blob, &blen);
	cmsHPROFILE ref = cmsOpenProfileFromMem(bdata, (cmsUInt32Number)blen);
	assert_non_null(ref);
	cmsHPROFILE p = profile_for(12, 13);
	assert_int_equal(cmsGetColorSpace(p), cmsSigRgbData);
	for (int i = 0; i < 3; i++) {
		const cmsCIEXYZ *a = cmsReadTag(p, col[i]);
		const cmsCIEXYZ *b = cmsReadTag(ref, col[i]);
		assert_non_null(a);
		assert_non_null(b);
		assert_true(fabs(a->X - b->X) < 0.002);
		assert_true(fabs(a->Y - b->Y) < 0.002);
		assert_true(fabs(a->Z - b->Z) < 0.002);
	}
	const cmsToneCurve *ca = cmsReadTag(p, cmsSigRedTRCTag);
	const cmsToneCurve *cb = cmsReadTag(ref, cmsSigRedTRCTag);
	for (float x = 0.0f; x <= 1.0f; x += 0.125f)
		assert_true(fabsf(cmsEvalToneCurveFloat(ca, x) -
		    cmsEvalToneCurveFloat(cb, x)) < 0.002f);
	cmsCloseProfile(p);
	cmsCloseProfile(ref);
	vips_area_unref(VIPS_AREA(blob));
}

/* BT.2020 with BT.709's transfer: BT.2020's green, the 709 curve. */
static void
test_bt2020_bt709_transfer(void **state)
{
	(void)state;
	cmsHPROFILE p = profile_for(9, 1);
	const cmsCIEXYZ *g = cmsReadTag(p, cmsSigGreenColorantTag);
	const cmsToneCurve *c = cmsReadTag(p, cmsSigGreenTRCTag);
	assert_non_null(g);
	/* BT.2020's green is far greener than sRGB's (Y 0.7152 at D65) */
	assert_true(g->Y > 0.65 && g->Y < 0.70);
	/* the inverse BT.709 OETF: 0.5 -> ((0.5 + 0.099) / 1.099)^(1/0.45) */
	assert_true(fabsf(cmsEvalToneCurveFloat(c, 0.5f) - 0.2594f) < 0.002f);
	/* its linear toe: 0.04 -> 0.04 / 4.5 */
	assert_true(fabsf(cmsEvalToneCurveFloat(c, 0.04f) - 0.00889f) <
	    0.0005f);
	cmsCloseProfile(p);
}

static void
test_left_alone(void **state)
{
	static const unsigned none[][2] = {
		{ 1, 13 },	/* sRGB's primaries */
		{ 2, 13 },	/* unspecified primaries */
		{ 9, 16 },	/* PQ */
		{ 9, 18 },	/* HLG */
		{ 12, 8 },	/* linear */
		{ 12, 0 },	/* reserved */
		{ 10, 13 },	/* XYZ */
		{ 255, 13 },
		{ 12, 255 },
	};
	void *icc;
	size_t len;
	(void)state;

	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		icc = (void *)1;
		assert_int_equal(nclx_icc_for(none[i][0], none[i][1], &icc,
		    &len), -1);
		assert_null(icc);
	}
}

/* A temp file holding n bytes of b; its descriptor. */
static int
temp_with(const void *b, size_t n)
{
	char path[] = "/tmp/test_nclx.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	return fd;
}

static void
box(unsigned char *at, uint32_t size, const char *type)
{
	at[0] = (unsigned char)(size >> 24);
	at[1] = (unsigned char)(size >> 16);
	at[2] = (unsigned char)(size >> 8);
	at[3] = (unsigned char)size;
	memcpy(at + 4, type, 4);
}

static void
test_hostile_boxes(void **state)
{
	unsigned char f[64];
	void *icc;
	size_t len;
	int fd;
	(void)state;

	/* not a box at all */
	memset(f, 0xff, sizeof f);
	fd = temp_with(f, sizeof f);
	assert_int_equal(nclx_icc_read(fd, sizeof f, &icc, &len), -1);
	close(fd);
	/* ftyp, then a meta box claiming more than the file */
	memset(f, 0, sizeof f);
	box(f, 16, "ftyp");
	memcpy(f + 8, "avif", 4);
	box(f + 16, 4096, "meta");
	fd = temp_with(f, sizeof f);
	assert_int_equal(nclx_icc_read(fd, sizeof f, &icc, &len), -1);
	/* a meta box larger than NCLX_META_MAX, as the size says */
	box(f + 16, (uint32_t)NCLX_META_MAX + 1, "meta");
	assert_int_equal(pwrite(fd, f, sizeof f, 0), (ssize_t)sizeof f);
	assert_int_equal(nclx_icc_read(fd, NCLX_META_MAX + 17, &icc, &len),
	    -1);
	/* an empty meta box: libheif refuses it */
	box(f + 16, 12, "meta");
	box(f + 28, 36, "free");
	assert_int_equal(pwrite(fd, f, sizeof f, 0), (ssize_t)sizeof f);
	assert_int_equal(nclx_icc_read(fd, sizeof f, &icc, &len), -1);
	/* no meta box among the first ones */
	box(f + 16, 8, "free");
	for (int i = 24; i + 8 <= (int)sizeof f; i += 8)
		box(f + i, 8, "skip");
	assert_int_equal(pwrite(fd, f, sizeof f, 0), (ssize_t)sizeof f);
	assert_int_equal(nclx_icc_read(fd, sizeof f, &icc, &len), -1);
	/* a box of size 0 (to the end of the file) right after ftyp */
	box(f + 16, 0, "mdat");
	assert_int_equal(pwrite(fd, f, sizeof f, 0), (ssize_t)sizeof f);
	assert_int_equal(nclx_icc_read(fd, sizeof f, &icc, &len), -1);
	close(fd);
}

int
main(int argc, char **argv)
{
	(void)argc;
	if (VIPS_INIT(argv[0]))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_display_p3_is_vips_p3),
		cmocka_unit_test(test_bt2020_bt709_transfer),
		cmocka_unit_test(test_left_alone),
		cmocka_unit_test(test_hostile_boxes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
