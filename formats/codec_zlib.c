/*
 * codec_zlib.c - zlib streams (RFC 1950) and gzip members (RFC 1952) through
 * zlib's inflate/deflate.
 *
 * Neither format records the decoded size up front, so decoding inflates
 * straight into the caller's buffer and, once that is full, keeps inflating
 * into a one-byte probe: if inflate ever writes there, the data does not fit
 * (AB_ETOOSMALL) and the caller can grow its buffer; if the stream ends
 * instead, the buffer was exactly large enough.
 *
 * gzip: several members may follow each other (gzip's own tools and Python's
 * gzip module read them as one concatenated stream), and zero bytes after the
 * last member are ignored as padding, as Python's reader does. zlib: anything
 * after the end of the stream is rejected, since no writer puts data there.
 *
 * zlib's counters are `uInt` (32 bits), so larger buffers are fed in slices.
 */
#include "codec_impl.h"

#include <zlib.h>

#define WBITS 15 /* 32 KiB window, the maximum and what every writer uses */

static unsigned slice(size_t n)
{
	return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

static const char *name_of(int gzip)
{
	return gzip ? "gzip" : "zlib";
}

ssize_t ab_zlib_decode(int gzip, const void *src, size_t srclen, void *dst, size_t dstcap)
{
	const char *name = name_of(gzip);
	z_stream z;
	uint8_t probe, none = 0;
	/* Pointers are advanced below even by zero, which C forbids on NULL:
	 * stand-ins for the empty (possibly NULL) buffers. */
	const uint8_t *in = src ? (const uint8_t *)src : &none;
	size_t in_rem = srclen;
	uint8_t *out = dst ? (uint8_t *)dst : &probe;
	size_t out_rem = dstcap;
	ssize_t result;

	memset(&z, 0, sizeof z);
	int ret = inflateInit2(&z, gzip ? 16 + WBITS : WBITS);
	if (ret == Z_MEM_ERROR)
		return ab_error_set(AB_ENOMEM, "%s: cannot allocate an inflate state", name);
	if (ret != Z_OK)
		return ab_error_set(AB_EINVAL, "%s: inflateInit2 failed (%d)", name, ret);

	for (;;) {
		int probing = out_rem == 0;
		unsigned ain = slice(in_rem);
		unsigned aout = probing ? 1 : slice(out_rem);

		/* zlib's next_in is not const-qualified in every version; it
		 * only ever reads through it. */
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = ain;
		z.next_out = probing ? &probe : out;
		z.avail_out = aout;
		ret = inflate(&z, Z_NO_FLUSH);

		size_t used_in = ain - z.avail_in;
		size_t used_out = aout - z.avail_out;
		in += used_in;
		in_rem -= used_in;
		if (probing && used_out > 0) {
			result = AB_ETOOSMALL;
			goto done;
		}
		if (!probing) {
			out += used_out;
			out_rem -= used_out;
		}

		switch (ret) {
		case Z_STREAM_END:
			if (gzip) {
				while (in_rem > 0 && *in == 0) {
					in++;
					in_rem--;
				}
			}
			if (in_rem == 0) {
				result = (ssize_t)(dstcap - out_rem);
				goto done;
			}
			if (!gzip) {
				result = ab_error_set(AB_ECORRUPT,
						      "zlib: %zu bytes of trailing data after the stream",
						      in_rem);
				goto done;
			}
			/* Another gzip member follows. */
			ret = inflateReset(&z);
			if (ret != Z_OK) {
				result = ab_error_set(AB_ECORRUPT, "gzip: inflateReset failed (%d)",
						      ret);
				goto done;
			}
			break;
		case Z_OK:
			break;
		case Z_BUF_ERROR:
			/* No progress was possible. If the output is full, the
			 * next round probes (inflate may hold pending output even
			 * after reading all the input). Otherwise it needs input:
			 * with none left the stream stopped early. */
			if (!probing && out_rem == 0)
				break;
			if (in_rem == 0) {
				result = ab_error_set(AB_ECORRUPT, "%s: stream truncated", name);
				goto done;
			}
			/* Cannot happen with a working zlib; guards the loop. */
			result = ab_error_set(AB_ECORRUPT, "%s: inflate stalled", name);
			goto done;
		case Z_NEED_DICT:
			result = ab_error_set(AB_EUNSUPPORTED,
					      "%s: stream needs a preset dictionary", name);
			goto done;
		case Z_MEM_ERROR:
			result = ab_error_set(AB_ENOMEM, "%s: out of memory while inflating", name);
			goto done;
		case Z_DATA_ERROR:
		default:
			result = ab_error_set(AB_ECORRUPT, "%s: %s", name,
					      z.msg ? z.msg : "corrupt stream");
			goto done;
		}
	}
done:
	inflateEnd(&z);
	return result;
}

size_t ab_zlib_encode_bound(int gzip, size_t srclen)
{
	/* zlib's compressBound() formula for a zlib stream (its 6 wrapper bytes
	 * included), plus 12 for gzip, whose header and trailer take 18. Done in
	 * size_t with saturation; compressBound takes a uLong. Streams larger
	 * than 4 GiB are deflated in slices, each of which may end a stored
	 * block, so allow 5 extra bytes per slice. */
	size_t b = srclen;
	b = ab_size_add(b, srclen >> 12);
	b = ab_size_add(b, srclen >> 14);
	b = ab_size_add(b, srclen >> 25);
	b = ab_size_add(b, 13);
	b = ab_size_add(b, 5 * (srclen / UINT_MAX + 1));
	if (gzip)
		b = ab_size_add(b, 12);
	return b;
}

ssize_t ab_zlib_encode(int gzip, int level, const void *src, size_t srclen,
		       void *dst, size_t dstcap)
{
	const char *name = name_of(gzip);
	z_stream z;
	uint8_t none_in = 0, none_out;
	/* As in decode: never do arithmetic on a NULL empty buffer. */
	const uint8_t *in = src ? (const uint8_t *)src : &none_in;
	size_t in_rem = srclen;
	uint8_t *out = dst ? (uint8_t *)dst : &none_out;
	size_t out_rem = dstcap;
	ssize_t result;

	if (level < -1 || level > 9)
		return ab_error_set(AB_EINVAL, "%s: level %d outside -1..9", name, level);
	memset(&z, 0, sizeof z);
	/* memLevel 8 and the default strategy are what compress2() and Python's
	 * zlib/gzip modules use, so the deflate data matches theirs. The gzip
	 * header that deflate writes has mtime 0 and no file name. */
	int ret = deflateInit2(&z, level, Z_DEFLATED, gzip ? 16 + WBITS : WBITS, 8,
			       Z_DEFAULT_STRATEGY);
	if (ret == Z_MEM_ERROR)
		return ab_error_set(AB_ENOMEM, "%s: cannot allocate a deflate state", name);
	if (ret != Z_OK)
		return ab_error_set(AB_EINVAL, "%s: deflateInit2 failed (%d)", name, ret);

	for (;;) {
		unsigned ain = slice(in_rem);
		unsigned aout = slice(out_rem);
		/* Z_FINISH only once the last slice of input is handed over. */
		int flush = in_rem == ain ? Z_FINISH : Z_NO_FLUSH;

		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = ain;
		z.next_out = out;
		z.avail_out = aout;
		ret = deflate(&z, flush);
		size_t used_in = ain - z.avail_in;
		size_t used_out = aout - z.avail_out;
		in += used_in;
		in_rem -= used_in;
		out += used_out;
		out_rem -= used_out;

		if (ret == Z_STREAM_END) {
			result = (ssize_t)(dstcap - out_rem);
			break;
		}
		if (ret == Z_OK)
			continue;
		if (ret == Z_BUF_ERROR && out_rem == 0) {
			result = ab_error_set(AB_ETOOSMALL,
					      "%s: output buffer of %zu bytes too small", name, dstcap);
			break;
		}
		if (ret == Z_BUF_ERROR && (used_in > 0 || used_out > 0))
			continue;
		result = ab_error_set(AB_EINVAL, "%s: deflate failed (%d)", name, ret);
		break;
	}
	deflateEnd(&z);
	return result;
}
