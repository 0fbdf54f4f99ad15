#include "brainlatent/philox.h"

#include <cmath>

namespace brainlatent {
namespace {

constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// Box-Muller on two words; u1 in (0, 1] so the log is finite.
inline void box_muller(std::uint32_t a, std::uint32_t b, double& n0, double& n1) {
  constexpr double kInv = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double u1 = (static_cast<double>(a) + 1.0) * kInv;
  const double u2 = (static_cast<double>(b) + 0.5) * kInv;
  const double r = std::sqrt(-2.0 * std::log(u1));
  n0 = r * std::cos(kTwoPi * u2);
  n1 = r * std::sin(kTwoPi * u2);
}

inline Philox4x32 block_for(const NoiseKey& key, std::uint32_t stream, std::uint64_t block) {
  return philox4x32_10({static_cast<std::uint32_t>(block), stream, static_cast<std::uint32_t>(key.image_index),
                        static_cast<std::uint32_t>(key.image_index >> 32)},
                       {static_cast<std::uint32_t>(key.seed), static_cast<std::uint32_t>(key.seed >> 32)});
}

}  // namespace

Philox4x32 philox4x32_10(Philox4x32 c, std::array<std::uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c[0], hi0, lo0);
    mulhilo(kM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

float philox_normal(const NoiseKey& key, std::uint32_t stream, std::uint64_t element) {
  const Philox4x32 w = block_for(key, stream, element >> 2);
  const unsigned lane = static_cast<unsigned>(element & 3u);
  double n0, n1;
  box_muller(w[lane & 2u], w[(lane & 2u) + 1], n0, n1);
  return static_cast<float>((lane & 1u) ? n1 : n0);
}

void philox_normal_fill(const NoiseKey& key, std::uint32_t stream, std::uint64_t first, float* out, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint64_t e = first + i;
    const std::uint64_t block = e >> 2;
    const Philox4x32 w = block_for(key, stream, block);
    double v[4];
    box_muller(w[0], w[1], v[0], v[1]);
    box_muller(w[2], w[3], v[2], v[3]);
    for (unsigned lane = static_cast<unsigned>(e & 3u); lane < 4 && i < n; ++lane, ++i) out[i] = static_cast<float>(v[lane]);
  }
}

}  // namespace brainlatent
