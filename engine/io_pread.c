/*
 * io_pread.c - the fallback backend: a pool of threads calling pread(2).
 *
 * Used where io_uring is not allowed (seccomp, kernel.io_uring_disabled) or
 * not there. The driving thread pushes requests onto a queue and collects
 * them from a completion queue; workers move them from one to the other.
 * Both queues are rings of pointers sized to the queue depth: io.c never
 * lets more than `depth` requests be in flight (queued, being read, or done
 * and not reaped), so neither can overflow and nothing is allocated per
 * request. One mutex guards both; this is the fallback path, and a lock per
 * batch is small next to a system call per read.
 */
#include "io.h"
#include "io_impl.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "last_error.h"

struct fifo {
	ab_io_req **slot;
	unsigned cap, head, count;
};

struct pread_io {
	struct ab_io base; /* first: io.c sees only this */
	pthread_mutex_t mu;
	pthread_cond_t work;  /* workers wait here for requests           */
	pthread_cond_t ready; /* the driver waits here for completions    */
	struct fifo todo, done;
	unsigned idle;        /* workers asleep on `work`                  */
	unsigned want;        /* completions the driver is waiting for     */
	int stop;
	pthread_t *tids;
	unsigned nthreads;
};

#define P(io) ((struct pread_io *)(io))

static void fifo_push(struct fifo *f, ab_io_req *r)
{
	f->slot[(f->head + f->count) % f->cap] = r;
	f->count++;
}

static ab_io_req *fifo_pop(struct fifo *f)
{
	ab_io_req *r = f->slot[f->head];
	f->head = (f->head + 1) % f->cap;
	f->count--;
	return r;
}

/* One request, start to end: the same rules as the io_uring backend, so
 * the results match byte for byte. */
static void run(ab_io_req *r)
{
	uint64_t done = 0;
	int64_t err = 0;
	while (done < r->len) {
		ssize_t k = pread(r->fd, (char *)r->buf + done, r->len - done,
				  (off_t)(r->offset + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* Only on a non-blocking fd; give way and retry,
				 * as io_uring would. */
				sched_yield();
				continue;
			}
			err = -errno;
			break;
		}
		if (k == 0)
			break; /* end of file */
		done += (uint64_t)k;
		if (!ab_io_resume_ok(r, done))
			break;
	}
	r->result = err ? err : (int64_t)done;
	r->complete_ns = ab_now_ns();
}

static void *worker(void *arg)
{
	struct pread_io *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* Queued requests are finished even when stopping: destroy
		 * promises every request its final result. */
		while (p->todo.count == 0 && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->mu);
			p->idle--;
		}
		if (p->todo.count == 0)
			break;
		ab_io_req *r = fifo_pop(&p->todo);
		pthread_mutex_unlock(&p->mu);
		run(r);
		pthread_mutex_lock(&p->mu);
		fifo_push(&p->done, r);
		/* Wake the driver only when it sleeps and now has enough. */
		if (p->want && p->done.count >= p->want)
			pthread_cond_signal(&p->ready);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* The pool reads `fd` directly: file slots need nothing. */
static int pread_register_files(ab_io *io, unsigned n)
{
	(void)io;
	(void)n;
	return AB_OK;
}

static int pread_set_file(ab_io *io, unsigned slot, int fd)
{
	(void)io;
	(void)slot;
	(void)fd;
	return AB_OK;
}

static int pread_register_buffers(ab_io *io, const struct iovec *iov, unsigned n)
{
	/* Nothing to pin: pread copies into any buffer. io.c keeps the table
	 * so that buf_index is checked the same way as with io_uring. */
	(void)io;
	(void)iov;
	(void)n;
	return AB_OK;
}

static int pread_register_buffer_slots(ab_io *io, unsigned n)
{
	(void)io;
	(void)n;
	return AB_OK;
}

static int pread_set_buffer(ab_io *io, unsigned slot, const struct iovec *iov)
{
	(void)io;
	(void)slot;
	(void)iov;
	return AB_OK;
}

static int pread_submit(ab_io *io, ab_io_req *const *reqs, unsigned n, uint64_t now)
{
	struct pread_io *p = P(io);
	for (unsigned i = 0; i < n; i++) {
		reqs[i]->result = 0;
		reqs[i]->submit_ns = now;
		reqs[i]->complete_ns = 0;
	}
	pthread_mutex_lock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		fifo_push(&p->todo, reqs[i]);
	/* Busy workers pick up the rest themselves when they finish. */
	if (p->idle) {
		if (n > 1)
			pthread_cond_broadcast(&p->work);
		else
			pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->mu);
	return (int)n;
}

static int pread_reap(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait)
{
	struct pread_io *p = P(io);
	unsigned got = 0;
	pthread_mutex_lock(&p->mu);
	while (p->done.count < min_wait) {
		p->want = min_wait;
		pthread_cond_wait(&p->ready, &p->mu);
	}
	p->want = 0;
	while (got < max && p->done.count)
		done[got++] = fifo_pop(&p->done);
	pthread_mutex_unlock(&p->mu);
	return (int)got;
}

static void pread_free(struct pread_io *p)
{
	pthread_cond_destroy(&p->ready);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->todo.slot);
	free(p->done.slot);
	free(p->tids);
	free(p);
}

/* Workers drain the queue before they exit; joining them is the wait. */
static void pread_destroy(ab_io *io)
{
	struct pread_io *p = P(io);
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->tids[i], NULL);
	pread_free(p);
}

static const struct ab_io_ops pread_ops = {
	.kind = AB_IO_PREAD,
	.name = "pread",
	.destroy = pread_destroy,
	.register_buffers = pread_register_buffers,
	.register_buffer_slots = pread_register_buffer_slots,
	.set_buffer = pread_set_buffer,
	.register_files = pread_register_files,
	.set_file = pread_set_file,
	.submit = pread_submit,
	.reap = pread_reap,
};

int ab_io_pread_open(unsigned depth, unsigned threads, ab_io **out)
{
	*out = NULL;
	struct pread_io *p = calloc(1, sizeof *p);
	if (!p)
		return ab_error_set(AB_ENOMEM, "pread pool: out of memory");
	p->todo.cap = p->done.cap = depth;
	p->todo.slot = calloc(depth, sizeof *p->todo.slot);
	p->done.slot = calloc(depth, sizeof *p->done.slot);
	p->tids = calloc(threads, sizeof *p->tids);
	if (!p->todo.slot || !p->done.slot || !p->tids) {
		free(p->todo.slot);
		free(p->done.slot);
		free(p->tids);
		free(p);
		return ab_error_set(AB_ENOMEM, "pread pool: out of memory");
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->ready, NULL);
	for (unsigned i = 0; i < threads; i++) {
		int rc = pthread_create(&p->tids[i], NULL, worker, p);
		if (rc) {
			p->nthreads = i;
			pread_destroy(&p->base);
			return ab_error_set(AB_ENOMEM, "pread pool: starting thread %u of %u: %s", i + 1,
					    threads, strerror(rc));
		}
	}
	p->nthreads = threads;
	p->base.ops = &pread_ops;
	snprintf(p->base.describe, sizeof p->base.describe, "pread: depth %u, %u threads", depth,
		 threads);
	*out = &p->base;
	return AB_OK;
}
