// Shared pieces of the addon's fit entry points (ridge, banded ridge): argument accessors, the
// option enums, zero-copy result arrays, and one AsyncWorker that runs a core fit on X and Y read
// in place, with progress through a thread-safe function and a cancel token.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/matrix.h"
#include "brainlatent/ridge.h"
#include "convert.h"

namespace brainlatent::addon {

// What createCancelToken() returns (as an External) and fits hold while they run.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// Hands a vector's storage to JS without copying; the ArrayBuffer frees it.
template <typename TA, typename T>
TA to_typed(Napi::Env env, std::vector<T>&& v) {
  auto* holder = new std::vector<T>(std::move(v));
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, holder->data(), holder->size() * sizeof(T),
                                                 [](Napi::Env, void*, std::vector<T>* h) { delete h; }, holder);
  return TA::New(env, holder->size(), buf, 0);
}

inline std::int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v != static_cast<double>(static_cast<std::int64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<std::int64_t>(v);
}

inline Napi::Float32Array f32_arg(const Napi::CallbackInfo& info, size_t i, const char* name, std::size_t expected) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  auto a = info[i].As<Napi::Float32Array>();
  if (a.ElementLength() != expected)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " has " + std::to_string(a.ElementLength()) +
                                                " elements, expected " + std::to_string(expected));
  return a;
}

inline RidgeScore parse_score(const Napi::Object& o) {
  const std::string s = attr_string(o, "score", "r2");
  if (s == "r2") return RidgeScore::R2;
  if (s == "pearson") return RidgeScore::Pearson;
  throw Napi::RangeError::New(o.Env(), "score must be 'r2' or 'pearson', got '" + s + "'");
}

inline RidgeRoute parse_route(const Napi::Object& o) {
  const std::string s = attr_string(o, "route", "auto");
  if (s == "auto") return RidgeRoute::Auto;
  if (s == "primal") return RidgeRoute::Primal;
  if (s == "kernel") return RidgeRoute::Kernel;
  throw Napi::RangeError::New(o.Env(), "route must be 'auto', 'primal' or 'kernel', got '" + s + "'");
}

inline EigPrecision parse_precision(const Napi::Object& o) {
  const std::string s = attr_string(o, "eigPrecision", "auto");
  if (s == "auto") return EigPrecision::Auto;
  if (s == "float32") return EigPrecision::Float32;
  if (s == "float64") return EigPrecision::Float64;
  throw Napi::RangeError::New(o.Env(), "eigPrecision must be 'auto', 'float32' or 'float64', got '" + s + "'");
}

inline Napi::Function progress_arg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsFunction() ? info[i].As<Napi::Function>() : Napi::Function();
}

inline CancelFlag cancel_arg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsExternal() ? *info[i].As<Napi::External<CancelFlag>>().Data() : CancelFlag();
}

// Runs fit(X, Y, options) off the JS thread and settles a promise with to_js(result). Options must
// have `progress` (std::function<void(double, const std::string&)>) and `cancel` (atomic<bool>*).
template <typename Options, typename Result>
class FitWorker : public Napi::AsyncWorker {
 public:
  using Fit = std::function<Result(ConstMatF, ConstMatF, const Options&)>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  FitWorker(Napi::Env env, const char* name, Fit fit, ToJs to_js, Napi::Float32Array x, std::int64_t n,
            std::int64_t p, Napi::Float32Array y, std::int64_t t, Options opts, CancelFlag cancel,
            Napi::Function progress)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        x_(Napi::Persistent(x)),
        y_(Napi::Persistent(y)),
        xv_{x.Data(), n, p},
        yv_{y.Data(), n, t},
        opts_(std::move(opts)),
        cancel_(std::move(cancel)),
        fit_(std::move(fit)),
        to_js_(std::move(to_js)),
        name_(name) {
    if (!progress.IsEmpty()) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, progress, std::string(name) + ".progress", 0, 1);
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

  ~FitWorker() override {
    if (has_progress_) tsfn_.Release();
  }

  // Queues the worker and returns its promise (the worker deletes itself when done).
  Napi::Promise start() {
    Napi::Promise p = deferred_.Promise();
    Queue();
    return p;
  }

  void Execute() override {
    try {
      result_ = fit_(xv_, yv_, opts_);
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ErrorCode::NumericalFailure;
      SetError(name_ + " failed: " + e.what());
    }
  }

  void OnOK() override { deferred_.Resolve(to_js_(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(to_js_error(Env(), code_, e.Message()).Value()); }

 private:
  struct Progress {
    double fraction;
    std::string stage;
  };
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Float32Array> x_, y_;  // keep the inputs alive: the fit reads them in place
  ConstMatF xv_, yv_;
  Options opts_;
  CancelFlag cancel_;
  Fit fit_;
  ToJs to_js_;
  std::string name_;
  Napi::ThreadSafeFunction tsfn_;
  bool has_progress_ = false;
  Result result_;
  ErrorCode code_ = ErrorCode::NumericalFailure;
};

}  // namespace brainlatent::addon
