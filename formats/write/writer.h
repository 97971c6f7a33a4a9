/*
 * writer.h - the encode side of the format layer (internal): the pieces of the
 * store writer (formats/write/, public API ab_writer_* in annbatch.h) that
 * are worth testing on their own. Each mirrors a reader: the codec JSON the
 * pipeline parser reads (pipeline.c), the array metadata ab_array_meta_parse
 * reads (meta.c), the shard index ab_shard_index_decode reads, the chunk
 * keys ab_chunk_key makes.
 */
#ifndef AB_FORMATS_WRITE_WRITER_H
#define AB_FORMATS_WRITE_WRITER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"
#include "codec.h"

/* The codec a public ab_compressor stands for, for items of `typesize` bytes
 * (blosc shuffles by it). `level` -1 = the default. Returns 0 and sets
 * *present = 0 for AB_COMPRESSOR_NONE. */
int ab_compressor_codec(ab_compressor c, int level, int typesize, ab_b2b_codec *out,
			int *present);

/* The codec as zarr v3 JSON ({"name": "blosc", "configuration": {...}}) or as
 * a numcodecs v2 compressor ({"id": "blosc", ...}). New references. */
json_t *ab_codec_json_v3(const ab_b2b_codec *c);
json_t *ab_codec_json_v2(const ab_b2b_codec *c);

/* The metadata of an array written with `cfg` once `rows` rows have been
 * appended (shape[0] = rows), as zarr-python writes it: v3 the zarr.json
 * document (sharding_indexed with shard_rows rows a shard when
 * cfg->shard_rows), v2 {".zarray": ..., ".zattrs": ...}. `codec` is the
 * compressor of every (inner) chunk, NULL for none. A new reference; NULL
 * when out of memory or when cfg->attributes_json is not a JSON object. */
json_t *ab_array_meta_json(int zarr_format, const ab_writer_array_config *cfg, uint64_t rows,
			   const ab_b2b_codec *codec);

/* Encodes a shard index of n (offset, nbytes) pairs with the default index
 * codecs (bytes little endian, then crc32c): writes 16 * n + 4 bytes to out. */
void ab_shard_index_encode(const uint64_t *entries, uint64_t n, uint8_t *out);

/* The key of chunk `i` along axis 0 (every other chunk index 0) of an array
 * of `ndim` axes: v3 default encoding "c/i/0", v2 "i.0". */
void ab_chunk_key_axis0(int zarr_format, int ndim, uint64_t i, char *buf, size_t size);

/* Removes a directory tree (no error if it does not exist). */
int ab_remove_tree(const char *path);

#endif
