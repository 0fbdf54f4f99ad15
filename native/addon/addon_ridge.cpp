// Node-API surface of the ridge engine: argument conversion, an AsyncWorker per fit, progress
// through a thread-safe function, cancellation tokens, zero-copy typed arrays in and out.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/ridge.h"
#include "convert.h"

namespace brainlatent::addon {
namespace {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// Hands a vector's storage to JS without copying; the ArrayBuffer frees it.
Napi::Float32Array to_float32_array(Napi::Env env, std::vector<float>&& v) {
  auto* holder = new std::vector<float>(std::move(v));
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(float),
                                                 [](Napi::Env, void*, std::vector<float>* h) { delete h; }, holder);
  return Napi::Float32Array::New(env, holder->size(), buf, 0);
}

RidgeRoute parse_route(const std::string& s, Napi::Env env) {
  if (s == "auto") return RidgeRoute::Auto;
  if (s == "primal") return RidgeRoute::Primal;
  if (s == "kernel") return RidgeRoute::Kernel;
  throw Napi::RangeError::New(env, "route must be 'auto', 'primal' or 'kernel', got '" + s + "'");
}
RidgeCvMethod parse_cv(const std::string& s, Napi::Env env) {
  if (s == "auto") return RidgeCvMethod::Auto;
  if (s == "per-fold") return RidgeCvMethod::PerFold;
  if (s == "exact") return RidgeCvMethod::Exact;
  throw Napi::RangeError::New(env, "cvMethod must be 'auto', 'per-fold' or 'exact', got '" + s + "'");
}
EigPrecision parse_precision(const std::string& s, Napi::Env env) {
  if (s == "auto") return EigPrecision::Auto;
  if (s == "float32") return EigPrecision::Float32;
  if (s == "float64") return EigPrecision::Float64;
  throw Napi::RangeError::New(env, "eigPrecision must be 'auto', 'float32' or 'float64', got '" + s + "'");
}

struct Progress {
  double fraction;
  std::string stage;
};

class RidgeFitWorker : public Napi::AsyncWorker {
 public:
  RidgeFitWorker(Napi::Env env, Napi::Float32Array x, std::int64_t n, std::int64_t p, Napi::Float32Array y,
                 std::int64_t t, RidgeOptions opts, CancelFlag cancel, Napi::Function progress)
      : Napi::AsyncWorker(env, "brainlatent.ridgeFit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        x_(Napi::Persistent(x)),
        y_(Napi::Persistent(y)),
        xv_{x.Data(), n, p},
        yv_{y.Data(), n, t},
        opts_(std::move(opts)),
        cancel_(std::move(cancel)) {
    if (!progress.IsEmpty()) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, progress, "brainlatent.ridgeProgress", 0, 1);
      has_progress_ = true;
      opts_.progress = [this](double f, const std::string& stage) {
        auto* msg = new Progress{f, stage};
        if (tsfn_.NonBlockingCall(msg, [](Napi::Env env, Napi::Function cb, Progress* m) {
              cb.Call({Napi::Number::New(env, m->fraction), Napi::String::New(env, m->stage)});
              delete m;
            }) != napi_ok)
          delete msg;
      };
    }
    if (cancel_) opts_.cancel = cancel_.get();
  }

  ~RidgeFitWorker() override {
    if (has_progress_) tsfn_.Release();
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = ridge_cv_fit(xv_, yv_, opts_);
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ErrorCode::NumericalFailure;
      SetError(std::string("ridge fit failed: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("nFeatures", Napi::Number::New(env, static_cast<double>(result_.n_features)));
    out.Set("nTargets", Napi::Number::New(env, static_cast<double>(result_.n_targets)));
    out.Set("coef", to_float32_array(env, std::move(result_.coef)));
    out.Set("intercept", to_float32_array(env, std::move(result_.intercept)));
    out.Set("xMean", to_float32_array(env, std::move(result_.x_mean)));
    out.Set("xScale", to_float32_array(env, std::move(result_.x_scale)));
    out.Set("bestAlphas", to_float32_array(env, std::move(result_.best_alphas)));
    out.Set("bestScores", to_float32_array(env, std::move(result_.best_scores)));
    out.Set("cvScores", to_float32_array(env, std::move(result_.cv_scores)));
    const RidgeFitInfo& i = result_.info;
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
    out.Set("info", info);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(to_js_error(Env(), code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float32Array> x_, y_;  // keep the inputs alive: the fit reads them in place
  ConstMatF xv_, yv_;
  RidgeOptions opts_;
  CancelFlag cancel_;
  Napi::ThreadSafeFunction tsfn_;
  bool has_progress_ = false;
  RidgeResult result_;
  ErrorCode code_ = ErrorCode::NumericalFailure;
};

std::int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v != static_cast<double>(static_cast<std::int64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<std::int64_t>(v);
}

Napi::Float32Array f32_arg(const Napi::CallbackInfo& info, size_t i, const char* name, std::size_t expected) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  auto a = info[i].As<Napi::Float32Array>();
  if (a.ElementLength() != expected)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " has " + std::to_string(a.ElementLength()) +
                                                " elements, expected " + std::to_string(expected));
  return a;
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
  const std::string score = attr_string(o, "score", "r2");
  if (score == "r2") opts.score = RidgeScore::R2;
  else if (score == "pearson") opts.score = RidgeScore::Pearson;
  else throw Napi::RangeError::New(env, "score must be 'r2' or 'pearson', got '" + score + "'");
  opts.fit_intercept = attr_bool(o, "fitIntercept", true);
  opts.standardize = attr_bool(o, "standardize", false);
  opts.route = parse_route(attr_string(o, "route", "auto"), env);
  opts.cv_method = parse_cv(attr_string(o, "cvMethod", "auto"), env);
  opts.eig_precision = parse_precision(attr_string(o, "eigPrecision", "auto"), env);
  opts.memory_budget = static_cast<std::size_t>(attr_number(o, "memoryBudget", 0));
  opts.target_batch = static_cast<std::int64_t>(attr_number(o, "targetBatch", 0));
  Napi::Function progress;
  if (info.Length() > 6 && info[6].IsFunction()) progress = info[6].As<Napi::Function>();
  CancelFlag cancel;
  if (info.Length() > 7 && info[7].IsExternal()) cancel = *info[7].As<Napi::External<CancelFlag>>().Data();
  auto* worker = new RidgeFitWorker(env, x, n, p, y, t, std::move(opts), cancel, progress);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
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
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, Napi::String::New(env, "cpu"));
  o.Set("backends", backends);
  o.Set("cuda", Napi::Boolean::New(env, false));
#ifndef BRAINLATENT_CUDA_REASON
#define BRAINLATENT_CUDA_REASON "not searched (node-gyp builds are CPU-only)"
#endif
  o.Set("cudaReason", Napi::String::New(env, std::string("the engine was built without CUDA: ") + BRAINLATENT_CUDA_REASON));
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
