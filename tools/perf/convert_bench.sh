#!/bin/bash
# Convert throughput beside the Python route, in one run on one machine.
#
#   bash tools/perf/convert_bench.sh [--annbatch BIN] [--rows N] [--out DIR]
#
# Writes one synthetic .h5ad (CSR float32, 20 000 genes, ~2 000 non-zeros a
# row, written by `annbatch synth --format h5ad`, gzip like most real files),
# then converts it twice, each from a cold page cache:
#   - annbatch convert IN.h5ad -o OUT.zarr (sharded zarr v3 collection,
#     blosc-lz4, shuffled, as the Python annbatch writer produces);
#   - the Python route a user would otherwise run: Debian's anndata 0.8
#     reading the h5ad and writing zarr (anndata.read_h5ad + write_zarr).
# Reports input MB/s (the .h5ad's size over wall time) for both and the
# ratio, as a markdown table and JSON in DIR/convert.{md,json}.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
AB="$top/build/annbatch"
ROWS=20000
OUT=/var/tmp/annbatch-perf-convert
while [ $# -gt 0 ]; do
	case "$1" in
	--annbatch) AB=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "convert_bench: unknown option $1" >&2; exit 2 ;;
	esac
done
PY=/usr/bin/python3
[ -x "$AB" ] || { echo "convert_bench: $AB is not built (make first, or --annbatch BIN)" >&2; exit 1; }
mkdir -p "$OUT"
IN="$OUT/input.h5ad"
if [ ! -f "$IN" ] || [ "$(cat "$OUT/rows" 2>/dev/null)" != "$ROWS" ]; then
	echo "convert_bench: writing $ROWS rows to $IN"
	"$AB" synth "$IN" --format h5ad --compressor gzip --n-obs "$ROWS" --seed 3 --force
	echo "$ROWS" >"$OUT/rows"
fi
in_bytes=$(stat -c %s "$IN")

drop() { sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# one timed run: NAME COMMAND...; prints wall seconds
timed() {
	local name=$1; shift
	drop
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$OUT/$name.log" 2>&1 || { echo "convert_bench: $name failed:" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | awk '{printf "%.3f", $1 - $3}'
}

rm -rf "$OUT/annbatch.zarr" "$OUT/python.zarr"
t_ab=$(timed annbatch "$AB" convert "$IN" -o "$OUT/annbatch.zarr" --no-progress)
t_py=$(timed python "$PY" -c 'import sys, anndata; anndata.read_h5ad(sys.argv[1]).write_zarr(sys.argv[2])' \
	"$IN" "$OUT/python.zarr")

"$PY" - "$OUT" "$in_bytes" "$ROWS" "$t_ab" "$t_py" "$AB" <<'EOF'
import json, sys
out, nbytes, rows, t_ab, t_py, ab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
res = {
    "input_bytes": nbytes, "rows": rows,
    "annbatch": {"seconds": t_ab, "input_mb_per_s": nbytes / t_ab / 1e6,
                 "command": f"{ab} convert input.h5ad -o annbatch.zarr (zarr v3, sharded, blosc-lz4, shuffled)"},
    "python": {"seconds": t_py, "input_mb_per_s": nbytes / t_py / 1e6,
               "command": "anndata.read_h5ad(input.h5ad).write_zarr(python.zarr) (anndata 0.8, zarr v2)"},
    "ratio": t_py / t_ab,
}
json.dump(res, open(f"{out}/convert.json", "w"), indent=2)
md = (f"| route | wall s | input MB/s |\n| --- | --- | --- |\n"
      f"| annbatch convert (v3 sharded, shuffled) | {t_ab:.2f} | {res['annbatch']['input_mb_per_s']:.1f} |\n"
      f"| anndata read_h5ad + write_zarr | {t_py:.2f} | {res['python']['input_mb_per_s']:.1f} |\n"
      f"\nInput: {rows} rows, {nbytes / 1e6:.1f} MB of gzip h5ad; annbatch / Python = {res['ratio']:.2f}x "
      "(cold page cache for both).\n")
open(f"{out}/convert.md", "w").write(md)
print(md)
EOF
