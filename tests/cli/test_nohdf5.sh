#!/bin/bash
# test_nohdf5.sh AB - a build configured --without-hdf5 (scripts/test.sh
# makes one): every .h5ad path (inspect, get, convert, synth --format h5ad)
# fails with one line saying the build lacks HDF5, and zarr still works.
set -u
AB=${1:?usage: test_nohdf5.sh ANNBATCH}
work=$(mktemp -d "${TMPDIR:-/tmp}/ab-nohdf5.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pass=0
fail=0
check() { # check NAME CMD...
	local name=$1
	shift
	if "$@" >last.log 2>&1; then pass=$((pass + 1)); echo "ok - $name"; else
		fail=$((fail + 1)); echo "FAIL - $name"; sed 's/^/    /' last.log | tail -5; fi
}
no_hdf5() { # no_hdf5 CMD...: fails, one stderr line naming the missing HDF5
	"$@" >/dev/null 2>err.txt && return 1
	test "$(wc -l <err.txt)" -eq 1 && grep -q "built without" err.txt || { cat err.txt; return 1; }
}
# an HDF5 signature is all the reader looks at before it gives up
printf '\x89HDF\r\n\x1a\n' >x.h5ad
head -c 4096 /dev/zero >>x.h5ad
check "inspect x.h5ad" no_hdf5 "$AB" inspect x.h5ad
check "get x.h5ad X" no_hdf5 "$AB" get x.h5ad X
check "convert x.h5ad" no_hdf5 "$AB" convert x.h5ad -o out.zarr --no-progress
check "synth --format h5ad" no_hdf5 "$AB" synth s.h5ad --format h5ad --n-obs 10 --n-vars 10
check "failed runs leave nothing" bash -c 'test ! -e out.zarr && test ! -e s.h5ad'
check "zarr synth and convert still work" bash -c '
	"$0" synth s.zarr --n-obs 50 --n-vars 20 --mean-nnz 5 && "$0" convert s.zarr -o c.zarr --no-progress &&
	"$0" inspect c.zarr | grep -q "collection: 1 datasets"' "$AB"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
