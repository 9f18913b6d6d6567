/*
 * ipc: framing and payload codecs for supervisor <-> worker messages.
 *
 * Owns the wire format described in ipc.h and nothing else: no I/O, no
 * allocation except the writer's growable buffer.  Both sides run every
 * received byte through here, so every reader is bounds-checked against
 * the length it was given and a malformed message is an error value,
 * never a crash or an out-of-bounds read (tests/fuzz/fuzz_ipc.c).
 *
 * Encoders refuse what decoders would refuse (out-of-range enums, strings
 * that are not NUL-terminated inside their field), so anything that encodes
 * also decodes back to the same struct.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static bool
type_known(uint32_t type)
{
	return type >= IPC_HELLO && type < IPC_TYPE_MAX;
}

int
ipc_encode(uint8_t *buf, size_t cap, uint16_t type, uint32_t id,
    const void *payload, size_t len)
{
	if (!type_known(type))
		return -EINVAL;
	if (len > IPC_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (cap < IPC_HDR_SIZE + len)
		return -ENOSPC;
	put_be32(buf, (uint32_t)len);
	put_be16(buf + 4, type);
	put_be16(buf + 6, 0);
	put_be32(buf + 8, id);
	if (len > 0)
		memcpy(buf + IPC_HDR_SIZE, payload, len);
	return (int)(IPC_HDR_SIZE + len);
}

int
ipc_decode(const uint8_t *buf, size_t len, struct ipc_frame *out)
{
	uint32_t plen;
	uint16_t type, flags;

	if (len < IPC_HDR_SIZE)
		return 0;
	plen = get_be32(buf);
	type = get_be16(buf + 4);
	flags = get_be16(buf + 6);
	/* Judged on the header alone, so a bad stream fails before the
	 * receiver buffers a payload that will never be valid. */
	if (plen > IPC_MAX_PAYLOAD || !type_known(type) || flags != 0)
		return -EBADMSG;
	if (len - IPC_HDR_SIZE < plen)
		return 0;
	out->type = type;
	out->id = get_be32(buf + 8);
	out->payload = buf + IPC_HDR_SIZE;
	out->len = plen;
	return (int)(IPC_HDR_SIZE + plen);
}

void
ipc_writer_init(struct ipc_writer *w)
{
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->err = 0;
}

void
ipc_writer_free(struct ipc_writer *w)
{
	free(w->buf);
	ipc_writer_init(w);
}

/* Returns where n more bytes go, or NULL after setting the sticky error. */
static uint8_t *
writer_room(struct ipc_writer *w, size_t n)
{
	size_t cap;
	uint8_t *nb;

	if (w->err != 0)
		return NULL;
	/* A payload that could never be framed is refused while it is
	 * built rather than when ipc_encode sees it. */
	if (n > IPC_MAX_PAYLOAD || w->len > IPC_MAX_PAYLOAD - n) {
		w->err = -EMSGSIZE;
		return NULL;
	}
	if (w->len + n > w->cap) {
		cap = w->cap != 0 ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (nb == NULL) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = nb;
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

void
ipc_put_u8(struct ipc_writer *w, uint8_t v)
{
	uint8_t *p = writer_room(w, 1);

	if (p != NULL)
		*p = v;
}

void
ipc_put_u32(struct ipc_writer *w, uint32_t v)
{
	uint8_t *p = writer_room(w, 4);

	if (p != NULL)
		put_be32(p, v);
}

void
ipc_put_i64(struct ipc_writer *w, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t *p = writer_room(w, 8);

	if (p != NULL) {
		put_be32(p, (uint32_t)(u >> 32));
		put_be32(p + 4, (uint32_t)u);
	}
}

static void
put_bytes(struct ipc_writer *w, const char *s, size_t n)
{
	uint8_t *p;

	if (n > IPC_MAX_PAYLOAD) {
		if (w->err == 0)
			w->err = -EMSGSIZE;
		return;
	}
	ipc_put_u32(w, (uint32_t)n);
	p = writer_room(w, n);
	if (p != NULL && n > 0)
		memcpy(p, s, n);
}

void
ipc_put_str(struct ipc_writer *w, const char *s)
{
	put_bytes(w, s, strlen(s));
}

void
ipc_reader_init(struct ipc_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->left = len;
	r->err = 0;
}

/* Returns n bytes to read and consumes them, or NULL (sticky error). */
static const uint8_t *
reader_take(struct ipc_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err != 0)
		return NULL;
	if (n > r->left) {
		r->err = -EBADMSG;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t
ipc_get_u8(struct ipc_reader *r)
{
	const uint8_t *p = reader_take(r, 1);

	return p != NULL ? *p : 0;
}

uint32_t
ipc_get_u32(struct ipc_reader *r)
{
	const uint8_t *p = reader_take(r, 4);

	return p != NULL ? get_be32(p) : 0;
}

int64_t
ipc_get_i64(struct ipc_reader *r)
{
	const uint8_t *p = reader_take(r, 8);
	uint64_t u;

	if (p == NULL)
		return 0;
	u = (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
	/* Two's complement back to signed without implementation-defined
	 * conversion of values above INT64_MAX. */
	if (u <= (uint64_t)INT64_MAX)
		return (int64_t)u;
	return -(int64_t)(~u) - 1;
}

void
ipc_get_str(struct ipc_reader *r, char *dst, size_t dstlen)
{
	const uint8_t *p;
	uint32_t n;

	if (dstlen > 0)
		dst[0] = '\0';
	n = ipc_get_u32(r);
	if (r->err != 0)
		return;
	/* Checked before taking, so an oversized length cannot make us
	 * skip past bytes that belong to the next field. */
	if (n > r->left || dstlen == 0 || n > dstlen - 1) {
		r->err = -EBADMSG;
		return;
	}
	p = reader_take(r, n);
	if (n > 0 && memchr(p, '\0', n) != NULL) {
		r->err = -EBADMSG;
		return;
	}
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
}

int
ipc_reader_end(struct ipc_reader *r)
{
	if (r->err != 0 || r->left != 0)
		return -EBADMSG;
	return 0;
}

/* A char[] field holds a string only when it is terminated inside it. */
static bool
field_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool
output_ok(const struct ipc_output_spec *o)
{
	return field_ok(o->path, sizeof(o->path)) &&
	    field_ok(o->gravity, sizeof(o->gravity)) &&
	    o->fit <= IPC_FIT_MAX && o->format <= IPC_FORMAT_MAX &&
	    o->progressive <= 1 && o->strip <= 1 &&
	    o->profile <= IPC_PROFILE_MAX;
}

int
ipc_job_encode(struct ipc_writer *w, const struct ipc_job *job)
{
	const struct ipc_output_spec *o;
	uint32_t i;

	if (!field_ok(job->src, sizeof(job->src)) ||
	    !field_ok(job->in_root, sizeof(job->in_root)) ||
	    !field_ok(job->out_root, sizeof(job->out_root)) ||
	    !field_ok(job->background, sizeof(job->background)) ||
	    job->noutputs > IPC_MAX_OUTPUTS)
		return -EINVAL;
	for (i = 0; i < job->noutputs; i++)
		if (!output_ok(&job->outputs[i]))
			return -EINVAL;

	ipc_put_str(w, job->src);
	ipc_put_str(w, job->in_root);
	ipc_put_str(w, job->out_root);
	ipc_put_i64(w, (int64_t)job->src_dev);
	ipc_put_i64(w, (int64_t)job->src_ino);
	ipc_put_i64(w, (int64_t)job->in_root_dev);
	ipc_put_i64(w, (int64_t)job->in_root_ino);
	ipc_put_i64(w, (int64_t)job->out_root_dev);
	ipc_put_i64(w, (int64_t)job->out_root_ino);
	ipc_put_i64(w, job->max_pixels);
	ipc_put_i64(w, job->src_mtime_ns);
	ipc_put_str(w, job->background);
	ipc_put_u32(w, job->noutputs);
	for (i = 0; i < job->noutputs; i++) {
		o = &job->outputs[i];
		ipc_put_str(w, o->path);
		ipc_put_u32(w, o->width);
		ipc_put_u32(w, o->height);
		ipc_put_u8(w, o->fit);
		ipc_put_str(w, o->gravity);
		ipc_put_u8(w, o->format);
		ipc_put_u8(w, o->quality);
		ipc_put_u8(w, o->progressive);
		ipc_put_u8(w, o->strip);
		ipc_put_u8(w, o->profile);
	}
	return w->err;
}

/* On error *job is left zeroed up to where decoding stopped; callers must
 * not use it. */
int
ipc_job_decode(const uint8_t *p, size_t len, struct ipc_job *job)
{
	struct ipc_reader r;
	struct ipc_output_spec *o;
	uint32_t i;

	memset(job, 0, sizeof(*job));
	ipc_reader_init(&r, p, len);
	ipc_get_str(&r, job->src, sizeof(job->src));
	ipc_get_str(&r, job->in_root, sizeof(job->in_root));
	ipc_get_str(&r, job->out_root, sizeof(job->out_root));
	job->src_dev = (uint64_t)ipc_get_i64(&r);
	job->src_ino = (uint64_t)ipc_get_i64(&r);
	job->in_root_dev = (uint64_t)ipc_get_i64(&r);
	job->in_root_ino = (uint64_t)ipc_get_i64(&r);
	job->out_root_dev = (uint64_t)ipc_get_i64(&r);
	job->out_root_ino = (uint64_t)ipc_get_i64(&r);
	job->max_pixels = ipc_get_i64(&r);
	job->src_mtime_ns = ipc_get_i64(&r);
	ipc_get_str(&r, job->background, sizeof(job->background));
	job->noutputs = ipc_get_u32(&r);
	if (job->noutputs > IPC_MAX_OUTPUTS)
		return -EBADMSG;
	for (i = 0; i < job->noutputs && r.err == 0; i++) {
		o = &job->outputs[i];
		ipc_get_str(&r, o->path, sizeof(o->path));
		o->width = ipc_get_u32(&r);
		o->height = ipc_get_u32(&r);
		o->fit = ipc_get_u8(&r);
		ipc_get_str(&r, o->gravity, sizeof(o->gravity));
		o->format = ipc_get_u8(&r);
		o->quality = ipc_get_u8(&r);
		o->progressive = ipc_get_u8(&r);
		o->strip = ipc_get_u8(&r);
		o->profile = ipc_get_u8(&r);
		if (r.err == 0 && !output_ok(o))
			return -EBADMSG;
	}
	return ipc_reader_end(&r);
}

int
ipc_result_encode(struct ipc_writer *w, const struct ipc_result *res)
{
	if (res->status > IPC_REPLACED ||
	    !field_ok(res->error, sizeof(res->error)) ||
	    res->noutputs > IPC_MAX_OUTPUTS)
		return -EINVAL;
	ipc_put_u8(w, res->status);
	ipc_put_u32(w, res->ms);
	ipc_put_u32(w, res->src_width);
	ipc_put_u32(w, res->src_height);
	ipc_put_str(w, res->error);
	ipc_put_u32(w, res->noutputs);
	ipc_put_i64(w, res->out_bytes);
	return w->err;
}

int
ipc_result_decode(const uint8_t *p, size_t len, struct ipc_result *res)
{
	struct ipc_reader r;

	memset(res, 0, sizeof(*res));
	ipc_reader_init(&r, p, len);
	res->status = ipc_get_u8(&r);
	res->ms = ipc_get_u32(&r);
	res->src_width = ipc_get_u32(&r);
	res->src_height = ipc_get_u32(&r);
	ipc_get_str(&r, res->error, sizeof(res->error));
	res->noutputs = ipc_get_u32(&r);
	res->out_bytes = ipc_get_i64(&r);
	if (r.err == 0 &&
	    (res->status > IPC_REPLACED || res->noutputs > IPC_MAX_OUTPUTS))
		return -EBADMSG;
	return ipc_reader_end(&r);
}
