/*
 * test_codecs.c - Check suite for formats/codec*.c, crc32c.c and vlen_utf8.c.
 *
 * Three kinds of evidence:
 *  - round trips through our own encoder and decoder over a parameter matrix;
 *  - external truth: vectors written by numcodecs (gen_codec_vectors.py),
 *    decoded and compared byte for byte, and re-encoded where the same library
 *    with the same parameters must give the same bytes;
 *  - hostile input: hand-made corruptions with the expected status and message,
 *    and a bounded, seeded mutation run whose buffers sit against unmapped
 *    guard pages, so an out-of-bounds access in our code or in the libraries
 *    crashes the test instead of passing unnoticed.
 *
 * The vector directory comes from AB_CODEC_VECTORS. Without it the vector
 * tests fail (they do not skip), so a build that forgot to generate them
 * cannot look green.
 */
#include "blosc_layout.h"
#include "codec.h"
#include "codec_impl.h"
#include "last_error.h"

#include <blosc.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const all_cnames[] = { "blosclz", "lz4", "lz4hc", "zlib", "zstd", "snappy" };
#define N_CNAMES (sizeof all_cnames / sizeof all_cnames[0])

/* Whether the installed libblosc was built with this compressor. */
static int cname_available(const char *cname)
{
	char *lib = NULL, *ver = NULL;
	int code = blosc_get_complib_info(cname, &lib, &ver);
	free(lib);
	free(ver);
	return code >= 0;
}

/* xorshift64*: a tiny deterministic generator whose state lives in the
 * caller, so every test is reproducible on its own. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Data with some structure (so that the compressors actually compress) and
 * some noise (so that every byte position is exercised). */
static void fill_data(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i < n; i++) {
		if (i % 64 < 48)
			p[i] = (uint8_t)((i / 7) ^ (i % 5));
		else
			p[i] = (uint8_t)rng_next(&s);
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(p);
	return p;
}

static ab_b2b_codec make_codec(ab_b2b_kind kind)
{
	ab_b2b_codec c;
	memset(&c, 0, sizeof c);
	c.kind = kind;
	c.typesize = 1;
	c.acceleration = 1;
	return c;
}

static ab_b2b_codec make_blosc(const char *cname, int clevel, int shuffle, int typesize,
			       size_t blocksize)
{
	ab_b2b_codec c = make_codec(AB_B2B_BLOSC);
	snprintf(c.cname, sizeof c.cname, "%s", cname);
	c.level = clevel;
	c.shuffle = shuffle;
	c.typesize = typesize;
	c.blocksize = blocksize;
	return c;
}

/* Encodes src with c into a fresh buffer; asserts success. */
static uint8_t *encode_alloc(const ab_b2b_codec *c, const void *src, size_t n, size_t *outlen)
{
	size_t cap = ab_b2b_encode_bound(c, n);
	uint8_t *enc = xmalloc(cap);
	ssize_t r = ab_b2b_encode(c, src, n, enc, cap);
	ck_assert_msg(r >= 0, "encode of %zu bytes failed: %zd (%s)", n, r, ab_last_error());
	ck_assert_msg((size_t)r <= cap, "encode wrote %zd > bound %zu", r, cap);
	*outlen = (size_t)r;
	return enc;
}

/* Asserts a failure with the given status, a non-empty message and, when
 * `needle` is given, that the message contains it. A function (not a macro)
 * so the needle can be NULL; `line` names the caller in failure messages. */
static void expect_error_at(long long rc, int status, const char *needle, int line)
{
	ck_assert_msg(rc == status, "line %d: expected status %d, got %lld (%s)", line, status,
		      rc, ab_last_error());
	ck_assert_msg(ab_last_error()[0] != '\0', "line %d: no error message set", line);
	if (needle != NULL)
		ck_assert_msg(strstr(ab_last_error(), needle) != NULL, "line %d: message '%s' lacks '%s'",
			      line, ab_last_error(), needle);
}
#define expect_error(rc, status, needle) \
	expect_error_at((long long)(rc), (status), (needle), __LINE__)

/* Decodes enc and checks it against raw: the announced size (when the
 * format has one), the exact-capacity decode, a generous-capacity decode and
 * AB_ETOOSMALL one byte short. `what` names the case in failure messages. */
static void check_decode(const ab_b2b_codec *c, const uint8_t *enc, size_t enclen,
			 const uint8_t *raw, size_t rawlen, const char *what)
{
	int64_t ds = ab_b2b_decoded_size(c, enc, enclen);
	ck_assert_msg(ds == (int64_t)rawlen || ds == -1,
		      "%s: decoded_size %lld, expected %zu or -1 (%s)", what, (long long)ds, rawlen,
		      ab_last_error());
	if (c->kind == AB_B2B_BLOSC || c->kind == AB_B2B_LZ4 || c->kind == AB_B2B_CRC32C)
		ck_assert_msg(ds == (int64_t)rawlen, "%s: decoded_size %lld, expected %zu", what,
			      (long long)ds, rawlen);
	if (c->kind == AB_B2B_GZIP || c->kind == AB_B2B_ZLIB)
		ck_assert_msg(ds == -1, "%s: deflate decoded_size should be -1", what);

	uint8_t *dst = xmalloc(rawlen + 64);
	ssize_t r = ab_b2b_decode(c, enc, enclen, dst, rawlen);
	ck_assert_msg(r == (ssize_t)rawlen, "%s: exact decode gave %zd, expected %zu (%s)", what,
		      r, rawlen, ab_last_error());
	ck_assert_msg(rawlen == 0 || memcmp(dst, raw, rawlen) == 0, "%s: decoded bytes differ",
		      what);
	memset(dst, 0xAB, rawlen + 64);
	r = ab_b2b_decode(c, enc, enclen, dst, rawlen + 64);
	ck_assert_msg(r == (ssize_t)rawlen, "%s: roomy decode gave %zd, expected %zu (%s)", what,
		      r, rawlen, ab_last_error());
	ck_assert_msg(rawlen == 0 || memcmp(dst, raw, rawlen) == 0,
		      "%s: decoded bytes differ (roomy)", what);
	if (rawlen > 0) {
		r = ab_b2b_decode(c, enc, enclen, dst, rawlen - 1);
		ck_assert_msg(r == AB_ETOOSMALL, "%s: one byte short gave %zd, expected ETOOSMALL",
			      what, r);
		r = ab_b2b_decode(c, enc, enclen, NULL, 0);
		ck_assert_msg(r == AB_ETOOSMALL, "%s: no room gave %zd, expected ETOOSMALL", what,
			      r);
	}
	free(dst);
}

static void roundtrip(const ab_b2b_codec *c, const uint8_t *raw, size_t n, const char *what)
{
	size_t enclen;
	uint8_t *enc = encode_alloc(c, raw, n, &enclen);
	check_decode(c, enc, enclen, raw, n, what);
	free(enc);
}

/* A buffer that ends exactly where an inaccessible page begins: one byte
 * read or written past its end faults, even inside libraries that ASan does
 * not instrument. (Only overruns are trapped this way.) */
typedef struct guarded {
	uint8_t *base;
	size_t maplen;
	uint8_t *p;
} guarded;

static uint8_t *guard_alloc(guarded *g, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (n + page - 1) / page;
	if (data_pages == 0)
		data_pages = 1;
	g->maplen = (data_pages + 1) * page;
	g->base = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	ck_assert_msg(g->base != MAP_FAILED, "mmap: %s", strerror(errno));
	ck_assert_int_eq(mprotect(g->base + data_pages * page, page, PROT_NONE), 0);
	g->p = g->base + data_pages * page - n;
	return g->p;
}

static void guard_free(guarded *g)
{
	munmap(g->base, g->maplen);
}

/* ------------------------------------------------------------------------ */
/* crc32c                                                                   */
/* ------------------------------------------------------------------------ */

static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
	}
	return ~crc;
}

START_TEST(test_crc32c_known_vectors)
{
	uint8_t buf[32];

	ck_assert_uint_eq(ab_crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(ab_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(ab_crc32c(0, "", 0), 0u);
	ck_assert_uint_eq(ab_crc32c(0, NULL, 0), 0u);
	memset(buf, 0, sizeof buf);
	ck_assert_uint_eq(ab_crc32c(0, buf, 32), 0x8A9136AAu);
	ck_assert_uint_eq(ab_crc32c_sw(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof buf);
	ck_assert_uint_eq(ab_crc32c(0, buf, 32), 0x62A8AB43u);
	ck_assert_uint_eq(ab_crc32c_sw(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(ab_crc32c(0, buf, 32), 0x46DD794Eu);
	ck_assert_uint_eq(ab_crc32c_sw(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(ab_crc32c(0, buf, 32), 0x113FDB5Cu);
	ck_assert_uint_eq(ab_crc32c(0, "a", 1), 0xC1D04330u);
}
END_TEST

START_TEST(test_crc32c_incremental)
{
	uint8_t buf[300];
	uint64_t s = 7;
	fill_data(buf, sizeof buf, 99);
	uint32_t whole = ab_crc32c(0, buf, sizeof buf);

	/* every two-piece split */
	for (size_t cut = 0; cut <= sizeof buf; cut++) {
		uint32_t c = ab_crc32c(0, buf, cut);
		c = ab_crc32c(c, buf + cut, sizeof buf - cut);
		ck_assert_msg(c == whole, "split at %zu: 0x%08x != 0x%08x", cut, c, whole);
		uint32_t d = ab_crc32c_sw(ab_crc32c_sw(0, buf, cut), buf + cut, sizeof buf - cut);
		ck_assert_msg(d == whole, "sw split at %zu", cut);
	}
	/* random many-piece splits, mixing the two implementations */
	for (int round = 0; round < 200; round++) {
		uint32_t c = 0;
		size_t off = 0;
		while (off < sizeof buf) {
			size_t len = (size_t)(rng_next(&s) % 20);
			if (len > sizeof buf - off)
				len = sizeof buf - off;
			c = (rng_next(&s) & 1) ? ab_crc32c(c, buf + off, len)
					       : ab_crc32c_sw(c, buf + off, len);
			off += len;
		}
		ck_assert_uint_eq(c, whole);
	}
}
END_TEST

START_TEST(test_crc32c_against_bitwise)
{
	uint8_t buf[1100];
	fill_data(buf, sizeof buf, 1234);
	/* every length up to 300 at every alignment, then a few long ones, for
	 * both the table code (checks the tables) and the dispatching entry */
	for (size_t align = 0; align < 8; align++) {
		for (size_t len = 0; len <= 300; len++) {
			uint32_t want = crc32c_bitwise(0, buf + align, len);
			ck_assert_msg(ab_crc32c_sw(0, buf + align, len) == want,
				      "sw len %zu align %zu", len, align);
			ck_assert_msg(ab_crc32c(0, buf + align, len) == want,
				      "dispatch len %zu align %zu", len, align);
		}
	}
	ck_assert_uint_eq(ab_crc32c(0x12345678u, buf, sizeof buf),
			  crc32c_bitwise(0x12345678u, buf, sizeof buf));
	ck_assert_uint_eq(ab_crc32c_sw(0, buf, 1093), crc32c_bitwise(0, buf, 1093));
	if (!ab_crc32c_hw_available())
		fprintf(stderr, "note: no SSE4.2 here, ab_crc32c uses the table code\n");
}
END_TEST

START_TEST(test_crc32c_codec)
{
	ab_b2b_codec c = make_codec(AB_B2B_CRC32C);
	uint8_t raw[500], enc[504], out[500];
	fill_data(raw, sizeof raw, 5);

	roundtrip(&c, raw, sizeof raw, "crc32c 500");
	roundtrip(&c, raw, 0, "crc32c empty");
	roundtrip(&c, raw, 1, "crc32c 1");

	/* "123456789" encodes with the known CRC appended little endian */
	ck_assert_int_eq(ab_b2b_encode(&c, "123456789", 9, enc, sizeof enc), 13);
	ck_assert_int_eq(memcmp(enc, "123456789\x83\x92\x06\xE3", 13), 0);

	/* in-place decode */
	ck_assert_int_eq(ab_b2b_decode(&c, enc, 13, enc, 13), 9);
	ck_assert_int_eq(memcmp(enc, "123456789", 9), 0);

	/* mismatch: a flipped payload bit and a flipped checksum bit */
	ck_assert_int_eq(ab_b2b_encode(&c, raw, sizeof raw, enc, sizeof enc), 504);
	enc[100] ^= 0x10;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, sizeof enc, out, sizeof out), AB_ECORRUPT,
		     "crc32c mismatch");
	char want[64];
	snprintf(want, sizeof want, "0x%08x", (unsigned)ab_load_le32(enc + 500));
	ck_assert_msg(strstr(ab_last_error(), want) != NULL, "'%s' lacks stored %s",
		      ab_last_error(), want);
	snprintf(want, sizeof want, "0x%08x", (unsigned)ab_crc32c(0, enc, 500));
	ck_assert_msg(strstr(ab_last_error(), want) != NULL, "'%s' lacks computed %s",
		      ab_last_error(), want);
	enc[100] ^= 0x10;
	enc[503] ^= 0x80;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, sizeof enc, out, sizeof out), AB_ECORRUPT,
		     "crc32c mismatch");
	/* too short for a checksum */
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 3, out, sizeof out), AB_ECORRUPT, "crc32c");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, enc, 3), AB_ECORRUPT, "crc32c");
	ck_assert_int_eq(ab_b2b_decoded_size(&c, enc, 4), 0);
	/* encode into too small a buffer */
	ck_assert_int_eq(ab_b2b_encode(&c, raw, 10, enc, 13), AB_ETOOSMALL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* round trips                                                              */
/* ------------------------------------------------------------------------ */

static const size_t rt_sizes[] = { 0, 1, 7, 100, 127, 128, 1000, 4099, 65541, 300000 };
#define N_RT_SIZES (sizeof rt_sizes / sizeof rt_sizes[0])
#define RT_MAX 300000

/* Loop test over all_cnames: blosc with every shuffle, typesizes 1,2,4,8,
 * several sizes (below blosc's 128-byte minimum, non-multiples of the
 * typesize, several blocks) and levels 0 (stored), 1, 5 and 9. */
START_TEST(test_blosc_roundtrip)
{
	const char *cname = all_cnames[_i];
	static const int typesizes[] = { 1, 2, 4, 8 };
	static const int levels[] = { 0, 1, 5, 9 };
	char what[128];

	if (!cname_available(cname)) {
		fprintf(stderr, "note: libblosc %s has no %s, not tested\n",
			blosc_get_version_string(), cname);
		return;
	}
	uint8_t *raw = xmalloc(RT_MAX);
	fill_data(raw, RT_MAX, 42);
	for (int shuffle = 0; shuffle <= 2; shuffle++)
		for (size_t t = 0; t < 4; t++)
			for (size_t si = 0; si < N_RT_SIZES; si++) {
				/* the big size once per shuffle only: it is the slow one */
				if (rt_sizes[si] == RT_MAX && t != 3)
					continue;
				int lv = levels[(si + t) % 4];
				ab_b2b_codec c = make_blosc(cname, lv, shuffle, typesizes[t], 0);
				snprintf(what, sizeof what, "blosc %s clevel %d shuffle %d ts %d n %zu",
					 cname, lv, shuffle, typesizes[t], rt_sizes[si]);
				roundtrip(&c, raw, rt_sizes[si], what);
			}
	/* forced block sizes, including one larger than the data */
	static const size_t blocksizes[] = { 128, 1000, 4096, 1u << 20 };
	for (size_t b = 0; b < 4; b++) {
		ab_b2b_codec c = make_blosc(cname, 5, AB_BLOSC_SHUFFLE, 4, blocksizes[b]);
		snprintf(what, sizeof what, "blosc %s blocksize %zu", cname, blocksizes[b]);
		roundtrip(&c, raw, 65541, what);
	}
	/* numcodecs' automatic shuffle (-1) */
	ab_b2b_codec c = make_blosc(cname, 5, -1, 1, 0);
	roundtrip(&c, raw, 5000, "blosc auto shuffle");
	free(raw);
}
END_TEST

/* A blosc frame's flags and block size, as written. */
static void frame_of(const ab_b2b_codec *c, const uint8_t *raw, size_t n, int *unsplit, uint32_t *blocksize)
{
	size_t len;
	uint8_t *enc = encode_alloc(c, raw, n, &len);
	ck_assert_uint_ge(len, 16);
	*unsplit = (enc[2] & 0x10) != 0; /* BLOSC_DONT_SPLIT */
	*blocksize = (uint32_t)enc[8] | (uint32_t)enc[9] << 8 | (uint32_t)enc[10] << 16 | (uint32_t)enc[11] << 24;
	uint8_t *dec = xmalloc(n);
	ck_assert_int_eq(ab_b2b_decode(c, enc, len, dec, n), (ssize_t)n);
	ck_assert_int_eq(memcmp(dec, raw, n), 0);
	free(dec);
	free(enc);
}

typedef struct split_job {
	int unsplit;
	const uint8_t *raw;
	int bad;
} split_job;

static void *split_worker(void *arg)
{
	split_job *j = arg;
	for (int k = 0; k < 40; k++) {
		ab_b2b_codec c = make_blosc("lz4", 3, AB_BLOSC_SHUFFLE, 4, 16384);
		c.unsplit = j->unsplit;
		int u;
		uint32_t bs;
		frame_of(&c, j->raw, 300000, &u, &bs);
		j->bad += u != j->unsplit || bs != (j->unsplit ? 16384u : 65536u);
	}
	return NULL;
}

/* unsplit frames: one stream a block, of the size asked (libblosc would make
 * split blocks of 4-byte items 64 KiB); the library's default mode is back
 * afterwards, and encoders wanting either mode at once each get theirs. */
START_TEST(test_blosc_unsplit)
{
	uint8_t *raw = xmalloc(300000);
	fill_data(raw, 300000, 7);
	ab_b2b_codec c = make_blosc("lz4", 3, AB_BLOSC_SHUFFLE, 4, 16384);
	int u;
	uint32_t bs;
	frame_of(&c, raw, 300000, &u, &bs);
	ck_assert_int_eq(u, 0);
	ck_assert_uint_eq(bs, 65536);
	c.unsplit = 1;
	frame_of(&c, raw, 300000, &u, &bs);
	ck_assert_int_eq(u, 1);
	ck_assert_uint_eq(bs, 16384);
	/* libblosc's own entry point, after: its default mode again */
	uint8_t *enc = xmalloc(300000 + BLOSC_MAX_OVERHEAD);
	ck_assert_int_gt(blosc_compress_ctx(3, BLOSC_SHUFFLE, 4, 300000, raw, enc, 300000 + BLOSC_MAX_OVERHEAD, "lz4",
					    16384, 1), 0);
	ck_assert_int_eq(enc[2] & 0x10, 0);
	free(enc);
	split_job jobs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (split_job){ i % 2, raw, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, split_worker, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_msg(jobs[i].bad == 0, "encoder %d (unsplit %d): %d frames of the other mode", i,
			      jobs[i].unsplit, jobs[i].bad);
	}
	free(raw);
}
END_TEST

START_TEST(test_zstd_roundtrip)
{
	static const int levels[] = { -5, 1, 3, 9, 19 };
	char what[96];
	uint8_t *raw = xmalloc(RT_MAX);
	fill_data(raw, RT_MAX, 43);
	for (size_t l = 0; l < 5; l++)
		for (int ck = 0; ck <= 1; ck++)
			for (size_t si = 0; si < N_RT_SIZES; si++) {
				if (levels[l] == 19 && rt_sizes[si] > 4099)
					continue; /* slow, and nothing new */
				ab_b2b_codec c = make_codec(AB_B2B_ZSTD);
				c.level = levels[l];
				c.checksum = ck;
				snprintf(what, sizeof what, "zstd level %d checksum %d n %zu",
					 levels[l], ck, rt_sizes[si]);
				roundtrip(&c, raw, rt_sizes[si], what);
			}
	free(raw);
}
END_TEST

/* Frames without a content size and several frames back to back, made with
 * libzstd's streaming API the way a streaming writer would. */
START_TEST(test_zstd_stream_and_multiframe)
{
	size_t n = 200000;
	uint8_t *raw = xmalloc(n);
	fill_data(raw, n, 44);
	size_t cap = ZSTD_compressBound(n) + 64;
	uint8_t *enc = xmalloc(2 * cap);

	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_inBuffer in = { raw, n, 0 };
	ZSTD_outBuffer out = { enc, cap, 0 };
	/* A first call with e_continue: the size is not known up front, so the
	 * frame header will not record it. */
	size_t r = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
	ck_assert(!ZSTD_isError(r));
	do {
		r = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
		ck_assert(!ZSTD_isError(r));
	} while (r != 0);
	size_t enclen = out.pos;
	ck_assert_uint_eq(ZSTD_getFrameContentSize(enc, enclen), ZSTD_CONTENTSIZE_UNKNOWN);

	ab_b2b_codec c = make_codec(AB_B2B_ZSTD);
	ck_assert_int_eq(ab_b2b_decoded_size(&c, enc, enclen), -1);
	check_decode(&c, enc, enclen, raw, n, "zstd frame without size");

	/* append a second frame (with size) and a skippable frame */
	size_t second = ZSTD_compress(enc + enclen, cap, raw, 1000, 3);
	ck_assert(!ZSTD_isError(second));
	enclen += second;
	uint8_t *raw2 = xmalloc(n + 1000);
	memcpy(raw2, raw, n);
	memcpy(raw2 + n, raw, 1000);
	check_decode(&c, enc, enclen, raw2, n + 1000, "zstd unknown + known frames");
	static const uint8_t skippable[12] = { 0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
	memcpy(enc + enclen, skippable, sizeof skippable);
	check_decode(&c, enc, enclen + sizeof skippable, raw2, n + 1000,
		     "zstd with skippable frame");

	/* two frames that both know their size: the sizes add up */
	size_t a = ZSTD_compress(enc, cap, raw, 5000, 1);
	size_t b = ZSTD_compress(enc + a, cap, raw + 5000, 7000, 1);
	ck_assert(!ZSTD_isError(a) && !ZSTD_isError(b));
	ck_assert_int_eq(ab_b2b_decoded_size(&c, enc, a + b), 12000);
	check_decode(&c, enc, a + b, raw, 12000, "zstd two sized frames");

	ZSTD_freeCCtx(cctx);
	free(raw);
	free(raw2);
	free(enc);
}
END_TEST

START_TEST(test_lz4_roundtrip)
{
	static const int accels[] = { 0, 1, 2, 17, 1000 };
	char what[96];
	uint8_t *raw = xmalloc(RT_MAX);
	fill_data(raw, RT_MAX, 45);
	for (size_t a = 0; a < 5; a++)
		for (size_t si = 0; si < N_RT_SIZES; si++) {
			ab_b2b_codec c = make_codec(AB_B2B_LZ4);
			c.acceleration = accels[a];
			snprintf(what, sizeof what, "lz4 accel %d n %zu", accels[a], rt_sizes[si]);
			roundtrip(&c, raw, rt_sizes[si], what);
		}
	free(raw);
}
END_TEST

/* _i: 0 = gzip, 1 = zlib */
START_TEST(test_deflate_roundtrip)
{
	ab_b2b_kind kind = _i == 0 ? AB_B2B_GZIP : AB_B2B_ZLIB;
	char what[96];
	uint8_t *raw = xmalloc(RT_MAX);
	fill_data(raw, RT_MAX, 46);
	for (int level = -1; level <= 9; level++)
		for (size_t si = 0; si < N_RT_SIZES; si++) {
			if (rt_sizes[si] == RT_MAX && level % 3 != 0)
				continue;
			ab_b2b_codec c = make_codec(kind);
			c.level = level;
			snprintf(what, sizeof what, "%s level %d n %zu", _i ? "zlib" : "gzip", level,
				 rt_sizes[si]);
			roundtrip(&c, raw, rt_sizes[si], what);
		}
	/* the encoder must agree with zlib's compress2() for zlib streams */
	if (kind == AB_B2B_ZLIB) {
		ab_b2b_codec c = make_codec(kind);
		c.level = 6;
		size_t enclen;
		uint8_t *enc = encode_alloc(&c, raw, 100000, &enclen);
		uLongf reflen = compressBound(100000);
		uint8_t *ref = xmalloc(reflen);
		ck_assert_int_eq(compress2(ref, &reflen, raw, 100000, 6), Z_OK);
		ck_assert_uint_eq(enclen, reflen);
		ck_assert_int_eq(memcmp(enc, ref, enclen), 0);
		free(enc);
		free(ref);
	}
	free(raw);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* numcodecs vectors                                                        */
/* ------------------------------------------------------------------------ */

#define MAX_VECTORS 1024
#define MAX_PARAMS 8

typedef struct vector {
	char name[96];
	char kind[16];
	int nparams;
	char key[MAX_PARAMS][24];
	char val[MAX_PARAMS][24];
} vector;

static const char *vec_param(const vector *v, const char *key)
{
	for (int i = 0; i < v->nparams; i++)
		if (strcmp(v->key[i], key) == 0)
			return v->val[i];
	return NULL;
}

static int vec_int(const vector *v, const char *key, int dflt)
{
	const char *s = vec_param(v, key);
	return s ? atoi(s) : dflt;
}

static const char *vectors_dir(void)
{
	const char *dir = getenv("AB_CODEC_VECTORS");
	if (dir == NULL || dir[0] == '\0')
		ck_abort_msg("AB_CODEC_VECTORS is not set: generate the vectors with "
			     "`/usr/bin/python3 tests/unit/gen_codec_vectors.py DIR` and run "
			     "with AB_CODEC_VECTORS=DIR");
	return dir;
}

static uint8_t *read_whole(const char *dir, const char *name, const char *ext, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s%s", dir, name, ext);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	long sz = ftell(f);
	ck_assert_msg(sz >= 0, "ftell %s", path);
	rewind(f);
	uint8_t *buf = xmalloc((size_t)sz);
	ck_assert_msg(fread(buf, 1, (size_t)sz, f) == (size_t)sz, "short read on %s", path);
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

/* Reads index.txt; returns the number of vectors (at least one, or fails). */
static int load_index(const char *dir, vector *vs)
{
	char path[4096], line[512];
	snprintf(path, sizeof path, "%s/index.txt", dir);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s: %s (AB_CODEC_VECTORS=%s)", path, strerror(errno),
		      dir);
	int n = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		char *save = NULL;
		char *tok = strtok_r(line, " \t\r\n", &save);
		if (tok == NULL)
			continue;
		ck_assert_msg(n < MAX_VECTORS, "too many vectors");
		vector *v = &vs[n];
		memset(v, 0, sizeof *v);
		snprintf(v->name, sizeof v->name, "%s", tok);
		tok = strtok_r(NULL, " \t\r\n", &save);
		ck_assert_msg(tok != NULL, "index line for %s has no kind", v->name);
		snprintf(v->kind, sizeof v->kind, "%s", tok);
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && v->nparams < MAX_PARAMS) {
			char *eq = strchr(tok, '=');
			ck_assert_msg(eq != NULL, "bad parameter '%s' for %s", tok, v->name);
			*eq = '\0';
			snprintf(v->key[v->nparams], sizeof v->key[0], "%s", tok);
			snprintf(v->val[v->nparams], sizeof v->val[0], "%s", eq + 1);
			v->nparams++;
		}
		n++;
	}
	fclose(f);
	ck_assert_msg(n > 0, "%s lists no vectors", path);
	return n;
}

/* The codec a vector was written with; 0 if kind is vlen-utf8. */
static int vector_codec(const vector *v, ab_b2b_codec *c)
{
	if (strcmp(v->kind, "blosc") == 0) {
		const char *cname = vec_param(v, "cname");
		ck_assert_msg(cname != NULL, "%s: no cname", v->name);
		*c = make_blosc(cname, vec_int(v, "clevel", 5), vec_int(v, "shuffle", 1),
				vec_int(v, "typesize", 1), (size_t)vec_int(v, "blocksize", 0));
	} else if (strcmp(v->kind, "zstd") == 0) {
		*c = make_codec(AB_B2B_ZSTD);
		c->level = vec_int(v, "level", 3);
	} else if (strcmp(v->kind, "lz4") == 0) {
		*c = make_codec(AB_B2B_LZ4);
		c->acceleration = vec_int(v, "acceleration", 1);
	} else if (strcmp(v->kind, "gzip") == 0) {
		*c = make_codec(AB_B2B_GZIP);
		c->level = vec_int(v, "level", 5);
	} else if (strcmp(v->kind, "zlib") == 0) {
		*c = make_codec(AB_B2B_ZLIB);
		c->level = vec_int(v, "level", 5);
	} else if (strcmp(v->kind, "crc32c") == 0) {
		*c = make_codec(AB_B2B_CRC32C);
	} else if (strcmp(v->kind, "bz2") == 0) {
		*c = make_codec(AB_B2B_BZ2);
		c->level = vec_int(v, "level", 9);
	} else if (strcmp(v->kind, "vlen-utf8") == 0) {
		return 0;
	} else {
		ck_abort_msg("%s: unknown kind '%s'", v->name, v->kind);
	}
	return 1;
}

/* The vlen-utf8 .raw file: every string followed by one NUL. */
static void check_vlen_vector(const vector *v, const uint8_t *enc, size_t enclen,
			      const uint8_t *raw, size_t rawlen)
{
	size_t items = (size_t)vec_int(v, "items", -1);
	char **strs = NULL;
	int rc = ab_vlen_utf8_decode(enc, enclen, items, &strs);
	ck_assert_msg(rc == 0, "%s: decode failed %d (%s)", v->name, rc, ab_last_error());
	size_t off = 0;
	for (size_t i = 0; i < items; i++) {
		size_t len = strlen(strs[i]);
		ck_assert_msg(off + len < rawlen && raw[off + len] == 0 &&
				      memcmp(raw + off, strs[i], len) == 0,
			      "%s: item %zu differs", v->name, i);
		off += len + 1;
	}
	ck_assert_msg(off == rawlen, "%s: decoded %zu bytes of %zu", v->name, off, rawlen);
	/* the wrong item count is refused */
	char **bad = NULL;
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, enclen, items + 1, &bad), AB_ECORRUPT,
		     "vlen-utf8");
	ck_assert_ptr_null(bad);
	/* our encoder writes the same bytes as numcodecs */
	uint8_t *mine = NULL;
	size_t minelen = 0;
	ck_assert_int_eq(ab_vlen_utf8_encode((const char *const *)strs, items, &mine, &minelen),
			 0);
	ck_assert_msg(minelen == enclen && memcmp(mine, enc, enclen) == 0,
		      "%s: re-encoding differs", v->name);
	free(mine);
	for (size_t i = 0; i < items; i++)
		free(strs[i]);
	free(strs);
}

START_TEST(test_vectors_decode)
{
	const char *dir = vectors_dir();
	vector *vs = xmalloc(sizeof(vector) * MAX_VECTORS);
	int n = load_index(dir, vs);
	int per_kind[8] = { 0 };
	static const char *const kinds[8] = { "blosc", "zstd", "lz4", "gzip", "zlib", "crc32c",
					      "vlen-utf8", "bz2" };
	for (int i = 0; i < n; i++) {
		const vector *v = &vs[i];
		size_t rawlen, enclen;
		uint8_t *raw = read_whole(dir, v->name, ".raw", &rawlen);
		uint8_t *enc = read_whole(dir, v->name, ".enc", &enclen);
		ab_b2b_codec c;
		for (int k = 0; k < 8; k++)
			if (strcmp(v->kind, kinds[k]) == 0)
				per_kind[k]++;
		if (vector_codec(v, &c))
			check_decode(&c, enc, enclen, raw, rawlen, v->name);
		else
			check_vlen_vector(v, enc, enclen, raw, rawlen);
		free(raw);
		free(enc);
	}
	for (int k = 0; k < 8; k++)
		ck_assert_msg(per_kind[k] > 0, "no %s vectors in %s", kinds[k], dir);
	/* every compressor this libblosc has must be covered by the vectors */
	for (size_t ci = 0; ci < N_CNAMES; ci++) {
		if (!cname_available(all_cnames[ci]))
			continue;
		int found = 0;
		for (int i = 0; i < n && !found; i++) {
			const char *cn = vec_param(&vs[i], "cname");
			found = cn != NULL && strcmp(cn, all_cnames[ci]) == 0;
		}
		ck_assert_msg(found, "no blosc vector uses %s", all_cnames[ci]);
	}
	free(vs);
}
END_TEST

/* Decoding part of a frame: every blosc vector written by numcodecs (one and
 * many blocks, every compressor and shuffle, stored frames), over ranges at
 * the ends, across block boundaries and at random, must give exactly the
 * slice of the .raw bytes, and never touch a byte of dst past the range. */
static void check_part(const ab_b2b_codec *c, const uint8_t *enc, size_t enclen, const uint8_t *raw,
		       size_t rawlen, size_t ts, const char *what, int *multi_block)
{
	size_t nitems = rawlen / ts, blocksize = enclen >= 16 ? (size_t)enc[8] | (size_t)enc[9] << 8 |
									 (size_t)enc[10] << 16 | (size_t)enc[11] << 24
								   : 0;
	if (blocksize && blocksize < rawlen && !(enc[2] & 0x02))
		(*multi_block)++;
	uint8_t *dst = xmalloc(rawlen + 16);
	uint64_t seed = 12345;
	for (int t = 0; t < 60; t++) {
		size_t a, b;
		if (t == 0) { a = 0; b = nitems; }
		else if (t == 1) { a = 0; b = nitems ? 1 : 0; }
		else if (t == 2) { a = nitems ? nitems - 1 : 0; b = nitems; }
		else if (t < 8 && blocksize && nitems) {
			/* around the t-th block boundary */
			size_t edge = (size_t)(t - 2) * blocksize / ts;
			a = edge > 3 ? edge - 3 : 0;
			b = edge + 2 < nitems ? edge + 2 : nitems;
			if (a > b) a = b;
		} else {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			a = nitems ? (size_t)(seed >> 33) % nitems : 0;
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			b = a + (nitems - a ? (size_t)(seed >> 33) % (nitems - a + 1) : 0);
		}
		memset(dst, 0xCD, rawlen + 16);
		size_t decoded = 0;
		int rc = ab_b2b_decode_part(c, enc, enclen, a * ts, (b - a) * ts, dst, &decoded);
		ck_assert_msg(rc == 0, "%s: part %zu..%zu gave %d (%s)", what, a, b, rc, ab_last_error());
		ck_assert_msg(memcmp(dst, raw + a * ts, (b - a) * ts) == 0, "%s: part %zu..%zu differs", what, a, b);
		size_t past = (b - a) * ts;
		while (past < rawlen + 16 && dst[past] == 0xCD)
			past++;
		ck_assert_msg(past == rawlen + 16, "%s: part %zu..%zu wrote past its end (byte %zu)", what, a, b,
			      past);
		ck_assert_msg(decoded >= (b - a) * ts && decoded <= rawlen, "%s: %zu bytes decompressed for %zu",
			      what, decoded, (b - a) * ts);
	}
	/* a range past the decoded size is refused, not read */
	size_t decoded;
	ab_error_clear();
	expect_error(ab_b2b_decode_part(c, enc, enclen, rawlen, ts, dst, &decoded), AB_ECORRUPT, "blosc");
	/* a range off the frame's items: decoded whole by the caller instead */
	if (ts > 1 && rawlen >= 2 * ts && enclen >= 16 && !(enc[2] & 0x02))
		ck_assert_int_eq(ab_b2b_decode_part(c, enc, enclen, 1, ts, dst, &decoded), AB_NO_PART);
	/* a truncated frame is refused */
	if (enclen > 16) {
		ab_error_clear();
		ck_assert_int_lt(ab_b2b_decode_part(c, enc, enclen - 1, 0, ts, dst, &decoded), 0);
	}
	free(dst);
}

/* The blocks chosen for decoded bytes [lo, hi): they hold the range, are
 * not every block, are never a lone shorter last block, and their smaller
 * frame decodes to the items ab_blosc_span_items names. */
static int check_spans(const ab_blosc_layout *l, const uint8_t *enc, size_t enclen, const uint8_t *raw,
		       size_t rawlen, const char *what)
{
	size_t isz = l->typesize, bs = l->blocksize;
	ab_blosc_span sp;
	int n = 0;
	/* refused: another frame's length, items off the shuffle's typesize */
	ck_assert_int_eq(ab_blosc_layout_span(l, enclen + 1, isz, 0, isz, &sp), 0);
	if (isz > 1)
		ck_assert_int_eq(ab_blosc_layout_span(l, enclen, isz + 1, 0, isz, &sp), 0);
	ck_assert_int_eq(ab_blosc_layout_span(l, enclen, isz, isz, isz, &sp), 0);
	ck_assert_int_eq(ab_blosc_layout_span(l, enclen, isz, 0, (uint64_t)rawlen + 1, &sp), 0);
	uint64_t seed = 7;
	for (int t = 0; t < 60; t++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t lo = (seed >> 33) % rawlen;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t hi = lo + 1 + (seed >> 33) % (t % 3 == 0 ? rawlen - lo : (bs < rawlen - lo ? bs : rawlen - lo));
		if (!ab_blosc_layout_span(l, enclen, isz, lo, hi, &sp)) {
			/* only when the range needs every block */
			uint64_t b0 = lo / bs, b1 = (hi - 1) / bs;
			if (b0 == b1 && b1 + 1 == l->nblocks && l->nbytes % bs && b0 > 0)
				b0--;
			ck_assert_msg(bs % isz || (b0 == 0 && b1 + 1 == l->nblocks),
				      "%s: bytes %llu..%llu refused, blocks %llu..%llu of %u would do", what,
				      (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)b0,
				      (unsigned long long)b1, l->nblocks);
			continue;
		}
		uint64_t end = (uint64_t)(sp.b1 + 1) * bs < rawlen ? (uint64_t)(sp.b1 + 1) * bs : rawlen;
		ck_assert_msg(sp.b0 <= sp.b1 && sp.b1 < l->nblocks && !(sp.b0 == 0 && sp.b1 + 1 == l->nblocks),
			      "%s: blocks %u..%u of %u", what, sp.b0, sp.b1, l->nblocks);
		ck_assert_msg((uint64_t)sp.b0 * bs <= lo && end >= hi, "%s: blocks %u..%u miss bytes %llu..%llu",
			      what, sp.b0, sp.b1, (unsigned long long)lo, (unsigned long long)hi);
		ck_assert(!(sp.b0 == sp.b1 && sp.b1 + 1 == l->nblocks && rawlen % bs));
		ck_assert_uint_eq(sp.offset, l->start[sp.b0]);
		ck_assert_uint_eq(sp.length, l->start[sp.b1 + 1] - l->start[sp.b0]);
		ck_assert_uint_eq(sp.hdr, AB_BLOSC_SUBFRAME_HDR(sp.b0, sp.b1));
		uint64_t item0, nitems;
		ab_blosc_span_items(l, sp.b0, sp.b1, isz, &item0, &nitems);
		ck_assert_uint_eq(item0 * isz, (uint64_t)sp.b0 * bs);
		ck_assert_uint_eq((item0 + nitems) * isz, end);
		uint8_t *f = xmalloc(sp.hdr + sp.length), *out = xmalloc(nitems * isz + 1);
		memcpy(f + sp.hdr, enc + sp.offset, sp.length);
		size_t flen = ab_blosc_subframe_header(l, sp.b0, sp.b1, f);
		ab_b2b_codec c = make_codec(AB_B2B_BLOSC);
		ssize_t r = ab_b2b_decode(&c, f, flen, out, nitems * isz);
		ck_assert_msg(r == (ssize_t)(nitems * isz) && memcmp(out, raw + item0 * isz, nitems * isz) == 0,
			      "%s: blocks %u..%u for bytes %llu..%llu decode wrong (%zd)", what, sp.b0, sp.b1,
			      (unsigned long long)lo, (unsigned long long)hi, r);
		free(f);
		free(out);
		n++;
	}
	return n;
}

/* A frame of some of a frame's blocks (what the loader builds after reading
 * only those blocks): it decodes to exactly their part of the .raw bytes. */
static int check_subframes(const uint8_t *enc, size_t enclen, const uint8_t *raw, size_t rawlen,
			   const char *what)
{
	ab_blosc_layout l;
	int rc = ab_blosc_layout_read(enc, enclen, &l);
	if (rc == AB_NO_PART)
		return 0;
	ck_assert_msg(rc == 0, "%s: layout %d (%s)", what, rc, ab_last_error());
	ck_assert_uint_eq(l.nbytes, rawlen);
	/* the same layout from the header and block table alone (what the
	 * loader reads ahead, engine/probe.c); one byte fewer is too short; a
	 * frame length the header does not give is refused */
	{
		size_t table = AB_BLOSC_HDR + 4 * (size_t)l.nblocks;
		ab_blosc_layout h;
		ck_assert_int_eq(ab_blosc_layout_read_head(enc, table, enclen, &h), 0);
		ck_assert(memcmp(h.head, l.head, sizeof h.head) == 0);
		ck_assert_uint_eq(h.nblocks, l.nblocks);
		ck_assert_uint_eq(h.blocksize, l.blocksize);
		ck_assert(memcmp(h.start, l.start, sizeof *h.start * (l.nblocks + 1)) == 0);
		ab_blosc_layout_free(&h);
		ck_assert_int_eq(ab_blosc_layout_read_head(enc, table - 1, enclen, &h), AB_LAYOUT_SHORT);
		ck_assert_int_lt(ab_blosc_layout_read_head(enc, table, enclen + 1, &h), 0);
		ck_assert_int_lt(ab_blosc_layout_read_head(enc, table, enclen - 1, &h), 0);
	}
	/* every pair of blocks of a small frame; of a large one, the pairs of
	 * its first, middle and last blocks and some at random */
	uint32_t nb = l.nblocks, pick[6] = { 0, 1, nb / 2, nb > 2 ? nb - 2 : 0, nb - 1, 0 };
	uint64_t seed = 99;
	int n = 0, pairs = nb <= 12 ? (int)(nb * nb) : 25 + 40;
	for (int t = 0; t < pairs; t++) {
		uint32_t b0, b1;
		if (nb <= 12) {
			b0 = (uint32_t)t / nb;
			b1 = (uint32_t)t % nb;
		} else if (t < 25) {
			b0 = pick[t / 5];
			b1 = pick[t % 5];
		} else {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			b0 = (uint32_t)(seed >> 33) % nb;
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			b1 = (uint32_t)(seed >> 33) % nb;
		}
		{
			if (b0 > b1 || (b0 == b1 && b1 + 1 == l.nblocks && l.nbytes % l.blocksize))
				continue; /* a lone shorter last block is never asked for */
			size_t h = AB_BLOSC_SUBFRAME_HDR(b0, b1), data = l.start[b1 + 1] - l.start[b0];
			uint8_t *f = xmalloc(h + data);
			memcpy(f + h, enc + l.start[b0], data);
			size_t flen = ab_blosc_subframe_header(&l, b0, b1, f);
			ck_assert_uint_eq(flen, h + data);
			size_t a = (size_t)b0 * l.blocksize, e = (size_t)(b1 + 1) * l.blocksize;
			if (e > rawlen)
				e = rawlen;
			uint8_t *out = xmalloc(e - a + 1);
			ab_b2b_codec c = make_codec(AB_B2B_BLOSC);
			ssize_t r = ab_b2b_decode(&c, f, flen, out, e - a);
			ck_assert_msg(r == (ssize_t)(e - a), "%s: blocks %u..%u decoded to %zd, expected %zu (%s)",
				      what, b0, b1, r, e - a, ab_last_error());
			ck_assert_msg(memcmp(out, raw + a, e - a) == 0, "%s: blocks %u..%u differ", what, b0, b1);
			free(out);
			free(f);
			n++;
		}
	}
	n += check_spans(&l, enc, enclen, raw, rawlen, what);
	ab_blosc_layout_free(&l);
	return n;
}

START_TEST(test_vectors_decode_part)
{
	const char *dir = vectors_dir();
	vector *vs = xmalloc(sizeof(vector) * MAX_VECTORS);
	int n = load_index(dir, vs), tested = 0, multi = 0, subframes = 0;
	for (int i = 0; i < n; i++) {
		const vector *v = &vs[i];
		ab_b2b_codec c;
		size_t rawlen, enclen;
		if (!vector_codec(v, &c))
			continue;
		uint8_t *raw = read_whole(dir, v->name, ".raw", &rawlen);
		uint8_t *enc = read_whole(dir, v->name, ".enc", &enclen);
		size_t dec = 0;
		if (c.kind == AB_B2B_BLOSC) {
			/* items of the size the frame was shuffled with */
			size_t ts = enclen >= 16 && enc[3] ? enc[3] : 1;
			if (rawlen % ts == 0) {
				check_part(&c, enc, enclen, raw, rawlen, ts, v->name, &multi);
				tested++;
			}
			subframes += check_subframes(enc, enclen, raw, rawlen, v->name);
		} else if (rawlen) {
			uint8_t one;
			ck_assert_int_eq(ab_b2b_decode_part(&c, enc, enclen, 0, 1, &one, &dec), AB_NO_PART);
		}
		free(raw);
		free(enc);
	}
	ck_assert_msg(tested >= 20, "only %d blosc vectors decoded in part", tested);
	ck_assert_msg(multi >= 3, "only %d vectors have several blocks", multi);
	ck_assert_msg(subframes >= 100, "only %d frames of some blocks decoded", subframes);
	free(vs);
}
END_TEST

/* Vectors marked reencode=1: our encoder, same library and parameters, must
 * reproduce numcodecs' bytes exactly. */
START_TEST(test_vectors_reencode)
{
	const char *dir = vectors_dir();
	vector *vs = xmalloc(sizeof(vector) * MAX_VECTORS);
	int n = load_index(dir, vs);
	int checked = 0;
	for (int i = 0; i < n; i++) {
		const vector *v = &vs[i];
		ab_b2b_codec c;
		if (vec_int(v, "reencode", 0) != 1 || !vector_codec(v, &c))
			continue;
		size_t rawlen, enclen, mylen;
		uint8_t *raw = read_whole(dir, v->name, ".raw", &rawlen);
		uint8_t *enc = read_whole(dir, v->name, ".enc", &enclen);
		uint8_t *mine = encode_alloc(&c, raw, rawlen, &mylen);
		size_t diff = 0;
		while (diff < mylen && diff < enclen && mine[diff] == enc[diff])
			diff++;
		ck_assert_msg(mylen == enclen && diff == enclen,
			      "%s: our encoding (%zu bytes) differs from numcodecs' (%zu) at byte %zu",
			      v->name, mylen, enclen, diff);
		checked++;
		free(raw);
		free(enc);
		free(mine);
	}
	ck_assert_msg(checked > 50, "only %d vectors re-encoded", checked);
	free(vs);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* bad input                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_blosc_bad_input)
{
	uint8_t raw[20000], out[20000];
	/* slowly growing 32-bit integers: byte shuffle makes them compress even
	 * in small blocks */
	for (size_t i = 0; i < sizeof raw / 4; i++)
		ab_store_le32(raw + 4 * i, (uint32_t)(i / 3));
	/* A forced 256-byte block size gives many blocks, so the block-offset
	 * table has entries to corrupt. (libblosc 1.21 honours small forced
	 * sizes but rounds others up, hence reading it back from the header.) */
	ab_b2b_codec c = make_blosc("lz4", 5, AB_BLOSC_SHUFFLE, 4, 256);
	size_t n;
	uint8_t *enc = encode_alloc(&c, raw, sizeof raw, &n);
	uint8_t *bad = xmalloc(n + 16);
	ck_assert_msg((enc[2] & BLOSC_MEMCPYED) == 0, "test data should compress");
	uint32_t bsize = ab_load_le32(enc + 8);
	size_t nblocks = (sizeof raw + bsize - 1) / bsize;
	ck_assert_msg(nblocks > 4, "expected several blocks, got %zu", nblocks);

	/* truncated: one byte short, half, and shorter than the header */
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, n - 1, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, n / 2, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 15, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, enc, 15), AB_ECORRUPT, "blosc");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 0, out, sizeof out), AB_ECORRUPT, "blosc");

	/* header lying about cbytes: larger (truncation) and smaller */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 12, (uint32_t)n + 1);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_store_le32(bad + 12, (uint32_t)n - 1);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "blosc");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, bad, n), AB_ECORRUPT, "blosc");
	/* trailing bytes after the frame */
	memcpy(bad, enc, n);
	bad[n] = 0;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n + 1, out, sizeof out), AB_ECORRUPT, "blosc");

	/* destination too small: AB_ETOOSMALL */
	ck_assert_int_eq(ab_b2b_decode(&c, enc, n, out, sizeof raw - 1), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_decode(&c, enc, n, NULL, 0), AB_ETOOSMALL);

	/* nbytes grown: the block layout no longer matches */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 4, (uint32_t)sizeof raw + 5000);
	ab_error_clear();
	ssize_t r = ab_b2b_decode(&c, bad, n, out, sizeof out);
	ck_assert_msg(r == AB_ECORRUPT && ab_last_error()[0], "grown nbytes gave %zd", r);
	/* nbytes shrunk below the block size */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 4, 100);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "block size");
	/* block size 0 */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 8, 0);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "block size");
	/* a block offset pointing past the frame */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 16 + 4, (uint32_t)n + 100);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "offset");
	/* a block offset pointing into the offset table */
	memcpy(bad, enc, n);
	ab_store_le32(bad + 16, 4);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "offset");
	/* garbage inside the compressed blocks */
	memcpy(bad, enc, n);
	size_t data_start = 16 + 4 * nblocks;
	for (size_t i = data_start; i < n; i++)
		bad[i] = (uint8_t)(i * 131);
	ab_error_clear();
	r = ab_b2b_decode(&c, bad, n, out, sizeof out);
	ck_assert_msg(r < 0 && r != AB_ETOOSMALL && ab_last_error()[0],
		      "garbage blocks gave %zd", r);
	/* versions: 0, and one from the future */
	memcpy(bad, enc, n);
	bad[0] = 0;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "version");
	bad[0] = BLOSC_VERSION_FORMAT + 1;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_EUNSUPPORTED, "version");
	/* both shuffle bits: blosc2's extended header */
	memcpy(bad, enc, n);
	bad[2] |= BLOSC_DOSHUFFLE | BLOSC_DOBITSHUFFLE;
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_EUNSUPPORTED, "blosc2");
	/* unknown compressor format */
	memcpy(bad, enc, n);
	bad[2] = (uint8_t)((bad[2] & 0x1f) | (7 << 5));
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "compressor");

	/* raw (memcpy'ed) frame whose cbytes does not match nbytes + 16 */
	ab_b2b_codec stored = make_blosc("lz4", 0, AB_BLOSC_NOSHUFFLE, 1, 0);
	size_t sn;
	uint8_t *senc = encode_alloc(&stored, raw, 1000, &sn);
	ck_assert_msg(senc[2] & BLOSC_MEMCPYED, "clevel 0 should store raw");
	ck_assert_uint_eq(sn, 1016);
	check_decode(&stored, senc, sn, raw, 1000, "blosc stored");
	ab_store_le32(senc + 4, 999);
	ab_error_clear();
	expect_error(ab_b2b_decode(&stored, senc, sn, out, sizeof out), AB_ECORRUPT, "raw frame");

	/* encoder errors */
	ab_b2b_codec e = make_blosc("nosuch", 5, 1, 4, 0);
	ab_error_clear();
	expect_error(ab_b2b_encode(&e, raw, 100, bad, n), AB_EUNSUPPORTED, "nosuch");
	e = make_blosc("lz4", 10, 1, 4, 0);
	ab_error_clear();
	expect_error(ab_b2b_encode(&e, raw, 100, bad, n), AB_EINVAL, "clevel");
	e = make_blosc("lz4", 5, 3, 4, 0);
	ab_error_clear();
	expect_error(ab_b2b_encode(&e, raw, 100, bad, n), AB_EINVAL, "shuffle");
	e = make_blosc("lz4", 5, 1, 0, 0);
	ab_error_clear();
	expect_error(ab_b2b_encode(&e, raw, 100, bad, n), AB_EINVAL, "typesize");
	e = make_blosc("lz4", 5, 1, 4, 0);
	ck_assert_int_eq(ab_b2b_encode(&e, raw, sizeof raw, bad, 20), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_encode(&e, raw, 0, bad, 15), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_encode(&e, NULL, 0, NULL, 0), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_encode(&e, NULL, 0, bad, 16), 16);

	free(senc);
	free(bad);
	free(enc);
}
END_TEST

START_TEST(test_zstd_bad_input)
{
	uint8_t raw[20000], out[20000];
	fill_data(raw, sizeof raw, 48);
	ab_b2b_codec c = make_codec(AB_B2B_ZSTD);
	c.level = 3;
	c.checksum = 1;
	size_t n;
	uint8_t *enc = encode_alloc(&c, raw, sizeof raw, &n);
	uint8_t *bad = xmalloc(n + 16);

	/* garbage */
	for (size_t i = 0; i < 64; i++)
		bad[i] = (uint8_t)(i * 37 + 11);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, 64, out, sizeof out), AB_ECORRUPT, "zstd");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, bad, 64), AB_ECORRUPT, "zstd");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, 0, out, sizeof out), AB_ECORRUPT, "zstd");
	/* truncated */
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, n - 1, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, n / 2, out, sizeof out), AB_ECORRUPT, "truncated");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 3, out, sizeof out), AB_ECORRUPT, "zstd");
	/* trailing garbage after a good frame */
	memcpy(bad, enc, n);
	memcpy(bad + n, "garbage!", 8);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n + 8, out, sizeof out), AB_ECORRUPT, "zstd");
	/* a corrupted content byte: caught at the latest by the checksum */
	memcpy(bad, enc, n);
	bad[n - 10] ^= 0x55;
	ab_error_clear();
	ssize_t r = ab_b2b_decode(&c, bad, n, out, sizeof out);
	ck_assert_msg(r < 0 && r != AB_ETOOSMALL && ab_last_error()[0], "flip gave %zd", r);
	/* content size lying low: does not fit */
	ck_assert_int_eq(ab_b2b_decode(&c, enc, n, out, sizeof raw - 1), AB_ETOOSMALL);
	/* encode into too small a buffer */
	ab_error_clear();
	expect_error(ab_b2b_encode(&c, raw, sizeof raw, bad, 10), AB_ETOOSMALL, "zstd");
	free(bad);
	free(enc);
}
END_TEST

START_TEST(test_lz4_bad_input)
{
	uint8_t raw[20000], out[30000];
	fill_data(raw, sizeof raw, 49);
	ab_b2b_codec c = make_codec(AB_B2B_LZ4);
	size_t n;
	uint8_t *enc = encode_alloc(&c, raw, sizeof raw, &n);
	uint8_t *bad = xmalloc(n + 16);

	/* the size prefix, larger and smaller than the block */
	memcpy(bad, enc, n);
	ab_store_le32(bad, sizeof raw + 1);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "lz4");
	ab_store_le32(bad, sizeof raw - 1);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "lz4");
	ab_store_le32(bad, 0);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n, out, sizeof out), AB_ECORRUPT, "lz4");
	/* an absurd prefix: announced, then found beyond LZ4's limit */
	ab_store_le32(bad, 0xFFFFFFFFu);
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, bad, n), AB_ECORRUPT, "lz4");
	/* a prefix larger than dst is ETOOSMALL (it may be true) */
	ck_assert_int_eq(ab_b2b_decode(&c, enc, n, out, sizeof raw - 1), AB_ETOOSMALL);
	/* too short for the prefix */
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 3, out, sizeof out), AB_ECORRUPT, "lz4");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, enc, 2), AB_ECORRUPT, "lz4");
	/* truncated block */
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, n - 1, out, sizeof out), AB_ECORRUPT, "lz4");
	/* a prefix of 5 with no block at all */
	ab_store_le32(bad, 5);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, 4, out, sizeof out), AB_ECORRUPT, "lz4");
	free(bad);
	free(enc);
}
END_TEST

START_TEST(test_bz2_bad_input)
{
	uint8_t raw[20000], out[30000];
	fill_data(raw, sizeof raw, 51);
	ab_b2b_codec c = make_codec(AB_B2B_BZ2);
	c.level = 9;
	size_t n;
	uint8_t *enc = encode_alloc(&c, raw, sizeof raw, &n);
	uint8_t *bad = xmalloc(n + 16);
	check_decode(&c, enc, n, raw, sizeof raw, "bz2 roundtrip");
	/* bzip2 does not announce its size */
	ck_assert_int_eq(ab_b2b_decoded_size(&c, enc, n), -1);
	/* a destination one byte short: the caller may grow it */
	ck_assert_int_eq(ab_b2b_decode(&c, enc, n, out, sizeof raw - 1), AB_ETOOSMALL);
	/* truncated anywhere, empty, not bzip2 at all */
	size_t cuts[] = { n - 1, n / 2, 10, 4, 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		ab_error_clear();
		expect_error(ab_b2b_decode(&c, enc, cuts[i], out, sizeof out), AB_ECORRUPT, "bz2");
	}
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, enc, 0, out, sizeof out), AB_ECORRUPT, "bz2");
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, raw, 100, out, sizeof out), AB_ECORRUPT, "bz2");
	/* a flipped byte in the compressed body: the block CRC catches it */
	memcpy(bad, enc, n);
	bad[n / 2] ^= 0x20;
	ab_error_clear();
	ck_assert_int_lt(ab_b2b_decode(&c, bad, n, out, sizeof out), 0);
	/* garbage after the stream */
	memcpy(bad, enc, n);
	memcpy(bad + n, "garbage", 7);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, bad, n + 7, out, sizeof out), AB_ECORRUPT, "bz2");
	free(bad);
	free(enc);
}
END_TEST

START_TEST(test_deflate_bad_input)
{
	uint8_t raw[20000], out[20000];
	fill_data(raw, sizeof raw, 50);
	ab_b2b_codec gz = make_codec(AB_B2B_GZIP), zl = make_codec(AB_B2B_ZLIB);
	gz.level = 5;
	zl.level = 5;
	size_t gn, zn;
	uint8_t *genc = encode_alloc(&gz, raw, sizeof raw, &gn);
	uint8_t *zenc = encode_alloc(&zl, raw, sizeof raw, &zn);
	uint8_t *bad = xmalloc(gn + zn + 16);

	/* gzip header as zlib writes it: magic, deflate, mtime 0 */
	ck_assert_int_eq(genc[0], 0x1f);
	ck_assert_int_eq(genc[1], 0x8b);
	ck_assert_int_eq(genc[2], 8);
	ck_assert_int_eq(ab_load_le32(genc + 4), 0);

	/* truncation at every length: corrupt with "truncated", never a crash */
	for (size_t cut = 0; cut < gn; cut += (cut < 40 || cut > gn - 40) ? 1 : 97) {
		ab_error_clear();
		expect_error(ab_b2b_decode(&gz, genc, cut, out, sizeof out), AB_ECORRUPT,
			     "truncated");
	}
	for (size_t cut = 0; cut < zn; cut += (cut < 40 || cut > zn - 40) ? 1 : 97) {
		ab_error_clear();
		expect_error(ab_b2b_decode(&zl, zenc, cut, out, sizeof out), AB_ECORRUPT,
			     "truncated");
	}
	/* a wrong CRC / Adler check value */
	memcpy(bad, genc, gn);
	bad[gn - 6] ^= 1;
	ab_error_clear();
	expect_error(ab_b2b_decode(&gz, bad, gn, out, sizeof out), AB_ECORRUPT, "gzip");
	memcpy(bad, zenc, zn);
	bad[zn - 1] ^= 1;
	ab_error_clear();
	expect_error(ab_b2b_decode(&zl, bad, zn, out, sizeof out), AB_ECORRUPT, "zlib");
	/* the wrong format */
	ab_error_clear();
	expect_error(ab_b2b_decode(&gz, zenc, zn, out, sizeof out), AB_ECORRUPT, "gzip");
	ab_error_clear();
	expect_error(ab_b2b_decode(&zl, genc, gn, out, sizeof out), AB_ECORRUPT, "zlib");
	/* trailing data: garbage after gzip, anything after zlib */
	memcpy(bad, genc, gn);
	memcpy(bad + gn, "xyz", 3);
	ab_error_clear();
	expect_error(ab_b2b_decode(&gz, bad, gn + 3, out, sizeof out), AB_ECORRUPT, "gzip");
	memcpy(bad, zenc, zn);
	bad[zn] = 0;
	ab_error_clear();
	expect_error(ab_b2b_decode(&zl, bad, zn + 1, out, sizeof out), AB_ECORRUPT, "trailing");
	/* two gzip members back to back, then zero padding */
	uint8_t *twice = xmalloc(2 * sizeof raw);
	memcpy(twice, raw, sizeof raw);
	memcpy(twice + sizeof raw, raw, sizeof raw);
	uint8_t *two = xmalloc(2 * gn + 5);
	memcpy(two, genc, gn);
	memcpy(two + gn, genc, gn);
	memset(two + 2 * gn, 0, 5);
	check_decode(&gz, two, 2 * gn + 5, twice, 2 * sizeof raw, "gzip two members");
	/* the second member truncated */
	ab_error_clear();
	expect_error(ab_b2b_decode(&gz, two, 2 * gn - 3, twice, 2 * sizeof raw), AB_ECORRUPT,
		     "truncated");
	free(two);
	/* too small, exactly, and zero */
	ck_assert_int_eq(ab_b2b_decode(&gz, genc, gn, out, sizeof raw - 1), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_decode(&zl, zenc, zn, out, 1), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_decode(&zl, zenc, zn, NULL, 0), AB_ETOOSMALL);
	/* encode errors */
	zl.level = 10;
	ab_error_clear();
	expect_error(ab_b2b_encode(&zl, raw, 100, out, sizeof out), AB_EINVAL, "level");
	zl.level = 1;
	ck_assert_int_eq(ab_b2b_encode(&zl, raw, sizeof raw, out, 10), AB_ETOOSMALL);
	ck_assert_int_eq(ab_b2b_encode(&gz, raw, 0, NULL, 0), AB_ETOOSMALL);
	free(twice);
	free(bad);
	free(genc);
	free(zenc);
}
END_TEST

START_TEST(test_vlen_utf8)
{
	const char *strs[] = { "alpha", "", "\xc3\xa9t\xc3\xa9", NULL, "last one" };
	uint8_t *enc = NULL;
	size_t n = 0;
	char **out = NULL;

	ck_assert_int_eq(ab_vlen_utf8_encode(strs, 5, &enc, &n), 0);
	ck_assert_uint_eq(n, 4 + 5 * 4 + 5 + 0 + 5 + 0 + 8);
	ck_assert_uint_eq(ab_load_le32(enc), 5);
	ck_assert_uint_eq(ab_load_le32(enc + 4), 5);
	ck_assert_int_eq(memcmp(enc + 8, "alpha", 5), 0);
	ck_assert_int_eq(ab_vlen_utf8_decode(enc, n, 5, &out), 0);
	ck_assert_str_eq(out[0], "alpha");
	ck_assert_str_eq(out[1], "");
	ck_assert_str_eq(out[2], "\xc3\xa9t\xc3\xa9");
	ck_assert_str_eq(out[3], ""); /* NULL was written as empty */
	ck_assert_str_eq(out[4], "last one");
	for (int i = 0; i < 5; i++)
		free(out[i]);
	free(out);

	/* count mismatch, either way */
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, n, 4, &out), AB_ECORRUPT, "expected 4");
	ck_assert_ptr_null(out);
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, n, 6, &out), AB_ECORRUPT, "expected 6");
	/* a length running past the end */
	uint8_t *bad = xmalloc(n);
	memcpy(bad, enc, n);
	ab_store_le32(bad + 4, 1000);
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(bad, n, 5, &out), AB_ECORRUPT, "past the end");
	ck_assert_ptr_null(out);
	ab_store_le32(bad + 4, 0xFFFFFFFFu);
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(bad, n, 5, &out), AB_ECORRUPT, "past the end");
	/* the last item truncated, and the buffer cut inside a length field */
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, n - 1, 5, &out), AB_ECORRUPT, "vlen-utf8");
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, 4 + 4 + 5 + 2, 5, &out), AB_ECORRUPT, "vlen-utf8");
	/* a count too large for the buffer, even if the caller expects it */
	ab_store_le32(bad, 1000000);
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(bad, n, 1000000, &out), AB_ECORRUPT, "truncated");
	/* trailing bytes */
	uint8_t *longer = xmalloc(n + 2);
	memcpy(longer, enc, n);
	longer[n] = longer[n + 1] = 'x';
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(longer, n + 2, 5, &out), AB_ECORRUPT, "after the last");
	/* shorter than the count */
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(enc, 3, 5, &out), AB_ECORRUPT, "vlen-utf8");
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(NULL, 0, 0, &out), AB_ECORRUPT, "vlen-utf8");
	free(enc);
	/* a NUL byte inside an item: refused (C strings would cut it there) */
	static const uint8_t nul[] = { 2, 0, 0, 0, 1, 0, 0, 0, 'a', 3, 0, 0, 0, 'b', 0, 'c' };
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(nul, sizeof nul, 2, &out), AB_EFORMAT, "item 1 holds a NUL");

	/* zero items */
	ck_assert_int_eq(ab_vlen_utf8_encode(NULL, 0, &enc, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(ab_vlen_utf8_decode(enc, n, 0, &out), 0);
	ck_assert_ptr_nonnull(out);
	free(out);
	free(enc);
	/* argument errors */
	ab_error_clear();
	expect_error(ab_vlen_utf8_encode(NULL, 3, &enc, &n), AB_EINVAL, "vlen-utf8");
	ab_error_clear();
	expect_error(ab_vlen_utf8_decode(bad, n, 5, NULL), AB_EINVAL, "vlen-utf8");
	free(bad);
	free(longer);
}
END_TEST

START_TEST(test_dispatch_and_describe)
{
	char buf[128];
	uint8_t tmp[64];
	ab_b2b_codec c = make_blosc("lz4", 3, AB_BLOSC_SHUFFLE, 4, 0);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "blosc(cname=lz4,clevel=3,shuffle=shuffle)");
	c = make_blosc("zstd", 9, AB_BLOSC_BITSHUFFLE, 8, 65536);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "blosc(cname=zstd,clevel=9,shuffle=bitshuffle,blocksize=65536)");
	c = make_blosc("blosclz", 0, AB_BLOSC_NOSHUFFLE, 1, 0);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "blosc(cname=blosclz,clevel=0,shuffle=noshuffle)");
	c = make_codec(AB_B2B_ZSTD);
	c.level = 5;
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "zstd(level=5)");
	c.checksum = 1;
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "zstd(level=5,checksum)");
	c = make_codec(AB_B2B_LZ4);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "lz4");
	c = make_codec(AB_B2B_GZIP);
	c.level = 5;
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "gzip(level=5)");
	c = make_codec(AB_B2B_ZLIB);
	c.level = 1;
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "zlib(level=1)");
	c = make_codec(AB_B2B_CRC32C);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "crc32c");
	c = make_codec(AB_B2B_BZ2);
	c.level = 9;
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "bz2(level=9)");
	/* truncation is safe, and a full cname without NUL does not overrun */
	c = make_blosc("lz4", 3, AB_BLOSC_SHUFFLE, 4, 0);
	ab_b2b_describe(&c, buf, 8);
	ck_assert_str_eq(buf, "blosc(c");
	memset(c.cname, 'x', sizeof c.cname);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_ptr_nonnull(strstr(buf, "cname=xxxxxxxxxxxxxxxx,"));
	ab_error_clear();
	expect_error(ab_b2b_encode(&c, "abc", 3, tmp, sizeof tmp), AB_EUNSUPPORTED, "xxxx");

	/* unknown kinds and bad arguments */
	c = make_codec((ab_b2b_kind)99);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, "abc", 3, tmp, sizeof tmp), AB_EUNSUPPORTED, "kind");
	ab_error_clear();
	expect_error(ab_b2b_decoded_size(&c, "abc", 3), AB_EUNSUPPORTED, "kind");
	ab_error_clear();
	expect_error(ab_b2b_encode(&c, "abc", 3, tmp, sizeof tmp), AB_EUNSUPPORTED, "kind");
	ck_assert_uint_eq(ab_b2b_encode_bound(&c, 3), 0);
	/* argument errors in decoded_size stay clear of the -1 "unknown" */
	ck_assert_int_lt(ab_b2b_decoded_size(NULL, "abc", 3), -1);
	c = make_codec(AB_B2B_LZ4);
	ck_assert_int_lt(ab_b2b_decoded_size(&c, NULL, 3), -1);
	c = make_codec((ab_b2b_kind)99);
	ab_b2b_describe(&c, buf, sizeof buf);
	ck_assert_str_eq(buf, "unknown(99)");
	c = make_codec(AB_B2B_ZSTD);
	ab_error_clear();
	expect_error(ab_b2b_decode(NULL, "abc", 3, tmp, sizeof tmp), AB_EINVAL, NULL);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, NULL, 3, tmp, sizeof tmp), AB_EINVAL, NULL);
	ab_error_clear();
	expect_error(ab_b2b_decode(&c, "abc", 3, NULL, 10), AB_EINVAL, NULL);
	ab_error_clear();
	expect_error(ab_b2b_encode(&c, NULL, 3, tmp, sizeof tmp), AB_EINVAL, NULL);
	/* bounds never wrap */
	static const ab_b2b_kind kinds[] = { AB_B2B_BLOSC, AB_B2B_ZSTD, AB_B2B_LZ4, AB_B2B_GZIP,
					     AB_B2B_ZLIB, AB_B2B_CRC32C };
	for (size_t k = 0; k < 6; k++) {
		c = make_codec(kinds[k]);
		ck_assert_uint_ge(ab_b2b_encode_bound(&c, 0), 4);
		ck_assert_uint_ge(ab_b2b_encode_bound(&c, 1000), 1004);
		ck_assert_uint_eq(ab_b2b_encode_bound(&c, SIZE_MAX - 2), SIZE_MAX);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* mutation run against guard pages                                         */
/* ------------------------------------------------------------------------ */

/* Decodes `src` (copied against a guard page) into a destination that also
 * ends at a guard page, and checks that the outcome is one of the allowed
 * ones. */
static void decode_guarded(const ab_b2b_codec *c, const uint8_t *src, size_t n, size_t dstcap,
			   const char *what, int iter)
{
	guarded gs, gd;
	uint8_t *s = guard_alloc(&gs, n);
	uint8_t *d = guard_alloc(&gd, dstcap);
	memcpy(s, src, n);
	ab_error_clear();
	int64_t ds = ab_b2b_decoded_size(c, s, n);
	ck_assert_msg(ds >= -1 || ab_last_error()[0], "%s #%d: decoded_size %lld without message",
		      what, iter, (long long)ds);
	ab_error_clear();
	ssize_t r = ab_b2b_decode(c, s, n, dstcap ? d : NULL, dstcap);
	if (r >= 0)
		ck_assert_msg((size_t)r <= dstcap, "%s #%d: %zd > cap %zu", what, iter, r, dstcap);
	else
		ck_assert_msg(r == AB_ETOOSMALL || ab_last_error()[0],
			      "%s #%d: status %zd without message", what, iter, r);
	guard_free(&gs);
	guard_free(&gd);
}

static void mutate_and_decode(const ab_b2b_codec *c, const uint8_t *enc, size_t enclen,
			      size_t rawlen, uint64_t *rs, int iterations, const char *what)
{
	uint8_t *m = xmalloc(enclen + 64);
	for (int it = 0; it < iterations; it++) {
		size_t len = enclen;
		memcpy(m, enc, enclen);
		switch (rng_next(rs) % 6) {
		case 0: /* flip a few bytes */
		case 1: {
			int flips = 1 + (int)(rng_next(rs) % 4);
			for (int f = 0; f < flips && len > 0; f++)
				m[rng_next(rs) % len] ^= (uint8_t)(1 + rng_next(rs) % 255);
			break;
		}
		case 2: /* truncate */
			len = len ? (size_t)(rng_next(rs) % len) : 0;
			break;
		case 3: /* overwrite a header word with a nasty value */
			if (len >= 4) {
				static const uint32_t nasty[] = { 0, 1, 15, 16, 17, 0x7FFFFFFF,
								  0x80000000u, 0xFFFFFFFFu, 0x7E000000 };
				size_t span = len < 40 ? len - 3 : 37;
				size_t at = (size_t)(rng_next(rs) % span);
				uint32_t v = nasty[rng_next(rs) % 9];
				if (rng_next(rs) & 1)
					v = (uint32_t)(rawlen + enclen + (rng_next(rs) % 5)) - 2;
				ab_store_le32(m + at, v);
			}
			break;
		case 4: /* append junk */
			for (int k = 0; k < 1 + (int)(rng_next(rs) % 60); k++)
				m[len++] = (uint8_t)rng_next(rs);
			break;
		case 5: /* scribble a run of bytes inside */
			if (len > 0) {
				size_t at = (size_t)(rng_next(rs) % len);
				size_t run = 1 + (size_t)(rng_next(rs) % 32);
				for (size_t k = at; k < len && k < at + run; k++)
					m[k] = (uint8_t)rng_next(rs);
			}
			break;
		}
		/* mostly the right capacity, sometimes less or more */
		size_t cap = rawlen;
		switch (rng_next(rs) % 4) {
		case 0: cap = rawlen / 2; break;
		case 1: cap = rawlen + 100; break;
		default: break;
		}
		decode_guarded(c, m, len, cap, what, it);
	}
	free(m);
}

START_TEST(test_mutations)
{
	uint64_t rs = 0x5eed5eedULL;
	size_t rawlen = 3000;
	uint8_t *raw = xmalloc(rawlen);
	fill_data(raw, rawlen, 51);
	char what[64];
	/* AB_CODEC_MUTATIONS scales the run up for an occasional long soak. */
	const char *env = getenv("AB_CODEC_MUTATIONS");
	const int iters = env && atoi(env) > 0 ? atoi(env) : 300;

	for (size_t ci = 0; ci < N_CNAMES; ci++) {
		if (!cname_available(all_cnames[ci]))
			continue;
		for (int sh = 0; sh <= 2; sh++) {
			ab_b2b_codec c = make_blosc(all_cnames[ci], 5, sh, 4, sh == 1 ? 512 : 0);
			size_t n;
			uint8_t *enc = encode_alloc(&c, raw, rawlen, &n);
			snprintf(what, sizeof what, "blosc %s shuffle %d", all_cnames[ci], sh);
			decode_guarded(&c, enc, n, rawlen, what, -1); /* the clean one */
			mutate_and_decode(&c, enc, n, rawlen, &rs, iters, what);
			free(enc);
		}
	}
	ab_b2b_codec cs[6];
	cs[0] = make_blosc("lz4", 0, 0, 1, 0); /* raw frame */
	cs[1] = make_codec(AB_B2B_ZSTD);
	cs[1].level = 3;
	cs[1].checksum = 1;
	cs[2] = make_codec(AB_B2B_LZ4);
	cs[3] = make_codec(AB_B2B_GZIP);
	cs[3].level = 6;
	cs[4] = make_codec(AB_B2B_ZLIB);
	cs[4].level = 6;
	cs[5] = make_codec(AB_B2B_CRC32C);
	for (size_t k = 0; k < 6; k++) {
		size_t n;
		uint8_t *enc = encode_alloc(&cs[k], raw, rawlen, &n);
		ab_b2b_describe(&cs[k], what, sizeof what);
		decode_guarded(&cs[k], enc, n, rawlen, what, -1);
		mutate_and_decode(&cs[k], enc, n, rawlen, &rs, 4 * iters, what);
		free(enc);
	}

	/* vlen-utf8 with guarded input */
	const char *strs[] = { "one", "two two", "", "three three three", "4" };
	uint8_t *enc;
	size_t n;
	ck_assert_int_eq(ab_vlen_utf8_encode(strs, 5, &enc, &n), 0);
	uint8_t *m = xmalloc(n + 64);
	for (int it = 0; it < 7 * iters; it++) {
		size_t len = n;
		memcpy(m, enc, n);
		if (rng_next(&rs) & 1)
			len = (size_t)(rng_next(&rs) % (n + 1));
		else
			ab_store_le32(m + 4 * (rng_next(&rs) % 4), (uint32_t)(rng_next(&rs) % 64));
		guarded g;
		uint8_t *s = guard_alloc(&g, len);
		memcpy(s, m, len);
		char **out = NULL;
		ab_error_clear();
		int rc = ab_vlen_utf8_decode(s, len, 5, &out);
		if (rc == 0) {
			for (int i = 0; i < 5; i++)
				free(out[i]);
			free(out);
		} else {
			ck_assert_msg(ab_last_error()[0], "vlen #%d: no message", it);
			ck_assert_ptr_null(out);
		}
		guard_free(&g);
	}
	free(m);
	free(enc);
	free(raw);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* threads                                                                  */
/* ------------------------------------------------------------------------ */

struct thread_job {
	const ab_b2b_codec *c;
	const uint8_t *enc;
	size_t enclen;
	const uint8_t *raw;
	size_t rawlen;
	int failures;
};

static void *thread_decode(void *arg)
{
	struct thread_job *j = arg;
	uint8_t *dst = malloc(j->rawlen);
	if (dst == NULL) {
		j->failures++;
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		ssize_t r = ab_b2b_decode(j->c, j->enc, j->enclen, dst, j->rawlen);
		if (r != (ssize_t)j->rawlen || memcmp(dst, j->raw, j->rawlen) != 0)
			j->failures++;
	}
	free(dst);
	return NULL;
}

/* Several threads decoding at once through the _ctx / per-call contexts must
 * not interfere (run it under TSan to make this stronger). */
START_TEST(test_concurrent_decode)
{
	size_t rawlen = 200000;
	uint8_t *raw = xmalloc(rawlen);
	fill_data(raw, rawlen, 52);
	ab_b2b_codec cs[4];
	cs[0] = make_blosc("lz4", 5, AB_BLOSC_SHUFFLE, 4, 16384);
	cs[1] = make_blosc("zstd", 3, AB_BLOSC_BITSHUFFLE, 8, 0);
	cs[2] = make_codec(AB_B2B_ZSTD);
	cs[2].level = 3;
	cs[3] = make_codec(AB_B2B_GZIP);
	cs[3].level = 3;
	uint8_t *encs[4];
	size_t lens[4];
	pthread_t th[8];
	struct thread_job jobs[8];
	for (int k = 0; k < 4; k++)
		encs[k] = encode_alloc(&cs[k], raw, rawlen, &lens[k]);
	for (int t = 0; t < 8; t++) {
		jobs[t] = (struct thread_job){ &cs[t % 4], encs[t % 4], lens[t % 4], raw, rawlen, 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, thread_decode, &jobs[t]), 0);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		ck_assert_msg(jobs[t].failures == 0, "thread %d: %d failures", t, jobs[t].failures);
	}
	for (int k = 0; k < 4; k++)
		free(encs[k]);
	free(raw);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codecs");
	TCase *tc;

	tc = tcase_create("crc32c");
	tcase_add_test(tc, test_crc32c_known_vectors);
	tcase_add_test(tc, test_crc32c_incremental);
	tcase_add_test(tc, test_crc32c_against_bitwise);
	tcase_add_test(tc, test_crc32c_codec);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_blosc_roundtrip, 0, (int)N_CNAMES);
	tcase_add_test(tc, test_blosc_unsplit);
	tcase_add_test(tc, test_zstd_roundtrip);
	tcase_add_test(tc, test_zstd_stream_and_multiframe);
	tcase_add_test(tc, test_lz4_roundtrip);
	tcase_add_loop_test(tc, test_deflate_roundtrip, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_vectors_decode);
	tcase_add_test(tc, test_vectors_reencode);
	tcase_add_test(tc, test_vectors_decode_part);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_input");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_blosc_bad_input);
	tcase_add_test(tc, test_zstd_bad_input);
	tcase_add_test(tc, test_lz4_bad_input);
	tcase_add_test(tc, test_bz2_bad_input);
	tcase_add_test(tc, test_deflate_bad_input);
	tcase_add_test(tc, test_vlen_utf8);
	tcase_add_test(tc, test_dispatch_and_describe);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_concurrent_decode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	if (getenv("AB_CODEC_VECTORS") == NULL)
		fprintf(stderr, "test_codecs: AB_CODEC_VECTORS is not set; the vector tests "
				"will FAIL. Generate them with `/usr/bin/python3 "
				"tests/unit/gen_codec_vectors.py DIR` and set AB_CODEC_VECTORS=DIR.\n");
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
