/* meta.c - decoding .zarray and array zarr.json documents. */
#include "meta.h"
#include "last_error.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* Upper bound for any extent: keeps every product below 2^63 in practice and
 * rejects absurd values early with a clear message. */
#define AB_EXTENT_MAX ((uint64_t)1 << 48)

void ab_array_meta_free(ab_array_meta *m)
{
	ab_pipeline_free(&m->pipe);
	free(m->fill_str);
	m->fill_str = NULL;
}

static int parse_extents(const json_t *a, const char *field, int allow_zero, int *ndim, uint64_t *out)
{
	if (!json_is_array(a))
		return ab_error_set(AB_EFORMAT, "%s must be a list of integers", field);
	size_t n = json_array_size(a);
	if (n > AB_MAX_NDIM)
		return ab_error_set(AB_EUNSUPPORTED, "%s has %zu dimensions (at most %d supported)", field, n,
				    AB_MAX_NDIM);
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(a, i);
		if (!json_is_integer(v))
			return ab_error_set(AB_EFORMAT, "%s[%zu] is not an integer", field, i);
		json_int_t x = json_integer_value(v);
		if (x < 0 || (!allow_zero && x == 0))
			return ab_error_set(AB_EFORMAT, "%s[%zu] = %lld is not %s", field, i, (long long)x,
					    allow_zero ? "a non-negative integer" : "a positive integer");
		if ((uint64_t)x > AB_EXTENT_MAX)
			return ab_error_set(AB_EFORMAT, "%s[%zu] = %lld is too large", field, i, (long long)x);
		out[i] = (uint64_t)x;
	}
	*ndim = (int)n;
	return 0;
}

static int check_grid(ab_array_meta *m)
{
	/* The number of chunks and the bytes of one chunk must fit comfortably. */
	uint64_t items = 1;
	for (int i = 0; i < m->ndim; i++)
		if (ab_mul_u64(items, m->chunk[i], &items))
			return ab_error_set(AB_EFORMAT, "chunk shape overflows");
	uint64_t bytes;
	size_t item = m->dt.disk_size ? m->dt.disk_size : sizeof(char *);
	if (ab_mul_u64(items, item, &bytes) || bytes > ((uint64_t)1 << 40))
		return ab_error_set(AB_EFORMAT, "a chunk of this shape would hold more than 1 TiB");
	/* The whole array's size (and so a row's, which callers compute without
	 * checks) must fit in 63 bits; zero extents are skipped so that an empty
	 * leading axis cannot hide an overflowing row. */
	uint64_t all = item;
	for (int i = 0; i < m->ndim; i++)
		if (m->shape[i] && (ab_mul_u64(all, m->shape[i], &all) || all > (uint64_t)INT64_MAX))
			return ab_error_set(AB_EFORMAT, "shape times the %zu-byte item size overflows 63 bits", item);
	return 0;
}

static int parse_v2(const json_t *doc, ab_array_meta *m)
{
	int rc, nd2;
	const json_t *zf = json_object_get(doc, "zarr_format");
	if (!json_is_integer(zf) || json_integer_value(zf) != 2)
		return ab_error_set(AB_EFORMAT, "zarr_format must be 2");
	if ((rc = parse_extents(json_object_get(doc, "shape"), "shape", 1, &m->ndim, m->shape)))
		return rc;
	if ((rc = parse_extents(json_object_get(doc, "chunks"), "chunks", 0, &nd2, m->chunk)))
		return rc;
	if (nd2 != m->ndim)
		return ab_error_set(AB_EFORMAT, "chunks has %d dimensions but shape has %d", nd2, m->ndim);
	const json_t *dtype = json_object_get(doc, "dtype");
	if (!json_is_string(dtype)) {
		if (json_is_array(dtype))
			return ab_error_set(AB_EUNSUPPORTED, "structured dtypes are not supported");
		return ab_error_set(AB_EFORMAT, "dtype must be a string");
	}
	const json_t *filters = json_object_get(doc, "filters");
	int has_vlen = 0;
	if (json_is_array(filters)) {
		size_t i;
		const json_t *f;
		json_array_foreach(filters, i, f) {
			const char *id = ab_attr_str(f, "id");
			if (id && strcmp(id, "vlen-utf8") == 0)
				has_vlen = 1;
		}
	}
	if ((rc = ab_dtype_parse_v2(json_string_value(dtype), has_vlen, &m->dt)))
		return rc;
	const json_t *order = json_object_get(doc, "order");
	if (order && !json_is_string(order))
		return ab_error_set(AB_EFORMAT, "order must be \"C\" or \"F\"");
	const char *sep = ab_attr_str(doc, "dimension_separator");
	if (sep && strcmp(sep, ".") && strcmp(sep, "/"))
		return ab_error_set(AB_EFORMAT, "dimension_separator '%s' is neither '.' nor '/'", sep);
	m->key_sep = sep ? sep[0] : '.';
	m->key_prefix_c = 0;
	if ((rc = ab_fill_parse(json_object_get(doc, "fill_value"), &m->dt, 2, m->fill, &m->fill_str)))
		return rc;
	if ((rc = ab_pipeline_from_v2(json_object_get(doc, "compressor"), filters,
				      order ? json_string_value(order) : "C", m->ndim, &m->dt, &m->pipe)))
		return rc;
	return check_grid(m);
}

static const char *const v3_known[] = {
	"zarr_format", "node_type", "attributes", "shape", "data_type", "chunk_grid",
	"chunk_key_encoding", "fill_value", "codecs", "dimension_names", "storage_transformers",
	"consolidated_metadata", NULL
};

static int parse_v3(const json_t *doc, ab_array_meta *m)
{
	int rc, nd2;
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)doc, key, v) {
		int known = 0;
		for (int i = 0; v3_known[i]; i++)
			if (strcmp(key, v3_known[i]) == 0)
				known = 1;
		if (known)
			continue;
		/* An extension may be skipped only when it says so. */
		const json_t *mu = json_is_object(v) ? json_object_get(v, "must_understand") : NULL;
		if (!json_is_false(mu))
			return ab_error_set(AB_EUNSUPPORTED, "unknown metadata field '%s' (must be understood)", key);
	}
	const json_t *st = json_object_get(doc, "storage_transformers");
	if (st && !(json_is_array(st) && json_array_size(st) == 0))
		return ab_error_set(AB_EUNSUPPORTED, "storage_transformers are not supported");
	if ((rc = parse_extents(json_object_get(doc, "shape"), "shape", 1, &m->ndim, m->shape)))
		return rc;
	const json_t *dtype = json_object_get(doc, "data_type");
	if (!dtype)
		return ab_error_set(AB_EFORMAT, "data_type is missing");
	if ((rc = ab_dtype_parse_v3_json(dtype, &m->dt)))
		return rc;
	const json_t *grid = json_object_get(doc, "chunk_grid");
	const char *gname = ab_attr_str(grid, "name");
	if (!gname)
		return ab_error_set(AB_EFORMAT, "chunk_grid must name a grid");
	if (strcmp(gname, "regular") != 0)
		return ab_error_set(AB_EUNSUPPORTED, "chunk_grid '%s' is not supported (only regular)", gname);
	const json_t *gcfg = json_object_get(grid, "configuration");
	if ((rc = parse_extents(json_object_get(gcfg, "chunk_shape"), "chunk_grid chunk_shape", 0, &nd2, m->chunk)))
		return rc;
	if (nd2 != m->ndim)
		return ab_error_set(AB_EFORMAT, "chunk_shape has %d dimensions but shape has %d", nd2, m->ndim);
	const json_t *kenc = json_object_get(doc, "chunk_key_encoding");
	const char *kname = ab_attr_str(kenc, "name");
	const char *ksep = ab_attr_str(json_object_get(kenc, "configuration"), "separator");
	if (!kname)
		return ab_error_set(AB_EFORMAT, "chunk_key_encoding must name an encoding");
	if (strcmp(kname, "default") == 0) {
		m->key_prefix_c = 1;
		m->key_sep = ksep ? ksep[0] : '/';
	} else if (strcmp(kname, "v2") == 0) {
		m->key_prefix_c = 0;
		m->key_sep = ksep ? ksep[0] : '.';
	} else {
		return ab_error_set(AB_EUNSUPPORTED, "chunk_key_encoding '%s' is not supported", kname);
	}
	if (ksep && ((ksep[0] != '.' && ksep[0] != '/') || ksep[1]))
		return ab_error_set(AB_EFORMAT, "chunk key separator '%s' is neither '.' nor '/'", ksep);
	if ((rc = ab_fill_parse(json_object_get(doc, "fill_value"), &m->dt, 3, m->fill, &m->fill_str)))
		return rc;
	if ((rc = ab_pipeline_from_v3(json_object_get(doc, "codecs"), m->ndim, m->chunk, &m->dt, &m->pipe)))
		return rc;
	return check_grid(m);
}

int ab_array_meta_parse(const json_t *doc, int zarr_format, const char *what, ab_array_meta *out)
{
	memset(out, 0, sizeof *out);
	out->zarr_format = zarr_format;
	int rc = zarr_format == 2 ? parse_v2(doc, out) : parse_v3(doc, out);
	if (rc) {
		ab_array_meta_free(out);
		return ab_error_prefix(rc, "%s: ", what);
	}
	return 0;
}

void ab_chunk_key(const ab_array_meta *m, const uint64_t *coord, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	if (m->key_prefix_c) {
		n += (size_t)snprintf(buf, size, "c");
		for (int i = 0; i < m->ndim && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%c%llu", m->key_sep, (unsigned long long)coord[i]);
		return;
	}
	if (m->ndim == 0) {
		snprintf(buf, size, "0");
		return;
	}
	for (int i = 0; i < m->ndim && n < size; i++) {
		if (i)
			buf[n++] = m->key_sep;
		if (n < size)
			n += (size_t)snprintf(buf + n, size - n, "%llu", (unsigned long long)coord[i]);
	}
}
