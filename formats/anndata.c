/* anndata.c - AnnData groups and annbatch collections. */
#include "anndata.h"

#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "h5ad.h"
#include "column.h"
#include "last_error.h"
#include "sparse.h"

struct ab_anndata {
	ab_store *store;
	char *node;
	ab_array *xd;
	ab_csr *xs;
	ab_anndata_info info;
	char **obs_cols, **var_cols;
	char *obs_index, *var_index; /* names of the _index arrays */
	h5ad *h5;                    /* an .h5ad file: the calls go there */
	ab_store *owned;             /* opened by ab_anndata_open_path    */
};

int ab_node_encoding(ab_store *s, const char *node, ab_node_type *type, char **enc, json_t **attrs)
{
	ab_node_meta m;
	int rc = ab_store_node_meta(s, node, &m);
	if (rc)
		return rc;
	if (type)
		*type = m.type;
	const char *e = ab_attr_str(m.attrs, "encoding-type");
	*enc = e ? strdup(e) : NULL;
	if (attrs)
		*attrs = json_incref(m.attrs);
	ab_node_meta_release(&m);
	return 0;
}

/* Reads a dataframe group's column-order and _index attributes. A missing
 * dataframe gives no columns (var may be absent in hand-made stores). */
static int load_dataframe(ab_store *s, const char *ad, const char *name, char ***cols, size_t *ncols,
			  char **index)
{
	char *node = ab_path_join(ad, name);
	if (!node)
		return ab_error_set(AB_ENOMEM, "out of memory");
	ab_node_meta m;
	int rc = ab_store_node_meta(s, node, &m);
	*cols = calloc(1, sizeof(char *));
	*ncols = 0;
	*index = NULL;
	if (!*cols) {
		free(node);
		if (rc == 0)
			ab_node_meta_release(&m);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	if (rc == AB_ENOENT) {
		free(node);
		return 0;
	}
	if (rc) {
		free(node);
		return rc;
	}
	const char *enc = ab_attr_str(m.attrs, "encoding-type");
	if (m.type != AB_NODE_GROUP || (enc && strcmp(enc, "dataframe") != 0)) {
		rc = ab_error_set(AB_EFORMAT, "'%s' must be a dataframe group", node);
		goto out;
	}
	const char *idx = ab_attr_str(m.attrs, "_index");
	*index = strdup(idx ? idx : "_index");
	const json_t *order = json_object_get(m.attrs, "column-order");
	size_t n = json_is_array(order) ? json_array_size(order) : 0;
	char **c = realloc(*cols, (n + 1) * sizeof *c);
	if (!c || !*index) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto out;
	}
	*cols = c;
	c[0] = NULL;
	if (json_is_string(order)) {
		/* Some writers store a single column name as a bare string. */
		c = realloc(*cols, 2 * sizeof *c);
		if (!c) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto out;
		}
		*cols = c;
		c[0] = strdup(json_string_value(order));
		c[1] = NULL;
		*ncols = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(order, i);
		if (!json_is_string(v)) {
			rc = ab_error_set(AB_EFORMAT, "'%s': column-order must list strings", node);
			goto out;
		}
		c[i] = strdup(json_string_value(v));
		c[i + 1] = NULL;
		*ncols = i + 1;
	}
out:
	ab_node_meta_release(&m);
	free(node);
	return rc;
}

int ab_anndata_open(ab_store *s, const char *node_in, ab_anndata **out)
{
	if (!s || !out)
		return ab_error_set(AB_EINVAL, "ab_anndata_open: null argument");
	char *node;
	int rc = ab_node_normalize(node_in, &node);
	if (rc)
		return rc;
	ab_anndata *ad = calloc(1, sizeof *ad);
	if (!ad) {
		free(node);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	ad->store = s;
	ad->node = node;
	ab_node_type t;
	char *enc = NULL, *xenc = NULL, *xnode = NULL;
	if ((rc = ab_node_encoding(s, node, &t, &enc, NULL)))
		goto fail;
	if (t != AB_NODE_GROUP || (enc && strcmp(enc, "anndata") != 0)) {
		rc = ab_error_set(AB_ETYPE, "node '%s' is not an AnnData group (encoding-type %s)",
				  *node ? node : "/", enc ? enc : (t == AB_NODE_ARRAY ? "array" : "none"));
		goto fail;
	}
	if (!(xnode = ab_path_join(node, "X"))) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	ab_node_type xt;
	if ((rc = ab_node_encoding(s, xnode, &xt, &xenc, NULL))) {
		if (rc == AB_ENOENT)
			ab_error_set(rc, "AnnData '%s' has no X", *node ? node : "/");
		goto fail;
	}
	if (xt == AB_NODE_ARRAY) {
		if ((rc = ab_array_open_norm(s, xnode, &ad->xd)))
			goto fail;
		if (ad->xd->m.dt.dt == AB_DT_STRING) {
			rc = ab_error_set(AB_EFORMAT, "AnnData X '%s' holds strings", xnode);
			goto fail;
		}
		ad->info.x_kind = AB_X_DENSE;
		ad->info.x_dtype = ad->xd->m.dt.dt;
		ad->info.n_obs = ab_array_nrows(ad->xd);
		ad->info.n_vars = ad->xd->m.ndim >= 2 ? ad->xd->m.shape[1] : 1;
	} else {
		if ((rc = ab_csr_open(s, xnode, &ad->xs)))
			goto fail;
		ab_csr_info ci;
		ab_csr_get_info(ad->xs, &ci);
		ad->info.x_kind = ci.format == AB_SPARSE_CSR ? AB_X_CSR : AB_X_CSC;
		ad->info.x_dtype = ci.data_dtype;
		ad->info.n_obs = ci.n_rows;
		ad->info.n_vars = ci.n_cols;
	}
	if ((rc = load_dataframe(s, node, "obs", &ad->obs_cols, &ad->info.n_obs_columns, &ad->obs_index)) ||
	    (rc = load_dataframe(s, node, "var", &ad->var_cols, &ad->info.n_var_columns, &ad->var_index)))
		goto fail;
	free(enc);
	free(xenc);
	free(xnode);
	*out = ad;
	return 0;
fail:
	free(enc);
	free(xenc);
	free(xnode);
	ab_anndata_close(ad);
	return rc;
}

int ab_anndata_open_path(const char *path, ab_anndata **out)
{
	if (!path || !out)
		return ab_error_set(AB_EINVAL, "ab_anndata_open_path: null argument");
	*out = NULL;
	int rc;
	if (h5ad_is_hdf5(path)) {
		ab_anndata *ad = calloc(1, sizeof *ad);
		if (!ad)
			return ab_error_set(AB_ENOMEM, "out of memory");
		if ((rc = h5ad_open(path, &ad->h5))) {
			free(ad);
			return rc;
		}
		h5ad_get_info(ad->h5, &ad->info);
		*out = ad;
		return 0;
	}
	ab_store *s;
	if ((rc = ab_store_open(path, &s)))
		return rc;
	if ((rc = ab_anndata_open(s, "", out))) {
		ab_store_close(s);
		return rc;
	}
	(*out)->owned = s;
	return 0;
}

int ab_anndata_is_h5ad(const ab_anndata *ad)
{
	return ad && ad->h5;
}

int ab_anndata_x_reader(const ab_anndata *ad, ab_anndata **out)
{
	if (!ad || !out)
		return ab_error_set(AB_EINVAL, "ab_anndata_x_reader: null argument");
	*out = NULL;
	if (ad->h5)
		return ab_error_set(AB_EUNSUPPORTED, "an .h5ad has no second reader (libhdf5 is not thread-safe)");
	if (!ad->xd && !ad->xs)
		return ab_error_set(AB_EUNSUPPORTED, "X of '%s' is not readable by rows", ad->node);
	ab_anndata *r = calloc(1, sizeof *r);
	if (!r)
		return ab_error_set(AB_ENOMEM, "out of memory");
	r->info = ad->info;
	int rc;
	if (!(r->node = strdup(ad->node))) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
	} else if (!(rc = ab_store_open(ad->store->root, &r->owned))) {
		r->store = r->owned;
		rc = ad->xd ? ab_array_open_norm(r->store, ad->xd->node, &r->xd)
			    : ab_csr_open_reader(r->store, ad->xs, &r->xs);
	}
	if (!rc && r->xd && (r->xd->m.ndim != ad->xd->m.ndim || ab_array_nrows(r->xd) != ad->info.n_obs ||
			     r->xd->m.dt.dt != ad->xd->m.dt.dt))
		rc = ab_error_set(AB_ECORRUPT, "'%s' changed while it was read", ad->xd->node);
	if (rc) {
		ab_anndata_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int ab_anndata_x_nnz(const ab_anndata *ad, uint64_t row_start, uint64_t row_end, uint64_t *nnz)
{
	if (!ad || !nnz)
		return ab_error_set(AB_EINVAL, "ab_anndata_x_nnz: null argument");
	if (ad->info.x_kind != AB_X_CSR)
		return ab_error_set(AB_ETYPE, "ab_anndata_x_nnz: X is not a csr_matrix");
	if (row_start > row_end || row_end > ad->info.n_obs)
		return ab_error_set(AB_ERANGE, "rows %llu:%llu outside X's %llu rows", (unsigned long long)row_start,
				    (unsigned long long)row_end, (unsigned long long)ad->info.n_obs);
	if (ad->h5) {
		*nnz = h5ad_x_nnz(ad->h5, row_start, row_end);
		return 0;
	}
	return ab_csr_nnz(ad->xs, row_start, row_end, nnz);
}

int ab_anndata_x_read_csr(ab_anndata *ad, uint64_t row_start, uint64_t row_end, int64_t *indptr,
			  int64_t *indices, void *data)
{
	uint64_t nnz;
	int rc = ab_anndata_x_nnz(ad, row_start, row_end, &nnz);
	if (rc)
		return rc;
	if (!indptr || (nnz && (!indices || !data)))
		return ab_error_set(AB_EINVAL, "ab_anndata_x_read_csr: null argument");
	if (ad->h5)
		return h5ad_x_read_csr(ad->h5, row_start, row_end, indptr, indices, data);
	return ab_csr_read_rows(ad->xs, row_start, row_end, indptr, row_end - row_start + 1, indices, nnz, data,
				nnz);
}

int ab_anndata_x_read_dense(ab_anndata *ad, uint64_t row_start, uint64_t row_end, void *dst, size_t dst_size)
{
	if (!ad || (!dst && dst_size))
		return ab_error_set(AB_EINVAL, "ab_anndata_x_read_dense: null argument");
	if (ad->info.x_kind != AB_X_DENSE)
		return ab_error_set(AB_ETYPE, "ab_anndata_x_read_dense: X is not a dense array");
	if (ad->h5)
		return h5ad_x_read_dense(ad->h5, row_start, row_end, dst, dst_size);
	return ab_array_read_rows(ad->xd, row_start, row_end, dst, dst_size);
}

void ab_anndata_close(ab_anndata *ad)
{
	if (!ad)
		return;
	h5ad_close(ad->h5);
	if (ad->owned)
		ab_store_close(ad->owned);
	ab_array_close(ad->xd);
	ab_csr_close(ad->xs);
	ab_strings_free(ad->obs_cols);
	ab_strings_free(ad->var_cols);
	free(ad->obs_index);
	free(ad->var_index);
	free(ad->node);
	free(ad);
}

int ab_anndata_get_info(const ab_anndata *ad, ab_anndata_info *info)
{
	if (!ad || !info)
		return ab_error_set(AB_EINVAL, "ab_anndata_get_info: null argument");
	*info = ad->info;
	return 0;
}

ab_array *ab_anndata_x_dense(ab_anndata *ad)
{
	return ad ? ad->xd : NULL;
}

ab_csr *ab_anndata_x_csr(ab_anndata *ad)
{
	return ad ? ad->xs : NULL;
}

const char *const *ab_anndata_obs_columns(const ab_anndata *ad)
{
	if (ad && ad->h5)
		return h5ad_obs_columns(ad->h5);
	return ad ? (const char *const *)ad->obs_cols : NULL;
}

const char *const *ab_anndata_var_columns(const ab_anndata *ad)
{
	if (ad && ad->h5)
		return h5ad_var_columns(ad->h5);
	return ad ? (const char *const *)ad->var_cols : NULL;
}

static int df_column(ab_anndata *ad, const char *df, const char *index, const char *name, ab_column **out)
{
	if (!ad || !name || !out)
		return ab_error_set(AB_EINVAL, "null argument");
	if (ad->h5) {
		h5ad_col *h;
		int rc = h5ad_column_open(ad->h5, df, name, &h);
		return rc ? rc : ab_column_wrap_h5ad(h, out);
	}
	const char *col = name;
	if (strcmp(name, "_index") == 0 && index)
		col = index;
	char *p = ab_path_join(df, col);
	char *full = p ? ab_path_join(ad->node, p) : NULL;
	free(p);
	if (!full)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = ab_column_open(ad->store, full, out);
	free(full);
	return rc;
}

int ab_anndata_obs_column(ab_anndata *ad, const char *name, ab_column **out)
{
	return df_column(ad, "obs", ad ? ad->obs_index : NULL, name, out);
}

int ab_anndata_var_column(ab_anndata *ad, const char *name, ab_column **out)
{
	return df_column(ad, "var", ad ? ad->var_index : NULL, name, out);
}

int ab_anndata_obs_column_kind(ab_anndata *ad, const char *name, ab_column_kind *kind)
{
	if (!ad || !name || !kind)
		return ab_error_set(AB_EINVAL, "null argument");
	if (ad->h5) {
		ab_column *c;
		int rc = ab_anndata_obs_column(ad, name, &c);
		if (rc)
			return rc;
		ab_column_info ci;
		ab_column_get_info(c, &ci);
		*kind = ci.kind;
		ab_column_close(c);
		return 0;
	}
	const char *col = strcmp(name, "_index") == 0 && ad->obs_index ? ad->obs_index : name;
	char *p = ab_path_join("obs", col);
	char *joined = p ? ab_path_join(ad->node, p) : NULL;
	free(p);
	if (!joined)
		return ab_error_set(AB_ENOMEM, "out of memory");
	/* Column names come from the store (column-order, _index), so they are
	 * as untrusted as the rest of it: normalise like every public entry
	 * point does, which refuses ".." and keeps "obs/../../x" from reaching
	 * files outside the store. */
	char *full;
	int rc = ab_node_normalize(joined, &full);
	free(joined);
	if (rc)
		return rc;
	ab_node_type t;
	char *enc = NULL;
	rc = ab_node_encoding(ad->store, full, &t, &enc, NULL);
	if (rc == 0) {
		if (t == AB_NODE_ARRAY) {
			ab_array *a;
			if ((rc = ab_array_open_norm(ad->store, full, &a)) == 0) {
				*kind = a->m.dt.dt == AB_DT_STRING ? AB_COL_STRING : AB_COL_ARRAY;
				ab_array_close(a);
			}
		} else if (ab_column_encoding_kind(enc, kind) != 0) {
			rc = ab_error_set(AB_EUNSUPPORTED, "obs column '%s' has unsupported encoding '%s'", name,
					  enc ? enc : "none");
		}
	}
	free(enc);
	free(full);
	return rc;
}

int ab_collection_datasets(ab_store *s, const char *node_in, char ***names, size_t *count)
{
	if (!s || !names)
		return ab_error_set(AB_EINVAL, "ab_collection_datasets: null argument");
	char *node;
	int rc = ab_node_normalize(node_in, &node);
	if (rc)
		return rc;
	ab_node_type t;
	char *enc = NULL;
	if ((rc = ab_node_encoding(s, node, &t, &enc, NULL)))
		goto out;
	if (t != AB_NODE_GROUP || !enc || strcmp(enc, "annbatch-preshuffled") != 0) {
		rc = ab_error_set(AB_ETYPE, "node '%s' is not an annbatch collection", *node ? node : "/");
		goto out;
	}
	char **all;
	size_t n;
	if ((rc = ab_group_children(s, node, &all, &n)))
		goto out;
	/* Keep dataset_<N> children; they are already in natural (numeric) order. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *nm = all[i];
		int ok = strncmp(nm, "dataset_", 8) == 0 && nm[8];
		for (const char *p = nm + 8; ok && *p; p++)
			if (*p < '0' || *p > '9')
				ok = 0;
		if (ok)
			all[k++] = all[i];
		else
			free(all[i]);
	}
	all[k] = NULL;
	*names = all;
	if (count)
		*count = k;
out:
	free(enc);
	free(node);
	return rc;
}
