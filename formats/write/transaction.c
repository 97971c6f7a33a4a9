/*
 * transaction.c - the store writer's files (see writer_impl.h): a store is
 * written into a temporary directory beside its final path,
 * `.NAME.annbatch-tmp-PID`, and appears in one rename (one RENAME_EXCHANGE
 * when an old store is replaced), so no reader ever sees half of one and a
 * killed run leaves the final path as it was. Also here: writing whole files
 * and adopting the subtree of another store by hard links.
 *
 * Why the same directory: the final rename must stay on one file system to
 * be atomic. Why the PID in the name: the next writer beside it can tell a
 * dead run's leftovers (its process is gone) from a live one's.
 */
#include "writer_impl.h"

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

/* ------------------------------------------------------------------------- */
/* writing files                                                             */
/* ------------------------------------------------------------------------- */

int wr_io_error(const char *path, const char *what, int err)
{
	if (err == ENOSPC)
		return ab_error_set(AB_EIO, "%s: %s: no space left on device", path, what);
	if (err == EDQUOT)
		return ab_error_set(AB_EIO, "%s: %s: disk quota exceeded", path, what);
	return ab_error_set(AB_EIO, "%s: %s: %s", path, what, strerror(err));
}

int wr_write_all(int fd, const void *p, size_t n, const char *path)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = write(fd, b, n > (size_t)1 << 30 ? (size_t)1 << 30 : n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return wr_io_error(path, "write", errno);
		}
		if (r == 0)
			return wr_io_error(path, "write", ENOSPC);
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int wr_write_file(const char *path, const void *p, size_t n)
{
	/* Always a new inode: the file may be a hard link into an adopted
	 * store, which must never change under its readers. */
	if (unlink(path) != 0 && errno != ENOENT)
		return wr_io_error(path, "unlink", errno);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return wr_io_error(path, "create", errno);
	int rc = wr_write_all(fd, p, n, path);
	if (close(fd) != 0 && !rc)
		rc = wr_io_error(path, "close", errno);
	return rc;
}

int wr_make_dirs(const char *path)
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
				int rc = wr_io_error(p, "mkdir", e);
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
		return errno == ENOENT ? 0 : wr_io_error(path, "stat", errno);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : wr_io_error(path, "unlink", errno);
	if (nftw(path, unlink_cb, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return wr_io_error(path, "remove", errno);
	return 0;
}

/* ------------------------------------------------------------------------- */
/* the temporary directory and the final rename                              */
/* ------------------------------------------------------------------------- */

#define TMP_TAG ".annbatch-tmp-"

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

int wr_tmp_dir_create(const char *path, int overwrite, char **final_path, char **tmp_path)
{
	struct stat st;
	if (stat(path, &st) == 0 && !overwrite)
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

	char name[NAME_MAX + 64];
	snprintf(name, sizeof name, ".%s" TMP_TAG "%ld", base, (long)getpid());
	char *tmp = ab_path_join(parent, name);
	free(parent);
	if (!tmp) {
		free(clean);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	/* A leftover of our own pid (a previous writer in this process that
	 * crashed half-way) is stale too. */
	ab_remove_tree(tmp);
	if (mkdir(tmp, 0755) != 0) {
		int rc = wr_io_error(tmp, "mkdir", errno);
		free(tmp);
		free(clean);
		return rc;
	}
	*final_path = clean;
	*tmp_path = tmp;
	return 0;
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

int wr_publish(const char *tmp_path, const char *final_path, int overwrite)
{
	/* Everything reaches the disk before the rename makes it visible, so a
	 * crash right after the rename cannot expose empty files. */
	int rc = 0;
	int fd = open(tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0)
		rc = wr_io_error(tmp_path, "sync", errno);
	if (fd >= 0)
		close(fd);
	if (rc)
		return rc;
	struct stat st;
	if (lstat(final_path, &st) == 0) {
		if (!overwrite) {
			rc = ab_error_set(AB_EINVAL, "%s: appeared while writing; not replaced", final_path);
		} else if (rename_exchange(tmp_path, final_path) == 0) {
			/* the old store now sits at the temporary name */
			ab_remove_tree(tmp_path);
		} else if (!S_ISDIR(st.st_mode) && rename(tmp_path, final_path) == 0) {
			;
		} else {
			rc = wr_io_error(final_path, "replace", errno);
		}
	} else if (rename(tmp_path, final_path) != 0) {
		rc = wr_io_error(final_path, "rename", errno);
	}
	return rc;
}

/* ------------------------------------------------------------------------- */
/* adopting a subtree of an existing store                                   */
/* ------------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return wr_io_error(from, "open", errno);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return wr_io_error(to, "create", errno);
	}
	static _Thread_local uint8_t buf[1 << 16];
	int rc = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = wr_io_error(from, "read", errno);
			break;
		}
		if (r == 0)
			break;
		if ((rc = wr_write_all(out, buf, (size_t)r, to)))
			break;
	}
	close(in);
	if (close(out) != 0 && !rc)
		rc = wr_io_error(to, "close", errno);
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
	if ((rc = wr_make_dirs(dst)))
		goto out;
	d = opendir(src);
	if (!d) {
		rc = wr_io_error(src, "open", errno);
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
			rc = wr_io_error(csrc, "stat", errno);
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
		rc = wr_ensure_parents(w, n);
	if (!rc)
		rc = adopt_dir(w, src_path, n);
	free(zj);
	free(marker);
	free(n);
	return rc;
}
