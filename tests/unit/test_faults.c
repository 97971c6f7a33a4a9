/* test_faults.c - the loader under injected I/O faults (engine/io_fault.c),
 * and its resource ceilings across epochs.
 *
 * The stores are written here, by hand, into a directory on a real file
 * system (O_DIRECT needs one): zarr v2 AnnData with a dense X (200 x 4
 * float32, chunks of 16 rows, no compressor) and with a CSR X, and a zarr v3
 * AnnData whose dense X chunks carry a crc32c. Every value follows from its
 * position (X[r, c] = 10 r + c), so any batch can be checked on its own.
 *
 * The loop tests run each case over _i = 0..7: bit 0 the backend (io_uring,
 * or its fallback where refused / the pread pool via AB_IO_FORCE_PREAD),
 * bit 1 the decode threads (1 / 4), bit 2 the I/O mode (buffered / direct).
 * Each test runs in its own forked process (Check's default), so the
 * environment variables set here do not leak into the next test. Hangs are
 * caught by the test case timeout; leaks by the ASan build's leak checker.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "annbatch.h"
#include "codec.h"
#include "io.h"
#include "io_fault.h"

#define NROWS 200
#define NCOLS 4
#define CHUNK_ROWS 16
#define NCHUNKS ((NROWS + CHUNK_ROWS - 1) / CHUNK_ROWS)
#define CSR_CHUNK 64

static char dir[512];
static char dense2[600], csr2[600], crc3[600];

/* ------------------------------------------------------------ fixtures */

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Writes rel under root (a directory inside `dir`), making the directories
 * on the way. */
static void put(const char *root, const char *rel, const void *data, size_t len)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			die(path);
		*p = '/';
	}
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		die(path);
}

static void put_str(const char *root, const char *rel, const char *text)
{
	put(root, rel, text, strlen(text));
}

static float value_of(uint64_t r, uint64_t c)
{
	return (float)(r * 10 + c);
}

/* Row r of the CSR matrix holds r % 4 elements, at columns 0, 1, ... */
static uint64_t csr_len(uint64_t r)
{
	return r % 4;
}

/* One chunk of the dense X: rows [16 i, 16 i + 16), the rows past the end of
 * the array written as zeros (zarr stores edge chunks whole). */
static void dense_chunk(unsigned i, float *out)
{
	for (unsigned k = 0; k < CHUNK_ROWS; k++)
		for (unsigned c = 0; c < NCOLS; c++) {
			uint64_t r = (uint64_t)i * CHUNK_ROWS + k;
			out[k * NCOLS + c] = r < NROWS ? value_of(r, c) : 0.0f;
		}
}

static const char anndata_v2_attrs[] = "{\"encoding-type\": \"anndata\", \"encoding-version\": \"0.1.0\"}";

static void write_dense_v2(const char *root)
{
	put_str(root, ".zgroup", "{\"zarr_format\": 2}");
	put_str(root, ".zattrs", anndata_v2_attrs);
	char meta[512];
	snprintf(meta, sizeof meta,
		 "{\"chunks\": [%d, %d], \"compressor\": null, \"dtype\": \"<f4\", \"fill_value\": 0.0, "
		 "\"filters\": null, \"order\": \"C\", \"shape\": [%d, %d], \"zarr_format\": 2}",
		 CHUNK_ROWS, NCOLS, NROWS, NCOLS);
	put_str(root, "X/.zarray", meta);
	put_str(root, "X/.zattrs", "{\"encoding-type\": \"array\", \"encoding-version\": \"0.2.0\"}");
	float chunk[CHUNK_ROWS * NCOLS];
	for (unsigned i = 0; i < NCHUNKS; i++) {
		char key[64];
		dense_chunk(i, chunk);
		snprintf(key, sizeof key, "X/%u.0", i);
		put(root, key, chunk, sizeof chunk);
	}
}

static void write_v2_1d(const char *root, const char *node, const char *dtype, size_t isz, const void *data,
			uint64_t n, uint64_t chunk)
{
	char rel[256], meta[512];
	snprintf(meta, sizeof meta,
		 "{\"chunks\": [%llu], \"compressor\": null, \"dtype\": \"%s\", \"fill_value\": 0, "
		 "\"filters\": null, \"order\": \"C\", \"shape\": [%llu], \"zarr_format\": 2}",
		 (unsigned long long)chunk, dtype, (unsigned long long)n);
	snprintf(rel, sizeof rel, "%s/.zarray", node);
	put_str(root, rel, meta);
	uint8_t *buf = calloc(chunk, isz);
	if (!buf)
		die("calloc");
	for (uint64_t i = 0; i * chunk < n; i++) {
		uint64_t m = n - i * chunk < chunk ? n - i * chunk : chunk;
		memset(buf, 0, chunk * isz);
		memcpy(buf, (const uint8_t *)data + i * chunk * isz, m * isz);
		snprintf(rel, sizeof rel, "%s/%llu", node, (unsigned long long)i);
		put(root, rel, buf, chunk * isz);
	}
	free(buf);
}

static void write_csr_v2(const char *root)
{
	int64_t indptr[NROWS + 1];
	float data[NROWS * NCOLS];
	int32_t indices[NROWS * NCOLS];
	indptr[0] = 0;
	for (uint64_t r = 0; r < NROWS; r++) {
		for (uint64_t j = 0; j < csr_len(r); j++) {
			data[indptr[r] + (int64_t)j] = value_of(r, j);
			indices[indptr[r] + (int64_t)j] = (int32_t)j;
		}
		indptr[r + 1] = indptr[r] + (int64_t)csr_len(r);
	}
	uint64_t nnz = (uint64_t)indptr[NROWS];
	put_str(root, ".zgroup", "{\"zarr_format\": 2}");
	put_str(root, ".zattrs", anndata_v2_attrs);
	put_str(root, "X/.zgroup", "{\"zarr_format\": 2}");
	char attrs[256];
	snprintf(attrs, sizeof attrs,
		 "{\"encoding-type\": \"csr_matrix\", \"encoding-version\": \"0.1.0\", \"shape\": [%d, %d]}", NROWS,
		 NCOLS);
	put_str(root, "X/.zattrs", attrs);
	write_v2_1d(root, "X/data", "<f4", 4, data, nnz, CSR_CHUNK);
	write_v2_1d(root, "X/indices", "<i4", 4, indices, nnz, CSR_CHUNK);
	write_v2_1d(root, "X/indptr", "<i8", 8, indptr, NROWS + 1, NROWS + 1);
}

/* zarr v3, codecs [bytes(little), crc32c]: each chunk file is the raw chunk
 * followed by the CRC-32C of it, 4 bytes little endian. */
static void write_crc_v3(const char *root)
{
	put_str(root, "zarr.json",
		"{\"zarr_format\": 3, \"node_type\": \"group\", \"attributes\": "
		"{\"encoding-type\": \"anndata\", \"encoding-version\": \"0.1.0\"}}");
	char meta[1024];
	snprintf(meta, sizeof meta,
		 "{\"zarr_format\": 3, \"node_type\": \"array\", \"shape\": [%d, %d], \"data_type\": \"float32\", "
		 "\"chunk_grid\": {\"name\": \"regular\", \"configuration\": {\"chunk_shape\": [%d, %d]}}, "
		 "\"chunk_key_encoding\": {\"name\": \"default\", \"configuration\": {\"separator\": \"/\"}}, "
		 "\"fill_value\": 0.0, \"codecs\": [{\"name\": \"bytes\", \"configuration\": {\"endian\": "
		 "\"little\"}}, {\"name\": \"crc32c\"}], \"attributes\": {\"encoding-type\": \"array\", "
		 "\"encoding-version\": \"0.2.0\"}}",
		 NROWS, NCOLS, CHUNK_ROWS, NCOLS);
	put_str(root, "X/zarr.json", meta);
	uint8_t buf[CHUNK_ROWS * NCOLS * 4 + 4];
	for (unsigned i = 0; i < NCHUNKS; i++) {
		float chunk[CHUNK_ROWS * NCOLS];
		dense_chunk(i, chunk);
		memcpy(buf, chunk, sizeof chunk); /* little-endian host */
		uint32_t crc = ab_crc32c(0, buf, sizeof chunk);
		for (int b = 0; b < 4; b++)
			buf[sizeof chunk + (size_t)b] = (uint8_t)(crc >> (8 * b));
		char key[64];
		snprintf(key, sizeof key, "X/c/%u/0", i);
		put(root, key, buf, sizeof buf);
	}
}

/* O_DIRECT needs a real file system: AB_TEST_DIR, else /var/tmp, else ".". */
static void make_stores(void)
{
	const char *cands[] = { getenv("AB_TEST_DIR"), "/var/tmp", "." };
	const char *base = ".";
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		struct statfs sf;
		if (cands[i] && statfs(cands[i], &sf) == 0 && sf.f_type != TMPFS_MAGIC && access(cands[i], W_OK) == 0) {
			base = cands[i];
			break;
		}
	}
	snprintf(dir, sizeof dir, "%s/ab-test-faults-XXXXXX", base);
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(dense2, sizeof dense2, "%s/dense2.zarr", dir);
	snprintf(csr2, sizeof csr2, "%s/csr2.zarr", dir);
	snprintf(crc3, sizeof crc3, "%s/crc3.zarr", dir);
	write_dense_v2(dense2);
	write_csr_v2(csr2);
	write_crc_v3(crc3);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_stores(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------ running */

/* _i bits: 0 backend, 1 threads, 2 I/O mode. */
static void set_variant(int i)
{
	ck_assert_int_eq(setenv("AB_IO_FORCE_PREAD", (i & 1) ? "1" : "0", 1), 0);
}

static void set_faults(const char *spec)
{
	if (spec)
		ck_assert_int_eq(setenv("AB_IO_FAULT", spec, 1), 0);
	else
		ck_assert_int_eq(unsetenv("AB_IO_FAULT"), 0);
}

static ab_loader *make_loader(const char *path, int variant, int shuffle)
{
	ab_loader_config cfg;
	ab_loader_config_init(&cfg);
	cfg.batch_size = 8;
	cfg.chunk_size = CHUNK_ROWS;
	cfg.preload_nchunks = 2;
	cfg.shuffle = shuffle;
	cfg.seed = 3;
	cfg.rank = 0;
	cfg.world_size = 1;
	cfg.threads = (variant & 2) ? 4 : 1;
	cfg.io_mode = (variant & 4) ? AB_IO_MODE_DIRECT : AB_IO_MODE_BUFFERED;
	cfg.max_windows = 2;
	ab_loader *ld;
	ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
	ck_assert_msg(ab_loader_add_anndata(ld, path) == 0, "add %s: %s", path, ab_last_error());
	return ld;
}

/* Is every value of the batch the one its row number says? */
static int batch_ok(const ab_batch_view *v)
{
	if (v->dtype != AB_DT_FLOAT32)
		return 0;
	for (uint64_t i = 0; i < v->nrows; i++) {
		uint64_t r = v->rows[i];
		if (r >= NROWS)
			return 0;
		if (!v->sparse) {
			const float *d = v->data;
			for (uint64_t c = 0; c < NCOLS; c++)
				if (d[i * NCOLS + c] != value_of(r, c))
					return 0;
		} else {
			const float *d = v->values;
			int64_t a = v->indptr[i], b = v->indptr[i + 1];
			if ((uint64_t)(b - a) != csr_len(r))
				return 0;
			for (int64_t j = 0; j < b - a; j++)
				if (v->indices[a + j] != j || d[a + j] != value_of(r, (uint64_t)j))
					return 0;
		}
	}
	return 1;
}

typedef struct epoch_result {
	int rc;                /* AB_END, or the error ab_loader_next gave        */
	char msg[2048];        /* ab_last_error() after an error                  */
	unsigned batches;      /* handed out before the end / the error            */
	unsigned bad;          /* batches with a wrong value                       */
	uint64_t rows;
	uint64_t digest;       /* FNV-1a over every batch's index and row numbers */
} epoch_result;

static void mix(uint64_t *h, uint64_t v)
{
	for (int b = 0; b < 8; b++) {
		*h ^= (v >> (8 * b)) & 0xFF;
		*h *= 0x100000001b3ull;
	}
}

/* Microseconds a drain holds each batch (a consumer slower than the loader,
 * which then reads the next epoch ahead while this one is consumed). */
static unsigned drain_hold_us;

/* Consumes the current epoch to its end or its first error. */
static void drain(ab_loader *ld, epoch_result *res)
{
	memset(res, 0, sizeof *res);
	res->digest = 0xcbf29ce484222325ull;
	ab_batch *b;
	int rc;
	while ((rc = ab_loader_next(ld, &b)) == 0) {
		ab_batch_view v;
		ck_assert_int_eq(ab_batch_get_view(b, &v), 0);
		if (!batch_ok(&v))
			res->bad++;
		mix(&res->digest, v.index);
		for (uint64_t i = 0; i < v.nrows; i++)
			mix(&res->digest, v.rows[i]);
		res->rows += v.nrows;
		res->batches++;
		if (drain_hold_us)
			usleep(drain_hold_us);
		ab_batch_release(b);
	}
	res->rc = rc;
	if (rc < 0)
		snprintf(res->msg, sizeof res->msg, "%s", ab_last_error());
}

static void run_epoch(const char *path, int variant, int shuffle, const char *faults, epoch_result *res)
{
	set_faults(faults);
	ab_loader *ld = make_loader(path, variant, shuffle);
	ck_assert_msg(ab_loader_start(ld, 0) == 0, "start: %s", ab_last_error());
	drain(ld, res);
	/* Straight after the error (or the end): no hang, nothing left over. */
	ab_loader_destroy(ld);
	set_faults(NULL);
}

#define ck_assert_contains(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "'%s' not in message '%s'", (needle), (hay))

/* ------------------------------------------------------------ the wrapper */

START_TEST(test_parse)
{
	ab_fault f[AB_IO_MAX_FAULTS];
	unsigned n;
	ck_assert_int_eq(ab_io_fault_parse("eio@5, short@3 ,corrupt@2:7,delay@4:200ms,short@9:10", f,
					   AB_IO_MAX_FAULTS, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(f[0].kind, AB_FAULT_EIO);
	ck_assert_uint_eq(f[0].nth, 5);
	ck_assert_int_eq(f[1].kind, AB_FAULT_SHORT);
	ck_assert_uint_eq(f[1].arg, UINT64_MAX);
	ck_assert_int_eq(f[2].kind, AB_FAULT_CORRUPT);
	ck_assert_uint_eq(f[2].arg, 7);
	ck_assert_int_eq(f[3].kind, AB_FAULT_DELAY);
	ck_assert_uint_eq(f[3].arg, 200000000ull);
	ck_assert_uint_eq(f[4].arg, 10);
	ck_assert_uint_eq(f[0].round, 0);
	ck_assert_int_eq(ab_io_fault_parse("eio@3~2,delay@1:5ms~4", f, AB_IO_MAX_FAULTS, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(f[0].nth, 3);
	ck_assert_uint_eq(f[0].round, 2);
	ck_assert_uint_eq(f[1].arg, 5000000ull);
	ck_assert_uint_eq(f[1].round, 4);
	ck_assert_int_eq(ab_io_fault_parse("delay@1:3s,delay@2:40us,delay@3:9ns,delay@4:12,delay@5", f,
					   AB_IO_MAX_FAULTS, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(f[0].arg, 3000000000ull);
	ck_assert_uint_eq(f[1].arg, 40000ull);
	ck_assert_uint_eq(f[2].arg, 9ull);
	ck_assert_uint_eq(f[3].arg, 12000000ull);
	ck_assert_uint_eq(f[4].arg, 100000000ull);
	ck_assert_int_eq(ab_io_fault_parse("regfail@2,eio@2", f, AB_IO_MAX_FAULTS, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(f[0].kind, AB_FAULT_REGFAIL);
	ck_assert_uint_eq(f[0].nth, 2);
	ck_assert_uint_eq(f[0].round, 0);
	const char *bad[] = { "eio", "eio@0", "eio@x", "eio@3:1", "bogus@1", "short@2:x", "delay@1:5h", "@3",
			      "corrupt@", "eio@2~0", "eio@2~x", "eio@2~", "regfail@0", "regfail@2:1", "regfail@2~1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(ab_io_fault_parse(bad[i], f, AB_IO_MAX_FAULTS, &n) == AB_EINVAL, "accepted '%s'",
			      bad[i]);
		ck_assert_contains(ab_last_error(), "AB_IO_FAULT");
	}
	ck_assert_int_eq(ab_io_fault_parse("eio@1,eio@2,eio@3", f, 2, &n), AB_EINVAL);
	ck_assert_contains(ab_last_error(), "too many");

	/* Through ab_io_create: a bad list refuses, a good one keeps the name. */
	ab_io_config cfg = { .kind = AB_IO_PREAD, .queue_depth = 8, .threads = 2 };
	ab_io *io = NULL;
	set_faults("eio@1,frobnicate@2");
	ck_assert_int_eq(ab_io_create(&cfg, &io, NULL), AB_EINVAL);
	ck_assert_ptr_null(io);
	ck_assert_contains(ab_last_error(), "frobnicate@2");
	set_faults("eio@1");
	ck_assert_int_eq(ab_io_create(&cfg, &io, NULL), 0);
	ck_assert_int_eq(ab_io_kind_of(io), AB_IO_PREAD);
	ck_assert_str_eq(ab_io_name(io), "pread");
	ck_assert_uint_eq(ab_io_queue_depth(io), 8);
	ck_assert_contains(ab_io_describe(io), "faults eio@1");
	ab_io_destroy(io);
	set_faults(NULL);
}
END_TEST

#define IO_FILE_BLOCKS 8
#define IO_BLOCK 4096

static uint8_t io_byte(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 12) * 7);
}

static void *reap_from_other_thread(void *arg)
{
	ab_io_req *done[1];
	return (void *)(intptr_t)ab_io_reap(arg, done, 1, 0);
}

/* The wrapper on its own, request by request: each fault hits exactly the
 * numbered read, the others are untouched, and the wrapper keeps the rules
 * of a backend (one driving thread). _i: 0 io_uring (or fallback), 1 pread. */
START_TEST(test_wrapper_requests)
{
	char path[700];
	snprintf(path, sizeof path, "%s/blocks.bin", dir);
	static uint8_t content[IO_FILE_BLOCKS * IO_BLOCK];
	for (size_t i = 0; i < sizeof content; i++)
		content[i] = io_byte(i);
	put(dir, "blocks.bin", content, sizeof content);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);

	set_faults("eio@2,short@3,corrupt@4:10,delay@5:150ms,short@7:100");
	ab_io_config cfg = { .kind = _i ? AB_IO_PREAD : AB_IO_URING, .queue_depth = 16, .threads = 2 };
	ab_io *io;
	ck_assert_msg(ab_io_create(&cfg, &io, NULL) == 0, "%s", ab_last_error());
	static uint8_t bufs[IO_FILE_BLOCKS][IO_BLOCK];
	ab_io_req reqs[IO_FILE_BLOCKS], *ptrs[IO_FILE_BLOCKS];
	for (int k = 0; k < IO_FILE_BLOCKS; k++) {
		memset(&reqs[k], 0, sizeof reqs[k]);
		reqs[k].fd = fd;
		reqs[k].offset = (uint64_t)k * IO_BLOCK;
		reqs[k].len = IO_BLOCK;
		reqs[k].buf = bufs[k];
		reqs[k].buf_index = -1;
		ptrs[k] = &reqs[k];
	}
	/* Two submissions: the count runs across calls. */
	uint64_t t0 = ab_now_ns();
	ck_assert_int_eq(ab_io_submit(io, ptrs, 3), 3);
	ck_assert_int_eq(ab_io_submit(io, ptrs + 3, IO_FILE_BLOCKS - 3), IO_FILE_BLOCKS - 3);
	ck_assert_uint_eq(ab_io_inflight(io), IO_FILE_BLOCKS);

	/* Another thread may not drive this backend, wrapped or not. */
	pthread_t th;
	void *other;
	ck_assert_int_eq(pthread_create(&th, NULL, reap_from_other_thread, io), 0);
	pthread_join(th, &other);
	ck_assert_int_eq((int)(intptr_t)other, AB_EINVAL);

	ab_io_req *done[IO_FILE_BLOCKS];
	unsigned got = 0, before_delay = 0;
	while (got < IO_FILE_BLOCKS) {
		int n = ab_io_reap(io, done + got, IO_FILE_BLOCKS - got, 1);
		ck_assert_int_gt(n, 0);
		for (int k = 0; k < n; k++)
			if (done[got + (unsigned)k] != &reqs[4])
				before_delay++;
			else
				ck_assert_uint_ge(ab_now_ns() - t0, 150000000ull);
		got += (unsigned)n;
	}
	/* The delayed read came back last: everything else was quick. */
	ck_assert_ptr_eq(done[IO_FILE_BLOCKS - 1], &reqs[4]);
	ck_assert_uint_eq(before_delay, IO_FILE_BLOCKS - 1);
	ck_assert_uint_ge(reqs[4].complete_ns - reqs[4].submit_ns, 150000000ull);
	ck_assert_uint_eq(ab_io_inflight(io), 0);

	for (int k = 0; k < IO_FILE_BLOCKS; k++) {
		const uint8_t *want = content + (size_t)k * IO_BLOCK;
		switch (k + 1) {
		case 2:
			ck_assert_int_eq(reqs[k].result, -EIO);
			break;
		case 3:
			ck_assert_int_eq(reqs[k].result, IO_BLOCK / 2);
			ck_assert(memcmp(bufs[k], want, IO_BLOCK / 2) == 0);
			break;
		case 4:
			ck_assert_int_eq(reqs[k].result, IO_BLOCK);
			ck_assert_uint_eq(bufs[k][10], (uint8_t)(want[10] ^ 0xFF));
			bufs[k][10] ^= 0xFF;
			ck_assert(memcmp(bufs[k], want, IO_BLOCK) == 0);
			break;
		case 7:
			ck_assert_int_eq(reqs[k].result, 100);
			break;
		default:
			ck_assert_int_eq(reqs[k].result, IO_BLOCK);
			ck_assert(memcmp(bufs[k], want, IO_BLOCK) == 0);
		}
	}
	/* Faults fire once: the same requests again come back clean. */
	ck_assert_int_eq(ab_io_submit(io, ptrs, IO_FILE_BLOCKS), IO_FILE_BLOCKS);
	for (got = 0; got < IO_FILE_BLOCKS;) {
		int n = ab_io_reap(io, done, IO_FILE_BLOCKS, IO_FILE_BLOCKS - got);
		ck_assert_int_gt(n, 0);
		got += (unsigned)n;
	}
	for (int k = 0; k < IO_FILE_BLOCKS; k++)
		ck_assert_int_eq(reqs[k].result, IO_BLOCK);

	/* Destroy with a delayed read still held and others in flight. */
	set_faults("delay@1:50ms");
	ab_io *io2;
	ck_assert_int_eq(ab_io_create(&cfg, &io2, NULL), 0);
	ck_assert_int_eq(ab_io_submit(io2, ptrs, IO_FILE_BLOCKS), IO_FILE_BLOCKS);
	ck_assert_int_ge(ab_io_reap(io2, done, IO_FILE_BLOCKS, 1), 1);
	ab_io_destroy(io2);
	ab_io_destroy(io);
	close(fd);
	set_faults(NULL);
}
END_TEST

/* ------------------------------------------------------------ the loader */

/* The rows handed out before an error are right, and there are fewer than
 * a whole epoch. */
static void check_partial(const epoch_result *r)
{
	ck_assert_uint_eq(r->bad, 0);
	ck_assert_uint_lt(r->rows, NROWS);
}

/* EIO: the read's error reaches the consumer with the file and chunk. */
START_TEST(test_eio)
{
	set_variant(_i);
	epoch_result r;
	/* Sequential dense reads: read N is chunk N-1. */
	run_epoch(dense2, _i, 0, "eio@5", &r);
	ck_assert_msg(r.rc == AB_EIO, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, dense2);
	ck_assert_contains(r.msg, "array 'X'");
	ck_assert_contains(r.msg, "chunk 4.0");
	ck_assert_contains(r.msg, strerror(EIO));
	check_partial(&r);

	/* CSR: read 3 is the first of window 1 (data or indices, chunk 0). */
	run_epoch(csr2, _i, 0, "eio@3", &r);
	ck_assert_msg(r.rc == AB_EIO, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, csr2);
	ck_assert_contains(r.msg, "array 'X/");
	ck_assert_contains(r.msg, "chunk 0");
	check_partial(&r);

	/* Shuffled, the very first read. */
	run_epoch(csr2, _i, 1, "eio@1", &r);
	ck_assert_msg(r.rc == AB_EIO, "rc %d: %s", r.rc, r.msg);
	ck_assert_uint_eq(r.batches, 0);
}
END_TEST

/* A short read is a truncated chunk: an error naming it, never data. */
START_TEST(test_short)
{
	set_variant(_i);
	epoch_result r;
	const char *specs[] = { "short@5", "short@5:0", "short@5:255" };
	for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
		run_epoch(dense2, _i, 0, specs[k], &r);
		ck_assert_msg(r.rc == AB_ECORRUPT || r.rc == AB_EIO, "%s: rc %d: %s", specs[k], r.rc, r.msg);
		ck_assert_contains(r.msg, dense2);
		ck_assert_contains(r.msg, "chunk 4.0");
		check_partial(&r);
	}
	run_epoch(csr2, _i, 1, "short@4", &r);
	ck_assert_msg(r.rc == AB_ECORRUPT || r.rc == AB_EIO, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, csr2);
	ck_assert_contains(r.msg, "chunk ");
	check_partial(&r);
	/* The same chunk on v3: the truncation, not a checksum, is reported. */
	run_epoch(crc3, _i, 0, "short@2", &r);
	ck_assert_msg(r.rc == AB_ECORRUPT || r.rc == AB_EIO, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, "c/1/0");
	check_partial(&r);
}
END_TEST

/* Bytes flipped after a good read: the crc32c catches them. */
START_TEST(test_corrupt)
{
	set_variant(_i);
	epoch_result r;
	run_epoch(crc3, _i, 0, "corrupt@4", &r);
	ck_assert_msg(r.rc == AB_ECORRUPT, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, "crc32c");
	ck_assert_contains(r.msg, crc3);
	ck_assert_contains(r.msg, "chunk c/3/0");
	check_partial(&r);
	/* The checksum itself (last 4 bytes of the chunk file) spoiled. */
	run_epoch(crc3, _i, 1, "corrupt@2:258", &r);
	ck_assert_msg(r.rc == AB_ECORRUPT, "rc %d: %s", r.rc, r.msg);
	ck_assert_contains(r.msg, "crc32c");
	check_partial(&r);
	/* Unspoiled, the same store reads whole and right. */
	run_epoch(crc3, _i, 1, NULL, &r);
	ck_assert_msg(r.rc == AB_END, "rc %d: %s", r.rc, r.msg);
	ck_assert_uint_eq(r.rows, NROWS);
	ck_assert_uint_eq(r.bad, 0);
}
END_TEST

/* A slow read changes nothing but the time. */
START_TEST(test_delay)
{
	set_variant(_i);
	const char *stores[] = { dense2, csr2, crc3 };
	for (size_t s = 0; s < 3; s++) {
		epoch_result plain, slow;
		run_epoch(stores[s], _i, 1, NULL, &plain);
		ck_assert_msg(plain.rc == AB_END, "rc %d: %s", plain.rc, plain.msg);
		ck_assert_uint_eq(plain.rows, NROWS);
		ck_assert_uint_eq(plain.bad, 0);
		/* The first read of the epoch held longest: later windows finish
		 * first and must wait their turn. */
		run_epoch(stores[s], _i, 1, "delay@1:60ms,delay@3:20ms,delay@4:1ms,delay@7:30ms", &slow);
		ck_assert_msg(slow.rc == AB_END, "rc %d: %s", slow.rc, slow.msg);
		ck_assert_uint_eq(slow.bad, 0);
		ck_assert_uint_eq(slow.batches, plain.batches);
		ck_assert_uint_eq(slow.digest, plain.digest);
	}
}
END_TEST

/* Destroy at awkward moments: right after start with reads held back, with
 * a batch held mid-epoch (released first, as the API asks), and right after
 * an error; then a loader whose epoch failed starts a clean one. */
START_TEST(test_destroy_and_recover)
{
	set_variant(_i);
	set_faults("delay@1:200ms,delay@2:100ms");
	ab_loader *ld = make_loader(csr2, _i, 1);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_loader_destroy(ld);

	ld = make_loader(dense2, _i, 1);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ab_batch *b;
	ck_assert_int_eq(ab_loader_next(ld, &b), 0);
	ab_batch_release(b);
	ab_loader_destroy(ld);

	set_faults("eio@2");
	ld = make_loader(dense2, _i, 0);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	epoch_result r;
	drain(ld, &r);
	ck_assert_int_eq(r.rc, AB_EIO);
	/* The error stays: asking again gives it again, without blocking. */
	ck_assert_int_eq(ab_loader_next(ld, &b), AB_EIO);
	ck_assert_ptr_null(b);
	ck_assert_contains(ab_last_error(), "chunk 1.0");
	/* The count restarts with every epoch's backend: the fault again. */
	ck_assert_int_eq(ab_loader_start(ld, 1), 0);
	drain(ld, &r);
	ck_assert_int_eq(r.rc, AB_EIO);
	/* Without faults the same loader runs a whole, right epoch. */
	set_faults(NULL);
	ck_assert_int_eq(ab_loader_start(ld, 2), 0);
	drain(ld, &r);
	ck_assert_msg(r.rc == AB_END, "rc %d: %s", r.rc, r.msg);
	ck_assert_uint_eq(r.rows, NROWS);
	ck_assert_uint_eq(r.bad, 0);
	/* And an error again, then destroy straight away. */
	set_faults("corrupt@1");
	ab_loader_destroy(ld);
	ld = make_loader(crc3, _i, 1);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	ck_assert_int_eq(ab_loader_next(ld, &b), AB_ECORRUPT);
	ab_loader_destroy(ld);
	set_faults(NULL);
}
END_TEST

/* The next epoch is read ahead while the consumers finish the current one:
 * a failure there is not the current epoch's. eio@2~2 fails the second read
 * of the second epoch run, whether it is made ahead of ab_loader_start (the
 * reading ahead then ends, and the start reads the epoch afresh: the third
 * run) or after (the start took the epoch over). Epoch 0 is whole and the
 * same either way. With eio@2~3 as well, epoch 1 fails both ways. Then the
 * same loader runs a clean epoch. */
START_TEST(test_read_ahead_faults)
{
	set_variant(_i);
	const char *stores[] = { dense2, csr2, crc3 };
	for (size_t s = 0; s < 3; s++) {
		epoch_result plain0, plain1, r;
		set_faults(NULL);
		ab_loader *ld = make_loader(stores[s], _i, 1);
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		drain(ld, &plain0);
		ck_assert_int_eq(ab_loader_start(ld, 1), 0);
		drain(ld, &plain1);
		ab_loader_destroy(ld);
		ck_assert_int_eq(plain0.rc, AB_END);
		ck_assert_int_eq(plain1.rc, AB_END);
		for (int both = 0; both < 2; both++) {
			set_faults(both ? "eio@2~2,eio@2~3" : "eio@2~2");
			ld = make_loader(stores[s], _i, 1);
			ck_assert_int_eq(ab_loader_start(ld, 0), 0);
			/* slow enough that the next epoch is read while this one
			 * is consumed */
			drain_hold_us = 3000;
			drain(ld, &r);
			drain_hold_us = 0;
			ck_assert_msg(r.rc == AB_END, "store %zu: epoch 0 got the next epoch's fault: rc %d: %s", s, r.rc,
				      r.msg);
			ck_assert_uint_eq(r.rows, NROWS);
			ck_assert_uint_eq(r.bad, 0);
			ck_assert_uint_eq(r.digest, plain0.digest);
			/* without the second fault: time for the reading ahead to
			 * meet the first before the start */
			if (!both)
				usleep(100000);
			ck_assert_int_eq(ab_loader_start(ld, 1), 0);
			drain(ld, &r);
			ck_assert_uint_eq(r.bad, 0);
			if (both) {
				ck_assert_msg(r.rc == AB_EIO, "store %zu: rc %d: %s", s, r.rc, r.msg);
				ck_assert_contains(r.msg, strerror(EIO));
			} else {
				ck_assert_msg(r.rc == AB_END || r.rc == AB_EIO, "store %zu: rc %d: %s", s, r.rc, r.msg);
				if (r.rc == AB_END)
					ck_assert_uint_eq(r.digest, plain1.digest);
			}
			set_faults(NULL);
			ck_assert_int_eq(ab_loader_start(ld, 1), 0);
			drain(ld, &r);
			ck_assert_msg(r.rc == AB_END, "rc %d: %s", r.rc, r.msg);
			ck_assert_uint_eq(r.digest, plain1.digest);
			ab_loader_destroy(ld);
		}
	}
	set_faults(NULL);
}
END_TEST

/* Registered read buffers (read_buffers.c): a window struct's arena goes
 * into its slot once its first window's reads are in, and the windows after
 * it read into it with read_fixed. Three epochs with max_windows 2 (two
 * slots) and every window's values checked: with each registration made,
 * with none (regfail@1: the first is refused), and with the second refused
 * (registrations stop there, the windows without one read into ordinary
 * buffers), the batches are the same, and the stats count the buffers
 * registered and say why the rest are not. With the pread pool nothing is
 * registered. The shuffled windows of csr2 and crc3 need more bytes than the
 * first one did, so arenas are also replaced (their slot emptied first) and
 * registered again. */
START_TEST(test_registered_buffers)
{
	set_variant(_i);
	const char *stores[] = { dense2, csr2, crc3 };
	const char *faults[] = { NULL, "regfail@1", "regfail@2" };
	for (size_t s = 0; s < 3; s++) {
		uint64_t want[3] = { 0 };
		for (size_t f = 0; f < 3; f++) {
			set_faults(faults[f]);
			ab_loader *ld = make_loader(stores[s], _i, 1);
			for (uint64_t e = 0; e < 3; e++) {
				epoch_result r;
				ck_assert_msg(ab_loader_start(ld, e) == 0, "start: %s", ab_last_error());
				drain(ld, &r);
				ck_assert_msg(r.rc == AB_END, "store %zu, %s, epoch %llu: rc %d: %s", s,
					      faults[f] ? faults[f] : "no faults", (unsigned long long)e, r.rc, r.msg);
				ck_assert_uint_eq(r.rows, NROWS);
				ck_assert_uint_eq(r.bad, 0);
				if (f == 0)
					want[e] = r.digest;
				else
					ck_assert_msg(r.digest == want[e], "store %zu, %s, epoch %llu: other batches", s,
						      faults[f], (unsigned long long)e);
			}
			ab_loader_stats st;
			ck_assert_int_eq(ab_loader_get_stats(ld, &st), 0);
			if (strcmp(st.backend, "uring") != 0) {
				ck_assert_int_eq(st.registered_buffers, 0);
				ck_assert_ptr_null(strstr(st.note, "registered"));
			} else if (f == 0) {
				/* both slots: each window struct's reads were in */
				ck_assert_msg(st.registered_buffers == 2, "store %zu: %d registered buffers (%s)", s,
					      st.registered_buffers, st.note);
				ck_assert_ptr_null(strstr(st.note, "registered"));
			} else {
				/* regfail@2 meets the second slot's buffer, or the
				 * first slot's again when a window outgrew its arena
				 * (these stores have such windows): one or none */
				ck_assert_int_le(st.registered_buffers, (int)f - 1);
				ck_assert_contains(st.note, "registration refused");
				ck_assert_contains(st.note, faults[f]);
			}
			ab_loader_destroy(ld);
		}
	}
	set_faults(NULL);
}
END_TEST

typedef struct consumer {
	ab_loader *ld;
	epoch_result res;
} consumer;

static void *consume(void *arg)
{
	consumer *c = arg;
	drain(c->ld, &c->res);
	return NULL;
}

/* Several consumer threads blocked in ab_loader_next when a read fails:
 * every one of them wakes with the error, none hangs, none gets bad data.
 * And queue depths of 1 and 2, where a held (delayed) read occupies the
 * whole queue: the batches still come, the same ones. */
START_TEST(test_consumers_and_depth)
{
	set_variant(_i);
	set_faults("delay@2:80ms,eio@6");
	ab_loader *ld = make_loader(dense2, _i, 1);
	ck_assert_int_eq(ab_loader_start(ld, 0), 0);
	consumer cs[4];
	pthread_t th[4];
	for (int k = 0; k < 4; k++) {
		cs[k].ld = ld;
		ck_assert_int_eq(pthread_create(&th[k], NULL, consume, &cs[k]), 0);
	}
	uint64_t rows = 0;
	for (int k = 0; k < 4; k++) {
		pthread_join(th[k], NULL);
		ck_assert_msg(cs[k].res.rc == AB_EIO, "consumer %d: rc %d: %s", k, cs[k].res.rc, cs[k].res.msg);
		ck_assert_contains(cs[k].res.msg, "chunk ");
		ck_assert_uint_eq(cs[k].res.bad, 0);
		rows += cs[k].res.rows;
	}
	ck_assert_uint_lt(rows, NROWS);
	ab_loader_destroy(ld);

	epoch_result plain, slow;
	run_epoch(csr2, _i, 1, NULL, &plain);
	ck_assert_int_eq(plain.rc, AB_END);
	for (unsigned qd = 1; qd <= 2; qd++) {
		set_faults("delay@1:30ms,delay@2:10ms,delay@5:20ms");
		ab_loader_config cfg;
		ab_loader_config_init(&cfg);
		cfg.batch_size = 8;
		cfg.chunk_size = CHUNK_ROWS;
		cfg.preload_nchunks = 2;
		cfg.shuffle = 1;
		cfg.seed = 3;
		cfg.rank = 0;
		cfg.world_size = 1;
		cfg.threads = (_i & 2) ? 4 : 1;
		cfg.io_mode = (_i & 4) ? AB_IO_MODE_DIRECT : AB_IO_MODE_BUFFERED;
		cfg.max_windows = 2;
		cfg.queue_depth = qd;
		ck_assert_int_eq(ab_loader_create(&cfg, &ld), 0);
		ck_assert_int_eq(ab_loader_add_anndata(ld, csr2), 0);
		ck_assert_int_eq(ab_loader_start(ld, 0), 0);
		drain(ld, &slow);
		ab_loader_destroy(ld);
		ck_assert_msg(slow.rc == AB_END, "depth %u: rc %d: %s", qd, slow.rc, slow.msg);
		ck_assert_uint_eq(slow.bad, 0);
		ck_assert_uint_eq(slow.digest, plain.digest);
	}
	set_faults(NULL);
}
END_TEST

/* ------------------------------------------------------------ ceilings */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own */
}

/* Open files do not grow with epochs: whole ones, abandoned ones, failed
 * ones; and the loader leaves none behind. A finished epoch goes on reading
 * the next one ahead (with the chunk files of its reads open), so files are
 * counted after ab_loader_stop, when nothing is read; the epochs run both
 * ways: stopped after each, and one after the other (each start taking over
 * the epoch read ahead). */
START_TEST(test_fds_per_epoch)
{
	set_variant(_i);
	const char *stores[] = { dense2, csr2, crc3 };
	for (size_t s = 0; s < 3; s++) {
		int before = count_fds();
		ab_loader *ld = make_loader(stores[s], _i, 1);
		epoch_result r;
		int after_first = -1;
		for (uint64_t e = 0; e < 6; e++) {
			ck_assert_int_eq(ab_loader_start(ld, e), 0);
			drain(ld, &r);
			ck_assert_int_eq(r.rc, AB_END);
			ck_assert_uint_eq(r.rows, NROWS);
			ab_loader_stop(ld);
			int now = count_fds();
			if (e == 0)
				after_first = now;
			ck_assert_msg(now == after_first, "epoch %llu: %d fds open, %d after the first",
				      (unsigned long long)e, now, after_first);
		}
		for (uint64_t e = 0; e < 6; e++) {
			ck_assert_int_eq(ab_loader_start(ld, e), 0);
			drain(ld, &r);
			ck_assert_int_eq(r.rc, AB_END);
			ck_assert_uint_eq(r.rows, NROWS);
		}
		ab_loader_stop(ld);
		ck_assert_int_eq(count_fds(), after_first);
		/* Abandoned mid-epoch, and failed, several times each. */
		for (uint64_t e = 6; e < 10; e++) {
			ab_batch *b;
			set_faults(e % 2 ? "eio@3" : NULL);
			ck_assert_int_eq(ab_loader_start(ld, e), 0);
			int rc = ab_loader_next(ld, &b);
			if (rc == 0)
				ab_batch_release(b);
		}
		set_faults(NULL);
		ck_assert_int_eq(ab_loader_start(ld, 10), 0);
		drain(ld, &r);
		ck_assert_int_eq(r.rc, AB_END);
		ab_loader_stop(ld);
		ck_assert_int_eq(count_fds(), after_first);
		ab_loader_destroy(ld);
		ck_assert_int_eq(count_fds(), before);
	}
}
END_TEST

int main(void)
{
	make_stores();
	Suite *s = suite_create("faults");
	TCase *t = tcase_create("wrapper");
	tcase_set_timeout(t, 30);
	tcase_add_test(t, test_parse);
	tcase_add_loop_test(t, test_wrapper_requests, 0, 2);
	suite_add_tcase(s, t);
	t = tcase_create("loader");
	tcase_set_timeout(t, 60);
	tcase_add_loop_test(t, test_eio, 0, 8);
	tcase_add_loop_test(t, test_short, 0, 8);
	tcase_add_loop_test(t, test_corrupt, 0, 8);
	tcase_add_loop_test(t, test_delay, 0, 8);
	tcase_add_loop_test(t, test_destroy_and_recover, 0, 8);
	tcase_add_loop_test(t, test_consumers_and_depth, 0, 8);
	tcase_add_loop_test(t, test_read_ahead_faults, 0, 8);
	tcase_add_loop_test(t, test_registered_buffers, 0, 8);
	suite_add_tcase(s, t);
	t = tcase_create("ceilings");
	tcase_set_timeout(t, 60);
	tcase_add_loop_test(t, test_fds_per_epoch, 0, 8);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_stores();
	return failed ? 1 : 0;
}
