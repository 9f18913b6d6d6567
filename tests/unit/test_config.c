/* Unit tests for config: the key table, every source, every error. */
#include "unit.h"

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[1024];

/* ---- helpers ---- */

static char *write_temp(const char *text)
{
	char tmpl[] = "/tmp/thumbwatch-test-config-XXXXXX";
	size_t len = strlen(text);
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return strdup(tmpl);
}

static void remove_temp(char *path)
{
	unlink(path);
	free(path);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static size_t key_index(const char *name)
{
	size_t i;

	for (i = 0; i < config_nkeys(); i++)
		if (strcmp(config_key_name(i), name) == 0)
			return i;
	fail_msg("no key %s", name);
	return 0;
}

static const char *source_of(const struct config *cfg, const char *name)
{
	return cfg->sources[key_index(name)];
}

static char *dump(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	config_dump(cfg, fp);
	fclose(fp);
	return buf;
}

/* The dump without the "    # source" comments: the values alone. */
static char *dump_values(const struct config *cfg)
{
	char *text = dump(cfg), *out = malloc(strlen(text) + 1);
	char *line, *save = NULL, *hash;

	assert_non_null(out);
	out[0] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		hash = strstr(line, "    # ");
		if (hash != NULL)
			*hash = '\0';
		strcat(out, line);
		strcat(out, "\n");
	}
	free(text);
	return out;
}

static void init(struct config *cfg)
{
	assert_int_equal(config_init(cfg), 0);
	err[0] = '\0';
}

/* Loads INI text and expects the error message exactly. */
static void ini_error(const char *text, const char *want)
{
	struct config cfg;

	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg, text, "t.ini", err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	config_free(&cfg);
}

static void set_error(const char *key, const char *value, const char *want)
{
	struct config cfg;

	init(&cfg);
	assert_int_equal(config_set(&cfg, key, value, "src", err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	config_free(&cfg);
}

/* ---- defaults and the table ---- */

static void test_defaults(void **state)
{
	struct config cfg;
	size_t i;

	(void)state;
	init(&cfg);
	assert_string_equal(cfg.input_dir, "data/input");
	assert_string_equal(cfg.output_dir, "data/output");
	assert_string_equal(cfg.log_file, "logs/thumbwatch.log");
	assert_string_equal(cfg.done_dir, "data/done");
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.workers, 0);
	assert_int_equal(cfg.batch_size, 4);
	assert_int_equal(cfg.batch_wait_ms, 50);
	assert_int_equal(cfg.settle_ms, 500);
	assert_int_equal(cfg.max_file_size, 512LL * 1024 * 1024);
	assert_int_equal(cfg.max_pixels, 268402689);
	assert_int_equal(cfg.image_timeout_ms, 60000);
	assert_int_equal(cfg.drain_timeout_ms, 30000);
	assert_int_equal(cfg.stats_interval_s, 60);
	assert_int_equal(cfg.rescan_interval_s, 0);
	assert_string_equal(cfg.extensions,
	    "jpg,jpeg,png,webp,tif,tiff,gif,heic,heif,avif,jxl");
	assert_string_equal(cfg.output_template, "{dir}/{stem}_{preset}.{ext}");
	assert_int_equal(cfg.source_action, ACTION_KEEP);
	assert_true(cfg.mirror_deletes);
	assert_true(cfg.mirror_moves);
	assert_string_equal(cfg.background, "255,255,255");
	assert_int_equal(cfg.watch_backend, BACKEND_AUTO);

	assert_int_equal(cfg.npresets, 1);
	assert_false(cfg.presets_from_file);
	assert_string_equal(cfg.presets[0].name, "thumb");
	assert_int_equal(cfg.presets[0].width, 300);
	assert_int_equal(cfg.presets[0].height, 300);
	assert_int_equal(cfg.presets[0].fit, FIT_INSIDE);
	assert_string_equal(cfg.presets[0].gravity, "centre");
	assert_int_equal(cfg.presets[0].format, FORMAT_JPEG);
	assert_int_equal(cfg.presets[0].quality, 85);
	assert_false(cfg.presets[0].progressive);
	assert_true(cfg.presets[0].strip);
	assert_string_equal(cfg.presets[0].source, "default");

	assert_string_equal(cfg.http_listen, "");
	assert_string_equal(cfg.http_token, "");
	assert_string_equal(cfg.http_public, "");
	assert_int_equal(cfg.http_max_upload, 64 << 20);
	assert_int_equal(cfg.http_max_uploads, 16);
	assert_int_equal(cfg.http_max_connections, 0);
	assert_int_equal(cfg.http_max_per_client, 32);
	assert_int_equal(cfg.http_request_timeout_s, 30);
	assert_int_equal(cfg.http_min_upload_rate, 16 << 10);
	assert_int_equal(config_nkeys(), 41);
	for (i = 0; i < config_nkeys(); i++)
		assert_string_equal(cfg.sources[i], "default");
	config_free(&cfg);
	assert_null(cfg.sources);
}

static void test_table_access(void **state)
{
	size_t i;

	(void)state;
	assert_string_equal(config_key_name(0), "INPUT_DIR");
	assert_string_equal(config_key_default(key_index("WORKERS")), "0");
	assert_string_equal(config_key_help(key_index("WORKERS")),
	    "worker processes; 0 = one per CPU");
	assert_null(config_key_name(config_nkeys()));
	assert_null(config_key_default(config_nkeys()));
	assert_null(config_key_help(config_nkeys()));
	for (i = 0; i < config_nkeys(); i++) {
		assert_true(strlen(config_key_help(i)) > 10);
		assert_non_null(config_key_default(i));
	}
	assert_string_equal(config_format_ext(FORMAT_JPEG), "jpg");
	assert_string_equal(config_format_ext(FORMAT_WEBP), "webp");
	assert_string_equal(config_format_ext(FORMAT_PNG), "png");
	assert_string_equal(config_format_ext(FORMAT_AVIF), "avif");
	assert_string_equal(config_log_level_name(LOG_DEBUG), "debug");
	assert_string_equal(config_log_level_name(LOG_INFO), "info");
	assert_string_equal(config_log_level_name(LOG_WARN), "warn");
	assert_string_equal(config_log_level_name(LOG_ERROR), "error");
}

/* Every default must go back through config_set unchanged. */
static void test_defaults_reparse(void **state)
{
	struct config cfg;
	char *before, *after;
	size_t i;

	(void)state;
	init(&cfg);
	before = dump_values(&cfg);
	for (i = 0; i < config_nkeys(); i++)
		assert_int_equal(config_set(&cfg, config_key_name(i),
		    config_key_default(i), "again", err, sizeof(err)), 0);
	after = dump_values(&cfg);
	assert_string_equal(before, after);
	assert_string_equal(source_of(&cfg, "BACKGROUND"), "again");
	free(before);
	free(after);
	config_free(&cfg);
}

static void test_usage(void **state)
{
	char *buf = NULL;
	size_t len = 0, lines = 0, i;
	FILE *fp = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(fp);
	config_usage_keys(fp);
	fclose(fp);
	assert_non_null(strstr(buf, "  THUMBWATCH_WORKERS (default: 0)\n"
	    "      worker processes; 0 = one per CPU\n"));
	assert_non_null(strstr(buf, "  THUMBWATCH_INPUT_DIR (default: "
	    "data/input)\n      "));
	for (i = 0; i < len; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, 2 * config_nkeys());
	free(buf);
}

static void test_dump(void **state)
{
	struct config cfg;
	char *text;
	size_t lines = 0, i;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "BATCH_SIZE", "7", "command line",
	    err, sizeof(err)), 0);
	text = dump(&cfg);
	assert_non_null(strstr(text, "INPUT_DIR = data/input    # default\n"));
	assert_non_null(strstr(text, "BATCH_SIZE = 7    # command line\n"));
	assert_non_null(strstr(text, "MAX_FILE_SIZE = 512M    # default\n"));
	assert_non_null(strstr(text, "MIRROR_MOVES = true    # default\n"));
	assert_non_null(strstr(text, "LOG_LEVEL = info    # default\n"));
	assert_non_null(strstr(text, "[preset thumb] width=300 height=300 "
	    "fit=inside gravity=centre format=jpeg quality=85 "
	    "progressive=false strip=true profile=srgb    # default\n"));
	for (i = 0; text[i] != '\0'; i++)
		lines += text[i] == '\n';
	assert_int_equal(lines, config_nkeys() + 1);
	free(text);
	config_free(&cfg);
}

/* ---- config_set ---- */

static void test_set_names_and_trim(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "workers", " 5\t", "a", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.workers, 5);
	assert_int_equal(config_set(&cfg, "THUMBWATCH_WORKERS", "6", "b", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.workers, 6);
	assert_int_equal(config_set(&cfg, "thumbwatch_Workers", "7", "c", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.workers, 7);
	assert_string_equal(source_of(&cfg, "WORKERS"), "c");
	assert_int_equal(config_set(&cfg, "source_action", "MOVE", "c", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.source_action, ACTION_MOVE);
	assert_int_equal(config_set(&cfg, "watch_backend", "inotify", "c", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.watch_backend, BACKEND_INOTIFY);
	assert_int_equal(config_set(&cfg, "LOG_LEVEL", "Error", "c", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.log_level, LOG_ERROR);
	assert_int_equal(config_set(&cfg, "input_dir", "  my in  ", "c", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg.input_dir, "my in");
	config_free(&cfg);
}

static void test_set_failure_keeps_value(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "WORKERS", "3", "first", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "WORKERS", "3x", "second", err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(source_of(&cfg, "WORKERS"), "first");
	config_free(&cfg);
}

static void test_error_bad_int(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "WORKERS", "abc",
	    "config/thumbwatch.ini:7", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "config/thumbwatch.ini:7: WORKERS: 'abc' is "
	    "not a whole number (0..256)");
	config_free(&cfg);
	set_error("BATCH_SIZE", "4.5", "src: BATCH_SIZE: '4.5' is not a whole "
	    "number (1..1024)");
	set_error("BATCH_SIZE", "", "src: BATCH_SIZE: '' is not a whole number "
	    "(1..1024)");
	set_error("SETTLE_MS", "0x10", "src: SETTLE_MS: '0x10' is not a whole "
	    "number (10..600000)");
}

static void test_error_out_of_range(void **state)
{
	(void)state;
	set_error("WORKERS", "257", "src: WORKERS: '257' is out of range "
	    "(0..256)");
	set_error("BATCH_SIZE", "0", "src: BATCH_SIZE: '0' is out of range "
	    "(1..1024)");
	set_error("IMAGE_TIMEOUT_MS", "-5", "src: IMAGE_TIMEOUT_MS: '-5' is "
	    "out of range (100..3600000)");
	set_error("WORKERS", "99999999999999999999999", "src: WORKERS: "
	    "'99999999999999999999999' is out of range (0..256)");
	set_error("MAX_PIXELS", "0", "src: MAX_PIXELS: '0' is out of range "
	    "(1..1099511627776)");
	set_error("MAX_PIXELS", "1099511627777", "src: MAX_PIXELS: "
	    "'1099511627777' is out of range (1..1099511627776)");
}

static void test_max_pixels_bounds(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "MAX_PIXELS", "1099511627776", "s",
	    err, sizeof(err)), 0);
	assert_int_equal(cfg.max_pixels, 1099511627776LL);
	assert_int_equal(config_set(&cfg, "MAX_PIXELS", "1", "s", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.max_pixels, 1);
	config_free(&cfg);
}

static void test_error_bad_enum(void **state)
{
	struct config cfg;
	char *envp[] = { "THUMBWATCH_LOG_LEVEL=loud", NULL };

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_environ(&cfg, envp, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "environment: LOG_LEVEL: 'loud' is not one "
	    "of debug, info, warn, error");
	assert_int_equal(cfg.log_level, LOG_INFO);
	config_free(&cfg);
	set_error("SOURCE_ACTION", "copy", "src: SOURCE_ACTION: 'copy' is not "
	    "one of keep, move, delete");
	set_error("WATCH_BACKEND", "kqueue", "src: WATCH_BACKEND: 'kqueue' is "
	    "not one of auto, inotify, fsevent, poll");
}

static void test_error_bad_bool(void **state)
{
	struct config cfg;
	static const char *const yes[] = { "true", "YES", "On", "1" };
	static const char *const no[] = { "False", "no", "OFF", "0" };
	size_t i;

	(void)state;
	init(&cfg);
	for (i = 0; i < 4; i++) {
		assert_int_equal(config_set(&cfg, "MIRROR_MOVES", no[i], "s",
		    err, sizeof(err)), 0);
		assert_false(cfg.mirror_moves);
		assert_int_equal(config_set(&cfg, "MIRROR_MOVES", yes[i], "s",
		    err, sizeof(err)), 0);
		assert_true(cfg.mirror_moves);
	}
	assert_int_equal(config_load_env_string(&cfg,
	    "THUMBWATCH_MIRROR_MOVES=maybe\n", ".env", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, ".env:1: MIRROR_MOVES: 'maybe' is not a "
	    "boolean (true/false, yes/no, on/off, 1/0)");
	assert_true(cfg.mirror_moves);
	config_free(&cfg);
}

static void test_error_unknown_key(void **state)
{
	struct config cfg;
	char *envp[] = { "PATH=/bin", "THUMBWATCH_FOO_BAR=1", NULL };

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_env_string(&cfg, "# settings\n"
	    "OTHER=1\nTHUMBWATCH_FOO_BAR=1\n", ".env", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, ".env:3: FOO_BAR: unknown key");
	/* the environment is shared with an orchestrator's variables: only
	 * a warning there (issue: THUMBWATCH_SERVICE_HOST from Kubernetes) */
	assert_int_equal(config_load_environ(&cfg, envp, err, sizeof(err)), 0);
	assert_string_equal(cfg.warnings,
	    "environment: THUMBWATCH_FOO_BAR: unknown key, ignored\n");
	config_free(&cfg);
	set_error("colour", "red", "src: COLOUR: unknown key");
	ini_error("workers = 2\nfoo_bar = 1\n",
	    "t.ini:2: FOO_BAR: unknown key");
	ini_error("[preset a]\nwidth = 1\ncolour = red\n",
	    "t.ini:3: [preset a] colour: unknown key");
}

static void test_environ_unknown_names_warn_with_the_closest_key(
    void **state)
{
	struct config cfg;
	char *envp[] = { "THUMBWATCH_SERVICE_HOST=10.0.0.1",
	    "THUMBWATCH_PORT=tcp://10.0.0.1:80", "THUMBWATCH_WORKER=3",
	    "THUMBWATCH_WORKERS=2", "THUMBWATCH_LOGFILE=x", NULL };

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_environ(&cfg, envp, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 2);	/* known keys still apply */
	assert_string_equal(cfg.warnings,
	    "environment: THUMBWATCH_SERVICE_HOST: unknown key, ignored\n"
	    "environment: THUMBWATCH_PORT: unknown key, ignored\n"
	    "environment: THUMBWATCH_WORKER: unknown key, ignored (did you "
	    "mean THUMBWATCH_WORKERS?)\n"
	    "environment: THUMBWATCH_LOGFILE: unknown key, ignored (did you "
	    "mean THUMBWATCH_LOG_FILE?)\n");
	config_free(&cfg);
	assert_string_equal(config_closest_key("input_dri"), "INPUT_DIR");
	assert_null(config_closest_key("PORT"));
}

static void test_reload_keeps_restart_keys(void **state)
{
	struct config run, nc;
	char changed[256];
	size_t i, n = 0;

	(void)state;
	init(&run);
	init(&nc);
	/* unchanged: nothing named */
	config_keep_restart_keys(&run, &nc, changed, sizeof(changed));
	assert_string_equal(changed, "");
	assert_int_equal(config_set(&nc, "WORKERS", "7", "t", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&nc, "INPUT_DIR", "/elsewhere", "t", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&nc, "BATCH_SIZE", "9", "t", err,
	    sizeof(err)), 0);
	config_keep_restart_keys(&run, &nc, changed, sizeof(changed));
	/* only the changed restart-only keys, in table order */
	assert_string_equal(changed, "INPUT_DIR, WORKERS");
	assert_string_equal(nc.input_dir, run.input_dir);
	assert_int_equal(nc.workers, run.workers);
	assert_int_equal(nc.batch_size, 9);	/* applies now */
	for (i = 0; i < config_nkeys(); i++)
		n += config_key_restart(i);
	assert_int_equal(n, 17);
	config_free(&nc);
	config_free(&run);
}

static void test_environ_ignores_unprefixed(void **state)
{
	struct config cfg;
	char *envp[] = { "PATH=/usr/bin", "WORKERS=9", "NOEQUALS",
		"THUMBWATCH_WORKERS=2", "THUMBWATCHWORKERS=5",
		"thumbwatch_batch_size=3", "THUMBWATCH_TEST_HOOKS=1", NULL };

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_environ(&cfg, envp, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 2);
	assert_int_equal(cfg.batch_size, 3);
	assert_string_equal(source_of(&cfg, "WORKERS"), "environment");
	assert_string_equal(source_of(&cfg, "INPUT_DIR"), "default");
	assert_int_equal(config_load_environ(&cfg, NULL, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void test_error_bad_template(void **state)
{
	static const char *const bad[] = { "{stem}.{ext}",
		"/abs/{stem}_{preset}", "../{stem}_{preset}.{ext}",
		"{dir}/{stem}_{preset}.{nope}", "{stem}_{preset" };
	struct config cfg;
	char want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "src: OUTPUT_TEMPLATE: '%s' is "
		    "not a valid output template (relative, no '..', needs "
		    "{stem} and {preset}; knows {dir} {stem} {preset} {ext} "
		    "{srcext})", bad[i]);
		set_error("OUTPUT_TEMPLATE", bad[i], want);
	}
	init(&cfg);
	assert_int_equal(config_set(&cfg, "OUTPUT_TEMPLATE",
	    "{preset}/{dir}/{stem}.{srcext}.{ext}", "s", err, sizeof(err)), 0);
	assert_string_equal(cfg.output_template,
	    "{preset}/{dir}/{stem}.{srcext}.{ext}");
	config_free(&cfg);
}

static void test_error_too_long(void **state)
{
	struct config cfg;
	char *v = malloc(PATH_MAX + 100);

	(void)state;
	assert_non_null(v);
	init(&cfg);
	memset(v, 'a', PATH_MAX - 1);
	v[PATH_MAX - 1] = '\0';
	assert_int_equal(config_set(&cfg, "INPUT_DIR", v, "s", err,
	    sizeof(err)), 0);
	assert_int_equal(strlen(cfg.input_dir), PATH_MAX - 1);
	memset(v, 'b', PATH_MAX + 50);
	v[PATH_MAX + 50] = '\0';
	assert_int_equal(config_set(&cfg, "INPUT_DIR", v, "s", err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "s: INPUT_DIR: 'bbb"));
	assert_non_null(strstr(err, "' is too long"));
	assert_true(strlen(err) < 300);
	assert_int_equal(cfg.input_dir[0], 'a');
	set_error("OUTPUT_DIR", " ", "src: OUTPUT_DIR: '' is empty");
	free(v);
	config_free(&cfg);
}

/* ---- value forms ---- */

static void test_max_file_size(void **state)
{
	static const struct { const char *in; long long want; } ok[] = {
		{ "0", 0 }, { "1024", 1024 }, { "10K", 10240 },
		{ "10k", 10240 }, { "512M", 512LL << 20 }, { "2G", 2LL << 30 },
		{ "3MB", 3LL << 20 }, { "5 MiB", 5LL << 20 }, { "100B", 100 },
		{ "1T", 1LL << 40 },
	};
	static const char *const bad[] = { "1.5G", "-1", "M", "12Q", "",
		"10 K B" };
	struct config cfg;
	char want[256];
	size_t i;

	(void)state;
	init(&cfg);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_set(&cfg, "MAX_FILE_SIZE", ok[i].in,
		    "s", err, sizeof(err)), 0);
		assert_int_equal(cfg.max_file_size, ok[i].want);
	}
	config_free(&cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "src: MAX_FILE_SIZE: '%s' is not "
		    "a size (bytes, or a number with K, M or G; 0 = no "
		    "limit)", bad[i]);
		set_error("MAX_FILE_SIZE", bad[i], want);
	}
	set_error("MAX_FILE_SIZE", "99999999999G",
	    "src: MAX_FILE_SIZE: '99999999999G' is too large");
	set_error("MAX_FILE_SIZE", "99999999999999999999",
	    "src: MAX_FILE_SIZE: '99999999999999999999' is too large");
}

static void test_max_file_size_dump(void **state)
{
	struct config cfg;
	char *text;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "MAX_FILE_SIZE", "1536K", "s", err,
	    sizeof(err)), 0);
	text = dump(&cfg);
	assert_non_null(strstr(text, "MAX_FILE_SIZE = 1536K    # s\n"));
	free(text);
	assert_int_equal(config_set(&cfg, "MAX_FILE_SIZE", "1000", "s", err,
	    sizeof(err)), 0);
	text = dump(&cfg);
	assert_non_null(strstr(text, "MAX_FILE_SIZE = 1000    # s\n"));
	free(text);
	config_free(&cfg);
}

static void test_extensions(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_set(&cfg, "EXTENSIONS", " .JPG, Png ,..webp,"
	    "jxl ", "s", err, sizeof(err)), 0);
	assert_string_equal(cfg.extensions, "jpg,png,webp,jxl");
	assert_int_equal(config_set(&cfg, "EXTENSIONS", "heic", "s", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg.extensions, "heic");
	config_free(&cfg);
	set_error("EXTENSIONS", "jpg,,png", "src: EXTENSIONS: 'jpg,,png' has "
	    "an empty item");
	set_error("EXTENSIONS", "jpg,", "src: EXTENSIONS: 'jpg,' has an empty "
	    "item");
	set_error("EXTENSIONS", "jpg, . ,png", "src: EXTENSIONS: 'jpg, . ,png' "
	    "has an empty item");
	set_error("EXTENSIONS", "jpg,p*g", "src: EXTENSIONS: 'jpg,p*g' has "
	    "'p*g', which is not an extension (letters and digits only)");
	set_error("EXTENSIONS", "tar.gz", "src: EXTENSIONS: 'tar.gz' has "
	    "'tar.gz', which is not an extension (letters and digits only)");
	set_error("EXTENSIONS", "j pg", "src: EXTENSIONS: 'j pg' has 'j pg', "
	    "which is not an extension (letters and digits only)");
	set_error("EXTENSIONS", "", "src: EXTENSIONS: '' is empty (no file "
	    "would be processed)");
}

static void test_background(void **state)
{
	static const struct { const char *in, *want; } ok[] = {
		{ "#FF8000", "255,128,0" }, { "#0a0b0c", "10,11,12" },
		{ " 1, 2 ,3 ", "1,2,3" }, { "0,0,0", "0,0,0" },
		{ "255,255,255", "255,255,255" },
	};
	static const char *const bad[] = { "256,0,0", "#ff80", "#ff80000",
		"1,2", "1,2,3,4", "red", "#gg0000", "-1,2,3", "1,,3" };
	struct config cfg;
	char want[256];
	size_t i;

	(void)state;
	init(&cfg);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_set(&cfg, "BACKGROUND", ok[i].in, "s",
		    err, sizeof(err)), 0);
		assert_string_equal(cfg.background, ok[i].want);
	}
	config_free(&cfg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "src: BACKGROUND: '%s' is not a "
		    "colour (r,g,b each 0..255, or #rrggbb)", bad[i]);
		set_error("BACKGROUND", bad[i], want);
	}
}

/* ---- sources and precedence ---- */

static void test_precedence(void **state)
{
	char *ini = write_temp("workers = 2\ninput_dir = in-ini\n"
	    "batch_size = 8\n");
	char *env = write_temp("THUMBWATCH_WORKERS=3\n"
	    "THUMBWATCH_INPUT_DIR=in-env\n");
	char *envp[] = { "HOME=/root", "THUMBWATCH_WORKERS=4", NULL };
	char want[400];
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini(&cfg, ini, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 2);
	snprintf(want, sizeof(want), "%s:1", ini);
	assert_string_equal(source_of(&cfg, "WORKERS"), want);

	assert_int_equal(config_load_env_file(&cfg, env, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 3);
	snprintf(want, sizeof(want), "%s:1", env);
	assert_string_equal(source_of(&cfg, "WORKERS"), want);

	assert_int_equal(config_load_environ(&cfg, envp, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 4);
	assert_string_equal(source_of(&cfg, "WORKERS"), "environment");

	assert_int_equal(config_set(&cfg, "WORKERS", "5", "command line", err,
	    sizeof(err)), 0);
	assert_int_equal(cfg.workers, 5);
	assert_string_equal(source_of(&cfg, "WORKERS"), "command line");

	/* Each key keeps the last source that set it. */
	assert_string_equal(cfg.input_dir, "in-env");
	snprintf(want, sizeof(want), "%s:2", env);
	assert_string_equal(source_of(&cfg, "INPUT_DIR"), want);
	assert_int_equal(cfg.batch_size, 8);
	snprintf(want, sizeof(want), "%s:3", ini);
	assert_string_equal(source_of(&cfg, "BATCH_SIZE"), want);
	assert_string_equal(source_of(&cfg, "OUTPUT_DIR"), "default");
	config_free(&cfg);
	remove_temp(ini);
	remove_temp(env);
}

static void test_missing_files(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini(&cfg, "/nonexistent/thumbwatch.ini",
	    err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/thumbwatch.ini: cannot open: No "
	    "such file or directory");
	assert_int_equal(config_load_env_file(&cfg, "/nonexistent/.env", err,
	    sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/.env: cannot open"));
	assert_int_equal(config_load_ini(&cfg, "/tmp", err, sizeof(err)),
	    -EISDIR);
	config_free(&cfg);
}

/* ---- INI ---- */

static void test_ini_file_line(void **state)
{
	char *ini = write_temp("# comment\n\n[thumbwatch]\n; off = 1\n"
	    "workers = 2\n\nworkers = abc\n");
	char want[400];
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini(&cfg, ini, err, sizeof(err)),
	    -EINVAL);
	snprintf(want, sizeof(want), "%s:7: WORKERS: 'abc' is not a whole "
	    "number (0..256)", ini);
	assert_string_equal(err, want);
	config_free(&cfg);
	remove_temp(ini);

	/* CRLF, a BOM and the first of two errors. */
	ini_error("\xef\xbb\xbfworkers = 2\r\nbatch_size = x\r\n"
	    "batch_size = y\r\n", "t.ini:2: BATCH_SIZE: 'x' is not a whole "
	    "number (1..1024)");
}

static void test_ini_keys_and_sections(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg,
	    "workers=2\n"
	    "[thumbwatch]\n"
	    "THUMBWATCH_BATCH_SIZE = 9\n"
	    "input_dir = a;b\n"
	    "background = #112233 ; a colour\n"
	    "[preset x]\n"
	    "width=10\n"
	    "[THUMBWATCH]  ; back to the main keys\n"
	    "log_level = warn ; inline comment\n"
	    "output_template: {stem}-{preset}.{ext}\n",
	    "t.ini", err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 2);
	assert_int_equal(cfg.batch_size, 9);
	assert_string_equal(cfg.input_dir, "a;b");
	assert_string_equal(cfg.background, "17,34,51");
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_string_equal(cfg.output_template, "{stem}-{preset}.{ext}");
	assert_string_equal(source_of(&cfg, "LOG_LEVEL"), "t.ini:9");
	assert_int_equal(cfg.npresets, 1);
	assert_string_equal(cfg.presets[0].name, "x");
	config_free(&cfg);
}

/* inih would read an indented line as the previous value's continuation. */
static void test_ini_indented_keys(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg,
	    "[preset a]\n    width = 120\n    height = 80\n"
	    "  [preset b]\n\twidth = 50\n", "t.ini", err, sizeof(err)), 0);
	assert_int_equal(cfg.npresets, 2);
	assert_int_equal(cfg.presets[0].width, 120);
	assert_int_equal(cfg.presets[0].height, 80);
	assert_string_equal(cfg.presets[1].name, "b");
	assert_int_equal(cfg.presets[1].width, 50);
	config_free(&cfg);
}

static void test_ini_syntax_errors(void **state)
{
	char line[400];

	(void)state;
	ini_error("workers = 2\n\njust words\n",
	    "t.ini:3: syntax error: expected key = value");
	ini_error("a ; = 2\n", "t.ini:1: syntax error: expected key = value");
	ini_error("= 2\n", "t.ini:1: syntax error: no key before '='");
	ini_error("[thumbwatch\n",
	    "t.ini:1: syntax error: section header without ']'");
	ini_error("[thumbwatch] junk\n",
	    "t.ini:1: syntax error: text after the section header");
	snprintf(line, sizeof(line), "workers = 1\ninput_dir = %0250d\n", 0);
	ini_error(line, "t.ini:2: line longer than 199 characters; put long "
	    "values in .env or the environment");
}

static void test_ini_unknown_section(void **state)
{
	(void)state;
	ini_error("workers = 1\n[foo]\n", "t.ini:2: [foo]: unknown section "
	    "(expected [thumbwatch] or [preset NAME])");
	ini_error("[presets]\n", "t.ini:1: [presets]: unknown section "
	    "(expected [thumbwatch] or [preset NAME])");
}

static void test_ini_bad_preset_name(void **state)
{
	char text[200], want[300];

	(void)state;
	ini_error("[preset a/b]\nwidth = 1\n", "t.ini:1: [preset a/b]: 'a/b' "
	    "is not a valid preset name (1 to 63 of A-Z a-z 0-9 _ -)");
	ini_error("[preset]\n", "t.ini:1: [preset ]: '' is not a valid preset "
	    "name (1 to 63 of A-Z a-z 0-9 _ -)");
	ini_error("[preset two words]\n", "t.ini:1: [preset two words]: "
	    "'two words' is not a valid preset name (1 to 63 of A-Z a-z 0-9 "
	    "_ -)");
	snprintf(text, sizeof(text), "[preset %064d]\nwidth = 1\n", 0);
	snprintf(want, sizeof(want), "t.ini:1: [preset %064d]: '%064d' is not "
	    "a valid preset name (1 to 63 of A-Z a-z 0-9 _ -)", 0, 0);
	ini_error(text, want);
}

/* 63 characters: longer than inih's 50-byte section buffer. */
static void test_ini_long_preset_name(void **state)
{
	struct config cfg;
	char text[200], name[64];

	(void)state;
	memset(name, 'n', 62);
	name[62] = 'Z';
	name[63] = '\0';
	snprintf(text, sizeof(text), "[preset %s]\nwidth = 64\n", name);
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg, text, "t.ini", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg.presets[0].name, name);
	config_free(&cfg);
}

static void test_ini_duplicate_preset(void **state)
{
	(void)state;
	ini_error("[preset thumb]\nwidth = 1\n\n[preset Thumb]\nwidth = 2\n",
	    "t.ini:4: [preset Thumb]: 'Thumb' is already defined at t.ini:1");
}

static void test_ini_too_many_presets(void **state)
{
	char text[2000], want[200];
	size_t used = 0;
	int i;

	(void)state;
	for (i = 0; i <= CONFIG_MAX_PRESETS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
		    "[preset p%d]\nwidth = %d\n", i, 10 + i);
	snprintf(want, sizeof(want), "t.ini:%d: [preset p%d]: 'p%d' is one "
	    "preset too many (at most %d)", 2 * CONFIG_MAX_PRESETS + 1,
	    CONFIG_MAX_PRESETS, CONFIG_MAX_PRESETS, CONFIG_MAX_PRESETS);
	ini_error(text, want);
}

static void test_ini_preset_needs_size(void **state)
{
	struct config cfg;

	(void)state;
	ini_error("[preset a]\nquality = 50\n",
	    "t.ini:1: [preset a]: needs width or height");
	ini_error("[preset a]\nwidth = 5\n[preset b]\n[preset c]\nwidth = 5\n",
	    "t.ini:3: [preset b]: needs width or height");
	ini_error("[preset a]\nwidth = 5\n[preset b]\n",
	    "t.ini:3: [preset b]: needs width or height");
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg,
	    "[preset w]\nwidth = 120\n[preset h]\nheight = 90\n", "t.ini",
	    err, sizeof(err)), 0);
	assert_int_equal(cfg.presets[0].width, 120);
	assert_int_equal(cfg.presets[0].height, 120);
	assert_int_equal(cfg.presets[1].width, 90);
	assert_int_equal(cfg.presets[1].height, 90);
	config_free(&cfg);
}

static void test_ini_preset_fields(void **state)
{
	struct config cfg;
	struct preset *p;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg,
	    "[preset a]\nWidth = 100\nheight = 50\nfit = crop\n"
	    "gravity = Center\nformat = JPG\nquality = 50\nprogressive = yes\n"
	    "strip = off\n"
	    "[preset b]\nwidth = 10\nfit = fill\ngravity = north-west\n"
	    "format = avif\n"
	    "[preset c]\nwidth = 10\nformat = png\nfit = cover\n"
	    "gravity = attention\n"
	    "[preset d]\nwidth = 10\nformat = webp\nfit = inside\n",
	    "t.ini", err, sizeof(err)), 0);
	assert_int_equal(cfg.npresets, 4);
	p = &cfg.presets[0];
	assert_string_equal(p->source, "t.ini:1");
	assert_int_equal(p->width, 100);
	assert_int_equal(p->height, 50);
	assert_int_equal(p->fit, FIT_COVER);
	assert_string_equal(p->gravity, "centre");
	assert_int_equal(p->format, FORMAT_JPEG);
	assert_int_equal(p->quality, 50);
	assert_true(p->progressive);
	assert_false(p->strip);
	p = &cfg.presets[1];
	assert_int_equal(p->fit, FIT_FILL);
	assert_string_equal(p->gravity, "north-west");
	assert_int_equal(p->format, FORMAT_AVIF);
	assert_int_equal(p->quality, 85);
	assert_false(p->progressive);
	assert_true(p->strip);
	assert_string_equal(p->source, "t.ini:10");
	p = &cfg.presets[2];
	assert_int_equal(p->format, FORMAT_PNG);
	assert_int_equal(p->fit, FIT_COVER);
	assert_string_equal(p->gravity, "attention");
	p = &cfg.presets[3];
	assert_int_equal(p->format, FORMAT_WEBP);
	assert_int_equal(p->fit, FIT_INSIDE);
	config_free(&cfg);

	ini_error("[preset a]\nwidth = 0\n", "t.ini:2: [preset a] width: '0' "
	    "is out of range (1..16384)");
	ini_error("[preset a]\nwidth = 10\nheight = 16385\n", "t.ini:3: "
	    "[preset a] height: '16385' is out of range (1..16384)");
	ini_error("[preset a]\nwidth = 10\nfit = zoom\n", "t.ini:3: [preset a] "
	    "fit: 'zoom' is not one of inside, cover, crop, fill");
	ini_error("[preset a]\nwidth = 10\nformat = gif\n", "t.ini:3: "
	    "[preset a] format: 'gif' is not one of jpeg, jpg, webp, png, "
	    "avif");
	ini_error("[preset a]\nwidth = 10\nquality = 101\n", "t.ini:3: "
	    "[preset a] quality: '101' is out of range (1..100)");
	ini_error("[preset a]\nwidth = 10\nstrip = perhaps\n", "t.ini:3: "
	    "[preset a] strip: 'perhaps' is not a boolean (true/false, yes/no, "
	    "on/off, 1/0)");
	ini_error("[preset a]\nwidth = 10\ngravity = up\n", "t.ini:3: "
	    "[preset a] gravity: 'up' is not one of centre, center, north, "
	    "south, east, west, north-east, south-east, south-west, "
	    "north-west, attention, entropy");
}

static void test_ini_presets_replace_default(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini_string(&cfg, "workers = 1\n",
	    "t.ini", err, sizeof(err)), 0);
	assert_int_equal(cfg.npresets, 1);
	assert_false(cfg.presets_from_file);
	assert_int_equal(config_load_ini_string(&cfg,
	    "[preset big]\nwidth = 1000\n[preset small]\nwidth = 100\n",
	    "t.ini", err, sizeof(err)), 0);
	assert_true(cfg.presets_from_file);
	assert_int_equal(cfg.npresets, 2);
	assert_string_equal(cfg.presets[0].name, "big");
	assert_string_equal(cfg.presets[1].name, "small");
	config_free(&cfg);
}

/* ---- .env ---- */

static void test_env_file_forms(void **state)
{
	char *env = write_temp(
	    "# a comment\n"
	    "export THUMBWATCH_INPUT_DIR=\"/srv/in put\"   # trailing comment\n"
	    "THUMBWATCH_OUTPUT_DIR='/srv/out # not a comment'\n"
	    "THUMBWATCH_LOG_FILE=/var/log/tw.log # comment\n"
	    "OTHER_APP_SETTING=whatever\n"
	    "NOT A VALID LINE AT ALL\n"
	    "THUMBWATCH_BACKGROUND=#102030\n"
	    "  THUMBWATCH_LOG_LEVEL = debug\n"
	    "THUMBWATCH_DONE_DIR=\"a \\\"quoted\\\" \\\\ dir\"\n"
	    "\n"
	    "export\tTHUMBWATCH_WORKERS=3\n"
	    "THUMBWATCH_EXTENSIONS = jpg, png\r\n");
	char want[400];
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_env_file(&cfg, env, err, sizeof(err)), 0);
	assert_string_equal(cfg.input_dir, "/srv/in put");
	assert_string_equal(cfg.output_dir, "/srv/out # not a comment");
	assert_string_equal(cfg.log_file, "/var/log/tw.log");
	assert_string_equal(cfg.background, "16,32,48");
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_string_equal(cfg.done_dir, "a \"quoted\" \\ dir");
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.extensions, "jpg,png");
	snprintf(want, sizeof(want), "%s:2", env);
	assert_string_equal(source_of(&cfg, "INPUT_DIR"), want);
	snprintf(want, sizeof(want), "%s:11", env);
	assert_string_equal(source_of(&cfg, "WORKERS"), want);
	config_free(&cfg);
	remove_temp(env);
}

static void test_env_errors(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_env_string(&cfg,
	    "THUMBWATCH_INPUT_DIR=\"abc\n", ".env", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, ".env:1: INPUT_DIR: value has no closing "
	    "quote");
	assert_int_equal(config_load_env_string(&cfg,
	    "\nthumbwatch_input_dir='abc' x\n", ".env", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, ".env:2: INPUT_DIR: value has text after the "
	    "closing quote");
	assert_int_equal(config_load_env_string(&cfg,
	    "THUMBWATCH_WORKERS 4\n", ".env", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, ".env:1: syntax error: expected "
	    "THUMBWATCH_KEY=value");
	assert_int_equal(config_load_env_string(&cfg,
	    "THUMBWATCH_WORKERS=1\nTHUMBWATCH_BATCH_SIZE=x\n", ".env", err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, ".env:2: BATCH_SIZE: 'x' is not a whole "
	    "number (1..1024)");
	assert_string_equal(cfg.input_dir, "data/input");
	config_free(&cfg);
}

/* Editors on Windows start files with a byte-order mark. */
static void test_env_bom(void **state)
{
	struct config cfg;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_env_string(&cfg,
	    "\xef\xbb\xbfTHUMBWATCH_WORKERS=2\r\n", ".env", err, sizeof(err)),
	    0);
	assert_int_equal(cfg.workers, 2);
	config_free(&cfg);
}

/* A long value is fine in .env, unlike the INI file (inih's 200 bytes). */
static void test_env_long_value(void **state)
{
	char text[1200], dir[1001];
	struct config cfg;

	(void)state;
	memset(dir, 'd', 1000);
	dir[1000] = '\0';
	snprintf(text, sizeof(text), "THUMBWATCH_INPUT_DIR=%s\n", dir);
	init(&cfg);
	assert_int_equal(config_load_env_string(&cfg, text, ".env", err,
	    sizeof(err)), 0);
	assert_string_equal(cfg.input_dir, dir);
	config_free(&cfg);
}

/* ---- fingerprint ---- */

static void test_fingerprint(void **state)
{
	struct config cfg;
	struct preset base, p;
	char fp0[256], fp[256], seen[9][256];
	int i, j;

	(void)state;
	init(&cfg);
	base = cfg.presets[0];
	config_preset_fingerprint(&base, fp0, sizeof(fp0));
	assert_string_equal(fp0,
	    "v1 w=300 h=300 fit=inside g=centre f=jpeg q=85 p=0 s=1");

	/* Name and source do not change pixels. */
	p = base;
	strcpy(p.name, "other");
	strcpy(p.source, "x.ini:9");
	config_preset_fingerprint(&p, fp, sizeof(fp));
	assert_string_equal(fp, fp0);

	strcpy(seen[0], fp0);
	for (i = 1; i <= 8; i++) {
		p = base;
		switch (i) {
		case 1: p.width = 301; break;
		case 2: p.height = 299; break;
		case 3: p.fit = FIT_COVER; break;
		case 4: strcpy(p.gravity, "attention"); break;
		case 5: p.format = FORMAT_WEBP; break;
		case 6: p.quality = 84; break;
		case 7: p.progressive = true; break;
		case 8: p.strip = false; break;
		}
		config_preset_fingerprint(&p, seen[i], sizeof(seen[i]));
		for (j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
	}
	/* width and height are not interchangeable. */
	p = base;
	p.width = 200;
	config_preset_fingerprint(&p, fp, sizeof(fp));
	p = base;
	p.height = 200;
	config_preset_fingerprint(&p, fp0, sizeof(fp0));
	assert_string_not_equal(fp, fp0);
	config_free(&cfg);
}

/* ---- config_finish ---- */

static void finish_error(const char *in, const char *out, const char *done,
    const char *action, const char *want)
{
	struct config cfg;

	init(&cfg);
	assert_int_equal(config_set(&cfg, "INPUT_DIR", in, "s", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "OUTPUT_DIR", out, "s", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "DONE_DIR", done, "s", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&cfg, "SOURCE_ACTION", action, "s", err,
	    sizeof(err)), 0);
	if (want == NULL) {
		assert_int_equal(config_finish(&cfg, 2, err, sizeof(err)), 0);
	} else {
		assert_int_equal(config_finish(&cfg, 2, err, sizeof(err)),
		    -EINVAL);
		assert_string_equal(err, want);
	}
	config_free(&cfg);
}

static void test_finish(void **state)
{
	struct config cfg;
	char cwd[PATH_MAX], abs[PATH_MAX + 32], want[2 * PATH_MAX];

	(void)state;
	init(&cfg);
	assert_int_equal(config_finish(&cfg, 6, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 6);
	config_free(&cfg);
	init(&cfg);
	assert_int_equal(config_finish(&cfg, 0, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 1);
	config_free(&cfg);
	init(&cfg);
	assert_int_equal(config_set(&cfg, "WORKERS", "3", "s", err,
	    sizeof(err)), 0);
	assert_int_equal(config_finish(&cfg, 64, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 3);
	config_free(&cfg);

	finish_error("data/in", "./data//in/", "done", "keep",
	    "config: OUTPUT_DIR: './data//in/' is the same folder as "
	    "INPUT_DIR 'data/in'");
	finish_error("data/in", "data/x/../in", "done", "keep",
	    "config: OUTPUT_DIR: 'data/x/../in' is the same folder as "
	    "INPUT_DIR 'data/in'");
	finish_error("data/out/in", "data/out", "done", "keep",
	    "config: INPUT_DIR: 'data/out/in' is inside OUTPUT_DIR 'data/out'");
	/* The output tree may sit inside the input tree: it is not watched. */
	finish_error("data/in", "data/in/thumbs", "done", "keep", NULL);
	finish_error("data/in", "data/out", "data/in/done", "move",
	    "config: DONE_DIR: 'data/in/done' is inside INPUT_DIR 'data/in', "
	    "so with SOURCE_ACTION=move every moved file would be watched "
	    "again");
	finish_error("data/in", "data/out", "data/in", "move",
	    "config: DONE_DIR: 'data/in' is inside INPUT_DIR 'data/in', "
	    "so with SOURCE_ACTION=move every moved file would be watched "
	    "again");
	finish_error("data/in", "data/out", "data/in/done", "keep", NULL);
	finish_error("data/in", "data/out", "data/in2", "move", NULL);

	/* Relative and absolute spellings of one folder are compared. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(abs, sizeof(abs), "%s/data/in/done", cwd);
	snprintf(want, sizeof(want), "config: DONE_DIR: '%s' is inside "
	    "INPUT_DIR 'data/in', so with SOURCE_ACTION=move every moved file "
	    "would be watched again", abs);
	finish_error("data/in", "data/out", abs, "move", want);
}

/* ---- shipped files ---- */

static void test_sample_env_lists_every_key(void **state)
{
	char *text = slurp("sample.env"), *uncommented, *p;
	char want[400];
	struct config cfg, defaults;
	char *a, *b;
	size_t i;

	(void)state;
	for (i = 0; i < config_nkeys(); i++) {
		snprintf(want, sizeof(want), "\n# THUMBWATCH_%s=%s ",
		    config_key_name(i), config_key_default(i));
		if (strstr(text, want) == NULL)
			fail_msg("sample.env lacks \"%s\"", want + 1);
	}
	/* Switched on, every line must load and mean the default. */
	uncommented = strdup(text);
	assert_non_null(uncommented);
	for (p = uncommented; (p = strstr(p, "\n# THUMBWATCH_")) != NULL; p++)
		memset(p + 1, ' ', 2);
	init(&cfg);
	assert_int_equal(config_load_env_string(&cfg, uncommented,
	    "sample.env", err, sizeof(err)), 0);
	for (i = 0; i < config_nkeys(); i++)
		assert_string_not_equal(cfg.sources[i], "default");
	init(&defaults);
	a = dump_values(&cfg);
	b = dump_values(&defaults);
	assert_string_equal(a, b);
	free(a);
	free(b);
	config_free(&defaults);
	config_free(&cfg);
	free(uncommented);
	free(text);
}

static void test_shipped_ini(void **state)
{
	struct config cfg;
	const struct preset *p;
	size_t i;

	(void)state;
	init(&cfg);
	assert_int_equal(config_load_ini(&cfg, "config/thumbwatch.ini", err,
	    sizeof(err)), 0);
	assert_true(cfg.presets_from_file);
	assert_int_equal(cfg.npresets, 1);
	p = &cfg.presets[0];
	assert_string_equal(p->name, "thumb");
	assert_int_equal(p->width, 300);
	assert_int_equal(p->height, 300);
	assert_int_equal(p->fit, FIT_INSIDE);
	assert_int_equal(p->format, FORMAT_JPEG);
	assert_int_equal(p->quality, 85);
	assert_true(p->strip);
	assert_false(p->progressive);
	assert_non_null(strstr(p->source, "config/thumbwatch.ini:"));
	for (i = 0; i < config_nkeys(); i++)
		assert_string_equal(cfg.sources[i], "default");
	config_free(&cfg);
}

static void test_shipped_ini_uncommented(void **state)
{
	static const struct { const char *name; int w, h; enum fit fit;
	    const char *gravity; enum out_format format; } want[] = {
		{ "thumb", 300, 300, FIT_INSIDE, "centre", FORMAT_JPEG },
		{ "small", 150, 150, FIT_INSIDE, "centre", FORMAT_JPEG },
		{ "medium", 480, 480, FIT_INSIDE, "centre", FORMAT_JPEG },
		{ "large", 600, 600, FIT_INSIDE, "centre", FORMAT_JPEG },
		{ "preview", 1200, 800, FIT_INSIDE, "centre", FORMAT_JPEG },
		{ "square", 400, 400, FIT_COVER, "attention", FORMAT_WEBP },
		{ "banner", 1200, 300, FIT_COVER, "centre", FORMAT_JPEG },
	};
	char *text = slurp("config/thumbwatch.ini");
	char *out = malloc(strlen(text) + 1), *line, *save = NULL, *path;
	struct config cfg, defaults;
	char *a, *b;
	size_t i;

	(void)state;
	assert_non_null(out);
	out[0] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		strcat(out, strncmp(line, "; ", 2) == 0 ? line + 2 : line);
		strcat(out, "\n");
	}
	path = write_temp(out);
	init(&cfg);
	assert_int_equal(config_load_ini(&cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg.npresets, 7);
	for (i = 0; i < 7; i++) {
		assert_string_equal(cfg.presets[i].name, want[i].name);
		assert_int_equal(cfg.presets[i].width, want[i].w);
		assert_int_equal(cfg.presets[i].height, want[i].h);
		assert_int_equal(cfg.presets[i].fit, want[i].fit);
		assert_string_equal(cfg.presets[i].gravity, want[i].gravity);
		assert_int_equal(cfg.presets[i].format, want[i].format);
	}
	/* The commented-out keys show the defaults, and all of them. */
	for (i = 0; i < config_nkeys(); i++)
		if (strncmp(cfg.sources[i], path, strlen(path)) != 0)
			fail_msg("thumbwatch.ini does not show %s",
			    config_key_name(i));
	init(&defaults);
	a = dump_values(&cfg);
	b = dump_values(&defaults);
	/* Only the preset lines may differ: compare up to the first one. */
	*strstr(a, "[preset") = '\0';
	*strstr(b, "[preset") = '\0';
	assert_string_equal(a, b);
	free(a);
	free(b);
	config_free(&defaults);
	config_free(&cfg);
	remove_temp(path);
	free(out);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_table_access),
		cmocka_unit_test(test_defaults_reparse),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_set_names_and_trim),
		cmocka_unit_test(test_set_failure_keeps_value),
		cmocka_unit_test(test_error_bad_int),
		cmocka_unit_test(test_error_out_of_range),
		cmocka_unit_test(test_max_pixels_bounds),
		cmocka_unit_test(test_error_bad_enum),
		cmocka_unit_test(test_error_bad_bool),
		cmocka_unit_test(test_error_unknown_key),
		cmocka_unit_test(test_reload_keeps_restart_keys),
		cmocka_unit_test(
		    test_environ_unknown_names_warn_with_the_closest_key),
		cmocka_unit_test(test_environ_ignores_unprefixed),
		cmocka_unit_test(test_error_bad_template),
		cmocka_unit_test(test_error_too_long),
		cmocka_unit_test(test_max_file_size),
		cmocka_unit_test(test_max_file_size_dump),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_background),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_ini_file_line),
		cmocka_unit_test(test_ini_keys_and_sections),
		cmocka_unit_test(test_ini_indented_keys),
		cmocka_unit_test(test_ini_syntax_errors),
		cmocka_unit_test(test_ini_unknown_section),
		cmocka_unit_test(test_ini_bad_preset_name),
		cmocka_unit_test(test_ini_long_preset_name),
		cmocka_unit_test(test_ini_duplicate_preset),
		cmocka_unit_test(test_ini_too_many_presets),
		cmocka_unit_test(test_ini_preset_needs_size),
		cmocka_unit_test(test_ini_preset_fields),
		cmocka_unit_test(test_ini_presets_replace_default),
		cmocka_unit_test(test_env_file_forms),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_env_bom),
		cmocka_unit_test(test_env_long_value),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_sample_env_lists_every_key),
		cmocka_unit_test(test_shipped_ini),
		cmocka_unit_test(test_shipped_ini_uncommented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
