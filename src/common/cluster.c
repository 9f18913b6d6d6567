/*
 * cluster: QUEUE URL, Redis key names, the entry path check and the
 * preset fingerprint (see cluster.h).  Pure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "errfmt.h"
#include "config.h"

/* Up to LLONG_MAX: a nanosecond mtime of today has 19 digits. */
int
cluster_number(const char *s, size_t len, long long min, long long max,
    long long *out)
{
	long long n = 0;
	size_t i;
	int d;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = s[i] - '0';
		if (n > (LLONG_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int
cluster_parse_url(const char *s, struct cluster_url *u, char *why,
    size_t whylen)
{
	const char *p, *at, *hostend, *slash, *colon;
	long long n;
	size_t len;

	memset(u, 0, sizeof(*u));
	u->port = CLUSTER_DEFAULT_PORT;
	if (strncmp(s, "rediss://", 9) == 0)
		return einval(why, whylen, "uses rediss:// (TLS), which is not "
		    "supported; use redis:// on a trusted network or a "
		    "TLS tunnel");
	if (strncmp(s, "redis://", 8) != 0)
		return einval(why, whylen, "is neither 'local' nor a "
		    "redis://host[:port][/db] URL");
	p = s + 8;
	slash = strchr(p, '/');
	/* The last '@' before the path ends the user info: a password may
	 * hold '@' (the host cannot). */
	len = slash ? (size_t)(slash - p) : strlen(p);
	for (at = NULL; len > 0 && at == NULL; len--)
		if (p[len - 1] == '@')
			at = p + len - 1;
	if (at != NULL) {
		/* user info: [user]:password; Redis 6 ACL users are not
		 * used, the password alone is sent to AUTH. */
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL)
			return einval(why, whylen, "has user info without a "
			    "password (use redis://:password@host)");
		len = (size_t)(at - colon - 1);
		if (len >= sizeof(u->password))
			return einval(why, whylen, "has a password longer than "
			    "%zu characters", sizeof(u->password) - 1);
		memcpy(u->password, colon + 1, len);
		u->password[len] = '\0';
		p = at + 1;
	}
	if (*p == '[') {
		if ((hostend = strchr(p, ']')) == NULL)
			return einval(why, whylen, "has an IPv6 address without "
			    "its closing ']'");
		len = (size_t)(hostend - p - 1);
		if (len == 0 || len >= sizeof(u->host))
			return einval(why, whylen, "has no usable host");
		memcpy(u->host, p + 1, len);
		p = hostend + 1;
	} else {
		len = strcspn(p, ":/");
		if (len == 0 || len >= sizeof(u->host))
			return einval(why, whylen, "has no host (redis://host"
			    "[:port][/db])");
		memcpy(u->host, p, len);
		p += len;
	}
	u->host[len] = '\0';
	/* A name or an address, nothing that could hide user info or a
	 * path (the IPv6 form also takes ':' and a %zone). */
	if (strspn(u->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_:%") != len)
		return einval(why, whylen, "has a host that is not a name or an "
		    "address");
	if (*p == ':') {
		p++;
		len = strcspn(p, "/");
		if (cluster_number(p, len, 1, 65535, &n) < 0)
			return einval(why, whylen, "has a bad port (1..65535)");
		u->port = (int)n;
		p += len;
	}
	if (*p == '/') {
		p++;
		if (*p != '\0') {
			if (cluster_number(p, strlen(p), 0, 1000000, &n) < 0)
				return einval(why, whylen, "has a bad database "
				    "number (a whole number, e.g. /0)");
			u->db = (int)n;
			p += strlen(p);
		}
	}
	if (*p != '\0')
		return einval(why, whylen, "has something after the host that "
		    "is not :port or /db");
	return 0;
}

void
cluster_redact_url(const char *s, char *out, size_t cap)
{
	struct cluster_url u;

	if (cluster_parse_url(s, &u, NULL, 0) < 0) {
		/* Not a URL we use, but it may still carry a password. */
		const char *sch = strstr(s, "://"), *host, *at = NULL, *p;

		host = sch ? sch + 3 : s;
		for (p = host; *p && *p != '/'; p++)
			if (*p == '@')
				at = p;
		if (at != NULL)
			snprintf(out, cap, "%.*s(hidden)%s", (int)(host - s), s,
			    at);
		else
			snprintf(out, cap, "%s", s);
		return;
	}
	cluster_url_string(&u, out, cap);
}

void
cluster_url_string(const struct cluster_url *u, char *out, size_t cap)
{
	bool v6 = strchr(u->host, ':') != NULL;

	snprintf(out, cap, "redis://%s%s%s%s:%d/%d", u->password[0] ?
	    ":(set)@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
	    u->db);
}

int
cluster_key(char *out, size_t cap, const char *prefix, const char *what)
{
	int n = snprintf(out, cap, "%s:%s", prefix, what);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int
cluster_seen_key(char *out, size_t cap, const char *prefix, const char *path,
    int64_t mtime_ns, int64_t size)
{
	int n = snprintf(out, cap, "%s:seen:%" PRId64 ":%" PRId64 ":%s",
	    prefix, mtime_ns, size, path);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

/* FNV-1a, 64 bits: stable across machines and versions, which is all the
 * fingerprint needs (it guards against mistakes, not attackers). */
static uint64_t
fnv(uint64_t h, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
cluster_fingerprint(const struct config *cfg, char out[CLUSTER_FP_LEN + 1])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char fp[512];
	int i;

	for (i = 0; i < cfg->npresets; i++) {
		config_preset_fingerprint(&cfg->presets[i], fp, sizeof(fp));
		h = fnv(h, cfg->presets[i].name,
		    strlen(cfg->presets[i].name) + 1);
		h = fnv(h, fp, strlen(fp) + 1);
	}
	/* The output names are part of what "up to date" means. */
	h = fnv(h, cfg->output_template, strlen(cfg->output_template) + 1);
	snprintf(out, CLUSTER_FP_LEN + 1, "%016" PRIx64, h);
}

void
cluster_consumer_name(char *out, size_t cap, const char *host, long pid)
{
	snprintf(out, cap, "%.100s:%ld", host, pid);
}

bool
cluster_path_ok(const char *rel)
{
	const char *p = rel, *e;
	size_t len;

	if (*rel == '\0' || *rel == '/' || strlen(rel) >= PATH_MAX)
		return false;
	for (;;) {
		e = strchr(p, '/');
		len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (e == NULL)
			return true;
		p = e + 1;
	}
}
