// PixCorr, SSIM and the correlation matrix of metrics.h.
#include "brainlatent/metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/parallel.h"

namespace brainlatent {
namespace {

void check_pair(const ImageBatchU8& a, const ImageBatchU8& b, const char* what) {
  auto dims = [](const ImageBatchU8& x) {
    return std::to_string(x.count) + "×" + std::to_string(x.height) + "×" + std::to_string(x.width) + "×" +
           std::to_string(x.channels);
  };
  if (!a.data || !b.data) throw Error(ErrorCode::InvalidArgument, std::string(what) + ": null image data");
  if (a.count != b.count || a.height != b.height || a.width != b.width || a.channels != b.channels)
    throw Error(ErrorCode::ShapeMismatch,
                std::string(what) + ": image batches differ in shape: " + dims(a) + " vs " + dims(b));
  if (a.count < 0 || a.height < 1 || a.width < 1 || (a.channels != 1 && a.channels != 3))
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": expected images count×height×width×(1|3), got " + dims(a));
}

// scipy.ndimage's 'reflect' (half-sample symmetric) index into [0, n).
inline std::int64_t reflect(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// Separable Gaussian filter (scipy.ndimage.gaussian_filter, order 0) of h × w doubles. Each output is
// 0 + k₀·v₀ + k₁·v₁ + … in tap order, as a loop over the taps per pixel would sum it, but accumulated a
// whole row at a time, tap by tap, so that the compiler vectorises across the row; 'reflect' indices
// only where a tap leaves the image (left and right margins; the rows above and below). SSIM of 1,000
// pairs of 425² px on two cores: 3.3 s, against 20 s one pixel at a time with an index reflected per tap.
// (SSIM's mean leaves out a border of the window's radius: the margins never reach it.)
void gaussian_filter(const double* in, double* out, double* tmp, std::int64_t h, std::int64_t w,
                     const std::vector<double>& k) {
  const std::int64_t r = static_cast<std::int64_t>(k.size() / 2);
  const double* kd = k.data();
  // (columns [lo, hi) take every tap inside the row)
  const std::int64_t lo = std::min(r, w), hi = std::max(lo, w - r);
  // (a check every 64 rows of each pass: one pair of 4,096² images took 8 s of one core, with no check
  // between its pairs' start and end; 64 rows of 4,096 at 13 taps are ~2 ms)
  for (std::int64_t y = 0; y < h; ++y) {
    if (y % 64 == 0) poll_cancel();
    const double* row = in + y * w;
    double* __restrict t = tmp + y * w;
    const auto margin = [&](std::int64_t x) {
      double s = 0;
      for (std::int64_t d = -r; d <= r; ++d) s += kd[d + r] * row[reflect(x + d, w)];
      t[x] = s;
    };
    for (std::int64_t x = 0; x < lo; ++x) margin(x);
    for (std::int64_t x = hi; x < w; ++x) margin(x);
    for (std::int64_t x = lo; x < hi; ++x) t[x] = 0;
    for (std::int64_t d = -r; d <= r; ++d) {
      const double kv = kd[d + r];
      const double* __restrict src = row + d;
      for (std::int64_t x = lo; x < hi; ++x) t[x] += kv * src[x];
    }
  }
  for (std::int64_t y = 0; y < h; ++y) {
    if (y % 64 == 0) poll_cancel();
    double* __restrict o = out + y * w;
    for (std::int64_t x = 0; x < w; ++x) o[x] = 0;
    for (std::int64_t d = -r; d <= r; ++d) {
      const double kv = kd[d + r];
      const double* __restrict src = tmp + reflect(y + d, h) * w;
      for (std::int64_t x = 0; x < w; ++x) o[x] += kv * src[x];
    }
  }
}

std::vector<double> gaussian_kernel(double sigma, double truncate) {
  const std::int64_t r = static_cast<std::int64_t>(truncate * sigma + 0.5);
  std::vector<double> k(static_cast<std::size_t>(2 * r + 1));
  double sum = 0;
  for (std::int64_t d = -r; d <= r; ++d) sum += k[static_cast<std::size_t>(d + r)] = std::exp(-0.5 * d * d / (sigma * sigma));
  for (double& v : k) v /= sum;
  return k;
}

void to_gray(const std::uint8_t* px, std::int64_t n, std::int64_t channels, double* out) {
  if (channels == 1) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = px[i] / 255.0;
    return;
  }
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = (0.2125 * px[3 * i] + 0.7154 * px[3 * i + 1] + 0.0721 * px[3 * i + 2]) / 255.0;
}

// Counts the image pairs done for an ImagesDone (a no-op without one).
class DoneCounter {
 public:
  explicit DoneCounter(const ImagesDone& report) : report_(report) {}
  void one_more() {
    if (report_) report_(done_.fetch_add(1) + 1);
  }

 private:
  const ImagesDone& report_;
  std::atomic<std::int64_t> done_{0};
};

}  // namespace

std::vector<double> pixcorr(const ImageBatchU8& a, const ImageBatchU8& b, const ImagesDone& images_done) {
  check_pair(a, b, "pixcorr");
  const std::int64_t n = a.height * a.width * a.channels;
  std::vector<double> r(static_cast<std::size_t>(a.count));
  DoneCounter counter(images_done);
  parallel_for(0, a.count, 4, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      poll_cancel();
      const std::uint8_t* x = a.data + i * n;
      const std::uint8_t* y = b.data + i * n;
      double sx = 0, sy = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        sx += x[k];
        sy += y[k];
      }
      const double mx = sx / n, my = sy / n;
      double sxx = 0, syy = 0, sxy = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        const double dx = x[k] - mx, dy = y[k] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
      }
      const double den = std::sqrt(sxx * syy);
      r[static_cast<std::size_t>(i)] = den > 0 ? sxy / den : std::numeric_limits<double>::quiet_NaN();
      counter.one_more();
    }
  });
  return r;
}

double ssim_gray(const double* x, const double* y, std::int64_t h, std::int64_t w, const SsimOptions& o) {
  if (!(o.sigma > 0) || !(o.truncate > 0) || !(o.data_range > 0))
    throw Error(ErrorCode::InvalidArgument, "ssim: sigma, truncate and data_range must be > 0");
  const std::vector<double> k = gaussian_kernel(o.sigma, o.truncate);
  const std::int64_t pad = static_cast<std::int64_t>(k.size() / 2);
  if (h <= 2 * pad || w <= 2 * pad)
    throw Error(ErrorCode::InvalidArgument, "ssim: images of " + std::to_string(h) + "×" + std::to_string(w) +
                                                " are too small for a Gaussian window of radius " + std::to_string(pad));
  const std::int64_t n = h * w;
  std::vector<double> buf(static_cast<std::size_t>(n) * 8);
  double *xx = buf.data(), *yy = xx + n, *xy = yy + n, *ux = xy + n, *uy = ux + n, *uxx = uy + n, *uyy = uxx + n,
         *tmp = uyy + n;
  for (std::int64_t i = 0; i < n; ++i) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  gaussian_filter(x, ux, tmp, h, w, k);
  gaussian_filter(y, uy, tmp, h, w, k);
  gaussian_filter(xx, uxx, tmp, h, w, k);
  gaussian_filter(yy, uyy, tmp, h, w, k);
  std::vector<double> uxy(static_cast<std::size_t>(n));
  gaussian_filter(xy, uxy.data(), tmp, h, w, k);
  const double c1 = (o.k1 * o.data_range) * (o.k1 * o.data_range);
  const double c2 = (o.k2 * o.data_range) * (o.k2 * o.data_range);
  double sum = 0;
  for (std::int64_t r = pad; r < h - pad; ++r) {
    for (std::int64_t c = pad; c < w - pad; ++c) {
      const std::int64_t i = r * w + c;
      const double vx = uxx[i] - ux[i] * ux[i], vy = uyy[i] - uy[i] * uy[i], vxy = uxy[i] - ux[i] * uy[i];
      sum += ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
    }
  }
  return sum / static_cast<double>((h - 2 * pad) * (w - 2 * pad));
}

std::vector<double> ssim(const ImageBatchU8& a, const ImageBatchU8& b, const SsimOptions& options, const ImagesDone& images_done) {
  check_pair(a, b, "ssim");
  const std::int64_t n = a.height * a.width;
  std::vector<double> out(static_cast<std::size_t>(a.count));
  DoneCounter counter(images_done);
  parallel_for(0, a.count, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> gx(static_cast<std::size_t>(n)), gy(static_cast<std::size_t>(n));
    for (std::int64_t i = begin; i < end; ++i) {
      poll_cancel();
      to_gray(a.data + i * n * a.channels, n, a.channels, gx.data());
      to_gray(b.data + i * n * b.channels, n, b.channels, gy.data());
      // images in [0, 1]; data_range scales the constants as skimage does
      out[static_cast<std::size_t>(i)] = ssim_gray(gx.data(), gy.data(), a.height, a.width, options);
      counter.one_more();
    }
  });
  return out;
}

namespace {

// A row's mean and 1/norm of its centred values (float64 sums); inv 0 where the row is constant.
struct RowScale {
  double mean = 0, inv = 0;
};

template <typename T>
void row_scales(const T* src, std::int64_t rows, std::int64_t dim, RowScale* out) {
  parallel_for(0, rows, 8, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      poll_cancel();  // (a row of pixel features is 425²·3 values)
      const T* x = src + i * dim;
      double s = 0;
      for (std::int64_t k = 0; k < dim; ++k) s += x[k];
      const double m = s / dim;
      double ss = 0;
      for (std::int64_t k = 0; k < dim; ++k) ss += (x[k] - m) * (x[k] - m);
      out[i] = {m, ss > 0 ? 1.0 / std::sqrt(ss) : 0.0};
    }
  });
}

// Columns [k0, k0 + width) of src's rows centred and scaled (row_scales), into dst (rows × width).
template <typename T>
void normalise_columns(const T* src, std::int64_t rows, std::int64_t dim, const RowScale* scale, std::int64_t k0, std::int64_t width,
                       float* dst) {
  parallel_for(0, rows, 8, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const T* x = src + i * dim + k0;
      float* d = dst + i * width;
      const double m = scale[i].mean, inv = scale[i].inv;
      for (std::int64_t k = 0; k < width; ++k) d[k] = static_cast<float>((x[k] - m) * inv);
    }
  });
}

// The normalised values are held a slice of columns at a time, both sides: past it, the product
// accumulates slice by slice (pixel rows are 425²·3 values: NSD's 1,000 test images held whole were
// ~2.2 GB a side in float32). Features of a few thousand columns fit in one slice: one GEMM.
constexpr std::int64_t kCorrelationSliceBytes = std::int64_t{64} << 20;
constexpr std::int64_t kCorrelationMinColumns = 1024;

template <typename T>
std::vector<float> correlation_rows(const T* a, std::int64_t n_a, const T* b, std::int64_t n_b, std::int64_t dim, std::int64_t slice_columns) {
  if (n_a < 1 || n_b < 1 || dim < 2)
    throw Error(ErrorCode::InvalidArgument, "correlation_matrix: expected at least one row on each side and >= 2 columns, got " +
                                                std::to_string(n_a) + ", " + std::to_string(n_b) + " rows of " + std::to_string(dim));
  std::vector<RowScale> sa(static_cast<std::size_t>(n_a)), sb(static_cast<std::size_t>(n_b));
  row_scales(a, n_a, dim, sa.data());
  row_scales(b, n_b, dim, sb.data());
  const std::int64_t fit = kCorrelationSliceBytes / static_cast<std::int64_t>(sizeof(float)) / (n_a + n_b);
  const std::int64_t width = std::min(dim, slice_columns > 0 ? slice_columns : std::max(kCorrelationMinColumns, fit / 64 * 64));
  std::vector<float> na(static_cast<std::size_t>(n_a * width)), nb(static_cast<std::size_t>(n_b * width));
  std::vector<float> r(static_cast<std::size_t>(n_a * n_b));
  for (std::int64_t k0 = 0; k0 < dim; k0 += width) {
    poll_cancel();  // (a slice's GEMM, ≤ 17 GFLOP at NSD's 1,000 images, runs unsliced: ~0.1 s)
    const std::int64_t w = std::min(width, dim - k0);
    normalise_columns(a, n_a, dim, sa.data(), k0, w, na.data());
    normalise_columns(b, n_b, dim, sb.data(), k0, w, nb.data());
    linalg::gemm(false, true, n_a, n_b, w, 1.0f, na.data(), w, nb.data(), w, k0 ? 1.0f : 0.0f, r.data(), n_b);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::int64_t i = 0; i < n_a; ++i)
    for (std::int64_t j = 0; j < n_b; ++j)
      if (sa[static_cast<std::size_t>(i)].inv == 0 || sb[static_cast<std::size_t>(j)].inv == 0) r[static_cast<std::size_t>(i * n_b + j)] = nan;
  return r;
}

}  // namespace

std::vector<float> correlation_matrix(const float* a, std::int64_t n_a, const float* b, std::int64_t n_b, std::int64_t dim,
                                      std::int64_t slice_columns) {
  return correlation_rows(a, n_a, b, n_b, dim, slice_columns);
}

std::vector<float> correlation_matrix_u8(const std::uint8_t* a, std::int64_t n_a, const std::uint8_t* b, std::int64_t n_b, std::int64_t dim,
                                         std::int64_t slice_columns) {
  return correlation_rows(a, n_a, b, n_b, dim, slice_columns);
}

}  // namespace brainlatent
