/* test_sampler.c - unit tests of the batch sampler: coverage of every row per
 * epoch, batch shapes, window permutations, sequential order, shuffling and
 * determinism, num_samples truncation and epoch tiling, sampling with
 * replacement, distributed rank slices, validation messages and the rank
 * environment variables. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annbatch.h"
#include "sampler.h"

/* ------------------------------------------------------------ helpers */

/* Check's ck_assert_* record a mark point (a write to a pipe) even when they
 * pass, which dominates loops over every row; these only act on failure. */
#define REQ(cond)                                                                \
	do {                                                                     \
		if (!(cond))                                                     \
			ck_abort_msg("requirement failed: %s", #cond);           \
	} while (0)
#define REQ_OP(a, op, b)                                                         \
	do {                                                                     \
		unsigned long long req_a_ = (a), req_b_ = (b);                   \
		if (!(req_a_ op req_b_))                                         \
			ck_abort_msg("requirement failed: %s %s %s (%llu vs %llu)", \
				     #a, #op, #b, req_a_, req_b_);                \
	} while (0)

static ab_sampler_config cfg_make(uint64_t chunk, uint64_t preload, uint64_t batch)
{
	ab_sampler_config c;
	memset(&c, 0, sizeof c);
	c.chunk_size = chunk;
	c.preload_nchunks = preload;
	c.batch_size = batch;
	c.seed = 42;
	return c;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	ck_assert_ptr_nonnull(q);
	return q;
}

#define PUSH(arr, len, cap, val)                                                 \
	do {                                                                     \
		if ((len) == (cap)) {                                            \
			(cap) = (cap) ? 2 * (cap) : 64;                          \
			(arr) = xrealloc((arr), (cap) * sizeof *(arr));           \
		}                                                                \
		(arr)[(len)++] = (val);                                          \
	} while (0)
#define REQ_EQ(a, b) REQ_OP(a, ==, b)
#define REQ_LT(a, b) REQ_OP(a, <, b)
#define REQ_LE(a, b) REQ_OP(a, <=, b)
#define REQ_GT(a, b) REQ_OP(a, >, b)
#define REQ_GE(a, b) REQ_OP(a, >=, b)

/* Everything one epoch yields, flattened. */
typedef struct run {
	size_t nwindows;
	uint64_t nbatches;
	uint64_t *rows;          /* global rows in batch order */
	size_t nrows, rows_cap;
	size_t *bsizes;          /* batch sizes in order        */
	size_t nb, nb_cap;
	ab_chunk_range *chunks;  /* chunks in window order      */
	size_t nchunks, chunks_cap;
	uint64_t *unused;        /* rows of windows read but not used in any batch */
	size_t nunused, unused_cap;
	uint64_t read_rows;      /* sum of window nrows         */
} run;

static void run_free(run *r)
{
	free(r->rows);
	free(r->bsizes);
	free(r->chunks);
	free(r->unused);
	memset(r, 0, sizeof *r);
}

/* Global row of window-local position `pos`. */
static uint64_t local_to_global(const ab_window *w, uint64_t pos)
{
	for (size_t c = 0; c < w->nchunks; c++) {
		uint64_t len = w->chunks[c].stop - w->chunks[c].start;
		if (pos < len)
			return w->chunks[c].start + pos;
		pos -= len;
	}
	ck_abort_msg("position beyond the window");
	return 0;
}

/* Structural checks every window must pass. With `full_perm` the used
 * positions must be exactly a permutation of [0, used). */
static void check_window(const ab_window *w, size_t i, const ab_sampler_config *c,
			 uint64_t lo, uint64_t hi, int full_perm)
{
	REQ_EQ(w->index, i);
	REQ_GE(w->nchunks, 1);
	REQ_LE(w->nchunks, c->preload_nchunks);
	uint64_t rows = 0;
	for (size_t k = 0; k < w->nchunks; k++) {
		REQ_LT(w->chunks[k].start, w->chunks[k].stop);
		REQ_GE(w->chunks[k].start, lo);
		REQ_LE(w->chunks[k].stop, hi);
		rows += w->chunks[k].stop - w->chunks[k].start;
	}
	REQ_EQ(w->nrows, rows);
	REQ_GE(w->nbatches, 1);
	REQ_EQ(w->batch_off[0], 0);
	for (size_t b = 0; b < w->nbatches; b++) {
		REQ_GT(w->batch_off[b + 1], w->batch_off[b]);
		REQ_LE(w->batch_off[b + 1] - w->batch_off[b], c->batch_size);
	}
	size_t used = w->batch_off[w->nbatches];
	REQ_LE(used, w->nrows);
	unsigned char *seen = calloc(w->nrows, 1);
	REQ(seen != NULL);
	for (size_t k = 0; k < used; k++) {
		REQ_LT(w->perm[k], w->nrows);
		REQ(!seen[w->perm[k]]);
		seen[w->perm[k]] = 1;
		if (full_perm)
			REQ_LT(w->perm[k], used);
	}
	free(seen);
}

/* Iterates the sampler's windows and flattens them into `r`. */
static void collect(const ab_sampler *s, const ab_sampler_config *c, uint64_t lo, uint64_t hi,
		    int full_perm, run *r)
{
	memset(r, 0, sizeof *r);
	r->nwindows = ab_sampler_nwindows(s);
	r->nbatches = ab_sampler_nbatches(s);
	for (size_t i = 0; i < r->nwindows; i++) {
		ab_window w;
		REQ(ab_sampler_window(s, i, &w) == 0);
		check_window(&w, i, c, lo, hi, full_perm);
		for (size_t k = 0; k < w.nchunks; k++)
			PUSH(r->chunks, r->nchunks, r->chunks_cap, w.chunks[k]);
		r->read_rows += w.nrows;
		for (size_t b = 0; b < w.nbatches; b++) {
			PUSH(r->bsizes, r->nb, r->nb_cap, w.batch_off[b + 1] - w.batch_off[b]);
			for (size_t k = w.batch_off[b]; k < w.batch_off[b + 1]; k++)
				PUSH(r->rows, r->nrows, r->rows_cap, local_to_global(&w, w.perm[k]));
		}
		/* Positions of the window never handed out. */
		unsigned char *used = calloc(w.nrows, 1);
		REQ(used != NULL);
		for (size_t k = 0; k < w.batch_off[w.nbatches]; k++)
			used[w.perm[k]] = 1;
		for (uint64_t p = 0; p < w.nrows; p++)
			if (!used[p])
				PUSH(r->unused, r->nunused, r->unused_cap, local_to_global(&w, p));
		free(used);
		ab_window_free(&w);
	}
	REQ_EQ(r->nb, r->nbatches);
	/* Every batch is full except possibly the very last one. */
	for (size_t b = 0; b + 1 < r->nb; b++)
		REQ_EQ(r->bsizes[b], c->batch_size);
}

static ab_sampler *make(const ab_sampler_config *c, uint64_t n_obs)
{
	ab_sampler *s = NULL;
	int rc = ab_sampler_create(c, n_obs, &s);
	ck_assert_msg(rc == 0, "create failed (%d): %s", rc, ab_last_error());
	ck_assert_ptr_nonnull(s);
	return s;
}

/* How many times each row of [lo, hi) occurs in `rows`; fails on rows outside. */
static unsigned *row_counts(const uint64_t *rows, size_t n, uint64_t lo, uint64_t hi)
{
	unsigned *cnt = calloc(hi - lo, sizeof *cnt);
	REQ(cnt != NULL);
	for (size_t k = 0; k < n; k++) {
		REQ_GE(rows[k], lo);
		REQ_LT(rows[k], hi);
		cnt[rows[k] - lo]++;
	}
	return cnt;
}

static int windows_equal(const ab_window *a, const ab_window *b)
{
	if (a->index != b->index || a->nchunks != b->nchunks || a->nrows != b->nrows ||
	    a->nbatches != b->nbatches)
		return 0;
	if (memcmp(a->chunks, b->chunks, a->nchunks * sizeof *a->chunks) != 0)
		return 0;
	if (memcmp(a->batch_off, b->batch_off, (a->nbatches + 1) * sizeof *a->batch_off) != 0)
		return 0;
	return memcmp(a->perm, b->perm, a->batch_off[a->nbatches] * sizeof *a->perm) == 0;
}

static int chunks_equal(const run *a, const run *b)
{
	return a->nchunks == b->nchunks &&
	       memcmp(a->chunks, b->chunks, a->nchunks * sizeof *a->chunks) == 0;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* ------------------------------------------------- one epoch, no replacement */

static const uint64_t sizes[] = { 1, 7, 10, 37, 64, 100, 257 };
static const uint64_t chunk_sizes[] = { 1, 3, 4, 16 };

/* The epoch invariants for one configuration over the mask [lo, hi). */
static void check_epoch(const ab_sampler_config *c, uint64_t n_obs, uint64_t lo, uint64_t hi)
{
	ab_sampler *s = make(c, n_obs);
	run r;
	collect(s, c, lo, hi, 1, &r);
	uint64_t m = hi - lo, bs = c->batch_size;

	unsigned *cnt = row_counts(r.rows, r.nrows, lo, hi);
	if (!c->drop_last) {
		REQ_EQ(r.nbatches, ceil_div(m, bs));
		REQ_EQ(r.nrows, m);
		for (uint64_t k = 0; k < m; k++)
			REQ_EQ(cnt[k], 1);
		REQ_EQ(r.read_rows, m);
		REQ_EQ(r.nunused, 0);
	} else {
		REQ_EQ(r.nbatches, m / bs);
		REQ_EQ(r.nrows, m - m % bs);
		if (r.nb)
			REQ_EQ(r.bsizes[r.nb - 1], bs);
		/* The missing rows are exactly those of the dropped tail: unused
		 * positions of the last window, or a whole last group (less than
		 * one batch) that yields no window at all. */
		unsigned *unused = row_counts(r.unused, r.nunused, lo, hi);
		uint64_t missing = 0, never_read = 0;
		for (uint64_t k = 0; k < m; k++) {
			REQ_LE(cnt[k] + unused[k], 1);
			if (cnt[k] == 0) {
				missing++;
				if (unused[k] == 0)
					never_read++;
			}
		}
		REQ_EQ(missing, m % bs);
		REQ_EQ(never_read, m - r.read_rows);
		REQ(r.nunused == 0 || never_read == 0);
		REQ_LT(r.nunused, bs);
		free(unused);
	}
	free(cnt);

	/* Chunks: all full except the last one, which holds m % chunk_size. */
	for (size_t k = 0; k + 1 < r.nchunks; k++)
		REQ_EQ(r.chunks[k].stop - r.chunks[k].start, c->chunk_size);
	if (r.nchunks && r.read_rows == m) {
		uint64_t last = r.chunks[r.nchunks - 1].stop - r.chunks[r.nchunks - 1].start;
		REQ_EQ(last, m % c->chunk_size ? m % c->chunk_size : c->chunk_size);
	}

	/* Sequential: rows come out in order. */
	if (!c->shuffle)
		for (size_t k = 0; k < r.nrows; k++)
			REQ_EQ(r.rows[k], lo + k);

	run_free(&r);
	ab_sampler_destroy(s);
}

START_TEST(test_epoch_coverage)
{
	size_t configs = 0;
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
	for (size_t ci = 0; ci < sizeof chunk_sizes / sizeof chunk_sizes[0]; ci++)
	for (uint64_t p = 1; p <= 5; p++) {
		uint64_t n = sizes[si], cs = chunk_sizes[ci];
		const uint64_t batches[] = { 1, 3, 4, cs * p };
		for (size_t bi = 0; bi < 4; bi++)
		for (int flags = 0; flags < 4; flags++)
		for (int mk = 0; mk < 3; mk++) {
			ab_sampler_config c = cfg_make(cs, p, batches[bi]);
			c.shuffle = flags & 1;
			c.drop_last = (flags >> 1) & 1;
			c.seed = n * 1000 + cs * 10 + p;
			uint64_t lo = 0, hi = n;
			if (mk == 1 && n > 3) {
				lo = 2;
				hi = n - 1;
			} else if (mk == 2 && n > 5) {
				lo = n / 3; /* mask_stop left unset: n_obs */
			}
			c.mask_start = lo;
			c.mask_stop = (mk == 1 && n > 3) ? hi : 0;
			if ((cs * p) % batches[bi] != 0 || batches[bi] > cs * p) {
				ab_sampler *s = (ab_sampler *)1;
				ck_assert_int_eq(ab_sampler_create(&c, n, &s), AB_EINVAL);
				ck_assert_ptr_null(s);
				continue;
			}
			check_epoch(&c, n, lo, hi);
			configs++;
		}
	}
	REQ_GT(configs, 3000);
}
END_TEST

START_TEST(test_sequential_layout)
{
	/* 10 rows, chunks of 4, 2 per window, batches of 2: windows [0,8) and
	 * [8,10); four batches in the first, one in the second. */
	ab_sampler_config c = cfg_make(4, 2, 2);
	ab_sampler *s = make(&c, 10);
	REQ_EQ(ab_sampler_nwindows(s), 2);
	REQ_EQ(ab_sampler_nbatches(s), 5);
	ab_window w;
	ck_assert_int_eq(ab_sampler_window(s, 0, &w), 0);
	REQ_EQ(w.nchunks, 2);
	REQ_EQ(w.chunks[0].start, 0);
	REQ_EQ(w.chunks[0].stop, 4);
	REQ_EQ(w.chunks[1].start, 4);
	REQ_EQ(w.chunks[1].stop, 8);
	REQ_EQ(w.nbatches, 4);
	for (uint32_t k = 0; k < 8; k++)
		REQ_EQ(w.perm[k], k);
	ab_window_free(&w);
	ck_assert_ptr_null(w.perm);
	ck_assert_int_eq(ab_sampler_window(s, 1, &w), 0);
	REQ_EQ(w.nchunks, 1);
	REQ_EQ(w.chunks[0].start, 8);
	REQ_EQ(w.chunks[0].stop, 10);
	REQ_EQ(w.nbatches, 1);
	REQ_EQ(w.batch_off[1], 2);
	ab_window_free(&w);
	ab_sampler_destroy(s);

	/* drop_last with a last group smaller than a batch: no window for it. */
	c = cfg_make(4, 1, 4);
	c.drop_last = 1;
	s = make(&c, 10);
	REQ_EQ(ab_sampler_nwindows(s), 2);
	REQ_EQ(ab_sampler_nbatches(s), 2);
	ab_sampler_destroy(s);

	/* drop_last with a last window that keeps part of its rows: it still
	 * reads both chunks but only uses the first 6 positions. */
	c = cfg_make(4, 2, 2);
	c.drop_last = 1;
	s = make(&c, 15); /* windows [0,8) and [8,15): 7 rows -> 6 used */
	REQ_EQ(ab_sampler_nwindows(s), 2);
	ck_assert_int_eq(ab_sampler_window(s, 1, &w), 0);
	REQ_EQ(w.nrows, 7);
	REQ_EQ(w.nbatches, 3);
	REQ_EQ(w.batch_off[3], 6);
	ab_window_free(&w);
	ab_sampler_destroy(s);
}
END_TEST

START_TEST(test_window_errors)
{
	ab_sampler_config c = cfg_make(4, 2, 2);
	ab_sampler *s = make(&c, 10);
	ab_window w;
	memset(&w, 0xab, sizeof w);
	ck_assert_int_eq(ab_sampler_window(s, 2, &w), AB_ERANGE);
	ck_assert_ptr_null(w.perm);
	ck_assert_ptr_null(w.chunks);
	ck_assert_ptr_null(w.batch_off);
	ck_assert_int_eq(ab_sampler_window(s, 0, NULL), AB_EINVAL);
	ck_assert_int_eq(ab_sampler_window(NULL, 0, &w), AB_EINVAL);
	ab_window_free(&w); /* zeroed window: harmless */
	ab_window_free(NULL);
	ab_sampler_destroy(s);
	ab_sampler_destroy(NULL);
	REQ_EQ(ab_sampler_nwindows(NULL), 0);
	REQ_EQ(ab_sampler_nbatches(NULL), 0);
}
END_TEST

/* ------------------------------------------------ shuffling and determinism */

static void collect_cfg(const ab_sampler_config *c, uint64_t n, run *r)
{
	ab_sampler *s = make(c, n);
	collect(s, c, 0, n, 1, r);
	ab_sampler_destroy(s);
}

START_TEST(test_shuffle_changes_order)
{
	ab_sampler_config c = cfg_make(4, 2, 1);
	run seq, a, b, e1, s2;
	collect_cfg(&c, 100, &seq);
	c.shuffle = 1;
	collect_cfg(&c, 100, &a);
	collect_cfg(&c, 100, &b);
	c.epoch = 1;
	collect_cfg(&c, 100, &e1);
	c.epoch = 0;
	c.seed = 43;
	collect_cfg(&c, 100, &s2);

	ck_assert(!chunks_equal(&seq, &a));   /* shuffled chunk order      */
	ck_assert(chunks_equal(&a, &b));      /* same seed, same epoch     */
	ck_assert(!chunks_equal(&a, &e1));    /* next epoch reshuffles     */
	ck_assert(!chunks_equal(&a, &s2));    /* other seed, other order   */
	REQ_EQ(a.nrows, b.nrows);
	ck_assert(memcmp(a.rows, b.rows, a.nrows * sizeof *a.rows) == 0);

	/* Rows within a window are permuted, not just the chunks reordered:
	 * some batch differs from the row order of the window's chunks. */
	ab_sampler *s = make(&c, 100);
	ab_window w;
	ck_assert_int_eq(ab_sampler_window(s, 0, &w), 0);
	int identity = 1;
	for (uint32_t k = 0; k < w.batch_off[w.nbatches]; k++)
		identity &= w.perm[k] == k;
	ck_assert(!identity);
	ab_window_free(&w);
	ab_sampler_destroy(s);

	run_free(&seq);
	run_free(&a);
	run_free(&b);
	run_free(&e1);
	run_free(&s2);
}
END_TEST

START_TEST(test_incomplete_chunk_last)
{
	/* 103 rows in chunks of 4: 25 full chunks and one of 3, which must be
	 * the last chunk visited whatever the shuffle, while its place in the
	 * row space moves with the seed. */
	int moved = 0;
	for (uint64_t seed = 0; seed < 30; seed++) {
		ab_sampler_config c = cfg_make(4, 3, 2);
		c.shuffle = 1;
		c.seed = seed;
		run r;
		collect_cfg(&c, 103, &r);
		REQ_EQ(r.nchunks, 26);
		for (size_t k = 0; k + 1 < r.nchunks; k++)
			REQ_EQ(r.chunks[k].stop - r.chunks[k].start, 4);
		const ab_chunk_range *last = &r.chunks[r.nchunks - 1];
		REQ_EQ(last->stop - last->start, 3);
		if (last->stop != 103)
			moved = 1;
		run_free(&r);
	}
	ck_assert(moved);
}
END_TEST

START_TEST(test_determinism_any_order)
{
	const uint64_t n = 1003;
	ab_sampler_config c = cfg_make(8, 4, 4);
	c.shuffle = 1;
	c.seed = 7;
	c.epoch = 3;
	ab_sampler *s1 = make(&c, n), *s2 = make(&c, n);
	size_t nw = ab_sampler_nwindows(s1);
	REQ_EQ(nw, ab_sampler_nwindows(s2));
	REQ_EQ(ab_sampler_nbatches(s1), ab_sampler_nbatches(s2));
	ab_window *fwd = calloc(nw, sizeof *fwd);
	ck_assert_ptr_nonnull(fwd);
	for (size_t i = 0; i < nw; i++)
		ck_assert_int_eq(ab_sampler_window(s1, i, &fwd[i]), 0);
	for (size_t i = nw; i-- > 0;) {
		ab_window w;
		ck_assert_int_eq(ab_sampler_window(s2, i, &w), 0);
		ck_assert(windows_equal(&fwd[i], &w));
		ab_window_free(&w);
		/* And again on the same sampler: nothing is consumed. */
		ck_assert_int_eq(ab_sampler_window(s1, i, &w), 0);
		ck_assert(windows_equal(&fwd[i], &w));
		ab_window_free(&w);
	}
	/* Different windows get different permutations. */
	ck_assert(memcmp(fwd[0].perm, fwd[1].perm, 32 * sizeof(uint32_t)) != 0);
	for (size_t i = 0; i < nw; i++)
		ab_window_free(&fwd[i]);
	free(fwd);
	ab_sampler_destroy(s1);
	ab_sampler_destroy(s2);
}
END_TEST

typedef struct thread_arg {
	const ab_sampler *s;
	const ab_window *ref;
	size_t nw;
	size_t stride;
	int ok;
} thread_arg;

static void *thread_main(void *p)
{
	thread_arg *a = p;
	a->ok = 1;
	/* Visit windows in a thread-specific order. */
	for (size_t k = 0; k < a->nw; k++) {
		size_t i = (k * a->stride + a->stride) % a->nw;
		ab_window w;
		if (ab_sampler_window(a->s, i, &w) != 0) {
			a->ok = 0;
			break;
		}
		if (!windows_equal(&a->ref[i], &w))
			a->ok = 0;
		ab_window_free(&w);
	}
	return NULL;
}

START_TEST(test_threads)
{
	ab_sampler_config c = cfg_make(16, 4, 8);
	c.shuffle = 1;
	ab_sampler *s = make(&c, 5003); /* 79 windows, a prime */
	size_t nw = ab_sampler_nwindows(s);
	REQ_EQ(nw, 79);
	ab_window *ref = calloc(nw, sizeof *ref);
	ck_assert_ptr_nonnull(ref);
	for (size_t i = 0; i < nw; i++)
		ck_assert_int_eq(ab_sampler_window(s, i, &ref[i]), 0);
	pthread_t th[4];
	thread_arg args[4];
	for (int t = 0; t < 4; t++) {
		args[t] = (thread_arg){ s, ref, nw, (size_t)(2 * t + 1), 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, thread_main, &args[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
		ck_assert(args[t].ok);
	}
	for (size_t i = 0; i < nw; i++)
		ab_window_free(&ref[i]);
	free(ref);
	ab_sampler_destroy(s);
}
END_TEST

/* -------------------------------------------------------------- num_samples */

START_TEST(test_num_samples)
{
	const uint64_t ns_list[] = { 1, 2, 3, 5, 17, 36, 37, 38, 50, 74, 100, 111, 250 };
	size_t configs = 0;
	for (size_t ci = 1; ci < sizeof chunk_sizes / sizeof chunk_sizes[0]; ci++)
	for (uint64_t p = 1; p <= 4; p++) {
		uint64_t cs = chunk_sizes[ci];
		const uint64_t batches[] = { 1, 3, 4, cs * p };
		for (size_t bi = 0; bi < 4; bi++)
		for (int flags = 0; flags < 4; flags++)
		for (size_t ni = 0; ni < sizeof ns_list / sizeof ns_list[0]; ni++) {
			uint64_t bs = batches[bi], n = 37, ns = ns_list[ni];
			if ((cs * p) % bs != 0)
				continue;
			ab_sampler_config c = cfg_make(cs, p, bs);
			c.shuffle = flags & 1;
			c.drop_last = (flags >> 1) & 1;
			c.num_samples = ns;
			c.seed = ns;
			if (n < cs && ns > n) {
				ab_sampler *s = NULL;
				ck_assert_int_eq(ab_sampler_create(&c, n, &s), AB_EINVAL);
				continue;
			}
			ab_sampler *s = make(&c, n);
			run r;
			collect(s, &c, 0, n, 0, &r);
			uint64_t want = c.drop_last ? ns / bs : ceil_div(ns, bs);
			ck_assert_msg(r.nbatches == want,
				      "cs=%lu p=%lu bs=%lu ns=%lu drop=%d: %lu batches, want %lu",
				      (unsigned long)cs, (unsigned long)p, (unsigned long)bs,
				      (unsigned long)ns, c.drop_last, (unsigned long)r.nbatches,
				      (unsigned long)want);
			if (want) {
				REQ_LE(r.nrows, want * bs);
				REQ_GT(r.nrows, (want - 1) * bs);
			}
			/* Within one pass over the mask no row repeats; over
			 * several passes a row appears at most once per pass. */
			uint64_t passes = ns <= n ? 1 : ceil_div(ns, n - n % cs);
			unsigned *cnt = row_counts(r.rows, r.nrows, 0, n);
			for (uint64_t k = 0; k < n; k++)
				REQ_LE(cnt[k], passes);
			free(cnt);
			/* All chunks full except the very last of the tiling. */
			for (size_t k = 0; k + 1 < r.nchunks; k++)
				REQ_EQ(r.chunks[k].stop - r.chunks[k].start, cs);
			run_free(&r);
			ab_sampler_destroy(s);
			configs++;
		}
	}
	REQ_GT(configs, 300);
}
END_TEST

START_TEST(test_num_samples_multiple_epochs)
{
	/* 96 rows in chunks of 8 (no short chunk): num_samples = k * 96 shows
	 * every row exactly k times, windows spanning the pass boundaries. */
	for (uint64_t k = 1; k <= 4; k++)
	for (int shuffle = 0; shuffle < 2; shuffle++)
	for (uint64_t p = 1; p <= 5; p++) {
		const uint64_t batches[] = { 1, 2, 8 * p };
		for (size_t bi = 0; bi < 3; bi++) {
			ab_sampler_config c = cfg_make(8, p, batches[bi]);
			c.shuffle = shuffle;
			c.num_samples = k * 96;
			ab_sampler *s = make(&c, 96);
			run r;
			collect(s, &c, 0, 96, 0, &r);
			REQ_EQ(r.nbatches, ceil_div(k * 96, batches[bi]));
			REQ_EQ(r.nrows, k * 96);
			unsigned *cnt = row_counts(r.rows, r.nrows, 0, 96);
			for (uint64_t row = 0; row < 96; row++)
				REQ_EQ(cnt[row], k);
			free(cnt);
			if (!shuffle)
				for (size_t q = 0; q < r.nrows; q++)
					REQ_EQ(r.rows[q], q % 96);
			run_free(&r);
			ab_sampler_destroy(s);
		}
	}

	/* With a short chunk: middle passes drop it, only the last keeps it.
	 * 10 rows in chunks of 4 (aligned pass = 8 rows), num_samples 20:
	 * passes = ceil(20/8) = 3 -> chunks 4,4 | 4,4 | 4,4,2. */
	ab_sampler_config c = cfg_make(4, 1, 4);
	c.num_samples = 20;
	ab_sampler *s = make(&c, 10);
	REQ_EQ(ab_sampler_nbatches(s), 5);
	REQ_EQ(ab_sampler_nwindows(s), 5);
	run r;
	collect(s, &c, 0, 10, 0, &r);
	REQ_EQ(r.nchunks, 5);
	for (size_t k = 0; k < 5; k++)
		REQ_EQ(r.chunks[k].start, (k % 2) * 4);
	run_free(&r);
	ab_sampler_destroy(s);
}
END_TEST

START_TEST(test_num_samples_truncation)
{
	/* 100 rows, windows of 16 rows (4 x 4), batches of 4 -> 4 per window.
	 * num_samples 30 -> ceil(30/4) = 8 batches = exactly two windows... */
	ab_sampler_config c = cfg_make(4, 4, 4);
	c.shuffle = 1;
	c.num_samples = 30;
	ab_sampler *s = make(&c, 100);
	REQ_EQ(ab_sampler_nbatches(s), 8);
	REQ_EQ(ab_sampler_nwindows(s), 2);
	ab_sampler_destroy(s);
	/* ... and 22 -> 6 batches: one full window and a window cut to 2. The
	 * cut window reads all its chunks and is the prefix of the uncut one. */
	c.num_samples = 22;
	s = make(&c, 100);
	REQ_EQ(ab_sampler_nbatches(s), 6);
	REQ_EQ(ab_sampler_nwindows(s), 2);
	ab_window cut, full;
	ck_assert_int_eq(ab_sampler_window(s, 1, &cut), 0);
	REQ_EQ(cut.nbatches, 2);
	REQ_EQ(cut.nchunks, 4);
	REQ_EQ(cut.nrows, 16);
	REQ_EQ(cut.batch_off[2], 8);
	c.num_samples = 0;
	ab_sampler *whole = make(&c, 100);
	ck_assert_int_eq(ab_sampler_window(whole, 1, &full), 0);
	ck_assert(memcmp(cut.chunks, full.chunks, 4 * sizeof *cut.chunks) == 0);
	ck_assert(memcmp(cut.perm, full.perm, 8 * sizeof *cut.perm) == 0);
	ab_window_free(&cut);
	ab_window_free(&full);
	ab_sampler_destroy(whole);
	ab_sampler_destroy(s);

	/* drop_last with num_samples below one batch: nothing at all. */
	c = cfg_make(4, 4, 4);
	c.drop_last = 1;
	c.num_samples = 3;
	s = make(&c, 100);
	REQ_EQ(ab_sampler_nwindows(s), 0);
	REQ_EQ(ab_sampler_nbatches(s), 0);
	ab_sampler_destroy(s);
}
END_TEST

/* -------------------------------------------------------------- replacement */

START_TEST(test_replacement)
{
	const uint64_t ns_list[] = { 0, 1, 5, 12, 50, 123 };
	const uint64_t n_list[] = { 10, 37, 100 };
	size_t configs = 0;
	for (size_t ni = 0; ni < 3; ni++)
	for (size_t ci = 0; ci < sizeof chunk_sizes / sizeof chunk_sizes[0]; ci++)
	for (uint64_t p = 1; p <= 3; p++) {
		uint64_t cs = chunk_sizes[ci];
		const uint64_t batches[] = { 1, 3, 4, cs * p };
		for (size_t bi = 0; bi < 4; bi++)
		for (int flags = 0; flags < 4; flags++)
		for (size_t si = 0; si < sizeof ns_list / sizeof ns_list[0]; si++) {
			uint64_t n = n_list[ni], bs = batches[bi];
			if ((cs * p) % bs != 0 || cs > n - 2)
				continue;
			ab_sampler_config c = cfg_make(cs, p, bs);
			c.replacement = 1;
			c.shuffle = flags & 1;
			c.drop_last = (flags >> 1) & 1;
			c.num_samples = ns_list[si];
			c.mask_start = 1;
			c.mask_stop = n - 1;
			c.seed = si * 100 + bi;
			uint64_t ns = c.num_samples ? c.num_samples : n - 2;
			ab_sampler *s = make(&c, n);
			run r;
			collect(s, &c, 1, n - 1, 0, &r);
			/* Chunks: chunk_size long except the remainder chunk,
			 * which exists only without drop_last and comes last. */
			uint64_t rem = ns % cs;
			for (size_t k = 0; k < r.nchunks; k++) {
				uint64_t len = r.chunks[k].stop - r.chunks[k].start;
				if (k == ns / cs && rem && !c.drop_last)
					REQ_EQ(len, rem);
				else
					REQ_EQ(len, cs);
			}
			uint64_t want = c.drop_last ? ns / bs : ceil_div(ns, bs);
			/* Available batches: with drop_last the remainder chunk is
			 * not drawn, so fewer rows than num_samples may exist. */
			uint64_t avail_rows = c.drop_last ? ns - rem : ns;
			if (c.drop_last && want * bs > avail_rows)
				REQ_LE(r.nbatches, want);
			else
				REQ_EQ(r.nbatches, want);
			REQ_LE(r.nrows, want * bs);
			run_free(&r);
			ab_sampler_destroy(s);
			configs++;
		}
	}
	REQ_GT(configs, 300);

	/* Starts are spread over the whole legal range [10, 60 - 5]. */
	ab_sampler_config c = cfg_make(5, 2, 5);
	c.replacement = 1;
	c.num_samples = 5000;
	c.mask_start = 10;
	c.mask_stop = 60;
	ab_sampler *s = make(&c, 100);
	REQ_EQ(ab_sampler_nbatches(s), 1000);
	run r;
	collect(s, &c, 10, 60, 0, &r);
	REQ_EQ(r.nchunks, 1000);
	int hit[46] = { 0 };
	for (size_t k = 0; k < r.nchunks; k++) {
		REQ_GE(r.chunks[k].start, 10);
		REQ_LE(r.chunks[k].start, 55);
		hit[r.chunks[k].start - 10] = 1;
	}
	for (int k = 0; k < 46; k++)
		ck_assert_msg(hit[k], "start %d never drawn", k + 10);
	run_free(&r);
	ab_sampler_destroy(s);

	/* A worked case: 7 samples in chunks of 4 with batches of 3 and
	 * drop_last: one chunk of 4 (the remainder 3 is not drawn), so only one
	 * batch of 3 exists although 7 / 3 = 2 were asked; the count reported is
	 * what is really yielded. */
	c = cfg_make(4, 3, 3);
	c.replacement = 1;
	c.drop_last = 1;
	c.num_samples = 7;
	s = make(&c, 20);
	REQ_EQ(ab_sampler_nbatches(s), 1);
	ab_sampler_destroy(s);
	/* Fewer samples than a chunk with drop_last: no chunk, no window. */
	c.num_samples = 3;
	s = make(&c, 20);
	REQ_EQ(ab_sampler_nwindows(s), 0);
	REQ_EQ(ab_sampler_nbatches(s), 0);
	ab_sampler_destroy(s);
	/* Without drop_last the remainder chunk is drawn. */
	c.drop_last = 0;
	s = make(&c, 20);
	REQ_EQ(ab_sampler_nbatches(s), 1);
	ab_window w;
	ck_assert_int_eq(ab_sampler_window(s, 0, &w), 0);
	REQ_EQ(w.nchunks, 1);
	REQ_EQ(w.nrows, 3);
	REQ_LE(w.chunks[0].stop, 20);
	ab_window_free(&w);
	ab_sampler_destroy(s);
}
END_TEST

/* -------------------------------------------------------------- distributed */

START_TEST(test_distributed)
{
	const uint64_t n_list[] = { 100, 103, 1000 };
	for (uint32_t ws = 2; ws <= 5; ws++)
	for (size_t ni = 0; ni < 3; ni++)
	for (int flags = 0; flags < 4; flags++) {
		const uint64_t batches[] = { 1, 3, 4 };
		for (size_t bi = 0; bi < 3; bi++) {
			uint64_t n = n_list[ni], bs = batches[bi];
			uint64_t per_rank = n / ws / bs * bs;
			unsigned *owner = calloc(n, sizeof *owner);
			ck_assert_ptr_nonnull(owner);
			uint64_t nb0 = 0;
			for (uint32_t rank = 0; rank < ws; rank++) {
				ab_sampler_config c = cfg_make(4, 3, bs);
				c.shuffle = flags & 1;
				c.drop_last = (flags >> 1) & 1;
				c.rank = rank;
				c.world_size = ws;
				c.mask_start = 5; /* replaced by the rank's slice */
				c.mask_stop = 9;
				ab_sampler *s = make(&c, n);
				run r;
				collect(s, &c, rank * per_rank, (rank + 1) * per_rank, 1, &r);
				if (rank == 0)
					nb0 = r.nbatches;
				REQ_EQ(r.nbatches, nb0);
				REQ_EQ(r.nbatches, per_rank / bs);
				REQ_EQ(r.nrows, per_rank);
				for (size_t k = 0; k < r.nrows; k++) {
					REQ_EQ(owner[r.rows[k]], 0);
					owner[r.rows[k]] = rank + 1;
				}
				run_free(&r);
				ab_sampler_destroy(s);
			}
			/* Disjoint, and together exactly the first ws*per_rank rows. */
			for (uint64_t row = 0; row < n; row++)
				REQ_EQ(owner[row] != 0, row < ws * per_rank);
			free(owner);
		}
	}
}
END_TEST

/* rank_shards rotate: for world sizes 2, 3, 4 over 8 epochs, each epoch the
 * ranks' rows are disjoint, inside the mask, equal in number (whole chunks:
 * floor(full chunks / world) each) with equal batch counts, and every row of
 * the mask is served within any 2 consecutive epochs. */
START_TEST(test_distributed_rotate)
{
	const uint64_t n_list[] = { 100, 103, 1000, 37 };
	for (uint32_t ws = 2; ws <= 4; ws++)
	for (size_t ni = 0; ni < 4; ni++)
	for (int flags = 0; flags < 8; flags++) {
		uint64_t n = n_list[ni], bs = (flags & 4) ? 3 : 4, cs = 4;
		uint64_t lo = (flags & 4) ? 2 : 0, hi = (flags & 4) ? n - 1 : n; /* a mask */
		uint64_t per_rank = (hi - lo) / cs / ws * cs;
		unsigned *prev = calloc(n, sizeof *prev), *cur = calloc(n, sizeof *cur);
		ck_assert_ptr_nonnull(prev);
		ck_assert_ptr_nonnull(cur);
		for (uint64_t epoch = 0; epoch < 8; epoch++) {
			memset(cur, 0, n * sizeof *cur);
			uint64_t nb0 = 0;
			for (uint32_t rank = 0; rank < ws; rank++) {
				ab_sampler_config c = cfg_make(cs, 3, bs);
				c.shuffle = flags & 1;
				c.drop_last = (flags >> 1) & 1;
				c.rank = rank;
				c.world_size = ws;
				c.rank_shards = 1;
				c.epoch = epoch;
				c.mask_start = lo;
				c.mask_stop = (flags & 4) ? hi : 0;
				ab_sampler *s = make(&c, n);
				run r;
				collect(s, &c, lo, hi, 1, &r);
				if (rank == 0)
					nb0 = r.nbatches;
				REQ_EQ(r.nbatches, nb0);
				REQ_EQ(r.nbatches, c.drop_last ? per_rank / bs : (per_rank + bs - 1) / bs);
				REQ_EQ(r.nrows, c.drop_last ? per_rank / bs * bs : per_rank);
				REQ_EQ(r.read_rows, per_rank);
				for (size_t k = 0; k < r.nchunks; k++)
					REQ_EQ(r.chunks[k].stop - r.chunks[k].start, cs);
				for (size_t k = 0; k < r.nrows; k++) {
					REQ_EQ(cur[r.rows[k]], 0);
					cur[r.rows[k]] = rank + 1;
				}
				/* the rows read but left out by drop_last belong to the rank too */
				for (size_t k = 0; k < r.nunused; k++) {
					REQ_EQ(cur[r.unused[k]], 0);
					cur[r.unused[k]] = rank + 1;
				}
				run_free(&r);
				ab_sampler_destroy(s);
			}
			uint64_t served = 0;
			for (uint64_t row = 0; row < n; row++) {
				if (row < lo || row >= hi)
					REQ_EQ(cur[row], 0);
				served += cur[row] != 0;
				/* bound: served in this epoch or the one before */
				if (epoch && row >= lo && row < hi)
					REQ(cur[row] || prev[row]);
			}
			REQ_EQ(served, ws * per_rank);
			unsigned *t = prev;
			prev = cur;
			cur = t;
		}
		free(prev);
		free(cur);
	}
	/* Errors: too few full chunks for the ranks; combinations refused. */
	ab_sampler_config c = cfg_make(4, 3, 4);
	c.world_size = 3;
	c.rank_shards = 1;
	ab_sampler *s = NULL;
	ck_assert_int_eq(ab_sampler_create(&c, 11, &s), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "2 full chunks of 4 rows, fewer than world_size (3)"));
	ck_assert_int_eq(ab_sampler_create(&c, 12, &s), 0);
	ab_sampler_destroy(s);
	c.replacement = 1;
	ck_assert_int_eq(ab_sampler_create(&c, 120, &s), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "replacement"));
	c.replacement = 0;
	c.num_samples = 50;
	ck_assert_int_eq(ab_sampler_create(&c, 120, &s), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "num_samples"));
	c.num_samples = 0;
	c.rank_shards = 2;
	ck_assert_int_eq(ab_sampler_create(&c, 120, &s), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "rank_shards"));
}
END_TEST

START_TEST(test_distributed_streams)
{
	/* Ranks shuffle independently: the chunk order relative to each
	 * rank's slice differs between ranks. */
	run r[2];
	uint64_t per_rank = 500;
	for (uint32_t rank = 0; rank < 2; rank++) {
		ab_sampler_config c = cfg_make(4, 3, 4);
		c.shuffle = 1;
		c.rank = rank;
		c.world_size = 2;
		ab_sampler *s = make(&c, 1000);
		collect(s, &c, rank * per_rank, (rank + 1) * per_rank, 1, &r[rank]);
		ab_sampler_destroy(s);
	}
	REQ_EQ(r[0].nchunks, r[1].nchunks);
	int same = 1;
	for (size_t k = 0; k < r[0].nchunks; k++)
		same &= r[0].chunks[k].start == r[1].chunks[k].start - per_rank;
	ck_assert(!same);
	run_free(&r[0]);
	run_free(&r[1]);

	/* world_size 1 is not distributed: the config's mask holds. */
	ab_sampler_config c = cfg_make(4, 3, 4);
	c.shuffle = 1;
	c.mask_start = 3;
	c.mask_stop = 90;
	run a, b;
	ab_sampler *s = make(&c, 100);
	collect(s, &c, 3, 90, 1, &a);
	ab_sampler_destroy(s);
	c.world_size = 1;
	s = make(&c, 100);
	collect(s, &c, 3, 90, 1, &b);
	ab_sampler_destroy(s);
	ck_assert(chunks_equal(&a, &b));
	REQ_EQ(a.nrows, 87);
	ck_assert(memcmp(a.rows, b.rows, a.nrows * sizeof *a.rows) == 0);
	run_free(&a);
	run_free(&b);
}
END_TEST

/* --------------------------------------------------------------- validation */

static void expect_einval(const ab_sampler_config *c, uint64_t n_obs, const char *msg)
{
	ab_sampler *s = (ab_sampler *)1;
	int rc = ab_sampler_create(c, n_obs, &s);
	ck_assert_msg(rc == AB_EINVAL, "expected AB_EINVAL for \"%s\", got %d", msg, rc);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(ab_last_error(), msg) != NULL, "message \"%s\" lacks \"%s\"",
		      ab_last_error(), msg);
}

START_TEST(test_validation)
{
	ab_sampler_config c;

	c = cfg_make(0, 2, 1);
	expect_einval(&c, 100, "chunk_size must be >= 1, got 0");
	c = cfg_make(4, 0, 1);
	expect_einval(&c, 100, "preload_nchunks must be >= 1, got 0");
	c = cfg_make(4, 2, 0);
	expect_einval(&c, 100, "batch_size must be >= 1, got 0");
	c = cfg_make(4, 2, 9);
	expect_einval(&c, 100, "batch_size cannot exceed chunk_size * preload_nchunks "
			       "(got batch_size=9, max 8)");
	c = cfg_make(4, 2, 3);
	expect_einval(&c, 100, "chunk_size * preload_nchunks must be divisible by batch_size "
			       "(8 % 3 = 2)");
	c = cfg_make(UINT64_C(1) << 40, UINT64_C(1) << 30, 1);
	expect_einval(&c, 100, "chunk_size * preload_nchunks overflows");

	c = cfg_make(4, 2, 1);
	c.mask_stop = 101;
	expect_einval(&c, 100, "mask stop (101) exceeds n_obs (100)");
	c.mask_start = 50;
	c.mask_stop = 50;
	expect_einval(&c, 100, "mask start (50) must be < mask stop (50)");
	c.mask_start = 60;
	expect_einval(&c, 100, "mask start (60) must be < mask stop (50)");
	c.mask_stop = 0;
	c.mask_start = 100;
	expect_einval(&c, 100, "mask start (100) must be < mask stop (100)");
	c.mask_start = 0;
	expect_einval(&c, 0, "mask start (0) must be < mask stop (0)");

	c = cfg_make(8, 2, 1);
	c.replacement = 1;
	c.mask_start = 10;
	c.mask_stop = 17;
	expect_einval(&c, 100, "observation range (7) is smaller than chunk_size (8)");

	c = cfg_make(4, 2, 1);
	c.rank = 1;
	expect_einval(&c, 100, "rank (1) must be < world_size (1)");
	c.rank = 3;
	c.world_size = 3;
	expect_einval(&c, 100, "rank (3) must be < world_size (3)");
	c = cfg_make(4, 2, 4);
	c.world_size = 4;
	expect_einval(&c, 15, "n_obs (15) / world_size (4) leaves no whole batch");

	/* Tiling epochs needs at least one full chunk in the range. */
	c = cfg_make(16, 2, 1);
	c.num_samples = 20;
	expect_einval(&c, 10, "num_samples (20) exceeds the observation range (10)");

	/* Windows are addressed with uint32 positions. */
	c = cfg_make(UINT64_C(1) << 32, 1, 1);
	expect_einval(&c, UINT64_C(1) << 33, "a window of 4294967296 rows exceeds");
	c = cfg_make(UINT64_C(1) << 33, 1, 1);
	expect_einval(&c, UINT64_C(1) << 33, "a window of 8589934592 rows exceeds");
	/* A huge chunk_size is fine when the data is small. */
	c = cfg_make(UINT64_C(1) << 33, 1, 1);
	ab_sampler *s = make(&c, 10);
	REQ_EQ(ab_sampler_nbatches(s), 10);
	ab_sampler_destroy(s);

	/* Tiled epochs whose row count overflows. */
	c = cfg_make(4, 2, 1);
	c.num_samples = UINT64_MAX;
	expect_einval(&c, UINT64_C(1) << 62, "num_samples (18446744073709551615) is too large");

	ck_assert_int_eq(ab_sampler_create(&c, 100, NULL), AB_EINVAL);
	s = (ab_sampler *)1;
	ck_assert_int_eq(ab_sampler_create(NULL, 100, &s), AB_EINVAL);
	ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_defaults_like_python)
{
	/* The Python defaults (chunk 512, preload 32, batch 1) on a small
	 * store: one window holding everything. */
	ab_sampler_config c = cfg_make(512, 32, 1);
	ab_sampler *s = make(&c, 1000);
	REQ_EQ(ab_sampler_nwindows(s), 1);
	REQ_EQ(ab_sampler_nbatches(s), 1000);
	ab_sampler_destroy(s);
	/* Big enough for several windows: 16384 rows per window. */
	c.batch_size = 64;
	c.shuffle = 1;
	s = make(&c, 100000);
	REQ_EQ(ab_sampler_nwindows(s), 7);
	REQ_EQ(ab_sampler_nbatches(s), ceil_div(100000, 64));
	run r;
	collect(s, &c, 0, 100000, 1, &r);
	unsigned *cnt = row_counts(r.rows, r.nrows, 0, 100000);
	for (uint64_t k = 0; k < 100000; k++)
		REQ_EQ(cnt[k], 1);
	free(cnt);
	run_free(&r);
	ab_sampler_destroy(s);
}
END_TEST

/* ------------------------------------------------------ rank from environment */

static const char *const env_names[] = {
	"RANK", "WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
	"SLURM_PROCID", "SLURM_NTASKS",
};

static void env_clear(void)
{
	for (size_t k = 0; k < sizeof env_names / sizeof env_names[0]; k++)
		unsetenv(env_names[k]);
}

static void env_pair(const char *rn, const char *rv, const char *wn, const char *wv)
{
	ck_assert_int_eq(setenv(rn, rv, 1), 0);
	ck_assert_int_eq(setenv(wn, wv, 1), 0);
}

static void expect_env(int want, uint32_t rank, uint32_t ws)
{
	uint32_t r = 777, w = 777;
	int rc = ab_sampler_rank_from_env(&r, &w);
	ck_assert_int_eq(rc, want);
	if (want == 1) {
		REQ_EQ(r, rank);
		REQ_EQ(w, ws);
	} else if (want < 0) {
		/* Malformed: an error, but the outputs say "rank 0 of 1". */
		REQ_EQ(r, 0);
		REQ_EQ(w, 1);
	} else {
		REQ_EQ(r, 777);
		REQ_EQ(w, 777);
	}
}

START_TEST(test_rank_from_env)
{
	env_clear();
	expect_env(0, 0, 0);

	/* Each convention alone. */
	env_pair("RANK", "2", "WORLD_SIZE", "4");
	expect_env(1, 2, 4);
	env_clear();
	env_pair("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "3");
	expect_env(1, 0, 3);
	env_clear();
	env_pair("SLURM_PROCID", "7", "SLURM_NTASKS", "8");
	expect_env(1, 7, 8);

	/* Precedence: torchrun, then Open MPI, then Slurm. */
	env_pair("OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2");
	env_pair("RANK", "3", "WORLD_SIZE", "5");
	expect_env(1, 3, 5);
	unsetenv("RANK");
	unsetenv("WORLD_SIZE");
	expect_env(1, 1, 2);
	unsetenv("OMPI_COMM_WORLD_RANK");
	/* Half a pair, or an empty value, is a broken launch: an error naming
	 * the variables, not a silent fall-through to the next convention or
	 * to a single process. */
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not"));
	env_clear();
	ck_assert_int_eq(setenv("RANK", "1", 1), 0);
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "RANK is set but WORLD_SIZE is not"));
	ck_assert_int_eq(setenv("WORLD_SIZE", "", 1), 0);
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "WORLD_SIZE is set but empty"));
	env_pair("RANK", "", "WORLD_SIZE", "2");
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "RANK is set but empty"));
	env_clear();
	ck_assert_int_eq(setenv("SLURM_PROCID", "0", 1), 0);
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "SLURM_PROCID is set but SLURM_NTASKS is not"));
	env_clear();
	ck_assert_int_eq(setenv("OMPI_COMM_WORLD_RANK", "0", 1), 0);
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not"));
	env_clear();

	/* NULL outputs are allowed. */
	env_pair("RANK", "0", "WORLD_SIZE", "1");
	ck_assert_int_eq(ab_sampler_rank_from_env(NULL, NULL), 1);

	/* Strict parsing. */
	const char *bad_rank[] = { "abc", "-1", "+1", " 1", "1 ", "1x", "0x1", "1.0",
				   "4294967296", "99999999999999999999" };
	for (size_t k = 0; k < sizeof bad_rank / sizeof bad_rank[0]; k++) {
		env_pair("RANK", bad_rank[k], "WORLD_SIZE", "4294967295");
		expect_env(AB_EINVAL, 0, 0);
		ck_assert_ptr_nonnull(strstr(ab_last_error(), "RANK"));
	}
	env_pair("RANK", "4294967294", "WORLD_SIZE", "4294967295");
	expect_env(1, 4294967294u, 4294967295u);
	env_pair("RANK", "0", "WORLD_SIZE", "0");
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "WORLD_SIZE"));
	env_pair("RANK", "0", "WORLD_SIZE", "2 ");
	expect_env(AB_EINVAL, 0, 0);
	env_pair("RANK", "4", "WORLD_SIZE", "4");
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "RANK (4) must be < WORLD_SIZE (4)"));
	env_clear();
	env_pair("SLURM_PROCID", "x", "SLURM_NTASKS", "2");
	expect_env(AB_EINVAL, 0, 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "SLURM_PROCID"));
	env_clear();
}
END_TEST

/* ------------------------------------------------------------------- main */

/* ------------------------------------------------------ class sampling */

static int32_t class_codes[400];

static void class_setup(void)
{
	/* runs: [0,100) class 0, [100,300) class 1, [300,350) class 2,
	 * [350,400) class 0 */
	for (int i = 0; i < 400; i++)
		class_codes[i] = i < 100 ? 0 : i < 300 ? 1 : i < 350 ? 2 : 0;
}

static ab_sampler *class_sampler(uint64_t chunk, uint64_t preload, uint64_t batch, uint64_t nsamp,
				 const double *w, int drop, uint64_t seed, int *rc)
{
	ab_sampler_config c;
	memset(&c, 0, sizeof c);
	c.chunk_size = chunk;
	c.preload_nchunks = preload;
	c.batch_size = batch;
	c.num_samples = nsamp;
	c.drop_last = drop;
	c.seed = seed;
	c.classes = class_codes;
	c.n_classes = 3;
	c.class_weights = w;
	static const char *const labels[] = { "T cell", "B cell", "NK cell" };
	c.class_labels = labels;
	ab_sampler *s = NULL;
	*rc = ab_sampler_create(&c, 400, &s);
	return s;
}

START_TEST(test_class_batches_single_class)
{
	class_setup();
	const uint64_t cfgs[][4] = { { 16, 4, 16, 1000 }, { 16, 4, 8, 777 }, { 10, 6, 12, 500 }, { 20, 3, 60, 333 } };
	for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++) {
		int rc;
		ab_sampler *s = class_sampler(cfgs[t][0], cfgs[t][1], cfgs[t][2], cfgs[t][3], NULL, 0, 3, &rc);
		ck_assert_int_eq(rc, 0);
		uint64_t total = 0, nb = 0;
		int seen[3] = { 0, 0, 0 };
		for (size_t i = 0; i < ab_sampler_nwindows(s); i++) {
			ab_window w;
			ck_assert_int_eq(ab_sampler_window(s, i, &w), 0);
			/* window-local row -> global row */
			uint64_t *g = malloc(w.nrows * sizeof *g);
			uint64_t k = 0;
			for (size_t c = 0; c < w.nchunks; c++) {
				ck_assert_uint_le(w.chunks[c].stop, 400);
				for (uint64_t r = w.chunks[c].start; r < w.chunks[c].stop; r++)
					g[k++] = r;
			}
			for (size_t b = 0; b < w.nbatches; b++) {
				int32_t cls = class_codes[g[w.perm[w.batch_off[b]]]];
				for (size_t j = w.batch_off[b]; j < w.batch_off[b + 1]; j++)
					ck_assert_int_eq(class_codes[g[w.perm[j]]], cls);
				seen[cls] = 1;
				total += w.batch_off[b + 1] - w.batch_off[b];
				nb++;
			}
			free(g);
			ab_window_free(&w);
		}
		ck_assert_uint_eq(total, cfgs[t][3]);
		ck_assert_uint_eq(nb, (cfgs[t][3] + cfgs[t][2] - 1) / cfgs[t][2]);
		ck_assert_uint_eq(nb, ab_sampler_nbatches(s));
		ck_assert(seen[0] && seen[1] && seen[2]);
		ab_sampler_destroy(s);
	}
}
END_TEST

START_TEST(test_class_weights_and_errors)
{
	class_setup();
	int rc;
	const double w[3] = { 0, 1, 3 };
	ab_sampler *s = class_sampler(16, 2, 16, 3200, w, 1, 9, &rc);
	ck_assert_int_eq(rc, 0);
	uint64_t per[3] = { 0, 0, 0 };
	for (size_t i = 0; i < ab_sampler_nwindows(s); i++) {
		ab_window win;
		ck_assert_int_eq(ab_sampler_window(s, i, &win), 0);
		for (size_t c = 0; c < win.nchunks; c++)
			per[class_codes[win.chunks[c].start]] += win.chunks[c].stop - win.chunks[c].start;
		ab_window_free(&win);
	}
	ck_assert_uint_eq(per[0], 0); /* weight 0 excludes */
	/* class 2 drawn about three times as often as class 1 */
	ck_assert(per[2] > 2 * per[1] && per[2] < 4 * per[1]);
	ab_sampler_destroy(s);

	/* a run shorter than chunk_size: the class is named */
	s = class_sampler(64, 2, 16, 100, NULL, 0, 1, &rc);
	ck_assert_int_eq(rc, AB_EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "NK cell"));
	/* ... unless that class is excluded */
	const double w2[3] = { 0, 1, 0 }; /* class 0 also has a 50-row run */
	s = class_sampler(64, 2, 16, 100, w2, 0, 1, &rc);
	ck_assert_int_eq(rc, 0);
	ab_sampler_destroy(s);
	/* missing codes are refused */
	class_codes[5] = -1;
	s = class_sampler(16, 2, 16, 100, NULL, 0, 1, &rc);
	ck_assert_int_eq(rc, AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "missing"));
	class_setup();
	/* determinism */
	ab_sampler *a = class_sampler(16, 4, 8, 500, NULL, 0, 5, &rc), *b = class_sampler(16, 4, 8, 500, NULL, 0, 5, &rc);
	for (size_t i = 0; i < ab_sampler_nwindows(a); i++) {
		ab_window x, y;
		ck_assert_int_eq(ab_sampler_window(a, i, &x), 0);
		ck_assert_int_eq(ab_sampler_window(b, i, &y), 0);
		ck_assert_uint_eq(x.nrows, y.nrows);
		ck_assert_mem_eq(x.chunks, y.chunks, x.nchunks * sizeof *x.chunks);
		ck_assert_mem_eq(x.perm, y.perm, x.batch_off[x.nbatches] * sizeof *x.perm);
		ab_window_free(&x);
		ab_window_free(&y);
	}
	ab_sampler_destroy(a);
	ab_sampler_destroy(b);
}
END_TEST

/* Weights that are not finite, negative, or whose sum overflows are refused
 * with a message naming the class; before, an infinite weight made every draw
 * land on the last class, and on a weight-0 last class (no runs) the draw read
 * out of bounds. */
START_TEST(test_class_weights_validated)
{
	class_setup();
	int rc;
	const double bad[][3] = { { INFINITY, 1, 0 }, { 1, NAN, 1 }, { 1, -1, 1 }, { 1e308, 1e308, 0 },
				  { 0, 0, 0 }, { 1, 1, -INFINITY } };
	const char *want[] = { "'T cell' is inf", "'B cell' is nan", "'B cell' is -1", "sum to inf",
			       "sum to 0", "'NK cell' is -inf" };
	for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
		ab_sampler *s = class_sampler(16, 2, 16, 800, bad[t], 0, 3, &rc);
		ck_assert_msg(rc == AB_EINVAL, "weights %zu: rc %d", t, rc);
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(ab_last_error(), want[t]) != NULL, "weights %zu: '%s' lacks '%s'", t,
			      ab_last_error(), want[t]);
	}
	/* A weight-0 class (here the last one) is never drawn, whatever the
	 * seed; the others are. */
	const double w[3] = { 1, 1e300, 0 };
	for (uint64_t seed = 0; seed < 20; seed++) {
		ab_sampler *s = class_sampler(16, 2, 16, 800, w, 0, seed, &rc);
		ck_assert_int_eq(rc, 0);
		for (size_t i = 0; i < ab_sampler_nwindows(s); i++) {
			ab_window win;
			ck_assert_int_eq(ab_sampler_window(s, i, &win), 0);
			for (size_t c = 0; c < win.nchunks; c++) {
				REQ_LE(win.chunks[c].stop, 400);
				REQ(class_codes[win.chunks[c].start] != 2);
				REQ_EQ(class_codes[win.chunks[c].start], class_codes[win.chunks[c].stop - 1]);
			}
			ab_window_free(&win);
		}
		ab_sampler_destroy(s);
	}
}
END_TEST

/* A batch size the window does not take: the message says which batch sizes
 * and which preload_nchunks values would work, found here by brute force (the
 * divisors of chunk*preload nearest the batch size; the multiples of p with
 * chunk*p % batch == 0 nearest the preload). */
START_TEST(test_batch_size_hints)
{
	const uint64_t cases[][3] = { { 512, 32, 100 }, { 4, 2, 3 }, { 4, 2, 9 }, { 20, 2, 7 }, { 10, 64, 1000 },
				      { 16, 3, 5 }, { 1, 97, 50 }, { 6, 10, 45 }, { 512, 32, 20000 } };
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		uint64_t cs = cases[t][0], pn = cases[t][1], b = cases[t][2], w = cs * pn;
		uint64_t below = 0, above = 0;
		for (uint64_t d = 1; d <= w; d++) {
			if (w % d)
				continue;
			if (d < b)
				below = d;
			else if (d > b && !above)
				above = d;
		}
		uint64_t pl = 0, pu = 0;
		for (uint64_t q = 1; q <= 100000 && !pu; q++) {
			if (cs * q % b)
				continue;
			if (q <= pn)
				pl = q;
			else
				pu = q;
		}
		char want[256];
		int len;
		if (below && above)
			len = snprintf(want, sizeof want, "; batch sizes that work: %llu or %llu",
				       (unsigned long long)below, (unsigned long long)above);
		else
			len = snprintf(want, sizeof want, "; a batch size that works: %llu",
				       (unsigned long long)(below ? below : above));
		if (pl)
			snprintf(want + len, sizeof want - (size_t)len, "; or keep batch_size %llu with preload_nchunks "
				 "%llu or %llu", (unsigned long long)b, (unsigned long long)pl, (unsigned long long)pu);
		else
			snprintf(want + len, sizeof want - (size_t)len, "; or keep batch_size %llu with preload_nchunks "
				 "%llu", (unsigned long long)b, (unsigned long long)pu);
		ab_sampler_config c = cfg_make(cs, pn, b);
		ab_sampler *s = NULL;
		ck_assert_int_eq(ab_sampler_create(&c, 100000, &s), AB_EINVAL);
		const char *msg = ab_last_error();
		size_t ml = strlen(msg), wl = strlen(want);
		ck_assert_msg(ml >= wl && strcmp(msg + ml - wl, want) == 0, "case %zu: '%s' does not end with '%s'", t,
			      msg, want);
		/* and the values offered do work */
		ab_sampler_config ok = cfg_make(cs, pn, below ? below : above);
		ck_assert_int_eq(ab_sampler_create(&ok, 100000, &s), 0);
		ab_sampler_destroy(s);
		ok = cfg_make(cs, pl ? pl : pu, b);
		ck_assert_int_eq(ab_sampler_create(&ok, 100000, &s), 0);
		ab_sampler_destroy(s);
	}
}
END_TEST

/* The loader's rank settings through the public API: -1 reads the
 * environment, other negative values and unknown rank_shards are refused at
 * create; a world size without a rank is refused at start; rotate shares of
 * in-memory rows are disjoint and equal; class weights are checked. */
START_TEST(test_loader_rank_config)
{
	static float data[100];
	const uint64_t shape[2] = { 100, 1 };
	ab_loader_config c;
	ab_loader *ld = NULL;
	env_clear();
	ab_loader_config_init(&c);
	c.rank = -2;
	ck_assert_int_eq(ab_loader_create(&c, &ld), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "rank (-2) must be >= 0, or -1 for the environment"));
	ab_loader_config_init(&c);
	c.world_size = -3;
	ck_assert_int_eq(ab_loader_create(&c, &ld), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "world_size (-3)"));
	ab_loader_config_init(&c);
	c.rank_shards = (ab_rank_shards)5;
	ck_assert_int_eq(ab_loader_create(&c, &ld), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "rank_shards (5)"));

	/* world_size 2, rank from the environment, none there */
	ab_loader_config_init(&c);
	c.chunk_size = 10;
	c.preload_nchunks = 2;
	c.batch_size = 5;
	c.world_size = 2;
	ck_assert_int_eq(ab_loader_create(&c, &ld), 0);
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, data, AB_DT_FLOAT32, 2, shape), 0);
	uint64_t nb = 0;
	ck_assert_int_eq(ab_loader_nbatches(ld, &nb), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "world_size is 2 but no rank is given"));
	ab_loader_destroy(ld);

	/* half an environment pair reaches the loader as an error */
	ck_assert_int_eq(setenv("RANK", "0", 1), 0);
	ab_loader_config_init(&c);
	ck_assert_int_eq(ab_loader_create(&c, &ld), 0);
	ck_assert_int_eq(ab_loader_add_dense_memory(ld, data, AB_DT_FLOAT32, 2, shape), 0);
	ck_assert_int_eq(ab_loader_nbatches(ld, &nb), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "RANK is set but WORLD_SIZE is not"));
	ab_loader_destroy(ld);
	env_clear();

	/* rotate through the loader: 3 ranks over 100 rows in chunks of 10
	 * get 3 chunks each, disjoint, every row within 2 epochs */
	for (uint64_t epoch = 0; epoch < 4; epoch++) {
		unsigned char seen[100] = { 0 };
		for (int rank = 0; rank < 3; rank++) {
			ab_loader_config_init(&c);
			c.chunk_size = 10;
			c.preload_nchunks = 2;
			c.batch_size = 5;
			c.rank = rank;
			c.world_size = 3;
			c.shuffle = 1;
			c.rank_shards = AB_RANK_SHARDS_ROTATE;
			c.threads = 1;
			ck_assert_int_eq(ab_loader_create(&c, &ld), 0);
			ck_assert_int_eq(ab_loader_add_dense_memory(ld, data, AB_DT_FLOAT32, 2, shape), 0);
			ck_assert_int_eq(ab_loader_start(ld, epoch), 0);
			ab_batch *b;
			uint64_t rows = 0;
			int rc;
			while ((rc = ab_loader_next(ld, &b)) == 0) {
				ab_batch_view v;
				ab_batch_get_view(b, &v);
				for (uint64_t k = 0; k < v.nrows; k++) {
					REQ_LT(v.rows[k], 100);
					REQ_EQ(seen[v.rows[k]], 0);
					seen[v.rows[k]] = 1;
				}
				rows += v.nrows;
				ab_batch_release(b);
			}
			ck_assert_int_eq(rc, AB_END);
			REQ_EQ(rows, 30);
			ab_loader_destroy(ld);
		}
	}

	/* class weights through the loader API */
	ck_assert_int_eq(ab_loader_create(NULL, &ld), 0);
	const double bad[2] = { INFINITY, 1 };
	ck_assert_int_eq(ab_loader_set_class_column(ld, "ct", bad, 2), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "class weight 0 is inf"));
	const char *lab[1] = { "T cell" };
	ck_assert_int_eq(ab_loader_set_class_weights_by_label(ld, lab, bad + 1, 1, NULL), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "need a class column"));
	ck_assert_int_eq(ab_loader_set_class_column(ld, "ct", NULL, 0), 0);
	ck_assert_int_eq(ab_loader_set_class_weights_by_label(ld, lab, bad, 1, NULL), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "class weight of 'T cell' is inf"));
	const double nan_rest = NAN;
	ck_assert_int_eq(ab_loader_set_class_weights_by_label(ld, lab, bad + 1, 1, &nan_rest), AB_EINVAL);
	ck_assert_int_eq(ab_loader_set_class_weights_by_label(ld, lab, bad + 1, 1, NULL), 0);
	ab_loader_destroy(ld);
}
END_TEST

static Suite *sampler_suite(void)
{
	Suite *s = suite_create("sampler");
	TCase *t = tcase_create("epoch");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_epoch_coverage);
	tcase_add_test(t, test_sequential_layout);
	tcase_add_test(t, test_window_errors);
	tcase_add_test(t, test_defaults_like_python);
	suite_add_tcase(s, t);
	t = tcase_create("shuffle");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_shuffle_changes_order);
	tcase_add_test(t, test_incomplete_chunk_last);
	tcase_add_test(t, test_determinism_any_order);
	tcase_add_test(t, test_threads);
	suite_add_tcase(s, t);
	t = tcase_create("num_samples");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_num_samples);
	tcase_add_test(t, test_num_samples_multiple_epochs);
	tcase_add_test(t, test_num_samples_truncation);
	tcase_add_test(t, test_replacement);
	suite_add_tcase(s, t);
	t = tcase_create("distributed");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_distributed);
	tcase_add_test(t, test_distributed_streams);
	tcase_add_test(t, test_distributed_rotate);
	tcase_add_test(t, test_rank_from_env);
	tcase_add_test(t, test_loader_rank_config);
	suite_add_tcase(s, t);
	t = tcase_create("validation");
	tcase_add_test(t, test_validation);
	tcase_add_test(t, test_batch_size_hints);
	suite_add_tcase(s, t);
	t = tcase_create("class");
	tcase_add_test(t, test_class_batches_single_class);
	tcase_add_test(t, test_class_weights_and_errors);
	tcase_add_test(t, test_class_weights_validated);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sampler_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
