/* chunk_decode.c - decoding chunks through their codec chain (pipeline.h):
 * whole chunks, shards held in memory and their indexes, fill values, and
 * the items of a chunk decoded in part from the blosc blocks that hold them. */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "last_error.h"

void ab_scratch_free(ab_scratch *s)
{
	for (size_t i = 0; i < sizeof s->b / sizeof s->b[0]; i++)
		ab_buf_free(&s->b[i]);
}

int ab_chunk_nbytes(int ndim, const uint64_t *shape, const ab_dtype_desc *dt, size_t *out)
{
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++)
		if (ab_mul_u64(n, shape[i], &n))
			return ab_error_set(AB_EFORMAT, "chunk shape overflows");
	size_t item = dt->str == AB_STR_VLEN ? sizeof(char *) : dt->disk_size;
	if (ab_mul_u64(n, item, &n) || n > (uint64_t)SIZE_MAX / 2)
		return ab_error_set(AB_EFORMAT, "chunk size overflows");
	*out = (size_t)n;
	return 0;
}

/* Writes the code points of UTF-8 `s` into `width` host-order UCS-4 units,
 * zero-padded, cut at `width`; a malformed sequence becomes U+FFFD. */
static void ucs4_from_utf8(const char *s, uint32_t *out, size_t width)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 0;
	while (*u && n < width) {
		uint32_t cp;
		int more;
		if (*u < 0x80) {
			cp = *u;
			more = 0;
		} else if ((*u & 0xe0) == 0xc0) {
			cp = *u & 0x1f;
			more = 1;
		} else if ((*u & 0xf0) == 0xe0) {
			cp = *u & 0x0f;
			more = 2;
		} else if ((*u & 0xf8) == 0xf0) {
			cp = *u & 0x07;
			more = 3;
		} else {
			cp = 0xfffd;
			more = 0;
		}
		u++;
		for (; more > 0; more--, u++) {
			if ((*u & 0xc0) != 0x80) {
				cp = 0xfffd;
				break;
			}
			cp = cp << 6 | (*u & 0x3f);
		}
		out[n++] = cp;
	}
	while (n < width)
		out[n++] = 0;
}

int ab_chunk_fill(void *out, uint64_t nitems, const ab_dtype_desc *dt, const uint8_t *fill,
		  const char *fill_str)
{
	if (dt->str == AB_STR_VLEN) {
		char **s = out;
		for (uint64_t i = 0; i < nitems; i++) {
			s[i] = strdup(fill_str ? fill_str : "");
			if (!s[i]) {
				ab_chunk_free_strings(out, i);
				return ab_error_set(AB_ENOMEM, "out of memory");
			}
		}
		return 0;
	}
	size_t sz = dt->disk_size;
	uint8_t *p = out;
	int zero = 1;
	for (size_t k = 0; k < sz && k < 16; k++)
		if (fill[k])
			zero = 0;
	int str_fill = (dt->str == AB_STR_UCS4 || dt->str == AB_STR_BYTES) && fill_str && *fill_str;
	if ((zero && !str_fill) || (dt->str != AB_STR_NONE && !str_fill)) {
		memset(p, 0, (size_t)nitems * sz);
		return 0;
	}
	if (nitems == 0)
		return 0;
	if (str_fill && dt->str == AB_STR_UCS4)
		/* v3 fixed_length_utf32 fill values are strings (zarr-python
		 * core/dtype/npy/string.py): one item of their code points */
		ucs4_from_utf8(fill_str, (uint32_t *)(void *)p, dt->str_width);
	else if (str_fill)
		strncpy((char *)p, fill_str, sz); /* v3 null_terminated_bytes, zero-padded */
	else
		memcpy(p, fill, sz);
	/* Doubling copies: log2(n) memcpy calls. */
	size_t have = 1;
	while (have < nitems) {
		size_t take = have <= nitems - have ? have : (size_t)nitems - have;
		memcpy(p + have * sz, p, take * sz);
		have += take;
	}
	return 0;
}

void ab_chunk_free_strings(void *chunk, uint64_t nitems)
{
	char **s = chunk;
	for (uint64_t i = 0; i < nitems; i++) {
		free(s[i]);
		s[i] = NULL;
	}
}

int ab_shard_index_decode(const ab_shard_cfg *cfg, const uint8_t *raw, size_t rawlen,
			  uint64_t shard_size, uint64_t *entries)
{
	if (rawlen != cfg->index_bytes)
		return ab_error_set(AB_ECORRUPT, "shard index is %zu bytes, expected %llu", rawlen,
				    (unsigned long long)cfg->index_bytes);
	size_t body = (size_t)(16 * cfg->n_inner);
	if (cfg->index_crc32c) {
		uint32_t want = ab_load_le32(raw + body);
		uint32_t got = ab_crc32c(0, raw, body);
		if (want != got)
			return ab_error_set(AB_ECORRUPT, "shard index crc32c mismatch (stored 0x%08x, computed 0x%08x)",
					    want, got);
	}
	for (uint64_t k = 0; k < 2 * cfg->n_inner; k++) {
		uint64_t v = ab_load_le64(raw + 8 * k);
		entries[k] = cfg->index_big_endian ? __builtin_bswap64(v) : v;
	}
	for (uint64_t k = 0; k < cfg->n_inner; k++) {
		uint64_t off = entries[2 * k], nb = entries[2 * k + 1], end;
		if (off == AB_SHARD_EMPTY && nb == AB_SHARD_EMPTY)
			continue;
		if (ab_add_u64(off, nb, &end) || end > shard_size)
			return ab_error_set(AB_ECORRUPT,
					    "shard index entry %llu (offset %llu, %llu bytes) points past the end "
					    "of the shard (%llu bytes)",
					    (unsigned long long)k, (unsigned long long)off,
					    (unsigned long long)nb, (unsigned long long)shard_size);
		if (nb > cfg->inner_max_bytes)
			return ab_error_set(AB_ECORRUPT,
					    "shard index entry %llu (offset %llu) gives %llu bytes to an inner chunk "
					    "that encodes to at most %llu bytes",
					    (unsigned long long)k, (unsigned long long)off, (unsigned long long)nb,
					    (unsigned long long)cfg->inner_max_bytes);
	}
	return 0;
}

/* Decodes a whole shard held in memory into `out` (C order of `shape`). */
static int decode_shard_in_memory(const ab_shard_cfg *s, const ab_dtype_desc *dt, int ndim,
				  const uint64_t *shape, const uint8_t *src, size_t srclen,
				  const uint8_t *fill, const char *fill_str, void *out)
{
	/* The inner chunks are copied into `out` at their grid positions, which
	 * is only in bounds when `shape` is the shard shape the configuration was
	 * built for. */
	for (int d = 0; d < ndim; d++)
		if (shape[d] != s->per_dim[d] * s->inner_shape[d])
			return ab_error_set(AB_EINVAL, "shard shape does not match the sharding configuration");
	if (srclen < s->index_bytes)
		return ab_error_set(AB_ECORRUPT, "shard of %zu bytes is shorter than its index (%llu bytes)",
				    srclen, (unsigned long long)s->index_bytes);
	const uint8_t *raw = s->index_at_start ? src : src + srclen - s->index_bytes;
	uint64_t *entries = malloc(sizeof(uint64_t) * 2 * s->n_inner);
	size_t inner_bytes;
	int rc = ab_chunk_nbytes(ndim, s->inner_shape, dt, &inner_bytes);
	if (rc) {
		free(entries);
		return rc;
	}
	void *tmp = malloc(inner_bytes ? inner_bytes : 1);
	ab_scratch scratch = { 0 };
	if (!entries || !tmp) {
		free(entries);
		free(tmp);
		return ab_error_set(AB_ENOMEM, "out of memory");
	}
	rc = ab_shard_index_decode(s, raw, (size_t)s->index_bytes, srclen, entries);
	size_t item = dt->str == AB_STR_VLEN ? sizeof(char *) : dt->disk_size;
	uint64_t n_inner_items = inner_bytes / (item ? item : 1);
	/* Strings: each inner chunk hands its malloc'd strings over to `out` as
	 * it is copied in. If a later inner chunk fails, the caller gets an error
	 * and owns nothing, so the strings already placed must be freed here;
	 * starting from all-NULL pointers makes that a plain sweep. */
	uint64_t out_items = 0;
	if (dt->str == AB_STR_VLEN) {
		out_items = n_inner_items * s->n_inner;
		memset(out, 0, (size_t)out_items * sizeof(char *));
	}
	uint64_t idx[AB_MAX_NDIM] = { 0 };
	for (uint64_t k = 0; rc == 0 && k < s->n_inner; k++) {
		uint64_t off = entries[2 * k], nb = entries[2 * k + 1];
		if (off == AB_SHARD_EMPTY && nb == AB_SHARD_EMPTY)
			rc = ab_chunk_fill(tmp, n_inner_items, dt, fill, fill_str);
		else
			rc = ab_chunk_decode(&s->inner, dt, s->inner_shape, src + off, (size_t)nb, fill,
					     fill_str, tmp, inner_bytes, &scratch);
		if (rc) {
			ab_error_prefix(rc, "inner chunk %llu: ", (unsigned long long)k);
			break;
		}
		uint64_t zero[AB_MAX_NDIM] = { 0 }, dst_off[AB_MAX_NDIM];
		for (int d = 0; d < ndim; d++)
			dst_off[d] = idx[d] * s->inner_shape[d];
		ab_copy_box(ndim, item, tmp, s->inner_shape, zero, out, shape, dst_off, s->inner_shape);
		for (int d = ndim - 1; d >= 0; d--) {
			if (++idx[d] < s->per_dim[d])
				break;
			idx[d] = 0;
		}
	}
	if (rc && out_items)
		ab_chunk_free_strings(out, out_items);
	ab_scratch_free(&scratch);
	free(entries);
	free(tmp);
	return rc;
}

/* The densest expansion any bytes->bytes decoder here can legitimately
 * produce, as decoded bytes per encoded byte. zstd is the densest: an RLE
 * block costs 4 bytes (3 of header, 1 of payload) for at most 128 KiB, i.e.
 * 32768:1; deflate stops at about 1032:1, LZ4 at about 255:1, blosc inherits
 * from its inner codec. Twice the zstd figure leaves a margin. */
#define AB_MAX_EXPANSION ((uint64_t)1 << 16)

/* The largest size one bytes->bytes stage of a chunk may decode to. Headers
 * that announce a size (blosc nbytes, the zstd frame content size, the lz4
 * prefix) and the grow-and-retry loop for streams that announce none would
 * otherwise size the scratch buffer from whatever a hostile file says: a
 * 20-byte zstd frame claiming 2^60 bytes must be refused, not allocated.
 *  - Any chain: no stage can expand its input by more than AB_MAX_EXPANSION.
 *  - A bytes chain ends in exactly `outbytes` (the chunk), and every encoder
 *    that ran after that step grows its input by at most a few bytes per
 *    kilobyte plus a header, so no intermediate form is legitimately larger
 *    than twice the chunk plus 64 KiB. */
static uint64_t stage_limit(int exact, size_t outbytes, size_t encoded)
{
	uint64_t limit;
	if (ab_mul_u64(encoded, AB_MAX_EXPANSION, &limit) || ab_add_u64(limit, 1 << 16, &limit))
		limit = UINT64_MAX;
	if (exact) {
		uint64_t chain = (uint64_t)outbytes * 2 + (1 << 16);
		if (chain < limit)
			limit = chain;
	}
	if (limit > (uint64_t)SIZE_MAX / 2)
		limit = (uint64_t)SIZE_MAX / 2;
	return limit;
}

int ab_chunk_decode(const ab_pipeline *p, const ab_dtype_desc *dt, const uint64_t *shape,
		    const uint8_t *src, size_t srclen, const uint8_t *fill, const char *fill_str,
		    void *out, size_t outcap, ab_scratch *scratch)
{
	int ndim = p->ndim;
	uint64_t nitems = 1, enc_shape[AB_MAX_NDIM];
	for (int i = 0; i < ndim; i++) {
		nitems *= shape[i];
		enc_shape[i] = shape[p->order[i]];
	}
	size_t outbytes;
	int rc = ab_chunk_nbytes(ndim, shape, dt, &outbytes);
	if (rc)
		return rc;
	if (outcap < outbytes)
		return ab_error_set(AB_EINVAL, "chunk buffer too small");
	int swap = p->a2b == AB_A2B_BYTES && p->big_endian && dt->swap_unit > 1;
	int exact = p->a2b == AB_A2B_BYTES; /* decoded byte count known up front */

	const uint8_t *cur = src;
	size_t curlen = srclen;
	int which = 0;
	for (int i = p->nb2b - 1; i >= 0; i--) {
		const ab_b2b_codec *c = &p->b2b[i];
		int last = i == 0;
		int64_t hint = ab_b2b_decoded_size(c, cur, curlen);
		if (hint < -1)
			return (int)hint;
		if (last && exact && hint >= 0 && (uint64_t)hint != outbytes)
			return ab_error_set(AB_ECORRUPT, "codec announces %lld decoded bytes, the chunk needs %zu",
					    (long long)hint, outbytes);
		uint64_t limit = stage_limit(exact, outbytes, curlen);
		if (hint >= 0 && (uint64_t)hint > limit)
			return ab_error_set(AB_ECORRUPT,
					    "codec announces %lld decoded bytes from %zu encoded bytes, more than "
					    "the chunk (%zu bytes) can need",
					    (long long)hint, curlen, outbytes);
		size_t cap = hint >= 0 ? (size_t)hint : (last && exact ? outbytes : (curlen < 1024 ? 4096 : curlen * 4));
		if (cap > limit)
			cap = (size_t)limit;
		uint8_t *dst;
		int direct = last && exact && !p->has_transpose && !swap;
		for (;;) {
			if (direct) {
				dst = out;
			} else {
				if ((rc = ab_buf_reserve(&scratch->b[which], cap ? cap : 1)))
					return rc;
				dst = scratch->b[which].data;
			}
			ssize_t n = ab_b2b_decode(c, cur, curlen, dst, cap);
			if (n == AB_ETOOSMALL && hint < 0 && !(last && exact)) {
				if (cap >= limit)
					return ab_error_set(AB_ECORRUPT,
							    "decoded data exceeds %llu bytes, more than %zu encoded "
							    "bytes can hold for a chunk of %zu bytes",
							    (unsigned long long)limit, curlen, outbytes);
				cap = (uint64_t)cap * 2 > limit ? (size_t)limit : cap * 2;
				continue;
			}
			if (n == AB_ETOOSMALL)
				return ab_error_set(AB_ECORRUPT, "decoded data is larger than the chunk (%zu bytes)", cap);
			if (n < 0)
				return (int)n;
			curlen = (size_t)n;
			break;
		}
		cur = dst;
		if (!direct)
			which ^= 1;
	}

	switch (p->a2b) {
	case AB_A2B_BYTES:
		if (curlen != outbytes)
			return ab_error_set(AB_ECORRUPT, "chunk holds %zu bytes, expected %zu (%llu items of %zu bytes)",
					    curlen, outbytes, (unsigned long long)nitems, dt->disk_size);
		if (cur == out) {
			if (swap)
				ab_byteswap(out, outbytes / dt->swap_unit, dt->swap_unit);
			return 0;
		}
		if (swap || p->has_transpose) {
			uint8_t *work;
			if (swap) {
				/* Swap in a scratch copy: the source may be the caller's read buffer. */
				if (cur == src) {
					if ((rc = ab_buf_reserve(&scratch->b[which], outbytes)))
						return rc;
					memcpy(scratch->b[which].data, cur, outbytes);
					cur = scratch->b[which].data;
				}
				work = (uint8_t *)cur;
				ab_byteswap(work, outbytes / dt->swap_unit, dt->swap_unit);
			}
			if (p->has_transpose) {
				int inv[AB_MAX_NDIM];
				for (int i = 0; i < ndim; i++)
					inv[p->order[i]] = i;
				ab_transpose(ndim, dt->disk_size, cur, enc_shape, inv, out);
			} else {
				memcpy(out, cur, outbytes);
			}
			return 0;
		}
		memcpy(out, cur, outbytes);
		return 0;
	case AB_A2B_VLEN: {
		char **strs;
		if ((rc = ab_vlen_utf8_decode(cur, curlen, (size_t)nitems, &strs)))
			return rc;
		if (p->has_transpose) {
			int inv[AB_MAX_NDIM];
			for (int i = 0; i < ndim; i++)
				inv[p->order[i]] = i;
			ab_transpose(ndim, sizeof(char *), strs, enc_shape, inv, out);
		} else {
			memcpy(out, strs, (size_t)nitems * sizeof(char *));
		}
		free(strs);
		return 0;
	}
	case AB_A2B_SHARD:
		if (!p->has_transpose)
			return decode_shard_in_memory(p->shard, dt, ndim, shape, cur, curlen, fill, fill_str, out);
		{
			void *tmp = malloc(outbytes ? outbytes : 1);
			if (!tmp)
				return ab_error_set(AB_ENOMEM, "out of memory");
			rc = decode_shard_in_memory(p->shard, dt, ndim, enc_shape, cur, curlen, fill, fill_str, tmp);
			if (rc == 0) {
				int inv[AB_MAX_NDIM];
				for (int i = 0; i < ndim; i++)
					inv[p->order[i]] = i;
				ab_transpose(ndim, dt->str == AB_STR_VLEN ? sizeof(char *) : dt->disk_size, tmp,
					     enc_shape, inv, out);
			}
			free(tmp);
			return rc;
		}
	}
	return ab_error_set(AB_EFORMAT, "no array->bytes codec");
}

int ab_pipeline_partial(const ab_pipeline *p, const ab_dtype_desc *dt)
{
	int swap = p->big_endian && dt->swap_unit > 1;
	return p->a2b == AB_A2B_BYTES && !p->has_transpose && !swap && dt->disk_size > 0 &&
	       dt->str != AB_STR_VLEN && (p->nb2b == 0 || (p->nb2b == 1 && p->b2b[0].kind == AB_B2B_BLOSC));
}

int ab_chunk_decode_part(const ab_pipeline *p, const ab_dtype_desc *dt, const uint64_t *shape,
			 const uint8_t *src, size_t srclen, uint64_t item0, uint64_t nitems, void *out,
			 size_t *decoded)
{
	size_t outbytes;
	*decoded = 0;
	if (!ab_pipeline_partial(p, dt))
		return AB_NO_PART;
	int rc = ab_chunk_nbytes(p->ndim, shape, dt, &outbytes);
	if (rc)
		return rc;
	return ab_chunk_decode_part_of(p, dt, src, srclen, 0, outbytes / dt->disk_size, item0, nitems, out,
				       decoded);
}

int ab_chunk_decode_part_of(const ab_pipeline *p, const ab_dtype_desc *dt, const uint8_t *src, size_t srclen,
			    uint64_t frame_item0, uint64_t frame_items, uint64_t item0, uint64_t nitems, void *out,
			    size_t *decoded)
{
	*decoded = 0;
	if (!ab_pipeline_partial(p, dt))
		return AB_NO_PART;
	size_t isz = dt->disk_size;
	if (frame_items > SIZE_MAX / isz)
		return ab_error_set(AB_EINVAL, "chunk of %llu items too large", (unsigned long long)frame_items);
	size_t outbytes = (size_t)frame_items * isz;
	if (item0 < frame_item0 || item0 - frame_item0 > frame_items || nitems > frame_items - (item0 - frame_item0))
		return ab_error_set(AB_EINVAL, "items %llu..%llu asked of a chunk holding items %llu..%llu",
				    (unsigned long long)item0, (unsigned long long)(item0 + nitems),
				    (unsigned long long)frame_item0, (unsigned long long)(frame_item0 + frame_items));
	size_t off = (size_t)(item0 - frame_item0) * isz, len = (size_t)nitems * isz;
	if (p->nb2b == 0) {
		if (srclen != outbytes)
			return ab_error_set(AB_ECORRUPT, "chunk holds %zu bytes, expected %zu (%zu items of %zu bytes)",
					    srclen, outbytes, outbytes / isz, isz);
		memcpy(out, src + off, len);
		*decoded = len;
		return 0;
	}
	/* the same size check the whole-chunk decode makes */
	int64_t hint = ab_b2b_decoded_size(&p->b2b[0], src, srclen);
	if (hint < 0)
		return hint == -1 ? AB_NO_PART : (int)hint;
	if ((uint64_t)hint != outbytes)
		return ab_error_set(AB_ECORRUPT, "codec announces %lld decoded bytes, the chunk needs %zu",
				    (long long)hint, outbytes);
	return ab_b2b_decode_part(&p->b2b[0], src, srclen, off, len, out, decoded);
}

int ab_chunk_decode_frame(const ab_pipeline *p, const ab_dtype_desc *dt, const uint8_t *src, size_t srclen,
			  uint64_t frame_items, void *out)
{
	if (!ab_pipeline_partial(p, dt))
		return ab_error_set(AB_EINVAL, "a frame of this codec chain cannot be decoded apart");
	size_t isz = dt->disk_size;
	if (frame_items > SIZE_MAX / isz)
		return ab_error_set(AB_EINVAL, "chunk of %llu items too large", (unsigned long long)frame_items);
	size_t outbytes = (size_t)frame_items * isz;
	if (p->nb2b == 0) {
		if (srclen != outbytes)
			return ab_error_set(AB_ECORRUPT, "chunk holds %zu bytes, expected %zu", srclen, outbytes);
		memcpy(out, src, outbytes);
		return 0;
	}
	int64_t hint = ab_b2b_decoded_size(&p->b2b[0], src, srclen);
	if (hint < 0 && hint != -1)
		return (int)hint;
	if (hint != -1 && (uint64_t)hint != outbytes)
		return ab_error_set(AB_ECORRUPT, "codec announces %lld decoded bytes, the frame needs %zu",
				    (long long)hint, outbytes);
	ssize_t r = ab_b2b_decode(&p->b2b[0], src, srclen, out, outbytes);
	if (r < 0)
		return (int)r;
	if ((size_t)r != outbytes)
		return ab_error_set(AB_ECORRUPT, "frame decoded to %zd bytes, %zu expected", r, outbytes);
	return 0;
}
