#!/bin/bash
# Conformance: `annbatch get` against stores written by independent writers,
# compared byte for byte with numpy's bytes (see tests/conformance/README.md).
set -euo pipefail
: "${AB_TOP_SRCDIR:?}" "${AB_TOP_BUILDDIR:?}" "${AB_FIXTURES:?}"
exec bash "$AB_TOP_SRCDIR/tests/conformance/run.sh" "$AB_TOP_BUILDDIR/annbatch" "$AB_FIXTURES/conformance"
