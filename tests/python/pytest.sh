#!/bin/bash
# The annbatch_c pytest suite (tests/python), run from the build tree: the
# package make built into $AB_TOP_BUILDDIR/python comes first on PYTHONPATH,
# and `annbatch iterate` of the same tree is the reference it must match.
set -u
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}"
PY=${AB_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import pytest' 2>/dev/null; then
	echo "SKIP: pytest is not installed for $PY (Debian: python3-pytest)"
	exit 77
fi
export PYTHONPATH="$AB_TOP_BUILDDIR/pybuild${PYTHONPATH:+:$PYTHONPATH}"
export AB_BIN="$AB_TOP_BUILDDIR/annbatch"
export PYTHONDONTWRITEBYTECODE=1
# A library built with a sanitizer needs its runtime loaded first into an
# interpreter that was not (and leaks of the interpreter itself not reported).
lib="$AB_TOP_BUILDDIR/.libs/libannbatch.so"
for rt in asan tsan; do
	if ldd "$lib" 2>/dev/null | grep -q "lib$rt"; then
		export LD_PRELOAD=$(${CC:-gcc} -print-file-name=lib$rt.so)
		export ASAN_OPTIONS=detect_leaks=0
		echo "SKIP: the Python suite is not run against a lib$rt build"
		exit 77
	fi
done
cd "$AB_TOP_BUILDDIR" || exit 1
"$PY" -m pytest -q -p no:cacheprovider -o "testpaths=$AB_TOP_SRCDIR/tests/python" \
	--rootdir "$AB_TOP_SRCDIR/tests/python" "$AB_TOP_SRCDIR/tests/python" "$@"
rc=$?
# pytest exits 5 when it collected nothing: that is a failure here
[ $rc -eq 5 ] && { echo "FAIL: pytest ran no test"; exit 1; }
exit $rc
