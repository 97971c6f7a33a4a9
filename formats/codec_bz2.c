/*
 * codec_bz2.c - bzip2 streams (numcodecs BZ2: the bytes of bz2.compress, one
 * or more whole streams, nothing around them), decoded with libbz2.
 *
 * A bzip2 stream does not announce its decoded size, so the decoder stops at
 * the capacity it is given: more output than that is AB_ETOOSMALL (the caller
 * knows the chunk's size, or grows its buffer and tries again), a stream cut
 * short or with bad CRCs is AB_ECORRUPT. Concatenated streams are what
 * Python's bz2.decompress reads as one, so they are read the same way.
 */
#include "codec_impl.h"

#include <bzlib.h>

/* BZ2_bzDecompress counts in unsigned int: feed at most this much at once. */
#define STEP ((size_t)1 << 30)

ssize_t ab_bz2_decode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	const char *in = src;
	char *out = dst;
	size_t got = 0, used = 0;
	if (srclen == 0)
		return ab_error_set(AB_ECORRUPT, "bz2: empty buffer (not a bzip2 stream)");
	while (used < srclen) {
		bz_stream z;
		memset(&z, 0, sizeof z);
		int r = BZ2_bzDecompressInit(&z, 0, 0);
		if (r != BZ_OK)
			return ab_error_set(r == BZ_MEM_ERROR ? AB_ENOMEM : AB_EIO, "bz2: cannot start a decoder (%d)", r);
		char dummy;
		for (;;) {
			size_t in_left = srclen - used, out_left = dstcap - got;
			z.next_in = (char *)in + used;
			z.avail_in = (unsigned)(in_left < STEP ? in_left : STEP);
			z.next_out = out_left ? out + got : &dummy;
			z.avail_out = (unsigned)(out_left < STEP ? out_left : STEP);
			if (!out_left)
				z.avail_out = 1; /* a probe: any output means the chunk is larger */
			unsigned ai = z.avail_in, ao = z.avail_out;
			r = BZ2_bzDecompress(&z);
			used += ai - z.avail_in;
			if (!out_left && ao != z.avail_out) {
				BZ2_bzDecompressEnd(&z);
				return AB_ETOOSMALL;
			}
			if (out_left)
				got += ao - z.avail_out;
			if (r == BZ_STREAM_END)
				break;
			if (r != BZ_OK) {
				BZ2_bzDecompressEnd(&z);
				return ab_error_set(AB_ECORRUPT, "bz2: corrupt stream (libbz2 error %d after %zu of %zu bytes)",
						    r, used, srclen);
			}
			if (used == srclen && z.avail_out != 0) {
				BZ2_bzDecompressEnd(&z);
				return ab_error_set(AB_ECORRUPT, "bz2: truncated stream (%zu bytes)", srclen);
			}
			if (ai == z.avail_in && ao == z.avail_out) {
				/* neither input taken nor output made: never loop on it */
				BZ2_bzDecompressEnd(&z);
				return ab_error_set(AB_ECORRUPT, "bz2: stream stalls after %zu of %zu bytes", used,
						    srclen);
			}
		}
		BZ2_bzDecompressEnd(&z);
	}
	return (ssize_t)got;
}

size_t ab_bz2_encode_bound(size_t srclen)
{
	/* libbz2's documented worst case: 1% larger plus 600 bytes */
	return ab_size_add(ab_size_add(srclen, srclen / 100), 600);
}

ssize_t ab_bz2_encode(int level, const void *src, size_t srclen, void *dst, size_t dstcap)
{
	if (srclen > UINT_MAX || dstcap > UINT_MAX)
		return ab_error_set(AB_EINVAL, "bz2: buffers above 4 GiB are not supported");
	unsigned n = (unsigned)dstcap;
	int lv = level < 1 ? 9 : level > 9 ? 9 : level;
	int r = BZ2_bzBuffToBuffCompress(dst, &n, (char *)src, (unsigned)srclen, lv, 0, 0);
	if (r == BZ_OUTBUFF_FULL)
		return ab_error_set(AB_ETOOSMALL, "bz2: output buffer of %zu bytes too small", dstcap);
	if (r != BZ_OK)
		return ab_error_set(AB_EIO, "bz2: compression failed (%d)", r);
	return (ssize_t)n;
}
