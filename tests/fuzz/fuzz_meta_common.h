/*
 * fuzz_meta_common.h - the part of fuzz_meta_v2 / fuzz_meta_v3 that exercises a
 * successfully parsed array metadata document: every consumer of the parsed
 * structure that does not need chunk files.
 */
#ifndef AB_FUZZ_META_COMMON_H
#define AB_FUZZ_META_COMMON_H

#include "fuzz_common.h"

#include "meta.h"
#include "pipeline.h"

/* Describes the pipeline, computes a chunk key for the last chunk of the grid
 * and fills one chunk with the fill value when it is small, then decodes a
 * chunk made of the fill value's encoding when the chain is plain bytes. */
static void exercise_meta(const ab_array_meta *m)
{
	char desc[1024];
	ab_pipeline_describe(&m->pipe, desc, sizeof desc);
	FUZZ_ASSERT(strlen(desc) < sizeof desc);

	uint64_t coord[AB_MAX_NDIM];
	for (int i = 0; i < m->ndim; i++) {
		FUZZ_ASSERT(m->chunk[i] > 0);
		coord[i] = m->shape[i] ? (m->shape[i] - 1) / m->chunk[i] : 0;
	}
	char key[1024];
	ab_chunk_key(m, coord, key, sizeof key);
	FUZZ_ASSERT(memchr(key, '\0', sizeof key) != NULL);

	size_t nbytes;
	if (ab_chunk_nbytes(m->ndim, m->chunk, &m->dt, &nbytes) != 0 || nbytes > ((size_t)1 << 20))
		return;
	uint64_t nitems = 1;
	for (int i = 0; i < m->ndim; i++)
		nitems *= m->chunk[i];
	void *buf = malloc(nbytes ? nbytes : 1);
	if (!buf)
		return;
	if (ab_chunk_fill(buf, nitems, &m->dt, m->fill, m->fill_str) == 0 && m->dt.str == AB_STR_VLEN)
		ab_chunk_free_strings(buf, nitems);
	/* A raw chunk of the right size must decode through an uncompressed
	 * bytes chain (the data is whatever the fill left in buf). */
	if (m->pipe.a2b == AB_A2B_BYTES && m->pipe.nb2b == 0 && m->dt.str != AB_STR_VLEN) {
		void *out = malloc(nbytes ? nbytes : 1);
		ab_scratch scratch = { 0 };
		if (out) {
			int rc = ab_chunk_decode(&m->pipe, &m->dt, m->chunk, buf, nbytes, m->fill,
						 m->fill_str, out, nbytes, &scratch);
			FUZZ_ASSERT(rc == 0);
		}
		ab_scratch_free(&scratch);
		free(out);
	}
	free(buf);
}

#endif
