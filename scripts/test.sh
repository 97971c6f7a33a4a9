#!/bin/bash
# Runs the whole test suite: installs what is missing, builds three times and
# runs `make check` in each: plain, with AddressSanitizer + UndefinedBehavior-
# Sanitizer, and the concurrency suites with ThreadSanitizer; then a short fuzz
# run of every decoder. Exits non-zero if anything fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
status=0
run_suite() { # NAME DIR TESTS [configure args]; TESTS empty = all
	local name=$1 dir=$2 tests=$3
	shift 3
	echo "== $name build"
	bash "$top/scripts/build.sh" "$dir" "$@"
	echo "== $name tests"
	local only=()
	[ -z "$tests" ] || only=(TESTS="$tests")
	if make -C "$dir" -j"$(nproc)" check "${only[@]}"; then
		echo "== $name: all passed"
	else
		status=1
		echo "== $name: FAILED"
		for log in $(find "$dir/tests" -name '*.log' | sort); do
			if grep -q -E '^:test-result: (FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null; then
				echo "--- $log"
				tail -40 "$log"
			fi
		done
	fi
	# totals for the closing line (automake's summary of this tree)
	local p f
	p=$(awk '/^# PASS:/ {print $3; exit}' "$dir/test-suite.log" 2>/dev/null)
	f=$(awk '/^# (FAIL|ERROR):/ {s += $3} END {print s + 0}' "$dir/test-suite.log" 2>/dev/null)
	total_pass=$((total_pass + ${p:-0}))
	total_fail=$((total_fail + ${f:-0}))
	return 0
}
total_pass=0
total_fail=0
run_suite plain "$top/build" ""
run_suite "asan+ubsan" "$top/build-asan" "" --enable-sanitizers
# The concurrency under ThreadSanitizer: the ring, the I/O backends, the
# loader with many consumers, fault injection, and the collection writer's
# scratch and encoder threads.
run_suite tsan "$top/build-tsan" "tests/unit/test_ring tests/unit/test_io tests/unit/test_loader tests/unit/test_faults tests/unit/test_collection" \
	--enable-tsan
# A library built without HDF5 (configure --without-hdf5): .h5ad paths say
# so in one line, zarr works. Only the CLI is built for it.
echo "== no-hdf5 build"
if bash "$top/scripts/build.sh" "$top/build-nohdf5" --without-hdf5 >/dev/null 2>&1 &&
	bash "$top/tests/cli/test_nohdf5.sh" "$top/build-nohdf5/annbatch"; then
	echo "== no-hdf5: all passed"
	total_pass=$((total_pass + 1))
else
	status=1
	total_fail=$((total_fail + 1))
	echo "== no-hdf5: FAILED"
fi
# Fuzz smoke run: every libFuzzer target briefly from its seed corpus (needs
# clang with its fuzzer runtime; skipped without clang).
if command -v clang >/dev/null 2>&1; then
	echo "== fuzz-smoke"
	if make -C "$top/build" fuzz-smoke; then
		echo "== fuzz-smoke: all passed"
		total_pass=$((total_pass + 1))
	else
		status=1
		total_fail=$((total_fail + 1))
		echo "== fuzz-smoke: FAILED"
	fi
fi
[ $status -eq 0 ] || [ $total_fail -gt 0 ] || total_fail=1
echo "suites: $total_pass passed, $total_fail failed"
exit $status
