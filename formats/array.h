/*
 * array.h - an open zarr array and its chunk reader (internal).
 *
 * The reader turns "rows [a, b) of this array" into decode units: the chunks
 * of an unsharded array, or the inner chunks of a sharded one (the shard index
 * read once per shard with one small read and cached). A unit that lies whole
 * and contiguous inside the destination is decoded straight into it; others go
 * through one reusable buffer, so reading allocates only when a chunk is larger
 * than any before.
 */
#ifndef AB_FORMATS_ARRAY_H
#define AB_FORMATS_ARRAY_H

#include "meta.h"
#include "store.h"

typedef struct ab_shard_slot {
	uint64_t key;      /* linear shard index + 1; 0 = empty slot          */
	int present;       /* the shard file exists                           */
	uint64_t size;     /* shard file size                                 */
	uint64_t *entries; /* 2 * n_inner (offset, nbytes), host order        */
} ab_shard_slot;

struct ab_array {
	ab_store *store;
	char *node;               /* normalised node path                      */
	ab_array_meta m;
	/* decode units */
	int sharded;              /* top-level sharding read inner chunk by chunk */
	uint64_t unit[AB_MAX_NDIM];
	const ab_pipeline *unit_pipe;
	/* shard index cache (open addressing) */
	ab_shard_slot *slots;
	size_t nslots, nused;
	/* the last opened shard file */
	uint64_t fd_key;
	int fd;
	/* reusable buffers */
	ab_buf io;
	ab_buf unitbuf;
	ab_scratch scratch;
	char codecs_desc[512];
};

/* Opens an array whose node path is already normalised. */
int ab_array_open_norm(ab_store *store, const char *node, ab_array **out);

#endif
