/* pipeline.c - codec chains of zarr v2 and v3 arrays: parsing their JSON into
 * an ab_pipeline, describing it, bounding what it can encode to (the decoding
 * is in chunk_decode.c). */
#include "pipeline.h"
#include "last_error.h"

#include <stdlib.h>
#include <string.h>

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
