/*
 * h5ad.h - AnnData in HDF5 (.h5ad) for the command-line tool, through the
 * HDF5 C library directly (libannbatch itself knows zarr only).
 *
 * Reading gives `annbatch convert` what it reads from zarr stores through
 * ab_anndata / ab_csr / ab_column: the shape, X as dense rows or CSR rows
 * (read by hyperslab, a row range at a time), obs columns and the obs/var
 * names. Writing is the handful of node kinds `annbatch synth` needs, laid out
 * as anndata 0.8 writes them.
 *
 * Every function returns 0 or a negative AB_E* code; the message for the last
 * failure on this thread is h5ad_last_error(). Strings handed out are malloc'd
 * one by one in a malloc'd array, so ab_strings_free_n frees them.
 */
#ifndef AB_TOOLS_H5AD_H
#define AB_TOOLS_H5AD_H

#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"

const char *h5ad_last_error(void);

/* 1 if `path` should be read as HDF5: a regular file that starts with the
 * HDF5 signature (at 0 or at a user-block offset 512, 1024, ...), or one
 * whose name ends in .h5ad or .h5 (so a broken one gets an HDF5 error). */
int h5ad_is_hdf5(const char *path);

/* ------------------------------------------------------------------ read */

typedef struct h5ad h5ad;
typedef struct h5ad_col h5ad_col;

/* Opens the AnnData at the root of the file. X must be a 2-D dataset (dense,
 * with or without encoding attributes) or a csr_matrix group; csc_matrix and
 * a missing X are refused with a message saying so. The whole indptr of a CSR
 * X is read on open (8 bytes per row). */
int h5ad_open(const char *path, h5ad **out);
void h5ad_close(h5ad *h);

/* n_obs, n_vars, x_kind, x_dtype, n_obs_columns, n_var_columns. */
void h5ad_get_info(const h5ad *h, ab_anndata_info *info);
/* Stored elements of rows [start, end) of a CSR X (dense: 0). */
uint64_t h5ad_x_nnz(const h5ad *h, uint64_t start, uint64_t end);
/* Rows [start, end) of a CSR X: indptr (end-start+1, from 0), indices (as
 * int64, each checked < n_vars) and data (x_dtype items). */
int h5ad_x_read_csr(h5ad *h, uint64_t start, uint64_t end, int64_t *indptr, int64_t *indices,
		    void *data);
/* Rows [start, end) of a dense X as row-major x_dtype items. */
int h5ad_x_read_dense(h5ad *h, uint64_t start, uint64_t end, void *dst, size_t dst_size);

/* obs column names in column-order, NULL-terminated, owned by h. */
const char *const *h5ad_obs_columns(const h5ad *h);
/* var column names, the same way. */
const char *const *h5ad_var_columns(const h5ad *h);
/* A column of "obs" or "var"; "_index" (or the frame's _index attribute
 * value) gives the row names. */
int h5ad_column_open(h5ad *h, const char *frame, const char *name, h5ad_col **out);
void h5ad_column_close(h5ad_col *c);
void h5ad_column_get_info(const h5ad_col *c, ab_column_info *info);
/* Same contracts as ab_column_read / ab_column_read_strings /
 * ab_column_categories. */
int h5ad_column_read(h5ad_col *c, uint64_t start, uint64_t end, void *dst, size_t dst_size,
		     uint8_t *mask);
int h5ad_column_read_strings(h5ad_col *c, uint64_t start, uint64_t end, char ***strings,
			     size_t *count);
int h5ad_column_categories(h5ad_col *c, char ***strings, size_t *count);

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
