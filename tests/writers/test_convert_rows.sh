#!/bin/bash
# test_convert_rows.sh - `annbatch convert`: which rows go where, and the run's
# life cycle.
#
#  - --groupby sorts missing values (NaN, nullable int/bool, categorical -1)
#    after all others, stable, as pandas' sort_values(na_position="last");
#  - --dataset-size (rows, or bytes of X) gives ceil(total / size) datasets of
#    np.array_split's row counts, whatever --shuffle-chunk-size is;
#  - SIGINT/SIGTERM and a full disk leave no temporary directory; an output
#    inside an input (or an input inside the output) is refused; so is
#    `synth --force` over a directory that is not a zarr store;
#  - too many open files is reported as such; a summary line on success.
# Inputs are written by python3-anndata; the collections are read by zarrita
# (npm) and compared with what pandas/numpy compute (convert_rows.py).
set -u
top_src=${AB_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
top_build=${AB_TOP_BUILDDIR:-$top_src/build}
AB=${AB_BIN:-$top_build/annbatch}
PY=/usr/bin/python3
here="$top_src/tests/writers"
work=$(mktemp -d "${TMPDIR:-/tmp}/ab-rows.XXXXXX")
trap 'umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { # check NAME CMD...
	local name=$1
	shift
	if "$@" >"$work/last.log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$work/last.log" | tail -20; fi
}

# ---- zarrita from npm, once per build tree (shared with test_writers.sh)
node_dir="$top_build/tests/node"
mkdir -p "$node_dir"
exec 9>"$node_dir.lock"
flock 9
if [ ! -d "$node_dir/node_modules/zarrita" ]; then
	if ! npm install --silent --no-audit --no-fund --prefix "$node_dir" zarrita@0.x >"$work/npm.log" 2>&1; then
		cat "$work/npm.log"
		echo "FAIL - npm install zarrita (needs node + npm and the npm registry)"
		echo "0 passed, 1 failed"
		exit 1
	fi
fi
flock -u 9
cp "$here/zarrita_dump.mjs" "$node_dir/zarrita_dump.mjs"

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
	node "$node_dir/zarrita_dump.mjs" "$out" "d_$out" >/dev/null || return 1
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
