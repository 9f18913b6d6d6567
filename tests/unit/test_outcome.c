/* outcome: the event bus's order, filters and limits. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "outcome.h"

struct seen {
	char log[256];
};

static void
rec(struct seen *s, const char *who, const struct outcome *o)
{
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%s:%s:%s ", who,
	    outcome_kind_name(o->kind), o->rel);
}

static void sub_a(void *ud, const struct outcome *o) { rec(ud, "a", o); }
static void sub_b(void *ud, const struct outcome *o) { rec(ud, "b", o); }
static void sub_c(void *ud, const struct outcome *o) { rec(ud, "c", o); }

static void
publish(struct outcome_bus *b, enum outcome_kind k, const char *rel)
{
	struct outcome o;

	memset(&o, 0, sizeof(o));
	o.kind = k;
	o.rel = rel;
	outcome_publish(b, &o);
}

static void
test_order_is_registration_order(void **state)
{
	struct outcome_bus b;
	struct seen s = { "" };

	(void)state;
	outcome_bus_init(&b);
	assert_int_equal(outcome_subscribe(&b, OUTCOME_ALL, sub_b, &s), 0);
	assert_int_equal(outcome_subscribe(&b, OUTCOME_ALL, sub_a, &s), 0);
	assert_int_equal(outcome_subscribe(&b, OUTCOME_ALL, sub_c, &s), 0);
	publish(&b, OUTCOME_DONE, "x.jpg");
	assert_string_equal(s.log, "b:done:x.jpg a:done:x.jpg c:done:x.jpg ");
}

static void
test_kinds_filter(void **state)
{
	struct outcome_bus b;
	struct seen s = { "" };

	(void)state;
	outcome_bus_init(&b);
	outcome_subscribe(&b, OUTCOME_ENDS, sub_a, &s);
	outcome_subscribe(&b, OUTCOME_MASK(OUTCOME_QUEUED), sub_b, &s);
	publish(&b, OUTCOME_QUEUED, "q");
	publish(&b, OUTCOME_PROCESSING, "p");
	publish(&b, OUTCOME_FAILED, "f");
	publish(&b, OUTCOME_SKIPPED, "s");
	assert_string_equal(s.log, "b:queued:q a:failed:f a:skipped:s ");
	/* A kind out of range reaches nobody. */
	s.log[0] = '\0';
	publish(&b, OUTCOME_NKINDS, "bad");
	assert_string_equal(s.log, "");
}

static void
test_unsubscribe_keeps_order(void **state)
{
	struct outcome_bus b;
	struct seen s = { "" }, t = { "" };

	(void)state;
	outcome_bus_init(&b);
	outcome_subscribe(&b, OUTCOME_ALL, sub_a, &s);
	outcome_subscribe(&b, OUTCOME_ALL, sub_b, &s);
	outcome_subscribe(&b, OUTCOME_ALL, sub_b, &t);
	outcome_subscribe(&b, OUTCOME_ALL, sub_c, &s);
	/* Only the pair given goes: sub_b for t stays. */
	outcome_unsubscribe(&b, sub_b, &s);
	publish(&b, OUTCOME_DONE, "d");
	assert_string_equal(s.log, "a:done:d c:done:d ");
	assert_string_equal(t.log, "b:done:d ");
	assert_int_equal(b.n, 3);
}

static void
test_table_full(void **state)
{
	struct outcome_bus b;
	struct seen s = { "" };
	int i;

	(void)state;
	outcome_bus_init(&b);
	for (i = 0; i < OUTCOME_MAX_SUBSCRIBERS; i++)
		assert_int_equal(outcome_subscribe(&b, OUTCOME_ALL, sub_a, &s),
		    0);
	assert_int_equal(outcome_subscribe(&b, OUTCOME_ALL, sub_b, &s),
	    -ENOSPC);
	publish(&b, OUTCOME_SKIPPED, "z");
	assert_null(strstr(s.log, "b:"));
}

static void
test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(outcome_kind_name(OUTCOME_QUEUED), "queued");
	assert_string_equal(outcome_kind_name(OUTCOME_PROCESSING),
	    "processing");
	assert_string_equal(outcome_kind_name(OUTCOME_DONE), "done");
	assert_string_equal(outcome_kind_name(OUTCOME_FAILED), "failed");
	assert_string_equal(outcome_kind_name(OUTCOME_SKIPPED), "skipped");
	assert_string_equal(outcome_kind_name(OUTCOME_NKINDS), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_is_registration_order),
		cmocka_unit_test(test_kinds_filter),
		cmocka_unit_test(test_unsubscribe_keeps_order),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
