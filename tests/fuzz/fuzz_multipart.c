/*
 * libFuzzer harness for the project's own part of the upload path
 * (src/common/httputil.c: part bookkeeping, client name sanitising, content
 * sniffing) and for JSON escaping (src/common/json.c), which writes those names
 * into the log and the HTTP answers.
 *
 * libmicrohttpd's post processor needs a live connection, so the input
 * is replayed as the callbacks it makes: records of a flags byte (bit 0:
 * off is 0, bit 1: no file name, a plain field), a name length, the name
 * and a data length, then the data.  Whatever the input:
 *  - two parts merge only when they carry the same name and the first has
 *    no byte yet, and every byte is counted in exactly one part;
 *  - a sanitised name is non-empty, shorter than its buffer, has no '/',
 *    '\\' or control character, does not start with '.' and is not "..";
 *  - sniffing never reads past the bytes given;
 *  - a name escaped by json.h is valid UTF-8 with no raw control
 *    character, and decodes (\udcXX as one byte, PEP 383) to its exact
 *    bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httputil.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	CHECK(0);
	return 0;
}

/* Decodes a JSON string body that json_escape wrote; returns its length. */
static size_t
decode(const char *s, size_t n, unsigned char *out)
{
	size_t i, o = 0;
	unsigned cp;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		CHECK(c >= 0x20 && c != '"');
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		CHECK(++i < n);
		switch (s[i]) {
		case '"': out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			CHECK(i + 4 < n);
			cp = (unsigned)(hexv(s[i + 1]) << 12 |
			    hexv(s[i + 2]) << 8 | hexv(s[i + 3]) << 4 |
			    hexv(s[i + 4]));
			i += 4;
			if (cp < 0x20)
				out[o++] = (unsigned char)cp;
			else {
				/* only U+DC80..U+DCFF, one byte each */
				CHECK(cp >= 0xDC80 && cp <= 0xDCFF);
				out[o++] = (unsigned char)(cp - 0xDC00);
			}
			break;
		default:
			CHECK(0);
		}
	}
	return o;
}

/* Well-formed UTF-8 (no surrogates, no overlongs, at most U+10FFFF). */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, len;
	unsigned cp;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0)
			len = 2, cp = s[i] & 0x1F;
		else if ((s[i] & 0xF0) == 0xE0)
			len = 3, cp = s[i] & 0x0F;
		else if ((s[i] & 0xF8) == 0xF0)
			len = 4, cp = s[i] & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

static void
check_escape(const uint8_t *v, size_t n)
{
	struct json_buf j;
	unsigned char *back;

	json_init(&j);
	json_escape(&j, (const char *)v, n);
	CHECK(j.err == 0);
	if (j.len == 0) {
		CHECK(n == 0);
		json_free(&j);
		return;
	}
	CHECK(utf8_valid((const unsigned char *)j.buf, j.len));
	back = malloc(j.len + 1);
	CHECK(back != NULL);
	CHECK(decode(j.buf, j.len, back) == n);
	CHECK(memcmp(back, v, n) == 0);
	free(back);
	json_free(&j);
}

static void
check_name(const char *raw)
{
	char out[256];
	size_t i, n;

	if (httputil_sanitize_name(raw, out, sizeof(out)) < 0)
		return;
	n = strlen(out);
	CHECK(n > 0 && n < sizeof(out));
	CHECK(out[0] != '.' && strcmp(out, "..") != 0);
	for (i = 0; i < n; i++)
		CHECK(out[i] != '/' && out[i] != '\\' &&
		    (unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
}

struct part {
	char raw[256];
	int64_t bytes;
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct part parts[64];
	char name[256];
	const uint8_t *p = data, *end = data + size;
	int nparts = 0;
	bool open = false;
	int64_t total = 0, sum = 0;
	int i;

	check_escape(data, size);
	while (end - p >= 3) {
		uint8_t flags = p[0];
		size_t nlen = p[1], dlen;
		struct part *cur;
		uint64_t off;

		p += 2;
		if ((size_t)(end - p) < nlen + 1)
			break;
		memcpy(name, p, nlen);
		name[nlen] = '\0';		/* MHD's names are C strings */
		p += nlen;
		dlen = *p++;
		if ((size_t)(end - p) < dlen)
			dlen = (size_t)(end - p);
		if (flags & 2) {
			p += dlen;		/* a plain field: skipped */
			continue;
		}
		check_name(name);
		off = (flags & 1) ? 0 : (uint64_t)(flags >> 2) + 1;
		if (!open)
			off = 0;		/* MHD starts every part at 0 */
		cur = nparts > 0 ? &parts[nparts - 1] : NULL;
		if (httputil_new_part(open, cur ? cur->bytes : 0,
		    cur ? cur->raw : NULL, name, off)) {
			if (nparts == 64)
				break;
			cur = &parts[nparts++];
			snprintf(cur->raw, sizeof(cur->raw), "%s", name);
			cur->bytes = 0;
			open = true;
		} else {
			/* Only a continuation, or the same name with no
			 * byte yet, joins the open part. */
			CHECK(open && cur != NULL);
			CHECK(off != 0 || (cur->bytes == 0 &&
			    strcmp(cur->raw, name) == 0));
		}
		(void)httputil_sniff(p, dlen);
		cur->bytes += (int64_t)dlen;
		total += (int64_t)dlen;
		p += dlen;
	}
	for (i = 0; i < nparts; i++)
		sum += parts[i].bytes;
	CHECK(sum == total);
	return 0;
}
