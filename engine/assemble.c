/* assemble.c - a complete window's batches (their X already in place, see
 * scatter.c) are finished and published in window order. */
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

/* ------------------------------------------------------------ batches */

static void publish(ab_loader *ld, ld_window *w);

/* Finishes batch b of a complete window: its X is in place already (the
 * decode wrote each row there); here come its global rows, obs values and
 * CSR indptr. */
static int assemble_batch(ab_loader *ld, ld_window *w, size_t b)
{
	ab_batch *bt = w->batches[b];
	const uint32_t *perm = w->w.perm + w->w.batch_off[b];
	uint64_t n = w->w.batch_off[b + 1] - w->w.batch_off[b];
	if (ensure((void **)&bt->rows, &bt->rows_cap, sizeof(uint64_t) * (n ? n : 1)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (uint64_t j = 0; j < n; j++)
		bt->rows[j] = w->rows[perm[j]];
	if (ld->n_obs_names) {
		/* 8 bytes per row and column covers doubles and int32 codes */
		if (ensure(&bt->obs_buf, &bt->obs_cap, ld->n_obs_names * 8 * (n ? n : 1)))
			return ab_error_set(AB_ENOMEM, "out of memory");
		if (!bt->obs && !(bt->obs = calloc(ld->n_obs_names, sizeof *bt->obs)))
			return ab_error_set(AB_ENOMEM, "out of memory");
		for (size_t c = 0; c < ld->n_obs_names; c++) {
			const ld_obs_col *oc = &ld->obs[c];
			ab_batch_obs *bo = &bt->obs[c];
			uint8_t *base = (uint8_t *)bt->obs_buf + c * 8 * n;
			bo->name = oc->name;
			bo->categorical = oc->categorical;
			bo->labels = (const char *const *)oc->labels.names;
			bo->n_labels = oc->labels.n;
			if (oc->categorical) {
				int32_t *codes = (int32_t *)(void *)base;
				for (uint64_t j = 0; j < n; j++)
					codes[j] = oc->codes[bt->rows[j]];
				bo->codes = codes;
				bo->values = NULL;
			} else {
				double *vals = (double *)(void *)base;
				for (uint64_t j = 0; j < n; j++)
					vals[j] = oc->values[bt->rows[j]];
				bo->values = vals;
				bo->codes = NULL;
			}
		}
	}
	if (!ld->sparse)
		return 0;
	/* the nnz was checked to fit an int32 indptr when the batch was placed */
	int i32 = ld->cfg.indptr_int32;
	int64_t *ip64 = i32 ? NULL : bt->indptr;
	int32_t *ip32 = i32 ? bt->indptr : NULL;
	uint64_t at = 0;
	if (i32)
		ip32[0] = 0;
	else
		ip64[0] = 0;
	for (uint64_t j = 0; j < n; j++) {
		at += (uint64_t)(w->indptr[perm[j] + 1] - w->indptr[perm[j]]);
		if (i32)
			ip32[j + 1] = (int32_t)at;
		else
			ip64[j + 1] = (int64_t)at;
	}
	/* strictly increasing within every row (what torch's CSR tensors
	 * require, so a consumer can skip checking it again): checked by the
	 * decode workers and check_seams */
	bt->indices_sorted = !atomic_load_explicit(&bt->unsorted, memory_order_relaxed);
	return 0;
}

/* The last batch of a window assembled: publish it, or, if a batch failed
 * (the error is posted), give the batches back. */
static void assembled(ab_loader *ld, ld_window *w)
{
	if (atomic_load(&w->asm_failed)) {
		window_drop_batches(ld, w);
		release_window_ref(ld, w);
		return;
	}
	/* From here the batches are handed on (and given back one by one). */
	w->own_batches = 0;
	/* Batches before a checkpoint's position are not handed out. */
	size_t skip = w->skip < w->nbatches ? w->skip : w->nbatches;
	for (size_t b = 0; b < skip; b++) {
		w->batches[b]->win = NULL;
		batch_recycle(ld, w->batches[b]);
	}
	atomic_fetch_add(&w->refs, (unsigned)(w->nbatches - skip));
	w->published = w->nbatches - skip;
	atomic_store(&w->handed, 0);
	atomic_store(&w->held, 0);
	publish(ld, w);
	release_window_ref(ld, w); /* the assembly reference */
}

/* A worker's assembly task: batch t->batch of t->win. */
void assemble_task(ab_loader *ld, ld_task *t)
{
	ld_window *w = t->win;
	int rc = assemble_batch(ld, w, t->batch);
	if (rc && !atomic_exchange(&w->asm_failed, 1))
		post_window_error(ld, w->gen, rc, ab_last_error());
	if (atomic_fetch_sub(&w->asm_left, 1) == 1)
		assembled(ld, w);
}

void release_window_ref(ab_loader *ld, ld_window *w)
{
	if (atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	uint64_t gen = w->gen;
	int held = atomic_exchange(&w->held, 0);
	window_put(ld, w);
	pthread_mutex_lock(&ld->mu);
	if (gen == ld->gen) { /* a window of an earlier epoch gives no credit now */
		ld->credits++;
		if (held && ld->held_windows-- == ld->cfg.max_windows)
			ld->stalled_at = 0;
	}
	pthread_cond_broadcast(&ld->cv);
	pthread_mutex_unlock(&ld->mu);
}

/* Pushes the parked windows that are next in order into the ring and
 * numbers their batches. Returns 1 when the current epoch is all out. Under
 * ld->mu. */
int publish_parked_locked(ab_loader *ld)
{
	while (ld->parked && ld->parked->w.index == ld->next_publish) {
		ld_window *p = ld->parked;
		ld->parked = p->next;
		ld->next_publish++;
		for (size_t b = p->skip; b < p->nbatches; b++) {
			ab_batch *bt = p->batches[b];
			bt->index = ld->cfg.start_batch + (uint64_t)atomic_fetch_add(&ld->st_epoch_batches, 1);
			atomic_fetch_add_explicit(&ld->st_batches, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&ld->st_rows, bt->nrows, memory_order_relaxed);
			/* The ring holds max_windows windows of batches: never full. */
			if (ab_ring_push(ld->ring, bt) != 0)
				abort();
		}
	}
	return ld->next_publish == ld->nwindows;
}

/* Batches are published in window order: a window finished early waits in the
 * parked list until the ones before it are out. Batch numbers are given here.
 * A window of the next epoch, read ahead, waits in spec_parked for the start
 * of its epoch (epoch.c); one of no epoch (read ahead, then dropped) gives
 * its batches back. */
static void publish(ab_loader *ld, ld_window *w)
{
	pthread_mutex_lock(&ld->mu);
	ld_window **pp;
	if (w->gen == ld->gen)
		pp = &ld->parked;
	else if (ld->spec_state == SPEC_ACTIVE && w->gen == ld->spec.gen)
		pp = &ld->spec_parked;
	else
		pp = NULL;
	if (!pp) {
		pthread_mutex_unlock(&ld->mu);
		for (size_t b = w->skip; b < w->nbatches; b++)
			ab_batch_release(w->batches[b]);
		return;
	}
	/* insert sorted by index */
	while (*pp && (*pp)->w.index < w->w.index)
		pp = &(*pp)->next;
	w->next = *pp;
	*pp = w;
	/* A window of the current epoch is out: the windows after the first
	 * may be read (event_loop.c). */
	if (w->gen == ld->gen && atomic_exchange(&ld->first_hold, 0))
		pthread_cond_broadcast(&ld->cv);
	/* The ring is closed under the lock: a start adopting the next epoch
	 * reopens it under the same lock, after this. */
	if (w->gen == ld->gen && publish_parked_locked(ld))
		ab_ring_close(ld->ring);
	pthread_mutex_unlock(&ld->mu);
}

void batch_recycle(ab_loader *ld, ab_batch *b)
{
	pthread_mutex_lock(&ld->mu);
	b->next_free = ld->free_batches;
	ld->free_batches = b;
	pthread_mutex_unlock(&ld->mu);
}

void window_complete(ab_loader *ld, ld_window *w)
{
	if (atomic_load(&ld->error) || atomic_load(&ld->stop) || window_dead(ld, w)) {
		release_window_ref(ld, w);
		return;
	}
	size_t nb = w->nbatches; /* taken and placed when it was planned */
	check_seams(ld, w);
	if (nb == 0) {
		atomic_store(&w->asm_failed, 0);
		assembled(ld, w);
		return;
	}
	/* The batches are cut in parallel: every batch but the first goes to
	 * the workers, at the head of their queue (this window is the one the
	 * consumers wait for, before any decoding of later ones); this thread
	 * cuts the first. The last to finish publishes the window. */
	atomic_store(&w->asm_failed, 0);
	atomic_store(&w->asm_left, nb);
	for (size_t b = nb; b-- > 1;) {
		ld_task *t = &w->asm_tasks[b];
		t->read = NULL;
		t->win = w;
		t->batch = b;
		t->assemble = 1;
		t->prefault = 0;
		queue_task(ld, t, 1);
	}
	ld_task first = { .win = w, .batch = 0, .assemble = 1 };
	assemble_task(ld, &first);
}
