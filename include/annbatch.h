/*
 * annbatch.h - streaming shuffled mini-batches out of on-disk AnnData / zarr stores.
 *
 * This is the one public header of libannbatch. It is also the manual: every
 * function is described where it is declared.
 *
 * Conventions
 * -----------
 *  - Every function that can fail returns an `int`: 0 on success or a negative
 *    AB_E* code. On failure a human-readable message naming the file, the array and
 *    the chunk involved is left for ab_last_error() (per thread).
 *  - Every *_open has a *_close. Handles are opaque. There is no global mutable
 *    state: two stores opened twice are fully independent.
 *  - A store is only ever read. Nothing in the read API writes, creates or locks
 *    anything inside a store.
 *  - Numeric data handed to callers is in the host's byte order (little endian on
 *    every supported platform), C (row-major) order, whatever the on-disk order,
 *    endianness or codec chain.
 *  - An ab_store and the handles opened from it may be used from several threads
 *    only if the caller serialises the calls per handle (ab_array, ab_csr,
 *    ab_column each keep a reusable decode scratch area). Distinct handles can be
 *    used concurrently.
 *
 * Supported on disk
 * -----------------
 *  zarr v2 (.zarray/.zgroup/.zattrs, consolidated .zmetadata) and zarr v3
 *  (zarr.json, inline consolidated metadata); codecs bytes, transpose, blosc,
 *  zstd, lz4 (numcodecs framing), gzip, zlib, crc32c, vlen-utf8 and
 *  sharding_indexed; AnnData groups (X dense or csr_matrix, obs/var dataframes)
 *  and annbatch preshuffled collections.
 */
#ifndef ANNBATCH_H
#define ANNBATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* AB_API marks the functions of the public API: the only symbols
 * libannbatch.so exports (the library is built with -fvisibility=hidden;
 * tests/unit/test_symbols.sh checks that the two lists are the same). */
#if defined(__GNUC__) || defined(__clang__)
#define AB_API __attribute__((visibility("default")))
#else
#define AB_API
#endif

#define AB_VERSION_MAJOR 0
#define AB_VERSION_MINOR 1
#define AB_VERSION_PATCH 0
#define AB_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------- */
/* Errors                                                                    */
/* ------------------------------------------------------------------------- */

enum ab_status {
	AB_OK = 0,
	AB_EINVAL = -1,       /* bad argument from the caller (range, null, option)   */
	AB_ENOENT = -2,       /* node, file or column does not exist                  */
	AB_EIO = -3,          /* the operating system failed a read                   */
	AB_EFORMAT = -4,      /* malformed metadata or data (bad JSON, bad shape, ...) */
	AB_EUNSUPPORTED = -5, /* valid but not supported (unknown codec, csc rows, ...) */
	AB_ENOMEM = -6,       /* allocation failed                                    */
	AB_ECORRUPT = -7,     /* data does not decode: truncated, checksum, bad frame */
	AB_ERANGE = -8,       /* request outside the array                            */
	AB_ETYPE = -9,        /* the node is of another kind than the call expects    */
	AB_ESTALL = -10,      /* consumers hold every window's batches: none can come */
	AB_ECANCELED = -11    /* the caller's callback asked to stop                  */
};

/* The message left by the last failing call on this thread ("" if none). The
 * pointer stays valid until the next failing call on the same thread. */
AB_API const char *ab_last_error(void);

/* A short constant name for a status code ("AB_ECORRUPT: corrupt data"). */
AB_API const char *ab_strerror(int status);

/* ------------------------------------------------------------------------- */
/* Data types                                                                */
/* ------------------------------------------------------------------------- */

/* numpy datetime64 / timedelta64 arrays (v2 `<M8[ns]`, `<m8[s]`; v3
 * numpy.datetime64 / numpy.timedelta64) read as AB_DT_INT64: the counts of
 * their unit, NaT being INT64_MIN (a missing value in obs columns). v3
 * fixed_length_utf32 reads as a fixed-width `U` string, v3
 * variable_length_bytes (vlen-bytes) as variable-length strings. */
typedef enum ab_dtype {
	AB_DT_BOOL = 0,
	AB_DT_INT8, AB_DT_INT16, AB_DT_INT32, AB_DT_INT64,
	AB_DT_UINT8, AB_DT_UINT16, AB_DT_UINT32, AB_DT_UINT64,
	AB_DT_FLOAT16, AB_DT_FLOAT32, AB_DT_FLOAT64,
	AB_DT_COMPLEX64, AB_DT_COMPLEX128,
	AB_DT_STRING /* variable-length UTF-8 (v3 `string`, v2 `|O` + vlen-utf8) or
	                fixed-width `S`/`U` strings, both read as strings */
} ab_dtype;

/* Size in bytes of one item as handed to callers (0 for AB_DT_STRING). */
AB_API size_t ab_dtype_size(ab_dtype dt);
/* A stable lowercase name: "bool", "int8", ..., "float32", "string". */
AB_API const char *ab_dtype_name(ab_dtype dt);

/* Item i of an array of `dt` items (host byte order) as a double: bool 0/1,
 * integers and floats (float16 included) converted, complex: the real part;
 * NaN for strings, which have no numeric value; 0 when items is NULL. */
AB_API double ab_item_as_double(ab_dtype dt, const void *items, size_t i);

/* ------------------------------------------------------------------------- */
/* Stores and the hierarchy                                                  */
/* ------------------------------------------------------------------------- */

typedef struct ab_store ab_store;

/* Opens the zarr store rooted at the directory `path` (v2 or v3, detected). The
 * root metadata is read once; consolidated metadata, when present, answers every
 * later metadata lookup without touching the disk. A directory without root
 * metadata (no zarr.json, .zgroup or .zarray) that has subdirectories opens too,
 * as other zarr readers do: its arrays are then found by their paths, each
 * node's own metadata saying v2 or v3, and the root itself is not a node. */
AB_API int ab_store_open(const char *path, ab_store **out);
AB_API void ab_store_close(ab_store *store);

/* 2 or 3; 0 for a directory without root metadata. */
AB_API int ab_store_zarr_format(const ab_store *store);
/* The directory the store was opened on. */
AB_API const char *ab_store_path(const ab_store *store);

typedef enum ab_node_type { AB_NODE_GROUP = 1, AB_NODE_ARRAY = 2 } ab_node_type;

/* Node paths are relative to the store root, '/'-separated, without leading
 * slash: "" or "/" is the root, "X", "obs/cell_type", "X/data". */
AB_API int ab_node_type_of(ab_store *store, const char *node, ab_node_type *out);

/* The names of a group's direct children, sorted (dataset_N sorted by N). On
 * success *names is a NULL-terminated array freed with ab_strings_free. */
AB_API int ab_group_children(ab_store *store, const char *node, char ***names, size_t *count);
AB_API void ab_strings_free(char **strings);
/* Frees an array of `count` strings some of which may be NULL. */
AB_API void ab_strings_free_n(char **strings, size_t count);

/* A node's user attributes as compact JSON text ("{}" when none). Free with
 * ab_free. */
AB_API int ab_node_attributes(ab_store *store, const char *node, char **json);
/* Frees memory returned by the library (JSON text, buffers). */
AB_API void ab_free(void *p);

/* ------------------------------------------------------------------------- */
/* Arrays                                                                    */
/* ------------------------------------------------------------------------- */

typedef struct ab_array ab_array;

#define AB_MAX_NDIM 32

typedef struct ab_array_info {
	int zarr_format;                /* 2 or 3                                   */
	int ndim;
	uint64_t shape[AB_MAX_NDIM];
	uint64_t chunk_shape[AB_MAX_NDIM]; /* the unit of decoding (inner chunk)    */
	uint64_t shard_shape[AB_MAX_NDIM]; /* the file unit; == chunk_shape unsharded */
	int sharded;
	ab_dtype dtype;
	size_t itemsize;                /* bytes per item handed out (0: string)    */
	size_t fixed_string_width;      /* >0 for v2 `S`/`U` strings, in characters */
	const char *codecs;             /* human description, "blosc(lz4,3,shuffle)" */
	const char *dtype_on_disk;      /* "<f4", ">i2", "|O", "float32", "string",
	                                 * "datetime64[1ms]", "fixed_length_utf32[24]" */
} ab_array_info;

AB_API int ab_array_open(ab_store *store, const char *node, ab_array **out);
AB_API void ab_array_close(ab_array *array);
AB_API int ab_array_get_info(const ab_array *array, ab_array_info *info);

/* Number of items in one row (product of the shape of axes 1..ndim-1; 1 for a
 * 1-D array) and the rows count (shape[0]; 1 for a 0-d array). Both 0 for a
 * NULL array. */
AB_API uint64_t ab_array_row_items(const ab_array *array);
AB_API uint64_t ab_array_nrows(const ab_array *array);

/* Reads rows [row_start, row_end) along axis 0 and all of the other axes into
 * `dst` as C-order items in host byte order (bool: one byte, 0 or 1). `dst_size`
 * must be at least (row_end - row_start) * row_items * itemsize. Chunks that are
 * absent read as the fill value. A 0-d array has one row. Numeric arrays only. */
AB_API int ab_array_read_rows(ab_array *array, uint64_t row_start, uint64_t row_end,
		       void *dst, size_t dst_size);

/* Reads rows [row_start, row_end) of a string array (any rank, items in C order).
 * On success *strings is a NULL-terminated array of (row_end-row_start)*row_items
 * UTF-8 strings, freed with ab_strings_free. Fixed-width `S` items lose trailing
 * NUL bytes, `U` items (UCS-4) are converted to UTF-8. */
AB_API int ab_array_read_strings(ab_array *array, uint64_t row_start, uint64_t row_end,
			  char ***strings, size_t *count);

/* What the array occupies on disk: bytes of chunk (or shard) files, files present
 * and files the grid allows; for sharded arrays also inner chunks present (read
 * from every shard index) and the inner chunks the grid allows. */
typedef struct ab_array_storage {
	uint64_t bytes_on_disk;
	uint64_t files_present, files_total;
	uint64_t chunks_present, chunks_total;
} ab_array_storage;
AB_API int ab_array_get_storage(ab_array *array, ab_array_storage *out);

/* ------------------------------------------------------------------------- */
/* Sparse matrices (AnnData csr_matrix / csc_matrix groups)                  */
/* ------------------------------------------------------------------------- */

typedef struct ab_csr ab_csr;

typedef enum ab_sparse_format { AB_SPARSE_CSR = 1, AB_SPARSE_CSC = 2 } ab_sparse_format;

/* Opens a csr_matrix group (arrays data, indices, indptr; attribute shape). A
 * csc_matrix group opens too, so it can be inspected, but every row access on it
 * fails with AB_EUNSUPPORTED and a message saying so. The whole indptr is read
 * into memory on open (8 bytes per row). */
AB_API int ab_csr_open(ab_store *store, const char *node, ab_csr **out);
AB_API void ab_csr_close(ab_csr *csr);

typedef struct ab_csr_info {
	ab_sparse_format format;
	uint64_t n_rows, n_cols, nnz;
	ab_dtype data_dtype, indices_dtype, indptr_dtype;
} ab_csr_info;
AB_API int ab_csr_get_info(const ab_csr *csr, ab_csr_info *info);

/* The number of stored elements of rows [row_start, row_end). */
AB_API int ab_csr_nnz(const ab_csr *csr, uint64_t row_start, uint64_t row_end, uint64_t *nnz);

/* Reads rows [row_start, row_end): `indptr` gets n+1 offsets starting at 0,
 * `indices` gets the column of each element widened to int64 and checked to be
 * < n_cols, `data` gets the values in the data dtype (ab_csr_info.data_dtype).
 * Capacities are in elements. Any of the three outputs may be NULL. */
AB_API int ab_csr_read_rows(ab_csr *csr, uint64_t row_start, uint64_t row_end,
		     int64_t *indptr, size_t indptr_cap,
		     int64_t *indices, size_t indices_cap,
		     void *data, size_t data_cap);

/* Reads rows [row_start, row_end) as a dense row-major matrix of data dtype
 * items; `dst_size` in bytes. Duplicate column entries are summed as scipy
 * does when densifying. */
AB_API int ab_csr_read_dense(ab_csr *csr, uint64_t row_start, uint64_t row_end,
		      void *dst, size_t dst_size);

/* ------------------------------------------------------------------------- */
/* Dataframe columns (obs / var)                                             */
/* ------------------------------------------------------------------------- */

typedef struct ab_column ab_column;

typedef enum ab_column_kind {
	AB_COL_ARRAY = 1,           /* numeric or bool array                       */
	AB_COL_STRING,              /* string-array                                */
	AB_COL_CATEGORICAL,         /* codes + categories                          */
	AB_COL_NULLABLE_INTEGER,    /* values + mask                               */
	AB_COL_NULLABLE_BOOLEAN,    /* values + mask                               */
	AB_COL_NULLABLE_STRING      /* values + mask                               */
} ab_column_kind;

/* Opens a dataframe column (or any array / encoded group that looks like one)
 * at `node`, e.g. "obs/cell_type" or "obs/_index". */
AB_API int ab_column_open(ab_store *store, const char *node, ab_column **out);
AB_API void ab_column_close(ab_column *col);

typedef struct ab_column_info {
	ab_column_kind kind;
	uint64_t length;
	ab_dtype dtype;            /* values dtype; codes dtype for categoricals  */
	ab_dtype categories_dtype; /* categoricals only                           */
	uint64_t n_categories;     /* categoricals only                           */
	int ordered;               /* categoricals only                           */
} ab_column_info;
AB_API int ab_column_get_info(const ab_column *col, ab_column_info *info);

/* Numeric values (array, nullable kinds) or codes (categorical) of rows
 * [start, end) into dst, in the column's dtype. `mask`, when not NULL, receives
 * one byte per row: 1 where the value is missing (nullable mask, or categorical
 * code -1), else 0. */
AB_API int ab_column_read(ab_column *col, uint64_t start, uint64_t end,
		   void *dst, size_t dst_size, uint8_t *mask);

/* Strings of rows [start, end): string columns give their values; categoricals
 * give each row's label (NULL entry for a missing code); numeric categories are
 * formatted as JSON numbers. *count gets end-start. Missing entries are NULL,
 * so iterate with count and free with ab_strings_free_n. */
AB_API int ab_column_read_strings(ab_column *col, uint64_t start, uint64_t end,
			   char ***strings, size_t *count);

/* The categories of a categorical column as strings (numeric categories
 * formatted as JSON numbers). */
AB_API int ab_column_categories(ab_column *col, char ***strings, size_t *count);

/* ------------------------------------------------------------------------- */
/* AnnData                                                                   */
/* ------------------------------------------------------------------------- */

typedef struct ab_anndata ab_anndata;

typedef enum ab_x_kind { AB_X_DENSE = 1, AB_X_CSR, AB_X_CSC } ab_x_kind;

/* Opens the AnnData group at `node` ("" for the root). X must be an array or a
 * csr_matrix/csc_matrix group. */
AB_API int ab_anndata_open(ab_store *store, const char *node, ab_anndata **out);
/* Opens the AnnData at `path`: the root of a zarr v2 or v3 store, or an
 * .h5ad file (HDF5 as anndata writes it; recognised by its signature or its
 * .h5ad/.h5 name). Every ab_anndata_* and ab_column_* call below then works on
 * either kind, except ab_anndata_x_dense/x_csr, which are NULL for an .h5ad
 * (read X with ab_anndata_x_read_*). A library built without HDF5 refuses an
 * .h5ad with AB_EUNSUPPORTED ("built without HDF5"). */
AB_API int ab_anndata_open_path(const char *path, ab_anndata **out);
AB_API void ab_anndata_close(ab_anndata *ad);

typedef struct ab_anndata_info {
	uint64_t n_obs, n_vars;
	ab_x_kind x_kind;
	ab_dtype x_dtype;
	size_t n_obs_columns, n_var_columns;
} ab_anndata_info;
AB_API int ab_anndata_get_info(const ab_anndata *ad, ab_anndata_info *info);

/* The X of the AnnData: exactly one of the two is non-NULL. Owned by `ad`. */
AB_API ab_array *ab_anndata_x_dense(ab_anndata *ad);
AB_API ab_csr *ab_anndata_x_csr(ab_anndata *ad);

/* X rows [row_start, row_end) of either kind of input. CSR X: the stored
 * elements of the rows (ab_anndata_x_nnz), then indptr (row_end - row_start
 * + 1 items, from 0), indices widened to int64 (each checked < n_vars) and
 * data (nnz items of x_dtype). Dense X: row-major x_dtype items, dst_size
 * bytes at least. AB_ETYPE when X is of the other kind, AB_ERANGE past n_obs. */
AB_API int ab_anndata_x_nnz(const ab_anndata *ad, uint64_t row_start, uint64_t row_end, uint64_t *nnz);
AB_API int ab_anndata_x_read_csr(ab_anndata *ad, uint64_t row_start, uint64_t row_end, int64_t *indptr,
				 int64_t *indices, void *data);
AB_API int ab_anndata_x_read_dense(ab_anndata *ad, uint64_t row_start, uint64_t row_end, void *dst,
				   size_t dst_size);

/* Column names of obs / var in column-order. Owned by `ad`, NULL-terminated. */
AB_API const char *const *ab_anndata_obs_columns(const ab_anndata *ad);
AB_API const char *const *ab_anndata_var_columns(const ab_anndata *ad);
/* The obs column `name` ("_index" or the dataframe's _index attribute name
 * gives the row names); the returned column is owned by the caller. */
AB_API int ab_anndata_obs_column(ab_anndata *ad, const char *name, ab_column **out);
AB_API int ab_anndata_var_column(ab_anndata *ad, const char *name, ab_column **out);
/* Kind of an obs column without opening its data. */
AB_API int ab_anndata_obs_column_kind(ab_anndata *ad, const char *name, ab_column_kind *kind);

/* ------------------------------------------------------------------------- */
/* Collections (encoding-type annbatch-preshuffled)                          */
/* ------------------------------------------------------------------------- */

/* If `node` is an annbatch collection, fills *names with its datasets
 * (dataset_0, dataset_1, ... in numeric order) and returns 0; returns AB_ETYPE
 * if it is some other group. */
AB_API int ab_collection_datasets(ab_store *store, const char *node, char ***names, size_t *count);

/* ------------------------------------------------------------------------- */
/* The loader: shuffled mini-batches                                         */
/* ------------------------------------------------------------------------- */

/*
 * A loader streams batches of rows out of one or more datasets that share one
 * global row space (concatenated along axis 0, in the order they were added).
 * Each epoch the sampler picks contiguous chunks of `chunk_size` rows (in
 * random order with `shuffle`), loads `preload_nchunks` of them at once (a
 * window), permutes the window's rows in memory and cuts them into batches of
 * `batch_size`, exactly as the Python annbatch library does. Reads are
 * submitted in batches to io_uring (O_DIRECT by default, buffered where the
 * filesystem refuses it),
 * decoded on a worker pool, and handed to any number of consumer threads
 * through a bounded lock-free ring.
 *
 * Same seed, epoch and configuration give the same batches in the same order,
 * whatever the thread count, queue depth, backend or I/O mode.
 *
 * Memory has a ceiling: at most `max_windows` windows are planned, decoded or
 * held by unreleased batches at any time; the loader waits for consumers to
 * release batches before it reads further.
 */
typedef struct ab_loader ab_loader;
typedef struct ab_batch ab_batch;

typedef enum ab_io_mode {
	AB_IO_MODE_AUTO = 0,    /* direct when the data is larger than half of RAM */
	AB_IO_MODE_DIRECT,      /* O_DIRECT (falls back to buffered where refused) */
	AB_IO_MODE_BUFFERED
} ab_io_mode;

typedef enum ab_io_backend {
	AB_BACKEND_AUTO = 0,    /* io_uring, or the pread pool where it is refused */
	AB_BACKEND_URING,
	AB_BACKEND_PREAD
} ab_io_backend;

/* How a distributed run (world_size > 1) shares the rows among the ranks. */
typedef enum ab_rank_shards {
	/* Rank r always gets the same contiguous slice [r*n, (r+1)*n) with
	 * n = n_obs / world_size rounded down to whole batches, as the Python
	 * library's DistributedSampler does. Pitfall: a rank never sees rows
	 * outside its slice (on a collection grouped by class, whole classes),
	 * and the n_obs - world_size*n remainder rows are never served. */
	AB_RANK_SHARDS_FIXED = 0,
	/* Each epoch the full chunks of the mask are dealt to the ranks from
	 * (seed, epoch) alone (every rank computes the same deal): each rank gets
	 * floor(full chunks / world_size) whole chunks, the ranks' rows are
	 * disjoint and equal in number, and the rows left out (fewer than
	 * world_size + 1 chunks) are placed so that every row is served by some
	 * rank within any 2 consecutive epochs. The mask applies. Not with
	 * replacement, num_samples or class sampling. */
	AB_RANK_SHARDS_ROTATE = 1
} ab_rank_shards;

typedef struct ab_loader_config {
	/* sampling (defaults as in the Python library) */
	uint64_t chunk_size;       /* 512                                           */
	uint64_t preload_nchunks;  /* 32                                            */
	uint64_t batch_size;       /* 1                                             */
	int shuffle;               /* 0                                             */
	int drop_last;             /* 0                                             */
	int replacement;           /* 0                                             */
	uint64_t num_samples;      /* 0 = one epoch of the mask                     */
	uint64_t mask_start;       /* rows [mask_start, mask_stop)                  */
	uint64_t mask_stop;        /* 0 = all rows                                  */
	uint64_t seed;             /* 0                                             */
	int rank;                  /* -1 = from the environment (RANK, OMPI_..., SLURM_...) or 0;
	                            * other negative values are refused; a pair
	                            * set by half or empty in the environment, or
	                            * world_size > 1 with no rank, is an error   */
	int world_size;            /* -1 = from the environment, or 1 (0 = 1)       */
	/* output */
	int to_float32;            /* convert X values to float32                   */
	/* engine */
	ab_io_mode io_mode;        /* direct (O_DIRECT, buffered where refused)     */
	ab_io_backend backend;
	unsigned queue_depth;      /* reads in flight, 64                           */
	unsigned threads;          /* decode workers, 0 = number of CPUs            */
	unsigned max_windows;      /* windows in flight (memory ceiling), 3         */
	uint64_t start_batch;      /* resume an epoch after this many batches       */
	int whole_chunks;          /* 0: decode only the blosc blocks holding the
	                            * rows asked for, and read only those blocks of
	                            * a shard's chunk once its layout is known from
	                            * a whole read (at most 64 MiB of layouts are
	                            * kept); 1: always read and decode whole chunks
	                            * (for comparison: the batches are the same)   */
	ab_rank_shards rank_shards; /* distributed shares: fixed (default) or rotate */
	unsigned stall_ms;         /* a consumer waiting while every window's batches
	                            * are held by consumers, none released for this
	                            * long, gets AB_ESTALL; 0 = 10000 ms          */
	int indptr_int32;          /* 0: a sparse batch's indptr is int64
	                            * (ab_batch_view.indptr); 1: int32
	                            * (ab_batch_view.indptr32), the dtype of its
	                            * column indices, as torch's and jax's CSR
	                            * tensors want both (no copy needed). A batch
	                            * of more than INT32_MAX values cannot have
	                            * one: checked as each batch is assembled,
	                            * the epoch then fails with AB_EINVAL naming
	                            * the batch (batch_size * n_cols <= INT32_MAX
	                            * rules it out). No effect on dense data    */
} ab_loader_config;

/* Fills `cfg` with the defaults above. */
AB_API void ab_loader_config_init(ab_loader_config *cfg);

/* Creates a loader; `cfg` may be NULL for the defaults. AB_EINVAL (naming
 * the field) when io_mode or backend is not one of its enum's values.
 * Shard files are opened as reads need them and kept open up to a budget
 * derived from RLIMIT_NOFILE (raised to its hard limit at each start): past
 * it the least recently used file without a read in flight is closed, so a
 * store may have more shard files than the process may open. */
AB_API int ab_loader_create(const ab_loader_config *cfg, ab_loader **out);
/* Stops the threads (mid-epoch is fine) and frees everything. Batches still
 * held by consumers must be released before. */
AB_API void ab_loader_destroy(ab_loader *ld);

/* Adds the X of the AnnData store at `path` (its root), or every dataset of an
 * annbatch collection at `path` in order. */
AB_API int ab_loader_add_anndata(ab_loader *ld, const char *path);
/* Adds a raw array (rows on axis 0, any rank) of the store at `path`. */
AB_API int ab_loader_add_array(ab_loader *ld, const char *path, const char *node);
/* Adds in-memory data (not copied: it must outlive the loader, and stay
 * unchanged while an epoch runs, which includes the time after its last
 * batch, when the next epoch is read ahead: see ab_loader_start). */
AB_API int ab_loader_add_dense_memory(ab_loader *ld, const void *data, ab_dtype dtype, int ndim,
			       const uint64_t *shape);
AB_API int ab_loader_add_csr_memory(ab_loader *ld, const int64_t *indptr, const int64_t *indices,
			     const void *data, ab_dtype dtype, uint64_t n_rows, uint64_t n_cols);

/* Names obs columns to deliver with every batch (before ab_loader_start;
 * every dataset must have them). Each named column is read whole, once, into
 * memory (8 bytes a row) — only named columns are, as reading a whole obs table
 * can be slow. Numbers arrive as double (NaN where a nullable value is
 * missing); categorical and string columns as int32 codes into one label table
 * shared by all datasets (-1 where missing). "_index" names the obs names. */
AB_API int ab_loader_set_obs_columns(ab_loader *ld, const char *const *names, size_t n);

/* Class sampling: every batch comes from one class of the categorical obs
 * column `name`, the class drawn with probability proportional to its weight
 * (`weights` in the order of the column's categories; NULL = uniform; 0
 * excludes), with replacement, num_samples rows a pass (default: the mask's
 * rows). The data must be grouped by class on disk (annbatch convert
 * --groupby): a run of a class shorter than chunk_size is refused, naming it.
 * A weight that is not finite or is negative is refused here (AB_EINVAL, the
 * loader unchanged); weights that sum to 0 or overflow at ab_loader_start. A
 * class of weight 0 is never drawn. */
AB_API int ab_loader_set_class_column(ab_loader *ld, const char *name, const double *weights, size_t n_weights);

/* Where batches' X buffers (values, column indices, indptr) come from:
 * `alloc(size, ctx)` returns at least `size` bytes (NULL on failure) and
 * `free(p, size, ctx)` takes back what it returned, with the same size.
 * Both are called from the loader's worker threads, and `free` also from
 * ab_loader_destroy. Use it to put batches straight into memory a device
 * can copy from asynchronously (CUDA pinned host memory: cudaHostAlloc /
 * cudaFreeHost), so a training step's host-to-device copy needs no staging
 * copy. Set it before the first ab_loader_start; alloc and free both NULL
 * go back to malloc. The rest of a batch (row indices, obs) stays in
 * malloc'd memory. */
AB_API int ab_loader_set_allocator(ab_loader *ld, void *(*alloc)(size_t size, void *ctx),
				   void (*free)(void *p, size_t size, void *ctx), void *ctx);

/* Class sampling over classes given from memory instead of an obs column:
 * `codes[r]` is the class of global row r (0..n_labels-1, one a row of the
 * loader: n_rows must equal ab_loader_nrows at start), `labels` names the
 * classes (they appear in messages), `weights` as for
 * ab_loader_set_class_column (n_weights == n_labels, or NULL = uniform).
 * Everything is copied. A missing class (code -1) is refused: such rows
 * cannot be sampled. */
AB_API int ab_loader_set_class_codes(ab_loader *ld, const int32_t *codes, uint64_t n_rows, const char *const *labels,
			      size_t n_labels, const double *weights, size_t n_weights);

/* Class weights by label, after ab_loader_set_class_column (they replace the
 * weights given there; calling that again drops them): `weights[i]` is the
 * weight of the class labelled `labels[i]` (exact match). Classes not named
 * get `*rest` when `rest` is not NULL; with `rest` NULL every class of the
 * column must be named. Weights must be finite and >= 0 (0 excludes) and a
 * label may appear once: AB_EINVAL otherwise. The labels are matched when the
 * column is loaded (ab_loader_start or ab_loader_nbatches), which fails with
 * AB_EINVAL naming every label that is not a class of the column, or every
 * class left without a weight. */
AB_API int ab_loader_set_class_weights_by_label(ab_loader *ld, const char *const *labels, const double *weights, size_t n,
					 const double *rest);

/* The var names of the first dataset (its var index), freed with
 * ab_strings_free_n. */
AB_API int ab_loader_var_names(ab_loader *ld, char ***names, size_t *count);

/* Rows in the global row space, and batches of one epoch with this config. */
AB_API uint64_t ab_loader_nrows(const ab_loader *ld);
AB_API int ab_loader_nbatches(ab_loader *ld, uint64_t *nbatches);

/* Starts epoch `epoch` (the threads begin reading). Calling it again starts
 * another epoch; an unfinished one is stopped first.
 *
 * The first start makes the threads, the io_uring ring with its registered
 * buffers and file table, and opens the data files; they are kept for later
 * epochs (until ab_loader_destroy). Once every window of an epoch is planned,
 * the loader reads the next epoch (epoch + 1) ahead with the memory the
 * finished windows give back (max_windows still bounds it), and
 * ab_loader_start(epoch + 1) then finds its first batches ready: an epoch
 * run after another starts without waiting for a window's reads. Starting
 * any other epoch, ab_loader_stop, or a failure in the reading ahead drops
 * what was read ahead (a failure then comes back in its own epoch, if it is
 * still there); the batches are the same either way. */
AB_API int ab_loader_start(ab_loader *ld, uint64_t epoch);

/* Stops the running epoch (and the reading ahead of the next): reading
 * stops, batches not yet handed out are dropped, and every thread blocked in
 * ab_loader_next returns AB_END. Batches already handed out stay valid until
 * released. */
AB_API void ab_loader_stop(ab_loader *ld);

#define AB_END 1
#define AB_TIMEOUT 2
/* The next batch, in order. Blocks (without spinning) until one is ready.
 * Returns 0 with *batch set, AB_END when the epoch is over, or a negative error
 * (a read or decode failure, naming file and chunk). Thread-safe: any number of
 * threads may call it; each batch goes to exactly one of them.
 *
 * A loader has max_windows windows of memory. When consumers hold (have not
 * released) batches of every one of them, no new batch can be made; if that
 * lasts stall_ms with no release (a consumer keeping every batch, e.g. a
 * list of all batches), the waiting call returns AB_ESTALL with a message
 * rather than waiting forever. */
AB_API int ab_loader_next(ab_loader *ld, ab_batch **batch);
/* ab_loader_next waiting at most `timeout_ms` milliseconds (negative: no
 * limit): AB_TIMEOUT when no batch came in that time, the epoch still
 * running. Lets a caller look at other things (signals, a stop request)
 * between waits and call again. */
AB_API int ab_loader_next_timed(ab_loader *ld, ab_batch **batch, int64_t timeout_ms);
/* Hands a batch's memory back to the loader. */
AB_API void ab_batch_release(ab_batch *batch);

typedef struct ab_batch_obs {
	const char *name;
	int categorical;
	const double *values;      /* numeric: one per row (NaN = missing)          */
	const int32_t *codes;      /* categorical: one per row (-1 = missing)       */
	const char *const *labels; /* categorical: the label table                  */
	size_t n_labels;
} ab_batch_obs;

typedef struct ab_batch_view {
	uint64_t epoch;
	uint64_t index;            /* position of the batch in the epoch            */
	uint64_t nrows;
	ab_dtype dtype;            /* of the values                                  */
	int sparse;
	/* dense: nrows * row_items values, row-major */
	const void *data;
	uint64_t row_items;
	/* sparse (CSR): indptr[nrows+1] starting at 0 (int64, or NULL with
	 * indptr_int32: see indptr32 below), indices (int32) and values */
	const int64_t *indptr;
	const int32_t *indices;
	const void *values;
	uint64_t nnz;
	uint64_t n_cols;
	/* the global row index of each row */
	const uint64_t *rows;
	/* the obs columns named with ab_loader_set_obs_columns, in that order */
	size_t n_obs;
	const ab_batch_obs *obs;
	/* sparse with ab_loader_config.indptr_int32: indptr[nrows+1] as int32
	 * (and indptr is NULL); NULL otherwise */
	const int32_t *indptr32;
	/* sparse: 1 when the indices of every row strictly increase (sorted,
	 * no column twice), as scipy's has_sorted_indices and torch's CSR
	 * tensors expect; checked while the batch is cut, so a consumer need
	 * not check again. 0 for dense batches. */
	int indices_sorted;
} ab_batch_view;
AB_API int ab_batch_get_view(const ab_batch *batch, ab_batch_view *view);

/* Statistics accumulate from ab_loader_create (or the last reset) over every
 * epoch. */
typedef struct ab_loader_stats {
	uint64_t rows, batches;
	uint64_t bytes_read;       /* from disk, as issued (aligned for O_DIRECT)    */
	uint64_t bytes_decoded;
	uint64_t reads;            /* read requests issued                          */
	uint64_t reads_in_flight;  /* at the moment of the call                     */
	double read_lat_us[4];     /* p50, p90, p99, p99.9 of read completion time   */
	double wait_us[2];         /* p50, p99 of consumer wait in ab_loader_next,
	                              batches of an epoch's first window excepted */
	double first_wait_us[2];   /* p50, max of the waits for batches of an epoch's
	                              first window (kept apart: unless the epoch was
	                              read ahead, they include the whole first
	                              window's reads; the time to the first batch) */
	unsigned threads;          /* decode workers in use                         */
	int registered_buffers;    /* window read buffers registered with the ring
	                              (io_uring only: 0 with the pread pool); each
	                              is registered once its first window's reads
	                              are in, and the reads of the windows after
	                              it go into it as fixed buffers             */
	unsigned registered_files; /* most slots of the ring's file table in use
	                              (io_uring only: 0 with the pread pool)        */
	unsigned queue_depth;
	char backend[16];          /* "uring" or "pread"                            */
	char io_mode[16];          /* "direct" or "buffered"                        */
	char note[160];            /* why a fallback happened, if one did           */
} ab_loader_stats;
AB_API int ab_loader_get_stats(ab_loader *ld, ab_loader_stats *stats);
AB_API void ab_loader_reset_stats(ab_loader *ld);

/* ------------------------------------------------------------------------- */
/* Writing stores                                                            */
/* ------------------------------------------------------------------------- */

/*
 * A writer builds a new zarr store (v3 by default, or v2) in a hidden
 * temporary directory beside its final path, `.NAME.annbatch-tmp-PID`, and
 * moves it into place only in ab_writer_commit. A run that is killed or fails
 * leaves whatever was at the final path untouched; the next writer created
 * beside it removes temporary directories whose process is gone.
 *
 * Arrays are written row by row along axis 0 (appended), and are chunked
 * along axis 0 only: a chunk holds `chunk_rows` whole rows, a shard (v3)
 * `shard_rows` whole rows whose inner chunks follow one another in row order,
 * then the shard index (bytes little endian + crc32c) at the end of the file,
 * the layout zarr-python 3 writes. Memory per open array is one chunk (plus,
 * sharded, the index of the current shard).
 *
 * Metadata follows zarr-python 3 (v3: zarr.json per node and the whole
 * hierarchy again, inline, as consolidated metadata in the root zarr.json) or
 * zarr-python 2 (.zgroup/.zarray/.zattrs and a root .zmetadata). Parent groups
 * that were not declared are created with empty attributes.
 *
 * A writer and its arrays are used from one thread at a time.
 */
typedef struct ab_writer ab_writer;
typedef struct ab_writer_array ab_writer_array;

typedef enum ab_compressor {
	AB_COMPRESSOR_NONE = 0,
	AB_COMPRESSOR_BLOSC_LZ4,   /* blosc lz4, clevel 3, byte shuffle ("blosc-lz4") */
	AB_COMPRESSOR_BLOSC_ZSTD,  /* blosc zstd, clevel 3, byte shuffle ("blosc-zstd") */
	AB_COMPRESSOR_ZSTD,        /* zstd level 3, no checksum ("zstd")              */
	AB_COMPRESSOR_GZIP         /* gzip level 5 ("gzip")                           */
} ab_compressor;

/* "none", "blosc-lz4", "blosc-zstd", "zstd", "gzip" <-> the enum. */
AB_API int ab_compressor_parse(const char *name, ab_compressor *out);
AB_API const char *ab_compressor_name(ab_compressor c);

typedef struct ab_writer_config {
	int zarr_format;           /* 3 (default) or 2                              */
	int overwrite;             /* commit replaces an existing directory at the
	                              final path (atomically: the old tree is swapped
	                              out in one rename, then removed)               */
} ab_writer_config;
AB_API void ab_writer_config_init(ab_writer_config *cfg);

/* Starts a store that will appear at `path` on commit. Fails with AB_EINVAL if
 * `path` exists and cfg->overwrite is 0, AB_EIO if the temporary directory
 * cannot be made. `cfg` may be NULL for the defaults. */
AB_API int ab_writer_create(const char *path, const ab_writer_config *cfg, ab_writer **out);

/* The temporary directory the store is being written into (until commit). */
AB_API const char *ab_writer_tmp_path(const ab_writer *w);

/* Declares the group `node` ("" = the root) with its attributes (a JSON
 * object as text, NULL = {}). Declaring a group again replaces its
 * attributes. */
AB_API int ab_writer_group(ab_writer *w, const char *node, const char *attributes_json);

typedef struct ab_writer_array_config {
	ab_dtype dtype;            /* numeric, bool or AB_DT_STRING (vlen UTF-8)    */
	int ndim;                  /* >= 1                                          */
	uint64_t shape[AB_MAX_NDIM]; /* shape[0] is ignored: the rows appended decide */
	uint64_t chunk_rows;       /* rows per chunk (inner chunk when sharded), >=1 */
	uint64_t shard_rows;       /* rows per shard, a multiple of chunk_rows;
	                              0 = not sharded. v3 only                      */
	ab_compressor compressor;  /* applied to every (inner) chunk                */
	int level;                 /* -1 = the compressor's default level above     */
	size_t blosc_blocksize;    /* blosc: bytes per block asked of libblosc
	                              (0 = its own choice; libblosc 1 makes blocks
	                              of lz4 data at least 64 KiB). Smaller blocks
	                              let a reader decode less of a chunk for a few
	                              rows (ab_loader decodes only the blocks it
	                              needs), at some cost in compression ratio   */
	const char *attributes_json; /* NULL = {}                                   */
	int blosc_unsplit;         /* blosc: compress each block as one stream
	                              instead of one a byte plane (libblosc's
	                              BLOSC_NEVER_SPLIT), so blocks keep the size
	                              asked (split blocks of 2-16-byte items are
	                              at least 64 KiB). Any libblosc >= 1.11
	                              decodes both. libblosc 1 sets this mode
	                              for the whole process: while such frames
	                              are compressed, other blosc users of the
	                              process get it too (their frames stay
	                              valid), and libblosc's default mode
	                              (BLOSC_FORWARD_COMPAT_SPLIT) is set back
	                              after                                       */
} ab_writer_array_config;
/* Zeroes the config and sets ndim 1, chunk_rows 1, level -1, float32. */
AB_API void ab_writer_array_config_init(ab_writer_array_config *cfg);

/* Creates the array `node` (its parent groups as needed). Its metadata is
 * written when it is closed, with shape[0] = the rows appended. */
AB_API int ab_writer_array_create(ab_writer *w, const char *node, const ab_writer_array_config *cfg,
			   ab_writer_array **out);

/* Appends `nrows` rows: C-order items in host byte order (bool: one byte, 0
 * or 1), nrows * (product of shape[1..]) items. Full chunks are encoded and
 * written as they fill. */
AB_API int ab_writer_array_append(ab_writer_array *a, const void *rows, uint64_t nrows);
/* Appends `n` strings (UTF-8, NULL is written as "") to a string array; n is a
 * multiple of the items per row. */
AB_API int ab_writer_array_append_strings(ab_writer_array *a, const char *const *strings, uint64_t n);

/* Takes the subtree `node` of the existing zarr v3 store at `src_path` into
 * the new store unchanged, under the same node path: its files are hard-linked
 * (copied where links are refused) and its metadata joins the consolidated
 * metadata. This is how a collection grows without rewriting its datasets. */
AB_API int ab_writer_adopt(ab_writer *w, const char *src_path, const char *node);

/* Writes the last partial chunk (padded with the fill value: 0, false or ""),
 * the last shard's index and the array's metadata, and frees the handle,
 * whatever the result. */
AB_API int ab_writer_array_close(ab_writer_array *a);

/* Writes the root metadata with the consolidated metadata of every node,
 * flushes the file system, and moves the store to its final path. Every
 * array must have been closed. Frees `w` whatever the result; on failure the
 * temporary directory is removed and the final path is left as it was. */
AB_API int ab_writer_commit(ab_writer *w);
/* Drops the store: closes open arrays, removes the temporary directory,
 * frees `w`. */
AB_API void ab_writer_abort(ab_writer *w);

/* ------------------------------------------------------------------------- */
/* Writing AnnData                                                           */
/* ------------------------------------------------------------------------- */

/* AnnData nodes over a zarr writer, with the attributes anndata puts on each
 * (encoding-type, encoding-version, column-order, ...), so anndata and the
 * Python annbatch read what these write. These are what the collection
 * writer below uses; `annbatch synth` uses them too. */
typedef struct ab_anndata_write_config {
	ab_compressor compressor;  /* AB_COMPRESSOR_BLOSC_LZ4                     */
	int level;                 /* -1: the compressor's default (blosc 3)      */
	size_t blosc_blocksize;    /* bytes per blosc block; 0 = libblosc's choice */
	uint64_t n_obs_per_chunk;  /* rows per X chunk (dense), or the mean
	                            * non-zeros per chunk of data/indices; 64     */
	uint64_t shard_bytes;      /* bytes per shard; 0 = not sharded; 1 GB      */
	uint64_t shard_rows;       /* rows (observations) per shard instead of
	                            * bytes; 0 = by shard_bytes (the default)     */
	int blosc_unsplit;         /* blosc blocks as one stream each: see
	                            * ab_writer_array_config; 0                  */
} ab_anndata_write_config;
/* Sets the defaults above. */
AB_API void ab_anndata_write_config_init(ab_anndata_write_config *cfg);
/* Rows (or elements) per shard of an array chunked by `chunk_rows`, whose
 * rows are `row_bytes` bytes and hold `rows_per_obs` rows an observation (1
 * for X dense; the mean stored elements of a row for X/data and
 * X/indices): with shard_rows, shard_rows observations' worth rounded up to
 * whole chunks; else the largest multiple of chunk_rows within shard_bytes
 * (at least one chunk); 0 when not sharded. */
AB_API uint64_t ab_anndata_shard_rows(const ab_anndata_write_config *cfg, uint64_t chunk_rows,
				      uint64_t row_bytes, double rows_per_obs);

/* The AnnData group at `node` ("" = the root) and its empty companions
 * (layers, obsm, obsp, uns, varm, varp). */
AB_API int ab_writer_anndata_group(ab_writer *w, const char *node);
/* A dataframe group: index in "_index", columns in the given order. */
AB_API int ab_writer_dataframe_group(ab_writer *w, const char *node, const char *const *columns, size_t n);
/* A csr_matrix group's attributes (its data, indices, indptr are arrays). */
AB_API int ab_writer_csr_group(ab_writer *w, const char *node, uint64_t n_rows, uint64_t n_cols);
/* An array with the config's compressor, `chunk_rows` rows a chunk,
 * `shard_rows` a shard (0: unsharded) and the given attributes (JSON). */
AB_API int ab_writer_anndata_array(ab_writer *w, const char *node, ab_dtype dtype, int ndim,
				   const uint64_t *shape, uint64_t chunk_rows, uint64_t shard_rows,
				   const ab_anndata_write_config *cfg, const char *attributes_json,
				   ab_writer_array **out);
/* Whole 1-D columns in one call, one chunk (at most 2^20 rows a chunk),
 * unsharded, as anndata writes small frames. `encoding` is the
 * encoding-type attribute ("array", or NULL for none, as under X/). */
AB_API int ab_writer_numeric_column(ab_writer *w, const char *node, ab_dtype dtype, const void *values,
				    uint64_t n, const ab_anndata_write_config *cfg, const char *encoding);
AB_API int ab_writer_string_column(ab_writer *w, const char *node, const char *const *values, uint64_t n,
				   const ab_anndata_write_config *cfg);
/* A categorical group: int32 codes (-1 = missing), stored as anndata does in
 * the narrowest of int8/int16/int32 that holds them, and string categories. */
AB_API int ab_writer_categorical_column(ab_writer *w, const char *node, const int32_t *codes, uint64_t n,
					const char *const *categories, uint64_t n_categories, int ordered,
					const ab_anndata_write_config *cfg);

/* ------------------------------------------------------------------------- */
/* The collection writer: AnnData inputs into a preshuffled collection       */
/* ------------------------------------------------------------------------- */

/*
 * ab_collection_write builds (or grows) an annbatch collection: a zarr v3
 * group with encoding-type "annbatch-preshuffled" holding datasets
 * dataset_0, dataset_1, ..., each an AnnData group with X (csr_matrix, or
 * dense when every input is dense), obs (the chosen columns plus src_path,
 * the input each row came from) and var. It is what `annbatch convert` runs,
 * and the layout the Python annbatch writer makes.
 *
 * Inputs are paths to AnnData stores: zarr v2 or v3, or .h5ad files (see
 * ab_anndata_open_path), mixed freely. X must be dense or csr_matrix.
 *
 * The rows of all inputs, cut into blocks of shuffle_chunk_size contiguous
 * rows, are taken in a random order (seed) and split over ceil(total rows /
 * dataset size) datasets whose row counts differ by at most one; each
 * dataset's rows are then permuted (and, with groupby, stably
 * sorted by those obs columns, missing values last, as pandas), so a loader
 * reading contiguous chunks still sees well-mixed rows. The same inputs,
 * config and seed give the same bytes.
 *
 * The var space is the outer join of the inputs' var names in order of first
 * appearance (missing genes are 0), or the names of var_subset_path. Mixed X
 * dtypes are promoted as anndata's concat does (a note says so). Repeated var
 * names in an input are refused unless make_var_unique; repeated obs names
 * are made unique as obs_names_make_unique does (a note says how many).
 *
 * If `path` is an existing collection the inputs are added to it as new
 * datasets in its var space and X dtype: an input with genes the collection
 * lacks is refused (drop_new_genes drops them, with a note), and an X value
 * the collection's dtype cannot hold exactly stops the run.
 *
 * Nothing appears at `path` (or changes in it) until everything is written:
 * the collection is built under a hidden temporary name beside it and
 * renamed into place; any failure, or a stop asked by the progress callback
 * (AB_ECANCELED), removes the temporary directory and leaves `path` as it
 * was. The output may not be an input, lie inside one or hold one.
 *
 * Memory: a dataset is not built whole. Its obs columns, its rows' offsets
 * and its order are held (a few dozen bytes a row, more for long string
 * columns); its X rows only while they fit what `memory` (1 GiB by default)
 * leaves after that. Past it they go, as they are read, to a scratch file
 * beside `path`, unlinked as it is made (one dataset's X at a time: the file
 * system needs room for the collection plus one dataset), and come back in
 * the dataset's order as it is written. So datasets have the size asked and
 * `memory` bounds what the run holds; only a dataset whose per-row
 * bookkeeping alone would not fit is split into more, smaller datasets (a
 * note says so). The inputs' obs names are held while the run plans (making
 * them unique needs them all). The call runs helper threads: `threads`
 * workers read the inputs' X ahead, a few blocks of shuffle_chunk_size rows
 * at a time (decompressed, mapped into the var space, converted, and, for a
 * dataset bound for the scratch file, encoded for it; fewer workers when
 * their blocks would pass a quarter of `memory`, never none; what they
 * hold is taken out of what X may keep in memory); one thread does the
 * scratch file's reads and writes, a batch ahead; one encodes X/indices
 * beside X/data. An .h5ad is decompressed by libhdf5, which is not
 * thread-safe: one block at a time, the rest of the work beside it. The
 * bytes written do not depend on `threads`; the callbacks run on the
 * calling thread.
 *
 * Example (error handling shortened):
 *
 *     ab_collection_config cfg;
 *     ab_collection_config_init(&cfg);
 *     cfg.seed = 7;
 *     cfg.dataset_rows = 1000000;              // or dataset_bytes
 *     const char *groupby[] = { "cell_type" };
 *     cfg.groupby = groupby;
 *     cfg.n_groupby = 1;
 *     const char *inputs[] = { "a.h5ad", "b.zarr" };
 *     ab_collection_summary sum;
 *     if (ab_collection_write("cells.zarr", inputs, 2, &cfg, &sum) != 0)
 *             fprintf(stderr, "%s\n", ab_last_error());
 *     else
 *             printf("%llu rows in %llu datasets\n",
 *                    (unsigned long long)sum.rows,
 *                    (unsigned long long)sum.datasets_written);
 */
typedef struct ab_collection_progress {
	uint64_t rows_done, total_rows;   /* rows read so far / to write in all    */
	uint64_t bytes_read;              /* bytes of X read from the inputs      */
	uint64_t datasets_done, n_datasets;
	double elapsed_s;                 /* since the first row was read         */
	int final;                        /* 1 on the last call, all rows written */
} ab_collection_progress;

typedef struct ab_collection_config {
	const char *var_subset_path;     /* a file of var names, one a line, kept in
	                                  * that order (a UTF-8 BOM and spaces around
	                                  * names dropped, with a note); names in no
	                                  * input are an error; NULL: the outer join */
	int make_var_unique;             /* rename repeated var names of an input
	                                  * NAME-1, NAME-2 (var_names_make_unique)   */
	int drop_new_genes;              /* adding: drop the genes the collection
	                                  * lacks instead of refusing the input     */
	const char *const *obs_columns;  /* obs columns to keep; NULL: those in every
	                                  * input (n_obs_columns 0 with a non-NULL
	                                  * list: none)                              */
	size_t n_obs_columns;
	int shuffle;                     /* 1: shuffled blocks and permuted rows    */
	uint64_t shuffle_chunk_size;     /* rows per contiguous block, 1000         */
	uint64_t dataset_rows;           /* rows per dataset; 0: by dataset_bytes   */
	uint64_t dataset_bytes;          /* bytes of X per dataset, 20 GB           */
	uint64_t seed;                   /* 0                                       */
	const char *const *groupby;      /* obs columns (or "src_path") each dataset
	                                  * is sorted by, stable; NULL: none        */
	size_t n_groupby;
	ab_anndata_write_config write;   /* chunks, shards and codecs of the output */
	uint64_t memory;                 /* bytes the run may hold in memory; 0:
	                                  * 1 GiB (see "Memory" above)              */
	/* Called after every block read and every few thousand rows written;
	 * a non-zero return stops the run (AB_ECANCELED, `path` untouched). NULL:
	 * none. Called on the calling thread. */
	int (*progress)(const ab_collection_progress *p, void *ctx);
	/* Notes worth telling a user (dtype promotion, names made unique, genes
	 * dropped), one sentence each without a trailing newline. NULL: dropped. */
	void (*note)(const char *message, void *ctx);
	void *ctx;                       /* passed to both callbacks               */
	unsigned threads;                /* workers reading the inputs' X ahead
	                                  * (see "Memory" above); 0: one per CPU,
	                                  * 1: none, X is read on the calling
	                                  * thread. The same bytes for any number   */
} ab_collection_config;
/* The blosc blocks a collection is written with unless asked otherwise:
 * 16 KiB, each one stream (blosc_unsplit). */
#define AB_COLLECTION_BLOSC_BLOCKSIZE 16384
/* Sets the defaults above (write: ab_anndata_write_config_init's, except
 * blosc_blocksize, AB_COLLECTION_BLOSC_BLOCKSIZE, and blosc_unsplit, 1). */
AB_API void ab_collection_config_init(ab_collection_config *cfg);

typedef struct ab_collection_summary {
	uint64_t datasets_written;       /* by this call                            */
	uint64_t first_dataset;          /* the first one's number (adding: > 0)   */
	uint64_t rows, n_vars;           /* written by this call; the var space     */
	ab_dtype x_dtype;
	ab_x_kind x_kind;                /* AB_X_CSR or AB_X_DENSE                  */
	uint64_t bytes_on_disk;          /* of the whole collection                 */
	double seconds;
} ab_collection_summary;

/* Writes (or adds to) the collection at `path` from `n_inputs` input paths;
 * `cfg` NULL means the defaults; `summary` may be NULL. 0, or an AB_E* code
 * with ab_last_error() naming the input, column or row at fault. */
AB_API int ab_collection_write(const char *path, const char *const *inputs, size_t n_inputs,
			       const ab_collection_config *cfg, ab_collection_summary *summary);

/* ------------------------------------------------------------------------- */
/* Random streams                                                            */
/* ------------------------------------------------------------------------- */

/* The deterministic generator behind the collection writer's block order and
 * permutations (xoshiro256** seeded through SplitMix64): the same (seed,
 * stream) gives the same numbers on every platform, so a shuffle can be
 * reproduced outside the library. Not for cryptography. */
typedef struct ab_rng { uint64_t s[4]; } ab_rng;
/* Seeds `r` for stream `stream` of `seed` (streams are independent). */
AB_API void ab_rng_seed(ab_rng *r, uint64_t seed, uint64_t stream);
AB_API uint64_t ab_rng_next(ab_rng *r);
/* Uniform in [0, n), without modulo bias (0 when n is 0). */
AB_API uint64_t ab_rng_below(ab_rng *r, uint64_t n);
/* Fisher-Yates shuffle of n items, from the last one down. */
AB_API void ab_rng_shuffle(ab_rng *r, uint64_t *a, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif /* ANNBATCH_H */
