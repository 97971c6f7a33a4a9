#!/bin/bash
# test_writers.sh - the writers checked by independent readers.
#
#  - `annbatch synth` in every format and compressor, read back by zarrita (the
#    JavaScript zarr implementation, installed from npm under the build tree),
#    by Debian's python3-anndata (zarr v2) and by our own reader: all agree, and
#    the same seed gives the same bytes.
#  - `annbatch convert` of stores written by python3-anndata and by synth:
#    zarrita reads every array of the collection and check_convert.py finds
#    every input row exactly once with its values and obs; then `annbatch get`
#    and `annbatch iterate` over the collection give the same rows.
#  - adding to a collection keeps the old datasets byte for byte; --var-subset;
#    --groupby; kill -9 mid-conversion leaves no collection (or the old one);
#    a full disk is reported; bad input fails with one line.
SUITE=writers
. "$(dirname "$0")/common.sh"

# ---- synth: formats x compressors, three readers agree
synth_args=(--n-obs 900 --n-vars 400 --mean-nnz 40 --n-obs-per-chunk 16 --seed 5)
same_as_ref() { # store dumpdir: our reader and zarrita agree, and with the reference dump
	local st=$1 d=$2
	dump "$st" "$d" || return 1
	for f in X%data X%indices X%indptr obs%donor obs%cell_type%codes; do
		"$AB" get "$st" "${f//%//}" | cmp -s - "$d/$f.bin" || { echo "$st ${f}: our reader and zarrita differ"; return 1; }
		cmp -s "$d/$f.bin" "$work/ref/$f.bin" || { echo "$st ${f}: differs from the reference"; return 1; }
	done
	for f in obs%_index var%_index obs%cell_type%categories; do
		cmp -s "$d/$f.json" "$work/ref/$f.json" || { echo "$st ${f}: strings differ"; return 1; }
	done
}
check "synth zarr3 sharded blosc-lz4 (reference)" "$AB" synth "$work/ref.zarr" "${synth_args[@]}" --shard-size 30KB
dump "$work/ref.zarr" "$work/ref"
check "synth: zarrita reads sharded v3 like our reader" same_as_ref "$work/ref.zarr" "$work/ref2"
i=0
for fmt in "--format zarr3" "--format zarr3 --no-shard" "--format zarr2"; do
	for comp in blosc-lz4 blosc-zstd zstd gzip none; do
		i=$((i + 1))
		st="$work/s$i.zarr"
		"$AB" synth "$st" "${synth_args[@]}" $fmt --compressor "$comp" --shard-size 20KB >/dev/null 2>&1 \
			|| { bad "synth $fmt $comp: write"; continue; }
		check "synth $fmt $comp: zarrita + our reader give the reference values" same_as_ref "$st" "$work/d$i"
	done
done
check "synth zarr2: python3-anndata reads the same matrix" $PY - "$work/s11.zarr" "$work/ref" <<'EOF'
import sys, warnings
warnings.filterwarnings("ignore")
import anndata, numpy as np
a = anndata.read_zarr(sys.argv[1])
d = sys.argv[2]
data = np.fromfile(d + "/X%data.bin", "<f4")
ind = np.fromfile(d + "/X%indices.bin", "<i4")
ptr = np.fromfile(d + "/X%indptr.bin", "<i8")
assert a.X.has_sorted_indices
assert np.array_equal(a.X.data, data) and np.array_equal(a.X.indices, ind) and np.array_equal(a.X.indptr, ptr)
assert list(a.obs.columns) == ["cell_type", "donor"] and len(a.obs["cell_type"].cat.categories) == 50
nnz = np.diff(ptr)
assert nnz.std() > 1, "nnz per row does not vary"
EOF
"$AB" synth "$work/again.zarr" "${synth_args[@]}" --shard-size 30KB >/dev/null 2>&1
check "synth: the same seed gives the same bytes" diff -r "$work/ref.zarr" "$work/again.zarr"
check "synth --dense: zarrita reads the dense X" bash -c '
	"$0" synth "$1/dense.zarr" --n-obs 300 --n-vars 50 --dense --shard-size 8KB --seed 5 &&
	node "$2/zarrita_dump_writers.mjs" "$1/dense.zarr" "$1/ddense" >/dev/null &&
	"$0" get "$1/dense.zarr" X | cmp - "$1/ddense/X.bin"' "$AB" "$work" "$node_dir"

# ---- convert
# --blosc-blocksize: the same values, the block size recorded in the metadata
# and used in the frames (blosc-zstd blocks are not split, so they stay 1 KiB)
for fmt in zarr3 zarr2; do
	st="$work/bs_$fmt.zarr"
	"$AB" synth "$st" "${synth_args[@]}" --format $fmt --compressor blosc-zstd --blosc-blocksize 1KiB \
		--shard-size 20KB >/dev/null 2>&1 || { bad "synth --blosc-blocksize $fmt: write"; continue; }
	check "synth --blosc-blocksize ($fmt): zarrita + our reader give the reference values" \
		same_as_ref "$st" "$work/dbs_$fmt"
done
check "synth --blosc-blocksize: metadata and frames" $PY - "$work" <<'EOF'
import json, os, struct, sys
w = sys.argv[1]
m = json.load(open(os.path.join(w, "bs_zarr3.zarr", "X", "data", "zarr.json")))
inner = m["codecs"][0]["configuration"]["codecs"]
assert inner[-1]["name"] == "blosc" and inner[-1]["configuration"]["blocksize"] == 1024, inner
a = json.load(open(os.path.join(w, "bs_zarr2.zarr", "X", "data", ".zarray")))
assert a["compressor"]["blocksize"] == 1024, a["compressor"]
hdr = open(os.path.join(w, "bs_zarr2.zarr", "X", "data", "0"), "rb").read(16)
nbytes, blocksize, cbytes = struct.unpack("<3I", hdr[4:])
assert blocksize == 1024 and nbytes > 2 * 1024, (nbytes, blocksize)
EOF
$PY "$here/make_inputs.py" "$work" || { bad "make_inputs.py"; }
"$AB" synth "$work/syn.zarr" --n-obs 700 --n-vars 150 --mean-nnz 20 --seed 9 >/dev/null 2>&1
dump "$work/syn.zarr" "$work/dsyn"
cd "$work" || exit 1
inputs=(in1.zarr=anndata:$work/in1.zarr in2.zarr=anndata:$work/in2.zarr syn.zarr=dump:$work/dsyn)
check "convert: anndata v2 (csr + dense) and synth v3 inputs" \
	"$AB" convert in1.zarr in2.zarr syn.zarr -o coll.zarr --dataset-size 700 --shuffle-chunk-size 50 \
	--shard-size 40KB --seed 3 --no-progress
check "convert: zarrita reads every array" dump coll.zarr dcoll
check "convert: every input row exactly once, same values and obs" \
	$PY "$here/check_convert.py" dcoll "${inputs[@]}"
check "convert: root attributes" $PY -c '
import json, sys
m = json.load(open("coll.zarr/zarr.json"))
assert m["attributes"] == {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"}, m["attributes"]
cm = m["consolidated_metadata"]
assert cm["kind"] == "inline" and cm["must_understand"] is False
assert "dataset_0/X/data" in cm["metadata"] and "dataset_0/obs/src_path/codes" in cm["metadata"]
'
roundtrip() {
	local n
	n=$(ls -d coll.zarr/dataset_* | wc -l)
	for ((k = 0; k < n; k++)); do
		"$AB" get coll.zarr "dataset_$k/X" --dense -o "rt_$k.f32" || return 1
	done
	"$AB" iterate coll.zarr --batch-size 8 --shuffle --seed 1 --emit index+rowsum >iter.txt || return 1
	$PY - "$n" <<'EOF'
import sys, numpy as np
n = int(sys.argv[1])
rows = []
for k in range(n):
    ptr = np.fromfile("dcoll/dataset_%d%%X%%indptr.bin" % k, "<i8")
    ind = np.fromfile("dcoll/dataset_%d%%X%%indices.bin" % k, "<i4")
    dat = np.fromfile("dcoll/dataset_%d%%X%%data.bin" % k, "<f4")
    nv = len(__import__("json").load(open("dcoll/dataset_%d%%var%%_index.json" % k)))
    dense = np.zeros((len(ptr) - 1, nv), "<f4")
    for r in range(len(ptr) - 1):
        dense[r, ind[ptr[r]:ptr[r + 1]]] = dat[ptr[r]:ptr[r + 1]]
    got = np.fromfile("rt_%d.f32" % k, "<f4").reshape(dense.shape)
    assert np.array_equal(got, dense), "annbatch get dataset_%d/X differs from zarrita" % k
    rows.extend(dense.astype(np.float64).sum(1))
seen = {}
for line in open("iter.txt"):
    for tok in line.split():
        i, s = tok.split(":")
        i = int(i)
        assert i not in seen, "row %d twice" % i
        seen[i] = float(s)
assert sorted(seen) == list(range(len(rows))), "iterate did not give every row once"
for i, s in seen.items():
    assert abs(s - rows[i]) <= 1e-6 * max(1.0, abs(rows[i])), (i, s, rows[i])
EOF
}
check "round trip: annbatch get and iterate match zarrita, every row once" roundtrip

check "convert --groupby cell_type --var-subset" bash -c '
	printf "g010\ng005\ngene_00007\ng140\n" >subset.txt &&
	"$0" convert in1.zarr in2.zarr syn.zarr -o grp.zarr --groupby cell_type --var-subset subset.txt \
		--dataset-size 500 --no-progress && node "$1/zarrita_dump_writers.mjs" grp.zarr dgrp >/dev/null &&
	'"$PY"' "$2/check_convert.py" dgrp --groupby cell_type --var-subset subset.txt "${@:3}"' \
	"$AB" "$node_dir" "$here" "${inputs[@]}"
check "convert --no-shuffle, dense only, every compressor" bash -c '
	for c in blosc-zstd zstd gzip none; do
		rm -rf dn.zarr ddn
		"$0" convert in2.zarr -o dn.zarr --no-shuffle --compressor $c --shard-size 10KB --no-progress &&
		node "$1/zarrita_dump_writers.mjs" dn.zarr ddn >/dev/null &&
		'"$PY"' "$2/check_convert.py" ddn in2.zarr=anndata:'"$work"'/in2.zarr || exit 1
		test -f ddn/dataset_0%X.bin || { echo "dense X expected"; exit 1; }
	done' "$AB" "$node_dir" "$here"

# ---- adding to a collection
cp -a coll.zarr coll_before
check "convert into an existing collection adds datasets" \
	"$AB" convert in3.zarr -o coll.zarr --dataset-size 200 --drop-new-genes --no-progress
check "adding keeps the old datasets byte for byte" bash -c '
	for d in coll_before/dataset_*; do diff -r "$d" "coll.zarr/$(basename "$d")" || exit 1; done
	test -d coll.zarr/dataset_$(ls -d coll_before/dataset_* | wc -l)'
check "adding: all rows, subset to the collection var space" bash -c '
	rm -rf dcoll && node "$0/zarrita_dump_writers.mjs" coll.zarr dcoll >/dev/null &&
	'"$PY"' -c "import json; open(\"vars.txt\",\"w\").write(\"\\n\".join(json.load(open(\"dcoll/dataset_0%var%_index.json\")))+\"\\n\")" &&
	'"$PY"' "$1/check_convert.py" dcoll --var-subset vars.txt "${@:2}" in3.zarr=anndata:'"$work"'/in3.zarr' \
	"$node_dir" "$here" "${inputs[@]}"

# ---- kill -9 mid-conversion
"$AB" synth big.zarr --n-obs 25000 --n-vars 3000 --mean-nnz 300 --compressor none >/dev/null 2>&1
killed_run() { # killed_run OUT: start, kill -9 after a moment
	"$AB" convert big.zarr -o "$1" --compressor gzip --no-progress >/dev/null 2>&1 &
	local pid=$!
	sleep 1
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
killed_run fresh.zarr
check "kill -9 mid-convert: no collection appears" test ! -e fresh.zarr
check "kill -9 mid-convert: only a hidden temporary directory is left" bash -c 'ls -a | grep -q "^\.fresh\.zarr\.annbatch-tmp-"'
"$AB" convert big.zarr -o bigcoll.zarr --no-progress >/dev/null 2>&1
cp -a bigcoll.zarr bigcoll_snapshot
killed_run bigcoll.zarr
check "kill -9 while adding: the old collection is unchanged" diff -r bigcoll_snapshot bigcoll.zarr
check "the next run sweeps the stale temporary directory" bash -c '
	"$0" convert in1.zarr -o fresh.zarr --no-progress && ! ls -a | grep -q "^\.fresh\.zarr\.annbatch-tmp-"' "$AB"

# ---- a full disk
if mkdir -p small && mount -t tmpfs -o size=256k tmpfs small 2>/dev/null; then
	"$AB" convert in1.zarr in2.zarr -o small/out.zarr --compressor none --no-progress 2>err.txt
	rc=$?
	check "full disk: non-zero exit" test "$rc" -ne 0
	check "full disk: one clear line" bash -c 'test "$(wc -l <err.txt)" -eq 1 && grep -q "no space left on device" err.txt'
	check "full disk: nothing left behind" bash -c 'test -z "$(ls -A small)"'
	umount small
else
	echo "skip - full disk (cannot mount a small tmpfs here)"
fi

# ---- errors and help
check "convert --help" bash -c '"$0" convert --help | grep -q "Usage: annbatch convert"' "$AB"
check "synth --help" bash -c '"$0" synth --help | grep -q "Usage: annbatch synth"' "$AB"
errline() { # errline CMD...: fails with exactly one line on stderr
	"$@" >/dev/null 2>err1.txt && return 1
	test "$(wc -l <err1.txt)" -eq 1
}
check "convert: a missing input is one error line" errline "$AB" convert nope.zarr -o x.zarr
check "convert: no -o is one error line" errline "$AB" convert in1.zarr
check "convert: OUT that is not a collection is refused" errline "$AB" convert in1.zarr -o in2.zarr
check "convert: bad --compressor" errline "$AB" convert in1.zarr -o x.zarr --compressor lzma
check "synth: existing OUT is refused" errline "$AB" synth in1.zarr
check "synth: bad --format" errline "$AB" synth x.zarr --format hdf9
check "synth: bad --blosc-blocksize" errline "$AB" synth x.zarr --blosc-blocksize lots

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
