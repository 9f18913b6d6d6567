/*
 * batch: the pending-file queue and the dispatch policy.
 *
 * Owns every queued struct batch_item (and its rel string) until it is
 * popped, and the open-addressing set that makes "is it queued?" O(1):
 * an event storm or a full rescan of a big tree pushes the same paths many
 * times.  The set uses linear probing on an FNV-1a hash with backward-shift
 * deletion, so there are no tombstones and lookups stay short however many
 * pushes and pops a long-running daemon does.  The set holds pointers to
 * the items themselves; the FIFO is the items' next links.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

#define SET_MIN_SLOTS 16

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

void
batch_queue_init(struct batch_queue *q)
{
	q->head = NULL;
	q->tail = NULL;
	q->len = 0;
	q->slots = NULL;
	q->nslots = 0;
}

void
batch_item_free(struct batch_item *item)
{
	if (item == NULL)
		return;
	free(item->rel);
	free(item);
}

void
batch_queue_free(struct batch_queue *q)
{
	struct batch_item *it, *next;

	for (it = q->head; it != NULL; it = next) {
		next = it->next;
		batch_item_free(it);
	}
	free(q->slots);
	batch_queue_init(q);
}

/* Slot holding rel, or the empty slot where it would go; NULL when the
 * set has no slots yet. */
static struct batch_item **
set_find(const struct batch_queue *q, const char *rel)
{
	size_t mask, i;

	if (q->nslots == 0)
		return NULL;
	mask = q->nslots - 1;
	for (i = fnv1a(rel) & mask;; i = (i + 1) & mask)
		if (q->slots[i] == NULL || strcmp(q->slots[i]->rel, rel) == 0)
			return &q->slots[i];
}

static int
set_resize(struct batch_queue *q, size_t nslots)
{
	struct batch_item **old = q->slots, **slot;
	size_t oldn = q->nslots, i;

	q->slots = calloc(nslots, sizeof(*q->slots));
	if (q->slots == NULL) {
		q->slots = old;
		return -ENOMEM;
	}
	q->nslots = nslots;
	for (i = 0; i < oldn; i++) {
		if (old[i] == NULL)
			continue;
		slot = set_find(q, old[i]->rel);
		*slot = old[i];
	}
	free(old);
	return 0;
}

/* Makes room for one more item: load kept at or below 3/4.  When growing
 * fails but a slot is still free the insert goes ahead (a requeue must not
 * lose a file just because the set could not grow). */
static int
set_reserve(struct batch_queue *q)
{
	size_t want = q->len + 1;

	if (q->nslots != 0 && want * 4 <= q->nslots * 3)
		return 0;
	if (q->nslots > SIZE_MAX / 2 / sizeof(*q->slots))
		return q->len + 1 < q->nslots ? 0 : -ENOMEM;
	if (set_resize(q, q->nslots != 0 ? q->nslots * 2 : SET_MIN_SLOTS) == 0)
		return 0;
	return q->len + 1 < q->nslots ? 0 : -ENOMEM;
}

/* Removes the item in slot from the set, shifting later members of its
 * probe run back so every lookup still finds them without tombstones. */
static void
set_delete(struct batch_queue *q, struct batch_item **slot)
{
	size_t mask = q->nslots - 1, i, j, home;

	i = (size_t)(slot - q->slots);
	q->slots[i] = NULL;
	for (j = (i + 1) & mask; q->slots[j] != NULL; j = (j + 1) & mask) {
		home = fnv1a(q->slots[j]->rel) & mask;
		/* Move j into the hole at i unless its home lies cyclically
		 * in (i, j], where it is still reachable. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			q->slots[i] = q->slots[j];
			q->slots[j] = NULL;
			i = j;
		}
	}
}

bool
batch_queue_contains(const struct batch_queue *q, const char *rel)
{
	struct batch_item **slot = set_find(q, rel);

	return slot != NULL && *slot != NULL;
}

int
batch_queue_push(struct batch_queue *q, const char *rel, uint64_t now_ms)
{
	return batch_queue_push_weighted(q, rel, now_ms, 0);
}

int
batch_queue_push_weighted(struct batch_queue *q, const char *rel,
    uint64_t now_ms, int64_t weight)
{
	struct batch_item *it, **slot;

	if (batch_queue_contains(q, rel))
		return 0;
	if (set_reserve(q) != 0)
		return -ENOMEM;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return -ENOMEM;
	it->rel = strdup(rel);
	if (it->rel == NULL) {
		free(it);
		return -ENOMEM;
	}
	it->queued_ms = now_ms;
	it->weight = weight;
	slot = set_find(q, rel);
	*slot = it;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->len++;
	return 1;
}

/* Also -ENOMEM (item freed) in the one case set_reserve describes. */
int
batch_queue_requeue(struct batch_queue *q, struct batch_item *item)
{
	struct batch_item **slot;

	if (batch_queue_contains(q, item->rel)) {
		batch_item_free(item);
		return 0;
	}
	if (set_reserve(q) != 0) {
		batch_item_free(item);
		return -ENOMEM;
	}
	slot = set_find(q, item->rel);
	*slot = item;
	item->next = q->head;
	q->head = item;
	if (q->tail == NULL)
		q->tail = item;
	q->len++;
	return 1;
}

struct batch_item *
batch_queue_pop(struct batch_queue *q)
{
	struct batch_item *it = q->head;

	if (it == NULL)
		return NULL;
	set_delete(q, set_find(q, it->rel));
	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	it->next = NULL;
	q->len--;
	return it;
}

/* O(n) in the queue length: the list is singly linked, and a file deleted
 * while still queued is rare next to pushes and pops. */
int
batch_queue_remove(struct batch_queue *q, const char *rel)
{
	struct batch_item **slot = set_find(q, rel), *it, *prev = NULL;

	if (slot == NULL || *slot == NULL)
		return 0;
	it = *slot;
	set_delete(q, slot);
	if (q->head == it) {
		q->head = it->next;
	} else {
		for (prev = q->head; prev->next != it; prev = prev->next)
			;
		prev->next = it->next;
	}
	if (q->tail == it)
		q->tail = prev;
	q->len--;
	batch_item_free(it);
	return 1;
}

/* Where the tail starts: two full batches for every worker.  Above it
 * batches save IPC round trips; below it the round trip (well under a
 * millisecond) is small next to one image (tens to hundreds), and what
 * matters is that no core idles while another still holds queued files. */
size_t
batch_tail(size_t batch_size, int total)
{
	size_t bs = batch_size > 0 ? batch_size : 1;

	return 2 * bs * (size_t)(total > 0 ? total : 1);
}

struct batch_decision
batch_decide(const struct batch_policy *pol, size_t queued, int idle,
    int total, uint64_t oldest_wait_ms)
{
	struct batch_decision d = { 0, 0 };
	size_t per, bs;

	if (queued == 0 || idle <= 0)
		return d;
	bs = pol->batch_size > 0 ? (size_t)pol->batch_size : 1;
	if (total < idle)
		total = idle;
	if (queued < batch_tail(bs, total)) {
		/* The tail: one file at a time, so the last worker to finish
		 * is at most one file behind the others instead of a whole
		 * batch (the backlog is sorted biggest first: a batch at the
		 * end can be the four dearest files while a core idles). */
		d.take = 1;
	} else {
		/* ceil(queued / idle): spread what is there over every idle
		 * worker instead of giving the first one a full batch. */
		per = queued / (size_t)idle + (queued % (size_t)idle != 0);
		d.take = (int)(per < bs ? per : bs);
		if (d.take < 1)
			d.take = 1;
	}
	if (idle >= total || queued >= bs || pol->wait_ms <= 0 ||
	    oldest_wait_ms >= (uint64_t)pol->wait_ms)
		return d;
	d.wait_ms = (int)((uint64_t)pol->wait_ms - oldest_wait_ms);
	d.take = 0;
	return d;
}

/* Merges two lists sorted heaviest first; a keeps its place on ties, so
 * the sort is stable. */
static struct batch_item *
merge_heaviest(struct batch_item *a, struct batch_item *b)
{
	struct batch_item head, *t = &head;

	while (a != NULL && b != NULL) {
		if (b->weight > a->weight) {
			t->next = b;
			b = b->next;
		} else {
			t->next = a;
			a = a->next;
		}
		t = t->next;
	}
	t->next = a != NULL ? a : b;
	return head.next;
}

/* Bottom-up merge sort of the list: O(n log n), no allocation, so a
 * start-up walk of 100,000 files costs a few milliseconds. */
void
batch_queue_sort_heaviest(struct batch_queue *q)
{
	struct batch_item *runs[64] = { NULL }, *it, *next, *cur;
	size_t i;

	for (it = q->head; it != NULL; it = next) {
		next = it->next;
		it->next = NULL;
		cur = it;
		for (i = 0; i < 63 && runs[i] != NULL; i++) {
			cur = merge_heaviest(runs[i], cur);
			runs[i] = NULL;
		}
		runs[i] = runs[i] != NULL ? merge_heaviest(runs[i], cur) : cur;
	}
	cur = NULL;
	for (i = 0; i < 64; i++)
		if (runs[i] != NULL)
			cur = cur != NULL ? merge_heaviest(runs[i], cur) : runs[i];
	q->head = cur;
	q->tail = NULL;
	for (it = cur; it != NULL; it = it->next)
		q->tail = it;
}
