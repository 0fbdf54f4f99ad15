// Banded ridge against a plain float64 reference: for every candidate γ, alpha and fold, a direct
// Cholesky solve of (X_tS)ᵀ(X_tS) + αI with per-fold centring, the same selection rule, and a
// float64 refit. Both routes (primal, kernel) must agree with it; the search must recover the
// band a target was built from; the Dirichlet candidates must follow himalaya's recipe.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "brainlatent/banded_ridge.h"
#include "brainlatent/error.h"
#include "test_util.h"

using namespace brainlatent;
using Vec = std::vector<double>;

namespace {

struct Data {
  long n, p, t;
  std::vector<long> bands;
  std::vector<float> x, y;
};

// Bands of independent-ish features; target j draws on band (j % (nb+1)) — the last case mixes
// all bands — with its own noise level.
Data make_data(long n, std::vector<long> bands, long t, unsigned seed) {
  test::Rng rng(seed);
  long p = 0;
  for (long b : bands) p += b;
  Data d{n, p, t, bands, std::vector<float>(n * p), std::vector<float>(n * t)};
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < p; ++j) d.x[i * p + j] = static_cast<float>(rng.normal() + 0.2 * (j % 4));
  const long nb = static_cast<long>(bands.size());
  std::vector<long> start(nb + 1, 0);
  for (long b = 0; b < nb; ++b) start[b + 1] = start[b] + bands[b];
  for (long j = 0; j < t; ++j) {
    const long which = j % (nb + 1);
    std::vector<double> w(p, 0.0);
    for (long b = 0; b < nb; ++b)
      if (which == nb || which == b)
        for (long f = start[b]; f < start[b + 1]; ++f) w[f] = rng.normal() * (which == nb ? 0.6 : 1.0);
    const double noise = 0.5 + 1.5 * static_cast<double>(j) / t;
    for (long i = 0; i < n; ++i) {
      double s = 0;
      for (long f = 0; f < p; ++f) s += d.x[i * p + f] * w[f];
      d.y[i * t + j] = static_cast<float>(s + noise * 2.0 * rng.normal() + 0.7);
    }
  }
  return d;
}

struct Ref {
  std::vector<int> best_gamma;
  Vec best_alpha, best_score, gamma_scores, coef;
};

// W (p×t) of ridge on rows `rows` of (x S) with penalty alpha, centred when asked; also the means.
void ref_ridge(const Vec& x, const Vec& y, long p, long t, const std::vector<long>& rows, const Vec& s, double alpha,
               bool intercept, Vec& w, Vec& xm, Vec& ym) {
  const long m = static_cast<long>(rows.size());
  xm.assign(p, 0.0);
  ym.assign(t, 0.0);
  if (intercept) {
    for (long r : rows) {
      for (long f = 0; f < p; ++f) xm[f] += x[r * p + f] / m;
      for (long j = 0; j < t; ++j) ym[j] += y[r * t + j] / m;
    }
  }
  Vec a(p * p, 0.0), b(p * t, 0.0);
  for (long r : rows) {
    for (long f = 0; f < p; ++f) {
      const double xf = (x[r * p + f] - xm[f]) * s[f];
      for (long g = 0; g < p; ++g) a[f * p + g] += xf * (x[r * p + g] - xm[g]) * s[g];
      for (long j = 0; j < t; ++j) b[f * t + j] += xf * (y[r * t + j] - ym[j]);
    }
  }
  for (long f = 0; f < p; ++f) a[f * p + f] += alpha;
  w = test::spd_solve(a, b, p, t);
}

Ref reference(const Data& d, const Vec& gammas, const Vec& alphas, const std::vector<std::int32_t>& folds, int k,
              bool intercept, bool standardize, bool pearson) {
  const long n = d.n, p = d.p, t = d.t, nb = static_cast<long>(d.bands.size());
  Vec x(d.x.begin(), d.x.end()), y(d.y.begin(), d.y.end());
  if (standardize) {
    for (long f = 0; f < p; ++f) {
      double mu = 0, v = 0;
      for (long i = 0; i < n; ++i) mu += x[i * p + f] / n;
      for (long i = 0; i < n; ++i) v += (x[i * p + f] - mu) * (x[i * p + f] - mu) / n;
      const double sd = std::sqrt(v);
      for (long i = 0; i < n; ++i) x[i * p + f] = (x[i * p + f] - (intercept ? mu : 0.0)) / sd;
    }
  }
  std::vector<long> band_of(p);
  for (long b = 0, f = 0; b < nb; ++b)
    for (long q = 0; q < d.bands[b]; ++q) band_of[f++] = b;
  const long ng = static_cast<long>(gammas.size()) / nb, na = static_cast<long>(alphas.size());
  Ref ref;
  ref.best_gamma.assign(t, 0);
  ref.best_alpha.assign(t, 0);
  ref.best_score.assign(t, -std::numeric_limits<double>::infinity());
  ref.gamma_scores.assign(ng * t, 0);
  for (long g = 0; g < ng; ++g) {
    Vec s(p);
    for (long f = 0; f < p; ++f) s[f] = std::sqrt(gammas[g * nb + band_of[f]]);
    Vec cv(na * t, 0.0);
    for (long a = 0; a < na; ++a)
      for (int v = 0; v < k; ++v) {
        std::vector<long> tr, va;
        for (long i = 0; i < n; ++i) (folds[i] == v ? va : tr).push_back(i);
        Vec w, xm, ym;
        ref_ridge(x, y, p, t, tr, s, alphas[a], intercept, w, xm, ym);
        for (long j = 0; j < t; ++j) {
          // Two passes (fold means first): one-pass sums cancel catastrophically for a target far from 0.
          const double m = static_cast<double>(va.size());
          Vec q(va.size());
          double ymv = 0, pm = 0;
          for (std::size_t i = 0; i < va.size(); ++i) {
            const long r = va[i];
            q[i] = ym[j];
            for (long f = 0; f < p; ++f) q[i] += (x[r * p + f] - xm[f]) * s[f] * w[f * t + j];
            ymv += y[r * t + j] / m;
            pm += q[i] / m;
          }
          double sse = 0, sst = 0, cpp = 0, cpy = 0;
          for (std::size_t i = 0; i < va.size(); ++i) {
            const double yy = y[va[i] * t + j];
            sse += (q[i] - yy) * (q[i] - yy);
            sst += (yy - ymv) * (yy - ymv);
            cpp += (q[i] - pm) * (q[i] - pm);
            cpy += (q[i] - pm) * (yy - ymv);
          }
          double score;
          if (pearson) {
            score = (cpp > 0 && sst > 0) ? cpy / std::sqrt(cpp * sst) : 0.0;
          } else {
            score = sst > 0 ? 1 - sse / sst : 0.0;
          }
          cv[a * t + j] += score / k;
        }
      }
    for (long j = 0; j < t; ++j) {
      long best = 0;
      for (long a = 1; a < na; ++a)
        if (cv[a * t + j] > cv[best * t + j] || (cv[a * t + j] == cv[best * t + j] && alphas[a] > alphas[best])) best = a;
      ref.gamma_scores[g * t + j] = cv[best * t + j];
      if (cv[best * t + j] > ref.best_score[j]) {
        ref.best_score[j] = cv[best * t + j];
        ref.best_gamma[j] = static_cast<int>(g);
        ref.best_alpha[j] = alphas[best];
      }
    }
  }
  // Refit each target on all rows with its (γ, α); coef = S W.
  ref.coef.assign(p * t, 0.0);
  std::vector<long> all(n);
  for (long i = 0; i < n; ++i) all[i] = i;
  for (long j = 0; j < t; ++j) {
    Vec s(p);
    for (long f = 0; f < p; ++f) s[f] = std::sqrt(gammas[ref.best_gamma[j] * nb + band_of[f]]);
    Vec yj(n);
    for (long i = 0; i < n; ++i) yj[i] = y[i * t + j];
    Vec w, xm, ym;
    ref_ridge(x, yj, p, 1, all, s, ref.best_alpha[j], intercept, w, xm, ym);
    for (long f = 0; f < p; ++f) ref.coef[f * t + j] = s[f] * w[f];
  }
  return ref;
}

// Each fold's number of samples, as the cost estimates take them.
std::vector<std::int64_t> sizes_of(const std::vector<std::int32_t>& folds, int k) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(k), 0);
  for (std::int32_t f : folds) s[static_cast<std::size_t>(f)]++;
  return s;
}

std::vector<std::int32_t> folds_of(long n, int k) {
  std::vector<std::int32_t> f(n);
  for (long i = 0; i < n; ++i) f[i] = static_cast<std::int32_t>((i * k) / n);
  return f;
}

void compare(const Data& d, RidgeRoute route, bool intercept, bool standardize, bool pearson, const char* label) {
  const int k = 4;
  BandedRidgeOptions o;
  for (long b : d.bands) o.band_sizes.push_back(b);
  o.alphas = {0.3, 3, 30, 300};
  o.n_iter = 7;
  o.seed = 11;
  o.folds = folds_of(d.n, k);
  o.n_folds = k;
  o.fit_intercept = intercept;
  o.standardize = standardize;
  o.score = pearson ? RidgeScore::Pearson : RidgeScore::R2;
  o.route = route;
  o.eig_precision = EigPrecision::Float64;  // isolates the algebra; float32 is checked below at a looser tolerance
  BandedRidgeResult r = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
  const Vec gammas = dirichlet_gammas(o.n_iter, static_cast<int>(d.bands.size()), o.concentrations, o.seed);
  Ref ref = reference(d, gammas, o.alphas, o.folds, k, intercept, standardize, pearson);
  CHECK(r.info.route == (route == RidgeRoute::Kernel ? "kernel" : "primal"));
  CHECK(static_cast<long>(r.gammas.size()) == static_cast<long>(gammas.size()));
  int agree = 0;
  for (long j = 0; j < d.t; ++j) {
    agree += r.best_gamma[j] == ref.best_gamma[j] && r.best_alpha[j] == static_cast<float>(ref.best_alpha[j]);
    CHECK_NEAR(r.best_scores[j], ref.best_score[j], 2e-4);
  }
  for (std::size_t q = 0; q < ref.gamma_scores.size(); ++q) CHECK_NEAR(r.gamma_scores[q], ref.gamma_scores[q], 2e-4);
  CHECK(agree == d.t);
  double cmax = 0, err = 0;
  for (long q = 0; q < d.p * d.t; ++q) {
    cmax = std::max(cmax, std::fabs(ref.coef[q]));
    if (r.best_gamma[q % d.t] == ref.best_gamma[q % d.t]) err = std::max(err, std::fabs(r.coef[q] - ref.coef[q]));
  }
  CHECK(err <= 1e-3 * cmax);
  if (err > 1e-3 * cmax) std::fprintf(stderr, "%s: coef error %g of max %g\n", label, err, cmax);
}

}  // namespace

int main() {
  test::run("dirichlet candidates: uniform first, on the simplex, deterministic, alternating concentration", [] {
    const Vec g = dirichlet_gammas(41, 3, {0.1, 1.0}, 5);
    CHECK(g.size() == 41 * 3);
    for (int b = 0; b < 3; ++b) CHECK_NEAR(g[b], 1.0 / 3, 1e-15);
    for (int s = 0; s < 41; ++s) {
      double sum = 0;
      for (int b = 0; b < 3; ++b) {
        CHECK(g[s * 3 + b] >= 0);
        sum += g[s * 3 + b];
      }
      CHECK_NEAR(sum, 1.0, 1e-12);
    }
    CHECK(dirichlet_gammas(41, 3, {0.1, 1.0}, 5) == g);
    CHECK(dirichlet_gammas(41, 3, {0.1, 1.0}, 6) != g);
    // himalaya's order: row s has concentrations[s % 2] (row 0 then made uniform), so the first draw
    // has 1.0. Concentration 0.1 (even rows) puts nearly all weight on one band; 1.0 (odd rows) rarely does.
    int peaked_sparse = 0, peaked_flat = 0;
    for (int s = 1; s < 41; ++s) {
      const double mx = std::max({g[s * 3], g[s * 3 + 1], g[s * 3 + 2]});
      (s % 2 == 0 ? peaked_sparse : peaked_flat) += mx > 0.9;
    }
    CHECK(peaked_sparse >= 12);
    CHECK(peaked_flat <= 8);
    CHECK(test::throws([] { dirichlet_gammas(3, 2, {0.0}, 1); }));
  });

  test::run("primal route equals the float64 reference (R², intercept)", [] {
    compare(make_data(64, {5, 7, 4}, 8, 1), RidgeRoute::Primal, true, false, false, "primal");
  });
  test::run("kernel route equals the float64 reference (R², intercept)", [] {
    compare(make_data(64, {5, 7, 4}, 8, 1), RidgeRoute::Kernel, true, false, false, "kernel");
  });
  test::run("kernel route, wide X (p > n), Pearson, standardised", [] {
    compare(make_data(36, {30, 22}, 6, 2), RidgeRoute::Kernel, true, true, true, "kernel-wide");
  });
  test::run("primal route without intercept, standardised", [] {
    compare(make_data(60, {6, 3}, 5, 3), RidgeRoute::Primal, false, true, false, "primal-noint");
  });
  test::run("kernel route without intercept", [] {
    compare(make_data(40, {6, 9}, 5, 4), RidgeRoute::Kernel, false, false, false, "kernel-noint");
  });

  test::run("targets varying only a little around a large level are scored like any other, both routes", [] {
    // 1000 + the target at a relative SD of 7.5e-6, 3e-6 or 7.5e-7 (cycling): the old constant-target
    // rule (relative SD 1e-5) scored them 0 for every candidate.
    Data d = make_data(64, {5, 7, 4}, 8, 1);
    const double rsd[] = {7.5e-6, 3e-6, 7.5e-7};
    for (long j = 0; j < d.t; ++j) {
      double m = 0, v = 0;
      for (long i = 0; i < d.n; ++i) m += d.y[i * d.t + j] / static_cast<double>(d.n);
      for (long i = 0; i < d.n; ++i) v += (d.y[i * d.t + j] - m) * (d.y[i * d.t + j] - m) / static_cast<double>(d.n);
      for (long i = 0; i < d.n; ++i)
        d.y[i * d.t + j] = static_cast<float>(1000.0 + (d.y[i * d.t + j] - m) * rsd[j % 3] * 1000.0 / std::sqrt(v));
    }
    for (auto route : {RidgeRoute::Primal, RidgeRoute::Kernel})
      for (bool pearson : {false, true}) compare(d, route, true, false, pearson, "large level");
  });

  test::run("float32 eigendecompositions agree with float64 on the choices", [] {
    Data d = make_data(80, {8, 12}, 9, 5);
    BandedRidgeOptions o;
    o.band_sizes = {8, 12};
    o.alphas = {1, 10, 100, 1000};
    o.n_iter = 9;
    o.folds = folds_of(d.n, 5);
    o.n_folds = 5;
    BandedRidgeResult r64, r32;
    for (auto route : {RidgeRoute::Primal, RidgeRoute::Kernel}) {
      o.route = route;
      o.eig_precision = EigPrecision::Float64;
      r64 = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      o.eig_precision = EigPrecision::Float32;
      r32 = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      for (long j = 0; j < d.t; ++j) CHECK_NEAR(r32.best_scores[j], r64.best_scores[j], 2e-3);
    }
  });

  test::run("batched targets give the same result as one batch", [] {
    Data d = make_data(50, {4, 6}, 11, 6);
    BandedRidgeOptions o;
    o.band_sizes = {4, 6};
    o.alphas = {1, 10, 100};
    o.n_iter = 5;
    o.folds = folds_of(d.n, 3);
    o.n_folds = 3;
    for (auto route : {RidgeRoute::Primal, RidgeRoute::Kernel}) {
      o.route = route;
      o.target_batch = 0;
      BandedRidgeResult a = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      o.target_batch = 3;
      BandedRidgeResult b = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      CHECK(b.info.n_batches == 4);
      CHECK(a.best_gamma == b.best_gamma);
      double err = 0;
      for (std::size_t q = 0; q < a.coef.size(); ++q) err = std::max(err, static_cast<double>(std::fabs(a.coef[q] - b.coef[q])));
      CHECK(err < 1e-4);
    }
  });

  test::run("the search recovers the band each target was built from", [] {
    // Two bands of equal size; targets 0,3,6,.. use band 0, 1,4,7,.. band 1 (2,5,8 mix both).
    Data d = make_data(300, {12, 12}, 24, 7);
    BandedRidgeOptions o;
    o.band_sizes = {12, 12};
    o.alphas = {1, 10, 100, 1000, 1e4};
    o.n_iter = 30;
    o.folds = folds_of(d.n, 5);
    o.n_folds = 5;
    BandedRidgeResult r = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    int right = 0, total = 0;
    for (long j = 0; j < d.t; ++j) {
      const long which = j % 3;
      if (which == 2) continue;
      const double g0 = r.gammas[r.best_gamma[j] * 2];
      ++total;
      right += which == 0 ? g0 > 0.8 : g0 < 0.2;
    }
    CHECK(right == total);
  });

  test::run("memory: at any budget the plan accepts, the fit runs and its peak stays within the plan, both routes", [] {
    // Kernel (n_t < p) and primal (n_t > p) shapes, more folds than alphas (the batch loader's
    // uploads of each fold's training means), several candidates so that targets refit in groups.
    // The plan's 1 MiB reserve is for small allocations (alphas, eigenvalues, band weights: a few KiB
    // here), so the peak must stay within the plan less most of it: a buffer the plan leaves out
    // cannot hide in the reserve at these small shapes.
    struct Shape {
      RidgeRoute route;
      long n;
      std::vector<long> bands;
    };
    for (const Shape& s : {Shape{RidgeRoute::Kernel, 48, {1200, 800}}, Shape{RidgeRoute::Primal, 150, {6, 9}}}) {
      Data d = make_data(s.n, s.bands, 40, 12);
      BandedRidgeOptions o;
      for (long b : s.bands) o.band_sizes.push_back(b);
      o.alphas = {1, 100};
      o.n_iter = 6;
      o.folds = folds_of(d.n, 6);
      o.n_folds = 6;
      o.standardize = true;
      o.route = s.route;
      const BandedRidgeResult whole = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      CHECK(whole.info.n_batches == 1);
      const double per_target = static_cast<double>(whole.info.batch_bytes) / static_cast<double>(whole.info.target_batch);
      const RidgeCostEstimate plan = banded_ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o);
      CHECK(plan.route == whole.info.solver);
      CHECK(plan.route == (s.route == RidgeRoute::Kernel ? "per-fold-kernel" : "per-fold-primal"));
      CHECK(plan.fixed_bytes == whole.info.fixed_bytes && plan.n_batches == 1);
      CHECK(plan.flops > 0);
      for (const long batch : {1L, 4L, 13L, 40L}) {
        o.memory_budget = whole.info.fixed_bytes + static_cast<std::size_t>(per_target * static_cast<double>(batch)) + 8;
        BandedRidgeResult r;
        std::string msg;
        const bool failed = test::throws([&] { r = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg);
        CHECK(!failed);
        if (failed) {
          std::fprintf(stderr, "  %s, budget %zu (%ld targets): %s\n", whole.info.solver.c_str(), o.memory_budget, batch, msg.c_str());
          continue;
        }
        const BandedRidgeInfo& i = r.info;
        std::printf("  %s, budget %zu: fixed %zu + %zu per batch of %lld (%lld batches), peak %zu\n", i.solver.c_str(), o.memory_budget,
                    i.fixed_bytes, i.batch_bytes, (long long)i.target_batch, (long long)i.n_batches, i.peak_bytes);
        // The cost estimate, from the shape alone, is the fit's own plan (standardised X: the Gram's trace is n·p).
        const RidgeCostEstimate e = banded_ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o);
        CHECK(e.route == i.solver);
        CHECK(e.fits);
        CHECK(e.fixed_bytes == i.fixed_bytes);
        CHECK(e.batch_bytes == i.batch_bytes);
        CHECK(e.budget_bytes == i.budget_bytes);
        CHECK(e.target_batch == i.target_batch);
        CHECK(e.n_batches == i.n_batches);
        CHECK(i.target_batch == batch);
        CHECK(i.fixed_bytes == whole.info.fixed_bytes);
        CHECK(i.peak_bytes + (std::size_t(1) << 20) - (std::size_t(64) << 10) <= i.fixed_bytes + i.batch_bytes);
        CHECK(r.best_gamma == whole.best_gamma);
        double err = 0, cmax = 0;
        for (std::size_t q = 0; q < whole.coef.size(); ++q) {
          err = std::max(err, static_cast<double>(std::fabs(r.coef[q] - whole.coef[q])));
          cmax = std::max(cmax, static_cast<double>(std::fabs(whole.coef[q])));
        }
        CHECK(err <= 1e-4 * cmax);
      }
      // Just below the fixed part plus one target: the estimate says so, and the fit refuses.
      o.memory_budget = plan.fixed_bytes + static_cast<std::size_t>(plan.bytes_per_target) - 1;
      CHECK(!banded_ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o).fits);
      std::string msg;
      CHECK(test::throws([&] { banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
      CHECK(msg.find("fixed footprint") != std::string::npos);
    }
    // Without a route or solver, the estimate takes the route the fit takes (kernel where n_t < p).
    {
      Data d = make_data(40, {60, 40}, 5, 13);
      BandedRidgeOptions o;
      o.band_sizes = {60, 40};
      o.alphas = {1, 10};
      o.n_iter = 3;
      o.folds = folds_of(d.n, 4);
      o.n_folds = 4;
      const BandedRidgeResult r = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      CHECK(banded_ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o).route == r.info.solver);
      CHECK(r.info.solver == "per-fold-kernel");
    }
  });

  test::run("repeated candidates are searched once, with the results of searching each", [] {
    // One band: every draw is γ = 1 (variance partitioning's leave-one-out fits of two spaces searched
    // the same γ nIter times). The fit decomposes each fold and the refit once, and equals the fit of
    // one candidate; every row of gamma_scores is the first's, and the first is chosen.
    const int k = 4;
    Data d = make_data(64, {9}, 6, 9);
    BandedRidgeOptions o;
    o.band_sizes = {9};
    o.alphas = {0.3, 3, 30, 300};
    o.folds = folds_of(d.n, k);
    o.n_folds = k;
    o.eig_precision = EigPrecision::Float64;
    for (auto route : {RidgeRoute::Primal, RidgeRoute::Kernel}) {
      o.route = route;
      o.n_iter = 40;
      const BandedRidgeResult many = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      CHECK(many.info.n_gammas == 40);
      CHECK(many.info.eigendecompositions == k + 1);
      CHECK(many.info.refit_groups == 1);
      o.n_iter = 2;  // (one candidate would be plain RidgeCV's path; two equal ones take the banded path)
      const BandedRidgeResult two = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      for (long j = 0; j < d.t; ++j) {
        CHECK(many.best_gamma[j] == 0);
        CHECK(many.best_alpha[j] == two.best_alpha[j]);
        CHECK(many.best_scores[j] == two.best_scores[j]);
        for (int c = 1; c < 40; ++c) CHECK(many.gamma_scores[c * d.t + j] == many.gamma_scores[j]);
      }
      CHECK(std::vector<float>(many.coef.begin(), many.coef.end()) == std::vector<float>(two.coef.begin(), two.coef.end()));
    }
    // Two bands, a row given twice: the repeat is not decomposed, scores as its first, and is never chosen.
    Data d2 = make_data(64, {5, 7}, 8, 10);
    o.band_sizes = {5, 7};
    o.route = RidgeRoute::Kernel;
    o.gammas = {0.5, 0.5, 0.9, 0.1, 0.2, 0.8};
    const BandedRidgeResult once = banded_ridge_fit({d2.x.data(), d2.n, d2.p}, {d2.y.data(), d2.n, d2.t}, o);
    o.gammas = {0.5, 0.5, 0.9, 0.1, 0.5, 0.5, 0.2, 0.8, 0.9, 0.1};
    const BandedRidgeResult again = banded_ridge_fit({d2.x.data(), d2.n, d2.p}, {d2.y.data(), d2.n, d2.t}, o);
    CHECK(again.info.eigendecompositions == once.info.eigendecompositions);
    const int row_of[] = {0, 1, 2};  // `again`'s rows 0, 1, 3 are `once`'s 0, 1, 2
    for (long j = 0; j < d2.t; ++j) {
      const int b = again.best_gamma[j];
      CHECK(b == 0 || b == 1 || b == 3);
      CHECK(row_of[b == 3 ? 2 : b] == once.best_gamma[j]);
      CHECK(again.best_alpha[j] == once.best_alpha[j]);
      CHECK(again.gamma_scores[2 * d2.t + j] == again.gamma_scores[j]);
      CHECK(again.gamma_scores[4 * d2.t + j] == again.gamma_scores[1 * d2.t + j]);
    }
    CHECK(std::vector<float>(again.coef.begin(), again.coef.end()) == std::vector<float>(once.coef.begin(), once.coef.end()));
  });

  test::run("bad input: band sizes, gammas, folds", [] {
    Data d = make_data(20, {3, 3}, 2, 8);
    BandedRidgeOptions o;
    o.band_sizes = {3, 4};
    o.alphas = {1};
    o.folds = folds_of(d.n, 2);
    o.n_folds = 2;
    std::string msg;
    CHECK(test::throws([&] { banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
    CHECK(msg.find("sum to 7") != std::string::npos);
    o.band_sizes = {3, 3};
    o.gammas = {0.5, 0.5, 1.0};
    CHECK(test::throws([&] { banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
    o.gammas = {0.0, 0.0};
    CHECK(test::throws([&] { banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
    CHECK(msg.find("all zero") != std::string::npos);
    o.gammas = {};
    o.folds.pop_back();
    CHECK(test::throws([&] { banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
  });
  return test::finish();
}
