/*
 * anndata.h - the AnnData schema (internal side): how a node says what it
 * encodes. anndata.c implements the AnnData and collection functions of
 * annbatch.h (ab_anndata_*, ab_collection_datasets) on top of the column
 * and csr readers (column.h, sparse.h); this header holds what the other
 * readers of AnnData groups share with it.
 */
#ifndef AB_FORMATS_ANNDATA_H
#define AB_FORMATS_ANNDATA_H

#include <jansson.h>

#include "store.h"

/* Loads the node's metadata and returns its type (type may be NULL), a copy
 * of its "encoding-type" attribute in *enc (NULL when absent, else free()),
 * and, when attrs is not NULL, a new reference to its attributes. */
int ab_node_encoding(ab_store *s, const char *node, ab_node_type *type, char **enc, json_t **attrs);

/* A second handle on the X of `ad` (a zarr AnnData), for reading X from
 * another thread beside `ad`: its own store handle and array handles (their
 * decode buffers and caches are per handle), the csr indptr borrowed from
 * `ad`, which must outlive it. Only ab_anndata_x_nnz, ab_anndata_x_read_csr,
 * ab_anndata_x_read_dense, ab_anndata_get_info and ab_anndata_close apply to
 * it. An .h5ad gives AB_EUNSUPPORTED: libhdf5 (as built here) is not
 * thread-safe, so its reads must be serialised instead, on any handle. */
int ab_anndata_x_reader(const ab_anndata *ad, ab_anndata **out);
/* Whether `ad` is read through libhdf5 (an .h5ad file). */
int ab_anndata_is_h5ad(const ab_anndata *ad);

#endif
