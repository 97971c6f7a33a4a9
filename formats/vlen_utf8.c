/*
 * vlen_utf8.c - numcodecs' VLenUTF8 layout, which zarr v3's vlen-utf8
 * array-to-bytes codec shares:
 *   u32 LE item count, then for each item a u32 LE byte length and the bytes.
 *
 * Every length is checked against what is left of the buffer before anything
 * is copied, and the count is checked against what the caller expects (the
 * chunk's item count from the metadata) before anything is allocated, so a
 * hostile chunk can neither make us read past its end nor make us allocate
 * more than the metadata allows. Bytes after the last item are rejected:
 * the writer never leaves any, so they mean the lengths are wrong.
 *
 * The bytes are handed over as they are: no UTF-8 validation is done here.
 * A string holding a NUL byte is refused: every reader downstream holds C
 * strings, which would cut it at the NUL (and two names that differ only
 * after it would become one).
 */
#include "codec_impl.h"

#include <stdlib.h>

static void free_strings(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int ab_vlen_utf8_decode(const void *src, size_t srclen, size_t expected_items,
			char ***strings)
{
	const uint8_t *p = src;
	size_t rem = srclen;
	char **v;

	if (strings == NULL)
		return ab_error_set(AB_EINVAL, "vlen-utf8: no output pointer");
	*strings = NULL;
	if (src == NULL && srclen > 0)
		return ab_error_set(AB_EINVAL, "vlen-utf8: NULL source with %zu bytes", srclen);
	if (rem < 4)
		return ab_error_set(AB_ECORRUPT,
				    "vlen-utf8: buffer of %zu bytes is too short for the item count",
				    srclen);
	uint32_t count = ab_load_le32(p);
	p += 4;
	rem -= 4;
	if ((uint64_t)count != (uint64_t)expected_items)
		return ab_error_set(AB_ECORRUPT, "vlen-utf8: chunk holds %u items, expected %zu",
				    (unsigned)count, expected_items);
	/* Each item takes at least its 4-byte length: a cheap bound before the
	 * pointer array is allocated. */
	if ((uint64_t)count > rem / 4)
		return ab_error_set(AB_ECORRUPT,
				    "vlen-utf8: truncated: %u items cannot fit in %zu bytes",
				    (unsigned)count, rem);

	/* calloc so that a failure half-way can free the array uniformly, and
	 * one element minimum so that zero items still give a non-NULL array. */
	v = calloc(count ? count : 1, sizeof *v);
	if (v == NULL)
		return ab_error_set(AB_ENOMEM, "vlen-utf8: cannot allocate %u string pointers",
				    (unsigned)count);
	for (uint32_t i = 0; i < count; i++) {
		if (rem < 4) {
			free_strings(v, i);
			return ab_error_set(AB_ECORRUPT,
					    "vlen-utf8: truncated before the length of item %u",
					    (unsigned)i);
		}
		uint32_t len = ab_load_le32(p);
		p += 4;
		rem -= 4;
		if ((size_t)len > rem) {
			free_strings(v, i);
			return ab_error_set(AB_ECORRUPT,
					    "vlen-utf8: item %u of %u bytes runs past the end (%zu left)",
					    (unsigned)i, (unsigned)len, rem);
		}
		const uint8_t *nul = len ? memchr(p, 0, len) : NULL;
		if (nul) {
			free_strings(v, i);
			return ab_error_set(AB_EFORMAT,
					    "vlen-utf8: item %u holds a NUL byte (at byte %u of %u); "
					    "strings with NUL bytes are not supported",
					    (unsigned)i, (unsigned)(nul - p), (unsigned)len);
		}
		v[i] = malloc((size_t)len + 1);
		if (v[i] == NULL) {
			free_strings(v, i);
			return ab_error_set(AB_ENOMEM, "vlen-utf8: cannot allocate %u bytes",
					    (unsigned)len + 1u);
		}
		if (len > 0)
			memcpy(v[i], p, len);
		v[i][len] = '\0';
		p += len;
		rem -= len;
	}
	if (rem != 0) {
		free_strings(v, count);
		return ab_error_set(AB_ECORRUPT, "vlen-utf8: %zu bytes after the last item", rem);
	}
	*strings = v;
	return 0;
}

int ab_vlen_utf8_encode(const char *const *strings, size_t n, uint8_t **out, size_t *outlen)
{
	size_t total = 4;

	if (out == NULL || outlen == NULL)
		return ab_error_set(AB_EINVAL, "vlen-utf8: no output pointer");
	*out = NULL;
	*outlen = 0;
	if (strings == NULL && n > 0)
		return ab_error_set(AB_EINVAL, "vlen-utf8: NULL string array with %zu items", n);
	if ((uint64_t)n > UINT32_MAX)
		return ab_error_set(AB_EINVAL, "vlen-utf8: %zu items exceed the 32-bit count", n);

	/* First pass: the exact size, refusing anything the 32-bit fields or
	 * size_t cannot hold. A NULL string is written as an empty one, as
	 * numcodecs does for None. */
	for (size_t i = 0; i < n; i++) {
		size_t len = strings[i] ? strlen(strings[i]) : 0;
		if ((uint64_t)len > UINT32_MAX)
			return ab_error_set(AB_EINVAL, "vlen-utf8: item %zu of %zu bytes is too long",
					    i, len);
		size_t add = ab_size_add(len, 4);
		if (total > SIZE_MAX - add)
			return ab_error_set(AB_EINVAL, "vlen-utf8: encoded size overflows");
		total += add;
	}

	uint8_t *buf = malloc(total);
	if (buf == NULL)
		return ab_error_set(AB_ENOMEM, "vlen-utf8: cannot allocate %zu bytes", total);
	uint8_t *p = buf;
	ab_store_le32(p, (uint32_t)n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		size_t len = strings[i] ? strlen(strings[i]) : 0;
		ab_store_le32(p, (uint32_t)len);
		p += 4;
		if (len > 0)
			memcpy(p, strings[i], len);
		p += len;
	}
	*out = buf;
	*outlen = total;
	return 0;
}
