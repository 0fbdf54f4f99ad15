// RidgeCV against a plain float64 reference: closed-form ridge at fixed alpha, and brute-force
// K-fold CV (refit per fold with per-fold centring) for every route.
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "brainlatent/banded_ridge.h"
#include "brainlatent/error.h"
#include "brainlatent/ridge.h"
#include "test_util.h"

using namespace brainlatent;
using Vec = std::vector<double>;

namespace {

struct Data {
  long n, p, t;
  std::vector<float> x, y;
};

// Planted linear map plus noise; target j has its own SNR so the best alpha varies by target.
Data make_data(long n, long p, long t, unsigned seed) {
  test::Rng rng(seed);
  Data d{n, p, t, std::vector<float>(n * p), std::vector<float>(n * t)};
  const long f = 4;
  std::vector<double> lat(n * f), load(f * p), w(f * t);
  for (auto& v : lat) v = rng.normal();
  for (auto& v : load) v = rng.normal();
  for (auto& v : w) v = rng.normal();
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < p; ++j) {
      double s = 0;
      for (long k = 0; k < f; ++k) s += lat[i * f + k] * load[k * p + j];
      d.x[i * p + j] = static_cast<float>(0.5 * s + rng.normal() + 0.3 * (j % 3));
    }
  for (long j = 0; j < t; ++j) {
    double noise = 0.2 + 2.0 * j / t;
    for (long i = 0; i < n; ++i) {
      double s = 0;
      for (long k = 0; k < f; ++k) s += lat[i * f + k] * w[k * t + j];
      d.y[i * t + j] = static_cast<float>(s + noise * rng.normal() + 1.5);
    }
  }
  return d;
}

// Reference ridge on rows `rows` of (xs, y): returns W (p×t) and means used for prediction.
struct RefFit { Vec w, xm, ym; };
RefFit ref_fit(const Vec& xs, const Vec& y, long p, long t, const std::vector<long>& rows, double alpha, bool intercept) {
  const long m = static_cast<long>(rows.size());
  RefFit f{Vec(p * t), Vec(p, 0.0), Vec(t, 0.0)};
  if (intercept) {
    for (long r : rows) {
      for (long j = 0; j < p; ++j) f.xm[j] += xs[r * p + j] / m;
      for (long j = 0; j < t; ++j) f.ym[j] += y[r * t + j] / m;
    }
  }
  Vec g(p * p, 0.0), b(p * t, 0.0);
  for (long r : rows)
    for (long i = 0; i < p; ++i) {
      double xi = xs[r * p + i] - f.xm[i];
      for (long j = 0; j < p; ++j) g[i * p + j] += xi * (xs[r * p + j] - f.xm[j]);
      for (long j = 0; j < t; ++j) b[i * t + j] += xi * (y[r * t + j] - f.ym[j]);
    }
  for (long i = 0; i < p; ++i) g[i * p + i] += alpha;
  f.w = test::spd_solve(g, b, p, t);
  return f;
}

struct Ref {
  Vec x_std;          // globally standardised / centred X as the engine sees it
  Vec cv;             // A × t mean fold score
  std::vector<double> best;
};

Vec standardise(const Data& d, bool intercept, bool standardize) {
  Vec xs(d.x.begin(), d.x.end());
  for (long j = 0; j < d.p; ++j) {
    double m = 0, v = 0;
    for (long i = 0; i < d.n; ++i) m += d.x[i * d.p + j];
    m /= d.n;
    for (long i = 0; i < d.n; ++i) v += (d.x[i * d.p + j] - m) * (d.x[i * d.p + j] - m);
    double sd = std::sqrt(v / d.n);
    for (long i = 0; i < d.n; ++i) {
      double val = d.x[i * d.p + j];
      if (intercept) val -= m;
      if (standardize) val /= (sd > 0 ? sd : 1.0);
      xs[i * d.p + j] = val;
    }
  }
  return xs;
}

Ref brute_force(const Data& d, const std::vector<double>& alphas, const std::vector<int>& folds, int k, bool intercept,
                bool standardize, bool pearson) {
  Ref ref;
  ref.x_std = standardise(d, intercept, standardize);
  Vec y(d.y.begin(), d.y.end());
  const long A = static_cast<long>(alphas.size());
  ref.cv.assign(A * d.t, 0.0);
  for (int v = 0; v < k; ++v) {
    std::vector<long> tr, va;
    for (long i = 0; i < d.n; ++i) (folds[i] == v ? va : tr).push_back(i);
    for (long a = 0; a < A; ++a) {
      RefFit f = ref_fit(ref.x_std, y, d.p, d.t, tr, alphas[a], intercept);
      for (long j = 0; j < d.t; ++j) {
        // Two passes (fold means first): one-pass sums cancel catastrophically for a target far from 0.
        double sse = 0, sst = 0, ym = 0, pm = 0, cpp = 0, cpy = 0;
        Vec pred(va.size());
        for (std::size_t r = 0; r < va.size(); ++r) {
          const long i = va[r];
          pred[r] = f.ym[j];
          for (long q = 0; q < d.p; ++q) pred[r] += (ref.x_std[i * d.p + q] - f.xm[q]) * f.w[q * d.t + j];
          ym += y[i * d.t + j] / va.size();
          pm += pred[r] / va.size();
        }
        for (std::size_t r = 0; r < va.size(); ++r) {
          const double yy = y[va[r] * d.t + j];
          sse += (pred[r] - yy) * (pred[r] - yy);
          sst += (yy - ym) * (yy - ym);
          cpp += (pred[r] - pm) * (pred[r] - pm);
          cpy += (pred[r] - pm) * (yy - ym);
        }
        double s;
        if (pearson) {
          s = cpy / std::sqrt(cpp * sst);
        } else {
          s = 1 - sse / sst;
        }
        ref.cv[a * d.t + j] += s / k;
      }
    }
  }
  ref.best.resize(d.t);
  for (long j = 0; j < d.t; ++j) {
    long best = 0;
    for (long a = 1; a < A; ++a)
      if (ref.cv[a * d.t + j] > ref.cv[best * d.t + j]) best = a;
    ref.best[j] = alphas[best];
  }
  return ref;
}

// Each fold's number of samples, as the cost estimates take them.
std::vector<std::int64_t> sizes_of(const std::vector<std::int32_t>& folds, int k) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(k), 0);
  for (std::int32_t f : folds) s[static_cast<std::size_t>(f)]++;
  return s;
}

RidgeOptions options(const std::vector<double>& alphas, const std::vector<int>& folds, int k) {
  RidgeOptions o;
  o.alphas = alphas;
  o.folds.assign(folds.begin(), folds.end());
  o.n_folds = k;
  return o;
}

// Every route of the engine, forced by name.
const std::vector<std::string> kRoutes = ridge_route_names();
bool is_exact(const std::string& r) { return r.rfind("exact", 0) == 0; }
bool is_primal(const std::string& r) { return r.find("primal") != std::string::npos; }

void check_cv_matches(const Data& d, bool intercept, bool standardize, bool pearson, std::vector<int> folds, int k,
                      std::vector<double> alphas = {0.3, 3, 30, 300, 3000}, int expect_unresolved = -1,
                      double coef_tol = 1e-4) {
  Ref ref = brute_force(d, alphas, folds, k, intercept, standardize, pearson);
  for (const std::string& route : kRoutes) {
    for (int batch : {0, 3}) {
      RidgeOptions o = options(alphas, folds, k);
      o.solver = route;
      o.fit_intercept = intercept;
      o.standardize = standardize;
      o.score = pearson ? RidgeScore::Pearson : RidgeScore::R2;
      o.eig_precision = EigPrecision::Float64;
      o.target_batch = batch;
      RidgeResult res;
      std::string failure;
      // Every route, exact CV included, marks the alphas it cannot resolve and carries on (exact-primal
      // failed the fit with "(I − H) … is not positive definite" where the others did).
      if (test::throws([&] { res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &failure)) {
        std::fprintf(stderr, "route %s batch %d: %s\n", route.c_str(), batch, failure.c_str());
        CHECK(false);
        continue;
      }
      // Alphas the engine declares unresolved (NaN scores) are compared by exclusion: the best
      // alpha must be the reference's best among the resolved ones.
      const long A = static_cast<long>(alphas.size());
      std::vector<char> resolved(A, 1);
      for (long a = 0; a < A; ++a) resolved[a] = !std::isnan(res.cv_scores[a * d.t]);
      CHECK(res.info.unresolved_alphas == std::count(resolved.begin(), resolved.end(), 0));
      double maxdiff = 0;
      for (long a = 0; a < A; ++a)
        for (long j = 0; j < d.t; ++j)
          if (resolved[a]) maxdiff = std::max(maxdiff, std::fabs(ref.cv[a * d.t + j] - res.cv_scores[a * d.t + j]));
      if (maxdiff > 2e-4) std::fprintf(stderr, "route %s batch %d: max |cv - ref| = %g\n", route.c_str(), batch, maxdiff);
      CHECK(res.info.solver == route);
      CHECK(maxdiff <= 2e-4);
      long agree = 0;
      for (long j = 0; j < d.t; ++j) {
        long best = -1;
        for (long a = 0; a < A; ++a)
          if (resolved[a] && (best < 0 || ref.cv[a * d.t + j] > ref.cv[best * d.t + j])) best = a;
        agree += res.best_alphas[j] == static_cast<float>(alphas[best]);
      }
      CHECK(agree == d.t);
      if (expect_unresolved >= 0 && is_primal(route)) CHECK((res.info.unresolved_alphas > 0) == (expect_unresolved > 0));
      if (!is_primal(route)) CHECK(res.info.unresolved_alphas == 0);  // the kernel of n < p samples is not singular
      // Refit with each target's alpha equals the closed form on all samples.
      std::vector<long> all(d.n);
      for (long i = 0; i < d.n; ++i) all[i] = i;
      Vec y(d.y.begin(), d.y.end());
      double werr = 0, wmax = 0;
      for (double alpha : alphas) {
        RefFit f = ref_fit(ref.x_std, y, d.p, d.t, all, alpha, intercept);
        for (long j = 0; j < d.t; ++j) {
          if (res.best_alphas[j] != static_cast<float>(alpha)) continue;
          for (long q = 0; q < d.p; ++q) {
            werr = std::max(werr, std::fabs(f.w[q * d.t + j] - res.coef[q * d.t + j]));
            wmax = std::max(wmax, std::fabs(f.w[q * d.t + j]));
          }
          CHECK_NEAR(res.intercept[j], intercept ? f.ym[j] : 0.0, 1e-4);
        }
      }
      if (werr > coef_tol * wmax) std::fprintf(stderr, "route %s: coef max err %g (max |w| %g)\n", route.c_str(), werr, wmax);
      CHECK(werr <= coef_tol * wmax);
    }
  }
}

}  // namespace

int main() {
  test::run("cv scores and alphas match brute force, n > p, r2", [] {
    Data d = make_data(90, 12, 9, 1);
    check_cv_matches(d, true, false, false, contiguous_folds(d.n, 5), 5);
  });
  test::run("cv scores and alphas match brute force, n < p, r2, standardised", [] {
    Data d = make_data(50, 80, 7, 2);
    check_cv_matches(d, true, true, false, contiguous_folds(d.n, 4), 4);
  });
  test::run("tiny alphas: resolved ones match brute force, unresolved ones are declared and never chosen", [] {
    // p > n: the primal Gram is singular and its float32 null space is noise, so alphas below its
    // resolution are excluded; the kernel (n < p) is regular, every alpha is resolved and exact CV
    // runs its ill-conditioned (I − H) blocks in float64.
    Data d = make_data(40, 200, 4, 13);
    // float32 Grams of a singular primal problem: coefficients to 1e-3 of their scale
    check_cv_matches(d, true, false, false, contiguous_folds(d.n, 4), 4, {1e-3, 1e-2, 1, 10, 100}, 1, 1e-3);
  });
  test::run("exact-primal marks the alphas it cannot resolve unresolved, like the other routes", [] {
    // n < p (XᵀX singular); n > p with training folds of fewer samples than features (XᵀX of all
    // samples regular, every fold's singular); a feature held by one sample (only the fold holding
    // it sees it: its (I − H)_vv is singular as α → 0). exact-primal failed each fit at alpha 1e-8.
    const std::vector<double> alphas = {1e-8, 1e-2, 1, 100, 1e12};
    Data wide = make_data(47, 80, 4, 31), square = make_data(60, 55, 4, 32), dummy = make_data(60, 8, 4, 33);
    for (long i = 0; i < dummy.n; ++i) dummy.x[i * dummy.p] = i == 5 ? 1.0f : 0.0f;
    for (const Data* d : {&wide, &square, &dummy}) {
      const auto folds = contiguous_folds(d->n, 5);
      const std::vector<int> f(folds.begin(), folds.end());
      for (bool intercept : {true, false}) {
        RidgeOptions o = options(alphas, f, 5);
        o.fit_intercept = intercept;
        o.solver = "per-fold-primal";
        const RidgeResult pf = ridge_cv_fit({d->x.data(), d->n, d->p}, {d->y.data(), d->n, d->t}, o);
        o.solver = "exact-primal";
        RidgeResult ex;
        std::string msg;
        const bool threw = test::throws([&] { ex = ridge_cv_fit({d->x.data(), d->n, d->p}, {d->y.data(), d->n, d->t}, o); }, &msg);
        if (threw) std::fprintf(stderr, "exact-primal, %ld × %ld: %s\n", d->n, d->p, msg.c_str());
        CHECK(!threw);
        if (threw) continue;
        CHECK(pf.info.unresolved_alphas > 0);
        if (ex.info.unresolved_alphas != pf.info.unresolved_alphas) std::fprintf(stderr, "%ld x %ld ic %d: unresolved %d (res %g) vs per-fold %d (res %g)\n", d->n, d->p, (int)intercept, ex.info.unresolved_alphas, ex.info.alpha_resolution, pf.info.unresolved_alphas, pf.info.alpha_resolution);
        CHECK(ex.info.unresolved_alphas == pf.info.unresolved_alphas);
        for (std::size_t a = 0; a < alphas.size(); ++a) {
          CHECK(std::isnan(ex.cv_scores[a * d->t]) == std::isnan(pf.cv_scores[a * d->t]));
          for (long j = 0; j < d->t; ++j)
            if (!std::isnan(pf.cv_scores[a * d->t + j])) CHECK_NEAR(ex.cv_scores[a * d->t + j], pf.cv_scores[a * d->t + j], 5e-3);
        }
        for (long j = 0; j < d->t; ++j) CHECK(ex.best_alphas[j] == pf.best_alphas[j] && ex.best_alphas[j] > 1e-8f);
      }
    }
  });
  test::run("exact-kernel scores folds of several hundred rows in alpha chunks and refits in target blocks", [] {
    // Folds of 220 rows, scoring GEMMs of at most 660 rows (BRAINLATENT_SCORE_ROWS; the engine's
    // 2,048 would take every alpha at once here): the 7 alphas go 3, 2 and 2 (spread evenly, not 3, 3
    // and 1); the refit's dual coefficients (660 × 700 / 1,100 targets fit in the scoring output's
    // buffer, at least the p = 300 columns of X̃'s freed place) go in two blocks of 350 targets. Against
    // the per-fold kernel route, which stacks neither (its refit is checked against the closed form above).
    Data d = make_data(1100, 300, 700, 11);
    const std::vector<double> alphas = {1e2, 3e2, 1e3, 1e4, 1e5, 1e6, 1e7};
    const auto folds = contiguous_folds(d.n, 5);
    RidgeOptions ex = options(alphas, folds, 5), pf = ex;
    ex.solver = "exact-kernel";
    pf.solver = "per-fold-kernel";
    ex.eig_precision = pf.eig_precision = EigPrecision::Float64;  // (as check_cv_matches: the routes' float32 eigensolves differ by ~2e-4 here)
    const RidgeResult a = [&] {
      const test::ScopedEnv rows("BRAINLATENT_SCORE_ROWS", "660");
      return ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, ex);
    }();
    const RidgeResult b = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, pf);
    CHECK(a.info.solver == "exact-kernel" && a.info.n_batches == 1);
    double cvdiff = 0, wdiff = 0, wmax = 0;
    for (std::size_t i = 0; i < a.cv_scores.size(); ++i) cvdiff = std::max(cvdiff, std::fabs(double(a.cv_scores[i]) - b.cv_scores[i]));
    long agree = 0;
    for (long j = 0; j < d.t; ++j) agree += a.best_alphas[j] == b.best_alphas[j];
    for (long q = 0; q < d.p; ++q)
      for (long j = 0; j < d.t; ++j)
        if (a.best_alphas[j] == b.best_alphas[j]) {
          wdiff = std::max(wdiff, std::fabs(double(a.coef[q * d.t + j]) - b.coef[q * d.t + j]));
          wmax = std::max(wmax, std::fabs(double(b.coef[q * d.t + j])));
        }
    std::printf("  exact-kernel vs per-fold-kernel: max |cv diff| %.2e, alphas agree %ld/%ld, coef max diff %.2e (max |w| %.2e)\n", cvdiff,
                agree, d.t, wdiff, wmax);
    CHECK(cvdiff <= 2e-5);
    CHECK(agree >= d.t - 2);  // (near-ties may go either way in float32)
    CHECK(wdiff <= 1e-5 * wmax);
  });

  test::run("exact-kernel refit: X̃ freed after setup, formed again in panels of columns, gives the same coefficients", [] {
    // With one target batch the kernel refit's X̃ᵀ·dual forms X̃ from X a panel of columns at a time
    // (rows in fold order: the folds interleaved here; centred, standardised or not); with several
    // batches X̃ stays and the refit reads it. Panels of 7 columns, one of 45, and X̃ itself agree.
    Data d = make_data(120, 45, 9, 23);
    std::vector<int> folds(d.n);
    for (long i = 0; i < d.n; ++i) folds[i] = static_cast<int>((i * 7) % 5);
    for (const bool standardize : {false, true}) {
      RidgeOptions o = options({1e-1, 1, 10, 100}, folds, 5);
      o.solver = "exact-kernel";
      o.standardize = standardize;
      auto fit = [&](const char* panel_cols, int batch) {
        const test::ScopedEnv panels("BRAINLATENT_X_PANEL_COLS", panel_cols ? panel_cols : "0");  // (0: the engine's width)
        o.target_batch = batch;
        RidgeResult r = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
        CHECK(r.info.solver == "exact-kernel" && r.info.n_batches == (batch ? 3 : 1));
        return r;
      };
      const RidgeResult kept = fit(nullptr, 4), one = fit(nullptr, 0), panels = fit("7", 0);
      for (const RidgeResult* r : {&one, &panels}) {
        double diff = 0, wmax = 0;
        for (std::size_t i = 0; i < kept.coef.size(); ++i) {
          diff = std::max(diff, std::fabs(double(kept.coef[i]) - r->coef[i]));
          wmax = std::max(wmax, std::fabs(double(kept.coef[i])));
        }
        CHECK(kept.best_alphas == r->best_alphas);
        CHECK(wmax > 0 && diff <= 1e-6 * wmax);
      }
    }
  });

  test::run("auto route: training folds with fewer samples than features take the kernel route", [] {
    // n 60 > p 55 but each training fold has 48 samples: the primal problem of every fold is
    // singular, and the exact primal route (once chosen here) gave CV scores 1e-2 off at alpha 1e-3.
    Data d = make_data(60, 55, 6, 17);
    const std::vector<double> alphas = {1e-3, 1e-2, 1e-1, 1, 10};
    const std::vector<int> folds = contiguous_folds(d.n, 5);
    Ref ref = brute_force(d, alphas, folds, 5, true, false, false);
    RidgeOptions o = options(alphas, folds, 5);
    RidgeResult res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    CHECK(res.info.route == "kernel");
    double maxdiff = 0;
    for (long a = 0; a < static_cast<long>(alphas.size()); ++a)
      for (long j = 0; j < d.t; ++j)
        if (!std::isnan(res.cv_scores[a * d.t + j])) maxdiff = std::max(maxdiff, std::fabs(ref.cv[a * d.t + j] - res.cv_scores[a * d.t + j]));
    if (maxdiff > 2e-4) std::fprintf(stderr, "near-square auto route %s: max |cv - ref| = %g\n", res.info.solver.c_str(), maxdiff);
    CHECK(maxdiff <= 2e-4);
    // forcing the primal space is still honoured
    o.route = RidgeRoute::Primal;
    CHECK(ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o).info.route == "primal");
  });
  test::run("pearson scoring matches brute force", [] {
    Data d = make_data(70, 15, 6, 3);
    check_cv_matches(d, true, true, true, contiguous_folds(d.n, 5), 5);
  });
  test::run("pearson at strong shrinkage matches brute force on the per-fold routes, which auto takes under pearson", [] {
    // alpha far above the Gram's eigenvalues (~1e2 here): held-out predictions ~1e-8 of y's level. One-pass moments
    // of the prediction plus the training mean cancelled to nothing (r 0.004 for 0.736 at α/λ = 1e10), and the exact
    // routes' y − e keeps only the first digits of such predictions (0.1–1 off): auto must not choose them.
    Data d = make_data(40, 5, 4, 11);
    const std::vector<double> alphas = {1e1, 1e4, 1e7, 1e10};
    const std::vector<int> folds = contiguous_folds(d.n, 4);
    const Ref ref = brute_force(d, alphas, folds, 4, true, false, true);
    for (const std::string solver : {"per-fold-primal", "per-fold-kernel", ""}) {
      RidgeOptions o = options(alphas, folds, 4);
      o.solver = solver;
      o.score = RidgeScore::Pearson;
      const RidgeResult res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      double maxdiff = 0;
      for (std::size_t i = 0; i < ref.cv.size(); ++i) maxdiff = std::max(maxdiff, std::fabs(ref.cv[i] - res.cv_scores[i]));
      std::printf("  %s: route %s, max |cv - ref| = %.2e\n", solver.empty() ? "auto" : solver.c_str(), res.info.solver.c_str(), maxdiff);
      CHECK(maxdiff <= 2e-4);
      CHECK(res.info.cv_method == "per-fold");
    }
    // Where the exact route is the cheaper (n < p): auto takes it under R², which reads e itself, not under Pearson.
    Data wide = make_data(60, 200, 4, 12);
    RidgeOptions o = options(alphas, contiguous_folds(wide.n, 4), 4);
    CHECK(ridge_cv_fit({wide.x.data(), wide.n, wide.p}, {wide.y.data(), wide.n, wide.t}, o).info.solver == "exact-kernel");
    o.score = RidgeScore::Pearson;
    CHECK(ridge_cv_fit({wide.x.data(), wide.n, wide.p}, {wide.y.data(), wide.n, wide.t}, o).info.solver == "per-fold-kernel");
  });
  test::run("no intercept matches brute force", [] {
    Data d = make_data(60, 10, 5, 4);
    check_cv_matches(d, false, false, false, contiguous_folds(d.n, 3), 3);
  });
  test::run("grouped folds keep each group in one fold and match brute force", [] {
    Data d = make_data(64, 9, 5, 5);
    std::vector<std::int32_t> groups(d.n);
    for (long i = 0; i < d.n; ++i) groups[i] = static_cast<std::int32_t>((i * 7) % 16);  // 16 groups, interleaved
    auto folds = group_folds(groups, 4);
    for (long i = 0; i < d.n; ++i)
      for (long j = 0; j < d.n; ++j)
        if (groups[i] == groups[j]) CHECK(folds[i] == folds[j]);
    std::vector<int> f(folds.begin(), folds.end());
    for (int v = 0; v < 4; ++v) CHECK(std::count(f.begin(), f.end(), v) > 0);
    check_cv_matches(d, true, false, false, f, 4);
  });
  test::run("group folds stay whole and non-empty with very unequal groups", [] {
    std::vector<std::int32_t> groups(50, 7);
    for (int g : {3, 9, 1}) groups.push_back(g);
    auto f = group_folds(groups, 4);
    for (int v = 0; v < 4; ++v) CHECK(std::count(f.begin(), f.end(), v) > 0);
    for (size_t i = 1; i < 50; ++i) CHECK(f[i] == f[0]);
    std::string msg;
    CHECK(test::throws([&] { group_folds({1, 1, 2, 2}, 3); }, &msg));
    CHECK(msg.find("2 distinct groups cannot fill 3 folds") != std::string::npos);
  });
  test::run("contiguous folds follow KFold sizes", [] {
    auto f = contiguous_folds(11, 3);
    CHECK(std::count(f.begin(), f.end(), 0) == 4);
    CHECK(std::count(f.begin(), f.end(), 1) == 4);
    CHECK(std::count(f.begin(), f.end(), 2) == 3);
    CHECK(f[3] == 0 && f[4] == 1 && f[10] == 2);
  });
  test::run("float32 decomposition stays close to float64", [] {
    Data d = make_data(200, 40, 20, 6);
    auto folds = contiguous_folds(d.n, 5);
    std::vector<int> f(folds.begin(), folds.end());
    for (const std::string& route : kRoutes) {
      RidgeOptions o32 = options({1, 10, 100, 1000, 1e4}, f, 5), o64 = o32;
      o32.solver = o64.solver = route;
      o32.eig_precision = EigPrecision::Float32;
      o64.eig_precision = EigPrecision::Float64;
      auto a = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o32);
      auto b = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o64);
      double maxdiff = 0;
      for (size_t i = 0; i < a.cv_scores.size(); ++i) maxdiff = std::max(maxdiff, (double)std::fabs(a.cv_scores[i] - b.cv_scores[i]));
      std::printf("  %s: max |cv32 - cv64| = %.2e\n", route.c_str(), maxdiff);
      CHECK(maxdiff < 1e-3);
    }
  });
  test::run("exact-kernel in float32: the tridiagonal basis's coefficients stay near a float64 fit's, the eigenbasis's less so", [] {
    // (a bulk of close eigenvalues under a few large ones: float32 eigenvectors there are poor, T + αI solves are not)
    const char* forced = std::getenv("BRAINLATENT_EXACT_BASIS");
    if (forced && std::strcmp(forced, "eigen") == 0) {
      std::printf("  (the eigenbasis is forced for this run: nothing to compare)\n");
      return;
    }
    Data d = make_data(400, 1000, 40, 9);
    {  // a few strong directions over the bulk (λ_max ~1e3 × the bulk's), and targets spread over every
       // direction of X (a random map), not only its few large ones
      test::Rng rng(10);
      std::vector<double> lat(static_cast<size_t>(d.n * 8)), load(static_cast<size_t>(8 * d.p));
      for (auto& v : lat) v = rng.normal();
      for (auto& v : load) v = 2 * rng.normal();
      for (long i = 0; i < d.n; ++i)
        for (long k = 0; k < d.p; ++k) {
          double s = 0;
          for (long q = 0; q < 8; ++q) s += lat[i * 8 + q] * load[q * d.p + k];
          d.x[i * d.p + k] += static_cast<float>(s);
        }
      std::vector<double> w(static_cast<size_t>(d.p * d.t));
      for (auto& v : w) v = rng.normal();
      for (long i = 0; i < d.n; ++i)
        for (long j = 0; j < d.t; ++j) {
          double s = 0;
          for (long k = 0; k < d.p; ++k) s += d.x[i * d.p + k] * w[k * d.t + j];
          d.y[i * d.t + j] = static_cast<float>(s + 10 * rng.normal());
        }
    }
    auto folds = contiguous_folds(d.n, 5);
    std::vector<int> f(folds.begin(), folds.end());
    RidgeOptions o32 = options({1, 10, 100, 1000, 1e4}, f, 5), o64 = o32;
    o32.solver = o64.solver = "exact-kernel";
    o32.eig_precision = EigPrecision::Float32;
    o64.eig_precision = EigPrecision::Float64;
    auto b = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o64);
    auto off = [&](const RidgeResult& a) {
      double m = 0, scale = 0;
      for (size_t i = 0; i < b.coef.size(); ++i) m = std::max(m, (double)std::fabs(a.coef[i] - b.coef[i])), scale = std::max(scale, (double)std::fabs(b.coef[i]));
      return m / scale;
    };
    const double tri = off(ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o32));
    setenv("BRAINLATENT_EXACT_BASIS", "eigen", 1);
    const double eig = off(ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o32));
    unsetenv("BRAINLATENT_EXACT_BASIS");
    std::printf("  coefficients off the float64 fit (max |diff| / max |coef|): tridiagonal %.2e, eigenbasis %.2e\n", tri, eig);
    // (1.3e-4 and 1.7e-3 on a Zen 3 CPU)
    CHECK(tri < 5e-4);
    CHECK(tri < eig / 3);
  });
  test::run("auto precision: float32 unless the smallest alpha is below the float32 eigenvalue error", [] {
    Data d = make_data(120, 30, 4, 10);
    auto folds = contiguous_folds(d.n, 4);
    std::vector<int> f(folds.begin(), folds.end());
    for (const std::string& route : kRoutes) {
      RidgeOptions ok = options({1, 10, 100}, f, 4), tiny = options({1e-7, 1}, f, 4);
      ok.solver = tiny.solver = route;
      auto a = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, ok);
      CHECK(a.info.eig_precision == "float32");
      std::string msg;
      if (!is_exact(route)) {
        auto b = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, tiny);
        CHECK(b.info.eig_precision == "float64");
      } else if (test::throws([&] { ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, tiny); }, &msg)) {
        // Forced exact CV may find (I − H) singular at alpha 1e-7: a clear error, not a wrong answer.
        CHECK(msg.find("per-fold") != std::string::npos);
      }
      // On 'auto' the fit always succeeds: it falls back to the per-fold route if it must.
      RidgeOptions any = options({1e-7, 1}, f, 4);
      any.route = is_primal(route) ? RidgeRoute::Primal : RidgeRoute::Kernel;
      auto c = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, any);
      CHECK(c.info.eig_precision == "float64");
    }
  });
  test::run("auto precision's float64 redo gives the forced float64 fit (the decomposed matrix formed again)", [] {
    // λ_max ≈ 1e4 here: ε·λ_max exceeds a tenth of alpha 1e-3, so 'auto' decomposes in float32, finds
    // that, and redoes the decomposition in float64 from the Gram (the exact kernel route: from its
    // deflated block, formed again in place); with its power-iteration bound it goes to float64 first.
    Data d = make_data(120, 30, 6, 12);
    auto folds = contiguous_folds(d.n, 4);
    std::vector<int> f(folds.begin(), folds.end());
    for (const std::string& route : kRoutes) {
      RidgeOptions au = options({1e-3, 1, 100}, f, 4), f64 = au;
      au.solver = f64.solver = route;
      f64.eig_precision = EigPrecision::Float64;
      std::string m1, m2;
      RidgeResult a, b;
      // (without the power-iteration bound, which would send it to float64 straight away)
      setenv("BRAINLATENT_EIG_PRECHECK", "0", 1);
      const bool t1 = test::throws([&] { a = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, au); }, &m1);
      unsetenv("BRAINLATENT_EIG_PRECHECK");
      const bool t2 = test::throws([&] { b = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, f64); }, &m2);
      CHECK(t1 == t2);
      if (t1 || t2) continue;
      CHECK(a.info.eig_precision == "float64");
      CHECK(a.info.float32_redone == 1);
      // With the bound, the float32 decomposition is never made; the fit is the same.
      RidgeResult c = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, au);
      CHECK(c.info.eig_precision == "float64");
      CHECK(c.info.float32_redone == 0);
      CHECK(c.cv_scores.size() == a.cv_scores.size());
      for (size_t i = 0; i < a.cv_scores.size(); ++i) CHECK(std::isnan(a.cv_scores[i]) ? std::isnan(c.cv_scores[i]) : a.cv_scores[i] == c.cv_scores[i]);
      double maxdiff = 0;
      for (size_t i = 0; i < a.cv_scores.size(); ++i)
        if (!std::isnan(a.cv_scores[i]) || !std::isnan(b.cv_scores[i])) maxdiff = std::max(maxdiff, (double)std::fabs(a.cv_scores[i] - b.cv_scores[i]));
      std::printf("  %s: max |cv auto - cv float64| = %.2e\n", route.c_str(), maxdiff);
      CHECK(maxdiff < 1e-6);
      CHECK(a.best_alphas == b.best_alphas);
    }
  });
  test::run("bad input is a clear error", [] {
    Data d = make_data(20, 4, 3, 7);
    auto folds = contiguous_folds(d.n, 4);
    std::vector<int> f(folds.begin(), folds.end());
    std::string msg;
    auto fit = [&](RidgeOptions o, const std::vector<float>& x, const std::vector<float>& y, long n, long p, long t) {
      return test::throws([&] { ridge_cv_fit({x.data(), n, p}, {y.data(), n, t}, o); }, &msg);
    };
    CHECK(fit(options({1, -1}, f, 4), d.x, d.y, d.n, d.p, d.t));
    CHECK(msg.find("alpha") != std::string::npos);
    CHECK(fit(options({1}, f, 4), d.x, d.y, d.n - 1, d.p, d.t) == true);
    auto bad = d.x;
    bad[5 * d.p + 2] = NAN;
    CHECK(fit(options({1}, f, 4), bad, d.y, d.n, d.p, d.t));
    CHECK(msg.find("NaN") != std::string::npos && msg.find("row 5") != std::string::npos);
    auto y = d.y;
    y[1] = INFINITY;
    CHECK(fit(options({1}, f, 4), d.x, y, d.n, d.p, d.t));
    CHECK(msg.find("Y contains Inf") != std::string::npos);
    CHECK(test::throws([&] { contiguous_folds(3, 5); }, &msg));
    CHECK(msg.find("3 samples") != std::string::npos);
    RidgeOptions o = options({1}, f, 4);
    o.folds.pop_back();
    CHECK(fit(o, d.x, d.y, d.n, d.p, d.t));
    CHECK(msg.find("fold labels") != std::string::npos);
  });
  test::run("a target constant up to float32 rounding scores 0, not a huge negative R²", [] {
    Data d = make_data(60, 8, 3, 12);
    for (long i = 0; i < d.n; ++i) d.y[i * d.t + 1] = i % 7 == 0 ? std::nextafter(1.7f, 2.0f) : 1.7f;
    auto folds = contiguous_folds(d.n, 5);
    for (const std::string& route : kRoutes) {
      for (bool pearson : {false, true}) {
        RidgeOptions o = options({0.1, 10, 1000}, std::vector<int>(folds.begin(), folds.end()), 5);
        o.solver = route;
        o.score = pearson ? RidgeScore::Pearson : RidgeScore::R2;
        auto res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
        for (int a = 0; a < 3; ++a) CHECK(res.cv_scores[a * d.t + 1] == 0.0f);
        CHECK(res.best_scores[0] > 0.1f);
      }
    }
  });
  test::run("targets varying only a little around a large level are scored, not taken for constant", [] {
    // 1000 + a signal with a relative SD of 1e-4, 7.5e-6, 3e-6 and 7.5e-7 (the last ~12 float32 ulps of
    // the level): the old rule (relative SD 1e-5) scored the last three 0 at every alpha and chose the
    // largest. Y is centred in float64 before it is stored in float32, so they match the float64
    // reference as closely as any target does (2e-4 on the scores, 1e-4 on the coefficients).
    Data d = make_data(80, 10, 4, 21);
    const double rsd[] = {1e-4, 7.5e-6, 3e-6, 7.5e-7};
    for (long j = 0; j < d.t; ++j) {
      double m = 0, v = 0;
      for (long i = 0; i < d.n; ++i) m += d.y[i * d.t + j] / static_cast<double>(d.n);
      for (long i = 0; i < d.n; ++i) v += (d.y[i * d.t + j] - m) * (d.y[i * d.t + j] - m) / static_cast<double>(d.n);
      for (long i = 0; i < d.n; ++i)
        d.y[i * d.t + j] = static_cast<float>(1000.0 + (d.y[i * d.t + j] - m) * rsd[j] * 1000.0 / std::sqrt(v));
    }
    auto folds = contiguous_folds(d.n, 5);
    const std::vector<int> f(folds.begin(), folds.end());
    for (bool pearson : {false, true})
      for (bool standardize : {false, true}) check_cv_matches(d, true, standardize, pearson, f, 5);
    RidgeOptions o = options({0.3, 3, 30, 300, 3000}, f, 5);
    auto res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    for (long j = 0; j < d.t; ++j) CHECK(res.best_scores[j] > 0.1f && res.best_alphas[j] < 3000);
  });
  test::run("one constant-target rule: RidgeCV and banded ridge both score a float32-constant target 0", [] {
    Data d = make_data(60, 8, 3, 12);
    for (long i = 0; i < d.n; ++i) d.y[i * d.t + 1] = i % 7 == 0 ? std::nextafter(1.7f, 2.0f) : 1.7f;
    auto folds = contiguous_folds(d.n, 5);
    RidgeOptions o = options({0.1, 10, 1000}, std::vector<int>(folds.begin(), folds.end()), 5);
    BandedRidgeOptions b;
    b.band_sizes = {3, 5};
    b.alphas = o.alphas;
    b.n_iter = 4;
    b.folds = o.folds;
    b.n_folds = 5;
    for (bool pearson : {false, true}) {
      o.score = b.score = pearson ? RidgeScore::Pearson : RidgeScore::R2;
      auto r = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      auto g = banded_ridge_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, b);
      CHECK(r.best_scores[1] == 0.0f);
      CHECK(g.best_scores[1] == r.best_scores[1]);
      for (long c = 0; c < g.info.n_gammas; ++c) CHECK(g.gamma_scores[c * d.t + 1] == 0.0f);
    }
  });
  test::run("an overflowing fit fails with NonFinite instead of returning NaN", [] {
    Data d = make_data(40, 6, 3, 14);
    auto folds = contiguous_folds(d.n, 4);
    RidgeOptions o = options({1, 10}, std::vector<int>(folds.begin(), folds.end()), 4);
    for (auto& v : d.x) v *= 1e30f;
    std::string msg;
    try {
      ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::NonFinite);
      msg = e.what();
    }
    CHECK(msg.find("overflowed float32") != std::string::npos);
    Data e = make_data(40, 6, 3, 14);
    for (auto& v : e.y) v *= 1e37f;
    bool nonfinite = false;
    try {
      ridge_cv_fit({e.x.data(), e.n, e.p}, {e.y.data(), e.n, e.t}, o);
    } catch (const Error& err) {
      nonfinite = err.code() == ErrorCode::NonFinite;
      std::printf("  Y ~1e37: %s\n", err.what());
    }
    CHECK(nonfinite);
  });
  test::run("memory budget: a fit below its fixed footprint is refused; one above stays within it", [] {
    Data d = make_data(300, 120, 400, 15);
    auto folds = contiguous_folds(d.n, 5);
    RidgeOptions o = options({1, 10, 100}, std::vector<int>(folds.begin(), folds.end()), 5);
    o.memory_budget = 100000;  // 0.1 MB: below X's copy alone
    std::string msg;
    bool oom = false;
    try {
      ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    } catch (const Error& e) {
      oom = e.code() == ErrorCode::OutOfMemory && e.oom_reason() == OomReason::Budget;  // deterministic: never worth a retry
      msg = e.what();
    }
    CHECK(oom && msg.find("fixed footprint") != std::string::npos);
    // The parts named add up to the footprint (the 1 MiB reserve was counted but not named).
    {
      std::printf("  %s\n", msg.c_str());
      std::vector<double> gibs;
      for (std::size_t at = msg.find(" GiB"); at != std::string::npos; at = msg.find(" GiB", at + 1)) {
        std::size_t b = at;
        while (b > 0 && (std::isdigit(static_cast<unsigned char>(msg[b - 1])) || msg[b - 1] == '.' || msg[b - 1] == 'e' || msg[b - 1] == '-'))
          --b;
        gibs.push_back(std::stod(msg.substr(b, at - b)));
      }
      // budget, footprint, its four parts, one target, the suggestion
      CHECK(gibs.size() == 8);
      CHECK(msg.find("a 1 MiB reserve for small allocations") != std::string::npos);
      if (gibs.size() == 8) {
        const double parts = gibs[2] + gibs[3] + gibs[4] + gibs[5];
        CHECK(std::fabs(parts - gibs[1]) <= 5e-3 * gibs[1]);  // (each printed to 3 significant digits)
      }
    }
    for (const std::string& route : kRoutes) {
      o.solver = route;
      o.memory_budget = 0;
      auto whole = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      // A budget of the fixed footprint plus ~50 targets: several batches, the same model.
      o.memory_budget = whole.info.fixed_bytes + whole.info.batch_bytes / whole.info.target_batch * 50;
      auto tight = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
      CHECK(tight.info.n_batches > 1);
      CHECK(tight.info.peak_bytes <= o.memory_budget);
      std::printf("  %s: fixed %zu B, peak %zu B of %zu B in %lld batches\n", route.c_str(), tight.info.fixed_bytes,
                  tight.info.peak_bytes, o.memory_budget, (long long)tight.info.n_batches);
      double diff = 0;
      for (size_t i = 0; i < whole.coef.size(); ++i) diff = std::max(diff, (double)std::fabs(whole.coef[i] - tight.coef[i]));
      CHECK(diff < 1e-5);
      CHECK(whole.best_alphas == tight.best_alphas);
    }
  });
  test::run("memory budget: high-leverage samples at small alphas (float64 factors kept) stay within the plan", [] {
    // Every 50th sample has one feature ~10⁴ times the rest: its (I − H)_vv blocks are too ill-conditioned for
    // float32 solves at the grid's small alphas, and the exact kernel route keeps float64 factors beside its
    // projections. The plan counted none: a budget of the plan's fixed part and a third of the targets failed
    // with OutOfMemory after the decomposition (a review's case, s34).
    const long n = 1000, p = 4000, t = 800;
    test::Rng rng(77);
    Data d{n, p, t, std::vector<float>(n * p), std::vector<float>(n * t)};
    for (auto& v : d.x) v = static_cast<float>(rng.normal());
    for (long i = 7; i < n; i += 50) d.x[i * p + (i % p)] += 9800.0f;
    const long f = 8;
    std::vector<double> lat(n * f), w(f * t);
    for (auto& v : lat) v = rng.normal();
    for (auto& v : w) v = rng.normal();
    for (long i = 0; i < n; ++i)
      for (long j = 0; j < t; ++j) {
        double s = 0;
        for (long q = 0; q < f; ++q) s += lat[i * f + q] * w[q * t + j];
        d.y[i * t + j] = static_cast<float>(s + rng.normal());
      }
    std::vector<double> alphas;
    for (int e = 0; e < 17; ++e) alphas.push_back(std::pow(10.0, 1 + 0.25 * e));
    auto folds = contiguous_folds(n, 5);
    RidgeOptions o = options(alphas, std::vector<int>(folds.begin(), folds.end()), 5);
    o.eig_precision = EigPrecision::Float32;
    auto whole = ridge_cv_fit({d.x.data(), n, p}, {d.y.data(), n, t}, o);
    CHECK(whole.info.solver == "exact-kernel");
    CHECK(whole.info.peak_bytes <= whole.info.fixed_bytes + whole.info.batch_bytes);
    o.memory_budget = whole.info.fixed_bytes + static_cast<std::size_t>(static_cast<double>(whole.info.batch_bytes) / whole.info.target_batch * (t / 3));
    bool ok = true;
    try {
      auto tight = ridge_cv_fit({d.x.data(), n, p}, {d.y.data(), n, t}, o);
      std::printf("  planned %zu B (fixed %zu), peak %zu B in %lld batches\n", o.memory_budget, tight.info.fixed_bytes, tight.info.peak_bytes,
                  (long long)tight.info.n_batches);
      CHECK(tight.info.n_batches > 1);
      CHECK(tight.info.peak_bytes <= o.memory_budget);
      CHECK(whole.best_alphas == tight.best_alphas);
      double diff = 0, scale = 0;
      for (size_t i = 0; i < whole.coef.size(); ++i) {
        diff = std::max(diff, (double)std::fabs(whole.coef[i] - tight.coef[i]));
        scale = std::max(scale, (double)std::fabs(whole.coef[i]));
      }
      CHECK(diff <= 1e-5 * scale);
    } catch (const Error& e) {
      std::printf("  %s\n", e.what());
      ok = false;
    }
    CHECK(ok);
  });
  test::run("a cost estimate takes the folds' sizes alone: no memory or time in the samples or features", [] {
    // 2^40 samples and features: a layout of the rows (8 bytes each) or a weight per feature would not fit in
    // memory, so an estimate that made either would throw here.
    const std::int64_t big = std::int64_t(1) << 40;
    RidgeOptions o;
    o.alphas = {1, 10};
    o.memory_budget = std::size_t(1) << 30;  // (without one, the default budget grows to fit)
    const RidgeCostEstimate e = ridge_cost_estimate(big, big, 1000, contiguous_fold_sizes(big, 5), o);
    CHECK(!e.fits && e.flops > 0 && !e.route.empty());
    // The sizes are those contiguous_folds makes, and they must add up to n.
    const std::vector<std::int64_t> sizes = contiguous_fold_sizes(17, 5);
    CHECK((sizes == std::vector<std::int64_t>{4, 4, 3, 3, 3}));
    CHECK((sizes_of(contiguous_folds(17, 5), 5) == sizes));
    for (const std::vector<std::int64_t>& bad : {std::vector<std::int64_t>{4, 4, 3, 3, 2}, std::vector<std::int64_t>{17, 0},
                                                 std::vector<std::int64_t>{9, 9}, std::vector<std::int64_t>{17}}) {
      bool refused = false;
      try {
        ridge_cost_estimate(17, 4, 3, bad, o);
      } catch (const Error&) {
        refused = true;
      }
      CHECK(refused);
    }
  });
  test::run("the cost estimate's memory plan is the one the fit makes, from the shape alone", [] {
    // Standardised X with an intercept (the Gram's trace is n·p: the plan is exact), and X as it is with a
    // fixed eig precision; every route; the default budget, one of a few batches, and one just too small.
    Data d = make_data(300, 120, 400, 17);
    auto folds = contiguous_folds(d.n, 5);
    for (const bool standardize : {true, false}) {
      for (const std::string& route : kRoutes) {
        RidgeOptions o = options({0.1, 10, 1000}, std::vector<int>(folds.begin(), folds.end()), 5);
        o.solver = route;
        o.standardize = standardize;
        if (!standardize) o.eig_precision = EigPrecision::Float64;
        const RidgeCostEstimate whole = ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o);
        CHECK(whole.fits && whole.n_batches == 1 && whole.target_batch == d.t);
        for (const std::size_t budget : {std::size_t(0), whole.fixed_bytes + static_cast<std::size_t>(whole.bytes_per_target * 90)}) {
          o.memory_budget = budget;
          const RidgeCostEstimate e = ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o);
          const RidgeResult r = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
          const RidgeFitInfo& i = r.info;
          std::printf("  %s%s, budget %zu: estimate fixed %zu + %zu per batch of %lld (%lld batches); fit %zu + %zu of %lld (%lld), peak %zu\n",
                      route.c_str(), standardize ? " standardised" : "", budget, e.fixed_bytes, e.batch_bytes, (long long)e.target_batch,
                      (long long)e.n_batches, i.fixed_bytes, i.batch_bytes, (long long)i.target_batch, (long long)i.n_batches, i.peak_bytes);
          CHECK(e.route == i.solver);
          CHECK(e.fixed_bytes == i.fixed_bytes);
          CHECK(e.batch_bytes == i.batch_bytes);
          CHECK(e.budget_bytes == i.budget_bytes);
          CHECK(e.target_batch == i.target_batch);
          CHECK(e.n_batches == i.n_batches);
          CHECK(e.x_copy_bytes == static_cast<std::size_t>(4 * d.n * d.p));
          CHECK(e.route_bytes > 0 && e.route_bytes < e.fixed_bytes);
          CHECK(i.peak_bytes <= e.fixed_bytes + e.batch_bytes);
          if (budget) CHECK(e.n_batches > 1);
        }
        // Just below the fixed part plus one target: the estimate says so, and the fit refuses.
        o.memory_budget = whole.fixed_bytes + static_cast<std::size_t>(whole.bytes_per_target) - 1;
        const RidgeCostEstimate tight = ridge_cost_estimate(d.n, d.p, d.t, sizes_of(o.folds, o.n_folds), o);
        CHECK(!tight.fits);
        bool oom = false;
        try {
          ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
        } catch (const Error& err) {
          oom = err.code() == ErrorCode::OutOfMemory && err.oom_reason() == OomReason::Budget;
        }
        CHECK(oom);
      }
    }
  });
  test::run("cancel stops a fit between its large operations, not only between target batches", [] {
    Data d = make_data(400, 300, 8, 16);
    auto folds = contiguous_folds(d.n, 5);
    for (const std::string& route : kRoutes) {
      RidgeOptions o = options({1, 10, 100}, std::vector<int>(folds.begin(), folds.end()), 5);
      o.solver = route;
      std::atomic<bool> cancel{false};
      double last = 0;
      std::vector<std::string> stages;
      o.cancel = &cancel;
      // Cancel at the first report after the start: everything later is one large operation away.
      o.progress = [&](double f, const std::string& stage) {
        last = f;
        stages.push_back(stage);
        if (f > 0) cancel = true;
      };
      std::string msg;
      CHECK(test::throws([&] { ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
      CHECK(msg.find("cancelled") != std::string::npos);
      CHECK(last < 0.3);  // one batch of 8 targets: a batch-level check would only stop at the end
      CHECK(stages.back() != "cv+refit");
    }
  });
  test::run("cancel flag stops the fit", [] {
    Data d = make_data(40, 5, 4, 8);
    auto folds = contiguous_folds(d.n, 4);
    RidgeOptions o = options({1, 10}, std::vector<int>(folds.begin(), folds.end()), 4);
    std::atomic<bool> cancel{true};
    o.cancel = &cancel;
    std::string msg;
    CHECK(test::throws([&] { ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o); }, &msg));
    CHECK(msg.find("cancelled") != std::string::npos);
  });
  test::run("predict applies standardisation and intercept", [] {
    Data d = make_data(50, 6, 3, 9);
    auto folds = contiguous_folds(d.n, 5);
    RidgeOptions o = options({10}, std::vector<int>(folds.begin(), folds.end()), 5);
    o.standardize = true;
    auto res = ridge_cv_fit({d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o);
    Vec xs = standardise(d, true, true);
    std::vector<long> all(d.n);
    for (long i = 0; i < d.n; ++i) all[i] = i;
    RefFit f = ref_fit(xs, Vec(d.y.begin(), d.y.end()), d.p, d.t, all, 10, true);
    std::vector<float> out(d.n * d.t);
    ridge_predict({d.x.data(), d.n, d.p}, res.coef.data(), d.t, res.intercept.data(), res.x_mean.data(), res.x_scale.data(),
                  {out.data(), d.n, d.t});
    for (long i = 0; i < d.n; ++i)
      for (long j = 0; j < d.t; ++j) {
        double pred = f.ym[j];
        for (long q = 0; q < d.p; ++q) pred += xs[i * d.p + q] * f.w[q * d.t + j];
        CHECK_NEAR(out[i * d.t + j], pred, 1e-3);
      }
  });
  test::run("predict's GEMMs are bounded in flops whatever the number of targets", [] {
    // (the reviewer's 5,000 × 3,000 → 3,000 and an NSD decoder, 15,724 features → 16,384 targets: row
    // blocks sized by X's bytes alone were one 90 GFLOP and 550 GFLOP call, which no abort could stop)
    for (const auto& [n, p, t] : std::vector<std::array<std::int64_t, 3>>{{5000, 3000, 3000}, {8859, 15724, 16384}, {500, 400, 2000}, {1, 200000, 50000}}) {
      const PredictTiling tile = predict_tiling(n, p, t);
      CHECK(tile.rows >= 1 && tile.rows <= n && tile.targets >= 1 && tile.targets <= t);
      CHECK(2.0 * tile.rows * p * tile.targets <= 8e9 || (tile.rows == 1 && tile.targets == 1));
      CHECK(tile.rows * p * 4 <= (64ll << 20) || tile.rows == 1);
    }
    // a small predict is one GEMM; the reviewer's shape is many, each square-ish (neither side starved)
    const PredictTiling small = predict_tiling(500, 400, 2000), big = predict_tiling(5000, 3000, 3000), nsd = predict_tiling(8859, 15724, 16384);
    CHECK(small.rows == 500 && small.targets == 2000);
    CHECK(big.rows < 5000 && big.rows >= 512 && big.targets >= 512);
    CHECK(nsd.rows >= 256 && nsd.targets >= 256);
  });
  test::run("predict in tiles equals the product in one piece, and reports its progress tile by tile", [] {
    const long n = 37, p = 11, t = 23;
    test::Rng rng(5);
    std::vector<float> x(n * p), w(p * t), b(t), mean(p), scale(p);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    for (auto& v : w) v = static_cast<float>(rng.normal());
    for (auto& v : b) v = static_cast<float>(rng.normal());
    for (auto& v : mean) v = static_cast<float>(rng.normal());
    for (auto& v : scale) v = static_cast<float>(0.5 + std::fabs(rng.normal()));
    // tiles of 5 × 7 (70 elements of C a call: 2·70·11 flops)
    const double before = set_predict_block_flops(2.0 * 11 * 35);
    const PredictTiling tile = predict_tiling(n, p, t);
    CHECK(tile.rows * tile.targets <= 35 && tile.rows > 1 && tile.targets > 1);
    std::vector<float> out(n * t, -1.0f);
    std::vector<double> seen;
    ridge_predict({x.data(), n, p}, w.data(), t, b.data(), mean.data(), scale.data(), {out.data(), n, t}, nullptr,
                  [&](double f) { seen.push_back(f); });
    set_predict_block_flops(before);
    const long tiles = ((n + tile.rows - 1) / tile.rows) * ((t + tile.targets - 1) / tile.targets);
    CHECK(static_cast<long>(seen.size()) == tiles);
    for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
    CHECK_NEAR(seen.back(), 1.0, 1e-12);
    for (long i = 0; i < n; ++i)
      for (long j = 0; j < t; ++j) {
        double ref = b[j];
        for (long q = 0; q < p; ++q) ref += (static_cast<double>(x[i * p + q]) - mean[q]) / scale[q] * w[q * t + j];
        CHECK_NEAR(out[i * t + j], ref, 1e-4);
      }
  });
  test::run("a cancel set while predict runs stops it before its next tile, and one set in its last tile still stops it", [] {
    const long n = 40, p = 6, t = 30;
    std::vector<float> x(n * p, 0.5f), w(p * t, 0.25f), b(t, 1.0f), mean(p, 0.0f), scale(p, 1.0f);
    const double before = set_predict_block_flops(2.0 * 6 * 100);  // tiles of 10 × 10: 12 of them
    std::atomic<bool> cancel{false};
    std::vector<float> out(n * t, -7.0f);
    int tiles_done = 0;
    std::string msg;
    const bool threw = test::throws(
        [&] {
          ridge_predict({x.data(), n, p}, w.data(), t, b.data(), mean.data(), scale.data(), {out.data(), n, t}, &cancel, [&](double) {
            ++tiles_done;
            cancel = true;
          });
        },
        &msg);
    set_predict_block_flops(before);
    CHECK(threw);
    CHECK(msg.find("ridge predict cancelled") != std::string::npos);
    CHECK(tiles_done == 1);
    // (one tile written, the rest as they were)
    CHECK(std::count(out.begin(), out.end(), -7.0f) == static_cast<long>(out.size()) - 100);
    // one tile in all: the check after it
    cancel = false;
    std::vector<float> one(n * t);
    CHECK(test::throws([&] {
      ridge_predict({x.data(), n, p}, w.data(), t, b.data(), mean.data(), scale.data(), {one.data(), n, t}, &cancel, [&](double) { cancel = true; });
    }));
    // and no flag: the whole product
    CHECK(!test::throws([&] { ridge_predict({x.data(), n, p}, w.data(), t, b.data(), mean.data(), scale.data(), {one.data(), n, t}, nullptr); }));
    CHECK_NEAR(one[n * t - 1], 1.0 + 6 * 0.5 * 0.25, 1e-6);
  });
  return test::finish();
}
