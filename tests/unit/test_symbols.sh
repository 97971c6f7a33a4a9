#!/bin/bash
# The symbols libannbatch.so exports are exactly the functions annbatch.h
# declares with AB_API: no internal function leaks out (the library is built
# with -fvisibility=hidden), and none of the API is missing.
set -u
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
lib="$AB_TOP_BUILDDIR/.libs/libannbatch.so"
hdr="$AB_TOP_SRCDIR/include/annbatch.h"
[ -f "$lib" ] || { echo "SKIP: no shared library ($lib): built with --disable-shared?"; exit 77; }
command -v nm >/dev/null || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ab-symbols.XXXXXX")
trap 'rm -rf "$work"' EXIT
# functions (T) and data (D, B, R) the library defines and exports
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$work/exported"
# every declaration in the header that starts with AB_API, by its name
grep -E '^AB_API ' "$hdr" | grep -oE '\bab_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$work/declared"
pass=0
fail=0
if [ "$(wc -l <"$work/declared")" -ge 50 ]; then pass=$((pass + 1)); else
	fail=$((fail + 1)); echo "FAIL: only $(wc -l <"$work/declared") AB_API declarations found in annbatch.h"; fi
extra=$(comm -23 "$work/exported" "$work/declared")
missing=$(comm -13 "$work/exported" "$work/declared")
if [ -z "$extra" ]; then pass=$((pass + 1)); else
	fail=$((fail + 1)); echo "FAIL: exported but not AB_API in annbatch.h:"; echo "$extra" | sed 's/^/    /'; fi
if [ -z "$missing" ]; then pass=$((pass + 1)); else
	fail=$((fail + 1)); echo "FAIL: AB_API in annbatch.h but not exported:"; echo "$missing" | sed 's/^/    /'; fi
# every public function of the header is marked (no declaration forgot AB_API)
unmarked=$(grep -E '^[a-z][^(]*\bab_[a-z0-9_]+\(' "$hdr" | grep -vE '^(typedef|AB_API)' || true)
if [ -z "$unmarked" ]; then pass=$((pass + 1)); else
	fail=$((fail + 1)); echo "FAIL: declarations without AB_API:"; echo "$unmarked" | sed 's/^/    /'; fi
echo "symbols: $(wc -l <"$work/exported") exported, $(wc -l <"$work/declared") declared"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
