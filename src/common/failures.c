/*
 * failures: reads the failure markers (see failures.h), beneath the output
 * root with no link followed, and prints them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "failures.h"
#include "json.h"
#include "pathmap.h"
#include "treewalk.h"

#define MARKERS ".thumbwatch/failed"
#define REASON_MAX 1024

struct failure {
	char *file;
	char reason[REASON_MAX];
	struct timespec at;	/* the marker's ctime */
	bool current;
};

struct list {
	struct failure *v;
	size_t n, cap;
	int in_root;
};

size_t
failures_reason(int fd, char *out, size_t cap)
{
	ssize_t n = read(fd, out, cap - 1);

	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return strlen(out);
}

static int
add(struct list *l, const char *rel, int dfd, const char *name)
{
	struct failure *f;
	struct stat ms, ss;
	int fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0)
		return 0;
	if (fstat(fd, &ms) != 0 || !S_ISREG(ms.st_mode)) {
		close(fd);
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		if (v == NULL) {
			close(fd);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	f = &l->v[l->n];
	if ((f->file = strdup(rel)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	failures_reason(fd, f->reason, sizeof(f->reason));
	close(fd);
	f->at = ms.st_ctim;
	/* Current: the source is there with the bytes that failed. */
	f->current = l->in_root >= 0 && beneath_lstat(l->in_root, rel,
	    &ss) == 0 && S_ISREG(ss.st_mode) && ss.st_mtim.tv_sec ==
	    ms.st_mtim.tv_sec && ss.st_mtim.tv_nsec == ms.st_mtim.tv_nsec;
	l->n++;
	return 0;
}

/* Every marker is a file below the markers' folder; folders are entered. */
static int
visit(void *ud, int dfd, const char *name, const char *rel,
    unsigned char type, int depth)
{
	(void)depth;
	return type == DT_DIR ? TREEWALK_NEXT : add(ud, rel, dfd, name);
}

static int
by_time(const void *a, const void *b)
{
	const struct failure *x = a, *y = b;

	if (x->at.tv_sec != y->at.tv_sec)
		return x->at.tv_sec < y->at.tv_sec ? -1 : 1;
	if (x->at.tv_nsec != y->at.tv_nsec)
		return x->at.tv_nsec < y->at.tv_nsec ? -1 : 1;
	return strcmp(x->file, y->file);
}

static void
print(const struct list *l, bool json, FILE *out)
{
	struct json_buf j;
	char when[32];
	size_t i;

	json_init(&j);
	if (json) {
		json_begin(&j);
		json_open(&j, "failures", '[');
	}
	for (i = 0; i < l->n; i++) {
		const struct failure *f = &l->v[i];

		json_rfc3339(when, (int64_t)f->at.tv_sec * 1000 +
		    f->at.tv_nsec / 1000000);
		if (!json) {
			fprintf(out, "%s  %s  %s%s\n", when, f->file,
			    f->reason[0] ? f->reason : "(reason not recorded)",
			    f->current ? "" : "  (written again since, or "
			    "gone: it will be tried again)");
			continue;
		}
		json_open(&j, NULL, '{');
		json_str(&j, "file", f->file);
		json_str(&j, "error", f->reason);
		json_str(&j, "failed_at", when);
		json_bool(&j, "current", f->current);
		json_close(&j, '}');
	}
	if (json) {
		json_close(&j, ']');
		json_int(&j, "count", (int64_t)l->n);
		json_end(&j);
		if (j.err == 0)
			fprintf(out, "%.*s\n", (int)j.len, j.buf);
	}
	json_free(&j);
}

int
failures_list(const char *input_dir, const char *output_dir, bool json,
    FILE *out)
{
	struct list l = { .in_root = -1 };
	int root, fd, rc;
	size_t i;

	if ((root = beneath_root(output_dir)) < 0)
		return root;
	fd = beneath_open(root, MARKERS, O_RDONLY | O_DIRECTORY, 0);
	close(root);
	if (fd == -ENOENT) {
		print(&l, json, out);
		return 0;
	}
	if (fd < 0)
		return fd;
	l.in_root = beneath_root(input_dir);
	rc = treewalk(fd, "", visit, &l);
	if (rc == 0) {
		qsort(l.v, l.n, sizeof(*l.v), by_time);
		print(&l, json, out);
	}
	if (l.in_root >= 0)
		close(l.in_root);
	for (i = 0; i < l.n; i++)
		free(l.v[i].file);
	free(l.v);
	return rc < 0 ? rc : (int)l.n;
}
