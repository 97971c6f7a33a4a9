/*
 * fuzz_chunk - one encoded chunk through ab_chunk_decode, for a fixed set of
 * small arrays whose codec chains cover what the decoder does: byte swapping,
 * transposition, every bytes->bytes codec, chains of them, vlen-utf8 strings
 * and sharding (with its index) inside a chunk.
 *
 * Input: byte 0 picks the array; the rest is the chunk file. The metadata is
 * parsed by the real parsers (v3 zarr.json or v2 .zarray), so the decoder sees
 * exactly what it sees when reading a store.
 */
#include "fuzz_common.h"

#include "meta.h"
#include "pipeline.h"
#include "store.h"

#define BLOSC(cname, sh, ts) \
	"{\"name\":\"blosc\",\"configuration\":{\"cname\":\"" cname "\",\"clevel\":5," \
	"\"shuffle\":\"" sh "\",\"typesize\":" #ts ",\"blocksize\":0}}"
#define ZSTD "{\"name\":\"zstd\",\"configuration\":{\"level\":3,\"checksum\":false}}"
#define GZIP "{\"name\":\"gzip\",\"configuration\":{\"level\":5}}"
#define CRC "{\"name\":\"crc32c\"}"
#define LE "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}}"
#define BE "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"big\"}}"
#define VLEN "{\"name\":\"vlen-utf8\"}"
#define TR(order) "{\"name\":\"transpose\",\"configuration\":{\"order\":" order "}}"
#define SHARD(inner, codecs, loc) \
	"{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":" inner \
	",\"codecs\":[" codecs "],\"index_codecs\":[" LE "," CRC "],\"index_location\":\"" loc "\"}}"

#define V3(dtype, shape, chunk, fill, codecs) \
	"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":" shape ",\"data_type\":\"" dtype "\"," \
	"\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":" chunk "}}," \
	"\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":" fill ",\"codecs\":[" codecs "]}"
#define V2(dtype, shape, chunk, order, compressor, filters) \
	"{\"zarr_format\":2,\"shape\":" shape ",\"chunks\":" chunk ",\"dtype\":\"" dtype "\"," \
	"\"order\":\"" order "\",\"compressor\":" compressor ",\"fill_value\":0,\"filters\":" filters "}"

static const struct {
	int zarr_format;
	const char *meta;
} arrays[] = {
	{ 3, V3("uint16", "[8,6]", "[4,3]", "0", LE) },
	{ 3, V3("int32", "[8,6]", "[4,3]", "7", BE) },
	{ 3, V3("float64", "[8,6]", "[4,3]", "\"NaN\"", TR("[1,0]") "," BE "," ZSTD) },
	{ 3, V3("uint8", "[10,14]", "[5,7]", "1", LE "," BLOSC("lz4", "bitshuffle", 1)) },
	{ 3, V3("float32", "[9]", "[9]", "0.5", LE "," GZIP) },
	{ 3, V3("int64", "[6,6]", "[3,3]", "0", LE "," CRC) },
	{ 3, V3("float32", "[6,6]", "[3,3]", "0", LE "," BLOSC("zstd", "shuffle", 4) "," CRC) },
	{ 3, V3("string", "[6,4]", "[3,2]", "\"\"", VLEN "," ZSTD) },
	{ 3, V3("string", "[6,4]", "[3,2]", "\"x\"", TR("[1,0]") "," VLEN "," CRC) },
	{ 3, V3("complex64", "[4,4]", "[2,2]", "[1.0,-1.0]", BE "," GZIP) },
	{ 3, V3("float16", "[2,3,4]", "[2,3,4]", "0", TR("[2,0,1]") "," BE) },
	{ 3, V3("bool", "[16]", "[8]", "false", LE "," BLOSC("blosclz", "noshuffle", 1)) },
	{ 3, V3("uint16", "[8,8]", "[4,4]", "3", SHARD("[2,2]", LE "," CRC, "end")) },
	{ 3, V3("int16", "[8,8]", "[4,4]", "0", SHARD("[2,2]", BE "," ZSTD, "start")) },
	{ 3, V3("float32", "[8,8]", "[4,4]", "0", TR("[1,0]") "," SHARD("[2,4]", LE "," GZIP, "end") "," CRC) },
	{ 3, V3("string", "[4,4]", "[4,4]", "\"-\"", SHARD("[2,2]", VLEN, "end")) },
	{ 3, V3("uint32", "[4,4]", "[4,4]", "0", SHARD("[2,2]", SHARD("[1,1]", LE, "end"), "start")) },
	{ 3, V3("uint8", "[64]", "[64]", "0", LE "," ZSTD "," CRC "," GZIP) },
	{ 3, V3("string", "[16]", "[16]", "\"\"", VLEN "," GZIP "," ZSTD) },
	{ 2, V2(">f8", "[6,5]", "[3,5]", "F", "{\"id\":\"zlib\",\"level\":1}", "null") },
	{ 2, V2("<i4", "[6,5]", "[3,5]", "C", "{\"id\":\"lz4\",\"acceleration\":1}", "null") },
	{ 2, V2("|O", "[6]", "[3]", "C", "{\"id\":\"blosc\",\"cname\":\"lz4\",\"clevel\":5,\"shuffle\":1,\"blocksize\":0}",
		"[{\"id\":\"vlen-utf8\"}]") },
	{ 2, V2("<U3", "[4,2]", "[2,2]", "F", "null", "null") },
	{ 2, V2(">c16", "[4]", "[4]", "C", "{\"id\":\"zstd\",\"level\":1}", "null") },
};
#define N_ARRAYS (sizeof arrays / sizeof arrays[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] % N_ARRAYS;
	json_t *doc;
	const char *text = arrays[which].meta;
	FUZZ_ASSERT(ab_json_parse((const uint8_t *)text, strlen(text), "fixed", &doc) == 0);
	ab_array_meta m;
	int rc = ab_array_meta_parse(doc, arrays[which].zarr_format, "fixed", &m);
	json_decref(doc);
	FUZZ_ASSERT(rc == 0);

	size_t nbytes;
	FUZZ_ASSERT(ab_chunk_nbytes(m.ndim, m.chunk, &m.dt, &nbytes) == 0);
	uint64_t nitems = 1;
	for (int i = 0; i < m.ndim; i++)
		nitems *= m.chunk[i];
	void *out = malloc(nbytes);
	ab_scratch scratch = { 0 };
	FUZZ_ASSERT(out != NULL);
	/* An exact-size copy of the chunk, so that any read past its end is
	 * caught by ASan (libFuzzer's own buffer is exact too, but the
	 * selector byte sits in front). */
	size_t len = size - 1;
	uint8_t *src = malloc(len ? len : 1);
	FUZZ_ASSERT(src != NULL);
	memcpy(src, data + 1, len);
	rc = ab_chunk_decode(&m.pipe, &m.dt, m.chunk, src, len, m.fill, m.fill_str, out, nbytes, &scratch);
	fuzz_debug("ab_chunk_decode", rc);
	if (rc == 0 && m.dt.str == AB_STR_VLEN) {
		char **s = out;
		for (uint64_t i = 0; i < nitems; i++)
			FUZZ_ASSERT(s[i] != NULL);
		ab_chunk_free_strings(out, nitems);
	}
	FUZZ_ASSERT(rc <= 0);
	free(src);
	free(out);
	ab_scratch_free(&scratch);
	ab_array_meta_free(&m);
	return 0;
}
