/*
 * Unit tests of src/common/batch.c: the de-duplicating FIFO (checked against a
 * plain array model under random operations, and past 10000 items) and
 * the dispatch policy table.
 */
#include "unit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

/* Walks the list: order, length and that tail is the last item. */
static void
assert_queue(const struct batch_queue *q, const char *const *want, size_t n)
{
	const struct batch_item *it = q->head, *last = NULL;
	size_t i;

	assert_int_equal(q->len, n);
	for (i = 0; i < n; i++) {
		assert_non_null(it);
		assert_string_equal(it->rel, want[i]);
		assert_true(batch_queue_contains(q, want[i]));
		last = it;
		it = it->next;
	}
	assert_null(it);
	assert_ptr_equal(q->tail, last);
}

static void
test_push_dedupes(void **state)
{
	struct batch_queue q;
	const char *want[] = { "a.jpg", "d/b.jpg", "c.png" };

	(void)state;
	batch_queue_init(&q);
	assert_false(batch_queue_contains(&q, "a.jpg"));
	assert_int_equal(batch_queue_push(&q, "a.jpg", 10), 1);
	assert_int_equal(batch_queue_push(&q, "d/b.jpg", 11), 1);
	assert_int_equal(batch_queue_push(&q, "a.jpg", 12), 0);
	assert_int_equal(batch_queue_push(&q, "c.png", 13), 1);
	assert_int_equal(batch_queue_push(&q, "d/b.jpg", 14), 0);
	assert_queue(&q, want, 3);
	/* the first push's time is kept */
	assert_int_equal(q.head->queued_ms, 10);
	assert_int_equal(q.head->attempts, 0);
	assert_false(batch_queue_contains(&q, "A.jpg"));
	batch_queue_free(&q);
	assert_null(q.head);
	assert_int_equal(q.len, 0);
}

static void
test_pop_fifo_and_repush(void **state)
{
	struct batch_queue q;
	struct batch_item *it;
	const char *want[] = { "b", "a" };

	(void)state;
	batch_queue_init(&q);
	assert_null(batch_queue_pop(&q));
	batch_queue_push(&q, "a", 1);
	batch_queue_push(&q, "b", 2);
	it = batch_queue_pop(&q);
	assert_string_equal(it->rel, "a");
	assert_null(it->next);
	assert_false(batch_queue_contains(&q, "a"));
	/* popped means no longer queued: a new event queues it again */
	assert_int_equal(batch_queue_push(&q, "a", 3), 1);
	assert_queue(&q, want, 2);
	batch_item_free(it);
	it = batch_queue_pop(&q);
	batch_item_free(it);
	it = batch_queue_pop(&q);
	assert_string_equal(it->rel, "a");
	assert_int_equal(it->queued_ms, 3);
	batch_item_free(it);
	assert_null(q.head);
	assert_null(q.tail);
	assert_null(batch_queue_pop(&q));
	/* push after becoming empty */
	assert_int_equal(batch_queue_push(&q, "z", 4), 1);
	assert_ptr_equal(q.head, q.tail);
	batch_queue_free(&q);
	batch_item_free(NULL);
}

static void
test_requeue_at_head_keeps_attempts(void **state)
{
	struct batch_queue q;
	struct batch_item *a, *b;
	const char *want1[] = { "a", "c" };
	const char *want2[] = { "b", "a", "c" };
	const char *want3[] = { "b", "a", "c", "d" };

	(void)state;
	batch_queue_init(&q);
	batch_queue_push(&q, "a", 100);
	batch_queue_push(&q, "b", 101);
	batch_queue_push(&q, "c", 102);
	a = batch_queue_pop(&q);
	b = batch_queue_pop(&q);
	a->attempts = 1;
	b->attempts = 2;
	assert_int_equal(batch_queue_requeue(&q, a), 1);
	assert_queue(&q, want1, 2);
	assert_int_equal(q.head->attempts, 1);
	assert_int_equal(q.head->queued_ms, 100);
	assert_int_equal(batch_queue_requeue(&q, b), 1);
	assert_queue(&q, want2, 3);
	assert_int_equal(q.head->attempts, 2);
	assert_int_equal(batch_queue_push(&q, "d", 103), 1);
	assert_queue(&q, want3, 4);
	batch_queue_free(&q);
}

static void
test_requeue_dropped_when_queued_again(void **state)
{
	struct batch_queue q;
	struct batch_item *a;
	const char *want[] = { "b", "a" };

	(void)state;
	batch_queue_init(&q);
	batch_queue_push(&q, "a", 1);
	batch_queue_push(&q, "b", 2);
	a = batch_queue_pop(&q);
	a->attempts = 1;
	batch_queue_push(&q, "a", 3);	/* rewritten while in a worker */
	/* dropped and freed: LeakSanitizer fails the test if not */
	assert_int_equal(batch_queue_requeue(&q, a), 0);
	assert_queue(&q, want, 2);
	assert_int_equal(q.tail->attempts, 0);
	batch_queue_free(&q);
}

static void
test_requeue_into_empty(void **state)
{
	struct batch_queue q;
	struct batch_item *a;
	const char *want[] = { "a", "b" };

	(void)state;
	batch_queue_init(&q);
	batch_queue_push(&q, "a", 1);
	a = batch_queue_pop(&q);
	assert_int_equal(batch_queue_requeue(&q, a), 1);
	assert_ptr_equal(q.head, q.tail);
	batch_queue_push(&q, "b", 2);
	assert_queue(&q, want, 2);
	batch_queue_free(&q);
}

static void
test_remove(void **state)
{
	struct batch_queue q;
	const char *want1[] = { "a", "c", "d" };
	const char *want2[] = { "c", "d" };
	const char *want3[] = { "c", "e" };

	(void)state;
	batch_queue_init(&q);
	assert_int_equal(batch_queue_remove(&q, "x"), 0);
	batch_queue_push(&q, "a", 1);
	batch_queue_push(&q, "b", 1);
	batch_queue_push(&q, "c", 1);
	batch_queue_push(&q, "d", 1);
	assert_int_equal(batch_queue_remove(&q, "b"), 1);	/* middle */
	assert_int_equal(batch_queue_remove(&q, "b"), 0);
	assert_false(batch_queue_contains(&q, "b"));
	assert_queue(&q, want1, 3);
	assert_int_equal(batch_queue_remove(&q, "a"), 1);	/* head */
	assert_queue(&q, want2, 2);
	assert_int_equal(batch_queue_remove(&q, "d"), 1);	/* tail */
	assert_int_equal(batch_queue_push(&q, "e", 2), 1);
	assert_queue(&q, want3, 2);
	assert_int_equal(batch_queue_remove(&q, "c"), 1);
	assert_int_equal(batch_queue_remove(&q, "e"), 1);	/* last */
	assert_null(q.head);
	assert_null(q.tail);
	assert_int_equal(q.len, 0);
	assert_int_equal(batch_queue_push(&q, "f", 3), 1);
	assert_ptr_equal(q.head, q.tail);
	batch_queue_free(&q);
}

static void
test_growth_past_10000(void **state)
{
	enum { N = 12000 };
	struct batch_queue q;
	struct batch_item *it;
	char rel[64];
	size_t i, left;

	(void)state;
	batch_queue_init(&q);
	for (i = 0; i < N; i++) {
		snprintf(rel, sizeof(rel), "dir%zu/img%zu.jpg", i % 97, i);
		assert_int_equal(batch_queue_push(&q, rel, i), 1);
	}
	assert_int_equal(q.len, N);
	assert_true(q.nslots >= N);
	for (i = 0; i < N; i++) {
		snprintf(rel, sizeof(rel), "dir%zu/img%zu.jpg", i % 97, i);
		assert_int_equal(batch_queue_push(&q, rel, 0), 0);
	}
	/* remove every third, then pop the rest in order */
	for (i = 0; i < N; i += 3) {
		snprintf(rel, sizeof(rel), "dir%zu/img%zu.jpg", i % 97, i);
		assert_int_equal(batch_queue_remove(&q, rel), 1);
	}
	left = N - (N + 2) / 3;
	assert_int_equal(q.len, left);
	for (i = 0; i < N; i++) {
		if (i % 3 == 0)
			continue;
		snprintf(rel, sizeof(rel), "dir%zu/img%zu.jpg", i % 97, i);
		it = batch_queue_pop(&q);
		assert_non_null(it);
		assert_string_equal(it->rel, rel);
		assert_int_equal(it->queued_ms, i);
		batch_item_free(it);
	}
	assert_int_equal(q.len, 0);
	assert_null(batch_queue_pop(&q));
	batch_queue_free(&q);
}

/* Random pushes, pops, requeues and removes over a small set of names
 * (long probe runs, many deletions) against an array model. */
static void
test_random_against_model(void **state)
{
	enum { NAMES = 50, OPS = 50000 };
	struct batch_queue q;
	struct batch_item *held[NAMES], *it;
	const char *model[NAMES];
	char names[NAMES][16];
	size_t mlen = 0, nheld = 0, i, k;
	uint32_t rng = 12345;
	int op, rc;
	bool in;

	(void)state;
	for (i = 0; i < NAMES; i++)
		snprintf(names[i], sizeof(names[i]), "n%zu", i);
	batch_queue_init(&q);
	for (i = 0; i < OPS; i++) {
		rng = rng * 1103515245u + 12345u;
		op = (int)((rng >> 16) % 4);
		k = (rng >> 8) % NAMES;
		in = false;
		for (size_t m = 0; m < mlen; m++)
			if (strcmp(model[m], names[k]) == 0)
				in = true;
		switch (op) {
		case 0:
			rc = batch_queue_push(&q, names[k], i);
			assert_int_equal(rc, in ? 0 : 1);
			if (!in)
				model[mlen++] = names[k];
			break;
		case 1:
			it = batch_queue_pop(&q);
			if (mlen == 0) {
				assert_null(it);
				break;
			}
			assert_string_equal(it->rel, model[0]);
			memmove(model, model + 1, --mlen * sizeof(model[0]));
			if (nheld < NAMES)
				held[nheld++] = it;
			else
				batch_item_free(it);
			break;
		case 2:
			if (nheld == 0)
				break;
			it = held[--nheld];
			in = false;
			for (size_t m = 0; m < mlen; m++)
				if (strcmp(model[m], it->rel) == 0)
					in = true;
			if (!in) {
				for (size_t m = 0; m < NAMES; m++)
					if (strcmp(names[m], it->rel) == 0)
						k = m;
				memmove(model + 1, model,
				    mlen++ * sizeof(model[0]));
				model[0] = names[k];
			}
			assert_int_equal(batch_queue_requeue(&q, it),
			    in ? 0 : 1);
			break;
		default:
			assert_int_equal(batch_queue_remove(&q, names[k]),
			    in ? 1 : 0);
			for (size_t m = 0; m < mlen; m++)
				if (strcmp(model[m], names[k]) == 0) {
					memmove(model + m, model + m + 1,
					    (mlen - m - 1) * sizeof(model[0]));
					mlen--;
					break;
				}
			break;
		}
		if (i % 97 == 0)
			assert_queue(&q, model, mlen);
		for (k = 0; k < NAMES; k++) {
			in = false;
			for (size_t m = 0; m < mlen; m++)
				if (model[m] == names[k])
					in = true;
			if (batch_queue_contains(&q, names[k]) != in)
				fail_msg("op %zu: contains(%s) != %d", i,
				    names[k], in);
		}
	}
	while (nheld > 0)
		batch_item_free(held[--nheld]);
	batch_queue_free(&q);
}

static void
assert_decide(int bs, int wait, size_t queued, int idle, int total,
    uint64_t oldest, int take, int wait_ms)
{
	struct batch_policy pol = { bs, wait };
	struct batch_decision d = batch_decide(&pol, queued, idle, total,
	    oldest);

	if (d.take != take || d.wait_ms != wait_ms)
		fail_msg("bs %d wait %d queued %zu idle %d/%d oldest %llu: "
		    "take %d wait %d, want take %d wait %d", bs, wait, queued,
		    idle, total, (unsigned long long)oldest, d.take,
		    d.wait_ms, take, wait_ms);
}

static void
test_policy_table(void **state)
{
	(void)state;
	/*            bs wait  queued idle total oldest  take wait */
	/* nothing to do */
	assert_decide(8, 200, 0, 4, 4, 0, 0, 0);
	assert_decide(8, 200, 5, 0, 4, 0, 0, 0);
	/* a lone file with an idle pool goes at once */
	assert_decide(8, 200, 1, 4, 4, 0, 1, 0);
	assert_decide(8, 200, 1, 1, 1, 0, 1, 0);
	/* the tail (queued < 2 x 8 x 4 = 64): one file at a time */
	assert_decide(8, 200, 10, 4, 4, 0, 1, 0);
	assert_decide(8, 200, 8, 4, 4, 0, 1, 0);
	assert_decide(8, 200, 3, 4, 4, 0, 1, 0);
	assert_decide(8, 200, 63, 4, 4, 0, 1, 0);
	/* a long queue: batches, spread over an idle pool, capped */
	assert_decide(8, 200, 64, 4, 4, 0, 8, 0);
	assert_decide(8, 200, 100, 4, 4, 0, 8, 0);
	assert_decide(8, 200, 100, 1, 4, 0, 8, 0);
	/* partially busy pool: a short queue waits the rest of wait_ms */
	assert_decide(8, 200, 1, 1, 4, 0, 0, 200);
	assert_decide(8, 200, 5, 2, 4, 50, 0, 150);
	assert_decide(8, 200, 7, 1, 4, 199, 0, 1);
	/* ... until the oldest has waited wait_ms, then one at a time */
	assert_decide(8, 200, 5, 2, 4, 200, 1, 0);
	assert_decide(8, 200, 5, 2, 4, 100000, 1, 0);
	/* ... or a batch's worth is there: no wait, still the tail */
	assert_decide(8, 200, 8, 1, 4, 0, 1, 0);
	assert_decide(8, 200, 9, 2, 4, 0, 1, 0);
	assert_decide(8, 200, 1000, 3, 4, 0, 8, 0);
	/* no wait configured */
	assert_decide(8, 0, 1, 1, 4, 0, 1, 0);
	/* degenerate batch size: still at least one */
	assert_decide(0, 200, 5, 4, 4, 0, 1, 0);
	assert_decide(1, 200, 5, 1, 4, 0, 1, 0);
	assert_decide(1, 200, 500, 4, 4, 0, 1, 0);
	/* more idle than total (caller bug): treated as idle pool */
	assert_decide(8, 200, 2, 5, 4, 0, 1, 0);
	assert_decide(8, 200, 80, 5, 4, 0, 8, 0);	/* tail 2x8x5 = 80 */
	/* the defaults (BATCH_SIZE 4, BATCH_WAIT_MS 50), 2 workers: batches
	 * of 4 down to 16 queued, then singles */
	assert_decide(4, 50, 72, 2, 2, 0, 4, 0);
	assert_decide(4, 50, 16, 1, 2, 0, 4, 0);
	assert_decide(4, 50, 15, 1, 2, 0, 1, 0);
	assert_decide(4, 50, 15, 2, 2, 0, 1, 0);
	assert_decide(4, 50, 2, 1, 2, 1000, 1, 0);
}

static void
test_tail_threshold(void **state)
{
	(void)state;
	assert_int_equal(batch_tail(4, 2), 16);
	assert_int_equal(batch_tail(8, 4), 64);
	assert_int_equal(batch_tail(1, 1), 2);
	assert_int_equal(batch_tail(0, 0), 2);	/* both count as 1 */
	assert_int_equal(batch_tail(4, -3), 8);
}

/* A backlog sorted biggest first, two workers, each handed what the
 * policy says whenever it is idle (old: batches of bs all the way, spread
 * over the idle workers).  Returns when the last worker finishes; *gap is
 * how long the other one idled before that. */
static uint64_t
simulate(const uint64_t *cost, size_t n, int bs, bool old, uint64_t *gap)
{
	struct batch_policy pol = { bs, 0 };
	struct batch_decision d;
	uint64_t busy_until[2] = { 0, 0 }, now;
	size_t next = 0, per;
	int w, k, idle;

	while (next < n) {
		w = busy_until[0] <= busy_until[1] ? 0 : 1;
		now = busy_until[w];
		idle = (busy_until[0] <= now) + (busy_until[1] <= now);
		if (old) {
			per = (n - next + (size_t)idle - 1) / (size_t)idle;
			d.take = (int)(per < (size_t)bs ? per : (size_t)bs);
		} else {
			d = batch_decide(&pol, n - next, idle, 2, 1000);
		}
		assert_true(d.take >= 1);
		for (k = 0; k < d.take && next < n; k++)
			busy_until[w] += cost[next++];
	}
	*gap = busy_until[0] > busy_until[1] ? busy_until[0] - busy_until[1] :
	    busy_until[1] - busy_until[0];
	return busy_until[0] > busy_until[1] ? busy_until[0] : busy_until[1];
}

static void
test_tail_keeps_both_busy(void **state)
{
	uint64_t cost[40], end_old, end_new, gap_old, gap_new;
	size_t i;

	(void)state;
	/* sizes falling from 600 to 30: what biggest-first leaves */
	for (i = 0; i < 40; i++)
		cost[i] = 600 - 15 * i - (i % 3) * 5;
	end_old = simulate(cost, 40, 4, true, &gap_old);
	end_new = simulate(cost, 40, 4, false, &gap_new);
	/* the tail goes one by one: the other worker idles at most one
	 * tail file (the 16th from the end is the dearest of them) */
	assert_true(gap_new <= cost[40 - 16]);
	assert_true(end_new <= end_old);
	assert_true(gap_new < gap_old);
}

static void
test_sort_heaviest_first_stable(void **state)
{
	static const int64_t w[] = { 5, 0, 9, 5, 1, 9, 0 };
	/* heaviest first; equal weights keep their queue order */
	static const char *want[] = { "f2", "f5", "f0", "f3", "f4", "f1",
	    "f6" };
	struct batch_queue q;
	struct batch_item *it;
	char name[16];
	size_t i;

	(void)state;
	batch_queue_init(&q);
	batch_queue_sort_heaviest(&q);		/* empty: nothing to do */
	assert_null(q.head);
	assert_null(q.tail);
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		assert_int_equal(batch_queue_push_weighted(&q, name, i, w[i]),
		    1);
	}
	batch_queue_sort_heaviest(&q);
	assert_int_equal(q.len, 7);
	for (i = 0, it = q.head; it != NULL; it = it->next, i++)
		assert_string_equal(it->rel, want[i]);
	assert_int_equal(i, 7);
	assert_string_equal(q.tail->rel, "f6");
	/* still a working queue: dedupe, append at the tail, pop */
	assert_true(batch_queue_contains(&q, "f4"));
	assert_int_equal(batch_queue_push(&q, "f4", 0), 0);
	assert_int_equal(batch_queue_push(&q, "late", 0), 1);
	assert_string_equal(q.tail->rel, "late");
	it = batch_queue_pop(&q);
	assert_string_equal(it->rel, "f2");
	assert_int_equal(it->weight, 9);
	batch_item_free(it);
	batch_queue_free(&q);
}

static void
test_sort_heaviest_100000(void **state)
{
	struct batch_queue q;
	struct batch_item *it;
	uint32_t x = 12345;
	int64_t last = INT64_MAX;
	uint64_t last_ms = 0;
	char name[32];
	size_t i, n = 0;

	(void)state;
	batch_queue_init(&q);
	for (i = 0; i < 100000; i++) {
		x = x * 1103515245u + 12345u;
		snprintf(name, sizeof(name), "d/%zu.jpg", i);
		assert_int_equal(batch_queue_push_weighted(&q, name, i,
		    (int64_t)(x >> 20)), 1);
	}
	batch_queue_sort_heaviest(&q);
	for (it = q.head; it != NULL; it = it->next, n++) {
		assert_true(it->weight <= last);
		if (it->weight == last)
			assert_true(it->queued_ms > last_ms);
		last = it->weight;
		last_ms = it->queued_ms;
	}
	assert_int_equal(n, 100000);
	assert_int_equal(q.len, 100000);
	batch_queue_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_dedupes),
		cmocka_unit_test(test_pop_fifo_and_repush),
		cmocka_unit_test(test_requeue_at_head_keeps_attempts),
		cmocka_unit_test(test_requeue_dropped_when_queued_again),
		cmocka_unit_test(test_requeue_into_empty),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_growth_past_10000),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_tail_threshold),
		cmocka_unit_test(test_tail_keeps_both_busy),
		cmocka_unit_test(test_sort_heaviest_first_stable),
		cmocka_unit_test(test_sort_heaviest_100000),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
