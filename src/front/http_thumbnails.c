/*
 * http_thumbnails: GET /thumbnails/REL, a thumbnail from OUTPUT_DIR
 * (conditional and range requests), and the list of an upload's
 * thumbnail URLs that the upload and job answers carry.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "http_int.h"
#include "httputil.h"
#include "json.h"

void
add_urls(struct http_server *h, struct json_buf *b, const char *rel,
    bool sizes)
{
	char (*outs)[PATH_MAX];
	struct strbuf url;
	struct stat sb;
	int n = 0, i, root = -1;

	outs = calloc(HTTP_MAX_OUTPUTS, PATH_MAX);
	if (outs && h->hooks.outputs)
		n = h->hooks.outputs(h->ud, rel, outs, HTTP_MAX_OUTPUTS);
	/* Sizes as GET /thumbnails would serve them: no symlink followed,
	 * regular files only. */
	if (sizes && n > 0)
		root = beneath_root(h->out_root);
	json_open(b, "thumbnails", '[');
	for (i = 0; i < n; i++) {
		json_open(b, NULL, '{');
		strbuf_init(&url);
		strbuf_add(&url, "/thumbnails/", 12);
		strbuf_url_path(&url, outs[i]);
		if (url.err)
			b->err = url.err;
		else
			json_strn(b, "url", url.buf, url.len);
		strbuf_free(&url);
		if (root >= 0 && beneath_lstat(root, outs[i], &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			json_int(b, "bytes", (int64_t)sb.st_size);
		json_close(b, '}');
	}
	json_close(b, ']');
	if (root >= 0)
		close(root);
	free(outs);
}

static bool
safe_rel(const char *p)
{
	const char *s = p;

	if (!*p)
		return false;
	while (*s) {
		size_t n = strcspn(s, "/");
		if (n == 0 || s[0] == '.')
			return false;	/* "//", "..", dot-files */
		s += n;
		if (*s == '/')
			s++;
		else
			break;
	}
	return p[strlen(p) - 1] != '/';
}

enum MHD_Result
get_thumbnail(struct http_server *h, struct MHD_Connection *c,
    const char *rel)
{
	char etag[96], lm[64], cr[96];
	const char *inm, *ims, *rh, *ir;
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct stat sb;
	uint64_t off = 0, len;
	int root, fd, rg = 0;

	/* Opened beneath OUTPUT_DIR with no symlink at any level (a dropper
	 * can plant links when OUTPUT_DIR is in reach), non-blocking so a
	 * FIFO or a device never stops the loop in open(), and served only
	 * when it is a regular file. */
	if (!safe_rel(rel) || (root = beneath_root(h->out_root)) < 0)
		return send_error(c, 404, "no such thumbnail");
	fd = beneath_open(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	close(root);
	if (fd < 0)
		return send_error(c, 404, "no such thumbnail");
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return send_error(c, 404, "no such thumbnail");
	}
	httputil_etag(etag, sizeof(etag), (uint64_t)sb.st_ino,
	    (int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec * 1000000000 +
	    sb.st_mtim.tv_nsec);
	httputil_http_date(lm, sizeof(lm), sb.st_mtim.tv_sec);
	inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "If-None-Match");
	ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "If-Modified-Since");
	if ((inm && httputil_etag_match(inm, etag)) || (!inm && ims &&
	    httputil_parse_http_date(ims) != (time_t)-1 &&
	    sb.st_mtim.tv_sec <= httputil_parse_http_date(ims))) {
		close(fd);
		r = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "ETag", etag);
		MHD_add_response_header(r, "Last-Modified", lm);
		ret = MHD_queue_response(c, 304, r);
		MHD_destroy_response(r);
		return ret;
	}
	/* One range (a resumed download, a viewer's seek); several are
	 * answered with the whole file, as RFC 9110 allows.  If-Range with
	 * another validator (the file changed since) also gets it whole. */
	len = (uint64_t)sb.st_size;
	rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	ir = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range");
	if (rh != NULL && (ir == NULL || strcmp(ir, etag) == 0 ||
	    strcmp(ir, lm) == 0))
		rg = httputil_parse_range(rh, (uint64_t)sb.st_size, &off, &len);
	if (rg < 0) {
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%lld", (long long)sb.st_size);
		r = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Range", cr);
		MHD_add_response_header(r, "Accept-Ranges", "bytes");
		ret = MHD_queue_response(c, 416, r);
		MHD_destroy_response(r);
		return ret;
	}
	/* MHD sends len bytes from off itself (sendfile where it can). */
	r = MHD_create_response_from_fd_at_offset64(len, fd, off);
	if (r == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
	    httputil_content_type(rel));
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Last-Modified", lm);
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	if (rg > 0) {
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%lld",
		    off, off + len - 1, (long long)sb.st_size);
		MHD_add_response_header(r, "Content-Range", cr);
	}
	ret = MHD_queue_response(c, rg > 0 ? 206 : 200, r);
	MHD_destroy_response(r);
	return ret;
}
