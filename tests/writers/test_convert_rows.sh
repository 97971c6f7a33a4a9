#!/bin/bash
# test_convert_rows.sh - `annbatch convert`: which rows go where, and the run's
# life cycle.
#
#  - --groupby sorts missing values (NaN, nullable int/bool, categorical -1)
#    after all others, stable, as pandas' sort_values(na_position="last");
#  - --dataset-size (rows, or bytes of X) gives ceil(total / size) datasets of
#    np.array_split's row counts, whatever --shuffle-chunk-size is;
#  - a dataset's X is not held in memory: convert runs under an address-space
#    limit well below it, with --memory below it too, in one dataset;
#  - SIGINT/SIGTERM and a full disk leave no temporary directory; an output
#    inside an input (or an input inside the output) is refused; so is
#    `synth --force` over a directory that is not a zarr store;
#  - too many open files is reported as such; a summary line on success.
# Inputs are written by python3-anndata; the collections are read by zarrita
# (npm) and compared with what pandas/numpy compute (convert_rows.py).
SUITE=rows
. "$(dirname "$0")/common.sh"
trap 'umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT

cd "$work" || exit 1
if ! $PY "$here/convert_rows.py" make "$work" >make.log 2>&1; then
	cat make.log
	echo "FAIL - writing the inputs with python3-anndata"
	echo "0 passed, 1 failed"
	exit 1
fi

# conv NAME OUT CHECKARGS... -- CONVERTARGS...: convert, dump with zarrita, check
conv() {
	local out=$1
	shift
	local chk=()
	while [ "$1" != "--" ]; do chk+=("$1"); shift; done
	shift
	rm -rf "$out" "d_$out"
	"$AB" convert "$@" -o "$out" --no-progress || return 1
	node "$node_dir/zarrita_dump_rows.mjs" "$out" "d_$out" >/dev/null || return 1
	$PY "$here/convert_rows.py" "${chk[0]}" "d_$out" "${chk[@]:1}"
}

# ---- --groupby with missing values
check "groupby: the issue's float values 2,nan,1,nan,0,3,nan,1" \
	conv g0.zarr order f small.zarr -- small.zarr --no-shuffle --groupby f
for col in f ni nb cat; do
	check "groupby $col (missing last, stable) on zarr + h5ad, as pandas" \
		conv "g_$col.zarr" order "$col" grp.zarr grp.h5ad -- grp.zarr grp.h5ad --no-shuffle --groupby "$col"
done
check "groupby ni,f,nb: several columns with missing values, as pandas" \
	conv g_multi.zarr order ni,f,nb grp.zarr grp.h5ad -- grp.zarr grp.h5ad --no-shuffle --groupby ni,f,nb
check "groupby f shuffled over 4 datasets: each sorted, missing last, every row once" \
	conv g_shuf.zarr sorted f grp.zarr grp.h5ad -- grp.zarr grp.h5ad --groupby f --dataset-size 120 \
	--shuffle-chunk-size 16 --seed 3

# ---- --dataset-size
check "dataset-size 90 rows, inputs of 200 + 50, no shuffle: np.array_split" \
	conv s1.zarr split rows 90 --ordered r200.zarr r50.zarr -- r200.zarr r50.zarr --dataset-size 90 --no-shuffle
check "dataset-size 90 rows, shuffled, --shuffle-chunk-size 1000 > dataset" \
	conv s2.zarr split rows 90 r200.zarr r50.zarr -- r200.zarr r50.zarr --dataset-size 90
check "dataset-size 90 rows, shuffled, --shuffle-chunk-size 7" \
	conv s3.zarr split rows 90 r200.zarr r50.zarr -- r200.zarr r50.zarr --dataset-size 90 --shuffle-chunk-size 7
check "dataset-size 249 rows: two datasets of 125" \
	conv s4.zarr split rows 249 r200.zarr r50.zarr -- r200.zarr r50.zarr --dataset-size 249
check "dataset-size 1 row: one dataset a row" \
	conv s5.zarr split rows 1 --ordered r50.zarr -- r50.zarr --dataset-size 1 --no-shuffle
check "dataset-size 1MB on 271 x 4000 sparse: bytes of X over 1MB datasets" \
	conv s6.zarr split bytes 1000000 hs.zarr -- hs.zarr --dataset-size 1MB
check "dataset-size 100KB, no shuffle: bytes of X, np.array_split" \
	conv s7.zarr split bytes 100000 --ordered hs.zarr -- hs.zarr --dataset-size 100KB --no-shuffle

# ---- --shard-rows: shards sized in rows (annbatch's integer zarr_shard_size)
check "shard-rows 50, sparse, 10-row chunks: every row once, in order" \
	conv sr1.zarr split rows 100000 --ordered hs.zarr -- hs.zarr --no-shuffle --shard-rows 50 --n-obs-per-chunk 10
check "shard-rows 50: X/data and X/indices shards hold 50 rows' mean non-zeros in whole chunks" $PY - <<'EOF2'
import json, math
import anndata, warnings
warnings.filterwarnings("ignore")
m = json.load(open("sr1.zarr/zarr.json"))["consolidated_metadata"]["metadata"]
a = anndata.read_zarr("hs.zarr")
mean = a.X.nnz / a.n_obs
for part in ("data", "indices"):
    arr = m["dataset_0/X/" + part]
    shard = arr["chunk_grid"]["configuration"]["chunk_shape"][0]
    inner = arr["codecs"][0]["configuration"]["chunk_shape"][0]
    assert shard % inner == 0, (part, shard, inner)
    assert 50 * mean <= shard < 50 * mean + inner, (part, shard, inner, mean)
EOF2
check "shard-rows 30, dense, 8-row chunks: shards of 32 rows" bash -c '
	"$0" synth dn.zarr --dense --n-obs 200 --n-vars 30 --seed 2 &&
	"$0" convert dn.zarr -o sr2.zarr --no-shuffle --shard-rows 30 --n-obs-per-chunk 8 --no-progress &&
	'"$PY"' -c "import json; m = json.load(open(\"sr2.zarr/zarr.json\"))[\"consolidated_metadata\"][\"metadata\"]; x = m[\"dataset_0/X\"]; assert x[\"chunk_grid\"][\"configuration\"][\"chunk_shape\"][0] == 32, x[\"chunk_grid\"]"' "$AB"

# ---- SIGINT / SIGTERM: the temporary directory goes, exit 128 + signal
"$AB" synth big.zarr --n-obs 200000 --n-vars 2000 --mean-nnz 300 --seed 1 >/dev/null 2>&1
sigrun() { # sigrun SIG WHEN: convert big.zarr; once its temporary directory exists
	# (WHEN=dir: reading) or holds a file (WHEN=file: writing), send SIG
	rm -rf sig.zarr .sig.zarr.annbatch-tmp-*
	set -m # without job control bash starts background jobs with SIGINT ignored
	"$AB" convert big.zarr -o sig.zarr --no-progress 2>sig_err.txt &
	local pid=$! i tmp
	set +m
	for i in $(seq 1200); do
		tmp=$(ls -d .sig.zarr.annbatch-tmp-* 2>/dev/null)
		if [ -n "$tmp" ] && { [ "$2" = dir ] || [ -n "$(find "$tmp" -type f 2>/dev/null | head -1)" ]; }; then
			break
		fi
		sleep 0.05
	done
	kill -"$1" "$pid"
	wait "$pid"
	echo $? >sig_rc.txt
}
for s in "INT 130 file writing" "TERM 143 file writing" "INT 130 dir reading" "TERM 143 dir reading"; do
	set -- $s
	sigrun "$1" "$3" >/dev/null 2>&1
	check "SIG$1 while $4: exit $2, no temporary directory, no output, one line" bash -c '
		test "$(cat sig_rc.txt)" = "$0" && ! ls -a | grep -q "^\.sig\.zarr\.annbatch-tmp-" && test ! -e sig.zarr &&
		test "$(wc -l <sig_err.txt)" -eq 1 && grep -q "interrupted by SIG$1" sig_err.txt || { cat sig_err.txt; ls -a; false; }' "$2" "$1"
done

# ---- a full disk: reported by name, nothing left behind
mkdir -p small
if mount -t tmpfs -o size=2m tmpfs small 2>/dev/null; then
	"$AB" convert big.zarr -o small/out.zarr --no-progress 2>full1.txt
	check "full disk (sparse convert): non-zero exit, one line naming ENOSPC, nothing left" bash -c '
		test $0 -ne 0 && test "$(wc -l <full1.txt)" -eq 1 && grep -q "no space left on device" full1.txt &&
		test -z "$(ls -A small)" || { cat full1.txt; ls -A small; false; }' $?
	"$AB" synth big_head.zarr --n-obs 100 --n-vars 2000 --mean-nnz 300 --seed 1 >/dev/null 2>&1
	"$AB" convert big_head.zarr -o small/out.zarr --no-progress 2>/dev/null # fits, the same genes as big.zarr
	"$AB" synth small/dense.zarr --dense --n-obs 20000 --n-vars 500 --seed 2 2>full2.txt
	check "full disk (synth --dense): non-zero exit, one line naming ENOSPC, no temporary directory" bash -c '
		test $0 -ne 0 && test "$(wc -l <full2.txt)" -eq 1 && grep -q "no space left on device" full2.txt &&
		test "$(ls -A small)" = out.zarr || { cat full2.txt; ls -A small; false; }' $?
	cp -a small/out.zarr out_before.zarr
	"$AB" convert big.zarr -o small/out.zarr --no-progress 2>full3.txt
	check "full disk while adding: one line naming ENOSPC, the collection unchanged" bash -c '
		test $0 -ne 0 && grep -q "no space left on device" full3.txt && test "$(ls -A small)" = out.zarr &&
		diff -r out_before.zarr small/out.zarr || { cat full3.txt; ls -A small; false; }' $?
	umount small
else
	echo "skip - full disk (cannot mount a small tmpfs here)"
fi

# ---- an output inside an input, an input inside the output
cp -a grp.zarr grp_before.zarr
ln -s grp.zarr grp_link.zarr
for o in grp.zarr/obsm/c.zarr grp.zarr/c.zarr grp_link.zarr/obsm/c.zarr grp.zarr ./grp.zarr/; do
	check "convert grp.zarr -o $o: refused in one line, the input unchanged" bash -c '
		! "$0" convert grp.zarr -o "$1" --no-progress 2>in_err.txt && test "$(wc -l <in_err.txt)" -eq 1 &&
		grep -q "the input grp.zarr" in_err.txt && diff -r grp_before.zarr grp.zarr || { cat in_err.txt; false; }' "$AB" "$o"
done
mkdir -p outdir && cp -a r50.zarr outdir/
check "convert outdir/r50.zarr -o outdir: the input is inside the output, refused" bash -c '
	! "$0" convert outdir/r50.zarr -o outdir --no-progress 2>in_err.txt && test "$(wc -l <in_err.txt)" -eq 1 &&
	grep -q "inside the output" in_err.txt && diff -r r50.zarr outdir/r50.zarr || { cat in_err.txt; false; }' "$AB"
check "convert r50.zarr -o grp.zarr/../r50_copy.zarr: a sibling is fine" bash -c '
	"$0" convert r50.zarr -o grp.zarr/../r50_copy.zarr --no-progress 2>/dev/null && test -d r50_copy.zarr/dataset_0' "$AB"

# ---- synth --force replaces a zarr store only
mkdir -p notzarr && echo keep >notzarr/keep.txt && echo keep >plain.txt
for o in notzarr plain.txt; do
	check "synth $o --force: not a zarr store, refused in one line, kept" bash -c '
		! "$0" synth "$1" --force --n-obs 10 --n-vars 5 2>f_err.txt && test "$(wc -l <f_err.txt)" -eq 1 &&
		grep -q "not a zarr store" f_err.txt && grep -q keep "$1"* -r || { cat f_err.txt; false; }' "$AB" "$o"
done
check "synth --force over a zarr store replaces it" bash -c '
	"$0" synth syn.zarr --n-obs 10 --n-vars 5 >/dev/null && "$0" synth syn.zarr --force --n-obs 12 --n-vars 5 >/dev/null &&
	'"$PY"' -c "import json; assert json.load(open(\"syn.zarr/obs/_index/zarr.json\"))[\"shape\"] == [12]"' "$AB"

# ---- bounded memory: a dataset's X goes through the scratch file, never held
# big.zarr's X takes 480 MB held whole (60 M non-zeros, float32 values and
# int32 indices). Under a 250 MB address-space limit, with --memory 128MB (far
# below X), convert still writes one dataset, the same bytes as with X held
# in memory (--memory 4GB, no limit), and leaves nothing beside the output. A
# writer that held the dataset runs out of memory, or makes smaller datasets
# to fit --memory. MALLOC_ARENA_MAX=1: glibc reserves 64 MB of address space
# for each thread's own arena, as timing decides (the writer has two helper
# threads); that is not memory, and it would make the limit a lottery.
if grep -Eq '^AB_CFLAGS = .*-fsanitize' "$top_build/Makefile" 2>/dev/null; then
	echo "skip - bounded memory: a sanitizer build's address space is its shadow memory's"
else
	check "ulimit -v 250MB, --memory 128MB, 480 MB of X: one dataset, the bytes of X held, no scratch left" bash -c '
		mkdir -p mem && "$0" convert big.zarr -o mem/free.zarr --memory 4GB --no-progress 2>/dev/null &&
		(ulimit -v 250000 && MALLOC_ARENA_MAX=1 "$0" convert big.zarr -o mem/lim.zarr --memory 128MB --no-progress) &&
		test "$(ls mem/lim.zarr | grep -c ^dataset_)" -eq 1 && diff -r mem/free.zarr mem/lim.zarr &&
		test "$(ls -A mem)" = "$(printf "free.zarr\nlim.zarr")"' "$AB"
fi

# ---- too many open files
mkdir -p many
for i in $(seq 1 40); do cp grp.h5ad many/m$i.h5ad; cp -a r50.zarr many/z$i.zarr; done
check "ulimit -n 30 with 80 inputs: too many open files, with the limit, one line" bash -c '
	ulimit -n 30 && ! "$0" convert many/* -o manyout.zarr --no-progress 2>fd_err.txt &&
	test "$(wc -l <fd_err.txt)" -eq 1 && grep -q "too many open files (limit 30" fd_err.txt || { cat fd_err.txt; false; }' "$AB"
check "ulimit -n 30 for .h5ad inputs alone: too many open files, not \"not an HDF5 file\"" bash -c '
	ulimit -n 30 && ! "$0" convert many/*.h5ad -o manyout.zarr --no-progress 2>fd_err.txt &&
	grep -q "too many open files (limit 30" fd_err.txt && ! grep -q "HDF5" fd_err.txt || { cat fd_err.txt; false; }' "$AB"
check "soft ulimit -n 30, hard higher: convert raises it, every row once" bash -c '
	test "$(ulimit -Hn)" = unlimited -o "$(ulimit -Hn)" -gt 200 &&
	(ulimit -Sn 30 && "$0" convert many/* -o manyout.zarr --no-progress 2>/dev/null) &&
	node "$1/zarrita_dump_rows.mjs" manyout.zarr d_many >/dev/null && '"$PY"' "$2/convert_rows.py" split d_many rows 1e9 many/*' \
	"$AB" "$node_dir" "$here"

# ---- the summary line, and the message for an existing non-collection output
check "success off a terminal: one summary line with datasets, rows, genes, dtype, bytes, seconds" bash -c '
	"$0" convert r200.zarr r50.zarr -o sum.zarr --dataset-size 90 --no-progress 2>sum.txt &&
	'"$PY"' - sum.zarr sum.txt r200.zarr r50.zarr <<"EOF"
import os, re, sys, warnings
warnings.filterwarnings("ignore")
import anndata
out, txt, ins = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3:]
lines = txt.splitlines()
assert len(lines) == 1, lines
ads = [anndata.read_zarr(p) for p in ins]
genes = len(set().union(*[set(a.var_names) for a in ads]))
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
m = re.search(r"(\d+) datasets, (\d+) rows, (\d+) genes, (\w+) csr_matrix X, (\d+) bytes on disk, ([\d.]+) s$", lines[0])
assert m and out in lines[0], lines[0]
assert int(m.group(1)) == 3 and int(m.group(2)) == sum(a.n_obs for a in ads), lines[0]
assert int(m.group(3)) == genes and m.group(4) == str(ads[0].X.dtype), lines[0]
assert int(m.group(5)) == size, (lines[0], size)
EOF' "$AB"
if command -v script >/dev/null; then
	check "on a terminal: the progress line and the summary" bash -c '
		script -qec "$0 convert r50.zarr -o tty.zarr" /dev/null >tty.txt 2>&1 &&
		grep -q "50/50 rows" tty.txt && grep -q "wrote tty.zarr: 1 dataset, 50 rows" tty.txt || { cat tty.txt; false; }' "$AB"
fi
$PY -c "import anndata, numpy as np; anndata.AnnData(X=np.ones((2, 2), np.float32)).write_h5ad('existing.h5ad')" 2>/dev/null
check "convert -o existing.h5ad: one line, the path once, no pointer back at convert" bash -c '
	! "$0" convert grp.h5ad -o existing.h5ad --no-progress 2>ex_err.txt && test "$(wc -l <ex_err.txt)" -eq 1 &&
	test "$(grep -o existing.h5ad ex_err.txt | wc -l)" -eq 1 && grep -q "not an annbatch collection" ex_err.txt &&
	! grep -q "read by .annbatch convert" ex_err.txt || { cat ex_err.txt; false; }' "$AB"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
