/*
 * Unit tests for thumb: real libvips on the images in samples/ (run from the
 * repository root), copied into a fresh temp folder.  One process, one
 * thumb_init: the loader allow-list is process-wide.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "config.h"
#include "ipc.h"
#include "thumb.h"

#define FORMATS "jpg,jpeg,png,webp,tif,tiff,gif,heic,heif,avif,jxl"
#define MAX_PIXELS 268402689LL

static char root[64];		/* the temp folder */
static char srcdir[128], outdir[128];

/* ---- helpers ------------------------------------------------------------ */

static void
copy_file(const char *from, const char *to)
{
	gchar *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(from, &data, &len, NULL))
		fail_msg("cannot read %s (run the tests from the repo root)",
		    from);
	assert_true(g_file_set_contents(to, data, (gssize)len, NULL));
	g_free(data);
}

static void
src_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", srcdir, name);
}

static void
write_src(const char *name, const void *data, size_t len)
{
	char path[256];
	src_path(path, sizeof path, name);
	assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
}

static int64_t
mtime_ns(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void
job_init(struct ipc_job *job, const char *name)
{
	memset(job, 0, sizeof *job);
	src_path(job->src, sizeof job->src, name);
	/* the roots the worker resolves every path beneath (no links) */
	snprintf(job->in_root, sizeof job->in_root, "%s", srcdir);
	snprintf(job->out_root, sizeof job->out_root, "%s", outdir);
	job->max_pixels = MAX_PIXELS;
	job->src_mtime_ns = 1600000000123456789LL;
	snprintf(job->background, sizeof job->background, "255,255,255");
}

static const char *
ext_of(enum out_format f)
{
	switch (f) {
	case FORMAT_WEBP: return "webp";
	case FORMAT_PNG: return "png";
	case FORMAT_AVIF: return "avif";
	default: return "jpg";
	}
}

/* Adds an output OUTDIR/<sub>/<name>.<ext>; returns its index. */
static int
add_out(struct ipc_job *job, const char *sub, const char *name,
    int w, int h, enum fit fit, const char *gravity, enum out_format fmt)
{
	int i = (int)job->noutputs++;
	struct ipc_output_spec *o = &job->outputs[i];

	assert_true(i < IPC_MAX_OUTPUTS);
	snprintf(o->path, sizeof o->path, "%s/%s/%s.%s", outdir, sub, name,
	    ext_of(fmt));
	o->width = (uint32_t)w;
	o->height = (uint32_t)h;
	o->fit = (uint8_t)fit;
	snprintf(o->gravity, sizeof o->gravity, "%s", gravity);
	o->format = (uint8_t)fmt;
	o->quality = 85;
	o->progressive = 0;
	o->strip = 1;
	return i;
}

static void
run_ok(const struct ipc_job *job, struct ipc_result *res)
{
	int rc = thumb_process(job, res);
	if (rc != 0 || res->status != IPC_OK)
		fail_msg("%s failed: %s", job->src, res->error);
	assert_int_equal(res->noutputs, job->noutputs);
	assert_string_equal(res->error, "");
}

/* Runs a job that must fail; checks the error is one short line that
 * starts with prefix. */
static void
run_fail(const struct ipc_job *job, struct ipc_result *res,
    const char *prefix)
{
	assert_int_equal(thumb_process(job, res), -1);
	/* A thumbnail that cannot be written is the output's fault, not the
	 * image's: it has its own status so the supervisor retries it. */
	assert_int_equal(res->status,
	    strncmp(prefix, "cannot write thumbnail", 22) == 0 ?
	    IPC_FAILED_OUTPUT : strncmp(prefix, "source was replaced", 19) == 0 ?
	    IPC_REPLACED : IPC_FAILED);
	if (strncmp(res->error, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"",
		    res->error, prefix);
	assert_null(strchr(res->error, '\n'));
	assert_true(strlen(res->error) <= 300);
	assert_int_equal(res->noutputs, 0);
	/* whoever reports clears: nothing left for the next job */
	assert_string_equal(vips_error_buffer(), "");
}

static VipsImage *
open_image(const char *path)
{
	VipsImage *im = vips_image_new_from_file(path, NULL);
	if (im == NULL)
		fail_msg("cannot open output %s: %s", path,
		    vips_error_buffer());
	return im;
}

static void
assert_size(const char *path, int w, int h)
{
	VipsImage *im = open_image(path);
	if (vips_image_get_width(im) != w || vips_image_get_height(im) != h)
		fail_msg("%s is %dx%d, expected %dx%d", path,
		    vips_image_get_width(im), vips_image_get_height(im), w, h);
	g_object_unref(im);
}

/* Pixel (x, y) of an image file, bands into px[0..3]; returns bands. */
static int
pixel(const char *path, int x, int y, double px[4])
{
	VipsImage *im = open_image(path);
	double *v = NULL;
	int n = 0;

	if (vips_getpoint(im, &v, &n, x, y, NULL))
		fail_msg("getpoint %s: %s", path, vips_error_buffer());
	assert_true(n >= 1 && n <= 4);
	for (int i = 0; i < n; i++)
		px[i] = v[i];
	g_free(v);
	g_object_unref(im);
	return n;
}

static int
count_temps(const char *dir)
{
	char cmd[300];
	int n = 0;

	/* recursive: temps live beside outputs in sub-folders */
	snprintf(cmd, sizeof cmd, "find '%s' -name '*.tw-*' 2>/dev/null", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[4096];
	while (fgets(line, sizeof line, p) != NULL)
		n++;
	pclose(p);
	return n;
}

static bool
exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int64_t
file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* ---- group set-up ------------------------------------------------------- */

static const char *samples[] = {
	"landscape.jpg", "alpha.png", "cmyk.jpg", "deep16.png", "anim.gif",
	"pages.tif", "photo.webp",
};

static int
group_setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/tw-thumb-XXXXXX");
	if (mkdtemp(root) == NULL)
		return -1;
	snprintf(srcdir, sizeof srcdir, "%s/src", root);
	snprintf(outdir, sizeof outdir, "%s/out", root);
	if (mkdir(srcdir, 0755) != 0 || mkdir(outdir, 0755) != 0)
		return -1;
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		char from[256], to[256];
		snprintf(from, sizeof from, "samples/%s", samples[i]);
		src_path(to, sizeof to, samples[i]);
		copy_file(from, to);
	}
	return thumb_init("test_thumb", FORMATS);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	/* a test may have left a folder read-only */
	snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null", root);
	if (system(cmd) != 0) {
		/* nothing to do: nftw reports what it cannot remove */
	}
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	thumb_shutdown();
	return 0;
}

/* ---- sizes and geometry ------------------------------------------------- */

static void
test_inside_fits_box(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "photo.webp");
	int i = add_out(&job, "inside", "photo", 300, 300, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	run_ok(&job, &res);
	/* 640x427 into 300x300: width-bound, aspect kept */
	assert_size(job.outputs[i].path, 300, 200);
	assert_int_equal(res.src_width, 640);
	assert_int_equal(res.src_height, 427);
	assert_int_equal(res.out_bytes, file_size(job.outputs[i].path));
	assert_int_equal(count_temps(outdir), 0);
}

static void
test_inside_never_upscales(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "deep16.png");
	int i = add_out(&job, "small", "deep", 1000, 1000, FIT_INSIDE,
	    "centre", FORMAT_PNG);
	run_ok(&job, &res);
	assert_size(job.outputs[i].path, 320, 240);
}

static void
test_orientation_applied(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double left[4], right[4];
	(void)state;

	job_init(&job, "landscape.jpg");
	int i = add_out(&job, "orient", "stripped", 300, 300, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	int k = add_out(&job, "orient", "kept", 300, 300, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	job.outputs[k].strip = 0;
	run_ok(&job, &res);

	/* stored 800x533 with Orientation 6: upright is 533x800 */
	assert_int_equal(res.src_width, 533);
	assert_int_equal(res.src_height, 800);
	assert_size(job.outputs[i].path, 200, 300);
	assert_size(job.outputs[k].path, 200, 300);

	for (int n = 0; n < 2; n++) {
		VipsImage *im = open_image(job.outputs[n == 0 ? i : k].path);
		int o = 1;
		if (vips_image_get_typeof(im, VIPS_META_ORIENTATION))
			assert_int_equal(vips_image_get_int(im,
			    VIPS_META_ORIENTATION, &o), 0);
		assert_true(o <= 1);
		g_object_unref(im);
	}

	/* Rotated clockwise, not just resized to portrait: the stored
	 * bottom (green ground) is now on the left, the stored top (blue
	 * sky) on the right. */
	pixel(job.outputs[i].path, 5, 150, left);
	pixel(job.outputs[i].path, 194, 150, right);
	assert_true(left[1] > left[2]);
	assert_true(right[2] > right[0] + 100);
}

static void
test_six_presets_one_decode(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "landscape.jpg");
	int a = add_out(&job, "six", "p150", 150, 150, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	int b = add_out(&job, "six", "p300", 300, 300, FIT_INSIDE, "centre",
	    FORMAT_WEBP);
	int c = add_out(&job, "six", "p600", 600, 600, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	int d = add_out(&job, "six", "p1200", 1200, 800, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	int e = add_out(&job, "six", "sq400", 400, 400, FIT_COVER, "centre",
	    FORMAT_JPEG);
	int f = add_out(&job, "six", "wide", 1200, 300, FIT_COVER, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);

	/* upright source 533x800 */
	assert_size(job.outputs[a].path, 100, 150);
	assert_size(job.outputs[b].path, 200, 300);
	assert_size(job.outputs[c].path, 400, 600);
	/* the box is bigger than the source: no upscaling */
	assert_size(job.outputs[d].path, 533, 800);
	/* source big enough: exactly the box */
	assert_size(job.outputs[e].path, 400, 400);
	/* box wider than the source: cropped to 4:1, not upscaled */
	assert_size(job.outputs[f].path, 533, 133);

	int64_t sum = 0;
	for (uint32_t i = 0; i < job.noutputs; i++)
		sum += file_size(job.outputs[i].path);
	assert_int_equal(res.out_bytes, sum);
	assert_int_equal(res.noutputs, 6);
	assert_int_equal(count_temps(outdir), 0);
}

static void
test_cover_gravity(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double top[4], bottom[4];
	(void)state;

	job_init(&job, "photo.webp");
	int att = add_out(&job, "cover", "att", 200, 200, FIT_COVER,
	    "attention", FORMAT_JPEG);
	int ent = add_out(&job, "cover", "ent", 150, 90, FIT_COVER,
	    "entropy", FORMAT_WEBP);
	int n = add_out(&job, "cover", "north", 300, 100, FIT_COVER,
	    "north", FORMAT_PNG);
	int s = add_out(&job, "cover", "south", 300, 100, FIT_COVER,
	    "south", FORMAT_PNG);
	int ne = add_out(&job, "cover", "ne", 100, 300, FIT_COVER,
	    "north-east", FORMAT_PNG);
	run_ok(&job, &res);
	assert_size(job.outputs[att].path, 200, 200);
	assert_size(job.outputs[ent].path, 150, 90);
	assert_size(job.outputs[n].path, 300, 100);
	assert_size(job.outputs[s].path, 300, 100);
	assert_size(job.outputs[ne].path, 100, 300);

	/* the sky runs from blue (top) to orange (bottom): north keeps the
	 * blue band, south the orange one */
	pixel(job.outputs[n].path, 5, 5, top);
	pixel(job.outputs[s].path, 5, 95, bottom);
	assert_true(top[2] > top[0] + 80);
	assert_true(bottom[0] > bottom[2] + 80);
}

static void
test_fill_exact(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "photo.webp");
	int a = add_out(&job, "fill", "sq", 200, 200, FIT_FILL, "centre",
	    FORMAT_JPEG);
	int b = add_out(&job, "fill", "strip", 100, 20, FIT_FILL, "centre",
	    FORMAT_PNG);
	run_ok(&job, &res);
	assert_size(job.outputs[a].path, 200, 200);
	assert_size(job.outputs[b].path, 100, 20);
}

/* ---- colour, alpha, pages ------------------------------------------------ */

static void
assert_srgb8(const char *path, int bands)
{
	VipsImage *im = open_image(path);
	assert_int_equal(vips_image_get_bands(im), bands);
	assert_int_equal(vips_image_get_format(im), VIPS_FORMAT_UCHAR);
	assert_int_equal(vips_image_get_interpretation(im),
	    VIPS_INTERPRETATION_sRGB);
	g_object_unref(im);
}

static void
test_cmyk_and_16bit_become_srgb8(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "cmyk.jpg");
	int a = add_out(&job, "colour", "cmyk", 200, 200, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	int b = add_out(&job, "colour", "cmyk", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	run_ok(&job, &res);
	assert_srgb8(job.outputs[a].path, 3);
	assert_srgb8(job.outputs[b].path, 3);

	job_init(&job, "deep16.png");
	a = add_out(&job, "colour", "deep", 200, 200, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	b = add_out(&job, "colour", "deep", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_WEBP);
	run_ok(&job, &res);
	assert_srgb8(job.outputs[a].path, 3);
	assert_srgb8(job.outputs[b].path, 3);

	/* the 16-bit range was scaled, not clipped: the top-right corner of
	 * deep16.png is red 65280 -> ~254 */
	double px[4];
	pixel(job.outputs[a].path, 199, 0, px);
	assert_true(px[0] > 230);
}

static void
test_alpha_flattened_for_jpeg(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double px[4];
	(void)state;

	job_init(&job, "alpha.png");
	int i = add_out(&job, "alpha", "white", 200, 200, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	run_ok(&job, &res);
	assert_int_equal(pixel(job.outputs[i].path, 0, 0, px), 3);
	assert_true(px[0] > 250 && px[1] > 250 && px[2] > 250);

	job_init(&job, "alpha.png");
	snprintf(job.background, sizeof job.background, "255,0,0");
	i = add_out(&job, "alpha", "red", 200, 200, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_int_equal(pixel(job.outputs[i].path, 0, 0, px), 3);
	assert_true(px[0] > 245 && px[1] < 10 && px[2] < 10);
	/* the disc is opaque and is not the background */
	pixel(job.outputs[i].path, 100, 75, px);
	assert_true(px[1] > 40 || px[2] > 40);
}

static void
test_alpha_kept_for_png_webp(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double px[4];
	(void)state;

	job_init(&job, "alpha.png");
	int a = add_out(&job, "alpha", "keep", 200, 200, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	int b = add_out(&job, "alpha", "keep", 150, 150, FIT_INSIDE, "centre",
	    FORMAT_WEBP);
	run_ok(&job, &res);
	for (int n = 0; n < 2; n++) {
		const char *p = job.outputs[n == 0 ? a : b].path;
		assert_int_equal(pixel(p, 0, 0, px), 4);
		assert_true(px[3] < 1);
		pixel(p, 75, 55, px);
		assert_true(px[3] > 250);
	}
}

static void
test_avif_output(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double px[4];
	(void)state;

	job_init(&job, "alpha.png");
	int i = add_out(&job, "avif", "alpha", 120, 120, FIT_INSIDE, "centre",
	    FORMAT_AVIF);
	run_ok(&job, &res);
	assert_size(job.outputs[i].path, 120, 90);
	assert_int_equal(pixel(job.outputs[i].path, 0, 0, px), 4);
	assert_true(px[3] < 5);

	/* an AV1 HEIF, not HEVC */
	gchar *data = NULL;
	gsize len = 0;
	assert_true(g_file_get_contents(job.outputs[i].path, &data, &len,
	    NULL));
	assert_true(len > 12);
	assert_memory_equal(data + 4, "ftypavif", 8);

	/* and read back as a source through the heif loader */
	write_src("made.avif", data, len);
	g_free(data);
	job_init(&job, "made.avif");
	i = add_out(&job, "avif", "back", 60, 60, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_size(job.outputs[i].path, 60, 45);
	assert_int_equal(res.src_width, 120);
}

static void
assert_one_page(const char *path)
{
	VipsImage *im = open_image(path);
	assert_int_equal(vips_image_get_n_pages(im), 1);
	assert_int_equal(vips_image_get_page_height(im),
	    vips_image_get_height(im));
	g_object_unref(im);
}

static void
test_gif_first_frame(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	double px[4];
	(void)state;

	job_init(&job, "anim.gif");
	int a = add_out(&job, "gif", "anim", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	int b = add_out(&job, "gif", "anim", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_WEBP);
	run_ok(&job, &res);
	/* one 200x150 frame, not the 200x600 strip of four */
	assert_size(job.outputs[a].path, 100, 75);
	assert_size(job.outputs[b].path, 100, 75);
	assert_one_page(job.outputs[a].path);
	assert_one_page(job.outputs[b].path);
	assert_int_equal(res.src_height, 150);

	/* frame 1 has its red disc on the left, frame 4 on the right */
	pixel(job.outputs[a].path, 20, 37, px);
	assert_true(px[0] > 200 && px[1] < 120);
	pixel(job.outputs[a].path, 80, 37, px);
	assert_false(px[0] > 200 && px[1] < 120);
}

static void
test_tiff_first_page(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "pages.tif");
	int a = add_out(&job, "tif", "pages", 150, 150, FIT_INSIDE, "centre",
	    FORMAT_WEBP);
	int b = add_out(&job, "tif", "pages", 150, 150, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_size(job.outputs[a].path, 150, 100);
	assert_size(job.outputs[b].path, 150, 100);
	assert_one_page(job.outputs[a].path);
	assert_int_equal(res.src_height, 200);
}

static void
test_jxl_enabled(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char path[256];
	(void)state;

	/* jxl is "untrusted" in 8.14 but enabled by the list */
	VipsImage *im = open_image("samples/photo.webp");
	src_path(path, sizeof path, "photo.jxl");
	if (vips_image_write_to_file(im, path, NULL) != 0) {
		g_object_unref(im);
		vips_error_clear();
		skip();
	}
	g_object_unref(im);
	job_init(&job, "photo.jxl");
	int i = add_out(&job, "jxl", "photo", 64, 64, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_size(job.outputs[i].path, 64, 43);
}

/* ---- files: mtime, temps, atomicity -------------------------------------- */

static void
test_output_mtime_is_source_mtime(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	struct stat st;
	(void)state;

	job_init(&job, "photo.webp");
	job.src_mtime_ns = mtime_ns(job.src);
	int a = add_out(&job, "mtime", "photo", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_int_equal(mtime_ns(job.outputs[a].path), job.src_mtime_ns);

	/* a made-up time with nanoseconds, and the access time too */
	job_init(&job, "photo.webp");
	a = add_out(&job, "mtime", "fixed", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_PNG);
	run_ok(&job, &res);
	assert_int_equal(stat(job.outputs[a].path, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1600000000);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	assert_int_equal(st.st_atim.tv_sec, 1600000000);
	assert_int_equal(st.st_mode & 07777, 0644);
}

static void
test_job_all_or_nothing(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char blocker[256];
	(void)state;

	/* the second output's folder is a file: nothing may be published,
	 * not even the first output, and no temp may remain */
	snprintf(blocker, sizeof blocker, "%s/blocker", outdir);
	assert_true(g_file_set_contents(blocker, "x", 1, NULL));
	job_init(&job, "photo.webp");
	int a = add_out(&job, "aon", "first", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	add_out(&job, "blocker/sub", "second", 50, 50, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_fail(&job, &res, "cannot write thumbnail");
	assert_non_null(strstr(res.error, "blocker/sub/second.jpg"));
	assert_false(exists(job.outputs[a].path));
	assert_int_equal(count_temps(outdir), 0);
}

static void
test_unwritable_output_folder(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char ro[256];
	(void)state;

	snprintf(ro, sizeof ro, "%s/readonly", outdir);
	assert_int_equal(mkdir(ro, 0555), 0);
	assert_int_equal(chmod(ro, 0555), 0);
	job_init(&job, "photo.webp");
	int a = add_out(&job, "readonly/sub", "photo", 100, 100, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	int b = add_out(&job, "readonly", "photo", 50, 50, FIT_INSIDE,
	    "centre", FORMAT_JPEG);
	int rc = thumb_process(&job, &res);
	if (geteuid() != 0) {
		assert_int_equal(rc, -1);
		/* the image was fine: the supervisor may retry later */
		assert_int_equal(res.status, IPC_FAILED_OUTPUT);
		assert_non_null(strstr(res.error, "cannot write thumbnail"));
		assert_false(exists(job.outputs[a].path));
		assert_false(exists(job.outputs[b].path));
	} else {
		/* root ignores the mode bits; the job simply works */
		assert_int_equal(rc, 0);
	}
	assert_int_equal(count_temps(outdir), 0);
	assert_int_equal(chmod(ro, 0755), 0);
}

/* ---- bad input ----------------------------------------------------------- */

static void
one_output(struct ipc_job *job, const char *name)
{
	add_out(job, "bad", name, 100, 100, FIT_INSIDE, "centre", FORMAT_JPEG);
}

static void
test_empty_file(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	write_src("empty.jpg", "", 0);
	job_init(&job, "empty.jpg");
	one_output(&job, "empty");
	run_fail(&job, &res, "empty file");
	assert_false(exists(job.outputs[0].path));
}

static void
test_text_named_jpg(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	static const char text[] = "this is a shopping list, not a picture\n";
	(void)state;

	write_src("list.jpg", text, sizeof text - 1);
	job_init(&job, "list.jpg");
	one_output(&job, "list");
	run_fail(&job, &res, "not a supported image");
}

static void
test_truncated_jpeg_fails(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	gchar *data = NULL;
	gsize len = 0;
	(void)state;

	assert_true(g_file_get_contents("samples/landscape.jpg", &data, &len,
	    NULL));
	write_src("half.jpg", data, len / 2);
	g_free(data);
	job_init(&job, "half.jpg");
	one_output(&job, "half");
	/* without fail_on libvips pads the missing half with grey and
	 * "succeeds"; the file must be redone when it is complete */
	run_fail(&job, &res, "corrupt or truncated image");
	assert_non_null(strstr(res.error, "jpeg"));
	assert_false(exists(job.outputs[0].path));
	assert_int_equal(count_temps(outdir), 0);
}

static uint32_t
crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
test_huge_dimensions_rejected_from_header(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	VipsImage *im = NULL;
	void *buf = NULL;
	size_t len = 0;
	(void)state;

	/* a valid 16x16 PNG whose IHDR then claims 64000x64000 */
	assert_int_equal(vips_black(&im, 16, 16, NULL), 0);
	assert_int_equal(vips_pngsave_buffer(im, &buf, &len, NULL), 0);
	g_object_unref(im);
	uint8_t *png = buf;
	assert_memory_equal(png + 12, "IHDR", 4);
	put_be32(png + 16, 64000);
	put_be32(png + 20, 64000);
	put_be32(png + 29, crc32_of(png + 12, 17));
	write_src("huge.png", png, len);
	g_free(buf);

	job_init(&job, "huge.png");
	one_output(&job, "huge");
	run_fail(&job, &res, "image too large: 64000x64000 = 4096000000 "
	    "pixels (MAX_PIXELS 268402689)");

	/* the limit is the job's, not a constant */
	job_init(&job, "photo.webp");
	job.max_pixels = 640 * 427 - 1;
	one_output(&job, "small-limit");
	run_fail(&job, &res, "image too large: 640x427 = 273280 pixels "
	    "(MAX_PIXELS 273279)");
	job.max_pixels = 640 * 427;
	run_ok(&job, &res);
}

static void
test_huge_progressive_jpeg_capped(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	VipsImage *im = NULL;
	void *buf = NULL;
	size_t len = 0;
	(void)state;

	/* progressive 64x64, SOF2 patched to 12000x12000: under MAX_PIXELS
	 * but above the progressive cap */
	assert_int_equal(vips_black(&im, 64, 64, "bands", 3, NULL), 0);
	assert_int_equal(vips_jpegsave_buffer(im, &buf, &len,
	    "interlace", TRUE, NULL), 0);
	g_object_unref(im);
	uint8_t *j = buf;
	size_t sof = 0;
	for (size_t i = 2; i + 9 < len; i++)
		if (j[i] == 0xff && j[i + 1] == 0xc2) {
			sof = i;
			break;
		}
	assert_true(sof > 0);
	j[sof + 5] = 12000 >> 8;
	j[sof + 6] = 12000 & 0xff;
	j[sof + 7] = 12000 >> 8;
	j[sof + 8] = 12000 & 0xff;
	write_src("prog.jpg", j, len);
	g_free(buf);

	job_init(&job, "prog.jpg");
	one_output(&job, "prog");
	run_fail(&job, &res, "progressive JPEG too large: 12000x12000");
}

static void
test_blocked_formats(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	static const char svg[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" "
	    "height=\"64\"><circle cx=\"32\" cy=\"32\" r=\"30\"/></svg>\n";
	static const char pdf[] =
	    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
	    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
	    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 64 64]>>endobj\n"
	    "trailer<</Root 1 0 R>>\n%%EOF\n";
	(void)state;

	write_src("vector.jpg", svg, sizeof svg - 1);
	job_init(&job, "vector.jpg");
	one_output(&job, "vector");
	run_fail(&job, &res, "format not enabled: svg");

	write_src("document.jpg", pdf, sizeof pdf - 1);
	job_init(&job, "document.jpg");
	one_output(&job, "document");
	run_fail(&job, &res, "format not enabled: pdf");
	assert_false(exists(job.outputs[0].path));
}

static void
test_fifo_fails_at_once(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char path[256];
	struct timespec t0, t1;
	(void)state;

	src_path(path, sizeof path, "pipe.jpg");
	assert_int_equal(mkfifo(path, 0644), 0);
	job_init(&job, "pipe.jpg");
	one_output(&job, "pipe");
	/* a blocking open would hang here forever: let SIGALRM end the
	 * test binary instead */
	alarm(20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_fail(&job, &res, "not a regular file");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
}

static void
test_symlink_refused(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char path[256];
	(void)state;

	src_path(path, sizeof path, "link.jpg");
	assert_int_equal(symlink("landscape.jpg", path), 0);
	job_init(&job, "link.jpg");
	one_output(&job, "link");
	run_fail(&job, &res, "source is a symbolic link");
	assert_false(exists(job.outputs[0].path));
}

static void
test_missing_source(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	job_init(&job, "gone.jpg");
	one_output(&job, "gone");
	run_fail(&job, &res, "source disappeared");
}

/* A folder of the source's path swapped for a link to a folder outside
 * the input root: never read through. */
static void
test_source_below_a_folder_link_refused(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char dir[256], link[256], file[300];
	(void)state;

	snprintf(dir, sizeof dir, "%s/outside", root);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(file, sizeof file, "%s/secret.jpg", dir);
	copy_file("samples/landscape.jpg", file);
	src_path(link, sizeof link, "swapped");
	assert_int_equal(symlink(dir, link), 0);
	job_init(&job, "swapped/secret.jpg");
	one_output(&job, "swapped");
	run_fail(&job, &res, "source is a symbolic link or lies below one");
	assert_false(exists(job.outputs[0].path));
}

/* Another file at the source's name than the one the supervisor
 * inspected (renamed over it since). */
static void
test_source_replaced_refused(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	struct stat st;
	(void)state;

	job_init(&job, "landscape.jpg");
	assert_int_equal(stat(job.src, &st), 0);
	job.src_dev = (uint64_t)st.st_dev;
	job.src_ino = (uint64_t)st.st_ino + 1;
	one_output(&job, "replaced");
	run_fail(&job, &res, "source was replaced since it was queued");
	job.src_ino = (uint64_t)st.st_ino;
	run_ok(&job, &res);
}

/* A source or output path not below its root is refused, and an output
 * folder that is a link is not written through. */
static void
test_paths_stay_below_their_roots(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	char away[256], link[256];
	(void)state;

	job_init(&job, "landscape.jpg");
	snprintf(job.in_root, sizeof job.in_root, "%s/elsewhere", root);
	one_output(&job, "roots");
	run_fail(&job, &res, "source is not below the input folder");

	snprintf(away, sizeof away, "%s/away", root);
	assert_int_equal(mkdir(away, 0755), 0);
	snprintf(link, sizeof link, "%s/linked", outdir);
	assert_int_equal(symlink(away, link), 0);
	job_init(&job, "landscape.jpg");
	add_out(&job, "linked", "x", 100, 100, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_fail(&job, &res, "cannot write thumbnail: a folder on its path "
	    "is a symbolic link");
	assert_int_equal(rmdir(away), 0);	/* still empty */
}

static void
test_failure_leaves_next_job_clean(void **state)
{
	struct ipc_job job;
	struct ipc_result res;
	(void)state;

	/* a failed job must not poison the next one (vips error buffer,
	 * leftover state) */
	write_src("list2.jpg", "no picture here\n", 16);
	job_init(&job, "list2.jpg");
	one_output(&job, "again");
	run_fail(&job, &res, "not a supported image");
	job_init(&job, "cmyk.jpg");
	int i = add_out(&job, "after", "cmyk", 50, 50, FIT_INSIDE, "centre",
	    FORMAT_JPEG);
	run_ok(&job, &res);
	assert_size(job.outputs[i].path, 50, 35);
	assert_true(res.ms < 10000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_fits_box),
		cmocka_unit_test(test_inside_never_upscales),
		cmocka_unit_test(test_orientation_applied),
		cmocka_unit_test(test_six_presets_one_decode),
		cmocka_unit_test(test_cover_gravity),
		cmocka_unit_test(test_fill_exact),
		cmocka_unit_test(test_cmyk_and_16bit_become_srgb8),
		cmocka_unit_test(test_alpha_flattened_for_jpeg),
		cmocka_unit_test(test_alpha_kept_for_png_webp),
		cmocka_unit_test(test_avif_output),
		cmocka_unit_test(test_gif_first_frame),
		cmocka_unit_test(test_tiff_first_page),
		cmocka_unit_test(test_jxl_enabled),
		cmocka_unit_test(test_output_mtime_is_source_mtime),
		cmocka_unit_test(test_job_all_or_nothing),
		cmocka_unit_test(test_unwritable_output_folder),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_text_named_jpg),
		cmocka_unit_test(test_truncated_jpeg_fails),
		cmocka_unit_test(test_huge_dimensions_rejected_from_header),
		cmocka_unit_test(test_huge_progressive_jpeg_capped),
		cmocka_unit_test(test_blocked_formats),
		cmocka_unit_test(test_fifo_fails_at_once),
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_missing_source),
		cmocka_unit_test(test_source_below_a_folder_link_refused),
		cmocka_unit_test(test_source_replaced_refused),
		cmocka_unit_test(test_paths_stay_below_their_roots),
		cmocka_unit_test(test_failure_leaves_next_job_clean),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
