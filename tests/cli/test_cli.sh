#!/bin/bash
# Behaviour of the annbatch command line: help, exit codes, one-line errors,
# atomic -o output, inspect text and JSON. Stores are written here by Debian's
# python3-zarr and python3-anndata.
set -uo pipefail
: "${AB_TOP_BUILDDIR:?}"
AB="$AB_TOP_BUILDDIR/annbatch"
PY=/usr/bin/python3
work=$(mktemp -d /tmp/ab-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# check NAME COMMAND...: the command must succeed
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }

"$PY" - "$work" <<'PYEOF'
import sys, numpy as np, zarr, anndata, pandas as pd, scipy.sparse as sp
w = sys.argv[1]
g = zarr.open_group(f"{w}/plain.zarr", mode="w")
a = g.create_dataset("a", shape=(6, 4), chunks=(4, 4), dtype="<i8")
a[:] = np.arange(24).reshape(6, 4)
np.arange(24, dtype="<i8").reshape(6, 4)[1:3].tofile(f"{w}/a_1_3.bin")
rng = np.random.default_rng(0)
X = sp.random(12, 5, density=0.4, format="csr", dtype=np.float32, random_state=1)
obs = pd.DataFrame({"ct": pd.Categorical(["t", "b", "t", "nk"] * 3), "n": np.arange(12)},
                   index=[f"c{i}" for i in range(12)])
ad = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(5)]))
ad.write_zarr(f"{w}/ad.zarr")
PYEOF

# --help everywhere, exit 0, usage on stdout
for c in "" inspect get; do
	out=$("$AB" $c --help 2>/dev/null); rc=$?
	if [ $rc -eq 0 ] && grep -q "^Usage: annbatch" <<<"$out"; then ok; else bad "annbatch $c --help"; fi
done
check "help get" bash -c "'$AB' help get | grep -q 'annbatch get STORE'"
# every command the usage lists runs, and `help CMD` is its --help
cmds=$("$AB" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
[ "$(wc -w <<<"$cmds")" -eq 6 ] && ok || bad "usage lists 6 commands: $cmds"
for c in $cmds; do
	own=$("$AB" "$c" --help 2>&1); rc1=$?
	via=$("$AB" help "$c" 2>&1); rc2=$?
	if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$own" = "$via" ] && grep -q "^Usage: annbatch $c " <<<"$own"; then
		ok
	else
		bad "help $c (rc $rc1/$rc2)"
	fi
done
check "--version" bash -c "'$AB' --version | grep -Eq '^annbatch [0-9]+\.[0-9]+\.[0-9]+$'"

# unknown command and bad usage: exit 2
"$AB" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown command exit 2"
"$AB" get >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "get without STORE exit 2"
"$AB" get --bogus x >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown option exit 2"

# a failure: non-zero exit, exactly one line on stderr, nothing on stdout
expect_fail() { # name substring args...
	local n=$1 sub=$2; shift 2
	"$AB" "$@" >"$work/out" 2>"$work/err"; local rc=$?
	if [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qi -- "$sub" "$work/err" \
		&& [ ! -s "$work/out" ]; then ok; else bad "$n (rc=$rc, stderr: $(cat "$work/err"))"; fi
}
expect_fail "missing store" "not found" get "$work/none.zarr" X
expect_fail "file not store" "not a zarr store" get "$work/a_1_3.bin"
expect_fail "missing node" "not found" get "$work/plain.zarr" nope
expect_fail "bad rows syntax" "rows" get "$work/plain.zarr" a --rows 3
expect_fail "rows past end" "range" get "$work/plain.zarr" a --rows 2:7
expect_fail "rows reversed" "range" get "$work/plain.zarr" a --rows 4:2
expect_fail "dotdot node" ".." get "$work/plain.zarr" ../plain.zarr/a
expect_fail "csr without --dense" "--dense" get "$work/ad.zarr" X
expect_fail "labels on array" "labels" get "$work/plain.zarr" a --labels
expect_fail "group" "group" get "$work/ad.zarr" obs

# get -o: the file appears only on success; a failure leaves the old file
check "get -o" "$AB" get "$work/plain.zarr" a --rows 1:3 -o "$work/o.bin"
check "get -o bytes" cmp "$work/o.bin" "$work/a_1_3.bin"
echo keep >"$work/keep.bin"
"$AB" get "$work/plain.zarr" a --rows 1:99 -o "$work/keep.bin" 2>/dev/null && bad "failing -o exit"
check "failed -o keeps file" grep -q keep "$work/keep.bin"
if ls "$work"/*.tmp.* >/dev/null 2>&1; then bad "temporary file left behind"; else ok; fi

# inspect: text and JSON
out=$("$AB" inspect "$work/ad.zarr"); rc=$?
if [ $rc -eq 0 ] && grep -q "n_obs=12 n_vars=5 X=csr_matrix float32" <<<"$out" \
	&& grep -q "ct (categorical)" <<<"$out" && grep -q "n (array)" <<<"$out"; then ok
else bad "inspect text: $out"; fi
"$AB" inspect --json "$work/ad.zarr" >"$work/i.json"
check "inspect json" "$PY" - "$work/i.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["root"]
assert d["zarr_format"] == 2
assert r["anndata"]["n_obs"] == 12 and r["anndata"]["x_kind"] == "csr_matrix"
kinds = {c["name"]: c["kind"] for c in r["anndata"]["obs_columns"]}
assert kinds == {"ct": "categorical", "n": "array"}, kinds
x = [c for c in r["children"] if c["name"] == "X"][0]
data = [c for c in x["children"] if c["name"] == "data"][0]
assert data["chunks_present"] == data["chunks_total"] >= 1
assert data["bytes_on_disk"] > 0 and data["dtype"] == "float32"
PYEOF
out=$("$AB" inspect "$work/plain.zarr" a); rc=$?
if [ $rc -eq 0 ] && grep -q "int64 \[6, 4\]  chunks \[4, 4\]" <<<"$out" && grep -q "2/2 chunks" <<<"$out"; then ok
else bad "inspect node: $out"; fi

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
