/*
 * http_upload: POST /upload.  A multipart form (one or more files) or a
 * raw image body goes to INPUT_DIR/.upload-XXXXXX.part (a temp name the
 * watcher ignores), its type sniffed from its first bytes, and is renamed
 * to its final name (a stem of its own) only when the whole request is
 * in; a request that ends any other way unlinks its temps (completed(),
 * in http.c).  Each stored file becomes a job (http_jobs.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "http_int.h"
#include "httputil.h"
#include "json.h"
#include "pathmap.h"

void
upfile_discard(struct upfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp[0])
		unlink(f->tmp);
	f->tmp[0] = '\0';
}

static void
req_fail(struct req *r, int status, const char *msg)
{
	int i;

	if (r->status)
		return;
	r->status = status;
	snprintf(r->error, sizeof(r->error), "%s", msg);
	for (i = 0; i < r->nfiles; i++)
		upfile_discard(&r->files[i]);
	r->cur_open = false;
}

static void
upfile_begin(struct req *r, const char *name)
{
	struct upfile *f;
	int fd;

	if (r->nfiles >= FILES_MAX) {
		req_fail(r, 413, "too many files in one request");
		return;
	}
	f = &r->files[r->nfiles++];
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	snprintf(f->raw, sizeof(f->raw), "%s", name ? name : "");
	if (httputil_sanitize_name(name ? name : "", f->name,
	    sizeof(f->name)) < 0)
		snprintf(f->name, sizeof(f->name), "upload");
	if (pathmap_join(f->tmp, sizeof(f->tmp), r->h->in_root,
	    ".upload-XXXXXX.part") < 0 ||
	    (fd = mkostemps(f->tmp, 5, O_CLOEXEC)) < 0) {
		f->tmp[0] = '\0';
		req_fail(r, 500, "cannot create a file in INPUT_DIR");
		return;
	}
	fchmod(fd, 0644);
	f->fd = fd;
	r->cur_open = true;
}

/* Refuses one file of a request, not the request: its bytes go (the
 * rest of its part is read and dropped) and the answer names it with
 * its reason, while the files before and after it are stored. */
static void
upfile_fail(struct req *r, struct upfile *f, int status, const char *msg)
{
	if (f->status)
		return;
	f->status = status;
	snprintf(f->reason, sizeof(f->reason), "%s", msg);
	upfile_discard(f);
	if (f == &r->files[r->nfiles - 1])
		r->cur_open = false;
}

static void
upfile_sniff(struct req *r, struct upfile *f)
{
	if (f->sniffed)
		return;
	f->sniffed = true;
	f->type = httputil_sniff(f->head, f->headlen);
	if (!httputil_type_enabled(f->type, r->h->cfg->extensions)) {
		upfile_fail(r, f, 415, f->type ? "image type not enabled "
		    "(EXTENSIONS)" : "not an image thumbwatch accepts "
		    "(jpeg, png, webp, gif, tiff, heif, avif, jxl)");
		return;
	}
	if (fs_write_all(f->fd, f->head, f->headlen) < 0)
		req_fail(r, 500, "cannot write to INPUT_DIR");
}

static void
upfile_data(struct req *r, const char *data, size_t size)
{
	struct upfile *f = &r->files[r->nfiles - 1];
	size_t take;

	if (r->status || !r->cur_open)
		return;
	f->bytes += (int64_t)size;
	if (!f->sniffed) {
		take = sizeof(f->head) - f->headlen;
		if (take > size)
			take = size;
		memcpy(f->head + f->headlen, data, take);
		f->headlen += take;
		data += take;
		size -= take;
		if (f->headlen < sizeof(f->head))
			return;
		upfile_sniff(r, f);
		if (r->status || f->status)
			return;
	}
	if (size > 0 && fs_write_all(f->fd, data, size) < 0)
		req_fail(r, 500, "cannot write to INPUT_DIR");
}

static void
upfile_end(struct req *r)
{
	struct upfile *f;

	if (!r->cur_open || r->status)
		return;
	f = &r->files[r->nfiles - 1];
	r->cur_open = false;
	if (f->bytes == 0) {
		upfile_fail(r, f, 415, "empty file");
		return;
	}
	upfile_sniff(r, f);
	if (r->status || f->status)
		return;
	if (close(f->fd) == -1) {
		f->fd = -1;
		req_fail(r, 500, "cannot write to INPUT_DIR");
		return;
	}
	f->fd = -1;
}

static enum MHD_Result
post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct req *r = cls;
	struct upfile *cur;

	(void)kind;
	(void)key;
	(void)content_type;
	(void)transfer_encoding;
	if (filename == NULL || r->status)
		return MHD_YES;		/* a plain field: nothing to keep */
	cur = r->nfiles > 0 ? &r->files[r->nfiles - 1] : NULL;
	if (httputil_new_part(r->cur_open, cur ? cur->bytes : 0,
	    cur ? cur->raw : NULL, filename, off)) {
		upfile_end(r);
		if (r->status)
			return MHD_YES;
		upfile_begin(r, filename);
	}
	if (size > 0)
		upfile_data(r, data, size);
	return MHD_YES;
}

/* Whether name's stem is free in INPUT_DIR: no file of that stem with an
 * enabled extension (any case), so its thumbnails are its own. */
static bool
stem_free(struct http_server *h, const char *stem)
{
	const char *e, *list = h->cfg->extensions;
	char cand[NAME_MAX + 1], abs[PATH_MAX];
	struct stat sb;
	size_t n, k;
	int v;

	for (e = list; *e; e += n + (e[n] == ',')) {
		n = strcspn(e, ",");
		for (v = 0; v < 2; v++) {
			if (snprintf(cand, sizeof(cand), "%s.%.*s", stem, (int)n,
			    e) >= (int)sizeof(cand))
				continue;
			if (v)
				for (k = strlen(stem) + 1; cand[k]; k++)
					if (cand[k] >= 'a' && cand[k] <= 'z')
						cand[k] = (char)(cand[k] - 32);
			if (pathmap_join(abs, sizeof(abs), h->in_root, cand) == 0 &&
			    lstat(abs, &sb) == 0)
				return false;
		}
	}
	return true;
}

/* Renames f into place under a free name.  0 or -errno. */
static int
upfile_store(struct http_server *h, struct upfile *f)
{
	char stem[NAME_MAX + 1], ext[NAME_MAX + 1], name[NAME_MAX + 1];
	char abs[PATH_MAX];
	int k;

	if (!pathmap_ext_allowed(f->name, h->cfg->extensions)) {
		/* The extension decides how it is processed: give it its
		 * content's. */
		size_t l = strlen(f->name);
		if (l + 1 + strlen(f->type) >= sizeof(f->name))
			f->name[sizeof(f->name) - 2 - strlen(f->type)] = '\0';
		strcat(f->name, ".");
		strcat(f->name, f->type);
	}
	pathmap_split(f->name, stem, sizeof(stem), ext, sizeof(ext));
	for (k = 0; k < 10000; k++) {
		char s2[NAME_MAX + 1];
		if (k == 0)
			snprintf(s2, sizeof(s2), "%s", stem);
		else
			snprintf(s2, sizeof(s2), "%.200s-%d", stem, k);
		if (!stem_free(h, s2))
			continue;
		if (snprintf(name, sizeof(name), "%s.%s", s2, ext) >=
		    (int)sizeof(name) || pathmap_is_temp_name(name) ||
		    pathmap_join(abs, sizeof(abs), h->in_root, name) < 0)
			return -ENAMETOOLONG;
		if (renameat2(AT_FDCWD, f->tmp, AT_FDCWD, abs,
		    RENAME_NOREPLACE) == 0) {
			f->tmp[0] = '\0';
			snprintf(f->stored, sizeof(f->stored), "%s", name);
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static void
client_name(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	char a[INET6_ADDRSTRLEN] = "?";

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, a, sizeof(a));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, a, sizeof(a));
	snprintf(out, cap, "%s", a);
}


/* The client's own name of f, for answers about it. */
static const char *
upfile_label(const struct upfile *f)
{
	return f->raw[0] ? f->raw : f->name;
}

/* Answers per file: 202 when every file was stored, 207 (Multi-Status)
 * when some were and some were refused, and when none was the first
 * refused file's status, its error naming it.  Each entry carries its
 * own http_status; a refused one its client name and reason. */
enum MHD_Result
upload_finish(struct req *r, struct MHD_Connection *c)
{
	struct http_server *h = r->h;
	struct upfile *bad = NULL;
	struct json_buf b, *j;
	char num[48], msg[sizeof(r->error) + 160];
	int i, rc, nok = 0;

	if (r->pp) {
		MHD_destroy_post_processor(r->pp);
		r->pp = NULL;
	}
	upfile_end(r);
	if (!r->status && r->nfiles == 0)
		req_fail(r, 400, r->raw ? "empty body" : "no file in the form "
		    "(multipart/form-data with a file field)");
	if (r->status)
		return send_error(c, (unsigned)r->status, r->error);
	json_init(&b);
	json_begin(&b);
	json_open(&b, "files", '[');
	for (i = 0; i < r->nfiles; i++) {
		struct upfile *f = &r->files[i];
		json_open(&b, NULL, '{');
		if (!f->status && (rc = upfile_store(h, f)) < 0) {
			upfile_discard(f);
			f->status = 500;
			snprintf(f->reason, sizeof(f->reason), "cannot store "
			    "in INPUT_DIR: %s", strerror(-rc));
		}
		if (f->status) {
			if (bad == NULL)
				bad = f;
			json_str(&b, "name", upfile_label(f));
			json_int(&b, "http_status", f->status);
			json_str(&b, "reason", f->reason);
			json_close(&b, '}');
			continue;
		}
		nok++;
		f->id = job_new(h, f->stored);
		h->n_uploads++;
		if ((j = log_begin(h->lg, LOG_INFO, "upload")) != NULL) {
			json_str(j, "file", f->stored);
			json_int(j, "bytes", f->bytes);
			json_str(j, "client", r->client);
			json_int(j, "id", (int64_t)f->id);
			log_commit(h->lg);
		}
		/* A string: ids outgrow a double in JavaScript. */
		snprintf(num, sizeof(num), "%" PRIu64, f->id);
		json_str(&b, "id", num);
		json_str(&b, "name", f->stored);
		json_int(&b, "http_status", 202);
		json_int(&b, "bytes", f->bytes);
		json_str(&b, "type", f->type);
		snprintf(num, sizeof(num), "/jobs/%" PRIu64, f->id);
		json_str(&b, "status", num);
		add_urls(h, &b, f->stored, false);
		json_close(&b, '}');
	}
	json_close(&b, ']');
	if (bad != NULL && nok == 0) {
		/* Nothing stored: an error as every other, listing the files
		 * too. */
		snprintf(msg, sizeof(msg), "%.150s: %s", upfile_label(bad),
		    bad->reason);
		json_str(&b, "error", msg);
		json_int(&b, "status", bad->status);
	}
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, bad == NULL ? 202 : nok > 0 ? 207 :
	    (unsigned)bad->status, &b);
}

enum MHD_Result
upload_start(struct http_server *h, struct req *r, struct MHD_Connection *c)
{
	const char *ct, *cl, *name;
	struct conn *k;

	r->upload = true;
	if (h->uploads >= h->cfg->http_max_uploads)
		return send_error(c, 429, "too many uploads at once "
		    "(HTTP_MAX_UPLOADS)");
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Content-Length");
	if (cl && strtoll(cl, NULL, 10) > h->cfg->http_max_upload)
		return send_error(c, 413, "body larger than HTTP_MAX_UPLOAD");
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->pp = MHD_create_post_processor(c, 64 * 1024, post_iter, r);
		if (r->pp == NULL)
			return send_error(c, 400, "malformed multipart body");
	} else if (ct && strncasecmp(ct, "image/", 6) == 0) {
		r->raw = true;
		name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
		    "name");
		upfile_begin(r, name && *name ? name : "upload");
	} else {
		return send_error(c, 415, "send multipart/form-data, or a raw "
		    "body with Content-Type image/* and ?name=");
	}
	client_name(c, r->client, sizeof(r->client));
	h->uploads++;
	r->counted = true;
	if ((k = conn_of(c)) != NULL)
		k->upload = r;		/* its deadline grows with its body */
	return MHD_YES;
}

enum MHD_Result
upload_body(struct http_server *h, struct req *r, const char *data,
    size_t size)
{
	if (r->status)
		return MHD_YES;		/* read and dropped */
	r->total += size;
	h->bytes_in += size;
	if (r->total > (uint64_t)h->cfg->http_max_upload) {
		req_fail(r, 413, "body larger than HTTP_MAX_UPLOAD");
		return MHD_YES;
	}
	if (r->pp) {
		if (MHD_post_process(r->pp, data, size) != MHD_YES)
			req_fail(r, 400, "malformed multipart body");
	} else {
		upfile_data(r, data, size);
	}
	return MHD_YES;
}
