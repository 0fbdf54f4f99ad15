// Node-API surface of RidgeCV: the fit as an async job (progress, cancel token, zero-copy results),
// many independent fits at once as one job, prediction (sync and async), and the fold assignments.
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/ridge.h"
#include "kit.h"
#include "enums.h"
#include "ridge_fit_job.h"

namespace brainlatent::addon {
namespace {

Napi::Value ridge_result_to_js(Napi::Env env, RidgeResult& r) {
  Napi::Object out = standardised_model_to_js(env, r);
  out.Set("bestAlphas", to_typed<Napi::Float32Array>(env, std::move(r.best_alphas)));
  out.Set("bestScores", to_typed<Napi::Float32Array>(env, std::move(r.best_scores)));
  out.Set("cvScores", to_typed<Napi::Float32Array>(env, std::move(r.cv_scores)));
  const RidgeFitInfo& i = r.info;
  Napi::Object info = fit_info_to_js(env, i);
  info.Set("cvMethod", i.cv_method);
  info.Set("secondsDecompose", i.seconds_decompose);
  info.Set("secondsCv", i.seconds_cv);
  info.Set("secondsRefit", i.seconds_refit);
  info.Set("secondsTotal", i.seconds_total);
  info.Set("edgeLow", i.edge_low);
  info.Set("edgeHigh", i.edge_high);
  info.Set("unresolvedAlphas", i.unresolved_alphas);
  info.Set("alphaResolution", i.alpha_resolution);
  info.Set("decompositions", static_cast<double>(i.decompositions));
  out.Set("info", info);
  return out;
}

// RidgeCV's own option (after the shared ones, read_ridge_options): the CV method.
void read_cv_method(const Napi::Object& o, RidgeOptions& opts) { opts.cv_method = attr_enum(o, "cvMethod", RidgeCvMethod::Auto, kRidgeCvMethods); }

// ridgeFit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>
Napi::Value RidgeFit(const Napi::CallbackInfo& info) {
  return ridge_fit_job<RidgeOptions>(
      info, "ridgeFit", "brainlatent.ridgeFit", read_cv_method,
      [](const ConstMatF& x, const ConstMatF& y, const RidgeOptions& opts) { return ridge_cv_fit(x, y, opts); }, ridge_result_to_js);
}

// One problem of ridgeFitMany, { x, n, p, y, t, options }: X (n × p) and Y (n × t) checked as ridgeFit checks its
// arguments, the options read as its options are. Errors name the problem (`label`). Its arrays go to `keep`.
RidgeProblem read_problem(const Napi::Value& v, const std::string& label, std::vector<Napi::Value>& keep) {
  try {
    if (!v.IsObject() || v.IsArray()) throw Napi::TypeError::New(v.Env(), "must be an object { x, n, p, y, t, options }");
    const Napi::Object o = v.As<Napi::Object>();
    const auto count = [&o](const char* key) {
      if (!has(o, key)) throw Napi::TypeError::New(o.Env(), std::string("'") + key + "' is missing");
      return attr_int(o, key, 0, 0, std::int64_t(1) << 53);
    };
    const std::int64_t n = count("n"), p = count("p"), t = count("t");
    const auto x = attr_array<Napi::Float32Array>(o, "x", static_cast<std::size_t>(n * p));
    const auto y = attr_array<Napi::Float32Array>(o, "y", static_cast<std::size_t>(n * t));
    if (!o.Get("options").IsObject()) throw Napi::TypeError::New(o.Env(), "'options' must be an object");
    const Napi::Object opts = o.Get("options").As<Napi::Object>();
    RidgeProblem problem{{x.Data(), n, p}, {y.Data(), n, t}, {}};
    read_ridge_options(opts, problem.options);
    read_folds(opts, problem.options);
    read_cv_method(opts, problem.options);
    keep.push_back(x);
    keep.push_back(y);
    return problem;
  } catch (Napi::Error& e) {
    e.Value().Set("message", label + ": " + e.Message());
    throw;
  }
}

// The progress of ridgeFitMany's problems: each problem's fraction, their mean reported as the job's progress
// (with the stage of the problem that moved it; one problem's "done" is reported as "fit done" until the last
// problem's: by count, not by the mean reaching 1, which a problem's last step before its "done" can already do,
// and two problems ending together then both said "done").
class ManyProgress {
 public:
  ManyProgress(std::size_t n, std::function<void(double, const std::string&)> report) : fraction_(n, 0.0), report_(std::move(report)) {}
  void update(std::size_t i, double fraction, const std::string& stage) {
    const std::lock_guard<std::mutex> lock(mutex_);
    fraction_[i] = fraction;
    double sum = 0;
    for (double f : fraction_) sum += f;
    const double mean = sum / static_cast<double>(fraction_.size());
    const bool done = stage == "done";
    if (done) ++done_;
    // (under the lock: events from the problems' threads are posted in the order of their means)
    if (report_) report_(mean, done && done_ < fraction_.size() ? std::string("fit done") : stage);
  }

 private:
  std::mutex mutex_;
  std::vector<double> fraction_;
  std::size_t done_ = 0;  // problems that reported "done" (each does once, last)
  std::function<void(double, const std::string&)> report_;
};

// The failure in flight (call in a catch block) as the same error naming problem `i` of `n` ('<label> problem 2 (of 4): …').
[[noreturn]] void rethrow_naming_problem(const std::string& label, std::size_t i, std::size_t n) {
  const Failure f = current_failure(label);
  const std::string message = label + " problem " + std::to_string(i) + " (of " + std::to_string(n) + "): " + f.message;
  if (f.code == ErrorCode::OutOfMemory) throw f.reason == OomReason::Budget ? Error::budget_exceeded(message) : Error::allocation_failed(message);
  throw Error(f.code, message);
}

// ridgeFitMany(problems, concurrency, onProgress?, cancelToken?, label?) -> Promise<result[]>: independent RidgeCV
// fits (ridge_cv_fit_many: up to `concurrency` at once, each on its own backend instance) as one job; results in the
// problems' order, each as ridgeFit's. Progress: the mean fraction over the problems. An error names its problem
// after `label` (default 'ridgeFitMany'): the engine rethrows the failure of the smallest index (and says which),
// stopping the later problems' fits. A cancellation names none.
Napi::Value RidgeFitMany(const Napi::CallbackInfo& info) {
  Args args(info, "ridgeFitMany");
  if (!args[0].IsArray()) throw Napi::TypeError::New(info.Env(), "ridgeFitMany: problems must be an array");
  const Napi::Array list = args[0].As<Napi::Array>();
  const std::int64_t concurrency = args.count(1, "concurrency");
  if (concurrency < 1) throw Napi::RangeError::New(info.Env(), "ridgeFitMany: concurrency must be at least 1");
  auto problems = std::make_shared<std::vector<RidgeProblem>>();
  std::vector<Napi::Value> keep;
  for (std::uint32_t i = 0; i < list.Length(); ++i)
    problems->push_back(read_problem(list.Get(i), "ridgeFitMany problem " + std::to_string(i), keep));
  const int workers = static_cast<int>(std::min<std::int64_t>(concurrency, std::max<std::size_t>(problems->size(), 1)));
  const std::string label = args.length() > 4 && args[4].IsString() ? args.string(4, "label") : std::string("ridgeFitMany");
  auto results = std::make_shared<std::vector<RidgeResult>>();
  return run_job(
      info.Env(), "brainlatent.ridgeFitMany",
      [problems, results, workers, label](JobContext& ctx) {
        const std::size_t n = problems->size();
        auto progress = std::make_shared<ManyProgress>(n, ctx.fraction_progress());
        for (std::size_t i = 0; i < n; ++i) {
          RidgeOptions& o = (*problems)[i].options;
          o.progress = [progress, i](double fraction, const std::string& stage) { progress->update(i, fraction, stage); };
          o.cancel = ctx.cancel_flag();
        }
        std::size_t failed = 0;
        try {
          *results = ridge_cv_fit_many(*problems, workers, &failed);
        } catch (const Error& e) {
          if (e.code() == ErrorCode::Cancelled) throw;
          rethrow_naming_problem(label, failed, n);
        } catch (...) {
          rethrow_naming_problem(label, failed, n);
        }
      },
      [results](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, results->size());
        for (std::size_t i = 0; i < results->size(); ++i) out.Set(static_cast<std::uint32_t>(i), ridge_result_to_js(env, (*results)[i]));
        return out;
      },
      {args.callback(2), args.cancel_token(3), std::move(keep)});
}

// The arguments of ridgePredict and ridgePredictAsync:
// (x, n, p, coef, t, intercept, xMean, xScale, out), checked. `out` (n × t) is the caller's: an array
// V8 allocated (and frees when it is collected), which the engine fills in place. A result in memory of
// the engine's would be an external buffer, whose finalizer Node runs only when the event loop turns:
// 300 sync predicts of 4 MB in one loop grew the process by 1.1 GB while V8 reported 71 MB.
struct PredictArgs {
  Napi::Float32Array x, coef, b, mean, scale, out;
  std::int64_t n, p, t;
};
PredictArgs predict_args(const Args& args) {
  PredictArgs a;
  a.n = args.count(1, "n");
  a.p = args.count(2, "p");
  a.t = args.count(4, "t");
  a.x = args.array<Napi::Float32Array>(0, "X", static_cast<std::size_t>(a.n * a.p));
  a.coef = args.array<Napi::Float32Array>(3, "coef", static_cast<std::size_t>(a.p * a.t));
  a.b = args.array<Napi::Float32Array>(5, "intercept", static_cast<std::size_t>(a.t));
  a.mean = args.array<Napi::Float32Array>(6, "xMean", static_cast<std::size_t>(a.p));
  a.scale = args.array<Napi::Float32Array>(7, "xScale", static_cast<std::size_t>(a.p));
  a.out = args.array<Napi::Float32Array>(8, "out", static_cast<std::size_t>(a.n * a.t));
  return a;
}

// ridgePredict(x, n, p, coef, t, intercept, xMean, xScale, out) -> out (n × t), filled
Napi::Value RidgePredict(const Napi::CallbackInfo& info) {
  PredictArgs a = predict_args(Args(info, "ridgePredict"));
  guarded(info.Env(), "ridge predict", [&] {
    ridge_predict({a.x.Data(), a.n, a.p}, a.coef.Data(), a.t, a.b.Data(), a.mean.Data(), a.scale.Data(), {a.out.Data(), a.n, a.t});
  });
  return a.out;
}

// The NonFinite error for X's first NaN or ±Inf, worded as ts/io/finite.ts nonFiniteAt words it (the value as
// JavaScript prints it), or nothing when X is finite.
void check_finite_x(ConstMatF x, const std::string& label) {
  const std::int64_t n = x.rows * x.cols;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x.data[i];
    if (std::isfinite(v)) continue;
    const char* text = std::isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    throw Error(ErrorCode::NonFinite, label + " contains " + text + " at row " + std::to_string(i / x.cols) + ", column " +
                                          std::to_string(i % x.cols) + ": inputs must be finite");
  }
}

// ridgePredictAsync(x, n, p, coef, t, intercept, xMean, xScale, out, onProgress?, cancelToken?, label?) -> Promise<out>:
// the same on a worker thread, so that a service's event loop keeps running; progress(fraction, 'predict')
// after each of its GEMMs, and the cancel token checked before each and after the last. With `label` (a string),
// X is first checked for NaN/Inf on the job's thread, the error naming `label`: a check on the JS thread before
// the call made the call enter the engine's queue only after it, behind calls made later (reviewer s24-R5).
Napi::Value RidgePredictAsync(const Napi::CallbackInfo& info) {
  Args args(info, "ridgePredictAsync");
  PredictArgs a = predict_args(args);
  const bool check = args.length() > 11 && args[11].IsString();
  const std::string label = check ? args.string(11, "label") : std::string();
  const ConstMatF x{a.x.Data(), a.n, a.p};
  const MatF out{a.out.Data(), a.n, a.t};
  const float *coef = a.coef.Data(), *b = a.b.Data(), *mean = a.mean.Data(), *scale = a.scale.Data();
  const std::int64_t t = a.t;
  // (settled on the JS thread, where the reference is also released)
  auto result = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(a.out));
  return run_job(
      info.Env(), "brainlatent.ridgePredict",
      [=](JobContext& ctx) {
        if (check) check_finite_x(x, label);
        const auto report = ctx.fraction_progress();
        ridge_predict(x, coef, t, b, mean, scale, out, ctx.cancel_flag(),
                      report ? std::function<void(double)>([report](double f) { report(f, "predict"); }) : std::function<void(double)>());
      },
      [result](Napi::Env) -> Napi::Value { return result->Value(); },
      {args.callback(9), args.cancel_token(10), {a.x, a.coef, a.b, a.mean, a.scale, a.out}});
}

// ridgeCostEstimate(n, p, t, foldSizes: Float64Array, options) -> { route, flops, memory }: the flop model
// of the route a fit of this shape would take (options as ridgeFit's, without folds: each fold's size in
// foldSizes), from the dimensions alone, and its memory plan under options.memoryBudget (ridge.h,
// RidgeCostEstimate).
Napi::Value RidgeCostEstimateJs(const Napi::CallbackInfo& info) {
  Args args(info, "ridgeCostEstimate");
  const std::int64_t n = args.count(0, "n"), p = args.count(1, "p"), t = args.count(2, "t");
  const std::vector<std::int64_t> sizes = args.counts(3, "foldSizes");
  Napi::Object o = args.object(4, "options");
  RidgeOptions opts;
  read_ridge_options(o, opts);
  read_cv_method(o, opts);
  const RidgeCostEstimate c = guarded(info.Env(), "ridgeCostEstimate", [&] { return ridge_cost_estimate(n, p, t, sizes, opts); });
  return cost_estimate_to_js(info.Env(), c);
}

// A number of folds as the engine's int: refused past 2^30, not clamped (a clamp planned another number of folds).
int fold_count(std::int64_t k) {
  if (k > (std::int64_t(1) << 30)) throw Error(ErrorCode::InvalidArgument, "folds: " + std::to_string(k) + " folds; at most 2^30 are taken");
  return static_cast<int>(k);
}

Napi::Value ContiguousFolds(const Napi::CallbackInfo& info) {
  Args args(info, "contiguousFolds");
  const std::int64_t n = args.count(0, "n"), k = args.count(1, "k");
  auto f = guarded(info.Env(), "contiguousFolds", [&] { return contiguous_folds(n, fold_count(k)); });
  return to_typed<Napi::Int32Array>(info.Env(), std::move(f));
}

Napi::Value ContiguousFoldSizes(const Napi::CallbackInfo& info) {
  Args args(info, "contiguousFoldSizes");
  const std::int64_t n = args.count(0, "n"), k = args.count(1, "k");
  const auto s = guarded(info.Env(), "contiguousFoldSizes", [&] { return contiguous_fold_sizes(n, fold_count(k)); });
  return to_typed<Napi::Float64Array>(info.Env(), std::vector<double>(s.begin(), s.end()));
}

Napi::Value GroupFolds(const Napi::CallbackInfo& info) {
  Args args(info, "groupFolds");
  auto g = args.array<Napi::Int32Array>(0, "groups");
  const std::int64_t k = args.count(1, "k");
  auto f = guarded(info.Env(), "groupFolds", [&] {
    return group_folds(std::vector<std::int32_t>(g.Data(), g.Data() + g.ElementLength()), fold_count(k));
  });
  return to_typed<Napi::Int32Array>(info.Env(), std::move(f));
}

}  // namespace

void init_ridge(Napi::Env env, Napi::Object exports) {
  exports.Set("ridgeFit", Napi::Function::New(env, RidgeFit, "ridgeFit"));
  exports.Set("ridgeFitMany", Napi::Function::New(env, RidgeFitMany, "ridgeFitMany"));
  exports.Set("ridgePredict", Napi::Function::New(env, RidgePredict, "ridgePredict"));
  exports.Set("ridgePredictAsync", Napi::Function::New(env, RidgePredictAsync, "ridgePredictAsync"));
  exports.Set("ridgeCostEstimate", Napi::Function::New(env, RidgeCostEstimateJs, "ridgeCostEstimate"));
  exports.Set("contiguousFolds", Napi::Function::New(env, ContiguousFolds, "contiguousFolds"));
  exports.Set("contiguousFoldSizes", Napi::Function::New(env, ContiguousFoldSizes, "contiguousFoldSizes"));
  exports.Set("groupFolds", Napi::Function::New(env, GroupFolds, "groupFolds"));
}

}  // namespace brainlatent::addon
