// Prediction with a fitted ridge model: out = ((X − mean) / scale) · W + b, in row blocks (so that
// the standardised copy of X stays small) and, within a block, in slices of the targets, each GEMM
// at most a bounded number of flops: a cancel waits for one slice, not for the whole product.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"

namespace brainlatent {
namespace {

// Single-precision flops of one GEMM call of a prediction. One BLAS call cannot be stopped: sized by
// rows alone (64 MiB of X), an NSD decoder's block (1,067 rows × 15,724 features × 16,384 targets)
// was 550 GFLOP, seconds on any machine, and a 5,000 × 3,000 → 3,000 predict one 90 GFLOP call that
// no abort could stop. 8 GFLOP is ~0.1–0.3 s on two cores, a few ms on many.
constexpr double kDefaultBlockFlops = 8e9;
std::atomic<double> g_block_flops{kDefaultBlockFlops};

// Bytes of the standardised copy of X's rows a block holds.
constexpr std::int64_t kBlockBytes = 64ll << 20;

[[noreturn]] void cancelled(std::int64_t rows_done, std::int64_t n) {
  throw Error(ErrorCode::Cancelled, "ridge predict cancelled after " + std::to_string(rows_done) + " of " + std::to_string(n) + " rows");
}

}  // namespace

double set_predict_block_flops(double flops) { return g_block_flops.exchange(flops > 0 ? flops : kDefaultBlockFlops); }

PredictTiling predict_tiling(std::int64_t n, std::int64_t p, std::int64_t t) {
  const std::int64_t pp = std::max<std::int64_t>(1, p);
  const std::int64_t mem_rows = std::max<std::int64_t>(1, kBlockBytes / (4 * pp));
  // Elements of C one call may produce; a tile as square as the shape allows, which re-packs the least
  // of X's block and of the coefficients per flop.
  const double per_call = std::max(1.0, g_block_flops.load() / (2.0 * static_cast<double>(pp)));
  const double side = std::sqrt(per_call);
  double rows = static_cast<double>(t) <= side ? per_call / static_cast<double>(std::max<std::int64_t>(1, t)) : side;
  if (static_cast<double>(n) <= side) rows = static_cast<double>(n);
  PredictTiling tiling;
  tiling.rows = std::max<std::int64_t>(1, std::min({std::max<std::int64_t>(1, n), mem_rows, static_cast<std::int64_t>(rows)}));
  tiling.targets = std::max<std::int64_t>(1, std::min<std::int64_t>(std::max<std::int64_t>(1, t), static_cast<std::int64_t>(per_call / static_cast<double>(tiling.rows))));
  return tiling;
}

void ridge_predict(ConstMatF x, const float* coef, std::int64_t t, const float* intercept, const float* x_mean,
                   const float* x_scale, MatF out, const std::atomic<bool>* cancel, const std::function<void(double)>& progress) {
  const std::int64_t n = x.rows, p = x.cols;
  if (out.rows != n || out.cols != t)
    throw Error(ErrorCode::ShapeMismatch, "predict: output must be " + std::to_string(n) + "×" + std::to_string(t));
  const auto check = [&](std::int64_t rows_done) {
    if (cancel && cancel->load()) cancelled(rows_done, n);
  };
  const PredictTiling tiling = predict_tiling(n, p, t);
  const std::int64_t block = tiling.rows, width = tiling.targets;
  std::vector<float> xs(static_cast<std::size_t>(std::min(block, n) * p));
  const double total = static_cast<double>(n) * static_cast<double>(t);
  for (std::int64_t r0 = 0; r0 < n; r0 += block) {
    check(r0);
    const std::int64_t rb = std::min(block, n - r0);
    parallel_for(0, rb, 64, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const float* src = x.row(r0 + i);
        float* dst = xs.data() + i * p;
        for (std::int64_t j = 0; j < p; ++j) dst[j] = (src[j] - x_mean[j]) / x_scale[j];
      }
    });
    float* o = out.data + r0 * t;
    for (std::int64_t c0 = 0; c0 < t; c0 += width) {
      check(r0);
      const std::int64_t cw = std::min(width, t - c0);
      for (std::int64_t i = 0; i < rb; ++i) std::copy(intercept + c0, intercept + c0 + cw, o + i * t + c0);
      linalg::gemm(false, false, rb, cw, p, 1.0f, xs.data(), p, coef + c0, t, 1.0f, o + c0, t);
      if (progress) progress((static_cast<double>(r0) * static_cast<double>(t) + static_cast<double>(rb) * static_cast<double>(c0 + cw)) / total);
    }
  }
  // (an abort during the last slice: the caller asked for no result)
  check(n);
}

}  // namespace brainlatent
