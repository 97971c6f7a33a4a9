/* decode.c - a completed read becomes rows of the window: checksum, decompress
 * (only the blosc blocks needed), convert, copy. */
#include "loader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "last_error.h"
#include "value.h"

/* ------------------------------------------------------------ decoding */

typedef struct ld_worker_ctx {
	ab_scratch scratch;
	ab_buf unit, conv;
} ld_worker_ctx;

void unit_where(const ld_unit *u, char *buf, size_t size)
{
	char key[512];
	if (u->arr->sharded) {
		uint64_t sc[AB_MAX_NDIM], k = 0;
		const ab_shard_cfg *cfg = u->arr->m.pipe.shard;
		for (int i = 0; i < u->arr->m.ndim; i++) {
			sc[i] = u->coord[i] / cfg->per_dim[i];
			k = k * cfg->per_dim[i] + u->coord[i] % cfg->per_dim[i];
		}
		ab_chunk_key(&u->arr->m, sc, key, sizeof key);
		snprintf(buf, size, "array '%s' in %s, inner chunk %llu of shard %s", u->arr->node, u->arr->store->root,
			 (unsigned long long)k, key);
	} else {
		ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
		snprintf(buf, size, "array '%s' in %s, chunk %s", u->arr->node, u->arr->store->root, key);
	}
}

/* Names the first CSR column index of v[0..n) outside [0, ncols). */
static int bad_index(ab_dtype from, const void *v, size_t n, uint64_t ncols)
{
	for (size_t i = 0; i < n; i++) {
		int64_t x = ab_value_as_int64(from, v, i);
		if (x < 0 || (uint64_t)x >= ncols) /* run_task names the unit */
			return ab_error_set(AB_ECORRUPT, "column index %lld outside [0, %llu)", (long long)x,
					    (unsigned long long)ncols);
	}
	return 0;
}

/* Decodes only the rows of a unit the window takes (the blosc blocks that
 * hold them; see ab_chunk_decode_part): the span [lo, hi) of its copies'
 * rows goes into the worker's unit buffer at its place, for the copies of
 * decode_unit. A 32-row chunk of a sparse store covers about half of a
 * 64-row inner chunk, so decoding whole units costs about 3x the bytes
 * delivered, decoding blocks about 2x with blosc's default blocks, less with
 * smaller ones. Returns 0, AB_NO_PART (decode the whole unit instead), or a
 * negative status. */
static int decode_unit_part(ab_loader *ld, ld_window *w, const ld_unit *u, const uint8_t *bytes, size_t len,
			    ld_worker_ctx *cx)
{
	ab_array *arr = u->arr;
	const ab_dtype_desc *dt = &arr->m.dt;
	if (u->ncopies == 0 || !ab_pipeline_partial(arr->unit_pipe, dt))
		return AB_NO_PART;
	int nd = arr->m.ndim, rc;
	size_t isz = dt->disk_size, d, unit_bytes;
	const ld_copy *cps = &w->copies[u->copy_first];
	/* the items the bytes decode to: the whole unit, or the blocks read */
	uint64_t unit_items = 1, f0 = 0, fn;
	for (int i = 0; i < nd; i++)
		unit_items *= arr->unit[i];
	fn = unit_items;
	if (u->part)
		ab_blosc_span_items(u->lay, u->b0, u->b1, isz, &f0, &fn);
	uint64_t row_items = 1, lo = UINT64_MAX, hi = 0;
	for (int i = 1; i < nd; i++)
		row_items *= arr->unit[i];
	for (size_t c = 0; c < u->ncopies; c++) {
		lo = cps[c].src_row < lo ? cps[c].src_row : lo;
		hi = cps[c].src_row + cps[c].nrows > hi ? cps[c].src_row + cps[c].nrows : hi;
	}
	if ((rc = ab_chunk_nbytes(nd, arr->unit, dt, &unit_bytes)) ||
	    (rc = ab_buf_reserve(&cx->unit, unit_bytes ? unit_bytes : 1)))
		return rc;
	if (u->part) {
		/* a frame of just the blocks holding the rows: all of it is
		 * decoded, in place in the unit buffer */
		if (f0 > unit_items || fn > unit_items - f0)
			return ab_error_set(AB_ECORRUPT, "blocks %u..%u hold items past the chunk's %llu", u->b0,
					    u->b1, (unsigned long long)unit_items);
		if ((rc = ab_chunk_decode_frame(arr->unit_pipe, dt, bytes, len, fn, cx->unit.data + f0 * isz)))
			return rc;
		d = (size_t)fn * isz;
	} else if ((rc = ab_chunk_decode_part_of(arr->unit_pipe, dt, bytes, len, f0, fn, lo * row_items,
						 (hi - lo) * row_items, cx->unit.data + lo * row_items * isz, &d))) {
		return rc;
	}
	atomic_fetch_add_explicit(&ld->st_bytes_decoded, d, memory_order_relaxed);
	return 0;
}

/* CSR column indices [at, at + n) of the unit buffer (dtype `from`) checked
 * against n_cols and made int32: in place when they are int32 already, else
 * into the worker's conversion buffer. The loops are typed so the compiler
 * vectorises the copy and the bound check (the unsigned compare catches
 * negative values too); the slow loop only runs to name an offending index.
 * Returns 0 with *out set to the int32 indices, or a negative status. */
static int checked_indices(ab_loader *ld, ld_worker_ctx *cx, ab_dtype from, size_t at, size_t n, size_t isz,
			   const int32_t **out)
{
	int rc;
	uint64_t ncols = ld->n_cols, bad = 0;
	const uint8_t *base = cx->unit.data + at * isz;
	if (from == AB_DT_INT32) {
		/* the common case, kept in 32 bits so it vectorises (n_cols <=
		 * INT32_MAX was checked when adding data) */
		const int32_t *src = (const int32_t *)(const void *)base;
		uint32_t lim = (uint32_t)ncols, b32 = 0;
		for (size_t i = 0; i < n; i++)
			b32 |= (uint32_t)src[i] >= lim;
		if (b32 && (rc = bad_index(from, src, n, ncols)))
			return rc;
		*out = src;
		return 0;
	}
	if ((rc = ab_buf_reserve(&cx->conv, n * sizeof(int32_t) + 1)))
		return rc;
	int32_t *dst = (int32_t *)(void *)cx->conv.data;
#define INDEX_COPY(T)                                                   \
	do {                                                            \
		const T *src = (const T *)(const void *)base;           \
		for (size_t i = 0; i < n; i++) {                        \
			bad |= (uint64_t)(int64_t)src[i] >= ncols;      \
			dst[i] = (int32_t)src[i];                       \
		}                                                       \
	} while (0)
	switch (from) {
	case AB_DT_INT64: INDEX_COPY(int64_t); break;
	case AB_DT_UINT16: INDEX_COPY(uint16_t); break;
	case AB_DT_UINT32: INDEX_COPY(uint32_t); break;
	case AB_DT_INT16: INDEX_COPY(int16_t); break;
	case AB_DT_UINT8: INDEX_COPY(uint8_t); break;
	case AB_DT_INT8: INDEX_COPY(int8_t); break;
	case AB_DT_UINT64: INDEX_COPY(uint64_t); break;
	default:
		return ab_error_set(AB_EFORMAT, "CSR indices of dtype %s are not integers", ab_dtype_name(from));
	}
#undef INDEX_COPY
	if (bad && (rc = bad_index(from, base, n, ncols)))
		return rc;
	*out = dst;
	return 0;
}

/* Decodes one unit (or fills it) into the worker's unit buffer and copies
 * its rows to their batches. */
static int decode_unit(ab_loader *ld, ld_window *w, const ld_unit *u, const uint8_t *bytes, size_t len,
		       ld_worker_ctx *cx)
{
	ab_array *arr = u->arr;
	const ab_dtype_desc *dt = &arr->m.dt;
	int nd = arr->m.ndim;
	size_t unit_bytes;
	int staged = 0, rc = 0;
	if (bytes && (u->part || !ld->cfg.whole_chunks)) {
		rc = decode_unit_part(ld, w, u, bytes, len, cx);
		if (rc < 0)
			return rc;
		if (rc == AB_NO_PART && u->part) /* plan_part checked this cannot be */
			return ab_error_set(AB_ECORRUPT, "blocks %u..%u of the chunk cannot be decoded apart", u->b0,
					    u->b1);
		staged = rc == 0;
	}
	if ((rc = ab_chunk_nbytes(nd, arr->unit, dt, &unit_bytes)) ||
	    (rc = ab_buf_reserve(&cx->unit, unit_bytes ? unit_bytes : 1)))
		return rc;
	uint64_t unit_items = unit_bytes / dt->disk_size;
	if (!staged) {
		if (bytes)
			rc = ab_chunk_decode(arr->unit_pipe, dt, arr->unit, bytes, len, arr->m.fill,
					     arr->m.fill_str, cx->unit.data, unit_bytes, &cx->scratch);
		else
			rc = ab_chunk_fill(cx->unit.data, unit_items, dt, arr->m.fill, arr->m.fill_str);
		if (rc)
			return rc;
		atomic_fetch_add_explicit(&ld->st_bytes_decoded, unit_bytes, memory_order_relaxed);
	}
	ab_dtype from = dt->dt;
	size_t sisz = dt->disk_size;
	if (u->stream == STREAM_INDICES) {
		/* CSR column indices: checked against n_cols, stored as int32 */
		for (size_t c = 0; c < u->ncopies; c++) {
			const ld_copy *cp = &w->copies[u->copy_first + c];
			const int32_t *v = NULL;
			if ((rc = checked_indices(ld, cx, from, (size_t)cp->src_row, (size_t)cp->nrows, sisz, &v)))
				return rc;
			scatter_items(ld, w, STREAM_INDICES, cp->dst_row, AB_DT_INT32, v, cp->nrows);
		}
		return 0;
	}
	if (nd == 1) {
		for (size_t c = 0; c < u->ncopies; c++) {
			const ld_copy *cp = &w->copies[u->copy_first + c];
			scatter_items(ld, w, STREAM_VALUES, cp->dst_row, from, cx->unit.data + cp->src_row * sisz,
				      cp->nrows);
		}
		return 0;
	}
	/* N-d: convert the unit if needed, then copy each row's box. */
	ab_dtype to = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	const uint8_t *src = cx->unit.data;
	if (to != from) {
		if ((rc = ab_buf_reserve(&cx->conv, (size_t)unit_items * ld->out_isz)))
			return rc;
		ab_convert(to, cx->conv.data, from, cx->unit.data, (size_t)unit_items);
		src = cx->conv.data;
	}
	uint64_t col_off[AB_MAX_NDIM] = { 0 }, cnt[AB_MAX_NDIM] = { 0 };
	for (int i = 1; i < nd; i++) {
		uint64_t origin = u->coord[i] * arr->unit[i];
		col_off[i] = origin;
		cnt[i] = origin + arr->unit[i] <= arr->m.shape[i] ? arr->unit[i] : arr->m.shape[i] - origin;
	}
	for (size_t c = 0; c < u->ncopies; c++) {
		const ld_copy *cp = &w->copies[u->copy_first + c];
		scatter_box(ld, w, nd, src, arr->unit, cp->src_row, cp->dst_row, cp->nrows, col_off, cnt);
	}
	return 0;
}

/* A worker's task: decode every unit of one read (read == NULL: the window's
 * units that are absent and need no read). */
static void run_task(ab_loader *ld, ld_read *r, ld_window *w, ld_worker_ctx *cx)
{
	if (atomic_load(&ld->error) == 0 && !atomic_load(&ld->stop)) {
		int rc = 0;
		if (r) {
			for (size_t k = 0; k < r->nunits && rc == 0; k++) {
				const ld_unit *u = &w->units[r->unit_first + k];
				uint8_t *bytes = (uint8_t *)r->req.buf + u->read_off;
				size_t len = (size_t)u->length;
				if (u->part) {
					/* the blocks' bytes become a frame of their own */
					bytes -= u->hdr;
					len = ab_blosc_subframe_header(u->lay, u->b0, u->b1, bytes);
				} else if (array_partial(ld, u->arr)) {
					layout_learn(ld, u->arr, u->lin, bytes, len, len);
				}
				rc = decode_unit(ld, w, u, bytes, len, cx);
				if (rc) {
					char where[1024];
					unit_where(u, where, sizeof where);
					ab_error_prefix(rc, "%s: ", where);
				}
			}
		} else {
			for (size_t k = 0; k < w->nunits && rc == 0; k++)
				if (!w->units[k].present && (rc = decode_unit(ld, w, &w->units[k], NULL, 0, cx))) {
					char where[1024];
					unit_where(&w->units[k], where, sizeof where);
					ab_error_prefix(rc, "%s: ", where);
				}
		}
		if (rc)
			post_window_error(ld, w->gen, rc, ab_last_error());
	}
	scatter_fence();
	if (r && r->own_fd && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (atomic_fetch_sub(&w->tasks_left, 1) == 1)
		window_complete(ld, w);
}

/* A worker's prefault task: the window's fresh batch buffers, written by
 * its decode tasks, faulted in at once (see populate()). */
static void prefault_task(ab_loader *ld, ld_window *w)
{
	if (atomic_load(&ld->error) == 0 && !atomic_load(&ld->stop))
		prefault_batches(ld, w);
	if (atomic_fetch_sub(&w->tasks_left, 1) == 1)
		window_complete(ld, w);
}

void *worker_main(void *arg)
{
	ab_loader *ld = arg;
	ld_worker_ctx cx = { 0 };
	pthread_mutex_lock(&ld->mu);
	for (;;) {
		while (!ld->task_head && !ld->workers_quit)
			pthread_cond_wait(&ld->task_cv, &ld->mu);
		if (!ld->task_head)
			break;
		ld_task *t = ld->task_head;
		ld->task_head = t->next;
		if (!ld->task_head)
			ld->task_tail = NULL;
		ld->tasks_busy++;
		pthread_mutex_unlock(&ld->mu);
		if (t->prefault)
			prefault_task(ld, t->win);
		else if (t->assemble)
			assemble_task(ld, t);
		else
			run_task(ld, t->read, t->win, &cx);
		pthread_mutex_lock(&ld->mu);
		/* A stop waits for the workers to run out of tasks. */
		if (--ld->tasks_busy == 0 && !ld->task_head)
			pthread_cond_broadcast(&ld->idle_cv);
	}
	pthread_mutex_unlock(&ld->mu);
	ab_scratch_free(&cx.scratch);
	ab_buf_free(&cx.unit);
	ab_buf_free(&cx.conv);
	return NULL;
}

