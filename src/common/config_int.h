/*
 * config_int.h: private to the config module's files in src/common, one
 * job each:
 *   config.c        the key tables, defaults, config_set, the keys a
 *                   reload keeps, the cross-key checks, dump and --help;
 *   config_parse.c  the value of one key: parsing, checking, formatting;
 *   config_load.c   the sources: INI file, .env file, the environment.
 * What they share: the key table's row type and the tables themselves, the
 * value parser and formatter, the key lookups and the small text helpers.
 * include/config.h stays the module's only public face.
 */
#ifndef THUMBWATCH_CONFIG_INT_H
#define THUMBWATCH_CONFIG_INT_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "errfmt.h"

#define PREFIX		"THUMBWATCH_"
#define PREFIX_LEN	(sizeof(PREFIX) - 1)
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

/* The settings and the preset keys (config.c). */
extern const struct keydef keys[];
extern const size_t nkeys;
#define NKEYS	nkeys
extern const struct keydef preset_keys[];
extern const size_t npreset_keys;
#define NPRESET_KEYS	npreset_keys

static inline bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

static inline void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

static inline bool has_prefix(const char *s, size_t len)
{
	return len >= PREFIX_LEN && strncasecmp(s, PREFIX, PREFIX_LEN) == 0;
}

/* config_parse.c */
const char *enum_name(const struct name_value *names, int value);
/* Parses v (already trimmed) as k and stores it in base (a struct config
 * or struct preset) only when it is valid; otherwise says why. */
int parse_value(const struct keydef *k, const char *v, void *base,
    char *why, size_t whylen);
void format_value(const struct keydef *k, const void *base, char *out,
    size_t len);
/* Shared by every key and preset key: trim, parse, say what is wrong in the
 * "<source>: <KEY>: '<value>' <what is wrong>" shape. */
int set_def(const struct keydef *k, void *base, const char *label,
    const char *value, const char *source, char *err, size_t errlen);

/* config.c */
const struct keydef *find_def(const struct keydef *defs, size_t n,
    const char *name);
/* The key as the user should look for it: upper case, without prefix. */
void key_label(const char *key, size_t len, char *out, size_t cap);
int unknown_key(const char *source, const char *key, size_t len,
    char *err, size_t errlen);
void preset_defaults(struct preset *p, const char *name, const char *source);

#endif
