/* batch.c - Batch (one ab_batch of the engine) and Buffer (a buffer-protocol
 * view of one of its arrays). A Buffer holds its Batch and a Batch its
 * Engine, so the batch memory lives as long as any numpy array, scipy matrix
 * or torch tensor made from it, and the loader outlives its batches. */
#include "binding.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ dtypes */

/* struct-module format of each ab_dtype, "" where numpy has none */
const char *abpy_dtype_format(ab_dtype dt)
{
	switch (dt) {
	case AB_DT_BOOL: return "?";
	case AB_DT_INT8: return "b";
	case AB_DT_INT16: return "h";
	case AB_DT_INT32: return "i";
	case AB_DT_INT64: return "q";
	case AB_DT_UINT8: return "B";
	case AB_DT_UINT16: return "H";
	case AB_DT_UINT32: return "I";
	case AB_DT_UINT64: return "Q";
	case AB_DT_FLOAT16: return "e";
	case AB_DT_FLOAT32: return "f";
	case AB_DT_FLOAT64: return "d";
	case AB_DT_COMPLEX64: return "Zf";
	case AB_DT_COMPLEX128: return "Zd";
	default: return "";
	}
}

int abpy_dtype_from_name(const char *name, ab_dtype *out)
{
	for (int d = AB_DT_BOOL; d <= AB_DT_COMPLEX128; d++)
		if (strcmp(name, ab_dtype_name((ab_dtype)d)) == 0) {
			*out = (ab_dtype)d;
			return 0;
		}
	PyErr_Format(PyExc_TypeError, "unsupported dtype %s", name);
	return -1;
}

/* ------------------------------------------------------------ Buffer */

static char empty_bytes[16];

static PyObject *buffer_new(PyObject *owner, const void *ptr, const char *format, Py_ssize_t itemsize,
			    int ndim, const Py_ssize_t *shape)
{
	Buffer *b = PyObject_New(Buffer, (PyTypeObject *)abpy_BufferType);
	if (!b)
		return NULL;
	Py_INCREF(owner);
	b->owner = owner;
	b->ptr = ptr ? (void *)ptr : (void *)empty_bytes;
	b->itemsize = itemsize;
	snprintf(b->format, sizeof b->format, "%s", format);
	b->ndim = ndim;
	Py_ssize_t stride = itemsize;
	for (int i = ndim - 1; i >= 0; i--) {
		b->shape[i] = shape[i];
		b->strides[i] = stride;
		stride *= shape[i];
	}
	return (PyObject *)b;
}

static void buffer_dealloc(PyObject *self)
{
	Buffer *b = (Buffer *)self;
	Py_CLEAR(b->owner);
	abpy_free_self(self);
}

static int buffer_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	Buffer *b = (Buffer *)self;
	(void)flags; /* C-contiguous, writable, with shape and strides: fits every request */
	Py_ssize_t n = b->itemsize;
	for (int i = 0; i < b->ndim; i++)
		n *= b->shape[i];
	view->buf = b->ptr;
	view->obj = self;
	Py_INCREF(self);
	view->len = n;
	view->readonly = 0;
	view->itemsize = b->itemsize;
	view->format = b->format;
	view->ndim = b->ndim;
	view->shape = b->shape;
	view->strides = b->strides;
	view->suboffsets = NULL;
	view->internal = NULL;
	return 0;
}

static void buffer_releasebuffer(PyObject *self, Py_buffer *view)
{
	(void)self;
	(void)view;
}

static PyType_Slot buffer_slots[] = {
	{Py_tp_dealloc, buffer_dealloc},
	{Py_bf_getbuffer, buffer_getbuffer},
	{Py_bf_releasebuffer, buffer_releasebuffer},
	{Py_tp_doc, "A view of one array of a batch (buffer protocol); keeps the batch alive."},
	{0, NULL},
};
PyType_Spec abpy_buffer_spec = {"annbatch_c._engine.Buffer", sizeof(Buffer), 0, Py_TPFLAGS_DEFAULT,
				  buffer_slots};

/* ------------------------------------------------------------ Batch */

static void batch_dealloc(PyObject *self)
{
	Batch *b = (Batch *)self;
	if (b->b && b->eng) {
		if (abpy_in_owner_process(b->eng))
			ab_batch_release(b->b);
		b->eng->live--;
	}
	b->b = NULL;
	Py_CLEAR(b->eng);
	abpy_free_self(self);
}

static PyObject *batch_info(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Batch *b = (Batch *)self;
	const ab_batch_view *v = &b->v;
	return Py_BuildValue("{s:K,s:K,s:K,s:i,s:s,s:K,s:K,s:K,s:n,s:i}", "epoch", (unsigned long long)v->epoch,
			     "index", (unsigned long long)v->index, "nrows", (unsigned long long)v->nrows,
			     "sparse", v->sparse, "dtype", ab_dtype_name(v->dtype), "row_items",
			     (unsigned long long)v->row_items, "nnz", (unsigned long long)v->nnz, "n_cols",
			     (unsigned long long)v->n_cols, "n_obs", (Py_ssize_t)v->n_obs, "indices_sorted",
			     v->indices_sorted);
}

/* Batch.array(name): a Buffer over one array: "values" (dense: nrows x
 * row_items; sparse: nnz), "indptr" (nrows + 1: int64, or int32 from an
 * engine made with indptr_int32), "indices" (nnz, int32), "rows" (nrows,
 * int64: the global row indices). */
static PyObject *batch_array(PyObject *self, PyObject *arg)
{
	Batch *b = (Batch *)self;
	const ab_batch_view *v = &b->v;
	const char *name = PyUnicode_AsUTF8AndSize(arg, NULL);
	if (!name)
		return NULL;
	Py_ssize_t shape[2];
	if (strcmp(name, "rows") == 0) {
		shape[0] = (Py_ssize_t)v->nrows;
		/* global row indices are below 2^63: int64, as numpy indexes */
		return buffer_new(self, v->rows, "q", 8, 1, shape);
	}
	if (strcmp(name, "values") == 0) {
		const char *fmt = abpy_dtype_format(v->dtype);
		size_t isz = ab_dtype_size(v->dtype);
		if (!*fmt || !isz)
			return PyErr_Format(PyExc_TypeError, "batch values of dtype %s have no buffer format",
					    ab_dtype_name(v->dtype));
		if (v->sparse) {
			shape[0] = (Py_ssize_t)v->nnz;
			return buffer_new(self, v->values, fmt, (Py_ssize_t)isz, 1, shape);
		}
		shape[0] = (Py_ssize_t)v->nrows;
		shape[1] = (Py_ssize_t)v->row_items;
		return buffer_new(self, v->data, fmt, (Py_ssize_t)isz, 2, shape);
	}
	if (v->sparse && strcmp(name, "indptr") == 0) {
		shape[0] = (Py_ssize_t)v->nrows + 1;
		if (v->indptr32)
			return buffer_new(self, v->indptr32, "i", 4, 1, shape);
		return buffer_new(self, v->indptr, "q", 8, 1, shape);
	}
	if (v->sparse && strcmp(name, "indices") == 0) {
		shape[0] = (Py_ssize_t)v->nnz;
		return buffer_new(self, v->indices, "i", 4, 1, shape);
	}
	return PyErr_Format(PyExc_KeyError, "no array %s in a %s batch", name, v->sparse ? "sparse" : "dense");
}

/* Obs column `arg` (an int) of a batch, or NULL with IndexError. */
static const ab_batch_obs *batch_obs_at(PyObject *self, PyObject *arg)
{
	const ab_batch_view *v = &((Batch *)self)->v;
	Py_ssize_t i = PyLong_AsSsize_t(arg);
	if (i == -1 && PyErr_Occurred())
		return NULL;
	if (i < 0 || (size_t)i >= v->n_obs) {
		PyErr_Format(PyExc_IndexError, "obs column %zd out of range (%zu columns)", i, v->n_obs);
		return NULL;
	}
	return &v->obs[i];
}

/* Batch.obs(i): (name, kind, Buffer) of obs column i: kind "codes" (int32,
 * -1 = missing) or "values" (float64, NaN = missing). */
static PyObject *batch_obs(PyObject *self, PyObject *arg)
{
	const ab_batch_view *v = &((Batch *)self)->v;
	const ab_batch_obs *o = batch_obs_at(self, arg);
	if (!o)
		return NULL;
	Py_ssize_t shape[1] = {(Py_ssize_t)v->nrows};
	PyObject *buf = o->categorical ? buffer_new(self, o->codes, "i", 4, 1, shape)
				       : buffer_new(self, o->values, "d", 8, 1, shape);
	if (!buf)
		return NULL;
	return Py_BuildValue("(ssN)", o->name, o->categorical ? "codes" : "values", buf);
}

/* Batch.labels(i): the label table of categorical obs column i (a tuple;
 * the same table for every batch of the loader), or None. */
static PyObject *batch_labels(PyObject *self, PyObject *arg)
{
	const ab_batch_obs *o = batch_obs_at(self, arg);
	if (!o)
		return NULL;
	if (!o->categorical)
		Py_RETURN_NONE;
	PyObject *t = PyTuple_New((Py_ssize_t)o->n_labels);
	if (!t)
		return NULL;
	for (size_t k = 0; k < o->n_labels; k++) {
		PyObject *s = PyUnicode_DecodeUTF8(o->labels[k], (Py_ssize_t)strlen(o->labels[k]), "replace");
		if (!s) {
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SetItem(t, (Py_ssize_t)k, s);
	}
	return t;
}

static PyMethodDef batch_methods[] = {
	{"info", batch_info, METH_NOARGS, "epoch, index, nrows, sparse, dtype, row_items, nnz, n_cols, n_obs, indices_sorted"},
	{"array", batch_array, METH_O, "array(name) -> Buffer: values, indptr, indices or rows"},
	{"obs", batch_obs, METH_O, "obs(i) -> (name, 'codes'|'values', Buffer)"},
	{"labels", batch_labels, METH_O, "labels(i) -> tuple of labels of a categorical column, or None"},
	{NULL, NULL, 0, NULL},
};
static PyType_Slot batch_slots[] = {
	{Py_tp_dealloc, batch_dealloc},
	{Py_tp_methods, batch_methods},
	{Py_tp_doc, "One batch of the engine; its memory returns to the loader when the last view dies."},
	{0, NULL},
};
PyType_Spec abpy_batch_spec = {"annbatch_c._engine.Batch", sizeof(Batch), 0, Py_TPFLAGS_DEFAULT, batch_slots};
