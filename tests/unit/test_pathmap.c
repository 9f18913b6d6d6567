/*
 * Unit tests of src/common/pathmap.c: template expansion and its escape checks,
 * the collision rule, name filters and path arithmetic.
 */
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pathmap.h"

#define DEF "{dir}/{stem}_{preset}.{ext}"

/* Expands and returns a static copy for terse assertions; rc in *rc. */
static const char *
out(const char *tmpl, const char *rel, const char *preset, const char *ext,
    bool qualify, int *rc)
{
	static char buf[4096];

	*rc = pathmap_output(buf, sizeof(buf), tmpl, rel, preset, ext,
	    qualify);
	return buf;
}

static void
assert_output(const char *tmpl, const char *rel, bool qualify,
    const char *want)
{
	int rc;
	const char *got = out(tmpl, rel, "thumb", "jpg", qualify, &rc);

	if (rc != 0)
		fail_msg("%s + %s: rc %d", tmpl, rel, rc);
	assert_string_equal(got, want);
}

static void
assert_output_rc(const char *tmpl, const char *rel, const char *preset,
    int want)
{
	int rc;

	(void)out(tmpl, rel, preset, "jpg", false, &rc);
	if (rc != want)
		fail_msg("%s + %s + %s: rc %d, want %d", tmpl, rel, preset,
		    rc, want);
}

static void
test_default_template(void **state)
{
	(void)state;
	/* the leading "/" of an empty {dir} is dropped */
	assert_output(DEF, "photo.jpg", false, "photo_thumb.jpg");
	assert_output(DEF, "a/photo.jpg", false, "a/photo_thumb.jpg");
	assert_output(DEF, "a/b/c/photo.tar.gz", false,
	    "a/b/c/photo.tar_thumb.jpg");
	assert_output(DEF, "noext", false, "noext_thumb.jpg");
}

static void
test_other_placeholders(void **state)
{
	int rc;

	(void)state;
	assert_output("{preset}/{dir}/{stem}.{srcext}.{ext}", "x/y.png",
	    false, "thumb/x/y.png.jpg");
	assert_output("{preset}/{dir}/{stem}.{srcext}.{ext}", "y.png", false,
	    "thumb/y.png.jpg");
	assert_output("thumbs/{dir}/{stem}-{preset}", "d/p.JPG", false,
	    "thumbs/d/p-thumb");
	assert_string_equal(out(DEF, "d/p.jpg", "small", "webp", false, &rc),
	    "d/p_small.webp");
	assert_int_equal(rc, 0);
}

static void
test_empty_components_collapse(void **state)
{
	(void)state;
	assert_output("{dir}//{stem}_{preset}.{ext}", "a/p.jpg", false,
	    "a/p_thumb.jpg");
	assert_output("{dir}///{preset}//{stem}.{ext}/", "p.jpg", false,
	    "thumb/p.jpg");
	/* a relative source path that itself has doubled slashes */
	assert_output(DEF, "a//b/p.jpg", false, "a/b/p_thumb.jpg");
}

/* photo.jpg and photo.heic in one folder: photo.heic sorts first and
 * keeps {stem}; photo.jpg carries its extension.  Outputs never clash. */
static void
test_collision_rule(void **state)
{
	const char *names[] = { "photo.jpg", "photo.heic", "photo",
	    "photo.png", "other.jpg" };
	const size_t n = sizeof(names) / sizeof(names[0]);
	char outs[5][256];
	size_t i, k;
	bool qualify;

	(void)state;
	assert_output(DEF, "dir/photo.heic", true,
	    "dir/photo.heic_thumb.jpg");
	assert_output(DEF, "photo.jpg", true, "photo.jpg_thumb.jpg");
	/* "{stem}.{srcext}" literally, even without an extension */
	assert_output(DEF, "photo", true, "photo._thumb.jpg");
	assert_output(DEF, "photo.", true, "photo._thumb.jpg");
	assert_output("{dir}/{stem}-{srcext}_{preset}", "a.tar.gz", true,
	    "a.tar.gz-gz_thumb");

	for (i = 0; i < n; i++) {
		qualify = false;
		for (k = 0; k < n; k++)
			if (pathmap_same_stem(names[i], names[k]) &&
			    strcmp(names[k], names[i]) < 0)
				qualify = true;
		assert_int_equal(pathmap_output(outs[i], sizeof(outs[i]), DEF,
		    names[i], "thumb", "jpg", qualify), 0);
	}
	assert_string_equal(outs[2], "photo_thumb.jpg");	/* sorts first */
	assert_string_equal(outs[1], "photo.heic_thumb.jpg");
	assert_string_equal(outs[0], "photo.jpg_thumb.jpg");
	assert_string_equal(outs[3], "photo.png_thumb.jpg");
	assert_string_equal(outs[4], "other_thumb.jpg");
	for (i = 0; i < n; i++)
		for (k = i + 1; k < n; k++)
			assert_string_not_equal(outs[i], outs[k]);
}

static void
test_templates_that_escape(void **state)
{
	(void)state;
	assert_output_rc("../{stem}_{preset}.{ext}", "p.jpg", "thumb",
	    -EINVAL);
	assert_output_rc("{dir}/../x/{stem}_{preset}", "a/p.jpg", "thumb",
	    -EINVAL);
	assert_output_rc("{dir}/..", "p.jpg", "thumb", -EINVAL);
	assert_output_rc("/abs/{stem}_{preset}.{ext}", "p.jpg", "thumb",
	    -EINVAL);
	assert_output_rc("./{stem}_{preset}.{ext}", "p.jpg", "thumb",
	    -EINVAL);
	/* ".." made by substitution is caught on the result */
	assert_output_rc("{preset}/{stem}.{ext}", "p.jpg", "..", -EINVAL);
	assert_output_rc("{preset}/{stem}.{ext}", "p.jpg", "a/../..",
	    -EINVAL);
	assert_output_rc("..{srcext}/{stem}_{preset}", "noext", "t",
	    -EINVAL);
	assert_output_rc("..{srcext}/{stem}_{preset}", "a.jpg", "t", 0);
	assert_output_rc(DEF, "../p.jpg", "thumb", -EINVAL);
	assert_output_rc(DEF, "a/../../p.jpg", "thumb", -EINVAL);
	/* "..x" and "x.." are ordinary names */
	assert_output_rc("..x/{stem}_{preset}..", "p.jpg", "t", 0);
	/* a source without a name */
	assert_output_rc(DEF, "", "thumb", -EINVAL);
	assert_output_rc(DEF, "a/", "thumb", -EINVAL);
	/* a "." component made by substitution */
	assert_output_rc("{dir}/{stem}{preset}", "a/.", "", -EINVAL);
}

static void
test_bad_templates(void **state)
{
	const char *bad[] = {
		"{dir}/{stem}_{preset}.{foo}", "{Stem}_{preset}",
		"{stem_{preset}", "{stem}_{preset", "stem}_{preset}",
		"{stem}}_{preset}", "{{stem}}_{preset}", "{}{stem}{preset}",
		"{stem}", "{preset}", "", "/{stem}{preset}",
		"a/../{stem}{preset}", "../{stem}{preset}", "{stem}{preset}/..",
		"./{stem}{preset}",
	};
	const char *good[] = {
		DEF, "{stem}{preset}", "{preset}/{dir}/{stem}.{srcext}.{ext}",
		"x/{dir}/{stem}_{preset}.{ext}", "..a/{stem}{preset}",
		"{dir}//{stem}{preset}/",
	};
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pathmap_check_template(bad[i]) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		(void)out(bad[i], "a/p.jpg", "thumb", "jpg", false, &rc);
		if (rc != -EINVAL)
			fail_msg("expanded %s: %d", bad[i], rc);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (pathmap_check_template(good[i]) != 0)
			fail_msg("rejected %s", good[i]);
}

static void
test_odd_names_pass_through(void **state)
{
	(void)state;
	assert_output(DEF, "my dir/a b.jpg", false, "my dir/a b_thumb.jpg");
	assert_output(DEF, "q\"u'o\\te/\"x\".png", false,
	    "q\"u'o\\te/\"x\"_thumb.jpg");
	assert_output(DEF, "new\nline/fi\nle.jpg", false,
	    "new\nline/fi\nle_thumb.jpg");
	assert_output(DEF, "\xff\xfe/\xc3\x28\x80.jpg", false,
	    "\xff\xfe/\xc3\x28\x80_thumb.jpg");
	assert_output(DEF, "\xe6\x97\xa5\xe6\x9c\xac/\xe5\x86\x99.webp",
	    false, "\xe6\x97\xa5\xe6\x9c\xac/\xe5\x86\x99_thumb.jpg");
	assert_output(DEF, "{stem}/{x}.jpg", false, "{stem}/{x}_thumb.jpg");
}

static void
test_output_too_long(void **state)
{
	char buf[32];

	(void)state;
	/* "a/p_thumb.jpg" is 13 bytes: 14 with the NUL fits, 13 does not */
	assert_int_equal(pathmap_output(buf, 14, DEF, "a/p.jpg", "thumb",
	    "jpg", false), 0);
	assert_string_equal(buf, "a/p_thumb.jpg");
	assert_int_equal(pathmap_output(buf, 13, DEF, "a/p.jpg", "thumb",
	    "jpg", false), -ENAMETOOLONG);
	assert_string_equal(buf, "");	/* no half-expanded path left */
	assert_int_equal(pathmap_output(buf, 0, DEF, "a/p.jpg", "thumb",
	    "jpg", false), -ENAMETOOLONG);
	/* the unnormalised expansion ("/p_thumb.jpg") is the limit */
	assert_int_equal(pathmap_output(buf, 13, DEF, "p.jpg", "thumb",
	    "jpg", false), 0);
	assert_string_equal(buf, "p_thumb.jpg");
}

static void
assert_split(const char *name, const char *stem, const char *ext)
{
	char s[64], e[64];

	pathmap_split(name, s, sizeof(s), e, sizeof(e));
	assert_string_equal(s, stem);
	assert_string_equal(e, ext);
}

static void
test_split(void **state)
{
	char s[4], e[3];

	(void)state;
	assert_split("photo.jpg", "photo", "jpg");
	assert_split("photo.tar.gz", "photo.tar", "gz");
	assert_split(".hidden", ".hidden", "");
	assert_split("..hidden", "..hidden", "");
	assert_split(".hidden.jpg", ".hidden", "jpg");
	assert_split("noext", "noext", "");
	assert_split("trailing.", "trailing", "");
	assert_split("", "", "");
	assert_split("a b.JPEG", "a b", "JPEG");
	/* a dot in a folder is not an extension */
	assert_split("a.d/noext", "a.d/noext", "");
	/* truncation keeps both terminated */
	pathmap_split("longname.jpeg", s, sizeof(s), e, sizeof(e));
	assert_string_equal(s, "lon");
	assert_string_equal(e, "jp");
}

static void
test_same_stem(void **state)
{
	(void)state;
	assert_true(pathmap_same_stem("photo.jpg", "photo.heic"));
	assert_true(pathmap_same_stem("photo", "photo.jpg"));
	assert_true(pathmap_same_stem("photo.jpg", "photo.JPG"));
	assert_true(pathmap_same_stem("a.tar.gz", "a.tar.bz2"));
	assert_false(pathmap_same_stem("photo.jpg", "photo.jpg"));
	assert_false(pathmap_same_stem("photo.jpg", "photos.jpg"));
	assert_false(pathmap_same_stem("a.jpg", "a.jpg.png"));
	assert_false(pathmap_same_stem("Photo.jpg", "photo.png"));
}

static void
test_temp_names(void **state)
{
	const char *temp[] = { ".x.jpg", ".photo.jpg.Ab12Cd", ".", ".tmp",
	    "a.tmp", "A.TMP", "a.jpg.part", "a.Part", "a.crdownload",
	    "b.CRDownload", "a.jpg~", "~~", "dir/.x" };
	const char *real[] = { "a.jpg", "tmp", "atmp", "a.tmpx", "part",
	    "a.partial", "crdownload", "a~b.jpg", "", "a.jpg.bak",
	    ".dir/a.jpg" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(temp) / sizeof(temp[0]); i++)
		if (!pathmap_is_temp_name(temp[i]))
			fail_msg("%s not temp", temp[i]);
	for (i = 0; i < sizeof(real) / sizeof(real[0]); i++)
		if (pathmap_is_temp_name(real[i]))
			fail_msg("%s temp", real[i]);
}

static void
test_ext_allowed(void **state)
{
	const char *list = "jpg,jpeg,png";

	(void)state;
	assert_true(pathmap_ext_allowed("a.jpg", list));
	assert_true(pathmap_ext_allowed("a.JPG", list));
	assert_true(pathmap_ext_allowed("x/y.b.PnG", list));
	assert_true(pathmap_ext_allowed("a.jpeg", list));
	assert_false(pathmap_ext_allowed("a.jp", list));
	assert_false(pathmap_ext_allowed("a.jpgx", list));
	assert_false(pathmap_ext_allowed("a.gif", list));
	assert_false(pathmap_ext_allowed("jpg", list));
	assert_false(pathmap_ext_allowed(".jpg", list));
	assert_false(pathmap_ext_allowed("a.", list));
	assert_false(pathmap_ext_allowed("a.jpg,png", list));
	assert_false(pathmap_ext_allowed("a.jpg", ""));
	assert_true(pathmap_ext_allowed("a.png", " jpg , png "));
	assert_true(pathmap_ext_allowed("a.png", "jpg,,png,"));
}

static void
assert_rel(const char *root, const char *path, int want_rc,
    const char *want)
{
	char rel[64];
	int rc = pathmap_relative(root, path, rel, sizeof(rel));

	if (rc != want_rc)
		fail_msg("%s in %s: rc %d, want %d", path, root, rc, want_rc);
	if (rc == 0)
		assert_string_equal(rel, want);
}

static void
test_relative(void **state)
{
	char rel[8];

	(void)state;
	assert_rel("/in", "/in/a/b.jpg", 0, "a/b.jpg");
	assert_rel("/in/", "/in/a/b.jpg", 0, "a/b.jpg");
	assert_rel("/in//", "/in/a.jpg", 0, "a.jpg");
	assert_rel("/in", "/in", 0, "");
	assert_rel("/in", "/in/", 0, "");
	assert_rel("/in/", "/in", 0, "");
	assert_rel("/in", "/in2/a.jpg", -EXDEV, NULL);
	assert_rel("/in", "/in2", -EXDEV, NULL);
	assert_rel("/in", "/i", -EXDEV, NULL);
	assert_rel("/in", "/other/a.jpg", -EXDEV, NULL);
	assert_rel("/in", "in/a.jpg", -EXDEV, NULL);
	assert_rel("/in", "/in/../etc/passwd", -EXDEV, NULL);
	assert_rel("/in", "/in//a//b.jpg", 0, "a/b.jpg");
	assert_rel("/", "/a/b.jpg", 0, "a/b.jpg");
	assert_rel("/", "/", 0, "");
	assert_rel("/", "a", -EXDEV, NULL);
	assert_rel("data/input", "data/input/x y.jpg", 0, "x y.jpg");
	assert_rel("", "/a", -EXDEV, NULL);
	assert_int_equal(pathmap_relative("/in", "/in/abcdefgh", rel,
	    sizeof(rel)), -ENAMETOOLONG);
	assert_int_equal(pathmap_relative("/in", "/in/abcdefg", rel,
	    sizeof(rel)), 0);
	assert_string_equal(rel, "abcdefg");
}

static void
assert_join(const char *a, const char *b, const char *want)
{
	char buf[64];

	assert_int_equal(pathmap_join(buf, sizeof(buf), a, b), 0);
	assert_string_equal(buf, want);
}

static void
test_join(void **state)
{
	char buf[6];

	(void)state;
	assert_join("/out", "a/b.jpg", "/out/a/b.jpg");
	assert_join("/out/", "a", "/out/a");
	assert_join("/out//", "/a", "/out/a");
	assert_join("/out", "", "/out");
	assert_join("/out/", "", "/out");
	assert_join("/", "a", "/a");
	assert_join("/", "", "/");
	assert_join("", "a", "a");
	assert_join("rel", "x", "rel/x");
	assert_int_equal(pathmap_join(buf, sizeof(buf), "ab", "cd"), 0);
	assert_string_equal(buf, "ab/cd");
	assert_int_equal(pathmap_join(buf, sizeof(buf), "ab", "cde"),
	    -ENAMETOOLONG);
	assert_int_equal(pathmap_join(buf, 3, "abc", ""), -ENAMETOOLONG);
}

/* The workers' temp names (thumb.c writes them, the supervisor cleans
 * them): one rule, so what one writes the other recognises. */
static void
test_out_temp(void **state)
{
	char t[256], p[256], longname[256];
	int n;

	(void)state;
	n = pathmap_out_temp(t, sizeof(t), "a.jpg", true);
	assert_int_equal(n, (int)strlen(".a.jpg.tw-XXXXXX"));
	assert_string_equal(t, ".a.jpg.tw-XXXXXX");
	assert_int_equal(pathmap_out_temp(p, sizeof(p), "a.jpg", false),
	    n - PATHMAP_OUT_TEMP_RANDOM);
	assert_string_equal(p, ".a.jpg.tw-");
	memcpy(t + n - 6, "Ab3xYz", 6);
	assert_true(pathmap_is_out_temp(t));
	assert_false(pathmap_is_out_temp("a.jpg"));
	assert_false(pathmap_is_out_temp(".a.jpg"));
	assert_false(pathmap_is_out_temp("x.tw-abcdef"));	/* no dot */
	/* A long name keeps 200 bytes, so the temp fits NAME_MAX. */
	memset(longname, 'n', 250);
	longname[250] = '\0';
	n = pathmap_out_temp(t, sizeof(t), longname, true);
	assert_int_equal(n, 1 + 200 + 4 + 6);
	assert_true(pathmap_is_out_temp(t));
	assert_int_equal(pathmap_out_temp(t, 8, "a.jpg", true),
	    -ENAMETOOLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_template),
		cmocka_unit_test(test_other_placeholders),
		cmocka_unit_test(test_empty_components_collapse),
		cmocka_unit_test(test_collision_rule),
		cmocka_unit_test(test_templates_that_escape),
		cmocka_unit_test(test_bad_templates),
		cmocka_unit_test(test_odd_names_pass_through),
		cmocka_unit_test(test_output_too_long),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_same_stem),
		cmocka_unit_test(test_temp_names),
		cmocka_unit_test(test_ext_allowed),
		cmocka_unit_test(test_relative),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_out_temp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
