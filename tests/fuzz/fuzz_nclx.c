/*
 * libFuzzer harness for src/worker/nclx.c: the HEIF/AVIF boxes a worker
 * reads to find an nclx colour box.
 *
 * The input is a whole file, given on a memfd as the worker gives the
 * file it opened.  Whatever the input, nothing may crash, read out of
 * bounds or leak; a profile, when one is made, is a whole ICC profile
 * (its header's size field is its length).
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "nclx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p;
	void *icc = NULL;
	size_t len = 0;
	int fd;

	if ((fd = memfd_create("fuzz_nclx", MFD_CLOEXEC)) < 0)
		return 0;
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (nclx_icc_read(fd, (uint64_t)size, &icc, &len) == 0) {
		CHECK(icc != NULL && len >= 128);
		p = icc;
		CHECK(((size_t)p[0] << 24 | (size_t)p[1] << 16 |
		    (size_t)p[2] << 8 | p[3]) == len);
		CHECK(memcmp(p + 36, "acsp", 4) == 0);
		g_free(icc);
	}
	close(fd);
	return 0;
}
