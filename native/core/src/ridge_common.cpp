#include "ridge_common.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"

namespace brainlatent::detail {

using i64 = std::int64_t;

namespace {
std::string shape(i64 r, i64 c) { return std::to_string(r) + "×" + std::to_string(c); }
std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }

// A NaN would silently poison every target sharing its rows: find the first non-finite value.
void check_finite(ConstMatF m, const char* name) {
  std::atomic<i64> bad{-1};
  parallel_for(0, m.rows, 256, [&](i64 b, i64 e) {
    for (i64 i = b; i < e && bad.load() < 0; ++i) {
      const float* r = m.row(i);
      for (i64 j = 0; j < m.cols; ++j)
        if (!std::isfinite(r[j])) {
          i64 expected = -1;
          bad.compare_exchange_strong(expected, i * m.cols + j);
          break;
        }
    }
  });
  if (bad.load() < 0) return;
  const i64 at = bad.load();
  const float v = m.data[at];
  throw Error(ErrorCode::NonFinite, std::string(name) + " contains " + (std::isnan(v) ? "NaN" : "Inf") + " at row " +
                                        std::to_string(at / m.cols) + ", column " + std::to_string(at % m.cols) +
                                        ": inputs must be finite");
}
}  // namespace

void check_xy(ConstMatF x, ConstMatF y) {
  if (x.rows == 0 || x.cols == 0)
    throw Error(ErrorCode::ShapeMismatch, "X is empty (" + shape(x.rows, x.cols) + "): need samples × features with both > 0");
  if (y.rows == 0 || y.cols == 0)
    throw Error(ErrorCode::ShapeMismatch, "Y is empty (" + shape(y.rows, y.cols) + "): need samples × targets with both > 0");
  if (y.rows != x.rows)
    throw Error(ErrorCode::ShapeMismatch, "X has " + std::to_string(x.rows) + " samples (rows) but Y has " +
                                              std::to_string(y.rows) + ": they must match");
  check_finite(x, "X");
  check_finite(y, "Y");
}

void check_alphas(const std::vector<double>& alphas) {
  if (alphas.empty()) throw Error(ErrorCode::InvalidArgument, "alphas: need at least one alpha");
  for (double a : alphas)
    if (!(a > 0) || !std::isfinite(a))
      throw Error(ErrorCode::InvalidArgument, "alphas: every alpha must be finite and > 0, got " + std::to_string(a));
}

FoldLayout make_fold_layout(const std::vector<std::int32_t>& labels, int k, i64 n) {
  if (static_cast<i64>(labels.size()) != n)
    throw Error(ErrorCode::ShapeMismatch, "folds: " + std::to_string(labels.size()) + " fold labels for " + std::to_string(n) + " samples");
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  if (k > n) throw Error(ErrorCode::InvalidArgument, "folds: " + std::to_string(k) + " folds but only " + std::to_string(n) + " samples");
  FoldLayout f;
  f.n = n;
  f.k = k;
  std::vector<i64> counts(Z(k), 0);
  for (i64 i = 0; i < n; ++i) {
    const std::int32_t v = labels[Z(i)];
    if (v < 0 || v >= k)
      throw Error(ErrorCode::InvalidArgument, "folds: sample " + std::to_string(i) + " has fold " + std::to_string(v) +
                                                  ", outside 0.." + std::to_string(k - 1));
    counts[Z(v)]++;
  }
  f.start.assign(Z(k) + 1, 0);
  for (int v = 0; v < k; ++v) {
    if (counts[Z(v)] == 0) throw Error(ErrorCode::InvalidArgument, "folds: fold " + std::to_string(v) + " has no samples");
    f.start[Z(v) + 1] = f.start[Z(v)] + counts[Z(v)];
  }
  if (f.min_train() < 1) throw Error(ErrorCode::InvalidArgument, "folds: a fold leaves no training samples");
  f.order.assign(Z(n), 0);
  std::vector<i64> pos(f.start.begin(), f.start.end() - 1);
  for (i64 i = 0; i < n; ++i) f.order[Z(pos[Z(labels[Z(i)])]++)] = i;
  return f;
}

PreparedX prepare_x(ConstMatF x, const FoldLayout& folds, bool fit_intercept, bool standardize) {
  const i64 n = x.rows, p = x.cols;
  PreparedX out;
  out.mean.assign(Z(p), 0.0f);
  out.scale.assign(Z(p), 1.0f);
  std::vector<double> mean(Z(p), 0.0), m2(Z(p), 0.0);
  if (fit_intercept || standardize) {
    // Column means and variances in float64, columns split across threads.
    parallel_for(0, p, 64, [&](i64 b, i64 e) {
      for (i64 i = 0; i < n; ++i) {
        const float* r = x.row(i);
        for (i64 j = b; j < e; ++j) mean[Z(j)] += r[j];
      }
      for (i64 j = b; j < e; ++j) mean[Z(j)] /= static_cast<double>(n);
      if (!standardize) return;
      for (i64 i = 0; i < n; ++i) {
        const float* r = x.row(i);
        for (i64 j = b; j < e; ++j) {
          const double d = r[j] - mean[Z(j)];
          m2[Z(j)] += d * d;
        }
      }
    });
  }
  std::vector<float> inv(Z(p), 1.0f);
  for (i64 j = 0; j < p; ++j) {
    // Standardising without an intercept uses the centred spread, but the model keeps the raw
    // origin: the mean is subtracted only when an intercept is fitted.
    if (fit_intercept) out.mean[Z(j)] = static_cast<float>(mean[Z(j)]);
    if (standardize) {
      const double sd = std::sqrt(m2[Z(j)] / static_cast<double>(n));
      const float s = sd > 0 ? static_cast<float>(sd) : 1.0f;  // constant column: leave unscaled (zero after centring)
      out.scale[Z(j)] = s;
      inv[Z(j)] = 1.0f / s;
    }
  }
  out.data.resize(Z(n * p));
  parallel_for(0, n, 64, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; ++r) {
      const float* src = x.row(folds.order[Z(r)]);
      float* dst = out.data.data() + r * p;
      for (i64 j = 0; j < p; ++j) dst[j] = (src[j] - out.mean[Z(j)]) * inv[Z(j)];
    }
  });
  return out;
}

std::vector<double> column_means(ConstMatF y, bool fit_intercept) {
  std::vector<double> mean(Z(y.cols), 0.0);
  if (!fit_intercept) return mean;
  parallel_for(0, y.cols, 256, [&](i64 b, i64 e) {
    for (i64 i = 0; i < y.rows; ++i) {
      const float* r = y.row(i);
      for (i64 j = b; j < e; ++j) mean[Z(j)] += r[j];
    }
    for (i64 j = b; j < e; ++j) mean[Z(j)] /= static_cast<double>(y.rows);
  });
  return mean;
}

void load_y(ConstMatF y, const FoldLayout& folds, const std::vector<double>& mean, const i64* cols, i64 j0, i64 tb,
            std::vector<float>& out) {
  out.resize(Z(folds.n * tb));
  parallel_for(0, folds.n, 128, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; ++r) {
      const float* src = y.row(folds.order[Z(r)]);
      float* dst = out.data() + r * tb;
      if (cols) {
        for (i64 j = 0; j < tb; ++j) dst[j] = static_cast<float>(src[cols[j]] - mean[Z(cols[j])]);
      } else {
        for (i64 j = 0; j < tb; ++j) dst[j] = static_cast<float>(src[j0 + j] - mean[Z(j0 + j)]);
      }
    }
  });
}

Eig eigh_sym(std::vector<float>& sym, i64 r, bool float64) {
  Eig e;
  e.r = r;
  e.raw.resize(Z(r));
  if (float64) {
    std::vector<double> a(sym.begin(), sym.begin() + r * r);
    linalg::eigh(r, a.data(), e.raw.data());
    e.qt.assign(a.begin(), a.end());
  } else {
    std::vector<float> w(Z(r));
    linalg::eigh(r, sym.data(), w.data());
    e.qt.assign(sym.begin(), sym.begin() + r * r);
    e.raw.assign(w.begin(), w.end());
  }
  e.lam.resize(Z(r));
  for (i64 i = 0; i < r; ++i) e.lam[Z(i)] = std::max(0.0, e.raw[Z(i)]);
  return e;
}

bool needs_float64(EigPrecision precision, const std::vector<double>& alphas, double lambda_max) {
  if (precision == EigPrecision::Float64) return true;
  if (precision == EigPrecision::Float32) return false;
  const double amin = *std::min_element(alphas.begin(), alphas.end());
  return 1.19e-7 * lambda_max > 0.1 * amin;
}

void AlphaResolution::note(const std::vector<double>& w, bool skip_constant) {
  if (w.empty()) return;
  const double lmax = std::max(std::fabs(w.front()), std::fabs(w.back()));
  const double lmin = skip_constant && w.size() > 1 ? w[1] : w[0];
  const double res = 1e-5 * lmax;
  if (lmin >= res) return;
  resolution_ = std::max(resolution_, res);
  for (std::size_t a = 0; a < alphas_.size(); ++a)
    if (alphas_[a] < res) unresolved_[a] = 1;
}

void AlphaResolution::reset() {
  std::fill(unresolved_.begin(), unresolved_.end(), 0);
  resolution_ = 0;
}

bool AlphaResolution::all_unresolved() const {
  return std::all_of(unresolved_.begin(), unresolved_.end(), [](char u) { return u != 0; });
}

int AlphaResolution::count() const { return static_cast<int>(std::count(unresolved_.begin(), unresolved_.end(), 1)); }

}  // namespace brainlatent::detail
