/* cmd_synth.c - `annbatch synth`: synthetic single-cell AnnData stores. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "writer_opts.h"
#ifdef AB_HAVE_HDF5
#include "h5ad_write.h"
#endif
#include "distributions.h"

static const char synth_usage[] =
	"Usage: annbatch synth OUT [options]\n"
	"\n"
	"Writes a synthetic single-cell AnnData store for demos, tests and benchmarks:\n"
	"negative-binomial counts as float32 in a csr_matrix X with sorted indices, a\n"
	"per-cell sequencing depth so the non-zeros per row vary (mean --mean-nnz),\n"
	"50 cell types with their own marker genes, obs cell_type (categorical) and\n"
	"donor (int64), var names gene_00000... The same --seed gives the same bytes.\n"
	"\n"
	"Options:\n"
	"  --n-obs N             rows (cells), 10000\n"
	"  --n-vars N            columns (genes), 20000\n"
	"  --mean-nnz N          mean non-zeros per row, 2000 (at most n_vars/2)\n"
	"  --dense               X as a dense float32 array instead of csr_matrix\n"
	"  --format F            zarr3 (default), zarr2, or h5ad (one HDF5 file laid\n"
	"                        out as anndata 0.8 writes it)\n"
	"  --compressor C        blosc-lz4 (default), blosc-zstd, zstd, gzip, none;\n"
	"                        h5ad: none (default) or gzip\n"
	"  --blosc-blocksize SIZE  bytes per blosc block asked of libblosc, 0 = its\n"
	"                        own choice (default)\n"
	"  --blosc-unsplit       one lz4/zstd stream a blosc block (blocks of the\n"
	"                        size asked); --blosc-split: one a byte plane, as\n"
	"                        libblosc does by default (the default here)\n"
	"  --n-obs-per-chunk N   rows per X chunk (dense), or their mean non-zeros\n"
	"                        per chunk of data/indices (sparse); 64\n"
	"  --shard-size SIZE     bytes per shard (zarr3), 1GB; e.g. 256MB, 1GiB\n"
	"  --shard-rows N        rows per shard instead (sparse: N rows' worth of\n"
	"                        non-zeros on average), whole chunks\n"
	"  --no-shard            zarr3 without sharding (one file per chunk)\n"
	"  --seed N              random seed, 0\n"
	"  --force               replace OUT if it exists (a zarr store only; for\n"
	"                        h5ad, a regular file)\n"
	"  -h, --help            this help\n"
	"\n"
	"OUT appears only when complete (written under a temporary name, then renamed).\n";

enum { O_NOBS = 256, O_NVARS, O_MEANNNZ, O_DENSE, O_FORMAT, O_NOSHARD, O_SEED, O_FORCE };

#define N_TYPES 50
#define N_DONORS 8
#define BLOCK_ROWS 1024

typedef struct synth {
	uint64_t n_obs, n_vars, mean_nnz, seed;
	double *cdf;          /* N_TYPES cumulative gene weights, n_vars each */
	double *weight;       /* relative expression level per gene (mean 1)  */
	double type_cdf[N_TYPES];
	uint8_t *mark;        /* per-gene scratch for distinct sampling        */
} synth;

/* Gene levels are lognormal (a few genes take most of the counts, as in real
 * data); each cell type multiplies its own ~2% marker genes by 8, so types
 * differ in which genes are non-zero, not only in how many. */
static int synth_init(synth *s)
{
	rng r;
	rng_seed(&r, s->seed, UINT64_MAX);
	s->weight = malloc(s->n_vars * sizeof(double));
	s->cdf = malloc((size_t)N_TYPES * s->n_vars * sizeof(double));
	s->mark = calloc(s->n_vars ? s->n_vars : 1, 1);
	if (!s->weight || !s->cdf || !s->mark)
		return -1;
	double sum = 0;
	for (uint64_t g = 0; g < s->n_vars; g++) {
		s->weight[g] = exp(1.2 * rng_normal(&r));
		sum += s->weight[g];
	}
	for (uint64_t g = 0; g < s->n_vars; g++)
		s->weight[g] *= (double)s->n_vars / sum;
	for (int t = 0; t < N_TYPES; t++) {
		double *c = s->cdf + (size_t)t * s->n_vars, acc = 0;
		for (uint64_t g = 0; g < s->n_vars; g++) {
			uint64_t h = (g + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(t + 1) * 0xC2B2AE3D27D4EB4Full;
			h ^= h >> 29;
			acc += s->weight[g] * ((h % 50) == 0 ? 8.0 : 1.0);
			c[g] = acc;
		}
	}
	/* Zipf-like type frequencies: a few abundant types, a long tail. */
	double acc = 0;
	for (int t = 0; t < N_TYPES; t++) {
		acc += 1.0 / (1.0 + t * 0.3);
		s->type_cdf[t] = acc;
	}
	return 0;
}

static uint64_t pick(const double *cdf, uint64_t n, double u)
{
	double x = u * cdf[n - 1];
	uint64_t lo = 0, hi = n - 1;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (cdf[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/* One cell: its type, donor and sorted (gene, count) pairs. Depends only on
 * (seed, row), so blocks and thread counts never change the output. Returns
 * the number of non-zeros written to idx/val (capacity n_vars / 2 + 1). */
static uint64_t synth_row(synth *s, uint64_t row, int32_t *type, int64_t *donor, int32_t *idx,
			  float *val)
{
	rng r;
	rng_seed(&r, s->seed, row);
	double u = rng_unif(&r);
	int t = 0;
	while (t < N_TYPES - 1 && s->type_cdf[t] < u * s->type_cdf[N_TYPES - 1])
		t++;
	*type = t;
	*donor = (int64_t)rng_below(&r, N_DONORS);
	if (!s->n_vars)
		return 0;
	/* Sequencing depth: lognormal with mean 1, sigma 0.5. */
	double depth = exp(0.5 * rng_normal(&r) - 0.125);
	uint64_t cap = s->n_vars / 2 ? s->n_vars / 2 : 1;
	double want = floor((double)s->mean_nnz * depth + 0.5);
	uint64_t k = want < 1 ? 1 : want > (double)cap ? cap : (uint64_t)want;
	const double *cdf = s->cdf + (size_t)t * s->n_vars;
	uint64_t n = 0;
	for (uint64_t tries = 0; n < k && tries < 20 * k; tries++) {
		uint64_t g = pick(cdf, s->n_vars, rng_unif(&r));
		if (s->mark[g])
			continue;
		s->mark[g] = 1;
		idx[n++] = (int32_t)g;
	}
	qsort(idx, n, sizeof *idx, cmp_i32);
	for (uint64_t i = 0; i < n; i++) {
		s->mark[idx[i]] = 0;
		/* Negative binomial as a gamma-Poisson mixture (dispersion 2),
		 * shifted by one because the entry is a non-zero by choice. */
		double mu = 0.6 * s->weight[idx[i]] * depth;
		val[i] = (float)(1 + rng_poisson(&r, rng_gamma(&r, 2.0) * mu / 2.0));
	}
	return n;
}

/* Draws rows [r0, r0 + nb): their cell types and donors, their non-zeros
 * appended to idx/val, indptr filled in; with `dense`, also the dense rows.
 * Returns the number of non-zeros drawn. Shared by the zarr and h5ad paths
 * so both write the very same numbers for a seed. */
static uint64_t synth_block(synth *s, uint64_t r0, uint64_t nb, int32_t *types, int64_t *donors, int32_t *idx,
			    float *val, int64_t *indptr, float *dense)
{
	uint64_t off = 0;
	for (uint64_t i = 0; i < nb; i++) {
		uint64_t row = r0 + i;
		uint64_t n = synth_row(s, row, &types[row], &donors[row], idx + off, val + off);
		if (dense) {
			float *d = dense + i * s->n_vars;
			memset(d, 0, s->n_vars * sizeof(float));
			for (uint64_t k = 0; k < n; k++)
				d[idx[off + k]] = val[off + k];
		}
		off += n;
		indptr[row + 1] = indptr[row] + (int64_t)n;
	}
	return off;
}

/* Row names "cell_0000042" / "gene_00042" for n rows, carved out of `pool`
 * (24 bytes a name), as both output formats write them. */
static void number_names(char **names, char *pool, uint64_t n, const char *prefix, int digits)
{
	for (uint64_t i = 0; i < n; i++) {
		names[i] = pool + i * 24;
		snprintf(names[i], 24, "%s%0*llu", prefix, digits, (unsigned long long)i % 10000000000ULL);
	}
}

/* The cell type labels "type_00".."type_49". */
static void type_labels(char cats[][16], const char **catp)
{
	for (int t = 0; t < N_TYPES; t++) {
		snprintf(cats[t], 16, "type_%02d", t);
		catp[t] = cats[t];
	}
}

static int write_obs_var(ab_writer *w, synth *s, const int32_t *types, const int64_t *donors,
			 const ab_anndata_write_config *o)
{
	static const char *const cols[] = { "cell_type", "donor" };
	int rc = ab_writer_dataframe_group(w, "obs", cols, 2);
	uint64_t nmax = s->n_obs > s->n_vars ? s->n_obs : s->n_vars;
	char **names = calloc(nmax ? nmax : 1, sizeof(char *));
	char *pool = malloc((nmax ? nmax : 1) * 24);
	if (!names || !pool) {
		free(names);
		free(pool);
		return AB_ENOMEM;
	}
	if (!rc)
		number_names(names, pool, s->n_obs, "cell_", 7);
	if (!rc)
		rc = ab_writer_string_column(w, "obs/_index", (const char *const *)names, s->n_obs, o);
	char cats[N_TYPES][16];
	const char *catp[N_TYPES];
	type_labels(cats, catp);
	if (!rc)
		rc = ab_writer_categorical_column(w, "obs/cell_type", types, s->n_obs, catp, N_TYPES, 0, o);
	if (!rc)
		rc = ab_writer_numeric_column(w, "obs/donor", AB_DT_INT64, donors, s->n_obs, o, "array");
	if (!rc)
		rc = ab_writer_dataframe_group(w, "var", NULL, 0);
	if (!rc)
		number_names(names, pool, s->n_vars, "gene_", 5);
	if (!rc)
		rc = ab_writer_string_column(w, "var/_index", (const char *const *)names, s->n_vars, o);
	free(names);
	free(pool);
	return rc;
}

/* Whether `path` is a zarr store (its root metadata is there): the only thing
 * --force may replace; any other file or directory is somebody's data. */
static int is_zarr_store(const char *path)
{
	static const char *const roots[] = { "zarr.json", ".zgroup", ".zarray" };
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
		char p[PATH_MAX];
		if (snprintf(p, sizeof p, "%s/%s", path, roots[i]) < (int)sizeof p && stat(p, &st) == 0 &&
		    S_ISREG(st.st_mode))
			return 1;
	}
	return 0;
}

static int run(const char *out, synth *s, int dense, int zarr_format, int force, ab_anndata_write_config *o)
{
	struct stat st;
	if (force && lstat(out, &st) == 0 && !is_zarr_store(out))
		return cli_fail("synth", "%s exists and is not a zarr store; not replaced", out);
	ab_writer_config wc;
	ab_writer_config_init(&wc);
	wc.zarr_format = zarr_format;
	wc.overwrite = force;
	ab_writer *w;
	int rc = ab_writer_create(out, &wc, &w);
	if (rc)
		return cli_fail_lib("synth", rc, NULL);
	int32_t *types = malloc((s->n_obs ? s->n_obs : 1) * sizeof *types);
	int64_t *donors = malloc((s->n_obs ? s->n_obs : 1) * sizeof *donors);
	int64_t *indptr = malloc((s->n_obs + 1) * sizeof *indptr);
	uint64_t cap = s->n_vars / 2 + 1;
	int32_t *idx = malloc(BLOCK_ROWS * cap * sizeof *idx);
	float *val = malloc(BLOCK_ROWS * cap * sizeof *val);
	float *dense_buf = dense ? calloc(BLOCK_ROWS * (s->n_vars ? s->n_vars : 1), sizeof(float)) : NULL;
	ab_writer_array *xd = NULL, *xi = NULL, *xv = NULL;
	if (!types || !donors || !indptr || !idx || !val || (dense && !dense_buf)) {
		rc = AB_ENOMEM;
		goto done;
	}
	if ((rc = ab_writer_anndata_group(w, "")))
		goto done;
	uint64_t shard;
	if (dense) {
		uint64_t shape[2] = { s->n_obs, s->n_vars };
		shard = ab_anndata_shard_rows(o, o->n_obs_per_chunk, s->n_vars * 4, 1);
		rc = ab_writer_anndata_array(w, "X", AB_DT_FLOAT32, 2, shape, o->n_obs_per_chunk, shard, o,
			       "{\"encoding-type\":\"array\",\"encoding-version\":\"0.2.0\"}", &xd);
	} else {
		/* data/indices chunks hold the non-zeros of n_obs_per_chunk rows
		 * on average, as the Python annbatch writer sizes them. */
		uint64_t per = o->n_obs_per_chunk * (s->mean_nnz < cap ? s->mean_nnz : cap);
		uint64_t shape[1] = { 0 };
		if (!(rc = ab_writer_csr_group(w, "X", s->n_obs, s->n_vars))) {
			shard = ab_anndata_shard_rows(o, per, 4, (double)per / (double)o->n_obs_per_chunk);
			rc = ab_writer_anndata_array(w, "X/data", AB_DT_FLOAT32, 1, shape, per, shard, o, NULL, &xv);
		}
		if (!rc)
			rc = ab_writer_anndata_array(w, "X/indices", AB_DT_INT32, 1, shape, per, shard, o, NULL, &xi);
	}
	if (rc)
		goto done;
	indptr[0] = 0;
	for (uint64_t r0 = 0; r0 < s->n_obs && !rc; r0 += BLOCK_ROWS) {
		uint64_t nb = s->n_obs - r0 < BLOCK_ROWS ? s->n_obs - r0 : BLOCK_ROWS;
		uint64_t off = synth_block(s, r0, nb, types, donors, idx, val, indptr, dense ? dense_buf : NULL);
		if (dense)
			rc = ab_writer_array_append(xd, dense_buf, nb);
		else if (!(rc = ab_writer_array_append(xv, val, off)))
			rc = ab_writer_array_append(xi, idx, off);
	}
	if (rc)
		goto done;
	if (dense) {
		rc = ab_writer_array_close(xd);
		xd = NULL;
	} else {
		rc = ab_writer_array_close(xv);
		xv = NULL;
		int rc2 = ab_writer_array_close(xi);
		xi = NULL;
		if (!rc)
			rc = rc2;
		if (!rc)
			rc = ab_writer_numeric_column(w, "X/indptr", AB_DT_INT64, indptr, s->n_obs + 1, o, NULL);
	}
	if (!rc)
		rc = write_obs_var(w, s, types, donors, o);
done:
	if (xd)
		ab_writer_array_close(xd);
	if (xv)
		ab_writer_array_close(xv);
	if (xi)
		ab_writer_array_close(xi);
	free(types);
	free(donors);
	free(indptr);
	free(idx);
	free(val);
	free(dense_buf);
	if (rc) {
		int ret = rc == AB_ENOMEM && !*ab_last_error() ? cli_fail("synth", "out of memory")
							      : cli_fail_lib("synth", rc, NULL);
		ab_writer_abort(w);
		return ret;
	}
	rc = ab_writer_commit(w);
	return rc ? cli_fail_lib("synth", rc, NULL) : 0;
}

/* --format h5ad: the same content as the zarr stores (same rows for the same
 * seed), written with HDF5. Uncompressed arrays are contiguous except the
 * two that grow (X/data, X/indices), as anndata lays them out. */
#ifdef AB_HAVE_HDF5
static int run_h5ad(const char *out, synth *s, int dense, int force, int gzip, const ab_anndata_write_config *o)
{
	h5w *w;
	int rc = h5w_create(out, force, gzip ? 4 : -1, &w);
	if (rc)
		return cli_fail("synth", "%s", h5w_last_error());
	int32_t *types = malloc((s->n_obs ? s->n_obs : 1) * sizeof *types);
	int64_t *donors = malloc((s->n_obs ? s->n_obs : 1) * sizeof *donors);
	int64_t *indptr = malloc((s->n_obs + 1) * sizeof *indptr);
	uint64_t cap = s->n_vars / 2 + 1;
	int32_t *idx = malloc(BLOCK_ROWS * cap * sizeof *idx);
	float *val = malloc(BLOCK_ROWS * cap * sizeof *val);
	float *dense_buf = dense ? calloc(BLOCK_ROWS * (s->n_vars ? s->n_vars : 1), sizeof(float)) : NULL;
	uint64_t nmax = s->n_obs > s->n_vars ? s->n_obs : s->n_vars;
	char **names = calloc(nmax ? nmax : 1, sizeof(char *));
	char *pool = malloc((nmax ? nmax : 1) * 24);
	h5w_array *xd = NULL, *xi = NULL, *xv = NULL;
	if (!types || !donors || !indptr || !idx || !val || (dense && !dense_buf) || !names || !pool) {
		rc = cli_fail("synth", "out of memory");
		goto done;
	}
	rc = h5w_anndata_root(w);
	if (!rc && dense) {
		uint64_t shape[2] = { s->n_obs, s->n_vars };
		rc = h5w_array_create(w, "X", AB_DT_FLOAT32, 2, shape, o->n_obs_per_chunk, "array", &xd);
	} else if (!rc) {
		uint64_t per = o->n_obs_per_chunk * (s->mean_nnz < cap ? s->mean_nnz : cap);
		uint64_t shape[1] = { 0 };
		rc = h5w_csr_group(w, "X", s->n_obs, s->n_vars);
		if (!rc)
			rc = h5w_array_create(w, "X/data", AB_DT_FLOAT32, 1, shape, per, NULL, &xv);
		if (!rc)
			rc = h5w_array_create(w, "X/indices", AB_DT_INT32, 1, shape, per, NULL, &xi);
	}
	indptr[0] = 0;
	for (uint64_t r0 = 0; !rc && r0 < s->n_obs; r0 += BLOCK_ROWS) {
		uint64_t nb = s->n_obs - r0 < BLOCK_ROWS ? s->n_obs - r0 : BLOCK_ROWS;
		uint64_t off = synth_block(s, r0, nb, types, donors, idx, val, indptr, dense ? dense_buf : NULL);
		if (dense)
			rc = h5w_array_append(xd, dense_buf, nb);
		else if (!(rc = h5w_array_append(xv, val, off)))
			rc = h5w_array_append(xi, idx, off);
	}
	int rc2 = h5w_array_close(xd), rc3 = h5w_array_close(xv), rc4 = h5w_array_close(xi);
	xd = xv = xi = NULL;
	rc = rc ? rc : rc2 ? rc2 : rc3 ? rc3 : rc4;
	if (!rc && !dense)
		rc = h5w_numeric(w, "X/indptr", AB_DT_INT64, indptr, s->n_obs + 1, NULL);
	static const char *const cols[] = { "cell_type", "donor" };
	if (!rc)
		rc = h5w_dataframe(w, "obs", cols, 2);
	if (!rc)
		number_names(names, pool, s->n_obs, "cell_", 7);
	if (!rc)
		rc = h5w_strings(w, "obs/_index", (const char *const *)names, s->n_obs);
	char cats[N_TYPES][16];
	const char *catp[N_TYPES];
	type_labels(cats, catp);
	if (!rc)
		rc = h5w_categorical(w, "obs/cell_type", types, s->n_obs, catp, N_TYPES, 0);
	if (!rc)
		rc = h5w_numeric(w, "obs/donor", AB_DT_INT64, donors, s->n_obs, "array");
	if (!rc)
		rc = h5w_dataframe(w, "var", NULL, 0);
	if (!rc)
		number_names(names, pool, s->n_vars, "gene_", 5);
	if (!rc)
		rc = h5w_strings(w, "var/_index", (const char *const *)names, s->n_vars);
	if (rc)
		rc = cli_fail("synth", "%s", h5w_last_error());
done:
	h5w_array_close(xd);
	h5w_array_close(xv);
	h5w_array_close(xi);
	free(types);
	free(donors);
	free(indptr);
	free(idx);
	free(val);
	free(dense_buf);
	free(names);
	free(pool);
	if (rc) {
		h5w_abort(w);
		return rc;
	}
	if (h5w_commit(w))
		return cli_fail("synth", "%s", h5w_last_error());
	return 0;
}
#else
static int run_h5ad(const char *out, synth *s, int dense, int force, int gzip, const ab_anndata_write_config *o)
{
	(void)s, (void)dense, (void)force, (void)gzip, (void)o;
	return cli_fail("synth", "%s: --format h5ad needs HDF5, and annbatch was built without it (install "
			"libhdf5-dev and run configure --with-hdf5)", out);
}
#endif

int cmd_synth(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "n-obs", required_argument, NULL, O_NOBS },
		{ "n-vars", required_argument, NULL, O_NVARS },
		{ "mean-nnz", required_argument, NULL, O_MEANNNZ },
		{ "dense", no_argument, NULL, O_DENSE },
		{ "format", required_argument, NULL, O_FORMAT },
		WRITER_LONG_OPTIONS,
		{ "no-shard", no_argument, NULL, O_NOSHARD },
		{ "seed", required_argument, NULL, O_SEED },
		{ "force", no_argument, NULL, O_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	synth s = { .n_obs = 10000, .n_vars = 20000, .mean_nnz = 2000, .seed = 0 };
	ab_anndata_write_config o = { .compressor = AB_COMPRESSOR_BLOSC_LZ4, .level = -1, .n_obs_per_chunk = 64,
		       .shard_bytes = 1000000000ull };
	int dense = 0, zarr_format = 3, no_shard = 0, force = 0, h5 = 0, comp_given = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(synth_usage, stdout);
			return 0;
		case O_NOBS:
			if (cli_parse_u64("synth", "--n-obs", optarg, &s.n_obs))
				return 1;
			break;
		case O_NVARS:
			if (cli_parse_u64("synth", "--n-vars", optarg, &s.n_vars))
				return 1;
			if (s.n_vars > INT32_MAX)
				return cli_fail("synth", "--n-vars: at most %d", INT32_MAX);
			break;
		case O_MEANNNZ:
			if (cli_parse_u64("synth", "--mean-nnz", optarg, &s.mean_nnz))
				return 1;
			break;
		case O_DENSE:
			dense = 1;
			break;
		case O_FORMAT:
			h5 = 0;
			if (strcmp(optarg, "zarr3") == 0)
				zarr_format = 3;
			else if (strcmp(optarg, "zarr2") == 0)
				zarr_format = 2;
			else if (strcmp(optarg, "h5ad") == 0)
				h5 = 1;
			else
				return cli_fail("synth", "--format '%s': expected zarr3, zarr2 or h5ad", optarg);
			break;
		case O_NOSHARD:
			no_shard = 1;
			break;
		case O_SEED:
			if (cli_parse_u64("synth", "--seed", optarg, &s.seed))
				return 1;
			break;
		case O_FORCE:
			force = 1;
			break;
		default: {
			int w = writer_option("synth", c, optarg, &o);
			if (w < 0)
				return 1;
			if (w > 0) {
				comp_given |= c == WO_COMPRESSOR;
				break;
			}
			fputs(synth_usage, stderr);
			return 2;
		}
		}
	}
	if (optind + 1 != argc)
		return cli_fail("synth", "expected one output path (see --help)");
	if (zarr_format == 2 || no_shard)
		o.shard_bytes = 0;
	if (s.mean_nnz == 0)
		s.mean_nnz = 1;
	if (dense && s.n_vars && s.n_obs > UINT64_MAX / 4 / s.n_vars)
		return cli_fail("synth", "--dense: too large");
	if (synth_init(&s)) {
		free(s.weight);
		free(s.cdf);
		free(s.mark);
		return cli_fail("synth", "out of memory");
	}
	/* HDF5 has gzip built in; the other codecs would need filter plugins
	 * that anndata's readers cannot count on. Uncompressed unless asked. */
	if (h5 && comp_given && o.compressor != AB_COMPRESSOR_GZIP && o.compressor != AB_COMPRESSOR_NONE) {
		free(s.weight);
		free(s.cdf);
		free(s.mark);
		return cli_fail("synth", "--compressor: h5ad output takes gzip or none");
	}
	int ret = h5 ? run_h5ad(argv[optind], &s, dense, force,
				comp_given && o.compressor == AB_COMPRESSOR_GZIP, &o)
		     : run(argv[optind], &s, dense, zarr_format, force, &o);
	free(s.weight);
	free(s.cdf);
	free(s.mark);
	return ret;
}
