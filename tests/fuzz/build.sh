#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang, whatever compiler the
# autotools build uses: the library sources (formats/) are compiled once with
# the fuzzer's coverage instrumentation plus AddressSanitizer and
# UndefinedBehaviorSanitizer, and linked into every target.
#
# Usage: tests/fuzz/build.sh [OUTDIR]   (default: build-fuzz next to the sources)
# Environment: FUZZ_CC (default clang), FUZZ_CFLAGS (appended).
# Objects are rebuilt only when a source or header is newer, so a second run
# is quick.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/build-fuzz}
cc=${FUZZ_CC:-clang}
targets=(fuzz_meta_v2 fuzz_meta_v3 fuzz_shard_index fuzz_codecs fuzz_vlen fuzz_chunk fuzz_anndata)

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
	exit 2
fi
pkgs="jansson blosc libzstd liblz4 zlib"
dep_cflags=$(pkg-config --cflags $pkgs)
dep_libs="$(pkg-config --libs $pkgs) -lbz2" # libbz2 has no pkg-config file
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-std=c11 -D_GNU_SOURCE -g -O1 $san -I$top/include -I$top/formats -I$top/tests/fuzz $dep_cflags ${FUZZ_CFLAGS:-}"

mkdir -p "$out/obj"
# The newest header: any change to one rebuilds everything (there are few).
newest_header=$(ls -t "$top"/formats/*.h "$top"/include/*.h "$top"/tests/fuzz/*.h | head -1)
build_obj() { # SRC OBJ EXTRA_FLAGS
	local src=$1 obj=$2
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ] ||
	   [ "$0" -nt "$obj" ]; then
		echo "  CC  ${src#$top/}"
		$cc $cflags $3 -c "$src" -o "$obj"
	fi
}

lib_objs=()
pids=()
# The read side of the format layer: everything the targets reach (the engine
# and the writer are not needed by any decoder). A decoder source added to the
# library must be added here too (the link then fails without it). The
# .h5ad reader is the one a build without HDF5 has: the targets read zarr.
lib_srcs="last_error codec codec_blosc blosc_layout codec_zstd codec_lz4 codec_zlib codec_bz2 crc32c vlen_utf8 dtype
	pipeline chunk_decode meta store array sparse column anndata util value h5ad_none"
for name in $lib_srcs; do
	rel=formats/$name.c
	src=$top/$rel
	obj="$out/obj/$(basename "${src%.c}").o"
	lib_objs+=("$obj")
	build_obj "$src" "$obj" -fsanitize=fuzzer-no-link &
	pids+=($!)
	# two compilers at a time
	if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

for t in "${targets[@]}"; do
	src="$top/tests/fuzz/$t.c"
	obj="$out/obj/$t.o"
	build_obj "$src" "$obj" -fsanitize=fuzzer-no-link
	newer=0
	[ -x "$out/$t" ] || newer=1
	for o in "$obj" "${lib_objs[@]}"; do [ "$o" -nt "$out/$t" ] && newer=1; done
	if [ $newer = 1 ]; then
		echo "  LD  $t"
		$cc $cflags -fsanitize=fuzzer "$obj" "${lib_objs[@]}" $dep_libs -lpthread -lm -o "$out/$t"
	fi
done
echo "fuzz: targets in $out: ${targets[*]}"
