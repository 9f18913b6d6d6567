/*
 * outcome: a file's progress and its one outcome, as events, and the bus
 * that carries them to every subscriber.
 *
 * Pure module.  The supervisor publishes; the log, the counters, the
 * failure markers, the HTTP jobs table, the queue's acknowledgement, the
 * progress bar and any new sink (object storage, webhooks, an index)
 * subscribe, each from its own file with one registration line in the
 * supervisor's start-up (docs/ARCHITECTURE.md).  Subscribers run in the
 * order they registered, on the publisher's stack: one that needs to wait
 * (a network upload) copies what it needs and returns.
 */
#ifndef THUMBWATCH_OUTCOME_H
#define THUMBWATCH_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

enum outcome_kind {
	OUTCOME_QUEUED,		/* waiting for a worker */
	OUTCOME_PROCESSING,	/* handed to a worker */
	OUTCOME_DONE,		/* thumbnails made */
	OUTCOME_FAILED,		/* will not be made (the text says why) */
	OUTCOME_SKIPPED,	/* nothing to do (the text says why) */
	OUTCOME_NKINDS
};

#define OUTCOME_MASK(k)	(1u << (k))
/* The three that end a file's journey: exactly one per file picked up. */
#define OUTCOME_ENDS	(OUTCOME_MASK(OUTCOME_DONE) | \
    OUTCOME_MASK(OUTCOME_FAILED) | OUTCOME_MASK(OUTCOME_SKIPPED))
#define OUTCOME_ALL	((1u << OUTCOME_NKINDS) - 1)

struct outcome {
	enum outcome_kind kind;
	const char *rel;		/* the source, below INPUT_DIR */
	const char *text;		/* failed: the error; skipped: why */
	int worker;			/* 1-based; 0 when no worker had it */
	/* failed: known from an earlier run with the same bytes and
	 * presets (`once` reports it; nothing is decoded or written). */
	bool remembered;
	/* failed: the source as inspected, when known; its mtime is what
	 * the failure marker records.  NULL: not the image's fault (a full
	 * disk), so nothing is remembered. */
	const struct stat *src;
	/* done: the thumbnails as they stand, below OUTPUT_DIR. */
	const char *const *outputs;
	size_t noutputs;
	int64_t ms;			/* done: the worker's time */
	int64_t width, height;		/* done: the source's pixels */
	int64_t bytes;			/* done: bytes written */
};

typedef void (*outcome_fn)(void *ud, const struct outcome *o);

#define OUTCOME_MAX_SUBSCRIBERS 16

struct outcome_bus {
	struct {
		outcome_fn fn;
		void *ud;
		unsigned kinds;		/* OUTCOME_MASK()s */
	} sub[OUTCOME_MAX_SUBSCRIBERS];
	int n;
};

void outcome_bus_init(struct outcome_bus *b);
/* fn is called with every event whose kind is in kinds, after those
 * registered before it.  0, or -ENOSPC when the table is full. */
int outcome_subscribe(struct outcome_bus *b, unsigned kinds, outcome_fn fn,
    void *ud);
/* Removes fn/ud (a front end stopping); the order of the others stays.
 * Not from inside a subscriber. */
void outcome_unsubscribe(struct outcome_bus *b, outcome_fn fn, void *ud);
void outcome_publish(const struct outcome_bus *b, const struct outcome *o);
const char *outcome_kind_name(enum outcome_kind k);

#endif
