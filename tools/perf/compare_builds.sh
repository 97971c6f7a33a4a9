#!/bin/bash
# compare_builds.sh BEFORE AFTER [--data DIR] [--rounds N] [--seconds S]
#
# Two builds of annbatch side by side, for a change that must not change
# behaviour (a restructuring) or must not cost speed:
#   1. iterate --shuffle --seed 1 --emit index+colsum (chunk 32, preload 256,
#      batch 4096, 2 epochs) on every store of DIR: the sha256 of both;
#   2. convert on synth inputs (zarr v3, v2 and h5ad, dense and sparse;
#      groupby, codecs, dataset sizes, adding to a collection): one hash per
#      collection over every file's path and bytes, for both;
#   3. bench samples/s, the two binaries alternated N rounds per store and
#      I/O mode (warm), medians and their ratio.
# DIR defaults to the data of tools/perf/run.sh --data-only (/var/tmp/annbatch-perf/data).
# Exits 1 when a checksum differs. Writes nothing into the repository.
set -euo pipefail
B=${1:?usage: compare_builds.sh BEFORE AFTER [--data DIR] [--rounds N] [--seconds S]}
A=${2:?usage: compare_builds.sh BEFORE AFTER [--data DIR] [--rounds N] [--seconds S]}
shift 2
D=/var/tmp/annbatch-perf/data
R=3
S=6
while [ $# -gt 0 ]; do
	case "$1" in
	--data) D=$2; shift 2 ;;
	--rounds) R=$2; shift 2 ;;
	--seconds) S=$2; shift 2 ;;
	*) echo "compare_builds.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
PY=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/var/tmp}/ab-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
differ=0

echo "## iterate checksums (sha256, first 16 hex)"
echo "| store | before | after |"
echo "| --- | --- | --- |"
for s in "$D"/*; do
	[ -d "$s" ] || continue
	sums=()
	for bin in "$B" "$A"; do
		sums+=("$("$bin" iterate "$s" --shuffle --seed 1 --chunk-size 32 --preload-nchunks 256 --batch-size 4096 \
			--epochs 2 --emit index+colsum | sha256sum | cut -c1-16)")
	done
	echo "| $(basename "$s") | ${sums[0]} | ${sums[1]} |"
	[ "${sums[0]}" = "${sums[1]}" ] || differ=1
done

echo
echo "## convert (hash over every file of the collection)"
in=$work/in
mkdir -p "$in"
"$B" synth "$in/s3.zarr" --n-obs 6000 --n-vars 3000 --mean-nnz 200 --seed 1
"$B" synth "$in/s2.zarr" --format zarr2 --n-obs 4000 --n-vars 3000 --mean-nnz 150 --seed 2
"$B" synth "$in/s.h5ad" --format h5ad --n-obs 3000 --n-vars 3000 --mean-nnz 100 --seed 3
"$B" synth "$in/d2.zarr" --format zarr2 --dense --n-obs 2000 --n-vars 500 --mean-nnz 50 --seed 4
"$B" synth "$in/d.h5ad" --format h5ad --dense --n-obs 1500 --n-vars 500 --mean-nnz 50 --seed 5
tree_hash() { (cd "$1" && find . -type f | LC_ALL=C sort | while read -r f; do echo "$f $(sha256sum <"$f")"; done) |
	sha256sum | cut -c1-16; }
runs=(
	"a|$in/s3.zarr $in/s2.zarr $in/s.h5ad --dataset-size 5000 --seed 3"
	"b|$in/s3.zarr $in/s.h5ad --groupby cell_type,donor --seed 4 --shuffle-chunk-size 100"
	"c|$in/d2.zarr $in/d.h5ad --no-shuffle"
	"e|$in/s2.zarr --compressor zstd --n-obs-per-chunk 32 --shard-size 4MB --seed 9 --obs-columns cell_type"
	"f|$in/d2.zarr $in/s3.zarr --dataset-size 1MB --blosc-blocksize 64KiB --seed 5"
)
echo "| run | before | after |"
echo "| --- | --- | --- |"
for r in "${runs[@]}"; do
	name=${r%%|*}
	read -r -a args <<<"${r#*|}"
	h=()
	for which in before after; do
		bin=$B
		[ $which = after ] && bin=$A
		"$bin" convert "${args[@]}" -o "$work/$which-$name.zarr" --no-progress 2>/dev/null
		h+=("$(tree_hash "$work/$which-$name.zarr")")
	done
	echo "| $name | ${h[0]} | ${h[1]} |"
	[ "${h[0]}" = "${h[1]}" ] || differ=1
done
h=()
for which in before after; do
	bin=$B
	[ $which = after ] && bin=$A
	"$bin" convert "$in/s2.zarr" -o "$work/$which-a.zarr" --seed 11 --no-progress 2>/dev/null
	h+=("$(tree_hash "$work/$which-a.zarr")")
done
echo "| a + added | ${h[0]} | ${h[1]} |"
[ "${h[0]}" = "${h[1]}" ] || differ=1

echo
echo "## bench samples/s (warm; $R rounds of ${S} s, alternated; medians)"
echo "| store | io | before | after | after/before |"
echo "| --- | --- | --- | --- | --- |"
for s in "$D"/*; do
	[ -d "$s" ] || continue
	for mode in buffered direct; do
		: >"$work/b.txt"
		: >"$work/a.txt"
		for _ in $(seq "$R"); do
			for which in before after; do
				bin=$B
				[ $which = after ] && bin=$A
				"$bin" bench "$s" --shuffle --seed 1 --chunk-size 32 --preload-nchunks 256 --batch-size 4096 \
					--duration "$S" --io "$mode" --json 2>/dev/null |
					$PY -c 'import json, sys; print(json.load(sys.stdin)["samples_per_s"])' >>"$work/${which:0:1}.txt"
			done
		done
		$PY - "$work/b.txt" "$work/a.txt" "$(basename "$s")" "$mode" <<'PYEOF'
import statistics, sys
b = [float(x) for x in open(sys.argv[1])]
a = [float(x) for x in open(sys.argv[2])]
mb, ma = statistics.median(b), statistics.median(a)
print("| %s | %s | %.0f | %.0f | %.2f |" % (sys.argv[3], sys.argv[4], mb, ma, ma / mb))
PYEOF
	done
done
[ $differ = 0 ] || { echo "checksums differ" >&2; exit 1; }
