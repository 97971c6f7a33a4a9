# zarrita.sh - sourced by the writer suites: makes the npm package zarrita
# (the independent JavaScript zarr v3 reader) available under the build tree.
#
# One pinned version, so every run reads our output with the same reader. It
# is looked for, in order: under $top_build/tests/node (installed by an
# earlier run), in npm's global prefix (`npm install -g zarrita@VERSION`
# puts a copy there for machines without the registry), then installed from
# the npm registry. When none of these works the suite is skipped (exit 77,
# automake's SKIP) with a message saying why: the writers cannot be checked
# without an independent reader, but a missing registry is not a bug here.
#
# In: $top_build, $work. Out: $node_dir, holding node_modules/zarrita.
ZARRITA_VERSION=0.7.5
node_dir="$top_build/tests/node"
mkdir -p "$node_dir"
zarrita_version() { # DIR: the version of the zarrita package under DIR, if any
	[ -f "$1/zarrita/package.json" ] &&
		node -e 'process.stdout.write(require(process.argv[1]).version)' "$1/zarrita/package.json" 2>/dev/null
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "SKIP: node and npm are needed to run zarrita $ZARRITA_VERSION, the independent reader (scripts/deps.sh installs them)"
	exit 77
fi
exec 9>"$node_dir.lock"
flock 9 # one install at a time into the shared prefix (the writer suites run in parallel)
if [ "$(zarrita_version "$node_dir/node_modules")" != "$ZARRITA_VERSION" ]; then
	global=$(npm root -g 2>/dev/null)
	if [ -n "$global" ] && [ "$(zarrita_version "$global")" = "$ZARRITA_VERSION" ]; then
		rm -rf "$node_dir/node_modules"
		mkdir -p "$node_dir/node_modules"
		# node follows the link, so zarrita's own dependencies resolve from
		# the global copy
		ln -s "$global/zarrita" "$node_dir/node_modules/zarrita"
	elif ! npm install --silent --no-audit --no-fund --prefix "$node_dir" "zarrita@$ZARRITA_VERSION" \
		>"$work/npm.log" 2>&1; then
		sed 's/^/    /' "$work/npm.log" | tail -5
		echo "SKIP: zarrita $ZARRITA_VERSION could not be installed from the npm registry and no copy is installed (npm install -g zarrita@$ZARRITA_VERSION makes one)"
		exit 77
	fi
fi
flock -u 9
