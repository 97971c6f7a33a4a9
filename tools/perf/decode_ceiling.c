/*
 * decode_ceiling: how fast one core turns a store's blosc chunks back into
 * bytes. This is the ceiling the loader is compared with: it cannot deliver
 * rows faster than cores x this rate, whatever the disk does.
 *
 * Usage: decode_ceiling --rows N [--seconds S] [--max-mb M] PATH...
 *
 * PATH... are whole blosc-compressed chunk files, or directories whose
 * regular files not starting with '.' are taken (so a zarr v2 array
 * directory can be named without overflowing the argument list): the chunk
 * files (a zarr v2 array's chunk
 * files, e.g. the files under X/data and X/indices of a CSR store, or
 * under X of a dense one) that together hold N rows of the matrix. The headers of all files are
 * read to learn the total decoded size; a random subset of at most M MiB of
 * compressed bytes is then loaded into memory (so the disk is not measured)
 * and decoded over and over with one thread for S seconds. Rows per second
 * are scaled from decoded bytes: rows/s = decoded B/s x N / total decoded B.
 *
 * Prints one JSON object on stdout. Built by make (build/tools/perf/decode_ceiling);
 * tools/perf/run.sh compiles it itself for an annbatch from elsewhere with
 *   cc -O2 decode_ceiling.c -lblosc
 */
#define _POSIX_C_SOURCE 200809L
#include <blosc.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct chunk {
	unsigned char *buf;
	size_t cbytes, nbytes;
};

static char **files;
static int nfiles, capfiles;

static void add_file(const char *path)
{
	if (nfiles == capfiles) {
		capfiles = capfiles ? 2 * capfiles : 1024;
		files = realloc(files, capfiles * sizeof *files);
		if (!files) {
			perror("decode_ceiling");
			exit(1);
		}
	}
	files[nfiles++] = strdup(path);
}

/* A directory contributes its visible regular files; anything else is taken
 * as a chunk file. */
static void add_path(const char *path)
{
	struct stat stt;
	if (stat(path, &stt) == 0 && S_ISDIR(stt.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char buf[4096];
			snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
			if (stat(buf, &stt) == 0 && S_ISREG(stt.st_mode))
				add_file(buf);
		}
		if (d)
			closedir(d);
	} else {
		add_file(path);
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 20;
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	double seconds = 5.0, rows = 0;
	double max_mb = 512;
	int first = 1;
	for (; first < argc; first++) {
		if (!strcmp(argv[first], "--seconds") && first + 1 < argc)
			seconds = atof(argv[++first]);
		else if (!strcmp(argv[first], "--rows") && first + 1 < argc)
			rows = atof(argv[++first]);
		else if (!strcmp(argv[first], "--max-mb") && first + 1 < argc)
			max_mb = atof(argv[++first]);
		else
			break;
	}
	for (int k = first; k < argc; k++)
		add_path(argv[k]);
	if (nfiles <= 0 || rows <= 0) {
		fprintf(stderr, "usage: decode_ceiling --rows N [--seconds S] [--max-mb M] PATH...\n");
		return 2;
	}
	blosc_init();

	/* Pass 1: the decoded size of every file from its 16-byte blosc header. */
	double total_nbytes = 0, total_cbytes = 0;
	size_t *nb = calloc(nfiles, sizeof *nb);
	int *order = malloc(nfiles * sizeof *order);
	for (int i = 0; i < nfiles; i++) {
		unsigned char hdr[16];
		FILE *f = fopen(files[i], "rb");
		if (!f || fread(hdr, 1, 16, f) != 16) {
			fprintf(stderr, "decode_ceiling: %s: cannot read blosc header\n", files[i]);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		total_cbytes += ftell(f);
		fclose(f);
		size_t n, c, bs;
		blosc_cbuffer_sizes(hdr, &n, &c, &bs);
		nb[i] = n;
		total_nbytes += n;
		order[i] = i;
	}

	/* Pass 2: a random sample of files into memory (fixed seed: the same
	 * sample on every run of the harness). */
	srand(12345);
	for (int i = nfiles - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	struct chunk *ch = calloc(nfiles, sizeof *ch);
	int nch = 0;
	size_t loaded = 0, maxn = 0;
	for (int k = 0; k < nfiles && loaded < max_mb * 1048576.0; k++) {
		const char *p = files[order[k]];
		size_t len;
		unsigned char *b = slurp(p, &len);
		if (!b) {
			fprintf(stderr, "decode_ceiling: %s: %s\n", p, strerror(errno));
			return 1;
		}
		ch[nch].buf = b;
		ch[nch].cbytes = len;
		ch[nch].nbytes = nb[order[k]];
		if (ch[nch].nbytes > maxn)
			maxn = ch[nch].nbytes;
		loaded += len;
		nch++;
	}
	unsigned char *dst = malloc(maxn ? maxn : 1);

	/* Decode round robin until the time is up; one thread, as one loader
	 * worker does. The destination is reused so page faults are not counted. */
	double dec = 0, comp = 0, t0 = now_s(), t;
	long ndec = 0;
	int i = 0;
	do {
		int r = blosc_decompress_ctx(ch[i].buf, dst, maxn, 1);
		if (r < 0 || (size_t)r != ch[i].nbytes) {
			fprintf(stderr, "decode_ceiling: blosc_decompress_ctx failed (%d)\n", r);
			return 1;
		}
		dec += r;
		comp += ch[i].cbytes;
		ndec++;
		if (++i == nch)
			i = 0;
		t = now_s() - t0;
	} while (t < seconds);

	double dec_bps = dec / t, comp_bps = comp / t;
	double rows_per_s = dec_bps * rows / total_nbytes;
	printf("{\"files\": %d, \"files_sampled\": %d, \"chunks_decoded\": %ld, \"seconds\": %.3f, "
	       "\"total_compressed_bytes\": %.0f, \"total_decoded_bytes\": %.0f, \"ratio\": %.3f, "
	       "\"decoded_bytes_per_s\": %.1f, \"compressed_bytes_per_s\": %.1f, "
	       "\"rows\": %.0f, \"decoded_bytes_per_row\": %.1f, \"rows_per_s\": %.1f, "
	       "\"blosc_version\": \"%s\"}\n",
	       nfiles, nch, ndec, t, total_cbytes, total_nbytes, total_nbytes / total_cbytes, dec_bps,
	       comp_bps, rows, total_nbytes / rows, rows_per_s, BLOSC_VERSION_STRING);
	return 0;
}
