#include "brainlatent/sd_fused_step.h"

#include <algorithm>
#include <vector>

namespace brainlatent {

namespace {

// One image's pass, specialised on the step's shape so that the inner loop has no branches and
// vectorises: CFG combines the two ε halves, X0 adds the data-prediction term (DPM-Solver++,
// with history when R), NOISY adds pre-drawn Philox normals.
template <bool CFG, bool X0, bool R, bool STORE, bool NOISY>
void step_image(const FusedStepCoeffs& k, float guidance, std::int64_t n, float* __restrict x, float* __restrict hist,
                const float* __restrict e_u, const float* __restrict e_c, const float* __restrict noise,
                float* __restrict in0, float* __restrict in1) {
  for (std::int64_t j = 0; j < n; ++j) {
    const float eps = CFG ? e_u[j] + guidance * (e_c[j] - e_u[j]) : e_c[j];
    const float xv = x[j];
    float xn = k.c_x * xv + k.c_eps * eps;
    if (X0) {
      const float x0 = k.p * xv + k.q * eps;
      const float d = R ? x0 + k.r * (x0 - hist[j]) : x0;
      xn += k.c_d * d;
      if (STORE) hist[j] = x0;
    }
    if (NOISY) xn += k.c_noise * noise[j];
    x[j] = xn;
    const float in = k.next_in_scale * xn;
    in0[j] = in;
    if (CFG) in1[j] = in;
  }
}

using StepFn = void (*)(const FusedStepCoeffs&, float, std::int64_t, float*, float*, const float*, const float*,
                        const float*, float*, float*);

template <bool CFG, bool X0, bool R, bool STORE>
StepFn pick_noise(bool noisy) {
  return noisy ? &step_image<CFG, X0, R, STORE, true> : &step_image<CFG, X0, R, STORE, false>;
}
template <bool CFG, bool X0>
StepFn pick_hist(bool r, bool store, bool noisy) {
  if (!X0) return pick_noise<CFG, false, false, false>(noisy);
  if (r) return store ? pick_noise<CFG, true, true, true>(noisy) : pick_noise<CFG, true, true, false>(noisy);
  return store ? pick_noise<CFG, true, false, true>(noisy) : pick_noise<CFG, true, false, false>(noisy);
}

}  // namespace

void fused_step_cpu(const FusedStepCoeffs& k, const FusedBatch& b) {
  const std::int64_t n = b.per_image, B = b.images;
  const bool cfg = b.groups == 2;
  const bool noisy = k.c_noise != 0.0f;
  const bool x0_needed = k.p != 0.0f || k.q != 0.0f;
  const bool r = x0_needed && k.r != 0.0f;
  const bool store = x0_needed && k.store_x0;
  const StepFn fn = cfg ? pick_hist<true, true>(r, store, noisy) : pick_hist<false, true>(r, store, noisy);
  const StepFn fn_plain = cfg ? pick_hist<true, false>(false, false, noisy) : pick_hist<false, false>(false, false, noisy);
  // Per-thread scratch for the step's noise: sized once, reused by every step.
  thread_local std::vector<float> noise;
  if (noisy && static_cast<std::int64_t>(noise.size()) < n) noise.resize(static_cast<std::size_t>(n));
  for (std::int64_t img = 0; img < B; ++img) {
    if (noisy) philox_normal_fill(b.keys[img], k.noise_stream, 0, noise.data(), static_cast<std::size_t>(n));
    float* in0 = b.unet_in + img * n;
    float* in1 = cfg ? b.unet_in + (B + img) * n : nullptr;
    (x0_needed ? fn : fn_plain)(k, b.guidance, n, b.x + img * n, b.x0_prev ? b.x0_prev + img * n : nullptr,
                                b.eps + img * n, b.eps + ((b.groups - 1) * B + img) * n, noise.data(), in0, in1);
  }
}

void init_latents_cpu(const FusedBatch& b, const float* z, const float* noise, float a, float s, float first_in_scale) {
  const std::int64_t n = b.per_image, B = b.images;
  std::vector<float> buf;
  for (std::int64_t img = 0; img < B; ++img) {
    const float* nz = noise ? noise + img * n : nullptr;
    if (!nz) {
      buf.resize(static_cast<std::size_t>(n));
      philox_normal_fill(b.keys[img], 0, 0, buf.data(), buf.size());
      nz = buf.data();
    }
    float* x = b.x + img * n;
    const float* zi = z + img * n;
    for (std::int64_t j = 0; j < n; ++j) {
      const float v = a * zi[j] + s * nz[j];
      x[j] = v;
      for (int g = 0; g < b.groups; ++g) b.unet_in[(g * B + img) * n + j] = first_in_scale * v;
    }
  }
}

}  // namespace brainlatent
