/*
 * ipc: framing of the messages between the supervisor and its workers.
 *
 * Pure module.  A frame is a 12-byte header followed by a payload:
 *   uint32 length   (payload bytes, big-endian, <= IPC_MAX_PAYLOAD)
 *   uint16 type     (enum ipc_type)
 *   uint16 flags    (0; non-zero is malformed)
 *   uint32 id       (job id the frame is about; 0 for none)
 * Payloads are built and read with the put/get helpers below: u8/u32/i32
 * big-endian and strings as u32 length + bytes (no NUL on the wire, no NUL
 * allowed inside).  Readers reject short and trailing bytes.
 */
#ifndef THUMBWATCH_IPC_H
#define THUMBWATCH_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_HDR_SIZE 12
#define IPC_MAX_PAYLOAD (256 * 1024)
#define IPC_MAX_OUTPUTS 16

enum ipc_type {
	IPC_HELLO = 1,	/* worker -> supervisor: ready (u32 pid) */
	IPC_JOB = 2,	/* supervisor -> worker: struct ipc_job */
	IPC_RESULT = 3,	/* worker -> supervisor: struct ipc_result */
	IPC_TYPE_MAX
};

struct ipc_frame {
	uint16_t type;
	uint32_t id;
	const uint8_t *payload;	/* points into the decoded buffer */
	uint32_t len;
};

/* Encodes one frame into buf.  Returns bytes written, -ENOSPC when cap is
 * too small, -EMSGSIZE when len > IPC_MAX_PAYLOAD, -EINVAL for a bad type. */
int ipc_encode(uint8_t *buf, size_t cap, uint16_t type, uint32_t id,
    const void *payload, size_t len);

/* Decodes the frame at the start of buf.  Returns bytes consumed (header +
 * payload), 0 when more bytes are needed, -EBADMSG for a malformed header
 * (unknown type, non-zero flags, oversized length). */
int ipc_decode(const uint8_t *buf, size_t len, struct ipc_frame *out);

/* Growable payload writer. */
struct ipc_writer {
	uint8_t *buf;
	size_t len, cap;
	int err;	/* sticky: first -ENOMEM/-EMSGSIZE */
};
void ipc_writer_init(struct ipc_writer *w);
void ipc_writer_free(struct ipc_writer *w);
void ipc_put_u8(struct ipc_writer *w, uint8_t v);
void ipc_put_u32(struct ipc_writer *w, uint32_t v);
void ipc_put_i64(struct ipc_writer *w, int64_t v);
void ipc_put_str(struct ipc_writer *w, const char *s);

/* Bounds-checked payload reader; any failure makes r->err = -EBADMSG and
 * every later get a no-op returning 0/"" . */
struct ipc_reader {
	const uint8_t *p;
	size_t left;
	int err;
};
void ipc_reader_init(struct ipc_reader *r, const uint8_t *p, size_t len);
uint8_t ipc_get_u8(struct ipc_reader *r);
uint32_t ipc_get_u32(struct ipc_reader *r);
int64_t ipc_get_i64(struct ipc_reader *r);
/* Copies into dst (NUL-terminated); error if it does not fit or has a NUL. */
void ipc_get_str(struct ipc_reader *r, char *dst, size_t dstlen);
/* 0 when everything was read without error, else -EBADMSG. */
int ipc_reader_end(struct ipc_reader *r);

/* The largest fit and format an output may carry.  The wire holds
 * config.h's enum fit and enum out_format values as they are; their
 * bounds live here so the codecs check them without the configuration,
 * and a _Static_assert in the worker, which reads them back as those
 * enums, keeps the two in step. */
#define IPC_FIT_MAX	2	/* FIT_FILL */
#define IPC_FORMAT_MAX	3	/* FORMAT_AVIF */
#define IPC_PROFILE_MAX	1	/* PROFILE_KEEP */

/* The job and result payloads. */
struct ipc_output_spec {
	char path[4096];	/* final output path below out_root (worker writes a
				 * temp beside it) */
	uint32_t width, height;
	uint8_t fit;		/* enum fit, <= IPC_FIT_MAX */
	char gravity[16];
	uint8_t format;		/* enum out_format, <= IPC_FORMAT_MAX */
	uint8_t quality;
	uint8_t progressive;
	uint8_t strip;
	uint8_t profile;	/* enum profile_mode, <= IPC_PROFILE_MAX */
};

struct ipc_job {
	char src[4096];		/* absolute source path, below in_root */
	/* The roots the worker resolves src and every output path beneath,
	 * following no symlink (beneath.h); real paths, no trailing '/'. */
	char in_root[4096];
	char out_root[4096];
	/* The file the supervisor inspected: the worker refuses another one
	 * found at src (swapped since).  Both 0: not checked. */
	uint64_t src_dev, src_ino;
	/* The roots the supervisor holds open, likewise: an OUTPUT_DIR nested
	 * in INPUT_DIR can be swapped for a link by a dropper, and the worker
	 * opens the roots by path. */
	uint64_t in_root_dev, in_root_ino, out_root_dev, out_root_ino;
	int64_t max_pixels;
	int64_t src_mtime_ns;	/* copied to outputs' mtime (up-to-date check) */
	char background[32];
	uint32_t noutputs;
	struct ipc_output_spec outputs[IPC_MAX_OUTPUTS];
};

/* IPC_FAILED_OUTPUT: the image was fine but its thumbnail could not be
 * written (disk full, folder not writable): worth retrying later. */
/* IPC_REPLACED: the name held another file than the one inspected (by
 * device and inode) when the worker opened it; nothing was read.  The
 * supervisor inspects the new file afresh rather than trust checks made on
 * the old one (its size, its type). */
enum ipc_status { IPC_OK = 0, IPC_FAILED = 1, IPC_FAILED_OUTPUT = 2,
    IPC_REPLACED = 3 };

struct ipc_result {
	uint8_t status;		/* enum ipc_status */
	uint32_t ms;
	uint32_t src_width, src_height;
	char error[1024];	/* one line, when failed */
	uint32_t noutputs;	/* outputs written, in job order */
	int64_t out_bytes;
};

/* Payload <-> struct.  Encoders return 0 or a negative errno (w->err);
 * decoders 0 or -EBADMSG (also for out-of-range enum values and
 * noutputs > IPC_MAX_OUTPUTS). */
int ipc_job_encode(struct ipc_writer *w, const struct ipc_job *job);
int ipc_job_decode(const uint8_t *p, size_t len, struct ipc_job *job);
int ipc_result_encode(struct ipc_writer *w, const struct ipc_result *res);
int ipc_result_decode(const uint8_t *p, size_t len, struct ipc_result *res);

#endif
