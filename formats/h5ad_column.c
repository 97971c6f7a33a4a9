/* h5ad_column.c - obs and var columns of an .h5ad file: numeric, nullable,
 * string and categorical, as anndata 0.7-0.10 write them. */
#include "h5ad_impl.h"

#include "column.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	h5_close_id(&c->values);
	h5_close_id(&c->mask);
	h5_close_id(&c->categories);
	h5_close_id(&c->mt);
	h5_close_id(&c->mask_mt);
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
	int bad = ft < 0 || h5_file_dtype(ft, &dt);
	h5_close_id(&ft);
	if (bad)
		return ab_error_set(AB_EUNSUPPORTED, "%s: a data type annbatch does not read", c->what);
	if (h5_ds_shape(ds, &r, d) || r != 1)
		return ab_error_set(AB_EFORMAT, "%s: expected a 1-D dataset", c->what);
	c->dtype = dt;
	c->length = d[0];
	if (dt != AB_DT_STRING && (c->mt = h5_mem_type(ds, dt)) < 0)
		return ab_error_set(AB_EFORMAT, "%s: unusable data type", c->what);
	return 0;
}

static int col_from_group(h5ad_col *c, hid_t g)
{
	char *enc = NULL;
	int rc = h5_attr_string(g, "encoding-type", &enc, c->what);
	if (rc)
		return rc;
	if (!enc)
		return ab_error_set(AB_EUNSUPPORTED, "%s: a group without encoding-type", c->what);
	if (!strcmp(enc, "categorical")) {
		c->kind = AB_COL_CATEGORICAL;
		c->ordered = h5_attr_flag(g, "ordered");
		hid_t codes = h5_open_dataset(g, "codes");
		c->categories = h5_open_dataset(g, "categories");
		if (codes < 0 || c->categories < 0) {
			h5_close_id(&codes);
			rc = ab_error_set(AB_EFORMAT, "%s: categorical without codes or categories", c->what);
		} else if (!(rc = col_values(c, codes)) && c->dtype == AB_DT_STRING) {
			rc = ab_error_set(AB_EFORMAT, "%s: categorical codes are strings", c->what);
		}
	} else if (!strcmp(enc, "nullable-integer") || !strcmp(enc, "nullable-boolean") ||
		   !strcmp(enc, "nullable-string-array")) {
		c->kind = enc[9] == 'i' ? AB_COL_NULLABLE_INTEGER
			: enc[9] == 'b' ? AB_COL_NULLABLE_BOOLEAN : AB_COL_NULLABLE_STRING;
		hid_t v = h5_open_dataset(g, "values");
		c->mask = h5_open_dataset(g, "mask");
		if (v < 0 || c->mask < 0) {
			h5_close_id(&v);
			rc = ab_error_set(AB_EFORMAT, "%s: %s without values or mask", c->what, enc);
		} else if (!(rc = col_values(c, v))) {
			if ((c->kind == AB_COL_NULLABLE_STRING) != (c->dtype == AB_DT_STRING))
				rc = ab_error_set(AB_EFORMAT, "%s: %s values of the wrong type", c->what, enc);
			else if (h5_ds_len(c->mask) != c->length)
				rc = ab_error_set(AB_EFORMAT, "%s: mask and values differ in length", c->what);
			else if ((c->mask_mt = h5_mem_type(c->mask, AB_DT_BOOL)) < 0)
				rc = ab_error_set(AB_EFORMAT, "%s: unusable mask type", c->what);
		}
	} else {
		rc = ab_error_set(AB_EUNSUPPORTED, "%s: encoding-type '%s' is not a column annbatch reads",
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
			rc = ab_error_set(AB_EFORMAT, "%s: unreadable categories reference", c->what);
		else
			c->kind = AB_COL_CATEGORICAL;
		c->ordered = h5_attr_flag(c->values, "ordered");
	}
	h5_close_id(&t);
	h5_close_id(&a);
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
		return h5_oom();
	c->values = c->mask = c->categories = c->mt = c->mask_mt = -1;
	size_t wl = strlen(h->path) + strlen(frame) + strlen(name) + 8;
	if (!(c->what = malloc(wl))) {
		free(c);
		return h5_oom();
	}
	snprintf(c->what, wl, "%s: %s/%s", h->path, frame, name);
	hid_t o;
	H5I_type_t kind;
	int rc = h5_open_obj(g, name, &o, &kind);
	if (rc == AB_ENOENT)
		rc = ab_error_set(rc, "%s: no such column", c->what);
	else if (rc)
		rc = ab_error_set(rc, "%s: cannot open", c->what);
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
		rc = ab_error_set(AB_EFORMAT, "%s: %llu rows, the AnnData has %llu", c->what,
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
			h5_file_dtype(ft, &cd);
		h5_close_id(&ft);
		info->categories_dtype = cd;
		info->n_categories = h5_ds_len(c->categories);
	}
}

static int check_range(h5ad_col *c, uint64_t start, uint64_t end)
{
	if (start > end || end > c->length)
		return ab_error_set(AB_ERANGE, "%s: rows %llu:%llu out of range", c->what,
			       (unsigned long long)start, (unsigned long long)end);
	return 0;
}

const char *h5ad_column_name(const h5ad_col *c)
{
	return c->what;
}

int h5ad_column_read_mask(h5ad_col *c, uint64_t start, uint64_t end, uint8_t *mask)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	if (c->mask < 0)
		return ab_error_set(AB_ETYPE, "%s: not a nullable column", c->what);
	uint64_t n = end - start;
	rc = h5_read_rows(c->mask, c->mask_mt, start, n, mask, c->what);
	for (uint64_t i = 0; !rc && i < n; i++)
		mask[i] = mask[i] != 0;
	return rc;
}

int h5ad_column_read_values(h5ad_col *c, uint64_t start, uint64_t end, void *dst, size_t dst_size)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	if (c->dtype == AB_DT_STRING)
		return ab_error_set(AB_ETYPE, "%s: holds strings", c->what);
	uint64_t n = end - start;
	if (n * ab_dtype_size(c->dtype) > dst_size)
		return ab_error_set(AB_EINVAL, "%s: read buffer too small", c->what);
	if ((rc = h5_read_rows(c->values, c->mt, start, n, dst, c->what)))
		return rc;
	if (c->dtype == AB_DT_BOOL)
		for (uint64_t i = 0; i < n; i++)
			((uint8_t *)dst)[i] = ((uint8_t *)dst)[i] != 0;
	return 0;
}

int h5ad_column_read_codes(h5ad_col *c, uint64_t start, uint64_t end, int64_t *codes)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	if (c->kind != AB_COL_CATEGORICAL)
		return ab_error_set(AB_ETYPE, "%s: not categorical", c->what);
	return h5_read_rows(c->values, H5T_NATIVE_INT64, start, end - start, codes, c->what);
}

int h5ad_column_read_raw_strings(h5ad_col *c, uint64_t start, uint64_t end, char ***strings)
{
	int rc = check_range(c, start, end);
	if (rc)
		return rc;
	if (c->kind != AB_COL_STRING && c->kind != AB_COL_NULLABLE_STRING)
		return ab_error_set(AB_ETYPE, "%s: not a string column", c->what);
	return h5_read_strings_range(c->values, start, end - start, strings, c->what);
}

static int load_labels(h5ad_col *c)
{
	if (c->labels)
		return 0;
	uint64_t n = h5_ds_len(c->categories);
	ab_dtype dt = AB_DT_STRING;
	hid_t ft = H5Dget_type(c->categories);
	int bad = ft < 0 || h5_file_dtype(ft, &dt);
	h5_close_id(&ft);
	if (bad)
		return ab_error_set(AB_EUNSUPPORTED, "%s: categories of a type annbatch does not read", c->what);
	if (dt == AB_DT_STRING) {
		int rc = h5_read_strings_range(c->categories, 0, n, &c->labels, c->what);
		if (!rc)
			c->nlabels = (size_t)n;
		return rc;
	}
	/* Numeric categories become text, as the zarr reader makes them. */
	size_t isz = ab_dtype_size(dt);
	void *v = malloc((size_t)n * isz + 8);
	char **l = calloc((size_t)n + 1, sizeof *l);
	hid_t mt = h5_mem_type(c->categories, dt);
	int rc = !v || !l ? h5_oom() : mt < 0 ? ab_error_set(AB_EFORMAT, "%s: unusable categories type", c->what) : 0;
	if (!rc)
		rc = h5_read_rows(c->categories, mt, 0, n, v, c->what);
	for (uint64_t i = 0; !rc && i < n; i++)
		rc = ab_category_label(dt, v, (size_t)i, &l[i]);
	h5_close_id(&mt);
	free(v);
	if (rc) {
		ab_strings_free_n(l, (size_t)n);
		return rc;
	}
	c->labels = l;
	c->nlabels = (size_t)n;
	return 0;
}

int h5ad_column_labels(h5ad_col *c, char *const **labels, size_t *count)
{
	if (c->kind != AB_COL_CATEGORICAL)
		return ab_error_set(AB_ETYPE, "%s: not categorical", c->what);
	int rc = load_labels(c);
	*labels = c->labels;
	*count = c->nlabels;
	return rc;
}
