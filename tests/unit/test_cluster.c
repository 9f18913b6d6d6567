/*
 * Unit tests of src/common/cluster.c: the QUEUE URL and its redaction, Redis key
 * names, the preset fingerprint, the entry path check; and of
 * src/queue/cluster_reply.c: the reading of stream entries and
 * XREADGROUP/XAUTOCLAIM/XPENDING/XINFO replies, built here by hand as
 * hiredis redisReply trees (entries come from the network, so the
 * malformed shapes matter as much as the good ones).
 */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_reply.h"
#include "config.h"

/* ---- redisReply builders (each tree freed with rfree) ---- */

static redisReply *
node(int type)
{
	redisReply *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->type = type;
	return r;
}

/* A bulk string of len bytes (may hold NULs). */
static redisReply *
strn(const char *s, size_t len)
{
	redisReply *r = node(REDIS_REPLY_STRING);

	r->str = malloc(len + 1);
	assert_non_null(r->str);
	memcpy(r->str, s, len);
	r->str[len] = '\0';
	r->len = len;
	return r;
}

static redisReply *
str(const char *s)
{
	return strn(s, strlen(s));
}

static redisReply *
status(const char *s)
{
	redisReply *r = str(s);

	r->type = REDIS_REPLY_STATUS;
	return r;
}

static redisReply *
num(long long n)
{
	redisReply *r = node(REDIS_REPLY_INTEGER);

	r->integer = n;
	return r;
}

static redisReply *
nil(void)
{
	return node(REDIS_REPLY_NIL);
}

/* An array of n replies. */
static redisReply *
arr(size_t n, ...)
{
	redisReply *r = node(REDIS_REPLY_ARRAY);
	va_list ap;
	size_t i;

	r->elements = n;
	if (n > 0) {
		r->element = calloc(n, sizeof(*r->element));
		assert_non_null(r->element);
	}
	va_start(ap, n);
	for (i = 0; i < n; i++)
		r->element[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r;
}

/* An array of the strings given, up to a NULL. */
static redisReply *
strs(const char *first, ...)
{
	redisReply *r = node(REDIS_REPLY_ARRAY);
	const char *s;
	va_list ap;
	size_t n = 0;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		n++;
	va_end(ap);
	r->elements = n;
	r->element = calloc(n + 1, sizeof(*r->element));
	assert_non_null(r->element);
	va_start(ap, first);
	n = 0;
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		r->element[n++] = str(s);
	va_end(ap);
	return r;
}

static void
rfree(redisReply *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->elements; i++)
		rfree(r->element[i]);
	free(r->element);
	free(r->str);
	free(r);
}

/* ---- cluster_parse_url ---- */

static struct cluster_url
parse_ok(const char *s)
{
	struct cluster_url u;
	char why[256] = "";
	int rc = cluster_parse_url(s, &u, why, sizeof(why));

	if (rc != 0)
		fail_msg("%s: rc %d (%s)", s, rc, why);
	return u;
}

/* Fails unless s is refused with a reason containing want. */
static void
parse_bad(const char *s, const char *want)
{
	struct cluster_url u;
	char why[256] = "";
	int rc = cluster_parse_url(s, &u, why, sizeof(why));

	if (rc != -EINVAL)
		fail_msg("%s: rc %d, want -EINVAL (host '%s' port %d)", s, rc,
		    u.host, u.port);
	if (strstr(why, want) == NULL)
		fail_msg("%s: reason '%s' lacks '%s'", s, why, want);
}

static void
test_url_host_port_db(void **state)
{
	struct cluster_url u;

	(void)state;
	u = parse_ok("redis://host");
	assert_string_equal(u.host, "host");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.port, CLUSTER_DEFAULT_PORT);
	assert_int_equal(u.db, 0);
	assert_string_equal(u.password, "");

	u = parse_ok("redis://redis.example.com:6380");
	assert_string_equal(u.host, "redis.example.com");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 0);

	u = parse_ok("redis://10.0.0.5/3");
	assert_string_equal(u.host, "10.0.0.5");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 3);

	u = parse_ok("redis://h:1/15");
	assert_string_equal(u.host, "h");
	assert_int_equal(u.port, 1);
	assert_int_equal(u.db, 15);

	u = parse_ok("redis://h:65535");
	assert_int_equal(u.port, 65535);

	/* an empty /db is db 0 */
	u = parse_ok("redis://h/");
	assert_string_equal(u.host, "h");
	assert_int_equal(u.db, 0);
}

static void
test_url_password(void **state)
{
	struct cluster_url u;

	(void)state;
	u = parse_ok("redis://:pw@host:1/2");
	assert_string_equal(u.password, "pw");
	assert_string_equal(u.host, "host");
	assert_int_equal(u.port, 1);
	assert_int_equal(u.db, 2);

	/* the user name is dropped; the password alone goes to AUTH */
	u = parse_ok("redis://user:s3cret@host");
	assert_string_equal(u.password, "s3cret");
	assert_string_equal(u.host, "host");
	assert_int_equal(u.port, 6379);

	/* ':' and '@' may be in a password */
	u = parse_ok("redis://:a:b@host");
	assert_string_equal(u.password, "a:b");
	assert_string_equal(u.host, "host");
	u = parse_ok("redis://:p@ss@host:7/1");
	assert_string_equal(u.password, "p@ss");
	assert_string_equal(u.host, "host");
	assert_int_equal(u.port, 7);
	assert_int_equal(u.db, 1);

	/* an empty password is no password */
	u = parse_ok("redis://:@host");
	assert_string_equal(u.password, "");
	assert_string_equal(u.host, "host");
}

static void
test_url_ipv6(void **state)
{
	struct cluster_url u;

	(void)state;
	u = parse_ok("redis://[::1]:6380");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6380);

	u = parse_ok("redis://:pw@[fe80::1]/4");
	assert_string_equal(u.host, "fe80::1");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 4);
	assert_string_equal(u.password, "pw");
}

static void
test_url_errors(void **state)
{
	char longpw[400];

	(void)state;
	/* a host is a name or an address: nothing to hide user info or a
	 * path in (found by fuzz_cluster) */
	parse_bad("redis://:@[://:@]:80/", "not a name or an address");
	parse_bad("redis://ho st:1", "not a name or an address");
	parse_bad("redis://h\xc3\xa9:1", "not a name or an address");
	parse_bad("rediss://host", "TLS");
	parse_bad("rediss://host", "not supported");
	parse_bad("http://host", "redis://");
	parse_bad("local2", "redis://");
	parse_bad("", "redis://");
	parse_bad("REDIS://host", "redis://");
	parse_bad("redis://host:0", "port");
	parse_bad("redis://host:65536", "port");
	parse_bad("redis://host:abc", "port");
	parse_bad("redis://host:", "port");
	parse_bad("redis://host:-1", "port");
	parse_bad("redis://host:99999999999999999999999", "port");
	parse_bad("redis://host/x", "database");
	parse_bad("redis://host/-1", "database");
	parse_bad("redis://host/1/2", "database");
	parse_bad("redis://", "no host");
	parse_bad("redis://:6379", "no host");
	parse_bad("redis:///0", "no host");
	parse_bad("redis://:pw", "no host");
	parse_bad("redis://:pw@", "no host");
	parse_bad("redis://:pw@:1", "no host");
	parse_bad("redis://[::1", "']'");
	parse_bad("redis://[]:1", "host");
	parse_bad("redis://[::1]x", "after the host");
	parse_bad("redis://host:1x", "port");
	parse_bad("redis://user@host", "without a password");

	memset(longpw, 'p', sizeof(longpw));
	memcpy(longpw, "redis://:", 9);
	strcpy(longpw + 9 + 300, "@host");
	parse_bad(longpw, "password longer than 255");
}

/* ---- cluster_redact_url ---- */

static void
test_redact(void **state)
{
	char out[600];

	(void)state;
	cluster_redact_url("redis://:hunter2@host:1/2", out, sizeof(out));
	assert_string_equal(out, "redis://:(set)@host:1/2");
	assert_null(strstr(out, "hunter2"));

	cluster_redact_url("redis://admin:topsecret@[::1]", out, sizeof(out));
	assert_string_equal(out, "redis://:(set)@[::1]:6379/0");
	assert_null(strstr(out, "topsecret"));
	assert_null(strstr(out, "admin"));

	/* no part of a password holding '@' shows */
	cluster_redact_url("redis://:abc@def@host", out, sizeof(out));
	assert_string_equal(out, "redis://:(set)@host:6379/0");
	assert_null(strstr(out, "abc"));
	assert_null(strstr(out, "def"));

	/* no password: the URL, normalised */
	cluster_redact_url("redis://host", out, sizeof(out));
	assert_string_equal(out, "redis://host:6379/0");
	assert_null(strstr(out, "(set)"));

	/* what does not parse is copied, without its user info */
	cluster_redact_url("local", out, sizeof(out));
	assert_string_equal(out, "local");
	cluster_redact_url("http://z/a@b", out, sizeof(out));
	assert_string_equal(out, "http://z/a@b");
	cluster_redact_url("http://x:y@z", out, sizeof(out));
	assert_string_equal(out, "http://(hidden)@z");
	cluster_redact_url("rediss://:p@ss@h:1/0", out, sizeof(out));
	assert_string_equal(out, "rediss://(hidden)@h:1/0");

	/* cut to fit, always terminated */
	memset(out, 'X', sizeof(out));
	cluster_redact_url("redis://:pw@host", out, 10);
	assert_int_equal(strlen(out), 9);
	assert_string_equal(out, "redis://:");
}

/* ---- cluster_key / cluster_seen_key ---- */

static void
test_keys(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(cluster_key(buf, sizeof(buf), "thumbwatch", "jobs"),
	    0);
	assert_string_equal(buf, "thumbwatch:jobs");
	assert_int_equal(cluster_key(buf, sizeof(buf), "tw", "dead"), 0);
	assert_string_equal(buf, "tw:dead");
	/* "ab:cd" needs 6 bytes */
	assert_int_equal(cluster_key(buf, 6, "ab", "cd"), 0);
	assert_string_equal(buf, "ab:cd");
	assert_int_equal(cluster_key(buf, 5, "ab", "cd"), -ENAMETOOLONG);
	assert_int_equal(cluster_key(buf, 1, "ab", "cd"), -ENAMETOOLONG);
}

static void
test_seen_key(void **state)
{
	char buf[256];
	const char *odd = "dir: x/\n\"q\" \xc3\xa9\xff:1:2.jpg";
	const char *want;
	int n;

	(void)state;
	n = cluster_seen_key(buf, sizeof(buf), "tw", "a/b.jpg",
	    1700000000123456789LL, 42);
	want = "tw:seen:1700000000123456789:42:a/b.jpg";
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));

	/* the path goes last and as it is, whatever its bytes */
	n = cluster_seen_key(buf, sizeof(buf), "tw", odd, 5, 0);
	assert_int_equal(n, (int)strlen("tw:seen:5:0:") + (int)strlen(odd));
	assert_memory_equal(buf, "tw:seen:5:0:", 12);
	assert_string_equal(buf + 12, odd);

	/* exact fit, then one byte short */
	want = "p:seen:1:2:x";
	n = cluster_seen_key(buf, strlen(want) + 1, "p", "x", 1, 2);
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(cluster_seen_key(buf, strlen(want), "p", "x", 1, 2),
	    -ENAMETOOLONG);
	assert_int_equal(cluster_seen_key(buf, 4, "thumbwatch", "x", 1, 2),
	    -ENAMETOOLONG);
}

/* ---- cluster_fingerprint ---- */

static void
assert_hex16(const char *fp)
{
	size_t i;

	assert_int_equal(strlen(fp), CLUSTER_FP_LEN);
	for (i = 0; i < CLUSTER_FP_LEN; i++)
		if (!((fp[i] >= '0' && fp[i] <= '9') ||
		    (fp[i] >= 'a' && fp[i] <= 'f')))
			fail_msg("fingerprint '%s': byte %zu not lowercase "
			    "hex", fp, i);
}

static void
test_fingerprint(void **state)
{
	struct config a, b;
	char fa[CLUSTER_FP_LEN + 1], fb[CLUSTER_FP_LEN + 1], f0[32];
	char err[512];

	(void)state;
	assert_int_equal(config_init(&a), 0);
	assert_int_equal(config_init(&b), 0);
	assert_true(a.npresets >= 1);

	memset(fa, 'Z', sizeof(fa));
	cluster_fingerprint(&a, fa);
	assert_hex16(fa);
	cluster_fingerprint(&b, fb);
	assert_string_equal(fa, fb);
	/* the same config twice: the same value */
	cluster_fingerprint(&a, fb);
	assert_string_equal(fa, fb);
	strcpy(f0, fa);

	/* a preset's width */
	b.presets[0].width++;
	cluster_fingerprint(&b, fb);
	assert_hex16(fb);
	assert_string_not_equal(f0, fb);
	b.presets[0].width--;
	cluster_fingerprint(&b, fb);
	assert_string_equal(f0, fb);

	/* its quality */
	b.presets[0].quality = b.presets[0].quality == 50 ? 51 : 50;
	cluster_fingerprint(&b, fb);
	assert_string_not_equal(f0, fb);
	b.presets[0].quality = a.presets[0].quality;

	/* its name */
	strcpy(b.presets[0].name, strcmp(a.presets[0].name, "other") ?
	    "other" : "other2");
	cluster_fingerprint(&b, fb);
	assert_string_not_equal(f0, fb);
	strcpy(b.presets[0].name, a.presets[0].name);
	cluster_fingerprint(&b, fb);
	assert_string_equal(f0, fb);

	/* the output names */
	if (config_set(&b, "OUTPUT_TEMPLATE", "{preset}/{dir}/{stem}.{ext}",
	    "test", err, sizeof(err)) != 0)
		fail_msg("config_set: %s", err);
	assert_string_not_equal(a.output_template, b.output_template);
	cluster_fingerprint(&b, fb);
	assert_string_not_equal(f0, fb);
	strcpy(b.output_template, a.output_template);
	cluster_fingerprint(&b, fb);
	assert_string_equal(f0, fb);

	/* another preset added */
	b.presets[1] = b.presets[0];
	strcpy(b.presets[1].name, "big");
	b.npresets = 2;
	cluster_fingerprint(&b, fb);
	assert_string_not_equal(f0, fb);

	config_free(&a);
	config_free(&b);
}

/* ---- cluster_consumer_name ---- */

static void
test_consumer_name(void **state)
{
	char buf[200], host[300];

	(void)state;
	cluster_consumer_name(buf, sizeof(buf), "node1", 1234);
	assert_string_equal(buf, "node1:1234");

	/* a very long host is cut so the pid still shows */
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	cluster_consumer_name(buf, sizeof(buf), host, 77);
	assert_true(strlen(buf) < sizeof(buf));
	assert_string_equal(buf + strlen(buf) - 3, ":77");
	assert_memory_equal(buf, host, strlen(buf) - 3);

	/* and a small buffer is never overrun */
	memset(buf, 'X', sizeof(buf));
	cluster_consumer_name(buf, 6, "node1", 1234);
	assert_string_equal(buf, "node1");
	assert_int_equal(buf[6], 'X');
}

/* ---- cluster_path_ok ---- */

static void
test_path_ok(void **state)
{
	static const char *good[] = {
		"a.jpg", "d/e/f.png", "with space.jpg", "new\nline.jpg",
		"caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.png", "..a", "a..",
		".hidden.jpg", "a/.b/c..d/...", "-", "a\\..\\b",
	};
	static const char *bad[] = {
		"", "/abs", "/", "../x", "..", ".", "./a", "a/../b", "a/./b",
		"a/..", "a/.", "a//b", "a/", "//a",
	};
	char *lng;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!cluster_path_ok(good[i]))
			fail_msg("refused '%s'", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cluster_path_ok(bad[i]))
			fail_msg("accepted '%s'", bad[i]);

	lng = malloc(PATH_MAX + 1);
	assert_non_null(lng);
	memset(lng, 'a', PATH_MAX);
	for (i = 100; i < PATH_MAX; i += 100)
		lng[i] = '/';
	lng[PATH_MAX] = '\0';
	assert_false(cluster_path_ok(lng));		/* PATH_MAX long */
	lng[PATH_MAX - 1] = '\0';
	assert_true(cluster_path_ok(lng));		/* one shorter */
	free(lng);
}

/* ---- cluster_read_entry ---- */

/* [id, [fields...]] */
static redisReply *
entry(const char *id, redisReply *fields)
{
	return arr(2, str(id), fields);
}

static void
test_entry_good(void **state)
{
	struct cluster_job job;
	char why[256] = "";
	redisReply *e;

	(void)state;
	e = entry("1700000000000-7", strs("path", "d/e f.jpg",
	    "size", "12345", "mtime_ns", "1700000000123456789",
	    "fp", "0123456789abcdef", "force", "1", "by", "node1:42",
	    NULL));
	memset(&job, 'X', sizeof(job));
	assert_int_equal(cluster_read_entry(e, &job, why, sizeof(why)), 0);
	assert_string_equal(job.id, "1700000000000-7");
	assert_string_equal(job.path, "d/e f.jpg");
	assert_int_equal(job.size, 12345);
	assert_true(job.mtime_ns == 1700000000123456789LL);
	assert_string_equal(job.fp, "0123456789abcdef");
	assert_true(job.force);
	assert_string_equal(job.by, "node1:42");
	rfree(e);

	/* fields in any order, extra fields ignored, only "1" forces;
	 * fp and by optional; the largest size */
	e = entry("5-0", strs("future", "whatever", "mtime_ns", "0",
	    "force", "yes", "size", "9223372036854775807", "path", "x.png",
	    "by", "", NULL));
	memset(&job, 'X', sizeof(job));
	assert_int_equal(cluster_read_entry(e, &job, why, sizeof(why)), 0);
	assert_string_equal(job.id, "5-0");
	assert_string_equal(job.path, "x.png");
	assert_true(job.size == INT64_MAX);
	assert_int_equal(job.mtime_ns, 0);
	assert_false(job.force);
	assert_string_equal(job.fp, "");
	assert_string_equal(job.by, "");
	rfree(e);

	/* status strings count as strings; force "0" */
	e = arr(2, status("6-1"), arr(8, str("path"), status("a/b"),
	    str("size"), str("1"), str("mtime_ns"), str("2"), str("force"),
	    str("0")));
	assert_int_equal(cluster_read_entry(e, &job, why, sizeof(why)), 0);
	assert_string_equal(job.id, "6-1");
	assert_string_equal(job.path, "a/b");
	assert_false(job.force);
	rfree(e);
}

/* Fails unless e is refused with -EBADMSG, job.id == id and the reason
 * holding want. */
static void
entry_bad(redisReply *e, const char *id, const char *want)
{
	struct cluster_job job;
	char why[256] = "";
	int rc = cluster_read_entry(e, &job, why, sizeof(why));

	if (rc != -EBADMSG)
		fail_msg("%s: rc %d, want -EBADMSG", want, rc);
	assert_string_equal(job.id, id);
	if (strstr(why, want) == NULL)
		fail_msg("reason '%s' lacks '%s'", why, want);
	rfree(e);
}

static void
test_entry_missing_fields(void **state)
{
	(void)state;
	entry_bad(entry("1-1", strs("size", "1", "mtime_ns", "2", NULL)),
	    "1-1", "missing path");
	entry_bad(entry("1-2", strs("path", "a", "mtime_ns", "2", NULL)),
	    "1-2", "missing size");
	entry_bad(entry("1-3", strs("path", "a", "size", "1", NULL)),
	    "1-3", "missing mtime_ns");
	entry_bad(entry("1-4", arr(0)), "1-4", "missing path");
	/* a field name must match exactly */
	entry_bad(entry("1-5", strs("path", "a", "size", "1", "mtime",
	    "2", NULL)), "1-5", "missing mtime_ns");
	entry_bad(entry("1-6", strs("PATH", "a", "size", "1", "mtime_ns",
	    "2", NULL)), "1-6", "missing path");
}

static void
test_entry_bad_fields(void **state)
{
	(void)state;
	/* odd number of field/value items */
	entry_bad(entry("2-1", strs("path", "a", "size", "1", "mtime_ns",
	    "2", "by", NULL)), "2-1", "name/value");
	/* fields not an array */
	entry_bad(entry("2-2", str("path")), "2-2", "name/value");

	/* paths that leave the input tree */
	entry_bad(entry("2-3", strs("path", "../etc/passwd", "size", "1",
	    "mtime_ns", "2", NULL)), "2-3", "path is not");
	entry_bad(entry("2-4", strs("path", "/etc/passwd", "size", "1",
	    "mtime_ns", "2", NULL)), "2-4", "path is not");
	entry_bad(entry("2-5", strs("path", "a/../../b", "size", "1",
	    "mtime_ns", "2", NULL)), "2-5", "path is not");
	entry_bad(entry("2-6", strs("path", "", "size", "1",
	    "mtime_ns", "2", NULL)), "2-6", "path is not");
	/* a NUL inside: "ok.jpg\0/../../x" must not pass as "ok.jpg" */
	entry_bad(entry("2-7", arr(6, str("path"),
	    strn("ok.jpg\0/../../x", 15), str("size"), str("1"),
	    str("mtime_ns"), str("2"))), "2-7", "path is not");
	/* the path not a string */
	entry_bad(entry("2-8", arr(6, str("path"), num(1), str("size"),
	    str("1"), str("mtime_ns"), str("2"))), "2-8", "path is not");

	/* sizes and times */
	entry_bad(entry("3-1", strs("path", "a", "size", "-1",
	    "mtime_ns", "2", NULL)), "3-1", "bad size");
	entry_bad(entry("3-2", strs("path", "a", "size", "12x",
	    "mtime_ns", "2", NULL)), "3-2", "bad size");
	entry_bad(entry("3-3", strs("path", "a", "size", "",
	    "mtime_ns", "2", NULL)), "3-3", "bad size");
	entry_bad(entry("3-4", strs("path", "a", "size",
	    "9223372036854775808", "mtime_ns", "2", NULL)), "3-4",
	    "bad size");
	entry_bad(entry("3-5", strs("path", "a", "size", "1",
	    "mtime_ns", "1.5", NULL)), "3-5", "bad mtime_ns");
	entry_bad(entry("3-6", strs("path", "a", "size", "1",
	    "mtime_ns", "-5", NULL)), "3-6", "bad mtime_ns");
	entry_bad(entry("3-7", arr(6, str("path"), str("a"), str("size"),
	    num(1), str("mtime_ns"), str("2"))), "3-7", "bad size");
	entry_bad(entry("3-8", strs("path", "a", "size", "1", "mtime_ns",
	    "99999999999999999999", NULL)), "3-8", "bad mtime_ns");
	/* an fp longer than a fingerprint */
	entry_bad(entry("3-9", strs("path", "a", "size", "1", "mtime_ns",
	    "2", "fp", "0123456789abcdef0", NULL)), "3-9", "bad fp");
}

static void
test_entry_not_an_entry(void **state)
{
	struct cluster_job job;
	char why[256] = "";
	char longid[CLUSTER_ID_MAX + 8];
	redisReply *e;

	(void)state;
	/* a deleted entry: nil, or [id, nil] */
	e = nil();
	assert_int_equal(cluster_read_entry(e, &job, why, sizeof(why)),
	    -ENOENT);
	rfree(e);
	assert_int_equal(cluster_read_entry(NULL, &job, why, sizeof(why)),
	    -ENOENT);
	e = arr(2, str("9-9"), nil());
	memset(&job, 'X', sizeof(job));
	assert_int_equal(cluster_read_entry(e, &job, why, sizeof(why)),
	    -ENOENT);
	assert_string_equal(job.id, "9-9");
	assert_string_equal(job.path, "");
	rfree(e);

	/* other shapes: no id to report */
	entry_bad(str("1-1"), "", "not a stream entry");
	entry_bad(num(3), "", "not a stream entry");
	entry_bad(arr(0), "", "not a stream entry");
	entry_bad(arr(1, str("1-1")), "", "not a stream entry");
	entry_bad(arr(3, str("1-1"), strs("path", "a", NULL), nil()), "",
	    "not a stream entry");
	entry_bad(arr(2, num(1), strs("path", "a", NULL)), "",
	    "not a stream entry");
	entry_bad(arr(2, strn("1-\0", 3), strs("path", "a", NULL)), "",
	    "not a stream entry");
	memset(longid, '1', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	entry_bad(arr(2, str(longid), strs("path", "a", NULL)), "",
	    "not a stream entry");

	/* why may be NULL */
	e = str("x");
	assert_int_equal(cluster_read_entry(e, &job, NULL, 0), -EBADMSG);
	rfree(e);
}

/* ---- XREADGROUP / XAUTOCLAIM shapes ---- */

static void
test_xreadgroup(void **state)
{
	char why[256];
	const redisReply *got;
	redisReply *r, *entries;

	(void)state;
	/* timed out */
	r = nil();
	got = cluster_xreadgroup_entries(r, why, sizeof(why));
	assert_non_null(got);
	assert_int_equal(got->type, REDIS_REPLY_ARRAY);
	assert_int_equal(got->elements, 0);
	rfree(r);
	got = cluster_xreadgroup_entries(NULL, why, sizeof(why));
	assert_non_null(got);
	assert_int_equal(got->elements, 0);

	/* [[stream, [entries]]] */
	entries = arr(2, entry("1-1", strs("path", "a", NULL)),
	    entry("1-2", strs("path", "b", NULL)));
	r = arr(1, arr(2, str("tw:jobs"), entries));
	got = cluster_xreadgroup_entries(r, why, sizeof(why));
	assert_ptr_equal(got, entries);
	assert_int_equal(got->elements, 2);
	rfree(r);

	/* an empty entries array is fine too */
	entries = arr(0);
	r = arr(1, arr(2, str("tw:jobs"), entries));
	assert_ptr_equal(cluster_xreadgroup_entries(r, why, sizeof(why)),
	    entries);
	rfree(r);

	/* other shapes */
	{
		redisReply *bad[] = {
			str("OK"),
			num(0),
			arr(0),
			arr(2, arr(2, str("s"), arr(0)),
			    arr(2, str("t"), arr(0))),
			arr(1, str("tw:jobs")),
			arr(1, arr(1, str("tw:jobs"))),
			arr(1, arr(3, str("tw:jobs"), arr(0), arr(0))),
			arr(1, arr(2, num(1), arr(0))),
			arr(1, arr(2, str("tw:jobs"), nil())),
			arr(1, arr(2, str("tw:jobs"), str("x"))),
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			why[0] = '\0';
			if (cluster_xreadgroup_entries(bad[i], why,
			    sizeof(why)) != NULL)
				fail_msg("shape %zu accepted", i);
			assert_non_null(strstr(why, "XREADGROUP"));
			rfree(bad[i]);
		}
	}
}

static void
test_xautoclaim(void **state)
{
	char why[256], next[CLUSTER_ID_MAX];
	const redisReply *got;
	redisReply *r, *entries;

	(void)state;
	/* Redis 7: [next, [entries], [deleted ids]] */
	entries = arr(1, entry("1-1", strs("path", "a", NULL)));
	r = arr(3, str("1700000000000-5"), entries, strs("0-1", NULL));
	strcpy(next, "junk");
	got = cluster_xautoclaim_entries(r, next, sizeof(next), why,
	    sizeof(why));
	assert_ptr_equal(got, entries);
	assert_string_equal(next, "1700000000000-5");
	rfree(r);

	/* Redis 6.2: [next, [entries]]; next may be NULL */
	entries = arr(0);
	r = arr(2, str("0-0"), entries);
	strcpy(next, "junk");
	got = cluster_xautoclaim_entries(r, next, sizeof(next), why,
	    sizeof(why));
	assert_ptr_equal(got, entries);
	assert_int_equal(got->elements, 0);
	assert_string_equal(next, "0-0");
	assert_ptr_equal(cluster_xautoclaim_entries(r, NULL, 0, why,
	    sizeof(why)), entries);
	rfree(r);

	/* a cursor that does not fit restarts from 0-0 */
	entries = arr(0);
	r = arr(2, str("123456789012345678901234567890123456789012345-1"),
	    entries);
	assert_ptr_equal(cluster_xautoclaim_entries(r, next, 8, why,
	    sizeof(why)), entries);
	assert_string_equal(next, "0-0");
	rfree(r);

	{
		redisReply *bad[] = {
			nil(),
			str("0-0"),
			num(1),
			arr(0),
			arr(1, str("0-0")),
			arr(2, num(0), arr(0)),
			arr(2, str("0-0"), nil()),
			arr(2, str("0-0"), str("x")),
			arr(2, arr(0), arr(0)),
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			why[0] = '\0';
			if (cluster_xautoclaim_entries(bad[i], next,
			    sizeof(next), why, sizeof(why)) != NULL)
				fail_msg("shape %zu accepted", i);
			assert_non_null(strstr(why, "XAUTOCLAIM"));
			rfree(bad[i]);
		}
		assert_null(cluster_xautoclaim_entries(NULL, next,
		    sizeof(next), why, sizeof(why)));
	}
}

/* ---- XPENDING ---- */

static redisReply *
prow(const char *id, const char *consumer, long long idle, long long n)
{
	return arr(4, str(id), str(consumer), num(idle), num(n));
}

static void
test_pending(void **state)
{
	struct cluster_pending rows[3];
	char why[256];
	redisReply *r;

	(void)state;
	r = arr(3, prow("1-1", "a:1", 60000, 1), prow("1-2", "b:2", 5, 7),
	    prow("1-3", "c:3", 0, 2));
	memset(rows, 'X', sizeof(rows));
	assert_int_equal(cluster_read_pending(r, rows, 3, why, sizeof(why)),
	    3);
	assert_string_equal(rows[0].id, "1-1");
	assert_string_equal(rows[0].consumer, "a:1");
	assert_int_equal(rows[0].idle_ms, 60000);
	assert_int_equal(rows[0].deliveries, 1);
	assert_string_equal(rows[1].id, "1-2");
	assert_string_equal(rows[1].consumer, "b:2");
	assert_int_equal(rows[1].idle_ms, 5);
	assert_int_equal(rows[1].deliveries, 7);
	assert_string_equal(rows[2].id, "1-3");
	assert_int_equal(rows[2].deliveries, 2);

	/* max respected: row 2 untouched */
	memset(rows, 'X', sizeof(rows));
	assert_int_equal(cluster_read_pending(r, rows, 2, why, sizeof(why)),
	    2);
	assert_string_equal(rows[1].id, "1-2");
	assert_int_equal(rows[2].id[0], 'X');
	assert_int_equal(cluster_read_pending(r, rows, 0, why, sizeof(why)),
	    0);
	rfree(r);

	/* nothing pending */
	r = arr(0);
	assert_int_equal(cluster_read_pending(r, rows, 3, why, sizeof(why)),
	    0);
	rfree(r);

	/* not an array */
	r = nil();
	why[0] = '\0';
	assert_int_equal(cluster_read_pending(r, rows, 3, why, sizeof(why)),
	    -EBADMSG);
	assert_non_null(strstr(why, "XPENDING"));
	rfree(r);
	assert_int_equal(cluster_read_pending(NULL, rows, 3, why,
	    sizeof(why)), -EBADMSG);

	/* a bad row among good ones */
	{
		redisReply *bad[] = {
			arr(3, str("1-2"), str("b"), num(1)),
			arr(4, str("1-2"), str("b"), str("5"), num(1)),
			arr(4, str("1-2"), str("b"), num(5), nil()),
			arr(4, num(1), str("b"), num(5), num(1)),
			arr(4, str("1-2"), nil(), num(5), num(1)),
			str("1-2"),
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			r = arr(2, prow("1-1", "a", 1, 1), bad[i]);
			why[0] = '\0';
			if (cluster_read_pending(r, rows, 3, why,
			    sizeof(why)) != -EBADMSG)
				fail_msg("bad row %zu accepted", i);
			assert_non_null(strstr(why, "row 1"));
			rfree(r);
		}
	}
}

/* ---- XINFO GROUPS ---- */

static redisReply *
group(const char *name, long long consumers, long long pending)
{
	/* Redis 7 adds entries-read and lag, which may be nil */
	return arr(12, str("name"), str(name), str("consumers"),
	    num(consumers), str("pending"), num(pending),
	    str("last-delivered-id"), str("1700000000000-0"),
	    str("entries-read"), nil(), str("lag"), num(0));
}

static void
test_group_info(void **state)
{
	int64_t consumers, pending;
	redisReply *r;

	(void)state;
	r = arr(2, group("other", 9, 99), group("thumbwatch", 3, 4));
	consumers = pending = 12345;
	assert_int_equal(cluster_read_group_info(r, "thumbwatch",
	    &consumers, &pending), 0);
	assert_int_equal(consumers, 3);
	assert_int_equal(pending, 4);
	assert_int_equal(cluster_read_group_info(r, "other", &consumers,
	    &pending), 0);
	assert_int_equal(consumers, 9);
	assert_int_equal(pending, 99);

	/* absent, and not confused by a prefix or a value */
	consumers = pending = 12345;
	assert_int_equal(cluster_read_group_info(r, "thumb", &consumers,
	    &pending), -ENOENT);
	assert_int_equal(cluster_read_group_info(r, "1700000000000-0",
	    &consumers, &pending), -ENOENT);
	assert_int_equal(consumers, 12345);
	rfree(r);

	r = arr(0);
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -ENOENT);
	rfree(r);

	/* Redis 6: no entries-read/lag, fields in another order */
	r = arr(1, arr(8, str("pending"), num(0), str("name"), str("tw"),
	    str("last-delivered-id"), str("0-0"), str("consumers"), num(1)));
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), 0);
	assert_int_equal(consumers, 1);
	assert_int_equal(pending, 0);
	rfree(r);

	/* malformed */
	r = arr(1, arr(3, str("name"), str("tw"), str("consumers")));
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -EBADMSG);
	rfree(r);
	r = arr(2, group("a", 1, 1), str("tw"));
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -EBADMSG);
	rfree(r);
	r = nil();
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -EBADMSG);
	rfree(r);
	assert_int_equal(cluster_read_group_info(NULL, "tw", &consumers,
	    &pending), -EBADMSG);
	/* the group, but without its counts */
	r = arr(1, arr(4, str("name"), str("tw"), str("consumers"),
	    num(2)));
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -EBADMSG);
	rfree(r);
	r = arr(1, arr(6, str("name"), str("tw"), str("consumers"),
	    str("2"), str("pending"), num(0)));
	assert_int_equal(cluster_read_group_info(r, "tw", &consumers,
	    &pending), -EBADMSG);
	rfree(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_host_port_db),
		cmocka_unit_test(test_url_password),
		cmocka_unit_test(test_url_ipv6),
		cmocka_unit_test(test_url_errors),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_seen_key),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_consumer_name),
		cmocka_unit_test(test_path_ok),
		cmocka_unit_test(test_entry_good),
		cmocka_unit_test(test_entry_missing_fields),
		cmocka_unit_test(test_entry_bad_fields),
		cmocka_unit_test(test_entry_not_an_entry),
		cmocka_unit_test(test_xreadgroup),
		cmocka_unit_test(test_xautoclaim),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_group_info),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
