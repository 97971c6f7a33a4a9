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

/* Where the encoded bytes of one decode unit live. For unsharded arrays the
 * unit is a whole file whose size is not known here (length = UINT64_MAX);
 * for sharded ones the shard index (read once, cached) gives the exact range,
 * or says the unit is absent. */
typedef struct ab_unit_loc {
	int present;          /* 0: absent, reads as the fill value          */
	char rel[1024];       /* the file, relative to the store root        */
	uint64_t file_lin;    /* linear index of the file in the grid        */
	uint64_t offset, length;
} ab_unit_loc;
int ab_array_locate_unit(ab_array *a, const uint64_t *ucoord, ab_unit_loc *loc);

/* Number of decode units along each axis. */
void ab_array_unit_grid(const ab_array *a, uint64_t *grid);

/* Opens an array whose node path is already normalised. */
int ab_array_open_norm(ab_store *store, const char *node, ab_array **out);
/* Reads items [a, b) of a 1-D integer array widened to int64 (tmp: scratch
 * for narrower dtypes). A uint64 above INT64_MAX is AB_ECORRUPT; a non-integer
 * dtype AB_EFORMAT. */
int ab_array_read_int64(ab_array *arr, uint64_t a, uint64_t b, int64_t *dst, ab_buf *tmp);

/* Opens the array `name` inside the group `group` (normalised): the member
 * arrays of AnnData's encoded groups (a csr_matrix's data, a categorical's
 * codes). */
int ab_array_open_child(ab_store *store, const char *group, const char *name, ab_array **out);

#endif
