/* cmd_iterate.c - `annbatch iterate`: one line per batch, in order. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char iterate_usage[] =
	"Usage: annbatch iterate INPUT... [options] [--emit index|index+rowsum]\n"
	"\n"
	"Runs the loader over INPUT (an AnnData store: its X; an annbatch collection:\n"
	"every dataset; STORE:NODE: a raw array, rows on axis 0) and prints one line\n"
	"per batch, in order: the batch's global row indices separated by spaces\n"
	"(--emit index, the default), or tokens i:s with s the sum of row i's values\n"
	"printed with %.17g (--emit index+rowsum), or tokens i=v;v;... with the values\n"
	"of the --obs columns (numbers with %.17g, categories as integer codes, -1 when\n"
	"missing; --emit index+obs).\n"
	"\n"
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
	"                        RANK/WORLD_SIZE, OMPI_COMM_WORLD_*, SLURM_PROCID/NTASKS)\n"
	"  --start-batch N       resume the epoch after N batches\n"
	"  --class-column COL    every batch from one class of the categorical obs COL\n"
	"                        (data grouped by class on disk; num_samples rows a pass)\n"
	"  --class-weights W,W   class weights in category order (uniform; 0 excludes)\n"
	"  --obs COL,COL         obs columns delivered with each batch (see --emit)\n"
	"Engine:\n"
	"  --io direct|buffered|auto   I/O mode (auto: direct above half of RAM)\n"
	"  --backend uring|pread       I/O backend (default: uring, pread if refused)\n"
	"  --queue-depth N       reads in flight (64)\n"
	"  --threads N           decode threads (number of CPUs)\n"
	"  --max-windows N       windows in flight, the memory ceiling (3)\n"
	"  --stats               print loader statistics on stderr at the end\n"
	"  -h, --help            this help\n";

enum {
	O_BATCH = 256, O_CHUNK, O_PRELOAD, O_SHUFFLE, O_SEED, O_EPOCH, O_DROP, O_REPL, O_NUMS, O_MASK,
	O_RANK, O_WORLD, O_IO, O_BACKEND, O_QD, O_THREADS, O_EMIT, O_START, O_WINDOWS, O_STATS,
	O_CLASSCOL, O_CLASSW, O_OBS
};

static int parse_num(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return cli_fail("iterate", "%s: expected a non-negative integer, got '%s'", opt, s ? s : "");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return cli_fail("iterate", "%s: expected a non-negative integer, got '%s'", opt, s);
	*out = v;
	return 0;
}

/* Adds one INPUT to the loader. */
static int add_input(ab_loader *ld, const char *in)
{
	struct stat sb;
	int rc;
	if (stat(in, &sb) != 0) {
		const char *colon = strrchr(in, ':');
		if (colon && colon != in) {
			char *store = strndup(in, (size_t)(colon - in));
			if (!store)
				return cli_fail("iterate", "out of memory");
			rc = ab_loader_add_array(ld, store, colon + 1);
			free(store);
			return rc ? cli_fail_lib("iterate", rc, in) : 0;
		}
	}
	rc = ab_loader_add_anndata(ld, in);
	return rc ? cli_fail_lib("iterate", rc, NULL) : 0;
}

static double value_at(ab_dtype dt, const void *p, uint64_t i)
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
	default: return 0; /* float16 is promoted by the loader's to_float32 */
	}
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

static int set_obs(ab_loader *ld, const char *list)
{
	size_t n;
	char **v = split_list(list, &n);
	if (!v)
		return cli_fail("iterate", "out of memory");
	int rc = ab_loader_set_obs_columns(ld, (const char *const *)v, n);
	free_list(v, n);
	return rc ? cli_fail_lib("iterate", rc, NULL) : 0;
}

static int set_class(ab_loader *ld, const char *col, const char *weights)
{
	double *w = NULL;
	size_t n = 0;
	if (weights) {
		char **v = split_list(weights, &n);
		w = v ? malloc(n * sizeof *w) : NULL;
		for (size_t i = 0; w && i < n; i++) {
			char *end;
			w[i] = strtod(v[i] ? v[i] : "", &end);
			if (!v[i] || end == v[i] || *end || !(w[i] >= 0)) {
				int r = cli_fail("iterate", "--class-weights: '%s' is not a non-negative number",
						 v[i] ? v[i] : "");
				free_list(v, n);
				free(w);
				return r;
			}
		}
		if (v)
			free_list(v, n);
		if (!w)
			return cli_fail("iterate", "out of memory");
	}
	int rc = ab_loader_set_class_column(ld, col, w, n);
	free(w);
	return rc ? cli_fail_lib("iterate", rc, NULL) : 0;
}

int cmd_iterate(int argc, char **argv)
{
	static const struct option opts[] = {
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
		{ "emit", required_argument, NULL, O_EMIT },
		{ "stats", no_argument, NULL, O_STATS },
		{ "class-column", required_argument, NULL, O_CLASSCOL },
		{ "class-weights", required_argument, NULL, O_CLASSW },
		{ "obs", required_argument, NULL, O_OBS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	ab_loader_config cfg;
	ab_loader_config_init(&cfg);
	int rowsum = 0, stats = 0, c;
	const char *class_col = NULL, *class_w = NULL, *obs_list = NULL;
	uint64_t v, epoch = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "option";
		switch (c) {
		case O_BATCH: if (parse_num(name, optarg, &cfg.batch_size)) return 2; break;
		case O_CHUNK: if (parse_num(name, optarg, &cfg.chunk_size)) return 2; break;
		case O_PRELOAD: if (parse_num(name, optarg, &cfg.preload_nchunks)) return 2; break;
		case O_SHUFFLE: cfg.shuffle = 1; break;
		case O_SEED: if (parse_num(name, optarg, &cfg.seed)) return 2; break;
		case O_EPOCH: if (parse_num(name, optarg, &epoch)) return 2; break;
		case O_DROP: cfg.drop_last = 1; break;
		case O_REPL: cfg.replacement = 1; break;
		case O_NUMS: if (parse_num(name, optarg, &cfg.num_samples)) return 2; break;
		case O_START: if (parse_num(name, optarg, &cfg.start_batch)) return 2; break;
		case O_MASK: {
			int has_b;
			if (cli_parse_range(optarg, &cfg.mask_start, &cfg.mask_stop, &has_b))
				return cli_fail("iterate", "--mask '%s': expected A:B", optarg), 2;
			if (!has_b)
				cfg.mask_stop = 0;
			break;
		}
		case O_RANK:
			if (parse_num(name, optarg, &v) || v > 1u << 30) return 2;
			cfg.rank = (int)v;
			break;
		case O_WORLD:
			if (parse_num(name, optarg, &v) || v == 0 || v > 1u << 30)
				return cli_fail("iterate", "--world-size must be a positive integer"), 2;
			cfg.world_size = (int)v;
			break;
		case O_IO:
			if (strcmp(optarg, "direct") == 0) cfg.io_mode = AB_IO_MODE_DIRECT;
			else if (strcmp(optarg, "buffered") == 0) cfg.io_mode = AB_IO_MODE_BUFFERED;
			else if (strcmp(optarg, "auto") == 0) cfg.io_mode = AB_IO_MODE_AUTO;
			else return cli_fail("iterate", "--io must be direct, buffered or auto"), 2;
			break;
		case O_BACKEND:
			if (strcmp(optarg, "uring") == 0) cfg.backend = AB_BACKEND_URING;
			else if (strcmp(optarg, "pread") == 0) cfg.backend = AB_BACKEND_PREAD;
			else return cli_fail("iterate", "--backend must be uring or pread"), 2;
			break;
		case O_QD:
			if (parse_num(name, optarg, &v) || v == 0 || v > 4096)
				return cli_fail("iterate", "--queue-depth must be 1..4096"), 2;
			cfg.queue_depth = (unsigned)v;
			break;
		case O_THREADS:
			if (parse_num(name, optarg, &v) || v == 0 || v > 256)
				return cli_fail("iterate", "--threads must be 1..256"), 2;
			cfg.threads = (unsigned)v;
			break;
		case O_WINDOWS:
			if (parse_num(name, optarg, &v) || v == 0 || v > 64)
				return cli_fail("iterate", "--max-windows must be 1..64"), 2;
			cfg.max_windows = (unsigned)v;
			break;
		case O_EMIT:
			if (strcmp(optarg, "index") == 0) rowsum = 0;
			else if (strcmp(optarg, "index+rowsum") == 0) rowsum = 1;
			else if (strcmp(optarg, "index+obs") == 0) rowsum = 2;
			else return cli_fail("iterate", "--emit must be index, index+rowsum or index+obs"), 2;
			break;
		case O_STATS: stats = 1; break;
		case O_CLASSCOL: class_col = optarg; break;
		case O_CLASSW: class_w = optarg; break;
		case O_OBS: obs_list = optarg; break;
		case 'h': fputs(iterate_usage, stdout); return 0;
		default: fputs(iterate_usage, stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "annbatch iterate: expected at least one INPUT\n%s", iterate_usage);
		return 2;
	}
	if (rowsum == 2 && !obs_list)
		return cli_fail("iterate", "--emit index+obs needs --obs COL,COL"), 2;
	if (class_w && !class_col)
		return cli_fail("iterate", "--class-weights needs --class-column"), 2;
	ab_loader *ld;
	int rc = ab_loader_create(&cfg, &ld);
	if (rc)
		return cli_fail_lib("iterate", rc, NULL);
	int ret = 0;
	for (int i = optind; i < argc && !ret; i++)
		ret = add_input(ld, argv[i]);
	if (!ret && obs_list)
		ret = set_obs(ld, obs_list);
	if (!ret && class_col)
		ret = set_class(ld, class_col, class_w);
	if (!ret && (rc = ab_loader_start(ld, epoch)))
		ret = cli_fail_lib("iterate", rc, NULL);
	ab_batch *b;
	while (!ret && (rc = ab_loader_next(ld, &b)) == 0) {
		ab_batch_view bv;
		ab_batch_get_view(b, &bv);
		for (uint64_t r = 0; r < bv.nrows; r++) {
			if (r)
				putchar(' ');
			if (rowsum == 0) {
				printf("%llu", (unsigned long long)bv.rows[r]);
				continue;
			}
			if (rowsum == 2) {
				printf("%llu=", (unsigned long long)bv.rows[r]);
				for (size_t k = 0; k < bv.n_obs; k++) {
					if (k)
						putchar(';');
					if (bv.obs[k].categorical)
						printf("%d", bv.obs[k].codes[r]);
					else
						printf("%.17g", bv.obs[k].values[r]);
				}
				continue;
			}
			double s = 0;
			if (bv.sparse) {
				for (int64_t k = bv.indptr[r]; k < bv.indptr[r + 1]; k++)
					s += value_at(bv.dtype, bv.values, (uint64_t)k);
			} else {
				for (uint64_t k = 0; k < bv.row_items; k++)
					s += value_at(bv.dtype, bv.data, r * bv.row_items + k);
			}
			printf("%llu:%.17g", (unsigned long long)bv.rows[r], s);
		}
		putchar('\n');
		ab_batch_release(b);
	}
	if (!ret && rc != AB_END)
		ret = cli_fail_lib("iterate", rc, NULL);
	if (stats) {
		ab_loader_stats st;
		ab_loader_get_stats(ld, &st);
		fprintf(stderr, "rows=%llu batches=%llu reads=%llu bytes_read=%llu bytes_decoded=%llu backend=%s io=%s "
			"read_p50_us=%.1f read_p99_us=%.1f%s%s\n",
			(unsigned long long)st.rows, (unsigned long long)st.batches, (unsigned long long)st.reads,
			(unsigned long long)st.bytes_read, (unsigned long long)st.bytes_decoded, st.backend, st.io_mode,
			st.read_lat_us[0], st.read_lat_us[2], *st.note ? " note=" : "", st.note);
	}
	if (fflush(stdout) != 0 && !ret)
		ret = cli_fail("iterate", "writing the output failed");
	ab_loader_destroy(ld);
	return ret;
}
