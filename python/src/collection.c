/*
 * collection.c - annbatch_c._engine.collection_write: the library's
 * collection writer (ab_collection_write, what `annbatch convert` runs),
 * behind annbatch_c.DatasetCollection.add_adatas.
 *
 * The writer runs with the GIL released, so other Python threads run
 * meanwhile. It calls its progress callback on this thread after every
 * block read and every few thousand rows written; the callback takes the
 * GIL back at most every VISIT_S seconds (and on the last call) to run
 * PyErr_CheckSignals, so Ctrl-C raises KeyboardInterrupt within that time,
 * and to call the Python progress callable, if there is one. An exception
 * there, or in the note callable, asks the writer to stop: it removes its
 * temporary directory, leaves the output path as it was and returns
 * AB_ECANCELED, and the Python exception (not the status) is raised.
 * Notes go to the note callable as they come (there are few of them).
 */
#include "binding.h"

#include <string.h>
#include <time.h>

/* How often, at most, the writer's thread comes back into Python: Ctrl-C is
 * seen within this time, and another thread waiting for the GIL is held up
 * no more often. */
#define VISIT_S 0.05

typedef struct {
	PyThreadState *ts;   /* this thread's state while the GIL is released */
	PyObject *progress;  /* callable(dict) or NULL                         */
	PyObject *note;      /* callable(str) or NULL                          */
	double last;         /* when Python was last visited                   */
	int failed;          /* a Python exception waits in exc_*              */
	PyObject *exc_type, *exc_value, *exc_tb;
} write_ctx;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* With the GIL held: keeps the exception raised for the end of the run. */
static void keep_exception(write_ctx *c)
{
	if (!c->failed) {
		PyErr_Fetch(&c->exc_type, &c->exc_value, &c->exc_tb);
		c->failed = 1;
	} else {
		PyErr_Clear();
	}
}

static PyObject *progress_dict(const ab_collection_progress *p)
{
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:d,s:O}", "rows_done", (unsigned long long)p->rows_done,
			     "total_rows", (unsigned long long)p->total_rows, "bytes_read",
			     (unsigned long long)p->bytes_read, "datasets_done", (unsigned long long)p->datasets_done,
			     "n_datasets", (unsigned long long)p->n_datasets, "elapsed_s", p->elapsed_s, "final",
			     p->final ? Py_True : Py_False);
}

static int on_progress(const ab_collection_progress *p, void *arg)
{
	write_ctx *c = arg;
	if (c->failed)
		return 1;
	double now = now_s();
	if (!p->final && now - c->last < VISIT_S)
		return 0;
	c->last = now;
	PyEval_RestoreThread(c->ts);
	int stop = PyErr_CheckSignals() < 0;
	if (!stop && c->progress) {
		PyObject *d = progress_dict(p);
		PyObject *r = d ? PyObject_CallFunctionObjArgs(c->progress, d, NULL) : NULL;
		Py_XDECREF(d);
		stop = r == NULL;
		Py_XDECREF(r);
	}
	if (stop)
		keep_exception(c);
	c->ts = PyEval_SaveThread();
	return stop;
}

static void on_note(const char *message, void *arg)
{
	write_ctx *c = arg;
	PyEval_RestoreThread(c->ts);
	if (!c->failed && c->note) {
		PyObject *s = abpy_str(message);
		PyObject *r = s ? PyObject_CallFunctionObjArgs(c->note, s, NULL) : NULL;
		Py_XDECREF(s);
		if (!r)
			keep_exception(c);
		Py_XDECREF(r);
	}
	c->ts = PyEval_SaveThread();
}

/* The collection config from the dict `d` (keys named as the fields of
 * ab_collection_config, with the write fields flattened in: compressor as
 * its name, level, blosc_blocksize, blosc_unsplit, n_obs_per_chunk,
 * shard_bytes, shard_rows; threads). The
 * column lists' strings live in *hold_cols and *hold_groupby. */
static int read_config(PyObject *d, ab_collection_config *cfg, PyObject **hold_cols, PyObject **hold_groupby)
{
	const char *compressor = NULL;
	uint64_t blocksize = cfg->write.blosc_blocksize, threads = cfg->threads;
	if (abpy_cfg_str(d, "var_subset_path", &cfg->var_subset_path) ||
	    abpy_cfg_int(d, "make_var_unique", &cfg->make_var_unique) ||
	    abpy_cfg_int(d, "drop_new_genes", &cfg->drop_new_genes) ||
	    abpy_cfg_int(d, "shuffle", &cfg->shuffle) ||
	    abpy_cfg_u64(d, "shuffle_chunk_size", &cfg->shuffle_chunk_size) ||
	    abpy_cfg_u64(d, "dataset_rows", &cfg->dataset_rows) ||
	    abpy_cfg_u64(d, "dataset_bytes", &cfg->dataset_bytes) || abpy_cfg_u64(d, "seed", &cfg->seed) ||
	    abpy_cfg_str(d, "compressor", &compressor) || abpy_cfg_int(d, "level", &cfg->write.level) ||
	    abpy_cfg_u64(d, "blosc_blocksize", &blocksize) ||
	    abpy_cfg_int(d, "blosc_unsplit", &cfg->write.blosc_unsplit) ||
	    abpy_cfg_u64(d, "n_obs_per_chunk", &cfg->write.n_obs_per_chunk) ||
	    abpy_cfg_u64(d, "shard_bytes", &cfg->write.shard_bytes) ||
	    abpy_cfg_u64(d, "shard_rows", &cfg->write.shard_rows) || abpy_cfg_u64(d, "memory", &cfg->memory) ||
	    abpy_cfg_u64(d, "threads", &threads))
		return -1;
	if (threads > 256) {
		PyErr_Format(PyExc_ValueError, "threads: %llu, at most 256", (unsigned long long)threads);
		return -1;
	}
	cfg->threads = (unsigned)threads;
	cfg->write.blosc_blocksize = (size_t)blocksize;
	if (compressor && ab_compressor_parse(compressor, &cfg->write.compressor)) {
		PyErr_Format(PyExc_ValueError, "compressor: %s", ab_last_error());
		return -1;
	}
	const char **cols = NULL, **groupby = NULL;
	if (abpy_cfg_strings(d, "obs_columns", hold_cols, &cols, &cfg->n_obs_columns))
		return -1;
	cfg->obs_columns = cols;
	if (abpy_cfg_strings(d, "groupby", hold_groupby, &groupby, &cfg->n_groupby))
		return -1;
	cfg->groupby = groupby;
	return 0;
}

static PyObject *summary_dict(const ab_collection_summary *s)
{
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:s,s:s,s:K,s:d}", "datasets_written",
			     (unsigned long long)s->datasets_written, "first_dataset",
			     (unsigned long long)s->first_dataset, "rows", (unsigned long long)s->rows, "n_vars",
			     (unsigned long long)s->n_vars, "x_dtype", ab_dtype_name(s->x_dtype), "x_kind",
			     s->x_kind == AB_X_CSR ? "csr_matrix" : "dense", "bytes_on_disk",
			     (unsigned long long)s->bytes_on_disk, "seconds", s->seconds);
}

/* collection_write(path, inputs, config, progress, note) -> summary dict */
PyObject *abpy_collection_write(PyObject *self, PyObject *args)
{
	(void)self;
	const char *path;
	PyObject *inputs_obj, *d, *progress, *note;
	if (!PyArg_ParseTuple(args, "sOO!OO", &path, &inputs_obj, &PyDict_Type, &d, &progress, &note))
		return NULL;
	if ((progress != Py_None && !PyCallable_Check(progress)) || (note != Py_None && !PyCallable_Check(note)))
		return PyErr_Format(PyExc_TypeError, "progress and note must be callables or None");
	PyObject *hold_in = NULL, *hold_cols = NULL, *hold_groupby = NULL, *ret = NULL;
	const char **inputs = NULL;
	size_t n_inputs = 0;
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	ab_collection_summary sum;
	call_result r;
	write_ctx c = {
		.progress = progress == Py_None ? NULL : progress,
		.note = note == Py_None ? NULL : note,
	};
	if (abpy_strings(inputs_obj, "inputs", &hold_in, &inputs, &n_inputs) ||
	    read_config(d, &cfg, &hold_cols, &hold_groupby))
		goto out;
	cfg.progress = on_progress;
	cfg.note = on_note;
	cfg.ctx = &c;
	c.last = now_s();
	c.ts = PyEval_SaveThread();
	abpy_take_error(&r, ab_collection_write(path, inputs, n_inputs, &cfg, &sum));
	PyEval_RestoreThread(c.ts);
	if (c.failed) {
		/* the caller's exception: KeyboardInterrupt, or one of its callables.
		 * (The writer ignores a stop asked on its last progress call, made
		 * once every row is written: the collection is then in place.) */
		PyErr_Restore(c.exc_type, c.exc_value, c.exc_tb);
	} else if (r.rc) {
		abpy_raise(r.rc, r.msg);
	} else {
		ret = summary_dict(&sum);
	}
out:
	PyMem_Free(inputs);
	PyMem_Free((void *)cfg.obs_columns);
	PyMem_Free((void *)cfg.groupby);
	Py_XDECREF(hold_in);
	Py_XDECREF(hold_cols);
	Py_XDECREF(hold_groupby);
	return ret;
}
