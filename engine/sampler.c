/*
 * sampler.c - which rows come in which batch.
 *
 * Everything random is decided by small counter-derived streams, never by a
 * generator that is carried from one call to the next: the chunk layout of an
 * epoch comes from a stream keyed by (seed, rank, epoch, "chunks") and the row
 * permutation of window i from a stream keyed by (seed, rank, epoch, "window",
 * i). That is what lets ab_sampler_window() run for any i, in any order, from
 * any thread, and still return the same window every time.
 *
 * The bit streams are ours (SplitMix64 seeding xoshiro256**, Lemire's bounded
 * integers, Fisher-Yates), not numpy's, so a seed does not give the Python
 * library's exact order; only the structure of the output is the same.
 *
 * Layout of one epoch as the Python ChunkSampler defines it (see sampler.h):
 *
 *   chunks   the mask cut into ceil(size / chunk_size) pieces; the order in
 *            which they are visited is shuffled (or not). The piece visited
 *            last is the one that is short when size % chunk_size != 0, so the
 *            short piece sits at a random place in the row space but is always
 *            the final chunk of the epoch, and no row is visited twice.
 *   groups   consecutive chunks in visiting order, preload_nchunks at a time.
 *            Every group but the last holds exactly chunk_size*preload_nchunks
 *            rows (only the very last chunk can be short).
 *   windows  the groups that produce at least one batch, possibly cut short
 *            when num_samples asks for fewer batches than the groups hold.
 */
#include "sampler.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"

/* ------------------------------------------------------------------ RNG */

/* The SplitMix64 output function: a strong 64-bit bijective mixer. Used both to
 * hash stream keys and to expand one 64-bit key into a xoshiro state. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

static uint64_t splitmix_next(uint64_t *state)
{
	*state += GOLDEN;
	return mix64(*state);
}

/* Folds one more word into a running key. The word is mixed on its own before
 * being combined so that small neighbouring values (epoch 3 vs 4, window 7 vs
 * 8) end up far apart, and the key is mixed again after so the order in which
 * words are folded matters. */
static uint64_t key_absorb(uint64_t key, uint64_t word)
{
	return mix64(key ^ mix64(word + GOLDEN));
}

/* What a stream is for; part of the key so the chunk stream of an epoch and
 * the permutation stream of a window never coincide. */
enum { STREAM_CHUNKS = 1, STREAM_WINDOW = 2, STREAM_DEAL = 3 };

typedef struct rng {
	uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna): fast, 256-bit state, good statistical
 * quality for shuffling. */
static uint64_t rng_next(rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

static void rng_seed(rng *r, uint64_t key)
{
	uint64_t sm = key;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix_next(&sm);
	/* xoshiro must not start from the all-zero state (it would stay there).
	 * SplitMix64 outputs are a bijection of distinct counters, so four zeros
	 * cannot really happen; the guard costs nothing. */
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = GOLDEN;
}

/* Uniform integer in [0, range), range >= 1, without modulo bias (Lemire,
 * "Fast Random Integer Generation in an Interval", 2019): the high half of a
 * 64x64 product is the candidate; the rare low halves that would over-represent
 * some values are rejected. */
__extension__ typedef unsigned __int128 u128; /* gcc/clang on 64-bit hosts */

static uint64_t rng_below(rng *r, uint64_t range)
{
	u128 m = (u128)rng_next(r) * range;
	uint64_t low = (uint64_t)m;
	if (low < range) {
		uint64_t threshold = (0 - range) % range;
		while (low < threshold) {
			m = (u128)rng_next(r) * range;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
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
static uint64_t stream_key(const ab_sampler *s, uint64_t purpose, uint64_t index)
{
	return key_absorb(key_absorb(s->stream_key, purpose), index);
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Appends one epoch over [start, stop) to s->chunks (capacity reserved by the
 * caller). `order` is scratch for ceil(size/chunk_size) indices. The visiting
 * order is a permutation of the spatial chunk indices; the chunk visited last
 * ("pivot") is the one given the short length, so spatial offsets are the
 * running sum of lengths with the short one at the pivot's position. */
static void append_epoch(ab_sampler *s, rng *r, uint64_t *order, int keep_incomplete)
{
	uint64_t size = s->stop - s->start, cs = s->chunk_size;
	uint64_t n = ceil_div(size, cs);
	uint64_t incomplete = size % cs;

	for (uint64_t k = 0; k < n; k++)
		order[k] = k;
	if (s->shuffle) {
		for (uint64_t k = n - 1; k > 0; k--) {
			uint64_t j = rng_below(r, k + 1);
			uint64_t t = order[k];
			order[k] = order[j];
			order[j] = t;
		}
	}
	uint64_t pivot = order[n - 1];
	/* Chunks spatially after the pivot are shifted back by what the pivot
	 * lacks to be a full chunk. */
	uint64_t shortfall = incomplete ? cs - incomplete : 0;
	uint64_t count = (!keep_incomplete && incomplete) ? n - 1 : n;
	for (uint64_t k = 0; k < count; k++) {
		uint64_t c = order[k];
		uint64_t begin = s->start + c * cs - (c > pivot ? shortfall : 0);
		uint64_t len = (c == pivot && incomplete) ? incomplete : cs;
		s->chunks[s->nchunks].start = begin;
		s->chunks[s->nchunks].stop = begin + len;
		s->nchunks++;
	}
}

/* How many chunks the epoch has, checked before anything is allocated: the
 * row total must fit in 64 bits and, when there is more than one group, a full
 * group (chunk_size * preload_nchunks rows) must fit the uint32 permutation. */
static int count_chunks(const ab_sampler *s, int replacement, uint64_t num_samples,
			uint64_t *passes_out, uint64_t *nchunks_out)
{
	uint64_t size = s->stop - s->start, cs = s->chunk_size;
	uint64_t n, passes = 1;

	if (replacement) {
		n = num_samples / cs + (num_samples % cs > 0 && !s->drop_last);
	} else {
		uint64_t per_epoch = ceil_div(size, cs);
		uint64_t incomplete = size % cs;
		uint64_t aligned = size - incomplete;
		if (num_samples > size) {
			if (aligned == 0)
				/* Python divides by zero here: every middle pass
				 * would be empty. Refuse it with a message. */
				return ab_error_set(AB_EINVAL,
						    "num_samples (%" PRIu64 ") exceeds the observation range (%" PRIu64
						    ") which is smaller than chunk_size (%" PRIu64 "); "
						    "cannot tile epochs without a full chunk",
						    num_samples, size, cs);
			passes = ceil_div(num_samples, incomplete ? aligned : size);
		}
		uint64_t per_middle = per_epoch - (incomplete ? 1 : 0);
		uint64_t rows;
		if (__builtin_mul_overflow(passes - 1, per_middle, &n) ||
		    __builtin_add_overflow(n, per_epoch, &n) ||
		    __builtin_mul_overflow(passes - 1, aligned, &rows) ||
		    __builtin_add_overflow(rows, size, &rows))
			return ab_error_set(AB_EINVAL,
					    "num_samples (%" PRIu64 ") is too large: the tiled epochs "
					    "overflow 64-bit row counts",
					    num_samples);
	}
	if (n > s->preload_nchunks && s->window_rows > UINT32_MAX)
		return ab_error_set(AB_EINVAL,
				    "a window of %" PRIu64 " rows exceeds the limit of %" PRIu32
				    " rows; reduce chunk_size * preload_nchunks",
				    s->window_rows, UINT32_MAX);
	if (n > SIZE_MAX / sizeof(ab_chunk_range) ||
	    n > (uint64_t)PTRDIFF_MAX / sizeof(ab_chunk_range))
		return ab_error_set(AB_ENOMEM, "sampler: %" PRIu64 " chunks do not fit in memory", n);
	*passes_out = passes;
	*nchunks_out = n;
	return 0;
}

/* Builds the chunk list without replacement: one pass over the mask, or
 * several when num_samples asks for more rows than the mask holds. In the
 * latter case every pass but the last drops its short chunk, so that every
 * group except the final one stays made of full chunks. */
static int build_epoch_chunks(ab_sampler *s, uint64_t passes, rng *r)
{
	uint64_t per_epoch = ceil_div(s->stop - s->start, s->chunk_size);
	if (per_epoch > SIZE_MAX / sizeof(uint64_t))
		return ab_error_set(AB_ENOMEM, "sampler: %" PRIu64 " chunks per epoch do not fit in memory",
				    per_epoch);
	uint64_t *order = malloc((size_t)per_epoch * sizeof *order);
	if (order == NULL)
		return ab_error_set(AB_ENOMEM, "sampler: out of memory for %" PRIu64 " chunk indices",
				    per_epoch);
	for (uint64_t p = 0; p < passes; p++)
		append_epoch(s, r, order, p == passes - 1);
	free(order);
	return 0;
}

/* With replacement: num_samples / chunk_size full chunks at uniform starts in
 * [start, stop - chunk_size], and (without drop_last) one chunk holding the
 * remainder at a uniform start in [start, stop - remainder]. */
static void build_replacement_chunks(ab_sampler *s, uint64_t num_samples, rng *r)
{
	uint64_t cs = s->chunk_size;
	uint64_t nfull = num_samples / cs, rem = num_samples % cs;
	for (uint64_t k = 0; k < nfull; k++) {
		uint64_t b = s->start + rng_below(r, s->stop - cs - s->start + 1);
		s->chunks[s->nchunks++] = (ab_chunk_range){ b, b + cs };
	}
	if (rem > 0 && !s->drop_last) {
		uint64_t b = s->start + rng_below(r, s->stop - rem - s->start + 1);
		s->chunks[s->nchunks++] = (ab_chunk_range){ b, b + rem };
	}
}

/* Distributed with rotating shards: every rank computes the same deal from a
 * stream keyed by (seed, epoch) alone, then keeps its own part.
 *
 * The mask [start, stop) holds F = size / chunk_size full chunks; each rank
 * gets k = F / world_size of them, so D = k * world_size chunks are dealt and
 * the U = size - D * chunk_size rows left (fewer than world_size + 1 chunks)
 * form one gap that is not served this epoch. The gap starts at a chunk
 * boundary j * chunk_size (0 <= j <= D), so every dealt chunk is whole and
 * contiguous. Two gaps at j and j' are disjoint when |j - j'| >= m =
 * ceil(U / chunk_size); even epochs draw j from [0, L] and odd epochs from
 * [L + m, D] with L = (D - m) / 2, so the gaps of two consecutive epochs never
 * meet: every row is served at least once in any two consecutive epochs. The
 * D chunks are then put in a shared (shuffled or spatial) order and rank r
 * takes positions [r * k, (r + 1) * k): disjoint, and equal in rows. */
static int build_rotate_chunks(ab_sampler *s, const ab_sampler_config *c)
{
	uint64_t size = s->stop - s->start, cs = s->chunk_size, w = c->world_size;
	uint64_t k = size / cs / w, D = k * w;
	uint64_t U = size - D * cs, m = ceil_div(U, cs);
	uint64_t L = (D - m) / 2;
	if (D > ((uint64_t)1 << 28))
		return ab_error_set(AB_EINVAL, "an epoch of %" PRIu64 " chunks is too many (limit 2^28); raise chunk_size",
				    D);
	uint64_t *order = malloc((size_t)D * sizeof *order);
	s->chunks = malloc((size_t)k * sizeof *s->chunks);
	if (!order || !s->chunks) {
		free(order);
		return ab_error_set(AB_ENOMEM, "sampler: out of memory for %" PRIu64 " chunks", D);
	}
	uint64_t key = mix64(c->seed ^ UINT64_C(0x616e6e6261746368));
	rng r;
	rng_seed(&r, key_absorb(key_absorb(key, STREAM_DEAL), c->epoch));
	uint64_t j = 0;
	if (m > 0)
		j = c->epoch % 2 == 0 ? rng_below(&r, L + 1) : L + m + rng_below(&r, D - L - m + 1);
	for (uint64_t q = 0; q < D; q++)
		order[q] = q;
	if (s->shuffle) {
		for (uint64_t q = D - 1; q > 0; q--) {
			uint64_t x = rng_below(&r, q + 1), t = order[q];
			order[q] = order[x];
			order[x] = t;
		}
	}
	for (uint64_t q = 0; q < k; q++) {
		uint64_t p = order[(uint64_t)c->rank * k + q];
		uint64_t b = s->start + p * cs + (p >= j ? U : 0);
		s->chunks[s->nchunks++] = (ab_chunk_range){ b, b + cs };
	}
	free(order);
	return 0;
}

/* Batches that group i yields before any num_samples truncation. */
static uint64_t group_batches(const ab_sampler *s, size_t i)
{
	if (i + 1 < s->ngroups)
		return s->batches_per_window;
	return ceil_div(s->last_total, s->batch_size);
}

/* Batches that window i really yields. */
static uint64_t window_batches(const ab_sampler *s, size_t i)
{
	uint64_t b = group_batches(s, i);
	if (s->tail_batches && i + 1 == s->nwindows && b > s->tail_batches)
		b = s->tail_batches;
	return b;
}

static const char *class_name(const ab_sampler_config *c, uint32_t k, char *buf, size_t n);
static uint64_t gcd64(uint64_t a, uint64_t b);

/* What would work when batch_size does not divide chunk_size*preload_nchunks
 * (= `window`): the nearest batch sizes that divide it (searched up to 2^20
 * steps each way, plenty for real sizes), and the preload_nchunks values
 * nearest the one given that keep batch_size: chunk_size*p is a multiple of
 * batch_size exactly when p is a multiple of batch_size / gcd(chunk_size,
 * batch_size). */
static void batch_hint(const ab_sampler_config *c, uint64_t window, char *buf, size_t n)
{
	uint64_t b = c->batch_size, below = 0, above = 0;
	uint64_t lo = b > ((uint64_t)1 << 20) ? b - ((uint64_t)1 << 20) : 1;
	if (b > window)
		below = window; /* the largest batch a window holds */
	for (uint64_t d = b - 1; b <= window && d >= lo && d > 0; d--)
		if (window % d == 0) {
			below = d;
			break;
		}
	for (uint64_t d = b + 1; b < window && d <= window && d - b <= ((uint64_t)1 << 20); d++)
		if (window % d == 0) {
			above = d;
			break;
		}
	int len = 0;
	if (below && above)
		len = snprintf(buf, n, "; batch sizes that work: %" PRIu64 " or %" PRIu64, below, above);
	else if (below || above)
		len = snprintf(buf, n, "; a batch size that works: %" PRIu64, below ? below : above);
	else
		buf[0] = '\0';
	if (len < 0 || (size_t)len >= n)
		return;
	uint64_t step = b / gcd64(c->chunk_size, b), p = c->preload_nchunks;
	uint64_t pl = p / step * step, pu, t;
	if (__builtin_add_overflow(pl, step, &pu) || __builtin_mul_overflow(pu, c->chunk_size, &t))
		pu = 0;
	if (pl && pu)
		snprintf(buf + len, n - (size_t)len, "; or keep batch_size %" PRIu64 " with preload_nchunks %" PRIu64
			 " or %" PRIu64, b, pl, pu);
	else if (pl || pu)
		snprintf(buf + len, n - (size_t)len, "; or keep batch_size %" PRIu64 " with preload_nchunks %" PRIu64,
			 b, pl ? pl : pu);
}

/* The Python library's checks, in its order, on the mask already resolved. */
static int validate(const ab_sampler_config *c, uint64_t n_obs, uint64_t *start, uint64_t *stop)
{
	if (c->chunk_size < 1)
		return ab_error_set(AB_EINVAL, "chunk_size must be >= 1, got %" PRIu64, c->chunk_size);
	if (c->preload_nchunks < 1)
		return ab_error_set(AB_EINVAL, "preload_nchunks must be >= 1, got %" PRIu64,
				    c->preload_nchunks);
	if (c->batch_size < 1)
		return ab_error_set(AB_EINVAL, "batch_size must be >= 1, got %" PRIu64, c->batch_size);
	uint64_t preload;
	if (__builtin_mul_overflow(c->chunk_size, c->preload_nchunks, &preload))
		return ab_error_set(AB_EINVAL,
				    "chunk_size * preload_nchunks overflows (chunk_size=%" PRIu64
				    ", preload_nchunks=%" PRIu64 ")",
				    c->chunk_size, c->preload_nchunks);
	if (c->batch_size > preload || preload % c->batch_size != 0) {
		char hint[256];
		batch_hint(c, preload, hint, sizeof hint);
		if (c->batch_size > preload)
			return ab_error_set(AB_EINVAL,
					    "batch_size cannot exceed chunk_size * preload_nchunks "
					    "(got batch_size=%" PRIu64 ", max %" PRIu64 ")%s",
					    c->batch_size, preload, hint);
		return ab_error_set(AB_EINVAL,
				    "chunk_size * preload_nchunks must be divisible by batch_size "
				    "(%" PRIu64 " %% %" PRIu64 " = %" PRIu64 ")%s",
				    preload, c->batch_size, preload % c->batch_size, hint);
	}

	uint32_t ws = c->world_size ? c->world_size : 1;
	if (c->rank >= ws)
		return ab_error_set(AB_EINVAL, "rank (%" PRIu32 ") must be < world_size (%" PRIu32 ")",
				    c->rank, ws);
	if (c->rank_shards != 0 && c->rank_shards != 1)
		return ab_error_set(AB_EINVAL, "rank_shards must be 0 (fixed) or 1 (rotate), got %d",
				    c->rank_shards);
	int rotate = c->rank_shards == 1 && ws > 1;
	if (rotate && (c->replacement || c->num_samples || c->classes))
		return ab_error_set(AB_EINVAL, "rank_shards rotate deals one pass of the rows per epoch: it does "
				    "not combine with %s", c->classes ? "class sampling" :
				    c->replacement ? "replacement" : "num_samples");
	if (c->world_size > 1 && !rotate) {
		/* As DistributedSampler: the rank's slice replaces the mask, and
		 * is rounded down to whole batches so every rank yields the same
		 * number of batches. */
		uint64_t per_rank = n_obs / c->world_size;
		per_rank = per_rank / c->batch_size * c->batch_size;
		if (per_rank == 0)
			return ab_error_set(AB_EINVAL,
					    "distributed: n_obs (%" PRIu64 ") / world_size (%" PRIu32
					    ") leaves no whole batch of %" PRIu64 " rows per rank",
					    n_obs, c->world_size, c->batch_size);
		*start = (uint64_t)c->rank * per_rank;
		*stop = *start + per_rank;
	} else {
		*start = c->mask_start;
		*stop = c->mask_stop ? c->mask_stop : n_obs;
		if (*stop > n_obs)
			return ab_error_set(AB_EINVAL,
					    "mask stop (%" PRIu64 ") exceeds n_obs (%" PRIu64 "); "
					    "the sampler range must be within the observations",
					    *stop, n_obs);
		if (*start >= *stop)
			return ab_error_set(AB_EINVAL,
					    "mask start (%" PRIu64 ") must be < mask stop (%" PRIu64 ")",
					    *start, *stop);
	}
	if (c->classes && c->class_weights) {
		/* Weights feed a cumulative sum that a uniform draw is searched
		 * in: an infinite or NaN weight, or a sum that overflows, makes
		 * the search pick a wrong (possibly weight-0) class. */
		double sum = 0;
		for (uint32_t k = 0; k < c->n_classes; k++) {
			double wk = c->class_weights[k];
			char b[32];
			if (!isfinite(wk) || wk < 0)
				return ab_error_set(AB_EINVAL,
						    "class weight of '%s' is %g: weights must be finite and >= 0",
						    class_name(c, k, b, sizeof b), wk);
			sum += wk;
		}
		if (!isfinite(sum) || !(sum > 0))
			return ab_error_set(AB_EINVAL,
					    "class weights sum to %g: the sum must be positive and finite",
					    sum);
	}
	if (rotate && (*stop - *start) / c->chunk_size < ws)
		return ab_error_set(AB_EINVAL,
				    "rank_shards rotate: the %" PRIu64 " rows hold %" PRIu64 " full chunks of %" PRIu64
				    " rows, fewer than world_size (%" PRIu32 "); lower chunk_size",
				    *stop - *start, (*stop - *start) / c->chunk_size, c->chunk_size, ws);
	if (c->replacement && *stop - *start < c->chunk_size)
		return ab_error_set(AB_EINVAL,
				    "observation range (%" PRIu64 ") is smaller than chunk_size (%" PRIu64
				    "); reduce chunk_size or expand the mask range",
				    *stop - *start, c->chunk_size);
	return 0;
}

/* ------------------------------------------------------ class sampling */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* One run of a class that can hold a chunk: chunk starts
 * [start, start + nstarts). Runs are grouped by class; `first` of the class
 * table indexes them and `cum` holds prefix sums of nstarts for the lookup. */
typedef struct class_run {
	uint64_t start, nstarts, cum;
} class_run;

static const char *class_name(const ab_sampler_config *c, uint32_t k, char *buf, size_t n)
{
	if (c->class_labels && c->class_labels[k])
		return c->class_labels[k];
	snprintf(buf, n, "%" PRIu32, k);
	return buf;
}

/* Builds the chunks of a class-sampling pass into s->chunks. */
static int build_class_chunks(ab_sampler *s, const ab_sampler_config *c, uint64_t num_samples)
{
	uint32_t nc = c->n_classes;
	uint64_t cs = s->chunk_size;
	int rc = 0;
	if (nc == 0)
		return ab_error_set(AB_EINVAL, "class sampler: the class column has no classes");
	uint64_t *nruns = calloc(nc + 1, sizeof *nruns);
	uint64_t *first = calloc(nc + 1, sizeof *first);
	double *cdf = calloc(nc, sizeof *cdf);
	class_run *runs = NULL;
	uint64_t *fill = NULL;
	if (!nruns || !first || !cdf) {
		rc = ab_error_set(AB_ENOMEM, "class sampler: out of memory");
		goto out;
	}
	/* Missing or invalid codes first: they are a data problem, not a layout one. */
	for (uint64_t r = s->start; r < s->stop; r++) {
		int32_t k = c->classes[r];
		if (k < 0 || (uint32_t)k >= nc) {
			rc = ab_error_set(AB_EINVAL, "class sampler: row %" PRIu64 " has %s class code %" PRId32
					  "; remove missing values first", r, k < 0 ? "a missing" : "an invalid", k);
			goto out;
		}
	}
	/* Pass 1: run-length encode the mask and check the run-length rule. */
	uint64_t total_runs = 0;
	for (uint64_t r = s->start; r < s->stop;) {
		int32_t k = c->classes[r];
		uint64_t e = r + 1;
		while (e < s->stop && c->classes[e] == k)
			e++;
		double wgt = c->class_weights ? c->class_weights[k] : 1.0;
		if (wgt > 0 && e - r < cs) {
			char b[32];
			rc = ab_error_set(AB_EINVAL,
					  "class sampler: class '%s' has a run of %" PRIu64 " rows (rows %" PRIu64
					  "..%" PRIu64 ") shorter than chunk_size %" PRIu64 "; group the data by "
					  "class on disk (annbatch convert --groupby) or give the class weight 0",
					  class_name(c, (uint32_t)k, b, sizeof b), e - r, r, e - 1, cs);
			goto out;
		}
		if (wgt > 0) {
			nruns[k]++;
			total_runs++;
		}
		r = e;
	}
	for (uint32_t k = 0; k < nc; k++)
		first[k + 1] = first[k] + nruns[k];
	runs = calloc(total_runs ? total_runs : 1, sizeof *runs);
	fill = calloc(nc, sizeof *fill);
	if (!runs || !fill) {
		rc = ab_error_set(AB_ENOMEM, "class sampler: out of memory");
		goto out;
	}
	/* Pass 2: place the runs by class, in row order, with prefix sums. */
	for (uint64_t r = s->start; r < s->stop;) {
		int32_t k = c->classes[r];
		uint64_t e = r + 1;
		while (e < s->stop && c->classes[e] == k)
			e++;
		double wgt = c->class_weights ? c->class_weights[k] : 1.0;
		if (wgt > 0) {
			class_run *cr = &runs[first[k] + fill[k]];
			cr->start = r;
			cr->nstarts = e - r - cs + 1;
			cr->cum = (fill[k] ? cr[-1].cum : 0) + cr->nstarts;
			fill[k]++;
		}
		r = e;
	}
	/* The class distribution over classes present in the mask. */
	double sum = 0;
	for (uint32_t k = 0; k < nc; k++) {
		double wgt = c->class_weights ? c->class_weights[k] : 1.0;
		if (wgt > 0 && nruns[k])
			sum += wgt;
		cdf[k] = sum;
	}
	uint32_t last = 0; /* the last class that can be drawn */
	for (uint32_t k = 0; k < nc; k++)
		if (cdf[k] > (k ? cdf[k - 1] : 0))
			last = k;
	if (!(sum > 0)) {
		rc = ab_error_set(AB_EINVAL, "class sampler: no class with a positive weight in rows %" PRIu64
				  "..%" PRIu64, s->start, s->stop - 1);
		goto out;
	}
	uint64_t n_slices = ceil_div(num_samples, cs), rem = num_samples % cs;
	if (n_slices > ((uint64_t)1 << 28)) {
		rc = ab_error_set(AB_EINVAL, "class sampler: %" PRIu64 " chunks a pass is too many (limit 2^28); "
				  "raise chunk_size or lower num_samples", n_slices);
		goto out;
	}
	uint64_t group = s->batch_size / gcd64(cs, s->batch_size);
	s->chunks = malloc((n_slices ? n_slices : 1) * sizeof *s->chunks);
	if (!s->chunks) {
		rc = ab_error_set(AB_ENOMEM, "class sampler: out of memory for %" PRIu64 " chunks", n_slices);
		goto out;
	}
	rng r;
	rng_seed(&r, stream_key(s, STREAM_CHUNKS, 0));
	uint32_t cls = 0;
	for (uint64_t i = 0; i < n_slices; i++) {
		if (i % group == 0) {
			/* 53 random bits -> [0, sum) */
			double u = (double)(rng_next(&r) >> 11) * (1.0 / 9007199254740992.0) * sum;
			uint32_t lo = 0, hi = nc - 1;
			while (lo < hi) {
				uint32_t mid = (lo + hi) / 2;
				if (cdf[mid] > u)
					hi = mid;
				else
					lo = mid + 1;
			}
			/* u rounds up to sum now and then (53 random bits times
			 * sum): the search then ends on the last class, which may
			 * be excluded; take the last class that can be drawn. */
			cls = cdf[lo] > u ? lo : last;
		}
		const class_run *cr = runs + first[cls];
		uint64_t n = nruns[cls];
		uint64_t pick = rng_below(&r, cr[n - 1].cum);
		uint64_t lo = 0, hi = n - 1;
		while (lo < hi) {
			uint64_t mid = (lo + hi) / 2;
			if (cr[mid].cum > pick)
				hi = mid;
			else
				lo = mid + 1;
		}
		uint64_t before = lo ? cr[lo - 1].cum : 0;
		uint64_t st = cr[lo].start + (pick - before);
		uint64_t len = (i + 1 == n_slices && rem) ? rem : cs;
		s->chunks[i].start = st;
		s->chunks[i].stop = st + len;
	}
	s->nchunks = (size_t)n_slices;
out:
	free(nruns);
	free(first);
	free(cdf);
	free(runs);
	free(fill);
	return rc;
}

/* Batches of window i in class mode: consecutive slices of batch_size rows. */
static uint64_t class_window_batches(const ab_sampler *s, size_t i, uint64_t *rows_out)
{
	size_t first = i * s->preload_nchunks;
	size_t n = s->nchunks - first < s->preload_nchunks ? s->nchunks - first : (size_t)s->preload_nchunks;
	uint64_t rows = 0;
	for (size_t k = 0; k < n; k++)
		rows += s->chunks[first + k].stop - s->chunks[first + k].start;
	if (rows_out)
		*rows_out = rows;
	return s->drop_last ? rows / s->batch_size : ceil_div(rows, s->batch_size);
}

static int create_class_mode(ab_sampler *s, const ab_sampler_config *c)
{
	uint64_t num_samples = c->num_samples ? c->num_samples : s->stop - s->start;
	int rc = build_class_chunks(s, c, num_samples);
	if (rc)
		return rc;
	s->class_mode = 1;
	s->shuffle = 1;
	s->ngroups = s->nchunks / s->preload_nchunks + (s->nchunks % s->preload_nchunks != 0);
	s->nwindows = s->ngroups;
	/* drop_last can leave the last window without a batch: drop it. */
	if (s->nwindows && class_window_batches(s, s->nwindows - 1, NULL) == 0)
		s->nwindows--;
	s->nbatches = 0;
	for (size_t i = 0; i < s->nwindows; i++)
		s->nbatches += class_window_batches(s, i, NULL);
	return 0;
}

static int class_window(const ab_sampler *s, size_t i, ab_window *w)
{
	uint64_t rows;
	uint64_t nb = class_window_batches(s, i, &rows);
	size_t first = i * s->preload_nchunks;
	size_t n = s->nchunks - first < s->preload_nchunks ? s->nchunks - first : (size_t)s->preload_nchunks;
	uint64_t used = nb * s->batch_size < rows ? nb * s->batch_size : rows;
	w->index = i;
	w->nchunks = n;
	w->nrows = rows;
	w->nbatches = (size_t)nb;
	w->chunks = malloc(n * sizeof *w->chunks);
	w->perm = malloc((size_t)(used ? used : 1) * sizeof *w->perm);
	w->batch_off = malloc(((size_t)nb + 1) * sizeof *w->batch_off);
	if (!w->chunks || !w->perm || !w->batch_off) {
		ab_window_free(w);
		return ab_error_set(AB_ENOMEM, "sampler: out of memory for window %zu", i);
	}
	memcpy(w->chunks, s->chunks + first, n * sizeof *w->chunks);
	rng r;
	rng_seed(&r, stream_key(s, STREAM_WINDOW, i));
	for (uint64_t k = 0; k < used; k++)
		w->perm[k] = (uint32_t)k;
	for (size_t b = 0; b < nb; b++) {
		uint64_t lo = b * s->batch_size, hi = lo + s->batch_size < used ? lo + s->batch_size : used;
		w->batch_off[b] = (size_t)lo;
		for (uint64_t k = hi - 1; k > lo; k--) {
			uint64_t j = lo + rng_below(&r, k - lo + 1);
			uint32_t t = w->perm[k];
			w->perm[k] = w->perm[j];
			w->perm[j] = t;
		}
	}
	w->batch_off[nb] = (size_t)used;
	return 0;
}

int ab_sampler_create(const ab_sampler_config *cfg, uint64_t n_obs, ab_sampler **out)
{
	if (out == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL output pointer");
	*out = NULL;
	if (cfg == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL configuration");

	uint64_t start = 0, stop = 0;
	int rc = validate(cfg, n_obs, &start, &stop);
	if (rc)
		return rc;

	ab_sampler *s = calloc(1, sizeof *s);
	if (s == NULL)
		return ab_error_set(AB_ENOMEM, "sampler: out of memory");
	s->start = start;
	s->stop = stop;
	s->chunk_size = cfg->chunk_size;
	s->preload_nchunks = cfg->preload_nchunks;
	s->batch_size = cfg->batch_size;
	s->window_rows = cfg->chunk_size * cfg->preload_nchunks; /* checked above */
	s->batches_per_window = s->window_rows / s->batch_size;
	s->shuffle = cfg->shuffle != 0;
	s->drop_last = cfg->drop_last != 0;
	/* Every rank gets its own unrelated streams; a single process is rank
	 * 0. The epoch is folded in so each epoch reshuffles. */
	uint64_t key = mix64(cfg->seed ^ UINT64_C(0x616e6e6261746368)); /* "annbatch" */
	key = key_absorb(key, cfg->rank);
	s->stream_key = key_absorb(key, cfg->epoch);

	if (cfg->classes) {
		rc = create_class_mode(s, cfg);
		if (rc)
			goto fail;
		*out = s;
		return 0;
	}

	uint64_t num_samples = cfg->num_samples ? cfg->num_samples : stop - start;
	int truncate = cfg->replacement || cfg->num_samples != 0;

	uint64_t passes = 1, total = 0;
	if (cfg->rank_shards == 1 && cfg->world_size > 1) {
		rc = build_rotate_chunks(s, cfg);
		if (rc)
			goto fail;
		goto grouped;
	}
	rc = count_chunks(s, cfg->replacement, num_samples, &passes, &total);
	if (rc)
		goto fail;
	/* The epoch's chunk list lives in memory (16 bytes a chunk): past 2^28
	 * chunks (4 GiB) the configuration, not the machine, is at fault. */
	if (total > ((uint64_t)1 << 28)) {
		rc = ab_error_set(AB_EINVAL, "an epoch of %" PRIu64 " chunks is too many (limit 2^28); raise chunk_size",
				  total);
		goto fail;
	}
	s->chunks = malloc(total ? (size_t)total * sizeof *s->chunks : 1);
	if (s->chunks == NULL) {
		rc = ab_error_set(AB_ENOMEM, "sampler: out of memory for %" PRIu64 " chunks", total);
		goto fail;
	}
	rng r;
	rng_seed(&r, stream_key(s, STREAM_CHUNKS, 0));
	if (cfg->replacement) {
		build_replacement_chunks(s, num_samples, &r);
	} else {
		rc = build_epoch_chunks(s, passes, &r);
		if (rc)
			goto fail;
	}

grouped:
	s->ngroups = s->nchunks / s->preload_nchunks + (s->nchunks % s->preload_nchunks != 0);
	size_t base = s->ngroups;
	if (s->ngroups > 0) {
		/* Rows of the last group; every other group is window_rows. */
		size_t first = (s->ngroups - 1) * s->preload_nchunks;
		uint64_t rows = 0;
		for (size_t k = first; k < s->nchunks; k++)
			rows += s->chunks[k].stop - s->chunks[k].start;
		uint64_t biggest = s->ngroups > 1 ? s->window_rows : rows;
		if (biggest > UINT32_MAX) {
			rc = ab_error_set(AB_EINVAL,
					  "a window of %" PRIu64 " rows exceeds the limit of %" PRIu32
					  " rows; reduce chunk_size * preload_nchunks",
					  biggest, UINT32_MAX);
			goto fail;
		}
		s->last_total = rows;
		if (s->drop_last) {
			if (rows < s->batch_size) {
				/* Not even one batch: the last group yields no window. */
				s->last_total = 0;
				base--;
			} else {
				s->last_total = rows - rows % s->batch_size;
			}
		}
	}

	s->nwindows = base;
	if (truncate) {
		/* Stop after exactly n_batches: whole windows first, then a
		 * window cut to the remaining batches. If the groups hold fewer
		 * batches than asked (replacement + drop_last can, because the
		 * remainder chunk is not drawn), everything is yielded. */
		uint64_t n_batches = s->drop_last ? num_samples / s->batch_size
						  : ceil_div(num_samples, s->batch_size);
		uint64_t n_full = n_batches / s->batches_per_window;
		uint64_t tail = n_batches % s->batches_per_window;
		if (n_full < base) {
			s->nwindows = (size_t)n_full + (tail > 0);
			s->tail_batches = tail;
		}
	}
	s->nbatches = s->nwindows == 0 ? 0
		: (uint64_t)(s->nwindows - 1) * s->batches_per_window +
		  window_batches(s, s->nwindows - 1);
	*out = s;
	return 0;

fail:
	ab_sampler_destroy(s);
	return rc;
}

void ab_sampler_destroy(ab_sampler *s)
{
	if (s == NULL)
		return;
	free(s->chunks);
	free(s);
}

size_t ab_sampler_nwindows(const ab_sampler *s)
{
	return s ? s->nwindows : 0;
}

uint64_t ab_sampler_nbatches(const ab_sampler *s)
{
	return s ? s->nbatches : 0;
}

int ab_sampler_window(const ab_sampler *s, size_t i, ab_window *w)
{
	if (w == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL window");
	memset(w, 0, sizeof *w);
	if (s == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL sampler");
	if (i >= s->nwindows)
		return ab_error_set(AB_ERANGE, "sampler: window %zu out of range (epoch has %zu)",
				    i, s->nwindows);
	if (s->class_mode)
		return class_window(s, i, w);

	size_t first = i * s->preload_nchunks;
	size_t n = s->nchunks - first < s->preload_nchunks ? s->nchunks - first
							   : (size_t)s->preload_nchunks;
	uint64_t nrows = 0;
	for (size_t k = 0; k < n; k++)
		nrows += s->chunks[first + k].stop - s->chunks[first + k].start;

	/* The permutation domain: all rows of a full group; for the last group
	 * only its first last_total positions (drop_last leaves the rest). */
	uint64_t domain = i + 1 < s->ngroups ? s->window_rows : s->last_total;
	uint64_t nb = window_batches(s, i);
	uint64_t used = nb * s->batch_size < domain ? nb * s->batch_size : domain;

	w->index = i;
	w->nchunks = n;
	w->nrows = nrows;
	w->nbatches = (size_t)nb;
	w->chunks = malloc(n * sizeof *w->chunks);
	w->perm = malloc((size_t)domain * sizeof *w->perm);
	w->batch_off = malloc(((size_t)nb + 1) * sizeof *w->batch_off);
	if (w->chunks == NULL || w->perm == NULL || w->batch_off == NULL) {
		ab_window_free(w);
		return ab_error_set(AB_ENOMEM, "sampler: out of memory for window %zu (%" PRIu64 " rows)",
				    i, nrows);
	}
	memcpy(w->chunks, s->chunks + first, n * sizeof *w->chunks);

	for (uint64_t k = 0; k < domain; k++)
		w->perm[k] = (uint32_t)k;
	if (s->shuffle && domain > 1) {
		/* A full Fisher-Yates over the domain, even when the window is
		 * truncated, so a truncated window is the prefix of the window it
		 * would otherwise have been. */
		rng r;
		rng_seed(&r, stream_key(s, STREAM_WINDOW, i));
		for (uint64_t k = domain - 1; k > 0; k--) {
			uint64_t j = rng_below(&r, k + 1);
			uint32_t t = w->perm[k];
			w->perm[k] = w->perm[j];
			w->perm[j] = t;
		}
	}
	for (size_t b = 0; b < nb; b++)
		w->batch_off[b] = b * (size_t)s->batch_size;
	w->batch_off[nb] = (size_t)used;
	return 0;
}

void ab_window_free(ab_window *w)
{
	if (w == NULL)
		return;
	free(w->chunks);
	free(w->perm);
	free(w->batch_off);
	memset(w, 0, sizeof *w);
}

/* ------------------------------------------------- rank from environment */

/* A decimal number that fits in uint32: digits only, no sign, no blanks. */
static int parse_u32(const char *text, uint32_t *out)
{
	uint64_t v = 0;
	if (*text == '\0')
		return -1;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* Returns 1 with the rank found, 0 when no convention is set, or AB_EINVAL when
 * a convention is set but malformed (a launcher misconfiguration should not
 * silently turn every rank into a full single-process run). On that error the
 * outputs are still set to rank 0 of 1, so a caller that only tests the return
 * value for truth never reads uninitialised values. */
int ab_sampler_rank_from_env(uint32_t *rank, uint32_t *world_size)
{
	static const char *const names[][2] = {
		{ "RANK", "WORLD_SIZE" },                              /* torchrun */
		{ "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" },    /* Open MPI */
		{ "SLURM_PROCID", "SLURM_NTASKS" },                    /* Slurm    */
	};
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		const char *r = getenv(names[k][0]);
		const char *ws = getenv(names[k][1]);
		/* A convention applies when either of its variables is set; then
		 * both must be, and not empty: RANK alone (or empty) is a broken
		 * launch, and reading everything on every rank would hide it. */
		if (r == NULL && ws == NULL)
			continue;
		uint32_t rv = 0, wv = 0;
		int rc = 0;
		if (r == NULL || ws == NULL)
			rc = ab_error_set(AB_EINVAL, "%s is set but %s is not: set both, or neither (an explicit "
					  "rank and world size ignore the environment)",
					  names[k][r ? 0 : 1], names[k][r ? 1 : 0]);
		else if (*r == '\0' || *ws == '\0')
			rc = ab_error_set(AB_EINVAL, "%s is set but empty", names[k][*r ? 1 : 0]);
		else if (parse_u32(r, &rv) != 0)
			rc = ab_error_set(AB_EINVAL, "%s=\"%s\" is not a non-negative integer",
					  names[k][0], r);
		else if (parse_u32(ws, &wv) != 0 || wv == 0)
			rc = ab_error_set(AB_EINVAL, "%s=\"%s\" is not a positive integer",
					  names[k][1], ws);
		else if (rv >= wv)
			rc = ab_error_set(AB_EINVAL, "%s (%" PRIu32 ") must be < %s (%" PRIu32 ")",
					  names[k][0], rv, names[k][1], wv);
		if (rc) {
			rv = 0;
			wv = 1;
		}
		if (rank)
			*rank = rv;
		if (world_size)
			*world_size = wv;
		return rc ? rc : 1;
	}
	return 0;
}
