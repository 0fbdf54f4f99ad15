#include "brainlatent/linalg.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "brainlatent/blas_turn.h"
#include "brainlatent/error.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/parallel.h"
#include "brainlatent/profile.h"

#include "lapack.h"

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

namespace {

// One BLAS call: row-major C = op(A)op(B)  <=>  column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
void gemm_call(char opa, char opb, int M, int N, int K, float alpha, const float* b, int LDA, const float* a, int LDB, float beta,
               float* c, int LDC) {
  BlasTurn turn;
  sgemm_(&opa, &opb, &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c, &LDC);
}
void gemm_call(char opa, char opb, int M, int N, int K, double alpha, const double* b, int LDA, const double* a, int LDB, double beta,
               double* c, int LDC) {
  BlasTurn turn;
  dgemm_(&opa, &opb, &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c, &LDC);
}

// Single-precision flops per slice of a long GEMM or rank-k product (a double-precision flop counts twice).
constexpr double kDefaultSliceFlops = 32e9;
std::atomic<double> g_slice_flops{kDefaultSliceFlops};

// A GEMM is one BLAS call, which no abort can stop: at NSD's scale one runs for seconds (the c
// decoder's refit, 15,724 × 8,859 × 2,048 targets a batch, is 570 GFLOP: 3 s at 190 GFLOP/s on two
// cores). Past twice the slice size it runs in slices of C's larger dimension with poll_cancel()
// before each, so that an abort waits for one slice: 64 GFLOP is ~0.2–0.45 s on two cores (150–300
// GFLOP/s), within the 0.5 s an abort may take (at 128e9, the slice size until s39, a 69 GFLOP block
// of pixelTwoWayIdentification at NSD's 1,000 images and the large bench shape's QᵀY, 111 GFLOP, ran
// unchecked for 0.5–1 s). Each slice re-packs the operand the slices share (the smaller), a cost that
// grows as slices narrow: 8,859 × 8,859 × 2,048 in 3 slices ran at 188–199 GFLOP/s against 196–199
// whole, a 221 GFLOP GEMM in 4 slices at 180–195 against 194–199. The medium bench shape's GEMMs
// (≤ 34 GFLOP) are never sliced.
template <typename T>
void gemm_sliced(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t lda, const T* b,
                 std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const char opa = tb ? 'T' : 'N', opb = ta ? 'T' : 'N';
  const int K = to_int(k, "k"), LDA = to_int(ldb, "ldb"), LDB = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) * (sizeof(T) / 4.0);
  const double slice = g_slice_flops.load();
  const std::int64_t parts = flops > 2 * slice ? std::min<std::int64_t>(std::max(m, n), static_cast<std::int64_t>(std::ceil(flops / slice))) : 1;
  if (parts == 1) {
    gemm_call(opa, opb, to_int(n, "n"), to_int(m, "m"), K, alpha, b, LDA, a, LDB, beta, c, LDC);
    return;
  }
  const bool by_rows = m >= n;
  const std::int64_t len = by_rows ? m : n;
  for (std::int64_t s = 0; s < parts; ++s) {
    poll_cancel();
    const std::int64_t i0 = len * s / parts, w = len * (s + 1) / parts - i0;
    if (by_rows) {
      // rows i0.. of C and of op(A): A's rows, or its columns when transposed
      const T* as = ta ? a + i0 : a + i0 * lda;
      gemm_call(opa, opb, to_int(n, "n"), to_int(w, "m"), K, alpha, b, LDA, as, LDB, beta, c + i0 * ldc, LDC);
    } else {
      // columns i0.. of C and of op(B): B's columns, or its rows when transposed
      const T* bs = tb ? b + i0 * ldb : b + i0;
      gemm_call(opa, opb, to_int(w, "n"), to_int(m, "m"), K, alpha, bs, LDA, a, LDB, beta, c + i0, LDC);
    }
  }
}

}  // namespace

void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  gemm_sliced(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  gemm_sliced(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

double set_gemm_slice_flops(double flops) { return g_slice_flops.exchange(flops > 0 ? flops : kDefaultSliceFlops); }

namespace {
void symmetrize_from_upper_colmajor(std::int64_t n, float* c, std::int64_t ldc) {
  // Column-major upper triangle (i <= j at c[j*ldc+i]) is the row-major lower triangle:
  // copy row-major lower into upper.
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      for (std::int64_t j = i + 1; j < n; ++j) c[i * ldc + j] = c[j * ldc + i];
  });
}
void symmetrize_from_lower_colmajor(std::int64_t n, float* c, std::int64_t ldc) {
  // Column-major lower triangle (i >= j at c[j*ldc+i]) is the row-major upper triangle:
  // copy row-major upper into lower.
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      for (std::int64_t j = 0; j < i; ++j) c[i * ldc + j] = c[j * ldc + i];
  });
}
}  // namespace

namespace {
// A column-major symmetric rank-k product, the whole of C: C = B·Bᵀ with B (N×K) ('N'), or C =
// Bᵀ·B with B (K×N) ('T'), one triangle by ?syrk and mirrored. Past twice the slice size (in flops, N²K) it runs by blocks of C's
// columns, each the diagonal block's ?syrk and one GEMM above it, the blocks' edges at N·√(s/parts)
// so that they hold equal flops, with poll_cancel() before each: the NSD-sized kernel (8,859
// samples over 15,724 voxels) is a 1.2 TFLOP product, ~6.5 s in one call at 178–184 GFLOP/s, and
// 181–184 GFLOP/s in 10 blocks (19 blocks: 167–176). Its slices are twice a GEMM's: the blocks lose
// more than a GEMM's slices do (4,000 rows over 8,000 in 4 blocks: 233 GFLOP/s against 264 whole, in
// one process), so only past 128 GFLOP (0.45–0.85 s on two cores); the NSD-sized kernel (1.23 TFLOP) then
// runs in 20 blocks, ~5–8% (0.3–0.5 s) slower than in 10, for an abort within ~0.35 s instead of ~0.65.
// Blocks compute the upper triangle; one call the lower: OpenBLAS 0.3.21's ?syrk ran 'L' at 126–143
// GFLOP/s against 'U' at 73–125 for the exact kernel route's (I − H)_vv blocks (400 × 400 over 1,999,
// two Cooper Lake cores, alone; in the medium bench fit its 50 blocks 0.22 s against 0.24–0.31) and at
// 170–190 against 165–180 for a 2,000 × 2,000 Gram over 4,000. (With beta ≠ 0, C's lower triangle is read.)
void syrk_symmetric(char trans, int N, int K, float alpha, const float* b, int LDA, float beta, float* c, int LDC) {
  const double flops = static_cast<double>(N) * N * K;
  const double slice = 2 * g_slice_flops.load();
  const int parts = flops > 2 * slice ? static_cast<int>(std::min<double>(N, std::ceil(flops / slice))) : 1;
  if (parts == 1) {
    const char lower = 'L';
    {
      BlasTurn turn;
      ssyrk_(&lower, &trans, &N, &K, &alpha, b, &LDA, &beta, c, &LDC);
    }
    symmetrize_from_lower_colmajor(N, c, LDC);
    return;
  }
  const char uplo = 'U';
  const std::size_t lda = static_cast<std::size_t>(LDA), ldc = static_cast<std::size_t>(LDC);
  int j0 = 0;
  for (int s = 1; s <= parts; ++s) {
    poll_cancel();
    const int j1 = s == parts ? N : std::max(j0 + 1, static_cast<int>(std::lround(N * std::sqrt(static_cast<double>(s) / parts))));
    if (j1 > N) break;
    const int w = j1 - j0;
    // (column j of B is b + j·LDA in 'T', row j of B is b + j in 'N')
    const float* bj = trans == 'N' ? b + j0 : b + static_cast<std::size_t>(j0) * lda;
    float* cj = c + static_cast<std::size_t>(j0) * ldc;
    BlasTurn turn;  // (the block's two calls: one turn)
    if (j0 > 0) {
      const char ta = trans == 'N' ? 'N' : 'T', tb = trans == 'N' ? 'T' : 'N';
      sgemm_(&ta, &tb, &j0, &w, &K, &alpha, b, &LDA, bj, &LDA, &beta, cj, &LDC);
    }
    ssyrk_(&uplo, &trans, &w, &K, &alpha, bj, &LDA, &beta, cj + j0, &LDC);
    j0 = j1;
  }
  symmetrize_from_upper_colmajor(N, c, LDC);
}
}  // namespace

void gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta, float* c,
          std::int64_t ldc) {
  // Row-major A (rows×k) is column-major Aᵀ (k×rows); AᵀA = (Aᵀ)(Aᵀ)ᵀ: syrk 'N'.
  const int N = to_int(k, "k"), K = to_int(rows, "rows"), LDA = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  if (N == 0) return;
  syrk_symmetric('N', N, K, alpha, a, LDA, beta, c, LDC);
}

void outer_gram(std::int64_t rows, std::int64_t k, const float* a, std::int64_t lda, float alpha, float beta,
                float* c, std::int64_t ldc) {
  const int N = to_int(rows, "rows"), K = to_int(k, "k"), LDA = to_int(lda, "lda"), LDC = to_int(ldc, "ldc");
  if (N == 0) return;
  syrk_symmetric('T', N, K, alpha, a, LDA, beta, c, LDC);
}

namespace {
// ?syevd in its three steps, with the last one blocked wider. syevd reduces A to tridiagonal form
// (?sytrd), solves the tridiagonal problem by divide and conquer (?stedc), and multiplies its
// eigenvectors by the reduction's Householder reflectors (?ormtr). That last step is 2n³ flops in
// GEMMs of inner dimension 32 (LAPACK's block size for ?ormql, at most 64): on two Cooper Lake
// cores ~80 GFLOP/s, 0.2 s of syevd's 0.45 s at n = 2000. Applied 128 reflectors at a time
// (?larft + ?larfb, the same algorithm as ?ormql) it runs at ~120 GFLOP/s: 0.13 s (0.89 s against
// 1.37 s at n = 4000). Small orders, and matrices whose scale syevd would rescale first, keep syevd.
// The reduction runs ?sytrd's panels one call each (sytrd_upper_blocked) so that a cancelled fit
// stops between them and between the back-transform's blocks (long_ops.h), not a minute later.

// Orders up to which ?stedc runs as one call (0.12 s in float64 at 2,000); above, the engine drives
// the upper merges (tridiagonal_eigh), whose scalar passes run on every core. In float32 from 1,024:
// at the medium bench shape's 1,999, one ?stedc call took 0.08–0.15 s in the fit against 0.07 s for
// two halves merged here (its roots 0.008 → 0.004 s on two cores).
template <typename T>
constexpr int kStedcWhole = sizeof(T) == 4 ? 1024 : 2000;

constexpr std::int64_t kWideReflectorsFrom = 512;  // below, ?ormtr's own blocking costs little
constexpr int kReflectorBlock = 128;

[[noreturn]] void eigh_failed(const char* step, std::int64_t n, int info) {
  throw Error(ErrorCode::NumericalFailure, std::string("symmetric eigendecomposition (") + step + ") of a " + std::to_string(n) + "×" +
                                               std::to_string(n) + " matrix failed (info " + std::to_string(info) + ")");
}

int workspace_int(std::int64_t need, std::int64_t n) {
  if (need > std::numeric_limits<int>::max())
    throw Error(ErrorCode::InvalidArgument, "symmetric eigendecomposition of " + std::to_string(n) + "×" + std::to_string(n) +
                                                " needs more workspace than 32-bit LAPACK can address");
  return static_cast<int>(need);
}

// A workspace of `count` elements: the caller's scratch where it has room (memory it uses next,
// already faulted in or about to be, instead of fresh pages), else pages of its own.
template <typename T>
class Workspace {
 public:
  Workspace(std::int64_t count, T* scratch, std::size_t scratch_count) {
    const std::size_t c = static_cast<std::size_t>(std::max<std::int64_t>(1, count));
    if (scratch && scratch_count >= c) {
      p_ = scratch;
    } else {
      own_.resize(c);
      p_ = own_.data();
    }
  }
  T* data() { return p_; }

 private:
  LargeVector<T> own_;  // (2n² elements: huge pages)
  T* p_ = nullptr;
};

template <typename T>
std::int64_t syevd_lwork(std::int64_t n) {
  const int N = to_int(n, "n"), LDA = std::max(1, N);
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  T work_query = 0;
  Lapack<T>::syevd(&jobz, &uplo, &N, nullptr, &LDA, nullptr, &work_query, &lwork, &iwork_query, &liwork, &info);
  // The query returns LWORK as a T: in float32 it is rounded (1 + 6n + 2n² loses its low bits past
  // n ≈ 3000) and can come back below the minimum. Take the documented minimum when larger.
  const std::int64_t need = 1 + 6 * n + 2 * n * n;
  return workspace_int(std::max<std::int64_t>(need, static_cast<std::int64_t>(work_query) + 1), n);
}

template <typename T>
void syevd_whole(std::int64_t n, T* a, std::int64_t lda, T* w, T* scratch, std::size_t scratch_count) {
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = static_cast<int>(syevd_lwork<T>(n)), liwork = 3 + 5 * N;
  Workspace<T> work(lwork, scratch, scratch_count);
  std::vector<int> iwork(static_cast<std::size_t>(std::max(1, liwork)));
  BlasTurn turn;
  Lapack<T>::syevd(&jobz, &uplo, &N, a, &LDA, w, work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0) eigh_failed("syevd", n, info);
}

// Whether syevd would use A as it is: its largest magnitude within [√(safmin/ε), √(1/(safmin/ε))]
// (syevd scales A into that range first; such matrices go to syevd itself).
template <typename T>
bool within_syevd_scale(std::int64_t n, const T* a, std::int64_t lda) {
  std::vector<double> part(static_cast<std::size_t>(std::max(1, engine_threads())), 0.0);
  std::atomic<int> next{0};
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) {
    double m = 0;
    for (std::int64_t j = b; j < e; ++j)  // column-major upper triangle
      for (std::int64_t i = 0; i <= j; ++i) m = std::max(m, static_cast<double>(std::fabs(a[j * lda + i])));
    part[static_cast<std::size_t>(next++)] = m;
  });
  const double amax = *std::max_element(part.begin(), part.end());
  const double smlnum = static_cast<double>(std::numeric_limits<T>::min()) / static_cast<double>(std::numeric_limits<T>::epsilon() / 2);
  const double rmin = std::sqrt(smlnum), rmax = std::sqrt(1.0 / smlnum);
  return amax == 0 || (amax >= rmin && amax <= rmax);
}

// ?sytrd (upper) as LAPACK blocks it, one call per panel of kSytrdBlock columns from the last, so that
// the reduction (0.11 s at n = 2000 in float32, ~45 s at 8,859 in float64) can be cancelled between
// panels: ?latrd reduces the panel and returns W, ?syr2k updates the leading block by −VWᵀ − WVᵀ, and
// ?sytd2 reduces the last kk columns unblocked. The same calls in the same order as ?sytrd with
// LAPACK's block size (ilaenv: 32) and crossover (32): the same result, bit for bit. work: n·nb.
constexpr int kSytrdBlock = 32;
template <typename T>
void sytrd_upper_blocked(int n, T* a, int lda, T* d, T* e, T* tau, T* work, const std::function<void(double)>& done) {
  const int nb = kSytrdBlock, nx = kSytrdBlock, ldw = n;
  if (n <= nx) {
    int info = 0;
    BlasTurn turn;
    Lapack<T>::sytd2("U", &n, a, &lda, d, e, tau, &info);
    return;
  }
  const T minus_one = -1, one = 1;
  auto A = [&](int r, int c) -> T& { return a[static_cast<std::int64_t>(c - 1) * lda + (r - 1)]; };  // 1-based
  const int kk = n - ((n - nx + nb - 1) / nb) * nb;
  const double n3 = static_cast<double>(n) * n * n;
  for (int i = n - nb + 1; i >= kk + 1; i -= nb) {
    // (a panel's cost goes with the trailing order cubed: this much of the reduction is done)
    const double rest = static_cast<double>(i + nb - 1);
    done(1.0 - rest * rest * rest / n3);
    const int m = i + nb - 1, lead = i - 1;
    BlasTurn turn;  // (the panel's two calls: one turn)
    Lapack<T>::latrd("U", &m, &nb, a, &lda, e, tau, work, &ldw);
    Lapack<T>::syr2k("U", "N", &lead, &nb, &minus_one, &A(1, i), &lda, work, &ldw, &one, a, &lda);
    for (int j = i; j <= i + nb - 1; ++j) {
      A(j - 1, j) = e[j - 2];
      d[j - 1] = A(j, j);
    }
  }
  done(1.0 - static_cast<double>(kk) * kk * kk / n3);
  int info = 0;
  BlasTurn turn;
  Lapack<T>::sytd2("U", &kk, a, &lda, d, e, tau, &info);
}

// The blocked path's workspace after Z (n²): the reduction's panel W (n × 32), what ?stedc asks
// for, and the reflector blocks' T and product; and ?stedc's integer workspace.
template <typename T>
std::pair<int, int> blocked_lwork(std::int64_t n) {
  const int N = to_int(n, "n"), NB = kReflectorBlock;
  const char compz = 'I';
  int info = 0, query = -1, iquery = 0;
  T q_dc = 0, d = 0, e = 0;
  Lapack<T>::stedc(&compz, &N, &d, &e, nullptr, &N, &q_dc, &query, &iquery, &query, &info);
  const std::int64_t need = std::max({std::int64_t{kSytrdBlock} * n, static_cast<std::int64_t>(q_dc) + 1, 1 + 4 * n + n * n,
                                      n * NB + std::int64_t{NB} * NB});
  return {workspace_int(need, n), std::max(iquery, 3 + 5 * N)};
}

template <typename T>
void eigh_impl(std::int64_t n, T* a, std::int64_t lda, T* w, T* scratch, std::size_t scratch_count) {
  if (n == 0) return;
  if (n < kWideReflectorsFrom || !within_syevd_scale(n, a, lda)) return syevd_whole(n, a, lda, w, scratch, scratch_count);
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda"), NB = kReflectorBlock;
  const char compz = 'I';
  int info = 0;
  std::vector<T> e(static_cast<std::size_t>(n)), tau(static_cast<std::size_t>(n));
  const std::pair<int, int> lw = blocked_lwork<T>(n);
  int lwork = lw.first, liwork = lw.second;
  // Z (n × n) and the workspace after it
  Workspace<T> ws(n * n + lwork, scratch, scratch_count);
  T* const z = ws.data();
  T* const work = z + n * n;
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  // Progress between blocks (long_ops.h), the three steps weighted by their time: about a third
  // each at n = 2000 in float32 (in cache), the reduction ~0.6 from n = 4000 in float32 and float64
  // (bound by memory: it grows faster than the rest), ?stedc 0.05–0.17.
  const double w_trd = 0.55, w_dc = 0.1;
  // A = Q T Qᵀ; Q = H(n−1)⋯H(1), H(i)'s vector in column i+1 of A above the diagonal.
  {
    profile::Scope ps("eigh: sytrd");
    sytrd_upper_blocked(N, a, LDA, w, e.data(), tau.data(), work, [&](double f) { step_done(w_trd * f); });
  }
  step_done(w_trd);
  // T = Z Λ Zᵀ: ~1/5 of the time. One ?stedc call up to kStedcWhole (~0.25 s here); above, its
  // merges from here (tridiagonal_eigh), with polls and progress between them.
  {
    profile::Scope ps("eigh: stedc");
    if (n <= kStedcWhole<T>) {
      // (Z's fresh pages faulted in on every core first: ?stedc zeroes Z on one, and a fresh page costs ~0.8–2 ms
      // a MiB on the bench VM, whose host backs it at first touch; tridiagonal_eigh zeroes it on every core itself)
      parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t e) { std::fill(z + b * n, z + e * n, T(0)); });
      BlasTurn turn;
      Lapack<T>::stedc(&compz, &N, w, e.data(), z, &N, work, &lwork, iwork.data(), &liwork, &info);
    } else { tridiagonal_eigh(N, w, e.data(), z, N, work, lwork, iwork.data(), liwork, kStedcWhole<T>, [&](double f) { step_done(w_trd + w_dc * f); });
    }
  }
  if (info != 0) eigh_failed("stedc", n, info);
  step_done(w_trd + w_dc);
  // Z := Q Z, NB reflectors at a time from the first (as ?ormql for Q·Z): block i0.. acts on rows
  // 0 .. i0 + ib of Z.
  profile::Scope ps("eigh: back-transform");
  T* t = work;
  T* prod = work + std::int64_t{NB} * NB;
  const int k = N - 1;
  for (int i0 = 0; i0 < k; i0 += NB) {
    // (block i0 works on rows 0 .. i0 + ib: the blocks before it did (i0/k)² of the work)
    const double before = static_cast<double>(i0) / k;
    step_done(w_trd + w_dc + (1 - w_trd - w_dc) * before * before);
    const int ib = std::min(NB, k - i0), rows = i0 + ib;
    const T* v = a + static_cast<std::int64_t>(i0 + 1) * lda;  // A(0, i0 + 1)
    BlasTurn turn;  // (the block's two calls: one turn)
    Lapack<T>::larft("B", "C", &rows, &ib, v, &LDA, tau.data() + i0, t, &NB);
    Lapack<T>::larfb("L", "N", "B", "C", &rows, &N, &ib, v, &LDA, t, &NB, z, &N, prod, &N);
  }
  // Column-major eigenvectors are row-major rows: row k = eigenvector k.
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t en) {
    for (std::int64_t j = b; j < en; ++j) std::copy_n(z + j * n, n, a + j * lda);
  });
  step_done(1.0);
}
// A = Q T Qᵀ (linalg.h: tridiagonalize): the reduction as eigh_impl's, then Q formed as eigh_impl's
// back-transform forms Q·Z, from Z = I, each block of reflectors applied only to the columns it
// reaches (block i0 acts on rows 0 .. i0 + ib, where the columns past them are still the identity's):
// 4/3·n³ flops, ?orgtr's, against ?stedc and the 2n³ back-transform of eigh. At the medium bench
// shape (n 1,999, float32, two Zen 3 cores) 0.24–0.40 s in the fit against eigh's 0.41–0.64 s.
template <typename T>
std::int64_t tridiagonalize_lwork(std::int64_t n) {
  return std::max<std::int64_t>(std::int64_t{kSytrdBlock} * n, n * kReflectorBlock + std::int64_t{kReflectorBlock} * kReflectorBlock);
}

template <typename T>
bool tridiagonalize_impl(std::int64_t n, T* a, std::int64_t lda, T* d, T* e, T* scratch, std::size_t scratch_count) {
  if (n == 0) return true;
  if (!within_syevd_scale(n, a, lda)) return false;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda"), NB = kReflectorBlock;
  std::vector<T> tau(static_cast<std::size_t>(n));
  Workspace<T> ws(n * n + tridiagonalize_lwork<T>(n), scratch, scratch_count);
  T* const z = ws.data();
  T* const work = z + n * n;
  // (weights by time: the reduction ~0.6, Q ~0.4 at n = 2,000 in float32)
  const double w_trd = 0.6;
  {
    profile::Scope ps("tridiagonalize: sytrd");
    sytrd_upper_blocked(N, a, LDA, d, e, tau.data(), work, [&](double f) { step_done(w_trd * f); });
  }
  e[n - 1] = 0;
  step_done(w_trd);
  profile::Scope ps("tridiagonalize: Q");
  // Z = I, its pages faulted in on every core
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t en) {
    std::fill(z + b * n, z + en * n, T(0));
    for (std::int64_t j = b; j < en; ++j) z[j * n + j] = T(1);
  });
  T* t = work;
  T* prod = work + std::int64_t{NB} * NB;
  const int k = N - 1;
  for (int i0 = 0; i0 < k; i0 += NB) {
    // (block i0 works on a rows × rows corner: the blocks before it did (i0/k)³ of the work)
    const double before = static_cast<double>(i0) / k;
    step_done(w_trd + (1 - w_trd) * before * before * before);
    const int ib = std::min(NB, k - i0), rows = i0 + ib;
    const T* v = a + static_cast<std::int64_t>(i0 + 1) * lda;  // A(0, i0 + 1)
    BlasTurn turn;
    Lapack<T>::larft("B", "C", &rows, &ib, v, &LDA, tau.data() + i0, t, &NB);
    Lapack<T>::larfb("L", "N", "B", "C", &rows, &rows, &ib, v, &LDA, t, &NB, z, &N, prod, &N);
  }
  // Column k of Q (column-major) is row k of the row-major result.
  parallel_for(0, n, 64, [&](std::int64_t b, std::int64_t en) {
    for (std::int64_t j = b; j < en; ++j) std::copy_n(z + j * n, n, a + j * lda);
  });
  step_done(1.0);
  return true;
}
}  // namespace

bool tridiagonalize(std::int64_t n, float* a, std::int64_t lda, float* d, float* e, float* scratch, std::size_t scratch_count) {
  return tridiagonalize_impl<float>(n, a, lda, d, e, scratch, scratch_count);
}
bool tridiagonalize(std::int64_t n, double* a, std::int64_t lda, double* d, double* e, double* scratch, std::size_t scratch_count) {
  return tridiagonalize_impl<double>(n, a, lda, d, e, scratch, scratch_count);
}
std::size_t tridiagonalize_scratch_count(std::int64_t n) {
  return n <= 0 ? 0 : static_cast<std::size_t>(n * n + tridiagonalize_lwork<float>(n));
}

std::size_t eigh_workspace_bytes(std::int64_t n, std::size_t elem_size) {
  if (n <= 0) return 0;
  // syevd's minimum; the blocked path takes Z (n²) and ?stedc's 1 + 4n + n², plus e and τ (2n).
  const std::size_t N = static_cast<std::size_t>(n);
  return (1 + 6 * N + 2 * N * N) * elem_size + (3 + 5 * N) * sizeof(int);
}

std::size_t eigh_scratch_count(std::int64_t n, std::size_t elem_size) {
  if (n <= 0) return 0;
  const std::int64_t whole = elem_size == 4 ? syevd_lwork<float>(n) : syevd_lwork<double>(n);
  if (n < kWideReflectorsFrom) return static_cast<std::size_t>(whole);
  const int blocked = elem_size == 4 ? blocked_lwork<float>(n).first : blocked_lwork<double>(n).first;
  return static_cast<std::size_t>(std::max(whole, n * n + blocked));
}

void eigh(std::int64_t n, float* a, float* w) { eigh_impl<float>(n, a, n, w, nullptr, 0); }
void eigh(std::int64_t n, double* a, double* w) { eigh_impl<double>(n, a, n, w, nullptr, 0); }
void eigh(std::int64_t n, float* a, std::int64_t lda, float* w) { eigh_impl<float>(n, a, lda, w, nullptr, 0); }
void eigh(std::int64_t n, double* a, std::int64_t lda, double* w) { eigh_impl<double>(n, a, lda, w, nullptr, 0); }
void eigh(std::int64_t n, float* a, std::int64_t lda, float* w, float* scratch, std::size_t scratch_count) {
  eigh_impl<float>(n, a, lda, w, scratch, scratch_count);
}

bool cholesky(std::int64_t n, float* a, std::int64_t lda) {
  if (n == 0) return true;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  BlasTurn turn;
  spotrf_(&uplo, &N, a, &LDA, &info);
  return info == 0;
}
bool cholesky(std::int64_t n, double* a, std::int64_t lda) {
  if (n == 0) return true;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  BlasTurn turn;
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
  BlasTurn turn;  // (the two solves: one turn)
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
  BlasTurn turn;  // (the two solves: one turn)
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

template <typename T, typename Fn>
static void cholesky_inverse_impl(std::int64_t n, T* a, std::int64_t lda, Fn potri) {
  if (n == 0) return;
  const int N = to_int(n, "n"), LDA = to_int(lda, "lda");
  int info = 0;
  const char uplo = 'L';
  {
    BlasTurn turn;
    potri(&uplo, &N, a, &LDA, &info);
  }
  if (info != 0) throw Error(ErrorCode::NumericalFailure, "cholesky_inverse: singular matrix (info " + std::to_string(info) + ")");
  // Column-major lower (i >= j at a[j*lda+i]) is the row-major upper triangle: mirror it down,
  // in 32×32 tiles (row by row, every read of the upper triangle was a cache miss at n = 400).
  constexpr std::int64_t kTile = 32;
  for (std::int64_t i0 = 0; i0 < n; i0 += kTile)
    for (std::int64_t j0 = 0; j0 <= i0; j0 += kTile) {
      const std::int64_t i1 = std::min(n, i0 + kTile), j1 = std::min(n, j0 + kTile);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = j0; j < std::min(j1, i); ++j) a[i * lda + j] = a[j * lda + i];
    }
}
void cholesky_inverse(std::int64_t n, double* a, std::int64_t lda) { cholesky_inverse_impl<double>(n, a, lda, dpotri_); }
void cholesky_inverse(std::int64_t n, float* a, std::int64_t lda) { cholesky_inverse_impl<float>(n, a, lda, spotri_); }
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

int blas_threads() {
  // (looked up once: BlasTurn asks before every call)
  static const auto get = []() -> std::function<int()> {
    using IntFn = int (*)();
    using DimFn = std::int64_t (*)();  // (BLIS's dim_t)
    for (const char* name : {"openblas_get_num_threads", "MKL_Get_Max_Threads"})
      if (auto fn = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, name))) return [fn] { return fn(); };
    if (auto fn = reinterpret_cast<DimFn>(dlsym(RTLD_DEFAULT, "bli_thread_get_num_threads")))
      return [fn] { return static_cast<int>(fn()); };
    return nullptr;
  }();
  return get ? std::max(1, get()) : engine_threads();
}

std::string blas_vendor() {
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    // (its configuration string names OpenBLAS and its version first, in the releases we link)
    const char* c = fn();
    const std::string config = c ? c : "";
    return config.rfind("OpenBLAS", 0) == 0 ? config : "OpenBLAS " + config;
  }
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
  const int N = to_int(n, "n");
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) {
    auto t0 = std::chrono::steady_clock::now();
    // (one call, never sliced: this is the machine's rate)
    gemm_call('N', 'N', N, N, N, 1.0f, b.data(), N, a.data(), N, 0.0f, c.data(), N);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace linalg
}  // namespace brainlatent
