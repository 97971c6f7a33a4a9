#!/bin/bash
# One command on a fresh Debian 12 machine (as root): install what is missing,
# build, write a small demo AnnData store and run the main job on it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
bash "$top/scripts/build.sh" "$top/build"
AB="$top/build/annbatch"
mkdir -p "$top/demo"
/usr/bin/python3 "$top/scripts/make_demo.py" "$top/demo/pbmc-demo.zarr"
echo
echo "== annbatch inspect demo/pbmc-demo.zarr"
"$AB" inspect "$top/demo/pbmc-demo.zarr"
echo
echo "== annbatch get demo/pbmc-demo.zarr obs/cell_type --labels --rows 0:8"
"$AB" get "$top/demo/pbmc-demo.zarr" obs/cell_type --labels --rows 0:8
echo
echo "== annbatch get demo/pbmc-demo.zarr X --dense --rows 0:4 (float32 row sums)"
"$AB" get "$top/demo/pbmc-demo.zarr" X --dense --rows 0:4 |
	/usr/bin/python3 -c 'import sys, numpy as np; x = np.frombuffer(sys.stdin.buffer.read(), "<f4").reshape(4, -1); print(x.sum(axis=1))'

# The Python package, in a virtual environment that sees Debian's numpy,
# scipy, pandas and torch (no package index is needed: nothing is downloaded).
echo
echo "== annbatch_c: pip install into .venv"
[ -x "$top/.venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$top/.venv"
ANNBATCH_INCLUDE="$top/include" ANNBATCH_LIBDIR="$top/build/.libs" \
	"$top/.venv/bin/pip" install --quiet --no-build-isolation --no-deps --no-index "$top/python"
echo
echo "== python/examples/train_pytorch.py on demo/cells-coll.zarr (a collection made by annbatch convert)"
rm -rf "$top/demo/cells.zarr" "$top/demo/cells-coll.zarr"
"$AB" synth "$top/demo/cells.zarr" --n-obs 20000 --n-vars 2000 --seed 1 >/dev/null
"$AB" convert "$top/demo/cells.zarr" -o "$top/demo/cells-coll.zarr" --no-progress
"$top/.venv/bin/python" "$top/python/examples/train_pytorch.py" "$top/demo/cells-coll.zarr" --epochs 3
