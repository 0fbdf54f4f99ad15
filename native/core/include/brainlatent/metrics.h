// Image-reconstruction metrics of the NSD evaluation protocol (method.md §6.2): PixCorr, SSIM
// (skimage's structural_similarity on grayscale with Gaussian weights), and the Pearson
// correlation matrix that two-way identification and the correlation distances are built on.
// Plain C++17: uint8 or float32 storage, float64 accumulation, parallel over images. Each polls the
// calling thread's cancellation (poll_cancel(), long_ops.h) between images or rows, so that an aborted
// job stops within one image (tens of ms at 425²) instead of running to its end.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace brainlatent {

// A batch of interleaved uint8 images: data[((i·height + y)·width + x)·channels + c].
struct ImageBatchU8 {
  const std::uint8_t* data;
  std::int64_t count;
  std::int64_t height;
  std::int64_t width;
  std::int64_t channels;  // 1 (gray) or 3 (RGB)
};

// Told after each image pair, with the number of pairs done so far; called from the computing threads, concurrently
// (each count once, not necessarily in order).
using ImagesDone = std::function<void(std::int64_t done)>;

// Pearson r of the flattened images, one per image pair (a_i, b_i). Shapes must match.
std::vector<double> pixcorr(const ImageBatchU8& a, const ImageBatchU8& b, const ImagesDone& images_done = {});

struct SsimOptions {
  double sigma = 1.5;        // Gaussian window SD (skimage gaussian_weights=True)
  double truncate = 3.5;     // window radius = int(truncate·sigma + 0.5), as scipy.ndimage
  double data_range = 1.0;   // images are scaled to [0, 1] before the comparison
  double k1 = 0.01;
  double k2 = 0.03;
};

// Mean SSIM per image pair, on grayscale (skimage rgb2gray: 0.2125 R + 0.7154 G + 0.0721 B of
// the [0, 1] image), Gaussian-weighted local statistics with population covariance, 'reflect'
// borders (scipy), averaged over the image less a border of the window radius (skimage crop).
std::vector<double> ssim(const ImageBatchU8& a, const ImageBatchU8& b, const SsimOptions& options = {},
                         const ImagesDone& images_done = {});

// SSIM of one pair of grayscale float images in [0, data_range] (h × w, row-major).
double ssim_gray(const double* x, const double* y, std::int64_t height, std::int64_t width, const SsimOptions& options);

// r[i·n_b + j] = Pearson correlation of row i of a (n_a × dim) with row j of b (n_b × dim).
// Each row's mean and norm come from float64 sums; the centred, scaled values are held in float32 a
// slice of columns at a time, both sides (64 MiB in all, at least 1,024 columns; slice_columns > 0
// sets the width, for tests), and multiplied slice by slice into r. A constant row has no defined
// correlation: its entries are NaN.
std::vector<float> correlation_matrix(const float* a, std::int64_t n_a, const float* b, std::int64_t n_b, std::int64_t dim,
                                      std::int64_t slice_columns = 0);
// The same on rows of bytes (images' pixels, without a float copy of them).
std::vector<float> correlation_matrix_u8(const std::uint8_t* a, std::int64_t n_a, const std::uint8_t* b, std::int64_t n_b, std::int64_t dim,
                                         std::int64_t slice_columns = 0);

}  // namespace brainlatent
