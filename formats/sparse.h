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
	int indptr_borrowed; /* a reader's: indptr is its origin's (not freed) */
	ab_buf tmp;
};

/* A second reader of csr_matrix `c` through store `s` (another handle on
 * the same store): its own data and indices arrays, so that it reads
 * beside `c` on another thread, and `c`'s indptr, borrowed (read-only;
 * `c` must outlive it). */
int ab_csr_open_reader(ab_store *s, const ab_csr *c, ab_csr **out);

#endif
