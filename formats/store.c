/* store.c - local directory stores, zarr v2/v3 metadata lookup, hierarchy. */
#include "store.h"
#include "last_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Metadata documents larger than this are refused rather than slurped: the
 * consolidated metadata of a store of 100 000 arrays is about 150 MB. */
#define AB_META_MAX ((size_t)256 << 20)

/* jansson holds integers as long long and refuses larger literals, but a
 * uint64 fill value may be up to 2^64-1. Such literals (outside strings) are
 * rewritten as the string "#u64:<digits>", which the fill-value parser reads
 * back for unsigned dtypes. Returns a malloc'd copy, or NULL. */
static char *quote_big_integers(const uint8_t *data, size_t len, size_t *outlen)
{
	char *out = malloc(len * 2 + 16);
	if (!out)
		return NULL;
	size_t n = 0;
	int in_str = 0;
	for (size_t i = 0; i < len; i++) {
		char c = (char)data[i];
		if (in_str) {
			out[n++] = c;
			if (c == '\\' && i + 1 < len)
				out[n++] = (char)data[++i];
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
			out[n++] = c;
			continue;
		}
		if (c >= '0' && c <= '9' && (i == 0 || !strchr("0123456789.eE+-", (char)data[i - 1]))) {
			size_t j = i;
			while (j < len && data[j] >= '0' && data[j] <= '9')
				j++;
			int is_int = j == len || !strchr(".eE", (char)data[j]);
			if (is_int && j - i >= 19 && (j - i > 19 || memcmp(data + i, "9223372036854775807", 19) > 0) &&
			    (i == 0 || data[i - 1] != '-')) {
				n += (size_t)sprintf(out + n, "\"#u64:");
				memcpy(out + n, data + i, j - i);
				n += j - i;
				out[n++] = '"';
				i = j - 1;
				continue;
			}
		}
		out[n++] = c;
	}
	*outlen = n;
	return out;
}

int ab_json_parse(const uint8_t *data, size_t len, const char *what, json_t **out)
{
	json_error_t err;
	const size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
	json_t *j = json_loadb((const char *)data, len, flags, &err);
	if (!j && strstr(err.text, "too big integer")) {
		size_t qlen;
		char *q = quote_big_integers(data, len, &qlen);
		if (q) {
			j = json_loadb(q, qlen, flags, &err);
			free(q);
		}
	}
	if (!j)
		return ab_error_set(AB_EFORMAT, "%s: invalid JSON at line %d column %d: %s", what, err.line,
				    err.column, err.text);
	*out = j;
	return 0;
}

const char *ab_attr_str(const json_t *attrs, const char *key)
{
	const json_t *v = attrs ? json_object_get(attrs, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int ab_store_open_file(ab_store *s, const char *rel)
{
	/* O_NONBLOCK: a store is untrusted, and opening a FIFO planted under a
	 * metadata or chunk name would otherwise block forever waiting for a
	 * writer. Regular files and directories ignore the flag; anything else
	 * is then refused by the S_ISREG checks (or fails its reads). */
	return openat(s->rootfd, *rel ? rel : ".", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
}

int ab_store_read_file(ab_store *s, const char *rel, uint64_t max, const char *limit, ab_buf *buf, int *found)
{
	*found = 0;
	int fd = ab_store_open_file(s, rel);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return ab_error_set(AB_EIO, "%s/%s: cannot open: %s", s->root, rel, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		close(fd);
		if (S_ISDIR(st.st_mode))
			return 0;
		return ab_error_set(AB_EIO, "%s/%s: not a regular file%s%s", s->root, rel, e ? ": " : "",
				    e ? strerror(e) : "");
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return ab_error_set(AB_EFORMAT, "%s/%s: %lld bytes, more than %s (%llu bytes)", s->root, rel,
				    (long long)st.st_size, limit, (unsigned long long)max);
	}
	size_t size = (size_t)st.st_size;
	int rc = ab_buf_reserve(buf, size + 1);
	if (rc) {
		close(fd);
		return rc;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, buf->data + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return ab_error_set(AB_EIO, "%s/%s: read failed: %s", s->root, rel, strerror(e));
		}
		if (n == 0)
			break; /* the file shrank under us: take what is there */
		got += (size_t)n;
	}
	close(fd);
	buf->len = got;
	*found = 1;
	return 0;
}

/* Loads a JSON document from a file; *out = NULL when absent. */
static int load_json_file(ab_store *s, const char *rel, json_t **out)
{
	ab_buf buf = { 0 };
	int found;
	*out = NULL;
	int rc = ab_store_read_file(s, rel, AB_META_MAX, "a metadata document may hold", &buf, &found);
	if (rc == 0 && found) {
		if (buf.len > AB_META_MAX) /* grew after the size check */
			rc = ab_error_set(AB_EFORMAT, "%s: metadata too large", rel);
		else
			rc = ab_json_parse(buf.data, buf.len, rel, out);
	}
	ab_buf_free(&buf);
	return rc;
}

static int load_consolidated(ab_store *s)
{
	json_t *doc = NULL;
	if (s->zarr_format == 2) {
		int rc = load_json_file(s, ".zmetadata", &doc);
		if (rc || !doc)
			return rc;
		json_t *md = json_object_get(doc, "metadata");
		if (!json_is_object(md)) {
			json_decref(doc);
			return ab_error_set(AB_EFORMAT, ".zmetadata: missing \"metadata\" object");
		}
		s->consolidated = json_incref(md);
		json_decref(doc);
		return 0;
	}
	int rc = load_json_file(s, "zarr.json", &doc);
	if (rc || !doc)
		return rc;
	json_t *cm = json_object_get(doc, "consolidated_metadata");
	if (json_is_object(cm)) {
		json_t *md = json_object_get(cm, "metadata");
		if (!json_is_object(md)) {
			json_decref(doc);
			return ab_error_set(AB_EFORMAT, "zarr.json: consolidated_metadata lacks \"metadata\"");
		}
		s->consolidated = json_incref(md);
	}
	json_decref(doc);
	return 0;
}

/* Whether the directory holds a subdirectory (where a node could be). */
static int has_subdir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	struct dirent *e;
	int found = 0;
	while (!found && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN))
			continue; /* files need no stat: a directory of many is scanned fast */
		if (e->d_type == DT_DIR || (fstatat(dirfd, e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)))
			found = 1;
	}
	closedir(d);
	return found;
}

int ab_store_open(const char *path, ab_store **out)
{
	if (!path || !out)
		return ab_error_set(AB_EINVAL, "ab_store_open: null argument");
	*out = NULL;
	struct stat st;
	if (stat(path, &st) != 0)
		return ab_error_set(errno == ENOENT ? AB_ENOENT : AB_EIO, "%s: %s", path,
				    errno == ENOENT ? "not found" : strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ab_error_set(AB_EFORMAT,
				    "%s: not a zarr store (a directory is expected; .h5ad files are read by "
				    "ab_anndata_open_path, as annbatch inspect, get and convert do; the loader "
				    "streams zarr: convert them first)", path);
	ab_store *s = calloc(1, sizeof *s);
	if (!s || !(s->root = strdup(path))) {
		free(s);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	s->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		int rc = ab_error_set(AB_EIO, "%s: cannot open: %s", path, strerror(errno));
		free(s->root);
		free(s);
		return rc;
	}
	if (faccessat(s->rootfd, "zarr.json", F_OK, 0) == 0)
		s->zarr_format = 3;
	else if (faccessat(s->rootfd, ".zgroup", F_OK, 0) == 0 ||
		 faccessat(s->rootfd, ".zarray", F_OK, 0) == 0 ||
		 faccessat(s->rootfd, ".zmetadata", F_OK, 0) == 0)
		s->zarr_format = 2;
	else if (has_subdir(s->rootfd))
		/* No root metadata, but arrays may sit below: zarr-python and
		 * other writers open an array by its path in such a directory, so
		 * each node's own metadata says which format it is. */
		s->zarr_format = 0;
	else {
		ab_store_close(s);
		return ab_error_set(AB_EFORMAT, "%s: not a zarr store (no zarr.json, .zgroup or .zarray)", path);
	}
	int rc = load_consolidated(s);
	if (rc) {
		ab_error_prefix(rc, "%s: ", path);
		ab_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ab_store_close(ab_store *s)
{
	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	json_decref(s->consolidated);
	free(s->root);
	free(s);
}

int ab_store_zarr_format(const ab_store *s)
{
	return s ? s->zarr_format : 0;
}

const char *ab_store_path(const ab_store *s)
{
	return s ? s->root : NULL;
}

void ab_node_meta_release(ab_node_meta *m)
{
	json_decref(m->meta);
	json_decref(m->attrs);
	m->meta = m->attrs = NULL;
}

/* A v2 metadata document: from consolidated metadata or from disk. */
static int v2_doc(ab_store *s, const char *node, const char *name, json_t **out)
{
	char *key = ab_path_join(node, name);
	if (!key)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = 0;
	*out = NULL;
	json_t *c = s->consolidated ? json_object_get(s->consolidated, key) : NULL;
	if (c)
		*out = json_incref(c);
	else
		rc = load_json_file(s, key, out);
	free(key);
	if (rc == 0 && *out && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return ab_error_set(AB_EFORMAT, "%s%s%s: not a JSON object", node, *node ? "/" : "", name);
	}
	return rc;
}

int ab_store_node_meta(ab_store *s, const char *node, ab_node_meta *out)
{
	memset(out, 0, sizeof *out);
	int rc, fmt = s->zarr_format;
	if (fmt == 0) {
		/* no root metadata: the node's own files say v3 or v2 */
		char *key = ab_path_join(node, "zarr.json");
		if (!key)
			return ab_error_set(AB_ENOMEM, "out of memory");
		fmt = faccessat(s->rootfd, key, F_OK, 0) == 0 ? 3 : 2;
		free(key);
		if (!*node) {
			/* has_subdir saw no root metadata at open */
			return ab_error_set(AB_ENOENT, "%s has no root metadata (no zarr.json, .zgroup or .zarray): "
					    "name an array inside it", s->root);
		}
	}
	out->zarr_format = fmt;
	if (fmt == 2) {
		json_t *arr = NULL, *grp = NULL, *attrs = NULL;
		if ((rc = v2_doc(s, node, ".zarray", &arr)))
			return rc;
		if (!arr && (rc = v2_doc(s, node, ".zgroup", &grp)))
			return rc;
		if (!arr && !grp)
			return ab_error_set(AB_ENOENT, "node '%s' not found in %s", node, s->root);
		if ((rc = v2_doc(s, node, ".zattrs", &attrs))) {
			json_decref(arr);
			json_decref(grp);
			return rc;
		}
		out->type = arr ? AB_NODE_ARRAY : AB_NODE_GROUP;
		out->meta = arr ? arr : grp;
		out->attrs = attrs ? attrs : json_object();
		return 0;
	}
	json_t *doc = NULL;
	const char *lookup = *node ? node : "";
	json_t *c = (s->consolidated && *node) ? json_object_get(s->consolidated, lookup) : NULL;
	if (c) {
		doc = json_incref(c);
	} else {
		char *key = ab_path_join(node, "zarr.json");
		if (!key)
			return ab_error_set(AB_ENOMEM, "out of memory");
		rc = load_json_file(s, key, &doc);
		free(key);
		if (rc)
			return rc;
	}
	if (!doc)
		return ab_error_set(AB_ENOENT, "node '%s' not found in %s", node, s->root);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return ab_error_set(AB_EFORMAT, "%s/zarr.json: not a JSON object", node);
	}
	const json_t *zf = json_object_get(doc, "zarr_format");
	const char *nt = ab_attr_str(doc, "node_type");
	if (!json_is_integer(zf) || json_integer_value(zf) != 3 || !nt ||
	    (strcmp(nt, "array") && strcmp(nt, "group"))) {
		json_decref(doc);
		return ab_error_set(AB_EFORMAT, "%s%szarr.json: needs zarr_format 3 and node_type array or group",
				    node, *node ? "/" : "");
	}
	out->type = strcmp(nt, "array") == 0 ? AB_NODE_ARRAY : AB_NODE_GROUP;
	out->meta = doc;
	json_t *attrs = json_object_get(doc, "attributes");
	out->attrs = json_is_object(attrs) ? json_incref(attrs) : json_object();
	return 0;
}

int ab_node_type_of(ab_store *s, const char *node, ab_node_type *out)
{
	if (!s || !out)
		return ab_error_set(AB_EINVAL, "ab_node_type_of: null argument");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	ab_node_meta m;
	rc = ab_store_node_meta(s, n, &m);
	free(n);
	if (rc)
		return rc;
	*out = m.type;
	ab_node_meta_release(&m);
	return 0;
}

int ab_node_attributes(ab_store *s, const char *node, char **json)
{
	if (!s || !json)
		return ab_error_set(AB_EINVAL, "ab_node_attributes: null argument");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	ab_node_meta m;
	rc = ab_store_node_meta(s, n, &m);
	free(n);
	if (rc)
		return rc;
	*json = json_dumps(m.attrs, JSON_COMPACT | JSON_SORT_KEYS);
	ab_node_meta_release(&m);
	return *json ? 0 : ab_error_set(AB_ENOMEM, "out of memory");
}

void ab_free(void *p)
{
	free(p);
}

void ab_strings_free(char **strings)
{
	if (!strings)
		return;
	for (char **p = strings; *p; p++)
		free(*p);
	free(strings);
}

static int name_cmp(const void *a, const void *b)
{
	return ab_natural_cmp(*(char *const *)a, *(char *const *)b);
}

/* Adds `name` to the list unless present. */
static int add_name(char ***list, size_t *n, size_t *cap, const char *name, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen((*list)[i]) == len && strncmp((*list)[i], name, len) == 0)
			return 0;
	if (*n + 2 > *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nl = realloc(*list, nc * sizeof *nl);
		if (!nl)
			return ab_error_set(AB_ENOMEM, "out of memory");
		*list = nl;
		*cap = nc;
	}
	char *c = strndup(name, len);
	if (!c)
		return ab_error_set(AB_ENOMEM, "out of memory");
	(*list)[(*n)++] = c;
	(*list)[*n] = NULL;
	return 0;
}

/* `rel` (a child of group `node`) is a symbolic link: refuses it when it leads
 * back to the group itself or to one of its ancestors, a cycle that would send
 * a walk of the tree (inspect) round forever. */
static int check_link_cycle(ab_store *s, const char *node, const char *rel)
{
	struct stat t;
	if (fstatat(s->rootfd, rel, &t, 0) != 0 || !S_ISDIR(t.st_mode))
		return 0; /* dangling, looping or not a directory: the probes report it */
	size_t len = strlen(node);
	char *prefix = malloc(len + 1);
	if (!prefix)
		return ab_error_set(AB_ENOMEM, "out of memory");
	for (size_t i = 0; i <= len; i++) {
		if (i != 0 && i != len && node[i] != '/')
			continue;
		memcpy(prefix, node, i);
		prefix[i] = '\0';
		struct stat a;
		if (fstatat(s->rootfd, i ? prefix : ".", &a, 0) == 0 && a.st_dev == t.st_dev && a.st_ino == t.st_ino) {
			int rc = ab_error_set(AB_EFORMAT, "%s/%s: symbolic link cycle (leads back to '%s')", s->root,
					      rel, i ? prefix : "/");
			free(prefix);
			return rc;
		}
	}
	free(prefix);
	return 0;
}

int ab_group_children(ab_store *s, const char *node_in, char ***names, size_t *count)
{
	if (!s || !names)
		return ab_error_set(AB_EINVAL, "ab_group_children: null argument");
	char *node;
	int rc = ab_node_normalize(node_in, &node);
	if (rc)
		return rc;
	ab_node_meta m;
	if ((rc = ab_store_node_meta(s, node, &m))) {
		free(node);
		return rc;
	}
	ab_node_type t = m.type;
	ab_node_meta_release(&m);
	if (t != AB_NODE_GROUP) {
		rc = ab_error_set(AB_ETYPE, "node '%s' is an array, not a group", node);
		free(node);
		return rc;
	}
	char **list = NULL;
	size_t n = 0, cap = 0;
	size_t plen = strlen(node);
	if (s->consolidated) {
		const char *key;
		json_t *v;
		json_object_foreach(s->consolidated, key, v) {
			const char *rest = key;
			if (plen) {
				if (strncmp(key, node, plen) != 0 || key[plen] != '/')
					continue;
				rest = key + plen + 1;
			}
			const char *slash = strchr(rest, '/');
			size_t len;
			if (s->zarr_format == 2) {
				/* "<child>/.zarray" or "<child>/.zgroup" */
				if (!slash || (strcmp(slash, "/.zarray") && strcmp(slash, "/.zgroup")))
					continue;
				len = (size_t)(slash - rest);
			} else {
				if (slash || !*rest)
					continue;
				len = strlen(rest);
			}
			if ((rc = add_name(&list, &n, &cap, rest, len)))
				goto fail;
		}
	} else {
		int fd = ab_store_open_file(s, node);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			rc = ab_error_set(AB_EIO, "%s/%s: cannot list: %s", s->root, node, strerror(errno));
			goto fail;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
				continue;
			char *rel = ab_path_join(node, e->d_name);
			if (!rel) {
				closedir(d);
				rc = ab_error_set(AB_ENOMEM, "out of memory");
				goto fail;
			}
			int is_node = 0;
			const char *probes3[] = { "zarr.json" };
			const char *probes2[] = { ".zarray", ".zgroup" };
			const char *probes0[] = { "zarr.json", ".zarray", ".zgroup" };
			const char **probes = s->zarr_format == 3 ? probes3 : s->zarr_format == 2 ? probes2 : probes0;
			int np = s->zarr_format == 3 ? 1 : s->zarr_format == 2 ? 2 : 3;
			struct stat ls;
			if (fstatat(s->rootfd, rel, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode))
				rc = check_link_cycle(s, node, rel);
			for (int k = 0; k < np && !is_node && !rc; k++) {
				char *p = ab_path_join(rel, probes[k]);
				if (p && faccessat(s->rootfd, p, F_OK, 0) == 0)
					is_node = 1;
				else if (p && errno != ENOENT && errno != ENOTDIR)
					/* a symlink loop or an unreadable directory is not
					 * "no node here": say so rather than hide the child */
					rc = ab_error_set(AB_EIO, "%s/%s: cannot read: %s", s->root, p, strerror(errno));
				free(p);
			}
			free(rel);
			if (rc) {
				closedir(d);
				goto fail;
			}
			if (is_node && (rc = add_name(&list, &n, &cap, e->d_name, strlen(e->d_name)))) {
				closedir(d);
				goto fail;
			}
		}
		closedir(d);
	}
	if (!list) {
		list = calloc(1, sizeof *list);
		if (!list) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
	}
	qsort(list, n, sizeof *list, name_cmp);
	*names = list;
	if (count)
		*count = n;
	free(node);
	return 0;
fail:
	if (list) {
		for (size_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
	}
	free(node);
	return rc;
}

void ab_strings_free_n(char **strings, size_t count)
{
	if (!strings)
		return;
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}
