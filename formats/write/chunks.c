/*
 * chunks.c - arrays of the store writer, appended row by row: chunks encoded
 * as they fill, written as chunk files or one after the other into a shard
 * whose index goes last.
 *
 * Why rows only: every array an AnnData collection holds is read by rows
 * (X, its data/indices, obs columns), so chunking only axis 0 keeps the
 * writer streaming: a chunk is a run of whole rows, it can be encoded as soon
 * as its last row arrives, and a shard is a run of chunks written one after
 * the other with the index last. Nothing is ever rewritten or seeked back to.
 */
#include "writer_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "last_error.h"

/* ------------------------------------------------------------------------- */
/* codecs and keys                                                           */
/* ------------------------------------------------------------------------- */

int ab_compressor_parse(const char *name, ab_compressor *out)
{
	static const struct { const char *n; ab_compressor c; } tab[] = {
		{ "none", AB_COMPRESSOR_NONE }, { "blosc-lz4", AB_COMPRESSOR_BLOSC_LZ4 },
		{ "blosc-zstd", AB_COMPRESSOR_BLOSC_ZSTD }, { "zstd", AB_COMPRESSOR_ZSTD },
		{ "gzip", AB_COMPRESSOR_GZIP },
	};
	if (!out)
		return ab_error_set(AB_EINVAL, "ab_compressor_parse: null argument");
	for (size_t i = 0; name && i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(name, tab[i].n) == 0) {
			*out = tab[i].c;
			return 0;
		}
	return ab_error_set(AB_EINVAL,
			    "unknown compressor '%s' (none, blosc-lz4, blosc-zstd, zstd, gzip)",
			    name ? name : "(null)");
}

const char *ab_compressor_name(ab_compressor c)
{
	switch (c) {
	case AB_COMPRESSOR_NONE: return "none";
	case AB_COMPRESSOR_BLOSC_LZ4: return "blosc-lz4";
	case AB_COMPRESSOR_BLOSC_ZSTD: return "blosc-zstd";
	case AB_COMPRESSOR_ZSTD: return "zstd";
	case AB_COMPRESSOR_GZIP: return "gzip";
	}
	return "unknown";
}

int ab_compressor_codec(ab_compressor c, int level, int typesize, ab_b2b_codec *out,
			int *present)
{
	memset(out, 0, sizeof *out);
	*present = 1;
	switch (c) {
	case AB_COMPRESSOR_NONE:
		*present = 0;
		return 0;
	case AB_COMPRESSOR_BLOSC_LZ4:
	case AB_COMPRESSOR_BLOSC_ZSTD:
		out->kind = AB_B2B_BLOSC;
		snprintf(out->cname, sizeof out->cname, "%s",
			 c == AB_COMPRESSOR_BLOSC_LZ4 ? "lz4" : "zstd");
		out->level = level < 0 ? 3 : level;
		out->shuffle = AB_BLOSC_SHUFFLE;
		out->typesize = typesize < 1 ? 1 : typesize;
		out->blocksize = 0;
		if (out->level > 9)
			return ab_error_set(AB_EINVAL, "blosc: level %d outside 0..9", level);
		return 0;
	case AB_COMPRESSOR_ZSTD:
		out->kind = AB_B2B_ZSTD;
		out->level = level < 0 ? 3 : level;
		if (out->level > 22)
			return ab_error_set(AB_EINVAL, "zstd: level %d outside 0..22", level);
		return 0;
	case AB_COMPRESSOR_GZIP:
		out->kind = AB_B2B_GZIP;
		out->level = level < 0 ? 5 : level;
		if (out->level > 9)
			return ab_error_set(AB_EINVAL, "gzip: level %d outside 0..9", level);
		return 0;
	}
	return ab_error_set(AB_EINVAL, "unknown compressor %d", (int)c);
}

void ab_shard_index_encode(const uint64_t *entries, uint64_t n, uint8_t *out)
{
	for (uint64_t i = 0; i < 2 * n; i++)
		ab_store_le64(out + 8 * i, entries[i]);
	ab_store_le32(out + 16 * n, ab_crc32c(0, out, (size_t)(16 * n)));
}

void ab_chunk_key_axis0(int zarr_format, int ndim, uint64_t i, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, zarr_format == 2 ? "%llu" : "c/%llu",
				    (unsigned long long)i);
	for (int d = 1; d < ndim && n + 2 < size; d++)
		n += (size_t)snprintf(buf + n, size - n, zarr_format == 2 ? ".0" : "/0");
}

/* ------------------------------------------------------------------------- */
/* arrays                                                                    */
/* ------------------------------------------------------------------------- */

void ab_writer_array_config_init(ab_writer_array_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->dtype = AB_DT_FLOAT32;
	cfg->ndim = 1;
	cfg->chunk_rows = 1;
	cfg->level = -1;
}

void wr_array_free(ab_writer_array *a)
{
	if (!a)
		return;
	if (a->strs) {
		for (uint64_t i = 0; i < a->cfg.chunk_rows * a->row_items; i++)
			free(a->strs[i]);
		free(a->strs);
	}
	if (a->shard_fd >= 0)
		close(a->shard_fd);
	free(a->chunk);
	free(a->fail_msg);
	free(a->index);
	free(a->shard_file);
	ab_buf_free(&a->enc);
	free(a->node);
	free(a->dir);
	free((char *)a->cfg.attributes_json);
	free(a);
}

static void unlink_open(ab_writer_array *a)
{
	for (ab_writer_array **p = &a->w->open; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			return;
		}
}

int ab_writer_array_create(ab_writer *w, const char *node, const ab_writer_array_config *cfg,
			   ab_writer_array **out)
{
	if (!w || !cfg || !out)
		return ab_error_set(AB_EINVAL, "ab_writer_array_create: null argument");
	*out = NULL;
	if (cfg->ndim < 1 || cfg->ndim > AB_MAX_NDIM)
		return ab_error_set(AB_EINVAL, "%s: ndim %d outside 1..%d", node, cfg->ndim, AB_MAX_NDIM);
	if (cfg->chunk_rows < 1)
		return ab_error_set(AB_EINVAL, "%s: chunk_rows must be at least 1", node);
	if (cfg->shard_rows && (cfg->shard_rows % cfg->chunk_rows))
		return ab_error_set(AB_EINVAL, "%s: shard_rows %llu is not a multiple of chunk_rows %llu",
				    node, (unsigned long long)cfg->shard_rows,
				    (unsigned long long)cfg->chunk_rows);
	if (cfg->shard_rows && w->zarr_format != 3)
		return ab_error_set(AB_EINVAL, "%s: sharding needs zarr v3", node);
	if ((int)cfg->dtype < AB_DT_BOOL || cfg->dtype > AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "%s: unknown dtype %d", node, (int)cfg->dtype);

	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	if (!*n || json_object_get(w->nodes, n)) {
		rc = ab_error_set(AB_EINVAL, "'%s': %s", n, *n ? "node exists already" : "the root cannot be an array");
		free(n);
		return rc;
	}
	for (ab_writer_array *o = w->open; o; o = o->next)
		if (strcmp(o->node, n) == 0) {
			free(n);
			return ab_error_set(AB_EINVAL, "'%s': array is being written already", node);
		}
	int prc = 0;
	json_t *attrs = wr_parse_attrs(cfg->attributes_json, &prc);
	if (!attrs) {
		free(n);
		return prc;
	}
	json_decref(attrs);
	if ((rc = wr_ensure_parents(w, n))) {
		free(n);
		return rc;
	}

	ab_writer_array *a = calloc(1, sizeof *a);
	if (!a) {
		free(n);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	a->w = w;
	a->node = n;
	a->shard_fd = -1;
	a->cfg = *cfg;
	a->cfg.attributes_json = cfg->attributes_json ? strdup(cfg->attributes_json) : NULL;
	a->is_string = cfg->dtype == AB_DT_STRING;
	a->itemsize = a->is_string ? sizeof(char *) : ab_dtype_size(cfg->dtype);
	a->row_items = 1;
	for (int d = 1; d < cfg->ndim; d++) {
		if (ab_mul_u64(a->row_items, cfg->shape[d], &a->row_items)) {
			wr_array_free(a);
			return ab_error_set(AB_EINVAL, "%s: shape overflows", node);
		}
	}
	uint64_t chunk_items, chunk_bytes;
	if (ab_mul_u64(cfg->chunk_rows, a->row_items, &chunk_items) ||
	    ab_mul_u64(chunk_items, a->itemsize, &chunk_bytes) || chunk_bytes > (uint64_t)1 << 40) {
		wr_array_free(a);
		return ab_error_set(AB_EINVAL, "%s: chunk of %llu rows is too large", node,
				    (unsigned long long)cfg->chunk_rows);
	}
	rc = ab_compressor_codec(cfg->compressor, cfg->level,
				 a->is_string ? 1 : (int)ab_dtype_size(cfg->dtype), &a->codec,
				 &a->has_codec);
	if (rc == 0 && a->codec.kind == AB_B2B_BLOSC) {
		if (cfg->blosc_blocksize > (size_t)1 << 29)
			rc = ab_error_set(AB_EINVAL, "blosc block size %zu: at most 512 MiB",
					  cfg->blosc_blocksize);
		a->codec.blocksize = cfg->blosc_blocksize;
		a->codec.unsplit = cfg->blosc_unsplit != 0;
	}
	if (rc) {
		wr_array_free(a);
		return ab_error_prefix(rc, "%s: ", node);
	}
	if (a->is_string)
		a->strs = calloc(chunk_items ? chunk_items : 1, sizeof(char *));
	else
		a->chunk = calloc(chunk_bytes ? chunk_bytes : 1, 1);
	a->dir = ab_path_join(w->tmp_path, n);
	if (cfg->shard_rows) {
		a->per_shard = cfg->shard_rows / cfg->chunk_rows;
		a->index = malloc(a->per_shard * 16 + 4);
	}
	if ((!a->strs && !a->chunk) || !a->dir || (cfg->shard_rows && !a->index)) {
		wr_array_free(a);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	if ((rc = wr_make_dirs(a->dir))) {
		wr_array_free(a);
		return rc;
	}
	a->next = w->open;
	w->open = a;
	*out = a;
	return 0;
}

/* The file name of chunk (or shard) i; directories made as needed. */
static int chunk_path(ab_writer_array *a, uint64_t i, char **out)
{
	char key[64 + 3 * AB_MAX_NDIM];
	ab_chunk_key_axis0(a->w->zarr_format, a->cfg.ndim, i, key, sizeof key);
	char *p = ab_path_join(a->dir, key);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	char *slash = strrchr(p, '/');
	if (a->w->zarr_format == 3 && slash) {
		*slash = '\0';
		int rc = wr_make_dirs(p);
		*slash = '/';
		if (rc) {
			free(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

/* Encodes the chunk buffer (bytes or vlen-utf8, then the compressor) into
 * a->enc. */
static int encode_chunk(ab_writer_array *a)
{
	uint64_t items = a->cfg.chunk_rows * a->row_items;
	const uint8_t *raw;
	size_t rawlen;
	uint8_t *vlen = NULL;
	if (a->is_string) {
		int rc = ab_vlen_utf8_encode((const char *const *)a->strs, (size_t)items, &vlen, &rawlen);
		if (rc)
			return rc;
		raw = vlen;
	} else {
		raw = a->chunk;
		rawlen = (size_t)(items * a->itemsize);
	}
	int rc = 0;
	if (!a->has_codec) {
		if ((rc = ab_buf_reserve(&a->enc, rawlen ? rawlen : 1)) == 0) {
			memcpy(a->enc.data, raw, rawlen);
			a->enc.len = rawlen;
		}
	} else {
		size_t bound = ab_b2b_encode_bound(&a->codec, rawlen);
		if ((rc = ab_buf_reserve(&a->enc, bound)) == 0) {
			ssize_t n = ab_b2b_encode(&a->codec, raw, rawlen, a->enc.data, bound);
			if (n < 0)
				rc = (int)n;
			else
				a->enc.len = (size_t)n;
		}
	}
	free(vlen);
	return rc;
}

static int finish_shard(ab_writer_array *a)
{
	if (a->shard_fd < 0)
		return 0;
	ab_shard_index_encode(a->index, a->per_shard, (uint8_t *)a->index);
	/* The index is encoded in place: 16 bytes per entry, stored as LE
	 * uint64 over the host uint64 (the same bytes on little-endian hosts),
	 * then the crc32c in the 4 extra bytes allocated for it. */
	int rc = wr_write_all(a->shard_fd, a->index, (size_t)(a->per_shard * 16 + 4), a->shard_file);
	if (close(a->shard_fd) != 0 && !rc)
		rc = wr_io_error(a->shard_file, "close", errno);
	a->shard_fd = -1;
	free(a->shard_file);
	a->shard_file = NULL;
	return rc;
}

/* Encodes and writes the current chunk (padded) and resets the buffer. */
static int flush_chunk(ab_writer_array *a)
{
	uint64_t items = a->cfg.chunk_rows * a->row_items;
	uint64_t used = a->chunk_rows_filled * a->row_items;
	if (!a->is_string && used < items)
		memset(a->chunk + used * a->itemsize, 0, (size_t)((items - used) * a->itemsize));
	int rc = encode_chunk(a);
	if (a->is_string) {
		for (uint64_t i = 0; i < used; i++) {
			free(a->strs[i]);
			a->strs[i] = NULL;
		}
	}
	if (rc)
		return ab_error_prefix(rc, "%s: chunk %llu: ", a->node, (unsigned long long)a->chunk_index);
	uint64_t ci = a->chunk_index++;
	a->chunk_rows_filled = 0;
	if (!a->per_shard) {
		char *path;
		if ((rc = chunk_path(a, ci, &path)))
			return rc;
		rc = wr_write_file(path, a->enc.data, a->enc.len);
		free(path);
		return rc;
	}
	uint64_t j = ci % a->per_shard;
	if (j == 0) {
		if ((rc = finish_shard(a)))
			return rc;
		if ((rc = chunk_path(a, ci / a->per_shard, &a->shard_file)))
			return rc;
		a->shard_fd = open(a->shard_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (a->shard_fd < 0)
			return wr_io_error(a->shard_file, "create", errno);
		a->shard_offset = 0;
		for (uint64_t k = 0; k < 2 * a->per_shard; k++)
			a->index[k] = UINT64_MAX; /* absent inner chunk */
	}
	a->index[2 * j] = a->shard_offset;
	a->index[2 * j + 1] = a->enc.len;
	a->shard_offset += a->enc.len;
	return wr_write_all(a->shard_fd, a->enc.data, a->enc.len, a->shard_file);
}

/* Marks the array failed with the message just set: later calls repeat the
 * first cause (a full disk, say), not a vaguer "an earlier write failed". */
static int array_fail(ab_writer_array *a, int rc)
{
	a->failed = rc;
	free(a->fail_msg);
	a->fail_msg = strdup(ab_last_error());
	return rc;
}

static int array_failed(const ab_writer_array *a)
{
	if (a->fail_msg && *a->fail_msg)
		return ab_error_set(a->failed, "%s", a->fail_msg);
	return ab_error_set(a->failed, "%s: an earlier write failed", a->node);
}

static int append_check(ab_writer_array *a, int strings)
{
	if (!a)
		return ab_error_set(AB_EINVAL, "null array");
	if (a->failed)
		return array_failed(a);
	if (strings != a->is_string)
		return ab_error_set(AB_ETYPE, "%s: %s", a->node,
				    strings ? "not a string array" : "a string array takes strings");
	return 0;
}

int ab_writer_array_append(ab_writer_array *a, const void *rows, uint64_t nrows)
{
	int rc = append_check(a, 0);
	if (rc)
		return rc;
	if (nrows && !rows)
		return ab_error_set(AB_EINVAL, "%s: null rows", a->node);
	const uint8_t *src = rows;
	size_t row_bytes = (size_t)(a->row_items * a->itemsize);
	while (nrows) {
		uint64_t take = a->cfg.chunk_rows - a->chunk_rows_filled;
		if (take > nrows)
			take = nrows;
		memcpy(a->chunk + a->chunk_rows_filled * row_bytes, src, (size_t)(take * row_bytes));
		src += take * row_bytes;
		nrows -= take;
		a->rows += take;
		a->chunk_rows_filled += take;
		if (a->chunk_rows_filled == a->cfg.chunk_rows && (rc = flush_chunk(a)))
			return array_fail(a, rc);
	}
	return 0;
}

int ab_writer_array_append_strings(ab_writer_array *a, const char *const *strings, uint64_t n)
{
	int rc = append_check(a, 1);
	if (rc)
		return rc;
	if (n && !strings)
		return ab_error_set(AB_EINVAL, "%s: null strings", a->node);
	if (n % a->row_items)
		return ab_error_set(AB_EINVAL, "%s: %llu strings is not a whole number of rows of %llu",
				    a->node, (unsigned long long)n, (unsigned long long)a->row_items);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t slot = a->chunk_rows_filled * a->row_items + i % a->row_items;
		char *s = strdup(strings && strings[i] ? strings[i] : "");
		if (!s)
			return array_fail(a, ab_error_set(AB_ENOMEM, "out of memory"));
		free(a->strs[slot]);
		a->strs[slot] = s;
		if ((i + 1) % a->row_items == 0) {
			a->rows++;
			a->chunk_rows_filled++;
			if (a->chunk_rows_filled == a->cfg.chunk_rows && (rc = flush_chunk(a)))
				return array_fail(a, rc);
		}
	}
	return 0;
}

int ab_writer_array_close(ab_writer_array *a)
{
	if (!a)
		return 0;
	int rc = a->failed ? array_failed(a) : 0;
	if (!rc && a->chunk_rows_filled)
		rc = flush_chunk(a);
	/* An array that fits in its first shard gets a shard just as large as
	 * its chunks: a small array then carries a small index, not one sized
	 * for a gigabyte of rows. */
	if (!rc && a->shard_fd >= 0 && a->chunk_index <= a->per_shard) {
		a->per_shard = a->chunk_index;
		a->cfg.shard_rows = a->per_shard * a->cfg.chunk_rows;
	}
	if (!rc)
		rc = finish_shard(a);
	if (!rc) {
		json_t *meta = ab_array_meta_json(a->w->zarr_format, &a->cfg, a->rows,
						  a->has_codec ? &a->codec : NULL);
		if (!meta)
			rc = ab_error_set(AB_ENOMEM, "%s: cannot build metadata", a->node);
		else
			rc = wr_write_node_meta(a->dir, a->w->zarr_format, meta);
		if (!rc)
			json_object_set(a->w->nodes, a->node, meta);
		json_decref(meta);
	}
	unlink_open(a);
	wr_array_free(a);
	return rc;
}
