/*
 * value.h - numeric values of the zarr dtypes (internal): one item read as a
 * number, a number stored into an item, whether a number fits a dtype
 * exactly, the dtype two dtypes promote to, and runs of items converted from
 * one dtype to another. The one home of value conversion in the library:
 * readers, the loader and the writers all go through these.
 *
 * Items are in host byte order (what a decoded chunk holds). The functions
 * that take one item (`buf`, index `i`) read and write it as a typed array
 * element, so `buf` must be aligned for the dtype; the functions over runs
 * (ab_convert, ab_row_sum) accept any alignment. Strings (AB_DT_STRING) have
 * no numeric value.
 */
#ifndef AB_FORMATS_VALUE_H
#define AB_FORMATS_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"

/* 1 for the integer dtypes int8 .. uint64 (bool is not one), else 0. */
int ab_dtype_is_integer(ab_dtype dt);

/* Item i of `buf` as int64: bool and the integers exactly (bool gives its
 * stored byte), except a uint64 above INT64_MAX, which gives -1 (callers
 * that read indices refuse negatives); floats truncated toward zero, complex:
 * the real part's. A float that is NaN or outside int64's range has no
 * defined result: check it with ab_value_fits(AB_DT_INT64, v) first. A dtype
 * without a numeric value gives 0. */
int64_t ab_value_as_int64(ab_dtype dt, const void *buf, size_t i);

/* Item i of `buf` as double: exact for bool, integers of up to 53 bits and
 * every float (float16 widened); larger integers rounded to the nearest
 * double; complex: the real part. A dtype without a numeric value gives NaN.
 * ab_item_as_double (annbatch.h) is this for callers of the public API, with
 * items == NULL giving 0. */
double ab_value_as_double(ab_dtype dt, const void *buf, size_t i);

/* Whether `v` is held exactly by an item of `dt`, i.e. storing it with
 * ab_value_store_double and reading it back gives `v` again: bool 0 or 1;
 * integers: whole numbers inside the dtype's range; float16 / float32: NaN,
 * the infinities, and the finite values the narrower float represents;
 * float64: everything. Complex and strings: 0 (no store). */
int ab_value_fits(ab_dtype dt, double v);

/* Stores `v` into item i of `buf`: bool as v != 0, integers truncated toward
 * zero, floats rounded to nearest (even). For an integer dtype `v` must fit
 * its range (ab_value_fits): converting an out-of-range double to an integer
 * is undefined in C. Returns 0, or AB_ETYPE (nothing stored, no message) for
 * complex and string dtypes. */
int ab_value_store_double(ab_dtype dt, void *buf, size_t i, double v);

/* The dtype that holds the values of both a and b, as numpy's result_type
 * (and so anndata's concat) decides: bool joins anything; two floats or two
 * integers of one signedness give the wider; a float and an integer give
 * the float when the integer is narrower, else float32 for integers of up to
 * 16 bits and float64 above; a signed and an unsigned integer give the signed
 * integer wide enough for both (uint64 with a signed one: float64). Returns 0,
 * or -1 when there is none (strings, complex with anything else). */
int ab_dtype_promote(ab_dtype a, ab_dtype b, ab_dtype *out);

/* Converts n items of dtype `from` at src into dtype `to` at dst (no
 * overlap unless to == from, which is a plain copy). Values go through
 * double, and into the integer dtypes through int64 (so int64 and uint64
 * stay exact between integer dtypes): bool becomes 0 / 1, floats are
 * truncated toward zero (NaN or outside int64's range: no defined result),
 * narrower integers wrap modulo 2^bits (as gcc and clang convert), float16
 * is rounded to nearest (even). Complex and string items become 0. */
void ab_convert(ab_dtype to, void *dst, ab_dtype from, const void *src, size_t n);

/* The sum of n items as double, added in order (so the result is the same on
 * every run). */
double ab_row_sum(ab_dtype dt, const void *src, size_t n);

#endif
