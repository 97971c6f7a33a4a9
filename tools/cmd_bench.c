/* cmd_bench.c - `annbatch bench`: the loader as a storage stress tool, with a
 * report in fio's vocabulary. */
#include "cli.h"
#include "loader_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char bench_head[] =
	"Usage: annbatch bench INPUT... [loader options] [--duration S | --epochs N] [--json]\n"
	"\n"
	"Runs the loader over INPUT as fast as consumers take batches and reports\n"
	"throughput (samples/s, batches/s), disk bandwidth, IOPS and mean read size,\n"
	"decoded bandwidth, read completion latency percentiles, consumer wait per\n"
	"batch, the time from each ab_loader_start to that epoch's first batch, CPU\n"
	"time, and the backend and I/O mode actually used. A live progress line is\n"
	"drawn when stdout is a terminal.\n"
	"\n";

static const char bench_tail[] =
	"Bench:\n"
	"  --duration S          run for S seconds (epochs repeat as needed)\n"
	"  --epochs N            run N epochs (default 1 when no --duration)\n"
	"  --consumers N         consumer threads taking batches (1)\n"
	"  --touch               consumers read every byte of each batch\n"
	"  --consumer-delay MS   each consumer holds each batch MS milliseconds (a\n"
	"                        training step) before taking the next: with a loader\n"
	"                        that keeps up, the batch wait shows its hand-over cost\n"
	"  --cold                drop the inputs from the page cache first\n"
	"                        (posix_fadvise DONTNEED; drop_caches too when root)\n"
	"  --json                the report as one JSON object\n"
	"  -h, --help            this help\n";

static void usage(FILE *f)
{
	fputs(bench_head, f);
	fputs(loader_opts_help, f);
	fputs(bench_tail, f);
}

enum { O_DURATION = 1, O_EPOCHS, O_CONSUMERS, O_TOUCH, O_COLD, O_JSON, O_DELAY };

typedef struct bench {
	ab_loader *ld;
	int touch;
	double delay_s;            /* --consumer-delay */
	_Atomic uint64_t samples, batches, sink;
	_Atomic uint64_t first_ns; /* when this epoch's first batch came (0: not yet) */
	_Atomic int stop;
	_Atomic int error;
	char errmsg[512];
	pthread_mutex_t mu;
} bench;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads every byte of a batch, so a lazy path cannot look faster than it is. */
static uint64_t touch_batch(const ab_batch_view *v)
{
	const uint8_t *p;
	size_t n;
	uint64_t acc = 0;
	size_t isz = ab_dtype_size(v->dtype);
	if (v->sparse) {
		p = v->values;
		n = (size_t)v->nnz * isz;
		for (size_t i = 0; i < (size_t)v->nnz; i++)
			acc += (uint64_t)v->indices[i];
	} else {
		p = v->data;
		n = (size_t)(v->nrows * v->row_items) * isz;
	}
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = 0;
		memcpy(&w, p + i, n - i < 8 ? n - i : 8);
		acc += w;
	}
	return acc;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *consumer(void *arg)
{
	bench *b = arg;
	ab_batch *bt;
	int rc;
	while (!atomic_load(&b->stop) && (rc = ab_loader_next(b->ld, &bt)) == 0) {
		uint64_t zero = 0;
		if (atomic_load_explicit(&b->first_ns, memory_order_relaxed) == 0)
			atomic_compare_exchange_strong(&b->first_ns, &zero, now_ns());
		ab_batch_view v;
		ab_batch_get_view(bt, &v);
		if (b->touch)
			atomic_fetch_add_explicit(&b->sink, touch_batch(&v), memory_order_relaxed);
		if (b->delay_s > 0) {
			struct timespec d = { (time_t)b->delay_s,
					      (long)((b->delay_s - (double)(time_t)b->delay_s) * 1e9) };
			while (nanosleep(&d, &d) != 0 && errno == EINTR)
				;
		}
		atomic_fetch_add_explicit(&b->samples, v.nrows, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
		ab_batch_release(bt);
	}
	if (!atomic_load(&b->stop) && rc != AB_END && rc != 0) {
		pthread_mutex_lock(&b->mu);
		if (!atomic_load(&b->error)) {
			snprintf(b->errmsg, sizeof b->errmsg, "%s", ab_last_error());
			atomic_store(&b->error, rc);
		}
		pthread_mutex_unlock(&b->mu);
	}
	return NULL;
}

/* ---- --cold: drop the inputs' pages */

static int drop_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	return 0;
}

static void drop_caches(char *const *inputs, int n, int *dropped_all)
{
	for (int i = 0; i < n; i++) {
		char *p = strdup(inputs[i]);
		struct stat sb;
		if (p && stat(p, &sb) != 0) {
			char *colon = strrchr(p, ':'); /* STORE:NODE */
			if (colon)
				*colon = '\0';
		}
		if (p)
			nftw(p, drop_one, 32, FTW_PHYS);
		free(p);
	}
	*dropped_all = 0;
	if (geteuid() == 0) {
		sync();
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			*dropped_all = write(fd, "1\n", 2) == 2;
			close(fd);
		}
	}
}

/* Time to the first batch of an epoch: from the call to ab_loader_start to
 * the first batch any consumer got, and the part of it the call itself took. */
typedef struct epoch_time {
	uint64_t epoch;
	double first_ms, start_ms;
} epoch_time;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* p50 and max of the epochs after the first (their starts can reuse what the
 * first one set up); 0 when there are none. */
static void later_epochs(const epoch_time *t, size_t n, double *p50, double *max)
{
	*p50 = *max = 0;
	if (n < 2)
		return;
	double *v = malloc((n - 1) * sizeof *v);
	if (!v)
		return;
	for (size_t i = 1; i < n; i++)
		v[i - 1] = t[i].first_ms;
	qsort(v, n - 1, sizeof *v, cmp_double);
	*p50 = v[(n - 2) / 2];
	*max = v[n - 2];
	free(v);
}

static double cpu_seconds(int sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	const struct timeval *t = sys ? &ru.ru_stime : &ru.ru_utime;
	return (double)t->tv_sec + (double)t->tv_usec * 1e-6;
}

static void human_rate(double bytes_per_s, char *buf, size_t n)
{
	if (bytes_per_s >= 1e9)
		snprintf(buf, n, "%.2f GB/s", bytes_per_s / 1e9);
	else if (bytes_per_s >= 1e6)
		snprintf(buf, n, "%.1f MB/s", bytes_per_s / 1e6);
	else
		snprintf(buf, n, "%.1f kB/s", bytes_per_s / 1e3);
}

int cmd_bench(int argc, char **argv)
{
	struct option opts[64];
	size_t n = 0;
	for (const struct option *p = loader_long_opts; p->name; p++)
		opts[n++] = *p;
	opts[n++] = (struct option){ "duration", required_argument, NULL, O_DURATION };
	opts[n++] = (struct option){ "epochs", required_argument, NULL, O_EPOCHS };
	opts[n++] = (struct option){ "consumers", required_argument, NULL, O_CONSUMERS };
	opts[n++] = (struct option){ "touch", no_argument, NULL, O_TOUCH };
	opts[n++] = (struct option){ "consumer-delay", required_argument, NULL, O_DELAY };
	opts[n++] = (struct option){ "cold", no_argument, NULL, O_COLD };
	opts[n++] = (struct option){ "json", no_argument, NULL, O_JSON };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
	loader_opts lo;
	loader_opts_init(&lo);
	double duration = 0;
	uint64_t epochs = 0, consumers = 1;
	int touch = 0, cold = 0, json = 0, c;
	double delay_ms = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r = loader_opts_handle(&lo, c, optarg, "bench");
		if (r == 0)
			continue;
		if (r == 2)
			return 2;
		switch (c) {
		case O_DURATION: {
			char *end;
			duration = strtod(optarg, &end);
			if (end == optarg || *end || !(duration > 0) || duration > 1e6)
				return cli_fail("bench", "--duration: expected seconds > 0, got '%s'", optarg), 2;
			break;
		}
		case O_EPOCHS:
			if (parse_count("bench", "--epochs", optarg, &epochs) || epochs == 0)
				return cli_fail("bench", "--epochs must be >= 1"), 2;
			break;
		case O_CONSUMERS:
			if (parse_count("bench", "--consumers", optarg, &consumers) || consumers == 0 || consumers > 256)
				return cli_fail("bench", "--consumers must be 1..256"), 2;
			break;
		case O_TOUCH: touch = 1; break;
		case O_DELAY: {
			char *end;
			delay_ms = strtod(optarg, &end);
			if (end == optarg || *end || !(delay_ms >= 0) || delay_ms > 1e6)
				return cli_fail("bench", "--consumer-delay: expected milliseconds >= 0, got '%s'", optarg), 2;
			break;
		}
		case O_COLD: cold = 1; break;
		case O_JSON: json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "annbatch bench: expected at least one INPUT\n");
		usage(stderr);
		return 2;
	}
	if (duration > 0 && epochs > 0)
		return cli_fail("bench", "--duration and --epochs exclude each other"), 2;
	if (duration == 0 && epochs == 0)
		epochs = 1;
	int dropped_all = 0;
	if (cold)
		drop_caches(argv + optind, argc - optind, &dropped_all);

	bench b;
	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.mu, NULL);
	b.touch = touch;
	b.delay_s = delay_ms / 1000.0;
	int ret = loader_opts_build(&lo, argv + optind, argc - optind, "bench", &b.ld);
	if (ret)
		return ret;
	int tty = isatty(STDOUT_FILENO);
	double cpu_u0 = cpu_seconds(0), cpu_s0 = cpu_seconds(1);
	double t0 = now_s(), last_draw = t0;
	uint64_t epochs_done = 0;
	epoch_time *first = NULL;
	size_t nfirst = 0, cap_first = 0;
	pthread_t *th = calloc(consumers, sizeof *th);
	if (!th) {
		ab_loader_destroy(b.ld);
		return cli_fail("bench", "out of memory");
	}
	for (uint64_t e = 0; !ret; e++) {
		if (epochs && e >= epochs)
			break;
		if (duration > 0 && now_s() - t0 >= duration)
			break;
		atomic_store(&b.first_ns, 0);
		uint64_t t_call = now_ns();
		int rc = ab_loader_start(b.ld, lo.epoch + e);
		uint64_t t_ret = now_ns();
		if (rc) {
			ret = cli_fail_lib("bench", rc, NULL);
			break;
		}
		uint64_t started = 0;
		for (; started < consumers; started++)
			if (pthread_create(&th[started], NULL, consumer, &b) != 0)
				break;
		/* The main thread watches the clock and draws the progress line.
		 * Consumers leave when the epoch ends; a deadline stops the epoch. */
		for (;;) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			ab_loader_stats st;
			ab_loader_get_stats(b.ld, &st);
			double t = now_s();
			if (tty && !json && t - last_draw >= 0.25) {
				char bw[32];
				human_rate((double)st.bytes_read / (t - t0), bw, sizeof bw);
				printf("\r%8.1fs  %10.0f samples/s  %s from disk  %3llu reads in flight  epoch %llu ",
				       t - t0, (double)atomic_load(&b.samples) / (t - t0), bw,
				       (unsigned long long)st.reads_in_flight, (unsigned long long)(lo.epoch + e));
				fflush(stdout);
				last_draw = t;
			}
			int alive = 0;
			for (uint64_t i = 0; i < started; i++)
				if (pthread_tryjoin_np(th[i], NULL) == EBUSY)
					alive++;
				else
					th[i] = 0;
			/* joined threads are marked 0; compact */
			uint64_t k = 0;
			for (uint64_t i = 0; i < started; i++)
				if (th[i])
					th[k++] = th[i];
			started = k;
			if (!alive)
				break;
			if (duration > 0 && t - t0 >= duration) {
				atomic_store(&b.stop, 1);
				ab_loader_stop(b.ld); /* consumers in ab_loader_next get AB_END */
				for (uint64_t i = 0; i < started; i++)
					pthread_join(th[i], NULL);
				started = 0;
				break;
			}
		}
		/* The epoch's time to its first batch, from the call that
		 * started it (an epoch stopped before any batch has none). */
		uint64_t t_first = atomic_load(&b.first_ns);
		if (t_first && !ret) {
			if (nfirst == cap_first) {
				size_t nc = cap_first ? cap_first * 2 : 16;
				epoch_time *nt = realloc(first, nc * sizeof *nt);
				if (!nt) {
					ret = cli_fail("bench", "out of memory");
					break;
				}
				first = nt;
				cap_first = nc;
			}
			first[nfirst].epoch = lo.epoch + e;
			first[nfirst].first_ms = (double)(t_first - t_call) / 1e6;
			first[nfirst].start_ms = (double)(t_ret - t_call) / 1e6;
			nfirst++;
		}
		if (atomic_load(&b.error))
			ret = cli_fail("bench", "%s", b.errmsg);
		else if (!atomic_load(&b.stop))
			epochs_done++;
		if (atomic_load(&b.stop))
			break;
	}
	double elapsed = now_s() - t0;
	double cpu_u = cpu_seconds(0) - cpu_u0, cpu_s = cpu_seconds(1) - cpu_s0;
	if (tty && !json)
		printf("\r%*s\r", 100, "");
	ab_loader_stats st;
	ab_loader_get_stats(b.ld, &st);
	uint64_t samples = atomic_load(&b.samples), batches = atomic_load(&b.batches);
	if (!ret) {
		double el = elapsed > 0 ? elapsed : 1e-9;
		const ab_loader_config *cf = &lo.cfg;
		double mean_read = st.reads ? (double)st.bytes_read / (double)st.reads : 0;
		if (json) {
			printf("{\"samples\": %llu, \"batches\": %llu, \"rows\": %llu, \"epochs\": %llu, \"elapsed_s\": %.6f, "
			       "\"samples_per_s\": %.3f, \"batches_per_s\": %.3f, \"disk_bytes\": %llu, "
			       "\"disk_bytes_per_s\": %.1f, \"reads\": %llu, \"read_iops\": %.1f, \"mean_read_bytes\": %.1f, "
			       "\"decoded_bytes_per_s\": %.1f, \"read_lat_us\": {\"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, "
			       "\"p999\": %.2f}, \"wait_us\": {\"p50\": %.2f, \"p99\": %.2f}, "
			       "\"first_wait_us\": {\"p50\": %.2f, \"max\": %.2f}, \"cpu_user_s\": %.3f, "
			       "\"cpu_sys_s\": %.3f, \"io_backend\": \"%s\", \"io_mode\": \"%s\", \"consumers\": %llu, "
			       "\"touch\": %s, \"cold\": %s, \"page_cache_dropped\": %s, \"batch_size\": %llu, "
			       "\"chunk_size\": %llu, \"preload_nchunks\": %llu, \"shuffle\": %s, \"queue_depth\": %u, "
			       "\"threads\": %u, \"max_windows\": %u, \"registered_buffers\": %s, \"registered_files\": %u, "
			       "\"consumer_delay_ms\": %.3f, \"decode\": \"%s\", \"note\": ",
			       (unsigned long long)samples, (unsigned long long)batches, (unsigned long long)st.rows,
			       (unsigned long long)epochs_done, el, (double)samples / el, (double)batches / el,
			       (unsigned long long)st.bytes_read, (double)st.bytes_read / el, (unsigned long long)st.reads,
			       (double)st.reads / el, mean_read, (double)st.bytes_decoded / el, st.read_lat_us[0],
			       st.read_lat_us[1], st.read_lat_us[2], st.read_lat_us[3], st.wait_us[0], st.wait_us[1],
			       st.first_wait_us[0], st.first_wait_us[1], cpu_u,
			       cpu_s, st.backend, st.io_mode, (unsigned long long)consumers, touch ? "true" : "false",
			       cold ? "true" : "false", dropped_all ? "true" : "false", (unsigned long long)cf->batch_size,
			       (unsigned long long)cf->chunk_size, (unsigned long long)cf->preload_nchunks,
			       cf->shuffle ? "true" : "false", st.queue_depth, st.threads, cf->max_windows,
			       st.registered_buffers ? "true" : "false", st.registered_files, delay_ms,
			       cf->whole_chunks ? "chunks" : "blocks");
			cli_json_string(stdout, st.note);
			double lp50, lmax;
			later_epochs(first, nfirst, &lp50, &lmax);
			printf(", \"first_batch_ms\": {\"first_epoch\": %.3f, \"later_p50\": %.3f, \"later_max\": %.3f, "
			       "\"epochs\": [", nfirst ? first[0].first_ms : 0.0, lp50, lmax);
			for (size_t i = 0; i < nfirst; i++)
				printf("%s{\"epoch\": %llu, \"ms\": %.3f, \"start_call_ms\": %.3f}", i ? ", " : "",
				       (unsigned long long)first[i].epoch, first[i].first_ms, first[i].start_ms);
			printf("]}}\n");
		} else {
			char bw[32], dec[32];
			human_rate((double)st.bytes_read / el, bw, sizeof bw);
			human_rate((double)st.bytes_decoded / el, dec, sizeof dec);
			printf("annbatch bench: %llu samples in %llu batches, %.2f s, %llu epoch(s)\n",
			       (unsigned long long)samples, (unsigned long long)batches, el, (unsigned long long)epochs_done);
			printf("  throughput : %.0f samples/s, %.1f batches/s\n", (double)samples / el, (double)batches / el);
			printf("  disk       : %s, %.0f IOPS, mean read %.1f KiB (%llu reads, %.1f MiB)\n", bw,
			       (double)st.reads / el, mean_read / 1024, (unsigned long long)st.reads,
			       (double)st.bytes_read / 1048576.0);
			printf("  decoded    : %s\n", dec);
			printf("  read lat   : p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us\n", st.read_lat_us[0],
			       st.read_lat_us[1], st.read_lat_us[2], st.read_lat_us[3]);
			printf("  batch wait : p50 %.1f us, p99 %.1f us (consumer time in ab_loader_next); first window:"
			       " p50 %.1f ms, max %.1f ms\n",
			       st.wait_us[0], st.wait_us[1], st.first_wait_us[0] / 1000, st.first_wait_us[1] / 1000);
			if (nfirst) {
				double lp50, lmax;
				later_epochs(first, nfirst, &lp50, &lmax);
				printf("  first batch: epoch %llu %.1f ms (ab_loader_start %.1f ms)",
				       (unsigned long long)first[0].epoch, first[0].first_ms, first[0].start_ms);
				if (nfirst > 1)
					printf("; later epochs p50 %.1f ms, max %.1f ms (%zu)", lp50, lmax, nfirst - 1);
				printf("\n");
			}
			printf("  cpu        : user %.2f s/s, sys %.2f s/s\n", cpu_u / el, cpu_s / el);
			printf("  engine     : backend %s, io %s%s, queue depth %u, %u decode threads, %llu consumer(s)%s%s\n",
			       st.backend, st.io_mode, st.registered_buffers ? ", registered buffers" : "", st.queue_depth,
			       st.threads, (unsigned long long)consumers,
			       touch ? ", touch" : "", cold ? (dropped_all ? ", cold (page cache dropped)" : ", cold (fadvise)")
							     : "");
			printf("  sampling   : batch %llu, chunk %llu, preload %llu, %s\n", (unsigned long long)cf->batch_size,
			       (unsigned long long)cf->chunk_size, (unsigned long long)cf->preload_nchunks,
			       cf->shuffle ? "shuffled" : "sequential");
			printf("  decode     : %s", cf->whole_chunks ? "whole chunks" : "blosc blocks holding the rows");
			if (delay_ms > 0)
				printf("; consumers hold each batch %.3g ms", delay_ms);
			printf("\n");
			if (*st.note)
				printf("  note       : %s\n", st.note);
		}
	}
	free(th);
	free(first);
	ab_loader_destroy(b.ld);
	pthread_mutex_destroy(&b.mu);
	return ret;
}
