/*
 * fuzz_anndata - a whole store from the input: directory tree, metadata,
 * attributes, chunk files; then what `annbatch inspect` and a reader do with
 * it: ab_store_open, a walk of the hierarchy (types, attributes, children,
 * array info and storage), ab_anndata_open with X (dense or sparse) and the
 * obs/var columns, a few rows of everything, and collections.
 *
 * Input: a list of files, each introduced by a line "@@@ <path>\n" and running
 * up to the next "\n@@@ " (or the end):
 *
 *     @@@ zarr.json
 *     {"zarr_format":3,"node_type":"group","attributes":{"encoding-type":"anndata"}}
 *     @@@ X/zarr.json
 *     {...}
 *     @@@ X/c/0/0
 *     <chunk bytes>
 *
 * Paths are relative, of [A-Za-z0-9._-] components (no "." or ".."); others
 * are skipped. The files go to one temporary directory per process (under
 * $FUZZ_TMPDIR, else /dev/shm, else $TMPDIR or /tmp), emptied after every
 * input and removed at exit.
 *
 * Sizes: the target refuses inputs whose metadata declares arrays of more than
 * 2^22 items or chunks of more than 2^20 items (the library would be asked,
 * legitimately, for buffers of that size) and reads at most a few rows.
 */
#include "fuzz_common.h"

#include "annbatch.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 256
#define MAX_DEPTH 8
#define MAX_ITEMS ((uint64_t)1 << 22)
#define MAX_CHUNK_ITEMS ((uint64_t)1 << 20)
#define READ_ROWS 4

static char root[64];
/* Everything created for the current input, in creation order, so it can be
 * removed in reverse (files before their directories). */
static char *created[MAX_FILES * (MAX_DEPTH + 1)];
static size_t ncreated;

static void cleanup(void)
{
	while (ncreated > 0) {
		char *p = created[--ncreated];
		if (unlink(p) != 0)
			rmdir(p); /* a directory: its entries went first */
		free(p);
	}
}

static int valid_path(const char *p, size_t len)
{
	if (len == 0 || len > 200)
		return 0;
	size_t comp = 0, depth = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? p[i] : '/';
		if (c == '/') {
			if (comp == 0 || (comp == 1 && p[i - 1] == '.') ||
			    (comp == 2 && p[i - 1] == '.' && p[i - 2] == '.'))
				return 0;
			if (++depth > MAX_DEPTH)
				return 0;
			comp = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
		comp++;
	}
	return 1;
}

static void remember(const char *full)
{
	if (ncreated < sizeof created / sizeof created[0])
		created[ncreated++] = strdup(full);
}

static void write_one(const char *rel, size_t rlen, const uint8_t *content, size_t clen)
{
	char full[512];
	int n = snprintf(full, sizeof full, "%s/%.*s", root, (int)rlen, rel);
	if (n < 0 || (size_t)n >= sizeof full)
		return;
	/* Parent directories. */
	for (char *s = full + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(full, 0700) == 0)
			remember(full);
		*s = '/';
	}
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return; /* duplicate, or a directory of that name */
	remember(full);
	size_t done = 0;
	while (done < clen) {
		ssize_t w = write(fd, content + done, clen - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	close(fd);
}

static const uint8_t *find(const uint8_t *h, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);
	if (hlen < nlen)
		return NULL;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (h[i] == (uint8_t)needle[0] && memcmp(h + i, needle, nlen) == 0)
			return h + i;
	return NULL;
}

/* Splits the input into files and writes them. */
static void build_store(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	int nfiles = 0;
	if (size >= 4 && memcmp(p, "@@@ ", 4) == 0)
		p += 4;
	else if ((p = find(data, size, "\n@@@ ")))
		p += 5;
	while (p && p < end && nfiles < MAX_FILES) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		const uint8_t *body = nl + 1;
		const uint8_t *next = find(body, (size_t)(end - body), "\n@@@ ");
		const uint8_t *bend = next ? next : end;
		if (valid_path((const char *)p, (size_t)(nl - p))) {
			write_one((const char *)p, (size_t)(nl - p), body, (size_t)(bend - body));
			nfiles++;
		}
		p = next ? next + 5 : NULL;
	}
}

/* 1 if a JSON value anywhere declares a shape/chunk grid larger than the
 * target is willing to read. */
static int too_large(const json_t *v, int depth)
{
	if (depth > 64)
		return 1;
	if (json_is_object(v)) {
		const char *key;
		json_t *x;
		json_object_foreach((json_t *)v, key, x) {
			int is_shape = strcmp(key, "shape") == 0;
			int is_chunk = strcmp(key, "chunks") == 0 || strcmp(key, "chunk_shape") == 0;
			if (strcmp(key, "dtype") == 0 && json_is_string(x)) {
				/* v2 fixed-width strings: the width multiplies every
				 * chunk buffer. */
				const char *d = json_string_value(x);
				if (strlen(d) > 2 && (d[1] == 'S' || d[1] == 'U') && atol(d + 2) > 4096)
					return 1;
			}
			if ((is_shape || is_chunk) && json_is_array(x)) {
				uint64_t prod = 1;
				size_t i;
				json_t *e;
				json_array_foreach(x, i, e) {
					json_int_t n = json_is_integer(e) ? json_integer_value(e) : 0;
					if (n < 0 || (uint64_t)n > MAX_ITEMS)
						return 1;
					prod *= n ? (uint64_t)n : 1;
					if (prod > (is_shape ? MAX_ITEMS : MAX_CHUNK_ITEMS))
						return 1;
				}
			}
			if (too_large(x, depth + 1))
				return 1;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) if (too_large(e, depth + 1)) return 1;
	}
	return 0;
}

/* Checks every JSON file of the input (before anything is written). */
static int input_acceptable(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	while ((p = find(p, (size_t)(end - p), "{"))) {
		/* Cheap: parse from every file start; a parse failure is fine. */
		const uint8_t *stop = find(p, (size_t)(end - p), "\n@@@ ");
		size_t len = (size_t)((stop ? stop : end) - p);
		json_t *doc;
		json_error_t err;
		doc = json_loadb((const char *)p, len, JSON_ALLOW_NUL, &err);
		if (!doc && ab_json_parse(p, len, "probe", &doc) != 0)
			doc = NULL;
		if (doc) {
			int big = too_large(doc, 0);
			json_decref(doc);
			if (big)
				return 0;
		}
		if (!stop)
			break;
		p = stop + 5;
	}
	return 1;
}

static void read_array(ab_array *a)
{
	ab_array_info ai;
	FUZZ_ASSERT(ab_array_get_info(a, &ai) == 0);
	uint64_t rows = ab_array_nrows(a), items = ab_array_row_items(a);
	uint64_t n = rows < READ_ROWS ? rows : READ_ROWS;
	if (n * items > 65536)
		return;
	if (ai.dtype == AB_DT_STRING) {
		char **s;
		size_t cnt;
		int rc = ab_array_read_strings(a, 0, n, &s, &cnt);
		fuzz_debug("ab_array_read_strings", rc);
		if (rc == 0)
			ab_strings_free_n(s, cnt);
		return;
	}
	uint64_t bytes = n * items * ai.itemsize;
	void *dst = malloc(bytes ? bytes : 1);
	if (dst) {
		fuzz_debug("ab_array_read_rows", ab_array_read_rows(a, 0, n, dst, bytes));
		if (rows > n)
			ab_array_read_rows(a, rows - n, rows, dst, bytes);
	}
	free(dst);
	ab_array_storage st;
	uint64_t files = 1;
	for (int i = 0; i < ai.ndim; i++)
		files *= (ai.shape[i] + ai.shard_shape[i] - 1) / ai.shard_shape[i];
	if (files <= 4096)
		ab_array_get_storage(a, &st);
}

static void walk(ab_store *st, const char *node, int depth)
{
	ab_node_type t;
	char *attrs;
	if (depth > 6 || ab_node_type_of(st, node, &t) != 0)
		return;
	if (ab_node_attributes(st, node, &attrs) == 0)
		ab_free(attrs);
	if (t == AB_NODE_ARRAY) {
		ab_array *a;
		if (ab_array_open(st, node, &a) == 0) {
			read_array(a);
			ab_array_close(a);
		}
		return;
	}
	char **ds;
	size_t n;
	if (ab_collection_datasets(st, node, &ds, &n) == 0)
		ab_strings_free(ds);
	char **kids;
	if (ab_group_children(st, node, &kids, &n) != 0)
		return;
	for (size_t i = 0; i < n && i < 16; i++) {
		char child[512];
		snprintf(child, sizeof child, "%s%s%s", node, *node ? "/" : "", kids[i]);
		walk(st, child, depth + 1);
	}
	ab_strings_free(kids);
}

static void read_column(ab_column *c)
{
	ab_column_info ci;
	FUZZ_ASSERT(ab_column_get_info(c, &ci) == 0);
	uint64_t n = ci.length < READ_ROWS ? ci.length : READ_ROWS;
	char **s;
	size_t cnt;
	int rc = ab_column_read_strings(c, 0, n, &s, &cnt);
	fuzz_debug("ab_column_read_strings", rc);
	if (rc == 0)
		ab_strings_free_n(s, cnt);
	if (ab_column_categories(c, &s, &cnt) == 0)
		ab_strings_free_n(s, cnt);
	size_t isz = ab_dtype_size(ci.dtype);
	if (isz) {
		uint8_t dst[READ_ROWS * 16], mask[READ_ROWS];
		ab_column_read(c, 0, n, dst, sizeof dst, mask);
	}
}

static void read_anndata(ab_store *st)
{
	ab_anndata *ad;
	int rc = ab_anndata_open(st, "", &ad);
	fuzz_debug("ab_anndata_open", rc);
	if (rc != 0)
		return;
	ab_anndata_info ai;
	FUZZ_ASSERT(ab_anndata_get_info(ad, &ai) == 0);
	ab_csr *x = ab_anndata_x_csr(ad);
	if (x) {
		uint64_t n = ai.n_obs < READ_ROWS ? ai.n_obs : READ_ROWS, nnz;
		if (ab_csr_nnz(x, 0, n, &nnz) == 0 && nnz <= MAX_ITEMS) {
			int64_t indptr[READ_ROWS + 1];
			int64_t *indices = malloc((size_t)nnz * 8 + 8);
			void *vals = malloc((size_t)nnz * 16 + 16);
			if (indices && vals)
				ab_csr_read_rows(x, 0, n, indptr, READ_ROWS + 1, indices, (size_t)nnz, vals,
						 (size_t)nnz);
			free(indices);
			free(vals);
			if (ai.n_vars <= 4096) {
				size_t bytes = (size_t)(n * ai.n_vars * 16);
				void *dense = malloc(bytes ? bytes : 1);
				if (dense)
					ab_csr_read_dense(x, 0, n, dense, bytes);
				free(dense);
			}
		}
	}
	const char *const *cols = ab_anndata_obs_columns(ad);
	for (size_t i = 0; cols && cols[i] && i < 8; i++) {
		ab_column_kind k;
		ab_anndata_obs_column_kind(ad, cols[i], &k);
		ab_column *c;
		rc = ab_anndata_obs_column(ad, cols[i], &c);
		fuzz_debug(cols[i], rc);
		if (rc == 0) {
			read_column(c);
			ab_column_close(c);
		}
	}
	ab_column *c;
	if (ab_anndata_obs_column(ad, "_index", &c) == 0) {
		read_column(c);
		ab_column_close(c);
	}
	cols = ab_anndata_var_columns(ad);
	for (size_t i = 0; cols && cols[i] && i < 4; i++)
		if (ab_anndata_var_column(ad, cols[i], &c) == 0) {
			read_column(c);
			ab_column_close(c);
		}
	ab_anndata_close(ad);
}

static void remove_root(void)
{
	cleanup();
	rmdir(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0]) {
		/* Memory-backed /dev/shm when there is one: the store is rewritten
		 * for every input, and a disk filesystem makes that the bottleneck. */
		const char *tmp = getenv("FUZZ_TMPDIR");
		struct stat sb;
		if (!tmp && stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
			tmp = "/dev/shm";
		if (!tmp)
			tmp = getenv("TMPDIR");
		snprintf(root, sizeof root, "%s/abfuzz.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
		if (!mkdtemp(root))
			abort();
		atexit(remove_root);
	}
	if (size > (1 << 20) || !input_acceptable(data, size))
		return 0;
	build_store(data, size);
	ab_store *st;
	int rc = ab_store_open(root, &st);
	fuzz_debug("ab_store_open", rc);
	if (rc == 0) {
		walk(st, "", 0);
		read_anndata(st);
		ab_store_close(st);
	}
	cleanup();
	return 0;
}
