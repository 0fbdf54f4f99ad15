// Node-API surface of the ridge engine: argument conversion, an AsyncWorker per fit, progress
// through a thread-safe function, cancellation tokens, zero-copy typed arrays in and out.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/backend.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"
#include "convert.h"
#include "fit_worker.h"

namespace brainlatent::addon {
namespace {

Napi::Float32Array to_float32_array(Napi::Env env, std::vector<float>&& v) {
  return to_typed<Napi::Float32Array>(env, std::move(v));
}

RidgeCvMethod parse_cv(const Napi::Object& o) {
  const std::string s = attr_string(o, "cvMethod", "auto");
  if (s == "auto") return RidgeCvMethod::Auto;
  if (s == "per-fold") return RidgeCvMethod::PerFold;
  if (s == "exact") return RidgeCvMethod::Exact;
  throw Napi::RangeError::New(o.Env(), "cvMethod must be 'auto', 'per-fold' or 'exact', got '" + s + "'");
}

Napi::Value ridge_result_to_js(Napi::Env env, RidgeResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("nFeatures", Napi::Number::New(env, static_cast<double>(r.n_features)));
  out.Set("nTargets", Napi::Number::New(env, static_cast<double>(r.n_targets)));
  out.Set("coef", to_float32_array(env, std::move(r.coef)));
  out.Set("intercept", to_float32_array(env, std::move(r.intercept)));
  out.Set("xMean", to_float32_array(env, std::move(r.x_mean)));
  out.Set("xScale", to_float32_array(env, std::move(r.x_scale)));
  out.Set("bestAlphas", to_float32_array(env, std::move(r.best_alphas)));
  out.Set("bestScores", to_float32_array(env, std::move(r.best_scores)));
  out.Set("cvScores", to_float32_array(env, std::move(r.cv_scores)));
  const RidgeFitInfo& i = r.info;
  Napi::Object info = Napi::Object::New(env);
  info.Set("route", i.route);
  info.Set("cvMethod", i.cv_method);
  info.Set("eigPrecision", i.eig_precision);
  info.Set("targetBatch", static_cast<double>(i.target_batch));
  info.Set("nBatches", static_cast<double>(i.n_batches));
  info.Set("gemmFlops", i.gemm_flops);
  info.Set("secondsDecompose", i.seconds_decompose);
  info.Set("secondsCv", i.seconds_cv);
  info.Set("secondsRefit", i.seconds_refit);
  info.Set("secondsTotal", i.seconds_total);
  info.Set("edgeLow", i.edge_low);
  info.Set("edgeHigh", i.edge_high);
  info.Set("unresolvedAlphas", i.unresolved_alphas);
  info.Set("alphaResolution", i.alpha_resolution);
  out.Set("info", info);
  return out;
}

// ridgeFit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>
Napi::Value RidgeFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::int64_t n = int_arg(info, 1, "n"), p = int_arg(info, 2, "p"), t = int_arg(info, 4, "t");
  Napi::Float32Array x = f32_arg(info, 0, "X", static_cast<std::size_t>(n * p));
  Napi::Float32Array y = f32_arg(info, 3, "Y", static_cast<std::size_t>(n * t));
  if (!info[5].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[5].As<Napi::Object>();
  RidgeOptions opts;
  auto alphas = attr_typed_array<Napi::Float64Array>(o, "alphas", napi_float64_array, "Float64Array");
  opts.alphas.assign(alphas.Data(), alphas.Data() + alphas.ElementLength());
  auto folds = attr_typed_array<Napi::Int32Array>(o, "folds", napi_int32_array, "Int32Array");
  opts.folds.assign(folds.Data(), folds.Data() + folds.ElementLength());
  opts.n_folds = static_cast<int>(attr_number(o, "nFolds", 0));
  opts.score = parse_score(o);
  opts.fit_intercept = attr_bool(o, "fitIntercept", true);
  opts.standardize = attr_bool(o, "standardize", false);
  opts.route = parse_route(o);
  opts.cv_method = parse_cv(o);
  opts.eig_precision = parse_precision(o);
  opts.memory_budget = static_cast<std::size_t>(attr_number(o, "memoryBudget", 0));
  opts.target_batch = static_cast<std::int64_t>(attr_number(o, "targetBatch", 0));
  auto* worker = new FitWorker<RidgeOptions, RidgeResult>(env, "brainlatent.ridgeFit", ridge_cv_fit, ridge_result_to_js, x, n, p,
                                                          y, t, std::move(opts), cancel_arg(info, 7), progress_arg(info, 6));
  return worker->start();
}

// ridgePredict(x, n, p, coef, t, intercept, xMean, xScale) -> Float32Array (n × t)
Napi::Value RidgePredict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::int64_t n = int_arg(info, 1, "n"), p = int_arg(info, 2, "p"), t = int_arg(info, 4, "t");
  auto x = f32_arg(info, 0, "X", static_cast<std::size_t>(n * p));
  auto coef = f32_arg(info, 3, "coef", static_cast<std::size_t>(p * t));
  auto b = f32_arg(info, 5, "intercept", static_cast<std::size_t>(t));
  auto mean = f32_arg(info, 6, "xMean", static_cast<std::size_t>(p));
  auto scale = f32_arg(info, 7, "xScale", static_cast<std::size_t>(p));
  std::vector<float> out(static_cast<std::size_t>(n * t));
  try {
    ridge_predict({x.Data(), n, p}, coef.Data(), t, b.Data(), mean.Data(), scale.Data(), {out.data(), n, t});
  } catch (const Error& e) {
    throw to_js_error(env, e.code(), e.what());
  }
  return to_float32_array(env, std::move(out));
}

Napi::Value CreateCancelToken(const Napi::CallbackInfo& info) {
  return Napi::External<CancelFlag>::New(info.Env(), new CancelFlag(std::make_shared<std::atomic<bool>>(false)),
                                         [](Napi::Env, CancelFlag* f) { delete f; });
}

Napi::Value Cancel(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "cancel: expected a cancel token");
  (*info[0].As<Napi::External<CancelFlag>>().Data())->store(true);
  return info.Env().Undefined();
}

Napi::Value ContiguousFolds(const Napi::CallbackInfo& info) {
  const std::int64_t n = int_arg(info, 0, "n"), k = int_arg(info, 1, "k");
  try {
    auto f = contiguous_folds(n, static_cast<int>(k));
    auto out = Napi::Int32Array::New(info.Env(), f.size());
    std::copy(f.begin(), f.end(), out.Data());
    return out;
  } catch (const Error& e) {
    throw to_js_error(info.Env(), e.code(), e.what());
  }
}

Napi::Value GroupFolds(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(info.Env(), "groups must be an Int32Array");
  auto g = info[0].As<Napi::Int32Array>();
  const std::int64_t k = int_arg(info, 1, "k");
  try {
    auto f = group_folds(std::vector<std::int32_t>(g.Data(), g.Data() + g.ElementLength()), static_cast<int>(k));
    auto out = Napi::Int32Array::New(info.Env(), f.size());
    std::copy(f.begin(), f.end(), out.Data());
    return out;
  } catch (const Error& e) {
    throw to_js_error(info.Env(), e.code(), e.what());
  }
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_engine_threads(static_cast<int>(int_arg(info, 0, "threads")));
  return Napi::Number::New(info.Env(), engine_threads());
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), engine_threads()); }

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", linalg::blas_vendor());
  o.Set("threads", engine_threads());
  // What was compiled and why not the rest: the registry's list (native/core/src/backend_registry.cpp).
  Napi::Array backends = Napi::Array::New(env), list = Napi::Array::New(env);
  std::string cuda_reason;
  bool cuda = false;
  for (const BackendInfo& b : list_backends()) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", b.name);
    e.Set("compiled", b.compiled);
    e.Set("available", b.available);
    e.Set("detail", b.detail);
    list.Set(list.Length(), e);
    if (b.available) backends.Set(backends.Length(), Napi::String::New(env, b.name));
    if (b.name == "cuda") {
      cuda = b.available;
      cuda_reason = b.detail;
    }
  }
  o.Set("backends", backends);
  o.Set("backendList", list);
  o.Set("cuda", Napi::Boolean::New(env, cuda));
  o.Set("cudaReason", Napi::String::New(env, cuda_reason));
  return o;
}

Napi::Value SgemmGflops(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), linalg::sgemm_gflops(int_arg(info, 0, "n"), static_cast<int>(int_arg(info, 1, "reps"))));
}

}  // namespace

void init_ridge(Napi::Env env, Napi::Object exports) {
  exports.Set("ridgeFit", Napi::Function::New(env, RidgeFit));
  exports.Set("ridgePredict", Napi::Function::New(env, RidgePredict));
  exports.Set("createCancelToken", Napi::Function::New(env, CreateCancelToken));
  exports.Set("cancel", Napi::Function::New(env, Cancel));
  exports.Set("contiguousFolds", Napi::Function::New(env, ContiguousFolds));
  exports.Set("groupFolds", Napi::Function::New(env, GroupFolds));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("sgemmGflops", Napi::Function::New(env, SgemmGflops));
}

}  // namespace brainlatent::addon
