/*
 * libFuzzer harness for src/common/pathmap.c.
 *
 * The input is split on NUL bytes into template, source path relative to
 * the input dir, preset name and output extension (missing parts are ""
 * or "jpg"); the low bit of the last byte is `qualify`.  Whatever the
 * input, no call may crash or write outside its buffer (each output buffer
 * is allocated at exactly its cap), and an output path that is returned is
 * relative with no "", "." or ".." component: it cannot leave OUTPUT_DIR.
 * The helpers used on the same paths (relative, join, split, filters) are
 * exercised with the same parts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pathmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define NPARTS 4

/* No empty, "." or ".." component, not absolute, not empty. */
static void
check_contained(const char *p, bool allow_empty)
{
	size_t n;

	if (allow_empty && *p == '\0')
		return;
	CHECK(*p != '\0' && *p != '/');
	for (;;) {
		n = strcspn(p, "/");
		CHECK(n != 0);
		CHECK(!(n == 1 && p[0] == '.'));
		CHECK(!(n == 2 && p[0] == '.' && p[1] == '.'));
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *part[NPARTS];
	char *buf, *out, *small, stem[32], ext[8];
	size_t i, np = 0, cap_small;
	bool qualify;
	int rc, rc_small, rc_tmpl;

	/* NUL-separated parts, each a C string inside buf. */
	buf = malloc(size + 1);
	CHECK(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	buf[size] = '\0';
	part[np++] = buf;
	for (i = 0; i < size && np < NPARTS; i++)
		if (buf[i] == '\0')
			part[np++] = buf + i + 1;
	for (; np < NPARTS; np++)
		part[np] = np == 3 ? "jpg" : "";
	qualify = size > 0 && (data[size - 1] & 1);

	out = malloc(4096);
	CHECK(out != NULL);
	rc = pathmap_output(out, 4096, part[0], part[1], part[2], part[3],
	    qualify);
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG);
	if (rc == 0) {
		CHECK(strlen(out) < 4096);
		check_contained(out, false);
	}
	rc_tmpl = pathmap_check_template(part[0]);
	CHECK(rc_tmpl == 0 || rc_tmpl == -EINVAL);
	if (rc_tmpl != 0)
		CHECK(rc == -EINVAL);

	/* A smaller buffer: the same answer or "too long", never another
	 * path or an overflow. */
	cap_small = size % 48 + 1;
	small = malloc(cap_small);
	CHECK(small != NULL);
	rc_small = pathmap_output(small, cap_small, part[0], part[1],
	    part[2], part[3], qualify);
	if (rc_small == 0)
		CHECK(rc == 0 && strcmp(small, out) == 0);
	else
		CHECK(rc_small == rc || rc_small == -ENAMETOOLONG);
	if (rc == 0 && strlen(out) + 1 > cap_small)
		CHECK(rc_small == -ENAMETOOLONG);

	rc = pathmap_relative(part[0], part[1], small, cap_small);
	CHECK(rc == 0 || rc == -EXDEV || rc == -ENAMETOOLONG);
	if (rc == 0)
		check_contained(small, true);
	rc = pathmap_join(small, cap_small, part[1], part[2]);
	CHECK(rc == 0 || rc == -ENAMETOOLONG);
	if (rc == 0)
		CHECK(strlen(small) < cap_small);

	pathmap_split(part[1], stem, sizeof(stem), ext, sizeof(ext));
	CHECK(strlen(stem) < sizeof(stem) && strlen(ext) < sizeof(ext));
	(void)pathmap_same_stem(part[1], part[2]);
	CHECK(!pathmap_same_stem(part[1], part[1]));
	(void)pathmap_is_temp_name(part[1]);
	(void)pathmap_ext_allowed(part[1], part[2]);

	free(small);
	free(out);
	free(buf);
	return 0;
}
