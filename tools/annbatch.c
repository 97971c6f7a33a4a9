/* annbatch.c - the `annbatch` command: dispatch to subcommands. */
#include "cli.h"

#include <string.h>

/* Every subcommand, once: dispatch, `help CMD` and the usage text all read
 * this table. `synopsis` is the command and its arguments as the usage
 * shows them, `summary` what it does. */
static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
	const char *summary;
} commands[] = {
	{ "inspect", cmd_inspect, "inspect PATH [NODE] [--json]",
	  "the tree: arrays, codecs, bytes on disk, AnnData summary" },
	{ "get", cmd_get, "get STORE [NODE] [options]", "one node's values as raw bytes or JSON" },
	{ "iterate", cmd_iterate, "iterate INPUT... [options]", "run the loader: one line per batch" },
	{ "bench", cmd_bench, "bench INPUT... [options]", "the loader as a storage benchmark" },
	{ "convert", cmd_convert, "convert INPUT... -o OUT [options]",
	  "build a preshuffled, sharded zarr v3 collection" },
	{ "synth", cmd_synth, "synth OUT [options]", "write a synthetic AnnData store (zarr or .h5ad)" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* The summaries start in one column; a synopsis too long for it keeps two
 * spaces before its summary. */
#define SUMMARY_COLUMN 31

static void usage(FILE *f)
{
	fputs("Usage: annbatch COMMAND [ARGS...]\n"
	      "\n"
	      "Streams shuffled mini-batches out of on-disk AnnData / zarr stores.\n"
	      "\n"
	      "Commands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		int pad = SUMMARY_COLUMN - (int)strlen(commands[i].synopsis);
		fprintf(f, "  %s%*s%s\n", commands[i].synopsis, pad < 2 ? 2 : pad, "", commands[i].summary);
	}
	fputs("\n"
	      "Run 'annbatch COMMAND --help' for a command's options.\n"
	      "  -h, --help      this help\n"
	      "  -V, --version   print the version\n", f);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		const struct command *c = strcmp(cmd, "help") == 0 && argc > 2 ? find_command(argv[2]) : NULL;
		if (c) {
			char *hargv[] = { argv[2], "--help", NULL };
			return c->run(2, hargv);
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("annbatch %s\n", AB_VERSION_STRING);
		return 0;
	}
	const struct command *c = find_command(cmd);
	if (c)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "annbatch: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
