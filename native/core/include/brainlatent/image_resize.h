// Resizing an interleaved RGB uint8 image (row-major height × width × 3): area averaging when shrinking,
// bilinear when enlarging, each axis separately. The same arithmetic, in the same order, as ts/io/resize.ts's
// resizeRgb (float64 sums, JavaScript's Math.round, clamped to 0–255), so the two give the same bytes: the
// evaluation reads every sample of every seed through one or the other.
#pragma once

#include <cstdint>

namespace brainlatent {

// dst: out_height × out_width × 3 bytes. Sizes must be >= 1 (InvalidArgument otherwise).
void resize_rgb(const std::uint8_t* src, std::int64_t width, std::int64_t height, std::uint8_t* dst, std::int64_t out_width,
                std::int64_t out_height);

}  // namespace brainlatent
