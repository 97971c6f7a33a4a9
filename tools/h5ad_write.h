/*
 * h5ad_write.h - writing AnnData as .h5ad for `annbatch synth --format h5ad`,
 * through the HDF5 C library: the handful of node kinds synth needs, laid out
 * as anndata 0.8 writes them. (Reading .h5ad is the library's: see
 * ab_anndata_open_path.)
 *
 * Every function returns 0 or a negative AB_E* code; the message for the
 * last failure on this thread is h5w_last_error().
 */
#ifndef AB_TOOLS_H5AD_WRITE_H
#define AB_TOOLS_H5AD_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"

const char *h5w_last_error(void);

/* ----------------------------------------------------------------- write */

typedef struct h5w h5w;
typedef struct h5w_array h5w_array;

/* Creates `path` under a temporary name next to it (refused if path exists
 * and !overwrite); h5w_commit renames it into place, h5w_abort removes it.
 * gzip_level < 0: no compression. Object timestamps are off so the same
 * content gives the same bytes. */
int h5w_create(const char *path, int overwrite, int gzip_level, h5w **out);
int h5w_commit(h5w *w);
void h5w_abort(h5w *w);

/* A group with encoding-type/encoding-version attributes (NULL: none). */
int h5w_group(h5w *w, const char *node, const char *encoding, const char *version);
/* The AnnData root attributes and its empty dict companions. */
int h5w_anndata_root(h5w *w);
/* A dataframe group: _index "_index", column-order, encoding dataframe. */
int h5w_dataframe(h5w *w, const char *node, const char *const *columns, size_t n);
/* A csr_matrix group with its shape attribute. */
int h5w_csr_group(h5w *w, const char *node, uint64_t n_rows, uint64_t n_cols);
/* Whole 1-D datasets; `encoding` NULL writes no encoding attributes (as
 * anndata does for the arrays inside a csr_matrix). */
int h5w_numeric(h5w *w, const char *node, ab_dtype dt, const void *values, uint64_t n,
		const char *encoding);
int h5w_strings(h5w *w, const char *node, const char *const *values, uint64_t n);
int h5w_categorical(h5w *w, const char *node, const int32_t *codes, uint64_t n,
		    const char *const *categories, uint64_t n_categories, int ordered);

/* An array written row block by row block: 1-D of unknown length (grows) or
 * 2-D of fixed shape (the caller appends all of its rows). chunk_rows rows
 * per HDF5 chunk (fewer if a chunk would pass 16 MiB). */
int h5w_array_create(h5w *w, const char *node, ab_dtype dt, int ndim, const uint64_t *shape,
		     uint64_t chunk_rows, const char *encoding, h5w_array **out);
int h5w_array_append(h5w_array *a, const void *rows, uint64_t nrows);
int h5w_array_close(h5w_array *a);

#endif
