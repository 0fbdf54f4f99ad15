// The sampler's Node-API surface: ONNX Runtime loading, SD pipelines as handles, and async jobs
// (the kit's run_job) for loading, encoding, decoding and the fused img2img loop. Progress crosses
// threads through the job's thread-safe function; cancellation is the kit's cancel token, whose
// flag the loop checks before every step. No algorithm lives here: arguments are copied into core
// structs and results out.
#include <napi.h>

#include <array>
#include <atomic>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/error.h"
#include "brainlatent/ort_runtime.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"
#include "brainlatent/sd_pipeline.h"
#include "enums.h"
#include "kit.h"
#include "ort_options.h"

namespace brainlatent::addon {
namespace {

using PipelinePtr = std::shared_ptr<SdPipeline>;
struct PipelineHolder {
  PipelinePtr sd;
};

PipelinePtr pipeline_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), "expected an SD pipeline handle");
  auto* h = v.As<Napi::External<PipelineHolder>>().Data();
  if (!h->sd) throw Napi::Error::New(v.Env(), "this Diffusion pipeline was disposed");
  return h->sd;
}

std::vector<NoiseKey> keys_of(const Napi::Value& seeds, const Napi::Value& indices, std::int64_t count) {
  auto s = as_array<Napi::Float64Array>(seeds, "seeds");
  auto i = as_array<Napi::Float64Array>(indices, "imageIndices");
  if (static_cast<std::int64_t>(s.ElementLength()) != count || static_cast<std::int64_t>(i.ElementLength()) != count)
    throw Napi::RangeError::New(seeds.Env(), "seeds and imageIndices need one entry per image");
  // (a double outside 0..2^53 or fractional has no one key: the cast below is undefined for NaN and negatives)
  const auto key = [&](double v, const char* what) {
    if (!(v >= 0 && v <= 9007199254740991.0) || v != std::floor(v))
      throw Napi::RangeError::New(seeds.Env(), std::string(what) + " must be integers in 0..2^53-1, got " + std::to_string(v));
    return static_cast<std::uint64_t>(v);
  };
  std::vector<NoiseKey> keys(static_cast<std::size_t>(count));
  for (std::size_t k = 0; k < static_cast<std::size_t>(count); ++k) keys[k] = {key(s[k], "seeds"), key(i[k], "imageIndices")};
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
  o.Set("provider", s.provider);
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
  Napi::Array missing = Napi::Array::New(env, info.providers_without_library.size());
  for (std::size_t i = 0; i < info.providers_without_library.size(); ++i) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("provider", info.providers_without_library[i].first);
    m.Set("missing", info.providers_without_library[i].second);
    missing.Set(static_cast<uint32_t>(i), m);
  }
  o.Set("providersWithoutLibrary", missing);
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

Napi::Value OrtLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  return runtime_info(env, guarded(env, "ortLoad", [&] { return ort_load(path); }));
}

Napi::Value SdLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdLoad");
  Napi::Object o = args.object(0, "options");
  auto opts = std::make_shared<SdLoadOptions>();
  opts->dir = attr_string(o, "dir", "");
  opts->ort_library = attr_string(o, "ortLibrary", "");
  opts->session = session_config_of(o);
  if (has(o, "components")) {
    Napi::Array a = o.Get("components").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) opts->components.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  // fromMemory: {<component>: {bytes: Uint8Array, externalDataFolder}}, read in place (held until the load settles)
  std::vector<Napi::Value> keep;
  if (has(o, "fromMemory")) {
    Napi::Object m = o.Get("fromMemory").As<Napi::Object>();
    Napi::Array keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string c = keys.Get(i).As<Napi::String>().Utf8Value();
      Napi::Object entry = m.Get(c).As<Napi::Object>();
      const Napi::Value b = entry.Get("bytes");
      SdModelBytes mb;
      if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
          napi_get_typedarray_info(env, b, nullptr, &mb.size, const_cast<void**>(&mb.data), nullptr, nullptr) != napi_ok)
        throw Napi::TypeError::New(env, "sdLoad(options): fromMemory." + c + ".bytes must be a Uint8Array");
      mb.external_data_folder = attr_string(entry, "externalDataFolder", "");
      if (has(entry, "files")) {  // a service's checked files (the engine opens and maps them)
        mb.files = checked_files_of(entry.Get("files"), "sdLoad(options): fromMemory." + c + ".files");
        mb.checked = true;
      }
      opts->from_memory[c] = mb;
      keep.push_back(b);
    }
  }
  auto result = std::make_shared<PipelinePtr>();
  return run_job(
      env, "brainlatent.sdLoad", [opts, result](JobContext&) { *result = SdPipeline::load(*opts); },
      [result](Napi::Env e) -> Napi::Value {
        auto* holder = new PipelineHolder{*result};
        Napi::Object out = Napi::Object::New(e);
        out.Set("handle", Napi::External<PipelineHolder>::New(e, holder, [](Napi::Env, PipelineHolder* h) { delete h; }));
        out.Set("summary", summary_of(e, holder->sd->summary()));
        return out;
      },
      {Napi::Function(), nullptr, keep});
}

Napi::Value SdDispose(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) info[0].As<Napi::External<PipelineHolder>>().Data()->sd.reset();
  return info.Env().Undefined();
}

// The relay through which the job's cancellation — the caller's, its environment's end, the process's exit —
// interrupts the ONNX Runtime run in flight, instead of waiting for it to end.
CancelRelayPtr interrupter(JobContext& ctx) {
  auto relay = std::make_shared<CancelRelay>();
  ctx.on_cancel([relay] { relay->fire(); });
  return relay;
}

// sdEncodeText(handle, ids: Int32Array [B*seq], batch, seq, cancelToken?) -> Promise<{data, dim}>
// The token, like the environment's end and the process's exit, interrupts the text encoder's run in flight.
Napi::Value SdEncodeText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdEncodeText");
  PipelinePtr sd = pipeline_of(info[0]);
  const std::int64_t batch = args.count(2, "batch"), seq = args.count(3, "seq");
  auto ids_js = args.array<Napi::Int32Array>(1, "ids", static_cast<std::size_t>(batch * seq));
  auto ids = std::make_shared<std::vector<std::int64_t>>(ids_js.Data(), ids_js.Data() + ids_js.ElementLength());
  auto out = std::make_shared<std::vector<float>>();
  auto dim = std::make_shared<std::int64_t>(0);
  return run_job(
      env, "brainlatent.sdEncodeText",
      [sd, ids, batch, seq, out, dim](JobContext& ctx) {
        *out = sd->encode_text(ids->data(), batch, seq, *dim, ctx.cancel_flag(), interrupter(ctx).get());
      },
      [out, dim](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("data", to_typed<Napi::Float32Array>(e, std::move(*out)));
        o.Set("dim", Napi::Number::New(e, static_cast<double>(*dim)));
        return o;
      },
      {Napi::Function(), args.cancel_token(4), {}});
}

// sdEncodeImages(handle, rgb: Uint8Array [B*H*W*3], batch, height, width, mode, seeds, indices, scaling, chunk, cancelToken?)
// The token stops the job before its next chunk of images.
Napi::Value SdEncodeImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdEncodeImages");
  PipelinePtr sd = pipeline_of(info[0]);
  const std::int64_t batch = args.count(2, "batch"), H = args.count(3, "height"), W = args.count(4, "width");
  auto rgb_js = args.array<Napi::Uint8Array>(1, "rgb", static_cast<std::size_t>(batch * H * W * 3));
  const LatentMode mode = parse_enum(env, "mode", args.string(5, "mode"), kLatentModes);
  auto keys = std::make_shared<std::vector<NoiseKey>>(keys_of(info[6], info[7], batch));
  const float scaling = static_cast<float>(args.number(8, "scaling"));
  const std::int64_t chunk = args.count(9, "chunk");
  // read in place (the job holds the array) and converted to model input chunk by chunk on the job's thread: the
  // whole batch converted here blocked the event loop (~250 ms for 48 images of 512²) and held 4× the input in floats
  const std::uint8_t* rgb = rgb_js.Data();
  auto out = std::make_shared<std::vector<float>>();
  auto shape = std::make_shared<std::array<std::int64_t, 3>>();
  return run_job(
      env, "brainlatent.sdEncodeImages",
      [=](JobContext& ctx) {
        *out = sd->encode_images(rgb, batch, H, W, mode, keys->data(), scaling, chunk, (*shape)[0], (*shape)[1], (*shape)[2],
                                 ctx.cancel_flag(), interrupter(ctx).get());
      },
      [out, shape](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("data", to_typed<Napi::Float32Array>(e, std::move(*out)));
        o.Set("channels", Napi::Number::New(e, static_cast<double>((*shape)[0])));
        o.Set("height", Napi::Number::New(e, static_cast<double>((*shape)[1])));
        o.Set("width", Napi::Number::New(e, static_cast<double>((*shape)[2])));
        return o;
      },
      {Napi::Function(), args.cancel_token(10), {rgb_js}});
}

// sdDecode(handle, latents: Float32Array, batch, channels, h, w, scaling, chunk, cancelToken?) -> Promise<{rgb, height, width}>
// The token stops the job before its next chunk of latents.
Napi::Value SdDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdDecode");
  PipelinePtr sd = pipeline_of(info[0]);
  const std::int64_t batch = args.count(2, "batch"), C = args.count(3, "channels"), h = args.count(4, "h"), w = args.count(5, "w");
  auto lat = args.array<Napi::Float32Array>(1, "latents", static_cast<std::size_t>(batch * C * h * w));
  const float scaling = static_cast<float>(args.number(6, "scaling"));
  const std::int64_t chunk = args.count(7, "chunk");
  const float* latents = lat.Data();  // read in place: the job holds the array
  auto rgb = std::make_shared<std::vector<std::uint8_t>>();
  auto hw = std::make_shared<std::array<std::int64_t, 2>>();
  return run_job(
      env, "brainlatent.sdDecode",
      [=](JobContext& ctx) {
        auto img = sd->decode(latents, batch, C, h, w, scaling, chunk, (*hw)[0], (*hw)[1], ctx.cancel_flag(), interrupter(ctx).get());
        rgb->resize(static_cast<std::size_t>(batch * (*hw)[0] * (*hw)[1] * 3));
        model_output_to_rgb8(img.data(), batch, (*hw)[0], (*hw)[1], rgb->data());
      },
      [rgb, hw](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("rgb", to_typed<Napi::Uint8Array>(e, std::move(*rgb)));
        o.Set("height", Napi::Number::New(e, static_cast<double>((*hw)[0])));
        o.Set("width", Napi::Number::New(e, static_cast<double>((*hw)[1])));
        return o;
      },
      {Napi::Function(), args.cancel_token(8), {lat}});
}

// sdImg2Img(handle, job, onStep?, cancelToken?) -> Promise<{latents, stats}>
// job: {plan: {schedule, scheduler, steps, strength, eta, img2imgRule}, guidance, count, channels, height, width,
//       seq, dim, z, cond, uncond?, uncondRows, noise?, stepNoise?, seeds, imageIndices, batchSize}
// onStep events all arrive before the promise settles; the token stops the loop before its next step.
Napi::Value SdImg2Img(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdImg2Img");
  PipelinePtr sd = pipeline_of(info[0]);
  Napi::Object o = args.object(1, "job");
  auto job = std::make_shared<Img2ImgJob>();
  Img2ImgJob& j = *job;
  j.plan = guarded(env, "sdImg2Img", [&] { return plan_of(o.Get("plan").As<Napi::Object>()); });
  j.guidance = static_cast<float>(attr_number(o, "guidance", 1.0));
  // (checked integers: a fraction or a negative count read as a cast wrapped the sizes below)
  j.count = attr_int(o, "count", 0);
  j.channels = attr_int(o, "channels", 4);
  j.height = attr_int(o, "height", 0);
  j.width = attr_int(o, "width", 0);
  j.seq = attr_int(o, "seq", 77);
  j.dim = attr_int(o, "dim", 0);
  j.batch_size = attr_int(o, "batchSize", 1);
  // a product past 2^53 (each factor is below 2^31) is refused before it can wrap
  const auto elements = [&](std::initializer_list<std::int64_t> f, const char* what) {
    double v = 1;
    for (std::int64_t x : f) v *= static_cast<double>(x);
    if (v > 9007199254740992.0)
      throw Napi::RangeError::New(env, std::string("sdImg2Img: ") + what + " has " + Napi::Number::New(env, v).ToString().Utf8Value() +
                                           " values, more than any typed array holds");
    return static_cast<std::int64_t>(v);
  };
  const std::int64_t n = elements({j.count, j.channels, j.height, j.width}, "z (count × channels × height × width)");
  elements({j.count, j.seq, j.dim}, "cond (count × seq × dim)");
  std::vector<Napi::Value> keep;
  auto take = [&](const char* key, std::int64_t expected) -> const float* {
    auto a = attr_array<Napi::Float32Array>(o, key, static_cast<std::size_t>(expected));
    keep.push_back(a);
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
  // (z holds n values already, so n fits a typed array; a second n may still not fit in memory)
  auto out = new_result<Napi::Float32Array, float>(env, static_cast<std::size_t>(n), "sdImg2Img: the output latents");
  keep.push_back(out);
  j.out = out.Data();
  auto out_ref = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(out));
  auto stats = std::make_shared<Img2ImgStats>();
  return run_job(
      env, "brainlatent.img2img",
      [sd, job, stats](JobContext& ctx) {
        if (ctx.reports_progress())  // only when JS passed onStep: no thread hop per step otherwise
          job->on_step = [&ctx](const StepProgress& p) {
            ctx.post([p](Napi::Env e) -> std::vector<napi_value> {
              Napi::Object so = Napi::Object::New(e);
              so.Set("step", p.step);
              so.Set("total", p.total);
              so.Set("batchFirst", Napi::Number::New(e, static_cast<double>(p.batch_first)));
              so.Set("batchImages", Napi::Number::New(e, static_cast<double>(p.batch_images)));
              so.Set("timestep", p.timestep);
              so.Set("unetSeconds", p.unet_seconds);
              return {so};
            });
          };
        job->cancel = ctx.cancel_flag();
        job->relay = interrupter(ctx);
        *stats = sd->img2img(*job);
      },
      [out_ref, stats](Napi::Env e) -> Napi::Value {
        Napi::Object r = Napi::Object::New(e);
        r.Set("latents", out_ref->Value());
        Napi::Object st = Napi::Object::New(e);
        st.Set("loopSeconds", stats->loop_seconds);
        st.Set("unetSeconds", stats->unet_seconds);
        st.Set("updateSeconds", stats->update_seconds);
        st.Set("unetCalls", Napi::Number::New(e, static_cast<double>(stats->unet_calls)));
        st.Set("batches", Napi::Number::New(e, static_cast<double>(stats->batches)));
        r.Set("stats", st);
        out_ref->Reset();
        return r;
      },
      {args.callback(2), args.cancel_token(3), std::move(keep)});
}

// sdPlan({schedule, scheduler, steps, strength, eta, img2imgRule}) -> the steps that will run
Napi::Value SdPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = Args(info, "sdPlan").object(0, "options");
  const SamplerPlan p = guarded(env, "sdPlan", [&] { return plan_of(options); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("scheduler", scheduler_kind_name(p.kind));
  o.Set("steps", p.num_inference_steps);
  o.Set("strength", p.strength);
  o.Set("eta", p.eta);
  o.Set("maxEta", p.max_eta);
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
  Napi::Object schedule = Args(info, "sdAlphasCumprod").object(0, "schedule");
  const std::string scheduler = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "ddim";
  const auto ac = guarded(env, "sdAlphasCumprod", [&] {
    return alphas_cumprod(resolve_schedule(schedule_of(schedule), parse_scheduler_kind(scheduler)));
  });
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
  const auto count = static_cast<std::size_t>(Args(info, "philoxNormal").count(4, "count"));
  auto arr = new_result<Napi::Float32Array, float>(env, count, "philoxNormal");
  philox_normal_fill(key, stream, first, arr.Data(), count);
  return arr;
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
}

}  // namespace brainlatent::addon
