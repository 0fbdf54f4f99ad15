// Internal: what every ridge solver (RidgeCV, banded ridge) shares — checks of X, Y, alphas and
// folds; the fold layout, which reorders samples so that each fold is one contiguous block of
// rows; the centred / standardised copy of X in that order; Y's means and centred batches of Y
// columns; and the eigendecomposition of a Gram with its precision rule.
#pragma once
#include <cstdint>
#include <vector>

#include "brainlatent/matrix.h"
#include "brainlatent/ridge.h"

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

// Shapes (non-empty, same number of rows) and finiteness of X and Y; errors name the first bad
// element's row and column.
void check_xy(ConstMatF x, ConstMatF y);
// Every alpha finite and > 0, at least one.
void check_alphas(const std::vector<double>& alphas);
// Fold labels 0..k-1, one per sample, no empty fold; samples reordered fold by fold.
FoldLayout make_fold_layout(const std::vector<std::int32_t>& folds, int k, std::int64_t n);

struct PreparedX {
  std::vector<float> data;   // n × p, rows in fold order: (X − mean) / scale
  std::vector<float> mean;   // p: the column means with an intercept, else zeros
  std::vector<float> scale;  // p: the column SDs (ddof 0) when standardising, else ones
};
PreparedX prepare_x(ConstMatF x, const FoldLayout& folds, bool fit_intercept, bool standardize);

// Column means of Y in float64 (zeros without an intercept).
std::vector<double> column_means(ConstMatF y, bool fit_intercept);

// Columns cols[0..tb) of Y (or j0..j0+tb when cols is null), rows in fold order, minus `mean`:
// out is n × tb, row-major.
void load_y(ConstMatF y, const FoldLayout& folds, const std::vector<double>& mean, const std::int64_t* cols,
            std::int64_t j0, std::int64_t tb, std::vector<float>& out);

// One symmetric eigendecomposition: row k of qt is eigenvector k, eigenvalues ascending and
// clamped at 0 in lam; raw holds them unclamped (their negative part shows the rounding error).
struct Eig {
  std::int64_t r = 0;
  std::vector<float> qt;
  std::vector<double> lam;
  std::vector<double> raw;
};

// Eigendecomposition of the symmetric r × r float32 matrix in sym (destroyed), in float32
// (?syevd) or, with float64, converted and decomposed in double.
Eig eigh_sym(std::vector<float>& sym, std::int64_t r, bool float64);

// Float32 eigenvalues carry an error of about ε·λ_max: an alpha below a tenth of that leaves the
// shrinkage 1/(λ+α) of the weakest directions unresolved (ridge.md §5.4), so 'auto' decomposes in
// float64 then. lambda_max may be an upper bound (‖G‖_F) where the exact value is not known yet.
bool needs_float64(EigPrecision precision, const std::vector<double>& alphas, double lambda_max);

// The Grams are formed in float32, so an eigenvalue is only known to about ε·λ_max. When a
// decomposed matrix is (near) singular, an alpha below that resolution (taken as 1e-5·λ_max) has
// no meaningful fit in the null directions: such alphas are marked unresolved and never chosen,
// as himalaya guards float32 fits (ridge.md §5.4). A centred kernel's constant null vector carries
// no signal and is not counted (skip_constant).
class AlphaResolution {
 public:
  explicit AlphaResolution(const std::vector<double>& alphas) : alphas_(alphas), unresolved_(alphas.size(), 0) {}
  void note(const std::vector<double>& raw_eigenvalues, bool skip_constant);
  void reset();
  bool unresolved(int a) const { return unresolved_[static_cast<std::size_t>(a)] != 0; }
  bool all_unresolved() const;
  int count() const;
  double resolution() const { return resolution_; }

 private:
  const std::vector<double>& alphas_;
  std::vector<char> unresolved_;
  double resolution_ = 0;
};

}  // namespace brainlatent::detail
