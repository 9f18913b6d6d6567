/*
 * Unit tests of src/common/safedir.c: which folders may hold the control socket,
 * the pidfile and the log (owner, group/other write, sticky bit, the
 * folders above, a symlink met on the way).  Runs as any user; the
 * "another user" cases need root to chown and are skipped otherwise.
 */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safedir.h"

static char tmp[64];
static char err[2048];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/tw-safedir-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
dir(const char *name, mode_t mode)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	mkdir(path, 0700);
	chmod(path, mode);
	return path;
}

static void
test_private_modes(void **state)
{
	(void)state;
	assert_int_equal(safedir_check("RUNTIME_DIR", dir("a", 0700),
	    SAFEDIR_PRIVATE, err, sizeof(err)), 0);
	assert_int_equal(safedir_check("RUNTIME_DIR", dir("b", 0755),
	    SAFEDIR_PRIVATE, err, sizeof(err)), 0);
	assert_int_equal(safedir_check("RUNTIME_DIR", dir("c", 0770),
	    SAFEDIR_PRIVATE, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "mode 0770"));
	/* The sticky bit does not make a shared folder private. */
	assert_int_equal(safedir_check("RUNTIME_DIR", dir("d", 01777),
	    SAFEDIR_PRIVATE, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "RUNTIME_DIR"));
}

static void
test_log_modes(void **state)
{
	(void)state;
	/* Group-writable (syslog's /var/log) and sticky (/tmp) are fine. */
	assert_int_equal(safedir_check("LOG", dir("e", 0775), SAFEDIR_LOG,
	    err, sizeof(err)), 0);
	assert_int_equal(safedir_check("LOG", dir("f", 01777), SAFEDIR_LOG,
	    err, sizeof(err)), 0);
	assert_int_equal(safedir_check("LOG", dir("g", 0777), SAFEDIR_LOG,
	    err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "sticky"));
}

static void
test_parent_and_symlink(void **state)
{
	char path[256], link[256];

	(void)state;
	dir("shared", 0777);
	snprintf(path, sizeof(path), "%s/shared/run", tmp);
	mkdir(path, 0700);
	assert_int_equal(safedir_check("RUNTIME_DIR", path, SAFEDIR_PRIVATE,
	    err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "above"));
	/* A symlink in a shared folder, to a private one: judged by the
	 * folder holding the link too. */
	snprintf(link, sizeof(link), "%s/shared/to-a", tmp);
	snprintf(path, sizeof(path), "%s/a", tmp);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(safedir_check("RUNTIME_DIR", link, SAFEDIR_PRIVATE,
	    err, sizeof(err)), -EPERM);
	assert_int_equal(safedir_check("RUNTIME_DIR", link, SAFEDIR_CLIENT,
	    err, sizeof(err)), -EPERM);
}

static void
test_other_owner(void **state)
{
	const char *d;

	(void)state;
	if (geteuid() != 0)
		skip();
	d = dir("nobody", 0700);
	assert_int_equal(chown(d, 65534, 65534), 0);
	assert_int_equal(safedir_check("RUNTIME_DIR", d, SAFEDIR_PRIVATE,
	    err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "uid 65534"));
	/* `status` run by root for a daemon user's folder. */
	assert_int_equal(safedir_check("RUNTIME_DIR", d, SAFEDIR_CLIENT,
	    err, sizeof(err)), 0);
}

static void
test_missing(void **state)
{
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/none", tmp);
	assert_int_equal(safedir_check("RUNTIME_DIR", path, SAFEDIR_PRIVATE,
	    err, sizeof(err)), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_modes),
		cmocka_unit_test(test_log_modes),
		cmocka_unit_test(test_parent_and_symlink),
		cmocka_unit_test(test_other_owner),
		cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
