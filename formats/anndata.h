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

#endif
