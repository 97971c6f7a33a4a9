/*
 * collection_impl.h - what the collection writer's files share (internal):
 * the plan of a run (inputs, output var space, columns), a dataset being
 * written (its obs in memory, its X rows in a scratch file), and the
 * functions one part calls in another.
 *
 * The parts, in the order a run takes them (collection.c drives them):
 *   collection_inputs.c   open the inputs, var space (outer join, subset,
 *                         names made unique), obs names
 *   collection_columns.c  which obs columns are written and how; var columns
 *                         kept as anndata's concat(merge="same")
 *   collection_read.c     a dataset's obs read block by block; its ordering
 *   collection_convert.c  a block of X read and converted (any thread), then
 *                         staged in its dataset
 *   collection_ahead.c    the blocks of X read and converted ahead, on worker
 *                         threads, handed back in order
 *   collection_spill.c    the scratch file a dataset's X rows wait in
 *   collection_write.c    a dataset written as an AnnData group
 *   collection.c          the public calls, the run, blocks and datasets
 */
#ifndef AB_ENGINE_COLLECTION_IMPL_H
#define AB_ENGINE_COLLECTION_IMPL_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>

#include "annbatch.h"
#include "last_error.h"
#include "strtab.h"
#include "value.h"

/* --memory when the caller gives 0 */
#define CW_DEFAULT_MEMORY ((uint64_t)1 << 30)

/* the plan                                                                  */
/* ------------------------------------------------------------------------- */

typedef enum { OC_NUMERIC = 1, OC_STRING, OC_CATEGORICAL } ocol_kind;

typedef struct ocol {
	char *name;
	ocol_kind kind;
	ab_dtype dtype;          /* numeric */
	ab_strtab cats;             /* categorical: the union of categories */
	int ordered;
} ocol;

/* A var column kept for the output (anndata's concat merge="same"): its
 * value for every output var. */
typedef struct vcol {
	char *name;
	ocol_kind kind;
	ab_dtype dtype;          /* numeric */
	void *num;               /* numeric: n_vars items */
	uint8_t *set;            /* which vars some input gave a value */
	char **str;              /* string/categorical: n_vars labels (NULL = missing) */
	char **cats;             /* categorical: the inputs' categories */
	size_t n_cats;
	int32_t *codes;          /* categorical: n_vars codes */
	int ordered;
} vcol;

typedef struct input {
	const char *path;
	ab_anndata *ad;          /* a zarr store or an .h5ad file */
	ab_anndata_info info;
	int64_t *colmap;         /* input var -> output var, -1 = dropped */
	int monotonic;           /* colmap keeps the order of kept columns */
	int identity;            /* colmap[j] == j for every column, none dropped */
	ab_column **obs;         /* per output column */
	ab_column *names;        /* obs/_index */
	uint64_t row0;           /* its first row in the concatenation */
	uint64_t vars_dropped;   /* var names not in a fixed var space */
	uint64_t values_dropped; /* their non-zero values, counted as read */
	int check_cast;          /* adding: X values checked to fit the collection's dtype */
	int32_t **catmap;        /* per output column of a categorical input column:
	                          * its codes to the output's (built when first read) */
} input;

typedef struct block { uint32_t in; uint64_t start, end; } block;

/* One step of a run: rows [b.start, b.end) of input b.in become rows row0..
 * of dataset k. The blocks in their order cut into datasets (a block may
 * straddle two) give the run's pieces, planned before anything is read, so
 * that they can be read ahead. `encode`: the dataset is expected to go to
 * the scratch file, so the piece is encoded for it where it is converted. */
typedef struct piece { block b; uint64_t k, row0; int encode; } piece;

/* A piece's X as read and converted for the output (collection_convert.c),
 * and, when asked, encoded for the scratch file (collection_spill.c). The
 * buffers keep their capacity from piece to piece. */
typedef struct xblock {
	uint64_t nr;             /* rows */
	uint64_t nnz;            /* sparse: entries kept */
	uint64_t *len;           /* sparse: entries of each row */
	int32_t *idx;            /* sparse: output columns, row after row */
	void *val;               /* sparse: their values; dense: whole output rows */
	int encoded;             /* z holds the rows (val and idx do not count) */
	uint8_t *z;              /* the rows encoded, one after the other */
	uint64_t zbytes;
	uint64_t *zlen;          /* bytes of each encoded row */
	uint64_t values_dropped; /* non-zero values in columns the output lacks */
	uint64_t bytes_in;       /* bytes of X read */
	void *raw;               /* the rows as read from the input */
	uint64_t rawcap, lencap, idxcap, valcap, zcap, zlencap;
} xblock;
typedef struct conv {
	/* options */
	const char *out;
	const ab_collection_config *cfg; /* the caller's, for its callbacks and lists */
	const char *var_subset;  /* cfg->var_subset_path */
	int shuffle;
	uint64_t chunk_size;     /* shuffle chunk */
	uint64_t ds_rows, ds_bytes;
	uint64_t seed;
	uint64_t memory;
	/* the scratch file a dataset's X rows are spilled to (collection_spill.c) */
	int spill_fd;            /* -1 until the first dataset */
	uint64_t spill_bytes;    /* written for the current dataset */
	struct cw_spill *spill;  /* its thread and buffers */
	double row_mem, fixed_mem; /* memory a dataset takes a row, and once */
	double row_x;            /* staged X a row (an estimate) */
	uint64_t x_hold;         /* bytes of staged X a dataset may keep in memory */
	int make_var_unique;     /* rename duplicate var names as anndata does */
	int drop_new_genes;      /* adding: drop genes the collection lacks */
	ab_anndata_write_config o;
	/* inputs and output space */
	input *in;
	size_t n_in;
	ab_strtab vars;
	uint64_t n_vars;
	int sparse;
	ab_dtype x_dtype;
	ocol *cols;
	size_t n_cols;
	vcol *vcols;             /* var columns every input agrees on */
	size_t n_vcols;
	int *groupby;            /* indices into cols */
	size_t n_groupby;
	uint64_t first_dataset;  /* when adding to a collection */
	int adding;
	/* Every input's obs names, made unique, in the order of the inputs'
	 * concatenation: read once while planning (uniqueness needs them all)
	 * and kept, so that a block's names are not decoded again from a string
	 * chunk that may hold the whole column; a row's name moves to its
	 * dataset when the row is read. The first obs_skip entries were an
	 * existing collection's (freed). */
	char **obs_all;
	uint64_t obs_skip, obs_got;
	/* progress */
	uint64_t total_rows, rows_done, bytes_in;
	uint64_t n_datasets, datasets_done;
	double t0, last_report;
	int stop;                /* the progress callback asked to stop */
	/* reading X: worker threads (collection_ahead.c) */
	unsigned threads;        /* cfg->threads, 0 resolved to the CPUs */
	struct cw_ahead *ahead;
	uint64_t ahead_bytes;    /* memory they hold, at most (an estimate) */
	pthread_mutex_t h5_lock; /* every libhdf5 call of the run, on any thread */
} conv;

/* One dataset being written. Its obs columns are held whole (a few bytes a
 * row); its X only while it fits: the rows read are staged in indices/data
 * (sparse) or data (dense), and when the staging outgrows c->x_hold it is
 * spilled to the scratch file (stream order) and emptied. When the dataset
 * is written, each row comes from the file (rows before staged_row0) or the
 * staging, in the dataset's order. Of spilled X only indptr stays, the
 * offsets of the rows in the file. */
typedef struct dset {
	uint64_t n;
	int64_t *indptr;         /* sparse: n + 1, non-zeros before each row */
	int32_t *indices;        /* sparse: the staged block's column indices */
	void *data;              /* the staged block: sparse values, or dense rows */
	uint64_t nnz;            /* sparse: non-zeros so far (spilled and staged) */
	uint64_t nnz0;           /* sparse: non-zeros before the staged block */
	uint64_t cap;            /* sparse: items indices and data can hold */
	uint64_t dcap;           /* dense: bytes data can hold */
	uint64_t staged_row0;    /* the first row staged; the rows before are spilled */
	uint64_t *zoff;          /* spilled rows: n + 1 offsets of each (compressed)
	                          * row in the scratch file */
	void **colnum;           /* numeric columns: n items */
	int32_t **colcode;       /* categorical: codes */
	char ***colstr;          /* string columns */
	int32_t *src;
	char **obs_names;
} dset;

/* ---- numeric items (the X and obs values that move between dtypes;
 * value.h converts) */

/* Copies item si of src (dtype sd) to item di of dst (dtype dd). */
static inline void copy_item(ab_dtype dd, void *dst, size_t di, ab_dtype sd, const void *src, size_t si,
			     size_t isz)
{
	if (dd == sd)
		memcpy((uint8_t *)dst + di * isz, (const uint8_t *)src + si * isz, isz);
	else
		ab_value_store_double(dd, dst, di, ab_value_as_double(sd, src, si));
}

/* Whether item i is zero (a value a sparse X does not store); -0.0 is. */
static inline int is_zero(ab_dtype dt, const void *p, size_t i, size_t isz)
{
	static const uint8_t zero[16];
	if (dt == AB_DT_FLOAT32)
		return ((const float *)p)[i] == 0.0f;
	if (dt == AB_DT_FLOAT64)
		return ((const double *)p)[i] == 0.0;
	return memcmp((const uint8_t *)p + i * isz, zero, isz) == 0;
}

/* ---- failures, notes and progress (collection.c) */

/* Sets the run's error message (as ab_error_set, AB_EINVAL) from fmt with
 * one or two string arguments; returns the status. */
int cw_fail(conv *c, const char *fmt, const char *a, const char *b);
int cw_oom(void);
/* A library failure reading or writing `what` (a path): its message,
 * prefixed with `what` unless it starts with it; running out of file
 * descriptors gets a message saying what to do. */
int cw_fail_lib(conv *c, int rc, const char *what);
/* A note for the caller (cfg->note); dropped without a callback. */
void cw_note(conv *c, const char *fmt, ...) AB_PRINTF(2, 3);
/* Reports progress (cfg->progress); sets c->stop when the callback asks. */
void cw_progress(conv *c, int final);
/* Grows *p (capacity *cap items of isz bytes) to hold need items. */
int cw_grow(void **p, uint64_t *cap, uint64_t need, size_t isz);

/* ---- collection_inputs.c */

/* anndata's make_index_unique; see there. */
int cw_make_unique(char **names, uint64_t n, int rename, uint64_t *renamed, ab_strtab *dup_out,
		   uint64_t **idx_out);
/* Up to `max` names of t, comma-separated, into buf. */
void cw_name_list(const ab_strtab *t, size_t max, char *buf, size_t len);
int cw_is_nullable_num(const ab_column_info *ci);
int cw_load_var_subset(conv *c);
int cw_open_inputs(conv *c, const char *const *paths, size_t n, int fixed_vars);
int cw_plan_obs_names(conv *c, ab_store *old);

/* ---- collection_columns.c */

int cw_plan_columns(conv *c);
int cw_plan_var_columns(conv *c);
int cw_collection_var_columns(conv *c, ab_anndata *ad);
void cw_vcol_free(conv *c, vcol *v);

/* ---- collection_read.c */

int cw_dset_alloc(conv *c, dset *d, uint64_t n);
void cw_dset_free(conv *c, dset *d);
int cw_read_block_obs(conv *c, dset *d, const block *b, uint64_t row0, void **scratch, uint64_t *scap);
typedef struct sort_ctx { conv *c; dset *d; } sort_ctx;
/* Stable sort of a permutation by the groupby columns. */
void cw_merge_sort(uint64_t *a, uint64_t *tmp, uint64_t n, sort_ctx *s);

/* ---- collection_convert.c */

/* Reads the rows of b (input in, through handle ad: in->ad or a reader of
 * it) into x->raw. Touches nothing of c: any thread may call it with its
 * own handle and xblock (an .h5ad's with c->h5_lock held). */
int cw_read_raw(const conv *c, const input *in, ab_anndata *ad, const block *b, xblock *x);
/* Converts what cw_read_raw read into the output's var space and dtype
 * (x->len/idx/val); a value the collection's dtype cannot hold is an error
 * naming its row. Any thread. */
int cw_convert_raw(const conv *c, const input *in, const block *b, xblock *x);
/* Appends a converted piece to the staging of dataset d as its rows row0..;
 * counts it (c->bytes_in, in->values_dropped). The calling thread's. */
int cw_stage_block(conv *c, dset *d, input *in, const xblock *x, uint64_t row0);
void cw_xblock_free(xblock *x);

/* ---- collection_ahead.c */

/* Starts reading the run's pieces ahead: c->threads workers (none for one
 * thread: then each piece is read when asked for, on the calling thread). */
int cw_ahead_start(conv *c, const piece *pieces, uint64_t n);
/* The next piece in order, read and converted (and encoded if it asks);
 * valid until cw_ahead_release. A failure reading it is returned here, with
 * its message, in the order of the pieces whatever the thread that met it. */
int cw_ahead_next(conv *c, xblock **x);
void cw_ahead_release(conv *c);
/* Stops the workers (each finishes the piece it reads) and frees them. */
void cw_ahead_stop(conv *c);
/* Serialises a call into libhdf5 on this thread with the workers' reads
 * (a no-op for zarr inputs). */
void cw_h5_lock(conv *c, const input *in);
void cw_h5_unlock(conv *c, const input *in);

/* ---- collection_spill.c */

/* Readies the scratch file for a new dataset (emptied; its thread started
 * the first time). The file itself is made at the first spill, beside the
 * output and unlinked, so that nothing of it outlives the run. */
int cw_spill_begin(conv *c);
/* After rows up to row_end are staged: when the staging has outgrown
 * c->x_hold, hands it to the scratch file's thread to write and empties it. */
int cw_spill_block(conv *c, dset *d, uint64_t row_end);
/* The X rows of output rows i0 .. (returned) *i1 (dataset rows perm[i], or
 * i without perm), as many as fit a batch (at least one); *rows points at
 * them, valid until the next call: sparse, each row's int32 indices then
 * its values; dense, whole rows. The next batch is read ahead meanwhile. */
int cw_spill_read(conv *c, const dset *d, const uint64_t *perm, uint64_t i0, uint64_t *i1,
		  const uint8_t **rows);
/* Encodes the rows of a converted piece for the scratch file (x->z, zlen).
 * Any thread. */
int cw_spill_encode(const conv *c, xblock *x);
/* Appends an encoded piece to the scratch file as rows row0.. of d (after
 * spilling whatever d has staged): the file's thread writes it, taking
 * x->z and leaving an empty buffer in its place. */
int cw_spill_put(conv *c, dset *d, input *in, xblock *x, uint64_t row0);
/* Waits for the scratch file's thread (a read ahead), before the dataset
 * it reads is freed. */
void cw_spill_end(conv *c);
void cw_spill_close(conv *c);

/* ---- collection_write.c */

int cw_write_dataset(conv *c, ab_writer *w, dset *d, const uint64_t *perm, uint64_t k);

#endif
