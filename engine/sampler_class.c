/*
 * sampler_class.c - class sampling, as the Python ClassSampler (see
 * ab_sampler_config.classes in sampler.h): every batch comes from one class.
 * A class is drawn per group of batches with probability proportional to its
 * weight, each chunk start uniformly among the starts that keep the chunk
 * inside one run of that class, and rows are shuffled within each batch.
 */
#include "sampler_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"

/* One run of a class that can hold a chunk: chunk starts
 * [start, start + nstarts). Runs are grouped by class; `first` of the class
 * table indexes them and `cum` holds prefix sums of nstarts for the lookup. */
typedef struct class_run {
	uint64_t start, nstarts, cum;
} class_run;

const char *sampler_class_name(const ab_sampler_config *c, uint32_t k, char *buf, size_t n)
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
					  sampler_class_name(c, (uint32_t)k, b, sizeof b), e - r, r, e - 1, cs);
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
			double u = (double)(ab_xoshiro_next(&r) >> 11) * (1.0 / 9007199254740992.0) * sum;
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
		uint64_t pick = ab_below_lemire(&r, cr[n - 1].cum);
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

int sampler_class_create(ab_sampler *s, const ab_sampler_config *c)
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

int sampler_class_window(const ab_sampler *s, size_t i, ab_window *w)
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
			uint64_t j = lo + ab_below_lemire(&r, k - lo + 1);
			uint32_t t = w->perm[k];
			w->perm[k] = w->perm[j];
			w->perm[j] = t;
		}
	}
	w->batch_off[nb] = (size_t)used;
	return 0;
}
