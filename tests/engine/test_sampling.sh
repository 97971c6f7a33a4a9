#!/bin/bash
# Sampling options through `annbatch iterate`: class weights are validated,
# distributed shares (--rank-shards fixed|rotate), obs labels and class weights
# by label, batch-size errors that say what would work, and the rank
# environment variables. Stores are written by anndata (make_sampling_data.py).
set -uo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
AB="${AB_BIN:-$AB_TOP_BUILDDIR/annbatch}"
PY=/usr/bin/python3
CHECK="$PY $AB_TOP_SRCDIR/tests/engine/check_sampling.py"
work="$AB_TOP_BUILDDIR/tests/work-sampling"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$PY" "$AB_TOP_SRCDIR/tests/engine/make_sampling_data.py" "$work/data" >/dev/null 2>&1 || exit 1
# A launcher's variables from the caller must not decide the shares here.
unset RANK WORLD_SIZE OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE SLURM_PROCID SLURM_NTASKS
G="$work/data/grouped.zarr"
J="$work/data/grouped.json"
N=400
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { local n=$1; shift; if "$@" 2>"$work/err"; then ok; else bad "$n: $(tail -3 "$work/err")"; fi; }
# refuse NAME PATTERN ARGS...: iterate must exit 1 or 2 (an error or a usage
# error, not a crash) with one line on stderr that contains PATTERN (fixed);
# the launchers' variables are cleared, then those in the array RENV are set
NOENV=(-u RANK -u WORLD_SIZE -u OMPI_COMM_WORLD_RANK -u OMPI_COMM_WORLD_SIZE -u SLURM_PROCID -u SLURM_NTASKS)
RENV=()
refuse() {
	local n=$1 pat=$2; shift 2
	env "${NOENV[@]}" "${RENV[@]}" "$AB" iterate "$@" >/dev/null 2>"$work/rerr"
	local rc=$?
	if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then
		bad "$n: exit $rc, want 1 or 2 ($(head -c 300 "$work/rerr"))"
	elif [ "$(wc -l <"$work/rerr")" -ne 1 ] || ! grep -qF -- "$pat" "$work/rerr"; then
		bad "$n: error '$(head -c 300 "$work/rerr")' lacks '$pat'"
	else
		ok
	fi
}

# 1. Class weights: finite, >= 0, a positive finite sum (an infinite weight
# used to pick the wrong class, and with a weight-0 last class to crash).
C=(--batch-size 10 --chunk-size 20 --preload-nchunks 2 --class-column ct --num-samples 200 --obs ct --emit index+obs)
refuse "weight inf" "'inf' is not a finite non-negative number" "$G" "${C[@]}" --class-weights inf,1,1,1
refuse "weight inf, last 0" "'inf' is not a finite non-negative number" "$G" "${C[@]}" --class-weights inf,1,1,0
refuse "weight nan" "'nan' is not a finite non-negative number" "$G" "${C[@]}" --class-weights 1,nan,1,1
refuse "weight -1" "'-1' is not a finite non-negative number" "$G" "${C[@]}" --class-weights 1,-1,1,1
refuse "weights overflow" "class weights sum to inf" "$G" "${C[@]}" --class-weights 1e308,1e308,1,0
refuse "weights all 0" "class weights sum to 0" "$G" "${C[@]}" --class-weights 0,0,0,0
# categories are B cell, Mono, NK, T cell: weight 0 on the last never draws it
"$AB" iterate "$G" "${C[@]}" --class-weights 1,1,1,0 >"$work/cw" 2>"$work/err" &&
	check "weight-0 last class never drawn" $CHECK class "$work/cw" "$J" "B cell,Mono,NK" ||
	bad "class weights 1,1,1,0: $(head -c 300 "$work/err")"

# 2. Distributed shares. fixed (the default): rank r reads the same contiguous
# slice every epoch; rotate: per epoch disjoint equal shares, every row served
# within any 2 consecutive epochs.
S=(--batch-size 5 --chunk-size 20 --preload-nchunks 2 --shuffle --seed 3)
for w in 2 3 4; do
	for r in $(seq 0 $((w - 1))); do
		"$AB" iterate "$G" "${S[@]}" --rank $r --world-size $w >"$work/f" 2>"$work/err" ||
			bad "fixed w=$w r=$r: $(head -c 300 "$work/err")"
		check "fixed w=$w r=$r is the slice" $CHECK fixed "$work/f" $N $w $r 5
		"$AB" iterate "$G" "${S[@]}" --rank $r --world-size $w --rank-shards fixed \
			--epoch 1 >"$work/f1" 2>"$work/err" || bad "fixed w=$w r=$r: $(head -c 300 "$work/err")"
		check "fixed w=$w r=$r epoch 1 is the slice" $CHECK fixed "$work/f1" $N $w $r 5
		for e in 0 1 2 3 4 5; do
			"$AB" iterate "$G" "${S[@]}" --rank $r --world-size $w \
				--rank-shards rotate --epoch $e >"$work/r$r.e$e" 2>"$work/err" ||
				bad "rotate w=$w r=$r e=$e: $(head -c 300 "$work/err")"
		done
	done
	check "rotate w=$w: disjoint, equal, every row within 2 epochs" $CHECK rotate "$work" $N $w 6 5
	# the same from the environment, and in one loader over several epochs
	RANK=1 WORLD_SIZE=$w "$AB" iterate "$G" "${S[@]}" --rank-shards rotate --epoch 2 >"$work/renv" 2>/dev/null
	check "rotate w=$w rank from env" cmp -s "$work/renv" "$work/r1.e2"
	"$AB" iterate "$G" "${S[@]}" --rank 1 --world-size $w --rank-shards rotate \
		--epoch 1 --epochs 3 >"$work/rep" 2>/dev/null
	check "rotate w=$w --epochs" cmp -s "$work/rep" <(cat "$work/r1.e1" "$work/r1.e2" "$work/r1.e3")
	rm -f "$work"/r*.e*
done
refuse "rotate, fewer chunks than ranks" "fewer than world_size (4)" "$G" "${S[@]}" --chunk-size 120 \
	--preload-nchunks 1 --rank 0 --world-size 4 --rank-shards rotate
refuse "rotate with replacement" "does not combine with replacement" "$G" "${S[@]}" --replacement --rank 0 \
	--world-size 2 --rank-shards rotate
refuse "--rank-shards bad" "--rank-shards must be fixed or rotate" "$G" --rank-shards sometimes

# 3. Labels: --obs-labels prints categories as their labels (%XX escaped), and
# --class-weights takes weights by label (categories: B cell, Mono, NK, T cell).
"$AB" iterate "$G" --batch-size 8 --chunk-size 16 --preload-nchunks 2 --shuffle --obs ct,donor --emit index+obs \
	--obs-labels >"$work/lab" 2>"$work/err" && check "obs labels" $CHECK labels "$work/lab" "$J" ||
	bad "obs labels: $(head -c 300 "$work/err")"
check "obs labels escape blanks" grep -q "=T%20cell;" "$work/lab"
refuse "--obs-labels without index+obs" "--obs-labels needs --emit index+obs" "$G" --obs ct --obs-labels
"$AB" iterate "$G" "${C[@]}" --class-weights "T cell=2,B cell=1,*=0" --obs-labels >"$work/bl" 2>"$work/err" ||
	bad "weights by label: $(head -c 300 "$work/err")"
check "weights by label: only the named classes" $CHECK class "$work/bl" "$J" "T cell,B cell"
"$AB" iterate "$G" "${C[@]}" --class-weights 1,0,0,2 --obs-labels >"$work/bp" 2>/dev/null
check "weights by label = the same weights in category order" cmp -s "$work/bl" "$work/bp"
"$AB" iterate "$G" "${C[@]}" --class-weights "NK=1,Mono=0,T cell=2,B cell=1" >"$work/bl2" 2>/dev/null
"$AB" iterate "$G" "${C[@]}" --class-weights 1,0,1,2 >"$work/bp2" 2>/dev/null
check "weights by label, every class named" cmp -s "$work/bl2" "$work/bp2"
"$AB" iterate "$G" "${C[@]}" --class-weights "T%20cell=1,*=0" >"$work/be" 2>/dev/null
check "weights by escaped label" $CHECK class "$work/be" "$J" "T cell"
refuse "unknown labels named" "class weights name 'T-cell', 'X', not classes of column 'ct'" "$G" "${C[@]}" \
	--class-weights "T-cell=1,X=2,NK=1,*=1"
refuse "classes left without weight" "give no weight to 'Mono', 'NK' of column 'ct'" "$G" "${C[@]}" \
	--class-weights "T cell=2,B cell=1"
refuse "label and position mixed" "'3' is not LABEL=W" "$G" "${C[@]}" --class-weights "T cell=2,3"
refuse "label named twice" "class 'NK' is given a weight twice" "$G" "${C[@]}" --class-weights "NK=1,NK=2,*=1"
refuse "label weight inf" "the weight of 'NK' ('inf') is not a finite" "$G" "${C[@]}" --class-weights "NK=inf,*=1"

# 4. Batch sizes the window does not take: the error says what would work
# (16384 = 512 * 32 has the divisors 64 and 128 around 100; 512 * p is a
# multiple of 100 exactly when p is a multiple of 25).
refuse "batch 100 vs defaults" "batch sizes that work: 64 or 128; or keep batch_size 100 with preload_nchunks 25 or 50" \
	"$G" --batch-size 100
refuse "batch too big" "max 40); a batch size that works: 40; or keep batch_size 50 with preload_nchunks 5" \
	"$G" --batch-size 50 --chunk-size 20 --preload-nchunks 2
# and those values do work
"$AB" iterate "$G" --batch-size 100 --preload-nchunks 25 >"$work/b25" 2>"$work/err" &&
	check "batch 100 with preload 25" test "$(wc -l <"$work/b25")" -eq 4 || bad "preload 25: $(cat "$work/err")"

# 5. Rank from the environment: half a pair or an empty value is an error
# naming the variables (it used to be ignored: every rank read everything);
# a world size without a rank, a negative rank, a rank >= world size too.
P=(--batch-size 10 --chunk-size 20 --preload-nchunks 2)
RENV=(RANK=1)
refuse "RANK without WORLD_SIZE" "RANK is set but WORLD_SIZE is not" "$G" "${P[@]}"
RENV=(WORLD_SIZE=2)
refuse "WORLD_SIZE without RANK" "WORLD_SIZE is set but RANK is not" "$G" "${P[@]}"
RENV=(RANK= WORLD_SIZE=2)
refuse "empty RANK" "RANK is set but empty" "$G" "${P[@]}"
RENV=(OMPI_COMM_WORLD_RANK=0)
refuse "Open MPI rank alone" "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not" "$G" "${P[@]}"
RENV=(SLURM_NTASKS=4)
refuse "Slurm size alone" "SLURM_NTASKS is set but SLURM_PROCID is not" "$G" "${P[@]}"
RENV=(RANK=2 WORLD_SIZE=2)
refuse "RANK = WORLD_SIZE" "RANK (2) must be < WORLD_SIZE (2)" "$G" "${P[@]}"
RENV=()
refuse "--world-size without a rank" "world_size is 2 but no rank is given" "$G" "${P[@]}" --world-size 2
refuse "--rank -1" "--rank: expected a non-negative integer, got '-1'" "$G" "${P[@]}" --rank -1 --world-size 2
refuse "--rank = --world-size" "rank (2) must be < world_size (2)" "$G" "${P[@]}" --rank 2 --world-size 2
refuse "--rank without world size" "rank (1) must be < world_size (1)" "$G" "${P[@]}" --rank 1
# an explicit rank and world size ignore the environment
RANK=1 "$AB" iterate "$G" "${P[@]}" --rank 1 --world-size 2 >"$work/x1" 2>"$work/err" ||
	bad "explicit rank over half an env pair: $(cat "$work/err")"
env "${NOENV[@]}" "$AB" iterate "$G" "${P[@]}" --rank 1 --world-size 2 >"$work/x2" 2>/dev/null
check "explicit rank ignores the environment" cmp -s "$work/x1" "$work/x2"

echo "test_sampling: $pass passed, $fail failed"
[ $fail -eq 0 ]
