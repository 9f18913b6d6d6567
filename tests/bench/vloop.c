/*
 * vloop: a persistent libvips thumbnail loop, the benchmark's reference.
 *
 * One process, libvips initialised once, vips_concurrency_set(1) and no
 * operation cache (as a thumbwatch worker), then for every file and every
 * preset one vips_thumbnail() call straight from the file (so every preset
 * decodes the source again: "independent passes"), alpha flattened on
 * white, saved as JPEG.  Prints nothing but errors; with -t it writes one
 * "ms<TAB>file" line per image (all presets of that image) to a file, which
 * gives the "ideal" figure: the sum of single-core per-image times / N.
 *
 *   vloop [-o OUTDIR] [-t TIMES] [-w] [-q Q] [-O] -p PRESETS (-l LIST | FILE...)
 *
 * PRESETS: comma-separated WxH[:cover[:GRAVITY]] (GRAVITY: centre, attention,
 * entropy), e.g. "300x300" or
 * "150x150,300x300,600x600,1200x800,400x400:cover:attention,1200x300:cover".
 * -w processes the first file once, untimed, before the loop (warm-up).
 * -O turns on optimize_coding (thumbwatch's encoder setting).
 * -F for *.png (no shrink-on-load to lose): load, flatten alpha on white,
 * then vips_thumbnail_image (an experiment, see README).
 * Built on the fly by tests/bench/run.sh into build/bench/vloop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vips/vips.h>

#include "filelist.h"

#define MAXP 16

struct preset {
	int w, h;
	int crop;	/* VipsInteresting, or -1 for inside */
	char name[32];
};

static struct preset presets[MAXP];
static int npresets;
static const char *outdir = NULL;
static int quality = 85;
static int optimize = 0;
static int flatten_first = 0;

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
parse_presets(const char *spec)
{
	char *s = g_strdup(spec), *save = NULL;
	for (char *tok = strtok_r(s, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		struct preset *p = &presets[npresets];
		char fit[16] = "", grav[16] = "centre";
		if (npresets == MAXP)
			break;
		if (sscanf(tok, "%dx%d:%15[a-z]:%15[a-z]", &p->w, &p->h, fit,
		    grav) < 2)
			return -1;
		p->crop = -1;
		if (strcmp(fit, "cover") == 0) {
			p->crop = vips_enum_from_nick("vloop",
			    VIPS_TYPE_INTERESTING, grav);
			if (p->crop < 0)
				return -1;
		}
		snprintf(p->name, sizeof p->name, "%dx%d%s", p->w, p->h,
		    p->crop >= 0 ? "c" : "");
		npresets++;
	}
	g_free(s);
	return npresets > 0 ? 0 : -1;
}

static int
one(const char *file, const struct preset *p)
{
	VipsImage *t = NULL, *f = NULL, *x;
	int rc = -1;

	if (flatten_first && g_str_has_suffix(file, ".png")) {
		/* -F: an image with alpha is flattened on white before the
		 * shrink (exact for an output without alpha: flattening on a
		 * constant colour commutes with a linear resize) instead of
		 * vips_thumbnail's premultiply, which turns the whole shrink
		 * into 4-band float.  No shrink-on-load is lost for PNG. */
		VipsImage *src = vips_image_new_from_file(file,
		    "access", VIPS_ACCESS_SEQUENTIAL, NULL);
		if (src == NULL)
			goto out;
		if (vips_image_hasalpha(src)) {
			double white[3] = { 255, 255, 255 };
			VipsArrayDouble *bg = vips_array_double_new(white, 3);
			VipsImage *flat = NULL;
			int frc = vips_flatten(src, &flat, "background", bg, NULL);
			vips_area_unref(VIPS_AREA(bg));
			g_object_unref(src);
			if (frc)
				goto out;
			src = flat;
		}
		int trc = p->crop >= 0 ?
		    vips_thumbnail_image(src, &t, p->w, "height", p->h,
			"size", VIPS_SIZE_DOWN, "crop", p->crop, NULL) :
		    vips_thumbnail_image(src, &t, p->w, "height", p->h,
			"size", VIPS_SIZE_DOWN, NULL);
		g_object_unref(src);
		if (trc)
			goto out;
	} else if (p->crop >= 0) {
		if (vips_thumbnail(file, &t, p->w, "height", p->h,
		    "size", VIPS_SIZE_DOWN, "crop", p->crop, NULL))
			goto out;
	} else if (vips_thumbnail(file, &t, p->w, "height", p->h,
	    "size", VIPS_SIZE_DOWN, NULL))
		goto out;
	x = t;
	if (vips_image_hasalpha(x)) {
		double white[3] = { 255, 255, 255 };
		VipsArrayDouble *bg = vips_array_double_new(white, 3);
		int frc = vips_flatten(x, &f, "background", bg, NULL);
		vips_area_unref(VIPS_AREA(bg));
		if (frc)
			goto out;
		x = f;
	}
	if (outdir != NULL) {
		const char *base = strrchr(file, '/');
		base = base ? base + 1 : file;
		char *stem = g_strdup(base), *dot = strrchr(stem, '.');
		if (dot)
			*dot = '\0';
		char *path = g_strdup_printf("%s/%s_%s.jpg", outdir, stem,
		    p->name);
		rc = vips_jpegsave(x, path, "Q", quality, "strip", TRUE,
		    "optimize_coding", optimize, NULL);
		g_free(path);
		g_free(stem);
	} else {
		void *buf = NULL;
		size_t len = 0;
		rc = vips_jpegsave_buffer(x, &buf, &len, "Q", quality,
		    "strip", TRUE, "optimize_coding", optimize, NULL);
		g_free(buf);
	}
out:
	VIPS_UNREF(f);
	VIPS_UNREF(t);
	if (rc) {
		fprintf(stderr, "vloop: %s: %s\n", file, vips_error_buffer());
		vips_error_clear();
	}
	return rc;
}

int
main(int argc, char **argv)
{
	const char *timesfile = NULL, *listfile = NULL;
	int warm = 0, c, errors = 0;
	GPtrArray *files = g_ptr_array_new();

	if (VIPS_INIT(argv[0]))
		vips_error_exit(NULL);
	vips_concurrency_set(1);
	vips_cache_set_max(0);
	while ((c = getopt(argc, argv, "o:t:wq:OFp:l:")) != -1) {
		switch (c) {
		case 'o': outdir = optarg; break;
		case 't': timesfile = optarg; break;
		case 'w': warm = 1; break;
		case 'q': quality = atoi(optarg); break;
		case 'O': optimize = 1; break;
		case 'F': flatten_first = 1; break;
		case 'p':
			if (parse_presets(optarg)) {
				fprintf(stderr, "vloop: bad presets %s\n",
				    optarg);
				return 64;
			}
			break;
		case 'l': listfile = optarg; break;
		default:
			fprintf(stderr, "usage: vloop [-o DIR] [-t TIMES] [-w] "
			    "[-q Q] [-O] -p PRESETS (-l LIST | FILE...)\n");
			return 64;
		}
	}
	if (npresets == 0)
		parse_presets("300x300");
	if (bench_files(files, listfile, argv + optind, argc - optind) < 0) {
		fprintf(stderr, "vloop: cannot read %s\n", listfile);
		return 66;
	}

	FILE *tf = timesfile ? fopen(timesfile, "w") : NULL;
	if (timesfile && tf == NULL) {
		perror(timesfile);
		return 73;
	}
	if (warm && files->len > 0) {
		const char *save = outdir;
		outdir = NULL;
		one(g_ptr_array_index(files, 0), &presets[0]);
		outdir = save;
	}
	for (guint i = 0; i < files->len; i++) {
		const char *file = g_ptr_array_index(files, i);
		double t0 = now_ms();
		for (int k = 0; k < npresets; k++)
			errors += one(file, &presets[k]) != 0;
		if (tf)
			fprintf(tf, "%.3f\t%s\n", now_ms() - t0, file);
	}
	if (tf)
		fclose(tf);
	vips_shutdown();
	return errors ? 1 : 0;
}
