/*
 * json: the one JSON writer (log lines, HTTP answers, control socket).
 *
 * Pure module.  Strings are escaped per RFC 8259 (quote, backslash, control
 * characters as \n \t or \u00XX); valid UTF-8 passes through; each byte
 * that is not part of valid UTF-8 is written \udcXX (U+DC00 + byte, PEP
 * 383 "surrogateescape"), so every text parses, stays UTF-8, and gives the
 * exact bytes back (Python: os.fsencode(json.loads(...))).  A value never
 * contains a raw newline.
 */
#ifndef THUMBWATCH_JSON_H
#define THUMBWATCH_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 8

struct json_buf {
	char *buf;
	size_t len, cap;
	int err;	/* sticky -ENOMEM (-E2BIG: nested too deep) */
	int depth;	/* open objects and arrays */
	int count[JSON_MAX_DEPTH];	/* members so far, per level */
};

void json_init(struct json_buf *j);
void json_free(struct json_buf *j);
void json_reset(struct json_buf *j);
void json_begin(struct json_buf *j);		/* the outermost "{" */
void json_end(struct json_buf *j);		/* "}" */
/* In every call below key NULL means an array member. */
/* An object ('{') or array ('[') as the value of key; closed by
 * json_close with '}' or ']'. */
void json_open(struct json_buf *j, const char *key, char bracket);
void json_close(struct json_buf *j, char bracket);
/* The separator and "key": of a value the caller appends with json_raw. */
void json_key(struct json_buf *j, const char *key);
void json_str(struct json_buf *j, const char *key, const char *val);
/* val of len bytes (may contain NULs, escaped as \u0000). */
void json_strn(struct json_buf *j, const char *key, const char *val,
    size_t len);
void json_int(struct json_buf *j, const char *key, int64_t val);
void json_u64(struct json_buf *j, const char *key, uint64_t val);
void json_bool(struct json_buf *j, const char *key, int val);
/* Array of strings. */
void json_strv(struct json_buf *j, const char *key, const char *const *v,
    size_t n);
/* Appends val escaped (without quotes) to j; for callers building keys. */
void json_escape(struct json_buf *j, const char *val, size_t len);
/* Appends text as it is (a trailing newline, a preformatted number, or a
 * plain text report built in a json_buf). */
void json_raw(struct json_buf *j, const char *s, size_t n);
void json_printf(struct json_buf *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "2026-11-23T00:19:37.123Z" from a Unix time in milliseconds. */
void json_rfc3339(char out[32], int64_t unix_ms);

#endif
