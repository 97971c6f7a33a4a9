/* last_error.c - per-thread last-error message. */
#include "last_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define AB_ERRMSG_MAX 1024

static _Thread_local char errmsg[AB_ERRMSG_MAX];

const char *ab_last_error(void)
{
	return errmsg;
}

int ab_error_set(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	return status;
}

int ab_error_prefix(int status, const char *fmt, ...)
{
	char prefix[AB_ERRMSG_MAX];
	char old[AB_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errmsg, sizeof old);
	size_t lp = strnlen(prefix, sizeof prefix - 1);
	size_t lo = strnlen(old, sizeof old - 1);
	if (lo > sizeof errmsg - 1 - lp)
		lo = sizeof errmsg - 1 - lp;
	memcpy(errmsg, prefix, lp);
	memcpy(errmsg + lp, old, lo);
	errmsg[lp + lo] = '\0';
	return status;
}

void ab_error_clear(void)
{
	errmsg[0] = '\0';
}

const char *ab_strerror(int status)
{
	switch (status) {
	case AB_OK: return "AB_OK: success";
	case AB_EINVAL: return "AB_EINVAL: invalid argument";
	case AB_ENOENT: return "AB_ENOENT: no such node or file";
	case AB_EIO: return "AB_EIO: input/output error";
	case AB_EFORMAT: return "AB_EFORMAT: malformed metadata or data";
	case AB_EUNSUPPORTED: return "AB_EUNSUPPORTED: not supported";
	case AB_ENOMEM: return "AB_ENOMEM: out of memory";
	case AB_ECORRUPT: return "AB_ECORRUPT: corrupt data";
	case AB_ERANGE: return "AB_ERANGE: out of range";
	case AB_ETYPE: return "AB_ETYPE: wrong node type";
	case AB_ESTALL: return "AB_ESTALL: consumers hold every window's batches";
	case AB_ECANCELED: return "AB_ECANCELED: stopped by the caller";
	case AB_TIMEOUT: return "AB_TIMEOUT: no batch within the timeout";
	default: return "unknown status";
	}
}
