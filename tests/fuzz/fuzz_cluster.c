/*
 * libFuzzer harness for src/common/cluster.c and src/queue/cluster_reply.c:
 * what a worker node reads from Redis.
 *
 * The input is a byte stream of RESP replies, parsed by hiredis' own
 * reader (as the node's connection does), and each reply is read as every
 * shape the queue expects: a stream entry, an XREADGROUP and an XAUTOCLAIM
 * answer (and each of their entries), XPENDING rows and XINFO GROUPS.  No
 * call may crash, and an entry that is accepted names a path inside the
 * input tree.  The input as a string is also a QUEUE URL, whose redacted
 * form shows no user info but a "(set)" marker.
 */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void
entry(const redisReply *e)
{
	struct cluster_job job;
	char why[300];

	if (cluster_read_entry(e, &job, why, sizeof(why)) == 0) {
		CHECK(cluster_path_ok(job.path));
		CHECK(strlen(job.path) > 0);
		CHECK(job.size >= 0 && job.mtime_ns >= 0);
	}
}

static void
entries(const redisReply *arr)
{
	size_t i;

	if (arr == NULL)
		return;
	CHECK(arr->type == REDIS_REPLY_ARRAY);
	for (i = 0; i < arr->elements; i++)
		entry(arr->element[i]);
}

static void
reply(const redisReply *r)
{
	struct cluster_pending rows[8];
	char why[300], next[CLUSTER_ID_MAX];
	int64_t consumers, pending;
	int n, i;

	entry(r);
	entries(cluster_xreadgroup_entries(r, why, sizeof(why)));
	entries(cluster_xautoclaim_entries(r, next, sizeof(next), why,
	    sizeof(why)));
	if (r->type == REDIS_REPLY_ARRAY)
		entries(r);
	n = cluster_read_pending(r, rows, 8, why, sizeof(why));
	CHECK(n <= 8);
	for (i = 0; i < n; i++)
		CHECK(strlen(rows[i].id) < sizeof(rows[i].id));
	if (cluster_read_group_info(r, "thumbwatch", &consumers,
	    &pending) == 0)
		CHECK(consumers >= 0 && pending >= 0);
}

/* hiredis allocates what a header announces ("*1000000000" is 8 GB of
 * pointers): the Redis server is trusted for that much, so the harness
 * leaves such inputs out rather than report hiredis' allocation. */
static int
huge_header(const uint8_t *data, size_t size)
{
	size_t i;
	long n;

	for (i = 0; i < size; i++) {
		if (data[i] != '*' && data[i] != '$')
			continue;
		n = 0;
		while (i + 1 < size && data[i + 1] >= '0' && data[i + 1] <= '9') {
			if (++n > 5)
				return 1;
			i++;
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	redisReader *rd;
	void *r;
	struct cluster_url u;
	char *s, out[1024];

	if (huge_header(data, size) || (rd = redisReaderCreate()) == NULL)
		return 0;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK)
		while (redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL) {
			reply(r);
			freeReplyObject(r);
		}
	redisReaderFree(rd);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	cluster_redact_url(s, out, sizeof(out));
	if (cluster_parse_url(s, &u, NULL, 0) == 0) {
		/* Rebuilt from host, port and db: the user info can only
		 * show as the one "(set)" marker. */
		CHECK(strncmp(out, "redis://", 8) == 0);
		CHECK(strchr(out, '@') == strrchr(out, '@'));
		if (u.password[0] != '\0')
			CHECK(strncmp(out + 8, ":(set)@", 7) == 0);
		else
			CHECK(strchr(out, '@') == NULL);
	}
	free(s);
	return 0;
}
