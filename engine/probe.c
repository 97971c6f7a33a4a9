/* probe.c - block layouts learnt before a window's units are read.
 *
 * The loader reads only the blosc blocks that hold a unit's rows once it
 * knows the unit's block layout (plan.c). Learnt from whole reads alone,
 * every frame is read whole the first time it is needed: an epoch's first
 * window on a fresh loader then reads about four times the bytes it needs
 * (128 MB instead of 30 MB on the 300 000-row sparse perf set at chunk 32),
 * and that read was most of the time to the first batch.
 *
 * Here the event loop first reads the header and block table of each such
 * frame (16 + 4 bytes a block, at most PROBE_BYTES taken: one small read a
 * frame, all sent at once), learns the layouts, and the window is planned
 * with part reads. It is done only while nothing else is in flight (an
 * epoch's start, and the window after the first, planned once the first is
 * out): every completion reaped is then a probe's. A probe that fails (an
 * I/O error, a short read, a header that does not parse, a table longer
 * than what was read) leaves its unit to be read whole, whose read reports
 * any error the usual way. */
#include "loader_impl.h"

#include <stdlib.h>
#include <string.h>

#include "last_error.h"

/* Bytes read from a frame's start: its header and a table of up to 1020
 * blocks (a 16 MiB chunk of 16 KiB blocks). */
#define PROBE_BYTES 4096u
/* A buffer slot: the probe widened to the O_DIRECT alignment on both ends. */
#define PROBE_SLOT (PROBE_BYTES + 2 * 4096u)
/* Frames shorter than this are read whole: a probe would save little. With
 * O_DIRECT a probe reads two alignment units at most and the part read is
 * widened to the alignment too, so there frames must be longer still. */
#define PROBE_MIN_FRAME ((uint64_t)16 << 10)
#define PROBE_MIN_ALIGNS 12u

typedef struct probe {
	ab_io_req req;
	ld_unit *u;
	long slot;      /* the pinned file slot */
	uint32_t skip;  /* bytes read before the frame's start (alignment) */
} probe;

static int wanted(ab_loader *ld, const ld_unit *u)
{
	uint64_t A = ld->direct ? (ld->align ? ld->align : 4096) : 1, min = PROBE_MIN_FRAME;
	if (A * PROBE_MIN_ALIGNS > min)
		min = A * PROBE_MIN_ALIGNS;
	return u->present && u->length != UINT64_MAX && u->length >= min && u->ncopies &&
	       array_partial(ld, u->arr) && !layout_known(ld, u->arr, u->lin);
}

static void learn(ab_loader *ld, probe *p)
{
	const ld_unit *u = p->u;
	if (p->req.result <= (int64_t)p->skip)
		return;
	size_t avail = (size_t)p->req.result - p->skip;
	if (avail > u->length)
		avail = (size_t)u->length;
	layout_learn(ld, u->arr, u->lin, (const uint8_t *)p->req.buf + p->skip, avail, (size_t)u->length);
}

int probe_layouts(ab_loader *ld, ld_window *w)
{
	size_t n = 0;
	for (size_t i = 0; i < w->nunits; i++)
		n += (size_t)wanted(ld, &w->units[i]);
	if (n == 0)
		return 0;
	if (ensure((void **)&ld->probe_reqs, &ld->probe_reqs_cap, n * sizeof(probe)))
		return 0; /* no memory for probes: the units are read whole */
	if (ld->probe_cap < n * PROBE_SLOT) {
		free(ld->probe_buf);
		ld->probe_buf = NULL;
		ld->probe_cap = 0;
		if (posix_memalign(&ld->probe_buf, 4096, n * PROBE_SLOT) != 0) {
			ld->probe_buf = NULL;
			return 0;
		}
		ld->probe_cap = n * PROBE_SLOT;
	}
	probe *ps = ld->probe_reqs;
	size_t np = 0;
	for (size_t i = 0; i < w->nunits && np < n; i++) {
		ld_unit *u = &w->units[i];
		if (!wanted(ld, u))
			continue;
		/* probes hold their files open together: near the open-file
		 * budget the rest are read whole (read_fd waits for room) */
		if (ld->fds_open + ld->own_open + 1 >= ld->fd_budget)
			break;
		probe *p = &ps[np];
		int fd;
		unsigned fixed;
		if (unit_fd(ld, u, &fd, &fixed, &p->slot) != 0) {
			/* the unit's read meets the same and says so */
			ab_error_clear();
			continue;
		}
		/* the alignment is known once a file is open (files.c) */
		uint64_t A = ld->direct ? (ld->align ? ld->align : 4096) : 1;
		uint64_t want = u->length < PROBE_BYTES ? u->length : PROBE_BYTES;
		uint64_t a = u->offset / A * A, e = (u->offset + want + A - 1) / A * A;
		if (e - a > PROBE_SLOT) {
			fd_unpin_slot(ld, p->slot);
			continue;
		}
		p->u = u;
		p->skip = (uint32_t)(u->offset - a);
		memset(&p->req, 0, sizeof p->req);
		p->req.fd = fd;
		p->req.direct = ld->direct;
		p->req.offset = a;
		p->req.len = (uint32_t)(e - a);
		p->req.buf = (uint8_t *)ld->probe_buf + np * PROBE_SLOT;
		p->req.buf_index = -1;
		p->req.fixed_file = fixed;
		p->req.user = p;
		np++;
	}
	unsigned qd = ab_io_queue_depth(ld->io);
	size_t sent = 0, back = 0;
	int rc = 0;
	while (back < sent || (sent < np && rc == 0)) {
		unsigned inflight = ab_io_inflight(ld->io);
		ab_io_req *batch[256];
		unsigned k = 0;
		while (rc == 0 && sent + k < np && k < 256 && inflight + k < qd) {
			batch[k] = &ps[sent + k].req;
			k++;
		}
		if (k) {
			int m = ab_io_submit(ld->io, batch, k);
			if (m < 0) {
				/* the probes not sent are not made; those out are
				 * collected below */
				ab_error_clear();
				rc = 1;
			} else {
				atomic_fetch_add_explicit(&ld->st_reads, (uint64_t)m, memory_order_relaxed);
				sent += (size_t)m;
				if (m == 0 && ab_io_inflight(ld->io) == 0)
					rc = 1; /* nothing taken, nothing to wait for */
			}
		}
		if (back == sent)
			continue;
		ab_io_req *done[256];
		int got = ab_io_reap(ld->io, done, 256, 1);
		if (got < 0) {
			/* the ring itself failed: the error stands, and the event
			 * loop stops on the window's error */
			for (size_t i = 0; i < np; i++)
				fd_unpin_slot(ld, ps[i].slot);
			return got;
		}
		for (int j = 0; j < got; j++) {
			probe *p = done[j]->user;
			if (p->req.result > 0)
				atomic_fetch_add_explicit(&ld->st_bytes_read, (uint64_t)p->req.result,
							  memory_order_relaxed);
			learn(ld, p);
		}
		back += (size_t)got;
	}
	for (size_t i = 0; i < np; i++)
		fd_unpin_slot(ld, ps[i].slot);
	return 0;
}
