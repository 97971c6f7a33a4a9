#!/bin/bash
# test_h5ad.sh - .h5ad (HDF5) input to `annbatch convert` and output of
# `annbatch synth --format h5ad`, checked by independent readers.
#
#  - convert reads .h5ad files written by Debian's python3-anndata 0.8 (gzip
#    and uncompressed, dense and CSR, int32 and int64 indices, categorical,
#    ordered categorical, string, int, float and nullable obs) and a hand-made
#    pre-0.8 file (no encoding attributes on X, fixed-length strings, a
#    categorical by object reference), alone and mixed with zarr inputs:
#    zarrita reads every array of the collection and check_convert.py finds
#    every input row exactly once with its values and obs.
#  - synth --format h5ad is read by python3-anndata with the expected shapes,
#    dtypes and obs, holds the same matrix as the zarr synth of the same seed,
#    gives the same bytes for the same seed, and converts back.
#  - inspect and get read the same .h5ad files as anndata does
#    (check_h5ad_get.py: shape, X bytes, names, every obs column kind).
#  - convert writes the same bytes with 1, 2 or 5 threads reading X ahead,
#    held in memory or streamed through the scratch file.
#  - bad inputs (not HDF5, csc X, no X) and bad options fail with one line.
SUITE=h5ad
. "$(dirname "$0")/common.sh"

cd "$work" || exit 1
check "make_h5ad_inputs.py (python3-anndata 0.8 and h5py)" $PY "$here/make_h5ad_inputs.py" "$work"
check "make_inputs.py (zarr inputs to mix in)" $PY "$here/make_inputs.py" "$work"

# convert_check NAME OUT CONVERT-ARGS... -- CHECK-SPECS...
convert_check() {
	local name=$1 out=$2
	shift 2
	local args=() specs=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
	shift
	specs=("$@")
	check "convert $name" "$AB" convert "${args[@]}" -o "$out" --no-progress
	check "convert $name: zarrita reads every array" dump "$out" "d_$out"
	check "convert $name: every input row once, same values and obs" \
		$PY "$here/check_convert.py" "d_$out" "${specs[@]}"
}

convert_check "h5ad CSR gzip, all obs kinds" c1.zarr h1.h5ad --shuffle-chunk-size 37 --dataset-size 150 \
	-- h1.h5ad=h5ad:h1.h5ad
check "convert h5ad: nullable columns are float64, categoricals keep order" $PY - <<'EOF'
import json
m = json.load(open("c1.zarr/zarr.json"))["consolidated_metadata"]["metadata"]
assert m["dataset_0/obs/batch"]["data_type"] == "float64", m["dataset_0/obs/batch"]["data_type"]
assert m["dataset_0/obs/flag"]["data_type"] == "float64"
assert m["dataset_0/obs/n_genes"]["data_type"] == "int32"
assert m["dataset_0/obs/stage"]["attributes"]["ordered"] is True
assert m["dataset_0/obs/cell_type"]["attributes"]["ordered"] is False
EOF
convert_check "h5ad dense float64, uncompressed, --no-shuffle" c2.zarr h2.h5ad --no-shuffle --compressor zstd \
	-- h2.h5ad=h5ad:h2.h5ad
check "convert h5ad dense only: X stays dense" test -f d_c2.zarr/dataset_0%X.bin
convert_check "h5ad CSR with int64 indices/indptr" c3.zarr h3.h5ad --dataset-size 100 -- h3.h5ad=h5ad:h3.h5ad
convert_check "pre-0.8 h5ad (plain X, fixed strings, referenced categories)" c4.zarr legacy.h5ad \
	--shuffle-chunk-size 10 -- legacy.h5ad=h5ad:legacy_ref.h5ad
convert_check "h5ad (gzip CSR, dense, int64 CSR) mixed with zarr v2 inputs" c5.zarr \
	h1.h5ad in1.zarr h2.h5ad in2.zarr h3.h5ad --shuffle-chunk-size 50 --dataset-size 600 --seed 4 \
	-- h1.h5ad=h5ad:h1.h5ad in1.zarr=anndata:in1.zarr h2.h5ad=h5ad:h2.h5ad in2.zarr=anndata:in2.zarr \
	h3.h5ad=h5ad:h3.h5ad
check "mixed: only the columns of every input" bash -c '
	ls -d c5.zarr/dataset_0/obs/* | xargs -n1 basename | sort | tr "\n" " " | grep -qx "_index cell_type n_counts sample src_path zarr.json "'
cp h1.h5ad noext
convert_check "an HDF5 file without the .h5ad name (found by its signature)" c6.zarr noext \
	-- noext=h5ad:h1.h5ad
convert_check "--groupby and --obs-columns on h5ad" c7.zarr h1.h5ad h2.h5ad --groupby stage \
	--obs-columns stage,batch,sample -- --groupby stage h1.h5ad=h5ad:h1.h5ad h2.h5ad=h5ad:h2.h5ad

# ---- inspect and get read .h5ad through the library (ab_anndata_open_path)
check "inspect/get on h5ad (CSR gzip all obs kinds, dense float64, int64 CSR, pre-0.8) as anndata reads them" \
	$PY "$here/check_h5ad_get.py" "$AB" h1.h5ad h2.h5ad h3.h5ad legacy.h5ad
check "inspect h5ad: text names the file and X" bash -c '
	"$0" inspect h1.h5ad | head -1 | grep -qx "h1.h5ad (h5ad)" && "$0" inspect h1.h5ad | grep -q "X=csr_matrix float32"' "$AB"

# ---- synth --format h5ad
sargs=(--n-obs 900 --n-vars 400 --mean-nnz 40 --n-obs-per-chunk 16 --seed 5)
check "synth --format h5ad" "$AB" synth s.h5ad "${sargs[@]}" --format h5ad
check "synth --format h5ad --compressor gzip" "$AB" synth sg.h5ad "${sargs[@]}" --format h5ad --compressor gzip
check "synth --format h5ad --dense --compressor gzip" \
	"$AB" synth sd.h5ad --n-obs 300 --n-vars 50 --dense --seed 5 --format h5ad --compressor gzip
check "synth --format zarr2 (the reference)" "$AB" synth s.zarr "${sargs[@]}" --format zarr2
check "synth h5ad: python3-anndata reads it, same as the zarr synth" $PY - <<'EOF'
import warnings
warnings.filterwarnings("ignore")
import anndata, h5py, numpy as np, scipy.sparse as sp
ref = anndata.read_zarr("s.zarr")
for f in ("s.h5ad", "sg.h5ad"):
    a = anndata.read_h5ad(f)
    assert a.shape == (900, 400), a.shape
    assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32 and a.X.has_sorted_indices
    assert (a.X != ref.X).nnz == 0, "X differs from the zarr synth"
    assert list(a.obs.columns) == ["cell_type", "donor"]
    assert str(a.obs["cell_type"].dtype) == "category" and len(a.obs["cell_type"].cat.categories) == 50
    assert not a.obs["cell_type"].cat.ordered
    assert a.obs["donor"].dtype == np.int64
    assert a.obs.equals(ref.obs) and list(a.var_names) == list(ref.var_names)
    assert a.obs_names[0] == "cell_0000000" and a.var_names[399] == "gene_00399"
    with h5py.File(f) as h:
        assert h.attrs["encoding-type"] == "anndata" and h["X"].attrs["encoding-type"] == "csr_matrix"
        assert list(h["X"].attrs["shape"]) == [900, 400]
        assert h["obs/_index"].attrs["encoding-type"] == "string-array"
        assert h["obs/_index"].id.get_type().is_variable_str()
        assert h["X/indptr"].dtype == np.int64 and h["X/indices"].dtype == np.int32
        assert (h["X/data"].compression == "gzip") == (f == "sg.h5ad")
d = anndata.read_h5ad("sd.h5ad")
assert d.shape == (300, 50) and isinstance(d.X, np.ndarray) and d.X.dtype == np.float32
assert (d.X != 0).sum() > 0 and list(d.obs.columns) == ["cell_type", "donor"]
EOF
check "synth h5ad: the same seed gives the same bytes" bash -c '
	"$0" synth again.h5ad "${@:1}" --format h5ad && cmp s.h5ad again.h5ad &&
	"$0" synth again_d.h5ad --n-obs 300 --n-vars 50 --dense --seed 5 --format h5ad --compressor gzip &&
	cmp sd.h5ad again_d.h5ad' "$AB" "${sargs[@]}"
check "synth h5ad: another seed gives other bytes" bash -c '
	"$0" synth other.h5ad --n-obs 900 --n-vars 400 --mean-nnz 40 --seed 6 --format h5ad && ! cmp -s s.h5ad other.h5ad' "$AB"
check "synth h5ad: no temporary file left" bash -c '! ls -a | grep -q "annbatch-tmp"'
convert_check "synth h5ad back through convert" c8.zarr sg.h5ad sd.h5ad --dataset-size 500 \
	-- sg.h5ad=h5ad:sg.h5ad sd.h5ad=h5ad:sd.h5ad
check "synth h5ad --force replaces, without --force refused" bash -c '
	! "$0" synth s.h5ad --n-obs 10 --n-vars 10 --format h5ad 2>/dev/null &&
	"$0" synth s.h5ad --n-obs 10 --n-vars 10 --format h5ad --force &&
	'"$PY"' -c "import anndata; assert anndata.read_h5ad(\"s.h5ad\").shape == (10, 10)"' "$AB"

# ---- errors and help
errline() { # errline CMD...: fails with exactly one line on stderr
	"$@" >/dev/null 2>err1.txt && return 1
	test "$(wc -l <err1.txt)" -eq 1 || { cat err1.txt; return 1; }
}
# ---- threads: the same bytes whether X is read ahead by workers or not
# (.h5ad reads serialised under one lock, zarr through the workers' own
# handles), held in memory or encoded for the scratch file by the workers
# (17MB: the 16 MiB the writer keeps for itself and the rows' bookkeeping;
# nothing of X)
tree() { (cd "$1" && find . -type f | sort | xargs sha256sum) | sha256sum; }
same_bytes() { # same_bytes A B: two collections hold the same files and bytes
	[ "$(tree "$1")" = "$(tree "$2")" ] || { diff -r "$1" "$2" | head -5; return 1; }
}
for mem in 1GB 17MB; do
	for th in 1 2 5; do
		check "threads $th, memory $mem: h5ad (gzip CSR, dense, int64 CSR) and zarr mixed" \
			"$AB" convert h1.h5ad in1.zarr h2.h5ad in2.zarr h3.h5ad --shuffle-chunk-size 23 \
			--dataset-size 600 --seed 6 --threads $th --memory $mem -o "t_${th}_$mem.zarr" --no-progress
		check "threads $th, memory $mem: dense output from h5ad and zarr" \
			"$AB" convert h2.h5ad in2.zarr --shuffle-chunk-size 17 --dataset-size 300 --seed 6 \
			--threads $th --memory $mem -o "td_${th}_$mem.zarr" --no-progress
	done
done
for mem in 1GB 17MB; do
	for th in 2 5; do
		check "threads $th, memory $mem: the bytes of 1 thread held in memory" \
			same_bytes t_1_1GB.zarr "t_${th}_$mem.zarr"
		check "threads $th, memory $mem: dense, the bytes of 1 thread held in memory" \
			same_bytes td_1_1GB.zarr "td_${th}_$mem.zarr"
	done
done
check "threads 1, memory 17MB: the bytes of 1 thread held in memory" same_bytes t_1_1GB.zarr t_1_17MB.zarr
check "threads 1, memory 17MB: dense, the bytes held in memory" same_bytes td_1_1GB.zarr td_1_17MB.zarr
check "--threads 0 is one error line" errline "$AB" convert h1.h5ad -o e0.zarr --threads 0

check "convert: not an HDF5 file is one error line" errline "$AB" convert text.h5ad -o e1.zarr
check "convert: csc X is one error line" bash -c '
	! "$0" convert csc.h5ad -o e2.zarr 2>err2.txt && test "$(wc -l <err2.txt)" -eq 1 && grep -q csc_matrix err2.txt' "$AB"
check "convert: no X is one error line" bash -c '
	! "$0" convert h1.h5ad nox.h5ad -o e3.zarr 2>err3.txt && test "$(wc -l <err3.txt)" -eq 1 && grep -q "no X" err3.txt' "$AB"
check "convert: a missing .h5ad is one error line" errline "$AB" convert nope.h5ad -o e4.zarr
check "convert: failed runs leave no output" bash -c 'test ! -e e1.zarr && test ! -e e2.zarr && test ! -e e3.zarr'
check "synth h5ad: --compressor zstd is refused" errline "$AB" synth e.h5ad --format h5ad --compressor zstd
check "synth h5ad: unwritable directory is one error line" errline "$AB" synth /nonexistent/dir/e.h5ad --format h5ad
check "get h5ad: a node other than X, obs/COL, var/COL is one error line" errline "$AB" get h1.h5ad uns
check "get h5ad: a missing obs column is one error line" errline "$AB" get h1.h5ad obs/nope
check "get h5ad: CSR X without --dense is one error line" errline "$AB" get h1.h5ad X
check "inspect h5ad: NODE is one error line" errline "$AB" inspect h1.h5ad obs
check "inspect: not an HDF5 .h5ad is one error line" errline "$AB" inspect text.h5ad
check "convert --help mentions .h5ad" bash -c '"$0" convert --help | grep -q "h5ad"' "$AB"
check "synth --help mentions --format h5ad" bash -c '"$0" synth --help | grep -q "h5ad"' "$AB"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
