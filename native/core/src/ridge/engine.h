// Internal: the one ridge engine. A CV driver (engine.cpp) owns everything RidgeCV and banded
// ridge share — inputs checked once, folds laid out, X prepared on the backend, target batches
// sized to the memory budget, fold statistics, scoring, best-alpha selection (ties to the larger
// alpha), refit, progress, cancellation between large operations, out-of-memory and non-finite
// outputs — and runs one *route*, chosen by name from a registry:
//
//   per-fold-primal  eig of each fold's XₜᵀXₜ (p×p) from one shared XᵀX      (n_t > p)
//   per-fold-kernel  eig of each fold's centred Kₜₜ from one shared XXᵀ      (n_t ≤ p)
//   exact-primal     one eig of XᵀX; held-out residuals in closed form      (RidgeCV)
//   exact-kernel     one eig of XXᵀ; the same closed form in the dual       (RidgeCV)
//
// A route scores every alpha for a target batch from its decompositions and refits a batch at
// per-target alphas. Banded ridge runs the per-fold routes under band weights γ (a *candidate*):
// the Grams are built once and only the decompositions repeat per candidate; RidgeCV is the one
// candidate of unit weights. Every array a route touches lives in a backend buffer.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/matrix.h"
#include "brainlatent/ridge.h"

namespace brainlatent::ridge {

using i64 = std::int64_t;

// Samples reordered so that every fold is one contiguous block of rows.
struct FoldLayout {
  i64 n = 0;
  int k = 0;
  std::vector<i64> order;  // order[r] = original row placed at permuted row r
  std::vector<i64> start;  // fold v occupies rows [start[v], start[v+1])
  i64 size(int v) const { return start[static_cast<std::size_t>(v) + 1] - start[static_cast<std::size_t>(v)]; }
  i64 max_size() const;
};

// What a fit asks for, checked (check_problem) before any work.
struct Problem {
  ConstMatF x, y;                 // the caller's arrays, read in place
  std::vector<double> alphas;     // > 0
  FoldLayout folds;
  ScoreKind score = ScoreKind::R2;
  bool fit_intercept = true;
  bool standardize = false;
  EigPrecision eig_precision = EigPrecision::Auto;
  std::size_t memory_budget = 0;  // bytes of work buffers (0: the default)
  i64 target_batch = 0;           // forced batch size (0: from the budget)
  // Band structure (banded ridge): columns per band; one band of all columns for RidgeCV.
  std::vector<i64> band_sizes;
  // Candidate band weights γ, n_candidates × n_bands (rows on the simplex); one row of ones for RidgeCV.
  std::vector<double> candidates;
  std::function<void(double, const std::string&)> progress;
  const std::atomic<bool>* cancel = nullptr;
  const char* what = "ridge fit";  // names the fit in errors

  i64 n() const { return x.rows; }
  i64 p() const { return x.cols; }
  i64 t() const { return y.cols; }
  int n_alphas() const { return static_cast<int>(alphas.size()); }
  int n_bands() const { return static_cast<int>(band_sizes.size()); }
  int n_candidates() const { return static_cast<int>(candidates.size() / band_sizes.size()); }
  bool unit_weights() const;  // a single candidate of all ones (RidgeCV)
  // Per candidate, the first candidate with the same band weights (itself for a first occurrence).
  // A repeated row scores exactly as its first and a later candidate must improve strictly, so the
  // driver searches only the first: every draw of a one-band fit (variance partitioning's
  // leave-one-out fits) is the same γ = 1, and searching it nIter times was 100× the work.
  std::vector<int> first_equal_candidates() const;
  int n_distinct_candidates() const;
};

constexpr std::size_t kDefaultMemoryBudget = std::size_t(2) << 30;
// Targets per batch the default budget grows to hold, past its 2 GiB, when the fixed footprint needs it.
constexpr double kDefaultMinBatch = 2048;
// The budget a fit runs under: the caller's, else kDefaultMemoryBudget on a host backend and most
// of the device's free memory on a device backend (fewer, larger target batches: each batch
// repeats the per-fold projections).
double budget_of(const Problem& pb, const Backend& be);

// Inputs: shapes, finiteness (first bad row and column), alphas, folds, bands and candidates.
FoldLayout make_fold_layout(const std::vector<std::int32_t>& folds, int k, i64 n);
// The layout a plan needs (the folds' sizes, no row order) from each fold's sample count: a cost
// estimate at n samples must not take O(n) memory and time (n may be 1e9).
FoldLayout fold_layout_of_sizes(const std::vector<std::int64_t>& sizes, i64 n);
void check_problem(const Problem& pb);

// Shared state of one fit: the backend, the prepared X, Y's means, the budget, progress and the
// cancel checks. Routes reach everything through it.
class Context {
 public:
  Context(const Problem& pb, Backend& be);
  const Problem& pb;
  Backend& be;
  double budget = 0;  // budget_of(pb, be), fixed when the fit starts
  // One target batch: a route's score() runs once per candidate, so what it would keep for later
  // batches can be formed just before use and freed (set by the driver before begin_candidate).
  bool single_batch = false;

  // X centred (with an intercept) and scaled (standardize), rows in fold order: n × p on the backend.
  // A route that has no more use for it after setup() may free it (x_buf.reset(), x = {}).
  BufferPtr x_buf;
  ViewF x;
  // Columns c0..c0 + pc of the prepared X, the same values as x's, into host memory (n × pc,
  // row-major): for a route that freed x and needs it again in panels (host-visible backends).
  void fill_x_cols(i64 c0, i64 pc, float* out) const;
  std::vector<float> x_mean, x_scale;  // the model's (host)
  std::vector<double> x_inv_scale;     // 1 / x_scale
  double x_trace = 0;                  // trace of the prepared X's Gram (≥ λ_max of every Gram formed)
  std::vector<i64> x_null_cols;        // columns all zero once prepared (constant with an intercept): coefficient 0
  std::vector<double> y_mean;          // Y's column means (zeros without an intercept)
  std::vector<double> feature_weight;  // per feature: the band weight of the current candidate

  // Between large operations: throws Cancelled once the cancel flag is set.
  void checkpoint() const;
  void report(double fraction, const std::string& stage) const;  // never below an earlier report
  mutable double reported = 0;
  mutable std::string reported_stage;
  void count_flops(double f) { flops += f; }
  double flops = 0;
  i64 decompositions = 0;
  i64 float32_redone = 0;  // float32 decompositions thrown away for the precision rule (redone in float64)

  // Small device vectors from host values, and back.
  BufferPtr upload(const std::vector<double>& v) const;
  std::vector<double> download(const ViewD& v) const;
  std::vector<double> download(const ViewF& v) const;  // (as doubles)

  // A float32 Gram formed by a route: non-finite entries mean the float32 inputs overflowed.
  void check_gram_finite(const ViewF& g, const char* name) const;

  // Symmetric eigendecomposition of the r×r float32 matrix in sym (left intact). The precision
  // rule (ridge.md §5.4): float32 (?syevd) unless the decomposition's eigenvalue error ε·λ_max
  // exceeds a tenth of the smallest alpha; then it is redone in float64 and every later one runs in
  // float64 ('auto'; 'float32'/'float64' force it). Notes the alpha resolution of the candidate.
  struct Eig {
    BufferPtr q_buf, lam_buf;  // q: r×r, row k = eigenvector k; lam: eigenvalues clamped at 0 (float64)
    ViewF q;
    ViewD lam;
    std::vector<double> raw;    // the eigenvalues as computed (host), ascending
    // With the tridiagonal basis (decompose's `tridiagonal`, where the backend has it): rows of q are
    // the basis, K = qᵀ T q, lam is T's diagonal (as computed) and off its off-diagonal (off[k] =
    // T(k, k+1)); raw holds the diagonal too, and lmin, lmax T's extreme eigenvalues (bisection).
    bool tridiagonal = false;
    BufferPtr off_buf;
    ViewD off;
    double lmin = 0, lmax = 0;
  };
  // The eigendecomposition of a Gram, clamped eigenvalues and alpha resolution included. With
  // split_constant, a centred kernel's constant null vector is split off exactly (eigh_deflated):
  // row 0 of q is 1/√n, its eigenvalue 0.
  // `to`: the route's sub-progress at the decomposition's end; its blocks report their share of the way
  // there from the progress so far (at NSD scale a float64 decomposition is a minute; < 0: no reports).
  // `singular_folds`: the CV problems are singular even where this Gram is not (the exact primal
  // route's Gram of all samples when a training fold has fewer samples than features): alphas
  // below its resolution are unresolved whatever its smallest eigenvalue.
  // `scratch`: a buffer the route writes next, whose memory a float32 decomposition may use for its
  // workspace first (Backend::eigh_in_scratch; ignored where it is smaller than eigh_scratch_count).
  // `tridiagonal`: the tridiagonal basis instead of eigenvectors where the backend has it (Eig::tridiagonal
  // says whether it was taken), for a route that applies f(K) = qᵀ f(T) q by tri_shrink.
  Eig decompose(const ViewF& sym, bool centred_kernel, bool split_constant = false, double to = -1, bool singular_folds = false,
                const ViewF& scratch = ViewF{}, bool tridiagonal = false);
  // "float32", "float64", or "mixed" when a later decomposition needed float64.
  std::string precision() const { return n_float64_ == 0 ? "float32" : n_float32_ == 0 ? "float64" : "mixed"; }

  // Progress of a route's own steps: sub_progress(f) maps f ∈ [0, 1] onto [progress_from, progress_to].
  double progress_from = 0, progress_to = 1;
  void sub_progress(double f, const std::string& stage) const { report(progress_from + (progress_to - progress_from) * f, stage); }
  // Within a target batch's scoring (the engine sets the range and the stage's name): `done` folds of k.
  // With one or two batches a fit's scoring is most of it, and reported only per batch it showed 30% for
  // most of the fit and then jumped.
  std::string batch_stage = "cv";
  void folds_done(int done, int k) const { sub_progress(static_cast<double>(done) / k, batch_stage); }
  // The largest |X| (for overflow messages).
  std::atomic<double> x_abs_max{0};

  // Alphas below the float32 resolution of a (near) singular decomposition of the current
  // candidate (1e-5·λ_max; a centred kernel's constant null vector does not count): unresolved,
  // never chosen, their CV scores NaN.
  std::vector<char> unresolved;
  double resolution = 0;
  void reset_resolution();
  // The rule for a singular problem: every alpha below res (1e-5·λ_max) unresolved.
  void resolve_above(double res);

 private:
  std::vector<double> eigh_in_place(const ViewF& a, const std::function<void()>& refill);
  // The same in the tridiagonal basis: a's rows become the basis; returns T's diagonal, its
  // off-diagonal in off and its extreme eigenvalues in ext. Empty (a refilled) where the backend
  // would not reduce the matrix: the caller takes eigh_in_place.
  std::vector<double> tridiagonal_in_place(const ViewF& a, const std::function<void()>& refill, std::vector<double>& off,
                                           std::pair<double, double>& ext);
  // One decomposition in place under the precision rule (ridge.md §5.4): f32() or f64(float64 copy)
  // run it and return the largest |eigenvalue| it found, or NaN where it declined (a untouched).
  double in_place_by_rule(const ViewF& a, const std::function<void()>& refill, const std::function<double()>& f32,
                          const std::function<double(const ViewD&)>& f64);
  double decompose_to_ = -1;  // decompose()'s `to`, for eigh_in_place's progress
  ViewF decompose_scratch_;   // decompose()'s `scratch`, for eigh_in_place's float32 decomposition
  double lambda_max_lower_bound(const ViewF& a, int iterations, double enough);
  Eig eigh_of(const ViewF& sym, bool tridiagonal);
  Eig eigh_deflated(const ViewF& k, bool tridiagonal);
  bool use_f64_ = false;
  i64 n_float32_ = 0, n_float64_ = 0;
};

// A target batch: columns of Y (a range, or a list for banded refits), centred, rows in fold
// order, on the backend, with its per-fold statistics.
struct Batch {
  i64 j0 = 0, tb = 0;              // columns j0..j0+tb, unless `cols` is set
  std::uint64_t loads = 0;         // how many times load_batch filled it (a route's key to what it kept of Y)
  const std::vector<i64>* cols = nullptr;
  BufferPtr y_buf;
  ViewF y;                          // n × tb
  BufferPtr stats_buf;
  ViewD level;                      // 1 × tb: the removed column means (the constant-target rule's level)
  ViewD sum, sst;                   // k × tb
  ViewD train_mean;                 // k × tb: mean of the fold's training rows (0 without an intercept)
};

// Memory a route needs: a fixed part (Grams, decompositions, factors) and a part per target of
// a batch, both in bytes; the driver turns the budget into a batch size with them.
struct Footprint {
  double fixed = 0;
  double per_target = 0;
  i64 max_batch = 0;  // a cap that only memory traffic would pay for (0: none)
};

// How a fit's work buffers fit its budget (plan_memory): the fixed part — the route's footprint, X's
// prepared copy, each target's best score, alpha and index, a reserve for small allocations — and,
// per target of a batch, the route's part and the driver's; the target batch the rest of the budget
// holds. Below least() the fit is refused (OutOfMemory) before any work.
struct MemoryPlan {
  double route_fixed = 0, x_copy = 0, target_vectors = 0, reserve = 0;
  double fixed = 0;       // the four above
  double per_target = 0;  // bytes per target of a batch
  double budget = 0;      // the budget the fit runs under (without the caller's: the default, grown to fit)
  i64 target_batch = 0, n_batches = 0;
  double least() const { return fixed + per_target; }
  double planned() const { return fixed + per_target * static_cast<double>(target_batch); }
};

class Route {
 public:
  virtual ~Route() = default;
  virtual Footprint footprint() const = 0;
  // Once per fit: Grams shared by every candidate.
  virtual void setup() = 0;
  // Once per candidate (band weights in ctx.feature_weight): the decompositions that score every
  // alpha. `with_refit`: also what refit() needs (as begin_refit).
  virtual void begin_candidate(int candidate, bool with_refit) = 0;
  // Only what refit() needs for the candidate (banded ridge's refit after the search).
  virtual void begin_refit(int candidate) = 0;
  // acc (A × tb) += mean over folds of each alpha's score for the batch's targets.
  virtual void score(const Batch& batch, const ViewD& acc) = 0;
  // Refit of the batch at per-target alphas (1 × tb): coefficients into out (p × tb). Right after
  // score() of the same batch it may reuse that call's products.
  virtual void refit(const Batch& batch, const ViewD& alphas, const ViewF& out) = 0;
  // Whether refit() right after score() of the same batch reads the batch's Y. Where it does not,
  // the driver frees Y before a single candidate's refit of its only batch: the coefficients then
  // take Y's pages instead of fresh ones (fresh memory costs ~1–2 ms a MiB on the bench VM).
  virtual bool refit_reads_y() const { return true; }
  // Frees the candidate's decompositions.
  virtual void end_candidate() = 0;
};

// A route's flop model: the whole fit, the part setup() runs (Grams, the exact routes'
// decomposition), and the part one candidate's begin_candidate() runs (per-fold decompositions).
struct RouteCost {
  double total = 0, setup = 0, decompose = 0;
  // Per candidate, work that begin_candidate does when there are several target batches and the
  // first batch's scoring does when there is one (the exact kernel route's leverages): with several
  // batches it counts as decomposition (the NSD-shaped fit spent 30 s there at 1% of its progress).
  double leverage = 0;
};

struct RouteSpec {
  const char* name;       // "per-fold-primal", ...
  const char* space;      // "primal" | "kernel"
  const char* cv_method;  // "per-fold" | "exact"
  bool band_weights;      // can run banded ridge's candidates
  std::unique_ptr<Route> (*make)(Context& ctx);
  // Flop model (GEMM flops plus eigensolves as GEMM-time equivalents): the whole fit for the
  // automatic choice, its parts for the progress shares.
  RouteCost (*cost)(const Problem& pb);
};
// Every route, by name.
const std::vector<RouteSpec>& routes();
const RouteSpec& route_by_name(const std::string& name);

std::unique_ptr<Route> make_per_fold_primal(Context& ctx);
std::unique_ptr<Route> make_per_fold_kernel(Context& ctx);
std::unique_ptr<Route> make_exact_primal(Context& ctx);
std::unique_ptr<Route> make_exact_kernel(Context& ctx);
RouteCost cost_per_fold_primal(const Problem& pb);
RouteCost cost_per_fold_kernel(const Problem& pb);
RouteCost cost_exact_primal(const Problem& pb);
RouteCost cost_exact_kernel(const Problem& pb);

// The memory plan of a fit on `ctx` whose route has footprint `fp` (what attempt() runs by).
MemoryPlan plan_memory(const Context& ctx, const Footprint& fp);
// The plan of a fit of pb's shape on `spec`, from the dimensions alone (pb's arrays are not read):
// X's Gram trace, which decides whether the eigensolver may need float64 work space under
// EigPrecision::Auto, is n·p for a standardised X with an intercept (its exact value, less
// constant columns) and taken as unbounded otherwise. So the plan's fixed part is the fit's own
// for a standardised X with no constant column, or a fixed eig precision, and never below it.
MemoryPlan estimate_memory(const Problem& pb, Backend& be, const RouteSpec& spec);
// The flop model and estimate_memory()'s plan of a fit of pb's shape on `spec` (ridge_cost_estimate and
// banded_ridge_cost_estimate, once each has chosen the route its fit would take).
RidgeCostEstimate cost_estimate(const Problem& pb, Backend& be, const RouteSpec& spec);

// What the driver returns to RidgeCV and banded ridge.
struct EngineResult {
  LargeVector<float> coef;
  std::vector<float> intercept, x_mean, x_scale;
  std::vector<float> best_alpha, best_score;
  std::vector<std::int32_t> best_candidate;
  std::vector<float> cv_scores;       // single candidate: A × t (NaN rows: unresolved alphas)
  std::vector<float> candidate_scores;  // n_candidates × t: best over alphas per candidate
  std::string route, cv_method, eig_precision;
  i64 target_batch = 0, n_batches = 0, decompositions = 0, float32_redone = 0, refit_groups = 0, skipped_candidates = 0;
  int unresolved_alphas = 0;
  double alpha_resolution = 0;
  double gemm_flops = 0;
  double seconds_setup = 0, seconds_search = 0, seconds_refit = 0, seconds_total = 0;
  std::size_t fixed_bytes = 0, batch_bytes = 0, peak_bytes = 0, budget_bytes = 0;
};

// Runs the fit on `route_name` ("" or "auto": chosen by cost among those allowed by `space` and
// `cv_method`, which may be "auto"). Exact routes that meet a singular (I − H) block fall back to
// the per-fold route of the same space when the choice was automatic.
// The route a fit takes: the one named, else the cheapest allowed by the flop model whose least footprint (fixed
// part and one target) fits the memory budget, or the cheapest when none does.
const RouteSpec& choose_route(const Problem& pb, Backend& be, const std::string& route_name, const std::string& space,
                              const std::string& cv_method);
EngineResult run(const Problem& pb, Backend& be, const std::string& route_name, const std::string& space,
                 const std::string& cv_method);

// The problem's fields that RidgeCV and banded ridge take from their options alike (`what` names
// the fit in messages); each sets its bands and candidates.
// `folds` is the fit's layout (make_fold_layout of o.folds) or a plan's (fold_layout_of_sizes).
template <typename Options>
Problem shared_problem(ConstMatF x, ConstMatF y, const Options& o, FoldLayout folds, const char* what) {
  Problem pb;
  pb.x = x;
  pb.y = y;
  pb.alphas = o.alphas;
  pb.folds = std::move(folds);
  pb.score = o.score == RidgeScore::Pearson ? ScoreKind::Pearson : ScoreKind::R2;
  pb.fit_intercept = o.fit_intercept;
  pb.standardize = o.standardize;
  pb.eig_precision = o.eig_precision;
  pb.memory_budget = o.memory_budget;
  pb.target_batch = o.target_batch;
  pb.progress = o.progress;
  pb.cancel = o.cancel;
  pb.what = what;
  return pb;
}

// Moves what RidgeResult and BandedRidgeResult share out of the engine's result: the standardised
// model, and the info's route, precision, backend, target batches, flops and memory figures.
template <typename Result>
void move_shared_result(EngineResult& e, const Backend& be, Result& r) {
  r.coef = std::move(e.coef);
  r.intercept = std::move(e.intercept);
  r.x_mean = std::move(e.x_mean);
  r.x_scale = std::move(e.x_scale);
  auto& i = r.info;
  i.solver = e.route;
  i.route = route_by_name(e.route).space;
  i.eig_precision = e.eig_precision;
  i.backend = be.name();
  i.target_batch = e.target_batch;
  i.n_batches = e.n_batches;
  i.gemm_flops = e.gemm_flops;
  i.fixed_bytes = e.fixed_bytes;
  i.batch_bytes = e.batch_bytes;
  i.budget_bytes = e.budget_bytes;
  i.peak_bytes = e.peak_bytes;
}

}  // namespace brainlatent::ridge
