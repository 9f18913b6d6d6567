/*
 * json: the one JSON writer of thumbwatch: the JSON Lines log, the HTTP
 * answers and the control socket all write through it, so a name is
 * spelled the same way everywhere.
 *
 * Owns escaping and the growable buffer.  Whatever bytes a value holds
 * (file names are arbitrary bytes on Linux), the text is valid JSON and
 * valid UTF-8 and has no raw newline, so `jq` and log shippers never choke,
 * and no two different names are ever written the same way:
 *  - '"' and '\\' are escaped, control characters 0x00..0x1F become
 *    \b \f \n \r \t or \u00XX;
 *  - valid UTF-8 passes through unchanged;
 *  - every byte of a maximal ill-formed UTF-8 subpart (Unicode 15 section
 *    3.9: a lone or unexpected byte, an overlong form, an encoded
 *    surrogate, a code point above U+10FFFF, a truncated sequence) is
 *    written as \udcXX, the lone low surrogate U+DC00 + byte.  That is
 *    PEP 383's "surrogateescape" (Python's os.fsdecode): the value decodes
 *    to a string from which os.fsencode() gives back the exact bytes, and
 *    a valid name can never produce a lone surrogate, so the mapping is
 *    lossless.  A replacement character would merge the 128 names
 *    "b\x80x" .. "b\xffx" into one.  Strict parsers (jq, Python, Go) read
 *    lone surrogates; the six ASCII characters keep the text UTF-8;
 *  - DEL and U+2028/U+2029 pass through (valid JSON; the log is not JS).
 * Objects and arrays nest (json_open/json_close); a NULL key is an array
 * member.  j->buf is kept NUL-terminated so callers may also use it as a
 * string.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Clamp so every timestamp is a 4-digit-year RFC 3339 date:
 * 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
#define RFC3339_MIN_MS (-62167219200000LL)
#define RFC3339_MAX_MS 253402300799999LL

void
json_init(struct json_buf *j)
{
	j->buf = NULL;
	j->len = 0;
	j->cap = 0;
	j->err = 0;
	j->depth = 0;
	j->count[0] = 0;
}

void
json_free(struct json_buf *j)
{
	free(j->buf);
	json_init(j);
}

void
json_reset(struct json_buf *j)
{
	j->len = 0;
	j->err = 0;
	j->depth = 0;
	j->count[0] = 0;
	if (j->buf != NULL)
		j->buf[0] = '\0';
}

static void
put(struct json_buf *j, const char *s, size_t n)
{
	size_t cap;
	char *nb;

	if (j->err != 0)
		return;
	if (j->len + n + 1 > j->cap) {
		cap = j->cap != 0 ? j->cap : 256;
		while (cap < j->len + n + 1)
			cap *= 2;
		nb = realloc(j->buf, cap);
		if (nb == NULL) {
			j->err = -ENOMEM;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void
puts_(struct json_buf *j, const char *s)
{
	put(j, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s, or 0 with *bad set to
 * the length of the maximal ill-formed subpart to escape (>= 1). */
static size_t
utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;	/* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F;	/* surrogates U+D800..DFFF */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;	/* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F;	/* above U+10FFFF */
	} else {
		*bad = 1;	/* continuation, C0/C1 overlong, F5..FF */
		return 0;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need + 1;
}

void
json_escape(struct json_buf *j, const char *val, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)val;
	size_t i = 0, run = 0, n, bad = 1;
	char esc[7];

	while (i < len) {
		unsigned char c = s[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++;
			i++;
			continue;
		}
		if (c >= 0x80 && (n = utf8_seq(s + i, len - i, &bad)) != 0) {
			run += n;
			i += n;
			continue;
		}
		/* Flush the plain run before the escape. */
		put(j, (const char *)s + i - run, run);
		run = 0;
		if (c >= 0x80) {
			/* bad >= 1 bytes, each of them >= 0x80 (the subpart
			 * ends before any ASCII byte). */
			for (n = 0; n < bad; n++) {
				memcpy(esc, "\\udc", 4);
				esc[4] = hex[s[i + n] >> 4];
				esc[5] = hex[s[i + n] & 0xF];
				put(j, esc, 6);
			}
			i += bad;
			continue;
		}
		switch (c) {
		case '"': puts_(j, "\\\""); break;
		case '\\': puts_(j, "\\\\"); break;
		case '\b': puts_(j, "\\b"); break;
		case '\f': puts_(j, "\\f"); break;
		case '\n': puts_(j, "\\n"); break;
		case '\r': puts_(j, "\\r"); break;
		case '\t': puts_(j, "\\t"); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xF];
			put(j, esc, 6);
			break;
		}
		i++;
	}
	put(j, (const char *)s + i - run, run);
}

void
json_raw(struct json_buf *j, const char *s, size_t n)
{
	put(j, s, n);
}

void
json_printf(struct json_buf *j, const char *fmt, ...)
{
	va_list ap;
	char small[256], *big;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		put(j, small, (size_t)n);
		return;
	}
	if ((big = malloc((size_t)n + 1)) == NULL) {
		j->err = -ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	put(j, big, (size_t)n);
	free(big);
}

void
json_key(struct json_buf *j, const char *k)
{
	if (j->count[j->depth]++ > 0)
		puts_(j, ",");
	if (k == NULL)
		return;
	puts_(j, "\"");
	json_escape(j, k, strlen(k));
	puts_(j, "\":");
}

void
json_open(struct json_buf *j, const char *k, char bracket)
{
	char b = bracket;

	/* The outermost value has no key and nothing before it. */
	if (j->depth > 0)
		json_key(j, k);
	put(j, &b, 1);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->count[++j->depth] = 0;
	else
		j->err = -E2BIG;	/* a bug in the caller, not input */
}

void
json_close(struct json_buf *j, char bracket)
{
	char b = bracket;

	put(j, &b, 1);
	if (j->depth > 0)
		j->depth--;
}

void
json_begin(struct json_buf *j)
{
	j->depth = 0;
	j->count[0] = 0;
	json_open(j, NULL, '{');
}

void
json_end(struct json_buf *j)
{
	json_close(j, '}');
}

static void
quoted(struct json_buf *j, const char *val, size_t len)
{
	puts_(j, "\"");
	json_escape(j, val, len);
	puts_(j, "\"");
}

/* A NULL val is written as null rather than crashing a log call. */
void
json_str(struct json_buf *j, const char *k, const char *val)
{
	json_key(j, k);
	if (val == NULL)
		puts_(j, "null");
	else
		quoted(j, val, strlen(val));
}

void
json_strn(struct json_buf *j, const char *k, const char *val, size_t len)
{
	json_key(j, k);
	if (val == NULL)
		puts_(j, "null");
	else
		quoted(j, val, len);
}

void
json_int(struct json_buf *j, const char *k, int64_t val)
{
	char num[24];

	json_key(j, k);
	snprintf(num, sizeof(num), "%" PRId64, val);
	puts_(j, num);
}

void
json_u64(struct json_buf *j, const char *k, uint64_t val)
{
	char num[24];

	json_key(j, k);
	snprintf(num, sizeof(num), "%" PRIu64, val);
	puts_(j, num);
}

void
json_bool(struct json_buf *j, const char *k, int val)
{
	json_key(j, k);
	puts_(j, val ? "true" : "false");
}

void
json_strv(struct json_buf *j, const char *k, const char *const *v, size_t n)
{
	size_t i;

	json_key(j, k);
	puts_(j, "[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			puts_(j, ",");
		if (v[i] == NULL)
			puts_(j, "null");
		else
			quoted(j, v[i], strlen(v[i]));
	}
	puts_(j, "]");
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): no
 * gmtime_r, so no dependence on TZ, locale or the range of time_t. */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Writes v as exactly width decimal digits (v fits by construction). */
static char *
digits(char *p, unsigned v, int width)
{
	int i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

void
json_rfc3339(char out[32], int64_t unix_ms)
{
	int64_t days, msod;
	int y, mo, d;
	char *p = out;

	if (unix_ms < RFC3339_MIN_MS)
		unix_ms = RFC3339_MIN_MS;
	if (unix_ms > RFC3339_MAX_MS)
		unix_ms = RFC3339_MAX_MS;
	/* Floor division: times before 1970 count back from midnight. */
	days = unix_ms / 86400000;
	msod = unix_ms % 86400000;
	if (msod < 0) {
		msod += 86400000;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	p = digits(p, (unsigned)y, 4);
	*p++ = '-';
	p = digits(p, (unsigned)mo, 2);
	*p++ = '-';
	p = digits(p, (unsigned)d, 2);
	*p++ = 'T';
	p = digits(p, (unsigned)(msod / 3600000), 2);
	*p++ = ':';
	p = digits(p, (unsigned)(msod / 60000 % 60), 2);
	*p++ = ':';
	p = digits(p, (unsigned)(msod / 1000 % 60), 2);
	*p++ = '.';
	p = digits(p, (unsigned)(msod % 1000), 3);
	*p++ = 'Z';
	*p = '\0';
}
