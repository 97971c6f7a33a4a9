/*
 * cli.h - shared pieces of the annbatch command-line tool. The tool uses the
 * public API (annbatch.h) only.
 */
#ifndef AB_TOOLS_CLI_H
#define AB_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "annbatch.h"

int cmd_inspect(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_iterate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);

/* Prints "annbatch <cmd>: <message>" on stderr; returns 1 (the exit status). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with the library's last error appended. */
int cli_fail_lib(const char *cmd, int status, const char *what);

/* Parses "A:B", "A:", ":B" into [*a, *b); *has_b = 0 when B is omitted. */
int cli_parse_range(const char *s, uint64_t *a, uint64_t *b, int *has_b);
/* A non-negative decimal integer for option `opt`; prints the error (as
 * `annbatch CMD: ...`) and returns 1 when it is not one. */
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);

/* Writes `s` as a JSON string literal (UTF-8 validated, invalid bytes become
 * U+FFFD). */
void cli_json_string(FILE *f, const char *s);

/* Output file: stdout, or FILE written under a temporary name and renamed on
 * success (a failed run leaves FILE as it was). */
typedef struct cli_out {
	FILE *f;
	char *path, *tmp;
} cli_out;
int cli_out_open(cli_out *o, const char *path);
/* ok != 0: flush, check, rename; else remove the temporary file. Returns 0 on
 * success. */
int cli_out_close(cli_out *o, int ok);

#endif
