/*
 * watchtab: two hash indexes over one dense array of entries.
 *
 * Linear probing with deletion by backward shift, so no tombstones pile
 * up as folders come and go for months.  Buckets stay at most half full:
 * probes stay short, and an index can take any entry without growing,
 * which is what lets watchtab_set_wd() not fail.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watchtab.h"

#define MIN_BUCKETS 128
#define MIN_ALL 64

/* The last steps of MurmurHash3: every input bit reaches the low bits the
 * mask keeps (FNV-1a alone leaves them weak, a wd is a small counter). */
static uint32_t
mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

static uint32_t
hash_path(const char *s)
{
	uint32_t h = 2166136261U;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619U;
	return mix(h);
}

static uint32_t
hash_wd(int wd)
{
	return mix((uint32_t)wd);
}

/* ---- one index --------------------------------------------------------- */

typedef uint32_t (*home_fn)(const struct watchtab_entry *);

static uint32_t
home_path(const struct watchtab_entry *e)
{
	return e->hash;
}

static uint32_t
home_wd(const struct watchtab_entry *e)
{
	return hash_wd(e->wd);
}

static void
bucket_put(struct watchtab_entry **b, size_t mask, uint32_t h,
    struct watchtab_entry *e)
{
	size_t i = h & mask;

	while (b[i] != NULL)
		i = (i + 1) & mask;
	b[i] = e;
}

/* Takes e out of b, where it must be, then moves each later entry of the
 * same run back into the hole if its home bucket allows: a lookup never
 * meets a gap before the entry it looks for. */
static void
bucket_del(struct watchtab_entry **b, size_t mask, home_fn home,
    struct watchtab_entry *e)
{
	size_t i = home(e) & mask, j, k;

	while (b[i] != e)
		i = (i + 1) & mask;
	b[i] = NULL;
	for (j = (i + 1) & mask; b[j] != NULL; j = (j + 1) & mask) {
		k = home(b[j]) & mask;
		/* b[j] stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		b[i] = b[j];
		b[j] = NULL;
		i = j;
	}
}

static int
rehash(struct watchtab *t, size_t nb)
{
	struct watchtab_entry **bp, **bw;
	size_t i;

	bp = calloc(nb, sizeof(*bp));
	bw = calloc(nb, sizeof(*bw));
	if (bp == NULL || bw == NULL) {
		free(bp);
		free(bw);
		return -ENOMEM;
	}
	for (i = 0; i < t->n; i++) {
		bucket_put(bp, nb - 1, t->all[i]->hash, t->all[i]);
		if (t->all[i]->wd >= 0)
			bucket_put(bw, nb - 1, hash_wd(t->all[i]->wd),
			    t->all[i]);
	}
	free(t->by_path);
	free(t->by_wd);
	t->by_path = bp;
	t->by_wd = bw;
	t->nbuckets = nb;
	return 0;
}

/* ---- the table --------------------------------------------------------- */

void
watchtab_init(struct watchtab *t)
{
	memset(t, 0, sizeof(*t));
}

void
watchtab_free(struct watchtab *t)
{
	free(t->all);
	free(t->by_path);
	free(t->by_wd);
	memset(t, 0, sizeof(*t));
}

int
watchtab_insert(struct watchtab *t, struct watchtab_entry *e,
    const char *path, int wd)
{
	char *p;

	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : MIN_ALL;
		struct watchtab_entry **na = realloc(t->all, nc * sizeof(*na));
		if (na == NULL)
			return -ENOMEM;
		t->all = na;
		t->cap = nc;
	}
	if ((t->n + 1) * 2 > t->nbuckets && rehash(t, t->nbuckets ?
	    t->nbuckets * 2 : MIN_BUCKETS) < 0)
		return -ENOMEM;
	if ((p = strdup(path)) == NULL)
		return -ENOMEM;
	e->path = p;
	e->hash = hash_path(p);
	e->wd = wd < 0 ? -1 : wd;
	e->slot = t->n;
	t->all[t->n++] = e;
	bucket_put(t->by_path, t->nbuckets - 1, e->hash, e);
	if (e->wd >= 0)
		bucket_put(t->by_wd, t->nbuckets - 1, hash_wd(e->wd), e);
	return 0;
}

void
watchtab_remove(struct watchtab *t, struct watchtab_entry *e)
{
	size_t mask = t->nbuckets - 1;

	bucket_del(t->by_path, mask, home_path, e);
	if (e->wd >= 0)
		bucket_del(t->by_wd, mask, home_wd, e);
	t->all[e->slot] = t->all[--t->n];
	t->all[e->slot]->slot = e->slot;
	free(e->path);
	e->path = NULL;
}

struct watchtab_entry *
watchtab_find_path(const struct watchtab *t, const char *path)
{
	uint32_t h;
	size_t i, mask;

	if (t->n == 0)
		return NULL;
	h = hash_path(path);
	mask = t->nbuckets - 1;
	for (i = h & mask; t->by_path[i] != NULL; i = (i + 1) & mask)
		if (t->by_path[i]->hash == h &&
		    strcmp(t->by_path[i]->path, path) == 0)
			return t->by_path[i];
	return NULL;
}

struct watchtab_entry *
watchtab_find_wd(const struct watchtab *t, int wd)
{
	size_t i, mask;

	if (t->n == 0 || wd < 0)
		return NULL;
	mask = t->nbuckets - 1;
	for (i = hash_wd(wd) & mask; t->by_wd[i] != NULL; i = (i + 1) & mask)
		if (t->by_wd[i]->wd == wd)
			return t->by_wd[i];
	return NULL;
}

void
watchtab_set_wd(struct watchtab *t, struct watchtab_entry *e, int wd)
{
	size_t mask = t->nbuckets - 1;

	if (wd < 0)
		wd = -1;
	if (e->wd == wd)
		return;
	if (e->wd >= 0)
		bucket_del(t->by_wd, mask, home_wd, e);
	e->wd = wd;
	if (wd >= 0)
		bucket_put(t->by_wd, mask, hash_wd(wd), e);
}

int
watchtab_set_path(struct watchtab *t, struct watchtab_entry *e,
    const char *path)
{
	char *p;

	if ((p = strdup(path)) == NULL)
		return -ENOMEM;
	bucket_del(t->by_path, t->nbuckets - 1, home_path, e);
	free(e->path);
	e->path = p;
	e->hash = hash_path(p);
	bucket_put(t->by_path, t->nbuckets - 1, e->hash, e);
	return 0;
}

bool
watchtab_below(const char *path, const char *top)
{
	size_t n = strlen(top);

	return n == 0 || (strncmp(path, top, n) == 0 &&
	    (path[n] == '\0' || path[n] == '/'));
}

size_t
watchtab_rename_prefix(struct watchtab *t, const char *from, const char *to)
{
	size_t n = strlen(from), i, renamed = 0;
	char buf[PATH_MAX];

	if (n == 0)
		return 0;
	for (i = 0; i < t->n; i++) {
		struct watchtab_entry *e = t->all[i];
		if (!watchtab_below(e->path, from))
			continue;
		if ((size_t)snprintf(buf, sizeof(buf), "%s%s", to,
		    e->path + n) >= sizeof(buf))
			continue;
		if (watchtab_set_path(t, e, buf) == 0)
			renamed++;
	}
	return renamed;
}

size_t
watchtab_count(const struct watchtab *t)
{
	return t->n;
}

struct watchtab_entry *
watchtab_at(const struct watchtab *t, size_t i)
{
	return t->all[i];
}
