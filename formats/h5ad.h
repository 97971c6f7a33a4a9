/*
 * h5ad.h - AnnData in HDF5 (.h5ad) files, read through the HDF5 C library
 * (internal; built when configure finds libhdf5, see --with-hdf5).
 *
 * Gives what ab_anndata / ab_column give for zarr stores: the shape, X as
 * dense rows or CSR rows (read by hyperslab, a row range at a time), obs and
 * var columns and the frames' row names. ab_anndata_open_path and the
 * ab_column calls dispatch here for an .h5ad input, so callers of the public
 * API see one interface for both kinds of input.
 *
 * Every function returns 0 or a negative AB_E* code and leaves the message
 * for ab_last_error(). Strings handed out are malloc'd one by one in a
 * malloc'd array, so ab_strings_free_n frees them. Without HDF5 every open
 * fails with AB_EUNSUPPORTED ("built without HDF5").
 */
#ifndef AB_FORMATS_H5AD_H
#define AB_FORMATS_H5AD_H

#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"

/* 1 if `path` should be read as HDF5: a regular file that starts with the
 * HDF5 signature (at 0 or at a user-block offset 512, 1024, ...), or one
 * whose name ends in .h5ad or .h5 (so a broken one gets an HDF5 error). */
int h5ad_is_hdf5(const char *path);

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
/* What the column is called in messages ("file: obs/name"). */
const char *h5ad_column_name(const h5ad_col *c);
/* The pieces ab_column_read / _read_strings / _categories are made of
 * (column.c gives them their meaning once for both kinds of input): rows
 * [start, end) of the values of a numeric column or the codes of a
 * categorical (dtype items; bool as 0/1), the mask of a nullable column (1 =
 * missing), the values of a string column without its mask, the codes of a
 * categorical widened to int64, and its categories as strings (numeric ones
 * as ab_category_label writes them; owned by c). */
int h5ad_column_read_values(h5ad_col *c, uint64_t start, uint64_t end, void *dst, size_t dst_size);
int h5ad_column_read_mask(h5ad_col *c, uint64_t start, uint64_t end, uint8_t *mask);
int h5ad_column_read_raw_strings(h5ad_col *c, uint64_t start, uint64_t end, char ***strings);
int h5ad_column_read_codes(h5ad_col *c, uint64_t start, uint64_t end, int64_t *codes);
int h5ad_column_labels(h5ad_col *c, char *const **labels, size_t *count);

#endif
