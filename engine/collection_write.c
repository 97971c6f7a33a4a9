/* collection_write.c - a dataset written as an AnnData group of the
 * collection: X (CSR or dense, sharded) read back from the scratch file in
 * the dataset's order, obs, var. */
#include "collection_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* writing a dataset                                                         */
/* ------------------------------------------------------------------------- */

/* X/indices appended on a second thread while the caller appends X/data,
 * a batch at a time: the two arrays share nothing, and encoding their
 * chunks is most of the work of writing. The bytes are the same: each
 * array still gets its rows in order. */
typedef struct idx_job {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, busy, quit, rc;
	ab_writer_array *xi;
	const dset *d;
	const uint64_t *perm;
	const uint8_t *rows;
	uint64_t i0, i1;
	size_t isz;
} idx_job;

static int append_indices(idx_job *j)
{
	int rc = 0;
	const uint8_t *rows = j->rows;
	for (uint64_t i = j->i0; i < j->i1 && !rc; i++) {
		uint64_t r = j->perm ? j->perm[i] : i;
		uint64_t m = (uint64_t)(j->d->indptr[r + 1] - j->d->indptr[r]);
		rc = ab_writer_array_append(j->xi, rows, m);
		rows += m * (4 + j->isz);
	}
	return rc;
}

static void *idx_thread(void *arg)
{
	idx_job *j = arg;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->busy && !j->quit)
			pthread_cond_wait(&j->cv, &j->mu);
		if (!j->busy)
			break;
		pthread_mutex_unlock(&j->mu);
		int rc = append_indices(j);
		pthread_mutex_lock(&j->mu);
		j->rc = rc;
		j->busy = 0;
		pthread_cond_broadcast(&j->cv);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* Starts the batch's indices (on the thread, or here without one). */
static void idx_submit(idx_job *j, const uint8_t *rows, uint64_t i0, uint64_t i1)
{
	j->rows = rows;
	j->i0 = i0;
	j->i1 = i1;
	if (!j->started) {
		j->rc = append_indices(j);
		return;
	}
	pthread_mutex_lock(&j->mu);
	j->busy = 1;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* Waits for the batch's indices; the array's failure, its message set on
 * this thread. */
static int idx_wait(idx_job *j)
{
	if (j->started) {
		pthread_mutex_lock(&j->mu);
		while (j->busy)
			pthread_cond_wait(&j->cv, &j->mu);
		pthread_mutex_unlock(&j->mu);
	}
	int rc = j->rc;
	j->rc = 0;
	/* The message was set on the other thread; a failed array repeats it
	 * on this one. */
	if (rc && ab_writer_array_append(j->xi, NULL, 0) == 0)
		ab_error_set(rc, "X/indices: %s", ab_strerror(rc));
	return rc;
}

static void idx_stop(idx_job *j)
{
	if (!j->started)
		return;
	pthread_mutex_lock(&j->mu);
	j->quit = 1;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->th, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	j->started = 0;
}

int cw_write_dataset(conv *c, ab_writer *w, dset *d, const uint64_t *perm, uint64_t k)
{
	char g[64], p[256];
	snprintf(g, sizeof g, "dataset_%" PRIu64, k);
	int rc = ab_writer_anndata_group(w, g);
	size_t isz = ab_dtype_size(c->x_dtype);
	const ab_anndata_write_config *o = &c->o;
	uint64_t n = d->n;
	if (rc)
		return cw_fail_lib(c, rc, c->out);
	if (c->sparse) {
		snprintf(p, sizeof p, "%s/X", g);
		if ((rc = ab_writer_csr_group(w, p, n, c->n_vars)))
			return cw_fail_lib(c, rc, c->out);
		/* chunks of data/indices: the non-zeros of n_obs_per_chunk rows on
		 * average, so a chunk costs about what a dense one would */
		uint64_t mean = n ? (d->nnz + n - 1) / n : 1;
		uint64_t per = o->n_obs_per_chunk * (mean ? mean : 1), shard;
		shard = ab_anndata_shard_rows(o, per, isz, (double)d->nnz / (double)(n ? n : 1));
		uint64_t shape[1] = { d->nnz };
		ab_writer_array *xv = NULL, *xi = NULL;
		snprintf(p, sizeof p, "%s/X/data", g);
		rc = ab_writer_anndata_array(w, p, c->x_dtype, 1, shape, per, shard, o, NULL, &xv);
		snprintf(p, sizeof p, "%s/X/indices", g);
		if (!rc)
			rc = ab_writer_anndata_array(w, p, AB_DT_INT32, 1, shape, per, shard, o, NULL, &xi);
		int64_t *indptr = malloc((n + 1) * sizeof *indptr);
		if (!rc && !indptr)
			rc = AB_ENOMEM;
		if (!rc)
			indptr[0] = 0;
		idx_job ij = { .xi = xi, .d = d, .perm = perm, .isz = isz };
		if (!rc && pthread_mutex_init(&ij.mu, NULL) == 0) {
			if (pthread_cond_init(&ij.cv, NULL) != 0) {
				pthread_mutex_destroy(&ij.mu);
			} else if (pthread_create(&ij.th, NULL, idx_thread, &ij) != 0) {
				pthread_cond_destroy(&ij.cv); /* no thread: the indices here */
				pthread_mutex_destroy(&ij.mu);
			} else {
				ij.started = 1;
			}
		}
		for (uint64_t i = 0, i1; !rc && !c->stop && i < n; i = i1) {
			const uint8_t *rows;
			if ((rc = cw_spill_read(c, d, perm, i, &i1, &rows)))
				break;
			idx_submit(&ij, rows, i, i1);
			for (; !rc && i < i1; i++) {
				uint64_t r = perm ? perm[i] : i;
				uint64_t m = (uint64_t)(d->indptr[r + 1] - d->indptr[r]);
				rc = ab_writer_array_append(xv, rows + m * 4, m);
				rows += m * (4 + isz);
				indptr[i + 1] = indptr[i] + (int64_t)m;
				if ((i & 63) == 63) {
					c->rows_done += 64;
					cw_progress(c, 0);
				}
			}
			int rci = idx_wait(&ij);
			rc = rc ? rc : rci;
		}
		idx_stop(&ij);
		c->rows_done += n & 63;
		int rc2 = xv ? ab_writer_array_close(xv) : 0;
		int rc3 = xi ? ab_writer_array_close(xi) : 0;
		rc = rc ? rc : rc2 ? rc2 : rc3;
		if (!rc && c->stop) {
			free(indptr);
			return 1; /* run() reports it */
		}
		snprintf(p, sizeof p, "%s/X/indptr", g);
		if (!rc)
			rc = ab_writer_numeric_column(w, p, AB_DT_INT64, indptr, n + 1, o, NULL);
		free(indptr);
		if (rc)
			return rc == AB_ENOMEM && !*ab_last_error() ? cw_oom()
								   : cw_fail_lib(c, rc, c->out);
	} else {
		uint64_t shape[2] = { n, c->n_vars }, shard;
		shard = ab_anndata_shard_rows(o, o->n_obs_per_chunk, c->n_vars * isz, 1);
		ab_writer_array *x;
		snprintf(p, sizeof p, "%s/X", g);
		rc = ab_writer_anndata_array(w, p, c->x_dtype, 2, shape, o->n_obs_per_chunk, shard, o,
			       "{\"encoding-type\":\"array\",\"encoding-version\":\"0.2.0\"}", &x);
		if (rc)
			return cw_fail_lib(c, rc, c->out);
		size_t rb = (size_t)(c->n_vars * isz);
		for (uint64_t i = 0, i1; !rc && !c->stop && i < n; i = i1) {
			const uint8_t *rows;
			if ((rc = cw_spill_read(c, d, perm, i, &i1, &rows)))
				break;
			for (; !rc && i < i1; i++) {
				rc = ab_writer_array_append(x, rows, 1);
				rows += rb;
				if ((i & 63) == 63) {
					c->rows_done += 64;
					cw_progress(c, 0);
				}
			}
		}
		c->rows_done += n & 63;
		int rc2 = ab_writer_array_close(x);
		if (rc || rc2)
			return cw_fail_lib(c, rc ? rc : rc2, c->out);
		if (c->stop)
			return 1; /* run() reports it */
	}

	/* obs: the selected columns, then src_path */
	/* column orders: obs, then var */
	const char **order = calloc((c->n_cols > c->n_vcols ? c->n_cols : c->n_vcols) + 2, sizeof *order);
	void *buf = malloc((n ? n : 1) * 8);
	int32_t *codes = malloc((n ? n : 1) * sizeof *codes);
	const char **sv = malloc((n ? n : 1) * sizeof *sv);
	if (!order || !buf || !codes || !sv) {
		free(order);
		free(buf);
		free(codes);
		free(sv);
		return cw_oom();
	}
	for (size_t j = 0; j < c->n_cols; j++)
		order[j] = c->cols[j].name;
	order[c->n_cols] = "src_path";
	snprintf(p, sizeof p, "%s/obs", g);
	rc = ab_writer_dataframe_group(w, p, order, c->n_cols + 1);
	for (uint64_t i = 0; i < n; i++)
		sv[i] = d->obs_names[perm ? perm[i] : i];
	snprintf(p, sizeof p, "%s/obs/_index", g);
	if (!rc)
		rc = ab_writer_string_column(w, p, sv, n, o);
	for (size_t j = 0; !rc && j < c->n_cols; j++) {
		ocol *oc = &c->cols[j];
		snprintf(p, sizeof p, "%s/obs/%s", g, oc->name);
		if (oc->kind == OC_NUMERIC) {
			size_t cs = ab_dtype_size(oc->dtype);
			for (uint64_t i = 0; i < n; i++)
				memcpy((uint8_t *)buf + i * cs, (uint8_t *)d->colnum[j] + (perm ? perm[i] : i) * cs, cs);
			rc = ab_writer_numeric_column(w, p, oc->dtype, buf, n, o, "array");
		} else if (oc->kind == OC_STRING) {
			for (uint64_t i = 0; i < n; i++)
				sv[i] = d->colstr[j][perm ? perm[i] : i];
			rc = ab_writer_string_column(w, p, sv, n, o);
		} else {
			for (uint64_t i = 0; i < n; i++)
				codes[i] = d->colcode[j][perm ? perm[i] : i];
			rc = ab_writer_categorical_column(w, p, codes, n, (const char *const *)oc->cats.names,
						   oc->cats.n, oc->ordered, o);
		}
	}
	if (!rc) {
		const char **paths = malloc(c->n_in * sizeof *paths);
		if (!paths) {
			rc = AB_ENOMEM;
		} else {
			for (size_t i = 0; i < c->n_in; i++)
				paths[i] = c->in[i].path;
			for (uint64_t i = 0; i < n; i++)
				codes[i] = d->src[perm ? perm[i] : i];
			snprintf(p, sizeof p, "%s/obs/src_path", g);
			rc = ab_writer_categorical_column(w, p, codes, n, paths, c->n_in, 0, o);
			free(paths);
		}
	}
	snprintf(p, sizeof p, "%s/var", g);
	for (size_t j = 0; j < c->n_vcols; j++)
		order[j] = c->vcols[j].name;
	if (!rc)
		rc = ab_writer_dataframe_group(w, p, c->n_vcols ? order : NULL, c->n_vcols);
	snprintf(p, sizeof p, "%s/var/_index", g);
	if (!rc)
		rc = ab_writer_string_column(w, p, (const char *const *)c->vars.names, c->n_vars, o);
	for (size_t j = 0; !rc && j < c->n_vcols; j++) {
		vcol *v = &c->vcols[j];
		snprintf(p, sizeof p, "%s/var/%s", g, v->name);
		if (v->kind == OC_NUMERIC)
			rc = ab_writer_numeric_column(w, p, v->dtype, v->num, c->n_vars, o, "array");
		else if (v->kind == OC_STRING)
			rc = ab_writer_string_column(w, p, (const char *const *)v->str, c->n_vars, o);
		else
			rc = ab_writer_categorical_column(w, p, v->codes, c->n_vars,
						   (const char *const *)v->cats, v->n_cats, v->ordered, o);
	}
	free(order);
	free(buf);
	free(codes);
	free(sv);
	if (rc)
		return rc == AB_ENOMEM && !*ab_last_error() ? cw_oom()
							   : cw_fail_lib(c, rc, c->out);
	return 0;
}

/* ------------------------------------------------------------------------- */
