/* sparse.c - AnnData csr_matrix / csc_matrix groups. */
#include "sparse.h"

#include <stdlib.h>
#include <string.h>

#include "anndata.h"
#include "last_error.h"
#include "value.h"

int ab_csr_open(ab_store *s, const char *node_in, ab_csr **out)
{
	if (!s || !out)
		return ab_error_set(AB_EINVAL, "ab_csr_open: null argument");
	char *node;
	int rc = ab_node_normalize(node_in, &node);
	if (rc)
		return rc;
	ab_csr *c = calloc(1, sizeof *c);
	if (!c) {
		free(node);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	c->store = s;
	c->node = node;
	char *enc = NULL;
	json_t *attrs = NULL;
	ab_node_type t;
	if ((rc = ab_node_encoding(s, node, &t, &enc, &attrs)))
		goto fail;
	if (t != AB_NODE_GROUP || !enc || (strcmp(enc, "csr_matrix") && strcmp(enc, "csc_matrix"))) {
		rc = ab_error_set(AB_ETYPE, "node '%s' is not a csr_matrix or csc_matrix group", node);
		goto fail;
	}
	c->format = strcmp(enc, "csr_matrix") == 0 ? AB_SPARSE_CSR : AB_SPARSE_CSC;
	const json_t *shape = json_object_get(attrs, "shape");
	if (!json_is_array(shape) || json_array_size(shape) != 2 ||
	    !json_is_integer(json_array_get(shape, 0)) || !json_is_integer(json_array_get(shape, 1)) ||
	    json_integer_value(json_array_get(shape, 0)) < 0 || json_integer_value(json_array_get(shape, 1)) < 0) {
		rc = ab_error_set(AB_EFORMAT, "%s '%s': attribute shape must be [n_rows, n_cols]", enc, node);
		goto fail;
	}
	c->n_rows = (uint64_t)json_integer_value(json_array_get(shape, 0));
	c->n_cols = (uint64_t)json_integer_value(json_array_get(shape, 1));
	if ((rc = ab_array_open_child(s, node, "data", &c->data)) ||
	    (rc = ab_array_open_child(s, node, "indices", &c->indices)) ||
	    (rc = ab_array_open_child(s, node, "indptr", &c->indptr_arr)))
		goto fail;
	if (c->data->m.ndim != 1 || c->indices->m.ndim != 1 || c->indptr_arr->m.ndim != 1) {
		rc = ab_error_set(AB_EFORMAT, "%s '%s': data, indices and indptr must be 1-D", enc, node);
		goto fail;
	}
	if (c->data->m.dt.dt == AB_DT_STRING) {
		rc = ab_error_set(AB_EFORMAT, "%s '%s': data must be numeric", enc, node);
		goto fail;
	}
	c->nnz = c->data->m.shape[0];
	if (c->indices->m.shape[0] != c->nnz) {
		rc = ab_error_set(AB_ECORRUPT, "%s '%s': indices has %llu elements but data has %llu", enc, node,
				  (unsigned long long)c->indices->m.shape[0], (unsigned long long)c->nnz);
		goto fail;
	}
	uint64_t major = c->format == AB_SPARSE_CSR ? c->n_rows : c->n_cols;
	if (c->indptr_arr->m.shape[0] != major + 1) {
		rc = ab_error_set(AB_ECORRUPT, "%s '%s': indptr has %llu elements, expected %llu", enc, node,
				  (unsigned long long)c->indptr_arr->m.shape[0], (unsigned long long)(major + 1));
		goto fail;
	}
	if (c->format == AB_SPARSE_CSR) {
		if (major + 1 > SIZE_MAX / 8 || !(c->indptr = malloc((size_t)(major + 1) * 8))) {
			rc = ab_error_set(AB_ENOMEM, "out of memory for indptr of %llu rows", (unsigned long long)major);
			goto fail;
		}
		if ((rc = ab_array_read_int64(c->indptr_arr, 0, major + 1, c->indptr, &c->tmp)))
			goto fail;
		if (c->indptr[0] != 0) {
			rc = ab_error_set(AB_ECORRUPT, "csr_matrix '%s': indptr[0] = %lld, expected 0", node,
					  (long long)c->indptr[0]);
			goto fail;
		}
		for (uint64_t i = 0; i < major; i++) {
			if (c->indptr[i + 1] < c->indptr[i]) {
				rc = ab_error_set(AB_ECORRUPT, "csr_matrix '%s': indptr decreases at row %llu", node,
						  (unsigned long long)i);
				goto fail;
			}
		}
		if ((uint64_t)c->indptr[major] != c->nnz) {
			rc = ab_error_set(AB_ECORRUPT, "csr_matrix '%s': indptr ends at %lld but data has %llu elements",
					  node, (long long)c->indptr[major], (unsigned long long)c->nnz);
			goto fail;
		}
	}
	free(enc);
	json_decref(attrs);
	*out = c;
	return 0;
fail:
	free(enc);
	json_decref(attrs);
	ab_csr_close(c);
	return rc;
}

int ab_csr_open_reader(ab_store *s, const ab_csr *c, ab_csr **out)
{
	ab_csr *r = calloc(1, sizeof *r);
	if (!r || !(r->node = strdup(c->node))) {
		free(r);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	r->store = s;
	r->format = c->format;
	r->n_rows = c->n_rows;
	r->n_cols = c->n_cols;
	r->nnz = c->nnz;
	r->indptr = c->indptr;
	r->indptr_borrowed = 1;
	int rc;
	if ((rc = ab_array_open_child(s, c->node, "data", &r->data)) ||
	    (rc = ab_array_open_child(s, c->node, "indices", &r->indices)) ||
	    (rc = ab_array_open_child(s, c->node, "indptr", &r->indptr_arr))) {
		ab_csr_close(r);
		return rc;
	}
	/* the store may have changed under us: the same shapes, or no reader */
	if (r->data->m.ndim != 1 || r->data->m.shape[0] != c->nnz || r->indices->m.ndim != 1 ||
	    r->indices->m.shape[0] != c->nnz || r->data->m.dt.dt != c->data->m.dt.dt) {
		ab_csr_close(r);
		return ab_error_set(AB_ECORRUPT, "'%s' changed while it was read", c->node);
	}
	*out = r;
	return 0;
}

void ab_csr_close(ab_csr *c)
{
	if (!c)
		return;
	ab_array_close(c->data);
	ab_array_close(c->indices);
	ab_array_close(c->indptr_arr);
	if (!c->indptr_borrowed)
		free(c->indptr);
	ab_buf_free(&c->tmp);
	free(c->node);
	free(c);
}

int ab_csr_get_info(const ab_csr *c, ab_csr_info *info)
{
	if (!c || !info)
		return ab_error_set(AB_EINVAL, "ab_csr_get_info: null argument");
	info->format = c->format;
	info->n_rows = c->n_rows;
	info->n_cols = c->n_cols;
	info->nnz = c->nnz;
	info->data_dtype = c->data->m.dt.dt;
	info->indices_dtype = c->indices->m.dt.dt;
	info->indptr_dtype = c->indptr_arr->m.dt.dt;
	return 0;
}

static int row_access(const ab_csr *c, uint64_t r0, uint64_t r1)
{
	if (c->format != AB_SPARSE_CSR)
		return ab_error_set(AB_EUNSUPPORTED,
				    "'%s' is a csc_matrix: row access needs csr_matrix (convert the matrix to CSR)",
				    c->node);
	if (r0 > r1 || r1 > c->n_rows)
		return ab_error_set(AB_ERANGE, "rows %llu:%llu out of range for '%s' with %llu rows",
				    (unsigned long long)r0, (unsigned long long)r1, c->node,
				    (unsigned long long)c->n_rows);
	return 0;
}

int ab_csr_nnz(const ab_csr *c, uint64_t r0, uint64_t r1, uint64_t *nnz)
{
	if (!c || !nnz)
		return ab_error_set(AB_EINVAL, "ab_csr_nnz: null argument");
	int rc = row_access(c, r0, r1);
	if (rc)
		return rc;
	*nnz = (uint64_t)(c->indptr[r1] - c->indptr[r0]);
	return 0;
}

int ab_csr_read_rows(ab_csr *c, uint64_t r0, uint64_t r1, int64_t *indptr, size_t indptr_cap,
		     int64_t *indices, size_t indices_cap, void *data, size_t data_cap)
{
	if (!c)
		return ab_error_set(AB_EINVAL, "ab_csr_read_rows: null argument");
	int rc = row_access(c, r0, r1);
	if (rc)
		return rc;
	uint64_t e0 = (uint64_t)c->indptr[r0], e1 = (uint64_t)c->indptr[r1], n = e1 - e0;
	if (indptr) {
		if (indptr_cap < r1 - r0 + 1)
			return ab_error_set(AB_EINVAL, "indptr capacity %zu < %llu", indptr_cap,
					    (unsigned long long)(r1 - r0 + 1));
		for (uint64_t i = r0; i <= r1; i++)
			indptr[i - r0] = c->indptr[i] - (int64_t)e0;
	}
	if (indices) {
		if (indices_cap < n)
			return ab_error_set(AB_EINVAL, "indices capacity %zu < nnz %llu", indices_cap,
					    (unsigned long long)n);
		if ((rc = ab_array_read_int64(c->indices, e0, e1, indices, &c->tmp)))
			return rc;
		for (uint64_t i = 0; i < n; i++)
			if (indices[i] < 0 || (uint64_t)indices[i] >= c->n_cols)
				return ab_error_set(AB_ECORRUPT,
						    "csr_matrix '%s': column index %lld at element %llu is outside "
						    "[0, %llu)", c->node, (long long)indices[i],
						    (unsigned long long)(e0 + i), (unsigned long long)c->n_cols);
	}
	if (data) {
		if (data_cap < n)
			return ab_error_set(AB_EINVAL, "data capacity %zu < nnz %llu", data_cap, (unsigned long long)n);
		size_t isz = c->data->m.dt.disk_size;
		if ((rc = ab_array_read_rows(c->data, e0, e1, data, (size_t)n * isz)))
			return rc;
	}
	return 0;
}

#define ACCUMULATE(T)                                                                      \
	do {                                                                               \
		T *o = dst;                                                                \
		const T *v = vals;                                                         \
		for (uint64_t r = 0; r < nr; r++)                                          \
			for (int64_t k = ip[r]; k < ip[r + 1]; k++)                        \
				o[r * c->n_cols + (uint64_t)ix[k]] += v[k];                \
	} while (0)

int ab_csr_read_dense(ab_csr *c, uint64_t r0, uint64_t r1, void *dst, size_t dst_size)
{
	if (!c || (!dst && r1 > r0))
		return ab_error_set(AB_EINVAL, "ab_csr_read_dense: null argument");
	int rc = row_access(c, r0, r1);
	if (rc)
		return rc;
	uint64_t nr = r1 - r0, n = (uint64_t)(c->indptr[r1] - c->indptr[r0]), need;
	size_t isz = c->data->m.dt.disk_size;
	if (ab_mul_u64(nr, c->n_cols, &need) || ab_mul_u64(need, isz, &need) || need > dst_size)
		return ab_error_set(AB_EINVAL, "destination too small for %llu dense rows",
				    (unsigned long long)nr);
	memset(dst, 0, (size_t)need);
	int64_t *ip = malloc((size_t)(nr + 1) * 8), *ix = malloc((size_t)n * 8 + 8);
	void *vals = malloc((size_t)n * isz + 16);
	if (!ip || !ix || !vals) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = ab_csr_read_rows(c, r0, r1, ip, (size_t)nr + 1, ix, (size_t)n, vals, (size_t)n)))
		goto out;
	switch (c->data->m.dt.dt) {
	case AB_DT_BOOL: {
		uint8_t *o = dst;
		const uint8_t *v = vals;
		for (uint64_t r = 0; r < nr; r++)
			for (int64_t k = ip[r]; k < ip[r + 1]; k++)
				o[r * c->n_cols + (uint64_t)ix[k]] |= v[k] != 0;
		break;
	}
	case AB_DT_INT8: ACCUMULATE(int8_t); break;
	case AB_DT_INT16: ACCUMULATE(int16_t); break;
	case AB_DT_INT32: ACCUMULATE(int32_t); break;
	case AB_DT_INT64: ACCUMULATE(int64_t); break;
	case AB_DT_UINT8: ACCUMULATE(uint8_t); break;
	case AB_DT_UINT16: ACCUMULATE(uint16_t); break;
	case AB_DT_UINT32: ACCUMULATE(uint32_t); break;
	case AB_DT_UINT64: ACCUMULATE(uint64_t); break;
	case AB_DT_FLOAT32: ACCUMULATE(float); break;
	case AB_DT_FLOAT64: ACCUMULATE(double); break;
	case AB_DT_COMPLEX64: {
		float *o = dst;
		const float *v = vals;
		for (uint64_t r = 0; r < nr; r++)
			for (int64_t k = ip[r]; k < ip[r + 1]; k++) {
				o[2 * (r * c->n_cols + (uint64_t)ix[k])] += v[2 * k];
				o[2 * (r * c->n_cols + (uint64_t)ix[k]) + 1] += v[2 * k + 1];
			}
		break;
	}
	case AB_DT_COMPLEX128: {
		double *o = dst;
		const double *v = vals;
		for (uint64_t r = 0; r < nr; r++)
			for (int64_t k = ip[r]; k < ip[r + 1]; k++) {
				o[2 * (r * c->n_cols + (uint64_t)ix[k])] += v[2 * k];
				o[2 * (r * c->n_cols + (uint64_t)ix[k]) + 1] += v[2 * k + 1];
			}
		break;
	}
	default: {
		/* float16: place values, summing duplicates is not representable without
		 * rounding twice; scipy does the same in half precision. */
		uint16_t *o = dst;
		const uint16_t *v = vals;
		for (uint64_t r = 0; r < nr; r++)
			for (int64_t k = ip[r]; k < ip[r + 1]; k++)
				o[r * c->n_cols + (uint64_t)ix[k]] = v[k];
		break;
	}
	}
out:
	free(ip);
	free(ix);
	free(vals);
	return rc;
}
