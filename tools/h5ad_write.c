/* h5ad_write.c - the .h5ad writer behind `annbatch synth --format h5ad`
 * (see h5ad_write.h): the node kinds anndata 0.8 writes, through the HDF5 C
 * library. Only synth writes HDF5; the library reads it (formats/h5ad.c). */
#include "h5ad_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

static _Thread_local char err_msg[512];

const char *h5w_last_error(void)
{
	return err_msg;
}

__attribute__((format(printf, 2, 3))) static int h5w_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof err_msg, fmt, ap);
	va_end(ap);
	return rc;
}

/* Every id this file makes is released the same way: dropping our
 * reference closes it. */
static void h5w_close(hid_t *id)
{
	if (*id >= 0)
		H5Idec_ref(*id);
	*id = -1;
}

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
	return h5w_fail(AB_EIO, "%s: %s %s failed (disk full or not writable?)", w->path, doing,
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
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	*out = NULL;
	struct stat sb;
	if (!overwrite && lstat(path, &sb) == 0)
		return h5w_fail(AB_EINVAL, "%s exists (use --force to replace it)", path);
	if (overwrite && lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return h5w_fail(AB_EINVAL, "%s exists and is not a regular file; not replaced", path);
	h5w *w = calloc(1, sizeof *w);
	if (!w)
		return h5w_fail(AB_ENOMEM, "out of memory");
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
		return h5w_fail(AB_ENOMEM, "out of memory");
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
	h5w_close(&fcpl);
	if (w->file < 0) {
		int rc = h5w_fail(AB_EIO, "%s: cannot create %s: %s", path, w->tmp, strerror(errno));
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
	h5w_close(&w->str_t);
	h5w_close(&w->bool_t);
	h5w_close(&w->gcpl);
	free(w->path);
	free(w->tmp);
	free(w);
}

void h5w_abort(h5w *w)
{
	if (!w)
		return;
	h5w_close(&w->file);
	if (w->tmp)
		unlink(w->tmp);
	h5w_free(w);
}

int h5w_commit(h5w *w)
{
	int rc = 0;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(w->file) < 0)
		rc = h5w_fail(AB_EIO, "%s: writing the file failed (disk full?)", w->path);
	w->file = -1;
	if (!rc) {
		int fd = open(w->tmp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0)
			rc = h5w_fail(AB_EIO, "%s: %s", w->tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (!rc && rename(w->tmp, w->path) != 0)
		rc = h5w_fail(AB_EIO, "%s: rename: %s", w->path, strerror(errno));
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
	h5w_close(&a);
	h5w_close(&s);
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
	h5w_close(&g);
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
		h5w_close(&a);
		h5w_close(&s);
	}
	bad = bad || put_encoding(w, g, "dataframe", "0.2.0");
	h5w_close(&g);
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
		h5w_close(&a);
		h5w_close(&s);
	}
	h5w_close(&g);
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
	h5w_close(&ds);
	h5w_close(&p);
	h5w_close(&s);
	return bad ? werr(w, node, "dataset") : 0;
}

int h5w_numeric(h5w *w, const char *node, ab_dtype dt, const void *values, uint64_t n,
		const char *encoding)
{
	hid_t ft = file_type_of(w, dt);
	if (ft < 0)
		return h5w_fail(AB_EINVAL, "%s: dtype %s cannot be written", node, ab_dtype_name(dt));
	/* values are in host order: the memory type is the native one */
	hid_t mt = dt == AB_DT_BOOL ? H5Tcopy(w->bool_t) : H5Tget_native_type(ft, H5T_DIR_ASCEND);
	if (mt < 0)
		return werr(w, node, "type");
	int rc = whole_dataset(w, node, ft, mt, values, n, encoding);
	h5w_close(&mt);
	return rc;
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
		h5w_close(&a);
		h5w_close(&s);
	}
	h5w_close(&g);
	if (bad)
		return werr(w, node, "categorical");
	/* codes in the narrowest signed type for the categories, as pandas */
	ab_dtype cd = n_categories < 128 ? AB_DT_INT8 : n_categories < 32768 ? AB_DT_INT16 : AB_DT_INT32;
	size_t isz = ab_dtype_size(cd);
	void *buf = malloc((size_t)n * isz + 1);
	if (!buf)
		return h5w_fail(AB_ENOMEM, "out of memory");
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
	int rc = p ? 0 : h5w_fail(AB_ENOMEM, "out of memory");
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
		return h5w_fail(AB_EINVAL, "%s: unsupported array", node);
	h5w_array *a = calloc(1, sizeof *a);
	if (!a || !(a->node = strdup(node))) {
		free(a);
		return h5w_fail(AB_ENOMEM, "out of memory");
	}
	a->w = w;
	a->ds = -1;
	a->ndim = ndim;
	a->mt = dt == AB_DT_BOOL ? H5Tcopy(w->bool_t) : H5Tget_native_type(file_type_of(w, dt), H5T_DIR_ASCEND);
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
	h5w_close(&p);
	h5w_close(&s);
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
		return h5w_fail(AB_ERANGE, "%s: more rows than its shape", a->node);
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
	h5w_close(&ms);
	h5w_close(&fs);
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
	h5w_close(&a->mt);
	free(a->node);
	free(a);
	return rc;
}
