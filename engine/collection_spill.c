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
 * Layout: sparse, row by row in stream order, each row's int32 column
 * indices then its values (one read a row); row r starts at indptr[r] * (4 +
 * item size). Dense: whole rows, row r at r * n_vars * item size.
 *
 * The file's reads and writes run on a second thread, one batch ahead: while
 * it writes a batch of spilled rows, the caller reads and converts the next
 * block; while it reads the next batch of rows back, the caller encodes this
 * one. The kernel's copies into and out of the page cache are a large part
 * of a big conversion, so this is what a second core buys. The thread only
 * makes system calls and copies; errors come back as errno values.
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

typedef enum { JOB_NONE, JOB_WRITE, JOB_READ } job_kind;

struct cw_spill {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy, quit;
	job_kind kind;
	/* JOB_WRITE: rows r0 .. r1 of wd, laid out in jbuf (bytes) */
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

/* Rows are LZ4-compressed one by one (read back one by one, in any order),
 * sparse column indices first turned into differences: the file, and the
 * bytes the kernel copies in and out of it, shrink by about 1.5x on counts. */
static const ab_b2b_codec row_codec = { .kind = AB_B2B_LZ4, .acceleration = 1 };

/* Bytes of row r as laid out uncompressed. */
static uint64_t raw_len(const conv *c, const dset *d, uint64_t r)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	return c->sparse ? (uint64_t)(d->indptr[r + 1] - d->indptr[r]) * (4 + isz) : c->n_vars * isz;
}

/* Sparse rows: the m column indices at p into differences, and back. */
static void delta_encode(uint8_t *p, uint64_t m)
{
	uint32_t prev = 0;
	for (uint64_t k = 0; k < m; k++) {
		uint32_t v;
		memcpy(&v, p + 4 * k, 4);
		uint32_t dlt = v - prev;
		prev = v;
		memcpy(p + 4 * k, &dlt, 4);
	}
}

static void delta_decode(uint8_t *p, uint64_t m)
{
	uint32_t acc = 0;
	for (uint64_t k = 0; k < m; k++) {
		uint32_t v;
		memcpy(&v, p + 4 * k, 4);
		acc += v;
		memcpy(p + 4 * k, &acc, 4);
	}
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

/* Copies row r's X (as the scratch file lays it out) from the staging. */
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
	size_t isz = ab_dtype_size(c->x_dtype);
	for (uint64_t k = i0; k < i1; k++) {
		uint64_t r = perm ? perm[k] : k;
		if (r >= d->staged_row0) {
			o += staged_row(c, d, r, o);
			continue;
		}
		uint64_t len = raw_len(c, d, r), zlen = d->zoff[r + 1] - d->zoff[r];
		if (cw_grow((void **)&sp->zbuf, &sp->zcap, zlen + 1, 1))
			return ENOMEM;
		int err = pread_all(c->spill_fd, sp->zbuf, zlen, d->zoff[r]);
		if (err)
			return err;
		if (ab_b2b_decode(&row_codec, sp->zbuf, zlen, o, len) != (ssize_t)len)
			return -2;
		if (c->sparse)
			delta_decode(o, len / (4 + isz));
		o += len;
	}
	return 0;
}

/* Compresses rows r0 .. r1 of d, laid out in raw, and writes them at the
 * file's end; their offsets go to d->zoff. 0 or an errno value. */
static int write_rows(conv *c, struct cw_spill *sp, dset *d, uint64_t r0, uint64_t r1, uint8_t *raw,
		      uint64_t bytes)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t cap = bytes + bytes / 255 + (r1 - r0) * 32 + 64;
	if (cw_grow((void **)&sp->zbuf, &sp->zcap, cap, 1))
		return ENOMEM;
	uint64_t zn = 0;
	for (uint64_t r = r0; r < r1; r++) {
		uint64_t len = raw_len(c, d, r);
		if (c->sparse)
			delta_encode(raw, len / (4 + isz));
		ssize_t k = ab_b2b_encode(&row_codec, raw, len, sp->zbuf + zn, cap - zn);
		if (k < 0)
			return EIO;
		d->zoff[r + 1] = d->zoff[r] + (uint64_t)k;
		zn += (uint64_t)k;
		raw += len;
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
		if (sp->kind == JOB_WRITE)
			err = write_rows(sp->c, sp, sp->wd, sp->r0, sp->r1, sp->jbuf, sp->bytes);
		else
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

int cw_spill_block(conv *c, dset *d, uint64_t row_end)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t held = c->sparse ? d->cap * (4 + isz) : d->dcap;
	if (held <= c->x_hold || row_end == d->staged_row0)
		return 0;
	struct cw_spill *sp = c->spill;
	int rc = 0;
	if (c->spill_fd < 0 && (rc = spill_open(c)))
		return rc;
	if (!d->zoff && !(d->zoff = calloc(d->n + 1, sizeof *d->zoff)))
		return cw_oom();
	for (uint64_t r = d->staged_row0; r < row_end && !rc;) {
		/* a batch of rows into the free buffer; sparse: each row's
		 * indices and values in one run */
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
		uint64_t r0 = r;
		for (; r < r1; r++)
			o += staged_row(c, d, r, o);
		/* the thread compresses and writes them; the last batch's rows
		 * must be written first (their end is where these start) */
		if ((rc = job_error(c, spill_wait(sp), 1)))
			break;
		sp->jbuf = sp->buf[w];
		sp->bytes = bytes;
		sp->wd = d;
		sp->r0 = r0;
		sp->r1 = r1;
		spill_submit(sp, JOB_WRITE);
		sp->w ^= 1;
	}
	/* the staging is empty from here; the thread may still be writing
	 * from its own buffer */
	d->nnz0 = d->nnz;
	d->staged_row0 = row_end;
	return rc;
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
