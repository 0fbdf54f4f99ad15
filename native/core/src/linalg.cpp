#include "brainlatent/linalg.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/parallel.h"

extern "C" {
// Fortran BLAS/LAPACK (LP64). Hidden string lengths are omitted, as every C caller of these
// single-character arguments does; all vendors accept it.
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*);
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*);
void ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
            const float*, float*, const int*);
void ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*, int*,
             const int*, int*);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*, const int*, int*,
             const int*, int*);
void spotrf_(const char*, const int*, float*, const int*, int*);
void dpotrf_(const char*, const int*, double*, const int*, int*);
void dpotri_(const char*, const int*, double*, const int*, int*);
void strsm_(const char*, const char*, const char*, const char*, const int*, const int*, const float*,
            const float*, const int*, float*, const int*);
void dtrsm_(const char*, const char*, const char*, const char*, const int*, const int*, const double*,
            const double*, const int*, double*, const int*);
}

namespace brainlatent {

namespace {
int g_threads = 0;

int to_int(std::int64_t v, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max())
    throw Error(ErrorCode::InvalidArgument, std::string("matrix dimension too large for 32-bit BLAS: ") + what);
  return static_cast<int>(v);
}
}  // namespace

int engine_threads() {
  if (g_threads > 0) return g_threads;
  // (read once: hardware_concurrency() reads /sys on every call, ~320 times per fit)
  static const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return hw;
}

void set_engine_threads(int n) {
  g_threads = n > 0 ? n : 0;
  linalg::set_blas_threads(engine_threads());
}

namespace linalg {

void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  // Row-major C = op(A)op(B)  <=>  column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
  const int M = to_int(n, "n"), N = to_int(m, "m"), K = to_int(k, "k");
  const int LDA = to_int(ldb, "ldb"), LDB = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  const char opa = tb ? 'T' : 'N', opb = ta ? 'T' : 'N';
  sgemm_(&opa, &opb, &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c, &LDC);
}

void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int M = to_int(n, "n"), N = to_int(m, "m"), K = to_int(k, "k");
  const int LDA = to_int(ldb, "ldb"), LDB = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  const char opa = tb ? 'T' : 'N', opb = ta ? 'T' : 'N';
  dgemm_(&opa, &opb, &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c, &LDC);
}

namespace {
void symmetrize_from_upper_colmajor(std::int64_t n, float* c, std::int64_t ldc) {
  // Column-major upper triangle (i <= j at c[j*ldc+i]) is the row-major lower triangle:
  // copy row-major lower into upper.
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      for (std::int64_t j = i + 1; j < n; ++j) c[i * ldc + j] = c[j * ldc + i];
  });
}
}  // namespace

void gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta, float* c,
          std::int64_t ldc) {
  // Row-major A (rows×k) is column-major Aᵀ (k×rows); AᵀA = (Aᵀ)(Aᵀ)ᵀ: syrk 'N'.
  const int N = to_int(k, "k"), K = to_int(rows, "rows"), LDA = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  if (N == 0) return;
  const char uplo = 'U', trans = 'N';
  ssyrk_(&uplo, &trans, &N, &K, &alpha, a, &LDA, &beta, c, &LDC);
  symmetrize_from_upper_colmajor(k, c, ldc);
}

void outer_gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta,
                float* c, std::int64_t ldc) {
  const int N = to_int(rows, "rows"), K = to_int(k, "k"), LDA = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  if (N == 0) return;
  const char uplo = 'U', trans = 'T';
  ssyrk_(&uplo, &trans, &N, &K, &alpha, a, &LDA, &beta, c, &LDC);
  symmetrize_from_upper_colmajor(rows, c, ldc);
}

template <typename T, typename Fn>
static void eigh_impl(std::int64_t n, T* a, std::int64_t lda, T* w, Fn syevd) {
  if (n == 0) return;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  T work_query = 0;
  syevd(&jobz, &uplo, &N, a, &LDA, w, &work_query, &lwork, &iwork_query, &liwork, &info);
  // The query returns LWORK as a T: in float32 it is rounded (1 + 6n + 2n² loses its low bits past
  // n ≈ 3000) and can come back below the minimum. Take the documented minimum when larger.
  const std::int64_t need = 1 + 6 * n + 2 * n * n;
  const std::int64_t lw = std::max<std::int64_t>(need, static_cast<std::int64_t>(work_query) + 1);
  if (lw > std::numeric_limits<int>::max())
    throw Error(ErrorCode::InvalidArgument, "symmetric eigendecomposition of " + std::to_string(n) + "×" + std::to_string(n) +
                                                " needs more workspace than 32-bit LAPACK can address");
  lwork = static_cast<int>(lw);
  liwork = std::max(iwork_query, 3 + 5 * N);
  LargeVector<T> work(static_cast<std::size_t>(lwork));  // (2n² elements: huge pages)
  std::vector<int> iwork(static_cast<std::size_t>(std::max(1, liwork)));
  syevd(&jobz, &uplo, &N, a, &LDA, w, work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0)
    throw Error(ErrorCode::NumericalFailure,
                "symmetric eigendecomposition (syevd) of a " + std::to_string(n) + "×" + std::to_string(n) +
                    " matrix failed (info " + std::to_string(info) + ")");
  // Column-major eigenvectors are row-major rows: row k = eigenvector k. Nothing to move.
}

std::size_t eigh_workspace_bytes(std::int64_t n, std::size_t elem_size) {
  if (n <= 0) return 0;
  const std::size_t N = static_cast<std::size_t>(n);
  return (1 + 6 * N + 2 * N * N) * elem_size + (3 + 5 * N) * sizeof(int);
}

void eigh(std::int64_t n, float* a, float* w) { eigh_impl<float>(n, a, n, w, ssyevd_); }
void eigh(std::int64_t n, double* a, double* w) { eigh_impl<double>(n, a, n, w, dsyevd_); }
void eigh(std::int64_t n, float* a, std::int64_t lda, float* w) { eigh_impl<float>(n, a, lda, w, ssyevd_); }
void eigh(std::int64_t n, double* a, std::int64_t lda, double* w) { eigh_impl<double>(n, a, lda, w, dsyevd_); }

bool cholesky(std::int64_t n, float* a, std::int64_t lda) {
  if (n == 0) return true;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  spotrf_(&uplo, &N, a, &LDA, &info);
  return info == 0;
}
bool cholesky(std::int64_t n, double* a, std::int64_t lda) {
  if (n == 0) return true;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  dpotrf_(&uplo, &N, a, &LDA, &info);
  return info == 0;
}
bool cholesky(std::int64_t n, float* a) { return cholesky(n, a, n); }
bool cholesky(std::int64_t n, double* a) { return cholesky(n, a, n); }

template <typename T, typename Fn>
static void chol_solve_rows_impl(std::int64_t n, const T* l, std::int64_t rows, T* b, std::int64_t ldb, Fn trsm) {
  if (rows == 0 || n == 0) return;
  // Row-major B (rows×n) is column-major Bᵀ... as column-major it is an (n × rows) matrix X
  // whose columns are the rows of B. Solve L Lᵀ X = B-columns: two left-side triangular solves.
  const int N = to_int(n, "n"), R = to_int(rows, "rows"), LDB = to_int(ldb, "ldb");
  const T one = 1;
  const char left = 'L', lower = 'L', nonunit = 'N', notrans = 'N', trans = 'T';
  trsm(&left, &lower, &notrans, &nonunit, &N, &R, &one, l, &N, b, &LDB);
  trsm(&left, &lower, &trans, &nonunit, &N, &R, &one, l, &N, b, &LDB);
}

void cholesky_solve_rows(std::int64_t n, const float* f, std::int64_t rows, float* b, std::int64_t ldb) {
  chol_solve_rows_impl<float>(n, f, rows, b, ldb, strsm_);
}
void cholesky_solve_rows(std::int64_t n, const double* f, std::int64_t rows, double* b, std::int64_t ldb) {
  chol_solve_rows_impl<double>(n, f, rows, b, ldb, dtrsm_);
}

template <typename T, typename Fn>
static void chol_solve_cols_impl(std::int64_t n, const T* l, std::int64_t ldl, std::int64_t cols, T* b, std::int64_t ldb, Fn trsm) {
  if (cols == 0 || n == 0) return;
  // Row-major B (n × cols) is column-major Bᵀ (cols × n); A X = B  <=>  Xᵀ L Lᵀ = Bᵀ:
  // two right-side triangular solves on the column-major view.
  const int N = to_int(n, "n"), M = to_int(cols, "cols"), LDB = to_int(ldb, "ldb"), LDL = to_int(ldl, "ldl");
  const T one = 1;
  const char right = 'R', lower = 'L', nonunit = 'N', notrans = 'N', trans = 'T';
  trsm(&right, &lower, &trans, &nonunit, &M, &N, &one, l, &LDL, b, &LDB);
  trsm(&right, &lower, &notrans, &nonunit, &M, &N, &one, l, &LDL, b, &LDB);
}

void cholesky_solve_cols(std::int64_t n, const float* f, std::int64_t cols, float* b, std::int64_t ldb) {
  chol_solve_cols_impl<float>(n, f, n, cols, b, ldb, strsm_);
}
void cholesky_solve_cols(std::int64_t n, const double* f, std::int64_t cols, double* b, std::int64_t ldb) {
  chol_solve_cols_impl<double>(n, f, n, cols, b, ldb, dtrsm_);
}
void cholesky_solve_cols(std::int64_t n, const float* f, std::int64_t ldf, std::int64_t cols, float* b, std::int64_t ldb) {
  chol_solve_cols_impl<float>(n, f, ldf, cols, b, ldb, strsm_);
}
void cholesky_solve_cols(std::int64_t n, const double* f, std::int64_t ldf, std::int64_t cols, double* b, std::int64_t ldb) {
  chol_solve_cols_impl<double>(n, f, ldf, cols, b, ldb, dtrsm_);
}

void cholesky_inverse(std::int64_t n, double* a, std::int64_t lda) {
  if (n == 0) return;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  dpotri_(&uplo, &N, a, &LDA, &info);
  if (info != 0) throw Error(ErrorCode::NumericalFailure, "cholesky_inverse: singular matrix (info " + std::to_string(info) + ")");
  // Column-major lower (i >= j at a[j*lda+i]) is the row-major upper triangle: mirror it down.
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < i; ++j) a[i * lda + j] = a[j * lda + i];
}
void cholesky_inverse(std::int64_t n, double* a) { cholesky_inverse(n, a, n); }

void set_blas_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  using SetFn = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "MKL_Set_Num_Threads", "bli_thread_set_num_threads"}) {
    if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, name))) {
      fn(n);
      return;
    }
  }
}

std::string blas_vendor() {
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) return std::string("OpenBLAS ") + fn();
  if (dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads")) return "Intel MKL";
  if (dlsym(RTLD_DEFAULT, "bli_thread_set_num_threads")) return "BLIS";
  return "unknown BLAS";
}

double sgemm_gflops(std::int64_t n, int reps) {
  std::vector<float> a(static_cast<std::size_t>(n * n)), b(a.size()), c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    b[i] = static_cast<float>((i * 40503u) % 1000) / 1000.0f - 0.5f;
  }
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace linalg
}  // namespace brainlatent
