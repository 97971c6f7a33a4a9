/*
 * store.h - a zarr store on a local directory tree, and its metadata (internal).
 *
 * The store never writes. Files are opened relative to a directory descriptor
 * of the root, node paths are normalised and may not contain "." or "..", so a
 * node name can never reach outside the store. Consolidated metadata (v2
 * .zmetadata, v3 inline consolidated_metadata) answers lookups from memory.
 */
#ifndef AB_FORMATS_STORE_H
#define AB_FORMATS_STORE_H

#include <jansson.h>

#include "annbatch.h"
#include "util.h"

struct ab_store {
	char *root;
	int rootfd;
	int zarr_format;      /* 2 or 3; 0: no root metadata (nodes found by path) */
	json_t *consolidated; /* v2: {"X/.zarray": {...}}; v3: {"X": {zarr.json}} */
};

typedef struct ab_node_meta {
	ab_node_type type;
	json_t *meta;  /* v2 .zarray / .zgroup, v3 zarr.json (a new reference) */
	json_t *attrs; /* user attributes (a new reference; {} when none)      */
	int zarr_format; /* of this node: a store without root metadata (format
	                  * 0) may hold v2 and v3 nodes                         */
} ab_node_meta;

/* Loads the metadata of `node` (already normalised). AB_ENOENT with a message
 * "... not found" when the node does not exist. */
int ab_store_node_meta(ab_store *s, const char *node, ab_node_meta *out);
void ab_node_meta_release(ab_node_meta *m);

/* Reads a whole file below the root into `buf`; *found = 0 (and 0 returned)
 * when it does not exist. A file larger than `max` bytes is refused from its
 * size, before anything is allocated (a sparse file can claim gigabytes it
 * never stored); the message says "<file>: N bytes, more than <limit> (max
 * bytes)". */
int ab_store_read_file(ab_store *s, const char *rel, uint64_t max, const char *limit, ab_buf *buf, int *found);

/* Opens a file below the root read-only. Returns the fd, or -1 with errno. */
int ab_store_open_file(ab_store *s, const char *rel);

/* Parses JSON text; the message names `what`. */
int ab_json_parse(const uint8_t *data, size_t len, const char *what, json_t **out);

/* Attribute helpers: a string attribute or NULL. */
const char *ab_attr_str(const json_t *attrs, const char *key);

#endif
