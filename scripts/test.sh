#!/bin/bash
# Runs the whole test suite: installs what is missing, builds twice (plain and
# with AddressSanitizer + UndefinedBehaviorSanitizer) and runs `make check` in
# each. Exits non-zero if anything fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
status=0
run_suite() { # NAME DIR [configure args]
	local name=$1 dir=$2
	shift 2
	echo "== $name build"
	bash "$top/scripts/build.sh" "$dir" "$@"
	echo "== $name tests"
	if make -C "$dir" -j"$(nproc)" check; then
		echo "== $name: all passed"
	else
		status=1
		echo "== $name: FAILED"
		for log in $(find "$dir/tests" -name '*.log' | sort); do
			grep -q -E '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null && { echo "--- $log"; tail -40 "$log"; }
		done
	fi
}
run_suite plain "$top/build"
run_suite "asan+ubsan" "$top/build-asan" --enable-sanitizers
# Fuzz smoke run: every libFuzzer target briefly from its seed corpus (needs
# clang with its fuzzer runtime; skipped without clang).
if command -v clang >/dev/null 2>&1; then
	echo "== fuzz-smoke"
	if make -C "$top/build" fuzz-smoke; then
		echo "== fuzz-smoke: all passed"
	else
		status=1
		echo "== fuzz-smoke: FAILED"
	fi
fi
exit $status
