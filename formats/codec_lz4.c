/*
 * codec_lz4.c - numcodecs' LZ4 framing: the decoded size as a little-endian
 * uint32, then one raw LZ4 block (not the LZ4 frame format).
 *
 * The prefix is the only size information, so it is checked twice: the block
 * must decode within it (LZ4_decompress_safe stops at the capacity it is
 * given) and must fill it exactly (a block that decodes shorter means the
 * prefix lies).
 */
#include "codec_impl.h"

#include <lz4.h>

#define PREFIX 4

int64_t ab_lz4_decoded_size(const void *src, size_t srclen)
{
	if (srclen < PREFIX)
		return ab_error_set(AB_ECORRUPT,
				    "lz4: buffer of %zu bytes is too short for the 4-byte size prefix",
				    srclen);
	uint32_t n = ab_load_le32(src);
	if (n > LZ4_MAX_INPUT_SIZE)
		return ab_error_set(AB_ECORRUPT, "lz4: announced size %u exceeds the LZ4 limit",
				    (unsigned)n);
	return (int64_t)n;
}

ssize_t ab_lz4_decode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	const uint8_t *s = src;
	int64_t n = ab_lz4_decoded_size(src, srclen);
	if (n < 0)
		return (ssize_t)n;
	if ((uint64_t)n > dstcap)
		return AB_ETOOSMALL;
	if (srclen - PREFIX > (size_t)INT_MAX)
		return ab_error_set(AB_ECORRUPT, "lz4: block of %zu bytes exceeds the LZ4 limit",
				    srclen - PREFIX);

	char dummy;
	int r = LZ4_decompress_safe((const char *)s + PREFIX, n ? (char *)dst : &dummy,
				    (int)(srclen - PREFIX), (int)n);
	if (r < 0)
		return ab_error_set(AB_ECORRUPT,
				    "lz4: corrupt block, or larger than the announced %lld bytes",
				    (long long)n);
	if ((int64_t)r != n)
		return ab_error_set(AB_ECORRUPT,
				    "lz4: block decodes to %d bytes, size prefix announces %lld", r,
				    (long long)n);
	return (ssize_t)r;
}

size_t ab_lz4_encode_bound(size_t srclen)
{
	/* LZ4_compressBound's formula, computed in size_t so that it saturates
	 * instead of returning 0 for inputs LZ4 cannot take (encode rejects
	 * those anyway). */
	return ab_size_add(ab_size_add(srclen, srclen / 255), 16 + PREFIX);
}

ssize_t ab_lz4_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap)
{
	uint8_t *d = dst;
	char dummy = 0;

	if (srclen > LZ4_MAX_INPUT_SIZE)
		return ab_error_set(AB_EINVAL, "lz4: input of %zu bytes exceeds the LZ4 limit",
				    srclen);
	if (dstcap < PREFIX)
		return ab_error_set(AB_ETOOSMALL, "lz4: output buffer of %zu bytes too small",
				    dstcap);
	size_t cap = dstcap - PREFIX;
	if (cap > (size_t)INT_MAX)
		cap = (size_t)INT_MAX;
	/* acceleration < 1 means "default" to LZ4 as well; pass 1 explicitly. */
	int accel = c->acceleration < 1 ? 1 : c->acceleration;
	int r = LZ4_compress_fast(srclen ? (const char *)src : &dummy, (char *)d + PREFIX,
				  (int)srclen, (int)cap, accel);
	if (r <= 0)
		return ab_error_set(AB_ETOOSMALL, "lz4: output buffer of %zu bytes too small",
				    dstcap);
	ab_store_le32(d, (uint32_t)srclen);
	return (ssize_t)r + PREFIX;
}
