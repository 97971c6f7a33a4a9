/*
 * frame.c - a collection's datasets and their obs columns, read through the
 * library for annbatch_c.DatasetCollection:
 *
 *   collection_datasets(path) -> ["dataset_0", ...], or None when nothing is
 *       at `path` or it is not an annbatch collection
 *   read_obs(path, nodes, columns) -> one (obs attributes JSON, row names,
 *       columns) per node; columns None: every obs column (column-order),
 *       else those of `columns` the dataset has, in that order. A column is
 *       (name, kind, dtype, values, mask, categories, categories dtype,
 *       ordered): numeric values and masks as bytearrays in the dtype named,
 *       strings as lists (None where missing), categoricals as their codes.
 *
 * The reading is done with the GIL released; the Python objects are made
 * afterwards. pandas objects are built by the Python layer (collection.py).
 */
#include "binding.h"

#include <stdio.h>
#include <string.h>

PyObject *abpy_collection_datasets(PyObject *self, PyObject *arg)
{
	(void)self;
	const char *path = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, NULL) : NULL;
	if (!path) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "collection_datasets: path must be a str");
		return NULL;
	}
	ab_store *st = NULL;
	char **names = NULL;
	size_t n = 0;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	int rc = ab_store_open(path, &st);
	if (!rc)
		rc = ab_collection_datasets(st, "", &names, &n);
	abpy_take_error(&r, rc);
	ab_store_close(st);
	Py_END_ALLOW_THREADS
	if (r.rc == AB_ENOENT || r.rc == AB_ETYPE)
		Py_RETURN_NONE;
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *s = abpy_str(names[i]);
		if (!s)
			Py_CLEAR(list);
		else
			PyList_SetItem(list, (Py_ssize_t)i, s);
	}
	ab_strings_free(names);
	return list;
}

static const char *kind_name(ab_column_kind k)
{
	switch (k) {
	case AB_COL_ARRAY: return "array";
	case AB_COL_STRING: return "string";
	case AB_COL_CATEGORICAL: return "categorical";
	case AB_COL_NULLABLE_INTEGER: return "nullable-integer";
	case AB_COL_NULLABLE_BOOLEAN: return "nullable-boolean";
	case AB_COL_NULLABLE_STRING: return "nullable-string";
	default: return "?";
	}
}

/* A list of n strings (None for NULL entries); frees them. */
static PyObject *string_list(char **s, size_t n)
{
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *o = s[i] ? abpy_str(s[i]) : Py_NewRef(Py_None);
		if (!o)
			Py_CLEAR(list);
		else
			PyList_SetItem(list, (Py_ssize_t)i, o);
	}
	ab_strings_free_n(s, n);
	return list;
}

/* One column of `ad` as the tuple described at the top of the file. */
static PyObject *read_column(ab_anndata *ad, const char *name)
{
	ab_column *col = NULL;
	ab_column_info info;
	call_result r;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = ab_anndata_obs_column(ad, name, &col);
	if (!rc)
		rc = ab_column_get_info(col, &info);
	abpy_take_error(&r, rc);
	Py_END_ALLOW_THREADS
	if (r.rc) {
		ab_column_close(col);
		return abpy_raise(r.rc, r.msg);
	}
	uint64_t n = info.length;
	PyObject *values = NULL, *mask = NULL, *cats = NULL, *ret = NULL;
	if (info.kind == AB_COL_STRING || info.kind == AB_COL_NULLABLE_STRING) {
		char **s = NULL;
		size_t k = 0;
		Py_BEGIN_ALLOW_THREADS
		abpy_take_error(&r, ab_column_read_strings(col, 0, n, &s, &k));
		Py_END_ALLOW_THREADS
		if (r.rc)
			goto fail;
		values = string_list(s, k);
	} else {
		size_t isz = ab_dtype_size(info.dtype);
		int masked = info.kind == AB_COL_NULLABLE_INTEGER || info.kind == AB_COL_NULLABLE_BOOLEAN;
		if (!isz) {
			abpy_raise(AB_EUNSUPPORTED, "obs column of an unsupported dtype");
			goto out;
		}
		/* bytearrays (numpy views of them are writable), not yet shared
		 * with anyone: filled without the GIL */
		values = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(n * isz));
		mask = masked ? PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n) : Py_NewRef(Py_None);
		if (!values || !mask)
			goto out;
		void *dst = PyByteArray_AsString(values);
		uint8_t *m = masked ? (uint8_t *)PyByteArray_AsString(mask) : NULL;
		Py_BEGIN_ALLOW_THREADS
		abpy_take_error(&r, ab_column_read(col, 0, n, dst, (size_t)(n * isz), m));
		Py_END_ALLOW_THREADS
		if (r.rc)
			goto fail;
	}
	if (!values)
		goto out;
	if (info.kind == AB_COL_CATEGORICAL) {
		char **s = NULL;
		size_t k = 0;
		Py_BEGIN_ALLOW_THREADS
		abpy_take_error(&r, ab_column_categories(col, &s, &k));
		Py_END_ALLOW_THREADS
		if (r.rc)
			goto fail;
		if (!(cats = string_list(s, k)))
			goto out;
	} else {
		cats = Py_NewRef(Py_None);
	}
	if (!mask)
		mask = Py_NewRef(Py_None);
	ret = Py_BuildValue("(sssOOOsO)", name, kind_name(info.kind), info.kind == AB_COL_STRING ||
			    info.kind == AB_COL_NULLABLE_STRING ? "string" : ab_dtype_name(info.dtype), values, mask,
			    cats, info.kind == AB_COL_CATEGORICAL ? ab_dtype_name(info.categories_dtype) : "",
			    info.ordered && info.kind == AB_COL_CATEGORICAL ? Py_True : Py_False);
	goto out;
fail:
	abpy_raise(r.rc, r.msg);
out:
	ab_column_close(col);
	Py_XDECREF(values);
	Py_XDECREF(mask);
	Py_XDECREF(cats);
	return ret;
}

/* (attributes JSON of obs, row names, [column tuples]) of the AnnData at
 * `node` of `st`. */
static PyObject *read_frame(ab_store *st, const char *node, const char *const *want, size_t n_want)
{
	ab_anndata *ad = NULL;
	char *attrs = NULL;
	char obs_node[1024];
	snprintf(obs_node, sizeof obs_node, "%s%sobs", node, *node ? "/" : "");
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	int rc = ab_anndata_open(st, node, &ad);
	if (!rc)
		rc = ab_node_attributes(st, obs_node, &attrs);
	abpy_take_error(&r, rc);
	Py_END_ALLOW_THREADS
	PyObject *cols = NULL, *index = NULL, *ret = NULL;
	if (r.rc) {
		abpy_raise(r.rc, r.msg);
		goto out;
	}
	const char *const *have = ab_anndata_obs_columns(ad);
	if (!(cols = PyList_New(0)))
		goto out;
	size_t n_have = 0;
	while (have && have[n_have])
		n_have++;
	size_t n = want ? n_want : n_have;
	for (size_t i = 0; i < n; i++) {
		const char *name = want ? want[i] : have[i];
		int present = !want;
		for (size_t j = 0; !present && j < n_have; j++)
			present = strcmp(have[j], name) == 0;
		if (!present)
			continue;
		PyObject *c = read_column(ad, name);
		if (!c || PyList_Append(cols, c) < 0) {
			Py_XDECREF(c);
			goto out;
		}
		Py_DECREF(c);
	}
	PyObject *idx = read_column(ad, "_index");
	if (!idx)
		goto out;
	index = PyTuple_GetItem(idx, 3); /* the values: a list of strings */
	Py_XINCREF(index);
	Py_DECREF(idx);
	if (!index || !PyList_Check(index)) {
		if (!PyErr_Occurred())
			abpy_raise(AB_EFORMAT, "the obs index is not a string column");
		goto out;
	}
	ret = Py_BuildValue("(NOO)", abpy_str(attrs), index, cols);
out:
	ab_free(attrs);
	ab_anndata_close(ad);
	Py_XDECREF(index);
	Py_XDECREF(cols);
	return ret;
}

/* read_obs(path, nodes, columns or None) */
PyObject *abpy_read_obs(PyObject *self, PyObject *args)
{
	(void)self;
	const char *path;
	PyObject *nodes_obj, *cols_obj, *hold_nodes = NULL, *hold_cols = NULL, *ret = NULL;
	if (!PyArg_ParseTuple(args, "sOO", &path, &nodes_obj, &cols_obj))
		return NULL;
	const char **nodes = NULL, **want = NULL;
	size_t n_nodes = 0, n_want = 0;
	ab_store *st = NULL;
	if (abpy_strings(nodes_obj, "nodes", &hold_nodes, &nodes, &n_nodes) ||
	    (cols_obj != Py_None && abpy_strings(cols_obj, "columns", &hold_cols, &want, &n_want)))
		goto out;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_store_open(path, &st));
	Py_END_ALLOW_THREADS
	if (r.rc) {
		abpy_raise(r.rc, r.msg);
		goto out;
	}
	if (!(ret = PyList_New((Py_ssize_t)n_nodes)))
		goto out;
	for (size_t i = 0; i < n_nodes; i++) {
		PyObject *f = read_frame(st, nodes[i], want, n_want);
		if (!f) {
			Py_CLEAR(ret);
			break;
		}
		PyList_SetItem(ret, (Py_ssize_t)i, f);
	}
out:
	ab_store_close(st);
	PyMem_Free(nodes);
	PyMem_Free(want);
	Py_XDECREF(hold_nodes);
	Py_XDECREF(hold_cols);
	return ret;
}
