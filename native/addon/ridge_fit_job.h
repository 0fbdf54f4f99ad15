// What the fits of RidgeCV and banded ridge share at the JS boundary: the job that runs one
// (X and Y checked against n, p, t; the shared options read; progress, cancel and zero-copy
// inputs), and the parts of their results that have the same meaning (the standardised model, the
// route and the memory figures). Each solver adds only its own options and fields.
#pragma once
#include <memory>

#include "brainlatent/ridge.h"
#include "enums.h"
#include "kit.h"

namespace brainlatent::addon {

// fit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>. read_own(options, opts)
// reads the solver's own options after the shared ones; fit(X, Y, opts) runs on the worker thread;
// to_js(env, result) builds the result object on the main thread.
template <typename Options, typename ReadOwn, typename Fit, typename ToJs>
Napi::Value ridge_fit_job(const Napi::CallbackInfo& info, const char* name, const char* job_name, ReadOwn read_own, Fit fit, ToJs to_js) {
  Args args(info, name);
  const std::int64_t n = args.count(1, "n"), p = args.count(2, "p"), t = args.count(4, "t");
  Napi::Float32Array x = args.array<Napi::Float32Array>(0, "X", static_cast<std::size_t>(n * p));
  Napi::Float32Array y = args.array<Napi::Float32Array>(3, "Y", static_cast<std::size_t>(n * t));
  Napi::Object o = args.object(5, "options");
  auto opts = std::make_shared<Options>();
  read_ridge_options(o, *opts);
  read_folds(o, *opts);
  read_own(o, *opts);
  const ConstMatF xv{x.Data(), n, p}, yv{y.Data(), n, t};
  using Result = decltype(fit(xv, yv, *opts));
  auto result = std::make_shared<Result>();
  return run_job(
      info.Env(), job_name,
      [opts, xv, yv, result, fit](JobContext& ctx) {
        opts->progress = ctx.fraction_progress();
        opts->cancel = ctx.cancel_flag();
        *result = fit(xv, yv, *opts);
      },
      [result, to_js](Napi::Env env) { return to_js(env, *result); },
      {args.callback(6), args.cancel_token(7), {x, y}});
}

// The model, moved out zero-copy: prediction is ((X − xMean) / xScale) · coef + intercept.
template <typename Result>
Napi::Object standardised_model_to_js(Napi::Env env, Result& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("nFeatures", static_cast<double>(r.n_features));
  out.Set("nTargets", static_cast<double>(r.n_targets));
  out.Set("coef", to_typed<Napi::Float32Array>(env, std::move(r.coef)));
  out.Set("intercept", to_typed<Napi::Float32Array>(env, std::move(r.intercept)));
  out.Set("xMean", to_typed<Napi::Float32Array>(env, std::move(r.x_mean)));
  out.Set("xScale", to_typed<Napi::Float32Array>(env, std::move(r.x_scale)));
  return out;
}

// The fit's solver, backend, route, precision, target batches, GEMM flops and memory figures.
template <typename Info>
Napi::Object fit_info_to_js(Napi::Env env, const Info& i) {
  Napi::Object info = Napi::Object::New(env);
  info.Set("solver", i.solver);
  info.Set("backend", i.backend);
  info.Set("route", i.route);
  info.Set("eigPrecision", i.eig_precision);
  info.Set("targetBatch", static_cast<double>(i.target_batch));
  info.Set("nBatches", static_cast<double>(i.n_batches));
  info.Set("gemmFlops", i.gemm_flops);
  info.Set("fixedBytes", static_cast<double>(i.fixed_bytes));
  info.Set("batchBytes", static_cast<double>(i.batch_bytes));
  info.Set("budgetBytes", static_cast<double>(i.budget_bytes));
  info.Set("peakBytes", static_cast<double>(i.peak_bytes));
  return info;
}

// ridgeCostEstimate's and bandedRidgeCostEstimate's answer: { route, flops, memory } (ridge.h, RidgeCostEstimate).
inline Napi::Object cost_estimate_to_js(Napi::Env env, const RidgeCostEstimate& c) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("route", c.route);
  out.Set("flops", c.flops);
  Napi::Object m = Napi::Object::New(env);
  m.Set("fixedBytes", static_cast<double>(c.fixed_bytes));
  m.Set("xCopyBytes", static_cast<double>(c.x_copy_bytes));
  m.Set("routeBytes", static_cast<double>(c.route_bytes));
  m.Set("bytesPerTarget", c.bytes_per_target);
  m.Set("budgetBytes", static_cast<double>(c.budget_bytes));
  m.Set("targetBatch", static_cast<double>(c.target_batch));
  m.Set("nBatches", static_cast<double>(c.n_batches));
  m.Set("batchBytes", static_cast<double>(c.batch_bytes));
  m.Set("fits", c.fits);
  out.Set("memory", m);
  return out;
}

}  // namespace brainlatent::addon
