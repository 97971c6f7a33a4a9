/*
 * obs.h - obs columns gathered over every dataset of a loader (internal).
 *
 * A named column is read whole, once, into memory in global row order: 8 bytes
 * a row for numbers (double, NaN where a nullable value is missing) or 4 bytes
 * a row for categories (int32 codes into one label table shared by all
 * datasets, -1 where missing). String columns become categories too. Only
 * named columns are loaded: reading every column of a large obs table is slow.
 */
#ifndef AB_ENGINE_OBS_H
#define AB_ENGINE_OBS_H

#include <stddef.h>
#include <stdint.h>

/* obs.c names the error header by its former name ("error.h", now
 * last_error.h, since the name clashed with glibc's <error.h>) and finds
 * ab_value_as_double, now in value.h, through anndata.h: until it includes
 * last_error.h and value.h itself, this header brings them in. */
#include "last_error.h"
#include "value.h"

struct ld_source;

typedef struct ld_obs_col {
	char *name;
	int categorical;
	double *values;      /* numeric: one per global row          */
	int32_t *codes;      /* categorical: one per global row      */
	char **labels;       /* categorical: label table             */
	size_t n_labels, cap_labels;
	uint32_t *hash;      /* open addressing: label index + 1     */
	size_t hash_cap;
} ld_obs_col;

/* Class weights given by label, resolved against a column's label table once
 * the column is loaded. */
typedef struct ld_label_weights {
	char **labels;
	double *weights;
	size_t n;            /* 0: none given                        */
	int has_rest;        /* classes not named get `rest`; without
	                      * it every class must be named         */
	double rest;
} ld_label_weights;

/* Copies the labelled weights into `lw` (after freeing what it held); refuses
 * a weight that is not finite and >= 0, and a label named twice. */
int ld_label_weights_set(ld_label_weights *lw, const char *const *labels, const double *weights, size_t n,
			 const double *rest);
void ld_label_weights_free(ld_label_weights *lw);
/* Fills *out with one weight per label of the categorical column `c`, in its
 * label-table order (malloc'd). AB_EINVAL naming them when a label is not a
 * class of the column, or when classes are not named and there is no rest. */
int ld_obs_weights_by_label(const ld_obs_col *c, const ld_label_weights *lw, double **out);

/* Loads column `name` from every dataset (in loader row order). */
int ld_obs_load(const struct ld_source *src, size_t nsrc, uint64_t nrows, const char *name, ld_obs_col *out);
void ld_obs_free(ld_obs_col *c);

#endif
