/*
 * Unit tests of src/common/json.c: object layout, RFC 8259 escaping, lossless
 * escaping of ill-formed UTF-8 (\udcXX per byte), and RFC 3339 timestamps.  Escaping is also checked
 * exhaustively over short byte strings against an independent UTF-8
 * validator and a JSON string unescaper written here.
 */
#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

/* Escapes val[0..len) alone and returns a malloc'd copy. */
static char *
esc(const char *val, size_t len)
{
	struct json_buf j;
	char *s;

	json_init(&j);
	json_escape(&j, val, len);
	assert_int_equal(j.err, 0);
	s = strndup(j.buf != NULL ? j.buf : "", j.len);
	assert_non_null(s);
	assert_int_equal(strlen(s), j.len);
	json_free(&j);
	return s;
}

static void
assert_esc(const char *val, size_t len, const char *want)
{
	char *got = esc(val, len);

	assert_string_equal(got, want);
	free(got);
}

#define ESC(lit, want) assert_esc(lit, sizeof(lit) - 1, want)

/* Independent UTF-8 check (decode then judge the code point, rather than
 * json.c's byte-range table).  Returns the sequence length or 0. */
static size_t
utf8_ok(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static bool
valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = utf8_ok(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* Parses the body of a JSON string (no quotes) into out; false when it is
 * not a valid body: raw control characters, a bare quote, a bad escape. */
static bool
unescape(const char *s, unsigned char *out, size_t *outlen)
{
	size_t o = 0;
	unsigned cp;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == '"')
			return false;
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		switch (*++s) {
		case '"': out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case '/': out[o++] = '/'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			if (sscanf(s + 1, "%4x", &cp) != 1 ||
			    strspn(s + 1, "0123456789abcdefABCDEF") < 4)
				return false;
			/* PEP 383: U+DC80..U+DCFF stand for one byte each;
			 * no other surrogate is ever produced. */
			if (cp >= 0xDC80 && cp <= 0xDCFF)
				out[o++] = (unsigned char)(cp - 0xDC00);
			else if (cp >= 0xD800 && cp <= 0xDFFF)
				return false;
			else if (cp < 0x80) {
				out[o++] = (unsigned char)cp;
			} else if (cp < 0x800) {
				out[o++] = (unsigned char)(0xC0 | cp >> 6);
				out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
			} else {
				out[o++] = (unsigned char)(0xE0 | cp >> 12);
				out[o++] = (unsigned char)(0x80 |
				    (cp >> 6 & 0x3F));
				out[o++] = (unsigned char)(0x80 | (cp & 0x3F));
			}
			s += 4;
			break;
		default:
			return false;
		}
	}
	*outlen = o;
	return true;
}

/* The properties every escaped string has, whatever the input. */
static void
check_escape_of(const unsigned char *in, size_t n)
{
	char *e = esc((const char *)in, n);
	unsigned char *back = malloc(strlen(e) + 1);
	size_t blen;

	assert_non_null(back);
	if (strchr(e, '\n') != NULL || strchr(e, '\r') != NULL)
		fail_msg("raw line break in escape of %zu bytes", n);
	if (!valid_utf8((const unsigned char *)e, strlen(e)))
		fail_msg("invalid UTF-8 out for %02x...", n ? in[0] : 0);
	if (!unescape(e, back, &blen))
		fail_msg("not a JSON string body: %s", e);
	if (valid_utf8(in, n)) {
		/* lossless for valid input */
		assert_int_equal(blen, n);
		assert_memory_equal(back, in, n);
		assert_null(strstr(e, "\\udc"));
	} else {
		assert_non_null(strstr(e, "\\udc"));
	}
	/* lossless for any input */
	assert_int_equal(blen, n);
	assert_memory_equal(back, in, n);
	free(back);
	free(e);
}

static void
test_object_layout(void **state)
{
	struct json_buf j;
	const char *v[] = { "a.jpg", "b \"c\".webp" };

	(void)state;
	json_init(&j);
	json_begin(&j);
	json_str(&j, "ts", "2023-11-14T22:13:20.123Z");
	json_str(&j, "level", "info");
	json_int(&j, "ms", 42);
	json_int(&j, "min", INT64_MIN);
	json_int(&j, "max", INT64_MAX);
	json_bool(&j, "ok", 1);
	json_bool(&j, "no", 0);
	json_strv(&j, "outputs", v, 2);
	json_strv(&j, "none", NULL, 0);
	json_str(&j, "null", NULL);
	json_str(&j, "k\"ey", "");
	json_end(&j);
	assert_int_equal(j.err, 0);
	assert_string_equal(j.buf,
	    "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\","
	    "\"ms\":42,\"min\":-9223372036854775808,"
	    "\"max\":9223372036854775807,\"ok\":true,\"no\":false,"
	    "\"outputs\":[\"a.jpg\",\"b \\\"c\\\".webp\"],\"none\":[],"
	    "\"null\":null,\"k\\\"ey\":\"\"}");
	assert_int_equal(j.len, strlen(j.buf));

	/* reset starts a new line with no leading comma */
	json_reset(&j);
	assert_int_equal(j.len, 0);
	json_begin(&j);
	json_int(&j, "a", -1);
	json_end(&j);
	assert_string_equal(j.buf, "{\"a\":-1}");
	json_reset(&j);
	json_begin(&j);
	json_end(&j);
	assert_string_equal(j.buf, "{}");
	json_free(&j);
	assert_null(j.buf);
}

static void
test_escape_basics(void **state)
{
	(void)state;
	ESC("plain ascii ~!", "plain ascii ~!");
	ESC("q\"uote", "q\\\"uote");
	ESC("back\\slash", "back\\\\slash");
	ESC("/", "/");
	ESC("\b\f\n\r\t", "\\b\\f\\n\\r\\t");
	ESC("\x7f", "\x7f");	/* DEL is legal in JSON */
	ESC("", "");
}

static void
test_every_control_char(void **state)
{
	char in[1], want[8];
	int c;

	(void)state;
	for (c = 0; c < 0x20; c++) {
		in[0] = (char)c;
		switch (c) {
		case '\b': strcpy(want, "\\b"); break;
		case '\f': strcpy(want, "\\f"); break;
		case '\n': strcpy(want, "\\n"); break;
		case '\r': strcpy(want, "\\r"); break;
		case '\t': strcpy(want, "\\t"); break;
		default: snprintf(want, sizeof(want), "\\u%04x", c); break;
		}
		assert_esc(in, 1, want);
	}
}

static void
test_strn_with_nul(void **state)
{
	struct json_buf j;

	(void)state;
	json_init(&j);
	json_begin(&j);
	json_strn(&j, "v", "a\0b\0", 4);
	json_strn(&j, "w", "xyz", 2);
	json_end(&j);
	assert_string_equal(j.buf, "{\"v\":\"a\\u0000b\\u0000\",\"w\":\"xy\"}");
	json_free(&j);
}

static void
test_valid_utf8_passes(void **state)
{
	(void)state;
	ESC("caf\xc3\xa9", "caf\xc3\xa9");			/* U+00E9 */
	ESC("\xc2\x80", "\xc2\x80");				/* U+0080 */
	ESC("\xdf\xbf", "\xdf\xbf");				/* U+07FF */
	ESC("\xe0\xa0\x80", "\xe0\xa0\x80");			/* U+0800 */
	ESC("\xe2\x82\xac", "\xe2\x82\xac");			/* euro */
	ESC("\xed\x9f\xbf", "\xed\x9f\xbf");			/* U+D7FF */
	ESC("\xee\x80\x80", "\xee\x80\x80");			/* U+E000 */
	ESC("\xef\xbf\xbd", "\xef\xbf\xbd");			/* U+FFFD */
	ESC("\xe2\x80\xa8\xe2\x80\xa9", "\xe2\x80\xa8\xe2\x80\xa9");
	ESC("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");		/* U+10000 */
	ESC("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");		/* emoji */
	ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");		/* U+10FFFF */
}

/* Every byte of an ill-formed subpart is escaped on its own: two names
 * that differ in such a byte never read the same. */
static void
test_invalid_utf8_escaped(void **state)
{
	(void)state;
	/* lone continuation bytes and impossible bytes */
	ESC("\x80", "\\udc80");
	ESC("a\xbf" "b", "a\\udcbfb");
	ESC("\xfe\xff", "\\udcfe\\udcff");
	ESC("\xf5\x80\x80\x80", "\\udcf5\\udc80\\udc80\\udc80");
	/* overlong forms */
	ESC("\xc0\x80", "\\udcc0\\udc80");
	ESC("\xe0\x80\xaf", "\\udce0\\udc80\\udcaf");
	ESC("\xf0\x8f\xbf\xbf", "\\udcf0\\udc8f\\udcbf\\udcbf");
	/* UTF-16 surrogates encoded in UTF-8 (CESU-8 / WTF-8) */
	ESC("\xed\xa0\x80", "\\udced\\udca0\\udc80");
	/* above U+10FFFF */
	ESC("\xf4\x90\x80\x80", "\\udcf4\\udc90\\udc80\\udc80");
	/* truncated sequences: every byte, and what follows is kept */
	ESC("\xc3", "\\udcc3");
	ESC("\xe2\x82" "A", "\\udce2\\udc82A");
	ESC("\xf0\x9f\x98" "x", "\\udcf0\\udc9f\\udc98x");
	ESC("\xe2\x22", "\\udce2\\\"");	/* the quote is not swallowed */
	ESC("\xe2\n", "\\udce2\\n");
	/* valid around invalid: the valid parts pass through */
	ESC("\xc3\xa9\xff\xc3\xa9", "\xc3\xa9\\udcff\xc3\xa9");
	/* the 128 names of issue 18 case 14 are 128 spellings */
	ESC("b\x80x.jpg", "b\\udc80x.jpg");
	ESC("b\xffx.jpg", "b\\udcffx.jpg");
}

/* Nested objects and arrays, as the HTTP answers and the control socket
 * write them. */
static void
test_nesting(void **state)
{
	struct json_buf j;

	(void)state;
	json_init(&j);
	json_open(&j, NULL, '{');
	json_open(&j, "files", '[');
	json_open(&j, NULL, '{');
	json_str(&j, "name", "a\xff.jpg");
	json_u64(&j, "bytes", 18446744073709551615ULL);
	json_close(&j, '}');
	json_str(&j, NULL, "x");
	json_close(&j, ']');
	json_bool(&j, "ok", 1);
	json_close(&j, '}');
	json_raw(&j, "\n", 1);
	assert_int_equal(j.err, 0);
	assert_string_equal(j.buf, "{\"files\":[{\"name\":\"a\\udcff.jpg\","
	    "\"bytes\":18446744073709551615},\"x\"],\"ok\":true}\n");
	json_free(&j);
}

/* Every 1- and 2-byte string, and 3- and 4-byte strings built from bytes
 * at the edges of the UTF-8 ranges (4 bytes only after F0..FF leads). */
static void
test_escape_exhaustive(void **state)
{
	static const unsigned char edge[] = { 0x00, 0x0a, 0x1f, 0x22, 0x41,
	    0x5c, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
	    0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4,
	    0xf5, 0xff };
	const size_t ne = sizeof(edge);
	unsigned char in[4];
	size_t a, b, c, d;

	(void)state;
	for (a = 0; a < 256; a++) {
		in[0] = (unsigned char)a;
		check_escape_of(in, 1);
		for (b = 0; b < 256; b++) {
			in[1] = (unsigned char)b;
			check_escape_of(in, 2);
		}
	}
	for (a = 0; a < ne; a++)
		for (b = 0; b < ne; b++)
			for (c = 0; c < ne; c++) {
				in[0] = edge[a];
				in[1] = edge[b];
				in[2] = edge[c];
				check_escape_of(in, 3);
				/* four bytes matter only after a 4-byte lead */
				for (d = 0; edge[a] >= 0xf0 && d < ne; d++) {
					in[3] = edge[d];
					check_escape_of(in, 4);
				}
			}
}

/* A whole log-like line from hostile input: one line, parses back. */
static void
test_line_has_no_raw_newline(void **state)
{
	struct json_buf j;
	const char name[] = "evil\n{\"level\":\"error\"}\r\n\xff\x00.jpg";
	unsigned char back[256];
	size_t blen;
	char *body;

	(void)state;
	json_init(&j);
	json_begin(&j);
	json_strn(&j, "file", name, sizeof(name) - 1);
	json_end(&j);
	assert_null(memchr(j.buf, '\n', j.len));
	assert_null(memchr(j.buf, '\r', j.len));
	assert_null(memchr(j.buf, '\0', j.len));
	assert_int_equal(strncmp(j.buf, "{\"file\":\"", 9), 0);
	assert_int_equal(strcmp(j.buf + j.len - 2, "\"}"), 0);
	body = strndup(j.buf + 9, j.len - 11);
	assert_non_null(body);
	assert_true(unescape(body, back, &blen));
	assert_int_equal(blen, sizeof(name) - 1);	/* FF: itself back */
	assert_memory_equal(back, name, sizeof(name) - 1);
	free(body);
	json_free(&j);
}

static void
assert_ts(int64_t ms, const char *want)
{
	char out[32];

	memset(out, 'x', sizeof(out));
	json_rfc3339(out, ms);
	assert_string_equal(out, want);
}

static void
test_rfc3339_known(void **state)
{
	(void)state;
	assert_ts(0, "1970-01-01T00:00:00.000Z");
	assert_ts(1700000000123, "2023-11-14T22:13:20.123Z");
	assert_ts(1795393177123, "2026-11-23T00:19:37.123Z");
	assert_ts(-1, "1969-12-31T23:59:59.999Z");
	assert_ts(951782400000, "2000-02-29T00:00:00.000Z");
	assert_ts(4107542400000, "2100-03-01T00:00:00.000Z");
	assert_ts(999, "1970-01-01T00:00:00.999Z");
	/* out of the 4-digit-year range: clamped, still RFC 3339 */
	assert_ts(253402300799999, "9999-12-31T23:59:59.999Z");
	assert_ts(INT64_MAX, "9999-12-31T23:59:59.999Z");
	assert_ts(INT64_MIN, "0000-01-01T00:00:00.000Z");
}

/* Against gmtime_r over four centuries, stepping an odd number of ms so
 * every time of day and every calendar day are hit. */
static void
test_rfc3339_matches_gmtime(void **state)
{
	const int64_t step = 86400000LL * 3 + 3723456 + 7;
	char out[32], want[96];
	struct tm tm;
	int64_t ms;
	time_t t;

	(void)state;
	for (ms = -2208988800000LL; ms < 10413792000000LL; ms += step) {
		int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;

		t = (time_t)s;
		assert_non_null(gmtime_r(&t, &tm));
		snprintf(want, sizeof(want),
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec, (int)(ms - s * 1000));
		json_rfc3339(out, ms);
		assert_string_equal(out, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_layout),
		cmocka_unit_test(test_escape_basics),
		cmocka_unit_test(test_every_control_char),
		cmocka_unit_test(test_strn_with_nul),
		cmocka_unit_test(test_valid_utf8_passes),
		cmocka_unit_test(test_invalid_utf8_escaped),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_escape_exhaustive),
		cmocka_unit_test(test_line_has_no_raw_newline),
		cmocka_unit_test(test_rfc3339_known),
		cmocka_unit_test(test_rfc3339_matches_gmtime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
