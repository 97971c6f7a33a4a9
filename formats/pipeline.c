/* pipeline.c - codec chains of zarr v2 and v3 arrays: parsing and decoding. */
#include "pipeline.h"
#include "last_error.h"

#include <stdlib.h>
#include <string.h>

void ab_scratch_free(ab_scratch *s)
{
	for (size_t i = 0; i < sizeof s->b / sizeof s->b[0]; i++)
		ab_buf_free(&s->b[i]);
}

void ab_pipeline_free(ab_pipeline *p)
{
	if (p->shard) {
		ab_pipeline_free(&p->shard->inner);
		free(p->shard);
		p->shard = NULL;
	}
}

/* ------------------------------------------------------------ parsing */

static const char *codec_name(const json_t *c, const json_t **config)
{
	*config = NULL;
	if (json_is_string(c))
		return json_string_value(c);
	if (!json_is_object(c))
		return NULL;
	const json_t *name = json_object_get(c, "name");
	*config = json_object_get(c, "configuration");
	if (*config && !json_is_object(*config))
		return NULL;
	return json_is_string(name) ? json_string_value(name) : NULL;
}

static int cfg_int(const json_t *cfg, const char *key, int dflt, int *out)
{
	const json_t *v = cfg ? json_object_get(cfg, key) : NULL;
	if (!v || json_is_null(v)) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v))
		return ab_error_set(AB_EFORMAT, "codec configuration '%s' must be an integer", key);
	json_int_t x = json_integer_value(v);
	if (x < -(1LL << 30) || x > (1LL << 30))
		return ab_error_set(AB_EFORMAT, "codec configuration '%s' out of range", key);
	*out = (int)x;
	return 0;
}

static int cfg_str(const json_t *cfg, const char *key, const char *dflt, const char **out)
{
	const json_t *v = cfg ? json_object_get(cfg, key) : NULL;
	if (!v || json_is_null(v)) {
		*out = dflt;
		return 0;
	}
	if (!json_is_string(v))
		return ab_error_set(AB_EFORMAT, "codec configuration '%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

static int parse_blosc(const json_t *cfg, int v3, const ab_dtype_desc *dt, ab_b2b_codec *c)
{
	const char *cname;
	int rc, blocksize;
	c->kind = AB_B2B_BLOSC;
	if ((rc = cfg_str(cfg, "cname", "lz4", &cname)) || (rc = cfg_int(cfg, "clevel", 5, &c->level)) ||
	    (rc = cfg_int(cfg, "blocksize", 0, &blocksize)))
		return rc;
	if (strlen(cname) >= sizeof c->cname)
		return ab_error_set(AB_EUNSUPPORTED, "blosc: unknown cname '%s'", cname);
	snprintf(c->cname, sizeof c->cname, "%s", cname);
	c->blocksize = blocksize > 0 ? (size_t)blocksize : 0;
	size_t item = dt->disk_size ? (dt->swap_unit ? dt->disk_size : 1) : 1;
	c->typesize = (int)item;
	const json_t *sh = cfg ? json_object_get(cfg, "shuffle") : NULL;
	if (v3 || json_is_string(sh)) {
		const char *s;
		if ((rc = cfg_str(cfg, "shuffle", "noshuffle", &s)))
			return rc;
		if (strcmp(s, "noshuffle") == 0)
			c->shuffle = AB_BLOSC_NOSHUFFLE;
		else if (strcmp(s, "shuffle") == 0)
			c->shuffle = AB_BLOSC_SHUFFLE;
		else if (strcmp(s, "bitshuffle") == 0)
			c->shuffle = AB_BLOSC_BITSHUFFLE;
		else
			return ab_error_set(AB_EFORMAT, "blosc: unknown shuffle '%s'", s);
		int ts;
		if ((rc = cfg_int(cfg, "typesize", c->typesize, &ts)))
			return rc;
		c->typesize = ts > 0 ? ts : 1;
	} else {
		int s;
		if ((rc = cfg_int(cfg, "shuffle", 1, &s)))
			return rc;
		if (s == -1) /* numcodecs AUTOSHUFFLE */
			s = item == 1 ? AB_BLOSC_BITSHUFFLE : AB_BLOSC_SHUFFLE;
		if (s < 0 || s > 2)
			return ab_error_set(AB_EFORMAT, "blosc: unknown shuffle %d", s);
		c->shuffle = s;
	}
	return 0;
}

/* bytes->bytes codecs known to both versions. Returns 1 if `name` is one. */
static int parse_b2b(const char *name, const json_t *cfg, int v3, const ab_dtype_desc *dt,
		     ab_b2b_codec *c, int *rc)
{
	memset(c, 0, sizeof *c);
	*rc = 0;
	if (strcmp(name, "blosc") == 0 || strcmp(name, "numcodecs.blosc") == 0) {
		*rc = parse_blosc(cfg, v3, dt, c);
	} else if (strcmp(name, "zstd") == 0 || strcmp(name, "numcodecs.zstd") == 0) {
		c->kind = AB_B2B_ZSTD;
		*rc = cfg_int(cfg, "level", 0, &c->level);
		const json_t *ck = cfg ? json_object_get(cfg, "checksum") : NULL;
		c->checksum = json_is_true(ck);
	} else if (strcmp(name, "lz4") == 0 || strcmp(name, "numcodecs.lz4") == 0) {
		c->kind = AB_B2B_LZ4;
		*rc = cfg_int(cfg, "acceleration", 1, &c->acceleration);
	} else if (strcmp(name, "gzip") == 0 || strcmp(name, "numcodecs.gzip") == 0) {
		c->kind = AB_B2B_GZIP;
		*rc = cfg_int(cfg, "level", 1, &c->level);
	} else if (strcmp(name, "zlib") == 0 || strcmp(name, "numcodecs.zlib") == 0) {
		c->kind = AB_B2B_ZLIB;
		*rc = cfg_int(cfg, "level", 1, &c->level);
	} else if (strcmp(name, "crc32c") == 0 || strcmp(name, "numcodecs.crc32c") == 0) {
		c->kind = AB_B2B_CRC32C;
	} else if (strcmp(name, "bz2") == 0 || strcmp(name, "numcodecs.bz2") == 0) {
		/* v2 {"id": "bz2", "level": 9}; zarr-python 3 writes the numcodecs
		 * codec as {"name": "numcodecs.bz2", "configuration": {"level": 9}}
		 * (numcodecs/zarr3.py) */
		c->kind = AB_B2B_BZ2;
		*rc = cfg_int(cfg, "level", 9, &c->level);
	} else {
		return 0;
	}
	return 1;
}

static int parse_uint_list(const json_t *a, int ndim, uint64_t *out, const char *what)
{
	if (!json_is_array(a) || (int)json_array_size(a) != ndim)
		return ab_error_set(AB_EFORMAT, "%s must be a list of %d integers", what, ndim);
	for (int i = 0; i < ndim; i++) {
		const json_t *v = json_array_get(a, (size_t)i);
		if (!json_is_integer(v) || json_integer_value(v) <= 0)
			return ab_error_set(AB_EFORMAT, "%s must hold positive integers", what);
		out[i] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

static int parse_index_codecs(const json_t *codecs, ab_shard_cfg *s)
{
	/* The index is a uint64 array; what real writers use is bytes (+ crc32c). */
	s->index_big_endian = 0;
	s->index_crc32c = 0;
	if (!codecs) {
		s->index_crc32c = 1;
		return 0;
	}
	if (!json_is_array(codecs) || json_array_size(codecs) == 0)
		return ab_error_set(AB_EFORMAT, "sharding_indexed: index_codecs must be a non-empty list");
	size_t i;
	const json_t *c;
	int seen_bytes = 0;
	json_array_foreach(codecs, i, c) {
		const json_t *cfg;
		const char *name = codec_name(c, &cfg);
		if (!name)
			return ab_error_set(AB_EFORMAT, "sharding_indexed: malformed index codec");
		if (strcmp(name, "bytes") == 0 && !seen_bytes) {
			const char *e;
			int rc = cfg_str(cfg, "endian", "little", &e);
			if (rc)
				return rc;
			s->index_big_endian = strcmp(e, "big") == 0;
			seen_bytes = 1;
		} else if (strcmp(name, "crc32c") == 0 && seen_bytes && !s->index_crc32c) {
			s->index_crc32c = 1;
		} else {
			return ab_error_set(AB_EUNSUPPORTED,
					    "sharding_indexed: index codec '%s' is not supported "
					    "(only bytes, optionally followed by crc32c)", name);
		}
	}
	if (!seen_bytes)
		return ab_error_set(AB_EFORMAT, "sharding_indexed: index_codecs lack a bytes codec");
	return 0;
}

static int parse_sharding(const json_t *cfg, int ndim, const uint64_t *shard_shape,
			  const ab_dtype_desc *dt, ab_pipeline *out)
{
	ab_shard_cfg *s = calloc(1, sizeof *s);
	if (!s)
		return ab_error_set(AB_ENOMEM, "out of memory");
	out->shard = s;
	if (!cfg)
		return ab_error_set(AB_EFORMAT, "sharding_indexed: missing configuration");
	int rc = parse_uint_list(json_object_get(cfg, "chunk_shape"), ndim, s->inner_shape,
				 "sharding_indexed chunk_shape");
	if (rc)
		return rc;
	s->n_inner = 1;
	for (int i = 0; i < ndim; i++) {
		if (shard_shape[i] % s->inner_shape[i] != 0)
			return ab_error_set(AB_EFORMAT,
					    "sharding_indexed: shard shape %llu is not a multiple of the "
					    "inner chunk_shape %llu on axis %d",
					    (unsigned long long)shard_shape[i],
					    (unsigned long long)s->inner_shape[i], i);
		s->per_dim[i] = shard_shape[i] / s->inner_shape[i];
		if (ab_mul_u64(s->n_inner, s->per_dim[i], &s->n_inner) || s->n_inner > (1ULL << 32))
			return ab_error_set(AB_EFORMAT, "sharding_indexed: too many inner chunks per shard");
	}
	const char *loc;
	if ((rc = cfg_str(cfg, "index_location", "end", &loc)))
		return rc;
	if (strcmp(loc, "end") == 0)
		s->index_at_start = 0;
	else if (strcmp(loc, "start") == 0)
		s->index_at_start = 1;
	else
		return ab_error_set(AB_EFORMAT, "sharding_indexed: index_location '%s' is neither start nor end", loc);
	if ((rc = parse_index_codecs(json_object_get(cfg, "index_codecs"), s)))
		return rc;
	s->index_bytes = 16 * s->n_inner + (s->index_crc32c ? 4 : 0);
	const json_t *inner = json_object_get(cfg, "codecs");
	if (!inner)
		return ab_error_set(AB_EFORMAT, "sharding_indexed: missing codecs");
	rc = ab_pipeline_from_v3(inner, ndim, s->inner_shape, dt, &s->inner);
	if (rc)
		return ab_error_prefix(rc, "sharding_indexed inner codecs: ");
	s->inner_max_bytes = ab_pipeline_max_encoded(&s->inner, ndim, s->inner_shape, dt);
	return 0;
}

/* numcodecs BitRound (v2 filter "bitround", v3 "numcodecs.bitround"): the
 * encoder zeroes all but `keepbits` mantissa bits of floats and the chunk stays
 * a float array, so decoding is the identity (numcodecs/bitround.py; the v3
 * name from numcodecs/zarr3.py). Only checked, never run. */
static int check_bitround(const char *name, const json_t *cfg, const ab_dtype_desc *dt, ab_pipeline *out)
{
	const json_t *kb = cfg ? json_object_get(cfg, "keepbits") : NULL;
	if (!json_is_integer(kb) || json_integer_value(kb) < 0 || json_integer_value(kb) > 52)
		return ab_error_set(AB_EFORMAT, "%s: keepbits must be an integer in [0, 52]", name);
	if (dt->dt != AB_DT_FLOAT16 && dt->dt != AB_DT_FLOAT32 && dt->dt != AB_DT_FLOAT64)
		return ab_error_set(AB_EFORMAT, "%s applies to floats, not %s", name, dt->name);
	out->bitround = (int)json_integer_value(kb) + 1;
	return 0;
}

int ab_pipeline_from_v3(const json_t *codecs, int ndim, const uint64_t *chunk_shape,
			const ab_dtype_desc *dt, ab_pipeline *out)
{
	memset(out, 0, sizeof *out);
	out->ndim = ndim;
	if (!json_is_array(codecs) || json_array_size(codecs) == 0)
		return ab_error_set(AB_EFORMAT, "codecs must be a non-empty list");
	uint64_t shape[AB_MAX_NDIM];
	memcpy(shape, chunk_shape, sizeof(uint64_t) * (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		out->order[i] = i;
	size_t i;
	const json_t *c;
	json_array_foreach(codecs, i, c) {
		const json_t *cfg;
		const char *name = codec_name(c, &cfg);
		int rc;
		if (!name)
			return ab_error_set(AB_EFORMAT, "codec %zu is malformed (needs a name)", i);
		if (strcmp(name, "transpose") == 0) {
			if (out->a2b)
				return ab_error_set(AB_EFORMAT, "transpose must come before the array->bytes codec");
			const json_t *ord = cfg ? json_object_get(cfg, "order") : NULL;
			int perm[AB_MAX_NDIM], seen[AB_MAX_NDIM] = { 0 };
			if (json_is_string(ord) && strcmp(json_string_value(ord), "C") == 0) {
				for (int k = 0; k < ndim; k++)
					perm[k] = k;
			} else if (json_is_string(ord) && strcmp(json_string_value(ord), "F") == 0) {
				for (int k = 0; k < ndim; k++)
					perm[k] = ndim - 1 - k;
			} else {
				if (!json_is_array(ord) || (int)json_array_size(ord) != ndim)
					return ab_error_set(AB_EFORMAT, "transpose: order must list %d axes", ndim);
				for (int k = 0; k < ndim; k++) {
					const json_t *v = json_array_get(ord, (size_t)k);
					json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
					if (x < 0 || x >= ndim || seen[x])
						return ab_error_set(AB_EFORMAT, "transpose: order is not a permutation");
					seen[x] = 1;
					perm[k] = (int)x;
				}
			}
			/* Compose with any earlier transpose. */
			int prev[AB_MAX_NDIM];
			uint64_t pshape[AB_MAX_NDIM];
			memcpy(prev, out->order, sizeof prev);
			memcpy(pshape, shape, sizeof pshape);
			for (int k = 0; k < ndim; k++) {
				out->order[k] = prev[perm[k]];
				shape[k] = pshape[perm[k]];
			}
			out->has_transpose = 0;
			for (int k = 0; k < ndim; k++)
				if (out->order[k] != k)
					out->has_transpose = 1;
			continue;
		}
		if (strcmp(name, "numcodecs.bitround") == 0 || strcmp(name, "bitround") == 0) {
			if (out->a2b)
				return ab_error_set(AB_EFORMAT, "%s must come before the array->bytes codec", name);
			if ((rc = check_bitround(name, cfg, dt, out)))
				return rc;
			continue;
		}
		if (strcmp(name, "bytes") == 0 || strcmp(name, "endian") == 0) {
			if (out->a2b)
				return ab_error_set(AB_EFORMAT, "more than one array->bytes codec");
			if (dt->str == AB_STR_VLEN)
				return ab_error_set(AB_EFORMAT, "data_type %s needs the %s codec, not bytes", dt->name,
						    dt->vlen_bytes ? "vlen-bytes" : "vlen-utf8");
			const char *e;
			if ((rc = cfg_str(cfg, "endian", "little", &e)))
				return rc;
			if (strcmp(e, "little") && strcmp(e, "big"))
				return ab_error_set(AB_EFORMAT, "bytes: endian '%s' is neither little nor big", e);
			out->big_endian = strcmp(e, "big") == 0;
			out->a2b = AB_A2B_BYTES;
			continue;
		}
		if (strcmp(name, "vlen-utf8") == 0 || strcmp(name, "vlen-bytes") == 0) {
			/* vlen-bytes has vlen-utf8's layout (zarr-extensions
			 * codecs/vlen-bytes; numcodecs VLenBytes) */
			int bytes = strcmp(name, "vlen-bytes") == 0;
			if (out->a2b)
				return ab_error_set(AB_EFORMAT, "more than one array->bytes codec");
			if (dt->str != AB_STR_VLEN || dt->vlen_bytes != bytes)
				return ab_error_set(AB_EFORMAT, "%s needs data_type %s", name,
						    bytes ? "variable_length_bytes" : "string");
			out->vlen_bytes = bytes;
			out->a2b = AB_A2B_VLEN;
			continue;
		}
		if (strcmp(name, "sharding_indexed") == 0) {
			if (out->a2b)
				return ab_error_set(AB_EFORMAT, "more than one array->bytes codec");
			out->a2b = AB_A2B_SHARD;
			if ((rc = parse_sharding(cfg, ndim, shape, dt, out)))
				return rc;
			continue;
		}
		ab_b2b_codec b;
		if (parse_b2b(name, cfg, 1, dt, &b, &rc)) {
			if (rc)
				return ab_error_prefix(rc, "codec %s: ", name);
			if (!out->a2b)
				return ab_error_set(AB_EFORMAT, "codec %s comes before the array->bytes codec", name);
			if (out->nb2b == AB_MAX_B2B)
				return ab_error_set(AB_EUNSUPPORTED, "too many codecs");
			out->b2b[out->nb2b++] = b;
			continue;
		}
		return ab_error_set(AB_EUNSUPPORTED, "unknown codec '%s'", name);
	}
	if (!out->a2b)
		return ab_error_set(AB_EFORMAT, "codecs lack an array->bytes codec (bytes, vlen-utf8 or sharding_indexed)");
	return 0;
}

int ab_pipeline_from_v2(const json_t *compressor, const json_t *filters, const char *order,
			int ndim, const ab_dtype_desc *dt, ab_pipeline *out)
{
	memset(out, 0, sizeof *out);
	out->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		out->order[i] = i;
	if (order && strcmp(order, "F") == 0) {
		for (int i = 0; i < ndim; i++)
			out->order[i] = ndim - 1 - i;
		out->has_transpose = ndim > 1;
	} else if (order && strcmp(order, "C") != 0) {
		return ab_error_set(AB_EFORMAT, "order '%s' is neither C nor F", order);
	}
	out->a2b = dt->str == AB_STR_VLEN ? AB_A2B_VLEN : AB_A2B_BYTES;
	out->big_endian = dt->big_endian;
	if (filters && !json_is_null(filters)) {
		if (!json_is_array(filters))
			return ab_error_set(AB_EFORMAT, "filters must be a list or null");
		size_t i;
		const json_t *f;
		json_array_foreach(filters, i, f) {
			const json_t *id = json_object_get(f, "id");
			const char *name = json_is_string(id) ? json_string_value(id) : "?";
			if (strcmp(name, "vlen-utf8") == 0 && dt->str == AB_STR_VLEN)
				continue;
			if (strcmp(name, "bitround") == 0) {
				int rc = check_bitround(name, f, dt, out);
				if (rc)
					return rc;
				continue;
			}
			return ab_error_set(AB_EUNSUPPORTED, "unsupported filter '%s'", name);
		}
	}
	if (compressor && !json_is_null(compressor)) {
		const json_t *id = json_object_get(compressor, "id");
		if (!json_is_string(id))
			return ab_error_set(AB_EFORMAT, "compressor lacks an id");
		int rc;
		const char *name = json_string_value(id);
		if (!parse_b2b(name, compressor, 0, dt, &out->b2b[0], &rc) || out->b2b[0].kind == AB_B2B_CRC32C)
			return ab_error_set(AB_EUNSUPPORTED, "unknown compressor '%s'", name);
		if (rc)
			return ab_error_prefix(rc, "compressor %s: ", name);
		out->nb2b = 1;
	}
	return 0;
}

void ab_pipeline_describe(const ab_pipeline *p, char *buf, size_t size)
{
	size_t n = 0;
#define APPEND(...) do { if (n < size) n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__); } while (0)
	buf[0] = '\0';
	if (p->bitround)
		APPEND("bitround(keepbits=%d) | ", p->bitround - 1);
	if (p->has_transpose) {
		APPEND("transpose(");
		for (int i = 0; i < p->ndim; i++)
			APPEND("%s%d", i ? "," : "", p->order[i]);
		APPEND(") | ");
	}
	if (p->a2b == AB_A2B_BYTES)
		APPEND("bytes(%s)", p->big_endian ? "big" : "little");
	else if (p->a2b == AB_A2B_VLEN)
		APPEND(p->vlen_bytes ? "vlen-bytes" : "vlen-utf8");
	else if (p->a2b == AB_A2B_SHARD) {
		char inner[256];
		ab_pipeline_describe(&p->shard->inner, inner, sizeof inner);
		APPEND("sharding_indexed(index=%s%s, inner: %s)", p->shard->index_at_start ? "start" : "end",
		       p->shard->index_crc32c ? "+crc32c" : "", inner);
	}
	for (int i = 0; i < p->nb2b; i++) {
		char d[128];
		ab_b2b_describe(&p->b2b[i], d, sizeof d);
		APPEND(" | %s", d);
	}
#undef APPEND
}

/* ------------------------------------------------------------ decoding */

uint64_t ab_pipeline_max_encoded(const ab_pipeline *p, int ndim, const uint64_t *shape, const ab_dtype_desc *dt)
{
	uint64_t n = 1, max;
	for (int i = 0; i < ndim; i++)
		if (ab_mul_u64(n, shape[i], &n))
			return UINT64_MAX;
	if (p->a2b == AB_A2B_VLEN || dt->str == AB_STR_VLEN)
		return UINT64_MAX;
	if (p->a2b == AB_A2B_SHARD) {
		const ab_shard_cfg *s = p->shard;
		if (s->inner_max_bytes == UINT64_MAX || ab_mul_u64(s->n_inner, s->inner_max_bytes, &max) ||
		    ab_add_u64(max, s->index_bytes, &max))
			return UINT64_MAX;
	} else if (ab_mul_u64(n, dt->disk_size, &max)) {
		return UINT64_MAX;
	}
	for (int i = 0; i < p->nb2b; i++) {
		uint64_t extra = p->b2b[i].kind == AB_B2B_CRC32C ? 4 : max / 4 + 4096;
		if (ab_add_u64(max, extra, &max))
			return UINT64_MAX;
	}
	return max;
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
