/* h5ad.c - AnnData in HDF5 files: the reader behind `annbatch convert` and
 * the writer behind `annbatch synth --format h5ad` (see h5ad.h). */
#include "h5ad.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

/* ------------------------------------------------------------------------- */
/* errors                                                                    */
/* ------------------------------------------------------------------------- */

static _Thread_local char err_msg[512];

const char *h5ad_last_error(void)
{
	return err_msg;
}

__attribute__((format(printf, 2, 3))) static int set_err(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof err_msg, fmt, ap);
	va_end(ap);
	return rc;
}

static int oom(void)
{
	return set_err(AB_ENOMEM, "out of memory");
}

/* HDF5 prints its whole error stack on stderr by default; the tool reports
 * one line of its own instead. */
static void quiet_hdf5(void)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void close_id(hid_t *id)
{
	if (*id < 0)
		return;
	switch (H5Iget_type(*id)) {
	case H5I_FILE: H5Fclose(*id); break;
	case H5I_GROUP: H5Gclose(*id); break;
	case H5I_DATASET: H5Dclose(*id); break;
	case H5I_DATATYPE: H5Tclose(*id); break;
	case H5I_DATASPACE: H5Sclose(*id); break;
	case H5I_ATTR: H5Aclose(*id); break;
	case H5I_GENPROP_LST: H5Pclose(*id); break;
	default: H5Idec_ref(*id); break;
	}
	*id = -1;
}

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
/* types                                                                     */
/* ------------------------------------------------------------------------- */

/* h5py stores numpy bool as a one-byte enum {FALSE, TRUE}. */
static int is_bool_enum(hid_t t)
{
	return H5Tget_class(t) == H5T_ENUM && H5Tget_size(t) == 1 && H5Tget_nmembers(t) == 2;
}

/* The dtype handed out for a file type. Half (and other narrow) floats come
 * out as float32 and wider ones as float64: HDF5 converts any float layout. */
static int file_dtype(hid_t t, ab_dtype *dt)
{
	size_t sz = H5Tget_size(t);
	switch (H5Tget_class(t)) {
	case H5T_INTEGER: {
		int sgn = H5Tget_sign(t) == H5T_SGN_2;
		switch (sz) {
		case 1: *dt = sgn ? AB_DT_INT8 : AB_DT_UINT8; return 0;
		case 2: *dt = sgn ? AB_DT_INT16 : AB_DT_UINT16; return 0;
		case 4: *dt = sgn ? AB_DT_INT32 : AB_DT_UINT32; return 0;
		case 8: *dt = sgn ? AB_DT_INT64 : AB_DT_UINT64; return 0;
		default: return -1;
		}
	}
	case H5T_FLOAT:
		*dt = sz <= 4 ? AB_DT_FLOAT32 : AB_DT_FLOAT64;
		return 0;
	case H5T_ENUM:
		if (!is_bool_enum(t))
			return -1;
		*dt = AB_DT_BOOL;
		return 0;
	case H5T_STRING:
		*dt = AB_DT_STRING;
		return 0;
	default:
		return -1;
	}
}

static hid_t native_of(ab_dtype dt)
{
	switch (dt) {
	case AB_DT_BOOL: return H5T_NATIVE_UINT8;
	case AB_DT_INT8: return H5T_NATIVE_INT8;
	case AB_DT_INT16: return H5T_NATIVE_INT16;
	case AB_DT_INT32: return H5T_NATIVE_INT32;
	case AB_DT_INT64: return H5T_NATIVE_INT64;
	case AB_DT_UINT8: return H5T_NATIVE_UINT8;
	case AB_DT_UINT16: return H5T_NATIVE_UINT16;
	case AB_DT_UINT32: return H5T_NATIVE_UINT32;
	case AB_DT_UINT64: return H5T_NATIVE_UINT64;
	case AB_DT_FLOAT32: return H5T_NATIVE_FLOAT;
	case AB_DT_FLOAT64: return H5T_NATIVE_DOUBLE;
	default: return -1;
	}
}

/* The memory type to read a numeric dataset as `dt` (caller closes). An
 * enum bool is read as its own native enum, since HDF5 has no enum to
 * integer conversion; its bytes are 0 and 1. */
static hid_t mem_type(hid_t ds, ab_dtype dt)
{
	hid_t ft = H5Dget_type(ds);
	if (ft < 0)
		return -1;
	hid_t mt = is_bool_enum(ft) ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : H5Tcopy(native_of(dt));
	H5Tclose(ft);
	return mt;
}

/* ------------------------------------------------------------------------- */
/* attributes                                                                */
/* ------------------------------------------------------------------------- */

/* Reads `n` strings from attribute or dataset `obj` of type `ft` and space
 * `fs` (an attribute when is_attr). Vlen and fixed-length both. */
static int read_string_items(hid_t obj, int is_attr, hid_t ft, hid_t fs, hid_t ms, size_t n,
			     uint64_t first, char **out, const char *what)
{
	int rc = 0;
	if (H5Tis_variable_str(ft) > 0) {
		hid_t mt = H5Tcopy(H5T_C_S1);
		H5Tset_size(mt, H5T_VARIABLE);
		H5Tset_cset(mt, H5Tget_cset(ft));
		char **p = calloc(n ? n : 1, sizeof *p);
		if (!p) {
			H5Tclose(mt);
			return oom();
		}
		herr_t e = is_attr ? H5Aread(obj, mt, p) : H5Dread(obj, mt, ms, fs, H5P_DEFAULT, p);
		if (e < 0) {
			rc = set_err(AB_EIO, "%s: cannot read the strings", what);
		} else {
			for (size_t i = 0; i < n && !rc; i++)
				if (!(out[i] = strdup(p[i] ? p[i] : "")))
					rc = oom();
			H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, p);
		}
		free(p);
		H5Tclose(mt);
		return rc;
	}
	size_t w = H5Tget_size(ft);
	if (!w)
		return set_err(AB_EFORMAT, "%s: zero-width strings", what);
	if (n && w > (SIZE_MAX - 1) / n)
		return oom();
	char *buf = malloc(n * w + 1);
	if (!buf)
		return oom();
	hid_t mt = H5Tcopy(ft);
	herr_t e = is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, ms, fs, H5P_DEFAULT, buf);
	if (e < 0)
		rc = set_err(AB_EIO, "%s: cannot read the strings", what);
	int space_pad = H5Tget_strpad(ft) == H5T_STR_SPACEPAD;
	int null_pad = H5Tget_strpad(ft) == H5T_STR_NULLPAD;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *s = buf + i * w;
		size_t l = strnlen(s, w), end = w;
		/* NULs after the end are padding; a NUL with more characters after
		 * it would cut the string (C strings all the way down): refused */
		while (null_pad && end > l && s[end - 1] == '\0')
			end--;
		if (null_pad && end > l) {
			rc = set_err(AB_EFORMAT, "%s: string %llu holds a NUL byte before its end; strings "
				     "with NUL bytes are not supported", what,
				     (unsigned long long)(first + i));
			break;
		}
		while (space_pad && l && s[l - 1] == ' ')
			l--;
		if (!(out[i] = strndup(s, l)))
			rc = oom();
	}
	H5Tclose(mt);
	free(buf);
	return rc;
}

/* All strings of a string attribute (scalar: one). *n = 0 for an attribute
 * that is absent or not of a string type (anndata writes an empty
 * column-order as an empty float array). */
static int attr_strings(hid_t obj, const char *name, char ***out, size_t *n, const char *what)
{
	*out = NULL;
	*n = 0;
	if (H5Aexists(obj, name) <= 0)
		return 0;
	hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t ft = a < 0 ? -1 : H5Aget_type(a);
	hid_t fs = a < 0 ? -1 : H5Aget_space(a);
	int rc = 0;
	if (a < 0 || ft < 0 || fs < 0) {
		rc = set_err(AB_EFORMAT, "%s: cannot read attribute %s", what, name);
	} else if (H5Tget_class(ft) == H5T_STRING) {
		hssize_t np = H5Sget_simple_extent_npoints(fs);
		size_t cnt = np > 0 ? (size_t)np : 0;
		char **v = calloc(cnt + 1, sizeof *v);
		if (!v)
			rc = oom();
		else if (cnt && (rc = read_string_items(a, 1, ft, fs, fs, cnt, 0, v, what)))
			ab_strings_free_n(v, cnt);
		else {
			*out = v;
			*n = cnt;
		}
	}
	close_id(&fs);
	close_id(&ft);
	close_id(&a);
	return rc;
}

/* One string attribute; NULL (and 0) when absent or not a string. */
static int attr_string(hid_t obj, const char *name, char **out, const char *what)
{
	char **v;
	size_t n;
	*out = NULL;
	int rc = attr_strings(obj, name, &v, &n, what);
	if (rc)
		return rc;
	if (n) {
		*out = v[0];
		v[0] = NULL;
	}
	ab_strings_free_n(v, n);
	return 0;
}

/* Up to `max` integers of an integer attribute; returns how many, or -1. */
static int attr_ints(hid_t obj, const char *name, int64_t *v, int max)
{
	if (H5Aexists(obj, name) <= 0)
		return -1;
	hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t ft = a < 0 ? -1 : H5Aget_type(a);
	hid_t fs = a < 0 ? -1 : H5Aget_space(a);
	int n = -1;
	if (ft >= 0 && fs >= 0 && H5Tget_class(ft) == H5T_INTEGER) {
		hssize_t np = H5Sget_simple_extent_npoints(fs);
		if (np >= 0 && np <= max && H5Aread(a, H5T_NATIVE_INT64, v) >= 0)
			n = (int)np;
	}
	close_id(&fs);
	close_id(&ft);
	close_id(&a);
	return n;
}

/* A bool attribute (enum bool, integer or bool-like); 0 when absent. */
static int attr_flag(hid_t obj, const char *name)
{
	if (H5Aexists(obj, name) <= 0)
		return 0;
	hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t ft = a < 0 ? -1 : H5Aget_type(a);
	int v = 0;
	if (ft >= 0 && H5Tget_size(ft) <= 8 &&
	    (H5Tget_class(ft) == H5T_ENUM || H5Tget_class(ft) == H5T_INTEGER)) {
		hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
		unsigned char b[16] = { 0 };
		if (mt >= 0 && H5Aread(a, mt, b) >= 0)
			for (int i = 0; i < 16; i++)
				v |= b[i] != 0;
		close_id(&mt);
	}
	close_id(&ft);
	close_id(&a);
	return v;
}

/* ------------------------------------------------------------------------- */
/* datasets                                                                  */
/* ------------------------------------------------------------------------- */

static int ds_shape(hid_t ds, int *rank, hsize_t dims[2])
{
	hid_t fs = H5Dget_space(ds);
	if (fs < 0)
		return -1;
	int r = H5Sget_simple_extent_ndims(fs);
	if (r < 0 || r > 2) {
		H5Sclose(fs);
		*rank = r;
		return r < 0 ? -1 : 0;
	}
	dims[0] = dims[1] = 1;
	H5Sget_simple_extent_dims(fs, dims, NULL);
	H5Sclose(fs);
	*rank = r;
	return 0;
}

/* Rows [start, start+n) of a 1-D or 2-D dataset (all columns) into dst, as
 * memory type mt. Only that hyperslab is read from the file. */
static int read_rows(hid_t ds, hid_t mt, uint64_t start, uint64_t n, void *dst, const char *what)
{
	if (!n)
		return 0;
	hid_t fs = H5Dget_space(ds);
	int r = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
	hsize_t dims[2] = { 0, 1 }, off[2] = { start, 0 }, cnt[2] = { n, 1 };
	int rc = 0;
	if (r < 1 || r > 2) {
		rc = set_err(AB_EFORMAT, "%s: expected a 1-D or 2-D dataset", what);
	} else {
		H5Sget_simple_extent_dims(fs, dims, NULL);
		cnt[1] = r == 2 ? dims[1] : 1;
		if (start + n > dims[0]) {
			rc = set_err(AB_ERANGE, "%s: rows %llu:%llu outside its %llu rows", what,
				     (unsigned long long)start, (unsigned long long)(start + n),
				     (unsigned long long)dims[0]);
		} else {
			hid_t ms = H5Screate_simple(r, cnt, NULL);
			if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
			    H5Dread(ds, mt, ms, fs, H5P_DEFAULT, dst) < 0)
				rc = set_err(AB_EIO, "%s: cannot read rows %llu:%llu (unreadable data or "
					     "a filter HDF5 does not have)", what, (unsigned long long)start,
					     (unsigned long long)(start + n));
			close_id(&ms);
		}
	}
	close_id(&fs);
	return rc;
}

/* Strings [start, start+n) of a 1-D string dataset. */
static int read_strings_range(hid_t ds, uint64_t start, uint64_t n, char ***out, const char *what)
{
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return oom();
	*out = v;
	if (!n)
		return 0;
	hid_t ft = H5Dget_type(ds), fs = H5Dget_space(ds);
	hsize_t dims[1] = { 0 }, off[1] = { start }, cnt[1] = { n };
	int rc = 0;
	if (ft < 0 || fs < 0 || H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_ndims(fs) != 1) {
		rc = set_err(AB_EFORMAT, "%s: expected a 1-D string dataset", what);
	} else {
		H5Sget_simple_extent_dims(fs, dims, NULL);
		if (start + n > dims[0]) {
			rc = set_err(AB_ERANGE, "%s: rows %llu:%llu outside its %llu rows", what,
				     (unsigned long long)start, (unsigned long long)(start + n),
				     (unsigned long long)dims[0]);
		} else {
			hid_t ms = H5Screate_simple(1, cnt, NULL);
			if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0)
				rc = set_err(AB_EIO, "%s: cannot select rows", what);
			else
				rc = read_string_items(ds, 0, ft, fs, ms, (size_t)n, start, v, what);
			close_id(&ms);
		}
	}
	close_id(&ft);
	close_id(&fs);
	if (rc) {
		ab_strings_free_n(v, (size_t)n);
		*out = NULL;
	}
	return rc;
}

/* Opens `name` under `loc` as a dataset or group; *kind is H5I_DATASET or
 * H5I_GROUP. AB_ENOENT when absent. */
static int open_obj(hid_t loc, const char *name, hid_t *out, H5I_type_t *kind)
{
	*out = -1;
	if (!*name || strchr(name, '/') || H5Lexists(loc, name, H5P_DEFAULT) <= 0)
		return AB_ENOENT;
	hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
	if (o < 0)
		return AB_EFORMAT;
	*kind = H5Iget_type(o);
	if (*kind != H5I_DATASET && *kind != H5I_GROUP) {
		H5Oclose(o);
		return AB_EFORMAT;
	}
	*out = o;
	return 0;
}

static hid_t open_dataset(hid_t loc, const char *name)
{
	if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
		return -1;
	return H5Dopen2(loc, name, H5P_DEFAULT);
}

static uint64_t ds_len(hid_t ds)
{
	int r;
	hsize_t d[2];
	if (ds_shape(ds, &r, d) || r < 1)
		return 0;
	return d[0];
}

/* ------------------------------------------------------------------------- */
/* the AnnData                                                               */
/* ------------------------------------------------------------------------- */

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

void h5ad_close(h5ad *h)
{
	if (!h)
		return;
	close_id(&h->x_mt);
	close_id(&h->xdata);
	close_id(&h->xindices);
	close_id(&h->x);
	close_id(&h->obs);
	close_id(&h->var);
	close_id(&h->file);
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
	int rc = open_obj(h->file, name, &o, &kind);
	if (rc == AB_ENOENT)
		return set_err(rc, "%s: no %s in the file", h->path, name);
	if (rc)
		return set_err(rc, "%s: cannot open %s", h->path, name);
	if (kind != H5I_GROUP) {
		H5Oclose(o);
		return set_err(AB_EUNSUPPORTED, "%s: %s is a single (compound) dataset, the layout of "
			       "anndata before 0.7; not supported", h->path, name);
	}
	*g = o;
	if ((rc = attr_string(o, "_index", index, what)))
		return rc;
	if (!*index && !(*index = strdup("_index")))
		return oom();
	if (cols && (rc = attr_strings(o, "column-order", cols, n, what)))
		return rc;
	if (cols && !*cols && !(*cols = calloc(1, sizeof **cols)))
		return oom();
	if (!cols) {
		char **c;
		size_t k;
		if ((rc = attr_strings(o, "column-order", &c, &k, what)))
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
	int rc = open_obj(h->file, "X", &o, &kind);
	if (rc == AB_ENOENT)
		return set_err(rc, "%s: no X in the file", p);
	if (rc)
		return set_err(rc, "%s: cannot open X", p);
	h->x = o;
	if (kind == H5I_DATASET) {
		/* Dense, whether or not it carries encoding-type "array" (files
		 * from before anndata 0.8 have no encoding attributes on X). */
		int r;
		hsize_t d[2];
		hid_t ft = H5Dget_type(o);
		ab_dtype dt = AB_DT_STRING;
		if (ds_shape(o, &r, d) || r != 2) {
			H5Tclose(ft);
			return set_err(AB_EFORMAT, "%s: X is a %d-D dataset, expected 2-D", p, r);
		}
		if (ft < 0 || file_dtype(ft, &dt) || dt == AB_DT_STRING) {
			close_id(&ft);
			return set_err(AB_EUNSUPPORTED, "%s: X has a data type that is not numeric", p);
		}
		close_id(&ft);
		h->info.x_kind = AB_X_DENSE;
		h->info.x_dtype = dt;
		h->info.n_obs = d[0];
		h->info.n_vars = d[1];
		h->x_mt = mem_type(o, dt);
		return 0;
	}
	/* A sparse group: encoding-type csr_matrix/csc_matrix, or the
	 * h5sparse_format attribute of older anndata. */
	char *enc = NULL;
	int64_t shape[2];
	int ns;
	if ((rc = attr_string(o, "encoding-type", &enc, "X")))
		return rc;
	if (!enc && (rc = attr_string(o, "h5sparse_format", &enc, "X")))
		return rc;
	int csr = enc && (!strcmp(enc, "csr_matrix") || !strcmp(enc, "csr"));
	int csc = enc && (!strcmp(enc, "csc_matrix") || !strcmp(enc, "csc"));
	if (!csr) {
		rc = csc ? set_err(AB_EUNSUPPORTED, "%s: X is a csc_matrix; only csr_matrix and dense X "
				   "are supported", p)
			 : set_err(AB_EUNSUPPORTED, "%s: X is a group with encoding-type '%s'; expected "
				   "csr_matrix or a dense dataset", p, enc ? enc : "(none)");
		free(enc);
		return rc;
	}
	free(enc);
	ns = attr_ints(o, "shape", shape, 2);
	if (ns != 2)
		ns = attr_ints(o, "h5sparse_shape", shape, 2);
	if (ns != 2 || shape[0] < 0 || shape[1] < 0)
		return set_err(AB_EFORMAT, "%s: X has no valid shape attribute", p);
	h->info.x_kind = AB_X_CSR;
	h->info.n_obs = (uint64_t)shape[0];
	h->info.n_vars = (uint64_t)shape[1];
	h->xdata = open_dataset(o, "data");
	h->xindices = open_dataset(o, "indices");
	hid_t ip = open_dataset(o, "indptr");
	if (h->xdata < 0 || h->xindices < 0 || ip < 0) {
		close_id(&ip);
		return set_err(AB_EFORMAT, "%s: X lacks one of data, indices, indptr", p);
	}
	hid_t ft = H5Dget_type(h->xdata), it = H5Dget_type(h->xindices);
	ab_dtype dt = AB_DT_STRING;
	int bad = ft < 0 || file_dtype(ft, &dt) || dt == AB_DT_STRING;
	int ibad = it < 0 || H5Tget_class(it) != H5T_INTEGER;
	close_id(&ft);
	close_id(&it);
	if (bad || ibad) {
		close_id(&ip);
		return set_err(AB_EUNSUPPORTED, "%s: X/%s has a data type that is not %s", p,
			       bad ? "data" : "indices", bad ? "numeric" : "integer");
	}
	h->info.x_dtype = dt;
	h->x_mt = mem_type(h->xdata, dt);
	uint64_t n = h->info.n_obs;
	if (ds_len(ip) != n + 1) {
		close_id(&ip);
		return set_err(AB_EFORMAT, "%s: X/indptr has %llu entries for %llu rows", p,
			       (unsigned long long)ds_len(ip), (unsigned long long)n);
	}
	if (n + 1 > SIZE_MAX / 8 || !(h->indptr = malloc((size_t)(n + 1) * 8))) {
		close_id(&ip);
		return oom();
	}
	rc = read_rows(ip, H5T_NATIVE_INT64, 0, n + 1, h->indptr, "X/indptr");
	close_id(&ip);
	if (rc)
		return set_err(rc, "%s: %s", p, h5ad_last_error());
	uint64_t nd = ds_len(h->xdata), ni = ds_len(h->xindices);
	for (uint64_t i = 0; i < n; i++)
		if (h->indptr[i] < 0 || h->indptr[i] > h->indptr[i + 1])
			return set_err(AB_ECORRUPT, "%s: X/indptr decreases at row %llu", p,
				       (unsigned long long)i);
	if (h->indptr[0] < 0 || (uint64_t)h->indptr[n] > nd || (uint64_t)h->indptr[n] > ni)
		return set_err(AB_ECORRUPT, "%s: X/indptr ends at %lld, past X/data (%llu) or "
			       "X/indices (%llu)", p, (long long)h->indptr[n], (unsigned long long)nd,
			       (unsigned long long)ni);
	return 0;
}

int h5ad_open(const char *path, h5ad **out)
{
	quiet_hdf5();
	*out = NULL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return set_err(AB_ENOENT, "%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return set_err(AB_EINVAL, "%s: not a regular file", path);
	if (H5Fis_hdf5(path) <= 0)
		return set_err(AB_EFORMAT, "%s: not an HDF5 file", path);
	h5ad *h = calloc(1, sizeof *h);
	if (!h)
		return oom();
	h->file = h->obs = h->var = h->x = h->xdata = h->xindices = h->x_mt = -1;
	if (!(h->path = strdup(path))) {
		free(h);
		return oom();
	}
	int rc = 0;
	if ((h->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
		rc = set_err(AB_EIO, "%s: HDF5 cannot open the file", path);
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
		return set_err(AB_ERANGE, "%s: X rows %llu:%llu out of range", h->path,
			       (unsigned long long)start, (unsigned long long)end);
	int64_t base = h->indptr[start];
	uint64_t nnz = (uint64_t)(h->indptr[end] - base);
	for (uint64_t r = start; r <= end; r++)
		indptr[r - start] = h->indptr[r] - base;
	/* HDF5 widens the indices to int64 and converts data to the native
	 * layout as it reads. */
	int rc = read_rows(h->xindices, H5T_NATIVE_INT64, (uint64_t)base, nnz, indices, "X/indices");
	if (!rc)
		rc = read_rows(h->xdata, h->x_mt, (uint64_t)base, nnz, data, "X/data");
	if (rc)
		return set_err(rc, "%s: %s", h->path, h5ad_last_error());
	for (uint64_t k = 0; k < nnz; k++)
		if (indices[k] < 0 || (uint64_t)indices[k] >= h->info.n_vars)
			return set_err(AB_ECORRUPT, "%s: X/indices[%llu] = %lld is outside the %llu "
				       "columns", h->path, (unsigned long long)(base + (int64_t)k),
				       (long long)indices[k], (unsigned long long)h->info.n_vars);
	return 0;
}

int h5ad_x_read_dense(h5ad *h, uint64_t start, uint64_t end, void *dst, size_t dst_size)
{
	if (h->info.x_kind != AB_X_DENSE || start > end || end > h->info.n_obs)
		return set_err(AB_ERANGE, "%s: X rows %llu:%llu out of range", h->path,
			       (unsigned long long)start, (unsigned long long)end);
	if ((end - start) * h->info.n_vars * ab_dtype_size(h->info.x_dtype) > dst_size)
		return set_err(AB_EINVAL, "%s: X read buffer too small", h->path);
	int rc = read_rows(h->x, h->x_mt, start, end - start, dst, "X");
	return rc ? set_err(rc, "%s: %s", h->path, h5ad_last_error()) : 0;
}

const char *const *h5ad_obs_columns(const h5ad *h)
{
	return (const char *const *)h->obs_cols;
}

const char *const *h5ad_var_columns(const h5ad *h)
{
	return (const char *const *)h->var_cols;
}

/* ------------------------------------------------------------------------- */
/* columns                                                                   */
/* ------------------------------------------------------------------------- */

struct h5ad_col {
	char *what;                  /* "file: obs/name" for messages           */
	ab_column_kind kind;
	uint64_t length;
	ab_dtype dtype;              /* values (codes for categoricals)         */
	hid_t values, mask, categories;
	hid_t mt, mask_mt;           /* memory types                            */
	int ordered;
	char **labels;               /* categories as strings, on first use     */
	size_t nlabels;
};

void h5ad_column_close(h5ad_col *c)
{
	if (!c)
		return;
	close_id(&c->values);
	close_id(&c->mask);
	close_id(&c->categories);
	close_id(&c->mt);
	close_id(&c->mask_mt);
	ab_strings_free_n(c->labels, c->nlabels);
	free(c->what);
	free(c);
}

static int col_values(h5ad_col *c, hid_t ds)
{
	c->values = ds;
	hid_t ft = H5Dget_type(ds);
	int r;
	hsize_t d[2];
	ab_dtype dt;
	int bad = ft < 0 || file_dtype(ft, &dt);
	close_id(&ft);
	if (bad)
		return set_err(AB_EUNSUPPORTED, "%s: a data type annbatch does not read", c->what);
	if (ds_shape(ds, &r, d) || r != 1)
		return set_err(AB_EFORMAT, "%s: expected a 1-D dataset", c->what);
	c->dtype = dt;
	c->length = d[0];
	if (dt != AB_DT_STRING && (c->mt = mem_type(ds, dt)) < 0)
		return set_err(AB_EFORMAT, "%s: unusable data type", c->what);
	return 0;
}

static int col_from_group(h5ad_col *c, hid_t g)
{
	char *enc = NULL;
	int rc = attr_string(g, "encoding-type", &enc, c->what);
	if (rc)
		return rc;
	if (!enc)
		return set_err(AB_EUNSUPPORTED, "%s: a group without encoding-type", c->what);
	if (!strcmp(enc, "categorical")) {
		c->kind = AB_COL_CATEGORICAL;
		c->ordered = attr_flag(g, "ordered");
		hid_t codes = open_dataset(g, "codes");
		c->categories = open_dataset(g, "categories");
		if (codes < 0 || c->categories < 0) {
			close_id(&codes);
			rc = set_err(AB_EFORMAT, "%s: categorical without codes or categories", c->what);
		} else if (!(rc = col_values(c, codes)) && c->dtype == AB_DT_STRING) {
			rc = set_err(AB_EFORMAT, "%s: categorical codes are strings", c->what);
		}
	} else if (!strcmp(enc, "nullable-integer") || !strcmp(enc, "nullable-boolean") ||
		   !strcmp(enc, "nullable-string-array")) {
		c->kind = enc[9] == 'i' ? AB_COL_NULLABLE_INTEGER
			: enc[9] == 'b' ? AB_COL_NULLABLE_BOOLEAN : AB_COL_NULLABLE_STRING;
		hid_t v = open_dataset(g, "values");
		c->mask = open_dataset(g, "mask");
		if (v < 0 || c->mask < 0) {
			close_id(&v);
			rc = set_err(AB_EFORMAT, "%s: %s without values or mask", c->what, enc);
		} else if (!(rc = col_values(c, v))) {
			if ((c->kind == AB_COL_NULLABLE_STRING) != (c->dtype == AB_DT_STRING))
				rc = set_err(AB_EFORMAT, "%s: %s values of the wrong type", c->what, enc);
			else if (ds_len(c->mask) != c->length)
				rc = set_err(AB_EFORMAT, "%s: mask and values differ in length", c->what);
			else if ((c->mask_mt = mem_type(c->mask, AB_DT_BOOL)) < 0)
				rc = set_err(AB_EFORMAT, "%s: unusable mask type", c->what);
		}
	} else {
		rc = set_err(AB_EUNSUPPORTED, "%s: encoding-type '%s' is not a column annbatch reads",
			     c->what, enc);
	}
	free(enc);
	return rc;
}

/* Before anndata 0.7 a categorical was its codes dataset with an attribute
 * "categories" holding an object reference to the labels. */
static int legacy_categories(h5ad_col *c)
{
	if (H5Aexists(c->values, "categories") <= 0)
		return 0;
	hid_t a = H5Aopen(c->values, "categories", H5P_DEFAULT);
	hid_t t = a < 0 ? -1 : H5Aget_type(a);
	int rc = 0;
	if (t >= 0 && H5Tget_class(t) == H5T_REFERENCE) {
		hobj_ref_t ref;
		if (H5Aread(a, H5T_STD_REF_OBJ, &ref) < 0 ||
		    (c->categories = H5Rdereference2(c->values, H5P_DEFAULT, H5R_OBJECT, &ref)) < 0 ||
		    H5Iget_type(c->categories) != H5I_DATASET)
			rc = set_err(AB_EFORMAT, "%s: unreadable categories reference", c->what);
		else
			c->kind = AB_COL_CATEGORICAL;
		c->ordered = attr_flag(c->values, "ordered");
	}
	close_id(&t);
	close_id(&a);
	return rc;
}

int h5ad_column_open(h5ad *h, const char *frame, const char *name, h5ad_col **out)
{
	*out = NULL;
	int is_obs = strcmp(frame, "obs") == 0;
	hid_t g = is_obs ? h->obs : h->var;
	const char *idx = is_obs ? h->obs_index : h->var_index;
	if (!strcmp(name, "_index"))
		name = idx;
	h5ad_col *c = calloc(1, sizeof *c);
	if (!c)
		return oom();
	c->values = c->mask = c->categories = c->mt = c->mask_mt = -1;
	size_t wl = strlen(h->path) + strlen(frame) + strlen(name) + 8;
	if (!(c->what = malloc(wl))) {
		free(c);
		return oom();
	}
	snprintf(c->what, wl, "%s: %s/%s", h->path, frame, name);
	hid_t o;
	H5I_type_t kind;
	int rc = open_obj(g, name, &o, &kind);
	if (rc == AB_ENOENT)
		rc = set_err(rc, "%s: no such column", c->what);
	else if (rc)
		rc = set_err(rc, "%s: cannot open", c->what);
	else if (kind == H5I_GROUP) {
		rc = col_from_group(c, o);
		H5Oclose(o);
	} else {
		c->kind = AB_COL_ARRAY;
		if (!(rc = col_values(c, o))) {
			if (c->dtype == AB_DT_STRING)
				c->kind = AB_COL_STRING;
			else
				rc = legacy_categories(c);
		}
	}
	uint64_t want = is_obs ? h->info.n_obs : h->info.n_vars;
	if (!rc && c->length != want)
		rc = set_err(AB_EFORMAT, "%s: %llu rows, the AnnData has %llu", c->what,
			     (unsigned long long)c->length, (unsigned long long)want);
	if (rc) {
		h5ad_column_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void h5ad_column_get_info(const h5ad_col *c, ab_column_info *info)
{
	memset(info, 0, sizeof *info);
	info->kind = c->kind;
	info->length = c->length;
	info->dtype = c->dtype;
	info->ordered = c->ordered;
	if (c->kind == AB_COL_CATEGORICAL) {
		ab_dtype cd = AB_DT_STRING;
		hid_t ft = H5Dget_type(c->categories);
		if (ft >= 0)
			file_dtype(ft, &cd);
		close_id(&ft);
		info->categories_dtype = cd;
		info->n_categories = ds_len(c->categories);
	}
}

static int check_range(h5ad_col *c, uint64_t start, uint64_t end)
{
	if (start > end || end > c->length)
		return set_err(AB_ERANGE, "%s: rows %llu:%llu out of range", c->what,
			       (unsigned long long)start, (unsigned long long)end);
	return 0;
}

static int read_mask(h5ad_col *c, uint64_t start, uint64_t n, uint8_t *mask)
{
	int rc = read_rows(c->mask, c->mask_mt, start, n, mask, c->what);
	for (uint64_t i = 0; !rc && i < n; i++)
		mask[i] = mask[i] != 0;
	return rc;
}

int h5ad_column_read(h5ad_col *c, uint64_t start, uint64_t end, void *dst, size_t dst_size,
		     uint8_t *mask)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	if (c->dtype == AB_DT_STRING)
		return set_err(AB_ETYPE, "%s: holds strings", c->what);
	uint64_t n = end - start;
	if (n * ab_dtype_size(c->dtype) > dst_size)
		return set_err(AB_EINVAL, "%s: read buffer too small", c->what);
	if ((rc = read_rows(c->values, c->mt, start, n, dst, c->what)))
		return rc;
	if (c->dtype == AB_DT_BOOL)
		for (uint64_t i = 0; i < n; i++)
			((uint8_t *)dst)[i] = ((uint8_t *)dst)[i] != 0;
	if (!mask)
		return 0;
	if (c->mask >= 0)
		return read_mask(c, start, n, mask);
	memset(mask, 0, (size_t)n);
	if (c->kind == AB_COL_CATEGORICAL) {
		int64_t *codes = malloc((size_t)n * 8 + 8);
		if (!codes)
			return oom();
		rc = read_rows(c->values, H5T_NATIVE_INT64, start, n, codes, c->what);
		for (uint64_t i = 0; !rc && i < n; i++)
			mask[i] = codes[i] < 0;
		free(codes);
	}
	return rc;
}

static int load_labels(h5ad_col *c)
{
	if (c->labels)
		return 0;
	uint64_t n = ds_len(c->categories);
	ab_dtype dt = AB_DT_STRING;
	hid_t ft = H5Dget_type(c->categories);
	int bad = ft < 0 || file_dtype(ft, &dt);
	close_id(&ft);
	if (bad)
		return set_err(AB_EUNSUPPORTED, "%s: categories of a type annbatch does not read", c->what);
	if (dt == AB_DT_STRING) {
		int rc = read_strings_range(c->categories, 0, n, &c->labels, c->what);
		if (!rc)
			c->nlabels = (size_t)n;
		return rc;
	}
	/* Numeric categories become their JSON text, as the zarr reader does. */
	double *v = malloc((size_t)n * sizeof *v + 8);
	int64_t *iv = malloc((size_t)n * sizeof *iv + 8);
	char **l = calloc((size_t)n + 1, sizeof *l);
	int rc = !v || !iv || !l ? oom() : 0;
	int integral = dt != AB_DT_FLOAT32 && dt != AB_DT_FLOAT64;
	if (!rc)
		rc = read_rows(c->categories, H5T_NATIVE_DOUBLE, 0, n, v, c->what);
	if (!rc && integral)
		rc = read_rows(c->categories, dt == AB_DT_UINT64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, 0,
			       n, iv, c->what);
	for (uint64_t i = 0; !rc && i < n; i++) {
		char buf[64];
		if (dt == AB_DT_BOOL)
			snprintf(buf, sizeof buf, "%s", v[i] != 0 ? "true" : "false");
		else if (dt == AB_DT_UINT64)
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)(uint64_t)iv[i]);
		else if (integral)
			snprintf(buf, sizeof buf, "%lld", (long long)iv[i]);
		else
			snprintf(buf, sizeof buf, "%.17g", v[i]);
		if (!(l[i] = strdup(buf)))
			rc = oom();
	}
	free(v);
	free(iv);
	if (rc) {
		ab_strings_free_n(l, (size_t)n);
		return rc;
	}
	c->labels = l;
	c->nlabels = (size_t)n;
	return 0;
}

int h5ad_column_categories(h5ad_col *c, char ***strings, size_t *count)
{
	if (c->kind != AB_COL_CATEGORICAL)
		return set_err(AB_ETYPE, "%s: not categorical", c->what);
	int rc = load_labels(c);
	if (rc)
		return rc;
	char **out = calloc(c->nlabels + 1, sizeof *out);
	if (!out)
		return oom();
	for (size_t i = 0; i < c->nlabels; i++)
		if (!(out[i] = strdup(c->labels[i]))) {
			ab_strings_free_n(out, i);
			return oom();
		}
	*strings = out;
	if (count)
		*count = c->nlabels;
	return 0;
}

int h5ad_column_read_strings(h5ad_col *c, uint64_t start, uint64_t end, char ***strings,
			     size_t *count)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	size_t n = (size_t)(end - start);
	if (c->kind == AB_COL_STRING || c->kind == AB_COL_NULLABLE_STRING) {
		char **s;
		if ((rc = read_strings_range(c->values, start, n, &s, c->what)))
			return rc;
		if (c->mask >= 0) {
			uint8_t *m = malloc(n + 1);
			if (!m)
				rc = oom();
			else if (!(rc = read_mask(c, start, n, m)))
				for (size_t i = 0; i < n; i++)
					if (m[i]) {
						free(s[i]);
						s[i] = NULL;
					}
			free(m);
		}
		if (rc) {
			ab_strings_free_n(s, n);
			return rc;
		}
		*strings = s;
		if (count)
			*count = n;
		return 0;
	}
	if (c->kind != AB_COL_CATEGORICAL)
		return set_err(AB_ETYPE, "%s: numeric, not strings", c->what);
	if ((rc = load_labels(c)))
		return rc;
	int64_t *codes = malloc(n * 8 + 8);
	char **out = calloc(n + 1, sizeof *out);
	if (!codes || !out) {
		free(codes);
		free(out);
		return oom();
	}
	rc = read_rows(c->values, H5T_NATIVE_INT64, start, n, codes, c->what);
	for (size_t i = 0; !rc && i < n; i++) {
		if (codes[i] < 0)
			continue;
		if ((uint64_t)codes[i] >= c->nlabels)
			rc = set_err(AB_ECORRUPT, "%s: code %lld at row %llu is outside its %zu categories",
				     c->what, (long long)codes[i], (unsigned long long)(start + i),
				     c->nlabels);
		else if (!(out[i] = strdup(c->labels[codes[i]])))
			rc = oom();
	}
	free(codes);
	if (rc) {
		ab_strings_free_n(out, n);
		return rc;
	}
	*strings = out;
	if (count)
		*count = n;
	return 0;
}

/* ------------------------------------------------------------------------- */
/* writing                                                                   */
/* ------------------------------------------------------------------------- */

struct h5w {
	char *path, *tmp;
	hid_t file;
	hid_t gcpl;        /* groups: no timestamps                           */
	hid_t str_t;       /* vlen UTF-8 string                               */
	hid_t bool_t;      /* h5py's bool enum                                */
	int gzip;          /* level, or -1                                    */
};

struct h5w_array {
	h5w *w;
	hid_t ds, mt;
	char *node;
	int ndim;
	uint64_t rows, ncols;  /* rows written; items per row                 */
	uint64_t cap_rows;     /* 2-D: the fixed row count                    */
};

static int werr(h5w *w, const char *node, const char *doing)
{
	return set_err(AB_EIO, "%s: %s %s failed (disk full or not writable?)", w->path, doing,
		       node && *node ? node : "/");
}

static hid_t file_type_of(h5w *w, ab_dtype dt)
{
	switch (dt) {
	case AB_DT_BOOL: return w->bool_t;
	case AB_DT_INT8: return H5T_STD_I8LE;
	case AB_DT_INT16: return H5T_STD_I16LE;
	case AB_DT_INT32: return H5T_STD_I32LE;
	case AB_DT_INT64: return H5T_STD_I64LE;
	case AB_DT_UINT8: return H5T_STD_U8LE;
	case AB_DT_UINT16: return H5T_STD_U16LE;
	case AB_DT_UINT32: return H5T_STD_U32LE;
	case AB_DT_UINT64: return H5T_STD_U64LE;
	case AB_DT_FLOAT32: return H5T_IEEE_F32LE;
	case AB_DT_FLOAT64: return H5T_IEEE_F64LE;
	default: return -1;
	}
}

int h5w_create(const char *path, int overwrite, int gzip_level, h5w **out)
{
	quiet_hdf5();
	*out = NULL;
	struct stat sb;
	if (!overwrite && lstat(path, &sb) == 0)
		return set_err(AB_EINVAL, "%s exists (use --force to replace it)", path);
	if (overwrite && lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return set_err(AB_EINVAL, "%s exists and is not a regular file; not replaced", path);
	h5w *w = calloc(1, sizeof *w);
	if (!w)
		return oom();
	w->file = w->gcpl = w->str_t = w->bool_t = -1;
	w->gzip = gzip_level;
	/* The temporary name is hidden, next to the target (same file system,
	 * so the final rename is atomic), and names our process. */
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	size_t tl = strlen(path) + 64;
	w->path = strdup(path);
	w->tmp = malloc(tl);
	if (!w->path || !w->tmp) {
		h5w_abort(w);
		return oom();
	}
	snprintf(w->tmp, tl, "%.*s.%s.annbatch-tmp-%ld", (int)dl, path, path + dl, (long)getpid());
	unlink(w->tmp);
	hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
	w->gcpl = H5Pcreate(H5P_GROUP_CREATE);
	if (fcpl >= 0)
		H5Pset_obj_track_times(fcpl, 0); /* the root group's header too */
	if (w->gcpl >= 0)
		H5Pset_obj_track_times(w->gcpl, 0);
	w->file = H5Fcreate(w->tmp, H5F_ACC_EXCL, fcpl, H5P_DEFAULT);
	close_id(&fcpl);
	if (w->file < 0) {
		int rc = set_err(AB_EIO, "%s: cannot create %s: %s", path, w->tmp, strerror(errno));
		h5w_abort(w);
		return rc;
	}
	w->str_t = H5Tcopy(H5T_C_S1);
	H5Tset_size(w->str_t, H5T_VARIABLE);
	H5Tset_cset(w->str_t, H5T_CSET_UTF8);
	w->bool_t = H5Tenum_create(H5T_NATIVE_INT8);
	int8_t f = 0, t = 1;
	H5Tenum_insert(w->bool_t, "FALSE", &f);
	H5Tenum_insert(w->bool_t, "TRUE", &t);
	*out = w;
	return 0;
}

static void h5w_free(h5w *w)
{
	close_id(&w->str_t);
	close_id(&w->bool_t);
	close_id(&w->gcpl);
	free(w->path);
	free(w->tmp);
	free(w);
}

void h5w_abort(h5w *w)
{
	if (!w)
		return;
	close_id(&w->file);
	if (w->tmp)
		unlink(w->tmp);
	h5w_free(w);
}

int h5w_commit(h5w *w)
{
	int rc = 0;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(w->file) < 0)
		rc = set_err(AB_EIO, "%s: writing the file failed (disk full?)", w->path);
	w->file = -1;
	if (!rc) {
		int fd = open(w->tmp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0)
			rc = set_err(AB_EIO, "%s: %s", w->tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (!rc && rename(w->tmp, w->path) != 0)
		rc = set_err(AB_EIO, "%s: rename: %s", w->path, strerror(errno));
	if (rc)
		unlink(w->tmp);
	h5w_free(w);
	return rc;
}

static int put_attr_string(h5w *w, hid_t obj, const char *name, const char *value)
{
	hid_t s = H5Screate(H5S_SCALAR);
	hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, w->str_t, s, H5P_DEFAULT, H5P_DEFAULT);
	int bad = a < 0 || H5Awrite(a, w->str_t, &value) < 0;
	close_id(&a);
	close_id(&s);
	return bad ? -1 : 0;
}

static int put_encoding(h5w *w, hid_t obj, const char *enc, const char *ver)
{
	if (!enc)
		return 0;
	return put_attr_string(w, obj, "encoding-type", enc) || put_attr_string(w, obj, "encoding-version", ver)
		? -1 : 0;
}

static const char *version_of(const char *enc)
{
	if (!strcmp(enc, "anndata") || !strcmp(enc, "dict") || !strcmp(enc, "csr_matrix") ||
	    !strncmp(enc, "nullable", 8))
		return "0.1.0";
	return "0.2.0";
}

static hid_t make_group(h5w *w, const char *node)
{
	if (!*node || !strcmp(node, "/"))
		return H5Gopen2(w->file, "/", H5P_DEFAULT);
	return H5Gcreate2(w->file, node, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
}

int h5w_group(h5w *w, const char *node, const char *encoding, const char *version)
{
	hid_t g = make_group(w, node);
	int bad = g < 0 || put_encoding(w, g, encoding, version ? version : encoding ? version_of(encoding) : NULL);
	close_id(&g);
	return bad ? werr(w, node, "group") : 0;
}

int h5w_anndata_root(h5w *w)
{
	static const char *const empties[] = { "layers", "obsm", "obsp", "uns", "varm", "varp" };
	int rc = h5w_group(w, "", "anndata", NULL);
	for (size_t i = 0; !rc && i < sizeof empties / sizeof *empties; i++)
		rc = h5w_group(w, empties[i], "dict", NULL);
	return rc;
}

int h5w_dataframe(h5w *w, const char *node, const char *const *columns, size_t n)
{
	hid_t g = make_group(w, node);
	int bad = g < 0 || put_attr_string(w, g, "_index", "_index");
	if (!bad) {
		/* anndata writes an empty column-order as an empty float64 array
		 * (what numpy makes of []); otherwise vlen strings. */
		hsize_t d[1] = { n };
		hid_t s = H5Screate_simple(1, d, NULL);
		hid_t t = n ? w->str_t : H5T_IEEE_F64LE;
		hid_t a = s < 0 ? -1 : H5Acreate2(g, "column-order", t, s, H5P_DEFAULT, H5P_DEFAULT);
		bad = a < 0 || (n && H5Awrite(a, w->str_t, columns) < 0);
		close_id(&a);
		close_id(&s);
	}
	bad = bad || put_encoding(w, g, "dataframe", "0.2.0");
	close_id(&g);
	return bad ? werr(w, node, "dataframe") : 0;
}

int h5w_csr_group(h5w *w, const char *node, uint64_t n_rows, uint64_t n_cols)
{
	hid_t g = make_group(w, node);
	int bad = g < 0 || put_encoding(w, g, "csr_matrix", "0.1.0");
	if (!bad) {
		int64_t shape[2] = { (int64_t)n_rows, (int64_t)n_cols };
		hsize_t d[1] = { 2 };
		hid_t s = H5Screate_simple(1, d, NULL);
		hid_t a = s < 0 ? -1 : H5Acreate2(g, "shape", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
		bad = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, shape) < 0;
		close_id(&a);
		close_id(&s);
	}
	close_id(&g);
	return bad ? werr(w, node, "csr_matrix") : 0;
}

/* Dataset creation properties: no timestamps; with gzip, chunks of `chunk`
 * (rank dims) and the deflate filter. Contiguous when not compressed, as
 * anndata writes uncompressed arrays, or when a dimension is 0. */
static hid_t make_dcpl(h5w *w, int rank, const hsize_t *chunk, int force_chunks)
{
	hid_t p = H5Pcreate(H5P_DATASET_CREATE);
	if (p < 0)
		return -1;
	H5Pset_obj_track_times(p, 0);
	int zero = 0;
	for (int i = 0; i < rank; i++)
		zero |= chunk[i] == 0;
	if ((w->gzip >= 0 || force_chunks) && !zero) {
		H5Pset_chunk(p, rank, chunk);
		if (w->gzip >= 0)
			H5Pset_deflate(p, (unsigned)w->gzip);
	}
	return p;
}

static int whole_dataset(h5w *w, const char *node, hid_t ft, hid_t mt, const void *buf, uint64_t n,
			 const char *encoding)
{
	hsize_t d[1] = { n }, ch[1] = { n < 65536 ? n : 65536 };
	hid_t s = H5Screate_simple(1, d, NULL);
	hid_t p = make_dcpl(w, 1, ch, 0);
	hid_t ds = s < 0 || p < 0 ? -1 : H5Dcreate2(w->file, node, ft, s, H5P_DEFAULT, p, H5P_DEFAULT);
	int bad = ds < 0 || (n && H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) ||
		  put_encoding(w, ds, encoding, encoding ? version_of(encoding) : NULL);
	close_id(&ds);
	close_id(&p);
	close_id(&s);
	return bad ? werr(w, node, "dataset") : 0;
}

int h5w_numeric(h5w *w, const char *node, ab_dtype dt, const void *values, uint64_t n,
		const char *encoding)
{
	hid_t ft = file_type_of(w, dt);
	if (ft < 0)
		return set_err(AB_EINVAL, "%s: dtype %s cannot be written", node, ab_dtype_name(dt));
	return whole_dataset(w, node, ft, dt == AB_DT_BOOL ? w->bool_t : native_of(dt), values, n,
			     encoding);
}

int h5w_strings(h5w *w, const char *node, const char *const *values, uint64_t n)
{
	return whole_dataset(w, node, w->str_t, w->str_t, values, n, "string-array");
}

int h5w_categorical(h5w *w, const char *node, const int32_t *codes, uint64_t n,
		    const char *const *categories, uint64_t n_categories, int ordered)
{
	hid_t g = make_group(w, node);
	int8_t ord = ordered != 0;
	int bad = g < 0 || put_encoding(w, g, "categorical", "0.2.0");
	if (!bad) {
		hid_t s = H5Screate(H5S_SCALAR);
		hid_t a = s < 0 ? -1 : H5Acreate2(g, "ordered", w->bool_t, s, H5P_DEFAULT, H5P_DEFAULT);
		bad = a < 0 || H5Awrite(a, w->bool_t, &ord) < 0;
		close_id(&a);
		close_id(&s);
	}
	close_id(&g);
	if (bad)
		return werr(w, node, "categorical");
	/* codes in the narrowest signed type for the categories, as pandas */
	ab_dtype cd = n_categories < 128 ? AB_DT_INT8 : n_categories < 32768 ? AB_DT_INT16 : AB_DT_INT32;
	size_t isz = ab_dtype_size(cd);
	void *buf = malloc((size_t)n * isz + 1);
	if (!buf)
		return oom();
	for (uint64_t i = 0; i < n; i++) {
		if (cd == AB_DT_INT8)
			((int8_t *)buf)[i] = (int8_t)codes[i];
		else if (cd == AB_DT_INT16)
			((int16_t *)buf)[i] = (int16_t)codes[i];
		else
			((int32_t *)buf)[i] = codes[i];
	}
	size_t pl = strlen(node) + 16;
	char *p = malloc(pl);
	int rc = p ? 0 : oom();
	if (!rc) {
		snprintf(p, pl, "%s/codes", node);
		rc = h5w_numeric(w, p, cd, buf, n, "array");
	}
	if (!rc) {
		snprintf(p, pl, "%s/categories", node);
		rc = h5w_strings(w, p, categories, n_categories);
	}
	free(p);
	free(buf);
	return rc;
}

int h5w_array_create(h5w *w, const char *node, ab_dtype dt, int ndim, const uint64_t *shape,
		     uint64_t chunk_rows, const char *encoding, h5w_array **out)
{
	*out = NULL;
	hid_t ft = file_type_of(w, dt);
	if (ft < 0 || ndim < 1 || ndim > 2)
		return set_err(AB_EINVAL, "%s: unsupported array", node);
	h5w_array *a = calloc(1, sizeof *a);
	if (!a || !(a->node = strdup(node))) {
		free(a);
		return oom();
	}
	a->w = w;
	a->ds = -1;
	a->ndim = ndim;
	a->mt = dt == AB_DT_BOOL ? H5Tcopy(w->bool_t) : H5Tcopy(native_of(dt));
	a->ncols = ndim == 2 ? shape[1] : 1;
	if (!chunk_rows)
		chunk_rows = 1;
	/* HDF5 caps a chunk at 4 GiB; keep them far smaller (16 MiB). */
	uint64_t row_bytes = a->ncols * ab_dtype_size(dt);
	if (row_bytes && chunk_rows * row_bytes > ((uint64_t)16 << 20))
		chunk_rows = ((uint64_t)16 << 20) / row_bytes ? ((uint64_t)16 << 20) / row_bytes : 1;
	hsize_t d[2], mx[2], ch[2];
	int force_chunks = 0;
	if (ndim == 1) {
		/* grows as rows come: chunked and extendible */
		d[0] = 0;
		mx[0] = H5S_UNLIMITED;
		ch[0] = chunk_rows;
		force_chunks = 1;
	} else {
		a->cap_rows = shape[0];
		d[0] = mx[0] = shape[0];
		d[1] = mx[1] = shape[1];
		ch[0] = chunk_rows < shape[0] ? chunk_rows : shape[0];
		ch[1] = shape[1];
	}
	hid_t s = H5Screate_simple(ndim, d, mx);
	hid_t p = make_dcpl(w, ndim, ch, force_chunks);
	a->ds = s < 0 || p < 0 ? -1 : H5Dcreate2(w->file, node, ft, s, H5P_DEFAULT, p, H5P_DEFAULT);
	int bad = a->ds < 0 || put_encoding(w, a->ds, encoding, encoding ? version_of(encoding) : NULL);
	close_id(&p);
	close_id(&s);
	if (bad || a->mt < 0) {
		int rc = werr(w, node, "dataset");
		h5w_array_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

int h5w_array_append(h5w_array *a, const void *rows, uint64_t nrows)
{
	if (!nrows)
		return 0;
	if (a->ndim == 2 && a->rows + nrows > a->cap_rows)
		return set_err(AB_ERANGE, "%s: more rows than its shape", a->node);
	if (a->ndim == 1) {
		hsize_t nd[1] = { a->rows + nrows };
		if (H5Dset_extent(a->ds, nd) < 0)
			return werr(a->w, a->node, "growing");
	}
	hsize_t off[2] = { a->rows, 0 }, cnt[2] = { nrows, a->ncols };
	hid_t fs = H5Dget_space(a->ds);
	hid_t ms = H5Screate_simple(a->ndim, cnt, NULL);
	int bad = fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
		  H5Dwrite(a->ds, a->mt, ms, fs, H5P_DEFAULT, rows) < 0;
	close_id(&ms);
	close_id(&fs);
	if (bad)
		return werr(a->w, a->node, "writing");
	a->rows += nrows;
	return 0;
}

int h5w_array_close(h5w_array *a)
{
	if (!a)
		return 0;
	/* A 2-D array closed short keeps its fill value (0) in the rows not
	 * written; only a failed write path does that, and it reported. */
	int rc = 0;
	if (a->ds >= 0 && H5Dclose(a->ds) < 0)
		rc = werr(a->w, a->node, "closing");
	close_id(&a->mt);
	free(a->node);
	free(a);
	return rc;
}
