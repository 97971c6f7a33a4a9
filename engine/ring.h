/*
 * ring.h - a bounded multi-producer multi-consumer queue of pointers (internal).
 *
 * Lock-free on the fast path: one sequence number per slot, compare-and-swap
 * on the head and the tail, acquire/release ordering, head and tail on their
 * own cache lines (the design of D. Vyukov's bounded MPMC queue). Consumers
 * that find it empty can sleep in ab_ring_pop_wait() without spinning: a
 * futex on the slow path, which producers touch only when someone sleeps.
 */
#ifndef AB_ENGINE_RING_H
#define AB_ENGINE_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct ab_ring ab_ring;

/* Capacity is rounded up to a power of two (>= 2). NULL on failure. */
ab_ring *ab_ring_create(size_t capacity);
void ab_ring_destroy(ab_ring *r);
size_t ab_ring_capacity(const ab_ring *r);

/* Non-blocking. Return 0 on success, -1 if full (push) / empty (pop).
 * Pushing NULL is not allowed (it is refused with -1, so a retry-while-full
 * loop must not pass NULL). Any thread may call either. A push that finds
 * consumers asleep in ab_ring_pop_wait() wakes one of them; otherwise it makes
 * no syscall. Per producer, items leave in the order they were pushed. */
int ab_ring_push(ab_ring *r, void *item);
int ab_ring_pop(ab_ring *r, void **item);

/* Pops, sleeping while the ring is empty and not closed. Returns 0 with an
 * item, or 1 once the ring is closed and drained (no item). It never returns
 * otherwise: spurious wakes and ab_ring_wake_all() only make it re-check. */
int ab_ring_pop_wait(ab_ring *r, void **item);
/* The same with a deadline (CLOCK_MONOTONIC ns, UINT64_MAX = none): returns
 * 2 with no item once the deadline passes with the ring open and empty. */
int ab_ring_pop_wait_until(ab_ring *r, void **item, uint64_t deadline_ns);
/* The deadline `timeout_ns` from now, for ab_ring_pop_wait_until. */
uint64_t ab_ring_deadline(uint64_t timeout_ns);

/* After close, pop_wait returns 1 as soon as the ring is empty, and wakes
 * every sleeper. Pushes after close are still accepted (items are drained).
 * "Drained" covers every push that happened before the close (e.g. producers
 * joined first); an item pushed concurrently with or after the close may
 * arrive after some consumer already got 1 - drain it with ab_ring_pop(). */
void ab_ring_close(ab_ring *r);
/* Re-opens a closed ring (for the next epoch). Call it only once every
 * consumer of the previous epoch has had pop_wait return 1 (or has stopped
 * calling it); otherwise a consumer may miss the close. */
void ab_ring_reopen(ab_ring *r);

/* Wakes every sleeper without closing (used when an error is posted).
 * Woken consumers re-check and, if the ring is still open and empty, sleep
 * again: this alone does not make pop_wait return. To get consumers out
 * (e.g. to report the posted error), post the error, then ab_ring_close(),
 * which wakes them too; they return 1 once the ring is empty. */
void ab_ring_wake_all(ab_ring *r);

/* Approximate number of items (for stats). */
size_t ab_ring_size(const ab_ring *r);

#endif
