#!/bin/bash
# Resource ceilings of the loader over several epochs, through the real CLI
# (`annbatch iterate --epochs N`) on a CSR store written by Debian's
# python3-anndata:
#  (a) peak RSS (GNU time's "Maximum resident set size") stays under a bound
#      derived from the configuration, does not grow from 2 to 6 epochs by
#      more than a small slack, and does grow when max_windows is raised (so
#      the bound would catch a loader that ignored its ceiling);
#  (c) valgrind memcheck finds no error and no leak in a whole
#      open/iterate/destroy cycle, nor in one that ends with a read error.
# (b), open files per epoch, is a Check test: test_fds_per_epoch in
# tests/unit/test_faults.c.
#
# The figures are printed, so the log shows what was measured. Under the
# sanitizers (build-asan) RSS is the shadow memory's and valgrind cannot run
# the binary: the script skips there (LeakSanitizer covers leaks in that tree).
set -uo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
AB="$AB_TOP_BUILDDIR/annbatch"
LIBTOOL="$AB_TOP_BUILDDIR/libtool"
PY=/usr/bin/python3
if grep -Eq '^AB_CFLAGS = .*-fsanitize' "$AB_TOP_BUILDDIR/Makefile"; then
	echo "ceilings: sanitizer build, skipped (RSS and valgrind need a plain build)"
	exit 77
fi
have_time=1 have_vg=1
[ -x /usr/bin/time ] || { have_time=0; echo "ceilings: /usr/bin/time missing (scripts/deps.sh installs it): RSS checks skipped"; }
command -v valgrind >/dev/null || { have_vg=0; echo "ceilings: valgrind missing (scripts/deps.sh installs it): memcheck skipped"; }
[ $have_time -eq 1 ] || [ $have_vg -eq 1 ] || exit 77

work="$AB_TOP_BUILDDIR/tests/work-ceilings"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# 50 000 cells x 2 000 genes, 2 % dense (2 M non-zeros, about 7 MB on disk
# with anndata's default blosc), X/data and X/indices in chunks of 16 384
# elements so that a window reads a few chunks rather than the whole array.
D="$work/cells.zarr"
"$PY" - "$D" >"$work/gen.log" 2>&1 <<'EOF' || { cat "$work/gen.log"; exit 1; }
import sys
import warnings

warnings.filterwarnings("ignore")
import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
from anndata.experimental import write_elem

out = sys.argv[1]
rng = np.random.default_rng(11)
n, m = 50000, 2000
x = sp.random(n, m, density=0.02, format="csr", random_state=rng, dtype=np.float32)
x.data = np.ceil(x.data * 50).astype(np.float32)
ad = anndata.AnnData(X=x, obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]))
ad.write_zarr(out)
# write_zarr's `chunks` applies to dense X only: rewrite X with explicit chunks.
g = zarr.open_group(out, mode="a")
del g["X"]
write_elem(g, "X", x, dataset_kwargs={"chunks": (16384,)})
EOF
echo "ceilings: store $(du -sh "$D" | cut -f1) at $D"

CHUNK=64 PRELOAD=4 BATCH=32 THREADS=2
CFG=(--batch-size $BATCH --chunk-size $CHUNK --preload-nchunks $PRELOAD --shuffle --seed 1 --threads $THREADS)

# The bound, in KiB, for a max_windows. A window holds, at most:
#  - its decoded streams: W rows x the densest row's non-zeros x (value +
#    index bytes), plus 16 bytes a row (row numbers, indptr);
#  - the batches cut from it, which copy the same again;
#  - its read buffers: per chunk_size rows, every zarr chunk those rows'
#    elements can touch (ceil(elements / chunk elements) + 1), at the size of
#    the largest chunk file, plus one alignment block per read. A window owns
#    a registered read buffer (its slot: 1.25 x the epoch's first window's
#    reads) and, when a later window needs more than that, an ordinary one of
#    its own as well: 2.25 x the read bound in all.
# On top: each decode thread's scratch (a decoded chunk and the codec's
# buffer), the whole indptr (8 bytes a row, read once), doubled for what
# glibc keeps in its per-thread arenas after a free; and a fixed allowance
# for the process itself (program, shared libraries, thread stacks, io_uring
# rings, metadata): 10 MiB.
bound_kib() {
	"$PY" - "$D" "$1" $CHUNK $PRELOAD $THREADS <<'EOF'
import json, math, os, sys

import numpy as np

root, mw, chunk, preload, threads = sys.argv[1], *map(int, sys.argv[2:])
x = os.path.join(root, "X")
indptr = np.asarray(__import__("zarr").open_array(os.path.join(x, "indptr"), mode="r")[:])
max_row = int(np.diff(indptr).max())
W = chunk * preload
arrays = []
for name in ("data", "indices"):
    meta = json.load(open(os.path.join(x, name, ".zarray")))
    isz = np.dtype(meta["dtype"]).itemsize
    elems = meta["chunks"][0]
    files = [os.path.join(x, name, f) for f in os.listdir(os.path.join(x, name)) if not f.startswith(".")]
    arrays.append((isz, elems, max(os.path.getsize(f) for f in files)))
row_bytes = 16
streams = W * max_row * sum(a[0] for a in arrays) + W * row_bytes
batches = streams
reads = preload * sum((math.ceil(chunk * max_row / e) + 1) * (f + 4096) for _, e, f in arrays)
window = streams + batches + reads * 9 // 4
decode = threads * 2 * max(isz * e for isz, e, _ in arrays)
whole_indptr = 8 * (len(indptr) - 1)
allowance = 10 << 20
print((allowance + 2 * (mw * window + decode + whole_indptr)) // 1024)
EOF
}

# Peak RSS in KiB of one run; the smaller of two runs, since the peak
# depends a little on thread timing. 0 when the run fails (the checks on the
# figure then fail).
peak_kib() {
	local best=
	for _ in 1 2; do
		/usr/bin/time -f "%M" -o "$work/time" "$AB" iterate "$D" "$@" >"$work/out" 2>"$work/err" ||
			{ echo "FAIL: iterate $*: $(head -c 300 "$work/err")" >&2; echo 0; return; }
		local m
		m=$(tail -1 "$work/time")
		if [ -z "$best" ] || [ "$m" -lt "$best" ]; then best=$m; fi
	done
	echo "$best"
}

if [ $have_time -eq 1 ]; then
	# Batches per epoch, for checking that --epochs really ran them all.
	"$AB" iterate "$D" "${CFG[@]}" >"$work/one" 2>"$work/err" || bad "iterate: $(cat "$work/err")"
	per_epoch=$(wc -l <"$work/one")
	"$AB" iterate "$D" "${CFG[@]}" --epochs 3 >"$work/three" 2>"$work/err" || bad "iterate --epochs 3: $(cat "$work/err")"
	if [ "$(wc -l <"$work/three")" -eq $((3 * per_epoch)) ] &&
		cmp -s <(head -n "$per_epoch" "$work/three") "$work/one"; then ok
	else bad "--epochs 3 printed $(wc -l <"$work/three") batches, expected 3 x $per_epoch starting with epoch 0"; fi
	MW=3
	bound=$(bound_kib $MW)
	# KiB allowed between 2 and 6 epochs. The peak moves a little with thread
	# timing, and glibc's heap settles over the first epochs (its mmap
	# threshold rises after large frees, and each epoch's new threads take
	# whichever arena is free): up to 1.5 MiB was seen, flat after that.
	SLACK=3072
	for be in uring pread; do
		for io in buffered direct; do
			r1=$(peak_kib "${CFG[@]}" --max-windows $MW --backend $be --io $io --epochs 1)
			r2=$(peak_kib "${CFG[@]}" --max-windows $MW --backend $be --io $io --epochs 2)
			r6=$(peak_kib "${CFG[@]}" --max-windows $MW --backend $be --io $io --epochs 6)
			echo "ceilings: $be/$io max_windows=$MW peak RSS KiB: 1 epoch $r1, 2 epochs $r2, 6 epochs $r6 (bound $bound)"
			if [ "$r6" -gt 0 ] && [ "$r6" -le "$bound" ]; then ok; else bad "$be/$io: 6 epochs peak $r6 KiB > bound $bound KiB"; fi
			if [ "$r2" -gt 0 ] && [ "$r6" -le $((r2 + SLACK)) ]; then ok
			else bad "$be/$io: peak RSS grew from $r2 KiB (2 epochs) to $r6 KiB (6 epochs), slack $SLACK"; fi
		done
	done
	# With glibc's heap pinned (fixed mmap threshold, two arenas) the
	# allocator adds no drift of its own, so the loader's must be tiny.
	export MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2
	p2=$(peak_kib "${CFG[@]}" --max-windows $MW --epochs 2)
	p6=$(peak_kib "${CFG[@]}" --max-windows $MW --epochs 6)
	unset MALLOC_MMAP_THRESHOLD_ MALLOC_ARENA_MAX
	echo "ceilings: pinned glibc heap, peak RSS KiB: 2 epochs $p2, 6 epochs $p6"
	if [ "$p2" -gt 0 ] && [ "$p6" -le $((p2 + 1024)) ]; then ok
	else bad "pinned heap: peak RSS grew from $p2 KiB (2 epochs) to $p6 KiB (6 epochs), slack 1024"; fi
	# The measurement sees the ceiling: ten times the windows, well above it.
	big=$(peak_kib "${CFG[@]}" --max-windows 32 --epochs 1)
	echo "ceilings: max_windows=32 peak RSS $big KiB (bound for 32: $(bound_kib 32), for $MW: $bound)"
	if [ "$big" -gt "$bound" ]; then ok; else bad "max_windows=32 peaks at $big KiB, not above the max_windows=$MW bound $bound"; fi
fi

# Memcheck sees a kernel that fills io_uring buffers asynchronously as a
# write nobody made, and reports the decoded bytes as uninitialised: the
# pread pool (plain read system calls, which valgrind models) is checked.
if [ $have_vg -eq 1 ]; then
	vg() { # LOG ARGS...: memcheck one run of the CLI
		local log=$1; shift
		"$LIBTOOL" --mode=execute valgrind --leak-check=full --show-leak-kinds=definite,indirect \
			--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file="$log" \
			"$AB" iterate "$D" "$@" >/dev/null 2>"$work/vg-err"
	}
	clean() { # LOG: no errors, nothing definitely or indirectly lost
		local log=$1
		grep -q "ERROR SUMMARY: 0 errors" "$log" || return 1
		grep -q "All heap blocks were freed" "$log" && return 0
		grep -Eq "definitely lost: 0 bytes" "$log" && grep -Eq "indirectly lost: 0 bytes" "$log"
	}
	vg "$work/vg1" "${CFG[@]}" --max-windows 3 --backend pread --epochs 2
	rc=$?
	echo "ceilings: valgrind, 2 epochs: $(grep -E 'total heap usage|ERROR SUMMARY|lost:|All heap' "$work/vg1" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')"
	if [ $rc -eq 0 ] && clean "$work/vg1"; then ok; else bad "valgrind, 2 epochs (exit $rc): $(tail -20 "$work/vg1")"; fi
	# An epoch that fails on a read: the CLI reports it and still frees all.
	AB_IO_FAULT=eio@40 vg "$work/vg2" "${CFG[@]}" --max-windows 3 --backend pread --threads 4
	rc=$?
	echo "ceilings: valgrind, read error: $(grep -E 'ERROR SUMMARY|lost:|All heap' "$work/vg2" | sed 's/^==[0-9]*== *//' | tr '\n' ' ')"
	if [ $rc -eq 1 ] && grep -q "Input/output error" "$work/vg-err" && clean "$work/vg2"; then ok
	else bad "valgrind, read error (exit $rc, stderr: $(cat "$work/vg-err")): $(tail -20 "$work/vg2")"; fi
fi

echo "ceilings: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
