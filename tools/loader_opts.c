/* loader_opts.c - the loader options shared by `iterate` and `bench`. */
#include "loader_opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum {
	O_BATCH = LOPT_FIRST, O_CHUNK, O_PRELOAD, O_SHUFFLE, O_SEED, O_EPOCH, O_DROP, O_REPL, O_NUMS, O_MASK,
	O_RANK, O_WORLD, O_IO, O_BACKEND, O_QD, O_THREADS, O_START, O_WINDOWS, O_CLASSCOL, O_CLASSW, O_OBS,
	O_F32, O_DECODE, O_SHARDS, O_OBSLABELS
};

const struct option loader_long_opts[] = {
	{ "batch-size", required_argument, NULL, O_BATCH },
	{ "chunk-size", required_argument, NULL, O_CHUNK },
	{ "preload-nchunks", required_argument, NULL, O_PRELOAD },
	{ "shuffle", no_argument, NULL, O_SHUFFLE },
	{ "seed", required_argument, NULL, O_SEED },
	{ "epoch", required_argument, NULL, O_EPOCH },
	{ "drop-last", no_argument, NULL, O_DROP },
	{ "replacement", no_argument, NULL, O_REPL },
	{ "num-samples", required_argument, NULL, O_NUMS },
	{ "mask", required_argument, NULL, O_MASK },
	{ "rank", required_argument, NULL, O_RANK },
	{ "world-size", required_argument, NULL, O_WORLD },
	{ "io", required_argument, NULL, O_IO },
	{ "backend", required_argument, NULL, O_BACKEND },
	{ "queue-depth", required_argument, NULL, O_QD },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "max-windows", required_argument, NULL, O_WINDOWS },
	{ "start-batch", required_argument, NULL, O_START },
	{ "class-column", required_argument, NULL, O_CLASSCOL },
	{ "class-weights", required_argument, NULL, O_CLASSW },
	{ "obs", required_argument, NULL, O_OBS },
	{ "float32", no_argument, NULL, O_F32 },
	{ "decode", required_argument, NULL, O_DECODE },
	{ "rank-shards", required_argument, NULL, O_SHARDS },
	{ NULL, 0, NULL, 0 }
};

const char loader_opts_help[] =
	"Sampling (defaults as in the Python annbatch library):\n"
	"  --batch-size N        rows per batch (1)\n"
	"  --chunk-size N        rows per contiguous chunk (512)\n"
	"  --preload-nchunks N   chunks loaded and shuffled together (32)\n"
	"  --shuffle             random chunk order and in-memory permutation\n"
	"  --seed N              random seed (0)\n"
	"  --epoch N             epoch number, part of the random stream (0)\n"
	"  --drop-last           drop the last incomplete batch\n"
	"  --replacement         draw chunks with replacement\n"
	"  --num-samples N       rows per pass (default: the mask's rows)\n"
	"  --mask A:B            only rows [A, B)\n"
	"  --rank R --world-size W  distributed: this process's share (default from\n"
	"                        RANK/WORLD_SIZE, OMPI_COMM_WORLD_*, SLURM_PROCID/NTASKS;\n"
	"                        half a pair, or an empty one, is an error)\n"
	"  --rank-shards fixed|rotate  fixed (default): rank R always reads the same\n"
	"                        slice, so it never sees the other ranks' rows (on data\n"
	"                        grouped by class, whole classes) and the remainder rows\n"
	"                        are never read; rotate: each epoch the chunks are dealt\n"
	"                        anew from --seed and the epoch (disjoint, equal shares;\n"
	"                        every row read within any 2 consecutive epochs)\n"
	"  --start-batch N       resume the epoch after N batches\n"
	"  --class-column COL    every batch from one class of the categorical obs COL\n"
	"                        (data grouped by class on disk; num_samples rows a pass)\n"
	"  --class-weights W,W   class weights in category order (uniform; 0 excludes),\n"
	"                        or by label: 'T cell=2,B cell=1' (every class named, or\n"
	"                        '*=W' for the others; %XX escapes as --obs-labels prints;\n"
	"                        a label that is not a class is an error naming it)\n"
	"  --obs COL,COL         obs columns delivered with each batch\n"
	"  --float32             convert values to float32\n"
	"Engine:\n"
	"  --io direct|buffered|auto   I/O mode: direct (default; buffered where the\n"
	"                        filesystem refuses O_DIRECT), buffered, or auto (direct\n"
	"                        when the data is larger than half of RAM)\n"
	"  --backend uring|pread       I/O backend (default: uring, pread if refused)\n"
	"  --queue-depth N       reads in flight (64)\n"
	"  --threads N           decode threads (number of CPUs)\n"
	"  --max-windows N       windows in flight, the memory ceiling (3)\n"
	"  --decode blocks|chunks  blocks (default): decode only the blosc blocks that\n"
	"                        hold the rows asked for (and in shards, once a chunk\n"
	"                        was read whole, read only them); chunks: whole chunks\n"
	"                        (same batches)\n";

void loader_opts_init(loader_opts *o)
{
	memset(o, 0, sizeof *o);
	ab_loader_config_init(&o->cfg);
}

int parse_count(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return cli_fail(cmd, "%s: expected a non-negative integer, got '%s'", opt, s ? s : ""), 2;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return cli_fail(cmd, "%s: expected a non-negative integer, got '%s'", opt, s), 2;
	*out = v;
	return 0;
}

/* A bounded integer option. */
static int parse_bounded(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi, unsigned *out)
{
	uint64_t v;
	if (parse_count(cmd, opt, s, &v))
		return 2;
	if (v < lo || v > hi)
		return cli_fail(cmd, "%s must be %llu..%llu", opt, (unsigned long long)lo, (unsigned long long)hi), 2;
	*out = (unsigned)v;
	return 0;
}

int loader_opts_handle(loader_opts *o, int c, const char *arg, const char *cmd)
{
	ab_loader_config *cfg = &o->cfg;
	unsigned u;
	switch (c) {
	case O_BATCH: return parse_count(cmd, "--batch-size", arg, &cfg->batch_size);
	case O_CHUNK: return parse_count(cmd, "--chunk-size", arg, &cfg->chunk_size);
	case O_PRELOAD: return parse_count(cmd, "--preload-nchunks", arg, &cfg->preload_nchunks);
	case O_SHUFFLE: cfg->shuffle = 1; return 0;
	case O_SEED: return parse_count(cmd, "--seed", arg, &cfg->seed);
	case O_EPOCH: return parse_count(cmd, "--epoch", arg, &o->epoch);
	case O_DROP: cfg->drop_last = 1; return 0;
	case O_REPL: cfg->replacement = 1; return 0;
	case O_NUMS: return parse_count(cmd, "--num-samples", arg, &cfg->num_samples);
	case O_START: return parse_count(cmd, "--start-batch", arg, &cfg->start_batch);
	case O_F32: cfg->to_float32 = 1; return 0;
	case O_MASK: {
		int has_b;
		if (cli_parse_range(arg, &cfg->mask_start, &cfg->mask_stop, &has_b))
			return cli_fail(cmd, "--mask '%s': expected A:B", arg), 2;
		if (!has_b)
			cfg->mask_stop = 0;
		return 0;
	}
	case O_RANK:
		if (parse_bounded(cmd, "--rank", arg, 0, 1u << 30, &u))
			return 2;
		cfg->rank = (int)u;
		return 0;
	case O_WORLD:
		if (parse_bounded(cmd, "--world-size", arg, 1, 1u << 30, &u))
			return 2;
		cfg->world_size = (int)u;
		return 0;
	case O_IO:
		if (strcmp(arg, "direct") == 0) cfg->io_mode = AB_IO_MODE_DIRECT;
		else if (strcmp(arg, "buffered") == 0) cfg->io_mode = AB_IO_MODE_BUFFERED;
		else if (strcmp(arg, "auto") == 0) cfg->io_mode = AB_IO_MODE_AUTO;
		else return cli_fail(cmd, "--io must be direct, buffered or auto"), 2;
		return 0;
	case O_BACKEND:
		if (strcmp(arg, "uring") == 0) cfg->backend = AB_BACKEND_URING;
		else if (strcmp(arg, "pread") == 0) cfg->backend = AB_BACKEND_PREAD;
		else return cli_fail(cmd, "--backend must be uring or pread"), 2;
		return 0;
	case O_QD: return parse_bounded(cmd, "--queue-depth", arg, 1, 4096, &cfg->queue_depth);
	case O_THREADS: return parse_bounded(cmd, "--threads", arg, 1, 256, &cfg->threads);
	case O_WINDOWS: return parse_bounded(cmd, "--max-windows", arg, 1, 64, &cfg->max_windows);
	case O_DECODE:
		if (strcmp(arg, "blocks") == 0) cfg->whole_chunks = 0;
		else if (strcmp(arg, "chunks") == 0) cfg->whole_chunks = 1;
		else return cli_fail(cmd, "--decode must be blocks or chunks"), 2;
		return 0;
	case O_SHARDS:
		if (strcmp(arg, "fixed") == 0) cfg->rank_shards = AB_RANK_SHARDS_FIXED;
		else if (strcmp(arg, "rotate") == 0) cfg->rank_shards = AB_RANK_SHARDS_ROTATE;
		else return cli_fail(cmd, "--rank-shards must be fixed or rotate"), 2;
		return 0;
	case O_CLASSCOL: o->class_col = arg; return 0;
	case O_CLASSW: o->class_w = arg; return 0;
	case O_OBS: o->obs_list = arg; return 0;
	default: return 1;
	}
}

/* Adds one INPUT to the loader. */
static int add_input(ab_loader *ld, const char *in, const char *cmd)
{
	struct stat sb;
	int rc;
	if (stat(in, &sb) != 0) {
		const char *colon = strrchr(in, ':');
		if (colon && colon != in) {
			char *store = strndup(in, (size_t)(colon - in));
			if (!store)
				return cli_fail(cmd, "out of memory");
			rc = ab_loader_add_array(ld, store, colon + 1);
			free(store);
			return rc ? cli_fail_lib(cmd, rc, in) : 0;
		}
	}
	/* A store whose root is an array (an image stack, any raw array) is read
	 * as that array: "stack.zarr" means what "stack.zarr:" means. */
	ab_store *st;
	ab_node_type t = 0;
	if (ab_store_open(in, &st) == 0) {
		if (ab_node_type_of(st, "", &t) != 0)
			t = 0;
		ab_store_close(st);
	}
	rc = t == AB_NODE_ARRAY ? ab_loader_add_array(ld, in, "") : ab_loader_add_anndata(ld, in);
	return rc ? cli_fail_lib(cmd, rc, NULL) : 0;
}

/* Splits "a,b,c" into a NULL-terminated array (freed by the caller). */
static char **split_list(const char *s, size_t *n)
{
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	char **v = calloc(cap + 1, sizeof *v);
	if (!v)
		return NULL;
	*n = 0;
	const char *p = s;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		v[(*n)++] = strndup(p, len);
		if (!e)
			break;
		p = e + 1;
	}
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int set_obs(ab_loader *ld, const char *list, const char *cmd)
{
	size_t n;
	char **v = split_list(list, &n);
	if (!v)
		return cli_fail(cmd, "out of memory");
	int rc = ab_loader_set_obs_columns(ld, (const char *const *)v, n);
	free_list(v, n);
	return rc ? cli_fail_lib(cmd, rc, NULL) : 0;
}

/* Decodes %XX escapes in place (the form `iterate --obs-labels` prints labels
 * in), so a label with a comma or '=' can be named; 0 if malformed. */
static int unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		unsigned v = 0;
		for (int k = 1; k <= 2; k++) {
			char h = p[k];
			if (h >= '0' && h <= '9') v = v * 16 + (unsigned)(h - '0');
			else if (h >= 'a' && h <= 'f') v = v * 16 + (unsigned)(h - 'a' + 10);
			else if (h >= 'A' && h <= 'F') v = v * 16 + (unsigned)(h - 'A' + 10);
			else return 0;
		}
		if (v == 0)
			return 0;
		*o++ = (char)v;
		p += 2;
	}
	*o = '\0';
	return 1;
}

/* --class-weights "LABEL=W,LABEL=W[,*=W]": weights by label. */
static int set_class_by_label(ab_loader *ld, char **v, size_t n, const char *cmd)
{
	const char **labels = calloc(n ? n : 1, sizeof *labels);
	double *w = malloc((n ? n : 1) * sizeof *w);
	double rest = 0;
	int has_rest = 0, r = 0;
	size_t m = 0;
	if (!labels || !w)
		r = cli_fail(cmd, "out of memory");
	for (size_t i = 0; !r && i < n; i++) {
		char *eq = v[i] ? strrchr(v[i], '=') : NULL, *end;
		if (!eq)
			r = cli_fail(cmd, "--class-weights: '%s' is not LABEL=W (give every weight by label, or "
				     "none)", v[i] ? v[i] : "");
		if (r)
			break;
		*eq = '\0';
		double x = strtod(eq + 1, &end);
		if (end == eq + 1 || *end || !(x >= 0) || isinf(x)) {
			r = cli_fail(cmd, "--class-weights: the weight of '%s' ('%s') is not a finite non-negative "
				     "number", v[i], eq + 1);
		} else if (strcmp(v[i], "*") == 0) {
			if (has_rest)
				r = cli_fail(cmd, "--class-weights: '*' is given twice");
			has_rest = 1;
			rest = x;
		} else if (!unescape(v[i])) {
			r = cli_fail(cmd, "--class-weights: label '%s' has a bad %%XX escape", v[i]);
		} else {
			labels[m] = v[i];
			w[m++] = x;
		}
	}
	if (!r) {
		int rc = ab_loader_set_class_weights_by_label(ld, labels, w, m, has_rest ? &rest : NULL);
		if (rc)
			r = cli_fail_lib(cmd, rc, NULL);
	}
	free(labels);
	free(w);
	return r;
}

static int set_class(ab_loader *ld, const char *col, const char *weights, const char *cmd)
{
	double *w = NULL;
	size_t n = 0;
	if (weights && strchr(weights, '=')) {
		int rc = ab_loader_set_class_column(ld, col, NULL, 0);
		if (rc)
			return cli_fail_lib(cmd, rc, NULL);
		char **v = split_list(weights, &n);
		if (!v)
			return cli_fail(cmd, "out of memory");
		int r = set_class_by_label(ld, v, n, cmd);
		free_list(v, n);
		return r;
	}
	if (weights) {
		char **v = split_list(weights, &n);
		w = v ? malloc(n * sizeof *w) : NULL;
		for (size_t i = 0; w && i < n; i++) {
			char *end;
			w[i] = strtod(v[i] ? v[i] : "", &end);
			if (!v[i] || end == v[i] || *end || !(w[i] >= 0) || isinf(w[i])) {
				int r = cli_fail(cmd, "--class-weights: '%s' is not a finite non-negative number",
						 v[i] ? v[i] : "");
				free_list(v, n);
				free(w);
				return r;
			}
		}
		if (v)
			free_list(v, n);
		if (!w)
			return cli_fail(cmd, "out of memory");
	}
	int rc = ab_loader_set_class_column(ld, col, w, n);
	free(w);
	return rc ? cli_fail_lib(cmd, rc, NULL) : 0;
}

int loader_opts_build(loader_opts *o, char *const *inputs, int n, const char *cmd, ab_loader **out)
{
	if (o->class_w && !o->class_col)
		return cli_fail(cmd, "--class-weights needs --class-column");
	ab_loader *ld;
	int rc = ab_loader_create(&o->cfg, &ld);
	if (rc)
		return cli_fail_lib(cmd, rc, NULL);
	int ret = 0;
	for (int i = 0; i < n && !ret; i++)
		ret = add_input(ld, inputs[i], cmd);
	if (!ret && o->obs_list)
		ret = set_obs(ld, o->obs_list, cmd);
	if (!ret && o->class_col)
		ret = set_class(ld, o->class_col, o->class_w, cmd);
	if (ret) {
		ab_loader_destroy(ld);
		return ret;
	}
	*out = ld;
	return 0;
}
