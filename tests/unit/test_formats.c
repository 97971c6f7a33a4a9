/* test_formats.c - unit tests of the format layer: paths, dtypes, fill values,
 * chunk keys, codec pipelines, shard indexes, box copies, and small stores
 * written here by hand from the zarr specifications. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annbatch.h"
#include "codec.h"
#include "column.h"
#include "dtype.h"
#include "meta.h"
#include "pipeline.h"
#include "util.h"
#include "value.h"
#include "write/writer.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ab-test-formats-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *rel, const void *data, size_t len)
{
	char path[512], dir[512];
	snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
	/* mkdir -p of the parent */
	snprintf(dir, sizeof dir, "%s", path);
	for (char *p = dir + strlen(tmpdir) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void write_text(const char *rel, const char *text)
{
	write_file(rel, text, strlen(text));
}

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
	ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
	return j;
}

/* ------------------------------------------------------------ util */

START_TEST(test_natural_order)
{
	ck_assert_int_lt(ab_natural_cmp("dataset_2", "dataset_10"), 0);
	ck_assert_int_gt(ab_natural_cmp("dataset_10", "dataset_9"), 0);
	ck_assert_int_eq(ab_natural_cmp("dataset_007", "dataset_7"), 0);
	ck_assert_int_lt(ab_natural_cmp("X", "obs"), 0);
	ck_assert_int_lt(ab_natural_cmp("a", "ab"), 0);
}
END_TEST

START_TEST(test_node_normalize)
{
	char *n;
	ck_assert_int_eq(ab_node_normalize("//obs//cell_type/", &n), 0);
	ck_assert_str_eq(n, "obs/cell_type");
	free(n);
	ck_assert_int_eq(ab_node_normalize("", &n), 0);
	ck_assert_str_eq(n, "");
	free(n);
	ck_assert_int_eq(ab_node_normalize("obs/../../etc", &n), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), ".."));
	ck_assert_int_eq(ab_node_normalize("./X", &n), AB_EINVAL);
}
END_TEST

START_TEST(test_byteswap)
{
	uint8_t v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	ab_byteswap(v, 2, 4);
	const uint8_t want[8] = { 4, 3, 2, 1, 8, 7, 6, 5 };
	ck_assert_mem_eq(v, want, 8);
	uint8_t w[6] = { 1, 2, 3, 4, 5, 6 };
	ab_byteswap(w, 1, 6);
	const uint8_t want6[6] = { 6, 5, 4, 3, 2, 1 };
	ck_assert_mem_eq(w, want6, 6);
}
END_TEST

START_TEST(test_copy_box_matches_naive)
{
	/* src 4x5x6, dst 3x5x4, box 2x5x3 from (1,0,2) to (1,0,1). */
	uint64_t ss[3] = { 4, 5, 6 }, ds[3] = { 3, 5, 4 };
	uint64_t so[3] = { 1, 0, 2 }, dof[3] = { 1, 0, 1 }, cnt[3] = { 2, 5, 3 };
	int32_t src[120], dst[60], want[60];
	for (int i = 0; i < 120; i++)
		src[i] = i;
	memset(dst, 0xff, sizeof dst);
	memset(want, 0xff, sizeof want);
	for (uint64_t a = 0; a < cnt[0]; a++)
		for (uint64_t b = 0; b < cnt[1]; b++)
			for (uint64_t c = 0; c < cnt[2]; c++)
				want[((dof[0] + a) * 5 + dof[1] + b) * 4 + dof[2] + c] =
					src[((so[0] + a) * 5 + so[1] + b) * 6 + so[2] + c];
	ab_copy_box(3, 4, src, ss, so, dst, ds, dof, cnt);
	ck_assert_mem_eq(dst, want, sizeof want);
}
END_TEST

START_TEST(test_transpose_matches_naive)
{
	uint64_t shape[3] = { 2, 3, 4 };
	int perm[3] = { 2, 0, 1 }; /* dst shape (4, 2, 3) */
	int16_t src[24], dst[24];
	for (int i = 0; i < 24; i++)
		src[i] = (int16_t)i;
	ab_transpose(3, 2, src, shape, perm, dst);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 2; j++)
			for (int k = 0; k < 3; k++)
				/* dst[i][j][k] = src at axis0=j, axis1=k, axis2=i */
				ck_assert_int_eq(dst[(i * 2 + j) * 3 + k], src[(j * 3 + k) * 4 + i]);
}
END_TEST

/* ------------------------------------------------------------ dtypes */

START_TEST(test_dtype_v2)
{
	ab_dtype_desc d;
	ck_assert_int_eq(ab_dtype_parse_v2("<f4", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_FLOAT32);
	ck_assert_uint_eq(d.disk_size, 4);
	ck_assert_int_eq(d.big_endian, 0);
	ck_assert_int_eq(ab_dtype_parse_v2(">i8", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_INT64);
	ck_assert_int_eq(d.big_endian, 1);
	ck_assert_int_eq(ab_dtype_parse_v2("|b1", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_BOOL);
	ck_assert_int_eq(ab_dtype_parse_v2(">c16", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_COMPLEX128);
	ck_assert_uint_eq(d.swap_unit, 8);
	ck_assert_int_eq(ab_dtype_parse_v2("<U6", 0, &d), 0);
	ck_assert_int_eq(d.str, AB_STR_UCS4);
	ck_assert_uint_eq(d.disk_size, 24);
	ck_assert_int_eq(ab_dtype_parse_v2("|S3", 0, &d), 0);
	ck_assert_int_eq(d.str, AB_STR_BYTES);
	ck_assert_int_eq(ab_dtype_parse_v2("|O", 1, &d), 0);
	ck_assert_int_eq(d.str, AB_STR_VLEN);
	ck_assert_int_eq(ab_dtype_parse_v2("|O", 0, &d), AB_EUNSUPPORTED);
	/* numpy datetime64 / timedelta64: int64 counts */
	ck_assert_int_eq(ab_dtype_parse_v2("<M8[ns]", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_INT64);
	ck_assert_int_eq(d.time, 1);
	ck_assert_int_eq(ab_dtype_parse_v2(">m8[10s]", 0, &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_INT64);
	ck_assert_int_eq(d.big_endian, 1);
	ck_assert_int_eq(ab_dtype_parse_v2("<M8", 0, &d), 0);
	ck_assert_int_eq(ab_dtype_parse_v2("<M8[fortnight]", 0, &d), AB_EUNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "<M8[fortnight]"));
	ck_assert_int_eq(ab_dtype_parse_v2("<M4[s]", 0, &d), AB_EUNSUPPORTED);
	ck_assert_int_eq(ab_dtype_parse_v2("<f3", 0, &d), AB_EUNSUPPORTED);
	ck_assert_int_eq(ab_dtype_parse_v2("", 0, &d), AB_EUNSUPPORTED);
}
END_TEST

START_TEST(test_dtype_v3)
{
	ab_dtype_desc d;
	ck_assert_int_eq(ab_dtype_parse_v3("uint16", &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_UINT16);
	ck_assert_int_eq(ab_dtype_parse_v3("string", &d), 0);
	ck_assert_int_eq(d.dt, AB_DT_STRING);
	ck_assert_int_eq(ab_dtype_parse_v3("float128x", &d), AB_EUNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "float128x"));
	ck_assert_str_eq(ab_dtype_name(AB_DT_COMPLEX64), "complex64");
	ck_assert_uint_eq(ab_dtype_size(AB_DT_FLOAT16), 2);

	/* data types written as objects (zarr-python 3): read, or refused by name */
	json_t *j;
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"numpy.datetime64\", \"configuration\": "
						      "{\"unit\": \"ms\", \"scale_factor\": 1}}"), &d), 0);
	json_decref(j);
	ck_assert_int_eq(d.dt, AB_DT_INT64);
	ck_assert_int_eq(d.time, 1);
	ck_assert_str_eq(d.name, "datetime64[1ms]");
	uint8_t item[16];
	int64_t v;
	ck_assert_int_eq(ab_fill_parse(j = J("\"NaT\""), &d, 3, item, NULL), 0);
	json_decref(j);
	memcpy(&v, item, 8);
	ck_assert(v == INT64_MIN);
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"numpy.timedelta64\", \"configuration\": "
						      "{\"unit\": \"s\", \"scale_factor\": 0}}"), &d), AB_EFORMAT);
	json_decref(j);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "numpy.timedelta64"));
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"fixed_length_utf32\", \"configuration\": "
						      "{\"length_bytes\": 24}}"), &d), 0);
	json_decref(j);
	ck_assert_int_eq(d.dt, AB_DT_STRING);
	ck_assert_int_eq(d.str, AB_STR_UCS4);
	ck_assert_uint_eq(d.str_width, 6);
	ck_assert_uint_eq(d.disk_size, 24);
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"fixed_length_utf32\", \"configuration\": "
						      "{\"length_bytes\": 6}}"), &d), AB_EFORMAT);
	json_decref(j);
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("\"variable_length_bytes\""), &d), 0);
	json_decref(j);
	ck_assert_int_eq(d.str, AB_STR_VLEN);
	ck_assert_int_eq(d.vlen_bytes, 1);
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"structured\", \"configuration\": {}}"), &d),
			 AB_EUNSUPPORTED);
	json_decref(j);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "'structured'"));
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"int32\"}"), &d), 0);
	json_decref(j);
	ck_assert_int_eq(d.dt, AB_DT_INT32);
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("{\"name\": \"raw_bytes\", \"configuration\": {}}"), &d),
			 AB_EUNSUPPORTED);
	json_decref(j);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "'raw_bytes'"));
	ck_assert_int_eq(ab_dtype_parse_v3_json(j = J("[1, 2]"), &d), AB_EFORMAT);
	json_decref(j);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "[1,2]"));
}
END_TEST

START_TEST(test_fill_values)
{
	ab_dtype_desc f4, f8, i2, b1, f2;
	uint8_t item[16];
	ab_dtype_parse_v3("float32", &f4);
	ab_dtype_parse_v3("float64", &f8);
	ab_dtype_parse_v3("int16", &i2);
	ab_dtype_parse_v3("bool", &b1);
	ab_dtype_parse_v3("float16", &f2);
	json_t *j;

	ck_assert_int_eq(ab_fill_parse(j = J("\"NaN\""), &f4, 3, item, NULL), 0);
	json_decref(j);
	float f;
	memcpy(&f, item, 4);
	ck_assert(isnan(f));
	ck_assert_int_eq(ab_fill_parse(j = J("\"-Infinity\""), &f8, 2, item, NULL), 0);
	json_decref(j);
	double d;
	memcpy(&d, item, 8);
	ck_assert(isinf(d) && d < 0);
	ck_assert_int_eq(ab_fill_parse(j = J("\"0x7fc00001\""), &f4, 3, item, NULL), 0);
	json_decref(j);
	ck_assert_uint_eq(ab_load_le32(item), 0x7fc00001u);
	ck_assert_int_eq(ab_fill_parse(j = J("-3"), &i2, 2, item, NULL), 0);
	json_decref(j);
	int16_t s;
	memcpy(&s, item, 2);
	ck_assert_int_eq(s, -3);
	ck_assert_int_eq(ab_fill_parse(j = J("true"), &b1, 3, item, NULL), 0);
	json_decref(j);
	ck_assert_int_eq(item[0], 1);
	ck_assert_int_eq(ab_fill_parse(j = J("1.5"), &f2, 3, item, NULL), 0);
	json_decref(j);
	uint16_t h;
	memcpy(&h, item, 2);
	ck_assert_uint_eq(h, 0x3e00);
	ck_assert(ab_half_to_double(h) == 1.5);
	ck_assert_int_eq(ab_fill_parse(j = J("null"), &f4, 2, item, NULL), 0);
	json_decref(j);
	ck_assert_uint_eq(ab_load_le32(item), 0);
	ck_assert_int_eq(ab_fill_parse(j = J("\"banana\""), &f4, 3, item, NULL), AB_EFORMAT);
	json_decref(j);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "banana"));
	ck_assert_int_eq(ab_fill_parse(j = J("2.5"), &i2, 3, item, NULL), AB_EFORMAT);
	json_decref(j);
}
END_TEST

/* ------------------------------------------------------------ metadata */

START_TEST(test_chunk_keys)
{
	ab_array_meta m;
	json_t *doc = J("{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[10,10],\"data_type\":\"int8\","
			"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[3,3]}},"
			"\"chunk_key_encoding\":{\"name\":\"default\",\"configuration\":{\"separator\":\"/\"}},"
			"\"fill_value\":0,\"codecs\":[{\"name\":\"bytes\"}]}");
	ck_assert_int_eq(ab_array_meta_parse(doc, 3, "t", &m), 0);
	char key[64];
	uint64_t c[2] = { 1, 12 };
	ab_chunk_key(&m, c, key, sizeof key);
	ck_assert_str_eq(key, "c/1/12");
	ab_array_meta_free(&m);
	json_decref(doc);

	doc = J("{\"zarr_format\":2,\"shape\":[10,10],\"chunks\":[3,3],\"dtype\":\"<i2\",\"compressor\":null,"
		"\"fill_value\":0,\"order\":\"C\",\"filters\":null,\"dimension_separator\":\"/\"}");
	ck_assert_int_eq(ab_array_meta_parse(doc, 2, "t", &m), 0);
	ab_chunk_key(&m, c, key, sizeof key);
	ck_assert_str_eq(key, "1/12");
	ab_array_meta_free(&m);
	json_decref(doc);

	doc = J("{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[],\"data_type\":\"int8\","
		"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[]}},"
		"\"chunk_key_encoding\":{\"name\":\"v2\",\"configuration\":{\"separator\":\".\"}},"
		"\"fill_value\":0,\"codecs\":[{\"name\":\"bytes\"}]}");
	ck_assert_int_eq(ab_array_meta_parse(doc, 3, "t", &m), 0);
	ab_chunk_key(&m, c, key, sizeof key);
	ck_assert_str_eq(key, "0");
	ab_array_meta_free(&m);
	json_decref(doc);
}
END_TEST

static int parse_expect_error(const char *text, int fmt, const char *needle)
{
	ab_array_meta m;
	json_t *doc = J(text);
	int rc = ab_array_meta_parse(doc, fmt, "arr", &m);
	json_decref(doc);
	if (rc == 0) {
		ab_array_meta_free(&m);
		return 0;
	}
	ck_assert_msg(strstr(ab_last_error(), needle) != NULL, "'%s' not in '%s'", needle, ab_last_error());
	return rc;
}

START_TEST(test_meta_errors)
{
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[10,10],\"chunks\":[3],\"dtype\":\"<i2\","
					    "\"compressor\":null,\"fill_value\":0,\"order\":\"C\",\"filters\":null}",
					    2, "chunks"), AB_EFORMAT);
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[10],\"chunks\":[0],\"dtype\":\"<i2\","
					    "\"compressor\":null,\"fill_value\":0,\"order\":\"C\",\"filters\":null}",
					    2, "positive"), AB_EFORMAT);
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[-4],\"chunks\":[2],\"dtype\":\"<i2\","
					    "\"compressor\":null,\"fill_value\":0,\"order\":\"C\",\"filters\":null}",
					    2, "shape"), AB_EFORMAT);
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[10],\"chunks\":[2],\"dtype\":\"<i2\","
					    "\"compressor\":{\"id\":\"foo\"},\"fill_value\":0,\"order\":\"C\","
					    "\"filters\":null}", 2, "foo"), AB_EUNSUPPORTED);
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[281474976710656000],\"chunks\":[2],"
					    "\"dtype\":\"<i2\",\"compressor\":null,\"fill_value\":0,\"order\":\"C\","
					    "\"filters\":null}", 2, "too large"), AB_EFORMAT);
	ck_assert_int_eq(parse_expect_error("{\"zarr_format\":2,\"shape\":[100000000,100000000],"
					    "\"chunks\":[100000000,100000000],\"dtype\":\"<f8\",\"compressor\":null,"
					    "\"fill_value\":0,\"order\":\"C\",\"filters\":null}", 2, "TiB"), AB_EFORMAT);
	const char *v3 = "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[8],\"data_type\":\"int8\","
			 "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4]}},"
			 "\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":0,\"codecs\":%s%s}";
	char buf[1024];
	snprintf(buf, sizeof buf, v3, "[{\"name\":\"bytes\"},{\"name\":\"snazzy\"}]", "");
	ck_assert_int_eq(parse_expect_error(buf, 3, "snazzy"), AB_EUNSUPPORTED);
	snprintf(buf, sizeof buf, v3, "[{\"name\":\"zstd\"}]", "");
	ck_assert_int_eq(parse_expect_error(buf, 3, "before"), AB_EFORMAT);
	snprintf(buf, sizeof buf, v3, "[{\"name\":\"bytes\"}]", ",\"frob\":{\"must_understand\":true}");
	ck_assert_int_eq(parse_expect_error(buf, 3, "frob"), AB_EUNSUPPORTED);
	snprintf(buf, sizeof buf, v3, "[{\"name\":\"bytes\"}]", ",\"frob\":{\"must_understand\":false}");
	ck_assert_int_eq(parse_expect_error(buf, 3, "-"), 0);
	snprintf(buf, sizeof buf, v3,
		 "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[3],\"codecs\":"
		 "[{\"name\":\"bytes\"}]}}]", "");
	ck_assert_int_eq(parse_expect_error(buf, 3, "multiple"), AB_EFORMAT);
}
END_TEST

START_TEST(test_sharding_pipeline)
{
	json_t *codecs = J("[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2,5],"
			   "\"codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}},"
			   "{\"name\":\"zstd\",\"configuration\":{\"level\":1,\"checksum\":false}}],"
			   "\"index_codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}},"
			   "{\"name\":\"crc32c\"}],\"index_location\":\"start\"}}]");
	ab_dtype_desc dt;
	ab_dtype_parse_v3("float32", &dt);
	uint64_t shard[2] = { 8, 10 };
	ab_pipeline p;
	ck_assert_int_eq(ab_pipeline_from_v3(codecs, 2, shard, &dt, &p), 0);
	ck_assert_int_eq(p.a2b, AB_A2B_SHARD);
	ck_assert_uint_eq(p.shard->n_inner, 8);
	ck_assert_uint_eq(p.shard->index_bytes, 8 * 16 + 4);
	ck_assert_int_eq(p.shard->index_at_start, 1);
	ck_assert_int_eq(p.shard->inner.nb2b, 1);
	ck_assert_int_eq(p.shard->inner.b2b[0].kind, AB_B2B_ZSTD);

	/* Index decode: entries, crc32c, bounds. */
	uint8_t raw[8 * 16 + 4];
	for (int k = 0; k < 8; k++) {
		uint64_t off = k == 3 ? UINT64_MAX : 200 + 10 * (uint64_t)k;
		uint64_t nb = k == 3 ? UINT64_MAX : 10;
		ab_store_le64(raw + 16 * k, off);
		ab_store_le64(raw + 16 * k + 8, nb);
	}
	ab_store_le32(raw + 128, ab_crc32c(0, raw, 128));
	uint64_t e[16];
	ck_assert_int_eq(ab_shard_index_decode(p.shard, raw, sizeof raw, 1000, e), 0);
	ck_assert_uint_eq(e[2], 210);
	ck_assert_uint_eq(e[6], UINT64_MAX);
	ck_assert_int_eq(ab_shard_index_decode(p.shard, raw, sizeof raw, 250, e), AB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "past the end"));
	/* An entry inside a (sparse) shard of 2 MiB giving 1 MiB to an inner
	 * chunk of 2 x 5 float32 (40 bytes, zstd adds a few): a lie, refused
	 * before anyone allocates 1 MiB for it. */
	ab_store_le64(raw + 8, (uint64_t)1 << 20);
	ab_store_le32(raw + 128, ab_crc32c(0, raw, 128));
	ck_assert_int_eq(ab_shard_index_decode(p.shard, raw, sizeof raw, (uint64_t)2 << 20, e), AB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "entry 0"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "1048576 bytes"));
	ab_store_le64(raw + 8, 10);
	ab_store_le32(raw + 128, ab_crc32c(0, raw, 128));
	ck_assert_int_eq(ab_shard_index_decode(p.shard, raw, sizeof raw, (uint64_t)2 << 20, e), 0);
	raw[5] ^= 1;
	ck_assert_int_eq(ab_shard_index_decode(p.shard, raw, sizeof raw, 1000, e), AB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "crc32c"));
	ab_pipeline_free(&p);
	json_decref(codecs);
}
END_TEST

START_TEST(test_decode_big_endian_transposed)
{
	/* A 2x3 int32 chunk stored big-endian in F order (zarr v2 order "F"). */
	ab_dtype_desc dt;
	ck_assert_int_eq(ab_dtype_parse_v2(">i4", 0, &dt), 0);
	ab_pipeline p;
	ck_assert_int_eq(ab_pipeline_from_v2(NULL, NULL, "F", 2, &dt, &p), 0);
	int32_t logical[6] = { 1, 2, 3, 4, 5, 6 }; /* [[1,2,3],[4,5,6]] */
	uint8_t enc[24];
	int order_f[6] = { 1, 4, 2, 5, 3, 6 };
	for (int i = 0; i < 6; i++) {
		uint32_t v = __builtin_bswap32((uint32_t)order_f[i]);
		memcpy(enc + 4 * i, &v, 4);
	}
	int32_t out[6];
	uint64_t shape[2] = { 2, 3 };
	ab_scratch s = { 0 };
	uint8_t fill[16] = { 0 };
	ck_assert_int_eq(ab_chunk_decode(&p, &dt, shape, enc, sizeof enc, fill, NULL, out, sizeof out, &s), 0);
	ck_assert_mem_eq(out, logical, sizeof logical);
	/* One byte short: a clear error, not a read past the end. */
	ck_assert_int_eq(ab_chunk_decode(&p, &dt, shape, enc, sizeof enc - 1, fill, NULL, out, sizeof out, &s),
			 AB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "expected 24"));
	ab_scratch_free(&s);
	ab_pipeline_free(&p);
}
END_TEST

/* ------------------------------------------------------------ stores */

static const char *v3_array_json =
	"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[5,3],\"data_type\":\"uint16\","
	"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[2,3]}},"
	"\"chunk_key_encoding\":{\"name\":\"default\",\"configuration\":{\"separator\":\"/\"}},"
	"\"fill_value\":7,\"codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}},"
	"{\"name\":\"crc32c\"}],\"attributes\":{\"encoding-type\":\"array\"}}";

static void write_u16_chunk(const char *rel, const uint16_t *vals, size_t n, int corrupt)
{
	uint8_t buf[64];
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = (uint8_t)vals[i];
		buf[2 * i + 1] = (uint8_t)(vals[i] >> 8);
	}
	ab_store_le32(buf + 2 * n, ab_crc32c(0, buf, 2 * n) ^ (corrupt ? 1u : 0u));
	write_file(rel, buf, 2 * n + 4);
}

START_TEST(test_store_v3_roundtrip)
{
	make_tmpdir();
	write_text("zarr.json", "{\"zarr_format\":3,\"node_type\":\"group\",\"attributes\":{}}");
	write_text("a/zarr.json", v3_array_json);
	uint16_t c0[6] = { 0, 1, 2, 3, 4, 5 }, c2[6] = { 12, 13, 14, 99, 99, 99 };
	write_u16_chunk("a/c/0/0", c0, 6, 0);
	write_u16_chunk("a/c/2/0", c2, 6, 0); /* c/1/0 missing: fill value 7 */
	ab_store *st;
	ck_assert_int_eq(ab_store_open(tmpdir, &st), 0);
	ck_assert_int_eq(ab_store_zarr_format(st), 3);
	char **kids;
	size_t n;
	ck_assert_int_eq(ab_group_children(st, "", &kids, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(kids[0], "a");
	ab_strings_free(kids);
	ab_array *a;
	ck_assert_int_eq(ab_array_open(st, "a", &a), 0);
	uint16_t out[15];
	ck_assert_int_eq(ab_array_read_rows(a, 0, 5, out, sizeof out), 0);
	const uint16_t want[15] = { 0, 1, 2, 3, 4, 5, 7, 7, 7, 7, 7, 7, 12, 13, 14 };
	ck_assert_mem_eq(out, want, sizeof want);
	ck_assert_int_eq(ab_array_read_rows(a, 1, 3, out, sizeof out), 0);
	ck_assert_mem_eq(out, want + 3, 6 * sizeof(uint16_t));
	ck_assert_int_eq(ab_array_read_rows(a, 4, 6, out, sizeof out), AB_ERANGE);
	ck_assert_int_eq(ab_array_read_rows(a, 0, 5, out, 10), AB_EINVAL);
	ab_array_storage stg;
	ck_assert_int_eq(ab_array_get_storage(a, &stg), 0);
	ck_assert_uint_eq(stg.chunks_present, 2);
	ck_assert_uint_eq(stg.chunks_total, 3);
	ck_assert_uint_eq(stg.bytes_on_disk, 32);
	ab_array_close(a);

	/* A corrupted checksum names the file and the codec. */
	write_u16_chunk("a/c/2/0", c2, 6, 1);
	ck_assert_int_eq(ab_array_open(st, "a", &a), 0);
	ck_assert_int_eq(ab_array_read_rows(a, 4, 5, out, sizeof out), AB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "crc32c"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "a/c/2/0"));
	ab_array_close(a);

	ck_assert_int_eq(ab_array_open(st, "nope", &a), AB_ENOENT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "not found"));
	ck_assert_int_eq(ab_array_open(st, "", &a), AB_ETYPE);
	ab_store_close(st);
	rm_tmpdir();
}
END_TEST

START_TEST(test_store_errors)
{
	make_tmpdir();
	ab_store *st;
	ck_assert_int_eq(ab_store_open(tmpdir, &st), AB_EFORMAT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "not a zarr store"));
	write_text(".zgroup", "{\"zarr_format\":2}");
	write_text("x/.zarray", "{\"zarr_format\":2, \"shape\": [");
	ck_assert_int_eq(ab_store_open(tmpdir, &st), 0);
	ab_array *a;
	ck_assert_int_eq(ab_array_open(st, "x", &a), AB_EFORMAT);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "invalid JSON"));
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "x/.zarray"));
	ab_store_close(st);
	char missing[300];
	snprintf(missing, sizeof missing, "%s/none", tmpdir);
	ck_assert_int_eq(ab_store_open(missing, &st), AB_ENOENT);
	rm_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ hardening
 * Inputs the fuzz targets (tests/fuzz) found or were written against; each
 * has a reproducer under tests/fuzz/corpus/ too. */

static int meta_from(const char *text, ab_array_meta *m)
{
	json_t *doc = J(text);
	int rc = ab_array_meta_parse(doc, 3, "t", m);
	json_decref(doc);
	return rc;
}

/* A string shard whose second inner chunk is corrupt: the strings of the
 * first one (here the fill value) must not leak when decoding fails. */
START_TEST(test_vlen_shard_error_frees_strings)
{
	ab_array_meta m;
	ck_assert_int_eq(meta_from("{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[4],"
				   "\"data_type\":\"string\",\"chunk_grid\":{\"name\":\"regular\","
				   "\"configuration\":{\"chunk_shape\":[4]}},\"chunk_key_encoding\":"
				   "{\"name\":\"default\"},\"fill_value\":\"f\",\"codecs\":[{\"name\":"
				   "\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2],\"codecs\":"
				   "[{\"name\":\"vlen-utf8\"}],\"index_codecs\":[{\"name\":\"bytes\"}]}}]}",
				   &m), 0);
	/* inner chunk 0 absent, inner chunk 1: 3 bytes that are no vlen chunk */
	uint8_t shard[3 + 32];
	memset(shard, 0xff, sizeof shard);
	memcpy(shard, "bad", 3);
	ab_store_le64(shard + 3 + 16, 0);
	ab_store_le64(shard + 3 + 24, 3);
	char *out[4];
	ab_scratch scratch = { 0 };
	ck_assert_int_eq(ab_chunk_decode(&m.pipe, &m.dt, m.chunk, shard, sizeof shard, m.fill, m.fill_str,
					 out, sizeof out, &scratch), AB_ECORRUPT);
	/* (the ASan build's leak checker fails this test if the "f" strings of
	 * inner chunk 0 are lost) */
	ab_store_le64(shard + 3 + 16, AB_SHARD_EMPTY);
	ab_store_le64(shard + 3 + 24, AB_SHARD_EMPTY);
	ck_assert_int_eq(ab_chunk_decode(&m.pipe, &m.dt, m.chunk, shard, sizeof shard, m.fill, m.fill_str,
					 out, sizeof out, &scratch), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_str_eq(out[i], "f");
	ab_chunk_free_strings(out, 4);
	ab_scratch_free(&scratch);
	ab_array_meta_free(&m);
}
END_TEST

/* A 22-byte zstd frame whose header claims 2^40 decoded bytes, as an
 * intermediate stage (bytes | crc32c | zstd) and in a string chain: refused
 * as corrupt before any buffer is sized from the claim. */
START_TEST(test_lying_size_header_is_corrupt)
{
	uint8_t frame[4 + 1 + 8 + 3 + 1] = { 0x28, 0xb5, 0x2f, 0xfd, 0xe0 };
	ab_store_le64(frame + 5, (uint64_t)1 << 40);    /* frame content size */
	frame[13] = 1 << 3 | 1;                         /* last raw block, 1 byte */
	frame[16] = 'x';
	const char *chains[2] = {
		"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[4],\"data_type\":\"uint8\","
		"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4]}},"
		"\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":0,\"codecs\":["
		"{\"name\":\"bytes\"},{\"name\":\"crc32c\"},{\"name\":\"zstd\"}]}",
		"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[4],\"data_type\":\"string\","
		"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4]}},"
		"\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":\"\",\"codecs\":["
		"{\"name\":\"vlen-utf8\"},{\"name\":\"zstd\"}]}",
	};
	for (int k = 0; k < 2; k++) {
		ab_array_meta m;
		ck_assert_int_eq(meta_from(chains[k], &m), 0);
		ab_scratch scratch = { 0 };
		char *out[4];
		ck_assert_int_eq(ab_chunk_decode(&m.pipe, &m.dt, m.chunk, frame, sizeof frame, m.fill, m.fill_str,
						 out, sizeof out, &scratch), AB_ECORRUPT);
		ck_assert_ptr_nonnull(strstr(ab_last_error(), "announces"));
		ck_assert_uint_lt(scratch.b[0].cap + scratch.b[1].cap, (size_t)1 << 24);
		ab_scratch_free(&scratch);
		ab_array_meta_free(&m);
	}
}
END_TEST

/* An integer fill value no 64-bit integer holds is refused, not converted
 * (the conversion would be undefined behaviour). */
START_TEST(test_fill_real_out_of_range)
{
	ab_dtype_desc d;
	uint8_t item[16];
	ck_assert_int_eq(ab_dtype_parse_v3("int32", &d), 0);
	json_t *v = J("1e300");
	ck_assert_int_eq(ab_fill_parse(v, &d, 3, item, NULL), AB_EFORMAT);
	json_decref(v);
	v = J("-1e19");
	ck_assert_int_eq(ab_fill_parse(v, &d, 3, item, NULL), AB_EFORMAT);
	json_decref(v);
	ck_assert_int_eq(ab_dtype_parse_v3("uint64", &d), 0);
	v = J("1e19");
	ck_assert_int_eq(ab_fill_parse(v, &d, 3, item, NULL), 0);
	uint64_t u;
	memcpy(&u, item, 8);
	ck_assert_uint_eq(u, 10000000000000000000ULL);
	json_decref(v);
}
END_TEST

/* Column names come from the store's attributes: "../../x" must not reach a
 * node outside the store. */
START_TEST(test_obs_column_name_cannot_escape)
{
	make_tmpdir();
	char store[300];
	snprintf(store, sizeof store, "%s/store", tmpdir);
	write_text("store/zarr.json",
		   "{\"zarr_format\":3,\"node_type\":\"group\",\"attributes\":{\"encoding-type\":\"anndata\"}}");
	char x[512];
	snprintf(x, sizeof x, "%s", v3_array_json);
	write_text("store/X/zarr.json", x);
	write_text("store/obs/zarr.json",
		   "{\"zarr_format\":3,\"node_type\":\"group\",\"attributes\":{\"encoding-type\":"
		   "\"dataframe\",\"_index\":\"../../outside\",\"column-order\":[\"../../outside\"]}}");
	write_text("outside/zarr.json", v3_array_json); /* next to the store, not in it */
	ab_store *st;
	ck_assert_int_eq(ab_store_open(store, &st), 0);
	ab_anndata *ad;
	ck_assert_int_eq(ab_anndata_open(st, "", &ad), 0);
	ab_column_kind k;
	ck_assert_int_eq(ab_anndata_obs_column_kind(ad, "../../outside", &k), AB_EINVAL);
	ck_assert_int_eq(ab_anndata_obs_column_kind(ad, "_index", &k), AB_EINVAL);
	ab_column *c;
	ck_assert_int_eq(ab_anndata_obs_column(ad, "../../outside", &c), AB_EINVAL);
	ab_anndata_close(ad);
	ab_store_close(st);
	rm_tmpdir();
}
END_TEST

/* A FIFO planted under a metadata or chunk name must give an error, not a
 * reader blocked forever in open() (Check's timeout fails the test then). */
START_TEST(test_fifo_in_store_does_not_block)
{
	make_tmpdir();
	write_text("zarr.json", "{\"zarr_format\":3,\"node_type\":\"group\",\"attributes\":{}}");
	write_text("a/zarr.json", v3_array_json);
	char path[512];
	snprintf(path, sizeof path, "%s/a/c", tmpdir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/a/c/0", tmpdir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/a/c/0/0", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	snprintf(path, sizeof path, "%s/b", tmpdir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/b/zarr.json", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ab_store *st;
	ck_assert_int_eq(ab_store_open(tmpdir, &st), 0);
	ab_array *a;
	ck_assert_int_eq(ab_array_open(st, "a", &a), 0);
	uint16_t out[6];
	ck_assert_int_lt(ab_array_read_rows(a, 0, 2, out, sizeof out), 0);
	ab_array_close(a);
	ab_node_type t;
	ck_assert_int_lt(ab_node_type_of(st, "b", &t), 0);
	ab_store_close(st);
	rm_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ values */

/* numpy.result_type of the pairs (numpy 1.24, what anndata's concat uses). */
START_TEST(test_value_promote)
{
	static const struct { ab_dtype a, b, want; } cases[] = {
		{ AB_DT_BOOL, AB_DT_INT8, AB_DT_INT8 },
		{ AB_DT_BOOL, AB_DT_FLOAT32, AB_DT_FLOAT32 },
		{ AB_DT_INT8, AB_DT_INT64, AB_DT_INT64 },
		{ AB_DT_INT8, AB_DT_UINT8, AB_DT_INT16 },
		{ AB_DT_INT16, AB_DT_UINT16, AB_DT_INT32 },
		{ AB_DT_INT32, AB_DT_UINT32, AB_DT_INT64 },
		{ AB_DT_INT64, AB_DT_UINT64, AB_DT_FLOAT64 },
		{ AB_DT_INT16, AB_DT_UINT8, AB_DT_INT16 },
		{ AB_DT_UINT8, AB_DT_UINT32, AB_DT_UINT32 },
		{ AB_DT_FLOAT16, AB_DT_INT8, AB_DT_FLOAT16 },
		{ AB_DT_FLOAT16, AB_DT_UINT16, AB_DT_FLOAT32 },
		{ AB_DT_FLOAT16, AB_DT_INT32, AB_DT_FLOAT64 },
		{ AB_DT_FLOAT32, AB_DT_INT16, AB_DT_FLOAT32 },
		{ AB_DT_FLOAT32, AB_DT_INT32, AB_DT_FLOAT64 },
		{ AB_DT_FLOAT32, AB_DT_FLOAT64, AB_DT_FLOAT64 },
		{ AB_DT_FLOAT64, AB_DT_UINT64, AB_DT_FLOAT64 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ab_dtype got = (ab_dtype)-1, back = (ab_dtype)-1;
		ck_assert_int_eq(ab_dtype_promote(cases[k].a, cases[k].b, &got), 0);
		ck_assert_int_eq(ab_dtype_promote(cases[k].b, cases[k].a, &back), 0);
		ck_assert_msg(got == cases[k].want && back == cases[k].want, "%s + %s: %s / %s, want %s",
			      ab_dtype_name(cases[k].a), ab_dtype_name(cases[k].b), ab_dtype_name(got),
			      ab_dtype_name(back), ab_dtype_name(cases[k].want));
	}
	ab_dtype out;
	ck_assert_int_eq(ab_dtype_promote(AB_DT_STRING, AB_DT_INT8, &out), -1);
	ck_assert_int_eq(ab_dtype_promote(AB_DT_FLOAT32, AB_DT_COMPLEX64, &out), -1);
	ck_assert_int_eq(ab_dtype_promote(AB_DT_COMPLEX64, AB_DT_COMPLEX64, &out), 0);
	ck_assert_int_eq(out, AB_DT_COMPLEX64);
}
END_TEST

START_TEST(test_value_convert)
{
	/* Sources one byte off their alignment: runs take any alignment. */
	uint8_t raw[8 * 8 + 1];
	double d[] = { 1.5, -2.75, 3e38, 0.1, -0.0, 1e6, -7.9, 255.0 };
	memcpy(raw + 1, d, sizeof d);
	float f[8];
	ab_convert(AB_DT_FLOAT32, f, AB_DT_FLOAT64, raw + 1, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(f[i] == (float)d[i], "float64 -> float32 item %d: %g", i, f[i]);
	int32_t i32[8];
	ab_convert(AB_DT_INT32, i32, AB_DT_FLOAT64, raw + 1, 1);
	ab_convert(AB_DT_INT32, i32 + 1, AB_DT_FLOAT64, raw + 1 + 8, 1);
	ab_convert(AB_DT_INT32, i32 + 2, AB_DT_FLOAT64, raw + 1 + 48, 1);
	ck_assert_int_eq(i32[0], 1);
	ck_assert_int_eq(i32[1], -2);
	ck_assert_int_eq(i32[2], -7);
	/* integers go through int64: exact, narrowing wraps */
	int64_t big[3] = { INT64_MAX - 1, -1, 300 };
	int64_t big_out[3];
	uint64_t ubig_out[3];
	ab_convert(AB_DT_INT64, big_out, AB_DT_INT64, big, 3);
	ck_assert(memcmp(big, big_out, sizeof big) == 0);
	uint64_t u = UINT64_MAX - 1;
	ab_convert(AB_DT_UINT64, ubig_out, AB_DT_UINT64, &u, 1);
	ck_assert(ubig_out[0] == UINT64_MAX - 1);
	ab_convert(AB_DT_UINT64, ubig_out, AB_DT_INT64, big, 1);
	ck_assert(ubig_out[0] == (uint64_t)(INT64_MAX - 1));
	uint8_t u8[3];
	ab_convert(AB_DT_UINT8, u8, AB_DT_INT64, big + 1, 2);
	ck_assert_uint_eq(u8[0], 255);
	ck_assert_uint_eq(u8[1], 44);
	uint8_t b[3];
	double bd[3] = { 0.0, 0.5, -3.0 };
	ab_convert(AB_DT_BOOL, b, AB_DT_FLOAT64, bd, 3);
	ck_assert(b[0] == 0 && b[1] == 1 && b[2] == 1);
	uint16_t h[2] = { 0x3c00, 0xc500 }; /* 1.0, -5.0 */
	double hd[2];
	ab_convert(AB_DT_FLOAT64, hd, AB_DT_FLOAT16, h, 2);
	ck_assert(hd[0] == 1.0 && hd[1] == -5.0);
	/* into float16 (a float16 dataset loaded with an int8 one promotes so) */
	int8_t i8[3] = { -5, 100, 0 };
	uint16_t h16[3];
	ab_convert(AB_DT_FLOAT16, h16, AB_DT_INT8, i8, 3);
	ck_assert(h16[0] == 0xc500 && h16[1] == 0x5640 && h16[2] == 0);
	ab_convert(AB_DT_FLOAT16, h16, AB_DT_FLOAT64, d, 2);
	ck_assert(ab_half_to_double(h16[0]) == 1.5 && ab_half_to_double(h16[1]) == -2.75);
	int16_t s16[4] = { -3, 7, 1000, -32768 };
	ck_assert(ab_row_sum(AB_DT_INT16, s16, 4) == -3 + 7 + 1000 - 32768);
	float fs[3] = { 1.0f, 2.0f, 3.5f };
	ck_assert(ab_row_sum(AB_DT_FLOAT32, fs, 3) == 6.5);
	ck_assert(ab_row_sum(AB_DT_FLOAT64, d, 0) == 0);
}
END_TEST

START_TEST(test_value_items)
{
	uint64_t u[2] = { UINT64_MAX, (uint64_t)1 << 62 };
	ck_assert(ab_value_as_int64(AB_DT_UINT64, u, 0) == -1);
	ck_assert(ab_value_as_int64(AB_DT_UINT64, u, 1) == (int64_t)1 << 62);
	ck_assert(ab_value_as_double(AB_DT_UINT64, u, 0) == 18446744073709551616.0);
	int8_t i8[2] = { -128, 127 };
	ck_assert(ab_value_as_int64(AB_DT_INT8, i8, 0) == -128);
	ck_assert(ab_value_as_double(AB_DT_INT8, i8, 1) == 127.0);
	uint16_t h[2] = { 0x3555, 0x7bff }; /* 0.333251953125, 65504 */
	ck_assert(ab_value_as_double(AB_DT_FLOAT16, h, 0) == 0.333251953125);
	ck_assert(ab_value_as_double(AB_DT_FLOAT16, h, 1) == 65504.0);
	float c64[4] = { 1.5f, 9.0f, -2.5f, 9.0f };
	ck_assert(ab_value_as_double(AB_DT_COMPLEX64, c64, 1) == -2.5);
	double f64[2] = { -7.9, 7.9 };
	ck_assert(ab_value_as_int64(AB_DT_FLOAT64, f64, 0) == -7);
	ck_assert(ab_value_as_int64(AB_DT_FLOAT64, f64, 1) == 7);
	ck_assert(ab_item_as_double(AB_DT_FLOAT64, NULL, 3) == 0);
	ck_assert(ab_item_as_double(AB_DT_FLOAT64, f64, 1) == 7.9);
	ck_assert(ab_dtype_is_integer(AB_DT_UINT64) && ab_dtype_is_integer(AB_DT_INT8));
	ck_assert(!ab_dtype_is_integer(AB_DT_BOOL) && !ab_dtype_is_integer(AB_DT_FLOAT16));
	/* no numeric value: a value, not an endless recursion between the two */
	const char *strs[1] = { "12" };
	ck_assert(isnan(ab_value_as_double(AB_DT_STRING, strs, 0)));
	ck_assert(isnan(ab_item_as_double(AB_DT_STRING, strs, 0)));
	ck_assert(ab_value_as_int64(AB_DT_STRING, strs, 0) == 0);
	ck_assert(isnan(ab_value_as_double((ab_dtype)99, f64, 0)));
}
END_TEST

/* Every value that fits comes back from its item unchanged; every one that
 * does not fit is refused before a store could be undefined. */
START_TEST(test_value_fits_and_store)
{
	static const struct { ab_dtype dt; double v; int fits; } cases[] = {
		{ AB_DT_BOOL, 0, 1 }, { AB_DT_BOOL, 1, 1 }, { AB_DT_BOOL, 2, 0 }, { AB_DT_BOOL, 0.5, 0 },
		{ AB_DT_INT8, -128, 1 }, { AB_DT_INT8, 127, 1 }, { AB_DT_INT8, 128, 0 }, { AB_DT_INT8, -129, 0 },
		{ AB_DT_INT8, 1.5, 0 }, { AB_DT_INT8, NAN, 0 },
		{ AB_DT_UINT8, 255, 1 }, { AB_DT_UINT8, 256, 0 }, { AB_DT_UINT8, -1, 0 },
		{ AB_DT_INT16, -32768, 1 }, { AB_DT_INT16, 32768, 0 },
		{ AB_DT_UINT16, 65535, 1 }, { AB_DT_UINT16, 65536, 0 },
		{ AB_DT_INT32, -2147483648.0, 1 }, { AB_DT_INT32, 2147483648.0, 0 },
		{ AB_DT_UINT32, 4294967295.0, 1 }, { AB_DT_UINT32, 4294967296.0, 0 },
		{ AB_DT_INT64, -9223372036854775808.0, 1 }, { AB_DT_INT64, 9223372036854775808.0, 0 },
		{ AB_DT_INT64, 9223372036854774784.0, 1 }, { AB_DT_INT64, INFINITY, 0 },
		{ AB_DT_UINT64, 18446744073709549568.0, 1 }, { AB_DT_UINT64, 18446744073709551616.0, 0 },
		{ AB_DT_UINT64, -1, 0 },
		{ AB_DT_FLOAT32, 0.5, 1 }, { AB_DT_FLOAT32, 0.1, 0 }, { AB_DT_FLOAT32, 16777217.0, 0 },
		{ AB_DT_FLOAT32, 3.4028234663852886e38, 1 }, { AB_DT_FLOAT32, 1e39, 0 },
		{ AB_DT_FLOAT32, INFINITY, 1 }, { AB_DT_FLOAT32, -INFINITY, 1 },
		{ AB_DT_FLOAT16, 65504, 1 }, { AB_DT_FLOAT16, 65505, 0 }, { AB_DT_FLOAT16, 2049, 0 },
		{ AB_DT_FLOAT16, 0.333251953125, 1 }, { AB_DT_FLOAT16, 1.0 / 3, 0 },
		{ AB_DT_FLOAT16, 5.9604644775390625e-8, 1 }, { AB_DT_FLOAT16, -0.0, 1 },
		{ AB_DT_FLOAT64, 0.1, 1 }, { AB_DT_FLOAT64, -INFINITY, 1 },
		{ AB_DT_COMPLEX64, 0, 0 }, { AB_DT_STRING, 0, 0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ab_dtype dt = cases[k].dt;
		double v = cases[k].v;
		ck_assert_msg(ab_value_fits(dt, v) == cases[k].fits, "%s %.17g: fits %d, want %d",
			      ab_dtype_name(dt), v, ab_value_fits(dt, v), cases[k].fits);
		if (!cases[k].fits)
			continue;
		_Alignas(8) uint8_t item[16] = { 0 };
		ck_assert_int_eq(ab_value_store_double(dt, item, 0, v), 0);
		double back = ab_value_as_double(dt, item, 0);
		ck_assert_msg(back == v && signbit(back) == signbit(v), "%s %.17g came back as %.17g",
			      ab_dtype_name(dt), v, back);
	}
	/* NaN fits the floats and stays NaN */
	_Alignas(8) uint8_t item[16];
	ck_assert(ab_value_fits(AB_DT_FLOAT32, NAN) && ab_value_fits(AB_DT_FLOAT16, NAN));
	ck_assert_int_eq(ab_value_store_double(AB_DT_FLOAT16, item, 0, NAN), 0);
	ck_assert(isnan(ab_value_as_double(AB_DT_FLOAT16, item, 0)));
	/* floats round to nearest, integers truncate toward zero */
	ck_assert_int_eq(ab_value_store_double(AB_DT_FLOAT16, item, 0, 2049), 0);
	ck_assert(ab_value_as_double(AB_DT_FLOAT16, item, 0) == 2048);
	ck_assert_int_eq(ab_value_store_double(AB_DT_FLOAT16, item, 0, 2051), 0);
	ck_assert(ab_value_as_double(AB_DT_FLOAT16, item, 0) == 2052);
	ck_assert_int_eq(ab_value_store_double(AB_DT_INT16, item, 0, -3.9), 0);
	ck_assert(ab_value_as_int64(AB_DT_INT16, item, 0) == -3);
	ck_assert_int_eq(ab_value_store_double(AB_DT_BOOL, item, 0, 0.25), 0);
	ck_assert(ab_value_as_int64(AB_DT_BOOL, item, 0) == 1);
	ck_assert_int_eq(ab_value_store_double(AB_DT_STRING, item, 0, 1), AB_ETYPE);
	ck_assert_int_eq(ab_value_store_double(AB_DT_COMPLEX128, item, 0, 1), AB_ETYPE);
}
END_TEST

START_TEST(test_column_encoding_kind)
{
	static const struct { const char *enc; ab_column_kind kind; } known[] = {
		{ "categorical", AB_COL_CATEGORICAL },
		{ "nullable-integer", AB_COL_NULLABLE_INTEGER },
		{ "nullable-boolean", AB_COL_NULLABLE_BOOLEAN },
		{ "nullable-string-array", AB_COL_NULLABLE_STRING },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		ab_column_kind k = AB_COL_ARRAY;
		ck_assert_int_eq(ab_column_encoding_kind(known[i].enc, &k), 0);
		ck_assert_msg(k == known[i].kind, "%s: kind %d, want %d", known[i].enc, (int)k, (int)known[i].kind);
	}
	static const char *const unknown[] = { "csr_matrix", "array", "string-array", "nullable-integer ",
					       "Categorical", "", NULL };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		ab_column_kind k = (ab_column_kind)-7;
		ck_assert_int_eq(ab_column_encoding_kind(unknown[i], &k), -1);
		ck_assert_int_eq((int)k, -7);
	}
}
END_TEST

/* The writer's array metadata, read back by the reader's parser: the
 * same shape, grid, dtype, fill value and codec chain. */
START_TEST(test_array_meta_json_roundtrip)
{
	static const struct { int zf; ab_dtype dt; ab_compressor comp; uint64_t shard_rows; } cases[] = {
		{ 3, AB_DT_FLOAT32, AB_COMPRESSOR_BLOSC_LZ4, 0 },
		{ 3, AB_DT_INT64, AB_COMPRESSOR_ZSTD, 40 },
		{ 3, AB_DT_STRING, AB_COMPRESSOR_GZIP, 0 },
		{ 3, AB_DT_BOOL, AB_COMPRESSOR_NONE, 20 },
		{ 2, AB_DT_FLOAT64, AB_COMPRESSOR_BLOSC_ZSTD, 0 },
		{ 2, AB_DT_UINT16, AB_COMPRESSOR_NONE, 0 },
		{ 2, AB_DT_STRING, AB_COMPRESSOR_ZSTD, 0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ab_writer_array_config cfg;
		ab_writer_array_config_init(&cfg);
		cfg.dtype = cases[k].dt;
		cfg.ndim = cases[k].dt == AB_DT_STRING ? 1 : 2;
		cfg.shape[1] = 7;
		cfg.chunk_rows = 10;
		cfg.shard_rows = cases[k].shard_rows;
		cfg.compressor = cases[k].comp;
		cfg.attributes_json = "{\"encoding-type\": \"array\"}";
		ab_b2b_codec codec;
		int present;
		ck_assert_int_eq(ab_compressor_codec(cfg.compressor, -1, (int)ab_dtype_size(cfg.dtype), &codec,
						     &present), 0);
		json_t *meta = ab_array_meta_json(cases[k].zf, &cfg, 95, present ? &codec : NULL);
		ck_assert_ptr_nonnull(meta);
		const json_t *doc = cases[k].zf == 3 ? meta : json_object_get(meta, ".zarray");
		const json_t *attrs = cases[k].zf == 3 ? json_object_get(meta, "attributes")
						      : json_object_get(meta, ".zattrs");
		ck_assert_str_eq(json_string_value(json_object_get(attrs, "encoding-type")), "array");
		ab_array_meta m;
		ck_assert_msg(ab_array_meta_parse(doc, cases[k].zf, "t", &m) == 0, "case %zu: %s", k, ab_last_error());
		ck_assert_int_eq(m.ndim, cfg.ndim);
		ck_assert_uint_eq(m.shape[0], 95);
		ck_assert_uint_eq(m.chunk[0], cfg.shard_rows ? cfg.shard_rows : cfg.chunk_rows);
		if (cfg.ndim == 2)
			ck_assert(m.shape[1] == 7 && m.chunk[1] == 7);
		ck_assert_int_eq(m.dt.dt, cfg.dtype);
		if (cfg.dtype != AB_DT_STRING)
			for (size_t b = 0; b < ab_dtype_size(cfg.dtype); b++)
				ck_assert_uint_eq(m.fill[b], 0);
		const ab_pipeline *p = &m.pipe;
		if (cfg.shard_rows) {
			ck_assert_int_eq(p->a2b, AB_A2B_SHARD);
			ck_assert_uint_eq(p->shard->inner_shape[0], cfg.chunk_rows);
			ck_assert(p->shard->index_crc32c && !p->shard->index_at_start);
			p = &p->shard->inner;
		}
		ck_assert_int_eq(p->a2b, cfg.dtype == AB_DT_STRING ? AB_A2B_VLEN : AB_A2B_BYTES);
		ck_assert_int_eq(p->nb2b, present);
		if (present) {
			ck_assert_int_eq(p->b2b[0].kind, codec.kind);
			ck_assert_int_eq(p->b2b[0].level, codec.level);
			if (codec.kind == AB_B2B_BLOSC)
				ck_assert(strcmp(p->b2b[0].cname, codec.cname) == 0 &&
					  p->b2b[0].shuffle == codec.shuffle && p->b2b[0].typesize == codec.typesize);
		}
		ab_array_meta_free(&m);
		json_decref(meta);
	}
	/* attributes that are not an object: no document */
	ab_writer_array_config cfg;
	ab_writer_array_config_init(&cfg);
	cfg.attributes_json = "[1]";
	ck_assert_ptr_null(ab_array_meta_json(3, &cfg, 1, NULL));
}
END_TEST

static Suite *formats_suite(void)
{
	Suite *s = suite_create("formats");
	TCase *t = tcase_create("util");
	tcase_add_test(t, test_natural_order);
	tcase_add_test(t, test_node_normalize);
	tcase_add_test(t, test_byteswap);
	tcase_add_test(t, test_copy_box_matches_naive);
	tcase_add_test(t, test_transpose_matches_naive);
	suite_add_tcase(s, t);
	t = tcase_create("dtype");
	tcase_add_test(t, test_dtype_v2);
	tcase_add_test(t, test_dtype_v3);
	tcase_add_test(t, test_fill_values);
	suite_add_tcase(s, t);
	t = tcase_create("value");
	tcase_add_test(t, test_value_promote);
	tcase_add_test(t, test_value_convert);
	tcase_add_test(t, test_value_items);
	tcase_add_test(t, test_value_fits_and_store);
	suite_add_tcase(s, t);
	t = tcase_create("meta");
	tcase_add_test(t, test_chunk_keys);
	tcase_add_test(t, test_meta_errors);
	tcase_add_test(t, test_sharding_pipeline);
	tcase_add_test(t, test_decode_big_endian_transposed);
	tcase_add_test(t, test_array_meta_json_roundtrip);
	suite_add_tcase(s, t);
	t = tcase_create("store");
	tcase_add_test(t, test_column_encoding_kind);
	tcase_add_test(t, test_store_v3_roundtrip);
	tcase_add_test(t, test_store_errors);
	suite_add_tcase(s, t);
	t = tcase_create("hardening");
	tcase_add_test(t, test_vlen_shard_error_frees_strings);
	tcase_add_test(t, test_lying_size_header_is_corrupt);
	tcase_add_test(t, test_fill_real_out_of_range);
	tcase_add_test(t, test_obs_column_name_cannot_escape);
	tcase_add_test(t, test_fifo_in_store_does_not_block);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(formats_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
