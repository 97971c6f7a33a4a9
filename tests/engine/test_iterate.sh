#!/bin/bash
# The loader through `annbatch iterate`: sampling semantics, batch contents
# against the stores' rows (written by independent writers), determinism across
# threads / backends / I/O modes, distributed ranks, resume, and errors.
set -uo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
AB="$AB_TOP_BUILDDIR/annbatch"
PY=/usr/bin/python3
CHECK="$PY $AB_TOP_SRCDIR/tests/engine/check_iterate.py"
# Not /tmp: the O_DIRECT cases need a filesystem that takes O_DIRECT.
work="$AB_TOP_BUILDDIR/tests/work-iterate"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$PY" "$AB_TOP_SRCDIR/tests/engine/make_loader_data.py" "$work/data" >/dev/null || exit 1
D="$work/data"
CSR=("$D/csr_a.zarr" "$D/csr_b.zarr")
NCSR=1933
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# run NAME OUTFILE ARGS...: iterate must succeed
run() {
	local n=$1 o=$2; shift 2
	"$AB" iterate "$@" >"$o" 2>"$work/err"
	local rc=$?
	[ $rc -eq 0 ] && return 0
	bad "$n: exit $rc ($(head -c 300 "$work/err"))"
	return 1
}
check() { local n=$1; shift; if "$@" 2>"$work/err"; then ok; else bad "$n: $(tail -3 "$work/err")"; fi; }

# 1. Sequential: rows in order, contents equal the stores' rows.
run seq "$work/seq" "${CSR[@]}" --batch-size 6 --chunk-size 20 --preload-nchunks 3 --emit index+rowsum &&
	check "seq contents" $CHECK csr-rowsum "$D/csr_expected.npz" "$work/seq"
# every row in order, and all of them (empty output must fail too)
check "seq order" bash -c "tr ' ' '\n' <'$work/seq' | cut -d: -f1 |
	awk -v n=$NCSR '\$1 != NR-1 {bad = 1; exit} END {exit bad || NR != n}'"
check "seq once" $CHECK once "$D/csr_expected.npz" "$work/seq" $NCSR 6

# 2. Shuffled: every row once, contents right, deterministic everywhere.
S=(--batch-size 8 --chunk-size 16 --preload-nchunks 4 --shuffle --seed 5)
run shuf "$work/shuf" "${CSR[@]}" "${S[@]}" --emit index+rowsum &&
	check "shuffle contents" $CHECK csr-rowsum "$D/csr_expected.npz" "$work/shuf"
check "shuffle once" $CHECK once "$D/csr_expected.npz" "$work/shuf" $NCSR 8
check "shuffle shuffles" bash -c "! cmp -s <(cut -d' ' -f1 '$work/shuf') <(cut -d' ' -f1 '$work/seq')"
for v in "--threads 1" "--threads 2" "--threads 8" "--backend pread" "--backend uring" "--io direct" \
	"--io buffered" "--queue-depth 1" "--max-windows 1" "--threads 8 --io direct --queue-depth 256"; do
	run "shuffle $v" "$work/v" "${CSR[@]}" "${S[@]}" --emit index+rowsum $v &&
		check "deterministic with $v" cmp -s "$work/v" "$work/shuf"
done
run "epoch 1" "$work/e1" "${CSR[@]}" "${S[@]}" --epoch 1
cut -d' ' -f1 "$work/e1" >"$work/e1.first"
cut -d' ' -f1 "$work/shuf" | sed 's/:.*//' >"$work/e0.first"
check "epoch changes the order" bash -c "! cmp -s '$work/e1.first' '$work/e0.first'"
run "seed 6" "$work/s6" "${CSR[@]}" --batch-size 8 --chunk-size 16 --preload-nchunks 4 --shuffle --seed 6
check "seed changes the order" bash -c "! cmp -s <(cut -d' ' -f1 '$work/s6') '$work/e0.first'"

# 3. drop_last, mask, num_samples, replacement.
run drop "$work/drop" "${CSR[@]}" "${S[@]}" --drop-last
check "drop_last" $CHECK once "$D/csr_expected.npz" "$work/drop" $NCSR 8 drop
run mask "$work/mask" "${CSR[@]}" "${S[@]}" --mask 100:900
check "mask rows" bash -c "tr ' ' '\n' <'$work/mask' | sort -n | awk 'NR==1 && \$1 != 100 {exit 1} {last=\$1; n++} END {exit !(last == 899 && n == 800)}'"
run nums "$work/nums" "${CSR[@]}" "${S[@]}" --num-samples 5000
check "num_samples batches" test "$(wc -l <"$work/nums")" -eq $(((5000 + 7) / 8))
run repl "$work/repl" "${CSR[@]}" "${S[@]}" --replacement --num-samples 300 --emit index+rowsum &&
	check "replacement contents" $CHECK csr-rowsum "$D/csr_expected.npz" "$work/repl"
check "replacement batches" test "$(wc -l <"$work/repl")" -eq $(((300 + 7) / 8))

# 4. Distributed: disjoint ranks, equal batch counts, from flags and env.
: >"$work/ranks"
counts=""
for r in 0 1 2; do
	run "rank $r" "$work/r$r" "${CSR[@]}" "${S[@]}" --rank $r --world-size 3
	tr ' ' '\n' <"$work/r$r" >>"$work/ranks"
	counts="$counts $(wc -l <"$work/r$r")"
	RANK=$r WORLD_SIZE=3 "$AB" iterate "${CSR[@]}" "${S[@]}" >"$work/renv" 2>/dev/null
	check "rank $r from env" cmp -s "$work/renv" "$work/r$r"
	OMPI_COMM_WORLD_RANK=$r OMPI_COMM_WORLD_SIZE=3 "$AB" iterate "${CSR[@]}" "${S[@]}" >"$work/renv" 2>/dev/null
	check "rank $r from OMPI env" cmp -s "$work/renv" "$work/r$r"
done
# A real multi-process launch: Open MPI sets OMPI_COMM_WORLD_RANK/SIZE.
if timeout 120 mpirun --allow-run-as-root --oversubscribe -np 3 bash -c \
	'"$0" iterate "${@}" >"'"$work"'/mpi.$OMPI_COMM_WORLD_RANK"' "$AB" "${CSR[@]}" "${S[@]}" 2>"$work/err"; then
	for r in 0 1 2; do check "mpirun rank $r" cmp -s "$work/mpi.$r" "$work/r$r"; done
else
	bad "mpirun -np 3: $(tail -3 "$work/err")"
fi
per=$((NCSR / 3 / 8 * 8))
check "ranks disjoint, union = first world*per rows" bash -c \
	"sort -n '$work/ranks' | awk -v n=$((3 * per)) '\$1 != NR-1 {exit 1} END {exit NR != n}'"
check "equal batch counts" test "$(echo $counts | tr ' ' '\n' | sort -u | wc -l)" -eq 1

# 5. Resume: --start-batch K yields exactly the batches after the first K.
for k in 1 5 13 40; do
	run "start $k" "$work/st" "${CSR[@]}" "${S[@]}" --start-batch $k --emit index+rowsum &&
		check "resume at $k" cmp -s "$work/st" <(tail -n +$((k + 1)) "$work/shuf")
done

# 6. Dense: an AnnData X, and a raw 3-D array chunked along every axis
# (int16 values; rows summed in stored order).
run dense "$work/dense" "$D/dense_a.zarr" --batch-size 16 --chunk-size 64 --preload-nchunks 2 --shuffle --seed 3 \
	--emit index+rowsum && check "dense contents" $CHECK dense-rowsum "$D/dense_expected.npz" "$work/dense" dense_a
check "dense once" $CHECK once "$D/dense_expected.npz" "$work/dense" 777 16
run stack "$work/stack" "$D/raw.zarr:stack" --batch-size 25 --chunk-size 25 --preload-nchunks 3 --shuffle --emit \
	index+rowsum --io direct && check "3-d contents" $CHECK dense-rowsum "$D/dense_expected.npz" "$work/stack" stack
check "3-d once" $CHECK once "$D/dense_expected.npz" "$work/stack" 500 25

# 6b. Decoding only the blosc blocks a window needs (--decode blocks, the
# default) against whole chunks: same batches, contents right with each value
# weighted by its column, and fewer bytes decompressed (so the partial path is
# the one taken). Odd chunk sizes cut blocks anywhere.
B=("$D/blocks_csr.zarr" "$D/blocks_v3.zarr")
for io in buffered direct; do
	P=(--batch-size 14 --chunk-size 7 --preload-nchunks 6 --shuffle --seed 9 --emit index+colsum --stats --io $io)
	"$AB" iterate "${B[@]}" "${P[@]}" >"$work/pb" 2>"$work/pb.err" &&
		check "blocks contents ($io)" $CHECK csr-colsum "$D/blocks_expected.npz" "$work/pb" ||
		bad "blocks iterate ($io): $(head -c 300 "$work/pb.err")"
	check "blocks once ($io)" $CHECK once "$D/blocks_expected.npz" "$work/pb" 3100 14
	"$AB" iterate "${B[@]}" "${P[@]}" --decode chunks >"$work/pc" 2>"$work/pc.err"
	check "blocks = chunks ($io)" cmp -s "$work/pb" "$work/pc"
	dec() { sed -n 's/.*bytes_decoded=\([0-9]*\).*/\1/p' "$1"; }
	check "blocks decode less ($io: $(dec "$work/pb.err") < $(dec "$work/pc.err"))" \
		test "$(dec "$work/pb.err")" -lt "$(dec "$work/pc.err")"
done
# Several epochs: frames seen whole once are then read in part (only the
# blocks holding the rows): same batches as whole chunks, fewer bytes read.
for io in buffered direct; do
	P=(--batch-size 14 --chunk-size 7 --preload-nchunks 6 --shuffle --seed 4 --emit index+colsum --stats --io $io
		--epochs 3)
	"$AB" iterate "${B[@]}" "${P[@]}" >"$work/pb" 2>"$work/pb.err" &&
		check "blocks read in part: contents ($io)" $CHECK csr-colsum "$D/blocks_expected.npz" "$work/pb" ||
		bad "blocks read in part ($io): $(head -c 300 "$work/pb.err")"
	"$AB" iterate "${B[@]}" "${P[@]}" --decode chunks >"$work/pc" 2>"$work/pc.err"
	check "blocks read in part = whole chunks ($io)" cmp -s "$work/pb" "$work/pc"
	rd() { sed -n 's/.* bytes_read=\([0-9]*\).*/\1/p' "$1"; }
	check "blocks read in part: fewer bytes ($io: $(rd "$work/pb.err") < $(rd "$work/pc.err"))" \
		test "$(rd "$work/pb.err")" -lt "$(rd "$work/pc.err")"
	for v in "--threads 1 --backend pread" "--max-windows 1 --queue-depth 1"; do
		"$AB" iterate "${B[@]}" "${P[@]}" $v >"$work/pv" 2>/dev/null
		check "blocks read in part, $v ($io)" cmp -s "$work/pb" "$work/pv"
	done
done
# The first window of a fresh loader: the frames' headers are read first
# (engine/probe.c), so frames never seen whole are read in part too. A
# collection as convert writes it (16 KiB blosc blocks, frames of ~150 KB);
# one window in which each frame is met once: fewer bytes read than whole
# chunks, the same batches as decoding whole chunks.
"$AB" synth "$work/big.zarr" --format zarr2 --n-obs 3000 --n-vars 20000 --mean-nnz 2000 --compressor blosc-lz4 \
	--n-obs-per-chunk 64 --seed 2 >/dev/null 2>"$work/err" &&
	"$AB" convert "$work/big.zarr" -o "$work/bigc.zarr" --n-obs-per-chunk 64 --seed 1 --no-progress 2>"$work/err" ||
	bad "big collection: $(head -c 300 "$work/err")"
for io in buffered direct; do
	P=(--batch-size 256 --chunk-size 32 --preload-nchunks 8 --shuffle --seed 11 --num-samples 256
		--emit index+colsum --stats --io $io)
	"$AB" iterate "$work/bigc.zarr" "${P[@]}" >"$work/pb" 2>"$work/pb.err" ||
		bad "first window in part ($io): $(head -c 300 "$work/pb.err")"
	"$AB" iterate "$work/bigc.zarr" "${P[@]}" --decode chunks >"$work/pc" 2>"$work/pc.err"
	check "first window in part = whole chunks ($io)" cmp -s "$work/pb" "$work/pc"
	check "first window read in part: fewer bytes ($io: $(rd "$work/pb.err") < $(rd "$work/pc.err"))" \
		test "$(rd "$work/pb.err")" -lt "$(rd "$work/pc.err")"
done
rm -rf "$work/big.zarr" "$work/bigc.zarr"
R=(--batch-size 10 --chunk-size 5 --preload-nchunks 4 --shuffle --seed 2 --emit index+colsum --stats)
run "blocks dense" "$work/pd" "$D/blocks_raw.zarr:m" "${R[@]}" &&
	check "blocks dense contents" $CHECK dense-colsum "$D/blocks_dense.npz" "$work/pd" m
run "blocks dense float32" "$work/pf" "$D/blocks_raw.zarr:m" "${R[@]}" --float32 --threads 1 &&
	check "blocks dense float32 = default" cmp -s "$work/pd" "$work/pf"
run "dense chunks" "$work/pe" "$D/blocks_raw.zarr:m" "${R[@]}" --decode chunks &&
	check "blocks dense = chunks" cmp -s "$work/pd" "$work/pe"
run "csr colsum" "$work/cc" "${CSR[@]}" "${S[@]}" --emit index+colsum &&
	check "csr colsum contents" $CHECK csr-colsum "$D/csr_expected.npz" "$work/cc"

# 7. obs columns with batches, and the class sampler on data grouped by class.
G="$D/grouped.zarr"
run obs "$work/obs" "$G" --batch-size 8 --chunk-size 16 --preload-nchunks 4 --shuffle --obs ct,n,maybe \
	--emit index+obs && check "obs values" $CHECK obs "$D/csr_expected.npz" "$work/obs"
run class "$work/class" "$G" --batch-size 10 --chunk-size 20 --preload-nchunks 4 --class-column ct \
	--num-samples 1000 --obs ct --emit index+obs --seed 4 &&
	check "class batches" $CHECK class "$D/csr_expected.npz" "$work/class" 1000 0,1,2
run "class weights" "$work/classw" "$G" --batch-size 10 --chunk-size 20 --preload-nchunks 4 --class-column ct \
	--class-weights 0,1,0 --num-samples 400 --obs ct --emit index+obs &&
	check "class weights" $CHECK class "$D/csr_expected.npz" "$work/classw" 400 1
run "class threads" "$work/class8" "$G" --batch-size 10 --chunk-size 20 --preload-nchunks 4 --class-column ct \
	--num-samples 1000 --obs ct --emit index+obs --seed 4 --threads 8 --backend pread &&
	check "class deterministic" cmp -s "$work/class" "$work/class8"

# 8. bench: the report's keys and counts (speed itself is never asserted).
"$AB" bench "${CSR[@]}" "${S[@]}" --epochs 2 --consumers 3 --touch --json >"$work/bench.json" 2>"$work/err"
check "bench json" "$PY" - "$work/bench.json" $NCSR <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
keys = "samples_per_s batches_per_s disk_bytes_per_s read_iops mean_read_bytes decoded_bytes_per_s read_lat_us wait_us cpu_user_s cpu_sys_s io_backend io_mode rows".split()
missing = [k for k in keys if k not in d]
assert not missing, missing
assert set(d["read_lat_us"]) == {"p50", "p90", "p99", "p999"} and set(d["wait_us"]) == {"p50", "p99"}
assert d["samples"] == 2 * n and d["rows"] == 2 * n and d["epochs"] == 2, d
assert d["io_backend"] in ("uring", "pread") and d["io_mode"] in ("direct", "buffered")
assert d["reads"] > 0 and d["disk_bytes"] > 0 and d["threads"] >= 1
# as root the locked-memory limit allows registering the read buffers
assert d["io_backend"] != "uring" or d["registered_buffers"] is True, d
# the collection's shard files go into the ring's file table
assert d["io_backend"] != "uring" or d["registered_files"] >= 2, d
assert set(d["first_wait_us"]) == {"p50", "max"} and d["first_wait_us"]["max"] > 0, d
assert d["decode"] == "blocks" and d["consumer_delay_ms"] == 0, d
PYEOF
# a consumer that holds each batch 20 ms: the loader keeps up on this small
# store, so the steady waits are far below the hold time (the first window's
# waits are reported apart)
"$AB" bench "${CSR[@]}" "${S[@]}" --num-samples 400 --epochs 1 --consumer-delay 20 --decode chunks --json >"$work/bench.json" 2>"$work/err"
check "bench consumer delay" "$PY" - "$work/bench.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["consumer_delay_ms"] == 20 and d["decode"] == "chunks", d
# 50 batches of 20 ms: at least 1 s
assert d["batches"] == 50 and d["elapsed_s"] >= 50 * 0.020, d
assert d["wait_us"]["p50"] < 20000, d
PYEOF
"$AB" bench "${CSR[@]}" "${S[@]}" --duration 0.5 --cold --io direct >"$work/bench.txt" 2>"$work/err"
check "bench text" grep -q "samples/s" "$work/bench.txt"
check "bench io mode" grep -q "io direct" "$work/bench.txt"

# 9. Errors: one line, non-zero exit, naming the problem.
expect_fail() { # name substring args...
	local n=$1 sub=$2; shift 2
	"$AB" "${CMD:-iterate}" "$@" >/dev/null 2>"$work/err"; local rc=$?
	if [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qi -- "$sub" "$work/err"; then ok
	else bad "$n (rc=$rc, stderr: $(cat "$work/err"))"; fi
}
expect_fail "batch > window" "cannot exceed" "${CSR[@]}" --batch-size 100 --chunk-size 10 --preload-nchunks 2
expect_fail "batch does not divide" "divisible" "${CSR[@]}" --batch-size 3 --chunk-size 10 --preload-nchunks 2
expect_fail "mask past end" "exceeds" "${CSR[@]}" --mask 0:99999
expect_fail "mixed trailing shape" "trailing shape" "$D/dense_a.zarr" "$D/raw.zarr:stack"
expect_fail "dense with sparse" "mix" "$D/dense_a.zarr" "$D/csr_a.zarr"
expect_fail "missing input" "not found" "$D/none.zarr"
expect_fail "bad option" "emit" "${CSR[@]}" --emit rows
CMD=bench expect_fail "bench duration and epochs" "exclude" --duration 1 --epochs 2 "${CSR[@]}"
CMD=bench expect_fail "bench negative delay" "consumer-delay" --consumer-delay -1 "${CSR[@]}"
expect_fail "bad decode mode" "decode must be" "${CSR[@]}" --decode some
expect_fail "no such obs column" "no obs column 'ct'" "${CSR[@]}" --obs ct --emit index+obs
expect_fail "class run too short" "shorter than chunk_size" "$G" --class-column ct --chunk-size 300 \
	--batch-size 10 --preload-nchunks 1
expect_fail "class weights count" "class weights" "$G" --class-column ct --class-weights 1,2 --chunk-size 20 \
	--batch-size 10 --preload-nchunks 1
cp -r "$D/csr_a.zarr" "$work/broken.zarr"
truncate -s 20 "$work/broken.zarr/X/data/1"
expect_fail "truncated chunk" "chunk 1" "$work/broken.zarr" --batch-size 10 --chunk-size 10 --preload-nchunks 4
cp -r "$D/csr_b.zarr" "$work/broken3.zarr"
printf 'XXXX' | dd of="$work/broken3.zarr/dataset_0/X/data/c/0" bs=1 seek=10 conv=notrunc status=none
expect_fail "corrupt shard" "shard" "$work/broken3.zarr" --batch-size 10 --chunk-size 10 --preload-nchunks 4
cp -r "$D/csr_a.zarr" "$work/fifo.zarr"
rm "$work/fifo.zarr/X/data/1" && mkfifo "$work/fifo.zarr/X/data/1"
expect_fail "a FIFO in place of a chunk" "not a regular file" "$work/fifo.zarr" --batch-size 10 --chunk-size 10 \
	--preload-nchunks 4

echo "iterate: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
