/* h5ad.c - the AnnData of an .h5ad file: detection, opening, X rows. */
#include "h5ad_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* detection                                                                 */
/* ------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

int h5ad_is_hdf5(const char *path)
{
	struct stat sb;
	if (stat(path, &sb) != 0)
		return has_suffix(path, ".h5ad") || has_suffix(path, ".h5");
	if (!S_ISREG(sb.st_mode))
		return 0;
	if (has_suffix(path, ".h5ad") || has_suffix(path, ".h5"))
		return 1;
	/* The signature is at 0, or after a user block of 512, 1024, 2048...
	 * bytes; O_NONBLOCK because a regular file never blocks anyway and
	 * a racing swap for a FIFO must not hang us. */
	static const unsigned char sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n' };
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int found = 0;
	for (off_t off = 0; !found && off + 8 <= sb.st_size; off = off ? off * 2 : 512) {
		unsigned char b[8];
		if (pread(fd, b, 8, off) != 8)
			break;
		found = memcmp(b, sig, 8) == 0;
	}
	close(fd);
	return found;
}

/* ------------------------------------------------------------------------- */
/* the AnnData                                                               */
/* ------------------------------------------------------------------------- */


void h5ad_close(h5ad *h)
{
	if (!h)
		return;
	h5_close_id(&h->x_mt);
	h5_close_id(&h->xdata);
	h5_close_id(&h->xindices);
	h5_close_id(&h->x);
	h5_close_id(&h->obs);
	h5_close_id(&h->var);
	h5_close_id(&h->file);
	free(h->indptr);
	ab_strings_free_n(h->obs_cols, h->n_obs_cols);
	ab_strings_free_n(h->var_cols, h->n_var_cols);
	free(h->obs_index);
	free(h->var_index);
	free(h->path);
	free(h);
}

static int open_frame(h5ad *h, const char *name, hid_t *g, char **index, char ***cols, size_t *n)
{
	hid_t o;
	H5I_type_t kind;
	char what[64];
	snprintf(what, sizeof what, "%s: %s", h->path, name);
	int rc = h5_open_obj(h->file, name, &o, &kind);
	if (rc == AB_ENOENT)
		return ab_error_set(rc, "%s: no %s in the file", h->path, name);
	if (rc)
		return ab_error_set(rc, "%s: cannot open %s", h->path, name);
	if (kind != H5I_GROUP) {
		H5Oclose(o);
		return ab_error_set(AB_EUNSUPPORTED, "%s: %s is a single (compound) dataset, the layout of "
			       "anndata before 0.7; not supported", h->path, name);
	}
	*g = o;
	if ((rc = h5_attr_string(o, "_index", index, what)))
		return rc;
	if (!*index && !(*index = strdup("_index")))
		return h5_oom();
	if (cols && (rc = h5_attr_strings(o, "column-order", cols, n, what)))
		return rc;
	if (cols && !*cols && !(*cols = calloc(1, sizeof **cols)))
		return h5_oom();
	if (!cols) {
		char **c;
		size_t k;
		if ((rc = h5_attr_strings(o, "column-order", &c, &k, what)))
			return rc;
		ab_strings_free_n(c, k);
		*n = k;
	}
	return 0;
}

static int open_x(h5ad *h)
{
	hid_t o;
	H5I_type_t kind;
	const char *p = h->path;
	int rc = h5_open_obj(h->file, "X", &o, &kind);
	if (rc == AB_ENOENT)
		return ab_error_set(rc, "%s: no X in the file", p);
	if (rc)
		return ab_error_set(rc, "%s: cannot open X", p);
	h->x = o;
	if (kind == H5I_DATASET) {
		/* Dense, whether or not it carries encoding-type "array" (files
		 * from before anndata 0.8 have no encoding attributes on X). */
		int r;
		hsize_t d[2];
		hid_t ft = H5Dget_type(o);
		ab_dtype dt = AB_DT_STRING;
		if (h5_ds_shape(o, &r, d) || r != 2) {
			H5Tclose(ft);
			return ab_error_set(AB_EFORMAT, "%s: X is a %d-D dataset, expected 2-D", p, r);
		}
		if (ft < 0 || h5_file_dtype(ft, &dt) || dt == AB_DT_STRING) {
			h5_close_id(&ft);
			return ab_error_set(AB_EUNSUPPORTED, "%s: X has a data type that is not numeric", p);
		}
		h5_close_id(&ft);
		h->info.x_kind = AB_X_DENSE;
		h->info.x_dtype = dt;
		h->info.n_obs = d[0];
		h->info.n_vars = d[1];
		h->x_mt = h5_mem_type(o, dt);
		return 0;
	}
	/* A sparse group: encoding-type csr_matrix/csc_matrix, or the
	 * h5sparse_format attribute of older anndata. */
	char *enc = NULL;
	int64_t shape[2];
	int ns;
	if ((rc = h5_attr_string(o, "encoding-type", &enc, "X")))
		return rc;
	if (!enc && (rc = h5_attr_string(o, "h5sparse_format", &enc, "X")))
		return rc;
	int csr = enc && (!strcmp(enc, "csr_matrix") || !strcmp(enc, "csr"));
	int csc = enc && (!strcmp(enc, "csc_matrix") || !strcmp(enc, "csc"));
	if (!csr) {
		rc = csc ? ab_error_set(AB_EUNSUPPORTED, "%s: X is a csc_matrix; only csr_matrix and dense X "
				   "are supported", p)
			 : ab_error_set(AB_EUNSUPPORTED, "%s: X is a group with encoding-type '%s'; expected "
				   "csr_matrix or a dense dataset", p, enc ? enc : "(none)");
		free(enc);
		return rc;
	}
	free(enc);
	ns = h5_attr_ints(o, "shape", shape, 2);
	if (ns != 2)
		ns = h5_attr_ints(o, "h5sparse_shape", shape, 2);
	if (ns != 2 || shape[0] < 0 || shape[1] < 0)
		return ab_error_set(AB_EFORMAT, "%s: X has no valid shape attribute", p);
	h->info.x_kind = AB_X_CSR;
	h->info.n_obs = (uint64_t)shape[0];
	h->info.n_vars = (uint64_t)shape[1];
	h->xdata = h5_open_dataset(o, "data");
	h->xindices = h5_open_dataset(o, "indices");
	hid_t ip = h5_open_dataset(o, "indptr");
	if (h->xdata < 0 || h->xindices < 0 || ip < 0) {
		h5_close_id(&ip);
		return ab_error_set(AB_EFORMAT, "%s: X lacks one of data, indices, indptr", p);
	}
	hid_t ft = H5Dget_type(h->xdata), it = H5Dget_type(h->xindices);
	ab_dtype dt = AB_DT_STRING;
	int bad = ft < 0 || h5_file_dtype(ft, &dt) || dt == AB_DT_STRING;
	int ibad = it < 0 || H5Tget_class(it) != H5T_INTEGER;
	h5_close_id(&ft);
	h5_close_id(&it);
	if (bad || ibad) {
		h5_close_id(&ip);
		return ab_error_set(AB_EUNSUPPORTED, "%s: X/%s has a data type that is not %s", p,
			       bad ? "data" : "indices", bad ? "numeric" : "integer");
	}
	h->info.x_dtype = dt;
	h->x_mt = h5_mem_type(h->xdata, dt);
	uint64_t n = h->info.n_obs;
	if (h5_ds_len(ip) != n + 1) {
		h5_close_id(&ip);
		return ab_error_set(AB_EFORMAT, "%s: X/indptr has %llu entries for %llu rows", p,
			       (unsigned long long)h5_ds_len(ip), (unsigned long long)n);
	}
	if (n + 1 > SIZE_MAX / 8 || !(h->indptr = malloc((size_t)(n + 1) * 8))) {
		h5_close_id(&ip);
		return h5_oom();
	}
	rc = h5_read_rows(ip, H5T_NATIVE_INT64, 0, n + 1, h->indptr, "X/indptr");
	h5_close_id(&ip);
	if (rc)
		return ab_error_prefix(rc, "%s: ", p);
	uint64_t nd = h5_ds_len(h->xdata), ni = h5_ds_len(h->xindices);
	for (uint64_t i = 0; i < n; i++)
		if (h->indptr[i] < 0 || h->indptr[i] > h->indptr[i + 1])
			return ab_error_set(AB_ECORRUPT, "%s: X/indptr decreases at row %llu", p,
				       (unsigned long long)i);
	if (h->indptr[0] < 0 || (uint64_t)h->indptr[n] > nd || (uint64_t)h->indptr[n] > ni)
		return ab_error_set(AB_ECORRUPT, "%s: X/indptr ends at %lld, past X/data (%llu) or "
			       "X/indices (%llu)", p, (long long)h->indptr[n], (unsigned long long)nd,
			       (unsigned long long)ni);
	return 0;
}

int h5ad_open(const char *path, h5ad **out)
{
	h5_quiet_hdf5();
	*out = NULL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return ab_error_set(AB_ENOENT, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return ab_error_set(AB_EINVAL, "%s: not a regular file", path);
	if (H5Fis_hdf5(path) <= 0)
		return ab_error_set(AB_EFORMAT, "%s: not an HDF5 file", path);
	h5ad *h = calloc(1, sizeof *h);
	if (!h)
		return h5_oom();
	h->file = h->obs = h->var = h->x = h->xdata = h->xindices = h->x_mt = -1;
	if (!(h->path = strdup(path))) {
		free(h);
		return h5_oom();
	}
	int rc = 0;
	if ((h->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
		rc = ab_error_set(AB_EIO, "%s: HDF5 cannot open the file", path);
	if (!rc)
		rc = open_x(h);
	if (!rc)
		rc = open_frame(h, "obs", &h->obs, &h->obs_index, &h->obs_cols, &h->n_obs_cols);
	if (!rc)
		rc = open_frame(h, "var", &h->var, &h->var_index, &h->var_cols, &h->n_var_cols);
	if (rc) {
		h5ad_close(h);
		return rc;
	}
	h->info.n_obs_columns = h->n_obs_cols;
	h->info.n_var_columns = h->n_var_cols;
	*out = h;
	return 0;
}

void h5ad_get_info(const h5ad *h, ab_anndata_info *info)
{
	*info = h->info;
}

uint64_t h5ad_x_nnz(const h5ad *h, uint64_t start, uint64_t end)
{
	if (h->info.x_kind != AB_X_CSR || start >= end || end > h->info.n_obs)
		return 0;
	return (uint64_t)(h->indptr[end] - h->indptr[start]);
}

int h5ad_x_read_csr(h5ad *h, uint64_t start, uint64_t end, int64_t *indptr, int64_t *indices,
		    void *data)
{
	if (h->info.x_kind != AB_X_CSR || start > end || end > h->info.n_obs)
		return ab_error_set(AB_ERANGE, "%s: X rows %llu:%llu out of range", h->path,
			       (unsigned long long)start, (unsigned long long)end);
	int64_t base = h->indptr[start];
	uint64_t nnz = (uint64_t)(h->indptr[end] - base);
	for (uint64_t r = start; r <= end; r++)
		indptr[r - start] = h->indptr[r] - base;
	/* HDF5 widens the indices to int64 and converts data to the native
	 * layout as it reads. */
	int rc = h5_read_rows(h->xindices, H5T_NATIVE_INT64, (uint64_t)base, nnz, indices, "X/indices");
	if (!rc)
		rc = h5_read_rows(h->xdata, h->x_mt, (uint64_t)base, nnz, data, "X/data");
	if (rc)
		return ab_error_prefix(rc, "%s: ", h->path);
	for (uint64_t k = 0; k < nnz; k++)
		if (indices[k] < 0 || (uint64_t)indices[k] >= h->info.n_vars)
			return ab_error_set(AB_ECORRUPT, "%s: X/indices[%llu] = %lld is outside the %llu "
				       "columns", h->path, (unsigned long long)(base + (int64_t)k),
				       (long long)indices[k], (unsigned long long)h->info.n_vars);
	return 0;
}

int h5ad_x_read_dense(h5ad *h, uint64_t start, uint64_t end, void *dst, size_t dst_size)
{
	if (h->info.x_kind != AB_X_DENSE || start > end || end > h->info.n_obs)
		return ab_error_set(AB_ERANGE, "%s: X rows %llu:%llu out of range", h->path,
			       (unsigned long long)start, (unsigned long long)end);
	if ((end - start) * h->info.n_vars * ab_dtype_size(h->info.x_dtype) > dst_size)
		return ab_error_set(AB_EINVAL, "%s: X read buffer too small", h->path);
	int rc = h5_read_rows(h->x, h->x_mt, start, end - start, dst, "X");
	return rc ? ab_error_prefix(rc, "%s: ", h->path) : 0;
}

const char *const *h5ad_obs_columns(const h5ad *h)
{
	return (const char *const *)h->obs_cols;
}

const char *const *h5ad_var_columns(const h5ad *h)
{
	return (const char *const *)h->var_cols;
}
