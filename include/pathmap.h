/*
 * pathmap: where a source's thumbnails go, and which names are ignored.
 *
 * Pure module.  The output template is expanded with
 *   {dir}    the source's folder relative to the input dir ("" at the top)
 *   {stem}   the file name without its last extension
 *   {preset} the preset name
 *   {ext}    the output format's extension (jpg, webp, png, avif)
 *   {srcext} the source's extension as written
 * Default "{dir}/{stem}_{preset}.{ext}"; a leading "/" left by an empty {dir}
 * and doubled slashes are dropped.  Two sources in one folder with the same
 * stem (photo.jpg, photo.heic) would share outputs: the one whose name sorts
 * first (strcmp) keeps {stem}; each other one uses "{stem}.{srcext}" as its
 * stem (photo.jpg -> photo.jpg_thumb.jpg when photo.heic exists).
 */
#ifndef THUMBWATCH_PATHMAP_H
#define THUMBWATCH_PATHMAP_H

#include <stdbool.h>
#include <stddef.h>

/* Relative output path (below OUTPUT_DIR) for rel_src and a preset.
 * qualify: this source must carry its extension (see above).
 * Returns 0, -ENAMETOOLONG, or -EINVAL (bad template / result that would
 * escape the output dir, e.g. containing ".." components). */
int pathmap_output(char *out, size_t cap, const char *tmpl,
    const char *rel_src, const char *preset, const char *ext, bool qualify);

/* Checks a template at config time: known placeholders only, must contain
 * {stem} and {preset}, no ".." component, not absolute. 0 or -EINVAL. */
int pathmap_check_template(const char *tmpl);

/* The name's stem (without last extension) and extension. A name with no
 * dot (or only a leading dot) has an empty extension. */
void pathmap_split(const char *name, char *stem, size_t stemcap,
    char *ext, size_t extcap);

/* True when two names in one folder collide (same stem, different names). */
bool pathmap_same_stem(const char *a, const char *b);

/* Temporary names of uploaders and editors, ignored until renamed:
 * ".*", "*.tmp", "*.part", "*.crdownload", "*~" (case-insensitive). */
bool pathmap_is_temp_name(const char *name);

/* A worker writes each thumbnail to ".<name>.tw-XXXXXX" beside it, with
 * at most 200 bytes of the name so the temp fits NAME_MAX, then renames it
 * into place; one killed mid-write leaves it behind.  The template (six X
 * for the caller to fill) or, with random false, the prefix before them.
 * Returns its length, or -ENAMETOOLONG. */
#define PATHMAP_OUT_TEMP_RANDOM 6
int pathmap_out_temp(char *out, size_t cap, const char *name, bool random);
/* Whether name is such a temp (nothing else in an output tree looks so). */
bool pathmap_is_out_temp(const char *name);

/* Extension allow-list: ext_list is "jpg,jpeg,png" (lower case); the
 * comparison ignores case. */
bool pathmap_ext_allowed(const char *name, const char *ext_list);

/* path relative to root ("a/b.jpg"), when path is root or below it (by
 * components, not string prefix: /in2 is not below /in).  Returns 0, or
 * -EXDEV when not below root, -ENAMETOOLONG. rel of root itself is "". */
int pathmap_relative(const char *root, const char *path, char *rel,
    size_t cap);

/* Joins a and b with one '/', b may be "". 0 or -ENAMETOOLONG. */
int pathmap_join(char *out, size_t cap, const char *a, const char *b);

#endif
