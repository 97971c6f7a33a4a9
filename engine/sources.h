/*
 * sources.h - the datasets of a loader (internal): each a stored array, a
 * stored CSR group or in-memory data, placed at rows [row0, row0 + nrows)
 * of the global row space, with the AnnData group whose obs it has.
 * Shared by the loader's stages and obs.c (which needs nothing else of the
 * loader).
 */
#ifndef AB_ENGINE_SOURCES_H
#define AB_ENGINE_SOURCES_H

#include <stdint.h>

#include "annbatch.h"
#include "array.h"

typedef enum { SRC_ARRAY = 1, SRC_CSR, SRC_MEM_DENSE, SRC_MEM_CSR } ld_src_kind;

typedef struct ld_source {
	ld_src_kind kind;
	ab_store *store;       /* owned (NULL for memory sources)                 */
	ab_array *x;           /* SRC_ARRAY                                       */
	ab_csr *csr;           /* SRC_CSR                                         */
	const void *mem;       /* memory sources                                  */
	const int64_t *mem_indptr, *mem_indices;
	ab_dtype dtype;        /* X values                                        */
	int ndim;
	uint64_t shape[AB_MAX_NDIM];
	uint64_t row0, nrows;  /* place in the global row space                   */
	char *name;
	char *ad_node;         /* the AnnData group in `store` (NULL: no obs)      */
} ld_source;

#endif
