/* collection_columns.c - the obs columns a collection writer run writes
 * (kinds, category unions, groupby keys) and the var columns it keeps, as
 * anndata's concat(merge="same") keeps them. */
#include "collection_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int col_index(conv *c, const char *name)
{
	for (size_t i = 0; i < c->n_cols; i++)
		if (strcmp(c->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int has_obs_column(input *in, const char *name)
{
	for (const char *const *p = ab_anndata_obs_columns(in->ad); p && *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

/* Chooses the obs columns and their output kind. */
int cw_plan_columns(conv *c)
{
	char **names = NULL;
	size_t n = 0;
	char **want = NULL;
	if (c->cfg->obs_columns) {
		n = c->cfg->n_obs_columns;
		want = calloc(n + 1, sizeof *want);
		if (!want)
			return cw_oom();
		for (size_t k = 0; k < n; k++)
			want[k] = (char *)c->cfg->obs_columns[k];
		names = want;
	} else {
		/* the columns of the first input present in all of them */
		const char *const *first = ab_anndata_obs_columns(c->in[0].ad);
		size_t k = 0;
		while (first && first[k])
			k++;
		want = calloc(k + 1, sizeof *want);
		if (!want)
			return cw_oom();
		for (size_t j = 0; j < k; j++) {
			int all = strcmp(first[j], "src_path") != 0;
			for (size_t i = 1; all && i < c->n_in; i++)
				all = has_obs_column(&c->in[i], first[j]);
			if (all)
				want[n++] = (char *)first[j];
		}
		names = want;
	}
	c->cols = calloc(n + 1, sizeof *c->cols);
	if (!c->cols) {
		free(want);
		return cw_oom();
	}
	for (size_t i = 0; i < c->n_in; i++) {
		c->in[i].obs = calloc(n + 1, sizeof(ab_column *));
		if (!c->in[i].obs) {
			free(want);
			return cw_oom();
		}
	}
	int ret = 0;
	for (size_t j = 0; j < n && !ret; j++) {
		ocol *oc = &c->cols[c->n_cols++];
		oc->name = strdup(names[j]);
		if (!oc->name) {
			ret = cw_oom();
			break;
		}
		if (strcmp(oc->name, "src_path") == 0) {
			ret = cw_fail(c, "obs column '%s' is written by convert itself", oc->name, NULL);
			break;
		}
		int all_num = 1, all_str = 1, all_cat = 1;
		for (size_t i = 0; i < c->n_in && !ret; i++) {
			input *in = &c->in[i];
			int rc = ab_anndata_obs_column(in->ad, oc->name, &in->obs[j]);
			if (rc) {
				ret = cw_fail_lib(c, rc, in->path);
				break;
			}
			ab_column_info ci;
			ab_column_get_info(in->obs[j], &ci);
			all_num &= (ci.kind == AB_COL_ARRAY || cw_is_nullable_num(&ci)) &&
				   ci.dtype != AB_DT_STRING && ci.dtype != AB_DT_COMPLEX64 &&
				   ci.dtype != AB_DT_COMPLEX128 && ci.dtype != AB_DT_FLOAT16;
			all_str &= ci.kind == AB_COL_STRING;
			all_cat &= ci.kind == AB_COL_CATEGORICAL;
			ab_dtype dt = cw_is_nullable_num(&ci) ? AB_DT_FLOAT64 : ci.dtype;
			if (i == 0)
				oc->dtype = dt;
			else if (oc->dtype != dt)
				oc->dtype = AB_DT_FLOAT64;
			if (ci.kind == AB_COL_CATEGORICAL && ci.ordered)
				oc->ordered = 1;
		}
		if (ret)
			break;
		oc->kind = all_num ? OC_NUMERIC : all_str ? OC_STRING : OC_CATEGORICAL;
		if (!all_cat)
			oc->ordered = 0;
		if (oc->kind != OC_CATEGORICAL)
			continue;
		/* The categories are fixed before any dataset is written, so every
		 * dataset codes a label the same way. */
		for (size_t i = 0; i < c->n_in && !ret; i++) {
			input *in = &c->in[i];
			ab_column_info ci;
			ab_column_get_info(in->obs[j], &ci);
			char **s;
			size_t ns;
			int rc = ci.kind == AB_COL_CATEGORICAL
				? ab_column_categories(in->obs[j], &s, &ns)
				: ab_column_read_strings(in->obs[j], 0, ci.length, &s, &ns);
			if (rc) {
				ret = cw_fail_lib(c, rc, in->path);
				break;
			}
			for (size_t k = 0; k < ns && !ret; k++)
				if (s[k] && ab_strtab_add(&oc->cats, s[k]) < 0)
					ret = cw_oom();
			ab_strings_free_n(s, ns);
		}
	}
	free(want);
	for (size_t j = 0; !ret && j < c->n_cols; j++)
		if (c->cols[j].kind == OC_CATEGORICAL && !c->cols[j].ordered && ab_strtab_sort(&c->cols[j].cats))
			ret = cw_oom();
	if (ret)
		return ret;
	for (size_t i = 0; i < c->n_in; i++) {
		int rc = ab_anndata_obs_column(c->in[i].ad, "_index", &c->in[i].names);
		if (rc)
			return cw_fail_lib(c, rc, c->in[i].path);
	}
	if (c->cfg->groupby && c->cfg->n_groupby) {
		size_t ng = c->cfg->n_groupby;
		const char *const *g = c->cfg->groupby;
		c->groupby = calloc(ng + 1, sizeof *c->groupby);
		if (!c->groupby)
			return cw_oom();
		for (size_t k = 0; k < ng; k++) {
			int idx = col_index(c, g[k]);
			if (idx < 0 && strcmp(g[k], "src_path") != 0) {
				return cw_fail(c, "groupby column %s: not among the obs columns written", g[k], NULL);
			}
			c->groupby[c->n_groupby++] = idx; /* -1 = src_path */
		}
	}
	return 0;
}

/* The obs names of a collection's datasets, in dataset order, appended to
 * *all (grown as needed). */
static int has_var_column(input *in, const char *name)
{
	for (const char *const *p = ab_anndata_var_columns(in->ad); p && *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

void cw_vcol_free(conv *c, vcol *v)
{
	free(v->name);
	free(v->num);
	free(v->set);
	free(v->codes);
	if (v->str)
		ab_strings_free_n(v->str, c->n_vars);
	if (v->cats)
		ab_strings_free_n(v->cats, v->n_cats);
	memset(v, 0, sizeof *v);
}

static int same_labels(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : "") != 0)
			return 0;
	return 1;
}

static int is_plain_num(const ab_column_info *ci)
{
	return ci->kind == AB_COL_ARRAY && ci->dtype != AB_DT_STRING && ci->dtype != AB_DT_COMPLEX64 &&
	       ci->dtype != AB_DT_COMPLEX128 && ci->dtype != AB_DT_FLOAT16;
}

/* A categorical var column's codes from its labels. -1: out of memory. */
static int vcol_codes(conv *c, vcol *v)
{
	ab_strtab t;
	memset(&t, 0, sizeof t);
	v->codes = malloc((c->n_vars ? c->n_vars : 1) * sizeof *v->codes);
	for (size_t q = 0; v->codes && q < v->n_cats; q++)
		if (ab_strtab_add(&t, v->cats[q] ? v->cats[q] : "") < 0) {
			free(v->codes);
			v->codes = NULL;
		}
	for (uint64_t k = 0; v->codes && k < c->n_vars; k++)
		v->codes[k] = v->str[k] ? (int32_t)ab_strtab_find(&t, v->str[k]) : -1;
	ab_strtab_free(&t);
	return v->codes ? 0 : -1;
}

/* Adding to a collection: the new datasets carry the var columns of its
 * first dataset, as they are. */
int cw_collection_var_columns(conv *c, ab_anndata *ad)
{
	const char *const *names = ab_anndata_var_columns(ad);
	size_t k = 0;
	while (names && names[k])
		k++;
	c->n_vars = c->vars.n;
	c->vcols = calloc(k + 1, sizeof *c->vcols);
	if (!c->vcols)
		return cw_oom();
	for (size_t j = 0; j < k; j++) {
		ab_column *col;
		ab_column_info ci;
		int rc = ab_anndata_var_column(ad, names[j], &col);
		if (rc)
			return cw_fail_lib(c, rc, c->out);
		ab_column_get_info(col, &ci);
		vcol *v = &c->vcols[c->n_vcols];
		uint64_t n = c->n_vars;
		size_t ns = 0, isz = ab_dtype_size(ci.dtype);
		v->dtype = ci.dtype;
		if (is_plain_num(&ci)) {
			v->kind = OC_NUMERIC;
			v->num = malloc((n ? n : 1) * isz);
			rc = v->num ? ab_column_read(col, 0, n, v->num, n * isz, NULL) : AB_ENOMEM;
		} else if (ci.kind == AB_COL_STRING || ci.kind == AB_COL_CATEGORICAL) {
			v->kind = ci.kind == AB_COL_STRING ? OC_STRING : OC_CATEGORICAL;
			v->ordered = ci.ordered;
			rc = ab_column_read_strings(col, 0, n, &v->str, &ns);
			if (!rc && ns != n)
				rc = AB_ECORRUPT;
			if (!rc && v->kind == OC_CATEGORICAL)
				rc = ab_column_categories(col, &v->cats, &v->n_cats);
			if (!rc && v->kind == OC_CATEGORICAL && vcol_codes(c, v))
				rc = AB_ENOMEM;
		} else {
			cw_note(c, "%s: var column '%s' (%s) is not written "
				"with the new datasets", c->out, names[j], ab_dtype_name(ci.dtype));
			ab_column_close(col);
			continue;
		}
		ab_column_close(col);
		if (!rc && !(v->name = strdup(names[j])))
			rc = AB_ENOMEM;
		if (rc) {
			if (v->str && ns != n) {
				ab_strings_free_n(v->str, ns);
				v->str = NULL;
			}
			cw_vcol_free(c, v);
			return rc == AB_ENOMEM ? cw_oom() : cw_fail_lib(c, rc, c->out);
		}
		c->n_vcols++;
	}
	return 0;
}

/* Var column `name` of every input, placed in the output var space: 1 when
 * the inputs agree on every var they share (kept), 0 when not (*why says
 * how), -1 after an error was printed (*err: the exit status). As anndata's
 * merge="same" compares whole columns, the kind must agree too: numeric of
 * one dtype, strings, or categorical with the same categories. */
static int merge_var_column(conv *c, const char *name, vcol *v, const char **why, int *err)
{
	int all_num = 1, all_cat = 1, all_str = 1;
	ab_dtype dt0 = AB_DT_BOOL;
	ab_column_info ci;
	ab_column *col = NULL;
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		int rc = ab_anndata_var_column(in->ad, name, &col);
		if (rc) {
			*err = cw_fail_lib(c, rc, in->path);
			return -1;
		}
		ab_column_get_info(col, &ci);
		if (i == 0)
			dt0 = ci.dtype;
		all_num &= is_plain_num(&ci) && ci.dtype == dt0;
		all_str &= ci.kind == AB_COL_STRING;
		v->dtype = ci.dtype;
		if (ci.kind == AB_COL_CATEGORICAL && all_cat) {
			char **s;
			size_t ns;
			if ((rc = ab_column_categories(col, &s, &ns))) {
				ab_column_close(col);
				*err = cw_fail_lib(c, rc, in->path);
				return -1;
			}
			if (i == 0) {
				v->cats = s;
				v->n_cats = ns;
				v->ordered = ci.ordered;
			} else {
				all_cat = same_labels(v->cats, v->n_cats, s, ns) && v->ordered == ci.ordered;
				ab_strings_free_n(s, ns);
			}
		} else {
			all_cat = 0;
		}
		ab_column_close(col);
	}
	if (!all_num && !all_str && !all_cat) {
		*why = "kinds";
		return 0;
	}
	v->kind = all_num ? OC_NUMERIC : all_cat ? OC_CATEGORICAL : OC_STRING;
	size_t osz = all_num ? ab_dtype_size(v->dtype) : sizeof(char *);
	uint64_t nv = c->n_vars ? c->n_vars : 1;
	v->set = calloc(nv, 1);
	if (all_num)
		v->num = calloc(nv, osz);
	else
		v->str = calloc(nv, sizeof *v->str);
	if (!v->set || (!v->num && !v->str)) {
		*err = cw_oom();
		return -1;
	}
	int same = 1;
	void *buf = NULL;
	for (size_t i = 0; i < c->n_in && same; i++) {
		input *in = &c->in[i];
		uint64_t n = in->info.n_vars;
		int rc = ab_anndata_var_column(in->ad, name, &col);
		if (!rc && all_num) {
			ab_column_get_info(col, &ci);
			size_t isz = ab_dtype_size(ci.dtype);
			free(buf);
			buf = malloc((n ? n : 1) * isz);
			rc = buf ? ab_column_read(col, 0, n, buf, n * isz, NULL) : AB_ENOMEM;
			for (uint64_t j = 0; !rc && j < n && same; j++) {
				int64_t k = in->colmap[j];
				if (k < 0)
					continue;
				if (!v->set[k]) {
					copy_item(v->dtype, v->num, (size_t)k, ci.dtype, buf, j, osz);
					v->set[k] = 1;
					continue;
				}
				double a = ab_value_as_double(v->dtype, v->num, (size_t)k), b = ab_value_as_double(ci.dtype, buf, j);
				same = a == b || (a != a && b != b);
			}
		} else if (!rc) {
			char **s = NULL;
			size_t ns = 0;
			rc = ab_column_read_strings(col, 0, n, &s, &ns);
			for (size_t j = 0; !rc && j < ns && same; j++) {
				int64_t k = in->colmap[j];
				if (k < 0)
					continue;
				if (!v->set[k]) {
					v->str[k] = s[j];
					s[j] = NULL;
					v->set[k] = 1;
					continue;
				}
				same = (!v->str[k] && !s[j]) ||
				       (v->str[k] && s[j] && strcmp(v->str[k], s[j]) == 0);
			}
			if (s)
				ab_strings_free_n(s, ns);
		}
		ab_column_close(col);
		if (rc) {
			free(buf);
			*err = rc == AB_ENOMEM ? cw_oom() : cw_fail_lib(c, rc, in->path);
			return -1;
		}
	}
	free(buf);
	if (!same) {
		*why = "values";
		return 0;
	}
	if (v->kind == OC_CATEGORICAL && vcol_codes(c, v)) {
		*err = cw_oom();
		return -1;
	}
	return 1;
}

/* The var columns written with every dataset: those of the first input that
 * every input has and agrees on for the vars they share, as anndata's concat
 * keeps them with merge="same" (the others are named in a note). */
int cw_plan_var_columns(conv *c)
{
	const char *const *first = ab_anndata_var_columns(c->in[0].ad);
	size_t k = 0;
	while (first && first[k])
		k++;
	c->vcols = calloc(k + 1, sizeof *c->vcols);
	if (!c->vcols)
		return cw_oom();
	char list[600];
	size_t used = 0;
	uint64_t ndrop = 0;
	list[0] = '\0';
	for (size_t j = 0; j < k; j++) {
		int all = 1;
		for (size_t i = 1; all && i < c->n_in; i++)
			all = has_var_column(&c->in[i], first[j]);
		vcol *v = &c->vcols[c->n_vcols];
		const char *why = "not in every input";
		int err = 0, r = all ? merge_var_column(c, first[j], v, &why, &err) : 0;
		if (r < 0) {
			cw_vcol_free(c, v);
			return err;
		}
		if (r && !(v->name = strdup(first[j]))) {
			cw_vcol_free(c, v);
			return cw_oom();
		}
		if (r) {
			c->n_vcols++;
			continue;
		}
		cw_vcol_free(c, v);
		if (ndrop++ < 10 && used < sizeof list)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s' (%s)",
						 used ? ", " : "", first[j],
						 strcmp(why, "values") == 0 ? "values differ"
						 : strcmp(why, "kinds") == 0 ? "dtypes or categories differ" : why);
	}
	if (ndrop)
		cw_note(c, "%" PRIu64 " var columns not written, as anndata's "
			"concat merge=\"same\" drops them: %s%s", ndrop, list, ndrop > 10 ? ", ..." : "");
	return 0;
}

/* ------------------------------------------------------------------------- */
