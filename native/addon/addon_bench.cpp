// Probes for the benchmarks (bench/, ts/bench/): the machine's SGEMM rate and the fused sampler
// step on preallocated buffers. Not part of the library's API.
#include <memory>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/linalg.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"
#include "brainlatent/sd_fused_step.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

// sgemmGflops(n, reps) -> best single-precision GEMM rate on n×n×n, GFLOP/s
Napi::Value SgemmGflops(const Napi::CallbackInfo& info) {
  Args args(info, "sgemmGflops");
  const std::int64_t n = args.count(0, "n"), reps = args.count(1, "reps");
  return Napi::Number::New(info.Env(), guarded(info.Env(), "sgemmGflops", [&] { return linalg::sgemm_gflops(n, static_cast<int>(reps)); }));
}

// sdFusedStepProbe(elementsPerImage, images, groups, scheduler) -> {step(), update()} for micro-benchmarks:
// step() runs one fused pass over preallocated buffers; update() builds one 50-step plan.
Napi::Value SdFusedStepProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdFusedStepProbe");
  struct Probe {
    std::vector<float> x, eps, in;
    std::vector<std::vector<float>> hist;
    std::vector<NoiseKey> keys;
    FusedBatch b;
    StepProgram k;
    SchedulerKind kind;
  };
  auto p = std::make_shared<Probe>();
  const std::int64_t n = args.count(0, "elementsPerImage"), B = args.count(1, "images");
  const int G = static_cast<int>(args.count(2, "groups"));
  const std::string scheduler = args.string(3, "scheduler");
  p->kind = guarded(env, "sdFusedStepProbe", [&] { return parse_scheduler_kind(scheduler); });
  const SamplerPlan plan0 = guarded(env, "sdFusedStepProbe", [&] { return make_sampler_plan(sd15_schedule(), p->kind, 50, 1.0); });
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

void init_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemmGflops", Napi::Function::New(env, SgemmGflops, "sgemmGflops"));
  exports.Set("sdFusedStepProbe", Napi::Function::New(env, SdFusedStepProbe, "sdFusedStepProbe"));
}

}  // namespace brainlatent::addon
