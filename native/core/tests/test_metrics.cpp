// PixCorr, SSIM and the correlation matrix against hand-computed cases and plain references, and their
// cancellation: a flag set (before or while they run) stops them between images, on every worker thread.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/metrics.h"
#include "brainlatent/parallel.h"
#include "test_util.h"

using namespace brainlatent;

namespace {

// Brute-force SSIM: explicit 2D Gaussian window, explicit half-sample-symmetric borders.
double ssim_reference(const std::vector<double>& x, const std::vector<double>& y, int h, int w) {
  const double sigma = 1.5;
  const int r = static_cast<int>(3.5 * sigma + 0.5);
  std::vector<double> k1(2 * r + 1);
  double s = 0;
  for (int d = -r; d <= r; ++d) s += k1[d + r] = std::exp(-0.5 * d * d / (sigma * sigma));
  for (double& v : k1) v /= s;
  auto refl = [](int i, int n) {
    while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
  };
  const double c1 = 1e-4, c2 = 9e-4;
  double sum = 0;
  int count = 0;
  for (int py = r; py < h - r; ++py) {
    for (int px = r; px < w - r; ++px) {
      double ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
      for (int dy = -r; dy <= r; ++dy) {
        for (int dx = -r; dx <= r; ++dx) {
          const double wt = k1[dy + r] * k1[dx + r];
          const int i = refl(py + dy, h) * w + refl(px + dx, w);
          ux += wt * x[i];
          uy += wt * y[i];
          uxx += wt * x[i] * x[i];
          uyy += wt * y[i] * y[i];
          uxy += wt * x[i] * y[i];
        }
      }
      const double vx = uxx - ux * ux, vy = uyy - uy * uy, vxy = uxy - ux * uy;
      sum += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
      ++count;
    }
  }
  return sum / count;
}

// Pearson r of two rows in float64 (two passes: means, then centred sums).
template <typename T>
double pearson(const T* x, const T* y, int d) {
  double mx = 0, my = 0;
  for (int k = 0; k < d; ++k) {
    mx += x[k];
    my += y[k];
  }
  mx /= d;
  my /= d;
  double sxy = 0, sxx = 0, syy = 0;
  for (int k = 0; k < d; ++k) {
    const double dx = x[k] - mx, dy = y[k] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / std::sqrt(sxx * syy);
}

}  // namespace

int main() {
  test::run("pixcorr: hand-computed cases", [] {
    // [1,2,3] vs [1,3,2]: deviations (-1,0,1)·(-1,1,0) = 1, norms √2·√2 → r = 0.5
    const std::uint8_t a[] = {1, 2, 3, 10, 20, 30};
    const std::uint8_t b[] = {1, 3, 2, 50, 40, 30};
    auto r = pixcorr({a, 2, 1, 3, 1}, {b, 2, 1, 3, 1});
    CHECK_NEAR(r[0], 0.5, 1e-12);
    CHECK_NEAR(r[1], -1.0, 1e-12);
    // y = 2x + 3 over RGB pixels: r = 1
    std::vector<std::uint8_t> x(4 * 5 * 3), y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<std::uint8_t>((i * 37) % 100);
      y[i] = static_cast<std::uint8_t>(2 * x[i] + 3);
    }
    CHECK_NEAR(pixcorr({x.data(), 1, 4, 5, 3}, {y.data(), 1, 4, 5, 3})[0], 1.0, 1e-12);
    const std::uint8_t flat[] = {7, 7, 7};
    CHECK(std::isnan(pixcorr({flat, 1, 1, 3, 1}, {a, 1, 1, 3, 1})[0]));
    CHECK(test::throws([&] { pixcorr({a, 2, 1, 3, 1}, {b, 1, 1, 3, 1}); }));
  });

  test::run("ssim: constant images (closed form) and identical images", [] {
    // x ≡ 0.5, y ≡ 0.25: variances vanish, SSIM = (2·xy + C1)/(x² + y² + C1) = 0.2501/0.3126
    std::vector<double> x(16 * 16, 0.5), y(16 * 16, 0.25);
    CHECK_NEAR(ssim_gray(x.data(), y.data(), 16, 16, {}), 0.2501 / 0.3126, 1e-12);
    test::Rng rng(3);
    for (double& v : x) v = rng.uniform();
    CHECK_NEAR(ssim_gray(x.data(), x.data(), 16, 16, {}), 1.0, 1e-12);
  });

  test::run("ssim: fixed patterns against scipy.ndimage.gaussian_filter values", [] {
    // X = ((7i + 3j) mod 11)/10, Y = ((5i + 2j) mod 13)/12 on 16×16; values computed with
    // scipy 1.17 gaussian_filter(sigma=1.5, truncate=3.5, mode='reflect') and skimage's formula.
    std::vector<double> x(256), y(256), z(256);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) {
        x[i * 16 + j] = ((i * 7 + j * 3) % 11) / 10.0;
        y[i * 16 + j] = ((i * 5 + j * 2) % 13) / 12.0;
        z[i * 16 + j] = x[i * 16 + j] * 0.5 + 0.2;
      }
    CHECK_NEAR(ssim_gray(x.data(), y.data(), 16, 16, {}), -0.013427745444, 1e-10);
    CHECK_NEAR(ssim_gray(x.data(), z.data(), 16, 16, {}), 0.796921225322, 1e-10);
  });

  test::run("ssim: RGB batches against a brute-force 2D reference", [] {
    const int h = 19, w = 23, n = 3;
    test::Rng rng(11);
    std::vector<std::uint8_t> a(n * h * w * 3), b(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<std::uint8_t>(rng.uniform() * 255);
      b[i] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, a[i] + 80 * (rng.uniform() - 0.5))));
    }
    auto got = ssim({a.data(), n, h, w, 3}, {b.data(), n, h, w, 3});
    for (int k = 0; k < n; ++k) {
      std::vector<double> gx(h * w), gy(h * w);
      for (int p = 0; p < h * w; ++p) {
        const std::uint8_t* pa = &a[(k * h * w + p) * 3];
        const std::uint8_t* pb = &b[(k * h * w + p) * 3];
        gx[p] = (0.2125 * pa[0] + 0.7154 * pa[1] + 0.0721 * pa[2]) / 255.0;
        gy[p] = (0.2125 * pb[0] + 0.7154 * pb[1] + 0.0721 * pb[2]) / 255.0;
      }
      CHECK_NEAR(got[k], ssim_reference(gx, gy, h, w), 1e-10);
    }
    std::vector<std::uint8_t> tiny(8 * 8 * 3);
    CHECK(test::throws([&] { ssim({tiny.data(), 1, 8, 8, 3}, {tiny.data(), 1, 8, 8, 3}); }));
  });

  test::run("correlation_matrix against float64 Pearson r, in one slice of columns or several", [] {
    const int na = 5, nb = 4, d = 37;
    test::Rng rng(5);
    std::vector<float> a(na * d), b(nb * d);
    for (float& v : a) v = static_cast<float>(rng.normal());
    for (float& v : b) v = static_cast<float>(rng.normal());
    for (int k = 0; k < d; ++k) b[k] = 3 * a[k] + 1;  // row 0 of b is an affine copy of row 0 of a
    for (int k = 0; k < d; ++k) b[2 * d + k] = 0.25f;  // row 2 of b is constant: no correlation
    // (widths: one slice, a column each, uneven slices, the last one column wide)
    for (const std::int64_t slice : {0, 1, 5, 12, 36, 37}) {
      const auto r = correlation_matrix(a.data(), na, b.data(), nb, d, slice);
      for (int i = 0; i < na; ++i)
        for (int j = 0; j < nb; ++j) {
          if (j == 2) {
            CHECK(std::isnan(r[i * nb + j]));
            continue;
          }
          CHECK_NEAR(r[i * nb + j], pearson(&a[i * d], &b[j * d], d), 2e-6);
        }
      CHECK_NEAR(r[0], 1.0, 2e-6);
    }
  });

  test::run("correlation_matrix_u8 against float64 Pearson r of the bytes, in slices, constant rows NaN", [] {
    const int na = 6, nb = 7, d = 3 * 11 * 13;
    test::Rng rng(9);
    std::vector<std::uint8_t> a(na * d), b(nb * d);
    for (auto& v : a) v = static_cast<std::uint8_t>(rng.uniform() * 256);
    for (auto& v : b) v = static_cast<std::uint8_t>(rng.uniform() * 256);
    for (int k = 0; k < d; ++k) a[3 * d + k] = 200;                                      // constant ground truth
    for (int k = 0; k < d; ++k) b[1 * d + k] = static_cast<std::uint8_t>(255 - a[k]);  // r = −1 with a's row 0
    std::vector<double> fa(a.begin(), a.end()), fb(b.begin(), b.end());
    for (const std::int64_t slice : {0, 64, 100, 428}) {
      const auto r = correlation_matrix_u8(a.data(), na, b.data(), nb, d, slice);
      for (int i = 0; i < na; ++i)
        for (int j = 0; j < nb; ++j) {
          if (i == 3) {
            CHECK(std::isnan(r[i * nb + j]));
            continue;
          }
          CHECK_NEAR(r[i * nb + j], pearson(&fa[i * d], &fb[j * d], d), 2e-6);
        }
      CHECK_NEAR(r[1], -1.0, 2e-6);
    }
  });

  test::run("pixcorr, ssim and correlation_matrix stop under a set flag, also on parallel_for's workers", [] {
    set_engine_threads(4);  // (several workers, whatever the machine: each must see the job's flag)
    const int n = 16, h = 24, w = 24;
    std::vector<std::uint8_t> a(n * h * w * 3, 100), b(a.size(), 50);
    std::vector<float> f(n * 8, 1.0f);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i % 7);
    std::atomic<bool> flag{true};
    const CancelScope scope(&flag, "metric");
    std::string message;
    const auto cancelled = [&message](const std::function<void()>& fn) {
      try {
        fn();
      } catch (const Error& e) {
        message = e.what();
        return e.code() == ErrorCode::Cancelled;
      }
      return false;
    };
    CHECK(cancelled([&] { pixcorr({a.data(), n, h, w, 3}, {b.data(), n, h, w, 3}); }));
    CHECK(message == "metric cancelled");
    CHECK(cancelled([&] { ssim({a.data(), n, h, w, 3}, {b.data(), n, h, w, 3}); }));
    CHECK(cancelled([&] { correlation_matrix(f.data(), n, f.data(), n, 8); }));
    flag = false;
    CHECK(pixcorr({a.data(), n, h, w, 3}, {b.data(), n, h, w, 3}).size() == static_cast<std::size_t>(n));
    set_engine_threads(0);
  });

  test::run("one ssim pair checks its flag inside its Gaussian passes, not only between pairs", [] {
    // (a pair of 4,096² images took 8 s of one core with no check: the flag set, its first pass stops)
    const int h = 64, w = 64;
    std::vector<double> x(h * w, 0.25), y(h * w, 0.5);
    std::atomic<bool> flag{true};
    const CancelScope scope(&flag, "ssim");
    bool stopped = false;
    try {
      ssim_gray(x.data(), y.data(), h, w, {});
    } catch (const Error& e) {
      stopped = e.code() == ErrorCode::Cancelled;
    }
    CHECK(stopped);
  });

  test::run("ssim set cancelled after its first image stops within an image per worker, its count short of the batch", [] {
    set_engine_threads(2);
    const int n = 64, h = 32, w = 32;
    test::Rng rng(7);
    std::vector<std::uint8_t> a(n * h * w * 3), b(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(rng.uniform() * 255);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(rng.uniform() * 255);
    std::atomic<bool> flag{false};
    std::atomic<std::int64_t> most{0};
    const CancelScope scope(&flag, "ssim");
    bool stopped = false;
    try {
      ssim({a.data(), n, h, w, 3}, {b.data(), n, h, w, 3}, {}, [&](std::int64_t done) {
        std::int64_t m = most.load();
        while (done > m && !most.compare_exchange_weak(m, done)) {
        }
        flag = true;
      });
    } catch (const Error& e) {
      stopped = e.code() == ErrorCode::Cancelled;
    }
    CHECK(stopped);
    // (each of the 2 workers finishes at most the image it is on when the flag is set)
    CHECK(most.load() >= 1 && most.load() <= 2);
    set_engine_threads(0);
  });

  test::run("ssim and pixcorr count every image pair once without a flag", [] {
    const int n = 9, h = 16, w = 16;
    std::vector<std::uint8_t> a(n * h * w, 10), b(a.size(), 200);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(i * 13);
    for (const bool use_ssim : {true, false}) {
      std::atomic<std::int64_t> calls{0}, most{0};
      const ImagesDone count = [&](std::int64_t done) {
        ++calls;
        std::int64_t m = most.load();
        while (done > m && !most.compare_exchange_weak(m, done)) {
        }
      };
      if (use_ssim) ssim({a.data(), n, h, w, 1}, {b.data(), n, h, w, 1}, {}, count);
      else pixcorr({a.data(), n, h, w, 1}, {b.data(), n, h, w, 1}, count);
      CHECK(calls.load() == n);
      CHECK(most.load() == n);
    }
  });

  return test::finish();
}
