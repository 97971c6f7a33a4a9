/*
 * hist.h - a lock-free latency histogram (internal).
 *
 * Log-linear buckets: 16 sub-buckets per power of two of nanoseconds, so any
 * percentile is within about 6% of the true value, from 1 ns to about 18
 * minutes. Recording is one relaxed atomic increment; any thread may record.
 */
#ifndef AB_ENGINE_HIST_H
#define AB_ENGINE_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define AB_HIST_SUB 16
#define AB_HIST_OCTAVES 40
#define AB_HIST_BUCKETS (AB_HIST_SUB * AB_HIST_OCTAVES)

typedef struct ab_hist {
	_Atomic uint64_t count[AB_HIST_BUCKETS];
	_Atomic uint64_t total;
} ab_hist;

void ab_hist_reset(ab_hist *h);
void ab_hist_record(ab_hist *h, uint64_t ns);
/* The q-quantile (0 < q < 1) in nanoseconds, 0 when empty. */
double ab_hist_quantile(const ab_hist *h, double q);

#endif
