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

#endif
