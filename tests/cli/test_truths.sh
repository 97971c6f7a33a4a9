#!/bin/bash
# What the CLI says must be what happened:
#  - with the pread pool (asked for, or the fallback where io_uring is
#    refused: AB_IO_FORCE_PREAD=1 stands for a kernel with io_uring disabled)
#    `bench` must not report registered buffers or registered files;
#  - `--backend uring` where io_uring is refused fails with one line that
#    says the uring backend cannot run, not "using pread pool";
#  - `get` on an AnnData group names what it is in plain English.
# The store is written by Debian's python3-anndata.
set -uo pipefail
: "${AB_TOP_BUILDDIR:?}"
AB="${AB_BIN:-$AB_TOP_BUILDDIR/annbatch}" # AB_BIN: another build, to compare
PY=/usr/bin/python3
work="$AB_TOP_BUILDDIR/tests/work-truths"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

D="$work/ad.zarr"
"$PY" - "$D" >"$work/gen.log" 2>&1 <<'EOF' || { cat "$work/gen.log"; exit 1; }
import sys, warnings
warnings.filterwarnings("ignore")
import anndata, numpy as np, pandas as pd
x = np.arange(400, dtype=np.float32).reshape(100, 4)
ad = anndata.AnnData(X=x, obs=pd.DataFrame(index=[f"c{i}" for i in range(100)]),
                     var=pd.DataFrame(index=[f"g{i}" for i in range(4)]))
ad.write_zarr(sys.argv[1], chunks=(10, 4))
EOF

# bench's JSON report: "registered_buffers" and "registered_files", on a
# sharded store (shard files are what the uring backend registers)
S="$work/sharded.zarr"
"$AB" synth "$S" --n-obs 2000 --n-vars 8 --dense --n-obs-per-chunk 32 --shard-size 4KiB >/dev/null ||
	bad "synth failed"
for how in "--backend pread" "FORCE"; do
	if [ "$how" = FORCE ]; then
		out=$(AB_IO_FORCE_PREAD=1 "$AB" bench "$S" --epochs 1 --batch-size 10 --chunk-size 10 --json 2>&1)
	else
		out=$("$AB" bench "$S" --epochs 1 --batch-size 10 --chunk-size 10 --json $how 2>&1)
	fi
	rc=$?
	case "$out" in
	*'"io_backend": "pread"'*'"registered_buffers": false, "registered_files": 0,'*) ok ;;
	*) bad "bench with the pread pool ($how, rc $rc) reports registered buffers or files: $(echo "$out" | grep -o '"io_backend[^,]*\|"registered[^,]*' | tr '\n' ' ')" ;;
	esac
done

# --backend uring where io_uring is refused
AB_IO_FORCE_PREAD=1 "$AB" iterate "$D" --backend uring >"$work/out" 2>"$work/err"
rc=$?
msg=$(cat "$work/err")
if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$(grep -c '' "$work/err")" -ne 1 ]; then
	bad "iterate --backend uring without io_uring: exit $rc, stderr: $msg"
else
	case "$msg" in
	*"using pread pool"*) bad "iterate --backend uring without io_uring says it uses the pread pool, yet fails: $msg" ;;
	*"uring backend cannot run"*) ok ;;
	*) bad "iterate --backend uring without io_uring: unclear message: $msg" ;;
	esac
fi

# get on the AnnData root, and on a plain (dataframe) group
"$AB" get "$D" >"$work/out" 2>"$work/err"
rc=$?
msg=$(cat "$work/err")
case "$rc:$msg" in
0:*) bad "get on the AnnData root succeeded" ;;
*"'/' is an AnnData group, not an array; name a node inside it, e.g. X") ok ;;
*) bad "get on the AnnData root: $msg" ;;
esac
"$AB" get "$D" obs >"$work/out" 2>"$work/err"
rc=$?
msg=$(cat "$work/err")
case "$rc:$msg" in
0:*) bad "get on obs succeeded" ;;
*"'obs' is a group (encoding-type dataframe), not an array; name an array or a column inside it") ok ;;
*) bad "get on obs: $msg" ;;
esac

echo "truths: $pass passed, $fail failed"
[ $fail -eq 0 ]
