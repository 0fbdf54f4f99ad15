// Fold assignments: contiguous K-fold (scikit-learn's KFold without shuffling) and whole groups in
// contiguous runs of near-equal size (GroupKFold-like, time order kept).
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/ridge.h"

namespace brainlatent {

using i64 = std::int64_t;

std::vector<std::int64_t> contiguous_fold_sizes(i64 n, int k) {
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  if (k > n)
    throw Error(ErrorCode::InvalidArgument,
                "folds: " + std::to_string(k) + " folds cannot be made from " + std::to_string(n) + " samples");
  // scikit-learn KFold: the first n % k folds get one extra sample.
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(k));
  for (int v = 0; v < k; ++v) sizes[static_cast<std::size_t>(v)] = n / k + (v < n % k ? 1 : 0);
  return sizes;
}

std::vector<std::int32_t> contiguous_folds(i64 n, int k) {
  const std::vector<std::int64_t> sizes = contiguous_fold_sizes(n, k);
  std::vector<std::int32_t> f(static_cast<std::size_t>(n));
  i64 pos = 0;
  for (int v = 0; v < k; ++v)
    for (i64 i = 0; i < sizes[static_cast<std::size_t>(v)]; ++i) f[static_cast<std::size_t>(pos++)] = v;
  return f;
}

std::vector<std::int32_t> group_folds(const std::vector<std::int32_t>& groups, int k) {
  if (k < 2) throw Error(ErrorCode::InvalidArgument, "folds: need at least 2 folds, got " + std::to_string(k));
  // Slot of each distinct group, numbered in order of first appearance, and the slots' sizes.
  std::vector<std::size_t> idx(groups.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return groups[a] < groups[b]; });
  std::vector<std::size_t> first_index;        // per distinct group (in id order): first sample
  std::vector<std::size_t> group_of(groups.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && groups[idx[j]] == groups[idx[i]]) group_of[idx[j++]] = first_index.size();
    first_index.push_back(idx[i]);
    i = j;
  }
  const i64 n_groups = static_cast<i64>(first_index.size());
  if (n_groups < k)
    throw Error(ErrorCode::InvalidArgument,
                "groups: " + std::to_string(n_groups) + " distinct groups cannot fill " + std::to_string(k) + " folds");
  std::vector<std::size_t> order(first_index.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return first_index[a] < first_index[b]; });
  std::vector<std::int32_t> slot_of_group(first_index.size());
  for (std::size_t r = 0; r < order.size(); ++r) slot_of_group[order[r]] = static_cast<std::int32_t>(r);
  std::vector<i64> sizes(first_index.size(), 0);
  for (std::size_t i = 0; i < groups.size(); ++i) sizes[static_cast<std::size_t>(slot_of_group[group_of[i]])]++;

  // Contiguous runs of groups (in order of appearance) with near-equal sample counts, so that
  // with time-ordered data each fold stays a block in time, as contiguous KFold does.
  const i64 n = static_cast<i64>(groups.size());
  std::vector<std::int32_t> fold_of_slot(sizes.size());
  i64 cum = 0;
  for (i64 s = 0; s < n_groups; ++s) {
    const double centre = static_cast<double>(cum) + 0.5 * static_cast<double>(sizes[static_cast<std::size_t>(s)]);
    fold_of_slot[static_cast<std::size_t>(s)] = std::min(static_cast<int>(centre * k / static_cast<double>(n)), k - 1);
    cum += sizes[static_cast<std::size_t>(s)];
  }
  // Every fold must be non-empty: with very unequal groups, move a group from the fold holding most.
  std::vector<i64> count(static_cast<std::size_t>(k), 0);
  for (i64 s = 0; s < n_groups; ++s) count[static_cast<std::size_t>(fold_of_slot[static_cast<std::size_t>(s)])]++;
  for (int v = 0; v < k; ++v) {
    if (count[static_cast<std::size_t>(v)] > 0) continue;
    const int donor = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
    for (i64 s = n_groups - 1; s >= 0; --s)
      if (fold_of_slot[static_cast<std::size_t>(s)] == donor) {
        fold_of_slot[static_cast<std::size_t>(s)] = v;
        count[static_cast<std::size_t>(donor)]--;
        count[static_cast<std::size_t>(v)]++;
        break;
      }
  }
  std::vector<std::int32_t> folds(groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i)
    folds[i] = fold_of_slot[static_cast<std::size_t>(slot_of_group[group_of[i]])];
  return folds;
}

}  // namespace brainlatent
