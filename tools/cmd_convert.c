/* cmd_convert.c - `annbatch convert`: option parsing, progress and messages
 * over the library's collection writer (ab_collection_write). */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "writer_opts.h"

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
	"straddle two), and each dataset's rows are permuted before it is written\n"
	"(X streamed through a scratch file, not held), so a loader reading\n"
	"contiguous chunks still sees well-mixed rows.\n"
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
	"  --shard-rows N           rows per shard instead (the Python annbatch's\n"
	"                           integer zarr_shard_size; sparse: N rows' worth\n"
	"                           of non-zeros on average), whole chunks\n"
	"  --compressor C           blosc-lz4 (default: clevel 3, byte shuffle),\n"
	"                           blosc-zstd, zstd, gzip, none\n"
	"  --blosc-blocksize SIZE   bytes per blosc block, 16KiB (the loader decodes\n"
	"                           only the blocks holding the rows it needs; see\n"
	"                           README); 0 = libblosc's own choice (256 KiB)\n"
	"  --blosc-split            let libblosc split each block into one stream a\n"
	"                           byte plane, as it does by default (it then makes\n"
	"                           blocks of 2-16-byte values at least 64 KiB);\n"
	"                           --blosc-unsplit (the default here): one stream a\n"
	"                           block, of the size asked\n"
	"  --memory SIZE            memory budget, 1GiB by default: X is streamed\n"
	"                           through a scratch file beside OUT (room for one\n"
	"                           dataset's X), so datasets keep --dataset-size\n"
	"  --threads N              threads reading and converting the inputs ahead\n"
	"                           (the number of CPUs; 1: none beside the run's\n"
	"                           own); the output is the same for any number\n"
	"  --progress / --no-progress  progress line on stderr (default: on a TTY)\n"
	"  -h, --help               this help\n"
	"\n"
	"OUT appears (or changes) only when everything is written: a killed run\n"
	"leaves it as it was; SIGINT or SIGTERM also removes the hidden temporary\n"
	"directory (exit 130 or 143), as does any failure. OUT may not be an input,\n"
	"lie inside one or hold one. Any failure prints one line on stderr and exits\n"
	"non-zero; success prints one summary line on stderr (datasets, rows, genes,\n"
	"X dtype, bytes, seconds). The soft open-file limit is raised to the hard one.\n";

enum { O_VARSUB = 256, O_OBSCOLS, O_NOSHUF, O_SCHUNK, O_DSIZE, O_SEED, O_GROUPBY, O_MEM, O_PROG,
       O_NOPROG, O_VARUNIQ, O_DROPNEW, O_THREADS };

#define CMD "convert"

/* SIGINT/SIGTERM during the run: the handler only records the signal
 * (async-signal-safe); the progress callback sees it and asks the library to
 * stop, which removes the temporary directory, and the run exits 128 + the
 * signal. */
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

/* What the callbacks share: whether a progress line is on screen. */
typedef struct term {
	int show;          /* --progress */
	int bar_shown;     /* a progress line waits for its newline */
	double last;       /* when it was drawn */
} term;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void bar_end(term *t)
{
	if (t->bar_shown) {
		fputc('\n', stderr);
		t->bar_shown = 0;
	}
}

/* The progress line, redrawn at most ten times a second (and at the end). */
static int on_progress(const ab_collection_progress *p, void *ctx)
{
	term *t = ctx;
	if (stop_sig)
		return 1;
	if (!t->show)
		return 0;
	double now = now_s();
	if (!p->final && t->bar_shown && now - t->last < 0.1)
		return 0;
	t->last = now;
	double frac = p->total_rows ? (double)p->rows_done / (double)p->total_rows : 1;
	double mbs = p->elapsed_s > 0 ? (double)p->bytes_read / 1e6 / p->elapsed_s : 0;
	double eta = frac > 0 ? p->elapsed_s * (1 - frac) / frac : 0;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " rows  %.1f MB/s  ETA %d:%02d ", bar, p->rows_done,
		p->total_rows, mbs, (int)eta / 60, (int)eta % 60);
	t->bar_shown = 1;
	if (p->final)
		bar_end(t);
	return 0;
}

static void on_note(const char *msg, void *ctx)
{
	bar_end(ctx);
	fprintf(stderr, "annbatch convert: note: %s\n", msg);
}

/* Splits "a,b,c" into a NULL-terminated list of pointers into s (which it
 * cuts at the commas); *n items. */
static const char **split_commas(char *s, size_t *n)
{
	size_t k = 1;
	for (char *p = s; *p; p++)
		k += *p == ',';
	const char **v = calloc(k + 1, sizeof *v);
	if (!v)
		return NULL;
	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
		v[(*n)++] = tok;
	return v;
}

static int convert(const char *out, const char *const *inputs, size_t n, ab_collection_config *cfg, term *t)
{
	struct sigaction old[2];
	ab_collection_summary sum;
	catch_stop(old);
	int rc = ab_collection_write(out, inputs, n, cfg, &sum);
	int sig = stop_sig;
	release_stop(old);
	bar_end(t);
	if (rc == AB_ECANCELED && sig) {
		cli_fail(CMD, "interrupted by %s; %s left as it was", sig == SIGINT ? "SIGINT" : "SIGTERM", out);
		return 128 + sig;
	}
	if (rc)
		return cli_fail_lib(CMD, rc, NULL);
	char what[64] = "";
	if (sum.first_dataset)
		snprintf(what, sizeof what, " (now %" PRIu64 " in all)", sum.first_dataset + sum.datasets_written);
	fprintf(stderr,
		"annbatch convert: %s %s: %" PRIu64 " dataset%s%s, %" PRIu64 " rows, %" PRIu64 " genes, %s %s X,"
		" %" PRIu64 " bytes on disk, %.1f s\n",
		sum.first_dataset ? "added to" : "wrote", out, sum.datasets_written,
		sum.datasets_written == 1 ? "" : "s", what, sum.rows, sum.n_vars, ab_dtype_name(sum.x_dtype),
		sum.x_kind == AB_X_CSR ? "csr_matrix" : "dense", sum.bytes_on_disk, sum.seconds);
	return 0;
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
		WRITER_LONG_OPTIONS,
		{ "memory", required_argument, NULL, O_MEM },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "progress", no_argument, NULL, O_PROG },
		{ "no-progress", no_argument, NULL, O_NOPROG },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	ab_collection_config cfg;
	ab_collection_config_init(&cfg);
	term t = { .show = isatty(2) };
	const char *out = NULL;
	char *obs_columns = NULL, *groupby = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			fputs(convert_usage, stdout);
			return 0;
		case 'o':
			out = optarg;
			break;
		case O_VARSUB:
			cfg.var_subset_path = optarg;
			break;
		case O_OBSCOLS:
			obs_columns = optarg;
			break;
		case O_VARUNIQ:
			cfg.make_var_unique = 1;
			break;
		case O_DROPNEW:
			cfg.drop_new_genes = 1;
			break;
		case O_NOSHUF:
			cfg.shuffle = 0;
			break;
		case O_SCHUNK:
			if (cli_parse_u64(CMD, "--shuffle-chunk-size", optarg, &cfg.shuffle_chunk_size))
				return 1;
			if (!cfg.shuffle_chunk_size)
				return cli_fail(CMD, "--shuffle-chunk-size must be at least 1");
			break;
		case O_DSIZE: {
			size_t l = strlen(optarg);
			int plain = l > 0 && strspn(optarg, "0123456789") == l;
			if (plain) {
				if (cli_parse_u64(CMD, "--dataset-size", optarg, &cfg.dataset_rows))
					return 1;
				if (!cfg.dataset_rows)
					return cli_fail(CMD, "--dataset-size must be at least 1");
			} else if (parse_size(optarg, &cfg.dataset_bytes) || !cfg.dataset_bytes) {
				return cli_fail(CMD, "--dataset-size '%s': expected rows (a number) or a size like 20GB",
						optarg);
			}
			break;
		}
		case O_SEED:
			if (cli_parse_u64(CMD, "--seed", optarg, &cfg.seed))
				return 1;
			break;
		case O_GROUPBY:
			groupby = optarg;
			break;
		case O_MEM:
			if (parse_size(optarg, &cfg.memory) || !cfg.memory)
				return cli_fail(CMD, "--memory '%s': expected a size like 8GB", optarg);
			break;
		case O_THREADS: {
			uint64_t v;
			if (cli_parse_u64(CMD, "--threads", optarg, &v))
				return 1;
			if (v < 1 || v > 256)
				return cli_fail(CMD, "--threads %s: expected 1 to 256", optarg);
			cfg.threads = (unsigned)v;
			break;
		}
		case O_PROG:
			t.show = 1;
			break;
		case O_NOPROG:
			t.show = 0;
			break;
		default: {
			int w = writer_option(CMD, ch, optarg, &cfg.write);
			if (w < 0)
				return 1;
			if (w > 0)
				break;
			fputs(convert_usage, stderr);
			return 2;
		}
		}
	}
	if (!out)
		return cli_fail(CMD, "-o OUT is required (see --help)");
	if (optind >= argc)
		return cli_fail(CMD, "no INPUT given (see --help)");
	const char **cols = NULL, **gb = NULL;
	if ((obs_columns && !(cols = split_commas(obs_columns, &cfg.n_obs_columns))) ||
	    (groupby && !(gb = split_commas(groupby, &cfg.n_groupby)))) {
		free(cols);
		return cli_fail(CMD, "out of memory");
	}
	cfg.obs_columns = cols;
	cfg.groupby = gb;
	cfg.progress = on_progress;
	cfg.note = on_note;
	cfg.ctx = &t;
	int ret = convert(out, (const char *const *)argv + optind, (size_t)(argc - optind), &cfg, &t);
	free(cols);
	free(gb);
	return ret;
}
