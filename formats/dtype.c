/* dtype.c - zarr v2 dtype strings, v3 data_type names and fill values. */
#include "dtype.h"
#include "last_error.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *v3;
	char kind;
	int size;
	ab_dtype dt;
} dtype_table[] = {
	{ "bool", 'b', 1, AB_DT_BOOL },
	{ "int8", 'i', 1, AB_DT_INT8 },      { "int16", 'i', 2, AB_DT_INT16 },
	{ "int32", 'i', 4, AB_DT_INT32 },    { "int64", 'i', 8, AB_DT_INT64 },
	{ "uint8", 'u', 1, AB_DT_UINT8 },    { "uint16", 'u', 2, AB_DT_UINT16 },
	{ "uint32", 'u', 4, AB_DT_UINT32 },  { "uint64", 'u', 8, AB_DT_UINT64 },
	{ "float16", 'f', 2, AB_DT_FLOAT16 }, { "float32", 'f', 4, AB_DT_FLOAT32 },
	{ "float64", 'f', 8, AB_DT_FLOAT64 }, { "complex64", 'c', 8, AB_DT_COMPLEX64 },
	{ "complex128", 'c', 16, AB_DT_COMPLEX128 },
};
#define N_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

size_t ab_dtype_size(ab_dtype dt)
{
	for (size_t i = 0; i < N_DTYPES; i++)
		if (dtype_table[i].dt == dt)
			return (size_t)dtype_table[i].size;
	return 0;
}

const char *ab_dtype_name(ab_dtype dt)
{
	if (dt == AB_DT_STRING)
		return "string";
	for (size_t i = 0; i < N_DTYPES; i++)
		if (dtype_table[i].dt == dt)
			return dtype_table[i].v3;
	return "unknown";
}

#define INT64_ROW 4 /* dtype_table index of int64 */

/* numpy's time units (numpy.datetime_data), "generic" for a unit-less type. */
static const char *const time_units[] = {
	"Y", "M", "W", "D", "h", "m", "s", "ms", "us", "\xce\xbcs", "ns", "ps", "fs", "as", "generic", NULL
};

/* `s` is "[<scale><unit>]" (bracketed, v2 dtype suffix) or "<unit>" (v3
 * configuration unit). Returns 0 when it names a numpy time unit. */
static int time_unit_check(const char *s, int bracketed)
{
	size_t len = strlen(s);
	if (bracketed) {
		if (len < 3 || s[0] != '[' || s[len - 1] != ']')
			return -1;
		s++;
		len -= 2;
		while (len && *s >= '0' && *s <= '9') {
			s++;
			len--;
		}
	}
	for (int i = 0; time_units[i]; i++)
		if (strlen(time_units[i]) == len && strncmp(time_units[i], s, len) == 0)
			return 0;
	return -1;
}

static void set_numeric(ab_dtype_desc *out, int i)
{
	out->dt = dtype_table[i].dt;
	out->disk_size = (size_t)dtype_table[i].size;
	out->swap_unit = dtype_table[i].kind == 'c' ? out->disk_size / 2 : out->disk_size;
	out->str = AB_STR_NONE;
}

int ab_dtype_parse_v2(const char *s, int has_vlen_filter, ab_dtype_desc *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", s);
	size_t len = strlen(s);
	if (len < 2 || (s[0] != '<' && s[0] != '>' && s[0] != '|' && s[0] != '='))
		return ab_error_set(AB_EUNSUPPORTED, "unsupported dtype '%s'", s);
	out->big_endian = s[0] == '>';
	char kind = s[1];
	if (kind == 'O') {
		if (len != 2)
			return ab_error_set(AB_EUNSUPPORTED, "unsupported dtype '%s'", s);
		if (!has_vlen_filter)
			return ab_error_set(AB_EUNSUPPORTED,
					    "object dtype '|O' without a vlen-utf8 filter is not supported");
		out->dt = AB_DT_STRING;
		out->str = AB_STR_VLEN;
		return 0;
	}
	if (kind == 'M' || kind == 'm') {
		/* numpy datetime64 / timedelta64 ("<M8[ns]", "<m8[10s]", "<M8"), as
		 * zarr-python 2 and 3 write them: int64 items, NaT = INT64_MIN (zarr
		 * v2 spec, data type encoding; zarr-python src/zarr/core/dtype/npy/time.py) */
		if (s[2] != '8' || (s[3] && time_unit_check(s + 3, 1) != 0))
			return ab_error_set(AB_EUNSUPPORTED, "unsupported dtype '%s'", s);
		set_numeric(out, (int)INT64_ROW);
		out->time = 1;
		return 0;
	}
	char *end;
	long n = strtol(s + 2, &end, 10);
	if (*end != '\0' || end == s + 2 || n <= 0 || n > (1L << 30))
		return ab_error_set(AB_EUNSUPPORTED, "unsupported dtype '%s'", s);
	if (kind == 'S' || kind == 'U') {
		out->dt = AB_DT_STRING;
		out->str = kind == 'S' ? AB_STR_BYTES : AB_STR_UCS4;
		out->str_width = (size_t)n;
		out->disk_size = (size_t)n * (kind == 'U' ? 4 : 1);
		out->swap_unit = kind == 'U' ? 4 : 1;
		return 0;
	}
	for (size_t i = 0; i < N_DTYPES; i++) {
		if (dtype_table[i].kind == kind && dtype_table[i].size == n) {
			set_numeric(out, (int)i);
			if (out->disk_size == 1)
				out->big_endian = 0;
			return 0;
		}
	}
	return ab_error_set(AB_EUNSUPPORTED, "unsupported dtype '%s'", s);
}

int ab_dtype_parse_v3(const char *s, ab_dtype_desc *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", s);
	if (strcmp(s, "string") == 0) {
		out->dt = AB_DT_STRING;
		out->str = AB_STR_VLEN;
		return 0;
	}
	for (size_t i = 0; i < N_DTYPES; i++) {
		if (strcmp(dtype_table[i].v3, s) == 0) {
			set_numeric(out, (int)i);
			return 0;
		}
	}
	return ab_error_set(AB_EUNSUPPORTED, "unsupported data_type '%s'", s);
}

int ab_dtype_parse_v3_json(const json_t *data_type, ab_dtype_desc *out)
{
	memset(out, 0, sizeof *out);
	if (json_is_string(data_type)) {
		const char *s = json_string_value(data_type);
		/* zarr-python 3.1 writes "variable_length_bytes" with the vlen-bytes
		 * codec; the zarr-extensions registry names the same type "bytes"
		 * (src/zarr/core/dtype/npy/bytes.py, zarr-extensions
		 * data-types/bytes). Items are read as strings. */
		if (strcmp(s, "variable_length_bytes") == 0 || strcmp(s, "bytes") == 0) {
			snprintf(out->name, sizeof out->name, "%s", s);
			out->dt = AB_DT_STRING;
			out->str = AB_STR_VLEN;
			out->vlen_bytes = 1;
			return 0;
		}
		if (strcmp(s, "variable_length_utf8") == 0) /* zarr-python 3.0's name of "string" */
			s = "string";
		return ab_dtype_parse_v3(s, out);
	}
	const char *name = json_is_object(data_type) ? json_string_value(json_object_get(data_type, "name")) : NULL;
	const json_t *cfg = name ? json_object_get(data_type, "configuration") : NULL;
	if (!name) {
		char *txt = json_dumps(data_type, JSON_ENCODE_ANY | JSON_COMPACT);
		int rc = ab_error_set(AB_EFORMAT, "data_type %.80s is neither a name nor an object with a name",
				      txt ? txt : "?");
		free(txt);
		return rc;
	}
	snprintf(out->name, sizeof out->name, "%s", name);
	if (strcmp(name, "numpy.datetime64") == 0 || strcmp(name, "numpy.timedelta64") == 0) {
		/* {"name": "numpy.datetime64", "configuration": {"unit": "ms",
		 * "scale_factor": 1}}: int64 items counting scale_factor units from
		 * the epoch, NaT = INT64_MIN (zarr-extensions data-types/
		 * numpy.datetime64, numpy.timedelta64; zarr-python
		 * src/zarr/core/dtype/npy/time.py). */
		const char *unit = json_string_value(json_object_get(cfg, "unit"));
		const json_t *sf = json_object_get(cfg, "scale_factor");
		if (!unit || time_unit_check(unit, 0) != 0 || !json_is_integer(sf) || json_integer_value(sf) < 1 ||
		    json_integer_value(sf) > INT32_MAX)
			return ab_error_set(AB_EFORMAT,
					    "data_type %s needs a configuration with a numpy time unit and a "
					    "scale_factor in [1, 2^31)", name);
		set_numeric(out, INT64_ROW);
		out->time = 1;
		snprintf(out->name, sizeof out->name, "%s[%lld%s]", strchr(name, '.') + 1,
			 (long long)json_integer_value(sf), unit);
		return 0;
	}
	if (strcmp(name, "fixed_length_utf32") == 0) {
		/* {"name": "fixed_length_utf32", "configuration": {"length_bytes":
		 * 4 * n}}: numpy "<U<n>" items, n UTF-32 code units each, zero-padded;
		 * the byte order is the bytes codec's (zarr-python 3.1
		 * src/zarr/core/dtype/npy/string.py, zarr-extensions
		 * data-types/fixed_length_utf32). */
		const json_t *lb = json_object_get(cfg, "length_bytes");
		json_int_t n = json_is_integer(lb) ? json_integer_value(lb) : -1;
		if (n <= 0 || n % 4 || n > ((json_int_t)1 << 30))
			return ab_error_set(AB_EFORMAT,
					    "data_type fixed_length_utf32 needs a configuration length_bytes that is a "
					    "positive multiple of 4");
		out->dt = AB_DT_STRING;
		out->str = AB_STR_UCS4;
		out->str_width = (size_t)n / 4;
		out->disk_size = (size_t)n;
		out->swap_unit = 4;
		snprintf(out->name, sizeof out->name, "fixed_length_utf32[%lld]", (long long)n);
		return 0;
	}
	if (strcmp(name, "null_terminated_bytes") == 0) {
		/* numpy "|S<n>" in zarr-python 3.1: {"name": "null_terminated_bytes",
		 * "configuration": {"length_bytes": n}}, fill values in base64
		 * (src/zarr/core/dtype/npy/bytes.py) */
		const json_t *lb = json_object_get(cfg, "length_bytes");
		json_int_t n = json_is_integer(lb) ? json_integer_value(lb) : -1;
		if (n <= 0 || n > ((json_int_t)1 << 30))
			return ab_error_set(AB_EFORMAT,
					    "data_type null_terminated_bytes needs a positive configuration length_bytes");
		out->dt = AB_DT_STRING;
		out->str = AB_STR_BYTES;
		out->str_width = (size_t)n;
		out->disk_size = (size_t)n;
		out->swap_unit = 1;
		snprintf(out->name, sizeof out->name, "null_terminated_bytes[%lld]", (long long)n);
		return 0;
	}
	/* a core type in the object form, {"name": "int32"}, is that type */
	if (!cfg || (json_is_object(cfg) && json_object_size(cfg) == 0))
		return ab_dtype_parse_v3(name, out);
	return ab_error_set(AB_EUNSUPPORTED, "unsupported data_type '%s'", name);
}

/* Decodes standard base64 (with or without padding) into a malloc'd
 * NUL-terminated string; NULL when `s` is not base64. */
static char *base64_decode(const char *s)
{
	size_t len = strlen(s);
	char *out = malloc(len / 4 * 3 + 4);
	if (!out)
		return NULL;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	for (const char *p = s; *p; p++) {
		int v;
		if (*p >= 'A' && *p <= 'Z')
			v = *p - 'A';
		else if (*p >= 'a' && *p <= 'z')
			v = *p - 'a' + 26;
		else if (*p >= '0' && *p <= '9')
			v = *p - '0' + 52;
		else if (*p == '+')
			v = 62;
		else if (*p == '/')
			v = 63;
		else if (*p == '=') {
			pad++;
			continue;
		} else {
			free(out);
			return NULL;
		}
		if (pad) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	out[n] = '\0';
	return out;
}

double ab_half_to_double(uint16_t h)
{
	int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	double v;
	if (exp == 0)
		v = ldexp(mant, -24);
	else if (exp == 31)
		v = mant ? NAN : INFINITY;
	else
		v = ldexp(mant | 0x400, exp - 25);
	return sign ? -v : v;
}

uint16_t ab_double_to_half(double d)
{
	/* Round to nearest, ties to even (nearbyint in the default mode). */
	uint16_t sign = signbit(d) ? 0x8000 : 0;
	if (isnan(d))
		return 0x7e00;
	d = fabs(d);
	if (isinf(d) || d >= 65520.0)
		return sign | 0x7c00;
	if (d < ldexp(1, -25))
		return sign;
	int e;
	double m = frexp(d, &e); /* d = m * 2^e, 0.5 <= m < 1 */
	int exp = e + 14;        /* biased exponent of 1.xxx form */
	if (exp <= 0) {
		double q = nearbyint(ldexp(d, 24));
		return sign | (uint16_t)q;
	}
	double q = nearbyint(ldexp(m, 11)); /* 1024..2048 */
	if (q >= 2048) {
		q /= 2;
		exp++;
	}
	if (exp >= 31)
		return sign | 0x7c00;
	return sign | (uint16_t)(exp << 10) | ((uint16_t)q & 0x3ff);
}

static int parse_special_float(const json_t *fv, double *out)
{
	const char *s = json_string_value(fv);
	if (strcmp(s, "NaN") == 0)
		*out = NAN;
	else if (strcmp(s, "Infinity") == 0)
		*out = INFINITY;
	else if (strcmp(s, "-Infinity") == 0)
		*out = -INFINITY;
	else
		return -1;
	return 0;
}

static int hex_bits(const char *s, size_t nbytes, uint8_t *item)
{
	/* "0x7fc00000": the raw bits, big-endian digits, stored host (LE) order. */
	if (strncmp(s, "0x", 2) != 0 || strlen(s + 2) != nbytes * 2)
		return -1;
	uint64_t v = 0;
	for (const char *p = s + 2; *p; p++) {
		int c = *p, x;
		if (c >= '0' && c <= '9')
			x = c - '0';
		else if (c >= 'a' && c <= 'f')
			x = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			x = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)x;
	}
	memcpy(item, &v, nbytes); /* little-endian host */
	return 0;
}

static int store_float(ab_dtype dt, double d, uint8_t *item)
{
	if (dt == AB_DT_FLOAT16) {
		uint16_t h = ab_double_to_half(d);
		memcpy(item, &h, 2);
	} else if (dt == AB_DT_FLOAT32 || dt == AB_DT_COMPLEX64) {
		float f = (float)d;
		memcpy(item, &f, 4);
	} else {
		memcpy(item, &d, 8);
	}
	return 0;
}

static int store_int(const ab_dtype_desc *d, const json_t *fv, uint8_t *item)
{
	if (json_is_real(fv)) {
		double r = json_real_value(fv);
		/* Converting a double that no 64-bit integer holds (1e300) is
		 * undefined behaviour in C, so such fill values are refused up
		 * front; in range, the low bytes are kept as for integers. */
		if (r != floor(r) || !(r >= -0x1p63 && r < 0x1p64))
			return -1;
		if (r >= 0x1p63) {
			uint64_t u = (uint64_t)r;
			memcpy(item, &u, d->disk_size);
		} else {
			int64_t v = (int64_t)r;
			memcpy(item, &v, d->disk_size);
		}
		return 0;
	}
	/* jansson holds integers as long long: uint64 values above INT64_MAX arrive
	 * wrapped, which is exactly their two's complement bit pattern. */
	json_int_t v = json_integer_value(fv);
	memcpy(item, &v, d->disk_size); /* little-endian host: low bytes first */
	return 0;
}

int ab_fill_parse(const json_t *fv, const ab_dtype_desc *d, int zarr_format,
		  uint8_t item[16], char **str)
{
	memset(item, 0, 16);
	if (str)
		*str = NULL;
	if (!fv || json_is_null(fv)) {
		if (d->dt == AB_DT_STRING && str)
			*str = strdup("");
		return 0;
	}
	if (d->dt == AB_DT_STRING) {
		if (str) {
			if (json_is_string(fv) && zarr_format == 3 && d->str == AB_STR_BYTES) {
				/* v3 null_terminated_bytes: base64 of the bytes */
				if (!(*str = base64_decode(json_string_value(fv))))
					goto bad;
			} else if (json_is_string(fv) && (zarr_format == 3 || d->str == AB_STR_VLEN))
				*str = strdup(json_string_value(fv));
			else
				*str = strdup(""); /* v2 fixed strings: base64 of bytes; rare, read as empty */
			if (!*str)
				return ab_error_set(AB_ENOMEM, "out of memory");
		}
		return 0;
	}
	switch (d->dt) {
	case AB_DT_BOOL:
		if (json_is_boolean(fv)) {
			item[0] = json_is_true(fv);
			return 0;
		}
		if (json_is_integer(fv)) {
			item[0] = json_integer_value(fv) != 0;
			return 0;
		}
		break;
	case AB_DT_INT8: case AB_DT_INT16: case AB_DT_INT32: case AB_DT_INT64:
	case AB_DT_UINT8: case AB_DT_UINT16: case AB_DT_UINT32: case AB_DT_UINT64:
		if (json_is_number(fv) && store_int(d, fv, item) == 0)
			return 0;
		if (d->dt == AB_DT_UINT64 && json_is_string(fv) &&
		    strncmp(json_string_value(fv), "#u64:", 5) == 0) {
			/* a literal above INT64_MAX, quoted by the JSON loader */
			char *end;
			errno = 0;
			unsigned long long v = strtoull(json_string_value(fv) + 5, &end, 10);
			if (errno == 0 && *end == '\0') {
				uint64_t u = v;
				memcpy(item, &u, 8);
				return 0;
			}
		}
		if (json_is_boolean(fv)) {
			item[0] = json_is_true(fv);
			return 0;
		}
		if (d->time && json_is_string(fv) && strcmp(json_string_value(fv), "NaT") == 0) {
			int64_t nat = INT64_MIN; /* numpy's NaT */
			memcpy(item, &nat, 8);
			return 0;
		}
		break;
	case AB_DT_FLOAT16: case AB_DT_FLOAT32: case AB_DT_FLOAT64: {
		double v;
		if (json_is_number(fv))
			return store_float(d->dt, json_number_value(fv), item);
		if (json_is_string(fv)) {
			if (parse_special_float(fv, &v) == 0)
				return store_float(d->dt, v, item);
			if (hex_bits(json_string_value(fv), d->disk_size, item) == 0)
				return 0;
		}
		break;
	}
	case AB_DT_COMPLEX64: case AB_DT_COMPLEX128: {
		size_t half = d->disk_size / 2;
		ab_dtype part = half == 4 ? AB_DT_FLOAT32 : AB_DT_FLOAT64;
		if (json_is_number(fv))
			return store_float(part, json_number_value(fv), item);
		if (json_is_array(fv) && json_array_size(fv) == 2) {
			for (size_t k = 0; k < 2; k++) {
				const json_t *e = json_array_get(fv, k);
				double v;
				if (json_is_number(e))
					v = json_number_value(e);
				else if (json_is_string(e) && parse_special_float(e, &v) == 0)
					;
				else
					goto bad;
				store_float(part, v, item + k * half);
			}
			return 0;
		}
		break;
	}
	default:
		break;
	}
bad:;
	char *txt = json_dumps(fv, JSON_ENCODE_ANY | JSON_COMPACT);
	int rc = ab_error_set(AB_EFORMAT, "fill_value %s is not valid for dtype %s",
			      txt ? txt : "?", d->name);
	free(txt);
	return rc;
}
