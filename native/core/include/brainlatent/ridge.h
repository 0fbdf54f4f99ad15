// Multi-target ridge regression with per-target regularisation chosen by K-fold CV
// (RidgeCV), on the minimal-flop routes of ridge.md: one eigendecomposition per fold serves
// every alpha, Grams are shared across folds, and an exact closed-form CV needs only one
// decomposition when that costs less. It runs on the ridge engine (src/ridge/engine.h) over a
// backend (backend.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "brainlatent/host_memory.h"
#include "brainlatent/matrix.h"

namespace brainlatent {

enum class RidgeScore { R2, Pearson };
// The routes of the ridge engine, by name: "per-fold-primal", "per-fold-kernel", "exact-primal",
// "exact-kernel" (banded ridge runs the per-fold ones).
std::vector<std::string> ridge_route_names();
enum class RidgeRoute { Auto, Primal, Kernel };    // decompose XᵀX (p×p) or XXᵀ (n×n)
enum class RidgeCvMethod { Auto, PerFold, Exact };  // K+1 decompositions, or one (closed form)
enum class EigPrecision { Auto, Float32, Float64 };

struct RidgeOptions {
  std::vector<double> alphas;             // > 0, any order
  std::vector<std::int32_t> folds;        // fold index 0..n_folds-1 of each sample
  int n_folds = 0;
  RidgeScore score = RidgeScore::R2;
  bool fit_intercept = true;              // centre X and Y with training means
  bool standardize = false;               // z-score X columns with training statistics
  RidgeRoute route = RidgeRoute::Auto;
  RidgeCvMethod cv_method = RidgeCvMethod::Auto;
  std::string solver;                     // a route by name (ridge_route_names); overrides route/cv_method
  std::string backend = "auto";           // "auto" | "cpu" | "cuda" (make_backend)
  EigPrecision eig_precision = EigPrecision::Auto;
  // Bytes of the engine's work buffers (X's prepared copy, Grams, decompositions, batches), a hard
  // bound: a fit whose fixed footprint exceeds it is refused. 0: 2 GiB, grown to the footprint.
  std::size_t memory_budget = 0;
  std::int64_t target_batch = 0;          // override the budget-derived target batch size
  // Called from the fitting thread with the fraction done and the current stage.
  std::function<void(double, const std::string&)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct RidgeFitInfo {
  std::string solver;        // the route's name, e.g. "per-fold-kernel"
  std::string route;         // "primal" | "kernel"
  std::string cv_method;     // "per-fold" | "exact"
  std::string eig_precision; // "float32" | "float64" | "mixed"
  std::string backend;       // the backend that ran it
  std::int64_t target_batch = 0;
  std::int64_t n_batches = 0;
  double gemm_flops = 0;     // flops of the GEMM/SYRK/TRSM calls the fit ran
  double seconds_decompose = 0, seconds_cv = 0, seconds_refit = 0, seconds_total = 0;
  double edge_low = 0, edge_high = 0;  // share of targets choosing the smallest / largest alpha
  // Alphas below the float32 resolution of a (near) singular Gram: never chosen, their
  // cv_scores are NaN. alpha_resolution is that resolution (0 when every alpha is resolved).
  int unresolved_alphas = 0;
  double alpha_resolution = 0;
  std::int64_t decompositions = 0;
  std::int64_t float32_redone = 0;  // float32 decompositions redone in float64 (eig_precision auto)
  // Work buffers: the fixed footprint, one batch's, the budget they ran under and the peak reached.
  std::size_t fixed_bytes = 0, batch_bytes = 0, budget_bytes = 0, peak_bytes = 0;
};

struct RidgeResult {
  std::int64_t n_features = 0, n_targets = 0;
  // Prediction: ((X - x_mean) / x_scale) · coef + intercept.
  LargeVector<float> coef;        // n_features × n_targets, row-major
  std::vector<float> intercept;   // n_targets
  std::vector<float> x_mean;      // n_features (zeros without intercept)
  std::vector<float> x_scale;     // n_features (ones without standardisation)
  std::vector<float> best_alphas; // n_targets
  std::vector<float> best_scores; // n_targets: mean CV score at the chosen alpha
  std::vector<float> cv_scores;   // n_alphas × n_targets: mean CV score per alpha (NaN: unresolved alpha)
  RidgeFitInfo info;
};

// The flop model (GEMM flops, eigensolves as GEMM-time equivalents) of the route a fit of this shape
// would take, from the dimensions alone (no data is read; `fold_sizes` holds each fold's number of samples,
// summing to n, in place of o.folds and o.n_folds, which are not read): for estimates
// that scale a small probe fit to the real shape. And its memory plan under o.memory_budget, as the
// fit makes it (RidgeFitInfo's fixed_bytes, batch_bytes, budget_bytes, target_batch, n_batches): the
// fit is refused (OutOfMemory) when fixed_bytes + bytes_per_target exceeds budget_bytes. Whether the
// eigensolver may need float64 work space depends on X's values: the plan counts it unless X is
// standardised with an intercept (the Gram's trace is then n·p) or the eig precision is fixed, so
// its fixed part is the fit's own there and never below it elsewhere.
struct RidgeCostEstimate {
  std::string route;
  double flops = 0;
  std::size_t fixed_bytes = 0;        // X's prepared copy, the route's Grams and decompositions, per-target results, 1 MiB reserve
  std::size_t x_copy_bytes = 0;       // of which X's prepared copy
  std::size_t route_bytes = 0;        // of which the route's Grams, decompositions and work buffers
  double bytes_per_target = 0;        // each target of a batch
  std::size_t budget_bytes = 0;       // the budget the fit runs under (the default grown to fit, without one)
  std::int64_t target_batch = 0, n_batches = 0;
  std::size_t batch_bytes = 0;        // bytes_per_target × target_batch
  bool fits = true;                   // fixed_bytes + bytes_per_target within budget_bytes
};
RidgeCostEstimate ridge_cost_estimate(std::int64_t n, std::int64_t p, std::int64_t t, const std::vector<std::int64_t>& fold_sizes, const RidgeOptions& o);

// Checks inputs (shapes, finiteness, alphas, folds) and fits. Throws brainlatent::Error.
RidgeResult ridge_cv_fit(ConstMatF x, ConstMatF y, const RidgeOptions& options);

// Many independent problems at once (subjects × regions × feature sets): up to `concurrency` fits
// run at the same time, each on its own backend instance — on CUDA its own stream and library
// handles, so one device overlaps their transfers, kernels and solver calls. A problem without its
// own memory budget on a device backend gets a fit's default one (the device's free memory shared
// between the device fits running). Results come back in input order; on a failure, the running
// fits of later problems are stopped, earlier ones finish, and the failure of the smallest index is
// rethrown (the problems' own cancel flags are honoured too).
struct RidgeProblem {
  ConstMatF x, y;
  RidgeOptions options;
};
// (on an error, *failed, when given, is the index of the problem whose error is thrown: the smallest that failed)
std::vector<RidgeResult> ridge_cv_fit_many(const std::vector<RidgeProblem>& problems, int concurrency, std::size_t* failed = nullptr);

// Contiguous K-fold assignment of n samples (scikit-learn KFold without shuffling).
std::vector<std::int32_t> contiguous_folds(std::int64_t n, int k);
// The sizes of contiguous_folds(n, k)'s folds, without the n labels (the first n % k hold one more).
std::vector<std::int64_t> contiguous_fold_sizes(std::int64_t n, int k);
// Folds from a group label per sample: whole groups go to one fold, groups assigned in order
// of first appearance so that fold sizes are as equal as possible (GroupKFold-like).
std::vector<std::int32_t> group_folds(const std::vector<std::int32_t>& groups, int k);

// out (rows × t) = ((x - mean) / scale) · coef + intercept, in tiles of rows × targets (predict_tiling),
// one GEMM of at most set_predict_block_flops' bound each. Stops with ErrorCode::Cancelled before any
// tile, and after the last, once *cancel is set; progress(fraction of out done) after each tile.
void ridge_predict(ConstMatF x, const float* coef, std::int64_t n_targets, const float* intercept,
                   const float* x_mean, const float* x_scale, MatF out, const std::atomic<bool>* cancel = nullptr,
                   const std::function<void(double)>& progress = {});

// The tile ridge_predict computes with one GEMM for n rows, p features and t targets: rows (also
// bounded by 64 MiB of standardised X) by targets, 2·rows·p·targets at most the bound (a tile of one
// row and one target may exceed it), as square as the shape allows.
struct PredictTiling {
  std::int64_t rows = 1, targets = 1;
};
PredictTiling predict_tiling(std::int64_t n, std::int64_t p, std::int64_t t);
// Single-precision flops of one of ridge_predict's GEMMs (default 8e9); returns the previous value,
// ≤ 0 restores the default. For tests and tuning.
double set_predict_block_flops(double flops);

}  // namespace brainlatent
