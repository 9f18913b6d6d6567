/*
 * cluster: QUEUE URL, Redis key names, stream entries and reply shapes
 * (see cluster.h).  Pure: hiredis is used only for its reply structs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

__attribute__((format(printf, 3, 4)))
static int
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A decimal number in [min, max] spanning exactly s[0..len).  Up to
 * LLONG_MAX: a nanosecond mtime of today has 19 digits. */
static int
number(const char *s, size_t len, long long min, long long max,
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
		return bad(why, whylen, "uses rediss:// (TLS), which is not "
		    "supported; use redis:// on a trusted network or a "
		    "TLS tunnel");
	if (strncmp(s, "redis://", 8) != 0)
		return bad(why, whylen, "is neither 'local' nor a "
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
			return bad(why, whylen, "has user info without a "
			    "password (use redis://:password@host)");
		len = (size_t)(at - colon - 1);
		if (len >= sizeof(u->password))
			return bad(why, whylen, "has a password longer than "
			    "%zu characters", sizeof(u->password) - 1);
		memcpy(u->password, colon + 1, len);
		u->password[len] = '\0';
		p = at + 1;
	}
	if (*p == '[') {
		if ((hostend = strchr(p, ']')) == NULL)
			return bad(why, whylen, "has an IPv6 address without "
			    "its closing ']'");
		len = (size_t)(hostend - p - 1);
		if (len == 0 || len >= sizeof(u->host))
			return bad(why, whylen, "has no usable host");
		memcpy(u->host, p + 1, len);
		p = hostend + 1;
	} else {
		len = strcspn(p, ":/");
		if (len == 0 || len >= sizeof(u->host))
			return bad(why, whylen, "has no host (redis://host"
			    "[:port][/db])");
		memcpy(u->host, p, len);
		p += len;
	}
	u->host[len] = '\0';
	/* A name or an address, nothing that could hide user info or a
	 * path (the IPv6 form also takes ':' and a %zone). */
	if (strspn(u->host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-_:%") != len)
		return bad(why, whylen, "has a host that is not a name or an "
		    "address");
	if (*p == ':') {
		p++;
		len = strcspn(p, "/");
		if (number(p, len, 1, 65535, &n) < 0)
			return bad(why, whylen, "has a bad port (1..65535)");
		u->port = (int)n;
		p += len;
	}
	if (*p == '/') {
		p++;
		if (*p != '\0') {
			if (number(p, strlen(p), 0, 1000000, &n) < 0)
				return bad(why, whylen, "has a bad database "
				    "number (a whole number, e.g. /0)");
			u->db = (int)n;
			p += strlen(p);
		}
	}
	if (*p != '\0')
		return bad(why, whylen, "has something after the host that is "
		    "not :port or /db");
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

static bool
is_str(const redisReply *r)
{
	return r != NULL && (r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_STATUS);
}

/* A string field into buf; false when it is not one, holds a NUL or does
 * not fit. */
static bool
copy_str(const redisReply *r, char *buf, size_t cap)
{
	if (!is_str(r) || r->len >= cap || memchr(r->str, '\0', r->len))
		return false;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	return true;
}

static bool
field_int(const redisReply *r, long long min, long long max, int64_t *out)
{
	long long n;

	if (!is_str(r) || number(r->str, r->len, min, max, &n) < 0)
		return false;
	*out = n;
	return true;
}

static bool
field_is(const redisReply *r, const char *name)
{
	return is_str(r) && r->len == strlen(name) &&
	    memcmp(r->str, name, r->len) == 0;
}

int
cluster_read_entry(const redisReply *e, struct cluster_job *job, char *why,
    size_t whylen)
{
	const redisReply *f, *k, *v;
	bool have_path = false, have_size = false, have_mtime = false;
	size_t i;

	memset(job, 0, sizeof(*job));
	if (e == NULL || e->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    !copy_str(e->element[0], job->id, sizeof(job->id))) {
		bad(why, whylen, "not a stream entry");
		return -EBADMSG;
	}
	f = e->element[1];
	/* XAUTOCLAIM in Redis 6.2 answers a deleted entry as [id, nil]. */
	if (f == NULL || f->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0) {
		bad(why, whylen, "entry %s: fields are not name/value pairs",
		    job->id);
		return -EBADMSG;
	}
	for (i = 0; i < f->elements; i += 2) {
		k = f->element[i];
		v = f->element[i + 1];
		if (field_is(k, "path")) {
			if (!copy_str(v, job->path, sizeof(job->path)) ||
			    !cluster_path_ok(job->path)) {
				bad(why, whylen, "entry %s: path is not a "
				    "relative path inside the input folder",
				    job->id);
				return -EBADMSG;
			}
			have_path = true;
		} else if (field_is(k, "size")) {
			if (!(have_size = field_int(v, 0, INT64_MAX,
			    &job->size))) {
				bad(why, whylen, "entry %s: bad size",
				    job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "mtime_ns")) {
			if (!(have_mtime = field_int(v, 0, INT64_MAX,
			    &job->mtime_ns))) {
				bad(why, whylen, "entry %s: bad mtime_ns",
				    job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "fp")) {
			if (!copy_str(v, job->fp, sizeof(job->fp))) {
				bad(why, whylen, "entry %s: bad fp", job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "force")) {
			job->force = field_is(v, "1");
		} else if (field_is(k, "by")) {
			if (!copy_str(v, job->by, sizeof(job->by)))
				job->by[0] = '\0';
		}
		/* Unknown fields are for later versions. */
	}
	if (!have_path || !have_size || !have_mtime) {
		bad(why, whylen, "entry %s: missing %s", job->id,
		    !have_path ? "path" : !have_size ? "size" : "mtime_ns");
		return -EBADMSG;
	}
	return 0;
}

const redisReply *
cluster_xreadgroup_entries(const redisReply *r, char *why, size_t whylen)
{
	static const redisReply none = { .type = REDIS_REPLY_ARRAY };
	const redisReply *s;

	if (r == NULL || r->type == REDIS_REPLY_NIL)
		return &none;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    (s = r->element[0])->type != REDIS_REPLY_ARRAY ||
	    s->elements != 2 || !is_str(s->element[0]) ||
	    s->element[1]->type != REDIS_REPLY_ARRAY) {
		bad(why, whylen, "XREADGROUP answered in an unknown shape");
		return NULL;
	}
	return s->element[1];
}

const redisReply *
cluster_xautoclaim_entries(const redisReply *r, char *next, size_t nextcap,
    char *why, size_t whylen)
{
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    !is_str(r->element[0]) ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		bad(why, whylen, "XAUTOCLAIM answered in an unknown shape");
		return NULL;
	}
	if (next != NULL && !copy_str(r->element[0], next, nextcap))
		snprintf(next, nextcap, "0-0");
	return r->element[1];
}

int
cluster_read_pending(const redisReply *r, struct cluster_pending *rows,
    int max, char *why, size_t whylen)
{
	const redisReply *e;
	int n = 0;
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		bad(why, whylen, "XPENDING answered in an unknown shape");
		return -EBADMSG;
	}
	for (i = 0; i < r->elements && n < max; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
		    !copy_str(e->element[0], rows[n].id, sizeof(rows[n].id)) ||
		    !copy_str(e->element[1], rows[n].consumer,
		    sizeof(rows[n].consumer)) ||
		    e->element[2]->type != REDIS_REPLY_INTEGER ||
		    e->element[3]->type != REDIS_REPLY_INTEGER) {
			bad(why, whylen, "XPENDING row %zu is not [id, "
			    "consumer, idle, deliveries]", i);
			return -EBADMSG;
		}
		rows[n].idle_ms = e->element[2]->integer;
		rows[n].deliveries = e->element[3]->integer;
		n++;
	}
	return n;
}

int
cluster_read_group_info(const redisReply *r, const char *group,
    int64_t *consumers, int64_t *pending)
{
	const redisReply *g, *k, *v;
	bool mine;
	size_t i, j;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return -EBADMSG;
	for (i = 0; i < r->elements; i++) {
		g = r->element[i];
		if (g->type != REDIS_REPLY_ARRAY || g->elements % 2 != 0)
			return -EBADMSG;
		mine = false;
		for (j = 0; j < g->elements; j += 2)
			if (field_is(g->element[j], "name") &&
			    field_is(g->element[j + 1], group))
				mine = true;
		if (!mine)
			continue;
		*consumers = *pending = -1;
		for (j = 0; j < g->elements; j += 2) {
			k = g->element[j];
			v = g->element[j + 1];
			if (v->type != REDIS_REPLY_INTEGER)
				continue;
			if (field_is(k, "consumers"))
				*consumers = v->integer;
			else if (field_is(k, "pending"))
				*pending = v->integer;
		}
		return *consumers < 0 || *pending < 0 ? -EBADMSG : 0;
	}
	return -ENOENT;
}
