// The sampler's Node-API surface: ONNX Runtime loading, SD pipelines as handles, and async jobs
// (AsyncWorker) for loading, encoding, decoding and the fused img2img loop. Progress crosses
// threads through a ThreadSafeFunction; cancellation is an atomic flag the loop checks before
// every step. No algorithm lives here: arguments are copied into core structs and results out.
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/error.h"
#include "brainlatent/ort_runtime.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"
#include "brainlatent/sd_fused_step.h"
#include "brainlatent/sd_pipeline.h"
#include "convert.h"
#include "ort_options.h"

namespace brainlatent::addon {
namespace {

using PipelinePtr = std::shared_ptr<SdPipeline>;
struct PipelineHolder {
  PipelinePtr sd;
};

[[noreturn]] void throw_type(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, m); }

Napi::Value js_error_value(Napi::Env env, ErrorCode code, const std::string& message) {
  return to_js_error(env, code, message).Value();
}

PipelinePtr pipeline_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw_type(v.Env(), "expected an SD pipeline handle");
  auto* h = v.As<Napi::External<PipelineHolder>>().Data();
  if (!h->sd) throw Napi::Error::New(v.Env(), "this Diffusion pipeline was disposed");
  return h->sd;
}

template <typename T>
T typed(const Napi::Value& v, napi_typedarray_type type, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(v.Env(), std::string(what) + " has the wrong typed-array type");
  return v.As<T>();
}

std::int64_t int_of(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw_type(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

std::vector<NoiseKey> keys_of(const Napi::Value& seeds, const Napi::Value& indices, std::int64_t count) {
  auto s = typed<Napi::Float64Array>(seeds, napi_float64_array, "seeds");
  auto i = typed<Napi::Float64Array>(indices, napi_float64_array, "imageIndices");
  if (static_cast<std::int64_t>(s.ElementLength()) != count || static_cast<std::int64_t>(i.ElementLength()) != count)
    throw Napi::RangeError::New(seeds.Env(), "seeds and imageIndices need one entry per image");
  std::vector<NoiseKey> keys(static_cast<std::size_t>(count));
  for (std::int64_t k = 0; k < count; ++k)
    keys[static_cast<std::size_t>(k)] = {static_cast<std::uint64_t>(s[static_cast<std::size_t>(k)]),
                                         static_cast<std::uint64_t>(i[static_cast<std::size_t>(k)])};
  return keys;
}

Napi::Object tensor_info(Napi::Env env, const SdTensorInfo& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", t.name);
  o.Set("dtype", t.dtype);
  Napi::Array shape = Napi::Array::New(env, t.shape.size());
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] >= 0) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.shape[i])));
    else shape.Set(static_cast<uint32_t>(i), Napi::String::New(env, t.dims[i].empty() ? "?" : t.dims[i]));
  }
  o.Set("shape", shape);
  return o;
}

Napi::Object summary_of(Napi::Env env, const SdSummary& s) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array models = Napi::Array::New(env, s.models.size());
  for (std::size_t m = 0; m < s.models.size(); ++m) {
    Napi::Object mo = Napi::Object::New(env);
    mo.Set("component", s.models[m].component);
    mo.Set("path", s.models[m].path);
    Napi::Array ins = Napi::Array::New(env), outs = Napi::Array::New(env);
    for (std::size_t i = 0; i < s.models[m].inputs.size(); ++i) ins.Set(static_cast<uint32_t>(i), tensor_info(env, s.models[m].inputs[i]));
    for (std::size_t i = 0; i < s.models[m].outputs.size(); ++i) outs.Set(static_cast<uint32_t>(i), tensor_info(env, s.models[m].outputs[i]));
    mo.Set("inputs", ins);
    mo.Set("outputs", outs);
    models.Set(static_cast<uint32_t>(m), mo);
  }
  o.Set("models", models);
  o.Set("inputIdsDtype", s.input_ids_dtype);
  o.Set("textSequence", Napi::Number::New(env, static_cast<double>(s.text_seq)));
  o.Set("timestepDtype", s.timestep_dtype);
  o.Set("timestepRank", s.timestep_rank);
  o.Set("vaeEncoderOutput", s.vae_encoder_output);
  o.Set("condDim", Napi::Number::New(env, static_cast<double>(s.cond_dim)));
  o.Set("latentChannels", Napi::Number::New(env, static_cast<double>(s.latent_channels)));
  return o;
}

Napi::Object runtime_info(Napi::Env env, const OrtRuntimeInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("libraryPath", info.library_path);
  o.Set("version", info.version);
  o.Set("apiVersion", info.api_version);
  Napi::Array p = Napi::Array::New(env, info.providers.size());
  for (std::size_t i = 0; i < info.providers.size(); ++i) p.Set(static_cast<uint32_t>(i), info.providers[i]);
  o.Set("providers", p);
  return o;
}

// The keys the config names (camelCased); absent keys take the scheduler class's defaults.
ScheduleConfig schedule_of(const Napi::Object& o) {
  ScheduleConfig c;
  if (has(o, "numTrainTimesteps")) c.num_train_timesteps = static_cast<int>(attr_number(o, "numTrainTimesteps", 1000));
  if (has(o, "betaStart")) c.beta_start = attr_number(o, "betaStart", 0);
  if (has(o, "betaEnd")) c.beta_end = attr_number(o, "betaEnd", 0);
  if (has(o, "betaSchedule")) c.beta_schedule = attr_string(o, "betaSchedule", "");
  if (has(o, "setAlphaToOne")) c.set_alpha_to_one = attr_bool(o, "setAlphaToOne", false);
  if (has(o, "stepsOffset")) c.steps_offset = static_cast<int>(attr_number(o, "stepsOffset", 0));
  if (has(o, "timestepSpacing")) c.spacing = parse_timestep_spacing(attr_string(o, "timestepSpacing", ""));
  if (has(o, "predictionType")) c.prediction_type = attr_string(o, "predictionType", "");
  if (has(o, "clipSample")) c.clip_sample = attr_bool(o, "clipSample", false);
  if (has(o, "clipSampleRange")) c.clip_sample_range = attr_number(o, "clipSampleRange", 1);
  if (has(o, "useKarrasSigmas")) c.use_karras_sigmas = attr_bool(o, "useKarrasSigmas", false);
  if (has(o, "sigmaMin")) c.sigma_min = attr_number(o, "sigmaMin", 0);
  if (has(o, "sigmaMax")) c.sigma_max = attr_number(o, "sigmaMax", 0);
  if (has(o, "varianceType")) c.variance_type = attr_string(o, "varianceType", "");
  if (has(o, "source")) c.source = attr_string(o, "source", "");
  return c;
}

SamplerPlan plan_of(const Napi::Object& o) {
  const ScheduleConfig c = schedule_of(o.Get("schedule").As<Napi::Object>());
  return make_sampler_plan(c, parse_scheduler_kind(attr_string(o, "scheduler", "ddim")),
                           static_cast<int>(attr_number(o, "steps", 50)), attr_number(o, "strength", 0.8),
                           attr_number(o, "eta", 0.0), parse_img2img_rule(attr_string(o, "img2imgRule", "diffusers")));
}

// Runs a core call, turning brainlatent::Error into a JS error with its code.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw to_js_error(env, e.code(), e.what());
  }
}

// A worker that runs `work` off the main thread and settles a promise with `done`'s value.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void keep(const Napi::Value& v) { refs_.push_back(Napi::Persistent(v.As<Napi::Object>())); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = ErrorCode::OrtFailure;
      SetError(std::string("native failure: ") + e.what());
    } catch (...) {
      code_ = ErrorCode::OrtFailure;
      SetError("native failure (unknown exception)");
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(done_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(js_error_value(Env(), code_, e.Message()));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::vector<Napi::ObjectReference> refs_;
  ErrorCode code_ = ErrorCode::OrtFailure;
};

Napi::Value OrtLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  return runtime_info(env, guarded(env, [&] { return ort_load(path); }));
}

Napi::Value SdLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_type(env, "sdLoad(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto opts = std::make_shared<SdLoadOptions>();
  opts->dir = attr_string(o, "dir", "");
  opts->ort_library = attr_string(o, "ortLibrary", "");
  opts->session = session_config_of(o);
  if (has(o, "components")) {
    Napi::Array a = o.Get("components").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) opts->components.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  auto result = std::make_shared<PipelinePtr>();
  auto* job = new Job(
      env, [opts, result] { *result = SdPipeline::load(*opts); },
      [result](Napi::Env e) -> Napi::Value {
        auto* holder = new PipelineHolder{*result};
        Napi::Object out = Napi::Object::New(e);
        out.Set("handle", Napi::External<PipelineHolder>::New(e, holder, [](Napi::Env, PipelineHolder* h) { delete h; }));
        out.Set("summary", summary_of(e, holder->sd->summary()));
        return out;
      });
  job->Queue();
  return job->promise();
}

Napi::Value SdDispose(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) info[0].As<Napi::External<PipelineHolder>>().Data()->sd.reset();
  return info.Env().Undefined();
}

// sdEncodeText(handle, ids: Int32Array [B*seq], batch, seq) -> Promise<{data, dim}>
Napi::Value SdEncodeText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipelinePtr sd = pipeline_of(info[0]);
  auto ids_js = typed<Napi::Int32Array>(info[1], napi_int32_array, "ids");
  const std::int64_t batch = int_of(info[2], "batch"), seq = int_of(info[3], "seq");
  if (static_cast<std::int64_t>(ids_js.ElementLength()) != batch * seq)
    throw Napi::RangeError::New(env, "ids length does not equal batch * seq");
  auto ids = std::make_shared<std::vector<std::int64_t>>(ids_js.Data(), ids_js.Data() + ids_js.ElementLength());
  auto out = std::make_shared<std::vector<float>>();
  auto dim = std::make_shared<std::int64_t>(0);
  auto* job = new Job(
      env, [sd, ids, batch, seq, out, dim] { *out = sd->encode_text(ids->data(), batch, seq, *dim); },
      [out, dim](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        auto arr = Napi::Float32Array::New(e, out->size());
        std::copy(out->begin(), out->end(), arr.Data());
        o.Set("data", arr);
        o.Set("dim", Napi::Number::New(e, static_cast<double>(*dim)));
        return o;
      });
  job->Queue();
  return job->promise();
}

// sdEncodeImages(handle, rgb: Uint8Array [B*H*W*3], batch, height, width, mode, seeds, indices, scaling, chunk)
Napi::Value SdEncodeImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipelinePtr sd = pipeline_of(info[0]);
  auto rgb_js = typed<Napi::Uint8Array>(info[1], napi_uint8_array, "rgb");
  const std::int64_t batch = int_of(info[2], "batch"), H = int_of(info[3], "height"), W = int_of(info[4], "width");
  if (static_cast<std::int64_t>(rgb_js.ElementLength()) != batch * H * W * 3)
    throw Napi::RangeError::New(env, "rgb length does not equal batch * height * width * 3");
  const std::string mode_s = info[5].As<Napi::String>().Utf8Value();
  const LatentMode mode = mode_s == "mean" ? LatentMode::Mean : mode_s == "sample" ? LatentMode::Sample : LatentMode::Auto;
  auto keys = std::make_shared<std::vector<NoiseKey>>(keys_of(info[6], info[7], batch));
  const float scaling = static_cast<float>(info[8].As<Napi::Number>().DoubleValue());
  const std::int64_t chunk = int_of(info[9], "chunk");
  auto input = std::make_shared<std::vector<float>>(static_cast<std::size_t>(batch * 3 * H * W));
  rgb8_to_model_input(rgb_js.Data(), batch, H, W, input->data());
  auto out = std::make_shared<std::vector<float>>();
  auto shape = std::make_shared<std::array<std::int64_t, 3>>();
  auto* job = new Job(
      env,
      [=] { *out = sd->encode_images(input->data(), batch, H, W, mode, keys->data(), scaling, chunk, (*shape)[0], (*shape)[1], (*shape)[2]); },
      [out, shape](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        auto arr = Napi::Float32Array::New(e, out->size());
        std::copy(out->begin(), out->end(), arr.Data());
        o.Set("data", arr);
        o.Set("channels", Napi::Number::New(e, static_cast<double>((*shape)[0])));
        o.Set("height", Napi::Number::New(e, static_cast<double>((*shape)[1])));
        o.Set("width", Napi::Number::New(e, static_cast<double>((*shape)[2])));
        return o;
      });
  job->Queue();
  return job->promise();
}

// sdDecode(handle, latents: Float32Array, batch, channels, h, w, scaling, chunk) -> Promise<{rgb, height, width}>
Napi::Value SdDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipelinePtr sd = pipeline_of(info[0]);
  auto lat = typed<Napi::Float32Array>(info[1], napi_float32_array, "latents");
  const std::int64_t batch = int_of(info[2], "batch"), C = int_of(info[3], "channels"), h = int_of(info[4], "h"),
                     w = int_of(info[5], "w");
  if (static_cast<std::int64_t>(lat.ElementLength()) != batch * C * h * w)
    throw Napi::RangeError::New(env, "latents length does not equal batch * channels * h * w");
  const float scaling = static_cast<float>(info[6].As<Napi::Number>().DoubleValue());
  const std::int64_t chunk = int_of(info[7], "chunk");
  auto input = std::make_shared<std::vector<float>>(lat.Data(), lat.Data() + lat.ElementLength());
  auto rgb = std::make_shared<std::vector<std::uint8_t>>();
  auto hw = std::make_shared<std::array<std::int64_t, 2>>();
  auto* job = new Job(
      env,
      [=] {
        auto img = sd->decode(input->data(), batch, C, h, w, scaling, chunk, (*hw)[0], (*hw)[1]);
        rgb->resize(static_cast<std::size_t>(batch * (*hw)[0] * (*hw)[1] * 3));
        model_output_to_rgb8(img.data(), batch, (*hw)[0], (*hw)[1], rgb->data());
      },
      [rgb, hw](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        auto arr = Napi::Uint8Array::New(e, rgb->size());
        std::copy(rgb->begin(), rgb->end(), arr.Data());
        o.Set("rgb", arr);
        o.Set("height", Napi::Number::New(e, static_cast<double>((*hw)[0])));
        o.Set("width", Napi::Number::New(e, static_cast<double>((*hw)[1])));
        return o;
      });
  job->Queue();
  return job->promise();
}

// img2img: the worker runs the loop; progress goes through a ThreadSafeFunction whose finalizer
// (run after every queued progress call) settles the promise, so onStep never fires late.
struct Img2ImgState {
  PipelinePtr sd;
  Img2ImgJob job;
  std::vector<Napi::ObjectReference> refs;  // the input and output typed arrays
  Napi::ObjectReference out_ref;
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  Img2ImgStats stats;
  bool report_steps = false;  // only when JS passed onStep: no thread hop per step otherwise
  bool failed = false;
  ErrorCode code = ErrorCode::OrtFailure;
  std::string message;
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  explicit Img2ImgState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

class Img2ImgWorker : public Napi::AsyncWorker {
 public:
  Img2ImgWorker(Napi::Env env, std::shared_ptr<Img2ImgState> st) : Napi::AsyncWorker(env), st_(std::move(st)) {}
  void Execute() override {
    Img2ImgState& s = *st_;
    try {
      if (s.report_steps) s.job.on_step = [this](const StepProgress& p) {
        auto* copy = new StepProgress(p);
        if (st_->tsfn.NonBlockingCall(copy, [](Napi::Env env, Napi::Function cb, StepProgress* sp) {
              std::unique_ptr<StepProgress> own(sp);
              if (env == nullptr || cb.IsEmpty()) return;
              Napi::Object o = Napi::Object::New(env);
              o.Set("step", sp->step);
              o.Set("total", sp->total);
              o.Set("batchFirst", Napi::Number::New(env, static_cast<double>(sp->batch_first)));
              o.Set("batchImages", Napi::Number::New(env, static_cast<double>(sp->batch_images)));
              o.Set("timestep", sp->timestep);
              o.Set("unetSeconds", sp->unet_seconds);
              cb.Call({o});
            }) != napi_ok)
          delete copy;
      };
      s.job.cancel = s.cancel.get();
      s.stats = s.sd->img2img(s.job);
    } catch (const Error& e) {
      s.failed = true;
      s.code = e.code();
      s.message = e.what();
    } catch (const std::exception& e) {
      s.failed = true;
      s.message = std::string("native failure: ") + e.what();
    }
  }
  void OnOK() override { st_->tsfn.Release(); }
  void OnError(const Napi::Error&) override { st_->tsfn.Release(); }

 private:
  std::shared_ptr<Img2ImgState> st_;
};

void settle(Napi::Env env, std::shared_ptr<Img2ImgState>* holder) {
  std::unique_ptr<std::shared_ptr<Img2ImgState>> own(holder);
  Img2ImgState& s = **holder;
  Napi::HandleScope scope(env);
  if (s.failed) {
    s.deferred.Reject(js_error_value(env, s.code, s.message));
    return;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("latents", s.out_ref.Value());
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("loopSeconds", s.stats.loop_seconds);
  stats.Set("unetSeconds", s.stats.unet_seconds);
  stats.Set("updateSeconds", s.stats.update_seconds);
  stats.Set("unetCalls", Napi::Number::New(env, static_cast<double>(s.stats.unet_calls)));
  stats.Set("batches", Napi::Number::New(env, static_cast<double>(s.stats.batches)));
  o.Set("stats", stats);
  s.deferred.Resolve(o);
}

// sdImg2Img(handle, job, onStep?) -> {promise, cancel()}
// job: {plan: {schedule, scheduler, steps, strength, eta, img2imgRule}, guidance, count, channels, height, width,
//       seq, dim, z, cond, uncond?, uncondRows, noise?, stepNoise?, seeds, imageIndices, batchSize}
Napi::Value SdImg2Img(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipelinePtr sd = pipeline_of(info[0]);
  if (!info[1].IsObject()) throw_type(env, "sdImg2Img: job must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  auto st = std::make_shared<Img2ImgState>(env);
  st->sd = sd;
  Img2ImgJob& j = st->job;
  j.plan = guarded(env, [&] { return plan_of(o.Get("plan").As<Napi::Object>()); });
  j.guidance = static_cast<float>(attr_number(o, "guidance", 1.0));
  j.count = static_cast<std::int64_t>(attr_number(o, "count", 0));
  j.channels = static_cast<std::int64_t>(attr_number(o, "channels", 4));
  j.height = static_cast<std::int64_t>(attr_number(o, "height", 0));
  j.width = static_cast<std::int64_t>(attr_number(o, "width", 0));
  j.seq = static_cast<std::int64_t>(attr_number(o, "seq", 77));
  j.dim = static_cast<std::int64_t>(attr_number(o, "dim", 0));
  j.batch_size = static_cast<std::int64_t>(attr_number(o, "batchSize", 1));
  const std::int64_t n = j.count * j.channels * j.height * j.width;
  auto take = [&](const char* key, std::int64_t expected) -> const float* {
    auto a = attr_typed_array<Napi::Float32Array>(o, key, napi_float32_array, "Float32Array");
    if (static_cast<std::int64_t>(a.ElementLength()) != expected)
      throw Napi::RangeError::New(env, std::string(key) + " has " + std::to_string(a.ElementLength()) +
                                           " elements, expected " + std::to_string(expected));
    st->refs.push_back(Napi::Persistent(a.As<Napi::Object>()));
    return a.Data();
  };
  j.z = take("z", n);
  j.cond = take("cond", j.count * j.seq * j.dim);
  if (has(o, "uncond")) {
    j.uncond_rows = static_cast<std::int64_t>(attr_number(o, "uncondRows", 1));
    j.uncond = take("uncond", j.uncond_rows * j.seq * j.dim);
  }
  if (has(o, "noise")) j.noise = take("noise", n);
  if (has(o, "stepNoise")) j.step_noise = take("stepNoise", static_cast<std::int64_t>(j.plan.steps.size()) * n);
  j.keys = keys_of(o.Get("seeds"), o.Get("imageIndices"), j.count);
  auto out = Napi::Float32Array::New(env, static_cast<std::size_t>(n));
  st->out_ref = Napi::Persistent(out.As<Napi::Object>());
  j.out = out.Data();

  st->report_steps = info.Length() > 2 && info[2].IsFunction();
  Napi::Function cb = st->report_steps
                          ? info[2].As<Napi::Function>()
                          : Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return i.Env().Undefined(); });
  auto* holder = new std::shared_ptr<Img2ImgState>(st);
  st->tsfn = Napi::ThreadSafeFunction::New(env, cb, "brainlatent.img2img", 0, 1,
                                           [](Napi::Env e, std::shared_ptr<Img2ImgState>* h) { settle(e, h); }, holder);
  auto* worker = new Img2ImgWorker(env, st);
  worker->Queue();

  Napi::Object result = Napi::Object::New(env);
  result.Set("promise", st->deferred.Promise());
  std::shared_ptr<std::atomic<bool>> flag = st->cancel;
  result.Set("cancel", Napi::Function::New(env, [flag](const Napi::CallbackInfo& i) {
               flag->store(true);
               return i.Env().Undefined();
             }));
  return result;
}

// sdPlan({schedule, scheduler, steps, strength, eta, img2imgRule}) -> the steps that will run
Napi::Value SdPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw_type(env, "sdPlan(options): options must be an object");
  const SamplerPlan p = guarded(env, [&] { return plan_of(info[0].As<Napi::Object>()); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("scheduler", scheduler_kind_name(p.kind));
  o.Set("steps", p.num_inference_steps);
  o.Set("strength", p.strength);
  o.Set("eta", p.eta);
  o.Set("tStart", p.t_start);
  o.Set("noiseTimestep", p.noise_timestep);
  o.Set("noiseAlphaCumprod", p.noise_alpha_cumprod);
  o.Set("initLatentScale", p.init_x_scale);
  o.Set("initNoiseScale", p.init_noise_scale);
  o.Set("beginIndex", p.begin_index);
  o.Set("karras", p.karras);
  o.Set("timestepSpacing", timestep_spacing_name(p.spacing));
  o.Set("className", scheduler_class_name(p.kind));
  o.Set("historyBuffers", p.history);
  o.Set("stochastic", p.stochastic);
  Napi::Array all = Napi::Array::New(env, p.timesteps.size());
  for (std::size_t i = 0; i < p.timesteps.size(); ++i) all.Set(static_cast<uint32_t>(i), p.timesteps[i]);
  o.Set("timesteps", all);
  Napi::Array steps = Napi::Array::New(env, p.steps.size());
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const PlannedStep& s = p.steps[i];
    Napi::Object so = Napi::Object::New(env);
    so.Set("index", s.step_index);
    so.Set("timestep", s.timestep);
    so.Set("alphaCumprod", s.alpha_cumprod);
    so.Set("sigma", s.sigma);
    so.Set("modelInputScale", s.model_in_scale);
    so.Set("drawsNoise", s.program.noisy);
    steps.Set(static_cast<uint32_t>(i), so);
  }
  o.Set("runs", steps);
  return o;
}

// sdAlphasCumprod(schedule, scheduler = 'ddim') -> Float64Array (the class's defaults fill absent keys)
Napi::Value SdAlphasCumprod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SchedulerKind kind = parse_scheduler_kind(info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "ddim");
  const auto ac = guarded(env, [&] { return alphas_cumprod(resolve_schedule(schedule_of(info[0].As<Napi::Object>()), kind)); });
  auto arr = Napi::Float64Array::New(env, ac.size());
  std::copy(ac.begin(), ac.end(), arr.Data());
  return arr;
}

// philoxNormal(seed, imageIndex, stream, first, count) -> Float32Array
Napi::Value PhiloxNormal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NoiseKey key{static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue()),
                     static_cast<std::uint64_t>(info[1].As<Napi::Number>().DoubleValue())};
  const auto stream = static_cast<std::uint32_t>(info[2].As<Napi::Number>().Int64Value());
  const auto first = static_cast<std::uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  const auto count = static_cast<std::size_t>(int_of(info[4], "count"));
  auto arr = Napi::Float32Array::New(env, count);
  philox_normal_fill(key, stream, first, arr.Data(), count);
  return arr;
}

// sdFusedStepProbe(elementsPerImage, images, groups, scheduler) -> {step(), update()} for micro-benchmarks:
// step() runs one fused pass over preallocated buffers; update() builds one 50-step plan.
Napi::Value SdFusedStepProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct Probe {
    std::vector<float> x, eps, in;
    std::vector<std::vector<float>> hist;
    std::vector<NoiseKey> keys;
    FusedBatch b;
    StepProgram k;
    SchedulerKind kind;
  };
  auto p = std::make_shared<Probe>();
  const std::int64_t n = int_of(info[0], "elementsPerImage"), B = int_of(info[1], "images");
  const int G = static_cast<int>(int_of(info[2], "groups"));
  p->kind = guarded(env, [&] { return parse_scheduler_kind(info[3].As<Napi::String>().Utf8Value()); });
  const SamplerPlan plan0 = guarded(env, [&] { return make_sampler_plan(sd15_schedule(), p->kind, 50, 1.0); });
  p->x.assign(static_cast<std::size_t>(B * n), 0.5f);
  p->hist.assign(static_cast<std::size_t>(plan0.history), std::vector<float>(p->x.size(), 0.1f));
  p->eps.assign(static_cast<std::size_t>(G * B * n), 0.2f);
  p->in.assign(p->eps.size(), 0.f);
  for (std::int64_t i = 0; i < B; ++i) p->keys.push_back({1, static_cast<std::uint64_t>(i)});
  p->b.images = B;
  p->b.per_image = n;
  p->b.groups = G;
  p->b.guidance = 5.0;
  p->b.x = p->x.data();
  for (std::size_t h = 0; h < p->hist.size(); ++h) p->b.history[h] = p->hist[h].data();
  p->b.eps = p->eps.data();
  p->b.unet_in = p->in.data();
  p->b.keys = p->keys.data();
  p->k = plan0.steps[plan0.steps.size() / 2].program;
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", Napi::Function::New(env, [p](const Napi::CallbackInfo& i) {
          fused_step_cpu(p->k, p->b);
          return i.Env().Undefined();
        }));
  o.Set("update", Napi::Function::New(env, [p](const Napi::CallbackInfo& i) {
          const SamplerPlan plan = make_sampler_plan(sd15_schedule(), p->kind, 50, 1.0);
          return Napi::Number::New(i.Env(), static_cast<double>(plan.steps.size()));
        }));
  return o;
}

}  // namespace

void init_sampler(Napi::Env env, Napi::Object exports) {
  exports.Set("ortLoad", Napi::Function::New(env, OrtLoad, "ortLoad"));
  exports.Set("sdLoad", Napi::Function::New(env, SdLoad, "sdLoad"));
  exports.Set("sdDispose", Napi::Function::New(env, SdDispose, "sdDispose"));
  exports.Set("sdEncodeText", Napi::Function::New(env, SdEncodeText, "sdEncodeText"));
  exports.Set("sdEncodeImages", Napi::Function::New(env, SdEncodeImages, "sdEncodeImages"));
  exports.Set("sdDecode", Napi::Function::New(env, SdDecode, "sdDecode"));
  exports.Set("sdImg2Img", Napi::Function::New(env, SdImg2Img, "sdImg2Img"));
  exports.Set("sdPlan", Napi::Function::New(env, SdPlan, "sdPlan"));
  exports.Set("sdAlphasCumprod", Napi::Function::New(env, SdAlphasCumprod, "sdAlphasCumprod"));
  exports.Set("philoxNormal", Napi::Function::New(env, PhiloxNormal, "philoxNormal"));
  exports.Set("sdFusedStepProbe", Napi::Function::New(env, SdFusedStepProbe, "sdFusedStepProbe"));
}

}  // namespace brainlatent::addon
