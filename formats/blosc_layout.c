/*
 * blosc_layout.c - the block layout of blosc frames, for reading frames in
 * part (see blosc_layout.h; the frame format is described in
 * codec_blosc.c).
 */
#include "blosc_layout.h"

#include <blosc.h>
#include <stdlib.h>

#include "codec_impl.h"

#define HDR AB_BLOSC_HDR

/* The layout of a frame of frame_len bytes from its first `avail` bytes
 * (avail >= 16). */
static int layout_from(const uint8_t *s, size_t avail, size_t frame_len, ab_blosc_layout *out)
{
	ab_blosc_header h;
	memset(out, 0, sizeof *out);
	/* the header's fields are checked against the frame's length; only its
	 * 16 bytes are read */
	int rc = ab_blosc_header_read(s, frame_len, &h);
	if (rc < 0)
		return rc;
	if ((h.flags & BLOSC_MEMCPYED) || h.version != BLOSC_VERSION_FORMAT || h.nbytes == 0)
		return AB_BLOSC_NO_PART;
	uint32_t nblocks = h.nbytes / h.blocksize + (h.nbytes % h.blocksize ? 1 : 0);
	if ((uint64_t)HDR + 4 * (uint64_t)nblocks > avail)
		return avail >= frame_len ? ab_error_set(AB_ECORRUPT, "blosc: block table past the frame's end")
					  : AB_LAYOUT_SHORT;
	uint32_t *start = malloc(sizeof *start * ((size_t)nblocks + 1));
	if (!start)
		return ab_error_set(AB_ENOMEM, "out of memory");
	/* Only frames whose blocks follow each other in block order: block j is
	 * then exactly the bytes up to block j + 1 (libblosc writes them so when
	 * it compresses with one thread, as numcodecs and this library do). */
	for (uint32_t j = 0; j < nblocks; j++) {
		start[j] = ab_load_le32(s + HDR + 4 * (size_t)j);
		if (j && start[j] <= start[j - 1]) {
			free(start);
			return AB_BLOSC_NO_PART;
		}
	}
	start[nblocks] = h.cbytes;
	if (start[nblocks - 1] >= h.cbytes) {
		free(start);
		return AB_BLOSC_NO_PART;
	}
	memcpy(out->head, s, HDR);
	out->nbytes = h.nbytes;
	out->blocksize = h.blocksize;
	out->typesize = h.typesize;
	out->nblocks = nblocks;
	out->start = start;
	return 0;
}

int ab_blosc_layout_read(const void *src, size_t srclen, ab_blosc_layout *out)
{
	if (srclen < HDR) {
		memset(out, 0, sizeof *out);
		return ab_error_set(AB_ECORRUPT, "blosc: frame truncated: %zu bytes, the header alone is %d", srclen,
				    HDR);
	}
	return layout_from(src, srclen, srclen, out);
}

int ab_blosc_layout_read_head(const void *head, size_t avail, size_t frame_len, ab_blosc_layout *out)
{
	if (avail < HDR || frame_len < HDR) {
		memset(out, 0, sizeof *out);
		return frame_len < HDR ? ab_error_set(AB_ECORRUPT, "blosc: frame of %zu bytes, the header alone is %d",
						      frame_len, HDR)
				       : AB_LAYOUT_SHORT;
	}
	return layout_from(head, avail < frame_len ? avail : frame_len, frame_len, out);
}

void ab_blosc_layout_free(ab_blosc_layout *l)
{
	free(l->start);
	l->start = NULL;
}

size_t ab_blosc_layout_memory(const ab_blosc_layout *l)
{
	return sizeof *l + sizeof(uint32_t) * (l->nblocks + 1);
}

int ab_blosc_layout_span(const ab_blosc_layout *l, uint64_t frame_len, size_t itemsize, uint64_t lo,
			 uint64_t hi, ab_blosc_span *span)
{
	/* the layout must describe these bytes, and every range asked of the
	 * smaller frame must fall on its items */
	if (l->start[l->nblocks] != frame_len || !itemsize || itemsize % l->typesize || l->blocksize % itemsize)
		return 0;
	if (hi <= lo || hi > l->nbytes)
		return 0;
	uint64_t b0 = lo / l->blocksize, b1 = (hi - 1) / l->blocksize;
	/* a frame may not be smaller than its block size: the shorter last
	 * block never goes alone */
	if (b0 == b1 && b1 + 1 == l->nblocks && l->nbytes % l->blocksize && b0 > 0)
		b0--;
	if (b0 == 0 && b1 + 1 == l->nblocks)
		return 0; /* every block: read the frame as it is */
	span->b0 = (uint32_t)b0;
	span->b1 = (uint32_t)b1;
	span->hdr = AB_BLOSC_SUBFRAME_HDR(span->b0, span->b1);
	span->offset = l->start[b0];
	span->length = l->start[b1 + 1] - l->start[b0];
	return 1;
}

size_t ab_blosc_subframe_header(const ab_blosc_layout *l, uint32_t b0, uint32_t b1, uint8_t *hdr)
{
	uint32_t k = b1 - b0 + 1, hlen = HDR + 4 * k;
	uint32_t data = l->start[b1 + 1] - l->start[b0];
	uint64_t end = (uint64_t)(b1 + 1) * l->blocksize;
	uint32_t nbytes = (uint32_t)((end < l->nbytes ? end : l->nbytes) - (uint64_t)b0 * l->blocksize);
	memcpy(hdr, l->head, HDR);
	ab_store_le32(hdr + 4, nbytes);
	ab_store_le32(hdr + 12, hlen + data);
	for (uint32_t j = 0; j < k; j++)
		ab_store_le32(hdr + HDR + 4 * j, hlen + (l->start[b0 + j] - l->start[b0]));
	return (size_t)hlen + data;
}

void ab_blosc_span_items(const ab_blosc_layout *l, uint32_t b0, uint32_t b1, size_t itemsize,
			 uint64_t *item0, uint64_t *nitems)
{
	uint64_t end = (uint64_t)(b1 + 1) * l->blocksize;
	*item0 = (uint64_t)b0 * l->blocksize / itemsize;
	*nitems = (end < l->nbytes ? end : l->nbytes) / itemsize - *item0;
}
