/*
 * nclx: the colours a HEIF or AVIF image describes with an nclx colour box
 * (ISO/IEC 23091-2 code points: primaries, transfer, matrix) instead of an
 * ICC profile, as an ICC profile.
 *
 * Worker side only.  libvips 8.14 ignores nclx ("ignoring nclx profile")
 * and takes the numbers as sRGB's; Android phones and cameras write P3 or
 * BT.2020 AVIF/HEIC this way.  thumb.c attaches the profile made here as
 * if it were embedded, so colour.c converts it like any other.  Only SDR
 * transfers are described (sRGB, BT.709, gamma 2.2): PQ and HLG need tone
 * mapping, which an ICC matrix profile cannot do.
 */
#ifndef THUMBWATCH_NCLX_H
#define THUMBWATCH_NCLX_H

#include <stddef.h>
#include <stdint.h>

/* An ICC profile (lcms2, v4 matrix/TRC) for nclx primaries and transfer
 * code points.  0 with *icc (g_free it) and *len; -1 when there is
 * nothing to describe: BT.709/sRGB or unspecified primaries, a transfer
 * that is not SDR (PQ, HLG, linear, log...), or an unknown code. */
int nclx_icc_for(unsigned primaries, unsigned transfer, void **icc,
    size_t *len);

/* The profile for the nclx box of the primary image of the HEIF/AVIF file
 * open on fd (size bytes), read with libheif from the file's ftyp and meta
 * boxes only (at most NCLX_META_MAX bytes; the coded pixels are never
 * read).  0 with *icc and *len as nclx_icc_for; -1 when the file has no
 * nclx box, an ICC one, nothing to describe, or cannot be read. */
#define NCLX_META_MAX ((uint64_t)4 << 20)
int nclx_icc_read(int fd, uint64_t size, void **icc, size_t *len);

#endif
