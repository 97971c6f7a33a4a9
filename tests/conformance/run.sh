#!/usr/bin/env bash
# Conformance suite for `annbatch get`.
#
#   bash tests/conformance/run.sh ANNBATCH_BINARY OUTDIR [NAME_FILTER]
#
# (Re)generates the fixtures into OUTDIR when OUTDIR/manifest.tsv is missing or
# older than gen_fixtures.py, then runs every case of the manifest (only those whose
# name contains NAME_FILTER, if given).  Prints one line per failing case, then
#   conformance: N passed, M failed
# and exits non-zero if M > 0 or N == 0.  Set KEEP_OUTPUT=1 to keep the actual
# outputs of failing cases under OUTDIR/actual/.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 ANNBATCH_BINARY OUTDIR [NAME_FILTER]" >&2
	exit 2
fi
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1
OUT=$2
FILTER=${3:-}
case $BIN in */*) BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN") ;; esac
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)

if [ ! -f "$OUT/manifest.tsv" ] || [ "$HERE/gen_fixtures.py" -nt "$OUT/manifest.tsv" ]; then
	"$PY" "$HERE/gen_fixtures.py" "$OUT" >/dev/null || { echo "conformance: fixture generation failed" >&2; exit 2; }
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ "${KEEP_OUTPUT:-0}" = 1 ] && mkdir -p "$OUT/actual"

# JSON comparison: strict (true is not 1, 1 is not 1.0), prints a reason on mismatch.
cat >"$TMP/jsoncmp.py" <<'EOF'
import json, sys
def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
try:
    with open(sys.argv[2], "rb") as f:
        got = json.loads(f.read().decode("utf-8"))
except Exception as e:
    print("stdout is not valid UTF-8 JSON: %s" % e); sys.exit(1)
with open(sys.argv[1], encoding="utf-8") as f:
    want = json.load(f)
if not same(got, want):
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            print("JSON array has %d items, expected %d" % (len(got), len(want))); sys.exit(1)
        for i, (x, y) in enumerate(zip(got, want)):
            if not same(x, y):
                print("JSON item %d is %s, expected %s" % (i, json.dumps(x)[:80], json.dumps(y)[:80])); sys.exit(1)
    print("JSON differs: got %s, expected %s" % (json.dumps(got)[:80], json.dumps(want)[:80])); sys.exit(1)
EOF

pass=0
fail=0
report() { # name reason
	fail=$((fail + 1))
	printf 'FAIL %s: %s\n' "$1" "$2"
	if [ "${KEEP_OUTPUT:-0}" = 1 ]; then
		cp "$TMP/out" "$OUT/actual/$1.stdout" 2>/dev/null
		cp "$TMP/err" "$OUT/actual/$1.stderr" 2>/dev/null
	fi
}
rc_reason() { # rc
	case $1 in
	124) echo "timed out" ;;
	126 | 127) echo "could not execute $BIN (exit $1)" ;;
	*) if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "exit status $1"; fi ;;
	esac
}
first_err() { head -c 300 "$TMP/err" | head -n 1; }

while IFS=$'\t' read -r name mode store node args expected; do
	case $name in '' | '#'*) continue ;; esac
	if [ -n "$FILTER" ] && [[ $name != *"$FILTER"* ]]; then continue; fi
	case $store in /*) ;; *) store=$OUT/$store ;; esac
	cmd=("$BIN" get "$store")
	[ "$node" != "-" ] && cmd+=("$node")
	outfile=
	if [ "$args" != "-" ]; then
		read -r -a argv <<<"$args"
		for a in "${argv[@]}"; do
			if [ "$a" = "@OUT" ]; then
				outfile=$TMP/outfile
				rm -f "$outfile"
				a=$outfile
			fi
			cmd+=("$a")
		done
	fi
	# the outer redirection swallows the shell's own "Segmentation fault" notice
	{ timeout 20 "${cmd[@]}" >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?; } 2>/dev/null
	case $mode in
	bytes | json)
		if [ $rc -ne 0 ]; then
			report "$name" "$(rc_reason $rc): $(first_err)"
			continue
		fi
		got=$TMP/out
		if [ -n "$outfile" ]; then
			if [ ! -f "$outfile" ]; then
				report "$name" "output file was not created"
				continue
			fi
			got=$outfile
		fi
		if [ "$mode" = bytes ]; then
			if ! cmp -s "$OUT/$expected" "$got"; then
				want_n=$(wc -c <"$OUT/$expected")
				got_n=$(wc -c <"$got")
				where=$(cmp "$OUT/$expected" "$got" 2>&1 | head -n 1 | sed 's/^.*differ: //')
				report "$name" "output differs: got $got_n bytes, expected $want_n; $where"
				continue
			fi
		else
			if ! why=$("$PY" "$TMP/jsoncmp.py" "$OUT/$expected" "$got" 2>&1); then
				report "$name" "$why"
				continue
			fi
		fi
		;;
	fail)
		if [ $rc -eq 0 ]; then
			report "$name" "exit status 0, expected a failure mentioning '$expected'"
			continue
		fi
		if [ $rc -ge 124 ]; then
			report "$name" "$(rc_reason $rc) instead of a clean failure"
			continue
		fi
		nlines=$(wc -l <"$TMP/err")
		[ -s "$TMP/err" ] && [ "$(tail -c 1 "$TMP/err" | od -An -c | tr -d ' ')" != '\n' ] && nlines=$((nlines + 1))
		if [ "$nlines" -ne 1 ]; then
			report "$name" "stderr has $nlines lines, expected exactly 1: $(first_err)"
			continue
		fi
		if ! grep -qiF -- "$expected" "$TMP/err"; then
			report "$name" "stderr lacks '$expected': $(first_err)"
			continue
		fi
		;;
	*)
		report "$name" "unknown mode '$mode' in manifest"
		continue
		;;
	esac
	pass=$((pass + 1))
done <"$OUT/manifest.tsv"

echo "conformance: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
