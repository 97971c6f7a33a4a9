/*
 * util.h - small helpers shared by the format layer (internal): growable byte
 * buffers, overflow-checked arithmetic, path joining.
 */
#ifndef AB_FORMATS_UTIL_H
#define AB_FORMATS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A growable buffer. Reused across chunks so the hot path allocates only
 * when a chunk is larger than any seen before. */
typedef struct ab_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} ab_buf;

/* Makes room for `cap` bytes (contents are not preserved). */
int ab_buf_reserve(ab_buf *b, size_t cap);
void ab_buf_free(ab_buf *b);

/* a * b and a + b into *out; return 0, or -1 on overflow. */
static inline int ab_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int ab_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

static inline uint64_t ab_ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* "a" + "/" + "b", skipping the slash when either side is empty. malloc'd. */
char *ab_path_join(const char *a, const char *b);
/* Normalises a node path: strips leading/trailing '/', collapses "//",
 * refuses "." and ".." components (AB_EINVAL). *out is malloc'd. */
int ab_node_normalize(const char *node, char **out);

/* Natural-order comparison: digit runs compare by value ("dataset_2" <
 * "dataset_10"). */
int ab_natural_cmp(const char *a, const char *b);

/* Loads little-endian integers from unaligned memory. */
static inline uint32_t ab_load_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t ab_load_le64(const void *p)
{
	return (uint64_t)ab_load_le32(p) | (uint64_t)ab_load_le32((const uint8_t *)p + 4) << 32;
}
static inline void ab_store_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24);
}
static inline void ab_store_le64(void *p, uint64_t v)
{
	ab_store_le32(p, (uint32_t)v);
	ab_store_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Reverses the bytes of each `unit`-byte group of n groups, in place. */
void ab_byteswap(void *data, size_t n, size_t unit);

/* Copies an N-d sub-box. `src` is a C-order array of shape src_shape, `dst`
 * one of shape dst_shape; copies the box of extent `count` starting at
 * src_off in src to dst_off in dst. Items of `itemsize` bytes. */
void ab_copy_box(int ndim, size_t itemsize,
		 const void *src, const uint64_t *src_shape, const uint64_t *src_off,
		 void *dst, const uint64_t *dst_shape, const uint64_t *dst_off,
		 const uint64_t *count);

/* Permutes axes: `src` is C-order with shape src_shape; the result `dst` has
 * shape dst_shape[i] = src_shape[perm[i]] and dst[..., j_i, ...] =
 * src[... index k at axis perm[i] ...]. */
void ab_transpose(int ndim, size_t itemsize, const void *src, const uint64_t *src_shape,
		  const int *perm, void *dst);

#endif
