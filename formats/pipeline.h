/*
 * pipeline.h - a chunk's codec chain, as one structure for zarr v2 and v3
 * (internal).
 *
 * zarr v3 spells the chain out: array->array codecs (transpose), one
 * array->bytes codec (bytes, vlen-utf8, sharding_indexed), bytes->bytes codecs
 * (blosc, zstd, gzip, crc32c). A v2 array is mapped onto the same shape: order
 * "F" is a transpose with the axes reversed, the dtype's byte order is the bytes
 * codec's endianness, a vlen-utf8 filter is the array->bytes codec and the
 * compressor is the one bytes->bytes codec. Decoding runs the chain backwards.
 *
 * pipeline.c builds and describes chains; chunk_decode.c decodes chunks,
 * shards and shard indexes with them.
 */
#ifndef AB_FORMATS_PIPELINE_H
#define AB_FORMATS_PIPELINE_H

#include <jansson.h>

#include "annbatch.h"
#include "codec.h"
#include "dtype.h"
#include "util.h"

#define AB_MAX_B2B 8

typedef enum ab_a2b_kind { AB_A2B_BYTES = 1, AB_A2B_VLEN, AB_A2B_SHARD } ab_a2b_kind;

struct ab_shard_cfg;

typedef struct ab_pipeline {
	int ndim;
	int has_transpose;
	int order[AB_MAX_NDIM];     /* encoded axis i = decoded axis order[i]    */
	ab_a2b_kind a2b;
	int vlen_bytes;             /* AB_A2B_VLEN: the codec is vlen-bytes      */
	int bitround;               /* keepbits + 1 of a bitround codec (0: none;
	                             * decoding it is the identity)              */
	int big_endian;             /* bytes codec                               */
	struct ab_shard_cfg *shard; /* a2b == AB_A2B_SHARD                       */
	int nb2b;
	ab_b2b_codec b2b[AB_MAX_B2B];
} ab_pipeline;

typedef struct ab_shard_cfg {
	uint64_t inner_shape[AB_MAX_NDIM];
	uint64_t per_dim[AB_MAX_NDIM];  /* inner chunks per shard along each axis */
	uint64_t n_inner;               /* product of per_dim                     */
	ab_pipeline inner;
	int index_at_start;
	int index_big_endian;
	int index_crc32c;
	uint64_t index_bytes;           /* 16 * n_inner (+ 4 with crc32c)         */
	uint64_t inner_max_bytes;       /* most bytes an encoded inner chunk can
	                                 * take (ab_pipeline_max_encoded)       */
} ab_shard_cfg;

/* Scratch space for decoding, reused across chunks (caller-owned). */
typedef struct ab_scratch {
	ab_buf b[4];
} ab_scratch;
void ab_scratch_free(ab_scratch *s);

/* Builds the pipeline of a v3 array from its "codecs" list. `chunk_shape` is
 * the (outer) chunk shape the chain encodes. */
int ab_pipeline_from_v3(const json_t *codecs, int ndim, const uint64_t *chunk_shape,
			const ab_dtype_desc *dt, ab_pipeline *out);
/* Builds the pipeline of a v2 array. */
int ab_pipeline_from_v2(const json_t *compressor, const json_t *filters, const char *order,
			int ndim, const ab_dtype_desc *dt, ab_pipeline *out);
void ab_pipeline_free(ab_pipeline *p);

/* "bytes(little) | blosc(cname=lz4,clevel=3,shuffle=shuffle)" etc. */
void ab_pipeline_describe(const ab_pipeline *p, char *buf, size_t size);

/* The decoded form of one chunk: items in C order of `shape`, host byte order.
 * Numeric and fixed-width string items are `dt->disk_size` bytes; vlen strings
 * are `char *` (malloc'd, owned by the caller after decoding). */
typedef struct ab_chunk_out {
	void *data;
	size_t cap;       /* bytes available at data */
} ab_chunk_out;

/* Decodes one encoded chunk of `shape` into out->data. `fill` / `fill_str` is
 * the fill value used for absent inner chunks of a nested shard. */
int ab_chunk_decode(const ab_pipeline *p, const ab_dtype_desc *dt, const uint64_t *shape,
		    const uint8_t *src, size_t srclen, const uint8_t *fill, const char *fill_str,
		    void *out, size_t outcap, ab_scratch *scratch);

/* Whether a chunk of this chain can be decoded in part: items stored as
 * plain bytes in host order (no transpose, no byte swap, no strings of
 * variable length) and either no bytes->bytes codec or one blosc. */
int ab_pipeline_partial(const ab_pipeline *p, const ab_dtype_desc *dt);

/* Decodes items [item0, item0 + nitems) (C order of `shape`) of one encoded
 * chunk into out, decompressing only the blosc blocks that hold them.
 * *decoded is set to the bytes really decompressed. Returns 0; AB_NO_PART
 * (see codec.h) when the chain or this chunk cannot be decoded in part (the
 * caller decodes the whole chunk with ab_chunk_decode); or a negative AB_E*
 * with a message. The sizes are checked as ab_chunk_decode checks them. */
int ab_chunk_decode_part(const ab_pipeline *p, const ab_dtype_desc *dt, const uint64_t *shape,
			 const uint8_t *src, size_t srclen, uint64_t item0, uint64_t nitems, void *out,
			 size_t *decoded);

/* The same for an encoded buffer that decodes to items [frame_item0,
 * frame_item0 + frame_items) of a chunk only (a blosc frame of some of the
 * chunk's blocks, see ab_blosc_subframe_header); item0 is counted from the
 * chunk's start. */
int ab_chunk_decode_part_of(const ab_pipeline *p, const ab_dtype_desc *dt, const uint8_t *src, size_t srclen,
			    uint64_t frame_item0, uint64_t frame_items, uint64_t item0, uint64_t nitems, void *out,
			    size_t *decoded);

/* Decodes a whole encoded buffer of a partially decodable chain (see
 * ab_pipeline_partial) that must hold exactly `frame_items` items, straight
 * into out: for a frame of some of a chunk's blosc blocks, every block is
 * decoded in place, with no staging copy. Returns 0, or a negative AB_E*
 * with a message (the announced size checked first). */
int ab_chunk_decode_frame(const ab_pipeline *p, const ab_dtype_desc *dt, const uint8_t *src, size_t srclen,
			  uint64_t frame_items, void *out);

/* The most bytes a chunk of `shape` can take once chain `p` has encoded it:
 * its decoded size, plus the worst a compressor can add with a wide margin
 * (a quarter more and 4 KiB, far above every real codec's bound), plus 4 for
 * crc32c; shards add their index. A file or shard index entry that claims
 * more is lying, and is refused before its bytes are read into memory.
 * UINT64_MAX when there is no bound (strings of variable length). */
uint64_t ab_pipeline_max_encoded(const ab_pipeline *p, int ndim, const uint64_t *shape, const ab_dtype_desc *dt);
/* Size in bytes of a decoded chunk of `shape` (strings: pointer per item). */
int ab_chunk_nbytes(int ndim, const uint64_t *shape, const ab_dtype_desc *dt, size_t *out);

/* Writes the fill value over a decoded chunk of `nitems` items. */
int ab_chunk_fill(void *out, uint64_t nitems, const ab_dtype_desc *dt, const uint8_t *fill,
		  const char *fill_str);

/* Frees the strings of a decoded vlen chunk. */
void ab_chunk_free_strings(void *chunk, uint64_t nitems);

/* Shard index: decodes `raw` (index_bytes bytes) into 2 * n_inner uint64
 * (offset, nbytes) pairs in host order, verifying crc32c and that every present
 * entry lies inside a shard of `shard_size` bytes and is no longer than an
 * inner chunk can encode to (cfg->inner_max_bytes). */
int ab_shard_index_decode(const ab_shard_cfg *cfg, const uint8_t *raw, size_t rawlen,
			  uint64_t shard_size, uint64_t *entries);

#define AB_SHARD_EMPTY UINT64_MAX

#endif
