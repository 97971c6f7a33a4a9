/* collection_inputs.c - the collection writer's inputs: opening them, the
 * output var space (outer join, subset, names made unique, the collection's
 * when adding) and the obs names made unique over all rows. */
#include "collection_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>


/* anndata's make_index_unique (var_names_make_unique, obs_names_make_unique):
 * the first occurrence of a name keeps it; each later one becomes name-1,
 * name-2, ... counting per name, and a candidate that is already a name (an
 * original one or one given out before) is skipped for the next number.
 * names[i] may be replaced (the old string freed). *renamed counts the names
 * changed; dup_out, when not NULL, gets the duplicated names' table (each
 * name once, in order of its first repeat) for error messages, and idx_out,
 * when not NULL, the ascending indices of the changed names (malloc'd; NULL
 * when none). -1 when out of memory. */
int cw_make_unique(char **names, uint64_t n, int rename, uint64_t *renamed, ab_strtab *dup_out,
		       uint64_t **idx_out)
{
	ab_strtab all;
	memset(&all, 0, sizeof all);
	uint64_t *dups = NULL, ndup = 0, cap = 0;
	uint64_t *count = NULL;
	int ret = -1;
	*renamed = 0;
	for (uint64_t i = 0; i < n; i++) {
		const char *nm = names[i] ? names[i] : "";
		uint64_t before = all.n;
		if (ab_strtab_add(&all, nm) < 0)
			goto out;
		if (all.n == before) {
			if (cw_grow((void **)&dups, &cap, ndup + 1, sizeof *dups))
				goto out;
			dups[ndup++] = i;
			if (dup_out && ab_strtab_add(dup_out, nm) < 0)
				goto out;
		}
	}
	if (rename && ndup) {
		uint64_t n_orig = all.n;
		count = calloc(n_orig, sizeof *count);
		if (!count)
			goto out;
		for (uint64_t d = 0; d < ndup; d++) {
			uint64_t i = dups[d];
			const char *nm = names[i] ? names[i] : "";
			int64_t k = ab_strtab_find(&all, nm);
			size_t l = strlen(nm);
			char *cand = malloc(l + 24);
			if (!cand)
				goto out;
			do
				snprintf(cand, l + 24, "%s-%" PRIu64, nm, ++count[k]);
			while (ab_strtab_find(&all, cand) >= 0);
			if (ab_strtab_add(&all, cand) < 0) {
				free(cand);
				goto out;
			}
			free(names[i]);
			names[i] = cand;
		}
	}
	*renamed = ndup;
	if (idx_out) {
		*idx_out = dups;
		dups = NULL;
	}
	ret = 0;
out:
	free(dups);
	free(count);
	ab_strtab_free(&all);
	return ret;
}

/* "a, b, c" from the first `max` names of t, with ", ..." when there are more. */
void cw_name_list(const ab_strtab *t, size_t max, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (uint64_t i = 0; i < t->n && i < max && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "", t->names[i]);
	if (t->n > max && used < len)
		snprintf(buf + used, len - used, ", ...");
}

/* ------------------------------------------------------------------------- */
int cw_is_nullable_num(const ab_column_info *ci)
{
	return ci->kind == AB_COL_NULLABLE_INTEGER || ci->kind == AB_COL_NULLABLE_BOOLEAN;
}

static int read_var_names(input *in, char ***names, size_t *n)
{
	ab_column *col = NULL;
	int rc = ab_anndata_var_column(in->ad, "_index", &col);
	if (rc)
		return rc;
	rc = ab_column_read_strings(col, 0, in->info.n_vars, names, n);
	ab_column_close(col);
	return rc;
}

int cw_load_var_subset(conv *c)
{
	FILE *f = fopen(c->var_subset, "r");
	if (!f)
		return cw_fail(c, "var subset %s: %s", c->var_subset, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ret = 0, bom = 0;
	uint64_t stripped = 0, lineno = 0, dups = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *nm = line;
		if (lineno++ == 0 && len >= 3 && memcmp(nm, "\xEF\xBB\xBF", 3) == 0) {
			/* a UTF-8 byte order mark is not part of the first name */
			nm += 3;
			len -= 3;
			bom = 1;
		}
		if ((size_t)len != strlen(nm)) {
			ret = cw_fail(c, "var subset %s: line with a NUL byte", c->var_subset, NULL);
			break;
		}
		while (len && (nm[len - 1] == '\n' || nm[len - 1] == '\r'))
			nm[--len] = '\0';
		size_t l0 = (size_t)len;
		while (len && (nm[len - 1] == ' ' || nm[len - 1] == '\t' || nm[len - 1] == '\r'))
			nm[--len] = '\0';
		while (len && (*nm == ' ' || *nm == '\t')) {
			nm++;
			len--;
		}
		if (!len)
			continue;
		stripped += (size_t)len != l0;
		uint64_t before = c->vars.n;
		if (ab_strtab_add(&c->vars, nm) < 0) {
			ret = cw_oom();
			break;
		}
		dups += c->vars.n == before;
	}
	free(line);
	fclose(f);
	if (!ret && bom)
		cw_note(c, "var subset %s: UTF-8 byte order mark dropped",
			c->var_subset);
	if (!ret && stripped)
		cw_note(c, "var subset %s: spaces around %" PRIu64
			" names dropped", c->var_subset, stripped);
	if (!ret && dups)
		cw_note(c, "var subset %s: %" PRIu64
			" repeated names kept once", c->var_subset, dups);
	if (!ret && !c->vars.n)
		ret = cw_fail(c, "var subset %s: no names in the file", c->var_subset, NULL);
	return ret;
}

/* numpy's result_type of two numeric X dtypes, which anndata's concat gives
 * X (ab_dtype_promote); the inputs' dtypes are numeric, checked on open. */
static ab_dtype promote(ab_dtype a, ab_dtype b)
{
	ab_dtype out = AB_DT_FLOAT64;
	ab_dtype_promote(a, b, &out);
	return out;
}

/* Duplicate var names would give CSR rows repeated column indices (a dense
 * read sums them into a value no gene has): refused, as anndata's concat
 * refuses them, or with --make-var-unique renamed as var_names_make_unique
 * renames them. */
static int unique_var_names(conv *c, const input *in, char **names, size_t nn)
{
	ab_strtab dup;
	memset(&dup, 0, sizeof dup);
	uint64_t renamed;
	if (cw_make_unique(names, nn, c->make_var_unique, &renamed, &dup, NULL)) {
		ab_strtab_free(&dup);
		return cw_oom();
	}
	if (renamed && !c->make_var_unique) {
		char list[600], msg[1200];
		cw_name_list(&dup, 10, list, sizeof list);
		snprintf(msg, sizeof msg, "%s: %" PRIu64 " duplicate var names (repeats of %" PRIu64
			 " names: %s); anndata's concat refuses them; make_var_unique (--make-var-unique) renames the "
			 "repeats NAME-1, NAME-2, ... as var_names_make_unique does", in->path, renamed,
			 dup.n, list);
		ab_strtab_free(&dup);
		return cw_fail(c, "%s", msg, NULL);
	}
	ab_strtab_free(&dup);
	if (renamed)
		cw_note(c, "%s: %" PRIu64 " duplicate var names made unique "
			"(NAME-1, NAME-2, ... as var_names_make_unique)", in->path, renamed);
	return 0;
}

static int open_inputs_found(conv *c, const char *const *paths, size_t n, int fixed_vars, uint8_t *found);

/* Opens the inputs, builds the var space and the column maps. */
int cw_open_inputs(conv *c, const char *const *paths, size_t n, int fixed_vars)
{
	/* --var-subset: which of its names some input has */
	uint8_t *found = fixed_vars && !c->adding ? calloc(c->vars.n + 1, 1) : NULL;
	if (fixed_vars && !c->adding && !found)
		return cw_oom();
	int ret = open_inputs_found(c, paths, n, fixed_vars, found);
	if (!ret && found) {
		ab_strtab miss;
		memset(&miss, 0, sizeof miss);
		for (uint64_t k = 0; k < c->vars.n && !ret; k++)
			if (!found[k] && ab_strtab_add(&miss, c->vars.names[k]) < 0)
				ret = cw_oom();
		if (!ret && miss.n) {
			char list[600], msg[1000];
			cw_name_list(&miss, 10, list, sizeof list);
			snprintf(msg, sizeof msg, "var subset %s: %" PRIu64 " of its %" PRIu64
				 " names are in no input: %s", c->var_subset, miss.n, c->vars.n, list);
			ret = cw_fail(c, "%s", msg, NULL);
		}
		ab_strtab_free(&miss);
	}
	free(found);
	return ret;
}

static int open_inputs_found(conv *c, const char *const *paths, size_t n, int fixed_vars, uint8_t *found)
{
	c->in = calloc(n, sizeof *c->in);
	if (!c->in)
		return cw_oom();
	c->n_in = n;
	int have_dense = 0;
	for (size_t i = 0; i < n; i++) {
		input *in = &c->in[i];
		in->path = paths[i];
		int rc;
		if ((rc = ab_anndata_open_path(paths[i], &in->ad)))
			return cw_fail_lib(c, rc, paths[i]);
		ab_anndata_get_info(in->ad, &in->info);
		if (in->info.x_kind == AB_X_CSC)
			return cw_fail(c, "%s: X is a csc_matrix; only csr_matrix and dense X are supported",
				    paths[i], NULL);
		if (in->info.x_dtype == AB_DT_STRING || in->info.x_dtype == AB_DT_COMPLEX64 ||
		    in->info.x_dtype == AB_DT_COMPLEX128 || in->info.x_dtype == AB_DT_FLOAT16)
			return cw_fail(c, "%s: X dtype %s is not supported", paths[i],
				    ab_dtype_name(in->info.x_dtype));
		if (in->info.x_kind == AB_X_CSR)
			c->sparse = 1;
		else
			have_dense = 1;
		ab_dtype dt = in->info.x_dtype;
		if (c->adding) {
			/* the collection's X dtype stays; where it cannot hold every
			 * value of the input's dtype, each value is checked as it is
			 * read: never truncated */
			in->check_cast = promote(c->x_dtype, dt) != c->x_dtype;
			if (!in->check_cast && dt != c->x_dtype)
				cw_note(c, "%s: X %s written as the "
					"collection's %s", paths[i], ab_dtype_name(dt),
					ab_dtype_name(c->x_dtype));
		} else if (i == 0) {
			c->x_dtype = dt;
		} else {
			c->x_dtype = promote(c->x_dtype, dt);
		}
		in->row0 = c->total_rows;
		c->total_rows += in->info.n_obs;

		char **names;
		size_t nn;
		if ((rc = read_var_names(in, &names, &nn)))
			return cw_fail_lib(c, rc, in->path);
		in->colmap = malloc((nn ? nn : 1) * sizeof *in->colmap);
		if (!in->colmap) {
			ab_strings_free_n(names, nn);
			return cw_oom();
		}
		if ((rc = unique_var_names(c, in, names, nn))) {
			ab_strings_free_n(names, nn);
			return rc;
		}
		in->monotonic = 1;
		int64_t last = -1;
		ab_strtab gone;
		memset(&gone, 0, sizeof gone);
		for (size_t j = 0; j < nn; j++) {
			const char *nm = names[j] ? names[j] : "";
			int64_t k = fixed_vars ? ab_strtab_find(&c->vars, nm) : ab_strtab_add(&c->vars, nm);
			in->colmap[j] = k;
			if (k >= 0) {
				if (k < last)
					in->monotonic = 0;
				last = k;
				if (found)
					found[k] = 1;
			} else if (fixed_vars) {
				in->vars_dropped++;
				if (gone.n < 11)
					ab_strtab_add(&gone, nm);
			}
		}
		ab_strings_free_n(names, nn);
		if (c->adding && in->vars_dropped && !c->drop_new_genes) {
			/* adding subsets to the collection's var space: say so */
			char list[600], msg[1200];
			cw_name_list(&gone, 10, list, sizeof list);
			snprintf(msg, sizeof msg, "%s: %" PRIu64 " of its %zu var names are not in the "
				 "collection %s (%s); their values would be lost; drop_new_genes (--drop-new-genes) drops "
				 "them", paths[i], in->vars_dropped, nn, c->out, list);
			ab_strtab_free(&gone);
			return cw_fail(c, "%s", msg, NULL);
		}
		ab_strtab_free(&gone);
	}
	(void)have_dense;
	for (size_t i = 1; i < n && !c->adding; i++)
		if (c->in[i].info.x_dtype != c->in[0].info.x_dtype) {
			cw_note(c, "X dtypes differ (%s in %s, %s in %s): "
				"X is written as %s (numpy's result_type, as anndata's concat)",
				ab_dtype_name(c->in[0].info.x_dtype), c->in[0].path,
				ab_dtype_name(c->in[i].info.x_dtype), c->in[i].path, ab_dtype_name(c->x_dtype));
			break;
		}
	c->n_vars = c->vars.n;
	if (c->n_vars > INT32_MAX)
		return cw_fail(c, "%s", "more than 2^31 var names", NULL);
	/* an input in the output's var space as it is: its rows need no
	 * mapping (dense rows are then read where they are staged) */
	for (size_t i = 0; i < n; i++) {
		input *in = &c->in[i];
		in->identity = in->info.n_vars == c->n_vars;
		for (uint64_t j = 0; in->identity && j < in->info.n_vars; j++)
			in->identity = in->colmap[j] == (int64_t)j;
	}
	return 0;
}

static int collection_obs_names(conv *c, ab_store *old, char ***all, uint64_t *got)
{
	char **ds = NULL;
	size_t nds = 0;
	int rc = ab_collection_datasets(old, "", &ds, &nds);
	for (size_t i = 0; !rc && i < nds; i++) {
		ab_anndata *ad;
		ab_anndata_info ai;
		ab_column *col = NULL;
		char **s = NULL;
		size_t ns = 0;
		if ((rc = ab_anndata_open(old, ds[i], &ad)))
			break;
		ab_anndata_get_info(ad, &ai);
		rc = ab_anndata_obs_column(ad, "_index", &col);
		if (!rc)
			rc = ab_column_read_strings(col, 0, ai.n_obs, &s, &ns);
		if (col)
			ab_column_close(col);
		ab_anndata_close(ad);
		char **grown = rc ? NULL : realloc(*all, (*got + ns + 1) * sizeof **all);
		if (!rc && !grown) {
			ab_strings_free_n(s, ns);
			ab_strings_free(ds);
			return cw_oom();
		}
		if (!rc) {
			*all = grown;
			memcpy(*all + *got, s, ns * sizeof *s);
			*got += ns;
			free(s);
		}
	}
	if (ds)
		ab_strings_free(ds);
	return rc ? cw_fail_lib(c, rc, c->out) : 0;
}

/* Duplicate obs names (over all inputs, in input order, after the rows of
 * the collection being added to) are made unique as obs_names_make_unique
 * does on the concatenation; the inputs' names, so made, are kept in
 * c->obs_all for the rows as they are read. */
int cw_plan_obs_names(conv *c, ab_store *old)
{
	char **all = NULL;
	uint64_t got = 0;
	int ret = old ? collection_obs_names(c, old, &all, &got) : 0;
	uint64_t skip = got;  /* the collection's rows: written, not renamed */
	if (!ret) {
		char **grown = realloc(all, (got + c->total_rows + 1) * sizeof *all);
		if (grown)
			all = grown;
		else
			ret = cw_oom();
	}
	for (size_t i = 0; i < c->n_in && !ret; i++) {
		input *in = &c->in[i];
		char **s;
		size_t ns;
		int rc = ab_column_read_strings(in->names, 0, in->info.n_obs, &s, &ns);
		if (rc) {
			ret = cw_fail_lib(c, rc, in->path);
			break;
		}
		memcpy(all + got, s, ns * sizeof *s);
		free(s);
		got += ns;
	}
	uint64_t renamed = 0, *idx = NULL, mine = 0;
	if (!ret && cw_make_unique(all, got, 1, &renamed, NULL, &idx))
		ret = cw_oom();
	for (uint64_t q = 0; !ret && q < renamed; q++)
		mine += idx[q] >= skip;
	if (!ret && mine)
		cw_note(c, "%" PRIu64 " duplicate obs names made unique "
			"(NAME-1, NAME-2, ... as obs_names_make_unique%s)", mine,
			skip ? ", after the collection's rows" : "");
	if (!ret) {
		/* the collection's own names were only needed for uniqueness */
		for (uint64_t q = 0; q < skip; q++) {
			free(all[q]);
			all[q] = NULL;
		}
		c->obs_all = all;
		c->obs_skip = skip;
		c->obs_got = got;
	} else if (all) {
		ab_strings_free_n(all, got);
	}
	free(idx);
	return ret;
}

