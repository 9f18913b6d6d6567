/*
 * config: thumbwatch's settings as one table.
 *
 * Owns the key table (name, type, default, bounds, help, field), the
 * defaults, config_set, the keys a reload keeps, the cross-key checks,
 * presets' fingerprints, check-config output and the --help text.
 * Defaults, config_set, config_dump, config_usage_keys and the
 * config_key_* accessors all read the same table, so a key cannot be parsed
 * one way and documented another.  Presets have a small table of their own,
 * read the same way.  The value of one key is parsed in config_parse.c;
 * the files and the environment are read in config_load.c.
 *
 * Pure: neither libuv nor libvips, and no global mutable state (both tables
 * are const).  A failed load leaves cfg partly updated: callers load into a
 * fresh config and discard it on error (start-up exits, SIGHUP keeps the
 * running one).
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

const struct keydef keys[] = {
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

const size_t nkeys = sizeof(keys) / sizeof(keys[0]);

const struct keydef preset_keys[] = {
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

const size_t npreset_keys = sizeof(preset_keys) / sizeof(preset_keys[0]);

const struct keydef *find_def(const struct keydef *defs, size_t n,
    const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

void key_label(const char *key, size_t len, char *out, size_t cap)
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

int unknown_key(const char *source, const char *key, size_t len,
    char *err, size_t errlen)
{
	char name[QUOTE_MAX + 1];

	key_label(key, len, name, sizeof(name));
	return einval(err, errlen, "%s: %s: unknown key", source, name);
}

void preset_defaults(struct preset *p, const char *name,
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
		return einval(err, errlen, "config: OUTPUT_DIR: '%s' is the "
		    "same folder as INPUT_DIR '%s'", cfg->output_dir,
		    cfg->input_dir);
	/* The output tree is never watched, so it would hide the input. */
	if (have_in && have_out && path_within(in, out))
		return einval(err, errlen, "config: INPUT_DIR: '%s' is inside "
		    "OUTPUT_DIR '%s'", cfg->input_dir, cfg->output_dir);
	if (cfg->role != ROLE_ALL && !config_queue_is_redis(cfg))
		return einval(err, errlen, "config: ROLE: '%s' needs a Redis "
		    "QUEUE (redis://host:port/db); with QUEUE=local a daemon "
		    "both watches and makes thumbnails", enum_name(roles,
		    (int)cfg->role));
	if (config_queue_is_redis(cfg) && cfg->source_action != ACTION_KEEP)
		return einval(err, errlen, "config: SOURCE_ACTION: '%s' is not "
		    "supported with a Redis QUEUE: the watcher node would see "
		    "the worker's move or delete as the user's and remove the "
		    "thumbnails", enum_name(source_actions,
		    (int)cfg->source_action));
	if (cfg->source_action == ACTION_MOVE && have_in &&
	    norm_path(cfg->done_dir, done, sizeof(done)) &&
	    path_within(done, in))
		return einval(err, errlen, "config: DONE_DIR: '%s' is inside "
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
