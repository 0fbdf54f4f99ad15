#!/usr/bin/env bash
# One-step set-up on Debian/Ubuntu: the system packages the build and the tests use (only those
# missing; with sudo when not root), then the npm install that builds the engine and the TypeScript.
#   bash scripts/setup.sh          # npm install
#   bash scripts/setup.sh --ci     # npm ci (clean, from package-lock.json)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: cmake, a C++17 compiler, OpenBLAS (libopenblas-pthread-dev: the static library the prebuilt
# engine links, made by `npm pack`). Tests: Debian's numpy/scipy/scikit-learn/nibabel/h5py
# write independent fixtures and run the scikit-learn comparison (tests skip them when absent);
# chromium is the browser the report tests drive through playwright-core (they skip without one).
# redis-server is the queue store of `batch --redis` (the tests start their own on a free port).
# libisal2 is Intel's ISA-L, whose inflate the readers use for .nii.gz when it is there (1.3-1.8x the rate of
# Node's zlib in `bench data`; without it they use Node's zlib) and zlib1g-dev writes the gzip files of its ctest test.
packages=(cmake g++ make libopenblas-dev libopenblas-pthread-dev libisal2 zlib1g-dev python3-numpy python3-scipy python3-sklearn python3-nibabel python3-h5py chromium redis-server)
# CI also caches the engine's compiles (scripts/ccache-env.sh)
if [ "${1:-}" = "--ci" ]; then packages+=(ccache); fi
if command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
      SUDO="sudo"
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup: not a Debian/Ubuntu system; install CMake >= 3.18, a C++17 compiler and OpenBLAS (or another BLAS/LAPACK) yourself" >&2
fi

# onnxruntime-node's post-install would download CUDA binaries; its CPU library ships in the package.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ "${1:-}" = "--ci" ]; then
  . scripts/ccache-env.sh
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
