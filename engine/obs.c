/* obs.c - loading obs columns over a loader's datasets (its sources). */
#include "obs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"
#include "sources.h"
#include "value.h"

/* The code of `label` in the column's table, adding it if new. */
static int label_code(ld_obs_col *c, const char *label, int32_t *code)
{
	int64_t k = ab_strtab_find(&c->labels, label);
	if (k < 0) {
		if (c->labels.n >= INT32_MAX)
			return ab_error_set(AB_EUNSUPPORTED, "obs column '%s': too many distinct values", c->name);
		if ((k = ab_strtab_add(&c->labels, label)) < 0)
			return ab_error_set(AB_ENOMEM, "out of memory");
	}
	*code = (int32_t)k;
	return 0;
}

void ld_obs_free(ld_obs_col *c)
{
	free(c->name);
	free(c->values);
	free(c->codes);
	ab_strtab_free(&c->labels);
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

int ld_obs_load(const ld_source *src, size_t nsrc, uint64_t nrows, const char *name, ld_obs_col *out)
{
	memset(out, 0, sizeof *out);
	if (!(out->name = strdup(name)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t n = (size_t)nrows;
	out->values = malloc((n ? n : 1) * sizeof *out->values);
	out->codes = malloc((n ? n : 1) * sizeof *out->codes);
	int rc = 0;
	if (!out->values || !out->codes)
		rc = ab_error_set(AB_ENOMEM, "out of memory for obs column '%s'", name);
	for (size_t i = 0; rc == 0 && i < nsrc; i++) {
		const ld_source *s = &src[i];
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

/* ------------------------------------------------- class weights by label */

void ld_label_weights_free(ld_label_weights *lw)
{
	for (size_t i = 0; i < lw->n; i++)
		free(lw->labels[i]);
	free(lw->labels);
	free(lw->weights);
	memset(lw, 0, sizeof *lw);
}

int ld_label_weights_set(ld_label_weights *lw, const char *const *labels, const double *weights, size_t n,
			 const double *rest)
{
	ld_label_weights_free(lw);
	if (rest && (!isfinite(*rest) || *rest < 0))
		return ab_error_set(AB_EINVAL, "the weight of the classes not named is %g: weights must be finite "
				    "and >= 0", *rest);
	for (size_t i = 0; i < n; i++) {
		if (!labels[i])
			return ab_error_set(AB_EINVAL, "class weight %zu has a NULL label", i);
		if (!isfinite(weights[i]) || weights[i] < 0)
			return ab_error_set(AB_EINVAL, "class weight of '%s' is %g: weights must be finite and >= 0",
					    labels[i], weights[i]);
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0)
				return ab_error_set(AB_EINVAL, "class '%s' is given a weight twice", labels[i]);
	}
	lw->labels = calloc(n ? n : 1, sizeof *lw->labels);
	lw->weights = malloc((n ? n : 1) * sizeof *lw->weights);
	if (!lw->labels || !lw->weights) {
		ld_label_weights_free(lw);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (!(lw->labels[i] = strdup(labels[i]))) {
			lw->n = i;
			ld_label_weights_free(lw);
			return ab_error_set(AB_ENOMEM, "out of memory");
		}
		lw->weights[i] = weights[i];
	}
	lw->n = n;
	lw->has_rest = rest != NULL;
	lw->rest = rest ? *rest : 0;
	return 0;
}

/* Appends "'name'" to a list in `buf` (", " between), "..." once full. */
static void list_add(char *buf, size_t cap, size_t *count, const char *name)
{
	size_t len = strlen(buf);
	if (len + 8 >= cap)
		return;
	int n = snprintf(buf + len, cap - len, "%s'%s'", (*count)++ ? ", " : "", name);
	if (n < 0 || (size_t)n >= cap - len)
		snprintf(buf + (cap > 8 ? cap - 8 : 0), 8, ", ...");
}

int ld_obs_weights_by_label(const ld_obs_col *c, const ld_label_weights *lw, double **out)
{
	*out = NULL;
	double *w = malloc((c->labels.n ? c->labels.n : 1) * sizeof *w);
	unsigned char *named = calloc(c->labels.n ? c->labels.n : 1, 1);
	if (!w || !named) {
		free(w);
		free(named);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	char bad[512] = "";
	size_t nbad = 0;
	for (size_t i = 0; i < c->labels.n; i++)
		w[i] = lw->rest;
	for (size_t i = 0; i < lw->n; i++) {
		int64_t k = ab_strtab_find(&c->labels, lw->labels[i]);
		if (k < 0) {
			list_add(bad, sizeof bad, &nbad, lw->labels[i]);
			continue;
		}
		w[k] = lw->weights[i];
		named[k] = 1;
	}
	int rc = 0;
	if (nbad) {
		char known[512] = "";
		size_t nk = 0;
		for (size_t i = 0; i < c->labels.n; i++)
			list_add(known, sizeof known, &nk, c->labels.names[i]);
		rc = ab_error_set(AB_EINVAL, "class weights name %s, not %s of column '%s' (its classes: %s)", bad,
				  nbad > 1 ? "classes" : "a class", c->name, known);
	} else if (!lw->has_rest) {
		for (size_t i = 0; i < c->labels.n; i++)
			if (!named[i])
				list_add(bad, sizeof bad, &nbad, c->labels.names[i]);
		if (nbad)
			rc = ab_error_set(AB_EINVAL, "class weights give no weight to %s of column '%s': name every "
					  "class, or give the others a weight (*=W)", bad, c->name);
	}
	free(named);
	if (rc) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}
