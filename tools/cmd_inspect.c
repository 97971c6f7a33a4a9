/* cmd_inspect.c - `annbatch inspect`: the tree of a store, as text or JSON. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char inspect_usage[] =
	"Usage: annbatch inspect PATH [NODE] [--json]\n"
	"\n"
	"Shows the tree of a zarr v2/v3 store (from NODE down; the root by default):\n"
	"per array its shape, dtype, chunk and shard shape, codecs, bytes on disk and\n"
	"chunks present; per AnnData group n_obs, n_vars, the kind and dtype of X and\n"
	"the obs columns with their kinds; per annbatch collection its datasets.\n"
	"Counting chunks stats every chunk (or shard) file, and reads every shard index.\n"
	"For an .h5ad file: its AnnData summary (n_obs, n_vars, X, obs and var columns).\n"
	"\n"
	"Options:\n"
	"  -j, --json   one JSON document instead of text\n"
	"  -h, --help   this help\n";

static const char *column_kind_name(ab_column_kind k)
{
	switch (k) {
	case AB_COL_ARRAY: return "array";
	case AB_COL_STRING: return "string-array";
	case AB_COL_CATEGORICAL: return "categorical";
	case AB_COL_NULLABLE_INTEGER: return "nullable-integer";
	case AB_COL_NULLABLE_BOOLEAN: return "nullable-boolean";
	case AB_COL_NULLABLE_STRING: return "nullable-string-array";
	}
	return "unknown";
}

static const char *x_kind_name(ab_x_kind k)
{
	return k == AB_X_DENSE ? "dense" : k == AB_X_CSR ? "csr_matrix" : "csc_matrix";
}

static json_t *u64_list(const uint64_t *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

/* The AnnData summary (n_obs, n_vars, X, columns) of an opened AnnData,
 * which it closes. */
static json_t *anndata_summary(ab_anndata *ad)
{
	ab_anndata_info ai;
	ab_anndata_get_info(ad, &ai);
	json_t *o = json_object();
	json_object_set_new(o, "n_obs", json_integer((json_int_t)ai.n_obs));
	json_object_set_new(o, "n_vars", json_integer((json_int_t)ai.n_vars));
	json_object_set_new(o, "x_kind", json_string(x_kind_name(ai.x_kind)));
	json_object_set_new(o, "x_dtype", json_string(ab_dtype_name(ai.x_dtype)));
	json_t *cols = json_array();
	for (const char *const *c = ab_anndata_obs_columns(ad); c && *c; c++) {
		json_t *col = json_object();
		ab_column_kind k;
		json_object_set_new(col, "name", json_string(*c));
		if (ab_anndata_obs_column_kind(ad, *c, &k) == 0)
			json_object_set_new(col, "kind", json_string(column_kind_name(k)));
		else
			json_object_set_new(col, "error", json_string(ab_last_error()));
		json_array_append_new(cols, col);
	}
	json_object_set_new(o, "obs_columns", cols);
	json_t *vcols = json_array();
	for (const char *const *c = ab_anndata_var_columns(ad); c && *c; c++)
		json_array_append_new(vcols, json_string(*c));
	json_object_set_new(o, "var_columns", vcols);
	ab_anndata_close(ad);
	return o;
}

static json_t *describe_anndata(ab_store *st, const char *node)
{
	ab_anndata *ad;
	if (ab_anndata_open(st, node, &ad) != 0) {
		json_t *e = json_object();
		json_object_set_new(e, "error", json_string(ab_last_error()));
		return e;
	}
	return anndata_summary(ad);
}

static json_t *describe(ab_store *st, const char *node, const char *name, int *errors)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "path", json_string(*node ? node : "/"));
	ab_node_type t;
	char *attrs_txt = NULL;
	if (ab_node_type_of(st, node, &t) || ab_node_attributes(st, node, &attrs_txt)) {
		json_object_set_new(o, "error", json_string(ab_last_error()));
		(*errors)++;
		return o;
	}
	json_t *attrs = json_loads(attrs_txt, 0, NULL);
	ab_free(attrs_txt);
	const char *enc = json_string_value(json_object_get(attrs, "encoding-type"));
	if (enc)
		json_object_set_new(o, "encoding_type", json_string(enc));
	if (t == AB_NODE_ARRAY) {
		json_object_set_new(o, "type", json_string("array"));
		ab_array *a;
		if (ab_array_open(st, node, &a)) {
			json_object_set_new(o, "error", json_string(ab_last_error()));
			(*errors)++;
		} else {
			ab_array_info ai;
			ab_array_storage s;
			ab_array_get_info(a, &ai);
			json_object_set_new(o, "shape", u64_list(ai.shape, ai.ndim));
			json_object_set_new(o, "dtype", json_string(ab_dtype_name(ai.dtype)));
			json_object_set_new(o, "dtype_on_disk", json_string(ai.dtype_on_disk));
			json_object_set_new(o, "chunk_shape", u64_list(ai.chunk_shape, ai.ndim));
			if (ai.sharded)
				json_object_set_new(o, "shard_shape", u64_list(ai.shard_shape, ai.ndim));
			json_object_set_new(o, "codecs", json_string(ai.codecs));
			if (ab_array_get_storage(a, &s) == 0) {
				json_object_set_new(o, "bytes_on_disk", json_integer((json_int_t)s.bytes_on_disk));
				json_object_set_new(o, "chunks_present", json_integer((json_int_t)s.chunks_present));
				json_object_set_new(o, "chunks_total", json_integer((json_int_t)s.chunks_total));
				if (ai.sharded) {
					json_object_set_new(o, "shards_present", json_integer((json_int_t)s.files_present));
					json_object_set_new(o, "shards_total", json_integer((json_int_t)s.files_total));
				}
			} else {
				json_object_set_new(o, "error", json_string(ab_last_error()));
				(*errors)++;
			}
			ab_array_close(a);
		}
		json_decref(attrs);
		return o;
	}
	json_object_set_new(o, "type", json_string("group"));
	if (enc && strcmp(enc, "anndata") == 0) {
		json_t *ad = describe_anndata(st, node);
		if (json_object_get(ad, "error"))
			(*errors)++;
		json_object_set_new(o, "anndata", ad);
	}
	if (enc && strcmp(enc, "annbatch-preshuffled") == 0) {
		char **ds;
		size_t n;
		if (ab_collection_datasets(st, node, &ds, &n) == 0) {
			json_object_set_new(o, "datasets", json_integer((json_int_t)n));
			ab_strings_free(ds);
		}
	}
	json_decref(attrs);
	char **kids;
	size_t n;
	if (ab_group_children(st, node, &kids, &n)) {
		json_object_set_new(o, "error", json_string(ab_last_error()));
		(*errors)++;
		return o;
	}
	json_t *children = json_array();
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(node) + strlen(kids[i]) + 2;
		char *child = malloc(len);
		if (!child)
			break;
		snprintf(child, len, "%s%s%s", node, *node ? "/" : "", kids[i]);
		json_array_append_new(children, describe(st, child, kids[i], errors));
		free(child);
	}
	ab_strings_free(kids);
	json_object_set_new(o, "children", children);
	return o;
}

static void human_bytes(uint64_t b, char *buf, size_t n)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%llu B", (unsigned long long)b);
	else
		snprintf(buf, n, "%.1f %s", v, units[u]);
}

static void print_list(const json_t *a)
{
	size_t i;
	const json_t *v;
	putchar('[');
	json_array_foreach(a, i, v) printf("%s%lld", i ? ", " : "", (long long)json_integer_value(v));
	putchar(']');
}

static void print_text(const json_t *o, int depth)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *enc = json_string_value(json_object_get(o, "encoding_type"));
	const char *err = json_string_value(json_object_get(o, "error"));
	printf("%*s%s%s", depth * 2, "", json_string_value(json_object_get(o, "name")),
	       type && strcmp(type, "group") == 0 && depth ? "/" : "");
	if (type && strcmp(type, "array") == 0 && json_object_get(o, "shape")) {
		printf("  %s ", json_string_value(json_object_get(o, "dtype")));
		print_list(json_object_get(o, "shape"));
		printf("  chunks ");
		print_list(json_object_get(o, "chunk_shape"));
		if (json_object_get(o, "shard_shape")) {
			printf("  shards ");
			print_list(json_object_get(o, "shard_shape"));
		}
		char hb[32];
		human_bytes((uint64_t)json_integer_value(json_object_get(o, "bytes_on_disk")), hb, sizeof hb);
		printf("  %s  %s on disk, %lld/%lld chunks", json_string_value(json_object_get(o, "codecs")), hb,
		       (long long)json_integer_value(json_object_get(o, "chunks_present")),
		       (long long)json_integer_value(json_object_get(o, "chunks_total")));
	}
	if (enc)
		printf("  <%s>", enc);
	if (err)
		printf("  ERROR: %s", err);
	putchar('\n');
	const json_t *ad = json_object_get(o, "anndata");
	if (ad && !json_object_get(ad, "error")) {
		printf("%*s  AnnData: n_obs=%lld n_vars=%lld X=%s %s\n", depth * 2, "",
		       (long long)json_integer_value(json_object_get(ad, "n_obs")),
		       (long long)json_integer_value(json_object_get(ad, "n_vars")),
		       json_string_value(json_object_get(ad, "x_kind")),
		       json_string_value(json_object_get(ad, "x_dtype")));
		printf("%*s  obs columns:", depth * 2, "");
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(ad, "obs_columns"), i, c) {
			const char *k = json_string_value(json_object_get(c, "kind"));
			printf(" %s (%s)", json_string_value(json_object_get(c, "name")), k ? k : "error");
		}
		putchar('\n');
	} else if (ad) {
		printf("%*s  AnnData: ERROR: %s\n", depth * 2, "", json_string_value(json_object_get(ad, "error")));
	}
	if (json_object_get(o, "datasets"))
		printf("%*s  collection: %lld datasets\n", depth * 2, "",
		       (long long)json_integer_value(json_object_get(o, "datasets")));
	size_t i;
	const json_t *c;
	json_array_foreach(json_object_get(o, "children"), i, c) print_text(c, depth + 1);
}

/* PATH is not a zarr store: an .h5ad file shows its AnnData summary (the
 * HDF5 tree itself is h5ls's job), anything else the reason it is neither. */
static int inspect_h5ad(const char *path, const char *node, int as_json)
{
	ab_anndata *ad;
	int rc = ab_anndata_open_path(path, &ad);
	if (rc)
		return cli_fail_lib("inspect", rc, NULL);
	if (*node && strcmp(node, "/") != 0) {
		ab_anndata_close(ad);
		return cli_fail("inspect", "%s: an .h5ad file is shown whole; NODE applies to zarr stores", path);
	}
	json_t *root = json_object();
	json_object_set_new(root, "name", json_string("/"));
	json_object_set_new(root, "path", json_string("/"));
	json_object_set_new(root, "type", json_string("group"));
	json_object_set_new(root, "encoding_type", json_string("anndata"));
	json_object_set_new(root, "anndata", anndata_summary(ad));
	if (as_json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "path", json_string(path));
		json_object_set_new(doc, "format", json_string("h5ad"));
		json_object_set_new(doc, "root", root);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		printf("%s (h5ad)\n", path);
		print_text(root, 0);
		json_decref(root);
	}
	return 0;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	int as_json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = 1; break;
		case 'h': fputs(inspect_usage, stdout); return 0;
		default: fputs(inspect_usage, stderr); return 2;
		}
	}
	int npos = argc - optind;
	if (npos < 1 || npos > 2) {
		fprintf(stderr, "annbatch inspect: expected PATH [NODE]\n%s", inspect_usage);
		return 2;
	}
	const char *path = argv[optind], *node = npos == 2 ? argv[optind + 1] : "";
	ab_store *st;
	int rc = ab_store_open(path, &st);
	if (rc)
		return inspect_h5ad(path, node, as_json);
	ab_node_type t;
	if ((rc = ab_node_type_of(st, node, &t))) {
		ab_store_close(st);
		return cli_fail_lib("inspect", rc, NULL);
	}
	int errors = 0;
	while (*node == '/')
		node++;
	const char *slash = strrchr(node, '/');
	json_t *tree = describe(st, node, *node ? (slash ? slash + 1 : node) : "/", &errors);
	if (as_json) {
		json_t *doc = json_object();
		json_object_set_new(doc, "path", json_string(path));
		json_object_set_new(doc, "zarr_format", json_integer(ab_store_zarr_format(st)));
		json_object_set_new(doc, "root", tree);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(doc);
	} else {
		printf("%s (zarr v%d)\n", path, ab_store_zarr_format(st));
		print_text(tree, 0);
		json_decref(tree);
	}
	ab_store_close(st);
	if (errors)
		return cli_fail("inspect", "%d node(s) could not be read (see ERROR above)", errors);
	return 0;
}
