/*
 * json: building one JSON object as one line of text.
 *
 * Pure module.  Strings are escaped per RFC 8259 (quote, backslash, control
 * characters as \n \t or \u00XX); bytes that are not valid UTF-8 become
 * U+FFFD so every line parses.  A line never contains a raw newline.
 */
#ifndef THUMBWATCH_JSON_H
#define THUMBWATCH_JSON_H

#include <stddef.h>
#include <stdint.h>

struct json_buf {
	char *buf;
	size_t len, cap;
	int err;	/* sticky -ENOMEM */
	int nfields;	/* fields in the current object */
};

void json_init(struct json_buf *j);
void json_free(struct json_buf *j);
void json_reset(struct json_buf *j);
void json_begin(struct json_buf *j);		/* "{" */
void json_end(struct json_buf *j);		/* "}" */
void json_str(struct json_buf *j, const char *key, const char *val);
/* val of len bytes (may contain NULs, escaped as \u0000). */
void json_strn(struct json_buf *j, const char *key, const char *val,
    size_t len);
void json_int(struct json_buf *j, const char *key, int64_t val);
void json_bool(struct json_buf *j, const char *key, int val);
/* Array of strings. */
void json_strv(struct json_buf *j, const char *key, const char *const *v,
    size_t n);
/* Appends val escaped (without quotes) to j; for callers building keys. */
void json_escape(struct json_buf *j, const char *val, size_t len);
/* "2026-11-23T00:19:37.123Z" from a Unix time in milliseconds. */
void json_rfc3339(char out[32], int64_t unix_ms);

#endif
