/* anndata_write.c - AnnData nodes (groups, dataframes, columns) over the zarr
 * writer, with the encoding attributes anndata puts on each (see annbatch.h,
 * "Writing AnnData"). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"
#include "util.h"

void ab_anndata_write_config_init(ab_anndata_write_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->compressor = AB_COMPRESSOR_BLOSC_LZ4;
	cfg->level = -1;
	cfg->n_obs_per_chunk = 64;
	cfg->shard_bytes = 1000000000ull;
}

uint64_t ab_anndata_shard_rows(const ab_anndata_write_config *o, uint64_t chunk_rows, uint64_t row_bytes,
			       double rows_per_obs)
{
	if (!o || !chunk_rows)
		return 0;
	if (o->shard_rows) {
		double want = (double)o->shard_rows * (rows_per_obs > 0 ? rows_per_obs : 1);
		double k = ceil(want / (double)chunk_rows);
		return (uint64_t)(k < 1 ? 1 : k) * chunk_rows;
	}
	if (!o->shard_bytes)
		return 0;
	uint64_t chunk_bytes = chunk_rows * (row_bytes ? row_bytes : 1);
	uint64_t k = o->shard_bytes / (chunk_bytes ? chunk_bytes : 1);
	return (k ? k : 1) * chunk_rows;
}

static int group_json(ab_writer *w, const char *node, json_t *attrs)
{
	char *text = json_dumps(attrs, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(attrs);
	if (!text)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = ab_writer_group(w, node, text);
	free(text);
	return rc;
}

int ab_writer_anndata_group(ab_writer *w, const char *node)
{
	if (!w || !node)
		return ab_error_set(AB_EINVAL, "ab_writer_anndata_group: null argument");
	int rc = group_json(w, node, json_pack("{s:s, s:s}", "encoding-type", "anndata",
					       "encoding-version", "0.1.0"));
	static const char *const empties[] = { "layers", "obsm", "obsp", "uns", "varm", "varp" };
	for (size_t i = 0; !rc && i < sizeof empties / sizeof empties[0]; i++) {
		char *p = ab_path_join(node, empties[i]);
		if (!p)
			return ab_error_set(AB_ENOMEM, "out of memory");
		rc = group_json(w, p, json_pack("{s:s, s:s}", "encoding-type", "dict",
						"encoding-version", "0.1.0"));
		free(p);
	}
	return rc;
}

int ab_writer_dataframe_group(ab_writer *w, const char *node, const char *const *columns, size_t n)
{
	if (!w || !node || (n && !columns))
		return ab_error_set(AB_EINVAL, "ab_writer_dataframe_group: null argument");
	json_t *order = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(order, json_string(columns[i]));
	return group_json(w, node, json_pack("{s:s, s:o, s:s, s:s}", "_index", "_index",
					     "column-order", order, "encoding-type", "dataframe",
					     "encoding-version", "0.2.0"));
}

int ab_writer_csr_group(ab_writer *w, const char *node, uint64_t n_rows, uint64_t n_cols)
{
	if (!w || !node)
		return ab_error_set(AB_EINVAL, "ab_writer_csr_group: null argument");
	return group_json(w, node, json_pack("{s:s, s:s, s:[I, I]}", "encoding-type", "csr_matrix",
					     "encoding-version", "0.1.0", "shape",
					     (json_int_t)n_rows, (json_int_t)n_cols));
}

int ab_writer_anndata_array(ab_writer *w, const char *node, ab_dtype dt, int ndim, const uint64_t *shape,
	      uint64_t chunk_rows, uint64_t shard_rows, const ab_anndata_write_config *o, const char *attrs,
	      ab_writer_array **out)
{
	if (!w || !node || !out || (ndim > 0 && !shape))
		return ab_error_set(AB_EINVAL, "ab_writer_anndata_array: null argument");
	ab_anndata_write_config def;
	if (!o) {
		ab_anndata_write_config_init(&def);
		o = &def;
	}
	ab_writer_array_config c;
	ab_writer_array_config_init(&c);
	c.dtype = dt;
	c.ndim = ndim;
	for (int d = 0; d < ndim; d++)
		c.shape[d] = shape[d];
	c.chunk_rows = chunk_rows ? chunk_rows : 1;
	c.shard_rows = shard_rows;
	c.compressor = o->compressor;
	c.level = o->level;
	c.blosc_blocksize = o->blosc_blocksize;
	c.blosc_unsplit = o->blosc_unsplit;
	c.attributes_json = attrs;
	return ab_writer_array_create(w, node, &c, out);
}

static const char *enc_attrs(const char *encoding)
{
	if (strcmp(encoding, "string-array") == 0)
		return "{\"encoding-type\":\"string-array\",\"encoding-version\":\"0.2.0\"}";
	return "{\"encoding-type\":\"array\",\"encoding-version\":\"0.2.0\"}";
}

/* One chunk for a small array, bounded so a huge column is still chunked. */
static uint64_t small_chunk(uint64_t n)
{
	const uint64_t cap = (uint64_t)1 << 20;
	return n == 0 ? 1 : n > cap ? cap : n;
}

int ab_writer_numeric_column(ab_writer *w, const char *node, ab_dtype dt, const void *values,
		      uint64_t n, const ab_anndata_write_config *o, const char *encoding)
{
	if (!w || !node || (n && !values))
		return ab_error_set(AB_EINVAL, "ab_writer_numeric_column: null argument");
	ab_writer_array *a;
	uint64_t shape[1] = { n };
	int rc = ab_writer_anndata_array(w, node, dt, 1, shape, small_chunk(n), 0, o,
			   encoding ? enc_attrs(encoding) : NULL, &a);
	if (rc)
		return rc;
	rc = ab_writer_array_append(a, values, n);
	int rc2 = ab_writer_array_close(a);
	return rc ? rc : rc2;
}

int ab_writer_string_column(ab_writer *w, const char *node, const char *const *values, uint64_t n,
		      const ab_anndata_write_config *o)
{
	if (!w || !node || (n && !values))
		return ab_error_set(AB_EINVAL, "ab_writer_string_column: null argument");
	ab_writer_array *a;
	uint64_t shape[1] = { n };
	int rc = ab_writer_anndata_array(w, node, AB_DT_STRING, 1, shape, small_chunk(n), 0, o,
			   enc_attrs("string-array"), &a);
	if (rc)
		return rc;
	rc = ab_writer_array_append_strings(a, values, n);
	int rc2 = ab_writer_array_close(a);
	return rc ? rc : rc2;
}

int ab_writer_categorical_column(ab_writer *w, const char *node, const int32_t *codes, uint64_t n,
			  const char *const *categories, uint64_t n_categories, int ordered,
			  const ab_anndata_write_config *o)
{
	if (!w || !node || (n && !codes) || (n_categories && !categories))
		return ab_error_set(AB_EINVAL, "ab_writer_categorical_column: null argument");
	int rc = group_json(w, node, json_pack("{s:s, s:s, s:b}", "encoding-type", "categorical",
					       "encoding-version", "0.2.0", "ordered", ordered));
	if (rc)
		return rc;
	char *cp = ab_path_join(node, "codes"), *kp = ab_path_join(node, "categories");
	void *narrow = NULL;
	if (!cp || !kp) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto out;
	}
	/* anndata stores codes in the narrowest signed type that holds them. */
	ab_dtype dt = n_categories < 128 ? AB_DT_INT8 : n_categories < 32768 ? AB_DT_INT16 : AB_DT_INT32;
	narrow = malloc(n ? n * ab_dtype_size(dt) : 1);
	if (!narrow) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (dt == AB_DT_INT8)
			((int8_t *)narrow)[i] = (int8_t)codes[i];
		else if (dt == AB_DT_INT16)
			((int16_t *)narrow)[i] = (int16_t)codes[i];
		else
			((int32_t *)narrow)[i] = codes[i];
	}
	rc = ab_writer_numeric_column(w, cp, dt, narrow, n, o, "array");
	if (!rc)
		rc = ab_writer_string_column(w, kp, categories, n_categories, o);
out:
	free(narrow);
	free(cp);
	free(kp);
	return rc;
}

