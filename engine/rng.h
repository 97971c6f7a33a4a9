/*
 * rng.h - the library's one random generator (internal): xoshiro256**
 * (Blackman & Vigna) stepped here, its state filled by SplitMix64, and the
 * two ways of drawing a bounded integer from it.
 *
 * Two bounded draws, because each defines the bytes of outputs users keep:
 * the sampler's windows and permutations use Lemire's multiply-and-reject
 * (the batches of every seed so far), the collection writer's block order
 * and row permutations (and ab_rng_below) use reject-then-modulo (every
 * collection written so far). Changing either would change those outputs.
 */
#ifndef AB_ENGINE_RNG_H
#define AB_ENGINE_RNG_H

#include <stdint.h>

#include "annbatch.h"

#define AB_GOLDEN UINT64_C(0x9e3779b97f4a7c15)

/* The SplitMix64 output function: a strong 64-bit bijective mixer. */
static inline uint64_t ab_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* SplitMix64: the next output of the counter at *state. */
static inline uint64_t ab_splitmix_next(uint64_t *state)
{
	*state += AB_GOLDEN;
	return ab_mix64(*state);
}

static inline uint64_t ab_rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* One xoshiro256** step. */
static inline uint64_t ab_xoshiro_next(ab_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = ab_rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = ab_rotl64(s[3], 45);
	return out;
}

/* Uniform integer in [0, range), range >= 1, without modulo bias (Lemire,
 * "Fast Random Integer Generation in an Interval", 2019): the high half of a
 * 64x64 product is the candidate; the rare low halves that would
 * over-represent some values are rejected. The sampler's draw. */
__extension__ typedef unsigned __int128 ab_u128; /* gcc/clang on 64-bit hosts */

static inline uint64_t ab_below_lemire(ab_rng *r, uint64_t range)
{
	ab_u128 m = (ab_u128)ab_xoshiro_next(r) * range;
	uint64_t low = (uint64_t)m;
	if (low < range) {
		uint64_t threshold = (0 - range) % range;
		while (low < threshold) {
			m = (ab_u128)ab_xoshiro_next(r) * range;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

/* Uniform integer in [0, n), n >= 1: the outputs below 2^64 mod n (which
 * would over-represent some values) are rejected, the rest taken modulo n.
 * The collection writer's draw (ab_rng_below). */
static inline uint64_t ab_below_modulo(ab_rng *r, uint64_t n)
{
	uint64_t lim = (0 - n) % n;
	for (;;) {
		uint64_t x = ab_xoshiro_next(r);
		if (x >= lim)
			return x % n;
	}
}

#endif
