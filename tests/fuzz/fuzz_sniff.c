/*
 * libFuzzer harness for src/common/sniff.c.
 *
 * The input is a whole file: its format is sniffed from the first
 * SNIFF_HEAD bytes (given in a buffer of exactly that length, so a read
 * past it is caught), and its PNG chunks are walked through a reader that
 * checks every offset and length; its JPEG segments likewise.  Whatever the input, nothing may crash,
 * read out of bounds or loop: the walk ends within SNIFF_PNG_CHUNKS_MAX
 * chunks and inflates at most the metadata limit (plus one buffer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

struct file {
	const uint8_t *p;
	size_t len;
	unsigned long reads;
};

static long
rd(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct file *f = ctx;

	f->reads++;
	CHECK(len > 0 && len <= 1 << 20);
	if (off >= f->len)
		return 0;
	if (len > f->len - off)
		len = (size_t)(f->len - off);
	memcpy(buf, f->p + off, len);
	return (long)len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hn = size < SNIFF_HEAD ? size : SNIFF_HEAD;
	uint8_t *head = malloc(hn ? hn : 1);
	char why[128];

	CHECK(head != NULL);
	memcpy(head, data, hn);
	enum sniff_format f = sniff_format(head, hn);
	CHECK(f >= SNIFF_UNKNOWN && f < SNIFF_MAX);
	CHECK(sniff_name(f) != NULL && sniff_name(f)[0] != '\0');
	free(head);

	/* The walk also runs on a non-PNG (and refuses at once), and on the
	 * input behind a PNG signature, so every input exercises it. */
	struct file fl = { data, size, 0 };
	int rc = sniff_png_check(rd, &fl, why, sizeof why);
	CHECK(rc == 0 || rc == -EFBIG);
	CHECK(rc == 0 || why[0] != '\0');

	uint8_t *png = malloc(size + 8);
	CHECK(png != NULL);
	memcpy(png, "\x89PNG\r\n\x1a\n", 8);
	memcpy(png + 8, data, size);
	struct file fp = { png, size + 8, 0 };
	rc = sniff_png_check(rd, &fp, why, sizeof why);
	CHECK(rc == 0 || rc == -EFBIG);
	/* bounded: one header per chunk plus the metadata it inflated */
	CHECK(fp.reads <= 2 * (unsigned long)SNIFF_PNG_CHUNKS_MAX + 1024);
	free(png);

	struct file fj = { data, size, 0 };
	rc = sniff_jpeg_check(rd, &fj, why, sizeof why);
	CHECK(rc == 0 || rc == -EFBIG);
	CHECK(fj.reads <= (unsigned long)SNIFF_JPEG_SEGMENTS_MAX + 2);
	return 0;
}
