/*
 * writer_opts.h - the options `annbatch synth` and `annbatch convert` share
 * for how they write zarr (codec, blosc blocks, chunk rows, shard size),
 * parsed once into an ab_anndata_write_config, and the size syntax they and
 * --dataset-size/--memory use.
 */
#ifndef AB_TOOLS_WRITER_OPTS_H
#define AB_TOOLS_WRITER_OPTS_H

#include <getopt.h>
#include <stdint.h>

#include "annbatch.h"

enum { WO_COMPRESSOR = 0x1000, WO_BLOCKSIZE, WO_CHUNK, WO_SHARD, WO_SHARD_ROWS, WO_SPLIT, WO_UNSPLIT };

/* The entries for a getopt_long table. */
#define WRITER_LONG_OPTIONS                                              \
	{ "compressor", required_argument, NULL, WO_COMPRESSOR },        \
	{ "blosc-blocksize", required_argument, NULL, WO_BLOCKSIZE },    \
	{ "n-obs-per-chunk", required_argument, NULL, WO_CHUNK },        \
	{ "shard-size", required_argument, NULL, WO_SHARD },             \
	{ "shard-rows", required_argument, NULL, WO_SHARD_ROWS },       \
	{ "blosc-split", no_argument, NULL, WO_SPLIT },                  \
	{ "blosc-unsplit", no_argument, NULL, WO_UNSPLIT }

/* If `ch` is one of the writer options, applies `arg` to cfg and returns 1,
 * or prints the error (as `annbatch CMD: ...`) and returns -1; returns 0 for
 * any other option. */
int writer_option(const char *cmd, int ch, const char *arg, ab_anndata_write_config *cfg);

/* Parses a size: plain bytes, or a number with K, M, G, T (optionally
 * followed by B or iB; powers of 1000 for KB/MB/GB, of 1024 for KiB/...).
 * 0, or -1 when it is not one. */
int parse_size(const char *s, uint64_t *out);

#endif
