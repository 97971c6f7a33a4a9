/*
 * anndata.h - helpers shared by the AnnData readers (internal): a node's
 * encoding-type, and numeric conversions between dtypes.
 */
#ifndef AB_FORMATS_ANNDATA_H
#define AB_FORMATS_ANNDATA_H

#include "array.h"
#include "store.h"

/* A csr_matrix / csc_matrix group (the engine reads its arrays directly). */
struct ab_csr {
	ab_store *store;
	char *node;
	ab_sparse_format format;
	uint64_t n_rows, n_cols, nnz;
	ab_array *data, *indices, *indptr_arr;
	int64_t *indptr; /* n_rows + 1 (csr only) */
	ab_buf tmp;
};

/* Loads the node's metadata and returns its type and a copy of its
 * "encoding-type" attribute (NULL when absent, else free()). */
int ab_node_encoding(ab_store *s, const char *node, ab_node_type *type, char **enc, json_t **attrs);

/* Reads items [a, b) of a 1-D integer array widened to int64. */
int ab_array_read_int64(ab_array *arr, uint64_t a, uint64_t b, int64_t *dst, ab_buf *tmp);

/* Value of item i of a numeric buffer of dtype dt, as double / int64. */
double ab_value_as_double(ab_dtype dt, const void *buf, size_t i);
int64_t ab_value_as_int64(ab_dtype dt, const void *buf, size_t i);
int ab_dtype_is_integer(ab_dtype dt);

struct h5ad_col;
/* An ab_column over a column of an .h5ad file (takes h5; closes it on failure). */
int ab_column_wrap_h5ad(struct h5ad_col *h5, ab_column **out);
/* The text of category item i of a numeric categories array (malloc'd into
 * *out): "true"/"false", the integer, or %.17g, as both readers show them. */
int ab_category_label(ab_dtype dt, const void *items, size_t i, char **out);
/* out[i] = a copy of labels[codes[i]] (NULL for a negative code); a code past
 * the labels is AB_ECORRUPT naming `what` and row row0 + i. */
int ab_codes_to_labels(const int64_t *codes, size_t n, char *const *labels, size_t nlabels, const char *what,
		       uint64_t row0, char **out);
/* A NULL-terminated copy of n strings (ab_strings_free_n frees it). */
int ab_strings_copy(char *const *src, size_t n, char ***out);

#endif
