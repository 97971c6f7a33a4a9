/*
 * codec.c - the bytes-to-bytes codec entry points: argument checks, dispatch on
 * the codec kind, the crc32c framing and the human-readable description.
 *
 * The per-library work lives in codec_blosc.c, codec_zstd.c, codec_lz4.c, codec_bz2.c and
 * codec_zlib.c; this file is the one place that validates what the caller
 * passes, so those files can assume sane pointers and a dstcap that fits in
 * ssize_t.
 */
#include "codec_impl.h"

#include <stdio.h>

/* Common argument checks; returns 0 or a negative status with a message. */
static int check_args(const ab_b2b_codec *c, const void *src, size_t srclen,
		      const void *dst, size_t dstcap)
{
	if (c == NULL)
		return ab_error_set(AB_EINVAL, "codec: no codec given");
	if (src == NULL && srclen > 0)
		return ab_error_set(AB_EINVAL, "codec: NULL source with %zu bytes", srclen);
	if (dst == NULL && dstcap > 0)
		return ab_error_set(AB_EINVAL, "codec: NULL destination with capacity %zu",
				    dstcap);
	return 0;
}

/* ---- crc32c framing: payload followed by its CRC-32C, 4 bytes LE ---- */

static int64_t crc32c_decoded_size(size_t srclen)
{
	if (srclen < 4)
		return ab_error_set(AB_ECORRUPT,
				    "crc32c: buffer of %zu bytes is too short for the 4-byte checksum",
				    srclen);
	return (int64_t)(srclen - 4);
}

static ssize_t crc32c_decode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	const uint8_t *s = src;
	size_t n;
	uint32_t stored, computed;

	if (srclen < 4)
		return ab_error_set(AB_ECORRUPT,
				    "crc32c: buffer of %zu bytes is too short for the 4-byte checksum",
				    srclen);
	n = srclen - 4;
	/* A too-small destination is reported before the checksum is computed:
	 * the caller grows its buffer and retries, and the retry verifies. */
	if (n > dstcap)
		return AB_ETOOSMALL;
	stored = ab_load_le32(s + n);
	computed = ab_crc32c(0, s, n);
	if (stored != computed)
		return ab_error_set(AB_ECORRUPT,
				    "crc32c mismatch: stored 0x%08x, computed 0x%08x over %zu bytes",
				    (unsigned)stored, (unsigned)computed, n);
	/* memmove, not memcpy: decoding in place (dst == src) is legitimate and
	 * cheap for this codec. */
	if (n > 0)
		memmove(dst, s, n);
	return (ssize_t)n;
}

static ssize_t crc32c_encode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	uint8_t *d = dst;

	if (srclen > (size_t)SSIZE_MAX - 4)
		return ab_error_set(AB_EINVAL, "crc32c: input of %zu bytes is too large", srclen);
	if (dstcap < srclen + 4)
		return ab_error_set(AB_ETOOSMALL,
				    "crc32c: output buffer of %zu bytes, %zu needed", dstcap,
				    srclen + 4);
	/* Checksum first, then copy: with memmove this also works in place. */
	uint32_t crc = ab_crc32c(0, src, srclen);
	if (srclen > 0)
		memmove(d, src, srclen);
	ab_store_le32(d + srclen, crc);
	return (ssize_t)(srclen + 4);
}

/* ---- dispatch ---- */

int64_t ab_b2b_decoded_size(const ab_b2b_codec *c, const void *src, size_t srclen)
{
	/* AB_EINVAL is -1, which this function reserves for "the format does
	 * not record the size": argument errors come back as AB_EFORMAT so that
	 * every failure stays below -1. */
	if (check_args(c, src, srclen, NULL, 0) < 0)
		return AB_EFORMAT;
	switch (c->kind) {
	case AB_B2B_BLOSC: return ab_blosc_decoded_size(src, srclen);
	case AB_B2B_ZSTD: return ab_zstd_decoded_size(src, srclen);
	case AB_B2B_LZ4: return ab_lz4_decoded_size(src, srclen);
	case AB_B2B_GZIP:
	case AB_B2B_ZLIB:
	case AB_B2B_BZ2: return -1; /* deflate and bzip2 streams do not announce their size */
	case AB_B2B_CRC32C: return crc32c_decoded_size(srclen);
	}
	return ab_error_set(AB_EUNSUPPORTED, "codec: unknown bytes-to-bytes codec kind %d",
			    (int)c->kind);
}

ssize_t ab_b2b_decode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap)
{
	int rc = check_args(c, src, srclen, dst, dstcap);
	if (rc < 0)
		return rc;
	/* A decoded size is returned as ssize_t, so never promise the backends
	 * more room than that type can report. */
	if (dstcap > (size_t)SSIZE_MAX)
		dstcap = (size_t)SSIZE_MAX;
	switch (c->kind) {
	case AB_B2B_BLOSC: return ab_blosc_decode(src, srclen, dst, dstcap);
	case AB_B2B_ZSTD: return ab_zstd_decode(src, srclen, dst, dstcap);
	case AB_B2B_LZ4: return ab_lz4_decode(src, srclen, dst, dstcap);
	case AB_B2B_GZIP: return ab_zlib_decode(1, src, srclen, dst, dstcap);
	case AB_B2B_ZLIB: return ab_zlib_decode(0, src, srclen, dst, dstcap);
	case AB_B2B_CRC32C: return crc32c_decode(src, srclen, dst, dstcap);
	case AB_B2B_BZ2: return ab_bz2_decode(src, srclen, dst, dstcap);
	}
	return ab_error_set(AB_EUNSUPPORTED, "codec: unknown bytes-to-bytes codec kind %d",
			    (int)c->kind);
}

int ab_b2b_decode_part(const ab_b2b_codec *c, const void *src, size_t srclen, size_t off,
		       size_t len, void *dst, size_t *decoded)
{
	int rc = check_args(c, src, srclen, dst, len);
	if (rc < 0)
		return rc;
	if (c->kind != AB_B2B_BLOSC)
		return AB_NO_PART;
	rc = ab_blosc_decode_part(src, srclen, off, len, dst, decoded);
	return rc == AB_BLOSC_NO_PART ? AB_NO_PART : rc;
}

size_t ab_b2b_encode_bound(const ab_b2b_codec *c, size_t srclen)
{
	if (c == NULL)
		return 0;
	switch (c->kind) {
	case AB_B2B_BLOSC: return ab_blosc_encode_bound(srclen);
	case AB_B2B_ZSTD: return ab_zstd_encode_bound(srclen);
	case AB_B2B_LZ4: return ab_lz4_encode_bound(srclen);
	case AB_B2B_GZIP: return ab_zlib_encode_bound(1, srclen);
	case AB_B2B_ZLIB: return ab_zlib_encode_bound(0, srclen);
	case AB_B2B_CRC32C: return ab_size_add(srclen, 4);
	case AB_B2B_BZ2: return ab_bz2_encode_bound(srclen);
	}
	return 0;
}

ssize_t ab_b2b_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap)
{
	int rc = check_args(c, src, srclen, dst, dstcap);
	if (rc < 0)
		return rc;
	if (dstcap > (size_t)SSIZE_MAX)
		dstcap = (size_t)SSIZE_MAX;
	switch (c->kind) {
	case AB_B2B_BLOSC: return ab_blosc_encode(c, src, srclen, dst, dstcap);
	case AB_B2B_ZSTD: return ab_zstd_encode(c, src, srclen, dst, dstcap);
	case AB_B2B_LZ4: return ab_lz4_encode(c, src, srclen, dst, dstcap);
	case AB_B2B_GZIP: return ab_zlib_encode(1, c->level, src, srclen, dst, dstcap);
	case AB_B2B_ZLIB: return ab_zlib_encode(0, c->level, src, srclen, dst, dstcap);
	case AB_B2B_CRC32C: return crc32c_encode(src, srclen, dst, dstcap);
	case AB_B2B_BZ2: return ab_bz2_encode(c->level, src, srclen, dst, dstcap);
	}
	return ab_error_set(AB_EUNSUPPORTED, "codec: unknown bytes-to-bytes codec kind %d",
			    (int)c->kind);
}

static const char *shuffle_name(int shuffle)
{
	switch (shuffle) {
	case AB_BLOSC_NOSHUFFLE: return "noshuffle";
	case AB_BLOSC_SHUFFLE: return "shuffle";
	case AB_BLOSC_BITSHUFFLE: return "bitshuffle";
	case -1: return "auto";
	}
	return "invalid";
}

void ab_b2b_describe(const ab_b2b_codec *c, char *buf, size_t bufsize)
{
	if (buf == NULL || bufsize == 0)
		return;
	if (c == NULL) {
		snprintf(buf, bufsize, "(none)");
		return;
	}
	switch (c->kind) {
	case AB_B2B_BLOSC: {
		/* cname is a fixed array that a parser filled: print at most its
		 * size, in case it was not NUL-terminated. */
		int n = snprintf(buf, bufsize, "blosc(cname=%.*s,clevel=%d,shuffle=%s",
				 (int)sizeof c->cname, c->cname, c->level,
				 shuffle_name(c->shuffle));
		if (n >= 0 && (size_t)n < bufsize && c->blocksize != 0)
			n += snprintf(buf + n, bufsize - (size_t)n, ",blocksize=%zu",
				      c->blocksize);
		if (n >= 0 && (size_t)n < bufsize)
			snprintf(buf + n, bufsize - (size_t)n, ")");
		return;
	}
	case AB_B2B_ZSTD:
		snprintf(buf, bufsize, "zstd(level=%d%s)", c->level,
			 c->checksum ? ",checksum" : "");
		return;
	case AB_B2B_LZ4:
		if (c->acceleration > 1)
			snprintf(buf, bufsize, "lz4(acceleration=%d)", c->acceleration);
		else
			snprintf(buf, bufsize, "lz4");
		return;
	case AB_B2B_GZIP:
		snprintf(buf, bufsize, "gzip(level=%d)", c->level);
		return;
	case AB_B2B_ZLIB:
		snprintf(buf, bufsize, "zlib(level=%d)", c->level);
		return;
	case AB_B2B_CRC32C:
		snprintf(buf, bufsize, "crc32c");
		return;
	case AB_B2B_BZ2:
		snprintf(buf, bufsize, "bz2(level=%d)", c->level);
		return;
	}
	snprintf(buf, bufsize, "unknown(%d)", (int)c->kind);
}
