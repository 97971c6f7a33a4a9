/* test_io.c - unit tests of the I/O backend (engine/io*.c): the io_uring
 * ring and the pread pool, run through the same cases against files whose
 * every byte is known (byte i = pat(i)), plus the O_DIRECT alignment query
 * and the fallback rules. Loop tests run each case with _i = 0 (io_uring;
 * a fallback to pread is reported and tolerated, so the suite also passes
 * where io_uring is disabled) and _i = 1 (pread). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "annbatch.h"
#include "io.h"
#include "io_impl.h"

/* ------------------------------------------------------------ fixtures */

/* An end of file that is not block aligned (direct reads end short and
 * unaligned there) and one that is (the short read is aligned and the
 * backend must read on to see the 0 that marks the end). */
#define DATA_SIZE ((uint64_t)3 * 1024 * 1024 + 1000)
#define ALIGNED_SIZE ((uint64_t)1024 * 1024 + 4096)

static char dir[512];
static char data_path[600];
static char aligned_path[600];

static uint8_t pat(uint64_t i)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 56);
}

/* Is every byte of buf[0..n) the file's byte at off + k? */
static int matches(const void *buf, uint64_t off, uint64_t n)
{
	const uint8_t *b = buf;
	for (uint64_t k = 0; k < n; k++)
		if (b[k] != pat(off + k))
			return 0;
	return 1;
}

static void write_pattern(const char *path, uint64_t size)
{
	/* Runs before the suite, outside any test: plain checks. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	static uint8_t chunk[65536];
	for (uint64_t off = 0; off < size; off += sizeof chunk) {
		uint64_t n = size - off < sizeof chunk ? size - off : sizeof chunk;
		for (uint64_t k = 0; k < n; k++)
			chunk[k] = pat(off + k);
		if (pwrite(fd, chunk, n, (off_t)off) != (ssize_t)n) {
			perror(path);
			exit(1);
		}
	}
	if (close(fd) != 0) {
		perror(path);
		exit(1);
	}
}

/* O_DIRECT needs a real file system: /var/tmp, else the current directory;
 * tmpfs is skipped (it refuses O_DIRECT on older kernels). */
static void make_files(void)
{
	const char *cands[] = {getenv("AB_TEST_DIR"), "/var/tmp", "."};
	const char *base = "/var/tmp";
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		struct statfs sf;
		if (cands[i] && statfs(cands[i], &sf) == 0 && sf.f_type != TMPFS_MAGIC &&
		    access(cands[i], W_OK) == 0) {
			base = cands[i];
			break;
		}
	}
	snprintf(dir, sizeof dir, "%s/ab-test-io-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(data_path, sizeof data_path, "%s/data.bin", dir);
	snprintf(aligned_path, sizeof aligned_path, "%s/aligned.bin", dir);
	write_pattern(data_path, DATA_SIZE);
	write_pattern(aligned_path, ALIGNED_SIZE);
}

static void remove_files(void)
{
	unlink(data_path);
	unlink(aligned_path);
	rmdir(dir);
}

/* ------------------------------------------------------------ helpers */

static uint64_t rng = 0x12345678abcdefull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* _i = 0: io_uring (or its fallback), _i = 1: the pread pool. */
static ab_io *open_backend(int which, unsigned depth, unsigned threads)
{
	ab_io_config cfg = {.kind = which == 0 ? AB_IO_URING : AB_IO_PREAD,
			    .queue_depth = depth,
			    .threads = threads};
	ab_io *io = NULL;
	const char *why = "unset";
	ck_assert_msg(ab_io_create(&cfg, &io, &why) == 0, "create: %s", ab_last_error());
	ck_assert_ptr_nonnull(io);
	ck_assert_uint_eq(ab_io_queue_depth(io), depth);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	if (which == 1) {
		ck_assert_ptr_null(why);
		ck_assert_int_eq(ab_io_kind_of(io), AB_IO_PREAD);
		ck_assert_str_eq(ab_io_name(io), "pread");
	} else if (ab_io_kind_of(io) == AB_IO_URING) {
		ck_assert_ptr_null(why);
		ck_assert_str_eq(ab_io_name(io), "uring");
	} else {
		ck_assert_ptr_nonnull(why);
		printf("note: io_uring fell back: %s\n", why);
	}
	return io;
}

static void set_req(ab_io_req *r, int fd, uint64_t off, uint32_t len, void *buf)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->offset = off;
	r->len = len;
	r->buf = buf;
	r->buf_index = -1;
	r->result = 12345; /* must be overwritten */
}

/* What a read of [off, off + len) of a file of `size` bytes returns. */
static int64_t expect(uint64_t size, uint64_t off, uint32_t len)
{
	if (off >= size)
		return 0;
	return (int64_t)(size - off < len ? size - off : len);
}

/* Submits all n (as many per call as fit), reaps all, checks the depth is
 * respected throughout and each request comes back exactly once. */
static void run_all(ab_io *io, ab_io_req **reqs, unsigned n)
{
	unsigned next = 0, back = 0, depth = ab_io_queue_depth(io);
	ab_io_req **done = calloc(n ? n : 1, sizeof *done);
	ck_assert_ptr_nonnull(done);
	while (back < n) {
		if (next < n) {
			int q = ab_io_submit(io, reqs + next, n - next);
			ck_assert_msg(q >= 0, "submit: %s", ab_last_error());
			next += (unsigned)q;
		}
		ck_assert_uint_le(ab_io_inflight(io), depth);
		ck_assert_uint_eq(ab_io_inflight(io), next - back);
		int got = ab_io_reap(io, done, n, 1);
		ck_assert_msg(got >= 1, "reap: %d %s", got, ab_last_error());
		for (int k = 0; k < got; k++) {
			ck_assert_int_ne(done[k]->result, 12345);
			ck_assert_ptr_null(done[k]->user); /* handed out once */
			done[k]->user = (void *)1;
		}
		back += (unsigned)got;
	}
	for (unsigned k = 0; k < n; k++)
		ck_assert_msg(reqs[k]->user == (void *)1, "request %u not reaped", k);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	free(done);
}

/* ------------------------------------------------------------ common */

START_TEST(test_now_monotonic)
{
	uint64_t a = ab_now_ns(), b = ab_now_ns();
	ck_assert_uint_gt(a, 0);
	ck_assert_uint_le(a, b);
}
END_TEST

START_TEST(test_resume_rule)
{
	static char big[8192] __attribute__((aligned(4096)));
	ab_io_req r;
	set_req(&r, 0, 4096 * 3, 8192, big);
	ck_assert_int_eq(ab_io_resume_ok(&r, 100), 1);  /* buffered: always */
	ck_assert_int_eq(ab_io_resume_ok(&r, 8192), 0); /* nothing left */
	r.direct = 1;
	ck_assert_int_eq(ab_io_resume_ok(&r, 4096), 1); /* still aligned */
	ck_assert_int_eq(ab_io_resume_ok(&r, 100), 0);  /* unaligned: the end */
	ck_assert_int_eq(ab_io_resume_ok(&r, 512), 0);  /* finer than promised */
	r.offset = 512;                                 /* caller aligned to 512 */
	ck_assert_int_eq(ab_io_resume_ok(&r, 1024), 1);
}
END_TEST

START_TEST(test_create_args)
{
	ab_io *io = (ab_io *)1;
	const char *why = "unset";
	ab_io_config bad_kind = {.kind = 7};
	ck_assert_int_eq(ab_io_create(&bad_kind, &io, &why), AB_EINVAL);
	ck_assert_ptr_null(io);
	ck_assert_ptr_null(why);
	ab_io_config deep = {.kind = AB_IO_PREAD, .queue_depth = AB_IO_MAX_DEPTH + 1};
	ck_assert_int_eq(ab_io_create(&deep, &io, NULL), AB_EINVAL);
	ck_assert_int_eq(ab_io_create(NULL, NULL, NULL), AB_EINVAL);

	/* NULL config: the defaults (io_uring where possible, depth 64). */
	ck_assert_int_eq(ab_io_create(NULL, &io, &why), 0);
	ck_assert_uint_eq(ab_io_queue_depth(io), 64);
	printf("default backend: %s%s%s\n", ab_io_describe(io), why ? " - " : "", why ? why : "");
	ab_io_destroy(io);
	ab_io_destroy(NULL);
}
END_TEST

START_TEST(test_force_pread)
{
	ab_io_config cfg = {.kind = AB_IO_URING, .queue_depth = 8};
	ab_io *io = NULL;
	const char *why = NULL;

	ck_assert_int_eq(setenv("AB_IO_FORCE_PREAD", "1", 1), 0);
	ck_assert_int_eq(ab_io_create(&cfg, &io, &why), 0);
	ck_assert_int_eq(ab_io_kind_of(io), AB_IO_PREAD);
	ck_assert_str_eq(ab_io_name(io), "pread");
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "pread"));
	ck_assert_ptr_nonnull(strstr(ab_io_describe(io), "fallback"));
	ab_io_destroy(io);

	/* "0" does not force anything; asking for pread is not a fallback. */
	ck_assert_int_eq(setenv("AB_IO_FORCE_PREAD", "0", 1), 0);
	ck_assert_int_eq(ab_io_create(&cfg, &io, &why), 0);
	if (ab_io_kind_of(io) == AB_IO_URING)
		ck_assert_ptr_null(why);
	ab_io_destroy(io);
	cfg.kind = AB_IO_PREAD;
	ck_assert_int_eq(setenv("AB_IO_FORCE_PREAD", "1", 1), 0);
	ck_assert_int_eq(ab_io_create(&cfg, &io, &why), 0);
	ck_assert_ptr_null(why);
	ab_io_destroy(io);
	unsetenv("AB_IO_FORCE_PREAD");
}
END_TEST

/* A container that forbids io_uring: a seccomp filter makes io_uring_setup
 * fail with EPERM, ENOSYS, EINVAL or ENOMEM (_i = 0..3), in a child process
 * so the filter dies with it. The pread pool must take over, say why, and
 * read. */
static int block_syscall(unsigned nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -1;
	return 0;
}

/* Runs fn(arg) in a child process and checks it returned 0. */
static void in_child(int (*fn)(int), int arg)
{
	fflush(stdout);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(arg));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}

static const int setup_errs[] = {EPERM, ENOSYS, EINVAL, ENOMEM};
static const char *const setup_err_names[] = {"EPERM", "ENOSYS", "EINVAL", "ENOMEM"};

static int blocked_child(int which)
{
	int err = setup_errs[which];
	if (block_syscall(__NR_io_uring_setup, err)) {
		printf("note: cannot install a seccomp filter here (%s); skipped\n", strerror(errno));
		fflush(stdout);
		return 0;
	}
	ab_io_config cfg = {.kind = AB_IO_URING, .queue_depth = 4, .threads = 1};
	ab_io *io;
	const char *why = NULL;
	if (ab_io_create(&cfg, &io, &why) != 0)
		return 11;
	if (ab_io_kind_of(io) != AB_IO_PREAD || !why)
		return 12;
	/* With kernel.io_uring_disabled=2 the sysctl is the reason given. */
	if (!strstr(why, setup_err_names[which]) && !strstr(why, "io_uring_disabled=2"))
		return 13;
	printf("seccomp %s: %s\n", setup_err_names[which], why);
	fflush(stdout);
	int fd = open(data_path, O_RDONLY);
	char b[100];
	ab_io_req r, *rp = &r, *d;
	set_req(&r, fd, 5, sizeof b, b);
	if (ab_io_submit(io, &rp, 1) != 1 || ab_io_reap(io, &d, 1, 1) != 1)
		return 14;
	if (r.result != 100 || !matches(b, 5, 100))
		return 15;
	ab_io_destroy(io);
	close(fd);
	return 0;
}

START_TEST(test_seccomp_fallback)
{
	in_child(blocked_child, _i);
}
END_TEST

/* Without statx (kernel < 4.11, or filtered): the logical block size of the
 * device from sysfs, else 4096; memory page aligned. */
static int no_statx_child(int unused)
{
	(void)unused;
	if (block_syscall(__NR_statx, ENOSYS))
		return 10;
	int fd = open(data_path, O_RDONLY);
	uint32_t mem = 0, off = 0;
	if (fd < 0 || ab_io_dio_alignment(fd, &mem, &off) != 0)
		return 11;
	printf("without statx: memory %u, offset %u\n", mem, off);
	fflush(stdout);
	if (mem != 4096 || off < 512 || off > 4096 || (off & (off - 1)))
		return 12;
	close(fd);
	return 0;
}

START_TEST(test_dio_alignment_no_statx)
{
	in_child(no_statx_child, 0);
}
END_TEST

START_TEST(test_dio_alignment)
{
	uint32_t mem = 0, off = 0;
	int fd = open(data_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	int st = ab_io_dio_alignment(fd, &mem, &off);
	if (st == AB_EUNSUPPORTED) {
		printf("note: no O_DIRECT on %s: %s\n", dir, ab_last_error());
	} else {
		ck_assert_msg(st == 0, "%s", ab_last_error());
		printf("O_DIRECT alignment on %s: memory %u, offset %u\n", dir, mem, off);
		ck_assert_uint_gt(mem, 0);
		ck_assert_uint_gt(off, 0);
		ck_assert_uint_eq(mem & (mem - 1), 0);
		ck_assert_uint_eq(off & (off - 1), 0);
		ck_assert_uint_le(off, 65536);
	}
	close(fd);
	ck_assert_int_eq(ab_io_dio_alignment(fd, &mem, &off), AB_EINVAL); /* closed */
	ck_assert_int_eq(ab_io_dio_alignment(-1, &mem, &off), AB_EINVAL);
}
END_TEST

/* ------------------------------------------------------------ both backends */

START_TEST(test_random_reads)
{
	enum { N = 300 };
	ab_io *io = open_backend(_i, 16, 4);
	int fd = open(data_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	static ab_io_req req[N];
	ab_io_req *reqs[N];
	for (unsigned k = 0; k < N; k++) {
		/* Mostly inside the file; some cross or start past its end. */
		uint64_t off = rnd() % (DATA_SIZE + 20000);
		uint32_t len = (uint32_t)(rnd() % 65536) + 1;
		set_req(&req[k], fd, off, len, malloc(len));
		ck_assert_ptr_nonnull(req[k].buf);
		reqs[k] = &req[k];
	}
	run_all(io, reqs, N);
	for (unsigned k = 0; k < N; k++) {
		int64_t want = expect(DATA_SIZE, req[k].offset, req[k].len);
		ck_assert_msg(req[k].result == want, "read %u: %lld bytes at %llu: got %lld", k,
			      (long long)req[k].len, (unsigned long long)req[k].offset,
			      (long long)req[k].result);
		ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)want));
		free(req[k].buf);
	}
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_over_depth)
{
	enum { N = 10 };
	ab_io *io = open_backend(_i, 4, 2);
	int fd = open(data_path, O_RDONLY);
	static char bufs[N][4096];
	ab_io_req req[N], *reqs[N], *done[N];
	for (unsigned k = 0; k < N; k++) {
		set_req(&req[k], fd, (uint64_t)k * 10000, 4096, bufs[k]);
		reqs[k] = &req[k];
	}
	/* Asking for 10 with room for 4 queues 4; a full queue takes none. */
	ck_assert_int_eq(ab_io_submit(io, reqs, N), 4);
	ck_assert_uint_eq(ab_io_inflight(io), 4);
	ck_assert_int_eq(ab_io_submit(io, reqs + 4, N - 4), 0);
	ck_assert_int_eq(ab_io_reap(io, done, N, 4), 4);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	ck_assert_int_eq(ab_io_submit(io, reqs + 4, N - 4), 4);
	ck_assert_int_eq(ab_io_reap(io, done, N, 1) >= 1, 1);
	unsigned left = ab_io_inflight(io);
	int q = ab_io_submit(io, reqs + 8, 2);
	ck_assert_int_eq(q, (int)(4 - left < 2 ? 4 - left : 2));
	while (ab_io_inflight(io))
		ck_assert_int_ge(ab_io_reap(io, done, N, 1), 1);
	if (q < 2) {
		ck_assert_int_eq(ab_io_submit(io, reqs + 8 + q, 2 - (unsigned)q), 2 - q);
		while (ab_io_inflight(io))
			ck_assert_int_ge(ab_io_reap(io, done, N, 1), 1);
	}
	for (unsigned k = 0; k < N; k++) {
		ck_assert_int_eq(req[k].result, 4096);
		ck_assert(matches(bufs[k], req[k].offset, 4096));
	}
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_eof)
{
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	static char b[5][8192];
	ab_io_req req[5], *reqs[5];
	set_req(&req[0], fd, DATA_SIZE - 100, 4096, b[0]);  /* crosses the end */
	set_req(&req[1], fd, DATA_SIZE, 10, b[1]);          /* at the end */
	set_req(&req[2], fd, DATA_SIZE + 5000, 10, b[2]);   /* past it */
	set_req(&req[3], fd, 0, 0, NULL);                   /* empty */
	set_req(&req[4], fd, (uint64_t)1 << 50, 8192, b[4]); /* far past */
	for (int k = 0; k < 5; k++)
		reqs[k] = &req[k];
	run_all(io, reqs, 5);
	ck_assert_int_eq(req[0].result, 100);
	ck_assert(matches(b[0], DATA_SIZE - 100, 100));
	ck_assert_int_eq(req[1].result, 0);
	ck_assert_int_eq(req[2].result, 0);
	ck_assert_int_eq(req[3].result, 0);
	ck_assert_int_eq(req[4].result, 0);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_bad_fd)
{
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	int closed = open(data_path, O_RDONLY); /* a number nothing else holds */
	close(closed);
	static char b[4][512];
	ab_io_req req[4], *reqs[4];
	set_req(&req[0], -1, 0, 512, b[0]);
	set_req(&req[1], fd, 512, 512, b[1]); /* a good one among the bad */
	set_req(&req[2], closed, 0, 512, b[2]);
	set_req(&req[3], dfd, 0, 512, b[3]);
	for (int k = 0; k < 4; k++)
		reqs[k] = &req[k];
	run_all(io, reqs, 4);
	ck_assert_int_eq(req[0].result, -EBADF);
	ck_assert_int_eq(req[1].result, 512);
	ck_assert(matches(b[1], 512, 512));
	ck_assert_int_eq(req[2].result, -EBADF);
	ck_assert_int_eq(req[3].result, -EISDIR);
	close(fd);
	close(dfd);
	ab_io_destroy(io);
}
END_TEST

/* A short read in the middle of a request is followed by a read of the rest;
 * here the rest lands on a page that cannot be written, so the request as a
 * whole fails (-EFAULT) instead of coming back short without being at EOF. */
START_TEST(test_short_then_fault)
{
	ab_io *io = open_backend(_i, 4, 1);
	int fd = open(data_path, O_RDONLY);
	long pg = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
	ab_io_req r, *rp = &r;
	set_req(&r, fd, 4096, (uint32_t)pg * 2, map);
	run_all(io, &rp, 1);
	ck_assert_int_eq(r.result, -EFAULT);
	ck_assert(matches(map, 4096, (uint64_t)pg)); /* the first page was read */
	munmap(map, (size_t)pg * 2);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_bad_requests)
{
	ab_io *io = open_backend(_i, 8, 1);
	int fd = open(data_path, O_RDONLY);
	static char b[2][64];
	ab_io_req req[2], *reqs[2] = {&req[0], &req[1]}, *withnull[2] = {&req[0], NULL};
	set_req(&req[0], fd, 0, 64, b[0]);
	set_req(&req[1], fd, 0, 64, NULL); /* no buffer */
	/* All or nothing: the good request is not queued either. */
	ck_assert_int_eq(ab_io_submit(io, reqs, 2), AB_EINVAL);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	ck_assert_int_eq(ab_io_submit(io, withnull, 2), AB_EINVAL);
	req[1].buf = b[1];
	req[1].buf_index = 0; /* nothing registered */
	ck_assert_int_eq(ab_io_submit(io, reqs, 2), AB_EINVAL);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	ck_assert_int_eq(ab_io_submit(io, reqs, 0), 0);
	ck_assert_int_eq(ab_io_submit(io, NULL, 1), AB_EINVAL);
	ck_assert_int_eq(ab_io_reap(io, NULL, 1, 0), AB_EINVAL);
	ck_assert_int_eq(ab_io_reap(io, NULL, 0, 0), 0);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_reap_rules)
{
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	static char b[5][1024];
	ab_io_req req[5], *reqs[5], *done[8];
	/* Nothing in flight: returns at once whatever min_wait says. */
	ck_assert_int_eq(ab_io_reap(io, done, 8, 5), 0);
	for (int k = 0; k < 5; k++) {
		set_req(&req[k], fd, (uint64_t)k * 7777, 1024, b[k]);
		reqs[k] = &req[k];
	}
	ck_assert_int_eq(ab_io_submit(io, reqs, 5), 5);
	/* min_wait above max is max; max bounds what is handed out. */
	ck_assert_int_eq(ab_io_reap(io, done, 2, 100), 2);
	ck_assert_uint_eq(ab_io_inflight(io), 3);
	/* min_wait above what is in flight waits for all of it. */
	ck_assert_int_eq(ab_io_reap(io, done + 2, 8, 100), 3);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	for (int k = 0; k < 5; k++) {
		int seen = 0;
		for (int j = 0; j < 5; j++)
			seen += done[j] == &req[k];
		ck_assert_int_eq(seen, 1);
		ck_assert_int_eq(req[k].result, 1024);
		ck_assert(matches(b[k], req[k].offset, 1024));
	}
	/* min_wait 0 never blocks; keep polling until all are back. */
	ck_assert_int_eq(ab_io_submit(io, reqs, 5), 5);
	unsigned back = 0;
	while (back < 5) {
		int got = ab_io_reap(io, done, 8, 0);
		ck_assert_int_ge(got, 0);
		back += (unsigned)got;
	}
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_latency)
{
	enum { N = 40 };
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	static char b[N][8192];
	ab_io_req req[N], *reqs[N];
	uint64_t t0 = ab_now_ns();
	for (unsigned k = 0; k < N; k++) {
		set_req(&req[k], fd, rnd() % (DATA_SIZE - 8192), 8192, b[k]);
		reqs[k] = &req[k];
	}
	run_all(io, reqs, N);
	uint64_t t1 = ab_now_ns();
	for (unsigned k = 0; k < N; k++) {
		ck_assert_int_eq(req[k].result, 8192);
		ck_assert_uint_ge(req[k].submit_ns, t0);
		ck_assert_uint_le(req[k].submit_ns, req[k].complete_ns);
		ck_assert_uint_le(req[k].complete_ns, t1);
	}
	close(fd);
	ab_io_destroy(io);
}
END_TEST

START_TEST(test_registered_buffers)
{
	enum { NB = 4, BL = 256 * 1024, N = 24 };
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	void *pool[NB];
	size_t lens[NB];
	for (int k = 0; k < NB; k++) {
		ck_assert_int_eq(posix_memalign(&pool[k], 4096, BL), 0);
		lens[k] = BL;
	}
	ck_assert_msg(ab_io_register_buffers(io, pool, lens, NB) == 0, "%s", ab_last_error());
	/* Registering again replaces the table. */
	ck_assert_msg(ab_io_register_buffers(io, pool, lens, NB) == 0, "%s", ab_last_error());
	ab_io_req req[N], *reqs[N];
	for (unsigned k = 0; k < N; k++) {
		int bi = (int)(k % NB);
		uint32_t slot = (k / NB) * 32768; /* a slice of the buffer */
		set_req(&req[k], fd, rnd() % DATA_SIZE, 32768, (char *)pool[bi] + slot);
		req[k].buf_index = bi;
		reqs[k] = &req[k];
	}
	run_all(io, reqs, N);
	for (unsigned k = 0; k < N; k++) {
		int64_t want = expect(DATA_SIZE, req[k].offset, 32768);
		ck_assert_int_eq(req[k].result, want);
		ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)want));
	}

	/* A slice that runs off the end of its buffer, or a bad index. */
	ab_io_req bad, *bp = &bad;
	set_req(&bad, fd, 0, 4096, (char *)pool[1] + BL - 100);
	bad.buf_index = 1;
	ck_assert_int_eq(ab_io_submit(io, &bp, 1), AB_EINVAL);
	bad.buf = pool[1];
	bad.buf_index = NB;
	ck_assert_int_eq(ab_io_submit(io, &bp, 1), AB_EINVAL);
	bad.buf = pool[0]; /* right buffer, wrong index */
	bad.buf_index = 1;
	ck_assert_int_eq(ab_io_submit(io, &bp, 1), AB_EINVAL);

	/* No re-registration while reads are in flight. */
	bad.buf_index = 0;
	ck_assert_int_eq(ab_io_submit(io, &bp, 1), 1);
	ck_assert_int_eq(ab_io_register_buffers(io, pool, lens, NB), AB_EINVAL);
	ab_io_req *d;
	ck_assert_int_eq(ab_io_reap(io, &d, 1, 1), 1);
	ck_assert_int_eq(bad.result, 4096);
	/* n = 0 drops the registration; then buf_index >= 0 is refused. */
	ck_assert_int_eq(ab_io_register_buffers(io, NULL, NULL, 0), 0);
	ck_assert_int_eq(ab_io_submit(io, &bp, 1), AB_EINVAL);
	for (int k = 0; k < NB; k++)
		free(pool[k]);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

/* The table filled one slot at a time: empty slots refuse reads that name
 * them; a slot gets a buffer with reads into another slot in flight, not
 * with reads into itself (the kernel may look a read's buffer up only when
 * it issues it); a slot is emptied again. Reads into registered slots land
 * where they should. */
START_TEST(test_buffer_slots)
{
	enum { NS = 3, BL = 256 * 1024 };
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	void *pool[NS + 1];
	for (int k = 0; k <= NS; k++)
		ck_assert_int_eq(posix_memalign(&pool[k], 4096, BL), 0);
	ck_assert_int_eq(ab_io_register_buffer_slots(io, 0), AB_EINVAL);
	ck_assert_msg(ab_io_register_buffer_slots(io, NS) == 0, "%s", ab_last_error());
	ab_io_req r[4], *rp[4];
	for (int k = 0; k < 4; k++)
		rp[k] = &r[k];
	/* nothing registered yet */
	set_req(&r[0], fd, 4096, 8192, pool[0]);
	r[0].buf_index = 0;
	ck_assert_int_eq(ab_io_submit(io, rp, 1), AB_EINVAL);
	ck_assert_int_eq(ab_io_set_buffer(io, NS, pool[0], BL), AB_EINVAL); /* no such slot */
	ck_assert_int_eq(ab_io_set_buffer(io, 0, pool[0], 0), AB_EINVAL);   /* half empty */
	ck_assert_int_eq(ab_io_set_buffer(io, 0, NULL, BL), AB_EINVAL);
	ck_assert_msg(ab_io_set_buffer(io, 0, pool[0], BL) == 0, "%s", ab_last_error());
	/* with a read into slot 0 in flight, slot 2 gets a buffer, slot 0
	 * may not change; once it is reaped, slot 0 may */
	set_req(&r[0], fd, 12288, 16384, (char *)pool[0] + 4096);
	r[0].buf_index = 0;
	ck_assert_int_eq(ab_io_submit(io, rp, 1), 1);
	ck_assert_msg(ab_io_set_buffer(io, 2, pool[2], BL / 2) == 0, "%s", ab_last_error());
	ck_assert_int_eq(ab_io_set_buffer(io, 0, pool[3], BL), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "in flight"));
	set_req(&r[1], fd, 65536, 32768, (char *)pool[2] + 8192);
	r[1].buf_index = 2;
	ck_assert_int_eq(ab_io_submit(io, rp + 1, 1), 1);
	while (ab_io_inflight(io)) {
		ab_io_req *done[4];
		ck_assert_int_ge(ab_io_reap(io, done, 4, 1), 1);
	}
	ck_assert_msg(ab_io_set_buffer(io, 0, pool[3], BL) == 0, "%s", ab_last_error());
	set_req(&r[2], fd, 4096, 65536, pool[3]);
	r[2].buf_index = 0;
	ck_assert_int_eq(ab_io_submit(io, rp + 2, 1), 1);
	ab_io_req *d2;
	ck_assert_int_eq(ab_io_reap(io, &d2, 1, 1), 1);
	for (int k = 0; k < 3; k++) {
		int64_t want = expect(DATA_SIZE, r[k].offset, r[k].len);
		ck_assert_int_eq(r[k].result, want);
		ck_assert(matches(r[k].buf, r[k].offset, (uint64_t)want));
	}
	/* slot 2 holds half a buffer: past it is refused; slot 0 no longer
	 * holds pool[0]; an emptied slot refuses reads again */
	set_req(&r[3], fd, 0, 8192, (char *)pool[2] + BL / 2);
	r[3].buf_index = 2;
	ck_assert_int_eq(ab_io_submit(io, rp + 3, 1), AB_EINVAL);
	set_req(&r[3], fd, 0, 8192, pool[0]);
	r[3].buf_index = 0;
	ck_assert_int_eq(ab_io_submit(io, rp + 3, 1), AB_EINVAL);
	ck_assert_int_eq(ab_io_set_buffer(io, 2, NULL, 0), 0);
	set_req(&r[3], fd, 0, 8192, pool[2]);
	r[3].buf_index = 2;
	ck_assert_int_eq(ab_io_submit(io, rp + 3, 1), AB_EINVAL);
	/* a new table replaces the old one, but not with reads in flight */
	r[3].buf_index = -1;
	ck_assert_int_eq(ab_io_submit(io, rp + 3, 1), 1);
	ck_assert_int_eq(ab_io_register_buffer_slots(io, NS), AB_EINVAL);
	ab_io_req *d;
	ck_assert_int_eq(ab_io_reap(io, &d, 1, 1), 1);
	ck_assert_int_eq(ab_io_register_buffer_slots(io, 1), 0);
	ck_assert_int_eq(ab_io_set_buffer(io, 1, pool[1], BL), AB_EINVAL);
	for (int k = 0; k <= NS; k++)
		free(pool[k]);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

/* Destroy with reads in flight waits for them: after it returns every
 * request has its final result and the buffers can be freed. */
START_TEST(test_destroy_inflight)
{
	enum { N = 64, L = 65536 };
	ab_io *io = open_backend(_i, N, 2);
	int fd = open(data_path, O_RDONLY);
	ab_io_req req[N], *reqs[N];
	for (unsigned k = 0; k < N; k++) {
		set_req(&req[k], fd, rnd() % DATA_SIZE, L, malloc(L));
		reqs[k] = &req[k];
	}
	ck_assert_int_eq(ab_io_submit(io, reqs, N), N);
	ab_io_destroy(io);
	for (unsigned k = 0; k < N; k++) {
		int64_t want = expect(DATA_SIZE, req[k].offset, L);
		ck_assert_int_eq(req[k].result, want);
		ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)want));
		ck_assert_uint_ge(req[k].complete_ns, req[k].submit_ns);
		free(req[k].buf);
	}
	close(fd);

	/* And with some reaped, some not, some queued behind a full pool. */
	io = open_backend(_i, 8, 1);
	fd = open(data_path, O_RDONLY);
	for (unsigned k = 0; k < 8; k++) {
		set_req(&req[k], fd, (uint64_t)k * L, L, malloc(L));
		reqs[k] = &req[k];
	}
	ck_assert_int_eq(ab_io_submit(io, reqs, 8), 8);
	ab_io_req *d[8];
	ck_assert_int_ge(ab_io_reap(io, d, 2, 1), 1);
	ab_io_destroy(io);
	for (unsigned k = 0; k < 8; k++) {
		ck_assert_int_eq(req[k].result, L);
		ck_assert(matches(req[k].buf, req[k].offset, L));
		free(req[k].buf);
	}
	close(fd);
}
END_TEST

/* The backend is created on one thread and driven by another (the loader's
 * event loop); buffers may be registered before the loop starts. After
 * that, only the driving thread may submit, reap or register. */
struct drive_arg {
	ab_io *io;
	int fd;
	void *pool;
	int status;
};

static void *drive(void *p)
{
	struct drive_arg *a = p;
	ab_io_req req[4], *reqs[4], *done[4];
	a->status = -100;
	for (unsigned k = 0; k < 4; k++) {
		set_req(&req[k], a->fd, (uint64_t)k * 100000, 4096, (char *)a->pool + k * 4096);
		req[k].buf_index = k % 2 ? 0 : -1;
		reqs[k] = &req[k];
	}
	if (ab_io_submit(a->io, reqs, 4) != 4)
		return NULL;
	unsigned back = 0;
	while (back < 4) {
		int got = ab_io_reap(a->io, done, 4, 4 - back);
		if (got <= 0)
			return NULL;
		back += (unsigned)got;
	}
	for (unsigned k = 0; k < 4; k++)
		if (req[k].result != 4096 || !matches(req[k].buf, req[k].offset, 4096))
			return NULL;
	a->status = 0;
	return NULL;
}

START_TEST(test_driving_thread)
{
	ab_io *io = open_backend(_i, 8, 2);
	int fd = open(data_path, O_RDONLY);
	void *pool;
	size_t len = 4 * 4096;
	ck_assert_int_eq(posix_memalign(&pool, 4096, len), 0);
	ck_assert_msg(ab_io_register_buffers(io, &pool, &len, 1) == 0, "%s", ab_last_error());
	struct drive_arg a = {io, fd, pool, -1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, drive, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(a.status == 0, "driving thread failed: %s", ab_last_error());

	/* This thread no longer drives the backend. */
	ab_io_req r, *rp = &r, *d;
	char b[64];
	set_req(&r, fd, 0, 64, b);
	ck_assert_int_eq(ab_io_submit(io, &rp, 1), AB_EINVAL);
	ck_assert_ptr_nonnull(strstr(ab_last_error(), "thread"));
	ck_assert_int_eq(ab_io_reap(io, &d, 1, 0), AB_EINVAL);
	ck_assert_int_eq(ab_io_register_buffers(io, &pool, &len, 1), AB_EINVAL);
	ck_assert_uint_eq(ab_io_inflight(io), 0);
	ab_io_destroy(io); /* from any thread once nothing is in flight */
	free(pool);
	close(fd);
}
END_TEST

/* The driving thread ends with reads in flight (a loader torn down
 * mid-epoch) and another thread destroys the backend. The kernel finishes
 * or cancels an exiting thread's io_uring reads; destroy must collect them
 * and return, and every request must end with a final result. */
struct leave_arg {
	ab_io *io;
	ab_io_req *reqs[32];
	int queued;
};

static void *submit_and_leave(void *p)
{
	struct leave_arg *a = p;
	a->queued = ab_io_submit(a->io, a->reqs, 32);
	return NULL;
}

START_TEST(test_driver_exits_inflight)
{
	enum { N = 32, L = 65536 };
	ab_io *io = open_backend(_i, N, 2);
	int fd = open(data_path, O_RDONLY);
	ab_io_req req[N];
	struct leave_arg a = {.io = io};
	for (unsigned k = 0; k < N; k++) {
		set_req(&req[k], fd, rnd() % DATA_SIZE, L, malloc(L));
		a.reqs[k] = &req[k];
	}
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, submit_and_leave, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(a.queued, N);
	ab_io_destroy(io);
	unsigned full = 0;
	for (unsigned k = 0; k < N; k++) {
		int64_t want = expect(DATA_SIZE, req[k].offset, L);
		ck_assert_msg(req[k].result == want || req[k].result < 0,
			      "request %u: %lld, want %lld or an error", k,
			      (long long)req[k].result, (long long)want);
		if (req[k].result == want) {
			ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)want));
			full++;
		} else {
			printf("note: request %u ended %lld (%s) when its thread exited\n", k,
			       (long long)req[k].result, strerror((int)-req[k].result));
		}
		free(req[k].buf);
	}
	if (_i == 1)
		ck_assert_uint_eq(full, N);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------ O_DIRECT */

/* Opens a file O_DIRECT, or returns -1 after saying why the test skips. */
static int open_direct(const char *path, uint32_t *align)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		ck_assert_int_eq(errno, EINVAL);
		printf("note: O_DIRECT refused on %s (EINVAL); direct part skipped\n", dir);
		return -1;
	}
	uint32_t mem, off;
	int st = ab_io_dio_alignment(fd, &mem, &off);
	if (st == AB_EUNSUPPORTED) {
		printf("note: %s; direct part skipped\n", ab_last_error());
		close(fd);
		return -1;
	}
	ck_assert_int_eq(st, 0);
	/* Page alignment covers every device alignment we expect here. */
	ck_assert_uint_le(mem, 4096);
	ck_assert_uint_le(off, 4096);
	*align = 4096;
	return fd;
}

START_TEST(test_direct_reads)
{
	enum { N = 64, MAXL = 256 * 1024 };
	uint32_t al;
	int fd = open_direct(data_path, &al);
	if (fd < 0)
		return;
	ab_io *io = open_backend(_i, 16, 4);
	ab_io_req req[N + 3], *reqs[N + 3];
	for (unsigned k = 0; k < N; k++) {
		uint64_t off = (rnd() % (DATA_SIZE / al)) * al;
		uint32_t len = (uint32_t)((rnd() % (MAXL / al)) + 1) * al;
		void *buf;
		ck_assert_int_eq(posix_memalign(&buf, al, len), 0);
		set_req(&req[k], fd, off, len, buf);
		req[k].direct = 1;
		reqs[k] = &req[k];
	}
	/* The unaligned end of the file: a direct read ends short there. */
	uint64_t last = (DATA_SIZE / al) * al;
	void *buf;
	ck_assert_int_eq(posix_memalign(&buf, al, 4 * al), 0);
	set_req(&req[N], fd, last - al, 4 * al, buf);
	ck_assert_int_eq(posix_memalign(&buf, al, al), 0);
	set_req(&req[N + 1], fd, last + 4 * al, al, buf); /* past the end */
	ck_assert_int_eq(posix_memalign(&buf, al, al), 0);
	set_req(&req[N + 2], fd, 0, al, buf);
	for (unsigned k = N; k < N + 3; k++) {
		req[k].direct = 1;
		reqs[k] = &req[k];
	}
	run_all(io, reqs, N + 3);
	for (unsigned k = 0; k < N + 3; k++) {
		int64_t want = expect(DATA_SIZE, req[k].offset, req[k].len);
		ck_assert_msg(req[k].result == want, "direct read %u at %llu len %u: %lld, want %lld",
			      k, (unsigned long long)req[k].offset, req[k].len,
			      (long long)req[k].result, (long long)want);
		ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)want));
		free(req[k].buf);
	}
	close(fd);
	ab_io_destroy(io);
}
END_TEST

/* A file whose size is a multiple of the block: the first read across the
 * end comes back short but aligned, the backend reads on, gets 0, and the
 * request ends with exactly the bytes that exist. Registered buffers too. */
START_TEST(test_direct_aligned_eof_fixed)
{
	uint32_t al;
	int fd = open_direct(aligned_path, &al);
	if (fd < 0)
		return;
	ab_io *io = open_backend(_i, 8, 2);
	void *pool;
	size_t plen = 64 * 4096;
	ck_assert_int_eq(posix_memalign(&pool, 4096, plen), 0);
	ck_assert_int_eq(ab_io_register_buffers(io, &pool, &plen, 1), 0);
	ab_io_req req[4], *reqs[4];
	set_req(&req[0], fd, ALIGNED_SIZE - 2 * al, 8 * al, pool);
	set_req(&req[1], fd, ALIGNED_SIZE, 2 * al, (char *)pool + 8 * al);
	set_req(&req[2], fd, 0, 16 * al, (char *)pool + 16 * al);
	set_req(&req[3], fd, ALIGNED_SIZE - al, 4 * al, (char *)pool + 32 * al);
	for (unsigned k = 0; k < 4; k++) {
		req[k].direct = 1;
		req[k].buf_index = k == 3 ? -1 : 0; /* mixed fixed and plain */
		reqs[k] = &req[k];
	}
	run_all(io, reqs, 4);
	ck_assert_int_eq(req[0].result, 2 * al);
	ck_assert_int_eq(req[1].result, 0);
	ck_assert_int_eq(req[2].result, 16 * al);
	ck_assert_int_eq(req[3].result, al);
	for (unsigned k = 0; k < 4; k++)
		ck_assert(matches(req[k].buf, req[k].offset, (uint64_t)req[k].result));
	/* A misaligned direct read is the kernel's to refuse: -EINVAL. */
	ab_io_req mis, *mp = &mis;
	set_req(&mis, fd, 100, al, pool);
	mis.direct = 1;
	run_all(io, &mp, 1);
	ck_assert_int_eq(mis.result, -EINVAL);
	free(pool);
	close(fd);
	ab_io_destroy(io);
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *io_suite(void)
{
	Suite *s = suite_create("io");
	TCase *tc = tcase_create("common");
	tcase_add_test(tc, test_now_monotonic);
	tcase_add_test(tc, test_resume_rule);
	tcase_add_test(tc, test_create_args);
	tcase_add_test(tc, test_force_pread);
	tcase_add_test(tc, test_dio_alignment);
	tcase_add_loop_test(tc, test_seccomp_fallback, 0, 4);
	tcase_add_test(tc, test_dio_alignment_no_statx);
	suite_add_tcase(s, tc);

	tc = tcase_create("backends");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random_reads, 0, 2);
	tcase_add_loop_test(tc, test_over_depth, 0, 2);
	tcase_add_loop_test(tc, test_eof, 0, 2);
	tcase_add_loop_test(tc, test_bad_fd, 0, 2);
	tcase_add_loop_test(tc, test_short_then_fault, 0, 2);
	tcase_add_loop_test(tc, test_bad_requests, 0, 2);
	tcase_add_loop_test(tc, test_reap_rules, 0, 2);
	tcase_add_loop_test(tc, test_latency, 0, 2);
	tcase_add_loop_test(tc, test_registered_buffers, 0, 2);
	tcase_add_loop_test(tc, test_buffer_slots, 0, 2);
	tcase_add_loop_test(tc, test_destroy_inflight, 0, 2);
	tcase_add_loop_test(tc, test_driving_thread, 0, 2);
	tcase_add_loop_test(tc, test_driver_exits_inflight, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("direct");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_direct_reads, 0, 2);
	tcase_add_loop_test(tc, test_direct_aligned_eof_fixed, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	make_files();
	SRunner *sr = srunner_create(io_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_files();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
