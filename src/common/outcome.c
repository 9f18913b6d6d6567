/*
 * outcome: the event bus (see outcome.h).  A fixed table: subscribers are
 * the supervisor's own modules, registered at start-up, and a publish
 * must never allocate (it runs when memory is short, to say so).
 */
#include <errno.h>
#include <string.h>

#include "outcome.h"

void
outcome_bus_init(struct outcome_bus *b)
{
	memset(b, 0, sizeof(*b));
}

int
outcome_subscribe(struct outcome_bus *b, unsigned kinds, outcome_fn fn,
    void *ud)
{
	if (b->n >= OUTCOME_MAX_SUBSCRIBERS)
		return -ENOSPC;
	b->sub[b->n].fn = fn;
	b->sub[b->n].ud = ud;
	b->sub[b->n].kinds = kinds;
	b->n++;
	return 0;
}

void
outcome_unsubscribe(struct outcome_bus *b, outcome_fn fn, void *ud)
{
	int i, k = 0;

	for (i = 0; i < b->n; i++)
		if (b->sub[i].fn != fn || b->sub[i].ud != ud)
			b->sub[k++] = b->sub[i];
	b->n = k;
}

void
outcome_publish(const struct outcome_bus *b, const struct outcome *o)
{
	int i;

	if ((unsigned)o->kind >= OUTCOME_NKINDS)
		return;
	for (i = 0; i < b->n; i++)
		if (b->sub[i].kinds & OUTCOME_MASK(o->kind))
			b->sub[i].fn(b->sub[i].ud, o);
}

const char *
outcome_kind_name(enum outcome_kind k)
{
	static const char *const names[OUTCOME_NKINDS] = { "queued",
	    "processing", "done", "failed", "skipped" };

	return (unsigned)k < OUTCOME_NKINDS ? names[k] : "?";
}
