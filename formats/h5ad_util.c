/* h5ad_util.c - small HDF5 helpers of the .h5ad reader: types, attributes,
 * hyperslab reads of rows and strings. */
#include "h5ad_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int h5_oom(void)
{
	return ab_error_set(AB_ENOMEM, "out of memory");
}

/* HDF5 prints its whole error stack on stderr by default; the tool reports
 * one line of its own instead. */
void h5_quiet_hdf5(void)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_close_id(hid_t *id)
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
/* types                                                                     */
/* ------------------------------------------------------------------------- */

/* h5py stores numpy bool as a one-byte enum {FALSE, TRUE}. */
int h5_is_bool_enum(hid_t t)
{
	return H5Tget_class(t) == H5T_ENUM && H5Tget_size(t) == 1 && H5Tget_nmembers(t) == 2;
}

/* The dtype handed out for a file type. Half (and other narrow) floats come
 * out as float32 and wider ones as float64: HDF5 converts any float layout. */
int h5_file_dtype(hid_t t, ab_dtype *dt)
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
		if (!h5_is_bool_enum(t))
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

hid_t h5_native_of(ab_dtype dt)
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
hid_t h5_mem_type(hid_t ds, ab_dtype dt)
{
	hid_t ft = H5Dget_type(ds);
	if (ft < 0)
		return -1;
	hid_t mt = h5_is_bool_enum(ft) ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : H5Tcopy(h5_native_of(dt));
	H5Tclose(ft);
	return mt;
}

/* ------------------------------------------------------------------------- */
/* attributes                                                                */
/* ------------------------------------------------------------------------- */

/* Reads `n` strings from attribute or dataset `obj` of type `ft` and space
 * `fs` (an attribute when is_attr). Vlen and fixed-length both. */
int h5_read_string_items(hid_t obj, int is_attr, hid_t ft, hid_t fs, hid_t ms, size_t n,
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
			return h5_oom();
		}
		herr_t e = is_attr ? H5Aread(obj, mt, p) : H5Dread(obj, mt, ms, fs, H5P_DEFAULT, p);
		if (e < 0) {
			rc = ab_error_set(AB_EIO, "%s: cannot read the strings", what);
		} else {
			for (size_t i = 0; i < n && !rc; i++)
				if (!(out[i] = strdup(p[i] ? p[i] : "")))
					rc = h5_oom();
			H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, p);
		}
		free(p);
		H5Tclose(mt);
		return rc;
	}
	size_t w = H5Tget_size(ft);
	if (!w)
		return ab_error_set(AB_EFORMAT, "%s: zero-width strings", what);
	if (n && w > (SIZE_MAX - 1) / n)
		return h5_oom();
	char *buf = malloc(n * w + 1);
	if (!buf)
		return h5_oom();
	hid_t mt = H5Tcopy(ft);
	herr_t e = is_attr ? H5Aread(obj, mt, buf) : H5Dread(obj, mt, ms, fs, H5P_DEFAULT, buf);
	if (e < 0)
		rc = ab_error_set(AB_EIO, "%s: cannot read the strings", what);
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
			rc = ab_error_set(AB_EFORMAT, "%s: string %llu holds a NUL byte before its end; strings "
				     "with NUL bytes are not supported", what,
				     (unsigned long long)(first + i));
			break;
		}
		while (space_pad && l && s[l - 1] == ' ')
			l--;
		if (!(out[i] = strndup(s, l)))
			rc = h5_oom();
	}
	H5Tclose(mt);
	free(buf);
	return rc;
}

/* All strings of a string attribute (scalar: one). *n = 0 for an attribute
 * that is absent or not of a string type (anndata writes an empty
 * column-order as an empty float array). */
int h5_attr_strings(hid_t obj, const char *name, char ***out, size_t *n, const char *what)
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
		rc = ab_error_set(AB_EFORMAT, "%s: cannot read attribute %s", what, name);
	} else if (H5Tget_class(ft) == H5T_STRING) {
		hssize_t np = H5Sget_simple_extent_npoints(fs);
		size_t cnt = np > 0 ? (size_t)np : 0;
		char **v = calloc(cnt + 1, sizeof *v);
		if (!v)
			rc = h5_oom();
		else if (cnt && (rc = h5_read_string_items(a, 1, ft, fs, fs, cnt, 0, v, what)))
			ab_strings_free_n(v, cnt);
		else {
			*out = v;
			*n = cnt;
		}
	}
	h5_close_id(&fs);
	h5_close_id(&ft);
	h5_close_id(&a);
	return rc;
}

/* One string attribute; NULL (and 0) when absent or not a string. */
int h5_attr_string(hid_t obj, const char *name, char **out, const char *what)
{
	char **v;
	size_t n;
	*out = NULL;
	int rc = h5_attr_strings(obj, name, &v, &n, what);
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
int h5_attr_ints(hid_t obj, const char *name, int64_t *v, int max)
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
	h5_close_id(&fs);
	h5_close_id(&ft);
	h5_close_id(&a);
	return n;
}

/* A bool attribute (enum bool, integer or bool-like); 0 when absent. */
int h5_attr_flag(hid_t obj, const char *name)
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
		h5_close_id(&mt);
	}
	h5_close_id(&ft);
	h5_close_id(&a);
	return v;
}

/* ------------------------------------------------------------------------- */
/* datasets                                                                  */
/* ------------------------------------------------------------------------- */

int h5_ds_shape(hid_t ds, int *rank, hsize_t dims[2])
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
int h5_read_rows(hid_t ds, hid_t mt, uint64_t start, uint64_t n, void *dst, const char *what)
{
	if (!n)
		return 0;
	hid_t fs = H5Dget_space(ds);
	int r = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
	hsize_t dims[2] = { 0, 1 }, off[2] = { start, 0 }, cnt[2] = { n, 1 };
	int rc = 0;
	if (r < 1 || r > 2) {
		rc = ab_error_set(AB_EFORMAT, "%s: expected a 1-D or 2-D dataset", what);
	} else {
		H5Sget_simple_extent_dims(fs, dims, NULL);
		cnt[1] = r == 2 ? dims[1] : 1;
		if (start + n > dims[0]) {
			rc = ab_error_set(AB_ERANGE, "%s: rows %llu:%llu outside its %llu rows", what,
				     (unsigned long long)start, (unsigned long long)(start + n),
				     (unsigned long long)dims[0]);
		} else {
			hid_t ms = H5Screate_simple(r, cnt, NULL);
			if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
			    H5Dread(ds, mt, ms, fs, H5P_DEFAULT, dst) < 0)
				rc = ab_error_set(AB_EIO, "%s: cannot read rows %llu:%llu (unreadable data or "
					     "a filter HDF5 does not have)", what, (unsigned long long)start,
					     (unsigned long long)(start + n));
			h5_close_id(&ms);
		}
	}
	h5_close_id(&fs);
	return rc;
}

/* Strings [start, start+n) of a 1-D string dataset. */
int h5_read_strings_range(hid_t ds, uint64_t start, uint64_t n, char ***out, const char *what)
{
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return h5_oom();
	*out = v;
	if (!n)
		return 0;
	hid_t ft = H5Dget_type(ds), fs = H5Dget_space(ds);
	hsize_t dims[1] = { 0 }, off[1] = { start }, cnt[1] = { n };
	int rc = 0;
	if (ft < 0 || fs < 0 || H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_ndims(fs) != 1) {
		rc = ab_error_set(AB_EFORMAT, "%s: expected a 1-D string dataset", what);
	} else {
		H5Sget_simple_extent_dims(fs, dims, NULL);
		if (start + n > dims[0]) {
			rc = ab_error_set(AB_ERANGE, "%s: rows %llu:%llu outside its %llu rows", what,
				     (unsigned long long)start, (unsigned long long)(start + n),
				     (unsigned long long)dims[0]);
		} else {
			hid_t ms = H5Screate_simple(1, cnt, NULL);
			if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0)
				rc = ab_error_set(AB_EIO, "%s: cannot select rows", what);
			else
				rc = h5_read_string_items(ds, 0, ft, fs, ms, (size_t)n, start, v, what);
			h5_close_id(&ms);
		}
	}
	h5_close_id(&ft);
	h5_close_id(&fs);
	if (rc) {
		ab_strings_free_n(v, (size_t)n);
		*out = NULL;
	}
	return rc;
}

/* Opens `name` under `loc` as a dataset or group; *kind is H5I_DATASET or
 * H5I_GROUP. AB_ENOENT when absent. */
int h5_open_obj(hid_t loc, const char *name, hid_t *out, H5I_type_t *kind)
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

hid_t h5_open_dataset(hid_t loc, const char *name)
{
	if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
		return -1;
	return H5Dopen2(loc, name, H5P_DEFAULT);
}

uint64_t h5_ds_len(hid_t ds)
{
	int r;
	hsize_t d[2];
	if (h5_ds_shape(ds, &r, d) || r < 1)
		return 0;
	return d[0];
}
