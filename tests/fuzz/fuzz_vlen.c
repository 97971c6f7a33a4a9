/*
 * fuzz_vlen - the vlen-utf8 layout (u32 count, then u32 length + bytes each).
 *
 * Input: byte 0 says how many items the chunk must hold (0xff: whatever the
 * frame's own count says, so that the fuzzer gets past the count check); the
 * rest is the encoded chunk. Decoded strings are re-encoded and must decode to
 * the same strings.
 */
#include "fuzz_common.h"

#include "codec.h"

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *src = data + 1;
	size_t len = size - 1;
	size_t expected = data[0] == 0xff ? fuzz_u32(src, len) : data[0];
	char **strs = NULL;
	int rc = ab_vlen_utf8_decode(src, len, expected, &strs);
	fuzz_debug("ab_vlen_utf8_decode", rc);
	if (rc != 0) {
		FUZZ_ASSERT(strs == NULL);
		return 0;
	}
	FUZZ_ASSERT(strs != NULL);
	uint8_t *enc;
	size_t enclen;
	if (ab_vlen_utf8_encode((const char *const *)strs, expected, &enc, &enclen) == 0) {
		FUZZ_ASSERT(enclen <= len);
		char **again;
		FUZZ_ASSERT(ab_vlen_utf8_decode(enc, enclen, expected, &again) == 0);
		for (size_t i = 0; i < expected; i++)
			FUZZ_ASSERT(strcmp(again[i], strs[i]) == 0);
		free_strings(again, expected);
		free(enc);
	}
	free_strings(strs, expected);
	return 0;
}
