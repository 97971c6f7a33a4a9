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
#include "sampler_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"

/* ------------------------------------------------------------ the epoch */

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
			uint64_t j = ab_below_lemire(r, k + 1);
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
		uint64_t b = s->start + ab_below_lemire(r, s->stop - cs - s->start + 1);
		s->chunks[s->nchunks++] = (ab_chunk_range){ b, b + cs };
	}
	if (rem > 0 && !s->drop_last) {
		uint64_t b = s->start + ab_below_lemire(r, s->stop - rem - s->start + 1);
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
	uint64_t key = ab_mix64(c->seed ^ UINT64_C(0x616e6e6261746368));
	rng r;
	rng_seed(&r, key_absorb(key_absorb(key, STREAM_DEAL), c->epoch));
	uint64_t j = 0;
	if (m > 0)
		j = c->epoch % 2 == 0 ? ab_below_lemire(&r, L + 1) : L + m + ab_below_lemire(&r, D - L - m + 1);
	for (uint64_t q = 0; q < D; q++)
		order[q] = q;
	if (s->shuffle) {
		for (uint64_t q = D - 1; q > 0; q--) {
			uint64_t x = ab_below_lemire(&r, q + 1), t = order[q];
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

int ab_sampler_create(const ab_sampler_config *cfg, uint64_t n_obs, ab_sampler **out)
{
	if (out == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL output pointer");
	*out = NULL;
	if (cfg == NULL)
		return ab_error_set(AB_EINVAL, "sampler: NULL configuration");

	uint64_t start = 0, stop = 0;
	int rc = sampler_validate(cfg, n_obs, &start, &stop);
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
	uint64_t key = ab_mix64(cfg->seed ^ UINT64_C(0x616e6e6261746368)); /* "annbatch" */
	key = key_absorb(key, cfg->rank);
	s->stream_key = key_absorb(key, cfg->epoch);

	if (cfg->classes) {
		rc = sampler_class_create(s, cfg);
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
		return sampler_class_window(s, i, w);

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
			uint64_t j = ab_below_lemire(&r, k + 1);
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
