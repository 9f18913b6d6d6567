/*
 * http_jobs: the jobs table, the uploads by id (the last JOBS_MAX of
 * them), moved along by the daemon's outcome hooks (http_job_*), and
 * GET /jobs and /jobs/ID, which read it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "json.h"

static const char *const state_names[] = { "queued", "processing", "done",
    "failed", "skipped" };

static struct job *
job_by_rel(struct http_server *h, const char *rel)
{
	uint64_t id;

	/* Newest first: a name uploaded again is its latest job. */
	for (id = h->next_id; id > 0 && id + JOBS_MAX > h->next_id; id--) {
		struct job *j = &h->jobs[id % JOBS_MAX];
		if (j->id == id && strcmp(j->rel, rel) == 0)
			return j;
	}
	return NULL;
}

static struct job *
job_by_id(struct http_server *h, uint64_t id)
{
	struct job *j = &h->jobs[id % JOBS_MAX];

	return id > 0 && j->id == id ? j : NULL;
}

uint64_t
job_new(struct http_server *h, const char *rel)
{
	uint64_t id = ++h->next_id;
	struct job *j = &h->jobs[id % JOBS_MAX];

	free(j->rel);
	free(j->reason);
	memset(j, 0, sizeof(*j));
	if ((j->rel = strdup(rel)) == NULL)
		return 0;
	j->id = id;
	j->state = J_QUEUED;
	return id;
}

static void
job_set(struct http_server *h, const char *rel, enum job_state st,
    const char *reason, int64_t ms)
{
	struct job *j;

	if (h == NULL || (j = job_by_rel(h, rel)) == NULL)
		return;
	j->state = st;
	j->ms = ms;
	free(j->reason);
	j->reason = reason ? strdup(reason) : NULL;
}

void
http_job_queued(struct http_server *h, const char *rel)
{
	job_set(h, rel, J_QUEUED, NULL, 0);
}

void
http_job_processing(struct http_server *h, const char *rel)
{
	job_set(h, rel, J_PROCESSING, NULL, 0);
}

void
http_job_done(struct http_server *h, const char *rel,
    const char *const *outs, size_t n, int64_t ms)
{
	(void)outs;
	(void)n;
	if (h == NULL)
		return;
	histogram_observe(&h->hist, ms);
	job_set(h, rel, J_DONE, NULL, ms);
}

void
http_job_failed(struct http_server *h, const char *rel, const char *reason)
{
	job_set(h, rel, J_FAILED, reason, 0);
}

void
http_job_skipped(struct http_server *h, const char *rel, const char *reason)
{
	job_set(h, rel, J_SKIPPED, reason, 0);
}

/* Frees the table with the server (closed_cb, in http.c). */
void
jobs_free(struct http_server *h)
{
	int i;

	for (i = 0; i < JOBS_MAX; i++) {
		free(h->jobs[i].rel);
		free(h->jobs[i].reason);
	}
}

/* A job's fields, as GET /jobs/ID and each entry of GET /jobs give
 * them. */
static void
job_json(struct json_buf *b, const struct job *j)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, j->id);
	json_str(b, "id", num);
	json_str(b, "name", j->rel);
	json_str(b, "status", state_names[j->state]);
	if (j->reason)
		json_str(b, "reason", j->reason);
	if (j->state == J_DONE)
		json_int(b, "ms", j->ms);
}

enum MHD_Result
get_job(struct http_server *h, struct MHD_Connection *c, const char *sid)
{
	struct json_buf b;
	struct job *j;
	char *end;
	uint64_t id;

	errno = 0;
	id = strtoull(sid, &end, 10);
	if (errno || *end || !*sid || (j = job_by_id(h, id)) == NULL)
		return send_error(c, 404, "no such job");
	json_init(&b);
	json_begin(&b);
	job_json(&b, j);
	add_urls(h, &b, j->rel, j->state == J_DONE);
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, 200, &b);
}

#define JOBS_PAGE	50		/* GET /jobs without ?limit= */
#define JOBS_PAGE_MAX	1000

/* A query parameter as a whole decimal number, or def when absent; false
 * when present and not a number (a typo should not read as "all"). */
static bool
query_u64(struct MHD_Connection *c, const char *key, uint64_t def,
    uint64_t *v)
{
	const char *s;
	char *end;

	s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
	*v = def;
	if (s == NULL)
		return true;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* GET /jobs[?limit=N][&before=ID]: the jobs table newest first, a page
 * at a time; "next" is the URL of the page after this one, while older
 * jobs remain. */
enum MHD_Result
get_jobs(struct http_server *h, struct MHD_Connection *c)
{
	struct json_buf b;
	struct job *j;
	uint64_t limit, before, id, n = 0;
	char num[64];

	if (!query_u64(c, "limit", JOBS_PAGE, &limit) || limit == 0 ||
	    limit > JOBS_PAGE_MAX)
		return send_error(c, 400, "limit: a number from 1 to 1000");
	if (!query_u64(c, "before", UINT64_MAX, &before))
		return send_error(c, 400, "before: a job id");
	json_init(&b);
	json_begin(&b);
	json_open(&b, "jobs", '[');
	id = before == 0 ? 0 : before <= h->next_id ? before - 1 : h->next_id;
	for (; id > 0 && id + JOBS_MAX > h->next_id; id--) {
		if ((j = job_by_id(h, id)) == NULL)
			continue;
		if (n == limit)
			break;
		n++;
		json_open(&b, NULL, '{');
		job_json(&b, j);
		json_close(&b, '}');
	}
	json_close(&b, ']');
	if (n == limit && id > 0 && id + JOBS_MAX > h->next_id) {
		/* id is the newest job not listed. */
		snprintf(num, sizeof(num), "/jobs?limit=%" PRIu64 "&before=%"
		    PRIu64, limit, id + 1);
		json_str(&b, "next", num);
	}
	json_end(&b);
	json_raw(&b, "\n", 1);
	return send_json(c, 200, &b);
}
