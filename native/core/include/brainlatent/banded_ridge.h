// Banded ridge regression (Dupré la Tour et al. 2022; himalaya's BandedRidgeCV with its
// "random_search" solver): X is split into feature spaces ("bands", consecutive column blocks),
// each band i is scaled by √γ_i with γ on the simplex, and one alpha is shared, so the penalty
// on band i is α/γ_i. For every target, (γ, α) is chosen by K-fold CV over a random search of
// Dirichlet-drawn γ (the first uniform) times the alpha grid.
//
// Unlike himalaya, Grams are built once and reused across γ (ridge.md §3 [derived]):
//   primal  C_γ = S_γ C S_γ, B_γ = S_γ B with S_γ = diag(√γ per band)     (n_t > p)
//   kernel  K_γ = Σ_i γ_i K_i with K_i = X_i X_iᵀ                          (n_t ≤ p)
// Only the eigendecomposition, Z, M and the scoring repeat per γ and fold.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "brainlatent/matrix.h"
#include "brainlatent/ridge.h"

namespace brainlatent {

struct BandedRidgeOptions {
  std::vector<std::int64_t> band_sizes;   // columns per band, in order; sum = number of features
  std::vector<double> alphas;             // > 0; each γ is scored with every alpha
  // Candidate γ, n_gammas × n_bands row-major (each row ≥ 0, summing to 1). Empty: draw
  // n_iter rows with dirichlet_gammas(n_iter, n_bands, concentrations, seed).
  std::vector<double> gammas;
  int n_iter = 100;
  std::vector<double> concentrations = {0.1, 1.0};
  std::uint64_t seed = 0;
  std::vector<std::int32_t> folds;        // fold index 0..n_folds-1 of each sample
  int n_folds = 0;
  RidgeScore score = RidgeScore::R2;
  bool fit_intercept = true;              // per-fold centring in CV, global centring in the refit
  bool standardize = false;               // z-score X columns with global statistics
  RidgeRoute route = RidgeRoute::Auto;
  std::string solver;                     // "per-fold-primal" | "per-fold-kernel" (overrides route)
  std::string backend = "auto";
  EigPrecision eig_precision = EigPrecision::Auto;
  std::size_t memory_budget = 0;          // work-buffer bytes, as RidgeOptions::memory_budget
  std::int64_t target_batch = 0;          // override the budget-derived target batch size
  std::function<void(double, const std::string&)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct BandedRidgeInfo {
  std::string solver;         // "per-fold-primal" | "per-fold-kernel"
  std::string route;          // "primal" | "kernel"
  std::string eig_precision;  // "float32" | "float64" | "mixed"
  std::string backend;
  std::int64_t n_gammas = 0;
  std::int64_t target_batch = 0, n_batches = 0;
  std::int64_t eigendecompositions = 0;
  std::int64_t refit_groups = 0;  // distinct γ chosen (one refit decomposition each)
  // (candidate γ, target batch) pairs skipped because no alpha was above the float32 resolution of
  // their singular Gram; alphas below it are skipped per candidate (see src/ridge/engine.h).
  std::int64_t skipped_candidates = 0;
  double gemm_flops = 0;
  double seconds_gram = 0, seconds_search = 0, seconds_refit = 0, seconds_total = 0;
  std::size_t fixed_bytes = 0, batch_bytes = 0, budget_bytes = 0, peak_bytes = 0;
};

struct BandedRidgeResult {
  std::int64_t n_features = 0, n_targets = 0, n_bands = 0;
  // Prediction: ((X − x_mean) / x_scale) · coef + intercept.
  LargeVector<float> coef;           // n_features × n_targets
  std::vector<float> intercept;      // n_targets
  std::vector<float> x_mean, x_scale;
  std::vector<double> gammas;        // n_gammas × n_bands: the candidates searched
  std::vector<std::int32_t> best_gamma;  // n_targets: row of `gammas` chosen
  std::vector<float> best_alpha;     // n_targets: the shared alpha chosen
  std::vector<float> best_scores;    // n_targets: mean CV score at the choice
  std::vector<float> gamma_scores;   // n_gammas × n_targets: best mean CV score over alphas per γ
  BandedRidgeInfo info;
};

// Checks inputs (shapes, finiteness, bands, alphas, gammas, folds) and fits. Throws brainlatent::Error.
BandedRidgeResult banded_ridge_fit(ConstMatF x, ConstMatF y, const BandedRidgeOptions& options);

// The route a banded fit of n samples × p features → t targets would take (options as banded_ridge_fit's;
// `fold_sizes` in place of their folds, as ridge_cost_estimate's), its flop model, and its memory plan under options.memory_budget, from the
// dimensions alone, as ridge_cost_estimate gives RidgeCV's (the fit's info reports the same plan).
RidgeCostEstimate banded_ridge_cost_estimate(std::int64_t n, std::int64_t p, std::int64_t t, const std::vector<std::int64_t>& fold_sizes,
                                             const BandedRidgeOptions& options);

// himalaya's candidates: row 0 uniform (1/n_bands each), then Dirichlet draws whose concentration
// cycles through `concentrations` (default 0.1, 1.0). Deterministic for a seed on every platform
// (own generator and Marsaglia–Tsang gamma sampler). n_samples × n_bands row-major.
std::vector<double> dirichlet_gammas(int n_samples, int n_bands, const std::vector<double>& concentrations,
                                     std::uint64_t seed);

}  // namespace brainlatent
