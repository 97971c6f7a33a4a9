/*
 * dtype.h - on-disk data types and fill values of zarr v2 and v3 (internal).
 */
#ifndef AB_FORMATS_DTYPE_H
#define AB_FORMATS_DTYPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"

typedef enum ab_str_kind {
	AB_STR_NONE = 0,
	AB_STR_VLEN,  /* variable-length UTF-8 (v2 |O + vlen-utf8, v3 string) */
	AB_STR_BYTES, /* v2 fixed-width |S<n> */
	AB_STR_UCS4   /* v2 fixed-width <U<n> / >U<n> (UCS-4 code points) */
} ab_str_kind;

typedef struct ab_dtype_desc {
	ab_dtype dt;          /* what callers get                                */
	size_t disk_size;     /* bytes per item in a decoded chunk (0: vlen)      */
	size_t swap_unit;     /* byte-swap granularity (complex: half the item)   */
	int big_endian;       /* v2 byte-order character '>' (v3: the bytes codec) */
	ab_str_kind str;
	size_t str_width;     /* characters of a fixed-width string               */
	int time;             /* numpy datetime64/timedelta64: int64 on disk, read
	                       * as int64; NaT is INT64_MIN (a missing obs value)  */
	int vlen_bytes;       /* v3 variable_length_bytes (vlen-bytes codec): read
	                       * as AB_STR_VLEN strings                            */
	char name[48];        /* as written on disk                               */
} ab_dtype_desc;

/* "<f4", "|b1", ">i8", "|S12", "<U6", "|O". `has_vlen_filter` says the v2
 * filters contain vlen-utf8 (required for "|O"). */
int ab_dtype_parse_v2(const char *s, int has_vlen_filter, ab_dtype_desc *out);
/* "float32", "bool", "string", ... */
int ab_dtype_parse_v3(const char *s, ab_dtype_desc *out);
/* A v3 data_type as it stands in zarr.json: a core name (string) or an
 * extension object {"name": ..., "configuration": {...}}; refusals name it. */
int ab_dtype_parse_v3_json(const json_t *data_type, ab_dtype_desc *out);

/* Parses a fill value for the dtype into `item` (disk_size bytes, host byte
 * order) or, for string dtypes, into a malloc'd *str. null -> zeros. */
int ab_fill_parse(const json_t *fv, const ab_dtype_desc *d, int zarr_format,
		  uint8_t item[16], char **str);

/* Converts an IEEE half to double (for printing and promotion). */
double ab_half_to_double(uint16_t h);
/* Converts a double to the nearest IEEE half (ties to even): beyond the
 * largest half (65504, or from 65520 up, where rounding leaves the range)
 * an infinity; NaN a quiet NaN; the sign kept but for NaN. */
uint16_t ab_double_to_half(double d);

#endif
