/*
 * The benchmark loops' input: the lines of a list file (-l), then the
 * command-line arguments.  Header-only: vloop links libvips alone and
 * twloop libthumbwatch, so there is no common object to link.
 */
#ifndef THUMBWATCH_BENCH_FILELIST_H
#define THUMBWATCH_BENCH_FILELIST_H

#include <glib.h>

/* Adds each non-empty line of listfile (may be NULL) and then args[0..n)
 * to files.  0, or -1 when listfile cannot be read. */
static int
bench_files(GPtrArray *files, const char *listfile, char **args, int n)
{
	if (listfile) {
		char *text = NULL;
		if (!g_file_get_contents(listfile, &text, NULL, NULL))
			return -1;
		char **lines = g_strsplit(text, "\n", -1);
		for (char **l = lines; *l; l++)
			if (**l)
				g_ptr_array_add(files, g_strdup(*l));
		g_strfreev(lines);
		g_free(text);
	}
	for (int i = 0; i < n; i++)
		g_ptr_array_add(files, g_strdup(args[i]));
	return 0;
}

#endif
