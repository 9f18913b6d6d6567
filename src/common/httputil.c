/*
 * httputil: pure helpers of the HTTP front door (see httputil.h).  No
 * libuv, no libmicrohttpd, no libvips.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "httputil.h"
#include "sniff.h"

int
httputil_parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
	const char *colon, *h = s;
	size_t hl;
	char buf[64], *end;
	unsigned char addr[16];
	long p;
	bool v6 = false;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
		v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, h, hl);
	buf[hl] = '\0';
	if (!isdigit((unsigned char)colon[1]))
		return -EINVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || p < 1 || p > 65535)
		return -EINVAL;
	if (!v6 && strcmp(buf, "localhost") == 0)
		snprintf(buf, sizeof(buf), "127.0.0.1");
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) != 1)
		return -EINVAL;
	if (strlen(buf) >= hostcap)
		return -EINVAL;
	memcpy(host, buf, strlen(buf) + 1);
	*port = (int)p;
	return 0;
}

int
httputil_sanitize_name(const char *in, char *out, size_t cap)
{
	const char *s = in, *p;
	size_t n = 0;

	if (cap == 0)
		return -EINVAL;
	for (p = in; *p; p++)
		if (*p == '/' || *p == '\\')
			s = p + 1;
	for (p = s; *p && n + 1 < cap && n < 200; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			continue;
		if (n == 0 && (c == '.' || c == ' '))
			continue;
		out[n++] = (char)c;
	}
	/* No trailing blanks or dots ("name." reads as "name" elsewhere). */
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '.'))
		n--;
	out[n] = '\0';
	if (n == 0 || strstr(out, "..") != NULL)
		return -EINVAL;
	return 0;
}

/* One reading of magic bytes for uploads and workers (sniff.c); HEIC and
 * AVIF share a loader there, but a nameless upload is named by its brand. */
const char *
httputil_sniff(const unsigned char *b, size_t n)
{
	switch (sniff_format(b, n)) {
	case SNIFF_JPEG:
		return "jpg";
	case SNIFF_PNG:
		return "png";
	case SNIFF_GIF:
		return "gif";
	case SNIFF_WEBP:
		return "webp";
	case SNIFF_TIFF:
		return "tif";
	case SNIFF_JXL:
		return "jxl";
	case SNIFF_HEIF:
		return memcmp(b + 8, "avif", 4) == 0 ||
		    memcmp(b + 8, "avis", 4) == 0 ? "avif" : "heic";
	default:
		return NULL;
	}
}

static bool
in_list(const char *ext, const char *list)
{
	size_t el = strlen(ext), n;
	const char *e;

	for (e = list; *e; e += n + (e[n] == ',')) {
		n = strcspn(e, ",");
		if (n == el && strncasecmp(e, ext, n) == 0)
			return true;
	}
	return false;
}

bool
httputil_type_enabled(const char *type, const char *extensions)
{
	if (type == NULL)
		return false;
	if (in_list(type, extensions))
		return true;
	if (strcmp(type, "jpg") == 0)
		return in_list("jpeg", extensions);
	if (strcmp(type, "tif") == 0)
		return in_list("tiff", extensions);
	if (strcmp(type, "heic") == 0)
		return in_list("heif", extensions);
	return false;
}

const char *
httputil_content_type(const char *name)
{
	static const struct { const char *ext, *type; } t[] = {
		{ "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
		{ "png", "image/png" }, { "webp", "image/webp" },
		{ "avif", "image/avif" }, { "gif", "image/gif" },
		{ "tif", "image/tiff" }, { "tiff", "image/tiff" },
		{ "heic", "image/heic" }, { "heif", "image/heif" },
		{ "jxl", "image/jxl" }, { "html", "text/html; charset=utf-8" },
		{ "json", "application/json" }, { NULL, NULL }
	};
	const char *dot = strrchr(name, '.');
	int i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; t[i].ext; i++)
			if (strcasecmp(dot + 1, t[i].ext) == 0)
				return t[i].type;
	return "application/octet-stream";
}

void
httputil_etag(char *out, size_t cap, uint64_t ino, int64_t size,
    int64_t mtime_ns)
{
	snprintf(out, cap, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", ino,
	    (uint64_t)size, (uint64_t)mtime_ns);
}

void
httputil_http_date(char *out, size_t cap, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

time_t
httputil_parse_http_date(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end)
		return (time_t)-1;
	return timegm(&tm);
}

bool
httputil_etag_match(const char *header, const char *etag)
{
	const char *p = header;
	size_t el = strlen(etag), n;

	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == el && memcmp(p, etag, el) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* Digits only (strtoull would take blanks and a sign); false on none
 * or on overflow. */
static bool
range_num(const char **pp, uint64_t *v)
{
	const char *p = *pp;

	*v = 0;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return false;
		*v = *v * 10 + (uint64_t)(*p - '0');
	}
	*pp = p;
	return true;
}

int
httputil_parse_range(const char *header, uint64_t size, uint64_t *off,
    uint64_t *len)
{
	const char *p = header;
	uint64_t a, b;

	if (strncasecmp(p, "bytes=", 6) != 0)
		return 0;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-') {
		/* The last N bytes. */
		p++;
		if (!range_num(&p, &b))
			return 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return 0;	/* several ranges, or junk */
		if (b == 0 || size == 0)
			return -1;
		if (b > size)
			b = size;
		*off = size - b;
		*len = b;
		return 1;
	}
	if (!range_num(&p, &a) || *p++ != '-')
		return 0;
	b = UINT64_MAX;
	if (*p >= '0' && *p <= '9' && (!range_num(&p, &b) || b < a))
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return 0;
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

/* ---- strbuf ---------------------------------------------------------- */

void
strbuf_init(struct strbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void
strbuf_free(struct strbuf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

static int
reserve(struct strbuf *b, size_t more)
{
	size_t cap;
	char *nb;

	if (b->err)
		return b->err;
	if (b->len + more + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	if ((nb = realloc(b->buf, cap)) == NULL)
		return b->err = -ENOMEM;
	b->buf = nb;
	b->cap = cap;
	return 0;
}

void
strbuf_add(struct strbuf *b, const char *s, size_t n)
{
	if (reserve(b, n) < 0)
		return;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

void
strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

bool
httputil_new_part(bool cur_open, int64_t cur_bytes, const char *cur_raw,
    const char *filename, uint64_t off)
{
	if (off != 0)
		return false;
	/* The post processor may report a part's start with no data before
	 * its first bytes: that is the same part only when it is the same
	 * name.  Another name is another part, even after an empty one (which
	 * then ends, empty, and is refused rather than given the next
	 * part's bytes). */
	return !cur_open || cur_bytes != 0 || cur_raw == NULL ||
	    strcmp(cur_raw, filename) != 0;
}

bool
httputil_token_equal(const char *given, const char *token)
{
	size_t i, gn = strlen(given), tn = strlen(token);
	unsigned char diff = gn != tn;

	if (tn == 0)
		return gn == 0;
	/* Time depends on the length given, never on where the bytes or
	 * the lengths first differ. */
	for (i = 0; i < gn; i++)
		diff |= (unsigned char)(given[i] ^ token[i % tn]);
	return diff == 0;
}

bool
httputil_list_has(const char *list, const char *word)
{
	size_t n = strlen(word), k;
	const char *e;

	for (e = list; *e; e += k + (e[k] == ',')) {
		k = strcspn(e, ",");
		if (k == n && strncmp(e, word, n) == 0)
			return true;
	}
	return false;
}

void
strbuf_url_path(struct strbuf *b, const char *path)
{
	const unsigned char *p;

	for (p = (const unsigned char *)path; *p; p++) {
		if (isalnum(*p) || strchr("-._~/", *p))
			strbuf_add(b, (const char *)p, 1);
		else
			strbuf_printf(b, "%%%02X", *p);
	}
}

/* ---- Prometheus ------------------------------------------------------ */

const double httputil_buckets_s[HTTPUTIL_NBUCKETS] = { 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };

void
histogram_observe(struct histogram *h, int64_t ms)
{
	double s = (double)(ms < 0 ? 0 : ms) / 1000.0;
	int i;

	h->n++;
	h->sum_s += s;
	for (i = 0; i < HTTPUTIL_NBUCKETS; i++)
		if (s <= httputil_buckets_s[i]) {
			h->count[i]++;
			return;
		}
}

void
prom_metric(struct strbuf *b, const char *name, const char *type,
    const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
prom_value(struct strbuf *b, const char *name, const char *labels, double v)
{
	if (labels && *labels)
		strbuf_printf(b, "%s{%s} %.10g\n", name, labels, v);
	else
		strbuf_printf(b, "%s %.10g\n", name, v);
}

void
prom_histogram(struct strbuf *b, const char *name, const char *help,
    const struct histogram *h)
{
	uint64_t cum = 0;
	int i;

	prom_metric(b, name, "histogram", help);
	for (i = 0; i < HTTPUTIL_NBUCKETS; i++) {
		cum += h->count[i];
		strbuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    httputil_buckets_s[i], cum);
	}
	strbuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->n);
	strbuf_printf(b, "%s_sum %.10g\n%s_count %" PRIu64 "\n", name, h->sum_s,
	    name, h->n);
}
