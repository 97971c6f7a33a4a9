/*
 * loader_opts.h - the loader options shared by `iterate` and `bench`.
 */
#ifndef AB_TOOLS_LOADER_OPTS_H
#define AB_TOOLS_LOADER_OPTS_H

#include <getopt.h>

#include "annbatch.h"

typedef struct loader_opts {
	ab_loader_config cfg;
	uint64_t epoch;
	const char *class_col, *class_w, *obs_list;
} loader_opts;

/* Option values start here; commands number their own options below it. */
enum { LOPT_FIRST = 1000 };

/* The long options of the loader, terminated by a zero entry. */
extern const struct option loader_long_opts[];
/* The help text block describing them. */
extern const char loader_opts_help[];

void loader_opts_init(loader_opts *o);
/* Handles option `c` (from getopt_long) if it is a loader option: returns 0
 * when handled, 1 when it is not a loader option, 2 after printing an error. */
int loader_opts_handle(loader_opts *o, int c, const char *arg, const char *cmd);
/* Creates the loader over the inputs (AnnData store, collection root, or
 * STORE:NODE) with the obs / class settings; prints the error and returns 1
 * on failure. */
int loader_opts_build(loader_opts *o, char *const *inputs, int n, const char *cmd, ab_loader **out);

/* Parses a non-negative integer option value; prints an error and returns 2
 * when it is not one. */
int parse_count(const char *cmd, const char *opt, const char *s, uint64_t *out);

#endif
