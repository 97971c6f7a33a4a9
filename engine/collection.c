/* collection.c - the collection writer: the public calls and the run (see
 * annbatch.h, "The collection writer"; collection_impl.h for the parts). */
#include "collection_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- failures, notes and progress */

int cw_oom(void)
{
	return ab_error_set(AB_ENOMEM, "out of memory");
}

int cw_fail(conv *c, const char *fmt, const char *a, const char *b)
{
	(void)c;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	return ab_error_set(AB_EINVAL, fmt, a, b);
#pragma GCC diagnostic pop
}

/* Whether a failure with message `msg` came from running out of file
 * descriptors: the message says so, or the process still is out of them
 * (whatever a reader made of its failed open: "not an HDF5 file", say). */
static int out_of_fds(const char *msg, uint64_t *limit)
{
	if (!msg || !strstr(msg, strerror(EMFILE))) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EMFILE)
			return 0;
	}
	struct rlimit rl;
	*limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
	return 1;
}

int cw_fail_lib(conv *c, int rc, const char *what)
{
	(void)c;
	uint64_t lim;
	if (what && out_of_fds(ab_last_error(), &lim))
		return ab_error_set(AB_EIO, "%s: too many open files (limit %" PRIu64 "; raise it with ulimit -n, "
				    "or convert fewer inputs at once)", what, lim);
	/* most messages already start with the path: say it once */
	const char *msg = ab_last_error();
	size_t l = what ? strlen(what) : 0;
	if (!l || (msg && strncmp(msg, what, l) == 0 && msg[l] == ':'))
		return rc;
	if (!msg || !*msg)
		return ab_error_set(rc, "%s: %s", what, ab_strerror(rc));
	return ab_error_prefix(rc, "%s: ", what);
}

void cw_note(conv *c, const char *fmt, ...)
{
	if (!c->cfg->note)
		return;
	char msg[1400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->cfg->note(msg, c->cfg->ctx);
}

void cw_progress(conv *c, int final)
{
	if (!c->cfg->progress || c->stop)
		return;
	/* the callback at most every 20 ms (and always the last time): the
	 * loops ask often so that a stop is seen soon, whatever the codec */
	double now = now_s();
	if (!final && now - c->last_report < 0.02)
		return;
	c->last_report = now;
	ab_collection_progress p = {
		.rows_done = c->rows_done,
		.total_rows = c->total_rows,
		.bytes_read = c->bytes_in,
		.datasets_done = c->datasets_done,
		.n_datasets = c->n_datasets,
		.elapsed_s = now - c->t0,
		.final = final,
	};
	if (c->cfg->progress(&p, c->cfg->ctx))
		c->stop = 1;
}

/* How many datasets: all rows over --dataset-size, measured in rows, or in
 * bytes of X (the estimate below), rounded up. The Python annbatch writer
 * splits the rows the same way: ceil(total / dataset size) parts of
 * near-equal row counts. X is never held (collection_spill.c), so the size
 * asked is the size made; only when even a dataset's per-row bookkeeping
 * would not fit --memory are more (smaller) datasets made, with a note. */
static uint64_t dataset_count(conv *c)
{
	if (!c->total_rows)
		return 0;
	uint64_t nnz_total = 0;
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		uint64_t nnz;
		if (in->info.x_kind == AB_X_CSR && ab_anndata_x_nnz(in->ad, 0, in->info.n_obs, &nnz) == 0) {
			nnz_total += nnz;
		} else {
			nnz_total += in->info.n_obs * in->info.n_vars / 4; /* a guess for dense */
		}
	}
	size_t isz = ab_dtype_size(c->x_dtype);
	double row_x = c->sparse ? (double)nnz_total / (double)c->total_rows * (double)(isz + 4) + 8
				 : (double)c->n_vars * (double)isz;
	if (row_x < 1)
		row_x = 1;
	uint64_t n = c->ds_rows ? (c->total_rows + c->ds_rows - 1) / c->ds_rows
				: (uint64_t)ceil(row_x * (double)c->total_rows / (double)c->ds_bytes);
	if (n < 1)
		n = 1;
	/* Held a row: its offsets (indptr; in the scratch file), the order and
	 * its merge buffer, src_path, and ~64 bytes for each obs column and
	 * the name (a pointer and a small string, then their copies as
	 * written). Held once: a block of X read and staged twice over, the
	 * batches read back, the writer's chunks; the rest is for rows. */
	double row_mem = (c->sparse ? 16.0 : 8.0) + 20.0 + 64.0 * (double)(c->n_cols + 1);
	double fixed = 3.0 * row_x * (double)c->chunk_size + (double)(16 << 20);
	c->row_x = row_x;
	double room = (double)c->memory - fixed;
	c->row_mem = row_mem;
	c->fixed_mem = fixed;
	uint64_t cap = room > row_mem ? (uint64_t)(room / row_mem) : 1;
	uint64_t need = (c->total_rows + cap - 1) / cap;
	if (n < need) {
		cw_note(c, "a dataset of %" PRIu64 " rows would need more than --memory %.0f MB for its obs and "
			"row offsets: writing %" PRIu64 " datasets instead of %" PRIu64, c->total_rows / n,
			(double)c->memory / 1e6, need, n);
		n = need;
	}
	return n < c->total_rows ? n : c->total_rows;
}

/* Bytes of staged X dataset k of `rows` rows may keep in memory: what its
 * bookkeeping leaves of --memory (half of it: the staging grows by
 * doubling), less what the read-ahead holds. */
static uint64_t x_hold_for(const conv *c, uint64_t rows)
{
	double hold = ((double)c->memory - c->fixed_mem - c->row_mem * (double)rows) / 2 - (double)c->ahead_bytes;
	return hold > 0 ? (uint64_t)hold : 0;
}

/* How many workers read ahead (0: the pieces are read on the calling
 * thread), and what they hold: a slot each, of about four pieces' X (as
 * read, converted, encoded), within a quarter of --memory, at least one
 * worker when threads are asked. */
static void plan_workers(conv *c)
{
	double slot = 4.0 * c->row_x * (double)c->chunk_size;
	unsigned n = c->threads > 1 ? c->threads : 0;
	while (n > 1 && (double)n * slot > (double)c->memory / 4)
		n--;
	c->threads = n ? n : 1;
	c->ahead_bytes = n ? (uint64_t)((double)n * slot) : 0;
}

/* Cuts the blocks, in their order, into the datasets' pieces (np.array_split
 * of the stream of rows: the first total % nds datasets have one row more; a
 * block may straddle two datasets), and marks the pieces of a dataset whose
 * X will not fit in memory to be encoded for the scratch file as they are
 * read. */
static piece *plan_pieces(conv *c, const block *blocks, const uint64_t *order, uint64_t nb, uint64_t nds,
			  uint64_t *np_out)
{
	piece *p = malloc((nb + nds + 1) * sizeof *p);
	if (!p)
		return NULL;
	size_t isz = ab_dtype_size(c->x_dtype);
	uint64_t np = 0, bi = 0, boff = 0;
	for (uint64_t k = 0; k < nds; k++) {
		uint64_t rows = c->total_rows / nds + (k < c->total_rows % nds), row0 = 0, first = np;
		/* the staged X the dataset will need, when the inputs say */
		uint64_t need = c->sparse ? 0 : rows * c->n_vars * isz;
		int known = 1;
		while (row0 < rows && bi < nb) {
			const block *whole = &blocks[order[bi]];
			uint64_t take = whole->end - whole->start - boff;
			if (take > rows - row0)
				take = rows - row0;
			block b = { whole->in, whole->start + boff, whole->start + boff + take };
			p[np++] = (piece){ b, k, row0, 0 };
			const input *in = &c->in[b.in];
			uint64_t nnz;
			if (c->sparse && in->info.x_kind == AB_X_CSR && ab_anndata_x_nnz(in->ad, b.start, b.end, &nnz) == 0)
				need += nnz * (4 + isz);
			else if (c->sparse)
				known = 0; /* dense into sparse: its zeros are not known yet */
			row0 += take;
			boff += take;
			if (boff == whole->end - whole->start)
				bi++, boff = 0;
		}
		/* with one thread the scratch file's thread encodes, beside the
		 * reading; with workers, they do */
		if (c->threads > 1 && known && need > x_hold_for(c, rows))
			for (uint64_t i = first; i < np; i++)
				p[i].encode = 1;
	}
	*np_out = np;
	return p;
}

/* The real path of `p`, which may not exist yet: then its parent's real path
 * and its last component. NULL when not even the parent resolves. */
static char *real_path_of(const char *p)
{
	char *r = realpath(p, NULL);
	if (r || errno != ENOENT)
		return r;
	size_t l = strlen(p);
	while (l > 1 && p[l - 1] == '/')
		l--;
	char *dir = strndup(p, l);
	if (!dir)
		return NULL;
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	char *rd = slash == dir ? strdup("/") : realpath(slash ? (*slash = '\0', dir) : ".", NULL);
	char *out = NULL;
	if (rd && (out = malloc(strlen(rd) + strlen(base) + 2)))
		sprintf(out, "%s%s%s", rd, strcmp(rd, "/") ? "/" : "", base);
	free(rd);
	free(dir);
	return out;
}

/* Whether path `a` is `b` or lies under it (both real paths). */
static int path_under(const char *a, const char *b)
{
	size_t l = strlen(b);
	return strncmp(a, b, l) == 0 && (a[l] == '\0' || a[l] == '/' || (l == 1 && b[0] == '/'));
}

/* Refuses an output that is an input, lies inside one, or holds one: the run
 * would write into what it reads (and a replaced output deletes its input). */
static int check_paths(conv *c, const char *const *paths, size_t n)
{
	char *ro = real_path_of(c->out);
	int ret = 0;
	for (size_t i = 0; ro && i < n && !ret; i++) {
		char *ri = realpath(paths[i], NULL);
		if (!ri)
			continue; /* open_inputs reports it */
		if (path_under(ro, ri))
			ret = cw_fail(c, strcmp(ro, ri) ? "the output %s is inside the input %s; not written"
						     : "the output %s is the input %s; not written",
				   c->out, paths[i]);
		else if (path_under(ri, ro))
			ret = cw_fail(c, "the input %s is inside the output %s; not written", paths[i], c->out);
		free(ri);
	}
	free(ro);
	return ret;
}

/* the sum collection_bytes asks nftw for (nftw passes no user argument; a
 * run is single-threaded, and tree_lock keeps two runs apart) */
static uint64_t tree_bytes;
static pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;

static int add_file_bytes(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p, (void)f;
	if (flag == FTW_F)
		tree_bytes += (uint64_t)st->st_size;
	return 0;
}

/* Bytes of the files under `path`. */
static uint64_t collection_bytes(const char *path)
{
	pthread_mutex_lock(&tree_lock);
	tree_bytes = 0;
	nftw(path, add_file_bytes, 16, FTW_PHYS);
	uint64_t b = tree_bytes;
	pthread_mutex_unlock(&tree_lock);
	return b;
}

static int adopt_existing(conv *c, ab_writer *w, ab_store *old)
{
	char **names;
	size_t n;
	int rc = ab_collection_datasets(old, "", &names, &n);
	if (rc)
		return cw_fail_lib(c, rc, c->out);
	for (size_t i = 0; i < n && !rc; i++)
		rc = ab_writer_adopt(w, c->out, names[i]);
	c->first_dataset = n;
	ab_strings_free(names);
	return rc ? cw_fail_lib(c, rc, c->out) : 0;
}

static int run(conv *c, const char *const *paths, size_t n_paths, ab_collection_summary *sum)
{
	int ret = 0, rc;
	ab_store *old = NULL;
	struct stat sb;
	double t_start = now_s();
	if ((ret = check_paths(c, paths, n_paths)))
		return ret;
	/* Every .h5ad input and every shard being written holds a descriptor:
	 * take the hard limit, as the loader does (a soft 1024 is common). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int adding = stat(c->out, &sb) == 0;
	if (adding) {
		/* An existing collection: its var space is the one to use. */
		char **ds;
		size_t nds;
		if ((rc = ab_store_open(c->out, &old)))
			return cw_fail(c, "%s: exists and is not an annbatch collection; not touched (the output must be a new"
				    " path, or a collection to add to)", c->out, NULL);
		if ((rc = ab_collection_datasets(old, "", &ds, &nds)) || nds == 0) {
			ab_store_close(old);
			if (!rc)
				return cw_fail(c, "%s: exists and is an empty collection", c->out, NULL);
			return cw_fail(c, "%s: exists and is not an annbatch collection; not touched",
				    c->out, NULL);
		}
		ab_anndata *ad;
		rc = ab_anndata_open(old, ds[0], &ad);
		ab_strings_free(ds);
		if (rc) {
			ab_store_close(old);
			return cw_fail_lib(c, rc, c->out);
		}
		ab_column *vc;
		ab_anndata_info ai;
		ab_anndata_get_info(ad, &ai);
		c->sparse = ai.x_kind == AB_X_CSR;
		c->x_dtype = ai.x_dtype;
		c->adding = 1;
		rc = ab_anndata_var_column(ad, "_index", &vc);
		char **vn = NULL;
		size_t nv = 0;
		if (!rc)
			rc = ab_column_read_strings(vc, 0, ai.n_vars, &vn, &nv);
		if (!rc)
			ab_column_close(vc);
		if (rc) {
			ab_anndata_close(ad);
			ab_store_close(old);
			return cw_fail_lib(c, rc, c->out);
		}
		for (size_t i = 0; i < nv; i++)
			ab_strtab_add(&c->vars, vn[i] ? vn[i] : "");
		ab_strings_free_n(vn, nv);
		ret = cw_collection_var_columns(c, ad);
		ab_anndata_close(ad);
		if (ret) {
			ab_store_close(old);
			return ret;
		}
		if (c->var_subset)
			cw_note(c, "the var subset is ignored: %s fixes the var space",
				c->out);
	} else if (c->var_subset && (ret = cw_load_var_subset(c))) {
		return ret;
	}
	int old_sparse = c->sparse;
	if ((ret = cw_open_inputs(c, paths, n_paths, adding || c->var_subset != NULL)))
		goto out;
	/* open_inputs only ever turns sparse on: a sparse collection takes dense
	 * inputs (their zeros dropped), a dense one cannot take sparse inputs. */
	if (adding && !old_sparse && c->sparse) {
		ret = cw_fail(c, "%s: the collection has dense X, an input is sparse", c->out, NULL);
		goto out;
	}
	if ((ret = cw_plan_columns(c)))
		goto out;
	if ((ret = cw_plan_obs_names(c, old)))
		goto out;
	if (!adding && (ret = cw_plan_var_columns(c)))
		goto out;

	/* the blocks, in random order (or input order) */
	uint64_t nblocks = 0;
	for (size_t i = 0; i < c->n_in; i++)
		nblocks += (c->in[i].info.n_obs + c->chunk_size - 1) / c->chunk_size;
	block *blocks = malloc((nblocks ? nblocks : 1) * sizeof *blocks);
	uint64_t *order = malloc((nblocks ? nblocks : 1) * sizeof *order);
	if (!blocks || !order) {
		free(blocks);
		free(order);
		ret = cw_oom();
		goto out;
	}
	uint64_t nb = 0;
	for (size_t i = 0; i < c->n_in; i++)
		for (uint64_t s = 0; s < c->in[i].info.n_obs; s += c->chunk_size) {
			uint64_t e = s + c->chunk_size < c->in[i].info.n_obs ? s + c->chunk_size : c->in[i].info.n_obs;
			blocks[nb] = (block){ (uint32_t)i, s, e };
			order[nb] = nb;
			nb++;
		}
	ab_rng r;
	ab_rng_seed(&r, c->seed, 0x5348554646ull);
	if (c->shuffle)
		ab_rng_shuffle(&r, order, nb);
	uint64_t nds = dataset_count(c);
	c->n_datasets = nds;
	plan_workers(c);
	uint64_t np = 0;
	piece *pieces = plan_pieces(c, blocks, order, nb, nds, &np);
	if (!pieces) {
		free(blocks);
		free(order);
		ret = cw_oom();
		goto out;
	}

	ab_writer_config wc;
	ab_writer_config_init(&wc);
	wc.overwrite = adding;
	ab_writer *w;
	if ((rc = ab_writer_create(c->out, &wc, &w))) {
		free(blocks);
		free(order);
		free(pieces);
		ret = cw_fail_lib(c, rc, c->out);
		goto out;
	}
	if (adding && (ret = adopt_existing(c, w, old)))
		goto abort;
	if ((rc = ab_writer_group(w, "", "{\"encoding-type\":\"annbatch-preshuffled\","
				  "\"encoding-version\":\"0.1.0\"}"))) {
		ret = cw_fail_lib(c, rc, c->out);
		goto abort;
	}
	c->t0 = now_s();
	void *scratch = NULL;
	uint64_t scap = 0, pi = 0;
	if (!ret)
		ret = cw_ahead_start(c, pieces, np);
	for (uint64_t k = 0; k < nds && !ret && !c->stop; k++) {
		uint64_t rows = c->total_rows / nds + (k < c->total_rows % nds);
		dset d;
		memset(&d, 0, sizeof d);
		/* X stays in memory while it fits */
		c->x_hold = x_hold_for(c, rows);
		if ((ret = cw_dset_alloc(c, &d, rows)) || (ret = cw_spill_begin(c))) {
			cw_dset_free(c, &d);
			break;
		}
		for (; pi < np && pieces[pi].k == k && !ret && !c->stop; pi++) {
			const piece *p = &pieces[pi];
			input *in = &c->in[p->b.in];
			xblock *x;
			ret = cw_ahead_next(c, &x);
			if (!ret && x->encoded) {
				ret = cw_spill_put(c, &d, in, x, p->row0);
			} else if (!ret) {
				ret = cw_stage_block(c, &d, in, x, p->row0);
				if (!ret)
					ret = cw_spill_block(c, &d, p->row0 + x->nr);
			}
			cw_ahead_release(c);
			if (!ret) {
				cw_h5_lock(c, in);
				ret = cw_read_block_obs(c, &d, &p->b, p->row0, &scratch, &scap);
				cw_h5_unlock(c, in);
			}
			cw_progress(c, 0);
		}
		uint64_t *perm = NULL;
		if (!ret && (c->shuffle || c->n_groupby)) {
			perm = malloc((rows ? rows : 1) * sizeof *perm);
			uint64_t *tmp = malloc((rows ? rows : 1) * sizeof *tmp);
			if (!perm || !tmp) {
				ret = cw_oom();
			} else {
				for (uint64_t i = 0; i < rows; i++)
					perm[i] = i;
				ab_rng pr;
				ab_rng_seed(&pr, c->seed, 0x5045524d00ull + k);
				if (c->shuffle)
					ab_rng_shuffle(&pr, perm, rows);
				if (c->n_groupby) {
					sort_ctx sc = { c, &d };
					cw_merge_sort(perm, tmp, rows, &sc);
				}
			}
			free(tmp);
		}
		if (!ret && !c->stop)
			ret = cw_write_dataset(c, w, &d, perm, c->first_dataset + k);
		cw_spill_end(c);
		free(perm);
		cw_dset_free(c, &d);
		c->datasets_done = k + 1;
	}
	cw_ahead_stop(c);
	free(pieces);
	free(scratch);
	if (c->stop) {
		/* whatever failed on the way out of the loops, the stop is the cause */
		ret = ab_error_set(AB_ECANCELED, "stopped by the caller; %s left as it was", c->out);
		goto abort;
	}
	if (ret)
		goto abort;
	for (size_t i = 0; c->adding && i < c->n_in; i++)
		if (c->in[i].check_cast) {
			cw_note(c, "%s: X %s into the collection's %s: every "
				"value was checked to fit", c->in[i].path, ab_dtype_name(c->in[i].info.x_dtype),
				ab_dtype_name(c->x_dtype));
		}
	for (size_t i = 0; c->adding && i < c->n_in; i++)
		if (c->in[i].vars_dropped) {
			cw_note(c, "%s: drop_new_genes (--drop-new-genes) dropped %" PRIu64
				" genes not in the collection, %" PRIu64 " non-zero values", c->in[i].path,
				c->in[i].vars_dropped, c->in[i].values_dropped);
		}
	free(blocks);
	free(order);
	cw_progress(c, 1);
	if (c->stop) {
		/* a stop asked at the last report: nothing is committed */
		ret = ab_error_set(AB_ECANCELED, "stopped by the caller; %s left as it was", c->out);
		ab_writer_abort(w);
		goto out;
	}
	if ((rc = ab_writer_commit(w))) {
		ret = cw_fail_lib(c, rc, c->out);
	} else if (sum) {
		sum->datasets_written = nds;
		sum->first_dataset = c->first_dataset;
		sum->rows = c->total_rows;
		sum->n_vars = c->n_vars;
		sum->x_dtype = c->x_dtype;
		sum->x_kind = c->sparse ? AB_X_CSR : AB_X_DENSE;
		sum->bytes_on_disk = collection_bytes(c->out);
		sum->seconds = now_s() - t_start;
	}
	goto out;
abort:
	free(blocks);
	free(order);
	ab_writer_abort(w);
out:
	if (old)
		ab_store_close(old);
	return ret;
}

static void conv_free(conv *c)
{
	cw_ahead_stop(c);
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		for (size_t j = 0; in->obs && j < c->n_cols; j++)
			ab_column_close(in->obs[j]);
		free(in->obs);
		ab_column_close(in->names);
		for (size_t j = 0; in->catmap && j < c->n_cols; j++)
			free(in->catmap[j]);
		free(in->catmap);
		free(in->colmap);
		ab_anndata_close(in->ad);
	}
	free(c->in);
	for (size_t j = 0; j < c->n_cols; j++) {
		free(c->cols[j].name);
		ab_strtab_free(&c->cols[j].cats);
	}
	free(c->cols);
	free(c->groupby);
	ab_strtab_free(&c->vars);
	if (c->obs_all)
		ab_strings_free_n(c->obs_all, c->obs_got);
	for (size_t j = 0; j < c->n_vcols; j++)
		cw_vcol_free(c, &c->vcols[j]);
	free(c->vcols);
	cw_spill_close(c);
}

void ab_collection_config_init(ab_collection_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->shuffle = 1;
	cfg->shuffle_chunk_size = 1000;
	cfg->dataset_bytes = 20000000000ull;
	ab_anndata_write_config_init(&cfg->write);
	/* Blosc blocks of 16 KiB, each one lz4 stream (libblosc's own choice
	 * is 256 KiB, split by byte plane, which it never makes smaller than
	 * 64 KiB): the loader decodes only the blocks holding a request's
	 * rows, and with its 16-256-row chunks these decode 1.1-2x fewer bytes
	 * a row than 256 KiB blocks, for about 6% more bytes on disk (README,
	 * "The layout convert writes"). */
	cfg->write.blosc_blocksize = AB_COLLECTION_BLOSC_BLOCKSIZE;
	cfg->write.blosc_unsplit = 1;
}

int ab_collection_write(const char *path, const char *const *inputs, size_t n_inputs,
			const ab_collection_config *cfg_in, ab_collection_summary *summary)
{
	if (!path || !*path || (n_inputs && !inputs))
		return ab_error_set(AB_EINVAL, "ab_collection_write: no output path or null inputs");
	if (!n_inputs)
		return ab_error_set(AB_EINVAL, "ab_collection_write: no inputs");
	for (size_t i = 0; i < n_inputs; i++)
		if (!inputs[i] || !*inputs[i])
			return ab_error_set(AB_EINVAL, "ab_collection_write: input %zu is empty", i);
	ab_collection_config def;
	if (!cfg_in) {
		ab_collection_config_init(&def);
		cfg_in = &def;
	}
	if (!cfg_in->shuffle_chunk_size)
		return ab_error_set(AB_EINVAL, "shuffle chunk size must be at least 1");
	if (!cfg_in->dataset_rows && !cfg_in->dataset_bytes)
		return ab_error_set(AB_EINVAL, "dataset size must be at least 1 (rows or bytes)");
	if (!cfg_in->write.n_obs_per_chunk)
		return ab_error_set(AB_EINVAL, "n_obs_per_chunk must be at least 1");
	if ((cfg_in->n_obs_columns && !cfg_in->obs_columns) || (cfg_in->n_groupby && !cfg_in->groupby))
		return ab_error_set(AB_EINVAL, "ab_collection_write: a column count without its list");
	if (summary)
		memset(summary, 0, sizeof *summary);
	conv c;
	memset(&c, 0, sizeof c);
	c.out = path;
	c.spill_fd = -1;
	c.cfg = cfg_in;
	c.var_subset = cfg_in->var_subset_path;
	c.shuffle = cfg_in->shuffle != 0;
	c.chunk_size = cfg_in->shuffle_chunk_size;
	c.ds_rows = cfg_in->dataset_rows;
	c.ds_bytes = cfg_in->dataset_bytes;
	c.seed = cfg_in->seed;
	c.make_var_unique = cfg_in->make_var_unique;
	c.drop_new_genes = cfg_in->drop_new_genes;
	c.o = cfg_in->write;
	c.memory = cfg_in->memory ? cfg_in->memory : CW_DEFAULT_MEMORY;
	if (cfg_in->threads) {
		c.threads = cfg_in->threads;
	} else {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c.threads = n > 0 ? (unsigned)n : 1;
	}
	if (c.threads > 256)
		c.threads = 256;
	int rc = run(&c, inputs, n_inputs, summary);
	/* the message of a failure outlives the clean-up */
	char msg[1024] = "";
	if (rc)
		snprintf(msg, sizeof msg, "%s", ab_last_error());
	conv_free(&c);
	if (rc)
		ab_error_set(rc, "%s", msg);
	return rc;
}
