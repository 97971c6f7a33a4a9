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

static void push_task(ab_loader *ld, ld_read *r, ld_window *w)
{
	ld_task *t = r ? &r->task : &w->fill_task;
	t->read = r;
	t->win = w;
	t->next = NULL;
	pthread_mutex_lock(&ld->mu);
	if (ld->task_tail)
		ld->task_tail->next = t;
	else
		ld->task_head = t;
	ld->task_tail = t;
	pthread_cond_signal(&ld->task_cv);
	pthread_mutex_unlock(&ld->mu);
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
		post_error(ld, req->result < 0 ? AB_EIO : AB_ECORRUPT, msg);
	}
	push_task(ld, r, w);
}

void *io_main(void *arg)
{
	ab_loader *ld = arg;
	size_t next_plan = ld->first_window;
	/* windows whose reads are not all submitted yet, in plan order */
	ld_window *pending[256];
	size_t npending = 0;
	ab_io_req *batch[256];
	unsigned qd = ab_io_queue_depth(ld->io);
	for (;;) {
		if (atomic_load(&ld->error) || atomic_load(&ld->stop))
			break;
		/* Plan while credits allow. */
		pthread_mutex_lock(&ld->mu);
		unsigned credits = ld->credits;
		pthread_mutex_unlock(&ld->mu);
		while (credits > 0 && next_plan < ld->nwindows && npending < 256) {
			ld_window *w = NULL;
			int rc = plan_window(ld, next_plan, &w);
			if (rc) {
				char where[64];
				snprintf(where, sizeof where, "planning window %zu: ", next_plan);
				ab_error_prefix(rc, "%s", where);
				post_error(ld, rc, ab_last_error());
				break;
			}
			pthread_mutex_lock(&ld->mu);
			ld->credits--;
			credits = ld->credits;
			pthread_mutex_unlock(&ld->mu);
			w->skip = next_plan == ld->first_window ? ld->first_skip : 0;
			next_plan++;
			pending[npending++] = w;
		}
		if (atomic_load(&ld->error))
			break;
		/* Submit as many reads as the queue has room for. */
		unsigned inflight = ab_io_inflight(ld->io);
		unsigned room = qd > inflight ? qd - inflight : 0;
		unsigned nsub = 0;
		int fd_wait = 0;
		while (npending && nsub < room && nsub < 256 && !fd_wait) {
			ld_window *w = pending[0];
			while (w->next_submit < w->nreads && nsub < room && nsub < 256) {
				ld_read *r = &w->reads[w->next_submit];
				int frc = read_fd(ld, r);
				if (frc < 0) {
					post_error(ld, frc, ab_last_error());
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
		inflight = ab_io_inflight(ld->io);
		atomic_store_explicit(&ld->st_inflight, inflight, memory_order_relaxed);
		if (inflight) {
			ab_io_req *done[256];
			int more = npending > 0 || (credits > 0 && next_plan < ld->nwindows);
			int n = ab_io_reap(ld->io, done, 256, more && inflight < qd && !fd_wait ? 0 : 1);
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
				post_error(ld, AB_EIO, "no data file can be opened within the open-file limit");
			break;
		}
		if (npending)
			continue;
		if (next_plan == ld->nwindows)
			break;
		/* Nothing in flight, nothing to submit: wait for a credit. */
		pthread_mutex_lock(&ld->mu);
		while (ld->credits == 0 && !atomic_load(&ld->error) && !atomic_load(&ld->stop))
			pthread_cond_wait(&ld->cv, &ld->mu);
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
	for (size_t i = 0; i < npending; i++) {
		ld_window *w = pending[i];
		size_t unsent = w->nreads - w->next_submit;
		for (size_t k = w->next_submit; k < w->nreads; k++)
			fd_unpin(ld, &w->reads[k]);
		for (size_t k = w->next_submit; k < w->nreads; k++)
			if (w->reads[k].own_fd && w->reads[k].fd >= 0) {
				close(w->reads[k].fd);
				w->reads[k].fd = -1;
			}
		/* unsent reads + the no-read task */
		if (atomic_fetch_sub(&w->tasks_left, unsent + 1) == unsent + 1)
			window_complete(ld, w);
	}
	if (ld->nwindows == 0)
		ab_ring_close(ld->ring);
	return NULL;
}

