/* scatter.c - decoded rows go straight to their batch.
 *
 * A window's permutation is known when the window is planned, and for CSR
 * data so is every row's length (the indptr is in memory). So before any
 * byte is read, each window row gets its place: which batch, and where in
 * that batch's arrays. The batches and their X buffers are taken then, and
 * the decode workers copy each decoded row from their (cache-resident)
 * staging buffer to that place. Rows are copied once, instead of into a
 * window-sized buffer and again into the batch, and the window needs no X
 * buffer of its own: what a window holds in memory is its batches.
 *
 * Positions in a stream are the window's own, as the plan gives them: for
 * CSR values and indices the value offset in the window's rows in window
 * order (w->indptr), for dense X the window row. */
#include "loader_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"
#include "value.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define NO_BATCH UINT32_MAX

/* Copies below this size go through memcpy; above it, through streaming
 * stores where the machine has them. */
#define STREAM_MIN 512

/* A row's part copied to its batch. A batch is tens of MiB, written once
 * and next read by a consumer long after this core's caches have moved on:
 * streaming stores write it without first reading every line into the cache
 * (the read-for-ownership that makes a plain copy to cold memory cost two
 * memory transfers a line). scatter_fence() orders them before the task's
 * completion is published. */
static void copy_out(void *dst, const void *src, size_t n)
{
#if defined(__SSE2__)
	if (n >= STREAM_MIN) {
		uint8_t *d = dst;
		const uint8_t *s = src;
		size_t head = (16 - ((uintptr_t)d & 15)) & 15;
		memcpy(d, s, head);
		d += head;
		s += head;
		n -= head;
		for (; n >= 64; n -= 64, d += 64, s += 64) {
			__m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
			__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
			__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
			__m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));
			_mm_stream_si128((__m128i *)(void *)d, a);
			_mm_stream_si128((__m128i *)(void *)(d + 16), b);
			_mm_stream_si128((__m128i *)(void *)(d + 32), c);
			_mm_stream_si128((__m128i *)(void *)(d + 48), e);
		}
		memcpy(d, s, n);
		return;
	}
#endif
	memcpy(dst, src, n);
}

void scatter_fence(void)
{
#if defined(__SSE2__)
	_mm_sfence();
#endif
}

static ab_batch *batch_get(ab_loader *ld)
{
	pthread_mutex_lock(&ld->mu);
	ab_batch *b = ld->free_batches;
	if (b)
		ld->free_batches = b->next_free;
	pthread_mutex_unlock(&ld->mu);
	if (!b)
		b = calloc(1, sizeof *b);
	if (b)
		b->ld = ld;
	return b;
}

void window_drop_batches(ab_loader *ld, ld_window *w)
{
	if (!w->own_batches)
		return;
	for (size_t b = 0; b < w->nbatches; b++) {
		w->batches[b]->win = NULL;
		batch_recycle(ld, w->batches[b]);
	}
	w->nbatches = 0;
	w->own_batches = 0;
}

/* Sizes batch b's X buffers and places its rows. */
static int place_batch(ab_loader *ld, ld_window *w, size_t b)
{
	ab_batch *bt = w->batches[b];
	const uint32_t *perm = w->w.perm + w->w.batch_off[b];
	uint64_t n = w->w.batch_off[b + 1] - w->w.batch_off[b];
	bt->nrows = n;
	if (!ld->sparse) {
		size_t rowb = (size_t)(ld->row_items * ld->out_isz);
		if (ensure_x(ld, &bt->data, &bt->data_cap, rowb * (n ? n : 1)))
			return ab_error_set(AB_ENOMEM, "out of memory for a batch of %zu bytes", rowb * (size_t)n);
		for (uint64_t j = 0; j < n; j++)
			w->dst[perm[j]] = (ld_dst){ (uint32_t)b, j };
		bt->nnz = 0;
		return 0;
	}
	uint64_t nnz = 0;
	for (uint64_t j = 0; j < n; j++) {
		w->dst[perm[j]] = (ld_dst){ (uint32_t)b, nnz };
		nnz += (uint64_t)(w->indptr[perm[j] + 1] - w->indptr[perm[j]]);
	}
	if (ld->cfg.indptr_int32 && nnz > ld->indptr32_max)
		return ab_error_set(AB_EINVAL,
				    "batch %zu of window %" PRIu64 " of epoch %" PRIu64 " (%" PRIu64
				    " rows, the first global row %" PRIu64 ") has %" PRIu64 " values, more "
				    "than an int32 indptr can index (%" PRIu64 "; indptr_int32 is set): "
				    "lower batch_size, or leave indptr_int32 off",
				    b, w->w.index, w->epoch, n, n ? w->rows[perm[0]] : 0, nnz, ld->indptr32_max);
	size_t ipsz = ld->cfg.indptr_int32 ? sizeof(int32_t) : sizeof(int64_t);
	if (ensure_x(ld, &bt->indptr, &bt->indptr_cap, ipsz * (n + 1)) ||
	    ensure_x(ld, &bt->data, &bt->data_cap, ld->out_isz * (nnz ? nnz : 1)) ||
	    ensure_x(ld, (void **)&bt->indices, &bt->indices_cap, sizeof(int32_t) * (nnz ? nnz : 1)))
		return ab_error_set(AB_ENOMEM, "out of memory for a batch of %" PRIu64 " values", nnz);
	bt->nnz = nnz;
	atomic_store_explicit(&bt->unsorted, 0, memory_order_relaxed);
	return 0;
}

int plan_batches(ab_loader *ld, ld_window *w)
{
	size_t nb = w->w.nbatches;
	uint64_t n = w->w.nrows;
	if (nb > NO_BATCH)
		return ab_error_set(AB_EINVAL, "a window of %zu batches", nb);
	w->nbatches = 0;
	if (ensure((void **)&w->batches, &w->batches_cap, sizeof *w->batches * (nb ? nb : 1)) ||
	    ensure((void **)&w->dst, &w->dst_cap, sizeof *w->dst * (n ? n : 1)) ||
	    ensure((void **)&w->asm_tasks, &w->asm_tasks_cap, sizeof *w->asm_tasks * (nb ? nb : 1)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	/* rows no batch takes (drop_last) are decoded nowhere */
	for (uint64_t i = 0; i < n; i++)
		w->dst[i].batch = NO_BATCH;
	w->own_batches = 1;
	size_t grown = 0; /* bytes the batches' buffers grew by */
	for (size_t b = 0; b < nb; b++) {
		ab_batch *bt = batch_get(ld);
		if (!bt)
			return ab_error_set(AB_ENOMEM, "out of memory");
		w->batches[w->nbatches++] = bt;
		bt->win = w;
		bt->epoch = w->epoch;
		size_t had = bt->data_cap + bt->indices_cap + bt->indptr_cap;
		int rc = place_batch(ld, w, b);
		if (rc)
			return rc;
		grown += bt->data_cap + bt->indices_cap + bt->indptr_cap - had;
	}
	/* Fresh memory (a first window, or batches grown): a worker faults it
	 * in while the window's reads are out (prefault_batches), rather than
	 * the decode tasks page by page. Only a MB or more is worth a task;
	 * a caller's allocator hands out memory that is there already. */
	w->prefault = !ld->alloc.alloc && grown >= ((size_t)1 << 20);
	return 0;
}

void prefault_batches(ab_loader *ld, ld_window *w)
{
	/* the first batch handed out first: the others are cut after it */
	size_t nb = w->nbatches, first = w->skip < nb ? w->skip : 0;
	for (size_t k = 0; k < nb; k++) {
		ab_batch *bt = w->batches[(first + k) % nb];
		if (atomic_load(&ld->error) || atomic_load(&ld->stop))
			return;
		if (!ld->sparse) {
			populate(bt->data, (size_t)(bt->nrows * ld->row_items * ld->out_isz));
			continue;
		}
		size_t ipsz = ld->cfg.indptr_int32 ? sizeof(int32_t) : sizeof(int64_t);
		populate(bt->data, (size_t)(bt->nnz * ld->out_isz));
		populate(bt->indices, (size_t)(bt->nnz * sizeof(int32_t)));
		populate(bt->indptr, ipsz * (size_t)(bt->nrows + 1));
	}
}

/* The window row holding item `pos` of a CSR stream: the last row starting
 * at or before it (rows without values start where the next one does). */
static uint64_t csr_row_of(const ld_window *w, uint64_t pos)
{
	uint64_t lo = 0, hi = w->w.nrows;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if ((uint64_t)w->indptr[mid] <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void scatter_items(ab_loader *ld, ld_window *w, int stream, uint64_t pos, ab_dtype from, const void *src,
		   uint64_t n)
{
	if (n == 0)
		return;
	const uint8_t *s = src;
	size_t sisz = ab_dtype_size(from);
	ab_dtype to = stream == STREAM_INDICES ? AB_DT_INT32 : ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	size_t oisz = stream == STREAM_INDICES ? sizeof(int32_t) : ld->out_isz;
	uint64_t end = pos + n;
	if (!ld->sparse) {
		/* 1-d dense X: one item a row */
		for (; pos < end; pos++, s += sisz) {
			ld_dst d = w->dst[pos];
			if (d.batch != NO_BATCH)
				ab_convert(to, (uint8_t *)w->batches[d.batch]->data + d.at * oisz, from, s, 1);
		}
		return;
	}
	for (uint64_t r = csr_row_of(w, pos); pos < end; r++) {
		uint64_t r1 = (uint64_t)w->indptr[r + 1];
		if (r1 <= pos)
			continue;
		uint64_t e = r1 < end ? r1 : end, k = e - pos;
		ld_dst d = w->dst[r];
		if (d.batch != NO_BATCH) {
			ab_batch *bt = w->batches[d.batch];
			uint64_t at = d.at + (pos - (uint64_t)w->indptr[r]);
			if (stream == STREAM_INDICES) {
				/* strictly increasing within the row, checked here
				 * while the indices are in cache (check_seams joins
				 * the parts of a row two units hold) */
				const int32_t *v = (const int32_t *)(const void *)s;
				int ok = 1;
				for (uint64_t i = 1; i < k; i++)
					ok &= v[i - 1] < v[i];
				if (!ok)
					atomic_store_explicit(&bt->unsorted, 1, memory_order_relaxed);
				copy_out(bt->indices + at, v, (size_t)k * sizeof(int32_t));
			} else if (to == from) {
				copy_out((uint8_t *)bt->data + at * oisz, s, (size_t)k * oisz);
			} else {
				ab_convert(to, (uint8_t *)bt->data + at * oisz, from, s, (size_t)k);
			}
		}
		s += k * sisz;
		pos = e;
	}
}

void scatter_box(ab_loader *ld, ld_window *w, int nd, const uint8_t *src, const uint64_t *src_shape,
		 uint64_t src_row, uint64_t dst_row, uint64_t nrows, const uint64_t *col_off, const uint64_t *cnt)
{
	uint64_t soff[AB_MAX_NDIM] = { 0 }, doff[AB_MAX_NDIM] = { 0 }, dshape[AB_MAX_NDIM], c[AB_MAX_NDIM];
	dshape[0] = 1;
	c[0] = 1;
	for (int i = 1; i < nd; i++) {
		dshape[i] = ld->trailing[i];
		doff[i] = col_off[i];
		c[i] = cnt[i];
	}
	size_t rowb = (size_t)(ld->row_items * ld->out_isz);
	for (uint64_t k = 0; k < nrows; k++) {
		ld_dst d = w->dst[dst_row + k];
		if (d.batch == NO_BATCH)
			continue;
		soff[0] = src_row + k;
		ab_copy_box(nd, ld->out_isz, src, src_shape, soff, (uint8_t *)w->batches[d.batch]->data + d.at * rowb,
			    dshape, doff, c);
	}
}

void scatter_memory_rows(ab_loader *ld, ld_window *w, const ld_source *s, uint64_t a, uint64_t b,
			 uint64_t dst_row)
{
	ab_dtype to = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	size_t sisz = ab_dtype_size(s->dtype);
	for (uint64_t i = a; i < b; i++) {
		ld_dst d = w->dst[dst_row + (i - a)];
		if (d.batch == NO_BATCH)
			continue;
		ab_batch *bt = w->batches[d.batch];
		if (s->kind == SRC_MEM_DENSE) {
			size_t items = (size_t)ld->row_items;
			ab_convert(to, (uint8_t *)bt->data + d.at * items * ld->out_isz, s->dtype,
				   (const uint8_t *)s->mem + i * items * sisz, items);
			continue;
		}
		int64_t e0 = s->mem_indptr[i], e1 = s->mem_indptr[i + 1];
		ab_convert(to, (uint8_t *)bt->data + d.at * ld->out_isz, s->dtype,
			   (const uint8_t *)s->mem + (size_t)e0 * sisz, (size_t)(e1 - e0));
		int ok = 1;
		for (int64_t k = e0; k < e1; k++) {
			bt->indices[d.at + (uint64_t)(k - e0)] = (int32_t)s->mem_indices[k];
			if (k > e0)
				ok &= s->mem_indices[k - 1] < s->mem_indices[k];
		}
		if (!ok)
			atomic_store_explicit(&bt->unsorted, 1, memory_order_relaxed);
	}
}

void check_seams(ab_loader *ld, ld_window *w)
{
	if (!ld->sparse)
		return;
	for (size_t i = 0; i < w->nunits; i++) {
		const ld_unit *u = &w->units[i];
		if (u->stream != STREAM_INDICES)
			continue;
		for (size_t c = 0; c < u->ncopies; c++) {
			uint64_t pos = w->copies[u->copy_first + c].dst_row;
			if (w->copies[u->copy_first + c].nrows == 0 || pos >= w->nnz)
				continue;
			uint64_t r = csr_row_of(w, pos), r0 = (uint64_t)w->indptr[r];
			ld_dst d = w->dst[r];
			if (pos == r0 || d.batch == NO_BATCH)
				continue; /* the copy starts a row: no seam */
			ab_batch *bt = w->batches[d.batch];
			const int32_t *v = bt->indices + d.at + (pos - r0);
			if (!(v[-1] < v[0]))
				atomic_store_explicit(&bt->unsorted, 1, memory_order_relaxed);
		}
	}
}
