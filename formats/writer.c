/*
 * writer.c - a zarr v3 (and v2) store writer: groups, arrays appended row by
 * row, chunks or shards encoded as they fill, metadata and consolidated
 * metadata the way zarr-python writes them, and an all-or-nothing commit.
 *
 * Why rows only: every array an AnnData collection holds is read by rows
 * (X, its data/indices, obs columns), so chunking only axis 0 keeps the
 * writer streaming: a chunk is a run of whole rows, it can be encoded as soon
 * as its last row arrives, and a shard is a run of chunks written one after
 * the other with the index last. Nothing is ever rewritten or seeked back to.
 *
 * Why a temporary directory: a collection is many files; no reader may see a
 * half of one. Everything goes under `.NAME.annbatch-tmp-PID` in the same
 * directory (so the final rename stays on one file system) and the commit is
 * one rename (or one RENAME_EXCHANGE when an old store is replaced).
 */
#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "last_error.h"
#include "util.h"

struct ab_writer {
	char *final_path;
	char *tmp_path;
	int zarr_format;
	int overwrite;
	/* node path -> metadata. v3: the zarr.json document. v2: an object with
	 * the ".zgroup"/".zarray" and ".zattrs" documents. */
	json_t *nodes;
	ab_writer_array *open;  /* arrays not yet closed */
};

struct ab_writer_array {
	ab_writer *w;
	ab_writer_array *next;
	char *node;
	char *dir;              /* directory of the node inside tmp_path */
	ab_writer_array_config cfg;
	int is_string;
	size_t itemsize;        /* bytes per item in the chunk buffer */
	uint64_t row_items;
	uint64_t rows;          /* appended so far */
	/* the chunk being filled */
	uint8_t *chunk;         /* numeric: chunk_rows * row_items items */
	char **strs;            /* strings: chunk_rows * row_items copies */
	uint64_t chunk_rows_filled;
	uint64_t chunk_index;   /* the next chunk's index along axis 0 */
	ab_b2b_codec codec;
	int has_codec;
	ab_buf enc;
	/* sharding */
	uint64_t per_shard;     /* inner chunks per shard; 0 = unsharded */
	int shard_fd;
	uint64_t shard_offset;
	uint64_t *index;        /* 2 * per_shard entries of the open shard */
	char *shard_file;
	int failed;             /* the status of the first failed write, 0 = none */
	char *fail_msg;         /* and its message, repeated by later calls */
};

/* ------------------------------------------------------------------------- */
/* small helpers                                                             */
/* ------------------------------------------------------------------------- */

static int io_error(const char *path, const char *what, int err)
{
	if (err == ENOSPC)
		return ab_error_set(AB_EIO, "%s: %s: no space left on device", path, what);
	if (err == EDQUOT)
		return ab_error_set(AB_EIO, "%s: %s: disk quota exceeded", path, what);
	return ab_error_set(AB_EIO, "%s: %s: %s", path, what, strerror(err));
}

static int write_all_fd(int fd, const void *p, size_t n, const char *path)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = write(fd, b, n > (size_t)1 << 30 ? (size_t)1 << 30 : n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return io_error(path, "write", errno);
		}
		if (r == 0)
			return io_error(path, "write", ENOSPC);
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_file(const char *path, const void *p, size_t n)
{
	/* Always a new inode: the file may be a hard link into an adopted
	 * store, which must never change under its readers. */
	if (unlink(path) != 0 && errno != ENOENT)
		return io_error(path, "unlink", errno);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return io_error(path, "create", errno);
	int rc = write_all_fd(fd, p, n, path);
	if (close(fd) != 0 && !rc)
		rc = io_error(path, "close", errno);
	return rc;
}

/* mkdir -p of `path` (which must not end in '/'). */
static int make_dirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST) {
				int e = errno;
				int rc = io_error(p, "mkdir", e);
				free(p);
				return rc;
			}
			if (!c)
				break;
			*s = c;
		}
	}
	free(p);
	return 0;
}

static int write_json(const char *dir, const char *name, const json_t *doc)
{
	char *path = ab_path_join(dir, name);
	char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int rc;
	if (!path || !text) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
	} else {
		size_t n = strlen(text);
		text[n] = '\n'; /* the dump's NUL becomes a final newline */
		rc = write_file(path, text, n + 1);
	}
	free(path);
	free(text);
	return rc;
}

static int unlink_cb(const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftwbuf)
{
	(void)sb;
	(void)ftwbuf;
	if (typeflag == FTW_DP)
		return rmdir(fpath) != 0 && errno != ENOENT ? -1 : 0;
	return unlink(fpath) != 0 && errno != ENOENT ? -1 : 0;
}

int ab_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : io_error(path, "stat", errno);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : io_error(path, "unlink", errno);
	if (nftw(path, unlink_cb, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return io_error(path, "remove", errno);
	return 0;
}

static json_t *parse_attrs(const char *text, int *rc)
{
	*rc = 0;
	if (!text || !*text)
		return json_object();
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		*rc = ab_error_set(AB_EINVAL, "attributes are not a JSON object: %s",
				   j ? "not an object" : jerr.text);
		return NULL;
	}
	return j;
}

/* ------------------------------------------------------------------------- */
/* codecs and keys                                                           */
/* ------------------------------------------------------------------------- */

int ab_compressor_parse(const char *name, ab_compressor *out)
{
	static const struct { const char *n; ab_compressor c; } tab[] = {
		{ "none", AB_COMPRESSOR_NONE }, { "blosc-lz4", AB_COMPRESSOR_BLOSC_LZ4 },
		{ "blosc-zstd", AB_COMPRESSOR_BLOSC_ZSTD }, { "zstd", AB_COMPRESSOR_ZSTD },
		{ "gzip", AB_COMPRESSOR_GZIP },
	};
	if (!out)
		return ab_error_set(AB_EINVAL, "ab_compressor_parse: null argument");
	for (size_t i = 0; name && i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(name, tab[i].n) == 0) {
			*out = tab[i].c;
			return 0;
		}
	return ab_error_set(AB_EINVAL,
			    "unknown compressor '%s' (none, blosc-lz4, blosc-zstd, zstd, gzip)",
			    name ? name : "(null)");
}

const char *ab_compressor_name(ab_compressor c)
{
	switch (c) {
	case AB_COMPRESSOR_NONE: return "none";
	case AB_COMPRESSOR_BLOSC_LZ4: return "blosc-lz4";
	case AB_COMPRESSOR_BLOSC_ZSTD: return "blosc-zstd";
	case AB_COMPRESSOR_ZSTD: return "zstd";
	case AB_COMPRESSOR_GZIP: return "gzip";
	}
	return "unknown";
}

int ab_compressor_codec(ab_compressor c, int level, int typesize, ab_b2b_codec *out,
			int *present)
{
	memset(out, 0, sizeof *out);
	*present = 1;
	switch (c) {
	case AB_COMPRESSOR_NONE:
		*present = 0;
		return 0;
	case AB_COMPRESSOR_BLOSC_LZ4:
	case AB_COMPRESSOR_BLOSC_ZSTD:
		out->kind = AB_B2B_BLOSC;
		snprintf(out->cname, sizeof out->cname, "%s",
			 c == AB_COMPRESSOR_BLOSC_LZ4 ? "lz4" : "zstd");
		out->level = level < 0 ? 3 : level;
		out->shuffle = AB_BLOSC_SHUFFLE;
		out->typesize = typesize < 1 ? 1 : typesize;
		out->blocksize = 0;
		if (out->level > 9)
			return ab_error_set(AB_EINVAL, "blosc: level %d outside 0..9", level);
		return 0;
	case AB_COMPRESSOR_ZSTD:
		out->kind = AB_B2B_ZSTD;
		out->level = level < 0 ? 3 : level;
		if (out->level > 22)
			return ab_error_set(AB_EINVAL, "zstd: level %d outside 0..22", level);
		return 0;
	case AB_COMPRESSOR_GZIP:
		out->kind = AB_B2B_GZIP;
		out->level = level < 0 ? 5 : level;
		if (out->level > 9)
			return ab_error_set(AB_EINVAL, "gzip: level %d outside 0..9", level);
		return 0;
	}
	return ab_error_set(AB_EINVAL, "unknown compressor %d", (int)c);
}

static const char *shuffle_name(int s)
{
	return s == AB_BLOSC_BITSHUFFLE ? "bitshuffle" : s == AB_BLOSC_SHUFFLE ? "shuffle" : "noshuffle";
}

json_t *ab_codec_json_v3(const ab_b2b_codec *c)
{
	switch (c->kind) {
	case AB_B2B_BLOSC:
		return json_pack("{s:s, s:{s:i, s:s, s:i, s:s, s:I}}", "name", "blosc", "configuration",
				 "typesize", c->typesize, "cname", c->cname, "clevel", c->level,
				 "shuffle", shuffle_name(c->shuffle), "blocksize", (json_int_t)c->blocksize);
	case AB_B2B_ZSTD:
		return json_pack("{s:s, s:{s:i, s:b}}", "name", "zstd", "configuration", "level",
				 c->level, "checksum", c->checksum);
	case AB_B2B_GZIP:
		return json_pack("{s:s, s:{s:i}}", "name", "gzip", "configuration", "level", c->level);
	case AB_B2B_CRC32C:
		return json_pack("{s:s}", "name", "crc32c");
	default:
		return NULL;
	}
}

json_t *ab_codec_json_v2(const ab_b2b_codec *c)
{
	switch (c->kind) {
	case AB_B2B_BLOSC:
		return json_pack("{s:s, s:s, s:i, s:i, s:I}", "id", "blosc", "cname", c->cname,
				 "clevel", c->level, "shuffle", c->shuffle, "blocksize",
				 (json_int_t)c->blocksize);
	case AB_B2B_ZSTD:
		return json_pack("{s:s, s:i}", "id", "zstd", "level", c->level);
	case AB_B2B_GZIP:
		return json_pack("{s:s, s:i}", "id", "gzip", "level", c->level);
	case AB_B2B_ZLIB:
		return json_pack("{s:s, s:i}", "id", "zlib", "level", c->level);
	default:
		return NULL;
	}
}

void ab_shard_index_encode(const uint64_t *entries, uint64_t n, uint8_t *out)
{
	for (uint64_t i = 0; i < 2 * n; i++)
		ab_store_le64(out + 8 * i, entries[i]);
	ab_store_le32(out + 16 * n, ab_crc32c(0, out, (size_t)(16 * n)));
}

void ab_chunk_key_axis0(int zarr_format, int ndim, uint64_t i, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, zarr_format == 2 ? "%llu" : "c/%llu",
				    (unsigned long long)i);
	for (int d = 1; d < ndim && n + 2 < size; d++)
		n += (size_t)snprintf(buf + n, size - n, zarr_format == 2 ? ".0" : "/0");
}

/* v2 dtype strings of our dtypes (little endian hosts only). */
static const char *dtype_v2(ab_dtype dt)
{
	switch (dt) {
	case AB_DT_BOOL: return "|b1";
	case AB_DT_INT8: return "|i1";
	case AB_DT_INT16: return "<i2";
	case AB_DT_INT32: return "<i4";
	case AB_DT_INT64: return "<i8";
	case AB_DT_UINT8: return "|u1";
	case AB_DT_UINT16: return "<u2";
	case AB_DT_UINT32: return "<u4";
	case AB_DT_UINT64: return "<u8";
	case AB_DT_FLOAT16: return "<f2";
	case AB_DT_FLOAT32: return "<f4";
	case AB_DT_FLOAT64: return "<f8";
	case AB_DT_COMPLEX64: return "<c8";
	case AB_DT_COMPLEX128: return "<c16";
	case AB_DT_STRING: return "|O";
	}
	return NULL;
}

/* The fill value as JSON: 0 / 0.0 / false / "" (complex: [0.0, 0.0] in v3). */
static json_t *fill_json(ab_dtype dt, int zarr_format)
{
	switch (dt) {
	case AB_DT_BOOL: return json_false();
	case AB_DT_FLOAT16: case AB_DT_FLOAT32: case AB_DT_FLOAT64: return json_real(0.0);
	case AB_DT_COMPLEX64: case AB_DT_COMPLEX128:
		return zarr_format == 3 ? json_pack("[f, f]", 0.0, 0.0) : json_real(0.0);
	case AB_DT_STRING: return zarr_format == 3 ? json_string("") : json_null();
	default: return json_integer(0);
	}
}

/* ------------------------------------------------------------------------- */
/* the writer                                                                */
/* ------------------------------------------------------------------------- */

#define TMP_TAG ".annbatch-tmp-"

void ab_writer_config_init(ab_writer_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->zarr_format = 3;
}

/* Removes `.NAME.annbatch-tmp-PID` siblings whose process no longer exists:
 * what a killed run left behind. */
static void sweep_stale(const char *parent, const char *base)
{
	DIR *d = opendir(parent);
	if (!d)
		return;
	size_t bl = strlen(base);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 ||
		    strncmp(n + 1 + bl, TMP_TAG, strlen(TMP_TAG)) != 0)
			continue;
		char *end;
		long pid = strtol(n + 1 + bl + strlen(TMP_TAG), &end, 10);
		if (*end || pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *p = ab_path_join(parent, n);
		if (p)
			ab_remove_tree(p);
		free(p);
	}
	closedir(d);
}

const char *ab_writer_tmp_path(const ab_writer *w)
{
	return w ? w->tmp_path : NULL;
}

int ab_writer_create(const char *path, const ab_writer_config *cfg, ab_writer **out)
{
	if (!path || !*path || !out)
		return ab_error_set(AB_EINVAL, "ab_writer_create: null argument");
	*out = NULL;
	ab_writer_config def;
	if (!cfg) {
		ab_writer_config_init(&def);
		cfg = &def;
	}
	if (cfg->zarr_format != 2 && cfg->zarr_format != 3)
		return ab_error_set(AB_EINVAL, "zarr_format %d: must be 2 or 3", cfg->zarr_format);
	struct stat st;
	if (stat(path, &st) == 0 && !cfg->overwrite)
		return ab_error_set(AB_EINVAL, "%s: already exists", path);

	/* Split into parent directory and base name, ignoring trailing slashes. */
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	char *clean = strndup(path, len);
	if (!clean)
		return ab_error_set(AB_ENOMEM, "out of memory");
	char *slash = strrchr(clean, '/');
	const char *base = slash ? slash + 1 : clean;
	char *parent = slash ? strndup(clean, (size_t)(slash - clean)) : strdup(".");
	if (parent && !*parent) {
		free(parent);
		parent = strdup("/");
	}
	if (!parent || !*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		free(parent);
		free(clean);
		return ab_error_set(parent ? AB_EINVAL : AB_ENOMEM, "%s: not a usable store path", path);
	}
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
		int rc = ab_error_set(AB_ENOENT, "%s: parent directory %s does not exist", path, parent);
		free(parent);
		free(clean);
		return rc;
	}
	sweep_stale(parent, base);

	ab_writer *w = calloc(1, sizeof *w);
	char name[NAME_MAX + 64];
	snprintf(name, sizeof name, ".%s" TMP_TAG "%ld", base, (long)getpid());
	if (w) {
		w->final_path = clean;
		w->tmp_path = ab_path_join(parent, name);
		w->nodes = json_object();
	}
	free(parent);
	if (!w || !w->tmp_path || !w->nodes) {
		if (w) {
			free(w->tmp_path);
			json_decref(w->nodes);
			free(w);
		}
		free(clean);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	w->zarr_format = cfg->zarr_format;
	w->overwrite = cfg->overwrite;
	/* A leftover of our own pid (a previous writer in this process that
	 * crashed half-way) is stale too. */
	ab_remove_tree(w->tmp_path);
	if (mkdir(w->tmp_path, 0755) != 0) {
		int rc = io_error(w->tmp_path, "mkdir", errno);
		free(w->tmp_path);
		free(w->final_path);
		json_decref(w->nodes);
		free(w);
		return rc;
	}
	*out = w;
	return ab_writer_group(w, "", NULL);
}

/* Writes the metadata files of a group node (not the root's consolidated
 * part, which the commit adds). */
static int write_group_files(ab_writer *w, const char *node, json_t *meta)
{
	char *dir = ab_path_join(w->tmp_path, node);
	if (!dir)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc;
	if (w->zarr_format == 3) {
		rc = write_json(dir, "zarr.json", meta);
	} else {
		rc = write_json(dir, ".zgroup", json_object_get(meta, ".zgroup"));
		json_t *attrs = json_object_get(meta, ".zattrs");
		if (!rc && json_object_size(attrs))
			rc = write_json(dir, ".zattrs", attrs);
	}
	free(dir);
	return rc;
}

static json_t *group_meta(int zarr_format, json_t *attrs /* stolen */)
{
	if (zarr_format == 3)
		return json_pack("{s:o, s:i, s:s}", "attributes", attrs, "zarr_format", 3,
				 "node_type", "group");
	return json_pack("{s:{s:i}, s:o}", ".zgroup", "zarr_format", 2, ".zattrs", attrs);
}

/* Makes sure every ancestor of `node` is a declared group. */
static int ensure_parents(ab_writer *w, const char *node)
{
	char *p = strdup(node);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = 0;
	for (char *s = p; (s = strchr(s, '/')); s++) {
		*s = '\0';
		json_t *m = json_object_get(w->nodes, p);
		if (!m) {
			rc = ab_writer_group(w, p, NULL);
		} else if (w->zarr_format == 3 ? strcmp(json_string_value(json_object_get(m, "node_type")), "group")
					       : !json_object_get(m, ".zgroup")) {
			rc = ab_error_set(AB_EINVAL, "'%s' is an array, it cannot hold children", p);
		}
		*s = '/';
		if (rc)
			break;
	}
	free(p);
	return rc;
}

int ab_writer_group(ab_writer *w, const char *node, const char *attributes_json)
{
	if (!w)
		return ab_error_set(AB_EINVAL, "ab_writer_group: null writer");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	json_t *old = json_object_get(w->nodes, n);
	if (old && (w->zarr_format == 3 ? strcmp(json_string_value(json_object_get(old, "node_type")), "group")
					: !json_object_get(old, ".zgroup"))) {
		rc = ab_error_set(AB_EINVAL, "'%s' is already an array", n);
		free(n);
		return rc;
	}
	json_t *attrs = parse_attrs(attributes_json, &rc);
	if (!attrs || (rc = ensure_parents(w, n))) {
		json_decref(attrs);
		free(n);
		return rc;
	}
	char *dir = ab_path_join(w->tmp_path, n);
	json_t *meta = group_meta(w->zarr_format, attrs);
	if (!dir || !meta) {
		free(dir);
		json_decref(meta);
		free(n);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	rc = make_dirs(dir);
	free(dir);
	if (!rc)
		rc = write_group_files(w, n, meta);
	if (!rc)
		json_object_set(w->nodes, n, meta);
	json_decref(meta);
	free(n);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* arrays                                                                    */
/* ------------------------------------------------------------------------- */

void ab_writer_array_config_init(ab_writer_array_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof *cfg);
	cfg->dtype = AB_DT_FLOAT32;
	cfg->ndim = 1;
	cfg->chunk_rows = 1;
	cfg->level = -1;
}

static void array_free(ab_writer_array *a)
{
	if (!a)
		return;
	if (a->strs) {
		for (uint64_t i = 0; i < a->cfg.chunk_rows * a->row_items; i++)
			free(a->strs[i]);
		free(a->strs);
	}
	if (a->shard_fd >= 0)
		close(a->shard_fd);
	free(a->chunk);
	free(a->fail_msg);
	free(a->index);
	free(a->shard_file);
	ab_buf_free(&a->enc);
	free(a->node);
	free(a->dir);
	free((char *)a->cfg.attributes_json);
	free(a);
}

static void unlink_open(ab_writer_array *a)
{
	for (ab_writer_array **p = &a->w->open; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			return;
		}
}

int ab_writer_array_create(ab_writer *w, const char *node, const ab_writer_array_config *cfg,
			   ab_writer_array **out)
{
	if (!w || !cfg || !out)
		return ab_error_set(AB_EINVAL, "ab_writer_array_create: null argument");
	*out = NULL;
	if (cfg->ndim < 1 || cfg->ndim > AB_MAX_NDIM)
		return ab_error_set(AB_EINVAL, "%s: ndim %d outside 1..%d", node, cfg->ndim, AB_MAX_NDIM);
	if (cfg->chunk_rows < 1)
		return ab_error_set(AB_EINVAL, "%s: chunk_rows must be at least 1", node);
	if (cfg->shard_rows && (cfg->shard_rows % cfg->chunk_rows))
		return ab_error_set(AB_EINVAL, "%s: shard_rows %llu is not a multiple of chunk_rows %llu",
				    node, (unsigned long long)cfg->shard_rows,
				    (unsigned long long)cfg->chunk_rows);
	if (cfg->shard_rows && w->zarr_format != 3)
		return ab_error_set(AB_EINVAL, "%s: sharding needs zarr v3", node);
	if ((int)cfg->dtype < AB_DT_BOOL || cfg->dtype > AB_DT_STRING)
		return ab_error_set(AB_EINVAL, "%s: unknown dtype %d", node, (int)cfg->dtype);

	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	if (!*n || json_object_get(w->nodes, n)) {
		rc = ab_error_set(AB_EINVAL, "'%s': %s", n, *n ? "node exists already" : "the root cannot be an array");
		free(n);
		return rc;
	}
	for (ab_writer_array *o = w->open; o; o = o->next)
		if (strcmp(o->node, n) == 0) {
			free(n);
			return ab_error_set(AB_EINVAL, "'%s': array is being written already", node);
		}
	int prc = 0;
	json_t *attrs = parse_attrs(cfg->attributes_json, &prc);
	if (!attrs) {
		free(n);
		return prc;
	}
	json_decref(attrs);
	if ((rc = ensure_parents(w, n))) {
		free(n);
		return rc;
	}

	ab_writer_array *a = calloc(1, sizeof *a);
	if (!a) {
		free(n);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	a->w = w;
	a->node = n;
	a->shard_fd = -1;
	a->cfg = *cfg;
	a->cfg.attributes_json = cfg->attributes_json ? strdup(cfg->attributes_json) : NULL;
	a->is_string = cfg->dtype == AB_DT_STRING;
	a->itemsize = a->is_string ? sizeof(char *) : ab_dtype_size(cfg->dtype);
	a->row_items = 1;
	for (int d = 1; d < cfg->ndim; d++) {
		if (ab_mul_u64(a->row_items, cfg->shape[d], &a->row_items)) {
			array_free(a);
			return ab_error_set(AB_EINVAL, "%s: shape overflows", node);
		}
	}
	uint64_t chunk_items, chunk_bytes;
	if (ab_mul_u64(cfg->chunk_rows, a->row_items, &chunk_items) ||
	    ab_mul_u64(chunk_items, a->itemsize, &chunk_bytes) || chunk_bytes > (uint64_t)1 << 40) {
		array_free(a);
		return ab_error_set(AB_EINVAL, "%s: chunk of %llu rows is too large", node,
				    (unsigned long long)cfg->chunk_rows);
	}
	rc = ab_compressor_codec(cfg->compressor, cfg->level,
				 a->is_string ? 1 : (int)ab_dtype_size(cfg->dtype), &a->codec,
				 &a->has_codec);
	if (rc == 0 && a->codec.kind == AB_B2B_BLOSC) {
		if (cfg->blosc_blocksize > (size_t)1 << 29)
			rc = ab_error_set(AB_EINVAL, "blosc block size %zu: at most 512 MiB",
					  cfg->blosc_blocksize);
		a->codec.blocksize = cfg->blosc_blocksize;
	}
	if (rc) {
		array_free(a);
		return ab_error_prefix(rc, "%s: ", node);
	}
	if (a->is_string)
		a->strs = calloc(chunk_items ? chunk_items : 1, sizeof(char *));
	else
		a->chunk = calloc(chunk_bytes ? chunk_bytes : 1, 1);
	a->dir = ab_path_join(w->tmp_path, n);
	if (cfg->shard_rows) {
		a->per_shard = cfg->shard_rows / cfg->chunk_rows;
		a->index = malloc(a->per_shard * 16 + 4);
	}
	if ((!a->strs && !a->chunk) || !a->dir || (cfg->shard_rows && !a->index)) {
		array_free(a);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	if ((rc = make_dirs(a->dir))) {
		array_free(a);
		return rc;
	}
	a->next = w->open;
	w->open = a;
	*out = a;
	return 0;
}

/* The file name of chunk (or shard) i; directories made as needed. */
static int chunk_path(ab_writer_array *a, uint64_t i, char **out)
{
	char key[64 + 3 * AB_MAX_NDIM];
	ab_chunk_key_axis0(a->w->zarr_format, a->cfg.ndim, i, key, sizeof key);
	char *p = ab_path_join(a->dir, key);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	char *slash = strrchr(p, '/');
	if (a->w->zarr_format == 3 && slash) {
		*slash = '\0';
		int rc = make_dirs(p);
		*slash = '/';
		if (rc) {
			free(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

/* Encodes the chunk buffer (bytes or vlen-utf8, then the compressor) into
 * a->enc. */
static int encode_chunk(ab_writer_array *a)
{
	uint64_t items = a->cfg.chunk_rows * a->row_items;
	const uint8_t *raw;
	size_t rawlen;
	uint8_t *vlen = NULL;
	if (a->is_string) {
		int rc = ab_vlen_utf8_encode((const char *const *)a->strs, (size_t)items, &vlen, &rawlen);
		if (rc)
			return rc;
		raw = vlen;
	} else {
		raw = a->chunk;
		rawlen = (size_t)(items * a->itemsize);
	}
	int rc = 0;
	if (!a->has_codec) {
		if ((rc = ab_buf_reserve(&a->enc, rawlen ? rawlen : 1)) == 0) {
			memcpy(a->enc.data, raw, rawlen);
			a->enc.len = rawlen;
		}
	} else {
		size_t bound = ab_b2b_encode_bound(&a->codec, rawlen);
		if ((rc = ab_buf_reserve(&a->enc, bound)) == 0) {
			ssize_t n = ab_b2b_encode(&a->codec, raw, rawlen, a->enc.data, bound);
			if (n < 0)
				rc = (int)n;
			else
				a->enc.len = (size_t)n;
		}
	}
	free(vlen);
	return rc;
}

static int finish_shard(ab_writer_array *a)
{
	if (a->shard_fd < 0)
		return 0;
	ab_shard_index_encode(a->index, a->per_shard, (uint8_t *)a->index);
	/* The index is encoded in place: 16 bytes per entry, stored as LE
	 * uint64 over the host uint64 (the same bytes on little-endian hosts),
	 * then the crc32c in the 4 extra bytes allocated for it. */
	int rc = write_all_fd(a->shard_fd, a->index, (size_t)(a->per_shard * 16 + 4), a->shard_file);
	if (close(a->shard_fd) != 0 && !rc)
		rc = io_error(a->shard_file, "close", errno);
	a->shard_fd = -1;
	free(a->shard_file);
	a->shard_file = NULL;
	return rc;
}

/* Encodes and writes the current chunk (padded) and resets the buffer. */
static int flush_chunk(ab_writer_array *a)
{
	uint64_t items = a->cfg.chunk_rows * a->row_items;
	uint64_t used = a->chunk_rows_filled * a->row_items;
	if (!a->is_string && used < items)
		memset(a->chunk + used * a->itemsize, 0, (size_t)((items - used) * a->itemsize));
	int rc = encode_chunk(a);
	if (a->is_string) {
		for (uint64_t i = 0; i < used; i++) {
			free(a->strs[i]);
			a->strs[i] = NULL;
		}
	}
	if (rc)
		return ab_error_prefix(rc, "%s: chunk %llu: ", a->node, (unsigned long long)a->chunk_index);
	uint64_t ci = a->chunk_index++;
	a->chunk_rows_filled = 0;
	if (!a->per_shard) {
		char *path;
		if ((rc = chunk_path(a, ci, &path)))
			return rc;
		rc = write_file(path, a->enc.data, a->enc.len);
		free(path);
		return rc;
	}
	uint64_t j = ci % a->per_shard;
	if (j == 0) {
		if ((rc = finish_shard(a)))
			return rc;
		if ((rc = chunk_path(a, ci / a->per_shard, &a->shard_file)))
			return rc;
		a->shard_fd = open(a->shard_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (a->shard_fd < 0)
			return io_error(a->shard_file, "create", errno);
		a->shard_offset = 0;
		for (uint64_t k = 0; k < 2 * a->per_shard; k++)
			a->index[k] = UINT64_MAX; /* absent inner chunk */
	}
	a->index[2 * j] = a->shard_offset;
	a->index[2 * j + 1] = a->enc.len;
	a->shard_offset += a->enc.len;
	return write_all_fd(a->shard_fd, a->enc.data, a->enc.len, a->shard_file);
}

/* Marks the array failed with the message just set: later calls repeat the
 * first cause (a full disk, say), not a vaguer "an earlier write failed". */
static int array_fail(ab_writer_array *a, int rc)
{
	a->failed = rc;
	free(a->fail_msg);
	a->fail_msg = strdup(ab_last_error());
	return rc;
}

static int array_failed(const ab_writer_array *a)
{
	if (a->fail_msg && *a->fail_msg)
		return ab_error_set(a->failed, "%s", a->fail_msg);
	return ab_error_set(a->failed, "%s: an earlier write failed", a->node);
}

static int append_check(ab_writer_array *a, int strings)
{
	if (!a)
		return ab_error_set(AB_EINVAL, "null array");
	if (a->failed)
		return array_failed(a);
	if (strings != a->is_string)
		return ab_error_set(AB_ETYPE, "%s: %s", a->node,
				    strings ? "not a string array" : "a string array takes strings");
	return 0;
}

int ab_writer_array_append(ab_writer_array *a, const void *rows, uint64_t nrows)
{
	int rc = append_check(a, 0);
	if (rc)
		return rc;
	if (nrows && !rows)
		return ab_error_set(AB_EINVAL, "%s: null rows", a->node);
	const uint8_t *src = rows;
	size_t row_bytes = (size_t)(a->row_items * a->itemsize);
	while (nrows) {
		uint64_t take = a->cfg.chunk_rows - a->chunk_rows_filled;
		if (take > nrows)
			take = nrows;
		memcpy(a->chunk + a->chunk_rows_filled * row_bytes, src, (size_t)(take * row_bytes));
		src += take * row_bytes;
		nrows -= take;
		a->rows += take;
		a->chunk_rows_filled += take;
		if (a->chunk_rows_filled == a->cfg.chunk_rows && (rc = flush_chunk(a)))
			return array_fail(a, rc);
	}
	return 0;
}

int ab_writer_array_append_strings(ab_writer_array *a, const char *const *strings, uint64_t n)
{
	int rc = append_check(a, 1);
	if (rc)
		return rc;
	if (n && !strings)
		return ab_error_set(AB_EINVAL, "%s: null strings", a->node);
	if (n % a->row_items)
		return ab_error_set(AB_EINVAL, "%s: %llu strings is not a whole number of rows of %llu",
				    a->node, (unsigned long long)n, (unsigned long long)a->row_items);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t slot = a->chunk_rows_filled * a->row_items + i % a->row_items;
		char *s = strdup(strings && strings[i] ? strings[i] : "");
		if (!s)
			return array_fail(a, ab_error_set(AB_ENOMEM, "out of memory"));
		free(a->strs[slot]);
		a->strs[slot] = s;
		if ((i + 1) % a->row_items == 0) {
			a->rows++;
			a->chunk_rows_filled++;
			if (a->chunk_rows_filled == a->cfg.chunk_rows && (rc = flush_chunk(a)))
				return array_fail(a, rc);
		}
	}
	return 0;
}

/* The array's metadata document(s), with shape[0] = rows written. */
static json_t *array_meta(ab_writer_array *a)
{
	const ab_writer_array_config *c = &a->cfg;
	int rc;
	json_t *attrs = parse_attrs(c->attributes_json, &rc);
	json_t *shape = json_array(), *chunks = json_array(), *inner = json_array();
	for (int d = 0; d < c->ndim; d++) {
		uint64_t s = d == 0 ? a->rows : c->shape[d];
		uint64_t ch = d == 0 ? (c->shard_rows ? c->shard_rows : c->chunk_rows) : (s ? s : 1);
		json_array_append_new(shape, json_integer((json_int_t)s));
		json_array_append_new(chunks, json_integer((json_int_t)ch));
		json_array_append_new(inner, json_integer((json_int_t)(d == 0 ? c->chunk_rows : ch)));
	}
	if (a->w->zarr_format == 2) {
		json_t *filters = a->is_string ? json_pack("[{s:s}]", "id", "vlen-utf8") : json_null();
		json_t *comp = a->has_codec ? ab_codec_json_v2(&a->codec) : json_null();
		json_decref(inner);
		json_t *zarray = json_pack("{s:o, s:o, s:s, s:o, s:o, s:s, s:o, s:i, s:s}",
					   "chunks", chunks, "compressor", comp, "dtype",
					   dtype_v2(c->dtype), "fill_value", fill_json(c->dtype, 2),
					   "filters", filters, "order", "C", "shape", shape,
					   "zarr_format", 2, "dimension_separator", ".");
		return json_pack("{s:o, s:o}", ".zarray", zarray, ".zattrs", attrs);
	}
	json_t *a2b = a->is_string ? json_pack("{s:s, s:{}}", "name", "vlen-utf8", "configuration")
		: ab_dtype_size(c->dtype) > 1
		? json_pack("{s:s, s:{s:s}}", "name", "bytes", "configuration", "endian", "little")
		: json_pack("{s:s}", "name", "bytes");
	json_t *codecs = json_pack("[o]", a2b);
	if (a->has_codec)
		json_array_append_new(codecs, ab_codec_json_v3(&a->codec));
	if (c->shard_rows) {
		ab_b2b_codec crc = { .kind = AB_B2B_CRC32C };
		json_t *sh = json_pack("{s:s, s:{s:o, s:o, s:[{s:s, s:{s:s}}, o], s:s}}",
				       "name", "sharding_indexed", "configuration",
				       "chunk_shape", inner, "codecs", codecs,
				       "index_codecs", "name", "bytes", "configuration", "endian", "little",
				       ab_codec_json_v3(&crc), "index_location", "end");
		codecs = json_pack("[o]", sh);
	} else {
		json_decref(inner);
	}
	return json_pack("{s:o, s:s, s:{s:s, s:{s:o}}, s:{s:s, s:{s:s}}, s:o, s:o, s:o, s:i, s:s, s:[]}",
			 "shape", shape, "data_type", ab_dtype_name(c->dtype),
			 "chunk_grid", "name", "regular", "configuration", "chunk_shape", chunks,
			 "chunk_key_encoding", "name", "default", "configuration", "separator", "/",
			 "fill_value", fill_json(c->dtype, 3), "codecs", codecs, "attributes", attrs,
			 "zarr_format", 3, "node_type", "array", "storage_transformers");
}

int ab_writer_array_close(ab_writer_array *a)
{
	if (!a)
		return 0;
	int rc = a->failed ? array_failed(a) : 0;
	if (!rc && a->chunk_rows_filled)
		rc = flush_chunk(a);
	/* An array that fits in its first shard gets a shard just as large as
	 * its chunks: a small array then carries a small index, not one sized
	 * for a gigabyte of rows. */
	if (!rc && a->shard_fd >= 0 && a->chunk_index <= a->per_shard) {
		a->per_shard = a->chunk_index;
		a->cfg.shard_rows = a->per_shard * a->cfg.chunk_rows;
	}
	if (!rc)
		rc = finish_shard(a);
	if (!rc) {
		json_t *meta = array_meta(a);
		if (!meta) {
			rc = ab_error_set(AB_ENOMEM, "%s: cannot build metadata", a->node);
		} else if (a->w->zarr_format == 3) {
			rc = write_json(a->dir, "zarr.json", meta);
		} else {
			rc = write_json(a->dir, ".zarray", json_object_get(meta, ".zarray"));
			json_t *at = json_object_get(meta, ".zattrs");
			if (!rc && json_object_size(at))
				rc = write_json(a->dir, ".zattrs", at);
		}
		if (!rc)
			json_object_set(a->w->nodes, a->node, meta);
		json_decref(meta);
	}
	unlink_open(a);
	array_free(a);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* commit                                                                    */
/* ------------------------------------------------------------------------- */

static int depth_of(const char *p)
{
	int d = 0;
	for (; *p; p++)
		d += *p == '/';
	return d;
}

/* zarr-python 3 orders consolidated keys by depth, then by name. */
static int key_cmp(const void *x, const void *y)
{
	const char *a = *(const char *const *)x, *b = *(const char *const *)y;
	int da = depth_of(a), db = depth_of(b);
	if (da != db)
		return da < db ? -1 : 1;
	return strcmp(a, b);
}

static int write_root(ab_writer *w)
{
	size_t n = json_object_size(w->nodes), k = 0;
	const char **keys = calloc(n ? n : 1, sizeof *keys);
	if (!keys)
		return ab_error_set(AB_ENOMEM, "out of memory");
	const char *key;
	json_t *v;
	json_object_foreach(w->nodes, key, v)
		if (*key)
			keys[k++] = key;
	qsort(keys, k, sizeof *keys, key_cmp);
	json_t *root = json_object_get(w->nodes, "");
	int rc;
	if (w->zarr_format == 3) {
		json_t *md = json_object();
		for (size_t i = 0; i < k; i++)
			json_object_set(md, keys[i], json_object_get(w->nodes, keys[i]));
		json_t *doc = json_pack("{s:O, s:i, s:{s:s, s:b, s:o}, s:s}",
					"attributes", json_object_get(root, "attributes"),
					"zarr_format", 3, "consolidated_metadata", "kind", "inline",
					"must_understand", 0, "metadata", md, "node_type", "group");
		rc = doc ? write_json(w->tmp_path, "zarr.json", doc) : ab_error_set(AB_ENOMEM, "out of memory");
		json_decref(doc);
	} else {
		json_t *md = json_object();
		json_object_set(md, ".zgroup", json_object_get(root, ".zgroup"));
		if (json_object_size(json_object_get(root, ".zattrs")))
			json_object_set(md, ".zattrs", json_object_get(root, ".zattrs"));
		char buf[PATH_MAX];
		for (size_t i = 0; i < k; i++) {
			json_t *m = json_object_get(w->nodes, keys[i]);
			const char *kind = json_object_get(m, ".zarray") ? ".zarray" : ".zgroup";
			snprintf(buf, sizeof buf, "%s/%s", keys[i], kind);
			json_object_set(md, buf, json_object_get(m, kind));
			if (json_object_size(json_object_get(m, ".zattrs"))) {
				snprintf(buf, sizeof buf, "%s/.zattrs", keys[i]);
				json_object_set(md, buf, json_object_get(m, ".zattrs"));
			}
		}
		json_t *doc = json_pack("{s:o, s:i}", "metadata", md, "zarr_consolidated_format", 1);
		rc = doc ? write_json(w->tmp_path, ".zmetadata", doc) : ab_error_set(AB_ENOMEM, "out of memory");
		json_decref(doc);
	}
	free(keys);
	return rc;
}

static void writer_free(ab_writer *w)
{
	while (w->open) {
		ab_writer_array *a = w->open;
		w->open = a->next;
		array_free(a);
	}
	json_decref(w->nodes);
	free(w->final_path);
	free(w->tmp_path);
	free(w);
}

void ab_writer_abort(ab_writer *w)
{
	if (!w)
		return;
	ab_remove_tree(w->tmp_path);
	writer_free(w);
}

/* Swaps two paths atomically (Linux renameat2 RENAME_EXCHANGE). */
static int rename_exchange(const char *a, const char *b)
{
#ifdef SYS_renameat2
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
	errno = ENOSYS;
	return -1;
#endif
}

int ab_writer_commit(ab_writer *w)
{
	if (!w)
		return ab_error_set(AB_EINVAL, "ab_writer_commit: null writer");
	int rc = 0;
	if (w->open)
		rc = ab_error_set(AB_EINVAL, "commit: array '%s' is still open", w->open->node);
	if (!rc)
		rc = write_root(w);
	if (!rc) {
		/* Everything reaches the disk before the rename makes it visible,
		 * so a crash right after the rename cannot expose empty files. */
		int fd = open(w->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) != 0)
			rc = io_error(w->tmp_path, "sync", errno);
		if (fd >= 0)
			close(fd);
	}
	if (!rc) {
		struct stat st;
		if (lstat(w->final_path, &st) == 0) {
			if (!w->overwrite) {
				rc = ab_error_set(AB_EINVAL, "%s: appeared while writing; not replaced",
						  w->final_path);
			} else if (rename_exchange(w->tmp_path, w->final_path) == 0) {
				/* the old store now sits at the temporary name */
				ab_remove_tree(w->tmp_path);
			} else if (!S_ISDIR(st.st_mode) && rename(w->tmp_path, w->final_path) == 0) {
				;
			} else {
				rc = io_error(w->final_path, "replace", errno);
			}
		} else if (rename(w->tmp_path, w->final_path) != 0) {
			rc = io_error(w->final_path, "rename", errno);
		}
	}
	if (rc)
		ab_remove_tree(w->tmp_path);
	writer_free(w);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* adopting a subtree of an existing store                                   */
/* ------------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return io_error(from, "open", errno);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return io_error(to, "create", errno);
	}
	static _Thread_local uint8_t buf[1 << 16];
	int rc = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = io_error(from, "read", errno);
			break;
		}
		if (r == 0)
			break;
		if ((rc = write_all_fd(out, buf, (size_t)r, to)))
			break;
	}
	close(in);
	if (close(out) != 0 && !rc)
		rc = io_error(to, "close", errno);
	return rc;
}

/* Recursively links src/rel into tmp/rel and records zarr.json documents. */
static int adopt_dir(ab_writer *w, const char *src_root, const char *rel)
{
	char *src = ab_path_join(src_root, rel), *dst = ab_path_join(w->tmp_path, rel);
	int rc = 0;
	DIR *d = NULL;
	if (!src || !dst) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = make_dirs(dst)))
		goto out;
	d = opendir(src);
	if (!d) {
		rc = io_error(src, "open", errno);
		goto out;
	}
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *crel = ab_path_join(rel, e->d_name);
		char *csrc = crel ? ab_path_join(src_root, crel) : NULL;
		char *cdst = crel ? ab_path_join(w->tmp_path, crel) : NULL;
		struct stat st;
		if (!crel || !csrc || !cdst) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
		} else if (lstat(csrc, &st) != 0) {
			rc = io_error(csrc, "stat", errno);
		} else if (S_ISDIR(st.st_mode)) {
			rc = adopt_dir(w, src_root, crel);
		} else if (S_ISREG(st.st_mode)) {
			if (strcmp(e->d_name, "zarr.json") == 0) {
				json_error_t jerr;
				json_t *doc = json_load_file(csrc, 0, &jerr);
				if (!json_is_object(doc)) {
					rc = ab_error_set(AB_EFORMAT, "%s: %s", csrc,
							  doc ? "not a JSON object" : jerr.text);
				} else {
					json_object_del(doc, "consolidated_metadata");
					json_object_set(w->nodes, rel, doc);
				}
				json_decref(doc);
			}
			if (!rc && link(csrc, cdst) != 0)
				rc = copy_file(csrc, cdst);
		}
		free(crel);
		free(csrc);
		free(cdst);
	}
out:
	if (d)
		closedir(d);
	free(src);
	free(dst);
	return rc;
}

int ab_writer_adopt(ab_writer *w, const char *src_path, const char *node)
{
	if (!w || !src_path)
		return ab_error_set(AB_EINVAL, "ab_writer_adopt: null argument");
	if (w->zarr_format != 3)
		return ab_error_set(AB_EUNSUPPORTED, "adopting nodes needs a zarr v3 writer");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	if (!*n) {
		free(n);
		return ab_error_set(AB_EINVAL, "ab_writer_adopt: cannot adopt the root");
	}
	char *marker = ab_path_join(src_path, n);
	char *zj = marker ? ab_path_join(marker, "zarr.json") : NULL;
	struct stat st;
	if (!zj)
		rc = ab_error_set(AB_ENOMEM, "out of memory");
	else if (stat(zj, &st) != 0)
		rc = ab_error_set(AB_ENOENT, "%s: no zarr v3 node '%s' there", src_path, n);
	else if (json_object_get(w->nodes, n))
		rc = ab_error_set(AB_EINVAL, "'%s' exists already in the new store", n);
	if (!rc)
		rc = ensure_parents(w, n);
	if (!rc)
		rc = adopt_dir(w, src_path, n);
	free(zj);
	free(marker);
	free(n);
	return rc;
}
