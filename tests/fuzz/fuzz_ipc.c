/*
 * libFuzzer harness for src/common/ipc.c.
 *
 * The input is read three ways: as a stream of frames (what a worker or the
 * supervisor receives), and whole, as a job payload and as a result payload
 * (so the payload decoders are reached without the fuzzer first having to
 * build a valid header).  Besides "never crash, never read past len", every
 * accepted payload must re-encode to exactly the bytes it came from and
 * decode again to the same struct: the wire format has one spelling per
 * message, and the encoders accept everything the decoders do.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Big (about 70 KB each): kept off the stack and out of malloc per run. */
static struct ipc_job job_a, job_b;

static void
check_jobs_equal(const struct ipc_job *a, const struct ipc_job *b)
{
	uint32_t i;

	CHECK(strcmp(a->src, b->src) == 0);
	CHECK(strcmp(a->in_root, b->in_root) == 0);
	CHECK(strcmp(a->out_root, b->out_root) == 0);
	CHECK(a->src_dev == b->src_dev && a->src_ino == b->src_ino);
	CHECK(a->in_root_dev == b->in_root_dev &&
	    a->in_root_ino == b->in_root_ino);
	CHECK(a->out_root_dev == b->out_root_dev &&
	    a->out_root_ino == b->out_root_ino);
	CHECK(a->max_pixels == b->max_pixels);
	CHECK(a->src_mtime_ns == b->src_mtime_ns);
	CHECK(strcmp(a->background, b->background) == 0);
	CHECK(a->noutputs == b->noutputs);
	for (i = 0; i < a->noutputs; i++) {
		const struct ipc_output_spec *x = &a->outputs[i];
		const struct ipc_output_spec *y = &b->outputs[i];

		CHECK(strcmp(x->path, y->path) == 0);
		CHECK(x->width == y->width && x->height == y->height);
		CHECK(x->fit == y->fit && x->format == y->format);
		CHECK(strcmp(x->gravity, y->gravity) == 0);
		CHECK(x->quality == y->quality);
		CHECK(x->progressive == y->progressive && x->strip == y->strip);
		CHECK(x->profile == y->profile);
	}
}

/* The encoded payload goes through a frame and back as well. */
static void
check_frame_roundtrip(uint16_t type, const struct ipc_writer *w)
{
	struct ipc_frame f;
	uint8_t *buf = malloc(IPC_HDR_SIZE + w->len);
	int n;

	CHECK(buf != NULL);
	n = ipc_encode(buf, IPC_HDR_SIZE + w->len, type, 77, w->buf, w->len);
	CHECK(n == (int)(IPC_HDR_SIZE + w->len));
	CHECK(ipc_decode(buf, (size_t)n, &f) == n);
	CHECK(f.type == type && f.id == 77 && f.len == w->len);
	CHECK(w->len == 0 || memcmp(f.payload, w->buf, w->len) == 0);
	CHECK(ipc_decode(buf, (size_t)n - 1, &f) == 0);
	free(buf);
}

static void
try_job(const uint8_t *p, size_t len)
{
	struct ipc_writer w;

	if (ipc_job_decode(p, len, &job_a) != 0)
		return;
	CHECK(job_a.noutputs <= IPC_MAX_OUTPUTS);
	ipc_writer_init(&w);
	CHECK(ipc_job_encode(&w, &job_a) == 0);
	CHECK(w.len == len && (len == 0 || memcmp(w.buf, p, len) == 0));
	CHECK(ipc_job_decode(w.buf, w.len, &job_b) == 0);
	check_jobs_equal(&job_a, &job_b);
	check_frame_roundtrip(IPC_JOB, &w);
	ipc_writer_free(&w);
}

static void
try_result(const uint8_t *p, size_t len)
{
	struct ipc_result a, b;
	struct ipc_writer w;

	if (ipc_result_decode(p, len, &a) != 0)
		return;
	CHECK(a.status <= IPC_REPLACED && a.noutputs <= IPC_MAX_OUTPUTS);
	ipc_writer_init(&w);
	CHECK(ipc_result_encode(&w, &a) == 0);
	CHECK(w.len == len && (len == 0 || memcmp(w.buf, p, len) == 0));
	CHECK(ipc_result_decode(w.buf, w.len, &b) == 0);
	CHECK(a.status == b.status && a.ms == b.ms);
	CHECK(a.src_width == b.src_width && a.src_height == b.src_height);
	CHECK(strcmp(a.error, b.error) == 0);
	CHECK(a.noutputs == b.noutputs && a.out_bytes == b.out_bytes);
	check_frame_roundtrip(IPC_RESULT, &w);
	ipc_writer_free(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_frame f;
	size_t off = 0;
	uint8_t *exact;
	int n;

	/* An exactly-sized copy, so ASan sees any read past size. */
	exact = malloc(size > 0 ? size : 1);
	CHECK(exact != NULL);
	if (size > 0)
		memcpy(exact, data, size);

	while (off < size) {
		n = ipc_decode(exact + off, size - off, &f);
		CHECK(n >= 0 || n == -EBADMSG);
		if (n <= 0)
			break;
		CHECK((size_t)n == IPC_HDR_SIZE + f.len);
		CHECK((size_t)n <= size - off);
		CHECK(f.payload == exact + off + IPC_HDR_SIZE);
		CHECK(f.type >= IPC_HELLO && f.type < IPC_TYPE_MAX);
		try_job(f.payload, f.len);
		try_result(f.payload, f.len);
		off += (size_t)n;
	}
	try_job(exact, size);
	try_result(exact, size);
	free(exact);
	return 0;
}
