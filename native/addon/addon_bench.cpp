// Probes for the benchmarks (bench/, ts/bench/) and tests: the machine's SGEMM rate, the fused sampler
// step on preallocated buffers, and the BLAS turns' counters. Not part of the library's API.
#include <memory>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/blas_turn.h"
#include "brainlatent/linalg.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"
#include "brainlatent/sd_fused_step.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

// The yardstick of `bench sampler`: the hand-specialised float32 loops that the step programs
// replaced (commit 98c0d9c), for DDIM's shape (x' = a·x + b·ε) and DPM-Solver++(2M)'s (x̂0 stored,
// second-order difference), with guidance. Timed on the same buffers as the fused step, in the
// same run, so the ratio is the comparison the issue asks for ("not slower anywhere").
template <bool X0>
void reference_step(std::int64_t n, float g, float* __restrict x, float* __restrict hist, const float* __restrict e_u,
                    const float* __restrict e_c, float* __restrict in0, float* __restrict in1) {
  // Contracting coefficients, so that repeated calls stay in the normal range.
  const float c_x = X0 ? 0.3f : 0.9f, c_eps = X0 ? 0.0f : 0.1f, p = 1.0f, q = -0.1f, r = 0.5f, c_d = 0.3f, scale = 1.0f;
  for (std::int64_t j = 0; j < n; ++j) {
    const float eps = e_u[j] + g * (e_c[j] - e_u[j]);
    const float xv = x[j];
    float xn = c_x * xv + c_eps * eps;
    if (X0) {
      const float x0 = p * xv + q * eps;
      xn += c_d * (x0 + r * (x0 - hist[j]));
      hist[j] = x0;
    }
    x[j] = xn;
    const float in = scale * xn;
    in0[j] = in;
    in1[j] = in;
  }
}

// sgemmGflops(n, reps) -> best single-precision GEMM rate on n×n×n, GFLOP/s
Napi::Value SgemmGflops(const Napi::CallbackInfo& info) {
  Args args(info, "sgemmGflops");
  const std::int64_t n = args.count(0, "n"), reps = args.count(1, "reps");
  return Napi::Number::New(info.Env(), guarded(info.Env(), "sgemmGflops", [&] { return linalg::sgemm_gflops(n, static_cast<int>(reps)); }));
}

// blasTurns() -> {waiting, taken, beside, blasThreads}: the process's BLAS turns (blas_turn.h) now: threads waiting for
// one, turns taken so far, calls that ran beside the holder (a synchronous call's, which never waits), and the BLAS
// library's thread count (turns are taken only above one).
Napi::Value BlasTurns(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("waiting", linalg::blas_turns_waiting());
  o.Set("taken", static_cast<double>(linalg::blas_turns_taken()));
  o.Set("beside", static_cast<double>(linalg::blas_calls_beside()));
  o.Set("blasThreads", linalg::blas_threads());
  return o;
}

// sdFusedStepProbe(elementsPerImage, images, groups, scheduler) -> {step(), reference()?, update()} for
// micro-benchmarks: step() runs one fused pass (the mid-schedule step of a 50-step plan) over
// preallocated buffers; reference() the hand-specialised loop of the same shape on the same buffers;
// update() builds one 50-step plan.
Napi::Value SdFusedStepProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "sdFusedStepProbe");
  struct Probe {
    std::vector<float> x, eps, in;
    std::vector<std::vector<float>> hist;
    std::vector<NoiseKey> keys;
    FusedBatch b;
    CompiledStep k;
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
  p->k = compile_step(plan0.steps[plan0.steps.size() / 2].program, G, p->b.guidance);
  if (plan0.history < 1) p->hist.assign(1, std::vector<float>(p->x.size(), 0.1f));  // the reference's x̂0
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", Napi::Function::New(env, [p](const Napi::CallbackInfo& i) {
          fused_step_cpu(p->k, p->b);
          return i.Env().Undefined();
        }));
  // reference(): the hand-specialised loop of the same shape (ddim and dpmpp2m only, with guidance).
  const bool has_reference = G == 2 && (p->kind == SchedulerKind::Ddim || p->kind == SchedulerKind::DpmSolverPP2M);
  if (has_reference)
    o.Set("reference", Napi::Function::New(env, [p](const Napi::CallbackInfo& i) {
            const std::int64_t n = p->b.per_image, B = p->b.images;
            for (std::int64_t img = 0; img < B; ++img) {
              float* x = p->x.data() + img * n;
              float* h = p->hist[0].data() + img * n;
              const float* eu = p->eps.data() + img * n;
              const float* ec = p->eps.data() + (B + img) * n;
              float* in0 = p->in.data() + img * n;
              float* in1 = p->in.data() + (B + img) * n;
              if (p->kind == SchedulerKind::Ddim)
                reference_step<false>(n, 5.0f, x, h, eu, ec, in0, in1);
              else
                reference_step<true>(n, 5.0f, x, h, eu, ec, in0, in1);
            }
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
  exports.Set("blasTurns", Napi::Function::New(env, BlasTurns, "blasTurns"));
}

}  // namespace brainlatent::addon
