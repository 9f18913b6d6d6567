/*
 * Unit tests of src/common/control.c, the control socket's protocol (no
 * loop): request lines (parsing, %XX encoding, round trips of awkward
 * paths), the client's response scanner, the recent-failures ring and the
 * per-minute rate.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

/* ---- requests ---------------------------------------------------------- */

static int
parse(const char *line, struct control_request *req, char *err)
{
	return control_parse_request(line, strlen(line), req, err, 256);
}

static void
test_parse_simple(void **state)
{
	struct control_request r;
	char err[256];

	(void)state;
	assert_int_equal(parse("status", &r, err), 0);
	assert_int_equal(r.cmd, CONTROL_STATUS);
	assert_int_equal(r.nargs, 0);
	control_request_free(&r);
	assert_int_equal(parse("  status  \r", &r, err), 0);
	assert_int_equal(r.cmd, CONTROL_STATUS);
	control_request_free(&r);
	assert_int_equal(parse("retry-failed", &r, err), 0);
	assert_int_equal(r.cmd, CONTROL_RETRY_FAILED);
	control_request_free(&r);
	assert_int_equal(parse("reprocess a%20b.jpg  c.png", &r, err), 0);
	assert_int_equal(r.cmd, CONTROL_REPROCESS);
	assert_int_equal(r.nargs, 2);
	assert_string_equal(r.args[0], "a b.jpg");
	assert_string_equal(r.args[1], "c.png");
	control_request_free(&r);
	/* Raw UTF-8 and other high bytes pass untouched. */
	assert_int_equal(parse("reprocess caf\xc3\xa9/\xff.jpg", &r, err), 0);
	assert_string_equal(r.args[0], "caf\xc3\xa9/\xff.jpg");
	control_request_free(&r);
	/* Hex digits in either case. */
	assert_int_equal(parse("reprocess %2a%2A%25", &r, err), 0);
	assert_string_equal(r.args[0], "**%");
	control_request_free(&r);
}

static void
test_parse_errors(void **state)
{
	struct control_request r;
	char err[256];

	(void)state;
	assert_int_equal(parse("", &r, err), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(parse("   ", &r, err), -EINVAL);
	assert_int_equal(parse("bogus", &r, err), -EINVAL);
	assert_non_null(strstr(err, "unknown request 'bogus'"));
	assert_int_equal(parse("STATUS", &r, err), -EINVAL);
	assert_int_equal(parse("status now", &r, err), -EINVAL);
	assert_non_null(strstr(err, "no arguments"));
	assert_int_equal(parse("retry-failed x", &r, err), -EINVAL);
	assert_int_equal(parse("reprocess", &r, err), -EINVAL);
	assert_non_null(strstr(err, "at least one path"));
	assert_int_equal(parse("reprocess   ", &r, err), -EINVAL);
	assert_int_equal(parse("reprocess a%2", &r, err), -EINVAL);
	assert_non_null(strstr(err, "escape"));
	assert_int_equal(parse("reprocess a%", &r, err), -EINVAL);
	assert_int_equal(parse("reprocess %zz", &r, err), -EINVAL);
	assert_int_equal(parse("reprocess a%00b", &r, err), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(parse("status\x01", &r, err), -EINVAL);
	assert_non_null(strstr(err, "control character"));
	assert_int_equal(parse("reprocess a\x7f", &r, err), -EINVAL);
	/* An embedded NUL byte (len covers it). */
	assert_int_equal(control_parse_request("status\0x", 8, &r, err,
	    sizeof(err)), -EINVAL);
	/* A very long unknown word is quoted only in part. */
	{
		char big[1000];
		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(parse(big, &r, err), -EINVAL);
		assert_true(strlen(err) < 200);
	}
}

static void
test_format_roundtrip(void **state)
{
	char *const paths[] = { "/in/a b.jpg", "50%.png", "tab\there",
	    "new\nline", "caf\xc3\xa9.jpg", "x\x7fy", "\x01" };
	size_t n = sizeof(paths) / sizeof(paths[0]), i;
	struct control_request r;
	char err[256], *line;

	(void)state;
	assert_int_equal(control_format_request("reprocess", paths, n, false,
	    &line), 0);
	/* One line: the only newline is the last byte; no raw space in an
	 * argument. */
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	assert_non_null(strstr(line, "/in/a%20b.jpg"));
	assert_non_null(strstr(line, "50%25.png"));
	assert_int_equal(control_parse_request(line, strlen(line) - 1, &r,
	    err, sizeof(err)), 0);
	assert_int_equal(r.nargs, n);
	for (i = 0; i < n; i++)
		assert_string_equal(r.args[i], paths[i]);
	control_request_free(&r);
	free(line);

	assert_int_equal(control_format_request("status", NULL, 0, false,
	    &line), 0);
	assert_string_equal(line, "status\n");
	free(line);
	assert_int_equal(control_format_request("retry-failed", NULL, 0,
	    false, &line), 0);
	assert_string_equal(line, "retry-failed\n");
	free(line);
	assert_int_equal(control_format_request("status", paths, 1, false,
	    &line), -EINVAL);
	assert_int_equal(control_format_request("reprocess", NULL, 0, false,
	    &line), -EINVAL);
	assert_int_equal(control_format_request("nope", NULL, 0, false,
	    &line), -EINVAL);
	{
		char *empty[] = { "" };
		assert_int_equal(control_format_request("reprocess", empty, 1,
		    false, &line), -EINVAL);
	}
}

static void
test_format_too_long(void **state)
{
	char *big, *args[1], *line;

	(void)state;
	big = malloc(CONTROL_LINE_MAX);
	assert_non_null(big);
	memset(big, 'a', CONTROL_LINE_MAX - 1);
	big[CONTROL_LINE_MAX - 1] = '\0';
	args[0] = big;
	assert_int_equal(control_format_request("reprocess", args, 1, false,
	    &line), -E2BIG);
	free(big);
}

/* Existing relative paths are sent absolute: the daemon's working
 * directory is not the client's. */
static void
test_format_absolute(void **state)
{
	char dir[] = "/tmp/tw-ctl-abs-XXXXXX", old[PATH_MAX], want[PATH_MAX];
	char *args[] = { "pic one.jpg", "trip/missing.jpg" }, *line;
	struct control_request r;
	char err[256];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(dir), 0);
	close(open("pic one.jpg", O_CREAT | O_WRONLY, 0644));
	assert_int_equal(control_format_request("reprocess", args, 2, true,
	    &line), 0);
	assert_int_equal(control_parse_request(line, strlen(line) - 1, &r,
	    err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/pic one.jpg", dir);
	assert_string_equal(r.args[0], want);
	/* Not here: sent as given (relative to INPUT_DIR). */
	assert_string_equal(r.args[1], "trip/missing.jpg");
	control_request_free(&r);
	free(line);
	unlink("pic one.jpg");
	assert_int_equal(chdir(old), 0);
	rmdir(dir);
}

static void
test_socket_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(control_socket_path(out, sizeof(out), "run"), 0);
	assert_string_equal(out, "run/thumbwatch.sock");
	assert_int_equal(control_socket_path(out, sizeof(out), "/run/tw//"), 0);
	assert_string_equal(out, "/run/tw/thumbwatch.sock");
	assert_int_equal(control_socket_path(out, 10, "run"), -ENAMETOOLONG);
}

/* ---- responses --------------------------------------------------------- */

static int
presp(const char *s, bool *ok, char **text, char **error)
{
	return control_parse_response(s, strlen(s), ok, text, error);
}

static void
test_parse_response(void **state)
{
	char *text, *error;
	bool ok;

	(void)state;
	assert_int_equal(presp("{\"ok\":true,\"text\":\"a\\nb \\u00e9 "
	    "\\ud83d\\ude00 \\\"q\\\" \\\\ \\/\"}", &ok, &text, &error), 0);
	assert_true(ok);
	assert_null(error);
	assert_string_equal(text, "a\nb \xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ /");
	free(text);

	assert_int_equal(presp(" { \"ok\" : false , \"error\" : \"no\" } ",
	    &ok, &text, &error), 0);
	assert_false(ok);
	assert_null(text);
	assert_string_equal(error, "no");
	free(error);

	/* Keys inside nested values and strings do not count. */
	assert_int_equal(presp("{\"a\":{\"text\":\"inner\",\"ok\":false},"
	    "\"b\":[\"\\\"text\\\":\\\"x\",{\"text\":1}],\"n\":-1.5e3,"
	    "\"t\":null,\"ok\":true,\"text\":\"outer\"}", &ok, &text,
	    &error), 0);
	assert_true(ok);
	assert_string_equal(text, "outer");
	free(text);

	/* A lone surrogate and an escaped NUL become U+FFFD. */
	assert_int_equal(presp("{\"ok\":true,\"text\":\"\\ud800x\\u0000\"}",
	    &ok, &text, &error), 0);
	assert_string_equal(text, "\xef\xbf\xbdx\xef\xbf\xbd");
	free(text);

	assert_int_equal(presp("{\"ok\":true}", &ok, &text, &error), 0);
	assert_null(text);
	assert_int_equal(presp("{\"text\":\"x\"}", &ok, &text, &error),
	    -EBADMSG);
	assert_null(text);
	assert_int_equal(presp("{\"ok\":1}", &ok, &text, &error), -EBADMSG);
	assert_int_equal(presp("{}", &ok, &text, &error), -EBADMSG);
	assert_int_equal(presp("", &ok, &text, &error), -EBADMSG);
	assert_int_equal(presp("hello", &ok, &text, &error), -EBADMSG);
	assert_int_equal(presp("{\"ok\":true,\"text\":\"unterminated}", &ok,
	    &text, &error), -EBADMSG);
	assert_int_equal(presp("{\"ok\":true,\"text\":\"\\q\"}", &ok, &text,
	    &error), -EBADMSG);
	assert_int_equal(presp("{\"ok\":true,\"text\":\"\\u12\"}", &ok,
	    &text, &error), -EBADMSG);
	assert_int_equal(presp("{\"ok\":true \"x\":1}", &ok, &text, &error),
	    -EBADMSG);
	assert_int_equal(presp("{\"ok\":true,\"a\":{\"b\":[1,2}", &ok, &text,
	    &error), -EBADMSG);
	assert_null(text);
}

/* ---- recent failures, rates -------------------------------------------- */

static void
test_recent_ring(void **state)
{
	struct control_recent r;
	char f[32];
	int i;

	(void)state;
	memset(&r, 0, sizeof(r));
	control_recent_add(&r, 1000, "a.jpg", "bad");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.e[0].file, "a.jpg");
	for (i = 0; i < CONTROL_RECENT_MAX + 3; i++) {
		snprintf(f, sizeof(f), "f%d", i);
		control_recent_add(&r, 2000 + i, f, "err");
	}
	assert_int_equal(r.n, CONTROL_RECENT_MAX);
	/* The newest sits just before next. */
	snprintf(f, sizeof(f), "f%d", CONTROL_RECENT_MAX + 2);
	assert_string_equal(r.e[(r.next + CONTROL_RECENT_MAX - 1) %
	    CONTROL_RECENT_MAX].file, f);
}

static void
test_rate_last_minute(void **state)
{
	struct control_rate r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(control_rate_sum(&r, 0), 0);
	control_rate_add(&r, 0, 1);		/* second 0 counts */
	control_rate_add(&r, 500, 2);
	control_rate_add(&r, 30000, 4);
	assert_int_equal(control_rate_sum(&r, 30000), 7);
	assert_int_equal(control_rate_sum(&r, 59999), 7);
	/* Second 0 has left the window. */
	assert_int_equal(control_rate_sum(&r, 60000), 4);
	assert_int_equal(control_rate_sum(&r, 89999), 4);
	assert_int_equal(control_rate_sum(&r, 90000), 0);
	/* A bucket is reused a minute later, not added to. */
	control_rate_add(&r, 120000, 1);
	assert_int_equal(control_rate_sum(&r, 120000), 1);
	control_rate_add(&r, 3600000, 5);
	assert_int_equal(control_rate_sum(&r, 3600000), 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_simple),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_format_too_long),
		cmocka_unit_test(test_format_absolute),
		cmocka_unit_test(test_socket_path),
		cmocka_unit_test(test_parse_response),
		cmocka_unit_test(test_recent_ring),
		cmocka_unit_test(test_rate_last_minute),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
