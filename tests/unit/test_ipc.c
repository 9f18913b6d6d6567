/*
 * Unit tests of src/common/ipc.c: frame header encoding and decoding, the payload
 * reader/writer, and the job/result codecs, including every class of
 * malformed input a confused or compromised peer could send.
 */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

/* A job that uses every field, with 16 outputs and extreme values. */
static struct ipc_job *
make_job(void)
{
	struct ipc_job *job = calloc(1, sizeof(*job));
	uint32_t i;

	assert_non_null(job);
	memset(job->src, 'a', sizeof(job->src) - 1);	/* longest path */
	job->src[0] = '/';
	memset(job->in_root, 'i', sizeof(job->in_root) - 1);
	strcpy(job->out_root, "/out");
	job->src_dev = UINT64_MAX;
	job->src_ino = (uint64_t)1 << 63;
	job->in_root_dev = 1;
	job->in_root_ino = 2;
	job->out_root_dev = 3;
	job->out_root_ino = UINT64_MAX - 1;
	job->max_pixels = INT64_MAX;
	job->src_mtime_ns = INT64_MIN;
	strcpy(job->background, "#ffffff");
	job->noutputs = IPC_MAX_OUTPUTS;
	for (i = 0; i < IPC_MAX_OUTPUTS; i++) {
		struct ipc_output_spec *o = &job->outputs[i];

		snprintf(o->path, sizeof(o->path),
		    "/out/dir with space/\"q\"\n\xff_%u.jpg", i);
		o->width = 100 + i;
		o->height = UINT32_MAX - i;
		o->fit = (uint8_t)(i % 3);
		strcpy(o->gravity, i % 2 ? "attention" : "centre");
		o->format = (uint8_t)(i % 4);
		o->quality = (uint8_t)(i + 80);
		o->progressive = (uint8_t)(i % 2);
		o->strip = (uint8_t)((i + 1) % 2);
		o->profile = (uint8_t)(i % 2);
	}
	return job;
}

static void
assert_jobs_equal(const struct ipc_job *a, const struct ipc_job *b)
{
	uint32_t i;

	assert_string_equal(a->src, b->src);
	assert_string_equal(a->in_root, b->in_root);
	assert_string_equal(a->out_root, b->out_root);
	assert_true(a->src_dev == b->src_dev);
	assert_true(a->src_ino == b->src_ino);
	assert_true(a->in_root_dev == b->in_root_dev);
	assert_true(a->in_root_ino == b->in_root_ino);
	assert_true(a->out_root_dev == b->out_root_dev);
	assert_true(a->out_root_ino == b->out_root_ino);
	assert_true(a->max_pixels == b->max_pixels);
	assert_true(a->src_mtime_ns == b->src_mtime_ns);
	assert_string_equal(a->background, b->background);
	assert_int_equal(a->noutputs, b->noutputs);
	for (i = 0; i < a->noutputs; i++) {
		const struct ipc_output_spec *x = &a->outputs[i];
		const struct ipc_output_spec *y = &b->outputs[i];

		assert_string_equal(x->path, y->path);
		assert_int_equal(x->width, y->width);
		assert_int_equal(x->height, y->height);
		assert_int_equal(x->fit, y->fit);
		assert_string_equal(x->gravity, y->gravity);
		assert_int_equal(x->format, y->format);
		assert_int_equal(x->quality, y->quality);
		assert_int_equal(x->progressive, y->progressive);
		assert_int_equal(x->strip, y->strip);
		assert_int_equal(x->profile, y->profile);
	}
}

static void
make_header(uint8_t *h, uint32_t len, uint16_t type, uint16_t flags,
    uint32_t id)
{
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
	h[4] = (uint8_t)(type >> 8);
	h[5] = (uint8_t)type;
	h[6] = (uint8_t)(flags >> 8);
	h[7] = (uint8_t)flags;
	h[8] = (uint8_t)(id >> 24);
	h[9] = (uint8_t)(id >> 16);
	h[10] = (uint8_t)(id >> 8);
	h[11] = (uint8_t)id;
}

static void
test_encode_header_is_big_endian(void **state)
{
	uint8_t buf[32];
	const uint8_t want[] = { 0, 0, 0, 3, 0, 2, 0, 0, 0x01, 0x02, 0x03,
	    0x04, 'a', 'b', 'c' };
	int n;

	(void)state;
	n = ipc_encode(buf, sizeof(buf), IPC_JOB, 0x01020304, "abc", 3);
	assert_int_equal(n, 15);
	assert_memory_equal(buf, want, sizeof(want));
}

static void
test_encode_errors(void **state)
{
	uint8_t buf[64];
	static uint8_t big[IPC_MAX_PAYLOAD + 1];

	(void)state;
	assert_int_equal(ipc_encode(buf, sizeof(buf), 0, 1, NULL, 0),
	    -EINVAL);
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_TYPE_MAX, 1, NULL,
	    0), -EINVAL);
	assert_int_equal(ipc_encode(buf, sizeof(buf), IPC_HELLO, 1, big,
	    sizeof(big)), -EMSGSIZE);
	/* cap one short of header + payload */
	assert_int_equal(ipc_encode(buf, IPC_HDR_SIZE + 3, IPC_HELLO, 1,
	    "abcd", 4), -ENOSPC);
	assert_int_equal(ipc_encode(buf, IPC_HDR_SIZE - 1, IPC_HELLO, 1,
	    NULL, 0), -ENOSPC);
	assert_int_equal(ipc_encode(buf, IPC_HDR_SIZE, IPC_HELLO, 1, NULL,
	    0), IPC_HDR_SIZE);
}

static void
test_decode_roundtrip_every_type(void **state)
{
	uint8_t buf[64];
	struct ipc_frame f;
	uint16_t t;
	int n;

	(void)state;
	for (t = IPC_HELLO; t < IPC_TYPE_MAX; t++) {
		n = ipc_encode(buf, sizeof(buf), t, 0xfffffffe, "xyz", 3);
		assert_int_equal(n, IPC_HDR_SIZE + 3);
		memset(&f, 0, sizeof(f));
		assert_int_equal(ipc_decode(buf, (size_t)n, &f), n);
		assert_int_equal(f.type, t);
		assert_int_equal(f.id, 0xfffffffe);
		assert_int_equal(f.len, 3);
		assert_ptr_equal(f.payload, buf + IPC_HDR_SIZE);
		assert_memory_equal(f.payload, "xyz", 3);
	}
}

static void
test_decode_max_payload_accepted(void **state)
{
	uint8_t *buf = calloc(1, IPC_HDR_SIZE + IPC_MAX_PAYLOAD);
	struct ipc_frame f;

	(void)state;
	assert_non_null(buf);
	make_header(buf, IPC_MAX_PAYLOAD, IPC_RESULT, 0, 7);
	assert_int_equal(ipc_decode(buf, IPC_HDR_SIZE + IPC_MAX_PAYLOAD, &f),
	    IPC_HDR_SIZE + IPC_MAX_PAYLOAD);
	/* one byte short: still waiting, not an error */
	assert_int_equal(ipc_decode(buf, IPC_HDR_SIZE + IPC_MAX_PAYLOAD - 1,
	    &f), 0);
	free(buf);
}

static void
test_decode_malformed_headers(void **state)
{
	uint8_t h[IPC_HDR_SIZE + 4] = { 0 };
	struct ipc_frame f;

	(void)state;
	make_header(h, 0, 0, 0, 1);			/* type 0 */
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, 0, IPC_TYPE_MAX, 0, 1);		/* first unknown */
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, 0, 0xffff, 0, 1);
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, 0, 0x0102, 0, 1);	/* little-endian IPC_JOB */
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, 0, IPC_JOB, 1, 1);		/* flags */
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, 0, IPC_JOB, 0x8000, 1);
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, IPC_MAX_PAYLOAD + 1, IPC_JOB, 0, 1);	/* length */
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	make_header(h, UINT32_MAX, IPC_JOB, 0, 1);
	assert_int_equal(ipc_decode(h, sizeof(h), &f), -EBADMSG);
	/* a bad header is rejected before its payload arrives */
	make_header(h, 4, IPC_JOB, 2, 1);
	assert_int_equal(ipc_decode(h, IPC_HDR_SIZE, &f), -EBADMSG);
	/* and a good one is fine */
	make_header(h, 4, IPC_JOB, 0, 1);
	assert_int_equal(ipc_decode(h, sizeof(h), &f), IPC_HDR_SIZE + 4);
}

/* Bytes arriving one read at a time: decode says "need more" (0) until
 * the last byte is there, and never reads past what it was given (ASan
 * checks this: each prefix is copied into an exactly-sized allocation). */
static void
test_decode_split_across_reads(void **state)
{
	uint8_t frame[IPC_HDR_SIZE + 5];
	struct ipc_frame f;
	size_t i;
	int n;

	(void)state;
	n = ipc_encode(frame, sizeof(frame), IPC_RESULT, 42, "hello", 5);
	assert_int_equal(n, (int)sizeof(frame));
	for (i = 0; i < sizeof(frame); i++) {
		uint8_t *part = malloc(i > 0 ? i : 1);

		assert_non_null(part);
		memcpy(part, frame, i);
		assert_int_equal(ipc_decode(part, i, &f), 0);
		free(part);
	}
	assert_int_equal(ipc_decode(frame, sizeof(frame), &f), n);
	assert_int_equal(f.id, 42);
	assert_memory_equal(f.payload, "hello", 5);
}

static void
test_decode_two_frames_back_to_back(void **state)
{
	uint8_t buf[128];
	struct ipc_frame f;
	int a, b, n;

	(void)state;
	a = ipc_encode(buf, sizeof(buf), IPC_HELLO, 1, "\0\0\0\x07", 4);
	assert_true(a > 0);
	b = ipc_encode(buf + a, sizeof(buf) - (size_t)a, IPC_JOB, 2, NULL, 0);
	assert_true(b > 0);
	/* plus the first 3 bytes of a third frame */
	assert_true(ipc_encode(buf + a + b, sizeof(buf) - (size_t)(a + b),
	    IPC_RESULT, 3, "zz", 2) > 0);

	n = ipc_decode(buf, (size_t)(a + b + 3), &f);
	assert_int_equal(n, a);
	assert_int_equal(f.type, IPC_HELLO);
	assert_int_equal(f.id, 1);
	assert_int_equal(f.len, 4);
	n = ipc_decode(buf + a, (size_t)(b + 3), &f);
	assert_int_equal(n, b);
	assert_int_equal(f.type, IPC_JOB);
	assert_int_equal(f.id, 2);
	assert_int_equal(f.len, 0);
	assert_int_equal(ipc_decode(buf + a + b, 3, &f), 0);
}

static void
test_writer_reader_primitives(void **state)
{
	struct ipc_writer w;
	struct ipc_reader r;
	char s[8];
	const uint8_t want[] = { 0x7f, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 2, 'h', 'i', 0, 0, 0,
	    0 };

	(void)state;
	ipc_writer_init(&w);
	ipc_put_u8(&w, 0x7f);
	ipc_put_u32(&w, 0xdeadbeef);
	ipc_put_i64(&w, -2);
	ipc_put_str(&w, "hi");
	ipc_put_str(&w, "");
	assert_int_equal(w.err, 0);
	assert_int_equal(w.len, sizeof(want));
	assert_memory_equal(w.buf, want, sizeof(want));

	ipc_reader_init(&r, w.buf, w.len);
	assert_int_equal(ipc_get_u8(&r), 0x7f);
	assert_int_equal(ipc_get_u32(&r), 0xdeadbeef);
	assert_true(ipc_get_i64(&r) == -2);
	ipc_get_str(&r, s, sizeof(s));
	assert_string_equal(s, "hi");
	ipc_get_str(&r, s, sizeof(s));
	assert_string_equal(s, "");
	assert_int_equal(ipc_reader_end(&r), 0);
	ipc_writer_free(&w);
	assert_null(w.buf);
}

static void
test_i64_extremes(void **state)
{
	const int64_t vals[] = { INT64_MIN, INT64_MIN + 1, -1, 0, 1,
	    INT64_MAX };
	struct ipc_writer w;
	struct ipc_reader r;
	size_t i;

	(void)state;
	ipc_writer_init(&w);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		ipc_put_i64(&w, vals[i]);
	ipc_reader_init(&r, w.buf, w.len);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		assert_true(ipc_get_i64(&r) == vals[i]);
	assert_int_equal(ipc_reader_end(&r), 0);
	ipc_writer_free(&w);
}

static void
test_reader_errors_are_sticky(void **state)
{
	const uint8_t p[] = { 0, 0, 0, 9, 'a', 'b', 1, 2, 3, 4, 5, 6, 7, 8 };
	struct ipc_reader r;
	char s[4] = "xyz";

	(void)state;
	/* short read */
	ipc_reader_init(&r, p, 3);
	assert_int_equal(ipc_get_u32(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	assert_int_equal(ipc_get_u8(&r), 0);	/* no-op even though 3 left */
	ipc_get_str(&r, s, sizeof(s));
	assert_string_equal(s, "");
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);

	/* trailing bytes */
	ipc_reader_init(&r, p, sizeof(p));
	(void)ipc_get_u32(&r);
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);

	/* string longer than what is left: nothing is skipped */
	ipc_reader_init(&r, p, sizeof(p));
	ipc_get_str(&r, s, sizeof(s));
	assert_int_equal(r.err, -EBADMSG);
	assert_int_equal(r.left, sizeof(p) - 4);
	assert_true(ipc_get_i64(&r) == 0);
}

static void
test_reader_strings(void **state)
{
	struct ipc_writer w;
	struct ipc_reader r;
	char s[4];
	const uint8_t nul[] = { 0, 0, 0, 3, 'a', 0, 'b' };
	const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 'a' };

	(void)state;
	/* fits exactly: 3 bytes + NUL in 4 */
	ipc_writer_init(&w);
	ipc_put_str(&w, "abc");
	ipc_reader_init(&r, w.buf, w.len);
	ipc_get_str(&r, s, sizeof(s));
	assert_int_equal(ipc_reader_end(&r), 0);
	assert_string_equal(s, "abc");
	ipc_writer_free(&w);

	/* one byte too long for the destination */
	ipc_writer_init(&w);
	ipc_put_str(&w, "abcd");
	ipc_reader_init(&r, w.buf, w.len);
	ipc_get_str(&r, s, sizeof(s));
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);
	assert_string_equal(s, "");
	ipc_writer_free(&w);

	/* embedded NUL */
	ipc_reader_init(&r, nul, sizeof(nul));
	ipc_get_str(&r, s, sizeof(s));
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);

	/* absurd length */
	ipc_reader_init(&r, huge, sizeof(huge));
	ipc_get_str(&r, s, sizeof(s));
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);

	/* zero-sized destination cannot hold even "" */
	ipc_reader_init(&r, (const uint8_t *)"\0\0\0\0", 4);
	ipc_get_str(&r, s, 0);
	assert_int_equal(ipc_reader_end(&r), -EBADMSG);
}

static void
test_writer_refuses_oversize(void **state)
{
	struct ipc_writer w;
	char *big = malloc(IPC_MAX_PAYLOAD + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', IPC_MAX_PAYLOAD);
	big[IPC_MAX_PAYLOAD] = '\0';
	ipc_writer_init(&w);
	ipc_put_str(&w, big);	/* 4 + MAX bytes: one frame too many */
	assert_int_equal(w.err, -EMSGSIZE);
	ipc_put_u8(&w, 1);	/* sticky */
	assert_int_equal(w.err, -EMSGSIZE);
	ipc_writer_free(&w);
	free(big);
}

static void
test_job_roundtrip_16_outputs(void **state)
{
	struct ipc_job *job = make_job(), *back = calloc(1, sizeof(*back));
	struct ipc_writer w;
	uint8_t *frame;
	struct ipc_frame f;
	int n;

	(void)state;
	assert_non_null(back);
	ipc_writer_init(&w);
	assert_int_equal(ipc_job_encode(&w, job), 0);
	/* through a real frame, as the pool sends it */
	frame = malloc(IPC_HDR_SIZE + w.len);
	assert_non_null(frame);
	n = ipc_encode(frame, IPC_HDR_SIZE + w.len, IPC_JOB, 9, w.buf, w.len);
	assert_int_equal(n, (int)(IPC_HDR_SIZE + w.len));
	assert_int_equal(ipc_decode(frame, (size_t)n, &f), n);
	assert_int_equal(ipc_job_decode(f.payload, f.len, back), 0);
	assert_jobs_equal(job, back);
	free(frame);
	ipc_writer_free(&w);
	free(job);
	free(back);
}

static void
test_job_zero_outputs(void **state)
{
	struct ipc_job *job = calloc(1, sizeof(*job));
	struct ipc_job *back = calloc(1, sizeof(*back));
	struct ipc_writer w;

	(void)state;
	assert_non_null(job);
	assert_non_null(back);
	strcpy(job->src, "/in/a.jpg");
	ipc_writer_init(&w);
	assert_int_equal(ipc_job_encode(&w, job), 0);
	assert_int_equal(ipc_job_decode(w.buf, w.len, back), 0);
	assert_jobs_equal(job, back);
	ipc_writer_free(&w);
	free(job);
	free(back);
}

static void
test_result_roundtrip(void **state)
{
	struct ipc_result res, back;
	struct ipc_writer w;
	uint8_t status;

	(void)state;
	for (status = IPC_OK; status <= IPC_FAILED; status++) {
		memset(&res, 0, sizeof(res));
		res.status = status;
		res.ms = UINT32_MAX;
		res.src_width = 5120;
		res.src_height = 2880;
		memset(res.error, 'e', sizeof(res.error) - 1);
		res.noutputs = IPC_MAX_OUTPUTS;
		res.out_bytes = INT64_MIN;
		ipc_writer_init(&w);
		assert_int_equal(ipc_result_encode(&w, &res), 0);
		assert_int_equal(ipc_result_decode(w.buf, w.len, &back), 0);
		assert_int_equal(back.status, res.status);
		assert_int_equal(back.ms, res.ms);
		assert_int_equal(back.src_width, res.src_width);
		assert_int_equal(back.src_height, res.src_height);
		assert_string_equal(back.error, res.error);
		assert_int_equal(back.noutputs, res.noutputs);
		assert_true(back.out_bytes == res.out_bytes);
		ipc_writer_free(&w);
	}
}

/* Every strict prefix of a valid payload is -EBADMSG, and so is the
 * payload with one trailing byte; each prefix sits in an allocation of
 * exactly its size so ASan catches any read past len. */
static int
decode_copy(const uint8_t *p, size_t n, size_t alloc, bool job)
{
	struct ipc_job *jb = calloc(1, sizeof(*jb));
	struct ipc_result rs;
	uint8_t *copy = calloc(1, alloc > 0 ? alloc : 1);
	int rc;

	assert_non_null(jb);
	assert_non_null(copy);
	memcpy(copy, p, n);
	rc = job ? ipc_job_decode(copy, alloc, jb) :
	    ipc_result_decode(copy, alloc, &rs);
	free(copy);
	free(jb);
	return rc;
}

static void
check_prefixes(const uint8_t *p, size_t len, bool job)
{
	size_t i;
	int rc;

	assert_int_equal(decode_copy(p, len, len, job), 0);
	for (i = 0; i < len; i++) {
		rc = decode_copy(p, i, i, job);
		if (rc != -EBADMSG)
			fail_msg("prefix %zu of %zu decoded to %d", i, len, rc);
	}
	assert_int_equal(decode_copy(p, len, len + 1, job), -EBADMSG);
}

static void
test_job_truncated_at_every_length(void **state)
{
	struct ipc_job *job = make_job();
	struct ipc_writer w;
	uint32_t i;

	(void)state;
	/* short strings keep the loop quick while still having every field */
	strcpy(job->src, "/in/s.png");
	for (i = 0; i < job->noutputs; i++)
		snprintf(job->outputs[i].path, 32, "/o/%u.jpg", i);
	job->noutputs = 3;
	ipc_writer_init(&w);
	assert_int_equal(ipc_job_encode(&w, job), 0);
	check_prefixes(w.buf, w.len, true);
	ipc_writer_free(&w);
	free(job);
}

static void
test_result_truncated_at_every_length(void **state)
{
	struct ipc_result res;
	struct ipc_writer w;

	(void)state;
	memset(&res, 0, sizeof(res));
	res.status = IPC_FAILED;
	strcpy(res.error, "truncated JPEG");
	ipc_writer_init(&w);
	assert_int_equal(ipc_result_encode(&w, &res), 0);
	check_prefixes(w.buf, w.len, false);
	ipc_writer_free(&w);
}

/* A job payload written field by field with the helpers, so single fields
 * can be made invalid; the profile byte comes from crafted_profile. */
static uint8_t crafted_profile;
static void
craft_job(struct ipc_writer *w, uint32_t noutputs, uint32_t written,
    uint8_t fit, uint8_t format, uint8_t progressive, uint8_t strip,
    const char *gravity)
{
	uint32_t i;

	ipc_writer_init(w);
	ipc_put_str(w, "/in/a.jpg");
	ipc_put_str(w, "/in");
	ipc_put_str(w, "/out");
	ipc_put_i64(w, 7);	/* src_dev */
	ipc_put_i64(w, 42);	/* src_ino */
	ipc_put_i64(w, 0);	/* the roots' dev and ino: unchecked */
	ipc_put_i64(w, 0);
	ipc_put_i64(w, 0);
	ipc_put_i64(w, 0);
	ipc_put_i64(w, 100000000);
	ipc_put_i64(w, 1700000000000000000);
	ipc_put_str(w, "255,255,255");
	ipc_put_u32(w, noutputs);
	for (i = 0; i < written; i++) {
		ipc_put_str(w, "/out/a_thumb.jpg");
		ipc_put_u32(w, 300);
		ipc_put_u32(w, 300);
		ipc_put_u8(w, fit);
		ipc_put_str(w, gravity);
		ipc_put_u8(w, format);
		ipc_put_u8(w, 85);
		ipc_put_u8(w, progressive);
		ipc_put_u8(w, strip);
		ipc_put_u8(w, crafted_profile);
	}
	assert_int_equal(w->err, 0);
}

static int
decode_crafted(uint32_t noutputs, uint32_t written, uint8_t fit,
    uint8_t format, uint8_t progressive, uint8_t strip, const char *gravity)
{
	struct ipc_job *job = calloc(1, sizeof(*job));
	struct ipc_writer w;
	int rc;

	assert_non_null(job);
	craft_job(&w, noutputs, written, fit, format, progressive, strip,
	    gravity);
	rc = ipc_job_decode(w.buf, w.len, job);
	ipc_writer_free(&w);
	free(job);
	return rc;
}

static void
test_job_field_validation(void **state)
{
	(void)state;
	/* the crafted baseline is valid, so each failure below is due to
	 * the one field changed */
	assert_int_equal(decode_crafted(2, 2, 2, 3, 1, 1, "centre"), 0);
	assert_int_equal(decode_crafted(2, 2, 3, 0, 0, 0, "centre"),
	    -EBADMSG);	/* fit */
	assert_int_equal(decode_crafted(2, 2, 255, 0, 0, 0, "centre"),
	    -EBADMSG);
	assert_int_equal(decode_crafted(2, 2, 0, 4, 0, 0, "centre"),
	    -EBADMSG);	/* format */
	assert_int_equal(decode_crafted(2, 2, 0, 0, 2, 0, "centre"),
	    -EBADMSG);	/* progressive is a bool */
	assert_int_equal(decode_crafted(2, 2, 0, 0, 0, 2, "centre"),
	    -EBADMSG);	/* strip is a bool */
	crafted_profile = 1;	/* keep */
	assert_int_equal(decode_crafted(2, 2, 0, 0, 0, 0, "centre"), 0);
	crafted_profile = 2;	/* no such profile mode */
	assert_int_equal(decode_crafted(2, 2, 0, 0, 0, 0, "centre"),
	    -EBADMSG);
	crafted_profile = 0;
	/* gravity[16]: 15 bytes fit, 16 do not */
	assert_int_equal(decode_crafted(1, 1, 0, 0, 0, 0, "123456789012345"),
	    0);
	assert_int_equal(decode_crafted(1, 1, 0, 0, 0, 0, "1234567890123456"),
	    -EBADMSG);
	/* noutputs: exactly 16 is fine, 17 is not even with 17 present */
	assert_int_equal(decode_crafted(16, 16, 0, 0, 0, 0, "centre"), 0);
	assert_int_equal(decode_crafted(17, 17, 0, 0, 0, 0, "centre"),
	    -EBADMSG);
	assert_int_equal(decode_crafted(UINT32_MAX, 1, 0, 0, 0, 0, "centre"),
	    -EBADMSG);
	/* count disagreeing with what follows: short and trailing */
	assert_int_equal(decode_crafted(3, 2, 0, 0, 0, 0, "centre"),
	    -EBADMSG);
	assert_int_equal(decode_crafted(1, 2, 0, 0, 0, 0, "centre"),
	    -EBADMSG);
}

static void
test_job_src_with_nul_rejected(void **state)
{
	struct ipc_job *job = calloc(1, sizeof(*job));
	struct ipc_writer w;
	const uint8_t src[] = { 0, 0, 0, 5, '/', 'a', 0, 'b', 'c' };

	(void)state;
	assert_non_null(job);
	ipc_writer_init(&w);
	/* hand-made: src with a NUL, then valid rest */
	ipc_put_u32(&w, 5);
	ipc_put_u8(&w, '/');
	ipc_put_u8(&w, 'a');
	ipc_put_u8(&w, 0);
	ipc_put_u8(&w, 'b');
	ipc_put_u8(&w, 'c');
	ipc_put_str(&w, "/");	/* in_root */
	ipc_put_str(&w, "/o");	/* out_root */
	ipc_put_i64(&w, 0);	/* src_dev, src_ino, the roots' ids */
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_i64(&w, 0);
	ipc_put_str(&w, "");
	ipc_put_u32(&w, 0);
	assert_memory_equal(w.buf, src, sizeof(src));
	assert_int_equal(ipc_job_decode(w.buf, w.len, job), -EBADMSG);
	/* the same bytes with 'x' instead of NUL decode */
	w.buf[6] = 'x';
	assert_int_equal(ipc_job_decode(w.buf, w.len, job), 0);
	assert_string_equal(job->src, "/axbc");
	ipc_writer_free(&w);
	free(job);
}

static void
test_result_field_validation(void **state)
{
	struct ipc_result res;
	struct ipc_writer w;
	size_t status_off = 0, nout_off;

	(void)state;
	memset(&res, 0, sizeof(res));
	strcpy(res.error, "x");
	ipc_writer_init(&w);
	assert_int_equal(ipc_result_encode(&w, &res), 0);
	/* status u8 | ms u32 | w u32 | h u32 | error (4+1) | noutputs u32 */
	nout_off = 1 + 4 + 4 + 4 + 4 + 1;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), 0);

	w.buf[status_off] = IPC_REPLACED + 1;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), -EBADMSG);
	w.buf[status_off] = IPC_REPLACED;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), 0);
	assert_int_equal(res.status, IPC_REPLACED);
	w.buf[status_off] = IPC_FAILED_OUTPUT;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), 0);
	assert_int_equal(res.status, IPC_FAILED_OUTPUT);
	w.buf[status_off] = 1;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), 0);
	w.buf[nout_off + 3] = IPC_MAX_OUTPUTS + 1;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), -EBADMSG);
	w.buf[nout_off + 3] = IPC_MAX_OUTPUTS;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), 0);
	assert_int_equal(res.noutputs, IPC_MAX_OUTPUTS);
	w.buf[nout_off] = 0x80;
	assert_int_equal(ipc_result_decode(w.buf, w.len, &res), -EBADMSG);
	ipc_writer_free(&w);
}

static void
test_encoders_refuse_what_decoders_reject(void **state)
{
	struct ipc_job *job = make_job();
	struct ipc_result res;
	struct ipc_writer w;

	(void)state;
	ipc_writer_init(&w);
	job->outputs[15].fit = 3;
	assert_int_equal(ipc_job_encode(&w, job), -EINVAL);
	job->outputs[15].fit = 0;
	job->outputs[0].format = 4;
	assert_int_equal(ipc_job_encode(&w, job), -EINVAL);
	job->outputs[0].format = 0;
	job->noutputs = IPC_MAX_OUTPUTS + 1;
	assert_int_equal(ipc_job_encode(&w, job), -EINVAL);
	job->noutputs = 1;
	memset(job->background, 'b', sizeof(job->background));	/* no NUL */
	assert_int_equal(ipc_job_encode(&w, job), -EINVAL);
	assert_int_equal(w.len, 0);	/* nothing half-written */
	ipc_writer_free(&w);

	memset(&res, 0, sizeof(res));
	res.status = IPC_REPLACED + 1;
	assert_int_equal(ipc_result_encode(&w, &res), -EINVAL);
	res.status = 0;
	res.noutputs = IPC_MAX_OUTPUTS + 1;
	assert_int_equal(ipc_result_encode(&w, &res), -EINVAL);
	ipc_writer_free(&w);
	free(job);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_header_is_big_endian),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_decode_roundtrip_every_type),
		cmocka_unit_test(test_decode_max_payload_accepted),
		cmocka_unit_test(test_decode_malformed_headers),
		cmocka_unit_test(test_decode_split_across_reads),
		cmocka_unit_test(test_decode_two_frames_back_to_back),
		cmocka_unit_test(test_writer_reader_primitives),
		cmocka_unit_test(test_i64_extremes),
		cmocka_unit_test(test_reader_errors_are_sticky),
		cmocka_unit_test(test_reader_strings),
		cmocka_unit_test(test_writer_refuses_oversize),
		cmocka_unit_test(test_job_roundtrip_16_outputs),
		cmocka_unit_test(test_job_zero_outputs),
		cmocka_unit_test(test_result_roundtrip),
		cmocka_unit_test(test_job_truncated_at_every_length),
		cmocka_unit_test(test_result_truncated_at_every_length),
		cmocka_unit_test(test_job_field_validation),
		cmocka_unit_test(test_job_src_with_nul_rejected),
		cmocka_unit_test(test_result_field_validation),
		cmocka_unit_test(test_encoders_refuse_what_decoders_reject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
