/*
 * thumb: every output of one job from a single decode (libvips).
 *
 * Worker side only.  Owns the libvips set-up of a worker process (threads,
 * cache, loader allow-list) and the life of one job: open the source beneath
 * the input root without following a link at any level or blocking, check it
 * is the file the supervisor inspected, name its format by magic bytes
 * (sniff.h) and run that format's loader only if enabled, check the pixel
 * count from the header, decode once (that loader, shrink-on-load, then
 * vips_thumbnail_image) to the largest size any output needs, then
 * resize/crop/flatten each output from that in-memory image, write each to
 * a temp in its pinned output folder (beneath the output root, no link
 * followed) and rename them all into place only when every one of them
 * succeeded.
 */
#include "beneath.h"
#include "colour.h"
#include "fsutil.h"
#include "nclx.h"
#include "pathmap.h"
#include "sniff.h"
#include "thumb.h"
#include "uptodate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <vips/vips.h>

#include "config.h"

/* Outputs arrive with config.h's fit and format values, bounded by ipc.h's
 * own limits (ipc.c checks them without the configuration). */
_Static_assert(IPC_FIT_MAX == FIT_FILL, "ipc.h's IPC_FIT_MAX is not the "
    "last enum fit");
_Static_assert(IPC_FORMAT_MAX == FORMAT_AVIF, "ipc.h's IPC_FORMAT_MAX is "
    "not the last enum out_format");
_Static_assert(IPC_PROFILE_MAX == PROFILE_KEEP, "ipc.h's IPC_PROFILE_MAX is "
    "not the last enum profile_mode");

/* Longest error line handed to the supervisor (res->error is larger, but a
 * log line that wraps three times helps nobody). */
#define ERR_MAX 900

/* libjpeg keeps every DCT coefficient of a progressive JPEG in memory, at
 * any shrink-on-load factor: about 6 bytes per pixel for 4:4:4.  Above
 * this, a progressive JPEG is refused even when MAX_PIXELS allows more, so
 * one upload cannot make a worker allocate gigabytes. */
#define PROGRESSIVE_MAX_PIXELS 100000000LL

/* Free heap (all arenas) above which a finished job hands memory back to
 * the kernel.  malloc_trim() madvise()s every free page, and the next
 * image faults them all in again: trimming after every image doubled the
 * page faults and cost 8% CPU on the wallpaper corpus and 40% on small
 * files (tests/bench).  A large image still leaves no more than this. */
#define TRIM_FREE_BYTES ((size_t)64 << 20)

/* Loader class per extension, and the format (by magic bytes) it reads.
 * Unblocking a class unblocks its file, buffer and source variants. */
static const struct {
	const char *ext;
	const char *loader;
	enum sniff_format format;
} loaders[] = {
	{ "jpg", "VipsForeignLoadJpeg", SNIFF_JPEG },
	{ "jpeg", "VipsForeignLoadJpeg", SNIFF_JPEG },
	{ "jpe", "VipsForeignLoadJpeg", SNIFF_JPEG },
	{ "png", "VipsForeignLoadPng", SNIFF_PNG },
	{ "webp", "VipsForeignLoadWebp", SNIFF_WEBP },
	{ "tif", "VipsForeignLoadTiff", SNIFF_TIFF },
	{ "tiff", "VipsForeignLoadTiff", SNIFF_TIFF },
	{ "gif", "VipsForeignLoadNsgif", SNIFF_GIF },
	{ "heic", "VipsForeignLoadHeif", SNIFF_HEIF },
	{ "heif", "VipsForeignLoadHeif", SNIFF_HEIF },
	{ "avif", "VipsForeignLoadHeif", SNIFF_HEIF },
	{ "jxl", "VipsForeignLoadJxl", SNIFF_JXL },
	{ "svg", "VipsForeignLoadSvg", SNIFF_SVG },
	{ "svgz", "VipsForeignLoadSvg", SNIFF_SVG },
	{ "pdf", "VipsForeignLoadPdf", SNIFF_PDF },
};
#define MAGICK_LOADER "VipsForeignLoadMagick"

/* The one source loader that reads each format thumbwatch maps natively;
 * NULL for the formats only ImageMagick may read here. */
static const char *const native[SNIFF_MAX] = {
	[SNIFF_JPEG] = "jpegload_source",
	[SNIFF_PNG] = "pngload_source",
	[SNIFF_WEBP] = "webpload_source",
	[SNIFF_TIFF] = "tiffload_source",
	[SNIFF_GIF] = "gifload_source",
	[SNIFF_HEIF] = "heifload_source",
	[SNIFF_JXL] = "jxlload_source",
	[SNIFF_SVG] = "svgload_source",
	[SNIFF_GZIP] = "svgload_source",
	[SNIFF_PDF] = "pdfload_source",
};

/* What EXTENSIONS enabled in this process (thumb_init). */
static bool enabled[SNIFF_MAX];
static bool magick_enabled;

static bool
loader_enable(const char *name)
{
	if (g_type_from_name(name) == 0) {
		fprintf(stderr, "thumbwatch worker: this libvips has no %s; "
		    "that format stays disabled\n", name);
		return false;
	}
	vips_operation_block_set(name, FALSE);
	return true;
}

int
thumb_init(const char *argv0, const char *formats)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	/* glibc gives each thread that mallocs its own arena and rarely hands
	 * their free pages back, so a long-lived libvips process (which
	 * allocates from its worker threads) grows without bound; imgproxy
	 * and govips hit this.  Two arenas keep the footprint flat at no
	 * measurable cost with one vips thread.  Before VIPS_INIT: arenas are
	 * made when threads first allocate. */
	mallopt(M_ARENA_MAX, 2);
#endif
	if (VIPS_INIT(argv0 ? argv0 : "thumbwatch")) {
		fprintf(stderr, "thumbwatch worker: cannot initialise libvips "
		    "(%s)\n", vips_error_buffer());
		vips_error_clear();
		return -1;
	}
	/* Parallelism comes from worker processes; vips threads would only
	 * fight them for the same cores. */
	vips_concurrency_set(1);
	/* Each source is seen once: caching operations only holds memory. */
	vips_cache_set_max(0);

	/* Allow-list: Debian's libvips links loaders (magick, poppler, rsvg,
	 * openslide, matio, ...) whose parsers should never see a file the
	 * user did not ask for. */
	vips_operation_block_set("VipsForeignLoad", TRUE);

	char *list = g_strdup(formats ? formats : "");
	char *save = NULL;
	bool magick = false;
	for (char *tok = strtok_r(list, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (*tok == '.')
			tok++;
		if (*tok == '\0')
			continue;
		size_t k = G_N_ELEMENTS(loaders);
		for (size_t i = 0; i < G_N_ELEMENTS(loaders); i++)
			if (g_ascii_strcasecmp(tok, loaders[i].ext) == 0)
				k = i;
		if (k == G_N_ELEMENTS(loaders))
			magick = true;
		else if (loader_enable(loaders[k].loader)) {
			enabled[loaders[k].format] = true;
			/* svgload reads SVGZ (gzip) too */
			if (loaders[k].format == SNIFF_SVG)
				enabled[SNIFF_GZIP] = true;
		}
	}
	g_free(list);
	if (magick)
		magick_enabled = loader_enable(MAGICK_LOADER);
	return 0;
}

void
thumb_shutdown(void)
{
	vips_shutdown();
}

/* ---- errors ---------------------------------------------------------- */

static void fail(struct ipc_result *res, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/* A thumbnail that could not be written: the reason first (a long path
 * must not push it out of the line).  Out of space or rights is worth a
 * retry later; a name the filesystem cannot hold never will be. */
static void
fail_output(struct ipc_result *res, const char *path, int err,
    const char *why)
{
	fail(res, "cannot write thumbnail: %s (%s)", why ? why :
	    strerror(err), path);
	res->status = err == ENAMETOOLONG || err == EINVAL || err == EILSEQ ?
	    IPC_FAILED : IPC_FAILED_OUTPUT;
}

/* Copies s into the error line: newlines become "; ", other control
 * characters spaces, trailing separators go, and it is cut at ERR_MAX. */
static void
err_append(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(dst);
	size_t lim = cap - 1 < ERR_MAX ? cap - 1 : ERR_MAX;

	for (; *s != '\0' && n < lim; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n') {
			/* collapse runs of newlines, skip a trailing one */
			while (s[1] == '\n')
				s++;
			if (s[1] == '\0' || n + 2 > lim)
				break;
			dst[n++] = ';';
			dst[n++] = ' ';
		} else if (c < 0x20 || c == 0x7f) {
			dst[n++] = ' ';
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	if (*s != '\0' && n >= lim && lim > 3) {
		size_t cut = lim - 3;
		/* never inside a UTF-8 sequence: the log would show U+FFFD */
		while (cut > 0 && ((unsigned char)dst[cut] & 0xc0) == 0x80)
			cut--;
		memcpy(dst + cut, "...", 4);
	}
}

/* Fills res->error with a plain statement and, when libvips said
 * something, its words in parentheses, led by the loader's name when they
 * do not already name it; then clears the vips error. */
static void
fail_detail(struct ipc_result *res, const char *loader, const char *plain)
{
	res->status = IPC_FAILED;
	res->error[0] = '\0';
	err_append(res->error, sizeof res->error, plain);

	const char *detail = vips_error_buffer();
	while (*detail == '\n' || *detail == ' ')
		detail++;
	size_t used = strlen(res->error);
	if (*detail != '\0' && used + 8 < ERR_MAX) {
		char full[ERR_MAX + 64];
		if (loader != NULL && !vips_isprefix(loader, detail))
			snprintf(full, sizeof full, "%s: %s", loader, detail);
		else
			snprintf(full, sizeof full, "%s", detail);
		/* room for " (" and ")" so the parentheses survive a cut */
		char det[ERR_MAX + 1] = "";
		err_append(det, ERR_MAX - used - 3 + 1, full);
		snprintf(res->error + used, sizeof res->error - used,
		    " (%s)", det);
	}
	vips_error_clear();
}

static void G_GNUC_PRINTF(2, 3)
fail(struct ipc_result *res, const char *fmt, ...)
{
	char plain[ERR_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(plain, sizeof plain, fmt, ap);
	va_end(ap);
	fail_detail(res, NULL, plain);
}

/* "pdfload_source" -> "pdf": what a user calls the format. */
static void
format_of(const char *nickname, char *out, size_t outlen)
{
	const char *load = strstr(nickname, "load");
	size_t n = load != NULL ? (size_t)(load - nickname) : strlen(nickname);
	if (n == 0 || n >= outlen)
		n = outlen - 1 < strlen(nickname) ? outlen - 1 : strlen(nickname);
	memcpy(out, nickname, n);
	out[n] = '\0';
}

static void
fail_blocked(struct ipc_result *res, const char *nickname)
{
	char fmt[32];

	format_of(nickname, fmt, sizeof fmt);
	vips_error_clear();
	fail(res, "format not enabled: %s (%s is not allowed by EXTENSIONS)",
	    fmt, nickname);
}

/* A libvips failure: blocked loaders get the allow-list message,
 * everything else the caller's words plus the libvips detail. */
static void G_GNUC_PRINTF(3, 4)
fail_vips(struct ipc_result *res, const char *loader, const char *fmt, ...)
{
	const char *buf = vips_error_buffer();
	const char *blocked = strstr(buf, ": operation is blocked");

	if (blocked != NULL) {
		const char *start = blocked;
		while (start > buf && start[-1] != '\n')
			start--;
		char nick[64];
		size_t n = (size_t)(blocked - start);
		if (n >= sizeof nick)
			n = sizeof nick - 1;
		memcpy(nick, start, n);
		nick[n] = '\0';
		fail_blocked(res, nick);
		return;
	}

	char plain[ERR_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(plain, sizeof plain, fmt, ap);
	va_end(ap);
	fail_detail(res, loader, plain);
}

/* ---- loader choice ------------------------------------------------- */

/* The loader for a file that sniffs as f, by magic bytes alone: its
 * format's own loader when EXTENSIONS enabled it; else ImageMagick (by
 * path) when some extension enabled it (camera raws are TIFFs, for one),
 * but never for SVG or PDF, which it would hand to its own renderers and
 * delegates (ghostscript); else NULL.  Never libvips' guess:
 * vips_foreign_find_load*() runs every loader's is_a code, blocked ones
 * included, on hostile bytes (svgload's inflate spins on a truncated
 * SVGZ), and some loaders (poppler's) parse the whole file before the
 * block check fires. */
static const char *
choose_loader(enum sniff_format f, bool *via_path)
{
	*via_path = false;
	if (f <= SNIFF_UNKNOWN || f >= SNIFF_MAX)
		f = SNIFF_UNKNOWN;
	if (native[f] != NULL && enabled[f])
		return native[f];
	if (!magick_enabled || f == SNIFF_SVG || f == SNIFF_GZIP ||
	    f == SNIFF_PDF)
		return NULL;
	*via_path = true;
	return "magickload";
}

/* A format no enabled loader may read: named when the magic bytes say
 * what it is, else its first bytes, so a user can tell a truncated or
 * mislabelled file from a format to enable. */
static void
fail_format(struct ipc_result *res, enum sniff_format f,
    const uint8_t *head, size_t n)
{
	char hex[3 * 8 + 1] = "";
	size_t at = 0;

	if (f != SNIFF_UNKNOWN) {
		fail(res, "format not enabled: %s (EXTENSIONS)",
		    sniff_name(f));
		return;
	}
	for (size_t i = 0; i < n && i < 8; i++)
		at += (size_t)snprintf(hex + at, sizeof hex - at, "%s%02x",
		    i ? " " : "", head[i]);
	fail(res, "not a supported image: no format recognised (first "
	    "bytes %s)", n > 0 ? hex : "none");
}

/* pread() for the PNG chunk walk; ctx is the descriptor. */
static long
pread_fd(void *ctx, uint64_t off, void *buf, size_t len)
{
	ssize_t n;

	do
		n = pread(*(int *)ctx, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (long)n;
}

/* libjpeg's block shrink (1, 2, 4, 8) for a decode shrink of shrink,
 * leaving at least a factor of two for the resize as vips_thumbnail
 * does (its sharpness is poor). */
static int
jpeg_shrink(double shrink)
{
	return shrink >= 16 ? 8 : shrink >= 8 ? 4 : shrink >= 4 ? 2 : 1;
}

/* ---- geometry --------------------------------------------------------- */

struct plan {
	int rw, rh;	/* resize to */
	int cw, ch;	/* then crop to (== rw, rh for no crop) */
	double scale;	/* rw / source width, what the decode must provide */
};

static int
iround(double v)
{
	long r = lround(v);
	return r < 1 ? 1 : r > INT_MAX ? INT_MAX : (int)r;
}

/* Sizes of one output from the upright source size w0 x h0.  inside: fit
 * the box, never upscale.  cover: cover the box, never upscale; a source
 * smaller than the box is cropped to the box's aspect instead.  fill:
 * exactly the box, stretched. */
static void
plan_output(const struct ipc_output_spec *o, int w0, int h0, struct plan *p)
{
	/* 0 means unbounded; the clamp keeps the int conversions defined */
	double bw = o->width > 0 ? fmin(o->width, VIPS_MAX_COORD) : w0;
	double bh = o->height > 0 ? fmin(o->height, VIPS_MAX_COORD) : h0;
	double sx = bw / w0, sy = bh / h0;

	switch (o->fit) {
	case FIT_FILL:
		p->rw = p->cw = (int)bw;
		p->rh = p->ch = (int)bh;
		p->scale = fmin(1.0, fmax(sx, sy));
		return;
	case FIT_COVER: {
		double s = fmin(1.0, fmax(sx, sy));
		p->scale = s;
		p->rw = iround(w0 * s);
		p->rh = iround(h0 * s);
		if (s < 1.0) {
			p->cw = (int)bw;
			p->ch = (int)bh;
		} else if ((double)w0 / h0 > bw / bh) {
			p->ch = h0;
			p->cw = iround(h0 * bw / bh);
		} else {
			p->cw = w0;
			p->ch = iround(w0 * bh / bw);
		}
		p->cw = VIPS_MIN(p->cw, p->rw);
		p->ch = VIPS_MIN(p->ch, p->rh);
		return;
	}
	case FIT_INSIDE:
	default: {
		double s = fmin(1.0, fmin(sx, sy));
		p->scale = s;
		p->rw = p->cw = iround(w0 * s);
		p->rh = p->ch = iround(h0 * s);
		return;
	}
	}
}

/* ---- pixel steps (each returns 0 or -1 with a vips error set) --------- */

/* 8-bit sRGB (plus alpha): covers 16-bit, grey, CMYK left unconverted,
 * and images whose interpretation tag does not match their bands. */
static int
to_srgb8(VipsImage *in, VipsImage **out)
{
	VipsImage *t[2] = { NULL, NULL };
	VipsImage *x = in;
	int rc = -1;

	if (x->Type != VIPS_INTERPRETATION_sRGB ||
	    x->BandFmt != VIPS_FORMAT_UCHAR || x->Bands < 3) {
		if (vips_colourspace(x, &t[0], VIPS_INTERPRETATION_sRGB,
		    "source_space", vips_image_guess_interpretation(x), NULL))
			goto out;
		x = t[0];
	}
	if (x->BandFmt != VIPS_FORMAT_UCHAR) {
		if (vips_cast(x, &t[1], VIPS_FORMAT_UCHAR, NULL))
			goto out;
		x = t[1];
	}
	if (x->Bands != 3 && x->Bands != 4) {
		/* colourspace gives 3 or 4 bands; anything else is an
		 * exotic layout we cannot save faithfully as RGB(A). */
		vips_error("thumb", "unexpected %d-band image after sRGB "
		    "conversion", x->Bands);
		goto out;
	}
	g_object_ref(x);
	*out = x;
	rc = 0;
out:
	for (int i = 0; i < 2; i++)
		VIPS_UNREF(t[i]);
	return rc;
}

/* Resizes to exactly w x h.  Alpha is premultiplied around the resize so
 * transparent pixels' colours do not bleed into the edges. */
static int
resize_to(VipsImage *in, VipsImage **out, int w, int h)
{
	VipsImage *t[5] = { NULL, NULL, NULL, NULL, NULL };
	VipsImage *x = in;
	bool alpha = vips_image_hasalpha(in);
	int rc = -1;

	if (in->Xsize == w && in->Ysize == h) {
		g_object_ref(in);
		*out = in;
		return 0;
	}
	if (alpha) {
		if (vips_premultiply(x, &t[0], NULL))
			goto out;
		x = t[0];
	}
	if (vips_resize(x, &t[1], (double)w / in->Xsize,
	    "vscale", (double)h / in->Ysize, NULL))
		goto out;
	x = t[1];
	if (alpha) {
		if (vips_unpremultiply(x, &t[2], NULL) ||
		    vips_cast(t[2], &t[3], VIPS_FORMAT_UCHAR, NULL))
			goto out;
		x = t[3];
	}
	/* vips_resize rounds its output size itself; pin it to ours so a
	 * preset never comes out one pixel off. */
	if (x->Xsize != w || x->Ysize != h) {
		if (vips_embed(x, &t[4], 0, 0, w, h,
		    "extend", VIPS_EXTEND_COPY, NULL))
			goto out;
		x = t[4];
	}
	g_object_ref(x);
	*out = x;
	rc = 0;
out:
	for (int i = 0; i < 5; i++)
		VIPS_UNREF(t[i]);
	return rc;
}

/* Crops to w x h: attention/entropy/low/high with vips_smartcrop, compass
 * directions (centre, north, north-east, ...) by position. */
static int
crop_to(VipsImage *in, VipsImage **out, int w, int h, const char *gravity)
{
	int left, top;

	if (in->Xsize == w && in->Ysize == h) {
		g_object_ref(in);
		*out = in;
		return 0;
	}
	if (strcmp(gravity, "attention") == 0 ||
	    strcmp(gravity, "entropy") == 0 || strcmp(gravity, "low") == 0 ||
	    strcmp(gravity, "high") == 0) {
		int v = vips_enum_from_nick("thumbwatch",
		    VIPS_TYPE_INTERESTING, gravity);
		if (v < 0)
			return -1;
		return vips_smartcrop(in, out, w, h, "interesting", v, NULL);
	}

	int dx = in->Xsize - w, dy = in->Ysize - h;
	bool n = strstr(gravity, "north") != NULL;
	bool s = strstr(gravity, "south") != NULL;
	bool e = strstr(gravity, "east") != NULL;
	bool wst = strstr(gravity, "west") != NULL;
	left = e ? dx : wst ? 0 : dx / 2;
	top = s ? dy : n ? 0 : dy / 2;
	return vips_extract_area(in, out, left, top, w, h, NULL);
}

/* Background "r,g,b" or "#rrggbb"; white when empty or unreadable (the
 * config module has already rejected bad values). */
static void
parse_background(const char *s, double rgb[3])
{
	unsigned r, g, b;

	rgb[0] = rgb[1] = rgb[2] = 255.0;
	if (s[0] == '#' && strlen(s) == 7 &&
	    sscanf(s + 1, "%2x%2x%2x", &r, &g, &b) == 3) {
	} else if (sscanf(s, " %u , %u , %u", &r, &g, &b) == 3 &&
	    r < 256 && g < 256 && b < 256) {
	} else {
		return;
	}
	rgb[0] = r;
	rgb[1] = g;
	rgb[2] = b;
}

/* ---- files ----------------------------------------------------------- */

/* rel of path below root ("/a/b" below "/a" is "b"), or NULL when path is
 * not strictly below it.  Roots are real paths with no trailing '/'; "/"
 * itself arrives as "". */
static const char *
below(const char *root, const char *path)
{
	size_t n = strlen(root);

	if (strncmp(path, root, n) != 0 || path[n] != '/' ||
	    path[n + 1] == '\0')
		return NULL;
	return path + n + 1;
}

/* One output's temp, in its pinned folder. */
struct out_tmp {
	int dir;		/* O_PATH folder of the final name, or -1 */
	const char *leaf;	/* final name inside dir (into the job) */
	char name[NAME_MAX + 1];	/* temp name in dir, "" when none */
	int64_t bytes;
};

/* Makes the temp ".<name>.tw-XXXXXX" beside final, creating its folders,
 * every step beneath the output root with no symlink followed: the
 * folder is pinned (tmp->dir) so the rename lands where the temp is even
 * if a folder of the path is swapped for a link meanwhile.  Returns the
 * descriptor or -errno. */
static int
tmp_open(int out_root, const char *root, const char *final,
    struct out_tmp *tmp)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char *rel = below(root, final);
	int rc, fd = -EEXIST;

	if (rel == NULL)
		return -EXDEV;
	if ((rc = beneath_mkdir_parents(out_root, rel, 0755)) < 0)
		return rc;
	if ((tmp->dir = beneath_parent(out_root, rel, &tmp->leaf)) < 0) {
		rc = tmp->dir;
		tmp->dir = -1;
		return rc;
	}
	for (int tries = 0; tries < 100 && fd == -EEXIST; tries++) {
		int n = pathmap_out_temp(tmp->name, sizeof tmp->name,
		    tmp->leaf, true);
		if (n < 0) {
			tmp->name[0] = '\0';
			return -ENAMETOOLONG;
		}
		for (int i = n - 6; i < n; i++)
			tmp->name[i] = abc[g_random_int_range(0,
			    (gint32)sizeof abc - 1)];
		fd = openat(tmp->dir, tmp->name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			fd = -errno;
	}
	if (fd < 0) {
		tmp->name[0] = '\0';
		return fd;
	}
	/* the umask may have taken bits: thumbnails are for web servers
	 * and viewers */
	(void)fchmod(fd, 0644);
	return fd;
}

/* Saves img in the output's format through target, stripping its
 * metadata or not.  0 or -1 (vips error). */
static int
save_to_target(VipsImage *img, const struct ipc_output_spec *o,
    gboolean strip, VipsTarget *target)
{
	int q = o->quality >= 1 && o->quality <= 100 ? o->quality : 85;
	int rc;

	switch (o->format) {
	case FORMAT_WEBP:
		rc = vips_webpsave_target(img, target, "Q", q,
		    "strip", strip, NULL);
		break;
	case FORMAT_PNG:
		rc = vips_pngsave_target(img, target, "compression", 6,
		    "strip", strip, NULL);
		break;
	case FORMAT_AVIF:
		rc = vips_heifsave_target(img, target,
		    "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
		    "Q", q, "bitdepth", 8, "strip", strip, NULL);
		break;
	case FORMAT_JPEG:
	default:
		rc = vips_jpegsave_target(img, target, "Q", q,
		    "interlace", (gboolean)(o->progressive != 0),
		    "optimize_coding", TRUE, "strip", strip, NULL);
		break;
	}
	if (rc == 0 && vips_target_end(target) != 0)
		rc = -1;
	return rc;
}

static int
save_to_fd(VipsImage *img, const struct ipc_output_spec *o, gboolean strip,
    int fd)
{
	VipsTarget *target = vips_target_new_to_descriptor(fd);
	int rc;

	if (target == NULL)
		return -1;
	rc = save_to_target(img, o, strip, target);
	VIPS_UNREF(target);
	return rc;
}

/* One output from the decoded image: resize, crop, convert from a
 * wide-gamut profile (kind COLOUR_RGB) to sRGB or keep that profile,
 * flatten, save to a fresh temp with the source's times.  0, or -1 with
 * res filled. */
static int
render_one(VipsImage *decoded, enum colour_kind kind, const char *lazy_loader,
    const struct ipc_job *job, int out_root, int64_t src_size,
    const struct ipc_output_spec *o, const struct plan *p,
    struct out_tmp *tmp, struct ipc_result *res)
{
	VipsImage *t[5] = { NULL, NULL, NULL, NULL, NULL };
	VipsImage *x;
	int fd = -1, rc = -1;
	struct stat st;
	bool keep = kind == COLOUR_RGB && o->profile == PROFILE_KEEP;
	gboolean strip = o->strip != 0;

	if (resize_to(decoded, &t[0], p->rw, p->rh) ||
	    crop_to(t[0], &t[1], p->cw, p->ch, o->gravity)) {
		fail_vips(res, NULL, "cannot resize for %s", o->path);
		goto out;
	}
	x = t[1];
	/* On the output's own pixels, the fewest there are: the transform
	 * is a per-pixel lcms call. */
	if (kind == COLOUR_RGB && !keep) {
		if (colour_to_srgb(x, &t[3])) {
			fail_vips(res, NULL, "cannot convert the colour "
			    "profile to sRGB for %s", o->path);
			goto out;
		}
		x = t[3];
	}
	if (o->format == FORMAT_JPEG && vips_image_hasalpha(x)) {
		double rgb[3];
		parse_background(job->background, rgb);
		VipsArrayDouble *bg = vips_array_double_new(rgb, 3);
		int frc = vips_flatten(x, &t[2], "background", bg, NULL);
		vips_area_unref(VIPS_AREA(bg));
		if (frc) {
			fail_vips(res, NULL, "cannot flatten alpha for %s", o->path);
			goto out;
		}
		x = t[2];
	}
	/* profile = keep: the source's profile rides along, and strip
	 * removes everything else (libvips 8.14's strip would take the
	 * profile too). */
	if (keep && strip) {
		if (colour_only_profile(x, &t[4])) {
			fail_vips(res, NULL, "cannot keep the colour profile "
			    "for %s", o->path);
			goto out;
		}
		x = t[4];
		strip = FALSE;
	}

	fd = tmp_open(out_root, job->out_root, o->path, tmp);
	if (fd < 0) {
		fail_output(res, o->path, -fd, fd == -ELOOP ? "a folder on "
		    "its path is a symbolic link (not followed)" : fd ==
		    -EXDEV ? "not below the output folder" : NULL);
		goto out;
	}
	if (lazy_loader != NULL) {
		/* decoded is still the decode pipeline: encode to memory so
		 * a decode error is the image's (remembered) and only the
		 * write below can be the disk's (retried). */
		VipsTarget *mem = vips_target_new_to_memory();
		VipsBlob *blob = NULL;
		if (mem == NULL || save_to_target(x, o, strip, mem) != 0) {
			VIPS_UNREF(mem);
			fail_vips(res, lazy_loader, "corrupt or truncated image");
			goto out;
		}
		g_object_get(mem, "blob", &blob, NULL);
		size_t len = 0;
		const void *data = blob ? vips_blob_get(blob, &len) : NULL;
		int werr = data ? -fs_write_all(fd, data, len) : EIO;
		if (blob)
			vips_area_unref(VIPS_AREA(blob));
		VIPS_UNREF(mem);
		if (werr != 0) {
			fail_output(res, o->path, werr, NULL);
			goto out;
		}
	} else if (save_to_fd(x, o, strip, fd)) {
		/* libvips' words say why; a long path must not crowd them
		 * out, so it is left off (the file is on the log line). */
		fail_vips(res, NULL, "cannot write thumbnail");
		res->status = IPC_FAILED_OUTPUT;
		goto out;
	}
	/* The supervisor's up-to-date check compares output and source
	 * mtimes: equal means made from this version of the source. */
	struct timespec ts[2];
	ts[0].tv_sec = ts[1].tv_sec = (time_t)(job->src_mtime_ns / 1000000000);
	ts[0].tv_nsec = ts[1].tv_nsec = (long)(job->src_mtime_ns % 1000000000);
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_sec -= 1;
		ts[0].tv_nsec += 1000000000;
		ts[1] = ts[0];
	}
	/* The size of the bytes this thumbnail was made from: with the mtime
	 * it tells a replaced source even when cp -p kept the mtime.  Best
	 * effort: a filesystem without user xattrs falls back to the mtime. */
	char size[24];
	int sn = snprintf(size, sizeof size, "%lld", (long long)src_size);
	(void)fsetxattr(fd, UPTODATE_XATTR_SIZE, size, (size_t)sn, 0);
	if (futimens(fd, ts) != 0 || fstat(fd, &st) != 0) {
		fail_output(res, o->path, errno, NULL);
		goto out;
	}
	if (st.st_size == 0) {
		fail_output(res, o->path, EIO, "the encoder wrote nothing");
		goto out;
	}
	tmp->bytes = st.st_size;
	rc = 0;
out:
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		fail_output(res, o->path, errno, NULL);
		rc = -1;
	}
	for (int i = 0; i < 5; i++)
		VIPS_UNREF(t[i]);
	return rc;
}

/* ---- the job --------------------------------------------------------- */

/* A CMYK image with its own profile becomes sRGB through that profile
 * (relative colorimetric, black-point compensation) before
 * vips_thumbnail_image, whose own CMYK import gave a thumbnail 10/255
 * darker than a colour-managed viewer's on the tests' CMYK JPEG.  Before
 * the resize, since thumbnail cannot resize CMYK without importing it;
 * JPEG's shrink-on-load has already made it small.  0 or -1. */
static int
import_cmyk(VipsImage **img)
{
	VipsImage *c = NULL;

	if ((*img)->Type != VIPS_INTERPRETATION_CMYK ||
	    colour_classify(*img) != COLOUR_OTHER)
		return 0;
	if (colour_to_srgb(*img, &c))
		return -1;
	VIPS_UNREF(*img);
	*img = c;
	return 0;
}

/* A HEIF or AVIF with no ICC profile whose nclx box names other primaries
 * than sRGB's (Display P3, BT.2020) and an SDR transfer gets the matching
 * profile attached, as if embedded: colour.c then converts it like any
 * other (libvips 8.14 ignores nclx).  Anything unreadable leaves the image
 * as it was, taken as sRGB.  0 or -1. */
static int
attach_nclx(VipsImage **img, int fd, uint64_t size)
{
	VipsImage *c = NULL;
	void *icc;
	size_t len;

	if (vips_image_get_typeof(*img, VIPS_META_ICC_NAME) ||
	    (*img)->Bands - (vips_image_hasalpha(*img) ? 1 : 0) != 3 ||
	    nclx_icc_read(fd, size, &icc, &len) != 0)
		return 0;
	if (vips_copy(*img, &c, NULL) != 0) {
		g_free(icc);
		return -1;
	}
	vips_image_set_blob_copy(c, VIPS_META_ICC_NAME, icc, len);
	g_free(icc);
	VIPS_UNREF(*img);
	*img = c;
	return 0;
}

static bool
all_jpeg(const struct ipc_job *job, uint32_t nout)
{
	for (uint32_t i = 0; i < nout; i++)
		if (job->outputs[i].format != FORMAT_JPEG)
			return false;
	return true;
}

/* in (8-bit RGBA) laid on the job's background.  0 or -1. */
static int
flatten_on(VipsImage *in, VipsImage **out, const char *background)
{
	double rgb[3];
	int rc;

	parse_background(background, rgb);
	VipsArrayDouble *bg = vips_array_double_new(rgb, 3);
	rc = vips_flatten(in, out, "background", bg, NULL);
	vips_area_unref(VIPS_AREA(bg));
	return rc;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Largest box first, so the order in which outputs are made does not
 * depend on how the presets happen to be listed. */
static const struct ipc_job *sort_job;
static int
cmp_area(const void *a, const void *b)
{
	const struct ipc_output_spec *oa = &sort_job->outputs[*(const int *)a];
	const struct ipc_output_spec *ob = &sort_job->outputs[*(const int *)b];
	uint64_t aa = (uint64_t)oa->width * oa->height;
	uint64_t ab = (uint64_t)ob->width * ob->height;
	return aa < ab ? 1 : aa > ab ? -1 :
	    *(const int *)a - *(const int *)b;
}

/* Opens a root of the job by its path and checks it is the folder the
 * supervisor holds (both ids 0: not checked).  fd, or -errno (-ESTALE:
 * another folder, or a link to one, took the path). */
static int
open_root(const char *path, uint64_t dev, uint64_t ino)
{
	struct stat st;
	int fd;

	if ((fd = beneath_root(path[0] != '\0' ? path : "/")) < 0)
		return fd;
	if ((dev != 0 || ino != 0) && (fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Opens job->src beneath the input root, following no symlink at any
 * level (a folder swapped for a link to /secret mid-batch must not be
 * read through), without blocking (a FIFO named x.jpg), and checks it is
 * the file the supervisor inspected.  fd, or -1 with res filled. */
static int
open_source(const struct ipc_job *job, struct stat *st,
    struct ipc_result *res)
{
	const char *rel = below(job->in_root, job->src);
	int root, fd;

	if (rel == NULL) {
		fail(res, "source is not below the input folder");
		return -1;
	}
	root = open_root(job->in_root, job->in_root_dev, job->in_root_ino);
	if (root == -ESTALE) {
		fail(res, "the input folder was replaced since the file was "
		    "queued");
		return -1;
	}
	if (root < 0) {
		fail(res, "cannot open the input folder: %s", strerror(-root));
		return -1;
	}
	fd = beneath_open(root, rel, O_RDONLY | O_NONBLOCK, 0);
	close(root);
	if (fd < 0) {
		if (fd == -ELOOP)
			fail(res, "source is a symbolic link or lies below "
			    "one (not followed)");
		else if (fd == -ENOENT || fd == -ENOTDIR)
			fail(res, "source disappeared before it was read");
		else if (fd == -EXDEV)
			fail(res, "source is not below the input folder");
		else
			fail(res, "cannot open source: %s", strerror(-fd));
		return -1;
	}
	if (fstat(fd, st) != 0) {
		fail(res, "cannot open source: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if ((job->src_dev != 0 || job->src_ino != 0) &&
	    ((uint64_t)st->st_dev != job->src_dev ||
	    (uint64_t)st->st_ino != job->src_ino)) {
		fail(res, "source was replaced since it was queued");
		res->status = IPC_REPLACED;
		close(fd);
		return -1;
	}
	return fd;
}

int
thumb_process(const struct ipc_job *job, struct ipc_result *res)
{
	double t0 = now_ms();
	VipsSource *source = NULL;
	VipsImage *header = NULL, *thumb = NULL, *srgb = NULL, *decoded = NULL;
	VipsImage *managed = NULL;
	enum colour_kind kind = COLOUR_NONE;
	struct out_tmp tmps[IPC_MAX_OUTPUTS];
	struct plan plans[IPC_MAX_OUTPUTS];
	uint8_t head[SNIFF_HEAD];
	char procpath[64], why[128];
	enum sniff_format format;
	const char *nick;
	bool via_path;
	struct stat st;
	ssize_t hn;
	int fd = -1, out_root = -1;
	uint32_t nout = job->noutputs < IPC_MAX_OUTPUTS ?
	    job->noutputs : IPC_MAX_OUTPUTS;

	memset(res, 0, sizeof *res);
	memset(tmps, 0, sizeof tmps);
	for (uint32_t i = 0; i < IPC_MAX_OUTPUTS; i++)
		tmps[i].dir = -1;
	res->status = IPC_FAILED;
	vips_error_clear();

	if ((fd = open_source(job, &st, res)) < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		fail(res, "not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		fail(res, "empty file");
		goto out;
	}
	/* Reads are blocking from here on (regular files never block, but
	 * some loaders treat EAGAIN as an error). */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

	/* The format from its magic bytes, and that format's loader or
	 * none: no other loader's code sees the file. */
	do
		hn = pread(fd, head, sizeof head, 0);
	while (hn < 0 && errno == EINTR);
	if (hn < 0) {
		fail(res, "cannot read source: %s", strerror(errno));
		goto out;
	}
	format = sniff_format(head, (size_t)hn);
	if ((nick = choose_loader(format, &via_path)) == NULL) {
		fail_format(res, format, head, (size_t)hn);
		goto out;
	}
	/* libpng inflates every text and profile chunk with no total
	 * bound, libjpeg keeps every metadata segment: measure them
	 * before either sees the file. */
	if (format == SNIFF_PNG || format == SNIFF_JPEG) {
		int prc = format == SNIFF_PNG ?
		    sniff_png_check(pread_fd, &fd, why, sizeof why) :
		    sniff_jpeg_check(pread_fd, &fd, why, sizeof why);
		if (prc == -EFBIG) {
			fail(res, "too much metadata: %s", why);
			goto out;
		}
		if (prc < 0) {
			fail(res, "cannot read source: %s", strerror(-prc));
			goto out;
		}
	}

	if ((source = vips_source_new_from_descriptor(fd)) == NULL) {
		fail(res, "cannot read source");
		goto out;
	}
	/* ImageMagick has no source loader in 8.14: it gets the path of
	 * the descriptor already opened and checked, never job->src. */
	snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fd);

	/* Header only, so no pixel is decoded before the size is checked;
	 * and by name, so it is the loader chosen above and no other. */
	if (vips_call(nick, via_path ? (void *)procpath : (void *)source,
	    &header, "access", VIPS_ACCESS_SEQUENTIAL, NULL) != 0)
		header = NULL;
	if (header == NULL) {
		fail_vips(res, nick, "not a supported image");
		goto out;
	}

	int w = header->Xsize, h = vips_image_get_page_height(header);
	int64_t pixels = (int64_t)w * h;
	if (job->max_pixels > 0 && pixels > job->max_pixels) {
		fail(res, "image too large: %dx%d = %lld pixels (MAX_PIXELS "
		    "%lld)", w, h, (long long)pixels,
		    (long long)job->max_pixels);
		goto out;
	}
	int interlaced = 0;
	if (vips_isprefix("jpegload", nick) &&
	    vips_image_get_typeof(header, "interlaced") &&
	    vips_image_get_int(header, "interlaced", &interlaced) == 0 &&
	    interlaced && pixels > PROGRESSIVE_MAX_PIXELS) {
		fail(res, "progressive JPEG too large: %dx%d = %lld pixels "
		    "(limit %lld: progressive JPEGs decode whole in memory)",
		    w, h, (long long)pixels, (long long)PROGRESSIVE_MAX_PIXELS);
		goto out;
	}
	int orientation = 1;
	if (vips_image_get_typeof(header, VIPS_META_ORIENTATION) &&
	    vips_image_get_int(header, VIPS_META_ORIENTATION, &orientation))
		orientation = 1;
	if (orientation >= 5 && orientation <= 8) {
		int tmpw = w;
		w = h;
		h = tmpw;
	}
	res->src_width = (uint32_t)w;
	res->src_height = (uint32_t)h;
	/* 8-bit RGBA PNG without a profile, every output JPEG: the alpha
	 * can be laid on the background before the shrink (see below). */
	bool flatten_first = !via_path && vips_isprefix("pngload", nick) &&
	    header->Bands == 4 && header->BandFmt == VIPS_FORMAT_UCHAR &&
	    !vips_image_get_typeof(header, VIPS_META_ICC_NAME) &&
	    all_jpeg(job, nout);
	VIPS_UNREF(header);

	if (nout == 0) {
		res->status = IPC_OK;
		goto out;
	}

	/* Decode once, to the largest size any output needs. */
	double scale = 0;
	for (uint32_t i = 0; i < nout; i++) {
		plan_output(&job->outputs[i], w, h, &plans[i]);
		scale = fmax(scale, plans[i].scale);
	}
	int dw = scale >= 1.0 ? w : (int)fmin(w, ceil(w * scale - 1e-9));
	if (dw < 1)
		dw = 1;
	/* Height unbounded: the width alone fixes the shrink, so the
	 * decoded image keeps the source's aspect to the pixel. */
	int rc;
	if (via_path) {
		/* vips_thumbnail(path) would pick its own loader, maybe a
		 * blocked one; these file-only loaders have no shrink-on-load
		 * to lose by loading first. */
		rc = vips_call(nick, procpath, &header,
		    "access", VIPS_ACCESS_SEQUENTIAL,
		    "fail_on", VIPS_FAIL_ON_ERROR, NULL);
		if (rc == 0)
			rc = import_cmyk(&header);
		if (rc == 0)
			rc = vips_thumbnail_image(header, &thumb, dw,
			    "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN,
			    NULL);
	} else if (flatten_first) {
		/* vips_thumbnail premultiplies an image with alpha, which
		 * makes its whole shrink 4-band float.  When no output keeps
		 * the alpha, flattening on the (constant) background first
		 * gives the same pixels (flatten commutes with a linear
		 * resize; mean difference < 1/255 on the corpus' RGBA PNGs)
		 * from a 3-band 8-bit shrink: 29% less CPU on those images.
		 * PNG has no shrink-on-load to lose by loading first. */
		VipsImage *flat = NULL;
		rc = vips_call(nick, source, &header,
		    "access", VIPS_ACCESS_SEQUENTIAL,
		    "fail_on", VIPS_FAIL_ON_ERROR, NULL);
		if (rc == 0)
			rc = flatten_on(header, &flat, job->background);
		if (rc == 0)
			rc = vips_thumbnail_image(flat, &thumb, dw,
			    "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN,
			    NULL);
		VIPS_UNREF(flat);
	} else {
		/* The chosen loader by name, then vips_thumbnail_image:
		 * vips_thumbnail_source would pick the loader again with
		 * every loader's sniffer (see choose_loader).  Shrink-on-load
		 * is kept by asking the loader for it as vips_thumbnail does:
		 * libjpeg's block shrink, libwebp's, rsvg's and poppler's
		 * scale. */
		VipsImage *loaded = NULL;
		double shrink = (double)w / dw;
		if (format == SNIFF_JPEG)
			rc = vips_call(nick, source, &loaded,
			    "access", VIPS_ACCESS_SEQUENTIAL,
			    "fail_on", VIPS_FAIL_ON_ERROR,
			    "shrink", jpeg_shrink(shrink), NULL);
		else if ((format == SNIFF_WEBP || format == SNIFF_SVG ||
		    format == SNIFF_GZIP || format == SNIFF_PDF) &&
		    shrink > 1.0)
			rc = vips_call(nick, source, &loaded,
			    "access", VIPS_ACCESS_SEQUENTIAL,
			    "fail_on", VIPS_FAIL_ON_ERROR,
			    "scale", 1.0 / shrink, NULL);
		else
			rc = vips_call(nick, source, &loaded,
			    "access", VIPS_ACCESS_SEQUENTIAL,
			    "fail_on", VIPS_FAIL_ON_ERROR, NULL);
		if (rc == 0 && format == SNIFF_HEIF)
			rc = attach_nclx(&loaded, fd, (uint64_t)st.st_size);
		if (rc == 0)
			rc = import_cmyk(&loaded);
		if (rc == 0)
			rc = vips_thumbnail_image(loaded, &thumb, dw,
			    "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN,
			    NULL);
		VIPS_UNREF(loaded);
	}
	/* One output with no crop is saved straight from the decode
	 * pipeline: the copy to memory only serves outputs sharing one
	 * decode, and costs a second pipeline run (a thread-pool start and
	 * stop) per image: 25% of the CPU on small files. */
	bool direct = nout == 1 && plans[0].cw == plans[0].rw &&
	    plans[0].ch == plans[0].rh;
	/* An embedded profile (CMYK with its own is sRGB already, see
	 * import_cmyk): none or sRGB costs nothing; grey becomes sRGB
	 * here, on the shrunk image, before to_srgb8 would take its numbers
	 * as sRGB's; an RGB one is converted (or kept) per output, after
	 * the resize. */
	if (rc == 0)
		kind = colour_classify(thumb);
	if (rc == 0 && kind == COLOUR_OTHER) {
		if ((rc = colour_to_srgb(thumb, &managed)) == 0) {
			VIPS_UNREF(thumb);
			thumb = managed;
			managed = NULL;
			kind = COLOUR_SRGB;
		}
	}
	if (rc != 0 || to_srgb8(thumb, &srgb) != 0 ||
	    (decoded = direct ? g_object_ref(srgb) :
	    vips_image_copy_memory(srgb)) == NULL) {
		fail_vips(res, nick, "corrupt or truncated image");
		goto out;
	}
	/* Only the first page or frame was decoded: drop the multi-page
	 * metadata so no saver tries to write an animation. */
	vips_image_remove(decoded, VIPS_META_PAGE_HEIGHT);
	vips_image_remove(decoded, VIPS_META_N_PAGES);
	vips_image_remove(decoded, "delay");
	vips_image_remove(decoded, "loop");
	vips_image_remove(decoded, "gif-delay");
	vips_image_remove(decoded, "gif-loop");

	int order[IPC_MAX_OUTPUTS];
	for (uint32_t i = 0; i < nout; i++)
		order[i] = (int)i;
	sort_job = job;
	qsort(order, nout, sizeof order[0], cmp_area);

	/* Every output is written beneath the output root, pinned once:
	 * a symlink planted in the output tree is never followed. */
	out_root = open_root(job->out_root, job->out_root_dev,
	    job->out_root_ino);
	if (out_root < 0) {
		fail_output(res, job->out_root, -out_root, out_root == -ESTALE ?
		    "OUTPUT_DIR was replaced by another folder or a link" :
		    NULL);
		goto out;
	}
	for (uint32_t k = 0; k < nout; k++) {
		int i = order[k];
		if (render_one(decoded, kind, direct ? nick : NULL, job, out_root,
		    (int64_t)st.st_size, &job->outputs[i], &plans[i],
		    &tmps[i], res) != 0)
			goto out;
	}

	/* Every output is complete: publish them all. */
	for (uint32_t i = 0; i < nout; i++) {
		/* within the pinned folder: the temp's own */
		if (renameat(tmps[i].dir, tmps[i].name, tmps[i].dir,
		    tmps[i].leaf) != 0) {
			fail_output(res, job->outputs[i].path, errno, NULL);
			goto out;
		}
		tmps[i].name[0] = '\0';
		res->noutputs++;
		res->out_bytes += tmps[i].bytes;
	}
	res->status = IPC_OK;

out:
	for (uint32_t i = 0; i < nout; i++) {
		if (tmps[i].dir < 0)
			continue;
		if (tmps[i].name[0] != '\0')
			(void)unlinkat(tmps[i].dir, tmps[i].name, 0);
		close(tmps[i].dir);
	}
	if (out_root >= 0)
		close(out_root);
	VIPS_UNREF(decoded);
	VIPS_UNREF(srgb);
	VIPS_UNREF(managed);
	VIPS_UNREF(thumb);
	VIPS_UNREF(header);
	VIPS_UNREF(source);
	if (fd >= 0)
		close(fd);
	vips_error_clear();
#ifdef __GLIBC__
	/* Hand the decode's freed pages back when a large image left many:
	 * workers live long and their peak comes from the largest image
	 * they ever saw; after small ones the pages are simply reused. */
#if __GLIBC_PREREQ(2, 33)
	if (mallinfo2().fordblks > TRIM_FREE_BYTES)
		malloc_trim(0);
#else
	malloc_trim(0);
#endif
#endif
	double ms = now_ms() - t0;
	res->ms = ms < 0 ? 0 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	if (res->status == IPC_OK)
		res->error[0] = '\0';
	return res->status == IPC_OK ? 0 : -1;
}
