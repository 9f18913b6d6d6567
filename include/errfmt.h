/*
 * errfmt: how a parser of untrusted or hand-written text says no.
 *
 * Pure module.
 */
#ifndef THUMBWATCH_ERRFMT_H
#define THUMBWATCH_ERRFMT_H

#include <stddef.h>

/* Writes the reason to why (NULL or len 0: nowhere) and returns -EINVAL,
 * so a check and its message are one statement. */
int einval(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
