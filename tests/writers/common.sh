# common.sh - sourced by the writer suites (test_writers.sh, test_h5ad.sh,
# test_convert_names.sh, test_convert_rows.sh): the paths, a work directory
# removed on exit, the ok/bad/check counters, and zarrita (pinned, see
# zarrita.sh) with a dump script under a name of the suite's own, as the
# suites may run at the same time.
#
# In: SUITE, a short name. Out: top_src top_build AB PY here work node_dir,
# ok NAME, bad NAME, check NAME CMD..., dump STORE DIR, $dump_js.
set -u
top_src=${AB_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
top_build=${AB_TOP_BUILDDIR:-$top_src/build}
AB=${AB_BIN:-$top_build/annbatch}
PY=/usr/bin/python3
here="$top_src/tests/writers"
work=$(mktemp -d "${TMPDIR:-/tmp}/ab-$SUITE.XXXXXX")
trap 'rm -rf "$work"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { # check NAME CMD...
	local name=$1
	shift
	if "$@" >"$work/last.log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$work/last.log" | tail -20; fi
}

# ---- zarrita from npm (pinned), once per build tree; skips when it cannot be had
. "$here/zarrita.sh"
# node resolves zarrita from the script's directory upwards, so the dump
# script is copied next to node_modules
dump_js="$node_dir/zarrita_dump_$SUITE.mjs"
cp "$here/zarrita_dump.mjs" "$dump_js"
dump() { node "$dump_js" "$1" "$2" >/dev/null; }
