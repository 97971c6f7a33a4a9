/*
 * io.h - the I/O backend: asynchronous reads of byte ranges (internal).
 *
 * One interface, two implementations: io_uring (liburing; O_DIRECT capable,
 * registered buffers and files, batched submission) and a pread thread pool
 * (when io_uring cannot be set up, or on request). Both are driven by one
 * thread, the loader's event loop: it submits requests and reaps completions;
 * nothing else touches a backend. Results are identical whichever is used.
 */
#ifndef AB_ENGINE_IO_H
#define AB_ENGINE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct ab_io ab_io;

typedef struct ab_io_req {
	int fd;               /* opened by the caller                              */
	int direct;           /* fd was opened with O_DIRECT: offset, len and buf   */
	                      /* are multiples of the alignment                    */
	uint64_t offset;
	uint32_t len;
	void *buf;            /* len bytes (aligned for direct reads)               */
	int buf_index;        /* registered buffer index, or -1                     */
	unsigned fixed_file;  /* 0: read `fd`; k > 0: registered file slot k - 1,    */
	                      /* which must hold `fd` (ab_io_set_file)              */
	/* results, filled by the backend */
	int64_t result;       /* bytes read (< len only at end of file), or -errno  */
	uint64_t submit_ns, complete_ns; /* CLOCK_MONOTONIC, for latency stats    */
	void *user;           /* the caller's                                       */
} ab_io_req;

typedef enum ab_io_kind { AB_IO_URING = 1, AB_IO_PREAD = 2 } ab_io_kind;

typedef struct ab_io_config {
	ab_io_kind kind;      /* AB_IO_URING falls back to AB_IO_PREAD if it cannot */
	                      /* be set up (ENOSYS, EPERM, ENOMEM); see ab_io_kind_of */
	unsigned queue_depth; /* reads in flight at most (default 64)               */
	unsigned threads;     /* pread pool size (default 4)                        */
} ab_io_config;

/* Creates a backend. With AB_IO_URING and io_uring unavailable, creates the
 * pread pool instead and leaves the reason in *fallback_reason (static text).
 *
 * Fault injection (for tests): when the environment variable AB_IO_FAULT is
 * set and not empty, the backend is wrapped in one that spoils chosen reads,
 * numbered 1, 2, 3, ... in submission order since the backend was made or
 * ab_io_restart_count was last called (the loader calls it before each
 * epoch's first read, so N counts the reads of an epoch). A comma-separated
 * list of KIND@N[:ARG][~R] (~R: only in the R-th epoch run, io_fault.h):
 *   eio@N            read N fails with -EIO
 *   short@N[:K]      read N returns K bytes (default half of them), as at a
 *                    premature end of file
 *   corrupt@N[:OFF]  read N succeeds with one byte flipped (at OFF modulo
 *                    the length read; default the middle byte)
 *   delay@N[:T]      read N is handed back T later (250ms, 40us, 2s, 1000ns;
 *                    a bare number is ms; default 100ms)
 *   regfail@N        the N-th buffer registered in a slot (ab_io_set_buffer)
 *                    is refused with AB_ENOMEM
 * e.g. AB_IO_FAULT="eio@5" or "delay@1:20ms,corrupt@3". A list that does not
 * parse makes ab_io_create fail with AB_EINVAL. The wrapper reports the kind
 * and name of the real backend and keeps its rules (one driving thread).
 * See io_fault.h. */
int ab_io_create(const ab_io_config *cfg, ab_io **out, const char **fallback_reason);
void ab_io_destroy(ab_io *io);
ab_io_kind ab_io_kind_of(const ab_io *io);
const char *ab_io_name(const ab_io *io); /* "uring" / "pread" */
unsigned ab_io_queue_depth(const ab_io *io);

/* Registers buffers (io_uring fixed buffers; no-op for pread). Optional: reads
 * with buf_index = -1 work without it. Only with nothing in flight; pins every
 * page of every buffer before it returns (faulting in those never touched). */
int ab_io_register_buffers(ab_io *io, void *const *bufs, const size_t *lens, unsigned n);

/* Registered buffers one slot at a time: a table of n empty slots (io_uring:
 * a sparse buffer table, kernel 5.19), then ab_io_set_buffer puts a buffer
 * in a slot, or empties it (buf NULL, len 0). Reads naming other slots may
 * be in flight meanwhile; reads naming that slot may not (AB_EINVAL): the
 * kernel may look a read's buffer up only when it issues the read. The cost
 * of a registration is that of pinning the buffer's pages: small for pages
 * already in memory, that of faulting them in for pages never touched
 * (hundreds of ms for a window's buffer on some virtual machines), so a
 * caller that can register memory it has already used does. A request may
 * name a slot (buf_index) only while it holds a buffer that contains the
 * request's. Replaces a table made by ab_io_register_buffers and vice versa.
 * The pread pool keeps the table for the checks and pins nothing. Both only
 * from the driving thread. */
int ab_io_register_buffer_slots(ab_io *io, unsigned n);
int ab_io_set_buffer(ab_io *io, unsigned slot, void *buf, size_t len);

/* Registered files: a table of n slots (io_uring: a sparse fixed-file table,
 * so a read skips the per-read file-table lookup; the pread pool has nothing
 * to register and reads `fd`). ab_io_set_file puts `fd` in a slot (-1 clears
 * it) and may be called with reads in flight; requests then name the slot in
 * fixed_file. Both only from the driving thread. */
int ab_io_register_files(ab_io *io, unsigned n);
int ab_io_set_file(ab_io *io, unsigned slot, int fd);

/* Queues up to n requests (n <= free slots = queue_depth - in flight) and
 * submits them with one system call. Returns the number queued (>= 0) or a
 * negative AB_E* code. Short reads that are not at end of file and
 * EINTR/EAGAIN are retried inside the backend: a completed request has its
 * final result. */
int ab_io_submit(ab_io *io, ab_io_req *const *reqs, unsigned n);

/* Collects completed requests into done[0..max). Waits until at least
 * `min_wait` are complete (0: do not wait). Returns the number collected or a
 * negative AB_E* code. */
int ab_io_reap(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait);

/* Numbers the reads from 1 again (the fault wrapper's count, see AB_IO_FAULT
 * above; nothing for the real backends). The loader calls it before the
 * first read of each epoch, so that a fault names a read of the epoch, also
 * when the backend is kept from one epoch to the next. From the driving
 * thread. */
void ab_io_restart_count(ab_io *io);

/* Requests submitted and not yet reaped. */
unsigned ab_io_inflight(const ab_io *io);

/* The O_DIRECT alignment for a file (offset and memory), from statx
 * STATX_DIOALIGN when the kernel reports it, else the logical block size of
 * the device, else 4096. */
int ab_io_dio_alignment(int fd, uint32_t *mem_align, uint32_t *offset_align);

/* One line for stats and logs: the backend, its depth and what the kernel
 * accepted, e.g. "uring: depth 64, SINGLE_ISSUER, COOP_TASKRUN, ..." or
 * "pread: depth 64, 4 threads (fallback)". Valid until ab_io_destroy. */
const char *ab_io_describe(const ab_io *io);

/* Current CLOCK_MONOTONIC time in nanoseconds. */
uint64_t ab_now_ns(void);

#endif
