/*
 * fuzz_codecs - the bytes-to-bytes codecs on hostile frames.
 *
 * Input: byte 0 picks the codec (blosc, zstd, lz4, gzip, zlib, crc32c) and byte
 * 1 some parameters; the rest is the encoded frame. The target asks for the
 * announced size, decodes into a buffer of that size (or a guess when the
 * format announces none), once more into a buffer one byte too small, and
 * checks the contract of ab_b2b_decode: a result within the capacity, or
 * AB_ETOOSMALL, or another negative status. It decodes a part of the frame
 * (ab_b2b_decode_part, range from byte 1), which must agree with the whole
 * decode where both succeed. Then it encodes the frame bytes as if they were
 * data and checks that they decode back unchanged.
 */
#include "fuzz_common.h"

#include "blosc_layout.h"
#include "codec.h"

static const ab_b2b_kind kinds[] = { AB_B2B_BLOSC, AB_B2B_ZSTD, AB_B2B_LZ4,
				      AB_B2B_GZIP, AB_B2B_ZLIB, AB_B2B_CRC32C, AB_B2B_BZ2 };
static const char *const cnames[] = { "lz4", "lz4hc", "blosclz", "zstd", "zlib" };

static void make_codec(uint8_t sel, uint8_t par, ab_b2b_codec *c)
{
	memset(c, 0, sizeof *c);
	c->kind = kinds[sel % (sizeof kinds / sizeof kinds[0])];
	c->level = par % 10;
	snprintf(c->cname, sizeof c->cname, "%s", cnames[(par >> 4) % 5]);
	c->shuffle = (par >> 2) % 3;
	c->typesize = 1 << ((par >> 6) & 3); /* 1, 2, 4, 8 */
	c->checksum = par & 1;
	c->acceleration = 1 + (par & 3);
}

/* Decodes with capacity cap; checks the result's contract. */
static ssize_t decode_checked(const ab_b2b_codec *c, const uint8_t *src, size_t len, size_t cap)
{
	uint8_t *dst = malloc(cap ? cap : 1);
	if (!dst)
		return AB_ENOMEM;
	ssize_t n = ab_b2b_decode(c, src, len, cap ? dst : NULL, cap);
	fuzz_debug("ab_b2b_decode", n < 0 ? (int)n : 0);
	FUZZ_ASSERT(n < 0 || (size_t)n <= cap);
	FUZZ_ASSERT(n >= 0 || n == AB_ETOOSMALL || (n <= AB_EINVAL && n >= AB_ETYPE));
	free(dst);
	return n;
}

/* A part of the frame: bytes [a, b) with a and b picked from `par`. */
static void part_checked(const ab_b2b_codec *c, const uint8_t *src, size_t len, size_t total, uint8_t par)
{
	size_t ts = (size_t)c->typesize, items = total / ts;
	size_t a = items * (par & 15) / 16, b = a + (items - a) * (par >> 4) / 15;
	uint8_t *whole = malloc(total), *part = malloc((b - a) * ts + 1);
	if (whole && part) {
		size_t decoded = 0;
		int rc = ab_b2b_decode_part(c, src, len, a * ts, (b - a) * ts, part, &decoded);
		FUZZ_ASSERT(rc == 0 || rc == AB_NO_PART || (rc <= AB_EINVAL && rc >= AB_ETYPE));
		if (rc == 0) {
			FUZZ_ASSERT(decoded <= total);
			ssize_t n = ab_b2b_decode(c, src, len, whole, total);
			/* a block the part skipped may be corrupt; where the whole
			 * frame decodes, the part must be its slice */
			if (n == (ssize_t)total)
				FUZZ_ASSERT(memcmp(part, whole + a * ts, (b - a) * ts) == 0);
		}
	}
	free(whole);
	free(part);
}

/* A frame of some of the frame's blocks, as the loader builds after reading
 * only those: it must decode to the same bytes as that part of the whole. */
static void subframe_checked(const ab_b2b_codec *c, const uint8_t *src, size_t len, size_t total, uint8_t par)
{
	ab_blosc_layout l;
	if (c->kind != AB_B2B_BLOSC || ab_blosc_layout_read(src, len, &l) != 0)
		return;
	uint32_t b0 = (uint32_t)(par & 15) % l.nblocks, b1 = b0 + (uint32_t)(par >> 4) % (l.nblocks - b0);
	if (!(b0 == b1 && b1 + 1 == l.nblocks && l.nbytes % l.blocksize)) {
		size_t h = AB_BLOSC_SUBFRAME_HDR(b0, b1), data = l.start[b1 + 1] - l.start[b0];
		size_t a = (size_t)b0 * l.blocksize, e = (size_t)(b1 + 1) * l.blocksize;
		e = e < total ? e : total;
		uint8_t *f = malloc(h + data), *part = malloc(e - a + 1), *whole = malloc(total);
		if (f && part && whole) {
			memcpy(f + h, src + l.start[b0], data);
			size_t flen = ab_blosc_subframe_header(&l, b0, b1, f);
			FUZZ_ASSERT(flen == h + data);
			ssize_t n = ab_b2b_decode(c, f, flen, part, e - a);
			ssize_t w = ab_b2b_decode(c, src, len, whole, total);
			if (n >= 0 && w == (ssize_t)total) {
				FUZZ_ASSERT(n == (ssize_t)(e - a));
				FUZZ_ASSERT(memcmp(part, whole + a, e - a) == 0);
			}
		}
		free(f);
		free(part);
		free(whole);
	}
	ab_blosc_layout_free(&l);
}

static void roundtrip(const ab_b2b_codec *c, const uint8_t *src, size_t len)
{
	if (c->kind == AB_B2B_BLOSC && c->level > 5)
		return; /* high blosc levels are slow and add nothing here */
	size_t bound = ab_b2b_encode_bound(c, len);
	if (bound > FUZZ_MAX_BYTES)
		return;
	uint8_t *enc = malloc(bound), *dec = malloc(len ? len : 1);
	if (enc && dec) {
		ssize_t e = ab_b2b_encode(c, src, len, enc, bound);
		FUZZ_ASSERT(e >= 0);
		int64_t hint = ab_b2b_decoded_size(c, enc, (size_t)e);
		FUZZ_ASSERT(hint == -1 || hint == (int64_t)len);
		ssize_t d = ab_b2b_decode(c, enc, (size_t)e, dec, len);
		FUZZ_ASSERT(d == (ssize_t)len);
		FUZZ_ASSERT(len == 0 || memcmp(dec, src, len) == 0);
	}
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	ab_b2b_codec c;
	make_codec(data[0], data[1], &c);
	const uint8_t *src = data + 2;
	size_t len = size - 2;

	int64_t hint = ab_b2b_decoded_size(&c, src, len);
	fuzz_debug("ab_b2b_decoded_size", hint < -1 ? (int)hint : 0);
	FUZZ_ASSERT(hint >= -1 || (hint <= AB_EINVAL && hint >= AB_ETYPE));
	if (hint >= 0) {
		if ((uint64_t)hint <= FUZZ_MAX_BYTES) {
			ssize_t n = decode_checked(&c, src, len, (size_t)hint);
			/* A frame that decodes must produce what it announced. */
			FUZZ_ASSERT(n < 0 || n == hint);
			if (hint > 0) {
				decode_checked(&c, src, len, (size_t)hint - 1);
				part_checked(&c, src, len, (size_t)hint, data[1]);
				subframe_checked(&c, src, len, (size_t)hint, data[1]);
			}
		}
	} else if (hint == -1) {
		/* No announced size: grow as a reader would, within bounds. */
		size_t cap = len < 1024 ? 4096 : len * 4;
		for (;;) {
			ssize_t n = decode_checked(&c, src, len, cap);
			if (n != AB_ETOOSMALL || cap >= FUZZ_MAX_BYTES / 2)
				break;
			cap *= 2;
		}
	}
	if (len <= 65536)
		roundtrip(&c, src, len);
	return 0;
}
