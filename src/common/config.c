/*
 * config: thumbwatch's settings as one table, and the loaders that fill it.
 *
 * Owns the key table (name, type, default, bounds, help, field), the
 * parsing and validation of every value, the INI file (inih, fed by a
 * line-counting reader), the .env file, the environment, the cross-key
 * checks, presets and their fingerprints, check-config output and the --help
 * text.  Defaults, config_set, config_dump, config_usage_keys and the
 * config_key_* accessors all read the same table, so a key cannot be parsed
 * one way and documented another.  Presets have a small table of their own,
 * read the same way.
 *
 * Pure: neither libuv nor libvips, and no global mutable state (both tables
 * are const).  A failed load leaves cfg partly updated: callers load into a
 * fresh config and discard it on error (start-up exits, SIGHUP keeps the
 * running one).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "cluster.h"
#include "httputil.h"
#include "pathmap.h"

#define PREFIX		"THUMBWATCH_"
#define PREFIX_LEN	(sizeof(PREFIX) - 1)
/* Config files are a few kilobytes; a bigger one is a wrong path. */
#define FILE_MAX	(1024 * 1024)
/* Longest value worth quoting back in a message. */
#define QUOTE_MAX	120

enum ktype {
	K_PATH,		/* non-empty string */
	K_INT,		/* int in [min, max] */
	K_INT64,	/* int64_t in [min, max] */
	K_SIZE,		/* int64_t bytes, optional K/M/G suffix */
	K_BOOL,
	K_ENUM,		/* int-sized enum, value looked up in names */
	K_WORD,		/* string, canonical spelling looked up in names */
	K_EXTLIST,	/* "jpg,png": lower case, no dots */
	K_ROUTES,	/* "thumbnails,metrics": HTTP routes, from http_routes */
	K_TEMPLATE,	/* output template, checked by pathmap */
	K_COLOUR,	/* "r,g,b" */
	K_LISTEN,	/* "" (off), "host:port" or "[v6]:port" */
	K_SECRET,	/* any string; shown as "(set)" by check-config */
	K_QUEUE,	/* "local" or a redis:// URL (cluster.h) */
	K_IDENT,	/* letters, digits and _ . : - */
};

struct name_value {
	const char *name;
	int value;
};

struct keydef {
	const char *name;
	enum ktype type;
	size_t off, size;		/* field in struct config or preset */
	const char *def;		/* NULL: no default (preset size) */
	long long min, max;		/* K_INT, K_INT64 */
	const struct name_value *names;	/* K_ENUM, K_WORD; NULL-terminated */
	const char *help;
	unsigned flags;			/* KEY_RESTART */
};

/* The loop, the pool, the watcher, the log, the sockets and the queue are
 * built around these: a reload keeps the running value (redis's
 * IMMUTABLE_CONFIG). */
#define KEY_RESTART	0x1

/* K_ENUM values are stored with memcpy of an int: the enums must be one. */
_Static_assert(sizeof(enum fit) == sizeof(int), "enum fit is not an int");
_Static_assert(sizeof(enum out_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum source_action) == sizeof(int), "enum size");
_Static_assert(sizeof(enum watch_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum role) == sizeof(int), "enum size");

/* The first name with a value is its canonical spelling (dump, messages). */
static const struct name_value log_levels[] = {
	{ "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warn", LOG_WARN },
	{ "error", LOG_ERROR }, { NULL, 0 }
};
static const struct name_value source_actions[] = {
	{ "keep", ACTION_KEEP }, { "move", ACTION_MOVE },
	{ "delete", ACTION_DELETE }, { NULL, 0 }
};
static const struct name_value backends[] = {
	{ "auto", BACKEND_AUTO }, { "inotify", BACKEND_INOTIFY },
	{ "fsevent", BACKEND_FSEVENT }, { "poll", BACKEND_POLL }, { NULL, 0 }
};
static const struct name_value roles[] = {
	{ "all", ROLE_ALL }, { "watcher", ROLE_WATCHER },
	{ "worker", ROLE_WORKER }, { NULL, 0 }
};
static const struct name_value fits[] = {
	{ "inside", FIT_INSIDE }, { "cover", FIT_COVER }, { "crop", FIT_COVER },
	{ "fill", FIT_FILL }, { NULL, 0 }
};
static const struct name_value profiles[] = {
	{ "srgb", PROFILE_SRGB }, { "keep", PROFILE_KEEP }, { NULL, 0 }
};
static const struct name_value formats[] = {
	{ "jpeg", FORMAT_JPEG }, { "jpg", FORMAT_JPEG },
	{ "webp", FORMAT_WEBP }, { "png", FORMAT_PNG }, { "avif", FORMAT_AVIF },
	{ NULL, 0 }
};
/* libvips' VipsInteresting and VipsCompassDirection names, one space. */
static const struct name_value gravities[] = {
	{ "centre", 0 }, { "center", 0 }, { "north", 1 }, { "south", 2 },
	{ "east", 3 }, { "west", 4 }, { "north-east", 5 }, { "south-east", 6 },
	{ "south-west", 7 }, { "north-west", 8 }, { "attention", 9 },
	{ "entropy", 10 }, { NULL, 0 }
};

#define FIELD(type, f)	offsetof(struct type, f), sizeof(((struct type *)0)->f)
#define C(f)		FIELD(config, f)
#define P(f)		FIELD(preset, f)

static const struct keydef keys[] = {
	{ "INPUT_DIR", K_PATH, C(input_dir), "data/input", 0, 0, NULL,
	  "folder watched for new images (subfolders included)",
	  KEY_RESTART },
	{ "OUTPUT_DIR", K_PATH, C(output_dir), "data/output", 0, 0, NULL,
	  "folder the thumbnails go to, mirroring the input tree",
	  KEY_RESTART },
	{ "LOG_FILE", K_PATH, C(log_file), "logs/thumbwatch.log", 0, 0, NULL,
	  "JSON Lines log; reopened on SIGHUP for logrotate",
	  KEY_RESTART },
	{ "LOG_LEVEL", K_ENUM, C(log_level), "info", 0, 0, log_levels,
	  "least severe level logged: debug, info, warn or error", 0 },
	{ "RUNTIME_DIR", K_PATH, C(runtime_dir), "run", 0, 0, NULL,
	  "folder of the control socket (thumbwatch.sock, owner only) and "
	  "the default pidfile",
	  KEY_RESTART },
	{ "WORKERS", K_INT, C(workers), "0", 0, 256, NULL,
	  "worker processes; 0 = one per CPU",
	  KEY_RESTART },
	{ "BATCH_SIZE", K_INT, C(batch_size), "4", 1, 1024, NULL,
	  "most images handed to one worker at a time", 0 },
	{ "BATCH_WAIT_MS", K_INT, C(batch_wait_ms), "50", 0, 60000, NULL,
	  "how long a part-filled batch waits for more files (ms)", 0 },
	{ "SETTLE_MS", K_INT, C(settle_ms), "500", 10, 600000, NULL,
	  "fsevent backend: a file is complete once unchanged this long (ms)",
	  KEY_RESTART },
	{ "MAX_FILE_SIZE", K_SIZE, C(max_file_size), "512M", 0, INT64_MAX, NULL,
	  "larger source files fail undecoded (bytes, K/M/G; 0 = no limit)",
	  0 },
	{ "MAX_PIXELS", K_INT64, C(max_pixels), "268402689", 1, 1LL << 40,
	  NULL, "images whose first page has more width x height fail undecoded",
	  0 },
	{ "IMAGE_TIMEOUT_MS", K_INT, C(image_timeout_ms), "60000", 100, 3600000,
	  NULL, "a worker busy longer on one image is replaced (ms)",
	  KEY_RESTART },
	{ "DRAIN_TIMEOUT_MS", K_INT, C(drain_timeout_ms), "30000", 0, 3600000,
	  NULL, "on SIGTERM/SIGINT, time left to in-flight work (ms)", 0 },
	{ "STATS_INTERVAL_S", K_INT, C(stats_interval_s), "60", 0, 86400, NULL,
	  "seconds between stats log lines; 0 = none", 0 },
	{ "RESCAN_INTERVAL_S", K_INT, C(rescan_interval_s), "0", 0, 604800,
	  NULL, "seconds between full rescans (network shares); 0 = none", 0 },
	{ "RETRY_INTERVAL_S", K_INT, C(retry_interval_s), "30", 1, 86400,
	  NULL, "seconds before retrying what failed for outside reasons "
	  "(disk full, folders inotify could not watch)", 0 },
	{ "WORKER_MAX_IMAGES", K_INT, C(worker_max_images), "500", 0, 10000000,
	  NULL, "images a worker makes before it is replaced (bounds memory "
	  "growth); 0 = never", 0 },
	{ "WORKER_MEMORY_MB", K_INT, C(worker_memory_mb), "2048", 0, 1048576,
	  NULL, "address-space limit of a worker in MiB (an image that needs "
	  "more fails); 0 = none", 0 },
	{ "EXTENSIONS", K_EXTLIST, C(extensions),
	  "jpg,jpeg,png,webp,tif,tiff,gif,heic,heif,avif,jxl", 0, 0, NULL,
	  "source file extensions processed, comma-separated, any case",
	  KEY_RESTART },
	{ "OUTPUT_TEMPLATE", K_TEMPLATE, C(output_template),
	  "{dir}/{stem}_{preset}.{ext}", 0, 0, NULL,
	  "path below OUTPUT_DIR: {dir} {stem} {preset} {ext} {srcext}", 0 },
	{ "SOURCE_ACTION", K_ENUM, C(source_action), "keep", 0, 0,
	  source_actions, "after success: keep, move (to DONE_DIR) or delete",
	  0 },
	{ "DONE_DIR", K_PATH, C(done_dir), "data/done", 0, 0, NULL,
	  "where SOURCE_ACTION=move puts processed sources", 0 },
	{ "MIRROR_DELETES", K_BOOL, C(mirror_deletes), "true", 0, 0, NULL,
	  "deleting a source deletes its thumbnails", 0 },
	{ "MIRROR_MOVES", K_BOOL, C(mirror_moves), "true", 0, 0, NULL,
	  "renaming a source in the input tree renames its thumbnails", 0 },
	{ "BACKGROUND", K_COLOUR, C(background), "255,255,255", 0, 0, NULL,
	  "colour under transparent pixels in JPEG output (r,g,b or #rrggbb)",
	  0 },
	{ "WATCH_BACKEND", K_ENUM, C(watch_backend), "auto", 0, 0, backends,
	  "auto (inotify, or poll on network filesystems), inotify, fsevent "
	  "(portable, uses SETTLE_MS) or poll (rescan every "
	  "RESCAN_INTERVAL_S)",
	  KEY_RESTART },
	{ "HTTP_LISTEN", K_LISTEN, C(http_listen), "", 0, 0, NULL,
	  "address:port of the HTTP upload API and page, e.g. "
	  "127.0.0.1:8080; empty = off",
	  KEY_RESTART },
	{ "HTTP_TOKEN", K_SECRET, C(http_token), "", 0, 0, NULL,
	  "bearer token every HTTP route but /healthz and the page "
	  "requires (see HTTP_PUBLIC); empty = none", 0 },
	{ "HTTP_PUBLIC", K_ROUTES, C(http_public), "", 0, 0, NULL,
	  "with HTTP_TOKEN: routes still open without it, comma-separated: "
	  "thumbnails, events, jobs, status, metrics; empty = none", 0 },
	{ "HTTP_MAX_UPLOAD", K_SIZE, C(http_max_upload), "64M", 1, INT64_MAX,
	  NULL, "largest HTTP upload body (bytes, K/M/G); larger gets 413", 0 },
	{ "HTTP_MAX_UPLOADS", K_INT, C(http_max_uploads), "16", 1, 10000, NULL,
	  "concurrent HTTP uploads; more get 429", 0 },
	{ "HTTP_MAX_CONNECTIONS", K_INT, C(http_max_connections), "0", 0,
	  1000000, NULL, "open HTTP connections at once; 0 = min(1024, "
	  "half of what RLIMIT_NOFILE leaves after the daemon's own reserve), "
	  "which also caps a larger value",
	  KEY_RESTART },
	{ "HTTP_MAX_PER_CLIENT", K_INT, C(http_max_per_client), "32", 1,
	  1000000, NULL, "open HTTP connections from one client address",
	  KEY_RESTART },
	{ "HTTP_REQUEST_TIMEOUT_S", K_INT, C(http_request_timeout_s), "30", 1,
	  3600, NULL, "a request must arrive whole within this (s); an idle "
	  "connection is closed after it; an /events stream that stops "
	  "draining is dropped after it",
	  KEY_RESTART },
	{ "HTTP_MIN_UPLOAD_RATE", K_SIZE, C(http_min_upload_rate), "16K", 1,
	  INT64_MAX, NULL, "each byte of an upload body adds 1/rate seconds "
	  "to HTTP_REQUEST_TIMEOUT_S (bytes per second, K/M/G)", 0 },
	{ "QUEUE", K_QUEUE, C(queue), "local", 0, 0, NULL,
	  "local, or redis://[:password@]host[:port][/db] to share the "
	  "work of several machines through a Redis stream",
	  KEY_RESTART },
	{ "ROLE", K_ENUM, C(role), "all", 0, 0, roles,
	  "with a Redis QUEUE: all (watch and make thumbnails), watcher "
	  "(only queue files) or worker (only make queued files)",
	  KEY_RESTART },
	{ "REDIS_PASSWORD", K_SECRET, C(redis_password), "", 0, 0, NULL,
	  "password sent with AUTH (overrides one in the QUEUE URL)",
	  KEY_RESTART },
	{ "REDIS_PREFIX", K_IDENT, C(redis_prefix), "thumbwatch", 0, 0, NULL,
	  "Redis key names: PREFIX:jobs (stream), PREFIX:dead, PREFIX:seen:*; "
	  "one per shared input tree",
	  KEY_RESTART },
	{ "REDIS_VISIBILITY_S", K_INT, C(redis_visibility_s), "60", 1, 86400,
	  NULL, "a job silent this long (its node died) is taken over by "
	  "another worker node (s)", 0 },
	{ "REDIS_MAX_DELIVERIES", K_INT, C(redis_max_deliveries), "3", 1,
	  1000, NULL, "a job taken over this many times goes to PREFIX:dead "
	  "and ends as failed", 0 },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const struct keydef preset_keys[] = {
	{ "width", K_INT, P(width), NULL, 1, 16384, NULL, NULL, 0 },
	{ "height", K_INT, P(height), NULL, 1, 16384, NULL, NULL, 0 },
	{ "fit", K_ENUM, P(fit), "inside", 0, 0, fits, NULL, 0 },
	{ "gravity", K_WORD, P(gravity), "centre", 0, 0, gravities, NULL, 0 },
	{ "format", K_ENUM, P(format), "jpeg", 0, 0, formats, NULL, 0 },
	{ "quality", K_INT, P(quality), "85", 1, 100, NULL, NULL, 0 },
	{ "progressive", K_BOOL, P(progressive), "false", 0, 0, NULL, NULL, 0 },
	{ "strip", K_BOOL, P(strip), "true", 0, 0, NULL, NULL, 0 },
	{ "profile", K_ENUM, P(profile), "srgb", 0, 0, profiles, NULL, 0 },
};

#define NPRESET_KEYS	(sizeof(preset_keys) / sizeof(preset_keys[0]))

__attribute__((format(printf, 3, 4)))
static int fail(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

static bool has_prefix(const char *s, size_t len)
{
	return len >= PREFIX_LEN && strncasecmp(s, PREFIX, PREFIX_LEN) == 0;
}

static const char *enum_name(const struct name_value *names, int value)
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
		return fail(why, whylen, "is out of range (%lld..%lld)", min,
		    max);
	*out = n;
	return 0;
bad:
	return fail(why, whylen, "is not a whole number (%lld..%lld)", min,
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
	return fail(why, whylen,
	    "is not a size (bytes, or a number with K, M or G; 0 = no limit)");
big:
	return fail(why, whylen, "is too large");
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
	return fail(why, whylen,
	    "is not a boolean (true/false, yes/no, on/off, 1/0)");
}

/* Items are trimmed, lower-cased and lose leading dots, so ".JPG, png"
 * means what its writer meant; anything else odd is refused rather than
 * guessed at, because a wrong list silently ignores files. */
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
			return fail(why, whylen, "has '%.*s', which is not a "
			    "route that may be public (thumbnails, "
			    "events, jobs, status, metrics)",
			    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), item);
		len = strlen(http_routes[i]);
		if (used + (used > 0) + len >= cap)
			return fail(why, whylen, "is too long");
		if (used > 0)
			out[used++] = ',';
		memcpy(out + used, http_routes[i], len + 1);
		used += len;
		if (comma == NULL)
			return 0;
		item = comma + 1;
	}
}

static int parse_extlist(const char *v, char *out, size_t cap, char *why,
    size_t whylen)
{
	const char *item = v, *comma;
	size_t used = 0, len, i;

	if (*v == '\0')
		return fail(why, whylen,
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
			return fail(why, whylen, "has an empty item");
		for (i = 0; i < len; i++)
			if ((unsigned char)item[i] > 127 ||
			    !isalnum((unsigned char)item[i]))
				break;
		if (i < len)
			return fail(why, whylen, "has '%.*s', which is not an "
			    "extension (letters and digits only)",
			    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), item);
		if (used + (used > 0) + len >= cap)
			return fail(why, whylen, "is too long (at most %zu "
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
	return fail(why, whylen,
	    "is not a colour (r,g,b each 0..255, or #rrggbb)");
}

static int store_string(const struct keydef *k, char *field, const char *v,
    char *why, size_t whylen)
{
	if (strlen(v) >= k->size)
		return fail(why, whylen, "is too long (at most %zu characters)",
		    k->size - 1);
	memcpy(field, v, strlen(v) + 1);
	return 0;
}

/* Parses v (already trimmed) as k and stores it in base (a struct config
 * or struct preset) only when it is valid; otherwise says why. */
static int parse_value(const struct keydef *k, const char *v, void *base,
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
			return fail(why, whylen, "is empty");
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
			return fail(why, whylen, "is not a valid output "
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
			return fail(why, whylen, "is not an address:port "
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
				return fail(why, whylen, "%s", w);
		}
		return store_string(k, field, v, why, whylen);
	case K_IDENT:
		if (*v == '\0' || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != strlen(v))
			return fail(why, whylen, "is not a name (letters, "
			    "digits, _ . : -)");
		return store_string(k, field, v, why, whylen);
	}
	return fail(why, whylen, "has an unknown type");
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

static void format_value(const struct keydef *k, const void *base, char *out,
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

static const struct keydef *find_def(const struct keydef *defs, size_t n,
    const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

/* Shared by every key and preset key: trim, parse, say what is wrong in the
 * "<source>: <KEY>: '<value>' <what is wrong>" shape. */
static int set_def(const struct keydef *k, void *base, const char *label,
    const char *value, const char *source, char *err, size_t errlen)
{
	char v[PATH_MAX], why[512];
	size_t len = strlen(value);
	int rc;

	trim(&value, &len);
	if (len >= sizeof(v))
		return fail(err, errlen, "%s: %s: '%.*s...' is too long",
		    source, label, QUOTE_MAX, value);
	memcpy(v, value, len);
	v[len] = '\0';
	rc = parse_value(k, v, base, why, sizeof(why));
	if (rc != 0 && k->type == K_QUEUE) {
		/* Never echo a password, even in a URL that did not parse. */
		char shown[PATH_MAX];

		cluster_redact_url(v, shown, sizeof(shown));
		return fail(err, errlen, "%s: %s: '%.*s' %s", source, label,
		    QUOTE_MAX, shown, why);
	}
	if (rc != 0)
		return fail(err, errlen, "%s: %s: '%.*s%s' %s", source, label,
		    QUOTE_MAX, v, len > QUOTE_MAX ? "..." : "", why);
	return 0;
}

/* The key as the user should look for it: upper case, without prefix. */
static void key_label(const char *key, size_t len, char *out, size_t cap)
{
	size_t i;

	if (has_prefix(key, len)) {
		key += PREFIX_LEN;
		len -= PREFIX_LEN;
	}
	if (len >= cap)
		len = cap - 1;
	for (i = 0; i < len; i++)
		out[i] = (char)toupper((unsigned char)key[i]);
	out[len] = '\0';
}

static int unknown_key(const char *source, const char *key, size_t len,
    char *err, size_t errlen)
{
	char name[QUOTE_MAX + 1];

	key_label(key, len, name, sizeof(name));
	return fail(err, errlen, "%s: %s: unknown key", source, name);
}

static void preset_defaults(struct preset *p, const char *name,
    const char *source)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->source, sizeof(p->source), "%s", source);
	for (i = 0; i < NPRESET_KEYS; i++)
		if (preset_keys[i].def != NULL)
			parse_value(&preset_keys[i], preset_keys[i].def, p,
			    NULL, 0);
}

int config_init(struct config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->sources = calloc(NKEYS, sizeof(*cfg->sources));
	if (cfg->sources == NULL)
		return -ENOMEM;
	for (i = 0; i < NKEYS; i++) {
		/* A default the parser refuses is a bug in the table: fail
		 * loudly here rather than run with a zeroed field. */
		if (parse_value(&keys[i], keys[i].def, cfg, NULL, 0) != 0) {
			config_free(cfg);
			return -EINVAL;
		}
		snprintf(cfg->sources[i], CONFIG_SOURCE_MAX, "default");
	}
	preset_defaults(&cfg->presets[0], "thumb", "default");
	cfg->presets[0].width = 300;
	cfg->presets[0].height = 300;
	cfg->npresets = 1;
	cfg->presets_from_file = false;
	return 0;
}

static bool key_is_string(const struct keydef *k)
{
	return k->type != K_INT && k->type != K_INT64 && k->type != K_SIZE &&
	    k->type != K_BOOL && k->type != K_ENUM;
}

void config_keep_restart_keys(const struct config *running,
    struct config *nc, char *changed, size_t len)
{
	const char *a, *b;
	size_t i, used = 0;
	bool same;

	if (len > 0)
		changed[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		if (!(keys[i].flags & KEY_RESTART))
			continue;
		a = (const char *)running + keys[i].off;
		b = (const char *)nc + keys[i].off;
		same = key_is_string(&keys[i]) ? strcmp(a, b) == 0 :
		    memcmp(a, b, keys[i].size) == 0;
		if (same)
			continue;
		memcpy((char *)nc + keys[i].off, a, keys[i].size);
		memcpy(nc->sources[i], running->sources[i], CONFIG_SOURCE_MAX);
		if (used < len)
			used += (size_t)snprintf(changed + used, len - used,
			    "%s%s", used ? ", " : "", keys[i].name);
	}
}

bool config_key_restart(size_t i)
{
	return i < NKEYS && (keys[i].flags & KEY_RESTART);
}

void config_free(struct config *cfg)
{
	free(cfg->sources);
	cfg->sources = NULL;
}

int config_set(struct config *cfg, const char *key, const char *value,
    const char *source, char *err, size_t errlen)
{
	const struct keydef *k;
	size_t len = strlen(key);
	int rc;

	k = has_prefix(key, len) ? find_def(keys, NKEYS, key + PREFIX_LEN) :
	    find_def(keys, NKEYS, key);
	if (k == NULL)
		return unknown_key(source, key, len, err, errlen);
	rc = set_def(k, cfg, k->name, value, source, err, errlen);
	if (rc == 0)
		snprintf(cfg->sources[k - keys], CONFIG_SOURCE_MAX, "%s",
		    source);
	return rc;
}

/* ---- text in memory, line by line ---- */

struct lines {
	const char *pos, *end;
	int lineno;
};

/* Next line without its end of line and surrounding blanks; a UTF-8 BOM on
 * the first line is dropped (editors on Windows add one). */
static bool next_line(struct lines *l, const char **line, size_t *len)
{
	const char *nl;

	if (l->pos >= l->end)
		return false;
	nl = memchr(l->pos, '\n', (size_t)(l->end - l->pos));
	*line = l->pos;
	*len = (size_t)((nl != NULL ? nl : l->end) - l->pos);
	l->pos = nl != NULL ? nl + 1 : l->end;
	l->lineno++;
	if (l->lineno == 1 && *len >= 3 &&
	    memcmp(*line, "\xef\xbb\xbf", 3) == 0) {
		*line += 3;
		*len -= 3;
	}
	trim(line, len);
	return true;
}

/* Reads a whole config file; they are small, and one in memory is parsed
 * by the same code as config_load_*_string. */
static int read_file(const char *path, char **text, size_t *len, char *err,
    size_t errlen)
{
	FILE *fp;
	char *buf = NULL;
	size_t n = 0;
	int rc = 0;

	*text = NULL;
	fp = fopen(path, "re");	/* no fd leaks into spawned workers */
	if (fp == NULL) {
		rc = -errno;
		fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	buf = malloc(FILE_MAX + 1);
	if (buf == NULL) {
		fail(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, FILE_MAX + 1, fp);
	if (ferror(fp)) {
		rc = errno != 0 ? -errno : -EIO;
		fail(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		goto out;
	}
	if (n > FILE_MAX) {
		rc = -EFBIG;
		fail(err, errlen, "%s: larger than %d bytes; not a config "
		    "file?", path, FILE_MAX);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL) {
		rc = fail(err, errlen, "%s: contains a NUL byte; not a config "
		    "file?", path);
		goto out;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	fclose(fp);
	return rc;
}

/* ---- INI ---- */

/*
 * inih (Debian's r55) gives the handler no line number, cuts section names
 * to 49 bytes, splits lines longer than 199 bytes into two, treats an
 * indented line as the continuation of the previous value, and never tells
 * the handler a section started.  So the reader hands inih one whole,
 * unindented key line at a time (counting lines as it goes), and tracks
 * sections itself; inih is left splitting "key = value ; comment".
 */
struct ini_ctx {
	struct config *cfg;
	const char *name;
	struct lines lines;
	struct preset *preset;	/* the [preset] being filled, or NULL */
	char *err;
	size_t errlen;
	int rc;			/* first error; later ones are noise */
};

__attribute__((format(printf, 2, 3)))
static void ini_fail(struct ini_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->rc != 0)
		return;
	c->rc = -EINVAL;
	if (c->err != NULL && c->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
}

static void ini_source(const struct ini_ctx *c, char *src, size_t len)
{
	snprintf(src, len, "%s:%d", c->name, c->lines.lineno);
}

/* A missing size takes the other's value: "width = 300" is a 300x300 box. */
static void ini_end_preset(struct ini_ctx *c)
{
	struct preset *p = c->preset;

	if (p == NULL)
		return;
	c->preset = NULL;
	if (p->width == 0 && p->height == 0) {
		ini_fail(c, "%s: [preset %s]: needs width or height", p->source,
		    p->name);
		return;
	}
	if (p->width == 0)
		p->width = p->height;
	if (p->height == 0)
		p->height = p->width;
}

static bool valid_preset_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!(ch < 128 && isalnum(ch)) && ch != '_' && ch != '-')
			return false;
	}
	return true;
}

static void ini_new_preset(struct ini_ctx *c, const char *name, size_t len)
{
	struct config *cfg = c->cfg;
	char src[CONFIG_SOURCE_MAX];
	int qlen = (int)(len < QUOTE_MAX ? len : QUOTE_MAX);
	int i;

	ini_source(c, src, sizeof(src));
	if (!valid_preset_name(name, len)) {
		ini_fail(c, "%s: [preset %.*s]: '%.*s' is not a valid preset "
		    "name (1 to %d of A-Z a-z 0-9 _ -)", src, qlen, name, qlen,
		    name, CONFIG_NAME_MAX - 1);
		return;
	}
	if (!cfg->presets_from_file) {
		cfg->npresets = 0;
		cfg->presets_from_file = true;
	}
	/* Case-blind: thumb and Thumb would share files on macOS and SMB. */
	for (i = 0; i < cfg->npresets; i++) {
		if (strlen(cfg->presets[i].name) == len &&
		    strncasecmp(cfg->presets[i].name, name, len) == 0) {
			ini_fail(c, "%s: [preset %.*s]: '%.*s' is already "
			    "defined at %s", src, qlen, name, qlen, name,
			    cfg->presets[i].source);
			return;
		}
	}
	if (cfg->npresets >= CONFIG_MAX_PRESETS) {
		ini_fail(c, "%s: [preset %.*s]: '%.*s' is one preset too many "
		    "(at most %d)", src, qlen, name, qlen, name,
		    CONFIG_MAX_PRESETS);
		return;
	}
	c->preset = &cfg->presets[cfg->npresets++];
	preset_defaults(c->preset, "", src);
	memcpy(c->preset->name, name, len);
	c->preset->name[len] = '\0';
}

static void ini_section(struct ini_ctx *c, const char *line, size_t len)
{
	char src[CONFIG_SOURCE_MAX];
	const char *close, *rest, *name;
	size_t restlen, namelen;

	ini_end_preset(c);
	if (c->rc != 0)
		return;
	ini_source(c, src, sizeof(src));
	close = memchr(line, ']', len);
	if (close == NULL) {
		ini_fail(c, "%s: syntax error: section header without ']'",
		    src);
		return;
	}
	rest = close + 1;
	restlen = len - (size_t)(rest - line);
	trim(&rest, &restlen);
	if (restlen > 0 && *rest != ';' && *rest != '#') {
		ini_fail(c, "%s: syntax error: text after the section header",
		    src);
		return;
	}
	name = line + 1;
	namelen = (size_t)(close - name);
	trim(&name, &namelen);
	if (namelen == 10 && strncasecmp(name, "thumbwatch", 10) == 0)
		return;
	if (namelen >= 6 && strncasecmp(name, "preset", 6) == 0 &&
	    (namelen == 6 || is_blank(name[6]))) {
		name += 6;
		namelen -= 6;
		trim(&name, &namelen);
		ini_new_preset(c, name, namelen);
		return;
	}
	ini_fail(c, "%s: [%.*s]: unknown section (expected [thumbwatch] or "
	    "[preset NAME])", src, (int)(namelen < QUOTE_MAX ? namelen :
	    QUOTE_MAX), name);
}

/* inih's own rule: '=' or ':' before any ';' that follows a blank. */
static bool has_separator(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (line[i] == '=' || line[i] == ':')
			return true;
		if (line[i] == ';' && i > 0 && is_blank(line[i - 1]))
			return false;
	}
	return false;
}

static char *ini_read_line(char *str, int num, void *stream)
{
	struct ini_ctx *c = stream;
	char src[CONFIG_SOURCE_MAX];
	const char *line;
	size_t len;

	if (c->rc != 0 || num < 1 || !next_line(&c->lines, &line, &len))
		return NULL;
	str[0] = '\0';
	if (len == 0 || *line == ';' || *line == '#')
		return str;
	if (*line == '[') {
		ini_section(c, line, len);
		return str;
	}
	ini_source(c, src, sizeof(src));
	if (len >= (size_t)num) {
		ini_fail(c, "%s: line longer than %d characters; put long "
		    "values in .env or the environment", src, num - 1);
		return NULL;
	}
	if (*line == '=' || *line == ':') {
		ini_fail(c, "%s: syntax error: no key before '%c'", src, *line);
		return NULL;
	}
	if (!has_separator(line, len)) {
		ini_fail(c, "%s: syntax error: expected key = value", src);
		return NULL;
	}
	memcpy(str, line, len);
	str[len] = '\0';
	return str;
}

static int preset_set(struct preset *p, const char *key, const char *value,
    const char *source, char *err, size_t errlen)
{
	const struct keydef *k = find_def(preset_keys, NPRESET_KEYS, key);
	char label[CONFIG_NAME_MAX + 32];

	if (k == NULL)
		return fail(err, errlen, "%s: [preset %s] %.*s: unknown key",
		    source, p->name, QUOTE_MAX, key);
	snprintf(label, sizeof(label), "[preset %s] %s", p->name, k->name);
	return set_def(k, p, label, value, source, err, errlen);
}

static int ini_on_key(void *user, const char *section, const char *name,
    const char *value)
{
	struct ini_ctx *c = user;
	char src[CONFIG_SOURCE_MAX];
	int rc;

	(void)section;		/* truncated by inih; the reader tracks it */
	if (c->rc != 0)
		return 0;
	ini_source(c, src, sizeof(src));
	if (c->preset != NULL)
		rc = preset_set(c->preset, name, value, src, c->err, c->errlen);
	else
		rc = config_set(c->cfg, name, value, src, c->err, c->errlen);
	if (rc != 0) {
		c->rc = rc;
		return 0;
	}
	return 1;
}

static int load_ini_text(struct config *cfg, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	struct ini_ctx c = {
		.cfg = cfg, .name = name, .lines = { text, text + len, 0 },
		.err = err, .errlen = errlen,
	};
	int r;

	r = ini_parse_stream(ini_read_line, &c, ini_on_key, &c);
	if (c.rc == 0 && r == -2)
		c.rc = -ENOMEM;
	else if (c.rc == 0 && r != 0)
		ini_fail(&c, "%s:%d: syntax error", name, r);
	if (c.rc == 0)
		ini_end_preset(&c);
	if (c.rc == -ENOMEM)
		fail(err, errlen, "%s: out of memory", name);
	return c.rc;
}

int config_load_ini_string(struct config *cfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	return load_ini_text(cfg, text, strlen(text), name, err, errlen);
}

typedef int (*text_loader)(struct config *, const char *, size_t,
    const char *, char *, size_t);

/* Reads path whole and hands it to one of the text parsers, which name
 * path in their errors. */
static int
load_file(struct config *cfg, const char *path, text_loader load, char *err,
    size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	rc = read_file(path, &text, &len, err, errlen);
	if (rc != 0)
		return rc;
	rc = load(cfg, text, len, path, err, errlen);
	free(text);
	return rc;
}

int config_load_ini(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	return load_file(cfg, path, load_ini_text, err, errlen);
}

/* ---- .env and the environment ---- */

/* The value after '=': 'single' (verbatim), "double" (\" and \\ escaped)
 * or bare, where " #" starts a comment as in shells.  out has room for
 * end - p + 1 bytes. */
static const char *env_value(const char *p, const char *end, char *out)
{
	const char *start, *first = p;
	char q;

	while (p < end && is_blank(*p))
		p++;
	/* "KEY=   # note" is empty, as in sh; "KEY=#ff0000" is a value. */
	if (p < end && *p == '#' && p > first) {
		*out = '\0';
		return NULL;
	}
	if (p < end && (*p == '"' || *p == '\'')) {
		q = *p++;
		while (p < end && *p != q) {
			if (q == '"' && *p == '\\' && p + 1 < end &&
			    (p[1] == '"' || p[1] == '\\'))
				p++;
			*out++ = *p++;
		}
		*out = '\0';
		if (p >= end)
			return "has no closing quote";
		for (p++; p < end && is_blank(*p); p++)
			;
		if (p < end && *p != '#')
			return "has text after the closing quote";
		return NULL;
	}
	start = p;
	for (; p < end; p++)
		if (*p == '#' && p > start && is_blank(p[-1]))
			break;
	while (p > start && is_blank(p[-1]))
		p--;
	memcpy(out, start, (size_t)(p - start));
	out[p - start] = '\0';
	return NULL;
}

static int env_line(struct config *cfg, const char *line, size_t len,
    const char *src, char *err, size_t errlen)
{
	const char *end = line + len, *key, *p, *why;
	char name[QUOTE_MAX + PREFIX_LEN + 1], label[QUOTE_MAX + 1], *value;
	size_t klen;
	int rc;

	if (len == 0 || *line == '#')
		return 0;
	if (len > 7 && strncmp(line, "export", 6) == 0 && is_blank(line[6]))
		for (line += 6; line < end && is_blank(*line); line++)
			;
	key = line;
	for (p = key; p < end && *p != '=' && !is_blank(*p); p++)
		;
	klen = (size_t)(p - key);
	if (!has_prefix(key, klen))
		return 0;
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p != '=')
		return fail(err, errlen, "%s: syntax error: expected "
		    "THUMBWATCH_KEY=value", src);
	if (klen >= sizeof(name))
		return unknown_key(src, key, klen, err, errlen);
	memcpy(name, key, klen);
	name[klen] = '\0';
	value = malloc((size_t)(end - p) + 1);
	if (value == NULL)
		return -ENOMEM;
	why = env_value(p + 1, end, value);
	key_label(name, klen, label, sizeof(label));
	if (why != NULL)
		rc = fail(err, errlen, "%s: %s: value %s", src, label, why);
	else
		rc = config_set(cfg, name, value, src, err, errlen);
	free(value);
	return rc;
}

static int load_env_text(struct config *cfg, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	struct lines l = { text, text + len, 0 };
	char src[CONFIG_SOURCE_MAX];
	const char *line;
	size_t n;
	int rc;

	while (next_line(&l, &line, &n)) {
		snprintf(src, sizeof(src), "%s:%d", name, l.lineno);
		rc = env_line(cfg, line, n, src, err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int config_load_env_string(struct config *cfg, const char *text,
    const char *name, char *err, size_t errlen)
{
	return load_env_text(cfg, text, strlen(text), name, err, errlen);
}

int config_load_env_file(struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	return load_file(cfg, path, load_env_text, err, errlen);
}

/* THUMBWATCH_ names that are not settings, so the environment may carry
 * them: TEST_HOOKS arms the worker's fault hooks in the end-to-end tests,
 * TEST_FSTYPE makes the input folder look like a network filesystem,
 * TEST_KEEP_ORPHAN keeps a worker alive after its supervisor's death. */
static bool reserved_name(const char *key)
{
	static const char *const names[] = { "TEST_HOOKS", "TEST_FSTYPE",
	    "TEST_KEEP_ORPHAN" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(key + PREFIX_LEN, names[i]) == 0)
			return true;
	return false;
}

/* Levenshtein distance, case-insensitive, of two short names. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
	size_t row[QUOTE_MAX + 1];

	if (lb > QUOTE_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = prev + (toupper((unsigned char)a[i - 1]) !=
			    toupper((unsigned char)b[j - 1]));
			if (row[j] + 1 < cur)
				cur = row[j] + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			tmp = row[j];
			row[j] = cur;
			prev = tmp;
		}
	}
	return row[lb];
}

const char *config_closest_key(const char *name)
{
	const char *best = NULL;
	size_t d, bestd = SIZE_MAX, i;

	if (has_prefix(name, strlen(name)))
		name += PREFIX_LEN;
	for (i = 0; i < NKEYS; i++) {
		d = edit_distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	/* a third of the name, at least 2: WORKER -> WORKERS, LOGFILE ->
	 * LOG_FILE, but PORT is no typo of anything */
	return bestd <= (strlen(name) / 3 > 2 ? strlen(name) / 3 : 2) &&
	    bestd < strlen(name) ? best : NULL;
}

/* An unknown THUMBWATCH_ name in the environment is a warning, not an
 * error: the environment is shared with whatever else runs the process
 * (an orchestrator's service variables), unlike the files and flags. */
static void warn_unknown_env(struct config *cfg, const char *name)
{
	size_t used = strlen(cfg->warnings);
	const char *near = config_closest_key(name);

	if (used >= sizeof(cfg->warnings) - 1)
		return;
	snprintf(cfg->warnings + used, sizeof(cfg->warnings) - used,
	    "environment: %.64s: unknown key, ignored%s%s%s\n", name,
	    near ? " (did you mean " PREFIX : "", near ? near : "",
	    near ? "?)" : "");
}

int config_load_environ(struct config *cfg, char *const *envp, char *err,
    size_t errlen)
{
	char name[QUOTE_MAX + PREFIX_LEN + 1];
	const char *eq;
	size_t klen;
	int rc;

	for (; envp != NULL && *envp != NULL; envp++) {
		eq = strchr(*envp, '=');
		if (eq == NULL)
			continue;
		klen = (size_t)(eq - *envp);
		if (!has_prefix(*envp, klen))
			continue;
		if (klen >= sizeof(name)) {
			key_label(*envp, klen, name, sizeof(name));
			warn_unknown_env(cfg, name);
			continue;
		}
		memcpy(name, *envp, klen);
		name[klen] = '\0';
		if (reserved_name(name))
			continue;
		if (find_def(keys, NKEYS, name + PREFIX_LEN) == NULL) {
			warn_unknown_env(cfg, name);
			continue;
		}
		rc = config_set(cfg, name, eq + 1, "environment", err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- cross-key checks ---- */

/* Lexical absolute form for comparing folders that may not exist yet:
 * relative to the working directory, without ".", "..", "//" or a
 * trailing "/".  Symlinks are not resolved; false on overflow. */
static bool norm_path(const char *path, char *out, size_t cap)
{
	char buf[2 * PATH_MAX];
	const char *p, *q;
	size_t used = 0, n;

	if (path[0] == '/')
		snprintf(buf, sizeof(buf), "%s", path);
	else if (getcwd(buf, sizeof(buf)) == NULL)
		return false;
	else if (strlen(buf) + 1 + strlen(path) >= sizeof(buf))
		return false;
	else
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "/%s",
		    path);
	for (p = buf; *p != '\0'; p = q) {
		while (*p == '/')
			p++;
		for (q = p; *q != '\0' && *q != '/'; q++)
			;
		n = (size_t)(q - p);
		if (n == 0 || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (used > 0 && out[used - 1] != '/')
				used--;
			if (used > 0)
				used--;
			continue;
		}
		if (used + 1 + n >= cap)
			return false;
		out[used++] = '/';
		memcpy(out + used, p, n);
		used += n;
	}
	if (used == 0)
		out[used++] = '/';
	out[used] = '\0';
	return true;
}

/* dir is root or below it, by components: /in2 is not below /in. */
static bool path_within(const char *dir, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return true;
	return strncmp(dir, root, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

int config_finish(struct config *cfg, int ncpus, char *err, size_t errlen)
{
	char in[PATH_MAX], out[PATH_MAX], done[PATH_MAX];
	bool have_in, have_out;

	if (cfg->workers == 0)
		cfg->workers = ncpus < 1 ? 1 : ncpus > 256 ? 256 : ncpus;
	have_in = norm_path(cfg->input_dir, in, sizeof(in));
	have_out = norm_path(cfg->output_dir, out, sizeof(out));
	if (have_in && have_out && strcmp(in, out) == 0)
		return fail(err, errlen, "config: OUTPUT_DIR: '%s' is the same "
		    "folder as INPUT_DIR '%s'", cfg->output_dir,
		    cfg->input_dir);
	/* The output tree is never watched, so it would hide the input. */
	if (have_in && have_out && path_within(in, out))
		return fail(err, errlen, "config: INPUT_DIR: '%s' is inside "
		    "OUTPUT_DIR '%s'", cfg->input_dir, cfg->output_dir);
	if (cfg->role != ROLE_ALL && !config_queue_is_redis(cfg))
		return fail(err, errlen, "config: ROLE: '%s' needs a Redis "
		    "QUEUE (redis://host:port/db); with QUEUE=local a daemon "
		    "both watches and makes thumbnails", enum_name(roles,
		    (int)cfg->role));
	if (config_queue_is_redis(cfg) && cfg->source_action != ACTION_KEEP)
		return fail(err, errlen, "config: SOURCE_ACTION: '%s' is not "
		    "supported with a Redis QUEUE: the watcher node would see "
		    "the worker's move or delete as the user's and remove the "
		    "thumbnails", enum_name(source_actions,
		    (int)cfg->source_action));
	if (cfg->source_action == ACTION_MOVE && have_in &&
	    norm_path(cfg->done_dir, done, sizeof(done)) &&
	    path_within(done, in))
		return fail(err, errlen, "config: DONE_DIR: '%s' is inside "
		    "INPUT_DIR '%s', so with SOURCE_ACTION=move every moved "
		    "file would be watched again", cfg->done_dir,
		    cfg->input_dir);
	return 0;
}

bool config_queue_is_redis(const struct config *cfg)
{
	return strcmp(cfg->queue, "local") != 0;
}

const char *config_role_name(enum role r)
{
	return enum_name(roles, (int)r);
}

/* ---- output ---- */

void config_preset_fingerprint(const struct preset *p, char *out,
    size_t outlen)
{
	snprintf(out, outlen, "v1 w=%d h=%d fit=%s g=%s f=%s q=%d p=%d s=%d",
	    p->width, p->height, enum_name(fits, (int)p->fit), p->gravity,
	    enum_name(formats, (int)p->format), p->quality,
	    p->progressive ? 1 : 0, p->strip ? 1 : 0);
	/* Only a non-default profile is named, so an upgrade does not remake
	 * every thumbnail (see README, "Image handling"). */
	if (p->profile == PROFILE_KEEP) {
		size_t n = strlen(out);
		if (n < outlen)
			snprintf(out + n, outlen - n, " pr=keep");
	}
}

void config_dump(const struct config *cfg, FILE *fp)
{
	char val[PATH_MAX];
	size_t i;
	int j;

	for (i = 0; i < NKEYS; i++) {
		format_value(&keys[i], cfg, val, sizeof(val));
		fprintf(fp, "%s = %s    # %s\n", keys[i].name, val,
		    cfg->sources != NULL ? cfg->sources[i] : "?");
	}
	for (j = 0; j < cfg->npresets; j++) {
		fprintf(fp, "[preset %s]", cfg->presets[j].name);
		for (i = 0; i < NPRESET_KEYS; i++) {
			format_value(&preset_keys[i], &cfg->presets[j], val,
			    sizeof(val));
			fprintf(fp, " %s=%s", preset_keys[i].name, val);
		}
		fprintf(fp, "    # %s\n", cfg->presets[j].source);
	}
}

void config_usage_keys(FILE *fp)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		fprintf(fp, "  " PREFIX "%s (default: %s)\n      %s\n",
		    keys[i].name, keys[i].def, keys[i].help);
}

size_t config_nkeys(void)
{
	return NKEYS;
}

const char *config_key_name(size_t i)
{
	return i < NKEYS ? keys[i].name : NULL;
}

const char *config_key_default(size_t i)
{
	return i < NKEYS ? keys[i].def : NULL;
}

const char *config_key_help(size_t i)
{
	return i < NKEYS ? keys[i].help : NULL;
}

const char *config_format_ext(enum out_format f)
{
	switch (f) {
	case FORMAT_JPEG: return "jpg";
	case FORMAT_WEBP: return "webp";
	case FORMAT_PNG: return "png";
	case FORMAT_AVIF: return "avif";
	}
	return "bin";
}

const char *config_log_level_name(enum log_level l)
{
	return enum_name(log_levels, (int)l);
}
