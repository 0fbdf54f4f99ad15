// The fused per-step update over a batch's latents: guidance combine, scheduler update,
// per-step noise, multistep history and the next U-Net input, in one pass over memory.
// Every scheduler's step is expressed by the same scalar coefficients (scheduler.h), so this
// one function is the whole numeric body of a step; a CUDA kernel can replace it 1:1 (each
// element is independent and its noise is counter-based).
//
// For element j of image b (n = elements per image, B images, G = 2 with guidance):
//   eps = G == 2 ? eps_u + g·(eps_c - eps_u) : eps_c      (eps_u at row b, eps_c at row G-1)·B + b
//   x0  = p·x + q·eps                                     (the model's clean-latent estimate)
//   D   = x0 + r·(x0 - x0_prev)                           (r = 0 unless second-order multistep)
//   x'  = c_x·x + c_d·D + c_eps·eps + c_noise·N(seed_b, index_b, noise_stream, j)
//   x0_prev = x0        (when store_x0)
//   unet_in[g·B + b] = next_in_scale · x'    for every group g
#pragma once
#include <cstdint>

#include "brainlatent/philox.h"

namespace brainlatent {

struct FusedStepCoeffs {
  float p = 0, q = 0, r = 0;
  float c_x = 0, c_d = 0, c_eps = 0, c_noise = 0;
  float next_in_scale = 1;
  bool store_x0 = false;
  std::uint32_t noise_stream = 0;
};

struct FusedBatch {
  std::int64_t images = 0;      // B
  std::int64_t per_image = 0;   // n = channels·h·w
  int groups = 1;               // 2 with classifier-free guidance ([uncond rows; cond rows])
  float guidance = 1;           // g
  float* x = nullptr;           // [B, n]
  float* x0_prev = nullptr;     // [B, n], needed when store_x0 or r != 0
  const float* eps = nullptr;   // [G·B, n]
  float* unet_in = nullptr;     // [G·B, n]
  const NoiseKey* keys = nullptr;  // [B]
};

// CPU implementation (one thread: the U-Net call owns the cores, this pass is memory-bound).
void fused_step_cpu(const FusedStepCoeffs& k, const FusedBatch& b);

// x = a·z + s·noise for each image and writes the first U-Net input (scale · x into all
// groups). noise is [B, n] or null, in which case Philox stream 0 is used.
void init_latents_cpu(const FusedBatch& b, const float* z, const float* noise, float a, float s, float first_in_scale);

}  // namespace brainlatent
