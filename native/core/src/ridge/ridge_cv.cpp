// RidgeCV: per-target alpha by K-fold CV, then a one-GEMM refit per target batch, on the ridge
// engine (engine.h): one candidate of unit band weights, any route, any backend.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"
#include "brainlatent/ridge.h"
#include "engine.h"

namespace brainlatent {

std::vector<std::string> ridge_route_names() {
  std::vector<std::string> names;
  for (const ridge::RouteSpec& r : ridge::routes()) names.push_back(r.name);
  return names;
}

namespace {
const char* space_name(RidgeRoute r) { return r == RidgeRoute::Primal ? "primal" : r == RidgeRoute::Kernel ? "kernel" : "auto"; }
const char* cv_name(RidgeCvMethod m) { return m == RidgeCvMethod::PerFold ? "per-fold" : m == RidgeCvMethod::Exact ? "exact" : "auto"; }

// The engine's problem of a RidgeCV fit (one candidate of unit band weights).
ridge::Problem ridge_problem(ConstMatF x, ConstMatF y, const RidgeOptions& o, ridge::FoldLayout folds) {
  ridge::Problem pb = ridge::shared_problem(x, y, o, std::move(folds), "ridge fit");
  pb.band_sizes = {x.cols};
  pb.candidates = {1.0};
  return pb;
}
}  // namespace

RidgeCostEstimate ridge_cost_estimate(std::int64_t n, std::int64_t p, std::int64_t t, const std::vector<std::int64_t>& fold_sizes, const RidgeOptions& o) {
  const ridge::Problem pb = ridge_problem({nullptr, n, p}, {nullptr, n, t}, o, ridge::fold_layout_of_sizes(fold_sizes, n));
  std::unique_ptr<Backend> be = make_backend(o.backend);
  const ridge::RouteSpec& spec = ridge::choose_route(pb, *be, o.solver, space_name(o.route), cv_name(o.cv_method));
  return ridge::cost_estimate(pb, *be, spec);
}

RidgeResult ridge_cv_fit(ConstMatF x, ConstMatF y, const RidgeOptions& o) {
  const ridge::Problem pb = ridge_problem(x, y, o, ridge::make_fold_layout(o.folds, o.n_folds, x.rows));
  std::unique_ptr<Backend> be = make_backend(o.backend);
  ridge::EngineResult e = ridge::run(pb, *be, o.solver, space_name(o.route), cv_name(o.cv_method));

  RidgeResult r;
  ridge::move_shared_result(e, *be, r);
  r.n_features = x.cols;
  r.n_targets = y.cols;
  r.best_alphas = std::move(e.best_alpha);
  r.best_scores = std::move(e.best_score);
  r.cv_scores = std::move(e.cv_scores);
  RidgeFitInfo& i = r.info;
  i.cv_method = e.cv_method;
  i.seconds_decompose = e.seconds_setup;
  i.seconds_cv = e.seconds_search;
  i.seconds_refit = e.seconds_refit;
  i.seconds_total = e.seconds_total;
  i.unresolved_alphas = e.unresolved_alphas;
  i.alpha_resolution = e.alpha_resolution;
  i.decompositions = e.decompositions;
  i.float32_redone = e.float32_redone;
  // Share of targets at the grid's edges (ridge.md §5.5): a saturated grid is worth a warning.
  const auto [amin, amax] = std::minmax_element(o.alphas.begin(), o.alphas.end());
  std::int64_t lo = 0, hi = 0;
  for (float a : r.best_alphas) {
    if (o.alphas.size() > 1 && a == static_cast<float>(*amin)) ++lo;
    if (o.alphas.size() > 1 && a == static_cast<float>(*amax)) ++hi;
  }
  i.edge_low = static_cast<double>(lo) / static_cast<double>(y.cols);
  i.edge_high = static_cast<double>(hi) / static_cast<double>(y.cols);
  if (o.progress) o.progress(1.0, "done");
  return r;
}

std::vector<RidgeResult> ridge_cv_fit_many(const std::vector<RidgeProblem>& problems, int concurrency, std::size_t* failed) {
  if (concurrency < 1) throw Error(ErrorCode::InvalidArgument, "ridge_cv_fit_many: concurrency must be at least 1");
  const std::size_t n = problems.size();
  std::vector<RidgeResult> out(n);
  if (n == 0) return out;
  const int workers = static_cast<int>(std::min<std::size_t>(n, static_cast<std::size_t>(concurrency)));
  // Device budgets: each fit's default, the device's free memory shared between the device fits running
  // (budget_of), which a fit's fixed footprint may exceed as a single fit's may — not a hard equal share.
  // The error thrown is the failed problem with the smallest index, whichever failed first in time: a problem is
  // skipped only once one before it has failed, so the first failing problem always runs; the problems after it
  // that are running are stopped (their own cancel flag), those before it finish.
  std::vector<std::atomic<bool>> stop(n);
  for (auto& f : stop) f.store(false);
  std::atomic<bool> watching{false};  // the fits poll stop[i] (else, no watcher thread: their own flags)
  std::atomic<std::size_t> next{0};
  std::mutex m;
  std::size_t first_failed = n;
  std::exception_ptr first;
  auto work = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      {
        std::lock_guard<std::mutex> lock(m);
        if (first_failed < i) continue;
      }
      try {
        RidgeOptions o = problems[i].options;
        if (watching.load()) o.cancel = &stop[i];
        out[i] = ridge_cv_fit(problems[i].x, problems[i].y, o);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (i < first_failed) {
          first_failed = i;
          first = std::current_exception();
          for (std::size_t j = i + 1; j < n; ++j) stop[j].store(true);
        }
      }
    }
  };
  // The callers' own cancel flags reach the fits through theirs (polled every 10 ms while any fit runs). A
  // watcher that cannot be started (the thread limit) leaves each fit its own flag: a failure then no longer
  // stops the later problems, which finish first.
  std::atomic<bool> all_done{false};
  std::thread watch;
  try {
    watch = std::thread([&] {
      while (!all_done.load()) {
        for (std::size_t i = 0; i < n; ++i)
          if (problems[i].options.cancel && problems[i].options.cancel->load()) stop[i].store(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    watching.store(true);
  } catch (...) {
  }
  // (a worker that cannot be started — the process's thread limit — leaves its problems to the others and this
  // thread: `work` takes problems until none is left; the ones started are joined before this frame ends)
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers));
  for (int w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(work);
    } catch (...) {
      break;
    }
  }
  work();
  for (auto& t : pool) t.join();
  all_done.store(true);
  if (watch.joinable()) watch.join();
  if (first) {
    if (failed) *failed = first_failed;
    std::rethrow_exception(first);
  }
  return out;
}

}  // namespace brainlatent
