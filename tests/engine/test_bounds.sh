#!/bin/bash
# Resource bounds against lying stores, through the real CLI:
#  (a) sizes: a shard index entry that gives 2 GiB to an inner chunk of 128
#      bytes (the shard file made that long with a hole), a chunk file and
#      metadata documents grown to gigabytes with truncate: `get` and
#      `iterate` under a 1 GiB address-space limit must refuse them with one
#      line naming the file and the lie, not allocate their claimed size;
#  (b) open files: stores with more shard files (or, unsharded, chunk files)
#      than `ulimit -n` allows are iterated over a full shuffled epoch (uring
#      and pread, direct and buffered) and must give the same batches as an
#      unlimited run.
# The stores are written by Python (zarr 2.13 for v2, the v3 bytes by hand
# with numpy), except (b)'s many-shard stores, which come from
# `annbatch synth` (the batches are compared with the unlimited run).
# Under the sanitizers (build-asan) the address-space limit cannot be set
# (the shadow memory needs terabytes of it): (a) then runs without it.
set -uo pipefail
: "${AB_TOP_BUILDDIR:?}"
AB="${AB_BIN:-$AB_TOP_BUILDDIR/annbatch}" # AB_BIN: another build, to compare
PY=/usr/bin/python3
work="$AB_TOP_BUILDDIR/tests/work-bounds"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
vlimit=1048576
if grep -Eq '^AB_CFLAGS = .*-fsanitize' "$AB_TOP_BUILDDIR/Makefile" 2>/dev/null; then
	vlimit=unlimited
	echo "bounds: sanitizer build, no address-space limit"
fi

"$PY" - "$work" >"$work/gen.log" 2>&1 <<'EOF' || { cat "$work/gen.log"; exit 1; }
import json, os, struct, sys
import numpy as np
import zarr

w = sys.argv[1]
a = np.arange(256, dtype="<f4").reshape(64, 4)
a.tofile(w + "/x.bin")

# (a1) zarr v3: X float32 (64, 4) in one shard of 8 inner chunks (8, 4), bytes
# codec only (an inner chunk encodes to exactly 128 bytes), index at the end.
def v3_shard(out, lie):
    os.makedirs(out + "/X/c/0")
    json.dump({"zarr_format": 3, "node_type": "group", "attributes": {}}, open(out + "/zarr.json", "w"))
    json.dump({"zarr_format": 3, "node_type": "array", "shape": [64, 4], "data_type": "float32",
               "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [64, 4]}},
               "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
               "fill_value": 0,
               "codecs": [{"name": "sharding_indexed", "configuration": {
                   "chunk_shape": [8, 4],
                   "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                   "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                   "index_location": "end"}}],
               "attributes": {}}, open(out + "/X/zarr.json", "w"))
    body = b"".join(a[8 * k:8 * k + 8].tobytes() for k in range(8))
    ent = [(128 * k, 128) for k in range(8)]
    with open(out + "/X/c/0/0", "wb") as f:
        f.write(body)
        if lie:
            # inner chunk 0 claims 2 GiB; a hole makes the shard long enough
            # for the claim to lie inside it
            ent[0] = (0, 1 << 31)
            f.seek((1 << 31) + len(body))
        f.write(b"".join(struct.pack("<QQ", o, n) for o, n in ent))

v3_shard(w + "/shard_ok.zarr", False)
v3_shard(w + "/shard_lie.zarr", True)

# (a2) zarr v2 (zarr 2.13): X float32 (64, 4) in chunks (8, 4), uncompressed;
# Y the same. Chunk X/0.0 and the metadata Y/.zarray are then grown sparse.
def v2(out):
    g = zarr.open_group(out, mode="w")
    g.create_dataset("X", data=a, chunks=(8, 4), compressor=None)
    g.create_dataset("Y", data=a, chunks=(8, 4), compressor=None)
v2(w + "/v2_ok.zarr")
v2(w + "/v2_big.zarr")
os.truncate(w + "/v2_big.zarr/X/0.0", 3 << 29)       # 1.5 GiB chunk file
os.truncate(w + "/v2_big.zarr/Y/.zarray", 3 << 30)   # 3 GiB metadata
# a v3 node whose zarr.json is 3 GiB
v3_shard(w + "/v3_bigmeta.zarr", False)
os.truncate(w + "/v3_bigmeta.zarr/X/zarr.json", 3 << 30)
EOF

# run NAME CMD...: the command under the address-space limit; $rc, $w/err
run() {
	local name=$1
	shift
	(ulimit -v $vlimit && exec timeout 120 "$AB" "$@") >"$work/$name.out" 2>"$work/$name.err" </dev/null
	rc=$?
}

# refuses NAME SUBSTRING... -- CMD...: one stderr line holding every SUBSTRING
refuses() {
	local name=$1
	shift
	local subs=()
	while [ "$1" != "--" ]; do subs+=("$1"); shift; done
	shift
	run "$name" "$@"
	local err n
	err=$(cat "$work/$name.err")
	n=$(grep -c '' "$work/$name.err")
	if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
		bad "$name: exit status $rc, expected a clean failure: $(head -c 300 "$work/$name.err")"
		return
	fi
	if [ "$n" -ne 1 ]; then
		bad "$name: $n lines on stderr, expected 1: $(head -c 300 "$work/$name.err")"
		return
	fi
	for s in "${subs[@]}"; do
		case "$err" in
		*"$s"*) ;;
		*) bad "$name: the message lacks '$s': $err"; return ;;
		esac
	done
	ok
}

# controls: the stores as written read back exactly
for s in shard_ok v2_ok; do
	run "$s" get "$work/$s.zarr" X
	if [ $rc -eq 0 ] && cmp -s "$work/$s.out" "$work/x.bin"; then ok; else bad "$s: get X differs from numpy (rc $rc)"; fi
done
run v2_big_rows get "$work/v2_big.zarr" X --rows 8:16
if [ $rc -eq 0 ] && cmp -s "$work/v2_big_rows.out" <(tail -c +129 "$work/x.bin" | head -c 128); then ok; else
	bad "v2_big: rows 8:16 of X (not the grown chunk) differ from numpy (rc $rc)"; fi

# (a) lying sizes
S="$work/shard_lie.zarr"
refuses shard_lie_get "X/c/0/0" "shard index entry 0" "2147483648 bytes" -- get "$S" X
refuses shard_lie_iterate "X/c/0/0" "shard index entry 0" "2147483648 bytes" -- \
	iterate "$S:X" --batch-size 8 --chunk-size 8 --preload-nchunks 8 --threads 2
V="$work/v2_big.zarr"
refuses chunk_get "X/0.0" "1610612736 bytes" "more than a chunk" -- get "$V" X
refuses chunk_iterate "X/0.0" "1610612736 bytes" "more than a chunk" -- \
	iterate "$V:X" --batch-size 8 --chunk-size 8 --preload-nchunks 8 --threads 2
refuses meta_v2_get "Y/.zarray" "3221225472 bytes" "metadata" -- get "$V" Y
refuses meta_v3_get "X/zarr.json" "3221225472 bytes" "metadata" -- get "$work/v3_bigmeta.zarr" X

# (b) more data files than open files: 157 shards of a dense X, 80 + 80 of
# a CSR X's data and indices, some 300 + 300 chunk files of an unsharded CSR X,
# under a limit of 64 descriptors
"$AB" synth "$work/dense.zarr" --n-obs 20000 --n-vars 16 --mean-nnz 4 --dense --n-obs-per-chunk 32 \
	--shard-size 8KiB >/dev/null || { bad "synth dense"; }
"$AB" synth "$work/csr.zarr" --n-obs 20000 --n-vars 64 --mean-nnz 8 --n-obs-per-chunk 256 \
	--shard-size 8KiB >/dev/null || { bad "synth csr"; }
"$AB" synth "$work/plain.zarr" --n-obs 20000 --n-vars 64 --mean-nnz 8 --n-obs-per-chunk 64 \
	--no-shard >/dev/null || { bad "synth plain"; }
for st in dense csr plain; do
	nf=$(find "$work/$st.zarr/X" -path '*/c/*' -type f | wc -l)
	[ "$nf" -gt 100 ] || bad "$st: only $nf data files, the test needs more than 100"
	args=(iterate "$work/$st.zarr" --shuffle --seed 3 --batch-size 128 --chunk-size 64 --preload-nchunks 8
		--threads 2 --emit index+rowsum)
	"$AB" "${args[@]}" >"$work/$st.free" 2>"$work/$st.free.err" || bad "$st: unlimited run failed: $(cat "$work/$st.free.err")"
	for be in uring pread; do
		for io in direct buffered; do
			(ulimit -n 64 && exec timeout 120 "$AB" "${args[@]}" --backend "$be" --io "$io") \
				>"$work/$st.lim" 2>"$work/$st.lim.err" </dev/null
			rc=$?
			if [ $rc -ne 0 ]; then
				bad "$st $be $io under ulimit -n 64: exit $rc: $(head -c 300 "$work/$st.lim.err")"
			elif ! cmp -s "$work/$st.lim" "$work/$st.free"; then
				bad "$st $be $io under ulimit -n 64: batches differ from the unlimited run"
			else
				ok
			fi
		done
	done
done

echo "bounds: $pass passed, $fail failed"
[ $fail -eq 0 ]
