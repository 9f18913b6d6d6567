/*
 * config_load: the sources that fill a config, lowest precedence first.
 *
 * The INI file (inih, fed by a line-counting reader that also tracks the
 * [thumbwatch] and [preset NAME] sections), the .env file and the process
 * environment, where an unknown THUMBWATCH_ name is a warning with the
 * closest key suggested.  Every value goes through config_set (or, in a
 * [preset] section, the preset table), so each source names the file and
 * line of a value it refuses.
 *
 * Pure: neither libuv nor libvips.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

/* Config files are a few kilobytes; a bigger one is a wrong path. */
#define FILE_MAX	(1024 * 1024)

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
		einval(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return rc;
	}
	buf = malloc(FILE_MAX + 1);
	if (buf == NULL) {
		einval(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, FILE_MAX + 1, fp);
	if (ferror(fp)) {
		rc = errno != 0 ? -errno : -EIO;
		einval(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		goto out;
	}
	if (n > FILE_MAX) {
		rc = -EFBIG;
		einval(err, errlen, "%s: larger than %d bytes; not a config "
		    "file?", path, FILE_MAX);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL) {
		rc = einval(err, errlen, "%s: contains a NUL byte; not a config "
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
		return einval(err, errlen, "%s: [preset %s] %.*s: unknown key",
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
		einval(err, errlen, "%s: out of memory", name);
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
		return einval(err, errlen, "%s: syntax error: expected "
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
		rc = einval(err, errlen, "%s: %s: value %s", src, label, why);
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
