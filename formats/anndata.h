/*
 * anndata.h - helpers shared by the AnnData readers (internal): a node's
 * encoding-type, integer arrays read as int64.
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

#endif
