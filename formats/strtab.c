/* strtab.c - strings numbered in the order they are first added, found by
 * hash (see strtab.h). */
#include "strtab.h"

#include <stdlib.h>
#include <string.h>


static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

void ab_strtab_free(ab_strtab *t)
{
	for (uint64_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

int64_t ab_strtab_find(const ab_strtab *t, const char *s)
{
	if (!t->nslots)
		return -1;
	for (uint64_t i = str_hash(s) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
		uint64_t v = t->slots[i];
		if (!v)
			return -1;
		if (strcmp(t->names[v - 1], s) == 0)
			return (int64_t)(v - 1);
	}
}

int64_t ab_strtab_add(ab_strtab *t, const char *s)
{
	int64_t f = ab_strtab_find(t, s);
	if (f >= 0)
		return f;
	if ((t->n + 1) * 2 > t->nslots) {
		uint64_t ns = t->nslots ? t->nslots * 2 : 64;
		uint64_t *sl = calloc(ns, sizeof *sl);
		if (!sl)
			return -1;
		for (uint64_t k = 0; k < t->n; k++) {
			uint64_t i = str_hash(t->names[k]) & (ns - 1);
			while (sl[i])
				i = (i + 1) & (ns - 1);
			sl[i] = k + 1;
		}
		free(t->slots);
		t->slots = sl;
		t->nslots = ns;
	}
	if (t->n == t->cap) {
		uint64_t nc = t->cap ? t->cap * 2 : 64;
		char **nn = realloc(t->names, nc * sizeof *nn);
		if (!nn)
			return -1;
		t->names = nn;
		t->cap = nc;
	}
	char *c = strdup(s);
	if (!c)
		return -1;
	t->names[t->n] = c;
	uint64_t i = str_hash(s) & (t->nslots - 1);
	while (t->slots[i])
		i = (i + 1) & (t->nslots - 1);
	t->slots[i] = ++t->n;
	return (int64_t)(t->n - 1);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ab_strtab_sort(ab_strtab *t)
{
	ab_strtab s;
	memset(&s, 0, sizeof s);
	qsort(t->names, t->n, sizeof *t->names, cmp_str);
	for (uint64_t i = 0; i < t->n; i++)
		if (ab_strtab_add(&s, t->names[i]) < 0) {
			ab_strtab_free(&s);
			return -1;
		}
	ab_strtab_free(t);
	*t = s;
	return 0;
}

