/* writer_opts.c - the writer options of synth and convert (writer_opts.h). */
#include "writer_opts.h"

#include <stdlib.h>

#include "cli.h"

int writer_option(const char *cmd, int ch, const char *arg, ab_anndata_write_config *cfg)
{
	uint64_t v;
	switch (ch) {
	case WO_COMPRESSOR:
		if (ab_compressor_parse(arg, &cfg->compressor))
			return cli_fail(cmd, "--compressor: %s", ab_last_error()), -1;
		return 1;
	case WO_BLOCKSIZE:
		if (parse_size(arg, &v))
			return cli_fail(cmd, "--blosc-blocksize '%s': expected a size like 16K", arg), -1;
		cfg->blosc_blocksize = (size_t)v;
		return 1;
	case WO_SPLIT:
	case WO_UNSPLIT:
		cfg->blosc_unsplit = ch == WO_UNSPLIT;
		return 1;
	case WO_CHUNK:
		if (cli_parse_u64(cmd, "--n-obs-per-chunk", arg, &cfg->n_obs_per_chunk))
			return -1;
		if (!cfg->n_obs_per_chunk)
			return cli_fail(cmd, "--n-obs-per-chunk must be at least 1"), -1;
		return 1;
	case WO_SHARD:
		if (parse_size(arg, &cfg->shard_bytes) || !cfg->shard_bytes)
			return cli_fail(cmd, "--shard-size '%s': expected a size like 1GB or 256MiB", arg), -1;
		cfg->shard_rows = 0;
		return 1;
	case WO_SHARD_ROWS:
		if (cli_parse_u64(cmd, "--shard-rows", arg, &cfg->shard_rows))
			return -1;
		if (!cfg->shard_rows)
			return cli_fail(cmd, "--shard-rows must be at least 1"), -1;
		return 1;
	default:
		return 0;
	}
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mult = 1;
	if (*end) {
		char u = (char)(*end | 0x20);
		int base2 = end[1] == 'i' || end[1] == 'I';
		double k = base2 ? 1024.0 : 1000.0;
		switch (u) {
		case 'b': mult = 1; break;
		case 'k': mult = k; break;
		case 'm': mult = k * k; break;
		case 'g': mult = k * k * k; break;
		case 't': mult = k * k * k * k; break;
		default: return -1;
		}
		const char *rest = end + 1 + base2;
		if (u == 'b')
			rest = end + 1;
		else if (*rest == 'b' || *rest == 'B')
			rest++;
		if (*rest)
			return -1;
	}
	v *= mult;
	if (v >= 1.8e19)
		return -1;
	*out = (uint64_t)v;
	return 0;
}
