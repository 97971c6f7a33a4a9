/*
 * sampler_impl.h - what the files of the sampler share (internal to
 * engine/): the counter-derived random streams, the sampler's state, and the
 * functions one file calls in another.
 *
 *   sampler.c         the epoch's chunk list (without and with replacement,
 *                     rotating distributed shares) and its windows
 *   sampler_class.c   class sampling: every batch from one class
 *   sampler_config.c  the configuration checked as the Python library
 *                     checks it; the rank and world size from launchers'
 *                     environment variables
 */
#ifndef AB_ENGINE_SAMPLER_IMPL_H
#define AB_ENGINE_SAMPLER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "sampler.h"

/* ------------------------------------------------------------------ RNG */

/* Folds one more word into a running key. The word is mixed on its own before
 * being combined so that small neighbouring values (epoch 3 vs 4, window 7 vs
 * 8) end up far apart, and the key is mixed again after so the order in which
 * words are folded matters. */
static inline uint64_t key_absorb(uint64_t key, uint64_t word)
{
	return ab_mix64(key ^ ab_mix64(word + AB_GOLDEN));
}

/* What a stream is for; part of the key so the chunk stream of an epoch and
 * the permutation stream of a window never coincide. */
enum { STREAM_CHUNKS = 1, STREAM_WINDOW = 2, STREAM_DEAL = 3 };

/* The sampler's streams: the library's generator (rng.h), seeded from a
 * key, drawing bounded integers by Lemire's method. */
typedef ab_rng rng;

static inline void rng_seed(rng *r, uint64_t key)
{
	uint64_t sm = key;
	for (int i = 0; i < 4; i++)
		r->s[i] = ab_splitmix_next(&sm);
	/* xoshiro must not start from the all-zero state (it would stay there).
	 * SplitMix64 outputs are a bijection of distinct counters, so four zeros
	 * cannot really happen; the guard costs nothing. */
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = AB_GOLDEN;
}

/* ------------------------------------------------------------ the sampler */

struct ab_sampler {
	uint64_t start, stop;    /* the effective mask (rank mask when distributed) */
	uint64_t chunk_size, preload_nchunks, batch_size;
	uint64_t window_rows;    /* chunk_size * preload_nchunks                     */
	uint64_t batches_per_window; /* window_rows / batch_size                     */
	int shuffle, drop_last;
	uint64_t stream_key;     /* (seed, rank, epoch) folded; streams derive from it */

	ab_chunk_range *chunks;  /* every chunk of the epoch, in visiting order      */
	size_t nchunks;
	size_t ngroups;          /* ceil(nchunks / preload_nchunks)                  */
	uint64_t last_total;     /* rows of the last group that are used (drop_last
	                            rounds them down to a multiple of batch_size)    */

	size_t nwindows;
	uint64_t tail_batches;   /* >0: the last window keeps only this many batches */
	uint64_t nbatches;
	int class_mode;          /* batches come from one class each              */
};

/* The stream key of a window or of the chunk layout. */
static inline uint64_t stream_key(const ab_sampler *s, uint64_t purpose, uint64_t index)
{
	return key_absorb(key_absorb(s->stream_key, purpose), index);
}

static inline uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static inline uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* ---- sampler_config.c ---- */
/* The Python library's checks, in its order; sets the effective mask
 * [*start, *stop) (the rank's slice when distributed with fixed shares). */
int sampler_validate(const ab_sampler_config *c, uint64_t n_obs, uint64_t *start, uint64_t *stop);

/* ---- sampler_class.c ---- */
/* A class's label for messages: its entry in class_labels, else its code
 * written into buf. */
const char *sampler_class_name(const ab_sampler_config *c, uint32_t k, char *buf, size_t n);
/* Builds the class-sampling pass of s (chunks, windows, batch counts). */
int sampler_class_create(ab_sampler *s, const ab_sampler_config *c);
/* Window i of a class-sampling pass. */
int sampler_class_window(const ab_sampler *s, size_t i, ab_window *w);

#endif
