#!/bin/bash
# Installs what annbatch needs to build and test on Debian 12, as root. Only
# packages that are missing are installed, so a second run costs a second.
set -euo pipefail
pkgs=(
	build-essential autoconf automake libtool pkg-config
	liburing-dev libzstd-dev liblz4-dev libjansson-dev libblosc-dev zlib1g-dev libbz2-dev check libhdf5-dev
	python3-zarr python3-numcodecs python3-anndata python3-numpy python3-scipy
	python3-pandas python3-h5py openmpi-bin
	# the Python package annbatch_c: build (abi3 extension), venv, tests
	python3-dev python3-setuptools python3-wheel python3-venv python3-pip python3-pytest python3-torch
	time valgrind
	clang libclang-rt-14-dev # libFuzzer targets (make fuzz-smoke)
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node + npm bring zarrita, the independent zarr v3 reader of the writer tests.
# A node that ships its own npm (another packaging) is fine as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: run as root (apt-get install needs it)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
