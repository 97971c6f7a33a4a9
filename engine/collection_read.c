/* collection_read.c - one dataset of a collection writer run: its obs read
 * block by block in the planned order (X: collection_convert.c), and its
 * rows' ordering. */
#include "collection_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* reading a dataset                                                         */
/* ------------------------------------------------------------------------- */

void cw_dset_free(conv *c, dset *d)
{
	free(d->indptr);
	free(d->zoff);
	free(d->indices);
	free(d->data);
	for (size_t j = 0; j < c->n_cols; j++) {
		if (d->colnum)
			free(d->colnum[j]);
		if (d->colcode)
			free(d->colcode[j]);
		if (d->colstr && d->colstr[j])
			ab_strings_free_n(d->colstr[j], d->n);
	}
	free(d->colnum);
	free(d->colcode);
	free(d->colstr);
	free(d->src);
	if (d->obs_names)
		ab_strings_free_n(d->obs_names, d->n);
	memset(d, 0, sizeof *d);
}

int cw_grow(void **p, uint64_t *cap, uint64_t need, size_t isz)
{
	if (need <= *cap)
		return 0;
	uint64_t nc = *cap ? *cap : 1024;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, (size_t)(nc * isz));
	if (!np)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

/* A categorical input column's codes for rows [b->start, b->end), mapped
 * to the output column's (-1: missing) without making a label a row: the
 * labels of a block come from decoding its whole chunk of codes, cheap,
 * where a string column's would mean every string of the chunk. 0, an AB_E*
 * code, or 1 when a code lies outside the input's categories (the label
 * reader then says where). */
static int read_codes(conv *c, input *in, size_t j, const ab_column_info *ci, const block *b, int32_t *out,
		      void **scratch, uint64_t *scap)
{
	uint64_t nr = b->end - b->start, ncat = ci->n_categories;
	int rc;
	if (!in->catmap && !(in->catmap = calloc(c->n_cols, sizeof *in->catmap)))
		return cw_oom();
	if (!in->catmap[j]) {
		char **s;
		size_t ns;
		if ((rc = ab_column_categories(in->obs[j], &s, &ns)))
			return cw_fail_lib(c, rc, in->path);
		int32_t *m = ns == ncat ? malloc((ncat + 1) * sizeof *m) : NULL;
		for (size_t k = 0; m && k < ns; k++)
			m[k] = s[k] ? (int32_t)ab_strtab_find(&c->cols[j].cats, s[k]) : -1;
		ab_strings_free_n(s, ns);
		if (!m)
			return ns == ncat ? cw_oom() : 1;
		in->catmap[j] = m;
	}
	size_t isz = ab_dtype_size(ci->dtype);
	if (cw_grow(scratch, scap, nr * isz + nr + 16, 1))
		return cw_oom();
	uint8_t *mask = (uint8_t *)*scratch + nr * isz;
	if ((rc = ab_column_read(in->obs[j], b->start, b->end, *scratch, nr * isz, mask)))
		return cw_fail_lib(c, rc, in->path);
	for (uint64_t r = 0; r < nr; r++) {
		if (mask[r]) {
			out[r] = -1;
			continue;
		}
		int64_t v = ab_value_as_int64(ci->dtype, *scratch, r);
		if (v < 0 || (uint64_t)v >= ncat)
			return 1;
		out[r] = in->catmap[j][v];
	}
	return 0;
}

int cw_read_block_obs(conv *c, dset *d, const block *b, uint64_t row0, void **scratch,
			  uint64_t *scap)
{
	input *in = &c->in[b->in];
	uint64_t nr = b->end - b->start;
	int rc;
	for (uint64_t r = 0; r < nr; r++)
		d->src[row0 + r] = (int32_t)b->in;
	/* the names, made unique while planning, move to the dataset */
	char **names = c->obs_all + c->obs_skip + in->row0 + b->start;
	memcpy(d->obs_names + row0, names, nr * sizeof *names);
	memset(names, 0, nr * sizeof *names);
	char **s;
	size_t ns;
	for (size_t j = 0; j < c->n_cols; j++) {
		ocol *oc = &c->cols[j];
		ab_column **col = &in->obs[j];
		if (oc->kind == OC_NUMERIC) {
			ab_column_info ci;
			ab_column_get_info(*col, &ci);
			size_t isz = ab_dtype_size(ci.dtype);
			int nullable = cw_is_nullable_num(&ci);
			/* values, then (nullable) one mask byte per row */
			if (cw_grow(scratch, scap, nr * isz + nr + 16, 1))
				return cw_oom();
			uint8_t *mask = nullable ? (uint8_t *)*scratch + nr * isz : NULL;
			if ((rc = ab_column_read(*col, b->start, b->end, *scratch, nr * isz, mask)))
				return cw_fail_lib(c, rc, in->path);
			for (uint64_t r = 0; r < nr; r++) {
				if (mask && mask[r])
					ab_value_store_double(AB_DT_FLOAT64, d->colnum[j], row0 + r, (double)NAN);
				else
					copy_item(oc->dtype, d->colnum[j], row0 + r, ci.dtype, *scratch,
						  r, ab_dtype_size(oc->dtype));
			}
			continue;
		}
		if (oc->kind == OC_CATEGORICAL) {
			ab_column_info ci;
			ab_column_get_info(*col, &ci);
			if (ci.kind == AB_COL_CATEGORICAL) {
				rc = read_codes(c, in, j, &ci, b, d->colcode[j] + row0, scratch, scap);
				if (rc < 0)
					return rc;
				if (rc == 0)
					continue;
				/* a code outside the categories: the label reader names it */
			}
		}
		if ((rc = ab_column_read_strings(*col, b->start, b->end, &s, &ns)))
			return cw_fail_lib(c, rc, in->path);
		if (oc->kind == OC_STRING) {
			memcpy(d->colstr[j] + row0, s, ns * sizeof *s);
			free(s);
			continue;
		}
		for (size_t r = 0; r < ns; r++)
			d->colcode[j][row0 + r] = s[r] ? (int32_t)ab_strtab_find(&oc->cats, s[r]) : -1;
		ab_strings_free_n(s, ns);
	}
	return 0;
}

int cw_dset_alloc(conv *c, dset *d, uint64_t n)
{
	d->n = n;
	int bad = 0;
	if (c->sparse) {
		d->indptr = calloc(n + 1, sizeof *d->indptr);
		bad |= !d->indptr;
	}
	d->colnum = calloc(c->n_cols + 1, sizeof *d->colnum);
	d->colcode = calloc(c->n_cols + 1, sizeof *d->colcode);
	d->colstr = calloc(c->n_cols + 1, sizeof *d->colstr);
	d->src = malloc((n ? n : 1) * sizeof *d->src);
	d->obs_names = calloc(n ? n : 1, sizeof *d->obs_names);
	bad |= !d->colnum || !d->colcode || !d->colstr || !d->src || !d->obs_names;
	for (size_t j = 0; !bad && j < c->n_cols; j++) {
		ocol *oc = &c->cols[j];
		if (oc->kind == OC_NUMERIC)
			bad |= !(d->colnum[j] = malloc((n ? n : 1) * ab_dtype_size(oc->dtype)));
		else if (oc->kind == OC_CATEGORICAL)
			bad |= !(d->colcode[j] = malloc((n ? n : 1) * sizeof(int32_t)));
		else
			bad |= !(d->colstr[j] = calloc(n ? n : 1, sizeof(char *)));
	}
	return bad ? cw_oom() : 0;
}

/* ------------------------------------------------------------------------- */
/* ordering within a dataset                                                 */
/* ------------------------------------------------------------------------- */


static int row_cmp(const void *a, const void *b, void *arg)
{
	const sort_ctx *s = arg;
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	for (size_t k = 0; k < s->c->n_groupby; k++) {
		int j = s->c->groupby[k];
		int r = 0;
		if (j < 0) {
			r = (s->d->src[x] > s->d->src[y]) - (s->d->src[x] < s->d->src[y]);
		} else {
			ocol *oc = &s->c->cols[j];
			/* Missing values (NaN, which nullable int/bool columns hold
			 * where masked; categorical code -1; a null string) are one
			 * class after every value, as pandas' na_position="last".
			 * Comparing NaN with < alone would make it "equal" to
			 * everything: no strict weak order, and a merge that
			 * leaves values unsorted around it. */
			int mu, mv;
			if (oc->kind == OC_NUMERIC) {
				double u = ab_value_as_double(oc->dtype, s->d->colnum[j], x);
				double v = ab_value_as_double(oc->dtype, s->d->colnum[j], y);
				mu = isnan(u), mv = isnan(v);
				r = mu || mv ? mu - mv : (u > v) - (u < v);
			} else if (oc->kind == OC_CATEGORICAL) {
				int32_t u = s->d->colcode[j][x], v = s->d->colcode[j][y];
				mu = u < 0, mv = v < 0;
				r = mu || mv ? mu - mv : (u > v) - (u < v);
			} else {
				const char *u = s->d->colstr[j][x], *v = s->d->colstr[j][y];
				mu = !u, mv = !v;
				r = mu || mv ? mu - mv : strcmp(u, v);
			}
		}
		if (r)
			return r;
	}
	return 0;
}

/* A stable merge sort of the permutation (qsort is not stable, and the
 * shuffled order inside a group must survive the grouping). */
void cw_merge_sort(uint64_t *a, uint64_t *tmp, uint64_t n, sort_ctx *s)
{
	/* a stop asked meanwhile leaves the order unfinished: the run ends */
	if (n < 2 || s->c->stop)
		return;
	uint64_t h = n / 2;
	cw_merge_sort(a, tmp, h, s);
	cw_merge_sort(a + h, tmp, n - h, s);
	uint64_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = row_cmp(&a[j], &a[i], s) < 0 ? a[j++] : a[i++];
	while (i < h)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof *a);
	if (n >= 4096)
		cw_progress(s->c, 0); /* a long sort still answers a stop */
}

/* ------------------------------------------------------------------------- */
