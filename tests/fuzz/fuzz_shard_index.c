/*
 * fuzz_shard_index - sharding_indexed: the shard index on its own, and whole
 * shards decoded in memory.
 *
 * Input header (4 bytes), then the payload:
 *   byte 0: bit 0 index at start, bit 1 index without crc32c, bit 2 index big
 *           endian, bit 3 payload is a whole shard (else: a raw index),
 *           bits 4-6 the inner codec chain, bit 7 string data
 *   byte 1: bits 0-1 rank - 1 (1..3, 0 -> 1)
 *   byte 2, 3: per axis (two bits each, from the low end of byte 2, then
 *           byte 3): inner chunks per shard along the axis (1..4) and the inner
 *           chunk extent (1..4)
 * The sharding configuration is written as zarr.json text and parsed by the
 * real parser, so the decoder gets the same structure as from a store.
 * Raw-index mode: the payload is the size of the shard (u32 LE), then the
 * index.
 */
#include "fuzz_common.h"

#include "meta.h"
#include "pipeline.h"
#include "store.h"

#include <stdio.h>

static const char *const inner_chains[8] = {
	"{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}}",
	"{\"name\":\"bytes\",\"configuration\":{\"endian\":\"big\"}}",
	"{\"name\":\"bytes\"},{\"name\":\"crc32c\"}",
	"{\"name\":\"bytes\"},{\"name\":\"zstd\",\"configuration\":{\"level\":1}}",
	"{\"name\":\"bytes\"},{\"name\":\"gzip\",\"configuration\":{\"level\":1}}",
	"{\"name\":\"transpose\",\"configuration\":{\"order\":\"F\"}},{\"name\":\"bytes\"}",
	"{\"name\":\"bytes\"},{\"name\":\"blosc\",\"configuration\":{\"cname\":\"lz4\",\"clevel\":1,"
	"\"shuffle\":\"shuffle\",\"typesize\":2}}",
	"{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":%s,\"codecs\":[{\"name\":\"bytes\"}]}}",
};
static const char *const vlen_chains[2] = {
	"{\"name\":\"vlen-utf8\"}",
	"{\"name\":\"vlen-utf8\"},{\"name\":\"crc32c\"}",
};

static void list(char *buf, size_t size, const uint64_t *v, int n)
{
	size_t k = (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(buf + k, size - k, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	snprintf(buf + k, size - k, "]");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint8_t flags = data[0];
	int ndim = 1 + (data[1] & 3);
	if (ndim > 3)
		ndim = 3;
	uint16_t axes = (uint16_t)(data[2] | data[3] << 8);
	uint64_t per[3], inner[3], shard[3], ones[3] = { 1, 1, 1 };
	for (int i = 0; i < ndim; i++) {
		per[i] = 1 + ((axes >> (4 * i)) & 3);
		inner[i] = 1 + ((axes >> (4 * i + 2)) & 3);
		shard[i] = per[i] * inner[i];
	}
	int strings = flags >> 7;
	char chunk_s[64], inner_s[64], ones_s[64], codecs[512], meta[2048];
	list(chunk_s, sizeof chunk_s, shard, ndim);
	list(inner_s, sizeof inner_s, inner, ndim);
	list(ones_s, sizeof ones_s, ones, ndim);
	const char *chain = strings ? vlen_chains[(flags >> 4) & 1] : inner_chains[(flags >> 4) & 7];
	snprintf(codecs, sizeof codecs, chain, ones_s);
	snprintf(meta, sizeof meta,
		 "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":%s,\"data_type\":\"%s\","
		 "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":%s}},"
		 "\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":%s,"
		 "\"codecs\":[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":%s,"
		 "\"codecs\":[%s],\"index_codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":\"%s\"}}%s],"
		 "\"index_location\":\"%s\"}}]}",
		 chunk_s, strings ? "string" : "uint16", chunk_s, strings ? "\"fill\"" : "9", inner_s, codecs,
		 flags & 4 ? "big" : "little", flags & 2 ? "" : ",{\"name\":\"crc32c\"}",
		 flags & 1 ? "start" : "end");
	json_t *doc;
	FUZZ_ASSERT(ab_json_parse((const uint8_t *)meta, strlen(meta), "fixed", &doc) == 0);
	ab_array_meta m;
	int rc = ab_array_meta_parse(doc, 3, "fixed", &m);
	json_decref(doc);
	if (rc != 0) {
		fprintf(stderr, "%s\n%s\n", meta, ab_last_error());
		FUZZ_ASSERT(rc == 0);
	}
	const ab_shard_cfg *cfg = m.pipe.shard;
	FUZZ_ASSERT(m.pipe.a2b == AB_A2B_SHARD && cfg != NULL);

	const uint8_t *payload = data + 4;
	size_t len = size - 4;
	uint8_t *copy = malloc(len ? len : 1);
	FUZZ_ASSERT(copy != NULL);
	memcpy(copy, payload, len);
	if (!(flags & 8)) {
		uint64_t *entries = malloc(sizeof(uint64_t) * 2 * cfg->n_inner);
		FUZZ_ASSERT(entries != NULL);
		uint64_t shard_size = fuzz_u32(copy, len);
		size_t skip = len < 4 ? len : 4;
		rc = ab_shard_index_decode(cfg, copy + skip, len - skip, shard_size, entries);
		fuzz_debug("ab_shard_index_decode", rc);
		if (rc == 0) {
			/* What the reader relies on: every present entry lies inside. */
			for (uint64_t k = 0; k < cfg->n_inner; k++) {
				uint64_t off = entries[2 * k], nb = entries[2 * k + 1];
				if (off == AB_SHARD_EMPTY && nb == AB_SHARD_EMPTY)
					continue;
				FUZZ_ASSERT(off <= shard_size && nb <= shard_size - off);
			}
		}
		free(entries);
	} else {
		size_t nbytes;
		FUZZ_ASSERT(ab_chunk_nbytes(m.ndim, m.chunk, &m.dt, &nbytes) == 0);
		uint64_t nitems = nbytes / (strings ? sizeof(char *) : 2);
		void *out = malloc(nbytes);
		ab_scratch scratch = { 0 };
		FUZZ_ASSERT(out != NULL);
		rc = ab_chunk_decode(&m.pipe, &m.dt, m.chunk, copy, len, m.fill, m.fill_str, out, nbytes,
				     &scratch);
		fuzz_debug("ab_chunk_decode", rc);
		if (rc == 0 && strings)
			ab_chunk_free_strings(out, nitems);
		ab_scratch_free(&scratch);
		free(out);
	}
	free(copy);
	ab_array_meta_free(&m);
	return 0;
}
