/* hist.c - log-linear latency histogram. */
#include "hist.h"

static unsigned bucket_of(uint64_t ns)
{
	if (ns < AB_HIST_SUB)
		return (unsigned)ns;
	unsigned msb = 63u - (unsigned)__builtin_clzll(ns); /* >= 4 */
	unsigned octave = msb - 3;                           /* 1.. */
	unsigned sub = (unsigned)(ns >> (msb - 4)) & (AB_HIST_SUB - 1);
	unsigned b = octave * AB_HIST_SUB + sub;
	return b < AB_HIST_BUCKETS ? b : AB_HIST_BUCKETS - 1;
}

/* Lower edge of a bucket, in ns. */
static double bucket_low(unsigned b)
{
	if (b < AB_HIST_SUB)
		return b;
	unsigned octave = b / AB_HIST_SUB, sub = b % AB_HIST_SUB;
	unsigned msb = octave + 3;
	return (double)((uint64_t)(AB_HIST_SUB + sub) << (msb - 4));
}

void ab_hist_reset(ab_hist *h)
{
	for (unsigned i = 0; i < AB_HIST_BUCKETS; i++)
		atomic_store_explicit(&h->count[i], 0, memory_order_relaxed);
	atomic_store_explicit(&h->total, 0, memory_order_relaxed);
}

void ab_hist_record(ab_hist *h, uint64_t ns)
{
	atomic_fetch_add_explicit(&h->count[bucket_of(ns)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->total, 1, memory_order_relaxed);
}

double ab_hist_quantile(const ab_hist *h, double q)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < AB_HIST_BUCKETS; i++)
		total += atomic_load_explicit(&h->count[i], memory_order_relaxed);
	if (total == 0)
		return 0;
	double rank = q * (double)total;
	uint64_t seen = 0;
	for (unsigned i = 0; i < AB_HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->count[i], memory_order_relaxed);
		if (c && (double)(seen + c) >= rank) {
			/* interpolate inside the bucket */
			double lo = bucket_low(i), hi = i + 1 < AB_HIST_BUCKETS ? bucket_low(i + 1) : lo * 1.07;
			double f = c ? (rank - (double)seen) / (double)c : 0;
			if (f < 0)
				f = 0;
			return lo + (hi - lo) * f;
		}
		seen += c;
	}
	return bucket_low(AB_HIST_BUCKETS - 1);
}
