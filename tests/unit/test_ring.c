/*
 * test_ring.c - Check suite for engine/ring.c, the bounded MPMC queue.
 *
 * Single-threaded tests pin down the contract (rounding, FIFO order, full and
 * empty, close/drain/reopen). The threaded tests show what a single thread
 * cannot: that concurrent producers and consumers hand over every item exactly
 * once and keep each producer's order, and that a consumer blocked in
 * ab_ring_pop_wait() really sleeps (it uses almost no CPU time) and is woken
 * by a push or a close. The suite is meant to be run under ThreadSanitizer
 * and AddressSanitizer too, so all sharing between threads goes through
 * atomics or pthread_join.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getcpuclockid, nanosleep under -std=c11 */
#endif

#include "ring.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Items are small integers disguised as pointers: never dereferenced, only
 * compared. Zero is avoided because NULL cannot be pushed. */
static void *tag(uintptr_t v)
{
	return (void *)(v + 1);
}

static uintptr_t untag(void *p)
{
	return (uintptr_t)p - 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static double thread_cpu_seconds(pthread_t t)
{
	clockid_t cid;
	struct timespec ts;
	ck_assert_int_eq(pthread_getcpuclockid(t, &cid), 0);
	ck_assert_int_eq(clock_gettime(cid, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One consumer blocked in pop_wait, observable from the main thread. */
struct waiter {
	ab_ring *r;
	atomic_int done;
	int rc;
	void *item;
	pthread_t thread;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	w->rc = ab_ring_pop_wait(w->r, &w->item);
	atomic_store(&w->done, 1);
	return NULL;
}

static void waiter_start(struct waiter *w, ab_ring *r)
{
	w->r = r;
	atomic_init(&w->done, 0);
	w->rc = -99;
	w->item = NULL;
	ck_assert_int_eq(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

static void waiter_join(struct waiter *w)
{
	ck_assert_int_eq(pthread_join(w->thread, NULL), 0);
	ck_assert_int_eq(atomic_load(&w->done), 1);
}

/* ------------------------------------------------------------------------ */
/* single-threaded contract                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(test_capacity_rounding)
{
	static const size_t cases[][2] = {
		{ 0, 2 },  { 1, 2 },   { 2, 2 },    { 3, 4 },       { 4, 4 },      { 5, 8 },
		{ 8, 8 },  { 9, 16 },  { 63, 64 },  { 64, 64 },     { 65, 128 },   { 1000, 1024 },
		{ 1024, 1024 }, { 1025, 2048 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ab_ring *r = ab_ring_create(cases[i][0]);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(ab_ring_capacity(r), cases[i][1]);
		ck_assert_uint_eq(ab_ring_size(r), 0);
		/* The rounded capacity is the real one: exactly that many fit. */
		for (size_t k = 0; k < cases[i][1]; k++)
			ck_assert_int_eq(ab_ring_push(r, tag(k)), 0);
		ck_assert_int_eq(ab_ring_push(r, tag(0)), -1);
		ck_assert_uint_eq(ab_ring_size(r), cases[i][1]);
		ab_ring_destroy(r);
	}
	/* Capacities that cannot be represented fail cleanly. */
	ck_assert_ptr_null(ab_ring_create(SIZE_MAX));
	ck_assert_ptr_null(ab_ring_create(SIZE_MAX / 2));
}
END_TEST

START_TEST(test_fifo_full_empty)
{
	ab_ring *r = ab_ring_create(8);
	void *p = tag(12345);
	ck_assert_ptr_nonnull(r);

	/* Empty from the start; a failed pop leaves *item alone. */
	ck_assert_int_eq(ab_ring_pop(r, &p), -1);
	ck_assert_ptr_eq(p, tag(12345));

	for (uintptr_t i = 0; i < 8; i++) {
		ck_assert_int_eq(ab_ring_push(r, tag(i)), 0);
		ck_assert_uint_eq(ab_ring_size(r), i + 1);
	}
	ck_assert_int_eq(ab_ring_push(r, tag(99)), -1);
	ck_assert_uint_eq(ab_ring_size(r), 8);

	for (uintptr_t i = 0; i < 8; i++) {
		ck_assert_int_eq(ab_ring_pop(r, &p), 0);
		ck_assert_uint_eq(untag(p), i);
	}
	ck_assert_int_eq(ab_ring_pop(r, &p), -1);
	ck_assert_uint_eq(ab_ring_size(r), 0);

	/* Many laps with a varying fill level, so the positions wrap around
	 * the slots at every offset, with full and empty checked each lap. */
	uintptr_t next_in = 0, next_out = 0;
	for (int lap = 0; lap < 2000; lap++) {
		int k = 1 + lap % 8;
		for (int j = 0; j < k; j++)
			ck_assert_int_eq(ab_ring_push(r, tag(next_in++)), 0);
		if (k == 8)
			ck_assert_int_eq(ab_ring_push(r, tag(0)), -1);
		ck_assert_uint_eq(ab_ring_size(r), (size_t)k);
		for (int j = 0; j < k; j++) {
			ck_assert_int_eq(ab_ring_pop(r, &p), 0);
			ck_assert_uint_eq(untag(p), next_out++);
		}
		ck_assert_int_eq(ab_ring_pop(r, &p), -1);
	}
	ab_ring_destroy(r);
}
END_TEST

START_TEST(test_push_null_refused)
{
	ab_ring *r = ab_ring_create(4);
	void *p;
	ck_assert_int_eq(ab_ring_push(r, NULL), -1);
	ck_assert_uint_eq(ab_ring_size(r), 0);
	ck_assert_int_eq(ab_ring_pop(r, &p), -1);
	ab_ring_destroy(r);
}
END_TEST

START_TEST(test_close_drain)
{
	ab_ring *r = ab_ring_create(4);
	void *p = NULL;

	/* Open and non-empty: pop_wait returns at once with the item. */
	ck_assert_int_eq(ab_ring_push(r, tag(7)), 0);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 0);
	ck_assert_uint_eq(untag(p), 7);

	/* Items pushed before the close come out first, in order. */
	for (uintptr_t i = 0; i < 3; i++)
		ck_assert_int_eq(ab_ring_push(r, tag(i)), 0);
	ab_ring_close(r);
	for (uintptr_t i = 0; i < 3; i++) {
		ck_assert_int_eq(ab_ring_pop_wait(r, &p), 0);
		ck_assert_uint_eq(untag(p), i);
	}
	/* Closed and empty: 1, every time, without blocking; no item. */
	p = tag(555);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);
	ck_assert_ptr_eq(p, tag(555));

	/* Pushes after the close are accepted and drained. */
	ck_assert_int_eq(ab_ring_push(r, tag(40)), 0);
	ck_assert_int_eq(ab_ring_push(r, tag(41)), 0);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 0);
	ck_assert_uint_eq(untag(p), 40);
	ck_assert_int_eq(ab_ring_pop(r, &p), 0);
	ck_assert_uint_eq(untag(p), 41);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);

	/* Closing twice is harmless; wake_all on a closed ring too. */
	ab_ring_close(r);
	ab_ring_wake_all(r);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);
	ab_ring_destroy(r);
}
END_TEST

START_TEST(test_reopen)
{
	ab_ring *r = ab_ring_create(4);
	void *p = NULL;
	struct waiter w;

	ab_ring_close(r);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);
	ab_ring_reopen(r);

	/* Open again: items flow as before... */
	ck_assert_int_eq(ab_ring_push(r, tag(3)), 0);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 0);
	ck_assert_uint_eq(untag(p), 3);

	/* ...and an empty open ring blocks again instead of reporting 1. */
	waiter_start(&w, r);
	sleep_ms(50);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	ck_assert_int_eq(ab_ring_push(r, tag(4)), 0);
	waiter_join(&w);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_uint_eq(untag(w.item), 4);

	/* A second epoch ends like the first. */
	ab_ring_close(r);
	ck_assert_int_eq(ab_ring_pop_wait(r, &p), 1);
	ab_ring_destroy(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* sleeping and waking                                                      */
/* ------------------------------------------------------------------------ */

/* Blocks a consumer, checks it is asleep rather than spinning, then wakes
 * it with a push. */
START_TEST(test_wake_by_push)
{
	ab_ring *r = ab_ring_create(8);
	struct waiter w;
	waiter_start(&w, r);

	sleep_ms(20); /* let it get past its short spin and into the futex */
	double cpu0 = thread_cpu_seconds(w.thread);
	sleep_ms(50);
	double cpu1 = thread_cpu_seconds(w.thread);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	/* A spinning consumer would have used ~50 ms of CPU here; a sleeping
	 * one uses next to none. The bound is loose for slow sanitizers. */
	ck_assert_msg(cpu1 - cpu0 < 0.010, "consumer used %.1f ms of CPU while the ring was empty",
		      (cpu1 - cpu0) * 1e3);

	ck_assert_int_eq(ab_ring_push(r, tag(42)), 0);
	waiter_join(&w);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_uint_eq(untag(w.item), 42);
	ck_assert_uint_eq(ab_ring_size(r), 0);
	ab_ring_destroy(r);
}
END_TEST

START_TEST(test_wake_by_close)
{
	ab_ring *r = ab_ring_create(8);
	struct waiter w;
	waiter_start(&w, r);
	sleep_ms(50);
	ck_assert_int_eq(atomic_load(&w.done), 0);
	ab_ring_close(r);
	waiter_join(&w);
	ck_assert_int_eq(w.rc, 1);
	ck_assert_ptr_null(w.item);
	ab_ring_destroy(r);
}
END_TEST

/* wake_all alone must not make pop_wait return empty-handed: the woken
 * consumer re-checks and sleeps again until there is an item. */
START_TEST(test_wake_all_does_not_return)
{
	ab_ring *r = ab_ring_create(8);
	struct waiter w;
	waiter_start(&w, r);
	sleep_ms(30);
	for (int i = 0; i < 5; i++) {
		ab_ring_wake_all(r);
		sleep_ms(10);
	}
	ck_assert_int_eq(atomic_load(&w.done), 0);
	ck_assert_int_eq(ab_ring_push(r, tag(9)), 0);
	waiter_join(&w);
	ck_assert_int_eq(w.rc, 0);
	ck_assert_uint_eq(untag(w.item), 9);
	ab_ring_destroy(r);
}
END_TEST

#define N_SLEEPERS 8

/* Close wakes every sleeper, not just one. */
START_TEST(test_close_wakes_all)
{
	ab_ring *r = ab_ring_create(8);
	struct waiter w[N_SLEEPERS];
	for (int i = 0; i < N_SLEEPERS; i++)
		waiter_start(&w[i], r);
	sleep_ms(50);
	for (int i = 0; i < N_SLEEPERS; i++)
		ck_assert_int_eq(atomic_load(&w[i].done), 0);
	ab_ring_close(r);
	for (int i = 0; i < N_SLEEPERS; i++) {
		waiter_join(&w[i]);
		ck_assert_int_eq(w[i].rc, 1);
	}
	ab_ring_destroy(r);
}
END_TEST

/* One push per sleeper, spaced out: each push must wake someone, and
 * exactly one consumer gets each item (the others keep sleeping). */
START_TEST(test_each_push_wakes_one)
{
	ab_ring *r = ab_ring_create(8);
	struct waiter w[N_SLEEPERS];
	int got[N_SLEEPERS] = { 0 };
	for (int i = 0; i < N_SLEEPERS; i++)
		waiter_start(&w[i], r);
	sleep_ms(50);
	for (int k = 0; k < N_SLEEPERS; k++) {
		ck_assert_int_eq(ab_ring_push(r, tag((uintptr_t)k)), 0);
		/* Wait until exactly k+1 consumers have returned. */
		int done;
		for (int spins = 0; spins < 2000; spins++) {
			done = 0;
			for (int i = 0; i < N_SLEEPERS; i++)
				done += atomic_load(&w[i].done);
			if (done == k + 1)
				break;
			sleep_ms(1);
		}
		ck_assert_int_eq(done, k + 1);
	}
	for (int i = 0; i < N_SLEEPERS; i++) {
		waiter_join(&w[i]);
		ck_assert_int_eq(w[i].rc, 0);
		uintptr_t v = untag(w[i].item);
		ck_assert_uint_lt(v, N_SLEEPERS);
		got[v]++;
	}
	for (int k = 0; k < N_SLEEPERS; k++)
		ck_assert_int_eq(got[k], 1);
	ab_ring_destroy(r);
}
END_TEST

/* A burst: as many items as sleepers, pushed back to back. Every item must
 * reach a different sleeper, whichever mix of producer wakes and hand-ons
 * between woken consumers gets them there. */
START_TEST(test_burst_wakes_all_needed)
{
	ab_ring *r = ab_ring_create(N_SLEEPERS);
	struct waiter w[N_SLEEPERS];
	int got[N_SLEEPERS] = { 0 };
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N_SLEEPERS; i++)
			waiter_start(&w[i], r);
		sleep_ms(round == 0 ? 30 : 5);
		for (int k = 0; k < N_SLEEPERS; k++)
			ck_assert_int_eq(ab_ring_push(r, tag((uintptr_t)k)), 0);
		for (int i = 0; i < N_SLEEPERS; i++) {
			waiter_join(&w[i]);
			ck_assert_int_eq(w[i].rc, 0);
			uintptr_t v = untag(w[i].item);
			ck_assert_uint_lt(v, N_SLEEPERS);
			got[v]++;
		}
		for (int k = 0; k < N_SLEEPERS; k++)
			ck_assert_int_eq(got[k], round + 1);
	}
	ab_ring_destroy(r);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* many producers, many consumers                                           */
/* ------------------------------------------------------------------------ */

#define STRESS_ITEMS 200000 /* per configuration, over all epochs; see below */
#define STRESS_EPOCHS 2     /* close, drain, reopen in between */
#define PRODUCER_SHIFT 24   /* item = producer << 24 | index; index < 2^24 */
#define MAX_PRODUCERS 8

struct stress {
	ab_ring *r;
	int producers, consumers;
	uintptr_t per_producer; /* items each producer sends this epoch */
	uintptr_t base;         /* first index this epoch */
	uintptr_t items;        /* per configuration, over all epochs */
	atomic_uchar *seen;     /* [producer * items + index] */
};

struct stress_producer {
	struct stress *s;
	int id;
};

struct stress_consumer {
	struct stress *s;
	long received;
	long out_of_order;
	long bad_tag;
	int last_rc;
};

static void *stress_producer_main(void *arg)
{
	struct stress_producer *p = arg;
	struct stress *s = p->s;
	for (uintptr_t i = 0; i < s->per_producer; i++) {
		void *item = tag(((uintptr_t)p->id << PRODUCER_SHIFT) | (s->base + i));
		/* Full is back-pressure, not an error: let a consumer run. */
		while (ab_ring_push(s->r, item) != 0)
			sched_yield();
	}
	return NULL;
}

static void *stress_consumer_main(void *arg)
{
	struct stress_consumer *c = arg;
	struct stress *s = c->s;
	/* The last index seen from each producer: a consumer's successive
	 * pops take increasing ring positions, and one producer's pushes
	 * take increasing positions, so per producer this must increase. */
	long last[MAX_PRODUCERS];
	for (int i = 0; i < MAX_PRODUCERS; i++)
		last[i] = -1;
	void *item;
	int rc;
	while ((rc = ab_ring_pop_wait(s->r, &item)) == 0) {
		uintptr_t v = untag(item);
		uintptr_t prod = v >> PRODUCER_SHIFT;
		uintptr_t idx = v & (((uintptr_t)1 << PRODUCER_SHIFT) - 1);
		if (prod >= (uintptr_t)s->producers || idx >= s->items) {
			c->bad_tag++;
			continue;
		}
		if ((long)idx <= last[prod])
			c->out_of_order++;
		last[prod] = (long)idx;
		atomic_fetch_add_explicit(&s->seen[prod * s->items + idx], 1,
					  memory_order_relaxed);
		c->received++;
	}
	c->last_rc = rc;
	return NULL;
}

/* AB_RING_STRESS_ITEMS overrides the item count, for a longer soak run. */
static uintptr_t stress_items(void)
{
	const char *env = getenv("AB_RING_STRESS_ITEMS");
	unsigned long n = env != NULL ? strtoul(env, NULL, 10) : STRESS_ITEMS;
	const unsigned long max = ((unsigned long)1 << PRODUCER_SHIFT) - 1;
	if (n < MAX_PRODUCERS * STRESS_EPOCHS)
		n = MAX_PRODUCERS * STRESS_EPOCHS;
	return n > max ? max : n;
}

static void run_stress(int producers, int consumers, size_t capacity)
{
	struct stress s;
	pthread_t pt[MAX_PRODUCERS], ct[16];
	struct stress_producer pa[MAX_PRODUCERS];
	struct stress_consumer ca[16];
	const uintptr_t items = stress_items();
	const uintptr_t total_per_producer = items / (uintptr_t)producers;

	ck_assert_int_le(producers, MAX_PRODUCERS);
	ck_assert_int_le(consumers, 16);
	s.r = ab_ring_create(capacity);
	ck_assert_ptr_nonnull(s.r);
	s.items = items;
	s.producers = producers;
	s.consumers = consumers;
	s.per_producer = total_per_producer / STRESS_EPOCHS;
	s.seen = calloc((size_t)producers * items, sizeof *s.seen);
	ck_assert_ptr_nonnull(s.seen);

	for (int e = 0; e < STRESS_EPOCHS; e++) {
		s.base = (uintptr_t)e * s.per_producer;
		if (e > 0)
			ab_ring_reopen(s.r);
		/* Consumers first, so many of them start out asleep. */
		for (int i = 0; i < consumers; i++) {
			ca[i] = (struct stress_consumer){ .s = &s, .last_rc = -99 };
			ck_assert_int_eq(pthread_create(&ct[i], NULL, stress_consumer_main, &ca[i]), 0);
		}
		for (int i = 0; i < producers; i++) {
			pa[i] = (struct stress_producer){ .s = &s, .id = i };
			ck_assert_int_eq(pthread_create(&pt[i], NULL, stress_producer_main, &pa[i]), 0);
		}
		for (int i = 0; i < producers; i++)
			ck_assert_int_eq(pthread_join(pt[i], NULL), 0);
		/* Every push has returned: close must let consumers drain all
		 * of it before they see 1. */
		ab_ring_close(s.r);
		long received = 0;
		for (int i = 0; i < consumers; i++) {
			ck_assert_int_eq(pthread_join(ct[i], NULL), 0);
			ck_assert_int_eq(ca[i].last_rc, 1);
			ck_assert_int_eq(ca[i].bad_tag, 0);
			ck_assert_msg(ca[i].out_of_order == 0,
				      "consumer %d saw %ld items out of producer order", i,
				      ca[i].out_of_order);
			received += ca[i].received;
		}
		ck_assert_int_eq(received, (long)s.per_producer * producers);
		ck_assert_uint_eq(ab_ring_size(s.r), 0);
	}

	/* Exactly once: every item sent was received once, nothing else.
	 * (Counted first and asserted once: each ck_assert is a write to
	 * Check's pipe, far too slow for a million items.) */
	long wrong = 0;
	int first_p = -1;
	unsigned long first_i = 0;
	unsigned first_n = 0;
	for (int p = 0; p < producers; p++) {
		for (uintptr_t i = 0; i < items; i++) {
			unsigned n = atomic_load_explicit(&s.seen[(uintptr_t)p * items + i],
							  memory_order_relaxed);
			unsigned want = i < s.per_producer * STRESS_EPOCHS ? 1u : 0u;
			if (n != want && wrong++ == 0) {
				first_p = p;
				first_i = (unsigned long)i;
				first_n = n;
			}
		}
	}
	ck_assert_msg(wrong == 0, "%ld items arrived the wrong number of times, first: "
		      "producer %d item %lu arrived %u times", wrong, first_p, first_i, first_n);
	free(s.seen);
	ab_ring_destroy(s.r);
}

static const struct {
	int producers, consumers;
	size_t capacity;
} stress_cases[] = {
	/* A small ring with many consumers asleep, producers often blocked by
	 * a full ring, a larger ring with one consumer, and the smallest ring
	 * possible, where every slot is reused on every other push. (On two
	 * cores each case takes about a second; more would exceed the suite's
	 * time budget without covering anything new.) */
	{ 4, 4, 8 }, { 1, 8, 8 }, { 8, 1, 64 }, { 2, 2, 2 },
};

/* Timed waits: an empty ring gives 2 at the deadline; consumers waiting in
 * short timed calls while producers push lose no item (a wake that reached
 * a consumer whose deadline passed is handed on), and each item is taken
 * once. */
#define TIMED_ITEMS 20000
typedef struct {
	ab_ring *r;
	atomic_int *seen;
	int got, timeouts;
} timed_consumer;

static void *timed_consume(void *arg)
{
	timed_consumer *c = arg;
	for (;;) {
		void *item;
		int rc = ab_ring_pop_wait_until(c->r, &item, ab_ring_deadline(200000)); /* 0.2 ms */
		if (rc == 1)
			return NULL;
		if (rc == 2) {
			c->timeouts++;
			continue;
		}
		atomic_fetch_add(&c->seen[(uintptr_t)item - 1], 1);
		c->got++;
	}
}

START_TEST(test_timed_wait)
{
	ab_ring *r = ab_ring_create(64);
	void *item;
	uint64_t t0 = ab_ring_deadline(0);
	ck_assert_int_eq(ab_ring_pop_wait_until(r, &item, ab_ring_deadline(20000000)), 2); /* 20 ms */
	ck_assert_uint_ge(ab_ring_deadline(0) - t0, 20000000);
	atomic_int *seen = calloc(TIMED_ITEMS, sizeof *seen);
	timed_consumer cs[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		cs[i] = (timed_consumer){r, seen, 0, 0};
		ck_assert_int_eq(pthread_create(&t[i], NULL, timed_consume, &cs[i]), 0);
	}
	for (uintptr_t k = 1; k <= TIMED_ITEMS; k++) {
		while (ab_ring_push(r, (void *)k) != 0)
			sched_yield();
		if (k % 1000 == 0) { /* let the consumers time out now and then */
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	ab_ring_close(r);
	int got = 0, timeouts = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		got += cs[i].got;
		timeouts += cs[i].timeouts;
	}
	ck_assert_int_eq(got, TIMED_ITEMS);
	for (int k = 0; k < TIMED_ITEMS; k++)
		if (atomic_load(&seen[k]) != 1)
			ck_abort_msg("item %d taken %d times", k + 1, atomic_load(&seen[k]));
	ck_assert_int_gt(timeouts, 0);
	free(seen);
	ab_ring_destroy(r);
}
END_TEST

START_TEST(test_stress)
{
	run_stress(stress_cases[_i].producers, stress_cases[_i].consumers,
		   stress_cases[_i].capacity);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("contract");
	tcase_add_test(tc, test_capacity_rounding);
	tcase_add_test(tc, test_timed_wait);
	tcase_add_test(tc, test_fifo_full_empty);
	tcase_add_test(tc, test_push_null_refused);
	tcase_add_test(tc, test_close_drain);
	tcase_add_test(tc, test_reopen);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);

	tc = tcase_create("wait");
	tcase_add_test(tc, test_wake_by_push);
	tcase_add_test(tc, test_wake_by_close);
	tcase_add_test(tc, test_wake_all_does_not_return);
	tcase_add_test(tc, test_close_wakes_all);
	tcase_add_test(tc, test_each_push_wakes_one);
	tcase_add_test(tc, test_burst_wakes_all_needed);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);

	/* Generous: the stress runs several times slower under sanitizers,
	 * and a lost wakeup shows up as a hang, i.e. a timeout. */
	tc = tcase_create("stress");
	tcase_add_loop_test(tc, test_stress, 0,
			    (int)(sizeof stress_cases / sizeof stress_cases[0]));
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ring_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
