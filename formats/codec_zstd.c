/*
 * codec_zstd.c - zstd frames (one or several concatenated) through libzstd.
 *
 * Decoding first walks the frames with ZSTD_findFrameCompressedSize, which
 * follows the block headers without decompressing: that tells truncation and
 * trailing garbage apart from bad data, and gives the decoded size when every
 * frame records its content size (numcodecs and zarr always write it). Then:
 *  - all sizes known: one ZSTD_decompressDCtx call into dst, no window buffer;
 *  - some size unknown (a streaming writer): ZSTD_decompressStream into dst,
 *    and once dst is full a one-byte probe tells "done" from "does not fit".
 * A decompression context is made per call, so nothing is shared between
 * threads.
 */
#include "codec_impl.h"

#include <zstd.h>
#include <zstd_errors.h>

/* Walks the frames of src. Returns 0 and sets *total (the summed content
 * sizes) and *known (0 if a frame does not record its size), or a negative
 * status with a message. */
static int scan_frames(const uint8_t *s, size_t srclen, uint64_t *total, int *known)
{
	size_t off = 0;
	unsigned frame = 0;

	*total = 0;
	*known = 1;
	if (srclen == 0)
		return ab_error_set(AB_ECORRUPT, "zstd: empty buffer, no frame");
	while (off < srclen) {
		size_t fsz = ZSTD_findFrameCompressedSize(s + off, srclen - off);
		if (ZSTD_isError(fsz)) {
			if (ZSTD_getErrorCode(fsz) == ZSTD_error_srcSize_wrong)
				return ab_error_set(AB_ECORRUPT,
						    "zstd: frame %u truncated (%zu bytes left at offset %zu)",
						    frame, srclen - off, off);
			return ab_error_set(AB_ECORRUPT, "zstd: frame %u at offset %zu: %s", frame,
					    off, ZSTD_getErrorName(fsz));
		}
		/* Skippable frames report a content size of 0, which is right:
		 * they add nothing to the output. */
		unsigned long long cs = ZSTD_getFrameContentSize(s + off, srclen - off);
		if (cs == ZSTD_CONTENTSIZE_ERROR)
			return ab_error_set(AB_ECORRUPT, "zstd: frame %u at offset %zu: bad header",
					    frame, off);
		if (cs == ZSTD_CONTENTSIZE_UNKNOWN)
			*known = 0;
		else if (cs > (uint64_t)INT64_MAX - *total)
			return ab_error_set(AB_ECORRUPT, "zstd: announced content size overflows");
		else
			*total += cs;
		off += fsz;
		frame++;
	}
	return 0;
}

int64_t ab_zstd_decoded_size(const void *src, size_t srclen)
{
	uint64_t total;
	int known;
	int rc = scan_frames(src, srclen, &total, &known);
	if (rc < 0)
		return rc;
	return known ? (int64_t)total : -1;
}

static ssize_t decode_known(ZSTD_DCtx *dctx, const void *src, size_t srclen, void *dst,
			    size_t total)
{
	uint8_t dummy;
	/* libzstd wants a valid pointer even for an empty output. */
	size_t r = ZSTD_decompressDCtx(dctx, total ? dst : &dummy, total, src, srclen);
	if (ZSTD_isError(r))
		return ab_error_set(AB_ECORRUPT, "zstd: %s", ZSTD_getErrorName(r));
	if (r != total)
		return ab_error_set(AB_ECORRUPT, "zstd: decoded %zu bytes, frames announce %zu", r,
				    total);
	return (ssize_t)r;
}

static ssize_t decode_stream(ZSTD_DCtx *dctx, const void *src, size_t srclen, void *dst,
			     size_t dstcap)
{
	uint8_t probe_byte;
	ZSTD_inBuffer in = { src, srclen, 0 };
	ZSTD_outBuffer out = { dst, dstcap, 0 };
	ZSTD_outBuffer probe = { &probe_byte, 1, 0 };

	for (;;) {
		/* Once dst is full, keep feeding the decoder a one-byte buffer:
		 * if it ever writes into it, the data does not fit. */
		ZSTD_outBuffer *o = out.pos < out.size ? &out : &probe;
		size_t in_before = in.pos, out_before = o->pos;
		size_t r = ZSTD_decompressStream(dctx, o, &in);
		if (ZSTD_isError(r))
			return ab_error_set(AB_ECORRUPT, "zstd: %s", ZSTD_getErrorName(r));
		if (probe.pos > 0)
			return AB_ETOOSMALL;
		/* r == 0: a frame is complete and flushed. With no input left
		 * that was the last one. */
		if (r == 0 && in.pos == in.size)
			return (ssize_t)out.pos;
		if (in.pos == in_before && o->pos == out_before)
			/* No progress: the decoder wants input we do not have.
			 * scan_frames normally catches this first. */
			return ab_error_set(AB_ECORRUPT, "zstd: frame truncated");
	}
}

ssize_t ab_zstd_decode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	uint64_t total;
	int known;
	int rc = scan_frames(src, srclen, &total, &known);
	if (rc < 0)
		return rc;
	if (known && total > dstcap)
		return AB_ETOOSMALL;

	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	if (dctx == NULL)
		return ab_error_set(AB_ENOMEM, "zstd: cannot allocate a decompression context");
	ssize_t n = known ? decode_known(dctx, src, srclen, dst, (size_t)total)
			  : decode_stream(dctx, src, srclen, dst, dstcap);
	ZSTD_freeDCtx(dctx);
	return n;
}

size_t ab_zstd_encode_bound(size_t srclen)
{
	size_t b = ZSTD_compressBound(srclen);
	/* ZSTD_compressBound returns an error code for absurd sizes. */
	return ZSTD_isError(b) ? SIZE_MAX : b;
}

ssize_t ab_zstd_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		       void *dst, size_t dstcap)
{
	uint8_t dummy;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	if (cctx == NULL)
		return ab_error_set(AB_ENOMEM, "zstd: cannot allocate a compression context");

	/* ZSTD_compress2 records the content size in the frame header, as
	 * numcodecs' writer does; readers rely on it to size their buffers. */
	size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, c->level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, c->checksum ? 1 : 0);
	if (ZSTD_isError(r)) {
		ZSTD_freeCCtx(cctx);
		return ab_error_set(AB_EINVAL, "zstd: level %d: %s", c->level,
				    ZSTD_getErrorName(r));
	}
	r = ZSTD_compress2(cctx, dstcap ? dst : &dummy, dstcap, srclen ? src : &dummy, srclen);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
			return ab_error_set(AB_ETOOSMALL,
					    "zstd: output buffer of %zu bytes too small", dstcap);
		return ab_error_set(AB_EINVAL, "zstd: compression failed: %s",
				    ZSTD_getErrorName(r));
	}
	return (ssize_t)r;
}
