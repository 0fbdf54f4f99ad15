#!/usr/bin/env bash
# ONNX Runtime's CUDA provider on a GPU machine without Node or network, in two back-to-back device
# calls (each call carries at most 64 MiB; the kit from ../shared/tools/ort-cuda-kit.sh is larger):
#
#   1. carry .ortkit/cuda.part.00 (+ assemble.sh):       bash scripts/device/ort-cuda-check.sh stash
#   2. carry the other parts, core.so.xz, the shared lib and build/sd-fixtures, within 30 s (the machine
#      keeps /tmp while warm):                             bash scripts/device/ort-cuda-check.sh run
#
# `run` assembles ORT 1.29 + its CUDA 13 provider under /tmp/ort, puts the CUDA and cuDNN libraries of
# the machine's Python on LD_LIBRARY_PATH, and runs the engine's provider test (test_sd_cuda_provider,
# built by scripts/device/cuda-check.sh into $BUILD): the fixture's text encoding, img2img loop and
# decode on the CUDA provider (use_tf32=0) against the CPU run. Output: $OUT/ort-log.txt.
set -uo pipefail
OUT=${OUT:-/tmp/ort-check}
BUILD=${BUILD:-/tmp/blb}
KIT=/tmp/ortkit
mkdir -p "$OUT" "$KIT"
cp -f .ortkit/* "$KIT/" 2>/dev/null
ls -la "$KIT"
[[ ${1:-run} == stash ]] && exit 0

exec > >(tee "$OUT/ort-log.txt") 2>&1
if ! ls "$KIT"/cuda.part.* >/dev/null 2>&1 || [[ ! -f $KIT/core.so.xz || ! -f $KIT/assemble.sh ]]; then
  echo "ort-cuda-check: kit incomplete in $KIT (was the machine given back between the two calls?)"
  exit 3
fi
t0=$(date +%s)
bash "$KIT/assemble.sh" /tmp/ort || exit 4
echo "assembled in $(( $(date +%s) - t0 )) s"
SP=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
LIBS=/usr/local/cuda/lib64
for d in "$SP"/nvidia/*/lib; do [[ -d $d ]] && LIBS="$LIBS:$d"; done
export LD_LIBRARY_PATH="$LIBS:/tmp/ort:${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
export BRAINLATENT_ORT_LIB=/tmp/ort/libonnxruntime.so.1
export BRAINLATENT_ORT_PROVIDER_LIB=/tmp/ort/libonnxruntime_providers_cuda.so
export BRAINLATENT_TEST_SD_FIXTURES=$PWD/build/sd-fixtures
ls "$BRAINLATENT_TEST_SD_FIXTURES" | head
if [[ ! -x $BUILD/test_sd_cuda_provider ]]; then
  echo "ort-cuda-check: $BUILD/test_sd_cuda_provider is not built (run cuda-check.sh's build step first)"
  exit 5
fi
timeout -k 5 ${ORT_TIMEOUT:-150} "$BUILD/test_sd_cuda_provider"
echo "test_sd_cuda_provider rc=$?"
