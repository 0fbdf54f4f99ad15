// RidgeCV on the CPU: per-target alpha by K-fold CV, then a one-GEMM refit per target batch.
//
// Four routes (ridge.md §1-2), chosen by a flop model unless the caller fixes one:
//   per-fold primal  eig(XₜᵀXₜ) per fold, Grams shared across folds      (n_t > p)
//   per-fold kernel  eig(KₜₜK) per fold, one kernel XXᵀ for all folds      (n_t ≤ p)
//   exact primal     one eig(XᵀX); held-out residuals e_v = (I−H_vv)⁻¹ r_v
//   exact kernel     one eig(XXᵀ); the same closed form in the dual
// Every alpha is scored from the one decomposition; targets run in batches bounded by a
// memory budget; each batch is refitted with its targets' chosen alphas as soon as its CV
// scores are complete, so Y is read once.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"
#include "ridge_common.h"

namespace brainlatent {

using detail::FoldLayout;
using i64 = std::int64_t;

std::vector<std::int32_t> contiguous_folds(i64 n, int k) {
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  if (k > n)
    throw Error(ErrorCode::InvalidArgument,
                "folds: " + std::to_string(k) + " folds cannot be made from " + std::to_string(n) + " samples");
  // scikit-learn KFold: the first n % k folds get one extra sample.
  std::vector<std::int32_t> f(static_cast<std::size_t>(n));
  i64 pos = 0;
  for (int v = 0; v < k; ++v) {
    i64 size = n / k + (v < n % k ? 1 : 0);
    for (i64 i = 0; i < size; ++i) f[static_cast<std::size_t>(pos++)] = v;
  }
  return f;
}

std::vector<std::int32_t> group_folds(const std::vector<std::int32_t>& groups, int k) {
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  // Slot of each distinct group, numbered in order of first appearance, and the slots' sizes.
  std::vector<std::size_t> idx(groups.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return groups[a] < groups[b]; });
  std::vector<std::size_t> first_index;        // per distinct group (in id order): first sample
  std::vector<std::size_t> group_of(groups.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && groups[idx[j]] == groups[idx[i]]) group_of[idx[j++]] = first_index.size();
    first_index.push_back(idx[i]);
    i = j;
  }
  const i64 n_groups = static_cast<i64>(first_index.size());
  if (n_groups < k)
    throw Error(ErrorCode::InvalidArgument,
                "groups: " + std::to_string(n_groups) + " distinct groups cannot fill " + std::to_string(k) + " folds");
  std::vector<std::size_t> order(first_index.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return first_index[a] < first_index[b]; });
  std::vector<std::int32_t> slot_of_group(first_index.size());
  for (std::size_t r = 0; r < order.size(); ++r) slot_of_group[order[r]] = static_cast<std::int32_t>(r);
  std::vector<i64> sizes(first_index.size(), 0);
  for (std::size_t i = 0; i < groups.size(); ++i) sizes[static_cast<std::size_t>(slot_of_group[group_of[i]])]++;

  // Contiguous runs of groups (in order of appearance) with near-equal sample counts, so that
  // with time-ordered data each fold stays a block in time, as contiguous KFold does.
  const i64 n = static_cast<i64>(groups.size());
  std::vector<std::int32_t> fold_of_slot(sizes.size());
  i64 cum = 0;
  for (i64 s = 0; s < n_groups; ++s) {
    const double centre = static_cast<double>(cum) + 0.5 * static_cast<double>(sizes[static_cast<std::size_t>(s)]);
    fold_of_slot[static_cast<std::size_t>(s)] = std::min(static_cast<int>(centre * k / static_cast<double>(n)), k - 1);
    cum += sizes[static_cast<std::size_t>(s)];
  }
  // Every fold must be non-empty: with very unequal groups, move a group from the fold holding most.
  std::vector<i64> count(static_cast<std::size_t>(k), 0);
  for (i64 s = 0; s < n_groups; ++s) count[static_cast<std::size_t>(fold_of_slot[static_cast<std::size_t>(s)])]++;
  for (int v = 0; v < k; ++v) {
    if (count[static_cast<std::size_t>(v)] > 0) continue;
    const int donor = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
    for (i64 s = n_groups - 1; s >= 0; --s)
      if (fold_of_slot[static_cast<std::size_t>(s)] == donor) {
        fold_of_slot[static_cast<std::size_t>(s)] = v;
        count[static_cast<std::size_t>(donor)]--;
        count[static_cast<std::size_t>(v)]++;
        break;
      }
  }
  std::vector<std::int32_t> folds(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i)
    folds[i] = fold_of_slot[static_cast<std::size_t>(slot_of_group[group_of[i]])];
  return folds;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string shape(i64 r, i64 c) { return std::to_string(r) + "×" + std::to_string(c); }

enum class Route { PerFoldPrimal, PerFoldKernel, ExactPrimal, ExactKernel };

bool is_primal(Route r) { return r == Route::PerFoldPrimal || r == Route::ExactPrimal; }
bool is_exact(Route r) { return r == Route::ExactPrimal || r == Route::ExactKernel; }

using detail::Eig;

// Per fold v and column j of a centred target batch: Σy and SST over the fold's rows (Σy² is
// the scratch SST is made from).
struct FoldStats {
  std::vector<double> sst, sum, sumsq;  // k × tb
};

class RidgeFitter {
 public:
  RidgeFitter(ConstMatF x, ConstMatF y, const RidgeOptions& opt) : x_(x), y_(y), opt_(opt) {}

  RidgeResult run();

 private:
  // ---- setup
  void validate();
  Route choose_route();
  std::int64_t choose_batch(Route route);

  // ---- numerics
  Eig decompose(std::vector<float>& sym, i64 r);
  void note_resolution(const std::vector<double>& w) { resolution_.note(w, current_kernel_ && opt_.fit_intercept); }
  void count(double flops) { flops_ += flops; }
  void check_cancel() {
    if (opt_.cancel && opt_.cancel->load()) throw Error(ErrorCode::Cancelled, "ridge fit cancelled");
  }
  void report(double fraction, const std::string& stage) {
    if (opt_.progress) opt_.progress(std::min(1.0, std::max(0.0, fraction)), stage);
  }
  void fold_y_stats(const float* yb, i64 j0, i64 tb, FoldStats& st);
  void score_fold(int v, const float* pred, i64 ldp, bool residual, const double* offset, const float* yv,
                  i64 tb, const FoldStats& st, double* out_scores);
  void accumulate(int a, i64 j0, i64 tb, const std::vector<double>& scores);
  void score_alphas(int v, const std::vector<float>& mv, const Eig& eg, const float* z, i64 j0, i64 tb,
                    const double* offset, const float* yv, const FoldStats& st, std::vector<float>& ms,
                    std::vector<float>& pr, std::vector<double>& scores);
  void select_alphas(i64 j0, i64 tb);

  // Runs fn(j0, tb, yb, ys) over target batches: yb is the centred batch in fold order, ys its
  // per-fold statistics. Progress runs from `from` to 1.
  template <typename Fn>
  void for_each_batch(Route route, double from, Fn&& fn);

  void fit_per_fold_primal();
  void fit_per_fold_kernel();
  void fit_exact(bool primal);

  ConstMatF x_, y_;
  const RidgeOptions& opt_;
  i64 n_ = 0, p_ = 0, t_ = 0;
  int a_ = 0, k_ = 0;
  FoldLayout folds_;
  std::vector<float> xs_;  // standardised, centred X in fold order (n × p)
  std::vector<double> y_mean_;
  bool use_f64_ = false;
  bool precision_decided_ = false;
  bool current_kernel_ = false;       // the matrix being decomposed is a centred kernel
  detail::AlphaResolution resolution_{opt_.alphas};  // alphas below the float32 resolution of a singular Gram
  double flops_ = 0;
  std::vector<double> cv_;  // a × t accumulated mean fold scores
  RidgeResult res_;
  std::int64_t tb_ = 0;
  double t_decompose_ = 0, t_cv_ = 0, t_refit_ = 0;
};

void RidgeFitter::validate() {
  detail::check_xy(x_, y_);
  detail::check_alphas(opt_.alphas);
  n_ = x_.rows;
  p_ = x_.cols;
  t_ = y_.cols;
  a_ = static_cast<int>(opt_.alphas.size());
  k_ = opt_.n_folds;
  folds_ = detail::make_fold_layout(opt_.folds, k_, n_);
}

// Flop model (ridge.md §1-2): GEMM flops plus eigensolves counted as GEMM-time equivalents
// (syevd(m) ≈ 20 m³ flops of SGEMM time on the reference CPUs, twice that in float64).
Route RidgeFitter::choose_route() {
  const double n = static_cast<double>(n_), p = static_cast<double>(p_), t = static_cast<double>(t_),
               A = static_cast<double>(a_), K = static_cast<double>(k_);
  const double nv = n / K, nt = n - nv;
  const double eigc = use_f64_ ? 40.0 : 20.0;
  auto eig = [&](double m) { return eigc * m * m * m; };
  const double pf_primal = n * p * p + K * (eig(p) + 2 * nv * p * p) + 4 * n * p * t + 2 * K * p * p * t +
                           2 * A * n * p * t + eig(p) + 4 * p * p * t;
  const double pf_kernel = n * n * p + K * (eig(nt) + 2 * nv * nt * nt) + 2 * K * nt * nt * t + 2 * A * n * nt * t +
                           eig(n) + 4 * n * n * t + 2 * n * p * t;
  const double ex_primal = n * p * p + eig(p) + 2 * n * p * p + 2 * n * p * t +
                           A * (2 * n * p * t + n * nv * p + n * nv * nv / 3 + 2 * n * nv * t) + 2 * p * p * t;
  const double ex_kernel = n * n * p + eig(n) + 2 * n * n * t +
                           A * (2 * n * n * t + n * nv * n + n * nv * nv / 3 + 2 * n * nv * t) + 2 * n * n * t + 2 * n * p * t;
  // The exact routes keep every (alpha, fold) Cholesky factor: A · Σ n_v² floats.
  double factor_bytes = 0;
  for (int v = 0; v < k_; ++v) factor_bytes += 4.0 * A * static_cast<double>(folds_.size(v)) * static_cast<double>(folds_.size(v));
  const double budget = static_cast<double>(opt_.memory_budget ? opt_.memory_budget : (std::size_t(2) << 30));
  const bool exact_fits = factor_bytes <= budget / 2;

  struct Cand { Route r; double cost; };
  std::vector<Cand> cands;
  const bool want_primal = opt_.route != RidgeRoute::Kernel, want_kernel = opt_.route != RidgeRoute::Primal;
  const bool want_pf = opt_.cv_method != RidgeCvMethod::Exact, want_ex = opt_.cv_method != RidgeCvMethod::PerFold;
  if (want_pf && want_primal) cands.push_back({Route::PerFoldPrimal, pf_primal});
  if (want_pf && want_kernel) cands.push_back({Route::PerFoldKernel, pf_kernel});
  if (want_ex && want_primal && (exact_fits || opt_.cv_method == RidgeCvMethod::Exact)) cands.push_back({Route::ExactPrimal, ex_primal});
  if (want_ex && want_kernel && (exact_fits || opt_.cv_method == RidgeCvMethod::Exact)) cands.push_back({Route::ExactKernel, ex_kernel});
  if (cands.empty()) cands.push_back({Route::PerFoldPrimal, pf_primal});
  return std::min_element(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.cost < b.cost; })->r;
}

Eig RidgeFitter::decompose(std::vector<float>& sym, i64 r) {
  // 'auto' decides on the first decomposition of the fit, from its exact λ_max: float32 unless
  // detail::needs_float64 says so, then float64 from a saved copy.
  const bool deciding = !precision_decided_ && opt_.eig_precision == EigPrecision::Auto;
  precision_decided_ = true;
  if (use_f64_ || !deciding) {
    Eig e = detail::eigh_sym(sym, r, use_f64_);
    note_resolution(e.raw);
    return e;
  }
  std::vector<float> saved(sym.begin(), sym.begin() + r * r);
  Eig e = detail::eigh_sym(sym, r, false);
  const double lmax = r > 0 ? std::max(std::fabs(e.raw.front()), std::fabs(e.raw.back())) : 0.0;
  if (detail::needs_float64(opt_.eig_precision, opt_.alphas, lmax)) {
    use_f64_ = true;
    e = detail::eigh_sym(saved, r, true);
  }
  note_resolution(e.raw);
  return e;
}


std::int64_t RidgeFitter::choose_batch(Route route) {
  if (opt_.target_batch > 0) return std::min<i64>(opt_.target_batch, t_);
  const i64 nv = folds_.max_size();
  // floats held per target column in one batch
  double per_target = 0;
  switch (route) {
    case Route::PerFoldPrimal: per_target = n_ + (k_ + 3) * p_ + static_cast<double>(a_) * nv; break;
    case Route::PerFoldKernel: per_target = n_ + 3 * n_ + static_cast<double>(a_) * nv; break;
    case Route::ExactPrimal: per_target = 2 * n_ + 2 * p_; break;
    case Route::ExactKernel: per_target = 2 * n_ + 3 * n_; break;
  }
  per_target = per_target * 4 + 8.0 * 6 * a_;
  const double budget = static_cast<double>(opt_.memory_budget ? opt_.memory_budget : (std::size_t(2) << 30));
  i64 tb = static_cast<i64>(budget / per_target);
  // The per-fold routes hold every alpha's predictions for a batch (A·n_v·tb floats); past
  // 128 MB a bigger batch only costs memory and cache, not GEMM efficiency.
  if (route == Route::PerFoldPrimal || route == Route::PerFoldKernel)
    tb = std::min<i64>(tb, std::max<i64>(512, (i64(1) << 25) / std::max<i64>(1, static_cast<i64>(a_) * nv)));
  return std::max<i64>(1, std::min<i64>(tb, t_));
}

// Per fold v and column j of a centred batch: mean, SST, Σy and Σy² over the fold's rows.
void RidgeFitter::fold_y_stats(const float* yb, i64 j0, i64 tb, FoldStats& st) {
  const std::size_t sz = static_cast<std::size_t>(k_ * tb);
  st.sst.assign(sz, 0.0);
  st.sum.assign(sz, 0.0);
  st.sumsq.assign(sz, 0.0);
  parallel_for(0, tb, 256, [&](i64 b, i64 e) {
    for (int v = 0; v < k_; ++v) {
      double* s = st.sum.data() + v * tb;
      double* s2 = st.sumsq.data() + v * tb;
      for (i64 i = folds_.start[static_cast<std::size_t>(v)]; i < folds_.start[static_cast<std::size_t>(v) + 1]; ++i) {
        const float* r = yb + i * tb;
        for (i64 j = b; j < e; ++j) {
          s[j] += r[j];
          s2[j] += static_cast<double>(r[j]) * r[j];
        }
      }
      const double m = static_cast<double>(folds_.size(v));
      for (i64 j = b; j < e; ++j) {
        // A target whose spread in the fold is below float32 resolution of its level (relative SD
        // 1e-5) is constant there: SST 0, so the fold scores 0 rather than 1 − (rounding / rounding).
        const double level = y_mean_[static_cast<std::size_t>(j0 + j)];
        const double sst = std::max(0.0, s2[j] - s[j] * s[j] / m);
        st.sst[static_cast<std::size_t>(v * tb + j)] = sst > 1e-10 * (level * level * m + s2[j]) ? sst : 0.0;
      }
    }
  });
}

// Scores one fold's predictions for one alpha. pred (n_v × tb, ld ldp) holds either the
// prediction minus `offset` (residual=false) or the held-out residual y − ŷ (residual=true).
// Folds whose target is constant (SST = 0) score 0.
void RidgeFitter::score_fold(int v, const float* pred, i64 ldp, bool residual, const double* offset, const float* yv,
                             i64 tb, const FoldStats& st, double* out) {
  const i64 nv = folds_.size(v);
  const bool pearson = opt_.score == RidgeScore::Pearson;
  parallel_for(0, tb, 512, [&](i64 b, i64 e) {
    const i64 w = e - b;
    std::vector<double> sse(static_cast<std::size_t>(w), 0.0), sp(static_cast<std::size_t>(w), 0.0),
        spp(static_cast<std::size_t>(w), 0.0), spy(static_cast<std::size_t>(w), 0.0);
    for (i64 i = 0; i < nv; ++i) {
      const float* pr = pred + i * ldp + b;
      const float* yr = yv + i * tb + b;
      if (!pearson) {
        if (residual) {
          for (i64 j = 0; j < w; ++j) sse[static_cast<std::size_t>(j)] += static_cast<double>(pr[j]) * pr[j];
        } else {
          for (i64 j = 0; j < w; ++j) {
            double d = pr[j] + offset[b + j] - yr[j];
            sse[static_cast<std::size_t>(j)] += d * d;
          }
        }
      } else {
        for (i64 j = 0; j < w; ++j) {
          double q = residual ? static_cast<double>(yr[j]) - pr[j] : pr[j] + offset[b + j];
          sp[static_cast<std::size_t>(j)] += q;
          spp[static_cast<std::size_t>(j)] += q * q;
          spy[static_cast<std::size_t>(j)] += q * yr[j];
        }
      }
    }
    const double m = static_cast<double>(nv);
    for (i64 j = 0; j < w; ++j) {
      const std::size_t J = static_cast<std::size_t>(j);
      const std::size_t S = static_cast<std::size_t>(v * tb + b + j);
      double s = 0;
      if (!pearson) {
        s = st.sst[S] > 0 ? 1.0 - sse[J] / st.sst[S] : 0.0;
      } else {
        double cpp = spp[J] - sp[J] * sp[J] / m;
        double cpy = spy[J] - sp[J] * st.sum[S] / m;
        s = (cpp > 0 && st.sst[S] > 0) ? cpy / std::sqrt(cpp * st.sst[S]) : 0.0;
      }
      out[b + j] = s;
    }
  });
}

void RidgeFitter::accumulate(int a, i64 j0, i64 tb, const std::vector<double>& scores) {
  double* acc = cv_.data() + static_cast<std::size_t>(a) * static_cast<std::size_t>(t_) + j0;
  for (i64 j = 0; j < tb; ++j) acc[j] += scores[static_cast<std::size_t>(j)] / k_;
}

// Per-fold routes: predictions M_v·D_α·Z + offset for every alpha, with the alphas' scaled
// copies of M_v stacked so that one GEMM scores them all.
void RidgeFitter::score_alphas(int v, const std::vector<float>& mv, const Eig& eg, const float* z, i64 j0, i64 tb,
                               const double* offset, const float* yv, const FoldStats& st, std::vector<float>& ms,
                               std::vector<float>& pr, std::vector<double>& scores) {
  const i64 nv = folds_.size(v), r = eg.r;
  ms.resize(static_cast<std::size_t>(a_ * nv * r));
  pr.resize(static_cast<std::size_t>(a_ * nv * tb));
  parallel_for(0, a_ * nv, 32, [&](i64 b, i64 e) {
    for (i64 row = b; row < e; ++row) {
      const double alpha = opt_.alphas[static_cast<std::size_t>(row / nv)];
      const float* src = mv.data() + (row % nv) * r;
      float* dst = ms.data() + row * r;
      for (i64 k = 0; k < r; ++k) dst[k] = static_cast<float>(src[k] / (eg.lam[static_cast<std::size_t>(k)] + alpha));
    }
  });
  linalg::gemm(false, false, a_ * nv, tb, r, 1.0f, ms.data(), r, z, tb, 0.0f, pr.data(), tb);
  count(2.0 * a_ * nv * r * tb);
  scores.resize(static_cast<std::size_t>(tb));
  for (int a = 0; a < a_; ++a) {
    score_fold(v, pr.data() + a * nv * tb, tb, false, offset, yv, tb, st, scores.data());
    accumulate(a, j0, tb, scores);
  }
}

// Best alpha per target: the highest mean CV score; exact ties go to the larger alpha.
void RidgeFitter::select_alphas(i64 j0, i64 tb) {
  int first = 0;
  while (first < a_ && resolution_.unresolved(first)) ++first;
  for (i64 j = j0; j < j0 + tb; ++j) {
    int best = first;
    double bs = cv_[static_cast<std::size_t>(first * t_ + j)];
    for (int a = first + 1; a < a_; ++a) {
      if (resolution_.unresolved(a)) continue;
      double s = cv_[static_cast<std::size_t>(a * t_ + j)];
      if (s > bs || (s == bs && opt_.alphas[static_cast<std::size_t>(a)] > opt_.alphas[static_cast<std::size_t>(best)])) {
        bs = s;
        best = a;
      }
    }
    res_.best_alphas[static_cast<std::size_t>(j)] = static_cast<float>(opt_.alphas[static_cast<std::size_t>(best)]);
    res_.best_scores[static_cast<std::size_t>(j)] = static_cast<float>(bs);
  }
}

template <typename Fn>
void RidgeFitter::for_each_batch(Route route, double from, Fn&& fn) {
  if (resolution_.all_unresolved()) {
    std::ostringstream msg;
    msg << "alphas: every alpha is below " << resolution_.resolution()
        << ", the float32 resolution of this problem's Gram (1e-5·λ_max; it is singular or nearly so): "
           "use larger alphas";
    throw Error(ErrorCode::InvalidArgument, msg.str());
  }
  tb_ = choose_batch(route);
  std::vector<float> yb;
  FoldStats ys;
  i64 batches = 0;
  for (i64 j0 = 0; j0 < t_; j0 += tb_) {
    check_cancel();
    const i64 tb = std::min(tb_, t_ - j0);
    ++batches;
    detail::load_y(y_, folds_, y_mean_, nullptr, j0, tb, yb);
    fold_y_stats(yb.data(), j0, tb, ys);
    fn(j0, tb, yb, ys);
    report(from + (1.0 - from) * static_cast<double>(j0 + tb) / static_cast<double>(t_), "cv+refit");
  }
  res_.info.n_batches = batches;
}

// Z (r × tb) scaled per target by E[k, j] = 1 / (λ_k + α_j) into ez.
static void scale_by_chosen(const Eig& eg, const float* z, i64 tb, const float* alphas_of_batch, float* ez) {
  parallel_for(0, eg.r, 64, [&](i64 b, i64 e) {
    for (i64 k = b; k < e; ++k) {
      const double lam = eg.lam[static_cast<std::size_t>(k)];
      const float* zr = z + k * tb;
      float* out = ez + k * tb;
      for (i64 j = 0; j < tb; ++j) out[j] = static_cast<float>(zr[j] / (lam + alphas_of_batch[j]));
    }
  });
}

// ------------------------------------------------------------------ per-fold, primal
void RidgeFitter::fit_per_fold_primal() {
  auto t0 = Clock::now();
  current_kernel_ = false;
  const i64 p = p_;
  // C = X̃ᵀX̃ (globally centred): the full-data Gram, and each fold's by subtraction.
  std::vector<float> c(static_cast<std::size_t>(p * p));
  linalg::gram(n_, p, xs_.data(), p, 1.0f, 0.0f, c.data(), p);
  count(static_cast<double>(n_) * p * p);

  std::vector<Eig> eigs(static_cast<std::size_t>(k_));
  std::vector<std::vector<float>> m(static_cast<std::size_t>(k_));        // M_v = (X̃_v − x̄_t) Q_v
  std::vector<std::vector<float>> xbar_t(static_cast<std::size_t>(k_));   // training means of X̃
  std::vector<float> ct(static_cast<std::size_t>(p * p));
  for (int v = 0; v < k_; ++v) {
    check_cancel();
    report(0.3 * v / (k_ + 1), "decompose");
    const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v), nt = n_ - nv;
    const float* xv = xs_.data() + s * p;
    std::copy(c.begin(), c.end(), ct.begin());
    linalg::gram(nv, p, xv, p, -1.0f, 1.0f, ct.data(), p);
    count(static_cast<double>(nv) * p * p);
    auto& xb = xbar_t[static_cast<std::size_t>(v)];
    xb.assign(static_cast<std::size_t>(p), 0.0f);
    if (opt_.fit_intercept) {
      // Training mean of globally centred X̃ = −(n_v / n_t) · validation mean.
      std::vector<double> sum(static_cast<std::size_t>(p), 0.0);
      for (i64 i = 0; i < nv; ++i)
        for (i64 j = 0; j < p; ++j) sum[static_cast<std::size_t>(j)] += xv[i * p + j];
      for (i64 j = 0; j < p; ++j) xb[static_cast<std::size_t>(j)] = static_cast<float>(-sum[static_cast<std::size_t>(j)] / nt);
      // C_t −= n_t x̄_t x̄_tᵀ
      parallel_for(0, p, 64, [&](i64 b, i64 e) {
        for (i64 i = b; i < e; ++i)
          for (i64 j = 0; j < p; ++j) ct[static_cast<std::size_t>(i * p + j)] -= static_cast<float>(nt) * xb[static_cast<std::size_t>(i)] * xb[static_cast<std::size_t>(j)];
      });
    }
    eigs[static_cast<std::size_t>(v)] = decompose(ct, p);
    // M_v = (X̃_v − 1x̄_tᵀ) Q_v
    std::vector<float> xc(xv, xv + nv * p);
    if (opt_.fit_intercept)
      for (i64 i = 0; i < nv; ++i)
        for (i64 j = 0; j < p; ++j) xc[static_cast<std::size_t>(i * p + j)] -= xb[static_cast<std::size_t>(j)];
    auto& mv = m[static_cast<std::size_t>(v)];
    mv.resize(static_cast<std::size_t>(nv * p));
    linalg::gemm(false, true, nv, p, p, 1.0f, xc.data(), p, eigs[static_cast<std::size_t>(v)].qt.data(), p, 0.0f, mv.data(), p);
    count(2.0 * nv * p * p);
  }
  report(0.3 * k_ / (k_ + 1), "decompose");
  Eig full = decompose(c, p);  // c is consumed
  std::vector<float>().swap(c);
  std::vector<float>().swap(ct);
  t_decompose_ = since(t0);

  // Target batches: CV over folds, then the refit of the batch.
  std::vector<float> b_full, bv, bt, z, pr, ms, ez;
  std::vector<double> scores, offset;
  for_each_batch(Route::PerFoldPrimal, 0.3, [&](i64 j0, i64 tb, const std::vector<float>& yb, const FoldStats& ys) {
    auto tc = Clock::now();
    // B_v = X̃_vᵀ Y_v for every fold (2·n·p·tb in all), B = Σ B_v; fold v trains on B − B_v.
    bv.resize(static_cast<std::size_t>(k_ * p * tb));
    for (int v = 0; v < k_; ++v) {
      const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v);
      linalg::gemm(true, false, p, tb, nv, 1.0f, xs_.data() + s * p, p, yb.data() + s * tb, tb, 0.0f, bv.data() + v * p * tb, tb);
    }
    count(2.0 * n_ * p * tb);
    b_full.assign(static_cast<std::size_t>(p * tb), 0.0f);
    for (int v = 0; v < k_; ++v) {
      const float* src = bv.data() + v * p * tb;
      parallel_for(0, p * tb, 1 << 16, [&](i64 b, i64 e) {
        for (i64 i = b; i < e; ++i) b_full[static_cast<std::size_t>(i)] += src[i];
      });
    }
    bt.resize(b_full.size());
    z.resize(b_full.size());
    scores.resize(static_cast<std::size_t>(tb));
    offset.resize(static_cast<std::size_t>(tb));
    for (int v = 0; v < k_; ++v) {
      check_cancel();
      const Eig& eg = eigs[static_cast<std::size_t>(v)];
      const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v), nt = n_ - nv;
      const float* yv = yb.data() + s * tb;
      // B_t = B − B_v − n_t x̄_t ȳ_tᵀ
      const float* bvv = bv.data() + v * p * tb;
      parallel_for(0, p * tb, 1 << 16, [&](i64 b, i64 e) {
        for (i64 i = b; i < e; ++i) bt[static_cast<std::size_t>(i)] = b_full[static_cast<std::size_t>(i)] - bvv[i];
      });
      for (i64 j = 0; j < tb; ++j)
        offset[static_cast<std::size_t>(j)] = opt_.fit_intercept ? -ys.sum[static_cast<std::size_t>(v * tb + j)] / nt : 0.0;
      if (opt_.fit_intercept) {
        const auto& xb = xbar_t[static_cast<std::size_t>(v)];
        parallel_for(0, p, 64, [&](i64 b, i64 e) {
          for (i64 i = b; i < e; ++i)
            for (i64 j = 0; j < tb; ++j)
              bt[static_cast<std::size_t>(i * tb + j)] -= static_cast<float>(nt * xb[static_cast<std::size_t>(i)] * offset[static_cast<std::size_t>(j)]);
        });
      }
      linalg::gemm(false, false, p, tb, p, 1.0f, eg.qt.data(), p, bt.data(), tb, 0.0f, z.data(), tb);
      count(2.0 * p * p * tb);
      score_alphas(v, m[static_cast<std::size_t>(v)], eg, z.data(), j0, tb, offset.data(), yv, ys, ms, pr, scores);
    }
    select_alphas(j0, tb);
    t_cv_ += since(tc);
    // Refit: W = Q (E ∘ QᵀB), written straight into the batch's coef columns.
    auto tr = Clock::now();
    linalg::gemm(false, false, p, tb, p, 1.0f, full.qt.data(), p, b_full.data(), tb, 0.0f, z.data(), tb);
    count(2.0 * p * p * tb);
    ez.resize(z.size());
    scale_by_chosen(full, z.data(), tb, res_.best_alphas.data() + j0, ez.data());
    linalg::gemm(true, false, p, tb, p, 1.0f, full.qt.data(), p, ez.data(), tb, 0.0f, res_.coef.data() + j0, t_);
    count(2.0 * p * p * tb);
    t_refit_ += since(tr);
  });
}

// ------------------------------------------------------------------ per-fold, kernel
void RidgeFitter::fit_per_fold_kernel() {
  auto t0 = Clock::now();
  current_kernel_ = true;
  // K = X̃X̃ᵀ (n × n) in fold order, shared by every fold.
  std::vector<float> kf(static_cast<std::size_t>(n_ * n_));
  linalg::outer_gram(n_, p_, xs_.data(), p_, 1.0f, 0.0f, kf.data(), n_);
  count(static_cast<double>(n_) * n_ * p_);

  std::vector<Eig> eigs(static_cast<std::size_t>(k_));
  std::vector<std::vector<float>> m(static_cast<std::size_t>(k_));      // M_v = K̃_vt Q_v (n_v × n_t)
  std::vector<std::vector<float>> qsum(static_cast<std::size_t>(k_));   // Q_vᵀ1 (n_t)
  for (int v = 0; v < k_; ++v) {
    check_cancel();
    report(0.4 * v / (k_ + 1), "decompose");
    const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v), e_ = s + nv, nt = n_ - nv;
    auto train = [&](i64 q) { return q < s ? q : q + nv; };  // q-th training row → permuted row
    std::vector<float> ktt(static_cast<std::size_t>(nt * nt));
    parallel_for(0, nt, 64, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i) {
        const float* src = kf.data() + train(i) * n_;
        float* dst = ktt.data() + i * nt;
        std::copy(src, src + s, dst);
        std::copy(src + e_, src + n_, dst + s);
      }
    });
    std::vector<float> kvt(static_cast<std::size_t>(nv * nt));
    for (i64 i = 0; i < nv; ++i) {
      const float* src = kf.data() + (s + i) * n_;
      std::copy(src, src + s, kvt.data() + i * nt);
      std::copy(src + e_, src + n_, kvt.data() + i * nt + s);
    }
    if (opt_.fit_intercept) {
      // Centre on the training rows: K̃_ij = K_ij − r_i − r_j + μ, K̃_vj = K_vj − c_v − r_j + μ.
      std::vector<double> rmean(static_cast<std::size_t>(nt), 0.0);
      parallel_for(0, nt, 64, [&](i64 b, i64 e) {
        for (i64 i = b; i < e; ++i) {
          double acc = 0;
          const float* r = ktt.data() + i * nt;
          for (i64 j = 0; j < nt; ++j) acc += r[j];
          rmean[static_cast<std::size_t>(i)] = acc / nt;
        }
      });
      const double mu = std::accumulate(rmean.begin(), rmean.end(), 0.0) / nt;
      parallel_for(0, nt, 64, [&](i64 b, i64 e) {
        for (i64 i = b; i < e; ++i) {
          float* r = ktt.data() + i * nt;
          for (i64 j = 0; j < nt; ++j)
            r[j] = static_cast<float>(r[j] - rmean[static_cast<std::size_t>(i)] - rmean[static_cast<std::size_t>(j)] + mu);
        }
      });
      for (i64 i = 0; i < nv; ++i) {
        float* r = kvt.data() + i * nt;
        double cv = 0;
        for (i64 j = 0; j < nt; ++j) cv += r[j];
        cv /= nt;
        for (i64 j = 0; j < nt; ++j) r[j] = static_cast<float>(r[j] - cv - rmean[static_cast<std::size_t>(j)] + mu);
      }
    }
    eigs[static_cast<std::size_t>(v)] = decompose(ktt, nt);
    const Eig& eg = eigs[static_cast<std::size_t>(v)];
    auto& mv = m[static_cast<std::size_t>(v)];
    mv.resize(static_cast<std::size_t>(nv * nt));
    linalg::gemm(false, true, nv, nt, nt, 1.0f, kvt.data(), nt, eg.qt.data(), nt, 0.0f, mv.data(), nt);
    count(2.0 * nv * nt * nt);
    auto& qs = qsum[static_cast<std::size_t>(v)];
    qs.assign(static_cast<std::size_t>(nt), 0.0f);
    for (i64 k = 0; k < nt; ++k) {
      double acc = 0;
      for (i64 i = 0; i < nt; ++i) acc += eg.qt[static_cast<std::size_t>(k * nt + i)];
      qs[static_cast<std::size_t>(k)] = static_cast<float>(acc);
    }
  }
  report(0.4 * k_ / (k_ + 1), "decompose");
  Eig full = decompose(kf, n_);  // X̃ is globally centred, so K already is
  std::vector<float>().swap(kf);
  t_decompose_ = since(t0);

  std::vector<float> z, pr, ms, ez, dual;
  std::vector<double> scores, offset;
  for_each_batch(Route::PerFoldKernel, 0.4, [&](i64 j0, i64 tb, const std::vector<float>& yb, const FoldStats& ys) {
    auto tc = Clock::now();
    scores.resize(static_cast<std::size_t>(tb));
    offset.resize(static_cast<std::size_t>(tb));
    for (int v = 0; v < k_; ++v) {
      check_cancel();
      const Eig& eg = eigs[static_cast<std::size_t>(v)];
      const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v), nt = n_ - nv;
      const float* yv = yb.data() + s * tb;
      for (i64 j = 0; j < tb; ++j)
        offset[static_cast<std::size_t>(j)] = opt_.fit_intercept ? -ys.sum[static_cast<std::size_t>(v * tb + j)] / nt : 0.0;
      // Z = Q_vᵀ (Y_t − 1ȳ_tᵀ): the training rows are the blocks before and after fold v.
      z.resize(static_cast<std::size_t>(nt * tb));
      linalg::gemm(false, false, nt, tb, s, 1.0f, eg.qt.data(), nt, yb.data(), tb, 0.0f, z.data(), tb);
      linalg::gemm(false, false, nt, tb, n_ - s - nv, 1.0f, eg.qt.data() + s, nt, yb.data() + (s + nv) * tb, tb,
                   s > 0 ? 1.0f : 0.0f, z.data(), tb);
      count(2.0 * nt * nt * tb);
      if (opt_.fit_intercept) {
        const auto& qs = qsum[static_cast<std::size_t>(v)];
        for (i64 k = 0; k < nt; ++k)
          for (i64 j = 0; j < tb; ++j) z[static_cast<std::size_t>(k * tb + j)] -= static_cast<float>(qs[static_cast<std::size_t>(k)] * offset[static_cast<std::size_t>(j)]);
      }
      score_alphas(v, m[static_cast<std::size_t>(v)], eg, z.data(), j0, tb, offset.data(), yv, ys, ms, pr, scores);
    }
    select_alphas(j0, tb);
    t_cv_ += since(tc);
    // Refit in the dual: W = X̃ᵀ Q (E ∘ QᵀY).
    auto tr = Clock::now();
    z.resize(static_cast<std::size_t>(n_ * tb));
    linalg::gemm(false, false, n_, tb, n_, 1.0f, full.qt.data(), n_, yb.data(), tb, 0.0f, z.data(), tb);
    ez.resize(z.size());
    scale_by_chosen(full, z.data(), tb, res_.best_alphas.data() + j0, ez.data());
    dual.resize(z.size());
    linalg::gemm(true, false, n_, tb, n_, 1.0f, full.qt.data(), n_, ez.data(), tb, 0.0f, dual.data(), tb);
    linalg::gemm(true, false, p_, tb, n_, 1.0f, xs_.data(), p_, dual.data(), tb, 0.0f, res_.coef.data() + j0, t_);
    count(4.0 * n_ * n_ * tb + 2.0 * n_ * p_ * tb);
    t_refit_ += since(tr);
  });
}

// ------------------------------------------------------------------ exact (one decomposition)
// Held-out residuals of every fold from the full-data fit (ridge.md §2):
//   e_v = (I − H_vv)⁻¹ (y_v − ŷ_v),  H = H_c + 11ᵀ/n with an intercept.
void RidgeFitter::fit_exact(bool primal) {
  auto t0 = Clock::now();
  current_kernel_ = !primal;
  const i64 r = primal ? p_ : n_;
  std::vector<float> g(static_cast<std::size_t>(r * r));
  if (primal) {
    linalg::gram(n_, p_, xs_.data(), p_, 1.0f, 0.0f, g.data(), p_);
    count(static_cast<double>(n_) * p_ * p_);
  } else {
    linalg::outer_gram(n_, p_, xs_.data(), p_, 1.0f, 0.0f, g.data(), n_);
    count(static_cast<double>(n_) * n_ * p_);
  }
  report(0.05, "decompose");
  Eig eg = decompose(g, r);
  std::vector<float>().swap(g);
  // Row space used for the leverages: N = X̃Q (primal) or Q (kernel), n × r.
  std::vector<float> nmat(static_cast<std::size_t>(n_ * r));
  if (primal) {
    linalg::gemm(false, true, n_, r, p_, 1.0f, xs_.data(), p_, eg.qt.data(), r, 0.0f, nmat.data(), r);
    count(2.0 * n_ * p_ * r);
  } else {
    parallel_for(0, n_, 64, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i)
        for (i64 k = 0; k < r; ++k) nmat[static_cast<std::size_t>(i * r + k)] = eg.qt[static_cast<std::size_t>(k * r + i)];
    });
  }
  t_decompose_ = since(t0);
  report(0.2, "leverage");

  // Cholesky factors of A_{α,v} = (I − H)_vv for every alpha and fold, kept for all batches.
  // Formed and factored in float64; solved in float32 unless the block is ill-conditioned.
  const double inv_n = opt_.fit_intercept ? 1.0 / static_cast<double>(n_) : 0.0;
  // Well-conditioned blocks keep A⁻¹ (kernel route: folded into one GEMM with Q_v) or the
  // float32 factor (primal route); ill-conditioned ones keep the float64 factor.
  struct Factor { std::vector<float> f32, inv; std::vector<double> f64; };
  std::vector<Factor> factors(static_cast<std::size_t>(a_ * k_));
  {
    std::vector<float> sv, av;
    std::vector<double> ad;
    for (int a = 0; a < a_; ++a) {
      check_cancel();
      const double alpha = opt_.alphas[static_cast<std::size_t>(a)];
      std::vector<float> sqrt_w(static_cast<std::size_t>(r));
      for (i64 k = 0; k < r; ++k) {
        const double lam = eg.lam[static_cast<std::size_t>(k)];
        sqrt_w[static_cast<std::size_t>(k)] = static_cast<float>(std::sqrt(primal ? 1.0 / (lam + alpha) : alpha / (lam + alpha)));
      }
      for (int v = 0; v < k_; ++v) {
        const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v);
        // S = N_v diag(√w): primal w = 1/(λ+α) (A = I − SSᵀ − 11ᵀ/n); kernel w = α/(λ+α) (A = SSᵀ − 11ᵀ/n).
        sv.resize(static_cast<std::size_t>(nv * r));
        parallel_for(0, nv, 32, [&](i64 b, i64 e) {
          for (i64 i = b; i < e; ++i) {
            const float* src = nmat.data() + (s + i) * r;
            float* dst = sv.data() + i * r;
            for (i64 k = 0; k < r; ++k) dst[k] = src[k] * sqrt_w[static_cast<std::size_t>(k)];
          }
        });
        av.resize(static_cast<std::size_t>(nv * nv));
        linalg::outer_gram(nv, r, sv.data(), r, 1.0f, 0.0f, av.data(), nv);
        count(static_cast<double>(nv) * nv * r);
        ad.resize(av.size());
        for (i64 i = 0; i < nv; ++i)
          for (i64 j = 0; j < nv; ++j) {
            double h = av[static_cast<std::size_t>(i * nv + j)];
            double val = primal ? (i == j ? 1.0 : 0.0) - h - inv_n : h - inv_n;
            ad[static_cast<std::size_t>(i * nv + j)] = val;
          }
        if (!linalg::cholesky(nv, ad.data()))
          throw Error(ErrorCode::NumericalFailure,
                      "exact CV: (I − H) for fold " + std::to_string(v) + " at alpha " + std::to_string(alpha) +
                          " is not positive definite (the alpha is too small for this data); use cvMethod 'per-fold' or larger alphas");
        double dmin = std::numeric_limits<double>::max(), dmax = 0;
        for (i64 i = 0; i < nv; ++i) {
          double d = ad[static_cast<std::size_t>(i * nv + i)];
          dmin = std::min(dmin, d);
          dmax = std::max(dmax, d);
        }
        Factor& f = factors[static_cast<std::size_t>(a * k_ + v)];
        // cond(A) ≈ (dmax/dmin)²; float32 solves keep ~1e-3 relative accuracy up to 1e4.
        if ((dmax / dmin) * (dmax / dmin) > 1e4) {
          f.f64 = ad;
        } else if (!primal) {
          linalg::cholesky_inverse(nv, ad.data());
          f.inv.assign(ad.begin(), ad.end());
        } else {
          f.f32.assign(ad.begin(), ad.end());
        }
      }
    }
  }
  report(0.3, "cv+refit");

  std::vector<float> z, zs, res, ez, dual, bq;
  std::vector<double> scores, rd;
  for_each_batch(primal ? Route::ExactPrimal : Route::ExactKernel, 0.3, [&](i64 j0, i64 tb, const std::vector<float>& yb, const FoldStats& ys) {
    auto tc = Clock::now();
    scores.resize(static_cast<std::size_t>(tb));
    // Z = NᵀY for primal (= QᵀX̃ᵀY), QᵀY for kernel: r × tb.
    z.resize(static_cast<std::size_t>(r * tb));
    if (primal) linalg::gemm(true, false, r, tb, n_, 1.0f, nmat.data(), r, yb.data(), tb, 0.0f, z.data(), tb);
    else linalg::gemm(false, false, r, tb, n_, 1.0f, eg.qt.data(), n_, yb.data(), tb, 0.0f, z.data(), tb);
    count(2.0 * n_ * r * tb);
    zs.resize(z.size());
    res.resize(static_cast<std::size_t>(n_ * tb));
    for (int a = 0; a < a_; ++a) {
      check_cancel();
      const double alpha = opt_.alphas[static_cast<std::size_t>(a)];
      // Residual of the full fit: primal Y − N D Z with D = 1/(λ+α); kernel Q diag(α/(λ+α)) QᵀY.
      parallel_for(0, r, 64, [&](i64 b, i64 e) {
        for (i64 k = b; k < e; ++k) {
          const double lam = eg.lam[static_cast<std::size_t>(k)];
          const float w = static_cast<float>(primal ? 1.0 / (lam + alpha) : alpha / (lam + alpha));
          const float* src = z.data() + k * tb;
          float* dst = zs.data() + k * tb;
          for (i64 j = 0; j < tb; ++j) dst[j] = src[j] * w;
        }
      });
      if (primal) {
        std::copy(yb.begin(), yb.end(), res.begin());
        linalg::gemm(false, false, n_, tb, r, -1.0f, nmat.data(), r, zs.data(), tb, 1.0f, res.data(), tb);
        count(2.0 * n_ * r * tb);
      }
      for (int v = 0; v < k_; ++v) {
        const i64 s = folds_.start[static_cast<std::size_t>(v)], nv = folds_.size(v);
        float* rv = res.data() + s * tb;
        const Factor& f = factors[static_cast<std::size_t>(a * k_ + v)];
        if (!f.inv.empty()) {
          // Kernel route: e_v = A⁻¹ Q_v (w ∘ QᵀY) as (A⁻¹ Q_v) · zs, Q_v = rows s.. of Q = columns of qt.
          bq.resize(static_cast<std::size_t>(nv * n_));
          linalg::gemm(false, true, nv, n_, nv, 1.0f, f.inv.data(), nv, eg.qt.data() + s, n_, 0.0f, bq.data(), n_);
          linalg::gemm(false, false, nv, tb, n_, 1.0f, bq.data(), n_, zs.data(), tb, 0.0f, rv, tb);
          count(2.0 * nv * nv * n_ + 2.0 * nv * n_ * tb);
        } else {
          if (!primal) {
            // Residual rows of the full fit for this fold: Q_v (w ∘ QᵀY).
            linalg::gemm(true, false, nv, tb, r, 1.0f, eg.qt.data() + s, n_, zs.data(), tb, 0.0f, rv, tb);
            count(2.0 * nv * r * tb);
          }
          // Each target column of rv is one right-hand side: e_j = A⁻¹ r_j.
          if (!f.f64.empty()) {
            rd.assign(rv, rv + nv * tb);
            linalg::cholesky_solve_cols(nv, f.f64.data(), tb, rd.data(), tb);
            std::copy(rd.begin(), rd.end(), rv);
          } else {
            linalg::cholesky_solve_cols(nv, f.f32.data(), tb, rv, tb);
          }
          count(2.0 * nv * nv * tb);
        }
        score_fold(v, rv, tb, true, nullptr, yb.data() + s * tb, tb, ys, scores.data());
        accumulate(a, j0, tb, scores);
      }
    }
    select_alphas(j0, tb);
    t_cv_ += since(tc);
    auto tr = Clock::now();
    ez.resize(z.size());
    scale_by_chosen(eg, z.data(), tb, res_.best_alphas.data() + j0, ez.data());
    if (primal) {
      linalg::gemm(true, false, p_, tb, r, 1.0f, eg.qt.data(), r, ez.data(), tb, 0.0f, res_.coef.data() + j0, t_);
      count(2.0 * p_ * r * tb);
    } else {
      dual.resize(static_cast<std::size_t>(n_ * tb));
      linalg::gemm(true, false, n_, tb, n_, 1.0f, eg.qt.data(), n_, ez.data(), tb, 0.0f, dual.data(), tb);
      linalg::gemm(true, false, p_, tb, n_, 1.0f, xs_.data(), p_, dual.data(), tb, 0.0f, res_.coef.data() + j0, t_);
      count(2.0 * n_ * n_ * tb + 2.0 * n_ * p_ * tb);
    }
    t_refit_ += since(tr);
  });
}

RidgeResult RidgeFitter::run() {
  auto t0 = Clock::now();
  validate();
  report(0, "prepare");
  detail::PreparedX px = detail::prepare_x(x_, folds_, opt_.fit_intercept, opt_.standardize);
  xs_ = std::move(px.data);
  res_.x_mean = std::move(px.mean);
  res_.x_scale = std::move(px.scale);
  y_mean_ = detail::column_means(y_, opt_.fit_intercept);
  res_.n_features = p_;
  res_.n_targets = t_;
  res_.coef.assign(static_cast<std::size_t>(p_ * t_), 0.0f);
  res_.best_alphas.assign(static_cast<std::size_t>(t_), 0.0f);
  res_.best_scores.assign(static_cast<std::size_t>(t_), 0.0f);
  cv_.assign(static_cast<std::size_t>(a_) * static_cast<std::size_t>(t_), 0.0);
  // The route decision needs the precision only for its eig cost; assume float32 there.
  use_f64_ = opt_.eig_precision == EigPrecision::Float64;
  Route route = choose_route();
  switch (route) {
    case Route::PerFoldPrimal: fit_per_fold_primal(); break;
    case Route::PerFoldKernel: fit_per_fold_kernel(); break;
    case Route::ExactPrimal:
    case Route::ExactKernel:
      try {
        fit_exact(route == Route::ExactPrimal);
      } catch (const Error& e) {
        // (I − H_vv) can be numerically singular when alphas are tiny; on 'auto' fall back to the
        // per-fold route of the same space, which needs no such factorisation.
        if (e.code() != ErrorCode::NumericalFailure || opt_.cv_method != RidgeCvMethod::Auto) throw;
        std::fill(cv_.begin(), cv_.end(), 0.0);
        std::fill(res_.coef.begin(), res_.coef.end(), 0.0f);
        flops_ = 0;
        t_decompose_ = t_cv_ = t_refit_ = 0;
        resolution_.reset();
        route = route == Route::ExactPrimal ? Route::PerFoldPrimal : Route::PerFoldKernel;
        if (route == Route::PerFoldPrimal) fit_per_fold_primal();
        else fit_per_fold_kernel();
      }
      break;
  }
  res_.intercept.resize(static_cast<std::size_t>(t_));
  for (i64 j = 0; j < t_; ++j) res_.intercept[static_cast<std::size_t>(j)] = static_cast<float>(y_mean_[static_cast<std::size_t>(j)]);
  res_.cv_scores.assign(cv_.begin(), cv_.end());
  int n_unresolved = 0;
  for (int a = 0; a < a_; ++a) {
    if (!resolution_.unresolved(a)) continue;
    ++n_unresolved;
    std::fill(res_.cv_scores.begin() + static_cast<std::ptrdiff_t>(a) * t_, res_.cv_scores.begin() + static_cast<std::ptrdiff_t>(a + 1) * t_,
              std::numeric_limits<float>::quiet_NaN());
  }
  res_.info.unresolved_alphas = n_unresolved;
  res_.info.alpha_resolution = resolution_.resolution();
  // Share of targets at the grid's edges (ridge.md §5.5): a saturated grid is worth a warning.
  const double amin = *std::min_element(opt_.alphas.begin(), opt_.alphas.end());
  const double amax = *std::max_element(opt_.alphas.begin(), opt_.alphas.end());
  i64 lo = 0, hi = 0;
  for (float a : res_.best_alphas) {
    if (a_ > 1 && a == static_cast<float>(amin)) ++lo;
    if (a_ > 1 && a == static_cast<float>(amax)) ++hi;
  }
  res_.info.edge_low = static_cast<double>(lo) / t_;
  res_.info.edge_high = static_cast<double>(hi) / t_;
  res_.info.route = is_primal(route) ? "primal" : "kernel";
  res_.info.cv_method = is_exact(route) ? "exact" : "per-fold";
  res_.info.eig_precision = use_f64_ ? "float64" : "float32";
  res_.info.target_batch = tb_;
  res_.info.gemm_flops = flops_;
  res_.info.seconds_decompose = t_decompose_;
  res_.info.seconds_cv = t_cv_;
  res_.info.seconds_refit = t_refit_;
  res_.info.seconds_total = since(t0);
  report(1.0, "done");
  return std::move(res_);
}

}  // namespace

RidgeResult ridge_cv_fit(ConstMatF x, ConstMatF y, const RidgeOptions& options) {
  try {
    RidgeFitter fitter(x, y, options);
    return fitter.run();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::OutOfMemory, "ridge fit: out of memory for X " + shape(x.rows, x.cols) + ", Y " +
                                            shape(y.rows, y.cols) + "; lower memoryBudget or the number of targets per fit");
  }
}

}  // namespace brainlatent
