/*
 * watchtab: the watcher's table of watched folders, indexed both ways.
 *
 * Pure module (no libuv).  An inotify event names its folder by watch
 * descriptor, a walk by path: the table finds an entry either way in
 * constant time (two open-addressing hash tables, as inotify-tools keeps
 * wd -> name and name -> wd), where a scan of every folder per event made
 * a wide tree's walk quadratic.
 *
 * Entries are the caller's memory, embedded in its own struct (as with
 * <sys/tree.h>); the table holds pointers to them and owns each entry's
 * path string from insert to remove.  Two entries may share a path or a
 * descriptor for a while (a folder renamed over an empty one, before the
 * replaced one's IN_IGNORED): a lookup then returns one of them.
 */
#ifndef THUMBWATCH_WATCHTAB_H
#define THUMBWATCH_WATCHTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watchtab_entry {
	char *path;		/* below the root, "" for the root itself */
	int wd;			/* watch descriptor; < 0 is not indexed */
	/* The table's: */
	size_t slot;		/* index in all[] */
	uint32_t hash;		/* of path */
};

struct watchtab {
	/* Every entry, in no order: for walks over all of them. */
	struct watchtab_entry **all;
	size_t n, cap;
	/* nbuckets each (a power of two, at least twice n), NULL = free. */
	struct watchtab_entry **by_path, **by_wd;
	size_t nbuckets;
};

void watchtab_init(struct watchtab *t);
/* Frees the table's arrays; the entries still in it and their paths are
 * left alone (remove them first). */
void watchtab_free(struct watchtab *t);

/* Adds e under a copy of path and, if wd >= 0, under wd.  0 or -ENOMEM
 * (then e is not in the table). */
int watchtab_insert(struct watchtab *t, struct watchtab_entry *e,
    const char *path, int wd);
/* Takes e out and frees its path (e->path becomes NULL).  The last entry
 * of watchtab_at() takes e's index. */
void watchtab_remove(struct watchtab *t, struct watchtab_entry *e);

struct watchtab_entry *watchtab_find_path(const struct watchtab *t,
    const char *path);
/* NULL for a wd < 0. */
struct watchtab_entry *watchtab_find_wd(const struct watchtab *t, int wd);

/* Indexes e under wd instead (< 0: under none).  Cannot fail: the buckets
 * always have room for every entry. */
void watchtab_set_wd(struct watchtab *t, struct watchtab_entry *e, int wd);
/* Gives e a copy of path.  0, or -ENOMEM with e unchanged. */
int watchtab_set_path(struct watchtab *t, struct watchtab_entry *e,
    const char *path);

/* Whether path is top or below it ("a/b" is below "a", "a/bc" is not);
 * every path is below "". */
bool watchtab_below(const char *path, const char *top);
/* A folder was renamed: every entry at or below from ("" is never
 * renamed) now has to in place of from.  An entry whose new path would
 * not fit PATH_MAX, or for which memory runs out, keeps its old one.
 * Returns how many were renamed.  Visits every entry: folder renames are
 * rare next to file events. */
size_t watchtab_rename_prefix(struct watchtab *t, const char *from,
    const char *to);

size_t watchtab_count(const struct watchtab *t);
/* Entry i < watchtab_count(), in no order. */
struct watchtab_entry *watchtab_at(const struct watchtab *t, size_t i);

#endif
