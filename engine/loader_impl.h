/*
 * loader_impl.h - the loader's internal structures (internal).
 *
 * The path of a batch:
 *   sampler window -> plan (rows -> decode units -> coalesced reads, fds;
 *   a unit whose blosc block layout is known is narrowed to its blocks)
 *   -> I/O backend (event-loop thread) -> decode task (worker pool)
 *   -> window complete -> assembly into batches -> in-order publication
 *   -> lock-free ring -> ab_loader_next in any consumer thread.
 * A window holds a credit from the moment it is planned until its last batch
 * is released; at most max_windows credits exist, which bounds memory.
 */
#ifndef AB_ENGINE_LOADER_IMPL_H
#define AB_ENGINE_LOADER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "annbatch.h"
#include "array.h"
#include "blosc_layout.h"
#include "codec.h"
#include "hist.h"
#include "io.h"
#include "obs.h"
#include "ring.h"
#include "sampler.h"
#include "sources.h"
#include "sparse.h"


/* One destination of a decoded unit: rows [src_row, src_row + nrows) of the
 * unit (unit-local, axis 0) go to rows starting at dst_row of a stream. */
typedef struct ld_copy {
	uint64_t src_row, nrows, dst_row;
} ld_copy;

enum { STREAM_VALUES = 0, STREAM_INDICES = 1 };

/* Where a window row goes: batch `batch` of the window (UINT32_MAX: none,
 * a row drop_last leaves out), from item `at` of the batch's arrays (CSR:
 * its first value; dense: its row). */
typedef struct ld_dst {
	uint32_t batch;
	uint64_t at;
} ld_dst;

typedef struct ld_unit {
	ab_array *arr;
	int stream;
	uint64_t coord[AB_MAX_NDIM];
	uint64_t lin;             /* linear unit index (for sorting)            */
	int present;
	uint64_t file_lin, offset, length;
	size_t copy_first, ncopies;
	uint64_t read_off;        /* where the unit's bytes start in its read    */
	/* read in part: only blosc blocks b0..b1 of the frame (offset and
	 * length above are theirs); the worker writes the header of a frame
	 * of those blocks (hdr bytes) just before them in the read buffer */
	int part;
	uint32_t b0, b1, hdr;
	const struct ab_blosc_layout *lay;
} ld_unit;

/* The block layouts of blosc frames already read whole, by (array, unit):
 * later reads of the unit fetch only the blocks they need. An entry with
 * lay == NULL marks a frame that cannot be read in part. */
typedef struct ld_layout_entry {
	const ab_array *arr;
	uint64_t lin;
	struct ab_blosc_layout *lay;
	int used;
} ld_layout_entry;

struct ld_window;
struct ld_read;

/* A unit of work for the decode pool: one read's units, or (read == NULL) a
 * window's absent units. Embedded in its read / window: no allocation. */
typedef struct ld_task {
	struct ld_read *read;
	struct ld_window *win;
	struct ld_task *next;
	int assemble;             /* cut batch `batch` of the complete window  */
	int prefault;             /* fault in the window's fresh batch buffers   */
	size_t batch;
} ld_task;

typedef struct ld_read {
	ld_task task;
	ab_io_req req;
	struct ld_window *win;
	int fd;
	int own_fd;               /* an unsharded chunk file: opened at
	                           * submission, closed at completion          */
	int shard;                /* a shard file's: fd taken at submission    */
	long fd_slot;             /* shard file: its ld->fds slot, pinned from
	                           * submission to completion (-1: none)       */
	uint64_t need;            /* bytes from req.offset that must be present  */
	size_t unit_first, nunits;
} ld_read;

typedef struct ld_window {
	struct ab_loader *ld;
	ab_window w;
	uint64_t epoch;
	uint64_t gen;             /* the ab_loader_start call it belongs to   */
	uint64_t *rows;           /* global row of each window row              */
	int64_t *indptr;          /* CSR: nrows + 1, the rows in window order   */
	ld_dst *dst;              /* where each window row goes (scatter.c)     */
	size_t rows_cap, indptr_cap, dst_cap;  /* (kept across reuse)          */
	uint64_t nnz;
	/* plan */
	ld_copy *copies;
	size_t ncopies, cap_copies;
	ld_unit *units;
	size_t nunits, cap_units;
	ld_read *reads;
	size_t nreads, cap_reads, next_submit;
	void *arena;              /* the reads' buffers (kept across reuse)     */
	size_t arena_size;
	size_t arena_used;        /* bytes of it reads have used so far         */
	size_t reads_done;        /* reads reaped (event loop)                  */
	int reg_due;              /* reads done, registration put off until the
	                           * first batch is out                        */
	int slot;                 /* registered buffer slot of this window, or -1 */
	atomic_size_t tasks_left;
	ld_task fill_task;
	ld_task prefault_task;
	int prefault;             /* its batches' buffers grew: a prefault task
	                           * is due with its first read (counted in
	                           * tasks_left until pushed)                   */
	size_t skip;              /* leading batches not published (resume)    */
	/* batches: taken, sized and placed when the window is planned */
	struct ab_batch **batches;
	size_t nbatches, batches_cap;
	int own_batches;          /* not yet cut and handed on: window_put
	                           * gives them back                           */
	ld_task *asm_tasks;       /* one a batch: cut by the workers in parallel */
	size_t asm_tasks_cap;     /* (bytes)                                     */
	atomic_size_t asm_left;   /* batches not yet cut                         */
	atomic_int asm_failed;
	atomic_uint refs;         /* unreleased batches (+1 while assembling)    */
	size_t published;         /* batches of it handed to the ring           */
	atomic_size_t handed;     /* of those, taken by consumers               */
	atomic_int held;          /* all taken, some unreleased (counted in
	                           * held_windows)                              */
	struct ld_window *next;
} ld_window;

struct ab_batch {
	struct ab_loader *ld;
	ld_window *win;
	uint64_t epoch, index, nrows, nnz;
	void *data;
	size_t data_cap;
	void *indptr;             /* int64_t, or int32_t with cfg.indptr_int32  */
	size_t indptr_cap;
	int32_t *indices;
	size_t indices_cap;
	int indices_sorted;       /* every row's indices strictly increase      */
	atomic_int unsorted;      /* a decode worker saw a row's indices not
	                           * increase (scatter.c)                      */
	uint64_t *rows;
	size_t rows_cap;
	void *obs_buf;            /* obs values / codes of the batch's rows     */
	size_t obs_cap;
	ab_batch_obs *obs;        /* one view per selected column               */
	struct ab_batch *next_free;
};

/* An epoch as the event loop plans it: its windows come from `sampler`, and
 * every window planned for it carries `gen`. */
typedef struct ld_epoch {
	ab_sampler *sampler;
	uint64_t epoch;
	uint64_t gen;
	size_t nwindows;
	size_t first_window;      /* resume: windows before it are skipped     */
	size_t first_skip;        /* and batches skipped in the first one      */
} ld_epoch;

/* The next epoch, read ahead while the consumers finish the current one. */
enum { SPEC_NONE = 0, SPEC_ACTIVE, SPEC_FAILED };

typedef struct ld_fd_slot {
	const ab_array *arr;  /* NULL: the slot is free (its file was closed)   */
	uint64_t lin;
	int fd;
	unsigned fixed;       /* registered file slot + 1, or 0               */
	unsigned pins;        /* planned reads not yet completed: while any,
	                       * the file must stay open                       */
	uint64_t last_use;    /* ld->fd_clock at the last read planned on it   */
} ld_fd_slot;

struct ab_loader {
	ab_loader_config cfg;
	ld_source *src;
	size_t nsrc, cap_src;
	uint64_t nrows;
	int sparse;
	ab_dtype out_dtype;
	size_t out_isz;
	uint64_t row_items;         /* dense: items per row                    */
	uint64_t trailing[AB_MAX_NDIM];
	int ndim;
	uint64_t n_cols;            /* sparse                                  */
	/* obs columns delivered with batches, and the class column */
	char **obs_names;
	size_t n_obs_names;
	ld_obs_col *obs;            /* loaded at the first start                 */
	char *class_name;
	double *class_w;
	size_t n_class_w;
	ld_obs_col class_col;
	struct {
		void *(*alloc)(size_t size, void *ctx);
		void (*free)(void *p, size_t size, void *ctx);
		void *ctx;
	} alloc;                    /* batch X buffers, or malloc when NULL    */
	uint64_t indptr32_max;      /* values an int32 indptr may index:
	                             * INT32_MAX (lowered by a unit test to reach
	                             * the refusal without 2^31 values)        */
	int class_loaded;
	uint64_t class_rows;        /* rows of classes given from memory, or 0  */
	ld_label_weights class_wl;  /* weights by label, resolved at load    */
	/* epoch state: the current epoch (written under mu, by the API only) */
	ab_sampler *sampler;
	uint64_t epoch;
	uint64_t gen;               /* the current epoch's: every ab_loader_start
	                             * gives a new one                         */
	uint64_t gen_seq;           /* the last gen given out                    */
	size_t nwindows;
	atomic_int running;
	/* The threads and the I/O backend live from the first start to
	 * ab_loader_destroy: an epoch start reuses the ring, its registered
	 * buffers and file table, the open files and the workers. */
	int threads_up;
	pthread_t io_thread;
	pthread_t *workers;
	unsigned nworkers;
	ab_io *io;
	int io_kind;                /* what the backend was made from: kept     */
	int io_force_pread;         /* while these stay the same                */
	char io_fault[256];
	const char *io_why;         /* its fallback reason (static), or NULL    */
	int direct_asked;           /* the I/O mode the open files were opened for */
	ab_ring *ring;
	/* shared state, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* credits, errors, epochs (the event loop waits) */
	pthread_cond_t task_cv;     /* decode tasks (the workers wait)            */
	pthread_cond_t idle_cv;     /* the event loop and the workers fell idle   */
	int io_go;                  /* the event loop: run the current epoch      */
	int io_busy;                /* the event loop is running epochs           */
	int io_quit;
	unsigned tasks_busy;        /* decode tasks being run                     */
	/* The next epoch, planned ahead with the credits the current one no
	 * longer needs once all its windows are planned; its finished windows
	 * wait in spec_parked. ab_loader_start(epoch + 1) adopts it, with the
	 * same sampler configuration (spec_sc); anything else drops it. */
	int spec_state;             /* SPEC_*                                     */
	int spec_allowed;
	ab_sampler_config spec_sc;
	ld_epoch spec;
	unsigned spec_planned;      /* its windows planned (each holds a credit)  */
	ld_window *spec_parked;
	unsigned credits;
	unsigned held_windows;      /* windows of this epoch whose batches are all
	                             * with consumers (a stall when it reaches
	                             * max_windows)                            */
	uint64_t stalled_at;        /* when held_windows reached max_windows, or 0 */
	ld_task *task_head, *task_tail;
	int workers_quit;
	size_t first_window;        /* resume: windows before it are skipped     */
	size_t first_skip;          /* and batches skipped in the first one      */
	size_t next_publish;        /* of the current epoch                       */
	atomic_int first_hold;      /* a start's first window is read alone until
	                             * its batches are out (event_loop.c)       */
	ld_window *parked;
	ab_batch *free_batches;
	ld_window *free_windows;
	atomic_int stop;
	atomic_int error;
	char errmsg[1024];
	/* files */
	ld_fd_slot *fds;
	size_t nfds, cap_fds;
	size_t fd_budget;           /* data files open at most (from
	                             * RLIMIT_NOFILE); past it the least
	                             * recently used unpinned shard file is
	                             * closed, or a read waits for another   */
	size_t fds_open;
	size_t own_open;            /* unsharded chunk files open for reads in
	                             * flight (they count against the budget)  */
	uint64_t fd_clock;
	int direct;                 /* open data files with O_DIRECT             */
	uint32_t align;             /* O_DIRECT alignment (1 when buffered)       */
	char note[160];
	char backend_name[16];      /* of the last epoch (kept after a stop)     */
	/* registered read buffers, one slot per window struct (read_buffers.c):
	 * what each slot holds (NULL: empty), written by the event loop */
	void **slot_buf;
	size_t *slot_len;
	size_t reg_size;            /* a slot's arena size                     */
	unsigned reg_slots;         /* slots in the ring's table (0: none)     */
	unsigned slots_used;        /* of those, given to window structs       */
	int reg_tried;              /* the table was made for this backend     */
	int reg_off;                /* a registration was refused: no more     */
	atomic_uint reg_count;      /* slots holding a buffer (stats)          */
	unsigned file_slots;        /* registered file table size (0: none)      */
	unsigned registered_files;  /* high-water mark, for the stats            */
	int files_tried;
	/* stats */
	_Atomic uint64_t st_rows, st_batches, st_bytes_read, st_bytes_decoded, st_reads;
	_Atomic uint64_t st_epoch_batches, st_inflight;
	ab_hist read_lat, wait_lat;
	ab_hist first_lat;          /* waits for batches of a start's first window */
	/* frame headers read ahead (probe.c, event loop) */
	void *probe_buf;
	size_t probe_cap;
	void *probe_reqs;
	size_t probe_reqs_cap;
	/* block layouts (workers add, the event loop looks up), under lay_mu */
	pthread_mutex_t lay_mu;
	ld_layout_entry *lay_tab;   /* open addressing, lay_cap a power of two   */
	size_t lay_cap, lay_n, lay_bytes;
};


/* ------------------------------------------------------------ between the stages
 * Functions one stage file defines and another calls (internal: the library
 * is built with hidden visibility). */

/* sources.c: the sources */
void source_free(ld_source *s);
void free_obs(ab_loader *ld);

/* files.c: the file table */
int read_fd(ab_loader *ld, ld_read *r);
/* event_loop.c: puts a task at the head (front) or the tail of the
 * workers' queue and wakes one */
void queue_task(ab_loader *ld, ld_task *t, int front);
int unit_fd(ab_loader *ld, const ld_unit *u, int *fd, unsigned *fixed, long *slot);
void fd_unpin_slot(ab_loader *ld, long slot);
/* probe.c: the block layouts of a window's frames, read ahead */
int probe_layouts(ab_loader *ld, ld_window *w);
void fd_unpin(ab_loader *ld, ld_read *r);
void fd_close_all(ab_loader *ld);
size_t fd_budget(size_t ours);

/* plan.c: planning (and the buffers it sizes) */
void window_put(ab_loader *ld, ld_window *w);
int plan_window(ab_loader *ld, const ld_epoch *ep, size_t index, ld_window **out);
void layout_learn(ab_loader *ld, const ab_array *arr, uint64_t lin, const uint8_t *frame, size_t len,
		  size_t frame_len);
int layout_known(ab_loader *ld, const ab_array *arr, uint64_t lin);
void free_x(ab_loader *ld, void *p, size_t cap);
int ensure_x(ab_loader *ld, void **p, size_t *cap, size_t need);
int ensure(void **p, size_t *cap, size_t need);
int array_partial(const ab_loader *ld, const ab_array *arr);

/* scatter.c: rows straight to their batches */
int plan_batches(ab_loader *ld, ld_window *w);
void window_drop_batches(ab_loader *ld, ld_window *w);
/* Faults in the window's batch buffers (a worker's prefault task). */
void prefault_batches(ab_loader *ld, ld_window *w);
/* Items [pos, pos + n) of a window stream (STREAM_*), n items of `from` at
 * src (indices: int32, checked), converted into their batches. */
void scatter_items(ab_loader *ld, ld_window *w, int stream, uint64_t pos, ab_dtype from, const void *src,
		   uint64_t n);
/* Rows [src_row, src_row + nrows) of a decoded N-d unit (out dtype, shape
 * src_shape) to window rows from dst_row: the box of trailing offsets col_off
 * and sizes cnt of each. */
void scatter_box(ab_loader *ld, ld_window *w, int nd, const uint8_t *src, const uint64_t *src_shape,
		 uint64_t src_row, uint64_t dst_row, uint64_t nrows, const uint64_t *col_off, const uint64_t *cnt);
/* Marks the batches whose rows' indices do not increase across the seams
 * where a row's values continue from one unit into the next (the decode
 * workers check the rest); called once the window is decoded. */
void check_seams(ab_loader *ld, ld_window *w);
/* Orders the worker's streaming stores of scatter_items before what it
 * publishes next (the end of a decode task). */
void scatter_fence(void);
/* Rows [a, b) of an in-memory source to window rows from dst_row. */
void scatter_memory_rows(ab_loader *ld, ld_window *w, const ld_source *s, uint64_t a, uint64_t b,
			 uint64_t dst_row);
/* read_buffers.c: the windows' read buffers and their registration */
uint8_t *window_arena(ab_loader *ld, ld_window *w, size_t arena, int *index);
void slot_register(ab_loader *ld, ld_window *w);
void populate(void *p, size_t len);

/* decode.c: decoding (the worker threads) */
void unit_where(const ld_unit *u, char *buf, size_t size);
void *worker_main(void *arg);

/* assemble.c: batches */
void window_complete(ab_loader *ld, ld_window *w);
void assemble_task(ab_loader *ld, ld_task *t);
void release_window_ref(ab_loader *ld, ld_window *w);
void batch_recycle(ab_loader *ld, ab_batch *b);
int publish_parked_locked(ab_loader *ld);

/* event_loop.c: the I/O thread */
void *io_main(void *arg);

/* loader.c: the API */
void post_error(ab_loader *ld, int code, const char *msg);
void post_error_locked(ab_loader *ld, int code, const char *msg);
int sampler_config(ab_loader *ld, uint64_t epoch, ab_sampler_config *sc);
int first_position(const ab_sampler *s, uint64_t start_batch, size_t *window, size_t *skip);

/* epoch.c: epochs and the threads kept across them */
void post_window_error(ab_loader *ld, uint64_t gen, int code, const char *msg);
int window_dead(ab_loader *ld, const ld_window *w);
int spec_begin(ab_loader *ld, ld_epoch *ep);
void stop_epoch(ab_loader *ld);
void stop_threads(ab_loader *ld);

#endif
