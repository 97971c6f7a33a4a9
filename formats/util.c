/* util.c - buffers, paths, byte swapping and N-d box copies. */
#include "util.h"
#include "last_error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int ab_buf_reserve(ab_buf *b, size_t cap)
{
	if (cap <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 4096;
	while (ncap < cap) {
		if (ncap > SIZE_MAX / 2) {
			ncap = cap;
			break;
		}
		ncap *= 2;
	}
	/* Contents need not survive, so free first: the peak stays at one buffer. */
	free(b->data);
	b->data = malloc(ncap);
	if (!b->data) {
		b->cap = 0;
		return ab_error_set(AB_ENOMEM, "out of memory allocating %zu bytes", ncap);
	}
	b->cap = ncap;
	return 0;
}

void ab_buf_free(ab_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *ab_path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *out = malloc(la + lb + 2);
	if (!out)
		return NULL;
	memcpy(out, a, la);
	size_t n = la;
	if (la && lb && a[la - 1] != '/')
		out[n++] = '/';
	memcpy(out + n, b, lb);
	out[n + lb] = '\0';
	return out;
}

int ab_node_normalize(const char *node, char **out)
{
	if (!node)
		node = "";
	size_t len = strlen(node);
	char *res = malloc(len + 1);
	if (!res)
		return ab_error_set(AB_ENOMEM, "out of memory");
	size_t n = 0;
	const char *p = node;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t cl = (size_t)(e - p);
		if ((cl == 1 && p[0] == '.') || (cl == 2 && p[0] == '.' && p[1] == '.')) {
			free(res);
			return ab_error_set(AB_EINVAL, "node path '%s': '.' and '..' are not allowed", node);
		}
		if (n)
			res[n++] = '/';
		memcpy(res + n, p, cl);
		n += cl;
		p = e;
	}
	res[n] = '\0';
	*out = res;
	return 0;
}

int ab_natural_cmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			const char *sa = a, *sb = b;
			while (*sa == '0' && isdigit((unsigned char)sa[1]))
				sa++;
			while (*sb == '0' && isdigit((unsigned char)sb[1]))
				sb++;
			const char *ea = sa, *eb = sb;
			while (isdigit((unsigned char)*ea))
				ea++;
			while (isdigit((unsigned char)*eb))
				eb++;
			if (ea - sa != eb - sb)
				return (ea - sa) < (eb - sb) ? -1 : 1;
			int c = strncmp(sa, sb, (size_t)(ea - sa));
			if (c)
				return c;
			a = ea;
			b = eb;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

void ab_byteswap(void *data, size_t n, size_t unit)
{
	uint8_t *p = data;
	switch (unit) {
	case 1:
		return;
	case 2:
		for (size_t i = 0; i < n; i++) {
			uint16_t v;
			memcpy(&v, p + 2 * i, 2);
			v = __builtin_bswap16(v);
			memcpy(p + 2 * i, &v, 2);
		}
		return;
	case 4:
		for (size_t i = 0; i < n; i++) {
			uint32_t v;
			memcpy(&v, p + 4 * i, 4);
			v = __builtin_bswap32(v);
			memcpy(p + 4 * i, &v, 4);
		}
		return;
	case 8:
		for (size_t i = 0; i < n; i++) {
			uint64_t v;
			memcpy(&v, p + 8 * i, 8);
			v = __builtin_bswap64(v);
			memcpy(p + 8 * i, &v, 8);
		}
		return;
	default:
		for (size_t i = 0; i < n; i++) {
			uint8_t *q = p + unit * i;
			for (size_t j = 0; j < unit / 2; j++) {
				uint8_t t = q[j];
				q[j] = q[unit - 1 - j];
				q[unit - 1 - j] = t;
			}
		}
	}
}

void ab_copy_box(int ndim, size_t itemsize,
		 const void *src, const uint64_t *src_shape, const uint64_t *src_off,
		 void *dst, const uint64_t *dst_shape, const uint64_t *dst_off,
		 const uint64_t *count)
{
	if (ndim == 0) {
		memcpy(dst, src, itemsize);
		return;
	}
	for (int d = 0; d < ndim; d++)
		if (count[d] == 0)
			return;
	/* Strides in items, then fold trailing axes that are copied whole on both
	 * sides into one contiguous run. */
	uint64_t sstride[AB_MAX_NDIM], dstride[AB_MAX_NDIM];
	sstride[ndim - 1] = dstride[ndim - 1] = 1;
	for (int d = ndim - 2; d >= 0; d--) {
		sstride[d] = sstride[d + 1] * src_shape[d + 1];
		dstride[d] = dstride[d + 1] * dst_shape[d + 1];
	}
	int inner = ndim - 1;
	uint64_t run = count[inner];
	while (inner > 0 && count[inner] == src_shape[inner] && count[inner] == dst_shape[inner]) {
		inner--;
		run *= count[inner];
	}
	/* Axes [0, inner) are iterated; axis `inner` and beyond form the run. */
	uint64_t idx[AB_MAX_NDIM] = { 0 };
	const uint8_t *s = src;
	uint8_t *t = dst;
	size_t runbytes = (size_t)run * itemsize;
	for (;;) {
		uint64_t so = 0, doff = 0;
		for (int d = 0; d < inner; d++) {
			so += (src_off[d] + idx[d]) * sstride[d];
			doff += (dst_off[d] + idx[d]) * dstride[d];
		}
		so += src_off[inner] * sstride[inner];
		doff += dst_off[inner] * dstride[inner];
		memcpy(t + doff * itemsize, s + so * itemsize, runbytes);
		int d = inner - 1;
		while (d >= 0) {
			if (++idx[d] < count[d])
				break;
			idx[d] = 0;
			d--;
		}
		if (d < 0)
			break;
	}
}

void ab_transpose(int ndim, size_t itemsize, const void *src, const uint64_t *src_shape,
		  const int *perm, void *dst)
{
	uint64_t sstride[AB_MAX_NDIM], dshape[AB_MAX_NDIM], dstr_src[AB_MAX_NDIM];
	uint64_t total = 1;
	if (ndim == 0) {
		memcpy(dst, src, itemsize);
		return;
	}
	sstride[ndim - 1] = 1;
	for (int d = ndim - 2; d >= 0; d--)
		sstride[d] = sstride[d + 1] * src_shape[d + 1];
	for (int i = 0; i < ndim; i++) {
		dshape[i] = src_shape[perm[i]];
		dstr_src[i] = sstride[perm[i]]; /* source stride of destination axis i */
		total *= dshape[i];
	}
	if (total == 0)
		return;
	uint64_t idx[AB_MAX_NDIM] = { 0 };
	const uint8_t *s = src;
	uint8_t *t = dst;
	uint64_t so = 0;
	for (uint64_t k = 0; k < total; k++) {
		memcpy(t + k * itemsize, s + so * itemsize, itemsize);
		int d = ndim - 1;
		while (d >= 0) {
			idx[d]++;
			so += dstr_src[d];
			if (idx[d] < dshape[d])
				break;
			so -= dstr_src[d] * idx[d];
			idx[d] = 0;
			d--;
		}
	}
}
