/* errors.c - every AB_E* status becomes a Python exception carrying the C
 * message: annbatch_c.AnnbatchError and one subclass per status, each also
 * a subclass of the built-in exception a Python user would catch. */
#include "binding.h"

#include <stdio.h>
#include <string.h>

static PyObject *Error;          /* annbatch_c.AnnbatchError            */
static PyObject *err_by_code[16]; /* indexed by -status                 */

static PyObject *exc_for(int rc)
{
	if (rc < 0 && -rc < (int)(sizeof err_by_code / sizeof *err_by_code) && err_by_code[-rc])
		return err_by_code[-rc];
	return Error;
}

PyObject *abpy_raise(int rc, const char *msg)
{
	if (rc == AB_ENOMEM)
		return PyErr_Format(PyExc_MemoryError, "%s", msg && *msg ? msg : "out of memory");
	PyObject *exc = exc_for(rc);
	PyObject *args = Py_BuildValue("(s)", msg && *msg ? msg : ab_strerror(rc));
	if (!args)
		return NULL;
	PyObject *e = PyObject_Call(exc, args, NULL);
	Py_DECREF(args);
	if (!e)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	if (code) {
		PyObject_SetAttrString(e, "code", code);
		Py_DECREF(code);
	}
	PyErr_SetObject(exc, e);
	Py_DECREF(e);
	return NULL;
}

void abpy_take_error(call_result *r, int rc)
{
	r->rc = rc;
	r->msg[0] = 0;
	if (rc < 0)
		snprintf(r->msg, sizeof r->msg, "%s", ab_last_error());
}


/* annbatch_c.AnnbatchError and one subclass per status, each also a
 * subclass of the built-in exception a Python user would catch. */
int abpy_add_errors(PyObject *m)
{
	Error = PyErr_NewExceptionWithDoc("annbatch_c.AnnbatchError",
					  "An error of the engine; .code is the AB_E* status.", NULL, NULL);
	if (!Error || PyModule_AddObjectRef(m, "AnnbatchError", Error) < 0)
		return -1;
	static const struct {
		int code;
		const char *name;
		const char *doc;
	} kinds[] = {
		{AB_EINVAL, "InvalidArgument", "A bad argument or option (AB_EINVAL)."},
		{AB_ENOENT, "NotFound", "A node, file or column that does not exist (AB_ENOENT)."},
		{AB_EIO, "ReadError", "The operating system failed a read (AB_EIO)."},
		{AB_EFORMAT, "FormatError", "Malformed metadata or data (AB_EFORMAT)."},
		{AB_EUNSUPPORTED, "Unsupported", "Valid but not supported (AB_EUNSUPPORTED)."},
		{AB_ECORRUPT, "CorruptData", "Data that does not decode (AB_ECORRUPT)."},
		{AB_ERANGE, "OutOfRange", "A request outside the array (AB_ERANGE)."},
		{AB_ETYPE, "WrongNodeType", "A node of another kind than expected (AB_ETYPE)."},
		{AB_ESTALL, "Stalled",
		 "The consumers hold batches of every window, so no batch can come (AB_ESTALL): "
		 "keep fewer batches, iterate with copy=True, or raise max_windows."},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
		PyObject *builtin;
		switch (kinds[i].code) {
		case AB_EINVAL: builtin = PyExc_ValueError; break;
		case AB_ENOENT: builtin = PyExc_FileNotFoundError; break;
		case AB_EIO: builtin = PyExc_OSError; break;
		case AB_EUNSUPPORTED: builtin = PyExc_NotImplementedError; break;
		case AB_ERANGE: builtin = PyExc_IndexError; break;
		case AB_ETYPE: builtin = PyExc_TypeError; break;
		case AB_ESTALL: builtin = PyExc_RuntimeError; break;
		default: builtin = PyExc_ValueError; break;
		}
		char qual[96];
		snprintf(qual, sizeof qual, "annbatch_c.%s", kinds[i].name);
		PyObject *bases = PyTuple_Pack(2, Error, builtin);
		if (!bases)
			return -1;
		PyObject *cls = PyErr_NewExceptionWithDoc(qual, kinds[i].doc, bases, NULL);
		Py_DECREF(bases);
		if (!cls || PyModule_AddObjectRef(m, kinds[i].name, cls) < 0)
			return -1;
		err_by_code[-kinds[i].code] = cls; /* the module keeps the reference */
		Py_DECREF(cls);
	}
	return 0;
}

