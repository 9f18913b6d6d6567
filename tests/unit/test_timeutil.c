/* timeutil: the two millisecond clocks. */
#include "unit.h"

#include <time.h>
#include <unistd.h>

#include "timeutil.h"

static void
test_wall_is_the_epoch_in_ms(void **state)
{
	int64_t before = (int64_t)time(NULL) * 1000, ms = time_wall_ms(),
	    after = (int64_t)time(NULL) * 1000 + 1000;

	(void)state;
	assert_true(ms >= before && ms <= after);
}

static void
test_mono_moves_forward(void **state)
{
	int64_t a = time_mono_ms(), b;

	(void)state;
	usleep(20000);
	b = time_mono_ms();
	assert_true(b - a >= 19 && b - a < 5000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wall_is_the_epoch_in_ms),
		cmocka_unit_test(test_mono_moves_forward),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
