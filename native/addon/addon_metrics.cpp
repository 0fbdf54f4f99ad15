// Node-API surface of the image metrics: each call reads its inputs in place, runs the core function
// as an async job (the inputs are held until it settles) and resolves a typed array without a copy.
// Each takes the kit's cancel token (the core loops poll it between images or rows, through the job's
// CancelScope: kit.cpp compute()), and pixcorr/ssim a progress callback told (imagesDone, imagesTotal).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/image_resize.h"
#include "brainlatent/metrics.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

// Shared arguments of pixcorr/ssim: (a, b, count, height, width, channels, ...)
struct ImagePair {
  Napi::Uint8Array a, b;
  ImageBatchU8 ia, ib;
};
ImagePair image_pair(const Args& args) {
  const std::int64_t n = args.count(2, "count"), h = args.count(3, "height"), w = args.count(4, "width"),
                     c = args.count(5, "channels");
  const auto size = static_cast<std::size_t>(n * h * w * c);
  ImagePair p;
  p.a = args.array<Napi::Uint8Array>(0, "a", size);
  p.b = args.array<Napi::Uint8Array>(1, "b", size);
  p.ia = {p.a.Data(), n, h, w, c};
  p.ib = {p.b.Data(), n, h, w, c};
  return p;
}

// A metric computed off the JS thread into a vector, resolved as the typed array TA.
template <typename TA, typename T>
Napi::Promise metric_job(Napi::Env env, const char* name, std::function<std::vector<T>(JobContext&)> body, JobOptions options) {
  auto out = std::make_shared<std::vector<T>>();
  return run_job(
      env, name, [body, out](JobContext& ctx) { *out = body(ctx); },
      [out](Napi::Env e) { return to_typed<TA>(e, std::move(*out)); }, std::move(options));
}

// The job's progress(imagesDone, imagesTotal) events for a batch of `total` pairs: about a hundred of them at most
// (every step-th pair and the last), not one per pair (pixcorr does thousands a second). Empty without a callback.
ImagesDone images_progress(const JobContext& ctx, std::int64_t total) {
  if (!ctx.reports_progress()) return {};
  const std::int64_t step = std::max<std::int64_t>(1, total / 100);
  return [&ctx, total, step](std::int64_t done) {
    if (done % step != 0 && done != total) return;
    ctx.post([done, total](Napi::Env env) -> std::vector<napi_value> {
      return {Napi::Number::New(env, static_cast<double>(done)), Napi::Number::New(env, static_cast<double>(total))};
    });
  };
}

// metricsPixcorr(a, b, count, height, width, channels, onProgress?, cancelToken?) -> Promise<Float64Array>
Napi::Value Pixcorr(const Napi::CallbackInfo& info) {
  Args args(info, "metricsPixcorr");
  ImagePair p = image_pair(args);
  return metric_job<Napi::Float64Array, double>(
      info.Env(), "brainlatent.pixcorr",
      [ia = p.ia, ib = p.ib](JobContext& ctx) { return pixcorr(ia, ib, images_progress(ctx, ia.count)); },
      {args.callback(6), args.cancel_token(7), {p.a, p.b}});
}

// metricsSsim(a, b, count, height, width, channels, {sigma, truncate, dataRange}, onProgress?, cancelToken?)
//   -> Promise<Float64Array>
Napi::Value Ssim(const Napi::CallbackInfo& info) {
  Args args(info, "metricsSsim");
  ImagePair p = image_pair(args);
  SsimOptions o;
  if (args.length() > 6 && args[6].IsObject()) {
    Napi::Object opts = args[6].As<Napi::Object>();
    o.sigma = attr_number(opts, "sigma", o.sigma);
    o.truncate = attr_number(opts, "truncate", o.truncate);
    o.data_range = attr_number(opts, "dataRange", o.data_range);
  }
  return metric_job<Napi::Float64Array, double>(
      info.Env(), "brainlatent.ssim",
      [ia = p.ia, ib = p.ib, o](JobContext& ctx) { return ssim(ia, ib, o, images_progress(ctx, ia.count)); },
      {args.callback(7), args.cancel_token(8), {p.a, p.b}});
}

// metricsCorrelation(a, nA, b, nB, dim, cancelToken?) -> Promise<Float32Array> (nA × nB Pearson r)
Napi::Value Correlation(const Napi::CallbackInfo& info) {
  Args args(info, "metricsCorrelation");
  const std::int64_t na = args.count(1, "nA"), nb = args.count(3, "nB"), dim = args.count(4, "dim");
  auto a = args.array<Napi::Float32Array>(0, "a", static_cast<std::size_t>(na * dim));
  auto b = args.array<Napi::Float32Array>(2, "b", static_cast<std::size_t>(nb * dim));
  const float* pa = a.Data();
  const float* pb = b.Data();
  return metric_job<Napi::Float32Array, float>(
      info.Env(), "brainlatent.correlation", [pa, pb, na, nb, dim](JobContext&) { return correlation_matrix(pa, na, pb, nb, dim); },
      {Napi::Function(), args.cancel_token(5), {a, b}});
}

// metricsPixelCorrelation(a: Uint8Array, nA, b: Uint8Array, nB, dim, cancelToken?) -> Promise<Float32Array>: the same
// Pearson r on rows of bytes (images' pixels), with no float copy of them in JS
Napi::Value PixelCorrelation(const Napi::CallbackInfo& info) {
  Args args(info, "metricsPixelCorrelation");
  const std::int64_t na = args.count(1, "nA"), nb = args.count(3, "nB"), dim = args.count(4, "dim");
  auto a = args.array<Napi::Uint8Array>(0, "a", static_cast<std::size_t>(na * dim));
  auto b = args.array<Napi::Uint8Array>(2, "b", static_cast<std::size_t>(nb * dim));
  const std::uint8_t* pa = a.Data();
  const std::uint8_t* pb = b.Data();
  return metric_job<Napi::Float32Array, float>(
      info.Env(), "brainlatent.pixelCorrelation", [pa, pb, na, nb, dim](JobContext&) { return correlation_matrix_u8(pa, na, pb, nb, dim); },
      {Napi::Function(), args.cancel_token(5), {a, b}});
}

// imageResizeRgb(src, width, height, dst, outWidth, outHeight): resize_rgb on the calling thread, into dst (the
// caller's, out_height × out_width × 3 bytes); a few ms at 512 → 425 px (a worker thread's, ts/io/pngThread.ts).
Napi::Value ResizeRgb(const Napi::CallbackInfo& info) {
  Args args(info, "imageResizeRgb");
  const std::int64_t w = args.count(1, "width"), h = args.count(2, "height"), ow = args.count(4, "outWidth"), oh = args.count(5, "outHeight");
  auto src = args.array<Napi::Uint8Array>(0, "src", static_cast<std::size_t>(w * h * 3));
  auto dst = args.array<Napi::Uint8Array>(3, "dst", static_cast<std::size_t>(ow * oh * 3));
  try {
    resize_rgb(src.Data(), w, h, dst.Data(), ow, oh);
  } catch (const Error& e) {
    throw to_js_error(info.Env(), e.code(), e.what());
  }
  return info.Env().Undefined();
}

}  // namespace

void init_metrics(Napi::Env env, Napi::Object exports) {
  exports.Set("metricsPixelCorrelation", Napi::Function::New(env, PixelCorrelation, "metricsPixelCorrelation"));
  exports.Set("metricsPixcorr", Napi::Function::New(env, Pixcorr, "metricsPixcorr"));
  exports.Set("metricsSsim", Napi::Function::New(env, Ssim, "metricsSsim"));
  exports.Set("metricsCorrelation", Napi::Function::New(env, Correlation, "metricsCorrelation"));
  exports.Set("imageResizeRgb", Napi::Function::New(env, ResizeRgb, "imageResizeRgb"));
}

}  // namespace brainlatent::addon
