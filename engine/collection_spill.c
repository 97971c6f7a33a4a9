/* collection_spill.c - the scratch file a dataset's X rows wait in between
 * being read (in block order) and written (in the dataset's order).
 *
 * Why a file: the order a dataset's rows are written in (a seeded shuffle,
 * then a stable sort by the groupby columns) needs only the row count and
 * the obs columns, never X. So X need not be held: each block's rows go to
 * the scratch file as they are read, only their offsets stay in memory (the
 * sparse indptr; dense rows all have one size), and the writer reads each row
 * back where the order wants it. Memory then holds obs, offsets and the
 * order, a few dozen bytes a row, whatever the dataset's size.
 *
 * The file lies beside the output (the same file system the collection must
 * fit on) and is unlinked as soon as it is made (O_TMPFILE where the file
 * system has it), so it disappears with the process however the run ends. One
 * dataset's X at a time: it is emptied when the next dataset starts.
 *
 * Layout: sparse, row by row in stream order, each row's int32 column
 * indices then its values (one read a row); row r starts at indptr[r] * (4 +
 * item size). Dense: whole rows, row r at r * n_vars * item size.
 */
#include "collection_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* rows read back per batch: enough to amortise the calls, small beside the
 * memory budget */
#define SPILL_BATCH ((uint64_t)8 << 20)

/* A failure on the scratch file, worded as the store writer words its own
 * (a full disk: "no space left on device"). */
static int spill_error(conv *c, const char *what, int err)
{
	const char *why = err == ENOSPC ? "no space left on device"
			  : err == EDQUOT ? "disk quota exceeded" : strerror(err);
	return ab_error_set(AB_EIO, "%s: %s the scratch file beside it: %s", c->out, what, why);
}

/* The directory the output lies in ("." for a bare name). */
static char *out_dir(const char *out)
{
	size_t l = strlen(out);
	while (l > 1 && out[l - 1] == '/')
		l--;
	while (l > 0 && out[l - 1] != '/')
		l--;
	while (l > 1 && out[l - 1] == '/')
		l--;
	return l ? strndup(out, l) : strdup(".");
}

static int spill_open(conv *c)
{
	char *dir = out_dir(c->out);
	if (!dir)
		return cw_oom();
	int fd = -1, err = 0;
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	err = errno;
#endif
	if (fd < 0) {
		/* no O_TMPFILE here: a hidden name, unlinked at once */
		char *p = malloc(strlen(dir) + 40);
		if (!p) {
			free(dir);
			return cw_oom();
		}
		sprintf(p, "%s/.annbatch-scratch-XXXXXX", dir);
		fd = mkostemp(p, O_CLOEXEC);
		err = errno;
		if (fd >= 0)
			unlink(p);
		free(p);
	}
	free(dir);
	if (fd < 0)
		return spill_error(c, "cannot create", err);
	c->spill_fd = fd;
	return 0;
}

int cw_spill_begin(conv *c)
{
	int rc;
	if (c->spill_fd < 0 && (rc = spill_open(c)))
		return rc;
	/* the last dataset's rows are written: give their space back */
	if (c->spill_bytes && ftruncate(c->spill_fd, 0) != 0)
		return spill_error(c, "cannot empty", errno);
	c->spill_bytes = 0;
	return 0;
}

static int spill_write(conv *c, const uint8_t *p, uint64_t n)
{
	while (n) {
		ssize_t k = pwrite(c->spill_fd, p, n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n,
				   (off_t)c->spill_bytes);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return spill_error(c, "writing", k < 0 ? errno : ENOSPC);
		p += k;
		n -= (uint64_t)k;
		c->spill_bytes += (uint64_t)k;
	}
	return 0;
}

int cw_spill_block(conv *c, dset *d, uint64_t row0, uint64_t nr)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	int rc;
	if (!c->sparse) {
		rc = spill_write(c, d->data, nr * c->n_vars * isz);
		return rc;
	}
	/* interleave each row's indices and values into one run */
	uint64_t m = d->nnz - d->nnz0;
	if (cw_grow((void **)&c->spill_buf, &c->spill_cap, m * (4 + isz) + 1, 1))
		return cw_oom();
	uint8_t *o = c->spill_buf;
	for (uint64_t r = row0; r < row0 + nr; r++) {
		uint64_t s = (uint64_t)d->indptr[r] - d->nnz0, e = (uint64_t)d->indptr[r + 1] - d->nnz0;
		memcpy(o, d->indices + s, (e - s) * 4);
		o += (e - s) * 4;
		memcpy(o, (uint8_t *)d->data + s * isz, (e - s) * isz);
		o += (e - s) * isz;
	}
	rc = spill_write(c, c->spill_buf, m * (4 + isz));
	d->nnz0 = d->nnz;
	return rc;
}

static int spill_pread(conv *c, uint8_t *p, uint64_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(c->spill_fd, p, n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? spill_error(c, "reading", errno)
				     : ab_error_set(AB_EIO, "%s: the scratch file beside it is shorter than written",
						    c->out);
		p += k;
		n -= (uint64_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int cw_spill_read(conv *c, const dset *d, const uint64_t *perm, uint64_t i0, uint64_t *i1,
		  const uint8_t **rows)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t rb = c->sparse ? 4 + isz : c->n_vars * isz; /* per entry, or per row */
	/* the batch: rows while they fit, at least one */
	uint64_t i = i0, bytes = 0;
	while (i < d->n) {
		uint64_t r = perm ? perm[i] : i;
		uint64_t len = c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) * rb : rb;
		if (i > i0 && bytes + len > SPILL_BATCH)
			break;
		bytes += len;
		i++;
	}
	if (cw_grow((void **)&c->spill_buf, &c->spill_cap, bytes + 1, 1))
		return cw_oom();
	uint8_t *o = c->spill_buf;
	int rc = 0;
	if (!perm) {
		/* stream order: one read */
		uint64_t off = c->sparse ? (uint64_t)d->indptr[i0] * rb : i0 * rb;
		rc = spill_pread(c, o, bytes, off);
	} else {
		for (uint64_t k = i0; k < i && !rc; k++) {
			uint64_t r = perm[k];
			uint64_t off = c->sparse ? (uint64_t)d->indptr[r] * rb : r * rb;
			uint64_t len = c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) * rb : rb;
			rc = spill_pread(c, o, len, off);
			o += len;
		}
	}
	*i1 = i;
	*rows = c->spill_buf;
	return rc;
}

void cw_spill_close(conv *c)
{
	if (c->spill_fd >= 0)
		close(c->spill_fd);
	c->spill_fd = -1;
	free(c->spill_buf);
	c->spill_buf = NULL;
	c->spill_cap = 0;
}
