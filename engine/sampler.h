/*
 * sampler.h - which rows come in which batch (internal).
 *
 * The sampler turns a configuration and (seed, epoch, rank, world_size) into a
 * deterministic list of windows. A window is up to `preload_nchunks` chunks
 * (contiguous row ranges [start, stop) in the global row space) plus a split of
 * the window's rows into batches: the rows of a window are numbered 0..n-1 in
 * chunk order (the first chunk's rows first), and batch b of the window is the
 * list of those window-local positions perm[b*batch_size ...].
 *
 * Semantics follow the Python annbatch library's chunk sampler:
 *  - without replacement, one epoch = the rows of [mask_start, mask_stop) cut
 *    into chunks of chunk_size; shuffled chunk order when `shuffle` (the one
 *    incomplete chunk, if any, always comes last in iteration order); chunks
 *    grouped by preload_nchunks into windows; every full window's rows permuted
 *    (shuffle) or in order, then cut into batches of batch_size; the last window
 *    holds what is left: with drop_last its row count is rounded down to a
 *    multiple of batch_size (rows beyond are not used), without it the last
 *    batch may be short.
 *  - num_samples (without replacement) larger than the epoch tiles several
 *    epochs (middle epochs drop their incomplete chunk) and stops after
 *    n_batches = num_samples / batch_size (drop_last: floor, else ceil).
 *  - with replacement: num_samples / chunk_size chunks whose starts are drawn
 *    uniformly from [mask_start, mask_stop - chunk_size], plus (without
 *    drop_last) one chunk of the remainder; then truncated to n_batches.
 *  - distributed: rank r of world_size w gets the mask
 *    [r*per_rank, (r+1)*per_rank) with per_rank = n_obs / w rounded down to a
 *    multiple of batch_size, so every rank has the same number of batches; each
 *    rank's random stream is derived from (seed, rank). Rank r never sees
 *    rows outside its slice (on data grouped by class, some classes) and the
 *    remainder rows are never served: rank_shards = 1 (rotate) deals the
 *    chunks anew each epoch instead (see the field).
 *  - validation as the Python library: chunk_size, preload_nchunks >= 1;
 *    batch_size <= chunk_size * preload_nchunks and divides it; the mask inside
 *    [0, n_obs) and non-empty; replacement needs mask size >= chunk_size.
 */
#ifndef AB_ENGINE_SAMPLER_H
#define AB_ENGINE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ab_sampler_config {
	uint64_t chunk_size;      /* default 512 */
	uint64_t preload_nchunks; /* default 32  */
	uint64_t batch_size;      /* default 1   */
	int shuffle;
	int drop_last;
	int replacement;
	uint64_t num_samples;     /* 0 = not set */
	uint64_t mask_start;
	uint64_t mask_stop;       /* 0 = not set (n_obs) */
	uint64_t seed;
	uint64_t epoch;
	uint32_t rank, world_size; /* world_size 0 or 1: not distributed */
	/* Class sampling (classes != NULL), as the Python ClassSampler: every
	 * batch comes from one class. A class is drawn per group of
	 * batch_size / gcd(chunk_size, batch_size) chunks with probability
	 * proportional to its weight (uniform when class_weights is NULL; a weight
	 * <= 0 excludes the class), each chunk start is drawn uniformly among the
	 * starts that keep the chunk inside one run of that class, num_samples
	 * rows (default: the mask's rows) are drawn with replacement, windows are
	 * cut into consecutive batches and rows are shuffled within each batch.
	 * Every run of a non-excluded class must be at least chunk_size rows:
	 * the data must be grouped by class on disk. shuffle/replacement are
	 * implied; codes of -1 (missing) are refused. */
	const int32_t *classes;          /* n_obs codes, global row order           */
	uint32_t n_classes;
	const double *class_weights;     /* n_classes entries, or NULL              */
	const char *const *class_labels; /* for messages, or NULL                   */
	/* Distributed shares (world_size > 1): 0 = fixed, the contiguous slice
	 * above, the same every epoch; 1 = rotate, each epoch the mask's full
	 * chunks are dealt to the ranks from a stream keyed by (seed, epoch)
	 * only, floor(full chunks / world_size) each, disjoint and equal; the
	 * rows left out form one gap placed so that the gaps of consecutive
	 * epochs never meet: every row is served within any 2 consecutive
	 * epochs. Not with replacement, num_samples or class sampling. */
	int rank_shards;
} ab_sampler_config;

typedef struct ab_chunk_range {
	uint64_t start, stop;      /* global rows [start, stop) */
} ab_chunk_range;

typedef struct ab_window {
	uint64_t index;            /* position in the epoch's window list      */
	size_t nchunks;
	ab_chunk_range *chunks;
	uint64_t nrows;            /* sum of chunk lengths                     */
	size_t nbatches;
	/* batch b = perm[batch_off[b] .. batch_off[b+1]) (window-local rows) */
	uint32_t *perm;
	size_t *batch_off;         /* nbatches + 1 entries                     */
} ab_window;

typedef struct ab_sampler ab_sampler;

/* Validates the configuration against n_obs (rows in the global row space).
 * Errors return AB_EINVAL with a message like the Python library's. */
int ab_sampler_create(const ab_sampler_config *cfg, uint64_t n_obs, ab_sampler **out);
void ab_sampler_destroy(ab_sampler *s);

/* Number of windows and batches in the epoch set by the config. */
size_t ab_sampler_nwindows(const ab_sampler *s);
uint64_t ab_sampler_nbatches(const ab_sampler *s);

/* Fills `w` with window i (0 <= i < nwindows) of the epoch. The window is
 * computed on demand (chunk list precomputed, permutation drawn from a stream
 * derived from (seed, epoch, rank, i)), so windows can be built in any order
 * and from any thread. Free with ab_window_free. */
int ab_sampler_window(const ab_sampler *s, size_t i, ab_window *w);
void ab_window_free(ab_window *w);

/* Reads RANK/WORLD_SIZE (torchrun), OMPI_COMM_WORLD_RANK/SIZE (Open MPI),
 * SLURM_PROCID/SLURM_NTASKS (Slurm), in that order; the first pair with either
 * variable set decides. Returns 1 if found, 0 if none is set, AB_EINVAL
 * (message set) if that pair is half set, empty or malformed (not digits,
 * size 0, rank >= size): a broken launcher must not silently make every rank
 * read everything. */
int ab_sampler_rank_from_env(uint32_t *rank, uint32_t *world_size);

#endif
