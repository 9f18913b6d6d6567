/*
 * batch: the pending-file queue and the policy that turns it into batches.
 *
 * Pure module.  The queue is FIFO with de-duplication by relative path: a
 * file reported by several events (or by an event and a scan) is queued
 * once.  The policy hands work out as workers free up (never a static
 * split) and never makes a lone file wait while the whole pool is idle.
 */
#ifndef THUMBWATCH_BATCH_H
#define THUMBWATCH_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch_item {
	char *rel;		/* path relative to the input dir (owned) */
	int attempts;		/* worker crashes/timeouts while on this item */
	uint64_t queued_ms;	/* loop time when first queued */
	int64_t weight;		/* expected cost (source bytes); 0 unknown */
	/* Set by the supervisor when it hands the file to a worker: the
	 * file it inspected (the source action acts on that one only) and
	 * whether its outputs carry the source extension (same-stem). */
	uint64_t src_dev, src_ino;
	bool qualified;
	struct batch_item *next;
};

struct batch_queue {
	struct batch_item *head, *tail;
	size_t len;
	/* open-addressing set of rel paths present in the queue */
	struct batch_item **slots;
	size_t nslots;
};

void batch_queue_init(struct batch_queue *q);
void batch_queue_free(struct batch_queue *q);

/* Appends rel unless already queued.  Returns 1 added, 0 already there,
 * -ENOMEM. */
int batch_queue_push(struct batch_queue *q, const char *rel, uint64_t now_ms);
/* The same, recording the item's expected cost. */
int batch_queue_push_weighted(struct batch_queue *q, const char *rel,
    uint64_t now_ms, int64_t weight);
/* Reorders the queue heaviest first, equal weights in queue order.  For a
 * walk's backlog: the big images start first, so no worker is left with
 * one at the end while the others idle. */
void batch_queue_sort_heaviest(struct batch_queue *q);
/* Puts an item back at the head (requeue after a worker died), keeping
 * its attempts.  Takes ownership of item. If the same rel was queued again
 * meanwhile the item is dropped (freed) and 0 returned; else 1. */
int batch_queue_requeue(struct batch_queue *q, struct batch_item *item);
/* Removes and returns the head (caller frees with batch_item_free). */
struct batch_item *batch_queue_pop(struct batch_queue *q);
bool batch_queue_contains(const struct batch_queue *q, const char *rel);
/* Removes rel if queued (file deleted before dispatch). 1 removed, 0 not. */
int batch_queue_remove(struct batch_queue *q, const char *rel);
void batch_item_free(struct batch_item *item);

struct batch_policy {
	int batch_size;		/* most items one worker gets at once */
	int wait_ms;		/* most time to hold a short batch back */
};

struct batch_decision {
	int take;		/* items to give the idle worker now (0: none) */
	int wait_ms;		/* when take == 0 and > 0: ask again after */
};

/* What to do for one idle worker, given the queue length, idle and total
 * worker counts and how long the oldest queued item has waited.
 *  - nothing queued or no idle worker: take 0, wait 0;
 *  - whole pool idle: dispatch now (a lone file never waits);
 *  - a full batch available, or the oldest waited wait_ms: dispatch now;
 *  - otherwise wait the rest of wait_ms.
 * take: 1 while queued is below batch_tail() (the tail: one file at a
 * time, so no core idles at the end while another works through a
 * batch); above it min(batch_size, ceil(queued / idle)), at least 1. */
/* The queue length below which files go one at a time: 2 x batch_size x
 * total workers (batch_size and total below 1 count as 1). */
size_t batch_tail(size_t batch_size, int total);

struct batch_decision batch_decide(const struct batch_policy *pol,
    size_t queued, int idle, int total, uint64_t oldest_wait_ms);

#endif
