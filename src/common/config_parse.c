/*
 * config_parse: the value of one key, as config's table describes it.
 *
 * Parses and checks a value by its key's type (numbers with bounds, sizes
 * with K/M/G, booleans, names, extension and route lists, colours, output
 * templates, listen addresses, queue URLs), stores it in a struct config or
 * struct preset only when valid, says what is wrong otherwise, and formats
 * a stored value back for check-config.
 *
 * Pure: neither libuv nor libvips.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "httputil.h"
#include "pathmap.h"

const char *enum_name(const struct name_value *names, int value)
{
	for (; names->name != NULL; names++)
		if (names->value == value)
			return names->name;
	return "?";
}

static int parse_names(const struct keydef *k, const char *v, int *value,
    const char **canon, char *why, size_t whylen)
{
	const struct name_value *n;
	size_t used;

	for (n = k->names; n->name != NULL; n++) {
		if (strcasecmp(n->name, v) == 0) {
			*value = n->value;
			*canon = enum_name(k->names, n->value);
			return 0;
		}
	}
	used = (size_t)snprintf(why, whylen, "is not one of");
	for (n = k->names; n->name != NULL && used < whylen; n++)
		used += (size_t)snprintf(why + used, whylen - used, "%s %s",
		    n == k->names ? "" : ",", n->name);
	return -EINVAL;
}

/* Signed decimal only: strtoll alone would take leading blanks, and a
 * partial "12abc" must not pass as 12. */
static int parse_ll(const char *v, long long min, long long max,
    long long *out, char *why, size_t whylen)
{
	const char *p = v;
	char *end;
	long long n;

	if (*p == '+' || *p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		goto bad;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p != '\0')
		goto bad;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno == ERANGE || n < min || n > max)
		return einval(why, whylen, "is out of range (%lld..%lld)", min,
		    max);
	*out = n;
	return 0;
bad:
	return einval(why, whylen, "is not a whole number (%lld..%lld)", min,
	    max);
}

static int parse_size(const char *v, int64_t *out, char *why, size_t whylen)
{
	const char *p = v;
	char *end;
	long long n;
	int64_t mult = 1;

	if (!isdigit((unsigned char)*p))
		goto bad;
	errno = 0;
	n = strtoll(p, &end, 10);
	if (errno == ERANGE)
		goto big;
	p = end;
	while (*p == ' ' || *p == '\t')
		p++;
	switch (tolower((unsigned char)*p)) {
	case 'k': mult = 1LL << 10; p++; break;
	case 'm': mult = 1LL << 20; p++; break;
	case 'g': mult = 1LL << 30; p++; break;
	case 't': mult = 1LL << 40; p++; break;
	default: break;
	}
	/* "512M", "512MB", "512MiB" and "100B" all read as people mean them. */
	if (mult > 1 && tolower((unsigned char)*p) == 'i' &&
	    tolower((unsigned char)p[1]) == 'b')
		p++;
	if (tolower((unsigned char)*p) == 'b')
		p++;
	if (*p != '\0')
		goto bad;
	if (n > INT64_MAX / mult)
		goto big;
	*out = (int64_t)n * mult;
	return 0;
bad:
	return einval(why, whylen,
	    "is not a size (bytes, or a number with K, M or G; 0 = no limit)");
big:
	return einval(why, whylen, "is too large");
}

static int parse_bool(const char *v, bool *out, char *why, size_t whylen)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return einval(why, whylen,
	    "is not a boolean (true/false, yes/no, on/off, 1/0)");
}

/* The HTTP routes HTTP_PUBLIC may open; /upload never is, and /healthz
 * always is (a load balancer's probe carries no token). */
static const char *const http_routes[] = { "thumbnails", "events", "jobs",
    "status", "metrics", NULL };

static int parse_routes(const char *v, char *out, size_t cap, char *why,
    size_t whylen)
{
	const char *item = v, *comma;
	size_t used = 0, len, i;

	out[0] = '\0';
	if (*v == '\0')
		return 0;
	for (;;) {
		comma = strchr(item, ',');
		len = comma != NULL ? (size_t)(comma - item) : strlen(item);
		trim(&item, &len);
		for (i = 0; http_routes[i] != NULL; i++)
			if (strlen(http_routes[i]) == len &&
			    strncasecmp(http_routes[i], item, len) == 0)
				break;
		if (http_routes[i] == NULL)
			return einval(why, whylen, "has '%.*s', which is not a "
			    "route that may be public (thumbnails, "
			    "events, jobs, status, metrics)",
			    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), item);
		len = strlen(http_routes[i]);
		if (used + (used > 0) + len >= cap)
			return einval(why, whylen, "is too long");
		if (used > 0)
			out[used++] = ',';
		memcpy(out + used, http_routes[i], len + 1);
		used += len;
		if (comma == NULL)
			return 0;
		item = comma + 1;
	}
}

/* Items are trimmed, lower-cased and lose leading dots, so ".JPG, png"
 * means what its writer meant; anything else odd is refused rather than
 * guessed at, because a wrong list silently ignores files. */
static int parse_extlist(const char *v, char *out, size_t cap, char *why,
    size_t whylen)
{
	const char *item = v, *comma;
	size_t used = 0, len, i;

	if (*v == '\0')
		return einval(why, whylen,
		    "is empty (no file would be processed)");
	for (;;) {
		comma = strchr(item, ',');
		len = comma != NULL ? (size_t)(comma - item) : strlen(item);
		trim(&item, &len);
		while (len > 0 && *item == '.') {
			item++;
			len--;
		}
		if (len == 0)
			return einval(why, whylen, "has an empty item");
		for (i = 0; i < len; i++)
			if ((unsigned char)item[i] > 127 ||
			    !isalnum((unsigned char)item[i]))
				break;
		if (i < len)
			return einval(why, whylen, "has '%.*s', which is not an "
			    "extension (letters and digits only)",
			    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), item);
		if (used + (used > 0) + len >= cap)
			return einval(why, whylen, "is too long (at most %zu "
			    "characters)", cap - 1);
		if (used > 0)
			out[used++] = ',';
		for (i = 0; i < len; i++)
			out[used++] = (char)tolower((unsigned char)item[i]);
		out[used] = '\0';
		if (comma == NULL)
			return 0;
		item = comma + 1;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_colour(const char *v, char *out, size_t cap, char *why,
    size_t whylen)
{
	int rgb[3], i, hi, lo;
	const char *p = v;
	char *end;
	long n;

	if (*p == '#') {
		if (strlen(p) != 7)
			goto bad;
		for (i = 0; i < 3; i++) {
			hi = hexval(p[1 + 2 * i]);
			lo = hexval(p[2 + 2 * i]);
			if (hi < 0 || lo < 0)
				goto bad;
			rgb[i] = hi * 16 + lo;
		}
	} else {
		for (i = 0; i < 3; i++) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			n = strtol(p, &end, 10);
			if (n > 255)
				goto bad;
			rgb[i] = (int)n;
			p = end;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != (i < 2 ? ',' : '\0'))
				goto bad;
			p++;
		}
	}
	snprintf(out, cap, "%d,%d,%d", rgb[0], rgb[1], rgb[2]);
	return 0;
bad:
	return einval(why, whylen,
	    "is not a colour (r,g,b each 0..255, or #rrggbb)");
}

static int store_string(const struct keydef *k, char *field, const char *v,
    char *why, size_t whylen)
{
	if (strlen(v) >= k->size)
		return einval(why, whylen, "is too long (at most %zu "
		    "characters)", k->size - 1);
	memcpy(field, v, strlen(v) + 1);
	return 0;
}

int parse_value(const struct keydef *k, const char *v, void *base,
    char *why, size_t whylen)
{
	char *field = (char *)base + k->off;
	char buf[256];
	const char *canon;
	long long n;
	int64_t n64 = 0;
	int i, rc;
	bool b = false;

	switch (k->type) {
	case K_PATH:
		if (*v == '\0')
			return einval(why, whylen, "is empty");
		return store_string(k, field, v, why, whylen);
	case K_INT:
		if ((rc = parse_ll(v, k->min, k->max, &n, why, whylen)) != 0)
			return rc;
		i = (int)n;
		memcpy(field, &i, sizeof(i));
		return 0;
	case K_INT64:
		if ((rc = parse_ll(v, k->min, k->max, &n, why, whylen)) != 0)
			return rc;
		n64 = n;
		memcpy(field, &n64, sizeof(n64));
		return 0;
	case K_SIZE:
		if ((rc = parse_size(v, &n64, why, whylen)) != 0)
			return rc;
		memcpy(field, &n64, sizeof(n64));
		return 0;
	case K_BOOL:
		if ((rc = parse_bool(v, &b, why, whylen)) != 0)
			return rc;
		memcpy(field, &b, sizeof(b));
		return 0;
	case K_ENUM:
		if ((rc = parse_names(k, v, &i, &canon, why, whylen)) != 0)
			return rc;
		memcpy(field, &i, sizeof(i));
		return 0;
	case K_WORD:
		if ((rc = parse_names(k, v, &i, &canon, why, whylen)) != 0)
			return rc;
		return store_string(k, field, canon, why, whylen);
	case K_EXTLIST:
		if ((rc = parse_extlist(v, buf, sizeof(buf), why, whylen)) != 0)
			return rc;
		return store_string(k, field, buf, why, whylen);
	case K_ROUTES:
		if ((rc = parse_routes(v, buf, sizeof(buf), why, whylen)) != 0)
			return rc;
		return store_string(k, field, buf, why, whylen);
	case K_TEMPLATE:
		if (pathmap_check_template(v) != 0)
			return einval(why, whylen, "is not a valid output "
			    "template (relative, no '..', needs {stem} and "
			    "{preset}; knows {dir} {stem} {preset} {ext} "
			    "{srcext})");
		return store_string(k, field, v, why, whylen);
	case K_COLOUR:
		if ((rc = parse_colour(v, buf, sizeof(buf), why, whylen)) != 0)
			return rc;
		return store_string(k, field, buf, why, whylen);
	case K_LISTEN:
		if (*v && httputil_parse_listen(v, buf, sizeof(buf), &i) < 0)
			return einval(why, whylen, "is not an address:port "
			    "(127.0.0.1:8080, 0.0.0.0:80, [::1]:8080; port "
			    "1..65535)");
		return store_string(k, field, v, why, whylen);
	case K_SECRET:
		return store_string(k, field, v, why, whylen);
	case K_QUEUE:
		if (strcmp(v, "local") != 0) {
			struct cluster_url u;
			char w[256];

			if (cluster_parse_url(v, &u, w, sizeof(w)) < 0)
				return einval(why, whylen, "%s", w);
		}
		return store_string(k, field, v, why, whylen);
	case K_IDENT:
		if (*v == '\0' || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != strlen(v))
			return einval(why, whylen, "is not a name (letters, "
			    "digits, _ . : -)");
		return store_string(k, field, v, why, whylen);
	}
	return einval(why, whylen, "has an unknown type");
}

static void format_size(int64_t n, char *out, size_t len)
{
	static const char units[] = "TGMK";
	int i;

	for (i = 0; i < 4 && n != 0; i++) {
		int64_t m = (int64_t)1 << (10 * (4 - i));

		if (n % m == 0) {
			snprintf(out, len, "%" PRId64 "%c", n / m, units[i]);
			return;
		}
	}
	snprintf(out, len, "%" PRId64, n);
}

void format_value(const struct keydef *k, const void *base, char *out,
    size_t len)
{
	const char *field = (const char *)base + k->off;
	int64_t n64;
	int i;
	bool b;

	switch (k->type) {
	case K_INT:
		memcpy(&i, field, sizeof(i));
		snprintf(out, len, "%d", i);
		return;
	case K_INT64:
		memcpy(&n64, field, sizeof(n64));
		snprintf(out, len, "%" PRId64, n64);
		return;
	case K_SIZE:
		memcpy(&n64, field, sizeof(n64));
		format_size(n64, out, len);
		return;
	case K_BOOL:
		memcpy(&b, field, sizeof(b));
		snprintf(out, len, "%s", b ? "true" : "false");
		return;
	case K_ENUM:
		memcpy(&i, field, sizeof(i));
		snprintf(out, len, "%s", enum_name(k->names, i));
		return;
	case K_PATH:
	case K_WORD:
	case K_EXTLIST:
	case K_ROUTES:
	case K_TEMPLATE:
	case K_COLOUR:
	case K_LISTEN:
	case K_IDENT:
		snprintf(out, len, "%s", field);
		return;
	case K_QUEUE:
		cluster_redact_url(field, out, len);
		return;
	case K_SECRET:
		snprintf(out, len, "%s", field[0] ? "(set)" : "");
		return;
	}
	snprintf(out, len, "?");
}

int set_def(const struct keydef *k, void *base, const char *label,
    const char *value, const char *source, char *err, size_t errlen)
{
	char v[PATH_MAX], why[512];
	size_t len = strlen(value);
	int rc;

	trim(&value, &len);
	if (len >= sizeof(v))
		return einval(err, errlen, "%s: %s: '%.*s...' is too long",
		    source, label, QUOTE_MAX, value);
	memcpy(v, value, len);
	v[len] = '\0';
	rc = parse_value(k, v, base, why, sizeof(why));
	if (rc != 0 && k->type == K_QUEUE) {
		/* Never echo a password, even in a URL that did not parse. */
		char shown[PATH_MAX];

		cluster_redact_url(v, shown, sizeof(shown));
		return einval(err, errlen, "%s: %s: '%.*s' %s", source, label,
		    QUOTE_MAX, shown, why);
	}
	if (rc != 0)
		return einval(err, errlen, "%s: %s: '%.*s%s' %s", source, label,
		    QUOTE_MAX, v, len > QUOTE_MAX ? "..." : "", why);
	return 0;
}
