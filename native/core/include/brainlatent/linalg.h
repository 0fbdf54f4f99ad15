// Row-major wrappers over the Fortran BLAS/LAPACK interface (any vendor: OpenBLAS, MKL,
// BLIS+libFLAME, reference). Row-major A (m×k) is column-major Aᵀ, so each call swaps operands.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace brainlatent::linalg {

// C (m×n) = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions lda/ldb/ldc.
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc);
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
          std::int64_t ldc);

// A GEMM above twice this many single-precision flops (default 32e9: past 64 GFLOP, ~0.2–0.45 s on two
// cores; a double-precision flop counts twice), and a rank-k product (gram, outer_gram) above four times it
// (128 GFLOP, ~0.45–0.85 s: its blocks lose more), runs in slices of C with poll_cancel() (long_ops.h)
// before each. Returns the previous value; ≤ 0 restores the default. For tests and tuning.
double set_gemm_slice_flops(double flops);

// C (k×k) = alpha · AᵀA + beta · C for row-major A (rows×k); fills both triangles.
void gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta, float* c,
          std::int64_t ldc);
// C (rows×rows) = alpha · AAᵀ + beta · C for row-major A (rows×k); fills both triangles.
void outer_gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta,
                float* c, std::int64_t ldc);

// Symmetric eigendecomposition by divide and conquer (?syevd). On entry `a` (n×n) holds a
// symmetric matrix; on exit row k of `a` holds the k-th eigenvector, eigenvalues ascending in w.
void eigh(std::int64_t n, float* a, float* w);
void eigh(std::int64_t n, double* a, double* w);
// The same with a leading dimension lda >= n (row k of the view = eigenvector k).
void eigh(std::int64_t n, float* a, std::int64_t lda, float* w);
void eigh(std::int64_t n, double* a, std::int64_t lda, double* w);
// Workspace bytes eigh(n) allocates (LAPACK's ?syevd minimum), for memory accounting.
std::size_t eigh_workspace_bytes(std::int64_t n, std::size_t elem_size);
// The same with its workspace in `scratch` where that holds at least eigh_scratch_count(n, 4)
// elements (overwritten; else it allocates its own as above): memory the caller uses next, so that
// the eigensolver's ~2n² elements are not faulted in fresh only to be freed.
void eigh(std::int64_t n, float* a, std::int64_t lda, float* w, float* scratch, std::size_t scratch_count);
std::size_t eigh_scratch_count(std::int64_t n, std::size_t elem_size);

// Reduction of the symmetric n×n matrix in `a` to tridiagonal form, A = Q T Qᵀ: on exit row k of `a`
// holds Q's column k (as eigh leaves its eigenvectors), d (n) T's diagonal and e (n) its off-diagonal
// (e[k] = T(k, k+1), e[n − 1] = 0). ?sytrd's reduction, then Q from its reflectors (?orgtr's 4/3·n³
// flops) a block at a time, with poll_cancel() and done(fraction) between the blocks (long_ops.h).
// False, `a` untouched, where its scale is outside what the reduction takes unscaled (see eigh).
// `scratch` as in eigh (at least tridiagonalize_scratch_count(n) elements; else its own workspace).
bool tridiagonalize(std::int64_t n, float* a, std::int64_t lda, float* d, float* e, float* scratch = nullptr, std::size_t scratch_count = 0);
bool tridiagonalize(std::int64_t n, double* a, std::int64_t lda, double* d, double* e, double* scratch = nullptr, std::size_t scratch_count = 0);
std::size_t tridiagonalize_scratch_count(std::int64_t n);

// Eigenvalues (ascending, in d) and eigenvectors (the columns of z, column-major, ldz >= n) of the
// symmetric tridiagonal matrix with diagonal d and off-diagonal e (n − 1 entries, destroyed), by
// divide and conquer: ?stedc for orders up to split_above; above, torn in halves and merged here, with
// poll_cancel() and done(fraction) between the steps (long_ops.h). work: 4n + n² elements; iwork: 3 + 5n.
void tridiagonal_eigh(int n, float* d, float* e, float* z, int ldz, float* work, std::int64_t lwork, int* iwork, std::int64_t liwork,
                      int split_above, const std::function<void(double)>& done);
void tridiagonal_eigh(int n, double* d, double* e, double* z, int ldz, double* work, std::int64_t lwork, int* iwork, std::int64_t liwork,
                      int split_above, const std::function<void(double)>& done);

// Cholesky factor in place (lower triangle, row-major view of the upper); returns false if
// the matrix is not positive definite.
bool cholesky(std::int64_t n, float* a);
bool cholesky(std::int64_t n, double* a);
bool cholesky(std::int64_t n, float* a, std::int64_t lda);
bool cholesky(std::int64_t n, double* a, std::int64_t lda);
// Solves X·A = B in place for B (rows×n, row-major, ld ldb) given A's Cholesky factor from
// cholesky() — i.e. each row b of B becomes A⁻¹b (A symmetric).
void cholesky_solve_rows(std::int64_t n, const float* factor, std::int64_t rows, float* b, std::int64_t ldb);
void cholesky_solve_rows(std::int64_t n, const double* factor, std::int64_t rows, double* b, std::int64_t ldb);

// Solves A·x = b in place for every column b of B (n × cols, row-major, ld ldb) given A's
// Cholesky factor from cholesky().
void cholesky_solve_cols(std::int64_t n, const float* factor, std::int64_t cols, float* b, std::int64_t ldb);
void cholesky_solve_cols(std::int64_t n, const double* factor, std::int64_t cols, double* b, std::int64_t ldb);
void cholesky_solve_cols(std::int64_t n, const float* factor, std::int64_t ldf, std::int64_t cols, float* b, std::int64_t ldb);
void cholesky_solve_cols(std::int64_t n, const double* factor, std::int64_t ldf, std::int64_t cols, double* b, std::int64_t ldb);

// Inverse of an SPD matrix from its cholesky() factor, in place, both triangles filled.
void cholesky_inverse(std::int64_t n, double* a);
void cholesky_inverse(std::int64_t n, double* a, std::int64_t lda);
void cholesky_inverse(std::int64_t n, float* a, std::int64_t lda);

// BLAS threads (0 = all cores). Works with OpenBLAS, MKL and BLIS when they export their
// setter; otherwise the vendor's environment variable decides.
void set_blas_threads(int n);
// The threads the BLAS library computes a call with now (OpenBLAS, MKL, BLIS: their getter, which also
// sees OPENBLAS_NUM_THREADS and friends); engine_threads() when it exports none.
int blas_threads();
std::string blas_vendor();

// Measured single-precision GEMM rate (GFLOP/s) on n×n×n, best of `reps`.
double sgemm_gflops(std::int64_t n, int reps);

}  // namespace brainlatent::linalg
