/*
 * httputil: the pure parts of the HTTP front door (http.c), kept apart so
 * they are unit-tested without a socket or a loop: the listen address,
 * client-supplied file names, content sniffing by magic bytes, content
 * types, validators (ETag, HTTP dates) and Prometheus text.
 */
#ifndef THUMBWATCH_HTTPUTIL_H
#define THUMBWATCH_HTTPUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* "127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080", "localhost:8080" (as
 * 127.0.0.1).  host gets the numeric address without brackets.  0, or
 * -EINVAL. */
int httputil_parse_listen(const char *s, char *host, size_t hostcap,
    int *port);

/* A client's file name made safe to store in INPUT_DIR: the part after the
 * last '/' or '\\'; control characters, '/', '\\' and leading dots and
 * blanks dropped; at most 200 bytes.  0, or -EINVAL when nothing is left
 * (or it is "..").  out never starts with '.' nor contains "/". */
int httputil_sanitize_name(const char *in, char *out, size_t cap);

/* The image type of a file's first bytes (at least HTTPUTIL_SNIFF_LEN for
 * a verdict): "jpg", "png", "webp", "gif", "tif", "heic", "avif", "jxl",
 * or NULL. */
#define HTTPUTIL_SNIFF_LEN 16
const char *httputil_sniff(const unsigned char *buf, size_t n);

/* Whether a sniffed type is enabled by EXTENSIONS (a comma list; "jpg"
 * also matches "jpeg", "tif" "tiff", "heic" "heif"). */
bool httputil_type_enabled(const char *type, const char *extensions);

/* multipart/form-data bookkeeping (libmicrohttpd's post processor calls
 * back with a part's file name, the offset in that part and some bytes):
 * whether a callback for filename at off starts a new part, given the
 * part being written (open, its byte count and its raw client name).
 * Two parts never merge unless they carry the same name and the first has
 * no byte yet. */
bool httputil_new_part(bool cur_open, int64_t cur_bytes, const char *cur_raw,
    const char *filename, uint64_t off);

/* Whether a bearer token given by a client equals token, in a time that
 * depends only on the length of given. */
bool httputil_token_equal(const char *given, const char *token);
/* Whether the comma list (canonical: no blanks) holds word. */
bool httputil_list_has(const char *list, const char *word);

/* Content-Type for a file name by its extension. */
const char *httputil_content_type(const char *name);

/* "\"<ino>-<size>-<mtime_ns>\"" in hex. */
void httputil_etag(char *out, size_t cap, uint64_t ino, int64_t size,
    int64_t mtime_ns);
/* RFC 7231 IMF-fixdate, and its parser (-1 when unparsable). */
void httputil_http_date(char *out, size_t cap, time_t t);
time_t httputil_parse_http_date(const char *s);
/* Whether an If-None-Match header value lists etag (or is "*"). */
bool httputil_etag_match(const char *header, const char *etag);
/* A Range header against a file of size bytes (RFC 9110 14.2): 1 and
 * the one range asked for (*off, *len) when it is a single satisfiable
 * "bytes=A-B", "bytes=A-" or "bytes=-N"; 0 when the header is to be
 * ignored (not bytes, malformed, or several ranges: the whole file is
 * served); -1 when no byte of it is in the file (416). */
int httputil_parse_range(const char *header, uint64_t size, uint64_t *off,
    uint64_t *len);

/* A growable text buffer (Prometheus text, URLs); JSON is json.h's. */
struct strbuf {
	char *buf;
	size_t len, cap;
	int err;		/* sticky -ENOMEM */
};
void strbuf_init(struct strbuf *b);
void strbuf_free(struct strbuf *b);
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/* path percent-encoded for a URL (unreserved characters and '/' kept). */
void strbuf_url_path(struct strbuf *b, const char *path);

/* Processing-duration histogram (milliseconds) with fixed buckets. */
#define HTTPUTIL_NBUCKETS 12
struct histogram {
	uint64_t count[HTTPUTIL_NBUCKETS];	/* per bucket, not cumulative */
	uint64_t n;
	double sum_s;
};
extern const double httputil_buckets_s[HTTPUTIL_NBUCKETS];
void histogram_observe(struct histogram *h, int64_t ms);

/* Prometheus text exposition (version 0.0.4). */
void prom_metric(struct strbuf *b, const char *name, const char *type,
    const char *help);
void prom_value(struct strbuf *b, const char *name, const char *labels,
    double v);
void prom_histogram(struct strbuf *b, const char *name, const char *help,
    const struct histogram *h);

#endif
