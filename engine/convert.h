/*
 * convert.h - dtype promotion and conversion for the loader (internal).
 */
#ifndef AB_ENGINE_CONVERT_H
#define AB_ENGINE_CONVERT_H

#include <stddef.h>

#include "annbatch.h"

/* The dtype that holds values of both a and b (numpy-like rules); -1 when
 * there is none (strings, complex). */
int ab_dtype_promote(ab_dtype a, ab_dtype b, ab_dtype *out);
/* Converts n items. */
void ab_convert(ab_dtype to, void *dst, ab_dtype from, const void *src, size_t n);
/* Sum of n items as double, in order. */
double ab_row_sum(ab_dtype dt, const void *src, size_t n);

#endif
