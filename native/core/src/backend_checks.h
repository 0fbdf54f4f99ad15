// Internal: the argument checks every backend makes before an operation, in one place, so that
// each backend validates the same way with the same messages (backend.h defines the operations).
// A check throws brainlatent::Error (ShapeMismatch or InvalidArgument) naming the operation and
// the operand; what it returns is the shape the operation then works with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brainlatent/backend.h"

namespace brainlatent {
namespace checks {

using i64 = std::int64_t;

inline std::string dims(i64 r, i64 c) { return std::to_string(r) + "×" + std::to_string(c); }

template <typename T>
void need_shape(const View<T>& v, i64 rows, i64 cols, const char* op, const char* what) {
  if (v.rows != rows || v.cols != cols)
    throw Error(ErrorCode::ShapeMismatch, std::string(op) + ": " + what + " is " + dims(v.rows, v.cols) + ", expected " + dims(rows, cols));
}

template <typename T>
void need_vec(const View<T>& v, i64 n, const char* op, const char* what) {
  if (v.empty()) throw Error(ErrorCode::InvalidArgument, std::string(op) + ": " + what + " is missing");
  if (v.size() != n || (v.rows != 1 && v.cols != 1 && n > 0))
    throw Error(ErrorCode::ShapeMismatch, std::string(op) + ": " + what + " has " + std::to_string(v.size()) + " elements, expected " + std::to_string(n));
}

// The stride between consecutive vector elements: a 1×n view steps by 1, an n×1 view by ld.
template <typename T>
i64 vstep(const View<T>& v) {
  return v.rows == 1 ? 1 : v.ld;
}

struct GemmShape {
  i64 m, n, k;
};
// C = op(A)·op(B): op(A) m×k, op(B) k×n, C m×n.
template <typename T>
GemmShape gemm(bool ta, bool tb, const View<T>& a, const View<T>& b, const View<T>& c) {
  const i64 m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols;
  const i64 kb = tb ? b.cols : b.rows, n = tb ? b.rows : b.cols;
  if (kb != k) throw Error(ErrorCode::ShapeMismatch, "gemm: op(A) is " + dims(m, k) + " but op(B) is " + dims(kb, n));
  need_shape(c, m, n, "gemm", "C");
  return {m, n, k};
}

// shrink: the eigen-axis length r.
inline i64 shrink(const ViewF& src, const ViewD& lam, const ViewD& alphas, Axis axis, const ViewF& dst) {
  const i64 r = axis == Axis::Cols ? src.cols : src.rows;
  need_vec(lam, r, "shrink", "eigenvalues");
  need_shape(dst, alphas.size() * src.rows, src.cols, "shrink", "destination");
  return r;
}

inline void shrink_targets(const ViewF& src, const ViewD& lam, const ViewD& alpha, const ViewF& dst) {
  need_vec(lam, src.rows, "shrink_targets", "eigenvalues");
  need_vec(alpha, src.cols, "shrink_targets", "alphas");
  need_shape(dst, src.rows, src.cols, "shrink_targets", "destination");
}

inline void tri_shrink(const char* op, const ViewF& src, const ViewD& d, const ViewD& e, i64 blocks, const ViewF& dst) {
  need_vec(d, src.rows, op, "diagonal");
  need_vec(e, src.rows, op, "off-diagonal");
  need_shape(dst, blocks * src.rows, src.cols, op, "destination");
}

// fold_stats: the number of folds.
inline i64 fold_stats(const ViewF& y, const std::vector<i64>& start, const ViewD& level, const ViewD& sum, const ViewD& sst) {
  const i64 k = static_cast<i64>(start.size()) - 1, t = y.cols;
  if (k < 1 || start.front() != 0 || start.back() != y.rows)
    throw Error(ErrorCode::InvalidArgument, "fold_stats: fold boundaries must run from 0 to the " + std::to_string(y.rows) + " rows");
  need_vec(level, t, "fold_stats", "level");
  need_shape(sum, k, t, "fold_stats", "sum");
  need_shape(sst, k, t, "fold_stats", "sst");
  return k;
}

inline void score(const ViewF& pred, i64 blocks, const ViewF& y, const ViewD& offset, bool residual, const ViewD& sum, const ViewD& sst,
                  const ViewD& acc) {
  const i64 m = y.rows, t = y.cols;
  need_shape(pred, blocks * m, t, "score", "predictions");
  need_vec(sum, t, "score", "fold sums");
  need_vec(sst, t, "score", "fold SST");
  need_shape(acc, blocks, t, "score", "accumulator");
  if (!residual) need_vec(offset, t, "score", "offset");
}

// select_best: the first alpha that is not skipped.
inline i64 select_best(const ViewD& scores, const std::vector<double>& alphas, const std::vector<char>& skip, const ViewI& best_index,
                       const ViewD& best_score, const ViewD& best_alpha) {
  const i64 na = scores.rows, t = scores.cols;
  if (static_cast<i64>(alphas.size()) != na || static_cast<i64>(skip.size()) != na)
    throw Error(ErrorCode::ShapeMismatch, "select_best: " + std::to_string(na) + " score rows but " + std::to_string(alphas.size()) +
                                              " alphas and " + std::to_string(skip.size()) + " skip flags");
  need_vec(best_index, t, "select_best", "best index");
  need_vec(best_score, t, "select_best", "best score");
  need_vec(best_alpha, t, "select_best", "best alpha");
  i64 first = 0;
  while (first < na && skip[static_cast<std::size_t>(first)]) ++first;
  if (first == na) throw Error(ErrorCode::InvalidArgument, "select_best: every alpha is skipped");
  return first;
}

inline void improve(const ViewD& score, const ViewI& index, const ViewD& best_score, const ViewI& best_index, const ViewI& best_tag) {
  const i64 t = score.size();
  need_vec(index, t, "improve", "index");
  need_vec(best_score, t, "improve", "best score");
  need_vec(best_index, t, "improve", "best index");
  need_vec(best_tag, t, "improve", "best tag");
}

// ---- the sampler
inline void rows(const ViewF& v, i64 rows, i64 n, const char* what) {
  if (v.empty() || v.rows != rows || v.cols != n || !v.contiguous())
    throw Error(ErrorCode::InvalidArgument, std::string(what) + ": expected a contiguous " + std::to_string(rows) + " × " + std::to_string(n) +
                                                " view, got " + std::to_string(v.rows) + " × " + std::to_string(v.cols) +
                                                (v.contiguous() ? "" : " (strided)"));
}

// A sampler batch's buffers: every present view contiguous and of its shape (eps is absent before
// the first U-Net call), one noise key per image when keys are given.
inline void sampler_batch(const SamplerBatch& b) {
  if (b.groups != 1 && b.groups != 2) throw Error(ErrorCode::InvalidArgument, "sampler: groups must be 1 or 2");
  if (!b.keys.empty() && static_cast<i64>(b.keys.size()) != b.images)
    throw Error(ErrorCode::InvalidArgument, "sampler: one noise key per image expected, got " + std::to_string(b.keys.size()));
  rows(b.x, b.images, b.per_image, "sampler: x");
  rows(b.unet_in, b.groups * b.images, b.per_image, "sampler: unet_in");
  if (!b.eps.empty()) rows(b.eps, b.groups * b.images, b.per_image, "sampler: eps");
  for (int h = 0; h < kHistorySlots; ++h)
    if (!b.history[h].empty()) rows(b.history[h], b.images, b.per_image, "sampler: history");
  if (!b.step_noise.empty()) rows(b.step_noise, b.images, b.per_image, "sampler: step noise");
}

inline void sampler_init(const SamplerBatch& b, const ViewF& z, const ViewF& noise) {
  sampler_batch(b);
  rows(z, b.images, b.per_image, "sampler_init: z");
  if (!noise.empty()) rows(noise, b.images, b.per_image, "sampler_init: noise");
  else if (static_cast<i64>(b.keys.size()) != b.images) throw Error(ErrorCode::InvalidArgument, "sampler_init: Philox noise needs one key per image");
}

inline void sampler_step(const SamplerBatch& b) {
  if (b.eps.empty()) throw Error(ErrorCode::InvalidArgument, "sampler_step: no eps (the U-Net's output)");
  sampler_batch(b);
}

}  // namespace checks
}  // namespace brainlatent
