/* files.c - the shard and chunk files of the sources, opened as reads need them
 * and kept under a budget derived from RLIMIT_NOFILE (least recently used
 * closed first), registered in the ring's file table. */
#include "loader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "last_error.h"

/* ------------------------------------------------------------ files */


void fd_close_all(ab_loader *ld)
{
	for (size_t i = 0; i < ld->nfds; i++)
		if (ld->fds[i].fd >= 0)
			close(ld->fds[i].fd);
	ld->nfds = 0;
	ld->fds_open = 0;
}

/* How many data files an epoch may hold open (cached shard files and the
 * chunk files of reads in flight): three quarters of the descriptors free
 * under RLIMIT_NOFILE when it starts, not counting the `ours` data files the
 * loader keeps open from the last epoch (the rest is left for metadata reads
 * and the caller). A store can have more files than that: the least
 * recently used shard files are closed as others are opened (shard_fd), and
 * a read that finds the budget spent on reads in flight waits (read_fd). */
size_t fd_budget(size_t ours)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30))
		return (size_t)1 << 30;
	size_t open_now = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				open_now++;
		closedir(d);
	} else {
		open_now = 16;
	}
	open_now = open_now > ours ? open_now - ours : 0;
	size_t lim = (size_t)rl.rlim_cur;
	size_t spare = lim > open_now ? lim - open_now : 0;
	return spare * 3 / 4 > 1 ? spare * 3 / 4 : 1;
}

/* Closes the least recently used shard file that no read in flight needs.
 * Its registered file slot is cleared first, so the ring holds no stale
 * file. Returns 0 when every open file is pinned. */
static int fd_evict(ab_loader *ld)
{
	size_t victim = SIZE_MAX;
	for (size_t i = 0; i < ld->nfds; i++) {
		const ld_fd_slot *f = &ld->fds[i];
		if (f->arr && f->pins == 0 && (victim == SIZE_MAX || f->last_use < ld->fds[victim].last_use))
			victim = i;
	}
	if (victim == SIZE_MAX)
		return 0;
	ld_fd_slot *f = &ld->fds[victim];
	if (f->fixed)
		ab_io_set_file(ld->io, f->fixed - 1, -1);
	close(f->fd);
	f->fd = -1;
	f->arr = NULL;
	ld->fds_open--;
	return 1;
}

/* A submitted read is done with its shard file (r->fd_slot): once no read
 * pins it, the file may be closed again. */
void fd_unpin(ab_loader *ld, ld_read *r)
{
	if (r->fd_slot >= 0 && (size_t)r->fd_slot < ld->nfds && ld->fds[r->fd_slot].pins)
		ld->fds[r->fd_slot].pins--;
	r->fd_slot = -1;
}

/* Opens a data file. O_DIRECT where asked and allowed; a filesystem that
 * refuses it (tmpfs: EINVAL) gets buffered reads, and the stats say so. */
static int open_data_file(ab_loader *ld, ab_store *st, const char *rel, int *fd)
{
	/* O_NONBLOCK so that a FIFO planted in a store cannot block the event
	 * loop in open(); it is cleared again below for the regular file. */
	int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
	int f = -1;
	if (ld->direct) {
		f = openat(st->rootfd, rel, flags | O_DIRECT);
		if (f < 0 && errno != EINVAL)
			goto fail;
		if (f < 0) {
			ld->direct = 0;
			ld->align = 1;
			pthread_mutex_lock(&ld->mu); /* ab_loader_get_stats reads it */
			snprintf(ld->note, sizeof ld->note,
				 "O_DIRECT refused by the filesystem of %s; using buffered reads", st->root);
			pthread_mutex_unlock(&ld->mu);
		}
	}
	if (f < 0 && (f = openat(st->rootfd, rel, flags)) < 0)
		goto fail;
	struct stat sb;
	if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(f);
		return ab_error_set(AB_EFORMAT, "%s/%s: not a regular file", st->root, rel);
	}
	/* io_uring treats O_NONBLOCK files as "never wait" and would answer
	 * EAGAIN instead of reading: make the descriptor blocking again. */
	int fl = fcntl(f, F_GETFL);
	if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(f);
		return ab_error_set(AB_EIO, "%s/%s: fcntl: %s", st->root, rel, strerror(e));
	}
	if (ld->direct && ld->align == 0) {
		uint32_t mem = 4096, off = 4096;
		if (ab_io_dio_alignment(f, &mem, &off) != 0)
			mem = off = 4096;
		ld->align = mem > off ? mem : off;
		if (ld->align < 512)
			ld->align = 512;
	}
	*fd = f;
	return 0;
fail:
	if (errno == ENOENT || errno == ENOTDIR) {
		*fd = -1;
		return 0;
	}
	return ab_error_set(AB_EIO, "%s/%s: cannot open: %s", st->root, rel, strerror(errno));
}

/* The cached descriptor of a shard file, opened on first use; *fixed gets
 * its registered file slot + 1 (0 when not registered) and *slot its place
 * in ld->fds, pinned (the caller's read holds it open until fd_unpin). At
 * most fd_budget files stay open: past it the least recently used unpinned
 * one is closed first (it is opened again when needed). Only the event-loop
 * thread calls this. */
static int shard_fd(ab_loader *ld, ab_array *arr, const ab_unit_loc *loc, int *fd, unsigned *fixed, long *slot)
{
	size_t free_slot = SIZE_MAX;
	for (size_t i = 0; i < ld->nfds; i++) {
		if (ld->fds[i].arr == arr && ld->fds[i].lin == loc->file_lin) {
			ld->fds[i].pins++;
			ld->fds[i].last_use = ++ld->fd_clock;
			*fd = ld->fds[i].fd;
			*fixed = ld->fds[i].fixed;
			*slot = (long)i;
			return 0;
		}
		if (!ld->fds[i].arr && free_slot == SIZE_MAX)
			free_slot = i;
	}
	if (ld->fds_open + ld->own_open >= ld->fd_budget && fd_evict(ld) && free_slot == SIZE_MAX) {
		for (size_t i = 0; i < ld->nfds && free_slot == SIZE_MAX; i++)
			if (!ld->fds[i].arr)
				free_slot = i;
	}
	int f;
	int rc = open_data_file(ld, arr->store, loc->rel, &f);
	if (rc)
		return rc;
	if (f < 0)
		return ab_error_set(AB_EIO, "%s/%s: shard file vanished", arr->store->root, loc->rel);
	size_t i = free_slot;
	if (i == SIZE_MAX) {
		if (ld->nfds == ld->cap_fds) {
			size_t nc = ld->cap_fds ? ld->cap_fds * 2 : 16;
			ld_fd_slot *n = realloc(ld->fds, nc * sizeof *n);
			if (!n) {
				close(f);
				return ab_error_set(AB_ENOMEM, "out of memory");
			}
			ld->fds = n;
			ld->cap_fds = nc;
		}
		i = ld->nfds++;
		ld->fds[i].fixed = 0;
	}
	/* Long-lived shard files go into the ring's file table while there is
	 * room: their reads then skip the per-read file lookup. A reused slot
	 * keeps its table entry, now naming the new file. */
	unsigned fx = ld->fds[i].fixed;
	if (!fx && i < ld->file_slots)
		fx = (unsigned)i + 1;
	if (fx && ab_io_set_file(ld->io, fx - 1, f) != 0)
		fx = 0;
	if (fx > ld->registered_files)
		ld->registered_files = fx;
	ld->fds[i] = (ld_fd_slot){ arr, loc->file_lin, f, fx, 1, ++ld->fd_clock };
	ld->fds_open++;
	*fd = f;
	*fixed = fx;
	*slot = (long)i;
	return 0;
}

/* The cached descriptor of unit u's shard file, pinned until
 * fd_unpin_slot(*slot): for reads that are not a window's (probe.c). */
int unit_fd(ab_loader *ld, const ld_unit *u, int *fd, unsigned *fixed, long *slot)
{
	ab_unit_loc loc;
	int rc = ab_array_locate_unit(u->arr, u->coord, &loc); /* cached: gives rel */
	if (rc == 0)
		rc = shard_fd(ld, u->arr, &loc, fd, fixed, slot);
	return rc;
}

void fd_unpin_slot(ab_loader *ld, long slot)
{
	if (slot >= 0 && (size_t)slot < ld->nfds && ld->fds[slot].pins)
		ld->fds[slot].pins--;
}

/* The descriptor of a read, just before its submission: a shard file from
 * the cache (shard_fd), an unsharded chunk file opened for this read alone
 * (closed at its completion). Returns 1 when the open-file budget is spent
 * on reads in flight: the read waits until some complete. */
int read_fd(ab_loader *ld, ld_read *r)
{
	const ld_unit *u = &r->win->units[r->unit_first];
	if (r->own_fd) {
		if (r->fd >= 0)
			return 0;
		if (ld->fds_open + ld->own_open >= ld->fd_budget && !fd_evict(ld))
			return 1;
		char key[512], rel[1024];
		ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
		snprintf(rel, sizeof rel, "%s%s%s", u->arr->node, *u->arr->node ? "/" : "", key);
		int rc = open_data_file(ld, u->arr->store, rel, &r->fd);
		if (rc)
			return rc;
		if (r->fd < 0)
			return ab_error_set(AB_EIO, "%s/%s: chunk file vanished", u->arr->store->root, rel);
		ld->own_open++;
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
		return 0;
	}
	if (!r->shard || r->fd_slot >= 0)
		return 0;
	int pinned = 1;
	for (size_t i = 0; i < ld->nfds; i++)
		if (ld->fds[i].arr == u->arr && ld->fds[i].lin == u->file_lin)
			pinned = 0;
	if (pinned && ld->fds_open + ld->own_open >= ld->fd_budget) {
		for (size_t i = 0; i < ld->nfds && pinned; i++)
			if (ld->fds[i].arr && ld->fds[i].pins == 0)
				pinned = 0;
		if (pinned)
			return 1;
	}
	ab_unit_loc loc;
	int rc = ab_array_locate_unit(u->arr, u->coord, &loc); /* cached: gives rel */
	if (rc == 0)
		rc = shard_fd(ld, u->arr, &loc, &r->fd, &r->req.fixed_file, &r->fd_slot);
	if (rc == 0) {
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
	}
	return rc;
}

