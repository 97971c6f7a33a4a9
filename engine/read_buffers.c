/*
 * read_buffers.c - the windows' read buffers: their arenas, registered with
 * the io_uring ring once they are in memory; and the prefaulting of fresh
 * buffers that are about to be written whole.
 *
 * Each window struct (max_windows of them are in use) reads into its own
 * arena, kept across its reuse, and has a slot in the ring's table of
 * registered buffers, so that reads into it skip the per-read page pinning
 * (read_fixed). Registering a buffer pins every page of it and faults in
 * those never touched. On the reference VM (2 cores, a host that takes back
 * freed guest memory) a fresh page costs 0.4-1 ms a MB to fault in, so
 * registering all slots' buffers before the first read (the way it was
 * done) cost 160-770 ms before anything was read. Now nothing is pinned up
 * front: the table starts empty; a slot's first window reads into its arena
 * with ordinary reads, which fault the pages in as they must anyway; once
 * that window's reads are all done, its arena is registered in the slot,
 * which takes a few ms because the pages are there; the later windows of
 * the struct read into it with read_fixed. An epoch's first window puts
 * even that off until its first batch is out (event_loop.c). A
 * registration the kernel refuses (the locked-memory limit) leaves the
 * remaining windows on ordinary buffers, and the note of the stats says so.
 * (Transparent huge pages were tried for these buffers: pinning them took
 * 40 ms or 1 s from one run to the next on the reference VM.)
 */
#include "loader_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "last_error.h"

#define MAX_REG_SLOTS 64u

static size_t page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

/* Why buffers stopped being registered, for the stats (which count those
 * that are). */
static void reg_note(ab_loader *ld, const char *why)
{
	pthread_mutex_lock(&ld->mu);
	snprintf(ld->note, sizeof ld->note, "buffer registration refused, windows read into plain buffers: %s", why);
	pthread_mutex_unlock(&ld->mu);
}

/* The empty table, made once for the backend before its first read. Its
 * slots are arena-sized: the first window's arena with a quarter of
 * headroom, so that the windows after it fit. */
static void buffer_table(ab_loader *ld, size_t first_arena)
{
	ld->reg_tried = 1;
	ld->reg_slots = 0;
	ld->reg_off = 0;
	atomic_store(&ld->reg_count, 0);
	ld->reg_size = page_round(first_arena + first_arena / 4);
	/* The pread pool accepts a registration and does nothing with it: the
	 * stats must not then say the reads go into registered buffers. */
	if (strcmp(ab_io_name(ld->io), "uring") != 0)
		return;
	unsigned n = ld->cfg.max_windows < MAX_REG_SLOTS ? ld->cfg.max_windows : MAX_REG_SLOTS;
	free(ld->slot_buf);
	free(ld->slot_len);
	ld->slot_buf = calloc(n, sizeof *ld->slot_buf);
	ld->slot_len = calloc(n, sizeof *ld->slot_len);
	if (!ld->slot_buf || !ld->slot_len)
		return;
	if (ab_io_register_buffer_slots(ld->io, n) != 0) {
		reg_note(ld, ab_last_error());
		return;
	}
	ld->reg_slots = n;
}

/* Empties the window's slot if it holds the window's arena, before the
 * arena is freed: a slot must never name memory that is gone (a new
 * allocation at the same address would not be the pinned pages). If the
 * kernel refuses, the slot is given up for good. */
static void slot_release(ab_loader *ld, ld_window *w)
{
	if (w->slot < 0 || (unsigned)w->slot >= ld->reg_slots || !ld->slot_buf[w->slot])
		return;
	if (ab_io_set_buffer(ld->io, (unsigned)w->slot, NULL, 0) != 0) {
		ld->reg_off = 1;
		reg_note(ld, ab_last_error());
		w->slot = -1; /* never used again: it still holds the old pages */
		return;
	}
	ld->slot_buf[w->slot] = NULL;
	ld->slot_len[w->slot] = 0;
	atomic_fetch_sub(&ld->reg_count, 1);
}

/* All reads of window w are done: its arena's pages that reads touched are
 * in memory, cheap to pin. Registers them in the window's slot unless the
 * slot holds them already (event loop). */
void slot_register(ab_loader *ld, ld_window *w)
{
	if (ld->reg_off || w->slot < 0 || (unsigned)w->slot >= ld->reg_slots || !w->arena)
		return;
	size_t len = page_round(w->arena_used < w->arena_size ? w->arena_used : w->arena_size);
	if (len > w->arena_size)
		len = w->arena_size;
	if (len == 0 || (ld->slot_buf[w->slot] == w->arena && ld->slot_len[w->slot] >= len))
		return;
	int had = ld->slot_buf[w->slot] != NULL;
	if (ab_io_set_buffer(ld->io, (unsigned)w->slot, w->arena, len) != 0) {
		/* The slot keeps what it held (an earlier, shorter extent of this
		 * arena, or nothing): still right. No more attempts. */
		ld->reg_off = 1;
		reg_note(ld, ab_last_error());
		return;
	}
	ld->slot_buf[w->slot] = w->arena;
	ld->slot_len[w->slot] = len;
	if (!had)
		atomic_fetch_add(&ld->reg_count, 1);
}

/* The window's read buffer of `arena` bytes: its arena (allocated slot-sized
 * the first time, grown when a window needs more), registered or not.
 * Returns the base and sets *index to the registered slot, or -1. */
uint8_t *window_arena(ab_loader *ld, ld_window *w, size_t arena, int *index)
{
	*index = -1;
	if (!ld->reg_tried)
		buffer_table(ld, arena);
	if (w->slot < 0 && ld->slots_used < ld->reg_slots)
		w->slot = (int)ld->slots_used++;
	if (!w->arena || arena > w->arena_size) {
		size_t want = arena;
		if (w->slot >= 0 && want < ld->reg_size)
			want = ld->reg_size;
		slot_release(ld, w);
		free(w->arena);
		w->arena = NULL;
		w->arena_size = w->arena_used = 0;
		if (posix_memalign(&w->arena, 4096, want) != 0) {
			w->arena = NULL;
			ab_error_set(AB_ENOMEM, "out of memory for %zu bytes of read buffers", want);
			return NULL;
		}
		w->arena_size = want;
	}
	if (w->slot >= 0 && (unsigned)w->slot < ld->reg_slots && ld->slot_buf[w->slot] == w->arena &&
	    ld->slot_len[w->slot] >= arena)
		*index = w->slot;
	if (arena > w->arena_used)
		w->arena_used = arena;
	return w->arena;
}

/* ------------------------------------------------------------ prefaulting */

/* Faults in the pages of [p, p + len), for a buffer about to be written
 * whole. Fresh memory takes a page fault for each 4 KiB page when it is
 * first written; MADV_POPULATE_WRITE (Linux 5.14) faults them in a loop in
 * the kernel instead, 0.4 against 0.6 ms a MB on the reference VM, and the
 * first window's buffers are hundreds of MB. In 2 MB pieces: the call holds
 * the process's mmap lock while it runs, and a 100 MB one kept the event
 * loop's allocations (mmap) waiting for 40 ms. A hint: a kernel that does
 * not know it refuses it, and the pages are faulted in as they are
 * written. */
void populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, e = ((uintptr_t)p + len) & ~(uintptr_t)4095;
	while (p && a < e) {
		uintptr_t n = e - a < ((uintptr_t)2 << 20) ? e - a : (uintptr_t)2 << 20;
		(void)madvise((void *)a, n, MADV_POPULATE_WRITE);
		a += n;
	}
#else
	(void)p;
	(void)len;
#endif
}
