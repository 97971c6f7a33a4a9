/* test_loader.c - the loader API: in-memory sources, many consumer threads,
 * several epochs, stop/destroy mid-epoch, resume, dtype promotion. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "annbatch.h"
#include "loader_impl.h"

#define NROWS 1000
#define NCOLS 3

static float dense[NROWS * NCOLS];
static int64_t indptr[NROWS + 1], indices[NROWS * NCOLS];
static double values[NROWS * NCOLS];

static void fill_data(void)
{
	for (int r = 0; r < NROWS; r++)
		for (int c = 0; c < NCOLS; c++)
			dense[r * NCOLS + c] = (float)(r * 10 + c);
	/* CSR: row r holds r % 4 elements (0..3) at columns 0..k-1, value r + c/10 */
	indptr[0] = 0;
	for (int r = 0; r < NROWS; r++) {
		int k = r % 4 < NCOLS ? r % 4 : NCOLS;
		for (int c = 0; c < k; c++) {
			indices[indptr[r] + c] = c;
			values[indptr[r] + c] = r + c / 10.0;
		}
		indptr[r + 1] = indptr[r] + k;
	}
}

/* The loader of most tests: batches of 16, windows of 4 chunks of 32 rows,
 * seed 11, rank 0 of 1; sparse: two in-memory CSR sources, else one dense. */
static void base_config(ab_loader_config *cfg, int shuffle, unsigned threads)
{
	ab_loader_config_init(cfg);
	cfg->batch_size = 16;
	cfg->chunk_size = 32;
	cfg->preload_nchunks = 4;
	cfg->shuffle = shuffle;
	cfg->seed = 11;
	cfg->threads = threads;
	cfg->rank = 0;
	cfg->world_size = 1;
}

static ab_loader *make_loader_cfg(int sparse, const ab_loader_config *cfg)
{
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(cfg, &ld), 0);
	if (sparse) {
		/* two sources: rows [0, 600) and [600, 1000) */
		ck_assert_int_eq(ab_loader_add_csr_memory(ld, indptr, indices, values, AB_DT_FLOAT64, 600, NCOLS), 0);
		/* filled once: a loader made earlier may still read it (it
		 * reads the next epoch ahead after each one) */
		static int64_t ip2[NROWS + 1];
		static int ip2_filled;
		for (int r = 600; r <= NROWS && !ip2_filled; r++)
			ip2[r - 600] = indptr[r] - indptr[600];
		ip2_filled = 1;
		ck_assert_int_eq(ab_loader_add_csr_memory(ld, ip2, indices + indptr[600], values + indptr[600],
							  AB_DT_FLOAT64, 400, NCOLS), 0);
	} else {
		uint64_t shape[2] = { NROWS, NCOLS };
		ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, shape), 0);
	}
	return ld;
}

static ab_loader *make_loader(int sparse, int shuffle, unsigned threads)
{
	ab_loader_config cfg;
	base_config(&cfg, shuffle, threads);
	return make_loader_cfg(sparse, &cfg);
}

/* Checks a batch's values against its row numbers. */
static int batch_ok(const ab_batch_view *v)
{
	for (uint64_t i = 0; i < v->nrows; i++) {
		uint64_t r = v->rows[i];
		if (r >= NROWS)
			return 0;
		if (!v->sparse) {
			const float *d = v->data;
			for (int c = 0; c < NCOLS; c++)
				if (d[i * NCOLS + (uint64_t)c] != (float)(r * 10 + (uint64_t)c))
					return 0;
		} else {
			const double *d = v->values;
			int64_t k = v->indptr[i + 1] - v->indptr[i];
			if (k != indptr[r + 1] - indptr[r])
				return 0;
			for (int64_t j = 0; j < k; j++)
				if (v->indices[v->indptr[i] + j] != j || d[v->indptr[i] + j] != (double)r + (double)j / 10.0)
					return 0;
		}
	}
	return 1;
}

typedef struct {
	ab_loader *ld;
	int seen[NROWS];
	int bad;
	int batches;
} consumer;

static void *consume(void *arg)
{
	consumer *c = arg;
	ab_batch *b;
	int rc;
	while ((rc = ab_loader_next(c->ld, &b)) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		if (!batch_ok(&v))
			c->bad++;
		for (uint64_t i = 0; i < v.nrows; i++)
			c->seen[v.rows[i]]++;
		c->batches++;
		ab_batch_release(b);
	}
	if (rc != AB_END)
		c->bad++;
	return NULL;
}

static void run_consumers(int sparse, unsigned threads, int nconsumers, int epochs)
{
	ab_loader *ld = make_loader(sparse, 1, threads);
	uint64_t nb;
	ck_assert_int_eq(ab_loader_nbatches(ld, &nb), 0);
	ck_assert_uint_eq(nb, (NROWS + 15) / 16);
	for (int e = 0; e < epochs; e++) {
		ck_assert_int_eq(ab_loader_start(ld, (uint64_t)e), 0);
		pthread_t t[16];
		consumer *cs = calloc((size_t)nconsumers, sizeof *cs);
		for (int i = 0; i < nconsumers; i++) {
			cs[i].ld = ld;
			ck_assert_int_eq(pthread_create(&t[i], NULL, consume, &cs[i]), 0);
		}
		int total = 0;
		for (int i = 0; i < nconsumers; i++) {
			pthread_join(t[i], NULL);
			ck_assert_int_eq(cs[i].bad, 0);
			total += cs[i].batches;
		}
		ck_assert_int_eq(total, (int)nb);
		for (int r = 0; r < NROWS; r++) {
			int n = 0;
			for (int i = 0; i < nconsumers; i++)
				n += cs[i].seen[r];
			ck_assert_msg(n == 1, "epoch %d: row %d seen %d times", e, r, n);
		}
		free(cs);
	}
	ab_loader_stats st;
	ck_assert_int_eq(ab_loader_get_stats(ld, &st), 0);
	ck_assert_uint_eq(st.rows, (uint64_t)epochs * NROWS); /* cumulative over epochs */
	ab_loader_destroy(ld);
}

START_TEST(test_dense_8_consumers_5_epochs)
{
	run_consumers(0, 2, 8, 5);
}
END_TEST

START_TEST(test_sparse_8_consumers_5_epochs)
{
	run_consumers(1, 3, 8, 5);
}
END_TEST

/* Collects the sequence of batches of one epoch as row lists. */
static void collect(ab_loader *ld, uint64_t epoch, uint64_t *rows, size_t *n)
{
	ck_assert_int_eq(ab_loader_start(ld, epoch), 0);
	ab_batch *b;
	*n = 0;
	while (ab_loader_next(ld, &b) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		memcpy(rows + *n, v.rows, v.nrows * sizeof *rows);
		*n += v.nrows;
		ab_batch_release(b);
	}
}

START_TEST(test_deterministic_and_epochs_differ)
{
	static uint64_t a[NROWS], b[NROWS], c[NROWS];
	size_t na, nb, nc;
	ab_loader *l1 = make_loader(0, 1, 1), *l2 = make_loader(0, 1, 4);
	collect(l1, 0, a, &na);
	collect(l2, 0, b, &nb);
	collect(l2, 1, c, &nc);
	ck_assert_uint_eq(na, NROWS);
	ck_assert_uint_eq(nb, NROWS);
	ck_assert_mem_eq(a, b, sizeof a);
	ck_assert(memcmp(a, c, sizeof a) != 0);
	ab_loader_destroy(l1);
	ab_loader_destroy(l2);
}
END_TEST

/* Checks one batch: its values against its rows, and its rows against the
 * same batch of a reference run. */
static void check_batch(ab_batch *b, const uint64_t *want_rows)
{
	ab_batch_view v;
	ck_assert_int_eq(ab_batch_get_view(b, &v), 0);
	ck_assert_uint_eq(v.nrows, 16);
	ck_assert_msg(batch_ok(&v), "batch values do not match its rows");
	ck_assert_mem_eq(v.rows, want_rows, 16 * sizeof *want_rows);
}

START_TEST(test_stop_mid_epoch)
{
	/* the batches of epochs 0 and 1, each from a new loader that runs it
	 * whole */
	static uint64_t e0[NROWS], e1[NROWS];
	size_t n0, n1;
	ab_loader *ref = make_loader(1, 1, 2);
	collect(ref, 0, e0, &n0);
	ab_loader_destroy(ref);
	ref = make_loader(1, 1, 2);
	collect(ref, 1, e1, &n1);
	ab_loader_destroy(ref);
	ck_assert_uint_eq(n0, NROWS);
	ck_assert_uint_eq(n1, NROWS);
	ab_loader *ld = make_loader(1, 1, 2);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b, *held;
	ck_assert_int_eq(ab_loader_next(ld, &held), 0);
	check_batch(held, e0);
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	check_batch(b, e0 + 16);
	ab_batch_release(b);
	/* a new epoch while a batch of the old one is still held: the new
	 * epoch starts at its first batch, and the held one keeps its rows
	 * and values */
	ck_assert_int_eq(ab_loader_start(ld, 1), 0);
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	check_batch(b, e1);
	check_batch(held, e0);
	ab_batch_release(held);
	ab_batch_release(b);
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	check_batch(b, e1 + 16);
	ab_batch_release(b);
	ab_loader_destroy(ld); /* mid-epoch */
}
END_TEST

/* A sampler whose rows pass the rows the sources hold (n_obs) is an error of
 * the epoch, not a read past the data: here the loader's row count is made
 * larger than its one source, as a sampler sized for more rows would be. */
START_TEST(test_rows_past_n_obs)
{
	for (int sparse = 0; sparse < 2; sparse++) {
		ab_loader *ld = make_loader(sparse, 0, 2);
		ck_assert_uint_eq(ld->nrows, NROWS);
		ld->nrows = NROWS + 40;
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		ab_batch *b;
		int rc;
		uint64_t next_row = 0;
		while ((rc = ab_loader_next(ld, &b)) == 0) {
			ab_batch_view v;
			ab_batch_get_view(b, &v);
			ck_assert(batch_ok(&v));
			for (uint64_t i = 0; i < v.nrows; i++)
				ck_assert_uint_eq(v.rows[i], next_row++);
			ab_batch_release(b);
		}
		ck_assert_int_eq(rc, AB_ERANGE);
		ck_assert_msg(strstr(ab_last_error(), "planning window 7: the sampler's rows [992, 1024) pass "
					 "the loader's 1000 rows (n_obs)"), "%s", ab_last_error());
		/* windows of 4 x 32 rows: the error of window 7 may come before
		 * every batch of the windows before it was handed over */
		ck_assert_uint_le(next_row, 7 * 128);
		ld->nrows = NROWS;
		ab_loader_destroy(ld);
	}
}
END_TEST

/* A loader over the dense rows with the given sampling and memory settings,
 * rank 0 of 1. */
static ab_loader *dense_loader(uint64_t chunk, uint64_t preload, uint64_t batch, unsigned max_windows,
			       unsigned stall_ms, uint64_t num_samples)
{
	fill_data();
	ab_loader_config cfg;
	ab_loader_config_init(&cfg);
	cfg.chunk_size = chunk;
	cfg.preload_nchunks = preload;
	cfg.batch_size = batch;
	if (max_windows)
		cfg.max_windows = max_windows;
	cfg.stall_ms = stall_ms;
	cfg.num_samples = num_samples;
	cfg.seed = 3;
	cfg.rank = 0;
	cfg.world_size = 1;
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
	uint64_t shape[2] = {NROWS, NCOLS};
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, shape), 0);
	return ld;
}

/* A consumer that keeps every batch: once it holds batches of all
 * max_windows windows nothing more can be made, and after stall_ms it gets
 * AB_ESTALL naming max_windows instead of waiting forever. Releasing a
 * batch ends the stall and the epoch completes, every row once. */
START_TEST(test_stall_reported)
{
	ab_loader *ld = dense_loader(32, 2, 16, 2, 200, 0); /* 4 batches a window */
	uint64_t nb;
	ck_assert_int_eq(ab_loader_nbatches(ld, &nb), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch **held = calloc(nb, sizeof *held);
	size_t nheld = 0;
	int rc;
	/* waiting in short timed calls: the stall is the loader's, so the
	 * calls say AB_TIMEOUT for about stall_ms, then AB_ESTALL */
	int timeouts = 0;
	while ((rc = ab_loader_next_timed(ld, &held[nheld], 20)) == 0 || rc == AB_TIMEOUT) {
		if (rc == 0)
			nheld++;
		else
			timeouts++;
	}
	ck_assert_int_eq(rc, AB_ESTALL);
	ck_assert_int_ge(timeouts, 3);
	ck_assert_int_lt(timeouts, 100);
	/* and the plain call reports it too */
	ck_assert_int_eq(ab_loader_next(ld, &held[nheld]), AB_ESTALL);
	ck_assert_uint_eq(nheld, 8); /* exactly two windows' batches */
	ck_assert_msg(strstr(ab_last_error(), "max_windows 2") != NULL, "message: %s", ab_last_error());
	ab_batch *b = NULL;
	/* give back every batch: the epoch goes on to its end */
	int *seen = calloc(NROWS, sizeof *seen);
	for (size_t i = 0; i < nheld; i++) {
		ab_batch_view v;
		ab_batch_get_view(held[i], &v);
		ck_assert(batch_ok(&v));
		for (uint64_t r = 0; r < v.nrows; r++)
			seen[v.rows[r]]++;
		ab_batch_release(held[i]);
	}
	size_t n = nheld;
	while ((rc = ab_loader_next_timed(ld, &b, 5000)) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		ck_assert(batch_ok(&v));
		for (uint64_t r = 0; r < v.nrows; r++)
			seen[v.rows[r]]++;
		ab_batch_release(b);
		n++;
	}
	ck_assert_int_eq(rc, AB_END);
	ck_assert_uint_eq(n, nb);
	for (int r = 0; r < NROWS; r++)
		ck_assert_msg(seen[r] == 1, "row %d seen %d times", r, seen[r]);
	free(seen);
	free(held);
	ab_loader_destroy(ld);
}
END_TEST

/* Consumers that hold batches a while but release them are no stall, even
 * when together they hold every window for a moment: 4 consumer threads,
 * one window of memory, each holding its batch 30 ms, stall_ms 2000. */
typedef struct {
	ab_loader *ld;
	int batches, bad;
} slow_consumer;

static void *consume_slowly(void *arg)
{
	slow_consumer *c = arg;
	ab_batch *b;
	int rc;
	while ((rc = ab_loader_next(c->ld, &b)) == 0) {
		struct timespec ts = {0, 30 * 1000000};
		nanosleep(&ts, NULL);
		c->batches++;
		ab_batch_release(b);
	}
	if (rc != AB_END)
		c->bad++;
	return NULL;
}

START_TEST(test_no_false_stall)
{
	ab_loader *ld = dense_loader(64, 2, 64, 1, 2000, 0);
	uint64_t nb;
	ck_assert_int_eq(ab_loader_nbatches(ld, &nb), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	pthread_t t[4];
	slow_consumer cs[4] = {{ld, 0, 0}, {ld, 0, 0}, {ld, 0, 0}, {ld, 0, 0}};
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, consume_slowly, &cs[i]), 0);
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(cs[i].bad, 0);
		total += cs[i].batches;
	}
	ck_assert_int_eq(total, (int)nb);
	ab_loader_destroy(ld);
}
END_TEST

/* Classes from memory: every batch from one class, a zero-weight class
 * never drawn; bad codes, a wrong weight count and a wrong row count are
 * refused with a message. */
START_TEST(test_class_codes_from_memory)
{
	ab_loader *ld = dense_loader(16, 4, 16, 0, 0, 480);
	static int32_t codes[NROWS];
	for (int r = 0; r < NROWS; r++)
		codes[r] = r < 300 ? 0 : r < 700 ? 1 : 2; /* grouped runs */
	const char *labels[] = {"a", "b", "c"};
	double w[] = {1, 0, 2};
	ck_assert_int_eq(ab_loader_set_class_codes(ld, codes, NROWS, labels, 3, w, 2), AB_EINVAL);
	ck_assert_msg(strstr(ab_last_error(), "2 class weights given for 3 classes"), "%s", ab_last_error());
	codes[5] = -1;
	ck_assert_int_eq(ab_loader_set_class_codes(ld, codes, NROWS, labels, 3, w, 3), AB_EINVAL);
	ck_assert_msg(strstr(ab_last_error(), "row 5"), "%s", ab_last_error());
	codes[5] = 0;
	/* a label given twice would make two classes of one name */
	const char *twice[] = {"a", "b", "a"};
	ck_assert_int_eq(ab_loader_set_class_codes(ld, codes, NROWS, twice, 3, w, 3), AB_EINVAL);
	ck_assert_msg(strstr(ab_last_error(), "'a' is given twice"), "%s", ab_last_error());
	/* a wrong row count is found at start */
	ck_assert_int_eq(ab_loader_set_class_codes(ld, codes, NROWS - 1, labels, 3, w, 3), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), AB_EINVAL);
	ck_assert_msg(strstr(ab_last_error(), "one class code a row"), "%s", ab_last_error());
	ck_assert_int_eq(ab_loader_set_class_codes(ld, codes, NROWS, labels, 3, w, 3), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b;
	int rc, n = 0, per_class[3] = {0, 0, 0};
	while ((rc = ab_loader_next(ld, &b)) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		ck_assert(batch_ok(&v));
		int32_t k = codes[v.rows[0]];
		for (uint64_t i = 0; i < v.nrows; i++)
			ck_assert_msg(codes[v.rows[i]] == k, "batch %d mixes classes", n);
		per_class[k]++;
		n++;
		ab_batch_release(b);
	}
	ck_assert_int_eq(rc, AB_END);
	ck_assert_int_eq(n, 480 / 16);
	ck_assert_int_eq(per_class[1], 0);
	ck_assert(per_class[0] > 0 && per_class[2] > 0);
	ab_loader_destroy(ld);
}
END_TEST

/* A batch allocator: X buffers come from it (and go back to it, with their
 * size, by destroy at the latest), values are right, and it can only be set
 * before the first start. */
typedef struct {
	atomic_int allocs, frees;    /* called from the worker threads */
	atomic_size_t live_bytes;
} counting_alloc;

static void *count_alloc(size_t size, void *ctx)
{
	counting_alloc *c = ctx;
	atomic_fetch_add(&c->allocs, 1);
	atomic_fetch_add(&c->live_bytes, size);
	return malloc(size);
}

static void count_free(void *p, size_t size, void *ctx)
{
	counting_alloc *c = ctx;
	atomic_fetch_add(&c->frees, 1);
	atomic_fetch_sub(&c->live_bytes, size);
	free(p);
}

START_TEST(test_batch_allocator)
{
	for (int sparse = 0; sparse < 2; sparse++) {
		counting_alloc c;
		atomic_init(&c.allocs, 0);
		atomic_init(&c.frees, 0);
		atomic_init(&c.live_bytes, 0);
		ab_loader *ld = make_loader(sparse, 1, 2);
		ck_assert_int_eq(ab_loader_set_allocator(ld, count_alloc, NULL, &c), AB_EINVAL);
		ck_assert_int_eq(ab_loader_set_allocator(ld, count_alloc, count_free, &c), 0);
		for (uint64_t e = 0; e < 2; e++) {
			ck_assert_int_eq(ab_loader_start(ld, e), 0);
			ab_batch *b;
			int n = 0, rc;
			while ((rc = ab_loader_next(ld, &b)) == 0) {
				ab_batch_view v;
				ab_batch_get_view(b, &v);
				ck_assert(batch_ok(&v));
				n += (int)v.nrows;
				ab_batch_release(b);
			}
			ck_assert_int_eq(rc, AB_END);
			ck_assert_int_eq(n, NROWS);
		}
		ck_assert_int_gt(atomic_load(&c.allocs), 0);
		ck_assert_int_eq(ab_loader_set_allocator(ld, NULL, NULL, NULL), AB_EINVAL); /* after start */
		ab_loader_destroy(ld);
		ck_assert_int_eq(atomic_load(&c.allocs), atomic_load(&c.frees));
		ck_assert_uint_eq(atomic_load(&c.live_bytes), 0);
	}
}
END_TEST

/* One epoch's batches: rows in order, and each batch's epoch, index (from
 * `first`, counted from the epoch's start) and values checked. Sleeps
 * `pause_ms` after the last batch, so that the next epoch read ahead is
 * done (parked) when the caller starts it, or not. */
static void collect_checked(ab_loader *ld, uint64_t epoch, uint64_t first, int pause_ms, uint64_t *rows, size_t *n)
{
	ck_assert_int_eq(ab_loader_start(ld, epoch), 0);
	ab_batch *b;
	uint64_t index = first;
	int rc;
	*n = 0;
	while ((rc = ab_loader_next(ld, &b)) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		ck_assert_uint_eq(v.epoch, epoch);
		ck_assert_uint_eq(v.index, index++);
		ck_assert_msg(batch_ok(&v), "epoch %llu: batch values do not match its rows", (unsigned long long)epoch);
		memcpy(rows + *n, v.rows, v.nrows * sizeof *rows);
		*n += v.nrows;
		ab_batch_release(b);
	}
	ck_assert_int_eq(rc, AB_END);
	if (pause_ms)
		usleep((useconds_t)pause_ms * 1000);
}

/* Epochs one after the other, as a training loop runs them: each start
 * takes over the epoch the loader read ahead while the last one finished
 * (all of it parked, some, or none yet), or, for an epoch other than the
 * next one, drops it and starts afresh. The batches must be those of a
 * loader that runs only that epoch; with a resume position (start_batch) too. */
START_TEST(test_read_ahead_same_batches)
{
	static uint64_t want[NROWS], got[NROWS];
	const uint64_t epochs[] = { 0, 1, 2, 4, 5, 6, 6, 7 };
	const int pauses[] = { 0, 50, 0, 50, 0, 0, 50, 0 };
	for (int sparse = 0; sparse < 2; sparse++) {
		for (uint64_t start_batch = 0; start_batch <= 9; start_batch += 9) {
			ab_loader_config cfg;
			base_config(&cfg, 1, 2);
			cfg.start_batch = start_batch;
			ab_loader *ld = make_loader_cfg(sparse, &cfg);
			for (size_t k = 0; k < sizeof epochs / sizeof epochs[0]; k++) {
				size_t nw, ng;
				ab_loader *ref = make_loader_cfg(sparse, &cfg);
				collect_checked(ref, epochs[k], start_batch, 0, want, &nw);
				ab_loader_destroy(ref);
				collect_checked(ld, epochs[k], start_batch, pauses[k], got, &ng);
				ck_assert_uint_eq(nw, NROWS - start_batch * 16);
				ck_assert_uint_eq(ng, nw);
				ck_assert_msg(memcmp(want, got, nw * sizeof *want) == 0,
					      "sparse %d, start_batch %llu: epoch %llu differs from a fresh loader's", sparse,
					      (unsigned long long)start_batch, (unsigned long long)epochs[k]);
			}
			ab_loader_stats st;
			ck_assert_int_eq(ab_loader_get_stats(ld, &st), 0);
			ck_assert_uint_eq(st.rows, (NROWS - start_batch * 16) * (sizeof epochs / sizeof epochs[0]));
			ab_loader_destroy(ld);
		}
	}
}
END_TEST

START_TEST(test_resume)
{
	static uint64_t all[NROWS], rest[NROWS];
	size_t n, m;
	ab_loader *ld = make_loader(0, 1, 2);
	collect(ld, 3, all, &n);
	ab_loader_destroy(ld);
	ab_loader_config cfg;
	ab_loader_config_init(&cfg);
	cfg.batch_size = 16;
	cfg.chunk_size = 32;
	cfg.preload_nchunks = 4;
	cfg.shuffle = 1;
	cfg.seed = 11;
	cfg.threads = 2;
	cfg.rank = 0;
	cfg.world_size = 1;
	cfg.start_batch = 9;
	ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
	uint64_t shape[2] = { NROWS, NCOLS };
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, shape), 0);
	collect(ld, 3, rest, &m);
	ck_assert_uint_eq(m, n - 9 * 16);
	ck_assert_mem_eq(rest, all + 9 * 16, m * sizeof *rest);
	ab_loader_destroy(ld);
}
END_TEST

START_TEST(test_errors)
{
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(NULL, &ld), 0);
	ab_batch *b;
	ck_assert_int_eq(ab_loader_next(ld, &b), AB_EINVAL);
	ck_assert_int_eq(ab_loader_start(ld, 0), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "no data"));
	uint64_t shape[2] = { NROWS, NCOLS }, other[2] = { 10, 4 };
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, shape), 0);
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, other), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "trailing shape"));
	ck_assert_int_eq(ab_loader_add_csr_memory(ld, indptr, indices, values, AB_DT_FLOAT64, 10, NCOLS), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "mix"));
	ab_loader_destroy(ld);
}
END_TEST

START_TEST(test_promotion)
{
	/* int16 rows then float32 rows: batches come out as float32 */
	static int16_t small[4 * NCOLS];
	for (int i = 0; i < 4 * NCOLS; i++)
		small[i] = (int16_t)(-i);
	ab_loader_config cfg;
	ab_loader_config_init(&cfg);
	cfg.batch_size = 4;
	cfg.chunk_size = 4;
	cfg.preload_nchunks = 1;
	cfg.rank = 0;
	cfg.world_size = 1;
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
	uint64_t s1[2] = { 4, NCOLS }, s2[2] = { NROWS, NCOLS };
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, small, AB_DT_INT16, 2, s1), 0);
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, dense, AB_DT_FLOAT32, 2, s2), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b;
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	ab_batch_view v;
	ab_batch_get_view(b, &v);
	ck_assert_int_eq(v.dtype, AB_DT_FLOAT32);
	ck_assert(((const float *)v.data)[5] == -5.0f);
	ab_batch_release(b);
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	ab_batch_get_view(b, &v);
	ck_assert_uint_eq(v.rows[0], 4);
	ck_assert(((const float *)v.data)[1] == 1.0f); /* global row 4 = dense row 0 */
	ab_batch_release(b);
	ab_loader_destroy(ld);
}
END_TEST

/* Arrays with missing chunks, missing shard files and empty shard slots,
 * written by zarr-python 2.13 and the spec writer of the conformance
 * generator (tests/fixtures/conformance, AB_FIXTURES), read through the
 * loader in every engine mode: every row must equal, bit for bit, the row
 * numpy expects (the fill value over the absent chunks: integer, NaN, +inf,
 * -inf). */
static const struct {
	const char *store, *node, *expected;
	ab_dtype dtype;
} fill_cases[] = {
	{ "v2_fill", "num_i4_2d", "v2_fill_num_i4_2d", AB_DT_INT32 },
	{ "v2_fill", "nan_f4_2d", "v2_fill_nan_f4_2d", AB_DT_FLOAT32 },
	{ "v2_fill", "nan_be_f8_1d", "v2_fill_nan_be_f8_1d", AB_DT_FLOAT64 },
	{ "v2_fill", "inf_f4_3d", "v2_fill_inf_f4_3d", AB_DT_FLOAT32 },
	{ "v2_fill", "ninf_f8_2d", "v2_fill_ninf_f8_2d", AB_DT_FLOAT64 },
	{ "v2_fill", "empty_nan", "v2_fill_all_missing", AB_DT_FLOAT64 },
	{ "v3_arrays", "fill_num_i4", "v3_fill_num_i4", AB_DT_INT32 },
	{ "v3_arrays", "fill_nan_f4", "v3_fill_nan_f4", AB_DT_FLOAT32 },
	{ "v3_arrays", "fill_inf_f8", "v3_fill_inf_f8", AB_DT_FLOAT64 },
	{ "v3_arrays", "fill_ninf_f4", "v3_fill_ninf_f4", AB_DT_FLOAT32 },
	{ "v3_arrays", "fill_rows", "v3_fill_rows_nan", AB_DT_FLOAT32 },
	{ "v3_shard", "miss_inner", "v3_shard_missing_inner", AB_DT_INT32 },
	{ "v3_shard", "miss_shard", "v3_shard_missing_shard", AB_DT_INT32 },
	{ "v3_shard", "miss_shard_nan", "v3_shard_missing_shard_nan", AB_DT_FLOAT64 },
};

static void *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	*len = n;
	return buf;
}

START_TEST(test_missing_chunks)
{
	const char *fx = getenv("AB_FIXTURES");
	ck_assert_msg(fx != NULL, "AB_FIXTURES is not set (make check sets it)");
	char store[1024], exp_path[1024];
	snprintf(store, sizeof store, "%s/conformance/stores/%s", fx, fill_cases[_i].store);
	snprintf(exp_path, sizeof exp_path, "%s/conformance/expected/%s.bin", fx, fill_cases[_i].expected);
	size_t exp_len;
	uint8_t *exp = read_all(exp_path, &exp_len);
	for (int mode = 0; mode < 32; mode++) {
		ab_loader_config cfg;
		ab_loader_config_init(&cfg);
		cfg.batch_size = 4;
		cfg.chunk_size = 2;
		cfg.preload_nchunks = 4;
		cfg.shuffle = mode & 1;
		cfg.seed = 3;
		cfg.whole_chunks = (mode >> 1) & 1;
		cfg.backend = (mode >> 2) & 1 ? AB_BACKEND_PREAD : AB_BACKEND_URING;
		cfg.io_mode = (mode >> 3) & 1 ? AB_IO_MODE_BUFFERED : AB_IO_MODE_DIRECT;
		cfg.threads = (mode >> 4) & 1 ? 2 : 1;
		cfg.rank = 0;
		cfg.world_size = 1;
		ab_loader *ld;
		ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
		ck_assert_msg(ab_loader_add_array(ld, store, fill_cases[_i].node) == 0, "%s", ab_last_error());
		uint64_t n = ab_loader_nrows(ld);
		ck_assert(n > 0 && exp_len % n == 0);
		size_t row_bytes = exp_len / n;
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		int *seen = calloc(n, sizeof *seen);
		uint64_t k = 0;
		ab_batch *b;
		int rc;
		while ((rc = ab_loader_next(ld, &b)) == 0) {
			ab_batch_view v;
			ab_batch_get_view(b, &v);
			ck_assert_int_eq(v.dtype, fill_cases[_i].dtype);
			ck_assert_uint_eq(v.row_items * ab_dtype_size(v.dtype), row_bytes);
			for (uint64_t i = 0; i < v.nrows; i++, k++) {
				uint64_t r = v.rows[i];
				ck_assert_uint_lt(r, n);
				ck_assert(cfg.shuffle || r == k);
				seen[r]++;
				ck_assert_msg(memcmp((const uint8_t *)v.data + i * row_bytes, exp + r * row_bytes,
						     row_bytes) == 0,
					      "%s:%s mode %d: row %llu differs from numpy's", fill_cases[_i].store,
					      fill_cases[_i].node, mode, (unsigned long long)r);
			}
			ab_batch_release(b);
		}
		ck_assert_msg(rc == AB_END, "%s", ab_last_error());
		for (uint64_t r = 0; r < n; r++)
			ck_assert_int_eq(seen[r], 1);
		free(seen);
		ab_loader_destroy(ld);
	}
	free(exp);
}
END_TEST

/* ---- indptr_int32: the same batches with an int32 indptr */

/* Two loaders alike but for indptr_int32 give the same batches: rows,
 * values, column indices, and indptr entries equal as numbers; the int32
 * run has no int64 indptr and the int64 run no int32 one. */
static void compare_indptr_widths(const char *store, int shuffle, uint64_t epoch)
{
	ab_loader *ld[2];
	for (int i32 = 0; i32 < 2; i32++) {
		ab_loader_config cfg;
		base_config(&cfg, shuffle, 2);
		cfg.indptr_int32 = i32;
		if (store) {
			ck_assert_int_eq(ab_loader_create(&cfg, &ld[i32]), 0);
			ck_assert_msg(ab_loader_add_anndata(ld[i32], store) == 0, "%s", ab_last_error());
		} else {
			ld[i32] = make_loader_cfg(1, &cfg);
		}
		ck_assert_int_eq(ab_loader_start(ld[i32], epoch), 0);
	}
	uint64_t rows = 0, nnz = 0, batches = 0;
	for (;;) {
		ab_batch *b64, *b32;
		int rc64 = ab_loader_next(ld[0], &b64), rc32 = ab_loader_next(ld[1], &b32);
		ck_assert_msg(rc64 == rc32, "int64 run: %d, int32 run: %d (%s)", rc64, rc32, ab_last_error());
		if (rc64 == AB_END)
			break;
		ck_assert_int_eq(rc64, 0);
		ab_batch_view a, c;
		ck_assert_int_eq(ab_batch_get_view(b64, &a), 0);
		ck_assert_int_eq(ab_batch_get_view(b32, &c), 0);
		ck_assert(a.sparse && c.sparse);
		ck_assert_ptr_nonnull(a.indptr);
		ck_assert_ptr_null(a.indptr32);
		ck_assert_ptr_null(c.indptr);
		ck_assert_ptr_nonnull(c.indptr32);
		ck_assert_uint_eq(a.nrows, c.nrows);
		ck_assert_uint_eq(a.nnz, c.nnz);
		ck_assert_int_eq(a.dtype, c.dtype);
		ck_assert_mem_eq(a.rows, c.rows, a.nrows * sizeof *a.rows);
		for (uint64_t i = 0; i <= a.nrows; i++)
			ck_assert_msg(a.indptr[i] == (int64_t)c.indptr32[i], "batch %llu, indptr[%llu]: %lld vs %d",
				      (unsigned long long)batches, (unsigned long long)i, (long long)a.indptr[i],
				      c.indptr32[i]);
		ck_assert_int_eq(c.indptr32[c.nrows], (int32_t)c.nnz);
		if (a.nnz) {
			ck_assert_mem_eq(a.indices, c.indices, a.nnz * sizeof *a.indices);
			ck_assert_mem_eq(a.values, c.values, a.nnz * ab_dtype_size(a.dtype));
		}
		rows += a.nrows;
		nnz += a.nnz;
		batches++;
		ab_batch_release(b64);
		ab_batch_release(b32);
	}
	ck_assert_uint_eq(rows, ab_loader_nrows(ld[0]));
	ck_assert_uint_gt(nnz, 0);
	ck_assert_uint_gt(batches, 1);
	ab_loader_destroy(ld[0]);
	ab_loader_destroy(ld[1]);
}

START_TEST(test_indptr_int32_same_batches)
{
	/* in-memory CSR, and CSR stores anndata and zarr-python wrote (float32
	 * with int32 indices; float64 with int64 indices over several chunks) */
	const char *fx = getenv("AB_FIXTURES");
	ck_assert_msg(fx != NULL, "AB_FIXTURES is not set (make check sets it)");
	char ad_csr[1024], manual[1024];
	snprintf(ad_csr, sizeof ad_csr, "%s/conformance/stores/ad_csr", fx);
	snprintf(manual, sizeof manual, "%s/conformance/stores/v2_csr_manual", fx);
	const char *stores[] = { NULL, ad_csr, manual };
	for (size_t k = 0; k < sizeof stores / sizeof *stores; k++)
		for (int shuffle = 0; shuffle < 2; shuffle++)
			for (uint64_t epoch = 0; epoch < 2; epoch++)
				compare_indptr_widths(stores[k], shuffle, epoch);
}
END_TEST

/* indices_sorted says whether every row's indices strictly increase: 1 for
 * the shared sorted fixture, 0 for every batch holding a row whose indices
 * go down or repeat, and 1 again for the batches without such a row. */
START_TEST(test_indices_sorted_flag)
{
	for (int shuffle = 0; shuffle < 2; shuffle++) {
		ab_loader_config cfg;
		base_config(&cfg, shuffle, 2);
		ab_loader *ld = make_loader_cfg(1, &cfg);
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		ab_batch *b;
		while (ab_loader_next(ld, &b) == 0) {
			ab_batch_view v;
			ab_batch_get_view(b, &v);
			int want = 1;
			for (uint64_t r = 0; r < v.nrows; r++)
				for (int64_t k = v.indptr[r] + 1; k < v.indptr[r + 1]; k++)
					want &= v.indices[k - 1] < v.indices[k];
			ck_assert_int_eq(want, 1);
			ck_assert_int_eq(v.indices_sorted, 1);
			ab_batch_release(b);
		}
		ab_loader_destroy(ld);
	}
	/* 8 rows of 3 values; row 5 has its columns out of order (2, 0, 1) and
	 * row 6 one column twice (4, 4, 5) */
	static int64_t ip[9];
	static int64_t ix[24];
	static float vals[24];
	for (int r = 0; r <= 8; r++)
		ip[r] = 3 * r;
	for (int r = 0; r < 8; r++)
		for (int k = 0; k < 3; k++) {
			ix[3 * r + k] = k + r;
			vals[3 * r + k] = (float)(r * 3 + k + 1);
		}
	ix[15] = 2, ix[16] = 0, ix[17] = 1;
	ix[18] = 4, ix[19] = 4, ix[20] = 5;
	ab_loader_config cfg;
	base_config(&cfg, 0, 1);
	cfg.batch_size = 2;
	cfg.chunk_size = 2;
	cfg.preload_nchunks = 1;
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
	ck_assert_int_eq(ab_loader_add_csr_memory(ld, ip, ix, vals, AB_DT_FLOAT32, 8, 16), 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b;
	int seen = 0;
	while (ab_loader_next(ld, &b) == 0) {
		ab_batch_view v;
		ab_batch_get_view(b, &v);
		int bad = 0;
		for (uint64_t r = 0; r < v.nrows; r++)
			bad |= v.rows[r] == 5 || v.rows[r] == 6;
		ck_assert_msg(v.indices_sorted == !bad, "batch of rows %llu..: indices_sorted %d",
			      (unsigned long long)v.rows[0], v.indices_sorted);
		seen++;
		ab_batch_release(b);
	}
	ck_assert_int_eq(seen, 4);
	ab_loader_destroy(ld);
	/* The same from a store zarr-python wrote, where rows 2, 5 and 6 are
	 * out of order: two of them only across the seam between two indices
	 * chunks, which the decode workers see apart (gen_fixtures.py). */
	const char *fx = getenv("AB_FIXTURES");
	ck_assert_msg(fx != NULL, "AB_FIXTURES is not set (make check sets it)");
	char store[1024];
	snprintf(store, sizeof store, "%s/conformance/stores/v2_csr_unsorted_seams", fx);
	for (uint64_t bs = 1; bs <= 2; bs++) {
		base_config(&cfg, 0, 2);
		cfg.batch_size = bs;
		cfg.chunk_size = 2;
		cfg.preload_nchunks = 2;
		ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
		ck_assert_msg(ab_loader_add_anndata(ld, store) == 0, "%s", ab_last_error());
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		seen = 0;
		while (ab_loader_next(ld, &b) == 0) {
			ab_batch_view v;
			ab_batch_get_view(b, &v);
			int bad = 0;
			for (uint64_t r = 0; r < v.nrows; r++)
				bad |= v.rows[r] == 2 || v.rows[r] == 5 || v.rows[r] == 6;
			ck_assert_msg(v.indices_sorted == !bad, "batch of rows %llu..: indices_sorted %d",
				      (unsigned long long)v.rows[0], v.indices_sorted);
			seen++;
			ab_batch_release(b);
		}
		ck_assert_int_eq(seen, 8 / bs);
		ab_loader_destroy(ld);
	}
}
END_TEST

/* A batch with more values than an int32 indptr can index fails the epoch
 * with AB_EINVAL naming it. The limit is lowered (reaching INT32_MAX would
 * need 2^31 values): every full batch of the sequential epoch holds 24
 * values, so all pass at a limit of 24 and the first of a window is refused
 * at 23. Dense data ignores the option. */
START_TEST(test_indptr_int32_refused_past_limit)
{
	for (uint64_t limit = 23; limit <= 24; limit++) {
		ab_loader_config cfg;
		base_config(&cfg, 0, 2);
		cfg.indptr_int32 = 1;
		ab_loader *ld = make_loader_cfg(1, &cfg);
		ld->indptr32_max = limit;
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		ab_batch *b;
		int rc;
		uint64_t rows = 0;
		while ((rc = ab_loader_next(ld, &b)) == 0) {
			ab_batch_view v;
			ab_batch_get_view(b, &v);
			ck_assert_uint_le(v.nnz, limit);
			rows += v.nrows;
			ab_batch_release(b);
		}
		if (limit == 24) {
			ck_assert_msg(rc == AB_END, "%s", ab_last_error());
			ck_assert_uint_eq(rows, NROWS);
		} else {
			ck_assert_int_eq(rc, AB_EINVAL);
			ck_assert_uint_eq(rows, 0);
			/* windows are planned ahead, and a batch is refused when
			 * its window is planned: the first to fail is named, with
			 * its own rows (after the planning context) */
			const char *msg = strstr(ab_last_error(), "batch ");
			ck_assert_msg(msg != NULL, "%s", ab_last_error());
			unsigned long long win, first, epoch, nrows, nnz, max;
			int batch;
			ck_assert_msg(sscanf(msg, "batch %d of window %llu of epoch %llu (%llu rows, the first global "
					     "row %llu) has %llu values, more than an int32 indptr can index (%llu",
					     &batch, &win, &epoch, &nrows, &first, &nnz, &max) == 7, "%s", msg);
			ck_assert_int_ge(batch, 0);
			ck_assert_int_lt(batch, 128 / 16);
			ck_assert_uint_eq(first, win * 128 + (unsigned long long)batch * 16);
			ck_assert_uint_eq(epoch, 0);
			ck_assert_uint_eq(nrows, 16);
			ck_assert_uint_eq(nnz, 24);
			ck_assert_uint_eq(max, 23);
			ck_assert_msg(strstr(msg, "lower batch_size, or leave indptr_int32 off"), "%s", msg);
		}
		ab_loader_destroy(ld);
	}
	ab_loader_config cfg;
	base_config(&cfg, 1, 2);
	cfg.indptr_int32 = 1;
	ab_loader *ld = make_loader_cfg(0, &cfg);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b;
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	ab_batch_view v;
	ab_batch_get_view(b, &v);
	ck_assert(!v.sparse && v.data && !v.indptr && !v.indptr32);
	ck_assert(batch_ok(&v));
	ab_batch_release(b);
	ab_loader_destroy(ld);
}
END_TEST

int main(void)
{
	fill_data();
	Suite *s = suite_create("loader");
	TCase *t = tcase_create("loader");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_dense_8_consumers_5_epochs);
	tcase_add_test(t, test_sparse_8_consumers_5_epochs);
	tcase_add_test(t, test_deterministic_and_epochs_differ);
	tcase_add_test(t, test_stop_mid_epoch);
	tcase_add_test(t, test_rows_past_n_obs);
	tcase_add_loop_test(t, test_missing_chunks, 0, (int)(sizeof fill_cases / sizeof *fill_cases));
	tcase_add_test(t, test_resume);
	tcase_add_test(t, test_read_ahead_same_batches);
	tcase_add_test(t, test_stall_reported);
	tcase_add_test(t, test_class_codes_from_memory);
	tcase_add_test(t, test_batch_allocator);
	tcase_add_test(t, test_no_false_stall);
	tcase_add_test(t, test_errors);
	tcase_add_test(t, test_promotion);
	tcase_add_test(t, test_indptr_int32_same_batches);
	tcase_add_test(t, test_indptr_int32_refused_past_limit);
	tcase_add_test(t, test_indices_sorted_flag);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
