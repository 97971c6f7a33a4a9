/*
 * value.c - numeric values of the zarr dtypes: items read as numbers,
 * numbers stored into items and checked against a dtype, dtype promotion,
 * and the conversion of runs of items (see value.h).
 */
#include "value.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "dtype.h"

int ab_dtype_is_integer(ab_dtype dt)
{
	return dt >= AB_DT_INT8 && dt <= AB_DT_UINT64;
}

int64_t ab_value_as_int64(ab_dtype dt, const void *buf, size_t i)
{
	switch (dt) {
	case AB_DT_BOOL: return ((const uint8_t *)buf)[i];
	case AB_DT_INT8: return ((const int8_t *)buf)[i];
	case AB_DT_INT16: return ((const int16_t *)buf)[i];
	case AB_DT_INT32: return ((const int32_t *)buf)[i];
	case AB_DT_INT64: return ((const int64_t *)buf)[i];
	case AB_DT_UINT8: return ((const uint8_t *)buf)[i];
	case AB_DT_UINT16: return ((const uint16_t *)buf)[i];
	case AB_DT_UINT32: return ((const uint32_t *)buf)[i];
	case AB_DT_UINT64: {
		uint64_t v = ((const uint64_t *)buf)[i];
		return v > INT64_MAX ? -1 : (int64_t)v;
	}
	case AB_DT_FLOAT16: case AB_DT_FLOAT32: case AB_DT_FLOAT64:
	case AB_DT_COMPLEX64: case AB_DT_COMPLEX128:
		return (int64_t)ab_value_as_double(dt, buf, i);
	default: return 0; /* strings, or not a dtype */
	}
}

double ab_value_as_double(ab_dtype dt, const void *buf, size_t i)
{
	switch (dt) {
	case AB_DT_FLOAT16: return ab_half_to_double(((const uint16_t *)buf)[i]);
	case AB_DT_FLOAT32: return ((const float *)buf)[i];
	case AB_DT_FLOAT64: return ((const double *)buf)[i];
	case AB_DT_COMPLEX64: return ((const float *)buf)[2 * i];
	case AB_DT_COMPLEX128: return ((const double *)buf)[2 * i];
	case AB_DT_UINT64: return (double)((const uint64_t *)buf)[i];
	case AB_DT_BOOL: case AB_DT_INT8: case AB_DT_INT16: case AB_DT_INT32: case AB_DT_INT64:
	case AB_DT_UINT8: case AB_DT_UINT16: case AB_DT_UINT32:
		return (double)ab_value_as_int64(dt, buf, i);
	default: return NAN; /* strings, or not a dtype */
	}
}

double ab_item_as_double(ab_dtype dt, const void *items, size_t i)
{
	return items ? ab_value_as_double(dt, items, i) : 0;
}

/* ---- numbers into items ---- */

int ab_value_fits(ab_dtype dt, double v)
{
	/* Range checks before any conversion: converting a double outside an
	 * integer type's range is undefined behaviour. The bounds of the 64-bit
	 * types are powers of two, exact as doubles. */
	switch (dt) {
	case AB_DT_FLOAT64: return 1;
	case AB_DT_FLOAT32: return isnan(v) || isinf(v) || (fabs(v) <= FLT_MAX && (double)(float)v == v);
	case AB_DT_FLOAT16: return isnan(v) || isinf(v) || ab_half_to_double(ab_double_to_half(v)) == v;
	case AB_DT_BOOL: return v == 0 || v == 1;
	case AB_DT_INT8: return v == floor(v) && v >= INT8_MIN && v <= INT8_MAX;
	case AB_DT_INT16: return v == floor(v) && v >= INT16_MIN && v <= INT16_MAX;
	case AB_DT_INT32: return v == floor(v) && v >= INT32_MIN && v <= INT32_MAX;
	case AB_DT_INT64: return v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0;
	case AB_DT_UINT8: return v == floor(v) && v >= 0 && v <= UINT8_MAX;
	case AB_DT_UINT16: return v == floor(v) && v >= 0 && v <= UINT16_MAX;
	case AB_DT_UINT32: return v == floor(v) && v >= 0 && v <= UINT32_MAX;
	case AB_DT_UINT64: return v == floor(v) && v >= 0 && v < 18446744073709551616.0;
	default: return 0;
	}
}

int ab_value_store_double(ab_dtype dt, void *buf, size_t i, double v)
{
	switch (dt) {
	case AB_DT_BOOL: ((uint8_t *)buf)[i] = v != 0; break;
	case AB_DT_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
	case AB_DT_INT16: ((int16_t *)buf)[i] = (int16_t)v; break;
	case AB_DT_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
	case AB_DT_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
	case AB_DT_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
	case AB_DT_UINT16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
	case AB_DT_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
	case AB_DT_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
	case AB_DT_FLOAT16: ((uint16_t *)buf)[i] = ab_double_to_half(v); break;
	case AB_DT_FLOAT32: ((float *)buf)[i] = (float)v; break;
	case AB_DT_FLOAT64: ((double *)buf)[i] = v; break;
	default: return AB_ETYPE;
	}
	return 0;
}

/* ---- runs of items: promotion, conversion, sums ---- */

static int is_float(ab_dtype d)
{
	return d == AB_DT_FLOAT16 || d == AB_DT_FLOAT32 || d == AB_DT_FLOAT64;
}
static int is_signed(ab_dtype d)
{
	return d >= AB_DT_INT8 && d <= AB_DT_INT64;
}
static int is_unsigned(ab_dtype d)
{
	return d >= AB_DT_UINT8 && d <= AB_DT_UINT64;
}

int ab_dtype_promote(ab_dtype a, ab_dtype b, ab_dtype *out)
{
	if (a == b) {
		*out = a;
		return 0;
	}
	if (a == AB_DT_STRING || b == AB_DT_STRING || a == AB_DT_COMPLEX64 || a == AB_DT_COMPLEX128 ||
	    b == AB_DT_COMPLEX64 || b == AB_DT_COMPLEX128)
		return -1;
	if (a == AB_DT_BOOL) {
		*out = b;
		return 0;
	}
	if (b == AB_DT_BOOL) {
		*out = a;
		return 0;
	}
	size_t sa = ab_dtype_size(a), sb = ab_dtype_size(b);
	if (is_float(a) && is_float(b)) {
		*out = sa > sb ? a : b;
		return 0;
	}
	if (is_float(a) || is_float(b)) {
		/* numpy: a float absorbs integers that fit its mantissa. */
		ab_dtype f = is_float(a) ? a : b, i = is_float(a) ? b : a;
		size_t si = ab_dtype_size(i), sf = ab_dtype_size(f);
		if (si < sf)
			*out = f;
		else if (si <= 2)
			*out = AB_DT_FLOAT32;
		else
			*out = AB_DT_FLOAT64;
		return 0;
	}
	if (is_signed(a) == is_signed(b)) {
		*out = sa > sb ? a : b;
		return 0;
	}
	/* signed with unsigned: the signed type wide enough for both */
	ab_dtype s = is_signed(a) ? a : b, u = is_unsigned(a) ? a : b;
	size_t ss = ab_dtype_size(s), su = ab_dtype_size(u);
	if (ss > su) {
		*out = s;
		return 0;
	}
	switch (su) {
	case 1: *out = AB_DT_INT16; return 0;
	case 2: *out = AB_DT_INT32; return 0;
	case 4: *out = AB_DT_INT64; return 0;
	default: *out = AB_DT_FLOAT64; return 0;
	}
}

static inline double load_d(ab_dtype dt, const uint8_t *p)
{
	switch (dt) {
	case AB_DT_BOOL: return *p != 0;
	case AB_DT_INT8: return (int8_t)*p;
	case AB_DT_UINT8: return *p;
	case AB_DT_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
	case AB_DT_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
	case AB_DT_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
	case AB_DT_UINT32: { uint32_t v; memcpy(&v, p, 4); return v; }
	case AB_DT_INT64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
	case AB_DT_UINT64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
	case AB_DT_FLOAT16: { uint16_t v; memcpy(&v, p, 2); return ab_half_to_double(v); }
	case AB_DT_FLOAT32: { float v; memcpy(&v, p, 4); return v; }
	case AB_DT_FLOAT64: { double v; memcpy(&v, p, 8); return v; }
	default: return 0;
	}
}

static inline int64_t load_i(ab_dtype dt, const uint8_t *p)
{
	switch (dt) {
	case AB_DT_INT64: { int64_t v; memcpy(&v, p, 8); return v; }
	case AB_DT_UINT64: { uint64_t v; memcpy(&v, p, 8); return (int64_t)v; }
	default: return (int64_t)load_d(dt, p);
	}
}

void ab_convert(ab_dtype to, void *dst, ab_dtype from, const void *src, size_t n)
{
	if (to == from) {
		memcpy(dst, src, n * ab_dtype_size(to));
		return;
	}
	const uint8_t *s = src;
	size_t ss = ab_dtype_size(from);
	/* Common fast paths first: float32 output from float64 / integer counts. */
	if (to == AB_DT_FLOAT32) {
		float *d = dst;
		if (from == AB_DT_FLOAT64) {
			for (size_t i = 0; i < n; i++) {
				double v;
				memcpy(&v, s + 8 * i, 8);
				d[i] = (float)v;
			}
			return;
		}
		for (size_t i = 0; i < n; i++)
			d[i] = (float)load_d(from, s + ss * i);
		return;
	}
	uint8_t *d = dst;
	size_t ds = ab_dtype_size(to);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = s + ss * i;
		uint8_t *q = d + ds * i;
		switch (to) {
		case AB_DT_BOOL: *q = load_d(from, p) != 0; break;
		case AB_DT_INT8: { int8_t v = (int8_t)load_i(from, p); memcpy(q, &v, 1); break; }
		case AB_DT_UINT8: { uint8_t v = (uint8_t)load_i(from, p); memcpy(q, &v, 1); break; }
		case AB_DT_INT16: { int16_t v = (int16_t)load_i(from, p); memcpy(q, &v, 2); break; }
		case AB_DT_UINT16: { uint16_t v = (uint16_t)load_i(from, p); memcpy(q, &v, 2); break; }
		case AB_DT_INT32: { int32_t v = (int32_t)load_i(from, p); memcpy(q, &v, 4); break; }
		case AB_DT_UINT32: { uint32_t v = (uint32_t)load_i(from, p); memcpy(q, &v, 4); break; }
		case AB_DT_INT64: { int64_t v = load_i(from, p); memcpy(q, &v, 8); break; }
		case AB_DT_UINT64: { uint64_t v = (uint64_t)load_i(from, p); memcpy(q, &v, 8); break; }
		case AB_DT_FLOAT64: { double v = load_d(from, p); memcpy(q, &v, 8); break; }
		case AB_DT_FLOAT16: { uint16_t v = ab_double_to_half(load_d(from, p)); memcpy(q, &v, 2); break; }
		default: memset(q, 0, ds); break;
		}
	}
}

double ab_row_sum(ab_dtype dt, const void *src, size_t n)
{
	const uint8_t *s = src;
	size_t ss = ab_dtype_size(dt);
	double acc = 0;
	if (dt == AB_DT_FLOAT32) {
		for (size_t i = 0; i < n; i++) {
			float v;
			memcpy(&v, s + 4 * i, 4);
			acc += v;
		}
		return acc;
	}
	for (size_t i = 0; i < n; i++)
		acc += load_d(dt, s + ss * i);
	return acc;
}
