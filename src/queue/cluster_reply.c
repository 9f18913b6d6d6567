/*
 * cluster_reply: the Redis replies the queue reads (see cluster_reply.h).
 * No I/O: hiredis is used only for its reply structs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster_reply.h"
#include "errfmt.h"

static bool
is_str(const redisReply *r)
{
	return r != NULL && (r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_STATUS);
}

/* A string field into buf; false when it is not one, holds a NUL or does
 * not fit. */
static bool
copy_str(const redisReply *r, char *buf, size_t cap)
{
	if (!is_str(r) || r->len >= cap || memchr(r->str, '\0', r->len))
		return false;
	memcpy(buf, r->str, r->len);
	buf[r->len] = '\0';
	return true;
}

static bool
field_int(const redisReply *r, long long min, long long max, int64_t *out)
{
	long long n;

	if (!is_str(r) || cluster_number(r->str, r->len, min, max, &n) < 0)
		return false;
	*out = n;
	return true;
}

static bool
field_is(const redisReply *r, const char *name)
{
	return is_str(r) && r->len == strlen(name) &&
	    memcmp(r->str, name, r->len) == 0;
}

int
cluster_read_entry(const redisReply *e, struct cluster_job *job, char *why,
    size_t whylen)
{
	const redisReply *f, *k, *v;
	bool have_path = false, have_size = false, have_mtime = false;
	size_t i;

	memset(job, 0, sizeof(*job));
	if (e == NULL || e->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    !copy_str(e->element[0], job->id, sizeof(job->id))) {
		einval(why, whylen, "not a stream entry");
		return -EBADMSG;
	}
	f = e->element[1];
	/* XAUTOCLAIM in Redis 6.2 answers a deleted entry as [id, nil]. */
	if (f == NULL || f->type == REDIS_REPLY_NIL)
		return -ENOENT;
	if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0) {
		einval(why, whylen, "entry %s: fields are not name/value pairs",
		    job->id);
		return -EBADMSG;
	}
	for (i = 0; i < f->elements; i += 2) {
		k = f->element[i];
		v = f->element[i + 1];
		if (field_is(k, "path")) {
			if (!copy_str(v, job->path, sizeof(job->path)) ||
			    !cluster_path_ok(job->path)) {
				einval(why, whylen, "entry %s: path is not a "
				    "relative path inside the input folder",
				    job->id);
				return -EBADMSG;
			}
			have_path = true;
		} else if (field_is(k, "size")) {
			if (!(have_size = field_int(v, 0, INT64_MAX,
			    &job->size))) {
				einval(why, whylen, "entry %s: bad size",
				    job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "mtime_ns")) {
			if (!(have_mtime = field_int(v, 0, INT64_MAX,
			    &job->mtime_ns))) {
				einval(why, whylen, "entry %s: bad mtime_ns",
				    job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "fp")) {
			if (!copy_str(v, job->fp, sizeof(job->fp))) {
				einval(why, whylen, "entry %s: bad fp", job->id);
				return -EBADMSG;
			}
		} else if (field_is(k, "force")) {
			job->force = field_is(v, "1");
		} else if (field_is(k, "by")) {
			if (!copy_str(v, job->by, sizeof(job->by)))
				job->by[0] = '\0';
		}
		/* Unknown fields are for later versions. */
	}
	if (!have_path || !have_size || !have_mtime) {
		einval(why, whylen, "entry %s: missing %s", job->id,
		    !have_path ? "path" : !have_size ? "size" : "mtime_ns");
		return -EBADMSG;
	}
	return 0;
}

const redisReply *
cluster_xreadgroup_entries(const redisReply *r, char *why, size_t whylen)
{
	static const redisReply none = { .type = REDIS_REPLY_ARRAY };
	const redisReply *s;

	if (r == NULL || r->type == REDIS_REPLY_NIL)
		return &none;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    (s = r->element[0])->type != REDIS_REPLY_ARRAY ||
	    s->elements != 2 || !is_str(s->element[0]) ||
	    s->element[1]->type != REDIS_REPLY_ARRAY) {
		einval(why, whylen, "XREADGROUP answered in an unknown shape");
		return NULL;
	}
	return s->element[1];
}

const redisReply *
cluster_xautoclaim_entries(const redisReply *r, char *next, size_t nextcap,
    char *why, size_t whylen)
{
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    !is_str(r->element[0]) ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		einval(why, whylen, "XAUTOCLAIM answered in an unknown shape");
		return NULL;
	}
	if (next != NULL && !copy_str(r->element[0], next, nextcap))
		snprintf(next, nextcap, "0-0");
	return r->element[1];
}

int
cluster_read_pending(const redisReply *r, struct cluster_pending *rows,
    int max, char *why, size_t whylen)
{
	const redisReply *e;
	int n = 0;
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		einval(why, whylen, "XPENDING answered in an unknown shape");
		return -EBADMSG;
	}
	for (i = 0; i < r->elements && n < max; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
		    !copy_str(e->element[0], rows[n].id, sizeof(rows[n].id)) ||
		    !copy_str(e->element[1], rows[n].consumer,
		    sizeof(rows[n].consumer)) ||
		    e->element[2]->type != REDIS_REPLY_INTEGER ||
		    e->element[3]->type != REDIS_REPLY_INTEGER) {
			einval(why, whylen, "XPENDING row %zu is not [id, "
			    "consumer, idle, deliveries]", i);
			return -EBADMSG;
		}
		rows[n].idle_ms = e->element[2]->integer;
		rows[n].deliveries = e->element[3]->integer;
		n++;
	}
	return n;
}

int
cluster_read_group_info(const redisReply *r, const char *group,
    int64_t *consumers, int64_t *pending)
{
	const redisReply *g, *k, *v;
	bool mine;
	size_t i, j;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return -EBADMSG;
	for (i = 0; i < r->elements; i++) {
		g = r->element[i];
		if (g->type != REDIS_REPLY_ARRAY || g->elements % 2 != 0)
			return -EBADMSG;
		mine = false;
		for (j = 0; j < g->elements; j += 2)
			if (field_is(g->element[j], "name") &&
			    field_is(g->element[j + 1], group))
				mine = true;
		if (!mine)
			continue;
		*consumers = *pending = -1;
		for (j = 0; j < g->elements; j += 2) {
			k = g->element[j];
			v = g->element[j + 1];
			if (v->type != REDIS_REPLY_INTEGER)
				continue;
			if (field_is(k, "consumers"))
				*consumers = v->integer;
			else if (field_is(k, "pending"))
				*pending = v->integer;
		}
		return *consumers < 0 || *pending < 0 ? -EBADMSG : 0;
	}
	return -ENOENT;
}
