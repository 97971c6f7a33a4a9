/*
 * sparse.h - AnnData csr_matrix / csc_matrix groups (internal side): the
 * group's structure, which the loader reads directly (engine/plan.c turns
 * rows into element ranges of data and indices through the in-memory
 * indptr). sparse.c implements ab_csr_* of annbatch.h.
 */
#ifndef AB_FORMATS_SPARSE_H
#define AB_FORMATS_SPARSE_H

#include "array.h"
#include "store.h"
#include "util.h"

struct ab_csr {
	ab_store *store;
	char *node;
	ab_sparse_format format;
	uint64_t n_rows, n_cols, nnz;
	ab_array *data, *indices, *indptr_arr;
	int64_t *indptr; /* n_rows + 1 (csr only) */
	ab_buf tmp;
};

#endif
