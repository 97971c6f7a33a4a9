/* column.c - AnnData dataframe columns: arrays, string arrays, categoricals and
 * nullable integer / boolean / string arrays. */
#include "column.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anndata.h"
#include "array.h"
#include "h5ad.h"
#include "last_error.h"
#include "value.h"

struct ab_column {
	char *node;
	ab_column_kind kind;
	ab_array *values;     /* the array; codes; nullable values */
	ab_array *mask;       /* nullable kinds                    */
	ab_array *categories; /* categoricals                      */
	int ordered;
	char **labels;        /* categories as strings, loaded lazily */
	size_t nlabels;
	ab_buf tmp;
	h5ad_col *h5;         /* a column of an .h5ad file: the calls go there */
};

int ab_column_wrap_h5ad(h5ad_col *h5, ab_column **out)
{
	ab_column *c = calloc(1, sizeof *c);
	if (!c) {
		h5ad_column_close(h5);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	c->h5 = h5;
	ab_column_info ci;
	h5ad_column_get_info(h5, &ci);
	c->kind = ci.kind;
	c->ordered = ci.ordered;
	if (!(c->node = strdup(h5ad_column_name(h5)))) {
		ab_column_close(c);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

int ab_category_label(ab_dtype dt, const void *items, size_t i, char **out)
{
	char buf[64];
	if (dt == AB_DT_BOOL)
		snprintf(buf, sizeof buf, "%s", ((const uint8_t *)items)[i] ? "true" : "false");
	else if (dt == AB_DT_UINT64)
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)items)[i]);
	else if (ab_dtype_is_integer(dt))
		snprintf(buf, sizeof buf, "%lld", (long long)ab_value_as_int64(dt, items, i));
	else
		snprintf(buf, sizeof buf, "%.17g", ab_value_as_double(dt, items, i));
	if (!(*out = strdup(buf)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	return 0;
}

int ab_codes_to_labels(const int64_t *codes, size_t n, char *const *labels, size_t nlabels, const char *what,
		       uint64_t row0, char **out)
{
	for (size_t i = 0; i < n; i++) {
		if (codes[i] < 0)
			continue;
		if ((uint64_t)codes[i] >= nlabels)
			return ab_error_set(AB_ECORRUPT, "categorical '%s': code %lld at row %llu is outside its %zu "
					    "categories", what, (long long)codes[i], (unsigned long long)(row0 + i),
					    nlabels);
		if (!(out[i] = strdup(labels[codes[i]])))
			return ab_error_set(AB_ENOMEM, "out of memory");
	}
	return 0;
}

int ab_strings_copy(char *const *src, size_t n, char ***out)
{
	char **c = calloc(n + 1, sizeof *c);
	if (!c)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (src[i] && !(c[i] = strdup(src[i]))) {
			ab_strings_free_n(c, i);
			return ab_error_set(AB_ENOMEM, "out of memory");
		}
	*out = c;
	return 0;
}

int ab_column_encoding_kind(const char *encoding, ab_column_kind *kind)
{
	static const struct { const char *enc; ab_column_kind kind; } tab[] = {
		{ "categorical", AB_COL_CATEGORICAL },
		{ "nullable-integer", AB_COL_NULLABLE_INTEGER },
		{ "nullable-boolean", AB_COL_NULLABLE_BOOLEAN },
		{ "nullable-string-array", AB_COL_NULLABLE_STRING },
	};
	for (size_t i = 0; encoding && i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(encoding, tab[i].enc) == 0) {
			*kind = tab[i].kind;
			return 0;
		}
	return -1;
}

int ab_column_open(ab_store *s, const char *node_in, ab_column **out)
{
	if (!s || !out)
		return ab_error_set(AB_EINVAL, "ab_column_open: null argument");
	char *node;
	int rc = ab_node_normalize(node_in, &node);
	if (rc)
		return rc;
	ab_column *c = calloc(1, sizeof *c);
	if (!c) {
		free(node);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	c->node = node;
	ab_node_type t;
	char *enc = NULL;
	json_t *attrs = NULL;
	if ((rc = ab_node_encoding(s, node, &t, &enc, &attrs)))
		goto fail;
	ab_column_kind group_kind;
	int known = ab_column_encoding_kind(enc, &group_kind) == 0;
	if (t == AB_NODE_ARRAY) {
		if ((rc = ab_array_open_norm(s, node, &c->values)))
			goto fail;
		c->kind = c->values->m.dt.dt == AB_DT_STRING ? AB_COL_STRING : AB_COL_ARRAY;
		if (c->values->m.ndim != 1) {
			rc = ab_error_set(AB_EFORMAT, "column '%s' must be 1-D (it has %d dimensions)", node,
					  c->values->m.ndim);
			goto fail;
		}
	} else if (known && group_kind == AB_COL_CATEGORICAL) {
		c->kind = AB_COL_CATEGORICAL;
		if ((rc = ab_array_open_child(s, node, "codes", &c->values)) ||
		    (rc = ab_array_open_child(s, node, "categories", &c->categories)))
			goto fail;
		if (!ab_dtype_is_integer(c->values->m.dt.dt) || c->values->m.ndim != 1 ||
		    c->categories->m.ndim != 1) {
			rc = ab_error_set(AB_EFORMAT, "categorical '%s': codes must be 1-D integers and "
					  "categories 1-D", node);
			goto fail;
		}
		c->ordered = json_is_true(json_object_get(attrs, "ordered"));
	} else if (known) { /* the nullable kinds */
		c->kind = group_kind;
		if ((rc = ab_array_open_child(s, node, "values", &c->values)) ||
		    (rc = ab_array_open_child(s, node, "mask", &c->mask)))
			goto fail;
		if (c->values->m.ndim != 1 || c->mask->m.ndim != 1 ||
		    c->mask->m.shape[0] != c->values->m.shape[0] || c->mask->m.dt.dt != AB_DT_BOOL) {
			rc = ab_error_set(AB_EFORMAT, "%s '%s': values and mask must be 1-D of one length, "
					  "mask bool", enc, node);
			goto fail;
		}
		if ((c->kind == AB_COL_NULLABLE_STRING) != (c->values->m.dt.dt == AB_DT_STRING)) {
			rc = ab_error_set(AB_EFORMAT, "%s '%s': values have dtype %s", enc, node,
					  c->values->m.dt.name);
			goto fail;
		}
	} else {
		rc = ab_error_set(AB_ETYPE, "node '%s' is a %s group, not a dataframe column", node,
				  enc ? enc : "plain");
		goto fail;
	}
	free(enc);
	json_decref(attrs);
	*out = c;
	return 0;
fail:
	free(enc);
	json_decref(attrs);
	ab_column_close(c);
	return rc;
}

void ab_column_close(ab_column *c)
{
	if (!c)
		return;
	h5ad_column_close(c->h5);
	ab_array_close(c->values);
	ab_array_close(c->mask);
	ab_array_close(c->categories);
	ab_strings_free_n(c->labels, c->nlabels);
	ab_buf_free(&c->tmp);
	free(c->node);
	free(c);
}

int ab_column_get_info(const ab_column *c, ab_column_info *info)
{
	if (!c || !info)
		return ab_error_set(AB_EINVAL, "ab_column_get_info: null argument");
	if (c->h5) {
		h5ad_column_get_info(c->h5, info);
		return 0;
	}
	memset(info, 0, sizeof *info);
	info->kind = c->kind;
	info->length = c->values->m.shape[0];
	info->dtype = c->values->m.dt.dt;
	if (c->categories) {
		info->categories_dtype = c->categories->m.dt.dt;
		info->n_categories = c->categories->m.shape[0];
		info->ordered = c->ordered;
	}
	return 0;
}

/* ---- the two kinds of column behind the calls below: a zarr column's
 * arrays, or a column of an .h5ad file (c->h5). What a kind means (masks,
 * codes to labels, NaT) is decided once, in the public calls. */

static uint64_t col_length(const ab_column *c)
{
	ab_column_info ci;
	ab_column_get_info(c, &ci);
	return ci.length;
}

static int col_values(ab_column *c, uint64_t start, uint64_t end, void *dst, size_t dst_size)
{
	return c->h5 ? h5ad_column_read_values(c->h5, start, end, dst, dst_size)
		     : ab_array_read_rows(c->values, start, end, dst, dst_size);
}

/* The mask of a nullable column (1 = missing); 0 with mask untouched for
 * the other kinds. */
static int col_mask(ab_column *c, uint64_t start, uint64_t end, uint8_t *mask, int *has)
{
	*has = c->kind == AB_COL_NULLABLE_INTEGER || c->kind == AB_COL_NULLABLE_BOOLEAN ||
	       c->kind == AB_COL_NULLABLE_STRING;
	if (!*has)
		return 0;
	return c->h5 ? h5ad_column_read_mask(c->h5, start, end, mask)
		     : ab_array_read_rows(c->mask, start, end, mask, (size_t)(end - start));
}

static int col_strings(ab_column *c, uint64_t start, uint64_t end, char ***out, size_t *n)
{
	if (c->h5) {
		*n = (size_t)(end - start);
		return h5ad_column_read_raw_strings(c->h5, start, end, out);
	}
	return ab_array_read_strings(c->values, start, end, out, n);
}

static int col_codes(ab_column *c, uint64_t start, uint64_t end, int64_t *codes)
{
	return c->h5 ? h5ad_column_read_codes(c->h5, start, end, codes)
		     : ab_array_read_int64(c->values, start, end, codes, &c->tmp);
}

static int load_labels(ab_column *c);

/* The categories as strings (owned by the column). */
static int col_labels(ab_column *c, char *const **labels, size_t *n)
{
	if (c->h5)
		return h5ad_column_labels(c->h5, labels, n);
	int rc = load_labels(c);
	*labels = c->labels;
	*n = c->nlabels;
	return rc;
}

int ab_column_read(ab_column *c, uint64_t start, uint64_t end, void *dst, size_t dst_size, uint8_t *mask)
{
	if (!c)
		return ab_error_set(AB_EINVAL, "ab_column_read: null argument");
	ab_column_info ci;
	ab_column_get_info(c, &ci);
	if (ci.dtype == AB_DT_STRING)
		return ab_error_set(AB_ETYPE, "column '%s' holds strings: use ab_column_read_strings", c->node);
	int rc = col_values(c, start, end, dst, dst_size), has;
	if (rc || !mask)
		return rc;
	size_t n = (size_t)(end - start);
	if ((rc = col_mask(c, start, end, mask, &has)) || has)
		return rc;
	if (c->kind == AB_COL_CATEGORICAL) {
		for (size_t i = 0; i < n; i++)
			mask[i] = ab_value_as_int64(ci.dtype, dst, i) < 0;
		return 0;
	}
	if (c->values && c->values->m.dt.time) {
		/* datetime64 / timedelta64: NaT (INT64_MIN) is numpy's missing value */
		for (size_t i = 0; i < n; i++)
			mask[i] = ab_value_as_int64(AB_DT_INT64, dst, i) == INT64_MIN;
		return 0;
	}
	memset(mask, 0, n);
	return 0;
}

static int load_labels(ab_column *c)
{
	if (c->labels)
		return 0;
	uint64_t n = c->categories->m.shape[0];
	if (c->categories->m.dt.dt == AB_DT_STRING) {
		size_t cnt;
		int rc = ab_array_read_strings(c->categories, 0, n, &c->labels, &cnt);
		if (rc == 0)
			c->nlabels = cnt;
		return rc;
	}
	ab_dtype dt = c->categories->m.dt.dt;
	size_t isz = ab_dtype_size(dt);
	int rc = ab_buf_reserve(&c->tmp, (size_t)n * isz + 1);
	if (rc || (rc = ab_array_read_rows(c->categories, 0, n, c->tmp.data, (size_t)n * isz)))
		return rc;
	char **l = calloc((size_t)n + 1, sizeof *l);
	if (!l)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if ((rc = ab_category_label(dt, c->tmp.data, i, &l[i]))) {
			ab_strings_free_n(l, i);
			return rc;
		}
	c->labels = l;
	c->nlabels = (size_t)n;
	return 0;
}

int ab_column_categories(ab_column *c, char ***strings, size_t *count)
{
	if (!c || !strings)
		return ab_error_set(AB_EINVAL, "ab_column_categories: null argument");
	if (c->kind != AB_COL_CATEGORICAL)
		return ab_error_set(AB_ETYPE, "column '%s' is not categorical", c->node);
	char *const *labels;
	size_t n;
	int rc = col_labels(c, &labels, &n);
	if (rc || (rc = ab_strings_copy(labels, n, strings)))
		return rc;
	if (count)
		*count = n;
	return 0;
}

int ab_column_read_strings(ab_column *c, uint64_t start, uint64_t end, char ***strings, size_t *count)
{
	if (!c || !strings)
		return ab_error_set(AB_EINVAL, "ab_column_read_strings: null argument");
	if (c->kind != AB_COL_STRING && c->kind != AB_COL_NULLABLE_STRING && c->kind != AB_COL_CATEGORICAL)
		return ab_error_set(AB_ETYPE, "column '%s' is numeric: use ab_column_read", c->node);
	if (start > end || end > col_length(c))
		return ab_error_set(AB_ERANGE, "rows %llu:%llu out of range for column '%s'", (unsigned long long)start,
				    (unsigned long long)end, c->node);
	size_t n = (size_t)(end - start);
	int rc, has;
	if (c->kind != AB_COL_CATEGORICAL) {
		char **s;
		size_t got;
		if ((rc = col_strings(c, start, end, &s, &got)))
			return rc;
		uint8_t *m = c->kind == AB_COL_NULLABLE_STRING ? malloc(n + 1) : NULL;
		if (c->kind == AB_COL_NULLABLE_STRING && !m)
			rc = ab_error_set(AB_ENOMEM, "out of memory");
		else if (m && !(rc = col_mask(c, start, end, m, &has)))
			for (size_t i = 0; i < n; i++)
				if (m[i]) {
					free(s[i]);
					s[i] = NULL;
				}
		free(m);
		if (rc) {
			ab_strings_free_n(s, got);
			return rc;
		}
		*strings = s;
		if (count)
			*count = got;
		return 0;
	}
	char *const *labels;
	size_t nlabels;
	if ((rc = col_labels(c, &labels, &nlabels)))
		return rc;
	int64_t *codes = malloc(n * 8 + 8);
	char **out = calloc(n + 1, sizeof *out);
	if (!codes || !out) {
		free(codes);
		free(out);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	rc = col_codes(c, start, end, codes);
	if (!rc)
		rc = ab_codes_to_labels(codes, n, labels, nlabels, c->node, start, out);
	free(codes);
	if (rc) {
		ab_strings_free_n(out, n);
		return rc;
	}
	*strings = out;
	if (count)
		*count = n;
	return 0;
}
