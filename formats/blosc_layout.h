/*
 * blosc_layout.h - reading part of a blosc frame from disk (internal).
 *
 * A blosc frame is cut into blocks of `blocksize` decoded bytes, each
 * shuffled and compressed on its own, with a table of where each block's
 * bytes start (codec_blosc.c describes the frame). The layout of a frame
 * (its header and that table) is taken from one whole frame; a later reader
 * that needs only some decoded bytes asks which blocks hold them
 * (ab_blosc_layout_span), reads only the bytes of those blocks, and writes,
 * just before them, the header of a smaller frame that holds exactly those
 * blocks (ab_blosc_subframe_header): an ordinary blosc frame, validated and
 * decoded like any other, whose decoded bytes are [b0 * blocksize,
 * min(nbytes, (b1 + 1) * blocksize)) of the whole frame's
 * (ab_blosc_span_items). Block contents are untouched, so the decoder
 * handles a block as it would in the whole frame (a last, shorter block
 * stays last).
 *
 * The loader keeps the layouts of the frames it has read whole, or whose
 * headers it read ahead (engine/probe.c), and reads units in part (engine/plan.c chooses, engine/decode.c
 * decodes).
 */
#ifndef AB_FORMATS_BLOSC_LAYOUT_H
#define AB_FORMATS_BLOSC_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ab_blosc_layout {
	uint8_t head[16];        /* the frame's header, verbatim                */
	uint32_t nbytes, blocksize, typesize, nblocks;
	uint32_t *start;         /* nblocks + 1 entries: block j is the bytes
	                          * [start[j], start[j + 1]) of the frame        */
} ab_blosc_layout;

/* Reads the layout of a frame (validated as ab_b2b_decode validates it).
 * Returns 0; AB_NO_PART when the frame cannot be read in part (stored raw,
 * an older frame format, blocks not in block order); or a negative status. */
int ab_blosc_layout_read(const void *src, size_t srclen, ab_blosc_layout *out);
/* The same from the first `avail` bytes of a frame of frame_len bytes (its
 * header and block table, 16 + 4 bytes a block), for a reader that learns
 * layouts before reading the frames; AB_LAYOUT_SHORT when the table goes
 * past `avail`. */
#define AB_LAYOUT_SHORT 2
int ab_blosc_layout_read_head(const void *head, size_t avail, size_t frame_len, ab_blosc_layout *out);
void ab_blosc_layout_free(ab_blosc_layout *l);
/* Bytes a layout holds in memory, itself included (for caches that bound
 * what they keep). */
size_t ab_blosc_layout_memory(const ab_blosc_layout *l);

/* Blocks b0..b1 of a frame, read as a smaller frame of their own. */
typedef struct ab_blosc_span {
	uint32_t b0, b1;
	uint32_t hdr;            /* header bytes of the smaller frame, written
	                          * just before the blocks' bytes             */
	uint64_t offset, length; /* the blocks' bytes in the frame: offset is
	                          * start[b0], length start[b1 + 1] - start[b0] */
} ab_blosc_span;

/* Which blocks hold decoded bytes [lo, hi) of a frame of `frame_len` bytes
 * with layout l, when they are read as a smaller frame that decodes to whole
 * items of `itemsize` bytes. Returns 1 and fills *span; or 0 when the whole
 * frame is to be read instead: the layout is not of a frame of frame_len
 * bytes, the items do not fall on the frame's shuffle typesize or blocks,
 * [lo, hi) is empty or goes past the decoded size, or it needs every block.
 * A lone shorter last block is never chosen (a frame cannot be smaller than
 * its block size): the block before it comes along. */
int ab_blosc_layout_span(const ab_blosc_layout *l, uint64_t frame_len, size_t itemsize, uint64_t lo,
			 uint64_t hi, ab_blosc_span *span);

/* Bytes of the header of a frame of blocks b0..b1: 16 + 4 (b1 - b0 + 1). */
#define AB_BLOSC_SUBFRAME_HDR(b0, b1) (16u + 4u * ((b1) - (b0) + 1u))
/* Writes that header at hdr; the blocks' bytes must follow it. Returns the
 * length of the whole smaller frame (header + blocks). b0 <= b1 < nblocks. */
size_t ab_blosc_subframe_header(const ab_blosc_layout *l, uint32_t b0, uint32_t b1, uint8_t *hdr);

/* The items of `itemsize` bytes that the smaller frame of blocks b0..b1
 * decodes to: items [*item0, *item0 + *nitems) of the whole frame's (the
 * span's blocks start and end on items, see ab_blosc_layout_span). */
void ab_blosc_span_items(const ab_blosc_layout *l, uint32_t b0, uint32_t b1, size_t itemsize,
			 uint64_t *item0, uint64_t *nitems);

#endif
