/* array.c - opening zarr arrays and reading row ranges out of their chunks. */
#include "array.h"
#include "last_error.h"
#include "value.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAX 1024

int ab_array_open_norm(ab_store *store, const char *node, ab_array **out)
{
	ab_node_meta nm;
	int rc = ab_store_node_meta(store, node, &nm);
	if (rc)
		return rc;
	if (nm.type != AB_NODE_ARRAY) {
		ab_node_meta_release(&nm);
		return ab_error_set(AB_ETYPE, "node '%s' is a group, not an array", node);
	}
	ab_array *a = calloc(1, sizeof *a);
	if (!a || !(a->node = strdup(node))) {
		free(a);
		ab_node_meta_release(&nm);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	a->store = store;
	a->fd = -1;
	char what[KEY_MAX];
	snprintf(what, sizeof what, "array '%s' in %s", *node ? node : "/", store->root);
	rc = ab_array_meta_parse(nm.meta, nm.zarr_format, what, &a->m);
	ab_node_meta_release(&nm);
	if (rc) {
		free(a->node);
		free(a);
		return rc;
	}
	const ab_pipeline *p = &a->m.pipe;
	if (p->a2b == AB_A2B_SHARD && !p->has_transpose && p->nb2b == 0) {
		a->sharded = 1;
		memcpy(a->unit, p->shard->inner_shape, sizeof a->unit);
		a->unit_pipe = &p->shard->inner;
	} else {
		memcpy(a->unit, a->m.chunk, sizeof a->unit);
		a->unit_pipe = p;
	}
	ab_pipeline_describe(p, a->codecs_desc, sizeof a->codecs_desc);
	*out = a;
	return 0;
}

int ab_array_open_child(ab_store *store, const char *group, const char *name, ab_array **out)
{
	char *p = ab_path_join(group, name);
	if (!p)
		return ab_error_set(AB_ENOMEM, "out of memory");
	int rc = ab_array_open_norm(store, p, out);
	free(p);
	return rc;
}

int ab_array_read_int64(ab_array *arr, uint64_t a, uint64_t b, int64_t *dst, ab_buf *tmp)
{
	ab_dtype dt = arr->m.dt.dt;
	if (!ab_dtype_is_integer(dt))
		return ab_error_set(AB_EFORMAT, "array '%s' must hold integers, not %s", arr->node, arr->m.dt.name);
	size_t isz = ab_dtype_size(dt), n = (size_t)(b - a);
	if (dt == AB_DT_INT64)
		return ab_array_read_rows(arr, a, b, dst, n * 8);
	int rc = ab_buf_reserve(tmp, n * isz + 1);
	if (rc || (rc = ab_array_read_rows(arr, a, b, tmp->data, n * isz)))
		return rc;
	if (dt == AB_DT_INT32) {
		/* the usual indices: widened in one tight loop, not item by item
		 * through the dtype switch */
		const int32_t *s = (const int32_t *)(const void *)tmp->data;
		for (size_t i = 0; i < n; i++)
			dst[i] = s[i];
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		dst[i] = ab_value_as_int64(dt, tmp->data, i);
		if (dt == AB_DT_UINT64 && dst[i] < 0)
			return ab_error_set(AB_ECORRUPT, "array '%s': value at %llu exceeds int64", arr->node,
					    (unsigned long long)(a + i));
	}
	return 0;
}

int ab_array_open(ab_store *store, const char *node, ab_array **out)
{
	if (!store || !out)
		return ab_error_set(AB_EINVAL, "ab_array_open: null argument");
	char *n;
	int rc = ab_node_normalize(node, &n);
	if (rc)
		return rc;
	rc = ab_array_open_norm(store, n, out);
	free(n);
	return rc;
}

void ab_array_close(ab_array *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nslots; i++)
		free(a->slots[i].entries);
	free(a->slots);
	if (a->fd >= 0)
		close(a->fd);
	ab_buf_free(&a->io);
	ab_buf_free(&a->unitbuf);
	ab_scratch_free(&a->scratch);
	ab_array_meta_free(&a->m);
	free(a->node);
	free(a);
}

int ab_array_get_info(const ab_array *a, ab_array_info *info)
{
	if (!a || !info)
		return ab_error_set(AB_EINVAL, "ab_array_get_info: null argument");
	memset(info, 0, sizeof *info);
	info->zarr_format = a->m.zarr_format ? a->m.zarr_format : a->store->zarr_format;
	info->ndim = a->m.ndim;
	for (int i = 0; i < a->m.ndim; i++) {
		info->shape[i] = a->m.shape[i];
		info->chunk_shape[i] = a->unit[i];
		info->shard_shape[i] = a->m.chunk[i];
	}
	info->sharded = a->m.pipe.a2b == AB_A2B_SHARD;
	info->dtype = a->m.dt.dt;
	info->itemsize = ab_dtype_size(a->m.dt.dt);
	info->fixed_string_width = a->m.dt.str_width;
	info->codecs = a->codecs_desc;
	info->dtype_on_disk = a->m.dt.name;
	return 0;
}

uint64_t ab_array_row_items(const ab_array *a)
{
	if (!a)
		return 0;
	uint64_t n = 1;
	for (int i = 1; i < a->m.ndim; i++)
		n *= a->m.shape[i];
	return n;
}

uint64_t ab_array_nrows(const ab_array *a)
{
	if (!a)
		return 0;
	return a->m.ndim ? a->m.shape[0] : 1;
}

/* ------------------------------------------------------------ file access */

static int unit_key(const ab_array *a, const uint64_t *coord, char *buf, size_t size)
{
	char key[KEY_MAX];
	ab_chunk_key(&a->m, coord, key, sizeof key);
	int n = *a->node ? snprintf(buf, size, "%s/%s", a->node, key) : snprintf(buf, size, "%s", key);
	if (n < 0 || (size_t)n >= size)
		return ab_error_set(AB_EINVAL, "array '%s': chunk path too long", a->node);
	return 0;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t n = 0;
	while (n < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + n, len - n, (off_t)(off + n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

static ab_shard_slot *slot_find(ab_array *a, uint64_t key)
{
	if (!a->nslots)
		return NULL;
	size_t mask = a->nslots - 1;
	for (size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL) & mask;; i = (i + 1) & mask) {
		if (a->slots[i].key == key)
			return &a->slots[i];
		if (a->slots[i].key == 0)
			return NULL;
	}
}

static ab_shard_slot *slot_insert(ab_array *a, uint64_t key)
{
	if ((a->nused + 1) * 2 > a->nslots) {
		size_t ncap = a->nslots ? a->nslots * 2 : 16;
		ab_shard_slot *ns = calloc(ncap, sizeof *ns);
		if (!ns)
			return NULL;
		for (size_t i = 0; i < a->nslots; i++) {
			if (!a->slots[i].key)
				continue;
			size_t j = (size_t)(a->slots[i].key * 0x9E3779B97F4A7C15ULL) & (ncap - 1);
			while (ns[j].key)
				j = (j + 1) & (ncap - 1);
			ns[j] = a->slots[i];
		}
		free(a->slots);
		a->slots = ns;
		a->nslots = ncap;
	}
	size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL) & (a->nslots - 1);
	while (a->slots[j].key)
		j = (j + 1) & (a->nslots - 1);
	a->slots[j].key = key;
	a->nused++;
	return &a->slots[j];
}

/* Opens (or reuses) the file of grid cell `coord`. Returns 0 with *fd = -1 when
 * the file does not exist. */
static int open_cell(ab_array *a, const uint64_t *coord, uint64_t lin, const char *rel, int *fd)
{
	if (a->fd >= 0 && a->fd_key == lin + 1) {
		*fd = a->fd;
		return 0;
	}
	if (a->fd >= 0) {
		close(a->fd);
		a->fd = -1;
	}
	int f = ab_store_open_file(a->store, rel);
	if (f < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*fd = -1;
			return 0;
		}
		return ab_error_set(AB_EIO, "%s/%s: cannot open: %s", a->store->root, rel, strerror(errno));
	}
	a->fd = f;
	a->fd_key = lin + 1;
	*fd = f;
	return 0;
}

static uint64_t grid_linear(const ab_array *a, const uint64_t *coord)
{
	uint64_t lin = 0;
	for (int i = 0; i < a->m.ndim; i++)
		lin = lin * ab_ceil_div(a->m.shape[i] ? a->m.shape[i] : 1, a->m.chunk[i]) + coord[i];
	return lin;
}

/* The cached index of the shard at grid coordinate `coord`. */
static int get_shard(ab_array *a, const uint64_t *coord, ab_shard_slot **out)
{
	uint64_t lin = grid_linear(a, coord);
	ab_shard_slot *s = slot_find(a, lin + 1);
	if (s) {
		*out = s;
		return 0;
	}
	const ab_shard_cfg *cfg = a->m.pipe.shard;
	char rel[KEY_MAX];
	int fd, rc;
	if ((rc = unit_key(a, coord, rel, sizeof rel)))
		return rc;
	if ((rc = open_cell(a, coord, lin, rel, &fd)))
		return rc;
	uint64_t *entries = NULL;
	uint64_t size = 0;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) != 0)
			return ab_error_set(AB_EIO, "%s/%s: stat failed: %s", a->store->root, rel, strerror(errno));
		size = (uint64_t)st.st_size;
		if (size < cfg->index_bytes)
			return ab_error_set(AB_ECORRUPT, "%s/%s: shard file of %llu bytes is shorter than its index "
					    "(%llu bytes)", a->store->root, rel, (unsigned long long)size,
					    (unsigned long long)cfg->index_bytes);
		if ((rc = ab_buf_reserve(&a->io, (size_t)cfg->index_bytes)))
			return rc;
		uint64_t off = cfg->index_at_start ? 0 : size - cfg->index_bytes;
		size_t got;
		int e = pread_full(fd, a->io.data, (size_t)cfg->index_bytes, off, &got);
		if (e)
			return ab_error_set(AB_EIO, "%s/%s: reading the shard index: %s", a->store->root, rel,
					    strerror(-e));
		if (got != cfg->index_bytes)
			return ab_error_set(AB_ECORRUPT, "%s/%s: shard index truncated", a->store->root, rel);
		entries = malloc(sizeof(uint64_t) * 2 * cfg->n_inner);
		if (!entries)
			return ab_error_set(AB_ENOMEM, "out of memory");
		rc = ab_shard_index_decode(cfg, a->io.data, (size_t)cfg->index_bytes, size, entries);
		if (rc) {
			free(entries);
			return ab_error_prefix(rc, "%s/%s (array '%s'): ", a->store->root, rel, a->node);
		}
	}
	s = slot_insert(a, lin + 1);
	if (!s) {
		free(entries);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	s->present = fd >= 0;
	s->size = size;
	s->entries = entries;
	*out = s;
	return 0;
}

/* Fetches the encoded bytes of decode unit `ucoord` into a->io. *present = 0
 * when the unit is absent (reads as the fill value). `where` receives the file
 * and position for messages. */
static int fetch_unit(ab_array *a, const uint64_t *ucoord, int *present, char *where, size_t wsize)
{
	*present = 0;
	int rc;
	if (!a->sharded) {
		char rel[KEY_MAX];
		if ((rc = unit_key(a, ucoord, rel, sizeof rel)))
			return rc;
		char key[KEY_MAX];
		ab_chunk_key(&a->m, ucoord, key, sizeof key);
		snprintf(where, wsize, "chunk %s (%s/%s)", key, a->store->root, rel);
		int found;
		uint64_t max = ab_pipeline_max_encoded(&a->m.pipe, a->m.ndim, a->m.chunk, &a->m.dt);
		if ((rc = ab_store_read_file(a->store, rel, max, "a chunk of this array encodes to", &a->io,
					     &found)))
			return ab_error_prefix(rc, "array '%s': ", a->node);
		*present = found;
		return 0;
	}
	const ab_shard_cfg *cfg = a->m.pipe.shard;
	uint64_t scoord[AB_MAX_NDIM], k = 0;
	for (int i = 0; i < a->m.ndim; i++) {
		scoord[i] = ucoord[i] / cfg->per_dim[i];
		k = k * cfg->per_dim[i] + ucoord[i] % cfg->per_dim[i];
	}
	char rel[KEY_MAX];
	if ((rc = unit_key(a, scoord, rel, sizeof rel)))
		return rc;
	{
		char key[KEY_MAX];
		ab_chunk_key(&a->m, scoord, key, sizeof key);
		snprintf(where, wsize, "inner chunk %llu of shard %s (%s/%s)", (unsigned long long)k, key,
			 a->store->root, rel);
	}
	ab_shard_slot *s;
	if ((rc = get_shard(a, scoord, &s)))
		return rc;
	if (!s->present)
		return 0;
	uint64_t off = s->entries[2 * k], nb = s->entries[2 * k + 1];
	if (off == AB_SHARD_EMPTY && nb == AB_SHARD_EMPTY)
		return 0;
	int fd;
	if ((rc = open_cell(a, scoord, grid_linear(a, scoord), rel, &fd)))
		return rc;
	if (fd < 0)
		return ab_error_set(AB_EIO, "%s: shard file vanished", where);
	if ((rc = ab_buf_reserve(&a->io, (size_t)nb ? (size_t)nb : 1)))
		return rc;
	size_t got;
	int e = pread_full(fd, a->io.data, (size_t)nb, off, &got);
	if (e)
		return ab_error_set(AB_EIO, "%s: read failed: %s", where, strerror(-e));
	if (got != nb)
		return ab_error_set(AB_ECORRUPT, "%s: truncated (got %zu of %llu bytes)", where, got,
				    (unsigned long long)nb);
	a->io.len = got;
	*present = 1;
	return 0;
}

int ab_array_locate_unit(ab_array *a, const uint64_t *ucoord, ab_unit_loc *loc)
{
	int rc;
	memset(loc, 0, sizeof *loc);
	if (!a->sharded) {
		if ((rc = unit_key(a, ucoord, loc->rel, sizeof loc->rel)))
			return rc;
		loc->present = 1;
		loc->file_lin = grid_linear(a, ucoord);
		loc->offset = 0;
		loc->length = UINT64_MAX;
		return 0;
	}
	const ab_shard_cfg *cfg = a->m.pipe.shard;
	uint64_t scoord[AB_MAX_NDIM], k = 0;
	for (int i = 0; i < a->m.ndim; i++) {
		scoord[i] = ucoord[i] / cfg->per_dim[i];
		k = k * cfg->per_dim[i] + ucoord[i] % cfg->per_dim[i];
	}
	if ((rc = unit_key(a, scoord, loc->rel, sizeof loc->rel)))
		return rc;
	loc->file_lin = grid_linear(a, scoord);
	ab_shard_slot *s;
	if ((rc = get_shard(a, scoord, &s)))
		return rc;
	if (!s->present)
		return 0;
	uint64_t off = s->entries[2 * k], nb = s->entries[2 * k + 1];
	if (off == AB_SHARD_EMPTY && nb == AB_SHARD_EMPTY)
		return 0;
	loc->present = 1;
	loc->offset = off;
	loc->length = nb;
	return 0;
}

void ab_array_unit_grid(const ab_array *a, uint64_t *grid)
{
	for (int i = 0; i < a->m.ndim; i++)
		grid[i] = ab_ceil_div(a->m.shape[i], a->unit[i]);
}

/* ------------------------------------------------------------ row reads */

typedef enum { OUT_NUMERIC, OUT_STRINGS } out_mode;

/* Converts a decoded fixed-width string unit into malloc'd UTF-8 strings.
 * Trailing NULs are padding (numpy drops them); a NUL before other
 * characters is refused, as C strings would cut the value there. */
static int fixed_to_strings(const ab_dtype_desc *dt, const uint8_t *raw, uint64_t n, char **out)
{
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *item = raw + i * dt->disk_size;
		size_t w = dt->str_width;
		char *s;
		int nul = 0;
		if (dt->str == AB_STR_BYTES) {
			while (w && item[w - 1] == 0)
				w--;
			nul = w && memchr(item, 0, w) != NULL;
		} else {
			while (w && ab_load_le32(item + 4 * (w - 1)) == 0)
				w--;
			for (size_t j = 0; j < w && !nul; j++)
				nul = ab_load_le32(item + 4 * j) == 0;
		}
		if (nul) {
			ab_chunk_free_strings(out, i);
			return ab_error_set(AB_EFORMAT, "fixed-width string item %llu holds a NUL byte "
					    "before its end; strings with NUL bytes are not supported",
					    (unsigned long long)i);
		}
		w = dt->str_width;
		if (dt->str == AB_STR_BYTES) {
			while (w && item[w - 1] == 0)
				w--;
			s = malloc(w + 1);
			if (s) {
				memcpy(s, item, w);
				s[w] = '\0';
			}
		} else {
			while (w && ab_load_le32(item + 4 * (w - 1)) == 0)
				w--;
			s = malloc(4 * w + 1);
			if (s) {
				size_t k = 0;
				for (size_t j = 0; j < w; j++) {
					uint32_t c = ab_load_le32(item + 4 * j);
					if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
						c = 0xFFFD;
					if (c < 0x80) {
						s[k++] = (char)c;
					} else if (c < 0x800) {
						s[k++] = (char)(0xC0 | c >> 6);
						s[k++] = (char)(0x80 | (c & 0x3F));
					} else if (c < 0x10000) {
						s[k++] = (char)(0xE0 | c >> 12);
						s[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
						s[k++] = (char)(0x80 | (c & 0x3F));
					} else {
						s[k++] = (char)(0xF0 | c >> 18);
						s[k++] = (char)(0x80 | ((c >> 12) & 0x3F));
						s[k++] = (char)(0x80 | ((c >> 6) & 0x3F));
						s[k++] = (char)(0x80 | (c & 0x3F));
					}
				}
				s[k] = '\0';
			}
		}
		if (!s) {
			ab_chunk_free_strings(out, i);
			return ab_error_set(AB_ENOMEM, "out of memory");
		}
		out[i] = s;
	}
	return 0;
}

static int read_rows(ab_array *a, uint64_t r0, uint64_t r1, void *dst, out_mode mode)
{
	const ab_array_meta *m = &a->m;
	const ab_dtype_desc *dt = &m->dt;
	int nd = m->ndim;
	int is_str = dt->dt == AB_DT_STRING;
	size_t out_item = is_str ? sizeof(char *) : dt->disk_size;
	int rc = 0;

	/* Selection box and destination shape. 0-d arrays: one row, no axes. */
	uint64_t sel0[AB_MAX_NDIM], sel1[AB_MAX_NDIM], dshape[AB_MAX_NDIM];
	for (int i = 0; i < nd; i++) {
		sel0[i] = i == 0 ? r0 : 0;
		sel1[i] = i == 0 ? r1 : m->shape[i];
		dshape[i] = sel1[i] - sel0[i];
	}
	uint64_t ufirst[AB_MAX_NDIM], ulast[AB_MAX_NDIM], uc[AB_MAX_NDIM];
	for (int i = 0; i < nd; i++) {
		if (sel1[i] == sel0[i])
			return 0; /* empty selection */
		ufirst[i] = sel0[i] / a->unit[i];
		ulast[i] = (sel1[i] - 1) / a->unit[i];
		uc[i] = ufirst[i];
	}
	size_t unit_bytes, unit_str_bytes;
	if ((rc = ab_chunk_nbytes(nd, a->unit, dt, &unit_bytes)))
		return rc;
	uint64_t unit_items = 1;
	for (int i = 0; i < nd; i++)
		unit_items *= a->unit[i];
	unit_str_bytes = (size_t)unit_items * sizeof(char *);
	/* Strings: raw decoded unit in unitbuf, then char* view after it. */
	size_t need = unit_bytes + (is_str && dt->str != AB_STR_VLEN ? unit_str_bytes : 0);
	if ((rc = ab_buf_reserve(&a->unitbuf, need ? need : 1)))
		return rc;
	char **zeros = NULL;
	if (is_str && !(zeros = calloc((size_t)unit_items ? (size_t)unit_items : 1, sizeof(char *))))
		return ab_error_set(AB_ENOMEM, "out of memory");
	/* Whole units land contiguously in dst when they span all trailing axes. */
	int trailing_full = 1;
	for (int i = 1; i < nd; i++)
		if (a->unit[i] != m->shape[i])
			trailing_full = 0;
	uint64_t row_items = 1;
	for (int i = 1; i < nd; i++)
		row_items *= m->shape[i];

	for (;;) {
		uint64_t origin[AB_MAX_NDIM], uoff[AB_MAX_NDIM], doff[AB_MAX_NDIM], cnt[AB_MAX_NDIM];
		int whole = 1;
		for (int i = 0; i < nd; i++) {
			origin[i] = uc[i] * a->unit[i];
			uint64_t lo = origin[i] > sel0[i] ? origin[i] : sel0[i];
			uint64_t hi = origin[i] + a->unit[i] < sel1[i] ? origin[i] + a->unit[i] : sel1[i];
			uoff[i] = lo - origin[i];
			doff[i] = lo - sel0[i];
			cnt[i] = hi - lo;
			if (cnt[i] != a->unit[i])
				whole = 0;
		}
		char where[3 * KEY_MAX];
		int present;
		if ((rc = fetch_unit(a, uc, &present, where, sizeof where)))
			goto out;
		int direct = !is_str && whole && trailing_full;
		uint8_t *target = direct ? (uint8_t *)dst + (size_t)(doff[0] * row_items) * out_item
					 : a->unitbuf.data;
		if (present)
			rc = ab_chunk_decode(a->unit_pipe, dt, a->unit, a->io.data, a->io.len, m->fill,
					     m->fill_str, target, unit_bytes, &a->scratch);
		else
			rc = ab_chunk_fill(target, unit_items, dt, m->fill, m->fill_str);
		if (rc) {
			ab_error_prefix(rc, "array '%s', %s: ", a->node, where);
			goto out;
		}
		if (!direct) {
			const uint8_t *src = a->unitbuf.data;
			if (is_str && dt->str != AB_STR_VLEN) {
				char **view = (char **)(a->unitbuf.data + unit_bytes);
				if ((rc = fixed_to_strings(dt, a->unitbuf.data, unit_items, view))) {
					ab_error_prefix(rc, "array '%s', %s: ", a->node, where);
					goto out;
				}
				src = (const uint8_t *)view;
			}
			ab_copy_box(nd, out_item, src, a->unit, uoff, dst, dshape, doff, cnt);
			if (is_str) {
				/* The copied strings now belong to dst: clear them in the unit,
				 * free the rest. */
				ab_copy_box(nd, sizeof(char *), zeros, a->unit, uoff, (void *)src, a->unit, uoff, cnt);
				ab_chunk_free_strings((void *)src, unit_items);
			}
		}
		/* Next unit, last axis fastest. */
		int d = nd - 1;
		while (d >= 0) {
			if (++uc[d] <= ulast[d])
				break;
			uc[d] = ufirst[d];
			d--;
		}
		if (d < 0)
			break;
	}
	if (nd == 0) {
		/* handled by the loop above only when nd > 0 */
	}
	(void)mode;
out:
	free(zeros);
	return rc;
}

static int read_scalar(ab_array *a, void *dst)
{
	/* A 0-d array has one chunk, key "c" (v3 default) or "0". */
	const ab_dtype_desc *dt = &a->m.dt;
	uint64_t none[1] = { 0 };
	char where[3 * KEY_MAX];
	int present, rc;
	size_t nbytes;
	if ((rc = ab_chunk_nbytes(0, none, dt, &nbytes)) || (rc = ab_buf_reserve(&a->unitbuf, nbytes + sizeof(char *))))
		return rc;
	if ((rc = fetch_unit(a, none, &present, where, sizeof where)))
		return rc;
	if (present)
		rc = ab_chunk_decode(a->unit_pipe, dt, none, a->io.data, a->io.len, a->m.fill, a->m.fill_str,
				     a->unitbuf.data, nbytes, &a->scratch);
	else
		rc = ab_chunk_fill(a->unitbuf.data, 1, dt, a->m.fill, a->m.fill_str);
	if (rc)
		return ab_error_prefix(rc, "array '%s', %s: ", a->node, where);
	if (dt->dt == AB_DT_STRING && dt->str != AB_STR_VLEN) {
		if ((rc = fixed_to_strings(dt, a->unitbuf.data, 1, (char **)dst)))
			return ab_error_prefix(rc, "array '%s', %s: ", a->node, where);
		return 0;
	}
	memcpy(dst, a->unitbuf.data, nbytes);
	return 0;
}

static int check_rows(const ab_array *a, uint64_t r0, uint64_t r1)
{
	uint64_t n = ab_array_nrows(a);
	if (r0 > r1 || r1 > n)
		return ab_error_set(AB_ERANGE, "rows %llu:%llu out of range for array '%s' with %llu rows",
				    (unsigned long long)r0, (unsigned long long)r1, a->node, (unsigned long long)n);
	return 0;
}

int ab_array_read_rows(ab_array *a, uint64_t r0, uint64_t r1, void *dst, size_t dst_size)
{
	if (!a || (!dst && r1 > r0))
		return ab_error_set(AB_EINVAL, "ab_array_read_rows: null argument");
	if (a->m.dt.dt == AB_DT_STRING)
		return ab_error_set(AB_ETYPE, "array '%s' holds strings: use ab_array_read_strings", a->node);
	int rc = check_rows(a, r0, r1);
	if (rc)
		return rc;
	uint64_t need;
	if (ab_mul_u64(r1 - r0, ab_array_row_items(a), &need) || ab_mul_u64(need, a->m.dt.disk_size, &need) ||
	    need > dst_size)
		return ab_error_set(AB_EINVAL, "destination of %zu bytes is too small for rows %llu:%llu of '%s'",
				    dst_size, (unsigned long long)r0, (unsigned long long)r1, a->node);
	if (r0 == r1)
		return 0;
	rc = a->m.ndim == 0 ? read_scalar(a, dst) : read_rows(a, r0, r1, dst, OUT_NUMERIC);
	if (rc == 0 && a->m.dt.dt == AB_DT_BOOL) {
		uint8_t *b = dst;
		for (uint64_t i = 0; i < need; i++)
			b[i] = b[i] != 0;
	}
	return rc;
}

int ab_array_read_strings(ab_array *a, uint64_t r0, uint64_t r1, char ***strings, size_t *count)
{
	if (!a || !strings)
		return ab_error_set(AB_EINVAL, "ab_array_read_strings: null argument");
	if (a->m.dt.dt != AB_DT_STRING)
		return ab_error_set(AB_ETYPE, "array '%s' is numeric (%s), not strings", a->node, a->m.dt.name);
	int rc = check_rows(a, r0, r1);
	if (rc)
		return rc;
	uint64_t n;
	if (ab_mul_u64(r1 - r0, ab_array_row_items(a), &n) || n > ((uint64_t)1 << 40))
		return ab_error_set(AB_EINVAL, "too many strings requested");
	char **out = calloc((size_t)n + 1, sizeof *out);
	if (!out)
		return ab_error_set(AB_ENOMEM, "out of memory");
	if (n)
		rc = a->m.ndim == 0 ? read_scalar(a, out) : read_rows(a, r0, r1, out, OUT_STRINGS);
	if (rc) {
		ab_chunk_free_strings(out, n);
		free(out);
		return rc;
	}
	*strings = out;
	if (count)
		*count = (size_t)n;
	return 0;
}

int ab_array_get_storage(ab_array *a, ab_array_storage *st)
{
	if (!a || !st)
		return ab_error_set(AB_EINVAL, "ab_array_get_storage: null argument");
	memset(st, 0, sizeof *st);
	int nd = a->m.ndim;
	uint64_t grid[AB_MAX_NDIM], c[AB_MAX_NDIM] = { 0 }, total = 1;
	for (int i = 0; i < nd; i++) {
		grid[i] = ab_ceil_div(a->m.shape[i], a->m.chunk[i]);
		if (ab_mul_u64(total, grid[i], &total))
			return ab_error_set(AB_EFORMAT, "chunk grid too large");
	}
	/* One stat per file: a grid of billions (a huge shape over small chunks)
	 * would keep `inspect` busy for days, so such grids are not scanned. */
	if (total > ((uint64_t)1 << 26))
		return ab_error_set(AB_EFORMAT, "chunk grid too large to scan (%llu files)",
				    (unsigned long long)total);
	st->files_total = total;
	uint64_t per_file = a->sharded ? a->m.pipe.shard->n_inner : 1;
	st->chunks_total = total * per_file;
	for (uint64_t f = 0; f < total; f++) {
		char rel[KEY_MAX];
		int krc = unit_key(a, c, rel, sizeof rel);
		if (krc)
			return krc;
		struct stat sb;
		int srv = fstatat(a->store->rootfd, rel, &sb, 0);
		if (srv != 0 && errno != ENOENT && errno != ENOTDIR)
			return ab_error_set(AB_EIO, "%s/%s: cannot stat: %s", a->store->root, rel, strerror(errno));
		if (srv == 0 && S_ISREG(sb.st_mode)) {
			st->files_present++;
			st->bytes_on_disk += (uint64_t)sb.st_size;
			if (a->sharded) {
				ab_shard_slot *s;
				int rc = get_shard(a, c, &s);
				if (rc)
					return rc;
				for (uint64_t k = 0; k < per_file; k++)
					if (!(s->entries[2 * k] == AB_SHARD_EMPTY && s->entries[2 * k + 1] == AB_SHARD_EMPTY))
						st->chunks_present++;
			} else {
				st->chunks_present++;
			}
		}
		for (int d = nd - 1; d >= 0; d--) {
			if (++c[d] < grid[d])
				break;
			c[d] = 0;
		}
	}
	return 0;
}
