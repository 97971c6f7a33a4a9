#!/bin/bash
# Bad-input corpus for `annbatch iterate` and `annbatch inspect` (the `get` side
# is the `bad_*` part of the conformance manifest).  It reuses the stores that
# gen_fixtures.py writes, so run the conformance suite (or the generator) first:
#
#   bash tests/conformance/bad_cli.sh ANNBATCH_BINARY FIXTURE_DIR
#
# or, under `make check`, with AB_TOP_BUILDDIR and AB_FIXTURES set (FIXTURE_DIR is
# then $AB_FIXTURES/conformance).  Every failing case must exit non-zero (below
# 124: no signal, no timeout), print exactly one line on stderr and name the
# problem; prints one FAIL line per broken case and then `N passed, M failed`.
set -u

if [ $# -ge 2 ]; then
	AB=$1
	FIX=$2
else
	: "${AB_TOP_BUILDDIR:?}" "${AB_FIXTURES:?}"
	AB=$AB_TOP_BUILDDIR/annbatch
	FIX=$AB_FIXTURES/conformance
fi
S=$FIX/stores
if [ ! -d "$S/bad_csr_ok" ]; then
	# the generator is run once by `make check` (tests/prepare-fixtures.sh);
	# standing alone, write the fixtures here
	HERE=$(cd "$(dirname "$0")" && pwd)
	/usr/bin/python3 "$HERE/gen_fixtures.py" "$FIX" >/dev/null || { echo "bad_cli: fixture generation failed" >&2; exit 2; }
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
bad() { fail=$((fail + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

run() { # the command, its outputs in $TMP, its status in $rc
	{ timeout 20 "$AB" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?; } 2>/dev/null
}

stderr_lines() {
	local n
	n=$(wc -l <"$TMP/err")
	[ -s "$TMP/err" ] && [ "$(tail -c 1 "$TMP/err" | od -An -c | tr -d ' ')" != '\n' ] && n=$((n + 1))
	echo "$n"
}

# fails NAME WHERE SUBSTRING ARGS...: a clean failure.  WHERE is `err` (the one
# stderr line names the problem) or `out` (inspect: stderr says how many nodes
# failed, the ERROR text on stdout names the problem).
fails() {
	local name=$1 where=$2 sub=$3
	shift 3
	run "$@"
	if [ $rc -eq 0 ]; then
		bad "$name" "exit status 0, expected a failure mentioning '$sub'"
		return
	fi
	if [ $rc -ge 124 ]; then
		bad "$name" "exit status $rc (signal or timeout): $(head -n 1 "$TMP/err" | head -c 300)"
		return
	fi
	local n
	n=$(stderr_lines)
	if [ "$n" -ne 1 ]; then
		bad "$name" "stderr has $n lines, expected 1: $(head -n 1 "$TMP/err" | head -c 300)"
		return
	fi
	if ! grep -qiF -- "$sub" "$TMP/$where"; then
		bad "$name" "$where lacks '$sub': $(head -c 300 "$TMP/$where" | tr '\n' ' ')"
		return
	fi
	pass=$((pass + 1))
}

# works NAME ARGS...: exit 0, nothing on stderr, something on stdout
works() {
	local name=$1
	shift
	run "$@"
	if [ $rc -ne 0 ] || [ -s "$TMP/err" ] || [ ! -s "$TMP/out" ]; then
		bad "$name" "exit status $rc: $(head -n 1 "$TMP/err" | head -c 300)"
		return
	fi
	pass=$((pass + 1))
}

IT=(iterate --batch-size 4)

# ---- controls: the corpus's good CSR store reads fine
works iterate_csr_control "${IT[@]}" "$S/bad_csr_ok"
works iterate_csr_control_shuffled "${IT[@]}" --shuffle --seed 3 "$S/bad_csr_ok"
works inspect_csr_control inspect "$S/bad_csr_ok"

# ---- truncated chunks and shards, checksums, lying shard indexes
fails iterate_v2_blosc_truncated err "truncated" "${IT[@]}" "$S/bad_v2_blosc_truncated:a"
fails iterate_v2_blosc_header_cut err "chunk" "${IT[@]}" "$S/bad_v2_blosc_header_cut:a"
fails iterate_v2_zstd_truncated err "truncated" "${IT[@]}" "$S/bad_v2_zstd_truncated:a"
fails iterate_v2_raw_short_chunk err "chunk holds" "${IT[@]}" "$S/bad_v2_raw_short:a"
fails iterate_v3_raw_short_chunk err "chunk holds" "${IT[@]}" "$S/bad_v3_raw_short:a"
fails iterate_v3_blosc_truncated err "chunk" "${IT[@]}" "$S/bad_v3_blosc_truncated:a"
fails iterate_v3_crc32c_mismatch err "crc32c" "${IT[@]}" "$S/bad_v3_crc:a"
fails iterate_v3_crc32c_payload err "crc32c" "${IT[@]}" "$S/bad_v3_crc_payload:a"
fails iterate_v3_shard_index_crc32c err "crc32c" "${IT[@]}" "$S/bad_v3_shard_index_crc:a"
fails iterate_v3_shard_inner_crc32c err "crc32c" "${IT[@]}" "$S/bad_v3_shard_inner_crc:a"
fails iterate_v3_shard_truncated_end err "crc32c" "${IT[@]}" "$S/bad_v3_shard_cut_end:a"
fails iterate_v3_shard_truncated_start err "past the end" "${IT[@]}" "$S/bad_v3_shard_cut_start:a"
fails iterate_v3_shard_shorter_than_index err "shorter than its index" "${IT[@]}" "$S/bad_v3_shard_tiny:a"
fails iterate_v3_shard_offset_past_end err "past the end" "${IT[@]}" "$S/bad_v3_shard_past_end:a"
fails iterate_v3_shard_offset_wraps err "past the end" "${IT[@]}" "$S/bad_v3_shard_wrap:a"
fails iterate_v3_shard_nbytes_huge err "past the end" "${IT[@]}" "$S/bad_v3_shard_huge_len:a"
fails inspect_v3_shard_index_crc32c out "crc32c" inspect "$S/bad_v3_shard_index_crc"
fails inspect_v3_shard_truncated_end out "crc32c" inspect "$S/bad_v3_shard_cut_end"
fails inspect_v3_shard_offset_wraps out "past the end" inspect "$S/bad_v3_shard_wrap"

# ---- shapes: negative, too large, zero chunks, overflowing bytes
fails iterate_v2_shape_negative err "non-negative" "${IT[@]}" "$S/bad_v2_shape_neg:a"
fails iterate_v3_shape_negative err "non-negative" "${IT[@]}" "$S/bad_v3_shape_neg:a"
fails iterate_v3_shape_huge err "too large" "${IT[@]}" "$S/bad_v3_shape_huge:a"
fails iterate_v2_shape_itemsize_overflow err "overflow" "${IT[@]}" "$S/bad_v2_nbytes_overflow:a"
fails iterate_v2_shape_row_items_wrap err "overflow" "${IT[@]}" "$S/bad_v2_row_overflow:a"
fails iterate_v3_shape_row_items_wrap err "overflow" "${IT[@]}" "$S/bad_v3_row_overflow:a"
fails iterate_v2_chunk_itemsize_overflow err "1 TiB" "${IT[@]}" "$S/bad_v2_chunk_overflow:a"
fails iterate_v2_chunks_zero err "positive" "${IT[@]}" "$S/bad_v2_chunks_zero:a"
fails iterate_v3_chunk_shape_zero err "positive" "${IT[@]}" "$S/bad_v3_chunk_zero:a"
fails iterate_v3_shard_inner_chunk_zero err "positive" "${IT[@]}" "$S/bad_v3_inner_zero:a"
fails inspect_v2_shape_negative out "non-negative" inspect "$S/bad_v2_shape_neg"
fails inspect_v2_shape_itemsize_overflow out "overflow" inspect "$S/bad_v2_nbytes_overflow"
fails inspect_v3_shape_row_items_wrap out "overflow" inspect "$S/bad_v3_row_overflow"
fails inspect_v3_chunk_shape_zero out "positive" inspect "$S/bad_v3_chunk_zero"
fails inspect_v2_shape_big_grid out "too large to scan" inspect "$S/bad_v2_shape_big"

# ---- JSON: malformed and 100 000 levels deep; unknown dtypes and codecs
fails iterate_v2_malformed_zarray err "invalid JSON" "${IT[@]}" "$S/bad_v2_json:a"
fails iterate_v3_malformed_json err "invalid JSON" "${IT[@]}" "$S/bad_v3_json:a"
fails iterate_v2_deep_zarray err "depth" "${IT[@]}" "$S/bad_v2_deep:a"
fails iterate_v2_deep_zattrs err "depth" "${IT[@]}" "$S/bad_v2_deep_attrs:a"
fails iterate_v3_deep_zarr_json err "depth" "${IT[@]}" "$S/bad_v3_deep:a"
fails iterate_v2_deep_zmetadata err "depth" "${IT[@]}" "$S/bad_v2_deep_zmeta:a"
fails inspect_v2_deep_zarray out "depth" inspect "$S/bad_v2_deep"
fails inspect_v3_deep_zarr_json out "depth" inspect "$S/bad_v3_deep"
fails inspect_v2_deep_zmetadata err "depth" inspect "$S/bad_v2_deep_zmeta"
fails inspect_v2_malformed_zarray out "invalid JSON" inspect "$S/bad_v2_json"
fails iterate_v2_unknown_dtype err "<x4" "${IT[@]}" "$S/bad_v2_dtype_kind:a"
fails iterate_v3_unknown_data_type err "float128x" "${IT[@]}" "$S/bad_v3_dtype:a"
fails iterate_v2_unknown_codec err "foo" "${IT[@]}" "$S/bad_v2_codec_foo:a"
fails iterate_v3_unknown_codec err "foo" "${IT[@]}" "$S/bad_v3_codec_foo:a"
fails inspect_v2_unknown_dtype out "<x4" inspect "$S/bad_v2_dtype_kind"
fails inspect_v3_unknown_codec out "foo" inspect "$S/bad_v3_codec_foo"

# ---- CSR X that lies (iterate checks indptr when it opens X, indices as it decodes)
fails iterate_csr_indptr_not_monotonic err "indptr decreases" "${IT[@]}" "$S/bad_csr_indptr_dec"
fails iterate_csr_indptr_past_nnz err "indptr ends at" "${IT[@]}" "$S/bad_csr_indptr_last"
fails iterate_csr_indptr_below_nnz err "indptr ends at" "${IT[@]}" "$S/bad_csr_indptr_short"
fails iterate_csr_indptr_first_nonzero err "indptr[0]" "${IT[@]}" "$S/bad_csr_indptr_first"
fails iterate_csr_indices_ge_nvars err "column index 6" "${IT[@]}" "$S/bad_csr_indices_oob"
fails iterate_csr_indices_ge_nvars_shuffled err "column index 6" "${IT[@]}" --shuffle --seed 5 "$S/bad_csr_indices_oob"
fails iterate_csr_indices_negative err "column index -1" "${IT[@]}" "$S/bad_csr_indices_neg"
fails iterate_csr_indices_ge_nvars_rowsum err "column index 6" "${IT[@]}" --emit index+rowsum "$S/bad_csr_indices_oob"

# ---- symbolic link loops
fails iterate_symlink_chunk_self err "symbolic links" "${IT[@]}" "$S/bad_symlink_chunk"
fails iterate_symlink_chunk_self_array err "symbolic links" "${IT[@]}" "$S/bad_symlink_chunk:X/data"
fails iterate_symlink_dir_cycle err "symbolic links" "${IT[@]}" "$S/bad_symlink_dir"
fails iterate_symlink_dir_cycle_array err "symbolic links" "${IT[@]}" "$S/bad_symlink_dir:X/indices"
fails inspect_symlink_chunk_self out "symbolic links" inspect "$S/bad_symlink_chunk"
fails inspect_symlink_dir_cycle out "symbolic links" inspect "$S/bad_symlink_dir"
fails inspect_symlink_dir_cycle_node err "symbolic links" inspect "$S/bad_symlink_dir" X/indices
fails inspect_symlink_parent_cycle out "symbolic link cycle" inspect "$S/bad_symlink_parent"
fails inspect_symlink_parent_cycle_json out "symbolic link cycle" inspect --json "$S/bad_symlink_parent"
works iterate_symlink_parent "${IT[@]}" "$S/bad_symlink_parent"

# ---- node paths with ".."
fails iterate_dotdot_node err "'..'" "${IT[@]}" "$S/bad_v2_ok:../bad_v2_ok/a"
fails iterate_dotdot_inner err "'..'" "${IT[@]}" "$S/bad_v2_ok:a/../a"
fails inspect_dotdot_node err "'..'" inspect "$S/bad_v2_ok" ../bad_v2_ok/a
fails inspect_dotdot_inner err "'..'" inspect "$S/bad_csr_ok" X/../X

echo "bad_cli: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
