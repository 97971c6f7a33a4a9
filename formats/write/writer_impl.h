/*
 * writer_impl.h - what the files of the store writer share (internal to
 * formats/write/): the writer and array handles, and the functions one file
 * of the writer calls in another.
 *
 *   writer.c       the writer: create, groups, commit, abort
 *   chunks.c       arrays: rows appended into chunks, chunks encoded and
 *                  written as files or as the inner chunks of shards
 *   meta_json.c    metadata documents as zarr-python writes them
 *   transaction.c  files: the temporary directory, writes, the final rename,
 *                  adopting another store's subtree
 */
#ifndef AB_FORMATS_WRITE_WRITER_IMPL_H
#define AB_FORMATS_WRITE_WRITER_IMPL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "annbatch.h"
#include "codec.h"
#include "util.h"
#include "writer.h"

struct ab_writer {
	char *final_path;
	char *tmp_path;
	int zarr_format;
	int overwrite;
	/* node path -> metadata. v3: the zarr.json document. v2: an object with
	 * the ".zgroup"/".zarray" and ".zattrs" documents. */
	json_t *nodes;
	ab_writer_array *open;  /* arrays not yet closed */
};

struct ab_writer_array {
	ab_writer *w;
	ab_writer_array *next;
	char *node;
	char *dir;              /* directory of the node inside tmp_path */
	ab_writer_array_config cfg;
	int is_string;
	size_t itemsize;        /* bytes per item in the chunk buffer */
	uint64_t row_items;
	uint64_t rows;          /* appended so far */
	/* the chunk being filled */
	uint8_t *chunk;         /* numeric: chunk_rows * row_items items */
	char **strs;            /* strings: chunk_rows * row_items copies */
	uint64_t chunk_rows_filled;
	uint64_t chunk_index;   /* the next chunk's index along axis 0 */
	ab_b2b_codec codec;
	int has_codec;
	ab_buf enc;
	/* sharding */
	uint64_t per_shard;     /* inner chunks per shard; 0 = unsharded */
	int shard_fd;
	uint64_t shard_offset;
	uint64_t *index;        /* 2 * per_shard entries of the open shard */
	char *shard_file;
	int failed;             /* the status of the first failed write, 0 = none */
	char *fail_msg;         /* and its message, repeated by later calls */
};

/* ---- writer.c ---- */
/* Makes sure every ancestor of `node` (normalised) is a declared group. */
int wr_ensure_parents(ab_writer *w, const char *node);

/* ---- chunks.c ---- */
/* Frees an array handle and what it holds (its files stay). */
void wr_array_free(ab_writer_array *a);

/* ---- meta_json.c ---- */
/* A JSON object given as text (NULL or "" = {}): a new reference, or NULL
 * with *rc set (AB_EINVAL and a message) when it is not an object. */
json_t *wr_parse_attrs(const char *text, int *rc);
/* A group's metadata (v3: its zarr.json; v2: {".zgroup", ".zattrs"}), with
 * `attrs` (stolen). NULL when out of memory. */
json_t *wr_group_meta(int zarr_format, json_t *attrs);
/* Writes a node's metadata files into `dir`: zarr.json (v3); .zgroup or
 * .zarray, and .zattrs when there are attributes (v2). */
int wr_write_node_meta(const char *dir, int zarr_format, const json_t *meta);
/* Writes the root's metadata with the consolidated metadata of `nodes` (node
 * path -> metadata, "" the root): v3 inline in zarr.json, v2 .zmetadata. */
int wr_write_consolidated(const char *dir, int zarr_format, const json_t *nodes);

/* ---- transaction.c ---- */
/* An AB_EIO message for a failed system call (ENOSPC and EDQUOT spelt out). */
int wr_io_error(const char *path, const char *what, int err);
/* write(2) until all n bytes are written. */
int wr_write_all(int fd, const void *p, size_t n, const char *path);
/* Writes a whole file, always as a new inode. */
int wr_write_file(const char *path, const void *p, size_t n);
/* mkdir -p of `path` (which must not end in '/'). */
int wr_make_dirs(const char *path);
/* Checks that the store `path` can be created (or replaced, with overwrite)
 * and makes its temporary directory beside it, removing what killed runs
 * left there. Sets *final_path (path without trailing slashes) and
 * *tmp_path, both malloc'd. */
int wr_tmp_dir_create(const char *path, int overwrite, char **final_path, char **tmp_path);
/* Moves the finished temporary directory to the final path, atomically
 * replacing what is there when overwrite is set; everything is flushed to
 * disk first. On failure the final path is as it was (the caller removes
 * the temporary directory). */
int wr_publish(const char *tmp_path, const char *final_path, int overwrite);

#endif
