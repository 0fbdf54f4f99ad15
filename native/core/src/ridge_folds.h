// Internal: fold layout shared by the RidgeCV routes. Samples are reordered so that each
// fold is one contiguous block of rows; every route then works on plain row ranges.
#pragma once
#include <cstdint>
#include <vector>

namespace brainlatent::detail {

struct FoldLayout {
  std::int64_t n = 0;
  int k = 0;
  std::vector<std::int64_t> order;  // order[r] = original row placed at permuted row r
  std::vector<std::int64_t> start;  // fold v occupies permuted rows [start[v], start[v+1])
  std::int64_t size(int v) const { return start[v + 1] - start[v]; }
  std::int64_t max_size() const {
    std::int64_t m = 0;
    for (int v = 0; v < k; ++v) m = size(v) > m ? size(v) : m;
    return m;
  }
  std::int64_t min_train() const { return n - max_size(); }
};

}  // namespace brainlatent::detail
