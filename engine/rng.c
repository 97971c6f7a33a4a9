/* rng.c - the library's deterministic random streams (see annbatch.h,
 * "Random streams"): xoshiro256** seeded through SplitMix64. */
#include "annbatch.h"

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void ab_rng_seed(ab_rng *r, uint64_t seed, uint64_t stream)
{
	if (!r)
		return;
	uint64_t x = seed ^ (stream * 0xD1342543DE82EF95ull + 0x2545F4914F6CDD1Dull);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&x);
}

uint64_t ab_rng_next(ab_rng *r)
{
	if (!r)
		return 0;
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t res = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

uint64_t ab_rng_below(ab_rng *r, uint64_t n)
{
	if (!r || !n)
		return 0;
	/* rejection of the low values that would bias the modulo */
	uint64_t lim = -n % n;
	for (;;) {
		uint64_t x = ab_rng_next(r);
		if (x >= lim)
			return x % n;
	}
}

void ab_rng_shuffle(ab_rng *r, uint64_t *a, uint64_t n)
{
	if (!r || !a)
		return;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = ab_rng_below(r, i);
		uint64_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}
