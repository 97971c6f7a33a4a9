/*
 * codec.h - bytes-to-bytes codecs and the vlen-utf8 string codec (internal).
 *
 * A bytes-to-bytes codec turns one encoded buffer into one decoded buffer. The
 * codecs are the real libraries of their field: libblosc (blosc1 frames),
 * libzstd, liblz4 (numcodecs framing: a 4-byte little-endian decoded size, then
 * one LZ4 block), zlib (raw zlib streams and gzip members), libbz2 (bzip2
 * streams, numcodecs BZ2), and a crc32c
 * checksum codec (the CRC-32C of the payload appended as 4 little-endian bytes).
 *
 * Decoders never trust the input: every size read from a header is checked
 * against the buffer it came in and against the destination, and a mismatch is
 * AB_ECORRUPT with a message (ab_error_set) naming the codec and the problem.
 * Callers prefix the message with the file/array/chunk (ab_error_prefix).
 */
#ifndef AB_FORMATS_CODEC_H
#define AB_FORMATS_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum ab_b2b_kind {
	AB_B2B_BLOSC = 1,
	AB_B2B_ZSTD,
	AB_B2B_LZ4,   /* numcodecs LZ4: uint32 LE decoded size + LZ4 block */
	AB_B2B_GZIP,  /* gzip member(s) (RFC 1952) */
	AB_B2B_ZLIB,  /* zlib stream (RFC 1950) */
	AB_B2B_CRC32C, /* payload + CRC-32C (LE uint32) */
	AB_B2B_BZ2     /* bzip2 stream(s) (numcodecs BZ2, libbz2) */
} ab_b2b_kind;

/* blosc shuffle modes as stored in numcodecs/zarr v2 JSON (-1 = auto:
 * bit shuffle for itemsize 1, byte shuffle otherwise, resolved by the parser). */
enum { AB_BLOSC_NOSHUFFLE = 0, AB_BLOSC_SHUFFLE = 1, AB_BLOSC_BITSHUFFLE = 2 };

typedef struct ab_b2b_codec {
	ab_b2b_kind kind;
	int level;          /* blosc clevel, zstd/gzip/zlib/bz2 level              */
	char cname[16];     /* blosc: lz4, lz4hc, blosclz, zstd, zlib, snappy       */
	int shuffle;        /* blosc: AB_BLOSC_*                                    */
	int typesize;       /* blosc: item size used for shuffling (>=1)            */
	size_t blocksize;   /* blosc: 0 = automatic                                 */
	int checksum;       /* zstd: write a content checksum when encoding          */
	int acceleration;   /* lz4: acceleration (>=1)                              */
	int unsplit;        /* blosc, encoding: one stream a block (NEVER_SPLIT)   */
} ab_b2b_codec;

/* The decoded size announced by the encoded buffer's header, when the format
 * carries one (blosc nbytes, zstd frame content size, numcodecs lz4 prefix,
 * crc32c: srclen - 4). Returns it (>= 0), or -1 if the format does not say
 * (gzip, zlib, zstd without content size), or AB_ECORRUPT (< -1, message set) if
 * the header is present but malformed or too short. */
int64_t ab_b2b_decoded_size(const ab_b2b_codec *c, const void *src, size_t srclen);

/* Decodes src[0..srclen) into dst[0..dstcap). Returns the number of decoded
 * bytes on success. If the decoded data would be larger than dstcap, returns
 * AB_ETOOSMALL (no message set): the caller may grow its buffer and try again
 * when it did not know the size. Any other failure is a negative AB_E* code
 * with a message. Thread-safe: no shared state (blosc uses the _ctx API with one
 * internal thread). */
#define AB_ETOOSMALL (-100)
ssize_t ab_b2b_decode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap);

/* Decodes only bytes [off, off + len) of the decoded form of src into dst
 * (dst receives exactly len bytes), for codecs that store their output in
 * independently decodable pieces: blosc, whose blocks are each shuffled and
 * compressed on their own, so only the blocks holding the range are
 * decompressed. *decoded is set to the bytes really decompressed (whole
 * blocks). Returns 0; AB_NO_PART when this codec or this buffer cannot be
 * decoded in part (other codecs, an old blosc frame format, a range off the
 * frame's item boundaries): the caller then decodes the whole buffer; or a
 * negative AB_E* code with a message (a range past the decoded size is
 * AB_ECORRUPT). The frame is validated like ab_b2b_decode validates it. */
#define AB_NO_PART 1
int ab_b2b_decode_part(const ab_b2b_codec *c, const void *src, size_t srclen, size_t off,
		       size_t len, void *dst, size_t *decoded);

/* Worst-case encoded size of `srclen` bytes. */
size_t ab_b2b_encode_bound(const ab_b2b_codec *c, size_t srclen);

/* Encodes src into dst (dstcap >= ab_b2b_encode_bound). Returns the encoded
 * size or a negative AB_E* code with a message. The output is what the
 * reference writers produce for the same parameters (numcodecs for v2, the zarr
 * v3 codec specifications for v3). */
ssize_t ab_b2b_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
		      void *dst, size_t dstcap);

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Start with crc = 0;
 * feeding a buffer in pieces gives the same result as in one call.
 * ab_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t ab_crc32c(uint32_t crc, const void *buf, size_t len);

/* A short human description: "blosc(lz4,clevel=3,shuffle)", "zstd(level=5)". */
void ab_b2b_describe(const ab_b2b_codec *c, char *buf, size_t bufsize);

/* ---- vlen-utf8 (v2 object filter and v3 array-to-bytes codec alike) ----
 * Layout: uint32 LE item count, then per item uint32 LE byte length + bytes.
 * Decoding checks the count against `expected_items` and every length against
 * the remaining buffer. On success *strings is an array of expected_items
 * NUL-terminated malloc'd strings (free each, then the array). */
int ab_vlen_utf8_decode(const void *src, size_t srclen, size_t expected_items,
			char ***strings);
/* Encodes n strings; *out is malloc'd, *outlen its size. */
int ab_vlen_utf8_encode(const char *const *strings, size_t n, uint8_t **out, size_t *outlen);

#endif
