/*
 * binding.h - what the files of annbatch_c._engine share: the object types
 * (Engine, Batch, Buffer), the error helpers, the config readers and the
 * dtype table. Internal: the extension is compiled with -fvisibility=hidden,
 * so only its module init function is exported.
 *
 *   errors.c      AB_E* status -> Python exception with the C message
 *   args.c        config dict entries -> C values (TypeError, ValueError)
 *   batch.c       Batch (one ab_batch) and Buffer (a buffer-protocol view of
 *                 one of its arrays, keeping it alive)
 *   engine.c      Engine (one ab_loader) and the module
 *   collection.c  collection_write: ab_collection_write with the GIL released
 *   frame.c       collection_datasets, read_obs: a collection's obs columns
 *   pinned.c      CUDA pinned host memory for batch buffers, where CUDA is
 */
#ifndef ANNBATCH_C_BINDING_H
#define ANNBATCH_C_BINDING_H

#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x030B0000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <sys/types.h>

#include "annbatch.h"

/* ---- errors (errors.c) */

/* A failing call's message, copied on the thread that failed (the message
 * of ab_last_error() is per thread) before the GIL is taken back. */
typedef struct {
	int rc;
	char msg[1024];
} call_result;

void abpy_take_error(call_result *r, int rc);
/* Raises the exception of status `rc` with `msg`; returns NULL. */
PyObject *abpy_raise(int rc, const char *msg);
/* annbatch_c.AnnbatchError and its subclasses, added to module `m`. */
int abpy_add_errors(PyObject *m);

/* ---- types */

extern PyObject *abpy_EngineType, *abpy_BatchType, *abpy_BufferType;

typedef struct {
	PyObject_HEAD
	ab_loader *ld;
	pid_t pid;
	Py_buffer **bufs;    /* buffers held on in-memory inputs (each its own
	                      * block, so a pointer to one stays valid as more
	                      * come)                                        */
	size_t nbufs, capbufs;
	int started;
	Py_ssize_t live;     /* batches handed out and not yet released      */
} Engine;

typedef struct {
	PyObject_HEAD
	Engine *eng;
	ab_batch *b;
	ab_batch_view v;
} Batch;

typedef struct {
	PyObject_HEAD
	PyObject *owner;      /* the Batch whose memory this is */
	void *ptr;
	Py_ssize_t itemsize;
	char format[4];
	int ndim;
	Py_ssize_t shape[8];
	Py_ssize_t strides[8];
} Buffer;

/* tp_free of a heap type's instance, and the type's reference */
void abpy_free_self(PyObject *self);
/* whether the engine was made in this process (not inherited by a fork) */
int abpy_in_owner_process(const Engine *e);

/* ---- batch.c */

extern PyType_Spec abpy_buffer_spec, abpy_batch_spec;
/* The struct-module format of an ab_dtype ("" where numpy has none). */
const char *abpy_dtype_format(ab_dtype dt);
/* ab_dtype of a name ("float32", ...); -1 with TypeError if none. */
int abpy_dtype_from_name(const char *name, ab_dtype *out);

/* ---- args.c */

int abpy_cfg_u64(PyObject *d, const char *key, uint64_t *out);
int abpy_cfg_int(PyObject *d, const char *key, int *out);
int abpy_cfg_unsigned(PyObject *d, const char *key, unsigned *out);
/* a string among `names` (NULL-terminated): *out gets its position */
int abpy_cfg_choice(PyObject *d, const char *key, const char *const *names, int *out);
/* A str or None: *out points into the str (kept alive by the dict). */
int abpy_cfg_str(PyObject *d, const char *key, const char **out);
/* The sequence of str `v` (`key` names it in messages) as C strings: *hold
 * gets a tuple of the items, which keeps the UTF-8 of *out alive until the
 * caller drops it; *out (NULL-terminated) is freed with PyMem_Free. */
int abpy_strings(PyObject *v, const char *key, PyObject **hold, const char ***out, size_t *n);
/* The same for a dict entry; absent or None: *out NULL, *n 0. */
int abpy_cfg_strings(PyObject *d, const char *key, PyObject **hold, const char ***out, size_t *n);
/* A str made of C text that may not be valid UTF-8 (invalid bytes replaced). */
PyObject *abpy_str(const char *s);

/* ---- collection.c, frame.c: module functions */

PyObject *abpy_collection_write(PyObject *self, PyObject *args);
PyObject *abpy_collection_datasets(PyObject *self, PyObject *arg);
PyObject *abpy_read_obs(PyObject *self, PyObject *args);

/* ---- pinned.c */

/* 1 when a CUDA runtime with a device is there (looked up once, kept for
 * the process), else 0. Then abpy_pinned_alloc / abpy_pinned_free are an
 * allocator pair for ab_loader_set_allocator (cudaHostAlloc, cudaFreeHost). */
int abpy_cuda_runtime(void);
void *abpy_pinned_alloc(size_t size, void *ctx);
void abpy_pinned_free(void *p, size_t size, void *ctx);

#endif
