// Banded ridge (Dupré la Tour et al. 2022; himalaya's BandedRidgeCV, "random_search"): the ridge
// engine's per-fold routes under band weights γ, one candidate per Dirichlet draw (see
// banded_ridge.h). The Grams are built once and reused across γ; each target keeps the (γ, α) with
// the best mean fold score (a later γ must improve strictly) and is refit with its group.
#include "brainlatent/banded_ridge.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"
#include "engine.h"

namespace brainlatent {

using i64 = std::int64_t;

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
    // himalaya draws row s with concentrations[s % n] and then overwrites row 0 with the uniform
    // weights, so the first draw (row 1) has the second concentration (1.0 by default), not the first.
    const double conc = concentrations[static_cast<std::size_t>(s) % concentrations.size()];
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

namespace {

// The engine's problem of a banded fit: the candidates drawn (or given, put on the simplex).
ridge::Problem banded_problem(ConstMatF x, ConstMatF y, const BandedRidgeOptions& o, ridge::FoldLayout folds) {
  const int nb = static_cast<int>(o.band_sizes.size());
  if (nb < 1) throw Error(ErrorCode::InvalidArgument, "bands: need at least one band");
  ridge::Problem pb = ridge::shared_problem(x, y, o, std::move(folds), "banded ridge fit");
  pb.band_sizes = o.band_sizes;
  if (o.gammas.empty()) {
    if (o.n_iter < 1) throw Error(ErrorCode::InvalidArgument, "nIter: need at least 1 candidate, got " + std::to_string(o.n_iter));
    pb.candidates = dirichlet_gammas(o.n_iter, nb, o.concentrations, o.seed);
  } else {
    pb.candidates = o.gammas;
    if (pb.candidates.size() % static_cast<std::size_t>(nb) == 0) {
      // Onto the simplex (checked for sign and zero rows by the engine).
      for (std::size_t r = 0; r < pb.candidates.size() / static_cast<std::size_t>(nb); ++r) {
        double sum = 0;
        for (int b = 0; b < nb; ++b) sum += pb.candidates[r * static_cast<std::size_t>(nb) + static_cast<std::size_t>(b)];
        if (sum > 0 && std::isfinite(sum))
          for (int b = 0; b < nb; ++b) pb.candidates[r * static_cast<std::size_t>(nb) + static_cast<std::size_t>(b)] /= sum;
      }
    }
  }
  return pb;
}

// The per-fold route a banded fit runs: the one named, else by o.route, else the cheaper by the flop
// models. (A single candidate of ones is plain RidgeCV: it stays on the per-fold routes.)
std::string banded_solver(const ridge::Problem& pb, const BandedRidgeOptions& o) {
  if (!o.solver.empty() && o.solver != "auto") return o.solver;
  const double c_primal = ridge::cost_per_fold_primal(pb).total, c_kernel = ridge::cost_per_fold_kernel(pb).total;
  return o.route == RidgeRoute::Primal ? "per-fold-primal"
         : o.route == RidgeRoute::Kernel ? "per-fold-kernel"
         : c_kernel < c_primal           ? "per-fold-kernel"
                                         : "per-fold-primal";
}

}  // namespace

RidgeCostEstimate banded_ridge_cost_estimate(std::int64_t n, std::int64_t p, std::int64_t t, const std::vector<std::int64_t>& fold_sizes,
                                             const BandedRidgeOptions& o) {
  const ridge::Problem pb = banded_problem({nullptr, n, p}, {nullptr, n, t}, o, ridge::fold_layout_of_sizes(fold_sizes, n));
  std::unique_ptr<Backend> be = make_backend(o.backend);
  const ridge::RouteSpec& spec = ridge::choose_route(pb, *be, banded_solver(pb, o), "auto", "per-fold");
  return ridge::cost_estimate(pb, *be, spec);
}

BandedRidgeResult banded_ridge_fit(ConstMatF x, ConstMatF y, const BandedRidgeOptions& o) {
  const int nb = static_cast<int>(o.band_sizes.size());
  const ridge::Problem pb = banded_problem(x, y, o, ridge::make_fold_layout(o.folds, o.n_folds, x.rows));
  std::unique_ptr<Backend> be = make_backend(o.backend);
  ridge::EngineResult e = ridge::run(pb, *be, banded_solver(pb, o), "auto", "per-fold");

  BandedRidgeResult r;
  ridge::move_shared_result(e, *be, r);
  r.n_features = x.cols;
  r.n_targets = y.cols;
  r.n_bands = nb;
  r.gammas = pb.candidates;
  r.best_gamma = std::move(e.best_candidate);
  r.best_alpha = std::move(e.best_alpha);
  r.best_scores = std::move(e.best_score);
  r.gamma_scores = std::move(e.candidate_scores);
  BandedRidgeInfo& i = r.info;
  i.n_gammas = pb.n_candidates();
  i.eigendecompositions = e.decompositions;
  i.refit_groups = e.refit_groups;
  i.skipped_candidates = e.skipped_candidates;
  i.seconds_gram = e.seconds_setup;
  i.seconds_search = e.seconds_search;
  i.seconds_refit = e.seconds_refit;
  i.seconds_total = e.seconds_total;
  if (o.progress) o.progress(1.0, "done");
  return r;
}

}  // namespace brainlatent
