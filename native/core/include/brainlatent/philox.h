// Counter-based Gaussian noise (Philox4x32-10, Salmon et al. 2011). Every value is a pure
// function of (seed, image index, stream, element), so an image's noise does not depend on the
// batch it runs in, on the order images run in, or on how the elements are split across
// threads or GPU blocks. Stream 0 is the initial img2img noise, stream 1 + k the noise of
// denoising step k (DDIM with eta > 0), kEncodeStream the VAE encoder's posterior sample.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace brainlatent {

using Philox4x32 = std::array<std::uint32_t, 4>;

// One Philox4x32-10 block: 4 random words from a 128-bit counter and a 64-bit key.
Philox4x32 philox4x32_10(Philox4x32 counter, std::array<std::uint32_t, 2> key);

constexpr std::uint32_t kEncodeStream = 0xFFFFFFFFu;

// The key and counter layout shared by every caller (and by the TypeScript port in
// ts/sd/philox.ts): key = (seed low word, seed high word); counter = (element / 4,
// stream, image index low word, image index high word). Four normals come from one block
// by Box-Muller on (w0, w1) and (w2, w3).
struct NoiseKey {
  std::uint64_t seed = 0;
  std::uint64_t image_index = 0;
};

// The standard normal value of element `element` of stream `stream` (float64 Box-Muller,
// rounded to float).
float philox_normal(const NoiseKey& key, std::uint32_t stream, std::uint64_t element);

// Fills out[0..n) with elements [first, first + n) of one stream.
void philox_normal_fill(const NoiseKey& key, std::uint32_t stream, std::uint64_t first, float* out, std::size_t n);

}  // namespace brainlatent
