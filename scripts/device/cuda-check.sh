#!/usr/bin/env bash
# The CUDA check for a GPU machine that has CMake, a compiler, the CUDA toolkit and a BLAS, but no
# Node and no network: builds the engine (native/core) with the CUDA backend, runs its ctest suite,
# then bench_ridge on the NSD shapes (z and c) on the CUDA backend, the z fit verified against the
# CPU backend, the c fit against the same device's SGEMM + float64-eigh reference on every target.
# Run from the repository root:
#
#   OUT=/some/folder bash scripts/device/cuda-check.sh
#
# Device time is short: the engine's binaries can also be built on a machine without a GPU and carried (they
# load the GPU machine's CUDA 13 cuBLAS/cuSOLVER from /usr/local/cuda/lib64): a toolkit folder whose include/ and
# lib/ merge nvcc's CUDA 13 with the nvidia-cublas / nvidia-cusolver / nvidia-cusparse / nvidia-nvjitlink wheels'
# nvidia/cu13 files, then `cmake -S native/core -B build-cuda -DBRAINLATENT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
# -DCUDAToolkit_ROOT=<that folder>`; run test_backend_ops and bench_ridge from the carried folder directly (ctest's
# files name the build machine's paths). Start commands in the background with `wait PID…`, not a bare `wait`,
# when the script's output goes through `exec > >(tee …)`: a bare wait also waits for tee, forever.
#
# Everything printed is also written to $OUT/log.txt; bench records (JSON lines) go to
# $OUT/bench.jsonl, ctest's detailed log to $OUT/ctest.log, a one-line-per-step summary to
# $OUT/summary.txt. A step that fails or times out is recorded and the next one runs.
#
# Environment:
#   STEPS="env build test bench"   steps to run (bench = bench-z bench-c; each may be named alone)
#   BENCH_ARGS="..."               extra bench_ridge arguments for every bench run, after the step's
#                                  own (so they override them: --memory-gib 40, --shape 8000,2000,4000)
#   BUILD=/tmp/blb                 build folder (kept: a rerun of "build" is incremental)
#   JOBS=$(nproc)                  build parallelism
#   BUILD_TIMEOUT=240 TEST_TIMEOUT=180 BENCH_TIMEOUT=150   seconds per step
#   TOTAL_TIMEOUT=570              seconds for the whole script: each step's limit is cut to what is
#                                  left (a device call is limited to 600 s), a step with < 20 s left
#                                  is skipped, so the summary and the files always come back
#   TAG=...                        label in every bench record (default: the git commit, if any)
#   SMOKE=1                        no GPU needed: BRAINLATENT_CUDA=AUTO, CPU backend, tiny shapes
#                                  (checks this script and bench_ridge on any machine)
set -uo pipefail

OUT=${OUT:-/tmp/cuda-check}
mkdir -p "$OUT"
STEPS=${STEPS:-env build test bench}
BENCH_ARGS=${BENCH_ARGS:-}
BUILD=${BUILD:-/tmp/blb}
JOBS=${JOBS:-$(nproc)}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-240}
TEST_TIMEOUT=${TEST_TIMEOUT:-180}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-150}
TOTAL_TIMEOUT=${TOTAL_TIMEOUT:-570}
DEADLINE=$(( $(date +%s) + TOTAL_TIMEOUT ))
SMOKE=${SMOKE:-0}
TAG=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
SUMMARY="$OUT/summary.txt"

if [[ ! -f native/core/CMakeLists.txt ]]; then
  echo "cuda-check: run this from the repository root (native/core/CMakeLists.txt not found in $PWD)" >&2
  exit 64
fi
# The toolkit's usual place, when nvcc is not on PATH yet.
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="$PATH:/usr/local/cuda/bin"
fi

if [[ $SMOKE == 1 ]]; then
  CUDA_FLAGS=(-DBRAINLATENT_CUDA=AUTO)
  BACKEND=cpu
  Z_ARGS=(--shape 600,80,120 --repeat 2 --verify 32 --sgemm 256)
  C_ARGS=(--shape 600,100,300 --repeat 2 --sgemm 0)
else
  CUDA_FLAGS=(-DBRAINLATENT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
  BACKEND=cuda
  Z_ARGS=(--shape z --repeat 2 --verify 64)
  C_ARGS=(--shape c --repeat 2 --reference)
fi

# Expands "bench" into its two runs.
expand_steps() {
  local s
  for s in $STEPS; do
    if [[ $s == bench ]]; then echo bench-z bench-c; else echo "$s"; fi
  done
}

# step NAME TIMEOUT COMMAND... (scripts/device/steps.sh)
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

env_info() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname)  nproc: $(nproc)  tag: $TAG  smoke: $SMOKE"
  echo "loadavg: $(cat /proc/loadavg 2>/dev/null)"
  free -g 2>/dev/null | head -2
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  if command -v nvcc >/dev/null 2>&1; then nvcc --version; else echo "nvcc: not found"; fi
  cmake --version | head -1
  if command -v ninja >/dev/null 2>&1; then echo "ninja $(ninja --version)"; else echo "ninja: not found"; fi
  "${CXX:-c++}" --version 2>/dev/null | head -1
  echo "libraries (ldconfig):"
  ldconfig -p 2>/dev/null | grep -E 'libopenblas|liblapack\.|libblas\.|libcublas\.|libcublasLt\.|libcusolver\.|libcudart\.' | sed 's/^/  /'
  return 0
}

configure_and_build() {
  local gen=()
  # The generator only for a new build folder (CMake refuses to change it in an existing one).
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); else gen=(-G "Unix Makefiles"); fi
  fi
  cmake -S native/core -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${CUDA_FLAGS[@]}" || return $?
  cmake --build "$BUILD" -j "$JOBS"
}

run_tests() {
  local rc
  ctest --test-dir "$BUILD" --output-on-failure -j8 --timeout 150
  rc=$?
  cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/ctest.log" 2>/dev/null
  return $rc
}

main() {
  local t_start s
  t_start=$(date +%s)
  : >"$SUMMARY"
  for s in $(expand_steps); do
    case $s in
      env | build | test | bench-z | bench-c) ;;
      *) echo "cuda-check: unknown step '$s' in STEPS (env, build, test, bench, bench-z, bench-c)"; return 64 ;;
    esac
  done
  echo "cuda-check: steps '$(expand_steps | xargs)', backend $BACKEND, build $BUILD, out $OUT"
  for s in $(expand_steps); do
    case $s in
      env) step env 60 bash "$SELF" --do env_info ;;
      build) step build "$BUILD_TIMEOUT" bash "$SELF" --do configure_and_build ;;
      test) step test "$TEST_TIMEOUT" bash "$SELF" --do run_tests ;;
      bench-z) # shellcheck disable=SC2086
        step bench-z "$BENCH_TIMEOUT" "$BUILD/bench_ridge" --backend "$BACKEND" "${Z_ARGS[@]}" --json-out "$OUT/bench.jsonl" --tag "$TAG" $BENCH_ARGS ;;
      bench-c) # shellcheck disable=SC2086
        step bench-c "$BENCH_TIMEOUT" "$BUILD/bench_ridge" --backend "$BACKEND" "${C_ARGS[@]}" --json-out "$OUT/bench.jsonl" --tag "$TAG" $BENCH_ARGS ;;
    esac
  done
  echo
  echo "=== summary ($(( $(date +%s) - t_start )) s in all)"
  cat "$SUMMARY"
  return $FAILED
}

# `timeout` runs programs, not shell functions: the env, build and test steps rerun this script
# with --do FUNCTION (same environment, same settings).
SELF=${BASH_SOURCE[0]}
if [[ ${1:-} == --do ]]; then
  "$2"
  exit $?
fi
main 2>&1 | tee -a "$OUT/log.txt"
