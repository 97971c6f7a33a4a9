/*
 * codec_blosc.c - blosc1 frames through libblosc's context API.
 *
 * Frame layout (blosc format versions 1 and 2, all little endian):
 *   0  version        format version of the frame
 *   1  versionlz      version of the inner compressor's format
 *   2  flags          bit0 byte shuffle, bit1 memcpy'ed (stored raw),
 *                     bit2 bit shuffle, bit4 blocks not split,
 *                     bits 5-7 inner compressor format (0 blosclz, 1 lz4/lz4hc,
 *                     2 snappy, 3 zlib, 4 zstd)
 *   3  typesize       item size used by the shuffle
 *   4  nbytes  u32    decoded size
 *   8  blocksize u32  decoded bytes per block
 *  12  cbytes  u32    size of the whole frame, header included
 *  16  then, unless memcpy'ed, one u32 start offset per block, then the blocks.
 *
 * blosc_decompress_ctx() does not take the source length: it trusts cbytes.
 * So everything it will rely on is checked here first against the buffer we
 * really have (cbytes == srclen, the block-offset table inside the frame, the
 * block size not above the decoded size), and only then is the library called.
 * The _ctx functions keep no global state and, with one internal thread, spawn
 * none, which is what makes concurrent decoding from several threads safe.
 */
#include "codec_impl.h"

#include <blosc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define HDR AB_BLOSC_HDR

/* Names of the inner compressor formats (flags bits 5-7), as libblosc spells
 * the compressors that write them. lz4hc writes the lz4 format. */
static const char *format_name(unsigned format)
{
	switch (format) {
	case BLOSC_BLOSCLZ_FORMAT: return BLOSC_BLOSCLZ_COMPNAME;
	case BLOSC_LZ4_FORMAT: return BLOSC_LZ4_COMPNAME;
	case BLOSC_SNAPPY_FORMAT: return BLOSC_SNAPPY_COMPNAME;
	case BLOSC_ZLIB_FORMAT: return BLOSC_ZLIB_COMPNAME;
	case BLOSC_ZSTD_FORMAT: return BLOSC_ZSTD_COMPNAME;
	}
	return NULL;
}

int ab_blosc_header_read(const uint8_t *s, size_t srclen, ab_blosc_header *h)
{
	if (srclen < HDR)
		return ab_error_set(AB_ECORRUPT,
				    "blosc: frame truncated: %zu bytes, the header alone is %d",
				    srclen, HDR);
	h->version = s[0];
	h->flags = s[2];
	h->typesize = s[3];
	h->nbytes = ab_load_le32(s + 4);
	h->blocksize = ab_load_le32(s + 8);
	h->cbytes = ab_load_le32(s + 12);

	if (h->version == 0)
		return ab_error_set(AB_ECORRUPT, "blosc: invalid format version 0");
	if (h->version > BLOSC_VERSION_FORMAT)
		return ab_error_set(AB_EUNSUPPORTED,
				    "blosc: frame format version %u is newer than libblosc %s reads (%d)",
				    h->version, BLOSC_VERSION_STRING, BLOSC_VERSION_FORMAT);
	if (h->cbytes > srclen)
		return ab_error_set(AB_ECORRUPT,
				    "blosc: frame truncated: header says %u bytes, only %zu present",
				    (unsigned)h->cbytes, srclen);
	if (h->cbytes < srclen)
		return ab_error_set(AB_ECORRUPT,
				    "blosc: header says %u compressed bytes but the chunk has %zu",
				    (unsigned)h->cbytes, srclen);
	if (h->nbytes > (uint32_t)BLOSC_MAX_BUFFERSIZE)
		return ab_error_set(AB_ECORRUPT, "blosc: decoded size %u exceeds the blosc limit",
				    (unsigned)h->nbytes);

	if (h->flags & BLOSC_MEMCPYED) {
		/* Stored raw: the frame is exactly the header plus the data. */
		if ((uint64_t)h->cbytes != (uint64_t)h->nbytes + HDR)
			return ab_error_set(AB_ECORRUPT,
					    "blosc: raw frame of %u decoded bytes should be %llu bytes, is %u",
					    (unsigned)h->nbytes,
					    (unsigned long long)h->nbytes + HDR,
					    (unsigned)h->cbytes);
		return 0;
	}

	/* blosc1 applies at most one shuffle; both bits together mark the
	 * extended header of blosc2, which libblosc 1 cannot read. */
	if ((h->flags & BLOSC_DOSHUFFLE) && (h->flags & BLOSC_DOBITSHUFFLE))
		return ab_error_set(AB_EUNSUPPORTED,
				    "blosc: frame uses the blosc2 extended header (flags 0x%02x)",
				    h->flags);
	unsigned format = h->flags >> 5;
	const char *fname = format_name(format);
	if (fname == NULL)
		return ab_error_set(AB_ECORRUPT, "blosc: unknown inner compressor format %u",
				    format);
	if (blosc_compname_to_compcode(fname) < 0)
		return ab_error_set(AB_EUNSUPPORTED,
				    "blosc: frame compressed with %s, which this libblosc lacks", fname);
	if (h->nbytes == 0)
		return 0;
	if (h->typesize == 0)
		return ab_error_set(AB_ECORRUPT, "blosc: typesize 0 in header");
	/* The writer never makes blocks larger than the data; the reader sizes
	 * its scratch buffers from blocksize, so a lying header must not be
	 * able to ask for more than the decoded size. */
	if (h->blocksize == 0 || h->blocksize > h->nbytes)
		return ab_error_set(AB_ECORRUPT, "blosc: block size %u invalid for %u decoded bytes",
				    (unsigned)h->blocksize, (unsigned)h->nbytes);

	uint64_t nblocks = h->nbytes / h->blocksize + (h->nbytes % h->blocksize ? 1 : 0);
	uint64_t data_start = HDR + 4 * nblocks;
	if (data_start > h->cbytes)
		return ab_error_set(AB_ECORRUPT,
				    "blosc: frame truncated: %llu block offsets do not fit in %u bytes",
				    (unsigned long long)nblocks, (unsigned)h->cbytes);
	/* Every block starts with the 4-byte compressed length of its first
	 * stream, so each block offset must leave room for it. */
	for (uint64_t i = 0; i < nblocks; i++) {
		uint32_t start = ab_load_le32(s + HDR + 4 * i);
		if (start < data_start || (uint64_t)start + 4 > h->cbytes)
			return ab_error_set(AB_ECORRUPT,
					    "blosc: block %llu offset %u outside the frame (%llu..%u)",
					    (unsigned long long)i, (unsigned)start,
					    (unsigned long long)data_start, (unsigned)h->cbytes);
	}
	return 0;
}

int64_t ab_blosc_decoded_size(const void *src, size_t srclen)
{
	ab_blosc_header h;
	int rc = ab_blosc_header_read(src, srclen, &h);
	if (rc < 0)
		return rc;
	return (int64_t)h.nbytes;
}

ssize_t ab_blosc_decode(const void *src, size_t srclen, void *dst, size_t dstcap)
{
	const uint8_t *s = src;
	ab_blosc_header h;
	int rc = ab_blosc_header_read(s, srclen, &h);
	if (rc < 0)
		return rc;
	if (h.nbytes > dstcap)
		return AB_ETOOSMALL;
	if (h.nbytes == 0)
		return 0;
	if (h.flags & BLOSC_MEMCPYED) {
		/* Nothing to decompress: copying ourselves keeps the library out
		 * of the path entirely for raw frames. */
		memcpy(dst, s + HDR, h.nbytes);
		return (ssize_t)h.nbytes;
	}
	/* Pass exactly nbytes as the capacity: it is what the frame must
	 * produce, and it stays within the int range libblosc uses inside. */
	int r = blosc_decompress_ctx(s, dst, h.nbytes, 1);
	if (r <= 0)
		return ab_error_set(AB_ECORRUPT,
				    "blosc: corrupt frame (libblosc decompression error %d)", r);
	if ((uint32_t)r != h.nbytes)
		return ab_error_set(AB_ECORRUPT, "blosc: frame decoded to %d bytes, header says %u",
				    r, (unsigned)h.nbytes);
	return (ssize_t)r;
}

/* Decodes bytes [off, off + len) of a frame's decoded form into dst, touching
 * only the blocks that hold them (libblosc's getitem: each block is shuffled
 * and compressed on its own). The frame is validated by ab_blosc_header_read first:
 * blosc_getitem takes no source length and trusts the block table. Returns 0,
 * AB_BLOSC_NO_PART when this frame cannot be decoded in part (an older frame
 * format, or a range that does not fall on the frame's item boundaries: the
 * caller decodes the whole frame), or a negative status with a message. */
int ab_blosc_decode_part(const void *src, size_t srclen, size_t off, size_t len, void *dst,
			 size_t *decoded)
{
	const uint8_t *s = src;
	ab_blosc_header h;
	int rc = ab_blosc_header_read(s, srclen, &h);
	if (rc < 0)
		return rc;
	*decoded = 0;
	if (off > h.nbytes || len > h.nbytes - off)
		return ab_error_set(AB_ECORRUPT, "blosc: bytes %zu..%zu asked of a frame of %u decoded bytes",
				    off, off + len, (unsigned)h.nbytes);
	if (len == 0)
		return 0;
	if (h.flags & BLOSC_MEMCPYED) {
		memcpy(dst, s + HDR + off, len);
		*decoded = len;
		return 0;
	}
	if (h.version != BLOSC_VERSION_FORMAT || off % h.typesize || len % h.typesize)
		return AB_BLOSC_NO_PART;
	int r = blosc_getitem(s, (int)(off / h.typesize), (int)(len / h.typesize), dst);
	if (r < 0)
		return ab_error_set(AB_ECORRUPT, "blosc: corrupt frame (libblosc getitem error %d)", r);
	if ((size_t)r != len)
		return ab_error_set(AB_ECORRUPT, "blosc: part of a frame decoded to %d bytes, %zu expected", r,
				    len);
	/* whole blocks are decompressed: count what the library really did */
	size_t b0 = off / h.blocksize, b1 = (off + len - 1) / h.blocksize;
	size_t end = (b1 + 1) * (size_t)h.blocksize;
	*decoded = (end < h.nbytes ? end : h.nbytes) - b0 * (size_t)h.blocksize;
	return 0;
}

/* libblosc 1 chooses between split and unsplit blocks by a process-wide
 * mode (blosc_set_splitmode), read while it compresses. Compressions that
 * want different modes must not overlap: the first of a mode sets it, the
 * others of the same mode join, one of the other mode waits until they are
 * done. When none is running the library's default mode is set back. */
static pthread_mutex_t split_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t split_cv = PTHREAD_COND_INITIALIZER;
static unsigned split_active;
static int split_unsplit;

static void split_enter(int unsplit)
{
	pthread_mutex_lock(&split_mu);
	while (split_active && split_unsplit != unsplit)
		pthread_cond_wait(&split_cv, &split_mu);
	if (split_active++ == 0 && unsplit) {
		blosc_set_splitmode(BLOSC_NEVER_SPLIT);
		split_unsplit = 1;
	}
	pthread_mutex_unlock(&split_mu);
}

static void split_leave(void)
{
	pthread_mutex_lock(&split_mu);
	if (--split_active == 0) {
		if (split_unsplit)
			blosc_set_splitmode(BLOSC_FORWARD_COMPAT_SPLIT);
		split_unsplit = 0;
		pthread_cond_broadcast(&split_cv);
	}
	pthread_mutex_unlock(&split_mu);
}

size_t ab_blosc_encode_bound(size_t srclen)
{
	return ab_size_add(srclen, BLOSC_MAX_OVERHEAD);
}

ssize_t ab_blosc_encode(const ab_b2b_codec *c, const void *src, size_t srclen,
			void *dst, size_t dstcap)
{
	char cname[sizeof c->cname + 1];
	int shuffle = c->shuffle;

	/* The struct's cname need not be NUL-terminated when full. */
	memcpy(cname, c->cname, sizeof c->cname);
	cname[sizeof c->cname] = '\0';

	if (srclen > (size_t)BLOSC_MAX_BUFFERSIZE)
		return ab_error_set(AB_EINVAL, "blosc: input of %zu bytes exceeds the blosc limit",
				    srclen);
	if (blosc_compname_to_compcode(cname) < 0)
		return ab_error_set(AB_EUNSUPPORTED,
				    "blosc: compressor '%s' not available in libblosc %s (has %s)",
				    cname, blosc_get_version_string(), blosc_list_compressors());
	if (c->level < 0 || c->level > 9)
		return ab_error_set(AB_EINVAL, "blosc: clevel %d outside 0..9", c->level);
	if (c->typesize < 1)
		return ab_error_set(AB_EINVAL, "blosc: typesize %d must be at least 1", c->typesize);
	/* numcodecs' AUTOSHUFFLE (-1): bit shuffle for single bytes, where a
	 * byte shuffle would be a no-op, byte shuffle otherwise. */
	if (shuffle == -1)
		shuffle = c->typesize == 1 ? AB_BLOSC_BITSHUFFLE : AB_BLOSC_SHUFFLE;
	if (shuffle < AB_BLOSC_NOSHUFFLE || shuffle > AB_BLOSC_BITSHUFFLE)
		return ab_error_set(AB_EINVAL, "blosc: invalid shuffle mode %d", c->shuffle);
	if (c->blocksize > (size_t)BLOSC_MAX_BLOCKSIZE)
		return ab_error_set(AB_EINVAL, "blosc: block size %zu too large", c->blocksize);
	/* Even an empty input takes a full header; libblosc reports a smaller
	 * buffer as an internal error, not as "too small". */
	if (dstcap < BLOSC_MAX_OVERHEAD)
		return ab_error_set(AB_ETOOSMALL,
				    "blosc: output buffer of %zu bytes too small for %zu input bytes",
				    dstcap, srclen);
	if (dstcap > (size_t)INT_MAX)
		dstcap = (size_t)INT_MAX; /* libblosc counts output bytes in an int */

	uint8_t none = 0;
	split_enter(c->unsplit);
	int r = blosc_compress_ctx(c->level, shuffle, (size_t)c->typesize, srclen,
				   src ? src : &none, dst, dstcap, cname, c->blocksize, 1);
	split_leave();
	if (r == 0)
		return ab_error_set(AB_ETOOSMALL,
				    "blosc: output buffer of %zu bytes too small for %zu input bytes",
				    dstcap, srclen);
	if (r < 0)
		return ab_error_set(AB_EINVAL, "blosc: compression failed (libblosc error %d)", r);
	return (ssize_t)r;
}
