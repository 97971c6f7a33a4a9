/* loader.c - the batch loader: sources, epochs, the event loop, decode workers,
 * assembly and hand-over. See loader_impl.h for the path a batch takes. */
#include "loader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "error.h"

#define MAX_READ_BYTES ((uint64_t)16 << 20) /* coalesced reads stop growing here */

/* ------------------------------------------------------------ config */

void ab_loader_config_init(ab_loader_config *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof *c);
	c->chunk_size = 512;
	c->preload_nchunks = 32;
	c->batch_size = 1;
	c->rank = -1;
	c->world_size = -1;
	c->io_mode = AB_IO_MODE_DIRECT; /* falls back to buffered where refused */
	c->backend = AB_BACKEND_AUTO;
	c->queue_depth = 64;
	c->threads = 0;
	c->max_windows = 3;
}

int ab_loader_create(const ab_loader_config *cfg, ab_loader **out)
{
	if (!out)
		return ab_error_set(AB_EINVAL, "ab_loader_create: null argument");
	*out = NULL;
	/* An enum field holds whatever int the caller stored: refuse what is
	 * not one of its values rather than run some other mode. */
	if (cfg && (cfg->io_mode < AB_IO_MODE_AUTO || cfg->io_mode > AB_IO_MODE_BUFFERED))
		return ab_error_set(AB_EINVAL, "ab_loader_create: io_mode %d is not an ab_io_mode (0..%d)",
				    (int)cfg->io_mode, (int)AB_IO_MODE_BUFFERED);
	if (cfg && (cfg->backend < AB_BACKEND_AUTO || cfg->backend > AB_BACKEND_PREAD))
		return ab_error_set(AB_EINVAL, "ab_loader_create: backend %d is not an ab_io_backend (0..%d)",
				    (int)cfg->backend, (int)AB_BACKEND_PREAD);
	/* -1 asks for the environment; any other negative value is a bug in
	 * the caller, not a request to read the environment. */
	if (cfg && (cfg->rank < -1 || cfg->world_size < -1))
		return ab_error_set(AB_EINVAL, "%s (%d) must be >= 0, or -1 for the environment",
				    cfg->rank < -1 ? "rank" : "world_size", cfg->rank < -1 ? cfg->rank : cfg->world_size);
	if (cfg && cfg->rank_shards != AB_RANK_SHARDS_FIXED && cfg->rank_shards != AB_RANK_SHARDS_ROTATE)
		return ab_error_set(AB_EINVAL, "rank_shards (%d) must be AB_RANK_SHARDS_FIXED or AB_RANK_SHARDS_ROTATE",
				    (int)cfg->rank_shards);
	ab_loader *ld = calloc(1, sizeof *ld);
	if (!ld)
		return ab_error_set(AB_ENOMEM, "out of memory");
	if (cfg)
		ld->cfg = *cfg;
	else
		ab_loader_config_init(&ld->cfg);
	if (ld->cfg.queue_depth == 0)
		ld->cfg.queue_depth = 64;
	if (ld->cfg.max_windows == 0)
		ld->cfg.max_windows = 3;
	if (ld->cfg.threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ld->cfg.threads = n > 0 ? (unsigned)n : 1;
	}
	if (ld->cfg.threads > 256)
		ld->cfg.threads = 256;
	pthread_mutex_init(&ld->mu, NULL);
	pthread_mutex_init(&ld->lay_mu, NULL);
	pthread_cond_init(&ld->cv, NULL);
	pthread_cond_init(&ld->task_cv, NULL);
	ab_hist_reset(&ld->read_lat);
	ab_hist_reset(&ld->wait_lat);
	ab_hist_reset(&ld->first_lat);
	*out = ld;
	return 0;
}

/* ------------------------------------------------------------ sources */

static int add_source(ab_loader *ld, ld_source *s)
{
	if (ld->running)
		return ab_error_set(AB_EINVAL, "cannot add data while an epoch runs");
	int sparse = s->kind == SRC_CSR || s->kind == SRC_MEM_CSR;
	if (ld->nsrc == 0) {
		ld->sparse = sparse;
		ld->out_dtype = s->dtype;
		if (sparse) {
			ld->n_cols = s->shape[1];
			if (ld->n_cols > INT32_MAX)
				return ab_error_set(AB_EUNSUPPORTED, "%s: %llu columns exceed the int32 indices of batches",
						    s->name, (unsigned long long)ld->n_cols);
		} else {
			ld->ndim = s->ndim;
			ld->row_items = 1;
			for (int i = 1; i < s->ndim; i++) {
				ld->trailing[i] = s->shape[i];
				ld->row_items *= s->shape[i];
			}
		}
	} else {
		if (sparse != ld->sparse)
			return ab_error_set(AB_EINVAL, "%s: cannot mix dense and sparse datasets in one loader", s->name);
		if (sparse && s->shape[1] != ld->n_cols)
			return ab_error_set(AB_EINVAL, "%s has %llu columns, the loader's datasets have %llu", s->name,
					    (unsigned long long)s->shape[1], (unsigned long long)ld->n_cols);
		if (!sparse) {
			int same = s->ndim == ld->ndim;
			for (int i = 1; same && i < s->ndim; i++)
				same = s->shape[i] == ld->trailing[i];
			if (!same)
				return ab_error_set(AB_EINVAL, "%s: trailing shape differs from the loader's first dataset",
						    s->name);
		}
		ab_dtype p;
		if (ab_dtype_promote(ld->out_dtype, s->dtype, &p))
			return ab_error_set(AB_EUNSUPPORTED, "%s: dtype %s cannot be combined with %s", s->name,
					    ab_dtype_name(s->dtype), ab_dtype_name(ld->out_dtype));
		ld->out_dtype = p;
	}
	if (s->dtype == AB_DT_STRING || s->dtype == AB_DT_COMPLEX64 || s->dtype == AB_DT_COMPLEX128)
		return ab_error_set(AB_EUNSUPPORTED, "%s: dtype %s cannot be batched", s->name, ab_dtype_name(s->dtype));
	if (ld->nsrc == ld->cap_src) {
		size_t nc = ld->cap_src ? ld->cap_src * 2 : 8;
		ld_source *n = realloc(ld->src, nc * sizeof *n);
		if (!n)
			return ab_error_set(AB_ENOMEM, "out of memory");
		ld->src = n;
		ld->cap_src = nc;
	}
	s->row0 = ld->nrows;
	ld->nrows += s->nrows;
	ld->src[ld->nsrc++] = *s;
	ld->out_isz = ab_dtype_size(ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype);
	return 0;
}

static void source_free(ld_source *s)
{
	free(s->ad_node);
	ab_array_close(s->x);
	ab_csr_close(s->csr);
	ab_store_close(s->store);
	free(s->name);
}

static int add_anndata_node(ab_loader *ld, const char *path, ab_store *st, const char *node, int own_store)
{
	ab_anndata *ad;
	int rc = ab_anndata_open(st, node, &ad);
	if (rc) {
		if (own_store)
			ab_store_close(st);
		return ab_error_prefix(rc, "%s: ", path);
	}
	ld_source s = { 0 };
	s.store = own_store ? st : NULL;
	size_t nl = strlen(path) + strlen(node) + 2;
	s.name = malloc(nl);
	if (s.name)
		snprintf(s.name, nl, "%s%s%s", path, *node ? ":" : "", node);
	s.ad_node = strdup(node);
	ab_anndata_info info;
	ab_anndata_get_info(ad, &info);
	if (info.x_kind == AB_X_CSC) {
		rc = ab_error_set(AB_EUNSUPPORTED, "%s: X is a csc_matrix; row batches need csr_matrix", path);
		goto fail;
	}
	/* Take X's handles over from the AnnData handle: reopen them standalone. */
	char *xnode = ab_path_join(node, "X");
	if (!xnode) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	if (info.x_kind == AB_X_DENSE) {
		rc = ab_array_open(st, xnode, &s.x);
		if (rc == 0) {
			s.kind = SRC_ARRAY;
			s.dtype = s.x->m.dt.dt;
			s.ndim = s.x->m.ndim;
			memcpy(s.shape, s.x->m.shape, sizeof s.shape);
			s.nrows = ab_array_nrows(s.x);
		}
	} else {
		rc = ab_csr_open(st, xnode, &s.csr);
		if (rc == 0) {
			s.kind = SRC_CSR;
			s.dtype = s.csr->data->m.dt.dt;
			s.ndim = 2;
			s.shape[0] = s.csr->n_rows;
			s.shape[1] = s.csr->n_cols;
			s.nrows = s.csr->n_rows;
		}
	}
	free(xnode);
	ab_anndata_close(ad);
	ad = NULL;
	if (rc)
		goto fail;
	if ((rc = add_source(ld, &s)))
		goto fail;
	return 0;
fail:
	ab_anndata_close(ad);
	source_free(&s);
	if (own_store && !s.store)
		ab_store_close(st);
	return rc;
}

int ab_loader_add_anndata(ab_loader *ld, const char *path)
{
	if (!ld || !path)
		return ab_error_set(AB_EINVAL, "ab_loader_add_anndata: null argument");
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc)
		return rc;
	char **ds;
	size_t n;
	rc = ab_collection_datasets(st, "", &ds, &n);
	if (rc == AB_ETYPE)
		return add_anndata_node(ld, path, st, "", 1);
	ab_store_close(st);
	if (rc)
		return rc;
	if (n == 0) {
		ab_strings_free(ds);
		return ab_error_set(AB_EFORMAT, "%s: the collection has no datasets", path);
	}
	/* One store handle per dataset keeps the sources independent. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		ab_store *s2;
		if ((rc = ab_store_open(path, &s2)))
			break;
		rc = add_anndata_node(ld, path, s2, ds[i], 1);
	}
	ab_strings_free(ds);
	return rc;
}

int ab_loader_add_array(ab_loader *ld, const char *path, const char *node)
{
	if (!ld || !path)
		return ab_error_set(AB_EINVAL, "ab_loader_add_array: null argument");
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc)
		return rc;
	ld_source s = { 0 };
	s.store = st;
	s.kind = SRC_ARRAY;
	size_t nl = strlen(path) + strlen(node ? node : "") + 2;
	s.name = malloc(nl);
	if (s.name)
		snprintf(s.name, nl, "%s:%s", path, node ? node : "");
	if ((rc = ab_array_open(st, node, &s.x)) == 0) {
		s.dtype = s.x->m.dt.dt;
		s.ndim = s.x->m.ndim;
		memcpy(s.shape, s.x->m.shape, sizeof s.shape);
		s.nrows = ab_array_nrows(s.x);
		if (s.ndim == 0)
			rc = ab_error_set(AB_EINVAL, "%s: a 0-d array has no rows to batch", s.name);
		else
			rc = add_source(ld, &s);
	}
	if (rc)
		source_free(&s);
	return rc;
}

int ab_loader_add_dense_memory(ab_loader *ld, const void *data, ab_dtype dtype, int ndim, const uint64_t *shape)
{
	if (!ld || !data || !shape || ndim < 1 || ndim > AB_MAX_NDIM)
		return ab_error_set(AB_EINVAL, "ab_loader_add_dense_memory: bad argument");
	if (ab_dtype_size(dtype) == 0 || dtype == AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "ab_loader_add_dense_memory: dtype %d is not a numeric ab_dtype",
				    (int)dtype);
	ld_source s = { 0 };
	s.kind = SRC_MEM_DENSE;
	s.mem = data;
	s.dtype = dtype;
	s.ndim = ndim;
	memcpy(s.shape, shape, sizeof(uint64_t) * (size_t)ndim);
	s.nrows = shape[0];
	s.name = strdup("memory (dense)");
	int rc = add_source(ld, &s);
	if (rc)
		source_free(&s);
	return rc;
}

int ab_loader_add_csr_memory(ab_loader *ld, const int64_t *indptr, const int64_t *indices, const void *data,
			     ab_dtype dtype, uint64_t n_rows, uint64_t n_cols)
{
	if (!ld || !indptr || (!indices && indptr[n_rows]) || (!data && indptr[n_rows]))
		return ab_error_set(AB_EINVAL, "ab_loader_add_csr_memory: bad argument");
	if (ab_dtype_size(dtype) == 0 || dtype == AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "ab_loader_add_csr_memory: dtype %d is not a numeric ab_dtype",
				    (int)dtype);
	if (indptr[0] != 0)
		return ab_error_set(AB_EINVAL, "memory CSR: indptr[0] must be 0");
	for (uint64_t i = 0; i < n_rows; i++)
		if (indptr[i + 1] < indptr[i])
			return ab_error_set(AB_EINVAL, "memory CSR: indptr decreases at row %llu", (unsigned long long)i);
	for (int64_t k = 0; k < indptr[n_rows]; k++)
		if (indices[k] < 0 || (uint64_t)indices[k] >= n_cols)
			return ab_error_set(AB_EINVAL, "memory CSR: column index %lld outside [0, %llu)",
					    (long long)indices[k], (unsigned long long)n_cols);
	ld_source s = { 0 };
	s.kind = SRC_MEM_CSR;
	s.mem = data;
	s.mem_indptr = indptr;
	s.mem_indices = indices;
	s.dtype = dtype;
	s.ndim = 2;
	s.shape[0] = n_rows;
	s.shape[1] = n_cols;
	s.nrows = n_rows;
	s.name = strdup("memory (csr)");
	int rc = add_source(ld, &s);
	if (rc)
		source_free(&s);
	return rc;
}

uint64_t ab_loader_nrows(const ab_loader *ld)
{
	return ld ? ld->nrows : 0;
}

static void free_obs(ab_loader *ld)
{
	if (ld->obs)
		for (size_t i = 0; i < ld->n_obs_names; i++)
			ld_obs_free(&ld->obs[i]);
	free(ld->obs);
	ld->obs = NULL;
	for (size_t i = 0; i < ld->n_obs_names; i++)
		free(ld->obs_names[i]);
	free(ld->obs_names);
	ld->obs_names = NULL;
	ld->n_obs_names = 0;
}

int ab_loader_set_obs_columns(ab_loader *ld, const char *const *names, size_t n)
{
	if (!ld || (n && !names))
		return ab_error_set(AB_EINVAL, "ab_loader_set_obs_columns: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "obs columns must be set before ab_loader_start");
	free_obs(ld);
	if (n == 0)
		return 0;
	ld->obs_names = calloc(n, sizeof *ld->obs_names);
	if (!ld->obs_names)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !(ld->obs_names[i] = strdup(names[i]))) {
			ld->n_obs_names = i;
			free_obs(ld);
			return ab_error_set(AB_EINVAL, "bad obs column name");
		}
	}
	ld->n_obs_names = n;
	return 0;
}

/* Forgets the weights and the loaded class column (read again at start). */
static void drop_class_weights(ab_loader *ld)
{
	free(ld->class_w);
	ld->class_w = NULL;
	ld->n_class_w = 0;
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	ld->class_loaded = 0;
	ld->class_rows = 0;
}

static int check_class_weights(const double *weights, size_t n)
{
	for (size_t i = 0; weights && i < n; i++)
		if (!(weights[i] >= 0) || !isfinite(weights[i]))
			return ab_error_set(AB_EINVAL, "class weight %zu is %g: weights must be finite and >= 0", i,
					    weights[i]);
	return 0;
}

int ab_loader_set_class_column(ab_loader *ld, const char *name, const double *weights, size_t n)
{
	if (!ld || !name)
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_column: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "the class column must be set before ab_loader_start");
	/* Checked first: a refused call leaves the loader as it was. */
	int rc = check_class_weights(weights, n);
	if (rc)
		return rc;
	free(ld->class_name);
	ld->class_name = NULL;
	drop_class_weights(ld);
	ld_label_weights_free(&ld->class_wl);
	if (!(ld->class_name = strdup(name)))
		return ab_error_set(AB_ENOMEM, "out of memory");
	if (weights && n) {
		if (!(ld->class_w = malloc(n * sizeof *ld->class_w)))
			return ab_error_set(AB_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++)
			ld->class_w[i] = weights[i];
		ld->n_class_w = n;
	}
	return 0;
}

int ab_loader_set_allocator(ab_loader *ld, void *(*alloc)(size_t size, void *ctx),
			    void (*free_fn)(void *p, size_t size, void *ctx), void *ctx)
{
	if (!ld || !alloc != !free_fn)
		return ab_error_set(AB_EINVAL, "ab_loader_set_allocator: null loader, or only one of alloc and free");
	if (ld->gen)
		return ab_error_set(AB_EINVAL, "the batch allocator must be set before the first ab_loader_start");
	ld->alloc.alloc = alloc;
	ld->alloc.free = free_fn;
	ld->alloc.ctx = ctx;
	return 0;
}

int ab_loader_set_class_codes(ab_loader *ld, const int32_t *codes, uint64_t n_rows, const char *const *labels,
			      size_t n_labels, const double *weights, size_t n_weights)
{
	if (!ld || (n_rows && !codes) || (n_labels && !labels))
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "the classes must be set before ab_loader_start");
	if (n_labels == 0 || n_labels > INT32_MAX)
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: %zu classes (1 to 2^31 - 1)", n_labels);
	if (weights && n_weights != n_labels)
		return ab_error_set(AB_EINVAL, "%zu class weights given for %zu classes", n_weights, n_labels);
	/* Checked first: a refused call leaves the loader as it was. */
	for (uint64_t r = 0; r < n_rows; r++)
		if (codes[r] < 0 || (size_t)codes[r] >= n_labels)
			return ab_error_set(AB_EINVAL,
					    "class code %d of row %" PRIu64 " is not a class (0..%zu): missing classes "
					    "(code -1) cannot be sampled",
					    (int)codes[r], r, n_labels - 1);
	int rc = check_class_weights(weights, n_weights);
	if (rc)
		return rc;
	for (size_t i = 0; i < n_labels; i++)
		if (!labels[i])
			return ab_error_set(AB_EINVAL, "ab_loader_set_class_codes: label %zu is null", i);
	ld_obs_col col;
	memset(&col, 0, sizeof col);
	col.categorical = 1;
	col.name = strdup("(classes from memory)");
	col.codes = malloc((n_rows ? n_rows : 1) * sizeof *col.codes);
	col.labels = calloc(n_labels, sizeof *col.labels);
	double *w = weights ? malloc(n_labels * sizeof *w) : NULL;
	int ok = col.name && col.codes && col.labels && (!weights || w);
	for (size_t i = 0; ok && i < n_labels; i++) {
		if (!(col.labels[i] = strdup(labels[i])))
			ok = 0;
		else
			col.n_labels = col.cap_labels = i + 1;
	}
	char *name = ok ? strdup(col.name) : NULL;
	if (!ok || !name) {
		ld_obs_free(&col);
		free(w);
		free(name);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	memcpy(col.codes, codes, n_rows * sizeof *codes);
	for (size_t i = 0; w && i < n_labels; i++)
		w[i] = weights[i];
	free(ld->class_name);
	free(ld->class_w);
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	ld_label_weights_free(&ld->class_wl);
	ld->class_name = name;
	ld->class_col = col;
	ld->class_loaded = 1;
	ld->class_rows = n_rows;
	ld->class_w = w;
	ld->n_class_w = w ? n_labels : 0;
	return 0;
}

int ab_loader_set_class_weights_by_label(ab_loader *ld, const char *const *labels, const double *weights, size_t n,
					 const double *rest)
{
	if (!ld || (n && (!labels || !weights)))
		return ab_error_set(AB_EINVAL, "ab_loader_set_class_weights_by_label: null argument");
	if (ld->running)
		return ab_error_set(AB_EINVAL, "class weights must be set before ab_loader_start");
	if (!ld->class_name)
		return ab_error_set(AB_EINVAL, "class weights by label need a class column: call "
				    "ab_loader_set_class_column first");
	if (n == 0 && !rest)
		return ab_error_set(AB_EINVAL, "class weights by label: no label and no weight for the rest");
	int rc = ld_label_weights_set(&ld->class_wl, labels, weights, n, rest);
	if (rc)
		return rc;
	/* They replace weights given in category order; the column, when
	 * already loaded, is resolved again at the next start. */
	drop_class_weights(ld);
	return 0;
}

int ab_loader_var_names(ab_loader *ld, char ***names, size_t *count)
{
	if (!ld || !names)
		return ab_error_set(AB_EINVAL, "ab_loader_var_names: null argument");
	if (ld->nsrc == 0 || !ld->src[0].ad_node)
		return ab_error_set(AB_EINVAL, "var names need an AnnData dataset");
	ab_anndata *ad;
	int rc = ab_anndata_open(ld->src[0].store, ld->src[0].ad_node, &ad);
	if (rc)
		return rc;
	ab_column *col;
	rc = ab_anndata_var_column(ad, "_index", &col);
	if (rc == 0) {
		ab_column_info ci;
		ab_column_get_info(col, &ci);
		rc = ab_column_read_strings(col, 0, ci.length, names, count);
		ab_column_close(col);
	}
	ab_anndata_close(ad);
	return rc;
}

/* ------------------------------------------------------------ sampler */

static int make_sampler(ab_loader *ld, uint64_t epoch, ab_sampler **out)
{
	if (ld->nsrc == 0)
		return ab_error_set(AB_EINVAL, "the loader has no data: add a store first");
	ab_sampler_config sc = { 0 };
	const ab_loader_config *c = &ld->cfg;
	sc.chunk_size = c->chunk_size;
	sc.preload_nchunks = c->preload_nchunks;
	sc.batch_size = c->batch_size;
	sc.shuffle = c->shuffle;
	sc.drop_last = c->drop_last;
	sc.replacement = c->replacement;
	sc.num_samples = c->num_samples;
	sc.mask_start = c->mask_start;
	sc.mask_stop = c->mask_stop;
	sc.seed = c->seed;
	sc.epoch = epoch;
	uint32_t rank = 0, ws = 1;
	if (c->rank < 0 || c->world_size < 0) {
		uint32_t er, ew;
		int found = ab_sampler_rank_from_env(&er, &ew);
		if (found < 0)
			return found;
		if (found) {
			rank = er;
			ws = ew;
		} else if (c->rank < 0 && c->world_size > 1) {
			/* Every process would be rank 0 and read the same share. */
			return ab_error_set(AB_EINVAL, "world_size is %d but no rank is given (rank -1 and no "
					    "RANK, OMPI_COMM_WORLD_RANK or SLURM_PROCID in the environment)",
					    c->world_size);
		}
	}
	if (c->rank >= 0)
		rank = (uint32_t)c->rank;
	if (c->world_size >= 0)
		ws = (uint32_t)(c->world_size ? c->world_size : 1);
	sc.rank = rank;
	sc.world_size = ws;
	sc.rank_shards = (int)c->rank_shards;
	if (ld->class_name) {
		if (!ld->class_loaded) {
			int rc = ld_obs_load(ld, ld->class_name, &ld->class_col);
			if (rc)
				return rc;
			if (!ld->class_col.categorical)
				rc = ab_error_set(AB_EINVAL, "class column '%s' must be categorical (or strings)",
						  ld->class_name);
			else if (ld->class_wl.n || ld->class_wl.has_rest) {
				free(ld->class_w);
				ld->class_w = NULL;
				rc = ld_obs_weights_by_label(&ld->class_col, &ld->class_wl, &ld->class_w);
				ld->n_class_w = rc ? 0 : ld->class_col.n_labels;
			} else if (ld->class_w && ld->n_class_w != ld->class_col.n_labels)
				rc = ab_error_set(AB_EINVAL, "%zu class weights given for %zu classes of '%s'",
						  ld->n_class_w, ld->class_col.n_labels, ld->class_name);
			if (rc) {
				ld_obs_free(&ld->class_col);
				return rc;
			}
			ld->class_loaded = 1;
		}
		if (ld->class_rows && ld->class_rows != ld->nrows)
			return ab_error_set(AB_EINVAL,
					    "the classes given from memory have %" PRIu64 " rows, the loader %" PRIu64
					    ": one class code a row",
					    ld->class_rows, ld->nrows);
		sc.classes = ld->class_col.codes;
		sc.n_classes = (uint32_t)ld->class_col.n_labels;
		sc.class_weights = ld->class_w;
		sc.class_labels = (const char *const *)ld->class_col.labels;
	}
	return ab_sampler_create(&sc, ld->nrows, out);
}

int ab_loader_nbatches(ab_loader *ld, uint64_t *n)
{
	if (!ld || !n)
		return ab_error_set(AB_EINVAL, "ab_loader_nbatches: null argument");
	ab_sampler *s;
	int rc = make_sampler(ld, 0, &s);
	if (rc)
		return rc;
	*n = ab_sampler_nbatches(s);
	ab_sampler_destroy(s);
	return 0;
}

/* ------------------------------------------------------------ errors */

/* Records the first failure; every thread then winds down. */
static void post_error(ab_loader *ld, int code, const char *msg)
{
	pthread_mutex_lock(&ld->mu);
	if (atomic_load(&ld->error) == 0) {
		snprintf(ld->errmsg, sizeof ld->errmsg, "%s", msg);
		atomic_store(&ld->error, code);
	}
	pthread_cond_broadcast(&ld->cv);
	pthread_mutex_unlock(&ld->mu);
	if (ld->ring)
		ab_ring_close(ld->ring);
}

/* ------------------------------------------------------------ files */


static void fd_close_all(ab_loader *ld)
{
	for (size_t i = 0; i < ld->nfds; i++)
		if (ld->fds[i].fd >= 0)
			close(ld->fds[i].fd);
	ld->nfds = 0;
	ld->fds_open = 0;
}

/* How many data files an epoch may hold open (cached shard files and the
 * chunk files of reads in flight): three quarters of the descriptors still
 * free under RLIMIT_NOFILE when it starts (the rest is left for metadata
 * reads and the caller). A store can have more files than that: the least
 * recently used shard files are closed as others are opened (shard_fd), and
 * a read that finds the budget spent on reads in flight waits (read_fd). */
static size_t fd_budget(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30))
		return (size_t)1 << 30;
	size_t open_now = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				open_now++;
		closedir(d);
	} else {
		open_now = 16;
	}
	size_t lim = (size_t)rl.rlim_cur;
	size_t spare = lim > open_now ? lim - open_now : 0;
	return spare * 3 / 4 > 1 ? spare * 3 / 4 : 1;
}

/* Closes the least recently used shard file that no read in flight needs.
 * Its registered file slot is cleared first, so the ring holds no stale
 * file. Returns 0 when every open file is pinned. */
static int fd_evict(ab_loader *ld)
{
	size_t victim = SIZE_MAX;
	for (size_t i = 0; i < ld->nfds; i++) {
		const ld_fd_slot *f = &ld->fds[i];
		if (f->arr && f->pins == 0 && (victim == SIZE_MAX || f->last_use < ld->fds[victim].last_use))
			victim = i;
	}
	if (victim == SIZE_MAX)
		return 0;
	ld_fd_slot *f = &ld->fds[victim];
	if (f->fixed)
		ab_io_set_file(ld->io, f->fixed - 1, -1);
	close(f->fd);
	f->fd = -1;
	f->arr = NULL;
	ld->fds_open--;
	return 1;
}

/* A submitted read is done with its shard file (r->fd_slot): once no read
 * pins it, the file may be closed again. */
static void fd_unpin(ab_loader *ld, ld_read *r)
{
	if (r->fd_slot >= 0 && (size_t)r->fd_slot < ld->nfds && ld->fds[r->fd_slot].pins)
		ld->fds[r->fd_slot].pins--;
	r->fd_slot = -1;
}

/* Opens a data file. O_DIRECT where asked and allowed; a filesystem that
 * refuses it (tmpfs: EINVAL) gets buffered reads, and the stats say so. */
static int open_data_file(ab_loader *ld, ab_store *st, const char *rel, int *fd)
{
	/* O_NONBLOCK so that a FIFO planted in a store cannot block the event
	 * loop in open(); it is cleared again below for the regular file. */
	int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
	int f = -1;
	if (ld->direct) {
		f = openat(st->rootfd, rel, flags | O_DIRECT);
		if (f < 0 && errno != EINVAL)
			goto fail;
		if (f < 0) {
			ld->direct = 0;
			ld->align = 1;
			snprintf(ld->note, sizeof ld->note,
				 "O_DIRECT refused by the filesystem of %s; using buffered reads", st->root);
		}
	}
	if (f < 0 && (f = openat(st->rootfd, rel, flags)) < 0)
		goto fail;
	struct stat sb;
	if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(f);
		return ab_error_set(AB_EFORMAT, "%s/%s: not a regular file", st->root, rel);
	}
	/* io_uring treats O_NONBLOCK files as "never wait" and would answer
	 * EAGAIN instead of reading: make the descriptor blocking again. */
	int fl = fcntl(f, F_GETFL);
	if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(f);
		return ab_error_set(AB_EIO, "%s/%s: fcntl: %s", st->root, rel, strerror(e));
	}
	if (ld->direct && ld->align == 0) {
		uint32_t mem = 4096, off = 4096;
		if (ab_io_dio_alignment(f, &mem, &off) != 0)
			mem = off = 4096;
		ld->align = mem > off ? mem : off;
		if (ld->align < 512)
			ld->align = 512;
	}
	*fd = f;
	return 0;
fail:
	if (errno == ENOENT || errno == ENOTDIR) {
		*fd = -1;
		return 0;
	}
	return ab_error_set(AB_EIO, "%s/%s: cannot open: %s", st->root, rel, strerror(errno));
}

/* The cached descriptor of a shard file, opened on first use; *fixed gets
 * its registered file slot + 1 (0 when not registered) and *slot its place
 * in ld->fds, pinned (the caller's read holds it open until fd_unpin). At
 * most fd_budget files stay open: past it the least recently used unpinned
 * one is closed first (it is opened again when needed). Only the event-loop
 * thread calls this. */
static int shard_fd(ab_loader *ld, ab_array *arr, const ab_unit_loc *loc, int *fd, unsigned *fixed, long *slot)
{
	size_t free_slot = SIZE_MAX;
	for (size_t i = 0; i < ld->nfds; i++) {
		if (ld->fds[i].arr == arr && ld->fds[i].lin == loc->file_lin) {
			ld->fds[i].pins++;
			ld->fds[i].last_use = ++ld->fd_clock;
			*fd = ld->fds[i].fd;
			*fixed = ld->fds[i].fixed;
			*slot = (long)i;
			return 0;
		}
		if (!ld->fds[i].arr && free_slot == SIZE_MAX)
			free_slot = i;
	}
	if (ld->fds_open + ld->own_open >= ld->fd_budget && fd_evict(ld) && free_slot == SIZE_MAX) {
		for (size_t i = 0; i < ld->nfds && free_slot == SIZE_MAX; i++)
			if (!ld->fds[i].arr)
				free_slot = i;
	}
	int f;
	int rc = open_data_file(ld, arr->store, loc->rel, &f);
	if (rc)
		return rc;
	if (f < 0)
		return ab_error_set(AB_EIO, "%s/%s: shard file vanished", arr->store->root, loc->rel);
	size_t i = free_slot;
	if (i == SIZE_MAX) {
		if (ld->nfds == ld->cap_fds) {
			size_t nc = ld->cap_fds ? ld->cap_fds * 2 : 16;
			ld_fd_slot *n = realloc(ld->fds, nc * sizeof *n);
			if (!n) {
				close(f);
				return ab_error_set(AB_ENOMEM, "out of memory");
			}
			ld->fds = n;
			ld->cap_fds = nc;
		}
		i = ld->nfds++;
		ld->fds[i].fixed = 0;
	}
	/* Long-lived shard files go into the ring's file table while there is
	 * room: their reads then skip the per-read file lookup. A reused slot
	 * keeps its table entry, now naming the new file. */
	unsigned fx = ld->fds[i].fixed;
	if (!fx && i < ld->file_slots)
		fx = (unsigned)i + 1;
	if (fx && ab_io_set_file(ld->io, fx - 1, f) != 0)
		fx = 0;
	if (fx > ld->registered_files)
		ld->registered_files = fx;
	ld->fds[i] = (ld_fd_slot){ arr, loc->file_lin, f, fx, 1, ++ld->fd_clock };
	ld->fds_open++;
	*fd = f;
	*fixed = fx;
	*slot = (long)i;
	return 0;
}

/* The descriptor of a read, just before its submission: a shard file from
 * the cache (shard_fd), an unsharded chunk file opened for this read alone
 * (closed at its completion). Returns 1 when the open-file budget is spent
 * on reads in flight: the read waits until some complete. */
static int read_fd(ab_loader *ld, ld_read *r)
{
	const ld_unit *u = &r->win->units[r->unit_first];
	if (r->own_fd) {
		if (r->fd >= 0)
			return 0;
		if (ld->fds_open + ld->own_open >= ld->fd_budget && !fd_evict(ld))
			return 1;
		char key[512], rel[1024];
		ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
		snprintf(rel, sizeof rel, "%s%s%s", u->arr->node, *u->arr->node ? "/" : "", key);
		int rc = open_data_file(ld, u->arr->store, rel, &r->fd);
		if (rc)
			return rc;
		if (r->fd < 0)
			return ab_error_set(AB_EIO, "%s/%s: chunk file vanished", u->arr->store->root, rel);
		ld->own_open++;
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
		return 0;
	}
	if (!r->shard || r->fd_slot >= 0)
		return 0;
	int pinned = 1;
	for (size_t i = 0; i < ld->nfds; i++)
		if (ld->fds[i].arr == u->arr && ld->fds[i].lin == u->file_lin)
			pinned = 0;
	if (pinned && ld->fds_open + ld->own_open >= ld->fd_budget) {
		for (size_t i = 0; i < ld->nfds && pinned; i++)
			if (ld->fds[i].arr && ld->fds[i].pins == 0)
				pinned = 0;
		if (pinned)
			return 1;
	}
	ab_unit_loc loc;
	int rc = ab_array_locate_unit(u->arr, u->coord, &loc); /* cached: gives rel */
	if (rc == 0)
		rc = shard_fd(ld, u->arr, &loc, &r->fd, &r->req.fixed_file, &r->fd_slot);
	if (rc == 0) {
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
	}
	return rc;
}

/* ------------------------------------------------------------ planning */

static int grow(void **p, size_t *cap, size_t need, size_t item)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	void *n = realloc(*p, nc * item);
	if (!n)
		return ab_error_set(AB_ENOMEM, "out of memory");
	*p = n;
	*cap = nc;
	return 0;
}

/* Grows a buffer to `need` bytes, keeping its contents; -1 when out of memory. */
static int ensure(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	void *n = realloc(*p, need);
	if (!n)
		return -1;
	*p = n;
	*cap = need;
	return 0;
}

/* A batch's X buffer (values, indices, indptr) of at least `need` bytes,
 * from the caller's allocator when one is set (e.g. pinned memory). The
 * old contents need not survive: assembly writes the buffer whole. */
static int ensure_x(ab_loader *ld, void **p, size_t *cap, size_t need)
{
	if (!ld->alloc.alloc)
		return ensure(p, cap, need);
	if (need <= *cap)
		return 0;
	void *n = ld->alloc.alloc(need, ld->alloc.ctx);
	if (!n)
		return -1;
	if (*p)
		ld->alloc.free(*p, *cap, ld->alloc.ctx);
	*p = n;
	*cap = need;
	return 0;
}

static void free_x(ab_loader *ld, void *p, size_t cap)
{
	if (!p)
		return;
	if (ld->alloc.free)
		ld->alloc.free(p, cap, ld->alloc.ctx);
	else
		free(p);
}

/* Adds the decode units of rows [r0, r1) of `arr` (axis 0) that go to stream
 * rows starting at dst_row. Units of N-d arrays span all trailing units. */
static int plan_rows(ld_window *w, ab_array *arr, int stream, uint64_t r0, uint64_t r1, uint64_t dst_row)
{
	if (r0 >= r1)
		return 0;
	int nd = arr->m.ndim;
	uint64_t grid[AB_MAX_NDIM];
	ab_array_unit_grid(arr, grid);
	uint64_t u0 = arr->unit[0];
	uint64_t trailing_units = 1;
	for (int i = 1; i < nd; i++)
		trailing_units *= grid[i];
	for (uint64_t uc = r0 / u0; uc * u0 < r1; uc++) {
		uint64_t lo = uc * u0 > r0 ? uc * u0 : r0;
		uint64_t hi = (uc + 1) * u0 < r1 ? (uc + 1) * u0 : r1;
		for (uint64_t t = 0; t < trailing_units; t++) {
			int rc;
			if ((rc = grow((void **)&w->units, &w->cap_units, w->nunits + 1, sizeof *w->units)) ||
			    (rc = grow((void **)&w->copies, &w->cap_copies, w->ncopies + 1, sizeof *w->copies)))
				return rc;
			ld_unit *u = &w->units[w->nunits++];
			memset(u, 0, sizeof *u);
			u->arr = arr;
			u->stream = stream;
			u->coord[0] = uc;
			uint64_t rem = t;
			for (int i = nd - 1; i >= 1; i--) {
				u->coord[i] = rem % grid[i];
				rem /= grid[i];
			}
			u->lin = uc * trailing_units + t;
			u->copy_first = w->ncopies;
			u->ncopies = 1;
			w->copies[w->ncopies++] = (ld_copy){ lo - uc * u0, hi - lo, dst_row + (lo - r0) };
		}
	}
	return 0;
}

static int cmp_unit(const void *a, const void *b)
{
	const ld_unit *x = a, *y = b;
	if (x->arr != y->arr)
		return (uintptr_t)x->arr < (uintptr_t)y->arr ? -1 : 1;
	if (x->stream != y->stream)
		return x->stream - y->stream;
	if (x->lin != y->lin)
		return x->lin < y->lin ? -1 : 1;
	return x->copy_first < y->copy_first ? -1 : x->copy_first > y->copy_first;
}

static int cmp_unit_file(const void *a, const void *b)
{
	const ld_unit *x = a, *y = b;
	if (x->arr != y->arr)
		return (uintptr_t)x->arr < (uintptr_t)y->arr ? -1 : 1;
	if (x->present != y->present)
		return x->present - y->present;
	if (x->file_lin != y->file_lin)
		return x->file_lin < y->file_lin ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->stream - y->stream;
}

/* Merges units with the same coordinates (two chunks of a window touching one
 * unit): one decode, several copies. Copies are re-laid so that each unit's
 * copies are contiguous. */
static int merge_units(ld_window *w)
{
	if (w->nunits == 0)
		return 0;
	qsort(w->units, w->nunits, sizeof *w->units, cmp_unit);
	ld_copy *nc = malloc(sizeof *nc * w->ncopies);
	if (!nc)
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t k = 0, m = 0;
	for (size_t i = 0; i < w->nunits;) {
		size_t j = i;
		ld_unit u = w->units[i];
		u.copy_first = m;
		u.ncopies = 0;
		while (j < w->nunits && w->units[j].arr == u.arr && w->units[j].stream == u.stream &&
		       w->units[j].lin == u.lin) {
			for (size_t c = 0; c < w->units[j].ncopies; c++)
				nc[m++] = w->copies[w->units[j].copy_first + c];
			u.ncopies += w->units[j].ncopies;
			j++;
		}
		w->units[k++] = u;
		i = j;
	}
	free(w->copies);
	w->copies = nc;
	w->cap_copies = w->ncopies;
	w->nunits = k;
	return 0;
}

/* The registered read buffers: one per window slot (max_windows), sized from
 * the first window of the epoch with a quarter of headroom. Registering pins
 * the pages once, so reads skip the per-read page pinning (read_fixed). It is
 * done before the epoch's first read, when nothing is in flight; a window
 * that outgrows its slot, or a refusal (locked-memory limit), falls back to
 * ordinary buffers, and the stats say so. */
static void register_pool(ab_loader *ld, size_t first_arena)
{
	ld->reg_tried = 1;
	ld->reg_active = 0;
	/* The pread pool accepts a registration and does nothing with it: the
	 * stats must not then say the reads go into registered buffers. */
	if (strcmp(ab_io_name(ld->io), "uring") != 0)
		return;
	size_t want = first_arena + first_arena / 4;
	want = (want + 4095) & ~(size_t)4095;
	if (!ld->reg_buf || ld->reg_size < first_arena) {
		/* (re)allocate: at an epoch's first plan no read or decode of any
		 * window is running, so no slot buffer is in use */
		for (unsigned i = 0; i < ld->nreg; i++)
			free(ld->reg_buf[i]);
		free(ld->reg_buf);
		ld->reg_buf = calloc(ld->cfg.max_windows, sizeof *ld->reg_buf);
		ld->nreg = 0;
		if (!ld->reg_buf)
			return;
		for (unsigned i = 0; i < ld->cfg.max_windows; i++) {
			if (posix_memalign(&ld->reg_buf[i], 4096, want) != 0)
				break;
			ld->nreg++;
		}
		ld->reg_size = want;
	}
	if (ld->nreg == 0)
		return;
	size_t lens[64];
	unsigned n = ld->nreg < 64 ? ld->nreg : 64;
	for (unsigned i = 0; i < n; i++)
		lens[i] = ld->reg_size;
	if (ab_io_register_buffers(ld->io, ld->reg_buf, lens, n) == 0)
		ld->reg_active = 1;
	else
		snprintf(ld->note, sizeof ld->note, "read buffers not registered (%s)", ab_last_error());
}

/* ---- block layouts: reading only the blosc blocks a unit's rows need */

/* At most this much memory for layouts (a few dozen bytes a unit: millions
 * of units); beyond it, units are read whole. */
#define LAYOUT_MAX_BYTES ((size_t)64 << 20)

static size_t layout_slot(const ab_loader *ld, const ab_array *arr, uint64_t lin)
{
	uint64_t h = ((uint64_t)(uintptr_t)arr * 0x9E3779B97F4A7C15ull) ^ (lin * 0xC2B2AE3D27D4EB4Full);
	h ^= h >> 29;
	return (size_t)h & (ld->lay_cap - 1);
}

/* Puts an entry in the first free slot of its probe sequence. */
static void layout_place(const ab_loader *ld, ld_layout_entry *tab, ld_layout_entry e)
{
	size_t k = layout_slot(ld, e.arr, e.lin);
	while (tab[k].used)
		k = (k + 1) & (ld->lay_cap - 1);
	tab[k] = e;
}

/* The entry of (arr, lin), or NULL; under lay_mu. */
static ld_layout_entry *layout_find_locked(ab_loader *ld, const ab_array *arr, uint64_t lin)
{
	if (!ld->lay_cap)
		return NULL;
	for (size_t i = layout_slot(ld, arr, lin);; i = (i + 1) & (ld->lay_cap - 1)) {
		ld_layout_entry *e = &ld->lay_tab[i];
		if (!e->used)
			return NULL;
		if (e->arr == arr && e->lin == lin)
			return e;
	}
}

/* Whether the loader reads units of `arr` in part: its inner chunks are a
 * single blosc stage over items in host order, in shards (unsharded chunk
 * files are read whole). */
static int array_partial(const ab_loader *ld, const ab_array *arr)
{
	const ab_pipeline *p = arr->unit_pipe;
	return !ld->cfg.whole_chunks && arr->sharded && ab_pipeline_partial(p, &arr->m.dt) && p->nb2b == 1 &&
	       p->b2b[0].kind == AB_B2B_BLOSC;
}

/* Remembers the layout of a unit's frame, read whole (worker side). */
static void layout_learn(ab_loader *ld, const ab_array *arr, uint64_t lin, const uint8_t *frame, size_t len)
{
	pthread_mutex_lock(&ld->lay_mu);
	int known = layout_find_locked(ld, arr, lin) != NULL;
	pthread_mutex_unlock(&ld->lay_mu);
	if (known)
		return;
	ab_blosc_layout *l = calloc(1, sizeof *l);
	if (!l)
		return;
	int rc = ab_blosc_layout_read(frame, len, l);
	if (rc < 0) { /* corrupt: the decode that follows says so */
		free(l);
		return;
	}
	if (rc == AB_NO_PART) {
		free(l);
		l = NULL; /* remembered as "read whole" */
	}
	size_t cost = sizeof(ld_layout_entry) * 2 + (l ? sizeof *l + sizeof(uint32_t) * (l->nblocks + 1) : 0);
	pthread_mutex_lock(&ld->lay_mu);
	int added = 0;
	if (!layout_find_locked(ld, arr, lin) && ld->lay_bytes + cost <= LAYOUT_MAX_BYTES) {
		if ((ld->lay_n + 1) * 2 > ld->lay_cap) {
			size_t ncap = ld->lay_cap ? ld->lay_cap * 2 : 1024;
			ld_layout_entry *nt = calloc(ncap, sizeof *nt), *old = ld->lay_tab;
			size_t ocap = ld->lay_cap;
			if (nt) {
				ld->lay_tab = nt;
				ld->lay_cap = ncap;
				for (size_t i = 0; i < ocap; i++)
					if (old[i].used)
						layout_place(ld, nt, old[i]);
				free(old);
			}
		}
		if ((ld->lay_n + 1) * 2 <= ld->lay_cap) {
			layout_place(ld, ld->lay_tab, (ld_layout_entry){ arr, lin, l, 1 });
			ld->lay_n++;
			ld->lay_bytes += cost;
			added = 1;
		}
	}
	pthread_mutex_unlock(&ld->lay_mu);
	if (!added && l) {
		ab_blosc_layout_free(l);
		free(l);
	}
}

/* Narrows a located unit to the blosc blocks its copies need, when its
 * frame's layout is known (event-loop side). */
static void plan_part(ab_loader *ld, const ld_window *w, ld_unit *u)
{
	u->part = 0;
	u->lay = NULL;
	if (!u->present || u->length == UINT64_MAX || u->ncopies == 0 || !array_partial(ld, u->arr))
		return;
	pthread_mutex_lock(&ld->lay_mu);
	ld_layout_entry *e = layout_find_locked(ld, u->arr, u->lin);
	const ab_blosc_layout *l = e ? e->lay : NULL;
	pthread_mutex_unlock(&ld->lay_mu);
	size_t isz = u->arr->m.dt.disk_size;
	/* the layout must describe these bytes, and every range asked of the
	 * smaller frame must fall on its items */
	if (!l || l->start[l->nblocks] != u->length || isz % l->typesize || l->blocksize % isz)
		return;
	uint64_t row_items = 1, lo = UINT64_MAX, hi = 0;
	for (int i = 1; i < u->arr->m.ndim; i++)
		row_items *= u->arr->unit[i];
	for (size_t c = 0; c < u->ncopies; c++) {
		const ld_copy *cp = &w->copies[u->copy_first + c];
		lo = cp->src_row < lo ? cp->src_row : lo;
		hi = cp->src_row + cp->nrows > hi ? cp->src_row + cp->nrows : hi;
	}
	if (hi <= lo || hi * row_items * isz > l->nbytes)
		return;
	uint64_t b0 = lo * row_items * isz / l->blocksize, b1 = (hi * row_items * isz - 1) / l->blocksize;
	/* a frame may not be smaller than its block size: the shorter last
	 * block never goes alone */
	if (b0 == b1 && b1 + 1 == l->nblocks && l->nbytes % l->blocksize && b0 > 0)
		b0--;
	if (b0 == 0 && b1 + 1 == l->nblocks)
		return; /* every block: read the frame as it is */
	u->part = 1;
	u->b0 = (uint32_t)b0;
	u->b1 = (uint32_t)b1;
	u->hdr = AB_BLOSC_SUBFRAME_HDR(u->b0, u->b1);
	u->lay = l;
	u->offset += l->start[b0];
	u->length = l->start[b1 + 1] - l->start[b0];
}

/* Turns located units into reads: one per unsharded chunk file; adjacent byte
 * ranges of one shard file coalesced into one read. Widened to the O_DIRECT
 * alignment; the buffers live in one arena per window. */
static int plan_reads(ab_loader *ld, ld_window *w)
{
	int rc;
	if (!ld->files_tried) {
		/* before the epoch's first read: nothing is in flight */
		ld->files_tried = 1;
		ld->file_slots = strcmp(ab_io_name(ld->io), "uring") == 0 && ab_io_register_files(ld->io, 1024) == 0
					 ? 1024 : 0; /* the pread pool has no file table */
	}
	for (size_t i = 0; i < w->nunits; i++) {
		ld_unit *u = &w->units[i];
		ab_unit_loc loc;
		if ((rc = ab_array_locate_unit(u->arr, u->coord, &loc)))
			return rc;
		u->present = loc.present;
		u->file_lin = loc.file_lin;
		u->offset = loc.offset;
		u->length = loc.length;
		plan_part(ld, w, u);
	}
	/* A window of in-memory sources has no units and no units array:
	 * qsort(NULL, 0, ...) is undefined behaviour (UBSan stops on it). */
	if (w->nunits)
		qsort(w->units, w->nunits, sizeof *w->units, cmp_unit_file);
	uint64_t A = ld->direct ? (ld->align ? ld->align : 4096) : 1;
	size_t arena = 0;
	w->nreads = 0;
	for (size_t i = 0; i < w->nunits;) {
		ld_unit *u = &w->units[i];
		if (!u->present) {
			i++;
			continue;
		}
		if ((rc = grow((void **)&w->reads, &w->cap_reads, w->nreads + 1, sizeof *w->reads)))
			return rc;
		ld_read *r = &w->reads[w->nreads];
		memset(r, 0, sizeof *r);
		r->fd_slot = -1;
		r->win = w;
		r->unit_first = i;
		char rel[1024];
		size_t j = i + 1;
		if (u->length == UINT64_MAX) {
			/* unsharded: the chunk file is the unit */
			char key[512];
			ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
			snprintf(rel, sizeof rel, "%s%s%s", u->arr->node, *u->arr->node ? "/" : "", key);
			/* Only its size now: the file is opened when the read is
			 * submitted (read_fd), like shard files, so that planned
			 * windows hold no descriptors. */
			struct stat sb;
			if (fstatat(u->arr->store->rootfd, rel, &sb, 0) != 0) {
				if (errno == ENOENT || errno == ENOTDIR) {
					u->present = 0; /* absent chunk: fill value */
					i++;
					continue;
				}
				return ab_error_set(AB_EIO, "%s/%s: stat failed: %s", u->arr->store->root, rel,
						    strerror(errno));
			}
			if (!S_ISREG(sb.st_mode))
				return ab_error_set(AB_EFORMAT, "%s/%s: not a regular file", u->arr->store->root, rel);
			if ((uint64_t)sb.st_size > ((uint64_t)1 << 31)) {
				return ab_error_set(AB_EUNSUPPORTED, "%s/%s: chunk file larger than 2 GiB",
						    u->arr->store->root, rel);
			}
			/* A (sparse) file longer than its chunk can encode to is
			 * refused before a buffer of its size is allocated. */
			uint64_t max = ab_pipeline_max_encoded(&u->arr->m.pipe, u->arr->m.ndim, u->arr->m.chunk,
							       &u->arr->m.dt);
			if ((uint64_t)sb.st_size > max) {
				return ab_error_set(AB_ECORRUPT, "%s/%s (array '%s'): %llu bytes, more than a chunk "
						    "of this array encodes to (%llu bytes)", u->arr->store->root, rel,
						    u->arr->node, (unsigned long long)sb.st_size, (unsigned long long)max);
			}
			u->offset = 0;
			u->length = (uint64_t)sb.st_size;
			r->fd = -1;
			r->own_fd = 1;
		} else {
			/* The shard file's descriptor is taken when the read is
			 * submitted (read_fd), so that only reads in flight hold
			 * files open: planned windows may span more shard files
			 * than the open-file limit allows. */
			r->shard = 1;
			r->fd = -1;
			uint64_t end = u->offset + u->length;
			while (!u->part && j < w->nunits && !w->units[j].part && w->units[j].arr == u->arr &&
			       w->units[j].present &&
			       w->units[j].file_lin == u->file_lin && w->units[j].length != UINT64_MAX &&
			       w->units[j].offset <= end && w->units[j].offset + w->units[j].length - u->offset <= MAX_READ_BYTES) {
				uint64_t e = w->units[j].offset + w->units[j].length;
				if (e > end)
					end = e;
				j++;
			}
			(void)end;
		}
		uint64_t start = u->offset, end = u->offset + u->length;
		for (size_t k = i; k < j; k++) {
			if (w->units[k].offset + w->units[k].length > end)
				end = w->units[k].offset + w->units[k].length;
		}
		uint64_t a0 = start / A * A, a1 = (end + A - 1) / A * A;
		if (a1 - a0 > UINT32_MAX)
			return ab_error_set(AB_EUNSUPPORTED, "a read of %llu bytes is too large",
					    (unsigned long long)(a1 - a0));
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
		r->req.offset = a0;
		r->req.len = (uint32_t)(a1 - a0);
		r->req.buf_index = -1;
		r->need = end - a0;
		r->nunits = j - i;
		for (size_t k = i; k < j; k++)
			w->units[k].read_off = w->units[k].offset - a0;
		/* A unit read in part gets the header of its smaller frame
		 * written just before its bytes: in the read's own lead-in when
		 * the alignment gave room enough, else in headroom kept before
		 * the read's buffer (whole pages, so O_DIRECT alignment holds). */
		size_t head = 0;
		if (u->part && u->offset - a0 < u->hdr)
			head = (size_t)(u->hdr - (u->offset - a0) + 4095) / 4096 * 4096;
		/* arena offset kept in req.buf until the arena exists */
		r->req.buf = (void *)(uintptr_t)(arena + head);
		arena += head + (size_t)((a1 - a0 + 4095) / 4096 * 4096);
		w->nreads++;
		i = j;
	}
	if (arena) {
		uint8_t *base;
		int index = -1;
		if (!ld->reg_tried)
			register_pool(ld, arena);
		if (w->slot < 0 && ld->slots_used < ld->nreg)
			w->slot = (int)ld->slots_used++;
		if (w->slot >= 0 && (unsigned)w->slot < ld->nreg && ld->reg_active && arena <= ld->reg_size) {
			/* the window's registered buffer: reads go as read_fixed */
			base = ld->reg_buf[w->slot];
			index = w->slot;
		} else {
			if (arena > w->arena_size || !w->arena) {
				free(w->arena);
				w->arena = NULL;
				if (posix_memalign(&w->arena, 4096, arena) != 0)
					return ab_error_set(AB_ENOMEM, "out of memory for %zu bytes of read buffers", arena);
				w->arena_size = arena;
			}
			base = w->arena;
		}
		for (size_t k = 0; k < w->nreads; k++) {
			w->reads[k].req.buf = base + (uintptr_t)w->reads[k].req.buf;
			w->reads[k].req.buf_index = index;
		}
	}
	/* Back pointers only now: growing the array above moves the reads. */
	for (size_t k = 0; k < w->nreads; k++)
		w->reads[k].req.user = &w->reads[k];
	return 0;
}

static ld_window *window_get(ab_loader *ld)
{
	pthread_mutex_lock(&ld->mu);
	ld_window *w = ld->free_windows;
	if (w)
		ld->free_windows = w->next;
	pthread_mutex_unlock(&ld->mu);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (w)
			w->slot = -1;
	}
	if (w) {
		w->ld = ld;
		w->next = NULL;
	}
	return w;
}

static void window_put(ab_loader *ld, ld_window *w)
{
	for (size_t i = 0; i < w->nreads; i++)
		if (w->reads[i].own_fd && w->reads[i].fd >= 0) {
			close(w->reads[i].fd);
			w->reads[i].fd = -1;
		}
	ab_window_free(&w->w);
	memset(&w->w, 0, sizeof w->w);
	/* rows, xbuf, ibuf and indptr keep their memory for the next window:
	 * fresh large allocations would be mapped and faulted in every time. */
	free(w->batches);
	w->batches = NULL;
	w->nbatches = 0;
	w->nunits = w->ncopies = w->nreads = w->next_submit = 0;
	pthread_mutex_lock(&ld->mu);
	w->next = ld->free_windows;
	ld->free_windows = w;
	pthread_mutex_unlock(&ld->mu);
}

/* The source holding global row r (binary search over row0). */
static size_t source_of(const ab_loader *ld, uint64_t r)
{
	size_t lo = 0, hi = ld->nsrc;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (ld->src[mid].row0 <= r)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Copies in-memory source rows straight into the window. */
static void copy_memory_rows(ab_loader *ld, ld_window *w, const ld_source *s, uint64_t a, uint64_t b,
			     uint64_t dst_row, uint64_t dst_elem)
{
	ab_dtype to = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	size_t sisz = ab_dtype_size(s->dtype);
	if (s->kind == SRC_MEM_DENSE) {
		ab_convert(to, w->xbuf + dst_row * ld->row_items * ld->out_isz, s->dtype,
			   (const uint8_t *)s->mem + a * ld->row_items * sisz, (size_t)((b - a) * ld->row_items));
		return;
	}
	int64_t e0 = s->mem_indptr[a], e1 = s->mem_indptr[b];
	ab_convert(to, w->xbuf + dst_elem * ld->out_isz, s->dtype, (const uint8_t *)s->mem + (size_t)e0 * sisz,
		   (size_t)(e1 - e0));
	for (int64_t k = e0; k < e1; k++)
		w->ibuf[dst_elem + (uint64_t)(k - e0)] = (int32_t)s->mem_indices[k];
}

/* Plans window `index` of the epoch: buffers, units, reads. */
static int plan_window(ab_loader *ld, size_t index, ld_window **out)
{
	ld_window *w = window_get(ld);
	if (!w)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = ab_sampler_window(ld->sampler, index, &w->w);
	if (rc) {
		window_put(ld, w);
		return rc;
	}
	w->epoch = ld->epoch;
	w->gen = ld->gen;
	uint64_t n = w->w.nrows;
	/* The sampler's row ranges must lie within the rows the sources hold
	 * and add up to the window's rows: past them the pieces below would
	 * find no source (and never advance), and w->rows would overflow. */
	const ld_source *last = &ld->src[ld->nsrc - 1];
	uint64_t held = last->row0 + last->nrows, total = 0;
	for (size_t c = 0; c < w->w.nchunks; c++) {
		const ab_chunk_range *cr = &w->w.chunks[c];
		if (cr->start > cr->stop || cr->stop > held || cr->stop > ld->nrows) {
			rc = ab_error_set(AB_ERANGE, "the sampler's rows [%llu, %llu) pass the loader's %llu rows (n_obs)",
					  (unsigned long long)cr->start, (unsigned long long)cr->stop,
					  (unsigned long long)(held < ld->nrows ? held : ld->nrows));
			goto fail;
		}
		total += cr->stop - cr->start;
	}
	if (total != n) {
		rc = ab_error_set(AB_ERANGE, "the sampler's row ranges hold %llu rows, its window %llu",
				  (unsigned long long)total, (unsigned long long)n);
		goto fail;
	}
	if (ensure((void **)&w->rows, &w->rows_cap, sizeof(uint64_t) * (n ? n : 1))) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	uint64_t k = 0;
	for (size_t c = 0; c < w->w.nchunks; c++)
		for (uint64_t r = w->w.chunks[c].start; r < w->w.chunks[c].stop; r++)
			w->rows[k++] = r;
	if (ld->sparse) {
		/* The window's indptr comes from the in-memory indptr: no I/O. */
		if (ensure((void **)&w->indptr, &w->indptr_cap, sizeof(int64_t) * (n + 1))) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
		w->indptr[0] = 0;
		for (uint64_t i = 0; i < n; i++) {
			const ld_source *s = &ld->src[source_of(ld, w->rows[i])];
			uint64_t lr = w->rows[i] - s->row0;
			const int64_t *ip = s->kind == SRC_CSR ? s->csr->indptr : s->mem_indptr;
			w->indptr[i + 1] = w->indptr[i] + (ip[lr + 1] - ip[lr]);
		}
		w->nnz = (uint64_t)w->indptr[n];
		if (ensure((void **)&w->xbuf, &w->xbuf_cap, w->nnz * ld->out_isz + 64) ||
		    ensure((void **)&w->ibuf, &w->ibuf_cap, w->nnz * sizeof(int32_t) + 64)) {
			rc = ab_error_set(AB_ENOMEM, "out of memory for a window of %llu non-zeros",
					  (unsigned long long)w->nnz);
			goto fail;
		}
	} else {
		size_t bytes = (size_t)(n * ld->row_items * ld->out_isz);
		if (ensure((void **)&w->xbuf, &w->xbuf_cap, bytes ? bytes : 64)) {
			rc = ab_error_set(AB_ENOMEM, "out of memory for a window of %zu bytes", bytes);
			goto fail;
		}
	}
	/* Chunks -> per-source pieces -> units. */
	uint64_t dst = 0;
	for (size_t c = 0; c < w->w.nchunks; c++) {
		uint64_t r = w->w.chunks[c].start, stop = w->w.chunks[c].stop;
		while (r < stop) {
			const ld_source *s = &ld->src[source_of(ld, r)];
			uint64_t a = r - s->row0, b = (stop < s->row0 + s->nrows ? stop : s->row0 + s->nrows) - s->row0;
			uint64_t elem = ld->sparse ? (uint64_t)w->indptr[dst] : 0;
			switch (s->kind) {
			case SRC_ARRAY:
				rc = plan_rows(w, s->x, STREAM_VALUES, a, b, dst);
				break;
			case SRC_CSR: {
				uint64_t e0 = (uint64_t)s->csr->indptr[a], e1 = (uint64_t)s->csr->indptr[b];
				rc = plan_rows(w, s->csr->data, STREAM_VALUES, e0, e1, elem);
				if (rc == 0)
					rc = plan_rows(w, s->csr->indices, STREAM_INDICES, e0, e1, elem);
				break;
			}
			default:
				copy_memory_rows(ld, w, s, a, b, dst, elem);
				rc = 0;
			}
			if (rc)
				goto fail;
			dst += b - a;
			r = s->row0 + b;
		}
	}
	if ((rc = merge_units(w)) || (rc = plan_reads(ld, w)))
		goto fail;
	/* One decode task per read, one more for the units that need no read. */
	atomic_store(&w->tasks_left, w->nreads + 1);
	atomic_store(&w->refs, 1);
	*out = w;
	return 0;
fail:
	window_put(ld, w);
	return rc;
}

/* ------------------------------------------------------------ decoding */

typedef struct ld_worker_ctx {
	ab_scratch scratch;
	ab_buf unit, conv;
} ld_worker_ctx;

static void unit_where(const ld_unit *u, char *buf, size_t size)
{
	char key[512];
	if (u->arr->sharded) {
		uint64_t sc[AB_MAX_NDIM], k = 0;
		const ab_shard_cfg *cfg = u->arr->m.pipe.shard;
		for (int i = 0; i < u->arr->m.ndim; i++) {
			sc[i] = u->coord[i] / cfg->per_dim[i];
			k = k * cfg->per_dim[i] + u->coord[i] % cfg->per_dim[i];
		}
		ab_chunk_key(&u->arr->m, sc, key, sizeof key);
		snprintf(buf, size, "array '%s' in %s, inner chunk %llu of shard %s", u->arr->node, u->arr->store->root,
			 (unsigned long long)k, key);
	} else {
		ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
		snprintf(buf, size, "array '%s' in %s, chunk %s", u->arr->node, u->arr->store->root, key);
	}
}

/* Names the first CSR column index of v[0..n) outside [0, ncols). */
static int bad_index(ab_dtype from, const void *v, size_t n, uint64_t ncols)
{
	for (size_t i = 0; i < n; i++) {
		int64_t x = ab_value_as_int64(from, v, i);
		if (x < 0 || (uint64_t)x >= ncols) /* run_task names the unit */
			return ab_error_set(AB_ECORRUPT, "column index %lld outside [0, %llu)", (long long)x,
					    (unsigned long long)ncols);
	}
	return 0;
}

/* Decodes only the rows of a unit the window takes (the blosc blocks that
 * hold them; see ab_chunk_decode_part). A 32-row chunk of a sparse store
 * covers about half of a 64-row inner chunk, so decoding whole units costs
 * about 3x the bytes delivered, decoding blocks about 2x with blosc's default
 * blocks, less with smaller ones. Where the rows need no conversion (1-d
 * values of the output dtype, int32 column indices) each copy is decoded
 * straight into the window, which also saves the unit -> window copy;
 * otherwise the rows span [lo, hi) of the unit are decoded into the worker's
 * unit buffer at their place and *staged is set, for the copies of
 * decode_unit. Returns 0, AB_NO_PART (decode the whole unit instead), or a
 * negative status. */
static int decode_unit_part(ab_loader *ld, ld_window *w, const ld_unit *u, const uint8_t *bytes, size_t len,
			    ld_worker_ctx *cx, int *staged)
{
	ab_array *arr = u->arr;
	const ab_dtype_desc *dt = &arr->m.dt;
	*staged = 0;
	if (u->ncopies == 0 || !ab_pipeline_partial(arr->unit_pipe, dt))
		return AB_NO_PART;
	int nd = arr->m.ndim, rc;
	ab_dtype from = dt->dt, to = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	size_t isz = dt->disk_size, done = 0, d;
	const ld_copy *cps = &w->copies[u->copy_first];
	/* the items the bytes decode to: the whole unit, or the blocks read */
	uint64_t unit_items = 1, f0 = 0, fn;
	for (int i = 0; i < nd; i++)
		unit_items *= arr->unit[i];
	fn = unit_items;
	if (u->part) {
		uint64_t e = (uint64_t)(u->b1 + 1) * u->lay->blocksize;
		f0 = (uint64_t)u->b0 * u->lay->blocksize / isz;
		fn = ((e < u->lay->nbytes ? e : u->lay->nbytes) / isz) - f0;
	}
	int direct_values = nd == 1 && u->stream == STREAM_VALUES && to == from;
	int direct_indices = nd == 1 && u->stream == STREAM_INDICES && from == AB_DT_INT32;
	if (direct_values || direct_indices) {
		for (size_t c = 0; c < u->ncopies; c++) {
			void *dst = direct_values ? (void *)(w->xbuf + cps[c].dst_row * isz)
						  : (void *)(w->ibuf + cps[c].dst_row);
			rc = ab_chunk_decode_part_of(arr->unit_pipe, dt, bytes, len, f0, fn, cps[c].src_row,
						     cps[c].nrows, dst, &d);
			if (rc)
				return rc;
			done += d;
			if (direct_indices) {
				/* the bound check of the copy loop, in place */
				const int32_t *v = dst;
				uint32_t lim = (uint32_t)ld->n_cols, bad = 0;
				for (size_t i = 0; i < (size_t)cps[c].nrows; i++)
					bad |= (uint32_t)v[i] >= lim;
				if (bad && (rc = bad_index(from, v, (size_t)cps[c].nrows, ld->n_cols)))
					return rc;
			}
		}
		atomic_fetch_add_explicit(&ld->st_bytes_decoded, done, memory_order_relaxed);
		return 0;
	}
	uint64_t row_items = 1, lo = UINT64_MAX, hi = 0;
	for (int i = 1; i < nd; i++)
		row_items *= arr->unit[i];
	for (size_t c = 0; c < u->ncopies; c++) {
		lo = cps[c].src_row < lo ? cps[c].src_row : lo;
		hi = cps[c].src_row + cps[c].nrows > hi ? cps[c].src_row + cps[c].nrows : hi;
	}
	size_t unit_bytes;
	if ((rc = ab_chunk_nbytes(nd, arr->unit, dt, &unit_bytes)) ||
	    (rc = ab_buf_reserve(&cx->unit, unit_bytes ? unit_bytes : 1)))
		return rc;
	rc = ab_chunk_decode_part_of(arr->unit_pipe, dt, bytes, len, f0, fn, lo * row_items, (hi - lo) * row_items,
				     cx->unit.data + lo * row_items * isz, &d);
	if (rc)
		return rc;
	atomic_fetch_add_explicit(&ld->st_bytes_decoded, d, memory_order_relaxed);
	*staged = 1;
	return 0;
}

/* Decodes one unit (or fills it) and copies its rows into the window. */
static int decode_unit(ab_loader *ld, ld_window *w, const ld_unit *u, const uint8_t *bytes, size_t len,
		       ld_worker_ctx *cx)
{
	ab_array *arr = u->arr;
	const ab_dtype_desc *dt = &arr->m.dt;
	int nd = arr->m.ndim;
	size_t unit_bytes;
	int staged = 0, rc = 0;
	if (bytes && (u->part || !ld->cfg.whole_chunks)) {
		rc = decode_unit_part(ld, w, u, bytes, len, cx, &staged);
		if (rc == 0 && !staged)
			return 0;
		if (rc < 0)
			return rc;
		if (rc == AB_NO_PART && u->part) /* plan_part checked this cannot be */
			return ab_error_set(AB_ECORRUPT, "blocks %u..%u of the chunk cannot be decoded apart", u->b0,
					    u->b1);
	}
	if ((rc = ab_chunk_nbytes(nd, arr->unit, dt, &unit_bytes)) ||
	    (rc = ab_buf_reserve(&cx->unit, unit_bytes ? unit_bytes : 1)))
		return rc;
	uint64_t unit_items = unit_bytes / dt->disk_size;
	if (!staged) {
		if (bytes)
			rc = ab_chunk_decode(arr->unit_pipe, dt, arr->unit, bytes, len, arr->m.fill,
					     arr->m.fill_str, cx->unit.data, unit_bytes, &cx->scratch);
		else
			rc = ab_chunk_fill(cx->unit.data, unit_items, dt, arr->m.fill, arr->m.fill_str);
		if (rc)
			return rc;
		atomic_fetch_add_explicit(&ld->st_bytes_decoded, unit_bytes, memory_order_relaxed);
	}
	ab_dtype from = dt->dt;
	if (u->stream == STREAM_INDICES) {
		/* CSR column indices: checked against n_cols, stored as int32. The
		 * loops are typed so the compiler vectorises the copy and the bound
		 * check (the unsigned compare catches negative values too); the
		 * slow loop only runs to name an offending index. */
		uint64_t ncols = ld->n_cols;
		for (size_t c = 0; c < u->ncopies; c++) {
			const ld_copy *cp = &w->copies[u->copy_first + c];
			int32_t *dst = w->ibuf + cp->dst_row;
			size_t n = (size_t)cp->nrows, at = (size_t)cp->src_row;
			uint64_t bad = 0;
#define INDEX_COPY(T)                                                           \
	do {                                                                    \
		const T *src = (const T *)(const void *)cx->unit.data + at;     \
		for (size_t i = 0; i < n; i++) {                                \
			bad |= (uint64_t)(int64_t)src[i] >= ncols;              \
			dst[i] = (int32_t)src[i];                               \
		}                                                               \
	} while (0)
			switch (from) {
			case AB_DT_INT32: {
				/* the common case, kept in 32 bits so it vectorises
				 * (n_cols <= INT32_MAX was checked when adding data) */
				const int32_t *src = (const int32_t *)(const void *)cx->unit.data + at;
				uint32_t lim = (uint32_t)ncols, b32 = 0;
				for (size_t i = 0; i < n; i++) {
					b32 |= (uint32_t)src[i] >= lim;
					dst[i] = src[i];
				}
				bad = b32;
				break;
			}
			case AB_DT_INT64: INDEX_COPY(int64_t); break;
			case AB_DT_UINT16: INDEX_COPY(uint16_t); break;
			case AB_DT_UINT32: INDEX_COPY(uint32_t); break;
			case AB_DT_INT16: INDEX_COPY(int16_t); break;
			case AB_DT_UINT8: INDEX_COPY(uint8_t); break;
			case AB_DT_INT8: INDEX_COPY(int8_t); break;
			case AB_DT_UINT64: INDEX_COPY(uint64_t); break;
			default:
				return ab_error_set(AB_EFORMAT, "CSR indices of dtype %s are not integers",
						    ab_dtype_name(from));
			}
#undef INDEX_COPY
			if (bad && (rc = bad_index(from, cx->unit.data + at * dt->disk_size, n, ncols)))
				return rc;
		}
		return 0;
	}
	ab_dtype to = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	size_t sisz = dt->disk_size, oisz = ld->out_isz;
	if (nd == 1) {
		for (size_t c = 0; c < u->ncopies; c++) {
			const ld_copy *cp = &w->copies[u->copy_first + c];
			ab_convert(to, w->xbuf + cp->dst_row * oisz, from, cx->unit.data + cp->src_row * sisz,
				   (size_t)cp->nrows);
		}
		return 0;
	}
	/* N-d: convert the unit if needed, then copy boxes. */
	const uint8_t *src = cx->unit.data;
	if (to != from) {
		if ((rc = ab_buf_reserve(&cx->conv, (size_t)unit_items * oisz)))
			return rc;
		ab_convert(to, cx->conv.data, from, cx->unit.data, (size_t)unit_items);
		src = cx->conv.data;
	}
	uint64_t dshape[AB_MAX_NDIM], soff[AB_MAX_NDIM], doff[AB_MAX_NDIM], cnt[AB_MAX_NDIM];
	dshape[0] = w->w.nrows;
	for (int i = 1; i < nd; i++) {
		uint64_t origin = u->coord[i] * arr->unit[i];
		dshape[i] = arr->m.shape[i];
		soff[i] = 0;
		doff[i] = origin;
		cnt[i] = origin + arr->unit[i] <= arr->m.shape[i] ? arr->unit[i] : arr->m.shape[i] - origin;
	}
	for (size_t c = 0; c < u->ncopies; c++) {
		const ld_copy *cp = &w->copies[u->copy_first + c];
		soff[0] = cp->src_row;
		doff[0] = cp->dst_row;
		cnt[0] = cp->nrows;
		ab_copy_box(nd, oisz, src, arr->unit, soff, w->xbuf, dshape, doff, cnt);
	}
	return 0;
}

static void window_complete(ab_loader *ld, ld_window *w);

/* A worker's task: decode every unit of one read (read == NULL: the window's
 * units that are absent and need no read). */
static void run_task(ab_loader *ld, ld_read *r, ld_window *w, ld_worker_ctx *cx)
{
	if (atomic_load(&ld->error) == 0 && !atomic_load(&ld->stop)) {
		int rc = 0;
		if (r) {
			for (size_t k = 0; k < r->nunits && rc == 0; k++) {
				const ld_unit *u = &w->units[r->unit_first + k];
				uint8_t *bytes = (uint8_t *)r->req.buf + u->read_off;
				size_t len = (size_t)u->length;
				if (u->part) {
					/* the blocks' bytes become a frame of their own */
					bytes -= u->hdr;
					len = ab_blosc_subframe_header(u->lay, u->b0, u->b1, bytes);
				} else if (array_partial(ld, u->arr)) {
					layout_learn(ld, u->arr, u->lin, bytes, len);
				}
				rc = decode_unit(ld, w, u, bytes, len, cx);
				if (rc) {
					char where[1024];
					unit_where(u, where, sizeof where);
					ab_error_prefix(rc, "%s: ", where);
				}
			}
		} else {
			for (size_t k = 0; k < w->nunits && rc == 0; k++)
				if (!w->units[k].present && (rc = decode_unit(ld, w, &w->units[k], NULL, 0, cx))) {
					char where[1024];
					unit_where(&w->units[k], where, sizeof where);
					ab_error_prefix(rc, "%s: ", where);
				}
		}
		if (rc)
			post_error(ld, rc, ab_last_error());
	}
	if (r && r->own_fd && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (atomic_fetch_sub(&w->tasks_left, 1) == 1)
		window_complete(ld, w);
}

static void *worker_main(void *arg)
{
	ab_loader *ld = arg;
	ld_worker_ctx cx = { 0 };
	pthread_mutex_lock(&ld->mu);
	for (;;) {
		while (!ld->task_head && !ld->workers_quit)
			pthread_cond_wait(&ld->task_cv, &ld->mu);
		if (!ld->task_head)
			break;
		ld_task *t = ld->task_head;
		ld->task_head = t->next;
		if (!ld->task_head)
			ld->task_tail = NULL;
		pthread_mutex_unlock(&ld->mu);
		run_task(ld, t->read, t->win, &cx);
		pthread_mutex_lock(&ld->mu);
	}
	pthread_mutex_unlock(&ld->mu);
	ab_scratch_free(&cx.scratch);
	ab_buf_free(&cx.unit);
	ab_buf_free(&cx.conv);
	return NULL;
}

/* ------------------------------------------------------------ batches */

static ab_batch *batch_get(ab_loader *ld)
{
	pthread_mutex_lock(&ld->mu);
	ab_batch *b = ld->free_batches;
	if (b)
		ld->free_batches = b->next_free;
	pthread_mutex_unlock(&ld->mu);
	if (!b)
		b = calloc(1, sizeof *b);
	if (b)
		b->ld = ld;
	return b;
}


static int assemble(ab_loader *ld, ld_window *w)
{
	size_t nb = w->w.nbatches;
	w->batches = calloc(nb ? nb : 1, sizeof *w->batches);
	if (!w->batches)
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t rowb = (size_t)(ld->row_items * ld->out_isz);
	for (size_t b = 0; b < nb; b++) {
		ab_batch *bt = batch_get(ld);
		if (!bt)
			return ab_error_set(AB_ENOMEM, "out of memory");
		w->batches[w->nbatches++] = bt;
		bt->win = w;
		bt->epoch = w->epoch;
		const uint32_t *perm = w->w.perm + w->w.batch_off[b];
		uint64_t n = w->w.batch_off[b + 1] - w->w.batch_off[b];
		bt->nrows = n;
		if (ensure((void **)&bt->rows, &bt->rows_cap, sizeof(uint64_t) * (n ? n : 1)))
			return ab_error_set(AB_ENOMEM, "out of memory");
		for (uint64_t j = 0; j < n; j++)
			bt->rows[j] = w->rows[perm[j]];
		if (ld->n_obs_names) {
			/* 8 bytes per row and column covers doubles and int32 codes */
			if (ensure(&bt->obs_buf, &bt->obs_cap, ld->n_obs_names * 8 * (n ? n : 1)))
				return ab_error_set(AB_ENOMEM, "out of memory");
			if (!bt->obs && !(bt->obs = calloc(ld->n_obs_names, sizeof *bt->obs)))
				return ab_error_set(AB_ENOMEM, "out of memory");
			for (size_t c = 0; c < ld->n_obs_names; c++) {
				const ld_obs_col *oc = &ld->obs[c];
				ab_batch_obs *bo = &bt->obs[c];
				uint8_t *base = (uint8_t *)bt->obs_buf + c * 8 * n;
				bo->name = oc->name;
				bo->categorical = oc->categorical;
				bo->labels = (const char *const *)oc->labels;
				bo->n_labels = oc->n_labels;
				if (oc->categorical) {
					int32_t *codes = (int32_t *)(void *)base;
					for (uint64_t j = 0; j < n; j++)
						codes[j] = oc->codes[bt->rows[j]];
					bo->codes = codes;
					bo->values = NULL;
				} else {
					double *vals = (double *)(void *)base;
					for (uint64_t j = 0; j < n; j++)
						vals[j] = oc->values[bt->rows[j]];
					bo->values = vals;
					bo->codes = NULL;
				}
			}
		}
		if (!ld->sparse) {
			if (ensure_x(ld, &bt->data, &bt->data_cap, rowb * (n ? n : 1)))
				return ab_error_set(AB_ENOMEM, "out of memory");
			uint8_t *d = bt->data;
			for (uint64_t j = 0; j < n; j++)
				memcpy(d + j * rowb, w->xbuf + (size_t)perm[j] * rowb, rowb);
			bt->nnz = 0;
		} else {
			uint64_t nnz = 0;
			for (uint64_t j = 0; j < n; j++)
				nnz += (uint64_t)(w->indptr[perm[j] + 1] - w->indptr[perm[j]]);
			if (ensure_x(ld, (void **)&bt->indptr, &bt->indptr_cap, sizeof(int64_t) * (n + 1)) ||
			    ensure_x(ld, &bt->data, &bt->data_cap, ld->out_isz * (nnz ? nnz : 1)) ||
			    ensure_x(ld, (void **)&bt->indices, &bt->indices_cap, sizeof(int32_t) * (nnz ? nnz : 1)))
				return ab_error_set(AB_ENOMEM, "out of memory");
			uint64_t at = 0;
			bt->indptr[0] = 0;
			for (uint64_t j = 0; j < n; j++) {
				uint64_t s = (uint64_t)w->indptr[perm[j]], e = (uint64_t)w->indptr[perm[j] + 1];
				memcpy((uint8_t *)bt->data + at * ld->out_isz, w->xbuf + s * ld->out_isz,
				       (size_t)(e - s) * ld->out_isz);
				memcpy(bt->indices + at, w->ibuf + s, (size_t)(e - s) * sizeof(int32_t));
				at += e - s;
				bt->indptr[j + 1] = (int64_t)at;
			}
			bt->nnz = nnz;
		}
	}
	return 0;
}

static void release_window_ref(ab_loader *ld, ld_window *w)
{
	if (atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	uint64_t gen = w->gen;
	int held = atomic_exchange(&w->held, 0);
	window_put(ld, w);
	pthread_mutex_lock(&ld->mu);
	if (gen == ld->gen) { /* a window of an earlier epoch gives no credit now */
		ld->credits++;
		if (held && ld->held_windows-- == ld->cfg.max_windows)
			ld->stalled_at = 0;
	}
	pthread_cond_broadcast(&ld->cv);
	pthread_mutex_unlock(&ld->mu);
}

/* Batches are published in window order: a window finished early waits in the
 * parked list until the ones before it are out. Batch numbers are given here. */
static void publish(ab_loader *ld, ld_window *w)
{
	pthread_mutex_lock(&ld->mu);
	w->next = NULL;
	/* insert sorted by index into parked */
	ld_window **pp = &ld->parked;
	while (*pp && (*pp)->w.index < w->w.index)
		pp = &(*pp)->next;
	w->next = *pp;
	*pp = w;
	while (ld->parked && ld->parked->w.index == ld->next_publish) {
		ld_window *p = ld->parked;
		ld->parked = p->next;
		ld->next_publish++;
		for (size_t b = p->skip; b < p->nbatches; b++) {
			ab_batch *bt = p->batches[b];
			bt->index = ld->cfg.start_batch + (uint64_t)atomic_fetch_add(&ld->st_epoch_batches, 1);
			atomic_fetch_add_explicit(&ld->st_batches, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&ld->st_rows, bt->nrows, memory_order_relaxed);
			/* The ring holds max_windows windows of batches: never full. */
			if (ab_ring_push(ld->ring, bt) != 0)
				abort();
		}
	}
	int done = ld->next_publish == ld->nwindows;
	pthread_mutex_unlock(&ld->mu);
	if (done)
		ab_ring_close(ld->ring);
}

static void batch_recycle(ab_loader *ld, ab_batch *b)
{
	pthread_mutex_lock(&ld->mu);
	b->next_free = ld->free_batches;
	ld->free_batches = b;
	pthread_mutex_unlock(&ld->mu);
}

static void window_complete(ab_loader *ld, ld_window *w)
{
	if (atomic_load(&ld->error) || atomic_load(&ld->stop)) {
		release_window_ref(ld, w);
		return;
	}
	int rc = assemble(ld, w);
	if (rc) {
		post_error(ld, rc, ab_last_error());
		for (size_t b = 0; b < w->nbatches; b++)
			batch_recycle(ld, w->batches[b]);
		w->nbatches = 0;
		release_window_ref(ld, w);
		return;
	}
	/* Batches before a checkpoint's position are not handed out. */
	size_t skip = w->skip < w->nbatches ? w->skip : w->nbatches;
	for (size_t b = 0; b < skip; b++)
		batch_recycle(ld, w->batches[b]);
	atomic_fetch_add(&w->refs, (unsigned)(w->nbatches - skip));
	w->published = w->nbatches - skip;
	atomic_store(&w->handed, 0);
	atomic_store(&w->held, 0);
	publish(ld, w);
	release_window_ref(ld, w); /* the assembly reference */
}

/* ------------------------------------------------------------ the event loop */

static void push_task(ab_loader *ld, ld_read *r, ld_window *w)
{
	ld_task *t = r ? &r->task : &w->fill_task;
	t->read = r;
	t->win = w;
	t->next = NULL;
	pthread_mutex_lock(&ld->mu);
	if (ld->task_tail)
		ld->task_tail->next = t;
	else
		ld->task_head = t;
	ld->task_tail = t;
	pthread_cond_signal(&ld->task_cv);
	pthread_mutex_unlock(&ld->mu);
}

static void handle_completion(ab_loader *ld, ab_io_req *req)
{
	ld_read *r = req->user;
	ld_window *w = r->win;
	fd_unpin(ld, r); /* the kernel is done with the file */
	if (r->own_fd && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
		ld->own_open--;
	}
	atomic_fetch_add_explicit(&ld->st_bytes_read, req->len, memory_order_relaxed);
	ab_hist_record(&ld->read_lat, req->complete_ns > req->submit_ns ? req->complete_ns - req->submit_ns : 0);
	if (req->result < 0 || (uint64_t)req->result < r->need) {
		char where[1024];
		unit_where(&w->units[r->unit_first], where, sizeof where);
		char msg[1400];
		if (req->result < 0)
			snprintf(msg, sizeof msg, "%s: read of %u bytes at offset %llu failed: %s", where, req->len,
				 (unsigned long long)req->offset, strerror((int)-req->result));
		else
			snprintf(msg, sizeof msg, "%s: truncated: read %lld of %llu bytes at offset %llu", where,
				 (long long)req->result, (unsigned long long)r->need, (unsigned long long)req->offset);
		post_error(ld, req->result < 0 ? AB_EIO : AB_ECORRUPT, msg);
	}
	push_task(ld, r, w);
}

static void *io_main(void *arg)
{
	ab_loader *ld = arg;
	size_t next_plan = ld->first_window;
	/* windows whose reads are not all submitted yet, in plan order */
	ld_window *pending[256];
	size_t npending = 0;
	ab_io_req *batch[256];
	unsigned qd = ab_io_queue_depth(ld->io);
	for (;;) {
		if (atomic_load(&ld->error) || atomic_load(&ld->stop))
			break;
		/* Plan while credits allow. */
		pthread_mutex_lock(&ld->mu);
		unsigned credits = ld->credits;
		pthread_mutex_unlock(&ld->mu);
		while (credits > 0 && next_plan < ld->nwindows && npending < 256) {
			ld_window *w = NULL;
			int rc = plan_window(ld, next_plan, &w);
			if (rc) {
				char where[64];
				snprintf(where, sizeof where, "planning window %zu: ", next_plan);
				ab_error_prefix(rc, "%s", where);
				post_error(ld, rc, ab_last_error());
				break;
			}
			pthread_mutex_lock(&ld->mu);
			ld->credits--;
			credits = ld->credits;
			pthread_mutex_unlock(&ld->mu);
			w->skip = next_plan == ld->first_window ? ld->first_skip : 0;
			next_plan++;
			pending[npending++] = w;
		}
		if (atomic_load(&ld->error))
			break;
		/* Submit as many reads as the queue has room for. */
		unsigned inflight = ab_io_inflight(ld->io);
		unsigned room = qd > inflight ? qd - inflight : 0;
		unsigned nsub = 0;
		int fd_wait = 0;
		while (npending && nsub < room && nsub < 256 && !fd_wait) {
			ld_window *w = pending[0];
			while (w->next_submit < w->nreads && nsub < room && nsub < 256) {
				ld_read *r = &w->reads[w->next_submit];
				int frc = read_fd(ld, r);
				if (frc < 0) {
					post_error(ld, frc, ab_last_error());
					fd_wait = 1;
					break;
				}
				if (frc > 0) {
					/* out of open-file budget: wait for completions */
					fd_wait = 1;
					break;
				}
				w->next_submit++;
				batch[nsub++] = &r->req;
				atomic_fetch_add_explicit(&ld->st_reads, 1, memory_order_relaxed);
			}
			if (w->next_submit == w->nreads) {
				/* all reads out: the no-read task can go */
				memmove(pending, pending + 1, (npending - 1) * sizeof *pending);
				npending--;
				push_task(ld, NULL, w);
			}
		}
		if (nsub) {
			unsigned done = 0;
			while (done < nsub) {
				int n = ab_io_submit(ld->io, batch + done, nsub - done);
				if (n < 0) {
					post_error(ld, n, ab_last_error());
					break;
				}
				if (n == 0)
					break;
				done += (unsigned)n;
			}
		}
		inflight = ab_io_inflight(ld->io);
		atomic_store_explicit(&ld->st_inflight, inflight, memory_order_relaxed);
		if (inflight) {
			ab_io_req *done[256];
			int more = npending > 0 || (credits > 0 && next_plan < ld->nwindows);
			int n = ab_io_reap(ld->io, done, 256, more && inflight < qd && !fd_wait ? 0 : 1);
			if (n < 0) {
				post_error(ld, n, ab_last_error());
				break;
			}
			for (int i = 0; i < n; i++)
				handle_completion(ld, done[i]);
			continue;
		}
		if (fd_wait) {
			/* nothing in flight holds a file, yet none could be had */
			if (!atomic_load(&ld->error))
				post_error(ld, AB_EIO, "no data file can be opened within the open-file limit");
			break;
		}
		if (npending)
			continue;
		if (next_plan == ld->nwindows)
			break;
		/* Nothing in flight, nothing to submit: wait for a credit. */
		pthread_mutex_lock(&ld->mu);
		while (ld->credits == 0 && !atomic_load(&ld->error) && !atomic_load(&ld->stop))
			pthread_cond_wait(&ld->cv, &ld->mu);
		pthread_mutex_unlock(&ld->mu);
	}
	/* Wind down: every submitted read must complete before buffers go. */
	while (ab_io_inflight(ld->io)) {
		ab_io_req *done[256];
		int n = ab_io_reap(ld->io, done, 256, 1);
		if (n < 0)
			break;
		for (int i = 0; i < n; i++)
			handle_completion(ld, done[i]);
	}
	/* Windows planned but not fully submitted: account their tasks. */
	for (size_t i = 0; i < npending; i++) {
		ld_window *w = pending[i];
		size_t unsent = w->nreads - w->next_submit;
		for (size_t k = w->next_submit; k < w->nreads; k++)
			fd_unpin(ld, &w->reads[k]);
		for (size_t k = w->next_submit; k < w->nreads; k++)
			if (w->reads[k].own_fd && w->reads[k].fd >= 0) {
				close(w->reads[k].fd);
				w->reads[k].fd = -1;
			}
		/* unsent reads + the no-read task */
		if (atomic_fetch_sub(&w->tasks_left, unsent + 1) == unsent + 1)
			window_complete(ld, w);
	}
	if (ld->nwindows == 0)
		ab_ring_close(ld->ring);
	return NULL;
}

/* ------------------------------------------------------------ epochs */

static void stop_epoch(ab_loader *ld)
{
	if (!ld->running)
		return;
	atomic_store(&ld->stop, 1);
	/* Consumers asleep in ab_loader_next wake up and see the end. */
	ab_ring_close(ld->ring);
	pthread_mutex_lock(&ld->mu);
	pthread_cond_broadcast(&ld->cv);
	pthread_mutex_unlock(&ld->mu);
	pthread_join(ld->io_thread, NULL);
	/* The event loop has accounted every task; let the workers drain them. */
	pthread_mutex_lock(&ld->mu);
	ld->workers_quit = 1;
	pthread_cond_broadcast(&ld->task_cv);
	pthread_mutex_unlock(&ld->mu);
	for (unsigned i = 0; i < ld->nworkers; i++)
		pthread_join(ld->workers[i], NULL);
	free(ld->workers);
	ld->workers = NULL;
	ld->nworkers = 0;
	/* Batches never handed out go back (their windows with them). */
	void *item;
	while (ab_ring_pop(ld->ring, &item) == 0)
		ab_batch_release(item);
	/* Windows parked for publication: release their batches too. */
	while (ld->parked) {
		ld_window *w = ld->parked;
		ld->parked = w->next;
		for (size_t b = w->skip; b < w->nbatches; b++)
			ab_batch_release(w->batches[b]);
	}
	ab_io_destroy(ld->io);
	ld->io = NULL;
	ab_sampler_destroy(ld->sampler);
	ld->sampler = NULL;
	fd_close_all(ld);
	ld->running = 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Bytes of the files behind the loader's arrays (for the auto I/O mode). */
static uint64_t data_bytes(ab_loader *ld)
{
	uint64_t total = 0;
	for (size_t i = 0; i < ld->nsrc; i++) {
		const ld_source *s = &ld->src[i];
		if (s->kind == SRC_ARRAY) {
			total += s->nrows * ld->row_items * ab_dtype_size(s->dtype);
		} else if (s->kind == SRC_CSR) {
			total += s->csr->nnz * (ab_dtype_size(s->dtype) + ab_dtype_size(s->csr->indices->m.dt.dt));
		}
	}
	return total;
}

int ab_loader_start(ab_loader *ld, uint64_t epoch)
{
	if (!ld)
		return ab_error_set(AB_EINVAL, "ab_loader_start: null argument");
	stop_epoch(ld);
	int rc = make_sampler(ld, epoch, &ld->sampler);
	if (rc)
		return rc;
	if (ld->n_obs_names && !ld->obs) {
		ld->obs = calloc(ld->n_obs_names, sizeof *ld->obs);
		if (!ld->obs) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < ld->n_obs_names; i++) {
			if ((rc = ld_obs_load(ld, ld->obs_names[i], &ld->obs[i]))) {
				for (size_t k = 0; k < i; k++)
					ld_obs_free(&ld->obs[k]);
				free(ld->obs);
				ld->obs = NULL;
				goto fail;
			}
		}
	}
	ld->epoch = epoch;
	ld->nwindows = ab_sampler_nwindows(ld->sampler);
	/* Resume: find the window holding batch start_batch. */
	ld->first_window = 0;
	ld->first_skip = 0;
	uint64_t skip = ld->cfg.start_batch;
	while (skip && ld->first_window < ld->nwindows) {
		ab_window w;
		if ((rc = ab_sampler_window(ld->sampler, ld->first_window, &w)))
			goto fail;
		size_t nb = w.nbatches;
		ab_window_free(&w);
		if (skip < nb) {
			ld->first_skip = (size_t)skip;
			break;
		}
		skip -= nb;
		ld->first_window++;
	}
	/* I/O mode: direct for data much larger than the page cache can hold. */
	int direct = ld->cfg.io_mode == AB_IO_MODE_DIRECT;
	if (ld->cfg.io_mode == AB_IO_MODE_AUTO) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
		direct = ram && data_bytes(ld) > ram / 2;
	}
	ld->direct = direct;
	ld->align = direct ? 0 : 1;
	ld->reg_tried = 0; /* the new ring registers the pool and files again */
	ld->files_tried = 0;
	ld->file_slots = 0;
	ld->note[0] = '\0';
	ab_io_config ic = { 0 };
	ic.kind = ld->cfg.backend == AB_BACKEND_PREAD ? AB_IO_PREAD : AB_IO_URING;
	ic.queue_depth = ld->cfg.queue_depth;
	ic.threads = ld->cfg.threads < 4 ? 4 : ld->cfg.threads;
	const char *why = NULL;
	if ((rc = ab_io_create(&ic, &ld->io, &why)))
		goto fail;
	snprintf(ld->backend_name, sizeof ld->backend_name, "%s", ab_io_name(ld->io));
	if (why) {
		if (ld->cfg.backend == AB_BACKEND_URING) {
			/* `why` ends in "; using pread pool", which is not what
			 * happens here: the backend asked for is refused. */
			size_t n = strcspn(why, ";");
			rc = ab_error_set(AB_EUNSUPPORTED, "%.*s: the uring backend cannot run (choose the pread "
					  "backend, or the default, which falls back to it)", (int)n, why);
			goto fail;
		}
		snprintf(ld->note, sizeof ld->note, "%s", why);
	}
	if (!ld->ring) {
		size_t cap = 0;
		ab_window w;
		if (ld->nwindows && (rc = ab_sampler_window(ld->sampler, 0, &w)) == 0) {
			cap = w.nbatches;
			ab_window_free(&w);
		} else if (rc) {
			goto fail;
		}
		cap = (cap ? cap : 1) * ld->cfg.max_windows + 2;
		if (!(ld->ring = ab_ring_create(cap))) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
	} else {
		ab_ring_reopen(ld->ring);
	}
	raise_fd_limit();
	ld->fd_budget = fd_budget();
	ld->own_open = 0;
	atomic_store(&ld->stop, 0);
	atomic_store(&ld->error, 0);
	ld->errmsg[0] = '\0';
	pthread_mutex_lock(&ld->mu);
	ld->gen++;
	ld->credits = ld->cfg.max_windows;
	ld->held_windows = 0;
	ld->stalled_at = 0;
	pthread_mutex_unlock(&ld->mu);
	ld->next_publish = ld->first_window;
	ld->workers_quit = 0;
	ld->task_head = ld->task_tail = NULL;
	atomic_store(&ld->st_epoch_batches, 0);
	ld->workers = calloc(ld->cfg.threads, sizeof *ld->workers);
	if (!ld->workers) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	ld->running = 1;
	for (unsigned i = 0; i < ld->cfg.threads; i++) {
		if (pthread_create(&ld->workers[i], NULL, worker_main, ld) != 0)
			break;
		ld->nworkers++;
	}
	if (ld->nworkers == 0 || pthread_create(&ld->io_thread, NULL, io_main, ld) != 0) {
		pthread_mutex_lock(&ld->mu);
		ld->workers_quit = 1;
		pthread_cond_broadcast(&ld->task_cv);
		pthread_mutex_unlock(&ld->mu);
		for (unsigned i = 0; i < ld->nworkers; i++)
			pthread_join(ld->workers[i], NULL);
		free(ld->workers);
		ld->workers = NULL;
		ld->nworkers = 0;
		ld->running = 0;
		rc = ab_error_set(AB_ENOMEM, "cannot start loader threads");
		goto fail;
	}
	if (ld->first_window >= ld->nwindows)
		ab_ring_close(ld->ring);
	return 0;
fail:
	ab_io_destroy(ld->io);
	ld->io = NULL;
	ab_sampler_destroy(ld->sampler);
	ld->sampler = NULL;
	return rc;
}

void ab_loader_stop(ab_loader *ld)
{
	if (ld)
		stop_epoch(ld);
}

/* Every window's batches handed out and none of those windows released: no
 * batch can come until a consumer releases one. Under ld->mu. */
static int stalled_locked(const ab_loader *ld)
{
	return ld->held_windows >= ld->cfg.max_windows;
}

/* A batch leaves the ring: when it is the last of its window, the window is
 * held wholly by consumers (counted until its last batch is released). */
static void note_handed(ab_loader *ld, ab_batch *b)
{
	ld_window *w = b->win;
	if (atomic_fetch_add(&w->handed, 1) + 1 != w->published)
		return;
	pthread_mutex_lock(&ld->mu);
	if (w->gen == ld->gen) {
		atomic_store(&w->held, 1);
		if (++ld->held_windows == ld->cfg.max_windows)
			ld->stalled_at = ab_now_ns(); /* from now on nothing can come */
	}
	pthread_mutex_unlock(&ld->mu);
}

/* How often a waiting consumer looks for a stall, and the stall time by
 * default. */
#define STALL_POLL_NS 50000000u
#define STALL_DEFAULT_MS 10000u

int ab_loader_next_timed(ab_loader *ld, ab_batch **batch, int64_t timeout_ms)
{
	if (!ld || !batch)
		return ab_error_set(AB_EINVAL, "ab_loader_next: null argument");
	*batch = NULL;
	if (!atomic_load(&ld->running))
		return ld->gen ? AB_END /* stopped */
			       : ab_error_set(AB_EINVAL, "no epoch running: call ab_loader_start first");
	uint64_t t0 = ab_now_ns();
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : ab_ring_deadline((uint64_t)timeout_ms * 1000000u);
	uint64_t stall_ns = (uint64_t)(ld->cfg.stall_ms ? ld->cfg.stall_ms : STALL_DEFAULT_MS) * 1000000u;
	void *item;
	int r = ab_ring_pop(ld->ring, &item);
	while (r != 0) {
		if (atomic_load(&ld->error) != 0) {
			r = 1;
			break;
		}
		/* Sleep in slices: between them, look for a stall and the
		 * caller's deadline. */
		uint64_t slice = ab_ring_deadline(STALL_POLL_NS);
		r = ab_ring_pop_wait_until(ld->ring, &item, slice < deadline ? slice : deadline);
		if (r != 2)
			break;
		/* The stall's start is the loader's, not this call's: a caller
		 * that waits in short timed calls sees it as one long wait. */
		pthread_mutex_lock(&ld->mu);
		int stalled = stalled_locked(ld);
		unsigned held = ld->held_windows;
		uint64_t since = ld->stalled_at;
		pthread_mutex_unlock(&ld->mu);
		if (stalled && since && ab_now_ns() - since >= stall_ns)
			return ab_error_set(AB_ESTALL,
					    "stalled: the consumers hold batches of all %u windows (max_windows %u) and "
					    "released none for %llu ms, so no batch can be made: release batches sooner "
					    "(keep fewer, or copy what you keep; in Python: copy=True), or raise max_windows",
					    held, ld->cfg.max_windows, (unsigned long long)(stall_ns / 1000000u));
		if (deadline != UINT64_MAX && ab_ring_deadline(0) >= deadline)
			return AB_TIMEOUT;
	}
	/* A batch of the first window cannot be ready before it is asked for
	 * (the loader starts with ab_loader_start): its wait is the time to
	 * the first batch, kept apart from the steady-state waits. */
	uint64_t waited = ab_now_ns() - t0;
	if (r == 0 && ((ab_batch *)item)->win->w.index == ld->first_window)
		ab_hist_record(&ld->first_lat, waited);
	else
		ab_hist_record(&ld->wait_lat, waited);
	if (r == 0)
		note_handed(ld, item);
	int err = atomic_load(&ld->error);
	if (err) {
		if (r == 0)
			ab_batch_release(item);
		pthread_mutex_lock(&ld->mu);
		ab_error_set(err, "%s", ld->errmsg);
		pthread_mutex_unlock(&ld->mu);
		return err;
	}
	if (r != 0)
		return AB_END;
	*batch = item;
	return 0;
}

int ab_loader_next(ab_loader *ld, ab_batch **batch)
{
	return ab_loader_next_timed(ld, batch, -1);
}

void ab_batch_release(ab_batch *b)
{
	if (!b)
		return;
	ab_loader *ld = b->ld;
	ld_window *w = b->win;
	b->win = NULL;
	batch_recycle(ld, b);
	if (w)
		release_window_ref(ld, w);
}

int ab_batch_get_view(const ab_batch *b, ab_batch_view *v)
{
	if (!b || !v)
		return ab_error_set(AB_EINVAL, "ab_batch_get_view: null argument");
	const ab_loader *ld = b->ld;
	memset(v, 0, sizeof *v);
	v->epoch = b->epoch;
	v->index = b->index;
	v->nrows = b->nrows;
	v->dtype = ld->cfg.to_float32 ? AB_DT_FLOAT32 : ld->out_dtype;
	v->sparse = ld->sparse;
	v->rows = b->rows;
	v->n_obs = ld->n_obs_names;
	v->obs = b->obs;
	if (ld->sparse) {
		v->indptr = b->indptr;
		v->indices = b->indices;
		v->values = b->data;
		v->nnz = b->nnz;
		v->n_cols = ld->n_cols;
	} else {
		v->data = b->data;
		v->row_items = ld->row_items;
	}
	return 0;
}

void ab_loader_reset_stats(ab_loader *ld)
{
	if (!ld)
		return;
	atomic_store(&ld->st_rows, 0);
	atomic_store(&ld->st_batches, 0);
	atomic_store(&ld->st_bytes_read, 0);
	atomic_store(&ld->st_bytes_decoded, 0);
	atomic_store(&ld->st_reads, 0);
	ab_hist_reset(&ld->read_lat);
	ab_hist_reset(&ld->wait_lat);
	ab_hist_reset(&ld->first_lat);
}

int ab_loader_get_stats(ab_loader *ld, ab_loader_stats *st)
{
	if (!ld || !st)
		return ab_error_set(AB_EINVAL, "ab_loader_get_stats: null argument");
	memset(st, 0, sizeof *st);
	st->rows = atomic_load(&ld->st_rows);
	st->batches = atomic_load(&ld->st_batches);
	st->bytes_read = atomic_load(&ld->st_bytes_read);
	st->bytes_decoded = atomic_load(&ld->st_bytes_decoded);
	st->reads = atomic_load(&ld->st_reads);
	st->reads_in_flight = atomic_load(&ld->st_inflight);
	st->threads = ld->cfg.threads;
	st->registered_buffers = ld->reg_active;
	st->registered_files = ld->registered_files;
	st->queue_depth = ld->cfg.queue_depth;
	const double q[4] = { 0.5, 0.9, 0.99, 0.999 };
	for (int i = 0; i < 4; i++)
		st->read_lat_us[i] = ab_hist_quantile(&ld->read_lat, q[i]) / 1000.0;
	st->wait_us[0] = ab_hist_quantile(&ld->wait_lat, 0.5) / 1000.0;
	st->wait_us[1] = ab_hist_quantile(&ld->wait_lat, 0.99) / 1000.0;
	st->first_wait_us[0] = ab_hist_quantile(&ld->first_lat, 0.5) / 1000.0;
	st->first_wait_us[1] = ab_hist_quantile(&ld->first_lat, 0.999999) / 1000.0;
	snprintf(st->backend, sizeof st->backend, "%s", ld->backend_name[0] ? ld->backend_name : "none");
	snprintf(st->io_mode, sizeof st->io_mode, "%s", ld->direct ? "direct" : "buffered");
	snprintf(st->note, sizeof st->note, "%s", ld->note);
	return 0;
}

void ab_loader_destroy(ab_loader *ld)
{
	if (!ld)
		return;
	stop_epoch(ld);
	ab_ring_destroy(ld->ring);
	while (ld->free_batches) {
		ab_batch *b = ld->free_batches;
		ld->free_batches = b->next_free;
		free_x(ld, b->data, b->data_cap);
		free_x(ld, b->indptr, b->indptr_cap);
		free_x(ld, b->indices, b->indices_cap);
		free(b->rows);
		free(b->obs_buf);
		free(b->obs);
		free(b);
	}
	while (ld->free_windows) {
		ld_window *w = ld->free_windows;
		ld->free_windows = w->next;
		free(w->copies);
		free(w->units);
		free(w->reads);
		free(w->arena);
		free(w->rows);
		free(w->xbuf);
		free(w->ibuf);
		free(w->indptr);
		free(w);
	}
	for (unsigned i = 0; i < ld->nreg; i++)
		free(ld->reg_buf[i]);
	free(ld->reg_buf);
	free_obs(ld);
	if (ld->class_loaded)
		ld_obs_free(&ld->class_col);
	free(ld->class_name);
	free(ld->class_w);
	ld_label_weights_free(&ld->class_wl);
	for (size_t i = 0; i < ld->nsrc; i++)
		source_free(&ld->src[i]);
	free(ld->src);
	free(ld->fds);
	pthread_mutex_destroy(&ld->mu);
	for (size_t i = 0; i < ld->lay_cap; i++)
		if (ld->lay_tab[i].lay) {
			ab_blosc_layout_free(ld->lay_tab[i].lay);
			free(ld->lay_tab[i].lay);
		}
	free(ld->lay_tab);
	pthread_mutex_destroy(&ld->lay_mu);
	pthread_cond_destroy(&ld->cv);
	pthread_cond_destroy(&ld->task_cv);
	free(ld);
}
