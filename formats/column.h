/*
 * column.h - AnnData dataframe columns (internal side). column.c implements
 * ab_column_* of annbatch.h; this is what it shares with anndata.c, which
 * names a column's kind without opening it.
 */
#ifndef AB_FORMATS_COLUMN_H
#define AB_FORMATS_COLUMN_H

#include "annbatch.h"

/* The kind of a column stored as a group with this "encoding-type"
 * (categorical, nullable-integer, nullable-boolean, nullable-string-array).
 * Returns 0 and sets *kind, or -1 (nothing set, no message) for any other
 * encoding or NULL. A column stored as an array is AB_COL_ARRAY or
 * AB_COL_STRING by its dtype instead. */
int ab_column_encoding_kind(const char *encoding, ab_column_kind *kind);

struct h5ad_col;
/* An ab_column over a column of an .h5ad file (takes h5; closes it on
 * failure): every ab_column_* call then goes to the .h5ad reader. */
int ab_column_wrap_h5ad(struct h5ad_col *h5, ab_column **out);
/* The text of category item i of a numeric categories array (malloc'd into
 * *out): "true"/"false", the integer, or %.17g, as both readers show them. */
int ab_category_label(ab_dtype dt, const void *items, size_t i, char **out);
/* out[i] = a copy of labels[codes[i]] (NULL for a negative code); a code past
 * the labels is AB_ECORRUPT naming `what` and row row0 + i. */
int ab_codes_to_labels(const int64_t *codes, size_t n, char *const *labels, size_t nlabels, const char *what,
		       uint64_t row0, char **out);
/* A NULL-terminated copy of n strings (ab_strings_free_n frees it). */
int ab_strings_copy(char *const *src, size_t n, char ***out);

#endif
