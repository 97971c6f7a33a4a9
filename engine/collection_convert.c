/* collection_convert.c - a piece of an input's X read and converted for the
 * collection: its columns mapped into the output's var space (columns the
 * output lacks dropped and counted, rows sorted again when the mapping
 * reorders them), its values into the output's dtype (checked to fit when
 * adding to a collection of a narrower dtype), into an xblock.
 *
 * Reading and converting touch nothing of the run but what its plan fixed
 * before the first row was read (the inputs' column maps and dtypes), so
 * the read-ahead workers (collection_ahead.c) run them on many pieces at
 * once; staging a converted piece in its dataset is the calling thread's,
 * in the pieces' order. */
#include "collection_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "anndata.h"

void cw_xblock_free(xblock *x)
{
	free(x->len);
	free(x->idx);
	free(x->val);
	free(x->z);
	free(x->zlen);
	free(x->raw);
	memset(x, 0, sizeof *x);
}

/* Adding an input whose X dtype the collection's cannot hold in general
 * (float counts into an int32 collection): each value must fit, else the
 * run stops rather than truncate. */
static int cast_fail(const conv *c, const input *in, uint64_t row, const void *src, size_t k)
{
	char v[64];
	snprintf(v, sizeof v, "%.17g", ab_value_as_double(in->info.x_dtype, src, k));
	return ab_error_set(AB_ERANGE, "%s: X row %" PRIu64 " holds %s, which the collection's %s X cannot "
			"hold; convert into a new collection", in->path, row, v,
			ab_dtype_name(c->x_dtype));
}

typedef struct pair { int32_t col; uint32_t pos; } pair;

static int pair_cmp(const void *a, const void *b)
{
	const pair *x = a, *y = b;
	return (x->col > y->col) - (x->col < y->col);
}

/* Sorts the m entries of a row (columns idx, values val) by column,
 * carrying the values along: a reordered var space (colmap not monotonic). */
static int sort_row(int32_t *idx, uint8_t *val, uint64_t m, size_t isz)
{
	if (m < 2)
		return 0;
	pair *pp = malloc(m * sizeof *pp);
	uint8_t *tv = malloc(m * isz);
	if (!pp || !tv) {
		free(pp);
		free(tv);
		return cw_oom();
	}
	for (uint64_t k = 0; k < m; k++) {
		pp[k].col = idx[k];
		pp[k].pos = (uint32_t)k;
	}
	/* columns are distinct within a row: any sort gives the one order */
	qsort(pp, m, sizeof *pp, pair_cmp);
	memcpy(tv, val, m * isz);
	for (uint64_t k = 0; k < m; k++) {
		idx[k] = pp[k].col;
		memcpy(val + k * isz, tv + pp[k].pos * isz, isz);
	}
	free(pp);
	free(tv);
	return 0;
}

int cw_read_raw(const conv *c, const input *in, ab_anndata *ad, const block *b, xblock *x)
{
	uint64_t nr = b->end - b->start;
	size_t isz_in = ab_dtype_size(in->info.x_dtype);
	int rc;
	x->nr = nr;
	x->encoded = 0;
	if (in->info.x_kind == AB_X_CSR) {
		uint64_t nnz;
		if ((rc = ab_anndata_x_nnz(ad, b->start, b->end, &nnz)))
			return cw_fail_lib((conv *)c, rc, in->path);
		/* indptr (nr+1) + indices (nnz) as int64, then data */
		if (cw_grow(&x->raw, &x->rawcap, (nr + 1 + nnz) * 8 + nnz * isz_in + 64, 1))
			return cw_oom();
		int64_t *ip = x->raw, *ix = ip + nr + 1;
		if ((rc = ab_anndata_x_read_csr(ad, b->start, b->end, ip, ix, ix + nnz)))
			return cw_fail_lib((conv *)c, rc, in->path);
		x->bytes_in = nnz * (isz_in + 8) + nr * 8;
		return 0;
	}
	uint64_t bytes = nr * in->info.n_vars * isz_in;
	/* rows that need no conversion go straight to where they are staged */
	int direct = !c->sparse && in->identity && in->info.x_dtype == c->x_dtype && !in->check_cast;
	void **dst = direct ? &x->val : &x->raw;
	uint64_t *cap = direct ? &x->valcap : &x->rawcap;
	if (cw_grow(dst, cap, bytes + 64, 1))
		return cw_oom();
	if ((rc = ab_anndata_x_read_dense(ad, b->start, b->end, *dst, (size_t)bytes)))
		return cw_fail_lib((conv *)c, rc, in->path);
	x->bytes_in = bytes;
	return 0;
}

/* Grows the converted piece to n entries (sparse) and its row lengths. */
static int grow_sparse(const conv *c, xblock *x, uint64_t n)
{
	if (cw_grow((void **)&x->len, &x->lencap, x->nr + 1, sizeof *x->len) ||
	    cw_grow((void **)&x->idx, &x->idxcap, n + 1, sizeof *x->idx) ||
	    cw_grow(&x->val, &x->valcap, (n + 1) * ab_dtype_size(c->x_dtype), 1))
		return cw_oom();
	return 0;
}

/* Entry k of source values src (the input's dtype) as entry *m of the
 * piece, in output column oc: a column the output lacks drops it
 * (counted); a value the collection's dtype cannot hold stops the run. */
static inline int put_value(const conv *c, const input *in, xblock *x, uint64_t *m, int64_t oc,
			    const void *src, uint64_t k, uint64_t row, size_t isz)
{
	if (oc < 0) {
		x->values_dropped++;
		return 0;
	}
	if (in->check_cast && !ab_value_fits(c->x_dtype, ab_value_as_double(in->info.x_dtype, src, k)))
		return cast_fail(c, in, row, src, k);
	x->idx[*m] = (int32_t)oc;
	copy_item(c->x_dtype, x->val, *m, in->info.x_dtype, src, k, isz);
	(*m)++;
	return 0;
}

/* The entries of CSR rows: the same dtype needs no conversion, and most
 * runs keep every column: a plain loop of loads and stores per entry. */
#define COPY_SAME(T)                                                                        \
	do {                                                                                \
		const T *sv = (const T *)dv;                                                \
		T *ov = (T *)x->val;                                                        \
		for (uint64_t k = s; k < e; k++) {                                          \
			int64_t oc = in->colmap[ix[k]];                                     \
			if (oc < 0) {                                                       \
				x->values_dropped++;                                        \
				continue;                                                   \
			}                                                                   \
			x->idx[m] = (int32_t)oc;                                            \
			ov[m++] = sv[k];                                                    \
		}                                                                           \
	} while (0)

static int convert_csr(const conv *c, const input *in, const block *b, xblock *x)
{
	uint64_t nr = x->nr;
	const int64_t *ip = x->raw, *ix = ip + nr + 1;
	uint64_t nnz = (uint64_t)ip[nr];
	const void *dv = ix + nnz;
	size_t isz = ab_dtype_size(c->x_dtype);
	int rc;
	if (!c->sparse)
		return cw_fail((conv *)c, "%s: internal: sparse input into dense output", in->path, NULL);
	if ((rc = grow_sparse(c, x, nnz)))
		return rc;
	int same = in->info.x_dtype == c->x_dtype && !in->check_cast;
	uint64_t m = 0;
	for (uint64_t r = 0; r < nr; r++) {
		uint64_t s = (uint64_t)ip[r], e = (uint64_t)ip[r + 1], out0 = m;
		if (same && isz == 4)
			COPY_SAME(uint32_t);
		else if (same && isz == 8)
			COPY_SAME(uint64_t);
		else
			for (uint64_t k = s; k < e; k++)
				if ((rc = put_value(c, in, x, &m, in->colmap[ix[k]], dv, k, b->start + r, isz)))
					return rc;
		if (!in->monotonic && (rc = sort_row(x->idx + out0, (uint8_t *)x->val + out0 * isz, m - out0, isz)))
			return rc;
		x->len[r] = m - out0;
	}
	x->nnz = m;
	return 0;
}

static int convert_dense(const conv *c, const input *in, const block *b, xblock *x)
{
	uint64_t nr = x->nr, nv = in->info.n_vars;
	size_t isz_in = ab_dtype_size(in->info.x_dtype), isz = ab_dtype_size(c->x_dtype);
	const void *src = x->raw;
	int rc;
	if (c->sparse) {
		uint64_t add = 0;
		for (uint64_t k = 0; k < nr * nv; k++)
			add += !is_zero(in->info.x_dtype, src, k, isz_in) && in->colmap[k % (nv ? nv : 1)] >= 0;
		if ((rc = grow_sparse(c, x, add)))
			return rc;
		uint64_t m = 0;
		for (uint64_t r = 0; r < nr; r++) {
			uint64_t out0 = m;
			for (uint64_t j = 0; j < nv; j++) {
				uint64_t k = r * nv + j;
				if (!is_zero(in->info.x_dtype, src, k, isz_in) &&
				    (rc = put_value(c, in, x, &m, in->colmap[j], src, k, b->start + r, isz)))
					return rc;
			}
			if (!in->monotonic &&
			    (rc = sort_row(x->idx + out0, (uint8_t *)x->val + out0 * isz, m - out0, isz)))
				return rc;
			x->len[r] = m - out0;
		}
		x->nnz = m;
		return 0;
	}
	if (!in->check_cast && in->identity && in->info.x_dtype == c->x_dtype)
		return 0; /* read in place (cw_read_raw) */
	uint64_t rb = c->n_vars * isz;
	if (cw_grow(&x->val, &x->valcap, nr * rb + 1, 1))
		return cw_oom();
	uint8_t *dst = x->val;
	memset(dst, 0, (size_t)(nr * rb));
	for (uint64_t r = 0; r < nr; r++)
		for (uint64_t j = 0; j < nv; j++)
			if (in->colmap[j] >= 0 && in->check_cast &&
			    !ab_value_fits(c->x_dtype, ab_value_as_double(in->info.x_dtype, src, r * nv + j)))
				return cast_fail(c, in, b->start + r, src, r * nv + j);
			else if (in->colmap[j] >= 0)
				copy_item(c->x_dtype, dst, r * c->n_vars + (uint64_t)in->colmap[j],
					  in->info.x_dtype, src, r * nv + j, isz);
			else if (!is_zero(in->info.x_dtype, src, r * nv + j, isz_in))
				x->values_dropped++;
	return 0;
}

int cw_convert_raw(const conv *c, const input *in, const block *b, xblock *x)
{
	x->values_dropped = 0;
	x->nnz = 0;
	if (in->info.x_kind == AB_X_CSR)
		return convert_csr(c, in, b, x);
	return convert_dense(c, in, b, x);
}

/* Grows the sparse staging (indices and data, same capacity) to `need`. */
static int grow_staging(conv *c, dset *d, uint64_t need)
{
	uint64_t old = d->cap;
	if (cw_grow((void **)&d->indices, &d->cap, need, sizeof(int32_t)))
		return cw_oom();
	if (d->cap == old && d->data)
		return 0;
	void *nd = realloc(d->data, (size_t)(d->cap * ab_dtype_size(c->x_dtype)));
	if (!nd)
		return cw_oom();
	d->data = nd;
	return 0;
}

int cw_stage_block(conv *c, dset *d, input *in, const xblock *x, uint64_t row0)
{
	size_t isz = ab_dtype_size(c->x_dtype);
	int rc;
	c->bytes_in += x->bytes_in;
	in->values_dropped += x->values_dropped;
	if (c->sparse) {
		/* m: entries staged so far (the staging starts at d->nnz0) */
		uint64_t m = d->nnz - d->nnz0;
		if ((rc = grow_staging(c, d, m + x->nnz)))
			return rc;
		memcpy(d->indices + m, x->idx, x->nnz * sizeof *x->idx);
		memcpy((uint8_t *)d->data + m * isz, x->val, x->nnz * isz);
		uint64_t v = d->nnz;
		for (uint64_t r = 0; r < x->nr; r++) {
			v += x->len[r];
			d->indptr[row0 + r + 1] = (int64_t)v;
		}
		d->nnz = v;
		return 0;
	}
	uint64_t rb = c->n_vars * isz, at = (row0 - d->staged_row0) * rb;
	if (cw_grow(&d->data, &d->dcap, at + x->nr * rb + 1, 1))
		return cw_oom();
	memcpy((uint8_t *)d->data + at, x->val, (size_t)(x->nr * rb));
	return 0;
}
