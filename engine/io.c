/*
 * io.c - the parts of the I/O backend that do not depend on the backend:
 * choosing one (io_uring, else the pread pool, and why), the checks made on
 * every call, the in-flight count, the clock, and the O_DIRECT alignment.
 *
 * Keeping the checks here means both backends accept and refuse exactly the
 * same requests, so a loader developed against one behaves the same on the
 * other.
 */
#include "io.h"
#include "io_fault.h"
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "last_error.h"

#define AB_IO_DEFAULT_DEPTH 64u
#define AB_IO_DEFAULT_THREADS 4u

uint64_t ab_now_ns(void)
{
	struct timespec ts;
	/* CLOCK_MONOTONIC is served from the vDSO: no system call. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ choosing */

/* kernel.io_uring_disabled (6.6+): 0 allowed, 1 only for members of
 * kernel.io_uring_group (or CAP_SYS_ADMIN), 2 off for everyone. -1 if the
 * sysctl does not exist. */
static int io_uring_sysctl(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	int v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Static text for the stats: why the pread pool runs instead of io_uring. */
static const char *fallback_text(int sys_err, int sysctl)
{
	switch (sys_err) {
	case ENOSYS:
		return "io_uring unavailable (ENOSYS: kernel built without io_uring); using pread pool";
	case EPERM:
		if (sysctl == 2)
			return "io_uring unavailable (EPERM: kernel.io_uring_disabled=2); using pread pool";
		if (sysctl == 1)
			return "io_uring unavailable (EPERM: kernel.io_uring_disabled=1 and not in "
			       "kernel.io_uring_group); using pread pool";
		return "io_uring unavailable (EPERM: seccomp or container policy); using pread pool";
	case ENOMEM:
		return "io_uring unavailable (ENOMEM: locked-memory limit, see ulimit -l); using pread pool";
	case EINVAL:
		return "io_uring unavailable (EINVAL: kernel refused the ring setup); using pread pool";
	case ENOTSUP:
		return "io_uring unavailable (kernel older than 5.6: no IORING_OP_READ); using pread pool";
	default:
		return "io_uring unavailable; using pread pool";
	}
}

static int force_pread(void)
{
	const char *v = getenv("AB_IO_FORCE_PREAD");
	return v && v[0] && strcmp(v, "0") != 0;
}

int ab_io_create(const ab_io_config *cfg, ab_io **out, const char **fallback_reason)
{
	if (fallback_reason)
		*fallback_reason = NULL;
	if (!out)
		return ab_error_set(AB_EINVAL, "ab_io_create: out is NULL");
	*out = NULL;

	/* A zeroed config means "the defaults": io_uring, depth 64, 4 threads. */
	ab_io_kind kind = cfg && cfg->kind ? cfg->kind : AB_IO_URING;
	unsigned depth = cfg && cfg->queue_depth ? cfg->queue_depth : AB_IO_DEFAULT_DEPTH;
	unsigned threads = cfg && cfg->threads ? cfg->threads : AB_IO_DEFAULT_THREADS;
	if (kind != AB_IO_URING && kind != AB_IO_PREAD)
		return ab_error_set(AB_EINVAL, "io: unknown backend kind %d", (int)kind);
	if (depth > AB_IO_MAX_DEPTH)
		return ab_error_set(AB_EINVAL, "io: queue depth %u is above the limit %u", depth,
				    AB_IO_MAX_DEPTH);
	if (threads > AB_IO_MAX_THREADS)
		return ab_error_set(AB_EINVAL, "io: %u pread threads is above the limit %u", threads,
				    AB_IO_MAX_THREADS);

	ab_io *io = NULL;
	const char *why = NULL;
	int st;
	if (kind == AB_IO_URING) {
		int sysctl = io_uring_sysctl();
		if (force_pread()) {
			why = "AB_IO_FORCE_PREAD is set; using pread pool";
		} else if (sysctl == 2) {
			/* Setup would fail with EPERM anyway; say precisely why. */
			why = fallback_text(EPERM, sysctl);
		} else {
			int sys_err = 0;
			st = ab_io_uring_open(depth, &io, &sys_err);
			if (st == AB_EUNSUPPORTED)
				why = fallback_text(sys_err, sysctl);
			else if (st != AB_OK)
				return st;
		}
	}
	if (!io) {
		st = ab_io_pread_open(depth, threads, &io);
		if (st != AB_OK)
			return st;
	}
	io->depth = depth;
	io->inflight = 0;
	if (io->describe[0] == '\0')
		snprintf(io->describe, sizeof io->describe, "%s: depth %u", io->ops->name, depth);
	if (why) {
		size_t l = strlen(io->describe);
		snprintf(io->describe + l, sizeof io->describe - l, " (fallback)");
	}
	/* Test hook: AB_IO_FAULT (see io.h) puts the fault injector between
	 * the caller and the real backend. A spec that does not parse fails
	 * the creation, so a typo cannot silently run a test without faults. */
	const char *faults = getenv("AB_IO_FAULT");
	if (faults && faults[0]) {
		ab_io *wrapped;
		st = ab_io_fault_wrap(io, faults, &wrapped);
		if (st != AB_OK) {
			ab_io_destroy(io);
			return st;
		}
		io = wrapped;
	}
	if (fallback_reason)
		*fallback_reason = why;
	*out = io;
	return AB_OK;
}

void ab_io_destroy(ab_io *io)
{
	if (!io)
		return;
	struct iovec *bufs = io->bufs;
	unsigned *counts = io->buf_inflight;
	io->ops->destroy(io); /* waits for what is in flight, frees io */
	free(bufs);
	free(counts);
}

ab_io_kind ab_io_kind_of(const ab_io *io)
{
	return io->ops->kind;
}

const char *ab_io_name(const ab_io *io)
{
	return io->ops->name;
}

unsigned ab_io_queue_depth(const ab_io *io)
{
	return io->depth;
}

void ab_io_restart_count(ab_io *io)
{
	if (io && io->ops->restart_count)
		io->ops->restart_count(io);
}

unsigned ab_io_inflight(const ab_io *io)
{
	return io->inflight;
}

const char *ab_io_describe(const ab_io *io)
{
	return io->describe;
}

/* ------------------------------------------------------------ calls */

/* The first submit binds the driving thread; later calls from another thread
 * are refused here rather than failing later inside the kernel (-EEXIST
 * with IORING_SETUP_SINGLE_ISSUER) with requests half queued. */
static int check_thread(ab_io *io, const char *what, int bind)
{
	pthread_t self = pthread_self();
	if (io->owned) {
		if (!pthread_equal(io->owner, self))
			return ab_error_set(AB_EINVAL,
					    "io: %s from a thread other than the one that drives this "
					    "backend (one thread submits and reaps)",
					    what);
		return AB_OK;
	}
	if (bind) {
		io->owner = self;
		io->owned = 1;
	}
	return AB_OK;
}

/* The checks before a new buffer table: the calling thread, no read in
 * flight (it may name a slot of the table about to go), n within the
 * limit. */
static int table_checks(ab_io *io, const char *what, unsigned n, unsigned min)
{
	if (!io)
		return ab_error_set(AB_EINVAL, "io: %s: NULL argument", what);
	int st = check_thread(io, what, 0);
	if (st)
		return st;
	if (io->inflight)
		return ab_error_set(AB_EINVAL, "io: %s with %u reads in flight (reap them first)", what,
				    io->inflight);
	if (n < min || n > AB_IO_MAX_BUFFERS)
		return ab_error_set(AB_EINVAL, "io: %s: %u buffers (%u to %u)", what, n, min, AB_IO_MAX_BUFFERS);
	return AB_OK;
}

/* A table of n slots and their in-flight counts, zeroed (NULL for n = 0). */
static int table_alloc(unsigned n, struct iovec **iov, unsigned **counts)
{
	*iov = NULL;
	*counts = NULL;
	if (n == 0)
		return AB_OK;
	*iov = calloc(n, sizeof **iov);
	*counts = calloc(n, sizeof **counts);
	if (!*iov || !*counts) {
		free(*iov);
		free(*counts);
		return ab_error_set(AB_ENOMEM, "io: out of memory for %u buffer slots", n);
	}
	return AB_OK;
}

/* The backend made its table (st == 0): ours follows; or it refused, and
 * the new one is dropped. */
static int table_install(ab_io *io, int st, struct iovec *iov, unsigned *counts, unsigned n)
{
	if (st) {
		free(iov);
		free(counts);
		return st;
	}
	free(io->bufs);
	free(io->buf_inflight);
	io->bufs = iov;
	io->buf_inflight = counts;
	io->nbufs = n;
	return AB_OK;
}

int ab_io_register_buffers(ab_io *io, void *const *bufs, const size_t *lens, unsigned n)
{
	struct iovec *iov;
	unsigned *counts;
	if (io && n && (!bufs || !lens))
		return ab_error_set(AB_EINVAL, "io: register_buffers: NULL argument");
	int st = table_checks(io, "register_buffers", n, 0);
	if (st || (st = table_alloc(n, &iov, &counts)))
		return st;
	for (unsigned i = 0; i < n; i++) {
		if (!bufs[i] || !lens[i]) {
			free(iov);
			free(counts);
			return ab_error_set(AB_EINVAL, "io: registered buffer %u is empty", i);
		}
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = lens[i];
	}
	return table_install(io, io->ops->register_buffers(io, iov, n), iov, counts, n);
}

int ab_io_register_buffer_slots(ab_io *io, unsigned n)
{
	struct iovec *iov;
	unsigned *counts;
	int st = table_checks(io, "register_buffer_slots", n, 1);
	if (st || (st = table_alloc(n, &iov, &counts)))
		return st;
	return table_install(io, io->ops->register_buffer_slots(io, n), iov, counts, n);
}

int ab_io_set_buffer(ab_io *io, unsigned slot, void *buf, size_t len)
{
	if (!io)
		return ab_error_set(AB_EINVAL, "io: set_buffer: NULL argument");
	int st = check_thread(io, "set_buffer", 0);
	if (st)
		return st;
	if (slot >= io->nbufs)
		return ab_error_set(AB_EINVAL, "io: buffer slot %u of %u", slot, io->nbufs);
	if (!buf != !len)
		return ab_error_set(AB_EINVAL, "io: buffer slot %u: %zu bytes at %p (an empty slot is NULL, 0)",
				    slot, len, buf);
	if (io->buf_inflight[slot])
		return ab_error_set(AB_EINVAL, "io: buffer slot %u changed with %u reads into it in flight", slot,
				    io->buf_inflight[slot]);
	struct iovec iov = { buf, len };
	if ((st = io->ops->set_buffer(io, slot, &iov)))
		return st;
	io->bufs[slot] = iov;
	return AB_OK;
}

int ab_io_register_files(ab_io *io, unsigned n)
{
	if (!io)
		return ab_error_set(AB_EINVAL, "io: register_files: NULL argument");
	int st = check_thread(io, "register_files", 0);
	if (st)
		return st;
	if (io->inflight)
		return ab_error_set(AB_EINVAL, "io: register_files with %u reads in flight", io->inflight);
	if (n > 65536)
		return ab_error_set(AB_EINVAL, "io: %u file slots, limit 65536", n);
	if ((st = io->ops->register_files(io, n)))
		return st;
	io->nfiles = n;
	return AB_OK;
}

int ab_io_set_file(ab_io *io, unsigned slot, int fd)
{
	if (!io)
		return ab_error_set(AB_EINVAL, "io: set_file: NULL argument");
	int st = check_thread(io, "set_file", 0);
	if (st)
		return st;
	if (slot >= io->nfiles)
		return ab_error_set(AB_EINVAL, "io: file slot %u of %u", slot, io->nfiles);
	return io->ops->set_file(io, slot, fd);
}

static int check_req(const ab_io *io, const ab_io_req *r, unsigned i)
{
	if (!r)
		return ab_error_set(AB_EINVAL, "io: request %u is NULL", i);
	if (r->len && !r->buf)
		return ab_error_set(AB_EINVAL, "io: request %u has no buffer", i);
	if (r->fixed_file > io->nfiles)
		return ab_error_set(AB_EINVAL, "io: request %u names file slot %u of %u", i, r->fixed_file - 1,
				    io->nfiles);
	if (r->buf_index >= 0) {
		if ((unsigned)r->buf_index >= io->nbufs)
			return ab_error_set(AB_EINVAL,
					    "io: request %u names registered buffer %d of %u", i,
					    r->buf_index, io->nbufs);
		const char *b = io->bufs[r->buf_index].iov_base;
		size_t bl = io->bufs[r->buf_index].iov_len;
		const char *p = r->buf;
		if (p < b || (size_t)(p - b) > bl || r->len > bl - (size_t)(p - b))
			return ab_error_set(AB_EINVAL,
					    "io: request %u: %" PRIu32 " bytes at %p are not inside "
					    "registered buffer %d",
					    i, r->len, r->buf, r->buf_index);
	}
	return AB_OK;
}

int ab_io_submit(ab_io *io, ab_io_req *const *reqs, unsigned n)
{
	if (!io || (n && !reqs))
		return ab_error_set(AB_EINVAL, "io: submit: NULL argument");
	int st = check_thread(io, "submit", 1);
	if (st)
		return st;
	unsigned room = io->depth - io->inflight;
	if (n > room)
		n = room; /* the rest waits for a later call */
	if (n == 0)
		return 0;
	/* All or nothing: a bad request is refused before any is queued. */
	for (unsigned i = 0; i < n; i++) {
		st = check_req(io, reqs[i], i);
		if (st)
			return st;
	}
	/* One clock read per batch: the requests leave together. */
	st = io->ops->submit(io, reqs, n, ab_now_ns());
	if (st < 0)
		return st;
	io->inflight += n;
	for (unsigned i = 0; i < n; i++)
		if (reqs[i]->buf_index >= 0)
			io->buf_inflight[reqs[i]->buf_index]++;
	return (int)n;
}

int ab_io_reap(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait)
{
	if (!io || (max && !done))
		return ab_error_set(AB_EINVAL, "io: reap: NULL argument");
	int st = check_thread(io, "reap", 0);
	if (st)
		return st;
	if (max > io->inflight)
		max = io->inflight;
	if (max == 0)
		return 0;
	/* Waiting for more than can ever complete would never return. */
	if (min_wait > max)
		min_wait = max;
	int got = io->ops->reap(io, done, max, min_wait);
	if (got > 0)
		io->inflight -= (unsigned)got;
	/* (a table is replaced only with nothing in flight: buf_index still
	 * names a slot of this one) */
	for (int i = 0; i < got; i++)
		if (done[i]->buf_index >= 0)
			io->buf_inflight[done[i]->buf_index]--;
	return got;
}

/* ------------------------------------------------------------ alignment */

/*
 * statx(STATX_DIOALIGN) arrived in Linux 6.1 and in the uapi headers of the
 * same version. With older headers the call is made through syscall() into
 * a local copy of the kernel's struct statx (its layout is ABI, fixed at
 * 256 bytes). AB_IO_RAW_STATX forces that path, to test it.
 */
#if defined(STATX_DIOALIGN) && !defined(AB_IO_RAW_STATX)
static int statx_dio(int fd, uint32_t *mem, uint32_t *off, int *have)
{
	struct statx sx;
	memset(&sx, 0, sizeof sx);
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0)
		return -errno;
	*have = (sx.stx_mask & STATX_DIOALIGN) != 0;
	*mem = sx.stx_dio_mem_align;
	*off = sx.stx_dio_offset_align;
	return 0;
}
#else
#define AB_STATX_DIOALIGN 0x00002000U
struct ab_statx_ts {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved;
};
struct ab_statx_raw {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, spare0;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct ab_statx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t stx_mnt_id;
	uint32_t stx_dio_mem_align, stx_dio_offset_align;
	uint64_t spare3[12];
};
_Static_assert(sizeof(struct ab_statx_raw) == 256, "struct statx is 256 bytes");
_Static_assert(offsetof(struct ab_statx_raw, stx_dio_mem_align) == 0x98,
	       "stx_dio_mem_align at 0x98");

static int statx_dio(int fd, uint32_t *mem, uint32_t *off, int *have)
{
#ifdef SYS_statx
	struct ab_statx_raw sx;
	memset(&sx, 0, sizeof sx);
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, AB_STATX_DIOALIGN, &sx) != 0)
		return -errno;
	*have = (sx.stx_mask & AB_STATX_DIOALIGN) != 0;
	*mem = sx.stx_dio_mem_align;
	*off = sx.stx_dio_offset_align;
	return 0;
#else
	(void)fd; (void)mem; (void)off; (void)have;
	return -ENOSYS;
#endif
}
#endif

/* Reads one unsigned number from a sysfs file; 0 if absent. */
static uint32_t sysfs_u32(const char *path)
{
	FILE *f = fopen(path, "re");
	unsigned v = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%u", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* The logical block size of the device under a file, or 0 when that is not
 * a block device we can find (network and FUSE file systems, overlay). A
 * partition has no queue/ of its own: its parent disk's is one level up. */
static uint32_t logical_block_size(int fd, const struct stat *st)
{
	if (S_ISBLK(st->st_mode)) {
		int lbs = 0;
		if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0)
			return (uint32_t)lbs;
		return 0;
	}
	char path[128];
	unsigned ma = major(st->st_dev), mi = minor(st->st_dev);
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/logical_block_size", ma, mi);
	uint32_t v = sysfs_u32(path);
	if (!v) {
		snprintf(path, sizeof path, "/sys/dev/block/%u:%u/../queue/logical_block_size", ma,
			 mi);
		v = sysfs_u32(path);
	}
	return v;
}

static int is_pow2(uint32_t v)
{
	return v && (v & (v - 1)) == 0;
}

int ab_io_dio_alignment(int fd, uint32_t *mem_align, uint32_t *offset_align)
{
	uint32_t mem = 0, off = 0;
	int have = 0;
	if (!mem_align || !offset_align)
		return ab_error_set(AB_EINVAL, "io: dio_alignment: NULL argument");
	*mem_align = *offset_align = 0;

	int rc = statx_dio(fd, &mem, &off, &have);
	if (rc == -EBADF)
		return ab_error_set(AB_EINVAL, "io: dio_alignment: fd %d is not open", fd);
	if (rc == 0 && have) {
		/* The kernel answered: 0 means this file cannot be read with
		 * O_DIRECT at all (the file system does not support it). */
		if (mem == 0 || off == 0)
			return ab_error_set(AB_EUNSUPPORTED,
					    "io: O_DIRECT is not supported for fd %d "
					    "(statx reports no direct I/O alignment)",
					    fd);
		*mem_align = mem;
		*offset_align = off;
		return AB_OK;
	}
	if (rc != 0 && rc != -ENOSYS && rc != -EINVAL && rc != -EOPNOTSUPP)
		return ab_error_set(AB_EIO, "io: statx on fd %d: %s", fd, strerror(-rc));

	/* No answer from statx (kernel < 6.1, or a file system that does not
	 * fill the field): the device's logical block size bounds the offset;
	 * memory aligned to a page satisfies every device we know of. */
	struct stat st;
	if (fstat(fd, &st) != 0)
		return ab_error_set(AB_EINVAL, "io: dio_alignment: fstat fd %d: %s", fd,
				    strerror(errno));
	uint32_t lbs = logical_block_size(fd, &st);
	if (!is_pow2(lbs))
		lbs = 4096;
	*offset_align = lbs;
	*mem_align = lbs > 4096 ? lbs : 4096;
	return AB_OK;
}
