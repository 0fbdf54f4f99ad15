// resize_rgb (image_resize.h): a port of ts/io/resize.ts's axisTaps and resample, operation for operation, so
// that its bytes are the TypeScript's (checked in test/io/resize.test.ts). Built without contracting a·b + c into
// fused multiply-adds, which would round differently from JavaScript (CMakeLists.txt: -ffp-contract=off; the
// node-gyp build targets x86-64's baseline, which has no FMA).
#include "brainlatent/image_resize.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "brainlatent/error.h"

namespace brainlatent {
namespace {

// For each output index its source indices and weights, `taps` per output (padded with weight 0).
struct AxisTaps {
  std::int64_t taps = 1;
  std::vector<std::int64_t> index;
  std::vector<double> weight;
};

AxisTaps axis_taps(std::int64_t n_in, std::int64_t n_out) {
  std::vector<std::vector<std::pair<double, double>>> lists(static_cast<std::size_t>(n_out));
  const double in = static_cast<double>(n_in), scale = in / static_cast<double>(n_out);
  for (std::int64_t o = 0; o < n_out; ++o) {
    auto& taps = lists[static_cast<std::size_t>(o)];
    const double od = static_cast<double>(o);
    if (n_out <= n_in) {
      const double a = od * scale;
      const double b = a + scale;
      const double end = std::min(in, std::ceil(b));
      for (double s = std::floor(a); s < end; s += 1) {
        const double w = std::min(b, s + 1) - std::max(a, s);
        if (w > 1e-9) taps.emplace_back(s, w / scale);
      }
    } else {
      const double c = std::min(in - 1, std::max(0.0, (od + 0.5) * scale - 0.5));
      const double s0 = std::floor(c);
      const double s1 = std::min(in - 1, s0 + 1);
      const double t = c - s0;
      if (s1 == s0) taps.emplace_back(s0, 1.0);
      else {
        taps.emplace_back(s0, 1 - t);
        taps.emplace_back(s1, t);
      }
    }
  }
  AxisTaps out;
  for (const auto& l : lists) out.taps = std::max<std::int64_t>(out.taps, static_cast<std::int64_t>(l.size()));
  out.index.assign(static_cast<std::size_t>(n_out * out.taps), 0);
  out.weight.assign(static_cast<std::size_t>(n_out * out.taps), 0.0);
  for (std::int64_t o = 0; o < n_out; ++o)
    for (std::size_t t = 0; t < lists[static_cast<std::size_t>(o)].size(); ++t) {
      const std::size_t k = static_cast<std::size_t>(o * out.taps) + t;
      out.index[k] = static_cast<std::int64_t>(lists[static_cast<std::size_t>(o)][t].first);
      out.weight[k] = lists[static_cast<std::size_t>(o)][t].second;
    }
  return out;
}

// JavaScript's Math.min(255, Math.max(0, Math.round(x))) (half up): 0 below 0.5, 255 from 254.5, else the
// truncation (the floor of a positive number) plus one where the rest is half or more. (std::floor is a libm
// call on x86-64's baseline, without SSE4.1: 3 of the 8 ms at 512 → 425 px.)
inline std::uint8_t js_round_byte(double x) {
  if (!(x >= 0.5)) return 0;
  if (x >= 254.5) return 255;
  const int t = static_cast<int>(x);
  return static_cast<std::uint8_t>(x - t >= 0.5 ? t + 1 : t);
}

}  // namespace

void resize_rgb(const std::uint8_t* src, std::int64_t width, std::int64_t height, std::uint8_t* dst, std::int64_t out_width,
                std::int64_t out_height) {
  if (width < 1 || height < 1 || out_width < 1 || out_height < 1)
    throw Error(ErrorCode::InvalidArgument, "resize_rgb: sizes must be >= 1, got " + std::to_string(width) + "×" + std::to_string(height) +
                                                " → " + std::to_string(out_width) + "×" + std::to_string(out_height));
  const AxisTaps xs = axis_taps(width, out_width), ys = axis_taps(height, out_height);
  const std::int64_t row_in = width * 3, row_out = out_width * 3;
  // each source row resampled along x once (a row no output reads is skipped)
  std::vector<char> used(static_cast<std::size_t>(height), 0);
  for (std::size_t i = 0; i < ys.index.size(); ++i)
    if (ys.weight[i] != 0) used[static_cast<std::size_t>(ys.index[i])] = 1;
  std::vector<double> mid(static_cast<std::size_t>(height * row_out));
  const std::int64_t xt = xs.taps;
  for (std::int64_t sy = 0; sy < height; ++sy) {
    if (!used[static_cast<std::size_t>(sy)]) continue;
    const std::uint8_t* s = src + sy * row_in;
    double* m = mid.data() + sy * row_out;
    for (std::int64_t ox = 0; ox < out_width; ++ox) {
      double r = 0, g = 0, b = 0;
      for (std::int64_t t = ox * xt; t < (ox + 1) * xt; ++t) {
        const double w = xs.weight[static_cast<std::size_t>(t)];
        const std::uint8_t* p = s + xs.index[static_cast<std::size_t>(t)] * 3;
        r += w * p[0];
        g += w * p[1];
        b += w * p[2];
      }
      m[ox * 3] = r;
      m[ox * 3 + 1] = g;
      m[ox * 3 + 2] = b;
    }
  }
  const std::int64_t yt = ys.taps;
  std::vector<double> acc(static_cast<std::size_t>(row_out));
  for (std::int64_t oy = 0; oy < out_height; ++oy) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::int64_t t = oy * yt; t < (oy + 1) * yt; ++t) {
      const double w = ys.weight[static_cast<std::size_t>(t)];
      if (w == 0) continue;
      const double* m = mid.data() + ys.index[static_cast<std::size_t>(t)] * row_out;
      for (std::int64_t j = 0; j < row_out; ++j) acc[static_cast<std::size_t>(j)] += w * m[j];
    }
    std::uint8_t* o = dst + oy * row_out;
    for (std::int64_t j = 0; j < row_out; ++j) o[j] = js_round_byte(acc[static_cast<std::size_t>(j)]);
  }
}

}  // namespace brainlatent
