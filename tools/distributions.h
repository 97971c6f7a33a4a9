/*
 * distributions.h - the distributions `annbatch synth` draws from (uniform,
 * normal, gamma, Poisson), over the library's random streams (ab_rng_*,
 * annbatch.h).
 * The same seed gives the same numbers on every platform, which is what makes
 * `synth --seed` reproduce bytes.
 */
#ifndef AB_TOOLS_DISTRIBUTIONS_H
#define AB_TOOLS_DISTRIBUTIONS_H

#include <math.h>
#include <stdint.h>

#include "annbatch.h"

typedef ab_rng rng;

#define rng_seed ab_rng_seed
#define rng_next ab_rng_next
#define rng_below ab_rng_below

/* Uniform in [0, 1). */
static inline double rng_unif(rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
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

#endif
