#!/bin/bash
# Writes the test fixtures with independent implementations (Debian's
# python3-numcodecs, python3-zarr, python3-anndata): codec vectors for the unit
# suites and the conformance stores. Runs first; the other tests depend on it.
set -euo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_FIXTURES:?}"
PY=/usr/bin/python3
rm -rf "$AB_FIXTURES"
mkdir -p "$AB_FIXTURES/codec-vectors"
"$PY" "$AB_TOP_SRCDIR/tests/unit/gen_codec_vectors.py" "$AB_FIXTURES/codec-vectors"
"$PY" "$AB_TOP_SRCDIR/tests/conformance/gen_fixtures.py" "$AB_FIXTURES/conformance"
echo "fixtures written to $AB_FIXTURES"
