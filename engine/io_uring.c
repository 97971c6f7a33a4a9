/*
 * io_uring.c - the io_uring backend.
 *
 * One ring, sized to the queue depth, driven by one thread. A request is its
 * own bookkeeping: the SQE's user_data is the ab_io_req pointer, and while
 * the request is in flight its `result` field holds the bytes read so far
 * (the caller must not look at it before the request is reaped). That is
 * what makes resubmitting the rest of a short read possible without any
 * per-request allocation or side table.
 *
 * System calls: one io_uring_enter per ab_io_submit; ab_io_reap enters the
 * kernel only to wait, or to push out the rest of short reads.
 */
#include "io.h"
#include "io_impl.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "last_error.h"

struct uring_io {
	struct ab_io base; /* first: io.c sees only this */
	struct io_uring ring;
	unsigned setup_flags; /* what the kernel accepted                       */
	int enabled;          /* ring created disabled, not yet bound to a thread */
	int broken;           /* the ring failed: refuse further work            */
	struct io_uring_cqe **cqes; /* scratch for io_uring_peek_batch_cqe       */
	unsigned ncqes;
};

#define U(io) ((struct uring_io *)(io))

/* Errors of io_uring_enter that only mean "try again". */
static int transient(int err)
{
	return err == -EINTR || err == -EAGAIN || err == -EBUSY;
}

/* Fills an SQE for what is left of a request: the whole of it on first
 * submission, the rest after a short read. */
static void prep(struct io_uring_sqe *sqe, ab_io_req *r)
{
	uint64_t done = (uint64_t)r->result;
	char *dst = (char *)r->buf + done;
	unsigned len = r->len - (uint32_t)done;
	/* A registered file is named by its slot, with IOSQE_FIXED_FILE. */
	int fd = r->fixed_file ? (int)(r->fixed_file - 1) : r->fd;
	if (r->buf_index >= 0)
		io_uring_prep_read_fixed(sqe, fd, dst, len, r->offset + done, r->buf_index);
	else
		io_uring_prep_read(sqe, fd, dst, len, r->offset + done);
	if (r->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, r);
	/* A buffered read that hits the page cache is otherwise completed inline,
	 * inside io_uring_enter, by the one submitting thread: every copy out of
	 * the page cache would then run on the event loop. IOSQE_ASYNC hands
	 * them to the kernel's worker pool, which copies in parallel. Direct
	 * reads are asynchronous by nature and keep the inline fast path. */
	if (!r->direct)
		sqe->flags |= IOSQE_ASYNC;
}

/* An SQE for a resubmission. The ring has depth >= queue depth entries and
 * each request in flight holds at most one SQE, so the SQ cannot be full of
 * other requests' SQEs; the flush is a guard, not an expected path. */
static struct io_uring_sqe *get_sqe(struct uring_io *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/*
 * Applies one CQE to its request. Returns 1 when the request is finished
 * (its result is final), 0 when the rest was queued for another read.
 * `resubmit` = 0 (during destroy, from a thread that may not submit) turns
 * what would be a retry into a final result: the bytes read so far, or
 * -ECANCELED if there are none.
 */
static int complete(struct uring_io *u, ab_io_req *r, int res, uint64_t now, int resubmit)
{
	uint64_t done = (uint64_t)r->result;
	int again;
	if (res == -EAGAIN || res == -EINTR) {
		again = 1;
	} else if (res < 0) {
		/* A failure part-way fails the whole request: the caller
		 * cannot use a prefix of a chunk. */
		r->result = res;
		r->complete_ns = now;
		return 1;
	} else {
		done += (uint64_t)res;
		r->result = (int64_t)done;
		/* res == 0: end of file. Otherwise read on only if something
		 * is missing and the rest can still be read (O_DIRECT). */
		again = res > 0 && ab_io_resume_ok(r, done);
	}
	if (again && resubmit) {
		struct io_uring_sqe *sqe = get_sqe(u);
		if (sqe) {
			prep(sqe, r);
			return 0;
		}
		r->result = -EBUSY;
	} else if (again) {
		r->result = done ? (int64_t)done : -ECANCELED;
	}
	r->complete_ns = now;
	return 1;
}

/* --------------------------------------------------------------- ops */

static int uring_register_files(ab_io *io, unsigned n)
{
	struct uring_io *u = U(io);
	/* Replace any earlier table: -ENXIO only says there was none. */
	int rc = io_uring_unregister_files(&u->ring);
	if (rc < 0 && rc != -ENXIO)
		return ab_error_set(AB_EIO, "io_uring: unregister files: %s", strerror(-rc));
	if (n == 0)
		return AB_OK;
	rc = io_uring_register_files_sparse(&u->ring, n);
	if (rc < 0)
		return ab_error_set(rc == -EINVAL ? AB_EUNSUPPORTED : AB_EIO,
				    "io_uring: register %u file slots: %s", n, strerror(-rc));
	return AB_OK;
}

static int uring_set_file(ab_io *io, unsigned slot, int fd)
{
	struct uring_io *u = U(io);
	int rc = io_uring_register_files_update(&u->ring, slot, &fd, 1);
	if (rc < 0)
		return ab_error_set(AB_EIO, "io_uring: file slot %u: %s", slot, strerror(-rc));
	return AB_OK;
}

/* The kernel keeps one buffer table; replacing it means dropping the old
 * one (-ENXIO only says there was none). */
static int drop_buffer_table(struct uring_io *u)
{
	if (u->broken)
		return ab_error_set(AB_EIO, "io_uring: the ring failed earlier");
	int rc = io_uring_unregister_buffers(&u->ring);
	if (rc < 0 && rc != -ENXIO)
		return ab_error_set(AB_EIO, "io_uring: unregister buffers: %s", strerror(-rc));
	return AB_OK;
}

static int uring_register_buffers(ab_io *io, const struct iovec *iov, unsigned n)
{
	struct uring_io *u = U(io);
	int rc = drop_buffer_table(u);
	if (rc)
		return rc;
	if (n == 0)
		return AB_OK;
	rc = io_uring_register_buffers(&u->ring, iov, n);
	if (rc == -ENOMEM)
		return ab_error_set(AB_ENOMEM,
				    "io_uring: register %u buffers: locked-memory limit (ulimit -l)", n);
	if (rc == -EFAULT || rc == -EINVAL || rc == -EOVERFLOW)
		return ab_error_set(AB_EINVAL, "io_uring: register %u buffers: %s", n, strerror(-rc));
	if (rc < 0)
		return ab_error_set(AB_EIO, "io_uring: register %u buffers: %s", n, strerror(-rc));
	return AB_OK;
}

/* An empty table (IORING_RSRC_REGISTER_SPARSE): nothing is pinned until a
 * slot gets a buffer. */
static int uring_register_buffer_slots(ab_io *io, unsigned n)
{
	struct uring_io *u = U(io);
	int rc = drop_buffer_table(u);
	if (rc)
		return rc;
	rc = io_uring_register_buffers_sparse(&u->ring, n);
	if (rc < 0)
		return ab_error_set(rc == -EINVAL ? AB_EUNSUPPORTED : AB_EIO,
				    "io_uring: register %u empty buffer slots: %s", n, strerror(-rc));
	return AB_OK;
}

/* IORING_REGISTER_BUFFERS_UPDATE: the kernel drops the slot's old buffer
 * when the last read using it completes, so reads may be in flight. */
static int uring_set_buffer(ab_io *io, unsigned slot, const struct iovec *iov)
{
	struct uring_io *u = U(io);
	if (u->broken)
		return ab_error_set(AB_EIO, "io_uring: the ring failed earlier");
	__u64 tag = 0;
	int rc = io_uring_register_buffers_update_tag(&u->ring, slot, iov, &tag, 1);
	if (rc == -ENOMEM)
		return ab_error_set(AB_ENOMEM, "io_uring: register buffer slot %u (%zu bytes): locked-memory limit "
				    "(ulimit -l)", slot, iov->iov_len);
	if (rc < 0)
		return ab_error_set(rc == -EFAULT || rc == -EINVAL || rc == -EOVERFLOW ? AB_EINVAL : AB_EIO,
				    "io_uring: register buffer slot %u (%zu bytes): %s", slot, iov->iov_len,
				    strerror(-rc));
	return AB_OK;
}

/* The ring is created disabled when IORING_SETUP_SINGLE_ISSUER is on, so
 * that the kernel binds it to the thread of the first submit (the event
 * loop) rather than to the thread that happened to create it. liburing 2.3
 * declares io_uring_enable_rings() but does not export it: hence the raw
 * system call. */
static int enable_ring(struct uring_io *u)
{
	if (u->enabled)
		return AB_OK;
	long rc = syscall(__NR_io_uring_register, u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
			  NULL, 0);
	if (rc < 0)
		return ab_error_set(AB_EIO, "io_uring: enable ring: %s", strerror(errno));
	u->enabled = 1;
	return AB_OK;
}

static int uring_submit(ab_io *io, ab_io_req *const *reqs, unsigned n, uint64_t now)
{
	struct uring_io *u = U(io);
	if (u->broken)
		return ab_error_set(AB_EIO, "io_uring: the ring failed earlier");
	int st = enable_ring(u);
	if (st)
		return st;
	/* io.c capped n at the free slots and the SQ has at least that many
	 * free entries: after a submit the kernel has consumed every SQE. */
	if (io_uring_sq_space_left(&u->ring) < n)
		io_uring_submit(&u->ring);
	if (io_uring_sq_space_left(&u->ring) < n)
		return ab_error_set(AB_EIO, "io_uring: submission queue unexpectedly full");
	for (unsigned i = 0; i < n; i++) {
		ab_io_req *r = reqs[i];
		r->result = 0; /* bytes read so far */
		r->submit_ns = now;
		r->complete_ns = 0;
		prep(io_uring_get_sqe(&u->ring), r);
	}
	int rc = io_uring_submit(&u->ring);
	if (rc < 0 && !transient(rc)) {
		/* The SQEs are in the ring but the kernel refused to look at
		 * them; nothing sane can follow. */
		u->broken = 1;
		return ab_error_set(AB_EIO, "io_uring: submit: %s", strerror(-rc));
	}
	/* A transient refusal (or a partial take) leaves SQEs in the ring;
	 * the next ab_io_reap pushes them out. They count as queued. */
	return (int)n;
}

static int uring_reap(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait)
{
	struct uring_io *u = U(io);
	unsigned got = 0;
	int err = 0;
	if (u->broken)
		return ab_error_set(AB_EIO, "io_uring: the ring failed earlier");
	for (;;) {
		unsigned want = max - got;
		if (want > u->ncqes)
			want = u->ncqes;
		/* Peeking enters the kernel only when COOP_TASKRUN left
		 * completions waiting for us (IORING_SQ_TASKRUN). */
		unsigned n = io_uring_peek_batch_cqe(&u->ring, u->cqes, want);
		if (n) {
			uint64_t now = ab_now_ns();
			for (unsigned i = 0; i < n; i++) {
				ab_io_req *r = io_uring_cqe_get_data(u->cqes[i]);
				if (complete(u, r, u->cqes[i]->res, now, 1))
					done[got++] = r;
			}
			io_uring_cq_advance(&u->ring, n);
			if (got < max)
				continue; /* more may be ready */
		}
		if (got >= max || got >= min_wait)
			break;
		/* Every unfinished request in flight yields at least one more
		 * CQE, and at least min_wait - got of them are unfinished, so
		 * waiting for that many cannot hang. The same enter pushes out
		 * resubmissions queued above. */
		unsigned need = min_wait - got;
		int rc;
		if (io_uring_sq_ready(&u->ring))
			rc = io_uring_submit_and_wait(&u->ring, need);
		else {
			struct io_uring_cqe *cqe;
			rc = io_uring_wait_cqe_nr(&u->ring, &cqe, need);
		}
		if (rc < 0 && !transient(rc) && rc != -ETIME) {
			err = rc;
			break;
		}
	}
	/* Rests of short reads not yet sent: one enter for all of them. */
	if (!err && io_uring_sq_ready(&u->ring)) {
		int rc;
		do
			rc = io_uring_submit(&u->ring);
		while (rc == -EINTR);
		if (rc < 0 && !transient(rc))
			err = rc;
	}
	if (err) {
		u->broken = 1;
		ab_error_set(AB_EIO, "io_uring: wait for completions: %s", strerror(-err));
		/* What was collected is handed out; the failure shows next call. */
		return got ? (int)got : AB_EIO;
	}
	return (int)got;
}

/*
 * Waits for everything in flight: the reads write into the caller's
 * buffers, which the caller may free as soon as this returns. On the
 * driving thread (or if none was ever bound) requests are run to their
 * final result exactly as ab_io_reap would. From another thread nothing
 * may be submitted (SINGLE_ISSUER), so a request that would need another
 * read ends with what it has. Only if the ring itself failed do we close it
 * without waiting: the kernel then cancels the reads as the ring dies.
 */
static void uring_destroy(ab_io *io)
{
	struct uring_io *u = U(io);
	int own = !io->owned || pthread_equal(io->owner, pthread_self());
	unsigned pending = io->inflight;
	if (u->enabled && !u->broken && io_uring_sq_ready(&u->ring)) {
		/* SQEs left by a refused submit: send them if we may; what
		 * stays in the SQ never reaches the kernel and needs no wait. */
		if (own)
			io_uring_submit(&u->ring);
		unsigned left = io_uring_sq_ready(&u->ring);
		pending -= left < pending ? left : pending;
	}
	while (pending && u->enabled && !u->broken) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&u->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		ab_io_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		if (complete(u, r, res, ab_now_ns(), own)) {
			pending--;
		} else if (io_uring_submit(&u->ring) < 0) {
			r->result = r->result ? r->result : -ECANCELED;
			pending--;
			break;
		}
	}
	io_uring_queue_exit(&u->ring);
	free(u->cqes);
	free(u);
}

static const struct ab_io_ops uring_ops = {
	.kind = AB_IO_URING,
	.name = "uring",
	.destroy = uring_destroy,
	.register_buffers = uring_register_buffers,
	.register_buffer_slots = uring_register_buffer_slots,
	.set_buffer = uring_set_buffer,
	.register_files = uring_register_files,
	.set_file = uring_set_file,
	.submit = uring_submit,
	.reap = uring_reap,
};

/* ------------------------------------------------------------ setup */

/* Setup flags, best first; EINVAL moves to the next. SINGLE_ISSUER (6.0)
 * lets the kernel skip locking; COOP_TASKRUN (5.19) runs completion work
 * when we enter the kernel anyway instead of interrupting the thread, and
 * TASKRUN_FLAG tells liburing's peek when such work is waiting. SUBMIT_ALL
 * (5.18) keeps submitting after a bad SQE, so one bad request does not
 * strand the others in the SQ. R_DISABLED goes with SINGLE_ISSUER: see
 * enable_ring(). */
static const unsigned setup_ladder[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED | IORING_SETUP_COOP_TASKRUN |
		IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
	0,
};

static void describe_flags(struct uring_io *u, unsigned depth)
{
	snprintf(u->base.describe, sizeof u->base.describe, "uring: depth %u%s%s%s%s", depth,
		 u->setup_flags & IORING_SETUP_SINGLE_ISSUER ? ", SINGLE_ISSUER" : "",
		 u->setup_flags & IORING_SETUP_COOP_TASKRUN ? ", COOP_TASKRUN" : "",
		 u->setup_flags & IORING_SETUP_TASKRUN_FLAG ? ", TASKRUN_FLAG" : "",
		 u->setup_flags & IORING_SETUP_SUBMIT_ALL ? ", SUBMIT_ALL" : "");
}

int ab_io_uring_open(unsigned depth, ab_io **out, int *sys_err)
{
	*out = NULL;
	*sys_err = 0;
	struct uring_io *u = calloc(1, sizeof *u);
	if (!u)
		return ab_error_set(AB_ENOMEM, "io_uring: out of memory");
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof setup_ladder / sizeof setup_ladder[0]; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = setup_ladder[i];
		rc = io_uring_queue_init_params(depth, &u->ring, &p);
		if (rc == 0) {
			u->setup_flags = setup_ladder[i];
			break;
		}
		if (rc != -EINVAL)
			break;
	}
	if (rc < 0) {
		free(u);
		if (rc == -ENOSYS || rc == -EPERM || rc == -ENOMEM || rc == -EINVAL) {
			*sys_err = -rc;
			return AB_EUNSUPPORTED;
		}
		return ab_error_set(AB_EIO, "io_uring: setup of a %u-entry ring: %s", depth,
				    strerror(-rc));
	}
	u->enabled = !(u->setup_flags & IORING_SETUP_R_DISABLED);

	/* IORING_OP_READ (plain buffer, not iovec) came in 5.6, with the probe
	 * itself; a ring without a probe is too old for us. */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
	int have_read = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
			io_uring_opcode_supported(probe, IORING_OP_READ_FIXED);
	if (probe)
		io_uring_free_probe(probe);
	if (!have_read) {
		io_uring_queue_exit(&u->ring);
		free(u);
		*sys_err = ENOTSUP;
		return AB_EUNSUPPORTED;
	}

	/* A peek never returns more CQEs than are in flight. */
	u->ncqes = depth;
	u->cqes = calloc(u->ncqes, sizeof *u->cqes);
	if (!u->cqes) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return ab_error_set(AB_ENOMEM, "io_uring: out of memory");
	}
	u->base.ops = &uring_ops;
	describe_flags(u, depth);
	*out = &u->base;
	return AB_OK;
}
