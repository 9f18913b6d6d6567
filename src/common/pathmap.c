/*
 * pathmap: source path -> output path, name filters, path arithmetic.
 *
 * Owns the output-template language of pathmap.h and the rules that keep
 * an expanded path inside the output dir.  The template is checked, but the
 * final answer is a check of the expanded result, component by component:
 * a placeholder's value ({dir}, {stem}, {preset}) comes from file names and
 * configuration, so only the result can prove nothing escapes.  Bytes of
 * file names are never interpreted beyond '/' and '.': names with spaces,
 * quotes, newlines or invalid UTF-8 map unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pathmap.h"

enum ph { PH_DIR, PH_STEM, PH_PRESET, PH_EXT, PH_SRCEXT, PH_COUNT };

static const char *const ph_names[PH_COUNT] = {
	[PH_DIR] = "dir",
	[PH_STEM] = "stem",
	[PH_PRESET] = "preset",
	[PH_EXT] = "ext",
	[PH_SRCEXT] = "srcext",
};

/* Index of the placeholder named by s[0..n), or -1. */
static int
ph_lookup(const char *s, size_t n)
{
	int i;

	for (i = 0; i < PH_COUNT; i++)
		if (strlen(ph_names[i]) == n && memcmp(ph_names[i], s, n) == 0)
			return i;
	return -1;
}

/* Length of the component starting at s (up to '/' or the end). */
static size_t
comp_len(const char *s)
{
	return strcspn(s, "/");
}

static bool
comp_is_dot(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

int
pathmap_check_template(const char *tmpl)
{
	const char *p, *close;
	unsigned seen = 0;
	size_t n;
	int ph;

	if (tmpl == NULL || tmpl[0] == '/')
		return -EINVAL;
	for (p = tmpl; *p != '\0'; p++) {
		if (*p == '}')
			return -EINVAL;
		if (*p != '{')
			continue;
		close = strchr(p + 1, '}');
		if (close == NULL)
			return -EINVAL;
		ph = ph_lookup(p + 1, (size_t)(close - p - 1));
		if (ph < 0)
			return -EINVAL;
		seen |= 1u << ph;
		p = close;
	}
	if (!(seen & 1u << PH_STEM) || !(seen & 1u << PH_PRESET))
		return -EINVAL;
	/* Literal "." and ".." components; ones made by substitution are
	 * caught on the result. */
	for (p = tmpl; *p != '\0'; p += n + (p[n] == '/')) {
		n = comp_len(p);
		if (comp_is_dot(p, n))
			return -EINVAL;
	}
	return 0;
}

/* Length of name's stem: up to its last '.', unless that dot is part of
 * the leading dots (".hidden", "..x" have no extension), as Python's
 * os.path.splitext.  Only what follows the last '/' can hold the
 * extension, so a dotted folder never lends one to a file. */
static size_t
stem_len(const char *name)
{
	const char *base, *dot, *p;

	base = strrchr(name, '/');
	base = base != NULL ? base + 1 : name;
	for (p = base; *p == '.'; p++)
		;
	dot = strrchr(p, '.');
	return dot != NULL ? (size_t)(dot - name) : strlen(name);
}

/* Copies s[0..n) into dst[cap], truncating; dst is always terminated. */
static void
copy_trunc(char *dst, size_t cap, const char *s, size_t n)
{
	if (cap == 0)
		return;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void
pathmap_split(const char *name, char *stem, size_t stemcap, char *ext,
    size_t extcap)
{
	size_t n = stem_len(name);

	copy_trunc(stem, stemcap, name, n);
	if (name[n] == '.')
		copy_trunc(ext, extcap, name + n + 1, strlen(name + n + 1));
	else
		copy_trunc(ext, extcap, "", 0);
}

bool
pathmap_same_stem(const char *a, const char *b)
{
	size_t na = stem_len(a), nb = stem_len(b);

	return strcmp(a, b) != 0 && na == nb && memcmp(a, b, na) == 0;
}

static bool
ends_with_ci(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

bool
pathmap_is_temp_name(const char *name)
{
	const char *base = strrchr(name, '/');
	size_t n;

	base = base != NULL ? base + 1 : name;
	n = strlen(base);
	if (n == 0)
		return false;
	return base[0] == '.' || base[n - 1] == '~' ||
	    ends_with_ci(base, n, ".tmp") || ends_with_ci(base, n, ".part") ||
	    ends_with_ci(base, n, ".crdownload");
}

bool
pathmap_ext_allowed(const char *name, const char *ext_list)
{
	size_t sn = stem_len(name), en, seg, m;
	const char *ext, *p, *item;

	if (name[sn] != '.')
		return false;
	ext = name + sn + 1;
	en = strlen(ext);
	if (en == 0)
		return false;
	for (p = ext_list; *p != '\0'; p += seg + (p[seg] == ',')) {
		seg = strcspn(p, ",");
		/* Tolerate "jpg, png" as written by hand. */
		item = p;
		m = seg;
		while (m > 0 && *item == ' ') {
			item++;
			m--;
		}
		while (m > 0 && item[m - 1] == ' ')
			m--;
		if (m == en && strncasecmp(item, ext, en) == 0)
			return true;
	}
	return false;
}

int
pathmap_join(char *out, size_t cap, const char *a, const char *b)
{
	size_t na = strlen(a), nb;

	/* Keep a root "/" but drop a trailing one elsewhere. */
	while (na > 1 && a[na - 1] == '/')
		na--;
	while (*b == '/')
		b++;
	nb = strlen(b);
	if (nb == 0 || na == 0) {
		if (na == 0) {
			a = b;
			na = nb;
		}
		if (na >= cap)
			return -ENAMETOOLONG;
		memmove(out, a, na);
		out[na] = '\0';
		return 0;
	}
	if (na + (a[na - 1] != '/') + nb >= cap)
		return -ENAMETOOLONG;
	memmove(out, a, na);
	if (a[na - 1] != '/')
		out[na++] = '/';
	memmove(out + na, b, nb);
	out[na + nb] = '\0';
	return 0;
}

/* Appends the components of s (empty and "." ones dropped) to out[*len],
 * each preceded by '/' unless out is empty.  ".." is -EXDEV. */
static int
append_components(char *out, size_t cap, size_t *len, const char *s)
{
	size_t n;

	for (; *s != '\0'; s += n) {
		while (*s == '/')
			s++;
		n = comp_len(s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return -EXDEV;
		if (*len + (*len > 0) + n >= cap)
			return -ENAMETOOLONG;
		if (*len > 0)
			out[(*len)++] = '/';
		memcpy(out + *len, s, n);
		*len += n;
		out[*len] = '\0';
	}
	return 0;
}

int
pathmap_relative(const char *root, const char *path, char *rel, size_t cap)
{
	size_t nr = strlen(root), len = 0;

	if (cap == 0)
		return -ENAMETOOLONG;
	rel[0] = '\0';
	if (nr == 0)
		return -EXDEV;
	while (nr > 0 && root[nr - 1] == '/')
		nr--;
	/* nr == 0 now means root was "/": every absolute path is below. */
	if (nr == 0) {
		if (path[0] != '/')
			return -EXDEV;
	} else if (strncmp(root, path, nr) != 0 ||
	    (path[nr] != '\0' && path[nr] != '/')) {
		return -EXDEV;
	}
	/* "/in/../etc" starts with "/in/" but is not below it. */
	return append_components(rel, cap, &len, path + nr);
}

/* Appends s[0..n) to out, or fails with -ENAMETOOLONG. */
static int
emit(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	if (n >= cap - *len)
		return -ENAMETOOLONG;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

/* Drops empty components ("//", a leading "/" from an empty {dir}, a
 * trailing "/") in place; rejects "." and ".." components and an empty
 * result. */
static int
normalise_result(char *s)
{
	const char *r = s;
	char *w = s;
	size_t n;

	while (*r != '\0') {
		while (*r == '/')
			r++;
		n = comp_len(r);
		if (n == 0)
			break;
		if (comp_is_dot(r, n))
			return -EINVAL;
		if (w != s)
			*w++ = '/';
		memmove(w, r, n);
		w += n;
		r += n;
	}
	*w = '\0';
	return w == s ? -EINVAL : 0;
}

static int
expand(char *out, size_t cap, const char *tmpl, const char *rel_src,
    const char *preset, const char *ext, bool qualify)
{
	const char *name, *srcext, *p, *close, *val;
	size_t dirlen, stemlen, len = 0, n;
	int rc;

	rc = pathmap_check_template(tmpl);
	if (rc != 0)
		return rc;
	name = strrchr(rel_src, '/');
	name = name != NULL ? name + 1 : rel_src;
	if (*name == '\0')
		return -EINVAL;
	dirlen = name > rel_src ? (size_t)(name - rel_src - 1) : 0;
	stemlen = stem_len(name);
	srcext = name + stemlen + (name[stemlen] == '.');
	for (p = tmpl; *p != '\0'; p++) {
		if (*p != '{') {
			if ((rc = emit(out, cap, &len, p, 1)) != 0)
				return rc;
			continue;
		}
		close = strchr(p + 1, '}');
		switch (ph_lookup(p + 1, (size_t)(close - p - 1))) {
		case PH_DIR:
			val = rel_src;
			n = dirlen;
			break;
		case PH_STEM:
			if (!qualify) {
				val = name;
				n = stemlen;
				break;
			}
			/* "{stem}.{srcext}": the whole name, plus a "." when
			 * it has no extension, so that it never equals an
			 * unqualified stem. */
			if ((rc = emit(out, cap, &len, name, strlen(name))) != 0)
				return rc;
			val = ".";
			n = name[stemlen] == '.' ? 0 : 1;
			break;
		case PH_PRESET:
			val = preset;
			n = strlen(preset);
			break;
		case PH_EXT:
			val = ext;
			n = strlen(ext);
			break;
		default:	/* PH_SRCEXT; the template was checked */
			val = srcext;
			n = strlen(srcext);
			break;
		}
		if ((rc = emit(out, cap, &len, val, n)) != 0)
			return rc;
		p = close;
	}
	return normalise_result(out);
}

int
pathmap_output(char *out, size_t cap, const char *tmpl, const char *rel_src,
    const char *preset, const char *ext, bool qualify)
{
	int rc;

	if (cap == 0)
		return -ENAMETOOLONG;
	out[0] = '\0';
	rc = expand(out, cap, tmpl, rel_src, preset, ext, qualify);
	/* Never leave a half-expanded path for a caller to misuse. */
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

int
pathmap_out_temp(char *out, size_t cap, const char *name, bool random)
{
	int n = snprintf(out, cap, ".%.200s.tw-%s", name, random ? "XXXXXX" :
	    "");

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

bool
pathmap_is_out_temp(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' && n > 11 &&
	    memcmp(name + n - 10, ".tw-", 4) == 0;
}
