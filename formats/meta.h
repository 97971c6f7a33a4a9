/*
 * meta.h - array metadata of zarr v2 (.zarray) and v3 (zarr.json) decoded into
 * one structure (internal).
 */
#ifndef AB_FORMATS_META_H
#define AB_FORMATS_META_H

#include <jansson.h>

#include "dtype.h"
#include "pipeline.h"

typedef struct ab_array_meta {
	int zarr_format;
	int ndim;
	uint64_t shape[AB_MAX_NDIM];
	uint64_t chunk[AB_MAX_NDIM];   /* the grid: shard shape when sharded       */
	ab_dtype_desc dt;
	uint8_t fill[16];
	char *fill_str;                /* string dtypes                            */
	ab_pipeline pipe;
	/* chunk keys: "c/1/2" (v3 default), "1.2" / "1/2" (v2 and v3 "v2") */
	int key_prefix_c;
	char key_sep;
} ab_array_meta;

/* Decodes array metadata; `what` names the node in messages. */
int ab_array_meta_parse(const json_t *doc, int zarr_format, const char *what, ab_array_meta *out);
void ab_array_meta_free(ab_array_meta *m);

/* Writes the key of the chunk at grid coordinate `coord` relative to the
 * array's directory. */
void ab_chunk_key(const ab_array_meta *m, const uint64_t *coord, char *buf, size_t size);

#endif
