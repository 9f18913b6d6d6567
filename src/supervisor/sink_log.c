/*
 * sink_log: the outcome lines of the JSON log (DESIGN.md's contract:
 * done, failed, skipped and their fields).
 */
#include <stdbool.h>

#include "json.h"
#include "log.h"
#include "outcome.h"
#include "supervisor.h"

void
log_on_outcome(void *ud, const struct outcome *o)
{
	struct daemon *d = ud;
	struct json_buf *j;

	switch (o->kind) {
	case OUTCOME_DONE:
		if ((j = log_begin(&d->lg, LOG_INFO, "done")) == NULL)
			return;
		json_str(j, "file", o->rel);
		json_strv(j, "outputs", o->outputs, o->noutputs);
		json_int(j, "ms", o->ms);
		json_int(j, "worker", o->worker);
		json_int(j, "width", o->width);
		json_int(j, "height", o->height);
		json_int(j, "bytes", o->bytes);
		break;
	case OUTCOME_FAILED:
		if ((j = log_begin(&d->lg, LOG_ERROR, "failed")) == NULL)
			return;
		json_str(j, "file", o->rel);
		json_str(j, "error", o->text);
		if (o->remembered)
			json_bool(j, "remembered", true);
		else if (o->worker > 0)
			json_int(j, "worker", o->worker);
		break;
	case OUTCOME_SKIPPED:
		if ((j = log_begin(&d->lg, LOG_INFO, "skipped")) == NULL)
			return;
		json_str(j, "file", o->rel);
		json_str(j, "reason", o->text);
		break;
	default:
		return;
	}
	log_commit(&d->lg);
}
