/*
 * fuzz_common.h - what the libFuzzer targets of tests/fuzz share.
 *
 * Each target is one LLVMFuzzerTestOneInput compiled together with the library
 * sources (tests/fuzz/build.sh). The targets feed bytes to the decoders the way
 * a hostile store would, and hold the library to its contract: a clean
 * negative status for bad input, never a crash, a leak, undefined behaviour or
 * an allocation out of proportion to the input.
 *
 * FUZZ_MAX_BYTES bounds what a target itself is willing to allocate on the
 * input's behalf (decoded buffers, read destinations). Inputs that ask for more
 * are skipped by the target, not fed to the library: the library's own
 * allocations are what the fuzzer checks, against -rss_limit_mb/-malloc_limit_mb.
 */
#ifndef AB_FUZZ_COMMON_H
#define AB_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annbatch.h"

#define FUZZ_MAX_BYTES ((size_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a little-endian u32 from the input, 0 past its end. */
static inline uint32_t fuzz_u32(const uint8_t *p, size_t avail)
{
	uint32_t v = 0;
	for (size_t i = 0; i < 4 && i < avail; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

/* With FUZZ_DEBUG=1 in the environment, targets report what the library
 * said about each input (checking that seeds really decode, or why a
 * reproducer fails); silent otherwise. */
static inline void fuzz_debug(const char *what, int rc)
{
	static int on = -1;
	if (on < 0)
		on = getenv("FUZZ_DEBUG") != NULL;
	if (on)
		fprintf(stderr, "fuzz: %s: %d %s\n", what, rc, rc ? ab_last_error() : "ok");
}

/* Aborts (a crash the fuzzer reports) when an invariant of the library's
 * contract does not hold. */
#define FUZZ_ASSERT(cond)                                                           \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "FUZZ_ASSERT(%s) failed at %s:%d\n", #cond, \
				__FILE__, __LINE__);                                 \
			abort();                                                     \
		}                                                                    \
	} while (0)

#endif
