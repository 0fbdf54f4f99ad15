#include "brainlatent/sd_fused_step.h"

#include <algorithm>
#include <vector>

namespace brainlatent {

void fused_step_cpu(const FusedStepCoeffs& k, const FusedBatch& b) {
  const std::int64_t n = b.per_image, B = b.images;
  const bool cfg = b.groups == 2;
  const bool noisy = k.c_noise != 0.0f;
  const bool x0_needed = k.p != 0.0f || k.q != 0.0f;
  float noise[4] = {0, 0, 0, 0};
  for (std::int64_t img = 0; img < B; ++img) {
    float* __restrict x = b.x + img * n;
    float* __restrict hist = b.x0_prev ? b.x0_prev + img * n : nullptr;
    const float* __restrict e_c = b.eps + ((b.groups - 1) * B + img) * n;
    const float* __restrict e_u = b.eps + img * n;
    for (std::int64_t j = 0; j < n; ++j) {
      if (noisy && (j & 3) == 0) {
        // one Philox block gives the normals of elements j .. j+3
        philox_normal_fill(b.keys[img], k.noise_stream, static_cast<std::uint64_t>(j), noise,
                           static_cast<std::size_t>(std::min<std::int64_t>(4, n - j)));
      }
      const float eps = cfg ? e_u[j] + b.guidance * (e_c[j] - e_u[j]) : e_c[j];
      const float xv = x[j];
      float xn = k.c_x * xv + k.c_eps * eps;
      if (x0_needed) {
        const float x0 = k.p * xv + k.q * eps;
        const float d = k.r != 0.0f ? x0 + k.r * (x0 - hist[j]) : x0;
        xn += k.c_d * d;
        if (k.store_x0) hist[j] = x0;
      }
      if (noisy) xn += k.c_noise * noise[j & 3];
      x[j] = xn;
      const float in = k.next_in_scale * xn;
      for (int g = 0; g < b.groups; ++g) b.unet_in[(g * B + img) * n + j] = in;
    }
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
