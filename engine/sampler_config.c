/*
 * sampler_config.c - the sampler's configuration: checked as the Python
 * library checks it (same order, messages that say what would work), and
 * the rank and world size read from the variables launchers set.
 */
#include "sampler_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "last_error.h"

/* ------------------------------------------------------ validation */

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

int sampler_validate(const ab_sampler_config *c, uint64_t n_obs, uint64_t *start, uint64_t *stop)
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
						    sampler_class_name(c, k, b, sizeof b), wk);
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
