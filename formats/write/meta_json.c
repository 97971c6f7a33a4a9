/*
 * meta_json.c - the metadata documents of the store writer, as zarr-python
 * writes them: v3 zarr.json per node and, in the root's, the whole hierarchy
 * again as inline consolidated metadata (zarr-python 3); v2 .zgroup, .zarray,
 * .zattrs and a root .zmetadata (zarr-python 2). Every document here has a
 * reader in formats/ that parses it back: the codecs (pipeline.c), dtypes
 * and fill values (dtype.c), array metadata (meta.c), consolidated metadata
 * (store.c).
 */
#include "writer_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "last_error.h"

/* ------------------------------------------------------------------------- */
/* pieces: attributes, codecs, dtypes, fill values                           */
/* ------------------------------------------------------------------------- */

json_t *wr_parse_attrs(const char *text, int *rc)
{
	*rc = 0;
	if (!text || !*text)
		return json_object();
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		*rc = ab_error_set(AB_EINVAL, "attributes are not a JSON object: %s",
				   j ? "not an object" : jerr.text);
		return NULL;
	}
	return j;
}

static const char *shuffle_name(int s)
{
	return s == AB_BLOSC_BITSHUFFLE ? "bitshuffle" : s == AB_BLOSC_SHUFFLE ? "shuffle" : "noshuffle";
}

json_t *ab_codec_json_v3(const ab_b2b_codec *c)
{
	switch (c->kind) {
	case AB_B2B_BLOSC:
		return json_pack("{s:s, s:{s:i, s:s, s:i, s:s, s:I}}", "name", "blosc", "configuration",
				 "typesize", c->typesize, "cname", c->cname, "clevel", c->level,
				 "shuffle", shuffle_name(c->shuffle), "blocksize", (json_int_t)c->blocksize);
	case AB_B2B_ZSTD:
		return json_pack("{s:s, s:{s:i, s:b}}", "name", "zstd", "configuration", "level",
				 c->level, "checksum", c->checksum);
	case AB_B2B_GZIP:
		return json_pack("{s:s, s:{s:i}}", "name", "gzip", "configuration", "level", c->level);
	case AB_B2B_CRC32C:
		return json_pack("{s:s}", "name", "crc32c");
	default:
		return NULL;
	}
}

json_t *ab_codec_json_v2(const ab_b2b_codec *c)
{
	switch (c->kind) {
	case AB_B2B_BLOSC:
		return json_pack("{s:s, s:s, s:i, s:i, s:I}", "id", "blosc", "cname", c->cname,
				 "clevel", c->level, "shuffle", c->shuffle, "blocksize",
				 (json_int_t)c->blocksize);
	case AB_B2B_ZSTD:
		return json_pack("{s:s, s:i}", "id", "zstd", "level", c->level);
	case AB_B2B_GZIP:
		return json_pack("{s:s, s:i}", "id", "gzip", "level", c->level);
	case AB_B2B_ZLIB:
		return json_pack("{s:s, s:i}", "id", "zlib", "level", c->level);
	default:
		return NULL;
	}
}

/* v2 dtype strings of our dtypes (little endian hosts only). */
static const char *dtype_v2(ab_dtype dt)
{
	switch (dt) {
	case AB_DT_BOOL: return "|b1";
	case AB_DT_INT8: return "|i1";
	case AB_DT_INT16: return "<i2";
	case AB_DT_INT32: return "<i4";
	case AB_DT_INT64: return "<i8";
	case AB_DT_UINT8: return "|u1";
	case AB_DT_UINT16: return "<u2";
	case AB_DT_UINT32: return "<u4";
	case AB_DT_UINT64: return "<u8";
	case AB_DT_FLOAT16: return "<f2";
	case AB_DT_FLOAT32: return "<f4";
	case AB_DT_FLOAT64: return "<f8";
	case AB_DT_COMPLEX64: return "<c8";
	case AB_DT_COMPLEX128: return "<c16";
	case AB_DT_STRING: return "|O";
	}
	return NULL;
}

/* The fill value as JSON: 0 / 0.0 / false / "" (complex: [0.0, 0.0] in v3). */
static json_t *fill_json(ab_dtype dt, int zarr_format)
{
	switch (dt) {
	case AB_DT_BOOL: return json_false();
	case AB_DT_FLOAT16: case AB_DT_FLOAT32: case AB_DT_FLOAT64: return json_real(0.0);
	case AB_DT_COMPLEX64: case AB_DT_COMPLEX128:
		return zarr_format == 3 ? json_pack("[f, f]", 0.0, 0.0) : json_real(0.0);
	case AB_DT_STRING: return zarr_format == 3 ? json_string("") : json_null();
	default: return json_integer(0);
	}
}

/* ------------------------------------------------------------------------- */
/* node documents                                                            */
/* ------------------------------------------------------------------------- */

json_t *wr_group_meta(int zarr_format, json_t *attrs /* stolen */)
{
	if (zarr_format == 3)
		return json_pack("{s:o, s:i, s:s}", "attributes", attrs, "zarr_format", 3,
				 "node_type", "group");
	return json_pack("{s:{s:i}, s:o}", ".zgroup", "zarr_format", 2, ".zattrs", attrs);
}

json_t *ab_array_meta_json(int zarr_format, const ab_writer_array_config *c, uint64_t rows,
			   const ab_b2b_codec *codec)
{
	int rc, is_string = c->dtype == AB_DT_STRING;
	json_t *attrs = wr_parse_attrs(c->attributes_json, &rc);
	if (!attrs)
		return NULL;
	json_t *shape = json_array(), *chunks = json_array(), *inner = json_array();
	for (int d = 0; d < c->ndim; d++) {
		uint64_t s = d == 0 ? rows : c->shape[d];
		uint64_t ch = d == 0 ? (c->shard_rows ? c->shard_rows : c->chunk_rows) : (s ? s : 1);
		json_array_append_new(shape, json_integer((json_int_t)s));
		json_array_append_new(chunks, json_integer((json_int_t)ch));
		json_array_append_new(inner, json_integer((json_int_t)(d == 0 ? c->chunk_rows : ch)));
	}
	if (zarr_format == 2) {
		json_t *filters = is_string ? json_pack("[{s:s}]", "id", "vlen-utf8") : json_null();
		json_t *comp = codec ? ab_codec_json_v2(codec) : json_null();
		json_decref(inner);
		json_t *zarray = json_pack("{s:o, s:o, s:s, s:o, s:o, s:s, s:o, s:i, s:s}",
					   "chunks", chunks, "compressor", comp, "dtype",
					   dtype_v2(c->dtype), "fill_value", fill_json(c->dtype, 2),
					   "filters", filters, "order", "C", "shape", shape,
					   "zarr_format", 2, "dimension_separator", ".");
		return json_pack("{s:o, s:o}", ".zarray", zarray, ".zattrs", attrs);
	}
	json_t *a2b = is_string ? json_pack("{s:s, s:{}}", "name", "vlen-utf8", "configuration")
		: ab_dtype_size(c->dtype) > 1
		? json_pack("{s:s, s:{s:s}}", "name", "bytes", "configuration", "endian", "little")
		: json_pack("{s:s}", "name", "bytes");
	json_t *codecs = json_pack("[o]", a2b);
	if (codec)
		json_array_append_new(codecs, ab_codec_json_v3(codec));
	if (c->shard_rows) {
		ab_b2b_codec crc = { .kind = AB_B2B_CRC32C };
		json_t *sh = json_pack("{s:s, s:{s:o, s:o, s:[{s:s, s:{s:s}}, o], s:s}}",
				       "name", "sharding_indexed", "configuration",
				       "chunk_shape", inner, "codecs", codecs,
				       "index_codecs", "name", "bytes", "configuration", "endian", "little",
				       ab_codec_json_v3(&crc), "index_location", "end");
		codecs = json_pack("[o]", sh);
	} else {
		json_decref(inner);
	}
	return json_pack("{s:o, s:s, s:{s:s, s:{s:o}}, s:{s:s, s:{s:s}}, s:o, s:o, s:o, s:i, s:s, s:[]}",
			 "shape", shape, "data_type", ab_dtype_name(c->dtype),
			 "chunk_grid", "name", "regular", "configuration", "chunk_shape", chunks,
			 "chunk_key_encoding", "name", "default", "configuration", "separator", "/",
			 "fill_value", fill_json(c->dtype, 3), "codecs", codecs, "attributes", attrs,
			 "zarr_format", 3, "node_type", "array", "storage_transformers");
}

static int write_json(const char *dir, const char *name, const json_t *doc)
{
	char *path = ab_path_join(dir, name);
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int rc;
	if (!path || !text) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
	} else {
		size_t n = strlen(text);
		text[n] = '\n'; /* the dump's NUL becomes a final newline */
		rc = wr_write_file(path, text, n + 1);
	}
	free(path);
	free(text);
	return rc;
}

int wr_write_node_meta(const char *dir, int zarr_format, const json_t *meta)
{
	if (zarr_format == 3)
		return write_json(dir, "zarr.json", meta);
	const char *kind = json_object_get(meta, ".zarray") ? ".zarray" : ".zgroup";
	int rc = write_json(dir, kind, json_object_get(meta, kind));
	json_t *attrs = json_object_get(meta, ".zattrs");
	if (!rc && json_object_size(attrs))
		rc = write_json(dir, ".zattrs", attrs);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* consolidated metadata                                                     */
/* ------------------------------------------------------------------------- */

static int depth_of(const char *p)
{
	int d = 0;
	for (; *p; p++)
		d += *p == '/';
	return d;
}

/* zarr-python 3 orders consolidated keys by depth, then by name. */
static int key_cmp(const void *x, const void *y)
{
	const char *a = *(const char *const *)x, *b = *(const char *const *)y;
	int da = depth_of(a), db = depth_of(b);
	if (da != db)
		return da < db ? -1 : 1;
	return strcmp(a, b);
}

int wr_write_consolidated(const char *dir, int zarr_format, const json_t *nodes)
{
	size_t n = json_object_size(nodes), k = 0;
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	if (!keys)
		return ab_error_set(AB_ENOMEM, "out of memory");
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)nodes, key, v)
		if (*key)
			keys[k++] = key;
	qsort(keys, k, sizeof *keys, key_cmp);
	json_t *root = json_object_get(nodes, "");
	int rc;
	if (zarr_format == 3) {
		json_t *md = json_object();
		for (size_t i = 0; i < k; i++)
			json_object_set(md, keys[i], json_object_get(nodes, keys[i]));
		json_t *doc = json_pack("{s:O, s:i, s:{s:s, s:b, s:o}, s:s}",
					"attributes", json_object_get(root, "attributes"),
					"zarr_format", 3, "consolidated_metadata", "kind", "inline",
					"must_understand", 0, "metadata", md, "node_type", "group");
		rc = doc ? write_json(dir, "zarr.json", doc) : ab_error_set(AB_ENOMEM, "out of memory");
		json_decref(doc);
	} else {
		json_t *md = json_object();
		json_object_set(md, ".zgroup", json_object_get(root, ".zgroup"));
		if (json_object_size(json_object_get(root, ".zattrs")))
			json_object_set(md, ".zattrs", json_object_get(root, ".zattrs"));
		char buf[PATH_MAX];
		for (size_t i = 0; i < k; i++) {
			json_t *m = json_object_get(nodes, keys[i]);
			const char *kind = json_object_get(m, ".zarray") ? ".zarray" : ".zgroup";
			snprintf(buf, sizeof buf, "%s/%s", keys[i], kind);
			json_object_set(md, buf, json_object_get(m, kind));
			if (json_object_size(json_object_get(m, ".zattrs"))) {
				snprintf(buf, sizeof buf, "%s/.zattrs", keys[i]);
				json_object_set(md, buf, json_object_get(m, ".zattrs"));
			}
		}
		json_t *doc = json_pack("{s:o, s:i}", "metadata", md, "zarr_consolidated_format", 1);
		rc = doc ? write_json(dir, ".zmetadata", doc) : ab_error_set(AB_ENOMEM, "out of memory");
		json_decref(doc);
	}
	free(keys);
	return rc;
}
