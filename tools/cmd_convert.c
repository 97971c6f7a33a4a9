/* cmd_convert.c - `annbatch convert`: AnnData stores into a preshuffled,
 * sharded zarr v3 collection (the layout the Python annbatch writer makes). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "anndata_out.h"
#include "h5ad.h"
#include "rng.h"

static const char convert_usage[] =
	"Usage: annbatch convert INPUT... -o OUT.zarr [options]\n"
	"\n"
	"Builds an annbatch collection (zarr v3, encoding-type annbatch-preshuffled):\n"
	"datasets dataset_0..N, each an AnnData group with X (csr_matrix, or a dense\n"
	"array when every input is dense), obs (the selected columns plus src_path, the\n"
	"input each row came from) and var. INPUT is a zarr v2 or v3 AnnData store or\n"
	"an .h5ad file (HDF5, as anndata writes it; any HDF5 filter the library has,\n"
	"such as gzip); both kinds mix in one call. X must be dense or csr_matrix.\n"
	"Nullable integer/boolean obs columns become float64 with NaN where missing.\n"
	"\n"
	"The inputs are cut into blocks of --shuffle-chunk-size contiguous rows; the\n"
	"blocks are taken in random order and their rows split over ceil(total /\n"
	"--dataset-size) datasets whose row counts differ by at most one (a block may\n"
	"straddle two), and each dataset's rows are permuted in memory before it is\n"
	"written, so a loader reading contiguous chunks still sees well-mixed rows.\n"
	"\n"
	"If OUT is an existing collection, the inputs are added to it as new datasets\n"
	"in its var space and X dtype; OUT is replaced in one step when all is written.\n"
	"An input with genes the collection lacks is refused (--drop-new-genes), and\n"
	"an X value the collection's dtype cannot hold exactly stops the run.\n"
	"Mixed X dtypes are promoted as anndata's concat does (numpy's result_type:\n"
	"int32 + float32 gives float64), with a note on stderr.\n"
	"Duplicate var names in an input are refused (--make-var-unique); duplicate\n"
	"obs names are made unique as obs_names_make_unique does (NAME-1, NAME-2,\n"
	"... over all inputs in order), with a note on stderr.\n"
	"\n"
	"Options:\n"
	"  -o, --output OUT         the collection to write (required)\n"
	"  --var-subset FILE        var names to keep, one a line, in that order\n"
	"                           (default: the outer join of the inputs' var names,\n"
	"                           in order of first appearance; missing genes are 0);\n"
	"                           names found in no input are an error; a UTF-8 BOM\n"
	"                           and spaces around a name are dropped, with a note\n"
	"  --make-var-unique        rename repeated var names of an input NAME-1,\n"
	"                           NAME-2, ... (anndata's var_names_make_unique)\n"
	"  --drop-new-genes         adding to a collection: drop the genes it lacks\n"
	"                           (counts of genes and values dropped on stderr)\n"
	"  --obs-columns C,C        obs columns to keep (default: those in every input)\n"
	"  --no-shuffle             keep the input order (no block shuffle, no permutation)\n"
	"  --shuffle-chunk-size N   rows per contiguous block, 1000\n"
	"  --dataset-size N|SIZE    rows per dataset (a plain number), or bytes of X\n"
	"                           per dataset (with a unit: 20GB, the default)\n"
	"  --seed N                 random seed, 0\n"
	"  --groupby COL[,COL]      sort each dataset's rows by these obs columns\n"
	"                           (stable; missing values last, as pandas)\n"
	"  --n-obs-per-chunk N      rows per X chunk (dense) or their mean non-zeros\n"
	"                           (sparse data/indices), 64\n"
	"  --shard-size SIZE        bytes per shard, 1GB\n"
	"  --compressor C           blosc-lz4 (default: clevel 3, byte shuffle),\n"
	"                           blosc-zstd, zstd, gzip, none\n"
	"  --blosc-blocksize SIZE   bytes per blosc block asked of libblosc, 0 = its\n"
	"                           own choice (default; see README: smaller blocks\n"
	"                           decode less for small chunk sizes)\n"
	"  --memory SIZE            memory budget, a quarter of RAM by default; a\n"
	"                           dataset is made smaller if it would not fit\n"
	"  --progress / --no-progress  progress line on stderr (default: on a TTY)\n"
	"  -h, --help               this help\n"
	"\n"
	"OUT appears (or changes) only when everything is written: a killed run\n"
	"leaves it as it was; SIGINT or SIGTERM also removes the hidden temporary\n"
	"directory (exit 130 or 143), as does any failure. OUT may not be an input,\n"
	"lie inside one or hold one. Any failure prints one line on stderr and exits\n"
	"non-zero; success prints one summary line on stderr (datasets, rows, genes,\n"
	"X dtype, bytes, seconds). The soft open-file limit is raised to the hard one.\n";

enum { O_VARSUB = 256, O_OBSCOLS, O_NOSHUF, O_SCHUNK, O_DSIZE, O_SEED, O_GROUPBY, O_CHUNK,
       O_SHARD, O_COMP, O_MEM, O_PROG, O_NOPROG, O_BLOCK, O_VARUNIQ, O_DROPNEW };

#define CMD "convert"

/* ------------------------------------------------------------------------- */
/* a string -> index hash table (var names, category labels)                  */
/* ------------------------------------------------------------------------- */

typedef struct strtab {
	char **names;     /* by index, owned */
	uint64_t n, cap;
	uint64_t *slots;  /* index + 1, 0 = empty */
	uint64_t nslots;
} strtab;

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void strtab_free(strtab *t)
{
	for (uint64_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

static int64_t strtab_find(const strtab *t, const char *s)
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

/* Index of s, added at the end if new. -1 on allocation failure. */
static int64_t strtab_add(strtab *t, const char *s)
{
	int64_t f = strtab_find(t, s);
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

/* Sorts the names and rebuilds the index, as pandas sorts the union of
 * unordered categories. */
static int strtab_sort(strtab *t)
{
	strtab s;
	memset(&s, 0, sizeof s);
	qsort(t->names, t->n, sizeof *t->names, cmp_str);
	for (uint64_t i = 0; i < t->n; i++)
		if (strtab_add(&s, t->names[i]) < 0) {
			strtab_free(&s);
			return -1;
		}
	strtab_free(t);
	*t = s;
	return 0;
}

static int grow(void **p, uint64_t *cap, uint64_t need, size_t isz);

/* anndata's make_index_unique (var_names_make_unique, obs_names_make_unique):
 * the first occurrence of a name keeps it; each later one becomes name-1,
 * name-2, ... counting per name, and a candidate that is already a name (an
 * original one or one given out before) is skipped for the next number.
 * names[i] may be replaced (the old string freed). *renamed counts the names
 * changed; dup_out, when not NULL, gets the duplicated names' table (each
 * name once, in order of its first repeat) for error messages, and idx_out,
 * when not NULL, the ascending indices of the changed names (malloc'd; NULL
 * when none). -1 when out of memory. */
static int make_unique(char **names, uint64_t n, int rename, uint64_t *renamed, strtab *dup_out,
		       uint64_t **idx_out)
{
	strtab all;
	memset(&all, 0, sizeof all);
	uint64_t *dups = NULL, ndup = 0, cap = 0;
	uint64_t *count = NULL;
	int ret = -1;
	*renamed = 0;
	for (uint64_t i = 0; i < n; i++) {
		const char *nm = names[i] ? names[i] : "";
		uint64_t before = all.n;
		if (strtab_add(&all, nm) < 0)
			goto out;
		if (all.n == before) {
			if (grow((void **)&dups, &cap, ndup + 1, sizeof *dups))
				goto out;
			dups[ndup++] = i;
			if (dup_out && strtab_add(dup_out, nm) < 0)
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
			int64_t k = strtab_find(&all, nm);
			size_t l = strlen(nm);
			char *cand = malloc(l + 24);
			if (!cand)
				goto out;
			do
				snprintf(cand, l + 24, "%s-%" PRIu64, nm, ++count[k]);
			while (strtab_find(&all, cand) >= 0);
			if (strtab_add(&all, cand) < 0) {
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
	strtab_free(&all);
	return ret;
}

/* "a, b, c" from the first `max` names of t, with ", ..." when there are more. */
static void name_list(const strtab *t, size_t max, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (uint64_t i = 0; i < t->n && i < max && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "", t->names[i]);
	if (t->n > max && used < len)
		snprintf(buf + used, len - used, ", ...");
}

/* ------------------------------------------------------------------------- */
/* numeric conversion                                                        */
/* ------------------------------------------------------------------------- */

static double load_num(ab_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case AB_DT_BOOL: return ((const uint8_t *)p)[i] != 0;
	case AB_DT_INT8: return ((const int8_t *)p)[i];
	case AB_DT_INT16: return ((const int16_t *)p)[i];
	case AB_DT_INT32: return ((const int32_t *)p)[i];
	case AB_DT_INT64: return (double)((const int64_t *)p)[i];
	case AB_DT_UINT8: return ((const uint8_t *)p)[i];
	case AB_DT_UINT16: return ((const uint16_t *)p)[i];
	case AB_DT_UINT32: return ((const uint32_t *)p)[i];
	case AB_DT_UINT64: return (double)((const uint64_t *)p)[i];
	case AB_DT_FLOAT32: return ((const float *)p)[i];
	case AB_DT_FLOAT64: return ((const double *)p)[i];
	default: return 0;
	}
}

static void store_num(ab_dtype dt, void *p, size_t i, double v)
{
	switch (dt) {
	case AB_DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	case AB_DT_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
	case AB_DT_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
	case AB_DT_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
	case AB_DT_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
	case AB_DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case AB_DT_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
	case AB_DT_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
	case AB_DT_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
	case AB_DT_FLOAT32: ((float *)p)[i] = (float)v; break;
	case AB_DT_FLOAT64: ((double *)p)[i] = v; break;
	default: break;
	}
}

/* Copies item si of src (dtype sd) to item di of dst (dtype dd). */
static inline void copy_item(ab_dtype dd, void *dst, size_t di, ab_dtype sd, const void *src,
			     size_t si, size_t isz)
{
	if (dd == sd)
		memcpy((uint8_t *)dst + di * isz, (const uint8_t *)src + si * isz, isz);
	else
		store_num(dd, dst, di, load_num(sd, src, si));
}

/* Whether value v is held exactly by dtype dt (checked before the store,
 * which would be undefined for an integer out of range). */
static int fits(ab_dtype dt, double v)
{
	switch (dt) {
	case AB_DT_FLOAT64: return 1;
	case AB_DT_FLOAT32: return v != v || isinf(v) || (fabs(v) <= FLT_MAX && (double)(float)v == v);
	case AB_DT_BOOL: return v == 0 || v == 1;
	case AB_DT_INT8: return v == floor(v) && v >= INT8_MIN && v <= INT8_MAX;
	case AB_DT_INT16: return v == floor(v) && v >= INT16_MIN && v <= INT16_MAX;
	case AB_DT_INT32: return v == floor(v) && v >= INT32_MIN && v <= INT32_MAX;
	case AB_DT_INT64: return v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0;
	case AB_DT_UINT8: return v == floor(v) && v >= 0 && v <= UINT8_MAX;
	case AB_DT_UINT16: return v == floor(v) && v >= 0 && v <= UINT16_MAX;
	case AB_DT_UINT32: return v == floor(v) && v >= 0 && v <= UINT32_MAX;
	case AB_DT_UINT64: return v == floor(v) && v >= 0 && v < 18446744073709551616.0;
	default: return 0;
	}
}

static int is_zero(ab_dtype dt, const void *p, size_t i, size_t isz)
{
	static const uint8_t zero[16];
	if (dt == AB_DT_FLOAT32)
		return ((const float *)p)[i] == 0.0f;
	if (dt == AB_DT_FLOAT64)
		return ((const double *)p)[i] == 0.0;
	return memcmp((const uint8_t *)p + i * isz, zero, isz) == 0;
}

/* ------------------------------------------------------------------------- */
/* the plan                                                                  */
/* ------------------------------------------------------------------------- */

typedef enum { OC_NUMERIC = 1, OC_STRING, OC_CATEGORICAL } ocol_kind;

typedef struct ocol {
	char *name;
	ocol_kind kind;
	ab_dtype dtype;          /* numeric */
	strtab cats;             /* categorical: the union of categories */
	int ordered;
} ocol;

/* A var column kept for the output (anndata's concat merge="same"): its
 * value for every output var. */
typedef struct vcol {
	char *name;
	ocol_kind kind;
	ab_dtype dtype;          /* numeric */
	void *num;               /* numeric: n_vars items */
	uint8_t *set;            /* which vars some input gave a value */
	char **str;              /* string/categorical: n_vars labels (NULL = missing) */
	char **cats;             /* categorical: the inputs' categories */
	size_t n_cats;
	int32_t *codes;          /* categorical: n_vars codes */
	int ordered;
} vcol;

/* An obs/var column of either kind of input. */
typedef struct icol {
	ab_column *ab;
	h5ad_col *h5;
} icol;

typedef struct input {
	const char *path;
	ab_store *st;            /* zarr inputs */
	ab_anndata *ad;
	h5ad *h5;                /* .h5ad inputs (st and ad are NULL) */
	ab_anndata_info info;
	int64_t *colmap;         /* input var -> output var, -1 = dropped */
	int monotonic;           /* colmap keeps the order of kept columns */
	icol *obs;               /* per output column */
	icol names;              /* obs/_index */
	uint64_t row0;           /* its first row in the concatenation */
	uint64_t vars_dropped;   /* var names not in a fixed var space */
	uint64_t values_dropped; /* their non-zero values, counted as read */
	int check_cast;          /* adding: X values checked to fit the collection's dtype */
} input;

typedef struct block { uint32_t in; uint64_t start, end; } block;

typedef struct conv {
	/* options */
	const char *out;
	const char *var_subset;
	char *obs_columns_opt;
	char *groupby_opt;
	int shuffle;
	uint64_t chunk_size;     /* shuffle chunk */
	uint64_t ds_rows, ds_bytes;
	uint64_t seed;
	uint64_t memory;
	int progress;
	int make_var_unique;     /* rename duplicate var names as anndata does */
	int drop_new_genes;      /* adding: drop genes the collection lacks */
	ado_opts o;
	/* inputs and output space */
	input *in;
	size_t n_in;
	strtab vars;
	uint64_t n_vars;
	int sparse;
	ab_dtype x_dtype;
	ocol *cols;
	size_t n_cols;
	vcol *vcols;             /* var columns every input agrees on */
	size_t n_vcols;
	int *groupby;            /* indices into cols */
	size_t n_groupby;
	uint64_t first_dataset;  /* when adding to a collection */
	int adding;
	/* obs names made unique: global rows (ascending) and their new names */
	uint64_t *obs_renamed_rows;
	char **obs_renamed;
	uint64_t n_obs_renamed;
	/* progress */
	uint64_t total_rows, rows_done, bytes_in;
	struct timespec t0;
	int bar_shown;
} conv;

/* One dataset in memory. */
typedef struct dset {
	uint64_t n;
	int64_t *indptr;         /* sparse: n + 1 */
	int32_t *indices;
	void *data;              /* sparse: nnz items; dense: n * n_vars */
	uint64_t nnz, cap;
	void **colnum;           /* numeric columns: n items */
	int32_t **colcode;       /* categorical: codes */
	char ***colstr;          /* string columns */
	int32_t *src;
	char **obs_names;
} dset;

/* SIGINT/SIGTERM during the write: the handler only records the signal
 * (async-signal-safe); the read and write loops poll it and take the normal
 * failure path, which removes the temporary directory, and the run exits
 * 128 + the signal. The one piece of process state a CLI needs for this. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

/* Catches SIGINT and SIGTERM (unless ignored, as for a background job of a
 * shell without job control), saving the old actions in old[2]. */
static void catch_stop(struct sigaction old[2])
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	stop_sig = 0;
	for (int i = 0; i < 2; i++) {
		sigaction(sigs[i], NULL, &old[i]);
		if (old[i].sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

static void release_stop(const struct sigaction old[2])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void progress(conv *c, int final)
{
	if (!c->progress)
		return;
	double el = now_s() - ((double)c->t0.tv_sec + (double)c->t0.tv_nsec * 1e-9);
	double frac = c->total_rows ? (double)c->rows_done / (double)c->total_rows : 1;
	double mbs = el > 0 ? (double)c->bytes_in / 1e6 / el : 0;
	double eta = frac > 0 ? el * (1 - frac) / frac : 0;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " rows  %.1f MB/s  ETA %d:%02d ", bar,
		c->rows_done, c->total_rows, mbs, (int)eta / 60, (int)eta % 60);
	c->bar_shown = 1;
	if (final)
		fputc('\n', stderr);
}

static void progress_clear(conv *c)
{
	if (c->bar_shown) {
		fputc('\n', stderr);
		c->bar_shown = 0;
	}
}

static int fail(conv *c, const char *fmt, const char *a, const char *b)
{
	progress_clear(c);
	if (b)
		return cli_fail(CMD, fmt, a, b);
	return cli_fail(CMD, fmt, a);
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

static int fail_fds(conv *c, const char *what, uint64_t limit)
{
	progress_clear(c);
	return cli_fail(CMD, "%s: too many open files (limit %" PRIu64 "; raise it with ulimit -n, or convert"
		       " fewer inputs at once)", what, limit);
}

static int fail_lib(conv *c, int rc, const char *what)
{
	uint64_t lim;
	if (what && out_of_fds(ab_last_error(), &lim))
		return fail_fds(c, what, lim);
	progress_clear(c);
	/* most library messages already start with the path: say it once */
	const char *msg = ab_last_error();
	size_t l = what ? strlen(what) : 0;
	if (l && msg && strncmp(msg, what, l) == 0 && msg[l] == ':')
		what = NULL;
	return cli_fail_lib(CMD, rc, what);
}

/* A failure reading input `in`: the message of whichever reader failed. */
static int fail_in(conv *c, const input *in, int rc)
{
	uint64_t lim;
	if (out_of_fds(in->h5 || !in->st ? h5ad_last_error() : ab_last_error(), &lim))
		return fail_fds(c, in->path, lim);
	if (in->h5 || !in->st) {
		progress_clear(c);
		return cli_fail(CMD, "%s", h5ad_last_error());
	}
	return fail_lib(c, rc, in->path);
}

/* The column calls, for a zarr or an h5ad input alike. */
static int icol_open(input *in, const char *frame, const char *name, icol *out)
{
	if (in->h5)
		return h5ad_column_open(in->h5, frame, name, &out->h5);
	return strcmp(frame, "obs") == 0 ? ab_anndata_obs_column(in->ad, name, &out->ab)
					 : ab_anndata_var_column(in->ad, name, &out->ab);
}

static void icol_close(icol *col)
{
	if (col->ab)
		ab_column_close(col->ab);
	if (col->h5)
		h5ad_column_close(col->h5);
	col->ab = NULL;
	col->h5 = NULL;
}

static void icol_info(const icol *col, ab_column_info *ci)
{
	if (col->h5)
		h5ad_column_get_info(col->h5, ci);
	else
		ab_column_get_info(col->ab, ci);
}

static int icol_read(icol *col, uint64_t s, uint64_t e, void *dst, size_t size, uint8_t *mask)
{
	return col->h5 ? h5ad_column_read(col->h5, s, e, dst, size, mask)
		       : ab_column_read(col->ab, s, e, dst, size, mask);
}

static int icol_strings(icol *col, uint64_t s, uint64_t e, char ***out, size_t *n)
{
	return col->h5 ? h5ad_column_read_strings(col->h5, s, e, out, n)
		       : ab_column_read_strings(col->ab, s, e, out, n);
}

static int icol_categories(icol *col, char ***out, size_t *n)
{
	return col->h5 ? h5ad_column_categories(col->h5, out, n) : ab_column_categories(col->ab, out, n);
}

static const char *const *in_obs_columns(const input *in)
{
	return in->h5 ? h5ad_obs_columns(in->h5) : ab_anndata_obs_columns(in->ad);
}

/* Nullable integer/boolean columns are written as float64, NaN = missing. */
static int is_nullable_num(const ab_column_info *ci)
{
	return ci->kind == AB_COL_NULLABLE_INTEGER || ci->kind == AB_COL_NULLABLE_BOOLEAN;
}

/* Splits "a,b,c" into a NULL-terminated list (in place). */
static char **split_commas(char *s, size_t *n)
{
	size_t k = 1;
	for (char *p = s; *p; p++)
		k += *p == ',';
	char **v = calloc(k + 1, sizeof *v);
	if (!v)
		return NULL;
	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
		if (*tok)
			v[(*n)++] = tok;
	return v;
}

static int read_var_names(input *in, char ***names, size_t *n)
{
	icol col = { NULL, NULL };
	int rc = icol_open(in, "var", "_index", &col);
	if (rc)
		return rc;
	rc = icol_strings(&col, 0, in->info.n_vars, names, n);
	icol_close(&col);
	return rc;
}

static int load_var_subset(conv *c)
{
	FILE *f = fopen(c->var_subset, "r");
	if (!f)
		return fail(c, "--var-subset %s: %s", c->var_subset, strerror(errno));
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
			ret = fail(c, "--var-subset %s: line with a NUL byte", c->var_subset, NULL);
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
		if (strtab_add(&c->vars, nm) < 0) {
			ret = fail(c, "%s", "out of memory", NULL);
			break;
		}
		dups += c->vars.n == before;
	}
	free(line);
	fclose(f);
	if (!ret && bom)
		fprintf(stderr, "annbatch convert: note: --var-subset %s: UTF-8 byte order mark dropped\n",
			c->var_subset);
	if (!ret && stripped)
		fprintf(stderr, "annbatch convert: note: --var-subset %s: spaces around %" PRIu64
			" names dropped\n", c->var_subset, stripped);
	if (!ret && dups)
		fprintf(stderr, "annbatch convert: note: --var-subset %s: %" PRIu64
			" repeated names kept once\n", c->var_subset, dups);
	if (!ret && !c->vars.n)
		ret = fail(c, "--var-subset %s: no names in the file", c->var_subset, NULL);
	return ret;
}

/* numpy's result_type of two numeric X dtypes (bool, integers, float32/64),
 * which anndata's concat gives X: a signed and an unsigned integer meet in
 * the signed type that holds both (int64 and uint64 only in float64), an
 * integer of more than 16 bits and float32 meet in float64. */
static ab_dtype promote(ab_dtype a, ab_dtype b)
{
	if (a == b || b == AB_DT_BOOL)
		return a;
	if (a == AB_DT_BOOL)
		return b;
	int fa = a == AB_DT_FLOAT32 || a == AB_DT_FLOAT64, fb = b == AB_DT_FLOAT32 || b == AB_DT_FLOAT64;
	size_t sa = ab_dtype_size(a), sb = ab_dtype_size(b);
	if (fa && fb)
		return sa > sb ? a : b;
	if (fa || fb) {
		ab_dtype f = fa ? a : b;
		size_t si = fa ? sb : sa;
		return f == AB_DT_FLOAT32 && si <= 2 ? AB_DT_FLOAT32 : AB_DT_FLOAT64;
	}
	int ua = a >= AB_DT_UINT8 && a <= AB_DT_UINT64, ub = b >= AB_DT_UINT8 && b <= AB_DT_UINT64;
	if (ua == ub)
		return sa > sb ? a : b;
	size_t su = ua ? sa : sb, ss = ua ? sb : sa;
	if (ss > su)
		return ua ? b : a;
	return su == 1 ? AB_DT_INT16 : su == 2 ? AB_DT_INT32 : su == 4 ? AB_DT_INT64 : AB_DT_FLOAT64;
}

/* Duplicate var names would give CSR rows repeated column indices (a dense
 * read sums them into a value no gene has): refused, as anndata's concat
 * refuses them, or with --make-var-unique renamed as var_names_make_unique
 * renames them. */
static int unique_var_names(conv *c, const input *in, char **names, size_t nn)
{
	strtab dup;
	memset(&dup, 0, sizeof dup);
	uint64_t renamed;
	if (make_unique(names, nn, c->make_var_unique, &renamed, &dup, NULL)) {
		strtab_free(&dup);
		return fail(c, "%s", "out of memory", NULL);
	}
	if (renamed && !c->make_var_unique) {
		char list[600], msg[1200];
		name_list(&dup, 10, list, sizeof list);
		snprintf(msg, sizeof msg, "%s: %" PRIu64 " duplicate var names (repeats of %" PRIu64
			 " names: %s); anndata's concat refuses them; --make-var-unique renames the "
			 "repeats NAME-1, NAME-2, ... as var_names_make_unique does", in->path, renamed,
			 dup.n, list);
		strtab_free(&dup);
		return fail(c, "%s", msg, NULL);
	}
	strtab_free(&dup);
	if (renamed)
		fprintf(stderr, "annbatch convert: note: %s: %" PRIu64 " duplicate var names made unique "
			"(NAME-1, NAME-2, ... as var_names_make_unique)\n", in->path, renamed);
	return 0;
}

static int open_inputs_found(conv *c, char **paths, size_t n, int fixed_vars, uint8_t *found);

/* Opens the inputs, builds the var space and the column maps. */
static int open_inputs(conv *c, char **paths, size_t n, int fixed_vars)
{
	/* --var-subset: which of its names some input has */
	uint8_t *found = fixed_vars && !c->adding ? calloc(c->vars.n + 1, 1) : NULL;
	if (fixed_vars && !c->adding && !found)
		return fail(c, "%s", "out of memory", NULL);
	int ret = open_inputs_found(c, paths, n, fixed_vars, found);
	if (!ret && found) {
		strtab miss;
		memset(&miss, 0, sizeof miss);
		for (uint64_t k = 0; k < c->vars.n && !ret; k++)
			if (!found[k] && strtab_add(&miss, c->vars.names[k]) < 0)
				ret = fail(c, "%s", "out of memory", NULL);
		if (!ret && miss.n) {
			char list[600], msg[1000];
			name_list(&miss, 10, list, sizeof list);
			snprintf(msg, sizeof msg, "--var-subset %s: %" PRIu64 " of its %" PRIu64
				 " names are in no input: %s", c->var_subset, miss.n, c->vars.n, list);
			ret = fail(c, "%s", msg, NULL);
		}
		strtab_free(&miss);
	}
	free(found);
	return ret;
}

static int open_inputs_found(conv *c, char **paths, size_t n, int fixed_vars, uint8_t *found)
{
	c->in = calloc(n, sizeof *c->in);
	if (!c->in)
		return fail(c, "%s", "out of memory", NULL);
	c->n_in = n;
	int have_dense = 0;
	for (size_t i = 0; i < n; i++) {
		input *in = &c->in[i];
		in->path = paths[i];
		int rc;
		if (h5ad_is_hdf5(paths[i])) {
			/* An HDF5 file (signature or .h5ad name): the h5ad reader. */
			if ((rc = h5ad_open(paths[i], &in->h5)))
				return fail_in(c, in, rc);
			h5ad_get_info(in->h5, &in->info);
		} else {
			rc = ab_store_open(paths[i], &in->st);
			if (!rc)
				rc = ab_anndata_open(in->st, "", &in->ad);
			if (rc)
				return fail_lib(c, rc, paths[i]);
			ab_anndata_get_info(in->ad, &in->info);
		}
		if (in->info.x_kind == AB_X_CSC)
			return fail(c, "%s: X is a csc_matrix; only csr_matrix and dense X are supported",
				    paths[i], NULL);
		if (in->info.x_dtype == AB_DT_STRING || in->info.x_dtype == AB_DT_COMPLEX64 ||
		    in->info.x_dtype == AB_DT_COMPLEX128 || in->info.x_dtype == AB_DT_FLOAT16)
			return fail(c, "%s: X dtype %s is not supported", paths[i],
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
				fprintf(stderr, "annbatch convert: note: %s: X %s written as the "
					"collection's %s\n", paths[i], ab_dtype_name(dt),
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
			return fail_in(c, in, rc);
		in->colmap = malloc((nn ? nn : 1) * sizeof *in->colmap);
		if (!in->colmap) {
			ab_strings_free_n(names, nn);
			return fail(c, "%s", "out of memory", NULL);
		}
		if ((rc = unique_var_names(c, in, names, nn))) {
			ab_strings_free_n(names, nn);
			return rc;
		}
		in->monotonic = 1;
		int64_t last = -1;
		strtab gone;
		memset(&gone, 0, sizeof gone);
		for (size_t j = 0; j < nn; j++) {
			const char *nm = names[j] ? names[j] : "";
			int64_t k = fixed_vars ? strtab_find(&c->vars, nm) : strtab_add(&c->vars, nm);
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
					strtab_add(&gone, nm);
			}
		}
		ab_strings_free_n(names, nn);
		if (c->adding && in->vars_dropped && !c->drop_new_genes) {
			/* adding subsets to the collection's var space: say so */
			char list[600], msg[1200];
			name_list(&gone, 10, list, sizeof list);
			snprintf(msg, sizeof msg, "%s: %" PRIu64 " of its %zu var names are not in the "
				 "collection %s (%s); their values would be lost; --drop-new-genes drops "
				 "them", paths[i], in->vars_dropped, nn, c->out, list);
			strtab_free(&gone);
			return fail(c, "%s", msg, NULL);
		}
		strtab_free(&gone);
	}
	(void)have_dense;
	for (size_t i = 1; i < n && !c->adding; i++)
		if (c->in[i].info.x_dtype != c->in[0].info.x_dtype) {
			fprintf(stderr, "annbatch convert: note: X dtypes differ (%s in %s, %s in %s): "
				"X is written as %s (numpy's result_type, as anndata's concat)\n",
				ab_dtype_name(c->in[0].info.x_dtype), c->in[0].path,
				ab_dtype_name(c->in[i].info.x_dtype), c->in[i].path, ab_dtype_name(c->x_dtype));
			break;
		}
	c->n_vars = c->vars.n;
	if (c->n_vars > INT32_MAX)
		return fail(c, "%s", "more than 2^31 var names", NULL);
	return 0;
}

static int col_index(conv *c, const char *name)
{
	for (size_t i = 0; i < c->n_cols; i++)
		if (strcmp(c->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int has_obs_column(input *in, const char *name)
{
	for (const char *const *p = in_obs_columns(in); p && *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

/* Chooses the obs columns and their output kind. */
static int plan_columns(conv *c)
{
	char **names = NULL;
	size_t n = 0;
	char **want = NULL;
	if (c->obs_columns_opt) {
		want = split_commas(c->obs_columns_opt, &n);
		if (!want)
			return fail(c, "%s", "out of memory", NULL);
		names = want;
	} else {
		/* the columns of the first input present in all of them */
		const char *const *first = in_obs_columns(&c->in[0]);
		size_t k = 0;
		while (first && first[k])
			k++;
		want = calloc(k + 1, sizeof *want);
		if (!want)
			return fail(c, "%s", "out of memory", NULL);
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
		return fail(c, "%s", "out of memory", NULL);
	}
	for (size_t i = 0; i < c->n_in; i++) {
		c->in[i].obs = calloc(n + 1, sizeof(icol));
		if (!c->in[i].obs) {
			free(want);
			return fail(c, "%s", "out of memory", NULL);
		}
	}
	int ret = 0;
	for (size_t j = 0; j < n && !ret; j++) {
		ocol *oc = &c->cols[c->n_cols++];
		oc->name = strdup(names[j]);
		if (!oc->name) {
			ret = fail(c, "%s", "out of memory", NULL);
			break;
		}
		if (strcmp(oc->name, "src_path") == 0) {
			ret = fail(c, "obs column '%s' is written by convert itself", oc->name, NULL);
			break;
		}
		int all_num = 1, all_str = 1, all_cat = 1;
		for (size_t i = 0; i < c->n_in && !ret; i++) {
			input *in = &c->in[i];
			int rc = icol_open(in, "obs", oc->name, &in->obs[j]);
			if (rc) {
				ret = fail_in(c, in, rc);
				break;
			}
			ab_column_info ci;
			icol_info(&in->obs[j], &ci);
			all_num &= (ci.kind == AB_COL_ARRAY || is_nullable_num(&ci)) &&
				   ci.dtype != AB_DT_STRING && ci.dtype != AB_DT_COMPLEX64 &&
				   ci.dtype != AB_DT_COMPLEX128 && ci.dtype != AB_DT_FLOAT16;
			all_str &= ci.kind == AB_COL_STRING;
			all_cat &= ci.kind == AB_COL_CATEGORICAL;
			ab_dtype dt = is_nullable_num(&ci) ? AB_DT_FLOAT64 : ci.dtype;
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
			icol_info(&in->obs[j], &ci);
			char **s;
			size_t ns;
			int rc = ci.kind == AB_COL_CATEGORICAL
				? icol_categories(&in->obs[j], &s, &ns)
				: icol_strings(&in->obs[j], 0, ci.length, &s, &ns);
			if (rc) {
				ret = fail_in(c, in, rc);
				break;
			}
			for (size_t k = 0; k < ns && !ret; k++)
				if (s[k] && strtab_add(&oc->cats, s[k]) < 0)
					ret = fail(c, "%s", "out of memory", NULL);
			ab_strings_free_n(s, ns);
		}
	}
	free(want);
	for (size_t j = 0; !ret && j < c->n_cols; j++)
		if (c->cols[j].kind == OC_CATEGORICAL && !c->cols[j].ordered && strtab_sort(&c->cols[j].cats))
			ret = fail(c, "%s", "out of memory", NULL);
	if (ret)
		return ret;
	for (size_t i = 0; i < c->n_in; i++) {
		int rc = icol_open(&c->in[i], "obs", "_index", &c->in[i].names);
		if (rc)
			return fail_in(c, &c->in[i], rc);
	}
	if (c->groupby_opt) {
		size_t ng;
		char **g = split_commas(c->groupby_opt, &ng);
		c->groupby = calloc(ng + 1, sizeof *c->groupby);
		if (!g || !c->groupby) {
			free(g);
			return fail(c, "%s", "out of memory", NULL);
		}
		for (size_t k = 0; k < ng; k++) {
			int idx = col_index(c, g[k]);
			if (idx < 0 && strcmp(g[k], "src_path") != 0) {
				int r = fail(c, "--groupby %s: not among the obs columns written", g[k], NULL);
				free(g);
				return r;
			}
			c->groupby[c->n_groupby++] = idx; /* -1 = src_path */
		}
		free(g);
	}
	return 0;
}

/* The obs names of a collection's datasets, in dataset order, appended to
 * *all (grown as needed). */
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
			return fail(c, "%s", "out of memory", NULL);
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
	return rc ? fail_lib(c, rc, c->out) : 0;
}

/* Duplicate obs names (over all inputs, in input order, after the rows of
 * the collection being added to) are made unique as obs_names_make_unique
 * does on the concatenation; the renamed rows of the inputs are kept (few,
 * usually none) and applied as the rows are read. */
static int plan_obs_names(conv *c, ab_store *old)
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
			ret = fail(c, "%s", "out of memory", NULL);
	}
	for (size_t i = 0; i < c->n_in && !ret; i++) {
		input *in = &c->in[i];
		char **s;
		size_t ns;
		int rc = icol_strings(&in->names, 0, in->info.n_obs, &s, &ns);
		if (rc) {
			ret = fail_in(c, in, rc);
			break;
		}
		memcpy(all + got, s, ns * sizeof *s);
		free(s);
		got += ns;
	}
	uint64_t renamed = 0, *idx = NULL;
	if (!ret && make_unique(all, got, 1, &renamed, NULL, &idx))
		ret = fail(c, "%s", "out of memory", NULL);
	if (!ret && renamed) {
		c->obs_renamed_rows = malloc(renamed * sizeof *c->obs_renamed_rows);
		c->obs_renamed = malloc(renamed * sizeof *c->obs_renamed);
		if (!c->obs_renamed_rows || !c->obs_renamed)
			ret = fail(c, "%s", "out of memory", NULL);
		for (uint64_t q = 0; !ret && q < renamed; q++)
			if (idx[q] >= skip) {
				c->obs_renamed_rows[c->n_obs_renamed] = idx[q] - skip;
				c->obs_renamed[c->n_obs_renamed++] = all[idx[q]];
				all[idx[q]] = NULL;
			}
		if (!ret && c->n_obs_renamed)
			fprintf(stderr, "annbatch convert: note: %" PRIu64 " duplicate obs names made unique "
				"(NAME-1, NAME-2, ... as obs_names_make_unique%s)\n", c->n_obs_renamed,
				skip ? ", after the collection's rows" : "");
	}
	if (all)
		ab_strings_free_n(all, got);
	free(idx);
	return ret;
}

static const char *const *in_var_columns(const input *in)
{
	return in->h5 ? h5ad_var_columns(in->h5) : ab_anndata_var_columns(in->ad);
}

static int has_var_column(input *in, const char *name)
{
	for (const char *const *p = in_var_columns(in); p && *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

static void vcol_free(conv *c, vcol *v)
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
	strtab t;
	memset(&t, 0, sizeof t);
	v->codes = malloc((c->n_vars ? c->n_vars : 1) * sizeof *v->codes);
	for (size_t q = 0; v->codes && q < v->n_cats; q++)
		if (strtab_add(&t, v->cats[q] ? v->cats[q] : "") < 0) {
			free(v->codes);
			v->codes = NULL;
		}
	for (uint64_t k = 0; v->codes && k < c->n_vars; k++)
		v->codes[k] = v->str[k] ? (int32_t)strtab_find(&t, v->str[k]) : -1;
	strtab_free(&t);
	return v->codes ? 0 : -1;
}

/* Adding to a collection: the new datasets carry the var columns of its
 * first dataset, as they are. */
static int collection_var_columns(conv *c, ab_anndata *ad)
{
	const char *const *names = ab_anndata_var_columns(ad);
	size_t k = 0;
	while (names && names[k])
		k++;
	c->n_vars = c->vars.n;
	c->vcols = calloc(k + 1, sizeof *c->vcols);
	if (!c->vcols)
		return fail(c, "%s", "out of memory", NULL);
	for (size_t j = 0; j < k; j++) {
		ab_column *col;
		ab_column_info ci;
		int rc = ab_anndata_var_column(ad, names[j], &col);
		if (rc)
			return fail_lib(c, rc, c->out);
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
			fprintf(stderr, "annbatch convert: note: %s: var column '%s' (%s) is not written "
				"with the new datasets\n", c->out, names[j], ab_dtype_name(ci.dtype));
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
			vcol_free(c, v);
			return rc == AB_ENOMEM ? fail(c, "%s", "out of memory", NULL) : fail_lib(c, rc, c->out);
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
	icol col = { NULL, NULL };
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		int rc = icol_open(in, "var", name, &col);
		if (rc) {
			*err = fail_in(c, in, rc);
			return -1;
		}
		icol_info(&col, &ci);
		if (i == 0)
			dt0 = ci.dtype;
		all_num &= is_plain_num(&ci) && ci.dtype == dt0;
		all_str &= ci.kind == AB_COL_STRING;
		v->dtype = ci.dtype;
		if (ci.kind == AB_COL_CATEGORICAL && all_cat) {
			char **s;
			size_t ns;
			if ((rc = icol_categories(&col, &s, &ns))) {
				icol_close(&col);
				*err = fail_in(c, in, rc);
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
		icol_close(&col);
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
		*err = fail(c, "%s", "out of memory", NULL);
		return -1;
	}
	int same = 1;
	void *buf = NULL;
	for (size_t i = 0; i < c->n_in && same; i++) {
		input *in = &c->in[i];
		uint64_t n = in->info.n_vars;
		int rc = icol_open(in, "var", name, &col);
		if (!rc && all_num) {
			icol_info(&col, &ci);
			size_t isz = ab_dtype_size(ci.dtype);
			free(buf);
			buf = malloc((n ? n : 1) * isz);
			rc = buf ? icol_read(&col, 0, n, buf, n * isz, NULL) : AB_ENOMEM;
			for (uint64_t j = 0; !rc && j < n && same; j++) {
				int64_t k = in->colmap[j];
				if (k < 0)
					continue;
				if (!v->set[k]) {
					copy_item(v->dtype, v->num, (size_t)k, ci.dtype, buf, j, osz);
					v->set[k] = 1;
					continue;
				}
				double a = load_num(v->dtype, v->num, (size_t)k), b = load_num(ci.dtype, buf, j);
				same = a == b || (a != a && b != b);
			}
		} else if (!rc) {
			char **s = NULL;
			size_t ns = 0;
			rc = icol_strings(&col, 0, n, &s, &ns);
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
		icol_close(&col);
		if (rc) {
			free(buf);
			*err = rc == AB_ENOMEM ? fail(c, "%s", "out of memory", NULL) : fail_in(c, in, rc);
			return -1;
		}
	}
	free(buf);
	if (!same) {
		*why = "values";
		return 0;
	}
	if (v->kind == OC_CATEGORICAL && vcol_codes(c, v)) {
		*err = fail(c, "%s", "out of memory", NULL);
		return -1;
	}
	return 1;
}

/* The var columns written with every dataset: those of the first input that
 * every input has and agrees on for the vars they share, as anndata's concat
 * keeps them with merge="same" (the others are named in a note). */
static int plan_var_columns(conv *c)
{
	const char *const *first = in_var_columns(&c->in[0]);
	size_t k = 0;
	while (first && first[k])
		k++;
	c->vcols = calloc(k + 1, sizeof *c->vcols);
	if (!c->vcols)
		return fail(c, "%s", "out of memory", NULL);
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
			vcol_free(c, v);
			return err;
		}
		if (r && !(v->name = strdup(first[j]))) {
			vcol_free(c, v);
			return fail(c, "%s", "out of memory", NULL);
		}
		if (r) {
			c->n_vcols++;
			continue;
		}
		vcol_free(c, v);
		if (ndrop++ < 10 && used < sizeof list)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s'%s' (%s)",
						 used ? ", " : "", first[j],
						 strcmp(why, "values") == 0 ? "values differ"
						 : strcmp(why, "kinds") == 0 ? "dtypes or categories differ" : why);
	}
	if (ndrop)
		fprintf(stderr, "annbatch convert: note: %" PRIu64 " var columns not written, as anndata's "
			"concat merge=\"same\" drops them: %s%s\n", ndrop, list, ndrop > 10 ? ", ..." : "");
	return 0;
}

/* ------------------------------------------------------------------------- */
/* reading a dataset                                                         */
/* ------------------------------------------------------------------------- */

static void dset_free(conv *c, dset *d)
{
	free(d->indptr);
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

static int grow(void **p, uint64_t *cap, uint64_t need, size_t isz)
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

typedef struct pair { int32_t col; uint32_t pos; } pair;

static int pair_cmp(const void *a, const void *b)
{
	const pair *x = a, *y = b;
	return (x->col > y->col) - (x->col < y->col);
}

/* Adding an input whose X dtype the collection's cannot hold in general
 * (float counts into an int32 collection): each value must fit, else the
 * run stops rather than truncate. */
static int cast_fail(conv *c, const input *in, uint64_t row, const void *src, size_t k)
{
	char v[64];
	snprintf(v, sizeof v, "%.17g", load_num(in->info.x_dtype, src, k));
	progress_clear(c);
	return cli_fail(CMD, "%s: X row %" PRIu64 " holds %s, which the collection's %s X cannot "
			"hold; convert into a new collection", in->path, row, v,
			ab_dtype_name(c->x_dtype));
}

/* Appends rows [b->start, b->end) of an input to the dataset (X part). */
static int read_block_x(conv *c, dset *d, const block *b, uint64_t row0, void **scratch,
			uint64_t *scap)
{
	input *in = &c->in[b->in];
	uint64_t nr = b->end - b->start;
	size_t isz_in = ab_dtype_size(in->info.x_dtype), isz = ab_dtype_size(c->x_dtype);
	int rc;
	if (in->info.x_kind == AB_X_CSR) {
		ab_csr *x = in->h5 ? NULL : ab_anndata_x_csr(in->ad);
		uint64_t nnz;
		if (in->h5)
			nnz = h5ad_x_nnz(in->h5, b->start, b->end);
		else if ((rc = ab_csr_nnz(x, b->start, b->end, &nnz)))
			return fail_lib(c, rc, in->path);
		/* scratch: indptr (nr+1) + indices (nnz) as int64, then data */
		uint64_t need = (nr + 1 + nnz) * 8 + nnz * isz_in + 64;
		if (grow(scratch, scap, need, 1))
			return fail(c, "%s", "out of memory", NULL);
		int64_t *ip = *scratch, *ix = ip + nr + 1;
		void *dv = ix + nnz;
		rc = in->h5 ? h5ad_x_read_csr(in->h5, b->start, b->end, ip, ix, dv)
			    : ab_csr_read_rows(x, b->start, b->end, ip, nr + 1, ix, nnz, dv, nnz);
		if (rc)
			return fail_in(c, in, rc);
		c->bytes_in += nnz * (isz_in + 8) + nr * 8;
		if (c->sparse) {
			if (grow((void **)&d->indices, &d->cap, d->nnz + nnz, sizeof(int32_t)))
				return fail(c, "%s", "out of memory", NULL);
			uint64_t dcap = d->cap;
			/* data grows with the same capacity as indices */
			void *nd = realloc(d->data, (size_t)(dcap * isz));
			if (!nd)
				return fail(c, "%s", "out of memory", NULL);
			d->data = nd;
			for (uint64_t r = 0; r < nr; r++) {
				uint64_t s = (uint64_t)ip[r], e = (uint64_t)ip[r + 1];
				uint64_t out0 = d->nnz;
				for (uint64_t k = s; k < e; k++) {
					int64_t oc = in->colmap[ix[k]];
					if (oc < 0) {
						in->values_dropped++;
						continue;
					}
					if (in->check_cast && !fits(c->x_dtype, load_num(in->info.x_dtype, dv, k)))
						return cast_fail(c, in, b->start + r, dv, k);
					d->indices[d->nnz] = (int32_t)oc;
					copy_item(c->x_dtype, d->data, d->nnz, in->info.x_dtype, dv, k, isz);
					d->nnz++;
				}
				if (!in->monotonic && d->nnz - out0 > 1) {
					/* A reordered var space: sort the row's entries by
					 * their new column, carrying the values along. */
					uint64_t m = d->nnz - out0;
					pair *pp = malloc(m * sizeof *pp);
					uint8_t *tv = malloc(m * isz);
					if (!pp || !tv) {
						free(pp);
						free(tv);
						return fail(c, "%s", "out of memory", NULL);
					}
					for (uint64_t k = 0; k < m; k++) {
						pp[k].col = d->indices[out0 + k];
						pp[k].pos = (uint32_t)k;
					}
					qsort(pp, m, sizeof *pp, pair_cmp);
					memcpy(tv, (uint8_t *)d->data + out0 * isz, m * isz);
					for (uint64_t k = 0; k < m; k++) {
						d->indices[out0 + k] = pp[k].col;
						memcpy((uint8_t *)d->data + (out0 + k) * isz, tv + pp[k].pos * isz, isz);
					}
					free(pp);
					free(tv);
				}
				d->indptr[row0 + r + 1] = (int64_t)d->nnz;
			}
		} else {
			return fail(c, "%s: internal: sparse input into dense output", in->path, NULL);
		}
		return 0;
	}
	/* dense input */
	uint64_t nv = in->info.n_vars;
	if (grow(scratch, scap, nr * nv * isz_in + 64, 1))
		return fail(c, "%s", "out of memory", NULL);
	rc = in->h5 ? h5ad_x_read_dense(in->h5, b->start, b->end, *scratch, (size_t)(nr * nv * isz_in))
		    : ab_array_read_rows(ab_anndata_x_dense(in->ad), b->start, b->end, *scratch,
					 (size_t)(nr * nv * isz_in));
	if (rc)
		return fail_in(c, in, rc);
	c->bytes_in += nr * nv * isz_in;
	const void *src = *scratch;
	if (c->sparse) {
		uint64_t add = 0;
		for (uint64_t k = 0; k < nr * nv; k++)
			add += !is_zero(in->info.x_dtype, src, k, isz_in) && in->colmap[k % (nv ? nv : 1)] >= 0;
		if (grow((void **)&d->indices, &d->cap, d->nnz + add, sizeof(int32_t)))
			return fail(c, "%s", "out of memory", NULL);
		void *nd = realloc(d->data, (size_t)(d->cap * isz));
		if (!nd)
			return fail(c, "%s", "out of memory", NULL);
		d->data = nd;
		for (uint64_t r = 0; r < nr; r++) {
			uint64_t out0 = d->nnz;
			for (uint64_t j = 0; j < nv; j++) {
				uint64_t k = r * nv + j;
				if (is_zero(in->info.x_dtype, src, k, isz_in))
					continue;
				if (in->colmap[j] < 0) {
					in->values_dropped++;
					continue;
				}
				if (in->check_cast && !fits(c->x_dtype, load_num(in->info.x_dtype, src, k)))
					return cast_fail(c, in, b->start + r, src, k);
				d->indices[d->nnz] = (int32_t)in->colmap[j];
				copy_item(c->x_dtype, d->data, d->nnz, in->info.x_dtype, src, k, isz);
				d->nnz++;
			}
			if (!in->monotonic && d->nnz - out0 > 1) {
				/* rare: dense input with reordered vars; insertion sort */
				for (uint64_t a = out0 + 1; a < d->nnz; a++) {
					int32_t col = d->indices[a];
					uint8_t tmp[16];
					memcpy(tmp, (uint8_t *)d->data + a * isz, isz);
					uint64_t bb = a;
					while (bb > out0 && d->indices[bb - 1] > col) {
						d->indices[bb] = d->indices[bb - 1];
						memcpy((uint8_t *)d->data + bb * isz, (uint8_t *)d->data + (bb - 1) * isz, isz);
						bb--;
					}
					d->indices[bb] = col;
					memcpy((uint8_t *)d->data + bb * isz, tmp, isz);
				}
			}
			d->indptr[row0 + r + 1] = (int64_t)d->nnz;
		}
		return 0;
	}
	uint8_t *dst = (uint8_t *)d->data + row0 * c->n_vars * isz;
	memset(dst, 0, (size_t)(nr * c->n_vars * isz));
	for (uint64_t r = 0; r < nr; r++)
		for (uint64_t j = 0; j < nv; j++)
			if (in->colmap[j] >= 0 && in->check_cast &&
			    !fits(c->x_dtype, load_num(in->info.x_dtype, src, r * nv + j)))
				return cast_fail(c, in, b->start + r, src, r * nv + j);
			else if (in->colmap[j] >= 0)
				copy_item(c->x_dtype, dst, r * c->n_vars + (uint64_t)in->colmap[j],
					  in->info.x_dtype, src, r * nv + j, isz);
			else if (!is_zero(in->info.x_dtype, src, r * nv + j, isz_in))
				in->values_dropped++;
	return 0;
}

static int read_block_obs(conv *c, dset *d, const block *b, uint64_t row0, void **scratch,
			  uint64_t *scap)
{
	input *in = &c->in[b->in];
	uint64_t nr = b->end - b->start;
	int rc;
	for (uint64_t r = 0; r < nr; r++)
		d->src[row0 + r] = (int32_t)b->in;
	char **s;
	size_t ns;
	if ((rc = icol_strings(&in->names, b->start, b->end, &s, &ns)))
		return fail_in(c, in, rc);
	memcpy(d->obs_names + row0, s, ns * sizeof *s);
	free(s); /* the strings now belong to the dataset */
	if (c->n_obs_renamed) {
		/* the rows of this block whose names plan_obs_names changed */
		uint64_t g0 = in->row0 + b->start, g1 = in->row0 + b->end, lo = 0, hi = c->n_obs_renamed;
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo) / 2;
			if (c->obs_renamed_rows[mid] < g0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < c->n_obs_renamed && c->obs_renamed_rows[lo] < g1; lo++) {
			char **slot = &d->obs_names[row0 + c->obs_renamed_rows[lo] - g0];
			char *nm = strdup(c->obs_renamed[lo]);
			if (!nm)
				return fail(c, "%s", "out of memory", NULL);
			free(*slot);
			*slot = nm;
		}
	}
	for (size_t j = 0; j < c->n_cols; j++) {
		ocol *oc = &c->cols[j];
		icol *col = &in->obs[j];
		if (oc->kind == OC_NUMERIC) {
			ab_column_info ci;
			icol_info(col, &ci);
			size_t isz = ab_dtype_size(ci.dtype);
			int nullable = is_nullable_num(&ci);
			/* values, then (nullable) one mask byte per row */
			if (grow(scratch, scap, nr * isz + nr + 16, 1))
				return fail(c, "%s", "out of memory", NULL);
			uint8_t *mask = nullable ? (uint8_t *)*scratch + nr * isz : NULL;
			if ((rc = icol_read(col, b->start, b->end, *scratch, nr * isz, mask)))
				return fail_in(c, in, rc);
			for (uint64_t r = 0; r < nr; r++) {
				if (mask && mask[r])
					store_num(AB_DT_FLOAT64, d->colnum[j], row0 + r, (double)NAN);
				else
					copy_item(oc->dtype, d->colnum[j], row0 + r, ci.dtype, *scratch,
						  r, ab_dtype_size(oc->dtype));
			}
			continue;
		}
		if ((rc = icol_strings(col, b->start, b->end, &s, &ns)))
			return fail_in(c, in, rc);
		if (oc->kind == OC_STRING) {
			memcpy(d->colstr[j] + row0, s, ns * sizeof *s);
			free(s);
			continue;
		}
		for (size_t r = 0; r < ns; r++)
			d->colcode[j][row0 + r] = s[r] ? (int32_t)strtab_find(&oc->cats, s[r]) : -1;
		ab_strings_free_n(s, ns);
	}
	return 0;
}

static int dset_alloc(conv *c, dset *d, uint64_t n)
{
	d->n = n;
	size_t isz = ab_dtype_size(c->x_dtype);
	int bad = 0;
	if (c->sparse) {
		d->indptr = calloc(n + 1, sizeof *d->indptr);
		bad |= !d->indptr;
	} else {
		d->data = malloc((size_t)(n * c->n_vars * isz) + 1);
		bad |= !d->data;
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
	return bad ? fail(c, "%s", "out of memory", NULL) : 0;
}

/* ------------------------------------------------------------------------- */
/* ordering within a dataset                                                 */
/* ------------------------------------------------------------------------- */

typedef struct sort_ctx { conv *c; dset *d; } sort_ctx;

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
				double u = load_num(oc->dtype, s->d->colnum[j], x);
				double v = load_num(oc->dtype, s->d->colnum[j], y);
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
static void merge_sort(uint64_t *a, uint64_t *tmp, uint64_t n, sort_ctx *s)
{
	if (n < 2)
		return;
	uint64_t h = n / 2;
	merge_sort(a, tmp, h, s);
	merge_sort(a + h, tmp, n - h, s);
	uint64_t i = 0, j = h, k = 0;
	while (i < h && j < n)
		tmp[k++] = row_cmp(&a[j], &a[i], s) < 0 ? a[j++] : a[i++];
	while (i < h)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof *a);
}

/* ------------------------------------------------------------------------- */
/* writing a dataset                                                         */
/* ------------------------------------------------------------------------- */

static int write_dataset(conv *c, ab_writer *w, dset *d, const uint64_t *perm, uint64_t k)
{
	char g[64], p[256];
	snprintf(g, sizeof g, "dataset_%" PRIu64, k);
	int rc = ado_anndata_group(w, g);
	size_t isz = ab_dtype_size(c->x_dtype);
	const ado_opts *o = &c->o;
	uint64_t n = d->n;
	if (rc)
		return fail_lib(c, rc, c->out);
	if (c->sparse) {
		snprintf(p, sizeof p, "%s/X", g);
		if ((rc = ado_csr_group(w, p, n, c->n_vars)))
			return fail_lib(c, rc, c->out);
		/* chunks of data/indices: the non-zeros of n_obs_per_chunk rows on
		 * average, so a chunk costs about what a dense one would */
		uint64_t mean = n ? (d->nnz + n - 1) / n : 1;
		uint64_t per = o->n_obs_per_chunk * (mean ? mean : 1), shard;
		ado_shard_rows(o, per, isz, &shard);
		uint64_t shape[1] = { d->nnz };
		ab_writer_array *xv = NULL, *xi = NULL;
		snprintf(p, sizeof p, "%s/X/data", g);
		rc = ado_array(w, p, c->x_dtype, 1, shape, per, shard, o, NULL, &xv);
		snprintf(p, sizeof p, "%s/X/indices", g);
		if (!rc)
			rc = ado_array(w, p, AB_DT_INT32, 1, shape, per, shard, o, NULL, &xi);
		int64_t *indptr = malloc((n + 1) * sizeof *indptr);
		if (!rc && !indptr)
			rc = AB_ENOMEM;
		if (!rc)
			indptr[0] = 0;
		for (uint64_t i = 0; !rc && !stop_sig && i < n; i++) {
			uint64_t r = perm ? perm[i] : i;
			uint64_t s = (uint64_t)d->indptr[r], e = (uint64_t)d->indptr[r + 1];
			rc = ab_writer_array_append(xv, (uint8_t *)d->data + s * isz, e - s);
			if (!rc)
				rc = ab_writer_array_append(xi, d->indices + s, e - s);
			indptr[i + 1] = indptr[i] + (int64_t)(e - s);
			if ((i & 4095) == 4095) {
				c->rows_done += 4096;
				progress(c, 0);
			}
		}
		c->rows_done += n & 4095;
		int rc2 = xv ? ab_writer_array_close(xv) : 0;
		int rc3 = xi ? ab_writer_array_close(xi) : 0;
		rc = rc ? rc : rc2 ? rc2 : rc3;
		if (!rc && stop_sig) {
			free(indptr);
			return 1; /* run() reports it */
		}
		snprintf(p, sizeof p, "%s/X/indptr", g);
		if (!rc)
			rc = ado_write_numeric(w, p, AB_DT_INT64, indptr, n + 1, o, NULL);
		free(indptr);
		if (rc)
			return rc == AB_ENOMEM && !*ab_last_error() ? fail(c, "%s", "out of memory", NULL)
								   : fail_lib(c, rc, c->out);
	} else {
		uint64_t shape[2] = { n, c->n_vars }, shard;
		ado_shard_rows(o, o->n_obs_per_chunk, c->n_vars * isz, &shard);
		ab_writer_array *x;
		snprintf(p, sizeof p, "%s/X", g);
		rc = ado_array(w, p, c->x_dtype, 2, shape, o->n_obs_per_chunk, shard, o,
			       "{\"encoding-type\":\"array\",\"encoding-version\":\"0.2.0\"}", &x);
		if (rc)
			return fail_lib(c, rc, c->out);
		size_t rb = (size_t)(c->n_vars * isz);
		for (uint64_t i = 0; !rc && !stop_sig && i < n; i++) {
			uint64_t r = perm ? perm[i] : i;
			rc = ab_writer_array_append(x, (uint8_t *)d->data + r * rb, 1);
			if ((i & 1023) == 1023) {
				c->rows_done += 1024;
				progress(c, 0);
			}
		}
		c->rows_done += n & 1023;
		int rc2 = ab_writer_array_close(x);
		if (rc || rc2)
			return fail_lib(c, rc ? rc : rc2, c->out);
		if (stop_sig)
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
		return fail(c, "%s", "out of memory", NULL);
	}
	for (size_t j = 0; j < c->n_cols; j++)
		order[j] = c->cols[j].name;
	order[c->n_cols] = "src_path";
	snprintf(p, sizeof p, "%s/obs", g);
	rc = ado_dataframe_group(w, p, order, c->n_cols + 1);
	for (uint64_t i = 0; i < n; i++)
		sv[i] = d->obs_names[perm ? perm[i] : i];
	snprintf(p, sizeof p, "%s/obs/_index", g);
	if (!rc)
		rc = ado_write_strings(w, p, sv, n, o);
	for (size_t j = 0; !rc && j < c->n_cols; j++) {
		ocol *oc = &c->cols[j];
		snprintf(p, sizeof p, "%s/obs/%s", g, oc->name);
		if (oc->kind == OC_NUMERIC) {
			size_t cs = ab_dtype_size(oc->dtype);
			for (uint64_t i = 0; i < n; i++)
				memcpy((uint8_t *)buf + i * cs, (uint8_t *)d->colnum[j] + (perm ? perm[i] : i) * cs, cs);
			rc = ado_write_numeric(w, p, oc->dtype, buf, n, o, "array");
		} else if (oc->kind == OC_STRING) {
			for (uint64_t i = 0; i < n; i++)
				sv[i] = d->colstr[j][perm ? perm[i] : i];
			rc = ado_write_strings(w, p, sv, n, o);
		} else {
			for (uint64_t i = 0; i < n; i++)
				codes[i] = d->colcode[j][perm ? perm[i] : i];
			rc = ado_write_categorical(w, p, codes, n, (const char *const *)oc->cats.names,
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
			rc = ado_write_categorical(w, p, codes, n, paths, c->n_in, 0, o);
			free(paths);
		}
	}
	snprintf(p, sizeof p, "%s/var", g);
	for (size_t j = 0; j < c->n_vcols; j++)
		order[j] = c->vcols[j].name;
	if (!rc)
		rc = ado_dataframe_group(w, p, c->n_vcols ? order : NULL, c->n_vcols);
	snprintf(p, sizeof p, "%s/var/_index", g);
	if (!rc)
		rc = ado_write_strings(w, p, (const char *const *)c->vars.names, c->n_vars, o);
	for (size_t j = 0; !rc && j < c->n_vcols; j++) {
		vcol *v = &c->vcols[j];
		snprintf(p, sizeof p, "%s/var/%s", g, v->name);
		if (v->kind == OC_NUMERIC)
			rc = ado_write_numeric(w, p, v->dtype, v->num, c->n_vars, o, "array");
		else if (v->kind == OC_STRING)
			rc = ado_write_strings(w, p, (const char *const *)v->str, c->n_vars, o);
		else
			rc = ado_write_categorical(w, p, v->codes, c->n_vars,
						   (const char *const *)v->cats, v->n_cats, v->ordered, o);
	}
	free(order);
	free(buf);
	free(codes);
	free(sv);
	if (rc)
		return rc == AB_ENOMEM && !*ab_last_error() ? fail(c, "%s", "out of memory", NULL)
							   : fail_lib(c, rc, c->out);
	return 0;
}

/* ------------------------------------------------------------------------- */
/* the run                                                                   */
/* ------------------------------------------------------------------------- */

/* How many datasets: all rows over --dataset-size, measured in rows, or in
 * bytes of X (the estimate below), rounded up; more when a dataset held in
 * memory would not fit --memory. The Python annbatch writer splits the rows
 * the same way: ceil(total / dataset size) parts of near-equal row counts. */
static uint64_t dataset_count(conv *c)
{
	if (!c->total_rows)
		return 0;
	uint64_t nnz_total = 0;
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		if (in->info.x_kind == AB_X_CSR && in->h5) {
			nnz_total += h5ad_x_nnz(in->h5, 0, in->info.n_obs);
		} else if (in->info.x_kind == AB_X_CSR) {
			ab_csr_info ci;
			ab_csr_get_info(ab_anndata_x_csr(in->ad), &ci);
			nnz_total += ci.nnz;
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
	/* in memory: X, ~64 bytes of obs per row and column, and read scratch */
	double row_mem = row_x * 1.5 + 64.0 * (double)(c->n_cols + 2);
	uint64_t cap = (uint64_t)((double)c->memory / row_mem);
	if (!cap)
		cap = 1;
	if (n < (c->total_rows + cap - 1) / cap)
		n = (c->total_rows + cap - 1) / cap;
	if (n < 1)
		n = 1;
	return n < c->total_rows ? n : c->total_rows;
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
static int check_paths(conv *c, char **paths, size_t n)
{
	char *ro = real_path_of(c->out);
	int ret = 0;
	for (size_t i = 0; ro && i < n && !ret; i++) {
		char *ri = realpath(paths[i], NULL);
		if (!ri)
			continue; /* open_inputs reports it */
		if (path_under(ro, ri))
			ret = fail(c, strcmp(ro, ri) ? "-o %s is inside the input %s; not written"
						     : "-o %s is the input %s; not written",
				   c->out, paths[i]);
		else if (path_under(ri, ro))
			ret = fail(c, "the input %s is inside the output %s; not written", paths[i], c->out);
		free(ri);
	}
	free(ro);
	return ret;
}

/* the sum print_summary asks nftw for (nftw passes no user argument) */
static uint64_t tree_bytes;

static int add_file_bytes(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p, (void)f;
	if (flag == FTW_F)
		tree_bytes += (uint64_t)st->st_size;
	return 0;
}

/* One line on stderr once the collection is in place, whether or not a
 * progress line was shown: what was written and how long it took. */
static void print_summary(conv *c, uint64_t nds, double t_start)
{
	tree_bytes = 0;
	nftw(c->out, add_file_bytes, 16, FTW_PHYS);
	char what[64] = "";
	if (c->first_dataset)
		snprintf(what, sizeof what, " (now %" PRIu64 " in all)", c->first_dataset + nds);
	fprintf(stderr,
		"annbatch convert: %s %s: %" PRIu64 " dataset%s%s, %" PRIu64 " rows, %" PRIu64 " genes, %s %s X,"
		" %" PRIu64 " bytes on disk, %.1f s\n",
		c->first_dataset ? "added to" : "wrote", c->out, nds, nds == 1 ? "" : "s", what, c->total_rows,
		c->n_vars, ab_dtype_name(c->x_dtype), c->sparse ? "csr_matrix" : "dense", tree_bytes,
		now_s() - t_start);
}

static int adopt_existing(conv *c, ab_writer *w, ab_store *old)
{
	char **names;
	size_t n;
	int rc = ab_collection_datasets(old, "", &names, &n);
	if (rc)
		return fail_lib(c, rc, c->out);
	for (size_t i = 0; i < n && !rc; i++)
		rc = ab_writer_adopt(w, c->out, names[i]);
	c->first_dataset = n;
	ab_strings_free(names);
	return rc ? fail_lib(c, rc, c->out) : 0;
}

static int run(conv *c, char **paths, size_t n_paths)
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
			return fail(c, "%s: exists and is not an annbatch collection; not touched (-o takes a new"
				    " path, or a collection to add to)", c->out, NULL);
		if ((rc = ab_collection_datasets(old, "", &ds, &nds)) || nds == 0) {
			ab_store_close(old);
			if (!rc)
				return fail(c, "%s: exists and is an empty collection", c->out, NULL);
			return fail(c, "%s: exists and is not an annbatch collection; not touched",
				    c->out, NULL);
		}
		ab_anndata *ad;
		rc = ab_anndata_open(old, ds[0], &ad);
		ab_strings_free(ds);
		if (rc) {
			ab_store_close(old);
			return fail_lib(c, rc, c->out);
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
			return fail_lib(c, rc, c->out);
		}
		for (size_t i = 0; i < nv; i++)
			strtab_add(&c->vars, vn[i] ? vn[i] : "");
		ab_strings_free_n(vn, nv);
		ret = collection_var_columns(c, ad);
		ab_anndata_close(ad);
		if (ret) {
			ab_store_close(old);
			return ret;
		}
		if (c->var_subset)
			fprintf(stderr, "annbatch convert: note: --var-subset ignored, %s fixes the var space\n",
				c->out);
	} else if (c->var_subset && (ret = load_var_subset(c))) {
		return ret;
	}
	int old_sparse = c->sparse;
	if ((ret = open_inputs(c, paths, n_paths, adding || c->var_subset != NULL)))
		goto out;
	/* open_inputs only ever turns sparse on: a sparse collection takes dense
	 * inputs (their zeros dropped), a dense one cannot take sparse inputs. */
	if (adding && !old_sparse && c->sparse) {
		ret = fail(c, "%s: the collection has dense X, an input is sparse", c->out, NULL);
		goto out;
	}
	if ((ret = plan_columns(c)))
		goto out;
	if ((ret = plan_obs_names(c, old)))
		goto out;
	if (!adding && (ret = plan_var_columns(c)))
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
		ret = fail(c, "%s", "out of memory", NULL);
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
	rng r;
	rng_seed(&r, c->seed, 0x5348554646ull);
	if (c->shuffle)
		rng_shuffle_u64(&r, order, nb);
	uint64_t nds = dataset_count(c);

	ab_writer_config wc;
	ab_writer_config_init(&wc);
	wc.overwrite = adding;
	ab_writer *w;
	struct sigaction old_sa[2];
	catch_stop(old_sa);
	if ((rc = ab_writer_create(c->out, &wc, &w))) {
		release_stop(old_sa);
		free(blocks);
		free(order);
		ret = fail_lib(c, rc, c->out);
		goto out;
	}
	if (adding && (ret = adopt_existing(c, w, old)))
		goto abort;
	if ((rc = ab_writer_group(w, "", "{\"encoding-type\":\"annbatch-preshuffled\","
				  "\"encoding-version\":\"0.1.0\"}"))) {
		ret = fail_lib(c, rc, c->out);
		goto abort;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	void *scratch = NULL;
	uint64_t scap = 0, bi = 0, boff = 0;
	for (uint64_t k = 0; k < nds && !ret && !stop_sig; k++) {
		/* The blocks in their order are one stream of rows, cut into nds
		 * parts as np.array_split cuts it: the first total % nds parts
		 * have one row more. A block may straddle two datasets. */
		uint64_t rows = c->total_rows / nds + (k < c->total_rows % nds);
		dset d;
		memset(&d, 0, sizeof d);
		if ((ret = dset_alloc(c, &d, rows))) {
			dset_free(c, &d);
			break;
		}
		uint64_t row0 = 0;
		while (row0 < rows && bi < nb && !ret && !stop_sig) {
			const block *whole = &blocks[order[bi]];
			uint64_t take = whole->end - whole->start - boff;
			if (take > rows - row0)
				take = rows - row0;
			block b = { whole->in, whole->start + boff, whole->start + boff + take };
			ret = read_block_x(c, &d, &b, row0, &scratch, &scap);
			if (!ret)
				ret = read_block_obs(c, &d, &b, row0, &scratch, &scap);
			row0 += take;
			boff += take;
			if (boff == whole->end - whole->start)
				bi++, boff = 0;
			progress(c, 0);
		}
		uint64_t *perm = NULL;
		if (!ret && (c->shuffle || c->n_groupby)) {
			perm = malloc((rows ? rows : 1) * sizeof *perm);
			uint64_t *tmp = malloc((rows ? rows : 1) * sizeof *tmp);
			if (!perm || !tmp) {
				ret = fail(c, "%s", "out of memory", NULL);
			} else {
				for (uint64_t i = 0; i < rows; i++)
					perm[i] = i;
				rng pr;
				rng_seed(&pr, c->seed, 0x5045524d00ull + k);
				if (c->shuffle)
					rng_shuffle_u64(&pr, perm, rows);
				if (c->n_groupby) {
					sort_ctx sc = { c, &d };
					merge_sort(perm, tmp, rows, &sc);
				}
			}
			free(tmp);
		}
		if (!ret && !stop_sig)
			ret = write_dataset(c, w, &d, perm, c->first_dataset + k);
		free(perm);
		dset_free(c, &d);
	}
	free(scratch);
	if (stop_sig) {
		/* whatever failed on the way out of the loops, the signal is the cause */
		int sig = stop_sig;
		progress_clear(c);
		cli_fail(CMD, "interrupted by %s; %s left as it was", sig == SIGINT ? "SIGINT" : "SIGTERM", c->out);
		ret = 128 + sig;
		goto abort;
	}
	if (ret)
		goto abort;
	for (size_t i = 0; c->adding && i < c->n_in; i++)
		if (c->in[i].check_cast) {
			progress_clear(c);
			fprintf(stderr, "annbatch convert: note: %s: X %s into the collection's %s: every "
				"value was checked to fit\n", c->in[i].path, ab_dtype_name(c->in[i].info.x_dtype),
				ab_dtype_name(c->x_dtype));
		}
	for (size_t i = 0; c->adding && i < c->n_in; i++)
		if (c->in[i].vars_dropped) {
			progress_clear(c);
			fprintf(stderr, "annbatch convert: note: %s: --drop-new-genes dropped %" PRIu64
				" genes not in the collection, %" PRIu64 " non-zero values\n", c->in[i].path,
				c->in[i].vars_dropped, c->in[i].values_dropped);
		}
	free(blocks);
	free(order);
	progress(c, 1);
	c->bar_shown = 0;
	if ((rc = ab_writer_commit(w)))
		ret = fail_lib(c, rc, c->out);
	else
		print_summary(c, nds, t_start);
	release_stop(old_sa);
	goto out;
abort:
	free(blocks);
	free(order);
	ab_writer_abort(w);
	release_stop(old_sa);
out:
	if (old)
		ab_store_close(old);
	return ret;
}

static int parse_u64_opt(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return cli_fail(CMD, "%s: expected a non-negative integer, got '%s'", opt, s ? s : "");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return cli_fail(CMD, "%s: expected a non-negative integer, got '%s'", opt, s);
	*out = v;
	return 0;
}

static void conv_free(conv *c)
{
	for (size_t i = 0; i < c->n_in; i++) {
		input *in = &c->in[i];
		for (size_t j = 0; in->obs && j < c->n_cols; j++)
			icol_close(&in->obs[j]);
		free(in->obs);
		icol_close(&in->names);
		h5ad_close(in->h5);
		free(in->colmap);
		if (in->ad)
			ab_anndata_close(in->ad);
		if (in->st)
			ab_store_close(in->st);
	}
	free(c->in);
	for (size_t j = 0; j < c->n_cols; j++) {
		free(c->cols[j].name);
		strtab_free(&c->cols[j].cats);
	}
	free(c->cols);
	free(c->groupby);
	strtab_free(&c->vars);
	if (c->obs_renamed)
		ab_strings_free_n(c->obs_renamed, c->n_obs_renamed);
	for (size_t j = 0; j < c->n_vcols; j++)
		vcol_free(c, &c->vcols[j]);
	free(c->vcols);
	free(c->obs_renamed_rows);
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "var-subset", required_argument, NULL, O_VARSUB },
		{ "make-var-unique", no_argument, NULL, O_VARUNIQ },
		{ "drop-new-genes", no_argument, NULL, O_DROPNEW },
		{ "obs-columns", required_argument, NULL, O_OBSCOLS },
		{ "no-shuffle", no_argument, NULL, O_NOSHUF },
		{ "shuffle-chunk-size", required_argument, NULL, O_SCHUNK },
		{ "dataset-size", required_argument, NULL, O_DSIZE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "groupby", required_argument, NULL, O_GROUPBY },
		{ "n-obs-per-chunk", required_argument, NULL, O_CHUNK },
		{ "shard-size", required_argument, NULL, O_SHARD },
		{ "compressor", required_argument, NULL, O_COMP },
		{ "blosc-blocksize", required_argument, NULL, O_BLOCK },
		{ "memory", required_argument, NULL, O_MEM },
		{ "progress", no_argument, NULL, O_PROG },
		{ "no-progress", no_argument, NULL, O_NOPROG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	conv c;
	memset(&c, 0, sizeof c);
	c.shuffle = 1;
	c.chunk_size = 1000;
	c.ds_bytes = 20000000000ull;
	c.progress = isatty(2);
	c.o = (ado_opts){ .compressor = AB_COMPRESSOR_BLOSC_LZ4, .level = -1, .n_obs_per_chunk = 64,
			  .shard_bytes = 1000000000ull };
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	c.memory = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 4 : (uint64_t)4 << 30;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(convert_usage, stdout);
			return 0;
		case 'o':
			c.out = optarg;
			break;
		case O_VARSUB:
			c.var_subset = optarg;
			break;
		case O_OBSCOLS:
			c.obs_columns_opt = optarg;
			break;
		case O_VARUNIQ:
			c.make_var_unique = 1;
			break;
		case O_DROPNEW:
			c.drop_new_genes = 1;
			break;
		case O_NOSHUF:
			c.shuffle = 0;
			break;
		case O_SCHUNK:
			if (parse_u64_opt("--shuffle-chunk-size", optarg, &c.chunk_size))
				return 1;
			if (!c.chunk_size)
				return cli_fail(CMD, "--shuffle-chunk-size must be at least 1");
			break;
		case O_DSIZE: {
			size_t l = strlen(optarg);
			int plain = l > 0 && strspn(optarg, "0123456789") == l;
			if (plain) {
				if (parse_u64_opt("--dataset-size", optarg, &c.ds_rows))
					return 1;
				if (!c.ds_rows)
					return cli_fail(CMD, "--dataset-size must be at least 1");
			} else if (ado_parse_size(optarg, &c.ds_bytes) || !c.ds_bytes) {
				return cli_fail(CMD, "--dataset-size '%s': expected rows (a number) or a size like 20GB",
						optarg);
			}
			break;
		}
		case O_SEED:
			if (parse_u64_opt("--seed", optarg, &c.seed))
				return 1;
			break;
		case O_GROUPBY:
			c.groupby_opt = optarg;
			break;
		case O_CHUNK:
			if (parse_u64_opt("--n-obs-per-chunk", optarg, &c.o.n_obs_per_chunk))
				return 1;
			if (!c.o.n_obs_per_chunk)
				return cli_fail(CMD, "--n-obs-per-chunk must be at least 1");
			break;
		case O_SHARD:
			if (ado_parse_size(optarg, &c.o.shard_bytes) || !c.o.shard_bytes)
				return cli_fail(CMD, "--shard-size '%s': expected a size like 1GB or 256MiB", optarg);
			break;
		case O_COMP:
			if (ab_compressor_parse(optarg, &c.o.compressor))
				return cli_fail(CMD, "--compressor: %s", ab_last_error());
			break;
		case O_BLOCK:
			if (ado_parse_blocksize(CMD, optarg, &c.o))
				return 1;
			break;
		case O_MEM:
			if (ado_parse_size(optarg, &c.memory) || !c.memory)
				return cli_fail(CMD, "--memory '%s': expected a size like 8GB", optarg);
			break;
		case O_PROG:
			c.progress = 1;
			break;
		case O_NOPROG:
			c.progress = 0;
			break;
		default:
			fputs(convert_usage, stderr);
			return 2;
		}
	}
	if (!c.out)
		return cli_fail(CMD, "-o OUT is required (see --help)");
	if (optind >= argc)
		return cli_fail(CMD, "no INPUT given (see --help)");
	int ret = run(&c, argv + optind, (size_t)(argc - optind));
	conv_free(&c);
	return ret;
}
