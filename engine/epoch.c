/* epoch.c - epochs: ab_loader_start and ab_loader_stop.
 *
 * What does not depend on the epoch lives from the first start to
 * ab_loader_destroy: the event-loop thread and the decode workers, the I/O
 * backend (the io_uring ring with its registered buffers and file table),
 * the open data files, the windows and the batches. A start that follows a
 * finished epoch therefore only hands the threads a new sampler.
 *
 * And it usually finds its first windows read already: once every window of
 * the current epoch is planned, the event loop plans the next epoch's
 * (epoch + 1, the same sampler configuration) with the credits the current
 * one gives back, decodes and assembles them, and parks them unpublished.
 * ab_loader_start(epoch + 1) adopts them: their batches go to the ring at
 * once. Any other start, a stop, or an error in a window read ahead drops
 * them; the epoch is then read as if nothing had been read ahead (an error
 * comes back in the epoch it belongs to). The memory bound is unchanged:
 * windows read ahead hold credits like any other. */
#include "loader_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "last_error.h"

/* ------------------------------------------------------------ windows */

/* A failure in a window of epoch `gen`: the current epoch's fails the epoch;
 * one of the next epoch, read ahead, only ends the reading ahead. */
void post_window_error(ab_loader *ld, uint64_t gen, int code, const char *msg)
{
	pthread_mutex_lock(&ld->mu);
	if (gen != ld->gen) {
		if (ld->spec_state == SPEC_ACTIVE && gen == ld->spec.gen)
			ld->spec_state = SPEC_FAILED;
		pthread_cond_broadcast(&ld->cv);
		pthread_mutex_unlock(&ld->mu);
		return;
	}
	/* Checked and posted under one lock: an epoch adopted in between
	 * must not inherit the error. */
	post_error_locked(ld, code, msg);
	pthread_mutex_unlock(&ld->mu);
}

/* Whether nobody will take the window's batches: it belongs neither to the
 * current epoch nor to a next epoch still read ahead. */
int window_dead(ab_loader *ld, const ld_window *w)
{
	pthread_mutex_lock(&ld->mu);
	int dead = w->gen != ld->gen && !(ld->spec_state == SPEC_ACTIVE && w->gen == ld->spec.gen);
	pthread_mutex_unlock(&ld->mu);
	return dead;
}

/* The event loop has planned every window of the current epoch `ep`: it
 * may go on with the next epoch. Returns 1 with *ep set to it. */
int spec_begin(ab_loader *ld, ld_epoch *ep)
{
	pthread_mutex_lock(&ld->mu);
	int go = ld->spec_allowed && ld->spec_state == SPEC_NONE && ep->gen == ld->gen && !atomic_load(&ld->stop) &&
		 !atomic_load(&ld->error);
	ab_sampler_config sc = ld->spec_sc;
	pthread_mutex_unlock(&ld->mu);
	if (!go)
		return 0;
	ab_sampler *s = NULL;
	size_t fw = 0, fs = 0;
	int rc = ab_sampler_create(&sc, ld->nrows, &s);
	if (rc == 0)
		rc = first_position(s, ld->cfg.start_batch, &fw, &fs);
	pthread_mutex_lock(&ld->mu);
	if (rc)
		ld->spec_allowed = 0; /* its own start will report the error */
	go = rc == 0 && ld->spec_allowed && ld->spec_state == SPEC_NONE && ep->gen == ld->gen &&
	     !atomic_load(&ld->stop) && !atomic_load(&ld->error);
	if (go) {
		ld->spec = (ld_epoch){ s, sc.epoch, ++ld->gen_seq, ab_sampler_nwindows(s), fw, fs };
		ld->spec_state = SPEC_ACTIVE;
		ld->spec_planned = 0;
		*ep = ld->spec;
	}
	pthread_mutex_unlock(&ld->mu);
	if (!go)
		ab_sampler_destroy(s);
	return go;
}

/* Hands back the batches of a list of parked windows. */
static void release_parked(ld_window *w)
{
	while (w) {
		ld_window *next = w->next;
		for (size_t b = w->skip; b < w->nbatches; b++)
			ab_batch_release(w->batches[b]);
		w = next;
	}
}

/* ------------------------------------------------------------ stopping */

/* Ends the running epoch (and the next one read ahead): the event loop
 * finishes the reads in flight and falls idle, the workers run out of
 * tasks, batches not handed out go back. The threads stay. */
void stop_epoch(ab_loader *ld)
{
	if (!ld->running)
		return;
	atomic_store(&ld->stop, 1);
	/* Consumers asleep in ab_loader_next wake up and see the end. */
	ab_ring_close(ld->ring);
	pthread_mutex_lock(&ld->mu);
	pthread_cond_broadcast(&ld->cv);
	while (ld->io_busy || ld->task_head || ld->tasks_busy)
		pthread_cond_wait(&ld->idle_cv, &ld->mu);
	ld_window *parked = ld->parked, *spec = ld->spec_parked;
	ld->parked = ld->spec_parked = NULL;
	ab_sampler *s = ld->spec_state != SPEC_NONE ? ld->spec.sampler : NULL;
	ld->spec_state = SPEC_NONE;
	memset(&ld->spec, 0, sizeof ld->spec);
	pthread_mutex_unlock(&ld->mu);
	/* Batches never handed out go back (their windows with them). */
	void *item;
	while (ab_ring_pop(ld->ring, &item) == 0)
		ab_batch_release(item);
	release_parked(parked);
	release_parked(spec);
	ab_sampler_destroy(s);
	ab_sampler_destroy(ld->sampler);
	ld->sampler = NULL;
	atomic_store(&ld->running, 0);
}

/* Ends the threads and the backend (ab_loader_destroy, after stop_epoch). */
void stop_threads(ab_loader *ld)
{
	if (ld->threads_up) {
		pthread_mutex_lock(&ld->mu);
		ld->io_quit = 1;
		ld->workers_quit = 1;
		pthread_cond_broadcast(&ld->cv);
		pthread_cond_broadcast(&ld->task_cv);
		pthread_mutex_unlock(&ld->mu);
		pthread_join(ld->io_thread, NULL);
		for (unsigned i = 0; i < ld->nworkers; i++)
			pthread_join(ld->workers[i], NULL);
		free(ld->workers);
		ld->workers = NULL;
		ld->nworkers = 0;
		ld->threads_up = 0;
	}
	ab_io_destroy(ld->io);
	ld->io = NULL;
	fd_close_all(ld);
}

/* ------------------------------------------------------------ starting */

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Bytes of the files behind the loader's arrays (for the auto I/O mode). */
static uint64_t data_bytes(ab_loader *ld)
{
	uint64_t total = 0;
	for (size_t i = 0; i < ld->nsrc; i++) {
		const ld_source *s = &ld->src[i];
		if (s->kind == SRC_ARRAY) {
			total += s->nrows * ld->row_items * ab_dtype_size(s->dtype);
		} else if (s->kind == SRC_CSR) {
			total += s->csr->nnz * (ab_dtype_size(s->dtype) + ab_dtype_size(s->csr->indices->m.dt.dt));
		}
	}
	return total;
}

/* The I/O backend for an epoch in mode `direct`. The one of the last epoch
 * is kept while what it was made from is the same (the backend asked for,
 * and the AB_IO_FORCE_PREAD and AB_IO_FAULT test hooks), with its
 * registrations and the open files; files opened for the other I/O mode are
 * closed (the event loop registers a fresh file table before its first
 * read). Only while the event loop is idle. */
static int setup_backend(ab_loader *ld, int direct)
{
	int kind = ld->cfg.backend == AB_BACKEND_PREAD ? AB_IO_PREAD : AB_IO_URING;
	const char *fp = getenv("AB_IO_FORCE_PREAD");
	int force = fp && fp[0] && strcmp(fp, "0") != 0;
	const char *fault = getenv("AB_IO_FAULT");
	if (!fault)
		fault = "";
	int same = ld->io && kind == ld->io_kind && force == ld->io_force_pread && strlen(fault) < sizeof ld->io_fault &&
		   strcmp(fault, ld->io_fault) == 0;
	if (same && direct == ld->direct_asked)
		return 0;
	fd_close_all(ld);
	ld->files_tried = 0;
	ld->file_slots = 0;
	ld->direct = direct;
	ld->align = direct ? 0 : 1;
	ld->direct_asked = direct;
	if (same) {
		snprintf(ld->note, sizeof ld->note, "%s", ld->io_why ? ld->io_why : "");
		return 0;
	}
	ab_io_destroy(ld->io);
	ld->io = NULL;
	ld->reg_tried = 0; /* the new backend makes its own buffer table */
	atomic_store(&ld->reg_count, 0);
	ld->note[0] = '\0';
	ab_io_config ic = { 0 };
	ic.kind = kind;
	ic.queue_depth = ld->cfg.queue_depth;
	ic.threads = ld->cfg.threads < 4 ? 4 : ld->cfg.threads;
	const char *why = NULL;
	int rc = ab_io_create(&ic, &ld->io, &why);
	if (rc)
		return rc;
	snprintf(ld->backend_name, sizeof ld->backend_name, "%s", ab_io_name(ld->io));
	if (why && ld->cfg.backend == AB_BACKEND_URING) {
		/* `why` ends in "; using pread pool", which is not what happens
		 * here: the backend asked for is refused. */
		size_t n = strcspn(why, ";");
		rc = ab_error_set(AB_EUNSUPPORTED, "%.*s: the uring backend cannot run (choose the pread "
				  "backend, or the default, which falls back to it)", (int)n, why);
		ab_io_destroy(ld->io);
		ld->io = NULL;
		return rc;
	}
	if (why)
		snprintf(ld->note, sizeof ld->note, "%s", why);
	ld->io_why = why;
	ld->io_kind = kind;
	ld->io_force_pread = force;
	snprintf(ld->io_fault, sizeof ld->io_fault, "%s", fault);
	return 0;
}

/* The event loop and the workers, made at the first start. */
static int start_threads(ab_loader *ld)
{
	if (ld->threads_up)
		return 0;
	ld->workers = calloc(ld->cfg.threads, sizeof *ld->workers);
	if (!ld->workers)
		return ab_error_set(AB_ENOMEM, "out of memory");
	ld->workers_quit = 0;
	ld->io_quit = 0;
	ld->io_go = 0;
	ld->io_busy = 0;
	for (unsigned i = 0; i < ld->cfg.threads; i++) {
		if (pthread_create(&ld->workers[i], NULL, worker_main, ld) != 0)
			break;
		ld->nworkers++;
	}
	if (ld->nworkers == 0 || pthread_create(&ld->io_thread, NULL, io_main, ld) != 0) {
		pthread_mutex_lock(&ld->mu);
		ld->workers_quit = 1;
		pthread_cond_broadcast(&ld->task_cv);
		pthread_mutex_unlock(&ld->mu);
		for (unsigned i = 0; i < ld->nworkers; i++)
			pthread_join(ld->workers[i], NULL);
		free(ld->workers);
		ld->workers = NULL;
		ld->nworkers = 0;
		return ab_error_set(AB_ENOMEM, "cannot start loader threads");
	}
	ld->threads_up = 1;
	return 0;
}

/* Takes over the next epoch read ahead when it is the one asked for: the
 * current epoch published all its batches, nothing failed, and the sampler
 * configuration is the one it was read with. Returns 0 when adopted, 1 when
 * the epoch must be started afresh. */
static int adopt(ab_loader *ld, uint64_t epoch)
{
	pthread_mutex_lock(&ld->mu);
	int maybe = ld->spec_state == SPEC_ACTIVE && ld->spec.epoch == epoch && ld->next_publish >= ld->nwindows;
	pthread_mutex_unlock(&ld->mu);
	if (!maybe || atomic_load(&ld->error) || atomic_load(&ld->stop))
		return 1;
	ab_sampler_config sc;
	if (sampler_config(ld, epoch, &sc) != 0)
		return 1; /* the fresh start reports it */
	/* Batches of the finished epoch that no consumer took go back. */
	void *item;
	while (ab_ring_pop(ld->ring, &item) == 0)
		ab_batch_release(item);
	pthread_mutex_lock(&ld->mu);
	if (ld->spec_state != SPEC_ACTIVE || ld->spec.epoch != epoch || ld->next_publish < ld->nwindows ||
	    atomic_load(&ld->error) || memcmp(&sc, &ld->spec_sc, sizeof sc) != 0) {
		pthread_mutex_unlock(&ld->mu);
		return 1;
	}
	ab_sampler *old = ld->sampler;
	ld->sampler = ld->spec.sampler;
	ld->epoch = epoch;
	ld->gen = ld->spec.gen;
	ld->nwindows = ld->spec.nwindows;
	ld->first_window = ld->spec.first_window;
	ld->first_skip = ld->spec.first_skip;
	/* Windows of the last epoch still held by consumers give no credit
	 * back (their gen is over): the windows read ahead hold the rest. */
	ld->credits = ld->cfg.max_windows > ld->spec_planned ? ld->cfg.max_windows - ld->spec_planned : 0;
	ld->held_windows = 0;
	ld->stalled_at = 0;
	ld->next_publish = ld->first_window;
	atomic_store(&ld->st_epoch_batches, 0);
	ld->parked = ld->spec_parked;
	ld->spec_parked = NULL;
	ld->spec_state = SPEC_NONE;
	memset(&ld->spec, 0, sizeof ld->spec);
	ld->spec_planned = 0;
	ld->spec_sc = sc;
	ld->spec_sc.epoch = epoch + 1;
	ld->spec_allowed = epoch + 1 != 0;
	ab_ring_reopen(ld->ring);
	int done = publish_parked_locked(ld);
	pthread_cond_broadcast(&ld->cv); /* the event loop: credits, and the next epoch */
	pthread_mutex_unlock(&ld->mu);
	if (done)
		ab_ring_close(ld->ring);
	ab_sampler_destroy(old);
	return 0;
}

int ab_loader_start(ab_loader *ld, uint64_t epoch)
{
	if (!ld)
		return ab_error_set(AB_EINVAL, "ab_loader_start: null argument");
	if (ld->running && adopt(ld, epoch) == 0)
		return 0;
	stop_epoch(ld);
	ab_sampler_config sc;
	int rc = sampler_config(ld, epoch, &sc);
	if (rc)
		return rc;
	if ((rc = ab_sampler_create(&sc, ld->nrows, &ld->sampler)))
		return rc;
	if (ld->n_obs_names && !ld->obs) {
		ld->obs = calloc(ld->n_obs_names, sizeof *ld->obs);
		if (!ld->obs) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < ld->n_obs_names; i++) {
			if ((rc = ld_obs_load(ld->src, ld->nsrc, ld->nrows, ld->obs_names[i], &ld->obs[i]))) {
				for (size_t k = 0; k < i; k++)
					ld_obs_free(&ld->obs[k]);
				free(ld->obs);
				ld->obs = NULL;
				goto fail;
			}
		}
	}
	ld->epoch = epoch;
	ld->nwindows = ab_sampler_nwindows(ld->sampler);
	if ((rc = first_position(ld->sampler, ld->cfg.start_batch, &ld->first_window, &ld->first_skip)))
		goto fail;
	/* I/O mode: direct for data much larger than the page cache can hold. */
	int direct = ld->cfg.io_mode == AB_IO_MODE_DIRECT;
	if (ld->cfg.io_mode == AB_IO_MODE_AUTO) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
		direct = ram && data_bytes(ld) > ram / 2;
	}
	if ((rc = setup_backend(ld, direct)))
		goto fail;
	if (!ld->ring) {
		size_t cap = 0;
		ab_window w;
		if (ld->nwindows && (rc = ab_sampler_window(ld->sampler, 0, &w)) == 0) {
			cap = w.nbatches;
			ab_window_free(&w);
		} else if (rc) {
			goto fail;
		}
		cap = (cap ? cap : 1) * ld->cfg.max_windows + 2;
		if (!(ld->ring = ab_ring_create(cap))) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
	} else {
		ab_ring_reopen(ld->ring);
	}
	raise_fd_limit();
	ld->fd_budget = fd_budget(ld->fds_open);
	ld->own_open = 0;
	atomic_store(&ld->stop, 0);
	atomic_store(&ld->error, 0);
	ld->errmsg[0] = '\0';
	if ((rc = start_threads(ld)))
		goto fail;
	pthread_mutex_lock(&ld->mu);
	ld->gen = ++ld->gen_seq;
	ld->credits = ld->cfg.max_windows;
	ld->held_windows = 0;
	ld->stalled_at = 0;
	ld->next_publish = ld->first_window;
	atomic_store(&ld->first_hold, 0);
	ld->task_head = ld->task_tail = NULL;
	atomic_store(&ld->st_epoch_batches, 0);
	ld->spec_state = SPEC_NONE;
	ld->spec_sc = sc;
	ld->spec_sc.epoch = epoch + 1;
	ld->spec_allowed = epoch + 1 != 0;
	atomic_store(&ld->running, 1);
	ld->io_busy = 1;
	ld->io_go = 1;
	pthread_cond_broadcast(&ld->cv);
	pthread_mutex_unlock(&ld->mu);
	if (ld->first_window >= ld->nwindows)
		ab_ring_close(ld->ring);
	return 0;
fail:
	ab_sampler_destroy(ld->sampler);
	ld->sampler = NULL;
	return rc;
}

void ab_loader_stop(ab_loader *ld)
{
	if (ld)
		stop_epoch(ld);
}
