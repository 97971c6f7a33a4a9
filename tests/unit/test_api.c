/* test_api.c - every public function of include/annbatch.h called with NULL
 * pointer arguments, and the public config structs with enum values out of
 * range: a clean AB_EINVAL (or a harmless no-op / NULL / 0 for functions
 * that return no status), never a crash. Each call runs in its own forked
 * test (a loop test), so a crash names the call. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annbatch.h"

static char dir[256];
static ab_store *st;
static ab_array *arr;
static ab_loader *ld;
static ab_writer *wr;
static ab_writer_array *wa, *ws;

/* A store with one float32 array "a" of 4 rows, written by the library (the
 * values do not matter here, only valid handles do). */
static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/ab_api_%d", (int)getpid());
	char path[300];
	snprintf(path, sizeof path, "%s/s.zarr", dir);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	ab_writer *w;
	ck_assert_int_eq(ab_writer_create(path, NULL, &w), 0);
	ab_writer_array_config c;
	ab_writer_array_config_init(&c);
	c.chunk_rows = 2;
	ab_writer_array *a;
	ck_assert_int_eq(ab_writer_array_create(w, "a", &c, &a), 0);
	float v[4] = { 1, 2, 3, 4 };
	ck_assert_int_eq(ab_writer_array_append(a, v, 4), 0);
	ck_assert_int_eq(ab_writer_array_close(a), 0);
	ck_assert_int_eq(ab_writer_commit(w), 0);
	ck_assert_int_eq(ab_store_open(path, &st), 0);
	ck_assert_int_eq(ab_array_open(st, "a", &arr), 0);
	ck_assert_int_eq(ab_loader_create(NULL, &ld), 0);
	snprintf(path, sizeof path, "%s/w.zarr", dir);
	ck_assert_int_eq(ab_writer_create(path, NULL, &wr), 0);
	ck_assert_int_eq(ab_writer_array_create(wr, "b", &c, &wa), 0);
	c.dtype = AB_DT_STRING;
	ck_assert_int_eq(ab_writer_array_create(wr, "s", &c, &ws), 0);
}

static void teardown(void)
{
	ab_writer_abort(wr);
	ab_loader_destroy(ld);
	ab_array_close(arr);
	ab_store_close(st);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* Each entry returns the status of one call with a NULL argument. */
static int call(int i)
{
	char path[300];
	snprintf(path, sizeof path, "%s/s.zarr", dir);
	ab_store *s;
	ab_node_type t;
	char **names, *json;
	size_t count;
	ab_array *a;
	ab_array_info ai;
	ab_array_storage as;
	ab_csr *c;
	ab_csr_info ci;
	ab_column *col;
	ab_column_info coli;
	ab_column_kind kind;
	ab_anndata *ad;
	ab_anndata_info adi;
	uint64_t n, shape[1] = { 4 };
	float buf[16];
	int64_t ip[2] = { 0, 1 }; /* one element: indices and data are needed */
	ab_loader_stats ls;
	ab_batch *b;
	ab_batch_view bv;
	ab_compressor comp;
	ab_writer *w;
	ab_writer_array_config wc;
	ab_writer_array *wa2;
	ab_writer_array_config_init(&wc);
	const char *one[] = { "x" };
	switch (i) {
	case 0: return ab_store_open(NULL, &s);
	case 1: return ab_store_open(path, NULL);
	case 2: return ab_node_type_of(NULL, "", &t);
	case 3: return ab_node_type_of(st, "", NULL);
	case 4: return ab_group_children(NULL, "", &names, &count);
	case 5: return ab_group_children(st, "", NULL, &count);
	case 6: return ab_node_attributes(NULL, "", &json);
	case 7: return ab_node_attributes(st, "", NULL);
	case 8: return ab_array_open(NULL, "a", &a);
	case 9: return ab_array_open(st, "a", NULL);
	case 10: return ab_array_get_info(NULL, &ai);
	case 11: return ab_array_get_info(arr, NULL);
	case 12: return ab_array_read_rows(NULL, 0, 1, buf, sizeof buf);
	case 13: return ab_array_read_rows(arr, 0, 1, NULL, sizeof buf);
	case 14: return ab_array_read_strings(NULL, 0, 1, &names, &count);
	case 15: return ab_array_read_strings(arr, 0, 1, NULL, &count);
	case 16: return ab_array_get_storage(NULL, &as);
	case 17: return ab_array_get_storage(arr, NULL);
	case 18: return ab_csr_open(NULL, "x", &c);
	case 19: return ab_csr_open(st, "x", NULL);
	case 20: return ab_csr_get_info(NULL, &ci);
	case 21: return ab_csr_nnz(NULL, 0, 0, &n);
	case 22: return ab_csr_read_rows(NULL, 0, 1, ip, 2, (int64_t *)buf, 8, buf, sizeof buf);
	case 23: return ab_csr_read_dense(NULL, 0, 1, buf, sizeof buf);
	case 24: return ab_column_open(NULL, "a", &col);
	case 25: return ab_column_open(st, "a", NULL);
	case 26: return ab_column_get_info(NULL, &coli);
	case 27: return ab_column_read(NULL, 0, 1, buf, sizeof buf, NULL);
	case 28: return ab_column_read_strings(NULL, 0, 1, &names, &count);
	case 29: return ab_column_categories(NULL, &names, &count);
	case 30: return ab_anndata_open(NULL, "", &ad);
	case 31: return ab_anndata_open(st, "", NULL);
	case 32: return ab_anndata_get_info(NULL, &adi);
	case 33: return ab_anndata_obs_column(NULL, "x", &col);
	case 34: return ab_anndata_var_column(NULL, "x", &col);
	case 35: return ab_anndata_obs_column_kind(NULL, "x", &kind);
	case 36: return ab_collection_datasets(NULL, "", &names, &count);
	case 37: return ab_collection_datasets(st, "", NULL, &count);
	case 38: return ab_loader_create(NULL, NULL);
	case 39: return ab_loader_add_anndata(NULL, path);
	case 40: return ab_loader_add_anndata(ld, NULL);
	case 41: return ab_loader_add_array(NULL, path, "a");
	case 42: return ab_loader_add_array(ld, NULL, "a");
	case 43: return ab_loader_add_dense_memory(NULL, buf, AB_DT_FLOAT32, 1, shape);
	case 44: return ab_loader_add_dense_memory(ld, NULL, AB_DT_FLOAT32, 1, shape);
	case 45: return ab_loader_add_dense_memory(ld, buf, AB_DT_FLOAT32, 1, NULL);
	case 46: return ab_loader_add_csr_memory(NULL, ip, (int64_t *)buf, buf, AB_DT_FLOAT32, 1, 4);
	case 47: return ab_loader_add_csr_memory(ld, NULL, (int64_t *)buf, buf, AB_DT_FLOAT32, 1, 4);
	case 48: return ab_loader_add_csr_memory(ld, ip, NULL, buf, AB_DT_FLOAT32, 1, 4);
	case 49: return ab_loader_add_csr_memory(ld, ip, (int64_t *)buf, NULL, AB_DT_FLOAT32, 1, 4);
	case 50: return ab_loader_set_obs_columns(NULL, one, 1);
	case 51: return ab_loader_set_obs_columns(ld, NULL, 1);
	case 52: return ab_loader_set_class_column(NULL, "x", NULL, 0);
	case 53: return ab_loader_set_class_column(ld, NULL, NULL, 0);
	case 54: return ab_loader_var_names(NULL, &names, &count);
	case 55: return ab_loader_var_names(ld, NULL, &count);
	case 56: return ab_loader_nbatches(NULL, &n);
	case 57: return ab_loader_nbatches(ld, NULL);
	case 58: return ab_loader_start(NULL, 0);
	case 59: return ab_loader_next(NULL, &b);
	case 60: return ab_loader_next(ld, NULL);
	case 61: return ab_batch_get_view(NULL, &bv);
	case 62: return ab_loader_get_stats(NULL, &ls);
	case 63: return ab_loader_get_stats(ld, NULL);
	case 64: return ab_compressor_parse(NULL, &comp);
	case 65: return ab_compressor_parse("none", NULL);
	case 66: return ab_writer_create(NULL, NULL, &w);
	case 67: return ab_writer_create(path, NULL, NULL);
	case 68: return ab_writer_group(NULL, "", NULL);
	case 69: return ab_writer_array_create(NULL, "c", &wc, &wa2);
	case 70: return ab_writer_array_create(wr, "c", NULL, &wa2);
	case 71: return ab_writer_array_create(wr, "c", &wc, NULL);
	case 72: return ab_writer_array_append(NULL, buf, 1);
	case 73: return ab_writer_array_append(wa, NULL, 1);
	case 74: return ab_writer_array_append_strings(NULL, one, 1);
	case 75: return ab_writer_array_append_strings(ws, NULL, 1);
	case 76: return ab_writer_adopt(NULL, path, "a");
	case 77: return ab_writer_adopt(wr, NULL, "a");
	case 78: return ab_writer_array_close(NULL) == 0 ? AB_EINVAL : -1; /* like free(NULL) */
	case 79: return ab_writer_commit(NULL);
	/* the status-less functions: no crash, the documented neutral value */
	case 80:
		ab_store_close(NULL);
		ab_strings_free(NULL);
		ab_strings_free_n(NULL, 3);
		ab_free(NULL);
		ab_array_close(NULL);
		ab_csr_close(NULL);
		ab_column_close(NULL);
		ab_anndata_close(NULL);
		ab_loader_destroy(NULL);
		ab_loader_stop(NULL);
		ab_batch_release(NULL);
		ab_loader_reset_stats(NULL);
		ab_writer_abort(NULL);
		ab_loader_config_init(NULL);
		ab_writer_config_init(NULL);
		ab_writer_array_config_init(NULL);
		return AB_EINVAL;
	case 81:
		return ab_array_row_items(NULL) == 0 && ab_array_nrows(NULL) == 0 && ab_loader_nrows(NULL) == 0 &&
			       !ab_anndata_x_dense(NULL) && !ab_anndata_x_csr(NULL) &&
			       !ab_anndata_obs_columns(NULL) && !ab_anndata_var_columns(NULL) &&
			       !ab_writer_tmp_path(NULL) && ab_store_zarr_format(NULL) == 0 && !ab_store_path(NULL)
		       ? AB_EINVAL : -1;
	case 82: {
		/* no items: 0, not a crash */
		return ab_item_as_double(AB_DT_FLOAT32, NULL, 0) == 0 ? AB_EINVAL : -1;
	}
	case 83: return ab_anndata_open_path(NULL, &ad);
	case 84: return ab_anndata_open_path(path, NULL);
	case 85: return ab_anndata_x_nnz(NULL, 0, 1, &n);
	case 86: return ab_anndata_x_read_csr(NULL, 0, 1, ip, (int64_t *)buf, buf);
	case 87: return ab_anndata_x_read_dense(NULL, 0, 1, buf, sizeof buf);
	case 88: return ab_collection_write(NULL, one, 1, NULL, NULL);
	case 89: return ab_collection_write(path, NULL, 1, NULL, NULL);
	case 90: return ab_writer_anndata_group(NULL, "");
	case 91: return ab_writer_dataframe_group(NULL, "obs", one, 1);
	case 92: return ab_writer_csr_group(NULL, "X", 1, 1);
	case 93: return ab_writer_anndata_array(NULL, "b2", AB_DT_FLOAT32, 1, shape, 1, 0, NULL, NULL, &wa2);
	case 94: return ab_writer_anndata_array(wr, "b2", AB_DT_FLOAT32, 1, shape, 1, 0, NULL, NULL, NULL);
	case 95: return ab_writer_numeric_column(NULL, "c", AB_DT_FLOAT32, buf, 1, NULL, "array");
	case 96: return ab_writer_numeric_column(wr, "c", AB_DT_FLOAT32, NULL, 1, NULL, "array");
	case 97: return ab_writer_string_column(NULL, "c", one, 1, NULL);
	case 98: return ab_writer_string_column(wr, "c", NULL, 1, NULL);
	case 99: return ab_writer_categorical_column(NULL, "c", (const int32_t *)ip, 1, one, 1, 0, NULL);
	case 100: return ab_writer_categorical_column(wr, "c", NULL, 1, one, 1, 0, NULL);
	case 101:
		ab_collection_config_init(NULL);
		ab_anndata_write_config_init(NULL);
		ab_rng_seed(NULL, 1, 2);
		ab_rng_shuffle(NULL, (uint64_t *)buf, 2);
		return ab_rng_next(NULL) == 0 && ab_rng_below(NULL, 5) == 0 && ab_anndata_shard_rows(NULL, 4, 4, 1) == 0
		       ? AB_EINVAL : -1;
	default: return -1;
	}
}
#define NCALLS 102

START_TEST(test_null_arguments)
{
	int rc = call(_i);
	ck_assert_msg(rc == AB_EINVAL, "call %d: status %d (%s), expected AB_EINVAL", _i, rc, ab_last_error());
	if ((_i < 80 && _i != 78) || (_i > 82 && _i < 101))
		ck_assert_msg(*ab_last_error() != '\0', "call %d: no message", _i);
}
END_TEST

/* Enum fields of the public config structs hold what the caller put there:
 * a value outside the enum is refused with AB_EINVAL and a message naming
 * the field and the value, not taken for some default. */
START_TEST(test_enum_values_checked)
{
	ab_loader_config c;
	ab_loader *l = NULL;
	ab_loader_config_init(&c);
	c.io_mode = (ab_io_mode)7;
	ck_assert_int_eq(ab_loader_create(&c, &l), AB_EINVAL);
	ck_assert_ptr_null(l);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "io_mode"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "7"));
	ab_loader_config_init(&c);
	c.backend = (ab_io_backend)-1;
	ck_assert_int_eq(ab_loader_create(&c, &l), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "backend"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "-1"));
	ab_loader_config_init(&c);
	ck_assert_int_eq(ab_loader_create(&c, &l), 0);
	/* in-memory data of a dtype that does not exist */
	float v[4] = { 0 };
	uint64_t shape[1] = { 4 };
	ck_assert_int_eq(ab_loader_add_dense_memory(l, v, (ab_dtype)999, 1, shape), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "999"));
	ab_loader_destroy(l);

	ab_writer_array_config wc;
	ab_writer_array_config_init(&wc);
	wc.compressor = (ab_compressor)42;
	ab_writer_array *a = NULL;
	ck_assert_int_eq(ab_writer_array_create(wr, "c", &wc, &a), AB_EINVAL);
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "compressor"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "42"));
	ab_writer_array_config_init(&wc);
	wc.dtype = (ab_dtype)999;
	ck_assert_int_eq(ab_writer_array_create(wr, "c", &wc, &a), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "999"));
	ab_writer_config cfg;
	ab_writer_config_init(&cfg);
	cfg.zarr_format = 4;
	char path[300];
	snprintf(path, sizeof path, "%s/z.zarr", dir);
	ab_writer *w = NULL;
	ck_assert_int_eq(ab_writer_create(path, &cfg, &w), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "zarr_format"));
	ck_assert_ptr_null(w);
	ck_assert_str_eq(ab_compressor_name((ab_compressor)42), "unknown");
	ck_assert_str_eq(ab_dtype_name((ab_dtype)999), "unknown");
	ck_assert_uint_eq(ab_dtype_size((ab_dtype)999), 0);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *t = tcase_create("null");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_loop_test(t, test_null_arguments, 0, NCALLS);
	tcase_add_test(t, test_enum_values_checked);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(api_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
