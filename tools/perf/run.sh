#!/bin/bash
# The annbatch benchmark harness: one command, one machine, one table.
#
#   bash tools/perf/run.sh [--rows N] [--quick] [--out DIR] [--duration S]
#                          [--annbatch PATH] [--rebuild-data] [--data-only]
#
# Builds one synthetic data set (sparse CSR 20 000 genes ~2 000 nnz/row, and a
# dense 2 000-gene variant; float32, blosc-lz4) as zarr v2 (64-row chunks) and
# as a sharded zarr v3 annbatch collection, then measures side by side the
# physical ceilings (fio, single-core blosc decode), the zarr-python route and
# `annbatch bench`, and writes OUT/results.md and OUT/results.json
# (tools/perf/README.md explains the table). Everything goes under OUT, never
# into the repository. Needs root (page-cache drops, apt-get for fio).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3

OUT=/var/tmp/annbatch-perf
ROWS=""
QUICK=0
DUR=""
ANNBATCH=${ANNBATCH:-}
REBUILD=0
DATA_ONLY=0
ARGS_ORIG="$*"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--rows) ROWS=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--annbatch) ANNBATCH=$2; shift 2 ;;
	--rebuild-data) REBUILD=1; shift ;;
	--data-only) DATA_ONLY=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

# Sizes. The full run (300 000 rows: ~1.4 GB sparse per format) takes about
# 15-20 minutes on the 2-core reference VM, most of it writing the data once;
# --quick is a ~3 minute smoke run on 30 000 rows with 2 s measurements.
if [ "$QUICK" = 1 ]; then
	: "${ROWS:=30000}"; : "${DUR:=2}"; FIO_S=3; DEC_S=2
else
	: "${ROWS:=300000}"; : "${DUR:=15}"; FIO_S=10; DEC_S=5
fi
DENSE_ROWS=$ROWS
DENSE_VARS=2000

if [ -z "$ANNBATCH" ]; then
	for c in "$REPO/build/annbatch" "$(command -v annbatch || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then ANNBATCH=$c; break; fi
	done
fi
[ -n "$ANNBATCH" ] && [ -x "$ANNBATCH" ] || { echo "run.sh: no annbatch binary (build it, or pass --annbatch PATH)" >&2; exit 1; }
ANNBATCH=$(readlink -f "$ANNBATCH")
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (page-cache drops, apt-get)" >&2; exit 1; }

# What the harness needs, installed here rather than in scripts/deps.sh: only
# benchmarking uses them.
need=()
command -v fio >/dev/null || need+=(fio)
[ -x /usr/bin/time ] || need+=(time)
[ -f /usr/include/blosc.h ] || need+=(libblosc-dev)
$PY -c 'import zarr, numcodecs, scipy' 2>/dev/null || need+=(python3-zarr python3-numcodecs python3-scipy)
if [ ${#need[@]} -gt 0 ]; then
	echo "run.sh: installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

mkdir -p "$OUT/bin" "$OUT/data" "$OUT/runs"
RUNS=$OUT/runs
rm -f "$RUNS"/*
DATA=$OUT/data
# make builds the decode ceiling beside the annbatch binary; a binary from
# elsewhere (an installed annbatch) gets one compiled here
if [ -x "$(dirname "$ANNBATCH")/tools/perf/decode_ceiling" ]; then
	cp "$(dirname "$ANNBATCH")/tools/perf/decode_ceiling" "$OUT/bin/decode_ceiling"
else
	cc -O2 -Wall -o "$OUT/bin/decode_ceiling" "$HERE/decode_ceiling.c" -lblosc
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
HZ=$(getconf CLK_TCK)
# Busy jiffies of all CPUs (user nice system irq softirq steal).
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
drop_caches() { sync; echo 1 > /proc/sys/vm/drop_caches; }
# Reads every file of a store once so the following run finds it in the page
# cache ("warm").
prime() { find "$1" -type f -exec cat {} + > /dev/null; }

# run NAME KEY=VALUE... -- COMMAND...: runs COMMAND under /usr/bin/time -v,
# keeping its stdout (the JSON), stderr, max RSS, exact command line and the
# KEY=VALUE metadata the report uses to pair runs.
run() {
	local name=$1; shift
	local meta=()
	while [ "$1" != "--" ]; do meta+=("$1"); shift; done
	shift
	printf '%q ' "$@" > "$RUNS/$name.cmd"
	log "$name"
	# Busy CPU time of the whole machine around the run: minus the run's own
	# CPU time it tells how much other work shared the cores (the report flags
	# such runs). The load average cannot: it still counts the previous run.
	local c0 c1 t0 t1
	c0=$(cpu_busy); t0=$(date +%s.%N)
	if ! /usr/bin/time -v -o "$RUNS/$name.time" "$@" > "$RUNS/$name.out" 2> "$RUNS/$name.err"; then
		echo "run.sh: $name failed, see $RUNS/$name.err" >&2
		tail -3 "$RUNS/$name.err" >&2 || true
	fi
	c1=$(cpu_busy); t1=$(date +%s.%N)
	{
		printf '%s\n' "${meta[@]}"
		echo "machine_busy_s=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
		echo "wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')"
	} > "$RUNS/$name.meta"
}

{
	echo "started=$(date -Is)"
	echo "command=bash tools/perf/run.sh $ARGS_ORIG"
	echo "annbatch=$ANNBATCH"
	echo "git=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "cpus=$(nproc)"
	echo "mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "fio=$(fio --version)"
	echo "rows=$ROWS"; echo "dense_rows=$DENSE_ROWS"; echo "dense_vars=$DENSE_VARS"
	echo "duration=$DUR"; echo "quick=$QUICK"
	echo "load_start=$(loadavg)"
} > "$OUT/info.env"

# ---------------------------------------------------------------- data ----
# One synthetic data set per kind, written once as zarr v2 by `annbatch synth`
# and turned into a sharded v3 collection by `annbatch convert` (same rows,
# block-shuffled as a real collection is). A stamp keeps it across runs with
# the same sizes.
# (layout 3: convert's default output has unsplit 16 KiB blosc blocks)
stamp="rows=$ROWS dense_rows=$DENSE_ROWS dense_vars=$DENSE_VARS layout=3"
if [ "$REBUILD" = 1 ] || [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$stamp" ]; then
	log "writing data: $ROWS sparse rows, $DENSE_ROWS dense rows (annbatch synth + convert)"
	rm -rf "$DATA"/*
	# The two synth runs are single-threaded: run them side by side.
	"$ANNBATCH" synth "$DATA/sparse_v2.zarr" --format zarr2 --n-obs "$ROWS" --n-vars 20000 \
		--mean-nnz 2000 --compressor blosc-lz4 --n-obs-per-chunk 64 --seed 1 &
	p1=$!
	"$ANNBATCH" synth "$DATA/dense_v2.zarr" --format zarr2 --dense --n-obs "$DENSE_ROWS" \
		--n-vars "$DENSE_VARS" --mean-nnz 500 --compressor blosc-lz4 --n-obs-per-chunk 64 --seed 1 &
	p2=$!
	wait $p1; wait $p2
	"$ANNBATCH" convert "$DATA/sparse_v2.zarr" -o "$DATA/sparse_v3.zarr" --compressor blosc-lz4 \
		--n-obs-per-chunk 64 --seed 1
	"$ANNBATCH" convert "$DATA/dense_v2.zarr" -o "$DATA/dense_v3.zarr" --compressor blosc-lz4 \
		--n-obs-per-chunk 64 --seed 1
	echo "$stamp" > "$DATA/stamp"
fi
# The same sparse rows as a collection with libblosc's own blocks
# (--blosc-blocksize 0 --blosc-split: 256 KiB split by byte plane, convert's
# default before unsplit 16 KiB blocks), to show what they do to the loader.
if [ ! -f "$DATA/sparse_v3b.zarr/zarr.json" ]; then
	log "writing the sparse collection with libblosc's own blocks (convert --blosc-blocksize 0 --blosc-split)"
	"$ANNBATCH" convert "$DATA/sparse_v2.zarr" -o "$DATA/sparse_v3b.zarr" --compressor blosc-lz4 \
		--n-obs-per-chunk 64 --seed 1 --blosc-blocksize 0 --blosc-split --no-progress
fi
if [ "$DATA_ONLY" = 1 ]; then log "data ready in $DATA"; exit 0; fi
for s in sparse_v2 sparse_v3 sparse_v3b dense_v2 dense_v3; do
	echo "du_${s}=$(du -sb "$DATA/$s.zarr" | cut -f1)" >> "$OUT/info.env"
done

# ------------------------------------------------------------ ceilings ----
# Single-core blosc decode over the v2 store's chunk files (same codec and
# chunking as the v3 collection's inner chunks).
run decode_sparse kind=decode data=sparse -- "$OUT/bin/decode_ceiling" --rows "$ROWS" \
	--seconds "$DEC_S" "$DATA/sparse_v2.zarr/X/data" "$DATA/sparse_v2.zarr/X/indices"
run decode_dense kind=decode data=dense -- "$OUT/bin/decode_ceiling" --rows "$DENSE_ROWS" \
	--seconds "$DEC_S" "$DATA/dense_v2.zarr/X"

# -------------------------------------------------------------- annbatch ----
# ab NAME DATA FMT CS PN IO CACHE CONSUMERS [extra bench args...]
# cold: `bench --cold` drops the store from the page cache; a buffered cold run
# is one epoch (--epochs 1) so no byte is read twice, direct runs are timed.
# warm: the store is read once into the page cache first.
ab() {
	local name=$1 data=$2 fmt=$3 cs=$4 pn=$5 io=$6 cache=$7 cons=$8; shift 8
	local store=$DATA/${data}_$fmt.zarr
	local t=(--duration "$DUR") c=()
	if [ "$cache" = cold ]; then
		c=(--cold)
		if [ "$io" = buffered ]; then t=(--epochs 1); fi
	else
		prime "$store"
	fi
	local touch=0 threads=0 a
	for a in "$@"; do
		if [ "$a" = --touch ]; then touch=1; fi
	done
	if [ "${1:-}" = --threads ]; then threads=$2; fi
	run "$name" kind=annbatch data="$data" fmt="$fmt" cs="$cs" pn="$pn" io="$io" cache="$cache" \
		consumers="$cons" touch="$touch" threads="$threads" -- \
		"$ANNBATCH" bench "$store" --batch-size 4096 --chunk-size "$cs" --preload-nchunks "$pn" \
		--shuffle --seed 1 --io "$io" --consumers "$cons" "${c[@]}" "${t[@]}" --json "$@"
}

for cfg in "32 256" "256 32"; do
	set -- $cfg; cs=$1; pn=$2
	for io in direct buffered; do
		for cache in cold warm; do
			ab "ab_sparse_v3_cs${cs}_${io}_${cache}_c1" sparse v3 "$cs" "$pn" "$io" "$cache" 1
		done
	done
	ab "ab_sparse_v2_cs${cs}_direct_cold_c1" sparse v2 "$cs" "$pn" direct cold 1
	ab "ab_sparse_v2_cs${cs}_buffered_warm_c1" sparse v2 "$cs" "$pn" buffered warm 1
	ab "ab_dense_v3_cs${cs}_direct_cold_c1" dense v3 "$cs" "$pn" direct cold 1
	ab "ab_dense_v3_cs${cs}_buffered_warm_c1" dense v3 "$cs" "$pn" buffered warm 1
done
ab ab_dense_v2_cs32_direct_cold_c1 dense v2 32 256 direct cold 1
ab ab_dense_v2_cs32_buffered_warm_c1 dense v2 32 256 buffered warm 1
# 1 to 8 consumers on the headline configuration.
for n in 2 4 8; do
	ab "ab_sparse_v3_cs32_buffered_warm_c$n" sparse v3 32 256 buffered warm "$n"
	ab "ab_sparse_v3_cs32_direct_cold_c$n" sparse v3 32 256 direct cold "$n"
done
# Consumers that read every byte: the case where the loader may keep up, for
# the consumer-wait target.
ab ab_sparse_v3_cs32_buffered_warm_c1_touch sparse v3 32 256 buffered warm 1 --touch
ab ab_sparse_v3_cs32_buffered_warm_c2_touch sparse v3 32 256 buffered warm 2 --touch
# One decode thread, warm: the engine's own single-core figure.
ab ab_sparse_v3_cs32_buffered_warm_c1_t1 sparse v3 32 256 buffered warm 1 --threads 1
# Only the blosc blocks holding the rows (the default) against whole chunks,
# same data, same run; and the collection with 64 KiB blocks.
ab ab_sparse_v3_cs32_buffered_warm_c1_chunks sparse v3 32 256 buffered warm 1 --decode chunks
ab ab_sparse_v3_cs32_direct_cold_c1_chunks sparse v3 32 256 direct cold 1 --decode chunks
ab ab_sparse_v3b_cs32_buffered_warm_c1 sparse v3b 32 256 buffered warm 1
ab ab_sparse_v3b_cs32_direct_cold_c1 sparse v3b 32 256 direct cold 1
# A consumer that holds each batch 60 ms (a training step; ~68k rows/s asked,
# about half of what the loader delivers warm): the consumer-wait target.
ab ab_sparse_v3_cs32_buffered_warm_c1_hold sparse v3 32 256 buffered warm 1 --consumer-delay 60

# --------------------------------------------------------------- convert ----
# The collection writer on the sparse v2 store, cold, with its default
# memory budget (1 GiB): input MB/s and peak RSS.
drop_caches
rm -rf "$OUT/convert_out.zarr"
run convert_sparse kind=convert data=sparse input_bytes="$(du -sb "$DATA/sparse_v2.zarr" | cut -f1)" \
	memory_bytes=1073741824 -- "$ANNBATCH" convert "$DATA/sparse_v2.zarr" -o "$OUT/convert_out.zarr" --seed 1 \
	--no-progress
rm -rf "$OUT/convert_out.zarr"

# ------------------------------------------------------------------- fio ----
# Random O_DIRECT reads through io_uring on the largest file of the v3
# collection, at the mean read size the engine issued in the cold direct runs
# (rounded to 4 KiB) and its queue depth, plus the reference sizes of
# /work/shared/IOURING.md.
bigfile=$(find "$DATA/sparse_v3.zarr" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
fio_run() { # name bs depth role
	drop_caches
	run "$1" kind=fio bs="$2" depth="$3" role="$4" -- fio --name=randread --filename="$bigfile" \
		--readonly --rw=randread --bs="$2" --iodepth="$3" --ioengine=io_uring --direct=1 \
		--time_based --runtime="$FIO_S" --numjobs=1 --group_reporting --output-format=json
}
for cs in 32 256; do
	qd=64 mr=""
	mr=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["mean_read_bytes"], d["queue_depth"])' \
		"$RUNS/ab_sparse_v3_cs${cs}_direct_cold_c1.out" 2>/dev/null || true)
	if [ -n "$mr" ]; then
		set -- $mr
		bs=$(( ( ${1%.*} + 2048 ) / 4096 * 4096 ))
		if [ "$bs" -lt 4096 ]; then bs=4096; fi
		fio_run "fio_engine_cs${cs}" "$bs" "$2" "engine_cs$cs"
	fi
done
fio_run fio_4k 4k 32 ref
fio_run fio_64k 64k 32 ref
fio_run fio_1m 1m 32 ref

# --------------------------------------------------------- python route ----
py() { # name data cs pn cache
	local store=$DATA/${2}_v2.zarr
	if [ "$5" = cold ]; then drop_caches; else prime "$store"; fi
	run "$1" kind=python data="$2" fmt=v2 cs="$3" pn="$4" cache="$5" -- \
		$PY "$HERE/python_route.py" "$store" --chunk-size "$3" --preload-nchunks "$4" \
		--batch-size 4096 --duration "$DUR" --seed 1
}
for cfg in "32 256" "256 32"; do
	set -- $cfg
	py "py_sparse_cs$1_cold" sparse "$1" "$2" cold
	py "py_sparse_cs$1_warm" sparse "$1" "$2" warm
	py "py_dense_cs$1_warm" dense "$1" "$2" warm
done
py py_dense_cs32_cold dense 32 256 cold
py py_dense_cs256_cold dense 256 32 cold

echo "load_end=$(loadavg)" >> "$OUT/info.env"
echo "finished=$(date -Is)" >> "$OUT/info.env"
$PY "$HERE/report.py" "$OUT"
log "wrote $OUT/results.md and $OUT/results.json"
cat "$OUT/results.md"
