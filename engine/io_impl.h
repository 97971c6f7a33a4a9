/*
 * io_impl.h - what the two I/O backends share with io.c (private).
 *
 * io.c owns everything that must behave the same whichever backend runs:
 * argument checks, the queue-depth cap, the in-flight count, the table of
 * registered buffers and the single-driver-thread rule. A backend only moves
 * requests: it embeds `struct ab_io` as its first member and fills `ops`.
 */
#ifndef AB_ENGINE_IO_IMPL_H
#define AB_ENGINE_IO_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>

#include "io.h"

/* The largest queue depth accepted (the kernel's limit on SQ ring entries;
 * applied to both backends so a configuration works the same on either). */
#define AB_IO_MAX_DEPTH 32768u
#define AB_IO_MAX_THREADS 1024u
#define AB_IO_MAX_BUFFERS 16384u /* the kernel's limit on registered buffers */

struct ab_io_ops {
	ab_io_kind kind;
	const char *name;
	/* Called with io->inflight requests still in flight; must not return
	 * before each of them has its final result and nothing (kernel or
	 * worker) will touch it again. Frees the backend. */
	void (*destroy)(ab_io *io);
	/* io.c has checked the table; n == 0 means "drop the registration". */
	int (*register_buffers)(ab_io *io, const struct iovec *iov, unsigned n);
	/* A table of n empty buffer slots, and one slot's buffer (iov_base
	 * NULL: empty it); io.c has checked slot and buffer. */
	int (*register_buffer_slots)(ab_io *io, unsigned n);
	int (*set_buffer)(ab_io *io, unsigned slot, const struct iovec *iov);
	/* A table of n file slots, and one slot's descriptor. */
	int (*register_files)(ab_io *io, unsigned n);
	int (*set_file)(ab_io *io, unsigned slot, int fd);
	/* io.c has checked every request and capped n at the free slots; the
	 * backend takes all n (or fails without taking any). */
	int (*submit)(ab_io *io, ab_io_req *const *reqs, unsigned n, uint64_t now);
	/* io.c has capped max >= 1 and min_wait <= min(max, inflight). */
	int (*reap)(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait);
	/* Optional (NULL: nothing to do): ab_io_restart_count. */
	void (*restart_count)(ab_io *io);
};

struct ab_io {
	const struct ab_io_ops *ops;
	unsigned depth;       /* reads in flight at most                          */
	unsigned inflight;    /* submitted and not yet reaped (kept by io.c)      */
	/* Registered buffers, copied so that submit can check that a request's
	 * buf..buf+len lies inside the buffer it names. */
	struct iovec *bufs;
	unsigned *buf_inflight; /* reads in flight naming each one              */
	unsigned nbufs;
	unsigned nfiles;      /* registered file slots                            */
	/* The driving thread: bound by the first ab_io_submit. io_uring with
	 * SINGLE_ISSUER only accepts that thread, and the pread pool is held to
	 * the same rule so that a loader tested on either behaves the same. */
	pthread_t owner;
	int owned;
	char describe[160];   /* for ab_io_describe()                             */
};

/* Backend constructors. ab_io_uring_open returns AB_EUNSUPPORTED with the
 * errno in *sys_err when io_uring cannot be used here (the caller falls
 * back); *sys_err is ENOTSUP when the ring works but IORING_OP_READ is
 * missing (kernel < 5.6). Other failures are returned as AB_E* codes. */
int ab_io_uring_open(unsigned depth, ab_io **out, int *sys_err);
int ab_io_pread_open(unsigned depth, unsigned threads, ab_io **out);

/*
 * After a short read that brought a request to `done` bytes (0 < done <
 * len), may the rest be read from offset + done into buf + done?
 *
 * Buffered: always; the next read returns 0 if that was the end of file.
 * O_DIRECT: only if the rest is still aligned. The device alignment is not
 * known here, but the caller promised that offset, len and buf are all
 * multiples of it, so it divides the lowest set bit of (offset | len | buf).
 * When `done` is a multiple of that grain the rest is aligned too and is
 * read (a read at an aligned end of file then returns 0). When it is not,
 * the kernel stopped at an unaligned point, which for a direct read only
 * happens at the end of the file: the short count is the final result.
 */
static inline int ab_io_resume_ok(const ab_io_req *r, uint64_t done)
{
	if (done >= r->len)
		return 0;
	if (!r->direct)
		return 1;
	uint64_t bits = r->offset | r->len | (uint64_t)(uintptr_t)r->buf;
	uint64_t grain = bits & (~bits + 1); /* lowest set bit */
	return grain != 0 && done % grain == 0;
}

#endif
