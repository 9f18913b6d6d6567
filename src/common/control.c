/*
 * control: the control socket's line protocol and renderings, shared by
 * the daemon's end (src/front/control_server.c) and the command line's
 * (src/cli/control_client.c).  Pure: no loop, and no I/O but the stat and
 * realpath of a reprocess argument.
 *
 * Why one exchange per connection: the client is a command run by a
 * person or a script; connecting again costs microseconds, and a server
 * that never keeps state between requests cannot be confused by a client
 * that stops halfway.  Why "text" in every response: the server already
 * holds every number; rendering the report there keeps the client to a
 * small scanner for three top-level fields instead of a JSON model, and
 * `status` and `status --json` can never disagree.
 *
 * JSON is written by json.h, the writer of the log and of the HTTP
 * answers, so a file name reads the same in all three.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cluster.h"
#include "control.h"
#include "json.h"
#include "safedir.h"
#include "timeutil.h"

/* Plain text (the report and request lines) goes through json.h's
 * buffer too: one growable buffer, one escaping, one nesting writer. */
static void
out_s(struct json_buf *o, const char *s)
{
	json_raw(o, s, strlen(s));
}

/* ---- requests ---------------------------------------------------------- */

static const char *const cmd_names[] = {
	[CONTROL_STATUS] = "status",
	[CONTROL_REPROCESS] = "reprocess",
	[CONTROL_RETRY_FAILED] = "retry-failed",
};
#define NCMDS (sizeof(cmd_names) / sizeof(cmd_names[0]))

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes word[0..n) into dst (at least n+1 bytes).  0 or -EINVAL. */
static int
decode_word(const char *word, size_t n, char *dst, char *err, size_t errlen)
{
	size_t i, k = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)word[i];
		if (c != '%') {
			dst[k++] = (char)c;
			continue;
		}
		hi = i + 2 < n ? hexval((unsigned char)word[i + 1]) : -1;
		lo = i + 2 < n ? hexval((unsigned char)word[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "bad escape: '%%' must be "
			    "followed by two hex digits");
			return -EINVAL;
		}
		if (hi == 0 && lo == 0) {
			snprintf(err, errlen, "an argument holds an encoded "
			    "NUL byte (%%00)");
			return -EINVAL;
		}
		dst[k++] = (char)(hi << 4 | lo);
		i += 2;
	}
	dst[k] = '\0';
	return 0;
}

void
control_request_free(struct control_request *req)
{
	size_t i;

	if (req->args) {
		for (i = 0; i < req->nargs; i++)
			free(req->args[i]);
		free(req->args);
	}
	req->args = NULL;
	req->nargs = 0;
}

int
control_parse_request(const char *line, size_t len,
    struct control_request *req, char *err, size_t errlen)
{
	const char *p, *end, *w;
	size_t i, nw = 0, cmdlen;
	char **args;
	int rc;

	memset(req, 0, sizeof(*req));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	end = line + len;
	for (p = line; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(err, errlen, "the request holds a raw control "
			    "character (0x%02x); encode it as %%XX", c);
			return -EINVAL;
		}
	}
	/* The command: the first word. */
	for (p = line; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	for (w = p; p < end && *p != ' ' && *p != '\t'; p++)
		;
	cmdlen = (size_t)(p - w);
	if (cmdlen == 0) {
		snprintf(err, errlen, "empty request (status, reprocess "
		    "PATH..., retry-failed)");
		return -EINVAL;
	}
	for (i = 0; i < NCMDS; i++)
		if (strlen(cmd_names[i]) == cmdlen &&
		    memcmp(cmd_names[i], w, cmdlen) == 0)
			break;
	if (i == NCMDS) {
		snprintf(err, errlen, "unknown request '%.*s' (status, "
		    "reprocess PATH..., retry-failed)",
		    (int)(cmdlen > 64 ? 64 : cmdlen), w);
		return -EINVAL;
	}
	req->cmd = (enum control_cmd)i;
	/* Count the arguments, then decode them. */
	for (w = p; w < end; ) {
		while (w < end && (*w == ' ' || *w == '\t'))
			w++;
		if (w == end)
			break;
		nw++;
		while (w < end && *w != ' ' && *w != '\t')
			w++;
	}
	if (req->cmd != CONTROL_REPROCESS && nw > 0) {
		snprintf(err, errlen, "%s takes no arguments", cmd_names[i]);
		return -EINVAL;
	}
	if (req->cmd == CONTROL_REPROCESS && nw == 0) {
		snprintf(err, errlen, "reprocess needs at least one path");
		return -EINVAL;
	}
	if (nw == 0)
		return 0;
	if ((args = calloc(nw, sizeof(*args))) == NULL)
		return -ENOMEM;
	req->args = args;
	for (w = p; w < end && req->nargs < nw; ) {
		const char *s;
		while (w < end && (*w == ' ' || *w == '\t'))
			w++;
		for (s = w; w < end && *w != ' ' && *w != '\t'; w++)
			;
		if ((args[req->nargs] = malloc((size_t)(w - s) + 1)) == NULL) {
			control_request_free(req);
			return -ENOMEM;
		}
		req->nargs++;
		if ((rc = decode_word(s, (size_t)(w - s), args[req->nargs - 1],
		    err, errlen)) < 0) {
			control_request_free(req);
			return rc;
		}
	}
	return 0;
}

int
control_format_request(const char *cmd, char *const *args, size_t nargs,
    bool absolute, char **line)
{
	static const char hex[] = "0123456789ABCDEF";
	char real[PATH_MAX], esc[3];
	struct json_buf o;
	struct stat sb;
	size_t i, k;
	int c = -1;

	*line = NULL;
	for (k = 0; k < NCMDS; k++)
		if (strcmp(cmd, cmd_names[k]) == 0)
			c = (int)k;
	if (c < 0 || (c == CONTROL_REPROCESS) != (nargs > 0))
		return -EINVAL;
	json_init(&o);
	out_s(&o, cmd);
	for (i = 0; i < nargs; i++) {
		const char *a = args[i];
		if (a[0] == '\0') {
			json_free(&o);
			return -EINVAL;
		}
		if (absolute && a[0] != '/' && stat(a, &sb) == 0 &&
		    realpath(a, real) != NULL)
			a = real;
		out_s(&o, " ");
		for (k = 0; a[k]; k++) {
			unsigned char ch = (unsigned char)a[k];
			if (ch <= 0x20 || ch == 0x7f || ch == '%') {
				esc[0] = '%';
				esc[1] = hex[ch >> 4];
				esc[2] = hex[ch & 15];
				json_raw(&o, esc, 3);
			} else {
				json_raw(&o, (const char *)&a[k], 1);
			}
		}
	}
	if (!o.err && o.len > CONTROL_LINE_MAX) {
		json_free(&o);
		return -E2BIG;
	}
	out_s(&o, "\n");
	if (o.err) {
		json_free(&o);
		return -ENOMEM;
	}
	*line = o.buf;
	o.buf = NULL;
	json_free(&o);
	return 0;
}

int
control_socket_path(char *out, size_t cap, const char *runtime_dir)
{
	size_t n = strlen(runtime_dir);
	int w;

	while (n > 1 && runtime_dir[n - 1] == '/')
		n--;
	w = snprintf(out, cap, "%.*s/%s", (int)n, runtime_dir,
	    CONTROL_SOCKET_NAME);
	return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

/* ---- responses (client side scanner) ----------------------------------- */

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* p at '"': returns just past the closing quote, or NULL. */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\') {
			if (++p == end)
				return NULL;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

/* Any value: returns just past it, or NULL. */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;

	p = skip_ws(p, end);
	if (p == end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		const char *s = p;
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			p++;
		return p > s ? p : NULL;
	}
	while (p < end) {
		if (*p == '"') {
			if ((p = skip_string(p, end)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			if (--depth == 0)
				return p + 1;
		p++;
	}
	return NULL;
}

static void
put_utf8(struct json_buf *o, unsigned long cp)
{
	char b[4];

	if (cp < 0x80) {
		b[0] = (char)cp;
		json_raw(o, b, 1);
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3F));
		json_raw(o, b, 2);
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		json_raw(o, b, 3);
	} else {
		b[0] = (char)(0xF0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		json_raw(o, b, 4);
	}
}

static long
hex4(const char *p, const char *end)
{
	long v = 0;
	int i, h;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		if ((h = hexval((unsigned char)p[i])) < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* The string at p ('"'...'"', already delimited by skip_string)
 * unescaped into a malloc'd C string.  NULL on a bad escape or ENOMEM. */
static char *
unescape(const char *p, const char *end)
{
	struct json_buf o;
	long u, lo;

	json_init(&o);
	for (p++, end--; p < end; p++) {
		if (*p != '\\') {
			json_raw(&o, p, 1);
			continue;
		}
		switch (*++p) {
		case '"': out_s(&o, "\""); break;
		case '\\': out_s(&o, "\\"); break;
		case '/': out_s(&o, "/"); break;
		case 'b': out_s(&o, "\b"); break;
		case 'f': out_s(&o, "\f"); break;
		case 'n': out_s(&o, "\n"); break;
		case 'r': out_s(&o, "\r"); break;
		case 't': out_s(&o, "\t"); break;
		case 'u':
			if ((u = hex4(p + 1, end)) < 0)
				goto bad;
			p += 4;
			if (u >= 0xD800 && u <= 0xDBFF && end - p >= 7 &&
			    p[1] == '\\' && p[2] == 'u' &&
			    (lo = hex4(p + 3, end)) >= 0xDC00 && lo <= 0xDFFF) {
				u = 0x10000 + ((u - 0xD800) << 10) +
				    (lo - 0xDC00);
				p += 6;
			} else if (u >= 0xD800 && u <= 0xDFFF) {
				u = 0xFFFD;	/* a lone surrogate */
			}
			if (u == 0)
				u = 0xFFFD;	/* keep it a C string */
			put_utf8(&o, (unsigned long)u);
			break;
		default:
			goto bad;
		}
	}
	if (o.err)
		goto bad;
	if (o.buf == NULL)
		out_s(&o, "");
	if (o.err)
		goto bad;
	return o.buf;
bad:
	json_free(&o);
	return NULL;
}

int
control_parse_response(const char *resp, size_t len, bool *ok, char **text,
    char **error)
{
	const char *p = resp, *end = resp + len, *k, *ke, *v, *ve;
	bool have_ok = false;

	*ok = false;
	*text = *error = NULL;
	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return -EBADMSG;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		goto done;
	while (p < end) {
		if (*p != '"' || (ke = skip_string(p, end)) == NULL)
			goto bad;
		k = p;
		p = skip_ws(ke, end);
		if (p == end || *p != ':')
			goto bad;
		v = skip_ws(p + 1, end);
		if ((ve = skip_value(v, end)) == NULL)
			goto bad;
		if (ke - k == 4 && memcmp(k, "\"ok\"", 4) == 0) {
			if (ve - v == 4 && memcmp(v, "true", 4) == 0)
				*ok = true;
			else if (!(ve - v == 5 && memcmp(v, "false", 5) == 0))
				goto bad;
			have_ok = true;
		} else if (ke - k == 6 && memcmp(k, "\"text\"", 6) == 0 &&
		    *v == '"' && *text == NULL) {
			if ((*text = unescape(v, ve)) == NULL)
				goto bad;
		} else if (ke - k == 7 && memcmp(k, "\"error\"", 7) == 0 &&
		    *v == '"' && *error == NULL) {
			if ((*error = unescape(v, ve)) == NULL)
				goto bad;
		}
		p = skip_ws(ve, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			goto done;
		goto bad;
	}
bad:
	free(*text);
	free(*error);
	*text = *error = NULL;
	*ok = false;
	return -EBADMSG;
done:
	if (!have_ok)
		goto bad;
	return 0;
}

/* ---- recent failures and rates ----------------------------------------- */

void
control_recent_add(struct control_recent *r, int64_t ts_ms,
    const char *file, const char *error)
{
	unsigned i = r->next % CONTROL_RECENT_MAX;

	r->e[i].ts_ms = ts_ms;
	snprintf(r->e[i].file, sizeof(r->e[i].file), "%s", file ? file : "");
	snprintf(r->e[i].error, sizeof(r->e[i].error), "%s",
	    error ? error : "");
	r->next = (i + 1) % CONTROL_RECENT_MAX;
	if (r->n < CONTROL_RECENT_MAX)
		r->n++;
}

void
control_rate_add(struct control_rate *r, uint64_t now_ms, uint64_t n)
{
	/* +1: second 0 must not look like an empty bucket's 0. */
	uint64_t s = now_ms / 1000 + 1;
	unsigned i = (unsigned)(s % 60);

	if (r->sec[i] != s) {
		r->sec[i] = s;
		r->count[i] = 0;
	}
	r->count[i] += n;
}

uint64_t
control_rate_sum(const struct control_rate *r, uint64_t now_ms)
{
	uint64_t s = now_ms / 1000 + 1, sum = 0;
	unsigned i;

	for (i = 0; i < 60; i++)
		if (r->sec[i] != 0 && r->sec[i] <= s && r->sec[i] + 60 > s)
			sum += r->count[i];
	return sum;
}

/* ---- rendering --------------------------------------------------------- */

static void
fmt_duration(char *buf, size_t cap, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, cap, "%lldd %02lldh %02lldm",
		    (long long)(s / 86400), (long long)(s % 86400 / 3600),
		    (long long)(s % 3600 / 60));
	else if (s >= 3600)
		snprintf(buf, cap, "%lldh %02lldm %02llds",
		    (long long)(s / 3600), (long long)(s % 3600 / 60),
		    (long long)(s % 60));
	else if (s >= 60)
		snprintf(buf, cap, "%lldm %02llds", (long long)(s / 60),
		    (long long)(s % 60));
	else
		snprintf(buf, cap, "%llds", (long long)s);
}

static void
fmt_bytes(char *buf, size_t cap, uint64_t b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static const char *
status_state(const struct control_status *st)
{
	return st->draining ? "draining" : st->starting ? "starting" :
	    "running";
}

/* The human report, from the same numbers as the JSON. */
static void
status_text(struct json_buf *t, const struct control_status *st, int64_t now)
{
	char up[48], ts[32], bytes[32];
	const struct control_recent *r = st->recent;
	unsigned i, k;

	fmt_duration(up, sizeof(up), (now - st->started_ms) / 1000);
	fmt_bytes(bytes, sizeof(bytes), st->bytes_out);
	json_printf(t, "thumbwatch %s, pid %ld: %s for %s%s\n", nz(st->version),
	    st->pid, status_state(st), up, st->starting ?
	    " (first scan of the input tree in progress)" : "");
	json_printf(t, "  input     %s (%" PRIu64 " folder%s watched, %s)\n",
	    nz(st->input_dir), st->watched_dirs,
	    st->watched_dirs == 1 ? "" : "s", nz(st->backend));
	json_printf(t, "  output    %s\n", nz(st->output_dir));
	json_printf(t, "  log       %s\n", nz(st->log_file));
	json_printf(t, "  queue     %" PRIu64 " waiting, %" PRIu64 " in work\n",
	    st->queued, st->in_flight);
	json_printf(t, "  workers   %d: %d busy, %d idle, %" PRIu64
	    " restarted\n", st->workers, st->workers_busy, st->workers_idle,
	    st->worker_restarts);
	json_printf(t, "  files     %" PRIu64 " done, %" PRIu64 " failed, %"
	    PRIu64 " skipped since start (%s written)\n", st->done,
	    st->failed, st->skipped, bytes);
	if (st->ignored > 0)
		json_printf(t, "  ignored   %" PRIu64 " file%s with an extension "
		    "not in EXTENSIONS (--log-level debug names them)\n",
		    st->ignored, st->ignored == 1 ? "" : "s");
	json_printf(t, "  last min  %" PRIu64 " done (%.1f/s), %" PRIu64
	    " failed\n", st->done_last_min, (double)st->done_last_min / 60.0,
	    st->failed_last_min);
	if (st->cluster != NULL) {
		const struct cluster_stats *c = st->cluster;

		json_printf(t, "  redis     %s, %s as %s, role %s%s%s\n",
		    c->url, c->up ? "connected" : "DOWN", c->consumer,
		    nz(c->role), c->up || !c->error[0] ? "" : ": ",
		    c->up ? "" : c->error);
		json_printf(t, "  stream    %" PRId64 " entries, %" PRId64
		    " pending, %" PRId64 " consumers, %" PRId64
		    " dead letters\n", c->stream_len, c->pending,
		    c->consumers, c->dead_letters);
		json_printf(t, "  this node %" PRIu64 " queued (%" PRIu64
		    " already queued by another), %" PRIu64 " received (%"
		    PRIu64 " taken over), %" PRIu64 " acknowledged, %" PRIu64
		    " dead-lettered\n", c->enqueued, c->duplicates,
		    c->received, c->reclaimed, c->acked, c->dead);
	}
	if (r == NULL || r->n == 0) {
		out_s(t, "  no failures since start\n");
		return;
	}
	json_printf(t, "  last %u failure%s (newest first):\n", r->n,
	    r->n == 1 ? "" : "s");
	for (k = 0; k < r->n; k++) {
		i = (r->next + CONTROL_RECENT_MAX - 1 - k) % CONTROL_RECENT_MAX;
		json_rfc3339(ts, r->e[i].ts_ms);
		json_printf(t, "    %s  %s: %s\n", ts, r->e[i].file,
		    r->e[i].error);
	}
}

/* "text" last: the data first for whoever reads the line by eye. */
void
control_finish_response(struct json_buf *o, struct json_buf *t)
{
	if (t->err)
		o->err = t->err;
	json_str(o, "text", t->buf ? t->buf : "");
	json_close(o, '}');
	out_s(o, "\n");
}

void
control_render_status(struct json_buf *o, const struct control_status *st)
{
	const struct control_recent *r = st->recent;
	int64_t now = time_wall_ms();
	char ts[32];
	struct json_buf t;
	unsigned i, k;

	json_init(&t);
	status_text(&t, st, now);
	json_open(o, NULL, '{');
	json_bool(o, "ok", true);
	json_str(o, "command", "status");
	json_str(o, "version", nz(st->version));
	json_int(o, "pid", st->pid);
	json_str(o, "mode", nz(st->mode));
	json_str(o, "state", status_state(st));
	json_rfc3339(ts, st->started_ms);
	json_str(o, "started", ts);
	json_int(o, "uptime_s", (now - st->started_ms) / 1000);
	json_str(o, "input_dir", nz(st->input_dir));
	json_str(o, "output_dir", nz(st->output_dir));
	json_str(o, "log_file", nz(st->log_file));
	json_str(o, "backend", nz(st->backend));
	json_u64(o, "watched_dirs", st->watched_dirs);
	json_u64(o, "queued", st->queued);
	json_u64(o, "in_flight", st->in_flight);
	json_int(o, "workers", st->workers);
	json_int(o, "workers_busy", st->workers_busy);
	json_int(o, "workers_idle", st->workers_idle);
	json_u64(o, "worker_restarts", st->worker_restarts);
	json_u64(o, "done", st->done);
	json_u64(o, "failed", st->failed);
	json_u64(o, "skipped", st->skipped);
	json_u64(o, "ignored", st->ignored);
	json_u64(o, "deleted", st->deleted);
	json_u64(o, "moved", st->moved);
	json_u64(o, "bytes_out", st->bytes_out);
	json_open(o, "last_minute", '{');
	json_u64(o, "done", st->done_last_min);
	json_u64(o, "failed", st->failed_last_min);
	json_key(o, "per_s");
	json_printf(o, "%.2f", (double)st->done_last_min / 60.0);
	json_close(o, '}');
	if (st->cluster != NULL) {
		const struct cluster_stats *c = st->cluster;

		json_open(o, "redis", '{');
		json_str(o, "url", nz(c->url));
		json_bool(o, "up", c->up);
		json_str(o, "error", nz(c->error));
		json_str(o, "role", nz(c->role));
		json_str(o, "consumer", nz(c->consumer));
		json_int(o, "stream_length", c->stream_len);
		json_int(o, "pending", c->pending);
		json_int(o, "consumers", c->consumers);
		json_int(o, "dead_letters", c->dead_letters);
		json_u64(o, "enqueued", c->enqueued);
		json_u64(o, "duplicates", c->duplicates);
		json_u64(o, "received", c->received);
		json_u64(o, "reclaimed", c->reclaimed);
		json_u64(o, "acked", c->acked);
		json_u64(o, "dead", c->dead);
		json_close(o, '}');
	}
	json_open(o, "recent_failures", '[');
	for (k = 0; r != NULL && k < r->n; k++) {
		i = (r->next + CONTROL_RECENT_MAX - 1 - k) % CONTROL_RECENT_MAX;
		json_open(o, NULL, '{');
		json_rfc3339(ts, r->e[i].ts_ms);
		json_str(o, "ts", ts);
		json_str(o, "file", r->e[i].file);
		json_str(o, "error", r->e[i].error);
		json_close(o, '}');
	}
	json_close(o, ']');
	control_finish_response(o, &t);
	json_free(&t);
}

void
control_render_error(struct json_buf *o, const char *msg)
{
	struct json_buf t;

	json_init(&t);
	json_printf(&t, "%s\n", msg);
	json_open(o, NULL, '{');
	json_bool(o, "ok", false);
	json_str(o, "error", msg);
	control_finish_response(o, &t);
	json_free(&t);
}

/* ---- the socket -------------------------------------------------------- */

int
control_socket_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* The socket's folder must be out of other users' reach: there they
 * could replace the socket and answer `status` in the daemon's place. */
int
control_socket_dir_check(const char *path, enum safedir_rule rule, char *err,
    size_t errlen)
{
	return safedir_check_parent("RUNTIME_DIR", path, rule, err, errlen);
}
