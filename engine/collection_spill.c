/* collection_spill.c - where a dataset's X rows wait between being read
 * (in block order) and written (in the dataset's order): in memory while they
 * fit, else in a scratch file.
 *
 * Why a file: the order a dataset's rows are written in (a seeded shuffle,
 * then a stable sort by the groupby columns) needs only the row count and
 * the obs columns, never X. So X need not be held: rows are staged in memory
 * as they are read, and when the staging outgrows what --memory leaves
 * (c->x_hold) it goes to the scratch file; only the rows' offsets stay (the
 * sparse indptr; dense rows all have one size), and the writer reads each
 * row back where the order wants it. Memory then holds obs, offsets and the
 * order, a few dozen bytes a row, whatever the dataset's size.
 *
 * The file lies beside the output (the same file system the collection must
 * fit on) and is unlinked as soon as it is made (O_TMPFILE where the file
 * system has it), so it disappears with the process however the run ends. One
 * dataset's X at a time: it is emptied when the next dataset starts.
 *
 * Layout: row after row in stream order, each encoded on its own (read back
 * one by one, in any order), its offset kept in d->zoff. A sparse row is its
 * column indices as differences from the one before, each a LEB128 varint
 * (a byte for most: a row's columns are sorted and close), then its values
 * as they are; a dense row is LZ4-compressed whole (numcodecs framing).
 * Varint differences store the indices in about a byte each at a fraction
 * of LZ4's cost; LZ4 would take counts' values to about half their size,
 * but compressing and decompressing them cost more (two of the busiest
 * threads' time) than the page cache copies they save, and values that are
 * not small counts do not compress. A sparse row so takes about what the
 * earlier LZ4-compressed rows took, with a fifth of the work.
 *
 * The file's reads and writes run on a second thread, one batch ahead: while
 * it writes a batch of spilled rows, the caller reads and converts the next
 * block; while it reads the next batch of rows back, the caller encodes this
 * one. The kernel's copies into and out of the page cache are a large part
 * of a big conversion, so this is what a second core buys. The thread only
 * makes system calls, copies and encodes; errors come back as errno values.
 * Pieces read ahead for a dataset expected not to fit come already encoded
 * (cw_spill_encode, on the read-ahead workers): the thread only writes them.
 */
#include "collection_impl.h"
#include "codec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
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

/* ---- the second thread: one job at a time, the caller waits for it
 * before handing the next */

typedef enum { JOB_NONE, JOB_WRITE, JOB_PUT, JOB_READ } job_kind;

struct cw_spill {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy, quit;
	job_kind kind;
	/* JOB_WRITE: rows r0 .. r1 of wd, staged in jbuf (their column indices,
	 * then their values; dense: the rows); JOB_PUT: the same rows encoded,
	 * `bytes` of them, their offsets set */
	uint8_t *jbuf;
	uint64_t bytes, r0, r1;
	dset *wd;
	int w;                   /* the buffer the caller fills or reads next */
	/* JOB_READ: output rows i0 .. i1 into jbuf */
	const dset *d;
	const uint64_t *perm;
	uint64_t i0, i1;
	int err;                 /* errno of the job, -1: the file ended early */
	/* the caller's side: which read batch is under way (JOB_READ pending) */
	int pending;
	uint64_t pend_i0;
	uint8_t *buf[2];
	uint64_t cap[2];
	uint8_t *zbuf;           /* compressed rows: the thread's, or the caller's
	                          * while the thread is idle */
	uint64_t zcap;
	conv *c;
};

/* A dense row goes through LZ4 (numcodecs framing); acceleration 1: faster
 * settings gain little on counts. */
static const ab_b2b_codec row_codec = { .kind = AB_B2B_LZ4, .acceleration = 1 };

/* Bytes of row r as decoded (sparse: int32 indices, then values). */
static uint64_t raw_len(const conv *c, const dset *d, uint64_t r)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	return c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) * (4 + isz) : c->n_vars * isz;
}

/* Bytes an encoded row of `m` entries (sparse) or a dense row may need. */
static uint64_t row_bound(const conv *c, uint64_t m)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	if (c->sparse)
		return m * (5 + isz) + 16;
	return ab_b2b_encode_bound(&row_codec, (size_t)(c->n_vars * isz)) + 16;
}

/* Encodes a sparse row (m entries: columns idx, values val) or a dense row
 * (val) into o (row_bound bytes). Its size, or -1. */
static int64_t encode_row(const conv *c, const int32_t *idx, const void *val, uint64_t m, uint8_t *o,
			  uint64_t cap)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint8_t *p = o;
	if (!c->sparse) {
		ssize_t k = ab_b2b_encode(&row_codec, val, (size_t)(c->n_vars * isz), o, (size_t)cap);
		return k < 0 ? -1 : (int64_t)k;
	}
	uint32_t prev = 0;
	for (uint64_t k = 0; k < m; k++) {
		uint32_t v = (uint32_t)idx[k], dl = v - prev;
		prev = v;
		while (dl >= 0x80) {
			*p++ = (uint8_t)(dl | 0x80);
			dl >>= 7;
		}
		*p++ = (uint8_t)dl;
	}
	memcpy(p, val, m * isz);
	return (int64_t)(p - o) + (int64_t)(m * isz);
}

/* Decodes row r of d (zlen bytes at z) into o, as raw_len lays it out.
 * 0, or -2 when it does not decode. */
static int decode_row(const conv *c, const dset *d, uint64_t r, const uint8_t *z, uint64_t zlen, uint8_t *o)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	if (!c->sparse) {
		uint64_t len = c->n_vars * isz;
		return ab_b2b_decode(&row_codec, z, zlen, o, len) == (ssize_t)len ? 0 : -2;
	}
	uint64_t m = (uint64_t)(d->indptr[r + 1] - d->indptr[r]);
	const uint8_t *p = z, *end = z + zlen;
	uint32_t acc = 0;
	for (uint64_t k = 0; k < m; k++) {
		uint32_t v = 0;
		int sh = 0;
		uint8_t b;
		do {
			if (p == end || sh > 28)
				return -2;
			b = *p++;
			v |= (uint32_t)(b & 0x7f) << sh;
			sh += 7;
		} while (b & 0x80);
		acc += v;
		memcpy(o + 4 * k, &acc, 4);
	}
	if ((uint64_t)(end - p) != m * isz)
		return -2;
	memcpy(o + 4 * m, p, m * isz);
	return 0;
}

int cw_spill_encode(const conv *c, xblock *x)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t n = c->sparse ? x->nnz : x->nr * c->n_vars;
	uint64_t cap = row_bound(c, n) + x->nr * row_bound(c, 0);
	if (cw_grow((void **)&x->z, &x->zcap, cap, 1) ||
	    cw_grow((void **)&x->zlen, &x->zlencap, x->nr + 1, sizeof *x->zlen))
		return cw_oom();
	uint64_t zn = 0, e = 0;
	for (uint64_t r = 0; r < x->nr; r++) {
		uint64_t m = c->sparse ? x->len[r] : c->n_vars;
		int64_t k = encode_row(c, c->sparse ? x->idx + e : NULL, (const uint8_t *)x->val + e * isz, m,
				       x->z + zn, cap - zn);
		if (k < 0)
			return ab_error_set(AB_EIO, "%s: cannot encode a row for the scratch file", c->out);
		x->zlen[r] = (uint64_t)k;
		zn += (uint64_t)k;
		e += m;
	}
	x->zbytes = zn;
	x->encoded = 1;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, uint64_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : ENOSPC;
		p += k;
		n -= (uint64_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int pread_all(int fd, uint8_t *p, uint64_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(fd, p, n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? errno : -1;
		p += k;
		n -= (uint64_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Copies row r's X from the staging into o as the writer takes it
 * (sparse: int32 indices, then values). */
static uint64_t staged_row(const conv *c, const dset *d, uint64_t r, uint8_t *o)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	if (!c->sparse) {
		uint64_t rb = c->n_vars * isz;
		memcpy(o, (const uint8_t *)d->data + (r - d->staged_row0) * rb, rb);
		return rb;
	}
	uint64_t s = (uint64_t)d->indptr[r] - d->nnz0, e = (uint64_t)d->indptr[r + 1] - d->nnz0;
	memcpy(o, d->indices + s, (e - s) * 4);
	memcpy(o + (e - s) * 4, (const uint8_t *)d->data + s * isz, (e - s) * isz);
	return (e - s) * (4 + isz);
}

/* The batch of output rows from i0: rows while they fit SPILL_BATCH bytes,
 * at least one. Returns its end; *bytes its size. */
static uint64_t batch_end(const conv *c, const dset *d, const uint64_t *perm, uint64_t i0, uint64_t *bytes)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t rb = c->sparse ? 4 + isz : c->n_vars * isz;
	uint64_t i = i0, n = 0;
	while (i < d->n) {
		uint64_t r = perm ? perm[i] : i;
		uint64_t len = c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) * rb : rb;
		if (i > i0 && n + len > SPILL_BATCH)
			break;
		n += len;
		i++;
	}
	*bytes = n;
	return i;
}

/* Reads the rows of output rows i0 .. i1 into o (buffer large enough):
 * staged rows copied, spilled ones read and decompressed. 0 or an errno
 * value (-1: the file is short, -2: a row does not decode). */
static int read_batch(const conv *c, struct cw_spill *sp, const dset *d, const uint64_t *perm, uint64_t i0,
		      uint64_t i1, uint8_t *o)
{
	for (uint64_t k = i0; k < i1; k++) {
		uint64_t r = perm ? perm[k] : k;
		if (r >= d->staged_row0) {
			o += staged_row(c, d, r, o);
			continue;
		}
		uint64_t zlen = d->zoff[r + 1] - d->zoff[r];
		if (cw_grow((void **)&sp->zbuf, &sp->zcap, zlen + 1, 1))
			return ENOMEM;
		int err = pread_all(c->spill_fd, sp->zbuf, zlen, d->zoff[r]);
		if (err)
			return err;
		if ((err = decode_row(c, d, r, sp->zbuf, zlen, o)))
			return err;
		o += raw_len(c, d, r);
	}
	return 0;
}

/* Encodes rows r0 .. r1 of d, staged in raw (sparse: their column indices,
 * then their values), and writes them at the file's end; their offsets go
 * to d->zoff. 0 or an errno value. */
static int write_rows(conv *c, struct cw_spill *sp, dset *d, uint64_t r0, uint64_t r1, const uint8_t *raw)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t n = c->sparse ? (uint64_t)(d->indptr[r1] - d->indptr[r0]) : (r1 - r0) * c->n_vars;
	uint64_t cap = row_bound(c, n) + (r1 - r0) * row_bound(c, 0);
	if (cw_grow((void **)&sp->zbuf, &sp->zcap, cap, 1))
		return ENOMEM;
	const int32_t *idx = (const int32_t *)(const void *)raw;
	const uint8_t *val = c->sparse ? raw + n * 4 : raw;
	uint64_t zn = 0, e = 0;
	for (uint64_t r = r0; r < r1; r++) {
		uint64_t m = c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) : c->n_vars;
		int64_t k = encode_row(c, idx + e, val + e * isz, m, sp->zbuf + zn, cap - zn);
		if (k < 0)
			return EIO;
		d->zoff[r + 1] = d->zoff[r] + (uint64_t)k;
		zn += (uint64_t)k;
		e += m;
	}
	int err = pwrite_all(c->spill_fd, sp->zbuf, zn, d->zoff[r0]);
	if (!err)
		c->spill_bytes = d->zoff[r1];
	return err;
}

static void *spill_thread(void *arg)
{
	struct cw_spill *sp = arg;
	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (!sp->quit && (!sp->busy || sp->kind == JOB_NONE))
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (sp->quit)
			break;
		pthread_mutex_unlock(&sp->mu);
		int err;
		if (sp->kind == JOB_WRITE) {
			err = write_rows(sp->c, sp, sp->wd, sp->r0, sp->r1, sp->jbuf);
		} else if (sp->kind == JOB_PUT) {
			err = pwrite_all(sp->c->spill_fd, sp->jbuf, sp->bytes, sp->wd->zoff[sp->r0]);
			if (!err)
				sp->c->spill_bytes = sp->wd->zoff[sp->r1];
		} else
			err = read_batch(sp->c, sp, sp->d, sp->perm, sp->i0, sp->i1, sp->jbuf);
		pthread_mutex_lock(&sp->mu);
		sp->err = err;
		sp->kind = JOB_NONE;
		sp->busy = 0;
		pthread_cond_broadcast(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* Waits for the job under way; its errno value (0: none, or no job). */
static int spill_wait(struct cw_spill *sp)
{
	pthread_mutex_lock(&sp->mu);
	while (sp->busy)
		pthread_cond_wait(&sp->cv, &sp->mu);
	int err = sp->err;
	sp->err = 0;
	pthread_mutex_unlock(&sp->mu);
	return err;
}

static void spill_submit(struct cw_spill *sp, job_kind kind)
{
	pthread_mutex_lock(&sp->mu);
	sp->kind = kind;
	sp->busy = 1;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

static int spill_start(conv *c)
{
	struct cw_spill *sp = calloc(1, sizeof *sp);
	if (!sp)
		return cw_oom();
	sp->c = c;
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	if (pthread_create(&sp->th, NULL, spill_thread, sp) != 0) {
		pthread_mutex_destroy(&sp->mu);
		pthread_cond_destroy(&sp->cv);
		free(sp);
		return ab_error_set(AB_ENOMEM, "%s: cannot start the scratch file's thread", c->out);
	}
	c->spill = sp;
	return 0;
}

/* A finished job's failure as the run's error. */
static int job_error(conv *c, int err, int writing)
{
	if (!err)
		return 0;
	if (err == ENOMEM)
		return cw_oom();
	if (err == -2)
		return ab_error_set(AB_ECORRUPT, "%s: a row of the scratch file beside it does not decode", c->out);
	if (err < 0)
		return ab_error_set(AB_EIO, "%s: the scratch file beside it is shorter than written", c->out);
	return spill_error(c, writing ? "writing" : "reading", err);
}

int cw_spill_begin(conv *c)
{
	int rc;
	if (!c->spill && (rc = spill_start(c)))
		return rc;
	struct cw_spill *sp = c->spill;
	/* nothing may still run on the file (a read ahead past the last batch) */
	spill_wait(sp);
	sp->pending = 0;
	/* the last dataset's rows are written: give their space back */
	if (c->spill_fd >= 0 && c->spill_bytes && ftruncate(c->spill_fd, 0) != 0)
		return spill_error(c, "cannot empty", errno);
	c->spill_bytes = 0;
	return 0;
}

/* Opens the file at the dataset's first spill and makes d's offsets. */
static int spill_ready(conv *c, dset *d)
{
	int rc;
	if (c->spill_fd < 0 && (rc = spill_open(c)))
		return rc;
	if (!d->zoff && !(d->zoff = calloc(d->n + 1, sizeof *d->zoff)))
		return cw_oom();
	return 0;
}

/* Hands the rows staged before row_end to the thread, batch by batch, and
 * empties the staging. */
static int spill_staged(conv *c, dset *d, uint64_t row_end)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	struct cw_spill *sp = c->spill;
	int rc;
	if ((rc = spill_ready(c, d)))
		return rc;
	for (uint64_t r = d->staged_row0; r < row_end && !rc;) {
		/* a batch of rows into the free buffer; sparse: their indices,
		 * then their values, each in one run as staged */
		uint64_t r1 = r, bytes = 0;
		uint64_t rowb = c->n_vars * isz;
		while (r1 < row_end) {
			uint64_t len = c->sparse ? (uint64_t)(d->indptr[r1 + 1] - d->indptr[r1]) * (4 + isz) : rowb;
			if (r1 > r && bytes + len > SPILL_BATCH)
				break;
			bytes += len;
			r1++;
		}
		/* the thread may be writing the other buffer meanwhile */
		int w = sp->w;
		if (cw_grow((void **)&sp->buf[w], &sp->cap[w], bytes + 1, 1))
			return cw_oom();
		uint8_t *o = sp->buf[w];
		if (c->sparse) {
			uint64_t s = (uint64_t)d->indptr[r] - d->nnz0, n = (uint64_t)d->indptr[r1] - d->nnz0 - s;
			memcpy(o, d->indices + s, n * 4);
			memcpy(o + n * 4, (const uint8_t *)d->data + s * isz, n * isz);
		} else {
			memcpy(o, (const uint8_t *)d->data + (r - d->staged_row0) * rowb, (r1 - r) * rowb);
		}
		/* the thread encodes and writes them; the last batch's rows
		 * must be written first (their end is where these start) */
		if ((rc = job_error(c, spill_wait(sp), 1)))
			break;
		sp->jbuf = sp->buf[w];
		sp->bytes = bytes;
		sp->wd = d;
		sp->r0 = r;
		sp->r1 = r1;
		spill_submit(sp, JOB_WRITE);
		sp->w ^= 1;
		r = r1;
	}
	/* the staging is empty from here; the thread may still be writing
	 * from its own buffer */
	d->nnz0 = d->nnz;
	d->staged_row0 = row_end;
	return rc;
}

int cw_spill_block(conv *c, dset *d, uint64_t row_end)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t held = c->sparse ? d->cap * (4 + isz) : d->dcap;
	if (held <= c->x_hold || row_end == d->staged_row0)
		return 0;
	return spill_staged(c, d, row_end);
}

int cw_spill_put(conv *c, dset *d, input *in, xblock *x, uint64_t row0)
{
	struct cw_spill *sp = c->spill;
	int rc;
	/* rows staged before these go first (a dataset that fitted so far) */
	if (row0 > d->staged_row0 && (rc = spill_staged(c, d, row0)))
		return rc;
	if ((rc = spill_ready(c, d)))
		return rc;
	c->bytes_in += x->bytes_in;
	in->values_dropped += x->values_dropped;
	/* the rows before are written once the thread is done: then these
	 * start where they end */
	if ((rc = job_error(c, spill_wait(sp), 1)))
		return rc;
	uint64_t v = d->nnz;
	for (uint64_t r = 0; r < x->nr; r++) {
		if (c->sparse) {
			v += x->len[r];
			d->indptr[row0 + r + 1] = (int64_t)v;
		}
		d->zoff[row0 + r + 1] = d->zoff[row0 + r] + x->zlen[r];
	}
	if (c->sparse)
		d->nnz = d->nnz0 = v;
	d->staged_row0 = row0 + x->nr;
	/* the thread writes from the piece's buffer, which trades places with
	 * the one it wrote last (done with) */
	int w = sp->w;
	uint8_t *t = sp->buf[w];
	uint64_t tc = sp->cap[w];
	sp->buf[w] = x->z;
	sp->cap[w] = x->zcap;
	x->z = t;
	x->zcap = tc;
	x->encoded = 0;
	sp->jbuf = sp->buf[w];
	sp->bytes = x->zbytes;
	sp->wd = d;
	sp->r0 = row0;
	sp->r1 = row0 + x->nr;
	spill_submit(sp, JOB_PUT);
	sp->w ^= 1;
	return 0;
}

int cw_spill_read(conv *c, const dset *d, const uint64_t *perm, uint64_t i0, uint64_t *i1,
		  const uint8_t **rows)
{
	struct cw_spill *sp = c->spill;
	/* the last write, or the read ahead of this batch */
	int err = spill_wait(sp), rc;
	int w;
	if (sp->pending && sp->pend_i0 == i0) {
		w = sp->w;
		*i1 = sp->i1;
	} else {
		if ((rc = job_error(c, err, 1)))
			return rc;
		err = 0;
		uint64_t bytes;
		w = sp->w;
		*i1 = batch_end(c, d, perm, i0, &bytes);
		if (cw_grow((void **)&sp->buf[w], &sp->cap[w], bytes + 1, 1))
			return cw_oom();
		err = read_batch(c, sp, d, perm, i0, *i1, sp->buf[w]);
	}
	sp->pending = 0;
	if ((rc = job_error(c, err, 0)))
		return rc;
	*rows = sp->buf[w];
	/* read the next batch ahead into the other buffer */
	if (*i1 < d->n) {
		uint64_t bytes;
		int o = w ^ 1;
		sp->i1 = batch_end(c, d, perm, *i1, &bytes);
		if (cw_grow((void **)&sp->buf[o], &sp->cap[o], bytes + 1, 1))
			return cw_oom();
		sp->w = o;
		sp->jbuf = sp->buf[o];
		sp->d = d;
		sp->perm = perm;
		sp->i0 = *i1;
		sp->bytes = bytes;
		sp->pending = 1;
		sp->pend_i0 = *i1;
		spill_submit(sp, JOB_READ);
	}
	return 0;
}

void cw_spill_end(conv *c)
{
	if (c->spill) {
		spill_wait(c->spill);
		c->spill->pending = 0;
	}
}

void cw_spill_close(conv *c)
{
	struct cw_spill *sp = c->spill;
	if (sp) {
		spill_wait(sp);
		pthread_mutex_lock(&sp->mu);
		sp->quit = 1;
		pthread_cond_broadcast(&sp->cv);
		pthread_mutex_unlock(&sp->mu);
		pthread_join(sp->th, NULL);
		pthread_mutex_destroy(&sp->mu);
		pthread_cond_destroy(&sp->cv);
		free(sp->buf[0]);
		free(sp->buf[1]);
		free(sp->zbuf);
		free(sp);
		c->spill = NULL;
	}
	if (c->spill_fd >= 0)
		close(c->spill_fd);
	c->spill_fd = -1;
}
