/*
 * fuzz_meta_v2 - a zarr v2 .zarray document: ab_json_parse (including its
 * rewriting of integer literals above INT64_MAX), then ab_array_meta_parse with
 * zarr_format 2 and whatever can be done with the result without chunk files.
 */
#include "fuzz_meta_common.h"

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc;
	if (ab_json_parse(data, size, ".zarray", &doc) != 0)
		return 0;
	ab_array_meta m;
	int rc = ab_array_meta_parse(doc, 2, "fuzz", &m);
	fuzz_debug("ab_array_meta_parse", rc);
	if (rc == 0) {
		FUZZ_ASSERT(m.ndim >= 0 && m.ndim <= AB_MAX_NDIM);
		exercise_meta(&m);
		ab_array_meta_free(&m);
	}
	/* The v3 parser must refuse (or cope with) a v2 document too. */
	if (ab_array_meta_parse(doc, 3, "fuzz", &m) == 0)
		ab_array_meta_free(&m);
	json_decref(doc);
	return 0;
}
