/* annbatch.c - the `annbatch` command: dispatch to subcommands. */
#include "cli.h"

#include <string.h>

static const char main_usage[] =
	"Usage: annbatch COMMAND [ARGS...]\n"
	"\n"
	"Streams shuffled mini-batches out of on-disk AnnData / zarr stores.\n"
	"\n"
	"Commands:\n"
	"  inspect PATH [NODE] [--json]   the tree: arrays, codecs, bytes on disk, AnnData summary\n"
	"  get STORE [NODE] [options]     one node's values as raw bytes or JSON\n"
	"  iterate INPUT... [options]     run the loader: one line per batch\n"
	"  bench INPUT... [options]       the loader as a storage benchmark\n"
	"  convert INPUT... -o OUT [options]  build a preshuffled, sharded zarr v3 collection\n"
	"  synth OUT [options]            write a synthetic AnnData store (zarr or .h5ad)\n"
	"\n"
	"Run 'annbatch COMMAND --help' for a command's options.\n"
	"  -h, --help      this help\n"
	"  -V, --version   print the version\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(main_usage, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		if (strcmp(cmd, "help") == 0 && argc > 2) {
			char *hargv[] = { argv[2], "--help", NULL };
			if (strcmp(argv[2], "inspect") == 0)
				return cmd_inspect(2, hargv);
			if (strcmp(argv[2], "get") == 0)
				return cmd_get(2, hargv);
			if (strcmp(argv[2], "iterate") == 0)
				return cmd_iterate(2, hargv);
			if (strcmp(argv[2], "bench") == 0)
				return cmd_bench(2, hargv);
			if (strcmp(argv[2], "convert") == 0)
				return cmd_convert(2, hargv);
			if (strcmp(argv[2], "synth") == 0)
				return cmd_synth(2, hargv);
		}
		fputs(main_usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("annbatch %s\n", AB_VERSION_STRING);
		return 0;
	}
	if (strcmp(cmd, "inspect") == 0)
		return cmd_inspect(argc - 1, argv + 1);
	if (strcmp(cmd, "get") == 0)
		return cmd_get(argc - 1, argv + 1);
	if (strcmp(cmd, "iterate") == 0)
		return cmd_iterate(argc - 1, argv + 1);
	if (strcmp(cmd, "bench") == 0)
		return cmd_bench(argc - 1, argv + 1);
	if (strcmp(cmd, "convert") == 0)
		return cmd_convert(argc - 1, argv + 1);
	if (strcmp(cmd, "synth") == 0)
		return cmd_synth(argc - 1, argv + 1);
	fprintf(stderr, "annbatch: unknown command '%s'\n%s", cmd, main_usage);
	return 2;
}
