// Prediction with a fitted ridge model: out = ((X − mean) / scale) · W + b, in row blocks so
// that the standardised copy of X stays small.
#include <algorithm>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"

namespace brainlatent {

void ridge_predict(ConstMatF x, const float* coef, std::int64_t t, const float* intercept, const float* x_mean,
                   const float* x_scale, MatF out, const std::atomic<bool>* cancel) {
  const std::int64_t n = x.rows, p = x.cols;
  if (out.rows != n || out.cols != t)
    throw Error(ErrorCode::ShapeMismatch, "predict: output must be " + std::to_string(n) + "×" + std::to_string(t));
  const std::int64_t block = std::max<std::int64_t>(1, std::min<std::int64_t>(n, (64ll << 20) / (4 * std::max<std::int64_t>(1, p))));
  std::vector<float> xs(static_cast<std::size_t>(block * p));
  for (std::int64_t r0 = 0; r0 < n; r0 += block) {
    if (cancel && cancel->load()) throw Error(ErrorCode::Cancelled, "ridge predict cancelled");
    const std::int64_t rb = std::min(block, n - r0);
    parallel_for(0, rb, 64, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const float* src = x.row(r0 + i);
        float* dst = xs.data() + i * p;
        for (std::int64_t j = 0; j < p; ++j) dst[j] = (src[j] - x_mean[j]) / x_scale[j];
      }
    });
    float* o = out.data + r0 * t;
    for (std::int64_t i = 0; i < rb; ++i) std::copy(intercept, intercept + t, o + i * t);
    linalg::gemm(false, false, rb, t, p, 1.0f, xs.data(), p, coef, t, 1.0f, o, t);
  }
}

}  // namespace brainlatent
