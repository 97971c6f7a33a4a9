/* collection_ahead.c - the run's pieces of X read ahead on worker threads.
 *
 * Reading a piece (decompressing the input's chunks), converting it to the
 * output's var space and dtype, and, for a dataset bound for the scratch
 * file, encoding its rows, are most of a conversion's reading side, and
 * every piece is independent of the others: the pieces are planned before
 * the first is read (run() in collection.c). So c->threads workers take the
 * pieces in order, each into one of a few slots; the calling thread takes
 * them back in the same order (cw_ahead_next) and does what must stay in
 * order: staging, the scratch file's offsets, obs. The output is the same
 * bytes whatever the number of threads: only where a piece is converted
 * changes, not what it becomes.
 *
 * Readers: a worker reads a zarr input through a handle of its own
 * (ab_anndata_x_reader: the decode buffers and caches are per handle; the
 * csr indptr is shared), opened when first needed and kept for a few
 * inputs. libhdf5 is not thread-safe, so an .h5ad is read through the run's
 * handle with c->h5_lock held, as the calling thread holds it to read obs:
 * one piece is decompressed at a time, but its conversion and encoding,
 * and the other threads' work, go on beside it.
 *
 * Memory: slots of converted pieces (n_slots = workers + 1), each about two
 * pieces of X (the rows as read, as converted, encoded); run() takes it out
 * of what X may hold in memory (c->x_hold).
 *
 * Failures: a piece that fails keeps its error and message in its slot;
 * the caller meets it when it reaches that piece, so the error is the one
 * a single thread would have met first. A stop or an error on the calling
 * side ends the workers after the pieces they are reading.
 */
#include "collection_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "anndata.h"

/* zarr readers a worker keeps open (a few inputs' array handles) */
#define READERS 8

typedef struct slot {
	xblock x;
	int done;                /* the piece is read (or failed) */
	int rc;
	char msg[1024];
} slot;

typedef struct reader {
	uint32_t in;
	ab_anndata *ad;
	uint64_t used;
} reader;

typedef struct worker {
	struct cw_ahead *a;
	pthread_t th;
	int started;
	reader rd[READERS];
	uint64_t clock;
} worker;

struct cw_ahead {
	conv *c;
	const piece *pieces;
	uint64_t n;
	unsigned n_workers, n_slots;
	worker *w;
	slot *slots;             /* piece j in slots[j % n_slots] */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	uint64_t next_job;       /* the next piece a worker takes */
	uint64_t next_out;       /* the next piece the caller takes */
	int quit;
};

void cw_h5_lock(conv *c, const input *in)
{
	if (c->ahead && c->ahead->n_workers && ab_anndata_is_h5ad(in->ad))
		pthread_mutex_lock(&c->h5_lock);
}

void cw_h5_unlock(conv *c, const input *in)
{
	if (c->ahead && c->ahead->n_workers && ab_anndata_is_h5ad(in->ad))
		pthread_mutex_unlock(&c->h5_lock);
}

/* The worker's handle on input i: its own (zarr) or the run's (.h5ad). */
static int worker_reader(worker *w, uint32_t i, ab_anndata **out)
{
	conv *c = w->a->c;
	input *in = &c->in[i];
	if (ab_anndata_is_h5ad(in->ad)) {
		*out = in->ad;
		return 0;
	}
	reader *lru = &w->rd[0];
	for (int k = 0; k < READERS; k++) {
		if (w->rd[k].ad && w->rd[k].in == i) {
			w->rd[k].used = ++w->clock;
			*out = w->rd[k].ad;
			return 0;
		}
		if (!w->rd[k].ad || (lru->ad && w->rd[k].used < lru->used))
			lru = &w->rd[k];
	}
	ab_anndata_close(lru->ad);
	lru->ad = NULL;
	int rc = ab_anndata_x_reader(in->ad, &lru->ad);
	if (rc)
		return cw_fail_lib(c, rc, in->path);
	lru->in = i;
	lru->used = ++w->clock;
	*out = lru->ad;
	return 0;
}

/* Reads, converts and (if asked) encodes piece p into x, with reader ad
 * (NULL: the run's handle, on the calling thread). */
static int make_piece(conv *c, const piece *p, ab_anndata *ad, int locked, xblock *x)
{
	input *in = &c->in[p->b.in];
	if (locked)
		pthread_mutex_lock(&c->h5_lock);
	int rc = cw_read_raw(c, in, ad ? ad : in->ad, &p->b, x);
	if (locked)
		pthread_mutex_unlock(&c->h5_lock);
	if (!rc)
		rc = cw_convert_raw(c, in, &p->b, x);
	if (!rc && p->encode)
		rc = cw_spill_encode(c, x);
	return rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	struct cw_ahead *a = w->a;
	conv *c = a->c;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->quit && (a->next_job >= a->n || a->next_job >= a->next_out + a->n_slots))
			pthread_cond_wait(&a->work, &a->mu);
		if (a->quit)
			break;
		uint64_t j = a->next_job++;
		slot *s = &a->slots[j % a->n_slots];
		pthread_mutex_unlock(&a->mu);
		const piece *p = &a->pieces[j];
		ab_anndata *ad = NULL;
		int rc = worker_reader(w, p->b.in, &ad);
		if (!rc)
			rc = make_piece(c, p, ad, ab_anndata_is_h5ad(c->in[p->b.in].ad), &s->x);
		if (rc)
			snprintf(s->msg, sizeof s->msg, "%s", ab_last_error());
		pthread_mutex_lock(&a->mu);
		s->rc = rc;
		s->done = 1;
		pthread_cond_broadcast(&a->done);
	}
	pthread_mutex_unlock(&a->mu);
	for (int k = 0; k < READERS; k++)
		ab_anndata_close(w->rd[k].ad);
	return NULL;
}

int cw_ahead_start(conv *c, const piece *pieces, uint64_t n)
{
	struct cw_ahead *a = calloc(1, sizeof *a);
	if (!a)
		return cw_oom();
	a->c = c;
	a->pieces = pieces;
	a->n = n;
	a->n_workers = c->threads > 1 ? c->threads : 0;
	a->n_slots = a->n_workers + 1;
	a->slots = calloc(a->n_slots, sizeof *a->slots);
	a->w = calloc(a->n_workers + 1, sizeof *a->w);
	if (!a->slots || !a->w) {
		free(a->slots);
		free(a->w);
		free(a);
		return cw_oom();
	}
	c->ahead = a;
	if (!a->n_workers)
		return 0;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->done, NULL);
	pthread_mutex_init(&c->h5_lock, NULL);
	for (unsigned i = 0; i < a->n_workers; i++) {
		a->w[i].a = a;
		if (pthread_create(&a->w[i].th, NULL, worker_main, &a->w[i]) != 0)
			break; /* fewer workers: still correct */
		a->w[i].started = 1;
	}
	if (!a->w[0].started) {
		/* no thread at all: read on the calling thread */
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->work);
		pthread_cond_destroy(&a->done);
		pthread_mutex_destroy(&c->h5_lock);
		a->n_workers = 0;
	}
	return 0;
}

int cw_ahead_next(conv *c, xblock **x)
{
	struct cw_ahead *a = c->ahead;
	uint64_t j = a->next_out;
	slot *s = &a->slots[j % a->n_slots];
	if (j >= a->n)
		return cw_fail(c, "%s", "internal: no piece left to read", NULL);
	*x = &s->x;
	if (!a->n_workers) {
		int rc = make_piece(c, &a->pieces[j], NULL, 0, &s->x);
		return rc;
	}
	pthread_mutex_lock(&a->mu);
	while (!s->done)
		pthread_cond_wait(&a->done, &a->mu);
	int rc = s->rc;
	pthread_mutex_unlock(&a->mu);
	if (rc)
		ab_error_set(rc, "%s", s->msg);
	return rc;
}

void cw_ahead_release(conv *c)
{
	struct cw_ahead *a = c->ahead;
	if (!a->n_workers) {
		a->next_out++;
		return;
	}
	pthread_mutex_lock(&a->mu);
	slot *s = &a->slots[a->next_out % a->n_slots];
	s->done = 0;
	s->rc = 0;
	a->next_out++;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mu);
}

void cw_ahead_stop(conv *c)
{
	struct cw_ahead *a = c->ahead;
	if (!a)
		return;
	if (a->n_workers) {
		pthread_mutex_lock(&a->mu);
		a->quit = 1;
		pthread_cond_broadcast(&a->work);
		pthread_mutex_unlock(&a->mu);
		for (unsigned i = 0; i < a->n_workers; i++)
			if (a->w[i].started)
				pthread_join(a->w[i].th, NULL);
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->work);
		pthread_cond_destroy(&a->done);
		pthread_mutex_destroy(&c->h5_lock);
	}
	for (unsigned i = 0; i < a->n_slots; i++)
		cw_xblock_free(&a->slots[i].x);
	free(a->slots);
	free(a->w);
	free(a);
	c->ahead = NULL;
}
