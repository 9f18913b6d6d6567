/* sniff: formats by magic bytes; the PNG metadata walk and its limits. */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sniff.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void
test_magic_bytes(void **state)
{
	(void)state;
	assert_int_equal(sniff_format(S("\xff\xd8\xff\xe0")), SNIFF_JPEG);
	assert_int_equal(sniff_format(S("\x89PNG\r\n\x1a\n")), SNIFF_PNG);
	assert_int_equal(sniff_format(S("RIFF\0\0\0\0WEBPVP8 ")), SNIFF_WEBP);
	assert_int_equal(sniff_format(S("RIFF\0\0\0\0AVI ")), SNIFF_UNKNOWN);
	assert_int_equal(sniff_format(S("II*\0")), SNIFF_TIFF);
	assert_int_equal(sniff_format(S("MM\0*")), SNIFF_TIFF);
	assert_int_equal(sniff_format(S("GIF89a")), SNIFF_GIF);
	assert_int_equal(sniff_format(S("\0\0\0\x1c" "ftypheic")), SNIFF_HEIF);
	assert_int_equal(sniff_format(S("\0\0\0\x1c" "ftypavif")), SNIFF_HEIF);
	assert_int_equal(sniff_format(S("\0\0\0\x1c" "ftypisom")),
	    SNIFF_UNKNOWN);
	assert_int_equal(sniff_format(S("\xff\x0a")), SNIFF_JXL);
	assert_int_equal(sniff_format(S("\x1f\x8b\x08")), SNIFF_GZIP);
	assert_int_equal(sniff_format(S("%PDF-1.7")), SNIFF_PDF);
	assert_int_equal(sniff_format(S("P6\n1 1\n255\n")), SNIFF_PPM);
	assert_int_equal(sniff_format(S("BM")), SNIFF_BMP);
	assert_int_equal(sniff_format(S("<?xml version=\"1.0\"?>\n<!-- -->"
	    "<SVG>")), SNIFF_SVG);
	/* binary bytes before "<svg": not an SVG */
	assert_int_equal(sniff_format(S("\x01\0<svg")), SNIFF_UNKNOWN);
	assert_int_equal(sniff_format(S("")), SNIFF_UNKNOWN);
	/* a truncated magic is no match */
	assert_int_equal(sniff_format(S("\x89PNG\r\n")), SNIFF_UNKNOWN);
	assert_string_equal(sniff_name(SNIFF_GZIP), "svgz");
	assert_string_equal(sniff_name(SNIFF_MAX), "unknown");
}

struct mem {
	uint8_t *p;
	size_t len, cap;
};

static long
rd(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mem *m = ctx;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - off;
	memcpy(buf, m->p + off, len);
	return (long)len;
}

static void
put(struct mem *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
}

/* Appends a chunk (the CRC is not checked by the walk: zero). */
static void
chunk(struct mem *m, const char *type, const void *data, size_t n)
{
	uint8_t h[8] = { n >> 24, n >> 16, n >> 8, n };
	uint8_t crc[4] = { 0 };

	memcpy(h + 4, type, 4);
	put(m, h, 8);
	put(m, data, n);
	put(m, crc, 4);
}

/* A zTXt chunk whose text inflates to n bytes. */
static void
ztxt(struct mem *m, size_t n)
{
	uint8_t *text = calloc(1, n), *z;
	uLongf zn = compressBound(n);

	assert_non_null(text);
	z = malloc(zn + 10);
	assert_non_null(z);
	memcpy(z, "Comment\0\0", 9);
	assert_int_equal(compress2(z + 9, &zn, text, n, 9), Z_OK);
	chunk(m, "zTXt", z, zn + 9);
	free(text);
	free(z);
}

static void
png_start(struct mem *m)
{
	memset(m, 0, sizeof *m);
	put(m, "\x89PNG\r\n\x1a\n", 8);
	chunk(m, "IHDR", "\0\0\0\1\0\0\0\1\x08\x02\0\0\0", 13);
}

static void
test_png_within_limits(void **state)
{
	struct mem m;
	char why[128];

	(void)state;
	png_start(&m);
	chunk(&m, "tEXt", "Title\0x", 7);
	ztxt(&m, 1 << 20);
	chunk(&m, "IDAT", "x", 1);
	chunk(&m, "IEND", "", 0);
	assert_int_equal(sniff_png_check(rd, &m, why, sizeof why), 0);
	free(m.p);
}

static void
test_png_text_bomb_refused(void **state)
{
	struct mem m;
	char why[128];

	(void)state;
	png_start(&m);
	/* 5 KB on disk each, 5 MB inflated: the second passes 8 MiB */
	for (int i = 0; i < 3; i++)
		ztxt(&m, 5 << 20);
	chunk(&m, "IDAT", "x", 1);
	chunk(&m, "IEND", "", 0);
	assert_true(m.len < 64 * 1024);
	assert_int_equal(sniff_png_check(rd, &m, why, sizeof why), -EFBIG);
	assert_non_null(strstr(why, "metadata"));
	free(m.p);
}

static void
test_png_text_after_idat_counts(void **state)
{
	struct mem m;
	char why[128];

	(void)state;
	png_start(&m);
	chunk(&m, "IDAT", "x", 1);
	for (int i = 0; i < SNIFF_PNG_META_CHUNKS + 1; i++)
		chunk(&m, "tEXt", "k\0v", 3);
	chunk(&m, "IEND", "", 0);
	assert_int_equal(sniff_png_check(rd, &m, why, sizeof why), -EFBIG);
	assert_non_null(strstr(why, "chunks"));
	free(m.p);
}

static void
test_png_malformed_is_left_to_the_loader(void **state)
{
	struct mem m;
	char why[128];
	uint8_t big[8] = { 0xff, 0xff, 0xff, 0xff, 't', 'E', 'X', 't' };

	(void)state;
	png_start(&m);
	put(&m, big, 8);	/* length over 2^31: invalid, stop */
	assert_int_equal(sniff_png_check(rd, &m, why, sizeof why), 0);
	m.len = 20;		/* cut inside IHDR */
	assert_int_equal(sniff_png_check(rd, &m, why, sizeof why), 0);
	free(m.p);
}

/* SOI, n APP1 segments of 64 KiB - 2, an SOS. */
static void
jpeg_with_app1(struct mem *m, int n)
{
	static uint8_t seg[2 + 65535];

	memset(m, 0, sizeof *m);
	put(m, "\xff\xd8\xff\xff", 4);	/* SOI, one fill byte */
	for (int i = 0; i < n; i++) {
		seg[0] = 0xff;
		seg[1] = 0xe1;
		seg[2] = 0xff;
		seg[3] = 0xff;
		put(m, seg, 2 + 65535);
	}
	put(m, "\xff\xd0\xff\xda\0\2", 6);
}

static void
test_jpeg_metadata_limit(void **state)
{
	struct mem m;
	char why[128];
	int ok = (int)(SNIFF_JPEG_META_MAX / 65533);

	(void)state;
	jpeg_with_app1(&m, ok);
	assert_int_equal(sniff_jpeg_check(rd, &m, why, sizeof why), 0);
	free(m.p);
	jpeg_with_app1(&m, ok + 1);
	assert_int_equal(sniff_jpeg_check(rd, &m, why, sizeof why), -EFBIG);
	assert_non_null(strstr(why, "JPEG metadata"));
	/* cut short: left to libjpeg */
	m.len = 100;
	assert_int_equal(sniff_jpeg_check(rd, &m, why, sizeof why), 0);
	free(m.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_magic_bytes),
		cmocka_unit_test(test_png_within_limits),
		cmocka_unit_test(test_png_text_bomb_refused),
		cmocka_unit_test(test_png_text_after_idat_counts),
		cmocka_unit_test(test_png_malformed_is_left_to_the_loader),
		cmocka_unit_test(test_jpeg_metadata_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
