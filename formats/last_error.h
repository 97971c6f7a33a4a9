/*
 * last_error.h - the per-thread last-error message behind ab_last_error() (internal).
 *
 * ab_error_set() formats a message and returns the status code, so a failure
 * path is one line: `return ab_error_set(AB_ECORRUPT, "zstd: %s", why);`.
 * ab_error_prefix() puts context in front of the current message as the error
 * travels up ("X/data: chunk c/3: " + "zstd: frame truncated").
 */
#ifndef AB_FORMATS_LAST_ERROR_H
#define AB_FORMATS_LAST_ERROR_H

#include "annbatch.h"

#if defined(__GNUC__)
#define AB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AB_PRINTF(a, b)
#endif

int ab_error_set(int status, const char *fmt, ...) AB_PRINTF(2, 3);
/* Prepends formatted text to the current message; returns status. */
int ab_error_prefix(int status, const char *fmt, ...) AB_PRINTF(2, 3);
void ab_error_clear(void);

#endif
