/* cmd_get.c - `annbatch get`: one node's values, as raw bytes or JSON. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char get_usage[] =
	"Usage: annbatch get STORE [NODE] [--rows A:B] [--dense] [--labels] [-o FILE]\n"
	"\n"
	"Writes the values of one node of a zarr / AnnData store, or of an .h5ad file\n"
	"(its X, obs/COLUMN or var/COLUMN; obs/_index gives the obs names).\n"
	"\n"
	"  numeric or bool array   raw little-endian C-order bytes (bool: one byte, 0 or 1)\n"
	"  string array            one JSON array of strings (C order)\n"
	"  csr_matrix group        with --dense: the dense row-major matrix in its data dtype\n"
	"  categorical column      its codes as raw bytes; with --labels a JSON array of labels\n"
	"  nullable-* column       a JSON array of values, null where the mask is set\n"
	"\n"
	"NODE is the path inside the store (X, obs/cell_type, X/data); omitted, the root.\n"
	"\n"
	"Options:\n"
	"  -r, --rows A:B    rows A (inclusive) to B (exclusive) along axis 0; A: and :B work\n"
	"  -d, --dense       densify a csr_matrix group\n"
	"  -l, --labels      categorical columns: labels instead of codes\n"
	"  -o, --output FILE write to FILE (through a temporary name) instead of stdout\n"
	"  -h, --help        this help\n"
	"\n"
	"Any failure prints one line on stderr and exits non-zero.\n";

/* Rows per block so that one block stays near 64 MiB. */
static uint64_t block_rows(uint64_t row_bytes)
{
	uint64_t target = (uint64_t)64 << 20;
	uint64_t r = row_bytes ? target / row_bytes : target;
	return r ? r : 1;
}

static int resolve_rows(const char *rows, uint64_t nrows, uint64_t *a, uint64_t *b)
{
	*a = 0;
	*b = nrows;
	if (!rows)
		return 0;
	int has_b;
	if (cli_parse_range(rows, a, b, &has_b))
		return cli_fail("get", "--rows '%s': expected A:B with non-negative integers", rows);
	if (!has_b)
		*b = nrows;
	if (*a > *b || *b > nrows)
		return cli_fail("get", "--rows %s: out of range for %llu rows", rows, (unsigned long long)nrows);
	return 0;
}

static int write_all(cli_out *o, const void *p, size_t n)
{
	return fwrite(p, 1, n, o->f) == n ? 0 : -1;
}

static int get_array(ab_store *st, const char *node, const char *rows, cli_out *o)
{
	ab_array *arr;
	int rc = ab_array_open(st, node, &arr);
	if (rc)
		return cli_fail_lib("get", rc, NULL);
	ab_array_info info;
	ab_array_get_info(arr, &info);
	uint64_t a, b, nrows = ab_array_nrows(arr), row_items = ab_array_row_items(arr);
	int ret = resolve_rows(rows, nrows, &a, &b);
	if (ret)
		goto out;
	uint64_t step = block_rows(row_items * (info.itemsize ? info.itemsize : 64));
	if (info.dtype == AB_DT_STRING) {
		fputc('[', o->f);
		int first = 1;
		for (uint64_t r = a; r < b; r += step) {
			uint64_t e = b - r < step ? b : r + step;
			char **s;
			size_t n;
			if ((rc = ab_array_read_strings(arr, r, e, &s, &n))) {
				ret = cli_fail_lib("get", rc, NULL);
				goto out;
			}
			for (size_t i = 0; i < n; i++) {
				if (!first)
					fputs(", ", o->f);
				first = 0;
				cli_json_string(o->f, s[i]);
			}
			ab_strings_free_n(s, n);
		}
		fputs("]\n", o->f);
		goto out;
	}
	size_t bytes = (size_t)(step * row_items * info.itemsize);
	void *buf = malloc(bytes ? bytes : 1);
	if (!buf) {
		ret = cli_fail("get", "out of memory");
		goto out;
	}
	for (uint64_t r = a; r < b; r += step) {
		uint64_t e = b - r < step ? b : r + step;
		size_t n = (size_t)((e - r) * row_items * info.itemsize);
		if ((rc = ab_array_read_rows(arr, r, e, buf, n))) {
			ret = cli_fail_lib("get", rc, NULL);
			break;
		}
		if (write_all(o, buf, n)) {
			ret = cli_fail("get", "write failed");
			break;
		}
	}
	free(buf);
out:
	ab_array_close(arr);
	return ret;
}

static int get_csr_dense(ab_store *st, const char *node, const char *rows, cli_out *o)
{
	ab_csr *csr;
	int rc = ab_csr_open(st, node, &csr);
	if (rc)
		return cli_fail_lib("get", rc, NULL);
	ab_csr_info ci;
	ab_csr_get_info(csr, &ci);
	uint64_t a, b;
	int ret = resolve_rows(rows, ci.n_rows, &a, &b);
	if (ret) {
		ab_csr_close(csr);
		return ret;
	}
	size_t isz = ab_dtype_size(ci.data_dtype);
	uint64_t step = block_rows(ci.n_cols * isz);
	size_t bytes = (size_t)(step * ci.n_cols * isz);
	void *buf = malloc(bytes ? bytes : 1);
	if (!buf) {
		ab_csr_close(csr);
		return cli_fail("get", "out of memory");
	}
	for (uint64_t r = a; r < b; r += step) {
		uint64_t e = b - r < step ? b : r + step;
		size_t n = (size_t)((e - r) * ci.n_cols * isz);
		if ((rc = ab_csr_read_dense(csr, r, e, buf, n))) {
			ret = cli_fail_lib("get", rc, NULL);
			break;
		}
		if (write_all(o, buf, n)) {
			ret = cli_fail("get", "write failed");
			break;
		}
	}
	free(buf);
	ab_csr_close(csr);
	return ret;
}

static void json_number_of(FILE *f, ab_dtype dt, const void *buf, size_t i)
{
	switch (dt) {
	case AB_DT_BOOL: fputs(((const uint8_t *)buf)[i] ? "true" : "false", f); break;
	case AB_DT_INT8: fprintf(f, "%d", ((const int8_t *)buf)[i]); break;
	case AB_DT_INT16: fprintf(f, "%d", ((const int16_t *)buf)[i]); break;
	case AB_DT_INT32: fprintf(f, "%d", ((const int32_t *)buf)[i]); break;
	case AB_DT_INT64: fprintf(f, "%lld", (long long)((const int64_t *)buf)[i]); break;
	case AB_DT_UINT8: fprintf(f, "%u", ((const uint8_t *)buf)[i]); break;
	case AB_DT_UINT16: fprintf(f, "%u", ((const uint16_t *)buf)[i]); break;
	case AB_DT_UINT32: fprintf(f, "%u", ((const uint32_t *)buf)[i]); break;
	case AB_DT_UINT64: fprintf(f, "%llu", (unsigned long long)((const uint64_t *)buf)[i]); break;
	case AB_DT_FLOAT32: fprintf(f, "%.9g", ((const float *)buf)[i]); break;
	case AB_DT_FLOAT64: fprintf(f, "%.17g", ((const double *)buf)[i]); break;
	default: fputs("null", f);
	}
}

/* Writes an opened column (and closes it). */
static int get_column(ab_column *col, const char *node, const char *rows, int labels, cli_out *o)
{
	int rc;
	ab_column_info ci;
	ab_column_get_info(col, &ci);
	uint64_t a, b;
	int ret = resolve_rows(rows, ci.length, &a, &b);
	size_t n = (size_t)(b - a);
	if (ret)
		goto out;
	if (labels && ci.kind != AB_COL_CATEGORICAL) {
		ret = cli_fail("get", "--labels applies to categorical columns; '%s' is not one", node);
		goto out;
	}
	if (ci.kind == AB_COL_CATEGORICAL && labels) {
		char **s;
		size_t cnt;
		if ((rc = ab_column_read_strings(col, a, b, &s, &cnt))) {
			ret = cli_fail_lib("get", rc, NULL);
			goto out;
		}
		fputc('[', o->f);
		for (size_t i = 0; i < cnt; i++) {
			if (i)
				fputs(", ", o->f);
			if (!s[i])
				fputs("null", o->f);
			else if (ci.categories_dtype == AB_DT_STRING)
				cli_json_string(o->f, s[i]);
			else
				fputs(s[i], o->f); /* numeric categories are already JSON numbers */
		}
		fputs("]\n", o->f);
		ab_strings_free_n(s, cnt);
		goto out;
	}
	if (ci.kind == AB_COL_NULLABLE_STRING || ci.kind == AB_COL_STRING) {
		char **s;
		size_t cnt;
		if ((rc = ab_column_read_strings(col, a, b, &s, &cnt))) {
			ret = cli_fail_lib("get", rc, NULL);
			goto out;
		}
		fputc('[', o->f);
		for (size_t i = 0; i < cnt; i++) {
			if (i)
				fputs(", ", o->f);
			if (s[i])
				cli_json_string(o->f, s[i]);
			else
				fputs("null", o->f);
		}
		fputs("]\n", o->f);
		ab_strings_free_n(s, cnt);
		goto out;
	}
	size_t isz = ab_dtype_size(ci.dtype);
	void *buf = malloc(n * isz + 1);
	uint8_t *mask = malloc(n + 1);
	if (!buf || !mask) {
		free(buf);
		free(mask);
		ret = cli_fail("get", "out of memory");
		goto out;
	}
	if ((rc = ab_column_read(col, a, b, buf, n * isz, mask))) {
		ret = cli_fail_lib("get", rc, NULL);
	} else if (ci.kind == AB_COL_NULLABLE_INTEGER || ci.kind == AB_COL_NULLABLE_BOOLEAN) {
		fputc('[', o->f);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fputs(", ", o->f);
			if (mask[i])
				fputs("null", o->f);
			else
				json_number_of(o->f, ci.dtype, buf, i);
		}
		fputs("]\n", o->f);
	} else if (write_all(o, buf, n * isz)) {
		ret = cli_fail("get", "write failed");
	}
	free(buf);
	free(mask);
out:
	ab_column_close(col);
	return ret;
}

/* X of an .h5ad, dense row-major (a CSR X densified: it needs --dense, as
 * for a zarr csr_matrix group). */
static int get_h5ad_x(ab_anndata *ad, const char *rows, int dense, cli_out *o)
{
	ab_anndata_info ai;
	ab_anndata_get_info(ad, &ai);
	if (ai.x_kind == AB_X_CSR && !dense)
		return cli_fail("get", "'X' is a csr_matrix group: add --dense");
	uint64_t a, b;
	int ret = resolve_rows(rows, ai.n_obs, &a, &b), rc;
	if (ret)
		return ret;
	size_t isz = ab_dtype_size(ai.x_dtype), row = (size_t)ai.n_vars * isz;
	uint64_t step = block_rows(row);
	uint8_t *buf = malloc(step * row + 1);
	int64_t *ip = NULL, *ix = NULL;
	uint8_t *dv = NULL;
	if (!buf)
		return cli_fail("get", "out of memory");
	for (uint64_t r = a; r < b && !ret; r += step) {
		uint64_t e = b - r < step ? b : r + step, nnz = 0;
		size_t n = (size_t)((e - r) * row);
		if (ai.x_kind == AB_X_DENSE) {
			rc = ab_anndata_x_read_dense(ad, r, e, buf, n);
		} else if (!(rc = ab_anndata_x_nnz(ad, r, e, &nnz))) {
			int64_t *nip = realloc(ip, (size_t)(e - r + 1) * sizeof *ip);
			int64_t *nix = nip ? realloc(ix, (size_t)(nnz + 1) * sizeof *ix) : NULL;
			uint8_t *ndv = nix ? realloc(dv, (size_t)(nnz + 1) * isz) : NULL;
			ip = nip ? nip : ip;
			ix = nix ? nix : ix;
			dv = ndv ? ndv : dv;
			if (!ndv) {
				ret = cli_fail("get", "out of memory");
				break;
			}
			if (!(rc = ab_anndata_x_read_csr(ad, r, e, ip, ix, dv))) {
				memset(buf, 0, n);
				for (uint64_t i = 0; i < e - r; i++)
					for (int64_t k = ip[i]; k < ip[i + 1]; k++)
						memcpy(buf + i * row + (size_t)ix[k] * isz, dv + (size_t)k * isz, isz);
			}
		}
		if (rc)
			ret = cli_fail_lib("get", rc, NULL);
		else if (write_all(o, buf, n))
			ret = cli_fail("get", "write failed");
	}
	free(buf);
	free(ip);
	free(ix);
	free(dv);
	return ret;
}

/* A node of an .h5ad file: X, obs/COLUMN or var/COLUMN (_index: the names). */
static int get_h5ad(ab_anndata *ad, const char *path, const char *node, const char *rows, int dense, int labels,
		    cli_out *o)
{
	while (*node == '/')
		node++;
	if (strcmp(node, "X") == 0)
		return labels ? cli_fail("get", "--labels applies to categorical columns; 'X' is not one")
			      : get_h5ad_x(ad, rows, dense, o);
	int obs = strncmp(node, "obs/", 4) == 0, var = strncmp(node, "var/", 4) == 0;
	if ((!obs && !var) || !node[4] || strchr(node + 4, '/'))
		return cli_fail("get", "%s: an .h5ad file gives X, obs/COLUMN and var/COLUMN (obs/_index: the "
				"names); not '%s'", path, *node ? node : "/");
	ab_column *col;
	int rc = obs ? ab_anndata_obs_column(ad, node + 4, &col) : ab_anndata_var_column(ad, node + 4, &col);
	if (rc)
		return cli_fail_lib("get", rc, NULL);
	return get_column(col, node, rows, labels, o);
}

int cmd_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rows", required_argument, NULL, 'r' }, { "dense", no_argument, NULL, 'd' },
		{ "labels", no_argument, NULL, 'l' },     { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 }
	};
	const char *rows = NULL, *outpath = NULL;
	int dense = 0, labels = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:dlo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rows = optarg; break;
		case 'd': dense = 1; break;
		case 'l': labels = 1; break;
		case 'o': outpath = optarg; break;
		case 'h': fputs(get_usage, stdout); return 0;
		default: fputs(get_usage, stderr); return 2;
		}
	}
	int npos = argc - optind;
	if (npos < 1 || npos > 2) {
		fprintf(stderr, "annbatch get: expected STORE [NODE]\n%s", get_usage);
		return 2;
	}
	const char *path = argv[optind], *node = npos == 2 ? argv[optind + 1] : "";
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc) {
		/* not a zarr store: an .h5ad file, or the reason it is neither */
		ab_anndata *ad;
		if ((rc = ab_anndata_open_path(path, &ad)))
			return cli_fail_lib("get", rc, NULL);
		cli_out o;
		if (cli_out_open(&o, outpath)) {
			ab_anndata_close(ad);
			return cli_fail("get", "cannot write %s", outpath);
		}
		int ret = get_h5ad(ad, path, node, rows, dense, labels, &o);
		if (cli_out_close(&o, ret == 0) && ret == 0)
			ret = cli_fail("get", "writing the output failed");
		ab_anndata_close(ad);
		return ret;
	}
	int ret;
	ab_node_type type;
	char *attrs_txt = NULL;
	json_t *attrs = NULL;
	if ((rc = ab_node_type_of(st, node, &type)) || (rc = ab_node_attributes(st, node, &attrs_txt))) {
		ret = cli_fail_lib("get", rc, NULL);
		goto done;
	}
	attrs = json_loads(attrs_txt, 0, NULL);
	const char *enc = json_string_value(json_object_get(attrs, "encoding-type"));
	cli_out o;
	if (cli_out_open(&o, outpath)) {
		ret = cli_fail("get", "cannot write %s", outpath);
		goto done;
	}
	if (type == AB_NODE_ARRAY) {
		if (labels)
			ret = cli_fail("get", "--labels applies to categorical columns; '%s' is an array", node);
		else
			ret = get_array(st, node, rows, &o);
	} else if (enc && (strcmp(enc, "csr_matrix") == 0 || strcmp(enc, "csc_matrix") == 0)) {
		if (strcmp(enc, "csc_matrix") == 0)
			ret = cli_fail("get", "'%s' is a csc_matrix: row access needs csr_matrix", node);
		else if (!dense)
			ret = cli_fail("get", "'%s' is a csr_matrix group: add --dense, or name %s/data, "
				       "%s/indices or %s/indptr", node, node, node, node);
		else
			ret = get_csr_dense(st, node, rows, &o);
	} else if (enc && (strcmp(enc, "categorical") == 0 || strncmp(enc, "nullable-", 9) == 0)) {
		ab_column *col;
		if ((rc = ab_column_open(st, node, &col)))
			ret = cli_fail_lib("get", rc, NULL);
		else
			ret = get_column(col, node, rows, labels, &o);
	} else {
		/* "an AnnData group", "a group (encoding-type dataframe)", "a group" */
		const char *where = *node ? node : "/";
		if (enc && strcmp(enc, "anndata") == 0)
			ret = cli_fail("get", "'%s' is an AnnData group, not an array; name a node inside it, e.g. "
				       "%s%sX", where, node, *node ? "/" : "");
		else if (enc)
			ret = cli_fail("get", "'%s' is a group (encoding-type %s), not an array; name an array or a "
				       "column inside it", where, enc);
		else
			ret = cli_fail("get", "'%s' is a group, not an array; name an array or a column inside it",
				       where);
	}
	if (cli_out_close(&o, ret == 0) && ret == 0)
		ret = cli_fail("get", "writing the output failed");
done:
	json_decref(attrs);
	ab_free(attrs_txt);
	ab_store_close(st);
	return ret;
}
