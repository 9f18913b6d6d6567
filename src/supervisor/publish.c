/*
 * publish: the one place a file's progress and outcome are published
 * (outcome.h).  Who hears of it registers in lifecycle.c; nothing here
 * knows who listens.
 */
#include <string.h>

#include "batch.h"
#include "outcome.h"
#include "supervisor.h"

static struct outcome
event(enum outcome_kind kind, const char *rel, const char *text)
{
	struct outcome o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.rel = rel;
	o.text = text;
	return o;
}

void
outcome_queued(struct daemon *d, const char *rel)
{
	struct outcome o = event(OUTCOME_QUEUED, rel, NULL);

	outcome_publish(&d->bus, &o);
}

void
outcome_processing(struct daemon *d, const char *rel)
{
	struct outcome o = event(OUTCOME_PROCESSING, rel, NULL);

	outcome_publish(&d->bus, &o);
}

void
outcome_done(struct daemon *d, const char *rel, int worker,
    const struct ipc_result *res, const char *const *outs, size_t n)
{
	struct outcome o = event(OUTCOME_DONE, rel, NULL);

	o.worker = worker;
	o.outputs = outs;
	o.noutputs = n;
	o.ms = res->ms;
	o.width = res->src_width;
	o.height = res->src_height;
	o.bytes = res->out_bytes;
	outcome_publish(&d->bus, &o);
}

void
outcome_failed(struct daemon *d, const char *rel, const char *error,
    int worker, const struct stat *src)
{
	struct outcome o = event(OUTCOME_FAILED, rel, error);

	o.worker = worker;
	o.src = src;
	outcome_publish(&d->bus, &o);
}

/* `once` reports what it knows: a file whose failure is remembered (the
 * same bytes under the same presets) counts as failed, with the reason
 * recorded then, and is not decoded again.  `run` stays quiet about it:
 * each restart's walk would repeat the line. */
void
outcome_remembered(struct daemon *d, const char *rel)
{
	char error[MARKER_ERROR_MAX];
	struct outcome o = event(OUTCOME_FAILED, rel, error);

	if (batch_queue_contains(&d->failed_names, rel))
		return;		/* a second walk (overflow) found it again */
	marker_error(d, rel, error, sizeof(error));
	o.remembered = true;
	outcome_publish(&d->bus, &o);
}

void
outcome_skipped(struct daemon *d, const char *rel, const char *reason)
{
	struct outcome o = event(OUTCOME_SKIPPED, rel, reason);

	outcome_publish(&d->bus, &o);
}
