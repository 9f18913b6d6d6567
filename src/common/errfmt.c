/*
 * errfmt: see errfmt.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "errfmt.h"

int
einval(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
