/* event_loop.c - the I/O thread: plans windows while credits allow, submits
 * reads in batches, reaps completions and hands them to the workers. */
#include "loader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "last_error.h"

/* ------------------------------------------------------------ the event loop */

void queue_task(ab_loader *ld, ld_task *t, int front)
{
	pthread_mutex_lock(&ld->mu);
	if (front) {
		t->next = ld->task_head;
		ld->task_head = t;
		if (!ld->task_tail)
			ld->task_tail = t;
	} else {
		t->next = NULL;
		if (ld->task_tail)
			ld->task_tail->next = t;
		else
			ld->task_head = t;
		ld->task_tail = t;
	}
	pthread_cond_signal(&ld->task_cv);
	pthread_mutex_unlock(&ld->mu);
}

static void push_task(ab_loader *ld, ld_read *r, ld_window *w)
{
	ld_task *t = r ? &r->task : &w->fill_task;
	t->read = r;
	t->win = w;
	t->assemble = 0;
	t->prefault = 0;
	queue_task(ld, t, 0);
}

static void handle_completion(ab_loader *ld, ab_io_req *req)
{
	ld_read *r = req->user;
	ld_window *w = r->win;
	fd_unpin(ld, r); /* the kernel is done with the file */
	if (r->own_fd && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
		ld->own_open--;
	}
	atomic_fetch_add_explicit(&ld->st_bytes_read, req->len, memory_order_relaxed);
	/* The window's reads are all in: its arena is in memory now, and can
	 * be registered cheaply for the windows that reuse it; while an
	 * epoch's first batch is awaited, not before it is out (the few ms
	 * would be taken from the decode on the same cores). */
	if (++w->reads_done == w->nreads) {
		if (atomic_load(&ld->first_hold))
			w->reg_due = 1;
		else
			slot_register(ld, w);
	}
	ab_hist_record(&ld->read_lat, req->complete_ns > req->submit_ns ? req->complete_ns - req->submit_ns : 0);
	if (req->result < 0 || (uint64_t)req->result < r->need) {
		char where[1024];
		unit_where(&w->units[r->unit_first], where, sizeof where);
		char msg[1400];
		if (req->result < 0)
			snprintf(msg, sizeof msg, "%s: read of %u bytes at offset %llu failed: %s", where, req->len,
				 (unsigned long long)req->offset, strerror((int)-req->result));
		else
			snprintf(msg, sizeof msg, "%s: truncated: read %lld of %llu bytes at offset %llu", where,
				 (long long)req->result, (unsigned long long)r->need, (unsigned long long)req->offset);
		post_window_error(ld, w->gen, req->result < 0 ? AB_EIO : AB_ECORRUPT, msg);
	}
	push_task(ld, r, w);
}

/* The window's fresh batch buffers are faulted in by a worker while its
 * reads are out, ahead of its decode tasks: at the front of the queue for
 * an epoch's first window (nothing else is queued that matters more), at
 * the back for the others (after the decode of the windows before them). */
static void push_prefault(ab_loader *ld, ld_window *w, int front)
{
	ld_task *t = &w->prefault_task;
	w->prefault = 0;
	t->read = NULL;
	t->win = w;
	t->assemble = 0;
	t->prefault = 1;
	queue_task(ld, t, front);
}

/* A planned window none of whose remaining reads will be sent (a stop, an
 * error, or the next epoch's reading ahead failed): its unsent reads and its
 * no-read task are accounted as done. */
static void drop_unsent(ab_loader *ld, ld_window *w)
{
	/* its prefault task, if never pushed, is accounted as one more */
	size_t unsent = w->nreads - w->next_submit + (w->prefault ? 1 : 0);
	w->prefault = 0;
	for (size_t k = w->next_submit; k < w->nreads; k++) {
		fd_unpin(ld, &w->reads[k]);
		if (w->reads[k].own_fd && w->reads[k].fd >= 0) {
			close(w->reads[k].fd);
			w->reads[k].fd = -1;
		}
	}
	if (atomic_fetch_sub(&w->tasks_left, unsent + 1) == unsent + 1)
		window_complete(ld, w);
}

/* Plans, reads and hands to the workers the windows of the current epoch
 * (ep, taken from the loader by io_main), then those of the next epoch
 * ahead of its start (epoch.c), until a stop or an error. */
static void run_epochs(ab_loader *ld, ld_epoch *ep)
{
	size_t next_plan = ep->first_window;
	/* windows whose reads are not all submitted yet, in plan order */
	ld_window *pending[256];
	size_t npending = 0;
	ab_io_req *batch[256];
	unsigned qd = ab_io_queue_depth(ld->io);
	uint64_t counted = 0; /* the epoch (gen) whose reads the backend numbers */
	ld_window *first = NULL; /* the epoch's first window, read alone */
	for (;;) {
		if (atomic_load(&ld->error) || atomic_load(&ld->stop))
			break;
		/* Plan while credits allow: the current epoch's windows, then
		 * (ahead) the next epoch's, unless reading ahead failed. */
		pthread_mutex_lock(&ld->mu);
		unsigned credits = ld->credits;
		int ahead = ep->gen != ld->gen;
		int blocked = ahead && ld->spec_state != SPEC_ACTIVE;
		pthread_mutex_unlock(&ld->mu);
		/* The epoch's first window is read alone until its first batch
		 * is out (assemble.c clears first_hold). */
		int holding = first && atomic_load(&ld->first_hold);
		if (first && !holding && first->reg_due) {
			first->reg_due = 0;
			slot_register(ld, first);
		}
		if (blocked && npending && pending[npending - 1]->gen == ep->gen) {
			/* reading ahead failed: its windows not yet sent stay unsent */
			size_t keep = npending;
			while (keep && pending[keep - 1]->gen == ep->gen)
				keep--;
			for (size_t i = keep; i < npending; i++)
				drop_unsent(ld, pending[i]);
			npending = keep;
		}
		if (!ahead && !holding && next_plan >= ep->nwindows && spec_begin(ld, ep)) {
			next_plan = ep->first_window;
			ahead = 1;
		}
		/* With nothing in flight (an epoch's start), the first window's
		 * reads go out before the next windows are planned. */
		while (credits > 0 && !blocked && !holding && next_plan < ep->nwindows && npending < 256 &&
		       !(npending && ab_io_inflight(ld->io) == 0)) {
			ld_window *w = NULL;
			int rc = plan_window(ld, ep, next_plan, &w);
			if (rc) {
				char where[64];
				snprintf(where, sizeof where, "planning window %zu: ", next_plan);
				ab_error_prefix(rc, "%s", where);
				post_window_error(ld, ep->gen, rc, ab_last_error());
				blocked = 1;
				break;
			}
			pthread_mutex_lock(&ld->mu);
			/* a window read ahead: its epoch's start takes it over,
			 * with its credit */
			if (ep->gen != ld->gen)
				ld->spec_planned++;
			ld->credits--;
			credits = ld->credits;
			pthread_mutex_unlock(&ld->mu);
			w->skip = next_plan == ep->first_window ? ep->first_skip : 0;
			if (next_plan == ep->first_window && !ahead) {
				/* An epoch read from the start (not ahead): until its
				 * first batch is out, the cores and the disk are the
				 * first window's alone. The windows after it are
				 * neither planned nor read meanwhile: their reads
				 * would fault in their buffers and their decode run on
				 * the same cores, and growing their buffers (mmap)
				 * waits for the first window's page faulting. At the
				 * start of a loader that doubled the time to the first
				 * batch. */
				first = w;
				holding = 1;
				atomic_store(&ld->first_hold, 1);
			}
			next_plan++;
			pending[npending++] = w;
		}
		if (atomic_load(&ld->error))
			break;
		/* Submit as many reads as the queue has room for. */
		unsigned inflight = ab_io_inflight(ld->io);
		unsigned room = qd > inflight ? qd - inflight : 0;
		unsigned nsub = 0;
		int fd_wait = 0, turn = 0;
		while (npending && nsub < room && nsub < 256 && !fd_wait && !turn) {
			ld_window *w = pending[0];
			if (w->prefault)
				push_prefault(ld, w, w == first);
			if (w->gen != counted) {
				/* The backend numbers each epoch's reads from 1 (for
				 * AB_IO_FAULT): the last epoch's go out first. */
				if (nsub) {
					turn = 1;
					break;
				}
				ab_io_restart_count(ld->io);
				counted = w->gen;
			}
			while (w->next_submit < w->nreads && nsub < room && nsub < 256) {
				ld_read *r = &w->reads[w->next_submit];
				int frc = read_fd(ld, r);
				if (frc < 0) {
					post_window_error(ld, w->gen, frc, ab_last_error());
					fd_wait = 1;
					break;
				}
				if (frc > 0) {
					/* out of open-file budget: wait for completions */
					fd_wait = 1;
					break;
				}
				w->next_submit++;
				batch[nsub++] = &r->req;
				atomic_fetch_add_explicit(&ld->st_reads, 1, memory_order_relaxed);
			}
			if (w->next_submit == w->nreads) {
				/* all reads out: the no-read task can go */
				memmove(pending, pending + 1, (npending - 1) * sizeof *pending);
				npending--;
				push_task(ld, NULL, w);
			}
		}
		if (nsub) {
			unsigned done = 0;
			while (done < nsub) {
				int n = ab_io_submit(ld->io, batch + done, nsub - done);
				if (n < 0) {
					post_error(ld, n, ab_last_error());
					break;
				}
				if (n == 0)
					break;
				done += (unsigned)n;
			}
		}
		if (turn)
			continue;
		inflight = ab_io_inflight(ld->io);
		atomic_store_explicit(&ld->st_inflight, inflight, memory_order_relaxed);
		int more = !blocked && next_plan < ep->nwindows;
		if (inflight) {
			ab_io_req *done[256];
			int busy = !holding && (npending > 0 || (credits > 0 && more));
			int n = ab_io_reap(ld->io, done, 256, busy && inflight < qd && !fd_wait ? 0 : 1);
			if (n < 0) {
				post_error(ld, n, ab_last_error());
				break;
			}
			for (int i = 0; i < n; i++)
				handle_completion(ld, done[i]);
			continue;
		}
		if (fd_wait) {
			/* nothing in flight holds a file, yet none could be had */
			if (!atomic_load(&ld->error))
				post_window_error(ld, pending[0]->gen, AB_EIO,
						  "no data file can be opened within the open-file limit");
			/* the current epoch's: the loop ends above; one read
			 * ahead: its windows are dropped above */
			continue;
		}
		if (holding && !npending) {
			/* the first window's reads are all in: wait for its
			 * first batch (or the end) */
			pthread_mutex_lock(&ld->mu);
			while (atomic_load(&ld->first_hold) && !atomic_load(&ld->error) && !atomic_load(&ld->stop))
				pthread_cond_wait(&ld->cv, &ld->mu);
			pthread_mutex_unlock(&ld->mu);
			continue;
		}
		if (npending)
			continue;
		/* Nothing in flight, nothing to submit: wait for a credit, the
		 * start of the epoch read ahead, a failure of it, or the end. */
		pthread_mutex_lock(&ld->mu);
		uint64_t gen = ld->gen;
		int state = ld->spec_state;
		while ((ld->credits == 0 || !more) && ld->gen == gen && ld->spec_state == state &&
		       !atomic_load(&ld->error) && !atomic_load(&ld->stop)) {
			if (!more && !ahead && ld->spec_allowed && ld->spec_state == SPEC_NONE)
				break; /* the next epoch may begin */
			pthread_cond_wait(&ld->cv, &ld->mu);
		}
		pthread_mutex_unlock(&ld->mu);
	}
	/* Wind down: every submitted read must complete before buffers go. */
	while (ab_io_inflight(ld->io)) {
		ab_io_req *done[256];
		int n = ab_io_reap(ld->io, done, 256, 1);
		if (n < 0)
			break;
		for (int i = 0; i < n; i++)
			handle_completion(ld, done[i]);
	}
	/* Windows planned but not fully submitted: account their tasks. */
	for (size_t i = 0; i < npending; i++)
		drop_unsent(ld, pending[i]);
}

/* The event-loop thread: from the first ab_loader_start to
 * ab_loader_destroy, it runs the epochs each start hands it, and falls idle
 * when a stop (or an error) ends them. */
void *io_main(void *arg)
{
	ab_loader *ld = arg;
	pthread_mutex_lock(&ld->mu);
	for (;;) {
		while (!ld->io_go && !ld->io_quit)
			pthread_cond_wait(&ld->cv, &ld->mu);
		if (ld->io_quit)
			break;
		ld->io_go = 0;
		ld_epoch ep = { ld->sampler, ld->epoch, ld->gen, ld->nwindows, ld->first_window, ld->first_skip };
		pthread_mutex_unlock(&ld->mu);
		run_epochs(ld, &ep);
		pthread_mutex_lock(&ld->mu);
		ld->io_busy = 0;
		pthread_cond_broadcast(&ld->idle_cv);
	}
	pthread_mutex_unlock(&ld->mu);
	return NULL;
}
