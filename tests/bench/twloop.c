/*
 * twloop: thumbwatch's own image pipeline (thumb_process from
 * build/libthumbwatch.a) in a plain loop, without supervisor, IPC or
 * scheduling: what one worker spends per image.  Compared with vloop
 * (bare vips_thumbnail) it shows what thumb.c adds; compared with
 * `thumbwatch once --workers 1` what the daemon adds.
 *
 *   twloop [-t TIMES] [-w] -o OUTDIR -p PRESETS (-l LIST | FILE...)
 *
 * PRESETS as vloop's: WxH[:cover[:GRAVITY]], comma-separated; all JPEG
 * q85 strip.  Every output goes to OUTDIR/<stem>_<WxH>.jpg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "config.h"
#include "filelist.h"
#include "ipc.h"
#include "thumb.h"

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct ipc_job job;

static int
fill_job(const char *file, const char *outdir, const char *spec)
{
	char *s = g_strdup(spec), *save = NULL;
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	char *stem = g_strdup(base), *dot = strrchr(stem, '.');
	struct stat st;

	if (dot)
		*dot = '\0';
	memset(&job, 0, sizeof job);
	if (realpath(file, job.src) == NULL || stat(file, &st) != 0) {
		perror(file);
		return -1;
	}
	job.max_pixels = 268402689;
	job.src_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
	    st.st_mtim.tv_nsec;
	snprintf(job.background, sizeof job.background, "255,255,255");
	for (char *tok = strtok_r(s, ",", &save); tok &&
	    job.noutputs < IPC_MAX_OUTPUTS; tok = strtok_r(NULL, ",", &save)) {
		struct ipc_output_spec *o = &job.outputs[job.noutputs];
		char fit[16] = "", grav[16] = "centre";
		unsigned w, h;
		if (sscanf(tok, "%ux%u:%15[a-z]:%15[a-z]", &w, &h, fit,
		    grav) < 2)
			return -1;
		o->width = w;
		o->height = h;
		o->fit = strcmp(fit, "cover") == 0 ? FIT_COVER : FIT_INSIDE;
		snprintf(o->gravity, sizeof o->gravity, "%s", grav);
		o->format = FORMAT_JPEG;
		o->quality = 85;
		o->strip = 1;
		snprintf(o->path, sizeof o->path, "%s/%s_%ux%u%s.jpg", outdir,
		    stem, w, h, o->fit == FIT_COVER ? "c" : "");
		job.noutputs++;
	}
	g_free(s);
	g_free(stem);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *timesfile = NULL, *listfile = NULL, *outdir = NULL;
	const char *spec = "300x300";
	int warm = 0, c, errors = 0;
	GPtrArray *files = g_ptr_array_new();
	static struct ipc_result res;

	while ((c = getopt(argc, argv, "o:t:wp:l:")) != -1) {
		switch (c) {
		case 'o': outdir = optarg; break;
		case 't': timesfile = optarg; break;
		case 'w': warm = 1; break;
		case 'p': spec = optarg; break;
		case 'l': listfile = optarg; break;
		default:
			fprintf(stderr, "usage: twloop [-t TIMES] [-w] -o DIR "
			    "-p PRESETS (-l LIST | FILE...)\n");
			return 64;
		}
	}
	if (outdir == NULL) {
		fprintf(stderr, "twloop: -o OUTDIR is required\n");
		return 64;
	}
	if (thumb_init(argv[0], "jpg,jpeg,png,webp") != 0)
		return 70;
	if (bench_files(files, listfile, argv + optind, argc - optind) < 0)
		return 66;

	FILE *tf = timesfile ? fopen(timesfile, "w") : NULL;
	if (warm && files->len > 0 &&
	    fill_job(g_ptr_array_index(files, 0), outdir, spec) == 0)
		thumb_process(&job, &res);
	for (guint i = 0; i < files->len; i++) {
		const char *file = g_ptr_array_index(files, i);
		double t0 = now_ms();
		if (fill_job(file, outdir, spec) != 0 ||
		    thumb_process(&job, &res) != 0) {
			fprintf(stderr, "twloop: %s: %s\n", file, res.error);
			errors++;
		}
		if (tf)
			fprintf(tf, "%.3f\t%s\n", now_ms() - t0, file);
	}
	if (tf)
		fclose(tf);
	thumb_shutdown();
	return errors ? 1 : 0;
}
