/*
 * ring.c - bounded MPMC queue of pointers with a sleeping slow path.
 *
 * The fast path
 * -------------
 * Every slot carries a sequence number that says what the slot is waiting
 * for. For the slot at ring position pos (index pos & mask):
 *   seq == pos             the slot is free for the producer that claims pos;
 *   seq == pos + 1         it holds the item for the consumer that claims pos;
 *   seq == pos + capacity  it was consumed and is free for the next lap.
 * A producer reads the enqueue position, checks the slot's sequence and, if it
 * is the expected one, claims the position with a CAS on the enqueue counter.
 * It then owns the slot alone: it writes the item and publishes it with a
 * release store of seq = pos + 1. Consumers mirror this with the dequeue
 * counter, read the item, and hand the slot to the next lap with a release
 * store of seq = pos + capacity. The acquire load of seq on the other side is
 * what makes the plain item field safe to read or overwrite, so there is no
 * lock and no data race, only one CAS per operation.
 *
 * Counters are size_t and wrap; the signed difference (seq - pos) still tells
 * "ready", "full/empty" and "someone got here first" apart as long as the
 * capacity is far below SIZE_MAX / 2, which create() enforces.
 *
 * The slow path (the eventcount)
 * ------------------------------
 * A consumer that finds the ring empty must sleep, and producers must not pay
 * a syscall when nobody sleeps. Three words live together on their own line:
 *   event     a 32-bit counter, the futex word; bumped whenever sleepers must
 *             re-check (an item arrived, close, wake_all);
 *   sleepers  how many consumers are in the slow path of pop_wait (asleep,
 *             or awake and about to re-check); an over-count only costs a
 *             needless wake, an under-count would lose one;
 *   closed    set by close, cleared by reopen.
 * The waiter: (0) increments sleepers, then in a loop (1) reads event,
 * (2) full fence, (3) re-checks the ring and the closed flag, (4) futex-waits
 * for event to change from the value read in (1); it decrements sleepers when
 * it leaves with an item (handing the wake on if more items wait, see
 * hand_on()) or with "closed and drained". The producer: (a) publishes the
 * item, (b) full fence, (c) reads sleepers, and only if it is non-zero
 * (d) bumps event and (e) FUTEX_WAKEs one sleeper. The reasoning for why no
 * wakeup is lost is next to the fences below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall() under -std=c11 */
#endif

#include "ring.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * GCC 12 warns that ThreadSanitizer does not model standalone fences. That is
 * expected here: the fences only order the eventcount's store/load pairs
 * (which decide whether to sleep or to wake, something TSan cannot judge
 * anyway), while the item hand-off that TSan does check goes through the
 * acquire/release sequence numbers, which it models fully.
 */
#if defined(__SANITIZE_THREAD__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

/* Destructive-interference size of the x86-64 and arm64 parts we run on. */
#define AB_RING_LINE 64

/* How many times pop_wait retries before it goes to sleep. Short: a producer
 * that is about to publish is worth a few hundred cycles of waiting, but a
 * consumer that waits for disk I/O must not burn a core. */
#define AB_RING_SPIN 64

/* The futex word must be a plain 32-bit integer in memory. */
_Static_assert(sizeof(atomic_uint) == 4, "futex word must be 32 bits");

/*
 * One slot per cache line. The ring's capacity is the loader's back-pressure
 * (a handful to a few hundred batches), so the padding costs little, and a
 * producer filling slot i no longer invalidates the line a consumer is
 * reading slot i-1 from.
 */
struct ab_ring_slot {
	alignas(AB_RING_LINE) atomic_size_t seq;
	void *item; /* owned by whoever the sequence number says owns the slot */
};

struct ab_ring {
	/* Written once by create(), then only read: kept off the hot lines so
	 * every write to a counter does not invalidate it in all readers. */
	alignas(AB_RING_LINE) size_t mask;

	/* Tail: producers' CAS target. */
	alignas(AB_RING_LINE) atomic_size_t enqueue_pos;

	/* Head: consumers' CAS target, on another line so producers and
	 * consumers do not fight over one line when neither is contended. */
	alignas(AB_RING_LINE) atomic_size_t dequeue_pos;

	/* Slow-path state; touched by producers only as one relaxed load. */
	alignas(AB_RING_LINE) atomic_uint event;
	atomic_uint sleepers;
	atomic_int closed;

	/* capacity slots, each on its own line (the struct is line-aligned). */
	struct ab_ring_slot slots[];
};

/* The layout the comments above promise; aligned_alloc() relies on the sizes
 * being multiples of the line. */
_Static_assert(sizeof(struct ab_ring_slot) == AB_RING_LINE, "one slot per cache line");
_Static_assert(sizeof(struct ab_ring) % AB_RING_LINE == 0, "header fills whole lines");

/* ------------------------------------------------------------------------ */
/* small helpers                                                            */
/* ------------------------------------------------------------------------ */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Sleeps while *word == expected. Returns on a wake, on a signal, or at once
 * if the word already differs; the caller re-checks its condition in every
 * case, so the return value does not matter. */
static void futex_wait(atomic_uint *word, unsigned expected, const struct timespec *timeout)
{
	(void)syscall(SYS_futex, (void *)word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wake(atomic_uint *word, int n)
{
	(void)syscall(SYS_futex, (void *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Makes sleepers re-check: the bump is what their futex_wait compares
 * against, so a waiter that read the old value and has not reached the
 * kernel yet will not sleep; those already asleep are woken. The release
 * half of the RMW makes everything before it (an item, the closed flag)
 * visible to a waiter whose acquire load of event reads the new value.
 * (The counter is 32 bits and wraps: a waiter would miss a wake only if
 * exactly 2^32 bumps happened between its snapshot and its futex_wait.) */
static void signal_sleepers(ab_ring *r, int n)
{
	atomic_fetch_add_explicit(&r->event, 1u, memory_order_release);
	futex_wake(&r->event, n);
}

/* ------------------------------------------------------------------------ */
/* life cycle                                                               */
/* ------------------------------------------------------------------------ */

ab_ring *ab_ring_create(size_t capacity)
{
	/* Keep the counters' signed difference meaningful (see top) and the
	 * allocation size representable. */
	const size_t limit = ((size_t)1 << (sizeof(size_t) * CHAR_BIT - 2));
	size_t cap = 2;
	while (cap < capacity) {
		if (cap >= limit)
			return NULL;
		cap <<= 1;
	}
	if (cap > (SIZE_MAX - sizeof(ab_ring)) / sizeof(struct ab_ring_slot))
		return NULL;

	/* sizeof both the header and a slot are multiples of the line, so the
	 * total is too, as aligned_alloc requires. */
	size_t bytes = sizeof(ab_ring) + cap * sizeof(struct ab_ring_slot);
	ab_ring *r = aligned_alloc(AB_RING_LINE, bytes);
	if (r == NULL)
		return NULL;

	r->mask = cap - 1;
	atomic_init(&r->enqueue_pos, 0);
	atomic_init(&r->dequeue_pos, 0);
	atomic_init(&r->event, 0);
	atomic_init(&r->sleepers, 0);
	atomic_init(&r->closed, 0);
	for (size_t i = 0; i < cap; i++) {
		atomic_init(&r->slots[i].seq, i);
		r->slots[i].item = NULL;
	}
	/* Other threads learn of r through whatever the caller uses to share
	 * the pointer (thread creation, a mutex, a release store), which
	 * orders these plain initialisations before their first use. */
	return r;
}

void ab_ring_destroy(ab_ring *r)
{
	free(r);
}

size_t ab_ring_capacity(const ab_ring *r)
{
	return r->mask + 1;
}

/* ------------------------------------------------------------------------ */
/* the lock-free fast path                                                  */
/* ------------------------------------------------------------------------ */

int ab_ring_push(ab_ring *r, void *item)
{
	if (item == NULL)
		return -1; /* NULL is reserved; refusing it beats storing it */

	struct ab_ring_slot *s;
	size_t pos = atomic_load_explicit(&r->enqueue_pos, memory_order_relaxed);
	for (;;) {
		s = &r->slots[pos & r->mask];
		/* Acquire: if the slot was freed by a consumer, its read of
		 * the old item happens before our write of the new one. */
		size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)(seq - pos);
		if (dif == 0) {
			/* Free for this lap: claim it. Relaxed is enough, the
			 * counter only arbitrates; data goes through seq. On
			 * failure pos is reloaded with the current value. */
			if (atomic_compare_exchange_weak_explicit(&r->enqueue_pos, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			/* Still holds the item from one lap ago: full. */
			return -1;
		} else {
			/* Another producer claimed pos already; catch up. */
			pos = atomic_load_explicit(&r->enqueue_pos, memory_order_relaxed);
		}
	}
	s->item = item;
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);

	/*
	 * Wake a sleeper, but only if there may be one. This is the classic
	 * store-then-load race against the waiter, which does
	 *     sleepers += 1; fence; look at the ring
	 * while we did
	 *     publish seq;   fence; look at sleepers.
	 * Acquire/release cannot order a store before a later load (each side's
	 * load could be satisfied before its own store is visible, and both
	 * would miss the other: the consumer sleeps, we skip the wake). The two
	 * seq_cst fences are totally ordered: if ours comes first, the waiter's
	 * re-check sees the published slot; if the waiter's comes first, our
	 * load below sees its increment. Either way it does not sleep through
	 * this item.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->sleepers, memory_order_relaxed) != 0)
		/* One item can satisfy one consumer. A woken consumer that
		 * loses the item to a spinning one just goes back to sleep;
		 * each later push that still sees sleepers wakes another. */
		signal_sleepers(r, 1);
	return 0;
}

int ab_ring_pop(ab_ring *r, void **item)
{
	struct ab_ring_slot *s;
	size_t pos = atomic_load_explicit(&r->dequeue_pos, memory_order_relaxed);
	for (;;) {
		s = &r->slots[pos & r->mask];
		/* Acquire: pairs with the producer's release of seq, so the
		 * item it wrote is visible below. */
		size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->dequeue_pos, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			/* Not published yet for this lap: empty (or a producer
			 * has claimed it and not finished writing; it will wake
			 * sleepers itself once it publishes). */
			return -1;
		} else {
			pos = atomic_load_explicit(&r->dequeue_pos, memory_order_relaxed);
		}
	}
	*item = s->item;
	/* Release: our read of the item happens before the producer of the
	 * next lap overwrites it. */
	atomic_store_explicit(&s->seq, pos + r->mask + 1, memory_order_release);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* the sleeping slow path                                                   */
/* ------------------------------------------------------------------------ */

/* 0 with an item, 1 when closed and drained, -1 when the caller should wait. */
static int try_take(ab_ring *r, void **item)
{
	if (ab_ring_pop(r, item) == 0)
		return 0;
	/* Acquire pairs with close()'s release: everything pushed before the
	 * close (by the closer, or by threads it synchronised with) is now
	 * visible, so one more pop is the final word on "drained". Checking
	 * closed before that first pop instead would race with a push that
	 * lands between the two. */
	if (!atomic_load_explicit(&r->closed, memory_order_acquire))
		return -1;
	return ab_ring_pop(r, item) == 0 ? 0 : 1;
}

/*
 * Called by a registered waiter (counted in sleepers) that has just taken an
 * item. Why it is needed: a waiter judges "empty" by the slot at the dequeue
 * position only. If producer P1 has claimed that slot but not yet published,
 * while P2 has already published the next one, the waiter sleeps although an
 * item is there, and P2 may legitimately have skipped its wake (its fence came
 * first, so it relied on the waiter's re-check, which could not get past P1's
 * slot). P1's publish wakes one consumer, but two items are waiting. So the
 * consumer that takes an item from the slow path looks again and, if the ring
 * still holds something and someone else sleeps, hands the wake on.
 *
 * The fence orders our check after our registration, as in the waiter's
 * protocol: either a producer's fence precedes ours and we see its claim of
 * the enqueue position here, or ours precedes its fence and that producer
 * sees sleepers > 0 (we are still counted) and wakes someone itself.
 */
static void hand_on(ab_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	size_t enq = atomic_load_explicit(&r->enqueue_pos, memory_order_relaxed);
	size_t deq = atomic_load_explicit(&r->dequeue_pos, memory_order_relaxed);
	/* "> 1": someone other than us. A stale dequeue position only makes
	 * the wake unnecessary, never missing. */
	if (enq != deq && atomic_load_explicit(&r->sleepers, memory_order_relaxed) > 1)
		signal_sleepers(r, 1);
}

int ab_ring_pop_wait_until(ab_ring *r, void **item, uint64_t deadline_ns)
{
	int rc;

	/* A producer that claimed a slot a moment ago is usually done within
	 * the spin; sleeping for it would cost two syscalls. */
	for (int i = 0; i < AB_RING_SPIN; i++) {
		rc = try_take(r, item);
		if (rc >= 0)
			return rc;
		cpu_relax();
	}

	/* Register: from here until we leave, producers that publish take the
	 * wake path. Staying registered across sleeps (instead of leaving and
	 * re-registering after each wake) keeps hand_on()'s reasoning simple:
	 * every take below happens while we are counted. */
	atomic_fetch_add_explicit(&r->sleepers, 1u, memory_order_relaxed);
	for (;;) {
		/* (1) Snapshot the event counter before the re-check. Anything
		 * after this point that concerns us bumps event, so the
		 * futex_wait below returns at once instead of sleeping through
		 * it. Acquire: if the snapshot already includes a bump, we see
		 * what preceded it (an item, the closed flag). */
		unsigned ev = atomic_load_explicit(&r->event, memory_order_acquire);

		/* (2) The waiter's half of the store/load pairing described
		 * in ab_ring_push(): without it the re-check below could read
		 * the ring before our registration is visible to producers,
		 * and a push landing in that window would be missed by both
		 * sides. */
		atomic_thread_fence(memory_order_seq_cst);

		/* (3) Re-check now that producers are bound to notice us. */
		rc = try_take(r, item);
		if (rc >= 0)
			break;

		/* (4) Sleep unless event moved since (1). Wakes without an
		 * item for us (another consumer won it, wake_all, a signal)
		 * loop back and re-check; only an item, closed+drained or the
		 * deadline leaves the loop. */
		if (deadline_ns == UINT64_MAX) {
			futex_wait(&r->event, ev, NULL);
			continue;
		}
		uint64_t now = mono_ns();
		if (now >= deadline_ns) {
			/* One last look, and a wake meant for a sleeper that
			 * may have been ours is handed on, so no item stays
			 * behind with every other consumer asleep. */
			rc = try_take(r, item);
			if (rc < 0) {
				hand_on(r);
				rc = 2;
			}
			break;
		}
		uint64_t left = deadline_ns - now;
		struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
		futex_wait(&r->event, ev, &ts);
	}
	if (rc == 0)
		hand_on(r);
	atomic_fetch_sub_explicit(&r->sleepers, 1u, memory_order_relaxed);
	return rc;
}

int ab_ring_pop_wait(ab_ring *r, void **item)
{
	return ab_ring_pop_wait_until(r, item, UINT64_MAX);
}

uint64_t ab_ring_deadline(uint64_t timeout_ns)
{
	uint64_t now = mono_ns();
	return timeout_ns >= UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

void ab_ring_close(ab_ring *r)
{
	/* The release store, then signal_sleepers()' release bump, order the
	 * flag before the new event value: a waiter that snapshots the new
	 * value sees closed in its re-check, one that holds an older snapshot
	 * fails or is woken out of futex_wait. Close is rare, so wake
	 * unconditionally instead of consulting sleepers. */
	atomic_store_explicit(&r->closed, 1, memory_order_release);
	signal_sleepers(r, INT_MAX);
}

void ab_ring_reopen(ab_ring *r)
{
	/* Nothing sleeps on "not closed", so no wake is needed. The caller
	 * makes sure every consumer has finished the previous epoch (seen
	 * pop_wait return 1) before reopening; a consumer still in pop_wait at
	 * that moment may or may not have seen the close. */
	atomic_store_explicit(&r->closed, 0, memory_order_release);
}

void ab_ring_wake_all(ab_ring *r)
{
	/* Sleepers wake, re-check, and sleep again unless an item arrived or
	 * the ring is closed: pop_wait never returns empty-handed while the
	 * ring is open. To make consumers leave, close the ring (which also
	 * wakes them); this is for callers that changed some other state the
	 * consumers' own loop re-checks, and for use right after close. */
	signal_sleepers(r, INT_MAX);
}

size_t ab_ring_size(const ab_ring *r)
{
	/* Two independent relaxed loads; the result is a snapshot that may be
	 * stale or torn between the two, so clamp it into [0, capacity]. */
	size_t deq = atomic_load_explicit(&r->dequeue_pos, memory_order_relaxed);
	size_t enq = atomic_load_explicit(&r->enqueue_pos, memory_order_relaxed);
	intptr_t n = (intptr_t)(enq - deq);
	if (n < 0)
		return 0;
	if ((size_t)n > r->mask + 1)
		return r->mask + 1;
	return (size_t)n;
}
