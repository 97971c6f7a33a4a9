/*
 * anndata_out.h - writing AnnData groups through the public writer API
 * (ab_writer_*): the encoding attributes anndata puts on each node, and the
 * chunk and shard sizes the Python annbatch writer uses. Shared by
 * `annbatch synth` and `annbatch convert`.
 */
#ifndef AB_TOOLS_ANNDATA_OUT_H
#define AB_TOOLS_ANNDATA_OUT_H

#include <stdint.h>

#include "annbatch.h"

typedef struct ado_opts {
	ab_compressor compressor;
	int level;                 /* -1: the compressor's default              */
	size_t blosc_blocksize;    /* 0: libblosc's choice                      */
	uint64_t n_obs_per_chunk;  /* rows per X chunk (dense), 64              */
	uint64_t shard_bytes;      /* bytes per shard; 0 = not sharded          */
} ado_opts;

/* Rows (or elements) per chunk and per shard for an array whose rows are
 * `row_bytes` bytes: chunk_rows as given, shard rows the largest multiple of
 * chunk_rows within shard_bytes (at least one chunk), 0 when not sharded. */
void ado_shard_rows(const ado_opts *o, uint64_t chunk_rows, uint64_t row_bytes,
		    uint64_t *shard_rows);

/* The AnnData root group at `node` and its empty companions (layers, obsm,
 * varm, obsp, varp, uns) as anndata writes them. */
int ado_anndata_group(ab_writer *w, const char *node);
/* A dataframe group: _index attribute "_index", the given column order. */
int ado_dataframe_group(ab_writer *w, const char *node, const char *const *columns, size_t n);
/* A csr_matrix group's attributes. */
int ado_csr_group(ab_writer *w, const char *node, uint64_t n_rows, uint64_t n_cols);

/* Whole small arrays (obs/var columns): one write, chunked by `chunk_rows`
 * (0: one chunk for everything, as anndata does for small frames), not
 * sharded. `encoding` is the anndata encoding-type ("array", "string-array"). */
int ado_write_numeric(ab_writer *w, const char *node, ab_dtype dt, const void *values,
		      uint64_t n, const ado_opts *o, const char *encoding);
int ado_write_strings(ab_writer *w, const char *node, const char *const *values, uint64_t n,
		      const ado_opts *o);
/* A categorical column: codes (int8, int16 or int32 by the number of
 * categories; -1 missing) and string categories. `codes` are int32. */
int ado_write_categorical(ab_writer *w, const char *node, const int32_t *codes, uint64_t n,
			  const char *const *categories, uint64_t n_categories, int ordered,
			  const ado_opts *o);

/* A writer array with the options' compressor. */
int ado_array(ab_writer *w, const char *node, ab_dtype dt, int ndim, const uint64_t *shape,
	      uint64_t chunk_rows, uint64_t shard_rows, const ado_opts *o, const char *attrs,
	      ab_writer_array **out);

/* Parses a size: plain bytes, or a number with K, M, G, T (optionally
 * followed by B or iB; powers of 1000 for KB/MB/GB, of 1024 for KiB/...). */
int ado_parse_size(const char *s, uint64_t *out);
/* --blosc-blocksize SIZE of convert and synth into o->blosc_blocksize; 0, or
 * prints the error (as `cmd`) and returns non-zero. */
int ado_parse_blocksize(const char *cmd, const char *s, ado_opts *o);
#endif
