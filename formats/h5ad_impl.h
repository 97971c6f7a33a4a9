/*
 * h5ad_impl.h - what the .h5ad reader's files share (internal to formats/):
 * the open file's handles and the small HDF5 helpers every part uses.
 */
#ifndef AB_FORMATS_H5AD_IMPL_H
#define AB_FORMATS_H5AD_IMPL_H

#include <hdf5.h>

#include "last_error.h"
#include "h5ad.h"

struct h5ad {
	char *path;
	hid_t file, obs, var;
	hid_t x, xdata, xindices;    /* dense: x is the dataset; csr: the parts */
	hid_t x_mt;                  /* memory type for X values                */
	ab_anndata_info info;
	int64_t *indptr;             /* csr: n_obs + 1                          */
	char **obs_cols;             /* column-order, NULL-terminated           */
	char **var_cols;             /* the same for var                        */
	size_t n_obs_cols, n_var_cols;
	char *obs_index, *var_index; /* the frames' _index attribute values     */
};

/* AB_ENOMEM with the usual message. */
int h5_oom(void);
/* HDF5 prints its whole error stack on stderr by default; we report one
 * line of our own instead. Called before every open. */
void h5_quiet_hdf5(void);
/* Closes any HDF5 id by its kind and sets it to -1 (no-op for -1). */
void h5_close_id(hid_t *id);
/* h5py stores numpy bool as a one-byte enum {FALSE, TRUE}. */
int h5_is_bool_enum(hid_t t);
/* The annbatch dtype of a stored HDF5 type (strings: AB_DT_STRING). */
int h5_file_dtype(hid_t t, ab_dtype *dt);
hid_t h5_native_of(ab_dtype dt);
/* The memory type to read dataset `ds` as dtype `dt` (a copy to close). */
hid_t h5_mem_type(hid_t ds, ab_dtype dt);
int h5_read_string_items(hid_t obj, int is_attr, hid_t ft, hid_t fs, hid_t ms, size_t n, uint64_t first,
			 char **out, const char *what);
/* String attributes: all items (NULL when absent), or the one value. */
int h5_attr_strings(hid_t obj, const char *name, char ***out, size_t *n, const char *what);
int h5_attr_string(hid_t obj, const char *name, char **out, const char *what);
int h5_attr_ints(hid_t obj, const char *name, int64_t *v, int max);
int h5_attr_flag(hid_t obj, const char *name);
int h5_ds_shape(hid_t ds, int *rank, hsize_t dims[2]);
/* Rows [start, start + n) of a 1-D or 2-D dataset as memory type mt. */
int h5_read_rows(hid_t ds, hid_t mt, uint64_t start, uint64_t n, void *dst, const char *what);
int h5_read_strings_range(hid_t ds, uint64_t start, uint64_t n, char ***out, const char *what);
/* A group or dataset by path; AB_ENOENT when absent. */
int h5_open_obj(hid_t loc, const char *name, hid_t *out, H5I_type_t *kind);
hid_t h5_open_dataset(hid_t loc, const char *name);
/* Rows of a dataset (0 when not readable). */
uint64_t h5_ds_len(hid_t ds);

#endif
