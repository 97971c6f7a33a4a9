#!/bin/bash
# test_convert_names.sh - `annbatch convert` and the names and values of its
# inputs, checked against what python3-anndata 0.8 computes from the same
# inputs (written by anndata, h5py and zarr 2: make_names_inputs.py):
#
#  - repeated var names are refused, naming them; --make-var-unique gives
#    var_names_make_unique's names and anndata.concat's X; repeated obs names
#    (within and across inputs) become obs_names_make_unique's, with a note
#  - a NUL byte inside a var name, an obs name, a string obs column or a
#    category (zarr vlen-utf8 and h5ad fixed-length strings) is one error line
#  - adding an input with genes the collection lacks is refused; with
#    --drop-new-genes the genes and values dropped are counted as anndata does
#  - mixed X dtypes get numpy's result_type as anndata.concat does; an append
#    whose values the collection's X dtype cannot hold is refused; var
#    columns are kept as anndata.concat(merge="same") keeps them
#  - --var-subset: a BOM, CRLF and spaces are dropped (with a note); names in
#    no input are an error listing them
SUITE=names
. "$(dirname "$0")/common.sh"
CHK="$here/check_convert_names.py"

cd "$work" || exit 1
check "make_names_inputs.py (python3-anndata 0.8, h5py, zarr 2)" $PY "$here/make_names_inputs.py" "$work"

# errline FILE CMD...: CMD fails with exactly one line on stderr, kept in FILE
errline() {
	local f=$1
	shift
	"$@" --no-progress >/dev/null 2>"$f" && { echo "succeeded"; return 1; }
	test "$(wc -l <"$f")" -eq 1 || { cat "$f"; return 1; }
}
# has FILE PATTERN...: every pattern is in FILE (fixed strings)
has() {
	local f=$1
	shift
	for p in "$@"; do grep -qF -- "$p" "$f" || { echo "no '$p' in:"; cat "$f"; return 1; }; done
}
export -f errline has
# converted NAME OUT CONVERT-ARGS...: convert (stderr kept in OUT.err), dump
converted() {
	local name=$1 out=$2
	shift 2
	check "convert $name" bash -c '"$0" convert "$@" 2>"$2.err" || { cat "$2.err"; exit 1; }' \
		"$AB" -o "$out" --no-progress "$@"
	check "convert $name: zarrita reads every array" dump "$out" "d_$out"
}

# ---- point 2: repeated var names, repeated obs names
check "repeated var names: anndata's concat refuses them too" $PY -c '
import warnings; warnings.filterwarnings("ignore")
import anndata
a, b = anndata.read_h5ad("dupvar.h5ad"), anndata.read_zarr("dupvar.zarr")
try:
    anndata.concat([a, b], join="outer")
except Exception:
    raise SystemExit(0)
raise SystemExit("anndata.concat accepted repeated var names")'
check "repeated var names (h5ad): one error line naming them" bash -c '
	errline e1.txt "$0" convert dupvar.h5ad -o e1.zarr &&
	has e1.txt "dupvar.h5ad" "3 duplicate var names" "'"'"'A'"'"', '"'"'B'"'"'" --make-var-unique' "$AB"
check "repeated var names (zarr): one error line naming them" bash -c '
	errline e2.txt "$0" convert dupobs1.zarr dupvar.zarr -o e2.zarr &&
	has e2.txt "dupvar.zarr" "2 duplicate var names" "'"'"'C'"'"'" --make-var-unique' "$AB"
check "refused runs leave no output" bash -c 'test ! -e e1.zarr && test ! -e e2.zarr'
converted "--make-var-unique (h5ad + zarr)" u1.zarr dupvar.h5ad dupvar.zarr --make-var-unique --no-shuffle
check "--make-var-unique: var_names_make_unique's names, anndata.concat's X" \
	$PY "$CHK" concat d_u1.zarr --make-var-unique dupvar.h5ad dupvar.zarr
check "--make-var-unique: a note with the counts" has u1.zarr.err \
	"dupvar.h5ad: 3 duplicate var names made unique" "dupvar.zarr: 2 duplicate var names made unique"
converted "repeated obs names (zarr + h5ad)" u2.zarr dupobs1.zarr dupobs2.h5ad --no-shuffle --dataset-size 7
check "repeated obs names: obs_names_make_unique's names over the concatenation" \
	$PY "$CHK" concat d_u2.zarr dupobs1.zarr dupobs2.h5ad
check "repeated obs names: a note with the count" has u2.zarr.err "9 duplicate obs names made unique"
n_old=$(ls -d u2.zarr/dataset_* | wc -l)
rm -rf d_u2.zarr
converted "adding dupobs2.h5ad again" u2.zarr dupobs2.h5ad --no-shuffle
check "adding: names unique after the collection's, as obs_names_make_unique gives" \
	$PY "$CHK" obsappend d_u2.zarr "$n_old" dupobs2.h5ad
check "adding: a note with the count" has u2.zarr.err \
	"10 duplicate obs names made unique (NAME-1, NAME-2, ... as obs_names_make_unique, after the collection's rows)"

# ---- point 3: NUL bytes inside strings
for f in nul_var.zarr nul_obs.zarr nul_col.zarr nul_cat.zarr nul_var.h5ad nul_obs.h5ad nul_col.h5ad \
	nul_cat.h5ad; do
	case $f in
	nul_var.*) arr=var/_index ;; nul_obs.*) arr=obs/_index ;; nul_col.*) arr=obs/label ;;
	nul_cat.zarr) arr=obs/cell_type/categories ;; nul_cat.h5ad) arr=obs/cell_type ;;
	esac
	check "NUL byte in $f ($arr): one error line naming it" bash -c '
		errline "$1.txt" "$0" convert "$1" -o "$1.out.zarr" && has "$1.txt" "$1" "$2" "NUL byte" &&
		test ! -e "$1.out.zarr"' "$AB" "$f" "$arr"
done

# ---- point 5: adding inputs with genes the collection lacks
converted "the collection (base.h5ad)" add.zarr base.h5ad --dataset-size 20
check "adding new.h5ad (5 genes the collection lacks): one error line" bash -c '
	cp -r add.zarr keep.zarr &&
	errline e5.txt "$0" convert new.h5ad -o add.zarr &&
	has e5.txt "new.h5ad" "5 of its 12 var names are not in the collection" "'"'"'h0'"'"'" \
		--drop-new-genes && diff -r add.zarr keep.zarr' "$AB"
converted "adding new.h5ad --drop-new-genes" add.zarr new.h5ad --drop-new-genes
check "--drop-new-genes: X in the collection's var space, genes and values dropped as anndata counts" \
	$PY "$CHK" append d_add.zarr add.zarr.err base.h5ad new.h5ad

# ---- point 13b: X dtypes
converted "int32 + float32" t1.zarr i32.h5ad f32.h5ad --no-shuffle
check "int32 + float32: float64 as anndata.concat, values kept" $PY "$CHK" concat d_t1.zarr i32.h5ad f32.h5ad
check "int32 + float32: a note says so" has t1.zarr.err "X dtypes differ (int32 in i32.h5ad, float32 in f32.h5ad)" \
	"written as float64"
converted "uint16 + int16" t2.zarr u16.h5ad i16.h5ad --no-shuffle
check "uint16 + int16: int32 as anndata.concat" $PY "$CHK" concat d_t2.zarr u16.h5ad i16.h5ad
converted "int16 + float32" t3.zarr i16.h5ad f32.h5ad --no-shuffle
check "int16 + float32: float32 as anndata.concat" $PY "$CHK" concat d_t3.zarr i16.h5ad f32.h5ad
converted "an int32 collection" t4.zarr i32.h5ad
check "float32 (1.25, ...) added to an int32 collection: refused, the collection untouched" bash -c '
	cp -r t4.zarr keep4.zarr &&
	errline e6.txt "$0" convert f32.h5ad -o t4.zarr && has e6.txt "f32.h5ad: X row" ".25, which" \
		"int32 X cannot hold" && diff -r t4.zarr keep4.zarr' "$AB"
converted "int16 added to the int32 collection" t4.zarr i16b.h5ad
check "int16 added to the int32 collection: a note says so" has t4.zarr.err \
	"i16b.h5ad: X int16 written as the collection's int32"
check "int16 added to the int32 collection: int32, the values of anndata's" \
	$PY "$CHK" append d_t4.zarr - i32.h5ad i16b.h5ad
converted "float32 holding whole numbers added to an int32 collection" t5.zarr i32.h5ad
converted "float32 holding whole numbers added to an int32 collection (adding)" t5.zarr f32int.h5ad
check "whole float32 in the int32 collection: int32, the values of anndata's" \
	$PY "$CHK" append d_t5.zarr - i32.h5ad f32int.h5ad
check "whole float32 in the int32 collection: a note says the values are checked" has t5.zarr.err \
	"f32int.h5ad: X float32 into the collection's int32: every value was checked to fit"

# ---- point 13b: var columns
converted "var columns (h5ad + zarr)" vc.zarr varcols1.h5ad varcols2.zarr --dataset-size 5
check "var columns: those anndata.concat(merge=\"same\") keeps, with every gene's value" \
	$PY "$CHK" varcols d_vc.zarr varcols1.h5ad varcols2.zarr
check "var columns: a note names the ones dropped" has vc.zarr.err "4 var columns not written" \
	"'score' (values differ)" "'n_cells' (dtypes or categories differ)" \
	"'biotype' (dtypes or categories differ)" "'only_first' (not in every input)"

converted "a collection with var columns" vca.zarr varcols1.h5ad --dataset-size 4
converted "adding to it" vca.zarr varcols1.h5ad --dataset-size 4
check "adding: the new datasets carry the collection's var columns" \
	$PY "$CHK" varcols d_vca.zarr varcols1.h5ad

# ---- point 13b: --var-subset
converted "--var-subset with a BOM, CRLF and spaces" s1.zarr dupobs1.zarr --var-subset subset_ok.txt --no-shuffle
check "--var-subset: the names without BOM and spaces, X as anndata's" \
	$PY "$CHK" concat d_s1.zarr --var-subset subset_ok.txt dupobs1.zarr
check "--var-subset: notes for the BOM and the spaces" has s1.zarr.err "byte order mark dropped" \
	"spaces around 2 names dropped"
check "--var-subset with names in no input: one error line listing them" bash -c '
	errline e7.txt "$0" convert dupobs1.zarr -o e7.zarr --var-subset subset_missing.txt &&
	has e7.txt "14 of its 16 names are in no input" "'"'"'GX1'"'"', '"'"'GX2'"'"', '"'"'Q0'"'"'" ", ..." &&
	test ! -e e7.zarr' "$AB"

check "convert --help lists --make-var-unique and --drop-new-genes" bash -c '
	"$0" convert --help | grep -q -- --make-var-unique && "$0" convert --help | grep -q -- --drop-new-genes' "$AB"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
