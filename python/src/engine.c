/*
 * annbatch_c._engine: the CPython binding of libannbatch's loader.
 *
 * Written against the limited API of Python 3.11 (one abi3 build serves every
 * later Python) and the public header annbatch.h only. No numpy C API: arrays
 * leave through the buffer protocol, so np.asarray / torch.from_numpy share
 * the engine's batch memory.
 *
 * Objects and lifetimes:
 *   Engine  owns one ab_loader. It is destroyed when the last reference goes,
 *           and every Batch holds a reference, so the loader outlives its
 *           batches.
 *   Batch   owns one ab_batch (released to the loader when the Batch dies).
 *   Buffer  a view of one array of a Batch (values, indptr, indices, rows,
 *           an obs column); it holds a reference to its Batch, so the batch
 *           memory lives as long as any numpy array, scipy matrix or torch
 *           tensor made from it.
 *
 * Threads: the GIL is released around every call that may block or read
 * (add, start, next, stop, destroy). ab_last_error() is per thread, so the
 * message is taken right after the failing call, before the GIL is taken
 * back.
 *
 * Processes: an Engine remembers the pid that made it. In a forked child
 * the loader's threads do not exist, so any use raises, and destruction
 * leaks the handle instead of joining threads that are not there.
 */
#include "binding.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

PyObject *abpy_EngineType, *abpy_BatchType, *abpy_BufferType;

void abpy_free_self(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
	f(self);
	Py_DECREF(tp);
}

int abpy_in_owner_process(const Engine *e)
{
	return e->pid == getpid();
}

static int engine_usable(Engine *e)
{
	if (!e->ld) {
		PyErr_SetString(PyExc_ValueError, "the engine is closed");
		return 0;
	}
	if (!abpy_in_owner_process(e)) {
		PyErr_SetString(PyExc_RuntimeError,
				"this loader was started in another process (before a fork); "
				"make a new Loader in this process (pickling a Loader carries its recipe)");
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------ Engine */

static PyObject *engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	PyObject *d = NULL;
	static char *kwlist[] = {"config", NULL};
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O!", kwlist, &PyDict_Type, &d))
		return NULL;
	ab_loader_config c;
	ab_loader_config_init(&c);
	if (d) {
		static const char *const io_names[] = {"auto", "direct", "buffered", NULL};
		static const char *const be_names[] = {"auto", "uring", "pread", NULL};
		static const char *const shard_names[] = {"fixed", "rotate", NULL};
		int io = (int)c.io_mode, be = (int)c.backend, rs = (int)c.rank_shards;
		/* the keys in the order of ab_loader_config */
		if (abpy_cfg_u64(d, "chunk_size", &c.chunk_size) ||
		    abpy_cfg_u64(d, "preload_nchunks", &c.preload_nchunks) ||
		    abpy_cfg_u64(d, "batch_size", &c.batch_size) || abpy_cfg_int(d, "shuffle", &c.shuffle) ||
		    abpy_cfg_int(d, "drop_last", &c.drop_last) || abpy_cfg_int(d, "replacement", &c.replacement) ||
		    abpy_cfg_u64(d, "num_samples", &c.num_samples) ||
		    abpy_cfg_u64(d, "mask_start", &c.mask_start) || abpy_cfg_u64(d, "mask_stop", &c.mask_stop) ||
		    abpy_cfg_u64(d, "seed", &c.seed) || abpy_cfg_int(d, "rank", &c.rank) ||
		    abpy_cfg_int(d, "world_size", &c.world_size) || abpy_cfg_int(d, "to_float32", &c.to_float32) ||
		    abpy_cfg_choice(d, "io_mode", io_names, &io) || abpy_cfg_choice(d, "backend", be_names, &be) ||
		    abpy_cfg_unsigned(d, "queue_depth", &c.queue_depth) ||
		    abpy_cfg_unsigned(d, "threads", &c.threads) ||
		    abpy_cfg_unsigned(d, "max_windows", &c.max_windows) ||
		    abpy_cfg_u64(d, "start_batch", &c.start_batch) ||
		    abpy_cfg_int(d, "whole_chunks", &c.whole_chunks) ||
		    abpy_cfg_choice(d, "rank_shards", shard_names, &rs) ||
		    abpy_cfg_unsigned(d, "stall_ms", &c.stall_ms) || abpy_cfg_int(d, "indptr_int32", &c.indptr_int32))
			return NULL;
		c.rank_shards = (ab_rank_shards)rs;
		c.io_mode = (ab_io_mode)io;
		c.backend = (ab_io_backend)be;
	}
	ab_loader *ld = NULL;
	call_result r;
	int rc = ab_loader_create(&c, &ld);
	abpy_take_error(&r, rc);
	if (rc)
		return abpy_raise(r.rc, r.msg);
	allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
	Engine *e = (Engine *)alloc(type, 0);
	if (!e) {
		ab_loader_destroy(ld);
		return NULL;
	}
	e->ld = ld;
	e->pid = getpid();
	e->bufs = NULL;
	e->nbufs = e->capbufs = 0;
	e->started = 0;
	e->live = 0;
	return (PyObject *)e;
}

static void engine_close_loader(Engine *e)
{
	if (!e->ld)
		return;
	if (abpy_in_owner_process(e)) {
		ab_loader *ld = e->ld;
		e->ld = NULL;
		Py_BEGIN_ALLOW_THREADS
		ab_loader_destroy(ld);
		Py_END_ALLOW_THREADS
	} else {
		/* the loader's threads live in the parent: leak the handle */
		e->ld = NULL;
	}
}

static void engine_dealloc(PyObject *self)
{
	Engine *e = (Engine *)self;
	engine_close_loader(e);
	for (size_t i = 0; i < e->nbufs; i++) {
		PyBuffer_Release(e->bufs[i]);
		PyMem_Free(e->bufs[i]);
	}
	PyMem_Free(e->bufs);
	abpy_free_self(self);
}

/* Holds a C-contiguous buffer on `obj` until the engine dies. */
static int hold_buffer(Engine *e, PyObject *obj, Py_buffer **out)
{
	if (e->nbufs == e->capbufs) {
		size_t cap = e->capbufs ? 2 * e->capbufs : 8;
		Py_buffer **nb = PyMem_Realloc(e->bufs, cap * sizeof *nb);
		if (!nb) {
			PyErr_NoMemory();
			return -1;
		}
		e->bufs = nb;
		e->capbufs = cap;
	}
	Py_buffer *b = PyMem_Malloc(sizeof *b);
	if (!b) {
		PyErr_NoMemory();
		return -1;
	}
	if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
		PyMem_Free(b);
		return -1;
	}
	e->bufs[e->nbufs++] = b;
	*out = b;
	return 0;
}

static PyObject *engine_add_anndata(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	const char *path;
	if (!PyArg_ParseTuple(args, "s", &path) || !engine_usable(e))
		return NULL;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_add_anndata(e->ld, path));
	Py_END_ALLOW_THREADS
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

static PyObject *engine_add_array(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	const char *path, *node;
	if (!PyArg_ParseTuple(args, "ss", &path, &node) || !engine_usable(e))
		return NULL;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_add_array(e->ld, path, node));
	Py_END_ALLOW_THREADS
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

/* add_dense(buffer, dtype_name, shape_tuple): in-memory rows (not copied; the
 * buffer is held until the engine dies). */
static PyObject *engine_add_dense(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	PyObject *obj, *shape_t;
	const char *dtname;
	if (!PyArg_ParseTuple(args, "OsO!", &obj, &dtname, &PyTuple_Type, &shape_t) || !engine_usable(e))
		return NULL;
	ab_dtype dt;
	if (abpy_dtype_from_name(dtname, &dt))
		return NULL;
	Py_ssize_t nd = PyTuple_Size(shape_t);
	if (nd < 1 || nd > 8)
		return PyErr_Format(PyExc_ValueError, "dense data must have 1 to 8 dimensions (got %zd)", nd);
	uint64_t shape[8], n = ab_dtype_size(dt);
	for (Py_ssize_t i = 0; i < nd; i++) {
		unsigned long long s = PyLong_AsUnsignedLongLong(PyTuple_GetItem(shape_t, i));
		if (s == (unsigned long long)-1 && PyErr_Occurred())
			return NULL;
		shape[i] = s;
		n *= s;
	}
	Py_buffer *buf;
	if (hold_buffer(e, obj, &buf))
		return NULL;
	if ((uint64_t)buf->len != n)
		return PyErr_Format(PyExc_ValueError, "buffer of %zd bytes does not hold the shape given (%llu bytes)",
				    buf->len, (unsigned long long)n);
	call_result r;
	abpy_take_error(&r, ab_loader_add_dense_memory(e->ld, buf->buf, dt, (int)nd, shape));
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

/* add_csr(indptr int64, indices int64, data, dtype_name, n_rows, n_cols) */
static PyObject *engine_add_csr(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	PyObject *ip, *ix, *dv;
	const char *dtname;
	unsigned long long n_rows, n_cols;
	if (!PyArg_ParseTuple(args, "OOOsKK", &ip, &ix, &dv, &dtname, &n_rows, &n_cols) || !engine_usable(e))
		return NULL;
	ab_dtype dt;
	if (abpy_dtype_from_name(dtname, &dt))
		return NULL;
	Py_buffer *bp, *bi, *bd;
	if (hold_buffer(e, ip, &bp) || hold_buffer(e, ix, &bi) || hold_buffer(e, dv, &bd))
		return NULL;
	if (bp->itemsize != 8 || bi->itemsize != 8)
		return PyErr_Format(PyExc_TypeError, "indptr and indices must be int64 arrays");
	if ((uint64_t)bp->len != 8 * (n_rows + 1))
		return PyErr_Format(PyExc_ValueError, "indptr must have n_rows + 1 = %llu entries", n_rows + 1);
	const int64_t *indptr = bp->buf;
	uint64_t nnz = (uint64_t)indptr[n_rows];
	if ((uint64_t)bi->len < 8 * nnz || (uint64_t)bd->len < ab_dtype_size(dt) * nnz)
		return PyErr_Format(PyExc_ValueError, "indices and data must hold indptr[-1] = %llu entries",
				    (unsigned long long)nnz);
	call_result r;
	abpy_take_error(&r, ab_loader_add_csr_memory(e->ld, indptr, bi->buf, bd->buf, dt, n_rows, n_cols));
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

static int strings_from_seq(PyObject *seq, const char ***out, Py_ssize_t *n)
{
	PyObject *fast = PySequence_Fast(seq, "expected a sequence of strings");
	if (!fast)
		return -1;
	*n = PySequence_Size(fast);
	const char **v = PyMem_Calloc((size_t)*n + 1, sizeof *v);
	if (!v) {
		Py_DECREF(fast);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < *n; i++) {
		PyObject *it = PySequence_GetItem(fast, i);
		if (!it)
			goto fail;
		/* the UTF-8 lives as long as the str, which the caller's sequence keeps */
		v[i] = PyUnicode_Check(it) ? PyUnicode_AsUTF8AndSize(it, NULL) : NULL;
		Py_DECREF(it);
		if (!v[i]) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_TypeError, "expected a sequence of strings");
			goto fail;
		}
	}
	Py_DECREF(fast);
	*out = v;
	return 0;
fail:
	PyMem_Free(v);
	Py_DECREF(fast);
	return -1;
}

static PyObject *engine_set_obs_columns(PyObject *self, PyObject *arg)
{
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	const char **names;
	Py_ssize_t n;
	if (strings_from_seq(arg, &names, &n))
		return NULL;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_set_obs_columns(e->ld, names, (size_t)n));
	Py_END_ALLOW_THREADS
	PyMem_Free(names);
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

/* A sequence of numbers (or None) as a PyMem array of doubles; *n its
 * length. Returns 0, or -1 with an exception set. */
static int doubles_from_seq(PyObject *w, double **out, Py_ssize_t *n)
{
	*out = NULL;
	*n = 0;
	if (w == Py_None)
		return 0;
	PyObject *fast = PySequence_Fast(w, "weights must be a sequence of numbers");
	if (!fast)
		return -1;
	*n = PySequence_Size(fast);
	double *v = PyMem_Calloc((size_t)*n + 1, sizeof *v);
	if (!v) {
		Py_DECREF(fast);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < *n; i++) {
		PyObject *it = PySequence_GetItem(fast, i);
		v[i] = it ? PyFloat_AsDouble(it) : -1.0;
		Py_XDECREF(it);
		if (PyErr_Occurred()) {
			PyMem_Free(v);
			Py_DECREF(fast);
			return -1;
		}
	}
	Py_DECREF(fast);
	*out = v;
	return 0;
}

/* set_class_column(name, weights or None) */
static PyObject *engine_set_class_column(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	const char *name;
	PyObject *w = Py_None;
	if (!PyArg_ParseTuple(args, "s|O", &name, &w) || !engine_usable(e))
		return NULL;
	double *weights;
	Py_ssize_t n;
	if (doubles_from_seq(w, &weights, &n))
		return NULL;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_set_class_column(e->ld, name, weights, (size_t)n));
	Py_END_ALLOW_THREADS
	PyMem_Free(weights);
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
}

/* set_class_codes(codes int32 buffer, labels, weights or None) */
static PyObject *engine_set_class_codes(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	PyObject *codes_obj, *labels_obj, *w = Py_None;
	if (!PyArg_ParseTuple(args, "OO|O", &codes_obj, &labels_obj, &w) || !engine_usable(e))
		return NULL;
	Py_buffer cb;
	if (PyObject_GetBuffer(codes_obj, &cb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
		return NULL;
	if (cb.itemsize != 4 || !cb.format || (strcmp(cb.format, "i") != 0 && strcmp(cb.format, "=i") != 0 &&
					       strcmp(cb.format, "<i") != 0 && strcmp(cb.format, "l") != 0)) {
		PyBuffer_Release(&cb);
		return PyErr_Format(PyExc_TypeError, "class codes must be an int32 array");
	}
	const char **labels = NULL;
	Py_ssize_t nl = 0;
	if (strings_from_seq(labels_obj, &labels, &nl)) {
		PyBuffer_Release(&cb);
		return NULL;
	}
	double *weights;
	Py_ssize_t nw;
	if (doubles_from_seq(w, &weights, &nw))
		goto fail;
	call_result r;
	const int32_t *codes = cb.buf;
	uint64_t n = (uint64_t)(cb.len / 4);
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_set_class_codes(e->ld, codes, n, labels, (size_t)nl, weights, (size_t)nw));
	Py_END_ALLOW_THREADS
	PyMem_Free(weights);
	PyMem_Free(labels);
	PyBuffer_Release(&cb);
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_NONE;
fail:
	PyMem_Free(weights);
	PyMem_Free(labels);
	PyBuffer_Release(&cb);
	return NULL;
}

/* use_pinned_memory() -> bool: batches' X in CUDA pinned host memory when a
 * CUDA runtime with a device is there (before the first start); False, and
 * ordinary memory, otherwise. */
static PyObject *engine_use_pinned_memory(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	if (!abpy_cuda_runtime())
		Py_RETURN_FALSE;
	call_result r;
	abpy_take_error(&r, ab_loader_set_allocator(e->ld, abpy_pinned_alloc, abpy_pinned_free, NULL));
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Py_RETURN_TRUE;
}

static PyObject *engine_var_names(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	char **names = NULL;
	size_t n = 0;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_var_names(e->ld, &names, &n));
	Py_END_ALLOW_THREADS
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *s = PyUnicode_DecodeUTF8(names[i], (Py_ssize_t)strlen(names[i]), "replace");
		if (!s) {
			Py_CLEAR(list);
			break;
		}
		PyList_SetItem(list, (Py_ssize_t)i, s);
	}
	ab_strings_free_n(names, n);
	return list;
}

static PyObject *engine_nrows(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	return PyLong_FromUnsignedLongLong(ab_loader_nrows(e->ld));
}

static PyObject *engine_nbatches(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	uint64_t n = 0;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_nbatches(e->ld, &n));
	Py_END_ALLOW_THREADS
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	return PyLong_FromUnsignedLongLong(n);
}

static PyObject *engine_start(PyObject *self, PyObject *args)
{
	Engine *e = (Engine *)self;
	unsigned long long epoch = 0;
	if (!PyArg_ParseTuple(args, "|K", &epoch) || !engine_usable(e))
		return NULL;
	call_result r;
	Py_BEGIN_ALLOW_THREADS
	abpy_take_error(&r, ab_loader_start(e->ld, epoch));
	Py_END_ALLOW_THREADS
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	e->started = 1;
	Py_RETURN_NONE;
}

static PyObject *engine_stop(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!e->ld || !abpy_in_owner_process(e))
		Py_RETURN_NONE;
	Py_BEGIN_ALLOW_THREADS
	ab_loader_stop(e->ld);
	Py_END_ALLOW_THREADS
	Py_RETURN_NONE;
}

/* next() -> Batch, or None at the end of the epoch. */
#define NEXT_SLICE_MS 100
static PyObject *engine_next(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	ab_batch *b = NULL;
	call_result r;
	for (;;) {
		/* Waits in slices, so Ctrl-C (and any signal handler) runs
		 * within a slice of being raised. */
		Py_BEGIN_ALLOW_THREADS
		abpy_take_error(&r, ab_loader_next_timed(e->ld, &b, NEXT_SLICE_MS));
		Py_END_ALLOW_THREADS
		if (r.rc != AB_TIMEOUT)
			break;
		if (PyErr_CheckSignals() < 0)
			return NULL;
	}
	if (r.rc == AB_END)
		Py_RETURN_NONE;
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	Batch *o = PyObject_New(Batch, (PyTypeObject *)abpy_BatchType);
	if (!o) {
		ab_batch_release(b);
		return NULL;
	}
	o->b = b;
	Py_INCREF(self);
	o->eng = e;
	e->live++;
	if (ab_batch_get_view(b, &o->v)) {
		Py_DECREF(o);
		return abpy_raise(AB_EINVAL, "cannot view the batch");
	}
	return (PyObject *)o;
}

static PyObject *engine_stats(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	ab_loader_stats s;
	call_result r;
	abpy_take_error(&r, ab_loader_get_stats(e->ld, &s));
	if (r.rc)
		return abpy_raise(r.rc, r.msg);
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:K,s:K,s:K,s:(dddd),s:(dd),s:(dd),s:I,s:i,s:I,s:I,s:s,s:s,s:s}", "rows",
		(unsigned long long)s.rows, "batches", (unsigned long long)s.batches, "bytes_read",
		(unsigned long long)s.bytes_read, "bytes_decoded", (unsigned long long)s.bytes_decoded, "reads",
		(unsigned long long)s.reads, "reads_in_flight", (unsigned long long)s.reads_in_flight,
		"read_lat_us", s.read_lat_us[0], s.read_lat_us[1], s.read_lat_us[2], s.read_lat_us[3], "wait_us",
		s.wait_us[0], s.wait_us[1], "first_wait_us", s.first_wait_us[0], s.first_wait_us[1], "threads",
		s.threads, "registered_buffers", s.registered_buffers, "registered_files", s.registered_files,
		"queue_depth", s.queue_depth, "backend", s.backend, "io_mode", s.io_mode, "note", s.note);
}

static PyObject *engine_reset_stats(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (!engine_usable(e))
		return NULL;
	ab_loader_reset_stats(e->ld);
	Py_RETURN_NONE;
}

/* close(): stops and frees the loader now; refused while batches are alive
 * (their memory is the loader's). */
static PyObject *engine_close(PyObject *self, PyObject *noargs)
{
	(void)noargs;
	Engine *e = (Engine *)self;
	if (e->live > 0)
		return PyErr_Format(PyExc_RuntimeError,
				    "%zd batches of this loader are still alive (numpy, scipy or torch views of them); "
				    "drop them first, or iterate with copy=True", e->live);
	engine_close_loader(e);
	Py_RETURN_NONE;
}

static PyMethodDef engine_methods[] = {
	{"add_anndata", engine_add_anndata, METH_VARARGS, "add_anndata(path): X of an AnnData store or collection"},
	{"add_array", engine_add_array, METH_VARARGS, "add_array(path, node): a raw array, rows on axis 0"},
	{"add_dense", engine_add_dense, METH_VARARGS, "add_dense(buffer, dtype, shape): in-memory rows"},
	{"add_csr", engine_add_csr, METH_VARARGS,
	 "add_csr(indptr, indices, data, dtype, n_rows, n_cols): in-memory CSR (int64 indptr and indices)"},
	{"set_obs_columns", engine_set_obs_columns, METH_O, "set_obs_columns(names)"},
	{"set_class_column", engine_set_class_column, METH_VARARGS, "set_class_column(name, weights=None)"},
	{"set_class_codes", engine_set_class_codes, METH_VARARGS,
	 "set_class_codes(codes int32, labels, weights=None): classes from memory"},
	{"use_pinned_memory", engine_use_pinned_memory, METH_NOARGS,
	 "use_pinned_memory() -> bool: batch X buffers in CUDA pinned memory where CUDA is there"},
	{"var_names", engine_var_names, METH_NOARGS, "the var names of the first dataset"},
	{"nrows", engine_nrows, METH_NOARGS, "rows in the global row space"},
	{"nbatches", engine_nbatches, METH_NOARGS, "batches of one epoch"},
	{"start", engine_start, METH_VARARGS, "start(epoch=0)"},
	{"stop", engine_stop, METH_NOARGS, "stop the running epoch"},
	{"next", engine_next, METH_NOARGS, "next() -> Batch or None at the end of the epoch"},
	{"stats", engine_stats, METH_NOARGS, "the loader's statistics as a dict"},
	{"reset_stats", engine_reset_stats, METH_NOARGS, "reset the statistics"},
	{"close", engine_close, METH_NOARGS, "stop and free the loader"},
	{NULL, NULL, 0, NULL},
};
static PyType_Slot engine_slots[] = {
	{Py_tp_new, engine_new},
	{Py_tp_dealloc, engine_dealloc},
	{Py_tp_methods, engine_methods},
	{Py_tp_doc, "Engine(config: dict): one libannbatch loader."},
	{0, NULL},
};
static PyType_Spec engine_spec = {"annbatch_c._engine.Engine", sizeof(Engine), 0, Py_TPFLAGS_DEFAULT,
				  engine_slots};

/* ------------------------------------------------------------ module */

/* The module's functions: strerror here, collection_write in collection.c,
 * collection_datasets and read_obs in frame.c. */

static PyObject *mod_strerror(PyObject *self, PyObject *arg)
{
	(void)self;
	long rc = PyLong_AsLong(arg);
	if (rc == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(ab_strerror((int)rc));
}

static PyMethodDef module_methods[] = {
	{"strerror", mod_strerror, METH_O, "strerror(code) -> the status code's name"},
	{"collection_write", abpy_collection_write, METH_VARARGS,
	 "collection_write(path, inputs, config, progress, note) -> summary: ab_collection_write"},
	{"collection_datasets", abpy_collection_datasets, METH_O,
	 "collection_datasets(path) -> dataset names, or None if no collection is there"},
	{"read_obs", abpy_read_obs, METH_VARARGS,
	 "read_obs(path, nodes, columns) -> per node (obs attributes JSON, row names, columns)"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT, "annbatch_c._engine", "The libannbatch loader, for annbatch_c.", -1,
	module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__engine(void)
{
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	abpy_EngineType = PyType_FromSpec(&engine_spec);
	abpy_BatchType = PyType_FromSpec(&abpy_batch_spec);
	abpy_BufferType = PyType_FromSpec(&abpy_buffer_spec);
	if (!abpy_EngineType || !abpy_BatchType || !abpy_BufferType ||
	    PyModule_AddObjectRef(m, "Engine", abpy_EngineType) < 0 ||
	    PyModule_AddObjectRef(m, "Batch", abpy_BatchType) < 0 ||
	    PyModule_AddObjectRef(m, "Buffer", abpy_BufferType) < 0 ||
	    abpy_add_errors(m) < 0 || PyModule_AddStringConstant(m, "version", AB_VERSION_STRING) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
