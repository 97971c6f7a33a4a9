/* plan.c - a window's row ranges become decode units and byte ranges of files,
 * coalesced and aligned for O_DIRECT. */
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
#include "value.h"

#define MAX_READ_BYTES ((uint64_t)16 << 20) /* coalesced reads stop growing here */

/* ------------------------------------------------------------ planning */

static int grow(void **p, size_t *cap, size_t need, size_t item)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 16;
	while (nc < need)
		nc *= 2;
	void *n = realloc(*p, nc * item);
	if (!n)
		return ab_error_set(AB_ENOMEM, "out of memory");
	*p = n;
	*cap = nc;
	return 0;
}

/* Grows a buffer to `need` bytes, keeping its contents; -1 when out of memory. */
int ensure(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	void *n = realloc(*p, need);
	if (!n)
		return -1;
	*p = n;
	*cap = need;
	return 0;
}

/* A batch's X buffer (values, indices, indptr) of at least `need` bytes,
 * from the caller's allocator when one is set (e.g. pinned memory). The
 * old contents need not survive: assembly writes the buffer whole. */
int ensure_x(ab_loader *ld, void **p, size_t *cap, size_t need)
{
	if (!ld->alloc.alloc)
		return ensure(p, cap, need);
	if (need <= *cap)
		return 0;
	void *n = ld->alloc.alloc(need, ld->alloc.ctx);
	if (!n)
		return -1;
	if (*p)
		ld->alloc.free(*p, *cap, ld->alloc.ctx);
	*p = n;
	*cap = need;
	return 0;
}

void free_x(ab_loader *ld, void *p, size_t cap)
{
	if (!p)
		return;
	if (ld->alloc.free)
		ld->alloc.free(p, cap, ld->alloc.ctx);
	else
		free(p);
}

/* Adds the decode units of rows [r0, r1) of `arr` (axis 0) that go to stream
 * rows starting at dst_row. Units of N-d arrays span all trailing units. */
static int plan_rows(ld_window *w, ab_array *arr, int stream, uint64_t r0, uint64_t r1, uint64_t dst_row)
{
	if (r0 >= r1)
		return 0;
	int nd = arr->m.ndim;
	uint64_t grid[AB_MAX_NDIM];
	ab_array_unit_grid(arr, grid);
	uint64_t u0 = arr->unit[0];
	uint64_t trailing_units = 1;
	for (int i = 1; i < nd; i++)
		trailing_units *= grid[i];
	for (uint64_t uc = r0 / u0; uc * u0 < r1; uc++) {
		uint64_t lo = uc * u0 > r0 ? uc * u0 : r0;
		uint64_t hi = (uc + 1) * u0 < r1 ? (uc + 1) * u0 : r1;
		for (uint64_t t = 0; t < trailing_units; t++) {
			int rc;
			if ((rc = grow((void **)&w->units, &w->cap_units, w->nunits + 1, sizeof *w->units)) ||
			    (rc = grow((void **)&w->copies, &w->cap_copies, w->ncopies + 1, sizeof *w->copies)))
				return rc;
			ld_unit *u = &w->units[w->nunits++];
			memset(u, 0, sizeof *u);
			u->arr = arr;
			u->stream = stream;
			u->coord[0] = uc;
			uint64_t rem = t;
			for (int i = nd - 1; i >= 1; i--) {
				u->coord[i] = rem % grid[i];
				rem /= grid[i];
			}
			u->lin = uc * trailing_units + t;
			u->copy_first = w->ncopies;
			u->ncopies = 1;
			w->copies[w->ncopies++] = (ld_copy){ lo - uc * u0, hi - lo, dst_row + (lo - r0) };
		}
	}
	return 0;
}

static int cmp_unit(const void *a, const void *b)
{
	const ld_unit *x = a, *y = b;
	if (x->arr != y->arr)
		return (uintptr_t)x->arr < (uintptr_t)y->arr ? -1 : 1;
	if (x->stream != y->stream)
		return x->stream - y->stream;
	if (x->lin != y->lin)
		return x->lin < y->lin ? -1 : 1;
	return x->copy_first < y->copy_first ? -1 : x->copy_first > y->copy_first;
}

static int cmp_unit_file(const void *a, const void *b)
{
	const ld_unit *x = a, *y = b;
	if (x->arr != y->arr)
		return (uintptr_t)x->arr < (uintptr_t)y->arr ? -1 : 1;
	if (x->present != y->present)
		return x->present - y->present;
	if (x->file_lin != y->file_lin)
		return x->file_lin < y->file_lin ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->stream - y->stream;
}

/* Merges units with the same coordinates (two chunks of a window touching one
 * unit): one decode, several copies. Copies are re-laid so that each unit's
 * copies are contiguous. */
static int merge_units(ld_window *w)
{
	if (w->nunits == 0)
		return 0;
	qsort(w->units, w->nunits, sizeof *w->units, cmp_unit);
	ld_copy *nc = malloc(sizeof *nc * w->ncopies);
	if (!nc)
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t k = 0, m = 0;
	for (size_t i = 0; i < w->nunits;) {
		size_t j = i;
		ld_unit u = w->units[i];
		u.copy_first = m;
		u.ncopies = 0;
		while (j < w->nunits && w->units[j].arr == u.arr && w->units[j].stream == u.stream &&
		       w->units[j].lin == u.lin) {
			for (size_t c = 0; c < w->units[j].ncopies; c++)
				nc[m++] = w->copies[w->units[j].copy_first + c];
			u.ncopies += w->units[j].ncopies;
			j++;
		}
		w->units[k++] = u;
		i = j;
	}
	free(w->copies);
	w->copies = nc;
	w->cap_copies = w->ncopies;
	w->nunits = k;
	return 0;
}

/* ---- block layouts: reading only the blosc blocks a unit's rows need */

/* At most this much memory for layouts (a few dozen bytes a unit: millions
 * of units); beyond it, units are read whole. */
#define LAYOUT_MAX_BYTES ((size_t)64 << 20)

static size_t layout_slot(const ab_loader *ld, const ab_array *arr, uint64_t lin)
{
	uint64_t h = ((uint64_t)(uintptr_t)arr * 0x9E3779B97F4A7C15ull) ^ (lin * 0xC2B2AE3D27D4EB4Full);
	h ^= h >> 29;
	return (size_t)h & (ld->lay_cap - 1);
}

/* Puts an entry in the first free slot of its probe sequence. */
static void layout_place(const ab_loader *ld, ld_layout_entry *tab, ld_layout_entry e)
{
	size_t k = layout_slot(ld, e.arr, e.lin);
	while (tab[k].used)
		k = (k + 1) & (ld->lay_cap - 1);
	tab[k] = e;
}

/* The entry of (arr, lin), or NULL; under lay_mu. */
static ld_layout_entry *layout_find_locked(ab_loader *ld, const ab_array *arr, uint64_t lin)
{
	if (!ld->lay_cap)
		return NULL;
	for (size_t i = layout_slot(ld, arr, lin);; i = (i + 1) & (ld->lay_cap - 1)) {
		ld_layout_entry *e = &ld->lay_tab[i];
		if (!e->used)
			return NULL;
		if (e->arr == arr && e->lin == lin)
			return e;
	}
}

/* Whether the loader reads units of `arr` in part: its inner chunks are a
 * single blosc stage over items in host order, in shards (unsharded chunk
 * files are read whole). */
int array_partial(const ab_loader *ld, const ab_array *arr)
{
	const ab_pipeline *p = arr->unit_pipe;
	return !ld->cfg.whole_chunks && arr->sharded && ab_pipeline_partial(p, &arr->m.dt) && p->nb2b == 1 &&
	       p->b2b[0].kind == AB_B2B_BLOSC;
}

int layout_known(ab_loader *ld, const ab_array *arr, uint64_t lin)
{
	pthread_mutex_lock(&ld->lay_mu);
	int known = layout_find_locked(ld, arr, lin) != NULL;
	pthread_mutex_unlock(&ld->lay_mu);
	return known;
}

/* Remembers a frame's layout (l, or NULL for "read whole"), which it takes,
 * while the table's memory allows. */
static void layout_add(ab_loader *ld, const ab_array *arr, uint64_t lin, ab_blosc_layout *l)
{
	size_t cost = sizeof(ld_layout_entry) * 2 + (l ? ab_blosc_layout_memory(l) : 0);
	pthread_mutex_lock(&ld->lay_mu);
	int added = 0;
	if (!layout_find_locked(ld, arr, lin) && ld->lay_bytes + cost <= LAYOUT_MAX_BYTES) {
		if ((ld->lay_n + 1) * 2 > ld->lay_cap) {
			size_t ncap = ld->lay_cap ? ld->lay_cap * 2 : 1024;
			ld_layout_entry *nt = calloc(ncap, sizeof *nt), *old = ld->lay_tab;
			size_t ocap = ld->lay_cap;
			if (nt) {
				ld->lay_tab = nt;
				ld->lay_cap = ncap;
				for (size_t i = 0; i < ocap; i++)
					if (old[i].used)
						layout_place(ld, nt, old[i]);
				free(old);
			}
		}
		if ((ld->lay_n + 1) * 2 <= ld->lay_cap) {
			layout_place(ld, ld->lay_tab, (ld_layout_entry){ arr, lin, l, 1 });
			ld->lay_n++;
			ld->lay_bytes += cost;
			added = 1;
		}
	}
	pthread_mutex_unlock(&ld->lay_mu);
	if (!added && l) {
		ab_blosc_layout_free(l);
		free(l);
	}
}

/* Remembers the layout of a unit's frame: read whole (len == frame_len,
 * worker side), or its first len bytes (probe.c). A frame that cannot be
 * read in part is remembered as such; a table that does not fit in what
 * was read, or a corrupt header, is not remembered (the frame is read
 * whole, and its decode says what is wrong). */
void layout_learn(ab_loader *ld, const ab_array *arr, uint64_t lin, const uint8_t *frame, size_t len,
		  size_t frame_len)
{
	if (layout_known(ld, arr, lin))
		return;
	ab_blosc_layout *l = calloc(1, sizeof *l);
	if (!l)
		return;
	int rc = ab_blosc_layout_read_head(frame, len, frame_len, l);
	if (rc < 0 || rc == AB_LAYOUT_SHORT) {
		free(l);
		return;
	}
	if (rc == AB_NO_PART) {
		free(l);
		l = NULL; /* remembered as "read whole" */
	}
	layout_add(ld, arr, lin, l);
}

/* Narrows a located unit to the blosc blocks its copies need, when its
 * frame's layout is known (event-loop side). */
static void plan_part(ab_loader *ld, const ld_window *w, ld_unit *u)
{
	u->part = 0;
	u->lay = NULL;
	if (!u->present || u->length == UINT64_MAX || u->ncopies == 0 || !array_partial(ld, u->arr))
		return;
	pthread_mutex_lock(&ld->lay_mu);
	ld_layout_entry *e = layout_find_locked(ld, u->arr, u->lin);
	const ab_blosc_layout *l = e ? e->lay : NULL;
	pthread_mutex_unlock(&ld->lay_mu);
	if (!l)
		return;
	uint64_t row_bytes = u->arr->m.dt.disk_size, lo = UINT64_MAX, hi = 0;
	for (int i = 1; i < u->arr->m.ndim; i++)
		row_bytes *= u->arr->unit[i];
	for (size_t c = 0; c < u->ncopies; c++) {
		const ld_copy *cp = &w->copies[u->copy_first + c];
		lo = cp->src_row < lo ? cp->src_row : lo;
		hi = cp->src_row + cp->nrows > hi ? cp->src_row + cp->nrows : hi;
	}
	ab_blosc_span sp;
	if (!ab_blosc_layout_span(l, u->length, u->arr->m.dt.disk_size, lo * row_bytes, hi * row_bytes, &sp))
		return;
	u->part = 1;
	u->b0 = sp.b0;
	u->b1 = sp.b1;
	u->hdr = sp.hdr;
	u->lay = l;
	u->offset += sp.offset;
	u->length = sp.length;
}

/* Turns located units into reads: one per unsharded chunk file; adjacent byte
 * ranges of one shard file coalesced into one read. Widened to the O_DIRECT
 * alignment; the buffers live in one arena per window. */
static int plan_reads(ab_loader *ld, ld_window *w)
{
	int rc;
	if (!ld->files_tried) {
		/* before the epoch's first read: nothing is in flight */
		ld->files_tried = 1;
		ld->file_slots = strcmp(ab_io_name(ld->io), "uring") == 0 && ab_io_register_files(ld->io, 1024) == 0
					 ? 1024 : 0; /* the pread pool has no file table */
	}
	for (size_t i = 0; i < w->nunits; i++) {
		ld_unit *u = &w->units[i];
		ab_unit_loc loc;
		if ((rc = ab_array_locate_unit(u->arr, u->coord, &loc)))
			return rc;
		u->present = loc.present;
		u->file_lin = loc.file_lin;
		u->offset = loc.offset;
		u->length = loc.length;
	}
	/* Layouts not yet known are read ahead while the ring is idle (probe.c);
	 * then each unit is narrowed to the blocks it needs. */
	if (ab_io_inflight(ld->io) == 0 && (rc = probe_layouts(ld, w)))
		return rc;
	for (size_t i = 0; i < w->nunits; i++)
		plan_part(ld, w, &w->units[i]);
	/* A window of in-memory sources has no units and no units array:
	 * qsort(NULL, 0, ...) is undefined behaviour (UBSan stops on it). */
	if (w->nunits)
		qsort(w->units, w->nunits, sizeof *w->units, cmp_unit_file);
	uint64_t A = ld->direct ? (ld->align ? ld->align : 4096) : 1;
	size_t arena = 0;
	w->nreads = 0;
	w->reads_done = 0;
	w->reg_due = 0;
	for (size_t i = 0; i < w->nunits;) {
		ld_unit *u = &w->units[i];
		if (!u->present) {
			i++;
			continue;
		}
		if ((rc = grow((void **)&w->reads, &w->cap_reads, w->nreads + 1, sizeof *w->reads)))
			return rc;
		ld_read *r = &w->reads[w->nreads];
		memset(r, 0, sizeof *r);
		r->fd_slot = -1;
		r->win = w;
		r->unit_first = i;
		char rel[1024];
		size_t j = i + 1;
		if (u->length == UINT64_MAX) {
			/* unsharded: the chunk file is the unit */
			char key[512];
			ab_chunk_key(&u->arr->m, u->coord, key, sizeof key);
			snprintf(rel, sizeof rel, "%s%s%s", u->arr->node, *u->arr->node ? "/" : "", key);
			/* Only its size now: the file is opened when the read is
			 * submitted (read_fd), like shard files, so that planned
			 * windows hold no descriptors. */
			struct stat sb;
			if (fstatat(u->arr->store->rootfd, rel, &sb, 0) != 0) {
				if (errno == ENOENT || errno == ENOTDIR) {
					u->present = 0; /* absent chunk: fill value */
					i++;
					continue;
				}
				return ab_error_set(AB_EIO, "%s/%s: stat failed: %s", u->arr->store->root, rel,
						    strerror(errno));
			}
			if (!S_ISREG(sb.st_mode))
				return ab_error_set(AB_EFORMAT, "%s/%s: not a regular file", u->arr->store->root, rel);
			if ((uint64_t)sb.st_size > ((uint64_t)1 << 31)) {
				return ab_error_set(AB_EUNSUPPORTED, "%s/%s: chunk file larger than 2 GiB",
						    u->arr->store->root, rel);
			}
			/* A (sparse) file longer than its chunk can encode to is
			 * refused before a buffer of its size is allocated. */
			uint64_t max = ab_pipeline_max_encoded(&u->arr->m.pipe, u->arr->m.ndim, u->arr->m.chunk,
							       &u->arr->m.dt);
			if ((uint64_t)sb.st_size > max) {
				return ab_error_set(AB_ECORRUPT, "%s/%s (array '%s'): %llu bytes, more than a chunk "
						    "of this array encodes to (%llu bytes)", u->arr->store->root, rel,
						    u->arr->node, (unsigned long long)sb.st_size, (unsigned long long)max);
			}
			u->offset = 0;
			u->length = (uint64_t)sb.st_size;
			r->fd = -1;
			r->own_fd = 1;
		} else {
			/* The shard file's descriptor is taken when the read is
			 * submitted (read_fd), so that only reads in flight hold
			 * files open: planned windows may span more shard files
			 * than the open-file limit allows. */
			r->shard = 1;
			r->fd = -1;
			uint64_t end = u->offset + u->length;
			while (!u->part && j < w->nunits && !w->units[j].part && w->units[j].arr == u->arr &&
			       w->units[j].present &&
			       w->units[j].file_lin == u->file_lin && w->units[j].length != UINT64_MAX &&
			       w->units[j].offset <= end && w->units[j].offset + w->units[j].length - u->offset <= MAX_READ_BYTES) {
				uint64_t e = w->units[j].offset + w->units[j].length;
				if (e > end)
					end = e;
				j++;
			}
			(void)end;
		}
		uint64_t start = u->offset, end = u->offset + u->length;
		for (size_t k = i; k < j; k++) {
			if (w->units[k].offset + w->units[k].length > end)
				end = w->units[k].offset + w->units[k].length;
		}
		uint64_t a0 = start / A * A, a1 = (end + A - 1) / A * A;
		if (a1 - a0 > UINT32_MAX)
			return ab_error_set(AB_EUNSUPPORTED, "a read of %llu bytes is too large",
					    (unsigned long long)(a1 - a0));
		r->req.fd = r->fd;
		r->req.direct = ld->direct;
		r->req.offset = a0;
		r->req.len = (uint32_t)(a1 - a0);
		r->req.buf_index = -1;
		r->need = end - a0;
		r->nunits = j - i;
		for (size_t k = i; k < j; k++)
			w->units[k].read_off = w->units[k].offset - a0;
		/* A unit read in part gets the header of its smaller frame
		 * written just before its bytes: in the read's own lead-in when
		 * the alignment gave room enough, else in headroom kept before
		 * the read's buffer (whole pages, so O_DIRECT alignment holds). */
		size_t head = 0;
		if (u->part && u->offset - a0 < u->hdr)
			head = (size_t)(u->hdr - (u->offset - a0) + 4095) / 4096 * 4096;
		/* arena offset kept in req.buf until the arena exists */
		r->req.buf = (void *)(uintptr_t)(arena + head);
		arena += head + (size_t)((a1 - a0 + 4095) / 4096 * 4096);
		w->nreads++;
		i = j;
	}
	if (arena) {
		int index;
		uint8_t *base = window_arena(ld, w, arena, &index);
		if (!base)
			return AB_ENOMEM;
		for (size_t k = 0; k < w->nreads; k++) {
			w->reads[k].req.buf = base + (uintptr_t)w->reads[k].req.buf;
			w->reads[k].req.buf_index = index;
		}
	}
	/* Back pointers only now: growing the array above moves the reads. */
	for (size_t k = 0; k < w->nreads; k++)
		w->reads[k].req.user = &w->reads[k];
	return 0;
}

static ld_window *window_get(ab_loader *ld)
{
	pthread_mutex_lock(&ld->mu);
	ld_window *w = ld->free_windows;
	if (w)
		ld->free_windows = w->next;
	pthread_mutex_unlock(&ld->mu);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (w)
			w->slot = -1;
	}
	if (w) {
		w->ld = ld;
		w->next = NULL;
	}
	return w;
}

void window_put(ab_loader *ld, ld_window *w)
{
	for (size_t i = 0; i < w->nreads; i++)
		if (w->reads[i].own_fd && w->reads[i].fd >= 0) {
			close(w->reads[i].fd);
			w->reads[i].fd = -1;
		}
	ab_window_free(&w->w);
	memset(&w->w, 0, sizeof w->w);
	/* Batches taken and not handed on go back; the window's arrays keep
	 * their memory for the next window. */
	window_drop_batches(ld, w);
	w->nbatches = 0;
	w->nunits = w->ncopies = w->nreads = w->next_submit = 0;
	w->prefault = 0;
	pthread_mutex_lock(&ld->mu);
	w->next = ld->free_windows;
	ld->free_windows = w;
	pthread_mutex_unlock(&ld->mu);
}

/* The source holding global row r (binary search over row0). */
static size_t source_of(const ab_loader *ld, uint64_t r)
{
	size_t lo = 0, hi = ld->nsrc;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (ld->src[mid].row0 <= r)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Plans window `index` of epoch `ep`: batches, units, reads. */
int plan_window(ab_loader *ld, const ld_epoch *ep, size_t index, ld_window **out)
{
	ld_window *w = window_get(ld);
	if (!w)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = ab_sampler_window(ep->sampler, index, &w->w);
	if (rc) {
		window_put(ld, w);
		return rc;
	}
	w->epoch = ep->epoch;
	w->gen = ep->gen;
	uint64_t n = w->w.nrows;
	/* The sampler's row ranges must lie within the rows the sources hold
	 * and add up to the window's rows: past them the pieces below would
	 * find no source (and never advance), and w->rows would overflow. */
	const ld_source *last = &ld->src[ld->nsrc - 1];
	uint64_t held = last->row0 + last->nrows, total = 0;
	for (size_t c = 0; c < w->w.nchunks; c++) {
		const ab_chunk_range *cr = &w->w.chunks[c];
		if (cr->start > cr->stop || cr->stop > held || cr->stop > ld->nrows) {
			rc = ab_error_set(AB_ERANGE, "the sampler's rows [%llu, %llu) pass the loader's %llu rows (n_obs)",
					  (unsigned long long)cr->start, (unsigned long long)cr->stop,
					  (unsigned long long)(held < ld->nrows ? held : ld->nrows));
			goto fail;
		}
		total += cr->stop - cr->start;
	}
	if (total != n) {
		rc = ab_error_set(AB_ERANGE, "the sampler's row ranges hold %llu rows, its window %llu",
				  (unsigned long long)total, (unsigned long long)n);
		goto fail;
	}
	if (ensure((void **)&w->rows, &w->rows_cap, sizeof(uint64_t) * (n ? n : 1))) {
		rc = ab_error_set(AB_ENOMEM, "out of memory");
		goto fail;
	}
	uint64_t k = 0;
	for (size_t c = 0; c < w->w.nchunks; c++)
		for (uint64_t r = w->w.chunks[c].start; r < w->w.chunks[c].stop; r++)
			w->rows[k++] = r;
	if (ld->sparse) {
		/* The window's indptr comes from the in-memory indptr: no I/O. */
		if (ensure((void **)&w->indptr, &w->indptr_cap, sizeof(int64_t) * (n + 1))) {
			rc = ab_error_set(AB_ENOMEM, "out of memory");
			goto fail;
		}
		w->indptr[0] = 0;
		for (uint64_t i = 0; i < n; i++) {
			const ld_source *s = &ld->src[source_of(ld, w->rows[i])];
			uint64_t lr = w->rows[i] - s->row0;
			const int64_t *ip = s->kind == SRC_CSR ? s->csr->indptr : s->mem_indptr;
			w->indptr[i + 1] = w->indptr[i] + (ip[lr + 1] - ip[lr]);
		}
		w->nnz = (uint64_t)w->indptr[n];
	}
	/* The batches, sized, and each row's place in them: decoding writes
	 * there (scatter.c). */
	if ((rc = plan_batches(ld, w)))
		goto fail;
	/* Chunks -> per-source pieces -> units. */
	uint64_t dst = 0;
	for (size_t c = 0; c < w->w.nchunks; c++) {
		uint64_t r = w->w.chunks[c].start, stop = w->w.chunks[c].stop;
		while (r < stop) {
			const ld_source *s = &ld->src[source_of(ld, r)];
			uint64_t a = r - s->row0, b = (stop < s->row0 + s->nrows ? stop : s->row0 + s->nrows) - s->row0;
			uint64_t elem = ld->sparse ? (uint64_t)w->indptr[dst] : 0;
			switch (s->kind) {
			case SRC_ARRAY:
				rc = plan_rows(w, s->x, STREAM_VALUES, a, b, dst);
				break;
			case SRC_CSR: {
				uint64_t e0 = (uint64_t)s->csr->indptr[a], e1 = (uint64_t)s->csr->indptr[b];
				rc = plan_rows(w, s->csr->data, STREAM_VALUES, e0, e1, elem);
				if (rc == 0)
					rc = plan_rows(w, s->csr->indices, STREAM_INDICES, e0, e1, elem);
				break;
			}
			default:
				scatter_memory_rows(ld, w, s, a, b, dst);
				rc = 0;
			}
			if (rc)
				goto fail;
			dst += b - a;
			r = s->row0 + b;
		}
	}
	if ((rc = merge_units(w)) || (rc = plan_reads(ld, w)))
		goto fail;
	/* One decode task per read, one more for the units that need no read,
	 * and the prefault task if one is due (plan_batches). */
	atomic_store(&w->tasks_left, w->nreads + 1 + (w->prefault ? 1 : 0));
	atomic_store(&w->refs, 1);
	*out = w;
	return 0;
fail:
	window_put(ld, w);
	return rc;
}

