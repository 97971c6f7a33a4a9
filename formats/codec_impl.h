/*
 * codec_impl.h - what the codec.c dispatcher and the per-library codec files
 * share (internal to formats/, not installed).
 *
 * Every per-library function follows the contract of the public entry point it
 * backs (see codec.h): codec.c has already checked the pointers (c != NULL,
 * src != NULL when srclen > 0, dst != NULL when dstcap > 0) and clamped dstcap
 * to SSIZE_MAX so that any decoded size that fits also fits the return type.
 */
#ifndef AB_FORMATS_CODEC_IMPL_H
#define AB_FORMATS_CODEC_IMPL_H

#include "codec.h"
#include "last_error.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* Little-endian loads and stores byte by byte: the buffers come from files, so
 * they have no alignment, and the on-disk order is LE whatever the host's. */
static inline uint32_t ab_load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline void ab_store_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* a + b, saturating at SIZE_MAX: encode bounds must never wrap around into a
 * small number that a caller would then trust. */
static inline size_t ab_size_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* ---- blosc (codec_blosc.c) ---- */
/* A frame's header (see codec_blosc.c for the layout). */
#define AB_BLOSC_HDR 16 /* BLOSC_MIN_HEADER_LENGTH */
typedef struct ab_blosc_header {
	unsigned version;
	unsigned flags;
	unsigned typesize;
	uint32_t nbytes;
	uint32_t blocksize;
	uint32_t cbytes;
} ab_blosc_header;
/* Reads and validates the header and block table of a frame of exactly
 * srclen bytes (what every blosc entry point does before libblosc sees the
 * frame; blosc_layout.c too). Returns 0 or a negative status with a
 * message. */
int ab_blosc_header_read(const uint8_t *s, size_t srclen, ab_blosc_header *h);
int64_t ab_blosc_decoded_size(const void *src, size_t srclen);
ssize_t ab_blosc_decode(const void *src, size_t srclen, void *dst, size_t dstcap);
#define AB_BLOSC_NO_PART 1
int ab_blosc_decode_part(const void *src, size_t srclen, size_t off, size_t len, void *dst,
			 size_t *decoded);
size_t ab_blosc_encode_bound(size_t srclen);
ssize_t ab_blosc_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
			void *dst, size_t dstcap);

/* ---- zstd (codec_zstd.c) ---- */
int64_t ab_zstd_decoded_size(const void *src, size_t srclen);
ssize_t ab_zstd_decode(const void *src, size_t srclen, void *dst, size_t dstcap);
size_t ab_zstd_encode_bound(size_t srclen);
ssize_t ab_zstd_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		       void *dst, size_t dstcap);

/* ---- lz4, numcodecs framing (codec_lz4.c) ---- */
int64_t ab_lz4_decoded_size(const void *src, size_t srclen);
ssize_t ab_lz4_decode(const void *src, size_t srclen, void *dst, size_t dstcap);
size_t ab_lz4_encode_bound(size_t srclen);
ssize_t ab_lz4_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap);

/* ---- gzip (gzip != 0) and zlib (gzip == 0) (codec_zlib.c) ---- */
ssize_t ab_zlib_decode(int gzip, const void *src, size_t srclen, void *dst, size_t dstcap);
size_t ab_zlib_encode_bound(int gzip, size_t srclen);
ssize_t ab_zlib_encode(int gzip, int level, const void *src, size_t srclen,
		       void *dst, size_t dstcap);

/* ---- bzip2, numcodecs BZ2 (codec_bz2.c) ---- */
ssize_t ab_bz2_decode(const void *src, size_t srclen, void *dst, size_t dstcap);
size_t ab_bz2_encode_bound(size_t srclen);
ssize_t ab_bz2_encode(int level, const void *src, size_t srclen, void *dst, size_t dstcap);

/* ---- crc32c (crc32c.c) ---- */
/* The portable table-driven implementation, exposed so the unit tests can
 * compare it with the SSE4.2 path that ab_crc32c() picks when it can. */
uint32_t ab_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* 1 if ab_crc32c() uses the SSE4.2 crc32 instruction on this machine. */
int ab_crc32c_hw_available(void);

#endif
