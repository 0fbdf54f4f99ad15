// Inputs of the ridge engine: the checks of a Problem (shapes, finiteness, alphas, folds, bands,
// candidates) and the fold layout that makes every fold one contiguous block of rows.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "brainlatent/error.h"
#include "brainlatent/parallel.h"
#include "engine.h"

namespace brainlatent::ridge {

namespace {
std::string shape(i64 r, i64 c) { return std::to_string(r) + "×" + std::to_string(c); }
std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }

// A NaN would silently poison every target sharing its rows: find the first non-finite value. The first in
// order, not the first a thread came to: the smallest position any chunk found (the backends' first_nonfinite
// does the same); a chunk stops once it is past a position already found.
void check_finite(ConstMatF m, const char* name) {
  constexpr i64 none = std::numeric_limits<i64>::max();
  std::atomic<i64> bad{none};
  parallel_for(0, m.rows, 256, [&](i64 b, i64 e) {
    for (i64 i = b; i < e && i * m.cols < bad.load(); ++i) {
      const float* r = m.row(i);
      for (i64 j = 0; j < m.cols; ++j)
        if (!std::isfinite(r[j])) {
          i64 cur = bad.load(), pos = i * m.cols + j;
          while (pos < cur && !bad.compare_exchange_weak(cur, pos)) {
          }
          return;
        }
    }
  });
  if (bad.load() == none) return;
  const i64 at = bad.load();
  const float v = m.data[at];
  throw Error(ErrorCode::NonFinite, std::string(name) + " contains " + (std::isnan(v) ? "NaN" : "Inf") + " at row " +
                                        std::to_string(at / m.cols) + ", column " + std::to_string(at % m.cols) +
                                        ": inputs must be finite");
}
}  // namespace

i64 FoldLayout::max_size() const {
  i64 m = 0;
  for (int v = 0; v < k; ++v) m = std::max(m, size(v));
  return m;
}

namespace {
// Checks what make_fold_layout and fold_layout_of_sizes share, from the folds' sizes, and sets start.
void set_fold_starts(FoldLayout& f, const std::vector<i64>& counts) {
  f.start.assign(counts.size() + 1, 0);
  for (std::size_t v = 0; v < counts.size(); ++v) {
    if (counts[v] <= 0) throw Error(ErrorCode::InvalidArgument, "folds: fold " + std::to_string(v) + " has no samples");
    f.start[v + 1] = f.start[v] + counts[v];
  }
  if (f.n - f.max_size() < 1) throw Error(ErrorCode::InvalidArgument, "folds: a fold leaves no training samples");
}

void check_fold_count(int k, i64 n) {
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  if (k > n) throw Error(ErrorCode::InvalidArgument, "folds: " + std::to_string(k) + " folds but only " + std::to_string(n) + " samples");
}
}  // namespace

FoldLayout make_fold_layout(const std::vector<std::int32_t>& labels, int k, i64 n) {
  if (static_cast<i64>(labels.size()) != n)
    throw Error(ErrorCode::ShapeMismatch, "folds: " + std::to_string(labels.size()) + " fold labels for " + std::to_string(n) + " samples");
  check_fold_count(k, n);
  FoldLayout f;
  f.n = n;
  f.k = k;
  std::vector<i64> counts(Z(k), 0);
  for (i64 i = 0; i < n; ++i) {
    const std::int32_t v = labels[Z(i)];
    if (v < 0 || v >= k)
      throw Error(ErrorCode::InvalidArgument, "folds: sample " + std::to_string(i) + " has fold " + std::to_string(v) +
                                                  ", outside 0.." + std::to_string(k - 1));
    counts[Z(v)]++;
  }
  set_fold_starts(f, counts);
  f.order.assign(Z(n), 0);
  std::vector<i64> pos(f.start.begin(), f.start.end() - 1);
  for (i64 i = 0; i < n; ++i) f.order[Z(pos[Z(labels[Z(i)])]++)] = i;
  return f;
}

FoldLayout fold_layout_of_sizes(const std::vector<std::int64_t>& sizes, i64 n) {
  const int k = static_cast<int>(std::min<std::size_t>(sizes.size(), std::size_t(1) << 30));
  check_fold_count(k, n);
  i64 sum = 0;  // (each size in 0..n and the sum stopped past n: no overflow)
  for (std::int64_t s : sizes) {
    if (s > n) throw Error(ErrorCode::ShapeMismatch, "folds: a fold of " + std::to_string(s) + " samples, of " + std::to_string(n) + " in all");
    if ((sum += std::max<std::int64_t>(s, 0)) > n) break;
  }
  if (sum != n) throw Error(ErrorCode::ShapeMismatch, "folds: the fold sizes sum to " + (sum > n ? "more than " + std::to_string(n) : std::to_string(sum)) + " samples, not " + std::to_string(n));
  FoldLayout f;
  f.n = n;
  f.k = k;
  set_fold_starts(f, std::vector<i64>(sizes.begin(), sizes.end()));
  return f;
}

bool Problem::unit_weights() const {
  if (n_candidates() != 1) return false;
  return std::all_of(candidates.begin(), candidates.end(), [](double g) { return g == 1.0; });
}

std::vector<int> Problem::first_equal_candidates() const {
  const int nc = n_candidates(), nb = n_bands();
  std::vector<int> first(Z(nc));
  std::map<std::vector<double>, int> seen;
  for (int c = 0; c < nc; ++c) {
    const auto row = candidates.begin() + static_cast<std::ptrdiff_t>(c) * nb;
    // (a row with a NaN, refused by check_problem, would compare equal to any: left on its own)
    const bool finite = std::all_of(row, row + nb, [](double g) { return std::isfinite(g); });
    first[Z(c)] = finite ? seen.emplace(std::vector<double>(row, row + nb), c).first->second : c;
  }
  return first;
}

int Problem::n_distinct_candidates() const {
  const std::vector<int> first = first_equal_candidates();
  int d = 0;
  for (std::size_t c = 0; c < first.size(); ++c) d += first[c] == static_cast<int>(c);
  return d;
}

void check_problem(const Problem& pb) {
  const ConstMatF x = pb.x, y = pb.y;
  if (x.rows == 0 || x.cols == 0)
    throw Error(ErrorCode::ShapeMismatch, "X is empty (" + shape(x.rows, x.cols) + "): need samples × features with both > 0");
  if (y.rows == 0 || y.cols == 0)
    throw Error(ErrorCode::ShapeMismatch, "Y is empty (" + shape(y.rows, y.cols) + "): need samples × targets with both > 0");
  if (y.rows != x.rows)
    throw Error(ErrorCode::ShapeMismatch, "X has " + std::to_string(x.rows) + " samples (rows) but Y has " +
                                              std::to_string(y.rows) + ": they must match");
  check_finite(x, "X");
  check_finite(y, "Y");
  if (pb.alphas.empty()) throw Error(ErrorCode::InvalidArgument, "alphas: need at least one alpha");
  for (double a : pb.alphas)
    if (!(a > 0) || !std::isfinite(a))
      throw Error(ErrorCode::InvalidArgument, "alphas: every alpha must be finite and > 0, got " + std::to_string(a));
  if (pb.folds.n != x.rows) throw Error(ErrorCode::ShapeMismatch, "folds: laid out for " + std::to_string(pb.folds.n) + " samples, X has " + std::to_string(x.rows));
  if (pb.band_sizes.empty()) throw Error(ErrorCode::InvalidArgument, "bands: need at least one band");
  i64 total = 0;
  for (std::size_t b = 0; b < pb.band_sizes.size(); ++b) {
    if (pb.band_sizes[b] < 1)
      throw Error(ErrorCode::InvalidArgument, "bands: band " + std::to_string(b) + " has " + std::to_string(pb.band_sizes[b]) +
                                                  " columns; every band needs at least 1");
    total += pb.band_sizes[b];
  }
  if (total != x.cols)
    throw Error(ErrorCode::ShapeMismatch, "bands: the band sizes sum to " + std::to_string(total) + " columns but X has " + std::to_string(x.cols));
  if (pb.candidates.empty() || pb.candidates.size() % pb.band_sizes.size() != 0)
    throw Error(ErrorCode::ShapeMismatch, "gammas: " + std::to_string(pb.candidates.size()) + " values is not a whole number of rows of " +
                                              std::to_string(pb.band_sizes.size()) + " bands");
  for (std::size_t r = 0; r < pb.candidates.size() / pb.band_sizes.size(); ++r) {
    double sum = 0;
    for (std::size_t b = 0; b < pb.band_sizes.size(); ++b) {
      const double g = pb.candidates[r * pb.band_sizes.size() + b];
      if (!(g >= 0) || !std::isfinite(g))
        throw Error(ErrorCode::InvalidArgument, "gammas: row " + std::to_string(r) + " has " + std::to_string(g) + "; weights must be finite and >= 0");
      sum += g;
    }
    if (!(sum > 0)) throw Error(ErrorCode::InvalidArgument, "gammas: row " + std::to_string(r) + " is all zero");
  }
}

}  // namespace brainlatent::ridge
