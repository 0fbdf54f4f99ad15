// Non-owning row-major matrix views. Storage belongs to the caller (typed arrays from JS,
// buffers in tests); the engine never copies an input it can read in place.
#pragma once
#include <cstddef>
#include <cstdint>

namespace brainlatent {

template <typename T>
struct MatrixView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  T* row(std::int64_t i) const { return data + i * cols; }
  std::size_t size() const { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }
};

using MatF = MatrixView<float>;
using ConstMatF = MatrixView<const float>;

}  // namespace brainlatent
