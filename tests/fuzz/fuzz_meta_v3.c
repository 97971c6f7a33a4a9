/*
 * fuzz_meta_v3 - a zarr v3 zarr.json document: ab_json_parse, then
 * ab_array_meta_parse with zarr_format 3 on the document itself and on every
 * array entry of its inline consolidated metadata (where sharding
 * configurations nest codec lists inside codec lists).
 */
#include "fuzz_meta_common.h"

#include "store.h"

static void parse_one(const json_t *doc)
{
	ab_array_meta m;
	int rc = ab_array_meta_parse(doc, 3, "fuzz", &m);
	fuzz_debug("ab_array_meta_parse", rc);
	if (rc != 0)
		return;
	FUZZ_ASSERT(m.ndim >= 0 && m.ndim <= AB_MAX_NDIM);
	if (m.pipe.a2b == AB_A2B_SHARD) {
		const ab_shard_cfg *s = m.pipe.shard;
		FUZZ_ASSERT(s != NULL && s->n_inner >= 1);
		FUZZ_ASSERT(s->index_bytes == 16 * s->n_inner + (s->index_crc32c ? 4 : 0));
	}
	exercise_meta(&m);
	ab_array_meta_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc;
	if (ab_json_parse(data, size, "zarr.json", &doc) != 0)
		return 0;
	parse_one(doc);
	const json_t *md = json_object_get(json_object_get(doc, "consolidated_metadata"), "metadata");
	const char *key;
	json_t *v;
	size_t n = 0;
	json_object_foreach((json_t *)md, key, v) {
		if (++n > 64)
			break;
		parse_one(v);
	}
	json_decref(doc);
	return 0;
}
