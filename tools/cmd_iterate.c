/* cmd_iterate.c - `annbatch iterate`: one line per batch, in order. */
#include "cli.h"
#include "loader_opts.h"

#include <stdlib.h>
#include <string.h>

static const char iterate_usage_head[] =
	"Usage: annbatch iterate INPUT... [options] [--emit MODE]\n"
	"\n"
	"Runs the loader over INPUT (an AnnData store: its X; an annbatch collection:\n"
	"every dataset; a store whose root is an array, or STORE:NODE: a raw array,\n"
	"rows on axis 0) and prints one line\n"
	"per batch, in order: the batch's global row indices separated by spaces\n"
	"(--emit index, the default), or tokens i:s with s the sum of row i's values\n"
	"printed with %.17g (--emit index+rowsum; index+colsum weights each value by\n"
	"its column + 1), or tokens i=v;v;... with the values\n"
	"of the --obs columns (numbers with %.17g, categories as integer codes, -1 when\n"
	"missing; --emit index+obs). With --obs-labels categories print as their labels\n"
	"(bytes below 0x21, ';', '=', '%' and 0x7f as %XX; nothing when missing).\n"
	"\n";

static const char iterate_usage_tail[] =
	"Output:\n"
	"  --emit MODE           index (default), index+rowsum, index+colsum or index+obs\n"
	"  --obs-labels          index+obs: categories as labels instead of codes\n"
	"  --stats               print loader statistics on stderr at the end\n"
	"  --epochs N            run N epochs in a row in one loader (--epoch, +1, ...),\n"
	"                        printing the batches of each in turn (1)\n"
	"  -h, --help            this help\n";

static void usage(FILE *f)
{
	fputs(iterate_usage_head, f);
	fputs(loader_opts_help, f);
	fputs(iterate_usage_tail, f);
}

enum { O_EMIT = 1, O_STATS, O_EPOCHS, O_LABELS };

/* A label as one token: the separators of the output and the escape
 * character itself become %XX, as do blanks and control bytes. */
static void put_label(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == ';' || *p == '=' || *p == '%' || *p == 0x7f)
			printf("%%%02X", *p);
		else
			putchar(*p);
	}
}


int cmd_iterate(int argc, char **argv)
{
	struct option opts[64];
	size_t n = 0;
	for (const struct option *p = loader_long_opts; p->name; p++)
		opts[n++] = *p;
	opts[n++] = (struct option){ "emit", required_argument, NULL, O_EMIT };
	opts[n++] = (struct option){ "stats", no_argument, NULL, O_STATS };
	opts[n++] = (struct option){ "epochs", required_argument, NULL, O_EPOCHS };
	opts[n++] = (struct option){ "obs-labels", no_argument, NULL, O_LABELS };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	loader_opts lo;
	loader_opts_init(&lo);
	int emit = 0, stats = 0, labels = 0, c;
	uint64_t nepochs = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r = loader_opts_handle(&lo, c, optarg, "iterate");
		if (r == 0)
			continue;
		if (r == 2)
			return 2;
		switch (c) {
		case O_EMIT:
			if (strcmp(optarg, "index") == 0) emit = 0;
			else if (strcmp(optarg, "index+rowsum") == 0) emit = 1;
			else if (strcmp(optarg, "index+obs") == 0) emit = 2;
			else if (strcmp(optarg, "index+colsum") == 0) emit = 3;
			else return cli_fail("iterate", "--emit must be index, index+rowsum, index+colsum or index+obs"), 2;
			break;
		case O_STATS: stats = 1; break;
		case O_LABELS: labels = 1; break;
		case O_EPOCHS:
			if (parse_count("iterate", "--epochs", optarg, &nepochs))
				return 2;
			if (nepochs == 0)
				return cli_fail("iterate", "--epochs must be a positive integer"), 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "annbatch iterate: expected at least one INPUT\n");
		usage(stderr);
		return 2;
	}
	if (emit == 2 && !lo.obs_list)
		return cli_fail("iterate", "--emit index+obs needs --obs COL,COL"), 2;
	if (labels && emit != 2)
		return cli_fail("iterate", "--obs-labels needs --emit index+obs"), 2;
	ab_loader *ld;
	int ret = loader_opts_build(&lo, argv + optind, argc - optind, "iterate", &ld);
	if (ret)
		return ret;
	int rc;
	/* --epochs: one loader runs several epochs in a row, as a training loop
	 * does; the ceiling tests watch its memory and files across them. */
	for (uint64_t e = 0; e < nepochs && !ret; e++) {
		if ((rc = ab_loader_start(ld, lo.epoch + e)))
			ret = cli_fail_lib("iterate", rc, NULL);
		ab_batch *b;
		while (!ret && (rc = ab_loader_next(ld, &b)) == 0) {
			ab_batch_view bv;
			ab_batch_get_view(b, &bv);
			for (uint64_t r = 0; r < bv.nrows; r++) {
				if (r)
					putchar(' ');
				if (emit == 0) {
					printf("%llu", (unsigned long long)bv.rows[r]);
				} else if (emit == 2) {
					printf("%llu=", (unsigned long long)bv.rows[r]);
					for (size_t k = 0; k < bv.n_obs; k++) {
						if (k)
							putchar(';');
						const ab_batch_obs *o = &bv.obs[k];
						if (o->categorical && labels) {
							if (o->codes[r] >= 0 && (size_t)o->codes[r] < o->n_labels)
								put_label(o->labels[o->codes[r]]);
						} else if (o->categorical)
							printf("%d", bv.obs[k].codes[r]);
						else
							printf("%.17g", bv.obs[k].values[r]);
					}
				} else {
					/* rowsum: the sum of the row's values; colsum: each
					 * value weighted by its column + 1, so a value in
					 * the wrong column shows too */
					double s = 0;
					int w = emit == 3;
					if (bv.sparse) {
						for (int64_t k = bv.indptr[r]; k < bv.indptr[r + 1]; k++)
							s += ab_item_as_double(bv.dtype, bv.values, (size_t)k) *
							     (w ? (double)bv.indices[k] + 1 : 1.0);
					} else {
						for (uint64_t k = 0; k < bv.row_items; k++)
							s += ab_item_as_double(bv.dtype, bv.data, (size_t)(r * bv.row_items + k)) *
							     (w ? (double)k + 1 : 1.0);
					}
					printf("%llu:%.17g", (unsigned long long)bv.rows[r], s);
				}
			}
			putchar('\n');
			ab_batch_release(b);
		}
		if (!ret && rc != AB_END)
			ret = cli_fail_lib("iterate", rc, NULL);
	}
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
