#!/usr/bin/env bash
# The sampler benchmark on a GPU machine (issue #17's workload: 64×64 latents, 40 DDIM steps with
# guidance 7.5, VAE decode) on the SD 1.x-sized fixture, fp32, on ONNX Runtime's CUDA provider. Run from
# the repository root after scripts/device/cuda-check.sh has built the engine into $BUILD and
# scripts/device/ort-cuda-check.sh has assembled ORT + its CUDA provider under /tmp/ort:
#
#   OUT=/some/folder bash scripts/device/sampler-check.sh [FIXTURE]
#
# FIXTURE (default ./.sd1fixture, git-ignored) is `brainlatent sd fixture --arch sd1 --out FIXTURE`
# without unet/weights.pb (a few MB, so it can travel); the 3.4 GB weights are regenerated here, byte
# for byte, from unet/weights.recipe.json by sd1_weights. The fp16 export is `... --dtype float16`, and
# the fp16 export with fused attention (each attention block one com.microsoft MultiHeadAttention node, as
# GPU exports made for ONNX Runtime have it; the same weights.pb and recipe) is
#   npx brainlatent sd fixture --arch sd1 --dtype float16 --attention fused --out .sd1fixture16fused
#   rm .sd1fixture16fused/unet/weights.pb      # 2.8 MB left
# (sd1_fixture.json, printed by the env step, names the fixture's dtype and attention; TAG=... labels records).
# Then bench_sampler loads the model once per precision and runs batch 1 (1 image) and batch 8 (8 images) on it:
#   fp32   provider option use_tf32=0 (the parity setting)
#   tf32   use_tf32=1 (TF32 tensor cores allowed in MatMul/Conv)
#   fp32host  use_tf32=0 with BRAINLATENT_SD_DEVICE_LOOP=0 (the host loop; not in the default STEPS)
# Records (JSON lines, one per batch size) are appended to $OUT/sampler.jsonl; everything printed goes
# to $OUT/sampler-log.txt; one line per step to $OUT/sampler-summary.txt.
#
# Environment:
#   STEPS="env build weights fp32 tf32"   steps to run (also: fp32host)
#   BUILD=/tmp/blb  ORT=/tmp/ort           the engine's build folder, the assembled ONNX Runtime
#   BATCHES=1,8 IMAGES=1,8                 bench_sampler --batch / --images
#   BENCH_ARGS="..."                       extra bench_sampler arguments (e.g. --steps 10, --max-rows 8)
#   BENCH_TIMEOUT=130 WEIGHTS_TIMEOUT=60   seconds per step
#   TOTAL_TIMEOUT=280                      seconds for the whole script: each step's limit is cut to what
#                                          is left, a step with < 20 s left is skipped
#   FORCE_WEIGHTS=1                        regenerate weights.pb even when one of the recipe's size exists
#   BRAINLATENT_SD_DEVICE_LOOP             passed through (recorded in every record)
#   SMOKE=1                                no GPU: the CPU provider, a short run (checks this script)
set -uo pipefail

# (a step reruns this script with --do: the fixture comes from the environment then)
if [[ ${1:-} == --do ]]; then FIXTURE=${SAMPLER_FIXTURE:?}; else FIXTURE=${1:-./.sd1fixture}; fi
OUT=${OUT:-/tmp/sampler-check}
mkdir -p "$OUT"
STEPS=${STEPS:-env build weights fp32 tf32}
BUILD=${BUILD:-/tmp/blb}
ORT=${ORT:-/tmp/ort}
BATCHES=${BATCHES:-1,8}
IMAGES=${IMAGES:-1,8}
BENCH_ARGS=${BENCH_ARGS:-}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-130}
WEIGHTS_TIMEOUT=${WEIGHTS_TIMEOUT:-60}
TOTAL_TIMEOUT=${TOTAL_TIMEOUT:-280}
DEADLINE=$(( $(date +%s) + TOTAL_TIMEOUT ))
SMOKE=${SMOKE:-0}
TAG=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
SUMMARY="$OUT/sampler-summary.txt"

if [[ ! -f native/core/CMakeLists.txt ]]; then
  echo "sampler-check: run this from the repository root (native/core/CMakeLists.txt not found in $PWD)" >&2
  exit 64
fi
FIXTURE=$(cd "$FIXTURE" 2>/dev/null && pwd) || {
  echo "sampler-check: fixture folder ${1:-./.sd1fixture} not found (write it with: npx brainlatent sd fixture --arch sd1 --out .sd1fixture; rm .sd1fixture/unet/weights.pb)" >&2
  exit 66
}
export SAMPLER_FIXTURE=$FIXTURE

# ORT's CUDA provider needs cuBLAS/cuDNN: the toolkit's and those of the machine's Python wheels
# (as scripts/device/ort-cuda-check.sh does), then ORT itself.
SP=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
LIBS=/usr/local/cuda/lib64
for d in "$SP"/nvidia/*/lib; do [[ -d $d ]] && LIBS="$LIBS:$d"; done
[[ ${1:-} == --do ]] || export LD_LIBRARY_PATH="$LIBS:$ORT:${LD_LIBRARY_PATH:-}"
if [[ $SMOKE == 1 ]]; then
  PROVIDER=(--provider cpu)
  SMOKE_ARGS=(--steps 3 --latent 16x16 --warmup 0)
else
  export BRAINLATENT_ORT_LIB=${BRAINLATENT_ORT_LIB:-$ORT/libonnxruntime.so.1}
  export BRAINLATENT_ORT_PROVIDER_LIB=${BRAINLATENT_ORT_PROVIDER_LIB:-$ORT/libonnxruntime_providers_cuda.so}
  PROVIDER=(--provider cuda)
  SMOKE_ARGS=()
fi

# step NAME TIMEOUT COMMAND... (scripts/device/steps.sh)
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

env_info() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname)  nproc: $(nproc)  tag: $TAG  smoke: $SMOKE"
  echo "loadavg: $(cat /proc/loadavg 2>/dev/null)"
  free -g 2>/dev/null | head -2
  df -h "$FIXTURE" 2>/dev/null | tail -1
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,clocks.max.mem --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "BRAINLATENT_ORT_LIB=${BRAINLATENT_ORT_LIB:-}  BRAINLATENT_ORT_PROVIDER_LIB=${BRAINLATENT_ORT_PROVIDER_LIB:-}"
  echo "BRAINLATENT_SD_DEVICE_LOOP=${BRAINLATENT_SD_DEVICE_LOOP:-}"
  ls -la "$ORT" 2>/dev/null | head -20
  du -sh "$FIXTURE"; ls -la "$FIXTURE/unet"
  cat "$FIXTURE/sd1_fixture.json" 2>/dev/null; echo
  return 0
}

# Incremental: cuda-check.sh configured and built $BUILD; this only (re)builds the two programs.
build() {
  if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    echo "sampler-check: $BUILD is not configured (run scripts/device/cuda-check.sh's build step first)"
    return 5
  fi
  cmake --build "$BUILD" -j "$(nproc)" --target sd1_weights bench_sampler
}

weights() {
  local recipe=$FIXTURE/unet/weights.recipe.json want
  [[ -f $recipe ]] || { echo "sampler-check: no $recipe (an sd1 fixture from before the recipe?)"; return 3; }
  want=$(grep -o '"size":[0-9]*' "$recipe" | head -1 | cut -d: -f2)
  if [[ ${FORCE_WEIGHTS:-0} != 1 && -f $FIXTURE/unet/weights.pb && $(stat -c %s "$FIXTURE/unet/weights.pb") == "$want" ]]; then
    echo "weights.pb of the recipe's size ($want bytes) is there already (FORCE_WEIGHTS=1 rewrites it)"
    return 0
  fi
  "$BUILD/sd1_weights" --recipe "$recipe"
}

# bench LABEL PROVIDER-OPTIONS...
bench() {
  local label=$1
  shift
  # shellcheck disable=SC2086
  "$BUILD/bench_sampler" --dir "$FIXTURE" "${PROVIDER[@]}" "$@" --batch "$BATCHES" --images "$IMAGES" \
    --steps 40 --strength 1.0 --guidance 7.5 --warmup 1 "${SMOKE_ARGS[@]}" \
    --json-out "$OUT/sampler.jsonl" --tag "$TAG $label" $BENCH_ARGS
}

main() {
  local t_start s
  t_start=$(date +%s)
  : >"$SUMMARY"
  for s in $STEPS; do
    case $s in
      env | build | weights | fp32 | tf32 | fp32host) ;;
      *) echo "sampler-check: unknown step '$s' in STEPS (env, build, weights, fp32, tf32, fp32host)"; return 64 ;;
    esac
  done
  echo "sampler-check: steps '$STEPS', fixture $FIXTURE, build $BUILD, out $OUT, batches $BATCHES, images $IMAGES"
  for s in $STEPS; do
    case $s in
      env) step env 30 bash "$SELF" --do env_info ;;
      build) step build 120 bash "$SELF" --do build ;;
      weights) step weights "$WEIGHTS_TIMEOUT" bash "$SELF" --do weights ;;
      fp32) step fp32 "$BENCH_TIMEOUT" bash "$SELF" --do bench fp32 --provider-option use_tf32=0 ;;
      tf32) step tf32 "$BENCH_TIMEOUT" bash "$SELF" --do bench tf32 --provider-option use_tf32=1 ;;
      fp32host) step fp32host "$BENCH_TIMEOUT" env BRAINLATENT_SD_DEVICE_LOOP=0 bash "$SELF" --do bench fp32host --provider-option use_tf32=0 ;;
    esac
  done
  echo
  echo "=== summary ($(( $(date +%s) - t_start )) s in all)"
  cat "$SUMMARY"
  return $FAILED
}

# `timeout` runs programs, not shell functions: each step reruns this script with --do FUNCTION ARGS
# (same environment, same settings).
SELF=${BASH_SOURCE[0]}
if [[ ${1:-} == --do ]]; then
  shift
  "$@"
  exit $?
fi
main 2>&1 | tee -a "$OUT/sampler-log.txt"
