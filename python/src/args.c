/* args.c - config dicts read into C values: each abpy_cfg_* looks up `key`
 * in the dict `d`, leaves *out as it is when the key is absent or None, and
 * otherwise checks the value's type (TypeError) and range (ValueError) and
 * stores it. They return 0, or -1 with the exception set. */
#include "binding.h"

#include <stdio.h>
#include <string.h>

int abpy_cfg_u64(PyObject *d, const char *key, uint64_t *out)
{
	PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
	if (!v || v == Py_None)
		return 0;
	if (!PyLong_Check(v) || PyBool_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int", key);
		return -1;
	}
	unsigned long long x = PyLong_AsUnsignedLongLong(v);
	if (x == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		PyErr_Format(PyExc_ValueError, "%s must be a non-negative int below 2^64", key);
		return -1;
	}
	*out = x;
	return 0;
}

int abpy_cfg_int(PyObject *d, const char *key, int *out)
{
	PyObject *v = PyDict_GetItemString(d, key);
	if (!v || v == Py_None)
		return 0;
	if (!PyLong_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int or a bool", key);
		return -1;
	}
	long x = PyLong_AsLong(v);
	if (x == -1 && PyErr_Occurred())
		return -1;
	if (x < INT32_MIN || x > INT32_MAX) {
		PyErr_Format(PyExc_ValueError, "%s out of range", key);
		return -1;
	}
	*out = (int)x;
	return 0;
}

int abpy_cfg_unsigned(PyObject *d, const char *key, unsigned *out)
{
	uint64_t x = *out;
	if (abpy_cfg_u64(d, key, &x))
		return -1;
	if (x > UINT32_MAX) {
		PyErr_Format(PyExc_ValueError, "%s out of range", key);
		return -1;
	}
	*out = (unsigned)x;
	return 0;
}

int abpy_cfg_choice(PyObject *d, const char *key, const char *const *names, int *out)
{
	PyObject *v = PyDict_GetItemString(d, key);
	if (!v || v == Py_None)
		return 0;
	const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, NULL) : NULL;
	if (!s) {
		PyErr_Format(PyExc_TypeError, "%s must be a string", key);
		return -1;
	}
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	char list[128] = "";
	for (int i = 0; names[i]; i++) {
		size_t at = strlen(list);
		snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", names[i]);
	}
	PyErr_Format(PyExc_ValueError, "%s must be one of %s (got %s)", key, list, s);
	return -1;
}

int abpy_cfg_str(PyObject *d, const char *key, const char **out)
{
	PyObject *v = PyDict_GetItemString(d, key);
	if (!v || v == Py_None)
		return 0;
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a string", key);
		return -1;
	}
	const char *s = PyUnicode_AsUTF8AndSize(v, NULL);
	if (!s)
		return -1;
	*out = s;
	return 0;
}

int abpy_strings(PyObject *v, const char *key, PyObject **hold, const char ***out, size_t *n)
{
	*hold = NULL;
	*out = NULL;
	*n = 0;
	if (PyUnicode_Check(v) || !PySequence_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a sequence of strings", key);
		return -1;
	}
	/* a tuple of its own: a list the caller keeps could change under us */
	PyObject *t = PySequence_Tuple(v);
	if (!t)
		return -1;
	Py_ssize_t k = PyTuple_Size(t);
	const char **s = PyMem_Calloc((size_t)k + 1, sizeof *s);
	if (!s) {
		Py_DECREF(t);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < k; i++) {
		PyObject *it = PyTuple_GetItem(t, i); /* borrowed */
		s[i] = PyUnicode_Check(it) ? PyUnicode_AsUTF8AndSize(it, NULL) : NULL;
		if (!s[i]) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_TypeError, "%s must be a sequence of strings (item %zd is not)",
					     key, i);
			PyMem_Free(s);
			Py_DECREF(t);
			return -1;
		}
	}
	*hold = t;
	*out = s;
	*n = (size_t)k;
	return 0;
}

int abpy_cfg_strings(PyObject *d, const char *key, PyObject **hold, const char ***out, size_t *n)
{
	*hold = NULL;
	*out = NULL;
	*n = 0;
	PyObject *v = PyDict_GetItemString(d, key);
	if (!v || v == Py_None)
		return 0;
	return abpy_strings(v, key, hold, out, n);
}

PyObject *abpy_str(const char *s)
{
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}
