/*
 * log: the JSON Lines log, written only by the supervisor.
 *
 * Each record is one write() on an O_APPEND descriptor, so lines never tear
 * or interleave; log_reopen() (SIGHUP) opens the path again for logrotate.
 * When stderr is a TTY, records are also printed there in a readable form.
 * Every record has ts, level, event; callers add fields between
 * log_begin() and log_commit().
 */
#ifndef THUMBWATCH_LOG_H
#define THUMBWATCH_LOG_H

#include <stdbool.h>

#include "config.h"
#include "json.h"

struct logger {
	char path[PATH_MAX];
	int fd;
	enum log_level level;
	bool tty;		/* echo to stderr readably */
	bool quiet_tty;		/* `once` with a progress bar: no echo */
	struct json_buf j;
	bool active;		/* between begin and commit */
	enum log_level cur;
	char event[32];
	/* Called with every record written (HTTP /events); may be NULL. */
	void (*tap)(void *ud, const char *event, const char *rec, size_t len);
	void *tap_ud;
};

/* Opens (creating parent folders) path.  0 or -errno. */
int log_open(struct logger *lg, const char *path, enum log_level level);
int log_reopen(struct logger *lg);
void log_close(struct logger *lg);

/* Returns the builder to add fields to, or NULL when level is filtered
 * out (then log_commit is a no-op, so callers need not check). */
struct json_buf *log_begin(struct logger *lg, enum log_level lv,
    const char *event);
/* Writes the record. 0 or -errno. */
int log_commit(struct logger *lg);

/* One-call records with a message field. */
void log_msg(struct logger *lg, enum log_level lv, const char *event,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
