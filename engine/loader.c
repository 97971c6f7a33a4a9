/* loader.c - the batch loader's API and epochs: create, configure, start,
 * next, stop, destroy. The stages live beside it (sources.c, files.c,
 * plan.c, decode.c, assemble.c, event_loop.c); loader_impl.h shows the path
 * a batch takes. */
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

/* ------------------------------------------------------------ config */

void ab_loader_config_init(ab_loader_config *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof *c);
	c->chunk_size = 512;
	c->preload_nchunks = 32;
	c->batch_size = 1;
	c->rank = -1;
	c->world_size = -1;
	c->io_mode = AB_IO_MODE_DIRECT; /* falls back to buffered where refused */
	c->backend = AB_BACKEND_AUTO;
	c->queue_depth = 64;
	c->threads = 0;
	c->max_windows = 3;
}

int ab_loader_create(const ab_loader_config *cfg, ab_loader **out)
{
	if (!out)
		return ab_error_set(AB_EINVAL, "ab_loader_create: null argument");
	*out = NULL;
	/* An enum field holds whatever int the caller stored: refuse what is
	 * not one of its values rather than run some other mode. */
	if (cfg && (cfg->io_mode < AB_IO_MODE_AUTO || cfg->io_mode > AB_IO_MODE_BUFFERED))
		return ab_error_set(AB_EINVAL, "ab_loader_create: io_mode %d is not an ab_io_mode (0..%d)",
				    (int)cfg->io_mode, (int)AB_IO_MODE_BUFFERED);
	if (cfg && (cfg->backend < AB_BACKEND_AUTO || cfg->backend > AB_BACKEND_PREAD))
		return ab_error_set(AB_EINVAL, "ab_loader_create: backend %d is not an ab_io_backend (0..%d)",
				    (int)cfg->backend, (int)AB_BACKEND_PREAD);
	/* -1 asks for the environment; any other negative value is a bug in
	 * the caller, not a request to read the environment. */
	if (cfg && (cfg->rank < -1 || cfg->world_size < -1))
		return ab_error_set(AB_EINVAL, "%s (%d) must be >= 0, or -1 for the environment",
				    cfg->rank < -1 ? "rank" : "world_size", cfg->rank < -1 ? cfg->rank : cfg->world_size);
	if (cfg && cfg->rank_shards != AB_RANK_SHARDS_FIXED && cfg->rank_shards != AB_RANK_SHARDS_ROTATE)
		return ab_error_set(AB_EINVAL, "rank_shards (%d) must be AB_RANK_SHARDS_FIXED or AB_RANK_SHARDS_ROTATE",
				    (int)cfg->rank_shards);
	ab_loader *ld = calloc(1, sizeof *ld);
	if (!ld)
		return ab_error_set(AB_ENOMEM, "out of memory");
	if (cfg)
		ld->cfg = *cfg;
	else
		ab_loader_config_init(&ld->cfg);
	if (ld->cfg.queue_depth == 0)
		ld->cfg.queue_depth = 64;
	if (ld->cfg.max_windows == 0)
		ld->cfg.max_windows = 3;
	if (ld->cfg.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ld->cfg.threads = n > 0 ? (unsigned)n : 1;
	}
	if (ld->cfg.threads > 256)
		ld->cfg.threads = 256;
	ld->indptr32_max = INT32_MAX;
	pthread_mutex_init(&ld->mu, NULL);
	pthread_mutex_init(&ld->lay_mu, NULL);
	pthread_cond_init(&ld->cv, NULL);
	pthread_cond_init(&ld->task_cv, NULL);
	pthread_cond_init(&ld->idle_cv, NULL);
	ab_hist_reset(&ld->read_lat);
	ab_hist_reset(&ld->wait_lat);
	ab_hist_reset(&ld->first_lat);
	*out = ld;
	return 0;
}

/* ------------------------------------------------------------ sampler */

/* The sampler configuration of `epoch` (loading the class column the first
 * time). Zeroed whole first: two configurations compare with memcmp. */
int sampler_config(ab_loader *ld, uint64_t epoch, ab_sampler_config *out)
{
	if (ld->nsrc == 0)
		return ab_error_set(AB_EINVAL, "the loader has no data: add a store first");
	ab_sampler_config sc;
	memset(&sc, 0, sizeof sc);
	const ab_loader_config *c = &ld->cfg;
	sc.chunk_size = c->chunk_size;
	sc.preload_nchunks = c->preload_nchunks;
	sc.batch_size = c->batch_size;
	sc.shuffle = c->shuffle;
	sc.drop_last = c->drop_last;
	sc.replacement = c->replacement;
	sc.num_samples = c->num_samples;
	sc.mask_start = c->mask_start;
	sc.mask_stop = c->mask_stop;
	sc.seed = c->seed;
	sc.epoch = epoch;
	uint32_t rank = 0, ws = 1;
	if (c->rank < 0 || c->world_size < 0) {
		uint32_t er, ew;
		int found = ab_sampler_rank_from_env(&er, &ew);
		if (found < 0)
			return found;
		if (found) {
			rank = er;
			ws = ew;
		} else if (c->rank < 0 && c->world_size > 1) {
			/* Every process would be rank 0 and read the same share. */
			return ab_error_set(AB_EINVAL, "world_size is %d but no rank is given (rank -1 and no "
					    "RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID in the environment)",
					    c->world_size);
		}
	}
	if (c->rank >= 0)
		rank = (uint32_t)c->rank;
	if (c->world_size >= 0)
		ws = (uint32_t)(c->world_size ? c->world_size : 1);
	sc.rank = rank;
	sc.world_size = ws;
	sc.rank_shards = (int)c->rank_shards;
	if (ld->class_name) {
		if (!ld->class_loaded) {
			int rc = ld_obs_load(ld->src, ld->nsrc, ld->nrows, ld->class_name, &ld->class_col);
			if (rc)
				return rc;
			if (!ld->class_col.categorical)
				rc = ab_error_set(AB_EINVAL, "class column '%s' must be categorical (or strings)",
						  ld->class_name);
			else if (ld->class_wl.n || ld->class_wl.has_rest) {
				free(ld->class_w);
				ld->class_w = NULL;
				rc = ld_obs_weights_by_label(&ld->class_col, &ld->class_wl, &ld->class_w);
				ld->n_class_w = rc ? 0 : ld->class_col.labels.n;
			} else if (ld->class_w && ld->n_class_w != ld->class_col.labels.n)
				rc = ab_error_set(AB_EINVAL, "%zu class weights given for %zu classes of '%s'",
						  ld->n_class_w, ld->class_col.labels.n, ld->class_name);
			if (rc) {
				ld_obs_free(&ld->class_col);
				return rc;
			}
			ld->class_loaded = 1;
		}
		if (ld->class_rows && ld->class_rows != ld->nrows)
			return ab_error_set(AB_EINVAL,
					    "the classes given from memory have %" PRIu64 " rows, the loader %" PRIu64
					    ": one class code a row",
					    ld->class_rows, ld->nrows);
		sc.classes = ld->class_col.codes;
		sc.n_classes = (uint32_t)ld->class_col.labels.n;
		sc.class_weights = ld->class_w;
		sc.class_labels = (const char *const *)ld->class_col.labels.names;
	}
	*out = sc;
	return 0;
}

static int make_sampler(ab_loader *ld, uint64_t epoch, ab_sampler **out)
{
	ab_sampler_config sc;
	int rc = sampler_config(ld, epoch, &sc);
	return rc ? rc : ab_sampler_create(&sc, ld->nrows, out);
}

/* Resume: the window holding batch start_batch of the epoch, and the batches
 * of it to skip (past the end: *window = nwindows). */
int first_position(const ab_sampler *s, uint64_t start_batch, size_t *window, size_t *skip)
{
	size_t nw = ab_sampler_nwindows(s);
	*window = 0;
	*skip = 0;
	while (start_batch && *window < nw) {
		ab_window w;
		int rc = ab_sampler_window(s, *window, &w);
		if (rc)
			return rc;
		size_t nb = w.nbatches;
		ab_window_free(&w);
		if (start_batch < nb) {
			*skip = (size_t)start_batch;
			break;
		}
		start_batch -= nb;
		(*window)++;
	}
	return 0;
}

int ab_loader_nbatches(ab_loader *ld, uint64_t *n)
{
	if (!ld || !n)
		return ab_error_set(AB_EINVAL, "ab_loader_nbatches: null argument");
	ab_sampler *s;
	int rc = make_sampler(ld, 0, &s);
	if (rc)
		return rc;
	*n = ab_sampler_nbatches(s);
	ab_sampler_destroy(s);
	return 0;
}

/* ------------------------------------------------------------ errors */

/* Records the first failure; every thread then winds down. The ring is
 * closed under the lock, so that it cannot close an epoch that a start
 * adopted meanwhile (epoch.c). */
void post_error_locked(ab_loader *ld, int code, const char *msg)
{
	if (atomic_load(&ld->error) == 0) {
		snprintf(ld->errmsg, sizeof ld->errmsg, "%s", msg);
		atomic_store(&ld->error, code);
	}
	pthread_cond_broadcast(&ld->cv);
	if (ld->ring)
		ab_ring_close(ld->ring);
}

void post_error(ab_loader *ld, int code, const char *msg)
{
	pthread_mutex_lock(&ld->mu);
	post_error_locked(ld, code, msg);
	pthread_mutex_unlock(&ld->mu);
}

/* Every window's batches handed out and none of those windows released: no
 * batch can come until a consumer releases one. Under ld->mu. */
static int stalled_locked(const ab_loader *ld)
{
	return ld->held_windows >= ld->cfg.max_windows;
}

/* A batch leaves the ring: when it is the last of its window, the window is
 * held wholly by consumers (counted until its last batch is released). */
static void note_handed(ab_loader *ld, ab_batch *b)
{
	ld_window *w = b->win;
	if (atomic_fetch_add(&w->handed, 1) + 1 != w->published)
		return;
	pthread_mutex_lock(&ld->mu);
	if (w->gen == ld->gen) {
		atomic_store(&w->held, 1);
		if (++ld->held_windows == ld->cfg.max_windows)
			ld->stalled_at = ab_now_ns(); /* from now on nothing can come */
	}
	pthread_mutex_unlock(&ld->mu);
}

/* How often a waiting consumer looks for a stall, and the stall time by
 * default. */
#define STALL_POLL_NS 50000000u
#define STALL_DEFAULT_MS 10000u

int ab_loader_next_timed(ab_loader *ld, ab_batch **batch, int64_t timeout_ms)
{
	if (!ld || !batch)
		return ab_error_set(AB_EINVAL, "ab_loader_next: null argument");
	*batch = NULL;
	if (!atomic_load(&ld->running))
		return ld->gen ? AB_END /* stopped */
			       : ab_error_set(AB_EINVAL, "no epoch running: call ab_loader_start first");
	uint64_t t0 = ab_now_ns();
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : ab_ring_deadline((uint64_t)timeout_ms * 1000000u);
	uint64_t stall_ns = (uint64_t)(ld->cfg.stall_ms ? ld->cfg.stall_ms : STALL_DEFAULT_MS) * 1000000u;
	void *item;
	int r = ab_ring_pop(ld->ring, &item);
	while (r != 0) {
		if (atomic_load(&ld->error) != 0) {
			r = 1;
			break;
		}
		/* Sleep in slices: between them, look for a stall and the
		 * caller's deadline. */
		uint64_t slice = ab_ring_deadline(STALL_POLL_NS);
		r = ab_ring_pop_wait_until(ld->ring, &item, slice < deadline ? slice : deadline);
		if (r != 2)
			break;
		/* The stall's start is the loader's, not this call's: a caller
		 * that waits in short timed calls sees it as one long wait. */
		pthread_mutex_lock(&ld->mu);
		int stalled = stalled_locked(ld);
		unsigned held = ld->held_windows;
		uint64_t since = ld->stalled_at;
		pthread_mutex_unlock(&ld->mu);
		if (stalled && since && ab_now_ns() - since >= stall_ns)
			return ab_error_set(AB_ESTALL,
					    "stalled: the consumers hold batches of all %u windows (max_windows %u) and "
					    "released none for %llu ms, so no batch can be made: release batches sooner "
					    "(keep fewer, or copy what you keep; in Python: copy=True), or raise max_windows",
					    held, ld->cfg.max_windows, (unsigned long long)(stall_ns / 1000000u));
		if (deadline != UINT64_MAX && ab_ring_deadline(0) >= deadline)
			return AB_TIMEOUT;
	}
	/* A batch of the first window cannot be ready before it is asked for
	 * (the loader starts with ab_loader_start): its wait is the time to
	 * the first batch, kept apart from the steady-state waits. */
	uint64_t waited = ab_now_ns() - t0;
	if (r == 0 && ((ab_batch *)item)->win->w.index == ld->first_window)
		ab_hist_record(&ld->first_lat, waited);
	else
		ab_hist_record(&ld->wait_lat, waited);
	if (r == 0)
		note_handed(ld, item);
	int err = atomic_load(&ld->error);
	if (err) {
		if (r == 0)
			ab_batch_release(item);
		pthread_mutex_lock(&ld->mu);
		ab_error_set(err, "%s", ld->errmsg);
		pthread_mutex_unlock(&ld->mu);
		return err;
	}
	if (r != 0)
		return AB_END;
	*batch = item;
	return 0;
}

int ab_loader_next(ab_loader *ld, ab_batch **batch)
{
	return ab_loader_next_timed(ld, batch, -1);
}

void ab_batch_release(ab_batch *b)
{
	if (!b)
		return;
	ab_loader *ld = b->ld;
	ld_window *w = b->win;
	b->win = NULL;
	batch_recycle(ld, b);
	if (w)
		release_window_ref(ld, w);
}

int ab_batch_get_view(const ab_batch *b, ab_batch_view *v)
{
	if (!b || !v)
		return ab_error_set(AB_EINVAL, "ab_batch_get_view: null argument");
	const ab_loader *ld = b->ld;
	memset(v, 0, sizeof *v);
	v->epoch = b->epoch;
	v->index = b->index;
	v->nrows = b->nrows;
	v->dtype = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	v->sparse = ld->sparse;
	v->rows = b->rows;
	v->n_obs = ld->n_obs_names;
	v->obs = b->obs;
	if (ld->sparse) {
		if (ld->cfg.indptr_int32)
			v->indptr32 = b->indptr;
		else
			v->indptr = b->indptr;
		v->indices = b->indices;
		v->values = b->data;
		v->nnz = b->nnz;
		v->n_cols = ld->n_cols;
		v->indices_sorted = b->indices_sorted;
	} else {
		v->data = b->data;
		v->row_items = ld->row_items;
	}
	return 0;
}

void ab_loader_reset_stats(ab_loader *ld)
{
	if (!ld)
		return;
	atomic_store(&ld->st_rows, 0);
	atomic_store(&ld->st_batches, 0);
	atomic_store(&ld->st_bytes_read, 0);
	atomic_store(&ld->st_bytes_decoded, 0);
	atomic_store(&ld->st_reads, 0);
	ab_hist_reset(&ld->read_lat);
	ab_hist_reset(&ld->wait_lat);
	ab_hist_reset(&ld->first_lat);
}

int ab_loader_get_stats(ab_loader *ld, ab_loader_stats *st)
{
	if (!ld || !st)
		return ab_error_set(AB_EINVAL, "ab_loader_get_stats: null argument");
	memset(st, 0, sizeof *st);
	st->rows = atomic_load(&ld->st_rows);
	st->batches = atomic_load(&ld->st_batches);
	st->bytes_read = atomic_load(&ld->st_bytes_read);
	st->bytes_decoded = atomic_load(&ld->st_bytes_decoded);
	st->reads = atomic_load(&ld->st_reads);
	st->reads_in_flight = atomic_load(&ld->st_inflight);
	st->threads = ld->cfg.threads;
	st->registered_buffers = (int)atomic_load(&ld->reg_count);
	st->registered_files = ld->registered_files;
	st->queue_depth = ld->cfg.queue_depth;
	const double q[4] = { 0.5, 0.9, 0.99, 0.999 };
	for (int i = 0; i < 4; i++)
		st->read_lat_us[i] = ab_hist_quantile(&ld->read_lat, q[i]) / 1000.0;
	st->wait_us[0] = ab_hist_quantile(&ld->wait_lat, 0.5) / 1000.0;
	st->wait_us[1] = ab_hist_quantile(&ld->wait_lat, 0.99) / 1000.0;
	st->first_wait_us[0] = ab_hist_quantile(&ld->first_lat, 0.5) / 1000.0;
	st->first_wait_us[1] = ab_hist_quantile(&ld->first_lat, 0.999999) / 1000.0;
	snprintf(st->backend, sizeof st->backend, "%s", ld->backend_name[0] ? ld->backend_name : "none");
	snprintf(st->io_mode, sizeof st->io_mode, "%s", ld->direct ? "direct" : "buffered");
	pthread_mutex_lock(&ld->mu);
	snprintf(st->note, sizeof st->note, "%s", ld->note);
	pthread_mutex_unlock(&ld->mu);
	return 0;
}

void ab_loader_destroy(ab_loader *ld)
{
	if (!ld)
		return;
	stop_epoch(ld);
	stop_threads(ld);
	ab_ring_destroy(ld->ring);
	while (ld->free_batches) {
		ab_batch *b = ld->free_batches;
		ld->free_batches = b->next_free;
		free_x(ld, b->data, b->data_cap);
		free_x(ld, b->indptr, b->indptr_cap);
		free_x(ld, b->indices, b->indices_cap);
		free(b->rows);
		free(b->obs_buf);
		free(b->obs);
		free(b);
	}
	while (ld->free_windows) {
		ld_window *w = ld->free_windows;
		ld->free_windows = w->next;
		free(w->copies);
		free(w->asm_tasks);
		free(w->units);
		free(w->reads);
		free(w->arena);
		free(w->rows);
		free(w->dst);
		free(w->batches);
		free(w->indptr);
		free(w);
	}
	free(ld->probe_buf);
	free(ld->probe_reqs);
	free(ld->slot_buf);
	free(ld->slot_len);
	free_obs(ld);
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	free(ld->class_name);
	free(ld->class_w);
	ld_label_weights_free(&ld->class_wl);
	for (size_t i = 0; i < ld->nsrc; i++)
		source_free(&ld->src[i]);
	free(ld->src);
	free(ld->fds);
	pthread_mutex_destroy(&ld->mu);
	for (size_t i = 0; i < ld->lay_cap; i++)
		if (ld->lay_tab[i].lay) {
			ab_blosc_layout_free(ld->lay_tab[i].lay);
			free(ld->lay_tab[i].lay);
		}
	free(ld->lay_tab);
	pthread_mutex_destroy(&ld->lay_mu);
	pthread_cond_destroy(&ld->cv);
	pthread_cond_destroy(&ld->task_cv);
	pthread_cond_destroy(&ld->idle_cv);
	free(ld);
}

