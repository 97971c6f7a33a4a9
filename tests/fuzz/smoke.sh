#!/bin/bash
# Runs every fuzz target for a fixed time from a scratch copy of its seed
# corpus (the committed corpus is never modified) and fails if any target
# finds a crash, a leak, undefined behaviour, a timeout or runs out of memory.
#
# Usage: tests/fuzz/smoke.sh BUILDDIR [SECONDS_PER_TARGET] [TARGET...]
#   BUILDDIR: where tests/fuzz/build.sh put the targets
# Crash reproducers are kept in BUILDDIR/smoke/<target>/ (crash-*, leak-*,
# timeout-*, oom-*); a target's log is BUILDDIR/smoke/<target>.log.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
secs=${2:-20}
shift 2 2>/dev/null || shift $#
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_meta_v2 fuzz_meta_v3 fuzz_shard_index fuzz_codecs fuzz_vlen
				       fuzz_chunk fuzz_anndata)
status=0
for t in "${targets[@]}"; do
	work=$out/smoke/$t
	rm -rf "$work" "$work.log"
	mkdir -p "$work/corpus" "$work/tmp"
	cp "$top/tests/fuzz/corpus/$t"/* "$work/corpus/" 2>/dev/null
	dict=()
	case $t in fuzz_meta_v2|fuzz_meta_v3|fuzz_anndata) dict=(-dict="$top/tests/fuzz/zarr.dict") ;; esac
	# Leaks, UB and ASan reports are all fatal; -max_len lets the whole-store
	# inputs of fuzz_anndata grow past libFuzzer's 4 KiB default.
	TMPDIR=$work/tmp ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$out/$t" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=5 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" >"$work.log" 2>&1
	rc=$?
	runs=$(grep -o '^#[0-9]*[[:space:]]*DONE' "$work.log" | grep -o '[0-9]*' | head -1)
	if [ $rc -eq 0 ]; then
		echo "fuzz-smoke: $t ok (${runs:-?} runs in ${secs}s)"
	else
		status=1
		echo "fuzz-smoke: $t FAILED (exit $rc); log: $work.log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$work.log" | head -5
		ls "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|    reproducer: $work/|"
	fi
done
exit $status
