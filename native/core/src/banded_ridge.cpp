// Banded ridge on the CPU: random search over band weights γ (himalaya's BandedRidgeCV),
// with the Grams built once and reused across γ (see banded_ridge.h).
//
//   kernel route  K_i = X̃_i X̃_iᵀ once; per γ: K_γ = Σ γ_i K_i; per fold: centre K_tt and K_vt
//                 with the training means, eig(K̃_tt), Z = Qᵀ(Y_t − ȳ_t), M = K̃_vt Q
//   primal route  C = X̃ᵀX̃ once, B = X̃ᵀY per target batch; per γ and fold:
//                 C_γ,t = S (C − G_v − n_t x̄_t x̄_tᵀ) S, eig, Z = Qᵀ S B_t, M = (X̃_v − x̄_t) S Q
// Predictions for every alpha come from one GEMM on [M D_α1; M D_α2; …]; each target keeps the
// (γ, α) with the best mean fold score (a later γ must improve strictly), then targets are refit
// in groups that share γ: one eigendecomposition per distinct γ chosen.
#include "brainlatent/banded_ridge.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "ridge_common.h"

namespace brainlatent {

using i64 = std::int64_t;
using detail::FoldLayout;

// ------------------------------------------------------------------ Dirichlet candidates
namespace {

// xoshiro256** seeded by splitmix64: the same stream on every platform and compiler.
struct Xoshiro {
  std::uint64_t s[4];
  explicit Xoshiro(std::uint64_t seed) {
    for (auto& w : s) {
      seed += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0, 1)
  double normal() {
    double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

// log of a Gamma(a, 1) draw (Marsaglia & Tsang 2000; a < 1 by the a+1 boost). Logs keep
// concentration 0.1 draws, which are often below 1e-300, from underflowing to zero.
double log_gamma_draw(Xoshiro& rng, double a) {
  double boost = 0;
  if (a < 1) {
    boost = std::log(rng.uniform()) / a;
    a += 1;
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v) + boost;
  }
}

}  // namespace

std::vector<double> dirichlet_gammas(int n_samples, int n_bands, const std::vector<double>& concentrations,
                                     std::uint64_t seed) {
  if (n_samples < 1) throw Error(ErrorCode::InvalidArgument, "gammas: need at least 1 candidate, got " + std::to_string(n_samples));
  if (n_bands < 1) throw Error(ErrorCode::InvalidArgument, "gammas: need at least 1 band, got " + std::to_string(n_bands));
  if (concentrations.empty()) throw Error(ErrorCode::InvalidArgument, "gammas: need at least one Dirichlet concentration");
  for (double c : concentrations)
    if (!(c > 0) || !std::isfinite(c))
      throw Error(ErrorCode::InvalidArgument, "gammas: concentrations must be finite and > 0, got " + std::to_string(c));
  std::vector<double> out(static_cast<std::size_t>(n_samples) * n_bands);
  for (int b = 0; b < n_bands; ++b) out[static_cast<std::size_t>(b)] = 1.0 / n_bands;
  Xoshiro rng(seed);
  std::vector<double> lg(static_cast<std::size_t>(n_bands));
  for (int s = 1; s < n_samples; ++s) {
    const double conc = concentrations[static_cast<std::size_t>(s - 1) % concentrations.size()];
    double mx = -std::numeric_limits<double>::infinity();
    for (int b = 0; b < n_bands; ++b) {
      lg[static_cast<std::size_t>(b)] = log_gamma_draw(rng, conc);
      mx = std::max(mx, lg[static_cast<std::size_t>(b)]);
    }
    double sum = 0;
    for (int b = 0; b < n_bands; ++b) sum += std::exp(lg[static_cast<std::size_t>(b)] - mx);
    for (int b = 0; b < n_bands; ++b)
      out[static_cast<std::size_t>(s) * n_bands + b] = std::exp(lg[static_cast<std::size_t>(b)] - mx) / sum;
  }
  return out;
}

// ------------------------------------------------------------------ the fitter
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
std::string shape(i64 r, i64 c) { return std::to_string(r) + "×" + std::to_string(c); }
std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }

using detail::Eig;

// Per fold v and target column of a batch: Σy, Σy² over the fold's rows, and the training mean.
struct FoldStats {
  std::vector<double> sum, sumsq, train_mean;  // k × tb
};

class BandedFitter {
 public:
  BandedFitter(ConstMatF x, ConstMatF y, const BandedRidgeOptions& opt) : x_(x), y_(y), opt_(opt) {}
  BandedRidgeResult run();

 private:
  void validate();
  bool choose_kernel() const;
  i64 choose_batch(bool kernel, i64 ac) const;
  int alpha_chunk(i64 r) const;
  Eig decompose(std::vector<float>& sym, i64 r);
  // A search decomposition of candidate γ: also marks the alphas its Gram cannot resolve.
  Eig decompose_candidate(std::vector<float>& sym, i64 r, bool kernel);
  void check_cancel() const {
    if (opt_.cancel && opt_.cancel->load()) throw Error(ErrorCode::Cancelled, "banded ridge fit cancelled");
  }
  void report(double f, const std::string& stage) const {
    if (opt_.progress) opt_.progress(std::min(1.0, std::max(0.0, f)), stage);
  }
  void load_y(const std::vector<i64>& cols, std::vector<float>& yb) const;
  void load_y_range(i64 j0, i64 tb, std::vector<float>& yb) const;
  FoldStats fold_stats(const float* yb, i64 tb) const;
  float gamma_of_feature(const double* g, i64 f) const { return static_cast<float>(g[band_of_[Z(f)]]); }
  void score_fold(int v, const Eig& eg, const float* m, const float* z, const float* yb, i64 tb, const FoldStats& st,
                  double* acc, i64 ld, i64 col0);
  void consider_gamma(int g, i64 j0, i64 tb, const double* acc, i64 ld, i64 col0);
  void fit_kernel();
  void fit_primal();
  void refit_group(bool kernel, int g, const std::vector<i64>& cols);
  void gamma_kernel(const double* gam, std::vector<float>& kg) const;

  ConstMatF x_, y_;
  const BandedRidgeOptions& opt_;
  i64 n_ = 0, p_ = 0, t_ = 0;
  int a_ = 0, k_ = 0, nb_ = 0, ng_ = 0;
  std::vector<double> gammas_;
  std::vector<i64> band_start_;
  std::vector<int> band_of_;
  FoldLayout folds_;
  std::vector<float> xs_;
  std::vector<double> y_mean_;
  bool use_f64_ = false;
  double flops_ = 0;
  i64 eigs_ = 0, tb_ = 0, batches_ = 0, groups_ = 0;
  double t_gram_ = 0, t_search_ = 0, t_refit_ = 0;
  std::vector<double> best_d_;  // best mean CV score so far, float64
  std::vector<std::vector<float>> kernels_;  // kernel route: K_i = X̃_i X̃_iᵀ per band
  std::vector<float> c_full_;                // primal route: C = X̃ᵀX̃
  detail::AlphaResolution gamma_res_{opt_.alphas};  // per candidate γ: alphas its Grams cannot resolve
  i64 skipped_gammas_ = 0;                           // (candidate, batch) pairs with no resolved alpha
  BandedRidgeResult res_;
};

void BandedFitter::validate() {
  detail::check_xy(x_, y_);
  detail::check_alphas(opt_.alphas);
  n_ = x_.rows;
  p_ = x_.cols;
  t_ = y_.cols;
  if (opt_.band_sizes.empty()) throw Error(ErrorCode::InvalidArgument, "bands: need at least one band");
  i64 total = 0;
  for (std::size_t b = 0; b < opt_.band_sizes.size(); ++b) {
    if (opt_.band_sizes[b] < 1)
      throw Error(ErrorCode::InvalidArgument, "bands: band " + std::to_string(b) + " has " + std::to_string(opt_.band_sizes[b]) + " columns; every band needs at least 1");
    total += opt_.band_sizes[b];
  }
  if (total != p_)
    throw Error(ErrorCode::ShapeMismatch, "bands: the band sizes sum to " + std::to_string(total) + " columns but X has " + std::to_string(p_));
  nb_ = static_cast<int>(opt_.band_sizes.size());
  band_start_.assign(Z(nb_) + 1, 0);
  band_of_.resize(Z(p_));
  for (int b = 0; b < nb_; ++b) {
    band_start_[Z(b) + 1] = band_start_[Z(b)] + opt_.band_sizes[Z(b)];
    for (i64 f = band_start_[Z(b)]; f < band_start_[Z(b) + 1]; ++f) band_of_[Z(f)] = b;
  }
  a_ = static_cast<int>(opt_.alphas.size());
  if (opt_.gammas.empty()) {
    if (opt_.n_iter < 1) throw Error(ErrorCode::InvalidArgument, "nIter: need at least 1 candidate, got " + std::to_string(opt_.n_iter));
    gammas_ = dirichlet_gammas(opt_.n_iter, nb_, opt_.concentrations, opt_.seed);
  } else {
    if (opt_.gammas.size() % Z(nb_) != 0)
      throw Error(ErrorCode::ShapeMismatch, "gammas: " + std::to_string(opt_.gammas.size()) + " values is not a whole number of rows of " + std::to_string(nb_) + " bands");
    gammas_ = opt_.gammas;
    for (std::size_t r = 0; r < gammas_.size() / Z(nb_); ++r) {
      double sum = 0;
      for (int b = 0; b < nb_; ++b) {
        double g = gammas_[r * Z(nb_) + Z(b)];
        if (!(g >= 0) || !std::isfinite(g))
          throw Error(ErrorCode::InvalidArgument, "gammas: row " + std::to_string(r) + " has " + std::to_string(g) + "; weights must be finite and >= 0");
        sum += g;
      }
      if (!(sum > 0)) throw Error(ErrorCode::InvalidArgument, "gammas: row " + std::to_string(r) + " is all zero");
      for (int b = 0; b < nb_; ++b) gammas_[r * Z(nb_) + Z(b)] /= sum;  // onto the simplex
    }
  }
  ng_ = static_cast<int>(gammas_.size() / Z(nb_));
  k_ = opt_.n_folds;
  folds_ = detail::make_fold_layout(opt_.folds, k_, n_);
}

// Route by the per-(γ, fold) cost, which dominates: eig(r) + Z + M + alpha scoring with r = p or n_t.
bool BandedFitter::choose_kernel() const {
  if (opt_.route == RidgeRoute::Kernel) return true;
  if (opt_.route == RidgeRoute::Primal) return false;
  const double n = static_cast<double>(n_), p = static_cast<double>(p_), t = static_cast<double>(t_), A = a_;
  const double nv = n / k_, nt = n - nv;
  auto per = [&](double r) { return 20 * r * r * r + 2 * r * r * t + 2 * nv * r * r + 2 * A * nv * r * t; };
  const double primal = per(p) + nv * p * p, kernel = per(nt) + n * n;
  return kernel < primal;
}

// Alphas scored per GEMM: [M D_α; …] is ac·n_v × r, kept within a quarter of the budget.
int BandedFitter::alpha_chunk(i64 r) const {
  const double budget = static_cast<double>(opt_.memory_budget ? opt_.memory_budget : (std::size_t(2) << 30));
  const double per_alpha = 4.0 * static_cast<double>(folds_.max_size()) * static_cast<double>(r);
  return static_cast<int>(std::max(1.0, std::min<double>(a_, std::floor(budget / 4 / per_alpha))));
}

i64 BandedFitter::choose_batch(bool kernel, i64 ac) const {
  if (opt_.target_batch > 0) return std::min<i64>(opt_.target_batch, t_);
  const double nv = static_cast<double>(folds_.max_size()), nt = static_cast<double>(n_) - nv;
  // floats held per target column: Y batch, Z, predictions, and (primal) B and every B_v
  double per = kernel ? n_ + nt + n_ + ac * nv : n_ + (k_ + 3.0) * p_ + ac * nv;
  per = per * 4 + 8.0 * (a_ + 3 * k_);
  const double budget = static_cast<double>(opt_.memory_budget ? opt_.memory_budget : (std::size_t(2) << 30));
  return std::max<i64>(1, std::min<i64>(static_cast<i64>(budget / 2 / per), t_));
}

Eig BandedFitter::decompose(std::vector<float>& sym, i64 r) {
  ++eigs_;
  return detail::eigh_sym(sym, r, use_f64_);
}

Eig BandedFitter::decompose_candidate(std::vector<float>& sym, i64 r, bool kernel) {
  Eig e = decompose(sym, r);
  gamma_res_.note(e.raw, kernel && opt_.fit_intercept);
  return e;
}

void BandedFitter::load_y(const std::vector<i64>& cols, std::vector<float>& yb) const {
  detail::load_y(y_, folds_, y_mean_, cols.data(), 0, static_cast<i64>(cols.size()), yb);
}

void BandedFitter::load_y_range(i64 j0, i64 tb, std::vector<float>& yb) const {
  detail::load_y(y_, folds_, y_mean_, nullptr, j0, tb, yb);
}

FoldStats BandedFitter::fold_stats(const float* yb, i64 tb) const {
  FoldStats st;
  st.sum.assign(Z(k_ * tb), 0.0);
  st.sumsq.assign(Z(k_ * tb), 0.0);
  st.train_mean.assign(Z(k_ * tb), 0.0);
  std::vector<double> all(Z(tb), 0.0);
  for (int v = 0; v < k_; ++v) {
    double* s = st.sum.data() + v * tb;
    double* s2 = st.sumsq.data() + v * tb;
    for (i64 i = folds_.start[Z(v)]; i < folds_.start[Z(v) + 1]; ++i) {
      const float* r = yb + i * tb;
      for (i64 j = 0; j < tb; ++j) {
        s[j] += r[j];
        s2[j] += static_cast<double>(r[j]) * r[j];
      }
    }
    for (i64 j = 0; j < tb; ++j) all[Z(j)] += s[j];
  }
  if (opt_.fit_intercept)
    for (int v = 0; v < k_; ++v) {
      const double nt = static_cast<double>(n_ - folds_.size(v));
      for (i64 j = 0; j < tb; ++j) st.train_mean[Z(v * tb + j)] = (all[Z(j)] - st.sum[Z(v * tb + j)]) / nt;
    }
  return st;
}

// Scores fold v for every alpha: predictions M D_α Z + ȳ_t against the fold's rows of yb;
// acc[a·ld + col0 + j] += score / k.
void BandedFitter::score_fold(int v, const Eig& eg, const float* m, const float* z, const float* yb, i64 tb,
                              const FoldStats& st, double* acc, i64 ld, i64 col0) {
  const i64 s = folds_.start[Z(v)], nv = folds_.size(v), r = eg.r;
  const float* yv = yb + s * tb;
  const bool pearson = opt_.score == RidgeScore::Pearson;
  const int ac_max = alpha_chunk(r);
  std::vector<float> ms, pr;
  for (int a0 = 0; a0 < a_; a0 += ac_max) {
    const int ac = std::min(ac_max, a_ - a0);
    ms.resize(Z(ac * nv * r));
    pr.resize(Z(ac * nv * tb));
    parallel_for(0, ac * nv, 32, [&](i64 b, i64 e) {
      for (i64 row = b; row < e; ++row) {
        const double alpha = opt_.alphas[Z(a0 + row / nv)];
        const float* src = m + (row % nv) * r;
        float* dst = ms.data() + row * r;
        for (i64 k = 0; k < r; ++k) dst[k] = static_cast<float>(src[k] / (eg.lam[Z(k)] + alpha));
      }
    });
    linalg::gemm(false, false, ac * nv, tb, r, 1.0f, ms.data(), r, z, tb, 0.0f, pr.data(), tb);
    flops_ += 2.0 * ac * nv * r * tb;
    for (int a = 0; a < ac; ++a) {
      const float* pa = pr.data() + a * nv * tb;
      double* out = acc + (a0 + a) * ld + col0;
      parallel_for(0, tb, 256, [&](i64 b, i64 e) {
        for (i64 j = b; j < e; ++j) {
          const std::size_t S = Z(v * tb + j);
          const double off = st.train_mean[S], m_v = static_cast<double>(nv);
          double sse = 0, sp = 0, spp = 0, spy = 0;
          for (i64 i = 0; i < nv; ++i) {
            const double q = static_cast<double>(pa[i * tb + j]) + off, y = yv[i * tb + j];
            if (pearson) {
              sp += q;
              spp += q * q;
              spy += q * y;
            } else {
              sse += (q - y) * (q - y);
            }
          }
          double score;
          if (pearson) {
            const double cpp = spp - sp * sp / m_v, cyy = st.sumsq[S] - st.sum[S] * st.sum[S] / m_v, cpy = spy - sp * st.sum[S] / m_v;
            score = (cpp > 0 && cyy > 0) ? cpy / std::sqrt(cpp * cyy) : 0.0;
          } else {
            const double sst = std::max(0.0, st.sumsq[S] - st.sum[S] * st.sum[S] / m_v);
            score = sst > 0 ? 1.0 - sse / sst : 0.0;
          }
          out[j] += score / k_;
        }
      });
    }
  }
}

// After all folds of candidate g: best alpha per target (ties to the larger alpha); a target
// moves to (g, α) only when it beats its best so far.
void BandedFitter::consider_gamma(int g, i64 j0, i64 tb, const double* acc, i64 ld, i64 col0) {
  // Alphas this candidate's Grams cannot resolve in float32 are skipped; a candidate with none
  // left is not considered at all (its gamma_scores stay NaN).
  int first = 0;
  while (first < a_ && gamma_res_.unresolved(first)) ++first;
  if (first == a_) {
    ++skipped_gammas_;
    for (i64 j = 0; j < tb; ++j) res_.gamma_scores[Z(g) * Z(t_) + Z(j0 + j)] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  for (i64 j = 0; j < tb; ++j) {
    int best = first;
    double bs = acc[first * ld + col0 + j];
    for (int a = first + 1; a < a_; ++a) {
      if (gamma_res_.unresolved(a)) continue;
      const double s = acc[a * ld + col0 + j];
      if (s > bs || (s == bs && opt_.alphas[Z(a)] > opt_.alphas[Z(best)])) {
        bs = s;
        best = a;
      }
    }
    const std::size_t J = Z(j0 + j);
    res_.gamma_scores[Z(g) * Z(t_) + J] = static_cast<float>(bs);
    if (bs > best_d_[J]) {
      best_d_[J] = bs;
      res_.best_scores[J] = static_cast<float>(bs);
      res_.best_gamma[J] = g;
      res_.best_alpha[J] = static_cast<float>(opt_.alphas[Z(best)]);
    }
  }
}



// K_γ = Σ_b γ_b K_b (n × n).
void BandedFitter::gamma_kernel(const double* gam, std::vector<float>& kg) const {
  kg.resize(Z(n_ * n_));
  parallel_for(0, n_, 64, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; ++i) {
      float* dst = kg.data() + i * n_;
      const float g0 = static_cast<float>(gam[0]);
      const float* k0 = kernels_[0].data() + i * n_;
      for (i64 j = 0; j < n_; ++j) dst[j] = g0 * k0[j];
      for (int band = 1; band < nb_; ++band) {
        const float gb = static_cast<float>(gam[band]);
        const float* kb = kernels_[Z(band)].data() + i * n_;
        for (i64 j = 0; j < n_; ++j) dst[j] += gb * kb[j];
      }
    }
  });
}

// ------------------------------------------------------------------ kernel route
void BandedFitter::fit_kernel() {
  auto t0 = Clock::now();
  kernels_.assign(Z(nb_), {});
  double frob_max = 0;
  for (int b = 0; b < nb_; ++b) {
    check_cancel();
    auto& kb = kernels_[Z(b)];
    kb.resize(Z(n_ * n_));
    const i64 pb = opt_.band_sizes[Z(b)];
    linalg::outer_gram(n_, pb, xs_.data() + band_start_[Z(b)], p_, 1.0f, 0.0f, kb.data(), n_);
    flops_ += static_cast<double>(n_) * n_ * pb;
    double fr = 0;
    for (float v : kb) fr += static_cast<double>(v) * v;
    frob_max = std::max(frob_max, std::sqrt(fr));
  }
  // Every γ mixes these Grams, so the precision is decided once, from the largest ‖K_b‖_F.
  use_f64_ = detail::needs_float64(opt_.eig_precision, opt_.alphas, frob_max);
  t_gram_ = since(t0);
  report(0.05, "search");

  auto ts = Clock::now();
  tb_ = choose_batch(true, alpha_chunk(n_));
  const i64 nbatch = (t_ + tb_ - 1) / tb_;
  batches_ = nbatch;
  std::vector<float> yb;
  std::vector<FoldStats> stats(Z(nbatch));
  for (i64 bi = 0; bi < nbatch; ++bi) {
    const i64 j0 = bi * tb_, tb = std::min(tb_, t_ - j0);
    load_y_range(j0, tb, yb);
    stats[Z(bi)] = fold_stats(yb.data(), tb);
  }
  if (nbatch == 1) load_y_range(0, t_, yb);  // one batch: Y stays loaded for every γ and fold
  std::vector<double> acc(Z(a_) * Z(t_));
  std::vector<float> kg, ktt, kvt, m, z, yt;
  std::vector<double> rmean, rv;
  for (int g = 0; g < ng_; ++g) {
    const double* gam = gammas_.data() + Z(g) * Z(nb_);
    gamma_res_.reset();
    gamma_kernel(gam, kg);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int v = 0; v < k_; ++v) {
      check_cancel();
      report(0.05 + 0.8 * (g * k_ + v) / static_cast<double>(ng_ * k_), "search");
      const i64 s = folds_.start[Z(v)], nv = folds_.size(v), nt = n_ - nv;
      auto tr = [s, nv](i64 q) { return q < s ? q : q + nv; };
      ktt.resize(Z(nt * nt));
      kvt.resize(Z(nv * nt));
      parallel_for(0, nt, 64, [&](i64 b, i64 e) {
        for (i64 a = b; a < e; ++a) {
          const float* src = kg.data() + tr(a) * n_;
          float* dst = ktt.data() + a * nt;
          for (i64 c = 0; c < nt; ++c) dst[c] = src[tr(c)];
        }
      });
      for (i64 i = 0; i < nv; ++i) {
        const float* src = kg.data() + (s + i) * n_;
        float* dst = kvt.data() + i * nt;
        for (i64 c = 0; c < nt; ++c) dst[c] = src[tr(c)];
      }
      if (opt_.fit_intercept) {
        // Per-fold centring (ridge.md §1): K̃_ij = K_ij − r_i − r_j + μ over the training rows.
        rmean.assign(Z(nt), 0.0);
        rv.assign(Z(nv), 0.0);
        parallel_for(0, nt, 64, [&](i64 b, i64 e) {
          for (i64 a = b; a < e; ++a) {
            double acc_r = 0;
            for (i64 c = 0; c < nt; ++c) acc_r += ktt[Z(a * nt + c)];
            rmean[Z(a)] = acc_r / static_cast<double>(nt);
          }
        });
        for (i64 i = 0; i < nv; ++i) {
          double acc_r = 0;
          for (i64 c = 0; c < nt; ++c) acc_r += kvt[Z(i * nt + c)];
          rv[Z(i)] = acc_r / static_cast<double>(nt);
        }
        const double mu = std::accumulate(rmean.begin(), rmean.end(), 0.0) / static_cast<double>(nt);
        parallel_for(0, nt, 64, [&](i64 b, i64 e) {
          for (i64 a = b; a < e; ++a)
            for (i64 c = 0; c < nt; ++c) ktt[Z(a * nt + c)] = static_cast<float>(ktt[Z(a * nt + c)] - rmean[Z(a)] - rmean[Z(c)] + mu);
        });
        for (i64 i = 0; i < nv; ++i)
          for (i64 c = 0; c < nt; ++c) kvt[Z(i * nt + c)] = static_cast<float>(kvt[Z(i * nt + c)] - rv[Z(i)] - rmean[Z(c)] + mu);
      }
      Eig eg = decompose_candidate(ktt, nt, true);
      // M = K̃_vt Q (Q's columns are the rows of qt).
      m.resize(Z(nv * nt));
      linalg::gemm(false, true, nv, nt, nt, 1.0f, kvt.data(), nt, eg.qt.data(), nt, 0.0f, m.data(), nt);
      flops_ += 2.0 * nv * nt * nt;
      for (i64 bi = 0; bi < nbatch; ++bi) {
        const i64 j0 = bi * tb_, tb = std::min(tb_, t_ - j0);
        if (nbatch > 1) load_y_range(j0, tb, yb);
        const FoldStats& st = stats[Z(bi)];
        yt.resize(Z(nt * tb));
        parallel_for(0, nt, 64, [&](i64 b, i64 e) {
          for (i64 a = b; a < e; ++a) {
            const float* src = yb.data() + tr(a) * tb;
            float* dst = yt.data() + a * tb;
            for (i64 j = 0; j < tb; ++j) dst[j] = static_cast<float>(src[j] - st.train_mean[Z(v * tb + j)]);
          }
        });
        z.resize(Z(nt * tb));
        linalg::gemm(false, false, nt, tb, nt, 1.0f, eg.qt.data(), nt, yt.data(), tb, 0.0f, z.data(), tb);
        flops_ += 2.0 * nt * nt * tb;
        score_fold(v, eg, m.data(), z.data(), yb.data(), tb, st, acc.data(), t_, j0);
      }
    }
    consider_gamma(g, 0, t_, acc.data(), t_, 0);
  }
  t_search_ = since(ts);
}

// ------------------------------------------------------------------ primal route
void BandedFitter::fit_primal() {
  auto t0 = Clock::now();
  c_full_.resize(Z(p_ * p_));
  linalg::gram(n_, p_, xs_.data(), p_, 1.0f, 0.0f, c_full_.data(), p_);
  flops_ += static_cast<double>(n_) * p_ * p_;
  double frob = 0;
  for (float v : c_full_) frob += static_cast<double>(v) * v;
  use_f64_ = detail::needs_float64(opt_.eig_precision, opt_.alphas, std::sqrt(frob));
  std::vector<double> xsum_all(Z(p_), 0.0), xsum(Z(k_ * p_), 0.0);
  for (int v = 0; v < k_; ++v)
    for (i64 i = folds_.start[Z(v)]; i < folds_.start[Z(v) + 1]; ++i) {
      const float* r = xs_.data() + i * p_;
      for (i64 f = 0; f < p_; ++f) xsum[Z(v * p_ + f)] += r[f];
    }
  for (int v = 0; v < k_; ++v)
    for (i64 f = 0; f < p_; ++f) xsum_all[Z(f)] += xsum[Z(v * p_ + f)];
  t_gram_ = since(t0);
  report(0.05, "search");

  auto ts = Clock::now();
  tb_ = choose_batch(false, alpha_chunk(p_));
  const i64 nbatch = (t_ + tb_ - 1) / tb_;
  batches_ = nbatch;
  std::vector<float> yb, bfull, bv, ct, xc, m, bt, z;
  std::vector<double> acc, xbar(Z(p_));
  std::vector<float> sg(Z(p_));
  for (i64 bi = 0; bi < nbatch; ++bi) {
    const i64 j0 = bi * tb_, tb = std::min(tb_, t_ - j0);
    load_y_range(j0, tb, yb);
    const FoldStats st = fold_stats(yb.data(), tb);
    // B = X̃ᵀY and B_v = X̃_vᵀY_v for every fold: shared by every γ.
    bfull.resize(Z(p_ * tb));
    linalg::gemm(true, false, p_, tb, n_, 1.0f, xs_.data(), p_, yb.data(), tb, 0.0f, bfull.data(), tb);
    bv.resize(Z(k_ * p_ * tb));
    for (int v = 0; v < k_; ++v) {
      const i64 s = folds_.start[Z(v)], nv = folds_.size(v);
      linalg::gemm(true, false, p_, tb, nv, 1.0f, xs_.data() + s * p_, p_, yb.data() + s * tb, tb, 0.0f, bv.data() + v * p_ * tb, tb);
    }
    flops_ += 4.0 * n_ * p_ * tb;
    acc.assign(Z(a_ * tb), 0.0);
    for (int g = 0; g < ng_; ++g) {
      const double* gam = gammas_.data() + Z(g) * Z(nb_);
      gamma_res_.reset();
      for (i64 f = 0; f < p_; ++f) sg[Z(f)] = static_cast<float>(std::sqrt(gam[band_of_[Z(f)]]));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int v = 0; v < k_; ++v) {
        check_cancel();
        report(0.05 + 0.8 * ((bi * ng_ + g) * k_ + v) / static_cast<double>(nbatch * ng_ * k_), "search");
        const i64 s = folds_.start[Z(v)], nv = folds_.size(v), nt = n_ - nv;
        const float* xv = xs_.data() + s * p_;
        for (i64 f = 0; f < p_; ++f) xbar[Z(f)] = opt_.fit_intercept ? (xsum_all[Z(f)] - xsum[Z(v * p_ + f)]) / static_cast<double>(nt) : 0.0;
        // C_γ,t = S (C − X̃_vᵀX̃_v − n_t x̄_t x̄_tᵀ) S
        ct = c_full_;
        linalg::gram(nv, p_, xv, p_, -1.0f, 1.0f, ct.data(), p_);
        flops_ += static_cast<double>(nv) * p_ * p_;
        parallel_for(0, p_, 32, [&](i64 b, i64 e) {
          for (i64 i = b; i < e; ++i)
            for (i64 j = 0; j < p_; ++j)
              ct[Z(i * p_ + j)] = static_cast<float>((ct[Z(i * p_ + j)] - nt * xbar[Z(i)] * xbar[Z(j)]) * sg[Z(i)] * sg[Z(j)]);
        });
        Eig eg = decompose_candidate(ct, p_, false);
        // M = (X̃_v − 1x̄_tᵀ) S Q
        xc.resize(Z(nv * p_));
        for (i64 i = 0; i < nv; ++i)
          for (i64 f = 0; f < p_; ++f) xc[Z(i * p_ + f)] = static_cast<float>((xv[i * p_ + f] - xbar[Z(f)]) * sg[Z(f)]);
        m.resize(Z(nv * p_));
        linalg::gemm(false, true, nv, p_, p_, 1.0f, xc.data(), p_, eg.qt.data(), p_, 0.0f, m.data(), p_);
        // Z = Qᵀ S (B − B_v − n_t x̄_t ȳ_tᵀ)
        bt.resize(Z(p_ * tb));
        const float* bvv = bv.data() + v * p_ * tb;
        parallel_for(0, p_, 64, [&](i64 b, i64 e) {
          for (i64 f = b; f < e; ++f)
            for (i64 j = 0; j < tb; ++j)
              bt[Z(f * tb + j)] = static_cast<float>((bfull[Z(f * tb + j)] - bvv[f * tb + j] - nt * xbar[Z(f)] * st.train_mean[Z(v * tb + j)]) * sg[Z(f)]);
        });
        z.resize(Z(p_ * tb));
        linalg::gemm(false, false, p_, tb, p_, 1.0f, eg.qt.data(), p_, bt.data(), tb, 0.0f, z.data(), tb);
        flops_ += 2.0 * nv * p_ * p_ + 2.0 * p_ * p_ * tb;
        score_fold(v, eg, m.data(), z.data(), yb.data(), tb, st, acc.data(), tb, 0);
      }
      consider_gamma(g, j0, tb, acc.data(), tb, 0);
    }
  }
  t_search_ = since(ts);
}

// ------------------------------------------------------------------ refit
// Targets `cols` that chose candidate g, refit on all rows with their own alphas:
//   kernel  dual = Q diag(1/(λ+α)) Qᵀ Y with K_γ = QΛQᵀ; coef = diag(γ per feature) X̃ᵀ dual
//   primal  W = Q diag(1/(λ+α)) Qᵀ S X̃ᵀY with C_γ = S C S = QΛQᵀ; coef = S W
void BandedFitter::refit_group(bool kernel, int g, const std::vector<i64>& cols) {
  const double* gam = gammas_.data() + Z(g) * Z(nb_);
  const i64 r = kernel ? n_ : p_;
  std::vector<float> sym;
  if (kernel) {
    gamma_kernel(gam, sym);
  } else {
    sym = c_full_;
    parallel_for(0, p_, 32, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i)
        for (i64 j = 0; j < p_; ++j)
          sym[Z(i * p_ + j)] = static_cast<float>(sym[Z(i * p_ + j)] * std::sqrt(gam[band_of_[Z(i)]] * gam[band_of_[Z(j)]]));
    });
  }
  Eig eg = decompose(sym, r);
  std::vector<float>().swap(sym);
  std::vector<float> yb, b, z, w, cb;
  for (std::size_t c0 = 0; c0 < cols.size(); c0 += Z(tb_)) {
    check_cancel();
    const std::vector<i64> chunk(cols.begin() + static_cast<std::ptrdiff_t>(c0),
                                 cols.begin() + static_cast<std::ptrdiff_t>(std::min(cols.size(), c0 + Z(tb_))));
    const i64 tb = static_cast<i64>(chunk.size());
    load_y(chunk, yb);
    z.resize(Z(r * tb));
    if (kernel) {
      linalg::gemm(false, false, n_, tb, n_, 1.0f, eg.qt.data(), n_, yb.data(), tb, 0.0f, z.data(), tb);
    } else {
      // S X̃ᵀY
      b.resize(Z(p_ * tb));
      linalg::gemm(true, false, p_, tb, n_, 1.0f, xs_.data(), p_, yb.data(), tb, 0.0f, b.data(), tb);
      for (i64 f = 0; f < p_; ++f) {
        const float s = static_cast<float>(std::sqrt(gam[band_of_[Z(f)]]));
        for (i64 j = 0; j < tb; ++j) b[Z(f * tb + j)] *= s;
      }
      linalg::gemm(false, false, p_, tb, p_, 1.0f, eg.qt.data(), p_, b.data(), tb, 0.0f, z.data(), tb);
      flops_ += 2.0 * n_ * p_ * tb;
    }
    parallel_for(0, r, 64, [&](i64 bb, i64 e) {
      for (i64 k = bb; k < e; ++k)
        for (i64 j = 0; j < tb; ++j) z[Z(k * tb + j)] = static_cast<float>(z[Z(k * tb + j)] / (eg.lam[Z(k)] + res_.best_alpha[Z(chunk[Z(j)])]));
    });
    w.resize(Z(r * tb));
    linalg::gemm(true, false, r, tb, r, 1.0f, eg.qt.data(), r, z.data(), tb, 0.0f, w.data(), tb);
    flops_ += 4.0 * r * r * tb;
    cb.resize(Z(p_ * tb));
    if (kernel) {
      linalg::gemm(true, false, p_, tb, n_, 1.0f, xs_.data(), p_, w.data(), tb, 0.0f, cb.data(), tb);
      flops_ += 2.0 * n_ * p_ * tb;
      for (i64 f = 0; f < p_; ++f) {
        const float gf = static_cast<float>(gam[band_of_[Z(f)]]);
        for (i64 j = 0; j < tb; ++j) cb[Z(f * tb + j)] *= gf;
      }
    } else {
      for (i64 f = 0; f < p_; ++f) {
        const float s = static_cast<float>(std::sqrt(gam[band_of_[Z(f)]]));
        for (i64 j = 0; j < tb; ++j) cb[Z(f * tb + j)] = w[Z(f * tb + j)] * s;
      }
    }
    parallel_for(0, p_, 64, [&](i64 bb, i64 e) {
      for (i64 f = bb; f < e; ++f)
        for (i64 j = 0; j < tb; ++j) res_.coef[Z(f * t_ + chunk[Z(j)])] = cb[Z(f * tb + j)];
    });
  }
}

BandedRidgeResult BandedFitter::run() {
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
  res_.n_bands = nb_;
  res_.coef.assign(Z(p_ * t_), 0.0f);
  res_.best_gamma.assign(Z(t_), 0);
  res_.best_alpha.assign(Z(t_), static_cast<float>(opt_.alphas[0]));
  res_.best_scores.assign(Z(t_), 0.0f);
  res_.gamma_scores.assign(Z(ng_) * Z(t_), 0.0f);
  best_d_.assign(Z(t_), -std::numeric_limits<double>::infinity());
  const bool kernel = choose_kernel();
  if (kernel) fit_kernel();
  else fit_primal();
  if (std::any_of(best_d_.begin(), best_d_.end(), [](double d) { return d == -std::numeric_limits<double>::infinity(); }))
    throw Error(ErrorCode::InvalidArgument,
                "alphas: for every band weighting, every alpha is below the float32 resolution of the weighted Gram "
                "(1e-5·λ_max; it is singular or nearly so): use larger alphas");

  auto tr = Clock::now();
  std::vector<std::vector<i64>> groups(Z(ng_));
  for (i64 j = 0; j < t_; ++j) groups[Z(res_.best_gamma[Z(j)])].push_back(j);
  i64 done = 0;
  for (int g = 0; g < ng_; ++g) {
    if (groups[Z(g)].empty()) continue;
    ++groups_;
    refit_group(kernel, g, groups[Z(g)]);
    done += static_cast<i64>(groups[Z(g)].size());
    report(0.85 + 0.15 * static_cast<double>(done) / t_, "refit");
  }
  t_refit_ = since(tr);
  res_.intercept.resize(Z(t_));
  for (i64 j = 0; j < t_; ++j) res_.intercept[Z(j)] = static_cast<float>(y_mean_[Z(j)]);
  res_.gammas = gammas_;
  BandedRidgeInfo& info = res_.info;
  info.route = kernel ? "kernel" : "primal";
  info.eig_precision = use_f64_ ? "float64" : "float32";
  info.n_gammas = ng_;
  info.skipped_candidates = skipped_gammas_;
  info.target_batch = tb_;
  info.n_batches = batches_;
  info.eigendecompositions = eigs_;
  info.refit_groups = groups_;
  info.gemm_flops = flops_;
  info.seconds_gram = t_gram_;
  info.seconds_search = t_search_;
  info.seconds_refit = t_refit_;
  info.seconds_total = since(t0);
  report(1.0, "done");
  return std::move(res_);
}

}  // namespace

BandedRidgeResult banded_ridge_fit(ConstMatF x, ConstMatF y, const BandedRidgeOptions& options) {
  try {
    BandedFitter fitter(x, y, options);
    return fitter.run();
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::OutOfMemory, "banded ridge fit: out of memory for X " + shape(x.rows, x.cols) + ", Y " +
                                            shape(y.rows, y.cols) + "; lower memoryBudget or the number of targets per fit");
  }
}

}  // namespace brainlatent
