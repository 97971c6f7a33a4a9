/*
 * rng.h - a small deterministic random generator for the tools (xoshiro256**
 * seeded through splitmix64). The same seed gives the same stream on every
 * platform, which is what makes `synth --seed` reproduce bytes and `convert
 * --seed` reproduce a shuffle.
 */
#ifndef AB_TOOLS_RNG_H
#define AB_TOOLS_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct rng { uint64_t s[4]; } rng;

static inline uint64_t rng_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A stream for (seed, stream): independent streams per row or per purpose. */
static inline void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1342543DE82EF95ull + 0x2545F4914F6CDD1Dull);
	for (int i = 0; i < 4; i++)
		r->s[i] = rng_splitmix(&x);
}

static inline uint64_t rng_next(rng *r)
{
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

/* Uniform in [0, 1). */
static inline double rng_unif(rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n) (n > 0), without modulo bias. */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
	uint64_t lim = -n % n;
	for (;;) {
		uint64_t x = rng_next(r);
		if (x >= lim)
			return x % n;
	}
}

static inline double rng_normal(rng *r)
{
	double u = rng_unif(r), v = rng_unif(r);
	return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* Gamma(shape k >= 1, scale 1), Marsaglia and Tsang. */
static inline double rng_gamma(rng *r, double k)
{
	double d = k - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x = rng_normal(r), v = 1.0 + c * x;
		if (v <= 0)
			continue;
		v = v * v * v;
		double u = rng_unif(r);
		if (log(1.0 - u) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

/* Poisson(lambda): multiplication method for small lambda, a rounded normal
 * above 30 (plenty for synthetic counts). */
static inline uint64_t rng_poisson(rng *r, double lambda)
{
	if (lambda <= 0)
		return 0;
	if (lambda > 30) {
		double x = floor(lambda + sqrt(lambda) * rng_normal(r) + 0.5);
		return x < 0 ? 0 : (uint64_t)x;
	}
	double l = exp(-lambda), p = 1.0;
	uint64_t k = 0;
	do {
		k++;
		p *= rng_unif(r);
	} while (p > l);
	return k - 1;
}

/* Fisher-Yates shuffle of n uint64. */
static inline void rng_shuffle_u64(rng *r, uint64_t *a, uint64_t n)
{
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng_below(r, i);
		uint64_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

#endif
