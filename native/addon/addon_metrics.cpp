// Node-API surface of the image metrics: each call copies nothing, runs the core function in an
// AsyncWorker (the inputs are held by reference until it finishes) and resolves a typed array.
#include <functional>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/metrics.h"
#include "convert.h"

namespace brainlatent::addon {
namespace {

template <typename T, typename TA>
class MetricsWorker : public Napi::AsyncWorker {
 public:
  MetricsWorker(Napi::Env env, std::vector<Napi::Value> keep, std::function<std::vector<T>()> body)
      : Napi::AsyncWorker(env, "brainlatent.metrics"), deferred_(Napi::Promise::Deferred::New(env)), body_(std::move(body)) {
    for (auto& v : keep) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      result_ = body_();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(std::string("metrics failed: ") + e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    TA out = TA::New(env, result_.size());
    for (std::size_t i = 0; i < result_.size(); ++i) out[i] = result_[i];
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(to_js_error(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_;
  std::function<std::vector<T>()> body_;
  std::vector<T> result_;
  ErrorCode code_ = ErrorCode::NumericalFailure;
};

std::int64_t count_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v != static_cast<double>(static_cast<std::int64_t>(v)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<std::int64_t>(v);
}

template <typename TA>
TA array_arg(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type, const char* type_name,
             std::size_t expected) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a " + type_name);
  TA a = info[i].As<TA>();
  if (a.ElementLength() != expected)
    throw Napi::RangeError::New(info.Env(), std::string(name) + " has " + std::to_string(a.ElementLength()) +
                                                " elements, expected " + std::to_string(expected));
  return a;
}

// Shared argument parsing of pixcorr/ssim: (a, b, count, height, width, channels, ...)
struct ImagePair {
  Napi::Uint8Array a, b;
  ImageBatchU8 ia, ib;
};
ImagePair image_pair(const Napi::CallbackInfo& info) {
  const std::int64_t n = count_arg(info, 2, "count"), h = count_arg(info, 3, "height"), w = count_arg(info, 4, "width"),
                     c = count_arg(info, 5, "channels");
  const auto size = static_cast<std::size_t>(n * h * w * c);
  ImagePair p;
  p.a = array_arg<Napi::Uint8Array>(info, 0, "a", napi_uint8_array, "Uint8Array", size);
  p.b = array_arg<Napi::Uint8Array>(info, 1, "b", napi_uint8_array, "Uint8Array", size);
  p.ia = {p.a.Data(), n, h, w, c};
  p.ib = {p.b.Data(), n, h, w, c};
  return p;
}

// metricsPixcorr(a, b, count, height, width, channels) -> Promise<Float64Array>
Napi::Value Pixcorr(const Napi::CallbackInfo& info) {
  ImagePair p = image_pair(info);
  auto* worker = new MetricsWorker<double, Napi::Float64Array>(info.Env(), {p.a, p.b},
                                                              [ia = p.ia, ib = p.ib] { return pixcorr(ia, ib); });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// metricsSsim(a, b, count, height, width, channels, {sigma, truncate, dataRange}) -> Promise<Float64Array>
Napi::Value Ssim(const Napi::CallbackInfo& info) {
  ImagePair p = image_pair(info);
  SsimOptions o;
  if (info.Length() > 6 && info[6].IsObject()) {
    Napi::Object opts = info[6].As<Napi::Object>();
    o.sigma = attr_number(opts, "sigma", o.sigma);
    o.truncate = attr_number(opts, "truncate", o.truncate);
    o.data_range = attr_number(opts, "dataRange", o.data_range);
  }
  auto* worker = new MetricsWorker<double, Napi::Float64Array>(info.Env(), {p.a, p.b},
                                                              [ia = p.ia, ib = p.ib, o] { return ssim(ia, ib, o); });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// metricsCorrelation(a, nA, b, nB, dim) -> Promise<Float32Array> (nA × nB Pearson r)
Napi::Value Correlation(const Napi::CallbackInfo& info) {
  const std::int64_t na = count_arg(info, 1, "nA"), nb = count_arg(info, 3, "nB"), dim = count_arg(info, 4, "dim");
  auto a = array_arg<Napi::Float32Array>(info, 0, "a", napi_float32_array, "Float32Array", static_cast<std::size_t>(na * dim));
  auto b = array_arg<Napi::Float32Array>(info, 2, "b", napi_float32_array, "Float32Array", static_cast<std::size_t>(nb * dim));
  const float* pa = a.Data();
  const float* pb = b.Data();
  auto* worker = new MetricsWorker<float, Napi::Float32Array>(
      info.Env(), {a, b}, [pa, pb, na, nb, dim] { return correlation_matrix(pa, na, pb, nb, dim); });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void init_metrics(Napi::Env env, Napi::Object exports) {
  exports.Set("metricsPixcorr", Napi::Function::New(env, Pixcorr));
  exports.Set("metricsSsim", Napi::Function::New(env, Ssim));
  exports.Set("metricsCorrelation", Napi::Function::New(env, Correlation));
}

}  // namespace brainlatent::addon
