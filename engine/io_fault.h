/*
 * io_fault.h - a fault-injecting wrapper around an I/O backend (internal,
 * for tests).
 *
 * ab_io_create() wraps whatever backend it made in this one when the
 * environment variable AB_IO_FAULT is set (see io.h for the syntax). The
 * wrapper passes every call through to the real backend and then spoils the
 * completion of chosen reads, counted 1, 2, 3, ... in the order they were
 * submitted to this backend instance (since ab_io_restart_count, if called):
 *
 *   eio@N            read N completes with -EIO (the buffer is whatever the
 *                    real read left in it)
 *   short@N[:K]      read N completes with K bytes (default: half of what was
 *                    really read), as if the file ended early
 *   corrupt@N[:OFF]  read N succeeds but one byte of its buffer is flipped
 *                    (at offset OFF modulo the bytes read; default: the
 *                    middle byte)
 *   delay@N[:T]      read N is handed back no sooner than T after it really
 *                    completed (T: 250ms, 40us, 2s, 1000ns; a bare number
 *                    is milliseconds; default 100ms)
 *   regfail@N        the N-th buffer put in a slot of the registered buffer
 *                    table (ab_io_set_buffer with a buffer, counted from the
 *                    backend's creation, never restarted) is refused with
 *                    AB_ENOMEM, as the locked-memory limit refuses it; the
 *                    slot keeps what it held. No argument, no round.
 *
 * A fault applies in every round, or with a suffix ~R only in round R: the
 * reads from the creation to the first ab_io_restart_count that follows a
 * read are round 1, and each such restart begins the next round. The loader
 * restarts the count before each epoch's first read, so a round is an epoch
 * (one read ahead of its start included), e.g. eio@3~2: read 3 of the second
 * epoch run.
 *
 * The wrapper reports the kind and name of the backend it wraps, and obeys
 * the same rules (one driving thread, queue depth, registered buffers):
 * io.c checks the wrapper exactly as it checks a real backend, and the
 * wrapper drives the real one from that same thread.
 */
#ifndef AB_ENGINE_IO_FAULT_H
#define AB_ENGINE_IO_FAULT_H

#include <stdint.h>

#include "io.h"

#define AB_IO_MAX_FAULTS 32u

typedef enum ab_fault_kind {
	AB_FAULT_EIO = 1,
	AB_FAULT_SHORT,
	AB_FAULT_CORRUPT,
	AB_FAULT_DELAY,
	AB_FAULT_REGFAIL
} ab_fault_kind;

typedef struct ab_fault {
	ab_fault_kind kind;
	uint64_t nth;   /* 1-based position of the read in submission order       */
	                /* (regfail: of the buffer registration)                   */
	uint64_t arg;   /* short: bytes; corrupt: offset; delay: nanoseconds;      */
	                /* UINT64_MAX for short/corrupt means "the default"        */
	uint64_t round; /* only in this round (~R), 0: in every round              */
} ab_fault;

/* Parses a fault list such as "eio@5,delay@2:30ms" into faults[0..*n).
 * Returns AB_EINVAL with a message naming the bad item. */
int ab_io_fault_parse(const char *spec, ab_fault *faults, unsigned max, unsigned *n);

/* Wraps `inner` (which the wrapper then owns and destroys) in a backend that
 * applies the faults of `spec`. On failure `inner` is left to the caller. */
int ab_io_fault_wrap(ab_io *inner, const char *spec, ab_io **out);

#endif
