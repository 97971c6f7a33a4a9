/* obs.c - loading obs columns over a loader's datasets. */
#include "obs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "loader_impl.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int rehash(ld_obs_col *c, size_t cap)
{
	uint32_t *h = calloc(cap, sizeof *h);
	if (!h)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_labels; i++) {
		size_t j = (size_t)hash_str(c->labels[i]) & (cap - 1);
		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = (uint32_t)i + 1;
	}
	free(c->hash);
	c->hash = h;
	c->hash_cap = cap;
	return 0;
}

/* The code of `label` in the column's table, adding it if new. */
static int label_code(ld_obs_col *c, const char *label, int32_t *code)
{
	if ((c->n_labels + 1) * 2 > c->hash_cap) {
		int rc = rehash(c, c->hash_cap ? c->hash_cap * 2 : 64);
		if (rc)
			return rc;
	}
	size_t j = (size_t)hash_str(label) & (c->hash_cap - 1);
	while (c->hash[j]) {
		if (strcmp(c->labels[c->hash[j] - 1], label) == 0) {
			*code = (int32_t)(c->hash[j] - 1);
			return 0;
		}
		j = (j + 1) & (c->hash_cap - 1);
	}
	if (c->n_labels >= INT32_MAX)
		return ab_error_set(AB_EUNSUPPORTED, "obs column '%s': too many distinct values", c->name);
	if (c->n_labels == c->cap_labels) {
		size_t nc = c->cap_labels ? c->cap_labels * 2 : 16;
		char **nl = realloc(c->labels, nc * sizeof *nl);
		if (!nl)
			return ab_error_set(AB_ENOMEM, "out of memory");
		c->labels = nl;
		c->cap_labels = nc;
	}
	if (!(c->labels[c->n_labels] = strdup(label)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	c->hash[j] = (uint32_t)c->n_labels + 1;
	*code = (int32_t)c->n_labels++;
	return 0;
}

void ld_obs_free(ld_obs_col *c)
{
	free(c->name);
	free(c->values);
	free(c->codes);
	for (size_t i = 0; i < c->n_labels; i++)
		free(c->labels[i]);
	free(c->labels);
	free(c->hash);
	memset(c, 0, sizeof *c);
}

/* Reads one dataset's column into rows [row0, row0 + n) of the column. */
static int load_source(ld_obs_col *c, const ld_source *s, ab_column *col, int first)
{
	ab_column_info ci;
	ab_column_get_info(col, &ci);
	if (ci.length != s->nrows)
		return ab_error_set(AB_EFORMAT, "obs column '%s' of %s has %llu rows, X has %llu", c->name, s->name,
				    (unsigned long long)ci.length, (unsigned long long)s->nrows);
	int categorical = ci.kind == AB_COL_CATEGORICAL || ci.kind == AB_COL_STRING ||
			  ci.kind == AB_COL_NULLABLE_STRING;
	if (!first && categorical != c->categorical)
		return ab_error_set(AB_EFORMAT, "obs column '%s' is %s in %s but %s in the first dataset", c->name,
				    categorical ? "categorical" : "numeric", s->name,
				    c->categorical ? "categorical" : "numeric");
	c->categorical = categorical;
	size_t n = (size_t)s->nrows;
	int rc = 0;
	if (categorical) {
		char **str;
		size_t cnt;
		if (ci.kind == AB_COL_CATEGORICAL) {
			/* The categories first, in their order: class weights and label
			 * tables follow the categories as stored, not row order. */
			if ((rc = ab_column_categories(col, &str, &cnt)))
				return rc;
			int32_t code;
			for (size_t i = 0; i < cnt && rc == 0; i++)
				rc = label_code(c, str[i], &code);
			ab_strings_free_n(str, cnt);
			if (rc)
				return rc;
		}
		if ((rc = ab_column_read_strings(col, 0, n, &str, &cnt)))
			return rc;
		for (size_t i = 0; i < cnt && rc == 0; i++) {
			if (!str[i])
				c->codes[s->row0 + i] = -1;
			else
				rc = label_code(c, str[i], &c->codes[s->row0 + i]);
		}
		ab_strings_free_n(str, cnt);
		return rc;
	}
	size_t isz = ab_dtype_size(ci.dtype);
	void *buf = malloc(n * isz + 8);
	uint8_t *mask = malloc(n + 1);
	if (!buf || !mask) {
		free(buf);
		free(mask);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	rc = ab_column_read(col, 0, n, buf, n * isz, mask);
	for (size_t i = 0; rc == 0 && i < n; i++)
		c->values[s->row0 + i] = mask[i] ? NAN : ab_value_as_double(ci.dtype, buf, i);
	free(buf);
	free(mask);
	return rc;
}

int ld_obs_load(ab_loader *ld, const char *name, ld_obs_col *out)
{
	memset(out, 0, sizeof *out);
	if (!(out->name = strdup(name)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t n = (size_t)ld->nrows;
	out->values = malloc((n ? n : 1) * sizeof *out->values);
	out->codes = malloc((n ? n : 1) * sizeof *out->codes);
	int rc = 0;
	if (!out->values || !out->codes)
		rc = ab_error_set(AB_ENOMEM, "out of memory for obs column '%s'", name);
	for (size_t i = 0; rc == 0 && i < ld->nsrc; i++) {
		const ld_source *s = &ld->src[i];
		if (!s->ad_node) {
			rc = ab_error_set(AB_EINVAL, "obs column '%s': %s is not an AnnData dataset", name, s->name);
			break;
		}
		ab_anndata *ad;
		if ((rc = ab_anndata_open(s->store, s->ad_node, &ad)))
			break;
		ab_column *col;
		rc = ab_anndata_obs_column(ad, name, &col);
		if (rc == AB_ENOENT)
			rc = ab_error_set(AB_ENOENT, "%s has no obs column '%s'", s->name, name);
		if (rc == 0) {
			rc = load_source(out, s, col, i == 0);
			ab_column_close(col);
		}
		ab_anndata_close(ad);
	}
	if (rc) {
		ld_obs_free(out);
		return rc;
	}
	/* Keep only the representation in use. */
	if (out->categorical) {
		free(out->values);
		out->values = NULL;
	} else {
		free(out->codes);
		out->codes = NULL;
	}
	return 0;
}
