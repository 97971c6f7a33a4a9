/* sources.c - the datasets a loader reads (stores, arrays, in-memory data) joined
 * into one row space, the obs columns and the class column. */
#include "loader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "last_error.h"
#include "value.h"

/* ------------------------------------------------------------ sources */

static int add_source(ab_loader *ld, ld_source *s)
{
	if (ld->running)
		return ab_error_set(AB_EINVAL, "cannot add data while an epoch runs");
	int sparse = s->kind == SRC_CSR || s->kind == SRC_MEM_CSR;
	if (ld->nsrc == 0) {
		ld->sparse = sparse;
		ld->out_dtype = s->dtype;
		if (sparse) {
			ld->n_cols = s->shape[1];
			if (ld->n_cols > INT32_MAX)
				return ab_error_set(AB_EUNSUPPORTED, "%s: %llu columns exceed the int32 indices of batches",
						    s->name, (unsigned long long)ld->n_cols);
		} else {
			ld->ndim = s->ndim;
			ld->row_items = 1;
			for (int i = 1; i < s->ndim; i++) {
				ld->trailing[i] = s->shape[i];
				ld->row_items *= s->shape[i];
			}
		}
	} else {
		if (sparse != ld->sparse)
			return ab_error_set(AB_EINVAL, "%s: cannot mix dense and sparse datasets in one loader", s->name);
		if (sparse && s->shape[1] != ld->n_cols)
			return ab_error_set(AB_EINVAL, "%s has %llu columns, the loader's datasets have %llu", s->name,
					    (unsigned long long)s->shape[1], (unsigned long long)ld->n_cols);
		if (!sparse) {
			int same = s->ndim == ld->ndim;
			for (int i = 1; same && i < s->ndim; i++)
				same = s->shape[i] == ld->trailing[i];
			if (!same)
				return ab_error_set(AB_EINVAL, "%s: trailing shape differs from the loader's first dataset",
						    s->name);
		}
		ab_dtype p;
		if (ab_dtype_promote(ld->out_dtype, s->dtype, &p))
			return ab_error_set(AB_EUNSUPPORTED, "%s: dtype %s cannot be combined with %s", s->name,
					    ab_dtype_name(s->dtype), ab_dtype_name(ld->out_dtype));
		ld->out_dtype = p;
	}
	if (s->dtype == AB_DT_STRING || s->dtype == AB_DT_COMPLEX64 || s->dtype == AB_DT_COMPLEX128)
		return ab_error_set(AB_EUNSUPPORTED, "%s: dtype %s cannot be batched", s->name, ab_dtype_name(s->dtype));
	if (ld->nsrc == ld->cap_src) {
		size_t nc = ld->cap_src ? ld->cap_src * 2 : 8;
		ld_source *n = realloc(ld->src, nc * sizeof *n);
		if (!n)
			return ab_error_set(AB_ENOMEM, "out of memory");
		ld->src = n;
		ld->cap_src = nc;
	}
	s->row0 = ld->nrows;
	ld->nrows += s->nrows;
	ld->src[ld->nsrc++] = *s;
	ld->out_isz = ab_dtype_size(ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype);
	return 0;
}

void source_free(ld_source *s)
{
	free(s->ad_node);
	ab_array_close(s->x);
	ab_csr_close(s->csr);
	ab_store_close(s->store);
	free(s->name);
}

static int add_anndata_node(ab_loader *ld, const char *path, ab_store *st, const char *node, int own_store)
{
	ab_anndata *ad;
	int rc = ab_anndata_open(st, node, &ad);
	if (rc) {
		if (own_store)
			ab_store_close(st);
		return ab_error_prefix(rc, "%s: ", path);
	}
	ld_source s = { 0 };
	s.store = own_store ? st : NULL;
	size_t nl = strlen(path) + strlen(node) + 2;
	s.name = malloc(nl);
	if (s.name)
		snprintf(s.name, nl, "%s%s%s", path, *node ? ":" : "", node);
	s.ad_node = strdup(node);
	ab_anndata_info info;
	ab_anndata_get_info(ad, &info);
	if (info.x_kind == AB_X_CSC) {
		rc = ab_error_set(AB_EUNSUPPORTED, "%s: X is a csc_matrix; row batches need csr_matrix", path);
		goto fail;
	}
	/* Take X's handles over from the AnnData handle: reopen them standalone. */
	char *xnode = ab_path_join(node, "X");
	if (!xnode) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	if (info.x_kind == AB_X_DENSE) {
		rc = ab_array_open(st, xnode, &s.x);
		if (rc == 0) {
			s.kind = SRC_ARRAY;
			s.dtype = s.x->m.dt.dt;
			s.ndim = s.x->m.ndim;
			memcpy(s.shape, s.x->m.shape, sizeof s.shape);
			s.nrows = ab_array_nrows(s.x);
		}
	} else {
		rc = ab_csr_open(st, xnode, &s.csr);
		if (rc == 0) {
			s.kind = SRC_CSR;
			s.dtype = s.csr->data->m.dt.dt;
			s.ndim = 2;
			s.shape[0] = s.csr->n_rows;
			s.shape[1] = s.csr->n_cols;
			s.nrows = s.csr->n_rows;
		}
	}
	free(xnode);
	ab_anndata_close(ad);
	ad = NULL;
	if (rc)
		goto fail;
	if ((rc = add_source(ld, &s)))
		goto fail;
	return 0;
fail:
	ab_anndata_close(ad);
	source_free(&s);
	if (own_store && !s.store)
		ab_store_close(st);
	return rc;
}

int ab_loader_add_anndata(ab_loader *ld, const char *path)
{
	if (!ld || !path)
		return ab_error_set(AB_EINVAL, "ab_loader_add_anndata: null argument");
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc)
		return rc;
	char **ds;
	size_t n;
	rc = ab_collection_datasets(st, "", &ds, &n);
	if (rc == AB_ETYPE)
		return add_anndata_node(ld, path, st, "", 1);
	ab_store_close(st);
	if (rc)
		return rc;
	if (n == 0) {
		ab_strings_free(ds);
		return ab_error_set(AB_EFORMAT, "%s: the collection has no datasets", path);
	}
	/* One store handle per dataset keeps the sources independent. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		ab_store *s2;
		if ((rc = ab_store_open(path, &s2)))
			break;
		rc = add_anndata_node(ld, path, s2, ds[i], 1);
	}
	ab_strings_free(ds);
	return rc;
}

int ab_loader_add_array(ab_loader *ld, const char *path, const char *node)
{
	if (!ld || !path)
		return ab_error_set(AB_EINVAL, "ab_loader_add_array: null argument");
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc)
		return rc;
	ld_source s = { 0 };
	s.store = st;
	s.kind = SRC_ARRAY;
	size_t nl = strlen(path) + strlen(node ? node : "") + 2;
	s.name = malloc(nl);
	if (s.name)
		snprintf(s.name, nl, "%s:%s", path, node ? node : "");
	if ((rc = ab_array_open(st, node, &s.x)) == 0) {
		s.dtype = s.x->m.dt.dt;
		s.ndim = s.x->m.ndim;
		memcpy(s.shape, s.x->m.shape, sizeof s.shape);
		s.nrows = ab_array_nrows(s.x);
		if (s.ndim == 0)
			rc = ab_error_set(AB_EINVAL, "%s: a 0-d array has no rows to batch", s.name);
		else
			rc = add_source(ld, &s);
	}
	if (rc)
		source_free(&s);
	return rc;
}

int ab_loader_add_dense_memory(ab_loader *ld, const void *data, ab_dtype dtype, int ndim, const uint64_t *shape)
{
	if (!ld || !data || !shape || ndim < 1 || ndim > AB_MAX_NDIM)
		return ab_error_set(AB_EINVAL, "ab_loader_add_dense_memory: bad argument");
	if (ab_dtype_size(dtype) == 0 || dtype == AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "ab_loader_add_dense_memory: dtype %d is not a numeric ab_dtype",
				    (int)dtype);
	ld_source s = { 0 };
	s.kind = SRC_MEM_DENSE;
	s.mem = data;
	s.dtype = dtype;
	s.ndim = ndim;
	memcpy(s.shape, shape, sizeof(uint64_t) * (size_t)ndim);
	s.nrows = shape[0];
	s.name = strdup("memory (dense)");
	int rc = add_source(ld, &s);
	if (rc)
		source_free(&s);
	return rc;
}

int ab_loader_add_csr_memory(ab_loader *ld, const int64_t *indptr, const int64_t *indices, const void *data,
			     ab_dtype dtype, uint64_t n_rows, uint64_t n_cols)
{
	if (!ld || !indptr || (!indices && indptr[n_rows]) || (!data && indptr[n_rows]))
		return ab_error_set(AB_EINVAL, "ab_loader_add_csr_memory: bad argument");
	if (ab_dtype_size(dtype) == 0 || dtype == AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "ab_loader_add_csr_memory: dtype %d is not a numeric ab_dtype",
				    (int)dtype);
	if (indptr[0] != 0)
		return ab_error_set(AB_EINVAL, "memory CSR: indptr[0] must be 0");
	for (uint64_t i = 0; i < n_rows; i++)
		if (indptr[i + 1] < indptr[i])
			return ab_error_set(AB_EINVAL, "memory CSR: indptr decreases at row %llu", (unsigned long long)i);
	for (int64_t k = 0; k < indptr[n_rows]; k++)
		if (indices[k] < 0 || (uint64_t)indices[k] >= n_cols)
			return ab_error_set(AB_EINVAL, "memory CSR: column index %lld outside [0, %llu)",
					    (long long)indices[k], (unsigned long long)n_cols);
	ld_source s = { 0 };
	s.kind = SRC_MEM_CSR;
	s.mem = data;
	s.mem_indptr = indptr;
	s.mem_indices = indices;
	s.dtype = dtype;
	s.ndim = 2;
	s.shape[0] = n_rows;
	s.shape[1] = n_cols;
	s.nrows = n_rows;
	s.name = strdup("memory (csr)");
	int rc = add_source(ld, &s);
	if (rc)
		source_free(&s);
	return rc;
}

uint64_t ab_loader_nrows(const ab_loader *ld)
{
	return ld ? ld->nrows : 0;
}

void free_obs(ab_loader *ld)
{
	if (ld->obs)
		for (size_t i = 0; i < ld->n_obs_names; i++)
			ld_obs_free(&ld->obs[i]);
	free(ld->obs);
	ld->obs = NULL;
	for (size_t i = 0; i < ld->n_obs_names; i++)
		free(ld->obs_names[i]);
	free(ld->obs_names);
	ld->obs_names = NULL;
	ld->n_obs_names = 0;
}

int ab_loader_set_obs_columns(ab_loader *ld, const char *const *names, size_t n)
{
	if (!ld || (n && !names))
		return ab_error_set(AB_EINVAL, "ab_loader_set_obs_columns: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "obs columns must be set before ab_loader_start");
	free_obs(ld);
	if (n == 0)
		return 0;
	ld->obs_names = calloc(n, sizeof *ld->obs_names);
	if (!ld->obs_names)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !(ld->obs_names[i] = strdup(names[i]))) {
			ld->n_obs_names = i;
			free_obs(ld);
			return ab_error_set(AB_EINVAL, "bad obs column name");
		}
	}
	ld->n_obs_names = n;
	return 0;
}

/* Forgets the weights and the loaded class column (read again at start). */
static void drop_class_weights(ab_loader *ld)
{
	free(ld->class_w);
	ld->class_w = NULL;
	ld->n_class_w = 0;
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	ld->class_loaded = 0;
	ld->class_rows = 0;
}

static int check_class_weights(const double *weights, size_t n)
{
	for (size_t i = 0; weights && i < n; i++)
		if (!(weights[i] >= 0) || !isfinite(weights[i]))
			return ab_error_set(AB_EINVAL, "class weight %zu is %g: weights must be finite and >= 0", i,
					    weights[i]);
	return 0;
}

int ab_loader_set_class_column(ab_loader *ld, const char *name, const double *weights, size_t n)
{
	if (!ld || !name)
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_column: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "the class column must be set before ab_loader_start");
	/* Checked first: a refused call leaves the loader as it was. */
	int rc = check_class_weights(weights, n);
	if (rc)
		return rc;
	free(ld->class_name);
	ld->class_name = NULL;
	drop_class_weights(ld);
	ld_label_weights_free(&ld->class_wl);
	if (!(ld->class_name = strdup(name)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	if (weights && n) {
		if (!(ld->class_w = malloc(n * sizeof *ld->class_w)))
			return ab_error_set(AB_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			ld->class_w[i] = weights[i];
		ld->n_class_w = n;
	}
	return 0;
}

int ab_loader_set_allocator(ab_loader *ld, void *(*alloc)(size_t size, void *ctx),
			    void (*free_fn)(void *p, size_t size, void *ctx), void *ctx)
{
	if (!ld || !alloc != !free_fn)
		return ab_error_set(AB_EINVAL, "ab_loader_set_allocator: null loader, or only one of alloc and free");
	if (ld->gen)
		return ab_error_set(AB_EINVAL, "the batch allocator must be set before the first ab_loader_start");
	ld->alloc.alloc = alloc;
	ld->alloc.free = free_fn;
	ld->alloc.ctx = ctx;
	return 0;
}

int ab_loader_set_class_codes(ab_loader *ld, const int32_t *codes, uint64_t n_rows, const char *const *labels,
			      size_t n_labels, const double *weights, size_t n_weights)
{
	if (!ld || (n_rows && !codes) || (n_labels && !labels))
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "the classes must be set before ab_loader_start");
	if (n_labels == 0 || n_labels > INT32_MAX)
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: %zu classes (1 to 2^31 - 1)", n_labels);
	if (weights && n_weights != n_labels)
		return ab_error_set(AB_EINVAL, "%zu class weights given for %zu classes", n_weights, n_labels);
	/* Checked first: a refused call leaves the loader as it was. */
	for (uint64_t r = 0; r < n_rows; r++)
		if (codes[r] < 0 || (size_t)codes[r] >= n_labels)
			return ab_error_set(AB_EINVAL,
					    "class code %d of row %" PRIu64 " is not a class (0..%zu): missing classes "
					    "(code -1) cannot be sampled",
					    (int)codes[r], r, n_labels - 1);
	int rc = check_class_weights(weights, n_weights);
	if (rc)
		return rc;
	for (size_t i = 0; i < n_labels; i++)
		if (!labels[i])
			return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: label %zu is null", i);
	ld_obs_col col;
	memset(&col, 0, sizeof col);
	col.categorical = 1;
	col.name = strdup("(classes from memory)");
	col.codes = malloc((n_rows ? n_rows : 1) * sizeof *col.codes);
	double *w = weights ? malloc(n_labels * sizeof *w) : NULL;
	int ok = col.name && col.codes && (!weights || w);
	for (size_t i = 0; ok && i < n_labels; i++) {
		int64_t k = ab_strtab_add(&col.labels, labels[i]);
		ok = k >= 0;
		if (ok && (size_t)k != i) {
			ld_obs_free(&col);
			free(w);
			return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: label '%s' is given twice (classes %lld "
					    "and %zu)", labels[i], (long long)k, i);
		}
	}
	char *name = ok ? strdup(col.name) : NULL;
	if (!ok || !name) {
		ld_obs_free(&col);
		free(w);
		free(name);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	memcpy(col.codes, codes, n_rows * sizeof *codes);
	for (size_t i = 0; w && i < n_labels; i++)
		w[i] = weights[i];
	free(ld->class_name);
	free(ld->class_w);
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	ld_label_weights_free(&ld->class_wl);
	ld->class_name = name;
	ld->class_col = col;
	ld->class_loaded = 1;
	ld->class_rows = n_rows;
	ld->class_w = w;
	ld->n_class_w = w ? n_labels : 0;
	return 0;
}

int ab_loader_set_class_weights_by_label(ab_loader *ld, const char *const *labels, const double *weights, size_t n,
					 const double *rest)
{
	if (!ld || (n && (!labels || !weights)))
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_weights_by_label: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "class weights must be set before ab_loader_start");
	if (!ld->class_name)
		return ab_error_set(AB_EINVAL, "class weights by label need a class column: call "
				    "ab_loader_set_class_column first");
	if (n == 0 && !rest)
		return ab_error_set(AB_EINVAL, "class weights by label: no label and no weight for the rest");
	int rc = ld_label_weights_set(&ld->class_wl, labels, weights, n, rest);
	if (rc)
		return rc;
	/* They replace weights given in category order; the column, when
	 * already loaded, is resolved again at the next start. */
	drop_class_weights(ld);
	return 0;
}

int ab_loader_var_names(ab_loader *ld, char ***names, size_t *count)
{
	if (!ld || !names)
		return ab_error_set(AB_EINVAL, "ab_loader_var_names: null argument");
	if (ld->nsrc == 0 || !ld->src[0].ad_node)
		return ab_error_set(AB_EINVAL, "var names need an AnnData dataset");
	ab_anndata *ad;
	int rc = ab_anndata_open(ld->src[0].store, ld->src[0].ad_node, &ad);
	if (rc)
		return rc;
	ab_column *col;
	rc = ab_anndata_var_column(ad, "_index", &col);
	if (rc == 0) {
		ab_column_info ci;
		ab_column_get_info(col, &ci);
		rc = ab_column_read_strings(col, 0, ci.length, names, count);
		ab_column_close(col);
	}
	ab_anndata_close(ad);
	return rc;
}

