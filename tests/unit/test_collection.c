/* test_collection.c - the collection writer's public behaviour
 * (ab_collection_write): every input row lands in the collection exactly
 * once with its values, the summary and the progress figures say what was
 * done, notes reach the note callback, a stop asked by the progress callback
 * leaves nothing behind, and bad arguments are refused. The inputs are
 * AnnData stores written by python3-anndata (the conformance fixtures
 * ad_csr and ad_dense); what the output holds is checked by reading it back
 * with the library's readers, row by row against the inputs. (That anndata
 * and zarrita read the collections is tests/writers' part.) */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annbatch.h"

static char dir[256], csr_in[512], dense_in[512];

static void setup(void)
{
	const char *fx = getenv("AB_FIXTURES");
	ck_assert_msg(fx != NULL, "AB_FIXTURES is not set (make check sets it)");
	snprintf(csr_in, sizeof csr_in, "%s/conformance/stores/ad_csr", fx);
	snprintf(dense_in, sizeof dense_in, "%s/conformance/stores/ad_dense", fx);
	snprintf(dir, sizeof dir, "/tmp/ab_coll_%d", (int)getpid());
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* One number per row that changes with any value or column: the sum of
 * value * (column + 1) and of value^2, rounded (inputs are small counts). */
static double row_key(const int64_t *ix, const float *v, int64_t a, int64_t b)
{
	double s = 0, q = 0;
	for (int64_t k = a; k < b; k++) {
		s += (double)v[k] * (double)(ix[k] + 1);
		q += (double)v[k] * (double)v[k] * (double)(ix[k] % 7 + 1);
	}
	return s * 1e6 + q;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The row keys of every row of X (CSR float32 or dense float32) of an
 * AnnData, appended to keys[*n...]. */
static void add_keys(ab_anndata *ad, double *keys, uint64_t *n)
{
	ab_anndata_info ai;
	ck_assert_int_eq(ab_anndata_get_info(ad, &ai), 0);
	ck_assert_int_eq(ai.x_dtype, AB_DT_FLOAT32);
	if (ai.x_kind == AB_X_CSR) {
		uint64_t nnz;
		ck_assert_int_eq(ab_anndata_x_nnz(ad, 0, ai.n_obs, &nnz), 0);
		int64_t *ip = malloc((ai.n_obs + 1) * 8), *ix = malloc((nnz + 1) * 8);
		float *v = malloc((nnz + 1) * 4);
		ck_assert_int_eq(ab_anndata_x_read_csr(ad, 0, ai.n_obs, ip, ix, v), 0);
		for (uint64_t r = 0; r < ai.n_obs; r++)
			keys[(*n)++] = row_key(ix, v, ip[r], ip[r + 1]);
		free(ip);
		free(ix);
		free(v);
	} else {
		float *x = malloc(ai.n_obs * ai.n_vars * 4 + 4);
		int64_t *ix = malloc(ai.n_vars * 8 + 8);
		for (uint64_t j = 0; j < ai.n_vars; j++)
			ix[j] = (int64_t)j;
		ck_assert_int_eq(ab_anndata_x_read_dense(ad, 0, ai.n_obs, x, ai.n_obs * ai.n_vars * 4), 0);
		for (uint64_t r = 0; r < ai.n_obs; r++) {
			/* the dense row as CSR: its non-zeros only */
			double s = 0, q = 0;
			for (uint64_t j = 0; j < ai.n_vars; j++) {
				float f = x[r * ai.n_vars + j];
				s += (double)f * (double)(j + 1);
				q += (double)f * (double)f * (double)(j % 7 + 1);
			}
			keys[(*n)++] = s * 1e6 + q;
		}
		free(x);
		free(ix);
	}
}

typedef struct seen {
	int notes, progress_calls, finals, stop_after, stop_on_final;
	char first_note[512];
	ab_collection_progress last;
} seen;

static void on_note(const char *msg, void *ctx)
{
	seen *s = ctx;
	if (!s->notes++)
		snprintf(s->first_note, sizeof s->first_note, "%s", msg);
}

static int on_progress(const ab_collection_progress *p, void *ctx)
{
	seen *s = ctx;
	s->progress_calls++;
	s->finals += p->final;
	ck_assert_uint_le(p->rows_done, p->total_rows);
	s->last = *p;
	if (s->stop_on_final && p->final)
		return 1;
	return s->stop_after && s->progress_calls >= s->stop_after;
}

/* Two inputs, the same store twice: every row twice, its obs names made
 * unique (a note), the summary and the final progress report agree. */
START_TEST(test_rows_once_each)
{
	char out[300];
	snprintf(out, sizeof out, "%s/c.zarr", dir);
	const char *in[2] = { csr_in, csr_in };
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	cfg.dataset_rows = 7;
	cfg.shuffle_chunk_size = 3;
	cfg.seed = 5;
	seen s = { 0 };
	cfg.note = on_note;
	cfg.progress = on_progress;
	cfg.ctx = &s;
	ab_collection_summary sum;
	ck_assert_msg(ab_collection_write(out, in, 2, &cfg, &sum) == 0, "%s", ab_last_error());

	ab_anndata *src;
	ck_assert_int_eq(ab_anndata_open_path(csr_in, &src), 0);
	ab_anndata_info si;
	ab_anndata_get_info(src, &si);
	double *want = malloc(2 * si.n_obs * sizeof *want), *got = malloc(2 * si.n_obs * sizeof *got);
	uint64_t nw = 0, ng = 0;
	add_keys(src, want, &nw);
	add_keys(src, want, &nw);
	ab_anndata_close(src);

	ck_assert_uint_eq(sum.rows, 2 * si.n_obs);
	ck_assert_uint_eq(sum.n_vars, si.n_vars);
	ck_assert_int_eq(sum.x_kind, AB_X_CSR);
	ck_assert_int_eq(sum.x_dtype, AB_DT_FLOAT32);
	ck_assert_uint_eq(sum.first_dataset, 0);
	ck_assert_uint_eq(sum.datasets_written, (2 * si.n_obs + 6) / 7);
	ck_assert_uint_gt(sum.bytes_on_disk, 0);

	ab_store *st;
	ck_assert_int_eq(ab_store_open(out, &st), 0);
	char **ds;
	size_t nds;
	ck_assert_int_eq(ab_collection_datasets(st, "", &ds, &nds), 0);
	ck_assert_uint_eq(nds, sum.datasets_written);
	for (size_t i = 0; i < nds; i++) {
		ab_anndata *ad;
		ck_assert_int_eq(ab_anndata_open(st, ds[i], &ad), 0);
		ab_anndata_info ai;
		ab_anndata_get_info(ad, &ai);
		/* np.array_split: sizes differ by at most one */
		ck_assert_uint_ge(ai.n_obs, 2 * si.n_obs / nds);
		ck_assert_uint_le(ai.n_obs, (2 * si.n_obs + nds - 1) / nds);
		add_keys(ad, got, &ng);
		ab_anndata_close(ad);
	}
	ab_strings_free(ds);
	ab_store_close(st);
	ck_assert_uint_eq(ng, nw);
	qsort(want, nw, sizeof *want, cmp_double);
	qsort(got, ng, sizeof *got, cmp_double);
	for (uint64_t i = 0; i < nw; i++)
		ck_assert_msg(want[i] == got[i], "row key %llu: %.17g in the inputs, %.17g in the collection",
			      (unsigned long long)i, want[i], got[i]);
	free(want);
	free(got);

	ck_assert_int_ge(s.notes, 1);
	ck_assert_ptr_nonnull(strstr(s.first_note, "duplicate obs names"));
	ck_assert_ptr_null(strchr(s.first_note, '\n'));
	ck_assert_int_eq(s.finals, 1);
	ck_assert(s.last.final);
	ck_assert_uint_eq(s.last.rows_done, s.last.total_rows);
	ck_assert_uint_eq(s.last.total_rows, 2 * si.n_obs);
	ck_assert_uint_eq(s.last.n_datasets, sum.datasets_written);
	ck_assert_uint_eq(s.last.datasets_done, sum.datasets_written);
}
END_TEST

static int count_entries(const char *d);

/* The same rows when X is streamed through the scratch file (a memory
 * budget far below the inputs' X) as when it is held: the collection's
 * bytes are the same, and no scratch file is left. */
START_TEST(test_spilled_equals_held)
{
	char held[300], spilled[300];
	snprintf(held, sizeof held, "%s/held.zarr", dir);
	snprintf(spilled, sizeof spilled, "%s/spilled.zarr", dir);
	const char *in[3] = { csr_in, dense_in, csr_in };
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	cfg.seed = 3;
	cfg.shuffle_chunk_size = 5;
	cfg.dataset_rows = 20;
	cfg.memory = (uint64_t)4 << 30;
	ck_assert_msg(ab_collection_write(held, in, 3, &cfg, NULL) == 0, "%s", ab_last_error());
	/* the writer keeps 16 MiB for itself; what is left holds the rows'
	 * bookkeeping and not much X */
	cfg.memory = ((uint64_t)16 << 20) + 20000;
	ck_assert_msg(ab_collection_write(spilled, in, 3, &cfg, NULL) == 0, "%s", ab_last_error());
	char cmd[800];
	snprintf(cmd, sizeof cmd, "cd %s && diff -r held.zarr spilled.zarr >/dev/null", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(count_entries(dir), 2);
}
END_TEST

/* Writes `in` into dir/NAME with cfg at `threads` workers and `memory`. */
static void write_with(const char *name, const char *const *in, size_t n, ab_collection_config *cfg,
		       unsigned threads, uint64_t memory)
{
	char out[300];
	snprintf(out, sizeof out, "%s/%s", dir, name);
	cfg->threads = threads;
	cfg->memory = memory;
	ck_assert_msg(ab_collection_write(out, in, n, cfg, NULL) == 0, "%s threads %u: %s", name, threads,
		      ab_last_error());
}

static int same_tree(const char *a, const char *b)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "cd %s && diff -r %s %s >/dev/null", dir, a, b);
	return system(cmd) == 0;
}

/* The read-ahead workers change where X is read and converted, never what
 * is written: blocks of 3 rows (many, some straddling two datasets of 11
 * rows) give the same bytes with 1, 2 and 4 threads, held in memory or
 * streamed through the scratch file (a budget that holds the rows'
 * bookkeeping and nothing of X: the workers encode every piece for the
 * file); sparse output from CSR and dense inputs, and dense output. */
START_TEST(test_threads_same_bytes)
{
	const char *mixed[3] = { csr_in, dense_in, csr_in };
	const char *dense[2] = { dense_in, dense_in };
	uint64_t held = (uint64_t)4 << 30, spilled = ((uint64_t)16 << 20) + 12000;
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	cfg.seed = 9;
	cfg.shuffle_chunk_size = 3;
	cfg.dataset_rows = 11;
	write_with("m1.zarr", mixed, 3, &cfg, 1, held);
	write_with("m2.zarr", mixed, 3, &cfg, 2, held);
	write_with("m4.zarr", mixed, 3, &cfg, 4, held);
	write_with("m1s.zarr", mixed, 3, &cfg, 1, spilled);
	write_with("m3s.zarr", mixed, 3, &cfg, 3, spilled);
	ck_assert_msg(same_tree("m1.zarr", "m2.zarr"), "2 threads wrote other bytes than 1");
	ck_assert_msg(same_tree("m1.zarr", "m4.zarr"), "4 threads wrote other bytes than 1");
	ck_assert_msg(same_tree("m1.zarr", "m1s.zarr"), "1 thread through the scratch file differs");
	ck_assert_msg(same_tree("m1.zarr", "m3s.zarr"), "3 threads through the scratch file differ");
	write_with("d1.zarr", dense, 2, &cfg, 1, held);
	write_with("d3.zarr", dense, 2, &cfg, 3, held);
	write_with("d3s.zarr", dense, 2, &cfg, 3, spilled);
	ck_assert_msg(same_tree("d1.zarr", "d3.zarr"), "dense: 3 threads wrote other bytes than 1");
	ck_assert_msg(same_tree("d1.zarr", "d3s.zarr"), "dense: 3 threads through the scratch file differ");
	/* no scratch file left */
	ck_assert_int_eq(count_entries(dir), 8);
}
END_TEST

/* Adding a dense input to the sparse collection: new datasets after the old
 * ones, the summary says so. */
START_TEST(test_add_to_collection)
{
	char out[300];
	snprintf(out, sizeof out, "%s/c.zarr", dir);
	const char *first[1] = { csr_in };
	ck_assert_msg(ab_collection_write(out, first, 1, NULL, NULL) == 0, "%s", ab_last_error());
	ab_collection_summary sum;
	const char *more[1] = { csr_in };
	ck_assert_msg(ab_collection_write(out, more, 1, NULL, &sum) == 0, "%s", ab_last_error());
	ck_assert_uint_eq(sum.first_dataset, 1);
	ck_assert_uint_eq(sum.datasets_written, 1);
	ab_store *st;
	ck_assert_int_eq(ab_store_open(out, &st), 0);
	char **ds;
	size_t nds;
	ck_assert_int_eq(ab_collection_datasets(st, "", &ds, &nds), 0);
	ck_assert_uint_eq(nds, 2);
	ab_strings_free(ds);
	ab_store_close(st);
}
END_TEST

static int count_entries(const char *d)
{
	DIR *h = opendir(d);
	ck_assert_ptr_nonnull(h);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(h)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(h);
	return n;
}

/* A stop asked at the first progress report: AB_ECANCELED, no output, no
 * temporary directory; an existing collection is left as it was. */
START_TEST(test_cancel_leaves_nothing)
{
	char out[300];
	snprintf(out, sizeof out, "%s/c.zarr", dir);
	const char *in[2] = { csr_in, dense_in };
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	cfg.shuffle_chunk_size = 2;
	seen s = { .stop_after = 1 };
	cfg.progress = on_progress;
	cfg.ctx = &s;
	ck_assert_int_eq(ab_collection_write(out, in, 2, &cfg, NULL), AB_ECANCELED);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "left as it was"));
	ck_assert_int_eq(count_entries(dir), 0);
	/* a stop asked at the last report, everything written but not committed */
	seen f = { .stop_on_final = 1 };
	cfg.ctx = &f;
	ck_assert_int_eq(ab_collection_write(out, in, 2, &cfg, NULL), AB_ECANCELED);
	ck_assert_int_eq(f.finals, 1);
	ck_assert_int_eq(count_entries(dir), 0);
	cfg.ctx = &s;
	/* the same over an existing collection */
	ck_assert_int_eq(ab_collection_write(out, in, 1, NULL, NULL), 0);
	s.progress_calls = 0;
	ck_assert_int_eq(ab_collection_write(out, in, 2, &cfg, NULL), AB_ECANCELED);
	ck_assert_int_eq(count_entries(dir), 1);
	ab_store *st;
	ck_assert_int_eq(ab_store_open(out, &st), 0);
	char **ds;
	size_t nds;
	ck_assert_int_eq(ab_collection_datasets(st, "", &ds, &nds), 0);
	ck_assert_uint_eq(nds, 1);
	ab_strings_free(ds);
	ab_store_close(st);
}
END_TEST

START_TEST(test_bad_arguments)
{
	char out[300];
	snprintf(out, sizeof out, "%s/c.zarr", dir);
	const char *missing[1] = { "/nonexistent/in.zarr" };
	ck_assert_int_ne(ab_collection_write(out, missing, 1, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "/nonexistent/in.zarr"));
	const char *self[1] = { csr_in };
	ck_assert_int_eq(ab_collection_write(csr_in, self, 1, NULL, NULL), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "is the input"));
	ck_assert_int_eq(ab_collection_write(out, self, 0, NULL, NULL), AB_EINVAL);
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	cfg.shuffle_chunk_size = 0;
	ck_assert_int_eq(ab_collection_write(out, self, 1, &cfg, NULL), AB_EINVAL);
	ab_collection_config_init(&cfg);
	const char *gb[1] = { "no_such_column" };
	cfg.groupby = gb;
	cfg.n_groupby = 1;
	ck_assert_int_eq(ab_collection_write(out, self, 1, &cfg, NULL), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "no_such_column"));
	ab_collection_config_init(&cfg);
	cfg.n_obs_columns = 2; /* without the list */
	ck_assert_int_eq(ab_collection_write(out, self, 1, &cfg, NULL), AB_EINVAL);
	ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

/* The streams are what convert's shuffles are made of: the same seed and
 * stream, the same numbers; another stream, others; a shuffle is a
 * permutation. */
START_TEST(test_rng_streams)
{
	ab_rng a, b, c;
	ab_rng_seed(&a, 42, 1);
	ab_rng_seed(&b, 42, 1);
	ab_rng_seed(&c, 42, 2);
	int same = 1, differ = 0;
	for (int i = 0; i < 100; i++) {
		uint64_t x = ab_rng_next(&a), y = ab_rng_next(&b), z = ab_rng_next(&c);
		same &= x == y;
		differ += x != z;
	}
	ck_assert(same);
	ck_assert_int_gt(differ, 95);
	uint64_t v[1000], seen_v[1000] = { 0 };
	for (uint64_t i = 0; i < 1000; i++)
		v[i] = i;
	ab_rng_shuffle(&a, v, 1000);
	uint64_t moved = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		ck_assert_uint_lt(v[i], 1000);
		seen_v[v[i]]++;
		moved += v[i] != i;
	}
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_uint_eq(seen_v[i], 1);
	ck_assert_uint_gt(moved, 900);
	uint64_t hist[7] = { 0 };
	for (int i = 0; i < 70000; i++)
		hist[ab_rng_below(&a, 7)]++;
	for (int i = 0; i < 7; i++)
		ck_assert(fabs((double)hist[i] - 10000.0) < 500.0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("collection");
	TCase *t = tcase_create("write");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_rows_once_each);
	tcase_add_test(t, test_add_to_collection);
	tcase_add_test(t, test_spilled_equals_held);
	tcase_add_test(t, test_threads_same_bytes);
	tcase_add_test(t, test_cancel_leaves_nothing);
	tcase_add_test(t, test_bad_arguments);
	tcase_add_test(t, test_rng_streams);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
