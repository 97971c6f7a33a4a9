/*
 * io_fault.c - the fault-injecting backend (see io_fault.h).
 *
 * It is a backend like the others: it embeds `struct ab_io`, so io.c applies
 * its usual checks (thread, depth, buffers) to it, and it forwards each call
 * to the real backend through the public ab_io_* functions, so the real one
 * applies the same checks again and binds to the same driving thread.
 *
 * Faults are decided at submission (the read's number is known there) and
 * applied at completion. Only the requests some fault aims at are recorded
 * (at most AB_IO_MAX_FAULTS), so the bookkeeping stays off the path of the
 * other reads. A delayed request is complete as far as the real backend
 * knows; the wrapper merely holds it back, still counted in flight by io.c,
 * until its time comes. Nothing here allocates per request.
 */
#include "io_fault.h"
#include "io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "last_error.h"

#define DEFAULT_DELAY_NS (100ull * 1000 * 1000)
/* While a held request waits for its time and the real backend still has
 * reads out, the wrapper polls the latter this often. */
#define POLL_NS (1000ull * 1000)

struct armed {
	ab_io_req *req;
	const ab_fault *fault;
};

struct held {
	ab_io_req *req;
	uint64_t release_ns;
};

struct fault_io {
	struct ab_io base;    /* first: io.c sees only this */
	struct ab_io_ops ops; /* kind and name of the wrapped backend */
	ab_io *inner;
	ab_fault faults[AB_IO_MAX_FAULTS];
	unsigned nfaults;
	uint64_t submitted;   /* reads submitted so far; the next one is +1 */
	uint64_t registered;  /* buffers put in slots so far (regfail counts them) */
	uint64_t round;       /* 1, then +1 at each restart that follows reads */
	struct armed armed[AB_IO_MAX_FAULTS];
	unsigned narmed;
	struct held held[AB_IO_MAX_FAULTS];
	unsigned nheld;
};

#define F(io) ((struct fault_io *)(io))

/* ------------------------------------------------------------ parsing */

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "250ms", "40us", "2s", "1000ns", or a bare number of milliseconds. */
static int parse_duration(const char *s, size_t n, uint64_t *ns)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = { { "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000 } };
	uint64_t mult = 1000000, v;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t l = strlen(units[i].suffix);
		if (n > l && memcmp(s + n - l, units[i].suffix, l) == 0 &&
		    !(l == 1 && (s[n - 2] < '0' || s[n - 2] > '9'))) {
			mult = units[i].mult;
			n -= l;
			break;
		}
	}
	if (parse_u64(s, n, &v) || (v && mult > UINT64_MAX / v))
		return -1;
	*ns = v * mult;
	return 0;
}

static int bad_item(const char *item, size_t n, const char *why)
{
	return ab_error_set(AB_EINVAL,
			    "AB_IO_FAULT: '%.*s': %s (expected KIND@N[:ARG][~ROUND], KIND one of eio, "
			    "short, corrupt, delay, regfail; N, ROUND >= 1)",
			    (int)n, item, why);
}

int ab_io_fault_parse(const char *spec, ab_fault *faults, unsigned max, unsigned *n)
{
	*n = 0;
	if (!spec)
		return AB_OK;
	const char *p = spec;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, ",");
		while (len && p[len - 1] == ' ')
			len--;
		const char *at = memchr(p, '@', len);
		if (!at)
			return bad_item(p, len, "no '@'");
		ab_fault f = { 0 };
		size_t kl = (size_t)(at - p);
		if (kl == 3 && memcmp(p, "eio", 3) == 0)
			f.kind = AB_FAULT_EIO;
		else if (kl == 5 && memcmp(p, "short", 5) == 0)
			f.kind = AB_FAULT_SHORT;
		else if (kl == 7 && memcmp(p, "corrupt", 7) == 0)
			f.kind = AB_FAULT_CORRUPT;
		else if (kl == 5 && memcmp(p, "delay", 5) == 0)
			f.kind = AB_FAULT_DELAY;
		else if (kl == 7 && memcmp(p, "regfail", 7) == 0)
			f.kind = AB_FAULT_REGFAIL;
		else
			return bad_item(p, len, "unknown kind");
		const char *num = at + 1, *end = p + len;
		const char *tilde = memchr(num, '~', (size_t)(end - num));
		if (tilde) {
			if (f.kind == AB_FAULT_REGFAIL)
				return bad_item(p, len, "regfail takes no round");
			if (parse_u64(tilde + 1, (size_t)(end - tilde - 1), &f.round) || f.round == 0)
				return bad_item(p, len, "bad round");
			end = tilde;
		}
		const char *colon = memchr(num, ':', (size_t)(end - num));
		if (parse_u64(num, (size_t)((colon ? colon : end) - num), &f.nth) || f.nth == 0)
			return bad_item(p, len, "bad read number");
		f.arg = f.kind == AB_FAULT_DELAY ? DEFAULT_DELAY_NS : UINT64_MAX;
		if (colon) {
			const char *a = colon + 1;
			size_t al = (size_t)(end - a);
			int none = f.kind == AB_FAULT_EIO || f.kind == AB_FAULT_REGFAIL;
			int bad = none ? 1
				  : f.kind == AB_FAULT_DELAY ? parse_duration(a, al, &f.arg)
				  : parse_u64(a, al, &f.arg);
			if (bad)
				return bad_item(p, len, f.kind == AB_FAULT_EIO       ? "eio takes no argument"
							: f.kind == AB_FAULT_REGFAIL ? "regfail takes no argument"
										     : "bad argument");
		}
		if (*n == max)
			return bad_item(p, len, "too many faults");
		faults[(*n)++] = f;
		p += strcspn(p, ",");
	}
	return AB_OK;
}

/* ------------------------------------------------------------ completion */

/* Applies the faults aimed at `r` (now complete). Returns the delay to hold
 * it for (0: hand it over now). */
static uint64_t spoil(struct fault_io *f, ab_io_req *r)
{
	uint64_t delay = 0;
	for (unsigned i = 0; i < f->narmed;) {
		if (f->armed[i].req != r) {
			i++;
			continue;
		}
		const ab_fault *ft = f->armed[i].fault;
		switch (ft->kind) {
		case AB_FAULT_EIO:
			r->result = -EIO;
			break;
		case AB_FAULT_SHORT:
			/* A completed short read means "the file ended here":
			 * that is what a truncated chunk file looks like. */
			if (r->result > 0)
				r->result = ft->arg == UINT64_MAX       ? r->result / 2
					    : ft->arg < (uint64_t)r->result ? (int64_t)ft->arg
									    : r->result;
			break;
		case AB_FAULT_CORRUPT:
			/* Flip every bit of one byte the read delivered: what bad
			 * memory or a lying device would hand back. */
			if (r->result > 0) {
				uint64_t got = (uint64_t)r->result;
				uint64_t off = ft->arg == UINT64_MAX ? got / 2 : ft->arg % got;
				((uint8_t *)r->buf)[off] ^= 0xFF;
			}
			break;
		case AB_FAULT_DELAY:
			delay += ft->arg;
			break;
		case AB_FAULT_REGFAIL: /* never armed on a read */
			break;
		}
		/* Each fault fires once: drop the entry (order does not matter). */
		f->armed[i] = f->armed[--f->narmed];
	}
	return delay;
}

/* Moves held requests whose time has come into done[*got..max). */
static void release_held(struct fault_io *f, ab_io_req **done, unsigned *got, unsigned max)
{
	uint64_t now = ab_now_ns();
	for (unsigned i = 0; i < f->nheld && *got < max;) {
		if (f->held[i].release_ns > now) {
			i++;
			continue;
		}
		ab_io_req *r = f->held[i].req;
		/* The latency statistics should see the slow device. */
		r->complete_ns = now;
		done[(*got)++] = r;
		f->held[i] = f->held[--f->nheld];
	}
}

static uint64_t earliest_release(const struct fault_io *f)
{
	uint64_t t = UINT64_MAX;
	for (unsigned i = 0; i < f->nheld; i++)
		if (f->held[i].release_ns < t)
			t = f->held[i].release_ns;
	return t;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------ ops */

static int fault_register_buffers(ab_io *io, const struct iovec *iov, unsigned n)
{
	struct fault_io *f = F(io);
	if (n == 0)
		return ab_io_register_buffers(f->inner, NULL, NULL, 0);
	void **bufs = malloc(n * sizeof *bufs);
	size_t *lens = malloc(n * sizeof *lens);
	int st;
	if (!bufs || !lens) {
		st = ab_error_set(AB_ENOMEM, "io fault wrapper: out of memory");
	} else {
		for (unsigned i = 0; i < n; i++) {
			bufs[i] = iov[i].iov_base;
			lens[i] = iov[i].iov_len;
		}
		st = ab_io_register_buffers(f->inner, bufs, lens, n);
	}
	free(bufs);
	free(lens);
	return st;
}

static int fault_register_buffer_slots(ab_io *io, unsigned n)
{
	return ab_io_register_buffer_slots(F(io)->inner, n);
}

static int fault_set_buffer(ab_io *io, unsigned slot, const struct iovec *iov)
{
	struct fault_io *f = F(io);
	if (iov->iov_base) {
		uint64_t seq = ++f->registered;
		for (unsigned k = 0; k < f->nfaults; k++)
			if (f->faults[k].kind == AB_FAULT_REGFAIL && f->faults[k].nth == seq)
				return ab_error_set(AB_ENOMEM, "io fault wrapper: buffer slot %u (%zu bytes): "
						    "refused (AB_IO_FAULT regfail@%llu)", slot, iov->iov_len,
						    (unsigned long long)seq);
	}
	return ab_io_set_buffer(f->inner, slot, iov->iov_base, iov->iov_len);
}

static int fault_register_files(ab_io *io, unsigned n)
{
	return ab_io_register_files(F(io)->inner, n);
}

static int fault_set_file(ab_io *io, unsigned slot, int fd)
{
	return ab_io_set_file(F(io)->inner, slot, fd);
}

static int fault_submit(ab_io *io, ab_io_req *const *reqs, unsigned n, uint64_t now)
{
	(void)now; /* the real backend stamps submit_ns itself */
	struct fault_io *f = F(io);
	unsigned narmed0 = f->narmed;
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq = f->submitted + 1 + i;
		for (unsigned k = 0; k < f->nfaults; k++)
			if (f->faults[k].kind != AB_FAULT_REGFAIL && f->faults[k].nth == seq &&
			    (f->faults[k].round == 0 || f->faults[k].round == f->round) &&
			    f->narmed < AB_IO_MAX_FAULTS)
				f->armed[f->narmed++] = (struct armed){ reqs[i], &f->faults[k] };
	}
	/* io.c let at most depth - (inner in flight + held) through, so the
	 * real backend has room for all n: it takes them all or fails. */
	int got = ab_io_submit(f->inner, reqs, n);
	if (got < 0 || (unsigned)got != n) {
		f->narmed = narmed0; /* nothing was taken: the faults wait */
		if (got >= 0)
			return ab_error_set(AB_EIO, "io fault wrapper: backend took %d of %u reads",
					    got, n);
		return got;
	}
	f->submitted += n;
	return (int)n;
}

static int fault_reap(ab_io *io, ab_io_req **done, unsigned max, unsigned min_wait)
{
	struct fault_io *f = F(io);
	unsigned got = 0;
	for (;;) {
		release_held(f, done, &got, max);
		if (got >= max)
			break;
		unsigned out = ab_io_inflight(f->inner);
		if (out) {
			/* Block in the real backend only when nothing is held:
			 * a held request must not wait for an unrelated read. */
			unsigned wait = got < min_wait && f->nheld == 0 ? min_wait - got : 0;
			int n = ab_io_reap(f->inner, done + got, max - got, wait);
			if (n < 0)
				return got ? (int)got : n;
			unsigned keep = got;
			for (unsigned i = got; i < got + (unsigned)n; i++) {
				ab_io_req *r = done[i];
				uint64_t d = spoil(f, r);
				if (d && f->nheld < AB_IO_MAX_FAULTS)
					f->held[f->nheld++] = (struct held){ r, ab_now_ns() + d };
				else
					done[keep++] = r;
			}
			got = keep;
		}
		if (got >= min_wait)
			break;
		if (f->nheld == 0 && ab_io_inflight(f->inner) == 0)
			break; /* io.c never asks for more than is in flight */
		if (f->nheld) {
			uint64_t now = ab_now_ns(), t = earliest_release(f);
			uint64_t wait = t > now ? t - now : 0;
			if (ab_io_inflight(f->inner) && wait > POLL_NS)
				wait = POLL_NS;
			if (wait)
				sleep_ns(wait);
		}
	}
	return (int)got;
}

/* The real backend waits for its reads; held ones are already complete. */
static void fault_destroy(ab_io *io)
{
	struct fault_io *f = F(io);
	ab_io_destroy(f->inner);
	free(f);
}

/* Reads still in flight keep the faults they were armed with; the next read
 * submitted is number 1 again. */
static void fault_restart_count(ab_io *io)
{
	struct fault_io *f = F(io);
	if (f->submitted)
		f->round++;
	f->submitted = 0;
}

int ab_io_fault_wrap(ab_io *inner, const char *spec, ab_io **out)
{
	*out = NULL;
	struct fault_io *f = calloc(1, sizeof *f);
	if (!f)
		return ab_error_set(AB_ENOMEM, "io fault wrapper: out of memory");
	int st = ab_io_fault_parse(spec, f->faults, AB_IO_MAX_FAULTS, &f->nfaults);
	if (st) {
		free(f);
		return st;
	}
	f->inner = inner;
	f->round = 1;
	f->ops = (struct ab_io_ops){
		.kind = inner->ops->kind,
		.name = inner->ops->name,
		.destroy = fault_destroy,
		.register_buffers = fault_register_buffers,
		.register_buffer_slots = fault_register_buffer_slots,
		.set_buffer = fault_set_buffer,
		.register_files = fault_register_files,
		.set_file = fault_set_file,
		.submit = fault_submit,
		.reap = fault_reap,
		.restart_count = fault_restart_count,
	};
	f->base.ops = &f->ops;
	f->base.depth = inner->depth;
	f->base.inflight = 0;
	/* Precisions keep the line inside describe[160] (and the compiler sure of it). */
	snprintf(f->base.describe, sizeof f->base.describe, "%.100s + faults %.40s", inner->describe,
		 spec);
	*out = &f->base;
	return AB_OK;
}
