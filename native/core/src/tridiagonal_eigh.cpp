// The tridiagonal step of a symmetric eigendecomposition (linalg.h: tridiagonal_eigh) by divide and
// conquer, the method of LAPACK's ?stedc, with its upper levels driven from here: ?stedc is one call
// (~11 s in float64 at NSD's 8,859 samples, most of it the top merge's two products), which no
// abort could stop and no progress bar could follow. Here a tridiagonal matrix above `split_above`
// is torn in two by a rank-one cut (T = diag(T₁, T₂) + ρvvᵀ), each half solved the same way, and
// the halves merged: LAPACK's ?laed2 deflates, ?laed4 finds the secular equation's roots, the
// eigenvectors follow Gu & Eisenstat (the weights recomputed from the roots, so that they come out
// orthogonal), and the two products that apply them run through linalg::gemm, in slices past its
// slice size. Blocks at or below `split_above` go to ?stedc whole. Polls and progress between steps.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "brainlatent/blas_turn.h"
#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/parallel.h"
#include "brainlatent/profile.h"
#include "lapack.h"

namespace brainlatent::linalg {

namespace {

[[noreturn]] void failed(const char* step, int n, int info) {
  throw Error(ErrorCode::NumericalFailure, std::string("tridiagonal eigendecomposition (") + step + ") of order " + std::to_string(n) +
                                               " failed (info " + std::to_string(info) + ")");
}

// Columns (roots, eigenvectors) per core at least: below, one core does a merge's scalar passes.
constexpr std::int64_t kMinColumns = 64;

template <typename T>
T norm2(int k, const T* s) {
  double scale = 0;
  for (int i = 0; i < k; ++i) scale = std::max(scale, static_cast<double>(std::fabs(s[i])));
  if (scale == 0) return 0;
  double sum = 0;
  for (int i = 0; i < k; ++i) {
    const double v = s[i] / scale;
    sum += v * v;
  }
  return static_cast<T>(scale * std::sqrt(sum));
}

// Column-major C (m×n, ldc) = A (m×k, lda) · B (k×n, ldb): row-major Cᵀ = Bᵀ·Aᵀ.
template <typename T>
void gemm_cm(int m, int n, int k, const T* a, int lda, const T* b, int ldb, T* c, int ldc) {
  gemm(false, false, n, m, k, T(1), b, ldb, a, lda, T(0), c, ldc);
}

template <typename T>
class DivideAndConquer {
 public:
  DivideAndConquer(int n, T* work, int lwork, int* iwork, int liwork, int split_above, const std::function<void(double)>& done)
      : split_(std::max(split_above, 1)), work_(work), lwork_(lwork), iwork_(iwork), liwork_(liwork), done_(done), total_(cost(n)) {}

  // Block of order n at d, e, its eigenvectors' block at z (column-major, ldz), zero outside the
  // block on entry. On return d holds its eigenvalues, unsorted after a merge, the block's columns
  // their eigenvectors, and indxq (1-based within the block) the order that sorts them.
  void solve(int n, T* d, T* e, T* z, int ldz, int* indxq) {
    if (n <= split_) {
      leaf(n, d, e, z, ldz);
      for (int i = 0; i < n; ++i) indxq[i] = i + 1;
    } else {
      const int n1 = n / 2;
      // the cut: T = diag(T₁ − |ρ|e_last e_lastᵀ, T₂ − |ρ|e₁e₁ᵀ) + ρ·vvᵀ, v = (e_last; sign(ρ)·e₁)
      const T rho = e[n1 - 1];
      d[n1 - 1] -= std::fabs(rho);
      d[n1] -= std::fabs(rho);
      solve(n1, d, e, z, ldz, indxq);
      solve(n - n1, d + n1, e + n1, z + static_cast<std::int64_t>(n1) * ldz + n1, ldz, indxq + n1);
      merge(n, n1, d, z, ldz, indxq, rho);
    }
    finished_ += n <= split_ ? cost(n) : static_cast<double>(n) * n * n;
    done_(std::min(1.0, finished_ / total_));
  }

 private:
  // Flops, roughly: a merge's two products n³ at most (no deflation), a leaf (4/3)n³.
  double cost(int n) const {
    if (n <= split_) return 4.0 / 3.0 * n * n * n;
    return cost(n / 2) + cost(n - n / 2) + static_cast<double>(n) * n * n;
  }

  void leaf(int n, T* d, T* e, T* z, int ldz) {
    poll_cancel();
    const char compz = 'I';
    int info = 0;
    {
      BlasTurn turn;
      Lapack<T>::stedc(&compz, &n, d, e, z, &ldz, work_, &lwork_, iwork_, &liwork_, &info);
    }
    if (info != 0) failed("stedc", n, info);
  }

  // Progress within a merge of order n: `share` of its cost done.
  void merge_progress(int n, double share) { done_(std::min(1.0, (finished_ + share * static_cast<double>(n) * n * n) / total_)); }

  // The two halves' eigensystems (d, Q = diag(Q₁, Q₂), indxq sorting each half) into the whole's.
  // Its progress marks follow its steps' times (float64, 8,859, a Gram-like matrix, the 7 merges):
  // deflation 0.26 s, roots 0.65 s, vectors 0.40 s, the two products 4.3 s.
  void merge(int n, int n1, T* d, T* q, int ldq, int* indxq, T rho) {
    poll_cancel();
    T *z = work_, *dlamda = z + n, *w = dlamda + n, *q2 = w + n;
    int *indx = iwork_, *indxc = indx + n, *coltyp = indxc + n, *indxp = coltyp + n;
    // the cut's vector in the halves' eigenbases: Q₁'s last row, then Q₂'s first
    for (int j = 0; j < n1; ++j) z[j] = q[static_cast<std::int64_t>(j) * ldq + n1 - 1];
    for (int j = n1; j < n; ++j) z[j] = q[static_cast<std::int64_t>(j) * ldq + n1];
    int k = 0, info = 0;
    {
      profile::Scope ps("stedc: deflate");
      BlasTurn turn;
      Lapack<T>::laed2(&k, &n, &n1, d, q, &ldq, indxq, &rho, z, dlamda, w, q2, indx, indxc, indxp, coltyp, &info);
    }
    if (info != 0) failed("laed2", n, info);
    if (k == 0) {  // everything deflated: laed2 left d sorted
      for (int i = 0; i < n; ++i) indxq[i] = i + 1;
      return;
    }
    merge_progress(n, 0.05);
    // (laed2 leaves in coltyp's first entries its count of columns of each type: nonzero in Q₁'s
    // rows only, in both, in Q₂'s only; q2 packs them, and the scratch S follows them)
    const int ctot[3] = {coltyp[0], coltyp[1], coltyp[2]};
    T* s = q2 + static_cast<std::int64_t>(ctot[0] + ctot[1]) * n1 + static_cast<std::int64_t>(ctot[1] + ctot[2]) * (n - n1);
    roots_and_vectors(k, n, d, q, ldq, rho, dlamda, indxc, w, s);
    merge_progress(n, 0.2);
    products(k, n, n1, q, ldq, q2, ctot, s);
    const int nk = n - k, one = 1, minus_one = -1;
    Lapack<T>::lamrg(&k, &nk, d, &one, &minus_one, indxq);
  }

  // The k undeflated eigenpairs of D + ρzzᵀ (D = dlamda, z = w): eigenvalues in d, eigenvectors in
  // Q's leading k×k block.
  void roots_and_vectors(int k, int n, T* d, T* q, int ldq, T rho, const T* dlamda, const int* indx, T* w, T* s) {
    auto Q = [&](int i, int j) -> T& { return q[static_cast<std::int64_t>(j) * ldq + i]; };
    {
      // Root j: d[j], and column j of Q's leading k×k block the differences dlamda_i − d[j].
      // (LAPACK first rounds dlamda through 2x − x for machines without a guard digit: a no-op in IEEE arithmetic)
      // (independent roots, O(k) each: on every core. No BlasTurn: ?laed4 is scalar code that never
      // enters BLAS's thread pool)
      profile::Scope ps("stedc: roots");
      parallel_for(0, k, kMinColumns, [&](std::int64_t b, std::int64_t e) {
        for (int j = static_cast<int>(b); j < e; ++j) {
          if (j % 256 == 0) poll_cancel();
          int info = 0;
          const int jj = j + 1;
          Lapack<T>::laed4(&k, &jj, dlamda, w, &Q(0, j), &rho, &d[j], &info);
          if (info != 0) failed("laed4", n, info);
        }
      });
    }
    profile::Scope ps("stedc: vectors");
    if (k == 2) {
      for (int j = 0; j < 2; ++j) {
        const T v[2] = {Q(0, j), Q(1, j)};
        Q(0, j) = v[indx[0] - 1];
        Q(1, j) = v[indx[1] - 1];
      }
    } else if (k > 2) {
      // The weights again from the roots (Löwner: |z_i|² = Π_j (d_j − dlamda_i) / Π_{j≠i} (dlamda_j − dlamda_i)),
      // with z's signs: the eigenvectors below are then orthogonal to working precision.
      // (both passes on every core: the products by rows, each core a block of rows through every
      // column in order, the same products in the same order as one core; the vectors by columns)
      std::copy(w, w + k, s);
      for (int i = 0; i < k; ++i) w[i] = Q(i, i);
      parallel_for(0, k, kMinColumns, [&](std::int64_t b, std::int64_t e) {
        for (int j = 0; j < k; ++j) {
          if (j % 256 == 0) poll_cancel();
          for (int i = static_cast<int>(b); i < e; ++i)
            if (i != j) w[i] *= Q(i, j) / (dlamda[i] - dlamda[j]);
        }
      });
      for (int i = 0; i < k; ++i) w[i] = std::copysign(std::sqrt(-w[i]), s[i]);
      // eigenvector j of D + ρzzᵀ: z_i / (dlamda_i − d_j), normalised, rows in indx's order
      parallel_for(0, k, kMinColumns, [&](std::int64_t b, std::int64_t e) {
        std::vector<T> col(static_cast<std::size_t>(k));
        for (int j = static_cast<int>(b); j < e; ++j) {
          if (j % 256 == 0) poll_cancel();
          for (int i = 0; i < k; ++i) col[static_cast<std::size_t>(i)] = w[i] / Q(i, j);
          const T nrm = norm2(k, col.data());
          for (int i = 0; i < k; ++i) Q(i, j) = col[static_cast<std::size_t>(indx[i] - 1)] / nrm;
        }
      });
    }
  }

  // Q's first k columns = the packed halves' columns × those eigenvectors: rows n1.. from the
  // columns nonzero in Q₂'s rows (types 2 and 3), rows ..n1 from those nonzero in Q₁'s (1 and 2).
  void products(int k, int n, int n1, T* q, int ldq, const T* q2, const int ctot[3], T* s) {
    profile::Scope ps("stedc: products");
    auto Q = [&](int i, int j) -> T& { return q[static_cast<std::int64_t>(j) * ldq + i]; };
    const int n2 = n - n1, n12 = ctot[0] + ctot[1], n23 = ctot[1] + ctot[2];
    auto copy_rows = [&](int r0, int rows) {
      for (int j = 0; j < k; ++j) std::copy(&Q(r0, j), &Q(r0, j) + rows, s + static_cast<std::int64_t>(j) * rows);
    };
    auto zero_rows = [&](int r0, int rows) {
      for (int j = 0; j < k; ++j) std::fill(&Q(r0, j), &Q(r0, j) + rows, T(0));
    };
    copy_rows(ctot[0], n23);
    if (n23 > 0) gemm_cm(n2, k, n23, q2 + static_cast<std::int64_t>(n1) * n12, n2, s, n23, &Q(n1, 0), ldq);
    else zero_rows(n1, n2);
    merge_progress(n, 0.6);
    copy_rows(0, n12);
    if (n12 > 0) gemm_cm(n1, k, n12, q2, n1, s, n12, &Q(0, 0), ldq);
    else zero_rows(0, n1);
  }

  int split_;
  T* work_;
  int lwork_;
  int* iwork_;
  int liwork_;
  const std::function<void(double)>& done_;
  double total_, finished_ = 0;
};

template <typename T>
void tridiagonal_eigh_impl(int n, T* d, T* e, T* z, int ldz, T* work, std::int64_t lwork, int* iwork, std::int64_t liwork, int split_above,
                           const std::function<void(double)>& done) {
  if (n <= 0) return;
  const std::int64_t n64 = n;
  if (lwork < 4 * n64 + n64 * n64 || liwork < 3 + 5 * n64 || ldz < n)
    throw Error(ErrorCode::InvalidArgument, "tridiagonal_eigh: order " + std::to_string(n) + " needs ldz >= n, 4n + n² elements of work and 3 + 5n of iwork");
  auto at = [&](int i, int j) -> T& { return z[static_cast<std::int64_t>(j) * ldz + i]; };
  // (zeroed on every core: fresh pages cost a fault and, on a VM, the host's backing at first touch)
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t j = b; j < e; ++j) std::fill(&at(0, static_cast<int>(j)), &at(0, static_cast<int>(j)) + n, T(0));
  });
  // Scaled to a largest entry of 1, as ?stedc does before its merges (the leaves rescale themselves).
  double scale = 0;
  for (int i = 0; i < n; ++i) scale = std::max(scale, static_cast<double>(std::fabs(d[i])));
  for (int i = 0; i + 1 < n; ++i) scale = std::max(scale, static_cast<double>(std::fabs(e[i])));
  if (scale == 0) {
    for (int j = 0; j < n; ++j) at(j, j) = 1;
    return;
  }
  for (int i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] / scale);
  for (int i = 0; i + 1 < n; ++i) e[i] = static_cast<T>(e[i] / scale);
  const int lw = static_cast<int>(std::min<std::int64_t>(lwork, 2147483647)), liw = static_cast<int>(std::min<std::int64_t>(liwork, 2147483647));
  DivideAndConquer<T> dc(n, work, lw, iwork, liw, split_above, done);
  std::vector<int> indxq(static_cast<std::size_t>(n));
  dc.solve(n, d, e, z, ldz, indxq.data());
  // Ascending order: eigenvalue i is d[indxq[i] − 1], its vector that column (through the workspace).
  if (n > split_above) {
    poll_cancel();
    profile::Scope ps("stedc: order");
    T *sd = work, *sz = work + n;
    for (int i = 0; i < n; ++i) {
      const int src = indxq[static_cast<std::size_t>(i)] - 1;
      sd[i] = d[src];
      std::copy(&at(0, src), &at(0, src) + n, sz + static_cast<std::int64_t>(i) * n);
    }
    std::copy(sd, sd + n, d);
    for (int j = 0; j < n; ++j) std::copy(sz + static_cast<std::int64_t>(j) * n, sz + static_cast<std::int64_t>(j + 1) * n, &at(0, j));
  }
  for (int i = 0; i < n; ++i) d[i] = static_cast<T>(d[i] * scale);
}

}  // namespace

void tridiagonal_eigh(int n, float* d, float* e, float* z, int ldz, float* work, std::int64_t lwork, int* iwork, std::int64_t liwork,
                      int split_above, const std::function<void(double)>& done) {
  tridiagonal_eigh_impl(n, d, e, z, ldz, work, lwork, iwork, liwork, split_above, done);
}
void tridiagonal_eigh(int n, double* d, double* e, double* z, int ldz, double* work, std::int64_t lwork, int* iwork, std::int64_t liwork,
                      int split_above, const std::function<void(double)>& done) {
  tridiagonal_eigh_impl(n, d, e, z, ldz, work, lwork, iwork, liwork, split_above, done);
}

}  // namespace brainlatent::linalg
