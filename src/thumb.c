/*
 * thumb: every output of one job from a single decode (libvips).
 *
 * Worker side only.  Owns the libvips set-up of a worker process (threads,
 * cache, loader allow-list) and the life of one job: open the source without
 * following links or blocking, pick an enabled loader, check the pixel count
 * from the header, decode once with vips_thumbnail to the largest size any
 * output needs, then resize/crop/flatten each output from that in-memory
 * image, write each to a temp beside its final path and rename them all
 * into place only when every one of them succeeded.
 */
#include "fsutil.h"
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

/* Loader class per extension.  Unblocking a class unblocks its file,
 * buffer and source variants. */
static const struct {
	const char *ext;
	const char *loader;
} loaders[] = {
	{ "jpg", "VipsForeignLoadJpeg" },
	{ "jpeg", "VipsForeignLoadJpeg" },
	{ "jpe", "VipsForeignLoadJpeg" },
	{ "png", "VipsForeignLoadPng" },
	{ "webp", "VipsForeignLoadWebp" },
	{ "tif", "VipsForeignLoadTiff" },
	{ "tiff", "VipsForeignLoadTiff" },
	{ "gif", "VipsForeignLoadNsgif" },
	{ "heic", "VipsForeignLoadHeif" },
	{ "heif", "VipsForeignLoadHeif" },
	{ "avif", "VipsForeignLoadHeif" },
	{ "jxl", "VipsForeignLoadJxl" },
	{ "svg", "VipsForeignLoadSvg" },
	{ "svgz", "VipsForeignLoadSvg" },
	{ "pdf", "VipsForeignLoadPdf" },
};
#define MAGICK_LOADER "VipsForeignLoadMagick"

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
		const char *name = NULL;
		for (size_t i = 0; i < G_N_ELEMENTS(loaders); i++)
			if (g_ascii_strcasecmp(tok, loaders[i].ext) == 0)
				name = loaders[i].loader;
		if (name != NULL)
			loader_enable(name);
		else
			magick = true;
	}
	g_free(list);
	if (magick)
		loader_enable(MAGICK_LOADER);
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

struct find {
	VipsSource *source;	/* sniffed by *_source loaders */
	const char *path;	/* is_a() for file-only loaders (magick) */
	bool blocked;		/* which loaders this pass may consider */
};

static bool
class_blocked(VipsForeignClass *fc)
{
	return (VIPS_OPERATION_CLASS(fc)->flags & VIPS_OPERATION_BLOCKED) != 0;
}

static void *
find_source_loader(void *item, void *a, void *b)
{
	VipsForeignClass *fc = item;
	struct find *f = a;
	VipsForeignLoadClass *lc = VIPS_FOREIGN_LOAD_CLASS(fc);
	VipsObjectClass *oc = VIPS_OBJECT_CLASS(fc);

	(void)b;
	if (G_TYPE_IS_ABSTRACT(G_TYPE_FROM_CLASS(fc)) ||
	    class_blocked(fc) != f->blocked || lc->is_a_source == NULL ||
	    !vips_ispostfix(oc->nickname, "_source"))
		return NULL;
	if (vips_source_rewind(f->source) != 0)
		return NULL;
	return lc->is_a_source(f->source) ? (void *)oc->nickname : NULL;
}

static void *
find_file_loader(void *item, void *a, void *b)
{
	VipsForeignClass *fc = item;
	struct find *f = a;
	VipsForeignLoadClass *lc = VIPS_FOREIGN_LOAD_CLASS(fc);
	VipsObjectClass *oc = VIPS_OBJECT_CLASS(fc);

	(void)b;
	if (G_TYPE_IS_ABSTRACT(G_TYPE_FROM_CLASS(fc)) || class_blocked(fc) ||
	    lc->is_a == NULL || vips_ispostfix(oc->nickname, "_source") ||
	    vips_ispostfix(oc->nickname, "_buffer"))
		return NULL;
	return lc->is_a(f->path) ? (void *)oc->nickname : NULL;
}

/* The loader this process will use, by our own sniffing rather than
 * vips_foreign_find_load_source(): that one ignores the allow-list, and
 * some loaders (poppler's) parse the whole file in their build before the
 * block check fires.  Enabled source loaders first; then enabled
 * file-only loaders (magick has no source loader in 8.14) through
 * /proc/self/fd, which names the descriptor already checked; blocked
 * loaders are only sniffed, never run, to name the format in the error.
 * Returns the nickname; *via_path says which kind; NULL with *blocked set
 * to the blocked loader's nickname, or NULL for an unknown format. */
static const char *
choose_loader(VipsSource *source, const char *procpath, bool *via_path,
    const char **blocked)
{
	struct find f = { .source = source, .path = procpath };
	const char *nick;

	*via_path = false;
	*blocked = NULL;
	nick = vips_foreign_map("VipsForeignLoad",
	    find_source_loader, &f, NULL);
	if (nick != NULL)
		return nick;
	if (procpath != NULL) {
		nick = vips_foreign_map("VipsForeignLoad",
		    find_file_loader, &f, NULL);
		if (nick != NULL) {
			*via_path = true;
			return nick;
		}
	}
	f.blocked = true;
	*blocked = vips_foreign_map("VipsForeignLoad",
	    find_source_loader, &f, NULL);
	vips_source_rewind(source);
	vips_error_clear();
	return NULL;
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

struct out_tmp {
	char path[PATH_MAX];	/* temp name, "" when none */
	int64_t bytes;
};

/* Makes the temp ".<name>.tw-XXXXXX" beside final (creating its folder).
 * Returns the descriptor or -errno. */
static int
tmp_open(const char *final, char *tmp, size_t tmplen)
{
	const char *slash = strrchr(final, '/');
	const char *name = slash ? slash + 1 : final;
	int dirlen = slash ? (int)(slash - final) : 0;
	char dir[PATH_MAX];

	if (slash != NULL && dirlen > 0) {
		snprintf(dir, sizeof dir, "%.*s", dirlen, final);
		int rc = fs_mkdir_p(dir, 0755);
		if (rc < 0)
			return rc;
	}
	/* the name keeps at most 200 bytes of the final one so the temp
	 * still fits NAME_MAX */
	int n = snprintf(tmp, tmplen, "%.*s%s.%.200s.tw-XXXXXX",
	    slash ? dirlen : 0, final, slash ? "/" : "", name);
	if (n < 0 || (size_t)n >= tmplen) {
		tmp[0] = '\0';
		return -ENAMETOOLONG;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		tmp[0] = '\0';
		return -e;
	}
	/* mkostemp makes 0600; thumbnails are for web servers and viewers */
	(void)fchmod(fd, 0644);
	return fd;
}

/* Saves img in the output's format through fd.  0 or -1 (vips error). */
static int
save_to_target(VipsImage *img, const struct ipc_output_spec *o,
    VipsTarget *target)
{
	int q = o->quality >= 1 && o->quality <= 100 ? o->quality : 85;
	gboolean strip = o->strip != 0;
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
save_to_fd(VipsImage *img, const struct ipc_output_spec *o, int fd)
{
	VipsTarget *target = vips_target_new_to_descriptor(fd);
	int rc;

	if (target == NULL)
		return -1;
	rc = save_to_target(img, o, target);
	VIPS_UNREF(target);
	return rc;
}

/* One output from the decoded image: resize, crop, flatten, save to a
 * fresh temp with the source's times.  0, or -1 with res filled. */
static int
render_one(VipsImage *decoded, const char *lazy_loader,
    const struct ipc_job *job, int64_t src_size,
    const struct ipc_output_spec *o, const struct plan *p,
    struct out_tmp *tmp, struct ipc_result *res)
{
	VipsImage *t[3] = { NULL, NULL, NULL };
	VipsImage *x;
	int fd = -1, rc = -1;
	struct stat st;

	if (resize_to(decoded, &t[0], p->rw, p->rh) ||
	    crop_to(t[0], &t[1], p->cw, p->ch, o->gravity)) {
		fail_vips(res, NULL, "cannot resize for %s", o->path);
		goto out;
	}
	x = t[1];
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

	fd = tmp_open(o->path, tmp->path, sizeof tmp->path);
	if (fd < 0) {
		fail_output(res, o->path, -fd, NULL);
		goto out;
	}
	if (lazy_loader != NULL) {
		/* decoded is still the decode pipeline: encode to memory so
		 * a decode error is the image's (remembered) and only the
		 * write below can be the disk's (retried). */
		VipsTarget *mem = vips_target_new_to_memory();
		VipsBlob *blob = NULL;
		if (mem == NULL || save_to_target(x, o, mem) != 0) {
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
	} else if (save_to_fd(x, o, fd)) {
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
	for (int i = 0; i < 3; i++)
		VIPS_UNREF(t[i]);
	return rc;
}

/* ---- the job --------------------------------------------------------- */

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

int
thumb_process(const struct ipc_job *job, struct ipc_result *res)
{
	double t0 = now_ms();
	VipsSource *source = NULL;
	VipsImage *header = NULL, *thumb = NULL, *srgb = NULL, *decoded = NULL;
	struct out_tmp tmps[IPC_MAX_OUTPUTS];
	struct plan plans[IPC_MAX_OUTPUTS];
	char procpath[64];
	const char *nick, *blocked;
	bool via_path;
	struct stat st;
	int fd = -1;
	uint32_t nout = job->noutputs < IPC_MAX_OUTPUTS ?
	    job->noutputs : IPC_MAX_OUTPUTS;

	memset(res, 0, sizeof *res);
	memset(tmps, 0, sizeof tmps);
	res->status = IPC_FAILED;
	vips_error_clear();

	/* O_NONBLOCK: a FIFO named x.jpg must not hang the worker in open();
	 * O_NOFOLLOW: a symlink could point anywhere, out of the tree too. */
	fd = open(job->src, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			fail(res, "source is a symbolic link (not followed)");
		else if (errno == ENOENT)
			fail(res, "source disappeared before it was read");
		else
			fail(res, "cannot open source: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		fail(res, "cannot open source: %s", strerror(errno));
		goto out;
	}
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

	if ((source = vips_source_new_from_descriptor(fd)) == NULL) {
		fail(res, "cannot read source");
		goto out;
	}
	snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fd);
	nick = choose_loader(source,
	    access(procpath, R_OK) == 0 ? procpath : NULL, &via_path, &blocked);
	if (nick == NULL) {
		if (blocked != NULL)
			fail_blocked(res, blocked);
		else
			fail(res, "not a supported image (no enabled loader "
			    "recognises its contents)");
		goto out;
	}

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
		/* 8.14.1's thumbnail_source does not hand its fail_on to
		 * the loader (the file variant does): the truncated JPEG
		 * test catches that; the loader option string does reach it. */
		rc = vips_thumbnail_source(source, &thumb, dw,
		    "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN,
		    "fail_on", VIPS_FAIL_ON_ERROR,
		    "option_string", "fail_on=error", NULL);
	}
	/* One output with no crop is saved straight from the decode
	 * pipeline: the copy to memory only serves outputs sharing one
	 * decode, and costs a second pipeline run (a thread-pool start and
	 * stop) per image: 25% of the CPU on small files. */
	bool direct = nout == 1 && plans[0].cw == plans[0].rw &&
	    plans[0].ch == plans[0].rh;
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

	for (uint32_t k = 0; k < nout; k++) {
		int i = order[k];
		if (render_one(decoded, direct ? nick : NULL, job,
		    (int64_t)st.st_size, &job->outputs[i], &plans[i],
		    &tmps[i], res) != 0)
			goto out;
	}

	/* Every output is complete: publish them all. */
	for (uint32_t i = 0; i < nout; i++) {
		if (rename(tmps[i].path, job->outputs[i].path) != 0) {
			fail_output(res, job->outputs[i].path, errno, NULL);
			goto out;
		}
		tmps[i].path[0] = '\0';
		res->noutputs++;
		res->out_bytes += tmps[i].bytes;
	}
	res->status = IPC_OK;

out:
	for (uint32_t i = 0; i < nout; i++)
		if (tmps[i].path[0] != '\0')
			(void)unlink(tmps[i].path);
	VIPS_UNREF(decoded);
	VIPS_UNREF(srgb);
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
