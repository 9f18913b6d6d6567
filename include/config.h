/*
 * config: the single table of thumbwatch's settings, and their loading.
 *
 * Pure module (no libuv, no libvips).  Every key has one name, KEY, used as
 * THUMBWATCH_KEY in the environment and .env files, as key (lowercase) in the
 * [thumbwatch] section (or before any section) of the INI file, and as
 * --key (lowercase, '_' -> '-') on the command line.  Sources, lowest to
 * highest precedence: built-in default, INI file, .env file, environment,
 * command-line flag.  Each value remembers where it came from ("default",
 * "config/thumbwatch.ini:12", ".env:3", "environment", "command line").
 */
#ifndef THUMBWATCH_CONFIG_H
#define THUMBWATCH_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_PRESETS 16
#define CONFIG_NAME_MAX 64
#define CONFIG_SOURCE_MAX 300

enum fit { FIT_INSIDE, FIT_COVER, FIT_FILL };
enum out_format { FORMAT_JPEG, FORMAT_WEBP, FORMAT_PNG, FORMAT_AVIF };
enum source_action { ACTION_KEEP, ACTION_MOVE, ACTION_DELETE };
enum watch_backend { BACKEND_AUTO, BACKEND_INOTIFY, BACKEND_FSEVENT,
    BACKEND_POLL };
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum role { ROLE_ALL, ROLE_WATCHER, ROLE_WORKER };
/* An embedded colour profile: converted to sRGB, or kept in the thumbnail. */
enum profile_mode { PROFILE_SRGB, PROFILE_KEEP };

struct preset {
	char name[CONFIG_NAME_MAX];
	int width, height;
	enum fit fit;
	/* centre north south east west ... attention entropy (libvips names) */
	char gravity[16];
	enum out_format format;
	int quality;		/* 1..100 */
	bool progressive;
	bool strip;
	enum profile_mode profile;
	char source[CONFIG_SOURCE_MAX];	/* where the section was defined */
};

struct config {
	char input_dir[PATH_MAX];
	char output_dir[PATH_MAX];
	char log_file[PATH_MAX];
	char done_dir[PATH_MAX];	/* SOURCE_ACTION=move target */
	char runtime_dir[PATH_MAX];	/* control socket, default pidfile */
	/* --pidfile (command line only, not a table key); "" means
	 * RUNTIME_DIR/thumbwatch.pid. */
	char pidfile[PATH_MAX];
	int workers;			/* 0 in the table = number of CPUs */
	int batch_size;
	int batch_wait_ms;
	int settle_ms;			/* fsevent backend: quiet time */
	int64_t max_file_size;		/* bytes, 0 = no limit */
	int64_t max_pixels;		/* width*height of the first page */
	int image_timeout_ms;		/* per-image deadline in a worker */
	int drain_timeout_ms;		/* SIGTERM: time to finish in-flight work */
	int stats_interval_s;		/* 0 = no periodic stats line */
	int rescan_interval_s;		/* 0 = no periodic rescan */
	int retry_interval_s;		/* after an output write failure */
	int worker_max_images;		/* recycle a worker after; 0 = never */
	int worker_memory_mb;		/* RLIMIT_AS of a worker; 0 = none */
	char extensions[256];		/* comma list, lower case, no dots */
	char output_template[256];	/* see pathmap.h */
	enum source_action source_action;
	bool mirror_deletes;
	bool mirror_moves;
	char background[32];		/* "r,g,b" or "#rrggbb" for flattening */
	enum log_level log_level;
	enum watch_backend watch_backend;
	char http_listen[128];		/* "" = no HTTP server */
	char http_token[256];		/* "" = no token required */
	char http_public[128];		/* routes open without the token */
	int64_t http_max_upload;	/* bytes per upload body */
	int http_max_uploads;		/* concurrent uploads */
	int http_max_connections;	/* 0 = from RLIMIT_NOFILE */
	int http_max_per_client;	/* connections per client address */
	int http_request_timeout_s;	/* whole request, idle, SSE stall */
	int64_t http_min_upload_rate;	/* bytes/s that extend an upload */
	char queue[512];		/* "local" or a redis:// URL */
	enum role role;			/* with QUEUE=redis:// */
	char redis_password[256];	/* "" = none (or the URL's) */
	char redis_prefix[64];		/* key names: PREFIX:jobs ... */
	int redis_visibility_s;		/* silent this long: taken over */
	int redis_max_deliveries;	/* then dead-lettered */

	struct preset presets[CONFIG_MAX_PRESETS];
	int npresets;
	bool presets_from_file;		/* false: the built-in `thumb` */

	/* per table key: where its value came from (index = key index) */
	char (*sources)[CONFIG_SOURCE_MAX];

	/* Lines to show once loaded: THUMBWATCH_ names in the environment
	 * that are no key (Kubernetes makes THUMBWATCH_SERVICE_HOST, ...
	 * for a Service called thumbwatch), each ending in '\n'. */
	char warnings[1024];
};

/* Fills every key with its built-in default and the default `thumb`
 * preset.  Returns 0 or -ENOMEM. */
int config_init(struct config *cfg);
void config_free(struct config *cfg);

/* After a reload: every key the running daemon was built around (the
 * table's KEY_RESTART keys: folders, workers, sockets, the queue) keeps
 * its running value in nc, and the names of those whose new value differs
 * go to changed, ", "-separated ("" when none). */
void config_keep_restart_keys(const struct config *running,
    struct config *nc, char *changed, size_t len);

/* Whether table key i takes effect only at the next start. */
bool config_key_restart(size_t i);

/* The table key nearest to name (edit distance, any case, without the
 * THUMBWATCH_ prefix) when it is close enough to be a typo, else NULL. */
const char *config_closest_key(const char *name);

/* Sets KEY (without THUMBWATCH_ prefix, any case) to value, recording
 * source.  On a bad key or value returns -EINVAL and writes to err a message
 * naming key, value and source, e.g.
 *   "config/thumbwatch.ini:7: WORKERS: 'abc' is not a whole number (0..256)" */
int config_set(struct config *cfg, const char *key, const char *value,
    const char *source, char *err, size_t errlen);

/* INI file: [thumbwatch] keys and [preset NAME] sections.  The first
 * [preset] section seen drops the built-in default preset.  Missing file:
 * -ENOENT (callers ignore it for the implicit default path). */
int config_load_ini(struct config *cfg, const char *path, char *err,
    size_t errlen);

/* .env file: KEY=VALUE lines (THUMBWATCH_ prefix required; other names
 * ignored), '#' comments, optional quotes. -ENOENT when missing. */
int config_load_env_file(struct config *cfg, const char *path, char *err,
    size_t errlen);

/* The same two parsers on text already in memory (fuzzing, tests); name
 * stands for the path in sources and messages ("name:line"). */
int config_load_ini_string(struct config *cfg, const char *text,
    const char *name, char *err, size_t errlen);
int config_load_env_string(struct config *cfg, const char *text,
    const char *name, char *err, size_t errlen);

/* THUMBWATCH_* variables of envp (NULL-terminated). */
int config_load_environ(struct config *cfg, char *const *envp, char *err,
    size_t errlen);

/* Cross-key checks after all sources are loaded (e.g. output dir equal to
 * input dir, done dir needed for SOURCE_ACTION=move), and resolves
 * workers=0 to ncpus. */
int config_finish(struct config *cfg, int ncpus, char *err, size_t errlen);

/* Whether QUEUE names Redis rather than the local queue. */
bool config_queue_is_redis(const struct config *cfg);

/* "all", "watcher" or "worker". */
const char *config_role_name(enum role r);

/* Stable text naming every preset's parameters; its hash decides whether a
 * preset's old thumbnails are still valid. */
void config_preset_fingerprint(const struct preset *p, char *out,
    size_t outlen);

/* check-config: every key = value  # source; then the presets. */
void config_dump(const struct config *cfg, FILE *fp);

/* --help: every key with its default and one line of meaning. */
void config_usage_keys(FILE *fp);

/* Table access for the command-line parser and sample.env generation. */
size_t config_nkeys(void);
const char *config_key_name(size_t i);		/* "INPUT_DIR" */
const char *config_key_default(size_t i);
const char *config_key_help(size_t i);

const char *config_format_ext(enum out_format f);	/* "jpg" ... */
const char *config_log_level_name(enum log_level l);

#endif
