/*
 * Unit tests of src/common/uptodate.c: every verdict, and the order of the checks
 * when several conditions hold at once.
 */
#include "unit.h"

#include <stdbool.h>

#include "uptodate.h"

static const int64_t SRC = 1700000000123456789;
static const int64_t EPOCH = 1700000100000000000;
static const int64_t SIZE = 123456;

static enum uptodate_verdict
check(bool exists, int64_t mtime, int64_t ctime)
{
	struct uptodate_stat st = { exists, mtime, ctime, SIZE };

	return uptodate_check(SRC, SIZE, &st, EPOCH);
}

static void
test_fresh(void **state)
{
	(void)state;
	assert_int_equal(check(true, SRC, EPOCH), UPTODATE_FRESH);
	assert_int_equal(check(true, SRC, EPOCH + 1), UPTODATE_FRESH);
	/* no preset state file yet: epoch 0 */
	{
		struct uptodate_stat st = { true, SRC, 5, SIZE };

		assert_int_equal(uptodate_check(SRC, SIZE, &st, 0), UPTODATE_FRESH);
	}
}

static void
test_missing_first(void **state)
{
	(void)state;
	assert_int_equal(check(false, 0, 0), UPTODATE_MISSING);
	/* whatever stale stat fields say, a missing file is missing */
	assert_int_equal(check(false, SRC, EPOCH), UPTODATE_MISSING);
	assert_int_equal(check(false, SRC + 1, EPOCH - 1), UPTODATE_MISSING);
	assert_int_equal(uptodate_check(SRC, SIZE, NULL, EPOCH), UPTODATE_MISSING);
}

static void
test_source_changed(void **state)
{
	(void)state;
	/* newer or older (a restored backup): any difference, to the ns */
	assert_int_equal(check(true, SRC + 1, EPOCH), UPTODATE_SOURCE_CHANGED);
	assert_int_equal(check(true, SRC - 1, EPOCH), UPTODATE_SOURCE_CHANGED);
	assert_int_equal(check(true, 0, EPOCH), UPTODATE_SOURCE_CHANGED);
	/* before the preset check */
	assert_int_equal(check(true, SRC + 1, EPOCH - 1),
	    UPTODATE_SOURCE_CHANGED);
}

static void
test_preset_changed(void **state)
{
	(void)state;
	assert_int_equal(check(true, SRC, EPOCH - 1), UPTODATE_PRESET_CHANGED);
	assert_int_equal(check(true, SRC, 0), UPTODATE_PRESET_CHANGED);
	assert_int_equal(check(true, SRC, INT64_MIN), UPTODATE_PRESET_CHANGED);
}

static void
test_coarse_output_fs(void **state)
{
	const int64_t sec = 1000000000;

	(void)state;
	/* The output filesystem kept whole seconds: same second is fresh. */
	assert_int_equal(uptodate_check(5 * sec + 123456789, SIZE,
	    &(struct uptodate_stat){ true, 5 * sec, EPOCH, SIZE }, EPOCH),
	    UPTODATE_FRESH);
	/* ... but not another second, and not a fraction it did keep. */
	assert_int_equal(uptodate_check(6 * sec + 1, SIZE,
	    &(struct uptodate_stat){ true, 5 * sec, EPOCH, SIZE }, EPOCH),
	    UPTODATE_SOURCE_CHANGED);
	assert_int_equal(uptodate_check(5 * sec + 2, SIZE,
	    &(struct uptodate_stat){ true, 5 * sec + 1, EPOCH, SIZE }, EPOCH),
	    UPTODATE_SOURCE_CHANGED);
}

static void
test_recorded_size(void **state)
{
	struct uptodate_stat st = { true, SRC, EPOCH, SIZE };

	(void)state;
	assert_int_equal(uptodate_check(SRC, SIZE, &st, EPOCH), UPTODATE_FRESH);
	/* same mtime, other size: replaced by cp -p or rsync -t */
	assert_int_equal(uptodate_check(SRC, SIZE + 1, &st, EPOCH),
	    UPTODATE_SOURCE_CHANGED);
	/* nothing recorded (no user xattrs): the mtime alone decides */
	st.src_size = -1;
	assert_int_equal(uptodate_check(SRC, SIZE + 1, &st, EPOCH),
	    UPTODATE_FRESH);
	/* the mtime is checked first */
	st.src_size = SIZE;
	assert_int_equal(uptodate_check(SRC + 1, SIZE, &st, EPOCH),
	    UPTODATE_SOURCE_CHANGED);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(uptodate_verdict_name(UPTODATE_FRESH), "fresh");
	assert_string_equal(uptodate_verdict_name(UPTODATE_MISSING),
	    "missing");
	assert_string_equal(uptodate_verdict_name(UPTODATE_SOURCE_CHANGED),
	    "source_changed");
	assert_string_equal(uptodate_verdict_name(UPTODATE_PRESET_CHANGED),
	    "preset_changed");
	assert_string_equal(uptodate_verdict_name((enum uptodate_verdict)99),
	    "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_missing_first),
		cmocka_unit_test(test_source_changed),
		cmocka_unit_test(test_preset_changed),
		cmocka_unit_test(test_coarse_output_fs),
		cmocka_unit_test(test_recorded_size),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
