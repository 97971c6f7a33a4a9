#!/bin/bash
# CLI cases of the conformance fixtures (`iterate`, `inspect` on stores other
# writers make: roots that are arrays, directories without root metadata, obs
# columns of datetimes). gen_fixtures.py writes them to OUTDIR/cli_manifest.tsv,
# one per line, tab separated:
#
#   name  mode  args  expected
#
# `args` is the annbatch command line, run in OUTDIR/stores (store paths are
# relative to it). Modes: `text`: exit 0, nothing on stderr, stdout equal to
# the file `expected` (relative to OUTDIR); `grep`: exit 0 and stdout contains
# `expected`; `fail`: a non-zero exit below 124 and one stderr line containing
# `expected`.
#
#   bash tests/conformance/cli_cases.sh ANNBATCH_BINARY OUTDIR
#
# or, under `make check`, with AB_TOP_BUILDDIR and AB_FIXTURES set. Prints one
# FAIL line per broken case, then `cli_cases: N passed, M failed`.
set -u

if [ $# -ge 2 ]; then
	AB=$1
	FIX=$2
else
	: "${AB_TOP_BUILDDIR:?}" "${AB_FIXTURES:?}"
	AB=$AB_TOP_BUILDDIR/annbatch
	FIX=$AB_FIXTURES/conformance
fi
HERE=$(cd "$(dirname "$0")" && pwd)
case $AB in */*) AB=$(cd "$(dirname "$AB")" && pwd)/$(basename "$AB") ;; esac
mkdir -p "$FIX" || exit 2
FIX=$(cd "$FIX" && pwd)
if [ ! -f "$FIX/cli_manifest.tsv" ] || [ ! -f "$FIX/manifest.tsv" ] || [ "$HERE/gen_fixtures.py" -nt "$FIX/manifest.tsv" ]; then
	/usr/bin/python3 "$HERE/gen_fixtures.py" "$FIX" >/dev/null || { echo "cli_cases: fixture generation failed" >&2; exit 2; }
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
bad() { fail=$((fail + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }
first_err() { head -c 300 "$TMP/err" | head -n 1; }

while IFS=$'\t' read -r name mode args expected; do
	case $name in '' | '#'*) continue ;; esac
	read -r -a argv <<<"$args"
	# the outer redirection swallows the shell's own "Segmentation fault" notice
	{ (cd "$FIX/stores" && timeout 30 "$AB" "${argv[@]}" >"$TMP/out" 2>"$TMP/err" </dev/null); rc=$?; } 2>/dev/null
	case $mode in
	text | grep)
		if [ $rc -ne 0 ]; then
			bad "$name" "exit status $rc: $(first_err)"
			continue
		fi
		if [ -s "$TMP/err" ]; then
			bad "$name" "stderr is not empty: $(first_err)"
			continue
		fi
		if [ "$mode" = text ] && ! cmp -s "$FIX/$expected" "$TMP/out"; then
			bad "$name" "stdout differs from $expected: $(diff "$FIX/$expected" "$TMP/out" | sed -n 2p | head -c 200)"
			continue
		fi
		if [ "$mode" = grep ] && ! grep -qF -- "$expected" "$TMP/out"; then
			bad "$name" "stdout lacks '$expected': $(head -c 200 "$TMP/out" | tr '\n' ' ')"
			continue
		fi
		;;
	fail)
		if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
			bad "$name" "exit status $rc, expected a clean failure mentioning '$expected'"
			continue
		fi
		if [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -qiF -- "$expected" "$TMP/err"; then
			bad "$name" "stderr is not one line naming '$expected': $(first_err)"
			continue
		fi
		;;
	*)
		bad "$name" "unknown mode '$mode'"
		continue
		;;
	esac
	pass=$((pass + 1))
done <"$FIX/cli_manifest.tsv"

echo "cli_cases: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
