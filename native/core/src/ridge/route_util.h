// Internal helpers the routes share: growable scratch buffers and memory figures.
#pragma once
#include <algorithm>
#include <cstdint>

#include "brainlatent/backend.h"
#include "brainlatent/linalg.h"
#include "engine.h"

namespace brainlatent::ridge {

// A buffer reused across batches, grown when a larger view is asked for.
template <typename T>
class Scratch {
 public:
  View<T> get(Backend& be, i64 rows, i64 cols) {
    const std::size_t need = static_cast<std::size_t>(std::max<i64>(1, rows * cols));
    if (lent_ && need <= lent_count_) return View<T>{lent_, static_cast<i64>(lent_offset_), rows, cols, cols};
    if (!buf_ || buf_->count() < need) {
      buf_.reset();
      buf_ = be.alloc(dtype_of<T>::value, need);
    }
    return view<T>(*buf_, rows, cols);
  }
  // A region of a buffer its owner keeps alive and does not use meanwhile (pages already faulted
  // in): get() takes its views there while they fit, from a buffer of its own otherwise.
  void lend(Buffer& buf, std::size_t offset, std::size_t count) {
    lent_ = &buf;
    lent_offset_ = offset;
    lent_count_ = std::min(count, buf.count() - std::min(offset, buf.count()));
  }
  void reset() {
    buf_.reset();
    lent_ = nullptr;
  }

 private:
  BufferPtr buf_;
  Buffer* lent_ = nullptr;
  std::size_t lent_offset_ = 0, lent_count_ = 0;
};

// Bytes an eigendecomposition of order r takes beyond its input and its r×r output: the LAPACK
// workspace, and in float64 the converted matrix and its eigenvalues.
inline double eig_transient_bytes(const Context& ctx, i64 r) {
  const double amin = *std::min_element(ctx.pb.alphas.begin(), ctx.pb.alphas.end());
  // λ_max ≤ trace: float64 is possible only where ε·trace exceeds a tenth of the smallest alpha.
  // (and always on a backend that prefers float64 decompositions: a data-centre GPU)
  const bool may_f64 = ctx.pb.eig_precision == EigPrecision::Float64 ||
                       (ctx.pb.eig_precision == EigPrecision::Auto && (1.19e-7 * ctx.x_trace > 0.1 * amin || ctx.be.prefers_float64_eigh()));
  const double rr = static_cast<double>(r);
  double b = static_cast<double>(linalg::eigh_workspace_bytes(r, 4)) + 4 * rr;
  if (may_f64) b = std::max(b, 8 * rr * rr + static_cast<double>(linalg::eigh_workspace_bytes(r, 8)) + 8 * rr);
  return b;
}

// Alphas scored per GEMM: [M·D_α1; M·D_α2; …] (ac·m × r floats) kept within a quarter of the budget.
inline int alpha_chunk(const Context& ctx, i64 m, i64 r) {
  const double budget = ctx.budget;
  const double per_alpha = 4.0 * static_cast<double>(m) * static_cast<double>(std::max<i64>(1, r));
  return static_cast<int>(std::max(1.0, std::min<double>(ctx.pb.n_alphas(), budget / 4 / per_alpha)));
}

}  // namespace brainlatent::ridge
