/* Common includes for the cmocka unit tests (cmocka needs these first). */
#ifndef THUMBWATCH_UNIT_H
#define THUMBWATCH_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#endif
