// Node-API surface of banded ridge: an AsyncWorker per fit with progress through a thread-safe
// function and the cancel tokens of addon_ridge.cpp, zero-copy typed arrays in and out.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/banded_ridge.h"
#include "convert.h"

namespace brainlatent::addon {
namespace {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;  // the token type createCancelToken() makes

template <typename T, typename TA>
TA to_typed(Napi::Env env, std::vector<T>&& v) {
  auto* holder = new std::vector<T>(std::move(v));
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(T),
                                                 [](Napi::Env, void*, std::vector<T>* h) { delete h; }, holder);
  return TA::New(env, holder->size(), buf, 0);
}

struct Progress {
  double fraction;
  std::string stage;
};

class BandedFitWorker : public Napi::AsyncWorker {
 public:
  BandedFitWorker(Napi::Env env, Napi::Float32Array x, std::int64_t n, std::int64_t p, Napi::Float32Array y,
                  std::int64_t t, BandedRidgeOptions opts, CancelFlag cancel, Napi::Function progress)
      : Napi::AsyncWorker(env, "brainlatent.bandedRidgeFit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        x_(Napi::Persistent(x)),
        y_(Napi::Persistent(y)),
        xv_{x.Data(), n, p},
        yv_{y.Data(), n, t},
        opts_(std::move(opts)),
        cancel_(std::move(cancel)) {
    if (!progress.IsEmpty()) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, progress, "brainlatent.bandedProgress", 0, 1);
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
  ~BandedFitWorker() override {
    if (has_progress_) tsfn_.Release();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = banded_ridge_fit(xv_, yv_, opts_);
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ErrorCode::NumericalFailure;
      SetError(std::string("banded ridge fit failed: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("nFeatures", static_cast<double>(result_.n_features));
    out.Set("nTargets", static_cast<double>(result_.n_targets));
    out.Set("nBands", static_cast<double>(result_.n_bands));
    out.Set("coef", to_typed<float, Napi::Float32Array>(env, std::move(result_.coef)));
    out.Set("intercept", to_typed<float, Napi::Float32Array>(env, std::move(result_.intercept)));
    out.Set("xMean", to_typed<float, Napi::Float32Array>(env, std::move(result_.x_mean)));
    out.Set("xScale", to_typed<float, Napi::Float32Array>(env, std::move(result_.x_scale)));
    out.Set("gammas", to_typed<double, Napi::Float64Array>(env, std::move(result_.gammas)));
    out.Set("bestGamma", to_typed<std::int32_t, Napi::Int32Array>(env, std::move(result_.best_gamma)));
    out.Set("bestAlpha", to_typed<float, Napi::Float32Array>(env, std::move(result_.best_alpha)));
    out.Set("bestScores", to_typed<float, Napi::Float32Array>(env, std::move(result_.best_scores)));
    out.Set("gammaScores", to_typed<float, Napi::Float32Array>(env, std::move(result_.gamma_scores)));
    const BandedRidgeInfo& i = result_.info;
    Napi::Object info = Napi::Object::New(env);
    info.Set("route", i.route);
    info.Set("eigPrecision", i.eig_precision);
    info.Set("nGammas", static_cast<double>(i.n_gammas));
    info.Set("targetBatch", static_cast<double>(i.target_batch));
    info.Set("nBatches", static_cast<double>(i.n_batches));
    info.Set("eigendecompositions", static_cast<double>(i.eigendecompositions));
    info.Set("refitGroups", static_cast<double>(i.refit_groups));
    info.Set("gemmFlops", i.gemm_flops);
    info.Set("secondsGram", i.seconds_gram);
    info.Set("secondsSearch", i.seconds_search);
    info.Set("secondsRefit", i.seconds_refit);
    info.Set("secondsTotal", i.seconds_total);
    out.Set("info", info);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(to_js_error(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float32Array> x_, y_;
  ConstMatF xv_, yv_;
  BandedRidgeOptions opts_;
  CancelFlag cancel_;
  Napi::ThreadSafeFunction tsfn_;
  bool has_progress_ = false;
  BandedRidgeResult result_;
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

// bandedRidgeFit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>
Napi::Value BandedRidgeFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::int64_t n = int_arg(info, 1, "n"), p = int_arg(info, 2, "p"), t = int_arg(info, 4, "t");
  Napi::Float32Array x = f32_arg(info, 0, "X", static_cast<std::size_t>(n * p));
  Napi::Float32Array y = f32_arg(info, 3, "Y", static_cast<std::size_t>(n * t));
  if (!info[5].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[5].As<Napi::Object>();
  BandedRidgeOptions opts;
  auto bands = attr_typed_array<Napi::Float64Array>(o, "bandSizes", napi_float64_array, "Float64Array");
  for (std::size_t i = 0; i < bands.ElementLength(); ++i) opts.band_sizes.push_back(static_cast<std::int64_t>(bands[i]));
  auto alphas = attr_typed_array<Napi::Float64Array>(o, "alphas", napi_float64_array, "Float64Array");
  opts.alphas.assign(alphas.Data(), alphas.Data() + alphas.ElementLength());
  if (has(o, "gammas")) {
    auto g = attr_typed_array<Napi::Float64Array>(o, "gammas", napi_float64_array, "Float64Array");
    opts.gammas.assign(g.Data(), g.Data() + g.ElementLength());
  }
  if (has(o, "concentrations")) {
    auto c = attr_typed_array<Napi::Float64Array>(o, "concentrations", napi_float64_array, "Float64Array");
    opts.concentrations.assign(c.Data(), c.Data() + c.ElementLength());
  }
  opts.n_iter = static_cast<int>(attr_number(o, "nIter", 100));
  opts.seed = static_cast<std::uint64_t>(attr_number(o, "seed", 0));
  auto folds = attr_typed_array<Napi::Int32Array>(o, "folds", napi_int32_array, "Int32Array");
  opts.folds.assign(folds.Data(), folds.Data() + folds.ElementLength());
  opts.n_folds = static_cast<int>(attr_number(o, "nFolds", 0));
  const std::string score = attr_string(o, "score", "r2");
  if (score == "r2") opts.score = RidgeScore::R2;
  else if (score == "pearson") opts.score = RidgeScore::Pearson;
  else throw Napi::RangeError::New(env, "score must be 'r2' or 'pearson', got '" + score + "'");
  opts.fit_intercept = attr_bool(o, "fitIntercept", true);
  opts.standardize = attr_bool(o, "standardize", false);
  const std::string route = attr_string(o, "route", "auto");
  if (route == "auto") opts.route = RidgeRoute::Auto;
  else if (route == "primal") opts.route = RidgeRoute::Primal;
  else if (route == "kernel") opts.route = RidgeRoute::Kernel;
  else throw Napi::RangeError::New(env, "route must be 'auto', 'primal' or 'kernel', got '" + route + "'");
  const std::string prec = attr_string(o, "eigPrecision", "auto");
  if (prec == "auto") opts.eig_precision = EigPrecision::Auto;
  else if (prec == "float32") opts.eig_precision = EigPrecision::Float32;
  else if (prec == "float64") opts.eig_precision = EigPrecision::Float64;
  else throw Napi::RangeError::New(env, "eigPrecision must be 'auto', 'float32' or 'float64', got '" + prec + "'");
  opts.memory_budget = static_cast<std::size_t>(attr_number(o, "memoryBudget", 0));
  opts.target_batch = static_cast<std::int64_t>(attr_number(o, "targetBatch", 0));
  Napi::Function progress;
  if (info.Length() > 6 && info[6].IsFunction()) progress = info[6].As<Napi::Function>();
  CancelFlag cancel;
  if (info.Length() > 7 && info[7].IsExternal()) cancel = *info[7].As<Napi::External<CancelFlag>>().Data();
  auto* worker = new BandedFitWorker(env, x, n, p, y, t, std::move(opts), cancel, progress);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// dirichletGammas(nSamples, nBands, concentrations: Float64Array, seed) -> Float64Array
Napi::Value DirichletGammas(const Napi::CallbackInfo& info) {
  const std::int64_t ns = int_arg(info, 0, "nSamples"), nb = int_arg(info, 1, "nBands"), seed = int_arg(info, 3, "seed");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), "concentrations must be a Float64Array");
  auto c = info[2].As<Napi::Float64Array>();
  try {
    auto g = dirichlet_gammas(static_cast<int>(ns), static_cast<int>(nb), std::vector<double>(c.Data(), c.Data() + c.ElementLength()),
                              static_cast<std::uint64_t>(seed));
    return to_typed<double, Napi::Float64Array>(info.Env(), std::move(g));
  } catch (const Error& e) {
    throw to_js_error(info.Env(), e.code(), e.what());
  }
}

}  // namespace

void init_banded(Napi::Env env, Napi::Object exports) {
  exports.Set("bandedRidgeFit", Napi::Function::New(env, BandedRidgeFit));
  exports.Set("dirichletGammas", Napi::Function::New(env, DirichletGammas));
}

}  // namespace brainlatent::addon
