#!/bin/bash
# The loader's own missing-chunk path through `annbatch iterate`: stores with
# missing chunk files, missing shard files and empty shard slots, dense and
# CSR, with integer, NaN, +inf and -inf fill values (make_missing_data.py,
# written by zarr-python 2.13 and the spec writer of the conformance suite).
# Every case runs sequential and shuffled (two seeds) in every engine mode:
# --decode blocks|chunks x --backend uring|pread x --io direct|buffered x
# --threads 1|2; each output's rows and sums are checked against the arrays
# zarr-python / numpy see, and the modes must agree batch for batch.
set -uo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
AB="$AB_TOP_BUILDDIR/annbatch"
PY=/usr/bin/python3
# Not /tmp: the O_DIRECT cases need a filesystem that takes O_DIRECT.
work="$AB_TOP_BUILDDIR/tests/work-missing"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
D="$work/data"
"$PY" "$AB_TOP_SRCDIR/tests/engine/make_missing_data.py" "$D" >/dev/null || exit 1
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

BS=14
P=(--batch-size $BS --chunk-size 7 --preload-nchunks 4 --emit index+colsum)
ncases=0
while read -r name kind input nrows; do
	ncases=$((ncases + 1))
	outs=()
	for order in seq s1 s2; do
		case $order in
		seq) O=() ;;
		s1) O=(--shuffle --seed 1) ;;
		s2) O=(--shuffle --seed 8) ;;
		esac
		first=""
		for dec in blocks chunks; do
			for be in uring pread; do
				for io in direct buffered; do
					for th in 1 2; do
						o="$work/$name.$dec.$be.$io.$th.$order"
						if ! "$AB" iterate "$input" "${P[@]}" "${O[@]}" --decode $dec --backend $be \
							--io $io --threads $th >"$o" 2>"$work/err"; then
							bad "$name $order $dec $be $io threads $th: $(head -c 300 "$work/err")"
							continue
						fi
						outs+=("$o")
						if [ -z "$first" ]; then
							first=$o
						elif cmp -s "$o" "$first"; then
							ok
						else
							bad "$name $order: $dec $be $io threads $th differs from ${first##*/}"
						fi
					done
				done
			done
		done
	done
	# Rows, sums (NaN as NaN, inf as inf) and order of every output.
	if "$PY" "$AB_TOP_SRCDIR/tests/engine/check_missing.py" "$D/expected.npz" "$name" "$kind" "$nrows" $BS \
		"${outs[@]}" >"$work/chk" 2>&1; then
		ok
	else
		bad "$name contents: $(head -5 "$work/chk")"
	fi
	# the shuffled orders differ from the sequential one and from each other
	s=$(ls "$work/$name".*.seq | head -1)
	if ! cmp -s "${s%.seq}.s1" "$s" && ! cmp -s "${s%.seq}.s1" "${s%.seq}.s2"; then ok
	else bad "$name: shuffling changed nothing"; fi
	rm -f "$work/$name".*
done <"$D/cases.txt"
[ $ncases -eq 11 ] && ok || bad "expected 11 cases, got $ncases"

echo "missing: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
