// linalg::tridiagonal_eigh (divide and conquer with its merges driven by the engine) against
// LAPACK's ?stedc and against the definition: eigenvalues equal to ?stedc's, eigenvectors with small
// residuals ‖Tz − λz‖ and orthonormal, in float32 and float64, on matrices that exercise every merge
// path (no deflation, close pairs deflated by rotation, everything deflated, orders 1–3 and odd
// splits); a set cancel flag stops it, and its progress goes up to 1. Then linalg::eigh past the
// order where it takes this path.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/linalg.h"
#include "brainlatent/long_ops.h"
#include "test_util.h"

extern "C" {
void sstedc_(const char*, const int*, float*, float*, float*, const int*, float*, const int*, int*, const int*, int*);
void dstedc_(const char*, const int*, double*, double*, double*, const int*, double*, const int*, int*, const int*, int*);
}

using namespace brainlatent;

namespace {

template <typename T>
void lapack_stedc(int n, T* d, T* e, T* z) {
  const char compz = 'I';
  int info = 0;
  const int lwork = 1 + 4 * n + n * n, liwork = 3 + 5 * n;
  std::vector<T> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  if constexpr (sizeof(T) == 4) sstedc_(&compz, &n, d, e, z, &n, work.data(), &lwork, iwork.data(), &liwork, &info);
  else dstedc_(&compz, &n, d, e, z, &n, work.data(), &lwork, iwork.data(), &liwork, &info);
  CHECK(info == 0);
}

struct Tridiagonal {
  std::vector<double> d, e;
};

// Random entries in [−1, 1]: little deflation.
Tridiagonal random_tridiagonal(int n, unsigned seed) {
  Tridiagonal t{std::vector<double>(static_cast<std::size_t>(n)), std::vector<double>(static_cast<std::size_t>(std::max(n - 1, 0)))};
  std::uint32_t x = seed;
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return static_cast<double>(x >> 8) / 8388608.0 - 1.0;
  };
  for (auto& v : t.d) v = next();
  for (auto& v : t.e) v = next();
  return t;
}

// Wilkinson's W⁺ (d_i = |i − m|, e = 1), glued in blocks by a small off-diagonal: pairs of
// eigenvalues equal to many digits, deflated across halves by rotations.
Tridiagonal glued_wilkinson(int blocks, int m, double glue) {
  const int w = 2 * m + 1, n = blocks * w;
  Tridiagonal t{std::vector<double>(static_cast<std::size_t>(n)), std::vector<double>(static_cast<std::size_t>(n - 1), 1.0)};
  for (int b = 0; b < blocks; ++b)
    for (int i = 0; i < w; ++i) t.d[static_cast<std::size_t>(b * w + i)] = std::abs(i - m);
  for (int b = 1; b < blocks; ++b) t.e[static_cast<std::size_t>(b * w - 1)] = glue;
  return t;
}

// The same diagonal value everywhere and tiny off-diagonals: every merge deflates everything.
Tridiagonal nearly_scalar(int n) {
  return Tridiagonal{std::vector<double>(static_cast<std::size_t>(n), 2.0), std::vector<double>(static_cast<std::size_t>(n - 1), 1e-30)};
}

template <typename T>
void check(const Tridiagonal& t, int split, double tol, const char* what) {
  const int n = static_cast<int>(t.d.size());
  std::vector<T> d(t.d.begin(), t.d.end()), e(t.e.begin(), t.e.end()), z(static_cast<std::size_t>(n) * n);
  e.resize(static_cast<std::size_t>(std::max(n, 1)));
  std::vector<T> work(static_cast<std::size_t>(4 * n + n * n));
  std::vector<int> iwork(static_cast<std::size_t>(3 + 5 * n));
  linalg::tridiagonal_eigh(n, d.data(), e.data(), z.data(), n, work.data(), static_cast<std::int64_t>(work.size()), iwork.data(),
                           static_cast<std::int64_t>(iwork.size()), split, [](double) {});
  std::vector<T> dl(t.d.begin(), t.d.end()), el(t.e.begin(), t.e.end()), zl(static_cast<std::size_t>(n) * n);
  el.resize(static_cast<std::size_t>(std::max(n, 1)));
  lapack_stedc(n, dl.data(), el.data(), zl.data());
  double norm = 0;
  for (double v : t.d) norm = std::max(norm, std::fabs(v));
  for (double v : t.e) norm = std::max(norm, 2 * std::fabs(v));
  norm = std::max(norm, 1e-300);
  double ev = 0, res = 0, orth = 0;
  bool ascending = true;
  for (int j = 0; j < n; ++j) {
    ev = std::max(ev, std::fabs(static_cast<double>(d[static_cast<std::size_t>(j)]) - dl[static_cast<std::size_t>(j)]) / norm);
    if (j > 0 && d[static_cast<std::size_t>(j)] < d[static_cast<std::size_t>(j - 1)]) ascending = false;
    const T* v = &z[static_cast<std::size_t>(j) * n];
    for (int i = 0; i < n; ++i) {
      double tv = t.d[static_cast<std::size_t>(i)] * v[i];
      if (i > 0) tv += t.e[static_cast<std::size_t>(i - 1)] * v[i - 1];
      if (i + 1 < n) tv += t.e[static_cast<std::size_t>(i)] * v[i + 1];
      res = std::max(res, std::fabs(tv - static_cast<double>(d[static_cast<std::size_t>(j)]) * v[i]) / norm);
    }
    for (int k = 0; k <= j; ++k) {
      double dot = 0;
      const T* u = &z[static_cast<std::size_t>(k) * n];
      for (int i = 0; i < n; ++i) dot += static_cast<double>(u[i]) * v[i];
      orth = std::max(orth, std::fabs(dot - (k == j ? 1.0 : 0.0)));
    }
  }
  if (!(ev <= tol && res <= tol && orth <= tol * 10 && ascending))
    std::fprintf(stderr, "  %s (n %d, split %d): eigenvalues vs ?stedc %.2e, residual %.2e, orthogonality %.2e, ascending %d\n", what, n,
                 split, ev, res, orth, ascending);
  CHECK(ev <= tol);
  CHECK(res <= tol);
  CHECK(orth <= tol * 10);
  CHECK(ascending);
}

template <typename T>
void check_all(double tol) {
  check<T>(random_tridiagonal(500, 3), 37, tol, "random");
  check<T>(random_tridiagonal(301, 5), 150, tol, "random, one merge");
  check<T>(random_tridiagonal(3, 7), 1, tol, "order 3");
  check<T>(random_tridiagonal(2, 9), 1, tol, "order 2");
  check<T>(random_tridiagonal(1, 11), 1, tol, "order 1");
  check<T>(glued_wilkinson(12, 10, 1e-6), 25, tol, "glued Wilkinson");
  check<T>(nearly_scalar(200), 30, tol, "everything deflated");
  // far from 1 in scale (the merges run on the matrix scaled to a largest entry of 1)
  const double big = sizeof(T) == 4 ? 1e15 : 1e150;
  for (const double scale : {big, 1 / big}) {
    Tridiagonal t = random_tridiagonal(300, 17);
    for (auto& v : t.d) v *= scale;
    for (auto& v : t.e) v *= scale;
    check<T>(t, 40, tol, scale > 1 ? "scaled up" : "scaled down");
  }
}

}  // namespace

int main() {
  test::run("float64: eigenvalues equal ?stedc's, eigenvectors orthonormal with small residuals, every merge path", [] {
    check_all<double>(1e-12);
  });
  test::run("float32: the same at float32's precision", [] { check_all<float>(5e-5); });

  test::run("a set flag stops it; its progress rises to 1", [] {
    const Tridiagonal t = random_tridiagonal(400, 13);
    const int n = 400;
    std::vector<double> d = t.d, e = t.e, z(static_cast<std::size_t>(n) * n), work(static_cast<std::size_t>(4 * n + n * n));
    std::vector<int> iwork(static_cast<std::size_t>(3 + 5 * n));
    std::vector<double> seen;
    linalg::tridiagonal_eigh(n, d.data(), e.data(), z.data(), n, work.data(), static_cast<std::int64_t>(work.size()), iwork.data(),
                             static_cast<std::int64_t>(iwork.size()), 50, [&](double f) { seen.push_back(f); });
    // 8 leaves, 7 merges (each also after its deflation, its roots and its first product)
    CHECK(seen.size() == 15 + 3 * 7);
    for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] >= seen[i - 1]);
    CHECK(!seen.empty() && seen.back() == 1.0);
    std::atomic<bool> flag{true};
    CancelScope s(&flag, "fit");
    d = t.d;
    e = t.e;
    bool stopped = false;
    try {
      linalg::tridiagonal_eigh(n, d.data(), e.data(), z.data(), n, work.data(), static_cast<std::int64_t>(work.size()), iwork.data(),
                               static_cast<std::int64_t>(iwork.size()), 50, [](double) {});
    } catch (const Error& e) {
      stopped = e.code() == ErrorCode::Cancelled;
    }
    CHECK(stopped);
  });

  test::run("too little workspace is refused with what it needs", [] {
    std::vector<double> d(10, 1.0), e(10, 0.5), z(100), work(10);
    std::vector<int> iwork(100);
    std::string msg;
    CHECK(test::throws([&] { linalg::tridiagonal_eigh(10, d.data(), e.data(), z.data(), 10, work.data(), 10, iwork.data(), 100, 2, [](double) {}); },
                       &msg));
    CHECK(msg.find("4n + n²") != std::string::npos);
  });

  test::run("eigh in float64 past the order where ?stedc ran whole: AV = VΛ, VᵀV = I", [] {
    const std::int64_t n = 2100;
    std::vector<double> a(static_cast<std::size_t>(n * n)), w(static_cast<std::size_t>(n));
    test::Rng rng(21);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j <= i; ++j) a[static_cast<std::size_t>(i * n + j)] = a[static_cast<std::size_t>(j * n + i)] = rng.normal();
    const std::vector<double> a0 = a;
    linalg::eigh(n, a.data(), w.data());  // row k of a: eigenvector k
    // R = V·A − Λ·V (rows), G = V·Vᵀ − I
    std::vector<double> r(static_cast<std::size_t>(n * n)), g(static_cast<std::size_t>(n * n));
    linalg::gemm(false, false, n, n, n, 1.0, a.data(), n, a0.data(), n, 0.0, r.data(), n);
    linalg::gemm(false, true, n, n, n, 1.0, a.data(), n, a.data(), n, 0.0, g.data(), n);
    double res = 0, orth = 0, scale = std::max(std::fabs(w[0]), std::fabs(w[static_cast<std::size_t>(n - 1)]));
    for (std::int64_t k = 0; k < n; ++k)
      for (std::int64_t i = 0; i < n; ++i) {
        res = std::max(res, std::fabs(r[static_cast<std::size_t>(k * n + i)] - w[static_cast<std::size_t>(k)] * a[static_cast<std::size_t>(k * n + i)]));
        orth = std::max(orth, std::fabs(g[static_cast<std::size_t>(k * n + i)] - (k == i ? 1.0 : 0.0)));
      }
    CHECK(res / scale < 1e-11);
    CHECK(orth < 1e-11);
    for (std::int64_t k = 1; k < n; ++k) CHECK(w[static_cast<std::size_t>(k)] >= w[static_cast<std::size_t>(k - 1)]);
  });

  return test::finish();
}
