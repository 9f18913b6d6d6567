/*
 * cluster_reply: reading the Redis replies the queue uses (XREADGROUP,
 * XAUTOCLAIM, XCLAIM, XPENDING, XINFO GROUPS) into cluster.h's structs.
 *
 * No I/O: replies are hiredis' redisReply trees (plain data), so the tests
 * build them by hand.  Entries come from the network: every field is
 * checked as cluster.h describes.
 */
#ifndef THUMBWATCH_CLUSTER_REPLY_H
#define THUMBWATCH_CLUSTER_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

/* Reads one stream entry ([id, [field, value, ...]]).  0; -EBADMSG with a
 * reason in why (and job->id set when the id itself could be read) for an
 * entry that is not well formed or names a path cluster_path_ok refuses;
 * -ENOENT for the nil an XAUTOCLAIM/XCLAIM answers for a deleted entry
 * (job->id may be empty). */
int cluster_read_entry(const redisReply *e, struct cluster_job *job,
    char *why, size_t whylen);

/* The entries of a reply, for cluster_read_entry:
 *   XREADGROUP: nil (timed out) or [[stream, [entry...]]] -> entries
 *   XAUTOCLAIM: [next, [entry...], [deleted id...]] -> entries; *next
 *               (may be NULL) gets the cursor
 *   XCLAIM:     [entry...]
 * Returns the array of entries (NULL with a reason in why when the reply
 * has another shape; an empty XREADGROUP answer is an array of 0). */
const redisReply *cluster_xreadgroup_entries(const redisReply *r,
    char *why, size_t whylen);
const redisReply *cluster_xautoclaim_entries(const redisReply *r,
    char *next, size_t nextcap, char *why, size_t whylen);

/* Fills at most max rows; returns how many, or -EBADMSG. */
int cluster_read_pending(const redisReply *r, struct cluster_pending *rows,
    int max, char *why, size_t whylen);

/* From XINFO GROUPS (RESP2: one flat name/value array per group): the
 * consumers and pending count of group.  0, -ENOENT (no such group) or
 * -EBADMSG. */
int cluster_read_group_info(const redisReply *r, const char *group,
    int64_t *consumers, int64_t *pending);

#endif
