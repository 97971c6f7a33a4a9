/*
 * strtab.h - a table of distinct strings numbered 0, 1, ... in the order they
 * are first added, with lookup by an FNV-1a hash and linear probing
 * (internal). Var names, category labels and obs label tables all need
 * exactly this: a stable index per distinct string.
 */
#ifndef AB_FORMATS_STRTAB_H
#define AB_FORMATS_STRTAB_H

#include <stdint.h>

typedef struct ab_strtab {
	char **names;     /* by index, owned                              */
	uint64_t n, cap;
	uint64_t *slots;  /* index + 1, 0 = empty; a power of two of them */
	uint64_t nslots;
} ab_strtab;

/* A zeroed ab_strtab is an empty table. */
void ab_strtab_free(ab_strtab *t);
/* Index of s, or -1. */
int64_t ab_strtab_find(const ab_strtab *t, const char *s);
/* Index of s, added at the end if new; -1 when out of memory. */
int64_t ab_strtab_add(ab_strtab *t, const char *s);
/* Sorts the names (strcmp order, as pandas sorts the union of unordered
 * categories) and renumbers them; -1 when out of memory (t unchanged). */
int ab_strtab_sort(ab_strtab *t);

#endif
