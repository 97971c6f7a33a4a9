/* rng.c - the public random streams (annbatch.h, "Random streams") over the
 * library's generator (rng.h). */
#include "rng.h"

void ab_rng_seed(ab_rng *r, uint64_t seed, uint64_t stream)
{
	if (!r)
		return;
	uint64_t x = seed ^ (stream * 0xD1342543DE82EF95ull + 0x2545F4914F6CDD1Dull);
	for (int i = 0; i < 4; i++)
		r->s[i] = ab_splitmix_next(&x);
}

uint64_t ab_rng_next(ab_rng *r)
{
	return r ? ab_xoshiro_next(r) : 0;
}

uint64_t ab_rng_below(ab_rng *r, uint64_t n)
{
	return r && n ? ab_below_modulo(r, n) : 0;
}

void ab_rng_shuffle(ab_rng *r, uint64_t *a, uint64_t n)
{
	if (!r || !a)
		return;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = ab_below_modulo(r, i);
		uint64_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}
